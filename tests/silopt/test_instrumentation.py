"""What watches the passes: ``--print-ir-before/after=PASS`` and their ``-all`` forms, and
``--timing`` (its report's structure; the times themselves are not reproducible)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from silopt.timing import Timing
from tests.silopt.test_driver import AFTER_DCE, BAD, GOOD, Outcome, silopt


@pytest.fixture
def good(tmp_path: Path) -> str:
    path = tmp_path / "good.sil"
    path.write_text(GOOD, encoding="utf-8")
    return str(path)


def headers(stderr: str) -> list[str]:
    return re.findall(r"^// -----// IR Dump (\w+ [\w-]+) //----- //$", stderr, re.M)


def test_print_ir_before_and_after_a_pass(good: str) -> None:
    result = silopt(good, "-dce", "--print-ir-before=dce", "--print-ir-after=dce")
    assert result == Outcome(
        0,
        AFTER_DCE,
        "// -----// IR Dump Before dce //----- //\n"
        + GOOD
        + "// -----// IR Dump After dce //----- //\n"
        + AFTER_DCE,
    )


@pytest.mark.parametrize(
    "flags",
    [
        ["--print-ir-after=dce,print-activity"],
        ["--print-ir-after=dce", "--print-ir-after", "print-activity"],
        ["--print-ir-after= dce , print-activity,"],
    ],
)
def test_print_ir_takes_comma_lists_and_repeats(good: str, flags: list[str]) -> None:
    result = silopt(good, "-print-activity", "-dce", "-dce", *flags)
    assert result.status == 0
    assert headers(result.stderr) == ["After print-activity", "After dce", "After dce"]


def test_print_ir_before_all_and_after_all_together(good: str) -> None:
    result = silopt(good, "-print-activity", "-dce", "--print-ir-before-all", "--print-ir-after-all")
    assert headers(result.stderr) == [
        "Before print-activity",
        "After print-activity",
        "Before dce",
        "After dce",
    ]


def test_print_ir_of_a_pass_not_in_the_pipeline_prints_nothing(good: str) -> None:
    assert silopt(good, "-dce", "--print-ir-before=print-activity") == Outcome(0, AFTER_DCE, "")


@pytest.mark.parametrize("flag", ["--print-ir-before", "--print-ir-after"])
def test_an_unknown_pass_to_print_around_is_bad_usage(good: str, flag: str) -> None:
    result = silopt(good, "-dce", f"{flag}=dce,dcee")
    assert (result.status, result.stdout) == (2, "")
    assert result.stderr.endswith(f"silopt: error: unknown pass 'dcee' in {flag} (did you mean 'dce'?)\n")
    assert "(see --list-passes)" in silopt(good, f"{flag}=zzz").stderr


# --- --timing ----------------------------------------------------------------------------------


class Clock:
    """A clock that moves one second each time it is read: every timer's time is exact."""

    def __init__(self) -> None:
        self.ticks: Iterator[int] = iter(range(1_000_000))

    def __call__(self) -> float:
        return float(next(self.ticks))


def test_the_report_is_mlirs_tree_with_rest_and_total() -> None:
    timing = Timing(Clock())  # read at 0
    with timing.scope("Parser"):  # 1 to 2
        pass
    with timing.scope("Pipeline"):  # 3 to 8
        timing.start("a", "dce")  # 4 to 5
        timing.stop()
        timing.start("b", "dce")  # 6 to 7, left running: the pipeline's end stops it
    assert timing.report() == (  # total: 0 to 9
        "===-------------------------------------------------------------------------===\n"
        "                         ... Execution time report ...\n"
        "===-------------------------------------------------------------------------===\n"
        "  Total Execution Time: 9.0000 seconds\n"
        "\n"
        "  ----Wall Time----  ----Name----\n"
        "    1.0000 ( 11.1%)  Parser\n"
        "    5.0000 ( 55.6%)  Pipeline\n"
        "    1.0000 ( 11.1%)    dce\n"
        "    1.0000 ( 11.1%)    dce\n"
        "    3.0000 ( 33.3%)  Rest\n"
        "    9.0000 (100.0%)  Total\n"
    )


