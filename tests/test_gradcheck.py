"""Tests for derivkit.gradcheck: derived gradients against central finite differences."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import derivkit.gradcheck as gc
from helpers import ALL_PROBLEMS, graph_from_text, loaded, problem_params
from strategies import mlp_problems
from derivkit.expr import ONE, make, num
from derivkit.gradcheck import THRESHOLD, checked_leaves, gradcheck

SEED_MLP = [p for p in ALL_PROBLEMS if p.name == "mlp_sigmoid_softmax_ce.yaml"][0]

SQUARE = """
id: square
title: square weights, so a transposed gradient has the right shape
dims: {D: 3}
symbols:
  x: {shape: [D], role: input}
  y: {shape: [D], role: target, kind: real}
  W: {shape: [D, D], role: param}
  b: {shape: [D], role: param}
forward:
  z: W @ x + b
  h: tanh(z)
loss:
  l: 0.5 * sum((h - y)**2)
"""

RELU_INPUT = """
id: relu-input
title: relu straight on the input
dims: {D: 4}
symbols:
  x: {shape: [D], role: input}
  w: {shape: [D], role: param}
forward:
  h: relu(x)
loss:
  l: sum(w * h)
"""


def corrupted(d, name, change):
    d2 = copy.copy(d)
    d2.full = dict(d.full)
    d2.full[name] = change(d.full[name])
    return d2


# ---------------------------------------------------------------------------- correct derivations pass
@pytest.mark.parametrize("path", problem_params())
def test_every_problem_passes(path):
    _, g, d = loaded(path)
    r = gradcheck(g, d)
    assert r.passed, r
    assert r.max_rel_error <= THRESHOLD
    assert r.points == 3
    assert set(r.per_leaf) == set(checked_leaves(g))
    assert set(r.per_node) == {n for n in g.nodes if n != g.loss}


def test_seed_network_error_is_tiny_and_both_measures_are_reported():
    _, g, d = loaded(SEED_MLP)
    r = gradcheck(g, d, points=5, seed=3)
    assert r.max_rel_error < THRESHOLD / 5
    assert 0 <= r.max_entry_rel_error < 1e-3
    assert r.threshold == 1e-6 and r.eps == 1e-6 and r.points == 5
    json.dumps(r.to_json(), allow_nan=False)


def test_checks_at_larger_sizes():
    _, g, d = loaded(SEED_MLP)
    r = gradcheck(g, d, dims={"D": 6, "H": 9, "C": 5}, points=1)
    assert r.passed, r


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mlp_problems())
def test_generated_mlps_pass(text):
    g, d = graph_from_text(text)
    r = gradcheck(g, d, points=2)
    assert r.passed, (text, r)


def test_deterministic_for_a_seed():
    _, g, d = loaded(SEED_MLP)
    assert gradcheck(g, d, seed=7) == gradcheck(g, d, seed=7)


# ---------------------------------------------------------------------------- wrong derivations fail
@pytest.mark.parametrize("name,change", [
    ("W", lambda e: -e),                    # sign
    ("V", lambda e: e * num(2)),            # scale
    ("b", lambda e: e * num(0)),            # dropped entirely
    ("c", lambda e: e + ONE),               # an extra term
    ("h", lambda e: -e),                    # a node's gradient
    ("x", lambda e: e * num(1.001)),        # 0.1 % off is far above the threshold
])
def test_corrupted_gradient_fails(name, change):
    _, g, d = loaded(SEED_MLP)
    r = gradcheck(g, corrupted(d, name, change))
    assert not r.passed
    assert r.worst == name
    assert r.max_rel_error > 1e-4
    errors = {**r.per_leaf, **r.per_node}
    assert all(err <= THRESHOLD for other, err in errors.items() if other != name)


def test_transposed_gradient_fails():
    g, d = graph_from_text(SQUARE)
    assert gradcheck(g, d).passed
    r = gradcheck(g, corrupted(d, "W", lambda e: e.T))
    assert not r.passed and r.worst == "W"


def test_wrong_shape_is_the_largest_error():
    _, g, d = loaded(SEED_MLP)
    r = gradcheck(g, corrupted(d, "c", lambda e: e.T))     # a row where a column belongs
    assert not r.passed and r.per_leaf["c"] == 1.0
    r = gradcheck(g, corrupted(d, "W", lambda e: make("sum", e)))   # a scalar for a matrix
    assert not r.passed and r.per_leaf["W"] > 0.1


# ---------------------------------------------------------------------------- what is perturbed
def test_discrete_targets_and_finite_domains_are_skipped():
    for path in ALL_PROBLEMS:
        problem, g, _ = loaded(path)
        leaves = checked_leaves(g)
        for name, spec in problem.symbols.items():
            discrete = spec.kind in ("class", "onehot", "binary") or bool(spec.values)
            assert (name in leaves) == (not discrete), (path.name, name)


def test_real_targets_and_inputs_are_checked():
    g, d = graph_from_text(SQUARE)
    r = gradcheck(g, d)
    assert {"x", "y", "W", "b"} == set(r.per_leaf)


def test_kinks_are_avoided(monkeypatch):
    g, d = graph_from_text(RELU_INPUT)
    monkeypatch.setattr(gc, "KINK", 0.3)
    seen = []
    real = gc._draw

    def spy(*args):
        values = real(*args)
        seen.append(values)
        return values
    monkeypatch.setattr(gc, "_draw", spy)
    r = gradcheck(g, d, points=4)
    assert r.passed and r.points == 4
    assert any(v is not None for v in seen)
    for values in filter(None, seen):
        assert np.min(np.abs(values["x"])) >= 0.3


def test_no_usable_point_fails(monkeypatch):
    g, d = graph_from_text(RELU_INPUT)
    monkeypatch.setattr(gc, "KINK", 1e9)          # every point is "at a kink"
    r = gradcheck(g, d, points=2)
    assert not r.passed and r.points == 0 and r.max_rel_error == 1.0


@pytest.mark.parametrize("loss", ["relu(0) * w", "abs(w - w) + w", "relu(x - x) * w"])
def test_a_kink_that_never_moves_is_no_reason_to_fail(loss):
    """relu(0) is constant and abs(w - w) is 0 at every point: no step crosses them."""
    g, d = graph_from_text(f"""
