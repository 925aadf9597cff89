"""The answer reader: every notation of issue 8 and contract §3 reads to the intended expression.

"Intended" is an ASCII expression of the problem language; both are evaluated at random
points (leaves, nodes, upstream gradients, and every value of free indices) and must agree.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derivkit.errors import UserError
from derivkit.expr import Expr, ShapeError, concrete, grad, make, num, substitute, sym
from derivkit.grade import AnswerError, AnswerScope, answer_scope, is_latex, read_answer
from derivkit.graph import build_graph
from derivkit.indexform import expand_sums, ivar
from derivkit.layout import absorb
from derivkit.numeric import Program, forward_values, random_leaves
from derivkit.parse import MAX_DEPTH, MAX_LENGTH, Scope, parse_expression
from derivkit.printing import to_latex
from derivkit.problem import load_problem
from helpers import no_hang

ROOT = Path(__file__).resolve().parents[2]


@functools.lru_cache(maxsize=None)
def graph(name: str):
    return build_graph(load_problem(ROOT / "problems" / f"{name}.yaml"))


def scope_for(name: str, index: tuple[str, ...] = (), aliases: dict | None = None) -> AnswerScope:
    g = graph(name)
    extra = {n: ivar(n) for n in index}
    merged = {**g.problem.aliases, **(aliases or {})}
    return AnswerScope.of(g.scope(extra=extra), g.loss, g.problem.latex, merged)


def ascii_scope(a: AnswerScope) -> Scope:
    """The answer scope's names plus ``dl_dX`` for every upstream gradient (intended forms)."""
    inner = a.scope

    def lookup(name):
        if name.startswith(f"d{a.loss}_d") and inner.lookup(name[len(a.loss) + 3:]) is not None:
            wrt = name[len(a.loss) + 3:]
            return grad(wrt, inner.lookup(wrt).shape, a.loss)
        return inner.lookup(name)
    return Scope(lookup, inner.names, inner.dims)


def values_at(name: str, seed: int) -> dict:
    g = graph(name)
    rng = np.random.default_rng(seed)
    leaves = random_leaves(g, rng)
    vals = {**leaves, **forward_values(g, leaves)}
    for n in list(vals):
        vals[("grad", n)] = rng.normal(size=np.shape(vals[n]))
    return vals


def evaluate(e: Expr, vals: dict, dims: dict, index: dict[str, int]) -> np.ndarray:
    e = substitute(e, {ivar(n): num(v) for n, v in index.items()})
    e = expand_sums(e, dims)
    return np.asarray(Program({"out": e}, dims).run(vals)["out"], dtype=float)


def assert_same_value(answer: Expr, intended: Expr, problem: str, index: dict[str, str] | None = None):
    g = graph(problem)
    assert answer.shape == intended.shape
    sizes = {n: g.dims[d] for n, d in (index or {}).items()}
    for seed in range(3):
        vals = values_at(problem, seed)
        combos = [{}]
        for n, size in sizes.items():
            combos = [{**c, n: v} for c in combos for v in range(size)]
        for at in combos:
            a = evaluate(answer, vals, g.dims, at)
            b = evaluate(intended, vals, g.dims, at)
            assert np.allclose(a, b, rtol=1e-10, atol=1e-12, equal_nan=True), (at, a, b)


