"""``--split-input-file``: one input holding several modules, separated by ``// -----`` lines.

As MLIR's ``splitAndProcessBuffer`` does, each chunk is a source of its own: its diagnostics count
lines from the chunk's first line, and its name says where in the file that line is,
``within split at FILE:LINE offset `` (so ``within split at f.sil:12 offset :3:5`` is line 3 of the
chunk that starts on line 12, the file's line 14). A chunk after the first starts on its marker's
line, just after the marker, as in MLIR, so its line N is the file's line LINE + N - 1. The outputs
are joined with marker lines, one between two chunks, whether a chunk succeeded or not, so the
output's N-th chunk is what became of the input's N-th.

Unlike MLIR, which splits at the marker anywhere in the text, a marker is a line of its own (spaces
around it allowed); a line that is nearly one (``// ----``, ``//-----``) gets a warning, as MLIR's
"near miss", and splits nothing.
"""

from __future__ import annotations

import re

import attrs

from sil.diagnostics import Diagnostic, SourceFile, Span

MARKER = "// -----"
_MARKER_LINE = re.compile(r"^[ \t]*// -----[ \t]*\r?$", re.MULTILINE)
# The marker less its last dashes, as MLIR looks for near misses: a comment line of dashes.
_NEAR_MISS_LINE = re.compile(r"^[ \t]*//[ \t]*---+[ \t]*\r?$", re.MULTILINE)


@attrs.frozen
class Chunk:
    """A module's text to process, and what a message about the whole of it calls it: the input's
    name, or for a chunk of a split input, ``FILE:LINE`` of its first line."""

    source: SourceFile
    label: str

    @classmethod
    def whole(cls, source: SourceFile) -> Chunk:
        """The whole input as one chunk (no ``--split-input-file``)."""
        return cls(source, source.name)


def split_input(source: SourceFile) -> tuple[list[Chunk], list[Diagnostic]]:
    """The chunks of ``source``, and a warning for each line that nearly is a marker."""
    chunks: list[Chunk] = []
    start, line = 0, 1
    for marker in _MARKER_LINE.finditer(source.text):
        chunks.append(_chunk(source, start, marker.start(), line))
        start = marker.start() + marker.group().index(MARKER) + len(MARKER)
        line = source.line_col(marker.start())[0]
    chunks.append(_chunk(source, start, len(source.text), line))
    return chunks, _near_misses(source)


def _chunk(source: SourceFile, start: int, end: int, line: int) -> Chunk:
    where = f"{source.name}:{line}"
    return Chunk(SourceFile(f"within split at {where} offset ", source.text[start:end]), where)


def _near_misses(source: SourceFile) -> list[Diagnostic]:
    return [
        Diagnostic("warning", "near miss with file split marker", Span(source, m.start(), m.end()))
        for m in _NEAR_MISS_LINE.finditer(source.text)
        if m.group().strip() != MARKER
    ]
