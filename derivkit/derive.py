"""Symbolic backpropagation over the graph, one registry rule per operation.

For every node and leaf ``n`` the reverse pass gives

* ``chain[n]`` — the one-step chain rule, in terms of the upstream gradients
  of the nodes that use ``n`` (∂l/∂W = ∂l/∂z xᵀ);
* ``full[n]`` — the same with every upstream gradient substituted and the
  light algebra applied, written over named nodes and leaves
  (∂l/∂W = ((Vᵀ(y − t)) ⊙ h ⊙ (1 − h)) xᵀ); what numeric code and proofs use;
* ``named[n]`` — the full form as printed: like ``full[n]``, except that an upstream
  gradient ∂l/∂m too large to repeat (more than ``REPEAT_LIMIT`` printed nodes) stays
  the atom ∂l/∂m wherever writing it out would print it twice.  Printed full forms
  then grow linearly with depth instead of exponentially (∂l/∂y0 through stacked
  softmaxes repeats ∂l/∂y1 twice, which repeats ∂l/∂y2 twice, …); ∂l/∂m is itself a
  verified gradient, so the named form is proved by proving ``full``;
* ``steps[n]`` — which rule each contribution came through, for the sheets;
* ``log[n]`` — the derivation of ∂l/∂n as :class:`Record` s (rule, before, after, what
  was substituted), recorded while deriving: the material of the solution sheets.

Jacobians between any two nodes come from the local Jacobians of the
registry composed forwards.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import UserError
from .expr import ONE, Expr, eye, grad, substitute, sym
from .graph import Graph
from .ops import OPS, mm, op_jac, op_vjp, spread
from .rewrite import knowledge, readable
from .simplify import simplify


@dataclass
class Step:
    """One contribution to ∂loss/∂wrt: through which node, by which rules."""

    wrt: str
    via: str
    rules: list[str]
    expr: Expr


@dataclass
class Record:
    """One step of a derivation as a sheet shows it: ``before`` = ``after`` by ``rule``.

    ``rule`` is one of ``"chain rule"`` (``before`` is the atom ∂l/∂n, ``after`` the sum
    of the contributions of the nodes using n, see ``Derivation.steps``),
    ``"substitute"`` (``substituted`` maps each upstream gradient ∂l/∂m to the form put
    in for it) and ``"simplify"`` (the light algebra of :mod:`derivkit.simplify`).
    """

    rule: str
    before: Expr
    after: Expr
    substituted: dict[Expr, Expr] = field(default_factory=dict)


#: an upstream gradient of more printed nodes than this (about a line of text) is named, not
#: written out, where it would print twice
REPEAT_LIMIT = 40


@dataclass
class Derivation:
    graph: Graph
    root: str = ""
    chain: dict[str, Expr] = field(default_factory=dict)
    full: dict[str, Expr] = field(default_factory=dict)
    named: dict[str, Expr] = field(default_factory=dict)
    steps: dict[str, list[Step]] = field(default_factory=dict)
    log: dict[str, list[Record]] = field(default_factory=dict)

    def upstream(self, name: str) -> Expr:
        return grad(name, self.graph.shape(name), self.root or self.graph.loss)


def derive(g: Graph, root: str | None = None, seed: Expr = ONE, readable_forms: bool = True) -> Derivation:
    """Reverse pass: every node's and leaf's gradient of the loss.

    The full and printed forms go through :func:`derivkit.rewrite.readable` unless
    ``readable_forms`` is false (the light algebra alone, to compare against).

    With ``root``/``seed``, the gradient of ``seed · root`` instead (seed e_j gives
    the derivatives of the single entry root_j, for index-notation Jacobians).
    """
    root = root or g.loss
    d = Derivation(g, root=root)
    contributions: dict[str, list[Expr]] = {n: [] for n in g.names}
    steps: dict[str, list[Step]] = {n: [] for n in g.names}
    upto = list(g.nodes)[: list(g.nodes).index(root) + 1] if root in g.nodes else []
    for name in reversed(upto):
        G = seed if name == root else d.upstream(name)
        for target, contrib, rules in _backprop(g.nodes[name], G, sym(name, g.shape(name))):
            contributions[target].append(contrib)
            steps[target].append(Step(target, name, rules, contrib))
    for name in g.names:
        parts = contributions[name]
        if name == root:
            total = seed
        elif not parts:
            total = _zero()
        else:
            total = parts[0]
            for p in parts[1:]:
                total = total + p
        d.chain[name] = _fit(simplify(total, g.facts), g.shape(name))
        d.steps[name] = steps[name]
        d.log[name] = _log_chain(d.upstream(name), total, d.chain[name]) if parts else []
    # Substitute upstream gradients, from the loss down (reverse definition order).
    order = [root] + [n for n in reversed(list(g.nodes)) if n != root] + [n for n in g.leaves if n != root]
    mapping: dict[Expr, Expr] = {}
    named: dict[Expr, Expr] = {}
    sizes: dict[Expr, int] = {}
    k = knowledge(g)
    tidy = (lambda e: readable(e, k)) if readable_forms else (lambda e: e)
    for name in order:
        d.full[name] = _fit(tidy(simplify(substitute(d.chain[name], mapping), g.facts)), g.shape(name))
        d.named[name] = _fit(tidy(_name_repeats(d.chain[name], named, sizes, g)), g.shape(name))
        d.log[name] += _log_substitution(d.chain[name], d.named[name], named)
        mapping[d.upstream(name)] = d.full[name]
        named[d.upstream(name)] = d.named[name]
    return d


def _log_chain(atom: Expr, total: Expr, chain: Expr) -> list[Record]:
    """∂l/∂n = Σ contributions (chain rule), then the light algebra if it changed anything."""
    out = [Record("chain rule", atom, total)]
    if chain != total:
        out.append(Record("simplify", total, chain))
    return out


def _log_substitution(chain: Expr, result: Expr, named: dict[Expr, Expr]) -> list[Record]:
    """The upstream gradients written out (those the printed form does not keep as atoms)."""
    kept = set(result.walk())
    subs = {a: named[a] for a in chain.walk() if a in named and a not in kept}
    if not subs:
        return []
    raw = substitute(chain, subs)
    out = [Record("substitute", chain, raw, subs)]
    if raw != result:
        out.append(Record("simplify", raw, result))
    return out


def _name_repeats(chain: Expr, named: dict[Expr, Expr], sizes: dict[Expr, int], g: Graph) -> Expr:
    """``chain`` with upstream gradients written out, except large ones that would print twice."""
    atoms = [n for n in chain.walk() if n in named]
    keep = {a: named[a] for a in atoms if _printed_size(named[a], sizes) <= REPEAT_LIMIT}
    repeats = _repeated(substitute(chain, keep), sizes)
    for a in atoms:
        if a in keep:
            continue
        trial = _repeated(substitute(chain, {**keep, a: named[a]}), sizes)
        if trial <= repeats:
            keep[a] = named[a]
            repeats = trial
    return simplify(substitute(chain, keep), g.facts)


def _printed_size(e: Expr, sizes: dict[Expr, int]) -> int:
    """Nodes of ``e`` as printed (shared sub-expressions counted each time they appear)."""
    if e not in sizes:
        for n in e.walk():
            if n not in sizes:
                sizes[n] = 1 + sum(sizes[a] for a in n.args)
    return sizes[e]


def _repeated(e: Expr, sizes: dict[Expr, int]) -> int:
    """Printed nodes a reader sees again: every repeat of a sub-expression above REPEAT_LIMIT."""
    _printed_size(e, sizes)
    seen: set[Expr] = set()
    total = 0
    stack = [e]
    while stack:
        n = stack.pop()
        if sizes[n] > REPEAT_LIMIT:
            if n in seen:
                total += sizes[n]
                continue
            seen.add(n)
        stack.extend(n.args)
    return total


def _zero() -> Expr:
    from .expr import ZERO
    return ZERO


def _fit(e: Expr, shape) -> Expr:
    """A gradient always has the shape of its variable (0 becomes a zero vector)."""
    return e if e.shape == shape else spread(e, shape)


def _backprop(root: Expr, G: Expr, out: Expr):
    """Yield (leaf-or-node name, contribution, rules) for one node's expression."""
    stack = [(root, G, out, [])]
    while stack:
        e, g, o, rules = stack.pop()
        if e.op == "sym":
            yield e.attr, g, rules
            continue
        spec = OPS[e.op]
        if not e.args or not spec.differentiable:
            continue
        grads = op_vjp(e, g, o)
        for arg, ga in zip(e.args, grads):
            if ga is None or not _depends(arg):
                continue
            stack.append((arg, ga, arg, rules + [spec.rule]))


