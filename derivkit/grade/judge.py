"""Judging one answer: equivalence with the reference, and a diagnosis when it is wrong.

A :class:`Judge` is prepared once per problem (graph, derivation, the answers
``solve`` gives, a :class:`~derivkit.verify.Domain` whose points cover both
sides of every kink and every class/one-hot/binary/``values:`` value) and then
judges any number of answers with :meth:`Judge.judge`, returning a
:class:`Verdict`.  Nothing here bounds time: :mod:`derivkit.grade.runner` runs
judging where it can be stopped.

Correctness is decided by :func:`derivkit.verify.compare` against the ground
truth (the derivative itself, never derivkit's own rules).  When an answer is
wrong, candidate mistakes are generated from the backpropagation chain of the
question, not listed per problem (:mod:`derivkit.grade.mistakes`), and the
first one the answer equals names the diagnosis.

Layout is one step, :meth:`Reference.in_variable_shape`: references and answers are
written in the question's layout (``derivkit.layout``); before an answer is compared
with the ground truth (always in the variable's own shape) it is mapped back there.
Mutations for diagnoses are made and compared in the layout, so a transposed answer
is diagnosed ``transpose`` in either layout.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from derivkit.errors import UserError
from derivkit.expr import Expr, eye, ones
from derivkit.layout import DENOMINATOR, absorb
from derivkit.verify import TOLERANCE, Derivative, Domain, compare

from .names import answer_scope
from .position import AnswerError
from .reader import read_answer

VERDICTS = ("correct", "incorrect", "unparseable", "missing", "error")
POINTS = 4                   # sample points at least (more when a class target needs them)
COVER_TRIES = 30             # seeds tried for points that cover every kink side and target value


@dataclass
class Verdict:
    """The judgement of one answer (contract §4); ``detail`` carries the diagnosis's data."""

    question: str
    verdict: str
    score: float
    max_score: float
    diagnosis: str | None = None
    feedback: str = ""
    detail: dict = field(default_factory=dict)

    @property
    def correct(self) -> bool:
        return self.verdict == "correct"

    def to_json(self) -> dict:
        return {"question": self.question, "verdict": self.verdict, "score": _number(self.score),
                "max_score": _number(self.max_score), "diagnosis": self.diagnosis,
                "feedback": self.feedback}


def _number(x: float):
    return int(x) if float(x).is_integer() else round(float(x), 6)


# ====================================================================== one question's reference
@dataclass
class Reference:
    """What an answer to one question is compared with."""

    qid: str
    kind: str
    label: str                      # how feedback names the quantity: ∂l/∂W
    shape: tuple                    # the shape an answer must have (after the layout step)
    expr: Expr | None               # the reference as an expression (mutations start here)
    truths: list[tuple[dict, object]]   # (free index values, Derivative or Expr) pairs
    index: dict | None = None
    forbidden: dict[str, str] = field(default_factory=dict)   # name -> why it is not allowed
    wrt: str | None = None
    of: str | None = None
    infinite: int = 0               # a limit that is ±∞
    points: float = 1.0
    partial: dict = field(default_factory=dict)
    variants: list | None = None    # mutations, made on first need
    domain: Domain | None = None    # where to compare (an identity's adds its free variables)
    whole: "Reference | None" = None    # an index question's matrix form, for answers without indices
    given: Expr | None = None       # an identity's left-hand side: restating it is no answer
    layout: str = DENOMINATOR       # the layout the reference and answers are written in
    wrt_shape: tuple = ()           # the variable's own shape (the ground truth's)

    def in_variable_shape(self, e: Expr) -> Expr:
        """The layout step: an answer in the question's layout, in the ground truth's shape
        (numerator layout transposes a derivative of a scalar; see :mod:`derivkit.layout`)."""
        return absorb(e, self.wrt_shape, self.layout) if self.of_scalar else e

    @property
    def of_scalar(self) -> bool:
        return self.kind in ("grad", "jacobian") and self.wrt is not None and self.layout != DENOMINATOR \
            and self.of_shape == ()

    of_shape: tuple | None = None


