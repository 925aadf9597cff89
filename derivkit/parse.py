"""The expression language, read by a whitelisting parser.

Text is parsed by Python's ``ast`` (which only builds a tree, it runs
nothing) and every node kind is checked against an allow-list before it is
turned into an :class:`~derivkit.expr.Expr`.  Nothing is ever evaluated: no
``eval``, no ``sympify``.  Problem files and students' ASCII answers share
this reader.
"""
from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass
from typing import Callable

from .errors import Location, UserError
from .expr import Expr, ShapeError, make, num, ones, eye
from .ops import FUNCTIONS

MAX_LENGTH = 4000     # characters in one expression
MAX_DEPTH = 60        # nesting of the tree

_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow",
           ast.MatMult: "matmul"}

#: functions taking a size (a dims name or an integer) rather than an expression
SIZED = {"ones": 1, "eye": 1, "onehot": 2}


@dataclass
class Scope:
    """How names resolve: ``lookup(name)`` returns an Expr or None; ``names`` for suggestions."""

    lookup: Callable[[str], Expr | None]
    names: Callable[[], list[str]]
    dims: dict[str, int]


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

    def fail(self, node: ast.AST, message: str):
        col = _char_col(self.text, getattr(node, "col_offset", 0))
        raise UserError(message, _at(self.where, col + self.lead))

    def build(self, node: ast.AST, op: str, *args: Expr, attr=None) -> Expr:
        try:
            return make(op, *args, attr=attr)
        except ShapeError as exc:
            self.fail(node, f"shape mismatch in {ast.get_source_segment(self.text, node) or op!s}: {exc}")

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
        return num(v)

    def _Name(self, node, depth):
        e = self.scope.lookup(node.id)
        if e is None:
            close = difflib.get_close_matches(node.id, self.scope.names(), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.fail(node, f"unknown name '{node.id}'{hint}")
        return e

    def _BinOp(self, node, depth):
        op = _BINOPS.get(type(node.op))
        if op is None:
            self.fail(node, "operator not allowed (use + - * / ** @)")
        a = self.read(node.left, depth)
        b = self.read(node.right, depth)
        return self.build(node, op, a, b)

    def _UnaryOp(self, node, depth):
        a = self.read(node.operand, depth)
        if isinstance(node.op, ast.USub):
            return num(-a.attr) if a.op == "num" else self.build(node, "neg", a)
        if isinstance(node.op, ast.UAdd):
            return a
        self.fail(node, "operator not allowed")

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
        name = node.func.id
        if node.keywords:
            self.fail(node, f"{name}() takes no keyword arguments")
        if name in SIZED:
            return self._sized(node, name, depth)
        op = FUNCTIONS.get(name)
        if op is None:
            close = difflib.get_close_matches(name, list(FUNCTIONS) + list(SIZED), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.fail(node, f"unknown function '{name}'{hint}")
        if len(node.args) != 1:
            self.fail(node, f"{name}() takes one argument, got {len(node.args)}")
        return self.build(node, op.name, self.read(node.args[0], depth))

    def _sized(self, node, name, depth):
        if len(node.args) != SIZED[name]:
            self.fail(node, f"{name}() takes {SIZED[name]} argument(s)")
        size_node = node.args[-1]
        if isinstance(size_node, ast.Name) and size_node.id in self.scope.dims:
            size = size_node.id
        elif isinstance(size_node, ast.Constant) and type(size_node.value) is int and size_node.value > 0:
            size = size_node.value
        else:
            self.fail(size_node, f"the size in {name}() must be a dims name or a positive integer")
        if name == "ones":
            return ones((size,))
        if name == "eye":
            return eye(size)
        t = self.read(node.args[0], depth)
        return self.build(node, "onehot", t, attr=size)
