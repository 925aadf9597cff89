"""The trained network evaluated again (Fitted), the numbers each picture shows, and the PNGs."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from derivkit.errors import UserError
from derivkit.numeric import forward_values
from derivkit.training import plots
from derivkit.training import series as S
from trained import CLASSIFIER, REGRESSOR, fit, result_of

try:                      # the optional extra `plot`: without it, every picture is refused (no skip)
    import matplotlib
except ImportError:
    matplotlib = None


def refused_without_matplotlib(draw, *args) -> bool:
    """True when matplotlib is missing and ``draw(*args)`` refused with a UserError."""
    if matplotlib is not None:
        return False
    with pytest.raises(UserError):
        draw(*args)
    return True

#: the regressor with its hidden layer written in one node: no affine node of the input
FUSED = REGRESSOR.replace("  z1: W1 @ x + b1\n  h: {act}(z1)\n", "  h: {act}(W1 @ x + b1)\n")


def moons(**kw):
    return fit(CLASSIFIER, **{"H": 6, "n": 200, "epochs": 5, "lr": 0.1, **kw})


def sinusoid(**kw):
    return fit(REGRESSOR, **{"H": 3, "n": 120, "epochs": 10, "lr": 0.05, "data": "sinusoid", **kw})


# ------------------------------------------------------------------ Fitted
@pytest.mark.parametrize("standardized", [True, False])
def test_nodes_are_the_forward_pass_on_standardized_rows(standardized):
    f = moons(standardized=standardized)
    X = f.val.X[:7]
    got = f.nodes(X)
    assert set(got) == {"z", "h", "o", "y"}
    for i, row in enumerate(X):
        leaves = {**f.params, "x": (row - f.shift) / f.scale, "t": np.eye(2)[0]}
        want = forward_values(f.graph, leaves, f.dims)
        for name in got:
            assert np.allclose(got[name][i], want[name])


def test_classify_gives_the_accuracy_training_measured():
    f = moons()
    assert np.mean(f.classify(f.val.X) == f.val.y) == pytest.approx(f.metrics["accuracy"])
    assert np.array_equal(f.classify(f.val.X), np.argmax(f.predict(f.val.X), axis=1))


def test_regression_predicts_the_node_the_loss_compares_with_the_target():
    f = sinusoid()
    X = f.val.X
    assert np.allclose(f.predict(X), f.nodes(X)["y_hat"])
    mse = np.mean(np.sum((f.predict(X) - f.val.y) ** 2, axis=1))
    assert mse == pytest.approx(f.metrics["final_val_loss"])


@pytest.mark.parametrize("standardized", [True, False])
def test_first_layer_is_the_trained_weights_in_data_units(standardized):
    f = moons(standardized=standardized)
    W, b = f.first_layer()
    W_std, b_std = f.params["W"], f.params["b"]
    assert np.allclose(W, W_std / f.scale)
    assert np.allclose(b, b_std - W_std @ (f.shift / f.scale))
    X = np.random.default_rng(1).normal(size=(9, 2)) * 3
    assert np.allclose(f.nodes(X)["z"], X @ W.T + b)


def test_first_layer_is_none_when_the_first_node_is_not_affine():
    f = fit(FUSED, H=3, n=80, epochs=2, data="sinusoid")
    assert f.first_layer() is None
    assert f.hidden() == ["h"]


def test_hidden_units_are_the_nonlinear_nodes_of_a_free_size():
    assert moons().hidden() == ["h"]          # not y = softmax(o): its size is the data's
    f = sinusoid(act="relu")
    xs = S.x_grid([f], 50)
    curves = S.hidden_curves(f, xs)
    assert np.allclose(curves["h"], f.nodes(xs)["h"])
    assert curves["h"].shape == (50, 3)


# ------------------------------------------------------------------ what the pictures show
def test_region_grid_is_the_networks_prediction():
    f = moons()
    xs, ys, classes = S.region_grid(f, n=25)
    XX, YY = np.meshgrid(xs, ys)
    pred = np.argmax(f.predict(np.column_stack([XX.ravel(), YY.ravel()])), axis=1)
    assert np.array_equal(classes.ravel(), pred)
    assert set(np.unique(classes)) == {0, 1}


def test_unit_lines_are_where_the_pre_activation_is_zero():
    f = moons(H=8)
    box = S.view_box(f)
    lines = S.unit_lines(f)
    assert lines
    for a, b in lines:
        z = f.nodes(np.array([a, b]))["z"]
        unit = np.argmin(np.abs(z[0]))
        assert np.allclose(z[:, unit], 0, atol=1e-9)
        for x, y in (a, b):
            assert box[0] - 1e-9 <= x <= box[1] + 1e-9 and box[2] - 1e-9 <= y <= box[3] + 1e-9


@settings(max_examples=60, deadline=None)
@given(st.floats(-5, 5), st.floats(-5, 5), st.floats(-5, 5))
def test_a_clipped_line_lies_on_the_line_inside_the_box(w0, w1, c):
    box = (-1.0, 2.0, -0.5, 1.5)
    seg = S.clip_line((w0, w1), c, box)
    if seg is None:
        # the line misses the box: the corners are all on one side
        corners = [w0 * x + w1 * y + c for x in box[:2] for y in box[2:]]
        assert all(v > 0 for v in corners) or all(v < 0 for v in corners) or (w0 == 0 and w1 == 0) \
            or min(map(abs, corners)) < 1e-9
        return
    for x, y in seg:
        assert abs(w0 * x + w1 * y + c) <= 1e-9 * (1 + abs(c) + abs(w0) + abs(w1)) * 10
        assert box[0] - 1e-12 <= x <= box[1] + 1e-12 and box[2] - 1e-12 <= y <= box[3] + 1e-12


def _run(setting: dict, loss, val_loss, repeat=0, **extra) -> dict:
    return {"setting": setting, "lr": setting["lr"], "width": None, "repeat": repeat,
            "loss": loss, "val_loss": val_loss, "val_accuracy": [None] * len(loss), **extra}


def test_loss_series_mean_and_std_over_repeats_per_setting():
    a, b = {"lr": 0.1, "act": "relu"}, {"lr": 0.1, "act": "tanh"}
    train = {"runs": [_run(a, [3.0, 1.0], [4.0, 2.0]), _run(a, [1.0, 3.0], [2.0, 2.0], 1),
                      _run(b, [5.0, None], [6.0, None])]}
    xlabel, lines = S.loss_series(train)
    assert xlabel == "epoch"
    assert [(s.label, s.part) for s in lines] == [("act relu", "train"), ("act relu", "val"),
                                                   ("act tanh", "train"), ("act tanh", "val")]
    assert lines[0].y == [2.0, 2.0] and lines[0].std == [1.0, 1.0]
    assert lines[2].finite().y == [5.0] and lines[2].std is None


def test_loss_series_per_iteration_when_runs_logged_iterations():
    it = {"step": [100, 200, 300], "loss": [3.0, 2.0, 1.0], "val_loss": [3.5, 2.5, 1.5]}
    train = {"runs": [_run({"lr": 0.01}, [1.0], [1.0], iterations=it)]}
    xlabel, lines = S.loss_series(train)
    assert xlabel == "iteration"
    assert lines[0].x == [100, 200, 300] and lines[1].y == [3.5, 2.5, 1.5]


def test_sweep_view_lines_per_value_of_the_second_key():
    rows = [{"setting": {"lr": 0.01, "H": h, "act": act}, "final_loss": h + (act == "relu"),
             "final_loss_std": 0.1, "final_val_loss": 2.0, "test_loss": 3.0}
            for act in ("relu", "sigmoid") for h in (0, 1, 10)]
    view = S.sweep_view({"sweep": rows})
    assert view.key == "H" and view.scale == "category" and view.ticks == ["0", "1", "10"]
    train_lines = [s for s in view.loss if s.part == "train"]
    assert [s.label for s in train_lines] == ["act relu", "act sigmoid"]
    assert train_lines[0].y == [1, 2, 11] and train_lines[1].y == [0, 1, 10]
    assert {s.part for s in view.loss} == {"train", "val", "test"} and not view.accuracy
    lr = S.sweep_view({"sweep": [{"setting": {"lr": v}, "final_loss": 1.0} for v in (0.001, 0.03)]})
    assert lr.scale == "log" and lr.x == [0.001, 0.03]
    assert S.sweep_view({"sweep": rows[:1]}) is None


# ------------------------------------------------------------------ the PNGs
def _size(path) -> tuple[int, int]:
    from matplotlib.image import imread
    img = imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    return img.shape[1], img.shape[0]


def test_write_plots_regression_sweep(tmp_path):
    fits = [sinusoid(H=h) for h in (1, 2, 3, 10)]
    res = result_of(REGRESSOR.replace("  dims: {{H: {H}}}\n", "  hidden: {{dim: H, values: [1, 2, 3, 10]}}\n"),
                    fits, fits[2], data="sinusoid")
    if refused_without_matplotlib(plots.write_plots, res, tmp_path / "out"):
        return
    paths = plots.write_plots(res, tmp_path / "out")
    assert [p.name for p in paths] == ["losses.png", "sweep.png", "fit.png", "hidden.png"]
    w, h = _size(tmp_path / "out" / "fit.png")
    assert (w, h) == (round(8.0 * plots.DPI), round(6.0 * plots.DPI))      # 2 x 2 panels for 4 fits
    assert len(plots.sweep_figure(res.to_json()).axes) == 1                 # no accuracy panel


def test_write_plots_classifier(tmp_path):
    f = moons()
    res = result_of(CLASSIFIER, [f], f)
    if refused_without_matplotlib(plots.write_plots, res, tmp_path):
        return
    paths = plots.write_plots(res, tmp_path)
    assert [p.name for p in paths] == ["losses.png", "accuracy.png", "regions.png"]
    for p in paths:
        assert min(_size(p)) > 300


def test_an_output_that_is_a_directory_fails_before_drawing(tmp_path, monkeypatch):
    f = moons()
    if refused_without_matplotlib(plots.plot_regions, f, tmp_path / "r.png"):
        return
    import matplotlib.pyplot as plt

    def no_drawing(*a, **k):
        raise AssertionError("drew before checking the output")
    monkeypatch.setattr(plt, "subplots", no_drawing)
    for draw, arg in ((plots.plot_regions, f), (plots.plot_losses, {"runs": []}), (plots.plot_fit, [f])):
        with pytest.raises(UserError):
            draw(arg, tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError):
        plots.write_plots(result_of(CLASSIFIER, [f], f), tmp_path / "file")
    assert (tmp_path / "file").read_text() == "x"


#: seed 002's 3-5-4 network: three hidden layers of free sizes
DEEP = """\
id: deep
title: deep
dims: {{D: 1, A: 3, B: 5, E: 4, K: 1}}
symbols:
  x: {{shape: [D], role: input}}
  y: {{shape: [K], role: target, kind: real}}
  W1: {{shape: [A, D], role: param}}
  b1: {{shape: [A], role: param}}
  W2: {{shape: [B, A], role: param}}
  b2: {{shape: [B], role: param}}
  W3: {{shape: [E, B], role: param}}
  b3: {{shape: [E], role: param}}
  V: {{shape: [K, E], role: param}}
