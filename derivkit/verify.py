"""Ground truth: the problem expanded into scalar SymPy expressions at ``dims``.

Each leaf becomes an array of real symbols, each node the array of its scalar
expressions (built from the registry's SymPy forms), and the ground-truth
derivative of anything with respect to anything is ``sympy.diff`` entry by
entry.  A readable (matrix-form) answer is *proved* equal to it by expanding
it the same way and comparing both in 40-digit arithmetic at random points
of the problem's domain; equality of analytic expressions at random points of
an open set is the standard probabilistic identity test.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import mpmath
import numpy as np
import sympy

from .expr import Expr, concrete
from .graph import Graph
from .numeric import random_leaves
from .ops import OPS

DPS = 40
TOLERANCE = 1e-25          # relative, in 40-digit arithmetic


def leaf_symbols(name: str, shape: tuple, kind: str | None) -> np.ndarray | sympy.Symbol:
    """``W`` [2, 3] → array of symbols W_0_0 … W_1_2 (integers for class indices)."""
    opts = {"integer": True, "nonnegative": True} if kind == "class" else {"real": True}
    if not shape:
        return sympy.Symbol(name, **opts)
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        out[idx] = sympy.Symbol(f"{name}_{'_'.join(map(str, idx))}", **opts)
    return out


class Expansion:
    """Scalar SymPy expansions of a graph's nodes, with optional replaced nodes."""

    def __init__(self, g: Graph, free: dict[str, object] | None = None, stop_at: str | None = None):
        self.g = g
        self.env: dict = {}
        for name, ex in g.leaves.items():
            self.env[name] = leaf_symbols(name, concrete(ex.shape, g.dims), g.kind(name))
        self.env.update(free or {})
        for name, e in g.nodes.items():
            if name in self.env:
                continue
            self.env[name] = self.expand(e)
            if name == stop_at:
                break

    def expand(self, e: Expr, extra: dict | None = None):
        env = dict(self.env)
        env.update(extra or {})
        memo: dict[Expr, object] = {}
        dims = self.g.dims
        for node in e.walk():
            op = node.op
            if op == "sym":
                val = env[node.attr]
            elif op == "grad":
                val = env[("grad", node.attr[1])]
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
                attr = dims.get(node.attr, node.attr) if isinstance(node.attr, str) else node.attr
                val = OPS[op].sympy(*[memo[a] for a in node.args], attr=attr)
            memo[node] = val
        return memo[e]


def truth(g: Graph, of: str, wrt: str):
    """Ground truth ∂of/∂wrt: (derivative array of shape of+wrt, fresh symbols for wrt or None)."""
    wrt_shape = concrete(g.shape(wrt), g.dims)
    if wrt in g.leaves:
        exp = Expansion(g)
        var = exp.env[wrt]
        fresh = None
    else:
        var = leaf_symbols(f"_{wrt}", wrt_shape, None)
        exp = Expansion(g, free={wrt: var})
        fresh = var
    of_val = np.asarray(exp.env[of], dtype=object)
    var_arr = np.asarray(var, dtype=object)
    out = np.empty(of_val.shape + var_arr.shape, dtype=object)
    for i in np.ndindex(*of_val.shape):
        for j in np.ndindex(*var_arr.shape):
            out[i + j] = sympy.diff(of_val[i], var_arr[j])
    return out, fresh


# ---------------------------------------------------------------- 40-digit evaluation
_FUNCS = {
    sympy.exp: mpmath.exp, sympy.log: mpmath.log, sympy.tanh: mpmath.tanh, sympy.cosh: mpmath.cosh,
    sympy.sinh: mpmath.sinh, sympy.Abs: abs, sympy.sign: mpmath.sign,
}


def mp_eval(expr, values: dict, memo: dict | None = None):
    """Evaluate a SymPy expression with mpmath numbers, sharing sub-trees."""
    memo = {} if memo is None else memo
    stack = [expr]
    while stack:
        e = stack[-1]
        if e in memo:
            stack.pop()
            continue
        pending = [a for a in e.args if a not in memo and not isinstance(a, sympy.Tuple)]
        if pending and not (e.is_Symbol or e.is_Number or isinstance(e, sympy.Piecewise)):
            stack.extend(pending)
            continue
        stack.pop()
        memo[e] = _mp_node(e, values, memo)
    return memo[expr]


def _mp_node(e, values, memo):
    if e.is_Symbol:
        return values[e]
    if e.is_Integer:
        return mpmath.mpf(int(e))
    if e.is_Rational:
        return mpmath.mpf(int(e.p)) / int(e.q)
    if e.is_Number or e.is_NumberSymbol:
        return mpmath.mpf(sympy.Float(e, DPS))
    if isinstance(e, sympy.Piecewise):
        for expr_, cond in e.args:
            if bool(cond.xreplace({s: sympy.Float(str(values[s]), DPS) for s in cond.free_symbols})):
                return mp_eval(expr_, values, memo)
        return mpmath.nan
    a = [memo[x] for x in e.args]
    if e.is_Add:
        return mpmath.fsum(a)
    if e.is_Mul:
        return mpmath.fprod(a)
    if e.is_Pow:
        return a[0] ** a[1]
    f = _FUNCS.get(e.func)
    if f is not None:
        return f(a[0])
    if e.func is sympy.Max:
        return max(a)
    if e.func is sympy.Min:
        return min(a)
    if e.func is sympy.Heaviside:
        return mpmath.mpf(1) if a[0] > 0 else (mpmath.mpf(0) if a[0] < 0 else a[1] if len(a) > 1 else mpmath.mpf(0.5))
    if e.func is sympy.KroneckerDelta:
        return mpmath.mpf(1) if a[0] == a[1] else mpmath.mpf(0)
    if isinstance(e, sympy.Derivative):
        raise ValueError("unevaluated derivative in ground truth")
    # Anything else: let SymPy evaluate it (rare: only for functions without an mpmath twin).
    return mpmath.mpf(e.xreplace({s: sympy.Float(str(values[s]), DPS) for s in e.free_symbols}).evalf(DPS))


