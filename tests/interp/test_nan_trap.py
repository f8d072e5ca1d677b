"""``Program(trap_nan=True)``: a run stops at the first instruction that makes a NaN from operands
that are not NaN, with the operands in the notes; without the option the compiled source is the
one compiled before the trap existed, and fused and inlined code is trapped as plain code is."""

from __future__ import annotations

import builtins
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import interp.compiler
from interp import Program, RunError
from interp.fusion import fused_results
from interp.nan_trap import NaNTrap, checked
from sil import Diagnostic, Module, parse, verify_module
from sil.builtins import BUILTINS
from sil.instructions import BuiltinInst
from sil.passes import PassManager, registered_passes
from tests.interp.support import BACKEND, FILENAME, assert_located, builtin_function

ROOT = Path(__file__).resolve().parents[2]
INF = math.inf
NAN = math.nan


def module_of(text: str) -> Module:
    module = parse(text, FILENAME)
    assert verify_module(module) == []
    return module


def trapped(text: str, *args: Any, fn: str = "@f", **options: Any) -> Diagnostic:
    """The one diagnostic of a run under the trap that must fault."""
    try:
        value = Program(module_of(text), BACKEND, trap_nan=True, **options).run(fn, *args)
    except RunError as e:
        assert len(e.diagnostics) == 1, [d.render() for d in e.diagnostics]
        return e.diagnostics[0]
    raise AssertionError(f"the run did not fault; it returned {value!r}")


def notes(diagnostic: Diagnostic) -> list[str]:
    return [n.message for n in diagnostic.notes]


def outcome(program: Program, fn: str, *args: Any) -> Any:
    """The result, or the rendered diagnostics of the fault."""
    try:
        return program.run(fn, *args)
    except RunError as e:
        return [d.render() for d in e.diagnostics]


# --- scalars -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("scalar", ["Double", "Float"])
@pytest.mark.parametrize(
    ("name", "args", "shown"),
    [
        ("fdiv", (0.0, 0.0), ("0.0", "0.0")),
        ("fdiv", (INF, -INF), ("inf", "-inf")),
        ("fsub", (INF, INF), ("inf", "inf")),
        ("fadd", (-INF, INF), ("-inf", "inf")),
        ("fmul", (0.0, -INF), ("0.0", "-inf")),
        ("pow", (-8.0, 0.5), ("-8.0", "0.5")),
        ("sqrt", (-2.5,), ("-2.5",)),
        ("log", (-1.0,), ("-1.0",)),
        ("sin", (INF,), ("inf",)),
        ("cos", (-INF,), ("-inf",)),
    ],
)
def test_a_scalar_builtin_that_makes_a_nan_is_trapped(
    scalar: str, name: str, args: tuple[float, ...], shown: tuple[str, ...]
) -> None:
    text = builtin_function(name, [scalar] * len(args), scalar)
    assert math.isnan(Program(module_of(text), BACKEND).run("@f", *args))  # untrapped, it runs on
    d = trapped(text, *args)
    assert_located(d, text, f'builtin "{name}"', f"'{name}' made a NaN from operands that are not NaN")
    assert notes(d) == [f"operand {i} (%a{i}): {value}" for i, value in enumerate(shown)]


@pytest.mark.parametrize("scalar", ["Double", "Float"])
def test_a_nan_that_flows_in_is_not_trapped(scalar: str) -> None:
    """A NaN argument, and what arithmetic makes of it: each operation's operand was NaN already."""
    text = (
        f"sil @f : $@convention(thin) ({scalar}, {scalar}) -> {scalar} {{\n"
        f"bb0(%x : ${scalar}, %y : ${scalar}):\n"
        f'  %s = builtin "fadd"(%x : ${scalar}, %y : ${scalar}) : ${scalar}\n'
        f'  %q = builtin "fdiv"(%s : ${scalar}, %y : ${scalar}) : ${scalar}\n'
        f'  %r = builtin "sqrt"(%q : ${scalar}) : ${scalar}\n'
        f"  return %r : ${scalar}\n"
        "}\n"
    )
    program = Program(module_of(text), BACKEND, trap_nan=True)
    assert math.isnan(program.run("@f", NAN, 0.0))
    assert program.run("@f", 2.0, 2.0) == float(np.sqrt(np.float32(2.0) if scalar == "Float" else 2.0))


