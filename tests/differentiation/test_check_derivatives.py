"""silopt --check-derivatives: every derivative a module asks for is differentiated and checked
numerically (JVPs and VJPs against finite differences and each other, tensors included); what
cannot be checked is an error; a failure names the point and both values; kinks within the
finite-difference step raise no false alarm."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from accel.numpy_backend import NumpyBackend
from golden.harness import GOLDEN, ROOT, read_run_line
from sil import parse
from silopt.check_derivatives import Comparison, check_module
from silopt.driver import main
from silopt.finite_differences import flat

# Cases whose functions take function values, which --check-derivatives cannot draw (it says so, as
# an error): checked numerically by the test named instead.
CHECKED_ELSEWHERE = {"bundle_calls.sil": "tests/differentiation/test_bundles.py"}
CASES = sorted(
    p
    for p in (GOLDEN / "differentiation").rglob("*.sil")
    if "-differentiation" in read_run_line(p).argv
    and "--verify-derivatives" not in read_run_line(p).argv  # verified by its own RUN line
    and not read_run_line(p).expect_failure
    and p.name not in CHECKED_ELSEWHERE
)


@pytest.mark.parametrize("name", sorted(CHECKED_ELSEWHERE))
def test_cases_checked_elsewhere_are_refused_by_name(name: str) -> None:
    status, _, err = silopt(str(GOLDEN / "differentiation" / name), "--check-derivatives")
    assert status == 1 and "cannot check @" in err and "cannot be drawn" in err, err
    assert (ROOT / CHECKED_ELSEWHERE[name]).exists()


def silopt(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), io.StringIO(""), out, err)
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("flags", [["-differentiation"], []], ids=["differentiated", "as-written"])
@pytest.mark.parametrize("case", CASES, ids=[c.relative_to(GOLDEN).as_posix() for c in CASES])
def test_golden_derivatives_check_out(case: Path, flags: list[str]) -> None:
    """With or without -differentiation first: --check-derivatives differentiates what it needs."""
    status, out, err = silopt(str(case), *flags, "--check-derivatives")
    assert (status, err) == (0, ""), err
    assert out and all(line.endswith(": ok") for line in out.splitlines()), out


LEGACY_GRADIENTS = sorted(
    p
    for p in (GOLDEN / "legacy").rglob("*.sil")
    if "gradient [" in p.read_text(encoding="utf-8") and not read_run_line(p).expect_failure
)


@pytest.mark.parametrize("case", LEGACY_GRADIENTS, ids=[c.name for c in LEGACY_GRADIENTS])
def test_legacy_gradients_check_out(case: Path) -> None:
    """A gradient of a function in the legacy form (as written, before any migration pass) runs its
    primal and adjoint: checked as well."""
    status, out, err = silopt(str(case), "--check-derivatives")
    assert (status, err) == (0, ""), err
    assert "gradient of @" in out and all(line.endswith(": ok") for line in out.splitlines()), out


EXAMPLES = sorted(
    p for p in (ROOT / "examples").glob("*.sil") if "[differentiable" in p.read_text(encoding="utf-8")
)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_shipped_examples_differentiate_and_check_out(example: Path) -> None:
    status, out, err = silopt(str(example), "-differentiation", "--check-derivatives")
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


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Diagnostics name files as given: the tests give them relative to here."""
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str, name: str = "m.sil") -> str:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return name


def test_nothing_to_check_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sil @f : $@convention(thin) (Float) -> Float {\nbb0(%x : $Float):\n  return %x : $Float\n}\n",
    )
    status, out, err = silopt(path, "--check-derivatives")
    assert (status, out) == (1, "")
    assert err == (
        "error: nothing to check: the module asks for no derivative "
        "([differentiable], differentiable_function, gradient)\n"
    )


SIN_PRODUCT = """\
sil @f : $@convention(thin) (Double, Double) -> Double {
bb0(%x : $Double, %y : $Double):
  %p = builtin "fmul"(%x : $Double, %y : $Double) : $Double
  %s = builtin "sin"(%p : $Double) : $Double
  return %s : $Double
}
"""

