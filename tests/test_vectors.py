"""`vectors --at LEAVES.json` (contract §6): given leaves are used, the rest drawn from the seed;
the numbers there match an independent NumPy forward pass and central differences; every
mistake in the leaves file is one located line, all of them reported, exit 2."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from helpers import LOCATED, ROOT, graph_from_text, loaded, locate
from derivkit.cli import main
from derivkit.errors import UserErrors
from derivkit.numeric import random_leaves
from derivkit.vectors import parse_leaves, vectors

MLP = ROOT / "problems" / "mlp_sigmoid_softmax_ce.yaml"                      # one-hot target
MULTINOMIAL = ROOT / "problems" / "multinomial_regression_index.yaml"        # class-index target
SIGNED = ROOT / "tests" / "problems" / "sigmoid_signed_target.yaml"          # binary, values: [0, 1]
SUBSET_PROBLEMS = [MLP, MULTINOMIAL, SIGNED, ROOT / "tests" / "problems" / "scalar_chain.yaml"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def error_lines(result) -> list[str]:
    return [ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]


# ---------------------------------------------------------------- independent NumPy forward passes
def softmax(o):
    e = np.exp(o - o.max())
    return e / e.sum()


def mlp_forward(v: dict, bump=None) -> dict:
    """The MLP of mlp_sigmoid_softmax_ce.yaml; ``bump`` = (name, index, eps) adds eps to one
    entry of a leaf or node right where it is defined, for central differences."""
    v = {k: np.array(a, dtype=float) for k, a in v.items()}

    def at(name, value):
        value = np.array(value, dtype=float)
        if bump and bump[0] == name:
            value[bump[1]] += bump[2]
        v[name] = value
        return value
    x, W, b, V, c, t = (at(n, v[n]) for n in ("x", "W", "b", "V", "c", "t"))
    z = at("z", W @ x + b)
    h = at("h", 1 / (1 + np.exp(-z)))
    o = at("o", V @ h + c)
    y = at("y", softmax(o))
    at("l", -np.sum(t * np.log(y)))
    return v


def multinomial_forward(v: dict, bump=None) -> dict:
    """u = W x + b, p = softmax(u), ell = log p_t; ``bump`` as in :func:`mlp_forward`."""
    v = {k: (a if k == "t" else np.array(a, dtype=float)) for k, a in v.items()}

    def at(name, value):
        value = np.array(value, dtype=float)
        if bump and bump[0] == name:
            value[bump[1]] += bump[2]
        v[name] = value
        return value
    x, W, b = (at(n, v[n]) for n in ("x", "W", "b"))
    u = at("u", W @ x + b)
    p = at("p", softmax(u))
    at("ell", np.log(p[int(v["t"])]))
    return v


def assert_matches_numpy(doc: dict, forward, loss: str, fixed: set[str], eps: float = 1e-6):
    """Nodes and loss equal ``forward`` at the document's leaves; every gradient equals the
    central difference of the loss in each entry (the target ``fixed`` excepted)."""
    ref = forward(doc["leaves"])
    for name, value in doc["nodes"].items():
        np.testing.assert_allclose(value, ref[name], rtol=1e-9, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(doc["loss"], ref[loss], rtol=1e-9, atol=1e-12)
    for name, grad in doc["gradients"].items():
        if name in fixed:
            continue
        numeric = np.zeros(np.shape(ref[name]))
        for i in np.ndindex(numeric.shape):
            v = abs(float(ref[name][i]))    # a tiny probability needs a step smaller than itself
            h = min(eps, 1e-4 * v) if v else eps
            numeric[i] = (forward(doc["leaves"], (name, i, h))[loss]
                          - forward(doc["leaves"], (name, i, -h))[loss]) / (2 * h)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6, err_msg=name)


def entries(*shape):
    """Weights as a student types them: two decimals in [-2, 2] (no 1e-300, whose central
    difference would vanish below the loss's rounding)."""
    return hnp.arrays(float, shape, elements=st.integers(-200, 200).map(lambda i: i / 100))


@settings(max_examples=60, deadline=None)
@given(x=entries(3), W=entries(4, 3), b=entries(4), V=entries(3, 4), c=entries(3),
       k=st.integers(0, 2), seed=st.integers(0, 2**32))
def test_mlp_vectors_at_given_leaves_match_numpy(x, W, b, V, c, k, seed):
    _, g, d = loaded(MLP)
    t = np.eye(3)[k]
    text = json.dumps({"x": x.tolist(), "W": W.tolist(), "b": b.tolist(), "V": V.tolist(),
                       "c": c.tolist(), "t": t.tolist()})
    doc = vectors(g, d, seed, parse_leaves(text, "at.json", g))
    assert doc["leaves"]["W"] == W.tolist() and doc["leaves"]["t"] == t.tolist()
    assert_matches_numpy(doc, mlp_forward, "l", fixed={"t"})


@settings(max_examples=60, deadline=None)
@given(x=entries(3), W=entries(3, 3), b=entries(3), t=st.integers(0, 2), seed=st.integers(0, 2**32))
def test_multinomial_vectors_at_given_leaves_match_numpy(x, W, b, t, seed):
    _, g, d = loaded(MULTINOMIAL)
    text = f"x: {x.tolist()}\nW: {W.tolist()}\nb: {b.tolist()}\nt: {t}\n"     # YAML works too
    doc = vectors(g, d, seed, parse_leaves(text, "at.yaml", g))
    assert doc["leaves"]["t"] == t and type(doc["leaves"]["t"]) is int
    assert_matches_numpy(doc, multinomial_forward, "ell", fixed={"t"})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), problem=st.sampled_from(SUBSET_PROBLEMS),
       seed=st.integers(0, 2**32), other=st.integers(0, 2**32))
