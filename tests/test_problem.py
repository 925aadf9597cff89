"""Tests for derivkit.problem: loading, positions, structural errors, schema."""
from __future__ import annotations

import json
import keyword
import math
import re
import string
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from derivkit.errors import Location, UserError, UserErrors
from derivkit.problem import (QUESTION_KINDS, RESERVED, ROLES, TARGET_KINDS, Problem, Text,
                              load_problem, parse_problem)

HERE = Path(__file__).parent
BAD = HERE / "bad_problems"
ROOT = HERE.parent
SCHEMA = ROOT / "derivkit" / "problem.schema.json"

CONTRACT_EXAMPLE = """\
id: mlp-sigmoid-softmax-ce
title: Two-layer MLP, sigmoid hidden layer, softmax output, cross-entropy loss
dims: {D: 3, H: 4, C: 3}            # concrete sizes used for checking and vectors
symbols:                             # every leaf; shape [] scalar, [n] column vector, [m, n] matrix
  x: {shape: [D], role: input}
  t: {shape: [C], role: target, kind: onehot}
  W: {shape: [H, D], role: param}
  b: {shape: [H], role: param}
  V: {shape: [C, H], role: param}
  c: {shape: [C], role: param}
forward:                             # ordered; each entry defines one named node
  z: W @ x + b
  h: sigmoid(z)
  o: V @ h + c
  y: softmax(o)
loss:                                # exactly one entry: name -> scalar expression
  l: -sum(t * log(y))
questions:
  - {id: dl_do, kind: grad, wrt: o}
  - {id: dl_dV, kind: grad, wrt: V, points: 2}
  - {id: dy_do, kind: jacobian, of: y, wrt: o}
check:                               # optional numeric training check
  dims: {H: 30}                      # sizes for training (D and C follow the data); `dims` above stay small
  data: {generator: ellipse_circle, n: 1000, seed: 0}   # or {dataset: digits} / {dataset: mnist, path: DIR}
  train: {optimizer: sgd, lr: 0.01, batch_size: 1, epochs: 5}
"""

# Everything optional, every question kind, both forward forms' neighbours, all scalar styles.
FULL_EXAMPLE = """\
id: multinomial.v2
description: Multinomial regression with one sigmoid hidden layer.
dims: {D: 3, K: 4, C: 3}
symbols:
  x: {shape: [D], role: input}
  t: {shape: [], role: target, kind: class}
  y: {shape: [], role: target, kind: binary, values: [0, 1]}
  W: {shape: [K, D], role: param}
  w: {shape: [C, K], role: param}
forward:
  - s: W @ x
  - h: 'sigmoid(s)'
  - u: "w @ h"
  - p: |
      softmax(u)
loss:
  ell: >-
    -log(p[t])
questions:
  - id: dl_du
    kind: grad
    wrt: u
    index: {j: row}
    points: 2.5
    prompt: Show that the derivative is $\\delta_{jt} - p_j$.
    partial: {sign: 0.5, transpose: 0}
    allow: {upstream: false, nodes: true}
  - {id: dh_ds, kind: jacobian, of: h, wrt: s, index: {j: row, k: col}}
  - id: sig_prime
    kind: identity
    lhs: sigmoid_prime(r)
    rhs: sigmoid(r) * (1 - sigmoid(r))
    vars: {r: []}
  - {id: sat, kind: limit, of: dl_du, var: z, to: -oo, subs: {y: 1}, vars: {z: []}}
  - {id: sat2, kind: limit, expr: '-log(sigmoid((2*y - 1)*z))', var: z, to: .inf, subs: {y: 0.5}}
  - {id: fwd_p, kind: forward, of: p}
latex: {W: "\\\\mathbf{W}", ell: "\\\\ell"}
aliases: {W: ["W^{(1)}", W_1], w: w_2}
"""


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def at(path, line, col) -> Location:
    return Location(str(path), line, col)


def source_at(text: str, where: Location) -> str:
    return text.splitlines()[where.line - 1][where.column - 1:]


# ----------------------------------------------------------------- good files

