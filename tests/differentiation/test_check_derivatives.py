"""silopt --check-derivatives on every golden differentiation case: the synthesized derivatives
agree with finite differences and with each other; a wrong registered VJP is caught."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from golden.harness import GOLDEN, ROOT, read_run_line
from silopt.driver import main

CASES = sorted(
    p
    for p in (GOLDEN / "differentiation").rglob("*.sil")
    if "-differentiation" in read_run_line(p).argv and not read_run_line(p).expect_failure
)


def silopt(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), io.StringIO(""), out, err)
    return status, out.getvalue(), err.getvalue()


# Cases whose functions take tensors, whose shapes --check-derivatives cannot choose, or function
# values, which it cannot draw: checked by the test named instead.
CHECKED_ELSEWHERE = {
    "tensors.sil": "tests/differentiation/test_tensor_gradients.py",
    "bundle_calls.sil": "tests/differentiation/test_bundles.py",
}


@pytest.mark.parametrize("case", CASES, ids=[c.relative_to(GOLDEN).as_posix() for c in CASES])
def test_golden_derivatives_check_out(case: Path) -> None:
    status, out, err = silopt(str(case.relative_to(ROOT)), "-differentiation", "--check-derivatives")
    assert (status, err) == (0, ""), err
    lines = out.splitlines()
    if case.name in CHECKED_ELSEWHERE:
        assert (ROOT / CHECKED_ELSEWHERE[case.name]).exists()
        assert lines and all(": not checked: " in line for line in lines), out
    else:
        assert lines and all(line.endswith(": ok") for line in lines), out


EXAMPLES = sorted(
    p for p in (ROOT / "examples").glob("*.sil") if "[differentiable" in p.read_text(encoding="utf-8")
)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_shipped_examples_differentiate_and_check_out(example: Path) -> None:
    status, out, err = silopt(str(example.relative_to(ROOT)), "-differentiation", "--check-derivatives")
    assert (status, err) == (0, ""), err
    assert out and all(line.endswith(": ok") for line in out.splitlines()), out


def test_the_readme_example_trains() -> None:
    status, out, err = silopt(
        str(ROOT / "examples" / "regression.sil"), "--run", "@step", "--args", "0.5", "0.0"
    )
    assert (status, err) == (0, "")
    w, b, loss = (float(x) for x in out.strip("()\n").split(", "))
    status, out, _ = silopt(
        str(ROOT / "examples" / "regression.sil"), "--run", "@step", "--args", str(w), str(b)
    )
    assert float(out.strip("()\n").split(", ")[2]) < loss  # the step lowered the loss


def test_nothing_to_check_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "plain.sil"
    path.write_text(
        "sil @f : $@convention(thin) (Float) -> Float {\nbb0(%x : $Float):\n  return %x : $Float\n}\n",
        encoding="utf-8",
    )
    status, out, err = silopt(str(path), "--check-derivatives")
    assert status == 1 and out == ""
    assert "no function has both a JVP and a VJP to check" in err


def test_functions_with_other_parameters_are_reported_not_checked(tmp_path: Path) -> None:
    path = tmp_path / "int.sil"
    path.write_text(
        "sil [differentiable source 0 wrt 0] @f : $@convention(thin) (Double, Tensor<Double>) -> Double {\n"
        "bb0(%x : $Double, %t : $Tensor<Double>):\n"
        '  %y = builtin "fmul"(%x : $Double, %x : $Double) : $Double\n'
        "  return %y : $Double\n}\n",
        encoding="utf-8",
    )
    status, out, _ = silopt(str(path), "-differentiation", "--check-derivatives")
    assert status == 0
    reason = (
        "only Float and Double scalars, and tuples and structs of them, can be drawn "
        "(and Int and Bool, where not differentiated)"
    )
    assert out == f"@f (source 0 wrt 0): not checked: {reason}\n"
