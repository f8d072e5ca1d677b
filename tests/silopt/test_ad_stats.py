"""``silopt --ad-stats``: where the report goes, the flags it needs, the wall-time line (which golden
files cannot pin), and its figures against independent measures: the interpreter's own step
counts, record bytes per trip against the bytes measured at two trip counts, and type sizes."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from interp import Program
from sil import parse
from sil.ir import EnumCase, EnumDecl, FieldDecl, Module, StructDecl
from sil.passes import PassManager, registered_passes
from sil.types import BOOL, DOUBLE, FLOAT, INT, TENSOR_SHAPE, FunctionType, NominalType, TensorType, TupleType
from silopt.ad_measure import Size, Sizes
from silopt.driver import main

ROOT = Path(__file__).resolve().parent.parent.parent
LOOP = "golden/differentiation/cf/counted_loop.sil"  # @power (Double, Int) -> Double: x^n by a loop


def silopt(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main([*argv], io.StringIO(""), out, err)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_the_report_goes_to_standard_error_and_the_module_is_unchanged() -> None:
    status, plain, nothing = silopt(LOOP, "-differentiation")
    assert status == 0 and nothing == ""
    status, out, err = silopt(LOOP, "-differentiation", "--ad-stats")
    assert status == 0 and out == plain
    assert err.startswith("AD statistics: 1 request answered, 2 derivatives made\n")
    assert "cost gradient/primal: needs --args" in err


def test_with_run_the_value_is_printed_and_the_report_follows() -> None:
    status, out, err = silopt(
        LOOP, "-differentiation", "--ad-stats-untimed", "--run", "@power", "--args", "1.5", "3"
    )
    assert status == 0 and out == "3.375\n"
    assert "executed instructions  primal" in err and "wall time" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((LOOP, "--ad-stats"), "--ad-stats reports what -differentiation or -lower-gradient makes"),
        ((LOOP, "--ad-stats-untimed", "-dce"), "--ad-stats reports what -differentiation or -lower-gradient"),
        (
            (LOOP, "-differentiation", "--args", "1"),
            "--args needs --run, --check-derivatives, --verify-derivatives or --ad-stats",
        ),
    ],
)
def test_bad_usage(argv: tuple[str, ...], message: str) -> None:
    status, out, err = silopt(*argv)
    assert status == 2 and out == "" and message in err


def test_a_failed_pipeline_prints_no_report() -> None:
    status, out, err = silopt("golden/differentiation/diagnostics.sil", "-differentiation", "--ad-stats")
    assert status == 1 and out == ""
    assert "AD statistics" not in err and "error:" in err


def test_a_module_without_requests() -> None:
    status, _, err = silopt("golden/dce/polynomial.sil", "-differentiation", "--ad-stats")
    assert status == 0
    assert err == "AD statistics: 0 requests answered, 0 derivatives made (the module asks for none)\n"


TIME = r"[0-9.]+ (µs|ms|s)"
WALL = re.compile(
    rf"^    wall time \(best of 5\)  primal {TIME}, gradient {TIME}: ratio [0-9]+\.[0-9]{{2}}\n",
    re.M,
)


def test_the_wall_time_line_and_its_absence_untimed() -> None:
    """The timed report is the untimed one with one line more, of this form."""
    _, _, timed = silopt(LOOP, "-differentiation", "--ad-stats", "--args", "1.5", "40")
    _, _, untimed = silopt(LOOP, "-differentiation", "--ad-stats-untimed", "--args", "1.5", "40")
    assert len(WALL.findall(timed)) == 1
    assert WALL.sub("", timed) == untimed
    assert "wall time" not in untimed


def differentiated(path: str) -> Module:
    module = parse((ROOT / path).read_text(encoding="utf-8"), path)
    PassManager([registered_passes()["differentiation"]()]).run(module)
    return module


def test_executed_instructions_are_the_interpreters_step_counts() -> None:
    module = differentiated(LOOP)
    program = Program(module, count_steps=True)
    program.run("power", 1.5, 7)
    primal = program.steps
    _, pullback = program.run("AD__power__vjp_src_0_wrt_0", 1.5, 7)
    vjp = program.steps
    pullback(1.0)
    assert primal is not None and vjp is not None and program.steps is not None
    _, _, err = silopt(LOOP, "-differentiation", "--ad-stats-untimed", "--args", "1.5", "7")
    total = vjp + program.steps
    line = f"primal {primal}, VJP {vjp} + pullback {program.steps} = {total}: ratio {total / primal:.2f}"
    assert line in err


def kept(trips: int) -> tuple[dict[str, int], int]:
    _, _, err = silopt(LOOP, "-differentiation", "--ad-stats-untimed", "--args", "1.5", str(trips))
    match = re.search(r"records kept +\d+ records? \(([^)]*)\), (\d+) bytes", err)
    assert match is not None, err
    counts = {block: int(n) for block, n in (part.split() for part in match.group(1).split(", "))}
    return counts, int(match.group(2))


def test_bytes_per_trip_are_what_one_more_trip_keeps() -> None:
    """The static bytes of a trip (bb1's record, 9, and bb2's, 24) against the measured records at
    n and n + 1 trips; and the records, one per block visited."""
    _, _, err = silopt(LOOP, "-differentiation", "--ad-stats-untimed")
    assert re.search(r"VJP  bb1   bb1, bb2  33 bytes\n", err)
    counts, at_five = kept(5)
    assert counts == {"bb1": 6, "bb2": 5, "bb3": 1}
    _, at_six = kept(6)
    assert at_six - at_five == 33
    assert at_five == 6 * 9 + 5 * 24 + 8


def test_arguments_that_do_not_fit_or_a_fault_are_said_in_the_report() -> None:
    status, _, err = silopt(LOOP, "-differentiation", "--ad-stats-untimed", "--args", "1.5")
    assert status == 0
    assert "cannot be measured: --args gives 1, '@power' takes 2 arguments (Double, Int)" in err
    status, _, err = silopt(LOOP, "-differentiation", "--ad-stats-untimed", "--args", "1.5", "x")
    assert status == 0 and "cannot be measured: --args for '@power': " in err
    status, _, err = silopt(
        LOOP, "-differentiation", "--ad-stats-untimed", "--max-steps", "5", "--args", "1.5", "9"
    )
    assert status == 0 and "cannot be measured: the run exceeded --max-steps 5" in err


def sizes_module() -> Module:
    module = Module()
    module.add_type(StructDecl("P", [FieldDecl("a", FLOAT), FieldDecl("b", TensorType(FLOAT))]))
    module.add_type(
        EnumDecl("E", [EnumCase("none"), EnumCase("some", NominalType("P")), EnumCase("flag", BOOL)])
    )
    module.add_type(StructDecl("Rec", [FieldDecl("pred", NominalType("Rec")), FieldDecl("x", DOUBLE)]))
    return module


def test_type_sizes() -> None:
    sizes = Sizes(sizes_module(), {"Rec"})
    closure = FunctionType((DOUBLE,), DOUBLE, convention="callee_guaranteed")
    assert [sizes.of(t).bytes for t in (FLOAT, DOUBLE, INT, BOOL, closure)] == [4, 8, 8, 1, 8]
    assert sizes.of(TupleType((FLOAT, INT, TENSOR_SHAPE))) == Size(12, shapes=1)
    assert sizes.of(NominalType("P")) == Size(4, tensors=1)
    assert sizes.of(NominalType("E")) == Size(1 + 4, tensors=1)  # a tag and the largest payload
    assert sizes.of(NominalType("Rec")) == Size(8)  # a record is held by reference
    assert sizes.layout("Rec") == Size(8 + 8)
    assert Size(12, 1, 2).text() == "12 bytes + 1 tensor + 2 shapes"
    assert Size(16).up_to(Size(24)) == "16 to 24 bytes"
