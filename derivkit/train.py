"""The numeric check of ``check:``: train the problem's network with its *derived* gradients.

Nothing here knows how to backpropagate.  :func:`compile_problem` takes the matrix-form
gradients of the reverse pass (``derivation.full``), writes every named node out over the
leaves, and hands the loss and every parameter gradient to one
:class:`~derivkit.numeric.Program`: common sub-expressions (the forward pass) are computed
once, the sum over a minibatch of an outer product ``δ xᵀ`` is one matrix product ``Δᵀ X``,
so one call gives the loss and all gradients of a whole minibatch, as hand-written backprop
would.  :func:`run_check` reads ``check:``, builds the data, trains and reports the
contract's ``train`` dictionary (§5).

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

Data and network
================

The leaf with role ``input`` takes one sample's features: its dim (``[D]``) is set to the
number of features (a scalar input ``[]`` takes 1-feature data).  The target leaf takes
the labels, its kind deciding how:

* ``onehot [C]`` one-hot rows, ``C`` = number of classes;
* ``class []`` the integer label; the size of the vector it indexes is the number of classes;
* ``binary [K]`` 2-class data with ``K = 1`` (the label as 0/1), or one-hot rows with
  ``K`` = number of classes (one-vs-rest); ``binary []`` the label as 0/1 (2 classes);
* ``real [k]`` regression targets (``k`` = number of outputs); on classification data,
  one-hot rows (squared error on one-hot targets).

A size fixed by the data cannot be given in ``check.dims`` with another value, and a literal
size in a shape must match the data: both are reported as errors.  Every other size comes
from ``check.dims``, else from the problem's ``dims``.

The per-sample loss is averaged over the minibatch, and so are the gradients.  Parameters:
matrices (and vectors or scalars used as weights) start at N(0, 1/fan_in) — Caffe's
"xavier"; ``fan_in`` is the size a matrix product contracts the parameter over — and biases
(parameters only ever added) start at 0.

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
lowest mean final validation loss; ``sweep`` has one row per setting and ``runs`` every run.
With ``repeats`` the top-level curves are means over the repeats, with ``mean_loss`` and
``std_loss`` per epoch.  ``passed`` is false when an ``expect`` is missed (``solve`` exits 1).
"""
from __future__ import annotations

import csv
import math
import numbers
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .datasets import CLASSIFICATION, Dataset, make_dataset, standardize, train_val_split
from .errors import Location, UserError
from .expr import Expr, concrete, substitute, sym
from .graph import Graph
from .numeric import Program
from .ops import OPS

OPTIMIZERS = ("sgd",)
INITS = ("xavier", "he", "glorot")
CHECK_KEYS = ("dims", "data", "train", "repeats", "hidden", "expect")
TRAIN_KEYS = ("optimizer", "lr", "batch_size", "epochs", "seed", "momentum", "val_fraction",
              "init", "standardize", "log_every")
EXPECT_KEYS = ("final_loss_below", "accuracy_above")
EVAL_CHUNK = 4096          # samples per call when evaluating the validation set
MAX_RUNS = 1000            # settings x repeats


# ====================================================================== compiling
def inline_nodes(graph: Graph, after: str | None = None) -> dict[Expr, Expr]:
    """``sym(node) -> definition`` written over the leaves.

    With ``after``, only the nodes defined after that one are written out; it and the
    nodes before it stay names (their values are then inputs).
    """
    mapping: dict[Expr, Expr] = {}
    started = after is None
    for name, e in graph.nodes.items():
        if not started:
            started = name == after
            continue
        mapping[sym(name, e.shape)] = substitute(e, mapping) if mapping else e
    return mapping


def distinct_atoms(e: Expr, memo: dict | None = None) -> Expr:
    """``e`` with every ``ones``/``eye`` carrying its shape in ``attr``.

    Expressions compare without their shapes, so ``ones(H)`` and ``ones(C)`` are equal
    keys: a :class:`Program` would compute one of them for both.  With the shape in the
    attribute they stay apart.
    """
    memo = {} if memo is None else memo
    key = id(e)
    if key in memo:
        return memo[key]
    if e.op in ("ones", "eye") and e.attr is None:
        out = Expr(e.op, (), tuple(e.shape), e.shape)
    elif e.args:
        args = tuple(distinct_atoms(a, memo) for a in e.args)
        out = e if all(x is y for x, y in zip(args, e.args)) else Expr(e.op, args, e.attr, e.shape)
    else:
        out = e
    memo[key] = out
    return out


def _leaf_names(e: Expr) -> set[str]:
    return {n.attr for n in e.walk() if n.op == "sym"}


