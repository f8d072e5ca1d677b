"""Functions with several results (SIL-SPEC §3: a tuple result is one result per element), and
calls of them, checked numerically in Double: for each configuration, the pullback of each basis
seed (a row of the Jacobian of the results differentiated) against central finite differences of
the original, and the differential against the same Jacobian (the JVP-VJP dot-product identity,
<J v, e_k> = <v, Jᵀ e_k>, for every k)."""

from __future__ import annotations

import io
import math
import random
from collections.abc import Sequence
from typing import Any

import pytest

from accel.numpy_backend import NumpyBackend
from analysis.activity import Config
from differentiation.differentiator import Differentiator
from golden.harness import GOLDEN
from interp import Program
from sil import parse, verify_module
from sil.instructions import DifferentiableFunctionInst, FunctionRefInst
from sil.ir import DifferentiableAttr, Function, Module, Result
from sil.passes import PassManager, registered_passes
from silopt.driver import main

CASES = GOLDEN / "differentiation"


def differentiated(text: str) -> Module:
    module = parse(text, "test.sil")
    PassManager([registered_passes()["differentiation"]()]).run(module)
    assert verify_module(module) == []
    return module


def golden(name: str) -> Module:
    return differentiated((CASES / name).read_text(encoding="utf-8").replace("Float", "Double"))


def _flat(value: Any) -> list[float]:
    return [float(x) for x in value] if isinstance(value, tuple) else [float(value)]


def check_jacobian(
    module: Module, fn: str, sources: Sequence[int], wrt: Sequence[int], point: Sequence[float | int]
) -> list[list[float]]:
    """Synthesize (or find) the VJP and JVP of ``fn`` for ``sources`` and ``wrt``, check them at
    ``point``, and return the Jacobian: one row per source, one column per ``wrt`` parameter."""
    config = Config(tuple(sources), tuple(wrt))
    d = Differentiator(module)
    vjp, jvp = d.vjp(module.functions[fn], config), d.jvp(module.functions[fn], config)
    assert verify_module(module) == []
    return check_derivatives(module, fn, vjp, jvp, sources, wrt, point)


def check_derivatives(
    module: Module,
    fn: str,
    vjp: Function,
    jvp: Function,
    sources: Sequence[int],
    wrt: Sequence[int],
    point: Sequence[float | int],
) -> list[list[float]]:
    """Check ``vjp`` and ``jvp``, derivatives of ``fn`` for ``sources`` and ``wrt``, at ``point``
    (as ``check_jacobian`` says), and return the Jacobian."""
    program = Program(module, NumpyBackend())
    several = len(module.functions[fn].type.results) > 1

    def selected(args: list[float | int]) -> list[float]:
        out = program.run(f"@{fn}", *args)
        return [float(out[i]) for i in sources] if several else [float(out)]

    h = 1e-6
    numeric: list[list[float]] = [[0.0] * len(wrt) for _ in sources]
    for column, i in enumerate(wrt):
        plus, minus = list(point), list(point)
        plus[i] += h
        minus[i] -= h
        for row, (p, m) in enumerate(zip(selected(plus), selected(minus))):
            numeric[row][column] = (p - m) / (2 * h)
    value, pullback = program.run(f"@{vjp.name}", *point)
    assert value == program.run(f"@{fn}", *point)
    jacobian = []
    for k in range(len(sources)):
        basis = tuple(1.0 if j == k else 0.0 for j in range(len(sources)))
        row = _flat(pullback(basis if len(sources) > 1 else basis[0]))
        for column, (g, n) in enumerate(zip(row, numeric[k])):
            assert math.isclose(g, n, rel_tol=1e-6, abs_tol=1e-7), (fn, sources, wrt, point, k, column, g, n)
        jacobian.append(row)
    draw = random.Random(f"{fn}:{sources}:{wrt}")
    tangents = [draw.uniform(-1.0, 1.0) for _ in wrt]
    _, differential = program.run(f"@{jvp.name}", *point)
    pushed = _flat(differential(*tangents))
    expected = [sum(j * t for j, t in zip(row, tangents)) for row in jacobian]
    assert pushed == pytest.approx(expected, rel=1e-12, abs=1e-14)
    return jacobian


