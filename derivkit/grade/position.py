"""Errors that point into a student's answer.

An :class:`AnswerError` is a :class:`~derivkit.errors.UserError` (so the CLI
prints it as one line and the judge turns it into the verdict
``unparseable``) that also remembers the answer text and the character offset
at fault, so feedback can show the answer with a caret under the mistake.
"""
from __future__ import annotations

from derivkit.errors import Location, UserError

#: where an answer is, when the caller does not say (a file name for one-line messages)
ANSWER = Location("answer", 1, 1)


class AnswerError(UserError):
    """A mistake at ``offset`` (0-based, in characters) of the answer ``text``."""

    def __init__(self, message: str, text: str, offset: int, where: Location | None = None):
        offset = max(0, min(offset, len(text)))
        super().__init__(message, locate(where or ANSWER, text, offset))
        self.text, self.offset = text, offset

    def pointer(self) -> str:
        """The answer's line at fault and a caret under the offending character."""
        start = self.text.rfind("\n", 0, self.offset) + 1
        end = self.text.find("\n", self.offset)
        line = self.text[start:end if end >= 0 else len(self.text)]
        return f"{line}\n{' ' * (self.offset - start)}^"


def locate(where: Location, text: str, offset: int) -> Location:
    """The Location of ``text[offset]`` when ``text`` starts at ``where``."""
    line = text.count("\n", 0, offset)
    col = offset - (text.rfind("\n", 0, offset) + 1)
    if where.line is None:
        return Location(where.file, line + 1, col + 1)
    if line == 0:
        return Location(where.file, where.line, (where.column or 1) + col)
    return Location(where.file, where.line + line, col + 1)