forward:
  h1: {act}(W1 @ x + b1)
  h2: {act}(W2 @ h1 + b2)
  h3: {act}(W3 @ h2 + b3)
  o: V @ h3
loss:
  l: sum((o - y)**2)
check:
  data: {{generator: {data}, n: {n}, seed: 0}}
  train: {{lr: {lr}, epochs: {epochs}, seed: 0}}
"""


def test_every_hidden_layer_gets_a_panel(tmp_path):
    f = fit(DEEP, act="relu", data="sinusoid", n=100, epochs=3, lr=0.01)
    assert f.hidden() == ["h1", "h2", "h3"]
    assert f.first_layer() is None                       # relu(W1 @ x + b1) is the first node
    assert np.allclose(f.predict(f.val.X), f.nodes(f.val.X)["o"])
    if refused_without_matplotlib(plots.plot_hidden, f, tmp_path / "h.png"):
        return
    plots.plot_hidden(f, tmp_path / "h.png")
    assert _size(tmp_path / "h.png")[0] == round(4.2 * 4 * plots.DPI)


def test_one_row_of_hidden_units_per_fitted_network(tmp_path):
    """As seed 002 draws the units of its 2-, 3- and 10-unit networks: a row per setting."""
    fits = [fit(DEEP, act=act, data="sinusoid", n=100, epochs=2, lr=0.01) for act in ("relu", "tanh")]
    if refused_without_matplotlib(plots.plot_hidden, fits, tmp_path / "h.png"):
        return
    plots.plot_hidden(fits[:1], tmp_path / "one.png")
    plots.plot_hidden(fits, tmp_path / "two.png")
    (w1, h1), (w2, h2) = _size(tmp_path / "one.png"), _size(tmp_path / "two.png")
    assert w1 == w2 and h2 == round(2 * 3.2 * plots.DPI) and h1 == round(3.2 * plots.DPI)


def test_the_first_layer_is_the_last_affine_node_before_the_nonlinearity():
    split = CLASSIFIER.replace("  z: W @ x + b\n", "  a: W @ x\n  z: a + b\n")
    f = fit(split, H=5, n=100, epochs=2)
    name, W, b = f.first_affine()
    assert name == "z"
    X = np.random.default_rng(2).normal(size=(6, 2))
    assert np.allclose(f.nodes(X)["z"], X @ W.T + b)
    assert not np.allclose(b, 0)


# ------------------------------------------------------------------ which run a picture shows
def checked(template: str, extra: str, **fmt):
    """run_check of ``template`` with ``extra`` in place of its check.dims line."""
    from derivkit.training import run_check
    from helpers import graph_from_text
    text = template.replace("  dims: {{H: {H}}}\n", extra).format(
        **{"H": 3, "act": "tanh", "data": "moons", "n": 80, "lr": 0.05, "epochs": 3, **fmt})
    return run_check(*graph_from_text(text))


@pytest.fixture(scope="module")
def repeated():
    return checked(REGRESSOR, "  sweep: {{H: [1, 2]}}\n  repeats: 3\n", data="sinusoid")


def test_every_run_keeps_its_network_and_fits_are_each_settings_best(repeated):
    r = repeated
    assert [f.run for f in r.run_fits] == [run["run"] for run in r.runs]
    for f, run in zip(r.run_fits, r.runs):
        assert f.setting == run["setting"] and f.metrics["final_val_loss"] == run["final_val_loss"]
        assert np.isclose(np.mean((f.predict(f.val.X)[:, 0] - f.val.y[:, 0]) ** 2), run["final_val_loss"])
    for f in r.fits:
        mine = [run for run in r.runs if run["setting"] == f.setting]
        assert f.best_of == 3 and f.metrics["final_val_loss"] == min(m["final_val_loss"] for m in mine)
    assert "run_fits" not in r.to_json()


def test_plot_fit_draws_each_repeat_and_names_the_best_run(repeated):
    if matplotlib is None:
        return
    fig = plots.fit_figure(repeated.fits, repeated.run_fits)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 2
    for ax, f in zip(panels, repeated.fits):
        widths = sorted(line.get_linewidth() for line in ax.get_lines())
        assert len(widths) == 3 and widths[-1] > widths[0] == widths[1]      # 2 thin, the best bold
        assert "best of 3 runs" in ax.get_title() and f"{f.metrics['final_loss']:.3g}" in ax.get_title()
    alone = plots.fit_figure(repeated.fits)                                   # without the runs: the best only
    assert [len(ax.get_lines()) for ax in alone.axes if ax.get_visible()] == [1, 1]
    hidden = plots.hidden_figure(repeated.fits)
    assert all("best of 3 runs" in row.get_title() for row in hidden.axes[::2])


def test_the_sheet_draws_a_few_repeats_beside_the_best(repeated):
    from derivkit.sheets.training import training_section
    t = training_section(repeated)
    for ax in t.fits:
        assert [line.label for line in ax.lines][-3:] == ["other runs", "", "fitted"]
        assert "best of 3 runs" in ax.title


def test_regions_after_retraining_say_which_points_and_which_network():
    from derivkit.sheets.training import training_section
    for retrain in (False, True):
        r = checked(CLASSIFIER, f"  retrain_on_all: {str(retrain).lower()}\n")
        points, name = S.shown_points(r.fitted)
        assert r.fitted.retrained == retrain
        assert len(points) == (r.data["n_train"] + r.data["n_val"] if retrain else r.data["n_val"])
        (axis,) = training_section(r).regions
        assert axis.title.startswith("training + validation points" if retrain else "validation points")
        assert ("retrained" in axis.title) == retrain
        if matplotlib is not None:
            title = plots.regions_figure(r.fitted).axes[0].get_title()
            assert ("training + validation points" in title) == retrain and ("retrained" in title) == retrain


# ------------------------------------------------------------------ many settings
def sweep_rows(**values):
    """A sweep table over the Cartesian product of ``values`` (final losses made up)."""
    import itertools
    rows = []
    for i, combo in enumerate(itertools.product(*values.values())):
        rows.append({"setting": dict(zip(values, combo)), "final_loss": 1.0 / (i + 1), "final_loss_std": 0.01,
                     "final_val_loss": 1.2 / (i + 1), "final_val_loss_std": 0.02})
    return {"sweep": rows}


@given(st.integers(1, 60))
def test_the_palette_has_a_distinct_colour_per_setting(n):
    if matplotlib is None:
        return
    from matplotlib.colors import to_rgba
    assert len({to_rgba(c) for c in plots.palette(n)}) == n


def test_a_choice_on_the_x_axis_gets_no_joining_line():
    if matplotlib is None:
        return
    for values, joined in (({"act": ["relu", "sigmoid"], "H": [2, 8]}, False), ({"H": [2, 8], "act": ["relu", "tanh"]}, True)):
        fig = plots.sweep_figure(sweep_rows(**values))
        drawn = [line for line in fig.axes[0].get_lines() if line.get_marker() in ("o", "s")]   # not the caps
        assert len(drawn) == 4 and all((line.get_linestyle() != "None") == joined for line in drawn)


def test_three_swept_keys_one_line_per_combination_of_the_others_in_one_legend():
    if matplotlib is None:
        return
    fig = plots.sweep_figure(sweep_rows(lr=[0.001, 0.01, 0.1], H=[0, 2, 8], act=["relu", "tanh"]))
    (legend,) = fig.legends
    names = [t.get_text() for t in legend.get_texts()]
    assert names[:6] == [f"H {h}, act {a}" for h in (0, 2, 8) for a in ("relu", "tanh")]
    assert names[6:] == ["training", "validation"] and not fig.axes[0].get_legend()
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.001", "0.01", "0.1"]
    assert all(not t.get_text() for t in ax.get_xticklabels(minor=True))
    colours = {tuple(line.get_color()) if not isinstance(line.get_color(), str) else line.get_color()
               for line in ax.get_lines() if len(line.get_xdata()) > 1}
    assert len(colours) == 6
