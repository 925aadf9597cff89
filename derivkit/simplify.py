"""A small, predictable algebra on expressions: enough to make rules read well.

Never SymPy's ``simplify`` (it does not finish on expanded gradients).  Here a
product is a coefficient times factors with integer powers, a sum is a list of
such terms, and a few facts are used:

* equal factors cancel: y ⊙ (t ⊘ y) → t;
* a one-hot target, a softmax and any vector ``Facts`` says sums to one: Σt → 1
  (that is how softmax + cross-entropy becomes y − t);
* u ⊙ e_t = u_t e_t for a one-hot vector e_t;
* identities: x·1, x + 0, (xᵀ)ᵀ, A I, and like terms are collected.

Two things it never does: drop a division by zero (a node with one beneath it
is left as it is, so its value stays infinite or undefined), and fold numbers
into a coefficient beyond ``MAX_COEF_BITS`` bits (``2**(10**9)`` stays a power).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from .expr import ONE, ZERO, Expr, eye, make, num, ones


@dataclass(frozen=True)
class Facts:
    """What is known about the symbols: which vectors sum to one."""

    sums_to_one: frozenset = field(default_factory=frozenset)


NO_FACTS = Facts()

_MONOMIAL_OPS = {"mul", "div", "neg", "num"}

#: numerator and denominator of a folded coefficient stay below 2**MAX_COEF_BITS (a float's range)
MAX_COEF_BITS = 1024


def simplify(e: Expr, facts: Facts = NO_FACTS) -> Expr:
    memo: dict[Expr, Expr] = {}
    by_zero: set[Expr] = set()        # results with a division by zero beneath them
    for node in e.walk():
        if node.args:
            args = tuple(memo[a] for a in node.args)
            rebuilt = node if args == node.args else make(node.op, *args, attr=node.attr)
            if any(a in by_zero for a in args) or _divides_by_zero(rebuilt):
                by_zero.add(rebuilt)
                memo[node] = rebuilt
            else:
                memo[node] = _local(rebuilt, facts)
        else:
            memo[node] = node
    return memo[e]


def _divides_by_zero(e: Expr) -> bool:
    """x / 0 or 0 ** (negative number): a value simplification must keep undefined."""
    if e.op == "div":
        return e.args[1].is_num(0)
    if e.op == "pow":
        base, ex = e.args
        return base.is_num(0) and ex.op == "num" and ex.attr < 0
    return False


def _fold(coef: Fraction, v: Fraction, power: int) -> Fraction | None:
    """coef · v**power, or None when it would not fit in MAX_COEF_BITS (or divides by zero)."""
    if v == 0:
        return Fraction(0) if power > 0 else None
    p = abs(power)
    bits = max(v.numerator.bit_length(), v.denominator.bit_length()) * p
    if bits + max(coef.numerator.bit_length(), coef.denominator.bit_length()) > MAX_COEF_BITS:
        return None
    return coef * v ** power


def _local(e: Expr, facts: Facts) -> Expr:
    op = e.op
    if op in ("add", "sub"):
        return _rebuild_sum(_terms(e), e.shape)
    if op in _MONOMIAL_OPS or (op == "pow" and e.args[1].op == "num"):
        return _rebuild_sum([_monomial(e)], e.shape)
    if op == "T":
        (a,) = e.args
        if a.op == "T":
            return a.args[0]
        if a.shape == ():
            return a
        if a.op == "num":
            return a
        if a.op == "neg":
            return _local(make("neg", _local(make("T", a.args[0]), facts)), facts)
        if a.op in ("mul", "div") and a.args[1].shape == ():     # (s v)ᵀ = s vᵀ
            return _local(make(a.op, _local(make("T", a.args[0]), facts), a.args[1]), facts)
        if a.op == "mul" and a.args[0].shape == ():
            return _local(make("mul", a.args[0], _local(make("T", a.args[1]), facts)), facts)
    if op == "sum":
        return _simplify_sum(e, facts)
    if op == "delta" and e.args[0] == e.args[1]:
        return ONE
    if op == "diag":
        coef, factors = _monomial(e.args[0])
        if len(factors) == 1 and factors[0][0].op == "ones" and factors[0][1] == 1:
            return _scale(coef, eye(e.shape[0]))
    if op == "matmul":
        a, b = e.args
        if b.op == "eye":
            return a
        if a.op == "eye":
            return b
        if a.op == "diag" and len(b.shape) == 1:          # diag(v) x = v ⊙ x
            return _local(make("mul", a.args[0], b), facts)
        ca, ra = _split_coef(a)
        cb, rb = _split_coef(b)
        if ca != 1 or cb != 1:
            return _scale(ca * cb, make("matmul", ra, rb))
    return e


# ---------------------------------------------------------------- products
def _monomial(e: Expr) -> tuple[Fraction, list[list]]:
    """``e`` as (coefficient, [[base, power], ...]) in order of first appearance."""
    coef = Fraction(1)
    factors: list[list] = []

    def add(base: Expr, power: int) -> None:
        for f in factors:
            if f[0] == base:
                f[1] += power
                return
        factors.append([base, power])

    def visit(x: Expr, power: int) -> None:
        nonlocal coef
        if x.op == "num" and isinstance(x.attr, Fraction):
            folded = _fold(coef, x.attr, power)
            if folded is not None:
                coef = folded
                return
        if x.op == "mul":
            visit(x.args[0], power)
            visit(x.args[1], power)
        elif x.op == "div":
            visit(x.args[0], power)
            visit(x.args[1], -power)
        elif x.op == "neg":
            if power % 2:                      # (−x)^p = (−1)^p x^p
                coef = -coef
            visit(x.args[0], power)
        elif x.op == "pow" and x.args[1].op == "num" and x.args[1].attr.denominator == 1 \
                and abs(power * x.args[1].attr) <= 2 ** 32:
            visit(x.args[0], power * int(x.args[1].attr))
        else:
            add(x, power)

    visit(e, 1)
    return coef, factors


def _onehot_pick(factors: list[list]) -> list[list]:
    """u ⊙ e_t → u_t e_t: vectors multiplied by a one-hot vector keep one entry."""
    hot = [f[0] for f in factors if f[0].op == "onehot" and f[1] > 0]
    if not hot:
        return factors
    e_t = hot[0]
    out = []
    for base, p in factors:
        if base is not e_t and base.shape == e_t.shape and base.op not in ("ones", "onehot"):
            base = make("index", base, e_t.args[0])
        out.append([base, p])
    merged: list[list] = []
    for base, p in out:
        for f in merged:
            if f[0] == base:
                f[1] += p
                break
        else:
            merged.append([base, p])
    return merged


def _clean(factors: list[list], shape) -> list[list]:
    factors = _onehot_pick([f for f in factors if f[1] != 0])
    factors = [f for f in factors if f[1] != 0]
    # A vector of ones is a no-op once another factor already has the full shape.
    if any(f[0].shape == shape for f in factors if f[0].op != "ones"):
        factors = [f for f in factors if f[0].op != "ones"]
    return factors


def _power(base: Expr, p: int) -> Expr:
    return base if p == 1 else make("pow", base, num(p))


def _product(factors: list[Expr]) -> Expr:
    out = factors[0]
    for f in factors[1:]:
        out = make("mul", out, f)
    return out


def _build_monomial(coef: Fraction, factors: list[list], shape) -> Expr:
    """Rebuild ``coef · Π base^p`` with a single fraction bar and the sign in front."""
    if coef == 0 and not _has_zero_base(factors):
        return ZERO
    factors = _clean(factors, shape)
    sign = -1 if coef < 0 else 1
    coef = abs(coef)
    top = [_power(b, p) for b, p in factors if p > 0]
    bottom = [_power(b, -p) for b, p in factors if p < 0]
    if coef.numerator != 1 or not top:
        top.insert(0, num(coef.numerator))
    if coef.denominator != 1:
        bottom.insert(0, num(coef.denominator))
    out = _product(top)
    if bottom:
        out = make("div", out, _product(bottom))
    return make("neg", out) if sign < 0 else out


# ---------------------------------------------------------------- sums
def _terms(e: Expr, sign: int = 1) -> list[tuple[Fraction, list[list]]]:
    if e.op == "add":
        return _terms(e.args[0], sign) + _terms(e.args[1], sign)
    if e.op == "sub":
        return _terms(e.args[0], sign) + _terms(e.args[1], -sign)
    if e.op == "neg":
        return _terms(e.args[0], -sign)
    coef, factors = _monomial(e)
    return [(sign * coef, factors)]


def _key(factors: list[list]):
    if _has_zero_base(factors):
        return object()             # 1/0 − 1/0 is not 0: such a term is never collected
    return frozenset((b, p) for b, p in factors if p != 0)


def _has_zero_base(factors: list[list]) -> bool:
    """A factor 0**p left unfolded (p < 0): the term is undefined, whatever its coefficient."""
    return any(b.is_num(0) for b, p in factors)


def _rebuild_sum(terms, shape) -> Expr:
    collected: list[list] = []
    for coef, factors in terms:
        k = _key(factors)
        for t in collected:
            if t[2] == k:
                t[0] += coef
                break
        else:
            collected.append([coef, factors, k])
    live = [(c, f) for c, f, _ in collected if c != 0 or _has_zero_base(f)]
    if not live:
        return ZERO if shape == () else make("mul", ZERO, ones(shape))
    # Lead with a positive term: y − t rather than −t + y.
    live.sort(key=lambda t: t[0] < 0)
    out = _build_monomial(*live[0], shape)
    for coef, factors in live[1:]:
        if coef < 0:
            out = make("sub", out, _build_monomial(-coef, factors, shape))
        else:
            out = make("add", out, _build_monomial(coef, factors, shape))
    if out.shape != shape and shape != ():
        out = make("mul", out, ones(shape))
    return out


# ---------------------------------------------------------------- reductions and scaling
def _split_coef(e: Expr) -> tuple[Fraction, Expr]:
    """A numeric factor and the rest (1, e when there is none)."""
    if e.op == "neg":
        c, r = _split_coef(e.args[0])
        return -c, r
    if e.op == "mul" and e.args[0].op == "num":
        return e.args[0].attr, e.args[1]
    if e.op == "div" and e.args[1].op == "num" and e.args[1].attr != 0:
        c, r = _split_coef(e.args[0])
        return c / e.args[1].attr, r
    return Fraction(1), e


def _scale(c: Fraction, e: Expr) -> Expr:
    return _local(make("mul", num(c), e), NO_FACTS) if c != 1 else e


def _simplify_sum(e: Expr, facts: Facts) -> Expr:
    (a,) = e.args
    if a.shape == ():
        return a
    coef, factors = _monomial(a)
    scalars = [f for f in factors if f[0].shape == ()]
    rest = [f for f in factors if f[0].shape != ()]
    if len(rest) == 1 and rest[0][1] == 1:
        inner = rest[0][0]
        if inner.op in ("onehot", "softmax") or (inner.op == "sym" and inner.attr in facts.sums_to_one):
            inner_sum = ONE
        elif inner.op == "ones":
            inner_sum = _size(inner.shape)
        else:
            inner_sum = make("sum", inner)
    else:
        if coef == 1 and not scalars:
            return e
        inner_sum = make("sum", _build_monomial(Fraction(1), rest, a.shape))
    return _rebuild_sum([(coef, scalars + [[inner_sum, 1]])], ())


def _size(shape) -> Expr:
    out = ONE
    for d in shape:
        out = make("mul", out, Expr("dim", (), d, ()) if isinstance(d, str) else num(d))
    return _local(out, NO_FACTS)


def simplify_node(e: Expr, facts: Facts = NO_FACTS) -> Expr:
    """The algebra at ``e`` alone (its arguments taken as already simplified)."""
    if _divides_by_zero(e) or any(_divides_by_zero(a) for a in e.args):
        return e
    return _local(e, facts)


# The pieces derivkit.rewrite builds its longer-range rules on.
monomial = _monomial
terms = _terms
build_monomial = _build_monomial
rebuild_sum = _rebuild_sum
