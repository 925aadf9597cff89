"""The pictures of a training run as PNG files (matplotlib, Agg): the seeds' figures.

* :func:`plot_losses` — training and validation loss per epoch or per iteration (seed 000
  Fig 1, seed 001 Figs 1-2);
* :func:`plot_accuracy` — training and validation accuracy per epoch (seed 000 Fig 2);
* :func:`plot_sweep` — each final metric against the swept value (seed 002 §2.3);
* :func:`plot_fit` — 1-D regression: the data and each setting's fitted function (seed 002
  Figs 2, 6);
* :func:`plot_hidden` — 1-D input: each hidden unit's activation against x (seed 002 Figs 3-5);
* :func:`plot_regions` — 2-D classification: the predicted regions, the validation points
  and each first-layer unit's line ``w_i · x + b_i = 0`` (seed 000 Fig 3);
* :func:`write_plots` — every picture that applies to a :class:`~.run.TrainResult`.

The numbers come from :mod:`.series` (the sheet's plots use the same).  Every output path
is checked before anything is drawn and written atomically.
"""
from __future__ import annotations

import io
import math
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import Location, UserError
from ..outputs import check_output, write_atomic
from . import series as S
from .model import Fitted

STYLE = {"train": "-", "val": "--", "test": ":"}
DPI = 110


def require_matplotlib():
    """matplotlib's pyplot (Agg back end), or a UserError naming the extra to install."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("drawing pictures needs matplotlib: pip install 'derivkit[plot]'") from None
    return plt


def _save(fig, path) -> None:
    """``fig`` as a PNG at ``path`` (written atomically); a legend outside the axes widens it."""
    plt = require_matplotlib()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight" if fig.legends else None)
    finally:
        plt.close(fig)
    write_atomic(path, buf.getvalue(), "plot")


def _start(path):
    """pyplot, once matplotlib is there and ``path`` is a place to write a picture."""
    plt = require_matplotlib()
    check_output(path, "plot")
    return plt


def palette(n: int) -> list:
    """``n`` distinct colours: matplotlib's ten, then tab20's twenty, then viridis sampled."""
    import matplotlib
    if n <= 10:
        return [f"C{i}" for i in range(n)]
    if n <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(n)]
    cmap = matplotlib.colormaps["viridis"]
    return [cmap(i / (n - 1)) for i in range(n)]


def _colors(lines: list[S.Series]) -> dict:
    """One colour per setting (a line's label), in order of appearance."""
    names = list(dict.fromkeys(s.label for s in lines))
    return dict(zip(names, palette(len(names))))


MARKER = {"train": "o", "val": "s", "test": "^"}


def _legend(fig, colors: dict, parts: list[str], markers: bool = False, joined: bool = True) -> None:
    """One legend for the whole figure, right of the axes: a coloured entry per setting, then a
    black entry per quantity (its line style): 18 settings x 3 quantities take 21 entries, not 54."""
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color=c, linewidth=2, label=name) for name, c in colors.items() if name]
    one = "" in colors and len(colors) == 1
    for part in dict.fromkeys(parts):
        handles.append(Line2D([], [], color=colors[""] if one else "k", linestyle=STYLE[part] if joined else "none",
                              marker=MARKER[part] if markers else None, label=S.PARTS[part]))
    if handles:
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.98), fontsize="small",
                   ncol=1 if len(handles) <= 24 else 2, frameon=False)


def _draw(ax, lines: list[S.Series], colors: dict) -> None:
    for s in lines:
        s = s.finite()
        if not s.x:
            continue
        color = colors[s.label]
        ax.plot(s.x, s.y, STYLE[s.part], color=color)
        if s.std is not None:
            lo = [m - (d or 0.0) for m, d in zip(s.y, s.std)]
            hi = [m + (d or 0.0) for m, d in zip(s.y, s.std)]
            ax.fill_between(s.x, lo, hi, color=color, alpha=0.15, linewidth=0)


