"""The registry of operations: every entry complete, every rule checked against SymPy once.

Each op is tried on small concrete shapes (scalars, vectors, matrices, broadcast
scalars, wherever its shape rule accepts them).  At random points its NumPy form
must agree with its SymPy form (per sample and batched), its VJP with
``sympy.diff`` of ⟨G, op(args)⟩, its local Jacobian with SymPy's Jacobian, and an
elementwise op's partials with ``sympy.diff`` of its scalar form.  A last test adds
an activation with one ``defop`` inside the test and uses it end to end.
"""
from __future__ import annotations

import inspect
import json
import math

import numpy as np
import pytest
import sympy
from click.testing import CliRunner

from helpers import make_scope
from derivkit import ops
from derivkit.cli import main as cli
from derivkit.expr import ONE, Expr, ShapeError, make, num, sym
from derivkit.numeric import Program
from derivkit.ops import FUNCTIONS, OPS, defop, op_jac, op_vjp, reserved_names, sympy_value
from derivkit.parse import parse_expression
from derivkit.printing import to_ascii, to_latex
from derivkit.verify import leaf_symbols

#: sheet-only index notation (free index names, δ, Σ over an index): no arrays to check numerically
INDEX_NOTATION = {"ivar", "delta", "isum"}
FORMS = {"func", "infix", "prefix", "postfix", "atom", "special"}
NAMES = "abc"
_SHAPES_1 = [(3,), (), (2, 3), (3, 3)]
_SHAPES_2 = [((3,), (3,)), ((), (3,)), ((3,), ()), ((), ()), ((2, 3), (3,)), ((2, 3), (3, 2)),
             ((3,), (1, 3)), ((1, 3), (3,)), ((2, 3), (2, 3)), ((3, 3), (3, 3))]
#: ops taking integer indices: literal ones, or class-index symbols (named in INDEX_SYMBOLS)
INDEX_SYMBOLS = ("i", "j")
_SPECIAL_ARGS = {
    "index": [((3,), num(1)), ((2, 3), num(1), num(2)), ((2, 3), num(1)), ((3,), "i"), ((2, 3), "i", "j")],
    "onehot": [(num(1),), ("i",)],
}


def computed_ops() -> list[str]:
    """Every op with arguments that a graph, a gradient or an answer can hold."""
    return [n for n, op in OPS.items() if op.form != "atom" and n not in INDEX_NOTATION]


def _arity(op) -> int:
    params = inspect.signature(op.sympy).parameters.values()
    return sum(1 for p in params if p.kind == p.POSITIONAL_OR_KEYWORD and p.default is p.empty)


def instances(name: str) -> list[Expr]:
    """``name`` applied to symbols a, b, … of each shape combination its shape rule accepts."""
    op = OPS[name]
    if name in _SPECIAL_ARGS:
        cases = _SPECIAL_ARGS[name]
    else:
        cases = [(s,) for s in _SHAPES_1] if _arity(op) == 1 else _SHAPES_2
    out = []
    for case in cases:
        args = [a if isinstance(a, Expr) else sym(a, ()) if isinstance(a, str) else sym(NAMES[i], a)
                for i, a in enumerate(case)]
        try:
            out.append(make(name, *args, attr=3 if name == "onehot" else None))
        except ShapeError:
            continue
    return out


def _domain_positive(name: str) -> bool:
    return name in ("log", "sqrt", "pow", "div")


def draw(e: Expr, rng, batch: int | None = None) -> dict:
    """Random values for the symbols of ``e``: away from 0 (kinks), positive where a log needs it."""
    vals = {}
    for a in e.args:
        if a.op != "sym":
            continue
        shape = ((batch,) if batch else ()) + a.shape
        if a.attr in INDEX_SYMBOLS:              # every indexed axis here has at least 2 entries
            vals[a.attr] = rng.integers(0, 2, size=shape) if shape else np.int64(rng.integers(0, 2))
            continue
        v = rng.uniform(0.3, 1.5, size=shape)
        if not _domain_positive(e.op):
            v = v * rng.choice([-1.0, 1.0], size=shape)
        vals[a.attr] = v if shape else np.float64(v)
    return vals


def sympy_args(e: Expr) -> tuple[list, dict]:
    """SymPy arrays for the arguments of ``e``, and the symbol of each entry."""
    arrays, symbols = [], {}
    for a in e.args:
        if a.op == "sym":
            arr = leaf_symbols(a.attr, a.shape, "class" if a.attr in INDEX_SYMBOLS else None)
            arrays.append(arr)
            symbols[a.attr] = arr
        else:
            arrays.append(sympy.Integer(int(a.attr)))
    return arrays, symbols


def substitution(symbols: dict, values: dict) -> dict:
    subs = {}
    for name, arr in symbols.items():
        for idx in np.ndindex(*np.shape(arr)):
            v = np.asarray(values[name])[idx]
            exact = sympy.Integer(int(v)) if name in INDEX_SYMBOLS else sympy.Float(float(v), 30)
            subs[np.asarray(arr, dtype=object)[idx]] = exact
    return subs


