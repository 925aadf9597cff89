"""A solution sheet as data: every section, every derivation step, as LaTeX math and plain text.

:func:`build_sheet` turns a :class:`~derivkit.solve.Solution` into a :class:`Sheet`.
The derivation steps come from what the engine recorded while deriving
(``Derivation.log``: rule, before, after, what was substituted; ``Derivation.steps``:
which rules each contribution went through); nothing is re-derived here.  The
LaTeX and the Markdown templates render the same :class:`Sheet`, and the grader can
show a question's :class:`Line` s as feedback.

Math strings are made by derivkit's printers with the problem's display names
filtered by :func:`~derivkit.sheets.texsafe.safe_names`; plain strings (titles,
prompts, rule names) are escaped by the templates.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import sympy

from ..derive import jacobian
from ..errors import UserError
from ..expr import Expr, concrete, substitute, sym
from ..indexform import index_form
from ..parse import parse_expression
from ..printing import latex_name, to_latex
from ..simplify import simplify
from . import rules as R
from .linebreak import split
from .texsafe import math_ok, safe_names
from .training import Training, training_section

#: a Jacobian is written out entry by entry when it has at most this many entries
WRITE_OUT_ENTRIES = 16
_WRITE_OUT_ENTRY_CHARS = 36


@dataclass
class Line:
    """One step: ``lhs = rhs`` by ``rule``; ``rhs`` is split into printed lines."""

    lhs: str
    rhs: list[str]
    rule: R.Rule | None = None
    substituted: list[tuple[str, str]] = field(default_factory=list)   # (∂l/∂m, its form)

    def rhs_text(self) -> str:
        return " ".join(self.rhs)


@dataclass
class QuestionBlock:
    id: str
    kind: str
    points: float
    prompt: str | None          # untrusted text with $…$ math
    heading: str                # LaTeX math naming what is asked
    lines: list[Line] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)      # the boxed matrix form, split
    answer_lhs: str = ""
    index_answer: str | None = None                      # LaTeX math, or None
    index_lhs: str = ""
    verified: bool = True
    error: float | None = None
    notes: list[str] = field(default_factory=list)       # plain text


@dataclass
class Layer:
    name: str            # math
    definition: str      # math ("" for a leaf)
    inputs: str          # math, comma separated
    shape: str           # math
    role: str            # plain


@dataclass
class GraphNode:
    key: str
    label: str           # math
    x: float
    y: float
    style: str           # input | target | param | node | loss


@dataclass
class Local:
    lhs: str
    general: list[str]
    written: str | None
    rule: R.Rule | None
    note: str = ""


@dataclass
class LimitRow:
    condition: str        # math
    value: str            # math
    meaning: str          # plain
    question: str


@dataclass
class GradientRow:
    lhs: str
    rhs: list[str]
    error: float
    verified: bool


@dataclass
class Sheet:
    id: str
    title: str
    description: str | None
    dims: list[tuple[str, int]]
    layers: list[Layer]
    nodes: list[GraphNode]
    edges: list[tuple[str, str]]
    forward: list[tuple[str, str]]
    local: list[Local]
    questions: list[QuestionBlock]
    limits: list[LimitRow]
    gradients: list[GradientRow]
    verification: dict
    training: Training | None
    answers: bool = True


# ====================================================================== building
class _Printer:
    """LaTeX of expressions and derivative atoms with the problem's safe display names."""

    def __init__(self, sol):
        self.g = sol.graph
        self.names = safe_names(sol.problem.latex)

    def __call__(self, e: Expr) -> str:
        return to_latex(e, self.names)

    def name(self, n: str) -> str:
        return self.names.get(n) or latex_name(n)

    def partial(self, of: str, wrt: str) -> str:
        return rf"\frac{{\partial {self.name(of)}}}{{\partial {self.name(wrt)}}}"

    def shape(self, shape: tuple) -> str:
        if not shape:
            return r"\mathbb{R}"
        dims = [latex_name(d) if isinstance(d, str) else str(d) for d in shape]
        return r"\mathbb{R}^{" + r" \times ".join(dims) + "}"