# (problem, free indices {name: dims size}, LaTeX or ASCII answer, intended ASCII)
MLP = "mlp_sigmoid_softmax_ce"
RELU = "relu_regression"
BCE = "sigmoid_bce_classifier"
MULTI = "multinomial_regression_index"
TWO = "two_layer_classifier_index"
NLL = "sigmoid_output_nll_saturation"
CHAIN = "sigmoid_chain_squared_error"
MSE = "sigmoid_mse_classifier"
THRESH = "mlp_mse_ellipse_thresholds"
DIGITS = "mlp_digits_experiments"
DEEP354 = "mlp_354_activation_sweep"
CASES = [
    # issue 8's examples
    (MLP, None, r"(y - t) h^T", "(y - t) @ h.T"),
    (MLP, None, r"\frac{\partial l}{\partial z} x^T", "dl_dz @ x.T"),
    (MLP, None, r"V^\top \delta \odot \sigma'(z)", "(V.T @ dl_do) * sigmoid_prime(z)"),
    (MLP, None, r"\frac{\partial l}{\partial h} * h * (1 - h)", "dl_dh * h * (1 - h)"),
    (MULTI, {"j": "C"}, r"\delta_{jt} - p_j", "(onehot(t, C) - p)[j]"),
    (MULTI, {"j": "C"}, r"\begin{cases} 1 - p_j & j = t \\ -p_j & \text{otherwise}\end{cases}",
     "(onehot(t, C) - p)[j]"),
    (BCE, None, r"-\frac{1}{K}(\frac{y}{\hat y} - \frac{1-y}{1-\hat y})",
     "-(1/K) * (y / y_hat - (1 - y) / (1 - y_hat))"),
    (RELU, None, r"\operatorname{diag}(\mathbb{1}[z_1 > 0])", "diag(relu_prime(z1))"),
    # contract §3's submission example and notations
    (MLP, None, "y - t", "y - t"),
    (MLP, None, r"(\mathbf{y}-\mathbf{t})\mathbf{h}^\top", "(y - t) @ h.T"),
    (MLP, None, "dl/do", "dl_do"),
    (MLP, None, "dl/do @ h.T", "dl_do @ h.T"),
    (MLP, None, r"\frac{dl}{do} h'", "dl_do @ h.T"),
    (MLP, None, r"\frac{\partial \ell}{\partial \mathbf{o}} \cdot \mathbf{h}^{T}", "dl_do @ h.T"),
    (MLP, None, r"\frac{\partial L}{\partial o} \circ y", "dl_do * y"),
    (MLP, None, r"\mathbf{t} \oslash \mathbf{y}", "t / y"),
    (MLP, None, r"-\frac{\mathbf{t}}{\mathbf{y}}", "-t / y"),
    (MLP, None, r"\operatorname{softmax}(o) - t", "softmax(o) - t"),
    (MLP, None, r"\operatorname{diag}(y) - y y^\top", "diag(y) - y @ y.T"),
    (MLP, None, r"\sigma(z) \odot (1 - \sigma(z))", "sigmoid(z) * (1 - sigmoid(z))"),
    (MLP, None, r"\sigma(z)(1-\sigma(z))", "sigmoid(z) * (1 - sigmoid(z))"),
    (MLP, None, r"\sigma'(z) \odot V^T \frac{\partial l}{\partial o}", "sigmoid_prime(z) * (V.T @ dl_do)"),
    (MLP, None, r"\sigma'(z) V^T \frac{\partial l}{\partial o}", "sigmoid_prime(z) * (V.T @ dl_do)"),
    (MLP, None, r"\left(V^{\top}(\mathbf{y} - \mathbf{t})\right) \odot \mathbf{h} \odot (1 - \mathbf{h})",
     "(V.T @ (y - t)) * h * (1 - h)"),
    (MLP, None, r"\frac{\partial l}{\partial h} \odot \sigma'(z) x^T", "(dl_dh * sigmoid_prime(z)) @ x.T"),
    (MLP, None, r"\frac{\partial l}{\partial \mathbf{z}} = \mathbf{h} \odot (\mathbf{1} - \mathbf{h}) \odot V^T (y - t)",
     "h * (1 - h) * (V.T @ (y - t))"),
    (MLP, None, r"-\sum_{j=1}^{C} t_j \log y_j", "-sum(t * log(y))"),
    (MLP, None, r"-\sum_{i} t_i \log(y_i)", "-sum(t * log(y))"),
    (MLP, None, r"-\sum \left(\mathbf{t} \odot \log \mathbf{y}\right)", "-sum(t * log(y))"),
    (MLP, None, r"\tanh(z) + \exp(-z) + \ln h", "tanh(z) + exp(-z) + log(h)"),
    (MLP, None, r"e^{-z} + \sqrt{h}", "exp(-z) + sqrt(h)"),
    (MLP, None, "2 x", "2 * x"),
    (MLP, None, "Wx + b", "W @ x + b"),
    (MLP, None, r"\frac12 \|y - t\|^2", "0.5 * sum((y - t)**2)"),
    (MLP, None, r"|z|", "abs(z)"),
    (RELU, None, r"W^{(1)} x + b^{(1)}", "W1 @ x + b1"),
    (RELU, None, r"W_1 \boldsymbol{x} + \mathbf{b}_1", "W1 @ x + b1"),
    (RELU, None, r"\mathrm{ReLU}(\boldsymbol{z}_1)", "relu(z1)"),
    (RELU, None, r"(z_1)^+", "relu(z1)"),
    (RELU, None, r"\max(0, \mathbf{z_1})", "relu(z1)"),
    (RELU, None, r"\mathrm{ReLU}'(z_1)", "relu_prime(z1)"),
    (RELU, None, r"\mathbb{I}(z_1 \ge 0)", "relu_prime(z1)"),
    (RELU, None, r"\mathbf{1}_{z_1 > 0}", "relu_prime(z1)"),
    (RELU, None, r"2(\hat{\boldsymbol{y}} - \boldsymbol{y})", "2 * (y_hat - y)"),
    (RELU, None, r"\left({W^{(2)}}^\top \frac{\partial \ell}{\partial \boldsymbol{z}_3}\right) \odot [z_1 > 0]",
     "(W2.T @ dl_dz3) * relu_prime(z1)"),
    (BCE, None, r"\frac{1}{K}(\hat{\mathbf{y}} - \mathbf{y}) \mathbf{z}_2^\top", "(y_hat - y) @ z2.T / K"),
    (CHAIN, None, r"W_2^T", "W2.T"),
    (MSE, None, r"2(\hat{\boldsymbol{y}} - \boldsymbol{y})^\top", "2 * (y_hat - y).T"),
    (NLL, None, r"(\sigma(z) - y) \vec{h}", "(sigmoid(z) - y) * h"),
    (THRESH, None, r"-2(\mathbf{y} - \hat{\mathbf{y}}) \odot \hat{y} \odot (1 - \hat{y})",
     "-2 * (y - y_hat) * y_hat * (1 - y_hat)"),
    (DIGITS, None, r"(\mathbf{y} - \mathbf{t}) \mathbf{h}^\top", "(y - t) @ h.T"),
    # the default of the choice `act` (relu) is what an answer's ReLU means
    (DEEP354, None, r"\mathrm{ReLU}(W_1 x + b_1)", "h1"),
    # index notation
    (MULTI, {"j": "C"}, r"\frac{\partial \ell}{\partial u_j} = \delta_{jt} - p_j", "(onehot(t, C) - p)[j]"),
    (MULTI, {"j": "C"}, r"\mathbb{1}[j = t] - \frac{\exp u_j}{\sum_{k=1}^{C} \exp u_k}",
     "(onehot(t, C) - softmax(u))[j]"),
    (MULTI, {"j": "C"}, r"(\delta_{jt} - p_j) \mathbf{x}", "(onehot(t, C) - p)[j] * x"),
    (MULTI, {"j": "C"}, r"\begin{cases} (1 - p_j)\mathbf{x} & \text{if } j = t, \\ -p_j \mathbf{x} & j \neq t"
                        r"\end{cases}", "(onehot(t, C) - p)[j] * x"),
    (MULTI, {"j": "C"}, r"\sum_{k} W_{jk} x_k + b_j", "u[j]"),
    (MULTI, {"j": "C"}, r"\mathbf{w}_j^T \mathbf{x} + b_j", "u[j]"),
    (TWO, {"k": "H"}, r"h_k(1 - h_k)", "h[k] * (1 - h[k])"),
    (TWO, {"k": "H"}, r"\sum_{j=1}^{C} (\delta_{jt} - p_j) W_{jk} h_k (1 - h_k)",
     "((W.T @ (onehot(t, C) - p)) * h * (1 - h))[k]"),
]
# the \delta of V^T \delta: an alias of the upstream gradient dl_do
DELTA = {"dl_do": [r"\delta"]}


