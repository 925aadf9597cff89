"""The reference answer to each question, and its proof against the ground truth.

One function per question kind, registered in ``KINDS``; each returns an
:class:`Answer` whose ``expr`` is in the expression language (so ``check`` can
read it back) and whose ``latex`` is for the sheet.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import mpmath
import numpy as np
import sympy

from .derive import Derivation, derive, jacobian
from .errors import UserError
from .expr import Expr, concrete, substitute, sym
from .graph import Graph
from .indexform import index_form
from .parse import parse_expression
from .printing import to_ascii, to_latex
from .problem import QuestionSpec, Text
from .verify import DPS, TOLERANCE, Expansion, Verifier, evaluate_array, leaf_symbols, rel_error


@dataclass
class Answer:
    kind: str
    expr: str
    latex: str
    verified: bool
    max_rel_error: float | None = None
    reference: Expr | None = None          # the matrix-form expression, for the grader
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {"kind": self.kind, "latex": self.latex, "expr": self.expr, "verified": self.verified}
        if self.max_rel_error is not None:
            out["max_rel_error"] = self.max_rel_error
        out.update(self.extra)
        return out


@dataclass
class Context:
    g: Graph
    d: Derivation
    v: Verifier
    answers: dict[str, Answer]

    @property
    def names(self) -> dict[str, str]:
        return self.g.problem.latex

    def name(self, q: QuestionSpec, text: Text | None, what: str) -> str:
        if text is None:
            raise UserError(f"question '{q.id}' needs '{what}'", q.where)
        name = text.value.strip()
        if name not in self.g.names:
            import difflib
            close = difflib.get_close_matches(name, self.g.names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UserError(f"'{name}' is not a symbol or node of this problem{hint}", text.where)
        return name

    def parse(self, text: Text, q: QuestionSpec) -> Expr:
        extra = {n: sym(n, tuple(s)) for n, s in (q.vars or {}).items()}
        return parse_expression(text.value, self.g.scope(extra), text.where)


def _ok(err: float) -> bool:
    return err <= TOLERANCE


# ---------------------------------------------------------------- kinds
def answer_grad(ctx: Context, q: QuestionSpec) -> Answer:
    wrt = ctx.name(q, q.wrt, "wrt")
    ref = ctx.d.full[wrt]
    err = ctx.v.error(ref, ctx.g.loss, wrt)
    ans = Answer("grad", to_ascii(ref), to_latex(ref, ctx.names), _ok(err), err, ref,
                 {"chain_latex": to_latex(ctx.d.chain[wrt], ctx.names), "shape": list(ctx.g.shape(wrt))})
    if q.index:
        _add_index_form(ctx, ans, index_form(ref, q.index, ctx.g), q, ctx.g.loss, wrt, ref.shape)
    return ans


def _add_index_form(ctx: Context, ans: Answer, form: Expr, q: QuestionSpec, of: str, wrt: str, shape,
                    diagonal: bool = False) -> None:
    """Attach the index form and prove it entry by entry against the ground truth."""
    from .indexform import concrete_entries
    from .simplify import simplify
    form = simplify(form, ctx.g.facts)
    ans.extra["index_latex"] = to_latex(form, ctx.names)
    ans.extra["index_expr"] = to_ascii(form)
    exact = ctx.v.exact_at(of, wrt)
    pairs = []
    for values, concrete_form in concrete_entries(form, q.index, ctx.g.dims, shape):
        pos = tuple(values.values())
        for k, ex in enumerate(exact):
            if diagonal:           # ∂of_j/∂wrt_j (or row j of wrt)
                sel = ex[(pos[0], pos[0])] if ex.ndim >= 2 else ex[pos[0]]
            else:
                sel = ex[pos] if ex.ndim else ex
            pairs.append((k, concrete_form, sel))
    worst = ctx.v.slice_error(pairs)
    ans.extra["index_verified"] = _ok(worst)
    ans.verified = ans.verified and _ok(worst)


def answer_jacobian(ctx: Context, q: QuestionSpec) -> Answer:
    of = ctx.name(q, q.of, "of")
    wrt = ctx.name(q, q.wrt, "wrt")
    if q.index:
        return _indexed_jacobian(ctx, q, of, wrt)
    try:
        ref = jacobian(ctx.g, ctx.d, of, wrt)
    except UserError as exc:
        raise UserError(exc.message, q.where)
    err = ctx.v.error(ref, of, wrt)
    return Answer("jacobian", to_ascii(ref), to_latex(ref, ctx.names), _ok(err), err, ref,
                  {"shape": list(ref.shape)})


def _indexed_jacobian(ctx: Context, q: QuestionSpec, of: str, wrt: str) -> Answer:
    """∂of_j/∂wrt_j (or ∂of_j/∂ row j of wrt): the index names the entry of both."""
    from .indexform import ivar
    from .ops import make as _make
    g = ctx.g
    j = next(iter(q.index))
    of_shape = g.shape(of)
    if len(of_shape) != 1:
        raise UserError(f"an indexed jacobian needs a vector 'of', '{of}' has shape {list(of_shape)}", q.where)
    seed = _make("onehot", ivar(j), attr=of_shape[0])
    d = derive(g, root=of, seed=seed)
    ref = d.full[wrt]
    form = index_form(ref, {j: "row"}, g)
    ans = Answer("jacobian", "", "", True, None, None, {"shape": list(form.shape)})
    _add_index_form(ctx, ans, form, q, of, wrt, g.shape(wrt), diagonal=True)
    ans.latex, ans.expr = ans.extra["index_latex"], ans.extra["index_expr"]
    return ans


def answer_identity(ctx: Context, q: QuestionSpec) -> Answer:
    lhs, rhs = ctx.parse(q.lhs, q), ctx.parse(q.rhs, q)
    if lhs.shape != rhs.shape and lhs.shape and rhs.shape:
        raise UserError(f"the two sides have different shapes {list(lhs.shape)} and {list(rhs.shape)}", q.where)
    free = _free_vars(ctx, q)
    err = _identity_error(ctx, lhs, rhs, free)
    latex = f"{to_latex(lhs, ctx.names)} = {to_latex(rhs, ctx.names)}"
    return Answer("identity", f"{to_ascii(lhs)} == {to_ascii(rhs)}", latex, _ok(err), err, None,
                  {"lhs": to_ascii(lhs), "rhs": to_ascii(rhs)})


def _free_vars(ctx: Context, q: QuestionSpec) -> dict:
    out = {}
    for name, shape in (q.vars or {}).items():
        out[name] = leaf_symbols(name, concrete(tuple(shape), ctx.g.dims), None)
    return out


def _identity_error(ctx: Context, lhs: Expr, rhs: Expr, free: dict) -> float:
    a = np.asarray(ctx.v.base.expand(lhs, free), dtype=object)
    b = np.asarray(ctx.v.base.expand(rhs, free), dtype=object)
    rng = np.random.default_rng(1)
    worst = 0.0
    with mpmath.workdps(DPS):
        for p in ctx.v.points:
            values = dict(p.mp)
            for arr in free.values():
                for s in np.ravel(np.asarray(arr, dtype=object)):
                    values[s] = mpmath.mpf(repr(float(rng.normal())))
            x, y = evaluate_array(a, values), evaluate_array(b, values)
            worst = max(worst, rel_error(x, np.broadcast_to(y, x.shape) if x.shape != y.shape else y))
    return worst


def answer_limit(ctx: Context, q: QuestionSpec) -> Answer:
    if q.of is not None:
        qid = q.of.value.strip()
        if qid not in ctx.answers or ctx.answers[qid].reference is None:
            raise UserError(f"'of: {qid}' must name an earlier grad or jacobian question", q.of.where)
        ref = ctx.answers[qid].reference
    else:
        ref = ctx.parse(q.expr, q)
    if q.var is None or q.to is None:
        raise UserError(f"limit question '{q.id}' needs 'var' and 'to'", q.where)
    var = q.var.value.strip()
    declared = set(ctx.g.names) | set(q.vars or {})
    if var not in declared:
        raise UserError(f"'{var}' is not a symbol or node of this problem", q.var.where)
    if ctx.g.shape(var) if var in ctx.g.names else tuple((q.vars or {}).get(var, ())):
        raise UserError(f"the limit variable '{var}' must be a scalar", q.var.where)
    target = _limit_target(q.to)
    v = sympy.Symbol(var, real=True)
    free = {var: v}
    free.update(_free_vars(ctx, q))
    exp = Expansion(ctx.g, free=free)
    subs = {}
    for name, text in (q.subs or {}).items():
        if name not in exp.env:
            raise UserError(f"cannot substitute '{name}': not a symbol of this problem", text.where)
        val = ctx.parse(text, q)
        subs_val = exp.expand(val)
        for s, x in zip(np.ravel(np.asarray(exp.env[name], dtype=object)),
                        np.ravel(np.asarray(subs_val, dtype=object)) if np.shape(subs_val) else [subs_val] * max(
                            1, np.size(exp.env[name]))):
            subs[s] = x
    body = np.asarray(exp.expand(ref), dtype=object)
    out = np.empty(body.shape, dtype=object)
    for idx in np.ndindex(*body.shape):
        out[idx] = sympy.limit(sympy.sympify(body[idx]).xreplace(subs), v, target)
    result = out[()] if out.shape == () else sympy.Matrix(out.reshape(-1, 1) if out.ndim == 1 else out)
    err = _limit_check(body, out, subs, v, target)
    direction = r"\infty" if target is sympy.oo else (r"-\infty" if target is -sympy.oo else sympy.latex(target))
    latex = rf"\lim_{{{to_latex(sym(var))} \to {direction}}} {to_latex(ref, ctx.names)} = {sympy.latex(result)}"
    value = _plain(result)
    return Answer("limit", str(result), latex, err is not None and err < 1e-6, err, None,
                  {"value": value, "vanishes": value == 0 if isinstance(value, (int, float)) else None})


def _limit_target(text: Text):
    raw = str(text.value).strip().lower().replace(" ", "")
    table = {"oo": sympy.oo, "+oo": sympy.oo, "inf": sympy.oo, "+inf": sympy.oo, "infinity": sympy.oo,
             "-oo": -sympy.oo, "-inf": -sympy.oo, "-infinity": -sympy.oo}
    if raw in table:
        return table[raw]
    try:
        return sympy.Rational(raw) if "." not in raw else sympy.Float(raw)
    except (TypeError, ValueError, SyntaxError):
        raise UserError(f"'to' must be oo, -oo or a number, got {text.value!r}", text.where)


def _limit_check(body, out, subs, v, target) -> float | None:
    """Evaluate the expression close to the limit point and compare: a sanity check on SymPy."""
    if target is sympy.oo or target is -sympy.oo:
        near = [sympy.Integer(60) * (1 if target is sympy.oo else -1)]
    else:
        near = [target + sympy.Rational(1, 10**12), target - sympy.Rational(1, 10**12)]
    worst = 0.0
    for idx in np.ndindex(*body.shape):
        lim = out[idx]
        if not lim.is_number or not lim.is_finite:
            return None
        for z in near:
            val = sympy.sympify(body[idx]).xreplace(subs).xreplace({v: z})
            if val.free_symbols:
                return None
            worst = max(worst, abs(float(val.evalf(30)) - float(lim)))
    return worst


def _plain(x):
    if isinstance(x, sympy.Matrix):
        return [_plain(v) for v in x]
    if x.is_Integer:
        return int(x)
    if x.is_number and x.is_real and x.is_finite:
        return float(x)
    return str(x)


def answer_forward(ctx: Context, q: QuestionSpec) -> Answer:
    of = ctx.name(q, q.of, "of")
    ref = inline(ctx.g, of)
    a = np.asarray(ctx.v.base.expand(ref), dtype=object)
    b = np.asarray(ctx.v.base.env[of], dtype=object)
    err = ctx.v.compare(a, b)
    return Answer("forward", to_ascii(ref), to_latex(ref, ctx.names), _ok(err), err, ref)


def inline(g: Graph, name: str) -> Expr:
    """A node's expression in terms of the leaves only."""
    if name in g.leaves:
        return g.leaves[name]
    mapping = {}
    for n, e in g.nodes.items():
        mapping[sym(n, e.shape)] = substitute(e, mapping)
        if n == name:
            break
    return mapping[sym(name, g.nodes[name].shape)]


KINDS = {
    "grad": answer_grad,
    "jacobian": answer_jacobian,
    "identity": answer_identity,
    "limit": answer_limit,
    "forward": answer_forward,
}


def answer_all(g: Graph, d: Derivation, v: Verifier, errors: list | None = None) -> dict[str, Answer]:
    """Answers in question order (limits may refer to earlier questions)."""
    ctx = Context(g, d, v, {})
    for q in g.problem.questions:
        try:
            ctx.answers[q.id] = KINDS[q.kind](ctx, q)
        except UserError as exc:
            if errors is None:
                raise
            errors.append(exc)
    return ctx.answers
