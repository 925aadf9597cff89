"""Tests for derivkit.training: compiled derived gradients, check: sections, training runs, curves."""
from __future__ import annotations

import csv
import gzip
import json
import math
import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import LOCATED, ROOT, SEED_PROBLEMS, graph_from_text, loaded, locate
from derivkit.errors import UserError, UserErrors
from derivkit.expr import concrete
from derivkit.numeric import Program, forward_values
from derivkit.training import (
    TrainResult, compile_problem, init_params, planned_epochs, plot_curve, settings_of, run_check, write_curve,
)

PROBLEMS = ROOT / "problems"
TEST_PROBLEMS = ROOT / "tests" / "problems"

# The seed-001 network (sigmoid hidden layer, softmax + cross-entropy, one-hot target).
NETWORK = """\
id: net
title: seed network
dims: {D: 3, H: 4, C: 3}
symbols:
  x: {shape: [D], role: input}
  t: {shape: [C], role: target, kind: onehot}
  W: {shape: [H, D], role: param}
  b: {shape: [H], role: param}
  V: {shape: [C, H], role: param}
  c: {shape: [C], role: param}
forward:
  z: W @ x + b
  h: sigmoid(z)
  o: V @ h + c
  y: softmax(o)
loss:
  l: -sum(t * log(y))
"""

# A regression network in the seed-002 layout (transposed weights), swept over widths.
REGRESSION = """\
id: reg
title: sigmoid regression
dims: {D: 2, H: 3, K: 2}
symbols:
  x: {shape: [D], role: input}
  y: {shape: [K], role: target, kind: real}
  W1: {shape: [D, H], role: param}
  b1: {shape: [H], role: param}
  W2: {shape: [H, K], role: param}
  b2: {shape: [K], role: param}
forward:
  z1: W1.T @ x + b1
  h: sigmoid(z1)
  y_hat: W2.T @ h + b2
loss:
  l: sum((y - y_hat)**2)
"""

SMALL_CHECK = """\
check:
  dims: {H: 8}
  data: {generator: ellipse_circle, n: 300, seed: 0}
  train: {optimizer: sgd, lr: 0.05, batch_size: 4, epochs: 4, seed: 0}
"""


def problem(check: str, network: str = NETWORK, filename: str = "p.yaml"):
    return graph_from_text(network + check, filename)


def trained(check: str, network: str = NETWORK, **kw) -> TrainResult:
    g, d = problem(check, network)
    return run_check(g, d, **kw)


def run(check: str, network: str = NETWORK, **kw) -> dict:
    """The contract's ``train`` dictionary of a run."""
    return trained(check, network, **kw).to_json()


def with_train(extra: str, check: str = SMALL_CHECK) -> str:
    """SMALL_CHECK with more check.train options."""
    return check.replace("epochs: 4, seed: 0}", f"epochs: 4, seed: 0, {extra}}}")


def falls(curve) -> bool:
    return curve[-1] < curve[0]


# ---------------------------------------------------------------------------- compiled gradients
def _per_sample_sum(g, d, dims, values, batched, params):
    """Σ over the samples of the derived gradients, one sample at a time (no batching)."""
    n = len(next(values[k] for k in batched))
    loss, grads = 0.0, {p: 0.0 for p in params}
    for i in range(n):
        leaves = {k: (v[i] if k in batched else v) for k, v in values.items()}
        nodes = forward_values(g, leaves, dims)
        out = Program({p: d.full[p] for p in params}, dims).run({**leaves, **nodes})
        loss += float(nodes[g.loss])
        for p in params:
            grads[p] = grads[p] + np.broadcast_to(out[p], np.shape(values[p]))
    return loss, grads


@pytest.mark.parametrize("name", [
    "problems/mlp_sigmoid_softmax_ce.yaml", "problems/sigmoid_chain_squared_error.yaml",
    "problems/relu_regression.yaml", "problems/sigmoid_bce_classifier.yaml",
    "problems/two_layer_classifier_index.yaml", "tests/problems/class_log_softmax.yaml",
    "tests/problems/scalar_chain.yaml", "tests/problems/three_layer_mlp.yaml",
    "tests/problems/softsign_exp_sqrt_abs.yaml", "tests/problems/train_moons_tanh_logistic.yaml",
])
def test_minibatch_step_is_the_sum_of_per_sample_gradients(name):
    problem_, g, d = loaded(ROOT / name)
    dims = {k: v + 1 for k, v in g.dims.items()}       # not the verification sizes
    comp = compile_problem(g, d, dims)
    rng = np.random.default_rng(1)
    from derivkit.numeric import random_leaves
    samples = [random_leaves(g, rng, dims) for _ in range(5)]
    batched = set(comp.batched)
    values = {k: (np.stack([np.asarray(s[k]) for s in samples]) if k in batched else samples[0][k])
              for k in samples[0]}
    loss, grads = comp.step(values)
    ref_loss, ref = _per_sample_sum(g, d, dims, values, batched, comp.params)
    assert loss == pytest.approx(ref_loss, rel=1e-10)
    for p in comp.params:
        assert np.shape(grads[p]) == concrete(g.shape(p), dims)
        np.testing.assert_allclose(grads[p], ref[p], rtol=1e-9, atol=1e-12)


