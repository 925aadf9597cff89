"""The expression node: equality and hashing include the shape, and survive pickling."""
from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings

from strategies import expressions
from derivkit.expr import Expr, eye, grad, make, num, ones, sym


@pytest.mark.parametrize("a, b", [
    (ones(("H",)), ones(("C",))),
    (eye("D"), eye("H")),
    (ones(("D",)), ones(("D", "D"))),
    (sym("x", ("D",)), sym("x", ("H",))),
    (sym("x", ("D",)), sym("x", (1, "D"))),
    (grad("z", ("H",)), grad("z", ())),
    (make("sum", ones(("D",))), make("sum", ones(("H",)))),
])
def test_same_op_and_attribute_but_another_shape_is_another_expression(a, b):
    assert a.op == b.op and a.attr == b.attr
    assert a != b
    assert len({a: 1, b: 2}) == 2
    assert a not in {b}


def test_equal_expressions_are_equal_keys():
    a = make("add", sym("x", ("D",)), ones(("D",)))
    b = make("add", sym("x", ("D",)), ones(("D",)))
    assert a is not b and a == b and hash(a) == hash(b)
    assert {a: 1}[b] == 1


def _structure(e: Expr):
    return (e.op, e.attr, e.shape, tuple(_structure(a) for a in e.args))


@given(expressions(depth=3), expressions(depth=3))
@settings(max_examples=200, deadline=None)
def test_equality_is_structural_equality_with_shapes(a, b):
    assert (a == b) == (_structure(a) == _structure(b))
    if a == b:
        assert hash(a) == hash(b)


@given(expressions(depth=3))
@settings(max_examples=100, deadline=None)
def test_pickling_keeps_equality_and_hash(e):
    back = pickle.loads(pickle.dumps(e))
    assert back == e and hash(back) == hash(e) and back.shape == e.shape


def test_numbers_compare_by_value():
    assert num(2) == num(2.0) and num(0.5) == num(1 / 2)
    assert num(2) != num(3)


def test_a_tiny_float_is_not_rounded_to_zero():
    assert num(1e-13).attr != 0 and float(num(1e-300).attr) == 1e-300
