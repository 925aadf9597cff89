"""Ground truth and proof: are two quantities equal on the problem's domain?

The ground truth of ∂of/∂wrt is computed node by node, as a textbook scalar
chain rule with SymPy as the only source of calculus:

* every operation application in the graph, at concrete sizes, is a *local
  kernel*: the registry's scalar SymPy form of its output entries over symbols
  for its input entries, with ``sympy.diff`` of each entry with respect to each
  input entry it uses; both are ``lambdify``-ed to mpmath once per problem (and
  shared by every application with the same operation and sizes);
* at each sample point the kernels give every node entry's value in 40-digit
  arithmetic (forward), and the local partials are accumulated backwards
  (reverse), so the cost is linear in depth and in the number of entries.

No matrix rule of derivkit is involved, so the proof is independent of the
derivation.  Readable forms (derivkit ``Expr`` over named nodes, upstream
gradients included) are evaluated node by node with the same kernels.

Matrix forms hold at every size, so the proof runs at :func:`proof_dims`:
every dims entry capped at :data:`PROOF_SIZE` where the problem's own literal
indices allow.  Equality of analytic expressions at random points of an open
set (or of a declared ``values:`` domain) is the standard probabilistic
identity test.

:func:`compare` is the one comparison routine: ``verify``, every question kind
and the grader use it.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence, Union

import mpmath
import numpy as np
import sympy

from .errors import UserError
from .expr import Expr, concrete
from .graph import Graph
from .numeric import random_leaves
from .ops import OPS, sympy_value

DPS = 40
TOLERANCE = 1e-25          # relative, in 40-digit arithmetic
PROOF_SIZE = 3             # dims larger than this are proved at this size


class Undefined(ArithmeticError):
    """A value that is not a finite real number (division by zero, log of 0, a complex root...)."""


# ====================================================================== what can be compared
@dataclass(frozen=True)
class Derivative:
    """The ground truth ∂of/∂wrt: values of shape of.shape + wrt.shape, or the sub-array at ``at``."""

    of: str
    wrt: str
    at: tuple = ()


Quantity = Union[Expr, Derivative]


def proof_dims(g: Graph, cap: int = PROOF_SIZE) -> dict[str, int]:
    """The problem's dims, each capped at ``cap`` unless a literal index needs it larger.

    A literal index anywhere in a question keeps the problem's own dims (questions
    are not parsed here, so this is conservative).
    """
    if any("[" in (t.value if t is not None else "")
           for q in g.problem.questions for t in (q.lhs, q.rhs, q.expr, *q.subs.values())):
        return dict(g.dims)
    need = {d: 1 for d in g.dims}
    for e in g.nodes.values():
        for node in _postorder(e):
            if node.op == "index":
                base = node.args[0].shape
                for axis, i in zip(base, node.args[1:]):
                    if i.op == "num" and isinstance(axis, str):
                        need[axis] = max(need[axis], int(i.attr) + 1)
    return {d: (n if n <= cap else max(cap, need[d])) for d, n in g.dims.items()}


def leaf_symbols(name: str, shape: tuple, kind: str | None) -> np.ndarray | sympy.Symbol:
    """``W`` [2, 3] → array of symbols W_0_0 … W_1_2 (integers for class indices)."""
    opts = {"integer": True, "nonnegative": True} if kind == "class" else {"real": True}
    if not shape:
        return sympy.Symbol(name, **opts)
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        out[idx] = sympy.Symbol(f"{name}_{'_'.join(map(str, idx))}", **opts)
    return out


def _postorder(e: Expr):
    """Every node object once, children first (by identity: no hashing of big trees)."""
    seen: set[int] = set()
    stack: list[tuple[Expr, bool]] = [(e, False)]
    while stack:
        node, done = stack.pop()
        if done:
            yield node
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((a, False) for a in reversed(node.args))


# ====================================================================== local kernels
class Kernel:
    """One operation at concrete sizes: its output entries and their local partials, compiled."""

    def __init__(self, op: str, attr, args: tuple):
        self.arg_syms = []
        sp_args = []
        for n, (what, spec) in enumerate(args):
            if what == "num":
                sp_args.append(sympy.Rational(spec.numerator, spec.denominator))
                self.arg_syms.append([])
                continue
            shape, integer = spec
            syms = leaf_symbols(f"a{n}", shape, "class" if integer else None)
            sp_args.append(syms)
            self.arg_syms.append(list(np.ravel(np.asarray(syms, dtype=object))))
        out = np.asarray(OPS[op].sympy(*sp_args, attr=attr), dtype=object)
        self.outs = [sympy.sympify(v) for v in out.ravel()]
        self.inputs = [s for syms in self.arg_syms for s in syms]
        self._forward = _compile(self.inputs, self.outs)
        self._partials = None
        self.partial_index: list[tuple[int, int, int]] = []    # (output entry, argument, entry)

    def forward(self, flat: list) -> list:
        return [_real(v) for v in self._forward(flat)]

    def partials(self, flat: list) -> list:
        """Values of ∂out[o]/∂arg[a][p] for each (o, a, p) of :attr:`partial_index`."""
        if self._partials is None:
            where = {s: (a, p) for a, syms in enumerate(self.arg_syms) for p, s in enumerate(syms)}
            exprs = []
            for o, out in enumerate(self.outs):
                for s in sorted(out.free_symbols, key=str):
                    if s in where and not s.is_integer:
                        self.partial_index.append((o, *where[s]))
                        exprs.append(sympy.diff(out, s))
            self._partials = _compile(self.inputs, exprs)
        try:
            return [_real(v) for v in self._partials(flat)]
        except (ZeroDivisionError, ValueError, OverflowError, TypeError) as exc:
            raise Undefined(str(exc)) from None


_NOT_FINITE = (sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)


def _compile(inputs: list, exprs: list):
    """``lambdify`` to mpmath; a constant that is not a finite number (x/0) is :class:`Undefined` when called."""
    if any(e.has(*_NOT_FINITE) for e in exprs):
        def undefined(flat):
            raise Undefined("a constant that is not a finite number (a division by zero?)")
        return undefined
    return sympy.lambdify((inputs,), exprs, modules="mpmath")


def _real(v):
    if isinstance(v, mpmath.mpf):
        if not mpmath.isfinite(v):
            raise Undefined("not a finite number")
        return v
    if isinstance(v, (int, float, sympy.Integer, sympy.Float, sympy.Rational)):
        return _real(mpmath.mpf(v) if not isinstance(v, sympy.Basic) else mpmath.mpf(sympy.Float(v, DPS)))
    raise Undefined(f"not a real number: {v}")


# ====================================================================== evaluating one point
def _mp(value) -> np.ndarray:
    """Float or integer leaf values as an object array of mpf (ints stay ints: class indices)."""
    a = np.asarray(value)
    out = np.empty(a.shape, dtype=object)
    for idx in np.ndindex(*a.shape):
        v = a[idx]
        out[idx] = int(v) if np.issubdtype(a.dtype, np.integer) else mpmath.mpf(repr(float(v)))
    return out


@dataclass
class Point:
    """Leaf values at one random point: as floats (for NumPy) and as 40-digit numbers."""

    floats: dict[str, np.ndarray]
    values: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        if not self.values:
            with mpmath.workdps(DPS):
                self.values = {n: _mp(v) for n, v in self.floats.items()}


@dataclass
class _Step:
    out: object                      # slot key
    ins: tuple                       # slot keys (None for a baked number)
    kernel: Kernel | None            # None: the output is the (only) input, renamed
    flat: list | None = None         # the kernel's input values
    partials: list | None = None     # the kernel's partials there, computed on first use


class _Tape:
    """The graph's forward pass at one point, recorded for reverse accumulation."""

    def __init__(self, domain: "Domain", point: Point):
        self.domain = domain
        self.values: dict = {("name", n): v for n, v in point.values.items()}
        self.steps: list[_Step] = []
        self.bad: str | None = None
        self._sweeps: dict = {}
        with mpmath.workdps(DPS):
            for name, e in domain.g.nodes.items():
                try:
                    root = self.run(e)
                except Undefined:
                    self.bad = name
                    return
                self.values[("name", name)] = self.values[root]
                self.steps.append(_Step(("name", name), (root,), None))

    def run(self, e: Expr):
        """Evaluate one node's expression, recording a step per operation; return its slot."""
        slots: dict[int, object] = {}
        for node in _postorder(e):
            key = self.domain._slot(node)
            slots[id(node)] = key
            if key in self.values:
                continue
            if not node.args:
                self.values[key] = self.domain._atom(node, lambda n: self.values[("name", n)])
                continue
            kernel, ins, flat = self.domain._kernel_call(node, [self.values[slots[id(a)]] for a in node.args])
            self.values[key] = self.domain._apply(kernel, flat, node)
            self.steps.append(_Step(key, tuple(slots[id(a)] if a.op != "num" else None for a in node.args),
                                    kernel, flat))
        return slots[id(e)]

    def sweep(self, of: str, i: tuple) -> dict:
        """Adjoints of every slot for the seed ∂of[i]/∂of[i] = 1 (cached)."""
        if (of, i) in self._sweeps:
            return self._sweeps[(of, i)]
        seed = np.zeros(np.shape(self.values[("name", of)]), dtype=object)
        seed[i] = mpmath.mpf(1)
        adj = {("name", of): seed}
        for step in reversed(self.steps):
            g = adj.get(step.out)
            if g is None:
                continue
            if step.kernel is None:
                _accumulate(adj, step.ins[0], g, self.values)
                continue
            if step.partials is None:
                step.partials = step.kernel.partials(step.flat)
            grads = {}
            flat_g = g.ravel()
            for (o, a, p), pv in zip(step.kernel.partial_index, step.partials):
                if flat_g[o] and step.ins[a] is not None:
                    arr = grads.get(a)
                    if arr is None:
                        arr = grads[a] = np.full(np.size(self.values[step.ins[a]]), mpmath.mpf(0), dtype=object)
                    arr[p] += flat_g[o] * pv
            for a, arr in grads.items():
                _accumulate(adj, step.ins[a], arr.reshape(np.shape(self.values[step.ins[a]])), self.values)
        self._sweeps[(of, i)] = adj
        return adj

    def derivative(self, of: str, wrt: str) -> np.ndarray:
        of_shape = np.shape(self.values[("name", of)])
        wrt_shape = np.shape(self.values[("name", wrt)])
        out = np.full(of_shape + wrt_shape, mpmath.mpf(0), dtype=object)
        if of not in self.domain.g.nodes:          # a leaf depends on itself only
            if of == wrt:
                for i in np.ndindex(*of_shape):
                    out[i + i] = mpmath.mpf(1)
            return out
        for i in np.ndindex(*of_shape):
            g = self.sweep(of, i).get(("name", wrt))
            if g is not None:
                for j in np.ndindex(*wrt_shape):
                    out[i + j] = g[j]
        return out


