"""The training loop: minibatch SGD epochs with the compiled gradients, and evaluation.

The per-sample loss is averaged over the minibatch, and so are the gradients.  ``loss`` is
the mean training loss of each epoch (the running mean over its minibatches, before each
update); ``val_loss`` the mean loss on the validation set after each epoch; ``accuracy``
the validation accuracy for classification data (see :mod:`derivkit.training.run`);
``train_accuracy`` the same on the training set after each epoch.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from ..errors import Location, UserError
from .binding import Binding, Data, check_at
from .compile import Compiled
from .init import init_params
from ..checkspec import Settings

EVAL_CHUNK = 4096          # samples per call when evaluating the validation set


def train_one(comp: Compiled, binding: Binding, tr: Data, va: Data | None, s: Settings, lr: float, seed: int,
              run_index: int, progress) -> dict:
    """One run: ``s.epochs`` epochs of SGD from the initial weights of ``seed``.

    Per epoch: the mean training loss (over its minibatches, before each update), the
    validation loss and accuracy after it (None without ``va``), and for classification the
    training accuracy after it (one more pass over the training set).  With ``s.log_every``
    N, every N minibatches: the mean training loss of those N and the validation loss and
    accuracy at that moment (``iterations``).  A run whose loss stops being a number ends.
    """
    rng = np.random.default_rng(seed)
    params = init_params(comp.graph, comp.dims, s.init, rng)
    velocity = {k: np.zeros_like(v) for k, v in params.items()} if s.momentum else None
    x, t = binding.input, binding.target
    B = s.batch_size
    losses: list = []
    val_losses: list = []
    accs: list = []
    train_accs: list = []
    seconds = 0.0
    diverged = False
    log = _IterationLog(s.log_every, lambda: evaluate(comp, binding, params, va) if va is not None
                        else (math.nan, None)) if s.log_every else None
    classify = binding.accuracy_rule is not None and not (binding.accuracy_rule == "argmax"
                                                          and comp.prediction is None)

    for epoch in range(s.epochs):
        t0 = time.perf_counter()
        order = rng.permutation(tr.n)
        with np.errstate(all="ignore"):
            total = sgd_epoch(comp, params, tr.X, tr.T, order=order, lr=lr, batch_size=B, input=x, target=t,
                              velocity=velocity, momentum=s.momentum,
                              on_batch=log.on_batch if log else None)
        seconds += time.perf_counter() - t0
        train_loss = total / tr.n
        val_loss, acc = evaluate(comp, binding, params, va) if va is not None else (math.nan, None)
        losses.append(train_loss)
        val_losses.append(val_loss if va is not None else None)
        accs.append(acc)
        train_accs.append(evaluate(comp, binding, params, tr)[1] if classify else None)
        if progress is not None:
            progress(run_index, epoch, train_loss)
        if not (math.isfinite(train_loss) and (va is None or math.isfinite(val_loss))):
            diverged = True
            break
    pad = s.epochs - len(losses)
    out = {"loss": losses + [math.nan] * pad, "val_loss": val_losses + [math.nan if va is not None else None] * pad,
           "val_accuracy": accs + [None] * pad, "train_accuracy": train_accs + [None] * pad,
           "iter_loss": log.loss if log else [], "diverged": diverged,
           "epoch_seconds": seconds / max(len(losses), 1), "params": params}
    if log:
        out["iterations"] = {"step": log.step, "loss": log.loss, "val_loss": log.val_loss,
                             "val_accuracy": log.val_accuracy}
    return out


class _IterationLog:
    """Every ``every`` minibatches: their mean training loss and ``measure()`` (validation loss
    and accuracy) at that step; steps count minibatches from the start of the run."""

    def __init__(self, every: int, measure: Callable[[], tuple[float, float | None]]):
        self.every, self.measure = every, measure
        self.window, self.n, self.steps = 0.0, 0, 0
        self.step: list[int] = []
        self.loss: list[float] = []
        self.val_loss: list[float] = []
        self.val_accuracy: list = []

    def on_batch(self, mean_loss: float) -> None:
        self.window += mean_loss
        self.n += 1
        self.steps += 1
        if self.n == self.every:
            val_loss, acc = self.measure()
            self.step.append(self.steps)
            self.loss.append(self.window / self.n)
            self.val_loss.append(val_loss)
            self.val_accuracy.append(acc)
            self.window, self.n = 0.0, 0


def sgd_epoch(comp: Compiled, params: dict[str, np.ndarray], X: np.ndarray, T: np.ndarray, *,
              order: np.ndarray, lr: float, batch_size: int, input: str, target: str,
              velocity: dict | None = None, momentum: float = 0.0,
              on_batch: Callable[[float], None] | None = None) -> float:
    """One epoch of minibatch SGD over the rows in ``order``, updating ``params`` in place.

    Each step is one call of the compiled program (loss and every gradient, summed over the
    minibatch), then ``θ -= lr · g / B`` (with ``velocity``: ``v = μ v − lr · g / B; θ += v``).
    Returns the sum of the per-sample losses (each taken before its step's update).
    """
    names = comp.params
    run = comp.step
    total = 0.0
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        values = dict(params)
        values[input] = X[idx]
        values[target] = T[idx]
        loss, grads = run(values)
        total += loss
        scale = lr / len(idx)
        if velocity is None:
            for k in names:
                params[k] -= scale * grads[k]
        else:
            for k in names:
                v = velocity[k]
                v *= momentum
                v -= scale * grads[k]
                params[k] += v
        if on_batch is not None:
            on_batch(loss / len(idx))
    return total


def evaluate(comp: Compiled, binding: Binding, params: dict, data: Data) -> tuple[float, float | None]:
    """Mean per-sample loss and accuracy (None for regression) over ``data``."""
    x, t = binding.input, binding.target
    total, correct = 0.0, 0
    with np.errstate(all="ignore"):
        for start in range(0, data.n, EVAL_CHUNK):
            sl = slice(start, start + EVAL_CHUNK)
            vals = {**params, x: data.X[sl], t: data.T[sl]}
            predict = binding.accuracy_rule == "argmax"
            out = comp.evaluate(vals, predict=predict)
            total += float(np.sum(out["loss"]))
            if predict and "pred" in out:
                scores = np.asarray(out["pred"])
                if scores.ndim < 2:            # the same for every sample (it ignores the input)
                    scores = np.broadcast_to(scores, (len(data.X[sl]),) + scores.shape[-1:])
                pred = np.argmax(scores, axis=1)
                correct += int(np.sum(pred == data.labels[sl]))
            elif binding.candidates is not None:
                m = len(data.X[sl])
                cand = []
                for c in binding.candidates:
                    vals[t] = np.broadcast_to(c, (m,) + c.shape)
                    cand.append(np.broadcast_to(comp.evaluate(vals)["loss"], (m,)))
                pred = np.argmin(np.stack(cand, axis=1), axis=1)
                correct += int(np.sum(pred == data.labels[sl]))
    acc = None if binding.accuracy_rule is None or data.n == 0 else correct / data.n
    if binding.accuracy_rule == "argmax" and comp.prediction is None:
        acc = None
    return total / max(data.n, 1), acc


def check_runs(comp: Compiled, binding: Binding, tr: Data, params: dict, swept: dict[str, int],
               where: Location | None = None) -> None:
    """Evaluate the network once on two samples: a size that does not fit fails here, clearly.

    ``swept`` are the sizes this setting sweeps (name -> width), written at ``where``."""
    vals = {**params, binding.input: tr.X[:2], binding.target: tr.T[:2]}
    widths = ", ".join(f"width {w} for {d}" for d, w in swept.items())
    try:
        with np.errstate(all="ignore"):
            loss, grads = comp.step(vals)
        bad = not np.isfinite(loss) or any(not np.all(np.isfinite(g)) for g in grads.values())
        for k, g in grads.items():
            if np.shape(g) != np.shape(params[k]):
                raise ValueError(f"the gradient of {k} has shape {np.shape(g)}, expected {np.shape(params[k])}")
    except (ValueError, IndexError, ZeroDivisionError) as exc:
        if swept:
            raise UserError(f"{widths} does not work with this network ({_short(exc)})", where) from None
        raise UserError(f"the network cannot be evaluated on the data at sizes "
                        f"{_fmt_dims(comp.dims)}: {_short(exc)}", check_at(comp.graph, "data")) from None
    if bad and 0 in swept.values():
        raise UserError(f"{widths} gives a loss that is not a number (the network needs at least one "
                        f"unit there)", where)


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) < 160 else text[:157] + "..."


def _fmt_dims(dims: dict) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in dims.items()) + "}"