id: fixed-kink
title: a kink whose input never moves
symbols:
  x: {{shape: [], role: input}}
  w: {{shape: [], role: param}}
loss:
  l: {loss}
""")
    r = gradcheck(g, d)
    assert r.passed and r.points == 3, r


def test_loss_needing_positive_inputs():
    g, d = graph_from_text("""
id: log-input
title: log of the input
dims: {D: 3}
symbols:
  x: {shape: [D], role: input}
  w: {shape: [D], role: param}
loss:
  l: sum(w * log(x))
""")
    r = gradcheck(g, d)
    assert r.passed and r.points == 3


def test_nodes_can_be_left_out():
    _, g, d = loaded(SEED_MLP)
    r = gradcheck(g, corrupted(d, "h", lambda e: -e), nodes=False)
    assert r.passed and r.per_node == {}


# ---------------------------------------------------------------------------- random networks
HEADS = ("softmax_ce", "temperature", "sigmoid_bce", "squared", "log_softmax")


def network_text(hidden: list[str], head: str, sizes: list[int], biases: bool, constant: bool) -> str:
    """YAML text of a small network: hidden layers with these activations, then an output head.

    Heads: softmax + cross-entropy, softmax of logits over a learnt temperature (``o / tau``),
    sigmoid + binary cross-entropy, squared error, log-softmax; ``constant`` adds 1e6 to the loss.
    """
    D, *Hs, C = sizes
    dims = {"D": D, "C": C, **{f"H{i}": h for i, h in enumerate(Hs)}}
    target = {"softmax_ce": "onehot", "temperature": "onehot", "log_softmax": "onehot",
              "sigmoid_bce": "binary", "squared": "real"}[head]
    symbols = ["  x: {shape: [D], role: input}", f"  t: {{shape: [C], role: target, kind: {target}}}"]
    forward = []
    prev = "x"
    for i, act in enumerate(hidden):
        rows, cols = f"H{i}", ("D" if i == 0 else f"H{i - 1}")
        symbols.append(f"  W{i}: {{shape: [{rows}, {cols}], role: param}}")
        pre = f"W{i} @ {prev}"
        if biases:
            symbols.append(f"  b{i}: {{shape: [{rows}], role: param}}")
            pre += f" + b{i}"
        forward += [f"  z{i}: {pre}", f"  h{i}: {act}(z{i})"]
        prev = f"h{i}"
    symbols.append(f"  V: {{shape: [C, {'D' if not hidden else f'H{len(hidden) - 1}'}], role: param}}")
    forward.append(f"  o: V @ {prev}")
    if head == "softmax_ce":
        forward.append("  y: softmax(o)")
        loss = "-sum(t * log(y))"
    elif head == "temperature":
        symbols.append("  tau: {shape: [], role: param}")
        forward.append("  y: softmax(o / tau)")
        loss = "-sum(t * log(y))"
    elif head == "log_softmax":
        forward.append("  y: log_softmax(o)")
        loss = "-sum(t * y)"
    elif head == "sigmoid_bce":
        forward.append("  y: sigmoid(o)")
        loss = "-sum(t * log(y) + (1 - t) * log(1 - y))"
    else:
        loss = "0.5 * sum((o - t)**2)"
    if constant:
        loss += " + 1000000"
    return "\n".join([
        "id: generated", "title: a generated network",
        "dims: {" + ", ".join(f"{k}: {v}" for k, v in dims.items()) + "}",
        "symbols:", *symbols, "forward:", *forward, "loss:", f"  l: {loss}", ""])


@st.composite
def networks(draw, activations=("sigmoid", "tanh", "relu", "softplus"), heads=HEADS, square: bool = False,
             widths=(2, 3)):
    depth = draw(st.integers(0 if not square else 1, 2))
    hidden = [draw(st.sampled_from(activations)) for _ in range(depth)]
    sizes = [draw(st.integers(*widths)) for _ in range(depth + 2)]
    if square:
        sizes[1] = sizes[0]             # W0 square, so a transposed gradient has the right shape
    return network_text(hidden, draw(st.sampled_from(heads)), sizes, draw(st.booleans()), draw(st.booleans()))


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks(), st.integers(0, 10**6))
def test_no_false_alarm_on_random_networks(text, seed):
    g, d = graph_from_text(text)
    r = gradcheck(g, d, seed=seed)
    assert r.passed and r.points == 3, (text, seed, r)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(("sigmoid", "tanh", "relu", "softplus")), st.booleans(), st.integers(0, 10**6))
@example("sigmoid", False, 116164)      # tau = 0.0009: a softmax output of 1e-314, ∂l/∂y = -inf
def test_learnt_temperature_is_no_false_alarm(act, constant, seed):
    """The case a fixed step of 1e-6 got wrong: y = softmax(o / tau) with y ≈ 3e-5 at a drawn point."""
    g, d = graph_from_text(network_text([act], "temperature", [3, 3, 4], True, constant))
    r = gradcheck(g, d, seed=seed, points=4)
    assert r.passed and r.points == 4, (act, seed, r)


def test_a_large_constant_in_the_loss_is_no_false_alarm():
    g, d = graph_from_text(network_text(["tanh"], "softmax_ce", [3, 3, 3], True, constant=True))
    r = gradcheck(g, d, points=5)
    assert r.passed, r


def _drop_a_factor(e):
    """``e`` with its outermost elementwise product replaced by its first factor."""
    from derivkit.expr import substitute
    for node in reversed(list(e.walk())):
        if node.op == "mul" and node.args[0].shape == node.shape and node.args[1].op != "num":
            return substitute(e, {node: node.args[0]})
    raise AssertionError("no product to drop a factor from")


MUTATIONS = {
    "sign": lambda e: -e,
    "scaled by 1.01": lambda e: e * num(1.01),
    "a factor dropped": _drop_a_factor,
    "transposed": lambda e: e.T,
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks(activations=("sigmoid", "tanh", "softplus"), square=True), st.sampled_from(sorted(MUTATIONS)),
       st.integers(0, 10**6))
def test_a_wrong_gradient_is_always_flagged(text, mutation, seed):
    g, d = graph_from_text(text)
    r = gradcheck(g, corrupted(d, "W0", MUTATIONS[mutation]), seed=seed)
    assert not r.passed and r.worst == "W0", (text, mutation, seed, r)
    assert r.per_leaf["W0"] > 100 * THRESHOLD


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks(activations=("sigmoid", "tanh", "softplus"), square=True, widths=(5, 9)),
       st.sampled_from(sorted(MUTATIONS)), st.integers(0, 10**6))
def test_a_wrong_gradient_is_flagged_along_random_directions(text, mutation, seed):
    """W0 has more than COORDINATES entries here, so it is checked along random directions only."""
    g, d = graph_from_text(text)
    assert g.problem.dims["D"] ** 2 > gc.COORDINATES
    r = gradcheck(g, corrupted(d, "W0", MUTATIONS[mutation]), seed=seed)
    assert not r.passed and r.worst == "W0", (text, mutation, seed, r)
    assert r.per_leaf["W0"] > 100 * THRESHOLD


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks(widths=(5, 12)), st.integers(0, 10**6))
def test_no_false_alarm_along_random_directions(text, seed):
    g, d = graph_from_text(text)
    r = gradcheck(g, d, seed=seed)
    assert r.passed and r.points == 3, (text, seed, r)


def test_cost_per_leaf_does_not_grow_with_its_size(monkeypatch):
    """A 64 × 64 weight costs as many loss evaluations as a 17-entry one: DIRECTIONS of them."""
    rows = {}
    real = gc._richardson

    def spy(prog, values, name, u, *rest):
        rows[name] = max(rows.get(name, 0), len(u))
        return real(prog, values, name, u, *rest)
    monkeypatch.setattr(gc, "_richardson", spy)
    g, d = graph_from_text(network_text(["tanh"], "softmax_ce", [64, 64, 64], True, False))
    assert gradcheck(g, d, points=1).passed
    assert rows["W0"] == rows["V"] == rows["b0"] == rows["x"] == gc.DIRECTIONS
    g, d = graph_from_text(network_text(["tanh"], "softmax_ce", [3, 4, 3], True, False))
    rows.clear()
    assert gradcheck(g, d, points=1).passed
    assert rows["W0"] == 12 and rows["b0"] == 4        # small leaves: entry by entry


SOFTMAXES = """
id: softmaxes
dims: {C: %d}
symbols:
  y0: {shape: [C], role: input}
  t: {shape: [C], role: target, kind: onehot}
