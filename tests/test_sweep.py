"""Tests for #10's sweeps: the settings' product, selection, test sets, retraining, the table, the text."""
from __future__ import annotations

import csv
import json
import math
from dataclasses import replace

import numpy as np
import pytest

from helpers import LOCATED, graph_from_text, locate
from derivkit.errors import UserError, UserErrors
from derivkit.report import training_lines
from derivkit.training import run as run_module
from derivkit.training import planned_epochs, run_check, write_table
from test_train import NETWORK, REGRESSION

BASE = """\
check:
  dims: {H: 3}
  data: {generator: ellipse_circle, n: 200, seed: 0}
  train: {lr: 0.1, batch_size: 8, epochs: 2, seed: 0}
"""


def trained(extra: str = "", check: str = BASE, network: str = NETWORK):
    g, d = graph_from_text(network + check + extra, "s.yaml")
    return run_check(g, d)


def test_settings_are_the_product_of_the_swept_lists_in_file_order():
    r = trained("  sweep: {H: [1, 2], lr: [0.01, 0.1, 0.5]}\n  repeats: 2\n")
    order = [(row["setting"]["H"], row["setting"]["lr"]) for row in r.sweep]
    assert order == [(h, lr) for h in (1, 2) for lr in (0.01, 0.1, 0.5)]
    assert len(r.runs) == 6 * 2 and [run["setting"] for run in r.runs[::2]] == [row["setting"] for row in r.sweep]
    assert all(list(row["setting"])[0] == "lr" for row in r.sweep)        # lr named first, always
    assert [run["width"] for run in r.runs[::2]] == [1, 1, 1, 2, 2, 2]
    r2 = trained("  sweep: {lr: [0.01, 0.1], H: [1, 2]}\n")
    assert [(row["setting"]["lr"], row["setting"]["H"]) for row in r2.sweep] == \
        [(lr, h) for lr in (0.01, 0.1) for h in (1, 2)]
    g, _ = graph_from_text(NETWORK + BASE + "  sweep: {H: [1, 2], lr: [0.01, 0.1, 0.5]}\n  repeats: 2\n", "s.yaml")
    assert planned_epochs(g) == 2 * 6 * 2


def test_without_a_sweep_every_run_still_names_its_lr():
    r = trained()
    assert r.runs[0]["setting"] == {"lr": 0.1} and r.best is None and len(r.fits) == 1


def _fake_train_one(finals: dict):
    """A train_one whose final losses and accuracies are set per learning rate: (val_loss, accuracy)."""
    def train_one(comp, binding, tr, va, s, lr, seed, run_index, progress):
        val, acc = finals[lr]
        n = s.epochs
        return {"loss": [val] * n, "val_loss": [val] * n, "val_accuracy": [acc] * n,
                "train_accuracy": [acc] * n, "iter_loss": [], "diverged": not math.isfinite(val),
                "epoch_seconds": 0.0, "params": {"n_train": tr.n}}
    return train_one


@pytest.mark.parametrize("select,best", [("val_loss", 0.1), ("val_accuracy", 0.2)])
def test_selection_by_accuracy_can_pick_another_setting_than_by_loss(monkeypatch, select, best):
    monkeypatch.setattr(run_module, "train_one", _fake_train_one(
        {0.1: (0.30, 0.80), 0.2: (0.40, 0.90), 0.3: (0.50, 0.90)}))
    r = trained(f"  select: {select}\n  sweep: {{lr: [0.1, 0.2, 0.3]}}\n")
    assert r.best["lr"] == best and r.lr == best and r.select == select
    assert [row["best"] for row in r.sweep] == [row["lr"] == best for row in r.sweep]
    assert r.fitted.setting == {"lr": best}


def test_a_diverged_setting_is_never_best(monkeypatch):
    monkeypatch.setattr(run_module, "train_one", _fake_train_one({0.1: (math.nan, 1.0), 0.2: (9.0, 0.1)}))
    for select in ("val_loss", "val_accuracy"):
        r = trained(f"  select: {select}\n  sweep: {{lr: [0.1, 0.2]}}\n")
        assert r.best["lr"] == 0.2
        assert r.sweep[0]["diverged"] == 1 and r.sweep[0]["best"] is False


