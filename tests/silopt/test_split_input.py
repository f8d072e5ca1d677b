"""``--split-input-file``: where the input is split, what each chunk is called and numbered, and how
the chunks' outputs, diagnostics and exit statuses combine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sil.diagnostics import SourceFile
from silopt.split_input import split_input
from tests.silopt.test_driver import AFTER_DCE, BAD, GOOD, Outcome, silopt

SPLIT = GOOD + "// -----\n" + BAD + "// -----\n" + GOOD
MARKER = "// -----\n"


def test_no_marker_gives_the_whole_input() -> None:
    chunks, warnings = split_input(SourceFile("f.sil", GOOD))
    assert [(c.source.text, c.source.name, c.label) for c in chunks] == [
        (GOOD, "within split at f.sil:1 offset ", "f.sil:1")
    ]
    assert warnings == []


def test_chunks_start_after_their_marker_on_its_line() -> None:
    """As MLIR's: a chunk's line 1 is its marker's line, so its line N is the file's LINE + N - 1."""
    text = "a\n// -----\nb\nc\n// -----\nd"
    chunks, _ = split_input(SourceFile("f.sil", text))
    assert [c.source.text for c in chunks] == ["a\n", "\nb\nc\n", "\nd"]
    assert [c.label for c in chunks] == ["f.sil:1", "f.sil:2", "f.sil:5"]


def test_a_marker_is_a_line_of_its_own() -> None:
    text = "a\n  // -----  \nb // ----- c\n// -----\r\nd\n"
    chunks, warnings = split_input(SourceFile("f.sil", text))
    assert [c.source.text for c in chunks] == ["a\n", "  \nb // ----- c\n", "\r\nd\n"]
    assert warnings == []


@pytest.mark.parametrize("near", ["// ----", "// ------", "//-----", "  // ---"])
def test_a_near_miss_splits_nothing_and_is_warned_of(near: str) -> None:
    text = f"a\n{near}\nb\n"
    chunks, warnings = split_input(SourceFile("f.sil", text))
    assert [c.source.text for c in chunks] == [text]
    assert [w.render() for w in warnings] == [
        f"f.sil:2:1: warning: near miss with file split marker\n{near}\n^\n"
    ]


def test_each_chunk_is_processed_and_printed_on_its_own(tmp_path: Path) -> None:
    two = GOOD + MARKER + GOOD.replace("@f", "@g")
    (tmp_path / "two.sil").write_text(two)
    result = silopt(str(tmp_path / "two.sil"), "--split-input-file", "-dce")
    assert result == Outcome(0, AFTER_DCE + MARKER + AFTER_DCE.replace("@f", "@g"), "")


def test_without_the_flag_a_marker_is_a_comment() -> None:
    result = silopt("-", stdin=GOOD + MARKER + GOOD)
    assert result.status == 1
    assert "redefinition of function '@f'" in result.stderr


def test_a_failing_chunk_stops_no_other_and_the_status_is_1() -> None:
    result = silopt("-", "--split-input-file", "-dce", stdin=SPLIT)
    assert result.status == 1
    assert result.stdout == AFTER_DCE + MARKER + MARKER + AFTER_DCE
    assert result.stderr.startswith(
        "within split at <stdin>:7 offset :4:3: error: return of Int from a function returning Float\n"
    )


def test_diagnostics_count_the_chunks_lines(tmp_path: Path) -> None:
    """Every diagnostic's chunk line, put back at its chunk's line in the file, is a line whose text
    the diagnostic quotes."""
    text = BAD + MARKER + "\n\n" + BAD.replace("@f", "@g") + MARKER + GOOD + "\n" + BAD.replace("@f", "@h")
    path = tmp_path / "many.sil"
    path.write_text(text)
    result = silopt(str(path), "--split-input-file")
    assert result.status == 1
    lines = text.split("\n")
    located = re.findall(
        r"^within split at .*:(\d+) offset :(\d+):\d+: error: .*\n(.*)\n", result.stderr, re.M
    )
    assert len(located) == 3
    for start, line, quoted in located:
        assert lines[int(start) + int(line) - 2] == quoted
    assert [int(start) + int(line) - 1 for start, line, _ in located] == [3, 10, 22]


def test_verify_diagnostics_checks_each_chunk_against_its_own_expectations() -> None:
    expected = BAD.replace("return %0 : $Int\n", "return %0 : $Int  // expected-error {{return of Int}}\n")
    # Expectations are chunk-local: the same expectation on another chunk's line does not match.
    elsewhere = BAD.replace("bb0(%0 : $Int):\n", "bb0(%0 : $Int):  // expected-error@+1 {{return of Int}}\n")
    assert silopt("-", "--split-input-file", "--verify-diagnostics", stdin=expected + MARKER + elsewhere) == (
        Outcome(0, MARKER, "")
    )
    unmatched = silopt(
        "-", "--split-input-file", "--verify-diagnostics", stdin=expected + MARKER + BAD + MARKER + GOOD
    )
    assert unmatched.status == 1
    assert unmatched.stdout == MARKER + MARKER + GOOD
    assert unmatched.stderr.startswith("within split at <stdin>:5 offset :4:3: error: unexpected error")
    assert unmatched.stderr.count("within split at") == 1


def test_run_and_check_derivatives_take_each_chunk_on_its_own() -> None:
    int_f = "sil @f : $@convention(thin) (Int) -> Int {\nbb0(%0 : $Int):\n  return %0 : $Int\n}\n"
    ran = silopt("-", "--split-input-file", "--run", "@f", "--args", "3", stdin=GOOD + MARKER + int_f)
    assert ran == Outcome(0, "9.0\n" + MARKER + "3\n", "")
    differentiable = GOOD.replace("sil @f", "sil [differentiable source 0 wrt 0] @f")
    checked = silopt("-", "--split-input-file", "--check-derivatives", stdin=differentiable + MARKER + BAD)
    assert checked.status == 1
    first, second = checked.stdout.split(MARKER)
    assert first.startswith("@f (source 0 wrt 0): JVP vs finite differences") and first.endswith(": ok\n")
    assert second == ""
    assert "return of Int" in checked.stderr


def test_an_output_file_is_written_whole_only_when_every_chunk_succeeded(tmp_path: Path) -> None:
    out = tmp_path / "out.sil"
    out.write_text("precious\n")
    failed = silopt("-", "--split-input-file", "-dce", "-o", str(out), stdin=SPLIT)
    assert (failed.status, failed.stdout) == (1, "")
    assert out.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.sil"]
    good = GOOD + MARKER + GOOD
    assert silopt("-", "--split-input-file", "-dce", "-o", str(out), stdin=good) == Outcome(0, "", "")
    assert out.read_text() == AFTER_DCE + MARKER + AFTER_DCE


def test_no_output_file_when_every_chunk_stopped_on_expected_errors(tmp_path: Path) -> None:
    expected = BAD.replace("return %0 : $Int\n", "return %0 : $Int  // expected-error {{return of Int}}\n")
    out = tmp_path / "out.sil"
    result = silopt(
        "-", "--split-input-file", "--verify-diagnostics", "-o", str(out), stdin=expected + MARKER + expected
    )
    assert result == Outcome(0, "", "")
    assert not out.exists()