def test_contract_example_values(tmp_path):
    path = write(tmp_path, CONTRACT_EXAMPLE)
    p = load_problem(path)
    assert isinstance(p, Problem) and p.path == str(path)
    assert (p.id, p.title) == ("mlp-sigmoid-softmax-ce",
                               "Two-layer MLP, sigmoid hidden layer, softmax output, cross-entropy loss")
    assert p.dims == {"D": 3, "H": 4, "C": 3}
    assert list(p.symbols) == ["x", "t", "W", "b", "V", "c"]
    assert [(s.shape, s.role, s.kind, s.values) for s in p.symbols.values()] == [
        (("D",), "input", None, None), (("C",), "target", "onehot", None),
        (("H", "D"), "param", None, None), (("H",), "param", None, None),
        (("C", "H"), "param", None, None), (("C",), "param", None, None)]
    assert [(n.name, n.expr.value) for n in p.forward] == [
        ("z", "W @ x + b"), ("h", "sigmoid(z)"), ("o", "V @ h + c"), ("y", "softmax(o)")]
    assert (p.loss.name, p.loss.expr.value) == ("l", "-sum(t * log(y))")
    q = p.questions
    assert [(x.id, x.kind, x.points) for x in q] == [
        ("dl_do", "grad", 1.0), ("dl_dV", "grad", 2.0), ("dy_do", "jacobian", 1.0)]
    assert q[2].of.value == "y" and q[2].wrt.value == "o" and q[0].of is None
    assert (q[0].subs, q[0].vars, q[0].index, q[0].partial, q[0].allow, q[0].prompt) == ({}, {}, None, {}, {}, None)
    assert p.check == {"dims": {"H": 30}, "data": {"generator": "ellipse_circle", "n": 1000, "seed": 0},
                       "train": {"optimizer": "sgd", "lr": 0.01, "batch_size": 1, "epochs": 5}}
    assert (p.latex, p.aliases, p.description) == ({}, {}, None)


def test_contract_example_positions(tmp_path):
    path = write(tmp_path, CONTRACT_EXAMPLE)
    p = load_problem(path)
    assert p.symbols["W"].where == at(path, 7, 3)
    assert p.forward[0].where == at(path, 12, 3)
    assert p.forward[0].expr.where == at(path, 12, 6)
    assert p.loss.expr == Text("-sum(t * log(y))", at(path, 17, 6))
    assert p.questions[1].where == at(path, 20, 5)
    assert p.questions[1].wrt.where == at(path, 20, 34)
    assert p.questions[2].of.where == at(path, 21, 37)
    # locate: scalar values at the value, collections at their key, missing -> nearest ancestor
    assert p.locate("check", "data", "generator") == at(path, 24, 21)
    assert p.locate("check", "data", "generator", key=True) == at(path, 24, 10)
    assert p.locate("check", "data") == at(path, 24, 3)
    assert p.locate("check", "data", "path") == at(path, 24, 3)
    assert p.locate("check", "train", "lr", "deeper") == at(path, 25, 27)   # the key "lr"
    assert p.locate("questions", 1, "points") == at(path, 20, 45)
    assert p.locate("questions", 9) == at(path, 18, 1)
    assert p.locate() == at(path, 1, 1) and p.locate("nope") == at(path, 1, 1)
    assert Problem("x.yaml", "x", "x", {}, {}, [], None, []).locate("check") == Location("x.yaml")


