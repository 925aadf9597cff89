"""Running a problem's ``check:`` section: sweeps, repeats, summaries and expectations.

:func:`run_check` reads ``check:`` (:mod:`.settings`), builds the data (:mod:`.datasets`),
binds it to the graph (:mod:`.binding`), compiles the problem (:mod:`.compile`) once per
width, trains one run per setting and repeat (:mod:`.loop`) and reports a
:class:`TrainResult`, whose ``to_json()`` is the contract's ``train`` dictionary (§5).

The ``check:`` section
======================

.. code-block:: yaml

    check:
      dims: {H: 30}              # training sizes; input and class/output sizes come from the data
      data: {generator: ellipse_circle, n: 1000, seed: 0}   # derivkit.datasets.make_dataset
      train:
        optimizer: sgd           # the only optimizer; with optional momentum (0 <= m < 1)
        lr: 0.01                 # > 0, or a list of rates: a sweep, one run per rate
        batch_size: 1            # 1 = per-sample SGD
        epochs: 5
        seed: 0                  # initial weights, shuffling, train/validation split
        momentum: 0.0
        val_fraction: 0.2
        init: xavier             # xavier | he | glorot | a number (the standard deviation)
        standardize: true        # features scaled by the training mean and std
        log_every: 100           # also record the mean loss of every 100 minibatches
      test: {fraction: 0.25}     # held out first (or a data source like data:); metrics of every run
      select: val_loss           # or val_accuracy: how the best setting is chosen
      retrain_on_all: true       # the best setting trained again on training + validation data
      sweep: {lr: [0.001, 0.01], H: [0, 3, 10], act: [relu, sigmoid]}   # every combination
      repeats: 3                 # runs per setting (seeds seed, seed+1, ...): mean and std per epoch
      hidden: {dim: H, values: [0, 1, 2, 3, 10, 50]}   # old spelling of sweep: {H: [...]}
      expect: {final_loss_below: 0.3, accuracy_above: 0.95}

Defaults: ``optimizer: sgd, lr: 0.01, batch_size: 1, epochs: 10, seed: 0, momentum: 0,
val_fraction: 0.2, init: xavier, standardize: true, repeats: 1``.

Reported values
===============

``loss`` is the mean training loss of each epoch (the running mean over its minibatches,
before each update, as the seeds print it); ``val_loss`` the mean loss on the validation set
after each epoch.  ``accuracy`` is the final validation accuracy for classification data:

* ``onehot``/``class`` targets: the argmax of the prediction — for a class target the
  vector the loss indexes (``p`` in ``log(p[t])``), otherwise the last forward node with the
  target's shape that does not use the target (``y = softmax(o)``), else the innermost such
  sub-expression of the loss (the logits);
* ``binary`` and ``real`` targets on classification data: the label whose loss is smaller
  (for a sigmoid output with cross-entropy this is exactly ``ŷ > 0.5``; it is equally right
  for losses written on logits and for the squared error).

Per run also ``train_accuracy`` per epoch (classification), ``iterations`` (with
``log_every`` N: the step, the mean training loss of the last N minibatches and the
validation loss and accuracy then) and ``test_loss``/``test_accuracy`` with a test set.
The test set is split off first (or loaded), then validation; features are standardized
with the training set's mean and std, test included.

With a sweep the top-level fields describe the best setting: the lowest mean final
validation loss (or, with ``select: val_accuracy``, the highest mean final validation
accuracy, ties by loss); a setting with a diverged run is never best while another is not.
Each setting's graph is :func:`derivkit.variants.variant` of the problem's; a structurally
new one is derived and gradient-checked before it trains.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..checkspec import Settings
from ..errors import UserError
from ..graph import Graph
from ..numeric import inline_nodes
from ..outputs import json_safe
from ..variants import setting_path
from . import datasets
from .binding import Binding, Data, bind_data, check_at, prepare
from .compile import Compiled, class_dim, find_prediction
from .datasets import CLASSIFICATION, Dataset, make_dataset, train_val_split
from .loop import evaluate, train_one
from .model import Fitted
from .sweep import Builder, plan


@dataclass
class TrainResult:
    """The outcome of a ``check:`` section; :meth:`to_json` gives the contract's ``train`` dictionary.

    Top-level curves and finals describe the best setting (by ``select``); non-finite values
    are None (a diverged run).  ``fits``, ``run_fits`` and ``fitted`` (trained networks) are not in the JSON.
    """

    loss: list
    val_loss: list
    final_loss: float | None
    final_val_loss: float | None
    accuracy: float | None
    val_accuracy: list
    lr: float
    width: int | None
    runs: list[dict]
    sweep: list[dict]
    expect: dict
    passed: bool
    epoch_seconds: float | None
    data: dict
    dims: dict
    settings: dict
    accuracy_rule: str | None
    #: with repeats: mean_loss, std_loss, mean_val_loss, std_val_loss, repeats
    repeat_stats: dict | None = None
    #: with a sweep: the best setting's swept values, and its lr and width
    best: dict | None = None
    #: with a width sweep: dim and values
    hidden: dict | None = None
    train_accuracy: list | None = None
    #: with repeats: std_val_accuracy, std_train_accuracy per epoch
    accuracy_stats: dict | None = None
    iterations: dict | None = None
    select: str = "val_loss"
    test: dict | None = None
    retrained: dict | None = None
    #: one trained network per setting (its best repeat), in sweep-row order
    fits: list[Fitted] = field(default_factory=list)
    #: every run's trained network, in run order (the pictures draw each setting's repeats)
    run_fits: list[Fitted] = field(default_factory=list)
    #: the best setting's network (the retrained one with retrain_on_all)
    fitted: Fitted | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "loss": self.loss, "val_loss": self.val_loss,
            "final_loss": self.final_loss, "final_val_loss": self.final_val_loss,
            "accuracy": self.accuracy, "val_accuracy": self.val_accuracy,
            "train_accuracy": self.train_accuracy,
            "lr": self.lr, "width": self.width,
        }
        if self.repeat_stats is not None:
            out.update(self.repeat_stats)
        if self.accuracy_stats is not None:
            out.update(self.accuracy_stats)
        if self.iterations is not None:
            out["iterations"] = self.iterations
        out["runs"] = self.runs
        out["sweep"] = self.sweep
        out["select"] = self.select
        if self.best is not None:
            out["best"] = self.best
        if self.test is not None:
            out["test"] = self.test
        if self.retrained is not None:
            out["retrained"] = self.retrained
        out.update(expect=self.expect, passed=self.passed, epoch_seconds=self.epoch_seconds,
                   data=self.data, dims=self.dims)
        if self.hidden is not None:
            out["hidden"] = self.hidden
        out["settings"] = self.settings
        out["accuracy_rule"] = self.accuracy_rule
        return out


@dataclass
class _Split:
    """The data of one training: raw (file units) and as the network sees it."""

    train: Dataset
    val: Dataset | None
    test: Dataset | None
    shift: np.ndarray
    scale: np.ndarray
    tr: Data
    va: Data | None
    te: Data | None


def run_check(graph: Graph, derivation, *, base_dir=None, progress: Callable | None = None) -> TrainResult:
    """Run the problem's ``check:`` section (see the module doc).

    ``progress(run_index, epoch, loss)`` is called after every epoch of every run (both
    indices count from 0; :func:`planned_epochs` gives the total, for a progress bar).
    """
    s = settings_of(graph)
    if base_dir is None and getattr(graph.problem, "path", None):
        base_dir = Path(graph.problem.path).parent
    ds = make_dataset(s.data, base_dir, at=lambda *option: check_at(graph, "data", *option))
    binding = bind_data(graph, s, ds)
    no_accuracy = _no_accuracy(graph, binding, ds)
    if no_accuracy and "accuracy_above" in s.expect:
        raise UserError(f"check.expect.accuracy_above: {no_accuracy}; use final_loss_below",
                        check_at(graph, "expect", "accuracy_above"))
    if no_accuracy and s.select == "val_accuracy":
        raise UserError(f"check.select: {no_accuracy}; select by val_loss", check_at(graph, "select"))
    rest, test_ds, test_name = _test_set(graph, s, ds, base_dir)
    try:
        train_ds, val_ds = train_val_split(rest, s.val_fraction, s.seed)
    except UserError as exc:
        raise UserError(exc.message, exc.where or check_at(graph, "data")) from None
    split = _prepared(s, binding, train_ds, val_ds, test_ds)

    settings = plan(s)
    builder = Builder(graph, derivation, binding, s, split.tr)
    runs: list[dict] = []
    table: list[dict] = []
    fits: list[Fitted] = []
    run_fits: list[Fitted] = []
    picks: list[dict] = []              # each setting's best repeat
    for setting in settings:
        vg, comp = builder.build(setting)
        width = setting.get(s.hidden_dim) if s.hidden_dim else None
        group, nets = [], []
        for rep in range(s.repeats):
            seed = s.seed + rep
            res = train_one(comp, binding, split.tr, split.va, s, setting["lr"], seed, len(runs), progress)
            params = res.pop("params")
            if not s.log_every:
                res.pop("iter_loss")
            run = {"run": len(runs), "lr": setting["lr"], "width": width, "seed": seed, "repeat": rep,
                   "setting": setting, **res}
            run["final_loss"] = run["loss"][-1]
            run["final_val_loss"] = run["val_loss"][-1]
            run["accuracy"] = run["val_accuracy"][-1]
            if split.te is not None:
                run["test_loss"], run["test_accuracy"] = evaluate(comp, binding, params, split.te)
            runs.append(run)
            group.append(run)
            nets.append(_fitted(setting, vg, comp, params, binding, split, run))
        run_fits += nets
        table.append(_summarise(group, setting, width, s))
        pick = min(range(len(group)), key=lambda i: _rank(group[i], s.select))
        picks.append(group[pick])
        fits.append(replace(nets[pick], best_of=s.repeats))

    best_i = min(range(len(table)), key=lambda i: _rank(table[i], s.select))
    top = table[best_i]
    retrained, fitted = None, fits[best_i]
    if s.retrain_on_all:
        retrained, fitted = _retrain(builder, top["setting"], binding, s, train_ds, val_ds, test_ds,
                                     picks[best_i]["seed"], len(runs), progress)
    sweep = []
    for i, row in enumerate(table):
        entry = {k: v for k, v in row.items() if k not in _CURVES}
        if s.repeats > 1:               # the spread of each setting's curve over its repeats
            entry["mean_loss"], entry["std_loss"] = row["loss"], row["std_loss"]
        entry["best"] = i == best_i
        sweep.append(entry)
    expect, passed = _expectations(s, top)
    data = {"name": ds.name, "task": ds.task, "n_train": split.tr.n, "n_val": split.va.n,
            "features": ds.n_features, "classes": ds.n_classes, "standardized": s.standardize}
    if test_ds is not None:
        data.update(n_test=len(test_ds), test=test_name)
    result = TrainResult(
        loss=top["loss"], val_loss=top["val_loss"],
        final_loss=top["final_loss"], final_val_loss=top["final_val_loss"],
        accuracy=top["accuracy"], val_accuracy=top["val_accuracy"], lr=top["lr"], width=top["width"],
        runs=runs, sweep=sweep, expect=expect, passed=passed,
        epoch_seconds=float(np.mean([run["epoch_seconds"] for run in runs])),
        data=data, dims=dict(binding.dims),
        settings={"optimizer": s.optimizer, "lr": s.lrs if s.lr_sweep else s.lrs[0],
                  "batch_size": s.batch_size, "epochs": s.epochs, "seed": s.seed,
                  "momentum": s.momentum, "val_fraction": s.val_fraction, "init": s.init,
                  "repeats": s.repeats, "log_every": s.log_every, "sweep": s.sweep,
                  "retrain_on_all": s.retrain_on_all},
        accuracy_rule=_describe_rule(graph, binding),
        repeat_stats=({"mean_loss": top["loss"], "std_loss": top["std_loss"], "mean_val_loss": top["val_loss"],
                       "std_val_loss": top["std_val_loss"], "repeats": s.repeats} if s.repeats > 1 else None),
        best={**top["setting"], "lr": top["lr"], "width": top["width"]} if s.sweep else None,
        hidden={"dim": s.hidden_dim, "values": list(s.widths)} if s.widths is not None else None,
        train_accuracy=top["train_accuracy_curve"],
        accuracy_stats=({"std_val_accuracy": top["std_val_accuracy"],
                         "std_train_accuracy": top["std_train_accuracy"]} if s.repeats > 1 else None),
        iterations=top["iterations"], select=s.select,
        test=({"n": len(test_ds), "loss": top["test_loss"], "loss_std": top["test_loss_std"],
               "accuracy": top["test_accuracy"], "accuracy_std": top["test_accuracy_std"]}
              if test_ds is not None else None),
        retrained=retrained,
    )
    out = TrainResult(**{k: json_safe(v) for k, v in vars(result).items() if k not in ("fits", "run_fits", "fitted")})
    out.fits, out.run_fits, out.fitted = fits, run_fits, fitted
    return out


#: a summary row's per-epoch curves: the top level's, not the sweep table's
_CURVES = ("loss", "val_loss", "std_loss", "std_val_loss", "val_accuracy", "std_val_accuracy",
           "train_accuracy_curve", "std_train_accuracy", "iterations")


def _no_accuracy(graph: Graph, binding: Binding, ds: Dataset) -> str | None:
    """Why no accuracy can be measured here, or None when it can."""
    if binding.accuracy_rule is None or (
            binding.accuracy_rule == "argmax" and find_prediction(graph, inline_nodes(graph)) is None):
        return (f"no accuracy exists here ({ds.name} is "
                f"{'regression' if ds.task != CLASSIFICATION else 'classification'} data"
                f"{'' if ds.task != CLASSIFICATION else ' but no node predicts the class'})")
    return None


def _test_set(graph: Graph, s: Settings, ds: Dataset, base_dir) -> tuple[Dataset, Dataset | None, str | None]:
    """(the data left for training and validation, the test set, its name)."""
    if s.test is None:
        return ds, None, None
    if "fraction" in s.test:
        try:
            rest, test = datasets.split_off(ds, s.test["fraction"], s.seed, "test.fraction")
        except UserError as exc:
            raise UserError(exc.message, exc.where or check_at(graph, "test", "fraction")) from None
        return rest, test, f"{s.test['fraction']:g} of {ds.name}"
    test = datasets.load_test(s.test, ds, base_dir, at=lambda *option: check_at(graph, "test", *option))
    return ds, test, test.name


def _prepared(s: Settings, binding: Binding, train: Dataset, val: Dataset | None,
              test: Dataset | None) -> _Split:
    """The sets standardized with the training set's statistics (when asked) and bound."""
    shift, scale = datasets.standardization(train) if s.standardize else (
        np.zeros(train.n_features), np.ones(train.n_features))

    def seen(d: Dataset | None) -> Data | None:
        return None if d is None else prepare(replace(d, X=(d.X - shift) / scale), binding)
    return _Split(train, val, test, shift, scale, seen(train), seen(val), seen(test))


