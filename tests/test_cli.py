"""The `derivkit` command: exit codes, one-line located errors, JSON documents (contract §1, §5, §6)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import (ALL_PROBLEMS, BAD_PROBLEMS, LINEAR_HEAD, LOCATED, ROOT, close, evaluate, leaf_values,
                     loaded, locate, problem_params)
from derivkit.cli import main
from derivkit.expr import concrete
from derivkit.layout import absorb
from derivkit.parse import parse_expression

MLP = ROOT / "problems" / "mlp_sigmoid_softmax_ce.yaml"
MULTINOMIAL = ROOT / "problems" / "multinomial_regression_index.yaml"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def lines(result) -> list[str]:
    return [ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]


def assert_one_located_line(result, path: Path | str, line: int | None = None, col: int | None = None):
    assert result.exit_code == 2, (result.exit_code, result.output)
    out = lines(result)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert len(out) == 1, out
    assert LOCATED.match(out[0]), out[0]
    prefix = f"{path}:" + (f"{line}:" if line else "") + (f"{col}: " if line and col else "")
    assert out[0].startswith(prefix), (out[0], prefix)


def derivkit_command() -> list[str]:
    exe = Path(sys.executable).parent / "derivkit"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("derivkit")
    return [found] if found else [sys.executable, "-m", "derivkit.cli"]


# ====================================================================== solve
def test_solve_exits_0_and_reports_verified():
    r = run("solve", "--no-train", MULTINOMIAL)
    assert r.exit_code == 0, r.output
    assert "verified" in r.stdout and "NOT VERIFIED" not in r.stdout


@pytest.fixture(scope="module")
def mlp_json():
    r = run("solve", "--no-train", "--format", "json", MLP)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_solve_json_has_the_contract_keys(mlp_json):
    doc = mlp_json
    _, g, _ = loaded(MLP)
    for key in ("id", "title", "dims", "gradients", "questions", "gradcheck"):
        assert key in doc, key
    assert doc["id"] == "mlp-sigmoid-softmax-ce"
    assert doc["dims"] == {"D": 3, "H": 4, "C": 3}
    assert set(doc["gradients"]) == set(g.names)
    for name, gr in doc["gradients"].items():
        assert isinstance(gr["latex"], str) and gr["latex"]
        assert isinstance(gr["expr"], str) and gr["expr"]
    assert set(doc["questions"]) == {q.id for q in g.problem.questions}
    for qid, q in doc["questions"].items():
        assert isinstance(q["latex"], str) and isinstance(q["expr"], str) and q["verified"] is True
    assert "train" not in doc                       # --no-train


def test_solve_json_gradcheck(mlp_json):
    gc = mlp_json["gradcheck"]
    assert isinstance(gc, dict), gc
    assert gc["passed"] is True
    assert 0 <= gc["max_rel_error"] < 1e-6


def test_solve_json_textbook_answers(mlp_json):
    assert mlp_json["gradients"]["o"]["expr"] == "y - t"
    assert mlp_json["gradients"]["V"]["expr"] == "(y - t) @ h.T"
    assert mlp_json["questions"]["dl_do"]["expr"] == "y - t"
    assert mlp_json["questions"]["dy_do"]["expr"] == "diag(y) - y @ y.T"


@pytest.mark.parametrize("path", problem_params())
def test_solve_json_exprs_parse_back_for_every_problem(path):
    """Every gradient's and every question's `expr` of `solve --format json` reads back."""
    r = run("solve", "--no-train", "--format", "json", path)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    _, g, d = loaded(path)
    _, values = leaf_values(g, seed=8)
    expected = {n for n in g.names if g.kind(n) != "class"}
    assert set(doc["gradients"]) == expected
    for name, gr in doc["gradients"].items():
        e = absorb(parse_expression(gr["expr"], g.scope(), None), g.shape(name), doc["layout"])
        assert e.shape == g.shape(name)
        assert close(np.broadcast_to(evaluate(e, values, g.dims), concrete(g.shape(name), g.dims)),
                     np.broadcast_to(evaluate(d.full[name], values, g.dims), concrete(g.shape(name), g.dims)))
    for q in g.problem.questions:
        entry = doc["questions"][q.id]
        assert {"latex", "expr", "verified"} <= set(entry)
        if q.kind == "identity":
            continue
        from derivkit.expr import sym
        extra = {n: sym(n) for n in list(q.index or {}) + (["k", "m"] if q.index else [])}
        extra.update({n: sym(n, tuple(doc["questions"][n]["shape"]))           # named derivatives
                      for n in (t.value for t in q.using or []) if n in doc["questions"]})
        parse_expression(entry["expr"], g.scope(extra), None)


def test_solve_format_latex_and_text():
    r = run("solve", "--no-train", "--format", "latex", MLP)
    assert r.exit_code == 0
    assert r"\begin{align*}" in r.stdout and r"\mathbf{h}^{\top}" in r.stdout
    r = run("solve", "--no-train", MLP)
    assert r.exit_code == 0 and "dl/dV" in r.stdout


def test_solve_exits_1_when_a_verification_fails(tmp_path):
    f = tmp_path / "false.yaml"
    f.write_text("id: false-identity\n" + LINEAR_HEAD + """\
  - {id: wrong, kind: identity, lhs: sigmoid(-s), rhs: sigmoid(s), vars: {s: []}}
