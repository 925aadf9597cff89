"""Printers: expressions as LaTeX (for sheets) and as the ASCII expression language.

Dispatch is by operation name, ``_print_<op>`` methods in the style of SymPy's
printers; how an op looks (its symbol, its form, its precedence) comes from
its registry entry, so most ops need no method of their own.
"""
from __future__ import annotations

import re
from fractions import Fraction

from .expr import Expr
from .ops import OPS, P_ADD, P_ATOM, P_CMP, P_MUL, P_NEG, P_POW

GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda",
         "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
         "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Phi", "Psi", "Omega", "ell"}


def latex_name(name: str) -> str:
    """``y_hat`` → ``\\hat{y}``, ``W1`` → ``W_{1}``, ``alpha`` → ``\\alpha``."""
    m = re.fullmatch(r"(.*?)_?(hat|bar|tilde)", name)
    if m and m.group(1):
        return rf"\{m.group(2)}{{{latex_name(m.group(1))}}}"
    m = re.fullmatch(r"([A-Za-z]+?)_?(\d+)", name)
    if m:
        return f"{latex_name(m.group(1))}_{{{m.group(2)}}}"
    if "_" in name:
        head, tail = name.split("_", 1)
        return f"{latex_name(head)}_{{{tail.replace('_', ',')}}}"
    if name in GREEK:
        return "\\" + name
    return name if len(name) == 1 else rf"\mathrm{{{name}}}"


class Printer:
    """Shared precedence logic; subclasses say how each piece is written."""

    def __init__(self, names: dict[str, str] | None = None):
        self.names = names or {}

    def doprint(self, e: Expr) -> str:
        return self.p(e)

    def p(self, e: Expr) -> str:
        method = getattr(self, "_print_" + e.op, None)
        if method is not None:
            return method(e)
        spec = OPS[e.op]
        return getattr(self, "_form_" + spec.form)(e, spec)

    def prec(self, e: Expr) -> int:
        if e.op == "num":
            v = e.attr
            if v < 0:
                return P_NEG
            return P_ATOM if not isinstance(v, Fraction) or v.denominator == 1 else P_MUL
        if e.op == "mul" and self.implicit(e):
            return P_MUL
        return OPS[e.op].prec

    def wrap(self, e: Expr, min_prec: int, strict: bool = False, parent: Expr | None = None,
             left: bool = False) -> str:
        s = self.p(e)
        pe = self.left_prec(e) if left else self.prec(e)
        if parent is not None and self.mixed(parent, e):
            return self.paren(s)
        if pe < min_prec or (strict and pe == min_prec):
            return self.paren(s)
        return s

    def implicit(self, e: Expr) -> bool:
        return False

    def mixed(self, parent: Expr, child: Expr) -> bool:
        """An elementwise product next to a matrix product always gets parentheses."""
        kinds = {parent.op, child.op}
        if parent.op == "mul" == child.op and not self.implicit(parent) and self.implicit(child):
            return any(a.op == "matmul" for a in child.args)      # (2 Wᵀ δ) ⊙ h, not 2 Wᵀ δ ⊙ h
        if kinds != {"mul", "matmul"}:
            return False
        mul = parent if parent.op == "mul" else child
        return not self.implicit(mul)

    #: parenthesise the right operand of an infix op at the same precedence even where the
    #: maths is associative, so that the text reads back to the same tree (the ASCII printer)
    exact = False

    def _form_infix(self, e: Expr, spec) -> str:
        a, b = e.args
        left = self.wrap(a, spec.prec, strict=spec.prec in (P_POW, P_CMP), parent=e, left=True)
        if self.reaches_right(a) and spec.prec >= P_MUL:
            left = self.paren(left)
        right = self.wrap(b, spec.prec, strict=self.exact or spec.name in ("sub", "div", "matmul")
                          or spec.prec in (P_POW, P_CMP), parent=e)
        return self.infix(e, spec, left, right)

    def _form_prefix(self, e: Expr, spec) -> str:
        (a,) = e.args
        s = self.wrap(a, P_POW if a.op == "num" else P_MUL)
        return "-" + (self.paren(s) if s.startswith("-") else s)       # never "--"

    def _form_postfix(self, e: Expr, spec) -> str:
        return self.postfix_base(e.args[0]) + self.sym_of(spec)

    def reaches_right(self, e: Expr) -> bool:
        """A form that takes in all that follows it (Σ in LaTeX): parenthesised before a product."""
        return False

    def left_prec(self, e: Expr) -> int:
        """The precedence of ``e`` as the left operand of an infix op."""
        return self.prec(e)

    def postfix_base(self, e: Expr) -> str:
        """The operand of ``.T`` or ``[i]``: a number too is parenthesised (``2.T`` is no transpose)."""
        s = self.wrap(e, P_ATOM)
        return self.paren(s) if e.op == "num" and not s.startswith(self.paren("")[:1]) else s

    def _form_func(self, e: Expr, spec) -> str:
        return self.func(spec, [self.p(a) for a in e.args])