def _fitted(setting: dict, vg: Graph, comp: Compiled, params: dict, binding: Binding, split: _Split,
            run: dict) -> Fitted:
    metrics = {k: run.get(k) for k in ("final_loss", "final_val_loss", "accuracy", "test_loss",
                                       "test_accuracy") if k in run}
    metrics["train_accuracy"] = run["train_accuracy"][-1] if run.get("train_accuracy") else None
    return Fitted(setting=dict(setting), graph=vg, dims=dict(comp.dims), params=params, binding=binding,
                  shift=split.shift, scale=split.scale, train=split.train, val=split.val, test=split.test,
                  metrics=json_safe(metrics), run=run.get("run"))


def _retrain(builder: Builder, setting: dict, binding: Binding, s: Settings, train: Dataset, val: Dataset,
             test: Dataset | None, seed: int, run_index: int, progress) -> tuple[dict, Fitted]:
    """The best setting trained again, same epochs and seed, on training + validation data
    (standardized with their statistics); no validation set remains."""
    both = replace(train, X=np.concatenate([train.X, val.X]), y=np.concatenate([train.y, val.y]))
    split = _prepared(s, binding, both, None, test)
    vg, comp = builder.build(setting)
    res = train_one(comp, binding, split.tr, None, replace(s, log_every=None), setting["lr"], seed,
                    run_index, progress)
    params = res.pop("params")
    out = {"n_train": split.tr.n, "seed": seed, "loss": res["loss"], "final_loss": res["loss"][-1],
           "train_accuracy": res["train_accuracy"][-1], "diverged": res["diverged"]}
    if split.te is not None:
        out["test_loss"], out["test_accuracy"] = evaluate(comp, binding, params, split.te)
    fitted = _fitted(setting, vg, comp, params, binding, split,
                     {"final_loss": out["final_loss"], "train_accuracy": res["train_accuracy"],
                      **{k: out[k] for k in ("test_loss", "test_accuracy") if k in out}})
    return out, replace(fitted, retrained=True)


