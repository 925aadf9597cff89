"""Tests for problem variants: choices read in place of a name, unused nodes dropped, a size of 0
bypassing its layer (derivkit.variants, with parse.Scope.renames and graph.build_graph(choices))."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derivkit.derive import derive
from derivkit.errors import Location, UserError
from derivkit.expr import symbols_in
from derivkit.gradcheck import gradcheck
from derivkit.graph import build_graph
from derivkit.ops import FUNCTIONS
from derivkit.parse import Scope, parse_expression
from derivkit.problem import CHOICE_FUNCTIONS, load_problem, parse_problem, validate_file
from derivkit.training.compile import compile_problem
from derivkit.variants import variant

from helpers import ROOT, make_scope
from strategies import ACTIVATIONS, LOSSES, mlp_problem_dict

HERE = ROOT / "tests"
SEED_002 = ROOT / "problems" / "sigmoid_chain_squared_error.yaml"
THREE_LAYER = HERE / "problems" / "three_layer_mlp.yaml"
CHOICE_354 = HERE / "problems" / "choice_mlp_354.yaml"
SCHEMA = ROOT / "derivkit" / "problem.schema.json"


def graph_of(path):
    return build_graph(load_problem(path))


def trains(g):
    """The variant derives, gradient-checks and compiles for minibatch training."""
    d = derive(g)
    result = gradcheck(g, d)
    assert result.passed, (result.worst, result.max_rel_error)
    compiled = compile_problem(g, d)
    assert set(compiled.params) == {n for n in g.leaves if g.role(n) == "param"}
    return compiled


# ----------------------------------------------------------------- parse: renames

def test_renames_read_a_function_and_a_name_as_their_values():
    scope = make_scope({"x": ("D",), "W": ("H", "D"), "h2": ("H",)}, {"D": 3, "H": 4})
    renamed = Scope(scope.lookup, scope.names, scope.dims, renames={"act": "sigmoid", "last": "h2"})
    assert parse_expression("act(W @ x) + last", renamed) == parse_expression("sigmoid(W @ x) + h2", scope)


def test_an_error_under_a_rename_points_at_the_text_as_written():
    scope = make_scope({"x": ("D",)}, {"D": 3})
    renamed = Scope(scope.lookup, scope.names, scope.dims, renames={"last": "h9", "act": "relu"})
    with pytest.raises(UserError) as info:
        parse_expression("act(x) + last", renamed, Location("f.yaml", 4, 7))
    assert info.value.where == Location("f.yaml", 4, 7 + len("act(x) + "))
    assert "h9" in info.value.message and "last" in info.value.message


def test_a_misspelt_choice_is_suggested(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text(CHOICE_354.read_text(encoding="utf-8").replace("act(W1 @ x", "actt(W1 @ x"))
    errors = validate_file(path)
    assert len(errors) == 1 and "did you mean 'act'?" in errors[0].message
    assert errors[0].where.column == path.read_text().splitlines()[errors[0].where.line - 1].index("actt") + 1


# ----------------------------------------------------------------- build_graph(choices)

def test_the_default_graph_reads_every_choice_at_its_first_value():
    g = graph_of(CHOICE_354)
    assert g.choices == {"act": "relu", "last": "h3"}
    assert g.nodes["h1"].op == "relu" and symbols_in(g.nodes["y_hat"]) == {"V", "h3", "c"}


def test_questions_and_answers_read_choices_at_the_graph_value():
    g = variant(graph_of(CHOICE_354), {"last": "h2", "act": "sigmoid"})
    assert parse_expression("act(last)", g.scope()) == parse_expression("sigmoid(h2)", g.scope())


def test_build_graph_with_choices_and_a_wrong_one():
    problem = load_problem(CHOICE_354)
    g = build_graph(problem, {"act": "sigmoid"})
    assert all(g.nodes[h].op == "sigmoid" for h in ("h1", "h2", "h3"))
    for bad in ({"act": "tanh"}, {"depth": "h1"}):
        with pytest.raises(UserError) as info:
            build_graph(problem, bad)
        assert info.value.where.line is not None


# ----------------------------------------------------------------- variant: the brief's networks

def test_width_zero_makes_seed_002_a_linear_model():
    g = variant(graph_of(SEED_002), dims={"H": 0})
    assert set(g.leaves) == {"x", "y", "W2", "b2"}
    assert g.shape("W2") == ("D", "K") and g.problem.symbols["W2"].shape == ("D", "K")
    assert "H" not in {s for n in g.names for s in g.shape(n)}
    compiled = trains(g)
    rng = np.random.default_rng(0)
    dims = {"D": 2, "K": 3}
    compiled = compile_problem(g, derive(g), dims=dims)
    x, y = rng.normal(size=(5, 2)), rng.normal(size=(5, 3))
    W2, b2 = rng.normal(size=(2, 3)), rng.normal(size=3)
    loss = compiled.evaluate({"x": x, "y": y, "W2": W2, "b2": b2})["loss"]
    np.testing.assert_allclose(loss, ((y - (x @ W2 + b2)) ** 2).sum(axis=1))


@pytest.mark.parametrize("zero", [{"H1": 0}, {"H2": 0}, {"H1": 0, "H2": 0}])
def test_three_layer_mlp_without_hidden_layers(zero):
    g0 = graph_of(THREE_LAYER)
    g = variant(g0, dims=zero)
    assert not any(d in g.shape(n) for d in zero for n in g.names)
    assert len(g.nodes) == len(g0.nodes) - 2 * len(zero)
    assert g.dims == {**g0.dims, **zero}
    trains(g)


@pytest.mark.parametrize("act, last", list(itertools.product(["relu", "sigmoid"], ["h3", "h2", "h1"])))
def test_the_354_network_for_every_choice(act, last):
    g = variant(graph_of(CHOICE_354), {"act": act, "last": last})
    depth = int(last[1])
    assert [n for n in g.nodes if n.startswith("h")] == [f"h{i}" for i in range(1, depth + 1)]
    assert all(g.nodes[f"h{i}"].op == act for i in range(1, depth + 1))
    assert set(g.leaves) == {"x", "y", "V", "c"} | {f"{p}{i}" for p in "Wb" for i in range(1, depth + 1)}
    assert set(g.leaves) == set(g.problem.symbols) and [s.name for s in g.problem.forward] == list(g.nodes)[:-1]
    assert g.shape("V") == ("K", f"H{depth}")
    assert g.choices == {"act": act, "last": last}
    trains(g)


def test_a_variant_drops_what_the_loss_does_not_use():
    g = variant(graph_of(CHOICE_354), {"last": "h2"})
    consumers = g.consumers()
    assert all(consumers[n] for n in g.names if n != g.loss)         # everything kept is used
    assert not {"h3", "W3", "b3"} & set(g.names)


def test_the_default_variant_is_the_default_graph():
    g0 = graph_of(THREE_LAYER)
    g = variant(g0)
    assert g.nodes == g0.nodes and g.leaves == g0.leaves and g.dims == g0.dims


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(act=st.sampled_from(["relu", "sigmoid"]), last=st.sampled_from(["h1", "h2", "h3"]),
       zero=st.sets(st.sampled_from(["H1", "H2", "H3"])), seed=st.integers(0, 2**16))
def test_random_settings_give_gradients_that_agree_with_central_differences(act, last, zero, seed):
    g = variant(graph_of(CHOICE_354), {"act": act, "last": last}, {d: 0 for d in zero})
    assert not any(d in g.shape(n) for d in zero for n in g.names)
    result = gradcheck(g, derive(g), seed=seed)
    assert result.passed, (act, last, zero, result.worst)


@st.composite
def mlp_settings(draw):
    """A random MLP whose hidden activations are a choice, and a setting: a value of the
    choice and some hidden sizes set to 0."""
    depth = draw(st.integers(2, 4))
    doc = mlp_problem_dict(depth, ["act"] * (depth - 1), draw(st.sampled_from(LOSSES)),
                           [draw(st.integers(1, 3)) for _ in range(depth + 1)])
    doc["choices"] = {"act": draw(st.lists(st.sampled_from(ACTIVATIONS), min_size=2, max_size=4, unique=True))}
    zero = draw(st.sets(st.sampled_from([f"H{i}" for i in range(1, depth)])))
    return yaml.safe_dump(doc, sort_keys=False), draw(st.sampled_from(doc["choices"]["act"])), zero, depth


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mlp_settings(), st.integers(0, 2**16))
def test_random_mlp_settings_keep_one_layer_per_remaining_size(setting, seed):
    text, act, zero, depth = setting
    g = variant(build_graph(parse_problem(text, "gen.yaml")), {"act": act}, {d: 0 for d in zero})
    weights = [n for n in g.leaves if n.startswith("W")]
    assert len(weights) == depth - len(zero)
    assert all(e.op == act for n, e in g.nodes.items() if n.startswith("a"))
    assert not any(d in g.shape(n) for d in zero for n in g.names)
    result = gradcheck(g, derive(g), seed=seed)
    assert result.passed, (act, zero, result.worst)


# ----------------------------------------------------------------- variant: what cannot be bypassed

HEAD = """\
id: bypass
dims: {D: 2, H: 3, K: 1}
symbols:
  x: {shape: [D], role: input}
  s: {shape: [D], role: input}
  y: {shape: [K], role: target}
  W: {shape: [H, D], role: param}
  U: {shape: [H, D], role: param}
  V: {shape: [K, H], role: param}
