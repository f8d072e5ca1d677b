"""The one diagnostic renderer (SIL-SPEC §7): ``FILE:LINE:COL: error: MSG``, the line, a caret."""

from __future__ import annotations

import pytest

from sil import parse, verify_module
from sil.builder import Builder
from sil.diagnostics import Diagnostic, SILError, SourceFile, Span, describe_integer, note
from sil.ir import Function, Module
from sil.types import INT, FunctionType


def at(source: SourceFile, offset: int) -> Span:
    return Span(source, offset, offset)


def test_render_format() -> None:
    source = SourceFile("t.sil", "abc\n  def\nghi\n")
    d = Diagnostic("error", "something is wrong", at(source, 6))
    assert d.render() == "t.sil:2:3: error: something is wrong\n  def\n  ^\n"
    assert d.line() == 2


def test_render_first_column_and_first_line() -> None:
    source = SourceFile("t.sil", "abc\ndef\n")
    assert Diagnostic("error", "m", at(source, 0)).render() == "t.sil:1:1: error: m\nabc\n^\n"
    assert Diagnostic("error", "m", at(source, 6)).render() == "t.sil:2:3: error: m\ndef\n  ^\n"


def test_severities() -> None:
    source = SourceFile("t.sil", "x\n")
    assert Diagnostic("warning", "w", at(source, 0)).render() == "t.sil:1:1: warning: w\nx\n^\n"
    assert Diagnostic("note", "n", at(source, 0)).render() == "t.sil:1:1: note: n\nx\n^\n"


def test_tabs_are_kept_in_the_caret_line() -> None:
    source = SourceFile("t.sil", "\tx\n \t\ty = 1\n")
    assert Diagnostic("error", "m", at(source, 1)).render() == "t.sil:1:2: error: m\n\tx\n\t^\n"
    # Column counts characters: a tab is one column.
    assert Diagnostic("error", "m", at(source, 6)).render() == "t.sil:2:4: error: m\n \t\ty = 1\n \t\t^\n"


def test_notes_follow_the_error() -> None:
    source = SourceFile("t.sil", "first\nsecond\n")
    d = Diagnostic("error", "redefinition", at(source, 6), [note(at(source, 0), "previously defined here")])
    assert d.render() == (
        "t.sil:2:1: error: redefinition\nsecond\n^\nt.sil:1:1: note: previously defined here\nfirst\n^\n"
    )


def test_several_notes_in_order() -> None:
    source = SourceFile("t.sil", "a\nb\nc\n")
    d = Diagnostic("error", "e", at(source, 4), [note(at(source, 0), "one"), note(at(source, 2), "two")])
    rendered = d.render()
    assert rendered.index("t.sil:1:1: note: one") < rendered.index("t.sil:2:1: note: two")
    assert rendered.startswith("t.sil:3:1: error: e\n")


def test_note_without_place() -> None:
    source = SourceFile("t.sil", "x\n")
    d = Diagnostic("error", "e", at(source, 0), [note(None, "about nothing")])
    assert d.render() == "t.sil:1:1: error: e\nx\n^\nnote: about nothing\n"


def test_diagnostic_without_place() -> None:
    d = Diagnostic("error", "no place")
    assert d.render() == "error: no place\n"
    assert d.line() is None


def test_last_line_without_newline() -> None:
    source = SourceFile("t.sil", "first\nlast")
    assert Diagnostic("error", "m", at(source, 8)).render() == "t.sil:2:3: error: m\nlast\n  ^\n"
    # At the very end of the text: one column past the last character.
    assert Diagnostic("error", "m", at(source, 10)).render() == "t.sil:2:5: error: m\nlast\n    ^\n"


def test_end_of_file_after_final_newline() -> None:
    source = SourceFile("t.sil", "abc\n")
    assert Diagnostic("error", "m", at(source, 4)).render() == "t.sil:2:1: error: m\n\n^\n"


def test_empty_file() -> None:
    source = SourceFile("t.sil", "")
    assert Diagnostic("error", "m", at(source, 0)).render() == "t.sil:1:1: error: m\n\n^\n"


def test_crlf_line_endings_are_not_echoed() -> None:
    """The lexer accepts CRLF files; the echoed source line must not carry the '\\r'."""
    source = SourceFile("t.sil", "abc\r\n  def\r\n")
    assert Diagnostic("error", "m", at(source, 7)).render() == "t.sil:2:3: error: m\n  def\n  ^\n"


def test_line_col_and_line_text() -> None:
    source = SourceFile("t.sil", "ab\n\ncd")
    assert source.line_col(0) == (1, 1)
    assert source.line_col(2) == (1, 3)
    assert source.line_col(3) == (2, 1)
    assert source.line_col(4) == (3, 1)
    assert source.line_col(5) == (3, 2)
    assert source.line_text(1) == "ab"
    assert source.line_text(2) == ""
    assert source.line_text(3) == "cd"
    assert source.line_text(0) == ""
    assert source.line_text(4) == ""


def test_non_ascii_columns_count_characters() -> None:
    source = SourceFile("t.sil", "// é\nx")
    assert source.line_col(3) == (1, 4)
    assert Diagnostic("error", "m", at(source, 3)).render() == "t.sil:1:4: error: m\n// é\n   ^\n"


def test_sil_error_carries_its_diagnostics() -> None:
    source = SourceFile("t.sil", "x\n")
    e = SILError.at(at(source, 0), "bad thing", [note(None, "why")])
    assert [d.severity for d in e.diagnostics] == ["error"]
    assert e.diagnostics[0].message == "bad thing"
    assert [n.message for n in e.diagnostics[0].notes] == ["why"]
    assert "bad thing" in str(e)


def test_parse_errors_render_in_the_common_form() -> None:
    text = "sil @f : $@convention(thin) () -> () {\nbb0:\n  %0 = bogus_inst\n}\n"
    with pytest.raises(SILError) as info:
        parse(text, "in.sil")
    (d,) = info.value.diagnostics
    assert d.render() == "in.sil:3:8: error: unknown instruction 'bogus_inst'\n  %0 = bogus_inst\n       ^\n"


def test_parse_error_with_note() -> None:
    text = "sil @f : $@convention(thin) (Float) -> Float {\nbb0(%0 : $Float):\n  %0 = tuple ()\n}\n"
    with pytest.raises(SILError) as info:
        parse(text, "in.sil")
    (d,) = info.value.diagnostics
    rendered = d.render()
    assert rendered.startswith("in.sil:3:3: error: redefinition of value '%0'\n  %0 = tuple ()\n  ^\n")
    assert "in.sil:2:5: note: previously defined here\nbb0(%0 : $Float):\n    ^\n" in rendered


def test_a_huge_integer_is_described_by_its_size() -> None:
    assert describe_integer(-(2**63)) == "-9223372036854775808"
    assert describe_integer(10**5000) == "(a number of about 5,001 digits)"
    assert describe_integer(-(16**5000)) == "-(a number of about 6,021 digits)"


def test_a_built_integer_literal_too_large_to_write_out_is_reported() -> None:
    m = Module()
    fn = m.add_function(Function("f", FunctionType((), INT)))
    b = Builder.at_end(fn.add_block("bb0"), m)
    b.return_(b.integer_literal(INT, 10**5000))
    (d,) = verify_module(m)
    assert d.message == "integer literal (a number of about 5,001 digits) does not fit in Int"