GRADIENT_ONLY = (
    SIN_PRODUCT
    + """
sil @main : $@convention(thin) (Double, Double) -> (Double, Double) {
bb0(%x : $Double, %y : $Double):
  %f = function_ref @f : $@convention(thin) (Double, Double) -> Double
  %g = gradient [wrt 0, 1] %f : $@convention(thin) (Double, Double) -> Double
  %both = apply %g(%x, %y) : $@convention(thin) (Double, Double) -> (Double, Double)
  return %both : $(Double, Double)
}
"""
)


def test_a_gradient_is_checked_against_finite_differences_without_a_jvp(tmp_path: Path) -> None:
    status, out, err = silopt(write(tmp_path, GRADIENT_ONLY), "--check-derivatives")
    assert (status, err) == (0, "")
    assert out.startswith("gradient of @f (source 0 wrt 0, 1): VJP vs finite differences ")
    assert out.endswith(": ok\n") and len(out.splitlines()) == 1


WRONG_REGISTERED_VJP = (
    SIN_PRODUCT.replace("sil @f", "sil [differentiable source 0 wrt 0 vjp @f_vjp] @f")
    + """
sil @f_vjp : $@convention(thin) (Double, Double) -> (Double, @callee_guaranteed (Double) -> Double) {
bb0(%x : $Double, %y : $Double):
  %p = builtin "fmul"(%x : $Double, %y : $Double) : $Double
  %s = builtin "sin"(%p : $Double) : $Double
  %c = builtin "cos"(%p : $Double) : $Double
  %scale = function_ref @scale : $@convention(thin) (Double, Double) -> Double
  %pb = partial_apply [callee_guaranteed] %scale(%c) : $@convention(thin) (Double, Double) -> Double
  %r = tuple (%s : $Double, %pb : $@callee_guaranteed (Double) -> Double)
  return %r : $(Double, @callee_guaranteed (Double) -> Double)
}

sil @scale : $@convention(thin) (Double, Double) -> Double {
bb0(%v : $Double, %k : $Double):
  %r = builtin "fmul"(%v : $Double, %k : $Double) : $Double
  return %r : $Double
}

sil @main : $@convention(thin) (Double, Double) -> Double {
bb0(%x : $Double, %y : $Double):
  %f = function_ref @f : $@convention(thin) (Double, Double) -> Double
  %g = gradient [wrt 0] %f : $@convention(thin) (Double, Double) -> Double
  %d = apply %g(%x, %y) : $@convention(thin) (Double, Double) -> Double
  return %d : $Double
}
"""
)


def test_a_wrong_registered_vjp_fails_against_finite_differences_with_the_point_and_both_values(
    tmp_path: Path,
) -> None:
    """The pullback forgets the factor y of d sin(xy)/dx: the gradient, which uses it, is caught
    against finite differences, and the attribute against its synthesized JVP."""
    status, out, err = silopt(write(tmp_path, WRONG_REGISTERED_VJP), "--check-derivatives")
    assert status == 1
    assert "gradient of @f (source 0 wrt 0): VJP vs finite differences " in out and ": FAILED" in out
    lines = err.splitlines()
    assert "m.sil:28:3: error: the derivatives of gradient of @f (source 0 wrt 0) disagree" in err
    assert "m.sil:1:6: error: the derivatives of @f (source 0 wrt 0) disagree" in err  # the attribute
    failures = [line for line in lines if line.startswith("note: VJP vs finite differences: at @f(")]
    assert len(failures) == 1
    detail = failures[0]
    assert " along (" in detail and " with seed 1.0: finite differences <D·v, w> = " in detail
    assert ", <v, Jᵀ·w> = " in detail and "(relative error " in detail and "tolerance 1e-06)" in detail


ENUM_PARAMETER = """\
enum Choice {
  case a
  case b
}

sil [differentiable source 0 wrt 0] @f : $@convention(thin) (Double, Choice) -> Double {
bb0(%x : $Double, %c : $Choice):
  %y = builtin "fmul"(%x : $Double, %x : $Double) : $Double
  return %y : $Double
}
"""


