"""Differentiation anywhere in the pipeline (issue 16, item 2): optimizing before differentiation
does not change what is differentiated, nor what differentiation reports.

- Every module that asks for derivatives (``preservation.ad_subjects``: the golden differentiation
  cases, the legacy ones, the run cases, the shipped examples) gives the same results through each
  placement of ``PLACEMENTS`` as through differentiation alone: every function, the derivatives
  included (their pullbacks and differentials called on drawn cotangents and tangents), on drawn
  arguments, bit for bit, faults included. A module differentiation refuses is refused the same.
- Every golden case that differentiation rejects reports exactly the same diagnostics (text,
  locations, notes) with ``-O`` before it.

- Random programs with branches, loops, calls, tuples, a struct with a ``@noDerivative`` field,
  ``no_derivative``, a parameter outside ``wrt`` and redundant and loop-invariant code
  (``test_cf_properties.programs(extended=True)``) give the same values bit for bit, and the same
  derivatives through every placement: to a relative 1e-12, since -cse and -licm before
  differentiation merge two uses of one value, whose derivative then sums the two cotangents
  before it multiplies instead of after (another rounding, not another derivative).

``-O`` is taken by name: a pass that joins it is covered here as soon as it does. The property's
examples are derandomized (40, about 15 s); ``PLACEMENT_PROPERTY_EXAMPLES`` raises their number for
a longer hunt.
"""

from __future__ import annotations

import functools
import io
import math
import os

import pytest
from hypothesis import HealthCheck, given, note, settings

from golden.harness import ROOT, case_paths, read_run_line
from interp import Program
from sil import SILError, parse, print_module
from sil.instructions import BuiltinInst
from sil.passes import PassManager, registered_passes
from silopt.driver import main
from tests.differentiation.test_cf_properties import Stmt, evaluate, programs, sil_text
from tests.sil.transforms.preservation import (
    PLACEMENTS,
    REFERENCE,
    Close,
    Subject,
    ad_subjects,
    compare_modules,
    placed,
    through,
)

SUBJECTS = ad_subjects()
OTHERS = [p for p in PLACEMENTS if p != REFERENCE]
AD_PASSES = {"-differentiation", "-differentiation-diagnostics", "-lower-gradient"}


@functools.cache
def _reference(subject: Subject) -> tuple[Program | None, str]:
    """The subject through differentiation alone, or the diagnostics that refuse it."""
    try:
        return Program(placed(subject, REFERENCE)), ""
    except SILError as e:
        return None, str(e)


def test_the_subjects_cover_every_kind_of_case() -> None:
    ids = [s.id for s in SUBJECTS]
    for area in ("golden/differentiation/cf/", "golden/legacy/", "golden/run/", "examples/"):
        assert any(i.startswith(area) for i in ids), area
    refused = [s for s in SUBJECTS if _reference(s)[0] is None]
    assert 5 <= len(refused) < len(SUBJECTS) // 2


@pytest.mark.parametrize("placement", OTHERS)
@pytest.mark.parametrize("subject", SUBJECTS, ids=lambda s: s.id)
def test_every_placement_gives_the_same_results(subject: Subject, placement: str) -> None:
    reference, refusal = _reference(subject)
    if reference is None:
        with pytest.raises(SILError) as refused:
            placed(subject, placement)
        assert str(refused.value) == refusal
        return
    module, label = placed(subject, placement), f"{subject.id} {placement}"
    report = compare_modules(reference.module, module, label)  # values: bits
    # Derivatives to rounding: a call inlined before differentiation sums its adjoints in the
    # caller's order (sil/transforms/inline.py); a few ulps of a Float result.
    compare_modules(reference.module, module, label, call_closures=True, close=Close(rel_tol=1e-6))
    assert report.calls > 0 or report.skipped


# --- diagnostics ----------------------------------------------------------------------------------


def _rejected_cases() -> list[str]:
    """The golden cases whose RUN line differentiates (or checks, or lowers) and fails, or
    expects errors: relative paths."""
    found = []
    for case in case_paths():
        run = read_run_line(case)
        text = case.read_text(encoding="utf-8")
        if AD_PASSES & set(run.argv) and (run.expect_failure or "expected-error" in text):
            found.append(case.relative_to(ROOT).as_posix())
    return found


def _silopt(argv: list[str]) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        status = main(argv, io.StringIO(""), stdout, stderr)
    finally:
        os.chdir(cwd)
    return status, stdout.getvalue(), stderr.getvalue()


REJECTED = _rejected_cases()


def test_the_rejected_cases_are_there() -> None:
    assert len(REJECTED) >= 10
    assert "golden/differentiation/cf/diagnostics.sil" in REJECTED


