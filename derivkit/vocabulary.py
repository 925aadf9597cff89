"""Answers in a course's vocabulary: ``using: [names]`` on a grad or jacobian question.

A course may ask for ∂ℓ/∂W(1) "in terms of x, y, W, b, ∂ℓ/∂ŷ, ∂z₂/∂z₁, ∂ŷ/∂z₃ only";
in numerator layout the answer is the product of Jacobians
x ∂ℓ/∂ŷ ∂ŷ/∂z₃ W(2) ∂z₂/∂z₁.  The names are leaves, nodes, and *named local
derivatives*: ids of other grad/jacobian questions.

A named local derivative is an **atom**: ``sym(question_id, shape)``, the shape of that
question's answer in this question's layout.  It prints in ASCII as the question id
(``dz2_dz1``) and in LaTeX as the derivative (``\\frac{\\partial z_2}{\\partial z_1}``,
:func:`atom_latex`); its value is that question's reference (:class:`Vocabulary`
``.atoms``), substituted before anything is evaluated or compared (:func:`expand`).

How the form is built (:func:`write_using`): the reverse pass in numerator layout,
node by node from ``wrt`` up, ∂ℓ/∂n = Σ over the nodes c that use n of
∂ℓ/∂c · ∂c/∂n, where ∂ℓ/∂c is an atom if one is named, and ∂c/∂n is an atom if one is
named, else c's local Jacobian (W for c = W n + b).  Where a matrix is involved (∂ℓ/∂W
through z = W x + b) the one-step chain rule of the derivation is used, transposed
(x ∂ℓ/∂z).  Nodes not in the vocabulary are then written out in terms of the others
(z₂ → (W(1) x + b(1))⁺); a leaf or node the form still needs but the list lacks is a
located UserError.  In denominator layout the form is the transpose of that product.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .derive import Derivation, jacobian, local_jacobian
from .errors import UserError
from .expr import ONE, Expr, make, substitute, sym, symbols_in
from .graph import Graph
from .layout import NUMERATOR, present, transpose
from .printing import latex_name
from .problem import QuestionSpec
from .simplify import simplify


@dataclass
class Vocabulary:
    """The names one question's answer may use, and the atoms' values (in the question's layout)."""

    names: set[str]                                      # leaves and nodes
    grads: dict[str, str] = field(default_factory=dict)  # node -> id of a grad question (∂ℓ/∂node)
    jacs: dict[tuple[str, str], str] = field(default_factory=dict)   # (of, wrt) -> question id
    atoms: dict[str, Expr] = field(default_factory=dict)  # question id -> its reference (layout)
    latex: dict[str, str] = field(default_factory=dict)   # question id -> \frac{\partial ..}{\partial ..}

    def atom(self, qid: str) -> Expr:
        return sym(qid, self.atoms[qid].shape)


def atom_latex(g: Graph, of: str, wrt: str) -> str:
    """The LaTeX a named local derivative prints as: \\frac{\\partial of}{\\partial wrt}."""
    names = g.problem.latex
    return rf"\frac{{\partial {names.get(of) or latex_name(of)}}}{{\partial {names.get(wrt) or latex_name(wrt)}}}"


def atom_names(atoms: dict[str, Expr]) -> dict[str, Expr]:
    """The atoms as names for a parser's scope (``g.scope(atom_names(answer.atoms))``)."""
    return {qid: sym(qid, v.shape) for qid, v in atoms.items()}


def expand(e: Expr, atoms: dict[str, Expr]) -> Expr:
    """``e`` with every named-derivative atom replaced by its value (what is evaluated and proved)."""
    return substitute(e, {sym(qid, v.shape): v for qid, v in atoms.items()})


def vocabulary(g: Graph, d: Derivation, q: QuestionSpec, layout: str) -> Vocabulary:
    """Read ``q.using`` (already validated: every entry is a leaf, node or grad/jacobian question)."""
    questions = {p.id: p for p in g.problem.questions}
    v = Vocabulary(set())
    for text in q.using:
        name = text.value
        if name in g.leaves or name in g.nodes:
            v.names.add(name)
            continue
        p = questions[name]
        wrt = p.wrt.value.strip()
        if p.kind == "grad":
            v.grads[wrt] = name
            v.atoms[name] = present(d.full[wrt], g.shape(wrt), layout)
            v.latex[name] = atom_latex(g, g.loss, wrt)
        else:
            of = p.of.value.strip()
            v.jacs[(of, wrt)] = name
            v.atoms[name] = jacobian(g, d, of, wrt)
            v.latex[name] = atom_latex(g, of, wrt)
    return v


def _times(a: Expr, b: Expr) -> Expr:
    """a · b as matrices, a scalar factor as a product (1 dropped)."""
    if a == ONE:
        return b
    if b == ONE:
        return a
    if a.shape == () or b.shape == ():
        return make("mul", a, b)
    return make("matmul", a, b)


def write_using(g: Graph, d: Derivation, q: QuestionSpec, v: Vocabulary, layout: str) -> Expr:
    """The reference of a grad (∂loss/∂wrt) or jacobian (∂of/∂wrt) question in ``v``'s names."""
    wrt = q.wrt.value.strip()
    root = q.of.value.strip() if q.kind == "jacobian" else g.loss
    where = q.using[0].where
    order = list(g.nodes)
    upto = order[: order.index(root) + 1] if root in g.nodes else []
    memo: dict[str, Expr | None] = {}

    def numerator(n: str) -> Expr | None:
        """∂root/∂n in numerator layout over the vocabulary (None: root does not depend on n)."""
        if n in memo:
            return memo[n]
        memo[n] = None                      # a cycle cannot happen; this guards the recursion
        if n == root:
            res = ONE if not g.shape(root) else _identity(g, root)
        elif root == g.loss and n in v.grads and n != wrt:
            atom = v.atom(v.grads[n])
            res = atom if layout == NUMERATOR else transpose(atom)
        elif (root, n) in v.jacs and n != wrt:
            res = v.atom(v.jacs[(root, n)])
        else:
            res = None
            for c in upto:
                if c == n or n not in symbols_in(g.nodes[c]):
                    continue
                up = numerator(c)
                if up is None:
                    continue
                term = _through(g, d, c, n, up, v, root, where)
                res = term if res is None else make("add", res, term)
        memo[n] = res
        return res

    form = numerator(wrt)
    if form is None:
        raise UserError(f"question '{q.id}': '{root}' does not depend on '{wrt}'", where)
    if q.kind == "grad" and layout != NUMERATOR:
        form = transpose(form)
    return _written_out(g, form, v, q, where)


def _identity(g: Graph, name: str) -> Expr:
    from .expr import eye
    shape = g.shape(name)
    if len(shape) != 1:
        raise UserError(f"a Jacobian of the matrix '{name}' is a tensor")
    return eye(shape[0])


def _through(g: Graph, d: Derivation, c: str, n: str, up: Expr, v: Vocabulary, root: str, where) -> Expr:
    """The contribution ∂root/∂c · ∂c/∂n, in numerator layout."""
    if (c, n) in v.jacs:
        return _times(up, v.atom(v.jacs[(c, n)]))
    vectors = len(g.shape(c)) == 1 and len(g.shape(n)) <= 1
    if vectors:
        try:
            local = local_jacobian(g, c, n)
        except UserError:
            local = None
        if local is not None:
            return _times(up, local)
    if root != g.loss:
        raise UserError(f"cannot write ∂{root}/∂{n} as a product of Jacobians: '{c}' or '{n}' is a "
                        f"matrix (ask for a grad of the loss instead)", where)
    # one step of the derivation (denominator layout, in ∂l/∂c), transposed, ∂l/∂c substituted
    steps = [s.expr for s in d.steps[n] if s.via == c]
    upstream = d.upstream(c)
    total = steps[0]
    for s in steps[1:]:
        total = make("add", total, s)
    return transpose(substitute(total, {upstream: transpose(up) if up.shape else up}))


def _written_out(g: Graph, form: Expr, v: Vocabulary, q: QuestionSpec, where) -> Expr:
    """Nodes outside the vocabulary written in terms of the others; a missing name is an error."""
    mapping: dict[Expr, Expr] = {}
    for name, e in g.nodes.items():
        if name not in v.names:
            mapping[sym(name, e.shape)] = substitute(e, mapping)
    out = left_products(simplify(substitute(form, mapping), g.facts))
    missing = sorted(n for n in symbols_in(out) if n not in v.names and n not in v.atoms)
    if missing:
        raise UserError(f"question '{q.id}': its answer cannot be written using only "
                        f"[{', '.join(t.value for t in q.using)}]: it needs "
                        + ", ".join(f"'{m}'" for m in missing), where)
    return out


def left_products(e: Expr) -> Expr:
    """Every chain of matrix products regrouped from the left, so it prints without
    parentheses: x (a b c) becomes x a b c (the product is associative: the value is unchanged)."""
    memo: dict[Expr, Expr] = {}
    for node in e.walk():
        args = tuple(memo[a] for a in node.args)
        if node.op == "matmul":
            factors = [f for a in args for f in (_factors(a))]
            out = factors[0]
            for f in factors[1:]:
                out = make("matmul", out, f)
            memo[node] = out
        else:
            memo[node] = node if args == node.args else make(node.op, *args, attr=node.attr)
    return memo[e]


def _factors(e: Expr) -> list[Expr]:
    if e.op != "matmul":
        return [e]
    return _factors(e.args[0]) + _factors(e.args[1])