def test_full_example_values_and_positions(tmp_path):
    path = write(tmp_path, FULL_EXAMPLE)
    p = load_problem(path)
    assert p.title == p.id == "multinomial.v2"
    assert p.description.startswith("Multinomial")
    t, y = p.symbols["t"], p.symbols["y"]
    assert (t.shape, t.kind, y.kind, y.values) == ((), "class", "binary", (0, 1))
    nodes = {n.name: n.expr for n in p.forward}
    assert list(nodes) == ["s", "h", "u", "p"]
    # plain, single-quoted, double-quoted: where is the value's first character
    assert nodes["s"].where == at(path, 11, 8)
    assert nodes["h"] == Text("sigmoid(s)", at(path, 12, 9))
    assert nodes["u"] == Text("w @ h", at(path, 13, 9))
    # block scalars: stripped value, first non-blank content character
    assert nodes["p"] == Text("softmax(u)", at(path, 15, 7))
    assert p.loss.expr == Text("-log(p[t])", at(path, 18, 5))
    text = path.read_text()
    for expr in list(nodes.values()) + [p.loss.expr]:
        assert source_at(text, expr.where).startswith(expr.value)
    q = {x.id: x for x in p.questions}
    assert (q["dl_du"].index, q["dl_du"].points, q["dl_du"].partial, q["dl_du"].allow) == (
        {"j": "row"}, 2.5, {"sign": 0.5, "transpose": 0.0}, {"upstream": False, "nodes": True})
    assert q["dl_du"].prompt == "Show that the derivative is $\\delta_{jt} - p_j$."
    assert q["dh_ds"].index == {"j": "row", "k": "col"}
    assert (q["sig_prime"].lhs.value, q["sig_prime"].vars) == ("sigmoid_prime(r)", {"r": ()})
    sat = q["sat"]
    assert (sat.of.value, sat.var.value, sat.to.value, sat.expr) == ("dl_du", "z", "-oo", None)
    assert sat.subs == {"y": Text("1", at(path, 34, 66))}   # a number becomes its string form
    assert sat.vars == {"z": ()}
    sat2 = q["sat2"]
    assert sat2.expr == Text("-log(sigmoid((2*y - 1)*z))", at(path, 35, 36))
    assert sat2.to.value == "oo" and sat2.subs["y"].value == "0.5"   # .inf -> oo
    assert q["fwd_p"].of.value == "p"
    assert p.latex == {"W": "\\mathbf{W}", "ell": "\\ell"}
    assert p.aliases == {"W": ["W^{(1)}", "W_1"], "w": ["w_2"]}
    assert p.check is None


def test_forward_list_and_mapping_forms_agree(tmp_path):
    as_map = parse_problem(CONTRACT_EXAMPLE, "a.yaml")
    listed = CONTRACT_EXAMPLE.replace("  z: W", "  - z: W").replace("  h: s", "  - h: s") \
        .replace("  o: V", "  - o: V").replace("  y: s", "  - y: s")
    as_list = parse_problem(listed, "a.yaml")
    assert [(n.name, n.expr.value) for n in as_list.forward] == [(n.name, n.expr.value) for n in as_map.forward]
    assert as_list.forward[0].expr.where == Location("a.yaml", 12, 8)


def test_yaml_features(tmp_path):
    """Anchors/merges, keys as written, BOM, empty optional sections, CRLF."""
    text = ("\ufeffid: f\ndims: {D: 2, on: 3}\nsymbols:\n  x: &p {shape: [D, on], role: param}\n"
            "  v: {<<: *p, shape: []}\nforward:\nloss: {l: sum(x) + v}\nquestions:\ncheck: {}\n"
            "title:\nlatex: {}\n")
    p = parse_problem(text, "f.yaml")
    assert p.dims == {"D": 2, "on": 3} and p.symbols["x"].shape == ("D", "on")
    assert (p.symbols["v"].shape, p.symbols["v"].role) == ((), "param")
    assert (p.forward, p.questions, p.check, p.title) == ([], [], {}, "f")
    # YAML 1.1 boolean words stay names/expressions as written
    p = parse_problem("id: a\nsymbols: {on: {shape: [], role: param}}\nloss: {l: on}\n"
                      "questions: [{id: no, kind: grad, wrt: on}]\n", "b.yaml")
    assert (list(p.symbols), p.questions[0].id, p.questions[0].wrt.value) == (["on"], "no", "on")
    path = tmp_path / "crlf.yaml"
    path.write_bytes(("\ufeff" + CONTRACT_EXAMPLE).replace("\n", "\r\n").encode("utf-8"))
    assert load_problem(path).loss.expr.where == at(path, 17, 6)


