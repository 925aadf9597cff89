"""The Gradescope autograder bundle, run against a Gradescope-shaped folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

from click.testing import CliRunner

from derivkit.cli import main
from judges import ROOT

MLP = str(ROOT / "problems" / "mlp_sigmoid_softmax_ce.yaml")


def test_bundle_grades_a_submission_with_its_own_wheel(tmp_path):
    out = tmp_path / "autograder.zip"
    r = CliRunner().invoke(main, ["autograder", MLP, "-o", str(out)])
    assert r.exit_code == 0, r.output
    source = tmp_path / "autograder" / "source"
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        z.extractall(source)
    wheel = next(n for n in names if n.endswith(".whl"))
    assert {"setup.sh", "run_autograder", "problem.yaml"} <= set(names)
    assert wheel in (source / "setup.sh").read_text()
    # install the carried wheel (offline, no dependencies: they are on this machine) where only the test looks
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                    str(site), str(source / wheel)], check=True)
    root = tmp_path / "autograder"
    (root / "submission").mkdir()
    (root / "submission" / "answers.yaml").write_text('student: alice\nanswers:\n  dl_do: "y - t"\n'
                                                      '  dl_dV: "h (y - t)^T"\n')
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "PYTHON": sys.executable, "PYTHONPATH": str(site)}
    run = source / "run_autograder"
    run.chmod(0o755)
    subprocess.run(["bash", str(run)], env=env, check=True, timeout=120, cwd=tmp_path)
    doc = json.loads((root / "results" / "results.json").read_text())
    tests = {t["name"]: t for t in doc["tests"]}
    assert doc["score"] == 3 and tests["dl_do"]["status"] == "passed" and tests["dl_dV"]["score"] == 1
    used = subprocess.run([sys.executable, "-c", "import derivkit; print(derivkit.__file__)"], env=env,
                          capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert used.startswith(str(site))


def test_bundle_writes_results_even_when_grading_fails(tmp_path):
    out = tmp_path / "autograder.zip"
    assert CliRunner().invoke(main, ["autograder", MLP, "-o", str(out)]).exit_code == 0
    source = tmp_path / "source"
    with zipfile.ZipFile(out) as z:
        z.extractall(source)
    (source / "problem.yaml").write_text("not: a problem\n")
    root = tmp_path / "ag"
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "PYTHON": sys.executable}
    subprocess.run(["bash", str(source / "run_autograder")], env=env, check=True, timeout=120)
    doc = json.loads((root / "results" / "results.json").read_text())
    assert doc["score"] == 0 and doc["output"]