class _Plan:
    """A :class:`Program`'s steps with the batch flags resolved once.

    Which values carry the batch axis is known before any data is seen, so each step
    becomes one call of the registry's NumPy form on its argument slots; elementwise steps
    whose operands need no alignment skip it.  Same results as ``Program.run``, less
    Python per call (it matters for per-sample SGD).
    """

    def __init__(self, program: Program, batched: set[str]):
        steps = program.steps
        dims = program.dims
        self.template: list = [None] * len(steps)
        self.inputs: list[tuple[int, str]] = []
        self.calls: list = []          # (slot, function of the argument values, argument slots[, freed])
        bats = [False] * len(steps)
        for i, step in enumerate(steps):
            e = step.expr
            if e.op == "batch_sum":
                self.calls.append((i, _batch_sum_fn(e.attr, tuple(bats[j] for j in step.args)), step.args))
            elif e.op == "sym":
                self.inputs.append((i, e.attr))
                bats[i] = e.attr in batched
            elif e.op == "num":
                self.template[i] = float(e.attr)
            elif e.op == "dim":
                self.template[i] = float(dims[e.attr])
            elif e.op == "ones":
                self.template[i] = np.ones(concrete(e.shape, dims))
            elif e.op == "eye":
                self.template[i] = np.eye(concrete(e.shape, dims)[0])
            elif e.op == "grad":
                raise ValueError(f"an upstream-gradient symbol is left in a compiled expression: {e!r}")
            else:
                flags = tuple(bats[j] for j in step.args)
                bats[i] = any(flags)
                spec = OPS[e.op]
                if spec.elementwise and _aligned(e, flags):
                    flags = (False,) * len(flags)
                self.calls.append((i, _op_fn(spec.numpy, flags, e, dims), step.args))
        self.outputs = dict(program.out_slots)
        self.batched_out = {k: bats[s] for k, s in self.outputs.items()}
        # Drop each intermediate after its last use, as hand-written code does: holding every
        # temporary of a minibatch until the end raises the peak memory, and the allocator then
        # returns pages to the system and takes them back on every call (page faults cost
        # more than the arithmetic at 784-300-10).
        keep = set(self.outputs.values()) | {i for i, _ in self.inputs} | \
            {i for i, v in enumerate(self.template) if v is not None}
        last: dict[int, int] = {}
        for k, (i, fn, args) in enumerate(self.calls):
            for j in args:
                last[j] = k
        self.calls = [(i, _gather(fn, args), tuple(j for j in set(args) if last[j] == k and j not in keep))
                      for k, (i, fn, args) in enumerate(self.calls)]

    def run(self, values: dict) -> dict[str, Any]:
        vals = list(self.template)
        for i, name in self.inputs:
            vals[i] = values[name]
        for i, fn, free in self.calls:
            vals[i] = fn(vals)
            for j in free:
                vals[j] = None
        return {k: vals[s] for k, s in self.outputs.items()}


def _gather(fn, args: tuple[int, ...]):
    """``fn`` of the values in the slots ``args`` (no per-call loop for one or two arguments)."""
    if len(args) == 1:
        (a,) = args
        return lambda v: fn([v[a]])
    if len(args) == 2:
        a, b = args
        return lambda v: fn([v[a], v[b]])
    return lambda v: fn([v[j] for j in args])


def _aligned(e: Expr, flags: tuple[bool, ...]) -> bool:
    """True when every batched operand already has the largest rank (no reshape is needed)."""
    if not any(flags):
        return True
    rank = max(len(a.shape) for a in e.args)
    return all(len(a.shape) == rank for a, b in zip(e.args, flags) if b)


def _op_fn(numpy_form, flags, e, dims):
    return lambda vals: numpy_form(vals, flags, e, dims)


def _batch_sum_fn(kind: str, flags: tuple[bool, ...]):
    """The sum over the batch, as in :class:`Program` (outer products as one matrix product)."""
    if kind == "outer":
        ba, bb = flags

        def outer(vals):
            a, b = vals
            if not (ba or bb):            # the per-sample value itself (see Compiled.data_free)
                return np.multiply.outer(a, b)
            if not ba:
                a = np.broadcast_to(a, (b.shape[0],) + np.shape(a))
            if not bb:
                b = np.broadcast_to(b, (a.shape[0],) + np.shape(b))
            return a.T @ b
        return outer
    if kind == "sum":
        (b,) = flags
        return (lambda vals: vals[0].sum(axis=0)) if b else (lambda vals: vals[0])
    if kind == "neg":
        return lambda vals: -vals[0]
    if kind == "mul":
        return lambda vals: vals[0] * vals[1]
    if kind == "div":
        return lambda vals: vals[0] / vals[1]
    raise ValueError(f"unknown batch sum {kind!r}")


@dataclass
class Compiled:
    """A problem compiled for minibatches at one set of sizes.

    ``step(values)`` gives the loss summed over the minibatch and every parameter's
    gradient summed over it; ``evaluate`` the per-sample losses (and predictions).
    """

    graph: Graph
    dims: dict[str, int]
    params: list[str]
    batched: frozenset
    program: Program
    plan: _Plan
    #: gradients that do not depend on the data (a penalty on the weights alone): times the batch size
    data_free: frozenset = frozenset()
    prediction: Expr | None = None
    loss_expr: Expr | None = None
    _eval: dict = field(default_factory=dict, repr=False)

    def step(self, values: dict) -> tuple[float, dict[str, np.ndarray]]:
        out = self.plan.run(values)
        loss = out.pop("loss")
        if self.data_free:
            n = len(next(values[k] for k in self.batched))
            for k in self.data_free:
                out[k] = out[k] * n
        return float(loss), out

    def evaluate(self, values: dict, predict: bool = False) -> dict[str, np.ndarray]:
        """Per-sample ``loss`` (shape (B,)) and, with ``predict``, the prediction ``pred``."""
        key = bool(predict and self.prediction is not None)
        if key not in self._eval:
            outputs = {"loss": self.loss_expr}
            if key:
                outputs["pred"] = self.prediction
            self._eval[key] = _Plan(Program(outputs, self.dims), set(self.batched))
        return self._eval[key].run(values)


