"""``solve``: derive, verify, answer every question, check numerically, train.

This is the Python API behind ``derivkit solve``; the CLI only formats what
:func:`solve` returns.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from .derive import Derivation, derive
from .errors import UserError, UserErrors
from .expr import Expr
from .gradcheck import gradcheck
from .graph import Graph, build_graph
from .printing import to_ascii, to_latex
from .problem import Problem, load_problem
from .layout import DENOMINATOR, present, shape_in
from .questions import Answer, answer_all, chain_in_layout
from .verify import TOLERANCE, Verifier

if TYPE_CHECKING:
    from .gradcheck import GradcheckResult
    from .training import TrainResult


@dataclass
class Gradient:
    """∂loss/∂``name``: the readable forms as expressions, and how well they were proved.

    ``full`` is written over named nodes and leaves (what was proved), ``named`` is
    ``full`` as printed (a large upstream gradient that would print twice stays
    ∂l/∂m), ``chain`` is in terms of the upstream gradients (∂l/∂W = ∂l/∂z xᵀ).
    ``full`` has the variable's shape; ``named`` and ``chain`` are in the problem's
    ``layout`` (in numerator layout ∂l/∂W = x ∂l/∂z, see :mod:`derivkit.layout`).
    The printed forms (``expr``, ``latex`` of ``named``; ``chain_expr``,
    ``chain_latex``) are made on demand.
    """

    name: str
    full: Expr
    named: Expr
    chain: Expr
    role: str                       # input | target | param | node | loss
    error: float                    # max relative error against the ground truth
    latex_names: dict[str, str] = field(default_factory=dict, repr=False)
    layout: str = DENOMINATOR

    @property
    def shape(self) -> tuple:
        """The variable's shape (that of ``full``)."""
        return self.full.shape

    @property
    def verified(self) -> bool:
        return self.error <= TOLERANCE

    @cached_property
    def expr(self) -> str:
        return to_ascii(self.named)

    @cached_property
    def latex(self) -> str:
        return to_latex(self.named, self.latex_names)

    @cached_property
    def chain_expr(self) -> str:
        return to_ascii(self.chain)

    @cached_property
    def chain_latex(self) -> str:
        return to_latex(self.chain, self.latex_names)

    def to_json(self) -> dict:
        return {"latex": self.latex, "expr": self.expr, "chain_latex": self.chain_latex,
                "chain_expr": self.chain_expr, "shape": list(shape_in(self.shape, self.layout)),
                "role": self.role,
                "verified": self.verified, "max_rel_error": self.error}


@dataclass
class Solution:
    problem: Problem
    graph: Graph
    derivation: Derivation
    gradients: dict[str, Gradient]
    answers: dict[str, Answer]
    gradcheck: GradcheckResult | None = None
    train: TrainResult | None = None
    timings: dict[str, float] = field(default_factory=dict)
    ground_truth: str = "diff"     # "diff": sympy.diff of the expanded loss; "chain": scalar chain rule

    @property
    def verified(self) -> bool:
        return all(gr.verified for gr in self.gradients.values()) and \
            all(a.verified for a in self.answers.values())

    @property
    def ok(self) -> bool:
        """False when a verification, the gradient check or a training expectation failed (exit 1)."""
        if not self.verified:
            return False
        if self.gradcheck is not None and not self.gradcheck.passed:
            return False
        if self.train is not None and not self.train.passed:
            return False
        return True

    def to_json(self) -> dict:
        p = self.problem
        out = {
            "id": p.id, "title": p.title, "dims": p.dims, "layout": p.layout,
            "gradients": {name: gr.to_json() for name, gr in self.gradients.items()},
            "questions": {qid: a.to_json() for qid, a in self.answers.items()},
            "gradcheck": None if self.gradcheck is None else self.gradcheck.to_json(),
            "verified": self.verified,
            "ground_truth": self.ground_truth,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }
        if self.train is not None:
            out["train"] = self.train.to_json()
        return out


def load(path: str | Path) -> tuple[Problem, Graph]:
    problem = load_problem(path)
    return problem, build_graph(problem)


def solve(path_or_problem, *, train: bool = True, points: int = 3, progress=None) -> Solution:
    """Everything ``derivkit solve`` reports, as data."""
    t0 = time.perf_counter()
    problem = path_or_problem if isinstance(path_or_problem, Problem) else load_problem(path_or_problem)
    g = build_graph(problem)
    d = derive(g)
    timings = {"derive": time.perf_counter() - t0}
    t1 = time.perf_counter()
    v = Verifier(g, points=points)
    gradients = {}
    for name in g.names:
        if g.kind(name) == "class":
            continue                     # an integer class index has no derivative
        lay, shape = problem.layout, g.shape(name)
        gradients[name] = Gradient(name, d.full[name], present(d.named[name], shape, lay),
                                   chain_in_layout(g, d, name, lay), g.role(name),
                                   v.error(d.full[name], g.loss, name), problem.latex, lay)
    errors: list[UserError] = []
    answers = answer_all(g, d, v, errors)
    if errors:
        raise UserErrors(errors)
    timings["verify"] = time.perf_counter() - t1
    sol = Solution(problem, g, d, gradients, answers, timings=timings, ground_truth=v.method)
    t2 = time.perf_counter()
    sol.gradcheck = gradcheck(g, d)
    timings["gradcheck"] = time.perf_counter() - t2
    if train and problem.check:
        from .training import run_check
        t3 = time.perf_counter()
        sol.train = run_check(g, d, base_dir=Path(problem.path).parent, progress=progress)
        timings["train"] = time.perf_counter() - t3
    return sol

