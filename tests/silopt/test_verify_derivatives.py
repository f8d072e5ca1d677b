"""silopt --verify-derivatives: after each pass, the derivatives it made or changed are checked
numerically; a wrong one stops the pipeline at the pass that emitted it, with the derivative's
functions, the point and both values. Float programs are also checked in their Double shadow,
which tells rounding from a wrong rule; a Hessian (the derivative of a gradient) is also checked
for symmetry."""

from __future__ import annotations

import io
import math
from pathlib import Path

import attrs
import pytest

from accel.numpy_backend import NumpyBackend
from differentiation.rules import RULES
from golden.harness import GOLDEN, read_run_line
from interp import Program
from sil import parse
from sil.passes import PassManager, registered_passes
from silopt.check_derivatives import answered_requests, gradients_in
from silopt.driver import main
from silopt.mutate_rules import Mutant, mutated
from silopt.verify_derivatives import DerivativeVerification, hessian_asymmetry

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ["-differentiation", "-lower-gradient", "-O"]
# Their functions take function values, which cannot be drawn: checked by the test named.
CHECKED_ELSEWHERE = {"bundle_calls.sil": "tests/differentiation/test_bundles.py"}
CASES = sorted(
    p
    for p in (GOLDEN / "differentiation").rglob("*.sil")
    if "-differentiation" in read_run_line(p).argv
    and "--verify-derivatives" not in read_run_line(p).argv  # verified by its own RUN line
    and not read_run_line(p).expect_failure
    and p.name not in CHECKED_ELSEWHERE
)

HESSIAN = (GOLDEN / "differentiation" / "second_order" / "hessian_vector_product.sil").read_text("utf-8")
SECOND_ORDER = [*PIPELINE, "-differentiation", "-lower-gradient"]

FLOAT_POLYNOMIAL = """
sil [differentiable wrt 0] @f : $@convention(thin) (Float) -> Float {
bb0(%x : $Float):
  %s = builtin "sin"(%x : $Float) : $Float
  %e = builtin "exp"(%s : $Float) : $Float
  %p = builtin "fmul"(%x : $Float, %e : $Float) : $Float
  return %p : $Float
}
"""

# A JVP a thousandth off: within Float's finite-difference tolerance, not within its Double shadow's.
SLIGHTLY_WRONG_JVP = """
sil [differentiable wrt 0 jvp @f_jvp] @f : $@convention(thin) (Float) -> Float {
bb0(%x : $Float):
  %s = builtin "sin"(%x : $Float) : $Float
  return %s : $Float
}

sil @f_jvp : $@convention(thin) (Float) -> (Float, @callee_guaranteed (Float) -> Float) {
bb0(%x : $Float):
  %s = builtin "sin"(%x : $Float) : $Float
  %c = builtin "cos"(%x : $Float) : $Float
  %k = float_literal $Float, 1.001
  %ck = builtin "fmul"(%c : $Float, %k : $Float) : $Float
  %d = function_ref @times : $@convention(thin) (Float, Float) -> Float
  %p = partial_apply [callee_guaranteed] %d(%ck) : $@convention(thin) (Float, Float) -> Float
  %r = tuple (%s : $Float, %p : $@callee_guaranteed (Float) -> Float)
  return %r : $(Float, @callee_guaranteed (Float) -> Float)
}

sil @times : $@convention(thin) (Float, Float) -> Float {
bb0(%v : $Float, %c : $Float):
  %r = builtin "fmul"(%c : $Float, %v : $Float) : $Float
  return %r : $Float
}
"""


def silopt(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), io.StringIO(""), out, err)
    return status, out.getvalue(), err.getvalue()


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "m.sil"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("name", sorted(CHECKED_ELSEWHERE))
def test_cases_checked_elsewhere_cannot_be_verified_and_say_so(name: str) -> None:
    status, out, err = silopt(str(GOLDEN / "differentiation" / name), *PIPELINE, "--verify-derivatives")
    assert (status, out) == (1, "")
    assert "error: after -differentiation: cannot check @" in err and "cannot be drawn" in err, err
    assert (ROOT / CHECKED_ELSEWHERE[name]).exists()


