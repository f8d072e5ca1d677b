"""-inline: the cost model's bounds, what counts as differentiation work, and the promise of the
module docstring that inlining before differentiation changes neither derivatives nor
non-differentiability diagnostics (``sil/transforms/inline.py``)."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from golden.harness import ROOT, case_paths, read_run_line, run_case
from interp import EnumValue, Program, RunError
from interp.values import SILFunction
from sil import parse, verify_module
from sil.instructions import ApplyInst, FunctionRefInst
from sil.ir import FlagAttr, Module
from sil.passes import PassManager, registered_passes
from sil.transforms.before_ad import differentiated_functions
from sil.transforms.inline import (
    MAX_GROWTH,
    SMALL_CALLEE,
    has_registered_derivative,
    inline_calls,
)
from silopt.driver import main
from tests.sil.transforms.preservation import (
    MAX_DEPTH,
    MAX_STEPS,
    ORDINARY_POINTS,
    ArgumentDraw,
    CannotDraw,
    Subject,
    drawable,
    subjects,
)

SQUARE = """
sil @square : $@convention(thin) (Float) -> Float {
bb0(%x : $Float):
  %y = builtin "fmul"(%x : $Float, %x : $Float) : $Float
  return %y : $Float
}
"""


def _chain(callee_size: int, calls: int) -> str:
    """A module whose @f makes ``calls`` calls in a row of a callee of ``callee_size`` instructions."""
    body = "\n".join(
        f'  %a{i + 1} = builtin "fadd"(%a{i} : $Float, %a0 : $Float) : $Float' for i in range(callee_size - 1)
    )
    callee = (
        f"sil @g : $@convention(thin) (Float) -> Float {{\nbb0(%a0 : $Float):\n{body}\n"
        f"  return %a{callee_size - 1} : $Float\n}}\n"
    )
    t = "$@convention(thin) (Float) -> Float"
    lines = [f"  %g = function_ref @g : {t}"]
    lines += [f"  %r{i + 1} = apply %g(%r{i}) : {t}" for i in range(calls)]
    caller = (
        f"sil @f : {t} {{\nbb0(%r0 : $Float):\n" + "\n".join(lines) + f"\n  return %r{calls} : $Float\n}}\n"
    )
    return callee + caller


def _applies(module: Module, name: str) -> int:
    return sum(isinstance(i, ApplyInst) for i in module.functions[name].instructions())


def test_a_straight_line_call_becomes_one_block_with_simplify_cfg() -> None:
    module = parse(_chain(3, 4), "chain.sil")
    passes = registered_passes()
    PassManager([passes["inline"](), passes["simplify-cfg"]()], verify_each=True).run(module)
    f = module.functions["f"]
    assert len(f.blocks) == 1 and _applies(module, "f") == 0


def test_a_caller_grows_by_at_most_max_growth_a_run() -> None:
    calls = MAX_GROWTH // SMALL_CALLEE + 5
    module = parse(_chain(SMALL_CALLEE, calls), "chain.sil")
    assert inline_calls(module) == MAX_GROWTH // SMALL_CALLEE
    assert verify_module(module) == []
    assert _applies(module, "f") == 5
    inline_calls(module)  # the next run (-O's next round) takes the rest
    assert _applies(module, "f") == 0


def test_a_callee_one_instruction_too_big_stays() -> None:
    module = parse(_chain(SMALL_CALLEE + 1, 1), "chain.sil")
    assert inline_calls(module) == 0


WORK = {
    "gradient": """
sil @g : $@convention(thin) (Float) -> Float {
bb0(%x : $Float):
  %f = function_ref @square : $@convention(thin) (Float) -> Float
  %d = gradient [wrt 0] %f : $@convention(thin) (Float) -> Float
  %r = apply %d(%x) : $@convention(thin) (Float) -> Float
  return %r : $Float
}
""",
    "differentiable_function": """
sil @g : $@convention(thin) () -> @differentiable(reverse) @convention(thin) (Float) -> Float {
bb0:
  %f = function_ref @square : $@convention(thin) (Float) -> Float
  %d = differentiable_function [parameters 0] %f : $@convention(thin) (Float) -> Float
  return %d : $@differentiable(reverse) @convention(thin) (Float) -> Float
}
""",
    "attribute": """
