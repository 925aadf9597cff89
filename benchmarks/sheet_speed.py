"""How long `derivkit sheet` takes for every problems/*.yaml (training skipped).

Columns: the in-process time of solve + build + render (what `sheet -o` costs after
start-up; goal under 1 s), the wall time of the command `sheet -o F.tex` (start-up
included), and of `sheet --pdf` (TeX included; goal under 15 s).
Run: python benchmarks/sheet_speed.py
"""
from __future__ import annotations

import glob
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from derivkit.sheets import sheet_text  # noqa: E402
from derivkit.solve import solve  # noqa: E402


def wall(args: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(args, check=True, stdin=subprocess.DEVNULL, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    exe = shutil.which("derivkit") or "derivkit"
    print(f"# CPython {platform.python_version()}, {platform.machine()}; TeX: {shutil.which('latexmk')}")
    print("| problem | solve+sheet in process (s) | `sheet -o F.tex` wall (s) | `sheet --pdf` wall (s) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(glob.glob(str(ROOT / "problems" / "*.yaml"))):
            name = Path(path).name
            t = time.perf_counter()
            sheet_text(solve(path, train=False))
            inproc = time.perf_counter() - t
            tex = wall([exe, "sheet", path, "--no-train", "-o", f"{tmp}/s.tex"])
            pdf = wall([exe, "sheet", path, "--no-train", "--pdf", "-o", f"{tmp}/s.pdf"])
            print(f"| {name} | {inproc:.2f} | {tex:.2f} | {pdf:.2f} |")


if __name__ == "__main__":
    main()