# ====================================================================== the judge
class Judge:
    """Judges answers to the questions of one problem (prepared once)."""

    def __init__(self, problem_or_path, points: int = POINTS):
        from derivkit.derive import derive
        from derivkit.errors import UserErrors
        from derivkit.graph import build_graph
        from derivkit.problem import Problem, load_problem
        from derivkit.questions import validate_questions

        self.problem = problem_or_path if isinstance(problem_or_path, Problem) else load_problem(problem_or_path)
        self.g = build_graph(self.problem)
        mistakes = validate_questions(self.g)
        if mistakes:
            raise UserErrors(mistakes)
        self.d = derive(self.g)
        self.domain = covering_domain(self.g, points)
        self.questions = {q.id: q for q in self.problem.questions}
        #: solve's answer and the judge's reference per question, made on first use (check needs one)
        self.answers = _Lazy(self.questions, self._answer)
        self.refs = _Lazy(self.questions, lambda qid: self._reference(self.questions[qid]))
        self.scopes = _Lazy(self.questions, self._scope)
        self._context = None
        self._entry_cache: dict[Expr, list[Expr]] = {}

    def _answer(self, qid: str):
        """solve's answer to one question (a limit's ``of:`` question first)."""
        from derivkit.questions import KINDS, Context
        q = self.questions[qid]
        if self._context is None:
            self._context = Context(self.g, self.d, self.domain, {})
        if q.kind == "limit" and q.of is not None:
            self.answers[q.of.value.strip()]
        self._context.answers[qid] = KINDS[q.kind](self._context, q)
        return self._context.answers[qid]

    # ------------------------------------------------------------------ preparation
    def _scope(self, qid: str):
        """Names an answer to ``qid`` may use: the problem's, the question's indices, and the
        named derivatives of its vocabulary (``using:``), as atoms judged by their values."""
        from derivkit.vocabulary import atom_names
        atoms = self.answers[qid].atoms
        derivatives = {}
        for aid in atoms:
            q = self.questions[aid]
            of = self.g.loss if q.kind == "grad" else q.of.value.strip()
            derivatives[(of, q.wrt.value.strip())] = atom_names({aid: atoms[aid]})[aid]
        return answer_scope(self.g, self.questions[qid], atom_names(atoms), derivatives)

    def _reference(self, q) -> Reference:
        g, ans = self.g, self.answers[q.id]
        common = dict(points=q.points, partial=dict(q.partial), forbidden=self._forbidden(q))
        if q.kind in ("grad", "jacobian"):
            wrt = q.wrt.value.strip()
            of = g.loss if q.kind == "grad" else q.of.value.strip()
            common.update(layout=ans.layout, wrt_shape=g.shape(wrt), of_shape=g.shape(of))
            label = f"∂{of}/∂{wrt}"
            if q.index:
                form = read_answer(ans.extra["index_expr"], self.scopes[q.id])
                diagonal = q.kind == "jacobian"
                whole = None
                if ans.reference is not None:
                    whole = Reference(q.id, q.kind, label, ans.reference.shape, ans.reference,
                                      [({}, Derivative(of, wrt))], wrt=wrt, of=of, domain=self.domain, **common)
                return Reference(q.id, q.kind, f"∂{of}/∂{wrt} (entry {', '.join(q.index)})", form.shape, form,
                                 self._index_truths(q, of, wrt, diagonal), dict(q.index), wrt=wrt, of=of,
                                 domain=self.domain, whole=whole, **common)
            ref = ans.reference
            return Reference(q.id, q.kind, label, ref.shape, ref, [({}, Derivative(of, wrt))], wrt=wrt, of=of,
                             domain=self.domain, **common)
        if q.kind == "forward":
            of = q.of.value.strip()
            return Reference(q.id, q.kind, of, g.shape(of), ans.reference, [({}, g.ref(of))], of=of,
                             domain=self.domain, **common)
        if q.kind == "identity":
            rhs = ans.reference
            domain = self.domain.with_vars({n: tuple(s) for n, s in (q.vars or {}).items()})
            lhs = read_answer(ans.extra["lhs"], self.scopes[q.id])
            return Reference(q.id, q.kind, "the right-hand side", rhs.shape, rhs, [({}, rhs)], domain=domain,
                             given=lhs, **common)
        # limit
        value = ans.extra.get("value")
        if value in ("oo", "-oo"):
            return Reference(q.id, q.kind, "the limit", (), None, [], infinite=1 if value == "oo" else -1,
                             domain=self.domain, **common)
        ref = read_answer(ans.expr, self.scopes[q.id])
        return Reference(q.id, q.kind, "the limit", ref.shape, ref, [({}, ref)], domain=self.domain, **common)

    def _index_truths(self, q, of: str, wrt: str, diagonal: bool) -> list:
        from derivkit.indexform import concrete_entries
        form = read_answer(self.answers[q.id].extra["index_expr"], self.scopes[q.id])
        rank = len(self.g.shape(of)) + len(self.g.shape(wrt))
        out = []
        for values, _ in concrete_entries(form, q.index, self.domain.dims, self.g.shape(wrt)):
            pos = tuple(values.values())
            at = ((pos[0], pos[0]) if rank >= 2 else (pos[0],)) if diagonal else pos
            out.append((values, Derivative(of, wrt, at)))
        return out

    def _forbidden(self, q) -> dict[str, str]:
        """Names an answer may not use, from ``allow`` (forward questions: the leaves only)."""
        g, allow = self.g, q.allow or {}
        out: dict[str, str] = {}
        nodes_ok = allow.get("nodes", allow.get("intermediate", q.kind != "forward"))
        if not nodes_ok:
            for n in g.nodes:
                out[n] = "intermediate nodes are not allowed in this answer; write it in the inputs and parameters"
        if not allow.get("upstream", allow.get("gradients", True)):
            out["∂"] = "upstream gradients are not allowed in this answer; write them out"
        for name, ok in allow.items():
            if name in g.names and not ok:
                out[name] = f"'{name}' is not allowed in this answer"
        return out

    def prepare(self, qids=None) -> None:
        """Make every question's mutations and their values now (before workers fork, so they share them)."""
        from derivkit.verify import Undefined

        from .mistakes import variants
        for qid in qids or self.refs:
            for ref in (self.refs[qid], self.refs[qid].whole):
                if ref is None or ref.expr is None:
                    continue
                for v in variants(self, ref):
                    for e in (self._entries(v.expr, ref) if ref.index else [v.expr]):
                        for k in range(len(ref.domain.points)):
                            try:
                                ref.domain.value(e, k)
                            except (Undefined, ValueError, ArithmeticError):
                                break

    # ------------------------------------------------------------------ judging
    def judge(self, qid: str, text) -> Verdict:
        """The verdict on ``text`` as the answer to question ``qid`` (never raises for bad text)."""
        if qid not in self.refs:
            raise UserError(f"no question '{qid}' in this problem (questions: {', '.join(self.refs)})")
        ref = self.refs[qid]
        with ref.domain.scratch():
            return self._judge(ref, text)

    def _judge(self, ref: Reference, text) -> Verdict:
        qid = ref.qid
        if text is None or (isinstance(text, str) and not text.strip()):
            return Verdict(qid, "missing", 0, ref.points, None, "No answer was given.")
        if not isinstance(text, str):
            return Verdict(qid, "unparseable", 0, ref.points, None, "The answer must be text.")
        if ref.kind in ("limit", "identity"):
            text = _after_equals(text)
        if ref.kind == "limit" and _infinity(text):
            return self._judge_infinite(ref, _infinity(text))
        try:
            student = self._read(text, ref)
        except AnswerError as exc:
            return Verdict(qid, "unparseable", 0, ref.points, None,
                           f"{exc.message} (at character {exc.offset + 1}):\n{_pointer(exc.text, exc.offset)}",
                           {"position": exc.offset})
        except UserError as exc:
            return Verdict(qid, "unparseable", 0, ref.points, None, exc.message)
        if ref.infinite:
            return self._score(ref, "incorrect", None, "The limit is not a finite number here.", {})
        if ref.given is not None and student == ref.given:
            return self._score(ref, "incorrect", "restates_question",
                               "This restates the left-hand side; write it in the form the question asks for.", {})
        if ref.whole is not None and not any(n.op == "ivar" for n in student.walk()):
            ref = ref.whole                 # the matrix form of an index question is right too
        used = _forbidden_use(student, ref.forbidden)
        if used:
            name, why = used
            equal = self._equal(student, ref)
            return self._score(ref, "incorrect", "not_allowed",
                               f"{why} (the answer uses '{name}'{'; otherwise it is right' if equal else ''}).",
                               {"name": name, "equal": equal})
        if self._equal(student, ref):
            return Verdict(qid, "correct", ref.points, ref.points, None, "Correct.")
        from .mistakes import diagnose
        diagnosis, feedback, detail = diagnose(self, ref, student)
        return self._score(ref, "incorrect", diagnosis, feedback, detail)

    def _read(self, text: str, ref: Reference) -> Expr:
        """The answer as an expression; a bare ``I`` or ``\\mathbf{1}`` (no size in LaTeX) is read
        at each of the problem's sizes, and the reading with the reference's shape is kept."""
        from derivkit.vocabulary import expand
        try:
            return expand(read_answer(text, self.scopes[ref.qid]), self.answers[ref.qid].atoms)
        except AnswerError as first:
            if not _SIZELESS.search(text):
                raise
            rewritten = _SIZELESS_ONES.sub(f" {_ONES} ", text)
            for n in self.g.dims:
                extra = {_ONES: ones((n,))}
                if "I" not in self.g.names:
                    extra["I"] = eye(n)
                try:
                    e = read_answer(rewritten, answer_scope(self.g, self.questions[ref.qid], extra))
                except AnswerError:
                    continue
                if e.shape == ref.shape:
                    return e
            raise first

    def _score(self, ref: Reference, verdict: str, diagnosis: str | None, feedback: str, detail: dict) -> Verdict:
        credit = ref.partial.get(diagnosis, 0) if diagnosis else 0
        return Verdict(ref.qid, verdict, ref.points * credit, ref.points, diagnosis, feedback, detail)

    def _judge_infinite(self, ref: Reference, sign: int) -> Verdict:
        """An answer of ±∞ to a limit question."""
        if sign == ref.infinite:
            return Verdict(ref.qid, "correct", ref.points, ref.points, None, "Correct.")
        if ref.infinite:
            return self._score(ref, "incorrect", "sign", "The sign of the limit is wrong.", {})
        return self._score(ref, "incorrect", None, "The limit is a finite number here.", {})

    def _equal(self, student: Expr, ref: Reference) -> bool:
        """Equal to the ground truth, entry by entry for index notation, at every point."""
        if student.shape and student.shape != ref.shape:
            return False
        return self.distance(student, ref) <= TOLERANCE

    def _entries(self, e: Expr, ref: Reference, keep: bool = True) -> list[Expr]:
        """``e`` (with free indices) at every value of them; kept for reference-side expressions,
        so their values stay in the domain's memo."""
        from derivkit.indexform import concrete_entries
        if keep and e in self._entry_cache:
            return self._entry_cache[e]
        out = [c for _, c in concrete_entries(e, ref.index, self.domain.dims, self.g.shape(ref.wrt))]
        if keep:
            self._entry_cache[e] = out
        return out

    def distance(self, student: Expr, ref: Reference, against=None) -> float:
        """Largest relative difference from the truths (or from ``against``, an expression of the
        reference's form) over every point and free-index value."""
        if ref.index:
            worst = 0.0
            entries = self._entries(student, ref, keep=False)
            others = self._entries(against, ref) if against is not None else [t for _, t in ref.truths]
            for e, t in zip(entries, others):
                worst = max(worst, compare(e, t, ref.domain))
                if worst > TOLERANCE:
                    break
            return worst
        if against is not None:
            return compare(student, against, ref.domain)
        return compare(ref.in_variable_shape(student), ref.truths[0][1], ref.domain)


