"""Printing: the ASCII form reads back to the same expression; the LaTeX form matches the golden
table and compiles.

Round trip: ``parse(to_ascii(e))`` has e's shape and value for random trees of the registry's
operations (and, over the corpus, for every gradient, chain form and question answer).
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from helpers import (DIMS, SHAPES, close, evaluate, leaf_values, make_scope, problem_params, random_values,
                     solved)
from derivkit.errors import Location, UserError
from derivkit.expr import Expr, ShapeError, concrete, eye, grad, make, num, ones, sym
from derivkit.indexform import concrete_entries
from derivkit.layout import absorb
from derivkit.ops import OPS
from derivkit.parse import MAX_INT_DIGITS, Scope, parse_equation, parse_expression
from derivkit.printing import to_ascii, to_latex
from derivkit.vocabulary import atom_names, expand

GOLDEN = Path(__file__).parent / "golden" / "latex.tsv"
REGENERATE = os.environ.get("DERIVKIT_REGENERATE_GOLDEN") == "1"


def scope(indices=()) -> Scope:
    """The test symbols, ∂l/∂name as ``dl/dname``, and free index names."""
    return dataclasses.replace(make_scope(SHAPES, DIMS), loss="l", indices=tuple(indices))


def parse(text: str, indices=()) -> Expr:
    return parse_expression(text, scope(indices), None)


# ====================================================================== random trees of the registry's ops
#: every registry op the ASCII language spells, with its arity (index and onehot are built apart)
_SKIP = {"index", "onehot", "isum", "delta", "eq"}
REGISTRY_OPS = sorted(n for n, op in OPS.items() if op.form != "atom" and n not in _SKIP)
_LEAVES = ([sym(n, s) for n, s in SHAPES.items() if n != "t"]
           + [num(v) for v in (2, 3, -1, -2, Fraction(1, 3), Fraction(-3, 4), 0.5, 1.5, 1e-13, 2.5e20)]
           + [ones(("D",)), ones(("H", "D")), eye("D"), Expr("dim", (), "H", ()),
              grad("x", ("D",)), grad("W", ("H", "D")), grad("s", ())])


@st.composite
def registry_trees(draw, max_steps=8):
    """Build bottom-up: each step applies a drawn op to drawn earlier results; ill-shaped steps are skipped."""
    pool = list(_LEAVES)
    last = draw(st.sampled_from(_LEAVES))
    for _ in range(draw(st.integers(1, max_steps))):
        name = draw(st.sampled_from(REGISTRY_OPS + ["index", "onehot"]))
        try:
            if name == "index":
                base = draw(st.sampled_from([p for p in pool if p.shape]))
                axes = concrete(base.shape, DIMS)[:draw(st.integers(1, len(base.shape)))]
                e = make("index", base, *[num(draw(st.integers(0, n - 1))) for n in axes])
            elif name == "onehot":
                e = make("onehot", num(draw(st.integers(0, 2))), attr="D")
            elif OPS[name].form == "infix":
                firsts = [a for a in pool if any(_fits(name, a, b) for b in pool)]
                if not firsts:
                    continue
                a = last if last in firsts and draw(st.booleans()) else draw(st.sampled_from(firsts))  # grow
                fits = [b for b in pool if _fits(name, a, b)]
                pair = (a, draw(st.sampled_from(fits)))
                e = make(name, *(pair if draw(st.booleans()) or not _fits(name, *pair[::-1]) else pair[::-1]))
            else:
                fits = [a for a in pool if _fits(name, a)]
                if not fits:
                    continue
                e = make(name, last if last in fits and draw(st.booleans()) else draw(st.sampled_from(fits)))
        except (ShapeError, IndexError):
            continue
        pool.append(e)
        last = e
    return last


def _fits(name, *args) -> bool:
    try:
        make(name, *args)
    except ShapeError:
        return False
    return True


def _values(seed=3):
    vals = random_values(SHAPES, DIMS, np.random.default_rng(seed), positive=True)
    rng = np.random.default_rng(seed + 1)
    for g in ("x", "W", "s"):
        vals[("grad", g)] = rng.uniform(0.2, 1.5, size=concrete(SHAPES[g], DIMS))
    vals[("grad", "s")] = float(vals[("grad", "s")])
    return vals


def _same_value(a: Expr, b: Expr, vals) -> bool:
    with np.errstate(all="ignore"):
        x = np.asarray(evaluate(a, vals, DIMS), dtype=float)
        y = np.asarray(evaluate(b, vals, DIMS), dtype=float)
    x, y = np.broadcast_arrays(x, y)
    return bool(np.allclose(x, y, rtol=1e-9, atol=1e-12, equal_nan=True))


def _canonical(e: Expr) -> Expr:
    """``e`` up to what the ASCII text cannot tell apart: where a minus sign sits in a product
    (``-a * b`` is read as (−a)·b), a double minus, and numbers written as −2 or 1/3."""
    if e.op == "neg" and e.args[0].op in ("mul", "div", "matmul"):
        a, b = e.args[0].args
        return _canonical(make(e.args[0].op, make("neg", a), b))
    if e.op == "neg" and e.args[0].op == "neg":
        return _canonical(e.args[0].args[0])
    args = tuple(_canonical(a) for a in e.args)
    e = make(e.op, *args, attr=e.attr) if args != e.args else e
    if e.op == "neg" and e.args[0].op == "num":
        return num(-e.args[0].attr)
    if e.op == "div" and all(a.op == "num" and a.attr.denominator == 1 and abs(a.attr) < 10 ** MAX_INT_DIGITS
                             for a in e.args) and e.args[1].attr:
        return num(e.args[0].attr / e.args[1].attr)               # 2 / (-2) is read as the number -1
    return e


@given(registry_trees())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_ascii_reads_back_to_the_same_tree_and_value(e):
    text = to_ascii(e)
    try:
        back = parse(text)
    except UserError as err:       # only what the parser refuses by design: constants undefined or too large
        assume("constant" not in err.message and "division by zero" not in err.message)
        raise
    assert back.shape == e.shape, text
    assert _canonical(back) == _canonical(e), text
    assert to_ascii(back) == to_ascii(parse(to_ascii(back))), text      # printing a parsed text is stable


def test_the_generator_reaches_every_registry_op():
    seen = set()

    @given(registry_trees())
    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    def collect(e):
        seen.update(n.op for n in e.walk())
    collect()
    assert set(REGISTRY_OPS) | {"index", "onehot"} <= seen


@pytest.mark.parametrize("e, text", [
    (make("mul", make("T", num(2)), sym("s")), "(2).T * s"),
    (make("mul", sym("x", ("D",)), make("div", sym("M", ("D", "D")) @ sym("x", ("D",)), sym("x", ("D",)))),
     "x * (M @ x / x)"),
    (make("index", make("add", sym("x", ("D",)), num(1)), num(0)), "(x + 1)[0]"),
    (make("mul", sym("x", ("D",)), grad("x", ("D",))), "x * (dl/dx)"),
    (make("neg", grad("x", ("D",))), "-(dl/dx)"),
    (make("T", grad("x", ("D",))), "(dl/dx).T"),
    (ones(("H", "D")), "ones(H, D)"),
    (make("mul", num(Fraction(-3, 4)), sym("s")), "-3/4 * s"),
    (make("mul", num(2 ** 60), sym("s")), "1.152921504606847e+18 * s"),
])
def test_known_corner_cases_print_so_that_they_read_back(e, text):
    assert to_ascii(e) == text
    back = parse(text)
    assert back.shape == e.shape and _same_value(back, e, _values())


# ====================================================================== index notation
def test_delta_sums_and_free_indices_read_back():
    e = parse("sum(W[m, k] * (delta(m, j) - v[m]), m) * x[k]", indices=("j", "k"))
    assert e.shape == () and any(n.op == "isum" for n in e.walk())
    body = next(n for n in e.walk() if n.op == "isum")
    assert body.attr == "m" and body.args[1] == Expr("dim", (), "H", ())     # m indexes W's rows: H
    assert parse(to_ascii(e), indices=("j", "k")) == e


@pytest.mark.parametrize("text, expected", [
    ("delta(j, 1) - y[j]", lambda vals, j: float(j == 1) - vals["y"][j]),
    ("sum(W[k, j] * v[k], k)", lambda vals, j: vals["W"][:, j] @ vals["v"]),
    ("where(j == 2, 1 - y[j], -y[j])", lambda vals, j: (1 - vals["y"][j]) if j == 2 else -vals["y"][j]),
    ("sum(x[k] * u[k], k) * y[j]", lambda vals, j: (vals["x"] @ vals["u"]) * vals["y"][j]),
])
def test_index_forms_have_the_values_of_their_entries(text, expected):
    e = parse(text, indices=("j",))
    vals = random_values(SHAPES, DIMS, np.random.default_rng(0))
    for values, entry in concrete_entries(e, {"j": "row"}, DIMS, ("C",)):
        assert float(evaluate(entry, vals, DIMS)) == pytest.approx(expected(vals, values["j"]), rel=1e-12)


def test_index_forms_expand_in_sympy():
    """The SymPy forms: a free index stays a symbol, a sum over an index is a finite sum."""
    import sympy
    e = parse("sum(x[k] * u[k], k) + delta(j, 1)", indices=("j",))
    env = {n: np.array(sympy.symbols(f"{n}0:3"), dtype=object) for n in ("x", "u")}
    memo = {}
    for n in e.walk():
        if n.op == "sym":
            memo[n] = env[n.attr]
        elif n.op == "dim":
            memo[n] = sympy.Integer(DIMS[n.attr])
        elif n.op == "num":
            memo[n] = sympy.Rational(n.attr.numerator, n.attr.denominator)
        else:
            memo[n] = OPS[n.op].sympy(*[memo[a] for a in n.args], attr=n.attr)
    j = sympy.Symbol("j", integer=True, nonnegative=True)
    x, u = env["x"], env["u"]
    assert sympy.simplify(memo[e] - (sum(x * u) + sympy.KroneckerDelta(j, 1))) == 0


@pytest.mark.parametrize("text, column", [
    ("sum(x[k], k) + k", 16),                  # k is bound only inside its sum
    ("sum(s * 2, k)", 12),                     # k indexes nothing: no range
    ("sum(x[k] * v[k], k)", 18),               # k indexes axes of sizes D and H
    ("sum(x[j], j)", 11),                      # j is already a free index
    ("sum(x, k)", 5),                          # the body is not a scalar
    ("delta(j)", 1),
    ("where(s, x, u)", 7),
    ("x == u == x", 1),
])
def test_bad_index_notation_is_a_located_user_error(text, column):
    with pytest.raises(UserError) as info:
        parse_expression(text, scope(("j",)), Location("f.yaml", 1, 1))
    assert info.value.where == Location("f.yaml", 1, column), str(info.value)


def test_an_identity_reads_back_as_its_two_sides():
    lhs, rhs = parse_equation("sigmoid(-s) == 1 - sigmoid(s)", scope())
    assert lhs == parse("sigmoid(-s)") and rhs == parse("1 - sigmoid(s)")
    with pytest.raises(UserError):
        parse_equation("sigmoid(s)", scope())


# ====================================================================== LaTeX golden table
def _golden_rows() -> list[tuple[str, str]]:
    rows = []
    for line in GOLDEN.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            ascii_text, _, latex = line.partition("\t")
            rows.append((ascii_text, latex))
    return rows


def _golden_latex(ascii_text: str) -> str:
    return to_latex(parse(ascii_text, indices=("j", "k")))


def test_golden_latex_table():
    """tests/golden/latex.tsv: ASCII<TAB>expected LaTeX.  Regenerate (then read the diff by eye) with
    DERIVKIT_REGENERATE_GOLDEN=1 python -m pytest tests/test_printing.py -k golden"""
    rows = _golden_rows()
    if REGENERATE:
        header = [line for line in GOLDEN.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
        GOLDEN.write_text("\n".join(header + [f"{a}\t{_golden_latex(a)}" for a, _ in rows]) + "\n", encoding="utf-8")
        rows = _golden_rows()
    wrong = [(a, want, _golden_latex(a)) for a, want in rows if _golden_latex(a) != want]
    assert not wrong, "\n".join(f"{a}\n  want {w}\n  got  {g}" for a, w, g in wrong)


def test_golden_table_covers_every_registry_op():
    ops = set()
    for a, _ in _golden_rows():
        ops.update(n.op for n in parse(a, indices=("j", "k")).walk())
    assert set(OPS) - {"sym", "num", "grad", "dim"} <= ops


def test_golden_latex_compiles():
    _compile([latex for _, latex in _golden_rows()])


def _compile(formulas: list[str]) -> None:
    """Every formula in one amsmath document, through pdflatex: no error."""
    import tempfile
    exe = shutil.which("pdflatex")
    if exe is None:
        pytest.skip("no pdflatex: the printed LaTeX was not compiled (CI installs it)")
    body = "\n".join(f"\\[ {f} \\]" for f in formulas)
    doc = ("\\documentclass{article}\n\\usepackage{amsmath,amssymb,bm}\n\\begin{document}\n"
           f"{body}\n\\end{{document}}\n")
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "all.tex").write_text(doc, encoding="utf-8")
        r = subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error", "all.tex"], cwd=d,
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        log = r.stdout
    assert r.returncode == 0, "\n".join(line for line in log.splitlines() if line.startswith("!") or "l." in line)


# ====================================================================== the corpus (slow)
def _corpus_scope(g, q=None, atoms=None):
    extra = {n: sym(n, tuple(s)) for n, s in ((q.vars or {}) if q else {}).items()}
    extra.update(atom_names(atoms or {}))        # a `using` form's named derivatives
    return dataclasses.replace(g.scope(extra), loss=g.loss, indices=tuple((q.index or {}) if q else ()))


@pytest.mark.slow
@pytest.mark.parametrize("path", problem_params())
def test_corpus_ascii_reads_back_and_latex_compiles(path):
    sol = solved(path)
    g = sol.graph
    _, values = leaf_values(g, seed=13)
    rng = np.random.default_rng(14)
    for n in g.names:
        values[("grad", n)] = rng.normal(size=concrete(g.shape(n), g.dims))
        if values[("grad", n)].shape == ():
            values[("grad", n)] = float(values[("grad", n)])
    formulas = []
    sc = _corpus_scope(g)
    for name, gr in sol.gradients.items():
        for key, ref in (("expr", gr.named), ("chain_expr", gr.chain)):
            text = getattr(gr, key)
            back = parse_expression(text, sc, None)
            assert back.shape == ref.shape, (name, key, text)
            assert close(np.broadcast_to(evaluate(ref, values, g.dims), np.shape(evaluate(back, values, g.dims))),
                         evaluate(back, values, g.dims)), (name, key, text)
        formulas += [gr.latex, gr.chain_latex]
    questions = {q.id: q for q in sol.problem.questions}
    for qid, ans in sol.answers.items():
        q = questions[qid]
        sc = _corpus_scope(g, q, ans.atoms)
        for n, shape in (q.vars or {}).items():
            values[n] = rng.normal(size=concrete(tuple(shape), g.dims)) if shape else float(rng.normal())
        formulas.append(ans.latex)
        formulas += [ans.extra[k] for k in ("chain_latex", "index_latex") if k in ans.extra]
        if ans.kind == "identity":       # expr is the right-hand side; the JSON also has both sides
            lhs, rhs = parse_expression(ans.extra["lhs"], sc), parse_expression(ans.expr, sc)
            assert close(evaluate(lhs, values, g.dims), evaluate(parse_expression(q.lhs.value, sc), values, g.dims))
            assert close(evaluate(rhs, values, g.dims), evaluate(parse_expression(q.rhs.value, sc), values, g.dims))
            continue
        texts = [ans.expr] + ([ans.extra["index_expr"]] if "index_expr" in ans.extra else [])
        for text in texts:
            back = parse_expression(text, sc, None)
            assert to_ascii(back) == to_ascii(parse_expression(to_ascii(back), sc, None)), (qid, text)
        if ans.reference is not None and ans.kind != "limit":
            back = expand(parse_expression(ans.expr, sc, None), ans.atoms)
            assert close(np.broadcast_to(evaluate(ans.reference, values, g.dims),
                                         np.shape(evaluate(back, values, g.dims))),
                         evaluate(back, values, g.dims)), (qid, ans.expr)
        if "index_expr" in ans.extra and ans.reference is not None:
            _check_index_form(g, q, ans, sc, values)
    _compile(formulas)


def _check_index_form(g, q, ans, sc, values):
    """The index form, entry by entry, equals the matrix reference."""
    form = parse_expression(ans.extra["index_expr"], sc, None)
    ref = absorb(ans.reference, g.shape(q.wrt.value), ans.layout) if q.kind == "grad" else ans.reference
    matrix = np.asarray(evaluate(ref, values, g.dims), dtype=float)      # entries of the variable's shape
    for idx, entry in concrete_entries(form, q.index, g.dims, ref.shape):
        want = matrix[tuple(idx.values())]
        got = np.asarray(evaluate(entry, values, g.dims), dtype=float)
        assert close(np.broadcast_to(want, got.shape), got), (q.id, idx, ans.extra["index_expr"])
