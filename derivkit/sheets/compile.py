"""Compiling a sheet's LaTeX to PDF with latexmk (or pdflatex) when one is installed.

TeX runs in a fresh temporary directory, non-interactively (``-interaction=nonstopmode
-halt-on-error -file-line-error``, stdin closed, shell escape off, a time limit).
On failure the log is kept beside the requested output and the first TeX error is
raised as a :class:`~derivkit.errors.UserError` (exit 2).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..outputs import write_atomic

#: seconds one compilation may take
TIMEOUT = 120
_FLAGS = ["-interaction=nonstopmode", "-halt-on-error", "-file-line-error", "-no-shell-escape"]


@dataclass
class Compiled:
    pdf: Path
    log: str
    engine: str


def engine() -> list[str] | None:
    """The command that compiles a .tex file here: latexmk, else pdflatex, else None."""
    if shutil.which("latexmk"):
        return ["latexmk", "-pdf", "-quiet", "-norc", f"-pdflatex=pdflatex {' '.join(_FLAGS)} %O %S"]
    if shutil.which("pdflatex"):
        return ["pdflatex", *_FLAGS]
    return None


def first_error(log: str) -> str:
    """The first error of a TeX log: ``file:line: message`` (with -file-line-error) or ``! message``."""
    for line in log.splitlines():
        m = re.match(r"^(?:\./)?[^\s:]+\.tex:(\d+): (.*)$", line)
        if m:
            return f"line {m.group(1)} of the sheet: {m.group(2).strip()}"
        if line.startswith("! "):
            return line[2:].strip()
    return "TeX stopped without an error message (see the log)"


def compile_pdf(tex: str, out: str | os.PathLike, timeout: float = TIMEOUT) -> Compiled:
    """Compile ``tex`` to the PDF ``out``; the log goes beside it (``out`` with ``.log``) on failure."""
    cmd = engine()
    if cmd is None:
        raise UserError("--pdf needs a TeX engine: install latexmk or pdflatex "
                        "(Debian: texlive-latex-extra texlive-pictures latexmk), or write the .tex with -o")
    out = Path(out)
    log_path = out.with_suffix(".log")
    with tempfile.TemporaryDirectory(prefix="derivkit-sheet-") as tmp:
        src = Path(tmp) / "sheet.tex"
        src.write_text(tex, encoding="utf-8")
        passes = 1 if cmd[0] == "latexmk" else 2       # pdflatex twice: references settle
        env = {**os.environ, "openout_any": "p", "openin_any": "p", "shell_escape": "f"}
        try:
            for _ in range(passes):
                proc = subprocess.run(cmd + ["sheet.tex"], cwd=tmp, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                                      env=env)
                if proc.returncode != 0:
                    break
        except subprocess.TimeoutExpired:
            _keep_log(Path(tmp) / "sheet.log", log_path)
            raise UserError(f"--pdf: TeX took longer than {timeout:g} s; log kept in {log_path}")
        log_file = Path(tmp) / "sheet.log"
        log = log_file.read_text(encoding="utf-8", errors="replace") if log_file.exists() else proc.stdout.decode(
            "utf-8", "replace")
        pdf = Path(tmp) / "sheet.pdf"
        if proc.returncode != 0 or not pdf.exists():
            _keep_log(log_file, log_path, log)
            raise UserError(f"--pdf: {first_error(log)} (log kept in {log_path})")
        write_atomic(out, pdf.read_bytes(), what="PDF")
    return Compiled(out, log, cmd[0])


def _keep_log(src: Path, dest: Path, text: str | None = None) -> None:
    if text is None:
        text = src.read_text(encoding="utf-8", errors="replace") if src.exists() else ""
    write_atomic(dest, text, what="PDF log")
