"""Reference answers to questions: limits, identities, Jacobians, index forms, forward forms."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import LINEAR_HEAD, ROOT, close, evaluate, leaf_values, problem_params, solved
from derivkit.errors import UserError
from derivkit.expr import sym
from derivkit.parse import parse_expression
from derivkit.problem import parse_problem
from derivkit.solve import solve
from derivkit.vocabulary import atom_names, expand

SEED000 = ROOT / "problems" / "sigmoid_output_nll_saturation.yaml"
MLP = ROOT / "problems" / "mlp_sigmoid_softmax_ce.yaml"
RELU = ROOT / "problems" / "relu_regression.yaml"
MULTINOMIAL = ROOT / "problems" / "multinomial_regression_index.yaml"
TWO_LAYER = ROOT / "problems" / "two_layer_classifier_index.yaml"


def P(g, text, extra=None):
    return parse_expression(text, g.scope(extra), None)


# ====================================================================== every question, every problem
@pytest.mark.parametrize("path", problem_params())
def test_every_question_is_verified(path, solved_fn):
    sol = solved_fn(path)
    bad = {q: a.max_rel_error for q, a in sol.answers.items() if not a.verified}
    assert not bad
    assert set(sol.answers) == {q.id for q in sol.problem.questions}


# ====================================================================== seed 000: limits and identities
@pytest.mark.parametrize("qid, value, vanishes", [
    ("lim_zpos_y1", 0, True), ("lim_zpos_y0", 1, False), ("lim_zneg_y1", -1, False), ("lim_zneg_y0", 0, True),
])
def test_seed_000_saturation_limits(qid, value, vanishes):
    a = solved(SEED000).answers[qid]
    assert a.kind == "limit"
    assert a.extra["value"] == value
    assert a.extra["vanishes"] is vanishes
    assert a.verified
    assert float(a.expr) == value


def test_seed_000_gradient_is_the_textbook_one():
    sol = solved(SEED000)
    g = sol.graph
    a = sol.answers["dJ_dz"]
    ref = a.reference
    assert sol.derivation.full["z"] == ref
    # -(2y - 1)(1 - σ((2y - 1) z)) at hand-picked values
    for y in (0.0, 1.0):
        for z in (-2.0, 0.3, 4.0):
            s = 1 / (1 + np.exp(-(2 * y - 1) * z))
            got = float(evaluate(ref, {"y": np.float64(y), "z": np.float64(z)}, g.dims))
            assert got == pytest.approx(-(2 * y - 1) * (1 - s), rel=1e-12)
            assert got == pytest.approx(1 / (1 + np.exp(-z)) - y, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("qid", ["sigmoid_neg", "sigmoid_derivative"])
def test_seed_000_identities_are_verified(qid):
    a = solved(SEED000).answers[qid]
    assert a.kind == "identity" and a.verified and a.max_rel_error <= 1e-25


FALSE_IDENTITY = "id: false-identity\n" + LINEAR_HEAD + """\
  - {id: wrong_derivative, kind: identity, lhs: sigmoid_prime(s), rhs: sigmoid(s)*(1 + sigmoid(s)), vars: {s: []}}
  - {id: wrong_symmetry, kind: identity, lhs: sigmoid(-s), rhs: sigmoid(s), vars: {s: []}}
  - {id: wrong_tanh, kind: identity, lhs: tanh_prime(s), rhs: 1 - tanh(s), vars: {s: []}}
  - {id: wrong_transpose, kind: identity, lhs: v.T @ M @ v, rhs: v.T @ M @ M @ v, vars: {v: [D], M: [D, D]}}
  - {id: right_one, kind: identity, lhs: sigmoid(-s), rhs: 1 - sigmoid(s), vars: {s: []}}
  - {id: right_vector, kind: identity, lhs: w.T @ x, rhs: sum(w * x)}
