"""How a sheet names the rule of each operation: plain words and a LaTeX formula.

Keyed by op name, beside (not inside) the registry in :mod:`derivkit.ops`, whose
``rule`` strings are Unicode for terminals.  An op missing here falls back to its
registry rule, escaped as text.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ops import OPS


@dataclass(frozen=True)
class Rule:
    """A step's justification: ``name`` is plain text, ``formula`` trusted LaTeX math (or "")."""

    name: str
    formula: str = ""
    detail: str = ""          # LaTeX math: what the rule was applied to, e.g. z = W x + b

    def plain(self) -> str:
        return self.name


RULES: dict[str, Rule] = {
    "add": Rule("sum rule", r"\partial(u + v) = \partial u + \partial v"),
    "sub": Rule("difference rule", r"\partial(u - v) = \partial u - \partial v"),
    "mul": Rule("product rule", r"\partial(u \odot v) = \partial u \odot v + u \odot \partial v"),
    "div": Rule("quotient rule", r"\partial\frac{u}{v} = \frac{\partial u}{v} - \frac{u\,\partial v}{v^{2}}"),
    "pow": Rule("power rule", r"\partial u^{n} = n\,u^{n-1}\,\partial u"),
    "neg": Rule("constant factor", r"\partial(-u) = -\partial u"),
    "exp": Rule("exponential rule", r"\exp'(u) = \exp(u)"),
    "log": Rule("logarithm rule", r"\log'(u) = \frac{1}{u}"),
    "sqrt": Rule("square-root rule", r"\sqrt{u}' = \frac{1}{2\sqrt{u}}"),
    "abs": Rule("absolute value", r"|u|' = \frac{u}{|u|}"),
    "sigmoid": Rule("sigmoid rule", r"\sigma'(u) = \sigma(u)\left(1 - \sigma(u)\right)"),
    "tanh": Rule("tanh rule", r"\tanh'(u) = 1 - \tanh^{2}(u)"),
    "relu": Rule("ReLU rule", r"\mathrm{ReLU}'(u) = \mathbb{1}\left[u > 0\right]"),
    "softplus": Rule("softplus rule", r"\operatorname{softplus}'(u) = \sigma(u)"),
    "sigmoid_prime": Rule("derivative of the sigmoid", r"\sigma''(u) = \sigma'(u)\left(1 - 2\sigma(u)\right)"),
    "tanh_prime": Rule("derivative of tanh'", r"\tanh''(u) = -2\tanh(u)\tanh'(u)"),
    "relu_prime": Rule("step function", r"\mathbb{1}'\left[u > 0\right] = 0 \text{ for } u \neq 0"),
    "softmax": Rule("softmax rule", r"\frac{\partial y_i}{\partial o_j} = y_i\left(\delta_{ij} - y_j\right)"),
    "log_softmax": Rule("log-softmax rule", r"\frac{\partial \log y_i}{\partial o_j} = \delta_{ij} - y_j"),
    "matmul": Rule("matrix product rule", r"\partial(AB) = (\partial A)B + A(\partial B)"),
    "T": Rule("transpose", r"\partial(A^{\top}) = (\partial A)^{\top}"),
    "sum": Rule("sum rule", r"\frac{\partial \sum_i u_i}{\partial u} = \mathbf{1}"),
    "mean": Rule("mean rule", r"\frac{\partial \operatorname{mean}(u)}{\partial u} = \frac{1}{n}\mathbf{1}"),
    "diag": Rule("diagonal matrix"),
    "diagonal": Rule("diagonal of a matrix"),
    "index": Rule("indexing picks one entry"),
}

CHAIN = Rule("chain rule")
SUBSTITUTE = Rule("substituting the upstream gradient")
SIMPLIFY = Rule("simplifying")
SELF = Rule("the derivative of a function with respect to itself is 1")
DEFINITION = Rule("definition")

_BY_REGISTRY_TEXT = {op.rule: name for name, op in OPS.items() if op.rule}


def rule_of_op(op: str) -> Rule:
    """The sheet's rule for one operation (the registry's words when the table lacks it)."""
    return RULES.get(op) or Rule(OPS[op].rule or op)


def op_of_rule_text(text: str) -> str | None:
    """The op whose registry ``rule`` string is ``text`` (Step.rules records those strings)."""
    return _BY_REGISTRY_TEXT.get(text)


def combine(ops: list[str]) -> str:
    """Several rules' names in order, each once: 'sum rule, matrix product rule'."""
    seen: list[str] = []
    for op in ops:
        name = rule_of_op(op).name
        if name not in seen:
            seen.append(name)
    return ", ".join(seen)
