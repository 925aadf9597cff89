"""The expression language: what parses, to what, with which shape; what is refused, where.

Columns: ``parse`` is called with ``where = f.yaml:7:5`` (the expression's first character
is at column 5), so a mistake at offset k of the text is reported at column 5 + k.
"""
from __future__ import annotations

import ast
import builtins
import string
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from helpers import (DIMS, SHAPES, WHERE, all_finite, close, evaluate, leaf_values, loaded, parse,
                     problem_params, random_values)
from strategies import expressions
from derivkit.errors import Location, UserError
from derivkit.expr import Expr, sym
from derivkit.ops import FUNCTIONS
from derivkit.parse import MAX_DEPTH, MAX_LENGTH, parse_expression
from derivkit.printing import to_ascii


def col(text: str, token: str, occurrence: int = 0) -> int:
    """Column of ``token`` in ``text`` parsed at WHERE (1-based, file columns)."""
    pos = -1
    for _ in range(occurrence + 1):
        pos = text.index(token, pos + 1)
    return WHERE.column + pos


def error_of(text: str, scope=None) -> UserError:
    with pytest.raises(UserError) as info:
        parse(text, scope)
    return info.value


# ====================================================================== what parses
@pytest.mark.parametrize("text, op", [
    ("x + u", "add"), ("x - u", "sub"), ("x * u", "mul"), ("x / u", "div"), ("x ** s", "pow"),
    ("W @ x", "matmul"), ("-x", "neg"), ("x.T", "T"), ("x[1]", "index"), ("W[1, 2]", "index"),
])
def test_every_operator(text, op):
    e = parse(text)
    assert e.op == op


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "abs", "sigmoid", "tanh", "relu", "softplus",
                                  "sigmoid_prime", "relu_prime", "tanh_prime"])
def test_every_elementwise_function(name):
    e = parse(f"{name}(x)")
    assert e.op == name and e.args == (sym("x", ("D",)),) and e.shape == ("D",)
    assert parse(f"{name}(s)").shape == ()
    assert parse(f"{name}(W)").shape == ("H", "D")


@pytest.mark.parametrize("text, op, shape", [
    ("softmax(x)", "softmax", ("D",)),
    ("log_softmax(v)", "log_softmax", ("H",)),
    ("diag(x)", "diag", ("D", "D")),
    ("sum(W)", "sum", ()),
    ("mean(x)", "mean", ()),
    ("ones(D)", "ones", ("D",)),
    ("eye(H)", "eye", ("H", "H")),
    ("onehot(t, C)", "onehot", ("C",)),
])
def test_vector_functions(text, op, shape):
    e = parse(text)
    assert (e.op, e.shape) == (op, shape)


def test_contract_function_list_is_in_the_language():
    contract = "exp log sqrt abs sigmoid tanh relu softplus softmax log_softmax diag sum mean " \
               "sigmoid_prime relu_prime tanh_prime"
    assert set(contract.split()) <= set(FUNCTIONS)


@pytest.mark.parametrize("text, value", [
    ("2", 2), ("2.5", 2.5), ("-3", -3), ("1e-3", 0.001), ("+4", 4), ("0.1", 0.1),
])
def test_numbers(text, value):
    e = parse(text)
    assert e.op == "num" and float(e.attr) == pytest.approx(value)


def test_a_dims_name_is_its_size():
    e = parse("D")
    assert e.op == "dim" and e.attr == "D" and e.shape == ()
    assert float(evaluate(parse("x / D"), {"x": np.array([3.0, 6.0, 9.0])}, DIMS)[1]) == 2.0


