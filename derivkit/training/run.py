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
      repeats: 3                 # runs per setting (seeds seed, seed+1, ...): mean and std per epoch
      hidden: {dim: H, values: [0, 1, 2, 3, 10, 50]}   # a width sweep (or a plain list, see below)
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

With a sweep (``lr`` list, ``hidden``) the top-level fields describe the best setting: the
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..checkspec import Settings
from ..errors import UserError
from ..graph import Graph
from ..numeric import inline_nodes
from .binding import Binding, bind_data, check_at, prepare
from .compile import class_dim, compile_problem, find_prediction
from .datasets import CLASSIFICATION, make_dataset, standardize, train_val_split
from .init import init_params
from .loop import check_runs, train_one


@dataclass
class TrainResult:
    """The outcome of a ``check:`` section; :meth:`to_json` gives the contract's ``train`` dictionary.

    Top-level curves and finals describe the best setting (the lowest mean final validation
    loss); non-finite values are None (a diverged run).
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
    #: with a sweep: the best setting's lr and width
    best: dict | None = None
    #: with a width sweep: dim and values
    hidden: dict | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "loss": self.loss, "val_loss": self.val_loss,
            "final_loss": self.final_loss, "final_val_loss": self.final_val_loss,
            "accuracy": self.accuracy, "val_accuracy": self.val_accuracy,
            "lr": self.lr, "width": self.width,
        }
        if self.repeat_stats is not None:
            out.update(self.repeat_stats)
        out["runs"] = self.runs
        out["sweep"] = self.sweep
        if self.best is not None:
            out["best"] = self.best
        out.update(expect=self.expect, passed=self.passed, epoch_seconds=self.epoch_seconds,
                   data=self.data, dims=self.dims)
        if self.hidden is not None:
            out["hidden"] = self.hidden
        out["settings"] = self.settings
        out["accuracy_rule"] = self.accuracy_rule
        return out


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
    if "accuracy_above" in s.expect and (binding.accuracy_rule is None or (
            binding.accuracy_rule == "argmax" and find_prediction(graph, inline_nodes(graph)) is None)):
        raise UserError(f"check.expect.accuracy_above: no accuracy exists here ({ds.name} is "
                        f"{'regression' if ds.task != CLASSIFICATION else 'classification'} data"
                        f"{'' if ds.task != CLASSIFICATION else ' but no node predicts the class'}); "
                        f"use final_loss_below", check_at(graph, "expect", "accuracy_above"))
    try:
        train_ds, val_ds = train_val_split(ds, s.val_fraction, s.seed)
    except UserError as exc:
        raise UserError(exc.message, exc.where or check_at(graph, "data")) from None
    if s.standardize:
        train_ds, val_ds = standardize(train_ds, val_ds)
    tr, va = prepare(train_ds, binding), prepare(val_ds, binding)

    widths = s.widths if s.widths is not None else [None]
    runs: list[dict] = []
    table: list[dict] = []
    run_index = 0
    for width in widths:
        dims = dict(binding.dims)
        if width is not None:
            dims[s.hidden_dim] = width
        comp = compile_problem(graph, derivation, dims)
        check_runs(comp, binding, tr, init_params(graph, dims, s.init, np.random.default_rng(s.seed)),
                   width, s.hidden_dim)
        for lr in s.lrs:
            group = []
            for rep in range(s.repeats):
                seed = s.seed + rep
                res = train_one(comp, binding, tr, va, s, lr, seed, run_index, progress)
                res.pop("params")
                run = {"run": run_index, "lr": lr, "width": width, "seed": seed, "repeat": rep, **res}
                run["final_loss"] = run["loss"][-1]
                run["final_val_loss"] = run["val_loss"][-1]
                run["accuracy"] = run["val_accuracy"][-1]
                runs.append(run)
                group.append(run)
                run_index += 1
            table.append(_summarise(group, lr, width))

    top = table[min(range(len(table)), key=lambda i: _rank(table[i]))]
    sweep = []
    for row in table:
        entry = {k: v for k, v in row.items() if k not in ("loss", "val_loss", "std_loss", "std_val_loss",
                                                           "val_accuracy")}
        if s.repeats > 1:               # the spread of each setting's curve over its repeats
            entry["mean_loss"], entry["std_loss"] = row["loss"], row["std_loss"]
        sweep.append(entry)
    expect, passed = _expectations(s, top)
    result = TrainResult(
        loss=top["loss"], val_loss=top["val_loss"],
        final_loss=top["final_loss"], final_val_loss=top["final_val_loss"],
        accuracy=top["accuracy"], val_accuracy=top["val_accuracy"], lr=top["lr"], width=top["width"],
        runs=[{k: v for k, v in run.items() if k != "iter_loss" or s.log_every} for run in runs],
        sweep=sweep, expect=expect, passed=passed,
        epoch_seconds=float(np.mean([run["epoch_seconds"] for run in runs])),
        data={"name": ds.name, "task": ds.task, "n_train": tr.n, "n_val": va.n,
              "features": ds.n_features, "classes": ds.n_classes, "standardized": s.standardize},
        dims=dict(binding.dims),
        settings={"optimizer": s.optimizer, "lr": s.lrs if s.lr_sweep else s.lrs[0],
                  "batch_size": s.batch_size, "epochs": s.epochs, "seed": s.seed,
                  "momentum": s.momentum, "val_fraction": s.val_fraction, "init": s.init,
                  "repeats": s.repeats, "log_every": s.log_every},
        accuracy_rule=_describe_rule(graph, binding),
        repeat_stats=({"mean_loss": top["loss"], "std_loss": top["std_loss"], "mean_val_loss": top["val_loss"],
                       "std_val_loss": top["std_val_loss"], "repeats": s.repeats} if s.repeats > 1 else None),
        best={"lr": top["lr"], "width": top["width"]} if s.lr_sweep or s.widths is not None else None,
        hidden={"dim": s.hidden_dim, "values": list(s.widths)} if s.widths is not None else None,
    )
    return TrainResult(**{k: json_safe(v) for k, v in vars(result).items()})


def _summarise(group: list[dict], lr, width) -> dict:
    L = np.array([g["loss"] for g in group], dtype=float)
    V = np.array([g["val_loss"] for g in group], dtype=float)
    acc = [g["accuracy"] for g in group]
    accs = [a for a in acc if a is not None]
    A = np.array([[a if a is not None else np.nan for a in g["val_accuracy"]] for g in group], dtype=float)
    row = {
        "lr": lr, "width": width, "runs": len(group),
        "final_loss": float(np.mean(L[:, -1])), "final_loss_std": float(np.std(L[:, -1])),
        "final_val_loss": float(np.mean(V[:, -1])), "final_val_loss_std": float(np.std(V[:, -1])),
        "accuracy": float(np.mean(accs)) if accs and len(accs) == len(acc) else None,
        "accuracy_std": float(np.std(accs)) if accs and len(accs) == len(acc) else None,
        "diverged": sum(bool(g["diverged"]) for g in group),
        "loss": L.mean(axis=0).tolist(), "std_loss": L.std(axis=0).tolist(),
        "val_loss": V.mean(axis=0).tolist(), "std_val_loss": V.std(axis=0).tolist(),
        "val_accuracy": (A.mean(axis=0).tolist() if accs else [None] * L.shape[1]),
    }
    return row


def _rank(row: dict) -> tuple:
    v = row["final_val_loss"]
    return (0, v) if math.isfinite(v) else (1, 0.0)


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


def json_safe(v):
    """JSON-safe: NumPy scalars to Python, non-finite floats to None."""
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def settings_of(graph: Graph) -> Settings:
    """The problem's checked ``check:`` section, with the one rule that needs the graph:
    a swept width may not be a size the data decides through a class-index target."""
    s = graph.problem.settings
    if s is None:
        raise UserError("this problem has no check: section to train", graph.problem.locate())
    if s.hidden_dim is not None and s.hidden_dim in data_dims(graph):
        raise UserError(f"check.hidden.dim: '{s.hidden_dim}' is fixed by the data and cannot be swept",
                        graph.problem.locate("check", "hidden"))
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
    return s.epochs * s.repeats * len(s.lrs) * len(s.widths or [None])


