"""Load a problem file (contract section 2) and check its structure.

``load_problem(path)`` / ``parse_problem(text, filename)`` return a typed
:class:`Problem` or raise :class:`UserError` (the file cannot be read as YAML)
or :class:`UserErrors` (every structural mistake found, sorted by position).
What is *inside* expressions (names, shapes) is the engine's job; it gets every
expression as a :class:`Text` that knows where its first character is.

Positions (1-based line and column, as in ``Location``):

* an expression's ``Text.where`` is the position of ``Text.value[0]``: the
  scalar's start for plain scalars, one column after the quote for quoted ones.
  Offsets inside the value stay exact on the first line, except after escape
  sequences in double-quoted strings (``"\\\\hat"`` is 6 characters in the file,
  5 in the value).  For block scalars (``|``, ``>``) the value is stripped of
  surrounding whitespace and ``where`` is its first non-blank character, on a
  line after the indicator.  Numbers (``subs: {y: 1}``) become their string form.
* a mistake in a key (unknown, duplicate, bad name) is reported at the key, a
  mistake in a value at the value, a missing key at the mapping that lacks it.
* keys are names *as written*: ``no:`` is the name "no", not false.

Editors can check files against ``problem.schema.json`` (next to this module),
e.g. with the YAML language server's ``# yaml-language-server: $schema=...`` line.
"""
from __future__ import annotations

import difflib
import keyword
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from derivkit.errors import Location, UserError, UserErrors
from derivkit.ops import reserved_names

MAX_BYTES = 1024 * 1024
MAX_DIM = 64
RESERVED = reserved_names()
ROLES = ("input", "target", "param")
TARGET_KINDS = ("onehot", "class", "binary", "real")
AXES = ("row", "col")

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
PROBLEM_ID_RE = re.compile(r"[A-Za-z0-9_.-]+\Z")

# section -> {key: required?}
TOP_KEYS = {"id": True, "title": False, "description": False, "dims": False, "symbols": True,
            "forward": False, "loss": True, "questions": False, "check": False,
            "latex": False, "aliases": False}
SYMBOL_KEYS = {"shape": True, "role": True, "kind": False, "values": False}
QUESTION_COMMON = {"id": True, "kind": True, "points": False, "prompt": False,
                   "partial": False, "allow": False, "index": False, "vars": False}
# question kind -> (required keys, optional keys) beyond QUESTION_COMMON
QUESTION_KINDS = {
    "grad": (("wrt",), ()),
    "jacobian": (("of", "wrt"), ()),
    "identity": (("lhs", "rhs"), ()),
    "limit": (("var", "to"), ("of", "expr", "subs")),
    "forward": (("of",), ()),
}
EXPR_KEYS = ("wrt", "of", "lhs", "rhs", "expr", "var", "to")

_MERGE = "tag:yaml.org,2002:merge"
_CONSTRUCT = yaml.SafeLoader.yaml_constructors
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


@dataclass(frozen=True)
class Text:
    """An expression string and the position of its first character."""

    value: str
    where: Location


@dataclass
class SymbolSpec:
    """One leaf: shape entries are dims names or positive ints; () is a scalar."""

    name: str
    shape: tuple[str | int, ...]
    role: str
    kind: str | None = None
    values: tuple | None = None
    where: Location = Location("<problem>")


@dataclass
class NodeSpec:
    """One forward entry, or the loss."""

    name: str
    expr: Text
    where: Location = Location("<problem>")


@dataclass
class QuestionSpec:
    """One question; which fields are set depends on ``kind``."""

    id: str
    kind: str
    wrt: Text | None = None
    of: Text | None = None
    lhs: Text | None = None
    rhs: Text | None = None
    expr: Text | None = None
    var: Text | None = None
    to: Text | None = None
    subs: dict[str, Text] = field(default_factory=dict)
    vars: dict[str, tuple] = field(default_factory=dict)
    index: dict[str, str] | None = None
    points: float = 1.0
    prompt: str | None = None
    partial: dict[str, float] = field(default_factory=dict)
    allow: dict[str, bool] = field(default_factory=dict)
    where: Location = Location("<problem>")