def compile_problem(graph: Graph, derivation, dims: dict[str, int] | None = None,
                    batched: set[str] | None = None) -> Compiled:
    """Compile the loss and every parameter gradient for whole minibatches, once per problem.

    ``batched`` are the leaves that carry a batch axis (default: inputs and targets); the
    parameters do not.
    """
    dims = dict(graph.dims if dims is None else dims)
    if batched is None:
        batched = {n for n in graph.leaves if graph.role(n) in ("input", "target")}
    params = [n for n in graph.leaves if graph.role(n) == "param"]
    mapping = inline_nodes(graph)
    memo: dict = {}
    loss = distinct_atoms(mapping[sym(graph.loss)], memo)
    outputs = {"loss": loss}
    data_free = set()
    for p in params:
        e = substitute(distinct_atoms(derivation.full[p], memo), mapping)
        outputs[p] = e
        if not (_leaf_names(e) & set(batched)):
            data_free.add(p)
    program = Program(outputs, dims, batch_sum=set(outputs))
    plan = _Plan(program, set(batched))
    prediction = _prediction(graph, mapping)
    return Compiled(graph, dims, params, frozenset(batched), program, plan, frozenset(data_free),
                    None if prediction is None else distinct_atoms(prediction, memo), loss)


# ====================================================================== which node predicts
def _target_name(graph: Graph) -> str | None:
    targets = [n for n in graph.leaves if graph.role(n) == "target"]
    return targets[0] if len(targets) == 1 else None


def _prediction(graph: Graph, mapping: dict[Expr, Expr]) -> Expr | None:
    """The expression whose argmax is the predicted class (onehot/class targets), or None."""
    target = _target_name(graph)
    if target is None:
        return None
    kind = graph.kind(target)
    loss = mapping[sym(graph.loss)]
    if kind == "class":
        for node in loss.walk():
            if node.op == "index" and len(node.args) == 2 and node.args[1] == sym(target) \
                    and len(node.args[0].shape) == 1 and target not in _leaf_names(node.args[0]):
                return node.args[0]
        shape = _class_shape(graph, target)
    elif kind == "onehot":
        shape = graph.shape(target)
    else:
        return None
    if shape is None:
        return None
    for name in reversed([n for n in graph.nodes if n != graph.loss]):
        e = mapping[graph.ref(name)]
        if e.shape == shape and target not in _leaf_names(e):
            return e
    for node in loss.walk():
        if node.shape == shape and node.args and target not in _leaf_names(node):
            return node
    return None


def _class_shape(graph: Graph, target: str) -> tuple | None:
    dim = _class_dim(graph, target)
    return None if dim is None else (dim,)


def _class_dim(graph: Graph, target: str):
    """The size (dims name or int) of the vector a class-index target picks from."""
    for e in list(graph.nodes.values()):
        for node in e.walk():
            if node.op == "index":
                for pos, a in enumerate(node.args[1:]):
                    if a == sym(target):
                        return node.args[0].shape[pos]
            if node.op == "onehot" and node.args and node.args[0] == sym(target):
                return node.attr
    return None


# ====================================================================== reading check:
@dataclass
class Settings:
    dims: dict[str, int]
    data: dict
    optimizer: str = "sgd"
    lrs: list[float] = field(default_factory=lambda: [0.01])
    lr_sweep: bool = False
    batch_size: int = 1
    epochs: int = 10
    seed: int = 0
    momentum: float = 0.0
    val_fraction: float = 0.2
    init: str | float = "xavier"
    standardize: bool = True
    log_every: int | None = None
    repeats: int = 1
    hidden_dim: str | None = None
    widths: list[int] | None = None
    expect: dict[str, float] = field(default_factory=dict)


class _Reader:
    """Checks values of the ``check:`` mapping, raising UserError at their place in the file."""

    def __init__(self, problem):
        self.problem = problem

    def at(self, *path, key: bool = False) -> Location | None:
        locate = getattr(self.problem, "locate", None)
        if locate is None:
            return Location(str(getattr(self.problem, "path", "<problem>")))
        try:
            return locate("check", *path, key=key)
        except TypeError:
            return locate("check", *path)

    def fail(self, path: tuple, message: str, key: bool = False):
        raise UserError(message, self.at(*path, key=key))

    def mapping(self, value, path: tuple, what: str) -> dict:
        if not isinstance(value, dict):
            self.fail(path, f"{what} must be a mapping, got {_kind(value)}")
        return value

    def keys(self, value: dict, allowed, path: tuple, what: str) -> None:
        for k in value:
            if k not in allowed:
                hint = _suggest(str(k), allowed)
                self.fail(path + (k,), f"unknown key '{k}' in {what}{hint}; allowed: {', '.join(allowed)}",
                          key=True)

    def integer(self, value, path: tuple, what: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            self.fail(path, f"{what} must be an integer >= {minimum}, got {value!r}")
        return int(value)

    def number(self, value, path: tuple, what: str, lo: float, hi: float = math.inf, *,
               lo_open: bool = False, hi_open: bool = False) -> float:
        ok = (not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
              and (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi))
        if not ok:
            left = "(" if lo_open else "["
            right = ")" if hi_open else "]"
            rng = f"> {lo:g}" if hi == math.inf and lo_open else (
                f">= {lo:g}" if hi == math.inf else f"in {left}{lo:g}, {hi:g}{right}")
            self.fail(path, f"{what} must be a number {rng}, got {value!r}")
        return float(value)


def _kind(value) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: f"the text {value!r}", bool: f"{value!r}"}.get(
        type(value), f"{value!r}")


