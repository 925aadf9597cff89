"""Symbolic backprop: the textbook forms, every gradient proved, and proofs that can fail."""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from helpers import (ALL_PROBLEMS, ROOT, close, evaluate, graph_from_text, leaf_values, loaded,
                     problem_params, solved, verifier)
from strategies import mlp_problems
from derivkit.expr import Expr, concrete, grad, num, substitute
from derivkit.parse import parse_expression
from derivkit.printing import to_ascii, to_latex
from derivkit.problem import parse_problem
from derivkit.verify import TOLERANCE, Verifier

MLP = ROOT / "problems" / "mlp_sigmoid_softmax_ce.yaml"


def P(g, text: str) -> Expr:
    return parse_expression(text, g.scope(), None)


# ====================================================================== the textbook answers
@pytest.fixture(scope="module")
def mlp():
    _, g, d = loaded(MLP)
    return g, d


def test_dl_do_is_y_minus_t(mlp):
    g, d = mlp
    assert d.full["o"] == P(g, "y - t")
    assert d.full["c"] == P(g, "y - t")
    assert to_ascii(d.full["o"]) == "y - t"


def test_dl_dV_is_the_outer_product(mlp):
    g, d = mlp
    assert d.full["V"] == P(g, "(y - t) @ h.T")
    assert to_latex(d.full["V"], g.problem.latex) == \
        r"\left(\mathbf{y} - \mathbf{t}\right) \mathbf{h}^{\top}"


def test_dl_dh_and_dl_dz(mlp):
    g, d = mlp
    assert d.full["h"] == P(g, "V.T @ (y - t)")
    expected = P(g, "(V.T @ (y - t)) * h * (1 - h)")
    assert d.full["z"] == expected
    assert d.full["b"] == expected


def test_dl_dW_in_chain_form_and_full_form(mlp):
    g, d = mlp
    x = g.leaves["x"]
    dl_dz = grad("z", g.shape("z"), "l")
    assert d.chain["W"] == dl_dz @ x.T
    assert d.chain["b"] == dl_dz
    assert d.chain["h"] == g.leaves["V"].T @ grad("o", g.shape("o"), "l")
    assert d.full["W"] == P(g, "((V.T @ (y - t)) * h * (1 - h)) @ x.T")
    assert d.full["x"] == P(g, "W.T @ ((V.T @ (y - t)) * h * (1 - h))")


def test_dl_dy_and_the_loss_itself(mlp):
    g, d = mlp
    assert to_ascii(d.full["y"]) == "-t / y"
    assert d.full["l"] == num(1)
    assert d.full["t"] == P(g, "-log(y)")


def test_textbook_forms_are_proved(mlp):
    g, d = mlp
    v = verifier(MLP)
    for name, text in [("o", "y - t"), ("V", "(y - t) @ h.T"), ("z", "(V.T @ (y - t)) * h * (1 - h)"),
                       ("W", "((V.T @ (y - t)) * h * (1 - h)) @ x.T")]:
        assert v.error(P(g, text), "l", name) <= TOLERANCE


def test_every_gradient_has_the_shape_of_its_variable(problem_files):
    for path in problem_files:
        _, g, d = loaded(path)
        for name in g.names:
            assert d.full[name].shape == g.shape(name), (path.name, name)
            assert d.chain[name].shape == g.shape(name), (path.name, name)


def test_chain_forms_substitute_to_the_full_forms():
    """Replacing each ∂l/∂n in chain[n'] by full[n] gives the same numbers as full[n']."""
    for path in ALL_PROBLEMS:
        _, g, d = loaded(path)
        _, values = leaf_values(g, seed=2)
        for n in g.nodes:
            values[("grad", n)] = np.broadcast_to(evaluate(d.full[n], values, g.dims),
                                                  tuple(g.dims[s] if isinstance(s, str) else s
                                                        for s in g.shape(n)))
        for name in g.names:
            if g.kind(name) == "class":
                continue
            a = evaluate(d.chain[name], values, g.dims)
            b = evaluate(d.full[name], values, g.dims)
            assert close(np.broadcast_to(a, np.shape(b)), b, rtol=1e-9, atol=1e-12), (path.name, name)


# ====================================================================== small problems by hand
FANOUT = """\
id: fanout
dims: {D: 2, H: 3}
symbols:
  x: {shape: [D], role: input}
  W: {shape: [H, D], role: param}
  u: {shape: [H], role: param}
forward:
  z: W @ x
loss:
  l: sum(z * z) + sum(z)
"""