def test_a_really_diverging_rate_loses_the_sweep():
    r = trained("  sweep: {lr: [1000000.0, 0.1]}\n", network=REGRESSION,
                check=BASE.replace("ellipse_circle", "sinusoid"))
    assert r.runs[0]["diverged"] is True and r.best["lr"] == 0.1
    json.dumps(r.to_json(), allow_nan=False)


@pytest.mark.parametrize("n,fraction", [(200, 0.25), (101, 0.1), (60, 0.5)])
def test_test_fraction_is_split_off_before_validation(n, fraction):
    r = trained("  test: {fraction: %s}\n" % fraction, check=BASE.replace("n: 200", f"n: {n}"))
    d = r.data
    assert d["n_test"] + d["n_train"] + d["n_val"] == n
    assert abs(d["n_test"] - n * fraction) <= 1
    assert abs(d["n_val"] - (n - d["n_test"]) * 0.2) <= 1
    assert r.test["n"] == d["n_test"] and len(r.fitted.test) == d["n_test"]
    assert all(math.isfinite(run["test_loss"]) and 0 <= run["test_accuracy"] <= 1 for run in r.runs)


def test_a_test_source_is_its_own_data():
    r = trained("  test: {generator: ellipse_circle, n: 77, seed: 5}\n")
    assert r.data["n_test"] == 77 and r.data["n_train"] + r.data["n_val"] == 200


def test_no_test_set_means_no_test_keys():
    j = trained().to_json()
    assert "test" not in j and "n_test" not in j["data"] and "test_loss" not in j["runs"][0]
    assert "test_loss" not in j["sweep"][0]


def test_retrain_on_all_trains_the_best_on_training_plus_validation(monkeypatch):
    seen = []
    real = run_module.train_one
    monkeypatch.setattr(run_module, "train_one", lambda comp, b, tr, va, *a: seen.append((tr.n, va)) or
                        real(comp, b, tr, va, *a))
    r = trained("  retrain_on_all: true\n  test: {fraction: 0.2}\n  sweep: {lr: [0.01, 0.1]}\n")
    n = r.data["n_train"] + r.data["n_val"]
    assert r.retrained["n_train"] == n and seen[-1] == (n, None) and len(seen) == 3
    assert len(r.fitted.train) == n and r.fitted.val is None and r.fitted.setting == r.sweep[1 - r.sweep[0]["best"]]["setting"]
    X = np.concatenate([r.fits[0].train.X, r.fits[0].val.X])
    np.testing.assert_allclose(r.fitted.shift, X.mean(axis=0))          # standardized on train + val
    assert r.fitted is not r.fits[[row["best"] for row in r.sweep].index(True)]
    assert len(r.retrained["loss"]) == 2 and "test_loss" in r.retrained


def test_each_setting_leaves_a_fitted_network_standardized_on_its_training_set():
    r = trained("  sweep: {H: [1, 4]}\n  repeats: 2\n")
    assert [f.setting for f in r.fits] == [row["setting"] for row in r.sweep]
    assert [f.dims["H"] for f in r.fits] == [1, 4] and [f.params["W"].shape[0] for f in r.fits] == [1, 4]
    f = r.fits[0]
    np.testing.assert_allclose(f.shift, f.train.X.mean(axis=0))
    np.testing.assert_allclose(f.scale, f.train.X.std(axis=0))
    raw = trained("  sweep: {H: [1, 4]}\n", check=BASE.replace("epochs: 2, seed: 0}", "epochs: 2, seed: 0, standardize: false}"))
    assert np.all(raw.fits[0].shift == 0) and np.all(raw.fits[0].scale == 1)