def as_floats(value, subs) -> np.ndarray:
    arr = np.asarray(value, dtype=object)
    return np.vectorize(lambda v: float(sympy.N(sympy.sympify(v).xreplace(subs), 20)), otypes=[float])(arr) \
        if arr.size else arr.astype(float)


def numeric(e: Expr, values: dict, batched=frozenset()) -> np.ndarray:
    return np.asarray(Program({"out": e}, {}).run(values, set(batched))["out"], dtype=float)


def close(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-9, atol=1e-12))


CASES = [pytest.param(e, id=f"{name}:{'-'.join(str(list(a.shape)) for a in e.args)}")
         for name in computed_ops() for e in instances(name)]


# ====================================================================== completeness
@pytest.mark.parametrize("name", list(OPS))
def test_every_entry_is_complete(name):
    op = OPS[name]
    assert op.name == name
    assert callable(op.shape)
    assert op.form in FORMS
    assert isinstance(op.prec, int)
    assert isinstance(op.kink, bool) and isinstance(op.elementwise, bool)
    if op.form == "atom" or name in INDEX_NOTATION:
        return
    assert callable(op.sympy) and callable(op.numpy)
    assert isinstance(op.rule, str) and op.rule.strip()
    assert instances(name), "no shape the op accepts was tried"
    if op.differentiable:
        assert callable(op.vjp)
    if op.elementwise:
        assert callable(op.partials) and callable(op.jac)
    if op.in_language and op.form in ("func", "special"):
        assert FUNCTIONS[op.ascii or name] is op
        assert (op.ascii or name) in reserved_names()


@pytest.mark.parametrize("name", [n for n in computed_ops() if OPS[n].in_language])
def test_every_language_op_prints_and_reads_back(name):
    for e in instances(name):
        shapes = {a.attr: a.shape for a in e.args if a.op == "sym"}
        assert to_latex(e).strip()
        assert parse_expression(to_ascii(e), make_scope(shapes, {}), None) == e


def test_only_language_functions_are_reserved():
    assert reserved_names() == frozenset(FUNCTIONS) | {"T"}
    assert not reserved_names() & {n for n, op in OPS.items() if not op.in_language} - set(FUNCTIONS)


# ====================================================================== every rule against SymPy
@pytest.mark.parametrize("e", CASES)
def test_numpy_form_agrees_with_sympy_form(e):
    rng = np.random.default_rng(0)
    arrays, symbols = sympy_args(e)
    exact = sympy_value(e, arrays, {})
    for _ in range(3):
        values = draw(e, rng)
        assert close(numeric(e, values), as_floats(exact, substitution(symbols, values)))


@pytest.mark.parametrize("e", CASES)
def test_batched_numpy_form_agrees_with_each_sample(e):
    rng = np.random.default_rng(1)
    names = {a.attr for a in e.args if a.op == "sym"}
    if not names:
        return                                  # a constant: nothing to batch
    for batched in [names] + [{n} for n in sorted(names) if len(names) > 1]:
        values = draw(e, rng)
        for n in batched:
            values[n] = np.stack([draw(e, rng)[n] for _ in range(4)])
        together = numeric(e, values, batched)
        for k in range(4):
            one = {n: (v[k] if n in batched else v) for n, v in values.items()}
            assert close(together[k], numeric(e, one))


@pytest.mark.parametrize("e", CASES)
def test_vjp_agrees_with_sympy_diff(e):
    """The VJP of argument a is ∂⟨G, op(args)⟩/∂a for every upstream G."""
    if not OPS[e.op].differentiable:
        return
    rng = np.random.default_rng(2)
    arrays, symbols = sympy_args(e)
    G_sym = leaf_symbols("G", e.shape, None)
    products = np.asarray(G_sym, dtype=object) * np.asarray(sympy_value(e, arrays, {}), dtype=object)
    inner = sympy.Add(*np.asarray(products, dtype=object).ravel())
    G, out = sym("G", e.shape), sym("out", e.shape)
    grads = op_vjp(e, G, out)
    assert len(grads) == len(e.args)
    checked = 0
    for arg, g in zip(e.args, grads):
        if g is None or arg.op != "sym" or arg.attr in INDEX_SYMBOLS:
            continue
        assert g.shape == arg.shape
        truth = np.vectorize(lambda s: sympy.diff(inner, s), otypes=[object])(
            np.asarray(symbols[arg.attr], dtype=object))
        for _ in range(2):
            values = draw(e, rng)
            values["G"] = rng.normal(size=e.shape) if e.shape else np.float64(rng.normal())
            values["out"] = numeric(e, values)
            subs = substitution({**symbols, "G": G_sym}, values)
            assert close(numeric(g, values), as_floats(truth, subs).reshape(np.shape(numeric(g, values))))
        checked += 1
    assert checked or e.op in ("onehot",)