@pytest.mark.parametrize("problem, index, text, intended", CASES, ids=[c[2][:50] for c in CASES])
def test_answer_reads_to_intended_value(problem, index, text, intended):
    a = scope_for(problem, tuple(index or ()), aliases=DELTA if problem == MLP else None)
    answer = read_answer(text, a)
    expected = parse_expression(intended, ascii_scope(a))
    assert_same_value(answer, expected, problem, index)


def test_every_seed_problem_has_a_case():
    assert {c[0] for c in CASES} == {p.stem for p in (ROOT / "problems").glob("*.yaml")}


# ---------------------------------------------------------------- issue 8's traps
def test_x_transpose_is_not_a_power():
    a = scope_for(MLP)
    e = read_answer("x^T", a)
    assert e.op == "T" and e.shape == (1, "D")
    assert read_answer("x^T x", a).shape == ()
    assert read_answer(r"x^{\top}", a) == e == read_answer("x'", a)


def test_power_of_a_vector_is_elementwise_and_T_of_a_scalar_stays_a_transpose():
    a = scope_for(MLP)
    assert read_answer("x^2", a) == make("pow", sym("x", ("D",)), num(2))
    # no name T in this problem: a scalar's transpose is itself
    s = read_answer(r"x^T x", a)
    assert read_answer(r"(x^T x)^T", a) == make("T", s)


