"""The SymPy ground truth and the proof: what it accepts, what it must reject."""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import sympy

from helpers import ROOT, graph_from_text, loaded, no_hang, problem_params, verifier
from strategies import tanh_mlp_text as mlp_text
from derivkit.expr import num
from derivkit.parse import parse_expression
from derivkit.verify import TOLERANCE, Derivative, Verifier, compare, leaf_symbols, proof_dims, rel_error, truth

MLP = ROOT / "problems" / "mlp_sigmoid_softmax_ce.yaml"
SEED000 = ROOT / "problems" / "sigmoid_output_nll_saturation.yaml"


def P(g, text):
    return parse_expression(text, g.scope(), None)


def test_leaf_symbols_are_one_per_entry():
    W = leaf_symbols("W", (2, 3), None)
    assert W.shape == (2, 3) and str(W[1, 2]) == "W_1_2" and W[0, 0].is_real
    assert leaf_symbols("s", (), None).is_real
    t = leaf_symbols("t", (), "class")
    assert t.is_integer and t.is_nonnegative


def test_truth_has_the_shape_of_of_then_wrt():
    _, g, _ = loaded(MLP)
    exact, fresh = truth(g, "l", "W")
    assert exact.shape == (4, 3) and fresh is None          # W is a leaf
    exact, fresh = truth(g, "y", "o")
    assert exact.shape == (3, 3) and fresh is not None       # o is a node: fresh symbols
    # ∂y_i/∂o_j = y_i (δ_ij − y_j), checked entrywise symbolically
    o = fresh
    e = [sympy.exp(v) for v in o]
    y = [v / sum(e) for v in e]
    for i in range(3):
        for j in range(3):
            want = y[i] * ((1 if i == j else 0) - y[j])
            assert sympy.simplify(exact[i, j] - want) == 0


def test_both_ground_truths_agree_entry_by_entry():
    _, g, _ = loaded(MLP)
    diff, chain = Verifier(g, method="diff"), Verifier(g, method="chain")
    for of, wrt in [("l", "W"), ("l", "o"), ("y", "o"), ("h", "z"), ("l", "x")]:
        for a, b in zip(diff.exact_at(of, wrt), chain.exact_at(of, wrt)):
            assert a.shape == b.shape
            assert rel_error(a, b) < 1e-30


def test_correct_forms_are_proved_and_near_misses_are_not():
    _, g, _ = loaded(MLP)
    v = verifier(MLP)
    assert v.error(P(g, "y - t"), "l", "o") <= TOLERANCE
    # off by one part in 10^12: float64 tolerances would accept it, the 40-digit proof must not
    almost = num(1 + 1e-12) * P(g, "y - t")
    assert v.error(almost, "l", "o") > TOLERANCE
    assert v.error(P(g, "y - t + 1e-9"), "l", "o") > TOLERANCE


def test_the_proof_uses_several_points():
    _, g, _ = loaded(MLP)
    v = verifier(MLP)
    assert len(v.points) >= 2
    xs = [tuple(np.ravel(p.floats["x"])) for p in v.points]
    assert len(set(xs)) == len(xs)


def test_compare_two_expressions():
    _, g, _ = loaded(MLP)
    v = verifier(MLP)
    assert compare(P(g, "softmax(o)"), P(g, "y"), v) <= TOLERANCE
    assert compare(P(g, "sigmoid_prime(z)"), P(g, "h * (1 - h)"), v) <= TOLERANCE
    assert compare(P(g, "diag(y) @ o"), P(g, "y * o"), v) <= TOLERANCE
    assert compare(P(g, "h"), P(g, "1 - h"), v) > TOLERANCE
    assert compare(P(g, "V @ h"), P(g, "o"), v) > TOLERANCE           # forgot + c
    assert compare(P(g, "h"), P(g, "y"), v) == math.inf              # shapes H and C cannot match
    assert compare(P(g, "y - t"), Derivative("l", "o"), v) <= TOLERANCE
    assert compare(Derivative("l", "o"), P(g, "y - t"), v) <= TOLERANCE


def test_a_declared_domain_is_where_equivalence_is_judged():
    """dJ/dz = -(2y - 1)(1 - σ((2y - 1) z)) equals σ(z) − y for y in {0, 1} only."""
    _, g, _ = loaded(SEED000)
    v = verifier(SEED000)
    assert {float(p.floats["y"]) for p in v.points} <= {0.0, 1.0}
    assert v.error(P(g, "sigmoid(z) - y"), "J", "z") <= TOLERANCE
    assert v.error(P(g, "sigmoid(z) + y - 1"), "J", "z") > TOLERANCE     # never equal on {0, 1}
    assert v.error(P(g, "y - sigmoid(z)"), "J", "z") > TOLERANCE
    # dJ/dw = dJ/dz h
    assert v.error(P(g, "(sigmoid(z) - y) * h"), "J", "w") <= TOLERANCE


LOG_DOMAIN = """\
id: log-domain
dims: {D: 2}
symbols:
  x: {shape: [D], role: input}
  w: {shape: [D], role: param}
loss:
  l: sum(log(w * x) + sqrt(w))
"""


def test_points_move_to_the_positive_domain_when_values_are_not_real():
    g, d = graph_from_text(LOG_DOMAIN)
    v = Verifier(g)
    for p in v.points:
        assert np.all(p.floats["w"] > 0) and np.all(p.floats["x"] > 0)
    assert v.error(d.full["w"], "l", "w") <= TOLERANCE
    assert v.error(P(g, "1 / w + 1 / (2 * sqrt(w))"), "l", "w") <= TOLERANCE
    assert v.error(P(g, "1 / w + 1 / sqrt(w)"), "l", "w") > TOLERANCE


