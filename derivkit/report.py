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
        lines += ["", *training_lines(sol.train)]
    return "\n".join(lines)


def training_lines(t) -> list[str]:
    """The training check in words: the data, the sweep table, the best setting, test and
    retrained metrics, the best curve per epoch, and the expectation when the file sets one."""
    acc = t.accuracy
    lines = [f"Training: final loss {_loss(t.final_loss)}" + (f", validation accuracy {acc:.3f}"
                                                            if acc is not None else "")]
    d = t.data
    lines.append(f"  data: {d['name']}, {d['n_train']} training / {d['n_val']} validation"
                 + (f" / {d['n_test']} test ({d['test']})" if "n_test" in d else "") + " samples")
    if len(t.sweep) > 1:
        lines += _sweep_table(t)
    if t.best is not None:
        best = next(row for row in t.sweep if row.get("best"))
        lines.append(f"  best: {_setting(best['setting'])}: final loss {_loss(best['final_loss'])}, "
                     f"validation loss {_loss(best['final_val_loss'])}"
                     + (f", validation accuracy {best['accuracy']:.3f}" if best.get("accuracy") is not None else "")
                     + f" (chosen by {t.select.replace('_', ' ')})")
    if t.test is not None:
        x = t.test
        spread = t.sweep[0]["runs"] > 1
        lines.append(f"  test ({x['n']} samples): loss {_pm(x['loss'], spread and x['loss_std'], _loss)}"
                     + (f", accuracy {_pm(x['accuracy'], spread and x['accuracy_std'], _acc)}"
                        if x.get("accuracy") is not None else ""))
    if t.retrained is not None:
        x = t.retrained
        lines.append(f"  retrained on training + validation ({x['n_train']} samples): final loss "
                     f"{_loss(x['final_loss'])}"
                     + (f", training accuracy {x['train_accuracy']:.3f}" if x.get("train_accuracy") is not None else "")
                     + (f", test loss {_loss(x['test_loss'])}" if "test_loss" in x else "")
                     + (f", test accuracy {x['test_accuracy']:.3f}" if x.get("test_accuracy") is not None else ""))
    runs = t.sweep[0]["runs"] if t.sweep else 1
    whose = ("the best setting's, " if len(t.sweep) > 1 else "") + (f"mean of {runs} runs" if runs > 1 else "")
    lines.append(f"  per epoch{f' ({whose})' if whose else ''}:")
    lines.append(f"    training loss: {_series(t.loss, _loss)}")
    lines.append(f"    validation loss: {_series(t.val_loss, _loss)}")
    if t.train_accuracy and any(a is not None for a in t.train_accuracy):
        lines.append(f"    training accuracy: {_series(t.train_accuracy, _acc)}")
        lines.append(f"    validation accuracy: {_series(t.val_accuracy, _acc)}")
    if t.iterations and t.iterations.get("step"):
        it = t.iterations
        lines.append(f"  every {t.settings['log_every']} minibatches ({len(it['step'])} points, as --plots draws "
                     f"them): training loss {_series(it['loss'], _loss, 3)}; validation loss "
                     f"{_series(it['val_loss'], _loss, 3)}")
    for name, e in t.expect.items():
        lines.append(f"  expectation: {'met' if e['met'] else 'MISSED'} ({name.replace('_', ' ')} "
                     f"{e['limit']:g}: {_loss(e['value']) if 'loss' in name else _acc(e['value'])})")
    return lines


def _sweep_table(t) -> list[str]:
    """One row per setting: its swept values, then mean ± std of the finals; the best marked *."""
    keys = list(t.sweep[0]["setting"])
    cols = [("final_loss", "train loss", _loss), ("final_val_loss", "val loss", _loss)]
    cols += [(k, title, _acc) for k, title in (("train_accuracy", "train acc"), ("accuracy", "val acc"))
             if any(row.get(k) is not None for row in t.sweep)]
    cols += [(k, title, f) for k, title, f in (("test_loss", "test loss", _loss), ("test_accuracy", "test acc", _acc))
             if any(row.get(k) is not None for row in t.sweep)]
    runs = t.sweep[0]["runs"]
    head = [*keys, *(title for _, title, _ in cols)]
    body = [[_value(row["setting"][k]) for k in keys]
            + [_pm(row.get(k), row.get(f"{k}_std"), f) if runs > 1 else f(row.get(k)) for k, _, f in cols]
            + (["diverged"] if row.get("diverged") else [])
            for row in t.sweep]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *[r[:len(head)] for r in body])]
    fmt = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))
    what = f"mean ± std over {runs} repeats" if runs > 1 else "one run each"
    out = [f"  sweep ({len(t.sweep)} settings, {what}; * = best by {t.select.replace('_', ' ')}):",
           "    " + fmt(head)]
    for row, cells in zip(t.sweep, body):
        out.append(("  * " if row.get("best") else "    ") + fmt(cells) + "".join(f"  {c}" for c in cells[len(head):]))
    return out


def _series(values: list, fmt, ends: int = 6) -> str:
    """A curve in words: every value, or the first and last ``ends`` of a long one."""
    if len(values) <= 2 * ends + 2:
        return ", ".join(fmt(x) for x in values)
    return (", ".join(fmt(x) for x in values[:ends]) + f", … ({len(values) - 2 * ends} more) …, "
            + ", ".join(fmt(x) for x in values[-ends:]))


def _setting(setting: dict) -> str:
    return ", ".join(f"{k} = {_value(v)}" for k, v in setting.items())


def _value(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _acc(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def _pm(mean, std, fmt) -> str:
    """mean ± std (std to the same places), or just the mean when there is no spread to show."""
    if mean is None or std is None or std is False:
        return fmt(mean)
    return f"{fmt(mean)} ± {fmt(std)}"


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
