"""The sheet's steps are the engine's recorded derivation, and every question gets its block."""
from __future__ import annotations

import pytest
from helpers import SEED_PROBLEMS, problem_params, solved

from derivkit.expr import substitute
from derivkit.printing import to_latex
from derivkit.sheets.steps import build_sheet
from derivkit.sheets.texsafe import math_ok, safe_names


@pytest.mark.parametrize("path", problem_params())
def test_log_chains_from_the_upstream_atom_to_the_printed_form(path):
    sol = solved(path)
    d = sol.derivation
    for name, records in d.log.items():
        if not records:
            continue
        assert records[0].rule == "chain rule" and records[0].before == d.upstream(name)
        for a, b in zip(records, records[1:]):
            assert b.before == a.after                       # each step starts where the last ended
        subs = [r for r in records if r.rule == "substitute"]
        for r in subs:
            assert substitute(r.before, r.substituted) == r.after
        assert records[-1].after in (d.named[name], d.chain[name])


@pytest.mark.parametrize("path", problem_params(SEED_PROBLEMS))
def test_every_grad_question_ends_in_the_boxed_printed_gradient(path):
    sol = solved(path)
    sheet = build_sheet(sol)
    names = safe_names(sol.problem.latex)
    blocks = {b.id: b for b in sheet.questions}
    assert list(blocks) == [q.id for q in sol.problem.questions]
    for q in sol.problem.questions:
        b = blocks[q.id]
        assert b.lines, q.id                                 # step by step, never just the answer
        assert all(ln.rule is not None and ln.rule.name for ln in b.lines)
        if q.kind == "grad":
            wrt = q.wrt.value.strip()
            assert " ".join(b.answer) == to_latex(sol.derivation.named[wrt], names)
            if wrt != sol.graph.loss and sol.derivation.log[wrt]:
                rules = [ln.rule.name for ln in b.lines]
                assert any("chain rule" in r or "local derivatives" in r for r in rules)
                if any(r.rule == "substitute" for r in sol.derivation.log[wrt]):
                    assert any(ln.substituted for ln in b.lines)


@pytest.mark.parametrize("path", problem_params())
def test_every_formula_on_a_sheet_is_whitelisted_math(path):
    sheet = build_sheet(solved(path))
    formulas = [f for ln in (l for b in sheet.questions for l in b.lines) for f in [ln.lhs, *ln.rhs]]
    formulas += [f for b in sheet.questions for f in b.answer] + [r for g in sheet.gradients for r in g.rhs]
    formulas += [x for loc in sheet.local for x in [loc.lhs, *loc.general, loc.written or ""]]
    for f in formulas:
        assert math_ok(f, environments=True), f


def test_limits_form_a_case_table_with_their_meaning():
    path = next(p for p in SEED_PROBLEMS if "saturation" in p.name)
    sol = solved(path)
    sheet = build_sheet(sol)
    limits = [q for q in sol.problem.questions if q.kind == "limit"]
    assert [r.question for r in sheet.limits] == [q.id for q in limits]
    for row in sheet.limits:
        value = sol.answers[row.question].extra["value"]
        assert ("vanishes" in row.meaning and "not" not in row.meaning) == (value == 0)


def test_questions_only_sheet_has_no_answers():
    path = SEED_PROBLEMS[0]
    sheet = build_sheet(solved(path), answers=False)
    assert not sheet.local and not sheet.gradients and not sheet.limits and sheet.training is None
    from derivkit.sheets import render_sheet as render
    tex = render(sheet)
    assert r"\boxed" not in tex and "Verification" not in tex
    assert all(q.id.replace("_", r"\_") in tex for q in sheet.questions)
