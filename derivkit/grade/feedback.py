"""Per-student feedback files of a graded class: Markdown, LaTeX or PDF (``grade --out DIR --feedback``).

Student text is hostile.  In LaTeX it is always shown as escaped typewriter text,
and is also typeset as math only when the sheets' whitelist
(:func:`derivkit.sheets.texsafe.math_ok`) accepts it.  Whitelisted math can still
be malformed TeX (``x^``, ``\\frac`` without arguments): when a student's PDF does
not compile, it is compiled once more with the answers as text only, so a student
cannot break their own feedback, let alone anyone else's.  Each file is written
atomically; a student whose file cannot be made is reported and the batch goes on.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from derivkit.errors import UserError
from derivkit.outputs import write_atomic
from derivkit.sheets.compile import compile_pdf
from derivkit.sheets.render import render_latex_template
from derivkit.sheets.texsafe import math_ok

from .export import Result, _num, _plain, markdown

FORMATS = ("md", "tex", "pdf")
TEMPLATE = "feedback.tex.j2"
#: characters of an answer shown (the grader refuses longer answers anyway)
SHOWN = 2000


@dataclass
class FeedbackFiles:
    """What :func:`write_feedback` did: the files written, and one line per student it could not serve."""

    written: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def latex(result: Result, answers: dict, title: str, prompts: dict | None = None, typeset: bool = True) -> str:
    """A student's feedback as a LaTeX document; ``typeset=False`` shows every answer as text only."""
    items = []
    for v in result.verdicts:
        text = answers.get(v.question)
        text = text[:SHOWN] if isinstance(text, str) and text.strip() else ""
        items.append({"question": v.question, "prompt": (prompts or {}).get(v.question) or "",
                      "answer": text, "math": text if typeset and text and math_ok(text) else "",
                      "verdict": v.verdict, "score": _num(v.score), "max_score": _num(v.max_score),
                      "diagnosis": v.diagnosis or "", "feedback": v.feedback or ""})
    fb = {"title": title, "student": result.student, "score": _num(result.score),
          "max_score": _num(result.max_score), "questions": items}
    return render_latex_template(TEMPLATE, fb=fb)


def write_feedback(out_dir: str, results: list[Result], submissions, title: str, fmt: str = "md",
                   prompts: dict | None = None) -> FeedbackFiles:
    """One feedback file per student in ``out_dir`` (``.md``, ``.tex`` or ``.pdf``; names made safe and unique)."""
    if fmt not in FORMATS:
        raise ValueError(f"feedback format {fmt!r} is not one of {FORMATS}")
    done = FeedbackFiles()
    for r, sub, name in zip(results, submissions, _file_names(results)):
        path = Path(out_dir) / f"{name}.{fmt}"
        try:
            if fmt == "md":
                write_atomic(path, markdown(r, sub.answers, title), "feedback file")
            elif fmt == "tex":
                write_atomic(path, latex(r, sub.answers, title, prompts), "feedback file")
            else:
                _write_pdf(path, r, sub.answers, title, prompts, done)
        except (UserError, OSError) as exc:
            done.problems.append(f"{_plain(r.student)}: no feedback file: {exc}")
            continue
        done.written.append(path)
    return done


def _write_pdf(path: Path, result: Result, answers: dict, title: str, prompts, done: FeedbackFiles) -> None:
    try:
        compile_pdf(latex(result, answers, title, prompts), path)
    except UserError as exc:
        done.problems.append(f"{_plain(result.student)}: the answers' math did not compile ({exc}); "
                             "the PDF shows them as text")
        compile_pdf(latex(result, answers, title, prompts, typeset=False), path)


def _file_names(results: list[Result]) -> list[str]:
    """A safe, unique file stem per student."""
    names, used = [], set()
    for r in results:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", r.student).strip("._")[:60] or "student"
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        names.append(name)
    return names
