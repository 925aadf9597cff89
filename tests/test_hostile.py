"""Hostile problem files end cleanly: exit 0 or 2, no traceback, errors in a screenful
at most, within 10 s and 1 GiB (each command runs in a subprocess under those limits)."""
from __future__ import annotations

import os
import re
import resource
import subprocess
import sys

import pytest

from hostile import CASES, FIFO

MEMORY = 1 << 30          # bytes of address space
TIMEOUT = 10              # seconds
MAX_LINES = 25
COMMANDS = {"validate": ["validate"], "solve": ["solve", "--no-train"]}


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def _materialise(tmp_path, name, content):
    path = tmp_path / f"{name}.yaml"
    if content is FIFO:
        os.mkfifo(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("name, content", CASES, ids=[c[0] for c in CASES])
def test_hostile_file_ends_cleanly(tmp_path, name, content, command):
    path = _materialise(tmp_path, name, content)
    argv = [sys.executable, "-m", "derivkit.cli", *COMMANDS[command], str(path)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT,
                              preexec_fn=_limit_memory, stdin=subprocess.DEVNULL, errors="replace")
    except subprocess.TimeoutExpired:
        pytest.fail(f"{command} {name} did not finish in {TIMEOUT} s")
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output[-3000:]
    assert proc.returncode in (0, 2), (proc.returncode, output[-3000:])
    lines = [line for line in output.splitlines() if line.strip()]
    if proc.returncode == 2 or command == "validate":     # a solution lists every gradient
        assert len(lines) <= MAX_LINES, "\n".join(lines[:40])
    if proc.returncode == 2:
        # at a line and column, or at the file itself (too large, not a regular file)
        assert re.match(re.escape(str(path)) + r"(:\d+:\d+)?: \S", lines[0]), lines[0]


def test_corpus_names_are_unique():
    names = [name for name, _ in CASES]
    assert len(names) == len(set(names))