def build_sheet(sol, answers: bool = True) -> Sheet:
    """Everything a sheet shows for ``sol``; with ``answers=False`` only what a hand-out needs."""
    p = _Printer(sol)
    g, prob = sol.graph, sol.problem
    layers = _layers(g, p)
    nodes, edges = _drawing(g, p)
    forward = [(p.name(n), p(e)) for n, e in g.nodes.items()]
    local = _locals(sol, p) if answers else []
    questions = [_question(sol, q, p) for q in prob.questions]
    limits = [row for q in prob.questions if q.kind == "limit" and q.id in sol.answers
              for row in [_limit_row(sol, q, p)]] if answers else []
    gradients = [GradientRow(p.partial(g.loss, n), split(p(gr.named)), gr.error, gr.verified)
                 for n, gr in sol.gradients.items()] if answers else []
    return Sheet(
        id=prob.id, title=prob.title, description=prob.description,
        dims=list(prob.dims.items()), layers=layers, nodes=nodes, edges=edges, forward=forward,
        local=local, questions=questions, limits=limits, gradients=gradients,
        verification=_verification(sol) if answers else {},
        training=training_section(sol.train) if answers and sol.train else None, answers=answers)


def _layers(g, p: _Printer) -> list[Layer]:
    out = [Layer(p.name(n), "", "", p.shape(g.shape(n)), g.role(n) + (f" ({g.kind(n)})" if g.kind(n) else ""))
           for n in g.leaves]
    for n, e in g.nodes.items():
        args = _direct_names(e)
        out.append(Layer(p.name(n), p(e), ", ".join(p.name(a) for a in args), p.shape(g.shape(n)),
                         "loss" if n == g.loss else "node"))
    return out


def _direct_names(e: Expr) -> list[str]:
    seen: list[str] = []
    for x in e.walk():
        if x.op == "sym" and x.attr not in seen:
            seen.append(x.attr)
    return seen


