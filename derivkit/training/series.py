"""The numbers each training picture shows, computed once for the PNGs and the sheet's plots.

Curves come from the contract's ``train`` JSON dictionary (one per setting: mean over repeats,
with the std where there are repeats); the fitted function, the hidden units, the predicted
regions and the first layer's lines come from :class:`~derivkit.training.model.Fitted`
networks, evaluated in the data's own units.  Nothing here draws: :mod:`.plots` draws with
matplotlib, :mod:`derivkit.sheets.training` writes pgfplots data.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .model import Fitted


@dataclass
class Series:
    """One line: ``y`` (mean) against ``x``, with the spread ``std`` over repeats (or None)."""

    label: str
    x: list
    y: list
    std: list | None = None
    #: which quantity: "train", "val" or "test"
    part: str = "train"

    def finite(self) -> "Series":
        """Only the points whose value is a finite number (a diverged run's tail dropped)."""
        keep = [i for i, v in enumerate(self.y) if v is not None and math.isfinite(v)]
        return Series(self.label, [self.x[i] for i in keep], [self.y[i] for i in keep],
                      None if self.std is None else [_num(self.std[i]) for i in keep], self.part)


PARTS = {"train": "training", "val": "validation", "test": "test"}


# ------------------------------------------------------------------ settings
def setting_of(entry: dict) -> dict:
    """The swept values of a run or a sweep row: its ``setting``, else its lr and width."""
    if entry.get("setting"):
        return dict(entry["setting"])
    out = {"lr": entry.get("lr")}
    if entry.get("width") is not None:
        out["width"] = entry["width"]
    return out


def varying(settings: list[dict]) -> list[str]:
    """The keys whose value differs between ``settings``, in the order they first appear."""
    keys: list[str] = []
    for s in settings:
        keys += [k for k in s if k not in keys]
    return [k for k in keys if len({_key(s.get(k)) for s in settings}) > 1]


def label(setting: dict, keys: list[str]) -> str:
    """``lr 0.01, H 3`` for the ``keys`` of a setting ("" for none)."""
    return ", ".join(f"{k} {_show(setting.get(k))}" for k in keys)


def _show(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _key(v):
    return repr(v)


def _groups(train: dict) -> list[tuple[dict, list[dict]]]:
    """The runs grouped by setting, in order of first appearance."""
    out: dict[str, tuple[dict, list[dict]]] = {}
    for run in train.get("runs") or []:
        s = setting_of(run)
        out.setdefault(_key(sorted(s.items(), key=str)), (s, []))[1].append(run)
    return list(out.values())


def _mean_std(rows: list[list]) -> tuple[list, list | None]:
    M = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=float)
    with warnings.catch_warnings():          # an all-NaN column: a diverged setting
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(M, axis=0) if M.size else np.array([])
        std = np.nanstd(M, axis=0) if len(rows) > 1 else None
    return [_num(v) for v in mean], (None if std is None else [_num(v) for v in std])


def _num(v):
    return None if v is None or not math.isfinite(float(v)) else float(v)


# ------------------------------------------------------------------ curves from the JSON
def _iterations(run: dict, log_every) -> dict | None:
    if run.get("iterations"):
        return run["iterations"]
    if run.get("iter_loss") and log_every:
        n = len(run["iter_loss"])
        return {"step": [log_every * (i + 1) for i in range(n)], "loss": run["iter_loss"]}
    return None


def loss_series(train: dict) -> tuple[str, list[Series]]:
    """(x label, curves): training and validation loss per epoch of each setting, or per
    iteration when the runs logged every N minibatches (``iterations``)."""
    groups = _groups(train)
    keys = varying([s for s, _ in groups])
    log_every = (train.get("settings") or {}).get("log_every")
    per_iter = bool(groups) and all(_iterations(r, log_every) for _, runs in groups for r in runs)
    out = []
    for s, runs in groups:
        name = label(s, keys)
        if per_iter:
            its = [_iterations(r, log_every) for r in runs]
            steps = min(its, key=lambda i: len(i["step"]))["step"]
            for part, key in (("train", "loss"), ("val", "val_loss")):
                if all(i.get(key) for i in its):
                    mean, std = _mean_std([i[key][:len(steps)] for i in its])
                    out.append(Series(name, list(steps), mean, std, part))
        else:
            for part, key in (("train", "loss"), ("val", "val_loss")):
                mean, std = _mean_std([r[key] for r in runs])
                out.append(Series(name, list(range(1, len(mean) + 1)), mean, std, part))
    return ("iteration" if per_iter else "epoch"), out


def accuracy_series(train: dict) -> list[Series]:
    """Training and validation accuracy per epoch of each setting (empty for regression)."""
    groups = _groups(train)
    keys = varying([s for s, _ in groups])
    out = []
    for s, runs in groups:
        for part, key in (("train", "train_accuracy"), ("val", "val_accuracy")):
            rows = [r.get(key) or [] for r in runs]
            if rows and all(rows) and any(v is not None for r in rows for v in r):
                mean, std = _mean_std(rows)
                out.append(Series(label(s, keys), list(range(1, len(mean) + 1)), mean, std, part))
    return out


@dataclass
class SweepView:
    """The sweep as lines against one swept key: ``ticks`` name the x positions ``x``."""

    key: str
    scale: str                       # "log" (learning rates), "category" (choices and sizes)
    x: list
    ticks: list[str]
    #: whether the x values are ordered (numbers), so a line may join them; a choice's values
    #: (relu, sigmoid) are not: drawn as markers with error bars only
    joined: bool = True
    loss: list[Series] = field(default_factory=list)
    accuracy: list[Series] = field(default_factory=list)


SWEEP_METRICS = (("train", "final_loss", "train_accuracy"), ("val", "final_val_loss", "accuracy"),
                 ("test", "test_loss", "test_accuracy"))


def sweep_view(train: dict) -> SweepView | None:
    """Each final metric against the first swept key that varies, one line per value of the
    others (e.g. error against width, one line per activation); None without a sweep."""
    rows = [r for r in train.get("sweep") or []]
    settings = [setting_of(r) for r in rows]
    keys = varying(settings)
    if not keys:
        return None
    key, others = keys[0], keys[1:]
    values: list = []
    for s in settings:
        if _key(s[key]) not in map(_key, values):
            values.append(s[key])
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if key == "lr" and numeric and all(v > 0 for v in values):
        scale, xs = "log", [float(v) for v in values]
    else:
        scale, xs = "category", list(range(len(values)))
    position = {_key(v): x for v, x in zip(values, xs)}
    view = SweepView(key, scale, xs, [_show(v) for v in values], joined=numeric)
    lines: dict[str, list[tuple[dict, dict]]] = {}
    for s, r in zip(settings, rows):
        lines.setdefault(label(s, others), []).append((s, r))
    for name, members in lines.items():
        for part, loss_key, acc_key in SWEEP_METRICS:
            for target, k in ((view.loss, loss_key), (view.accuracy, acc_key)):
                pts = [(position[_key(s[key])], r.get(k), r.get(k + "_std")) for s, r in members]
                if any(v is not None for _, v, _ in pts):
                    target.append(Series(name, [p[0] for p in pts], [_num(p[1]) if p[1] is not None else None
                                                                     for p in pts],
                                         [_num(p[2]) if p[2] is not None else None for p in pts], part))
    return view


# ------------------------------------------------------------------ pictures of fitted networks
def is_1d_regression(fit: Fitted) -> bool:
    return fit.n_features == 1 and fit.binding.accuracy_rule is None and fit.prediction_expr is not None


def is_2d_classifier(fit: Fitted) -> bool:
    return fit.n_features == 2 and fit.binding.accuracy_rule is not None and \
        (fit.binding.accuracy_rule != "argmax" or fit.prediction_expr is not None)


def _all_X(fit: Fitted) -> np.ndarray:
    return np.vstack([d.X for d in (fit.train, fit.val, fit.test) if d is not None and len(d)])


def x_grid(fits: list[Fitted], n: int = 200) -> np.ndarray:
    """``n`` points over the 1-D input range of every fit's data."""
    X = np.vstack([_all_X(f) for f in fits])[:, 0]
    return np.linspace(X.min(), X.max(), n)


def fitted_curve(fit: Fitted, xs: np.ndarray) -> np.ndarray:
    """The network's (first) output at each ``x`` (data units)."""
    y = fit.predict(xs[:, None])
    return y.reshape(len(xs), -1)[:, 0]


def fit_title(fit: Fitted, keys: list[str]) -> str:
    """Which run and its own errors, e.g. ``H 3, best of 3 runs: train 0.061, test 0.072`` or
    ``H 3, retrained on training + validation: train 0.058, test 0.07`` (one run's numbers,
    not the report's means over repeats)."""
    m = fit.metrics
    errs = [f"{part} {m[k]:.3g}" for part, k in (("train", "final_loss"), ("val", "final_val_loss"),
                                                  ("test", "test_loss"))
            if isinstance(m.get(k), (int, float)) and math.isfinite(m[k])]
    if fit.test is not None and any(e.startswith("test") for e in errs):
        errs = [e for e in errs if not e.startswith("val")]
    head = ", ".join(h for h in (label(fit.setting, keys), which_run(fit)) if h)
    return f"{head}: {', '.join(errs)}" if head else ", ".join(errs)


def which_run(fit: Fitted) -> str:
    """``retrained on training + validation``, ``best of N runs``, or "" for a lone run."""
    if fit.retrained:
        return "retrained on training + validation"
    return f"best of {fit.best_of} runs" if fit.best_of > 1 else ""


def repeats_of(fit: Fitted, run_fits: list[Fitted]) -> list[Fitted]:
    """The runs of ``fit``'s setting among ``run_fits`` (its repeats, ``fit``'s own included)."""
    mine = _key(sorted(fit.setting.items(), key=str))
    return [r for r in run_fits if _key(sorted(r.setting.items(), key=str)) == mine]


def shown_points(fit: Fitted):
    """(data set, its name) drawn over a 2-D classifier's regions: the validation points, or
    the training points when there is no validation set (all of them once retrained)."""
    if fit.val is not None and len(fit.val):
        return fit.val, "validation points"
    return fit.train, ("training + validation points" if fit.retrained else "training points")


def hidden_curves(fit: Fitted, xs: np.ndarray) -> dict[str, np.ndarray]:
    """Each hidden node's units against ``x``: ``name -> (len(xs), units)``."""
    values = fit.nodes(xs[:, None])
    return {name: values[name].reshape(len(xs), -1) for name in fit.hidden()}


def view_box(fit: Fitted, pad: float = 0.05) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax) around the 2-D data, padded."""
    X = _all_X(fit)
    lo, hi = X.min(axis=0), X.max(axis=0)
    d = (hi - lo) * pad
    return lo[0] - d[0], hi[0] + d[0], lo[1] - d[1], hi[1] + d[1]


def region_grid(fit: Fitted, n: int = 150) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xs, ys, classes): the predicted class at each point of an ``n`` × ``n`` grid over the view,
    ``classes[j, i]`` at ``(xs[i], ys[j])``."""
    x0, x1, y0, y1 = view_box(fit)
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    XX, YY = np.meshgrid(xs, ys)
    classes = fit.classify(np.column_stack([XX.ravel(), YY.ravel()]))
    return xs, ys, classes.reshape(n, n)


def unit_lines(fit: Fitted) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """Each first-layer unit's line ``w_i · x + b_i = 0`` (data units) clipped to the view box:
    one segment per unit that crosses the view (units whose line misses it are left out)."""
    layer = fit.first_layer()
    if layer is None:
        return []
    W, b = layer
    box = view_box(fit)
    out = []
    for w, c in zip(W, b):
        seg = clip_line(w, c, box)
        if seg is not None:
            out.append(seg)
    return out


def clip_line(w, c: float, box) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The part of the line ``w[0] x + w[1] y + c = 0`` inside ``box`` = (x0, x1, y0, y1)."""
    x0, x1, y0, y1 = box
    a, bb = float(w[0]), float(w[1])
    pts = []
    if abs(bb) > 1e-300:
        for x in (x0, x1):
            y = -(a * x + c) / bb
            if y0 <= y <= y1:
                pts.append((x, y))
    if abs(a) > 1e-300:
        for y in (y0, y1):
            x = -(bb * y + c) / a
            if x0 <= x <= x1:
                pts.append((x, y))
    pts = sorted(set(pts))
    if len(pts) < 2:
        return None
    return pts[0], pts[-1]
