"""Readable forms (derivkit.rewrite): textbook-length gradients on networks nobody here wrote,
fused forms on binary and ±1 targets, and rewrites that never change a value nor lengthen a form."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings

from conftest import (DIMS, HERE, ROOT, SHAPES, all_finite, evaluate, expressions, loaded, make_scope,
                      mlp_problems, parse, random_values)
from derivkit.expr import Expr, sym
from derivkit.graph import build_graph
from derivkit.parse import parse_expression
from derivkit.printing import to_ascii
from derivkit.problem import parse_problem
from derivkit.rewrite import Knowledge, knowledge, readable
from derivkit.simplify import Facts
from derivkit.verify import Derivative, Domain, compare

TOLERANCE = 1e-20

# ====================================================================== textbook forms
#: problem file -> {gradient: its textbook form, as a course writes it}
TEXTBOOK = {
    "tests/problems/poisson_head.yaml": {
        "o": "mu - y", "b": "mu - y", "W": "(mu - y) @ x.T", "x": "W.T @ (mu - y)", "mu": "1 - y / mu"},
    "tests/problems/label_smoothing.yaml": {
        "o": "softmax(o) - q", "b": "softmax(o) - q", "W": "(softmax(o) - q) @ x.T",
        "x": "W.T @ (softmax(o) - q)", "q": "-log_softmax(o)"},
    "tests/problems/distillation.yaml": {
        "o": "softmax(o) - q", "b": "softmax(o) - q", "W": "(softmax(o) - q) @ x.T",
        "x": "W.T @ (softmax(o) - q)"},
    "tests/problems/quadratic_regression.yaml": {
        "q": "q - y", "c": "q - y", "u": "(q - y) * x", "A": "(q - y) * x @ x.T",
        "x": "(q - y) * ((A + A.T) @ x + u)"},
    "tests/problems/quadratic_form.yaml": {
        "q": "s - y", "c": "s - y", "A": "(s - y) * x @ x.T", "x": "(s - y) * ((A + A.T) @ x)"},
    "tests/problems/highway_gate.yaml": {
        "y": "y - t", "g": "(y - t) * (c - x)", "c": "(y - t) * g",
        "a": "(y - t) * (c - x) * g * (1 - g)", "V": "((y - t) * (c - x) * g * (1 - g)) @ x.T",
        "b": "(y - t) * g * (1 - c**2)", "W": "((y - t) * g * (1 - c**2)) @ x.T",
        "x": "(y - t) * (1 - g) + V.T @ ((y - t) * (c - x) * g * (1 - g)) + W.T @ ((y - t) * g * (1 - c**2))"},
    "tests/problems/normalised_output.yaml": {
        "o": "p - t", "b": "p - t", "W": "(p - t) @ x.T", "x": "W.T @ (p - t)", "p": "-t / p"},
    "tests/problems/exp_written_logistic.yaml": {
        "z": "p - y", "b": "p - y", "w": "(p - y) * x", "x": "(p - y) * w"},
    "tests/problems/mean_bce_sigmoid.yaml": {
        "z": "(p - y) / K", "b": "(p - y) / K", "W": "(p - y) @ x.T / K", "x": "W.T @ (p - y) / K"},
    "tests/problems/logistic_pm1.yaml": {
        "z": "-y * sigmoid(-y * z)", "b": "-y * sigmoid(-y * z)", "w": "-y * sigmoid(-y * z) * x",
        "x": "-y * sigmoid(-y * z) * w"},
    "tests/problems/sigmoid_signed_target.yaml": {
        "z": "sigmoid(z) - y", "b": "sigmoid(z) - y", "w": "(sigmoid(z) - y) * x",
        "x": "(sigmoid(z) - y) * w"},
}

CASES = [(path, name, text) for path, table in TEXTBOOK.items() for name, text in table.items()]


def _textbook(path: str, text: str) -> tuple:
    _, g, d = loaded(ROOT / path)
    return g, d, parse_expression(text, g.scope())


@pytest.mark.parametrize("path, name, text", CASES, ids=[f"{p.split('/')[-1]}:{n}" for p, n, _ in CASES])
def test_the_textbook_forms_are_right(path, name, text):
    """The table is itself checked against the ground truth (it must not hide a wrong answer)."""
    g, _, book = _textbook(path, text)
    assert compare(book, Derivative(g.loss, name), Domain(g)) <= TOLERANCE


def test_nearly_every_gradient_is_within_a_quarter_of_the_textbook_length():
    over = []
    for path, name, text in CASES:
        g, d, book = _textbook(path, text)
        if d.named[name].size() > 1.25 * book.size():
            over.append(f"{path}:{name}: {to_ascii(d.named[name])}  (book: {text})")
    assert len(over) <= len(CASES) // 20, "\n".join(over)


@pytest.mark.parametrize("path", sorted(TEXTBOOK))
def test_every_readable_form_is_proved_equal(path):
    _, g, d = loaded(ROOT / path)
    v = Domain(g)
    for name in TEXTBOOK[path]:
        assert compare(d.named[name], Derivative(g.loss, name), v) <= TOLERANCE, name
        assert compare(d.full[name], Derivative(g.loss, name), v) <= TOLERANCE, name


# ====================================================================== the rules, one by one
SC = make_scope({**SHAPES, "q": ("C",), "t1": ("C",), "b1": (), "pm": ()}, DIMS)
BINARY = Knowledge(domains={"b1": (0, 1), "pm": (-1, 1)})


def R(text: str, k: Knowledge = Knowledge()) -> Expr:
    return readable(parse(text, SC), k)


@pytest.mark.parametrize("text, book", [
    ("(x.T @ M).T", "M.T @ x"),                                     # transposes to the leaves
    ("((s * x.T) @ M.T).T", "s * (M @ x)"),
    ("x @ (s * x.T)", "s * (x @ x.T)"),                             # scalars out of a product
    ("u * s + (x.T @ M).T * s + ((s * x.T) @ M.T).T", "s * ((M + M.T) @ x + u)"),
    ("(W @ x) * (u.T @ x) - (W @ x) * s", "(W @ x) * (u.T @ x - s)"),  # common factors
    ("M @ x + M.T @ x", "(M + M.T) @ x"),                           # products merged
    ("exp(s) / (1 + exp(s))", "sigmoid(s)"),                        # quotients of exponentials
    ("1 / (1 + exp(-x))", "sigmoid(x)"),
    ("(exp(x) - exp(-x)) / (exp(x) + exp(-x))", "tanh(x)"),
    ("exp(x) / sum(exp(x))", "softmax(x)"),
    ("(1 - u / x) * x", "x - u"),                                   # an elementwise block cancelled
    ("((1 - u) / (1 - x) - u / x) * x * (1 - x)", "x - u"),
])
def test_each_rule_reaches_the_textbook_form(text, book):
    got, want = R(text), parse(book, SC)
    assert got.size() <= want.size(), to_ascii(got)
    vals = random_values(SHAPES, DIMS, np.random.default_rng(3), positive=True)
    vals["x"] = np.array([0.2, 0.5, 0.7])
    assert np.allclose(evaluate(got, vals, DIMS), evaluate(parse(text, SC), vals, DIMS))


def test_a_binary_target_fuses_sigmoid_and_its_signed_loss():
    """−(1 − σ((2y − 1)z))(2y − 1) = σ(z) − y on y ∈ {0, 1}; not off that domain."""
    text = "-(1 - sigmoid((2 * b1 - 1) * s)) * (2 * b1 - 1)"
    got = R(text, BINARY)
    assert got == parse("sigmoid(s) - b1", SC)
    assert R(text) == R(text, Knowledge())                 # without the domain: no fusion
    assert R(text).size() > got.size()


def test_a_sign_target_is_interpolated_on_plus_minus_one():
    got = R("(1 + pm) / 2 * sigmoid(-s) + (1 - pm) / 2 * (1 - sigmoid(-s))", BINARY)
    for v in (-1.0, 1.0):
        want = evaluate(parse("(1 + pm) / 2 * sigmoid(-s) + (1 - pm) / 2 * (1 - sigmoid(-s))", SC),
                        {"pm": v, "s": 0.3}, DIMS)
        assert np.isclose(evaluate(got, {"pm": v, "s": 0.3}, DIMS), want)


def test_a_smoothed_target_and_a_softmax_sum_to_one():
    text = ("id: sums\ntitle: sums\ndims: {C: 3}\nsymbols:\n  t: {shape: [C], role: target, kind: onehot}\n"
            "  v: {shape: [C], role: input}\n"
            "forward:\n  q: 0.8 * t + 0.2 / C\n  r: softmax(v)\n  m: 0.5 * t + v\nloss:\n  l: sum(q * v)\n")
    k = knowledge(build_graph(parse_problem(text, "inline.yaml")))
    assert {"t", "q", "r"} <= k.facts.sums_to_one
    assert "m" not in k.facts.sums_to_one


def test_named_nodes_are_substituted_back():
    k = Knowledge(names={parse("W @ x", SC): sym("h", ("H",))}, definitions={"h": parse("W @ x", SC)})
    assert R("v * (W @ x) + W @ x", k) == parse("v * h + h", make_scope({**SHAPES, "h": ("H",)}, DIMS)) \
        or R("v * (W @ x) + W @ x", k).size() <= 5


# ====================================================================== never a change of value, never longer
_VALUES = random_values(SHAPES, DIMS, np.random.default_rng(11), positive=True)
_NONZERO = (1, 2, 3, -1, -2, 0.5, 0.25, 1.5)


@given(expressions(depth=4, numbers=_NONZERO))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_rewriting_never_changes_a_value_nor_lengthens_a_form(e):
    assume(all_finite(e, _VALUES))
    got = readable(e, Knowledge())
    assert got.size() <= e.size()
    assert got.shape == e.shape
    with np.errstate(all="ignore"):
        before = np.asarray(evaluate(e, _VALUES, DIMS), dtype=float)
        after = np.broadcast_to(np.asarray(evaluate(got, _VALUES, DIMS), dtype=float), before.shape)
    ok = np.isfinite(before)
    assume(ok.any())
    scale = max(1.0, float(np.max(np.abs(before[ok]))))
    assert np.allclose(after[ok], before[ok], rtol=1e-7, atol=1e-9 * scale), \
        f"{to_ascii(e)}  ->  {to_ascii(got)}"


@pytest.mark.slow
@given(mlp_problems())
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_on_random_networks_every_readable_gradient_is_proved_and_not_longer(text):
    from derivkit.derive import derive
    g = build_graph(parse_problem(text, "gen.yaml"))
    d, plain = derive(g), derive(g, readable_forms=False)
    v = Domain(g)
    for name in g.names:
        if g.kind(name) == "class":
            continue
        assert compare(d.full[name], Derivative(g.loss, name), v) <= TOLERANCE, name
        assert d.full[name].size() <= plain.full[name].size(), name
        assert d.named[name].size() <= plain.named[name].size(), name