def test_result_selection_as_swift_tests_it() -> None:
    module = golden("result_selection.sil")
    assert check_jacobian(module, "first", [0], [0, 1], [3.0, 3.0]) == [[1.0, 0.0]]
    assert check_jacobian(module, "second", [0], [0, 1], [3.0, 3.0]) == [[0.0, 1.0]]
    assert check_jacobian(module, "both", [0], [0, 1], [3.0, 3.0]) == [[5.0, 4.0]]  # (y + 2, x + 1)
    for sources in ([0], [1], [0, 1]):
        expected = [[1.0, 0.0], [0.0, 1.0]]
        assert check_jacobian(module, "t", sources, [0, 1], [3.0, 3.0]) == [expected[i] for i in sources]


def test_result_selection_runs_in_float() -> None:
    """The issue's own check, through the command line: ``gradient`` of ``t(x, y).0`` at (3, 3)."""
    text = (CASES / "result_selection.sil").read_text(encoding="utf-8")
    for fn, expected in (("first", "(1.0, 0.0)"), ("second", "(0.0, 1.0)"), ("both", "(5.0, 4.0)")):
        source = text + (
            "\nsil @main : $@convention(thin) (Float, Float) -> (Float, Float) {\n"
            "bb0(%x : $Float, %y : $Float):\n"
            f"  %f = function_ref @{fn} : $@convention(thin) (Float, Float) -> Float\n"
            "  %g = gradient [wrt 0, 1] %f : $@convention(thin) (Float, Float) -> Float\n"
            "  %r = apply %g(%x, %y) : $@convention(thin) (Float, Float) -> (Float, Float)\n"
            "  return %r : $(Float, Float)\n}\n"
        )
        out, err = io.StringIO(), io.StringIO()
        status = main(["-", "--run", "@main", "--args", "3", "3"], io.StringIO(source), out, err)
        assert (status, out.getvalue(), err.getvalue()) == (0, expected + "\n", "")


@pytest.mark.parametrize("fn", ["stats", "swap_stats", "pass_through"])
@pytest.mark.parametrize("sources", [[0], [1], [0, 1]])
def test_calls_of_calls_for_every_selection_of_results(fn: str, sources: list[int]) -> None:
    module = golden("tuple_calls.sil")
    for point in ([2.0, 3.0], [-0.5, 1.25]):
        check_jacobian(module, fn, sources, [0, 1], point)
        check_jacobian(module, fn, sources, [1], point)


def test_a_result_used_through_two_calls() -> None:
    module = golden("tuple_calls.sil")
    x, y = 0.75, -1.5
    # use_second = swap_stats(x, y).1 * x = x y (x + y) x
    expected = [3 * x * x * y + 2 * x * y * y, x**3 + 2 * x * x * y]
    assert check_jacobian(module, "use_second", [0], [0, 1], [x, y])[0] == pytest.approx(expected)


