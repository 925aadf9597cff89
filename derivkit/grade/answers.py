"""Students' submissions: YAML/JSON files, folders of them, or one CSV.

A submission file (contract §3)::

    student: alice
    answers:
      dl_do: "y - t"

is read with :mod:`derivkit.yamlread` (its size, node and depth limits; JSON is
YAML).  A CSV has a ``student`` column and one column per question id.  A file
that cannot be read is still a :class:`Submission`, with ``error`` set, so one
bad file never stops a class's grading.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from derivkit.errors import Location, UserError
from derivkit.yamlread import Reader, compose, read_text

SUFFIXES = (".yaml", ".yml", ".json")
MAX_SUBMISSIONS = 100_000


@dataclass
class Submission:
    student: str
    answers: dict[str, str] = field(default_factory=dict)
    source: str = ""
    error: str | None = None        # why the file could not be read (every answer is then `error`)


def read_submissions(paths: list[str]) -> list[Submission]:
    """Every submission under ``paths`` (files, folders of files, or one CSV), in a stable order.

    A path that does not exist is a UserError (a usage mistake); a file that exists
    but cannot be read becomes a Submission with ``error``.
    """
    out: list[Submission] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES + (".csv",))
        elif path.exists():
            files = [path]
        else:
            raise UserError("no such submission file or folder", Location(str(p)))
        for f in files:
            out += read_csv(f) if f.suffix.lower() == ".csv" else [read_file(f)]
            if len(out) > MAX_SUBMISSIONS:
                raise UserError(f"more than {MAX_SUBMISSIONS} submissions", Location(str(p)))
    return out


def read_file(path: Path) -> Submission:
    """One YAML/JSON submission; a file at fault gives a Submission with ``error``."""
    name = str(path)
    try:
        text = read_text(path, "submission")
        root = compose(text, name, "submission")
        if root is None:
            raise UserError("the submission is empty", Location(name))
        r = Reader(name, text)
        r.scan(root)
        f = r.fields(root, "a submission", {"student": False, "answers": True})
        if r.errors:
            raise r.errors[0]
        student = r.text(f.v("student"), "student") if f.v("student") is not None else path.stem
        answers = {}
        for k, v in r.mapping(f.v("answers"), "answers"):
            value = r.plain(v)
            answers[str(r.plain(k))] = value if isinstance(value, str) or value is None else \
                (str(value) if isinstance(value, (int, float)) else value)
        return Submission(str(student), answers, name)
    except UserError as exc:
        return Submission(path.stem, {}, name, str(exc))
    except Exception as exc:                # noqa: BLE001 — a malformed file must not stop the class
        return Submission(path.stem, {}, name, f"{name}: the submission could not be read ({type(exc).__name__})")


def read_csv(path: Path) -> list[Submission]:
    """One Submission per row: a ``student`` column and one column per question id."""
    name = str(path)
    try:
        text = read_text(path, "CSV of submissions")
    except UserError as exc:
        return [Submission(path.stem, {}, name, str(exc))]
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        return [Submission(path.stem, {}, name, f"{name}: not a readable CSV ({exc})")]
    if not rows or "student" not in [h.strip().lower() for h in rows[0]]:
        raise UserError("a CSV of submissions needs a header row with a 'student' column", Location(name, 1, 1))
    header = [h.strip() for h in rows[0]]
    who = [h.lower() for h in header].index("student")
    out = []
    for n, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        student = row[who].strip() if who < len(row) and row[who].strip() else f"row {n}"
        answers = {h: row[i] for i, h in enumerate(header) if i != who and i < len(row) and h}
        out.append(Submission(student, answers, f"{name}:{n}"))
    return out
