"""Tests for derivkit.gradcheck: derived gradients against central finite differences."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import derivkit.gradcheck as gc
from conftest import ALL_PROBLEMS, graph_from_text, loaded, mlp_problems, problem_params
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
