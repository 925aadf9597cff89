"""The tokenizer of the LaTeX answer notation.

Turns an answer into :class:`Token` s, each knowing its character offset, in
one left-to-right pass (linear time on any input).  What only changes looks
is dropped here: spacing (``\\,``, ``\\quad``, ``\\left``), font commands with
the braces of their argument (``\\mathbf{z}_1`` and ``\\mathbf{z_1}`` become
the same tokens ``z _ 1``), math-mode delimiters (``$``).  ``\\mathbb{1}`` is
one token.  After ``_`` and ``^`` a bare character is one token, as in TeX
(``x_12`` is ``x_1`` followed by ``2``).
"""
from __future__ import annotations

from dataclasses import dataclass

from . import notation as N
from .position import AnswerError

NUM, WORD, CMD, OP, ROWSEP, END = "num", "word", "cmd", "op", "rowsep", "end"
_OPS = set("+-*/()[]{}^_',=<>&|!:;.")
_MAX_DIGITS = 15


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int

    def is_(self, *texts: str) -> bool:
        return self.kind in (OP, CMD, ROWSEP) and self.text in texts


def tokenize(text: str) -> list[Token]:
    """Tokens of ``text``, ending with an END token; AnswerError on a character the notation lacks."""
    out: list[Token] = []
    braces: list[bool] = []         # one per open '{': True when it is a dropped font argument
    i, n = 0, len(text)
    single_next = False             # the character after '_' or '^' is a token of its own
    while i < n:
        c = text[i]
        if c.isspace() or c in "~$":
            i += 1
            continue
        if single_next and (c.isalnum() and c.isascii()):
            out.append(Token(NUM if c.isdigit() else WORD, c, i))
            single_next = False
            i += 1
            continue
        single_next = False
        if c == "\\":
            i = _command(text, i, out, braces)
            if out and out[-1].is_("_", "^"):
                single_next = True
            continue
        if c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            j = i
            while j < n and text[j].isdigit():
                j += 1
            if j < n - 1 and text[j] == "." and text[j + 1].isdigit():
                j += 1
                while j < n and text[j].isdigit():
                    j += 1
            digits = sum(ch.isdigit() for ch in text[i:j])
            if digits > _MAX_DIGITS:
                raise AnswerError(f"number with more than {_MAX_DIGITS} digits", text, i)
            out.append(Token(NUM, text[i:j], i))
            i = j
            continue
        if c.isascii() and c.isalpha():
            j = i
            while j < n and text[j].isascii() and text[j].isalnum():
                j += 1
            out.append(Token(WORD, text[i:j], i))
            i = j
            continue
        if c == "{":
            braces.append(bool(out) and out[-1].kind == "font")
            if braces[-1]:
                out.pop()
            else:
                out.append(Token(OP, "{", i))
            i += 1
            continue
        if c == "}":
            if not braces:
                raise AnswerError("'}' without a matching '{'", text, i)
            if not braces.pop():
                out.append(Token(OP, "}", i))
            i += 1
            continue
        if c in _OPS:
            out.append(Token(OP, c, i))
            single_next = c in "_^"
            i += 1
            continue
        if c in N.UNICODE:
            for t in tokenize(N.UNICODE[c])[:-1]:
                out.append(Token(t.kind, t.text, i))
            single_next = bool(out) and out[-1].is_("_", "^")
            i += 1
            continue
        raise AnswerError(f"unexpected character {c!r}", text, i)
    if braces:
        raise AnswerError("'{' without a matching '}'", text, n)
    out = [t for t in out if t.kind != "font"]
    out.append(Token(END, "", n))
    return out


def _command(text: str, i: int, out: list[Token], braces: list[bool]) -> int:
    """Read the command at ``text[i] == '\\'``; append its token (if it means something)."""
    n = len(text)
    j = i + 1
    if j >= n:
        raise AnswerError("a lone backslash", text, i)
    c = text[j]
    if not (c.isascii() and c.isalpha()):
        if c == "\\":
            out.append(Token(ROWSEP, r"\\", i))
        elif c in ",;:! >":
            pass                                            # spacing
        elif c in "()[]":
            pass                                            # \( \) \[ \]: math mode
        elif c in "{}|":
            out.append(Token(OP, "\\" + c, i))
        else:
            raise AnswerError(f"unknown command '\\{c}'", text, i)
        return j + 1
    while j < n and text[j].isascii() and text[j].isalpha():
        j += 1
    name = text[i:j]
    if j < n and text[j] == "*" and name == r"\operatorname":
        j += 1
    if name in (r"\mathbb", r"\mathds", r"\mathbbm"):
        k = j
        while k < n and text[k] == " ":
            k += 1
        if k + 2 < n and text[k] == "{" and text[k + 2] == "}":
            full = f"{name}{{{text[k + 1]}}}"
            if full in N.INDICATORS:
                out.append(Token(CMD, full, i))
                return k + 3
        raise AnswerError(f"'{name}' is only known as the indicator \\mathbb{{1}}", text, i)
    if name in N.FONTS:
        out.append(Token("font", name, i))              # its '{' is dropped with it
        return j
    if name in N.SPACING:
        if name in (r"\left", r"\right", r"\middle") and j < n and text[j] == ".":
            j += 1                                          # \left. is an invisible delimiter
        elif name in (r"\left", r"\right") and j < n and text[j] == "|":
            # \left| and \right| say which way a bar faces: |1 |s|| is ambiguous, \left|1 \left|s\right|\right| not
            out.append(Token(CMD, r"\lvert" if name == r"\left" else r"\rvert", i))
            return j + 1
        return j
    out.append(Token(CMD, name, i))
    return j