def test_a_gradient_free_of_data_is_summed_over_the_batch():
    g, d = graph_from_text("""\
id: pen
title: a penalised parameter that never meets the data
dims: {D: 2}
symbols:
  x: {shape: [D], role: input}
  y: {shape: [], role: target, kind: real}
  w: {shape: [D], role: param}
  u: {shape: [D], role: param}
loss:
  l: (w.T @ x - y)**2 + sum(u * u)
""")
    comp = compile_problem(g, d)
    assert comp.data_free == {"u"}
    u = np.array([1.0, -2.0])
    _, grads = comp.step({"w": np.zeros(2), "u": u, "x": np.ones((6, 2)), "y": np.zeros(6)})
    np.testing.assert_allclose(grads["u"], 6 * 2 * u)


def test_compile_marks_inputs_and_targets_as_batched():
    _, g, d = loaded(PROBLEMS / "mlp_sigmoid_softmax_ce.yaml")
    comp = compile_problem(g, d, {"D": 784, "H": 300, "C": 10})
    assert comp.batched == {"x", "t"} and comp.params == ["W", "b", "V", "c"]
    # the sum of outer products is one matrix product, not a (B, H, D) tensor
    kinds = [s.expr.attr for s in comp.program.steps if s.expr.op == "batch_sum"]
    assert kinds.count("outer") == 2


# ---------------------------------------------------------------------------- training
def test_seed_network_loss_falls_on_ellipse_circle():
    r = run(SMALL_CHECK)
    assert falls(r["loss"]) and falls(r["val_loss"])
    assert len(r["loss"]) == len(r["val_loss"]) == 4
    assert r["final_loss"] == r["loss"][-1]
    assert 0.6 < r["accuracy"] <= 1.0
    assert r["passed"] is True and r["expect"] == {}
    assert r["accuracy_rule"] == "argmax of y"
    assert r["data"]["n_train"] == 240 and r["data"]["n_val"] == 60
    assert r["dims"] == {"D": 2, "H": 8, "C": 2}
    json.dumps(r, allow_nan=False)


@pytest.mark.slow
def test_seed_problem_check_section():
    """problems/mlp_sigmoid_softmax_ce.yaml: 4 learning rates x 3 repeats, 5 epochs of per-sample SGD."""
    _, g, d = loaded(PROBLEMS / "mlp_sigmoid_softmax_ce.yaml")
    r = run_check(g, d).to_json()
    assert [row["lr"] for row in r["sweep"]] == [0.001, 0.003, 0.01, 0.03]
    assert len(r["runs"]) == 12 and len(r["mean_loss"]) == len(r["std_loss"]) == 5
    assert falls(r["loss"])
    for lr in (0.001, 0.003, 0.01, 0.03):
        for run_ in (x for x in r["runs"] if x["lr"] == lr):
            assert falls(run_["loss"]), (lr, run_["loss"])


def _check_problems():
    out = []
    for path in SEED_PROBLEMS + sorted(TEST_PROBLEMS.glob("*.yaml")):
        problem_, _, _ = loaded(path)
        if problem_.check:
            slow = path.name == "mlp_sigmoid_softmax_ce.yaml"     # 12 runs of per-sample SGD, ~4 s
            out.append(pytest.param(path, id=path.name, marks=[pytest.mark.slow] if slow else []))
    return out


@pytest.mark.parametrize("path", _check_problems())
def test_every_check_section_trains_with_falling_loss(path):
    problem_, g, d = loaded(path)
    data = problem_.check.get("data", {})
    if data.get("dataset") == "digits":
        pytest.importorskip("sklearn")
    r = run_check(g, d).to_json()
    assert falls(r["loss"]), r["loss"]
    assert r["passed"], r["expect"]


def test_moons_tanh_logistic_reaches_95_percent():
    _, g, d = loaded(TEST_PROBLEMS / "train_moons_tanh_logistic.yaml")
    r = run_check(g, d).to_json()
    assert r["accuracy"] >= 0.95 and r["passed"]
    assert r["expect"]["accuracy_above"] == {"limit": 0.95, "value": r["accuracy"], "met": True}
    assert r["accuracy_rule"] == "the label with the smaller loss"