@pytest.mark.parametrize("text, shape", [
    ("W @ x", ("H",)),
    ("x.T", (1, "D")),
    ("x.T.T", ("D",)),
    ("x.T @ x", ()),
    ("x @ x.T", ("D", "D")),
    ("x @ v.T", ("D", "H")),
    ("W.T @ v", ("D",)),
    ("W.T", ("D", "H")),
    ("v.T @ W", (1, "D")),
    ("v.T @ W @ x", ()),
    ("s * x", ("D",)),
    ("x * s", ("D",)),
    ("x + 1", ("D",)),
    ("s + 1", ()),
    ("M @ M", ("D", "D")),
    ("W @ M @ x + v", ("H",)),
    ("x[2]", ()),
    ("W[1]", ("D",)),
    ("W[3, 2]", ()),
    ("y[t]", ()),
    ("softmax(W @ x)[0]", ()),
    ("diag(x) @ x", ("D",)),
    ("sum(x * x) * v", ("H",)),
])
def test_shapes(text, shape, scope):
    assert parse_expression(text, scope, None).shape == shape


# ====================================================================== precedence
@pytest.mark.parametrize("text, expected", [
    ("s + r * 2", lambda s, r: s + r * 2),
    ("(s + r) * 2", lambda s, r: (s + r) * 2),
    ("-s ** 2", lambda s, r: -(s ** 2)),
    ("(-s) ** 2", lambda s, r: s ** 2),
    ("-2 ** 2", lambda s, r: -4.0),
    ("2 ** 3 ** 2", lambda s, r: 512.0),
    ("s - r - 1", lambda s, r: (s - r) - 1),
    ("s / r / 2", lambda s, r: s / r / 2),
    ("s / r * 2", lambda s, r: (s / r) * 2),
    ("s - -r", lambda s, r: s + r),
    ("s ** -1", lambda s, r: 1 / s),
    ("1 - s * r + s / r", lambda s, r: 1 - s * r + s / r),
])
def test_precedence_scalars(text, expected):
    vals = {"s": 1.7, "r": -0.6}
    got = float(evaluate(parse(text), vals, DIMS))
    assert got == pytest.approx(expected(vals["s"], vals["r"]), rel=1e-12)


def test_precedence_structure():
    # `@` binds like `*`, both tighter than `+`, and associate to the left.
    e = parse("W @ x + v")
    assert e.op == "add" and e.args[0].op == "matmul"
    e = parse("x.T @ M @ x")
    assert e.op == "matmul" and e.args[0].op == "matmul" and e.args[0].args[0].op == "T"
    e = parse("s * x + u")
    assert e.op == "add" and e.args[0].op == "mul"
    e = parse("-x.T")        # the transpose binds tighter than unary minus
    assert e.op == "neg" and e.args[0].op == "T"
    e = parse("x ** 2 * u")
    assert e.op == "mul" and e.args[0].op == "pow"


def test_matrix_product_values():
    rng = np.random.default_rng(1)
    vals = random_values(SHAPES, DIMS, rng)
    W, x, M, v = vals["W"], vals["x"], vals["M"], vals["v"]
    assert close(evaluate(parse("W @ M @ x + v"), vals, DIMS), W @ M @ x + v)
    assert close(evaluate(parse("x.T @ M @ x"), vals, DIMS), x @ M @ x)
    assert close(evaluate(parse("x @ v.T"), vals, DIMS), np.outer(x, v))
    assert close(evaluate(parse("W.T @ v"), vals, DIMS), W.T @ v)
    assert close(evaluate(parse("diag(x) @ x"), vals, DIMS), x * x)
    assert close(evaluate(parse("W[1, 2] + W[1][0]"), vals, DIMS), W[1, 2] + W[1, 0])
    e = np.exp(x - x.max())
    assert close(evaluate(parse("softmax(x)"), vals, DIMS), e / e.sum())


# ====================================================================== errors, with their columns
@pytest.mark.parametrize("text, token, hint", [
    ("xx", "xx", "x"),
    ("W @ xx + v", "xx", "x"),
    ("sigmoid(Ww @ x)", "Ww", "W"),
    ("x + u + vv", "vv", "v"),
])
def test_unknown_name_column_and_suggestion(text, token, hint):
    err = error_of(text)
    assert f"unknown name '{token}'" in err.message
    assert f"did you mean '{hint}'" in err.message
    assert err.where == Location(WHERE.file, WHERE.line, col(text, token))