def _accumulate(adj: dict, key, g: np.ndarray, values: dict) -> None:
    g = np.asarray(g, dtype=object).reshape(np.shape(values[key]))
    adj[key] = g if key not in adj else np.asarray(adj[key] + g, dtype=object)


# ====================================================================== the domain
class Domain:
    """Where quantities are compared: the graph at :func:`proof_dims`, sample points, the ground truth.

    ``Domain(g)`` draws ``points`` random points (respecting target kinds and
    ``values:`` domains; moved to positive values when a node is not real
    there).  A node that is still undefined is a located :class:`UserError`.
    """

    def __init__(self, g: Graph, points: int = 3, seed: int = 0, dims: dict | None = None,
                 method: str | None = None):
        self.g = g
        self.dims = dict(dims or proof_dims(g))
        self.method = method or "chain"
        self._kernels: dict = {}
        self.extra: list[dict[str, np.ndarray]] = []
        self.points = self._draw(points, seed, positive=False)
        self._tapes = [_Tape(self, p) for p in self.points]
        bad = next((t.bad for t in self._tapes if t.bad), None)
        if bad:
            self.points = self._draw(points, seed, positive=True)
            self._tapes = [_Tape(self, p) for p in self.points]
            bad = next((t.bad for t in self._tapes if t.bad), None)
        if bad:
            spec = next(s for s in [*g.problem.forward, g.problem.loss] if s.name == bad)
            raise UserError(f"'{bad}' is not a finite real number at the sampled points (a division by "
                            f"zero, or a log or square root outside its domain, e.g. from 'values:')",
                            spec.expr.where)
        self.extra = [{} for _ in self.points]
        self._memos: list[dict] = [{} for _ in self.points]

    def _draw(self, n: int, seed: int, positive: bool) -> list[Point]:
        rng = np.random.default_rng(seed)
        return [Point(random_leaves(self.g, rng, dims=self.dims, positive=positive)) for _ in range(n)]

    @contextlib.contextmanager
    def scratch(self):
        """Values computed inside are forgotten after (those computed before stay): a grader
        judging thousands of answers keeps the references' values, not every answer's."""
        saved = self._memos
        self._memos = [dict(m) for m in saved]
        try:
            yield self
        finally:
            self._memos = saved

    def with_vars(self, shapes: dict[str, tuple], seed: int = 1) -> "Domain":
        """The same domain with free variables (an identity's ``vars``) drawn at every point."""
        rng = np.random.default_rng(seed)
        other = replace_domain(self)
        with mpmath.workdps(DPS):
            other.extra = [{**ex, **{n: _mp(rng.normal(size=concrete(tuple(s), self.dims)))
                                     for n, s in shapes.items()}} for ex in self.extra]
        other._memos = [{} for _ in self.points]
        return other

    # ------------------------------------------------------------------ evaluation
    def _slot(self, node: Expr):
        return ("name", node.attr) if node.op == "sym" else id(node)

    def _atom(self, node: Expr, lookup):
        op, dims = node.op, self.dims
        if op == "sym":
            return lookup(node.attr)
        if op == "num":
            v = node.attr
            if isinstance(v, Fraction):
                return np.asarray(mpmath.mpf(v.numerator) / v.denominator, dtype=object)
            return np.asarray(_real(mpmath.mpf(v)), dtype=object)
        if op == "dim":
            return np.asarray(mpmath.mpf(dims[node.attr]), dtype=object)
        if op == "ones":
            return np.full(concrete(node.shape, dims), mpmath.mpf(1), dtype=object)
        if op == "eye":
            n = concrete(node.shape, dims)[0]
            out = np.full((n, n), mpmath.mpf(0), dtype=object)
            for i in range(n):
                out[i, i] = mpmath.mpf(1)
            return out
        raise ValueError(f"cannot evaluate a bare '{op}' atom")

    def _kernel_call(self, node: Expr, values: list):
        args = []
        flat = []
        for a, v in zip(node.args, values):
            if a.op == "num" and isinstance(a.attr, Fraction):
                args.append(("num", a.attr))
                continue
            v = np.asarray(v, dtype=object)
            integer = v.size > 0 and isinstance(v.flat[0], int)
            args.append(("arr", (v.shape, integer)))
            flat.extend(v.ravel())
        attr = node.attr
        attr = self.dims.get(attr, attr) if isinstance(attr, str) else attr
        key = (node.op, attr, tuple(args))
        kernel = self._kernels.get(key)
        if kernel is None:
            kernel = self._kernels[key] = Kernel(node.op, attr, tuple(args))
        return kernel, args, flat

    def _apply(self, kernel: Kernel, flat: list, node: Expr) -> np.ndarray:
        try:
            out = kernel.forward(flat)
        except (ZeroDivisionError, ValueError, OverflowError, TypeError) as exc:
            raise Undefined(str(exc)) from None
        shape = concrete(node.shape, self.dims)
        return np.asarray(out, dtype=object).reshape(shape)

    def value(self, e: Quantity, k: int) -> np.ndarray:
        """``e`` at point ``k`` in 40-digit arithmetic; raises :class:`Undefined`."""
        with mpmath.workdps(DPS):
            if isinstance(e, Derivative):
                return self.exact(e.of, e.wrt, k)[e.at] if e.at else self.exact(e.of, e.wrt, k)
            tape, memo, extra = self._tapes[k], self._memos[k], self.extra[k]

            def lookup(name):
                if name in extra:
                    return extra[name]
                return tape.values[("name", name)]
            for node in _postorder(e):
                if id(node) in memo:
                    continue
                if node.op == "grad":
                    loss, name = node.attr
                    val = self.exact(loss, name, k).reshape(concrete(node.shape, self.dims))
                elif not node.args:
                    val = self._atom(node, lookup)
                else:
                    kernel, _, flat = self._kernel_call(node, [memo[id(a)][1] for a in node.args])
                    val = self._apply(kernel, flat, node)
                memo[id(node)] = (node, val)        # the node is kept alive: its id stays unique
            return memo[id(e)][1]

    def exact(self, of: str, wrt: str, k: int) -> np.ndarray:
        """Ground truth ∂of/∂wrt at point ``k``: an array of shape of.shape + wrt.shape."""
        with mpmath.workdps(DPS):
            if self.method == "diff":
                return _diff_truth(self, of, wrt, k)
            return self._tapes[k].derivative(of, wrt)

    def defined(self, e: Expr) -> bool:
        """Whether ``e`` is a finite real number at every point."""
        try:
            for k in range(len(self.points)):
                self.value(e, k)
        except Undefined:
            return False
        return True

    # ------------------------------------------------------------------ the verifier's API
    def error(self, readable: Expr, of: str, wrt: str) -> float:
        """Max relative error of ``readable`` against ∂of/∂wrt over the points."""
        return compare(readable, Derivative(of, wrt), self)

    def exact_at(self, of: str, wrt: str) -> list[np.ndarray]:
        return [self.exact(of, wrt, k) for k in range(len(self.points))]