def test_a_request_that_cannot_be_checked_is_an_error(tmp_path: Path) -> None:
    status, out, err = silopt(write(tmp_path, ENUM_PARAMETER), "--check-derivatives")
    assert (status, out) == (1, "")
    assert err.startswith(
        "m.sil:6:6: error: cannot check @f (source 0 wrt 0): a value of type Choice cannot be drawn\n"
    )


def test_a_declaration_with_only_a_vjp_cannot_be_checked(tmp_path: Path) -> None:
    vjp = WRONG_REGISTERED_VJP[
        WRONG_REGISTERED_VJP.index("sil @f_vjp") : WRONG_REGISTERED_VJP.index("sil @main")
    ]
    text = (
        "sil [differentiable source 0 wrt 0 vjp @f_vjp] @f : $@convention(thin) (Double, Double) -> Double\n"
        + vjp
        + "sil [differentiable source 0 wrt 0] @g : $@convention(thin) (Double) -> Double {\n"
        + "bb0(%x : $Double):\n  return %x : $Double\n}\n"
    )
    outcomes, errors = check_module(parse(text, "m.sil"), NumpyBackend())
    assert [o.line().split(":")[0] for o in outcomes] == ["@g (source 0 wrt 0)"]
    assert [e.message for e in errors] == [
        "cannot check @f (source 0 wrt 0): it has no body to compare its derivative with"
    ]


# matmul needs shapes that fit: the drawn 3x3 tensors do, and so do the .npy points given with --args.
TENSOR_LAYER = """\
sil [differentiable source 0 wrt 0] @layer : $@convention(thin) (Tensor<Double>, Tensor<Double>) -> Double {
bb0(%w : $Tensor<Double>, %x : $Tensor<Double>):
  %xw = builtin "matmul"(%x : $Tensor<Double>, %w : $Tensor<Double>) : $Tensor<Double>
  %a = builtin "tanh"(%xw : $Tensor<Double>) : $Tensor<Double>
  %m = builtin "mean"(%a : $Tensor<Double>) : $Double
  return %m : $Double
}
"""


def test_tensor_functions_are_checked_at_drawn_points(tmp_path: Path) -> None:
    status, out, err = silopt(write(tmp_path, TENSOR_LAYER), "--check-derivatives")
    assert (status, err) == (0, "")
    assert out.startswith("@layer (source 0 wrt 0): JVP vs finite differences ") and out.endswith(": ok\n")