def test_a_given_subset_keeps_the_other_leaves_drawn_from_the_seed(data, problem, seed, other):
    _, g, d = loaded(problem)
    names = data.draw(st.sets(st.sampled_from(sorted(g.leaves))))
    mine = vectors(g, d, other)["leaves"]                    # valid values for every leaf
    text = json.dumps({n: mine[n] for n in names})
    doc = vectors(g, d, seed, parse_leaves(text, "at.json", g))
    drawn = vectors(g, d, seed)
    for n in g.leaves:
        assert doc["leaves"][n] == (mine[n] if n in names else drawn["leaves"][n]), n
    if names == set(g.leaves):                               # all given: the seed plays no part
        assert {k: v for k, v in doc.items() if k != "seed"} == \
               {k: v for k, v in vectors(g, d, other).items() if k != "seed"}
    if not names:
        assert doc == drawn


def test_parse_leaves_gives_the_drawn_types():
    _, g, _ = loaded(MULTINOMIAL)
    drawn = random_leaves(g, np.random.default_rng(0))
    given_ = parse_leaves(json.dumps({"t": 1, "x": [1, 2, 3]}), "at.json", g)
    assert set(given_) == {"t", "x"}
    assert given_["t"].dtype == drawn["t"].dtype and given_["x"].shape == drawn["x"].shape


def test_json_exponents_are_numbers_and_quoted_numbers_are_not():
    _, g, _ = loaded(SIGNED)
    given_ = parse_leaves('{"x": [1e-12, -2E5, 3.5e+1], "b": 0}', "at.json", g)
    assert given_["x"].tolist() == [1e-12, -2e5, 35.0]
    with pytest.raises(UserErrors):
        parse_leaves('{"x": [1, 2, "3"]}', "at.json", g)


# ---------------------------------------------------------------- the command
def test_cli_output_fed_back_with_at_reproduces_it(tmp_path):
    first, leaves_only = tmp_path / "v.json", tmp_path / "leaves.json"
    assert run("vectors", "--seed", 3, "-o", first, MLP).exit_code == 0
    doc = json.loads(first.read_text())
    leaves_only.write_text(json.dumps(doc["leaves"]))
    for at in (first, leaves_only):                          # a whole document or its leaves object
        r = run("vectors", "--seed", 11, "--at", at, MLP)
        assert r.exit_code == 0, r.output
        again = json.loads(r.stdout)
        assert again["seed"] == 11
        assert {k: v for k, v in again.items() if k != "seed"} == {k: v for k, v in doc.items() if k != "seed"}


def test_cli_partial_leaves(tmp_path):
    at = tmp_path / "at.json"
    at.write_text('{"t": 1, "x": [-1, 2.5, 3]}')
    r = run("vectors", "--seed", 5, "--at", at, MULTINOMIAL)
    assert r.exit_code == 0, r.output
    doc, drawn = json.loads(r.stdout), json.loads(run("vectors", "--seed", 5, MULTINOMIAL).stdout)
    assert doc["leaves"]["t"] == 1 and doc["leaves"]["x"] == [-1.0, 2.5, 3.0]
    assert doc["leaves"]["W"] == drawn["leaves"]["W"] and doc["leaves"]["b"] == drawn["leaves"]["b"]
    assert_matches_numpy(doc, multinomial_forward, "ell", fixed={"t"})


