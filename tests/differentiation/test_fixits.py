"""The notes of a non-differentiability error: the active path through the offending instruction,
and fix-its that, applied as they read, make the error go away."""

from __future__ import annotations

import re

from differentiation.diagnostics import DifferentiabilityChecker
from sil import parse, verify_module
from sil.diagnostics import Diagnostic

ROUNDED = """\
sil [differentiable source 0] @f : $@convention(thin) (Double, Double) -> Double {
bb0(%x : $Double, %y : $Double):
  %p = builtin "fmul"(%x : $Double, %y : $Double) : $Double
  %i = builtin "fptosi"(%y : $Double) : $Int
  %d = builtin "sitofp"(%i : $Int) : $Double
  %r = builtin "fadd"(%p : $Double, %d : $Double) : $Double
  return %r : $Double
}
"""

OPAQUE = """\
sil @opaque : $@convention(thin) (Float) -> Float

sil [differentiable source 0 wrt 0] @g : $@convention(thin) (Float) -> Float {
bb0(%x : $Float):
  %f = function_ref @opaque : $@convention(thin) (Float) -> Float
  %y = apply %f(%x) : $@convention(thin) (Float) -> Float
  return %y : $Float
}
"""


def errors(text: str) -> list[Diagnostic]:
    module = parse(text, "t.sil")
    assert verify_module(module) == []
    return DifferentiabilityChecker(module).check_module()


def notes(text: str) -> list[str]:
    (error,) = errors(text)
    return [n.message for n in error.notes]


def test_the_path_goes_from_the_parameter_through_the_instruction_to_the_result() -> None:
    path = notes(ROUNDED)[0]
    assert path.startswith(
        "active path from parameter 1 of '@f': %y -> %i = fptosi (line 4) -> %d = sitofp (line 5) "
        "-> %r = fadd (line 6) -> return (line 7);"
    )


def test_wrapping_the_use_in_no_derivative_as_the_fix_it_reads_removes_the_error() -> None:
    wrap = re.search(r"pass '(.*)'", notes(ROUNDED)[1])
    assert wrap is not None
    fixed = ROUNDED.replace(
        '  %i = builtin "fptosi"(%y : $Double)',
        f'  %nd = {wrap.group(1)}\n  %i = builtin "fptosi"(%nd : $Double)',
    )
    assert errors(fixed) == []


def test_leaving_the_parameter_out_of_wrt_as_the_fix_it_reads_removes_the_error() -> None:
    """A function's own type cannot mark a parameter @noDerivative (only a @differentiable type
    can): the fix-it asks for a request without it."""
    wanted = r"if parameter 1 needs no derivative, ask for '(wrt 0)' \(then @noDerivative\)"
    fix = re.search(wanted, notes(ROUNDED)[0])
    assert fix is not None
    fixed = ROUNDED.replace("[differentiable source 0]", f"[differentiable source 0 {fix.group(1)}]")
    assert errors(fixed) == []


def test_no_request_fix_it_when_the_parameter_is_the_only_one() -> None:
    assert "ask for" not in notes(OPAQUE)[0]


def test_registering_the_derivative_the_fix_it_names_removes_the_error() -> None:
    register = re.search(r"'sil \[(.*)\] @opaque …'", notes(OPAQUE)[-1])
    assert register is not None and register.group(1) == (
        "differentiable source 0 wrt 0 jvp @opaque_jvp vjp @opaque_vjp"
    )
    fixed = OPAQUE.replace(
        "sil @opaque :",
        "sil @opaque_jvp : $@convention(thin) (Float) -> (Float, @callee_guaranteed (Float) -> Float)\n"
        "sil @opaque_vjp : $@convention(thin) (Float) -> (Float, @callee_guaranteed (Float) -> Float)\n"
        f"sil [{register.group(1)}] @opaque :",
    )
    assert errors(fixed) == []