WHOLE = """
sil @pair : $@convention(thin) (Double, Double) -> (Double, Int, Double) {
bb0(%x : $Double, %y : $Double):
  %s = builtin "sin"(%x : $Double) : $Double
  %p = builtin "fmul"(%s : $Double, %y : $Double) : $Double
  %n = integer_literal $Int, 7
  %r = tuple (%p : $Double, %n : $Int, %x : $Double)
  return %r : $(Double, Int, Double)
}

sil @first_of : $@convention(thin) (Double, (Double, Int, Double)) -> Double {
bb0(%k : $Double, %t : $(Double, Int, Double)):
  %a = tuple_extract %t : $(Double, Int, Double), 0
  %ka = builtin "fmul"(%k : $Double, %a : $Double) : $Double
  return %ka : $Double
}

// The tuple is an argument: @pair is differentiated for both its differentiable results, and
// @first_of's pullback gives the cotangent of element 2 as zero.
sil @through_argument : $@convention(thin) (Double, Double) -> Double {
bb0(%x : $Double, %y : $Double):
  %f = function_ref @pair : $@convention(thin) (Double, Double) -> (Double, Int, Double)
  %r = apply %f(%x, %y) : $@convention(thin) (Double, Double) -> (Double, Int, Double)
  %g = function_ref @first_of : $@convention(thin) (Double, (Double, Int, Double)) -> Double
  %v = apply %g(%x, %r) : $@convention(thin) (Double, (Double, Int, Double)) -> Double
  return %v : $Double
}

// The tuple crosses a block whole; the branch makes the zero of the element not read after it.
sil @through_block : $@convention(thin) (Double, Double) -> Double {
bb0(%x : $Double, %y : $Double):
  %f = function_ref @pair : $@convention(thin) (Double, Double) -> (Double, Int, Double)
  %r = apply %f(%x, %y) : $@convention(thin) (Double, Double) -> (Double, Int, Double)
  br bb1(%r : $(Double, Int, Double))
bb1(%q : $(Double, Int, Double)):
  %a = tuple_extract %q : $(Double, Int, Double), 0
  %aa = builtin "fmul"(%a : $Double, %a : $Double) : $Double
  return %aa : $Double
}
"""


@pytest.mark.parametrize("fn", ["through_argument", "through_block"])
def test_a_tuple_result_used_whole(fn: str) -> None:
    module = differentiated(WHOLE)
    x, y = 0.6, 1.7
    gradient = check_jacobian(module, fn, [0], [0, 1], [x, y])[0]
    s, c = math.sin(x), math.cos(x)
    if fn == "through_argument":  # x sin(x) y
        assert gradient == pytest.approx([s * y + x * c * y, x * s])
    else:  # (sin(x) y)^2
        assert gradient == pytest.approx([2 * s * y * c * y, 2 * s * y * s])
    called = {name for name in module.functions if name.startswith("AD__pair__")}
    assert called == {"AD__pair__vjp_src_0_2_wrt_0_1", "AD__pair__pullback_src_0_2_wrt_0_1"} | {
        "AD__pair__jvp_src_0_2_wrt_0_1",
        "AD__pair__differential_src_0_2_wrt_0_1",
    }


@pytest.mark.parametrize("sources", [[0], [2], [0, 2]])
def test_results_around_one_not_differentiable(sources: list[int]) -> None:
    """@pair's result 1 is an Int: result 2 is element 1 of the tuple tangent."""
    module = differentiated(WHOLE)
    x, y = 0.6, 1.7
    rows = {0: [math.cos(x) * y, math.sin(x)], 2: [1.0, 0.0]}
    jacobian = check_jacobian(module, "pair", sources, [0, 1], [x, y])
    assert jacobian == [pytest.approx(rows[i]) for i in sources]


BRANCHES = """
// Two return blocks each build the tuple; a third path returns it from a block argument.
sil @branchy : $@convention(thin) (Double, Double) -> (Double, Double) {
bb0(%x : $Double, %y : $Double):
  %c = builtin "fcmp_olt"(%x : $Double, %y : $Double) : $Bool
  cond_br %c, bb1, bb2
bb1:
  %xy = builtin "fmul"(%x : $Double, %y : $Double) : $Double
  %r1 = tuple (%xy : $Double, %x : $Double)
  return %r1 : $(Double, Double)
bb2:
  %zero = float_literal $Double, 0.0
  %d = builtin "fcmp_olt"(%x : $Double, %zero : $Double) : $Bool
  cond_br %d, bb3, bb4
bb3:
  %s = builtin "sin"(%x : $Double) : $Double
  %r3 = tuple (%y : $Double, %s : $Double)
  return %r3 : $(Double, Double)
bb4:
  %e = builtin "tanh"(%y : $Double) : $Double
  %ex = builtin "fmul"(%e : $Double, %x : $Double) : $Double
  %r4 = tuple (%e : $Double, %ex : $Double)
  br bb5(%r4 : $(Double, Double))
bb5(%r5 : $(Double, Double)):
  return %r5 : $(Double, Double)
}

// A loop whose body calls @branchy and carries both of its results to the next trip.
sil @iterate : $@convention(thin) (Double, Double, Int) -> Double {
bb0(%x : $Double, %y : $Double, %n : $Int):
  %zero = integer_literal $Int, 0
  br bb1(%zero : $Int, %x : $Double, %y : $Double)
bb1(%i : $Int, %a : $Double, %b : $Double):
  %more = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  cond_br %more, bb2, bb3
bb2:
  %f = function_ref @branchy : $@convention(thin) (Double, Double) -> (Double, Double)
  %r = apply %f(%a, %b) : $@convention(thin) (Double, Double) -> (Double, Double)
  (%a1, %b1) = destructure_tuple %r : $(Double, Double)
  %one = integer_literal $Int, 1
  %i1 = builtin "add"(%i : $Int, %one : $Int) : $Int
  br bb1(%i1 : $Int, %a1 : $Double, %b1 : $Double)
bb3:
  %ab = builtin "fadd"(%a : $Double, %b : $Double) : $Double
  return %ab : $Double
}
"""