@pytest.mark.parametrize("e", CASES)
def test_local_jacobian_agrees_with_sympy(e):
    """Where the registry gives a matrix Jacobian (numerator layout), it is SymPy's."""
    rng = np.random.default_rng(3)
    arrays, symbols = sympy_args(e)
    f = np.asarray(sympy_value(e, arrays, {}), dtype=object)
    for arg, J in zip(e.args, op_jac(e, sym("out", e.shape))):
        if J is None or arg.op != "sym" or arg.attr in INDEX_SYMBOLS:
            continue
        var = np.asarray(symbols[arg.attr], dtype=object)
        truth = np.empty(f.shape + var.shape, dtype=object)
        for i in np.ndindex(*f.shape):
            for j in np.ndindex(*var.shape):
                truth[i + j] = sympy.diff(f[i], var[j])
        values = draw(e, rng)
        values["out"] = numeric(e, values)
        got = numeric(J, values)
        assert got.size == truth.size
        assert close(got, as_floats(truth, substitution(symbols, values)).reshape(got.shape))


@pytest.mark.parametrize("name", [n for n in computed_ops() if OPS[n].elementwise])
def test_elementwise_partials_agree_with_sympy_diff(name):
    op = OPS[name]
    n = _arity(op)
    scalars = sympy.symbols(" ".join(NAMES[:n]), real=True)
    scalars = scalars if isinstance(scalars, tuple) else (scalars,)
    f = op.sympy(*scalars)
    args = [sym(s.name) for s in scalars]
    rng = np.random.default_rng(4)
    for d, s in zip(op.partials(*args, sym("out")), scalars):
        if d is None:
            assert not op.differentiable or sympy.diff(f, s).is_zero is not False
            continue
        for _ in range(3):
            x = [float(v) for v in rng.uniform(0.3, 1.5, size=n) * (1 if _domain_positive(name) else
                                                                      rng.choice([-1, 1], size=n))]
            subs = {sv: sympy.Float(v, 30) for sv, v in zip(scalars, x)}
            values = {s.name: np.float64(v) for s, v in zip(scalars, x)}
            values["out"] = np.float64(float(sympy.N(f.xreplace(subs), 20)))
            want = float(sympy.N(sympy.diff(f, s).xreplace(subs), 20))
            assert math.isclose(float(numeric(d, values)), want, rel_tol=1e-9, abs_tol=1e-12)


# ====================================================================== a new activation, one defop
@pytest.fixture
def scratch_registry():
    """Ops registered inside a test are removed again afterwards."""
    saved_ops, saved_functions = dict(OPS), dict(FUNCTIONS)
    yield
    OPS.clear()
    OPS.update(saved_ops)
    FUNCTIONS.clear()
    FUNCTIONS.update(saved_functions)


SWISH_PROBLEM = """
id: swish-net
title: A swish hidden layer, logistic output
dims: {D: 2, H: 3}
symbols:
  x: {shape: [D], role: input}
  y: {shape: [], role: target, kind: binary}
  W: {shape: [H, D], role: param}
  b: {shape: [H], role: param}
  v: {shape: [H], role: param}
  c: {shape: [], role: param}
forward:
  z: W @ x + b
  h: swish(z)
  s: v.T @ h + c
  p: sigmoid(s)
loss:
  l: -(y * log(p) + (1 - y) * log(1 - p))
questions:
  - {id: dl_dz, kind: grad, wrt: z}
  - {id: dh_dz, kind: jacobian, of: h, wrt: z}
check:
  dims: {H: 8}
  data: {generator: moons, n: 200, seed: 0}
  train: {optimizer: sgd, lr: 0.1, batch_size: 1, epochs: 3, seed: 0}
"""


def test_one_defop_adds_a_working_activation(scratch_registry, tmp_path):
    # swish(u) = u σ(u);  swish'(u) = σ(u) + u σ(u)(1 − σ(u)) = out + σ(u)(1 − out)
    defop("swish", shape=ops.unary_same, elementwise=True,
          partials=lambda a, out: (out + make("sigmoid", a) * (ONE - out),),
          sympy=ops._sp_ew(lambda u: u * ops.sp_sigmoid(u)), numpy=ops.ew(lambda u: u * ops._sigmoid(u)),
          tex=r"\operatorname{swish}", rule="swish rule: swish'(u) = swish(u) + σ(u)(1 − swish(u))")
    path = tmp_path / "swish.yaml"
    path.write_text(SWISH_PROBLEM)

    from derivkit.solve import solve
    from derivkit.vectors import vectors
    sol = solve(str(path), train=True)
    assert all(gr.verified for gr in sol.gradients.values())
    assert all(a.verified for a in sol.answers.values())
    assert sol.gradcheck.passed
    assert sol.train is not None and math.isfinite(sol.train.final_loss)
    assert sol.train.loss[-1] < sol.train.loss[0]

    doc = vectors(sol.graph, sol.derivation, seed=1)
    z = np.asarray(doc["nodes"]["z"])
    assert close(doc["nodes"]["h"], z / (1 + np.exp(-z)))

    run = CliRunner().invoke(cli, ["solve", str(path), "--format", "json", "--no-train"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["verified"] is True
    run = CliRunner().invoke(cli, ["vectors", str(path), "--seed", "1"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["gradients"] == doc["gradients"]
    assert r"\operatorname{swish}" in to_latex(sol.graph.nodes["h"])


def test_the_scratch_registry_is_restored(scratch_registry):
    assert "swish" not in OPS and "swish" not in FUNCTIONS