""")
    r = run("solve", "--no-train", "--format", "json", f)
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    assert doc["questions"]["wrong"]["verified"] is False


def test_solve_bad_file_exits_2_with_one_located_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(MLP.read_text().replace("o: V @ h + c", "o: V @ hh + c"))
    line, col = locate(f.read_text(), "hh + c")
    for fmt in ("text", "json"):
        r = run("solve", "--no-train", "--format", fmt, f)
        assert_one_located_line(r, f, line, col)
        assert "did you mean 'h'" in r.output
        assert r.stdout == ""


def test_missing_file_and_bad_usage_exit_2():
    r = run("solve", "no/such/problem.yaml")
    assert r.exit_code == 2 and "Traceback" not in r.output and len(lines(r)) == 1
    r = run("solve", "--format", "xml", MLP)
    assert r.exit_code == 2 and "Traceback" not in r.output
    r = run("vectors", "--seed", "abc", MLP)
    assert r.exit_code == 2


def test_real_subprocess_solve_json_is_one_document():
    """A real `derivkit solve ... --format json` (training included): stdout is one JSON document."""
    path = ROOT / "problems" / "relu_regression.yaml"
    proc = subprocess.run(derivkit_command() + ["solve", str(path), "--format", "json"], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)          # the whole stdout, nothing before or after
    assert doc["id"] == "relu-regression"
    assert "Traceback" not in proc.stderr
    train = doc["train"]
    for key in ("loss", "val_loss", "final_loss", "accuracy"):
        assert key in train, key
    assert isinstance(train["loss"], list) and len(train["loss"]) >= 1
    assert train["final_loss"] == pytest.approx(train["loss"][-1])


def test_real_subprocess_error_is_one_line():
    proc = subprocess.run(derivkit_command() + ["solve", str(BAD_PROBLEMS[0] if BAD_PROBLEMS else "nope.yaml")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1


# ====================================================================== validate
def test_validate_all_good_files_exits_0(problem_files):
    r = run("validate", *problem_files)
    assert r.exit_code == 0, r.output
    assert r.stdout == ""


@pytest.mark.skipif(not BAD_PROBLEMS, reason="no tests/bad_problems folder")
@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in BAD_PROBLEMS])
def test_validate_bad_problem_files(path):
    r = run("validate", path)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    errors = [ln for ln in r.stdout.splitlines() if ln.strip()]
    assert errors
    for ln in errors:
        assert LOCATED.match(ln), ln
        assert ln.startswith(f"{path}:"), ln


def test_validate_reports_each_file():
    good, bad = ALL_PROBLEMS[0], (BAD_PROBLEMS[0] if BAD_PROBLEMS else None)
    if bad is None:
        pytest.skip("no bad problems")
    r = run("validate", good, bad)
    assert r.exit_code == 2
    assert all(ln.startswith(str(bad)) for ln in r.stdout.splitlines() if ln.strip())


# ====================================================================== vectors
def test_vectors_writes_the_contract_document(tmp_path):
    out = tmp_path / "v.json"
    r = run("vectors", "--seed", 3, "-o", out, MULTINOMIAL)
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    _, g, _ = loaded(MULTINOMIAL)
    assert doc["id"] == "multinomial-regression-index" and doc["seed"] == 3 and doc["dims"] == g.dims
    assert set(doc["leaves"]) == set(g.leaves)
    assert type(doc["leaves"]["t"]) is int and 0 <= doc["leaves"]["t"] < g.dims["C"]
    assert np.shape(doc["leaves"]["W"]) == (3, 3) and isinstance(doc["leaves"]["W"][0], list)
    assert np.shape(doc["leaves"]["x"]) == (3,)
    assert set(doc["nodes"]) == {"u", "p"}
    assert isinstance(doc["loss"], float)
    for name, v in doc["gradients"].items():
        assert np.shape(v) == concrete(g.shape(name), g.dims), name
    assert set(doc["gradients"]) >= {"x", "W", "b", "u", "p", "ell"}


def test_vectors_is_deterministic_per_seed(tmp_path):
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    assert run("vectors", "--seed", 3, "-o", a, MLP).exit_code == 0
    assert run("vectors", "--seed", 3, "-o", b, MLP).exit_code == 0
    assert run("vectors", "--seed", 4, "-o", c, MLP).exit_code == 0
    assert a.read_text() == b.read_text()
    assert json.loads(a.read_text())["leaves"] != json.loads(c.read_text())["leaves"]
    r = run("vectors", "--seed", 3, MLP)
    assert r.exit_code == 0 and json.loads(r.stdout) == json.loads(a.read_text())


def test_vectors_scalar_shapes_are_numbers(tmp_path):
    r = run("vectors", ROOT / "tests" / "problems" / "scalar_chain.yaml")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    for section in ("leaves", "nodes", "gradients"):
        for name, v in doc[section].items():
            assert isinstance(v, float), (section, name, v)


def test_vectors_bad_file_and_unwritable_output(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(MULTINOMIAL.read_text().replace("p: softmax(u)", "p: softmax(uu)"))
    line, col = locate(f.read_text(), "uu)")
    assert_one_located_line(run("vectors", f), f, line, col)
    out = tmp_path / "missing" / "dir" / "x.json"
    r = run("vectors", "-o", out, MULTINOMIAL)
    assert r.exit_code == 0 and json.loads(out.read_text())["id"] == "multinomial-regression-index"
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = run("vectors", "-o", blocker / "x.json", MULTINOMIAL)          # a file where a folder should be
    assert r.exit_code == 2 and "Traceback" not in r.output and len(lines(r)) == 1


# ====================================================================== semantically bad problem files
BASE = """\
id: bad
dims: {D: 3, H: 2}
symbols:
  x: {shape: [D], role: input}
  t: {shape: [H], role: target, kind: onehot}
  W: {shape: [H, D], role: param}
  s: {shape: [], role: param}
