"""Golden-file cases: ``golden/<area>/<name>.sil`` whose first line is a RUN line.

``// RUN: silopt %s <flags>`` expects exit status 0; ``// RUN: not silopt %s <flags>`` expects
exit status 1 (a diagnostic), as in LLVM's lit. ``%s`` is the case's path relative to the
repository root, which is the working directory of the run. Standard output must equal
``<name>.expected`` and standard error ``<name>.stderr`` byte for byte (a missing file means
empty). Every non-empty ``.expected`` of a case that prints a module (every case but those of
``--run``, ``--check-derivatives``, ``--emit-dot`` and ``--explain-activity``, which print something
else: ``test_golden._NOT_A_MODULE``) must itself parse, verify, and print back unchanged, but for the
end-of-line comments an analysis printer (``-print-activity``) adds; with ``--split-input-file``,
each part of it between ``// -----`` lines must.

``< %s`` in place of the file reads the case from standard input instead (``silopt -dce < %s``);
without it, standard input is empty.
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
    stdin: str | None = None  # the path standard input reads (``< %s``)


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
    words = [relative if w == "%s" else w for w in words[1:]]
    stdin = None
    if "<" in words:
        at = words.index("<")
        stdin = words[at + 1]
        del words[at : at + 2]
    return RunLine(tuple(words), expect_failure, stdin)


def run_case(case: Path) -> tuple[RunLine, Outcome]:
    """Run a case's RUN line in-process (with the repository root as working directory)."""
    import os

    from silopt.driver import main

    run = read_run_line(case)
    stdout, stderr = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    stdin = "" if run.stdin is None else (ROOT / run.stdin).read_text(encoding="utf-8")
    try:
        status = main(list(run.argv), io.StringIO(stdin), stdout, stderr)
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
