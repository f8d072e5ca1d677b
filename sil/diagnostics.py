"""Diagnostics: one type, one renderer, one exception for everything a user can cause.

Positions are character offsets into a ``SourceFile``; line and column are computed only when a
diagnostic is rendered, so parsing pays nothing for them.
"""

from __future__ import annotations

import bisect
from typing import Literal, NamedTuple

import attrs

Severity = Literal["error", "warning", "note"]


def describe_integer(value: int) -> str:
    """``value`` as a message shows it: written out when it is short enough to read, else its
    size (Python refuses to write out an int of more than 4,300 digits)."""
    if value.bit_length() <= 256:
        return str(value)
    digits = int(value.bit_length() * 0.30103) + 1  # of 2^bits: at most one more than value's
    return f"{'-' if value < 0 else ''}(a number of about {digits:,} digits)"


@attrs.define(eq=False, slots=True)
class SourceFile:
    """The text of one input, with the name diagnostics print for it."""

    name: str
    text: str
    _line_starts: list[int] | None = None

    def _starts(self) -> list[int]:
        starts = self._line_starts
        if starts is None:
            starts = [0]
            find = self.text.find
            at = find("\n")
            while at >= 0:
                starts.append(at + 1)
                at = find("\n", at + 1)
            self._line_starts = starts
        return starts

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based line and column of a character offset."""
        starts = self._starts()
        line = bisect.bisect_right(starts, offset) - 1
        return line + 1, offset - starts[line] + 1

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline."""
        starts = self._starts()
        if not 0 < line <= len(starts):
            return ""
        end = self.text.find("\n", starts[line - 1])
        return self.text[starts[line - 1] : end if end >= 0 else len(self.text)].removesuffix("\r")


class Span(NamedTuple):
    """A range of characters in a source file."""

    source: SourceFile
    start: int
    end: int


@attrs.define(slots=True)
class Diagnostic:
    """A message about a place in the input (or about no place, when ``span`` is None)."""

    severity: Severity
    message: str
    span: Span | None = None
    notes: list[Diagnostic] = attrs.field(factory=list)

    def line(self) -> int | None:
        """The 1-based line the diagnostic points at, if it has a place."""
        if self.span is None:
            return None
        return self.span.source.line_col(self.span.start)[0]

    def render(self) -> str:
        """``FILE:LINE:COL: error: MESSAGE``, the source line and a caret; then the notes."""
        out = [self._render_one()]
        out.extend(note._render_one() for note in self.notes)
        return "".join(out)

    def _render_one(self) -> str:
        if self.span is None:
            return f"{self.severity}: {self.message}\n"
        source = self.span.source
        line, col = source.line_col(self.span.start)
        text = source.line_text(line)
        caret = "".join("\t" if ch == "\t" else " " for ch in text[: col - 1]) + "^"
        return f"{source.name}:{line}:{col}: {self.severity}: {self.message}\n{text}\n{caret}\n"


class SILError(Exception):
    """Raised for anything a user can cause: it carries the diagnostics to report."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("\n".join(d.message for d in diagnostics))
        self.diagnostics = diagnostics

    def __str__(self) -> str:
        """The diagnostics rendered (``FILE:LINE:COL: error: …``, the line, a caret), so that an
        error Python code does not catch (in a notebook, a script) says where, as silopt would."""
        return "".join(d.render() for d in self.diagnostics).rstrip("\n")

    @classmethod
    def at(cls, span: Span | None, message: str, notes: list[Diagnostic] | None = None) -> SILError:
        """An error with one diagnostic at ``span``."""
        return cls([Diagnostic("error", message, span, notes or [])])


def note(span: Span | None, message: str) -> Diagnostic:
    """A note to attach to an error."""
    return Diagnostic("note", message, span)


_QUOTED_LIMIT = 40  # characters of an argument a message shows


def quoted(text: str) -> str:
    """``text`` in quotes for a message, on one line: characters that are not printable (a newline)
    are escaped, so a diagnostic's source line still follows its ``FILE:LINE:COL``, and a long text
    is cut short."""
    if len(text) > _QUOTED_LIMIT:
        text = text[: _QUOTED_LIMIT - 10] + "…" + text[-9:]
    return "'" + "".join(c if c.isprintable() else repr(c)[1:-1] for c in text) + "'"
