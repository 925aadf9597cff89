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
    lines.append("Gradients of the loss (matrix form, over named nodes):")
    width = max((len(n) for n in sol.gradients), default=1)
    for name, gr in sol.gradients.items():
        lines.append(f"  d{g.loss}/d{name:<{width}} = {gr.expr}    [{_mark(gr.verified)}, "
                     f"rel. error {gr.error:.1e}]")
    if sol.answers:
        lines += ["", "Questions:"]
        for qid, a in sol.answers.items():
            lines.append(f"  {qid} ({a.kind}): {a.expr}    [{_mark(a.verified)}]")
            if "index_expr" in a.extra and a.kind == "grad":
                lines.append(f"      index form: {a.extra['index_expr']}")
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


def latex_fragments(sol) -> str:
    """One align* environment with every gradient, then one per question."""
    g = sol.graph
    loss = sol.problem.latex.get(g.loss) or latex_name(g.loss)
    rows = []
    for name, gr in sol.gradients.items():
        var = sol.problem.latex.get(name) or latex_name(name)
        rows.append(rf"\frac{{\partial {loss}}}{{\partial {var}}} &= {gr.latex}")
    out = ["% derivkit solve --format latex: " + sol.problem.id, r"\begin{align*}", " \\\\\n".join(rows),
           r"\end{align*}"]
    for qid, a in sol.answers.items():
        out += [f"% question {qid} ({a.kind})", r"\begin{equation*}", a.extra.get("index_latex") or a.latex
                if a.kind != "grad" else a.latex, r"\end{equation*}"]
    return "\n".join(out)