def test_digits_seed_network_reaches_95_percent():
    pytest.importorskip("sklearn")
    _, g, d = loaded(TEST_PROBLEMS / "train_digits_sigmoid_softmax.yaml")
    r = run_check(g, d).to_json()
    assert r["accuracy"] >= 0.95 and r["passed"]
    assert r["dims"]["D"] == 64 and r["dims"]["C"] == 10


def test_binary_vector_target_on_two_classes_uses_one_output():
    r = run("""\
check:
  dims: {H: 6}
  data: {generator: xor, n: 400, seed: 1}
  train: {lr: 0.5, batch_size: 8, epochs: 30, seed: 0}
""", network=(PROBLEMS / "sigmoid_bce_classifier.yaml").read_text().split("\nlatex:")[0] + "\n")
    assert r["dims"]["K"] == 1
    assert r["accuracy"] > 0.9


def test_real_target_on_classification_data_is_one_hot():
    r = run("""\
check:
  dims: {H: 6}
  data: {generator: moons, n: 300, seed: 0}
  train: {lr: 0.1, batch_size: 4, epochs: 10}
""", network=REGRESSION)
    assert r["dims"]["K"] == 2 and r["accuracy"] is not None and r["accuracy"] > 0.8


def test_class_index_target():
    _, g, d = loaded(TEST_PROBLEMS / "class_log_softmax.yaml")
    r = run_check(g, d).to_json()
    assert r["dims"]["C"] == 2 and r["accuracy"] is not None
    assert r["accuracy_rule"] == "argmax of log_softmax(W @ x + b)"


def test_regression_has_no_accuracy():
    r = run("""\
check:
  dims: {H: 5}
  data: {generator: sinusoid, n: 200, seed: 0}
  train: {lr: 0.05, batch_size: 1, epochs: 5}
""", network=REGRESSION)
    assert r["accuracy"] is None and r["accuracy_rule"] is None
    assert r["dims"] == {"D": 1, "H": 5, "K": 1}
    assert falls(r["loss"])


def test_scalar_input_takes_one_feature_data():
    _, g, d = loaded(TEST_PROBLEMS / "scalar_chain.yaml")
    from derivkit.checkspec import Settings
    g.problem.settings = Settings(dims={}, data={"generator": "sinusoid", "n": 200, "seed": 0}, lrs=[0.05],
                                  epochs=5)
    try:
        r = run_check(g, d).to_json()
    finally:
        g.problem.settings = None
    assert falls(r["loss"])


def test_momentum_and_inits():
    base = run(SMALL_CHECK)
    mom = run(with_train("momentum: 0.9"))
    assert mom["loss"] != base["loss"] and falls(mom["loss"])
    for init in ("he", "glorot", "0.1"):
        r = run(with_train(f"init: {init}"))
        assert falls(r["loss"])


def test_init_scales_with_the_fan_in_in_either_layout():
    g, _ = graph_from_text(REGRESSION)
    p = init_params(g, {"D": 400, "H": 300, "K": 2}, "xavier", np.random.default_rng(0))
    assert p["W1"].shape == (400, 300)
    assert p["W1"].std() == pytest.approx(1 / math.sqrt(400), rel=0.02)       # W1.T @ x: fan-in D
    assert p["W2"].std() == pytest.approx(1 / math.sqrt(300), rel=0.1)        # W2.T @ h: fan-in H
    assert not p["b1"].any() and not p["b2"].any()
    g, _ = graph_from_text(NETWORK)
    p = init_params(g, {"D": 500, "H": 200, "C": 3}, "he", np.random.default_rng(0))
    assert p["W"].std() == pytest.approx(math.sqrt(2 / 500), rel=0.02)        # W @ x: fan-in D


def test_deterministic_with_a_seed():
    a, b = run(SMALL_CHECK), run(SMALL_CHECK)
    for r in (a, b):
        r.pop("epoch_seconds")
        for x in r["runs"]:
            x.pop("epoch_seconds")
    assert a == b
    c = run(SMALL_CHECK.replace("epochs: 4, seed: 0}", "epochs: 4, seed: 1}"))
    assert c["loss"] != a["loss"]


def test_progress_is_called_after_every_epoch():
    calls = []
    run(SMALL_CHECK.replace("epochs: 4, seed: 0}", "epochs: 3, seed: 0}\n  repeats: 2"),
        progress=lambda *a: calls.append(a))
    assert [(r, e) for r, e, _ in calls] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert all(isinstance(loss, float) for _, _, loss in calls)


def test_planned_epochs():
    g, _ = problem(SMALL_CHECK.replace("lr: 0.05", "lr: [0.01, 0.1]") + "  repeats: 3\n")
    assert planned_epochs(g) == 4 * 2 * 3
    g, _ = problem("")
    assert planned_epochs(g) == 0


