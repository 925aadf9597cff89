"""The grader: reading students' answers, judging them, grading classes.

* ``read_answer(text, scope)`` turns an answer, LaTeX or ASCII, into the
  expression tree the engine uses; ``answer_scope(graph, question)`` gives the
  names an answer to one question may use.  Errors are :class:`AnswerError`, a
  ``UserError`` that points into the answer.
* ``Judge(problem).judge(question_id, text)`` gives a :class:`Verdict`
  (:mod:`.judge`; diagnoses in :mod:`.mistakes`); :mod:`.runner` judges many
  answers in worker processes with a wall-clock limit each; :mod:`.answers` reads
  submission files, :mod:`.export` writes the reports, :mod:`.bundle` the
  Gradescope autograder zip.
"""
from .judge import Judge, Verdict
from .names import AnswerScope, answer_scope
from .position import AnswerError
from .reader import is_latex, read_answer

__all__ = ["AnswerError", "AnswerScope", "Judge", "Verdict", "answer_scope", "is_latex", "read_answer"]
