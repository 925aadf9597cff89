"""Helpers shared by the tests: the problem corpus, a cached solve pipeline, parsing and numeric
helpers.  Plain functions, imported as ``from helpers import ...`` (pytest puts tests/ on sys.path);
fixtures live in conftest.py, Hypothesis strategies in strategies.py.
"""
from __future__ import annotations

import contextlib
import functools
import re
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from derivkit.derive import derive
from derivkit.errors import Location
from derivkit.expr import Expr, concrete, sym
from derivkit.graph import build_graph
from derivkit.numeric import Program, forward_values, random_leaves
from derivkit.parse import Scope, parse_expression
from derivkit.problem import load_problem, parse_problem

#: tests that run a TeX engine; skipped where none is installed (CI installs one, and there a skip fails
#: the run: DERIVKIT_STRICT_TESTS), so `pip install '.[test]' && python -m pytest` works anywhere
TEX_TOOLS = ("latexmk", "pdflatex", "pdftoppm", "pdftotext")
needs_tex = pytest.mark.skipif(not all(shutil.which(t) for t in TEX_TOOLS),
                               reason="no TeX engine: apt-get install latexmk texlive-latex-extra "
                                      "texlive-pictures poppler-utils")

#: the smallest problem there is, up to its questions: for tests about one question (append them)
LINEAR_HEAD = """\
dims: {D: 2}
symbols:
  x: {shape: [D], role: input}
  w: {shape: [D], role: param}
loss:
  l: sum(w * x)
questions:
"""

HERE = Path(__file__).parent
ROOT = HERE.parent
SEED_PROBLEMS = sorted((ROOT / "problems").glob("*.yaml"))
OTHER_PROBLEMS = sorted((HERE / "problems").glob("*.yaml"))
ALL_PROBLEMS = SEED_PROBLEMS + OTHER_PROBLEMS
BAD_PROBLEMS = sorted((HERE / "bad_problems").glob("*.yaml"))

#: a `file:line:col: message` line
LOCATED = re.compile(r"^[^:\n]+:\d+:\d+: \S")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def problem_params(paths=None):
    """``pytest.param`` per problem file, with a readable id."""
    return [pytest.param(p, id=rel(p)) for p in (ALL_PROBLEMS if paths is None else paths)]


# ---------------------------------------------------------------- cached pipeline
@functools.lru_cache(maxsize=None)
def loaded(path) -> tuple:
    """(problem, graph, derivation) for a problem file, cached."""
    problem = load_problem(path)
    g = build_graph(problem)
    return problem, g, derive(g)


@functools.lru_cache(maxsize=None)
def solved(path):
    """``solve(path, train=False)``, cached for the session."""
    from derivkit.solve import solve
    return solve(path, train=False)


@functools.lru_cache(maxsize=None)
def verifier(path, method=None):
    from derivkit.verify import Verifier
    _, g, _ = loaded(path)
    return Verifier(g, method=method)


def graph_from_text(text: str, filename: str = "gen.yaml"):
    g = build_graph(parse_problem(text, filename))
    return g, derive(g)


# ---------------------------------------------------------------- parsing helpers
WHERE = Location("f.yaml", 7, 5)


def make_scope(shapes: dict[str, tuple], dims: dict[str, int]) -> Scope:
    """A scope of plain symbols (name -> shape) and dims names."""
    names = {n: sym(n, tuple(s)) for n, s in shapes.items()}
    dim_exprs = {d: Expr("dim", (), d, ()) for d in dims}

    def lookup(name):
        return names.get(name) or dim_exprs.get(name)
    return Scope(lookup, lambda: list(names) + list(dims), dict(dims))


DIMS = {"D": 3, "H": 4, "C": 3}
SHAPES = {"x": ("D",), "v": ("H",), "u": ("D",), "W": ("H", "D"), "M": ("D", "D"),
          "s": (), "r": (), "t": (), "y": ("C",), "p": ("C",)}


def parse(text: str, scope: Scope | None = None, where: Location | None = WHERE) -> Expr:
    return parse_expression(text, scope or make_scope(SHAPES, DIMS), where)


# ---------------------------------------------------------------- numeric helpers
def evaluate(e: Expr, values: dict, dims: dict, batched=frozenset()) -> np.ndarray:
    return Program({"out": e}, dims).run(values, set(batched))["out"]


def random_values(shapes: dict[str, tuple], dims: dict, rng, positive=False) -> dict:
    out = {}
    for n, s in shapes.items():
        shape = concrete(s, dims)
        out[n] = rng.uniform(0.2, 1.5, size=shape) if positive else rng.normal(size=shape)
        if shape == ():
            out[n] = np.float64(out[n])
    return out


def close(a, b, rtol=1e-9, atol=1e-12) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    return bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))


def leaf_values(g, seed=0):
    """Random leaves and every node's value there."""
    rng = np.random.default_rng(seed)
    leaves = random_leaves(g, rng)
    return leaves, {**leaves, **forward_values(g, leaves)}


def locate(text: str, needle: str, occurrence: int = 0) -> tuple[int, int]:
    """1-based (line, column) of the ``occurrence``-th ``needle`` in ``text``."""
    pos = -1
    for _ in range(occurrence + 1):
        pos = text.index(needle, pos + 1)
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


# ---------------------------------------------------------------- random expressions
#: leaves of generated expressions, by shape (a subset of SHAPES)


def all_finite(e: Expr, values, dims=None) -> bool:
    """Every sub-expression of ``e`` is finite at ``values``."""
    nodes = list(e.walk())
    with np.errstate(all="ignore"):
        out = Program({i: n for i, n in enumerate(nodes)}, dims or DIMS).run(values)
    return all(np.all(np.isfinite(np.asarray(v, dtype=float))) for v in out.values())


@contextlib.contextmanager
def no_hang(seconds: float = 10.0):
    """Fail the test if the block runs longer than ``seconds`` (a guard against hangs and
    super-linear blow-ups, set ten times above the expected cost so load cannot trip it;
    speed itself is measured in benchmarks/, not in tests)."""
    def expired(signum, frame):
        raise AssertionError(f"did not finish within {seconds} s")
    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
