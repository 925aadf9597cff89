"""Readable forms: the rewrites that make a derived gradient read like a textbook's.

:mod:`derivkit.simplify` is the light algebra every expression goes through; this
module is the second, longer-range pass a printed gradient gets.  Its rules:

* transposes pushed to the leaves: (A B)ᵀ = Bᵀ Aᵀ, (u + v)ᵀ = uᵀ + vᵀ, (u ⊙ v)ᵀ = uᵀ ⊙ vᵀ;
* scalar factors pulled out of matrix products: x ((q − y) xᵀ) = (q − y) x xᵀ;
* common factors pulled out of sums: a ⊙ c − a ⊙ x = a ⊙ (c − x), and products
  sharing an operand merged: Aᵀx + Ax = (Aᵀ + A) x;
* sums that are known constants replaced: Σ of a softmax, of a one-hot target, of any
  node whose entries provably add up to one (a smoothed target 0.9 t + 0.1/C);
* quotients of exponentials recognised: eᶻ/(1 + eᶻ) = σ(z), 1/(1 + e⁻ᶻ) = σ(z),
  (eᶻ − e⁻ᶻ)/(eᶻ + e⁻ᶻ) = tanh z, eᵒ/Σeᵒ = softmax(o);
* named nodes substituted back: a sub-expression (or part of a product) equal to a
  node's definition becomes the node's name;
* elementwise blocks cancelled with SymPy (``cancel``, ``apart``), with the nodes'
  definitions opened when that helps and, for a target with a finite domain (binary
  y ∈ {0, 1}, signs y ∈ {−1, 1}), the block interpolated on that domain
  (−(1 − σ((2y − 1)z))(2y − 1) = σ(z) − y).  Every such result is proved equal by an
  exact SymPy zero test on the domain before it is kept.

Each rewrite is kept only where the result is not longer (:meth:`Expr.size`); the
whole pass never returns a longer form.  SymPy's ``simplify`` is never called, and
every SymPy call is bounded by the size of what it is given.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

import sympy

from .expr import ONE, Expr, make, num, ones, sym
from .simplify import (Facts, build_monomial, monomial, rebuild_sum, simplify, simplify_node,
                       terms)

#: an elementwise block larger than this (in Expr nodes) is not handed to SymPy
BLOCK_LIMIT = 60
#: nor one whose SymPy form has more operations than this
SYMPY_OPS_LIMIT = 160
#: a cancelled block this short (p − y, (p − y)/K) is not tried again with the nodes opened
SHORT_ENOUGH = 5
#: at most this many finite-domain targets in one block (2**3 interpolation points for binary ones)
DOMAIN_ATOMS_LIMIT = 3
#: rule applications per problem; past it the remaining forms stay as derived (still proved), so a
#: deep network cannot make the rewriting cost grow faster than its depth (the corpus needs under 300, a 20-step scalar chain 11 940)
WORK_LIMIT = 12_000


@dataclass(frozen=True)
class Knowledge:
    """What the rewrites may use about a problem's names."""

    facts: Facts = field(default_factory=Facts)
    #: an expression equal to a node's definition -> the node's name (a ``sym``)
    names: dict = field(default_factory=dict)
    #: a node's name -> its definition, for SymPy to open
    definitions: dict = field(default_factory=dict)
    #: a leaf's name -> the finite set of values it takes (binary, ±1 targets)
    domains: dict = field(default_factory=dict)
    #: results already found (a problem's full and printed forms share most sub-expressions)
    cache: dict = field(default_factory=dict, compare=False, repr=False)


def knowledge(g) -> Knowledge:
    """The facts of a :class:`~derivkit.graph.Graph`: sums equal to one, definitions, domains."""
    sums_to_one = set(g.facts.sums_to_one)
    domains: dict[str, tuple] = {}
    for name, spec in g.problem.symbols.items():
        if spec.values and len(spec.values) <= 3:
            domains[name] = tuple(sympy.Rational(str(v)) for v in spec.values)
        elif spec.kind == "binary":
            domains[name] = (sympy.Integer(0), sympy.Integer(1))
    names: dict[Expr, Expr] = {}
    definitions: dict[str, Expr] = {}
    for name, e in g.nodes.items():
        if name == g.loss:
            continue
        facts = Facts(frozenset(sums_to_one))
        definition = simplify(e, facts)
        definitions[name] = definition
        ref = sym(name, e.shape)
        if len(e.shape) == 1 and _sum_value(definition, facts) == ONE:
            sums_to_one.add(name)
        partial = Knowledge(Facts(frozenset(sums_to_one)), dict(names), definitions, domains)
        for form in (definition, _structural(definition, partial)):
            if form.size() > 1:
                names.setdefault(form, ref)
    return Knowledge(Facts(frozenset(sums_to_one)), names, definitions, domains)


