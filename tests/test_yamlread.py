"""Tests for derivkit.yamlread (the generic positioned reader) and the check: schema on it."""
from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derivkit import yamlread
from derivkit.errors import UserError, UserErrors
from helpers import no_hang
from derivkit.problem import parse_problem, validate_file
from hostile import BASE, billion_laughs, merge_bomb, with_check


def test_alias_bombs_are_refused_quickly():
    for text in (billion_laughs(9), merge_bomb(15)):
        with no_hang(10), pytest.raises(UserError) as info:
            yamlread.compose(text, "bomb.yaml")
        assert info.value.where.line is not None


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6))
def test_small_aliases_expand_as_written(levels, width):
    """Below the limit, aliases are allowed and the plain value is the expansion."""
    text = billion_laughs(levels, width)
    root = yamlread.compose(text, "a.yaml")
    r = yamlread.Reader("a.yaml", text)
    r.scan(root)
    value = r.plain(yamlread.child(root, f"a{levels}")[1])
    def count(v):
        return sum(count(x) for x in v) if isinstance(v, list) else 1
    assert count(value) == width ** levels


def test_nesting_and_values_are_limited():
    with pytest.raises(UserError):
        yamlread.compose("a: " + "[" * (yamlread.MAX_DEPTH + 1) + "]" * (yamlread.MAX_DEPTH + 1), "d.yaml")
    yamlread.compose("a: " + "[" * (yamlread.MAX_DEPTH - 2) + "]" * (yamlread.MAX_DEPTH - 2), "d.yaml")
    with pytest.raises(UserError):
        yamlread.compose("[" + ", ".join(["1"] * yamlread.MAX_NODES) + "]", "n.yaml")


def test_only_regular_files_are_read(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path, "/dev/null"):
        with pytest.raises(UserError) as info:
            yamlread.read_text(path)          # would block forever if it opened the FIFO
        assert info.value.where.file == str(path)


def test_errors_are_capped():
    text = BASE + "".join(f"bogus{i}: 1\n" for i in range(500))
    with pytest.raises(UserErrors) as info:
        parse_problem(text, "many.yaml")
    errors = info.value.errors
    assert len(errors) == yamlread.MAX_ERRORS + 1
    assert all(e.where.line for e in errors[:-1])
    assert str(500 - yamlread.MAX_ERRORS) in errors[-1].message


def test_suggestions_are_bounded():
    options = [f"name_{i:05d}" for i in range(20_000)]
    with no_hang(20):
        for i in range(50):
            yamlread.suggest(f"name_{i:05d}x", options)
    assert "name_00001" in yamlread.suggest("name_0001", ["name_00001", "other"])


# ----------------------------------------------------------------- check: through validate

@pytest.mark.parametrize("check, needle", [
    ("data: {generator: moons}\ntrain: {lrr: 0.1}", "lrr"),
    ("data: {generator: moons, n: 1000000000000}", "1000000000000"),
    ("data: {generator: moons}\ndims: {H: 1000000000}", "1000000000"),
    ("data: {generator: moons}\ntrain: {epochs: 100000000}", "100000000"),
    ("data: {generator: moons}\ntrain: {lr: .nan}", ".nan"),
    ("data: {dataset: mnist, path: /dev/zero}", "/dev/zero"),
    ("data: {dataset: mnist, path: nowhere.npz}", "nowhere"),
    ("data: {generator: moonz}", "moonz"),
])
def test_bad_check_is_reported_by_validate(tmp_path, check, needle):
    text = with_check(check)
    path = tmp_path / "p.yaml"
    path.write_text(text)
    errors = validate_file(path)
    assert len(errors) == 1, errors
    line = next(i for i, s in enumerate(text.splitlines(), 1) if needle in s and "check" not in s)
    assert errors[0].where.line == line
    assert errors[0].where.column == text.splitlines()[line - 1].index(needle) + 1


def test_every_check_error_is_reported(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(with_check("data: {generator: moons, n: 1}\ntrain: {lrr: 0.1, epochs: 0}\nrepeats: -1"))
    assert len(validate_file(path)) == 4


def test_valid_check_gives_typed_settings(tmp_path):
    p = parse_problem(with_check("data: {generator: moons, n: 300}\ntrain: {lr: [0.1, 0.2], epochs: 3}\n"
                                 "hidden: {dim: H, values: [2, 8]}\nrepeats: 2"), str(tmp_path / "p.yaml"))
    s = p.settings
    assert (s.lrs, s.lr_sweep, s.epochs, s.repeats) == ([0.1, 0.2], True, 3, 2)
    assert (s.hidden_dim, s.widths, s.data) == ("H", [2, 8], {"generator": "moons", "n": 300})



@pytest.mark.parametrize("text, value", [("1e-3", 1e-3), ("-2E5", -2e5), ("1.5e2", 150.0), ("+3e0", 3.0)])
def test_exponent_numbers_are_numbers_as_in_json(text, value):
    """YAML 1.1 reads `1e-3` as text; problem files, submissions and --at files mean a number."""
    source = f"lr: {text}\nquoted: '{text}'\n"
    r = yamlread.Reader("f.yaml", source)
    root = yamlread.compose(source, "f.yaml")
    r.scan(root)
    (_, v1), (_, v2) = yamlread.pairs(root)
    assert r.number(v1, "lr") == value
    assert r.text(v2, "quoted") == text


def test_an_exponent_learning_rate_validates(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(BASE + "check:\n  data: {generator: moons, n: 100}\n  train: {lr: 1e-2, epochs: 1}\n")
    assert validate_file(f) == []
