"""``--verify-diagnostics``: compare produced diagnostics with ``// expected-…`` comments.

MLIR's contract: ``// expected-error {{text}}`` (also ``-warning``, ``-note``) expects a diagnostic
of that severity whose message contains ``text`` on the comment's line, or ``@+N``/``@-N`` lines
away. Every produced diagnostic must be expected, and every expectation produced.
"""

from __future__ import annotations

import re

import attrs

from sil.diagnostics import Diagnostic, SourceFile, Span

_EXPECTATION = re.compile(r"//\s*expected-(error|warning|note)(?:@([+-]\d+))?\s*\{\{(.*?)\}\}")


@attrs.define
class Expectation:
    severity: str
    line: int
    text: str
    span: Span
    matched: bool = False


def parse_expectations(source: SourceFile) -> list[Expectation]:
    found = []
    for m in _EXPECTATION.finditer(source.text):
        line, _ = source.line_col(m.start())
        offset = int(m.group(2)) if m.group(2) else 0
        span = Span(source, m.start(), m.end())
        found.append(Expectation(m.group(1), line + offset, m.group(3), span))
    return found


def check_expectations(source: SourceFile, produced: list[Diagnostic]) -> list[Diagnostic]:
    """The mismatches, as diagnostics to report (empty when everything matched)."""
    expectations = parse_expectations(source)
    problems: list[Diagnostic] = []
    flat: list[Diagnostic] = []
    for d in produced:
        flat.append(d)
        flat.extend(d.notes)
    for d in flat:
        line = d.line() if d.span is not None and d.span.source is source else None
        match = next(
            (
                e
                for e in expectations
                if not e.matched and e.severity == d.severity and e.line == line and e.text in d.message
            ),
            None,
        )
        if match is None:
            problems.append(Diagnostic("error", f"unexpected {d.severity}: {d.message}", d.span))
        else:
            match.matched = True
    for e in expectations:
        if not e.matched:
            problems.append(Diagnostic("error", f'expected {e.severity} "{e.text}" was not produced', e.span))
    return problems