def _suggest(word: str, options) -> str:
    import difflib
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def read_settings(graph: Graph) -> Settings:
    """Validate ``problem.check`` (every key, type and range) into :class:`Settings`."""
    problem = graph.problem
    r = _Reader(problem)
    check = r.mapping(getattr(problem, "check", None), (), "check")
    r.keys(check, CHECK_KEYS, (), "check")
    if "data" not in check:
        r.fail((), "check needs 'data' (e.g. data: {generator: moons, n: 1000, seed: 0})", key=True)
    s = Settings(dims={}, data=r.mapping(check["data"], ("data",), "check.data"))

    known_dims = _dim_names(graph)
    raw_dims = check.get("dims") or {}
    r.mapping(raw_dims, ("dims",), "check.dims")
    for k, v in raw_dims.items():
        if k not in known_dims:
            r.fail(("dims", k), f"check.dims: '{k}' is not a size of this problem{_suggest(str(k), known_dims)}"
                   f" (sizes: {', '.join(sorted(known_dims)) or 'none'})", key=True)
        s.dims[k] = r.integer(v, ("dims", k), f"check.dims.{k}", 1)

    t = check.get("train") or {}
    r.mapping(t, ("train",), "check.train")
    r.keys(t, TRAIN_KEYS, ("train",), "check.train")
    if "optimizer" in t:
        opt = t["optimizer"]
        if not isinstance(opt, str) or opt.lower() not in OPTIMIZERS:
            r.fail(("train", "optimizer"), f"check.train.optimizer: unknown optimizer {opt!r}; "
                   f"known: {', '.join(OPTIMIZERS)} (with optional momentum)")
        s.optimizer = opt.lower()
    if "lr" in t:
        lr = t["lr"]
        if isinstance(lr, list):
            if not lr:
                r.fail(("train", "lr"), "check.train.lr: an empty list of learning rates")
            s.lrs = [r.number(v, ("train", "lr", i), "check.train.lr", 0.0, lo_open=True) for i, v in enumerate(lr)]
            s.lr_sweep = len(lr) > 1
        else:
            s.lrs = [r.number(lr, ("train", "lr"), "check.train.lr (the learning rate)", 0.0, lo_open=True)]
    if "batch_size" in t:
        s.batch_size = r.integer(t["batch_size"], ("train", "batch_size"), "check.train.batch_size", 1)
    if "epochs" in t:
        s.epochs = r.integer(t["epochs"], ("train", "epochs"), "check.train.epochs", 1)
    if "seed" in t:
        s.seed = r.integer(t["seed"], ("train", "seed"), "check.train.seed", 0)
    if "momentum" in t:
        s.momentum = r.number(t["momentum"], ("train", "momentum"), "check.train.momentum", 0.0, 1.0,
                              hi_open=True)
    if "val_fraction" in t:
        s.val_fraction = r.number(t["val_fraction"], ("train", "val_fraction"), "check.train.val_fraction",
                                  0.0, 1.0, lo_open=True, hi_open=True)
    if "init" in t:
        init = t["init"]
        if isinstance(init, str) and init.lower() in INITS:
            s.init = init.lower()
        elif not isinstance(init, bool) and isinstance(init, numbers.Real):
            s.init = r.number(init, ("train", "init"), "check.train.init (a standard deviation)", 0.0)
        else:
            r.fail(("train", "init"), f"check.train.init must be one of {', '.join(INITS)} or a standard "
                   f"deviation, got {init!r}")
    if "standardize" in t:
        if not isinstance(t["standardize"], bool):
            r.fail(("train", "standardize"), f"check.train.standardize must be true or false, "
                   f"got {t['standardize']!r}")
        s.standardize = t["standardize"]
    if "log_every" in t:
        s.log_every = r.integer(t["log_every"], ("train", "log_every"), "check.train.log_every", 1)

    if "repeats" in check:
        s.repeats = r.integer(check["repeats"], ("repeats",), "check.repeats", 1)
    if "hidden" in check:
        _read_hidden(r, check["hidden"], s, graph)
    if "expect" in check:
        e = r.mapping(check["expect"], ("expect",), "check.expect")
        r.keys(e, EXPECT_KEYS, ("expect",), "check.expect")
        if "final_loss_below" in e:
            s.expect["final_loss_below"] = r.number(e["final_loss_below"], ("expect", "final_loss_below"),
                                                    "check.expect.final_loss_below", -math.inf)
        if "accuracy_above" in e:
            s.expect["accuracy_above"] = r.number(e["accuracy_above"], ("expect", "accuracy_above"),
                                                  "check.expect.accuracy_above (a fraction)", 0.0, 1.0,
                                                  hi_open=True)
    n_runs = len(s.lrs) * len(s.widths or [None]) * s.repeats
    if n_runs > MAX_RUNS:
        r.fail(("repeats",) if "repeats" in check else ("train",),
               f"check asks for {n_runs} training runs (learning rates x widths x repeats); at most {MAX_RUNS}")
    return s


def _read_hidden(r: _Reader, h, s: Settings, graph: Graph) -> None:
    if isinstance(h, list):
        free = [d for d in s.dims if d not in _data_dims(graph)]
        if len(free) != 1:
            r.fail(("hidden",), "check.hidden as a plain list needs exactly one size in check.dims to sweep "
                   f"(found {', '.join(free) or 'none'}); write hidden: {{dim: NAME, values: [...]}}")
        s.hidden_dim, values, vpath = free[0], h, ("hidden",)
    else:
        r.mapping(h, ("hidden",), "check.hidden")
        r.keys(h, ("dim", "values"), ("hidden",), "check.hidden")
        if "dim" not in h or "values" not in h:
            r.fail(("hidden",), "check.hidden needs 'dim' (a size name) and 'values' (a list of widths)", key=True)
        dim = h["dim"]
        known = _dim_names(graph)
        if not isinstance(dim, str) or dim not in known:
            r.fail(("hidden", "dim"), f"check.hidden.dim: {dim!r} is not a size of this problem"
                   f"{_suggest(str(dim), known)} (sizes: {', '.join(sorted(known))})")
        if dim in _data_dims(graph):
            r.fail(("hidden", "dim"), f"check.hidden.dim: '{dim}' is fixed by the data and cannot be swept")
        s.hidden_dim, values, vpath = dim, h["values"], ("hidden", "values")
    if not isinstance(values, list) or not values:
        r.fail(vpath, f"check.hidden: the widths must be a non-empty list, got {_kind(values)}")
    s.widths = [r.integer(v, vpath + (i,), "check.hidden: a width", 0) for i, v in enumerate(values)]


