"""``--trap-nan``: needs a run; stops ``--run`` and ``--check-derivatives``' runs at the first NaN
made from operands that are not NaN, with a located error; off, the same runs go on."""

from __future__ import annotations

import io
from pathlib import Path

from silopt.driver import main

ROOT = Path(__file__).resolve().parent.parent.parent
RATIO = ROOT / "golden" / "nan" / "zero_over_zero.sil"
CHECKED = ROOT / "golden" / "nan" / "check_derivatives.sil"


def silopt(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), io.StringIO(""), out, err)
    return status, out.getvalue(), err.getvalue()


def test_trap_nan_without_a_run_is_bad_usage() -> None:
    status, out, err = silopt(str(RATIO), "--trap-nan")
    assert (status, out) == (2, "")
    assert (
        err.startswith("usage: silopt")
        and "silopt: error: --trap-nan needs --run, --check-derivatives or --verify-derivatives\n" in err
    )


def test_help_lists_it() -> None:
    status, out, _ = silopt("--help")
    assert status == 0 and "--trap-nan" in out and "NaN debugging" in out


def test_a_run_stops_at_the_nan_only_when_asked() -> None:
    assert silopt(str(RATIO), "--run", "@ratio", "--args", "0", "0") == (0, "nan\n", "")
    status, out, err = silopt(str(RATIO), "--run", "@ratio", "--args", "0", "0", "--trap-nan")
    assert (status, out) == (1, "")
    assert err.startswith(
        f"{RATIO}:6:3: error: 'fdiv' made a NaN from operands that are not NaN (--trap-nan)\n"
    )
    assert err.endswith("note: operand 0 (%a): 0.0\nnote: operand 1 (%b): 0.0\n")
    assert silopt(str(RATIO), "--run", "@ratio", "--args", "1", "0", "--trap-nan") == (0, "inf\n", "")


def test_check_derivatives_runs_are_trapped() -> None:
    status, out, err = silopt(str(CHECKED), "--check-derivatives")
    assert status == 1 and "a run faulted" not in err  # untrapped, the NaN fails the comparison
    status, out, err = silopt(str(CHECKED), "--check-derivatives", "--trap-nan")
    assert (status, out) == (1, "")
    assert "error: cannot check @f (source 0 wrt 0): a run faulted\n" in err
    assert "note: 'log' made a NaN from operands that are not NaN (--trap-nan)\n" in err
    assert "note: operand 0 (%d): -" in err