def test_log_every_records_the_loss_every_n_minibatches():
    r = run(with_train("log_every: 10"))
    (only,) = r["runs"]
    assert len(only["iter_loss"]) == (240 // 4) * 4 // 10
    assert r["settings"]["log_every"] == 10


# ---------------------------------------------------------------------------- sweeps and repeats
def test_lr_sweep_gives_one_row_per_rate():
    r = run(SMALL_CHECK.replace("lr: 0.05", "lr: [0.001, 0.01, 0.1]"))
    assert [row["lr"] for row in r["sweep"]] == [0.001, 0.01, 0.1]
    assert [x["lr"] for x in r["runs"]] == [0.001, 0.01, 0.1]
    for row in r["sweep"]:
        assert set(row) >= {"lr", "width", "final_loss", "final_val_loss", "accuracy", "runs"}
    best = min(r["sweep"], key=lambda row: row["final_val_loss"])
    assert r["best"] == {"lr": best["lr"], "width": None}
    assert r["final_loss"] == best["final_loss"]


def test_repeats_give_mean_and_std_per_epoch():
    r = run(SMALL_CHECK + "repeats: 3\n".rjust(len("repeats: 3\n") + 2))
    assert r["repeats"] == 3 and len(r["runs"]) == 3
    assert [x["seed"] for x in r["runs"]] == [0, 1, 2]
    losses = np.array([x["loss"] for x in r["runs"]])
    np.testing.assert_allclose(r["mean_loss"], losses.mean(axis=0))
    np.testing.assert_allclose(r["std_loss"], losses.std(axis=0))
    assert r["loss"] == r["mean_loss"] and all(s > 0 for s in r["std_loss"])
    assert r["sweep"][0]["final_loss_std"] > 0
    assert r["sweep"][0]["mean_loss"] == r["mean_loss"] and r["sweep"][0]["std_loss"] == r["std_loss"]


def test_width_sweep_with_plain_list_and_width_zero():
    check = """\
check:
  dims: {H: 3}
  data: {generator: sinusoid, n: 200, seed: 0}
  train: {lr: [0.05, 0.2], batch_size: 2, epochs: 3, seed: 0}
  repeats: 2
  hidden: [0, 1, 4]
"""
    r = run(check, network=REGRESSION)
    assert [(row["width"], row["lr"]) for row in r["sweep"]] == \
        [(0, 0.05), (0, 0.2), (1, 0.05), (1, 0.2), (4, 0.05), (4, 0.2)]
    assert len(r["runs"]) == 12 and r["hidden"] == {"dim": "H", "values": [0, 1, 4]}
    assert r["best"]["width"] in (0, 1, 4)
    r2 = run(check.replace("hidden: [0, 1, 4]", "hidden: {dim: H, values: [0, 1, 4]}"), network=REGRESSION)
    assert [row["final_loss"] for row in r2["sweep"]] == [row["final_loss"] for row in r["sweep"]]


def test_width_zero_removes_the_hidden_layer():
    """H = 0 is the network without its hidden layer (o = V x + c, V of shape [C, D]): the seed's
    linear model, not a constant one, so it beats the constant model on separable data."""
    text = NETWORK + """\
check:
  data: {generator: moons, n: 200, seed: 0}
  train: {lr: 0.1, epochs: 5}
  hidden: {dim: H, values: [0, 2]}
"""
    g, d = graph_from_text(text, "w.yaml")
    res = run_check(g, d)
    linear = res.fits[0]
    assert linear.setting["H"] == 0 and "h" not in linear.graph.nodes and "W" not in linear.params
    assert linear.params["V"].shape == (2, 2)                   # [C, D]: the input feeds the output
    assert res.sweep[0]["accuracy"] > 0.75                      # a constant model has 0.5 on moons


# ---------------------------------------------------------------------------- expectations
def test_missed_expectation_fails_the_check():
    r = run(SMALL_CHECK + "  expect: {final_loss_below: 0.0001, accuracy_above: 0.5}\n")
    assert r["passed"] is False
    assert r["expect"]["final_loss_below"]["met"] is False
    assert r["expect"]["final_loss_below"]["value"] == r["final_loss"]
    assert r["expect"]["accuracy_above"]["met"] is True


def test_met_expectation_passes():
    r = run(SMALL_CHECK + "  expect: {final_loss_below: 10}\n")
    assert r["passed"] is True


def test_diverging_run_is_reported_not_raised():
    r = run("""\
check:
  dims: {H: 4}
  data: {generator: sinusoid, n: 100, seed: 0}
  train: {lr: 1000000.0, batch_size: 1, epochs: 3}
  expect: {final_loss_below: 1.0}
""", network=REGRESSION)
    json.dumps(r, allow_nan=False)
    assert r["passed"] is False
    assert r["runs"][0]["diverged"] is True


# ---------------------------------------------------------------------------- bad check: sections
BAD = [
    # (check text, the text the error points at, words in the message)
    ("check:\n  date: {generator: moons}\n", "date", "unknown key 'date'"),
    ("check:\n  train: {lr: 0.1}\n", "check", "needs 'data'"),
    ("check:\n  data: {generator: moonz, n: 100}\n", "moonz", "unknown generator"),
    ("check:\n  data: {generator: moons, n: 100, noize: 1}\n", "{generator", "unknown option 'noize'"),
    ("check:\n  data: {dataset: mnist, path: nowhere}\n", "nowhere", "does not exist"),
    ("check:\n  data: {generator: moons}\n  train: {lr: -0.1}\n", "-0.1", "learning rate"),
    ("check:\n  data: {generator: moons}\n  train: {lr: 0}\n", "0}", "> 0"),
    ("check:\n  data: {generator: moons}\n  train: {lr: fast}\n", "fast", "must be a number"),
    ("check:\n  data: {generator: moons}\n  train: {lr: [0.1, -1]}\n", "-1", "must be a number"),
    ("check:\n  data: {generator: moons}\n  train: {lr: []}\n", "[]", "empty list"),
    ("check:\n  data: {generator: moons}\n  train: {epochs: 0}\n", "0}", "epochs must be an integer >= 1"),
    ("check:\n  data: {generator: moons}\n  train: {epochs: 2.5}\n", "2.5", "integer"),
    ("check:\n  data: {generator: moons}\n  train: {batch_size: 0}\n", "0}", "batch_size"),
    ("check:\n  data: {generator: moons}\n  train: {batch_size: true}\n", "true", "batch_size"),
    ("check:\n  data: {generator: moons}\n  train: {optimizer: adam}\n", "adam", "unknown optimizer"),
    ("check:\n  data: {generator: moons}\n  train: {momentum: 1.5}\n", "1.5", "momentum"),
    ("check:\n  data: {generator: moons}\n  train: {val_fraction: 1}\n", "1}", "val_fraction"),
    ("check:\n  data: {generator: moons}\n  train: {init: magic}\n", "magic", "init"),
    ("check:\n  data: {generator: moons}\n  train: {standardize: 1}\n", "1}", "true or false"),
    ("check:\n  data: {generator: moons}\n  train: {lrate: 0.1}\n", "lrate", "unknown key 'lrate'"),
    ("check:\n  data: {generator: moons}\n  train: {log_every: 0}\n", "0}", "log_every"),
    ("check:\n  data: {generator: moons}\n  train: 0.1\n", "0.1", "mapping"),
    ("check:\n  data: {generator: moons}\n  repeats: 0\n", "0\n", "repeats"),
    ("check:\n  data: {generator: moons}\n  dims: {Q: 4}\n", "Q", "not a size"),
    ("check:\n  data: {generator: moons}\n  dims: {H: -4}\n", "-4", "integer >= 1"),
    ("check:\n  data: {generator: moons}\n  dims: {D: 5}\n", "5}", "comes from the data"),
    ("check:\n  data: {generator: moons}\n  dims: {C: 3}\n", "3}", "comes from the data"),
    ("check:\n  data: {generator: moons}\n  hidden: [1, 2]\n", "[1, 2]", "exactly one size"),
    ("check:\n  data: {generator: moons}\n  hidden: {dim: D, values: [1]}\n", "D,", "fixed by the data"),
    ("check:\n  data: {generator: moons}\n  hidden: {dim: H, values: [2, -1]}\n", "-1", "width"),
    ("check:\n  data: {generator: moons}\n  hidden: {dim: H}\n", "hidden", "needs 'dim'"),
    ("check:\n  data: {generator: moons}\n  expect: {accuracy_above: 95}\n", "95", "fraction"),
    ("check:\n  data: {generator: moons}\n  expect: {loss_below: 0.1}\n", "loss_below", "unknown key"),
    ("check:\n  data: {generator: sinusoid}\n", "x: {", "onehot target"),
]


@pytest.mark.parametrize("check,at,words", BAD, ids=[b[2] + f"-{i}" for i, b in enumerate(BAD)])
def test_bad_check_section_is_one_located_error(check, at, words):
    text = NETWORK + check
    with pytest.raises(UserError) as err:     # check: is validated when the file is read
        run_check(*graph_from_text(text, "bad.yaml"))
    e = err.value.errors[0] if isinstance(err.value, UserErrors) else err.value
    assert words in e.message, e.message
    assert LOCATED.match(str(e)), str(e)
    assert "\n" not in str(e)
    start = text.index("check:") if at != "x: {" else 0
    line, _ = locate(text[start:], at)
    if at == "x: {":
        line, _ = locate(text, "t: {")           # the target's declaration
    else:
        line += text[:start].count("\n")
    assert e.where.line == line, (str(e), line)


SCALAR_INPUT = """\
id: scalar-in
title: scalar input
dims: {H: 3, C: 2}
symbols:
  x: {shape: [], role: input}
  t: {shape: [C], role: target, kind: onehot}
  w: {shape: [H], role: param}
  V: {shape: [C, H], role: param}
forward:
  h: tanh(w * x)
  y: softmax(V @ h)
loss:
  l: -sum(t * log(y))
"""


@pytest.mark.parametrize("network,check,words", [
    (NETWORK.replace("[C", "[3").replace(", C]", ", 3]"),
     "check:\n  data: {generator: moons}\n", "the number of classes of moons is 2"),
    (SCALAR_INPUT, "check:\n  data: {generator: moons}\n", "is a scalar but moons has 2 features"),
    (REGRESSION.replace("[K]", "[3]").replace("H, K]", "H, 3]"),
     "check:\n  data: {generator: sinusoid}\n", "the number of outputs of sinusoid is 1"),
    ((TEST_PROBLEMS / "class_log_softmax.yaml").read_text().split("\ncheck:")[0] + "\n",
     "check:\n  data: {generator: sinusoid}\n", "class target, but sinusoid is regression data"),
    (NETWORK.replace("  W: {shape: [H, D], role: param}", "  W: {shape: [H, D], role: input}"),
     "check:\n  data: {generator: moons}\n", "exactly one leaf with role input"),
], ids=["classes", "features", "outputs", "class-on-regression", "two-inputs"])
def test_network_not_matching_the_data(network, check, words):
    g, d = graph_from_text(network + check, "m.yaml")
    with pytest.raises(UserError) as err:
        run_check(g, d)
    assert words in err.value.message, err.value.message
    assert LOCATED.match(str(err.value)), str(err.value)


def test_accuracy_on_regression_data_is_refused_when_read():
    """A generator's task is known without loading the data: validate refuses at the value."""
    text = REGRESSION + "check:\n  data: {generator: sinusoid}\n  expect: {accuracy_above: 0.5}\n"
    with pytest.raises(UserError) as err:
        graph_from_text(text, "m.yaml")
    e = err.value.errors[0] if isinstance(err.value, UserErrors) else err.value
    assert "no accuracy exists" in e.message and (e.where.line, e.where.column) == locate(text, "0.5}")


def test_settings_defaults():
    g, _ = problem("check:\n  data: {generator: moons}\n")
    s = settings_of(g)
    assert (s.optimizer, s.lrs, s.batch_size, s.epochs, s.seed, s.momentum, s.val_fraction, s.init,
            s.standardize, s.repeats) == ("sgd", [0.01], 1, 10, 0, 0.0, 0.2, "xavier", True, 1)


# ---------------------------------------------------------------------------- data files
def _idx(array, magic):
    array = np.asarray(array, dtype=np.uint8)
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def test_mnist_idx_files_relative_to_the_problem(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=60)
    images = np.zeros((60, 28, 28), dtype=np.uint8)
    for i, lab in enumerate(labels):                  # one bright block per class: learnable
        images[i, 2 * lab:2 * lab + 3, 5:20] = 255
    data = tmp_path / "mnist"
    data.mkdir()
    (data / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images, 0x803)))
    (data / "train-labels-idx1-ubyte").write_bytes(_idx(labels, 0x801))
    path = tmp_path / "p.yaml"
    path.write_text(NETWORK + """\
check:
  dims: {H: 16}
  data: {dataset: mnist, path: mnist}
  train: {lr: 0.2, batch_size: 4, epochs: 15, val_fraction: 0.25}
""")
    from derivkit.derive import derive
    from derivkit.graph import build_graph
    from derivkit.problem import load_problem
    g = build_graph(load_problem(path))
    r = run_check(g, derive(g), base_dir=tmp_path).to_json()
    assert r["dims"] == {"D": 784, "H": 16, "C": 10}
    assert falls(r["loss"]) and r["accuracy"] > 0.5


