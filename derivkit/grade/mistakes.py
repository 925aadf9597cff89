"""Diagnosis: which recognised mistake a wrong answer is, generated from the chain.

Mistakes are never listed per problem.  They come from three places:

* the answer's shape against the reference's (``transpose``, ``shape``);
* the answer's values against the truth's (``sign``, ``scale`` with the factor);
* mutations of the reference (:func:`variants`): the backpropagation chain of
  the question with one local derivative left out (``missing_factor``, naming
  it: ∂h/∂z, a factor of it such as σ'(z) or the ReLU mask), an activation used
  where its derivative belongs (``activation_for_derivative``), and one name
  replaced by another of the same shape (``wrong_node``).

The first candidate the answer equals (by :meth:`Judge.distance`, the one
comparison) is the diagnosis; feedback says what is wrong and where, without
writing the answer out.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import mpmath
import numpy as np

from derivkit.expr import Expr, make, num, substitute
from derivkit.layout import present
from derivkit.printing import to_ascii
from derivkit.verify import TOLERANCE, Undefined

#: an activation and the op of its derivative (the mistake: one written for the other)
DERIVATIVE_OF = {"sigmoid": "sigmoid_prime", "tanh": "tanh_prime", "relu": "relu_prime"}
MAX_VARIANTS = 400           # candidates per question (a deep chain has many)


@dataclass(frozen=True)
class Variant:
    """The reference with one mistake made: the diagnosis, how to say it, the expression."""

    diagnosis: str
    feedback: str
    expr: Expr
    detail: tuple = ()


def diagnose(judge, ref, student: Expr) -> tuple[str | None, str, dict]:
    """(diagnosis, feedback, detail) for an answer that is not equal to the reference."""
    close = lambda against=None, answer=student: judge.distance(answer, ref, against) <= TOLERANCE  # noqa: E731
    what = ref.label
    if student.shape and student.shape != ref.shape:
        if _transposed(student.shape, ref.shape) and close(answer=make("T", student)):
            return "transpose", (f"Your answer is the transpose of {what}: in this problem's layout "
                                 f"{what} has shape {_shape(ref.shape)}."), {}
        return "shape", (f"Your answer has shape {_shape(student.shape)}, but {what} has shape "
                         f"{_shape(ref.shape)}: check which products and transposes the chain needs."), \
            {"shapes": [list(student.shape), list(ref.shape)]}
    if close(answer=make("neg", student)):
        return "sign", f"The sign is wrong: check the sign of each local derivative in the chain to {what}.", {}
    if len(ref.shape) == 2 and ref.shape[0] == ref.shape[1] and close(answer=make("T", student)):
        return "transpose", f"Your matrix is the transpose of {what}.", {}
    factor = _factor(judge, ref, student)
    if factor is not None and close(answer=make("mul", num(1 / factor), student)):
        text = _fraction(factor)
        return "scale", (f"Your answer is {text} times {what}: check the constant factors "
                         f"(a 2 from a square, a 1/N from a mean)."), {"factor": float(factor)}
    if ref.expr is not None:
        for v in variants(judge, ref):
            if close(against=v.expr):
                return v.diagnosis, v.feedback, dict(v.detail)
    return None, _NOT_EQUAL.get(ref.kind, _NOT_EQUAL["grad"]).format(what=what), {}


_NOT_EQUAL = {
    "grad": "Not equal to {what}: re-check each step of the chain (local derivatives, products and shapes).",
    "jacobian": "Not equal to {what}: re-check the local derivatives entry by entry.",
    "forward": "Not equal to {what}: re-check how each layer is computed from the previous one.",
    "identity": "Not equal to {what}: re-check the algebra step by step.",
    "limit": "That is not the limit: re-check which terms vanish or saturate.",
}


def variants(judge, ref) -> list[Variant]:
    """The reference's mutations, made once per question and kept (their values stay cached)."""
    if ref.variants is None:
        out: list[Variant] = []
        if ref.kind == "grad" and not ref.index:          # the chain is derived in the variable's shape
            out += [Variant(v.diagnosis, v.feedback, present(v.expr, ref.wrt_shape, ref.layout), v.detail)
                    for v in chain_variants(judge.g, judge.d, ref.wrt)]
        elif ref.kind == "grad" and ref.whole is not None:      # the chain's mistakes, one entry of them
            from derivkit.indexform import index_form
            out += [Variant(v.diagnosis, v.feedback, index_form(v.expr, ref.index, judge.g), v.detail)
                    for v in chain_variants(judge.g, judge.d, ref.wrt)]
        out += expression_variants(ref.expr, judge.g)
        seen, unique = set(), []
        for v in out:
            if v.expr not in seen and v.expr != ref.expr and v.expr.shape == ref.expr.shape:
                seen.add(v.expr)
                unique.append(v)
        ref.variants = unique[:MAX_VARIANTS]
    return ref.variants


# ====================================================================== from the chain
def chain_variants(g, d, wrt: str) -> list[Variant]:
    """∂loss/∂wrt with one local derivative of its chain missing, or an activation for its derivative."""
    reached = _reached(d, wrt)
    out: list[Variant] = []
    for s in reached:
        steps = d.steps.get(s) or []
        for i, st in enumerate(steps):
            others = [o.expr for j, o in enumerate(steps) if j != i]
            m = st.via
            local = f"∂{m}/∂{s}"
            up = d.upstream(m)

            def override(contribution: Expr) -> Expr:
                total = contribution
                for o in others:
                    total = make("add", total, o)
                return full_with(d, wrt, {s: total})
            if g.shape(m) == g.shape(s):
                out.append(Variant("missing_factor", f"A local derivative of the chain is missing: {local}.",
                                   override(up), (("missing", local),)))
            node = g.nodes.get(m)
            if node is not None and node.op in DERIVATIVE_OF and node.args[0] == g.ref(s):
                out.append(Variant("activation_for_derivative",
                                   f"The activation {node.op}({s}) is used where its derivative belongs ({local}).",
                                   override(make("mul", up, g.ref(m))), (("activation", node.op),)))
            for factor, rest in _droppable(st.expr):
                name = to_ascii(factor)
                out.append(Variant("missing_factor",
                                   f"A factor of the local derivative {local} is missing ({name}).",
                                   override(substitute(st.expr, {rest[0]: rest[1]})),
                                   (("missing", local), ("factor", name))))
    return out


