"""The expression tree every part of derivkit shares.

An :class:`Expr` is an immutable, hashable node: an operation name from the
registry in :mod:`derivkit.ops`, its arguments, one attribute (a name, a
number, an index) and its shape.  Shapes are math shapes, not NumPy's:
``()`` a scalar, ``(n,)`` a column vector, ``(1, n)`` a row vector (only as a
transposed column), ``(m, n)`` a matrix.  Entries are dims names (``"H"``) or
integers, so a readable gradient holds at every size.

Because nodes are hashable, equal sub-expressions are equal objects as far as
dicts are concerned: that is all common-subexpression elimination needs.
Equality and the hash include the shape, so ``ones(H)`` and ``ones(C)`` (or
``eye(D)`` and ``eye(H)``) are different keys; the hash is computed once per
node.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterator

Shape = tuple


class ShapeError(ValueError):
    """Operands whose shapes do not fit the operation."""


@dataclass(frozen=True, eq=False)
class Expr:
    op: str
    args: tuple["Expr", ...] = ()
    attr: Any = None
    shape: Shape = ()
    _hash: int = field(default=0, init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "_hash", hash((self.op, self.args, self.attr, self.shape)))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        if self is other:
            return True
        if not isinstance(other, Expr) or self._hash != other._hash:
            return False
        return (self.op, self.attr, self.shape, self.args) == (other.op, other.attr, other.shape, other.args)

    def __reduce__(self):
        # the cached hash is per process (str hashes are salted): rebuild it when unpickled
        return (Expr, (self.op, self.args, self.attr, self.shape))

    # Python operators build expressions, so rules read like the maths.
    def __add__(self, o): return make("add", self, lift(o))
    def __radd__(self, o): return make("add", lift(o), self)
    def __sub__(self, o): return make("sub", self, lift(o))
    def __rsub__(self, o): return make("sub", lift(o), self)
    def __mul__(self, o): return make("mul", self, lift(o))
    def __rmul__(self, o): return make("mul", lift(o), self)
    def __truediv__(self, o): return make("div", self, lift(o))
    def __rtruediv__(self, o): return make("div", lift(o), self)
    def __neg__(self): return make("neg", self)
    def __matmul__(self, o): return make("matmul", self, lift(o))
    def __pow__(self, o): return make("pow", self, lift(o))

    @property
    def T(self) -> "Expr":
        return make("T", self)

    @property
    def name(self) -> str:
        return self.attr

    def is_num(self, value=None) -> bool:
        return self.op == "num" and (value is None or self.attr == value)

    def walk(self) -> Iterator["Expr"]:
        """Every node, children before parents, each distinct node once."""
        seen: set = set()
        stack: list[tuple[Expr, bool]] = [(self, False)]
        while stack:
            e, done = stack.pop()
            if done:
                yield e
                continue
            if e in seen:
                continue
            seen.add(e)
            stack.append((e, True))
            stack.extend((a, False) for a in reversed(e.args))

    def size(self) -> int:
        """Number of distinct nodes: the measure 'shorter is more readable' uses (computed once
        per node object: the rewriter compares sizes of the same forms many times)."""
        n = self.__dict__.get("_size")
        if n is None:
            n = sum(1 for _ in self.walk())
            object.__setattr__(self, "_size", n)
        return n

    def __repr__(self) -> str:
        from .printing import to_ascii
        return f"Expr({to_ascii(self)!r}, shape={self.shape})"


# ---------------------------------------------------------------- atoms
def sym(name: str, shape: Shape = ()) -> Expr:
    """A leaf or a named node, referred to by name."""
    return Expr("sym", (), name, tuple(shape))


def grad(name: str, shape: Shape = (), loss: str = "l") -> Expr:
    """The upstream gradient ∂loss/∂name, kept as a symbol in chain-rule forms."""
    return Expr("grad", (), (loss, name), tuple(shape))


def num(value) -> Expr:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        # 0.1 is meant as 1/10; a float the nearest small fraction does not give (1e-13) stays exact
        near = Fraction(value).limit_denominator(10**12)
        value = near if float(near) == value else Fraction(value)
    if isinstance(value, int):
        value = Fraction(value)
    return Expr("num", (), value, ())


def ones(shape: Shape) -> Expr:
    """A vector (or matrix) of ones: what a scalar gradient becomes when spread over entries."""
    return Expr("ones", (), None, tuple(shape))


def eye(n) -> Expr:
    return Expr("eye", (), None, (n, n))


def lift(x) -> Expr:
    return x if isinstance(x, Expr) else num(x)


ZERO = num(0)
ONE = num(1)


def make(op: str, *args: Expr, attr: Any = None) -> Expr:
    """Build ``op(*args)``, checking shapes with the op's rule from the registry."""
    from .ops import OPS
    spec = OPS[op]
    shape = spec.shape([a.shape for a in args], attr)
    return Expr(op, tuple(args), attr, tuple(shape))


def call(op: str, *args: Expr, attr: Any = None) -> Expr:
    """``make`` then the light algebra of :mod:`derivkit.simplify`."""
    from .simplify import simplify
    return simplify(make(op, *args, attr=attr))


def substitute(e: Expr, mapping: dict[Expr, Expr]) -> Expr:
    """Replace sub-expressions (by equality), rebuilding only what changed."""
    memo: dict[Expr, Expr] = {}
    for node in e.walk():
        if node in mapping:
            memo[node] = mapping[node]
        elif node.args:
            new_args = tuple(memo[a] for a in node.args)
            memo[node] = node if new_args == node.args else make(node.op, *new_args, attr=node.attr)
        else:
            memo[node] = node
    return memo[e]


def symbols_in(e: Expr) -> set[str]:
    return {n.attr for n in e.walk() if n.op == "sym"}


def numel(shape: Shape, dims: dict[str, int]) -> int:
    out = 1
    for d in shape:
        out *= dims[d] if isinstance(d, str) else d
    return out


def concrete(shape: Shape, dims: dict[str, int]) -> tuple[int, ...]:
    return tuple(dims[d] if isinstance(d, str) else int(d) for d in shape)