def test_missing_data_file_points_at_the_path(tmp_path):
    text = NETWORK + "check:\n  data: {dataset: mnist, path: data.npz}\n"
    with pytest.raises(UserError) as err:     # check: is validated when the file is read
        run_check(*graph_from_text(text, str(tmp_path / "q.yaml")), base_dir=tmp_path)
    e = err.value.errors[0] if isinstance(err.value, UserErrors) else err.value
    assert "does not exist" in e.message
    assert e.where.line == locate(text, "data.npz")[0]


# ---------------------------------------------------------------------------- curves
def test_curve_csv_has_one_row_per_epoch_per_run(tmp_path):
    r = trained(SMALL_CHECK.replace("lr: 0.05", "lr: [0.01, 0.05]") + "  repeats: 2\n")
    path = tmp_path / "curve.csv"
    write_curve(r, path)
    rows = list(csv.reader(path.open()))
    assert rows[0][:6] == ["run", "lr", "epoch", "train_loss", "val_loss", "accuracy"]
    body = rows[1:]
    assert len(body) == 2 * 2 * 4
    assert [row[0] for row in body[:5]] == ["0", "0", "0", "0", "1"]
    assert [int(row[2]) for row in body[:4]] == [1, 2, 3, 4]
    first = r.runs[0]
    assert float(body[0][1]) == first["lr"]
    assert [float(row[3]) for row in body[:4]] == first["loss"]
    assert [float(row[4]) for row in body[:4]] == first["val_loss"]
    assert [float(row[5]) for row in body[:4]] == first["val_accuracy"]


