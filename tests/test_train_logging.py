"""Tests for #10's logging: training accuracy per epoch, validation every N minibatches."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from helpers import graph_from_text
from derivkit.training import run_check, write_curve
from test_train import NETWORK, REGRESSION

# 200 samples: 160 training, 40 validation; batch 8 -> 20 minibatches per epoch
CHECK = """\
check:
  dims: {H: 3}
  data: {generator: ellipse_circle, n: 200, seed: 0}
  train: {lr: 0.1, batch_size: 8, epochs: 3, seed: 0, log_every: LOG}
"""
STEPS_PER_EPOCH = 20


def trained(log_every: int, extra: str = "", network: str = NETWORK, check: str = CHECK):
    g, d = graph_from_text(network + check.replace("LOG", str(log_every)) + extra, "l.yaml")
    return run_check(g, d)


@pytest.mark.parametrize("every", [1, 3, 7, 20, 41, 59, 60])
def test_iterations_are_logged_every_n_minibatches(every):
    r = trained(every)
    (run,) = r.runs
    it = run["iterations"]
    total = 3 * STEPS_PER_EPOCH
    assert it["step"] == [every * k for k in range(1, total // every + 1)]
    assert len(it["loss"]) == len(it["val_loss"]) == len(it["val_accuracy"]) == total // every
    assert run["iter_loss"] == it["loss"]
    assert all(0 <= a <= 1 for a in it["val_accuracy"])


def test_logging_at_epoch_ends_matches_the_epoch_values():
    r = trained(STEPS_PER_EPOCH)          # 160 / 8: every minibatch is full, so the means agree
    (run,) = r.runs
    it = run["iterations"]
    np.testing.assert_allclose(it["loss"], run["loss"], rtol=1e-12)
    assert it["val_loss"] == run["val_loss"] and it["val_accuracy"] == run["val_accuracy"]


def test_training_accuracy_per_epoch():
    r = trained(5)
    (run,) = r.runs
    assert len(run["train_accuracy"]) == 3 and r.train_accuracy == run["train_accuracy"]
    n = r.data["n_train"]
    assert all(abs(a * n - round(a * n)) < 1e-9 for a in run["train_accuracy"])     # counts out of n_train
    reg = trained(5, network=REGRESSION, check=CHECK.replace("ellipse_circle", "sinusoid"))
    assert reg.runs[0]["train_accuracy"] == [None] * 3
    assert reg.runs[0]["iterations"]["val_accuracy"] == [None] * len(reg.runs[0]["iterations"]["step"])


def test_iterations_averaged_over_repeats_with_spread():
    r = trained(10, "  repeats: 3\n")
    j = r.to_json()
    its = [run["iterations"] for run in r.runs]
    np.testing.assert_allclose(j["iterations"]["loss"], np.mean([it["loss"] for it in its], axis=0))
    np.testing.assert_allclose(j["iterations"]["std_val_loss"], np.std([it["val_loss"] for it in its], axis=0))
    np.testing.assert_allclose(j["std_train_accuracy"], np.std([run["train_accuracy"] for run in r.runs], axis=0))
    assert j["iterations"]["step"] == its[0]["step"]


def test_without_log_every_no_iterations():
    g, d = graph_from_text(NETWORK + CHECK.replace(", log_every: LOG", ""), "l.yaml")
    j = run_check(g, d).to_json()
    assert "iterations" not in j and "iterations" not in j["runs"][0] and "iter_loss" not in j["runs"][0]


def test_curve_csv_ends_with_training_accuracy(tmp_path):
    r = trained(5, "  sweep: {lr: [0.05, 0.1]}\n")
    write_curve(r, tmp_path / "c.csv")
    rows = list(csv.DictReader((tmp_path / "c.csv").open()))
    assert list(rows[0])[-1] == "train_accuracy" and len(rows) == 2 * 3
    assert [float(row["train_accuracy"]) for row in rows] == [a for run in r.runs for a in run["train_accuracy"]]


def test_log_every_beyond_a_whole_run_is_refused_where_written():
    """Nothing would be logged (an empty picture): refused when the file is read."""
    from helpers import locate
    from derivkit.errors import UserError, UserErrors
    text = NETWORK + CHECK.replace("LOG", "100000")
    with pytest.raises(UserError) as err:
        graph_from_text(text, "late.yaml")
    e = err.value.errors[0] if isinstance(err.value, UserErrors) else err.value
    assert "nothing would be logged" in e.message and (e.where.line, e.where.column) == locate(text, "100000")
