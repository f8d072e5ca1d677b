"""Runs every golden case (see ``harness.py``); ``pytest --update-golden`` rewrites expectations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from golden.harness import (
    GOLDEN,
    case_paths,
    expectation_paths,
    read_expected,
    read_run_line,
    run_case,
    write_expected,
)
from sil import parse, print_module, verify_module
from silopt.split_input import MARKER as SPLIT_MARKER

CASES = case_paths()


@pytest.mark.parametrize("case", CASES, ids=[c.relative_to(GOLDEN).as_posix() for c in CASES])
def test_golden(case: Path, request: pytest.FixtureRequest) -> None:
    run, outcome = run_case(case)
    expected_status = 1 if run.expect_failure else 0
    assert outcome.status == expected_status, (
        f"exit status {outcome.status}, expected {expected_status}\n{outcome.stderr}"
    )
    stdout_path, stderr_path = expectation_paths(case)
    if request.config.getoption("--update-golden"):
        write_expected(stdout_path, outcome.stdout)
        write_expected(stderr_path, outcome.stderr)
    assert outcome.stdout == read_expected(stdout_path)
    assert outcome.stderr == read_expected(stderr_path)


# Flags whose output is not a module: ``--run`` prints a value, ``--check-derivatives`` a report,
# ``--emit-dot`` Graphviz DOT and ``--explain-activity`` an explanation.
_NOT_A_MODULE = ("--run", "--check-derivatives", "--emit-dot", "--explain-activity")


def _prints_module(expected: Path) -> bool:
    """Whether a case's standard output is a module (see ``_NOT_A_MODULE``)."""
    argv = read_run_line(expected.with_suffix(".sil")).argv
    return not any(arg.split("=", 1)[0] in _NOT_A_MODULE for arg in argv)


EXPECTED = sorted(
    p for p in GOLDEN.glob("*/**/*.expected") if p.read_text(encoding="utf-8") and _prints_module(p)
)
# An analysis printer's annotations: a comment ending a line, which the canonical printer never writes.
_ANNOTATION = re.compile(r"  // [^\n]*")


@pytest.mark.parametrize("expected", EXPECTED, ids=[p.relative_to(GOLDEN).as_posix() for p in EXPECTED])
def test_expected_output_is_canonical_sil(expected: Path) -> None:
    """An expectation is itself a module that verifies and prints back unchanged (less the
    annotations of an analysis printer such as ``-print-activity``); with ``--split-input-file``,
    each of its parts is."""
    text = expected.read_text(encoding="utf-8")
    split = "--split-input-file" in read_run_line(expected.with_suffix(".sil")).argv
    for part in text.split(SPLIT_MARKER + "\n") if split else [text]:
        module = parse(part, str(expected))
        assert verify_module(module) == []
        assert print_module(module) == _ANNOTATION.sub("", part)
