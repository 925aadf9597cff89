"""Reference answers to questions: limits, identities, Jacobians, index forms, forward forms."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT, close, evaluate, leaf_values, problem_params, solved
from derivkit.errors import UserError
from derivkit.expr import sym
from derivkit.parse import parse_expression
from derivkit.problem import parse_problem
from derivkit.solve import solve

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


FALSE_IDENTITY = """\
id: false-identity
dims: {D: 2}
symbols:
  x: {shape: [D], role: input}
  w: {shape: [D], role: param}
loss:
  l: sum(w * x)
questions:
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
            continue                      # see the xfail below
        if q.kind == "limit":
            e = parse_expression(a.expr, g.scope(), None)
            assert float(evaluate(e, {}, g.dims)) == pytest.approx(a.extra["value"])
            continue
        extra = {n: sym(n) for n in (q.index or {})} | {n: sym(n) for n in ("k", "m") if q.index}
        e = parse_expression(a.expr, g.scope(extra), None)
        if a.reference is not None:
            assert e.shape == a.reference.shape
            assert close(evaluate(e, values, g.dims), evaluate(a.reference, values, g.dims)), q.id


def test_identity_expr_is_in_the_expression_language():
    sol = solved(SEED000)
    g = sol.graph
    for qid in ("sigmoid_neg", "sigmoid_derivative"):
        parse_expression(sol.answers[qid].expr, g.scope({"s": sym("s")}), None)


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
    from conftest import locate
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
