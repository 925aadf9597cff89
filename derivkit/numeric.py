"""Expressions evaluated with NumPy, per sample or for a whole minibatch.

A :class:`Program` is a list of steps (one per distinct sub-expression, so
shared work is done once) built from the registry's NumPy forms; nothing is
generated as source or ``exec``-ed.  Batched values carry a leading batch axis;
parameters do not.  A parameter's gradient over a batch is the sum of the
per-sample gradients, and the sum of outer products δ xᵀ is computed as one
matrix product Δᵀ X, the way hand-written backprop does it.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .expr import Expr, concrete
from .graph import Graph
from .ops import OPS


@dataclass
class _Step:
    expr: Expr
    args: tuple[int, ...]


class Program:
    """Evaluate several expressions together, sharing common sub-expressions.

    ``inputs`` are names (leaves or nodes) supplied by the caller, or
    ``("grad", name)`` for upstream-gradient symbols; ``batched`` names carry
    a batch axis.  ``batch_sum`` marks outputs to be summed over the batch.
    """

    def __init__(self, outputs: dict[str, Expr], dims: dict[str, int], batch_sum: set[str] = frozenset()):
        self.dims = dict(dims)
        self.outputs = dict(outputs)
        self.batch_sum = set(batch_sum)
        self.steps: list[_Step] = []
        self.slot: dict[Expr, int] = {}
        self.out_slots: dict[str, int] = {}
        for key, e in outputs.items():
            if key in self.batch_sum:
                self.out_slots[key] = self._add_batch_sum(e)
            else:
                self.out_slots[key] = self._add(e)

    def _add(self, e: Expr) -> int:
        for node in e.walk():
            if node not in self.slot:
                self.slot[node] = len(self.steps)
                self.steps.append(_Step(node, tuple(self.slot[a] for a in node.args)))
        return self.slot[e]

    def _add_batch_sum(self, e: Expr) -> int:
        """Σ over the batch of e; outer products become one matrix product."""
        key = Expr("batch_sum", (e,), None, e.shape)
        if key in self.slot:
            return self.slot[key]
        if e.op == "matmul" and len(e.args[0].shape) == 1 and len(e.args[1].shape) == 2 \
                and e.args[1].shape[0] == 1 and e.args[1].op == "T":
            a, b = e.args[0], e.args[1].args[0]
            args = (self._add(a), self._add(b))
            kind = "outer"
        elif e.op in ("neg",) or (e.op in ("mul", "div") and e.args[1].shape == () and not _has_sym(e.args[1])):
            inner = self._add_batch_sum(e.args[0])
            args = (inner,) + tuple(self._add(a) for a in e.args[1:])
            kind = e.op
        else:
            args = (self._add(e),)
            kind = "sum"
        self.slot[key] = len(self.steps)
        self.steps.append(_Step(Expr("batch_sum", (), kind, e.shape), args))
        return self.slot[key]

    def run(self, values: dict, batched: set = frozenset()) -> dict[str, np.ndarray]:
        vals: list = [None] * len(self.steps)
        bats: list = [False] * len(self.steps)
        for i, step in enumerate(self.steps):
            e = step.expr
            if e.op == "batch_sum":
                vals[i], bats[i] = _batch_sum(e.attr, [vals[j] for j in step.args],
                                              [bats[j] for j in step.args]), False
                continue
            if e.op == "sym":
                vals[i], bats[i] = values[e.attr], e.attr in batched
            elif e.op == "grad":
                key = ("grad", e.attr[1])
                vals[i], bats[i] = values[key], key in batched
            elif e.op == "num":
                vals[i] = float(e.attr) if isinstance(e.attr, Fraction) else e.attr
            elif e.op == "dim":
                vals[i] = float(self.dims[e.attr])
            elif e.op == "ones":
                vals[i] = np.ones(concrete(e.shape, self.dims))
            elif e.op == "eye":
                vals[i] = np.eye(concrete(e.shape, self.dims)[0])
            else:
                a = [vals[j] for j in step.args]
                b = [bats[j] for j in step.args]
                vals[i] = OPS[e.op].numpy(a, b, e, self.dims)
                bats[i] = any(b)
        return {k: vals[s] for k, s in self.out_slots.items()}


def _has_sym(e: Expr) -> bool:
    return any(n.op in ("sym", "grad") for n in e.walk())


def _batch_sum(kind: str, vals: list, bats: list):
    if kind == "outer":
        a, b = vals
        ba, bb = bats
        if ba and bb:
            return a.T @ b
        a = a if ba else np.broadcast_to(a, (b.shape[0],) + a.shape)
        b = b if bb else np.broadcast_to(b, (a.shape[0],) + b.shape)
        return a.T @ b
    if kind == "sum":
        (v,), (b,) = vals, bats
        return v.sum(axis=0) if b else v
    inner, *rest = vals
    if kind == "neg":
        return -inner
    if kind == "mul":
        return inner * rest[0]
    if kind == "div":
        return inner / rest[0]
    raise AssertionError(kind)


def forward_values(g: Graph, leaves: dict[str, np.ndarray], dims: dict[str, int] | None = None,
                   batched: set = frozenset()) -> dict[str, np.ndarray]:
    """Every node's value (and the loss) from leaf values."""
    # Nodes refer to earlier nodes by name: evaluate in order, feeding values forward.
    values = dict(leaves)
    bat = set(batched)
    for name, e in g.nodes.items():
        p = Program({name: e}, dims or g.dims)
        values[name] = p.run(values, bat)[name]
        if any(s in bat for s in _names(e)):
            bat.add(name)
    return {n: values[n] for n in g.nodes}


def _names(e: Expr) -> set[str]:
    return {n.attr for n in e.walk() if n.op == "sym"}


def random_leaves(g: Graph, rng: np.random.Generator, dims: dict[str, int] | None = None,
                  positive: bool = False) -> dict[str, np.ndarray]:
    """Random values for every leaf, respecting target kinds and declared domains."""
    dims = dims or g.dims
    out = {}
    for name, spec in g.problem.symbols.items():
        shape = concrete(spec.shape, dims)
        kind = spec.kind
        if spec.values:
            out[name] = np.asarray(rng.choice(list(spec.values), size=shape), dtype=float)
        elif kind == "onehot":
            v = np.zeros(shape)
            v[rng.integers(shape[0])] = 1.0
            out[name] = v
        elif kind == "class":
            n = _class_count(g, name, dims)
            out[name] = np.int64(rng.integers(n))
        elif kind == "binary":
            out[name] = rng.integers(0, 2, size=shape).astype(float)
        elif positive:
            out[name] = rng.uniform(0.2, 0.9, size=shape)
        else:
            out[name] = rng.normal(0.0, 1.0, size=shape) * (0.5 if spec.role == "param" else 1.0)
    return out


def _class_count(g: Graph, name: str, dims: dict[str, int]) -> int:
    """The size of the vector a class-index target indexes (its number of classes)."""
    for e in g.nodes.values():
        for n in e.walk():
            if n.op in ("index", "onehot") and any(a.op == "sym" and a.attr == name for a in n.args):
                size = n.attr if n.op == "onehot" else n.args[0].shape[n.args.index(
                    next(a for a in n.args[1:] if a.op == "sym" and a.attr == name)) - 1]
                return dims[size] if isinstance(size, str) else int(size)
    return 2