@pytest.mark.parametrize("path", sorted((ROOT / "problems").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_problems_load(path):
    p = load_problem(path)
    assert p.symbols and p.loss.expr.value


# ----------------------------------------------------------------- bad files

# file -> (message fragment, line, column); each file has exactly one mistake.
BAD_CASES = {
    "01_yaml_syntax": ("YAML syntax error: expected ',' or ']'", 4, 29),
    "02_tab_indent": ("YAML does not allow tabs", 4, 1),
    "03_duplicate_key": ("duplicate key 'z' (first defined at line 7)", 8, 3),
    "04_unknown_top_key": ("unknown key 'fowrard' (did you mean 'forward'?)", 6, 1),
    "05_missing_loss": ("missing required key 'loss'", 1, 1),
    "06_two_loss_entries": ("loss must have exactly one entry; 'l2' is a second one", 10, 3),
    "07_dim_zero": ("dims 'D' must be a positive integer, found '0'", 2, 11),
    "08_dim_negative": ("dims 'D' must be a positive integer, found '-1'", 3, 6),
    "09_dim_not_a_number": ("dims 'D' must be a positive integer, found 'three'", 3, 6),
    "10_dim_too_large": ("dims are the small sizes used for symbolic verification; keep them ≤ 64", 3, 6),
    "11_shape_undefined_dim": ("symbol 'w' shape uses 'H', which is not declared under dims", 5, 15),
    "12_bad_role": ("role must be one of input, target, param; found 'parameter' (did you mean 'param'?)", 5, 25),
    "13_kind_on_param": ("kind is only for targets", 5, 32),
    "14_class_target_vector": ("a class target holds one class index, so its shape must be []", 7, 12),
    "15_values_on_vector": ("values are only allowed on scalars", 6, 47),
    "16_node_is_symbol": ("node 'x' is already declared (at line 4)", 8, 3),
    "17_reserved_symbol_name": ("symbol 'exp' is reserved", 6, 3),
    "18_duplicate_question_id": ("duplicate question id 'dl_dw' (first at line 11)", 13, 10),
    "19_question_missing_wrt": ("question 'dl_dw' is missing required key 'wrt'", 11, 5),
    "20_unknown_question_kind": ("found 'gradient' (did you mean 'grad'?)", 11, 23),
    "21_limit_of_and_expr": ("a limit takes exactly one of 'of'", 15, 5),
    "22_bad_index_value": ("index 'j' must be one of row, col; found 'column' (did you mean 'col'?)", 11, 48),
    "23_negative_points": ("points must be a number ≥ 0, found '-1'", 11, 45),
    "24_empty_file": ("the problem file is empty", 1, 1),
    "25_top_level_list": ("top level of a problem file must be a mapping", 1, 1),
    "26_not_utf8": ("not UTF-8", 7, 17),
    "27_bad_problem_id": ("id must be a word of letters, digits", 1, 5),
    "28_shape_three_entries": ("shape must be a list of at most 2 entries", 4, 14),
    "29_onehot_scalar": ("a onehot target must be a vector", 6, 14),
    "30_forward_entry_two_keys": ("each forward list entry must be one 'name: expression' pair", 8, 5),
    "31_loss_not_mapping": ("loss must be exactly one entry", 8, 7),
    "32_key_of_other_kind": ("'subs' is not used by grad questions (only by limit)", 11, 37),
    "33_question_key_typo": ("unknown key 'pionts' in question 'dl_dw' (did you mean 'points'?)", 14, 5),
    "34_partial_out_of_range": ("partial 'transpose' must be a number between 0 and 1", 14, 26),
    "35_allow_not_bool": ("allow 'upstream' must be true or false", 14, 23),
    "36_latex_undeclared_name": ("latex: 'ww' is not a declared symbol or node (did you mean 'w'?)", 11, 3),
    "37_check_not_mapping": ("check must be a mapping", 10, 8),
    "38_empty_expression": ("node 'z' is empty", 7, 6),
    "39_limit_of_unknown_question": ("of must be the id of another question, found 'dl_dzz' (did you mean 'dl_dz'?)", 12, 32),
    "40_values_repeated": ("values must not repeat a number", 6, 54),
    "41_python_keyword_name": ("'lambda' is a Python keyword", 6, 3),
    "42_undefined_alias": ("YAML syntax error: found undefined alias 'param'", 5, 6),
    "43_two_documents": ("expected a single document", 10, 1),
    "44_index_two_rows": ("index names more than one 'row' index", 11, 44),
    "45_question_not_mapping": ("each question must be a mapping", 11, 5),
    "46_expression_is_list": ("node 'z' must be a single value, found a list", 7, 6),
    "47_missing_role": ("symbol 'x' is missing required key 'role'", 4, 6),
    "48_unsupported_tag": ("unsupported YAML tag '!python/name:os.system'", 7, 6),
    "49_recursive_alias": ("recursive YAML alias", 10, 8),
    "50_sinusoid_range_reversed": ("check.data.range", 13, 46),
    "51_test_fraction_one": ("check.test.fraction", 14, 20),
    "52_test_source_other_features": ("check.test:", 14, 21),
    "53_choice_value_unknown": ("'reluu' is neither an elementwise function", 11, 18),
    "54_choice_name_taken": ("choice 'x' is already a symbol, node or size name", 11, 3),
    "55_choice_one_value": ("choice 'act' needs a list of 2 to 20 values", 11, 8),
    "56_choice_mixed": ("choice 'act' mixes functions and names ('h')", 11, 15),
    "57_choice_repeated": ("choice 'act' lists 'tanh' twice", 11, 21),
    "58_choice_not_differentiable": ("'relu_prime' is not a differentiable elementwise function", 11, 9),
}
# structural mistakes that the JSON schema can express too
SCHEMA_REJECTS = {name for name in BAD_CASES if name[:2] in {
    "04", "05", "06", "07", "08", "09", "10", "12", "13", "14", "15", "17", "19", "20", "21", "22",
    "23", "24", "25", "27", "28", "29", "30", "31", "32", "33", "34", "35", "37", "38", "40", "41",
    "45", "46", "47", "55", "57", "58"}}


def test_every_fixture_has_an_expectation():
    assert sorted(p.stem for p in BAD.glob("*.yaml")) == sorted(BAD_CASES)


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_problem(name):
    fragment, line, col = BAD_CASES[name]
    path = BAD / f"{name}.yaml"
    with pytest.raises(UserError) as info:
        load_problem(path)
    errors = info.value.errors if isinstance(info.value, UserErrors) else [info.value]
    assert len(errors) == 1, str(info.value)
    text = str(info.value)
    assert "\n" not in text
    assert re.fullmatch(rf"{re.escape(str(path))}:\d+:\d+: \S.*", text), text
    assert fragment in text
    assert (errors[0].where.line, errors[0].where.column) == (line, col), text


def test_all_errors_are_collected_in_file_order():
    text = ("id: x\ndims: {D: 0, H: 100}\nsymbols:\n  x: {shape: [Q], role: inp}\n"
            "forward: {x: x}\nloss: {l: x, m: x}\nquestions: [{id: q, kind: grad}, {id: q, kind: nope}]\n"
            "bogus: 1\n")
    with pytest.raises(UserErrors) as info:
        parse_problem(text, "m.yaml")
    lines = str(info.value).splitlines()
    assert len(lines) == len(info.value.errors) == 9
    positions = [(e.where.line, e.where.column) for e in info.value.errors]
    assert positions == sorted(positions)


def test_too_large_and_unreadable(tmp_path):
    big = write(tmp_path, CONTRACT_EXAMPLE + "#" * (1024 * 1024) + "\n", "big.yaml")
    with pytest.raises(UserError, match="larger than 1 MB"):
        load_problem(big)
    with pytest.raises(UserError, match="larger than 1 MB"):
        parse_problem("#" * (1024 * 1024 + 1), "big.yaml")
    with pytest.raises(UserError, match="cannot read problem file") as info:
        load_problem(tmp_path / "missing.yaml")
    assert str(info.value).startswith(str(tmp_path / "missing.yaml") + ": ")


@pytest.mark.parametrize("text, fragment", [
    ("a: \x07\n", "unacceptable character #x0007"),
    ("a: " + "[" * 600, "nested too deeply"),
    ("a: !!int abc\n", "'abc' is not a valid int"),
])
def test_odd_input_gives_user_errors(text, fragment):
    with pytest.raises(UserError, match=re.escape(fragment)):
        parse_problem(text, "odd.yaml")


# ----------------------------------------------------------------- JSON schema

@pytest.fixture(scope="module")
def validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_accepts_good_problems(validator):
    docs = [CONTRACT_EXAMPLE, FULL_EXAMPLE]
    docs += [p.read_text(encoding="utf-8") for p in sorted((ROOT / "problems").glob("*.yaml"))]
    for text in docs:
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(text))]
        assert not errors, errors