"""


def test_a_false_identity_is_not_verified():
    sol = solve(parse_problem(FALSE_IDENTITY, "false.yaml"), train=False)
    for qid in ("wrong_derivative", "wrong_symmetry", "wrong_tanh", "wrong_transpose"):
        assert not sol.answers[qid].verified, qid
        assert sol.answers[qid].max_rel_error > 1e-6
    assert sol.answers["right_one"].verified and sol.answers["right_vector"].verified
    assert not sol.verified and not sol.ok


@pytest.mark.parametrize("path, qid", [
    (ROOT / "tests" / "problems" / "scalar_chain.yaml", "tanh_derivative"),
    (ROOT / "tests" / "problems" / "quadratic_form.yaml", "quad_transpose"),
])
def test_other_identities(path, qid):
    assert solved(path).answers[qid].verified


def test_limit_of_an_expression_and_to_a_finite_point():
    a = solved(ROOT / "tests" / "problems" / "scalar_chain.yaml").answers["lim_tanh0"]
    assert a.extra["value"] == 1 and a.verified


# ====================================================================== Jacobians
def test_softmax_jacobian_is_diag_y_minus_y_yT():
    sol = solved(MLP)
    g = sol.graph
    a = sol.answers["dy_do"]
    assert a.kind == "jacobian" and a.verified
    assert a.reference == P(g, "diag(y) - y @ y.T")
    assert a.expr == "diag(y) - y @ y.T"
    _, values = leaf_values(g, seed=1)
    y = values["y"]
    assert close(evaluate(a.reference, values, g.dims), np.diag(y) - np.outer(y, y))


def test_relu_jacobian_is_diag_of_the_step():
    sol = solved(RELU)
    g = sol.graph
    a = sol.answers["dz2_dz1"]
    assert a.verified and a.reference == P(g, "diag(relu_prime(z1))")
    _, values = leaf_values(g, seed=2)
    assert close(evaluate(a.reference, values, g.dims), np.diag((values["z1"] > 0).astype(float)))
    assert sol.answers["dyhat_dz3"].reference == P(g, "eye(K)")


def test_sigmoid_jacobian_is_diag_of_h_1_minus_h():
    sol = solved(ROOT / "problems" / "sigmoid_bce_classifier.yaml")
    g = sol.graph
    a = sol.answers["dz2_dz1"]
    assert a.verified
    _, values = leaf_values(g, seed=3)
    h = values["z2"]
    assert close(evaluate(a.reference, values, g.dims), np.diag(h * (1 - h)))


def test_jacobian_questions_have_the_shape_of_of_by_wrt():
    checked = 0
    for path in (MLP, RELU, ROOT / "tests" / "problems" / "diag_forward.yaml"):
        sol = solved(path)
        g = sol.graph
        for q in sol.problem.questions:
            if q.kind == "jacobian" and not q.index:
                of, wrt = g.shape(q.of.value), g.shape(q.wrt.value)
                if len(of) == len(wrt) == 1:
                    assert sol.answers[q.id].reference.shape == (of[0], wrt[0]), q.id
                    checked += 1
    assert checked >= 4


# ====================================================================== index forms
def test_multinomial_index_forms():
    sol = solved(MULTINOMIAL)
    du = sol.answers["dl_du"]
    assert r"\delta_{jt}" in du.extra["index_latex"]
    assert du.extra["index_verified"] and du.verified
    assert du.extra["index_expr"] == "delta(j, t) - p[j]"
    dw = sol.answers["dl_dw"]
    assert r"\delta_{jt}" in dw.extra["index_latex"] and dw.extra["index_verified"]
    assert "x" in dw.extra["index_expr"]
    assert sol.answers["dl_db"].extra["index_verified"]
    # du_j/dw_j = x, du_j/db_j = 1
    assert sol.answers["du_dw"].expr == "x" and sol.answers["du_dw"].verified
    assert sol.answers["du_db"].expr == "1" and sol.answers["du_db"].verified


def test_two_layer_index_forms():
    sol = solved(TWO_LAYER)
    for qid in ("dl_dw", "dl_db", "dl_dh", "dh_ds", "ds_dv", "ds_da", "dl_dv", "dl_da"):
        a = sol.answers[qid]
        assert a.verified and a.extra.get("index_verified", True), qid
    assert r"\delta_{" in sol.answers["dl_dh"].extra["index_latex"]
    assert r"\sum" in sol.answers["dl_dh"].extra["index_latex"]
    assert sol.answers["ds_dv"].expr == "x"
    assert sol.answers["ds_da"].expr == "1"


def test_a_wrong_index_form_would_not_be_verified():
    """Swap p_j for p_t in ∂ℓ/∂u_j: the entry-by-entry proof must fail."""
    from derivkit.indexform import ivar
    from derivkit.questions import Context, _add_index_form, Answer
    from derivkit.expr import make
    sol = solved(MULTINOMIAL)
    g = sol.graph
    q = next(q for q in sol.problem.questions if q.id == "dl_du")
    from derivkit.verify import Verifier
    ctx = Context(g, sol.derivation, Verifier(g), {})
    wrong = make("sub", make("delta", ivar("j"), g.leaves["t"]), make("index", sym("p", ("C",)), g.leaves["t"]))
    ans = Answer("grad", "", "", True)
    _add_index_form(ctx, ans, wrong, q, g.loss, "u", g.shape("u"))
    assert ans.extra["index_verified"] is False and ans.verified is False


# ====================================================================== forward questions
def test_forward_questions_are_the_inlined_nodes():
    sol = solved(RELU)
    g = sol.graph
    a = sol.answers["fwd_z3"]
    assert a.reference == P(g, "W2 @ relu(W1 @ x + b1) + b2")
    assert all(n.op != "sym" or n.attr in g.leaves for n in a.reference.walk())
    _, values = leaf_values(g, seed=0)
    assert close(evaluate(sol.answers["fwd_l"].reference, values, g.dims), values["l"])


# ====================================================================== exprs read back
@pytest.mark.parametrize("path", problem_params())
def test_every_answer_expr_parses_back(path):
    sol = solved(path)
    g = sol.graph
    _, values = leaf_values(g, seed=4)
    for q in sol.problem.questions:
        a = sol.answers[q.id]
        if q.kind == "identity":
            extra = {n: sym(n, tuple(s)) for n, s in q.vars.items()}
            e = parse_expression(a.expr, g.scope(extra), None)
            assert e == parse_expression(a.extra["rhs"], g.scope(extra), None)
            continue
        if q.kind == "limit":
            e = parse_expression(a.expr, g.scope(), None)
            assert float(evaluate(e, {}, g.dims)) == pytest.approx(a.extra["value"])
            continue
        extra = {n: sym(n) for n in (q.index or {})} | {n: sym(n) for n in ("k", "m") if q.index}
        e = expand(parse_expression(a.expr, g.scope(extra | atom_names(a.atoms)), None), a.atoms)
        if a.reference is not None:
            assert e.shape == a.reference.shape
            assert close(evaluate(e, values, g.dims), evaluate(a.reference, values, g.dims)), q.id


def test_identity_expr_is_in_the_expression_language():
    """An identity's expr is its right-hand side (what a student submits); both sides are in the JSON."""
    sol = solved(SEED000)
    g = sol.graph
    for qid in ("sigmoid_neg", "sigmoid_derivative"):
        a = sol.answers[qid]
        scope = g.scope({"s": sym("s")})
        rhs = parse_expression(a.expr, scope, None)
        assert rhs == parse_expression(a.to_json()["rhs"], scope, None)
        assert parse_expression(a.to_json()["lhs"], scope, None) != rhs