@pytest.mark.parametrize("case", REJECTED)
def test_O_before_differentiation_reports_the_same(case: str) -> None:
    """Without ``--verify-diagnostics``, so that what is compared is every line reported."""
    argv = [w for w in read_run_line(ROOT / case).argv if w != "--verify-diagnostics"]
    first = next(i for i, w in enumerate(argv) if w in AD_PASSES)
    expected = _silopt(argv)
    assert expected[0] == 1
    assert _silopt([*argv[:first], "-O", *argv[first:]]) == expected


def test_a_rejected_module_is_left_as_written() -> None:
    """The struct that is not Differentiable would fold away (and its diagnostic with it)."""
    case = ROOT / "golden/differentiation/diagnostics.sil"
    status, optimized, _ = _silopt([str(case), "-O"])
    assert status == 0
    assert optimized == print_module(parse(case.read_text(encoding="utf-8"), str(case)))


# --- what -O keeps before differentiation -----------------------------------------------------------

NO_DERIVATIVE_FIELD = """struct Scaled : Differentiable {
  var value: Double
  @noDerivative var scale: Double
}

sil [differentiable source 0 wrt 0] @f : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  %s = struct $Scaled (%x : $Double, %x : $Double)
  %v = struct_extract %s : $Scaled, #Scaled.value
  %k = struct_extract %s : $Scaled, #Scaled.scale
  %r = builtin "fmul"(%v : $Double, %k : $Double) : $Double
  return %r : $Double
}
"""

NO_DERIVATIVE_TWICE = """sil [differentiable source 0 wrt 0] @f : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  %a = builtin "sin"(%x : $Double) : $Double
  %b = builtin "sin"(%x : $Double) : $Double
  %c = builtin "no_derivative"(%b : $Double) : $Double
  %d = builtin "no_derivative"(%a : $Double) : $Double
  %one = float_literal $Double, 1.0
  %e = builtin "fmul"(%d : $Double, %one : $Double) : $Double
  %p = builtin "fmul"(%a : $Double, %c : $Double) : $Double
  %r = builtin "fadd"(%p : $Double, %e : $Double) : $Double
  return %r : $Double
}
"""


# A diamond of empty blocks: threaded, it would be one cond_br reaching bb3 twice with different
# arguments, which differentiation cannot trace.
EMPTY_DIAMOND = """sil [differentiable source 0 wrt 0, 1] @f : $@convention(thin) (Double, Double) -> Double {
bb0(%x : $Double, %y : $Double):
  %c = builtin "fcmp_olt"(%x : $Double, %y : $Double) : $Bool
  cond_br %c, bb1, bb2
bb1:
  br bb3(%x : $Double)
bb2:
  br bb3(%y : $Double)
bb3(%m : $Double):
  %s = builtin "sin"(%m : $Double) : $Double
  return %s : $Double
}
"""


def _gradient(text: str, placement: str, *args: float) -> tuple[float, ...]:
    program = Program(through(text, placement))
    _, pullback = program.run("AD__f__vjp_src_0_wrt_" + "_".join(map(str, range(len(args)))), *args)
    got = pullback(1.0)
    return got if isinstance(got, tuple) else (got,)


@pytest.mark.parametrize("placement", list(PLACEMENTS))
def test_a_no_derivative_field_stops_the_derivative_through_every_placement(placement: str) -> None:
    """-canonicalize folded the field's projection to the value itself: 6 for x * x at 3."""
    assert _gradient(NO_DERIVATIVE_FIELD, placement, 3.0) == (3.0,)


def test_O_before_differentiation_reads_a_no_derivative_field_through_no_derivative() -> None:
    optimized = print_module(through(NO_DERIVATIVE_FIELD, "O then AD"))
    assert 'builtin "no_derivative"(%x : $Double)' in optimized


@pytest.mark.parametrize("placement", list(PLACEMENTS))
def test_no_derivative_survives_O_before_differentiation(placement: str) -> None:
    """-cse merges the two sins and the two no_derivatives' operands: d/dx sin(x) * nd(sin x) +
    nd(sin x) is cos(x) sin(x) still."""
    x = 0.7
    assert _gradient(NO_DERIVATIVE_TWICE, placement, x) == (math.cos(x) * math.sin(x),)
    kept = through(NO_DERIVATIVE_TWICE, "O then AD").functions["f"].instructions()
    assert any(isinstance(i, BuiltinInst) and i.name == "no_derivative" for i in kept)


