"""Making untrusted text harmless in LaTeX and in Markdown.

Every text that comes from a problem file or a student reaches a sheet through
one of these functions, applied once, at the template:

* :func:`escape_tex` / :func:`escape_md` — plain text: every character TeX (or
  Markdown/KaTeX) would read as markup is written as itself;
* :func:`prompt_tex` / :func:`prompt_md` — text with inline ``$…$`` math, as the
  problems' prompts are written: the text between is escaped, and each math
  span is kept only when :func:`math_ok` accepts it (a whitelist of math
  commands, balanced braces, no ``#``, ``%``, ``^^``, ``&``, ``\\\\``); otherwise it is
  shown escaped, as text;
* :func:`math_ok` — also decides whether a problem's ``latex:`` display names
  may be used (:func:`safe_names`).

Nothing here is ever evaluated: ``\\input``, ``\\write18``, ``\\def`` are not on the
whitelist, so they are printed, never run.
"""
from __future__ import annotations

import re

_TEX = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
    "%": r"\%", "_": r"\_", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", '"': "''",
    "\n": " ", "\r": " ", "\t": " ", "\f": " ", "\v": " ",
}

#: Unicode a rule name or a title may contain, as LaTeX that pdflatex always has
_UNICODE = {
    "σ": r"$\sigma$", "δ": r"$\delta$", "Σ": r"$\Sigma$", "∂": r"$\partial$", "−": "-", "–": "--",
    "—": "---", "²": r"\textsuperscript{2}", "≠": r"$\neq$", "≤": r"$\leq$", "≥": r"$\geq$",
    "→": r"$\to$", "′": "'", "⊙": r"$\odot$", "ᵀ": r"\textsuperscript{T}", "×": r"$\times$",
    "·": r"$\cdot$", "…": r"\dots{}", "“": "``", "”": "''", "‘": "`", "’": "'", "±": r"$\pm$",
    "∞": r"$\infty$", "α": r"$\alpha$", "β": r"$\beta$", "η": r"$\eta$", "λ": r"$\lambda$",
    "μ": r"$\mu$", "τ": r"$\tau$", "θ": r"$\theta$", "ℓ": r"$\ell$",
}


def escape_tex(text) -> str:
    """``text`` as LaTeX that prints it literally (one pass: nothing is escaped twice)."""
    out = []
    for ch in str(text):
        if ch in _TEX:
            out.append(_TEX[ch])
        elif ch in _UNICODE:
            out.append(_UNICODE[ch])
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(" ")
        elif ord(ch) > 0x17F:                 # beyond Latin Extended-A: not in pdflatex's T1 fonts
            out.append(rf"\texttt{{[U+{ord(ch):04X}]}}")
        else:
            out.append(ch)
    return "".join(out)


_MD = set("\\`*_{}[]()<>#+-.!|$~&\"'")


def escape_md(text) -> str:
    """``text`` as Markdown that shows it literally (no markup, no HTML, no KaTeX math)."""
    out = []
    for ch in str(text):
        if ch in ("<", ">", "&"):
            out.append({"<": "&lt;", ">": "&gt;", "&": "&amp;"}[ch])
        elif ch in _MD:
            out.append("\\" + ch)
        elif ch in "\r\n\t":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


# ---------------------------------------------------------------- math whitelist
#: control words a formula on a sheet may use (what derivkit's printers and the seeds' prompts write)
MATH_COMMANDS = frozenset("""
frac dfrac tfrac partial left right odot cdot times top mathbf boldsymbol mathrm mathit mathcal
mathbb operatorname hat bar tilde vec dot sum prod lim to infty log exp ln sqrt sigma tanh
alpha beta gamma delta epsilon varepsilon zeta eta theta iota kappa lambda mu nu xi pi rho tau
upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Phi Psi Omega ell
neq ne leq le geq ge approx equiv in notin mid quad qquad cdots ldots dots vdots ddots text
textrm max min arg argmax big Big bigl bigr Bigl Bigr nabla prime circ oplus otimes boxed
mathsf pm mp sim propto forall exists colon lvert rvert lVert rVert langle rangle ast star
""".split())

_ENVIRONMENTS = frozenset({"bmatrix", "pmatrix", "matrix", "cases", "aligned"})

_CTRL = re.compile(r"\\([A-Za-z]+|.)", re.S)


def math_ok(tex: str, *, environments: bool = False) -> bool:
    """True when ``tex`` (the inside of ``$…$``) uses only whitelisted, harmless math.

    ``environments`` also admits ``\\begin{bmatrix}`` (and the other matrix/cases
    environments), ``&`` and ``\\\\`` — what derivkit's own matrices print.
    """
    if any(c in tex for c in "#%$") or "^^" in tex or any(ord(c) < 32 or ord(c) > 126 for c in tex):
        return False
    if not environments and ("&" in tex or "\\\\" in tex):
        return False
    depth = 0
    for c in tex:
        depth += (c == "{") - (c == "}")
        if depth < 0:
            return False
    if depth:
        return False
    for m in _CTRL.finditer(tex):
        word = m.group(1)
        if word in ("begin", "end"):
            if not environments:
                return False
            env = re.match(r"\{([a-z]+\*?)\}", tex[m.end():])
            if env is None or env.group(1) not in _ENVIRONMENTS:
                return False
        elif len(word) == 1 and not word.isalpha():
            if word not in ",;:! {}|\\_^" or (word == "\\" and not environments):
                return False
        elif word not in MATH_COMMANDS:
            return False
    return _left_right_balanced(tex)


def _left_right_balanced(tex: str) -> bool:
    depth = 0
    for m in re.finditer(r"\\(left|right)(?![A-Za-z])", tex):
        depth += 1 if m.group(1) == "left" else -1
        if depth < 0:
            return False
    return depth == 0


_MATH_SPAN = re.compile(r"\$([^$]*)\$")


def _prompt(text: str, esc, keep) -> str:
    out, pos = [], 0
    text = str(text)
    for m in _MATH_SPAN.finditer(text):
        out.append(esc(text[pos:m.start()]))
        body = m.group(1)
        out.append(keep(body) if body.strip() and math_ok(body) else esc(m.group(0)))
        pos = m.end()
    out.append(esc(text[pos:]))
    return "".join(out)


def prompt_tex(text) -> str:
    """A prompt for LaTeX: text escaped, whitelisted ``$…$`` math kept as math.

    ``\\left``/``\\right`` are dropped from inline math: TeX cannot break a line inside
    them, and a long formula in running text would run off the page.
    """
    return _prompt(text, escape_tex, lambda body: "$" + _UNSIZED.sub("", body) + "$")


_UNSIZED = re.compile(r"\\(?:left|right)(?![A-Za-z])\s*(?:\.)?")


def prompt_md(text) -> str:
    """A prompt for Markdown with KaTeX: text escaped, whitelisted ``$…$`` math kept."""
    return _prompt(text, escape_md, lambda body: f"${body.strip()}$")


def safe_names(latex_names: dict[str, str]) -> dict[str, str]:
    """A problem's ``latex:`` display names, without any that the whitelist refuses.

    A refused name falls back to derivkit's own spelling of the identifier.
    """
    return {k: v for k, v in (latex_names or {}).items() if isinstance(v, str) and v.strip() and math_ok(v)}
