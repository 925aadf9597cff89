"""Variants of a problem's graph: a named choice set, sizes set, a size of 0 read as "no layer".

A sweep in ``check:`` trains one network per setting; this module turns a setting into the
graph that is derived, compiled and trained for it.

INTERFACE ONLY (session 3, lead): the full behaviour is being built (choices substituted into
the forward, unused nodes dropped, a width of 0 bypassing its layer).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from .graph import Graph


def variant(graph: Graph, choices: Mapping[str, str] | None = None,
            dims: Mapping[str, int] | None = None) -> Graph:
    """The graph with each choice in ``choices`` set and each size in ``dims`` set.

    ``choices`` maps a choice name (the problem's ``choices:``) to one of its values;
    ``dims`` maps size names to sizes (a size of 0 removes the layers of that width, their
    input passing straight to the next layer).  Raises UserError (located at the problem's
    ``choices:`` or ``check:``) when the setting does not give a valid network.
    """
    return replace(graph, dims={**graph.dims, **(dims or {})})
