"""A positioned YAML reader: YAML text -> checked values, every mistake located.

Generic: it knows nothing about problems.  The problem schema (``problem.py``), the
``check:`` section (``checkspec.py``) and students' submission files build on it.

* :func:`read_text` reads a file safely: only a regular file (a FIFO, device or
  directory is refused before it is opened, so nothing blocks), at most
  :data:`MAX_BYTES`, UTF-8 (a bad byte is located).
* :func:`compose` turns text into ``yaml.compose`` nodes with limits enforced while
  composing: at most :data:`MAX_NODES` nodes, nesting depth :data:`MAX_DEPTH`; then
  the size *with aliases and ``<<`` merges expanded* is counted (memoised, so a
  "billion laughs" or merge-key bomb is refused in milliseconds, never expanded).
* :class:`Reader` checks values against a schema written in code and collects every
  error as a :class:`UserError` at its 1-based line and column; only the first
  :data:`MAX_ERRORS` are kept, then one "and N more" line.

Positions: a mistake in a key is reported at the key, in a value at the value, a
missing key at the mapping that lacks it.  Keys are names *as written*: ``no:`` is
the word "no", not false.
"""
from __future__ import annotations

import difflib
import math
import os
import re
import stat
from typing import Any, Callable, Iterable

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from derivkit.errors import Location, UserError

MAX_BYTES = 1024 * 1024     # a hand-written YAML file is far smaller
MAX_NODES = 50_000          # YAML nodes (scalars, lists, mappings), aliases and merges expanded
MAX_DEPTH = 50              # nesting of lists and mappings
MAX_ERRORS = 20             # errors reported in full; the rest are counted
MAX_CANDIDATES = 200        # names a "did you mean" suggestion is looked for among

MERGE_TAG = "tag:yaml.org,2002:merge"
_CONSTRUCT = yaml.SafeLoader.yaml_constructors
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


# ----------------------------------------------------------------- reading files

def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """The UTF-8 text of a regular file of at most MAX_BYTES, or a located UserError."""
    name = str(path)
    where = Location(name)
    try:
        info = os.stat(path)
    except OSError as exc:
        raise UserError(f"cannot read {what}: {exc.strerror or exc}", where) from None
    _require_regular(info, what, where)
    _check_size(info.st_size, what, where)
    try:   # non-blocking open, then the same checks on what was opened (it may have changed)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            _require_regular(os.fstat(fh.fileno()), what, where)
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise UserError(f"cannot read {what}: {exc.strerror or exc}", where) from None
    _check_size(len(data), what, where)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        head = data[:exc.start]
        line = head.count(b"\n") + 1
        col = len(head[head.rfind(b"\n") + 1:].decode("utf-8", "replace")) + 1
        raise UserError(f"the {what} is not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                        "save it as UTF-8", Location(name, line, col)) from None


def file_kind(info: os.stat_result) -> str:
    """'a directory', 'a FIFO', ... for messages about what a path is."""
    mode = info.st_mode
    for test, word in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return word
    return "not a regular file"


def _require_regular(info: os.stat_result, what: str, where: Location) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"the {what} must be a regular file, but this is {file_kind(info)}", where)


def _check_size(size: int, what: str, where: Location) -> None:
    if size > MAX_BYTES:
        raise UserError(f"the {what} is larger than {MAX_BYTES // 2**20} MB ({size} bytes); "
                        "it should be small hand-written YAML", where)


# ----------------------------------------------------------------- composing

class _Limit(Exception):
    def __init__(self, message: str, mark):
        super().__init__(message)
        self.message, self.mark = message, mark