@pytest.mark.parametrize("point", [[0.5, 0.8], [-0.4, -0.9], [0.7, 0.2]])
@pytest.mark.parametrize("sources", [[0], [1], [0, 1]])
def test_several_results_from_several_return_blocks(point: list[float], sources: list[int]) -> None:
    check_jacobian(differentiated(BRANCHES), "branchy", sources, [0, 1], point)


@pytest.mark.parametrize("n", [0, 1, 2, 5])
def test_a_call_with_several_results_in_a_loop(n: int) -> None:
    module = differentiated(BRANCHES)
    for point in ([0.3, 0.9], [0.9, 0.3], [-0.2, -0.6]):
        check_jacobian(module, "iterate", [0], [0, 1], [*point, n])


def test_only_the_results_used_need_a_derivative() -> None:
    """The callee's result 1 goes through ``fptosi``: a caller of result 0 differentiates."""
    text = (CASES / "tuple_call_diagnostics.sil").read_text(encoding="utf-8")
    start = text.index("sil @rounded")
    module = differentiated(text[start : text.index("sil [differentiable source 0 wrt 0] @uses_rounded")])
    assert check_jacobian(module, "uses_square", [0], [0], [1.5]) == [[pytest.approx(3.0)]]


REGISTERED = """
sil @scale : $@convention(thin) (Double, Double) -> Double {
bb0(%v : $Double, %k : $Double):
  %r = builtin "fmul"(%v : $Double, %k : $Double) : $Double
  return %r : $Double
}

// Its derivative for result 1 is registered, in both modes (x x has the linear map 2 x v).
sil @sq_d : $@convention(thin) (Double) -> ((Double, Double), @callee_guaranteed (Double) -> Double) {
bb0(%x : $Double):
  %xx = builtin "fmul"(%x : $Double, %x : $Double) : $Double
  %r = tuple (%x : $Double, %xx : $Double)
  %two = float_literal $Double, 2.0
  %d = builtin "fmul"(%two : $Double, %x : $Double) : $Double
  %f = function_ref @scale : $@convention(thin) (Double, Double) -> Double
  %map = partial_apply [callee_guaranteed] %f(%d) : $@convention(thin) (Double, Double) -> Double
  %o = tuple (%r : $(Double, Double), %map : $@callee_guaranteed (Double) -> Double)
  return %o : $((Double, Double), @callee_guaranteed (Double) -> Double)
}

sil [differentiable source 1 jvp @sq_d vjp @sq_d] @sq : $@convention(thin) (Double) -> (Double, Double) {
bb0(%x : $Double):
  %xx = builtin "fmul"(%x : $Double, %x : $Double) : $Double
  %r = tuple (%x : $Double, %xx : $Double)
  return %r : $(Double, Double)
}

sil @uses : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  %f = function_ref @sq : $@convention(thin) (Double) -> (Double, Double)
  %r = apply %f(%x) : $@convention(thin) (Double) -> (Double, Double)
  (%a, %b) = destructure_tuple %r : $(Double, Double)
  %ab = builtin "fmul"(%a : $Double, %b : $Double) : $Double
  return %ab : $Double
}

sil @uses_square : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  %f = function_ref @sq : $@convention(thin) (Double) -> (Double, Double)
  %r = apply %f(%x) : $@convention(thin) (Double) -> (Double, Double)
  %b = tuple_extract %r : $(Double, Double), 1
  return %b : $Double
}
"""


