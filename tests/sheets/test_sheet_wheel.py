"""The templates ship in the wheel: an installed derivkit (no source checkout) renders a sheet."""
from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_installed_wheel_renders_a_sheet(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(wheels)],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=300)
    (wheel,) = wheels.glob("derivkit-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True,
                   stdin=subprocess.DEVNULL, timeout=600)
    problem = ROOT / "problems" / "sigmoid_output_nll_saturation.yaml"
    out = tmp_path / "sheet.tex"
    work = tmp_path / "elsewhere"          # not the checkout: templates must come from the package
    work.mkdir()
    probe = subprocess.run([str(py), "-c", "import derivkit.sheets.render as r; print(r.template_dir())"],
                           cwd=work, check=True, capture_output=True, text=True)
    assert str(env_dir) in probe.stdout
    subprocess.run([str(env_dir / "bin" / "derivkit"), "sheet", str(problem), "--no-train", "-o", str(out)],
                   cwd=work, check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=300)
    tex = out.read_text()
    assert tex.startswith("\\documentclass") and "sigmoid\\_neg" in tex and r"\boxed" in tex