@pytest.mark.parametrize("name", sorted(SCHEMA_REJECTS))
def test_schema_rejects_bad_problems(validator, name):
    assert not validator.is_valid(yaml.safe_load((BAD / f"{name}.yaml").read_text(encoding="utf-8")))


def test_schema_matches_the_tables():
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    defs = schema["$defs"]
    assert set(defs["name"]["not"]["enum"]) == set(RESERVED) | set(keyword.kwlist)
    assert defs["symbol"]["properties"]["role"]["enum"] == list(ROLES)
    assert defs["symbol"]["properties"]["kind"]["enum"] == list(TARGET_KINDS)
    assert defs["question"]["properties"]["kind"]["enum"] == list(QUESTION_KINDS)
    assert all("description" in v for v in schema["properties"].values())


# ----------------------------------------------------------------- property tests

# names include YAML 1.1 words (no, on, null, ...): keys are names as written
NAME = st.sampled_from(["x", "W", "b", "h_1", "_z", "y", "n", "no", "on", "off", "yes", "null", "true",
                        "e", "Id", "sig2", "a", "t"])
ID_CHARS = string.ascii_letters + string.digits + "_.-"
TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn", "Zl", "Zp")), max_size=12)
EXPR_STR = TEXT.filter(lambda s: s.strip())
EXPR = EXPR_STR | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
SIZE = st.integers(1, 64)


