"""Human-readable renderings of a :class:`~derivkit.solve.Solution`: text and LaTeX fragments."""
from __future__ import annotations

from .printing import latex_name


def _mark(ok: bool) -> str:
    return "verified" if ok else "NOT VERIFIED"


def _loss(x) -> str:
    """A loss to four places; a diverged one (None or not finite) as 'diverged'."""
    return "diverged" if x is None or x != x or x in (float("inf"), float("-inf")) else f"{x:.4f}"


def text_report(sol) -> str:
    p, g = sol.problem, sol.graph
    lines = [f"{p.title}  [{p.id}]", "dims: " + ", ".join(f"{k}={v}" for k, v in p.dims.items()), ""]
    lines.append(f"Gradients of the loss (matrix form, over named nodes; {p.layout} layout):")
    width = max((len(n) for n in sol.gradients), default=1)
    for name, gr in sol.gradients.items():
        lines.append(f"  d{g.loss}/d{name:<{width}} = {gr.expr}    [{_mark(gr.verified)}, "
                     f"rel. error {gr.error:.1e}]")
    if sol.answers:
        lines += ["", "Questions:"]
        for qid, a in sol.answers.items():
            lines.append(f"  {qid} ({a.kind}, {_points(a)}): {a.expr}    [{_mark(a.verified)}]")
            if a.extra.get("prompt"):
                lines.append(f"      prompt: {a.extra['prompt']}")
            if "full_expr" in a.extra:
                lines.append(f"      written out: {a.extra['full_expr']}")
            if "index_expr" in a.extra and a.kind == "grad":
                lines.append(f"      index form: {a.extra['index_expr']}")
            if a.kind == "limit":
                lines.append(f"      as {a.extra['approach']}: {a.extra['meaning']}")
    if sol.gradcheck:
        gc = sol.gradcheck
        lines += ["", f"Gradient check (central differences, float64): max relative error "
                      f"{gc.max_rel_error:.2e} -> {'passed' if gc.passed else 'FAILED'}"]
    if sol.train:
        t = sol.train
        acc = t.accuracy
        lines += ["", f"Training: final loss {_loss(t.final_loss)}" + (f", validation accuracy {acc:.3f}"
                                                                     if acc is not None else "")]
        lines.append(f"  loss per epoch: {', '.join(_loss(x) for x in t.loss)}")
        lines.append(f"  expectation: {'met' if t.passed else 'MISSED'}")
    return "\n".join(lines)


def _points(a) -> str:
    pts = a.extra.get("points", 1)
    pts = int(pts) if float(pts).is_integer() else pts
    return f"{pts} point" + ("" if pts == 1 else "s")


def latex_fragments(sol) -> str:
    """One align* with every gradient, then each question: its prompt and points, then
    complete lines (left-hand side = matrix form; = written-out form; index form)."""
    g = sol.graph
    loss = sol.problem.latex.get(g.loss) or latex_name(g.loss)
    rows = []
    for name, gr in sol.gradients.items():
        var = sol.problem.latex.get(name) or latex_name(name)
        rows.append(rf"\frac{{\partial {loss}}}{{\partial {var}}} &= {gr.latex}")
    out = [f"% derivkit solve --format latex: {sol.problem.id} ({sol.problem.layout} layout)",
           r"\begin{align*}", " \\\\\n".join(rows), r"\end{align*}"]
    questions = {q.id: q for q in sol.problem.questions}
    for qid, a in sol.answers.items():
        head = rf"\noindent\textbf{{{qid.replace('_', chr(92) + '_')}}} ({_points(a)})."
        if a.extra.get("prompt"):
            head += " " + a.extra["prompt"]
        out += [f"% question {qid} ({a.kind})", head, r"\begin{align*}",
                " \\\\\n".join(answer_lines(sol, questions[qid], a)), r"\end{align*}"]
    return "\n".join(out)


def answer_lines(sol, q, a) -> list[str]:
    """A question's answer as complete align* rows: left-hand side &= right-hand side."""
    names = sol.problem.latex
    if a.kind in ("grad", "jacobian") and "lhs_latex" in a.extra and a.latex != a.extra.get("index_latex"):
        rows = [rf"{a.extra['lhs_latex']} &= {a.latex}"]
        if "full_latex" in a.extra:
            rows.append(rf"&= {a.extra['full_latex']}")
        if a.kind == "grad" and "index_latex" in a.extra:
            wrt = q.wrt.value.strip()
            var = names.get(wrt) or latex_name(wrt)
            loss = names.get(sol.graph.loss) or latex_name(sol.graph.loss)
            rows.append(rf"\frac{{\partial {loss}}}{{\partial {var}_{{{''.join(q.index)}}}}} &= "
                        f"{a.extra['index_latex']}")
        return rows
    if a.kind == "identity":
        return [rf"{a.extra['lhs_latex']} &= {a.extra['rhs_latex']}"]
    if a.kind == "forward":
        of = q.of.value.strip()
        return [rf"{names.get(of) or latex_name(of)} &= {a.latex}"]
    if a.kind == "limit":
        head, _, value = a.latex.rpartition(" = ")        # the last '=' (a substitution has one too)
        return [f"{head} &= {value}", rf"&\text{{{a.extra['meaning']}}}"]
    return [a.latex]
