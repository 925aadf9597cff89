r"""The LaTeX reader of students' answers: tokens → a precedence parser → Expr.

Written for the answer notation of contract §3, not a general LaTeX-to-SymPy
converter; nothing is evaluated.  It builds the same :class:`~derivkit.expr.Expr`
the problem's expressions use, so the judge compares like with like.  Names
resolve through :mod:`derivkit.grade.names`, products through
:mod:`derivkit.grade.products`, spellings of functions through
:mod:`derivkit.grade.notation`.

Precedence, loosest first::

    lhs = rhs          only after the derivative being answered: the lhs is dropped
    a + b, a - b       unary minus applies to the whole product after it
    a \odot b, a * b, a / b, a \oslash b        explicit elementwise, left to right
    a b, a \cdot b, a \times b                  juxtaposition, by shapes (products.py)
    x^T, x', x^{-1}, x_j, f(x)                  postfix and application

Decisions on the notation's ambiguities:

* ``x^T``, ``x^{T}``, ``x^\top``, ``x^\intercal``, ``x'`` are transposes; ``x^T``
  is read as a power only when ``x`` is a scalar and the problem has a name ``T``.
* ``x^{(1)}`` right after a name is part of the name (``W^{(1)}``); any other
  superscript is a power, elementwise.  ``x^+`` and ``(\cdot)^+`` are the ReLU.
* ``f(x)`` is an application only for functions (``\sigma``, ``\tanh``,
  ``\mathrm{ReLU}``, ``\operatorname{softmax}``, ``\exp``, ``\log``, ``diag`` ...);
  after a name, a bracket is a product: ``h_k(1 - h_k)`` is ``h_k (1 - h_k)``.
  Functions without brackets take one factor: ``\log \hat y_j`` is ``\log(\hat y_j)``,
  ``\log 2x`` is ``\log(2) x``.
* ``\sigma'``, ``\tanh'``, ``\mathrm{ReLU}'`` are the derivative functions.
* Juxtaposition binds tighter than ``\odot``: ``\sigma'(z) \odot V^T\delta`` is
  ``\sigma'(z) ⊙ (V^T \delta)``.  If that reading does not fit the shapes, the
  whole product is read left to right (``\delta \odot \sigma'(z) x^T`` is
  ``(\delta ⊙ \sigma'(z)) x^T``).
* ``\frac{a}{b}`` and ``a / b`` divide elementwise, except
  ``\frac{\partial l}{\partial o}``, ``\frac{dl}{do}``, ``dl/do``, ``\partial l/\partial o``
  and ``\nabla_o l``, the upstream gradient ∂l/∂o (``l`` the loss or an alias).
  ``\frac{\partial l}{\partial u_j}`` is entry j of it.
* A subscript after a name is part of the name if the problem declares that
  spelling (``W_1``, ``z_1``); otherwise it indexes: ``p_j``, ``W_{jk}`` (two
  letters, two indices), ``\mathbf{w}_j`` (row j).  Indices are the question's
  free index names, indices bound by a sum, and class-index targets; literal
  numbers (``x_1``, 1-based in maths, 0-based in code) are refused.
* ``\delta_{jt}`` (two indices) is the Kronecker delta; ``\mathbb{1}[j = t]`` too.
* A bracketed comparison is an indicator: ``\mathbb{1}[z > 0]``, ``\mathbb{I}(z \ge 0)``,
  ``\mathbf{1}_{z>0}``, ``[z > 0]`` are the ReLU mask (``>`` and ``\ge`` differ only on
  the kink, a set of measure zero).
* ``\sum_{j=1}^{C} body`` and ``\sum_j body`` sum over the index (the body is the
  rest of the product; the upper limit, when given, must be the indexed axis's size);
  ``\sum`` without an index sums the entries of one factor, like a function:
  ``\sum (t \odot \log y)``, and ``\sum s x`` is ``(\sum s) x``.
* ``\begin{cases} a & j = t \\ b & \text{otherwise} \end{cases}`` is
  ``[j=t] a + (1 - [j=t]) b``; conditions must exclude each other.
* ``|x|`` is abs; ``\|x\|^2`` is ``sum(x*x)``, ``\|x\|`` its square root.
* ``e^{x}`` is ``exp(x)`` unless the problem declares ``e``.
* Words split into declared names when they are not one: ``Wx`` is ``W x``.
"""
from __future__ import annotations

from fractions import Fraction

from derivkit.errors import Location
from derivkit.expr import ONE, Expr, ShapeError, grad, make, num
from derivkit.indexform import isum, ivar
from derivkit.parse import MAX_DEPTH, MAX_LENGTH, index_sizes

from . import notation as N
from .latex_tokens import CMD, END, NUM, OP, WORD, Token, tokenize
from .names import AnswerScope, Spelling, braced_group, read_spelling
from .position import AnswerError
from .products import product_run