def _whole_epochs(ax) -> None:
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def losses_figure(train: dict):
    """The figure of :func:`plot_losses`."""
    plt = require_matplotlib()
    xlabel, lines = S.loss_series(train)
    colors = _colors(lines)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    _draw(ax, lines, colors)
    values = [v for s in lines for v in s.finite().y]
    if values and min(values) > 0 and max(values) / min(values) > 50:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    _whole_epochs(ax)
    ax.set_ylabel("loss")
    _legend(fig, colors, [s.part for s in lines])
    return fig


def plot_losses(train: dict, path) -> None:
    """Training and validation loss of each setting (mean ± std over repeats) against the epoch,
    or against the iteration when the runs logged every N minibatches."""
    _start(path)
    _save(losses_figure(train), path)


def plot_curve(result, path) -> None:
    """``solve --plot``: :func:`plot_losses` of a :class:`~.run.TrainResult`."""
    plot_losses(result.to_json(), path)


def accuracy_figure(train: dict):
    """The figure of :func:`plot_accuracy`."""
    plt = require_matplotlib()
    lines = S.accuracy_series(train)
    colors = _colors(lines)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    _draw(ax, lines, colors)
    ax.set_xlabel("epoch")
    _whole_epochs(ax)
    ax.set_ylabel("accuracy")
    _legend(fig, colors, [s.part for s in lines])
    return fig


def plot_accuracy(train: dict, path) -> None:
    """Training and validation accuracy of each setting (mean ± std) against the epoch."""
    _start(path)
    _save(accuracy_figure(train), path)


def sweep_figure(train: dict):
    """The figure of :func:`plot_sweep`."""
    plt = require_matplotlib()
    from matplotlib.ticker import NullFormatter
    view = S.sweep_view(train)
    if view is None:
        raise ValueError("plot_sweep needs a sweep over at least two settings")
    panels = [("loss", view.loss)] + ([("accuracy", view.accuracy)] if view.accuracy else [])
    colors = _colors(view.loss + view.accuracy)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.2), squeeze=False,
                             layout="constrained")
    for ax, (name, lines) in zip(axes[0], panels):
        for s in lines:
            keep = [i for i, v in enumerate(s.y) if v is not None]
            err = None if all(s.std[i] is None for i in keep) else [s.std[i] or 0.0 for i in keep]
            xs = [s.x[i] + _nudge(view, lines, s) for i in keep]
            ax.errorbar(xs, [s.y[i] for i in keep], yerr=err, marker=MARKER[s.part],
                        linestyle=STYLE[s.part] if view.joined else "none",
                        color=colors[s.label], capsize=3, markersize=4)
        if view.scale == "log":
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())     # no 4x10^-2 between the swept rates
        else:
            ax.set_xlim(-0.5, len(view.x) - 0.5)
        ax.set_xticks(view.x)
        ax.set_xticklabels(view.ticks)
        ax.set_xlabel(view.key)
        ax.set_ylabel(f"final {name}")
    _legend(fig, colors, [s.part for s in view.loss + view.accuracy], markers=True, joined=view.joined)
    return fig


def _nudge(view: S.SweepView, lines: list[S.Series], s: S.Series) -> float:
    """A small sideways shift per line on a categorical axis, so the error bars of the
    settings and quantities at one category do not hide each other."""
    slots = list(dict.fromkeys((line.label, line.part) for line in lines))
    if view.scale == "log" or len(slots) < 2:
        return 0.0
    return 0.3 * (slots.index((s.label, s.part)) / (len(slots) - 1) - 0.5)


def plot_sweep(train: dict, path) -> None:
    """Final training/validation/test loss (and accuracy) against the first swept key, ± std
    error bars; one line per combination of the other swept keys (markers only, no joining
    line, when the x values are a choice's)."""
    _start(path)
    _save(sweep_figure(train), path)


def _grid_shape(n: int) -> tuple[int, int]:
    cols = min(n, 3 if n != 4 else 2)
    return math.ceil(n / cols), cols