def test_a_registered_derivative_answers_a_call_of_its_result_only() -> None:
    module = differentiated(REGISTERED)
    x = 1.3
    assert check_jacobian(module, "uses_square", [0], [0], [x]) == [[pytest.approx(2 * x)]]
    assert check_jacobian(module, "uses", [0], [0], [x]) == [[pytest.approx(3 * x * x)]]
    calls = {
        fn: {
            inst.function_name
            for inst in module.functions[fn].instructions()
            if isinstance(inst, FunctionRefInst)
        }
        for fn in ("AD__uses_square__vjp_src_0_wrt_0", "AD__uses_square__jvp_src_0_wrt_0")
    }
    assert all("sq_d" in names and not any("AD__sq_" in n for n in names) for names in calls.values()), calls
    assert "AD__sq__vjp_src_0_1_wrt_0" in module.functions  # both results: synthesized


@pytest.mark.parametrize(
    ("options", "gradient", "expected"),
    [
        # swap_stats(x, y) = (x + y, x y (x + y)), at x = 2, y = 3 (and the seed 0.5)
        ("[source 1] [wrt 0, 1]", "(Double, Double) -> (Double, Double)", "(21.0, 16.0)"),
        ("[source 0] [wrt 1]", "(Double, Double) -> Double", "1.0"),
        ("[source 1] [wrt 0, 1] [seedable]", "(Double, Double, Double) -> (Double, Double)", "(10.5, 8.0)"),
        (
            "[source 1] [wrt 0] [preserving_result]",
            "(Double, Double) -> ((Double, Double), Double)",
            "((5.0, 30.0), 21.0)",
        ),
    ],
)
def test_gradient_seeds_the_result_its_source_names(options: str, gradient: str, expected: str) -> None:
    result = gradient.split(" -> ", 1)[1]
    arguments = "%x, %y, %s" if "[seedable]" in options else "%x, %y"
    original = "$@convention(thin) (Double, Double) -> (Double, Double)"
    probe = (
        f"\nsil @probe : $@convention(thin) (Double, Double, Double) -> {result} {{\n"
        "bb0(%x : $Double, %y : $Double, %s : $Double):\n"
        f"  %f = function_ref @swap_stats : {original}\n"
        f"  %g = gradient {options} %f : {original}\n"
        f"  %r = apply %g({arguments}) : $@convention(thin) {gradient}\n"
        f"  return %r : ${result}\n}}\n"
    )
    text = (CASES / "tuple_calls.sil").read_text(encoding="utf-8") + probe
    out, err = io.StringIO(), io.StringIO()
    status = main(["-", "--run", "@probe", "--args", "2", "3", "0.5"], io.StringIO(text), out, err)
    assert (status, out.getvalue(), err.getvalue()) == (0, expected + "\n", "")


RECURSIVE = """
// Each level uses both results of the one below: @pair for source 0 calls @pair for sources 0 and 1,
// which calls itself.
sil @pair : $@convention(thin) (Double, Int) -> (Double, Double) {
bb0(%x : $Double, %n : $Int):
  %zero = integer_literal $Int, 0
  %done = builtin "cmp_sle"(%n : $Int, %zero : $Int) : $Bool
  cond_br %done, bb1, bb2
bb1:
  %s = builtin "sin"(%x : $Double) : $Double
  %r = tuple (%x : $Double, %s : $Double)
  return %r : $(Double, Double)
bb2:
  %one = integer_literal $Int, 1
  %m = builtin "sub"(%n : $Int, %one : $Int) : $Int
  %f = function_ref @pair : $@convention(thin) (Double, Int) -> (Double, Double)
  %p = apply %f(%x, %m) : $@convention(thin) (Double, Int) -> (Double, Double)
  (%a, %b) = destructure_tuple %p : $(Double, Double)
  %ab = builtin "fmul"(%a : $Double, %b : $Double) : $Double
  %bx = builtin "fadd"(%b : $Double, %x : $Double) : $Double
  %q = tuple (%bx : $Double, %ab : $Double)
  return %q : $(Double, Double)
}
"""