def replace_domain(d: Domain) -> Domain:
    """A shallow copy sharing points, kernels and tapes."""
    other = Domain.__new__(Domain)
    other.__dict__.update(d.__dict__)
    return other


#: The name the rest of derivkit knows it by.
Verifier = Domain


# ====================================================================== the one comparison
def compare(a: Quantity, b: Quantity, domain: Domain, points: Sequence[int] | None = None,
            dps: int = DPS) -> float:
    """Max over ``points`` (default: all of the domain's) of max |a − b| / max(1, |b|), entrywise.

    ``a`` and ``b`` are expressions in the problem's names (nodes, leaves, dims,
    upstream-gradient atoms, the domain's free variables) or :class:`Derivative`
    ground truths, evaluated at ``dps`` digits at the domain's sizes.  A scalar
    is broadcast against an array; a Derivative is laid out like the other side
    when both have as many entries.  ``math.inf`` when the shapes cannot match or
    either side is not a finite real number at some point; 0.0 when equal.
    """
    sa, sb = _symbolic_shape(a, domain.g), _symbolic_shape(b, domain.g)
    layout = isinstance(a, Derivative) or isinstance(b, Derivative)
    if sa and sb and sa != sb and not (layout and _strip_ones(sa) == _strip_ones(sb)):
        return math.inf                     # judged on shapes by name, not on the proof sizes
    worst = 0.0
    ks = range(len(domain.points)) if points is None else points
    with mpmath.workdps(dps):
        for k in ks:
            try:
                x = np.asarray(domain.value(a, k), dtype=object)
                y = np.asarray(domain.value(b, k), dtype=object)
            except Undefined:
                return math.inf
            if x.shape != y.shape:
                if x.ndim == 0 or y.ndim == 0:
                    x, y = np.broadcast_arrays(x, y)
                else:
                    y = y.reshape(x.shape)
            worst = max(worst, rel_error(x, y))
    return worst