forward:
%s
loss:
  l: -sum(t * log(y%d))
"""


@pytest.mark.parametrize("width,depth", [(8, 5), (16, 5), (64, 1)])
def test_stacked_softmaxes_and_wide_outputs_are_no_false_alarm(width, depth):
    """Softmax outputs near 0 under a log: a step must not reach past the singularity."""
    forward = "\n".join(f"  y{i}: softmax(y{i - 1})" for i in range(1, depth + 1))
    g, d = graph_from_text(SOFTMAXES % (width, forward, depth))
    for seed in range(3):
        r = gradcheck(g, d, seed=seed)
        assert r.passed and r.points == 3, (seed, r)


def test_a_tiny_softmax_output_under_a_log_is_checked(monkeypatch):
    """y's check along random directions survives entries far below the step's floor."""
    g, d = graph_from_text(network_text(["tanh"], "softmax_ce", [4, 4, 40], True, False))
    real = gc._draw

    def scaled(graph, progs, dims, rng, attempt):
        values = real(graph, progs, dims, rng, attempt)
        if values is None:
            return None
        values = {k: v for k, v in values.items() if k in graph.leaves}
        values["V"] = values["V"] * 30            # logits spread ±100: most of y below 1e-20
        values = {**values, **progs.forward.run(values)}
        return values if np.min(values["y"]) < 1e-20 and np.isfinite(values["l"]) else None
    monkeypatch.setattr(gc, "_draw", scaled)
    r = gradcheck(g, d)
    assert r.passed and r.points == 3, r


def _repeated(depth: int, width: int) -> str:
    forward = "\n".join(f"  h{i}: tanh(W @ h{i - 1})" for i in range(1, depth + 1))
    return (f"id: shared\ntitle: one W, {depth} times\ndims: {{D: {width}}}\nsymbols:\n"
            f"  h0: {{shape: [D], role: input}}\n  W: {{shape: [D, D], role: param}}\n"
            f"forward:\n{forward}\nloss:\n  l: sum(h{depth} ** 2)\n")


@pytest.mark.parametrize("depth,width", [(60, 64), (12, 64)])
def test_deep_wide_networks_are_no_false_alarm(depth, width):
    """Drawn with entries of 0.5, such a network is chaotic (the gradient grows ~4x per layer)
    and a step of 1e-6 bends; weights of std 1/sqrt(width) and smaller steps keep it checkable."""
    g, d = graph_from_text(_repeated(depth, width))
    r = gradcheck(g, d)
    assert r.passed and r.points == 3, r


def test_wide_weights_are_drawn_at_unit_gain(monkeypatch):
    seen = []
    real = gc._richardson

    def spy(prog, values, name, *rest):
        if name == "W":
            seen.append(np.std(values["W"]))
        return real(prog, values, name, *rest)
    monkeypatch.setattr(gc, "_richardson", spy)
    g, d = graph_from_text(_repeated(2, 64))
    assert gradcheck(g, d, points=1).passed
    assert seen and all(0.5 / 8 < s < 2 / 8 for s in seen)
