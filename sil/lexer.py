"""The lexer: compiled token patterns and a cursor that the parser asks for one token at a time.

Every pattern starts by skipping trivia (whitespace and ``//`` comments), so the parser never
handles trivia itself. Tokens are lexed on demand at the cursor rather than into a list first:
the parser always knows which tokens may come next, and matching one pattern at a position
(several tokens at once on the hot paths, such as ``%x : $Float``) costs a fraction of building
a token stream in Python. Positions are character offsets; line and column come from the
``SourceFile`` only when a diagnostic is rendered.

The pieces of the fused one-line patterns (``SPACES``, ``VALUE``, ``LINE_TYPED``, …) and
``FastForm`` are here; the fast forms themselves live with the instruction classes they parse.
"""

from __future__ import annotations

import re
from typing import NoReturn

import attrs

from sil.diagnostics import SILError, SourceFile, Span

# Atomic: a pattern that fails after trivia must not backtrack into a comment and match its text.
TRIVIA = r"(?>[ \t\r\n]*+(?://[^\n]*+[ \t\r\n]*+)*+)"
_IDENT = r"[A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)*"

TRIVIA_RE = re.compile(TRIVIA)
IDENT_RE = re.compile(TRIVIA + f"({_IDENT})")
VALUE_RE = re.compile(TRIVIA + r"%([\w$]+)")
GLOBAL_RE = re.compile(TRIVIA + r'@(?:([A-Za-z_$][\w$.]*)|"((?:[^"\\\n]|\\.)*)")')
STRING_RE = re.compile(TRIVIA + r'"((?:[^"\\\n]|\\.)*)"')
NUMBER_RE = re.compile(
    TRIVIA + r"([-+]?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|inf|nan))(?![\w.])"
)
# More digits than any integer SIL has room for (Int has 64 bits; indices are smaller), yet far
# fewer than the 4,300 past which Python refuses to convert a decimal string.
MAX_INTEGER_DIGITS = 100
INTEGER_RE = re.compile(TRIVIA + r"([-+]?(?:0[xX][0-9a-fA-F]+|\d+))(?![\w.])")
# `%x : $T` with T a plain name (the common case); T is absent when the type is more complex.
TYPED_VALUE_RE = re.compile(TRIVIA + r"%([\w$]+)" + TRIVIA + ":" + TRIVIA + rf"\$(?:({_IDENT})(?![\w$.<]))?")
# The same inside a parenthesized list, with the `,` or `)` that follows.
TYPED_VALUE_IN_LIST_RE = re.compile(
    TRIVIA + r"%([\w$]+)" + TRIVIA + ":" + TRIVIA + rf"\$({_IDENT})(?![\w$.<])" + TRIVIA + r"([,)])"
)
# The fused fast paths match one physical line of the common spelling: tokens separated by
# spaces or tabs (a line broken between tokens, or with a comment before its end, takes the
# general path), types that are undotted plain names. What must follow each type (`,`, `)`, the
# end of the line) already rules out a longer type, so they need no lookahead, and no pattern
# starts with TRIVIA: both cost more than the rest of the match. Their repetitions are possessive
# (`*+`, `++`): no token may start with what the one before it repeats, so giving characters back
# could never make a match, and not recording where it could is a fifth of the matching time.
# These are the pieces an instruction's FastForm is written with.
SPACES = r"[ \t]*+"
VALUE = r"%([\w$]++)"
LINE_TYPE = r"\$([A-Za-z_][\w$]*+)"
LINE_TYPED = VALUE + SPACES + ":" + SPACES + LINE_TYPE
END_OF_LINE = r"[ \t\r]*+(?://[^\n]*+)?(?:\n|\Z)"
# The type of a function_ref or an apply as the text up to the end of the line, to be looked up
# whole among the spellings seen before.
TYPE_TO_END_OF_LINE = r"\$([^\n/]*[^\s/])" + END_OF_LINE
# The start of an instruction line: an optional `%result =`, then the opcode.
LINE_HEAD_RE = re.compile(SPACES + "(?:" + VALUE + SPACES + "=" + SPACES + r")?([A-Za-z_]\w*)")
# A pattern that never matches: the fused path of a form that is switched off.
NEVER_RE = re.compile(r"(?!)")