def test_subscripted_name_before_a_bracket_is_a_product_not_a_call():
    e = read_answer(r"h_k(1 - h_k)", scope_for(TWO, ("k",)))
    assert e.op == "mul" and e.args[0] == make("index", sym("h", ("H",)), ivar("k"))


def test_minus_fraction_keeps_its_bracket():
    a = scope_for(BCE)
    kept = read_answer(r"-\frac{1}{K}(\frac{y}{\hat y} - \frac{1-y}{1-\hat y})", a)
    dropped = parse_expression("-(1/K) * (y / y_hat) - (1 - y) / (1 - y_hat)", ascii_scope(a))
    vals = values_at(BCE, 0)
    g = graph(BCE)
    assert not np.allclose(evaluate(kept, vals, g.dims, {}), evaluate(dropped, vals, g.dims, {}))


def test_capital_names_are_not_lower_cased():
    a = scope_for(MLP)
    assert read_answer("W x", a) == make("matmul", sym("W", ("H", "D")), sym("x", ("D",)))
    with pytest.raises(AnswerError) as err:
        read_answer("w x", a)
    assert err.value.where.column == 1


def test_sigma_of_z_is_the_sigmoid_not_a_product():
    e = read_answer(r"\sigma(z)", scope_for(MLP))
    assert e == make("sigmoid", sym("z", ("H",)))
    assert read_answer("σ(z)", scope_for(MLP)) == e


# ---------------------------------------------------------------- errors point at the answer
@pytest.mark.parametrize("text, column", [
    (r"(y - q) h^T", 6),                     # unknown name
    (r"(\mathbf{y} - t) + h", 20),            # shape mismatch [C] + [H]
    (r"(y - t) \odot h", 15),                 # elementwise shapes differ
    (r"\frac{1}{", 10),                       # syntax: unfinished
    (r"y - t)", 6),                           # unbalanced bracket
    (r"\input{/etc/passwd}", 1),              # an unknown command is never run
    (r"\mathbf{x}_1", 12),                    # numeric index refused
])
def test_errors_are_answer_errors_with_a_column(text, column):
    with pytest.raises(AnswerError) as err:
        read_answer(text, scope_for(MLP))
    assert isinstance(err.value, UserError)
    assert err.value.where.column == column
    assert err.value.pointer().splitlines()[1] == " " * (column - 1) + "^"


def test_ascii_errors_are_located_too():
    with pytest.raises(AnswerError) as err:
        read_answer("y - t + q", scope_for(MLP))
    assert err.value.where.column == 9