def fit_figure(fits: list[Fitted], runs: list[Fitted] | None = None):
    """The figure of :func:`plot_fit`."""
    plt = require_matplotlib()
    if not fits or not all(S.is_1d_regression(f) for f in fits):
        raise ValueError("plot_fit needs networks fitted to 1-D regression data")
    xs = S.x_grid(fits)
    keys = S.varying([f.setting for f in fits])
    rows, cols = _grid_shape(len(fits))
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 3.0 * rows), squeeze=False,
                             sharex=True, sharey=True)
    for ax, fit in zip(axes.ravel(), fits):
        others = [r for r in S.repeats_of(fit, runs or []) if r.run != fit.run]
        for i, other in enumerate(others):
            ax.plot(xs, S.fitted_curve(other, xs), color="C0", linewidth=0.8, alpha=0.35,
                    label="other runs" if i == 0 else None)
        _data_and_fit(ax, fit, xs)
        ax.set_title(S.fit_title(fit, keys), fontsize="small")
    for ax in axes.ravel()[len(fits):]:
        ax.set_visible(False)
    axes[0][0].legend(fontsize="x-small")
    fig.tight_layout()
    return fig


def plot_fit(fits: list[Fitted], path, runs: list[Fitted] | None = None) -> None:
    """1-D regression: the training (and test) points and each setting's fitted function, one
    panel per setting: its best repeat bold, every other repeat in ``runs`` thin and light (seed
    002 Fig. 1: several local optima), titled with the setting and that best run's errors."""
    _start(path)
    _save(fit_figure(fits, runs), path)


def _data_and_fit(ax, fit: Fitted, xs: np.ndarray) -> None:
    ax.scatter(fit.train.X[:, 0], fit.train.y.reshape(len(fit.train.y), -1)[:, 0], s=6, color="0.6",
               label="training + validation data" if fit.retrained else "training data")
    if fit.test is not None and len(fit.test):
        ax.scatter(fit.test.X[:, 0], fit.test.y.reshape(len(fit.test.y), -1)[:, 0], s=6, color="C1",
                   alpha=0.6, label="test data")
    ax.plot(xs, S.fitted_curve(fit, xs), color="C0", linewidth=2,
            label=f"fitted ({S.which_run(fit)})" if S.which_run(fit) else "fitted")


def hidden_figure(fits: Fitted | list[Fitted]):
    """The figure of :func:`plot_hidden`."""
    plt = require_matplotlib()
    rows = [f for f in ([fits] if isinstance(fits, Fitted) else fits) if f.hidden()]
    if not rows:
        raise ValueError("these networks have no hidden units")
    if any(f.n_features != 1 for f in rows):
        raise ValueError("plot_hidden needs networks with one input feature")
    xs = S.x_grid(rows)
    curves = [S.hidden_curves(f, xs) for f in rows]
    cols = 1 + max(len(c) for c in curves)
    fig, axes = plt.subplots(len(rows), cols, figsize=(4.2 * cols, 3.2 * len(rows)), squeeze=False)
    for fit, hidden, row in zip(rows, curves, axes):
        if S.is_1d_regression(fit):
            _data_and_fit(row[0], fit, xs)
        row[0].set_title(S.fit_title(fit, list(fit.setting)), fontsize="small")
        for ax, (name, values) in zip(row[1:], hidden.items()):
            for i in range(values.shape[1]):
                ax.plot(xs, values[:, i], linewidth=1.2)
            ax.set_title(f"{name}: {values.shape[1]} unit{'' if values.shape[1] == 1 else 's'}", fontsize="small")
        for ax in row[1 + len(hidden):]:
            ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("x")
    fig.tight_layout()
    return fig


def plot_hidden(fits: Fitted | list[Fitted], path) -> None:
    """1-D input: one row per fitted network (per swept setting, as seed 002 draws 2, 3 and 10
    units): the data and the fitted function, and beside it each hidden node's units against x
    (one line per unit; one panel per hidden layer); each row's title says which run it is."""
    _start(path)
    _save(hidden_figure(fits), path)


