"""Layout conventions: how a course writes the derivative of a scalar.

derivkit derives every gradient in **denominator** layout: ∂l/∂x has the shape of
x (a column for a vector, [m, n] for W of shape [m, n]); that is also what autodiff
code produces, so numeric code, ``vectors`` and training always use it.

A course may write **numerator** layout instead: ∂l/∂x of a column x is a row
[1, n], and ∂l/∂W of W [m, n] is the [n, m] matrix ∂l/∂W_ij at (j, i).  A Jacobian
∂f/∂x of two vectors is [len f, len x] in both layouts.

The two functions the rest of derivkit (and the grader) use:

* :func:`present` — a derivative of a scalar in derivkit's (denominator) form,
  written in ``layout``: the identity in denominator layout, the transpose in
  numerator layout.
* :func:`absorb` — its inverse: an expression in ``layout`` back to the variable's
  shape, which is what :func:`derivkit.verify.compare` proves against
  ``verify.Derivative(loss, wrt)``.

:func:`transpose` pushes the transpose through products and sums so that
(∂l/∂z xᵀ)ᵀ prints as x (∂l/∂z)ᵀ, not as a transposed parenthesis.
"""
from __future__ import annotations

from .expr import Expr, make

DENOMINATOR = "denominator"
NUMERATOR = "numerator"
LAYOUTS = (DENOMINATOR, NUMERATOR)


def shape_in(wrt_shape: tuple, layout: str) -> tuple:
    """The shape of ∂(scalar)/∂wrt in ``layout``: [n] → [1, n], [m, n] → [n, m] in numerator."""
    wrt_shape = tuple(wrt_shape)
    if layout == DENOMINATOR or not wrt_shape:
        return wrt_shape
    if len(wrt_shape) == 1:
        return (1, wrt_shape[0])
    return (wrt_shape[1], wrt_shape[0])


def present(e: Expr, wrt_shape: tuple, layout: str) -> Expr:
    """∂(scalar)/∂wrt, given with ``wrt``'s own shape, written in ``layout``."""
    if layout == DENOMINATOR or not tuple(wrt_shape):
        return e
    return transpose(e)


def absorb(e: Expr, wrt_shape: tuple, layout: str) -> Expr:
    """The inverse of :func:`present`: an answer in ``layout`` back to ``wrt``'s own shape."""
    if layout == DENOMINATOR or not tuple(wrt_shape):
        return e
    return transpose(e)


def transpose(e: Expr) -> Expr:
    """eᵀ with the transpose pushed inwards where that reads better ((A B)ᵀ = Bᵀ Aᵀ, (Aᵀ)ᵀ = A,
    (s A)ᵀ = s Aᵀ; a sum stays (a − b)ᵀ, which reads as the column it came from)."""
    if e.shape == ():
        return e
    op = e.op
    if op == "T":
        return e.args[0]
    if op == "eye" or op == "diag":
        return e
    if op == "matmul":
        a, b = e.args
        return make("matmul", transpose(b), transpose(a))
    if op == "neg":
        return make("neg", transpose(e.args[0]))
    if op in ("mul", "div") and e.args[1].shape == ():
        return make(op, transpose(e.args[0]), e.args[1])
    if op == "mul" and e.args[0].shape == ():
        return make("mul", e.args[0], transpose(e.args[1]))
    return make("T", e)