@dataclass
class Problem:
    """A structurally valid problem file."""

    path: str
    id: str
    title: str
    dims: dict[str, int]
    symbols: dict[str, SymbolSpec]
    forward: list[NodeSpec]
    loss: NodeSpec
    questions: list[QuestionSpec]
    check: dict | None = None
    latex: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, list[str]] = field(default_factory=dict)
    description: str | None = None
    _root: Node | None = field(default=None, repr=False, compare=False)

    def locate(self, *path: str | int, key: bool = False) -> Location:
        """Position of the value at ``path`` (mapping keys / list indices).

        Scalars are located at the value, collections at their key (``key=True``
        always gives the key).  A missing path gives the nearest existing
        ancestor; without a parsed file, ``Location(path)``.
        """
        node, key_node = self._root, None
        if node is None:
            return Location(self.path)
        for step in path:
            child = _child(node, step)
            if child is None:
                return _loc(self.path, key_node or node)
            key_node, node = child
        if key_node is not None and (key or not isinstance(node, ScalarNode)):
            return _loc(self.path, key_node)
        return _loc(self.path, node)


def load_problem(path: str | Path) -> Problem:
    """Read, parse and structurally validate the problem file at ``path``."""
    name = str(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise UserError(f"cannot read problem file: {exc.strerror or exc}", Location(name)) from None
    _check_size(len(data), name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        head = data[:exc.start]
        line = head.count(b"\n") + 1
        col = len(head[head.rfind(b"\n") + 1:].decode("utf-8", "replace")) + 1
        raise UserError(f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                        "save it as UTF-8", Location(name, line, col)) from None
    return parse_problem(text, name)


def parse_problem(text: str, filename: str) -> Problem:
    """Parse problem-file ``text``; ``filename`` is used in error locations."""
    _check_size(len(text.encode("utf-8", "surrogatepass")), filename)
    root = _compose(text, filename)
    checker = _Checker(filename, text)
    try:
        checker.scan(root)
        problem = checker.problem(root)
    except RecursionError:
        raise UserError("the file is nested too deeply", Location(filename)) from None
    if checker.errors:
        unique = {str(e): e for e in checker.errors}.values()
        raise UserErrors(sorted(unique, key=lambda e: (e.where.line or 0, e.where.column or 0)))
    return problem


# ----------------------------------------------------------------- reading YAML

def _check_size(size: int, filename: str) -> None:
    if size > MAX_BYTES:
        raise UserError(f"the file is larger than 1 MB ({size} bytes); "
                        "problem files are small hand-written YAML", Location(filename))


def _compose(text: str, filename: str) -> MappingNode:
    """YAML text -> root mapping node, or a UserError with the error's position."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"YAML syntax error: {exc.problem or exc.context}"
        if exc.context and exc.problem:
            message += f" ({exc.context})"
        if "'\\t'" in message:
            message += "; indent with spaces, YAML does not allow tabs"
        where = Location(filename, mark.line + 1, mark.column + 1) if mark else Location(filename)
        raise UserError(message, where) from None
    except yaml.reader.ReaderError as exc:
        head = text[:exc.position]
        raise UserError(f"YAML syntax error: unacceptable character #x{exc.character:04x} "
                        "(control characters are not allowed)",
                        Location(filename, head.count("\n") + 1,
                                 exc.position - head.rfind("\n"))) from None
    except RecursionError:
        raise UserError("YAML syntax error: the file is nested too deeply", Location(filename)) from None
    if root is None:
        raise UserError("the problem file is empty; it needs at least id:, symbols: and loss:",
                        Location(filename, 1, 1))
    if not isinstance(root, MappingNode):
        raise UserError("the top level of a problem file must be a mapping (id:, symbols:, "
                        f"loss:, ...), found {_describe(root)}", _loc(filename, root))
    return root


def _loc(filename: str, node: Node) -> Location:
    return Location(filename, node.start_mark.line + 1, node.start_mark.column + 1)


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return "nothing" if node.tag.endswith(":null") else repr(_short(node.value))


def _short(s: str, n: int = 40) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[:n - 3] + "..."


def _pairs(node: MappingNode) -> list[tuple[ScalarNode, Node]]:
    """A mapping's (key, value) nodes with ``<<`` merges expanded; a key's later
    duplicates (reported by the scan) and complex keys are dropped."""
    seen: set[str] = set()
    own, merged = [], []
    for k, v in node.value:
        if k.tag == _MERGE:
            for m in v.value if isinstance(v, SequenceNode) else [v]:
                if isinstance(m, MappingNode):
                    merged += _pairs(m)
        elif isinstance(k, ScalarNode) and k.value not in seen:
            seen.add(k.value)
            own.append((k, v))
    for k, v in merged:
        if k.value not in seen:
            seen.add(k.value)
            own.append((k, v))
    return own


def _child(node: Node, step: str | int) -> tuple[Node | None, Node] | None:
    if isinstance(node, MappingNode):
        return next(((k, v) for k, v in _pairs(node) if k.value == str(step)), None)
    if isinstance(node, SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
        return None, node.value[step]
    return None


def _suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _Invalid(Exception):
    """An error has been recorded; skip the value that caused it."""


class _Fields(dict):
    """key -> (key node, value node) of one checked mapping."""

    def v(self, key: str) -> Node | None:
        return self[key][1] if key in self else None


# ----------------------------------------------------------------- checking

class _Checker:
    """Collects every structural error while building the dataclasses."""

    def __init__(self, filename: str, text: str):
        self.file = filename
        self.lines = re.split("\r\n|[\n\r\x85\u2028\u2029]", text)
        self.errors: list[UserError] = []
        self.scalars: dict[int, Any] = {}   # id(ScalarNode) -> constructed value
        self._scanned: set[int] = set()

    # --- error plumbing
    def at(self, node: Node) -> Location:
        return _loc(self.file, node)

    def error(self, node: Node, message: str) -> None:
        self.errors.append(UserError(message, self.at(node)))

    def fail(self, node: Node, message: str):
        self.error(node, message)
        raise _Invalid

    def ok(self, check: Callable, node: Node | None, *args, default=None):
        """``check(node, *args)``, or ``default`` if the node is absent or invalid."""
        if node is None:
            return default
        try:
            return check(node, *args)
        except _Invalid:
            return default

    # --- whole-tree scan: tags, scalar values, duplicate keys, merges, cycles
    def scan(self, node: Node, stack: frozenset = frozenset()) -> None:
        if id(node) in stack:
            raise UserErrors([UserError("recursive YAML alias: a value cannot contain itself",
                                        self.at(node))])
        if id(node) in self._scanned:
            return
        self._scanned.add(id(node))
        if not node.tag.startswith("tag:yaml.org,2002:"):
            self.error(node, f"unsupported YAML tag '{node.tag}'")
        if isinstance(node, ScalarNode):
            try:
                self.scalars[id(node)] = _CONSTRUCT[node.tag](_CONSTRUCTOR, node)
            except Exception:  # unknown tag or e.g. `!!int abc`
                self.scalars[id(node)] = node.value
                if node.tag.startswith("tag:yaml.org,2002:"):
                    self.error(node, f"{_short(node.value)!r} is not a valid {node.tag.split(':')[-1]}")
            return
        stack = stack | {id(node)}
        if isinstance(node, SequenceNode):
            for item in node.value:
                self.scan(item, stack)
            return
        first: dict[str, ScalarNode] = {}
        for k, v in node.value:
            if k.tag == _MERGE:
                items = v.value if isinstance(v, SequenceNode) else [v]
                if not all(isinstance(m, MappingNode) for m in items):
                    self.error(v, "'<<' (merge) needs a mapping or a list of mappings")
            elif not isinstance(k, ScalarNode):
                self.error(k, "keys must be plain words, not lists or mappings")
            elif k.value in first:
                self.error(k, f"duplicate key '{_short(k.value)}' "
                              f"(first defined at line {first[k.value].start_mark.line + 1})")
            else:
                first[k.value] = k
            if k.tag != _MERGE:
                self.scan(k, stack)
            self.scan(v, stack)

    # --- value checks: each returns the value or records an error and raises _Invalid
    def scalar(self, node: Node, what: str) -> Any:
        if not isinstance(node, ScalarNode):
            self.fail(node, f"{what} must be a single value, found {_describe(node)}")
        return self.scalars.get(id(node), node.value)

    def is_null(self, node: Node) -> bool:
        return isinstance(node, ScalarNode) and self.scalars.get(id(node), "") is None

    def mapping(self, node: Node, what: str) -> list[tuple[ScalarNode, Node]]:
        """Pairs of a mapping; null counts as empty."""
        if self.is_null(node):
            return []
        if not isinstance(node, MappingNode):
            self.fail(node, f"{what} must be a mapping (key: value), found {_describe(node)}")
        return _pairs(node)

    def sequence(self, node: Node, what: str) -> list[Node]:
        """Items of a list; null counts as empty."""
        if self.is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            self.fail(node, f"{what} must be a list, found {_describe(node)}")
        return node.value

    def fields(self, node: Node, what: str, table: dict[str, bool],
               elsewhere: Callable[[str], str | None] = lambda key: None) -> _Fields:
        """Check a mapping's keys against ``table`` ({key: required?}); an optional
        key with an empty (null) value counts as absent."""
        found = _Fields()
        for k, v in self.mapping(node, what):
            if k.value in table and not table[k.value] and self.is_null(v):
                continue
            if k.value in table:
                found[k.value] = (k, v)
            else:
                self.error(k, elsewhere(k.value) or
                           f"unknown key '{_short(k.value)}' in {what}{_suggest(k.value, table)}")
        missing = [key for key, required in table.items() if required and key not in found]
        if missing:
            self.error(node, f"{what} is missing required key{'s' * (len(missing) > 1)} "
                             + ", ".join(f"'{m}'" for m in missing))
        return found

    def name(self, key: Node, what: str) -> str:
        """A key used as a name: an identifier, not a keyword or function name."""
        name = key.value
        if not NAME_RE.match(name):
            self.fail(key, f"{what} '{_short(name)}' is not a valid name "
                           "(letters, digits and _, not starting with a digit)")
        if keyword.iskeyword(name):
            self.fail(key, f"{what} '{name}' is a Python keyword and cannot be a name")
        if name in RESERVED:
            self.fail(key, f"{what} '{name}' is reserved ("
                           + ("the transpose" if name == "T" else "a function of the expression language")
                           + "); choose another name")
        return name

    def text(self, node: Node, what: str) -> str:
        """Free text; a number or date is kept as written."""
        value = self.scalar(node, what)
        if value is None:
            self.fail(node, f"{what} must be text, found nothing")
        return value if isinstance(value, str) else node.value

    def expr(self, node: Node, what: str) -> Text:
        """An expression: a string, or a number (kept as its string form); a YAML
        1.1 boolean word (``on``, ``no``) is kept as written."""
        value = self.scalar(node, what)
        if isinstance(value, bool):
            value = node.value
        if isinstance(value, float) and math.isinf(value):
            return Text("oo" if value > 0 else "-oo", self.at(node))
        if _is_number(value) and not math.isnan(value):
            return Text(str(value), self.at(node))
        if not isinstance(value, str):
            self.fail(node, f"{what} must be an expression (a string or a number), "
                            f"found {_describe(node)}")
        line, col = node.start_mark.line, node.start_mark.column
        if node.style in ("'", '"'):
            col += 1
        elif node.style in ("|", ">"):
            value = value.strip()
            line, col = self.block_start(node)
        if not value.strip():
            self.fail(node, f"{what} is empty")
        return Text(value, Location(self.file, line + 1, col + 1))

    def block_start(self, node: ScalarNode) -> tuple[int, int]:
        """0-based position of the first non-blank character of a block scalar's content."""
        for i in range(node.start_mark.line + 1, min(node.end_mark.line + 1, len(self.lines))):
            stripped = self.lines[i].lstrip()
            if stripped:
                return i, len(self.lines[i]) - len(stripped)
        return node.start_mark.line + 1, 0

    def size(self, node: Node, what: str) -> int:
        """A dimension: a positive int, at most MAX_DIM."""
        value = self.scalar(node, what)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            self.fail(node, f"{what} must be a positive integer, found {_describe(node)}")
        if value > MAX_DIM:
            self.fail(node, f"{what} = {value} is too large: dims are the small sizes used for "
                            f"symbolic verification; keep them ≤ {MAX_DIM} "
                            "(training sizes go under check.dims)")
        return value

    def number(self, node: Node, what: str, lo: float, hi: float = math.inf) -> float:
        value = self.scalar(node, what)
        if not _is_number(value) or not (lo <= value <= hi) or math.isinf(value):
            bounds = f"between {lo:g} and {hi:g}" if hi < math.inf else f"≥ {lo:g}"
            self.fail(node, f"{what} must be a number {bounds}, found {_describe(node)}")
        return float(value)

    def choice(self, node: Node, what: str, options) -> str:
        value = self.scalar(node, what)
        if value not in options:
            word = str(node.value)
            self.fail(node, f"{what} must be one of {', '.join(options)}; "
                            f"found '{_short(word)}'{_suggest(word, options)}")
        return value

    def flag(self, node: Node, what: str) -> bool:
        value = self.scalar(node, what)
        if not isinstance(value, bool):
            self.fail(node, f"{what} must be true or false, found {_describe(node)}")
        return value

    def shape(self, node: Node, what: str, dims: set[str]) -> tuple:
        """[] scalar, [n] vector, [m, n] matrix; entries are dims names or sizes."""
        if not isinstance(node, SequenceNode) or len(node.value) > 2:
            found = f"{len(node.value)} entries" if isinstance(node, SequenceNode) else _describe(node)
            self.fail(node, f"{what} must be a list of at most 2 entries ([] scalar, [n] vector, "
                            f"[m, n] matrix), found {found}")
        shape = []
        for item in node.value:
            value = self.scalar(item, f"{what} entry")
            if isinstance(item, ScalarNode) and item.value in dims:   # a name as written
                shape.append(item.value)
            elif isinstance(value, str):
                if value not in dims:
                    self.fail(item, f"{what} uses '{_short(value)}', which is not declared "
                                    f"under dims{_suggest(value, dims)}")
                shape.append(value)
            else:
                shape.append(self.size(item, f"{what} entry"))
        return tuple(shape)

    def plain(self, node: Node) -> Any:
        """Plain Python data of a subtree (the scan has ruled out cycles)."""
        if isinstance(node, ScalarNode):
            return self.scalars.get(id(node), node.value)
        if isinstance(node, SequenceNode):
            return [self.plain(item) for item in node.value]
        return {self.scalars.get(id(k), k.value): self.plain(v) for k, v in _pairs(node)}

    # --- sections
    def problem(self, root: MappingNode) -> Problem | None:
        top = self.fields(root, "the problem file", TOP_KEYS,
                          lambda key: f"unknown key '{_short(key)}'{_suggest(key, TOP_KEYS)}")
        pid = self.ok(self.problem_id, top.v("id"))
        title = self.ok(self.text, top.v("title"), "title", default=pid)
        description = self.ok(self.text, top.v("description"), "description")
        dims, dim_names = self.dims(top.v("dims"))
        symbols = self.symbols(top["symbols"], dim_names) if "symbols" in top else {}
        known = {name: spec.where for name, spec in symbols.items()}
        forward = self.forward(top.v("forward"), known)
        loss = self.loss(top["loss"], known) if "loss" in top else None
        questions = self.questions(top.v("questions"), dim_names)
        check = None
        if self.ok(self.mapping, top.v("check"), "check") is not None:
            check = self.plain(top.v("check"))
        latex = self.ok(self.names_to(self.text), top.v("latex"), "latex", known, default={})
        aliases = self.ok(self.names_to(self.alias_list), top.v("aliases"), "aliases", known,
                          default={})
        if self.errors:
            return None
        return Problem(self.file, pid, title, dims, symbols, forward, loss, questions, check,
                       latex, aliases, description, root)

    def problem_id(self, node: Node) -> str:
        value = self.scalar(node, "id")
        if value is None or not PROBLEM_ID_RE.match(node.value):
            self.fail(node, f"id must be a word of letters, digits, '_', '.', '-' "
                            f"(e.g. mlp-sigmoid-ce), found {_describe(node)}")
        return node.value

    def dims(self, node: Node | None) -> tuple[dict[str, int], set[str]]:
        dims, names = {}, set()
        for k, v in self.ok(self.mapping, node, "dims", default=[]):
            name = self.ok(self.name, k, "dim")
            if name is not None:
                names.add(name)
                size = self.ok(self.size, v, f"dims '{name}'")
                if size is not None:
                    dims[name] = size
        return dims, names

    def symbols(self, entry: tuple[Node, Node], dim_names: set[str]) -> dict[str, SymbolSpec]:
        symbols = {}
        pairs = self.ok(self.mapping, entry[1], "symbols", default=None)
        if pairs == []:
            self.error(entry[0], "symbols must declare at least one leaf, "
                                 "e.g. x: {shape: [D], role: input}")
        for k, v in pairs or []:
            name = self.ok(self.name, k, "symbol")
            if name is None:
                continue
            what = f"symbol '{name}'"
            f = self.ok(self.fields, v, what, SYMBOL_KEYS, default=_Fields())
            shape = self.ok(self.shape, f.v("shape"), f"{what} shape", dim_names)
            role = self.ok(self.choice, f.v("role"), f"{what} role", ROLES)
            kind = "real" if role == "target" else None
            if "kind" in f and role not in (None, "target"):
                self.error(f["kind"][0], f"{what}: kind is only for targets, "
                                         f"but the symbol's role is {role}")
            elif "kind" in f:
                kind = self.ok(self.choice, f.v("kind"), f"{what} kind", TARGET_KINDS)
            if shape is not None:
                if kind == "class" and shape != ():
                    self.error(f.v("shape"), f"{what}: a class target holds one class index, "
                                             "so its shape must be [] (a scalar)")
                if kind == "onehot" and len(shape) != 1:
                    self.error(f.v("shape"), f"{what}: a onehot target must be a vector, "
                                             "shape [n]")
            values = None
            if "values" in f and shape not in (None, ()):
                self.error(f["values"][0], f"{what}: values are only allowed on scalars "
                                           "(shape [])")
            elif "values" in f:
                values = self.ok(self.values, f.v("values"), f"{what} values")
            symbols[name] = SymbolSpec(name, shape, role, kind, values, self.at(k))
        return symbols

    def values(self, node: Node, what: str) -> tuple:
        items = self.sequence(node, what)
        numbers = tuple(self.scalar(item, f"{what} entry") for item in items)
        if not items or not all(_is_number(n) for n in numbers):
            self.fail(node, f"{what} must be a non-empty list of numbers, e.g. [0, 1]")
        if len(set(numbers)) != len(numbers):
            self.fail(node, f"{what} must not repeat a number")
        return numbers

    def node_name(self, key: Node, what: str, known: dict[str, Location]) -> str:
        """A node or loss name: valid and not already used by a symbol or node."""
        name = self.name(key, what)
        if name in known:
            self.fail(key, f"{what} '{name}' is already declared (at line {known[name].line}); "
                           "nodes need names of their own")
        known[name] = self.at(key)
        return name

    def forward(self, node: Node | None, known: dict[str, Location]) -> list[NodeSpec]:
        """``name: expr`` mapping, or a list of one-entry mappings."""
        if isinstance(node, SequenceNode):
            pairs = []
            for item in node.value:
                entry = self.ok(self.mapping, item, "a forward entry", default=[])
                if len(entry) != 1:
                    self.error(item, "each forward list entry must be one 'name: expression' "
                                     f"pair, found {len(entry)}")
                pairs += entry[:1]
        else:
            pairs = self.ok(self.mapping, node, "forward", default=[])
        nodes = []
        for k, v in pairs:
            name = self.ok(self.node_name, k, "node", known)
            expr = self.ok(self.expr, v, f"node '{k.value}'")
            if name is not None and expr is not None:
                nodes.append(NodeSpec(name, expr, self.at(k)))
        return nodes

    def loss(self, entry: tuple[Node, Node], known: dict[str, Location]) -> NodeSpec | None:
        key, node = entry
        hint = "loss must be exactly one entry 'name: scalar expression', e.g. l: -sum(t * log(y))"
        if not isinstance(node, MappingNode) and not self.is_null(node):
            self.error(node, f"{hint}; found {_describe(node)}")
            return None
        pairs = self.mapping(node, "loss")
        if not pairs:
            self.error(key, f"{hint}; found none")
            return None
        for extra, _ in pairs[1:]:
            self.error(extra, f"loss must have exactly one entry; '{_short(extra.value)}' is a "
                              "second one (define intermediate values under forward)")
        k, v = pairs[0]
        name = self.ok(self.node_name, k, "loss", known)
        expr = self.ok(self.expr, v, f"loss '{k.value}'")
        return NodeSpec(name, expr, self.at(k)) if name and expr else None

    def questions(self, node: Node | None, dim_names: set[str]) -> list[QuestionSpec]:
        questions: list[QuestionSpec] = []
        first_at: dict[str, Location] = {}
        limit_refs = []
        for item in self.ok(self.sequence, node, "questions", default=[]):
            q = self.ok(self.question, item, dim_names)
            if q is None:
                continue
            if q.id in first_at:
                self.error(_child(item, "id")[1], f"duplicate question id '{q.id}' "
                                                  f"(first at line {first_at[q.id].line})")
                continue
            first_at[q.id] = q.where
            questions.append(q)
            if q.kind == "limit" and q.of is not None:
                limit_refs.append((q, _child(item, "of")[1]))
        for q, of_node in limit_refs:
            if q.of.value not in first_at or q.of.value == q.id:
                others = [i for i in first_at if i != q.id]
                self.error(of_node, f"question '{q.id}': of must be the id of another question, "
                                    f"found '{_short(q.of.value)}'{_suggest(q.of.value, others)}")
        return questions

    def question(self, node: Node, dim_names: set[str]) -> QuestionSpec:
        pairs = {k.value: v for k, v in self.mapping(node, "each question")}
        qid = self.ok(self.question_id, pairs.get("id"))
        what = f"question '{qid}'" if qid else "question"
        kind = self.ok(self.choice, pairs.get("kind"), f"{what} kind", tuple(QUESTION_KINDS))
        table = dict(QUESTION_COMMON)
        for k in QUESTION_KINDS if kind is None else [kind]:
            table.update({key: kind is not None for key in QUESTION_KINDS[k][0]})
            table.update({key: False for key in QUESTION_KINDS[k][1]})

        def elsewhere(key: str) -> str | None:
            users = [k for k, (req, opt) in QUESTION_KINDS.items() if key in req + opt]
            return (f"{what}: '{key}' is not used by {kind} questions (only by {', '.join(users)})"
                    if users else None)

        f = self.fields(node, what, table, elsewhere)
        if qid is None or kind is None:
            raise _Invalid
        q = QuestionSpec(qid, kind, where=self.at(node))
        for key in EXPR_KEYS:
            setattr(q, key, self.ok(self.expr, f.v(key), f"{what} {key}"))
        if kind == "limit" and ("of" in f) == ("expr" in f):
            self.error(f["expr"][0] if "expr" in f else node,
                       f"{what}: a limit takes exactly one of 'of' (another question's id) "
                       "or 'expr' (an expression)")
        q.subs = self.ok(self.names_to(self.expr), f.v("subs"), f"{what} subs", None, default={})
        q.vars = self.ok(self.names_to(self.shape), f.v("vars"), f"{what} vars", None, dim_names,
                         default={})
        q.index = self.ok(self.index, f.v("index"), f"{what} index")
        q.points = self.ok(self.number, f.v("points"), f"{what} points", 0, default=1.0)
        q.prompt = self.ok(self.text, f.v("prompt"), f"{what} prompt")
        q.partial = self.ok(self.names_to(self.number, any_key=True), f.v("partial"),
                            f"{what} partial", None, 0, 1, default={})
        q.allow = self.ok(self.names_to(self.flag, any_key=True), f.v("allow"), f"{what} allow",
                          None, default={})
        return q

    def question_id(self, node: Node) -> str:
        self.scalar(node, "question id")
        if not NAME_RE.match(node.value):   # as written, like names
            self.fail(node, "question id must be a name of letters, digits and _ "
                            f"(e.g. dl_dV), found {_describe(node)}")
        return node.value

    def index(self, node: Node, what: str) -> dict[str, str]:
        index = self.names_to(self.choice)(node, what, None, AXES)
        for axis in AXES:
            if list(index.values()).count(axis) > 1:
                self.fail(node, f"{what} names more than one '{axis}' index")
        return index

    def alias_list(self, node: Node, what: str) -> list[str]:
        items = [node] if isinstance(node, ScalarNode) else self.sequence(node, what)
        return [self.text(item, f"{what} entry") for item in items]

    def names_to(self, check: Callable, any_key: bool = False) -> Callable:
        """A checker for mappings ``name -> check(value)``; with ``declared``, names
        must be among them; with ``any_key``, keys are free words."""
        def run(node: Node, what: str, declared: dict | None, *args) -> dict:
            out = {}
            for k, v in self.mapping(node, what):
                if declared is not None and k.value not in declared:
                    self.error(k, f"{what}: '{_short(k.value)}' is not a declared symbol or node"
                                  f"{_suggest(k.value, declared)}")
                    continue
                name = k.value if any_key or declared is not None else self.ok(self.name, k, f"{what} name")
                value = self.ok(check, v, f"{what} '{_short(k.value)}'", *args)
                if name is not None and value is not None:
                    out[name] = value
            return out
        return run