class _Lazy(Mapping):
    """A mapping over fixed keys whose values are computed on first access."""

    def __init__(self, keys, make):
        self._keys, self._make, self._values = list(keys), make, {}

    def __getitem__(self, key):
        if key not in self._values:
            if key not in self._keys:
                raise KeyError(key)
            self._values[key] = self._make(key)
        return self._values[key]

    def __iter__(self):
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def _pointer(text: str, offset: int, width: int = 40) -> str:
    """The answer around ``offset`` on one line (control characters shown as ?) and a caret under it."""
    start = max(0, offset - width)
    window = "".join(c if c.isprintable() else "?" for c in text[start:offset + width])
    return f"{'…' if start else ''}{window}{'…' if offset + width < len(text) else ''}\n" \
           f"{' ' * (offset - start + (1 if start else 0))}^"


def _after_equals(text: str) -> str:
    """``\\lim_{z→∞} f = 0`` and ``σ'(s) = σ(s)(1 − σ(s))``: what follows the last top-level '='."""
    depth, cut = 0, -1
    for i, ch in enumerate(text):
        if ch in "{([":
            depth += 1
        elif ch in "})]":
            depth -= 1
        elif ch == "=" and depth == 0 and text[i - 1:i] not in ("<", ">", "!") and text[i + 1:i + 2] != "=":
            cut = i
    return text[cut + 1:] if cut >= 0 and text[cut + 1:].strip() else text