@attrs.frozen
class FastForm:
    """An instruction's commonest spelling, parsed with one match (``Instruction.parse_fast``).

    ``tail`` is a pattern for the rest of the line after the opcode, written with the pieces
    above (one physical line, up to and including its end; it must not start with a word
    character). ``result`` says whether such a line names one result (``%r = op …``); a line
    that differs takes the general path. ``line_first``: the whole line, ``%r = op`` and the
    tail, is matched before anything else at the start of every line (for the commonest
    instruction; one at most).
    """

    tail: str
    result: bool
    line_first: bool = False

    def tail_re(self) -> re.Pattern[str]:
        """The tail alone, after an empty group 1: its groups start at group 2, as in
        ``line_re``, so that one ``parse_fast`` reads both."""
        return re.compile("()" + self.tail)

    def line_re(self, opname: str) -> re.Pattern[str]:
        """The whole line: group 1 is the result's name, the tail's groups start at group 2."""
        return re.compile(SPACES + VALUE + SPACES + "=" + SPACES + re.escape(opname) + self.tail)


# `: $T` with T a plain name.
COLON_SIMPLE_TYPE_RE = re.compile(TRIVIA + ":" + TRIVIA + rf"\$({_IDENT})(?![\w$.<])")
# The start of an instruction: an optional `%result =`, then the opcode.
INSTRUCTION_HEAD_RE = re.compile(TRIVIA + r"(?:%([\w$]+)" + TRIVIA + "=" + TRIVIA + r")?([A-Za-z_]\w*)")
# `$T` with T a plain name.
SIMPLE_TYPE_RE = re.compile(TRIVIA + rf"\$(?:({_IDENT})(?![\w$.<]))?")
# A function's name and the ':' before its type: `@f :` (or `@"…" :`).
FUNCTION_NAME_RE = re.compile(TRIVIA + r'(@(?:([A-Za-z_$][\w$.]*)|"((?:[^"\\\n]|\\.)*)"))' + TRIVIA + ":")
# A whole function line with a body, `sil @f : $T {` (no attributes), the text of T to be looked
# up whole.
FUNCTION_LINE_RE = re.compile(
    r'[ \t\r\n]*+sil[ \t]++(@(?:([A-Za-z_$][\w$.]*+)|"((?:[^"\\\n]|\\.)*)"))'
    + SPACES
    + ":"
    + SPACES
    + r"\$([^\n{/]*[^\s{/])"
    + SPACES
    + r"(\{)"
    + END_OF_LINE
)
# `{` opening a body, and the rest of its line.
BODY_OPEN_RE = re.compile(r"[ \t]*\{[ \t\r]*(?://[^\n]*)?\n")
# A whole block-label line, `bb1(…):`, with the text of its arguments, if any, to be looked up
# whole: arguments of plain types (PLAIN_ARGUMENTS_RE) take the fast path.
LABEL_LINE_RE = re.compile(r"[ \t]*+([A-Za-z_][\w$]*+)(?:\(([^()\n]*+)\))?" + SPACES + ":" + END_OF_LINE)
PLAIN_ARGUMENTS_RE = re.compile(SPACES + LINE_TYPED + SPACES + "(?:," + SPACES + LINE_TYPED + SPACES + ")*+")
# One argument of a PLAIN_ARGUMENTS_RE match.
PLAIN_ARGUMENT_RE = re.compile(LINE_TYPED)
NO_DERIVATIVE_RE = re.compile(TRIVIA + r"@noDerivative\b")
# An arrow on the same line: after a parenthesized type, the start of a function type (one whose
# arrow is on a later line has ended at the line's end).
ARROW_ON_LINE_RE = re.compile(r"[ \t]*->")
# What would make the type that ends here longer: a name going on, generic arguments, or `->`.
CONTINUES_TYPE_RE = re.compile(r"[\w$.<]|" + ARROW_ON_LINE_RE.pattern)
END_OF_LINE_RE = re.compile(r"[ \t\r]*(?://[^\n]*)?(?:\n|\Z)")
AT_END_RE = re.compile(TRIVIA + r"\Z")

_PUNCTUATION = ["->", "(", ")", "{", "}", "[", "]", "<", ">", ",", ":", "=", "$", "#", "!", "@"]
PUNCT_RE = {p: re.compile(TRIVIA + re.escape(p)) for p in _PUNCTUATION}
_ESCAPE_RE = re.compile(r'\\([\\"])')
_WORD_RE = re.compile(r"[%@#]?[\w$.]+|->|\S")


def unescape(text: str) -> str:
    """The characters of a quoted name or string: ``\\"`` and ``\\\\`` are escapes; any other
    backslash stands for itself."""
    return _ESCAPE_RE.sub(r"\1", text) if "\\" in text else text


