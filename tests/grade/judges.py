"""Prepared judges, shared by the grader's tests (preparing one costs a few tenths of a second)."""
from __future__ import annotations

import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALL_PROBLEMS = sorted((ROOT / "problems").glob("*.yaml")) + sorted((ROOT / "tests" / "problems").glob("*.yaml"))


@functools.lru_cache(maxsize=None)
def judge_for(name: str):
    """The Judge of ``problems/<name>.yaml`` or ``tests/problems/<name>.yaml``."""
    from derivkit.grade.judge import Judge
    path = ROOT / "problems" / f"{name}.yaml"
    if not path.exists():
        path = ROOT / "tests" / "problems" / f"{name}.yaml"
    return Judge(path)