@pytest.mark.parametrize("text, token, hint", [
    ("sigmod(x)", "sigmod", "sigmoid"),
    ("x + softmx(x)", "softmx", "softmax"),
    ("2 * tan(s)", "tan", "tanh"),
])
def test_unknown_function_column_and_suggestion(text, token, hint):
    err = error_of(text)
    assert f"unknown function '{token}'" in err.message and f"did you mean '{hint}'" in err.message
    assert err.where.column == col(text, token)


def test_unknown_name_without_a_close_match_has_no_hint():
    err = error_of("qqqqqq + x")
    assert "unknown name 'qqqqqq'" in err.message and "did you mean" not in err.message


@pytest.mark.parametrize("text, token", [
    ("W @ v", "W"),                 # inner sizes D and H differ
    ("x + v", "x"),
    ("s + (x + v)", "x"),
    ("x @ W", "x"),
    ("s @ x", "s"),
    ("x @ 2", "x"),
    ("softmax(W)", "softmax"),
    ("2 * diag(W)", "diag"),
    ("log_softmax(s)", "log_softmax"),
    ("x[0, 1]", "x"),
    ("x * (M @ v)", "M"),
])
def test_shape_mismatch_is_reported_at_the_offending_subexpression(text, token):
    err = error_of(text)
    assert "shape" in err.message or "'@'" in err.message or "indices" in err.message
    assert err.where.line == WHERE.line and err.where.column == col(text, token)


def test_shape_mismatch_names_the_shapes():
    err = error_of("W @ v")
    assert "[H, D]" in err.message and "[H]" in err.message


@pytest.mark.parametrize("text, token", [
    ("x.shape", "x"),
    ("x.T.shape", "x"),
    ("x.__class__", "x"),
    ("__import__('os')", "__import__"),
    ("lambda: 1", "lambda"),
    ("[a for a in x]", "["),
    ("sum(a for a in x)", "("),
    ("'abc'", "'"),
    ("\"x\" + x", '"'),
    ("sum(x, axis=0)", "sum"),
    ("x[0:2]", "0"),
    ("x[:]", ":"),
    ("a if b else c", "a"),
    ("x < u", "x"),
    ("x % 2", "x"),
    ("x // 2", "x"),
    ("~x", "~"),
    ("not x", "not"),
    ("(x, u)", "("),
    ("{1: 2}", "{"),
    ("1j", "1j"),
    ("True", "True"),
    ("None", "None"),
    ("...", "..."),
    ("sigmoid(*x)", "*"),
    ("(s := 1)", "s"),
    ("f'{x}'", "f"),
    ("b'x'", "b"),
    ("sigmoid(x)(x)", "sigmoid"),
    ("x.T()", "x"),
    ("sum(x, W)", "W"),                # a summation index must be a new name
    ("sum()", "sum"),
    ("x[-1]", "-"),
    ("x[0.5]", "0.5"),
    ("x[3]", "3"),
    ("ones(x)", "x"),
    ("onehot(t, 0)", "0"),
    ("1e999", "1e999"),
])
def test_outside_the_language_is_a_located_user_error(text, token):
    err = error_of(text)
    assert err.where.file == WHERE.file and err.where.line == WHERE.line
    assert err.where.column == col(text, token), str(err)


@pytest.mark.parametrize("text", ["x +", "*x", ")", "x;x", "W @@ x", "sigmoid(x", "x x"])
def test_syntax_errors_are_user_errors_on_the_right_line(text):
    err = error_of(text)
    assert "cannot parse" in err.message
    assert err.where.line == WHERE.line and WHERE.column <= err.where.column <= WHERE.column + len(text)


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_expression(text):
    assert "empty" in error_of(text).message


def test_a_python_builtin_name_is_just_an_unknown_name():
    for name in ("exit", "print", "open", "eval", "__builtins__", "os", "globals"):
        err = error_of(name)
        assert f"unknown name '{name}'" in err.message
        err = error_of(f"{name}(x)")
        assert f"unknown function '{name}'" in err.message


