"""The reference answer to each question, and its proof against the ground truth.

:func:`validate_questions` finds every structural mistake in the questions
(unknown names, shapes, limit targets, index axes) without any SymPy work, so
``validate`` reports them and ``solve`` stops before deriving anything.  Then
one function per question kind, registered in ``KINDS``, returns an
:class:`Answer` whose ``expr`` is in the expression language (so ``check`` can
read it back) and whose ``latex`` is for the sheet; every proof goes through
:func:`derivkit.verify.compare`.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import sympy

from .derive import Derivation, derive, jacobian
from .errors import UserError, UserErrors
from .expr import Expr, concrete, substitute, sym
from .graph import Graph
from .indexform import concrete_entries, index_form, ivar
from .layout import DENOMINATOR, absorb, present, shape_in
from .numeric import inline_nodes
from .parse import parse_expression
from .printing import to_ascii, to_latex
from .problem import QuestionSpec, Text
from .simplify import simplify
from .verify import TOLERANCE, Derivative, Domain, Expansion, compare, leaf_symbols
from .vocabulary import atom_latex, expand, vocabulary, write_using


@dataclass
class Answer:
    kind: str
    expr: str
    latex: str
    verified: bool
    max_rel_error: float | None = None
    reference: Expr | None = None          # the matrix-form expression, for the grader
    extra: dict = field(default_factory=dict)
    layout: str = DENOMINATOR              # the layout ``reference`` (and expr, latex) are written in
    using: Expr | None = None              # with ``using:``, the form in the course's names (atoms)
    atoms: dict[str, Expr] = field(default_factory=dict)   # atom (question id) -> its value
    chain: Expr | None = None              # a grad's one-step chain form (printed as chain_latex)

    @property
    def course_form(self) -> Expr | None:
        """What ``expr``/``latex`` print: the ``using`` form where asked, else ``reference``."""
        return self.using if self.using is not None else self.reference

    def to_json(self) -> dict:
        out = {"kind": self.kind, "latex": self.latex, "expr": self.expr, "verified": self.verified}
        if self.max_rel_error is not None:
            out["max_rel_error"] = self.max_rel_error
        out.update(self.extra)
        return out


# ====================================================================== validation (no SymPy)
_SUGGEST_LIMIT = 2000        # candidates a "did you mean" looks at


def _unknown(name: str, names: list[str], where) -> UserError:
    close = difflib.get_close_matches(name, names[:_SUGGEST_LIMIT], n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return UserError(f"'{name}' is not a symbol or node of this problem{hint}", where)


def _var_shapes(g: Graph, q: QuestionSpec) -> dict[str, tuple]:
    return {n: tuple(s) for n, s in (q.vars or {}).items()}


def _scope_extra(q: QuestionSpec) -> dict[str, Expr]:
    return {n: sym(n, tuple(s)) for n, s in (q.vars or {}).items()}


class _Checker:
    """Collects every mistake in one question, each at its place."""

    def __init__(self, g: Graph, q: QuestionSpec):
        self.g, self.q, self.errors = g, q, []

    def fail(self, message: str, where=None) -> None:
        self.errors.append(UserError(message, where or self.q.where))

    def name(self, text: Text | None, what: str, extra: dict | None = None) -> str | None:
        """A declared name (leaf, node, or one of ``extra``), or None after recording the mistake."""
        if text is None:
            self.fail(f"question '{self.q.id}' needs '{what}'")
            return None
        name = text.value.strip()
        if name in self.g.leaves or name in self.g.nodes or name in (extra or {}):
            return name
        self.errors.append(_unknown(name, self.g.names + list(extra or {}), text.where))
        return None

    def expr(self, text: Text | None, what: str) -> Expr | None:
        if text is None:
            self.fail(f"question '{self.q.id}' needs '{what}'")
            return None
        try:
            return parse_expression(text.value, self.g.scope(_scope_extra(self.q)), text.where)
        except UserError as exc:
            self.errors.append(exc)
            return None

    def shape(self, name: str) -> tuple:
        return self.g.shape(name) if name in self.g.names else _var_shapes(self.g, self.q)[name]


def _check_grad(c: _Checker, earlier: dict) -> None:
    wrt = c.name(c.q.wrt, "wrt")
    _check_using(c)
    if wrt is None:
        return
    if c.g.kind(wrt) == "class":
        c.fail(f"'{wrt}' is a class index: it has no derivative", c.q.wrt.where)
    elif c.q.index:
        _check_index(c, c.g.shape(wrt))


def _check_using(c: _Checker) -> None:
    """Each ``using`` entry is a leaf, a node, or another grad/jacobian question's id."""
    if c.q.using is None:
        return
    kinds = {p.id: p.kind for p in c.g.problem.questions if p.kind in ("grad", "jacobian")}
    if c.q.index:
        c.fail(f"question '{c.q.id}': 'using' and 'index' cannot be combined", c.q.using[0].where)
    for text in c.q.using:
        name = text.value
        if name == c.q.id:
            c.fail(f"question '{c.q.id}' cannot use its own answer", text.where)
        elif name not in c.g.names and name not in kinds:
            close = difflib.get_close_matches(name, (c.g.names + list(kinds))[:_SUGGEST_LIMIT], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            c.fail(f"'{name}' in using is not a symbol, node, or grad/jacobian question of this "
                   f"problem{hint}", text.where)


def _check_index(c: _Checker, shape: tuple) -> None:
    axes = list(c.q.index.values())
    if not shape:
        c.fail(f"index: a scalar has no entries to index (question '{c.q.id}')")
    elif len(shape) == 1 and "col" in axes:
        c.fail(f"index: a vector has rows only, not a 'col' (question '{c.q.id}')")


def _check_jacobian(c: _Checker, earlier: dict) -> None:
    of, wrt = c.name(c.q.of, "of"), c.name(c.q.wrt, "wrt")
    _check_using(c)
    if of is None or wrt is None:
        return
    if c.q.index:
        if len(c.g.shape(of)) != 1:
            c.fail(f"an indexed jacobian needs a vector 'of', '{of}' has shape {list(c.g.shape(of))}")
        return
    if not c.g.shape(of):
        return                      # of a scalar: a gradient, in the problem's layout
    for name in (of, wrt):
        if len(c.g.shape(name)) > 1:
            c.fail(f"the Jacobian of or with respect to the matrix '{name}' is a tensor; "
                   f"ask for a grad, or use index:")
            return


def _check_identity(c: _Checker, earlier: dict) -> None:
    lhs, rhs = c.expr(c.q.lhs, "lhs"), c.expr(c.q.rhs, "rhs")
    if lhs is not None and rhs is not None and lhs.shape != rhs.shape and lhs.shape and rhs.shape:
        c.fail(f"the two sides have different shapes {list(lhs.shape)} and {list(rhs.shape)}")


def _check_limit(c: _Checker, earlier: dict) -> None:
    q = c.q
    if q.of is not None:
        qid = q.of.value.strip()
        if earlier.get(qid) not in ("grad", "jacobian"):
            c.fail(f"'of: {qid}' must name an earlier grad or jacobian question", q.of.where)
    elif q.expr is not None:
        c.expr(q.expr, "expr")
    var = c.name(q.var, "var", _var_shapes(c.g, q))
    if var is not None and c.shape(var):
        c.fail(f"the limit variable '{var}' must be a scalar", q.var.where)
    if q.to is None:
        c.fail(f"limit question '{q.id}' needs 'to'")
    else:
        try:
            limit_target(q.to)
        except UserError as exc:
            c.errors.append(exc)
    for name, text in (q.subs or {}).items():
        if name not in c.g.names and name not in (q.vars or {}):
            c.fail(f"cannot substitute '{name}': not a symbol of this problem", text.where)
            continue
        value = c.expr(text, f"subs {name}")
        if value is not None and value.shape and value.shape != c.shape(name):
            c.fail(f"cannot substitute a value of shape {list(value.shape)} for '{name}' of shape "
                   f"{list(c.shape(name))}", text.where)


def _check_forward(c: _Checker, earlier: dict) -> None:
    c.name(c.q.of, "of")


_CHECKS = {"grad": _check_grad, "jacobian": _check_jacobian, "identity": _check_identity,
           "limit": _check_limit, "forward": _check_forward}


def validate_questions(g: Graph) -> list[UserError]:
    """Every structural mistake in the questions that ``solve`` would reject, each located.

    Only names, shapes and parsing: no SymPy work, so ``validate`` stays fast.
    """
    errors: list[UserError] = []
    earlier: dict[str, str] = {}
    for q in g.problem.questions:
        c = _Checker(g, q)
        _CHECKS[q.kind](c, earlier)
        messages: set[str] = set()
        for e in c.errors:                  # the same unknown name on both sides is one mistake
            if e.message not in messages:
                messages.add(e.message)
                errors.append(e)
        earlier[q.id] = q.kind
    return errors


_RATIONAL = re.compile(r"[+-]?\d{1,15}(/\d{1,15})?")
_DECIMAL = re.compile(r"[+-]?(\d{1,15}(\.\d{0,15})?|\.\d{1,15})(e[+-]?\d{1,2})?")
_INFINITY = {"oo": 1, "+oo": 1, "inf": 1, "+inf": 1, "infinity": 1, "+infinity": 1,
             "-oo": -1, "-inf": -1, "-infinity": -1}
LIMIT_TARGET_MAX = 10**15


def limit_target(text: Text):
    """``to:`` as SymPy: ±oo or an exact rational of at most 15 digits (never evaluated as code)."""
    raw = str(text.value).strip().lower().replace(" ", "")
    if raw in _INFINITY:
        return sympy.oo * _INFINITY[raw]
    value = None
    if _RATIONAL.fullmatch(raw) or _DECIMAL.fullmatch(raw):
        try:
            value = Fraction(raw)
        except (ValueError, ZeroDivisionError):
            value = None
    if value is None or abs(value) > LIMIT_TARGET_MAX:
        raise UserError(f"'to' must be oo, -oo or a number of at most 15 digits and magnitude 1e15 "
                        f"(an integer, a fraction p/q with q > 0, or a decimal), got {text.value[:40]!r}",
                        text.where)
    return sympy.Rational(value.numerator, value.denominator)


# ====================================================================== answering
@dataclass
class Context:
    g: Graph
    d: Derivation
    v: Domain
    answers: dict[str, Answer]

    @property
    def names(self) -> dict[str, str]:
        return self.g.problem.latex

    def parse(self, text: Text, q: QuestionSpec) -> Expr:
        return parse_expression(text.value, self.g.scope(_scope_extra(q)), text.where)


def _ok(err: float) -> bool:
    return err <= TOLERANCE


def layout_of(g: Graph, q: QuestionSpec) -> str:
    """The question's own ``layout``, else the problem's."""
    return q.layout or g.problem.layout


def answer_grad(ctx: Context, q: QuestionSpec) -> Answer:
    wrt = q.wrt.value.strip()
    lay = layout_of(ctx.g, q)
    shape = ctx.g.shape(wrt)
    full = ctx.d.full[wrt]
    if not nodes_allowed(q):             # written over the leaves only, as the question asks
        full = simplify(substitute(full, inline_nodes(ctx.g)), ctx.g.facts)
    ref = present(full, shape, lay)
    err = compare(absorb(ref, shape, lay), Derivative(ctx.g.loss, wrt), ctx.v)
    chain = chain_in_layout(ctx.g, ctx.d, wrt, lay)
    chain_err = compare(absorb(chain, shape, lay), Derivative(ctx.g.loss, wrt), ctx.v)
    ans = Answer("grad", to_ascii(ref), to_latex(ref, ctx.names), _ok(err) and _ok(chain_err), err, ref,
                 {"chain_latex": to_latex(chain, ctx.names), "chain_expr": to_ascii(chain),
                  "shape": list(shape_in(shape, lay)), "layout": lay}, layout=lay, chain=chain)
    ans.extra["lhs_latex"] = atom_latex(ctx.g, ctx.g.loss, wrt)
    if q.using is not None:
        _add_using_form(ctx, ans, q, lay, lambda e: compare(absorb(e, shape, lay),
                                                            Derivative(ctx.g.loss, wrt), ctx.v))
    if q.index:
        full = ctx.d.full[wrt]
        _add_index_form(ctx, ans, index_form(full, q.index, ctx.g), q, ctx.g.loss, wrt, full.shape)
    return ans


def chain_in_layout(g: Graph, d: Derivation, wrt: str, layout: str) -> Expr:
    """The one-step chain form of ∂loss/∂wrt in ``layout``: x (∂l/∂z)ᵀ in numerator layout.

    The upstream gradient atoms keep their meaning in the expression language (∂l/∂z
    has z's shape), so the form reads back as printed.
    """
    return present(d.chain[wrt], g.shape(wrt), layout)


def _add_using_form(ctx: Context, ans: Answer, q: QuestionSpec, lay: str, prove) -> None:
    """Write the answer in ``q.using``'s names, prove it, and make it what is printed."""
    v = vocabulary(ctx.g, ctx.d, q, lay)
    form = write_using(ctx.g, ctx.d, q, v, lay)
    err = prove(expand(form, v.atoms))
    names = {**ctx.names, **v.latex}
    ans.using, ans.atoms = form, v.atoms
    ans.extra.update({"full_expr": ans.expr, "full_latex": ans.latex,
                      "using": [t.value for t in q.using], "using_verified": _ok(err)})
    ans.expr, ans.latex = to_ascii(form), to_latex(form, names)
    ans.verified = ans.verified and _ok(err)
    ans.max_rel_error = max(ans.max_rel_error or 0.0, err)


def _add_index_form(ctx: Context, ans: Answer, form: Expr, q: QuestionSpec, of: str, wrt: str, shape,
                    diagonal: bool = False) -> None:
    """Attach the index form and prove it entry by entry against the ground truth."""
    form = simplify(form, ctx.g.facts)
    ans.extra["index_latex"] = to_latex(form, ctx.names)
    ans.extra["index_expr"] = to_ascii(form)
    rank = len(ctx.g.shape(of)) + len(ctx.g.shape(wrt))
    worst = 0.0
    for values, concrete_form in concrete_entries(form, q.index, ctx.v.dims, shape):
        pos = tuple(values.values())
        at = ((pos[0], pos[0]) if rank >= 2 else (pos[0],)) if diagonal else pos   # ∂of_j/∂wrt_j
        worst = max(worst, compare(concrete_form, Derivative(of, wrt, at), ctx.v))
    ans.extra["index_verified"] = _ok(worst)
    ans.verified = ans.verified and _ok(worst)


def answer_jacobian(ctx: Context, q: QuestionSpec) -> Answer:
    of, wrt = q.of.value.strip(), q.wrt.value.strip()
    if q.index:
        return _indexed_jacobian(ctx, q, of, wrt)
    lay = layout_of(ctx.g, q)
    shape = ctx.g.shape(wrt)
    if not ctx.g.shape(of) and len(shape) == 2:
        # of a scalar with respect to a matrix: its gradient, written in the layout
        full = ctx.d.full[wrt] if of == ctx.g.loss else derive(ctx.g, root=of).full[wrt]
        ref = present(full, shape, lay)
        truth = absorb(ref, shape, lay)
    else:
        try:
            ref = jacobian(ctx.g, ctx.d, of, wrt)
        except UserError as exc:
            raise UserError(exc.message, q.where)
        truth = ref
    err = compare(truth, Derivative(of, wrt), ctx.v)
    ans = Answer("jacobian", to_ascii(ref), to_latex(ref, ctx.names), _ok(err), err, ref,
                 {"shape": list(ref.shape), "layout": lay}, layout=lay)
    ans.extra["lhs_latex"] = atom_latex(ctx.g, of, wrt)
    if q.using is not None:
        if len(shape) == 2:
            raise UserError(f"question '{q.id}': 'using' writes a product of Jacobians; the "
                            f"derivative with respect to the matrix '{wrt}' is asked as a grad",
                            q.using[0].where)
        _add_using_form(ctx, ans, q, lay, lambda e: compare(e, Derivative(of, wrt), ctx.v))
    return ans


def _indexed_jacobian(ctx: Context, q: QuestionSpec, of: str, wrt: str) -> Answer:
    """∂of_j/∂wrt_j (or ∂of_j/∂ row j of wrt): the index names the entry of both."""
    from .ops import make
    g = ctx.g
    j = next(iter(q.index))
    seed = make("onehot", ivar(j), attr=g.shape(of)[0])
    ref = derive(g, root=of, seed=seed).full[wrt]
    form = index_form(ref, {j: "row"}, g)
    ans = Answer("jacobian", "", "", True, None, None, {"shape": list(form.shape)})
    _add_index_form(ctx, ans, form, q, of, wrt, g.shape(wrt), diagonal=True)
    ans.latex, ans.expr = ans.extra["index_latex"], ans.extra["index_expr"]
    return ans


def answer_identity(ctx: Context, q: QuestionSpec) -> Answer:
    """Show that lhs = rhs: ``expr`` is the right-hand side (what a student would write)."""
    lhs, rhs = ctx.parse(q.lhs, q), ctx.parse(q.rhs, q)
    domain = ctx.v.with_vars(_var_shapes(ctx.g, q))
    for side, text in ((lhs, q.lhs), (rhs, q.rhs)):
        if not domain.defined(side):
            raise UserError("this side is not a finite real number at the sampled points (a division "
                            "by zero, or a log or square root outside its domain)", text.where)
    err = compare(lhs, rhs, domain)
    latex = f"{to_latex(lhs, ctx.names)} = {to_latex(rhs, ctx.names)}"
    return Answer("identity", to_ascii(rhs), latex, _ok(err), err, rhs,
                  {"lhs": to_ascii(lhs), "rhs": to_ascii(rhs), "lhs_latex": to_latex(lhs, ctx.names),
                   "rhs_latex": to_latex(rhs, ctx.names)})


def answer_limit(ctx: Context, q: QuestionSpec) -> Answer:
    ref = ctx.answers[q.of.value.strip()].reference if q.of is not None else ctx.parse(q.expr, q)
    var = q.var.value.strip()
    target = limit_target(q.to)
    v = sympy.Symbol(var, real=True)
    free = {n: leaf_symbols(n, concrete(s, ctx.g.dims), None) for n, s in _var_shapes(ctx.g, q).items()}
    free[var] = v
    exp = Expansion(ctx.g, free=free)           # the problem's own dims: a limit's value may depend on them
    subs = {}
    for name, text in (q.subs or {}).items():
        syms = np.ravel(np.asarray(exp.env[name], dtype=object))
        value = np.ravel(np.asarray(exp.expand(ctx.parse(text, q)), dtype=object))
        subs.update(zip(syms, np.broadcast_to(value, syms.shape)))
    body = np.asarray(exp.expand(ref), dtype=object)
    out = np.empty(body.shape, dtype=object)
    for idx in np.ndindex(*body.shape):
        body[idx] = sympy.sympify(body[idx]).xreplace(subs)
        out[idx] = sympy.limit(body[idx], v, target)
    result = out[()] if out.shape == () else sympy.Matrix(out.reshape(-1, 1) if out.ndim == 1 else out)
    err = _limit_check(body, out, v, target)
    direction = r"\infty" if target is sympy.oo else (r"-\infty" if target is -sympy.oo else sympy.latex(target))
    given = [(name, ctx.parse(text, q)) for name, text in (q.subs or {}).items()]
    at = r",\ ".join(f"{to_latex(sym(n), ctx.names)} = {to_latex(e, ctx.names)}" for n, e in given)
    body_latex = to_latex(ref, ctx.names)
    if at:
        body_latex = rf"\left.{body_latex}\right|_{{{at}}}"
    latex = rf"\lim_{{{to_latex(sym(var), ctx.names)} \to {direction}}} {body_latex} = {sympy.latex(result)}"
    value = _plain(result)
    meaning = limit_meaning(value)
    where = ", ".join(f"{n} = {to_ascii(e)}" for n, e in given)
    text = f"{var} -> {str(target).replace('oo', 'inf')}" + (f" with {where}" if where else "")
    return Answer("limit", _limit_expr(result), latex, err is not None and err < 1e-6, err, None,
                  {"value": value, "vanishes": value == 0 if isinstance(value, (int, float)) else None,
                   "subs": {n: to_ascii(e) for n, e in given}, "approach": text, "meaning": meaning})


def limit_meaning(value) -> str:
    """What a limit of a gradient means for learning, in words."""
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(x, (int, float)) for x in values):
        return "the limit is not a finite number"
    if all(x == 0 for x in values):
        return "the gradient vanishes: learning stalls there"
    mags = {abs(x) for x in values}
    if mags == {1} or mags == {0, 1}:
        return "the gradient stays at magnitude 1: learning continues there"
    return f"the gradient tends to {value}: it does not vanish"