# ====================================================================== questions with errors
@pytest.mark.parametrize("question, needle", [
    ("{id: q, kind: grad, wrt: zz}", "zz"),
    ("{id: q, kind: jacobian, of: y, wrt: W}", "{id: q"),
    ("{id: q, kind: jacobian, of: yy, wrt: z}", "yy"),
    ("{id: q, kind: limit, expr: s * sum(z), var: z, to: oo}", "z, to"),
    ("{id: q, kind: limit, expr: s, var: s, to: banana}", "banana"),
    ("{id: q, kind: identity, lhs: x, rhs: z}", "{id: q"),
    ("{id: q, kind: identity, lhs: sigmoid(-u), rhs: 1 - sigmoid(u)}", "u)"),
    ("{id: q, kind: forward, of: nothing}", "nothing"),
])
def test_question_errors_are_user_errors_at_their_place(question, needle):
    from helpers import locate
    text = """\
id: bad-question
dims: {D: 3, H: 2}
symbols:
  x: {shape: [D], role: input}
  t: {shape: [H], role: target, kind: onehot}
  W: {shape: [H, D], role: param}
  s: {shape: [], role: param}
forward:
  z: W @ x
  y: softmax(z)
loss:
  l: -sum(t * log(y))
questions:
  - """ + question + "\n"
    with pytest.raises(UserError) as info:
        solve(parse_problem(text, "q.yaml"), train=False)
    errors = getattr(info.value, "errors", [info.value])
    assert len(errors) == 1
    line, col = locate(text, needle)
    assert errors[0].where.line == line
    q_line, q_col = locate(text, "{id: q")
    assert errors[0].where.column in (col, q_col), str(errors[0])