class AsciiPrinter(Printer):
    """The expression language, readable back by :func:`derivkit.parse.parse_expression`.

    Python's grammar reads ``*``, ``/`` and ``@`` at one level, left to right, so a right
    operand at that level is always parenthesised (``x * ((M @ x) / x)``): the text parses
    back to the same tree, up to numbers (``-2`` is one number, ``1/3`` one fraction) and a
    negated product (``-t / y`` reads as ``(-t) / y``, the same value).
    """

    exact = True

    def paren(self, s: str) -> str:
        return f"({s})"

    def sym_of(self, spec) -> str:
        return spec.ascii or spec.name

    def infix(self, e, spec, left, right) -> str:
        return f"{left}{spec.ascii}{right}" if spec.name == "pow" else f"{left} {spec.ascii} {right}"

    def func(self, spec, args) -> str:
        return f"{spec.ascii or spec.name}({', '.join(args)})"

    def _print_sym(self, e):
        return e.attr

    def _print_dim(self, e):
        return str(e.attr)

    def _print_num(self, e):
        v = e.attr
        if isinstance(v, Fraction) and _short(v.numerator) and _short(v.denominator):
            return str(v.numerator) if v.denominator == 1 else f"{v.numerator}/{v.denominator}"
        return repr(float(v))          # a literal the parser takes (it refuses 16-digit integers)

    def _print_grad(self, e):
        loss, name = e.attr
        return f"d{loss}/d{name}"

    def _print_ones(self, e):
        return f"ones({', '.join(map(str, e.shape))})"

    def _print_eye(self, e):
        return f"eye({e.shape[0]})"

    def _print_onehot(self, e):
        return f"onehot({self.p(e.args[0])}, {e.attr})"

    def _print_index(self, e):
        return self.postfix_base(e.args[0]) + "[" + ", ".join(self.p(i) for i in e.args[1:]) + "]"

    def _print_ivar(self, e):
        return e.attr

    def _print_delta(self, e):
        return f"delta({self.p(e.args[0])}, {self.p(e.args[1])})"

    def _print_isum(self, e):
        return f"sum({self.p(e.args[0])}, {e.attr})"

    def _print_sqrt(self, e):
        return f"sqrt({self.p(e.args[0])})"

    def _print_abs(self, e):
        return f"abs({self.p(e.args[0])})"

    def _print_relu_prime(self, e):
        return f"relu_prime({self.p(e.args[0])})"

    def left_prec(self, e: Expr) -> int:
        # Python's unary minus binds tighter than * / @ (not than **): -a * b is (-a) * b, so a
        # negation on the left needs no parentheses, and -(a * b), printed -a * b, reads back as it.
        pe = self.prec(e)
        return P_POW - 1 if pe == P_NEG else pe

    def prec(self, e: Expr) -> int:
        if e.op == "grad":
            return P_MUL - 1      # dl/dz is a quotient in Python: parenthesised next to * / @ and after -
        if e.op == "num" and not (isinstance(e.attr, Fraction) and _short(e.attr.numerator)
                                  and _short(e.attr.denominator)):
            return P_NEG if e.attr < 0 else P_ATOM      # printed as a float literal
        return super().prec(e)


