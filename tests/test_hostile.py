"""Hostile problem files end cleanly: exit 0 or 2, no traceback, errors in a screenful
at most, within 10 s and 1 GiB (each command runs in a subprocess under those limits)."""
from __future__ import annotations

import os
import re
import resource
import stat
import subprocess
import sys

import pytest

from hostile import CASES, CLI_CASES, DATA_FILES, FIFO

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


def _run(argv):
    """(exit code, output) of derivkit under the time and memory limits."""
    try:
        proc = subprocess.run([sys.executable, "-m", "derivkit.cli", *argv], capture_output=True, text=True,
                              timeout=TIMEOUT, preexec_fn=_limit_memory, stdin=subprocess.DEVNULL,
                              errors="replace")
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(argv)} did not finish in {TIMEOUT} s")
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("name, content", CASES, ids=[c[0] for c in CASES])
def test_hostile_file_ends_cleanly(tmp_path, name, content, command):
    path = _materialise(tmp_path, name, content)
    returncode, output = _run([*COMMANDS[command], str(path)])
    assert "Traceback" not in output, output[-3000:]
    assert returncode in (0, 2), (returncode, output[-3000:])
    lines = [line for line in output.splitlines() if line.strip()]
    if returncode == 2 or command == "validate":     # a solution lists every gradient
        assert len(lines) <= MAX_LINES, "\n".join(lines[:40])
    if returncode == 2:
        # at a line and column, or at the file itself (too large, not a regular file)
        assert re.match(re.escape(str(path)) + r"(:\d+:\d+)?: \S", lines[0]), lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("name, content, args, expected", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_hostile_command_line_ends_cleanly(tmp_path, name, content, args, expected):
    """Bad options and outputs: the expected exit code, a few lines, no traceback; and no device,
    FIFO or directory given as an output is replaced."""
    path = _materialise(tmp_path, name, content)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "adir").mkdir()
    os.symlink(os.devnull, tmp_path / "devnull")
    for file, make in DATA_FILES.items():
        (tmp_path / file).write_bytes(make())
    returncode, output = _run([a.format(problem=path, dir=tmp_path) for a in args])
    assert "Traceback" not in output and "Warning" not in output, output[-3000:]
    assert returncode == expected, (returncode, output[-3000:])
    if returncode == 2:
        assert len([line for line in output.splitlines() if line.strip()]) <= 3, output
    assert stat.S_ISFIFO(os.stat(tmp_path / "fifo").st_mode)
    assert (tmp_path / "adir").is_dir() and not any((tmp_path / "adir").iterdir())
    assert os.path.islink(tmp_path / "devnull") and stat.S_ISCHR(os.stat(tmp_path / "devnull").st_mode)
    if returncode == 2:
        assert not (tmp_path / "c.csv").exists() and not (tmp_path / "c.png").exists()


def test_corpus_names_are_unique():
    names = [name for name, _ in CASES] + [name for name, *_ in CLI_CASES]
    assert len(names) == len(set(names))