class Cursor:
    """A position in a source file, with the token-level operations the parser builds on."""

    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self.text = source.text
        self.pos = 0

    # --- positions and errors --------------------------------------------------------------
    def token_start(self) -> int:
        """Where the next token starts (after trivia)."""
        return self.skip_trivia(self.pos)

    def skip_trivia(self, pos: int) -> int:
        m = TRIVIA_RE.match(self.text, pos)
        assert m is not None
        return m.end()

    def span_from(self, at: int) -> Span:
        """From the token at or after ``at`` to the cursor."""
        return Span(self.source, self.skip_trivia(at), self.pos)

    def error(self, message: str, at: int | None = None) -> NoReturn:
        """Raise a parse error at ``at`` (default: the next token)."""
        raise SILError.at(self.point(self.pos if at is None else at), message)

    def point(self, at: int) -> Span:
        """The place of the token at or after ``at``; at the end of the file, the end of the
        last line (rather than an empty line after it)."""
        start = self.skip_trivia(at)
        if start >= len(self.text) and self.text.endswith("\n"):
            start = len(self.text) - 1
        return Span(self.source, start, start)

    def describe_next(self) -> str:
        """The next token, quoted, for 'expected X, found Y' messages."""
        start = self.token_start()
        if start >= len(self.text):
            return "end of file"
        if self.text[start] == "\n":
            return "end of line"
        m = _WORD_RE.match(self.text, start)
        return f"'{m.group()}'" if m else "end of line"

    def at_end(self) -> bool:
        return AT_END_RE.match(self.text, self.pos) is not None

    # --- tokens ----------------------------------------------------------------------------
    def accept(self, punct: str) -> bool:
        m = PUNCT_RE[punct].match(self.text, self.pos)
        if m is None:
            return False
        self.pos = m.end()
        return True

    def expect(self, punct: str, context: str = "") -> None:
        m = PUNCT_RE[punct].match(self.text, self.pos)
        if m is None:
            suffix = f" {context}" if context else ""
            self.error(f"expected '{punct}'{suffix}, found {self.describe_next()}")
        self.pos = m.end()

    def peek_ident(self) -> str | None:
        m = IDENT_RE.match(self.text, self.pos)
        return m.group(1) if m else None

    def accept_ident(self, word: str) -> bool:
        m = IDENT_RE.match(self.text, self.pos)
        if m is None or m.group(1) != word:
            return False
        self.pos = m.end()
        return True

    def expect_ident(self, word: str, context: str = "") -> None:
        if not self.accept_ident(word):
            suffix = f" {context}" if context else ""
            self.error(f"expected '{word}'{suffix}, found {self.describe_next()}")

    def ident(self, what: str = "identifier") -> str:
        m = IDENT_RE.match(self.text, self.pos)
        if m is None:
            self.error(f"expected {what}, found {self.describe_next()}")
        self.pos = m.end()
        return m.group(1)

    def value_name(self) -> str:
        m = VALUE_RE.match(self.text, self.pos)
        if m is None:
            self.error(f"expected a value name like '%0', found {self.describe_next()}")
        self.pos = m.end()
        return m.group(1)

    def global_name(self) -> str:
        m = GLOBAL_RE.match(self.text, self.pos)
        if m is None:
            self.error(f"expected a function name like '@f', found {self.describe_next()}")
        self.pos = m.end()
        plain = m.group(1)
        return plain if plain is not None else unescape(m.group(2))

    def string(self) -> str:
        m = STRING_RE.match(self.text, self.pos)
        if m is None:
            self.error(f"expected a string literal, found {self.describe_next()}")
        self.pos = m.end()
        return unescape(m.group(1))

    def integer(self) -> int:
        m = INTEGER_RE.match(self.text, self.pos)
        if m is None:
            self.error(f"expected an integer, found {self.describe_next()}")
        text = m.group(1)
        hexadecimal = "x" in text or "X" in text
        if len(text) > MAX_INTEGER_DIGITS:
            digits = text.lstrip("+-")[2 if hexadecimal else 0 :].lstrip("0")
            if len(digits) > MAX_INTEGER_DIGITS:
                self.error(f"integer literal out of range: it has {len(digits):,} digits", at=m.start(1))
        self.pos = m.end()
        return int(text, 16) if hexadecimal else int(text, 10)

    def number(self) -> str:
        """The text of an integer, float, ``inf``, ``nan`` or hex literal."""
        m = NUMBER_RE.match(self.text, self.pos)
        if m is None:
            self.error(f"expected a number, found {self.describe_next()}")
        self.pos = m.end()
        return m.group(1)

    def end_of_line(self) -> None:
        """Require the rest of the line to be blank (or a comment)."""
        m = END_OF_LINE_RE.match(self.text, self.pos)
        if m is None:
            self.error(f"expected end of line, found {self.describe_next()}", at=self.pos_after_spaces())
        self.pos = m.end()

    def pos_after_spaces(self) -> int:
        pos = self.pos
        while pos < len(self.text) and self.text[pos] in " \t\r":
            pos += 1
        return pos
