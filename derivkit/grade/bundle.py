"""A Gradescope autograder bundle for one problem: the zip Gradescope runs, one student per container.

The zip holds ``setup.sh`` (installs derivkit from the wheel carried in the zip),
``run_autograder`` (grades ``/autograder/submission`` with ``derivkit grade
--format gradescope`` into ``/autograder/results/results.json``, and writes a
results file even when grading fails), the problem file and the wheel.  The wheel
is built here from the derivkit that is running (its modules, data files and
templates), so the bundle grades exactly as this machine does.
"""
from __future__ import annotations

import base64
import hashlib
import importlib.metadata as md
import io
import zipfile
from pathlib import Path

from derivkit.outputs import write_atomic
from derivkit.yamlread import read_text

SETUP = """#!/usr/bin/env bash
# Gradescope runs this once when the autograder image is built.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v python3 >/dev/null; then apt-get update && apt-get install -y python3 python3-pip; fi
python3 -m pip install --upgrade pip >/dev/null || true
python3 -m pip install ./{wheel}
"""

RUN = """#!/usr/bin/env bash
# Gradescope runs this per submission: /autograder/submission in, /autograder/results/results.json out.
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PY="${{PYTHON:-python3}}"
HERE="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$ROOT/results"
OUT="$ROOT/results/results.json"
if ! "$PY" -m derivkit.cli grade "$HERE/problem.yaml" "$ROOT/submission" --format gradescope \\
        --timeout {timeout} > "$OUT.tmp" 2> "$ROOT/results/stderr.txt"; then
    MSG=$(head -c 2000 "$ROOT/results/stderr.txt" | "$PY" -c 'import json,sys; print(json.dumps(sys.stdin.read()))')
    printf '{{"score": 0, "output": %s, "tests": []}}\\n' "$MSG" > "$OUT.tmp"
fi
mv "$OUT.tmp" "$OUT"
"""


def build_wheel() -> tuple[str, bytes]:
    """(file name, bytes) of a wheel of the running derivkit: its package files and templates."""
    import derivkit
    pkg = Path(derivkit.__file__).parent
    version = md.version("derivkit")
    meta = md.metadata("derivkit")
    files: dict[str, bytes] = {}
    for f in sorted(pkg.rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts and f.suffix not in (".pyc", ".pyo"):
            files[f"derivkit/{f.relative_to(pkg).as_posix()}"] = f.read_bytes()
    templates = pkg / "templates" if (pkg / "templates").is_dir() else pkg.parent / "templates"
    if templates.is_dir() and templates.parent != pkg:
        for f in sorted(templates.rglob("*")):
            if f.is_file():
                files[f"derivkit/templates/{f.relative_to(templates).as_posix()}"] = f.read_bytes()
    info = f"derivkit-{version}.dist-info"
    requires = "".join(f"Requires-Dist: {r}\n" for r in meta.get_all("Requires-Dist") or [])
    files[f"{info}/METADATA"] = (f"Metadata-Version: 2.1\nName: derivkit\nVersion: {version}\n"
                                 f"Summary: {meta.get('Summary', '')}\nRequires-Python: >=3.10\n{requires}").encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: derivkit\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{info}/entry_points.txt"] = b"[console_scripts]\nderivkit = derivkit.cli:main\n"
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return f"derivkit-{version}-py3-none-any.whl", buf.getvalue()


def build_bundle(problem: str | Path, out: str | Path, timeout: float = 5.0) -> Path:
    """Write the autograder zip for ``problem`` to ``out`` (atomically)."""
    text = read_text(problem, "problem file")
    wheel_name, wheel = build_wheel()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data, mode in (("setup.sh", SETUP.format(wheel=wheel_name), 0o755),
                                 ("run_autograder", RUN.format(timeout=timeout), 0o755),
                                 ("problem.yaml", text, 0o644), (wheel_name, wheel, 0o644)):
            zi = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            zi.external_attr = (0o100000 | mode) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    write_atomic(out, buf.getvalue(), "autograder bundle")
    return Path(out)