class LatexPrinter(Printer):
    """LaTeX in the notation of a solution sheet."""

    def paren(self, s: str) -> str:
        return rf"\left({s}\right)"

    def sym_of(self, spec) -> str:
        return spec.tex

    def implicit(self, e: Expr) -> bool:
        a, b = e.args
        return a.shape == () or b.shape == ()

    def reaches_right(self, e: Expr) -> bool:
        return e.op == "sum"

    def infix(self, e, spec, left, right) -> str:
        name = spec.name
        if name == "div":
            return rf"\frac{{{self.p(e.args[0])}}}{{{self.p(e.args[1])}}}"
        if name == "pow":
            return f"{left}^{{{self.p(e.args[1])}}}"
        if name == "matmul":
            return f"{left} {right}"
        if name == "mul":
            if self.implicit(e):
                if e.args[1].op == "num":
                    return f"{right} {left}"
                sep = r" \cdot " if e.args[0].op == e.args[1].op == "num" or e.args[1].op == "num" else " "
                return f"{left}{sep}{right}"
            return rf"{left} \odot {right}"
        return f"{left} {spec.tex} {right}"

    def func(self, spec, args) -> str:
        return rf"{spec.tex}\left({', '.join(args)}\right)"

    def _print_sym(self, e):
        return self.names.get(e.attr) or latex_name(e.attr)

    def _print_dim(self, e):
        return str(e.attr)

    def _print_num(self, e):
        v = e.attr
        if not (isinstance(v, Fraction) and _short(v.numerator) and _short(v.denominator)):
            mantissa, _, exponent = f"{float(v):.6g}".partition("e")
            return rf"{mantissa} \cdot 10^{{{int(exponent)}}}" if exponent else mantissa
        if isinstance(v, Fraction) and v.denominator != 1:
            sign = "-" if v < 0 else ""
            return rf"{sign}\frac{{{abs(v.numerator)}}}{{{v.denominator}}}"
        return str(v.numerator if isinstance(v, Fraction) else v)

    def _print_grad(self, e):
        loss, name = e.attr
        return rf"\frac{{\partial {self.names.get(loss) or latex_name(loss)}}}{{\partial {self.names.get(name) or latex_name(name)}}}"

    def _print_ones(self, e):
        return r"\mathbf{1}"

    def _print_eye(self, e):
        return "I"

    def _print_onehot(self, e):
        return rf"\mathbf{{e}}_{{{self.p(e.args[0])}}}"

    def _print_index(self, e):
        base = self.wrap(e.args[0], P_ATOM)
        return f"{base}_{{{','.join(self.p(i) for i in e.args[1:])}}}"

    def _print_sqrt(self, e):
        return rf"\sqrt{{{self.p(e.args[0])}}}"

    def _print_abs(self, e):
        return rf"\left|{self.p(e.args[0])}\right|"

    def _print_relu_prime(self, e):
        return rf"\mathbb{{1}}\left[{self.p(e.args[0])} > 0\right]"

    def _print_ivar(self, e):
        return e.attr

    def _print_delta(self, e):
        return rf"\delta_{{{self.p(e.args[0])}{self.p(e.args[1])}}}"

    def _print_isum(self, e):
        return rf"\sum_{{{e.attr}=1}}^{{{self.p(e.args[1])}}} {self.wrap(e.args[0], P_MUL)}"

    def _print_sum(self, e):
        return rf"\sum {self.wrap(e.args[0], P_POW)}"

    def _print_T(self, e):
        return self.base(e.args[0]) + r"^{\top}"

    def _print_pow(self, e):
        base, ex = e.args
        return f"{self.base(base)}^{{{self.p(ex)}}}"

    def base(self, e: Expr) -> str:
        """A base for a superscript; W^{(1)} becomes {W^{(1)}} so that ^{\top} can follow."""
        s = self.wrap(e, P_ATOM)
        return f"{{{s}}}" if "^" in s and not s.startswith(r"\left(") else s

    def prec(self, e: Expr) -> int:
        """Where LaTeX's look differs from the ASCII operator's binding."""
        if e.op == "div":
            return P_POW      # \frac{}{} is one block, though no base for a superscript
        if e.op == "sum":
            return P_MUL      # \sum x: no parentheses of its own
        if e.op == "isum":
            return P_ADD      # \sum_{k} takes in all that follows it
        if OPS[e.op].form == "special":
            return P_ATOM     # \sqrt{}, |.|, 1[.], e_t, x_i, \delta_{jt}: closed blocks
        return super().prec(e)


def to_ascii(e: Expr) -> str:
    return AsciiPrinter().doprint(e)


def to_latex(e: Expr, names: dict[str, str] | None = None) -> str:
    return LatexPrinter(names).doprint(e)


def _short(n: int) -> bool:
    """An integer the parser reads as a literal (at most MAX_INT_DIGITS digits)."""
    from .parse import MAX_INT_DIGITS
    return abs(n) < 10 ** MAX_INT_DIGITS