def _limit_expr(result) -> str:
    """The limit in the expression language where it is a number or ±oo (printed as 1/0-free text)."""
    return str(result)


def _limit_check(body, out, v, target) -> float | None:
    """A sanity check on SymPy: the expression near the limit point, in 40 digits.

    A finite limit L: |f(near) − L| at 10⁻¹² right of the target (or at ±10¹²).
    An infinite limit: f has L's sign and grows in magnitude along points
    approaching the target.  None when SymPy's answer is not a real number or ±∞.
    """
    def approach(k: int):
        step = sympy.Integer(10) ** k
        if target is sympy.oo or target is -sympy.oo:
            return [step * (1 if target is sympy.oo else -1)]
        return [target + 1 / step]          # sympy.limit approaches from the right by default

    def at(expr, z):
        val = expr.xreplace({v: z}).evalf(40)
        if val.free_symbols or not val.is_real or not val.is_finite:
            return None
        return val

    worst = 0.0
    for idx in np.ndindex(*body.shape):
        lim, f = out[idx], body[idx]
        if lim in (sympy.oo, -sympy.oo):
            sign = 1 if lim is sympy.oo else -1
            for side in range(len(approach(1))):
                seq = [at(f, approach(k)[side]) for k in (4, 8, 12)]
                if any(s is None or s * sign <= 0 for s in seq) or not (seq[0] * sign < seq[1] * sign
                                                                       < seq[2] * sign):
                    return float("inf")
            continue
        if not lim.is_number or not lim.is_real or not lim.is_finite:
            return None
        for z in approach(12):
            val = at(f, z)
            if val is None:
                return None
            worst = max(worst, abs(float(val - lim)) / max(1.0, abs(float(lim))))
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
    of = q.of.value.strip()
    ref = inline(ctx.g, of)
    err = compare(ref, ctx.g.ref(of), ctx.v)
    return Answer("forward", to_ascii(ref), to_latex(ref, ctx.names), _ok(err), err, ref)