def test_curve_csv_for_regression_leaves_accuracy_empty(tmp_path):
    r = trained("check:\n  dims: {H: 3}\n  data: {generator: sinusoid, n: 100}\n  train: {epochs: 2}\n",
            network=REGRESSION)
    write_curve(r, tmp_path / "c.csv")
    rows = list(csv.DictReader((tmp_path / "c.csv").open()))
    assert len(rows) == 2 and all(row["accuracy"] == "" for row in rows)


def test_curve_to_an_unwritable_place_is_a_user_error(tmp_path):
    r = trained(SMALL_CHECK)
    (tmp_path / "no").write_text("")
    with pytest.raises(UserError):
        write_curve(r, tmp_path / "no" / "such" / "dir.csv")


def test_plot_curve_png(tmp_path):
    """A PNG where matplotlib is installed; where it is not, the error names the extra (no skip)."""
    r = trained(SMALL_CHECK + "  repeats: 2\n")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match=r"derivkit\[plot\]"):
            plot_curve(r, tmp_path / "curve.png")
        assert not (tmp_path / "curve.png").exists()
        return
    plot_curve(r, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_names_the_extra(tmp_path, monkeypatch):
    r = trained(SMALL_CHECK)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UserError) as err:
        plot_curve(r, tmp_path / "curve.png")
    assert "matplotlib" in err.value.message and "derivkit[plot]" in err.value.message