def test_sum_limit_must_match_the_indexed_axis():
    with pytest.raises(AnswerError):
        read_answer(r"\sum_{j=1}^{H} t_j", scope_for(MLP))
    with pytest.raises(AnswerError):
        read_answer(r"\sum_{j=1}^{C} \delta_{jt}", scope_for(MULTI, ("j",)))   # j is the free index


def test_detection():
    assert not is_latex("(y - t) @ h.T") and is_latex(r"(y-t)h^T") and is_latex("σ(z)")


# ---------------------------------------------------------------- limits and hostile input
def test_limits_hold_fast():
    a = scope_for(MLP)
    hostile = ["(" * 5000 + "x" + ")" * 5000, r"\left(" * 3000 + "x", "x" * (MAX_LENGTH + 1),
               "x+" * 1500 + "x", "{" * 2000 + "x" + "}" * 2000, "a" * 3000, "x^{" + "1" * 3000 + "}",
               r"\frac" * 1000, "s^" * 1500 + "2", "s^{" * 1000 + "2" + "}" * 1000, "\x00\x01\x1b[31m",
               r"\write18{rm -rf /}", "__import__('os').system('ls')", "a" * 10**6]
    for text in hostile:
        with no_hang(5), pytest.raises(UserError):
            read_answer(text, a)
    assert MAX_DEPTH < 200


def test_power_towers_build_without_computing():
    """A tower is an expression like any other: reading it computes nothing."""
    with no_hang(5):
        e = read_answer("x^{10^{10^{10}}}", scope_for(MLP))
    assert e.op == "pow"


JUNK = st.lists(st.sampled_from(list("xyzhtWVbcj()[]{}^_'+-*/=<>&|,. 012\\σ⊙∂")
                                + [r"\frac", r"\sigma", r"\sum", r"\delta", r"\mathbb{1}", r"\begin{cases}",
                                   r"\end{cases}", r"\\", r"\left(", r"\right)", r"\partial", r"\hat",
                                   r"\mathbf", r"\top", r"\|", r"\max", r"\text{otherwise}", "dl/do"]),
                max_size=40).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JUNK)
def test_junk_raises_only_user_errors(text):
    a = scope_for(MULTI, ("j",))
    with no_hang(5):
        try:
            read_answer(text, a)
        except UserError:
            pass


# ---------------------------------------------------------------- LaTeX printer round trip
SHAPES = {"s": (), "r": (), "x": ("D",), "u": ("D",), "h": ("H",), "W": ("H", "D"), "M": ("D", "D")}
DIMS = {"D": 3, "H": 4}


def _plain_scope() -> AnswerScope:
    names = {n: sym(n, s) for n, s in SHAPES.items()}
    dims = {d: Expr("dim", (), d, ()) for d in DIMS}
    scope = Scope(lambda n: names.get(n) or dims.get(n), lambda: list(names) + list(dims), DIMS)
    return AnswerScope.of(scope)


UNARY = ["neg", "sigmoid", "tanh", "exp", "relu", "sigmoid_prime", "relu_prime", "tanh_prime", "T",
         "sum", "softmax", "diag", "abs"]
BINARY = ["add", "sub", "mul", "div", "matmul"]


@st.composite
def exprs(draw, depth=3):
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        if draw(st.booleans()):
            return draw(st.sampled_from([sym(n, s) for n, s in SHAPES.items()] + [grad("h", ("H",))]))
        return num(draw(st.sampled_from([1, 2, 3, 0.5])))
    if draw(st.booleans()):
        op = draw(st.sampled_from(UNARY))
        a = draw(exprs(depth - 1))
        if a.op == "num":           # functions of constants: the numeric executor wants arrays
            return a
        try:
            return make(op, a)
        except ShapeError:
            return a
    op = draw(st.sampled_from(BINARY))
    a, b = draw(exprs(depth - 1)), draw(exprs(depth - 1))
    try:
        return make(op, a, b)
    except ShapeError:
        return a


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exprs())
def test_latex_printer_round_trips(e):
    a = _plain_scope()
    back = read_answer(to_latex(e), a)
    assert back.shape == e.shape
    rng = np.random.default_rng(0)
    vals = {n: rng.normal(size=concrete(s, DIMS)) for n, s in SHAPES.items()}
    vals[("grad", "h")] = rng.normal(size=(4,))
    with np.errstate(all="ignore"):
        x = Program({"o": e}, DIMS).run(vals)["o"]
        y = Program({"o": back}, DIMS).run(vals)["o"]
    assert np.allclose(x, y, rtol=1e-9, atol=1e-12, equal_nan=True), (to_latex(e), back)


