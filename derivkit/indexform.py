"""Index notation for one entry (or one row) of a matrix-form expression.

∂ℓ/∂u = e_t − p becomes ∂ℓ/∂u_j = δ_jt − p_j, and ∂ℓ/∂W = (e_t − p) xᵀ with
``index: {j: row}`` becomes ∂ℓ/∂w_j = (δ_jt − p_j) x: indexing is pushed
through each operation down to the names.
"""
from __future__ import annotations

from .errors import UserError
from .expr import Expr, make, num, substitute
from .graph import Graph

_ELEMENTWISE_SKIP = {"sym", "num", "grad", "dim"}


def ivar(name: str) -> Expr:
    """A free or summed index name: a scalar integer."""
    return Expr("ivar", (), name, ())


def isum(body: Expr, k: str, size) -> Expr:
    """Σ_k body for k = 0 … size − 1; ``size`` is a dims name or an integer."""
    n = Expr("dim", (), size, ()) if isinstance(size, str) else num(size)
    return make("isum", body, n, attr=k)


def index_form(e: Expr, index: dict[str, str], g: Graph) -> Expr:
    """The entry (row/column) of ``e`` named by ``index`` ({name: row|col})."""
    rows = [n for n, axis in index.items() if axis == "row"]
    cols = [n for n, axis in index.items() if axis == "col"]
    if len(e.shape) == 0:
        return e
    if len(e.shape) == 1 or (len(e.shape) == 2 and e.shape[0] == 1):
        names = rows or cols
        if not names:
            raise UserError("index: needs a 'row' entry for a vector")
        return entry(e, (ivar(names[0]),) if len(e.shape) == 1 else (None, ivar(names[0])))
    return entry(e, (ivar(rows[0]) if rows else None, ivar(cols[0]) if cols else None))


def entry(e: Expr, idx: tuple) -> Expr:
    """``e`` at ``idx`` (one index per axis; None keeps that axis)."""
    if all(i is None for i in idx) or e.shape == ():
        return e
    op = e.op
    if op == "sym":
        return make("index", e, *[i for i in idx if i is not None]) if None not in idx else _keep(e, idx)
    if op == "ones":
        return num(1)
    if op == "eye":
        return make("delta", *idx) if None not in idx else _keep(e, idx)
    if op == "onehot":
        return make("delta", idx[0], e.args[0])
    if op == "T":
        (a,) = e.args
        if len(a.shape) == 1:
            return entry(a, (idx[1],))
        return entry(a, (idx[1], idx[0]) if len(idx) == 2 else idx)
    if op == "diag":
        if None in idx:
            return _keep(e, idx)
        return make("mul", make("delta", *idx), entry(e.args[0], (idx[0],)))
    if op == "matmul":
        return _matmul_entry(e, idx)
    from .ops import OPS
    if OPS[op].elementwise:
        args = [a if a.shape == () else entry(a, idx) for a in e.args]
        return make(op, *args, attr=e.attr)
    return _keep(e, idx)


def _keep(e: Expr, idx: tuple) -> Expr:
    """No rule pushes further: write the entry as (…)_{j}."""
    picked = [i for i in idx if i is not None]
    if len(picked) == len(e.shape):
        return make("index", e, *picked)
    return e


def _matmul_entry(e: Expr, idx: tuple) -> Expr:
    a, b = e.args
    sa, sb = a.shape, b.shape
    if len(sa) == 1 and len(sb) == 2 and sb[0] == 1:        # outer product a bᵀ
        i, j = idx
        left = entry(a, (i,)) if i is not None else a
        right = entry(b, (None, j)) if j is not None else b.T if b.op != "T" else b.args[0]
        if i is not None and j is not None:
            return make("mul", left, right)
        return make("mul", left, right) if i is not None else make("mul", left, right)
    if len(sa) == 2 and len(sb) == 1 and idx[0] is not None:  # (A b)_i = Σ_k A_ik b_k
        k = ivar("k" if idx[0].attr != "k" else "m")
        body = make("mul", entry(a, (idx[0], k)), entry(b, (k,)))
        return isum(body, k.attr, sa[1])
    return _keep(e, idx)


def concrete_entries(form: Expr, index: dict[str, str], dims: dict[str, int], shape: tuple):
    """Yield (index values, form with those values) for every entry the form stands for."""
    import itertools
    names = list(index)
    sizes = []
    for n in names:
        axis = 0 if index[n] == "row" else min(1, len(shape) - 1)
        d = shape[axis]
        sizes.append(dims[d] if isinstance(d, str) else int(d))
    for values in itertools.product(*[range(s) for s in sizes]):
        mapping = {ivar(n): num(v) for n, v in zip(names, values)}
        yield dict(zip(names, values)), expand_sums(substitute(form, mapping), dims)


def expand_sums(e: Expr, dims: dict[str, int]) -> Expr:
    """Σ_k body → body[k=0] + body[k=1] + … so the form can be evaluated."""
    memo: dict[Expr, Expr] = {}
    for node in e.walk():
        args = tuple(memo[a] for a in node.args)
        if node.op == "isum":
            n = node.args[1]
            size = dims[n.attr] if n.op == "dim" else int(n.attr)
            terms = [substitute(args[0], {ivar(node.attr): num(v)}) for v in range(size)]
            out = terms[0]
            for t in terms[1:]:
                out = make("add", out, t)
            memo[node] = out
        elif args != node.args:
            memo[node] = make(node.op, *args, attr=node.attr)
        else:
            memo[node] = node
    return memo[e]