def _drawing(g, p: _Printer) -> tuple[list[GraphNode], list[tuple[str, str]]]:
    """Positions of the computational graph: one column per depth, leaves just before their first use."""
    level: dict[str, int] = {}
    for n, e in g.nodes.items():
        level[n] = 1 + max((level.get(a, 0) for a in _direct_names(e)), default=0)
    for leaf in g.leaves:
        users = [level[n] for n, e in g.nodes.items() if leaf in _direct_names(e)]
        level[leaf] = (min(users) - 1) if users else 0
    columns: dict[int, list[str]] = {}
    for n in list(g.nodes) + list(g.leaves):          # nodes first: they sit on the main row
        columns.setdefault(level[n], []).append(n)
    nodes = []
    for lev, names in sorted(columns.items()):
        k = len(names)
        for i, n in enumerate(names):
            # 0, then alternately above and below the main row
            offset = 0 if i == 0 else ((i + 1) // 2) * (1 if i % 2 else -1)
            style = "loss" if n == g.loss else ("node" if n in g.nodes else g.role(n))
            nodes.append(GraphNode(_key(n), p.name(n), 2.3 * lev, 1.25 * offset, style))
        del k
    edges = [(_key(a), _key(n)) for n, e in g.nodes.items() for a in _direct_names(e)]
    return nodes, edges


def _key(name: str) -> str:
    return "n" + re.sub(r"[^A-Za-z0-9]", "x", name)


# ---------------------------------------------------------------- local derivatives
def _locals(sol, p: _Printer) -> list[Local]:
    g, d = sol.graph, sol.derivation
    out = []
    for n, e in g.nodes.items():
        for a in _direct_names(e):
            if a not in d.steps or g.kind(a) == "class":
                continue
            via = [s for s in d.steps[a] if s.via == n]
            rule = _rule_of_steps(via, g, n)
            if n == g.loss and via:          # the gradient itself: the upstream gradient is 1
                contrib = simplify(_sum(s.expr for s in via), g.facts)
                out.append(Local(p.partial(n, a), split(p(contrib)), _written(g, contrib, p), rule))
            elif len(g.shape(a)) <= 1 and len(g.shape(n)) <= 1:
                try:
                    J = simplify(jacobian(g, None, n, a), g.facts)
                except UserError:
                    continue
                out.append(Local(p.partial(n, a), split(p(J)), _written(g, J, p), rule))
            elif via:
                contrib = simplify(_sum(s.expr for s in via), g.facts)
                out.append(Local(p.partial(g.loss, a), split(p(contrib)), None, rule,
                                 note=f"{a} is a matrix: its Jacobian is a tensor, so the sheet gives "
                                      f"the vector-Jacobian product through {n}"))
    return out


def _sum(parts):
    parts = list(parts)
    total = parts[0]
    for x in parts[1:]:
        total = total + x
    return total


def _rule_of_steps(steps, g, via: str) -> R.Rule:
    ops: list[str] = []
    for s in steps:
        for text in s.rules:
            op = R.op_of_rule_text(text)
            if op:
                ops.append(op)
    if not ops and via in g.nodes:
        ops = [g.nodes[via].op] if g.nodes[via].op in R.RULES else []
    return R.Rule(R.combine(ops) or "definition", "", "")


def _written(g, J: Expr, p: _Printer) -> str | None:
    """``J`` entry by entry at the problem's dims, as a bmatrix (None when large)."""
    shape = concrete(J.shape, g.dims)
    if not shape or math.prod(shape) > WRITE_OUT_ENTRIES or (len(shape) == 1 and shape[0] > 6):
        return None
    from ..verify import Expansion, leaf_symbols
    free = {n: leaf_symbols(n, concrete(g.shape(n), g.dims), None) for n in g.nodes}
    syms = {}
    for n in g.names:
        base = _entry_base(p.name(n))
        arr = leaf_symbols(n, concrete(g.shape(n), g.dims), g.kind(n) if n in g.leaves else None)
        if isinstance(arr, sympy.Symbol):
            syms[arr] = base
            continue
        for idx in np.ndindex(*arr.shape):
            syms[arr[idx]] = f"{base}_{{{''.join(str(i + 1) for i in idx)}}}"
    try:
        values = np.asarray(Expansion(g, free=free).expand(J), dtype=object)
    except Exception:                    # an op without a SymPy form: keep the general form only
        return None
    if values.ndim == 1:
        values = values.reshape(-1, 1)
    rows = []
    for i in range(values.shape[0]):
        cells = []
        for j in range(values.shape[1]):
            cell = sympy.latex(sympy.factor_terms(sympy.sympify(values[i, j])), symbol_names=syms)
            if len(cell) > _WRITE_OUT_ENTRY_CHARS:
                return None
            cells.append(cell)
        rows.append(" & ".join(cells))
    tex = r"\begin{bmatrix} " + r" \\ ".join(rows) + r" \end{bmatrix}"
    return tex if math_ok(tex, environments=True) else None


def _entry_base(name_tex: str) -> str:
    """``\\mathbf{y}`` → ``y``: entries are scalars, written in italic."""
    m = re.fullmatch(r"\\(?:mathbf|boldsymbol|vec)\{(.*)\}", name_tex)
    inner = m.group(1) if m else name_tex
    inner = re.sub(r"\\(?:mathbf|boldsymbol)\{([^{}]*)\}", r"\1", inner)
    return "{" + inner + "}" if "_" in inner or "^" in inner else inner


# ---------------------------------------------------------------- questions
def _question(sol, q, p: _Printer) -> QuestionBlock:
    g = sol.graph
    heading = {
        "grad": lambda: p.partial(g.loss, q.wrt.value.strip()),
        "jacobian": lambda: p.partial(q.of.value.strip(), q.wrt.value.strip()),
        "forward": lambda: p.name(q.of.value.strip()),
    }.get(q.kind, lambda: "")()
    block = QuestionBlock(q.id, q.kind, q.points, q.prompt, heading)
    a = sol.answers.get(q.id)
    if a is None:
        return block
    block.verified, block.error = a.verified, a.max_rel_error
    build = {"grad": _grad_lines, "jacobian": _jacobian_lines, "identity": _identity_lines,
             "limit": _limit_lines, "forward": _forward_lines}[q.kind]
    build(sol, q, a, p, block)
    if "index_latex" in a.extra:
        block.index_answer = _safe_or_text(a.extra["index_latex"], a.extra.get("index_expr", ""))
    if q.index and q.kind in ("grad", "jacobian"):
        j = next(iter(q.index))
        wrt = q.wrt.value.strip()
        if q.kind == "grad":
            block.index_lhs = rf"\frac{{\partial {p.name(g.loss)}}}{{\partial {_row_name(g, wrt, j, p)}}}"
        block.heading = block.index_lhs or block.heading
    return block


def _safe_or_text(tex: str, ascii_form: str) -> str:
    if math_ok(tex):
        return tex
    return r"\texttt{" + "".join(c if c.isalnum() or c in " +-*/().,=" else " " for c in ascii_form) + "}"


def _grad_lines(sol, q, a, p, block: QuestionBlock) -> None:
    g, d = sol.graph, sol.derivation
    n = q.wrt.value.strip()
    lhs = p.partial(g.loss, n)
    block.answer_lhs = lhs
    if n == g.loss:
        block.lines.append(Line(lhs, ["1"], R.SELF))
        block.answer = ["1"]
        return
    steps = d.steps.get(n, [])
    vias = []
    for s in steps:
        if s.via not in vias:
            vias.append(s.via)
    generic = [_generic_term(g, n, m, p) for m in vias if m != g.loss]
    if generic and len(g.shape(n)) <= 1:
        terms = generic + ([r"\left.\frac{\partial " + p.name(g.loss) + r"}{\partial " + p.name(n)
                            + r"}\right|_{" + p.name(g.loss) + "}"] if g.loss in vias else [])
        users = ", ".join(p.name(m) for m in vias)
        block.lines.append(Line(lhs, split(" + ".join(terms)),
                                R.Rule("chain rule", "", rf"{p.name(n)} \text{{ is used by }} {users}")))
        for m in vias:
            if m == g.loss or len(g.shape(m)) > 1:
                continue
            try:
                J = simplify(jacobian(g, None, m, n), g.facts)
            except UserError:
                continue
            rule = _rule_of_steps([s for s in steps if s.via == m], g, m)
            block.lines.append(Line(p.partial(m, n), split(p(J)),
                                    R.Rule(rule.name, "", f"{p.name(m)} = {p(g.nodes[m])}")))
    log = d.log.get(n, [])
    chain_after = next((r.after for r in log if r.rule == "simplify" and r.before == log[0].after),
                       log[0].after if log else d.chain[n])
    rule = _rule_of_steps(steps, g, vias[0] if vias else n)
    via_defs = ", ".join(f"{p.name(m)} = {p(g.nodes[m])}" for m in vias if m in g.nodes)
    name = "substituting the local derivatives" if block.lines else f"chain rule ({rule.name})"
    if block.lines:
        name += f" ({rule.name})"
    block.lines.append(Line(lhs if not block.lines else "", split(p(chain_after)),
                            R.Rule(name, "", via_defs if not block.lines or len(g.shape(n)) > 1 else "")))
    for r in log:
        if r.rule == "substitute":
            subs = [(p(k), p(v)) for k, v in r.substituted.items()]
            detail = ",\\ ".join(f"{k} = {v}" for k, v in subs)
            block.lines.append(Line("", split(p(r.after)), R.Rule(R.SUBSTITUTE.name, "", detail), subs))
        elif r.rule == "simplify" and r.before != log[0].after:
            block.lines.append(Line("", split(p(r.after)), R.SIMPLIFY))
    _dedupe(block)
    block.answer = split(p(d.named[n]))


def _generic_term(g, n: str, m: str, p: _Printer) -> str:
    dm, dl = p.partial(m, n), p.partial(g.loss, m)
    if not g.shape(m) or not g.shape(n):
        return f"{dm} {dl}" if g.shape(m) else f"{dl} {dm}"
    return rf"\left({dm}\right)^{{\top}} {dl}"


def _dedupe(block: QuestionBlock) -> None:
    """Drop a step whose right-hand side repeats the one before it."""
    out: list[Line] = []
    for ln in block.lines:
        if out and ln.lhs == "" and ln.rhs == out[-1].rhs:
            continue
        out.append(ln)
    block.lines = out


def _jacobian_lines(sol, q, a, p, block: QuestionBlock) -> None:
    g = sol.graph
    of, wrt = q.of.value.strip(), q.wrt.value.strip()
    if of in g.nodes:
        block.lines.append(Line(p.name(of), split(p(g.nodes[of])), R.DEFINITION))
    lhs = p.partial(of, wrt)
    block.answer_lhs = lhs
    if q.index:
        j = next(iter(q.index))
        block.index_lhs = rf"\frac{{\partial {_entry_base(p.name(of))}_{{{j}}}}}{{\partial {_row_name(g, wrt, j, p)}}}"
        if of in g.nodes:
            row = simplify(index_form(g.nodes[of], {j: "row"}, g), g.facts)
            block.lines.append(Line(f"{_entry_base(p.name(of))}_{{{j}}}", split(p(row)),
                                    R.Rule("the same, entry " + j)))
            block.lines.append(Line(block.index_lhs, [a.extra.get("index_latex", "")],
                                    R.Rule("differentiating entry " + j)))
        return
    ref = a.reference
    top = g.nodes[of].op if of in g.nodes else None
    rule = R.rule_of_op(top) if top in R.RULES else R.CHAIN
    block.lines.append(Line(lhs, split(p(ref)), R.Rule(rule.name, rule.formula)))
    written = _written(g, ref, p)
    if written:
        block.lines.append(Line("", [written], R.Rule("written out at the problem's sizes")))
    block.answer = split(p(ref))


def _row_name(g, wrt: str, j: str, p: _Printer) -> str:
    base = _entry_base(p.name(wrt))
    if len(g.shape(wrt)) == 2:
        return rf"\mathbf{{{base.lower() if len(base) == 1 else base}}}_{{{j}}}"
    return f"{base}_{{{j}}}"


def _identity_lines(sol, q, a, p, block: QuestionBlock) -> None:
    """lhs = (definitions) = (one fraction) = … = rhs, each step by SymPy on the trusted expressions."""
    g = sol.graph
    scope_extra = {n: sym(n, tuple(s)) for n, s in (q.vars or {}).items()}
    lhs = parse_expression(q.lhs.value, g.scope(scope_extra), q.lhs.where)
    rhs = parse_expression(q.rhs.value, g.scope(scope_extra), q.rhs.where)
    L, Rt = p(lhs), p(rhs)
    block.heading = f"{L} = {Rt}"
    chain_l = _sympy_chain(g, q, lhs)
    chain_r = _sympy_chain(g, q, rhs)
    if chain_l is None or chain_r is None or chain_l[-1][0] != chain_r[-1][0]:
        block.lines.append(Line(L, [Rt], R.Rule("checked numerically at random points")))
        block.answer_lhs, block.answer = L, [Rt]
        return
    block.lines.append(Line(L, [chain_l[0][1]], R.Rule("writing out the definitions")))
    for expr, tex, rule in chain_l[1:]:
        block.lines.append(Line("", [tex], R.Rule(rule)))
    # then the right-hand side's own steps, read backwards: the same common form, expanded back
    block.lines.append(Line("", [chain_r[0][1]], R.Rule("the same form, expanded back as the right-hand side")))
    block.lines.append(Line("", [Rt], R.Rule("the definitions, read backwards")))
    _dedupe(block)
    block.answer_lhs, block.answer = L, [Rt]


def _sympy_chain(g, q, e: Expr):
    """[(sympy expr, latex, rule)]: the definitions, then one fraction (cancelled)."""
    from ..verify import Expansion
    free = {n: sympy.Symbol(n, real=True) for n, s in (q.vars or {}).items() if not tuple(s)}
    if len(free) != len(q.vars or {}):
        return None
    try:
        x = sympy.sympify(Expansion(g, free=free).expand(e))
    except Exception:
        return None
    if not isinstance(x, sympy.Expr) or sympy.count_ops(x) > 60:
        return None
    names = {s: latex_name(str(s)) for s in x.free_symbols}
    out = [(x, sympy.latex(x, symbol_names=names), "definitions")]
    c = sympy.cancel(x)
    out.append((c, sympy.latex(c, symbol_names=names), "one fraction, common factors cancelled"))
    return out


def _limit_subs(sol, q) -> Expr:
    g = sol.graph
    ref = sol.answers[q.of.value.strip()].reference if q.of is not None else parse_expression(
        q.expr.value, g.scope(), q.expr.where)
    scope = g.scope({n: sym(n, tuple(s)) for n, s in (q.vars or {}).items()})
    mapping = {g.ref(n) if n in g.names else sym(n): parse_expression(t.value, scope, t.where)
               for n, t in (q.subs or {}).items()}
    return ref, simplify(substitute(ref, mapping), g.facts)


def _limit_target_tex(q) -> str:
    raw = str(q.to.value).strip().lower().replace(" ", "")
    if raw in ("oo", "inf", "+oo", "+inf", "infinity", "+infinity"):
        return r"\infty"
    if raw in ("-oo", "-inf", "-infinity"):
        return r"-\infty"
    return raw if re.fullmatch(r"[0-9./+-]+", raw) else r"\text{?}"


def _limit_lines(sol, q, a, p, block: QuestionBlock) -> None:
    ref, body = _limit_subs(sol, q)
    var = p.name(q.var.value.strip())
    target = _limit_target_tex(q)
    subs = ", ".join(f"{p.name(n)} = {_safe_or_text(p(parse_expression(t.value, sol.graph.scope(), t.where)), t.value)}"
                     for n, t in (q.subs or {}).items())
    of = q.of.value.strip() if q.of is not None else None
    head = sol.answers[of] if of else None
    lhs = _question_lhs(sol, of, p) if of else p(ref)
    block.lines.append(Line(lhs, split(p(ref)), R.Rule(f"from question {of}" if of else "the expression")))
    if subs:
        block.lines.append(Line("", split(p(body)), R.Rule("substituting", "", subs)))
    value = _value_tex(a.extra.get("value"), a.expr)
    block.heading = rf"\lim_{{{var} \to {target}}} {lhs}" + (rf"\Big|_{{{subs}}}" if subs else "")
    block.answer_lhs = block.heading
    block.answer = [value]
    block.notes.append(_meaning(a.extra.get("value")))
    del head


def _question_lhs(sol, qid: str, p: _Printer) -> str:
    q = next((x for x in sol.problem.questions if x.id == qid), None)
    if q is not None and q.kind == "grad":
        return p.partial(sol.graph.loss, q.wrt.value.strip())
    if q is not None and q.kind == "jacobian":
        return p.partial(q.of.value.strip(), q.wrt.value.strip())
    return r"\text{" + re.sub(r"[^A-Za-z0-9 ]", " ", qid) + "}"


def _value_tex(value, expr: str) -> str:
    if isinstance(value, bool) or value is None:
        return _safe_or_text(_oo(expr), expr)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isinf(value):
            return r"\infty" if value > 0 else r"-\infty"
        return str(int(value)) if float(value).is_integer() else f"{value:.6g}"
    if isinstance(value, list):
        return r"\begin{bmatrix} " + r" \\ ".join(_value_tex(v, str(v)) for v in value) + r" \end{bmatrix}"
    return _safe_or_text(_oo(str(value)), str(value))


def _oo(text: str) -> str:
    return {"oo": r"\infty", "-oo": r"-\infty", "zoo": r"\tilde{\infty}"}.get(text.strip(), text)


def _meaning(value) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value == 0:
            return "the gradient vanishes: the unit saturates and learning stalls"
        if math.isinf(value):
            return "the gradient grows without bound"
        return f"the gradient does not vanish (it tends to {value:g}): learning continues"
    return "the limit depends on the other quantities"


def _limit_row(sol, q, p: _Printer) -> LimitRow:
    a = sol.answers[q.id]
    var = p.name(q.var.value.strip())
    subs = ", ".join(f"{p.name(n)} = {_safe_or_text(p(parse_expression(t.value, sol.graph.scope(), t.where)), t.value)}"
                     for n, t in (q.subs or {}).items())
    cond = f"{var} \\to {_limit_target_tex(q)}" + (f",\\ {subs}" if subs else "")
    return LimitRow(cond, _value_tex(a.extra.get("value"), a.expr), _meaning(a.extra.get("value")), q.id)


def _forward_lines(sol, q, a, p, block: QuestionBlock) -> None:
    g = sol.graph
    of = q.of.value.strip()
    lhs = p.name(of)
    block.answer_lhs = lhs
    if of in g.nodes:
        block.lines.append(Line(lhs, split(p(g.nodes[of])), R.DEFINITION))
        block.lines.append(Line("", split(p(a.reference)), R.Rule("substituting the earlier layers")))
    _dedupe(block)
    block.answer = split(p(a.reference))


# ---------------------------------------------------------------- verification and training
def _verification(sol) -> dict:
    gc = sol.gradcheck.to_json() if sol.gradcheck is not None else {}
    rows = [(name, err) for name, err in {**gc.get("per_leaf", {}), **gc.get("per_node", {})}.items()]
    return {"ground_truth": "sympy.diff of the loss expanded into scalars" if sol.ground_truth == "diff"
            else "the scalar chain rule, node by node",
            "verified": sol.verified, "gradcheck": bool(gc), "passed": gc.get("passed"),
            "max_rel_error": gc.get("max_rel_error"), "threshold": gc.get("threshold"),
            "eps": gc.get("eps"), "points": gc.get("points"), "rows": rows}