#: LaTeX without a size: the identity matrix I and the ones vector \\mathbf{1} (not an indicator)
_SIZELESS = re.compile(r"(?<![\\A-Za-z])I(?![A-Za-z_])|\\(?:mathbf|boldsymbol|bm)\{1\}(?!\s*[_\[(])")
_SIZELESS_ONES = re.compile(r"\\(?:mathbf|boldsymbol|bm)\{1\}(?!\s*[_\[(])")
_ONES = "onesvector"

_INFINITY = re.compile(r"\s*([+-]?)\s*(\\infty|∞|oo|inf|infinity)\s*")


def _infinity(text: str) -> int:
    """+1 or -1 when ``text`` is ±∞ (``\\infty``, ``∞``, ``oo``, ``inf``), 0 otherwise."""
    m = _INFINITY.fullmatch(text)
    return 0 if m is None else (-1 if m.group(1) == "-" else 1)


def _forbidden_use(e: Expr, forbidden: dict[str, str]) -> tuple[str, str] | None:
    if not forbidden:
        return None
    for node in e.walk():
        if node.op == "sym" and node.attr in forbidden:
            return node.attr, forbidden[node.attr]
        if node.op == "grad" and "∂" in forbidden:
            loss, name = node.attr
            return f"∂{loss}/∂{name}", forbidden["∂"]
    return None