def test_results_that_are_not_nan_are_as_without_the_trap() -> None:
    text = (
        "sil @f : $@convention(thin) (Double, Double) -> Double {\n"
        "bb0(%x : $Double, %y : $Double):\n"
        '  %q = builtin "fdiv"(%x : $Double, %y : $Double) : $Double\n'
        '  %e = builtin "exp"(%q : $Double) : $Double\n'
        '  %l = builtin "log"(%e : $Double) : $Double\n'
        '  %p = builtin "pow"(%l : $Double, %y : $Double) : $Double\n'
        '  %m = builtin "fmax"(%p : $Double, %x : $Double) : $Double\n'
        "  return %m : $Double\n"
        "}\n"
    )
    module = module_of(text)
    plain, trapping = Program(module, BACKEND), Program(module, BACKEND, trap_nan=True)
    rng = np.random.default_rng(15)
    made = 0
    for x, y in rng.uniform(-3.0, 3.0, (200, 2)):
        want = plain.run("@f", float(x), float(y))
        if math.isnan(want):  # pow of a negative base: the trap stops there
            made += 1
            with pytest.raises(RunError, match="'pow' made a NaN"):
                trapping.run("@f", float(x), float(y))
        else:
            assert trapping.run("@f", float(x), float(y)) == want, (x, y)
    assert 0 < made < 200
    assert trapping.run("@f", 1.0, 0.0) == 1.0  # 1/0, exp and log: inf, which is no NaN; pow(inf, 0)


def the_builtin(text: str) -> BuiltinInst:
    (inst,) = [i for i in module_of(text).functions["f"].instructions() if isinstance(i, BuiltinInst)]
    return inst


def test_every_builtin_that_computes_floats_is_checked_and_none_that_only_moves_them() -> None:
    for name, info in BUILTINS.items():
        if info.elementwise:
            assert checked(the_builtin(builtin_function(name, ["Double"] * info.elementwise, "Double")))
    assert checked(the_builtin(builtin_function("sum", ["Tensor<Float>"], "Float")))
    assert not checked(the_builtin(builtin_function("fcmp_olt", ["Double", "Double"], "Bool")))
    assert not checked(the_builtin(builtin_function("select", ["Bool", "Double", "Double"], "Double")))
    moving = {n for n, info in BUILTINS.items() if info.moves}
    assert {"select", "reshape", "with_element", "element", "fptrunc", "zeros"} <= moving
    assert not {"matmul", "sum", "mean", "sum_axis", "unbroadcast"} & moving


LOOP = """\
sil @f : $@convention(thin) (Double, Int) -> Double {
bb0(%x : $Double, %n : $Int):
  %zero = integer_literal $Int, 0
  %one = integer_literal $Int, 1
  br bb1(%zero : $Int, %x : $Double)
bb1(%i : $Int, %acc : $Double):
  %more = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  cond_br %more, bb2, bb3
bb2:
  %big = builtin "fmul"(%acc : $Double, %acc : $Double) : $Double
  %d = builtin "fsub"(%big : $Double, %big : $Double) : $Double
  %next = builtin "fadd"(%big : $Double, %d : $Double) : $Double
  %j = builtin "add"(%i : $Int, %one : $Int) : $Int
  br bb1(%j : $Int, %next : $Double)
bb3:
  return %acc : $Double
}
"""


def test_a_loop_is_trapped_at_the_trip_that_makes_the_nan() -> None:
    """The square overflows to inf on the third trip from 1e40 (1e80, 1e160, inf); inf - inf."""
    assert Program(module_of(LOOP), BACKEND, trap_nan=True).run("@f", 1e40, 2) == 1e160
    d = trapped(LOOP, 1e40, 10)
    assert_located(d, LOOP, '"fsub"', "'fsub' made a NaN")
    assert notes(d) == ["operand 0 (%big): inf", "operand 1 (%big): inf"]


