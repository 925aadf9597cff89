"""Bad ``check:`` data and test sections and bad data files: each is one located line and exit 2
from both ``derivkit validate`` and ``derivkit solve``, before any training starts.

A case's check text marks with ``‸`` the place the error must point at (the marker is removed
before the file is written); ``files`` are written beside the problem.  A CSV file at fault is
named instead, with ``at = (file, line)``.
"""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from derivkit.cli import main
from derivkit.errors import UserError
from derivkit.training.datasets import Dataset, GENERATORS, load_test, make_dataset

HEAD = """\
id: bad-check
dims: {D: 1, K: 1}
symbols:
  x: {shape: [D], role: input}
  y: {shape: [K], role: target, kind: real}
  W: {shape: [K, D], role: param}
forward:
  o: W @ x
loss:
  l: sum((o - y) ** 2)
check:
  train: {epochs: 1}
"""
MARK = "‸"
TABLE = "x1,x2,response\n" + "".join(f"{i},{i % 3},{i / 7:.3f}\n" for i in range(10))
SINUSOID = "data: {generator: sinusoid, n: 50}\n"
CSV_DATA = "data: {dataset: csv, path: t.csv, target: response}\n"

# (id, check lines after `train`, files beside the problem, None or (csv file, line) when a file is at fault)
CASES = [
    # sinusoid options
    ("range_reversed", "data: {generator: sinusoid, range: ‸[10, 0]}", {}, None),
    ("range_empty", "data: {generator: sinusoid, range: ‸[1, 1]}", {}, None),
    ("range_three_numbers", "data: {generator: sinusoid, range: ‸[0, 5, 10]}", {}, None),
    ("range_not_a_list", "data: {generator: sinusoid, range: ‸10}", {}, None),
    ("range_not_a_number", "data: {generator: sinusoid, range: [0, ‸ten]}", {}, None),
    ("range_infinite", "data: {generator: sinusoid, range: [0, ‸.inf]}", {}, None),
    ("range_too_wide", "data: {generator: sinusoid, range: [‸-1e308, 1e308]}", {}, None),
    ("frequency_zero", "data: {generator: sinusoid, frequency: ‸0}", {}, None),
    ("amplitude_negative", "data: {generator: sinusoid, amplitude: ‸-2}", {}, None),
    ("range_on_moons", "data: {generator: moons, ‸range: [0, 1]}", {}, None),
    # test: a fraction
    ("test_not_a_mapping", SINUSOID + "test: ‸0.25", {}, None),
    ("test_fraction_one", SINUSOID + "test: {fraction: ‸1.0}", {}, None),
    ("test_fraction_text", SINUSOID + "test: {fraction: ‸half}", {}, None),
    ("test_fraction_and_source", SINUSOID + "test: {fraction: 0.2, ‸generator: sinusoid}", {}, None),
    ("test_leaves_no_training", "data: {generator: sinusoid, n: 10}\ntest: {fraction: ‸0.9}", {}, None),
    # test: a separate source
    ("test_unknown_generator", SINUSOID + "test: {generator: ‸sinusiod}", {}, None),
    ("test_bad_option", SINUSOID + "test: {generator: sinusoid, range: ‸[3, 2]}", {}, None),
    ("test_other_features", SINUSOID + "test: {generator: ‸moons}", {}, None),
    ("test_other_task", "data: {dataset: csv, path: t.csv, target: response, task: regression}\n"
                        "test: {generator: ‸xor}", {"t.csv": TABLE}, None),
    ("test_other_classes", "data: {generator: spirals}\ntest: {generator: ‸spirals, classes: 3}", {}, None),
    ("test_csv_missing_target", CSV_DATA + "test: {dataset: csv, path: u.csv, target: ‸response}",
     {"t.csv": TABLE, "u.csv": "x1,x2,answer\n1,2,3\n"}, None),
    ("test_csv_other_features", CSV_DATA + "test: {dataset: ‸csv, path: u.csv, target: response}",
     {"t.csv": TABLE, "u.csv": "x1,response\n1,2\n"}, None),
    ("test_csv_is_a_directory", CSV_DATA + "test: {dataset: csv, path: ‸adir, target: response}",
     {"t.csv": TABLE, "adir/keep": ""}, None),
    ("test_csv_other_columns", CSV_DATA + "test: {dataset: ‸csv, path: u.csv, target: response}",
     {"t.csv": TABLE, "u.csv": "x1,x3,response\n1,2,3\n"}, None),
    # sweeps and selection (found by the trial of the first version)
    ("sweep_empty", SINUSOID + "sweep: ‸{}", {}, None),
    ("sweep_value_twice", SINUSOID + "sweep: {lr: [0.1, ‸0.1]}", {}, None),
    ("select_accuracy_on_regression", SINUSOID + "select: ‸val_accuracy", {}, None),
    ("select_accuracy_on_a_regression_table", CSV_DATA + "select: ‸val_accuracy", {"t.csv": TABLE}, None),
    # bad data files, found by validate as well as by solve
    ("csv_nan_cell", CSV_DATA, {"t.csv": "x1,x2,response\n1,2,3\n4,nan,6\n"}, ("t.csv", 3)),
    ("csv_text_target", CSV_DATA, {"t.csv": "x1,x2,response\n1,2,high\n"}, ("t.csv", 2)),
    ("csv_semicolons", CSV_DATA, {"t.csv": "x1;x2;response\n1;2;3\n"}, ("t.csv", 1)),
    ("csv_utf16", CSV_DATA, {"t.csv": "\ufeffx1,x2,response\n1,2,3\n".encode("utf-16-le")}, ("t.csv", 1)),
    ("test_csv_bad_cell", CSV_DATA + "test: {dataset: csv, path: u.csv, target: response}",
     {"t.csv": TABLE, "u.csv": "x1,x2,response\n1,2,3\n4,5,6\n7,8,inf\n"}, ("u.csv", 4)),
]


