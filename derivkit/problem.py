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

Limits, on top of the YAML reader's (``derivkit.yamlread``: file size, values, depth,
alias expansion): at most MAX_DIM_NAMES dims, MAX_SYMBOLS symbols, MAX_NODES forward
nodes and MAX_QUESTIONS questions; dims at most MAX_DIM.  The ``check:`` section is
checked by ``derivkit.checkspec`` into ``Problem.settings``.

:func:`validate_file` runs every structural check (this schema and the graph built from
it) and returns the errors: what ``derivkit validate`` prints.

Editors can check files against ``problem.schema.json`` (next to this module),
e.g. with the YAML language server's ``# yaml-language-server: $schema=...`` line.
"""
from __future__ import annotations

import keyword
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from derivkit import yamlread
from derivkit.checkspec import Settings, read_check
from derivkit.errors import Location, UserError, UserErrors
from derivkit.layout import DENOMINATOR, LAYOUTS
from derivkit.ops import FUNCTIONS, reserved_names
from derivkit.yamlread import Fields, Invalid, Reader, child, describe, is_number, short

MAX_BYTES = yamlread.MAX_BYTES
MAX_DIM = 64               # a dim: the small sizes of symbolic verification
MAX_DIM_NAMES = 100
MAX_SYMBOLS = 1000
MAX_NODES = 100            # forward entries: solve's cost grows fast with depth (a 200-node chain takes ~15 s)
MAX_QUESTIONS = 1000
MAX_CHOICE_VALUES = 20     # values of one choice (each is a network trained in a sweep)
RESERVED = reserved_names()
ROLES = ("input", "target", "param")
TARGET_KINDS = ("onehot", "class", "binary", "real")
AXES = ("row", "col")

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
PROBLEM_ID_RE = re.compile(r"[A-Za-z0-9_.-]+\Z")

# section -> {key: required?}
TOP_KEYS = {"id": True, "title": False, "description": False, "dims": False, "symbols": True,
            "forward": False, "loss": True, "questions": False, "check": False,
            "latex": False, "aliases": False, "layout": False, "choices": False}
SYMBOL_KEYS = {"shape": True, "role": True, "kind": False, "values": False}
QUESTION_COMMON = {"id": True, "kind": True, "points": False, "prompt": False,
                   "partial": False, "allow": False, "index": False, "vars": False,
                   "layout": False}
# question kind -> (required keys, optional keys) beyond QUESTION_COMMON
QUESTION_KINDS = {
    "grad": (("wrt",), ("using",)),
    "jacobian": (("of", "wrt"), ("using",)),
    "identity": (("lhs", "rhs"), ()),
    "limit": (("var", "to"), ("of", "expr", "subs")),
    "forward": (("of",), ()),
}
EXPR_KEYS = ("wrt", "of", "lhs", "rhs", "expr", "var", "to")
#: what a choice may name as a function: the registry's differentiable elementwise functions
CHOICE_FUNCTIONS = tuple(name for name, op in FUNCTIONS.items() if op.elementwise and op.differentiable)

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
    layout: str | None = None              # None: the problem's layout
    using: list[Text] | None = None        # the names the reference may be written in
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
    check: dict | None = None              # the check: section as plain data
    latex: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, list[str]] = field(default_factory=dict)
    description: str | None = None
    settings: Settings | None = None       # the check: section, checked and typed
    layout: str = "denominator"            # how derivatives of a scalar are written (derivkit.layout)
    #: the choices: section: name -> its values (functions or node/leaf names), the first the default
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _root: Node | None = field(default=None, repr=False, compare=False)

    @property
    def default_choices(self) -> dict[str, str]:
        """Each choice at its first value: the network that solve, sheets and grading use."""
        return {name: values[0] for name, values in self.choices.items()}

    def locate(self, *path: str | int, key: bool = False) -> Location:
        """Position of the value at ``path`` (mapping keys / list indices).

        Scalars are located at the value, collections at their key (``key=True``
        always gives the key).  A missing path gives the nearest existing
        ancestor; without a parsed file, ``Location(path)``.
        """
        return yamlread.locate(self.path, self._root, path, key)


def load_problem(path: str | Path) -> Problem:
    """Read, parse and structurally validate the problem file at ``path``."""
    return parse_problem(yamlread.read_text(path, "problem file"), str(path))


def parse_problem(text: str, filename: str) -> Problem:
    """Parse problem-file ``text``; ``filename`` is used in error locations."""
    root = yamlread.compose(text, filename, "problem file")
    if root is None:
        raise UserError("the problem file is empty; it needs at least id:, symbols: and loss:",
                        Location(filename, 1, 1))
    if not isinstance(root, MappingNode):
        raise UserError("the top level of a problem file must be a mapping (id:, symbols:, "
                        f"loss:, ...), found {describe(root)}", yamlread.locate(filename, root, ()))
    reader = _ProblemReader(filename, text)
    reader.scan(root)
    problem = reader.problem(root)
    errors = reader.report()
    if errors:
        raise UserErrors(errors)
    return problem


def validate_file(path: str | Path) -> list[UserError]:
    """Every structural error of the problem file at ``path`` (none: it is valid).

    Runs the schema (with ``check:``), builds the graph (names, shapes, indices), checks
    every question's targets and builds the network of every value of every choice: all
    that ``solve`` (or training a sweep) would reject for structure."""
    from derivkit.graph import build_graph    # the graph and the questions are built on Problem
    from derivkit.questions import validate_questions
    from derivkit.variants import choice_errors

    try:
        g = build_graph(load_problem(path))
        return validate_questions(g) + choice_errors(g)
    except UserErrors as exc:
        return list(exc.errors)
    except UserError as exc:
        return [exc]


# ----------------------------------------------------------------- checking

class _ProblemReader(Reader):
    """The problem schema: builds the dataclasses, collecting every error."""

    def name(self, key: Node, what: str) -> str:
        """A key used as a name: an identifier, not a keyword or function name."""
        name = key.value
        if not NAME_RE.match(name):
            self.fail(key, f"{what} '{short(name)}' is not a valid name "
                           "(letters, digits and _, not starting with a digit)")
        if keyword.iskeyword(name):
            self.fail(key, f"{what} '{name}' is a Python keyword and cannot be a name")
        if name in RESERVED:
            self.fail(key, f"{what} '{name}' is reserved ("
                           + ("the transpose" if name == "T" else "a function of the expression language")
                           + "); choose another name")
        return name

    def expr(self, node: Node, what: str) -> Text:
        """An expression: a string, or a number (kept as its string form); a YAML
        1.1 boolean word (``on``, ``no``) is kept as written."""
        value = self.scalar(node, what)
        if isinstance(value, bool):
            value = node.value
        if isinstance(value, float) and math.isinf(value):
            return Text("oo" if value > 0 else "-oo", self.at(node))
        if is_number(value) and not math.isnan(value):
            return Text(str(value), self.at(node))
        if not isinstance(value, str):
            self.fail(node, f"{what} must be an expression (a string or a number), "
                            f"found {describe(node)}")
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
            self.fail(node, f"{what} must be a positive integer, found {describe(node)}")
        if value > MAX_DIM:
            self.fail(node, f"{what} = {value} is too large: dims are the small sizes used for "
                            f"symbolic verification; keep them ≤ {MAX_DIM} "
                            "(training sizes go under check.dims)")
        return value

    def shape(self, node: Node, what: str, dims: set[str]) -> tuple:
        """[] scalar, [n] vector, [m, n] matrix; entries are dims names or sizes."""
        if not isinstance(node, SequenceNode) or len(node.value) > 2:
            found = f"{len(node.value)} entries" if isinstance(node, SequenceNode) else describe(node)
            self.fail(node, f"{what} must be a list of at most 2 entries ([] scalar, [n] vector, "
                            f"[m, n] matrix), found {found}")
        shape = []
        for item in node.value:
            value = self.scalar(item, f"{what} entry")
            if isinstance(item, ScalarNode) and item.value in dims:   # a name as written
                shape.append(item.value)
            elif isinstance(value, str):
                if value not in dims:
                    self.fail(item, f"{what} uses '{short(value)}', which is not declared "
                                    f"under dims{self.suggest(value, dims)}")
                shape.append(value)
            else:
                shape.append(self.size(item, f"{what} entry"))
        return tuple(shape)

    def limited(self, node: Node, what: str, limit: int) -> list[tuple[ScalarNode, Node]]:
        """Pairs of a mapping of at most ``limit`` entries."""
        found = self.mapping(node, what)
        if len(found) > limit:
            self.fail(node, f"{what} has {len(found)} entries; at most {limit}")
        return found

    # --- sections
    def problem(self, root: MappingNode) -> Problem | None:
        top = self.fields(root, "the problem file", TOP_KEYS,
                          lambda key: f"unknown key '{short(key)}'{self.suggest(key, TOP_KEYS)}")
        pid = self.ok(self.problem_id, top.v("id"))
        title = self.ok(self.text, top.v("title"), "title", default=pid)
        description = self.ok(self.text, top.v("description"), "description")
        dims, dim_names = self.dims(top.v("dims"))
        symbols = self.symbols(top["symbols"], dim_names) if "symbols" in top else {}
        known = {name: spec.where for name, spec in symbols.items()}
        forward = self.forward(top.v("forward"), known)
        loss = self.loss(top["loss"], known) if "loss" in top else None
        questions = self.questions(top.v("questions"), dim_names)
        taken = {**known, **dict.fromkeys(dim_names)}
        values = [*symbols, *(n.name for n in forward)]
        choices = self.ok(self.choices, top.v("choices"), taken, values, default=None)
        check, settings = None, None
        if self.ok(self.mapping, top.v("check"), "check") is not None:
            check = self.plain(top.v("check"))
            # a choices: section with a mistake (reported there) still declares its names: no
            # second error for sweeping them
            node = top.v("choices")
            declared = {k.value: () for k, _ in node.value} if isinstance(node, MappingNode) else {}
            declared.update(choices or {})
            settings = read_check(self, top.v("check"), dim_names, _data_dims(symbols),
                                  Path(self.file).parent, top["check"][0], choices=declared)
        choices = choices or {}
        latex = self.ok(self.names_to(self.text), top.v("latex"), "latex", known, default={})
        aliases = self.ok(self.names_to(self.alias_list), top.v("aliases"), "aliases", known,
                          default={})
        layout = self.ok(self.choice, top.v("layout"), "layout", LAYOUTS, default=DENOMINATOR)
        if self.n_errors:
            return None
        return Problem(self.file, pid, title, dims, symbols, forward, loss, questions, check,
                       latex, aliases, description, settings, layout=layout, choices=choices, _root=root)

    def problem_id(self, node: Node) -> str:
        value = self.scalar(node, "id")
        if value is None or not PROBLEM_ID_RE.match(node.value):
            self.fail(node, f"id must be a word of letters, digits, '_', '.', '-' "
                            f"(e.g. mlp-sigmoid-ce), found {describe(node)}")
        return node.value

    def dims(self, node: Node | None) -> tuple[dict[str, int], set[str]]:
        dims, names = {}, set()
        for k, v in self.ok(self.limited, node, "dims", MAX_DIM_NAMES, default=[]):
            name = self.ok(self.name, k, "dim")
            if name is not None:
                names.add(name)
                size = self.ok(self.size, v, f"dims '{name}'")
                if size is not None:
                    dims[name] = size
        return dims, names

    def symbols(self, entry: tuple[Node, Node], dim_names: set[str]) -> dict[str, SymbolSpec]:
        symbols = {}
        pairs = self.ok(self.limited, entry[1], "symbols", MAX_SYMBOLS, default=None)
        if pairs == []:
            self.error(entry[0], "symbols must declare at least one leaf, "
                                 "e.g. x: {shape: [D], role: input}")
        for k, v in pairs or []:
            name = self.ok(self.name, k, "symbol")
            if name is None:
                continue
            what = f"symbol '{name}'"
            f = self.ok(self.fields, v, what, SYMBOL_KEYS, default=Fields())
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
        if not items or not all(is_number(n) and math.isfinite(n) for n in numbers):
            self.fail(node, f"{what} must be a non-empty list of finite numbers, e.g. [0, 1]")
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
            for item in self.ok(self.sequence, node, "forward", MAX_NODES, default=[]):
                entry = self.ok(self.mapping, item, "a forward entry", default=[])
                if len(entry) != 1:
                    self.error(item, "each forward list entry must be one 'name: expression' "
                                     f"pair, found {len(entry)}")
                pairs += entry[:1]
        else:
            pairs = self.ok(self.limited, node, "forward", MAX_NODES, default=[])
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
            self.error(node, f"{hint}; found {describe(node)}")
            return None
        pairs = self.mapping(node, "loss")
        if not pairs:
            self.error(key, f"{hint}; found none")
            return None
        for extra, _ in pairs[1:]:
            self.error(extra, f"loss must have exactly one entry; '{short(extra.value)}' is a "
                              "second one (define intermediate values under forward)")
        k, v = pairs[0]
        name = self.ok(self.node_name, k, "loss", known)
        expr = self.ok(self.expr, v, f"loss '{k.value}'")
        return NodeSpec(name, expr, self.at(k)) if name and expr else None

    def choices(self, node: Node, taken: dict, names: list[str]) -> dict[str, tuple[str, ...]]:
        """``name: [value, ...]``: a name not in ``taken``, 2..MAX_CHOICE_VALUES distinct
        values, all functions (CHOICE_FUNCTIONS) or all forward nodes / leaves (``names``)."""
        out = {}
        for k, v in self.mapping(node, "choices"):
            name = self.ok(self.name, k, "choice")
            if name is None:
                continue
            if name in taken:
                self.error(k, f"choice '{name}' is already a symbol, node or size name; "
                              "a choice needs a name of its own (e.g. act, last)")
                continue
            values = self.ok(self.choice_values, v, f"choice '{name}'", names)
            if values is not None:
                out[name] = values
        return out

    def choice_values(self, node: Node, what: str, names: list[str]) -> tuple[str, ...]:
        items = self.sequence(node, what, MAX_CHOICE_VALUES)
        if len(items) < 2:
            self.fail(node, f"{what} needs a list of 2 to {MAX_CHOICE_VALUES} values, the first the "
                            "default, e.g. [sigmoid, relu] or [h1, h2]")
        values, kinds = [], set()
        for item in items:
            self.scalar(item, f"{what} value")
            word = item.value                              # as written, like names
            if word in values:
                self.fail(item, f"{what} lists '{short(word)}' twice")
            if word in CHOICE_FUNCTIONS:
                kinds.add("function")
            elif word in names:
                kinds.add("name")
            elif word in FUNCTIONS:
                self.fail(item, f"{what}: '{word}' is not a differentiable elementwise function, so a "
                                f"network using it cannot be trained (those that are: {', '.join(CHOICE_FUNCTIONS)})")
            else:
                hint = self.suggest(word, [*CHOICE_FUNCTIONS, *names])
                self.fail(item, f"{what}: '{short(word)}' is neither an elementwise function "
                                f"({', '.join(CHOICE_FUNCTIONS)}) nor a forward node or leaf{hint}")
            if len(kinds) > 1:
                self.fail(item, f"{what} mixes functions and names ('{short(word)}'); its values are "
                                "all functions (used as act(z)) or all node/leaf names (used as last)")
            values.append(word)
        return tuple(values)

    def questions(self, node: Node | None, dim_names: set[str]) -> list[QuestionSpec]:
        questions: list[QuestionSpec] = []
        first_at: dict[str, Location] = {}
        limit_refs = []
        for item in self.ok(self.sequence, node, "questions", MAX_QUESTIONS, default=[]):
            q = self.ok(self.question, item, dim_names)
            if q is None:
                continue
            if q.id in first_at:
                self.error(child(item, "id")[1], f"duplicate question id '{q.id}' "
                                                  f"(first at line {first_at[q.id].line})")
                continue
            first_at[q.id] = q.where
            questions.append(q)
            if q.kind == "limit" and q.of is not None:
                limit_refs.append((q, child(item, "of")[1]))
        for q, of_node in limit_refs:
            if q.of.value not in first_at or q.of.value == q.id:
                others = [i for i in first_at if i != q.id]
                self.error(of_node, f"question '{q.id}': of must be the id of another question, "
                                    f"found '{short(q.of.value)}'{self.suggest(q.of.value, others)}")
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
            raise Invalid
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
        q.layout = self.ok(self.choice, f.v("layout"), f"{what} layout", LAYOUTS)
        if "using" in f:
            q.using = self.ok(self.name_list, f.v("using"), f"{what} using", default=None)
        return q

    def name_list(self, node: Node, what: str) -> list[Text]:
        """A non-empty list of names (leaves, nodes or question ids), each with its position."""
        items = self.sequence(node, what)
        if not items:
            self.fail(node, f"{what} must list at least one name, e.g. [x, W2, dl_dyhat]")
        out = []
        for item in items:
            value = self.scalar(item, f"{what} entry")
            if not isinstance(value, str) or not NAME_RE.match(item.value):
                self.fail(item, f"{what} entries must be names, found {describe(item)}")
            out.append(Text(item.value, self.at(item)))
        return out

    def question_id(self, node: Node) -> str:
        self.scalar(node, "question id")
        if not NAME_RE.match(node.value):   # as written, like names
            self.fail(node, "question id must be a name of letters, digits and _ "
                            f"(e.g. dl_dV), found {describe(node)}")
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
                    self.error(k, f"{what}: '{short(k.value)}' is not a declared symbol or node"
                                  f"{self.suggest(k.value, declared)}")
                    continue
                name = k.value if any_key or declared is not None else self.ok(self.name, k, f"{what} name")
                value = self.ok(check, v, f"{what} '{short(k.value)}'", *args)
                if name is not None and value is not None:
                    out[name] = value
            return out
        return run


def _data_dims(symbols: dict[str, SymbolSpec]) -> set[str]:
    """Size names in the shapes of the input and target leaves: the data decides them."""
    return {d for spec in symbols.values() if spec.role in ("input", "target")
            for d in spec.shape or () if isinstance(d, str)}
