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
from .ops import sympy_value

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
                val = sympy_value(node, [memo[a] for a in node.args], dims)
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

    #: above this many operations in the expanded loss, use the scalar chain rule
    FULL_DIFF_LIMIT = 200

    def __init__(self, g: Graph, points: int = 3, seed: int = 0, method: str | None = None):
        self.g = g
        self.base = Expansion(g)
        if method is None:
            size = sympy.count_ops(self.base.env[g.loss], visual=False)
            method = "diff" if size <= self.FULL_DIFF_LIMIT else "chain"
        self.method = method
        self.chain = ScalarChain(g) if method == "chain" else None
        self._chain_vals: dict = {}
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
        if self.chain is not None:
            return self._chain_error(readable, of, wrt)
        exact, fresh = truth(self.g, of, wrt)
        mine = np.asarray(self.base.expand(readable), dtype=object)
        if transpose or mine.shape != exact.shape:
            exact = _reshape_like(exact, mine.shape)
        return self.compare(mine, exact, fresh, wrt)

    def exact_at(self, of: str, wrt: str) -> list[np.ndarray]:
        """∂of/∂wrt evaluated at each sample point (arrays of shape of + wrt)."""
        out = []
        with mpmath.workdps(DPS):
            if self.chain is not None:
                for k, p in enumerate(self.points):
                    if k not in self._chain_vals:
                        self._chain_vals[k] = self.chain.values(p.mp)
                    out.append(self.chain.derivative(self._chain_vals[k], of, wrt))
                return out
            exact, fresh = truth(self.g, of, wrt)
            for p in self.points:
                values = dict(p.mp)
                if fresh is not None:
                    node_vals = evaluate_array(self.base.env[wrt], values)
                    for idx in np.ndindex(*np.shape(node_vals)):
                        values[np.asarray(fresh, dtype=object)[idx]] = node_vals[idx]
                out.append(evaluate_array(exact, values))
        return out

    def slice_error(self, pairs) -> float:
        """pairs: (point index, readable expression, exact values) → max relative error."""
        worst = 0.0
        with mpmath.workdps(DPS):
            for k, readable, exact in pairs:
                a = evaluate_array(np.asarray(self.base.expand(readable), dtype=object), self.points[k].mp)
                b = np.asarray(exact, dtype=object)
                b = b.reshape(a.shape) if b.size == a.size else b
                if a.shape != b.shape:
                    return math.inf
                worst = max(worst, rel_error(a, b))
        return worst

    def _chain_error(self, readable: Expr, of: str, wrt: str) -> float:
        mine = np.asarray(self.base.expand(readable), dtype=object)
        worst = 0.0
        with mpmath.workdps(DPS):
            for k, p in enumerate(self.points):
                if k not in self._chain_vals:
                    self._chain_vals[k] = self.chain.values(p.mp)
                exact = self.chain.derivative(self._chain_vals[k], of, wrt)
                a = evaluate_array(mine, p.mp)
                b = exact.reshape(a.shape) if exact.size == a.size else exact
                if a.shape != b.shape:
                    return math.inf
                worst = max(worst, rel_error(a, b))
        return worst

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


# ---------------------------------------------------------------- scalar chain rule (large problems)
class ScalarChain:
    """Ground truth for problems whose expanded loss is too large to differentiate whole.

    Every node entry gets its own symbol; SymPy differentiates each entry's local
    scalar expression with respect to the symbols it uses, and the textbook
    scalar chain rule sums those partials entry by entry at each point.  No
    matrix rule of derivkit is involved.
    """

    def __init__(self, g: Graph):
        self.g = g
        self.syms: dict[str, np.ndarray] = {}
        for name, ex in g.leaves.items():
            self.syms[name] = np.asarray(leaf_symbols(name, concrete(ex.shape, g.dims), g.kind(name)), dtype=object)
        env = {n: (s if s.shape else s[()]) for n, s in self.syms.items()}
        self.local: dict[str, np.ndarray] = {}
        self.partials: dict[str, dict] = {}
        base = Expansion.__new__(Expansion)
        base.g, base.env = g, env
        for name, e in g.nodes.items():
            local = np.asarray(base.expand(e), dtype=object)
            self.local[name] = local
            mine = np.asarray(leaf_symbols(f"_{name}", concrete(e.shape, g.dims), None), dtype=object)
            self.syms[name] = mine
            env[name] = mine if mine.shape else mine[()]
            self.partials[name] = {
                idx: [(s, sympy.diff(local[idx], s)) for s in sympy.sympify(local[idx]).free_symbols
                      if not s.is_integer]
                for idx in np.ndindex(*local.shape)}

    def values(self, leaf_values: dict) -> dict:
        vals = dict(leaf_values)
        memo: dict = {}
        for name in self.g.nodes:
            local = self.local[name]
            for idx in np.ndindex(*local.shape):
                vals[self.syms[name][idx]] = mp_eval(sympy.sympify(local[idx]), vals, memo)
        return vals

    def adjoints(self, vals: dict, of: str, seed_index: tuple) -> dict:
        adj: dict = {self.syms[of][seed_index]: mpmath.mpf(1)}
        memo: dict = {}
        names = list(self.g.nodes)
        for name in reversed(names[: names.index(of) + 1]):
            for idx, parts in self.partials[name].items():
                a = adj.get(self.syms[name][idx])
                if not a:
                    continue
                for s, dexpr in parts:
                    adj[s] = adj.get(s, 0) + a * mp_eval(dexpr, vals, memo)
        return adj

    def derivative(self, vals: dict, of: str, wrt: str) -> np.ndarray:
        """∂of/∂wrt at one point: array of shape of.shape + wrt.shape."""
        of_shape = self.syms[of].shape
        wrt_syms = self.syms[wrt]
        out = np.empty(of_shape + wrt_syms.shape, dtype=object)
        for i in np.ndindex(*of_shape):
            adj = self.adjoints(vals, of, i)
            for j in np.ndindex(*wrt_syms.shape):
                out[i + j] = mpmath.mpf(adj.get(wrt_syms[j], 0))
        return out
