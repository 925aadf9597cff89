"""Small networks trained for real, to test what evaluates them (pictures, sheet plots).

``run_check`` keeps one :class:`~derivkit.training.model.Fitted` per setting; these tests need
them on their own, so :func:`fit` trains one setting with the same pieces run_check uses
(binding, compile, the SGD loop).
"""
from __future__ import annotations

import dataclasses
import functools
import types

import numpy as np

from derivkit.training import run_check
from derivkit.training.binding import bind_data, prepare
from derivkit.training.compile import compile_problem
from derivkit.training.datasets import make_dataset, standardize, train_val_split
from derivkit.training.loop import train_one
from derivkit.training.model import Fitted
from helpers import graph_from_text

#: a one-hidden-layer classifier (softmax, cross-entropy) on 2-D data: seed 000/001
CLASSIFIER = """\
id: classifier
title: classifier
dims: {{D: 2, H: 4, C: 2}}
symbols:
  x: {{shape: [D], role: input}}
  t: {{shape: [C], role: target, kind: onehot}}
  W: {{shape: [H, D], role: param}}
  b: {{shape: [H], role: param}}
  V: {{shape: [C, H], role: param}}
  c: {{shape: [C], role: param}}
forward:
  z: W @ x + b
  h: {act}(z)
  o: V @ h + c
  y: softmax(o)
loss:
  l: -sum(t * log(y))
check:
  dims: {{H: {H}}}
  data: {{generator: {data}, n: {n}, seed: 0}}
  train: {{lr: {lr}, epochs: {epochs}, seed: 0}}
"""

#: a one-hidden-layer regression network on the sinusoid: seed 002
REGRESSOR = """\
id: regressor
title: regressor
dims: {{D: 1, H: 3, K: 1}}
symbols:
  x: {{shape: [D], role: input}}
  y: {{shape: [K], role: target, kind: real}}
  W1: {{shape: [H, D], role: param}}
  b1: {{shape: [H], role: param}}
  W2: {{shape: [K, H], role: param}}
  b2: {{shape: [K], role: param}}
forward:
  z1: W1 @ x + b1
  h: {act}(z1)
  y_hat: W2 @ h + b2
loss:
  l: sum((y_hat - y)**2)
check:
  dims: {{H: {H}}}
  data: {{generator: sinusoid, n: {n}, seed: 0}}
  train: {{lr: {lr}, epochs: {epochs}, seed: 0}}
"""


@functools.lru_cache(maxsize=None)
def fit(template: str, *, H: int = 4, act: str = "sigmoid", data: str = "moons", n: int = 200,
        lr: float = 0.05, epochs: int = 5, standardized: bool = True) -> Fitted:
    """One setting of ``template`` trained, as run_check would keep it (cached per arguments)."""
    graph, derivation = graph_from_text(template.format(H=H, act=act, data=data, n=n, lr=lr, epochs=epochs))
    s = dataclasses.replace(graph.problem.settings, standardize=standardized)
    ds = make_dataset(s.data)
    binding = bind_data(graph, s, ds)
    train_ds, val_ds = train_val_split(ds, s.val_fraction, s.seed)
    if standardized:
        shift, scale = train_ds.X.mean(axis=0), train_ds.X.std(axis=0)
        train_seen, val_seen = standardize(train_ds, val_ds)
    else:
        shift, scale = np.zeros(ds.n_features), np.ones(ds.n_features)
        train_seen, val_seen = train_ds, val_ds
    comp = compile_problem(graph, derivation, binding.dims)
    tr, va = prepare(train_seen, binding), prepare(val_seen, binding)
    res = train_one(comp, binding, tr, va, s, s.lrs[0], s.seed, 0, None)
    metrics = {"final_loss": res["loss"][-1], "final_val_loss": res["val_loss"][-1],
               "accuracy": res["val_accuracy"][-1]}
    return Fitted({"lr": s.lrs[0], "H": H, "act": act}, graph, dict(binding.dims), res["params"], binding,
                  shift, scale, train_ds, val_ds, None, metrics)


def result_of(template: str, fits, fitted=None, **fmt):
    """A TrainResult of the template's check section (run_check), carrying ``fits`` and ``fitted``
    as run_check will (only the JSON and those two are read by the pictures and the sheet)."""
    g, d = graph_from_text(template.format(**{"H": 3, "act": "sigmoid", "data": "moons", "n": 120,
                                              "lr": 0.05, "epochs": 3, **fmt}))
    res = run_check(g, d)
    return types.SimpleNamespace(to_json=res.to_json, fits=list(fits), fitted=fitted)