ALWAYS_TRAPS = """sil [differentiable source 0 wrt 0] @f : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  %t = integer_literal $Bool, 1
  cond_br %t, bb1, bb2
bb1:
  unreachable
bb2:
  %s = builtin "sin"(%x : $Double) : $Double
  return %s : $Double
}
"""


@pytest.mark.parametrize("placement", OTHERS)
def test_a_branch_on_a_known_value_stays_before_differentiation(placement: str) -> None:
    """Folded, it left a function that never returns, which differentiation refused."""
    reference = through(ALWAYS_TRAPS, REFERENCE)
    compare_modules(reference, through(ALWAYS_TRAPS, placement), placement, call_closures=True)


@pytest.mark.parametrize("placement", list(PLACEMENTS))
def test_an_empty_diamond_stays_differentiable(placement: str) -> None:
    """-simplify-cfg threaded both edges to bb3 and differentiation refused the function."""
    assert _gradient(EMPTY_DIAMOND, placement, 0.5, 2.0) == (math.cos(0.5), 0.0)


# A tuple holding a tensor, made before the loop and again on every trip: -cse would reuse the
# first and -licm hoist the second, and either way the tuple's tangent would cross blocks, which
# differentiation cannot carry yet.
TENSOR_PAIRS = """sil @h : $@convention(thin) ((Tensor<Double>, Double)) -> Double {
bb0(%p : $(Tensor<Double>, Double)):
  %t = tuple_extract %p : $(Tensor<Double>, Double), 0
  %s = builtin "sum"(%t : $Tensor<Double>) : $Double
  return %s : $Double
}

sil [differentiable source 0 wrt 0] @f : $@convention(thin) (Tensor<Double>, Int) -> Double {
bb0(%t : $Tensor<Double>, %n : $Int):
  %zero = integer_literal $Int, 0
  %h = function_ref @h : $@convention(thin) ((Tensor<Double>, Double)) -> Double
  %k0 = float_literal $Double, 2.0
  %p0 = tuple (%t : $Tensor<Double>, %k0 : $Double)
  %s0 = apply %h(%p0) : $@convention(thin) ((Tensor<Double>, Double)) -> Double
  br bb1(%zero : $Int, %s0 : $Double)
bb1(%i : $Int, %acc : $Double):
  %more = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  cond_br %more, bb2, bb3
bb2:
  %k = float_literal $Double, 2.0
  %p = tuple (%t : $Tensor<Double>, %k : $Double)
  %s = apply %h(%p) : $@convention(thin) ((Tensor<Double>, Double)) -> Double
  %a = builtin "fadd"(%acc : $Double, %s : $Double) : $Double
  %one = integer_literal $Int, 1
  %j = builtin "add"(%i : $Int, %one : $Int) : $Int
  br bb1(%j : $Int, %a : $Double)
bb3:
  return %acc : $Double
}
"""


@pytest.mark.parametrize("passes", [("cse",), ("licm",), ("O",)], ids=" ".join)
def test_a_tuple_holding_a_tensor_stays_in_its_block(passes: tuple[str, ...]) -> None:
    """-O before differentiation made it refuse the function: the tuple's tangent crossed blocks."""
    module = parse(TENSOR_PAIRS)
    registry = registered_passes()
    PassManager([registry[p]() for p in (*passes, "differentiation", "lower-gradient")]).run(module)
    compare_modules(through(TENSOR_PAIRS, REFERENCE), module, " ".join(passes), call_closures=True)


# --- the property ---------------------------------------------------------------------------------

DERIVATIVES_CLOSE = Close(rel_tol=1e-12, points=2)


@settings(
    max_examples=int(os.environ.get("PLACEMENT_PROPERTY_EXAMPLES", "40")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(body=programs(extended=True))
def test_random_programs_give_the_same_derivatives_through_every_placement(body: tuple[Stmt, ...]) -> None:
    text = sil_text(body, extended=True)
    note(text)
    reference = through(text, REFERENCE, "generated.sil")
    (value, *gradient), _ = evaluate(body, 0.25, -0.5, 2, z=1.5)
    assert Program(reference).run("f", 0.25, -0.5, 1.5, 2) == value
    _, pullback = Program(reference).run("AD__f__vjp_src_0_wrt_0_1", 0.25, -0.5, 1.5, 2)
    for got, exact in zip(pullback(1.0), gradient):
        assert math.isclose(got, exact, rel_tol=1e-9, abs_tol=1e-9)
    for placement in OTHERS:
        module = through(text, placement, "generated.sil")
        compare_modules(reference, module, placement, call_closures=False)  # values: bits
        compare_modules(reference, module, placement, call_closures=True, close=DERIVATIVES_CLOSE)