_OPERAND_CMDS = (set(N.FUNCTION_COMMANDS) | N.FRACTIONS | N.GREEK_NAMES | set(N.ACCENTS) | N.INDICATORS
                 | {r"\sum", r"\partial", r"\nabla", r"\delta", r"\max", r"\begin", r"\lvert",
                    r"\lVert", r"\{", r"\lbrack", r"\lparen"})


def read_latex(text: str, scope: AnswerScope, where: Location | None = None) -> Expr:
    """The expression a LaTeX answer denotes; AnswerError (a UserError) pointing into it otherwise."""
    if len(text) > MAX_LENGTH:
        raise AnswerError(f"the answer is too long ({len(text)} characters; at most {MAX_LENGTH})",
                          text, MAX_LENGTH, where)
    return _Parser(text, scope, where).answer()


class _Parser:
    def __init__(self, text: str, scope: AnswerScope, where: Location | None):
        self.text, self.a, self.where = text, scope, where
        self.toks = tokenize(text)
        self.k = 0
        self.depth = 0
        self.bound: list[str] = []           # indices of the sums around the current position
        self.bars = 0                        # open |...| groups: a '|' then closes
        self.norms = 0                       # open \|...\| groups
        self.heights: dict[int, tuple[Expr, int]] = {}

    # ------------------------------------------------------------ plumbing
    @property
    def tok(self) -> Token:
        return self.toks[self.k]

    def peek(self, n: int = 1) -> Token:
        return self.toks[min(self.k + n, len(self.toks) - 1)]

    def next(self) -> Token:
        t = self.toks[self.k]
        if t.kind != END:
            self.k += 1
        return t

    def accept(self, *texts: str) -> bool:
        if self.tok.is_(*texts):
            self.next()
            return True
        return False

    def expect(self, text: str, what: str | None = None) -> Token:
        if not self.tok.is_(text):
            self.fail(f"expected {what or repr(text)} here, found {self.describe(self.tok)}")
        return self.next()

    def describe(self, t: Token) -> str:
        return "the end of the answer" if t.kind == END else repr(t.text)

    def fail(self, message: str, pos: int | None = None):
        raise AnswerError(message, self.text, self.tok.pos if pos is None else pos, self.where)

    def build(self, op: str, *args: Expr, attr=None, pos: int | None = None) -> Expr:
        try:
            e = make(op, *args, attr=attr)
        except ShapeError as exc:
            self.fail(f"shape mismatch: {exc}", pos)
        return self.checked(e, pos)

    def checked(self, e: Expr, pos: int | None) -> Expr:
        """``e`` after checking that its tree is no deeper than MAX_DEPTH."""
        if self.height(e) > MAX_DEPTH:
            self.fail("the answer is nested too deeply", pos)
        return e

    def height(self, e: Expr) -> int:
        known = self.heights.get(id(e))
        if known is not None and known[0] is e:
            return known[1]
        h = 1 + max((self.height(a) for a in e.args), default=0) if e.args else 1
        self.heights[id(e)] = (e, h)
        return h

    def deeper(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail("the answer is nested too deeply")

    # ------------------------------------------------------------ grammar
    def answer(self) -> Expr:
        e = self.expr()
        if self.tok.is_("="):
            if not _is_derivative(e):
                self.fail("'=' may only follow the derivative being answered (∂l/∂x = ...)")
            self.next()
            e = self.expr()
        while self.tok.is_(".", ","):
            self.next()
        if self.tok.kind != END:
            self.fail(f"unexpected {self.describe(self.tok)}")
        return e

    def expr(self) -> Expr:
        self.deeper()
        try:
            pos = self.tok.pos
            if self.accept("-"):
                e = self.build("neg", self.product(), pos=pos)
            else:
                self.accept("+")
                e = self.product()
            while self.tok.is_("+", "-"):
                op = "add" if self.next().text == "+" else "sub"
                rpos = self.tok.pos
                if self.accept("-"):
                    right = self.build("neg", self.product(), pos=rpos)
                else:
                    right = self.product()
                e = self.build(op, e, right, pos=rpos)
            return e
        finally:
            self.depth -= 1

    def product(self) -> Expr:
        """A chain of factors joined by explicit elementwise operators or side by side."""
        factors = [self.operand()]
        positions = [self._start]
        ops: list[str] = []
        while True:
            t = self.tok
            if t.kind in (OP, CMD) and t.text in N.ELEMENTWISE:
                ops.append(N.ELEMENTWISE[t.text])
                self.next()
            elif t.is_(*N.JUXTAPOSE):
                ops.append("juxt")
                self.next()
            elif self.starts_operand(t):
                ops.append("juxt")
            else:
                break
            positions.append(self.tok.pos)
            factors.append(self.operand(signed=ops[-1] != "juxt" or t.is_(*N.JUXTAPOSE)))
        return self.combine(factors, ops, positions)

    def combine(self, factors: list[Expr], ops: list[str], positions: list[int]) -> Expr:
        try:
            return self.checked(_runs_first(factors, ops), positions[0])
        except ShapeError as first:
            try:
                return self.checked(_left_to_right(factors, ops), positions[0])
            except ShapeError:
                at = getattr(first, "factor", len(factors) - 1)
                self.fail(f"shape mismatch: {first}", positions[min(at, len(positions) - 1)])

    def starts_operand(self, t: Token) -> bool:
        if t.kind in (NUM, WORD):
            return True
        if t.kind == OP:
            return (t.text in ("(", "[", "{", r"\{") or (t.text == "|" and self.bars == 0)
                    or (t.text == r"\|" and self.norms == 0))
        if t.kind == CMD:
            return t.text in _OPERAND_CMDS or (t.text in N.FUNCTION_COMMANDS)
        return False

    def operand(self, signed: bool = False) -> Expr:
        self._start = self.tok.pos
        if signed and self.tok.is_("-"):
            pos = self.next().pos
            inner = self.operand()
            self._start = pos
            return self.build("neg", inner, pos=pos)
        self.deeper()
        try:
            if self.tok.is_(r"\sum"):
                return self.summation()
            start = self.tok.pos
            e = self.postfix(self.primary(), start)
            self._start = start
            return e
        finally:
            self.depth -= 1

    # ------------------------------------------------------------ postfix: ^ _ '
    def postfix(self, e: Expr, start: int) -> Expr:
        while True:
            t = self.tok
            if t.is_("'"):
                self.next()
                e = self.build("T", e, pos=t.pos)
            elif t.is_("^"):
                self.next()
                e = self.superscript(e, t.pos)
            elif t.is_("_"):
                self.next()
                e = self.subscript(e, t.pos)
            else:
                return e

    def superscript(self, e: Expr, pos: int) -> Expr:
        group = braced_group(self.toks, self.k)
        if group is None:
            self.fail("expected a superscript after '^'")
        inner, after = group
        texts = [t.text for t in inner]
        if len(inner) == 1 and (texts[0] in N.TRANSPOSE_MARKS or texts[0] in (r"\prime", "'")):
            self.k = after
            if texts[0] == "T" and e.shape == () and self.a.scope.lookup("T") is not None:
                return self.build("pow", e, self.a.scope.lookup("T"), pos=pos)
            return self.build("T", e, pos=pos)
        if texts == ["+"]:
            self.k = after
            return self.build("relu", e, pos=pos)
        exponent = self.group_or_token()
        if exponent.shape != ():
            self.fail("an exponent must be a scalar", pos)
        return self.build("pow", e, exponent, pos=pos)

    def subscript(self, e: Expr, pos: int) -> Expr:
        """``(expr)_j``: an entry; ``[z]_+``: the ReLU; ``1_{z > 0}``: an indicator."""
        if self.tok.is_("+"):
            self.next()
            return self.build("relu", e, pos=pos)
        if e.is_num(1) and self.tok.is_("{"):
            self.next()
            inner = self.expr()
            if self.tok.text in N.RELATIONS and self.tok.kind in (OP, CMD):
                cond = self.relation(inner)
            elif _is_indicator(inner):
                cond = inner
            else:
                self.fail("expected a condition: 1_{z > 0}", pos)
            self.expect("}")
            return cond
        group = braced_group(self.toks, self.k)
        if group is None:
            self.fail("expected a subscript after '_'")
        toks, self.k = group
        return self.index(e, toks, pos)

    def group_or_token(self) -> Expr:
        """``{expr}`` or a single token (a superscript, an argument of \\frac without braces)."""
        if self.accept("{"):
            e = self.expr()
            self.expect("}")
            return e
        t = self.tok
        if t.kind == NUM and len(t.text) > 1:         # \frac12, x^23: one digit each, as in TeX
            self.toks[self.k] = Token(NUM, t.text[1:], t.pos + 1)
            return num(int(t.text[0]))
        if t.kind == WORD and len(t.text) > 1:
            self.toks[self.k] = Token(WORD, t.text[1:], t.pos + 1)
            self.toks.insert(self.k, Token(WORD, t.text[0], t.pos))
        if t.kind in (NUM, WORD) or (t.kind == CMD and t.text in N.GREEK_NAMES):
            return self.postfix_free_primary()
        if t.is_("-"):
            self.next()
            return self.build("neg", self.group_or_token(), pos=t.pos)
        self.fail(f"expected a group {{...}} or one symbol, found {self.describe(t)}")

    def postfix_free_primary(self) -> Expr:
        return self.primary()

    # ------------------------------------------------------------ primaries
    def primary(self) -> Expr:
        t = self.tok
        if t.kind == NUM:
            self.next()
            return num(Fraction(t.text))
        if t.kind == WORD:
            return self.word()
        if t.is_("(", "[", r"\{", r"\lbrack", r"\lparen"):
            return self.bracket()
        if t.is_("{"):
            self.next()
            e = self.expr()
            self.expect("}")
            return e
        if t.is_("|", r"\lvert", r"\vert"):
            return self.absolute()
        if t.is_(r"\|", r"\lVert", r"\Vert"):
            return self.norm()
        if t.kind == CMD:
            if t.text in N.FUNCTION_COMMANDS:
                self.next()
                return self.function(N.FUNCTION_COMMANDS[t.text], t)
            if t.text in N.FRACTIONS:
                return self.fraction()
            if t.text in N.INDICATORS:
                return self.indicator()
            if t.text == r"\partial":
                d = self.inline_derivative()
                if d is None:
                    self.fail("expected a derivative ∂l/∂x here")
                return d
            if t.text == r"\nabla":
                return self.nabla()
            if t.text == r"\delta":
                return self.delta()
            if t.text == r"\max":
                self.next()
                return self.maximum(t)
            if t.text == r"\begin":
                return self.cases()
            if t.text in N.GREEK_NAMES or t.text in N.ACCENTS:
                return self.name()
            self.fail(f"unknown or unsupported command '{t.text}'")
        self.fail(f"expected an expression, found {self.describe(t)}")

    def bracket(self) -> Expr:
        """``( ... )``; a bracketed comparison is its indicator (Iverson bracket)."""
        opener = self.next()
        closer = N.BRACKETS[opener.text]
        saved, self.bars = self.bars, 0
        e = self.expr()
        if self.tok.text in N.RELATIONS and self.tok.kind in (OP, CMD):
            e = self.relation(e)
        self.bars = saved
        if self.tok.is_(","):
            self.fail("a list is not an expression (only \\max(0, z) takes two arguments)")
        self.expect(closer, f"'{closer}' to close the '{opener.text}' at column {opener.pos + 1}")
        return e

    def absolute(self) -> Expr:
        opener = self.next()
        closer = N.ABS_BARS[opener.text]
        self.bars += 1
        e = self.expr()
        self.bars -= 1
        self.expect(closer, "the closing bar of |...|")
        return self.build("abs", e, pos=opener.pos)

    def norm(self) -> Expr:
        """``\\|v\\|`` (Euclidean); ``\\|v\\|^2`` and ``\\|v\\|_2^2`` are the sum of squares."""
        opener = self.next()
        closer = N.NORM_BARS[opener.text]
        saved, self.bars = self.bars, 0
        self.norms += 1
        v = self.expr()
        self.norms -= 1
        self.bars = saved
        self.expect(closer, "the closing bars of \\|...\\|")
        if self.tok.is_("_") and self.peek().text == "2":
            self.k += 2
        squares = self.build("sum", self.build("mul", v, v, pos=opener.pos), pos=opener.pos)
        if self.tok.is_("^"):
            group = braced_group(self.toks, self.k + 1)
            if group is not None and [t.text for t in group[0]] == ["2"]:
                self.k = group[1]
                return squares
        return self.build("sqrt", squares, pos=opener.pos)

    # ------------------------------------------------------------ names and words
    def word(self) -> Expr:
        t = self.tok
        op = N.FUNCTION_WORDS.get(t.text.lower())
        if op is not None and self.a.name_of(t.text) is None:
            self.next()
            return self.function(op, t)
        if t.text in N.MAX_COMMANDS:
            self.next()
            return self.maximum(t)
        spelling, after = read_spelling(self.toks, self.k)
        e = self.resolve(spelling, after, soft=True)
        if e is not None:
            self.k = after
            return e
        if t.text == "e" and self.peek().is_("^"):
            self.k += 2
            return self.build("exp", self.group_or_token(), pos=t.pos)
        if t.text.startswith("d"):
            d = self.inline_derivative()
            if d is not None:
                return d
        pieces = self.split_word(t.text)
        if pieces is not None and spelling.sub == () and not spelling.sup:
            self.k = after
            try:
                return self.checked(product_run([self.a.lookup(p) for p in pieces]), t.pos)
            except ShapeError as exc:
                self.fail(f"shape mismatch in '{t.text}': {exc}", t.pos)
        return self.resolve(spelling, after)         # fails: an unknown name

    def name(self) -> Expr:
        read = read_spelling(self.toks, self.k)
        if read is None:
            self.fail(f"expected a name, found {self.describe(self.tok)}")
        spelling, after = read
        e = self.resolve(spelling, after)
        self.k = after
        return e

    def resolve(self, s: Spelling, after: int, soft: bool = False) -> Expr | None:
        """The expression a spelling names: an index variable, a declared name or an entry of one."""
        if s.bare and (s.base in self.bound):
            return ivar(s.base)
        e = self.a.lookup(s.key())
        if e is not None:
            return e
        if s.sub:
            base = self.a.lookup(s.key(with_sub=False))
            if base is not None:
                return self.index(base, list(s.sub), s.pos)
            onehot = self.unit_vector(s)
            if onehot is not None:
                return onehot
        if soft:
            return None
        last = self.toks[max(after - 1, 0)]
        written = self.text[s.pos:last.pos + len(last.text)] or s.key()
        self.fail(f"unknown name '{written}'{self.hint(s)}", s.pos)

    def unit_vector(self, s: Spelling) -> Expr | None:
        """``e_t`` (``\\mathbf{e}_t``) for a class-index target t: the one-hot vector of class t."""
        if s.base != "e" or s.accent or s.sup or len(s.sub) != 1 or s.sub[0].text not in self.a.classes:
            return None
        t = self.a.scope.lookup(s.sub[0].text)
        return self.build("onehot", t, attr=self.a.classes[s.sub[0].text], pos=s.pos)

    def hint(self, s: Spelling) -> str:
        import difflib
        close = difflib.get_close_matches(s.key(), list(self.a.spellings)[:500], n=1)
        return f" (did you mean '{close[0]}'?)" if close else ""

    def split_word(self, word: str) -> list[str] | None:
        """``Wx`` → [W, x] when the pieces are declared names (longest match first)."""
        if len(word) > 64:
            return None
        longest = max((len(k) for k in self.a.spellings), default=1)
        pieces, i = [], 0
        while i < len(word):
            for j in range(min(len(word), i + longest), i, -1):
                if word[i:j] in self.a.spellings:
                    pieces.append(word[i:j])
                    i = j
                    break
            else:
                return None
        return pieces if len(pieces) > 1 else None

    def index(self, base: Expr, toks: list[Token], pos: int) -> Expr:
        """``base`` indexed by the subscript tokens: ``_j``, ``_{jk}``, ``_{j,k}``, ``_t``."""
        idx = self.index_items(toks, pos)
        if len(idx) > len(base.shape):
            self.fail(f"{len(idx)} indices for a value of shape [{', '.join(map(str, base.shape))}]", pos)
        return self.build("index", base, *idx, pos=pos)

    def index_items(self, toks: list[Token], pos: int) -> list[Expr]:
        items: list[Expr] = []
        for t in toks:
            if t.is_(","):
                continue
            if t.kind == NUM:
                self.fail("index entries with letters (x_j, W_{jk}); a number as an index is "
                          "ambiguous (maths counts from 1, code from 0)", t.pos)
            if t.kind != WORD:
                self.fail(f"unexpected {t.text!r} in a subscript", t.pos)
            whole = self.index_var(t.text)
            if whole is not None:
                items.append(whole)
                continue
            for i, ch in enumerate(t.text):
                one = self.index_var(ch)
                if one is None:
                    self.fail(f"'{ch}' is not an index here (indices: the question's free indices, "
                              "those of an enclosing sum, class-index targets)", t.pos + i)
                items.append(one)
        if not items:
            self.fail("empty subscript", pos)
        return items

    def index_var(self, name: str) -> Expr | None:
        if name in self.bound:
            return ivar(name)
        e = self.a.lookup(name)
        if e is not None and e.shape == () and e.op in ("ivar", "sym"):
            return e
        return None

    # ------------------------------------------------------------ functions
    def function(self, op: str, t: Token) -> Expr:
        """``f(x)``, ``f x``, ``f'(x)``, ``f^2(x)``; the function token is consumed."""
        if self.tok.is_("'") or (self.tok.is_("^") and _is_prime(self.toks, self.k + 1)):
            if op not in N.PRIMES:
                self.fail(f"no derivative function for {t.text}; write it out", self.tok.pos)
            self.k = self.k + 1 if self.tok.is_("'") else braced_group(self.toks, self.k + 1)[1]
            op = N.PRIMES[op]
        power = None
        if self.tok.is_("^"):
            self.next()
            power = self.group_or_token()
        if op == "sqrt" and self.tok.is_("["):
            self.fail("only square roots are supported")
        if self.tok.is_("(", "[", "{", r"\lbrack", r"\lparen"):
            arg = self.primary()
        else:
            if not self.starts_operand(self.tok):
                self.fail(f"{t.text} needs an argument")
            arg = self.operand()
        e = self.build(op, arg, pos=t.pos)
        return self.build("pow", e, power, pos=t.pos) if power is not None else e

    def maximum(self, t: Token) -> Expr:
        r"""``\max(0, z)`` and ``\max(z, 0)``: the ReLU."""
        opener = self.tok
        if not self.accept("(", "[", "{"):
            self.fail("\\max needs its arguments in brackets: \\max(0, z)")
        a = self.expr()
        self.expect(",", "',' between the arguments of max")
        b = self.expr()
        self.expect(N.BRACKETS.get(opener.text, "}"))
        if a.is_num(0):
            return self.build("relu", b, pos=t.pos)
        if b.is_num(0):
            return self.build("relu", a, pos=t.pos)
        self.fail("only \\max(0, z) (the ReLU) is supported", t.pos)

    def fraction(self) -> Expr:
        t = self.next()
        d = self.frac_derivative()
        if d is not None:
            return d
        top = self.group_or_token()
        bottom = self.group_or_token()
        return self.build("div", top, bottom, pos=t.pos)

    # ------------------------------------------------------------ derivatives
    def frac_derivative(self) -> Expr | None:
        r"""``\frac{\partial l}{\partial o}`` or ``\frac{dl}{do}`` (the \frac consumed), else None."""
        saved = self.k
        if self.accept("{"):
            of = self.diff_var()
            if of is not None and self.accept("}") and self.accept("{"):
                wrt = self.diff_var()
                if wrt is not None and self.tok.is_("}"):
                    self.next()
                    return self.derivative(of, wrt)
        self.k = saved
        return None

    def inline_derivative(self) -> Expr | None:
        r"""``dl/do``, ``\partial l / \partial o``; None (nothing consumed) if this is not one."""
        saved = self.k
        of = self.diff_var()
        if of is not None and self.accept("/"):
            wrt = self.diff_var()
            if wrt is not None:
                return self.derivative(of, wrt)
        self.k = saved
        return None

    def diff_var(self) -> Spelling | None:
        r"""``\partial x``, ``d x``, ``dx``: the spelling of x, or None."""
        t = self.tok
        if t.is_(r"\partial") or (t.kind == WORD and t.text == "d"):
            self.next()
            read = read_spelling(self.toks, self.k)
        elif t.kind == WORD and t.text.startswith("d") and len(t.text) > 1:
            read = read_spelling(self.toks, self.k + 1, base=(t.text[1:], t.pos + 1))
        else:
            return None
        if read is None:
            return None
        spelling, self.k = read
        return spelling

    def derivative(self, of: Spelling, wrt: Spelling) -> Expr:
        loss = self.a.name_of(of.key()) or (of.key() if of.key() == self.a.loss else None)
        named = self.a.derivatives.get((loss, self.a.name_of(wrt.key())))
        if named is not None:                  # a derivative the question's vocabulary names
            return named
        if loss != self.a.loss:
            if loss is None:
                self.fail(f"unknown name '{of.key()}' in a derivative", of.pos)
            wrt_name = self.a.name_of(wrt.key())
            local = self.a.scope.lookup(f"d{loss}_d{wrt_name}") if wrt_name else None
            if local is not None:
                return local
            self.fail(f"only derivatives of the loss '{self.a.loss}' (upstream gradients) may appear "
                      f"in an answer", of.pos)
        name = self.a.name_of(wrt.key())
        if name is not None and self.a.scope.lookup(name).op not in ("dim", "ivar"):
            return grad(name, self.a.scope.lookup(name).shape, loss)
        if wrt.sub:
            name = self.a.name_of(wrt.key(with_sub=False))
            if name is not None and self.a.scope.lookup(name).op not in ("dim", "ivar"):
                g = grad(name, self.a.scope.lookup(name).shape, loss)
                return self.index(g, list(wrt.sub), wrt.pos)
        self.fail(f"unknown name '{wrt.key()}' in a derivative", wrt.pos)

    def nabla(self) -> Expr:
        r"""``\nabla_{o} l``: the gradient of the loss with respect to o."""
        t = self.next()
        self.expect("_")
        group = braced_group(self.toks, self.k)
        if group is None:
            self.fail("expected the variable of \\nabla_{x}")
        toks, self.k = group
        read = read_spelling(list(toks) + [Token(END, "", t.pos)], 0)
        if read is None or read[1] != len(toks):
            self.fail("expected a name after \\nabla_", t.pos)
        of = read_spelling(self.toks, self.k)
        if of is None:
            self.fail("expected the loss after \\nabla_{x}")
        spelling, self.k = of
        return self.derivative(spelling, read[0])

    # ------------------------------------------------------------ index notation
    def delta(self) -> Expr:
        r"""``\delta_{jt}``: Kronecker delta; a bare ``\delta`` is a name (an alias, if declared)."""
        t = self.tok
        if self.peek().is_("_"):
            group = braced_group(self.toks, self.k + 2)
            if group is not None and self.a.lookup(f"delta_{''.join(x.text for x in group[0])}") is None:
                items = self.index_items(group[0], t.pos)
                if len(items) == 2:
                    self.k = group[1]
                    return self.build("delta", *items, pos=t.pos)
        return self.name()

    def summation(self) -> Expr:
        r"""``\sum_{j=1}^{C} body``, ``\sum_j body``, ``\sum body`` (sum of a vector's entries)."""
        t = self.next()
        index = lower = upper = None
        for _ in range(2):
            if self.tok.is_("_") and index is None:
                self.next()
                group = braced_group(self.toks, self.k)
                if group is None:
                    self.fail("expected the index of the sum")
                toks, self.k = group
                index, lower = self.sum_index(toks, t.pos)
            elif self.tok.is_("^") and upper is None:
                self.next()
                group = braced_group(self.toks, self.k)
                if group is None:
                    self.fail("expected the upper limit of the sum")
                upper, self.k = group
        if index is None:
            if upper is not None:
                self.fail("a sum with an upper limit needs its index: \\sum_{j=1}^{C}", t.pos)
            return self.build("sum", self.operand(), pos=t.pos)
        if index in self.bound or (self.a.scope.lookup(index) is not None
                                   and self.a.scope.lookup(index).op == "ivar"):
            self.fail(f"the index '{index}' is already in use; sum over another letter", t.pos)
        self.bound.append(index)
        try:
            body = self.product()
        finally:
            self.bound.pop()
        if body.shape != ():
            self.fail(f"the body of a sum over {index} must be a scalar (index it: x_{index})", t.pos)
        size = self.sum_size(body, index, lower, upper, t.pos)
        return self.checked(isum(body, index, size), t.pos)

    def sum_index(self, toks: list[Token], pos: int) -> tuple[str, int | None]:
        if not toks or toks[0].kind != WORD or len(toks[0].text) != 1:
            self.fail("a sum's index is one letter: \\sum_{j=1}^{C}", pos)
        if len(toks) == 1:
            return toks[0].text, None
        if len(toks) == 3 and toks[1].is_("=") and toks[2].kind == NUM and toks[2].text in ("0", "1"):
            return toks[0].text, int(toks[2].text)
        self.fail("a sum's limits are written \\sum_{j=1}^{C}", toks[1].pos)

    def sum_size(self, body: Expr, index: str, lower, upper, pos: int):
        """The size of the axis ``index`` runs over: from the body, checked against the limits."""
        sizes = index_sizes(body, index)
        if len(sizes) > 1:
            self.fail(f"the index {index} runs over axes of different sizes {sorted(map(str, sizes))}", pos)
        size = next(iter(sizes)) if sizes else None
        if upper is not None:
            texts = [t.text for t in upper]
            if lower == 0:
                if len(texts) != 3 or texts[1:] != ["-", "1"]:
                    self.fail("a sum from 0 runs to N-1", pos)
                texts = texts[:1]
            elif len(texts) != 1:
                self.fail("the upper limit of a sum is a size: \\sum_{j=1}^{C}", pos)
            limit = texts[0]
            value = int(limit) if limit.isdigit() else limit
            if isinstance(value, str) and value not in self.a.scope.dims:
                self.fail(f"unknown size '{limit}' in the sum's limit", upper[0].pos)
            if size is None:
                size = value
            elif size != value and self._dim(size) != self._dim(value):
                self.fail(f"the sum runs to {limit}, but {index} indexes an axis of size {size}", upper[0].pos)
        if size is None:
            self.fail(f"cannot tell how far the sum over {index} runs: give its limits \\sum_{{{index}=1}}^{{N}}",
                      pos)
        return size

    def _dim(self, d):
        return self.a.scope.dims.get(d, d) if isinstance(d, str) else d

    # ------------------------------------------------------------ conditions
    def indicator(self) -> Expr:
        r"""``\mathbb{1}[cond]``, ``\mathbb{1}(cond)``, ``\mathbb{1}_{cond}``, ``\mathbb{1}\{cond\}``."""
        t = self.next()
        if self.accept("_"):
            self.expect("{")
            e = self.condition()
            self.expect("}")
            return e
        if not self.tok.is_("(", "[", r"\{", r"\lbrack"):
            self.fail(f"{t.text} needs a condition: {t.text}[z > 0]")
        opener = self.next()
        e = self.condition()
        self.expect(N.BRACKETS[opener.text])
        return e

    def condition(self) -> Expr:
        lhs = self.expr()
        if not (self.tok.text in N.RELATIONS and self.tok.kind in (OP, CMD)):
            self.fail("expected a comparison (>, \\ge, <, \\le, =, \\neq)")
        return self.relation(lhs)

    def relation(self, lhs: Expr) -> Expr:
        """The indicator of ``lhs REL rhs`` (the relation token is next)."""
        t = self.next()
        rel = N.RELATIONS[t.text]
        rhs = self.expr()
        if rel in ("=", "!="):
            if not (_index_like(lhs) and _index_like(rhs)):
                self.fail("only indices can be compared with '=' (as in j = t)", t.pos)
            d = self.build("delta", lhs, rhs, pos=t.pos)
            return d if rel == "=" else self.build("sub", ONE, d, pos=t.pos)
        if rel in ("<", "<="):
            lhs, rhs = rhs, lhs
        diff = lhs if rhs.is_num(0) else self.build("sub", lhs, rhs, pos=t.pos)
        return self.build("relu_prime", diff, pos=t.pos)

    def cases(self) -> Expr:
        r"""``\begin{cases} v_1 & cond_1 \\ ... \\ v_n & \text{otherwise} \end{cases}``."""
        t = self.next()
        self.expect("{")
        if not (self.tok.kind == WORD and self.tok.text == "cases"):
            self.fail("only the cases environment is supported")
        self.next()
        self.expect("}")
        rows: list[tuple[Expr, Expr | None, int]] = []
        while True:
            pos = self.tok.pos
            value = self.expr()
            self.accept(",")
            self.expect("&", "'&' between a case's value and its condition")
            while (self.tok.kind == WORD and self.tok.text.lower() in N.CONDITION_WORDS) or self.tok.is_(","):
                self.next()
            if self.tok.kind == WORD and self.tok.text.lower() in N.OTHERWISE:
                self.next()
                cond = None
            else:
                cond = self.condition()
            while self.tok.is_(",", ".", ";"):
                self.next()
            rows.append((value, cond, pos))
            if self.accept(r"\\"):
                if self.tok.is_(r"\end"):
                    break
                continue
            break
        self.expect(r"\end", r"'\\' or \end{cases}")
        self.expect("{")
        if not (self.tok.kind == WORD and self.tok.text == "cases"):
            self.fail(r"expected \end{cases}")
        self.next()
        self.expect("}")
        if sum(c is None for _, c, _ in rows) > 1:
            self.fail("at most one case may be 'otherwise'", t.pos)
        total = covered = None
        other = None
        for value, cond, pos in rows:
            if cond is None:
                other = (value, pos)
                continue
            term = self.build("mul", cond, value, pos=pos)
            total = term if total is None else self.build("add", total, term, pos=pos)
            covered = cond if covered is None else self.build("add", covered, cond, pos=pos)
        if other is not None:
            if covered is None:
                return other[0]
            rest = self.build("mul", self.build("sub", ONE, covered, pos=other[1]), other[0], pos=other[1])
            total = self.build("add", total, rest, pos=other[1])
        return total


def _is_prime(toks: list[Token], k: int) -> bool:
    group = braced_group(toks, k)
    return group is not None and [t.text for t in group[0]] in ([r"\prime"], ["'"])


def _is_derivative(e: Expr) -> bool:
    return e.op == "grad" or (e.op == "index" and e.args[0].op == "grad")


def _is_indicator(e: Expr) -> bool:
    return e.op in ("relu_prime", "delta") or (e.op == "sub" and e.args[0].is_num(1) and e.args[1].op == "delta")


def _index_like(e: Expr) -> bool:
    return e.shape == () and (e.op in ("ivar", "sym") or (e.op == "num" and e.attr.denominator == 1))


def _runs_first(factors: list[Expr], ops: list[str]) -> Expr:
    """Juxtaposed runs first (by shapes), then the explicit operators left to right."""
    runs: list[list[Expr]] = [[factors[0]]]
    explicit: list[str] = []
    for op, f in zip(ops, factors[1:]):
        if op == "juxt":
            runs[-1].append(f)
        else:
            explicit.append(op)
            runs.append([f])
    offsets = [0]
    for r in runs[:-1]:
        offsets.append(offsets[-1] + len(r))
    values = []
    for r, off in zip(runs, offsets):
        try:
            values.append(product_run(r))
        except ShapeError as exc:
            exc.factor = off + getattr(exc, "factor", len(r) - 1)
            raise
    acc = values[0]
    for i, (op, v) in enumerate(zip(explicit, values[1:]), start=1):
        try:
            acc = make(op, acc, v)
        except ShapeError as exc:
            exc.factor = offsets[i]
            raise
    return acc


def _left_to_right(factors: list[Expr], ops: list[str]) -> Expr:
    from .products import juxtapose
    acc = factors[0]
    for op, f in zip(ops, factors[1:]):
        acc = juxtapose(acc, f)[0] if op == "juxt" else make(op, acc, f)
    return acc