def _depends(e: Expr) -> bool:
    return any(n.op == "sym" for n in e.walk())


# ---------------------------------------------------------------- Jacobians
def jacobian(g: Graph, d: Derivation | None, of: str, wrt: str) -> Expr:
    """∂of/∂wrt as a matrix (numerator layout) over named nodes and leaves."""
    for name in (of, wrt):
        if len(g.shape(name)) > 1:
            raise UserError(f"the Jacobian of or with respect to the matrix '{name}' is a tensor; "
                            f"ask for a grad, or use index:")
    if of == g.loss and d is not None and len(g.shape(wrt)) <= 1:
        full = d.full[wrt]
        return full.T if full.shape else full
    n = g.shape(wrt)
    seed = eye(n[0]) if n else ONE
    J: dict[str, Expr] = {wrt: seed}
    started = wrt in g.leaves
    for name, e in g.nodes.items():
        if name == wrt:
            started = True
            continue
        if not started and wrt not in g.leaves:
            continue
        Jn = _forward_jac(simplify(e, g.facts), sym(name, g.shape(name)), J, g)
        if Jn is not None:
            J[name] = simplify(Jn, g.facts)
        if name == of:
            break
    if of not in J:
        shape_of = g.shape(of)
        zero_shape = (shape_of[0], n[0]) if shape_of and n else (shape_of or n)
        return spread(_zero(), zero_shape) if zero_shape else _zero()
    return J[of]


