"""The expression language, read by a whitelisting parser.

Text is parsed by Python's ``ast`` (which only builds a tree, it runs
nothing) and every node kind is checked against an allow-list before it is
turned into an :class:`~derivkit.expr.Expr`.  Nothing is ever evaluated: no
``eval``, no ``sympify``.  Problem files and students' ASCII answers share
this reader.

Limits hold before any work is done: the text's length and nesting, integer
literals of at most ``MAX_INT_DIGITS`` digits, sizes of ``ones``/``eye``/
``onehot`` of at most ``MAX_DIM``, and constant sub-expressions, followed in
float64 as they are read (never as exact big numbers), must stay finite and
defined: ``10**10**10``, ``1e99999``, ``log(0)``, ``sqrt(-1)``, ``0 ** -1`` and
any division by a constant zero (``x / 0``) are located errors.

Index notation (one entry of a matrix answer): free index names given in the
scope (``Scope.indices``), ``delta(i, j)``, ``sum(body, k)`` over the axis that
``k`` indexes, ``where(i == j, a, b)`` (read as ``δ a + (1 − δ) b``), and
``lhs == rhs`` (the indicator of equality; an identity is written so).
"""
from __future__ import annotations

import ast
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable

import math

import numpy as np

from .errors import Location, UserError
from .expr import Expr, ShapeError, make, num, ones, eye
from .ops import FUNCTIONS, INDEX_CALLS, OPS
from .problem import MAX_DIM

MAX_LENGTH = 4000     # characters in one expression
MAX_DEPTH = 60        # nesting of the tree
MAX_INT_DIGITS = 15   # an integer literal has at most 15 digits (below 10**15: exact in a float)

_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow",
           ast.MatMult: "matmul"}

#: functions taking a size (a dims name or an integer) rather than an expression
SIZED = {"ones": 1, "eye": 1, "onehot": 2}


@dataclass
class Scope:
    """How names resolve: ``lookup(name)`` returns an Expr or None; ``names`` for suggestions.

    ``indices`` are free index names (a question's ``index:``), read as scalar index
    variables; ``loss``, when given, lets ``dl/dz`` stand for the upstream gradient ∂l/∂z.
    ``renames`` replace a name or a function name as it is read (a problem's ``choices:``:
    ``act(z)`` read as ``sigmoid(z)``, ``last`` as ``h2``); errors still point at the text.
    """

    lookup: Callable[[str], Expr | None]
    names: Callable[[], list[str]]
    dims: dict[str, int]
    indices: tuple[str, ...] = ()
    loss: str | None = None
    renames: Mapping[str, str] = field(default_factory=dict)


def parse_expression(text: str, scope: Scope, where: Location | None = None) -> Expr:
    """Parse ``text`` into an expression, raising UserError pointing into ``where``."""
    if not isinstance(text, str):
        text = str(text)
    if len(text) > MAX_LENGTH:
        raise UserError(f"expression is too long ({len(text)} characters; at most {MAX_LENGTH})", where)
    flat = " ".join(text.splitlines())
    if not flat.strip():
        raise UserError("empty expression", where)
    try:
        tree = ast.parse(flat.strip(), mode="eval")
    except SyntaxError as exc:
        col = _char_col(flat.strip(), (exc.offset or 1) - 1)
        raise UserError(f"cannot parse expression {text.strip()!r}: {exc.msg}", _at(where, col + _lead(flat)))
    except (RecursionError, MemoryError, ValueError):
        raise UserError("expression is nested too deeply", where)
    return _Reader(flat.strip(), scope, where, _lead(flat)).read(tree.body, 0)


def parse_equation(text: str, scope: Scope, where: Location | None = None) -> tuple[Expr, Expr]:
    """``lhs == rhs`` (an identity's ``expr``) as its two sides."""
    e = parse_expression(text, scope, where)
    if e.op != "eq":
        raise UserError(f"expected an equation 'lhs == rhs', got {text.strip()!r}", where)
    return e.args


