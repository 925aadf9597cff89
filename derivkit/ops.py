"""The registry of operations: everything about one operation in one entry.

Each :class:`Op` holds its shape rule, its derivative (as elementwise partials
or a vector-Jacobian product written in the expression language, so gradients
come out in matrix form), its local Jacobian, its scalar SymPy expansion (the
ground truth), its NumPy form and how it prints.  Adding an activation or a
loss is adding one ``defop`` line under the right banner.

Conventions: ``G`` is the upstream gradient (shape of the output), ``out`` the
expression of the output itself (a node's name when the op is a whole node, so
σ' prints as h ⊙ (1 − h)).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import sympy

from .expr import ONE, Expr, ShapeError, concrete, eye, make, num, ones

# Print precedences (higher binds tighter).
P_ADD, P_MUL, P_NEG, P_POW, P_ATOM = 10, 20, 15, 30, 100


@dataclass
class Op:
    name: str
    shape: Callable[[list, Any], tuple]
    #: elementwise ops: partial derivative of the output wrt each argument, entry by entry
    partials: Callable[..., tuple] | None = None
    #: other ops: the vector-Jacobian product, one gradient expression (or None) per argument
    vjp: Callable[..., tuple] | None = None
    #: local Jacobian (matrix) wrt each vector/scalar argument, or None where it is a tensor
    jac: Callable[..., tuple] | None = None
    #: scalar SymPy expansion: object arrays in, object array out
    sympy: Callable[..., Any] | None = None
    #: NumPy: (values, batched flags, expr, dims) -> array; batched values carry a leading batch axis
    numpy: Callable[..., Any] | None = None
    tex: str = ""
    ascii: str = ""
    form: str = "func"          # func | infix | prefix | postfix | atom | special
    prec: int = P_ATOM
    rule: str = ""              # the name of its derivative step, for sheets
    in_language: bool = True    # may appear in problem files and ASCII answers
    elementwise: bool = False
    differentiable: bool = True
    kink: bool = False          # not differentiable at 0: finite differences must keep away from it


OPS: dict[str, Op] = {}
FUNCTIONS: dict[str, Op] = {}   # name in the expression language -> op


def defop(name: str, **kw) -> Op:
    """Register one operation; elementwise ops get their VJP and Jacobian from ``partials``."""
    op = Op(name=name, **kw)
    if op.partials is not None:
        op.vjp = op.vjp or _elementwise_vjp(op.partials)
        op.jac = op.jac or _elementwise_jac(op.partials)
    OPS[name] = op
    if op.form in ("func", "special") and op.in_language:
        FUNCTIONS[op.ascii or name] = op
    return op


def reserved_names() -> frozenset[str]:
    """Names a problem may not give a symbol or node: every function of the language, and ``T``."""
    return frozenset(FUNCTIONS) | {"T"}


def _elementwise_vjp(partials):
    """G ⊙ ∂out/∂arg for each argument, summed down where an argument is a broadcast scalar."""
    def vjp(G, *args, out):
        parts = partials(*args, out)
        return tuple(None if d is None else reduce_to(G * d, a.shape) for d, a in zip(parts, args))
    return vjp


def _elementwise_jac(partials):
    """diag(∂out/∂arg) for vector arguments; a column for a broadcast scalar."""
    def jac(*args, out):
        res = []
        for d, a in zip(partials(*args, out), args):
            if d is None or len(a.shape) > 1 or len(out.shape) > 1:
                res.append(None)
            elif a.shape == () and out.shape != ():
                res.append(spread(d, out.shape))          # a column: every output moves with the scalar
            elif out.shape == ():
                res.append(d)
            else:
                res.append(make("diag", spread(d, out.shape)))
        return tuple(res)
    return jac


# ====================================================================== shape rules
def _dims(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def same_or_scalar(shapes, attr=None):
    shapes = [s for s in shapes if s != ()]
    if not shapes:
        return ()
    first = shapes[0]
    for s in shapes[1:]:
        if s != first:
            raise ShapeError(f"shapes {_dims(first)} and {_dims(s)} do not match elementwise")
    return first


def unary_same(shapes, attr=None):
    return shapes[0]


def vector_only(shapes, attr=None):
    (s,) = shapes
    if len(s) != 1:
        raise ShapeError(f"needs a column vector, got shape {_dims(s)}")
    return s


def to_scalar(shapes, attr=None):
    return ()


def matmul_shape(shapes, attr=None):
    a, b = shapes
    if a == () or b == ():
        raise ShapeError("'@' is the matrix product; use '*' to multiply by a scalar")
    ra = a if len(a) == 2 else (a[0], 1)      # a column vector is n x 1
    rb = b if len(b) == 2 else (b[0], 1)
    if ra[1] != rb[0]:
        raise ShapeError(f"cannot multiply {_dims(a)} @ {_dims(b)}: inner sizes {ra[1]} and {rb[0]} differ")
    m, n = ra[0], rb[1]
    if m == 1 and n == 1:
        return ()
    if n == 1:
        return (m,)
    return (m, n)


def transpose_shape(shapes, attr=None):
    (s,) = shapes
    if len(s) == 0:
        return ()
    if len(s) == 1:
        return (1, s[0])
    if s[0] == 1:
        return (s[1],)
    return (s[1], s[0])


def index_shape(shapes, attr=None):
    s, *idx = shapes
    if any(i != () for i in idx):
        raise ShapeError("an index must be a scalar (an integer or a class-index target)")
    if len(idx) > len(s):
        raise ShapeError(f"too many indices for shape {_dims(s)}")
    return s[len(idx):]


def diag_shape(shapes, attr=None):
    (s,) = shapes
    if len(s) != 1:
        raise ShapeError(f"diag() takes a column vector, got shape {_dims(s)}")
    return (s[0], s[0])


def diagonal_shape(shapes, attr=None):
    (s,) = shapes
    if len(s) != 2 or s[0] != s[1]:
        raise ShapeError(f"diagonal() takes a square matrix, got shape {_dims(s)}")
    return (s[0],)


def onehot_shape(shapes, attr=None):
    if shapes[0] != ():
        raise ShapeError("onehot() takes a scalar class index")
    return (attr,)


# ====================================================================== helpers for rules
def mm(a: Expr, b: Expr) -> Expr:
    """Matrix product that degrades to a scalar product when either side is a scalar."""
    if a.shape == () or b.shape == ():
        return a * b
    return a @ b


def spread(g: Expr, shape) -> Expr:
    """A scalar gradient spread over every entry of ``shape``."""
    return g if shape == () or g.shape == shape else g * ones(shape)


def reduce_to(g: Expr, shape) -> Expr:
    """Sum a gradient down to a scalar argument's shape (broadcasting's adjoint)."""
    return make("sum", g) if shape == () and g.shape != () else g


def size_expr(shape) -> Expr:
    out = ONE
    for d in shape:
        out = out * (Expr("dim", (), d, ()) if isinstance(d, str) else num(d))
    return out


# ====================================================================== NumPy helpers
def _align(vals, bats):
    """Give batched operands of lower rank singleton axes after the batch axis."""
    if not any(bats):
        return vals
    rank = max(np.ndim(v) - (1 if b else 0) for v, b in zip(vals, bats))
    out = []
    for v, b in zip(vals, bats):
        if b and v.ndim - 1 < rank:
            v = v.reshape(v.shape[:1] + (1,) * (rank - v.ndim + 1) + v.shape[1:])
        out.append(v)
    return out


def ew(f):
    """NumPy form of an elementwise op."""
    return lambda vals, bats, e, dims: f(*_align(vals, bats))


def _sigmoid(x):
    # 1/(1+e^-x): exact to rounding for every x (e^-x overflows to inf for x < -709, giving 0),
    # and 2.5x faster than exp(-logaddexp(0, -x)).
    with np.errstate(over="ignore"):
        e = np.exp(-np.asarray(x, dtype=float))
    if np.ndim(e) == 0:
        return 1.0 / (1.0 + e)
    e += 1.0
    return np.reciprocal(e, out=e)


def _np_matmul(vals, bats, e, dims):
    a, b = vals
    ba, bb = bats
    sa, sb = e.args[0].shape, e.args[1].shape
    if not (ba or bb):
        r = np.reshape(a, a.shape if len(sa) == 2 else (-1, 1)) @ np.reshape(b, b.shape if len(sb) == 2 else (-1, 1))
        return r.reshape(r.shape[0]) if len(e.shape) == 1 else (r[0, 0] if e.shape == () else r)
    if len(sa) == 2 and len(sb) == 1 and sa[0] != 1 and not ba:   # W @ x, x batched: (B, n) -> (B, m)
        return b @ a.T
    if len(sa) == 1 and len(sb) == 2 and sb[0] == 1:              # outer product a b^T
        A = a if ba else np.broadcast_to(a, (b.shape[0],) + a.shape)
        Bm = b[:, 0, :] if bb else np.broadcast_to(b[0], (A.shape[0],) + b.shape[1:])
        return np.einsum("bi,bj->bij", A, Bm)
    A = a if ba else a[None]
    Bm = b if bb else b[None]
    A = A[..., None] if len(sa) == 1 else A
    Bm = Bm[..., None] if len(sb) == 1 else Bm
    r = A @ Bm
    if e.shape == ():
        return r[:, 0, 0]
    if len(e.shape) == 1:
        return r[:, :, 0]
    return r


def _np_T(vals, bats, e, dims):
    (a,), (b,) = vals, bats
    s = e.args[0].shape
    if len(s) == 0:
        return a
    if len(s) == 1:
        return a[..., None, :]
    if s[0] == 1:
        return a[..., 0, :]
    return np.swapaxes(a, -1, -2)


def _np_reduce(f):
    def run(vals, bats, e, dims):
        (a,), (b,) = vals, bats
        axes = tuple(range(1 if b else 0, a.ndim))
        return f(a, axis=axes) if axes else a
    return run


def _np_softmax(vals, bats, e, dims):
    a = vals[0]
    z = np.exp(a - a.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _np_log_softmax(vals, bats, e, dims):
    a = vals[0]
    m = a.max(axis=-1, keepdims=True)
    return a - m - np.log(np.exp(a - m).sum(axis=-1, keepdims=True))


def _np_index(vals, bats, e, dims):
    a, *idx = vals
    ba, *bi = bats
    idx = [np.asarray(i).astype(np.int64) for i in idx]
    if not (ba or any(bi)):
        return a[tuple(int(i) for i in idx)]
    B = next(v.shape[0] for v, b in zip(vals, bats) if b)
    A = a if ba else np.broadcast_to(a, (B,) + a.shape)
    rows = np.arange(B)
    full = [i if b else np.full(B, int(i)) for i, b in zip(idx, bi)]
    return A[(rows, *full)]


def _np_onehot(vals, bats, e, dims):
    (t,), (b,) = vals, bats
    n = dims[e.attr] if isinstance(e.attr, str) else int(e.attr)
    if b:
        out = np.zeros((t.shape[0], n))
        out[np.arange(t.shape[0]), t.astype(np.int64)] = 1.0
        return out
    out = np.zeros(n)
    out[int(t)] = 1.0
    return out


def _np_diag(vals, bats, e, dims):
    (a,), (b,) = vals, bats
    if b:
        return a[:, :, None] * np.eye(a.shape[1])[None]
    return np.diag(a)


def _np_diagonal(vals, bats, e, dims):
    (a,), (b,) = vals, bats
    return np.diagonal(a, axis1=-2, axis2=-1).copy()


# ====================================================================== SymPy (ground truth) helpers
def _sp_ew(f):
    vf = np.frompyfunc(f, 1, 1)
    return lambda a, attr=None: np.asarray(vf(a), dtype=object) if np.ndim(a) else f(a)


def _sp_ew2(f):
    vf = np.frompyfunc(f, 2, 1)

    def run(a, b, attr=None):
        if np.ndim(a) == 0 and np.ndim(b) == 0:
            return f(a, b)
        return np.asarray(vf(a, b), dtype=object)
    return run


def _col(a):
    a = np.asarray(a, dtype=object)
    return a.reshape(-1, 1) if a.ndim == 1 else a


def _sp_matmul(a, b, attr=None):
    r = _col(a).dot(_col(b))
    if r.shape == (1, 1):
        return r[0, 0]
    if r.shape[1] == 1:
        return r[:, 0]
    return r


def _sp_T(a, attr=None):
    a = np.asarray(a, dtype=object)
    if a.ndim == 0:
        return a[()]
    if a.ndim == 1:
        return a.reshape(1, -1)
    if a.shape[0] == 1:
        return a[0]
    return a.T


def _sp_sum(a, attr=None):
    a = np.asarray(a, dtype=object)
    return sympy.Add(*a.ravel()) if a.ndim else a[()]


def _sp_mean(a, attr=None):
    a = np.asarray(a, dtype=object)
    return sympy.Add(*a.ravel()) / a.size if a.ndim else a[()]


def _sp_softmax(a, attr=None):
    e = [sympy.exp(v) for v in a]
    s = sympy.Add(*e)
    return np.array([v / s for v in e], dtype=object)


def _sp_log_softmax(a, attr=None):
    lse = sympy.log(sympy.Add(*[sympy.exp(v) for v in a]))
    return np.array([v - lse for v in a], dtype=object)


def _sp_index(a, *idx, attr=None):
    a = np.asarray(a, dtype=object)
    for i in idx:
        if getattr(i, "is_Integer", False) or isinstance(i, int):
            a = a[int(i)]
        else:  # a symbolic class index: sum of Kronecker deltas picks the entry
            a = sum((sympy.KroneckerDelta(k, i) * a[k] for k in range(a.shape[0])), sympy.Integer(0))
    return a


def _sp_onehot(t, attr=None):
    return np.array([sympy.KroneckerDelta(k, t) for k in range(attr)], dtype=object)


def _sp_diag(a, attr=None):
    n = len(a)
    out = np.full((n, n), sympy.Integer(0), dtype=object)
    for i in range(n):
        out[i, i] = a[i]
    return out


def _sp_diagonal(a, attr=None):
    return np.array([a[i, i] for i in range(a.shape[0])], dtype=object)


def sp_sigmoid(x):
    return 1 / (1 + sympy.exp(-x))


# ====================================================================== arithmetic
defop("add", shape=same_or_scalar, partials=lambda a, b, out: (ONE, ONE), elementwise=True,
      sympy=_sp_ew2(lambda x, y: x + y), numpy=ew(np.add), tex="+", ascii="+", form="infix", prec=P_ADD,
      rule="sum rule")
defop("sub", shape=same_or_scalar, partials=lambda a, b, out: (ONE, -ONE), elementwise=True,
      sympy=_sp_ew2(lambda x, y: x - y), numpy=ew(np.subtract), tex="-", ascii="-", form="infix", prec=P_ADD,
      rule="difference rule")
defop("mul", shape=same_or_scalar, partials=lambda a, b, out: (b, a), elementwise=True,
      sympy=_sp_ew2(lambda x, y: x * y), numpy=ew(np.multiply), tex=r"\odot", ascii="*", form="infix",
      prec=P_MUL, rule="product rule")
defop("div", shape=same_or_scalar, partials=lambda a, b, out: (ONE / b, -a / b**2), elementwise=True,
      sympy=_sp_ew2(lambda x, y: x / y), numpy=ew(np.divide), tex=r"\oslash", ascii="/", form="infix",
      prec=P_MUL, rule="quotient rule")
defop("pow", shape=same_or_scalar,
      partials=lambda a, b, out: (b * a ** (b - ONE), out * make("log", a)), elementwise=True,
      sympy=_sp_ew2(lambda x, y: x**y), numpy=ew(np.power), tex="^", ascii="**", form="infix", prec=P_POW,
      rule="power rule")
defop("neg", shape=unary_same, partials=lambda a, out: (-ONE,), elementwise=True,
      sympy=_sp_ew(lambda x: -x), numpy=ew(np.negative), tex="-", ascii="-", form="prefix", prec=P_NEG,
      rule="constant factor")

# ====================================================================== elementwise functions
defop("exp", shape=unary_same, partials=lambda a, out: (out,), elementwise=True,
      sympy=_sp_ew(sympy.exp), numpy=ew(np.exp), tex=r"\exp", rule="exponential rule: exp' = exp")
defop("log", shape=unary_same, partials=lambda a, out: (ONE / a,), elementwise=True,
      sympy=_sp_ew(sympy.log), numpy=ew(np.log), tex=r"\log", rule="logarithm rule: log'(u) = 1/u")
defop("sqrt", shape=unary_same, partials=lambda a, out: (ONE / (num(2) * out),), elementwise=True,
      sympy=_sp_ew(sympy.sqrt), numpy=ew(np.sqrt), tex=r"\sqrt", form="special",
      rule="square-root rule")
defop("abs", shape=unary_same, partials=lambda a, out: (a / out,), elementwise=True,
      sympy=_sp_ew(sympy.Abs), numpy=ew(np.abs), tex=r"\left|", form="special", kink=True,
      rule="absolute value: |u|' = u/|u|")
defop("sigmoid", shape=unary_same, partials=lambda a, out: (out * (ONE - out),), elementwise=True,
      sympy=_sp_ew(sp_sigmoid), numpy=ew(_sigmoid), tex=r"\sigma",
      rule="sigmoid rule: σ'(u) = σ(u)(1 − σ(u))")
defop("tanh", shape=unary_same, partials=lambda a, out: (ONE - out ** num(2),), elementwise=True,
      sympy=_sp_ew(sympy.tanh), numpy=ew(np.tanh), tex=r"\tanh", rule="tanh rule: tanh'(u) = 1 − tanh²(u)")
defop("relu", shape=unary_same, partials=lambda a, out: (make("relu_prime", a),), elementwise=True,
      sympy=_sp_ew(lambda x: sympy.Max(0, x)), numpy=ew(lambda x: np.maximum(x, 0.0)),
      tex=r"\mathrm{ReLU}", kink=True, rule="ReLU rule: ReLU'(u) = 1[u > 0]")
defop("softplus", shape=unary_same, partials=lambda a, out: (make("sigmoid", a),), elementwise=True,
      sympy=_sp_ew(lambda x: sympy.log(1 + sympy.exp(x))), numpy=ew(lambda x: np.logaddexp(0.0, x)),
      tex=r"\operatorname{softplus}", rule="softplus rule: softplus'(u) = σ(u)")
defop("sigmoid_prime", shape=unary_same,
      partials=lambda a, out: (out * (ONE - num(2) * make("sigmoid", a)),), elementwise=True,
      sympy=_sp_ew(lambda x: sympy.exp(-x) / (1 + sympy.exp(-x)) ** 2),
      numpy=ew(lambda x: _sigmoid(x) * (1 - _sigmoid(x))), tex=r"\sigma'", rule="σ'' = σ'(1 − 2σ)")
defop("tanh_prime", shape=unary_same,
      partials=lambda a, out: (num(-2) * make("tanh", a) * out,), elementwise=True,
      sympy=_sp_ew(lambda x: 1 / sympy.cosh(x) ** 2), numpy=ew(lambda x: 1 - np.tanh(x) ** 2),
      tex=r"\tanh'", rule="tanh'' = −2 tanh tanh'")
defop("relu_prime", shape=unary_same, partials=lambda a, out: (None,), elementwise=True,
      sympy=_sp_ew(lambda x: sympy.Heaviside(x, 0)), numpy=ew(lambda x: (x > 0).astype(float)),
      tex=r"\mathbb{1}", form="special", rule="step function: derivative 0 almost everywhere",
      differentiable=False, kink=True)


# ====================================================================== vector functions
def _softmax_vjp(G, a, out):
    return (out * G - out * make("sum", out * G),)


def _log_softmax_vjp(G, a, out):
    return (G - make("softmax", a) * make("sum", G),)


defop("softmax", shape=vector_only, vjp=_softmax_vjp,
      jac=lambda a, out: (make("diag", out) - out @ out.T,),
      sympy=_sp_softmax, numpy=_np_softmax, tex=r"\operatorname{softmax}",
      rule="softmax rule: ∂y_i/∂o_j = y_i(δ_ij − y_j)")
defop("log_softmax", shape=vector_only, vjp=_log_softmax_vjp,
      jac=lambda a, out: (eye(a.shape[0]) - ones(a.shape) @ make("softmax", a).T,),
      sympy=_sp_log_softmax, numpy=_np_log_softmax, tex=r"\log\operatorname{softmax}",
      rule="log-softmax rule: ∂/∂o_j log y_i = δ_ij − y_j")

# ====================================================================== linear algebra
defop("matmul", shape=matmul_shape,
      vjp=lambda G, a, b, out: (mm(G, b.T), mm(a.T, G)),
      jac=lambda a, b, out: (None, a if len(a.shape) == 2 and len(b.shape) == 1 else None),
      sympy=_sp_matmul, numpy=_np_matmul, tex="", ascii="@", form="infix", prec=P_MUL,
      rule="matrix product rule: ∂(AB) = (∂A)B + A(∂B)")
defop("T", shape=transpose_shape, vjp=lambda G, a, out: (G.T,),
      sympy=_sp_T, numpy=_np_T, tex="^{\\top}", ascii=".T", form="postfix", prec=P_POW,
      rule="transpose")
defop("sum", shape=to_scalar, vjp=lambda G, a, out: (spread(G, a.shape),),
      jac=lambda a, out: (ones(a.shape).T if len(a.shape) == 1 else None,),
      sympy=_sp_sum, numpy=_np_reduce(np.sum), tex=r"\sum", rule="sum rule: ∂Σu/∂u = 1")
defop("mean", shape=to_scalar, vjp=lambda G, a, out: (spread(G, a.shape) / size_expr(a.shape),),
      jac=lambda a, out: (ones(a.shape).T / size_expr(a.shape) if len(a.shape) == 1 else None,),
      sympy=_sp_mean, numpy=_np_reduce(np.mean), tex=r"\operatorname{mean}",
      rule="mean rule: ∂mean(u)/∂u = 1/n")
defop("diag", shape=diag_shape, vjp=lambda G, a, out: (make("diagonal", G),),
      sympy=_sp_diag, numpy=_np_diag, tex=r"\operatorname{diag}", rule="diagonal matrix")
defop("diagonal", shape=diagonal_shape, vjp=lambda G, a, out: (make("diag", G),),
      sympy=_sp_diagonal, numpy=_np_diagonal, tex=r"\operatorname{diagonal}", rule="diagonal of a matrix")


def _index_vjp(G, a, *idx, out):
    if len(a.shape) == 1:
        return (G * make("onehot", idx[0], attr=a.shape[0]),) + (None,) * len(idx)
    rows = make("onehot", idx[0], attr=a.shape[0])
    if len(idx) == 1:
        return (mm(rows, G.T),) + (None,)
    cols = make("onehot", idx[1], attr=a.shape[1])
    return (G * (rows @ cols.T), None, None)


defop("index", shape=index_shape, in_language=False, vjp=lambda G, a, *idx, out: _index_vjp(G, a, *idx, out=out),
      jac=lambda a, *idx, out: ((make("onehot", idx[0], attr=a.shape[0]).T if len(a.shape) == 1 else None),)
      + (None,) * len(idx),
      sympy=_sp_index, numpy=_np_index, form="special", rule="indexing picks one entry")
defop("onehot", shape=onehot_shape, in_language=False, vjp=lambda G, t, out: (None,), sympy=_sp_onehot, numpy=_np_onehot,
      tex=r"\mathbf{e}", form="special", rule="one-hot vector", differentiable=False)

# ====================================================================== atoms (not functions)
for _atom in ("sym", "num", "grad", "ones", "eye", "dim"):
    defop(_atom, shape=lambda shapes, attr=None: (), form="atom", in_language=False)

def op_vjp(e: Expr, G: Expr, out: Expr) -> tuple:
    """Gradient contributions to each argument of ``e`` given upstream ``G``."""
    return OPS[e.op].vjp(G, *e.args, out=out)


def sympy_value(e: Expr, args: list, dims: dict[str, int]):
    """The scalar SymPy expansion of ``e``'s op on expanded ``args``, in ``e``'s concrete shape.

    The SymPy forms see plain arrays, which cannot tell a [K, H] matrix with K = 1 from a
    row or a [K] vector with K = 1 from a scalar; the expression's own shape can, so the
    value is fitted to it here (a size-1 dim must not change what a value is).
    """
    attr = dims.get(e.attr, e.attr) if isinstance(e.attr, str) else e.attr
    val = OPS[e.op].sympy(*args, attr=attr)
    shape = concrete(e.shape, dims)
    arr = np.asarray(val, dtype=object)
    if arr.shape == shape:
        return val
    return arr.reshape(-1)[0] if shape == () else arr.reshape(shape)


def op_jac(e: Expr, out: Expr) -> tuple:
    spec = OPS[e.op]
    if spec.jac is None:
        return (None,) * len(e.args)
    return spec.jac(*e.args, out=out)


# ====================================================================== index notation
# One entry of a matrix-form answer, written with free index names (∂l/∂u_j = δ_jt − p_j):
#   ivar   a free or summed index name, a scalar integer (attr: the name)
#   delta  Kronecker delta δ_ij, ASCII ``delta(i, j)``
#   isum   Σ_k body over k = 0..n−1 (attr: k; args: body and the size n, a ``dim`` or a number),
#          ASCII ``sum(body, k)``, the range being the size of the axis k indexes
#   eq     the indicator 1[a = b]; ``lhs == rhs`` is how an identity is written
# NumPy evaluates them once every index has a value: see indexform.concrete_entries.
P_CMP = 5


def _index_symbol(attr):
    return sympy.Symbol(attr, integer=True, nonnegative=True)


def _sp_isum(body, n, attr=None):
    k = _index_symbol(attr)
    return sympy.Add(*[sympy.sympify(body).subs(k, v) for v in range(int(n))])


def _np_unbound(vals, bats, e, dims):
    raise ValueError(f"{e.op} {e.attr!r}: give every index a value first (indexform.concrete_entries)")


def _np_indicator(i, j):
    return np.equal(i, j).astype(float) if np.ndim(i) or np.ndim(j) else float(i == j)


def _isum_shape(shapes, attr=None):
    body, n = shapes
    if body != () or n != ():
        raise ShapeError("a sum over an index adds scalars")
    return ()


def _scalar_pair(shapes, attr=None):
    if any(s != () for s in shapes):
        raise ShapeError("delta() compares two scalar indices")
    return ()


defop("ivar", shape=lambda shapes, attr=None: (), form="atom", in_language=False,
      sympy=lambda attr=None: _index_symbol(attr), numpy=_np_unbound, differentiable=False)
defop("delta", shape=_scalar_pair, form="special", in_language=False, differentiable=False,
      sympy=lambda i, j, attr=None: sympy.KroneckerDelta(i, j), numpy=ew(_np_indicator), tex=r"\delta",
      ascii="delta", vjp=lambda G, i, j, out: (None, None), rule="Kronecker delta")
defop("isum", shape=_isum_shape, form="special", in_language=False, sympy=_sp_isum, numpy=_np_unbound,
      tex=r"\sum", ascii="sum", rule="sum over an index", differentiable=False)
defop("eq", shape=same_or_scalar, form="infix", prec=P_CMP, elementwise=True, differentiable=False,
      partials=lambda a, b, out: (None, None), sympy=_sp_ew2(sympy.KroneckerDelta), numpy=ew(_np_indicator),
      tex="=", ascii="==", rule="equality")

#: calls of the index notation, read by the parser (not reserved names: a call is never a symbol)
INDEX_CALLS = ("delta", "where")