def _symbolic_shape(q: Quantity, g: Graph) -> tuple:
    if isinstance(q, Expr):
        return q.shape
    return (g.shape(q.of) + g.shape(q.wrt))[len(q.at):]


def _strip_ones(shape: tuple) -> tuple:
    return tuple(d for d in shape if d != 1)


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a − b| / max(1, |b|) over entries; inf when either side is not a finite real number."""
    worst = 0.0
    for x, y in zip(np.ravel(a), np.ravel(b)):
        if not isinstance(x, (mpmath.mpf, int, float)) or not isinstance(y, (mpmath.mpf, int, float)):
            return math.inf
        if mpmath.isnan(x) or mpmath.isnan(y) or mpmath.isinf(x) or mpmath.isinf(y):
            return math.inf
        worst = max(worst, float(abs(x - y) / max(1, abs(y))))
    return worst


# ====================================================================== whole-expansion truth (small problems)
class Expansion:
    """Scalar SymPy expansions of a graph's nodes at ``dims``, with optional replaced nodes.

    Used for limits (SymPy needs the expression) and, at small sizes, as a second
    ground truth (``method="diff"``) that tests hold equal to the node-by-node one.
    """

    def __init__(self, g: Graph, free: dict[str, object] | None = None, dims: dict | None = None):
        self.g = g
        self.dims = dims or g.dims
        self.env: dict = {}
        for name, ex in g.leaves.items():
            self.env[name] = leaf_symbols(name, concrete(ex.shape, self.dims), g.kind(name))
        self.env.update(free or {})
        for name, e in g.nodes.items():
            if name not in self.env:
                self.env[name] = self.expand(e)

    def expand(self, e: Expr, extra: dict | None = None):
        env = {**self.env, **(extra or {})}
        memo: dict[int, object] = {}
        dims = self.dims
        for node in _postorder(e):
            op = node.op
            if op == "sym":
                val = env[node.attr]
            elif op == "num":
                v = node.attr
                val = sympy.Rational(v.numerator, v.denominator) if isinstance(v, Fraction) else sympy.Float(v)
            elif op == "dim":
                val = sympy.Integer(dims[node.attr])
            elif op == "ones":
                val = np.full(concrete(node.shape, dims), sympy.Integer(1), dtype=object)
            elif op == "eye":
                n = concrete(node.shape, dims)[0]
                val = np.array([[sympy.Integer(int(i == j)) for j in range(n)] for i in range(n)], dtype=object)
            else:
                val = sympy_value(node, [memo[id(a)] for a in node.args], dims)
            memo[id(node)] = val
        return memo[id(e)]


def truth(g: Graph, of: str, wrt: str, dims: dict | None = None):
    """∂of/∂wrt by ``sympy.diff`` of the whole expansion: (array of shape of+wrt, fresh symbols or None)."""
    dims = dims or g.dims
    wrt_shape = concrete(g.shape(wrt), dims)
    if wrt in g.leaves:
        exp = Expansion(g, dims=dims)
        var, fresh = exp.env[wrt], None
    else:
        var = fresh = leaf_symbols(f"_{wrt}", wrt_shape, None)
        exp = Expansion(g, free={wrt: var}, dims=dims)
    of_val = np.asarray(exp.env[of], dtype=object)
    var_arr = np.asarray(var, dtype=object)
    out = np.empty(of_val.shape + var_arr.shape, dtype=object)
    for i in np.ndindex(*of_val.shape):
        for j in np.ndindex(*var_arr.shape):
            out[i + j] = sympy.diff(of_val[i], var_arr[j])
    return out, fresh


def _diff_truth(domain: Domain, of: str, wrt: str, k: int) -> np.ndarray:
    """∂of/∂wrt at point k from :func:`truth`, compiled once per (of, wrt)."""
    cache = domain.__dict__.setdefault("_diff_cache", {})
    if (of, wrt) not in cache:
        g = domain.g
        exact, fresh = truth(g, of, wrt, domain.dims)
        syms = [s for name in g.leaves for s in
                np.ravel(np.asarray(leaf_symbols(name, concrete(g.shape(name), domain.dims), g.kind(name)),
                                    dtype=object))]
        syms += list(np.ravel(np.asarray(fresh, dtype=object))) if fresh is not None else []
        f = sympy.lambdify((syms,), [sympy.sympify(v) for v in exact.ravel()], modules="mpmath", cse=True)
        cache[(of, wrt)] = (f, exact.shape, fresh is not None)
    f, shape, has_fresh = cache[(of, wrt)]
    args = [v for name in domain.g.leaves for v in domain.points[k].values[name].ravel()]
    if has_fresh:
        args += list(np.ravel(domain._tapes[k].values[("name", wrt)]))
    return np.asarray([_real(v) for v in f(args)], dtype=object).reshape(shape)