def _lead(s: str) -> int:
    return len(s) - len(s.lstrip())


def _char_col(text: str, byte_offset: int) -> int:
    """ast reports UTF-8 byte offsets; columns are characters."""
    return len(text.encode("utf-8")[:max(byte_offset, 0)].decode("utf-8", errors="ignore"))


def _at(where: Location | None, col: int) -> Location | None:
    if where is None or where.column is None:
        return where
    return Location(where.file, where.line, where.column + col)


class _Reader:
    def __init__(self, text: str, scope: Scope, where: Location | None, lead: int):
        self.text, self.scope, self.where, self.lead = text, scope, where, lead
        #: float64 value of each constant sub-expression read so far (uniform arrays by one number)
        self.consts: dict[Expr, float] = {}
        #: index names bound by an enclosing sum(body, k)
        self.bound: list[str] = []

    def fail(self, node: ast.AST, message: str):
        col = _char_col(self.text, getattr(node, "col_offset", 0))
        raise UserError(message, _at(self.where, col + self.lead))

    def segment(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.text, node) or ""

    def build(self, node: ast.AST, op: str, *args: Expr, attr=None) -> Expr:
        try:
            e = make(op, *args, attr=attr)
        except ShapeError as exc:
            self.fail(node, f"shape mismatch in {self.segment(node) or op!s}: {exc}")
        self.check_constant(node, e)
        return e

    def check_constant(self, node: ast.AST, e: Expr) -> None:
        """Follow constants in float64; an undefined or overflowing one is the user's mistake."""
        known = [self.consts.get(a) for a in e.args]
        if e.op == "div" and known[1] == 0.0:
            self.fail(node, f"division by zero in {self.segment(node)}")
        if not OPS[e.op].elementwise or any(v is None for v in known) or OPS[e.op].numpy is None:
            return
        with np.errstate(all="ignore"):
            value = float(OPS[e.op].numpy([np.float64(v) for v in known], [False] * len(known), e, {}))
        if not math.isfinite(value):
            pole = e.op in ("log", "div") or (e.op == "pow" and known[0] == 0.0)
            what = "is too large for a float" if math.isinf(value) and not pole else "is undefined"
            self.fail(node, f"the constant {self.segment(node)} {what}")
        self.consts[e] = value

    def constant(self, e: Expr) -> Expr:
        if e.op == "num":
            self.consts[e] = float(e.attr)
        elif e.op == "dim":
            self.consts[e] = float(self.scope.dims[e.attr])
        elif e.op == "ones":
            self.consts[e] = 1.0
        return e

    def read(self, node: ast.AST, depth: int) -> Expr:
        if depth > MAX_DEPTH:
            self.fail(node, "expression is nested too deeply")
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            self.fail(node, f"'{ast.get_source_segment(self.text, node)}' is not part of the expression language")
        return method(node, depth + 1)

    # ------------------------------------------------------------ node kinds
    def _Constant(self, node, depth):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.fail(node, f"{v!r} is not a number")
        if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
            self.fail(node, "numbers must be finite")
        if isinstance(v, int) and v >= 10 ** MAX_INT_DIGITS:
            self.fail(node, f"integer {self.segment(node)[:20]}... is too large "
                            f"(at most {MAX_INT_DIGITS} digits; write a float such as 1e20)")
        return self.constant(num(v))

    def renamed(self, name: str) -> tuple[str, str]:
        """The name to look up for ``name`` as written, and how to mention it in an error."""
        target = self.scope.renames.get(name, name)
        return target, (f"'{target}' (the value of the choice '{name}')" if target != name else f"'{name}'")

    def _Name(self, node, depth):
        if node.id in self.bound or node.id in self.scope.indices:
            from .indexform import ivar
            return ivar(node.id)
        name, said = self.renamed(node.id)
        e = self.scope.lookup(name)
        if e is None:
            close = difflib.get_close_matches(name, [*self.scope.names(), *self.scope.renames], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.fail(node, f"unknown name {said}{hint}")
        return self.constant(e)

    def _BinOp(self, node, depth):
        op = _BINOPS.get(type(node.op))
        if op is None:
            self.fail(node, "operator not allowed (use + - * / ** @)")
        g = self.upstream_gradient(node)
        if g is not None:
            return g
        a = self.read(node.left, depth)
        b = self.read(node.right, depth)
        if op == "div" and _is_literal(node.left) and _is_literal(node.right) \
                and a.attr.denominator == b.attr.denominator == 1 and b.attr != 0:
            return self.constant(num(a.attr / b.attr))         # 1/3 is one number, as printed
        return self.build(node, op, a, b)

    def upstream_gradient(self, node) -> Expr | None:
        """``dl/dz`` (l the scope's loss, z a name) is the upstream gradient ∂l/∂z."""
        loss = self.scope.loss
        left, right = node.left, node.right
        if loss is None or not isinstance(node.op, ast.Div) or not isinstance(left, ast.Name) \
                or not isinstance(right, ast.Name) or left.id != "d" + loss or not right.id.startswith("d"):
            return None
        if self.scope.lookup(left.id) is not None and self.scope.lookup(right.id) is not None:
            return None                 # two real names: an ordinary quotient
        target = self.scope.lookup(right.id[1:])
        if target is None or target.op != "sym":
            return None
        from .expr import grad
        return grad(target.attr, target.shape, loss)

    def _UnaryOp(self, node, depth):
        a = self.read(node.operand, depth)
        if isinstance(node.op, ast.USub):
            return self.constant(num(-a.attr)) if a.op == "num" else self.build(node, "neg", a)
        if isinstance(node.op, ast.UAdd):
            return a
        self.fail(node, "operator not allowed")

    def _Compare(self, node, depth):
        if len(node.ops) != 1 or not isinstance(node.ops[0], ast.Eq):
            self.fail(node, "only one '==' comparison is allowed (as in 'lhs == rhs' or where(j == t, a, b))")
        a = self.read(node.left, depth)
        b = self.read(node.comparators[0], depth)
        return self.build(node, "eq", a, b)

    def _Attribute(self, node, depth):
        if node.attr != "T":
            self.fail(node, f"'.{node.attr}' is not allowed (only '.T', the transpose)")
        return self.build(node, "T", self.read(node.value, depth))

    def _Subscript(self, node, depth):
        base = self.read(node.value, depth)
        sl = node.slice
        parts = sl.elts if isinstance(sl, ast.Tuple) else [sl]
        idx = []
        for p in parts:
            if isinstance(p, ast.Slice):
                self.fail(p, "slices are not supported; index one entry, e.g. v[0] or v[t]")
            e = self.read(p, depth)
            if e.op == "num" and (e.attr.denominator != 1 or e.attr < 0):
                self.fail(p, "an index must be a non-negative integer")
            idx.append(e)
        out = self.build(node, "index", base, *idx)
        for p, e in zip(parts, idx):
            if e.op == "num":
                axis = base.shape[len(idx) - len(parts) + parts.index(p)]
                n = self.scope.dims.get(axis, axis) if isinstance(axis, str) else axis
                if isinstance(n, int) and int(e.attr) >= n:
                    self.fail(p, f"index {int(e.attr)} is out of range for size {axis}")
        return out

    def _Call(self, node, depth):
        if not isinstance(node.func, ast.Name):
            self.fail(node, "only the language's functions may be called")
        name, said = self.renamed(node.func.id)
        if node.keywords:
            self.fail(node, f"{name}() takes no keyword arguments")
        if name in SIZED:
            return self._sized(node, name, depth)
        if name == "delta":
            if len(node.args) != 2:
                self.fail(node, "delta() takes two indices, as in delta(j, t)")
            return self.build(node, "delta", *(self.read(a, depth) for a in node.args))
        if name == "where":
            return self._where(node, depth)
        if name == "sum" and len(node.args) == 2:
            return self._index_sum(node, depth)
        op = FUNCTIONS.get(name)
        if op is None:
            close = difflib.get_close_matches(name, [*FUNCTIONS, *SIZED, *INDEX_CALLS, *self.scope.renames], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.fail(node, f"unknown function {said}{hint}")
        if len(node.args) != 1:
            self.fail(node, f"{name}() takes one argument, got {len(node.args)}")
        return self.build(node, op.name, self.read(node.args[0], depth))

    def _where(self, node, depth):
        """where(cond, a, b) = cond * a + (1 - cond) * b, cond an indicator such as j == t."""
        if len(node.args) != 3:
            self.fail(node, "where() takes a condition and two values, as in where(j == t, 1 - p[j], -p[j])")
        cond, a, b = (self.read(x, depth) for x in node.args)
        if cond.op not in ("eq", "delta"):
            self.fail(node.args[0], "the condition of where() is an equality such as j == t")
        one = num(1)
        return self.build(node, "add", self.build(node, "mul", cond, a),
                          self.build(node, "mul", self.build(node, "sub", one, cond), b))

    def _index_sum(self, node, depth):
        """sum(body, k): Σ over k of body, k running over the axis it indexes."""
        body_node, k_node = node.args
        if not isinstance(k_node, ast.Name):
            self.fail(k_node, "the second argument of sum() is an index name, as in sum(w[k] * x[k], k)")
        k = k_node.id
        if k in self.bound or k in self.scope.indices or self.scope.lookup(k) is not None:
            self.fail(k_node, f"the summation index '{k}' is already a name here; choose a new one")
        self.bound.append(k)
        try:
            body = self.read(body_node, depth)
        finally:
            self.bound.pop()
        if body.shape != ():
            self.fail(body_node, "the body of a sum over an index must be a scalar (index it, e.g. w[k])")
        sizes = index_sizes(body, k)
        if not sizes:
            self.fail(k_node, f"'{k}' indexes nothing in the sum, so its range is unknown")
        if len(sizes) > 1:
            self.fail(k_node, f"'{k}' indexes axes of different sizes {sorted(map(str, sizes))}")
        from .indexform import isum
        return isum(body, k, sizes.pop())

    def _sized(self, node, name, depth):
        wanted = {"ones": (1, 2), "eye": (1,), "onehot": (2,)}[name]
        if len(node.args) not in wanted:
            self.fail(node, f"{name}() takes {' or '.join(map(str, wanted))} argument(s)")
        sizes = []
        for size_node in node.args[1:] if name == "onehot" else node.args:
            if isinstance(size_node, ast.Name) and size_node.id in self.scope.dims:
                sizes.append(size_node.id)
            elif isinstance(size_node, ast.Constant) and type(size_node.value) is int and size_node.value > 0:
                if size_node.value > MAX_DIM:
                    self.fail(size_node, f"the size in {name}() is at most {MAX_DIM}")
                sizes.append(size_node.value)
            else:
                self.fail(size_node, f"the size in {name}() must be a dims name or a positive integer")
        if name == "ones":
            return self.constant(ones(tuple(sizes)))
        if name == "eye":
            return eye(sizes[0])
        t = self.read(node.args[0], depth)
        return self.build(node, "onehot", t, attr=sizes[0])


def _is_literal(node: ast.AST) -> bool:
    """An integer written as digits, possibly negated."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) is int


def index_sizes(body: Expr, k: str) -> set:
    """Sizes of the axes that the index ``k`` picks in ``body`` (what a sum over ``k`` runs to)."""
    sizes = set()
    for n in body.walk():
        if n.op == "index":
            for axis, i in enumerate(n.args[1:]):
                if i.op == "ivar" and i.attr == k:
                    sizes.add(n.args[0].shape[axis])
        elif n.op == "onehot" and n.args[0].op == "ivar" and n.args[0].attr == k:
            sizes.add(n.attr)
    return sizes
