"""``GeneratedProgram``: a drawn program as SIL text, with what its checks need to know."""

from __future__ import annotations

import attrs
from hypothesis import strategies as st

from silopt.generate import ast
from silopt.generate.emit import parameters, sil_text
from silopt.generate.strategies import drawn_programs


@attrs.frozen
class GeneratedProgram:
    """The module's ``text``; the function differentiated, its parameter types and ``wrt``; the
    features it reaches (for coverage); and the AST it was written from."""

    text: str
    function: str
    params: tuple[str, ...]
    wrt: tuple[int, ...]
    features: frozenset[str]
    ast: ast.Program = attrs.field(eq=False, repr=False)


def programs(features: frozenset[str] | None = None) -> st.SearchStrategy[GeneratedProgram]:
    """Programs that use only ``features`` (None: any of ``FEATURES``)."""
    return drawn_programs(features).map(lambda d: generated(d.program, d.features))


def generated(program: ast.Program, features: frozenset[str] = frozenset()) -> GeneratedProgram:
    """``program`` written as SIL: for a program built by hand (a regression, a test)."""
    return GeneratedProgram(
        sil_text(program), "f", tuple(t for _, t in parameters(program)), program.wrt, features, program
    )