def expected_text(value) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "oo" if value > 0 else "-oo"
    return str(value)


@st.composite
def problems(draw):
    """A valid problem as plain Python data."""
    names = draw(st.lists(NAME, min_size=8, max_size=10, unique=True))
    dims = {n: draw(SIZE) for n in names[:draw(st.integers(0, 2))]}
    entry = st.sampled_from(sorted(dims)) | SIZE if dims else SIZE
    n_symbols = draw(st.integers(1, 3))
    symbols = {}
    for n in names[2:2 + n_symbols]:
        role = draw(st.sampled_from(ROLES))
        kind = draw(st.sampled_from(TARGET_KINDS + (None,))) if role == "target" else None
        shape = [] if kind == "class" else [draw(entry)] if kind == "onehot" else draw(st.lists(entry, max_size=2))
        spec = {"shape": shape, "role": role}
        if kind:
            spec["kind"] = kind
        if not shape and draw(st.booleans()):
            spec["values"] = draw(st.lists(st.integers(-3, 3) | st.sampled_from([0.5, -1.5]),
                                           min_size=1, max_size=3, unique=True))
        symbols[n] = spec
    node_names = names[2 + n_symbols:-1]
    nodes = {n: draw(EXPR) for n in node_names[:draw(st.integers(0, len(node_names)))]}
    forward = [{k: v} for k, v in nodes.items()] if draw(st.booleans()) else nodes
    doc = {"id": draw(st.text(ID_CHARS, min_size=1, max_size=12)),
           "dims": dims, "symbols": symbols, "forward": forward, "loss": {names[-1]: draw(EXPR)}}
    if draw(st.booleans()):
        doc["title"] = draw(TEXT)
    if draw(st.booleans()):
        doc["description"] = draw(TEXT)
    qids = draw(st.lists(NAME | st.sampled_from(["dl_dW", "q1", "Q_2"]), max_size=4, unique=True))
    questions = []
    for qid in qids:
        kind = draw(st.sampled_from(list(QUESTION_KINDS)))
        q = {"id": qid, "kind": kind}
        for key in QUESTION_KINDS[kind][0]:
            q[key] = draw(EXPR)
        if kind == "limit":
            others = [i for i in qids if i != qid]
            if others and draw(st.booleans()):
                q["of"] = draw(st.sampled_from(others))
            else:
                q["expr"] = draw(EXPR)
            q["subs"] = draw(st.dictionaries(NAME, EXPR, max_size=2))
        if draw(st.booleans()):
            q["vars"] = draw(st.dictionaries(NAME, st.lists(entry, max_size=2), max_size=2))
        if draw(st.booleans()):
            axes = draw(st.lists(st.sampled_from(["row", "col"]), min_size=1, max_size=2, unique=True))
            q["index"] = dict(zip(draw(st.lists(NAME, min_size=2, max_size=2, unique=True)), axes))
        if draw(st.booleans()):
            q["points"] = draw(st.integers(0, 10) | st.floats(0, 100))
        if draw(st.booleans()):
            q["prompt"] = draw(TEXT)
        if draw(st.booleans()):
            q["partial"] = draw(st.dictionaries(TEXT, st.floats(0, 1), max_size=2))
            q["allow"] = draw(st.dictionaries(TEXT, st.booleans(), max_size=2))
        questions.append(q)
    doc["questions"] = questions
    declared = list(symbols) + list(nodes) + [names[-1]]
    doc["latex"] = draw(st.dictionaries(st.sampled_from(declared), TEXT, max_size=2))
    doc["aliases"] = draw(st.dictionaries(st.sampled_from(declared), TEXT | st.lists(TEXT, max_size=2), max_size=2))
    doc["check"] = draw(st.none() | st.just({}) | check_sections(list(doc["dims"])))
    return doc