def readable(e: Expr, k: Knowledge) -> Expr:
    """The shortest form of ``e`` the rules find (never longer than ``e``, always equal to it)."""
    if ("readable", e) in k.cache:
        return k.cache["readable", e]
    if k.cache.get("work", 0) > WORK_LIMIT:
        return e                              # the problem's rewriting budget is spent: keep it as derived
    if any(n.op == "div" and n.args[1].is_num(0) for n in e.walk()):
        return e                              # a value kept undefined is not rewritten
    out = _structural(e, k)
    out = _blocks(out, k, {})
    out = _structural(out, k)
    out = out if out.size() <= e.size() else e
    k.cache["readable", e] = out
    return out


# ====================================================================== structural rules
def _structural(e: Expr, k: Knowledge) -> Expr:
    """Bottom-up: each node rebuilt from improved arguments, then the rules at the node.

    The memo lives in ``k.cache`` for the whole problem: full forms share their upstream
    gradients, so each sub-expression is improved once, not once per gradient that holds it."""
    memo: dict[Expr, Expr] = k.cache.setdefault("structural", {})
    for node in e.walk():
        if node in memo:
            continue
        if not node.args:
            memo[node] = k.names.get(node, node)
            continue
        args = tuple(memo[a] for a in node.args)
        rebuilt = node if args == node.args else make(node.op, *args, attr=node.attr)
        memo[node] = _improve(simplify_node(rebuilt, k.facts), k)
    return memo[e]


def _improve(e: Expr, k: Knowledge, depth: int = 0) -> Expr:
    """The shortest of ``e`` and what each rule makes of it (ties go to the rewrite)."""
    k.cache["work"] = k.cache.get("work", 0) + 1
    best = e
    for rule in _RULES:
        cand = rule(best, k, depth)
        if cand is not None and cand != best and cand.shape == e.shape and cand.size() <= best.size():
            best = cand
    named = k.names.get(best)
    return named if named is not None else best


def _t(x: Expr, k: Knowledge) -> Expr:
    return simplify_node(make("T", x), k.facts)


def _push_transpose(e: Expr, k: Knowledge, depth: int) -> Expr | None:
    """(A B)ᵀ = Bᵀ Aᵀ; (u ± v)ᵀ = uᵀ ± vᵀ; (u ⊙ v)ᵀ = uᵀ ⊙ vᵀ (each side transposed alone)."""
    if e.op != "T":
        return None
    a = e.args[0]
    if a.op == "matmul":
        return _rebuild("matmul", _t(a.args[1], k), _t(a.args[0], k), k=k)
    if a.op in ("add", "sub", "mul", "div"):
        return _rebuild(a.op, *(_t(x, k) for x in a.args), k=k)
    return None


def _rebuild(op: str, *args: Expr, k: Knowledge) -> Expr:
    return simplify_node(make(op, *args), k.facts)


def _scalars_out_of_product(e: Expr, k: Knowledge, depth: int) -> Expr | None:
    """x ((q − y) xᵀ) = (q − y) (x xᵀ): scalar factors of an operand move in front."""
    if e.op != "matmul":
        return None
    outside: list[list] = []
    inner = []
    coef = Fraction(1)
    for a in e.args:
        c, factors = monomial(a)
        scal = [f for f in factors if f[0].shape == ()]
        rest = [f for f in factors if f[0].shape != ()]
        if not rest:
            return None
        coef *= c
        outside += scal
        inner.append(build_monomial(Fraction(1), rest, a.shape) if scal or c != 1 else a)
    if not outside and coef == 1:
        return None
    product = make("matmul", *inner)
    return simplify_node(build_monomial(coef, outside + [[product, 1]], e.shape), k.facts)