def regions_figure(fit: Fitted):
    """The figure of :func:`plot_regions`."""
    plt = require_matplotlib()
    if not S.is_2d_classifier(fit):
        raise ValueError("plot_regions needs a classifier fitted to 2-D data")
    from matplotlib.colors import ListedColormap
    xs, ys, classes = S.region_grid(fit)
    k = max(int(classes.max()) + 1, int(fit.train.y.max()) + 1)
    light = ListedColormap([_tint(f"C{i}") for i in range(k)])
    fig, ax = plt.subplots(figsize=(5.6, 5.0))
    ax.pcolormesh(xs, ys, classes, cmap=light, vmin=-0.5, vmax=k - 0.5, shading="auto")
    points, shown = S.shown_points(fit)
    for c in range(k):
        sel = points.y == c
        ax.scatter(points.X[sel, 0], points.X[sel, 1], s=10, color=f"C{c}", edgecolor="k", linewidth=0.3,
                   label=f"class {c}")
    lines = S.unit_lines(fit)
    for i, ((x0, y0), (x1, y1)) in enumerate(lines):
        ax.plot([x0, x1], [y0, y1], color="k", linewidth=0.7, alpha=0.6,
                label="hidden units' lines" if i == 0 else None)
    x0, x1, y0, y1 = S.view_box(fit)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(f"{S.fit_title(fit, list(fit.setting))}\n{shown} and predicted classes", fontsize="small")
    ax.legend(fontsize="x-small", loc="upper right")
    fig.tight_layout()
    return fig


def plot_regions(fit: Fitted, path) -> None:
    """2-D classification: predicted class over a grid, the validation points by class (the
    training + validation points once retrained on all data), and each first-layer unit's line
    ``w_i · x + b_i = 0`` in the data's units, clipped to the view."""
    _start(path)
    _save(regions_figure(fit), path)


def _tint(color: str, amount: float = 0.75) -> tuple:
    from matplotlib.colors import to_rgb
    r, g, b = to_rgb(color)
    return (r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount)


# ------------------------------------------------------------------ all of them
PICTURES = ("losses.png", "accuracy.png", "sweep.png", "fit.png", "hidden.png", "regions.png")


def pictures(result) -> dict[str, tuple]:
    """The pictures that apply to ``result``: file name -> (draw function, its first argument)."""
    train = result.to_json()
    fits = list(getattr(result, "fits", None) or [])
    best = getattr(result, "fitted", None) or (fits[0] if len(fits) == 1 else None)
    out: dict[str, tuple] = {}
    if train.get("runs"):
        out["losses.png"] = (plot_losses, train)
    if S.accuracy_series(train):
        out["accuracy.png"] = (plot_accuracy, train)
    if S.sweep_view(train) is not None:
        out["sweep.png"] = (plot_sweep, train)
    if fits and all(S.is_1d_regression(f) for f in fits):
        out["fit.png"] = (partial(plot_fit, runs=list(getattr(result, "run_fits", None) or [])), fits)
    with_units = [f for f in fits if f.n_features == 1 and f.hidden()]
    if with_units:
        out["hidden.png"] = (plot_hidden, with_units)
    if best is not None and S.is_2d_classifier(best):
        out["regions.png"] = (plot_regions, best)
    return out


def write_plots(result, directory) -> list[Path]:
    """Every picture that applies to ``result`` (a TrainResult) as a PNG in ``directory``
    (created); the paths written, in the order of :data:`PICTURES`."""
    require_matplotlib()
    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise UserError(f"cannot write the plots: {d} is not a directory", Location(str(d)))
    todo = pictures(result)
    paths = [d / name for name in PICTURES if name in todo]
    for p in paths:
        check_output(p, "plot")
    for p in paths:
        draw, arg = todo[p.name]
        draw(arg, p)
    return paths