def _forward_jac(e: Expr, out: Expr, J: dict[str, Expr], g: Graph):
    memo: dict[Expr, Expr | None] = {}

    def visit(x: Expr, o: Expr):
        if x in memo:
            return memo[x]
        if x.op == "sym":
            res = J.get(x.attr)
        elif not x.args or not OPS[x.op].differentiable:
            res = None
        else:
            arg_j = [visit(a, a) for a in x.args]
            if all(j is None for j in arg_j):
                res = None
            else:
                locs = op_jac(x, o)
                res = None
                for a, ja, la in zip(x.args, arg_j, locs):
                    if ja is None:
                        continue
                    if la is None:
                        raise UserError(f"no matrix Jacobian through {x.op}() with respect to a "
                                        f"{'matrix' if len(a.shape) > 1 else 'value'} of shape {list(a.shape)}")
                    term = mm(la, ja)
                    res = term if res is None else res + term
        memo[x] = res
        return res

    return visit(e, out)


def local_jacobian(g: Graph, node: str, wrt: str) -> Expr | None:
    """∂node/∂wrt through ``node``'s own expression only (other names held fixed): [len node, len wrt].

    None when ``node``'s expression does not use ``wrt``; a UserError where no matrix
    Jacobian exists (a matrix on either side).
    """
    n = g.shape(wrt)
    seed = eye(n[0]) if n else ONE
    jac = _forward_jac(simplify(g.nodes[node], g.facts), sym(node, g.shape(node)), {wrt: seed}, g)
    return None if jac is None else simplify(jac, g.facts)