@pytest.mark.parametrize("n", [0, 1, 3])
@pytest.mark.parametrize("sources", [[0], [1], [0, 1]])
def test_a_recursive_function_with_several_results(n: int, sources: list[int]) -> None:
    module = differentiated(RECURSIVE)
    check_jacobian(module, "pair", sources, [0], [0.7, n])
    if sources == [0]:
        assert "AD__pair__vjp_src_0_1_wrt_0" in module.functions


NESTED = """
// A result that is itself a tuple has a tuple tangent: @f uses result 0 of @n, @g both.
sil @n : $@convention(thin) (Double, Double) -> ((Double, Double), Double) {
bb0(%x : $Double, %y : $Double):
  %xy = builtin "fmul"(%x : $Double, %y : $Double) : $Double
  %s = builtin "sin"(%x : $Double) : $Double
  %p = tuple (%xy : $Double, %s : $Double)
  %r = tuple (%p : $(Double, Double), %y : $Double)
  return %r : $((Double, Double), Double)
}
sil [differentiable source 0 wrt 0, 1] @f : $@convention(thin) (Double, Double) -> Double {
bb0(%x : $Double, %y : $Double):
  %f = function_ref @n : $@convention(thin) (Double, Double) -> ((Double, Double), Double)
  %r = apply %f(%x, %y) : $@convention(thin) (Double, Double) -> ((Double, Double), Double)
  %p = tuple_extract %r : $((Double, Double), Double), 0
  %b = tuple_extract %p : $(Double, Double), 1
  %a = tuple_extract %p : $(Double, Double), 0
  %ab = builtin "fmul"(%a : $Double, %b : $Double) : $Double
  return %ab : $Double
}
sil [differentiable source 1 wrt 0, 1] @g : $@convention(thin) (Double, Double) -> (Double, Double) {
bb0(%x : $Double, %y : $Double):
  %f = function_ref @n : $@convention(thin) (Double, Double) -> ((Double, Double), Double)
  %r = apply %f(%x, %y) : $@convention(thin) (Double, Double) -> ((Double, Double), Double)
  (%p, %c) = destructure_tuple %r : $((Double, Double), Double)
  (%a, %b) = destructure_tuple %p : $(Double, Double)
  %ac = builtin "fmul"(%a : $Double, %c : $Double) : $Double
  %t = tuple (%b : $Double, %ac : $Double)
  return %t : $(Double, Double)
}
"""


def test_a_result_that_is_a_tuple() -> None:
    """``--check-derivatives`` (finite differences and the JVP-VJP identity) of both callers."""
    out, err = io.StringIO(), io.StringIO()
    status = main(["-", "-differentiation", "--check-derivatives"], io.StringIO(NESTED), out, err)
    lines = out.getvalue().splitlines()
    assert (status, err.getvalue(), len(lines)) == (0, "", 2)
    assert all(line.endswith(": ok") for line in lines), lines
    module = differentiated(NESTED)
    assert {"AD__n__pullback_src_0_wrt_0_1", "AD__n__pullback_src_0_1_wrt_0_1"} <= set(module.functions)


def _attribute_derivatives(module: Module, fn: str) -> tuple[DifferentiableAttr, Function, Function]:
    """The one ``[differentiable]`` attribute of ``fn``, and the VJP and JVP it names."""
    (attr,) = [a for a in module.functions[fn].attributes if isinstance(a, DifferentiableAttr)]
    assert attr.vjp is not None and attr.jvp is not None
    return attr, module.functions[attr.vjp], module.functions[attr.jvp]


