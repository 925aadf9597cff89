"""The sheet's training plots: which apply, that they show the trained network, and that they compile."""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, strategies as st
from helpers import SEED_PROBLEMS, needs_tex, solved
from test_sheet_compile import OVERFULL_PT, _overfull

from derivkit.sheets import sheet_text
from derivkit.sheets.compile import compile_pdf
from derivkit.sheets.training import training_section
from derivkit.training import series as S
from trained import CLASSIFIER, REGRESSOR, fit, result_of

WIDTHS = REGRESSOR.replace("  dims: {{H: {H}}}\n", "  hidden: {{dim: H, values: [1, 2, 3, 10]}}\n")


def regression_result():
    fits = [fit(REGRESSOR, H=h, n=120, epochs=10, lr=0.05, data="sinusoid") for h in (1, 2, 3, 10)]
    return result_of(WIDTHS, fits, fits[2], data="sinusoid")


def classifier_result():
    f = fit(CLASSIFIER, H=8, n=200, epochs=5, lr=0.1)
    return result_of(CLASSIFIER.replace("train: {{lr: {lr},", "train: {{lr: [0.01, {lr}],") + "  repeats: 2\n",
                     [f], f, lr=0.1)


def many_settings_result():
    """18 settings (a choice first, then lr and H), 2 repeats, logged per iteration, retrained."""
    from derivkit.training import run_check
    from helpers import graph_from_text
    text = CLASSIFIER.replace("forward:", "choices:\n  act: [tanh, relu]\nforward:").replace(
        "  dims: {{H: {H}}}\n", "  sweep: {{act: [tanh, relu], lr: [0.01, 0.03, 0.1], H: [2, 4, 8]}}\n"
                                 "  repeats: 2\n  retrain_on_all: true\n").replace(
        "epochs: {epochs}, seed: 0}}", "epochs: {epochs}, seed: 0, log_every: 2}}").format(act="act", data="moons", n=120, lr=0.05, epochs=3)
    return run_check(*graph_from_text(text))


def _points(coords: str) -> np.ndarray:
    return np.array([[float(a), float(b)] for a, b in re.findall(r"\(([^,()]+), ([^,()]+)\)", coords)])


def test_regression_sheet_shows_each_fit_the_sweep_and_hidden_units():
    res = regression_result()
    t = training_section(res)
    assert not t.regions and not t.accuracy
    assert len(t.fits) == 4 and [a.title.split(":")[0] for a in t.fits] == ["H 1", "H 2", "H 3", "H 10"]
    for ax, f in zip(t.fits, res.fits):
        curve = _points(next(line.coords for line in ax.lines if line.label == "fitted"))
        assert np.allclose(curve[:, 1], f.predict(curve[:, :1])[:, 0], rtol=1e-4, atol=1e-4)
    fitted_axis, units = t.hidden
    assert len(units.lines) == 3                                    # H = 3: one line per unit
    for i, line in enumerate(units.lines):
        pts = _points(line.coords)
        assert np.allclose(pts[:, 1], res.fitted.nodes(pts[:, :1])["h"][:, i], rtol=1e-4, atol=1e-4)
    (sweep,) = t.sweep_plots                                       # regression: no accuracy panel
    assert sweep.xticklabels == ["1", "2", "3", "10"]
    assert [c for c in t.sweep_columns[:2]] == ["H", "runs"]          # named by the swept key


def test_classifier_sheet_shows_accuracy_and_the_first_layers_lines():
    res = classifier_result()
    t = training_section(res)
    assert not t.fits and not t.hidden
    assert {c.label for c in t.accuracy} == {f"lr {lr} ({part})" for lr in ("0.01", "0.1")
                                             for part in ("training", "validation")}
    assert [a.ylabel for a in t.sweep_plots] == ["final loss", "final accuracy"]
    (ax,) = t.regions
    lines = [line for line in ax.lines if line.options.startswith("no marks")]
    assert len(lines) == len(S.unit_lines(res.fitted))
    for line in lines:                      # each segment: where one unit's pre-activation is 0
        z = res.fitted.nodes(_points(line.coords))["z"]
        assert np.min(np.abs(z).max(axis=0)) < 1e-3
    marks = [line for line in ax.lines if "!30" in line.options]
    for c, line in enumerate(marks):
        assert np.all(res.fitted.classify(_points(line.coords)) == c)