def _mean_std(rows: list[list]) -> tuple[list, list]:
    """Per-position mean and std over runs (None where a run has no value: NaN, then None in JSON)."""
    A = np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)
    return A.mean(axis=0).tolist(), A.std(axis=0).tolist()


def _final(values: list) -> tuple[float | None, float | None]:
    """Mean and std of a final value over a setting's runs (NaN when one diverged); None if a
    run has none (accuracy on regression data)."""
    if not values or any(v is None for v in values):
        return None, None
    return float(np.mean(values)), float(np.std(values))


def _summarise(group: list[dict], setting: dict, width, s: Settings) -> dict:
    """One setting's row: finals (mean and std over repeats) and mean curves."""
    loss, std_loss = _mean_std([g["loss"] for g in group])
    val_loss, std_val_loss = _mean_std([g["val_loss"] for g in group])
    row = {"setting": setting, "lr": setting["lr"], "width": width, "runs": len(group)}
    finals = {"final_loss": [g["final_loss"] for g in group], "final_val_loss": [g["final_val_loss"] for g in group],
              "accuracy": [g["accuracy"] for g in group], "train_accuracy": [g["train_accuracy"][-1] for g in group]}
    if "test_loss" in group[0]:
        finals.update(test_loss=[g["test_loss"] for g in group], test_accuracy=[g["test_accuracy"] for g in group])
    for name, values in finals.items():
        row[name], row[f"{name}_std"] = _final(values)
    row["diverged"] = sum(bool(g["diverged"]) for g in group)
    has_acc = any(a is not None for g in group for a in g["val_accuracy"])
    val_acc, std_val_acc = _mean_std([g["val_accuracy"] for g in group])
    train_acc, std_train_acc = _mean_std([g["train_accuracy"] for g in group])
    row.update(loss=loss, std_loss=std_loss, val_loss=val_loss, std_val_loss=std_val_loss,
               val_accuracy=val_acc if has_acc else [None] * len(loss),
               std_val_accuracy=std_val_acc if has_acc else [None] * len(loss),
               train_accuracy_curve=train_acc if has_acc else [None] * len(loss),
               std_train_accuracy=std_train_acc if has_acc else [None] * len(loss),
               iterations=_mean_iterations(group, s.repeats) if s.log_every else None)
    return row