# ---------------------------------------------------------------- solve's LaTeX reads back
def _solved_latex():
    from helpers import ALL_PROBLEMS
    out = []
    for path in ALL_PROBLEMS:
        out.append(pytest.param(path, id=path.name))
    return out


#: printed forms the notation cannot read yet: a bare identity I and the ones vector \mathbf{1}
#: have no size of their own (see the report); each entry is (problem file, question id)
UNSIZED = {("relu_regression.yaml", "dyhat_dz3"), ("softsign_exp_sqrt_abs.yaml", "dq_de")}


@pytest.mark.slow
@pytest.mark.parametrize("path", _solved_latex())
def test_solve_latex_reads_back_to_the_reference(path):
    """Every question's printed LaTeX (and chain form) reads back equal in value to its reference."""
    from helpers import solved
    from derivkit.indexform import index_form
    s = solved(path)
    g = s.graph
    rng = np.random.default_rng(0)
    leaves = random_leaves(g, rng)
    vals = {**leaves, **forward_values(g, leaves)}
    for n in list(vals):
        vals[("grad", n)] = rng.normal(size=np.shape(vals[n]))
    questions = {q.id: q for q in g.problem.questions}
    checked = 0
    for qid, ans in s.answers.items():
        q = questions[qid]
        if ans.reference is None or (path.name, qid) in UNSIZED:
            continue
        pairs = []          # (LaTeX, the expression it prints, its free indices)
        for name, shape in (q.vars or {}).items():        # an identity's free variables
            vals[name] = rng.normal(size=concrete(tuple(shape), g.dims))
        if q.kind == "identity":
            pairs.append((ans.extra["rhs_latex"], ans.reference, None))
        elif ans.using is not None:       # named derivatives print as \frac{∂z2}{∂z1}: the written-out form
            pairs.append((ans.extra["full_latex"], ans.reference, None))
        elif ans.latex != ans.extra.get("index_latex"):
            pairs.append((ans.latex, ans.reference, None))
        if "index_latex" in ans.extra and q.kind == "grad":
            own = absorb(ans.reference, g.shape(q.wrt.value), ans.layout)    # the variable's shape
            pairs.append((ans.extra["index_latex"], index_form(own, q.index, g), q.index))
        if "chain_latex" in ans.extra:
            pairs.append((ans.extra["chain_latex"], ans.chain, None))
        for text, ref, index in pairs:
            back = read_answer(text, answer_scope(g, q))
            combos = [{}]
            for n, size in _index_sizes(index, index_form_shape(ans, q, g), g.dims).items():
                combos = [{**c, n: v} for c in combos for v in range(size)]
            for at in combos:
                with np.errstate(all="ignore"):
                    a = evaluate(back, vals, g.dims, at)
                    b = evaluate(ref, vals, g.dims, at)
                assert np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True), (qid, text, at)
            checked += 1
        if "index_latex" in ans.extra:      # indexed Jacobians: at least they read
            read_answer(ans.extra["index_latex"], answer_scope(g, q))
    assert checked or not s.answers


def index_form_shape(ans, q, g) -> Expr:
    """The reference an index form indexes: a grad in its variable's own shape."""
    return absorb(ans.reference, g.shape(q.wrt.value), ans.layout) if q.kind == "grad" else ans.reference


def _index_sizes(index, ref: Expr, dims) -> dict:
    """The size each free index runs over: rows (axis 0) or columns (the last axis) of ``ref``."""
    if not index:
        return {}
    sizes = {n: ref.shape[0] if axis == "row" else ref.shape[-1] for n, axis in index.items()}
    return {n: dims[d] if isinstance(d, str) else d for n, d in sizes.items()}