@needs_tex
@pytest.mark.slow
@pytest.mark.parametrize("make", [regression_result, classifier_result, many_settings_result])
def test_sheet_with_training_plots_compiles_cleanly(make, tmp_path):
    sol = solved(SEED_PROBLEMS[0])
    sol = type(sol)(**{**sol.__dict__, "train": make()})
    tex = sheet_text(sol)
    result = compile_pdf(tex, tmp_path / "sheet.pdf")
    assert "LaTeX Error" not in result.log and not re.search(r"^! ", result.log, re.M)
    assert not [pt for pt in _overfull(result.log) if pt > OVERFULL_PT], _overfull(result.log)
    md = sheet_text(sol, "markdown")
    assert "tikzpicture" not in md and "| epoch |" in md


def test_summary_names_the_best_setting_the_test_set_and_the_retrained_network():
    from types import SimpleNamespace
    train = {"lr": 0.01, "final_loss": 0.2, "final_val_loss": 0.3, "accuracy": None, "passed": True,
             "best": {"lr": 0.01, "H": 3, "width": 3}, "test": {"n": 50, "loss": 0.35, "loss_std": 0.01},
             "retrained": {"n_train": 160, "final_loss": 0.18, "test_loss": 0.33},
             "data": {"name": "sinusoid", "n_train": 120, "n_val": 40, "n_test": 50}, "runs": [], "sweep": []}
    t = training_section(SimpleNamespace(to_json=lambda: train))
    summary = dict(t.summary)
    assert summary["best learning rate"] == "0.01" and summary["best H"] == "3" and "best width" not in summary
    assert summary["test loss"] == "0.35" and summary["retrained: test loss"] == "0.33"
    assert summary["retrained on all data: training samples"] == "160"
    assert "50 test" in t.description
    assert not (t.curves or t.accuracy or t.sweep_plots or t.fits or t.hidden or t.regions)


@given(st.integers(1, 5000), st.integers(2, 200))
def test_long_curves_are_drawn_at_spread_epochs(n, most):
    """A 1000-epoch run is drawn at <= MAX_CURVE_POINTS epochs (TeX's memory), first and last kept."""
    from derivkit.sheets.training import _spread
    keep = _spread(n, most)
    assert len(keep) <= most and keep[0] == 0 and keep[-1] == n - 1
    assert all(a < b for a, b in zip(keep, keep[1:]))
    assert len(keep) == min(n, most) or n > most and len(keep) >= most // 2


def test_many_settings_get_their_own_colours_and_fewer_points_each():
    from derivkit.sheets.training import MAX_AXIS_POINTS
    t = training_section(many_settings_result())
    assert len(t.curves) == 18 and len({c.color for c in t.curves}) == 18
    assert sum(len(c.points) for c in t.curves) <= MAX_AXIS_POINTS
    loss = t.sweep_plots[0]                  # against lr: plain numbers, one line per (act, H)
    assert loss.xticklabels == ["0.01", "0.03", "0.1"] and "fixed point" in loss.options
    named = [line.label for line in loss.lines if line.label]
    assert len(named) == len(set(named)) == 6 and all("only marks" not in line.options for line in loss.lines)


def test_a_choice_on_the_sweep_axis_is_drawn_as_marks_only():
    from types import SimpleNamespace
    for first, joined in (("act", False), ("H", True)):       # the first swept key is the x axis
        rows = [{"setting": {"act": a, "H": h} if first == "act" else {"H": h, "act": a},
                 "final_loss": 0.1 * h, "final_val_loss": 0.2} for a in ("relu", "sigmoid") for h in (2, 8)]
        (loss,) = training_section(SimpleNamespace(to_json=lambda: {"sweep": rows, "runs": []})).sweep_plots
        assert all(("only marks" in line.options) != joined for line in loss.lines)