def _factor_sum(e: Expr, k: Knowledge, depth: int) -> Expr | None:
    """Merge products that share an operand, then pull out the factor most terms share."""
    if e.op not in ("add", "sub") or depth > 4:
        return None
    ts = _merge_products(terms(e), e.shape, k, depth)
    counts: dict[Expr, int] = {}
    for _, factors in ts:
        for base in {b for b, p in factors if p > 0 and b.op != "num"}:
            counts[base] = counts.get(base, 0) + 1
    shared = [b for b, n in counts.items() if n >= 2]
    if not shared:
        return rebuild_sum(ts, e.shape)
    best = None
    for base in sorted(shared, key=lambda b: -counts[b])[:3]:
        cand = _pull_out(base, ts, e.shape, k, depth)
        if best is None or cand.size() < best.size():
            best = cand
    return best


def _pull_out(base: Expr, ts: list, shape, k: Knowledge, depth: int) -> Expr:
    """base^p ⊙ (Σ the terms that hold it, divided by base^p) + the other terms."""
    holding = [(c, f) for c, f in ts if any(b == base and p > 0 for b, p in f)]
    others = [(c, f) for c, f in ts if not any(b == base and p > 0 for b, p in f)]
    p = min(next(q for b, q in f if b == base) for _, f in holding)
    reduced = []
    for c, f in holding:
        reduced.append((c, [[b, q - p] if b == base else [b, q] for b, q in f if not (b == base and q == p)]))
    inner_shape = shape if any(b.shape != () for _, f in reduced for b, _ in f) else ()
    inner = _improve(rebuild_sum(reduced, inner_shape), k, depth + 1)
    pulled = make("mul", base if p == 1 else make("pow", base, num(p)), inner)
    return rebuild_sum(others + [(Fraction(1), [[pulled, 1]])], shape)


def _merge_products(ts: list, shape, k: Knowledge, depth: int) -> list:
    """c₁ A x + c₂ B x = (c₁ A + c₂ B) x, and likewise for a shared left operand."""
    for side in (1, 0):
        groups: dict[Expr, list] = {}
        for i, (c, f) in enumerate(ts):
            if len(f) == 1 and f[0][1] == 1 and f[0][0].op == "matmul":
                groups.setdefault(f[0][0].args[side], []).append(i)
        merged, used = [], set()
        for operand, idx in groups.items():
            if len(idx) < 2 or operand.op == "num":
                continue
            others = [(ts[i][0], [[ts[i][1][0][0].args[1 - side], 1]]) for i in idx]
            other_shape = ts[idx[0]][1][0][0].args[1 - side].shape
            inner = _improve(rebuild_sum(others, other_shape), k, depth + 1)
            prod = make("matmul", operand, inner) if side == 0 else make("matmul", inner, operand)
            merged.append((Fraction(1), [[prod, 1]]))
            used.update(idx)
        if used:
            ts = [t for i, t in enumerate(ts) if i not in used] + merged
    return ts


def _exponential_quotients(e: Expr, k: Knowledge, depth: int) -> Expr | None:
    """eʷ/(1 + eʷ) = σ(w), 1/(1 + eʷ) = σ(−w), (eᵃ − e⁻ᵃ)/(eᵃ + e⁻ᵃ) = tanh a, eᵒ/Σeᵒ = softmax(o)."""
    if e.op not in ("mul", "div", "pow"):
        return None
    coef, factors = monomial(e)
    changed = False
    for f in factors:
        base, p = f
        if p >= 0 or f[1] == 0:
            continue
        if base.op == "sum" and base.args[0].op == "exp":          # softmax
            top = _find(factors, base.args[0], positive=True)
            if top is not None and p == -1:
                top[1] -= 1
                f[1] = 0
                factors.append([make("softmax", base.args[0].args[0]), 1])
                changed = True
            continue
        pair = _sum_of_two(base)
        if pair is None or p != -1:
            continue
        (c1, a), (c2, b) = pair
        if c1 == 1 and c2 == 1 and a.is_num(1) and b.op == "exp":       # 1 + eʷ
            w = b.args[0]
            top = _find(factors, b, positive=True)
            f[1] = 0
            if top is not None:
                top[1] -= 1
                factors.append([make("sigmoid", w), 1])
            else:
                factors.append([make("sigmoid", simplify_node(make("neg", w), k.facts)), 1])
            changed = True
        elif c1 == 1 and c2 == 1 and a.op == b.op == "exp":                # eᵃ + e⁻ᵃ
            neg = simplify_node(make("neg", a.args[0]), k.facts)
            if b.args[0] != neg:
                continue
            for g in factors:
                top = _sum_of_two(g[0]) if g[1] == 1 else None
                if top and {(top[0][0], top[0][1]), (top[1][0], top[1][1])} == {(1, a), (-1, b)}:
                    g[1] = 0
                    f[1] = 0
                    factors.append([make("tanh", a.args[0]), 1])
                    changed = True
                    break
    if not changed:
        return None
    return simplify_node(build_monomial(coef, [f for f in factors if f[1] != 0], e.shape), k.facts)


