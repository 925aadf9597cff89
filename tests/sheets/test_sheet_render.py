"""Templates: TeX-safe delimiters, strict undefined names, found from the checkout; layout helpers."""
from __future__ import annotations

import jinja2
import pytest
from helpers import problem_params, solved
from hypothesis import given
from hypothesis import strategies as st

from derivkit.sheets import render_sheet as render
from derivkit.sheets import sheet_text
from derivkit.sheets.linebreak import break_points, split, width
from derivkit.sheets.render import _environment, template_dir
from derivkit.sheets.steps import build_sheet


def test_templates_are_found_in_the_checkout():
    d = template_dir()
    assert (d / "sheet.tex.j2").is_file() and (d / "sheet.md.j2").is_file()


def test_latex_delimiters_leave_tex_alone_and_undefined_names_fail(tmp_path):
    (tmp_path / "t.tex.j2").write_text("%# a template comment\n% a TeX comment {braces} #1\n"
                                       r"\VAR{x|tex} \BLOCK{if y}yes\BLOCK{endif} {{ not jinja }}" "\n")
    env = _environment(str(tmp_path), False)
    out = env.get_template("t.tex.j2").render(x="50% & #", y=True)
    assert out.strip() == "% a TeX comment {braces} #1\n" r"50\% \& \# yes {{ not jinja }}"
    with pytest.raises(jinja2.UndefinedError):
        env.get_template("t.tex.j2").render(x="a")


@pytest.mark.parametrize("path", problem_params())
def test_every_problem_renders_in_both_formats(path):
    sol = solved(path)
    tex = sheet_text(sol, "latex")
    md = sheet_text(sol, "markdown")
    assert tex.startswith("\\documentclass") and tex.rstrip().endswith("\\end{document}")
    assert tex.count(r"\begin{aligned}") == tex.count(r"\end{aligned}")
    assert r"\begin{tikzpicture}" in tex
    for q in sol.problem.questions:
        assert q.id.replace("_", r"\_") in tex and q.id.replace("_", r"\_") in md
    assert md.count("$$") % 2 == 0
    assert "tikzpicture" not in md and r"\VAR" not in md and "{{" not in md


def test_training_results_render_as_pgfplots_and_tables():
    """A synthetic check result (two learning rates, two repeats) shows curves with error bars and a sweep."""
    from helpers import SEED_PROBLEMS
    sol = solved(SEED_PROBLEMS[0])
    runs = [{"run": i, "lr": lr, "width": None, "seed": rep, "repeat": rep, "loss": [1.0 / (k + 1 + rep) for k in
             range(3)], "val_loss": [1.2 / (k + 1) for k in range(3)], "val_accuracy": [0.5, 0.6, 0.7 + rep / 10],
             "diverged": False} for i, (lr, rep) in enumerate([(0.1, 0), (0.1, 1), (0.01, 0), (0.01, 1)])]
    train = {"loss": runs[0]["loss"], "final_loss": 0.33, "final_val_loss": 0.4, "accuracy": 0.75, "lr": 0.1,
             "repeats": 2, "runs": runs, "passed": True,
             "sweep": [{"lr": lr, "width": None, "runs": 2, "final_loss": 0.3, "final_loss_std": 0.05,
                        "final_val_loss": 0.4, "final_val_loss_std": 0.0, "accuracy": 0.75, "accuracy_std": 0.05,
                        "diverged": 0} for lr in (0.1, 0.01)],
             "data": {"name": "moons", "n_train": 80, "n_val": 20}, "settings": {"optimizer": "sgd",
                                                                                "batch_size": 1, "epochs": 3}}
    from types import SimpleNamespace          # stands in for a TrainResult: the sheet reads its JSON
    sol = type(sol)(**{**sol.__dict__, "train": SimpleNamespace(to_json=lambda: train)})
    sheet = build_sheet(sol)
    assert [c.label for c in sheet.training.curves] == ["lr 0.1", "lr 0.01"]
    assert all(c.std is not None and len(c.std) == len(c.points) == 3 for c in sheet.training.curves)
    tex = render(sheet)
    # 2 settings x (training, validation loss; validation accuracy), and the sweep plot's lines:
    # training and validation loss, validation accuracy (each against the learning rate)
    assert tex.count(r"\addplot+") == 6 and tex.count(r"\addplot[") == 3
    assert "xmode=log" in tex and "y explicit" in tex and r"$\pm$" in tex
    md = render(sheet, "markdown")
    assert "±" in md and "| epoch |" in md


@given(st.lists(st.sampled_from(["a", r"\mathbf{x}", r"\left(b - c\right)", r"\frac{1}{y}"]), min_size=1,
                max_size=30), st.sampled_from([" + ", " - ", r" \odot "]))
def test_split_lines_rejoin_to_the_formula_and_fit_where_possible(parts, op):
    tex = op.join(parts)
    lines = split(tex, limit=20)
    assert "".join(lines).replace(" ", "") == tex.replace(" ", "")
    for ln in lines:
        # a line is too wide only when it is a single term (no break point inside)
        assert width(ln) <= 20 or not break_points(ln.lstrip("+-").lstrip().removeprefix(r"\odot"))


def test_no_break_inside_left_right():
    tex = r"\left(a + b + c + d + e + f + g + h + i + j + k + l + m + n\right) x"
    assert break_points(tex) == []


def test_a_questions_steps_render_alone_as_markdown_feedback():
    from helpers import SEED_PROBLEMS
    from derivkit.sheets import render_steps_markdown
    sheet = build_sheet(solved(SEED_PROBLEMS[0]))
    block = next(b for b in sheet.questions if b.kind == "grad" and len(b.lines) > 2)
    md = render_steps_markdown(block.lines)
    assert md.count("$$") == 2 * len(block.lines)
    for ln in block.lines:
        assert ln.rhs[0] in md and ln.rule.name.split(" (")[0] in md