def _mean_iterations(group: list[dict], repeats: int) -> dict:
    """The per-iteration log averaged over repeats (a diverged run's log is shorter: cut to the shortest)."""
    n = min(len(g["iterations"]["step"]) for g in group)
    its = [g["iterations"] for g in group]
    out = {"step": its[0]["step"][:n]}
    for key in ("loss", "val_loss", "val_accuracy"):
        mean, std = _mean_std([it[key][:n] for it in its])
        out[key] = mean if any(v is not None for it in its for v in it[key][:n]) else [None] * n
        if repeats > 1 and key != "val_accuracy":
            out[f"std_{key}"] = std
    return out


def _rank(row: dict, select: str) -> tuple:
    """Sort key of a setting's row or a run: finite before diverged, then by the selection rule,
    ties by validation loss."""
    v = row["final_val_loss"]
    if v is None or not math.isfinite(v) or row.get("diverged"):
        return (1, 0.0, 0.0)
    acc = row.get("accuracy")
    return (0, -(acc if acc is not None else -math.inf) if select == "val_accuracy" else 0.0, v)


def _expectations(s: Settings, top: dict) -> tuple[dict, bool]:
    out: dict[str, Any] = {}
    passed = True
    if "final_loss_below" in s.expect:
        limit = s.expect["final_loss_below"]
        value = top["final_loss"]
        met = bool(math.isfinite(value) and value < limit)
        out["final_loss_below"] = {"limit": limit, "value": value, "met": met}
        passed &= met
    if "accuracy_above" in s.expect:
        limit = s.expect["accuracy_above"]
        value = top["accuracy"]
        met = bool(value is not None and value > limit)
        out["accuracy_above"] = {"limit": limit, "value": value, "met": met}
        passed &= met
    return out, bool(passed)