def _reached(d, wrt: str) -> list[str]:
    """``wrt`` and every name whose upstream gradient its chain goes through, nearest first."""
    order, todo = [], [wrt]
    while todo:
        n = todo.pop(0)
        if n in order or n == d.root:
            continue
        order.append(n)
        todo += [a.attr[1] for a in d.chain[n].walk() if a.op == "grad"]
    return order


def full_with(d, name: str, override: dict[str, Expr]) -> Expr:
    """∂root/∂name written out from the chain forms, with ``override`` replacing some of them."""
    memo: dict[str, Expr] = {}

    def full(n: str) -> Expr:
        if n not in memo:
            if n not in override:
                memo[n] = d.full[n] if not _depends_on(d, n, override) else None
            if memo.get(n) is None:
                chain = override.get(n, d.chain[n])
                atoms = {a: full(a.attr[1]) for a in chain.walk() if a.op == "grad"}
                memo[n] = substitute(chain, atoms)
        return memo[n]
    return full(name)


def _depends_on(d, n: str, override: dict) -> bool:
    return any(m in override for m in _reached(d, n))


def _droppable(e: Expr):
    """(factor, (product, product without it)) for each factor of a product that can go alone."""
    for node in e.walk():
        if node.op == "mul":
            a, b = node.args
            for keep, drop in ((a, b), (b, a)):
                if drop.op != "num" and keep.shape == node.shape and drop.op != "grad":
                    yield drop, (node, keep)
        elif node.op == "matmul":
            a, b = node.args
            for keep, drop in ((a, b), (b, a)):
                if len(drop.shape) == 2 and drop.shape[0] == drop.shape[1] and keep.shape == node.shape \
                        and drop.op != "grad":
                    yield drop, (node, keep)


# ====================================================================== from the expression
def expression_variants(e: Expr, g) -> list[Variant]:
    """Mutations of any reference expression: a dropped factor, an activation for its
    derivative, a name replaced by another of the same shape."""
    out: list[Variant] = []
    for factor, (node, keep) in _droppable(e):
        name = to_ascii(factor)
        out.append(Variant("missing_factor", f"A factor is missing ({name}).",
                           substitute(e, {node: keep}), (("factor", name),)))
    for node in e.walk():
        for act, der in DERIVATIVE_OF.items():
            if node.op == der:
                out.append(Variant("activation_for_derivative",
                                   f"The activation {act} is used where its derivative {act}' belongs.",
                                   substitute(e, {node: make(act, *node.args)}), (("activation", act),)))
    used = sorted({n.attr for n in e.walk() if n.op == "sym"})
    for a in used:
        if a not in g.names:
            continue
        for b in g.names:
            if b != a and g.shape(b) == g.shape(a) and g.kind(b) != "class" and g.kind(a) != "class":
                out.append(Variant("wrong_node",
                                   f"You used '{b}' where the chain needs a different quantity of the same shape.",
                                   substitute(e, {g.ref(a): g.ref(b)}), (("used", b), ("instead_of", a))))
    return out


# ====================================================================== helpers
def _transposed(a: tuple, b: tuple) -> bool:
    flat = lambda s: s if len(s) == 2 else (s[0], 1) if len(s) == 1 else s  # noqa: E731
    return tuple(reversed(flat(a))) == flat(b) and len(a) <= 2 and len(b) <= 2


def _shape(s: tuple) -> str:
    if not s:
        return "scalar"
    return "[" + ", ".join(str(x) for x in s) + "]"


def _factor(judge, ref, student: Expr) -> float | None:
    """The constant student/truth read at the truth's largest entry (checked by the caller)."""
    dom = ref.domain
    try:
        if ref.index:
            pairs = zip(judge._entries(student, ref, keep=False), (t for _, t in ref.truths))
        else:
            pairs = [(ref.in_variable_shape(student), ref.truths[0][1])]
        best = None
        for s, t in pairs:
            for k in range(len(dom.points)):
                sv = np.ravel(np.asarray(dom.value(s, k), dtype=object))
                tv = np.ravel(np.asarray(dom.value(t, k), dtype=object))
                if sv.size != tv.size and sv.size != 1:
                    return None
                sv = np.broadcast_to(sv, tv.shape)
                for x, y in zip(sv, tv):
                    if best is None or abs(y) > abs(best[1]):
                        best = (x, y)
    except (Undefined, ValueError, ZeroDivisionError):
        return None
    if best is None or best[1] == 0 or best[0] == 0:
        return None
    r = float(mpmath.mpf(best[0]) / mpmath.mpf(best[1]))
    if not np.isfinite(r) or abs(r - 1) < 1e-12 or abs(r + 1) < 1e-12:
        return None
    f = Fraction(r).limit_denominator(1000)
    return float(f) if abs(float(f) - r) <= 1e-9 * max(1.0, abs(r)) else r


def _fraction(x: float) -> str:
    f = Fraction(x).limit_denominator(1000)
    return str(f) if abs(float(f) - x) <= 1e-12 * max(1.0, abs(x)) else f"{x:.6g}"