def inline(g: Graph, name: str) -> Expr:
    """A node's expression in terms of the leaves only."""
    if name in g.leaves:
        return g.leaves[name]
    return inline_nodes(g)[g.ref(name)]


def nodes_allowed(q: QuestionSpec) -> bool:
    """Whether ``q``'s answer may use intermediate nodes (``allow: {intermediate: false}`` says no)."""
    allow = q.allow or {}
    return allow.get("nodes", allow.get("intermediate", True))


KINDS = {
    "grad": answer_grad,
    "jacobian": answer_jacobian,
    "identity": answer_identity,
    "limit": answer_limit,
    "forward": answer_forward,
}


def answer_all(g: Graph, d: Derivation, v: Domain, errors: list | None = None) -> dict[str, Answer]:
    """Answers in question order (limits may refer to earlier questions).

    The questions are validated first; with ``errors`` every mistake is appended there
    (and nothing is answered), otherwise they are raised together.
    """
    mistakes = validate_questions(g)
    if mistakes:
        if errors is None:
            raise UserErrors(mistakes)
        errors.extend(mistakes)
        return {}
    ctx = Context(g, d, v, {})
    for q in g.problem.questions:
        try:
            ans = ctx.answers[q.id] = KINDS[q.kind](ctx, q)
            ans.extra["points"] = q.points
            ans.extra["prompt"] = q.prompt
        except UserError as exc:
            if errors is None:
                raise
            errors.append(exc)
    return ctx.answers