forward:
  z: W @ x
  y: softmax(z)
loss:
  l: -sum(t * log(y))
questions:
  - {id: q1, kind: grad, wrt: z}
"""


def _sub(old, new):
    assert old in BASE
    return BASE.replace(old, new, 1)


#: (id, text, needle) -- the error is expected at the needle's first character ("LINE:needle": its line)
GRAPH_ERRORS = [
    ("unknown_name_forward", _sub("z: W @ x", "z: W @ xx"), "xx"),
    ("shape_mismatch_matmul", _sub("z: W @ x", "z: x @ W"), "x @ W"),
    ("shape_mismatch_elementwise", _sub("z: W @ x", "z: W @ x + x"), "W @ x + x"),
    ("non_scalar_loss", _sub("l: -sum(t * log(y))", "l: -t * log(y)"), "-t * log(y)"),
    ("bad_function", _sub("softmax(z)", "softmaxx(z)"), "softmaxx"),
    ("unknown_name_loss", _sub("-sum(t * log(y))", "-sum(tt * log(y))"), "tt * log"),
    ("keyword_argument", _sub("softmax(z)", "softmax(z, axis=0)"), "softmax(z, axis"),
    ("attribute", _sub("z: W @ x", "z: W @ x.shape"), "x.shape"),
    ("string_literal", _sub("softmax(z)", "softmax('z')"), "'z'"),
    ("lambda_call", _sub("y: softmax(z)", 'y: "(lambda: z)()"'), "(lambda"),
    ("syntax", _sub("z: W @ x", "z: W @@ x"), "@ x"),
    ("slice", _sub("softmax(z)", "softmax(z[0:1])"), "0:1"),
    ("softmax_of_matrix", _sub("softmax(z)", "softmax(W)"), "softmax(W)"),
    ("index_out_of_range", _sub("softmax(z)", "softmax(z) * z[2]"), "2]"),
    ("diag_of_matrix", _sub("softmax(z)", "softmax(diag(W) @ z)"), "diag(W)"),
    ("matmul_by_scalar", _sub("z: W @ x", "z: s @ W @ x"), "s @ W"),
    ("too_long", _sub("z: W @ x", "z: W @ x" + " + W @ x" * 600), "W @ x + W"),
    ("deep_nesting", _sub("softmax(z)", "softmax(" + "(" * 300 + "z" + ")" * 300 + ")"), "LINE:softmax(("),
    ("block_scalar", _sub("z: W @ x", "z: |\n    W @ xx"), "xx"),
    ("double_quoted", _sub("z: W @ x", 'z: "W @ xx"'), "xx"),
    ("single_quoted", _sub("z: W @ x", "z: 'sigmod(W @ x)'"), "sigmod"),
    ("unknown_size", _sub("softmax(z)", "softmax(z * ones(Q))"), "Q)"),
    ("power_shapes", _sub("softmax(z)", "softmax(z ** W)"), "z ** W"),
    ("log_softmax_of_scalar", _sub("softmax(z)", "softmax(z) * log_softmax(s)"), "log_softmax(s)"),
    ("python_builtin", _sub("softmax(z)", "softmax(exit(z))"), "exit"),
    ("comparison", _sub("z: W @ x", "z: W @ x > 0"), "W @ x > 0"),
    ("wrong_matmul_order", _sub("y: softmax(z)", "y: softmax(W @ z)"), "W @ z"),
    ("too_many_indices", _sub("softmax(z)", "softmax(z) * z[0, 1]"), "z[0, 1]"),
    ("negative_index", _sub("softmax(z)", "softmax(z) * z[-1]"), "-1]"),
    ("empty_call", _sub("softmax(z)", "softmax()"), "softmax()"),
]

#: errors in questions: `solve` finds them
QUESTION_ERRORS = [
    ("wrt_does_not_exist", _sub("wrt: z}", "wrt: zz}"), "zz}"),
    ("jacobian_of_unknown", BASE + "  - {id: q2, kind: jacobian, of: yy, wrt: z}\n", "yy"),
    ("limit_var_not_scalar", BASE + "  - {id: q2, kind: limit, expr: s * sum(z), var: z, to: oo}\n", "z, to"),
    ("limit_var_unknown", BASE + "  - {id: q2, kind: limit, expr: s, var: r, to: oo}\n", "r, to"),
    ("limit_to_not_a_number", BASE + "  - {id: q2, kind: limit, expr: s, var: s, to: banana}\n", "banana"),
    ("subs_unknown", BASE + "  - {id: q2, kind: limit, expr: s, var: s, to: oo, subs: {r: 1}}\n", "1}}"),
    ("identity_shapes_differ", BASE + "  - {id: q2, kind: identity, lhs: x, rhs: z}\n", None),
    ("identity_unknown_name", BASE + "  - {id: q2, kind: identity, lhs: sigmoid(-u), rhs: 1 - sigmoid(u)}\n",
     "u)"),
    ("forward_of_unknown", BASE + "  - {id: q2, kind: forward, of: nothing}\n", "nothing"),
    ("jacobian_wrt_matrix", BASE + "  - {id: q2, kind: jacobian, of: y, wrt: W}\n", None),
    ("identity_shape_mismatch_inside", BASE + "  - {id: q2, kind: identity, lhs: W @ W, rhs: W}\n", "W @ W"),
]


def _write(tmp_path, name, text) -> Path:
    f = tmp_path / f"{name}.yaml"
    f.write_text(text)
    return f


def _expected(text, needle):
    """(line, column) of the needle; without one, only the file is checked."""
    if needle is None:
        return None, None
    if needle.startswith("LINE:"):
        return locate(text, needle[5:])[0], None
    return locate(text, needle)


@pytest.mark.parametrize("name, text, needle", [pytest.param(*c, id=c[0]) for c in GRAPH_ERRORS])
@pytest.mark.parametrize("command", ["validate", "solve"])
def test_semantically_bad_problem_files(tmp_path, command, name, text, needle):
    f = _write(tmp_path, name, text)
    args = ("solve", "--no-train", f) if command == "solve" else ("validate", f)
    r = run(*args)
    line, col = _expected(text, needle)
    assert_one_located_line(r, f, line, col)


@pytest.mark.parametrize("name, text, needle", [pytest.param(*c, id=c[0]) for c in QUESTION_ERRORS])
def test_bad_questions_are_reported_by_solve(tmp_path, name, text, needle):
    f = _write(tmp_path, name, text)
    r = run("solve", "--no-train", f)
    if needle is None:
        line, _ = locate(text, "{id: q2")
        assert_one_located_line(r, f, line)
    else:
        line, col = locate(text, needle)
        assert_one_located_line(r, f, line, col)


@pytest.mark.parametrize("name, text, needle", [pytest.param(*c, id=c[0]) for c in QUESTION_ERRORS])
def test_bad_questions_are_reported_by_validate(tmp_path, name, text, needle):
    f = _write(tmp_path, name, text)
    r = run("validate", f)
    assert r.exit_code == 2 and LOCATED.match(lines(r)[0])


@pytest.mark.parametrize("new, needle", [("z: W @ x + y", "+ y"), ("z: W @ z", "@ z")])
@pytest.mark.parametrize("command", ["validate", "solve"])
def test_name_used_before_definition_is_located(tmp_path, command, new, needle):
    text = _sub("z: W @ x", new)
    f = _write(tmp_path, "before", text)
    r = run(*((command, "--no-train", f) if command == "solve" else (command, f)))
    line, col = locate(text, needle)
    assert_one_located_line(r, f, line, col + 2)        # at the name itself


# ====================================================================== bugs: inputs that escape validation
INDEX_BASE = """\
id: idx
dims: {D: 3}
symbols:
  x: {shape: [D], role: input}
  w: {shape: [D], role: param}
  s: {shape: [], role: param}
