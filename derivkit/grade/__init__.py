"""The grader: reading students' answers (and, later, judging them).

``read_answer(text, scope)`` turns an answer, LaTeX or ASCII, into the
expression tree the engine uses; ``answer_scope(graph, question)`` gives the
names an answer to one question may use.  Errors are :class:`AnswerError`, a
``UserError`` that points into the answer.
"""
from .names import AnswerScope, answer_scope
from .position import AnswerError
from .reader import is_latex, read_answer

__all__ = ["AnswerError", "AnswerScope", "answer_scope", "is_latex", "read_answer"]