@pytest.mark.parametrize("point", [[2.0, 3.0], [-0.5, 1.25]])
def test_an_attribute_without_source_is_of_every_differentiable_result(point: list[float]) -> None:
    """SIL-SPEC §3: @stats(x, y) = (x + y, 2, x y) has the tuple tangent of results 0 and 2."""
    module = golden("all_results.sil")
    attr, vjp, jvp = _attribute_derivatives(module, "stats")
    assert attr.source is None and vjp.name == "AD__stats__vjp_src_0_2_wrt_0_1"
    x, y = point
    jacobian = check_derivatives(module, "stats", vjp, jvp, [0, 2], [0, 1], point)
    assert jacobian == [[1.0, 1.0], [pytest.approx(y), pytest.approx(x)]]


def test_an_attribute_lists_several_sources() -> None:
    """``source 0, 1 wrt 1`` of (s: sin(x) y, q: y y): the labels carry over to the tangent."""
    module = golden("all_results.sil")
    attr, vjp, jvp = _attribute_derivatives(module, "labeled")
    assert (attr.source, attr.wrt) == ((0, 1), (1,))
    x, y = 0.4, -1.3
    jacobian = check_derivatives(module, "labeled", vjp, jvp, [0, 1], [1], [x, y])
    assert jacobian == [[pytest.approx(math.sin(x))], [pytest.approx(2 * y)]]


def _bundled_derivatives(module: Module, original: str) -> tuple[Function, Function]:
    """The VJP and JVP that -differentiation gave the bundle of ``original`` in @bundles."""
    for inst in module.functions["bundles"].instructions():
        if not isinstance(inst, DifferentiableFunctionInst):
            continue
        names = [
            op.owner.function_name
            for op in inst.operands
            if isinstance(op, Result) and isinstance(op.owner, FunctionRefInst)
        ]
        if names[0] == original:
            return module.functions[names[2]], module.functions[names[1]]
    raise AssertionError(f"no bundle of @{original}")


def test_a_bundle_without_results_is_of_every_differentiable_result() -> None:
    module = golden("all_results.sil")
    vjp, jvp = _bundled_derivatives(module, "labeled")
    assert vjp.name == "AD__labeled__vjp_src_0_1_wrt_0_1"
    x, y = 0.4, -1.3
    jacobian = check_derivatives(module, "labeled", vjp, jvp, [0, 1], [0, 1], [x, y])
    expected = [[math.cos(x) * y, math.sin(x)], [0.0, 2 * y]]
    assert jacobian == [pytest.approx(row) for row in expected]


def test_a_bundle_listing_every_differentiable_result_is_the_same() -> None:
    """``[parameters 0] [results 0 2]`` of @stats: answered by @stats's attribute, through a
    subset-parameters thunk."""
    module = golden("all_results.sil")
    vjp, jvp = _bundled_derivatives(module, "stats")
    assert vjp.name == "AD__stats__vjp_subset_parameters_thunk_src_0_2_wrt_0"
    jacobian = check_derivatives(module, "stats", vjp, jvp, [0, 2], [0], [1.5, -2.0])
    assert jacobian == [[1.0], [pytest.approx(-2.0)]]


@pytest.mark.parametrize("point", [[2.0, 3.0], [0.7, -1.1]])
def test_a_call_through_a_bundle_of_several_results(point: list[float]) -> None:
    """@through_bundle(x, y) = (x y) x + (x + y) (x y) = 2 x² y + x y², through the bundle of
    @stats: one call uses its result 2 only, the other both."""
    module = golden("all_results.sil")
    _, vjp, jvp = _attribute_derivatives(module, "through_bundle")
    x, y = point
    jacobian = check_derivatives(module, "through_bundle", vjp, jvp, [0], [0, 1], point)
    assert jacobian == [[pytest.approx(4 * x * y + y * y), pytest.approx(2 * x * x + 2 * x * y)]]