BAD_MLP = """\
{"x": [0.1, "a", 0.3],
 "W": [[1, 2, 3], [1, 2, 3], [1, 2, 3]],
 "bb": [1, 2, 3, 4],
 "V": 7,
 "c": [1e999, 0, null],
 "t": [1, 1, 0],
 "z": [0, 0, 0, 0]}
"""
# (needle, occurrence) at each expected error, in file order
BAD_MLP_AT = [('"a"', 0), ('[[1, 2, 3]', 0), ('"bb"', 0), ("7", 0), ("1e999", 0), ("null", 0),
              ("[1, 1, 0]", 0), ('"z"', 0)]


def test_cli_every_mistake_is_one_located_line(tmp_path):
    at = tmp_path / "at.json"
    at.write_text(BAD_MLP)
    r = run("vectors", "--at", at, MLP)
    assert r.exit_code == 2 and "Traceback" not in r.output
    out = error_lines(r)
    assert all(LOCATED.match(ln) and ln.startswith(f"{at}:") for ln in out), out
    where = [tuple(map(int, ln[len(str(at)) + 1:].split(":")[:2])) for ln in out]
    assert where == [locate(BAD_MLP, n, i) for n, i in BAD_MLP_AT], out
    assert "'b'" in out[2]                                    # did you mean 'b'?


@pytest.mark.parametrize("problem,text,needle", [
    (MULTINOMIAL, '{"t": 3}', "3"),                          # class index out of range (C = 3)
    (MULTINOMIAL, '{"t": 1.5}', "1.5"),                      # not an integer
    (MULTINOMIAL, '{"t": -1}', "-1"),
    (MULTINOMIAL, '{"t": true}', "true"),
    (MLP, '{"t": [0.5, 0.5, 0]}', "[0.5"),                   # one-hot entries 0/1
    (MLP, '{"t": [0, 0, 0]}', "[0, 0, 0]"),                  # exactly one 1
    (SIGNED, '{"y": 0.5}', "0.5"),                           # declared values: [0, 1]
    (SIGNED, '{"y": [1]}', "[1]"),                           # a scalar, not a list
    (SIGNED, '{"x": [1, 2]}', "[1, 2]"),                     # D = 3
    (SIGNED, '{"x": [1, 2, [3]]}', "[3]"),
    (SIGNED, '{"w": [1, 2, .inf]}', ".inf"),
    (SIGNED, '{"b": 1, "b": 2}', '"b"'),                     # duplicate key: the second one
    (SIGNED, '[1, 2, 3]', "["),                              # not a mapping
    (SIGNED, '{"x": [1, 2, 3}', "}"),                        # syntax error
])
def test_cli_bad_leaf_is_one_located_line(tmp_path, problem, text, needle):
    at = tmp_path / "at.json"
    at.write_text(text)
    r = run("vectors", "--at", at, problem)
    out = error_lines(r)
    assert r.exit_code == 2 and "Traceback" not in r.output and len(out) == 1, out
    line, col = locate(text, needle, text.count(needle) - 1 if needle == '"b"' else 0)
    assert out[0].startswith(f"{at}:{line}:{col}: "), out


@pytest.mark.parametrize("make", [lambda p: p.write_text(""), lambda p: p.mkdir(), lambda p: None])
def test_cli_unreadable_leaves_file(tmp_path, make):
    at = tmp_path / "at.json"
    make(at)
    r = run("vectors", "--at", at, MLP)
    out = error_lines(r)
    assert r.exit_code == 2 and "Traceback" not in r.output and len(out) == 1 and str(at) in out[0], out


def test_values_outside_a_domain_give_nulls(tmp_path):
    problem = tmp_path / "p.yaml"
    problem.write_text("id: d\nsymbols:\n  x: {shape: [], role: input}\n  w: {shape: [], role: param}\n"
                       "forward:\n  z: w * x\nloss:\n  l: log(z)\n")
    at = tmp_path / "at.json"
    at.write_text('{"x": 1, "w": -2}')
    r = run("vectors", "--at", at, problem)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["nodes"]["z"] == -2.0 and doc["loss"] is None
    at.write_text('{"x": 1, "w": 2}')
    assert json.loads(run("vectors", "--at", at, problem).stdout)["loss"] == pytest.approx(np.log(2))


def test_api_reports_all_errors_together():
    g, _ = graph_from_text((ROOT / "tests" / "problems" / "scalar_chain.yaml").read_text())
    with pytest.raises(UserErrors) as exc:
        parse_leaves('{"x": "one", "w1": [], "w3": 1}', "at.json", g)
    assert len(exc.value.errors) == 3 and all(e.where.line == 1 for e in exc.value.errors)