# ====================================================================== sample points
def covering_domain(g, points: int = POINTS) -> Domain:
    """A Domain whose points put every kink's argument on both sides of 0 and give every
    class index, one-hot position, binary and ``values:`` value at least once."""
    from derivkit.verify import proof_dims
    dims = proof_dims(g)
    n = max([points] + [_categories(g, name, dims) + 1 for name, spec in g.problem.symbols.items()
                        if spec.kind in ("class", "onehot")])
    first = None
    for seed in range(COVER_TRIES):
        d = Domain(g, points=n, seed=seed)
        if _covers(g, d):
            return d
        first = first or d
    return first


def _categories(g, name: str, dims: dict) -> int:
    """How many values a class index or one-hot target takes at ``dims``."""
    from derivkit.expr import concrete
    from derivkit.numeric import _class_count
    spec = g.problem.symbols[name]
    return _class_count(g, name, dims) if spec.kind == "class" else concrete(spec.shape, dims)[0]


def _covers(g, d: Domain) -> bool:
    import numpy as np
    from derivkit.ops import OPS
    ks = range(len(d.points))
    for name, spec in g.problem.symbols.items():
        vals = [np.asarray(d.points[k].floats[name]) for k in ks]
        if spec.kind in ("class", "onehot"):
            seen = {int(v) if spec.kind == "class" else int(np.argmax(v)) for v in vals}
            if len(seen) < min(len(vals), _categories(g, name, d.dims)):
                return False
        elif spec.kind == "binary" or spec.values:
            seen = set(np.concatenate([np.ravel(v) for v in vals]).tolist())
            if len(seen) < len(spec.values or (0, 1)):
                return False
    for e in g.nodes.values():
        for node in e.walk():
            if node.args and OPS[node.op].kink:
                try:
                    signs = [np.sign(np.asarray(d.value(node.args[0], k), dtype=float)) for k in ks]
                except Exception:       # an undefined argument: nothing to cover
                    continue
                arr = np.stack([np.ravel(s) for s in signs])
                if not ((arr > 0).any(axis=0).all() and (arr < 0).any(axis=0).all()):
                    return False
    return True


__all__ = ["Judge", "Verdict", "Reference", "VERDICTS", "covering_domain"]