def _dim_names(graph: Graph) -> set[str]:
    names = set(graph.dims)
    for spec in graph.problem.symbols.values():
        names.update(d for d in spec.shape if isinstance(d, str))
    return names


def _data_dims(graph: Graph) -> set[str]:
    """Size names the data decides (the input's and the target's)."""
    out = set()
    for name in graph.leaves:
        if graph.role(name) == "input" or graph.role(name) == "target":
            out.update(d for d in graph.shape(name) if isinstance(d, str))
            if graph.kind(name) == "class":
                d = _class_dim(graph, name)
                if isinstance(d, str):
                    out.add(d)
    return out


# ====================================================================== data -> graph
@dataclass
class Binding:
    """How a dataset feeds the graph."""

    input: str
    target: str
    dims: dict[str, int]
    input_shape: tuple
    encode: Callable[[np.ndarray], np.ndarray]     # labels/values -> target values (batched)
    candidates: list[np.ndarray] | None = None     # accuracy by the smaller loss: one target per class
    accuracy_rule: str | None = None


def bind_data(graph: Graph, settings: Settings, ds: Dataset, r: _Reader) -> Binding:
    """Sizes from the data, and how features and labels become the input and target values."""
    inputs = [n for n in graph.leaves if graph.role(n) == "input"]
    targets = [n for n in graph.leaves if graph.role(n) == "target"]
    params = [n for n in graph.leaves if graph.role(n) == "param"]
    sym_at = graph.problem.locate
    if len(inputs) != 1:
        r.fail(("data",), f"training needs exactly one leaf with role input (the features); this problem "
               f"has {len(inputs)}: {', '.join(inputs) or 'none'}", key=True)
    if len(targets) != 1:
        r.fail(("data",), f"training needs exactly one leaf with role target; this problem has "
               f"{len(targets)}: {', '.join(targets) or 'none'}", key=True)
    if not params:
        r.fail(("train",), "there is nothing to train: the problem declares no leaf with role param", key=True)
    x, t = inputs[0], targets[0]
    dims = dict(graph.dims)
    dims.update(settings.dims)
    fixed: dict[str, tuple[int, str]] = {}     # dim -> (value, why)

    def need(size, value: int, why: str, where: Location | None) -> None:
        if isinstance(size, int):
            if size != value:
                raise UserError(f"{why} is {value}, but the problem fixes this size to {size}", where)
            return
        if size in fixed and fixed[size][0] != value:
            raise UserError(f"size {size}: {why} is {value}, but {fixed[size][1]} is {fixed[size][0]}",
                            where)
        if size in settings.dims and settings.dims[size] != value:
            raise UserError(f"check.dims.{size} = {settings.dims[size]}, but {why} is {value} "
                            f"(this size comes from the data; remove it from check.dims)", r.at("dims", size))
        fixed[size] = (value, why)
        dims[size] = value

    x_shape = graph.shape(x)
    x_where = sym_at("symbols", x)
    if len(x_shape) > 1:
        raise UserError(f"training feeds one sample at a time, so the input '{x}' must be a vector or a "
                        f"scalar, not shape [{', '.join(map(str, x_shape))}]", x_where)
    if x_shape:
        need(x_shape[0], ds.n_features, f"the number of features of {ds.name}", x_where)
    elif ds.n_features != 1:
        raise UserError(f"the input '{x}' is a scalar but {ds.name} has {ds.n_features} features "
                        f"(declare it with shape [D])", x_where)

    kind = graph.kind(t)
    t_shape = graph.shape(t)
    t_where = sym_at("symbols", t)
    classify = ds.task == CLASSIFICATION
    what = f"{ds.name} is {'classification' if classify else 'regression'} data"
    if kind in ("onehot", "class", "binary") and not classify:
        raise UserError(f"the target '{t}' is a {kind} target, but {what} "
                        f"(a regression target has kind real)", t_where)
    binding = Binding(x, t, dims, x_shape, encode=lambda y: y)
    if kind == "onehot":
        if len(t_shape) != 1:
            raise UserError(f"a onehot target must be a vector [C], got shape {list(t_shape)}", t_where)
        need(t_shape[0], ds.n_classes, f"the number of classes of {ds.name}", t_where)
        eye = np.eye(ds.n_classes)
        binding.encode = lambda y: eye[y]
        binding.accuracy_rule = "argmax"
    elif kind == "class":
        size = _class_dim(graph, t)
        if size is None:
            raise UserError(f"the class target '{t}' never indexes a vector, so the number of classes is "
                            f"unknown", t_where)
        need(size, ds.n_classes, f"the number of classes of {ds.name}", t_where)
        binding.encode = lambda y: y
        binding.accuracy_rule = "argmax"
    elif classify:            # binary, or real on classification data: 0/1 values or one-hot rows
        C = ds.n_classes
        if len(t_shape) > 1:
            raise UserError(f"the target '{t}' must be a vector or a scalar, got shape {list(t_shape)}", t_where)
        if not t_shape:
            if C != 2:
                raise UserError(f"the target '{t}' is a scalar 0/1 value, but {ds.name} has {C} classes "
                                f"(use a vector target)", t_where)
            binding.encode = lambda y: y.astype(np.float64)
            binding.candidates = [np.array(0.0), np.array(1.0)]
        else:
            size = t_shape[0]
            size_value = settings.dims.get(size, None) if isinstance(size, str) else size
            if C == 2 and (size_value == 1 or (size_value is None and kind == "binary")):
                need(size, 1, f"one 0/1 output for the 2 classes of {ds.name}", t_where)
                binding.encode = lambda y: y.astype(np.float64)[:, None]
                binding.candidates = [np.zeros(1), np.ones(1)]
            else:
                need(size, C, f"the number of classes of {ds.name} (one-hot targets)", t_where)
                eye = np.eye(C)
                binding.encode = lambda y: eye[y]
                binding.candidates = list(eye)
        binding.accuracy_rule = "smaller loss"
    else:                     # real target, regression data
        k = ds.n_outputs
        if len(t_shape) > 1:
            raise UserError(f"the target '{t}' must be a vector or a scalar, got shape {list(t_shape)}", t_where)
        if t_shape:
            need(t_shape[0], k, f"the number of outputs of {ds.name}", t_where)
            binding.encode = lambda y: y
        else:
            if k != 1:
                raise UserError(f"the target '{t}' is a scalar but {ds.name} has {k} outputs", t_where)
            binding.encode = lambda y: y[:, 0]
    return binding