loss:
  l: LOSS
"""


@pytest.mark.parametrize("loss, needle", [("sum(w * x) + w[1+5]", "1+5"), ("sum(w * x) + w[0-1]", "0-1"),
                                          ("x[s] * sum(w)", "s]")])
def test_computed_or_real_indices_are_rejected(tmp_path, loss, needle):
    text = INDEX_BASE.replace("LOSS", loss)
    f = _write(tmp_path, "idx", text)
    line, col = locate(text, needle)
    assert_one_located_line(run("validate", f), f, line, col)


def test_huge_constants_are_user_errors(tmp_path):
    text = INDEX_BASE.replace("LOSS", "sum(w * x) * 1000000000000000000000**300")
    f = _write(tmp_path, "huge", text)
    r = run("solve", "--no-train", "--format", "json", f)
    assert r.exit_code == 2 and "Traceback" not in r.output


@pytest.mark.slow
def test_power_towers_do_not_hang(tmp_path):
    text = INDEX_BASE.replace("LOSS", "sum(w * x) * 10**10**10")
    f = _write(tmp_path, "tower", text)
    try:
        proc = subprocess.run(derivkit_command() + ["solve", "--no-train", str(f)], capture_output=True,
                              text=True, timeout=20, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail("derivkit solve did not finish in 20 s")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