def _describe_rule(graph: Graph, binding: Binding) -> str | None:
    """How accuracy is measured, in words (``argmax of y``)."""
    if binding.accuracy_rule != "argmax":
        return binding.accuracy_rule and "the label with the smaller loss"
    from ..printing import to_ascii
    mapping = inline_nodes(graph)
    pred = find_prediction(graph, mapping)
    if pred is None:
        return None
    for name in graph.nodes:                  # name the node when the prediction is one
        if mapping[graph.ref(name)] == pred:
            return f"argmax of {name}"
    return f"argmax of {to_ascii(pred)}"


def settings_of(graph: Graph) -> Settings:
    """The problem's checked ``check:`` section, with the one rule that needs the graph:
    a swept width may not be a size the data decides through a class-index target."""
    s = graph.problem.settings
    if s is None:
        raise UserError("this problem has no check: section to train", graph.problem.locate())
    fixed = data_dims(graph)
    for name in s.sweep:
        if name in fixed:
            path = setting_path(graph.problem, name)
            raise UserError(f"check.{'hidden.dim' if path == ('check', 'hidden') else 'sweep'}: '{name}' is fixed "
                            f"by the data and cannot be swept",
                            graph.problem.locate(*path, key=path != ("check", "hidden")))
    return s


def data_dims(graph: Graph) -> set[str]:
    """Size names the data decides: the input's and the target's, and a class index's range."""
    out = set()
    for name in graph.leaves:
        if graph.role(name) in ("input", "target"):
            out.update(d for d in graph.shape(name) if isinstance(d, str))
            if graph.kind(name) == "class":
                d = class_dim(graph, name)
                if isinstance(d, str):
                    out.add(d)
    return out


def planned_epochs(graph: Graph) -> int:
    """How many epochs ``run_check`` will run in all (for sizing a progress bar); 0 without check:."""
    s = graph.problem.settings
    if s is None:
        return 0
    return s.epochs * (s.repeats * math.prod(len(v) for v in s.sweep.values()) + s.retrain_on_all)