def test_tensor_functions_are_checked_at_the_point_args_gives(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    np.save(tmp_path / "w.npy", rng.standard_normal((4, 2)))
    np.save(tmp_path / "x.npy", rng.standard_normal((5, 4)))
    path = write(tmp_path, TENSOR_LAYER)
    status, out, err = silopt(path, "--check-derivatives", "--args", "w.npy", "x.npy")
    assert (status, err) == (0, "")
    assert out.endswith(": ok\n")
    status, out, err = silopt(path, "--check-derivatives", "--args", "x.npy", "x.npy")
    assert (status, out) == (1, "")
    assert err.startswith("m.sil:1:6: error: cannot check @layer (source 0 wrt 0): a run faulted\n")
    assert "shape mismatch in 'matmul'" in err


def test_args_that_do_not_fit_cannot_be_checked(tmp_path: Path) -> None:
    status, out, err = silopt(write(tmp_path, TENSOR_LAYER), "--check-derivatives", "--args", "1.0")
    assert (status, out) == (1, "")
    assert "cannot check @layer (source 0 wrt 0): it takes 2 arguments, but --args gives 1" in err


# fmax(x*x, 1) has a kink at x = 1, inside [0.3, 1.5] where points are drawn: a point within the
# finite-difference step of it must be drawn again, not fail a correct derivative.
FLOAT_KINK = """\
sil [differentiable source 0 wrt 0] @f : $@convention(thin) (Float) -> Float {
bb0(%x : $Float):
  %xx = builtin "fmul"(%x : $Float, %x : $Float) : $Float
  %one = float_literal $Float, 1.0
  %y = builtin "fmax"(%xx : $Float, %one : $Float) : $Float
  return %y : $Float
}
"""

# A branch whose sides meet with equal slopes but different curvature (C1, not C2, at x = 1): the
# central differences straddling it are off by up to h/2.
DOUBLE_BRANCH = """\
sil [differentiable source 0 wrt 0] @f : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  %one = float_literal $Double, 1.0
  %above = builtin "fcmp_ogt"(%x : $Double, %one : $Double) : $Bool
  cond_br %above, bb1, bb2
bb1:
  %xx = builtin "fmul"(%x : $Double, %x : $Double) : $Double
  br bb3(%xx : $Double)
bb2:
  %two = float_literal $Double, 2.0
  %tx = builtin "fmul"(%two : $Double, %x : $Double) : $Double
  %l = builtin "fsub"(%tx : $Double, %one : $Double) : $Double
  br bb3(%l : $Double)
bb3(%y : $Double):
  return %y : $Double
}
"""


@pytest.mark.parametrize("text", [FLOAT_KINK, DOUBLE_BRANCH], ids=["fmax-float", "branch-double"])
@pytest.mark.parametrize("point", ["0.999", "1.0", "1.001", "1.0000001"])
def test_points_near_a_kink_raise_no_false_alarm(text: str, point: str) -> None:
    """At a point given within the step of the kink, the differences do not settle: that is
    reported as a point that cannot be checked, never as a wrong derivative."""
    outcomes, errors = check_module(parse(text, "m.sil"), NumpyBackend(), [point])
    assert all(o.passed for o in outcomes), [o.line() for o in outcomes]
    for e in errors:
        assert "at the point --args gives, the differences do not settle" in e.message


@pytest.mark.parametrize("text", [FLOAT_KINK, DOUBLE_BRANCH], ids=["fmax-float", "branch-double"])
def test_drawn_points_avoid_kinks(text: str) -> None:
    for seed in range(200):
        outcomes, errors = check_module(parse(text, "m.sil"), NumpyBackend(), seed=seed)
        assert errors == [] and [o.passed for o in outcomes] == [True], [o.line() for o in outcomes]


@pytest.mark.parametrize("x", np.linspace(0.99, 1.01, 41))
def test_a_point_near_the_kink_is_never_a_false_alarm(x: float) -> None:
    outcomes, _ = check_module(parse(FLOAT_KINK, "m.sil"), NumpyBackend(), [repr(float(np.float32(x)))])
    assert all(o.passed for o in outcomes), [o.line() for o in outcomes]


# matmul by a 2x8 constant: a drawn 3x3 tensor does not fit; a 5x2 one from --args does.
FIXED_SHAPE = """\
sil [differentiable source 0 wrt 0] @f : $@convention(thin) (Tensor<Double>) -> Double {
bb0(%t : $Tensor<Double>):
  %two = integer_literal $Int, 2
  %eight = integer_literal $Int, 8
  %o = builtin "ones"(%two : $Int, %eight : $Int) : $Tensor<Double>
  %p = builtin "matmul"(%t : $Tensor<Double>, %o : $Tensor<Double>) : $Tensor<Double>
  %q = builtin "tanh"(%p : $Tensor<Double>) : $Tensor<Double>
  %s = builtin "mean"(%q : $Tensor<Double>) : $Double
  return %s : $Double
}
"""


def test_drawn_tensors_that_do_not_fit_ask_for_a_point(tmp_path: Path) -> None:
    path = write(tmp_path, FIXED_SHAPE)
    status, out, err = silopt(path, "--check-derivatives")
    assert (status, out) == (1, "")
    assert err.startswith(
        "m.sil:1:6: error: cannot check @f (source 0 wrt 0): a run faulted at tensors drawn of shape [3, 3] "
        "(give a point with --args)\n"
    )
    np.save(tmp_path / "t.npy", np.random.default_rng(4).standard_normal((5, 2)) * 0.2)
    status, out, err = silopt(path, "--check-derivatives", "--args", "t.npy")
    assert (status, err) == (0, "") and out.endswith(": ok\n")


def test_a_nan_is_the_worst_disagreement_at_any_point() -> None:
    later = Comparison("JVP vs VJP").worse(0.5, "first point").worse(float("nan"), "second point")
    assert later.detail == "second point"
    assert later.worse(0.9, "third point").detail == "second point"


def test_finite_differences_read_device_arrays_through_the_host() -> None:
    """Results of a run on CuPy stay device arrays; NumPy cannot read them implicitly."""

    class DeviceArray:
        def __init__(self, host: np.ndarray[Any, Any]) -> None:
            self.host = host

        def get(self) -> np.ndarray[Any, Any]:
            return self.host

        def __array__(self, *args: object, **kwargs: object) -> np.ndarray[Any, Any]:
            raise TypeError("Implicit conversion to a NumPy array is not allowed")

    value = (DeviceArray(np.arange(4.0).reshape(2, 2)), 5.0)
    assert flat(value).tolist() == [0.0, 1.0, 2.0, 3.0, 5.0]


GRADIENT_OF_A_VALUE = """\
sil @apply_grad : $@convention(thin) (@convention(thin) (Float) -> Float, Float) -> Float {
bb0(%f : $@convention(thin) (Float) -> Float, %x : $Float):
  %g = gradient [wrt 0] %f : $@convention(thin) (Float) -> Float
  %d = apply %g(%x) : $@convention(thin) (Float) -> Float
  return %d : $Float
}
"""


@pytest.mark.parametrize("more", ["", FLOAT_KINK], ids=["alone", "beside-a-checked-one"])
def test_a_gradient_of_a_function_value_is_an_error_not_skipped(tmp_path: Path, more: str) -> None:
    status, _, err = silopt(write(tmp_path, GRADIENT_OF_A_VALUE + more), "--check-derivatives")
    assert status == 1
    assert err.startswith(
        "m.sil:3:3: error: cannot check this 'gradient': it is of a function value, not a function_ref\n"
    )


def test_points_are_written_in_literal_syntax() -> None:
    module = parse((GOLDEN / "differentiation" / "structs.sil").read_text(encoding="utf-8"), "structs.sil")
    outcomes, errors = check_module(module, NumpyBackend())
    assert errors == [] and outcomes[0].comparisons[0].detail.startswith("at @predict(Model(w: ")


def _pair_with_registered(forgets_result_1: bool) -> str:
    """pair(x, y) = (x y, x + y), whose attribute leaves 'source' out (every result: SIL-SPEC §3),
    with a registered JVP and a VJP whose pullback of the cotangent (a, b) is (a y + b, a x + b),
    or, ``forgets_result_1``, (a y, a x). (``P`` is the type (Double, Double), ``D`` Double.)"""
    add_b = "".join(
        f'  %g{c} = builtin "fadd"(%a{v} : $D, %b : $D) : $D\n' for c, v in (("x", "y"), ("y", "x"))
    )
    add_b = "" if forgets_result_1 else add_b
    gx, gy = ("%ay", "%ax") if forgets_result_1 else ("%gx", "%gy")
    text = f"""\
sil [differentiable jvp @pair_jvp vjp @pair_vjp] @pair : $@convention(thin) P -> P {{
bb0(%x : $D, %y : $D):
  %p = builtin "fmul"(%x : $D, %y : $D) : $D
  %s = builtin "fadd"(%x : $D, %y : $D) : $D
  %r = tuple (%p : $D, %s : $D)
  return %r : $P
}}

sil @pair_df : $@convention(thin) (D, D, D, D) -> P {{
bb0(%dx : $D, %dy : $D, %x : $D, %y : $D):
  %a = builtin "fmul"(%dx : $D, %y : $D) : $D
  %b = builtin "fmul"(%dy : $D, %x : $D) : $D
  %dp = builtin "fadd"(%a : $D, %b : $D) : $D
  %ds = builtin "fadd"(%dx : $D, %dy : $D) : $D
  %r = tuple (%dp : $D, %ds : $D)
  return %r : $P
}}

sil @pair_jvp : $@convention(thin) P -> (P, @callee_guaranteed P -> P) {{
bb0(%x : $D, %y : $D):
  %f = function_ref @pair : $@convention(thin) P -> P
  %r = apply %f(%x, %y) : $@convention(thin) P -> P
  %df = function_ref @pair_df : $@convention(thin) (D, D, D, D) -> P
  %m = partial_apply [callee_guaranteed] %df(%x, %y) : $@convention(thin) (D, D, D, D) -> P
  %o = tuple (%r : $P, %m : $@callee_guaranteed P -> P)
  return %o : $(P, @callee_guaranteed P -> P)
}}

sil @pair_pb : $@convention(thin) (P, D, D) -> P {{
bb0(%seed : $P, %x : $D, %y : $D):
  (%a, %b) = destructure_tuple %seed : $P
  %ay = builtin "fmul"(%a : $D, %y : $D) : $D
  %ax = builtin "fmul"(%a : $D, %x : $D) : $D
{add_b}  %g = tuple ({gx} : $D, {gy} : $D)
  return %g : $P
}}

sil @pair_vjp : $@convention(thin) P -> (P, @callee_guaranteed (P) -> P) {{
bb0(%x : $D, %y : $D):
  %f = function_ref @pair : $@convention(thin) P -> P
  %r = apply %f(%x, %y) : $@convention(thin) P -> P
  %pb = function_ref @pair_pb : $@convention(thin) (P, D, D) -> P
  %m = partial_apply [callee_guaranteed] %pb(%x, %y) : $@convention(thin) (P, D, D) -> P
  %o = tuple (%r : $P, %m : $@callee_guaranteed (P) -> P)
  return %o : $(P, @callee_guaranteed (P) -> P)
}}
"""
    return text.replace("P", "(D, D)").replace("D", "Double")


def test_a_derivative_of_several_results_is_checked_with_a_tuple_seed(tmp_path: Path) -> None:
    status, out, err = silopt(write(tmp_path, _pair_with_registered(False)), "--check-derivatives")
    assert (status, err) == (0, ""), err
    assert out.startswith("@pair (source 0, 1 wrt 0, 1): JVP vs finite differences ")
    assert "JVP vs VJP" in out and out.endswith(": ok\n") and len(out.splitlines()) == 1


def test_a_pullback_that_drops_one_result_s_cotangent_fails(tmp_path: Path) -> None:
    status, out, err = silopt(write(tmp_path, _pair_with_registered(True)), "--check-derivatives")
    assert status == 1 and ": FAILED" in out
    assert "m.sil:1:6: error: the derivatives of @pair (source 0, 1 wrt 0, 1) disagree" in err
    (failure,) = [line for line in err.splitlines() if line.startswith("note: JVP vs VJP: at @pair(")]
    assert " with seed (" in failure and ": <J·v, w> = " in failure, failure


ENDLESS = """\
sil [differentiable source 0 wrt 0] @f : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  br bb1(%x : $Double)
bb1(%y : $Double):
  %done = builtin "fcmp_olt"(%x : $Double, %x : $Double) : $Bool
  cond_br %done, bb2, bb3
bb2:
  return %y : $Double
bb3:
  %s = builtin "sin"(%y : $Double) : $Double
  br bb1(%s : $Double)
}
"""


def test_check_derivatives_runs_within_the_step_limit(tmp_path: Path) -> None:
    """--max-steps ends each of the checker's runs as it ends --run's: a program that loops forever
    is a located error, not a hang."""
    path = write(tmp_path, ENDLESS)
    status, out, err = silopt(path, "--check-derivatives", "--max-steps", "1000")
    assert (status, out) == (1, "")
    assert "note: the run exceeded --max-steps 1000" in err, err