def test_a_node_used_twice_gets_both_contributions():
    g, d = graph_from_text(FANOUT)
    _, values = leaf_values(g, seed=1)
    z = values["z"]
    assert close(evaluate(d.full["z"], values, g.dims), 2 * z + 1)
    assert close(evaluate(d.full["W"], values, g.dims), np.outer(2 * z + 1, values["x"]))
    # u is not used: its gradient is zero, with u's shape
    assert d.full["u"].shape == ("H",)
    assert np.all(np.broadcast_to(evaluate(d.full["u"], values, g.dims), (3,)) == 0)


def test_relu_gradient_uses_the_step_function():
    _, g, d = loaded(ROOT / "problems" / "relu_regression.yaml")
    assert any(n.op == "relu_prime" for n in d.full["z1"].walk())
    _, values = leaf_values(g, seed=4)
    expected = (values["W2"].T @ (2 * (values["y_hat"] - values["y"]))) * (values["z1"] > 0)
    assert close(evaluate(d.full["z1"], values, g.dims), expected)


def test_squared_error_and_sigmoid_by_hand():
    _, g, d = loaded(ROOT / "tests" / "problems" / "sigmoid_sigmoid_graded.yaml")
    _, v = leaf_values(g, seed=3)
    dz2 = (v["y_hat"] - v["y"]) * v["y_hat"] * (1 - v["y_hat"])
    assert close(evaluate(d.full["z2"], v, g.dims), dz2)
    assert close(evaluate(d.full["W2"], v, g.dims), np.outer(dz2, v["h"]))
    dz1 = (v["W2"].T @ dz2) * v["h"] * (1 - v["h"])
    assert close(evaluate(d.full["W1"], v, g.dims), np.outer(dz1, v["x"]))


# ====================================================================== every problem: every gradient proved
@pytest.mark.parametrize("path", problem_params())
def test_every_gradient_is_verified(path):
    sol = solved(path)
    assert sol.gradients, path
    bad = {n: gr.error for n, gr in sol.gradients.items() if not gr.verified}
    assert not bad
    for n, gr in sol.gradients.items():
        assert gr.error <= TOLERANCE


@pytest.mark.parametrize("path", problem_params())
def test_every_gradient_is_verified_by_the_scalar_chain_rule_too(path):
    _, g, d = loaded(path)
    v = verifier(path, "chain")
    for name in g.names:
        if g.kind(name) != "class":
            assert v.error(d.full[name], g.loss, name) <= TOLERANCE, name


@pytest.mark.slow
@pytest.mark.parametrize("path", problem_params())
def test_every_gradient_is_verified_by_full_differentiation(path):
    _, g, d = loaded(path)
    v = verifier(path, "diff")
    for name in g.names:
        if g.kind(name) != "class":
            assert v.error(d.full[name], g.loss, name) <= TOLERANCE, name


# ====================================================================== the proof can fail
def _drop_a_factor(e: Expr) -> Expr | None:
    """Replace the outermost elementwise product by one of its full-shape factors."""
    muls = [n for n in e.walk() if n.op == "mul" and n.args[0].shape == n.shape == n.args[1].shape]
    if not muls:
        return None
    target = muls[-1]
    return substitute(e, {target: target.args[0]})


def corruptions(g, name: str, e: Expr) -> dict[str, Expr]:
    out = {"negated": -e, "doubled": num(2) * e, "plus_one": e + num(1)}
    if len(e.shape) == 2:
        out["transposed"] = e.T
    dropped = _drop_a_factor(e)
    if dropped is not None:
        out["dropped_factor"] = dropped
    return out


def _meaningfully_different(g, a: Expr, b: Expr) -> bool:
    _, values = leaf_values(g, seed=9)
    with np.errstate(all="ignore"):
        x, y = np.asarray(evaluate(a, values, g.dims)), np.asarray(evaluate(b, values, g.dims))
    return x.shape != y.shape or not np.allclose(x, y, rtol=1e-6, atol=1e-9)


def _check_corruptions(path, names=None, method=None):
    _, g, d = loaded(path)
    v = verifier(path, method)
    tried = 0
    for name in names or g.names:
        if g.kind(name) == "class" or name == g.loss:
            continue
        for kind, wrong in corruptions(g, name, d.full[name]).items():
            if not _meaningfully_different(g, wrong, d.full[name]):
                continue
            tried += 1
            assert v.error(wrong, g.loss, name) > 1e-6, (path.name, name, kind, to_ascii(wrong))
    assert tried


@pytest.mark.parametrize("method", ["diff", "chain"])
def test_corrupted_textbook_gradients_are_not_verified(method):
    _check_corruptions(MLP, ["o", "V", "z", "W", "b", "h"], method)


