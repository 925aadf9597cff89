"""Fitting formulas on a page: their printed width, and where a long one may break.

TeX cannot break a display formula by itself, and a line break inside
``\\left( … \\right)`` is an error; so a long right-hand side is split here, at
``+``, ``-`` and ``\\odot`` outside every brace and ``\\left``/``\\right`` pair.  A
formula with no such point stays whole and the template shrinks it to the line
width (adjustbox ``max width``), the last resort.
"""
from __future__ import annotations

import re

#: printed characters (about 0.6 em each) that fit beside the rule column of a derivation
LINE_WIDTH = 62
#: printed characters of a formula that fit across the text width
PAGE_WIDTH = 76

_ZERO = {"left", "right", "mathbf", "boldsymbol", "mathrm", "operatorname", "hat", "bar", "tilde",
         "mathbb", "displaystyle", "top", "big", "Big", "bigl", "bigr", "text", "mathit", "mathcal"}
_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|[{}]|[\s]+|.", re.S)


def width(tex: str) -> float:
    """Rough printed width of LaTeX math, in characters (fractions count their wider part)."""
    tokens = _TOKEN.findall(tex)
    total, _ = _width(tokens, 0, stop_at_close=False)
    return total


def _group(tokens: list[str], i: int) -> tuple[float, int]:
    """Width of the group starting at ``tokens[i]`` (a braced group or one token), and the next index."""
    while i < len(tokens) and tokens[i].isspace():
        i += 1
    if i >= len(tokens):
        return 0.0, i
    if tokens[i] == "{":
        return _width(tokens, i + 1, stop_at_close=True)
    w, _ = _width([tokens[i]], 0, stop_at_close=False)
    return w, i + 1


def _width(tokens: list[str], i: int, stop_at_close: bool) -> tuple[float, int]:
    total = 0.0
    while i < len(tokens):
        t = tokens[i]
        if t == "}":
            if stop_at_close:
                return total, i + 1
            i += 1
            continue
        if t == "{":
            w, i = _width(tokens, i + 1, stop_at_close=True)
            total += w
            continue
        if t in (r"\frac", r"\dfrac", r"\tfrac"):
            a, i = _group(tokens, i + 1)
            b, i = _group(tokens, i)
            total += max(a, b) + 0.5
            continue
        if t in ("^", "_"):
            w, i = _group(tokens, i + 1)
            total += 0.6 * w
            continue
        i += 1
        if t.isspace():
            continue
        if t.startswith("\\") and len(t) > 2:
            name = t[1:]
            total += 0.0 if name in _ZERO else (2.0 if name in ("odot", "cdot", "quad") else 1.2)
        elif t.startswith("\\"):
            total += 0.3
        elif t in "+-=":
            total += 2.0
        else:
            total += 1.0
    return total, i


def break_points(tex: str) -> list[int]:
    """Offsets of top-level binary ``+``, ``-`` and ``\\odot`` where a line may break."""
    points = []
    depth = 0
    i = 0
    prev = ""
    while i < len(tex):
        m = re.match(r"\\(left|right)(?![A-Za-z])", tex[i:])
        if m:
            depth += 1 if m.group(1) == "left" else -1
            i += m.end()
            # the delimiter itself (one char or a control word)
            d = re.match(r"\\[A-Za-z]+|\\.|.", tex[i:], re.S)
            i += d.end() if d else 0
            prev = ")"
            continue
        c = tex[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif depth == 0 and c in "+-" and prev.strip() not in ("", "(", "=", "+", "-", "{", "^", "_"):
            points.append(i)
        elif depth == 0 and tex.startswith(r"\odot", i):
            points.append(i)
        if not c.isspace():
            prev = c
        i += 1
    return points


def split(tex: str, limit: float = LINE_WIDTH) -> list[str]:
    """``tex`` as lines no wider than ``limit`` where it can break (the first line unindented)."""
    if width(tex) <= limit:
        return [tex]
    points = break_points(tex)
    if not points:
        return [tex]
    lines, start, cut = [], 0, None
    for p in points + [len(tex)]:
        if cut is not None and width(tex[start:p]) > limit:
            lines.append(tex[start:cut].strip())
            start = cut
        cut = p
    lines.append(tex[start:].strip())
    return [ln for ln in lines if ln]