@pytest.mark.parametrize("case", CASES, ids=[c.relative_to(GOLDEN).as_posix() for c in CASES])
def test_golden_derivatives_verify_through_the_optimizer(case: Path) -> None:
    """Verification changes nothing: the module printed is the one printed without it."""
    status, out, err = silopt(str(case), *PIPELINE, "--verify-derivatives")
    assert (status, err) == (0, ""), err
    assert out == silopt(str(case), *PIPELINE)[1]


def test_it_needs_passes_and_takes_the_running_options(tmp_path: Path) -> None:
    path = write(tmp_path, FLOAT_POLYNOMIAL)
    status, _, err = silopt(path, "--verify-derivatives")
    assert status == 2 and "--verify-derivatives checks what the passes emit: name some" in err
    for more in (["--args", "0.5"], ["--max-steps", "1000"], ["--trap-nan"]):
        assert silopt(path, "-differentiation", "--verify-derivatives", *more)[0] == 0, more
    assert "--verify-derivatives" in silopt("--help")[1]


def test_a_wrong_rule_is_caught_at_the_pass_that_emits_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pullback of ``sin`` negated: -differentiation emits a wrong VJP, and the error names the
    pass, the VJP, the point and the two values."""
    monkeypatch.setitem(RULES, "sin", mutated(RULES["sin"], Mutant.parse("sin:pullback-negated:0")))
    status, out, err = silopt(write(tmp_path, FLOAT_POLYNOMIAL), *PIPELINE, "--verify-derivatives")
    assert (status, out) == (1, "")
    assert "m.sil:2:6: error: after -differentiation: the derivatives of @f (source 0 wrt 0) disagree" in err
    assert "JVP vs VJP: at @f(" in err and "<J·v, w> = " in err and "<v, Jᵀ·w> = " in err, err
    checked = "@AD__f__jvp_src_0_wrt_0, @AD__f__vjp_src_0_wrt_0"
    assert f"the derivative checked: {checked}, as -differentiation left it" in err


def test_the_args_point_is_checked_as_well_as_drawn_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The point --args gives is checked first, and a wrong derivative is reported there."""
    monkeypatch.setitem(RULES, "sin", mutated(RULES["sin"], Mutant.parse("sin:pullback-doubled:0")))
    status, _, err = silopt(
        write(tmp_path, FLOAT_POLYNOMIAL), "-differentiation", "--verify-derivatives", "--args", "0.25"
    )
    assert status == 1
    assert "at @f(0.25)" in err, err


def test_float_rounding_is_told_apart_from_a_wrong_rule(tmp_path: Path) -> None:
    path = write(tmp_path, SLIGHTLY_WRONG_JVP)
    status, out, _ = silopt(path, "--check-derivatives")
    assert status == 1 and "; in Double: JVP vs finite differences" in out and out.endswith(": FAILED\n"), out
    status, _, err = silopt(path, "-differentiation", "--verify-derivatives")
    assert status == 1
    assert "note: in the Double shadow of the Float program: JVP vs finite differences" in err, err
    status, out, _ = silopt(write(tmp_path, FLOAT_POLYNOMIAL), "--check-derivatives")
    assert status == 0 and "; in Double: " in out, out


def test_a_float_program_s_double_shadow_computes_in_binary64() -> None:
    module = parse(FLOAT_POLYNOMIAL)
    single = Program(module, NumpyBackend()).run("@f", 0.1)
    double = Program(module, NumpyBackend()).double_shadow().run("@f", 0.1)
    assert single != double and abs(single - double) < 1e-6
    assert double == 0.1 * math.exp(math.sin(0.1))  # nothing rounded to binary32, the argument either