def test_ones_of_different_sizes_stay_apart():
    # Unused parameters have zero gradients spread over their shapes, 0 * ones(H) and
    # 0 * ones(K): equal expressions but for the shape, computed in one program.
    g, d = graph_from_text("""\
id: ones
title: two spreads of different sizes
dims: {D: 2, H: 3, K: 2}
symbols:
  x: {shape: [D], role: input}
  y: {shape: [K], role: target, kind: real}
  W: {shape: [K, D], role: param}
  u: {shape: [H], role: param}
  v: {shape: [K], role: param}
loss:
  l: mean((W @ x - y)**2)
""")
    comp = compile_problem(g, d, {"D": 2, "H": 5, "K": 1})
    _, grads = comp.step({"x": np.ones((3, 2)), "y": np.zeros((3, 1)), "W": np.ones((1, 2)),
                          "u": np.ones(5), "v": np.ones(1)})
    assert grads["u"].shape == (5,) and grads["v"].shape == (1,)
    assert not grads["u"].any() and not grads["v"].any()
    np.testing.assert_allclose(grads["W"], 3 * 2 * 2 * np.ones((1, 2)))


def test_an_outer_product_free_of_data_is_summed_over_the_batch():
    g, d = graph_from_text("""\
id: outer-free
title: a matrix parameter whose gradient never meets the data
dims: {D: 2, H: 3}
symbols:
  x: {shape: [D], role: input}
  y: {shape: [], role: target, kind: real}
  w: {shape: [D], role: param}
  M: {shape: [H, D], role: param}
  a: {shape: [H], role: param}
  c: {shape: [D], role: param}
loss:
  l: (w.T @ x - y)**2 + a.T @ M @ c
""")
    comp = compile_problem(g, d)
    a, c = np.array([1.0, 2.0, 3.0]), np.array([1.0, -1.0])
    _, grads = comp.step({"w": np.zeros(2), "M": np.ones((3, 2)), "a": a, "c": c,
                          "x": np.ones((4, 2)), "y": np.zeros(4)})
    np.testing.assert_allclose(grads["M"], 4 * np.outer(a, c))


# ---------------------------------------------------------------------------- outputs, checked first
def _cli(tmp_path, *args, check: str = SMALL_CHECK, network: str = NETWORK):
    from click.testing import CliRunner

    from derivkit.cli import main
    path = tmp_path / "p.yaml"
    path.write_text(network + check)
    return CliRunner().invoke(main, ["solve", str(path), *map(str, args)])


@pytest.mark.parametrize("option", ["--curve", "--plot"])
def test_curve_or_plot_with_no_train_is_a_usage_error(tmp_path, option):
    result = _cli(tmp_path, "--no-train", option, tmp_path / "out")
    assert result.exit_code == 2
    assert option in result.output and "--no-train" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("target", ["directory", "device", "fifo", "file as directory"])