def test_specific_textbook_mistakes_are_not_verified(mlp):
    g, d = mlp
    v = verifier(MLP)
    for name, wrong in [("o", "t - y"), ("V", "h @ (y - t).T"), ("V", "(y - t) @ x.T"),
                        ("z", "V.T @ (y - t)"), ("z", "(V.T @ (y - t)) * h"),
                        ("W", "x @ ((V.T @ (y - t)) * h * (1 - h)).T"), ("W", "(V.T @ (y - t)) @ x.T"),
                        ("h", "V @ (y - t)" if g.dims["C"] == g.dims["H"] else "V.T @ y")]:
        try:
            expr = P(g, wrong)
        except Exception:
            continue
        assert v.error(expr, "l", name) > 1e-6, (name, wrong)


def test_an_answer_of_the_wrong_shape_is_not_verified(mlp):
    g, d = mlp
    v = verifier(MLP)
    assert v.error(P(g, "sum(y - t)"), "l", "o") > 1e-6
    assert v.error(P(g, "y - t"), "l", "V") > 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("path", problem_params())
def test_corrupted_gradients_are_never_verified(path):
    _check_corruptions(path)


# ====================================================================== generated networks
@pytest.mark.slow
@given(mlp_problems())
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_mlps_have_every_gradient_verified(text):
    g, d = graph_from_text(text)
    v = Verifier(g)
    for name in g.names:
        if g.kind(name) == "class":
            continue
        err = v.error(d.full[name], g.loss, name)
        assert err <= TOLERANCE, (name, to_ascii(d.full[name]), text)


@given(mlp_problems())
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_mlps_scalar_chain_quick(text):
    g, d = graph_from_text(text)
    v = Verifier(g, method="chain", points=2)
    for name in g.names:
        if g.kind(name) != "class":
            assert v.error(d.full[name], g.loss, name) <= TOLERANCE, (name, text)


# ====================================================================== regression
NEG_SQUARE = """\
id: neg-square
dims: {D: 2}
symbols:
  x: {shape: [D], role: input}
  w: {shape: [D], role: param}
forward:
  z: (-w)**2 * x
loss:
  l: sum(z**3 * (-x)**2)
"""


def test_negated_base_squared_gives_verified_gradients():
    """simplify once turned (-w)**2 into -w**2: dl/dw, dl/dz came out with the wrong sign."""
    g, d = graph_from_text(NEG_SQUARE)
    v = Verifier(g)
    for name in g.names:
        assert v.error(d.full[name], g.loss, name) <= TOLERANCE, (name, to_ascii(d.full[name]))


POWERS = """\
id: powers
dims: {D: 2}
symbols:
  x: {shape: [D], role: input}
  w: {shape: [D], role: param}
  s: {shape: [], role: param}
loss:
  l: sum(w ** s + 2 ** w + x ** 3)
"""


def test_powers_with_a_non_number_exponent():
    """`**` with a symbol in the exponent (w**s, 2**w): the power rule's log term is derived and proved."""
    g, d = graph_from_text(POWERS)
    v = Verifier(g)
    for name in ("w", "s", "x"):
        assert v.error(d.full[name], "l", name) <= TOLERANCE, (name, to_ascii(d.full[name]))
    assert v.error(P(g, "s * w ** (s - 1) + 2 ** w * log(2)"), "l", "w") <= TOLERANCE
    assert v.error(P(g, "sum(w ** s * log(w))"), "l", "s") <= TOLERANCE
    assert v.error(P(g, "3 * x ** 2"), "l", "x") <= TOLERANCE


# ====================================================================== deep networks: printed forms that scale
def deep_tanh(depth: int, width: int = 3) -> str:
    """``depth`` tanh layers sharing one W and b, squared error."""
    forward = {f"h{i}": f"tanh(W @ {'x' if i == 1 else f'h{i - 1}'} + b)" for i in range(1, depth + 1)}
    return yaml.safe_dump({
        "id": "deep-tanh", "title": "deep tanh", "dims": {"H": width},
        "symbols": {"x": {"shape": ["H"], "role": "input"}, "y": {"shape": ["H"], "role": "target", "kind": "real"},
                    "W": {"shape": ["H", "H"], "role": "param"}, "b": {"shape": ["H"], "role": "param"}},
        "forward": forward, "loss": {"l": f"0.5 * sum((h{depth} - y)**2)"}}, sort_keys=False)


def scalar_chain(depth: int) -> str:
    """h0 = w x, then ``depth`` steps h = tanh(h) * h: every step uses h twice."""
    forward = {"h0": "w * x", **{f"h{i}": f"tanh(h{i - 1}) * h{i - 1}" for i in range(1, depth + 1)}}
    return yaml.safe_dump({
        "id": "chain", "title": "scalar chain", "dims": {},
        "symbols": {"x": {"shape": [], "role": "input"}, "w": {"shape": [], "role": "param"}},
        "forward": forward, "loss": {"l": f"h{depth} ** 2"}}, sort_keys=False)