"""
CHECK = """\
check:
  dims: {H: 8}
  data: {generator: sinusoid, n: 100, seed: 0}
  hidden: {dim: H, values: [0, 3]}
"""
CANNOT = {
    "two inputs": "forward:\n  h: tanh(W @ x + U @ s)\n  o: V @ h\nloss:\n  l: sum((y - o)**2)\n",
    "two outputs": "forward:\n  z: W @ x\n  h: tanh(z)\n  o: V @ h + V @ z\nloss:\n  l: sum((y - o)**2)\n",
    "weight used by the loss": "forward:\n  h: tanh(W @ x)\n  o: V @ h\nloss:\n  l: sum((y - o)**2) + sum(W**2)\n",
    "size used by the loss": "forward:\n  h: tanh(W @ x)\n  o: V @ h\nloss:\n  l: sum((y - o)**2) / H\n",
    "no input": "forward:\n  h: tanh(W @ ones(D))\n  o: V @ h\nloss:\n  l: sum((y - o)**2)\n",
}


@pytest.mark.parametrize("case", sorted(CANNOT))
def test_a_layer_that_cannot_be_bypassed_is_reported_at_the_sweep(case, tmp_path):
    text = HEAD + CANNOT[case] + CHECK
    path = tmp_path / "p.yaml"
    path.write_text(text)
    g = graph_of(path)
    trains(variant(g, dims={"H": 3}))            # the network itself is fine
    with pytest.raises(UserError) as info:
        variant(g, dims={"H": 0})
    hidden = text.splitlines().index("  hidden: {dim: H, values: [0, 3]}") + 1
    assert info.value.where == Location(str(path), hidden, 3)
    assert "H = 0" in info.value.message


def test_a_size_the_variant_no_longer_uses_is_left_alone():
    g0 = graph_of(CHOICE_354)
    shallow = variant(g0, {"last": "h1"})
    g = variant(g0, {"last": "h1"}, {"H2": 0, "H3": 0})
    assert g.nodes == shallow.nodes and g.dims["H2"] == g.dims["H3"] == 0


@pytest.mark.parametrize("choices, dims", [({"act": "tanh"}, {}), ({"depth": "h1"}, {}), ({}, {"H4": 0})])
def test_a_setting_the_problem_does_not_have_is_an_error(choices, dims):
    with pytest.raises(UserError) as info:
        variant(graph_of(CHOICE_354), choices, dims)
    assert info.value.where.file == str(CHOICE_354) and info.value.where.line is not None


def test_the_size_of_an_input_is_not_a_layer():
    g = graph_of(SEED_002)
    with pytest.raises(UserError) as info:
        variant(g, dims={"D": 0})
    assert info.value.where.line is not None and "'x'" in info.value.message


# ----------------------------------------------------------------- validate

CHOICE_HEAD = """\
id: chosen
dims: {D: 2, H: 3, K: 1}
symbols:
  x: {shape: [D], role: input}
  y: {shape: [K], role: target}
  W1: {shape: [H, D], role: param}
  W2: {shape: [H, H], role: param}
  V: {shape: [K, H], role: param}
