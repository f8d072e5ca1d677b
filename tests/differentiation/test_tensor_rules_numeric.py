"""Every differentiable tensor builtin (SIL-SPEC §5) checked numerically in both modes, in Double.

Each case is a small function around one builtin, differentiated by ``-differentiation`` with
respect to each differentiable operand alone and to all of them (one function a ``wrt`` list, each
with its own ``[differentiable source 0 wrt …]`` attribute). At a random point, with a random
cotangent ``ct`` of the result's shape, the VJP's pullback must match central finite differences
of ``<f(x), ct>`` element by element, each cotangent must have its operand's own shape (a
broadcast operand's summed back), and the JVP's differential must satisfy the dot-product identity
``<JVP(x; dx), ct> == <dx, VJP(x; ct)>`` for a random ``dx``. Elementwise builtins of two operands
run on tensors of broadcast-compatible shapes, on a tensor and a scalar on either side, and on the
same value twice. Points stay away from kinks (``relu``, ``abs``, ties of ``fmin``/``fmax``) and
from the edges of domains (positive bases of ``pow``, ``log``, ``sqrt``; divisors away from 0).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np
import pytest

from accel.numpy_backend import NumpyBackend
from differentiation.rules import RULES
from interp import Program
from sil import parse, verify_module
from sil.instructions import BuiltinInst
from sil.passes import PassManager, registered_passes
from silopt import driver  # noqa: F401  (registers the differentiation passes)

T, D = "Tensor<Double>", "Double"
Shape = tuple[int, ...] | None  # None: a Double scalar


def draw(rng: np.random.Generator, shape: Shape, domain: str) -> Any:
    """Random values of ``shape``: ``any`` in [-1.5, 1.5], ``apart`` from zero (magnitudes in
    [0.3, 1.5]), ``positive`` in [0.5, 2]."""
    size = () if shape is None else shape
    if domain == "positive":
        values = rng.uniform(0.5, 2.0, size)
    elif domain == "apart":
        values = rng.uniform(0.3, 1.5, size) * rng.choice([-1.0, 1.0], size)
    else:
        values = rng.uniform(-1.5, 1.5, size)
    return float(values) if shape is None else np.asarray(values, dtype=np.float64)


@attrs.frozen
class Arg:
    """A parameter: its SIL type and how its values are drawn (``value``: always that one, and
    not differentiated: a shape's source, an Int, a Bool)."""

    shape: Shape = None
    domain: str = "any"
    value: Any = None
    type_name: str | None = None

    @property
    def type(self) -> str:
        if self.type_name is not None:
            return self.type_name
        return D if self.shape is None else T

    @property
    def differentiable(self) -> bool:
        return self.value is None

    def sample(self, rng: np.random.Generator) -> Any:
        return draw(rng, self.shape, self.domain) if self.value is None else self.value


def fixed(type_name: str, value: Any) -> Arg:
    """A parameter not differentiated, always ``value``."""
    return Arg(value=value, type_name=type_name)


@attrs.frozen
class Case:
    """A function of ``args`` (``%p0``, ``%p1``, …) whose ``body`` computes ``%r`` of type
    ``result``; ``apart``: two operands whose broadcast values must not tie (``fmin``, ``fmax``)."""

    id: str
    args: tuple[Arg, ...]
    body: str
    result: str = T
    apart: tuple[int, int] | None = None

    def wrt_lists(self) -> list[tuple[int, ...]]:
        """Each differentiable operand alone, and all of them together."""
        every = tuple(i for i, a in enumerate(self.args) if a.differentiable)
        return [(i,) for i in every] + ([every] if len(every) > 1 else [])

    def function(self, wrt: tuple[int, ...]) -> str:
        params = ", ".join(a.type for a in self.args)
        entry = ", ".join(f"%p{i} : ${a.type}" for i, a in enumerate(self.args))
        return (
            f"sil [differentiable source 0 wrt {', '.join(map(str, wrt))}] @{name_of(wrt)} : "
            f"$@convention(thin) ({params}) -> {self.result} {{\nbb0({entry}):\n{self.body}\n"
            f"  return %r : ${self.result}\n}}\n"
        )

    def point(self, rng: np.random.Generator) -> list[Any]:
        while True:
            args = [a.sample(rng) for a in self.args]
            if self.apart is None:
                return args
            x, y = (args[i] for i in self.apart)
            if np.min(np.abs(np.subtract(x, y))) > 0.1:
                return args


def name_of(wrt: Sequence[int]) -> str:
    return "f_" + "_".join(map(str, wrt))


def typed(*names_and_types: tuple[str, str]) -> str:
    return ", ".join(f"{name} : ${t}" for name, t in names_and_types)


def call(builtin: str, args: Sequence[Arg], result: str = T, extra: str = "") -> str:
    """``%r = builtin "builtin"(%p0, …)`` of the parameters, then ``extra`` operands."""
    operands = typed(*[(f"%p{i}", a.type) for i, a in enumerate(args)])
    return f'  %r = builtin "{builtin}"({operands}{extra}) : ${result}'


# --- elementwise ------------------------------------------------------------------------------------
UNARY_DOMAINS = {
    "fneg": "any",
    "exp": "any",
    "log": "positive",
    "sin": "any",
    "cos": "any",
    "tanh": "any",
    "sqrt": "positive",
    "abs": "apart",
    "relu": "apart",
    "step": "apart",
    "sign": "apart",
}
# The domains of each operand: positive bases of pow, divisors away from zero.
BINARY_DOMAINS = {
    "fadd": ("any", "any"),
    "fsub": ("any", "any"),
    "fmul": ("any", "any"),
    "fdiv": ("any", "apart"),
    "fmin": ("any", "any"),
    "fmax": ("any", "any"),
    "pow": ("positive", "any"),
}
SHAPE_PAIRS: list[tuple[Shape, Shape]] = [
    ((2, 3), (2, 3)),
    ((2, 3), (3,)),
    ((3,), (2, 3)),
    ((3, 1), (1, 4)),
    ((2, 1, 3), (4, 1)),
    ((), (2,)),
    ((2, 3), None),
    (None, (2, 3)),
    ((), None),
]


def random_shape_pairs(count: int, seed: int = 2) -> list[tuple[Shape, Shape]]:
    """Pairs of different, broadcast-compatible shapes: a result shape of rank 0 to 3, and for
    each operand some of its trailing axes, some of them 1."""
    rng = np.random.default_rng(seed)
    pairs: list[tuple[Shape, Shape]] = []
    while len(pairs) < count:
        full = tuple(int(d) for d in rng.integers(2, 4, rng.integers(0, 4)))
        a, b = (_operand_shape(rng, full) for _ in range(2))
        if a != b and np.broadcast_shapes(a, b) == full and (a, b) not in pairs:
            pairs.append((a, b))
    return pairs


def _operand_shape(rng: np.random.Generator, full: tuple[int, ...]) -> tuple[int, ...]:
    kept = full[rng.integers(0, len(full) + 1) :]
    return tuple(1 if rng.random() < 0.4 else d for d in kept)


def unary_cases() -> list[Any]:
    """Each unary builtin alone; ``step`` and ``sign``, whose derivative is zero, also as the masks
    they are (``step(x) * x`` is ``relu``, ``sign(x) * x`` is ``abs``)."""
    cases: list[Any] = []
    for name, domain in UNARY_DOMAINS.items():
        for shape in ((2, 3), ()):
            x = Arg(shape, domain)
            case = Case(f"{name}{list(shape)}", (x,), call(name, [x]))
            cases.append(case)
    for name in ("step", "sign"):
        body = (
            f'  %m = builtin "{name}"(%p0 : ${T}) : ${T}\n'
            f'  %r = builtin "fmul"({typed(("%m", T), ("%p0", T))}) : ${T}'
        )
        cases.append(Case(f"{name}(t)*t", (Arg((2, 3), "apart"),), body))
    return cases


def binary_cases() -> list[Case]:
    cases = []
    for name, (da, db) in BINARY_DOMAINS.items():
        chooser = name in ("fmin", "fmax")
        for sa, sb in [*SHAPE_PAIRS, *random_shape_pairs(5)]:
            a, b = Arg(sa, da), Arg(sb, db)
            label = f"{name}({'D' if sa is None else list(sa)},{'D' if sb is None else list(sb)})"
            cases.append(Case(label, (a, b), call(name, [a, b]), apart=(0, 1) if chooser else None))
        x = Arg((2, 3), da if da != "any" else db)  # the same value twice: t op t
        same = f'  %r = builtin "{name}"({typed(("%p0", T), ("%p0", T))}) : ${T}'
        cases.append(Case(f"{name}(t,t)", (x,), same))
    return cases


def reduced_binary_cases() -> list[Case]:
    """sum(a op b) of shapes (2, 3) and (3,): a scalar result, the seed spread by ``sum``'s
    pullback before the broadcast is undone."""
    cases = []
    for name, (da, db) in BINARY_DOMAINS.items():
        body = (
            f'  %t = builtin "{name}"({typed(("%p0", T), ("%p1", T))}) : ${T}\n'
            f'  %r = builtin "sum"(%t : ${T}) : ${D}'
        )
        apart = (0, 1) if name in ("fmin", "fmax") else None
        cases.append(Case(f"sum({name})", (Arg((2, 3), da), Arg((3,), db)), body, D, apart))
    return cases


# --- shapes, reductions, elements -------------------------------------------------------------------
def ints(*values: int) -> tuple[str, str]:
    """Int literals ``%d0``, ``%d1``, … and the operand list that passes them."""
    lines = "".join(f"  %d{i} = integer_literal $Int, {v}\n" for i, v in enumerate(values))
    return lines, "".join(f", %d{i} : $Int" for i in range(len(values)))


def with_ints(builtin: str, args: Sequence[Arg], values: Sequence[int], result: str = T) -> str:
    lines, operands = ints(*values)
    return lines + call(builtin, args, result, operands)


def with_shape_of(builtin: str, x: Arg, shape: tuple[int, ...], result: str = T) -> Case:
    """``builtin(x, shape(s))``, with ``s`` a parameter not differentiated, of ``shape``."""
    source = fixed(T, np.zeros(shape))
    body = (
        f'  %s = builtin "shape"(%p1 : ${T}) : $TensorShape\n'
        f'  %r = builtin "{builtin}"(%p0 : ${x.type}, %s : $TensorShape) : ${result}'
    )
    return Case(f"{builtin}({_label(x.shape)},shape{list(shape)})", (x, source), body, result)


def _label(shape: Shape) -> str:
    return "D" if shape is None else str(list(shape))


def shaping_cases() -> list[Case]:
    x23, v = Arg((2, 3)), Arg()
    cases = [
        Case("reshape([2,3],3,2)", (x23,), with_ints("reshape", [x23], [3, 2])),
        Case("reshape([2,3],6)", (x23,), with_ints("reshape", [x23], [6])),
        with_shape_of("reshape", Arg((2, 3)), (3, 1, 2)),
        Case("broadcast_to([3],2,3)", (Arg((3,)),), with_ints("broadcast_to", [Arg((3,))], [2, 3])),
        Case("broadcast_to([],2,3)", (Arg(()),), with_ints("broadcast_to", [Arg(())], [2, 3])),
        with_shape_of("broadcast_to", Arg((3, 1)), (2, 3, 4)),
        with_shape_of("broadcast_to", Arg((2, 3)), (2, 3)),
        *[
            Case(f"sum_axis([2,3,4],{axis})", (x,), with_ints("sum_axis", [x], [axis]))
            for axis in (0, 1, 2)
            for x in [Arg((2, 3, 4))]
        ],
        *[
            Case(f"transpose({list(s)})", (x,), call("transpose", [x]))
            for s in ((2, 3), (2, 3, 4))
            for x in [Arg(s)]
        ],
        *[
            Case(f"{name}({list(s)})", (x,), call(name, [x], D), D)
            for name in ("sum", "mean")
            for s in ((2, 3), ())
            for x in [Arg(s)]
        ],
        Case("matmul([2,3],[3,4])", (Arg((2, 3)), Arg((3, 4))), call("matmul", [Arg((2, 3)), Arg((3, 4))])),
        Case(
            "matmul(t,t)", (Arg((3, 3)),), f'  %r = builtin "matmul"({typed(("%p0", T), ("%p0", T))}) : ${T}'
        ),
        *[
            Case(f"expand_dims([2,3],{axis})", (x23,), with_ints("expand_dims", [x23], [axis]))
            for axis in (0, 1, 2)
        ],
        *[with_shape_of("unbroadcast", Arg((2, 3, 4)), s) for s in ((3, 1), (4,), (1, 3, 1), (2, 3, 4), ())],
        Case("element([2,3],1,2)", (x23,), with_ints("element", [x23], [1, 2], D), D),
        Case("element([4],3)", (Arg((4,)),), with_ints("element", [Arg((4,))], [3], D), D),
        Case("element([])", (Arg(()),), call("element", [Arg(())], D), D),
        Case("with_element([2,3],D,1,0)", (x23, v), with_ints("with_element", [x23, v], [1, 0])),
        Case("with_element(t,element(t,0,1),1,0)", (x23,), _moved_element()),
        Case("fill(D,2,3)", (v,), with_ints("fill", [v], [2, 3])),
        with_shape_of("fill", v, (3, 2)),
        Case("tensor_from_scalar(D)", (v,), call("tensor_from_scalar", [v])),
        *[
            Case(f"scalar_from_tensor({list(s)})", (x,), call("scalar_from_tensor", [x], D), D)
            for s in ((), (1, 1))
            for x in [Arg(s)]
        ],
    ]
    return cases


def _moved_element() -> str:
    """``with_element(t, element(t, 0, 1), 1, 0)``: one tensor read and written."""
    lines, read = ints(0, 1)
    return (
        f"{lines}"
        f'  %e = builtin "element"(%p0 : ${T}{read}) : ${D}\n'
        f'  %r = builtin "with_element"({typed(("%p0", T), ("%e", D))}, %d1 : $Int, %d0 : $Int) : ${T}'
    )


def select_cases() -> list[Case]:
    cases = []
    for chosen in (True, False):
        c, a, b = fixed("Bool", chosen), Arg(), Arg()
        cases.append(Case(f"select({chosen},a,b)", (c, a, b), call("select", [c, a, b], D), D))
    c = fixed("Bool", True)
    same = f'  %r = builtin "select"({typed(("%p0", "Bool"), ("%p1", D), ("%p1", D))}) : ${D}'
    cases.append(Case("select(c,a,a)", (c, Arg()), same, D))
    return cases


def lines(*instructions: str) -> str:
    return "\n".join(f"  {i}" for i in instructions)


def composite_cases() -> list[Case]:
    """Builtins together: a scalar made from a tensor and broadcast back over it, shapes proved
    equal through ``shape``, ``sum_axis`` undone by ``expand_dims`` (a softmax), ``unbroadcast``'s
    result broadcast again."""
    t23, b3 = Arg((2, 3)), Arg((3,))
    axis = "%a = integer_literal $Int, 1"
    return [
        Case(
            "t*sum(t)",
            (t23,),
            lines(
                f'%s = builtin "sum"(%p0 : ${T}) : ${D}',
                f'%r = builtin "fmul"({typed(("%p0", T), ("%s", D))}) : ${T}',
            ),
        ),
        Case(
            "t/mean(t)",
            (Arg((2, 3), "positive"),),
            lines(
                f'%s = builtin "mean"(%p0 : ${T}) : ${D}',
                f'%r = builtin "fdiv"({typed(("%p0", T), ("%s", D))}) : ${T}',
            ),
        ),
        Case(
            "broadcast_to(b,shape(t))+t",
            (b3, t23),
            lines(
                f'%sh = builtin "shape"(%p1 : ${T}) : $TensorShape',
                f'%bb = builtin "broadcast_to"(%p0 : ${T}, %sh : $TensorShape) : ${T}',
                f'%r = builtin "fadd"({typed(("%bb", T), ("%p1", T))}) : ${T}',
            ),
        ),
        Case(
            "softmax",
            (t23,),
            lines(
                axis,
                f'%x = builtin "exp"(%p0 : ${T}) : ${T}',
                f'%m = builtin "sum_axis"(%x : ${T}, %a : $Int) : ${T}',
                f'%e = builtin "expand_dims"(%m : ${T}, %a : $Int) : ${T}',
                f'%r = builtin "fdiv"({typed(("%x", T), ("%e", T))}) : ${T}',
            ),
        ),
        Case(
            "unbroadcast(t,shape(s))*s",
            (Arg((2, 3, 4)), Arg((3, 1))),
            lines(
                f'%sh = builtin "shape"(%p1 : ${T}) : $TensorShape',
                f'%u = builtin "unbroadcast"(%p0 : ${T}, %sh : $TensorShape) : ${T}',
                f'%r = builtin "fmul"({typed(("%u", T), ("%p1", T))}) : ${T}',
            ),
        ),
        Case(
            "fmax(t*t+b-b,b)",
            (t23, b3),
            lines(
                f'%s = builtin "fmul"({typed(("%p0", T), ("%p0", T))}) : ${T}',
                f'%t = builtin "fadd"({typed(("%s", T), ("%p1", T))}) : ${T}',
                f'%u = builtin "fsub"({typed(("%t", T), ("%p1", T))}) : ${T}',
                f'%r = builtin "fmax"({typed(("%u", T), ("%p1", T))}) : ${T}',
            ),
        ),
        Case(
            "select(c,sum(t),mean(t))",
            (fixed("Bool", True), t23),
            lines(
                f'%s = builtin "sum"(%p1 : ${T}) : ${D}',
                f'%m = builtin "mean"(%p1 : ${T}) : ${D}',
                f'%r = builtin "select"({typed(("%p0", "Bool"), ("%s", D), ("%m", D))}) : ${D}',
            ),
            D,
        ),
        Case(
            "fill(sum(t),shape(t))*t",
            (t23,),
            lines(
                f'%s = builtin "sum"(%p0 : ${T}) : ${D}',
                f'%sh = builtin "shape"(%p0 : ${T}) : $TensorShape',
                f'%f = builtin "fill"(%s : ${D}, %sh : $TensorShape) : ${T}',
                f'%r = builtin "fmul"({typed(("%f", T), ("%p0", T))}) : ${T}',
            ),
        ),
    ]


CASES = [
    *unary_cases(),
    *binary_cases(),
    *reduced_binary_cases(),
    *shaping_cases(),
    *select_cases(),
    *composite_cases(),
]


# --- the checks -------------------------------------------------------------------------------------
def differentiated(text: str) -> Program:
    module = parse(text, "rules.sil")
    PassManager([registered_passes()["differentiation"]()]).run(module)
    assert verify_module(module) == []
    return Program(module, NumpyBackend())


def like(rng: np.random.Generator, value: Any) -> Any:
    """A random value of ``value``'s shape (a float for a float)."""
    if isinstance(value, float):
        return float(rng.uniform(-1.0, 1.0))
    return rng.uniform(-1.0, 1.0, np.shape(value))


def same_kind(a: Any, b: Any) -> bool:
    """Both tensors (float64 arrays) of one shape, or both scalars."""
    if isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and a.dtype == np.float64 and a.shape == b.shape
    return isinstance(a, float)


def inner(a: Any, b: Any) -> float:
    return float(np.sum(np.multiply(a, b)))


def finite_differences(f: Callable[[list[Any]], float], args: list[Any], i: int, h: float = 1e-6) -> Any:
    """The gradient of ``f`` with respect to argument ``i`` by central differences."""
    x = args[i]
    if isinstance(x, float):
        return (f([*args[:i], x + h, *args[i + 1 :]]) - f([*args[:i], x - h, *args[i + 1 :]])) / (2 * h)
    gradient = np.zeros_like(x)
    for index in np.ndindex(*np.shape(x)):
        step = np.zeros_like(x)
        step[index] = h
        plus = f([*args[:i], x + step, *args[i + 1 :]])
        minus = f([*args[:i], x - step, *args[i + 1 :]])
        gradient[index] = (plus - minus) / (2 * h)
    return gradient


def check(
    program: Program,
    name: str,
    args: list[Any],
    wrt: tuple[int, ...],
    rng: np.random.Generator,
    thunk: str = "",
) -> None:
    """The pullback against finite differences, cotangent shapes, and the dot-product identity;
    ``thunk``: ``"_subset_parameters_thunk"`` for derivatives answered by a wider registered one."""
    suffix = "_".join(map(str, wrt))
    value = program.run(f"@{name}", *args)
    ct = like(rng, value)
    out, pullback = program.run(f"@AD__{name}__vjp{thunk}_src_0_wrt_{suffix}", *args)
    assert np.array_equal(out, value)
    cotangents = pullback(ct)
    cotangents = cotangents if len(wrt) > 1 else (cotangents,)

    def projected(point: list[Any]) -> float:
        return inner(program.run(f"@{name}", *point), ct)

    for i, cotangent in zip(wrt, cotangents):
        assert same_kind(cotangent, args[i]), (i, type(cotangent), np.shape(cotangent))
        numeric = finite_differences(projected, args, i)
        assert np.allclose(cotangent, numeric, rtol=1e-6, atol=1e-7), (i, cotangent, numeric)
    tangents = [like(rng, args[i]) for i in wrt]
    out, differential = program.run(f"@AD__{name}__jvp{thunk}_src_0_wrt_{suffix}", *args)
    assert np.array_equal(out, value)
    pushed = differential(*tangents)
    assert same_kind(pushed, value), (type(pushed), np.shape(pushed))
    left = inner(pushed, ct)
    right = sum(inner(t, c) for t, c in zip(tangents, cotangents))
    assert np.isclose(left, right, rtol=1e-10, atol=1e-12), (left, right)


def test_every_tensor_rule_has_a_case() -> None:
    """Each builtin with a derivative rule but the scalar conversions, and the masks, has a case
    here: a rule added later is checked numerically too."""
    bodies = [getattr(case, "values", (case,))[0].body for case in CASES]
    used = {name for body in bodies for name in re.findall(r'builtin "(\w+)"', body)}
    assert (set(RULES) - {"fpext", "fptrunc"}) | {"step", "sign"} <= used


@pytest.mark.parametrize("name", list(BINARY_DOMAINS))
def test_nothing_is_summed_back_where_shapes_are_provably_equal(name: str) -> None:
    """Issue 14: ``t op t`` and a tensor with a scalar need no ``unbroadcast`` (the scalar's
    cotangent is a ``sum``); the same value twice needs no shape at all."""
    same = f'  %r = builtin "{name}"({typed(("%p0", T), ("%p0", T))}) : ${T}'
    scalar = call(name, [Arg((2, 3)), Arg()])
    for body, args, banned in (
        (same, (Arg((2, 3)),), {"shape", "unbroadcast", "broadcast_to", "fill"}),
        (scalar, (Arg((2, 3)), Arg()), {"unbroadcast", "broadcast_to"}),
    ):
        case = Case(name, args, body)
        module = parse("".join(case.function(wrt) for wrt in case.wrt_lists()), "rules.sil")
        PassManager([registered_passes()["differentiation"]()]).run(module)
        emitted = {
            inst.name
            for fn in module.functions.values()
            if fn.name.startswith("AD__")
            for inst in fn.instructions()
            if isinstance(inst, BuiltinInst)
        }
        assert not emitted & banned, (body, emitted & banned)


def case_id(case: Any) -> str:
    return str(case.id)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_rule_matches_finite_differences_and_the_dot_product_identity(case: Case) -> None:
    wrt_lists = case.wrt_lists()
    program = differentiated("".join(case.function(wrt) for wrt in wrt_lists))
    rng = np.random.default_rng(zlib.crc32(case.id.encode()))
    args = case.point(rng)
    for wrt in wrt_lists:
        check(program, name_of(wrt), args, wrt, rng)


def test_no_derivative_stops_the_derivative() -> None:
    """``no_derivative(x) * x`` has the derivative ``x`` (not ``2 x``, which finite differences of
    the identity would give), in both modes."""
    body = (
        f'  %c = builtin "no_derivative"(%p0 : ${T}) : ${T}\n'
        f'  %r = builtin "fmul"({typed(("%c", T), ("%p0", T))}) : ${T}'
    )
    case = Case("no_derivative", (Arg((2, 3)),), body)
    program = differentiated(case.function((0,)))
    rng = np.random.default_rng(3)
    (x,) = case.point(rng)
    ct, dx = like(rng, x), like(rng, x)
    _, pullback = program.run("@AD__f_0__vjp_src_0_wrt_0", x)
    _, differential = program.run("@AD__f_0__jvp_src_0_wrt_0", x)
    assert np.array_equal(pullback(ct), ct * x)
    assert np.array_equal(differential(dx), dx * x)


def mlp_case(batch: int = 5, inputs: int = 3, width: int = 4) -> Case:
    """mean((tanh(X W + b) - Y)^2), the bias ``b`` of shape (width,) broadcast over the batch."""
    rng = np.random.default_rng(14)
    x, y = rng.standard_normal((batch, inputs)), rng.uniform(-0.9, 0.9, (batch, width))
    body = "\n".join(
        [
            f'  %xw = builtin "matmul"({typed(("%p0", T), ("%p1", T))}) : ${T}',
            f'  %z = builtin "fadd"({typed(("%xw", T), ("%p2", T))}) : ${T}',
            f'  %a = builtin "tanh"(%z : ${T}) : ${T}',
            f'  %d = builtin "fsub"({typed(("%a", T), ("%p3", T))}) : ${T}',
            f'  %sq = builtin "fmul"({typed(("%d", T), ("%d", T))}) : ${T}',
            f'  %r = builtin "mean"(%sq : ${T}) : ${D}',
        ]
    )
    return Case("mlp", (fixed(T, x), Arg((inputs, width)), Arg((width,)), fixed(T, y)), body, D)


def test_mlp_loss_gradient_with_a_bias_broadcast_over_the_batch() -> None:
    case = mlp_case()
    assert case.wrt_lists() == [(1,), (2,), (1, 2)]
    program = differentiated("".join(case.function(wrt) for wrt in case.wrt_lists()))
    rng = np.random.default_rng(15)
    args = case.point(rng)
    for wrt in case.wrt_lists():
        check(program, name_of(wrt), args, wrt, rng)


def test_a_second_attribute_for_fewer_tensor_parameters() -> None:
    """``[… wrt 0, 1] [… wrt 0]`` of one function: the second is answered by the first's
    derivatives through a subset-parameters thunk, whose differential passes a zero tangent made
    to the shape of the tensor parameter not asked for."""
    case = Case("fmul", (Arg((2, 3)), Arg((3,))), call("fmul", [Arg((2, 3)), Arg((3,))]))
    text = case.function((0, 1)).replace("] @f_0_1", "] [differentiable source 0 wrt 0] @f_0_1", 1)
    program = differentiated(text)
    rng = np.random.default_rng(4)
    check(program, "f_0_1", case.point(rng), (0,), rng, thunk="_subset_parameters_thunk")


TINY = np.array([5e-324, -5e-324, 1e-310, -1e-310, 0.0, -0.0, 2.0])


@pytest.mark.parametrize(
    ("name", "masks"),
    [
        ("relu", [TINY > 0]),
        ("abs", [np.sign(TINY)]),
        ("fmax", [TINY >= 0, TINY < 0]),  # against 0: the derivative goes to x on a tie
        ("fmin", [TINY <= 0, TINY > 0]),
    ],
)
def test_masks_are_exact_at_subnormal_inputs(name: str, masks: list[Any]) -> None:
    """SIL-SPEC §5: the masks of ``relu``, ``abs``, ``fmin`` and ``fmax`` are ``step`` and ``sign``,
    exact where a saturating product would round a subnormal away."""
    args = (Arg(TINY.shape), Arg(TINY.shape))[: len(masks)]
    case = Case(name, args, call(name, args))
    wrt = tuple(range(len(masks)))
    program = differentiated(case.function(wrt))
    point = [TINY, np.zeros_like(TINY)][: len(masks)]
    suffix = "_".join(map(str, wrt))
    _, pullback = program.run(f"@AD__{name_of(wrt)}__vjp_src_0_wrt_{suffix}", *point)
    _, differential = program.run(f"@AD__{name_of(wrt)}__jvp_src_0_wrt_{suffix}", *point)
    ones = np.ones_like(TINY)
    cotangents = pullback(ones) if len(masks) > 1 else (pullback(ones),)
    for cotangent, mask in zip(cotangents, masks):
        assert np.array_equal(cotangent, np.asarray(mask, dtype=np.float64))
    for i, mask in enumerate(masks):
        tangents = [ones if j == i else np.zeros_like(TINY) for j in wrt]
        assert np.array_equal(differential(*tangents), np.asarray(mask, dtype=np.float64))