# ====================================================================== initial weights
def init_params(graph: Graph, dims: dict[str, int], init: str | float, rng: np.random.Generator) -> dict:
    """Weights N(0, σ²) with σ from ``init`` and the fan-in; biases (only ever added) zero."""
    uses = _param_uses(graph)
    out = {}
    for name in graph.leaves:
        if graph.role(name) != "param":
            continue
        shape = concrete(graph.shape(name), dims)
        fan_in, fan_out, bias = uses.get(name, (None, None, False))
        if bias:
            out[name] = np.zeros(shape)
            continue
        fi = dims.get(fan_in, fan_in) if isinstance(fan_in, str) else fan_in
        fo = dims.get(fan_out, fan_out) if isinstance(fan_out, str) else fan_out
        fi = max(int(fi or 1), 1)
        fo = max(int(fo or 1), 1)
        if isinstance(init, float):
            std = init
        elif init == "he":
            std = math.sqrt(2.0 / fi)
        elif init == "glorot":
            std = math.sqrt(2.0 / (fi + fo))
        else:
            std = math.sqrt(1.0 / fi)
        out[name] = np.asarray(rng.normal(0.0, std, size=shape), dtype=np.float64)
    return out


def _param_uses(graph: Graph) -> dict[str, tuple]:
    """param -> (fan_in, fan_out, is_bias) from how the expressions use it."""
    params = {n for n in graph.leaves if graph.role(n) == "param"}
    fan: dict[str, tuple] = {}
    other_use: set[str] = set()
    added: set[str] = set()
    for e in graph.nodes.values():
        for node in e.walk():
            for pos, a in enumerate(node.args):
                base, transposed = (a.args[0], True) if a.op == "T" and a.args and a.args[0].op == "sym" else (a, False)
                if base.op != "sym" or base.attr not in params:
                    continue
                p = base.attr
                if node.op in ("add", "sub"):
                    added.add(p)
                    continue
                other_use.add(p)
                if node.op == "matmul" and p not in fan:
                    shape = graph.shape(p)
                    s = shape if len(shape) == 2 else ((shape[0], 1) if shape else (1, 1))
                    if transposed:
                        s = (s[1], s[0])
                    # left operand [out, in] contracts its columns; right operand [in, out] its rows
                    fan[p] = (s[1], s[0]) if pos == 0 else (s[0], s[1])
    out = {}
    for p in params:
        if p in fan:
            out[p] = fan[p] + (False,)
        else:
            out[p] = (1, 1, p in added and p not in other_use)
    return out


# ====================================================================== training
@dataclass
class _Data:
    X: np.ndarray
    T: np.ndarray            # target values as the graph takes them
    labels: np.ndarray       # class labels (classification) or the targets
    n: int


def _prepare(ds: Dataset, binding: Binding) -> _Data:
    X = ds.X if binding.input_shape else ds.X[:, 0]
    X = np.ascontiguousarray(X, dtype=np.float64)
    return _Data(X, binding.encode(ds.y), ds.y, len(ds))


def _train_one(comp: Compiled, binding: Binding, tr: _Data, va: _Data, s: Settings, lr: float, seed: int,
               run_index: int, progress) -> dict:
    rng = np.random.default_rng(seed)
    params = init_params(comp.graph, comp.dims, s.init, rng)
    velocity = {k: np.zeros_like(v) for k, v in params.items()} if s.momentum else None
    x, t = binding.input, binding.target
    B = s.batch_size
    losses: list = []
    val_losses: list = []
    accs: list = []
    iter_loss: list = []
    seconds = 0.0
    diverged = False
    window, window_n = 0.0, 0
    def on_batch(mean_loss: float) -> None:
        nonlocal window, window_n
        window += mean_loss
        window_n += 1
        if window_n == s.log_every:
            iter_loss.append(window / window_n)
            window, window_n = 0.0, 0

    for epoch in range(s.epochs):
        t0 = time.perf_counter()
        order = rng.permutation(tr.n)
        with np.errstate(all="ignore"):
            total = sgd_epoch(comp, params, tr.X, tr.T, order=order, lr=lr, batch_size=B, input=x, target=t,
                              velocity=velocity, momentum=s.momentum,
                              on_batch=on_batch if s.log_every else None)
        seconds += time.perf_counter() - t0
        train_loss = total / tr.n
        val_loss, acc = _evaluate(comp, binding, params, va)
        losses.append(train_loss)
        val_losses.append(val_loss)
        accs.append(acc)
        if progress is not None:
            progress(run_index, epoch, train_loss)
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            diverged = True
            break
    pad = s.epochs - len(losses)
    return {"loss": losses + [math.nan] * pad, "val_loss": val_losses + [math.nan] * pad,
            "val_accuracy": accs + [None] * pad, "iter_loss": iter_loss, "diverged": diverged,
            "epoch_seconds": seconds / max(len(losses), 1), "params": params}


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


