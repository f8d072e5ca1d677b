"""Golden-file cases: ``golden/<area>/<name>.sil`` whose first line is a RUN line.

``// RUN: silopt %s <flags>`` expects exit status 0; ``// RUN: not silopt %s <flags>`` expects
exit status 1 (a diagnostic), as in LLVM's lit. ``%s`` is the case's path relative to the
repository root, which is the working directory of the run. Standard output must equal
``<name>.expected`` and standard error ``<name>.stderr`` byte for byte (a missing file means
empty). Every non-empty ``.expected`` of a case that prints a module (every case but those of
``--run``, ``--check-derivatives``, ``--emit-dot`` and ``--explain-activity``, which print something
else: ``test_golden._NOT_A_MODULE``) must itself parse, verify, and print back unchanged, but for the
end-of-line comments an analysis printer (``-print-activity``) adds.
"""

from __future__ import annotations

import io
import shlex
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "golden"


@attrs.frozen
class RunLine:
    argv: tuple[str, ...]
    expect_failure: bool


@attrs.frozen
class Outcome:
    status: int
    stdout: str
    stderr: str


def case_paths() -> list[Path]:
    return sorted(GOLDEN.glob("*/**/*.sil"))


def read_run_line(case: Path) -> RunLine:
    first = case.read_text(encoding="utf-8").split("\n", 1)[0]
    prefix = "// RUN:"
    if not first.startswith(prefix):
        raise ValueError(f"{case}: the first line must be '// RUN: silopt %s …'")
    words = shlex.split(first[len(prefix) :])
    expect_failure = bool(words) and words[0] == "not"
    if expect_failure:
        words = words[1:]
    if not words or words[0] != "silopt":
        raise ValueError(f"{case}: the RUN line must invoke silopt")
    relative = case.relative_to(ROOT).as_posix()
    return RunLine(tuple(relative if w == "%s" else w for w in words[1:]), expect_failure)


def run_case(case: Path) -> tuple[RunLine, Outcome]:
    """Run a case's RUN line in-process (with the repository root as working directory)."""
    import os

    from silopt.driver import main

    run = read_run_line(case)
    stdout, stderr = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        status = main(list(run.argv), io.StringIO(""), stdout, stderr)
    finally:
        os.chdir(cwd)
    return run, Outcome(status, stdout.getvalue(), stderr.getvalue())


def expectation_paths(case: Path) -> tuple[Path, Path]:
    return case.with_suffix(".expected"), case.with_suffix(".stderr")


def read_expected(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def write_expected(path: Path, text: str) -> None:
    if text:
        path.write_text(text, encoding="utf-8")
    elif path.exists():
        path.unlink()