@pytest.mark.parametrize(
    ("budget", "fault"), [(20, "the run exceeded --max-steps 20"), (21, "'fsub' made a NaN")]
)
def test_counted_runs_trap_and_fault_at_whichever_comes_first(budget: int, fault: str) -> None:
    """The fsub of the third trip is the 3 + 7 * 2 + 4 = 21st instruction run: a budget of 20 ends
    the run there, one of 21 lets it make the NaN."""
    assert_located(trapped(LOOP, 1e40, 10, max_steps=budget), LOOP, '"fsub"', fault)
    counted = Program(module_of(LOOP), BACKEND, trap_nan=True, count_steps=True)
    assert counted.run("@f", 1e40, 2) == 1e160 and counted.steps == 3 + 7 * 2 + 3


# --- tensors -----------------------------------------------------------------------------------------
def test_an_elementwise_tensor_builtin_shows_where_the_first_nan_is() -> None:
    text = builtin_function("fmul", ["Tensor<Float>", "Tensor<Float>"], "Tensor<Float>")
    a = np.array([[1.0, 2.0, 3.0], [4.0, np.inf, 6.0]], np.float32)
    b = np.array([1.0, 0.0, 1.0], np.float32)  # broadcast along the rows: inf * 0 at [1, 1]
    d = trapped(text, a, b)
    assert d.message == (
        "'fmul' made a NaN from operands that are not NaN (--trap-nan): "
        "the first NaN of its result, of shape [2, 3], is at [1, 1]"
    )
    assert notes(d) == [
        "operand 0 (%a0): shape [2, 3], float32, inf at [1, 1]",
        "operand 1 (%a1): shape [3], float32, 0.0 at [1]",
    ]


def test_a_tensor_times_a_scalar_shows_the_scalar() -> None:
    text = builtin_function("fmul", ["Tensor<Double>", "Double"], "Tensor<Double>")
    d = trapped(text, np.array([[1.0], [-np.inf]]), 0.0)
    assert d.message.endswith("of shape [2, 1], is at [1, 0]")
    assert notes(d) == ["operand 0 (%a0): shape [2, 1], float64, -inf at [1, 0]", "operand 1 (%a1): 0.0"]


def test_matmul_and_reductions_show_their_operands_infinities() -> None:
    text = builtin_function("matmul", ["Tensor<Double>", "Tensor<Double>"], "Tensor<Double>")
    a = np.array([[1.0, 0.0], [2.0, 3.0]])
    b = np.array([[np.inf, 1.0], [0.0, -np.inf]])
    d = trapped(text, a, b)  # [0, 0]: 1 * inf + 0 * 0 is inf; [0, 1]: 1 * 1 + 0 * -inf is NaN
    assert d.message.endswith("of shape [2, 2], is at [0, 1]")
    assert notes(d) == [
        "operand 0 (%a0): shape [2, 2], float64, every element finite, "
        "the largest in magnitude 3.0 at [1, 1]",
        "operand 1 (%a1): shape [2, 2], float64, 2 infinities, the first inf at [0, 0]",
    ]
    total = builtin_function("sum", ["Tensor<Float>"], "Float")
    d = trapped(total, np.array([np.inf, 1.0, -np.inf], np.float32))
    assert d.message == "'sum' made a NaN from operands that are not NaN (--trap-nan)"
    assert notes(d) == ["operand 0 (%a0): shape [3], float32, 2 infinities, the first inf at [0]"]
    axis = builtin_function("sum_axis", ["Tensor<Double>", "Int"], "Tensor<Double>")
    d = trapped(axis, np.array([[1.0, np.inf], [2.0, -np.inf]]), 0)
    assert d.message.endswith("of shape [2], is at [1]")
    assert notes(d)[1] == "operand 1 (%a1): 0"