def _evaluate(comp: Compiled, binding: Binding, params: dict, data: _Data) -> tuple[float, float | None]:
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


def _check_runs(comp: Compiled, binding: Binding, tr: _Data, params: dict, width, dim, r: _Reader) -> None:
    """Evaluate the network once on two samples: a size that does not fit fails here, clearly."""
    vals = {**params, binding.input: tr.X[:2], binding.target: tr.T[:2]}
    try:
        with np.errstate(all="ignore"):
            loss, grads = comp.step(vals)
        bad = not np.isfinite(loss) or any(not np.all(np.isfinite(g)) for g in grads.values())
        for k, g in grads.items():
            if np.shape(g) != np.shape(params[k]):
                raise ValueError(f"the gradient of {k} has shape {np.shape(g)}, expected {np.shape(params[k])}")
    except (ValueError, IndexError, ZeroDivisionError) as exc:
        if width is not None:
            raise UserError(f"check.hidden: width {width} for {dim} does not work with this network "
                            f"({_short(exc)})", r.at("hidden")) from None
        raise UserError(f"the network cannot be evaluated on the data at sizes "
                        f"{_fmt_dims(comp.dims)}: {_short(exc)}", r.at("data")) from None
    if bad and width == 0:
        raise UserError(f"check.hidden: width 0 for {dim} gives a loss that is not a number "
                        f"(the network needs at least one unit there)", r.at("hidden"))


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) < 160 else text[:157] + "..."


def _fmt_dims(dims: dict) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in dims.items()) + "}"


def _load_data(settings: Settings, base_dir, r: _Reader) -> Dataset:
    try:
        return make_dataset(settings.data, base_dir)
    except UserError as exc:
        if exc.where is not None:
            raise
        msg = exc.message
        path: tuple = ("data",)
        for key in settings.data:
            if msg.startswith(f"data.{key}") or f"'{key}'" in msg or f"data.{key}:" in msg:
                path = ("data", key)
                break
        else:
            if "path" in settings.data and str(settings.data["path"]) in msg:
                path = ("data", "path")
        raise UserError(msg, r.at(*path)) from None