def test_sweep_table_csv_and_json(tmp_path):
    r = trained("  sweep: {lr: [0.01, 0.1], H: [1, 2]}\n  repeats: 2\n  test: {fraction: 0.2}\n")
    write_table(r, tmp_path / "t.csv")
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert len(rows) == 4 and list(rows[0])[:2] == ["lr", "H"]
    assert [float(row["final_loss"]) for row in rows] == [row["final_loss"] for row in r.sweep]
    assert [row["best"] for row in rows].count("true") == 1 and "test_accuracy_std" in rows[0]
    write_table(r, tmp_path / "t.json")
    data = json.loads((tmp_path / "t.json").read_text())
    assert [(row["lr"], row["H"]) for row in data] == [(row["setting"]["lr"], row["setting"]["H"]) for row in r.sweep]


def test_text_report_names_every_swept_value_and_the_expectation_only_when_expected():
    r = trained("  sweep: {lr: [0.01, 0.1], H: [1, 2]}\n")
    text = "\n".join(training_lines(r))
    best = r.best
    assert f"best: lr = {best['lr']:g}, H = {best['H']}:" in text
    assert "expectation" not in text and sum(line.startswith("  * ") for line in text.splitlines()) == 1
    text = "\n".join(training_lines(trained("  expect: {final_loss_below: 0.000001}\n")))
    assert "expectation: MISSED (final loss below" in text


# ---------------------------------------------------------------------------- mistakes, located
BAD = [
    ("  sweep: {lrr: [0.1]}\n", "lrr", "did you mean"),
    ("  sweep: {D: [1, 2]}\n", "D:", "fixed by the data"),
    ("  sweep: {H: []}\n", "[]", "empty"),
    ("  sweep: {H: [2, -1]}\n", "-1", "width"),
    ("  sweep: {lr: [0.1, 0]}\n", "0]", "learning rate"),
    ("  sweep: {lr: 0.1}\n", "0.1}", "list"),
    ("  sweep: {act: [relu]}\n", "act", "not a learning rate, size or choice"),
    ("  sweep: {H: [1, 2]}\n  hidden: [3]\n", "[3]", "swept twice"),
    ("  sweep: {lr: [0.1, 0.2]}\n", "lr: [0.1, 0.2]", "swept twice"),
    ("  select: accuracy\n", "accuracy", "select"),
    ("  retrain_on_all: yes please\n", "yes please", "true or false"),
    ("  sweep: {H: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n  repeats: 101\n", "101", "training runs"),
    ("  test: {fraction: 1.5}\n", "1.5", "fraction"),
]


@pytest.mark.parametrize("extra,at,words", BAD, ids=[b[2] + f"-{i}" for i, b in enumerate(BAD)])
def test_bad_sweep_keys_are_located(extra, at, words):
    check = BASE.replace("lr: 0.1,", "lr: [0.1, 0.2],") if "swept twice" in words and "lr" in at else BASE
    text = NETWORK + check + extra
    with pytest.raises(UserError) as err:
        run_check(*graph_from_text(text, "bad.yaml"))
    e = err.value.errors[0] if isinstance(err.value, UserErrors) else err.value
    assert words in e.message, e.message
    assert LOCATED.match(str(e)), str(e)
    start = text.index(extra)
    line, _ = locate(text[start:], at)
    assert e.where.line == line + text[:start].count("\n"), str(e)


def test_logging_too_often_on_a_large_validation_set_is_refused_before_training():
    check = BASE.replace("n: 200", "n: 100000").replace("batch_size: 8, epochs: 2", "batch_size: 4, epochs: 1")
    text = NETWORK + check.replace("epochs: 1, seed: 0}", "epochs: 1, seed: 0, log_every: 5}")
    with pytest.raises(UserError) as err:
        graph_from_text(text, "big.yaml")
    e = err.value.errors[0] if isinstance(err.value, UserErrors) else err.value
    assert "log_every" in e.message and (e.where.line, e.where.column) == locate(text, "5}")
    graph_from_text(text.replace("log_every: 5", "log_every: 5000"), "ok.yaml")