def _find(factors: list, base: Expr, positive: bool):
    for f in factors:
        if f[0] == base and (f[1] > 0) == positive and f[1] != 0:
            return f
    return None


def _sum_of_two(e: Expr):
    """``e`` as two terms (coefficient, single factor), or None."""
    if e.op not in ("add", "sub"):
        return None
    ts = terms(e)
    if len(ts) != 2:
        return None
    out = []
    for c, f in ts:
        if not f:
            out.append((c, ONE))
        elif len(f) == 1 and f[0][1] == 1:
            out.append((c, f[0][0]))
        else:
            return None
    out.sort(key=lambda t: (not t[1].is_num(1), t[0] < 0))
    return out


def _named_factors(e: Expr, k: Knowledge, depth: int) -> Expr | None:
    """A product holding every factor of a node's definition (a quotient, say) uses its name."""
    if e.op not in ("mul", "div", "pow"):
        return None
    coef, factors = monomial(e)
    changed = False
    for definition, ref in k.names.items():
        if definition.op not in ("mul", "div", "pow"):
            continue
        dcoef, dfactors = monomial(definition)
        if dcoef != 1 or len(dfactors) < 2:
            continue
        times = None
        for b, p in dfactors:
            have = next((q for c, q in factors if c == b), 0)
            n = have // p if have * p > 0 else 0
            times = n if times is None else min(times, n)
        if times:
            for b, p in dfactors:
                next(f for f in factors if f[0] == b)[1] -= p * times
            factors.append([ref, times])
            changed = True
    if not changed:
        return None
    return simplify_node(build_monomial(coef, [f for f in factors if f[1] != 0], e.shape), k.facts)


def _opened_factors(e: Expr, k: Knowledge, depth: int) -> Expr | None:
    """The converse: a node in a product written out as its definition's factors, which then
    cancel against the others (t ⊙ eᵒ ⊘ p = t Σeᵒ for p = eᵒ/Σeᵒ); kept only where shorter."""
    if e.op not in ("mul", "div", "pow"):
        return None
    coef, factors = monomial(e)
    for i, (base, p) in enumerate(factors):
        d = k.definitions.get(base.attr) if base.op == "sym" else None
        if d is None or d.op not in ("mul", "div", "pow") or d.shape != base.shape:
            continue
        trial = make("mul", build_monomial(coef, [f for j, f in enumerate(factors) if j != i], e.shape),
                     d if p == 1 else make("pow", d, num(p)))
        trial = simplify(trial, k.facts)
        if trial.size() < e.size():
            return trial
    return None


_RULES: list[Callable] = [_push_transpose, _scalars_out_of_product, _opened_factors, _named_factors,
                          _exponential_quotients, _factor_sum]


def _sum_value(e: Expr, facts: Facts) -> Expr:
    """Σ of the vector ``e``, distributed over its terms (Σ(0.9 t + 0.1/C) = 0.9 + 0.1 = 1)."""
    parts = []
    for c, factors in terms(e):
        term = build_monomial(c, factors, e.shape)
        if term.shape == ():                      # a scalar spread over every entry
            term = make("mul", term, ones(e.shape))
        parts.append(simplify(make("sum", term), facts))
    total = parts[0]
    for p in parts[1:]:
        total = make("add", total, p)
    return simplify(total, facts)


# ====================================================================== elementwise blocks
_ELEMENTWISE = {"add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sigmoid", "tanh"}


class Sig(sympy.Function):
    """σ, with σ(−w) = 1 − σ(w) built in (so a sign target's cases cancel)."""

    @classmethod
    def eval(cls, a):
        if a.could_extract_minus_sign():
            return 1 - cls(-a)
        return None


_TO_SYMPY = {"exp": sympy.exp, "log": sympy.log, "sigmoid": Sig, "tanh": sympy.tanh}
_FROM_SYMPY = {sympy.exp: "exp", sympy.log: "log", Sig: "sigmoid", sympy.tanh: "tanh"}