def stacked_softmax(depth: int, width: int = 4) -> str:
    """``depth`` softmaxes in a row, cross-entropy at the end."""
    forward = {f"y{i}": f"softmax({'x' if i == 0 else f'y{i - 1}'})" for i in range(depth)}
    return yaml.safe_dump({
        "id": "softmaxes", "title": "stacked softmaxes", "dims": {"C": width},
        "symbols": {"x": {"shape": ["C"], "role": "input"},
                    "t": {"shape": ["C"], "role": "target", "kind": "onehot"}},
        "forward": forward, "loss": {"l": f"-sum(t * log(y{depth - 1}))"}}, sort_keys=False)


DEEP = {"tanh": deep_tanh, "chain": scalar_chain, "softmax": stacked_softmax}


def longest_printed(d) -> int:
    return max(len(to_ascii(e)) for e in d.named.values())


def test_named_forms_are_the_corpus_full_forms():
    """On the corpus no upstream gradient is large enough to be named: what was printed stays."""
    for path in ALL_PROBLEMS:
        _, g, d = loaded(path)
        assert d.named == d.full, path.name


@pytest.mark.parametrize("family", sorted(DEEP))
def test_named_forms_equal_the_full_forms(family):
    """Each ∂l/∂m kept in a printed form, replaced by its value, gives full's numbers."""
    g, d = graph_from_text(DEEP[family](6))
    assert d.named != d.full                    # something was named
    _, values = leaf_values(g, seed=3)
    for n in g.nodes:
        values[("grad", n)] = np.broadcast_to(evaluate(d.full[n], values, g.dims),
                                              concrete(g.shape(n), g.dims))
    for name in g.names:
        assert d.named[name].shape == g.shape(name)
        a = evaluate(d.named[name], values, g.dims)
        b = evaluate(d.full[name], values, g.dims)
        assert close(np.broadcast_to(a, np.shape(b)), b, rtol=1e-9, atol=1e-12), name


@pytest.mark.parametrize("family", sorted(DEEP))
def test_printed_forms_grow_linearly_with_depth(family):
    """Doubling the depth at most about doubles the growth of the longest printed form."""
    sizes = {depth: longest_printed(graph_from_text(DEEP[family](depth))[1]) for depth in (5, 10, 20)}
    assert sizes[20] - sizes[10] <= 2.5 * max(sizes[10] - sizes[5], 40), sizes


def test_a_repeated_large_upstream_gradient_is_named():
    """Through stacked softmaxes ∂l/∂x uses ∂l/∂y0 twice: it is printed once, as its name."""
    g, d = graph_from_text(stacked_softmax(5))
    atom = grad("y0", g.shape("y0"), "l")
    from derivkit.rewrite import knowledge, readable
    assert d.named["x"] == readable(d.chain["x"], knowledge(g))     # the chain form, tidied only
    assert sum(1 for _ in _tree(d.named["x"]) if _ == atom) == 2
    assert atom not in set(d.full["x"].walk())
    assert len(to_ascii(d.named["x"])) < len(to_ascii(d.named["y0"]))


def _tree(e: Expr):
    """Every node of ``e`` as printed (repeats included)."""
    stack = [e]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(n.args)


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(DEEP))
def test_deep_networks_solve_and_verify(family):
    from derivkit.solve import solve
    sol = solve(parse_problem(DEEP[family](6), "deep.yaml"), train=False)
    assert all(gr.verified for gr in sol.gradients.values())
    assert any("dl/d" in gr.expr for gr in sol.gradients.values())


# ====================================================================== typed results
def test_solution_gradients_carry_their_expressions():
    from derivkit.solve import Gradient, solve
    sol = solved(MLP)
    g, d = sol.graph, sol.derivation
    for name, gr in sol.gradients.items():
        assert isinstance(gr, Gradient)
        assert gr.full == d.full[name] and gr.named == d.named[name] and gr.chain == d.chain[name]
        assert gr.shape == g.shape(name)
        assert gr.expr == to_ascii(gr.named) and gr.chain_expr == to_ascii(gr.chain)
        assert gr.latex == to_latex(gr.named, g.problem.latex)
        doc = gr.to_json()
        assert list(doc) == ["latex", "expr", "chain_latex", "chain_expr", "shape", "role", "verified",
                             "max_rel_error"]
        assert doc["verified"] is gr.verified and doc["max_rel_error"] == gr.error
    assert sol.gradients["V"].full == P(g, "(y - t) @ h.T")


def test_solve_takes_a_problem_object_as_well_as_a_path():
    from derivkit.problem import load_problem
    from derivkit.solve import solve
    by_path = solve(str(MLP), train=False).to_json()
    by_problem = solve(load_problem(MLP), train=False).to_json()
    by_path.pop("timings"), by_problem.pop("timings")
    assert by_problem == by_path