sil [differentiable wrt 0] @g : $@convention(thin) (Float) -> Float {
bb0(%x : $Float):
  %f = function_ref @square : $@convention(thin) (Float) -> Float
  %r = apply %f(%x) : $@convention(thin) (Float) -> Float
  return %r : $Float
}
""",
}


@pytest.mark.parametrize("kind", sorted(WORK))
def test_differentiation_work_names_what_it_reaches_until_differentiation_ran(kind: str) -> None:
    module = parse(SQUARE + WORK[kind], f"{kind}.sil")
    assert differentiated_functions(module) == ({"square", "g"} if kind == "attribute" else {"square"})
    PassManager([registered_passes()["differentiation"](), registered_passes()["lower-gradient"]()]).run(
        module
    )
    assert differentiated_functions(module) == frozenset()


def test_a_legacy_attribute_is_work_and_registers_a_derivative() -> None:
    module = parse((ROOT / "golden/legacy/pipeline.sil").read_text(encoding="utf-8"), "pipeline.sil")
    legacy = [fn for fn in module.functions.values() if has_registered_derivative(fn)]
    assert legacy and differentiated_functions(module)


def _with_inline(argv: tuple[str, ...], case: str) -> list[str]:
    """The RUN line's arguments with -inline run first."""
    at = argv.index(case) + 1
    return [*argv[:at], "-inline", *argv[at:]]


def _diagnosed_cases() -> list[Path]:
    """The golden cases that report a diagnostic, but for faults of runs (a fault's notes name the
    calls it went through, which inlining removes, as an optimizer removes frames) and for
    --ad-stats (the derivatives made are counted: a call inlined needs none of its own)."""
    found = []
    for case in case_paths():
        run = read_run_line(case)
        rel = case.relative_to(ROOT).as_posix()
        diagnosed = case.with_suffix(".stderr").exists() or "--verify-diagnostics" in run.argv
        stats = any(a.startswith("--ad-stats") for a in run.argv)
        if diagnosed and run.stdin is None and rel in run.argv and "--run" not in run.argv and not stats:
            found.append(case)
    return found