# ====================================================================== validate_questions: structure only
BAD_QUESTIONS = """\
id: bad-questions
dims: {D: 3, H: 2}
symbols:
  x: {shape: [D], role: input}
  t: {shape: [], role: target, kind: class}
  W: {shape: [H, D], role: param}
  s: {shape: [], role: param}
forward:
  z: W @ x
  y: softmax(z)
loss:
  l: -log(y[t])
questions:
  - {id: ok_grad, kind: grad, wrt: z}
  - {id: q1, kind: grad, wrt: zz}
  - {id: q2, kind: grad, wrt: t}
  - {id: q3, kind: grad, wrt: z, index: {j: col}}
  - {id: q4, kind: limit, expr: s, var: s, to: 1/0}
  - {id: q5, kind: limit, expr: s, var: s, to: 1e99999}
  - {id: q6, kind: limit, expr: s, var: s, to: "1111111111111111111111111111111111111111.5"}
  - {id: q7, kind: limit, expr: s, var: s, to: oo, subs: {W: x}}
  - {id: q8, kind: limit, of: q9, var: s, to: oo}
  - {id: q9, kind: grad, wrt: s}
  - {id: q10, kind: identity, lhs: W, rhs: x}
  - {id: q11, kind: jacobian, of: W, wrt: z}
  - {id: q12, kind: forward, of: nothing}
"""


def test_validate_questions_locates_every_mistake_without_sympy(monkeypatch):
    import sympy
    from helpers import locate
    from derivkit.graph import build_graph
    from derivkit.questions import validate_questions

    def no_sympy(*args, **kwargs):
        raise AssertionError("validation must not call SymPy")
    monkeypatch.setattr(sympy, "limit", no_sympy)
    monkeypatch.setattr(sympy, "diff", no_sympy)
    g = build_graph(parse_problem(BAD_QUESTIONS, "bad.yaml"))
    errors = validate_questions(g)
    lines = [e.where.line for e in errors]
    bad_lines = [locate(BAD_QUESTIONS, f"{{id: q{i},")[0] for i in range(1, 13) if i != 9]
    assert sorted(set(lines)) == bad_lines
    assert all(e.where.file == "bad.yaml" and e.where.column for e in errors)
    monkeypatch.undo()
    with pytest.raises(UserError):
        solve(parse_problem(BAD_QUESTIONS, "bad.yaml"), train=False)


