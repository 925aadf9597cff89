"""Fixtures and the CI rule; shared helpers are in helpers.py, Hypothesis strategies in strategies.py."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import *  # noqa: F401,F403  (older tests import helpers from conftest)
from helpers import ALL_PROBLEMS, DIMS, SHAPES, make_scope, solved
from strategies import *  # noqa: F401,F403
from derivkit.parse import Scope


@pytest.fixture(scope="session")
def problem_files() -> list[Path]:
    assert ALL_PROBLEMS, "no problem files found"
    return list(ALL_PROBLEMS)


@pytest.fixture(scope="session")
def solved_fn():
    return solved


@pytest.fixture
def scope() -> Scope:
    return make_scope(SHAPES, DIMS)


def pytest_sessionfinish(session, exitstatus):
    """In CI (DERIVKIT_STRICT_TESTS=1) a skipped or xfailed test is a failure: nothing may hide."""
    if os.environ.get("DERIVKIT_STRICT_TESTS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    hidden = {k: len(reporter.stats.get(k, [])) for k in ("skipped", "xfailed", "xpassed")} if reporter else {}
    if any(hidden.values()) and session.exitstatus == 0:
        reporter.write_line(f"DERIVKIT_STRICT_TESTS: not allowed in CI: {hidden}", red=True)
        session.exitstatus = 1
