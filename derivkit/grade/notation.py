"""The answer notation as data: which LaTeX spelling means which operation.

The LaTeX reader (:mod:`derivkit.grade.latex_in`) is driven by these tables;
teaching it a new spelling is adding one entry here.  Keys are LaTeX commands
(with their backslash) or plain words; values are operation names of the
registry (:data:`derivkit.ops.OPS`).
"""
from __future__ import annotations

from derivkit.printing import GREEK

#: functions written as a command: ``\sigma(z)``, ``\log y``
FUNCTION_COMMANDS = {
    r"\sigma": "sigmoid", r"\exp": "exp", r"\log": "log", r"\ln": "log", r"\tanh": "tanh",
    r"\sqrt": "sqrt",
}

#: functions written as a word, bare or inside \operatorname{}, \mathrm{}, \text{}
#: (compared case-insensitively: ReLU, relu and Relu are the same function)
FUNCTION_WORDS = {
    "sigmoid": "sigmoid", "sigma": "sigmoid", "exp": "exp", "log": "log", "ln": "log",
    "tanh": "tanh", "sqrt": "sqrt", "relu": "relu", "softplus": "softplus",
    "softmax": "softmax", "logsoftmax": "log_softmax", "diag": "diag", "diagonal": "diagonal", "abs": "abs",
    "mean": "mean", "sum": "sum",
}

#: f' (or f^{\prime}) for the functions whose derivative has an op of its own
PRIMES = {"sigmoid": "sigmoid_prime", "tanh": "tanh_prime", "relu": "relu_prime"}

#: \max(0, z) and \max(z, 0) are the ReLU
MAX_COMMANDS = {r"\max", "max"}

#: products whose meaning the shapes decide (matrix product, or scaling by a scalar)
JUXTAPOSE = {r"\cdot", r"\times"}
#: explicit elementwise product and division
ELEMENTWISE = {r"\odot": "mul", r"\circ": "mul", "*": "mul", "/": "div", r"\oslash": "div",
               r"\div": "div"}

#: the superscripts that mean a transpose: x^T, x^{T}, x^\top, x^{\intercal}, x^{\mathsf{T}}
TRANSPOSE_MARKS = {"T", r"\top", r"\intercal", r"\mathsf{T}"}

#: comparisons inside an indicator, a bracket or a case condition
RELATIONS = {">": ">", "<": "<", r"\gt": ">", r"\lt": "<", r"\ge": ">=", r"\geq": ">=",
             r"\geqslant": ">=", r"\le": "<=", r"\leq": "<=", r"\leqslant": "<=", "=": "=",
             r"\neq": "!=", r"\ne": "!="}

#: fraction commands
FRACTIONS = {r"\frac", r"\dfrac", r"\tfrac", r"\cfrac"}

#: accents that are part of a name: \hat{y} is the name y_hat (or an alias)
ACCENTS = {r"\hat": "hat", r"\widehat": "hat", r"\tilde": "tilde", r"\widetilde": "tilde",
           r"\bar": "bar", r"\overline": "bar"}

#: commands that only change the font: \mathbf{x} is x.  The reader drops them and
#: the braces of their argument, so \mathbf{z}_1 and \mathbf{z_1} read alike.
FONTS = {r"\mathbf", r"\boldsymbol", r"\bm", r"\pmb", r"\mathit", r"\mathrm", r"\mathsf",
         r"\mathcal", r"\mathscr", r"\mathnormal", r"\vec", r"\text", r"\textrm", r"\textit",
         r"\textbf", r"\textnormal", r"\mbox", r"\operatorname", r"\mathtt", r"\texttt",
         r"\rm", r"\bf", r"\it"}

#: commands that only change spacing or sizes; dropped
SPACING = {r"\quad", r"\qquad", r"\displaystyle", r"\textstyle", r"\scriptstyle", r"\limits",
           r"\nolimits", r"\left", r"\right", r"\middle", r"\big", r"\Big", r"\bigg", r"\Bigg",
           r"\bigl", r"\bigr", r"\Bigl", r"\Bigr", r"\biggl", r"\biggr", r"\Biggl", r"\Biggr",
           r"\thinspace", r"\medspace", r"\thickspace", r"\enspace", r"\negthinspace"}

#: indicator functions: \mathbb{1}[z > 0], \mathbb{I}(z \ge 0), \mathbf{1}_{z>0} (as 1_{...})
INDICATORS = {r"\mathbb{1}", r"\mathbb{I}", r"\mathds{1}", r"\mathbbm{1}", r"\one"}

#: brackets: opening -> closing
BRACKETS = {"(": ")", "[": "]", r"\{": r"\}", r"\lbrack": r"\rbrack", r"\lparen": r"\rparen"}
#: absolute value and norm bars
ABS_BARS = {"|": "|", r"\lvert": r"\rvert", r"\vert": r"\vert"}
NORM_BARS = {r"\|": r"\|", r"\lVert": r"\rVert", r"\Vert": r"\Vert"}

#: words that end a case condition list
OTHERWISE = {"otherwise", "else", "elsewhere"}
#: words that may start a case condition and mean nothing: "if j = t", "for j = t"
CONDITION_WORDS = {"if", "for", "when", "where"}

#: Greek letters usable as names (\ell, \alpha, ...); \sigma and \delta have meanings of their own
GREEK_NAMES = {"\\" + g for g in GREEK} | {r"\varepsilon", r"\vartheta", r"\varphi", r"\varrho"}

#: Unicode characters students paste, as the LaTeX they stand for
UNICODE = {
    "σ": r"\sigma", "δ": r"\delta", "∂": r"\partial", "⊙": r"\odot", "∘": r"\circ", "·": r"\cdot",
    "⋅": r"\cdot", "×": r"\times", "⊤": r"\top", "ᵀ": "^T", "−": "-", "–": "-", "≥": r"\ge",
    "≤": r"\le", "≠": r"\neq", "ℓ": r"\ell", "∑": r"\sum", "Σ": r"\sum", "√": r"\sqrt",
    "⊘": r"\oslash", "′": "'", "∇": r"\nabla", "𝟙": r"\mathbb{1}", "η": r"\eta", "λ": r"\lambda",
    "α": r"\alpha", "β": r"\beta", "θ": r"\theta", "τ": r"\tau", "μ": r"\mu",
}
