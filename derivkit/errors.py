"""The one exception type for mistakes a user can cause.

Anything raised as :class:`UserError` reaches the user as one line,
``file:line:column: message`` when a file is at fault, and exit code 2.
Everything else is a bug in derivkit.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A 1-based position in a file (line/column may be unknown)."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


class UserError(Exception):
    """A problem with the user's input: a file, an answer, an option."""

    def __init__(self, message: str, where: Location | None = None):
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        one_line = " ".join(self.message.split())
        return f"{self.where}: {one_line}" if self.where else one_line


class UserErrors(UserError):
    """Several independent user errors found in one pass (``validate`` reports them all)."""

    def __init__(self, errors: list[UserError]):
        super().__init__(str(errors[0]) if errors else "", None)
        self.errors = list(errors)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)