def test_the_parser_never_evaluates(monkeypatch, tmp_path):
    """No eval/exec/compile-to-code, no sympify, whatever the text."""
    calls = []
    real_compile = builtins.compile

    def guarded_compile(source, filename, mode, flags=0, *args, **kwargs):
        if not flags & ast.PyCF_ONLY_AST:
            calls.append(("compile", source))
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    def refuse(name):
        def f(*a, **k):
            calls.append((name, a))
            raise AssertionError(f"{name} called")
        return f

    import sympy
    monkeypatch.setattr(builtins, "compile", guarded_compile)
    monkeypatch.setattr(builtins, "eval", refuse("eval"))
    monkeypatch.setattr(builtins, "exec", refuse("exec"))
    monkeypatch.setattr(sympy, "sympify", refuse("sympify"))
    monkeypatch.setattr(sympy, "parse_expr", refuse("parse_expr"))
    marker = tmp_path / "pwned"
    attacks = [f"__import__('os').system('touch {marker}')",
               f"open('{marker}', 'w')",
               "().__class__.__bases__[0].__subclasses__()",
               "exit()", "x.T.__globals__", "[x for x in ()]", "sigmoid(x) + W @ x.T.T[0]",
               "(lambda: __import__('os'))()", "eval('1')", "exec('1')"]
    for text in attacks:
        try:
            parse(text)
        except UserError:
            pass
    assert calls == []
    assert not marker.exists()