def test_the_hessian_of_a_gradient_is_verified_for_symmetry(tmp_path: Path) -> None:
    path = write(tmp_path, HESSIAN)
    status, out, err = silopt(path, *SECOND_ORDER, "--verify-derivatives")
    assert (status, err) == (0, ""), err
    assert out == silopt(path, *SECOND_ORDER)[1]
    module = parse(HESSIAN)
    passes = registered_passes()
    verification = DerivativeVerification(NumpyBackend())
    PassManager([passes[p.removeprefix("-")]() for p in SECOND_ORDER], instrumentations=[verification]).run(
        module
    )
    assert (
        verification.checked == 3
    )  # the gradient as made and as optimized, then the pair of its derivatives


PAIR = "(Double, Double)"
LINEAR = f"@callee_guaranteed {PAIR} -> {PAIR}"
# A JVP whose differential, (u, v) -> (u + 2v, v), is linear but not symmetric.
SKEWED = f"""
sil @skewed_jvp : $@convention(thin) {PAIR} -> ({PAIR}, {LINEAR}) {{
bb0(%x : $Double, %y : $Double):
  %v = tuple (%x : $Double, %y : $Double)
  %d = function_ref @skewed : $@convention(thin) {PAIR} -> {PAIR}
  %t = thin_to_thick_function %d : $@convention(thin) {PAIR} -> {PAIR} to ${LINEAR}
  %r = tuple (%v : ${PAIR}, %t : ${LINEAR})
  return %r : $({PAIR}, {LINEAR})
}}

sil @skewed : $@convention(thin) {PAIR} -> {PAIR} {{
bb0(%u : $Double, %v : $Double):
  %two = float_literal $Double, 2.0
  %w = builtin "fmul"(%two : $Double, %v : $Double) : $Double
  %a = builtin "fadd"(%u : $Double, %w : $Double) : $Double
  %r = tuple (%a : $Double, %v : $Double)
  return %r : ${PAIR}
}}
"""


def test_an_asymmetric_hessian_is_an_error() -> None:
    """The Hessian the derivative of a gradient gives is checked for symmetry; a linear map that is
    not symmetric, given as that derivative, fails with the point and both products."""
    module = parse(HESSIAN + SKEWED)
    passes = registered_passes()
    gradients = gradients_in(module)
    PassManager([passes[p.removeprefix("-")]() for p in [*PIPELINE, "-differentiation"]]).run(module)
    requests = answered_requests(module, gradients)
    first = next(r for r in requests if r.gradient is not None)
    second = next(r for r in requests if r.original is first.gradient)
    program = Program(module, NumpyBackend())
    assert hessian_asymmetry(program, second, first, 0) is None
    skewed = attrs.evolve(second, jvp=module.functions["skewed_jvp"], vjp=None)
    found = hessian_asymmetry(program, skewed, first, 0)
    assert found is not None
    assert found.message == f"the Hessian the derivative of {second.describe()} gives is not symmetric"
    assert "<u, H·v> = " in found.notes[0].message and "<v, H·u> = " in found.notes[0].message
    assert found.span is second.span is not None


def test_a_request_not_yet_answered_is_not_checked(tmp_path: Path) -> None:
    """-O before -differentiation changes the original of a request that has no derivative yet:
    nothing to check until -differentiation answers it."""
    twice = FLOAT_POLYNOMIAL.replace(
        '%p = builtin "fmul"(%x : $Float, %e : $Float)',
        '%s2 = builtin "sin"(%x : $Float) : $Float\n  %p = builtin "fmul"(%s2 : $Float, %e : $Float)',
    )
    path = write(tmp_path, twice)
    assert silopt(path, "-O")[1] != silopt(path)[1]  # -O merges the two sines
    status, _, err = silopt(path, "-O", "-differentiation", "-O", "--verify-derivatives")
    assert (status, err) == (0, "")