@st.composite
def check_sections(draw, dim_names):
    """Valid check: sections (each value within the documented limits)."""
    check = {"data": {"generator": draw(st.sampled_from(["moons", "xor", "spirals"])),
                      "n": draw(st.integers(2, 5000)), "seed": draw(st.integers(0, 2**31))}}
    if dim_names and draw(st.booleans()):
        check["dims"] = draw(st.dictionaries(st.sampled_from(dim_names), st.integers(1, 256), max_size=2))
    train = {}
    if draw(st.booleans()):
        train["lr"] = draw(st.floats(1e-6, 10) | st.lists(st.floats(1e-6, 10), min_size=1, max_size=4))
    if draw(st.booleans()):
        train["epochs"] = draw(st.integers(1, 50))
        train["batch_size"] = draw(st.integers(1, 64))
    if draw(st.booleans()):
        train["momentum"] = draw(st.floats(0, 0.99))
        train["init"] = draw(st.sampled_from(["xavier", "he", 0.1]))
    if train:
        check["train"] = train
    if draw(st.booleans()):
        check["repeats"] = draw(st.integers(1, 5))
    if draw(st.booleans()):
        check["expect"] = {"final_loss_below": draw(st.floats(-10, 10)),
                           "accuracy_above": draw(st.floats(0, 0.99))}
    return check


def dump(doc, draw_style) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=draw_style[0], default_flow_style=draw_style[1])


STYLES = st.tuples(st.booleans(), st.sampled_from([False, None, True]))
PROPERTY = settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def check_text(text: str, expr: Text, original) -> None:
    assert expr.value == expected_text(original)
    if isinstance(original, str) and original[0] in string.ascii_letters + string.digits:
        assert source_at(text, expr.where).startswith(original[0])