@pytest.mark.parametrize("case", _diagnosed_cases(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_diagnostics_are_the_same_after_inline(case: Path) -> None:
    run, expected = run_case(case)
    stdout, stderr = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        status = main(
            _with_inline(run.argv, case.relative_to(ROOT).as_posix()), io.StringIO(""), stdout, stderr
        )
    finally:
        os.chdir(cwd)
    assert (status, stderr.getvalue()) == (expected.status, expected.stderr)


def _differentiated_cases() -> list[Path]:
    """The golden differentiation cases with calls that differentiate without a diagnostic."""
    found = []
    for case in sorted((ROOT / "golden" / "differentiation").glob("**/*.sil")):
        run = read_run_line(case)
        text = case.read_text(encoding="utf-8")
        if not run.expect_failure and "= apply" in text and "expected-error" not in text:
            found.append(case)
    return [*found, ROOT / "golden/opt/inline/before_differentiation.sil"]


def _marked(text: str, name: str) -> Module:
    """``text`` with every function without a registered derivative marked [transparent], so that
    -inline copies all it may before differentiation."""
    module = parse(text, name)
    for fn in module.functions.values():
        flags = {a.name for a in fn.attributes if isinstance(a, FlagAttr)}
        if not fn.is_declaration and not has_registered_derivative(fn) and "transparent" not in flags:
            fn.attributes.append(FlagAttr("transparent"))
    return module


def test_the_derivative_cases_inline_calls_before_differentiation() -> None:
    """The next test is not vacuous: its cases have calls that -inline copies before AD."""
    assert (
        sum(inline_calls(_marked(c.read_text(encoding="utf-8"), c.name)) for c in _differentiated_cases())
        >= 10
    )


def _lowered(text: str, name: str, inline: bool) -> Module:
    """``_marked(text)``, -inline run or not, then differentiated and lowered."""
    module = _marked(text, name)
    passes = registered_passes()
    pipeline = [passes["differentiation"](), passes["lower-gradient"]()]
    PassManager([passes["inline"](), *pipeline] if inline else pipeline, verify_each=True).run(module)
    return module


def _outcome(program: Program, name: str, args: list[Any], seeds: ArgumentDraw) -> list[Any]:
    """What a call gives, flattened, and, for a derivative returning a closure (a pullback or a
    differential), what the closure gives on drawn seeds; a fault's message."""
    try:
        value = program.run(name, *args)
        if isinstance(value, tuple) and value and isinstance(value[-1], SILFunction):
            closure = value[-1]
            return [*_flat(value[:-1]), *_flat(closure(*seeds.point(closure.type.params, 0)))]
        return _flat(value)
    except RunError as e:
        return [e.diagnostics[0].message]


def _flat(value: Any) -> list[Any]:
    """The scalars of a value in order, with its structure's names and shapes among them."""
    if isinstance(value, np.ndarray):
        return [value.dtype.str, value.shape, *value.ravel().tolist()]
    if isinstance(value, tuple):
        return [type(value).__name__, *(x for v in value for x in _flat(v))]
    if isinstance(value, EnumValue):
        return ["enum", value.enum, value.case, *_flat(value.payload)]
    if isinstance(value, SILFunction):
        return ["closure"]
    return [float(value) if isinstance(value, np.floating) else value]


def _close(a: list[Any], b: list[Any]) -> bool:
    """Equal, but for floats, which may differ by rounding (``math.isclose``, NaN equal to NaN)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, float) and isinstance(y, float):
            if not (math.isclose(x, y, rel_tol=1e-5, abs_tol=1e-6) or (math.isnan(x) and math.isnan(y))):
                return False
        elif x != y:
            return False
    return True


@pytest.mark.parametrize("case", _differentiated_cases(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_inlining_before_differentiation_keeps_derivatives(case: Path) -> None:
    """Every function both modules have (user functions, gradients, JVPs and VJPs with their
    closures applied; not pullbacks and differentials, whose records differ) gives the same values
    up to rounding: a copied callee's adjoints are summed into the caller's in another order than
    its pullback's result was (``all_results.sil`` moves a last bit), which is no change of what is
    differentiated."""
    text = case.read_text(encoding="utf-8")
    before, after = _lowered(text, case.name, False), _lowered(text, case.name, True)
    old = Program(before, max_steps=MAX_STEPS, max_depth=MAX_DEPTH)
    new = Program(after, max_steps=MAX_STEPS, max_depth=MAX_DEPTH)
    for fn in before.functions.values():
        if (
            not drawable(fn)
            or fn.name not in after.functions
            or "__pullback" in fn.name
            or "__differential" in fn.name
        ):
            continue
        draw = ArgumentDraw(before, f"{case.name}:{fn.name}")
        try:
            points = [draw.point(fn.type.params, i) for i in range(ORDINARY_POINTS)]
        except CannotDraw:
            continue
        for i, args in enumerate(points):
            seeds = f"{case.name}:{fn.name}:{i}"
            expected = _outcome(old, fn.name, args, ArgumentDraw(before, seeds))
            got = _outcome(new, fn.name, args, ArgumentDraw(after, seeds))
            assert _close(got, expected), (fn.name, args, got, expected)


@pytest.mark.parametrize("subject", subjects(), ids=lambda s: s.id)
def test_one_run_inlines_all_the_rules_allow(subject: Subject) -> None:
    """The calls a copy brings in are taken in the same run, so a second run finds none (where no
    caller reached ``MAX_GROWTH``): -O's rounds do not unroll a call chain one level each."""
    module = parse(subject.text(), subject.id)
    inline_calls(module)
    assert inline_calls(module) == 0
    assert verify_module(module) == []


def test_differentiated_functions_copy_only_what_was_asked_unless_the_module_stays_accepted() -> None:
    """Where a trial copy inlined by the cost model would be rejected by differentiation,
    the functions it differentiates copy only [transparent] and [always_inline] callees."""
    text = (ROOT / "golden/opt/inline/before_differentiation.sil").read_text(encoding="utf-8")
    for freely, square_stays in ((False, True), (True, False)):
        module = parse(text, "before_differentiation.sil")
        inline_calls(module, freely=freely)
        calls = [i for i in module.functions["f"].instructions() if isinstance(i, FunctionRefInst)]
        assert ("square" in {c.function_name for c in calls}) is square_stays
        assert "cube" in {c.function_name for c in calls}  # a registered derivative: never copied
