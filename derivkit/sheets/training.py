"""The sheet's training section as data: curves, the sweep, fitted functions, hidden units, regions.

:func:`training_section` reads the contract's ``train`` JSON (``TrainResult.to_json()``) and,
where a picture needs the network itself, the result's ``fits``/``fitted``
(:class:`~derivkit.training.model.Fitted`).  The numbers are those of the PNG pictures
(:mod:`derivkit.training.series`); the templates draw them with pgfplots (LaTeX) or list
them in tables (Markdown).  Every plot is made only when it applies: accuracy for
classification, the sweep plot with a sweep, the fitted function and hidden units for 1-D
input, the validation points and the first layer's lines for 2-D classification.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field

import numpy as np

from ..training import series as S

#: points per drawn function (fitted functions and hidden units)
CURVE_POINTS = 60
#: at most this many points per training curve (a long run is drawn at evenly spaced epochs,
#: the last always included: TeX's memory holds a few thousand marks per page)
MAX_CURVE_POINTS = 80
#: at most this many points on one axis of curves: a sweep of many settings draws each with fewer
MAX_AXIS_POINTS = 600
#: a 2-D picture's predicted classes: a coarse grid of this many marks per side
REGION_MARKS = 24
#: at most this many validation points drawn in a 2-D picture
MAX_POINTS = 300
#: pgfplots styles of the lines, in turn (colour, mark)
COLORS = ("blue", "red", "black!60!green", "orange!90!black", "violet", "black", "cyan!70!black", "brown")
#: at most this many other repeats drawn thin beside a setting's best fitted function
MAX_REPEAT_LINES = 4
DASH = {"train": "solid", "val": "dashed", "test": "dotted"}


@dataclass
class Curve:
    label: str                       # plain
    points: list[tuple[float, float]]
    std: list[float] | None = None
    color: str = ""                  # an xcolor colour (made here); "" for pgfplots' cycle list


@dataclass
class Line:
    """One pgfplots ``\\addplot``: its options (made here, never from the problem), its coordinates."""

    label: str                       # plain; "" for no legend entry
    options: str
    coords: str


@dataclass
class Axis:
    """One pgfplots axis: options made here; ``xticklabels`` plain strings (escaped in the template)."""

    title: str                       # plain
    xlabel: str                      # plain
    ylabel: str                      # plain
    lines: list[Line]
    options: str = ""
    xticklabels: list[str] | None = None
    legend: bool = True


@dataclass
class Training:
    description: str                 # plain
    curves: list[Curve]
    val_curves: list[Curve]
    sweep: list[dict]                # rows of plain strings
    sweep_columns: list[str]
    summary: list[tuple[str, str]]   # (plain label, plain value)
    log_scale: bool = False
    epoch_tick: int = 1              # distance of the ticks on the x axis of the loss curves
    xlabel: str = "epoch"            # "epoch", or "iteration" for curves logged every N minibatches
    accuracy: list[Curve] = field(default_factory=list)
    #: the sweep plot, the fitted functions, the hidden units, the 2-D picture: each may be empty
    sweep_plots: list[Axis] = field(default_factory=list)
    fits: list[Axis] = field(default_factory=list)
    hidden: list[Axis] = field(default_factory=list)
    regions: list[Axis] = field(default_factory=list)


def training_section(result) -> Training:
    """The training section of a sheet for ``result`` (a TrainResult, or anything with
    ``to_json()`` and optionally ``fits``/``fitted``)."""
    t = result.to_json()
    fits = list(getattr(result, "fits", None) or [])
    fitted = getattr(result, "fitted", None) or (fits[0] if len(fits) == 1 else None)
    repeats = int(t.get("repeats") or 1)
    fallback = f"lr {_fmt(t.get('lr'))}"
    xlabel, lines = S.loss_series(t)
    acc_lines = S.accuracy_series(t)
    colors = _colors([s.label for s in lines + acc_lines])      # one colour per setting
    most = max(10, min(MAX_CURVE_POINTS, MAX_AXIS_POINTS // max(1, len(colors))))
    curves = [_curve(s, fallback, colors, most) for s in lines if s.part == "train"]
    val_curves = [_curve(s, fallback, colors, most) for s in lines if s.part == "val"]
    accuracy = [_curve(s, fallback, colors, most // 2, suffix=True) for s in acc_lines]
    sweep, cols = _sweep_table(t.get("sweep") or [], repeats)
    data = t.get("data") or {}
    s = t.get("settings") or {}
    test = f" and {data['n_test']} test" if data.get("n_test") else ""
    desc = (f"{data.get('name', 'data')}: {data.get('n_train', '?')} training, {data.get('n_val', '?')} "
            f"validation{test} samples; {s.get('optimizer', '?')}, batch size {s.get('batch_size', '?')}, "
            f"{s.get('epochs', '?')} epochs" + (f", {repeats} repeats (mean ± std)" if repeats > 1 else ""))
    finite = [v for c in curves for _, v in c.points if math.isfinite(v) and v > 0]
    log_scale = bool(finite) and max(finite) / min(finite) > 50
    span = max((c.points[-1][0] for c in curves if c.points), default=1)
    return Training(desc, curves, val_curves, sweep, cols, _summary(t), log_scale, _tick(span), xlabel,
                    accuracy, _sweep_plots(t), _fit_plots(fits, list(getattr(result, "run_fits", None) or [])),
                    _hidden_plots(fitted) if fitted is not None else [],
                    _region_plots(fitted) if fitted is not None else [])


def _curve(s: S.Series, fallback: str, colors: dict[str, str], most: int, suffix: bool = False) -> Curve:
    color = colors[s.label]
    s = s.finite()
    name = s.label or fallback
    if suffix:
        name = f"{name} ({S.PARTS[s.part]})"
    keep = _spread(len(s.x), most)
    return Curve(name, [(s.x[i], s.y[i]) for i in keep], None if s.std is None else [s.std[i] for i in keep],
                 color)


def _spread(n: int, most: int) -> list[int]:
    """At most ``most`` indices of ``range(n)``, evenly spaced, first and last included."""
    if n <= most:
        return list(range(n))
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


def _tick(span) -> int:
    return next(t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10**4, 2 * 10**4,
                            5 * 10**4, 10**5, 10**9) if span / t <= 10)


def _summary(t: dict) -> list[tuple[str, str]]:
    best = t.get("best") or {}
    shown = {k: v for k, v in best.items() if v is not None and not (k == "width" and len(best) > 2)}
    out = [(f"best {_HEAD.get(k, k)}", _fmt(v)) for k, v in (shown or {"lr": t.get("lr")}).items()]
    out += [("final training loss", _fmt(t.get("final_loss"))),
            ("final validation loss", _fmt(t.get("final_val_loss")))]
    if t.get("accuracy") is not None:
        out.append(("validation accuracy", f"{100 * t['accuracy']:.1f} %"))
    test = t.get("test") or {}
    if test.get("loss") is not None:
        out.append(("test loss", _fmt(test["loss"])))
    if test.get("accuracy") is not None:
        out.append(("test accuracy", f"{100 * test['accuracy']:.1f} %"))
    retrained = t.get("retrained") or {}
    for label, key in (("retrained on all data: training samples", "n_train"),
                       ("retrained: final training loss", "final_loss"), ("retrained: test loss", "test_loss")):
        if retrained.get(key) is not None:
            out.append((label, _fmt(retrained[key])))
    if retrained.get("test_accuracy") is not None:
        out.append(("retrained: test accuracy", f"{100 * retrained['test_accuracy']:.1f} %"))
    for name, e in (t.get("expect") or {}).items():      # only what the file expects
        out.append((f"expected {name.replace('_', ' ')} {_fmt(e['limit'])}",
                    f"{'met' if e['met'] else 'missed'} ({_fmt(e['value'])})"))
    return out


# ------------------------------------------------------------------ the sweep
_HEAD = {"lr": "learning rate", "width": "width"}
_METRICS = (("final loss", "final_loss"), ("final validation loss", "final_val_loss"),
            ("test loss", "test_loss"), ("accuracy", "accuracy"), ("test accuracy", "test_accuracy"))


def _sweep_table(rows: list[dict], repeats: int) -> tuple[list[dict], list[str]]:
    settings = [S.setting_of(r) for r in rows]
    keys = S.varying(settings) or ["lr"]
    cols = [_HEAD.get(k, k) for k in keys] + ["runs"]
    metrics = [(name, k) for name, k in _METRICS if any(r.get(k) is not None for r in rows)]
    cols += [name for name, _ in metrics] + ["diverged"]
    out = []
    for s, r in zip(settings, rows):
        row = {_HEAD.get(k, k): _fmt(s.get(k)) for k in keys}
        row["runs"] = _fmt(r.get("runs"))
        for name, k in metrics:
            row[name] = _pm(r.get(k), r.get(k + "_std"), repeats)
        row["diverged"] = _fmt(r.get("diverged"))
        out.append(row)
    return out, cols


def _colors(labels: list[str]) -> dict[str, str]:
    """One xcolor colour per distinct label: the eight named ones, or as many evenly spaced
    hues when there are more settings (an 18-setting sweep gets 18 colours)."""
    names = list(dict.fromkeys(labels))
    if len(names) <= len(COLORS):
        return dict(zip(names, COLORS))
    out = {}
    for i, name in enumerate(names):
        r, g, b = colorsys.hsv_to_rgb(i / len(names), 0.85, 0.8 if i % 2 else 0.6)
        out[name] = f"{{rgb,255:red,{round(255 * r)};green,{round(255 * g)};blue,{round(255 * b)}}}"
    return out


def _sweep_plots(t: dict) -> list[Axis]:
    view = S.sweep_view(t)
    if view is None:
        return []
    ticks = f"xtick={{{', '.join(_n(x) for x in view.x)}}}, "
    options = ticks + ("xmode=log, log ticks with fixed point, " if view.scale == "log"
                       else f"xmin=-0.5, xmax={len(view.x) - 0.5}, ")
    out = []
    for name, series in (("final loss", view.loss), ("final accuracy", view.accuracy)):
        if not series:
            continue
        lines = []
        colors = _colors([s.label for s in series])
        named: set = set()
        for s in series:
            pts = [(x, y, d) for x, y, d in zip(s.x, s.y, s.std or [None] * len(s.x)) if y is not None]
            coords = " ".join(f"({_n(x)}, {_n(y)})" + (f" +- (0, {_n(d)})" if d is not None else "")
                              for x, y, d in pts)
            # one legend entry per setting (its colour); the line style names the quantity (title)
            label = (s.label or S.PARTS[s.part]) if s.label not in named or not s.label else ""
            named.add(s.label)
            style = DASH[s.part] if view.joined else "only marks"
            lines.append(Line(label, f"color={colors[s.label]}, {style}, mark={MARK[s.part]}, mark size=1.2pt, "
                                     f"error bars/.cd, y dir=both, y explicit", coords))
        parts = ", ".join(f"{S.PARTS[p]} {DASH[p] if view.joined else MARK_NAME[p]}"
                          for p in dict.fromkeys(s.part for s in series))
        out.append(Axis(f"{name} against {view.key} ({parts})", view.key, name, lines, options, view.ticks))
    return out


MARK = {"train": "*", "val": "square*", "test": "triangle*"}
MARK_NAME = {"train": "dots", "val": "squares", "test": "triangles"}


# ------------------------------------------------------------------ pictures of fitted networks
def _fit_plots(fits, runs=()) -> list[Axis]:
    if not fits or not all(S.is_1d_regression(f) for f in fits):
        return []
    xs = S.x_grid(fits, CURVE_POINTS)
    keys = S.varying([f.setting for f in fits])
    return [_fit_axis(f, xs, S.fit_title(f, keys), runs) for f in fits]


def _fit_axis(fit, xs: np.ndarray, title: str, runs=()) -> Axis:
    lines = [Line("training + validation data" if fit.retrained else "training data",
                  "only marks, mark=*, mark size=0.6pt, color=black!40",
                  _coords(fit.train.X[:MAX_POINTS, 0], _first(fit.train.y)[:MAX_POINTS]))]
    if fit.test is not None and len(fit.test):
        lines.append(Line("test data", "only marks, mark=o, mark size=0.8pt, color=orange!90!black",
                          _coords(fit.test.X[:MAX_POINTS, 0], _first(fit.test.y)[:MAX_POINTS])))
    others = [r for r in S.repeats_of(fit, list(runs)) if r.run != fit.run][:MAX_REPEAT_LINES]
    for i, other in enumerate(others):
        lines.append(Line("other runs" if i == 0 else "", "no marks, thin, color=blue!35",
                          _coords(xs, S.fitted_curve(other, xs))))
    lines.append(Line("fitted", "no marks, thick, color=blue", _coords(xs, S.fitted_curve(fit, xs))))
    return Axis(title, "x", "y", lines)


def _hidden_plots(fit) -> list[Axis]:
    if fit.n_features != 1:
        return []
    xs = S.x_grid([fit], CURVE_POINTS)
    out = []
    for name, values in S.hidden_curves(fit, xs).items():
        lines = [Line("", f"no marks, color={COLORS[i % len(COLORS)]}", _coords(xs, values[:, i]))
                 for i in range(values.shape[1])]
        out.append(Axis(f"{name}: each of its {values.shape[1]} units", "x", name, lines, legend=False))
    if out and S.is_1d_regression(fit):
        out.insert(0, _fit_axis(fit, xs, S.fit_title(fit, list(fit.setting))))
    return out


def _region_plots(fit) -> list[Axis]:
    if not S.is_2d_classifier(fit):
        return []
    x0, x1, y0, y1 = S.view_box(fit)
    xs, ys, classes = S.region_grid(fit, REGION_MARKS)
    points, shown = S.shown_points(fit)
    lines = []
    k = int(max(classes.max(), points.y.max())) + 1
    XX, YY = np.meshgrid(xs, ys)
    for c in range(k):
        sel = classes.ravel() == c
        if sel.any():
            lines.append(Line("", f"only marks, mark=*, mark size=0.8pt, color={COLORS[c % len(COLORS)]}!30",
                              _coords(XX.ravel()[sel], YY.ravel()[sel])))
    for c in range(k):
        sel = points.y == c
        lines.append(Line(f"class {c}", f"only marks, mark=*, mark size=1pt, color={COLORS[c % len(COLORS)]}",
                          _coords(points.X[sel, 0][:MAX_POINTS], points.X[sel, 1][:MAX_POINTS])))
    for i, (a, b) in enumerate(S.unit_lines(fit)):
        lines.append(Line("hidden units' lines" if i == 0 else "", "no marks, thin, color=black!60",
                          _coords([a[0], b[0]], [a[1], b[1]])))
    options = f"xmin={_n(x0)}, xmax={_n(x1)}, ymin={_n(y0)}, ymax={_n(y1)}, "
    run = S.which_run(fit)
    title = f"{shown}, predicted classes and the first layer's lines" + (f" ({run})" if run else "")
    return [Axis(title, "x1", "x2", lines, options)]


def _first(y: np.ndarray) -> np.ndarray:
    return y.reshape(len(y), -1)[:, 0]


def _coords(xs, ys) -> str:
    return " ".join(f"({_n(x)}, {_n(y)})" for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y))


def _n(v) -> str:
    return f"{float(v):.5g}"


# ------------------------------------------------------------------ numbers as text
def _fmt(x, digits=4) -> str:
    if x is None:
        return "--"
    if isinstance(x, float) and not math.isfinite(x):
        return "diverged"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def _pm(mean, std, repeats: int) -> str:
    if mean is None:
        return "--"
    if repeats > 1 and std is not None:
        return f"{_fmt(mean)} ± {_fmt(std, 2)}"
    return _fmt(mean)
