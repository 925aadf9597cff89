"""Every size works: any dim may be 1 (one output, one hidden unit, one input).

A size-1 dim must not change what a value is: a [K, H] matrix with K = 1 is still
a matrix, a [K] vector with K = 1 still a vector.  Each problem of the corpus is
solved with each of its dims set to 1 in turn (and with all of them at 1); every
gradient and answer must verify, the gradient check pass, and the test vectors
have the declared shapes.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import ALL_PROBLEMS, rel
from strategies import mlp_problem_dict
from derivkit.expr import concrete
from derivkit.problem import parse_problem
from derivkit.solve import solve
from derivkit.vectors import vectors

_DIMS_LINE = re.compile(r"^dims:[ \t]*(\{.*\})[ \t]*$", re.M)


def with_dims(text: str, change: dict[str, int]) -> str:
    """The problem file's text with some of its top-level ``dims`` replaced."""
    m = _DIMS_LINE.search(text)
    assert m, "every corpus file writes its dims as one flow mapping"
    dims = {**yaml.safe_load(m.group(1)), **change}
    flow = yaml.safe_dump(dims, default_flow_style=True, sort_keys=False).strip()
    return text[:m.start(1)] + flow + text[m.end(1):]


def size_one_cases():
    for path in ALL_PROBLEMS:
        dims = yaml.safe_load(_DIMS_LINE.search(path.read_text()).group(1))
        for d in dims:
            yield pytest.param(path, {d: 1}, id=f"{rel(path)}-{d}=1")
        if len(dims) > 1:
            yield pytest.param(path, {d: 1 for d in dims}, id=f"{rel(path)}-all=1")


def assert_solves_everywhere(text: str, filename: str) -> None:
    sol = solve(parse_problem(text, filename), train=False)
    unverified = [n for n, gr in sol.gradients.items() if not gr.verified]
    unverified += [q for q, a in sol.answers.items() if not a.verified]
    assert not unverified, f"not verified: {unverified}"
    assert sol.gradcheck.passed, sol.gradcheck
    doc = vectors(sol.graph, sol.derivation)
    g = sol.graph
    for name, value in doc["gradients"].items():
        assert np.shape(value) == concrete(g.shape(name), g.dims), name


@pytest.mark.slow
@pytest.mark.parametrize("path, change", list(size_one_cases()))
def test_every_dim_may_be_one(path, change):
    text = with_dims(path.read_text(), change)
    assert yaml.safe_load(text)["dims"] == {**yaml.safe_load(path.read_text())["dims"], **change}
    assert_solves_everywhere(text, str(path))


@pytest.mark.slow
@settings(max_examples=12, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(depth=st.integers(1, 3), data=st.data())
def test_generated_networks_with_size_one_layers(depth, data):
    acts = data.draw(st.lists(st.sampled_from(["sigmoid", "tanh", "softplus"]), min_size=depth - 1,
                              max_size=depth - 1))
    loss = data.draw(st.sampled_from(["squared_error", "softmax_ce", "mean_bce", "class_log_softmax"]))
    sizes = data.draw(st.lists(st.integers(1, 2), min_size=depth + 1, max_size=depth + 1))
    text = yaml.safe_dump(mlp_problem_dict(depth, acts, loss, sizes), sort_keys=False)
    assert_solves_everywhere(text, "gen.yaml")