@given(st.integers(-10**15 + 1, 10**15 - 1), st.integers(1, 10**15 - 1))
def test_limit_targets_are_exact_rationals(p, q):
    from derivkit.errors import Location
    from derivkit.problem import Text
    from derivkit.questions import limit_target
    import sympy
    assert limit_target(Text(f"{p}/{q}", Location("f"))) == sympy.Rational(p, q)
    assert limit_target(Text(str(p), Location("f"))) == p


@given(st.text(alphabet="0123456789e.+-/oinf ", max_size=30))
def test_limit_target_is_a_bounded_number_or_a_user_error(raw):
    from derivkit.errors import Location
    from derivkit.problem import Text
    from derivkit.questions import LIMIT_TARGET_MAX, limit_target
    import sympy
    try:
        v = limit_target(Text(raw, Location("f")))
    except UserError as exc:
        assert exc.where == Location("f")
        return
    assert v in (sympy.oo, -sympy.oo) or (v.is_Rational and abs(v) <= LIMIT_TARGET_MAX)


LIMITS = "id: limits\n" + LINEAR_HEAD + """\
  - {id: up, kind: limit, expr: exp(s) + s, var: s, to: oo, vars: {s: []}}
  - {id: down, kind: limit, expr: -log(s), var: s, to: oo, vars: {s: []}}
  - {id: slow, kind: limit, expr: 1 / s, var: s, to: -oo, vars: {s: []}}
  - {id: at_zero, kind: limit, expr: log(s) / s, var: s, to: 0, vars: {s: []}}
"""


def test_infinite_limits_are_verified():
    sol = solve(parse_problem(LIMITS, "limits.yaml"), train=False)
    a = sol.answers
    assert a["up"].extra["value"] == "oo" and a["up"].verified
    assert a["down"].extra["value"] == "-oo" and a["down"].verified
    assert a["slow"].extra["value"] == 0 and a["slow"].verified
    assert a["at_zero"].extra["value"] == "-oo" and a["at_zero"].verified


def test_a_wrong_infinite_limit_is_not_verified():
    import numpy as np
    import sympy
    from derivkit.questions import _limit_check
    s = sympy.Symbol("s", real=True)
    body = np.array([sympy.log(s)], dtype=object)
    assert _limit_check(body, np.array([sympy.oo], dtype=object), s, sympy.oo) == 0.0
    assert _limit_check(body, np.array([-sympy.oo], dtype=object), s, sympy.oo) == float("inf")
    assert _limit_check(np.array([sympy.tanh(s)], dtype=object), np.array([sympy.oo], dtype=object),
                        s, sympy.oo) == float("inf")


@pytest.mark.parametrize("lhs", ["1 / (s - s)", "log(s - s)", "s / 0", "sqrt(-1 - s * s)"])
def test_an_identity_side_that_is_undefined_is_a_located_error(lhs):
    from helpers import locate
    text = LIMITS.split("questions:")[0] + f"questions:\n  - {{id: q, kind: identity, lhs: {lhs}, rhs: s, " \
                                           "vars: {s: []}}\n"
    with pytest.raises(UserError) as info:
        solve(parse_problem(text, "undefined.yaml"), train=False)
    err = getattr(info.value, "errors", [info.value])[0]
    assert (err.where.line, err.where.column) == locate(text, lhs)


def test_a_values_domain_that_makes_a_log_undefined_is_a_located_error():
    from helpers import locate
    text = """\
id: values-log
dims: {D: 2}
symbols:
  x: {shape: [D], role: input}
  w: {shape: [D], role: param}
  y: {shape: [], role: target, values: [0, 1]}
loss:
  l: sum(w * x) + log(y * (1 - y))
"""
    with pytest.raises(UserError) as info:
        solve(parse_problem(text, "values.yaml"), train=False)
    assert (info.value.where.line, info.value.where.column) == locate(text, "sum(w * x) + log")