def evaluate_array(arr, values: dict, memo: dict | None = None) -> np.ndarray:
    arr = np.asarray(arr, dtype=object)
    memo = {} if memo is None else memo
    out = np.empty(arr.shape, dtype=object)
    for i in np.ndindex(*arr.shape):
        v = arr[i]
        out[i] = mp_eval(sympy.sympify(v) if not isinstance(v, sympy.Basic) else v, values, memo)
    return out


# ---------------------------------------------------------------- sample points
@dataclass
class Point:
    """Leaf values at one random point: as floats (for NumPy) and as mpmath numbers."""

    floats: dict[str, np.ndarray]
    mp: dict


def sample_points(g: Graph, n: int, seed: int = 0, positive: bool = False) -> list[Point]:
    rng = np.random.default_rng(seed)
    pts = []
    with mpmath.workdps(DPS):
        for _ in range(n):
            leaves = random_leaves(g, rng, positive=positive)
            mp: dict = {}
            for name, val in leaves.items():
                syms = leaf_symbols(name, concrete(g.shape(name), g.dims), g.kind(name))
                for idx in np.ndindex(*np.shape(val)):
                    s = syms[idx] if np.shape(val) else syms
                    v = np.asarray(val)[idx] if np.shape(val) else val
                    mp[s] = mpmath.mpf(repr(float(v))) if g.kind(name) != "class" else int(v)
            pts.append(Point(leaves, mp))
    return pts


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a − b| / max(1, |b|) over entries; inf when either side is not a real number."""
    worst = 0.0
    for x, y in zip(np.ravel(a), np.ravel(b)):
        if not (isinstance(x, mpmath.mpf) or isinstance(x, (int, float))) or \
                not (isinstance(y, mpmath.mpf) or isinstance(y, (int, float))):
            return math.inf
        if mpmath.isnan(x) or mpmath.isnan(y) or mpmath.isinf(x) or mpmath.isinf(y):
            return math.inf
        worst = max(worst, float(abs(x - y) / max(1, abs(y))))
    return worst


class Verifier:
    """Proves readable forms equal to the ground truth, sharing one expansion per problem."""

    def __init__(self, g: Graph, points: int = 3, seed: int = 0):
        self.g = g
        self.base = Expansion(g)
        self.points = sample_points(g, points, seed)
        if not self._real_everywhere():
            self.points = sample_points(g, points, seed, positive=True)

    def _real_everywhere(self) -> bool:
        with mpmath.workdps(DPS):
            for p in self.points:
                memo: dict = {}
                for name in self.g.nodes:
                    vals = evaluate_array(self.base.env[name], p.mp, memo)
                    if any(not isinstance(v, mpmath.mpf) or mpmath.isnan(v) or mpmath.isinf(v)
                           for v in vals.ravel()):
                        return False
        return True

    def error(self, readable: Expr, of: str, wrt: str, transpose: bool = False) -> float:
        """Max relative error of ``readable`` against ∂of/∂wrt over the sample points."""
        exact, fresh = truth(self.g, of, wrt)
        mine = np.asarray(self.base.expand(readable), dtype=object)
        if transpose or mine.shape != exact.shape:
            exact = _reshape_like(exact, mine.shape)
        return self.compare(mine, exact, fresh, wrt)

    def compare(self, mine, exact, fresh=None, wrt=None) -> float:
        worst = 0.0
        with mpmath.workdps(DPS):
            for p in self.points:
                values = dict(p.mp)
                if fresh is not None:
                    node_vals = evaluate_array(self.base.env[wrt], values)
                    for idx in np.ndindex(*np.shape(node_vals)):
                        s = np.asarray(fresh, dtype=object)[idx]
                        values[s] = node_vals[idx]
                a = evaluate_array(mine, values)
                b = evaluate_array(exact, values)
                if a.shape != b.shape:
                    return math.inf
                worst = max(worst, rel_error(a, b))
        return worst

    def equal(self, lhs: Expr, rhs: Expr, extra: dict | None = None) -> float:
        """Max relative error between two expressions (identity questions)."""
        a = np.asarray(self.base.expand(lhs, extra), dtype=object)
        b = np.asarray(self.base.expand(rhs, extra), dtype=object)
        return self.compare(a, b)


def _reshape_like(exact: np.ndarray, shape: tuple) -> np.ndarray:
    """Numerator-layout Jacobians of a scalar are rows; gradients are columns."""
    if exact.size == int(np.prod(shape)):
        return exact.reshape(shape)
    return exact