@PROPERTY
@given(problems(), STYLES)
def test_round_trip(doc, style):
    text = dump(doc, style)
    p = parse_problem(text, "gen.yaml")
    assert (p.id, p.title, p.description) == (doc["id"], doc.get("title", doc["id"]), doc.get("description"))
    assert p.dims == doc["dims"]
    for name, spec in doc["symbols"].items():
        s = p.symbols[name]
        assert (s.shape, s.role) == (tuple(spec["shape"]), spec["role"])
        assert s.kind == spec.get("kind", "real" if spec["role"] == "target" else None)
        assert s.values == (tuple(spec["values"]) if "values" in spec else None)
    nodes = doc["forward"] if isinstance(doc["forward"], dict) else {k: v for d in doc["forward"] for k, v in d.items()}
    assert [n.name for n in p.forward] == list(nodes)
    for n in p.forward:
        check_text(text, n.expr, nodes[n.name])
    (loss_name, loss_expr), = doc["loss"].items()
    assert p.loss.name == loss_name
    check_text(text, p.loss.expr, loss_expr)
    assert [q.id for q in p.questions] == [q["id"] for q in doc["questions"]]
    for q, raw in zip(p.questions, doc["questions"]):
        assert q.kind == raw["kind"]
        for key in ("wrt", "of", "lhs", "rhs", "expr", "var", "to"):
            if key in raw:
                check_text(text, getattr(q, key), raw[key])
            else:
                assert getattr(q, key) is None
        assert {k: v.value for k, v in q.subs.items()} == {k: expected_text(v) for k, v in raw.get("subs", {}).items()}
        assert q.vars == {k: tuple(v) for k, v in raw.get("vars", {}).items()}
        assert (q.index, q.points, q.prompt) == (raw.get("index"), raw.get("points", 1.0), raw.get("prompt"))
        assert (q.partial, q.allow) == (raw.get("partial", {}), raw.get("allow", {}))
    assert p.latex == doc["latex"]
    assert p.aliases == {k: [v] if isinstance(v, str) else v for k, v in doc["aliases"].items()}
    assert p.check == doc["check"]
    if doc["check"]:
        settings_match(p.settings, doc["check"])
    else:
        assert p.settings is None


def settings_match(s, check: dict) -> None:
    """The typed settings hold what the check: section says (defaults elsewhere)."""
    train = check.get("train", {})
    lr = train.get("lr", 0.01)
    assert s.lrs == (lr if isinstance(lr, list) else [lr])
    assert s.lr_sweep == (isinstance(lr, list) and len(lr) > 1)
    assert (s.epochs, s.batch_size, s.momentum) == (train.get("epochs", 10), train.get("batch_size", 1),
                                                    train.get("momentum", 0.0))
    assert s.init == train.get("init", "xavier")
    assert s.repeats == check.get("repeats", 1)
    assert s.dims == check.get("dims", {})
    assert s.data == check["data"]
    assert s.expect == check.get("expect", {})


def delete_required(doc, which: str) -> None:
    """Remove one required key from a generated problem."""
    if which in ("id", "symbols", "loss"):
        del doc[which]
    elif which in ("shape", "role"):
        del next(iter(doc["symbols"].values()))[which]
    else:
        assume(doc["questions"])
        q = doc["questions"][0]
        del q[{"qid": "id", "kind": "kind"}.get(which) or QUESTION_KINDS[q["kind"]][0][0]]


@PROPERTY
@given(problems(), STYLES, st.sampled_from(["id", "symbols", "loss", "shape", "role", "qid", "kind", "kind_key"]))
def test_deleting_a_required_key_is_a_user_error(doc, style, which):
    delete_required(doc, which)
    with pytest.raises(UserErrors) as info:
        parse_problem(dump(doc, style), "gen.yaml")
    for line in str(info.value).splitlines():
        assert re.match(r"gen\.yaml:\d+:\d+: \S", line), line


@PROPERTY
@given(problems(), st.data())
def test_mangled_files_give_user_errors_only(doc, data):
    text = yaml.safe_dump(doc, sort_keys=False)
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(text)))
        j = data.draw(st.integers(i, min(len(text), i + 8)))
        text = text[:i] + data.draw(st.sampled_from(["", ":", "-", " ", "\n", "\t", "[", "{", "'", "&a", "*a",
                                                     "<<: ", "? ", "!!int ", "!x ", "0", "oo"])) + text[j:]
    try:
        parse_problem(text, "gen.yaml")
    except UserError as exc:
        assert str(exc).startswith("gen.yaml")


def test_schema_reserved_names_come_from_the_registry():
    from derivkit.ops import reserved_names
    schema = json.loads(SCHEMA.read_text())
    assert set(schema["$defs"]["name"]["not"]["enum"]) == set(reserved_names()) | set(keyword.kwlist)
