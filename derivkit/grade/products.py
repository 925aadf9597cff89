"""What a product written without an operator means: the shapes decide.

``a b`` (juxtaposition), ``a \\cdot b`` and ``a \\times b`` are

* scaling when either side is a scalar (``2 x``, ``\\frac{1}{K} (y - t)``);
* the matrix product when the shapes allow it (``(y - t) h^T`` is an outer
  product, ``h^T x`` an inner product, ``V^T \\delta`` a matrix-vector product);
* otherwise, when both sides have the same shape, the elementwise product, by
  the convention of ``\\sigma(z)(1 - \\sigma(z))`` and ``h (1 - h)``;
* otherwise a shape mismatch.

In a run of such factors (``\\sigma'(z) V^T \\delta``) the bracketing that uses
the fewest elementwise-by-convention products is taken, the leftmost one on a
tie: ``\\sigma'(z) V^T \\delta`` is ``\\sigma'(z) ⊙ (V^T \\delta)`` and
``\\delta \\sigma'(z) x^T`` is ``(\\delta ⊙ \\sigma'(z)) x^T``.  Runs longer than
:data:`MAX_SEARCH` factors are read left to right.
"""
from __future__ import annotations

from derivkit.expr import Expr, ShapeError, make

MAX_SEARCH = 8


def _dims(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def juxtapose(a: Expr, b: Expr) -> tuple[Expr, int]:
    """``a b`` and the number of elementwise-by-convention products it used (0 or 1)."""
    if a.shape == () or b.shape == ():
        return make("mul", a, b), 0
    try:
        return make("matmul", a, b), 0
    except ShapeError:
        pass
    if a.shape == b.shape:
        return make("mul", a, b), 1
    raise ShapeError(f"cannot multiply shapes {_dims(a.shape)} and {_dims(b.shape)} "
                     "(neither a matrix product nor an elementwise one)")


def product_run(factors: list[Expr]) -> Expr:
    """The product of ``factors`` written side by side.

    ShapeError if no bracketing fits; its ``factor`` attribute is the index of the
    factor where the left-to-right reading failed, for the error's position.
    """
    n = len(factors)
    if n == 1:
        return factors[0]
    if n > MAX_SEARCH:
        return _left_to_right(factors)
    # best[(i, j)] = (elementwise count, product of factors[i:j]) over all bracketings
    best: dict[tuple[int, int], tuple[int, Expr]] = {(i, i + 1): (0, f) for i, f in enumerate(factors)}
    for length in range(2, n + 1):
        for i in range(0, n - length + 1):
            j = i + length
            choice = None
            for split in range(j - 1, i, -1):         # rightmost split first: left-associative
                left, right = best.get((i, split)), best.get((split, j))
                if left is None or right is None:
                    continue
                try:
                    e, ew = juxtapose(left[1], right[1])
                except ShapeError:
                    continue
                cost = left[0] + right[0] + ew
                if choice is None or cost < choice[0]:
                    choice = (cost, e)
            if choice is not None:
                best[(i, j)] = choice
    if (0, n) in best:
        return best[(0, n)][1]
    return _left_to_right(factors)


def _left_to_right(factors: list[Expr]) -> Expr:
    acc = factors[0]
    for i, f in enumerate(factors[1:], start=1):
        try:
            acc, _ = juxtapose(acc, f)
        except ShapeError as exc:
            exc.factor = i
            raise
    return acc