class _CountingLoader(yaml.SafeLoader):
    """SafeLoader whose composer stops at MAX_NODES nodes or MAX_DEPTH levels."""

    def __init__(self, stream):
        super().__init__(stream)
        self.n_nodes = 0
        self.depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        self.n_nodes += 1
        if self.n_nodes > MAX_NODES:
            raise _Limit(f"the file has more than {MAX_NODES} YAML values", event.start_mark)
        if self.depth >= MAX_DEPTH:
            raise _Limit(f"the file is nested too deeply (more than {MAX_DEPTH} levels)", event.start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def compose(text: str, filename: str, what: str = "file") -> Node | None:
    """YAML text -> its root node (None for an empty document), limits enforced."""
    _check_size(len(text.encode("utf-8", "surrogatepass")), what, Location(filename))
    loader = None
    try:
        loader = _CountingLoader(text)
        root = loader.get_single_node()
    except _Limit as exc:
        raise UserError(exc.message, _mark(filename, exc.mark)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"YAML syntax error: {exc.problem or exc.context}"
        if exc.context and exc.problem:
            message += f" ({exc.context})"
        if "'\\t'" in message:
            message += "; indent with spaces, YAML does not allow tabs"
        raise UserError(message, _mark(filename, mark) if mark else Location(filename)) from None
    except yaml.reader.ReaderError as exc:
        head = text[:exc.position]
        raise UserError(f"YAML syntax error: unacceptable character #x{exc.character:04x} "
                        "(control characters are not allowed)",
                        Location(filename, head.count("\n") + 1,
                                 exc.position - head.rfind("\n"))) from None
    except RecursionError:
        raise UserError("YAML syntax error: the file is nested too deeply", Location(filename)) from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is not None:
        _check_expansion(root, filename)
    return root


def _check_expansion(root: Node, filename: str) -> None:
    """Refuse recursive aliases and files whose aliases/merges expand past MAX_NODES.

    Sizes are memoised per node, so the count costs one visit per distinct node
    however large the expansion would be."""
    size: dict[int, int] = {}
    on_path: set[int] = set()

    def count(node: Node, parent: Node) -> int:
        key = id(node)
        if key in size:
            return size[key]
        if key in on_path:
            raise UserError("recursive YAML alias: a value cannot contain itself", _loc(filename, parent))
        total = 1
        if not isinstance(node, ScalarNode):
            on_path.add(key)
            children = node.value if isinstance(node, SequenceNode) else \
                [n for pair in node.value for n in pair]
            for child in children:
                total += count(child, node)
                if total > MAX_NODES:
                    raise UserError(f"the YAML aliases ('*name') and merges ('<<') here expand to more "
                                    f"than {MAX_NODES} values", _loc(filename, child))
            on_path.discard(key)
        size[key] = total
        return total

    count(root, root)


def _mark(filename: str, mark) -> Location:
    return Location(filename, mark.line + 1, mark.column + 1)


def _loc(filename: str, node: Node) -> Location:
    return _mark(filename, node.start_mark)


def describe(node: Node) -> str:
    """How a node reads in a message: 'a mapping', 'a list', 'nothing' or its short text."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return "nothing" if node.tag.endswith(":null") else repr(short(node.value))


def short(s: str, n: int = 40) -> str:
    """``s`` on one line, cut to ``n`` characters."""
    s = " ".join(s.split())
    return s if len(s) <= n else s[:n - 3] + "..."


def pairs(node: MappingNode) -> list[tuple[ScalarNode, Node]]:
    """A mapping's (key, value) nodes with ``<<`` merges expanded; a key's later
    duplicates (reported by the scan) and complex keys are dropped."""
    seen: set[str] = set()
    own, merged = [], []
    for k, v in node.value:
        if k.tag == MERGE_TAG:
            for m in v.value if isinstance(v, SequenceNode) else [v]:
                if isinstance(m, MappingNode):
                    merged += pairs(m)
        elif isinstance(k, ScalarNode) and k.value not in seen:
            seen.add(k.value)
            own.append((k, v))
    for k, v in merged:
        if k.value not in seen:
            seen.add(k.value)
            own.append((k, v))
    return own


def child(node: Node, step: str | int) -> tuple[Node | None, Node] | None:
    """(key node, value node) of ``step`` (a mapping key or list index) under ``node``."""
    if isinstance(node, MappingNode):
        return next(((k, v) for k, v in pairs(node) if k.value == str(step)), None)
    if isinstance(node, SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
        return None, node.value[step]
    return None


def locate(filename: str, root: Node | None, path: Iterable[str | int], key: bool = False) -> Location:
    """Position of the value at ``path`` under ``root``.

    Scalars are located at the value, collections at their key (``key=True`` always
    gives the key).  A missing path gives the nearest existing ancestor."""
    node, key_node = root, None
    if node is None:
        return Location(filename)
    for step in path:
        found = child(node, step)
        if found is None:
            return _loc(filename, key_node or node)
        key_node, node = found
    if key_node is not None and (key or not isinstance(node, ScalarNode)):
        return _loc(filename, key_node)
    return _loc(filename, node)


def suggest(word: str, options: Iterable[str]) -> str:
    """' (did you mean 'x'?)' or ''; looks among at most MAX_CANDIDATES options
    (of a longer list, the first ones of a similar length), so its cost is bounded."""
    options = options if isinstance(options, (list, tuple, dict, set, frozenset)) else list(options)
    if len(options) <= MAX_CANDIDATES:
        near = list(options)
    else:
        near = []
        for option in options:
            if abs(len(option) - len(word)) <= 2:
                near.append(option)
                if len(near) >= MAX_CANDIDATES:
                    break
    close = difflib.get_close_matches(word, near, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def capped(errors: list[UserError], total: int, filename: str) -> list[UserError]:
    """Sorted by position, the first MAX_ERRORS, then one line counting the rest."""
    unique = list({str(e): e for e in errors}.values())
    unique.sort(key=lambda e: (e.where.line or 0, e.where.column or 0) if e.where else (0, 0))
    shown = unique[:MAX_ERRORS]
    hidden = total - len(errors) + len(unique) - len(shown)
    if hidden > 0:
        shown.append(UserError(f"and {hidden} more error{'s' * (hidden > 1)}", Location(filename)))
    return shown


# ----------------------------------------------------------------- checking values

class Invalid(Exception):
    """An error has been recorded; skip the value that caused it."""


class Fields(dict):
    """key -> (key node, value node) of one checked mapping."""

    def v(self, key: str) -> Node | None:
        return self[key][1] if key in self else None


#: a plain scalar YAML 1.1 leaves as text but JSON (and YAML 1.2) read as a number: 1e-3, -2E5
_EXPONENT_NUMBER = re.compile(r"[-+]?(0|[1-9][0-9]*)(\.[0-9]*)?[eE][+-]?[0-9]+")


class Reader:
    """Collects every error while checking values of a composed YAML tree.

    Value checks take a node and a ``what`` (how the value is named in messages);
    each returns the value or records an error and raises :class:`Invalid`.
    ``ok(check, node, ...)`` runs a check and turns Invalid into a default.
    """

    def __init__(self, filename: str, text: str = ""):
        self.file = filename
        self.lines = re.split("\r\n|[\n\r\x85\u2028\u2029]", text)
        self.errors: list[UserError] = []
        self.n_errors = 0
        self.scalars: dict[int, Any] = {}   # id(ScalarNode) -> constructed value
        self._scanned: set[int] = set()

    # --- error plumbing
    def at(self, node: Node) -> Location:
        return _loc(self.file, node)

    def error(self, node: Node | Location, message: str) -> None:
        self.n_errors += 1
        if len(self.errors) < 4 * MAX_ERRORS:      # enough to sort and de-duplicate
            self.errors.append(UserError(message, node if isinstance(node, Location) else self.at(node)))

    def fail(self, node: Node, message: str):
        self.error(node, message)
        raise Invalid

    def ok(self, check: Callable, node: Node | None, *args, default=None, **kwargs):
        """``check(node, *args, **kwargs)``, or ``default`` if the node is absent or invalid."""
        if node is None:
            return default
        try:
            return check(node, *args, **kwargs)
        except Invalid:
            return default

    def suggest(self, word: str, options: Iterable[str]) -> str:
        """A suggestion, or '' once enough errors are recorded (they are not all shown)."""
        return "" if self.n_errors >= MAX_ERRORS else suggest(word, options)

    def report(self) -> list[UserError]:
        """The errors to show: sorted, de-duplicated, capped."""
        return capped(self.errors, self.n_errors, self.file) if self.errors else []

    # --- whole-tree scan: tags, scalar values, duplicate keys, merges
    def scan(self, node: Node) -> None:
        """Check tags, scalar values and keys of every node once (``compose`` ruled out cycles)."""
        todo = [node]
        while todo:
            node = todo.pop()
            if id(node) in self._scanned:
                continue
            self._scanned.add(id(node))
            if not node.tag.startswith("tag:yaml.org,2002:"):
                self.error(node, f"unsupported YAML tag '{short(node.tag)}'")
            if isinstance(node, ScalarNode):
                self._construct(node)
            elif isinstance(node, SequenceNode):
                todo.extend(reversed(node.value))
            else:
                self._scan_keys(node, todo)

    def _construct(self, node: ScalarNode) -> None:
        try:
            value = _CONSTRUCT[node.tag](_CONSTRUCTOR, node)
        except Exception:  # unknown tag or e.g. `!!int abc`
            value = node.value
            if node.tag.startswith("tag:yaml.org,2002:"):
                self.error(node, f"{short(node.value)!r} is not a valid {node.tag.split(':')[-1]}")
        if isinstance(value, str) and node.style is None and _EXPONENT_NUMBER.fullmatch(value) \
                and math.isfinite(float(value)):
            value = float(value)         # 1e-3: a number in JSON and YAML 1.2; YAML 1.1 wants a dot
        self.scalars[id(node)] = value

    def _scan_keys(self, node: MappingNode, todo: list) -> None:
        first: dict[str, ScalarNode] = {}
        for k, v in node.value:
            if k.tag == MERGE_TAG:
                items = v.value if isinstance(v, SequenceNode) else [v]
                if not all(isinstance(m, MappingNode) for m in items):
                    self.error(v, "'<<' (merge) needs a mapping or a list of mappings")
            elif not isinstance(k, ScalarNode):
                self.error(k, "keys must be plain words, not lists or mappings")
            elif k.value in first:
                self.error(k, f"duplicate key '{short(k.value)}' "
                              f"(first defined at line {first[k.value].start_mark.line + 1})")
            else:
                first[k.value] = k
            if k.tag != MERGE_TAG:
                todo.append(k)
            todo.append(v)

    # --- value checks
    def scalar(self, node: Node, what: str) -> Any:
        if not isinstance(node, ScalarNode):
            self.fail(node, f"{what} must be a single value, found {describe(node)}")
        return self.scalars.get(id(node), node.value)

    def is_null(self, node: Node) -> bool:
        return isinstance(node, ScalarNode) and self.scalars.get(id(node), "") is None

    def mapping(self, node: Node, what: str) -> list[tuple[ScalarNode, Node]]:
        """Pairs of a mapping; null counts as empty."""
        if self.is_null(node):
            return []
        if not isinstance(node, MappingNode):
            self.fail(node, f"{what} must be a mapping (key: value), found {describe(node)}")
        return pairs(node)

    def sequence(self, node: Node, what: str, limit: int | None = None) -> list[Node]:
        """Items of a list (at most ``limit``); null counts as empty."""
        if self.is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            self.fail(node, f"{what} must be a list, found {describe(node)}")
        if limit is not None and len(node.value) > limit:
            self.fail(node, f"{what} has {len(node.value)} entries; at most {limit}")
        return node.value

    def fields(self, node: Node, what: str, table: dict[str, bool],
               elsewhere: Callable[[str], str | None] = lambda key: None) -> Fields:
        """Check a mapping's keys against ``table`` ({key: required?}); an optional
        key with an empty (null) value counts as absent."""
        found = Fields()
        for k, v in self.mapping(node, what):
            if k.value in table and not table[k.value] and self.is_null(v):
                continue
            if k.value in table:
                found[k.value] = (k, v)
            else:
                self.error(k, elsewhere(k.value) or
                           f"unknown key '{short(k.value)}' in {what}{self.suggest(k.value, table)}")
        missing = [key for key, required in table.items() if required and key not in found]
        if missing:
            self.error(node, f"{what} is missing required key{'s' * (len(missing) > 1)} "
                             + ", ".join(f"'{m}'" for m in missing))
        return found

    def text(self, node: Node, what: str) -> str:
        """Free text; a number or date is kept as written."""
        value = self.scalar(node, what)
        if value is None:
            self.fail(node, f"{what} must be text, found nothing")
        return value if isinstance(value, str) else node.value

    def integer(self, node: Node, what: str, lo: int, hi: int | None = None) -> int:
        """An integer in [lo, hi]."""
        value = self.scalar(node, what)
        if not isinstance(value, int) or isinstance(value, bool) or value < lo:
            self.fail(node, f"{what} must be an integer >= {lo}, found {describe(node)}")
        if hi is not None and value > hi:
            self.fail(node, f"{what} = {short(node.value)} is too large; at most {hi}")
        return value

    def number(self, node: Node, what: str, lo: float = -math.inf, hi: float = math.inf, *,
               lo_open: bool = False, hi_open: bool = False) -> float:
        """A finite number within the bounds (each closed unless ``*_open``)."""
        value = self.scalar(node, what)
        ok = (is_number(value) and math.isfinite(value)
              and (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi))
        if not ok:
            self.fail(node, f"{what} must be a number {_bounds(lo, hi, lo_open, hi_open)}, "
                            f"found {describe(node)}")
        return float(value)

    def choice(self, node: Node, what: str, options) -> str:
        value = self.scalar(node, what)
        if value not in options:
            word = str(node.value)
            self.fail(node, f"{what} must be one of {', '.join(options)}; "
                            f"found '{short(word)}'{self.suggest(word, options)}")
        return value

    def flag(self, node: Node, what: str) -> bool:
        value = self.scalar(node, what)
        if not isinstance(value, bool):
            self.fail(node, f"{what} must be true or false, found {describe(node)}")
        return value

    def plain(self, node: Node) -> Any:
        """Plain Python data of a subtree (``compose`` has bounded its expansion)."""
        if isinstance(node, ScalarNode):
            return self.scalars.get(id(node), node.value)
        if isinstance(node, SequenceNode):
            return [self.plain(item) for item in node.value]
        return {self.scalars.get(id(k), k.value): self.plain(v) for k, v in pairs(node)}


def _bounds(lo: float, hi: float, lo_open: bool, hi_open: bool) -> str:
    if hi == math.inf:
        return "(finite)" if lo == -math.inf else f"{'>' if lo_open else '≥'} {lo:g}"
    if lo == -math.inf:
        return f"{'<' if hi_open else '≤'} {hi:g}"
    if not (lo_open or hi_open):
        return f"between {lo:g} and {hi:g}"
    return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