def test_select_accuracy_on_regression_is_located_at_select():
    """Known from the generator without loading it: refused when the file is read (validate)."""
    text = REGRESSION + BASE.replace("ellipse_circle", "sinusoid") + "  select: val_accuracy\n"
    with pytest.raises(UserError) as err:
        graph_from_text(text, "r.yaml")
    e = err.value.errors[0] if isinstance(err.value, UserErrors) else err.value
    assert "regression" in e.message
    assert (e.where.line, e.where.column) == locate(text, "val_accuracy")


def _read(text: str, choices: dict):
    from derivkit.checkspec import read_check
    from derivkit.yamlread import Reader, compose
    root = compose(text, "c.yaml", "problem file")
    r = Reader("c.yaml")
    r.scan(root)
    return read_check(r, root.value[0][1], {"H"}, set(), choices=choices), r.report()


def test_a_choice_sweep_needs_the_declared_values():
    text = "check:\n  data: {generator: moons}\n  sweep: {act: [relu, tanhh], lr: [0.1]}\n"
    choices = {"act": ["sigmoid", "relu", "tanh"]}
    s, errors = _read(text, choices)
    assert s is None and len(errors) == 1
    assert "tanhh" in errors[0].message and errors[0].where.line == 3
    s, errors = _read(text.replace("tanhh", "tanh"), choices)
    assert errors == [] and s.sweep == {"act": ["relu", "tanh"], "lr": [0.1]}
    s, errors = _read(text.replace("tanhh", "tanh"), None)             # no choices: not sweepable
    assert s is None and "act" in errors[0].message


# ---------------------------------------------------------------------------- variants
def _swap_to_tanh(monkeypatch, calls: list):
    """Settings with H = 2 train the tanh network (standing in for a choice of activation)."""
    tanh_graph, _ = graph_from_text(NETWORK.replace("sigmoid(z)", "tanh(z)") + BASE, "tanh.yaml")
    from derivkit.training import sweep as sweep_module
    real = sweep_module.variant

    def variant(graph, choices=None, dims=None):
        calls.append(dims["H"])
        return real(tanh_graph if dims["H"] == 2 else graph, choices=choices, dims=dims)
    monkeypatch.setattr(sweep_module, "variant", variant)


def test_a_new_variant_is_derived_gradient_checked_once_and_trains_like_its_own_problem(monkeypatch):
    import derivkit.gradcheck as gradcheck_module
    checked = []
    real_check = gradcheck_module.gradcheck
    monkeypatch.setattr(gradcheck_module, "gradcheck", lambda g, d, **kw: checked.append(g) or real_check(g, d, **kw))
    calls = []
    _swap_to_tanh(monkeypatch, calls)
    r = trained("  sweep: {H: [2, 3], lr: [0.05, 0.1]}\n")
    assert calls == [2, 3] and len(checked) == 1          # compiled once per structure and size; lr reuses it
    monkeypatch.undo()
    direct = trained("  sweep: {lr: [0.05, 0.1]}\n", check=BASE.replace("H: 3", "H: 2"),
                     network=NETWORK.replace("sigmoid(z)", "tanh(z)"))
    assert [run["loss"] for run in r.runs[:2]] == [run["loss"] for run in direct.runs]


def test_a_variant_failing_the_gradient_check_names_its_setting(monkeypatch):
    import derivkit.gradcheck as gradcheck_module
    real_check = gradcheck_module.gradcheck
    monkeypatch.setattr(gradcheck_module, "gradcheck",
                        lambda g, d, **kw: replace(real_check(g, d, **kw), passed=False))
    _swap_to_tanh(monkeypatch, [])
    text = NETWORK + BASE + "  sweep: {H: [3, 2]}\n"
    with pytest.raises(UserError) as err:
        run_check(*graph_from_text(text, "g.yaml"))
    assert "H = 2" in err.value.message and "gradient check" in err.value.message
    assert err.value.where.line == locate(text, "sweep")[0]