def test_a_step_taken_again_adds_to_its_row() -> None:
    timing = Timing(Clock())
    for _ in range(3):
        with timing.scope("Verifier"):
            pass
    report = timing.report()
    assert "    3.0000 ( 42.9%)  Verifier\n" in report
    assert report.count("Verifier") == 1


ROW = re.compile(r"^  +(-?\d+\.\d{4}) \( *(-?\d+\.\d)%\)  ( *)(.*)$")


def report_rows(stderr: str) -> list[tuple[float, float, int, str]]:
    """The rows of the ``--timing`` report at the end of ``stderr``: time, share, depth, name."""
    report = stderr[stderr.index("===--") :]
    rows = []
    for line in report.splitlines()[6:]:
        m = ROW.match(line)
        assert m, line
        rows.append((float(m[1]), float(m[2]), len(m[3]) // 2, m[4]))
    return rows


def assert_consistent(rows: list[tuple[float, float, int, str]]) -> None:
    """Top-level rows and Rest add up to Total (100%); a step's passes add up to no more than it."""
    *top, total = [r for r in rows if r[2] == 0]
    assert total[1:] == (100.0, 0, "Total")
    assert sum(r[0] for r in top) == pytest.approx(total[0], abs=1e-3)
    assert sum(r[1] for r in top) == pytest.approx(100.0, abs=0.1 * len(top))
    assert all(r[0] >= 0 for r in rows if r[3] != "Rest")
    for i, (seconds, _, depth, _) in enumerate(rows):
        children = []
        for row in rows[i + 1 :]:
            if row[2] <= depth:
                break
            if row[2] == depth + 1:
                children.append(row[0])
        assert sum(children) <= seconds + 1e-3 * len(children)


def test_timing_reports_each_step_and_pass_in_order(good: str) -> None:
    result = silopt(good, "-dce", "-print-activity", "--timing", "--print-ir-after-all")
    assert result.status == 0
    assert result.stdout == AFTER_DCE
    assert result.stderr.index("IR Dump After") < result.stderr.index("Execution time report")
    rows = report_rows(result.stderr)
    assert [(depth, name) for _, _, depth, name in rows] == [
        (0, "Parser"),
        (0, "Verifier"),
        (0, "Pipeline"),
        (1, "dce"),
        (1, "print-activity"),
        (0, "Output"),
        (0, "Rest"),
        (0, "Total"),
    ]
    assert_consistent(rows)


def test_timing_of_a_run_and_of_a_failure(good: str) -> None:
    ran = silopt(good, "--run", "@f", "--args", "2", "--timing")
    assert ran.stdout == "4.0\n"
    rows = report_rows(ran.stderr)
    assert [name for *_, name in rows] == ["Backend", "Parser", "Verifier", "Run", "Output", "Rest", "Total"]
    assert_consistent(rows)
    failed = silopt("-", "-dce", "--timing", stdin=BAD)
    assert failed.status == 1
    assert failed.stderr.startswith("<stdin>:3:3: error: return of Int")
    assert [name for *_, name in report_rows(failed.stderr)] == [
        "Parser",
        "Verifier",
        "Output",
        "Rest",
        "Total",
    ]


def test_timing_adds_the_chunks_of_a_split_input(good: str) -> None:
    text = Path(good).read_text()
    result = silopt("-", "--split-input-file", "-dce", "--timing", stdin=text + "// -----\n" + text)
    assert result.status == 0
    rows = report_rows(result.stderr)
    assert [(depth, name) for _, _, depth, name in rows] == [
        (0, "Parser"),
        (0, "Verifier"),
        (0, "Pipeline"),
        (1, "dce"),
        (0, "Output"),
        (0, "Rest"),
        (0, "Total"),
    ]
    assert_consistent(rows)