def _write(tmp_path, check: str, files: dict) -> tuple:
    """The problem path and the (line, column) of the marker in it."""
    text = HEAD + "".join(f"  {line}\n" for line in check.splitlines())
    before = text[:text.index(MARK)] if MARK in text else None
    path = tmp_path / "p.yaml"
    path.write_text(text.replace(MARK, ""), encoding="utf-8")
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        if isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        else:
            (tmp_path / name).write_text(content, encoding="utf-8")
    if before is None:
        return path, None
    return path, (before.count("\n") + 1, len(before) - before.rfind("\n"))


@pytest.mark.parametrize("command", ["validate", "solve"])
@pytest.mark.parametrize("name, check, files, at", CASES, ids=[c[0] for c in CASES])
def test_bad_check_is_one_located_line_and_exit_2(tmp_path, name, check, files, at, command):
    path, mark = _write(tmp_path, check, files)
    result = CliRunner().invoke(main, [command, str(path)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    if at is None:
        assert lines[0].startswith(f"{path}:{mark[0]}:{mark[1]}: "), (lines[0], mark)
    else:
        assert lines[0].startswith(f"{tmp_path / at[0]}:{at[1]}"), (lines[0], at)
    assert "epoch" not in result.output.lower()          # nothing was trained


def test_every_case_has_its_own_name():
    assert len({c[0] for c in CASES}) == len(CASES)


# -------------------------------------------- checks at load time (a source known only when loaded)

def _locate(*option):
    """Stands in for the problem file's place of ``check.test.<option>``."""
    return ("test", *option)


def test_load_test_refuses_a_test_set_of_another_shape():
    data = GENERATORS["sinusoid"](n=20)
    with pytest.raises(UserError) as info:
        load_test({"generator": "moons", "n": 20}, data, at=_locate)
    assert info.value.where == ("test",)                  # at the test: mapping
    spirals = GENERATORS["spirals"](n=30, classes=3)
    with pytest.raises(UserError):
        load_test({"generator": "spirals", "n": 30, "classes": 2}, spirals, at=_locate)


def test_load_test_places_a_bad_option_at_the_option():
    with pytest.raises(UserError) as info:
        load_test({"generator": "sinusoid", "range": [2, 1]}, GENERATORS["sinusoid"](n=5), at=_locate)
    assert info.value.where == ("test", "range")


def test_load_test_accepts_a_matching_source_and_keeps_it_apart():
    data = make_dataset({"generator": "moons", "n": 40, "seed": 0})
    test = load_test({"generator": "moons", "n": 30, "seed": 1}, data, at=_locate)
    assert isinstance(test, Dataset) and len(test) == 30 and test.n_features == data.n_features
    assert not any(np.array_equal(row, other) for row in test.X for other in data.X)



def test_a_test_csv_is_numbered_by_the_data_labels(tmp_path):
    """A test table lacking label 0 keeps 5 as class 1 and 9 as class 2 (not 0 and 1); a label the
    data never has is an error at the test: mapping."""
    (tmp_path / "t.csv").write_text("a,y\n" + "".join(f"{i},{v}\n" for i, v in enumerate([0, 5, 9] * 3)))
    (tmp_path / "u.csv").write_text("a,y\n1,9\n2,5\n3,9\n")
    (tmp_path / "w.csv").write_text("a,y\n1,9\n2,7\n")
    data = make_dataset({"dataset": "csv", "path": "t.csv", "target": "y"}, tmp_path)
    test = load_test({"dataset": "csv", "path": "u.csv", "target": "y"}, data, tmp_path, _locate)
    assert test.y.tolist() == [2, 1, 2] and test.n_classes == 3
    with pytest.raises(UserError) as info:
        load_test({"dataset": "csv", "path": "w.csv", "target": "y"}, data, tmp_path, _locate)
    assert info.value.where == ("test",)