# ====================================================================== limits
def test_length_limit():
    text = " + ".join(["x"] * (MAX_LENGTH // 4 + 10))
    assert len(text) > MAX_LENGTH
    err = error_of(text)
    assert "too long" in err.message and err.where == WHERE


def test_length_limit_is_not_hit_below_it():
    text = "+".join(["s"] * 30)
    assert parse(text).shape == ()


@pytest.mark.parametrize("text", [
    "(" * 500 + "x" + ")" * 500,
    "[" * 300 + "]" * 300,
    "-" * 3999 + "x",
    "x" + ".T" * 1999,
    "sigmoid(" * 400 + "x" + ")" * 400,
    "sigmoid(" * (MAX_DEPTH + 10) + "x" + ")" * (MAX_DEPTH + 10),
    "+".join(["x"] * 1999),
    "**".join(["s"] * 1000),
    "x" + "[0]" * 900,
    "exp(" * 200 + "s" + ")" * 200,
])
def test_deep_nesting_is_a_user_error_not_a_recursion_error(text):
    assert len(text) <= MAX_LENGTH
    err = error_of(text)
    assert err.where is not None and err.where.line == WHERE.line


def test_moderate_nesting_is_fine():
    assert parse("(" * 50 + "x" + ")" * 50).shape == ("D",)
    e = parse("sigmoid(" * 20 + "x" + ")" * 20)
    assert e.op == "sigmoid" and e.shape == ("D",)


def test_control_and_odd_characters():
    assert parse("x\n+ u").op == "add"           # a multi-line YAML value reads as one line
    assert parse("\tx").shape == ("D",)
    for text in ("x\x00", "\ufeffx", "x \x07 u"):
        error_of(text)


# ====================================================================== robustness (Hypothesis)
@given(st.text(alphabet=string.printable, max_size=60))
@settings(max_examples=300, deadline=None)
def test_random_printable_text_raises_only_user_errors(text):
    try:
        e = parse(text)
    except UserError as err:
        assert str(err)                     # printable as one line
        assert "\n" not in str(err)
    else:
        assert isinstance(e, Expr)


_TOKENS = ["x", "u", "v", "W", "M", "s", "t", "y", "D", "H", "0", "1", "2", "0.5", "1e9", "+", "-",
           "*", "/", "**", "@", ".T", "(", ")", "[", "]", ",", " ", "sum(", "softmax(", "sigmoid(",
           "diag(", "ones(", "eye(", "onehot(", "log(", "exp(", "relu_prime(", "mean(", "abs(", "sqrt(",
           "qq", ".shape", ":", "lambda", "=", "'", "-1", "1/2", "zz("]


@given(st.lists(st.sampled_from(_TOKENS), max_size=25))
@settings(max_examples=400, deadline=None)
def test_random_token_soup_raises_only_user_errors(tokens):
    text = "".join(tokens)
    try:
        e = parse(text)
    except UserError as err:
        assert "\n" not in str(err)
        if err.where is not None:
            assert err.where.line == WHERE.line
            assert WHERE.column <= err.where.column <= WHERE.column + max(len(text), 1)
    else:
        assert isinstance(e, Expr)


# ====================================================================== printing round trip
@pytest.mark.parametrize("path", problem_params())
def test_every_gradient_prints_and_parses_back_to_the_same_numbers(path):
    _, g, d = loaded(path)
    leaves, values = leaf_values(g, seed=11)
    scope = g.scope()
    for name in g.names:
        expr = d.full[name]
        text = to_ascii(expr)
        back = parse_expression(text, scope, None)
        assert back.shape == expr.shape, (name, text)
        a = evaluate(expr, values, g.dims)
        b = evaluate(back, values, g.dims)
        assert close(np.broadcast_to(a, np.shape(b)), b), (name, text)


@pytest.mark.parametrize("path", problem_params())
def test_every_forward_expression_prints_and_parses_back(path):
    _, g, _ = loaded(path)
    _, values = leaf_values(g, seed=5)
    for name, e in g.nodes.items():
        back = parse_expression(to_ascii(e), g.scope(upto=name), None)
        assert back.shape == e.shape
        assert close(evaluate(back, values, g.dims), evaluate(e, values, g.dims)), name


@given(expressions(depth=4))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_printed_expressions_parse_back_to_the_same_value(e):
    # relu_prime of a number: the bug of test_numeric.test_relu_prime_of_a_constant_evaluates
    assume(not any(n.op == "relu_prime" and not any(m.op == "sym" for m in n.walk()) for n in e.walk()))
    vals = random_values(SHAPES, DIMS, np.random.default_rng(3), positive=True)
    assume(all_finite(e, vals))         # (1 / -0 and 1 / +0: signed zeros are not the printer's business)
    text = to_ascii(e)
    back = parse(text)
    assert back.shape == e.shape, text
    with np.errstate(all="ignore"):
        a = evaluate(e, vals, DIMS)
        b = evaluate(back, vals, DIMS)
    assert close(a, b, rtol=1e-9, atol=1e-12), text


def test_printed_transpose_of_a_number_parses_back():
    """`to_ascii(make("T", num(2)))` is `2.T`, which Python reads as the float `2.` then `T`."""
    from derivkit.expr import make, num
    e = make("mul", make("T", num(2)), sym("s"))
    assert float(evaluate(parse(to_ascii(e)), {"s": 3.0}, DIMS)) == 6.0


def test_product_with_a_quotient_of_a_matrix_product_prints_with_parentheses():
    from derivkit.expr import make
    x, M = sym("x", ("D",)), sym("M", ("D", "D"))
    e = make("mul", x, make("div", M @ x, x))
    back = parse(to_ascii(e))
    vals = random_values(SHAPES, DIMS, np.random.default_rng(0))
    assert close(evaluate(back, vals, DIMS), evaluate(e, vals, DIMS))


def test_fractions_print_as_exact_quotients():
    from derivkit.expr import num
    e = sym("s") ** num(Fraction(1, 3))
    assert to_ascii(e) == "s**(1/3)"
    assert float(evaluate(parse(to_ascii(e)), {"s": np.float64(8.0)}, DIMS)) == pytest.approx(2.0)
    assert to_ascii(num(Fraction(-3, 4)) * sym("s")) in ("-3/4 * s", "(-3/4) * s")
