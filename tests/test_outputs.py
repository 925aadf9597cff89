"""Outputs: only regular files, checked before work, written atomically with ordinary permissions."""
from __future__ import annotations

import json
import math
import os
import stat

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import ROOT
from derivkit.cli import main
from derivkit.errors import UserError
from derivkit.outputs import check_output, json_safe, write_atomic

MLP = ROOT / "problems" / "mlp_sigmoid_softmax_ce.yaml"


def test_write_atomic_creates_parents_and_gives_ordinary_permissions(tmp_path):
    target = tmp_path / "a" / "b" / "out.json"
    old = os.umask(0o022)
    try:
        write_atomic(target, "hello\n")
    finally:
        os.umask(old)
    assert target.read_text() == "hello\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]      # no temporary left behind


def test_write_atomic_replaces_a_regular_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    write_atomic(target, b"new")
    assert target.read_text() == "new"


@pytest.mark.parametrize("kind", ["directory", "fifo", "device"])
def test_non_regular_outputs_are_refused(tmp_path, kind):
    if kind == "directory":
        target = tmp_path / "d"
        target.mkdir()
    elif kind == "fifo":
        target = tmp_path / "f"
        os.mkfifo(target)
    else:
        target = "/dev/null"
    with pytest.raises(UserError, match="only regular files"):
        write_atomic(target, "x")
    if kind == "device":
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    elif kind == "fifo":
        assert stat.S_ISFIFO(os.stat(target).st_mode)


@pytest.mark.parametrize("depth", [1, 2])
def test_a_file_where_a_directory_should_be_is_refused(tmp_path, depth):
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(UserError, match="(?i)not a directory"):
        check_output(f / "sub" / "out.json" if depth == 2 else f / "out.json")


def test_json_safe_turns_non_finite_and_numpy_values_into_json():
    doc = json_safe({"a": [1.0, math.inf, np.float64("nan")], "b": np.int64(3), 1: (np.float32(0.5),)})
    assert doc == {"a": [1.0, None, None], "b": 3, "1": [0.5]}
    json.dumps(doc, allow_nan=False)


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_vectors_refuses_a_device_before_any_work():
    r = _run("vectors", MLP, "-o", "/dev/null")
    assert r.exit_code == 2
    assert "not a regular file" in r.output and "Traceback" not in r.output
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize("seed", ["-1", str(2**64), "x"])
def test_vectors_seed_out_of_range_is_a_usage_error(seed):
    r = _run("vectors", MLP, "--seed", seed)
    assert r.exit_code == 2
    assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)


def test_vectors_written_to_a_file_is_the_same_document(tmp_path):
    out = tmp_path / "v.json"
    r = _run("vectors", MLP, "-o", out, "--seed", 3)
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text()) == json.loads(_run("vectors", MLP, "--seed", 3).stdout)
