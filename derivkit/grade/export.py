"""Reports of a graded class: terminal table, JSON (contract §4), CSV, Gradescope, Markdown feedback.

The files of feedback, one per student, are written by :mod:`derivkit.grade.feedback`.

Every function takes the graded :class:`Result` list and returns text.  Student text is never interpreted here; in Markdown it
is shown inside code spans with backticks neutralised.
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass

from derivkit.outputs import json_safe

from .judge import Verdict


@dataclass
class Result:
    """One student's graded submission."""

    student: str
    verdicts: list[Verdict]
    source: str = ""

    @property
    def score(self) -> float:
        return sum(v.score for v in self.verdicts)

    @property
    def max_score(self) -> float:
        return sum(v.max_score for v in self.verdicts)

    def to_json(self) -> dict:
        return {"student": self.student, "score": _num(self.score), "max_score": _num(self.max_score),
                "answers": [v.to_json() for v in self.verdicts]}


def _num(x: float):
    return int(x) if float(x).is_integer() else round(float(x), 6)


def to_json(problem_id: str, results: list[Result]) -> str:
    """``{"problem": ID, "submissions": [...], "summary": {...}}`` (contract §4)."""
    doc = {"problem": problem_id, "submissions": [r.to_json() for r in results], "summary": summary(results)}
    return json.dumps(json_safe(doc), indent=2, ensure_ascii=False) + "\n"


def to_csv(results: list[Result], qids: list[str]) -> str:
    """One row per student, for a gradebook: score, max, and each question's score and verdict."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student", "score", "max_score"] + [c for q in qids for c in (q, f"{q}_verdict")])
    for r in results:
        by = {v.question: v for v in r.verdicts}
        w.writerow([_cell(r.student), _num(r.score), _num(r.max_score)]
                   + [c for q in qids for c in (_num(by[q].score), by[q].verdict)])
    return buf.getvalue()


def _cell(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_gradescope(results: list[Result]) -> str:
    """Gradescope's results.json for one submission (the first; Gradescope grades one per container)."""
    r = results[0] if results else Result("", [])
    tests = [{"name": v.question, "score": _num(v.score), "max_score": _num(v.max_score),
              "status": "passed" if v.correct else "failed", "output": v.feedback, "visibility": "visible"}
             for v in r.verdicts]
    doc = {"score": _num(r.score), "output": f"{_num(r.score)} / {_num(r.max_score)}", "tests": tests}
    return json.dumps(json_safe(doc), indent=2, ensure_ascii=False) + "\n"


def summary(results: list[Result]) -> dict:
    """Score histogram (ten bins of the maximum) and, per question, verdict counts and the most common diagnosis."""
    bins = [0] * 10
    for r in results:
        frac = r.score / r.max_score if r.max_score else 0.0
        bins[min(9, int(frac * 10))] += 1
    per_q: dict[str, dict] = {}
    for r in results:
        for v in r.verdicts:
            q = per_q.setdefault(v.question, {"verdicts": Counter(), "diagnoses": Counter()})
            q["verdicts"][v.verdict] += 1
            if v.diagnosis:
                q["diagnoses"][v.diagnosis] += 1
    questions = {qid: {"verdicts": dict(q["verdicts"]),
                       "most_common_diagnosis": q["diagnoses"].most_common(1)[0][0] if q["diagnoses"] else None}
                 for qid, q in per_q.items()}
    return {"students": len(results), "histogram": {f"{10 * i}-{10 * i + 10}%": n for i, n in enumerate(bins)},
            "questions": questions}


def table(results: list[Result], qids: list[str]) -> str:
    """The terminal report: one line per student, one column per question, then the class summary."""
    mark = {"correct": "ok", "incorrect": "x", "unparseable": "?", "missing": "-", "error": "!"}
    name_w = max([7] + [len(_plain(r.student)[:30]) for r in results])
    col = [max(len(q), 4) for q in qids]
    lines = ["student".ljust(name_w) + "  score  " + "  ".join(q.ljust(c) for q, c in zip(qids, col))]
    for r in results:
        by = {v.question: v for v in r.verdicts}
        cells = []
        for q, c in zip(qids, col):
            v = by[q]
            cells.append((mark[v.verdict] + (f" {v.diagnosis}" if v.diagnosis else ""))[:c].ljust(c))
        lines.append(_plain(r.student)[:30].ljust(name_w) + f"  {_num(r.score):>5}  " + "  ".join(cells))
    s = summary(results)
    lines.append("")
    lines.append("scores: " + "  ".join(f"{k} {n}" for k, n in s["histogram"].items() if n))
    for q, info in s["questions"].items():
        common = info["most_common_diagnosis"]
        lines.append(f"{q}: " + ", ".join(f"{k} {n}" for k, n in sorted(info["verdicts"].items()))
                     + (f"; most common mistake: {common}" if common else ""))
    return "\n".join(lines) + "\n"


def _plain(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


def markdown(result: Result, answers: dict, title: str) -> str:
    """A student's feedback file: each question, their answer (as code), the verdict, diagnosis and feedback."""
    out = [f"# {_md(title)}", "", f"Student: {_md(result.student)}  ", f"Score: {_num(result.score)} / "
           f"{_num(result.max_score)}", ""]
    for v in result.verdicts:
        out += [f"## {_md(v.question)} — {v.verdict} ({_num(v.score)} / {_num(v.max_score)})", ""]
        text = answers.get(v.question)
        if isinstance(text, str) and text.strip():
            out += ["```", _fence(text[:2000]), "```", ""]
        if v.diagnosis:
            out += [f"Diagnosis: {_md(v.diagnosis)}", ""]
        if v.feedback:
            out += ["```text", _fence(v.feedback), "```", ""]
    return "\n".join(out)


def _md(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]()#+\-.!<>|])", r"\\\1", _plain(str(text)))


def _fence(text: str) -> str:
    return text.replace("```", "` ` `")