forward:
  h0: sigmoid(W1 @ x)
  h1: tanh(W1 @ x)
  h2: tanh(W2 @ src)
  h3: tanh(W2 @ h2)
  o: V @ last
loss:
  l: sum((y - o)**2)
choices:
"""


@pytest.mark.parametrize("values, bad, fragment", [
    ("src: [h1, h3]\n  last: [h3, h2]", ("src", 1), "used before it is defined"),
    ("src: [h1, h0]\n  last: [h3, W1, h1]", ("last", 1), "axes"),
    ("src: [h1, x]\n  last: [h3, h2]", ("src", 1), "more than one axis"),
    ("src: [h1, h0]\n  last: [h3, h2]\n  act: [relu, tanh]", ("act", None), "not used"),
])
def test_validate_builds_every_value_of_every_choice(tmp_path, values, bad, fragment):
    path = tmp_path / "c.yaml"
    text = CHOICE_HEAD + "  " + values + "\n"
    path.write_text(text)
    errors = validate_file(path)
    assert len(errors) == 1, errors
    name, index = bad
    line = next(i for i, s in enumerate(text.splitlines(), 1) if s.startswith(f"  {name}:"))
    row = text.splitlines()[line - 1]
    items = row[row.index("[") + 1:row.index("]")].split(", ")
    column = row.index(name) + 1 if index is None else row.index("[") + 2 + sum(len(i) + 2 for i in items[:index])
    assert (errors[0].where.line, errors[0].where.column) == (line, column)
    assert fragment in errors[0].message


def test_validate_accepts_the_choice_problem():
    assert validate_file(CHOICE_354) == []


def test_choice_functions_come_from_the_registry():
    assert set(CHOICE_FUNCTIONS) == {n for n, op in FUNCTIONS.items() if op.elementwise and op.differentiable}
    assert {"sigmoid", "relu", "tanh", "softplus"} <= set(CHOICE_FUNCTIONS)


def test_schema_knows_choices():
    jsonschema = pytest.importorskip("jsonschema")
    import yaml
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    doc = yaml.safe_load(CHOICE_354.read_text(encoding="utf-8"))
    assert not list(validator.iter_errors(doc))
    assert schema["properties"]["choices"]["additionalProperties"]["items"]["anyOf"][0]["enum"] \
        == list(CHOICE_FUNCTIONS)
    for wrong in ([], ["relu"], ["relu", "relu"], [1, 2]):
        assert not validator.is_valid({**doc, "choices": {"act": wrong}})


def test_a_choice_problem_parses_with_its_choices():
    problem = parse_problem(CHOICE_354.read_text(encoding="utf-8"), "c.yaml")
    assert problem.choices == {"act": ("relu", "sigmoid"), "last": ("h3", "h2", "h1")}
    assert problem.default_choices == {"act": "relu", "last": "h3"}


def test_a_wrong_choice_is_reported_once_not_again_where_it_is_swept(tmp_path):
    text = """\
id: c
dims: {D: 1, H: 3, K: 1}
choices:
  act: [relu, softmax]
symbols:
  x: {shape: [D], role: input}
  y: {shape: [K], role: target, kind: real}
  W: {shape: [H, D], role: param}
  V: {shape: [K, H], role: param}
forward:
  h: act(W @ x)
  o: V @ h
loss:
  l: sum((o - y)**2)
check:
  data: {generator: sinusoid, n: 50}
  sweep: {act: [relu, softmax]}
"""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    errors = validate_file(path)
    assert len(errors) == 1 and (errors[0].where.line, errors[0].where.column) == (4, 15)