def run_check(graph: Graph, derivation, *, base_dir=None, progress: Callable | None = None) -> dict:
    """Run the problem's ``check:`` section; return the contract's ``train`` dictionary (§5).

    ``progress(run_index, epoch, loss)`` is called after every epoch of every run (both
    indices count from 0; :func:`planned_epochs` gives the total, for a progress bar).
    """
    r = _Reader(graph.problem)
    s = read_settings(graph)
    if base_dir is None and getattr(graph.problem, "path", None):
        base_dir = Path(graph.problem.path).parent
    ds = _load_data(s, base_dir, r)
    binding = bind_data(graph, s, ds, r)
    if "accuracy_above" in s.expect and (binding.accuracy_rule is None or (
            binding.accuracy_rule == "argmax" and _prediction(graph, inline_nodes(graph)) is None)):
        r.fail(("expect", "accuracy_above"),
               f"check.expect.accuracy_above: no accuracy exists here ({ds.name} is "
               f"{'regression' if ds.task != CLASSIFICATION else 'classification'} data"
               f"{'' if ds.task != CLASSIFICATION else ' but no node predicts the class'}); "
               f"use final_loss_below")
    try:
        train_ds, val_ds = train_val_split(ds, s.val_fraction, s.seed)
    except UserError as exc:
        raise UserError(exc.message, exc.where or r.at("data")) from None
    if s.standardize:
        train_ds, val_ds = standardize(train_ds, val_ds)
    tr, va = _prepare(train_ds, binding), _prepare(val_ds, binding)

    widths = s.widths if s.widths is not None else [None]
    runs: list[dict] = []
    table: list[dict] = []
    run_index = 0
    for width in widths:
        dims = dict(binding.dims)
        if width is not None:
            dims[s.hidden_dim] = width
        comp = compile_problem(graph, derivation, dims)
        _check_runs(comp, binding, tr, init_params(graph, dims, s.init, np.random.default_rng(s.seed)),
                    width, s.hidden_dim, r)
        for lr in s.lrs:
            group = []
            for rep in range(s.repeats):
                seed = s.seed + rep
                res = _train_one(comp, binding, tr, va, s, lr, seed, run_index, progress)
                res.pop("params")
                run = {"run": run_index, "lr": lr, "width": width, "seed": seed, "repeat": rep, **res}
                run["final_loss"] = run["loss"][-1]
                run["final_val_loss"] = run["val_loss"][-1]
                run["accuracy"] = run["val_accuracy"][-1]
                runs.append(run)
                group.append(run)
                run_index += 1
            table.append(_summarise(group, lr, width))

    best = min(range(len(table)), key=lambda i: _rank(table[i]))
    top = table[best]
    result: dict[str, Any] = {
        "loss": top["loss"], "val_loss": top["val_loss"],
        "final_loss": top["final_loss"], "final_val_loss": top["final_val_loss"],
        "accuracy": top["accuracy"], "val_accuracy": top["val_accuracy"],
        "lr": top["lr"], "width": top["width"],
    }
    if s.repeats > 1:
        result["mean_loss"] = top["loss"]
        result["std_loss"] = top["std_loss"]
        result["mean_val_loss"] = top["val_loss"]
        result["std_val_loss"] = top["std_val_loss"]
        result["repeats"] = s.repeats
    result["runs"] = [{k: v for k, v in run.items() if k != "iter_loss" or s.log_every} for run in runs]
    result["sweep"] = []
    for row in table:
        entry = {k: v for k, v in row.items() if k not in ("loss", "val_loss", "std_loss", "std_val_loss",
                                                           "val_accuracy")}
        if s.repeats > 1:               # the spread of each setting's curve over its repeats
            entry["mean_loss"], entry["std_loss"] = row["loss"], row["std_loss"]
        result["sweep"].append(entry)
    if s.lr_sweep or s.widths is not None:
        result["best"] = {"lr": top["lr"], "width": top["width"]}
    expect, passed = _expectations(s, top)
    result["expect"] = expect
    result["passed"] = passed
    result["epoch_seconds"] = float(np.mean([run["epoch_seconds"] for run in runs]))
    result["data"] = {"name": ds.name, "task": ds.task, "n_train": tr.n, "n_val": va.n,
                      "features": ds.n_features, "classes": ds.n_classes,
                      "standardized": s.standardize}
    result["dims"] = dict(binding.dims)
    if s.widths is not None:
        result["hidden"] = {"dim": s.hidden_dim, "values": list(s.widths)}
    result["settings"] = {"optimizer": s.optimizer, "lr": s.lrs if s.lr_sweep else s.lrs[0],
                          "batch_size": s.batch_size, "epochs": s.epochs, "seed": s.seed,
                          "momentum": s.momentum, "val_fraction": s.val_fraction, "init": s.init,
                          "repeats": s.repeats, "log_every": s.log_every}
    result["accuracy_rule"] = _describe_rule(graph, binding)
    return _clean(result)


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
    from .printing import to_ascii
    mapping = inline_nodes(graph)
    pred = _prediction(graph, mapping)
    if pred is None:
        return None
    for name in graph.nodes:                  # name the node when the prediction is one
        if mapping[graph.ref(name)] == pred:
            return f"argmax of {name}"
    return f"argmax of {to_ascii(pred)}"


def _clean(v):
    """JSON-safe: NumPy scalars to Python, non-finite floats to None."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def planned_epochs(graph: Graph) -> int:
    """How many epochs ``run_check`` will run in all (for sizing a progress bar); 0 without check:."""
    if not getattr(graph.problem, "check", None):
        return 0
    s = read_settings(graph)
    return s.epochs * s.repeats * len(s.lrs) * len(s.widths or [None])


# ====================================================================== curves
CURVE_COLUMNS = ("run", "lr", "epoch", "train_loss", "val_loss", "accuracy", "width", "seed")


def write_curve(result: dict, path) -> None:
    """One CSV row per epoch of every run: run, lr, epoch, train_loss, val_loss, accuracy, width, seed.

    Empty cells for values that do not exist (accuracy on regression data, epochs after a
    run diverged).
    """
    path = Path(path)
    try:
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(CURVE_COLUMNS)
            for run in result.get("runs", []):
                accs = run.get("val_accuracy") or [None] * len(run["loss"])
                for epoch, (lo, vl, acc) in enumerate(zip(run["loss"], run["val_loss"], accs), start=1):
                    w.writerow([run["run"], _cell(run["lr"]), epoch, _cell(lo), _cell(vl), _cell(acc),
                                "" if run.get("width") is None else run["width"], run.get("seed", "")])
    except OSError as exc:
        raise UserError(f"cannot write the curve: {exc.strerror or exc}", Location(str(path))) from None


def _cell(v) -> str:
    if v is None:
        return ""
    return repr(float(v))


def plot_curve(result: dict, path) -> None:
    """Training and validation loss per epoch (one line per setting) as a PNG; needs matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("plotting the loss curve needs matplotlib: pip install 'derivkit[plot]'") from None
    rows: dict[tuple, list[dict]] = {}
    for run in result.get("runs", []):
        rows.setdefault((run["lr"], run.get("width")), []).append(run)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for (lr, width), group in rows.items():
        label = f"lr={lr:g}" + ("" if width is None else f", width={width}")
        for key, style in (("loss", "-"), ("val_loss", "--")):
            L = np.array([[np.nan if v is None else v for v in g[key]] for g in group], dtype=float)
            mean = np.nanmean(L, axis=0) if np.isfinite(L).any() else L[0]
            epochs = np.arange(1, L.shape[1] + 1)
            line = ax.plot(epochs, mean, style, label=f"{label} ({'train' if key == 'loss' else 'val'})")
            if len(group) > 1:
                std = np.nanstd(L, axis=0)
                ax.fill_between(epochs, mean - std, mean + std, alpha=0.15, color=line[0].get_color())
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(fontsize="small")
    fig.tight_layout()
    try:
        fig.savefig(str(path), dpi=120)
    except OSError as exc:
        raise UserError(f"cannot write the plot: {exc.strerror or exc}", Location(str(path))) from None
    finally:
        plt.close(fig)