def _blocks(e: Expr, k: Knowledge, memo: dict) -> Expr:
    """Top-down: every maximal elementwise sub-expression cancelled with SymPy where shorter."""
    if e in memo:
        return memo[e]
    if not e.args:
        out = e
    elif e.op in _ELEMENTWISE and not (e.op == "pow" and e.args[1].op != "num"):
        atoms = [a for a in _block_atoms(e) if a.args]
        inner = {a: _blocks(a, k, memo) for a in atoms}
        changed = {a: b for a, b in inner.items() if a != b}
        from .expr import substitute
        base = substitute(e, changed) if changed else e
        if ("block", base) not in k.cache:
            k.cache["block", base] = _cancel_block(base, k) if _worth_cancelling(base, k) else None
        out = k.cache["block", base] or base
    else:
        args = tuple(_blocks(a, k, memo) for a in e.args)
        out = e if args == e.args else simplify_node(make(e.op, *args, attr=e.attr), k.facts)
    memo[e] = out
    return out


def _worth_cancelling(e: Expr, k: Knowledge) -> bool:
    """Only a quotient, an exponential or a finite-domain target gives SymPy something to cancel."""
    for n in e.walk():
        if n.op in ("div", "exp") or (n.op == "pow" and n.args[1].op == "num" and n.args[1].attr < 0):
            return True
        if n.op == "sym" and n.attr in k.domains:
            return True
    return False


def _block_atoms(e: Expr) -> list[Expr]:
    """The non-elementwise sub-expressions a block treats as opaque symbols."""
    out, stack, seen = [], [e], set()
    while stack:
        x = stack.pop()
        if x in seen:
            continue
        seen.add(x)
        if x.args and x.op in _ELEMENTWISE and not (x.op == "pow" and x.args[1].op != "num"):
            stack.extend(x.args)
        else:
            out.append(x)
    return out


class _Untranslatable(Exception):
    pass


class _Translator:
    """Expr <-> SymPy for one block: opaque atoms become symbols, and back."""

    def __init__(self, k: Knowledge, sigmoid_as_exp: bool = False):
        self.k = k
        self.sigmoid_as_exp = sigmoid_as_exp
        self.atoms: dict[Expr, sympy.Symbol] = {}
        self.back: dict[sympy.Symbol, Expr] = {}
        self.opening: set[str] = set()

    def atom(self, x: Expr) -> sympy.Symbol:
        if x not in self.atoms:
            if x.op == "dim":
                s = sympy.Symbol(f"a{len(self.atoms)}", positive=True)
            else:
                s = sympy.Symbol(f"a{len(self.atoms)}", real=True)
            self.atoms[x] = s
            self.back[s] = x
        return self.atoms[x]

    def to_sympy(self, e: Expr, open_nodes: bool):
        op = e.op
        if op == "num":
            return sympy.Rational(e.attr.numerator, e.attr.denominator)
        if op == "ones":
            return sympy.Integer(1)
        if op == "sym" and open_nodes and e.attr in self.k.definitions and e.attr not in self.opening:
            d = self.k.definitions[e.attr]
            if d.op in _ELEMENTWISE and all(a.op in ("sym", "num", "dim", "ones") or a.op in _ELEMENTWISE
                                             for a in d.walk()):
                self.opening.add(e.attr)
                try:
                    return self.to_sympy(d, open_nodes)
                finally:
                    self.opening.discard(e.attr)
        if op in _ELEMENTWISE and not (op == "pow" and e.args[1].op != "num"):
            a = [self.to_sympy(x, open_nodes) for x in e.args]
            if op == "add":
                return a[0] + a[1]
            if op == "sub":
                return a[0] - a[1]
            if op == "mul":
                return a[0] * a[1]
            if op == "div":
                return a[0] / a[1]
            if op == "neg":
                return -a[0]
            if op == "pow":
                return a[0] ** a[1]
            if op == "sigmoid" and self.sigmoid_as_exp:
                return 1 / (1 + sympy.exp(-a[0]))
            return _TO_SYMPY[op](a[0])
        return self.atom(e)

    def to_expr(self, s, shape) -> Expr:
        if s.is_Symbol:
            if s not in self.back:
                raise _Untranslatable(s)
            return self.back[s]
        if s.is_Rational:
            return num(Fraction(int(s.p), int(s.q)))
        if s.is_Add:
            out = None
            for t in s.as_ordered_terms():
                x = self.to_expr(t, shape)
                out = x if out is None else make("add", out, x)
            return out
        if s.is_Mul:
            out = None
            for f in s.args:
                x = self.to_expr(f, shape)
                out = x if out is None else make("mul", out, x)
            return out
        if s.is_Pow and s.exp.is_Integer:
            base = self.to_expr(s.base, shape)
            n = int(s.exp)
            if n < 0:
                return make("div", ONE, base if n == -1 else make("pow", base, num(-n)))
            return make("pow", base, num(n))
        if s.func in _FROM_SYMPY and len(s.args) == 1:
            return make(_FROM_SYMPY[s.func], self.to_expr(s.args[0], shape))
        raise _Untranslatable(s)


