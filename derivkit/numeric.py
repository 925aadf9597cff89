"""The one NumPy executor: expressions evaluated per sample or for a whole minibatch.

A :class:`Program` is compiled once from named output expressions: one step per distinct
sub-expression (shared work is done once), each step a call of the registry's NumPy form
(``derivkit.ops.OPS[op].numpy``); the atoms (``sym``, ``grad``, ``num``, ``dim``, ``ones``,
``eye``) are read here and nowhere else.  Nothing is generated as source or ``exec``-ed.

Batched values carry a leading batch axis; which inputs are batched is fixed per call
pattern, so :meth:`Program.run` compiles (and caches) a plan for each set of batched
inputs: batch flags resolved, alignment skipped where no reshape is needed, and every
intermediate dropped after its last use (use counts computed at compile time), as
hand-written code does — holding every temporary of a minibatch raises the peak memory
and costs page faults.

``batch_sum`` outputs are summed over the batch; the sum of outer products δ xᵀ is one
matrix product Δᵀ X, the way hand-written backprop does it.  An output that carries no
batch axis is its own batch sum (the caller scales it by the batch size when it means
"the same for every sample": see :class:`derivkit.training.compile.Compiled`).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

import numpy as np

from .expr import Expr, concrete, substitute, sym
from .graph import Graph
from .ops import OPS

ATOMS = ("sym", "grad", "num", "dim", "ones", "eye")


@dataclass
class _Step:
    expr: Expr
    args: tuple[int, ...]


class Program:
    """Evaluate several expressions together, sharing common sub-expressions.

    Inputs are leaf or node names (``sym``) supplied by the caller, or ``("grad", name)``
    for upstream-gradient symbols; ``run``'s ``batched`` names carry a batch axis.
    ``batch_sum`` marks outputs to be summed over the batch.
    """

    def __init__(self, outputs: dict[str, Expr], dims: dict[str, int], batch_sum=frozenset()):
        self.dims = dict(dims)
        self.outputs = dict(outputs)
        self.batch_sum = set(batch_sum)
        self.steps: list[_Step] = []
        self.slot: dict[Expr, int] = {}
        self.out_slots: dict[str, int] = {}
        self._plans: dict[frozenset, Plan] = {}
        for key, e in outputs.items():
            self.out_slots[key] = self._add_batch_sum(e) if key in self.batch_sum else self._add(e)

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
            args = (self._add(e.args[0]), self._add(e.args[1].args[0]))
            kind = "outer"
        elif e.op == "neg" or (e.op in ("mul", "div") and e.args[1].shape == () and not _has_input(e.args[1])):
            args = (self._add_batch_sum(e.args[0]),) + tuple(self._add(a) for a in e.args[1:])
            kind = e.op
        else:
            args = (self._add(e),)
            kind = "sum"
        self.slot[key] = len(self.steps)
        self.steps.append(_Step(Expr("batch_sum", (), kind, e.shape), args))
        return self.slot[key]

    def plan(self, batched=frozenset()) -> "Plan":
        """The compiled plan for these batched inputs (built once, then cached)."""
        key = frozenset(batched)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = Plan(self, key)
        return plan

    def run(self, values: dict, batched=frozenset()) -> dict[str, Any]:
        """Every output from the input ``values``; ``batched`` inputs carry a leading batch axis."""
        return self.plan(batched).run(values)


def _has_input(e: Expr) -> bool:
    return any(n.op in ("sym", "grad") for n in e.walk())


def _input_key(e: Expr):
    return e.attr if e.op == "sym" else ("grad", e.attr[1])


def _atom_value(e: Expr, dims: dict[str, int]):
    """The value of a constant atom (NumPy scalars, so every op's NumPy form accepts them)."""
    if e.op == "num":
        return np.float64(float(e.attr) if isinstance(e.attr, Fraction) else e.attr)
    if e.op == "dim":
        return np.float64(dims[e.attr])
    if e.op == "ones":
        return np.ones(concrete(e.shape, dims))
    if e.op == "eye":
        return np.eye(concrete(e.shape, dims)[0])
    raise AssertionError(e.op)


class Plan:
    """A :class:`Program`'s steps with the batch flags of one call pattern resolved.

    Each step becomes one function of the value list; elementwise steps whose operands need
    no alignment skip it; each intermediate is freed after its last use.
    """

    def __init__(self, program: Program, batched: frozenset):
        dims = program.dims
        steps = program.steps
        self.template: list = [None] * len(steps)
        self.inputs: list[tuple[int, Any]] = []
        calls: list[tuple[int, Callable, tuple[int, ...]]] = []
        bats = [False] * len(steps)
        for i, step in enumerate(steps):
            e = step.expr
            flags = tuple(bats[j] for j in step.args)
            if e.op == "batch_sum":
                calls.append((i, _batch_sum_fn(e.attr, flags), step.args))
            elif e.op in ("sym", "grad"):
                key = _input_key(e)
                self.inputs.append((i, key))
                bats[i] = key in batched
            elif e.op in ATOMS:
                self.template[i] = _atom_value(e, dims)
            else:
                bats[i] = any(flags)
                spec = OPS[e.op]
                if spec.elementwise and _aligned(e, flags):
                    flags = (False,) * len(flags)
                calls.append((i, _op_fn(spec.numpy, flags, e, dims), step.args))
        self.outputs = dict(program.out_slots)
        keep = set(self.outputs.values()) | {i for i, _ in self.inputs} | \
            {i for i, v in enumerate(self.template) if v is not None}
        uses: dict[int, int] = {}
        for _, _, args in calls:
            for j in set(args):
                uses[j] = uses.get(j, 0) + 1
        self.calls = []
        for i, fn, args in calls:
            free = []
            for j in set(args):
                uses[j] -= 1
                if uses[j] == 0 and j not in keep:
                    free.append(j)
            self.calls.append((i, _gather(fn, args), tuple(free)))

    def run(self, values: dict) -> dict[str, Any]:
        vals = list(self.template)
        for i, key in self.inputs:
            vals[i] = values[key]
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
    """The sum over the batch of one output (an unbatched value is its own sum)."""
    if kind == "outer":
        ba, bb = flags

        def outer(vals):
            a, b = vals
            if not (ba or bb):
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


# ====================================================================== graphs
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

    While expressions compare without their shapes, ``ones(H)`` and ``ones(C)`` are equal
    keys and a :class:`Program` would compute one of them for both; with the shape in the
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


def forward_values(g: Graph, leaves: dict[str, np.ndarray], dims: dict[str, int] | None = None,
                   batched=frozenset()) -> dict[str, np.ndarray]:
    """Every node's value (and the loss) from leaf values, in one program."""
    mapping = inline_nodes(g)
    prog = Program({name: mapping[sym(name, e.shape)] for name, e in g.nodes.items()}, dims or g.dims)
    return prog.run(leaves, frozenset(batched))


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