def test_a_tensor_that_holds_a_nan_already_or_both_infinities_is_not_trapped() -> None:
    text = builtin_function("fadd", ["Tensor<Double>", "Double"], "Tensor<Double>")
    program = Program(module_of(text), BACKEND, trap_nan=True)
    got = program.run("@f", np.array([np.nan, 1.0]), 1.0)
    assert np.isnan(got[0]) and got[1] == 2.0
    # Its sum is NaN, but no element is: the trap looks at the elements before it faults.
    with np.errstate(invalid="ignore"):
        assert NaNTrap(BACKEND).has_nan(np.array([np.inf, -np.inf])) is False
    assert list(program.run("@f", np.array([np.inf, -np.inf]), 1.0)) == [np.inf, -np.inf]
    assert NaNTrap(BACKEND).has_nan(np.zeros((0, 3))) is False
    assert NaNTrap(BACKEND).has_nan(np.array([1.0, np.nan])) is True


def test_a_rank_zero_tensor_result() -> None:
    text = builtin_function("log", ["Tensor<Double>"], "Tensor<Double>")
    d = trapped(text, np.array(-1.0))
    assert d.message.endswith("of shape [], is at []")
    assert notes(d) == ["operand 0 (%a0): shape [], float64, -1.0 at []"]


# --- what the compiler writes ------------------------------------------------------------------------
@pytest.fixture
def sources(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The Python source of every function compiled while the test runs, in order."""
    found: list[str] = []

    def capture(source: str, filename: str) -> Any:  # each compilation, none from the cache
        found.append(source)
        return builtins.compile(source, filename, "exec")

    monkeypatch.setattr(interp.compiler, "compiled_code", capture)
    yield found


def compiled_sources(sources: list[str], module: Module, **options: Any) -> list[str]:
    """The source of every function of ``module``, compiled by a Program of ``options``."""
    sources.clear()
    for name, fn in module.functions.items():
        if not fn.is_declaration:
            Program(module, BACKEND, **options).function(name)
    return list(sources)


def run_modules() -> list[Module]:
    """The golden run cases' modules that run as they are (no derivative to lower)."""
    found = []
    for path in sorted((ROOT / "golden" / "run").glob("*.sil")):
        module = parse(path.read_text(), path.name)
        if (
            not verify_module(module)
            and "gradient" not in path.read_text()
            and "differentiable" not in path.read_text()
        ):
            found.append(module)
    return found


def test_without_the_trap_the_compiled_source_is_unchanged(sources: list[str]) -> None:
    """``trap_nan=False`` compiles what a Program without the option compiles, with no trace of the
    trap; with it, the tests are there."""
    modules = [*run_modules(), module_of(LOOP)]
    assert len(modules) > 10
    for module in modules:
        for options in ({}, {"count_steps": True}):
            plain = compiled_sources(sources, module, **options)
            assert plain and compiled_sources(sources, module, trap_nan=False, **options) == plain
            assert not any("_has_nan" in s or "_nan" in s for s in plain)
    plain = compiled_sources(sources, module_of(LOOP))
    trapping = compiled_sources(sources, module_of(LOOP), trap_nan=True)
    assert plain != trapping and "raise _nan" in trapping[0]


FUSED = """\
sil @f : $@convention(thin) (Double, Double) -> Double {
bb0(%x : $Double, %y : $Double):
  %q = builtin "fdiv"(%x : $Double, %y : $Double) : $Double
  %r = builtin "fadd"(%q : $Double, %x : $Double) : $Double
  return %r : $Double
}
"""


def test_a_value_fused_without_the_trap_is_trapped_at_its_own_instruction(sources: list[str]) -> None:
    module = module_of(FUSED)
    assert {v.name for v in fused_results(module.functions["f"])} == {"q"}
    assert "v2 = (v0 / v1" in compiled_sources(sources, module)[0]  # fused into the fadd
    assert_located(trapped(FUSED, 0.0, 0.0), FUSED, '"fdiv"', "'fdiv' made a NaN")
    assert "v2 = v0 / v1" in compiled_sources(sources, module, trap_nan=True)[0]  # a statement of its own


D = "$@convention(thin) (Double) -> Double"
INLINED = f"""\
sil @root : {D} {{
bb0(%x : $Double):
  %r = builtin "sqrt"(%x : $Double) : $Double
  return %r : $Double
}}

sil @pair : $@convention(thin) (Double) -> (Double, Double) {{
bb0(%x : $Double):
  %zero = float_literal $Double, 0.0
  %unread = builtin "fdiv"(%zero : $Double, %x : $Double) : $Double
  %t = tuple (%x : $Double, %unread : $Double)
  return %t : $(Double, Double)
}}

sil @f : {D} {{
bb0(%x : $Double):
  %root = function_ref @root : {D}
  %r = apply %root(%x) : {D}
  %pair = function_ref @pair : $@convention(thin) (Double) -> (Double, Double)
  %p = apply %pair(%r) : $@convention(thin) (Double) -> (Double, Double)
  %first = tuple_extract %p : $(Double, Double), 0
  return %first : $Double
}}
"""


def test_inlined_calls_are_trapped_as_calls_are() -> None:
    """``@root`` and ``@pair`` are written inline; the run that makes every call (a counted run)
    reports the same faults, ``called from`` notes included, and computes the fdiv whose result
    inlining leaves unread (folded away without the trap)."""
    module = module_of(INLINED)
    plain = Program(module, BACKEND)
    assert plain.compiler.inliner is not None
    plan = plain.compiler.inliner.plan(module.functions["f"])
    assert {fn.name for fn in plan.inlined.values()} == {"root", "pair"}
    assert any(isinstance(i, BuiltinInst) and i.name == "fdiv" for i in plan.folded)
    trapping = Program(module, BACKEND, trap_nan=True)
    assert trapping.compiler.inliner is not None
    trapped_plan = trapping.compiler.inliner.plan(module.functions["f"])
    assert set(trapped_plan.inlined.values()) == set(plan.inlined.values())
    assert not any(isinstance(i, BuiltinInst) for i in trapped_plan.folded)
    called = Program(module, BACKEND, trap_nan=True, count_steps=True)
    for x in (-4.0, 0.0, 4.0):
        assert outcome(trapping, "@f", x) == outcome(called, "@f", x)
    (sqrt,) = outcome(trapping, "@f", -4.0)
    assert sqrt.startswith(f"{FILENAME}:3:3: error: 'sqrt' made a NaN")
    assert "note: operand 0 (%x): -4.0\n" in sqrt and f"{FILENAME}:18:3: note: called from @f\n" in sqrt
    (fdiv,) = outcome(trapping, "@f", 0.0)
    assert fdiv.startswith(f"{FILENAME}:10:3: error: 'fdiv' made a NaN")
    assert plain.run("@f", 0.0) == 0.0 and trapping.run("@f", 4.0) == 2.0


GRADIENT = """\
sil @f : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  %xx = builtin "fmul"(%x : $Double, %x : $Double) : $Double
  %r = builtin "sqrt"(%xx : $Double) : $Double
  return %r : $Double
}

sil @g : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  %f = function_ref @f : $@convention(thin) (Double) -> Double
  %g = gradient [wrt 0] %f : $@convention(thin) (Double) -> Double
  %d = apply %g(%x) : $@convention(thin) (Double) -> Double
  return %d : $Double
}
"""


def test_a_nan_in_a_synthesized_pullback_points_at_the_call_in_the_source() -> None:
    """|x| as sqrt(x * x): at 0 its pullback multiplies an infinite partial by 0."""
    module = module_of(GRADIENT)
    available = registered_passes()
    PassManager([available["differentiation"](), available["lower-gradient"]()]).run(module)
    assert math.isnan(Program(module, BACKEND).run("@g", 0.0))
    program = Program(module, BACKEND, trap_nan=True)
    assert program.run("@g", -2.0) == -1.0
    with pytest.raises(RunError) as caught:
        program.run("@g", 0.0)
    (d,) = caught.value.diagnostics
    assert "made a NaN from operands that are not NaN (--trap-nan), in synthesized code: `" in d.message
    assert d.message.endswith(", reached from this call")
    assert d.line() == 12
    # The operands named as the quoted instruction names them.
    assert '`%1 = builtin "fmul"(%0 : $Double, %x : $Double) : $Double`' in d.message
    assert notes(d) == ["operand 0 (%0): inf", "operand 1 (%x): 0.0", "called from @AD__f__grad_src_0_wrt_0"]