def _cancel_block(e: Expr, k: Knowledge) -> Expr | None:
    """``e`` rewritten by SymPy's cancel/apart (on the domains of its targets); None if not shorter."""
    if e.size() > BLOCK_LIMIT:
        return None
    best, best_size = None, e.size()
    openable = any((n.op == "sym" and n.attr in k.definitions) or n.op == "sigmoid" for n in e.walk())
    # first σ as a function (σ(−w) = 1 − σ(w) cancels sign targets), then nodes opened and σ
    # written with exponentials (so σ(−z) meets a node p = 1/(1 + e⁻ᶻ))
    for open_nodes in (False, True) if openable else (False,):
        if open_nodes and best_size <= SHORT_ENOUGH:
            break
        tr = _Translator(k, sigmoid_as_exp=open_nodes)
        try:
            F = tr.to_sympy(e, open_nodes)
        except (TypeError, ValueError, ZeroDivisionError):
            return None
        if sympy.count_ops(F) > SYMPY_OPS_LIMIT or F.has(sympy.zoo, sympy.nan):
            continue
        domain = [(s, k.domains[x.attr]) for x, s in tr.atoms.items()
                  if x.op == "sym" and x.attr in k.domains and F.has(s)]
        if len(domain) > DOMAIN_ATOMS_LIMIT:
            continue
        for cand in _candidates(_interpolate(F, domain)):
            try:
                x = simplify(tr.to_expr(cand, e.shape), k.facts)
            except (_Untranslatable, Exception):
                continue
            if x.size() > 2 * best_size:
                continue
            x = _structural(x, k)
            if x.shape != e.shape:
                if x.shape != ():
                    continue
                x = simplify_node(make("mul", x, ones(e.shape)), k.facts)
            if x.size() < best_size and _proved_equal(e, x, k):
                best, best_size = x, x.size()
    return best


def _interpolate(F, domain):
    """F on a finite domain as the polynomial of least degree in each variable (Lagrange)."""
    for s, values in domain:
        total = 0
        for v in values:
            basis = 1
            for u in values:
                if u != v:
                    basis *= (s - u) / (v - u)
            total += F.subs(s, v) * basis
        F = total
    return F


def _candidates(F):
    """cancel(F), and its partial fractions in each exponential it holds."""
    try:
        c = sympy.cancel(F)
    except (sympy.PolynomialError, TypeError, ValueError):
        return []
    out = [c, sympy.expand(c)] if sympy.count_ops(c) < SYMPY_OPS_LIMIT // 4 else [c]
    for ex in list(c.atoms(sympy.exp))[:2]:
        for target in (ex, sympy.exp(-ex.args[0])):
            d = sympy.Dummy("d")
            try:
                out.append(sympy.apart(c.subs(target, d), d).subs(d, target))
            except (sympy.PolynomialError, NotImplementedError, TypeError, ValueError):
                pass
    return out


def _proved_equal(e: Expr, x: Expr, k: Knowledge) -> bool:
    """Exact zero test of e − x at every point of the targets' domains, nodes opened and
    σ, tanh written with exponentials (so a recognised σ(z) meets its 1/(1 + e⁻ᶻ))."""
    tr = _Translator(k)
    try:
        diff = tr.to_sympy(e, True) - tr.to_sympy(x, True)
    except (TypeError, ValueError, ZeroDivisionError):
        return False
    diff = diff.replace(Sig, lambda a: 1 / (1 + sympy.exp(-a))).rewrite(sympy.exp)
    domain = [(s, k.domains[a.attr]) for a, s in tr.atoms.items()
              if a.op == "sym" and a.attr in k.domains and diff.has(s)]
    syms = [s for s, _ in domain]
    for point in itertools.product(*[values for _, values in domain]):
        try:
            if sympy.cancel(diff.subs(dict(zip(syms, point)))) != 0:
                return False
        except (sympy.PolynomialError, TypeError, ValueError):
            return False
    return True