def test_a_bad_curve_path_is_refused_before_training(tmp_path, target, monkeypatch):
    import derivkit.training.run as run_module
    calls = []
    monkeypatch.setattr(run_module, "train_one", lambda *a, **k: calls.append(1))
    path = {"directory": tmp_path, "device": Path("/dev/null"), "fifo": tmp_path / "fifo",
            "file as directory": tmp_path / "fifo" / "c.csv"}[target]
    if target == "file as directory":
        (tmp_path / "fifo").write_text("")
    if target == "fifo":
        os.mkfifo(path)
    result = _cli(tmp_path, "--curve", path)
    assert result.exit_code == 2, result.output
    assert calls == []                       # refused before any training
    if target == "directory":                # click's own check of the option (a usage error)
        assert "is a directory" in result.output
        return
    (line,) = [s for s in result.output.splitlines() if s.strip()]
    assert line.startswith(f"{path}:") and "curve" in line
    if target == "device":
        assert Path("/dev/null").is_char_device()


def test_curve_is_written_atomically_over_a_regular_file(tmp_path):
    old = tmp_path / "c.csv"
    old.write_text("old\n")
    result = _cli(tmp_path, "--curve", old)
    assert result.exit_code == 0, result.output
    assert old.read_text().startswith("run,lr,epoch")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv", "p.yaml"]    # no temporary left


@pytest.mark.parametrize("option, target", [("--plot", "c.png"), ("--plots", "pictures")])
def test_pictures_without_matplotlib_are_refused_before_training(tmp_path, monkeypatch, option, target):
    import derivkit.training.run as run_module
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    calls = []
    monkeypatch.setattr(run_module, "train_one", lambda *a, **k: calls.append(1))
    result = _cli(tmp_path, option, tmp_path / target)
    assert result.exit_code == 2 and "matplotlib" in result.output and calls == []
    assert not (tmp_path / target).exists()


@pytest.mark.parametrize("option", ["--plots", "--table"])
def test_table_or_plots_with_no_train_is_a_usage_error(tmp_path, option):
    result = _cli(tmp_path, "--no-train", option, tmp_path / "out")
    assert result.exit_code == 2 and option in result.output and not (tmp_path / "out").exists()


def test_plots_into_a_regular_file_are_refused_before_training(tmp_path, monkeypatch):
    import derivkit.training.run as run_module
    calls = []
    monkeypatch.setattr(run_module, "train_one", lambda *a, **k: calls.append(1))
    (tmp_path / "taken").write_text("keep\n")
    result = _cli(tmp_path, "--plots", tmp_path / "taken")
    assert result.exit_code == 2 and calls == []
    (line,) = [s for s in result.output.splitlines() if s.strip()]
    assert line.startswith(f"{tmp_path / 'taken'}:") and "not a directory" in line
    assert (tmp_path / "taken").read_text() == "keep\n"


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_table_holds_one_row_per_setting_after_the_report(tmp_path, suffix):
    """--table: the sweep's rows, as --format json gives them, written after the report."""
    check = SMALL_CHECK + "  repeats: 2\n  sweep: {lr: [0.01, 0.1]}\n"
    out = tmp_path / f"table{suffix}"
    result = _cli(tmp_path, "--format", "json", "--table", out, check=check)
    assert result.exit_code == 0, result.output
    sweep = json.loads(result.output)["train"]["sweep"]
    if suffix == ".json":
        rows = json.loads(out.read_text())                # a list of rows
    else:
        rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == len(sweep) == 2
    for row, want in zip(rows, sweep):
        assert float(row["lr"]) == want["lr"]
        assert float(row["final_loss"]) == pytest.approx(want["final_loss"], rel=1e-12)


def test_a_diverged_run_prints_in_the_text_report(tmp_path):
    check = """\
check:
  dims: {H: 4}
  data: {generator: sinusoid, n: 100, seed: 0}
  train: {lr: 1000000.0, batch_size: 1, epochs: 3}
"""
    result = _cli(tmp_path, check=check, network=REGRESSION)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Training: final loss diverged" in result.output
    assert "training loss:" in result.output and "diverged" in result.output.split("training loss:")[1]


def test_data_of_one_class_is_refused(tmp_path):
    """A CSV whose labels are all 0 would "train" to accuracy 1: nothing to classify."""
    (tmp_path / "one.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 3},0\n" for i in range(20)))
    text = NETWORK + "check:\n  data: {dataset: csv, path: one.csv, target: label, task: classification}\n"
    path = tmp_path / "one.yaml"
    path.write_text(text)
    _, g, d = loaded(path)
    with pytest.raises(UserError) as err:
        run_check(g, d)
    assert "only one class" in err.value.message
    assert (err.value.where.line, err.value.where.column) == locate(text, "data:")