def test_rel_error():
    a = np.array([mpmath.mpf(1), mpmath.mpf(200)], dtype=object)
    b = np.array([mpmath.mpf(1), mpmath.mpf(100)], dtype=object)
    assert rel_error(a, a) == 0
    assert rel_error(a, b) == pytest.approx(1.0)
    tiny = np.array([mpmath.mpf("1e-30")], dtype=object)
    assert rel_error(tiny, np.array([mpmath.mpf(0)], dtype=object)) == pytest.approx(1e-30)
    assert rel_error(np.array([mpmath.nan], dtype=object), np.array([mpmath.mpf(0)], dtype=object)) == math.inf
    assert rel_error(np.array([mpmath.inf], dtype=object), np.array([mpmath.inf], dtype=object)) == math.inf


def test_class_index_targets_get_integer_values_at_the_points():
    path = ROOT / "problems" / "multinomial_regression_index.yaml"
    _, g, d = loaded(path)
    v = verifier(path)
    for p in v.points:
        t = p.floats["t"]
        assert int(t) == t and 0 <= int(t) < g.dims["C"]
    assert v.error(P(g, "onehot(t, C) - p"), "ell", "u") <= TOLERANCE
    assert v.error(P(g, "p - onehot(t, C)"), "ell", "u") > TOLERANCE


def test_relu_ground_truth():
    path = ROOT / "problems" / "relu_regression.yaml"
    _, g, d = loaded(path)
    v = verifier(path)
    assert v.error(P(g, "2 * (W2.T @ (y_hat - y)) * relu_prime(z1)"), "l", "z1") <= TOLERANCE
    assert v.error(P(g, "2 * (W2.T @ (y_hat - y))"), "l", "z1") > TOLERANCE or \
        all(np.all(p.floats["W1"] @ p.floats["x"] + p.floats["b1"] > 0) for p in v.points)


# ====================================================================== sizes
@pytest.mark.parametrize("path", problem_params())
def test_every_dim_may_be_one(path):
    """A single output, hidden unit or input: every gradient still verified (K = 1 crashed once)."""
    import dataclasses
    from derivkit.derive import derive
    from derivkit.graph import build_graph
    from derivkit.problem import load_problem
    p = load_problem(path)
    for dim in p.dims:
        g = build_graph(dataclasses.replace(p, dims={**p.dims, dim: 1}))
        d, v = derive(g), Verifier(g, points=2)
        assert v.dims[dim] == 1
        for name in g.names:
            if g.kind(name) != "class":
                assert v.error(d.full[name], g.loss, name) <= TOLERANCE, (dim, name)


SINGLE_OUTPUT = """\
id: single-output
dims: {D: 3, H: 4, K: 1}
symbols:
  x: {shape: [D], role: input}
  y: {shape: [K], role: target}
  W1: {shape: [H, D], role: param}
  W2: {shape: [H, K], role: param}
forward:
  z3: tanh(W1 @ x)
  z4: W2.T @ z3
loss:
  l: sum((z4 - y) ** 2)
"""


def test_single_output_network_is_verified():
    g, d = graph_from_text(SINGLE_OUTPUT)
    v = Verifier(g)
    for name in g.names:
        assert v.error(d.full[name], g.loss, name) <= TOLERANCE, name
    assert v.error(P(g, "2 * (z4 - y)"), "l", "z4") <= TOLERANCE
    assert v.error(P(g, "(z4 - y)"), "l", "z4") > TOLERANCE


def test_proof_sizes_are_capped_where_literal_indices_allow():
    g, _ = graph_from_text(mlp_text(1, 40))
    assert proof_dims(g) == {"D": 3, "H": 3, "C": 3}
    g, _ = graph_from_text(LOG_DOMAIN.replace("D: 2", "D: 50").replace("sqrt(w))", "sqrt(w)) + x[7]"))
    assert proof_dims(g) == {"D": 8}


def test_ground_truth_work_is_linear_in_depth():
    """Kernels are shared by every layer of the same sizes; the tape grows by a constant per layer."""
    sizes = {}
    for depth in (4, 8, 16):
        g, d = graph_from_text(mlp_text(depth, 40))
        v = Verifier(g, points=1)
        assert v.error(d.full["W1"], g.loss, "W1") <= TOLERANCE
        sizes[depth] = (len(v._kernels), len(v._tapes[0].steps))
    assert sizes[4][0] == sizes[8][0] == sizes[16][0]
    assert sizes[16][1] - sizes[8][1] == 2 * (sizes[8][1] - sizes[4][1])


@pytest.mark.slow
def test_deep_and_wide_networks_are_verified_quickly():
    g, d = graph_from_text(mlp_text(20, 64))
    with no_hang(50):
        v = Verifier(g)
        assert all(v.error(d.full[n], g.loss, n) <= TOLERANCE for n in g.names)


def test_compare_lays_out_a_ground_truth_like_the_other_side():
    _, g, _ = loaded(MLP)
    v = verifier(MLP)
    assert compare(P(g, "(y - t).T"), Derivative("l", "o"), v) <= TOLERANCE     # numerator layout
    assert compare(P(g, "(y - t).T"), P(g, "y - t"), v) == math.inf            # two answers: shapes differ
    assert compare(P(g, "sum(y)"), P(g, "1"), v) <= TOLERANCE
    assert compare(P(g, "0 * y"), P(g, "0"), v) == 0.0                          # a scalar is broadcast
    assert compare(P(g, "y[0] - t[0]"), Derivative("l", "o", (0,)), v) <= TOLERANCE
    assert compare(P(g, "y[1] - t[1]"), Derivative("l", "o", (0,)), v) > TOLERANCE
