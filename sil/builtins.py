"""The builtin table (SIL-SPEC §5): the one list of builtin names, with each builtin's type rule.

A rule takes the operand types and the written result type and returns None when they fit, or a
message saying what is wrong. What a builtin computes, and its derivatives, live outside ``sil/``
in tables keyed by the same names (the interpreter's templates, the backends' operations, the
derivative rules); ``tests/sil/test_builtins.py`` checks their keys against ``BUILTINS``. Other
layers ask this table what a builtin is (``elementwise``) rather than listing names again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import attrs

from sil.types import BOOL, DOUBLE, FLOAT, INT, TENSOR_SHAPE, ScalarType, TensorType, Type

TypeRule = Callable[[Sequence[Type], Type], str | None]


@attrs.frozen
class BuiltinInfo:
    """A builtin: its type rule, whether it is differentiable, and, for an elementwise builtin
    (Float, Double or Tensor operands, tensors broadcasting), its number of operands. A builtin
    of ``zero_derivative`` is differentiable with derivative zero (``step``, ``no_derivative``,
    ``shape``): activity stops at it, and it needs no rule. A builtin that ``keeps_shape`` returns
    a tensor of its first operand's shape whatever its other operands (``with_element``). A builtin
    that ``moves`` computes no float: its result holds its operands' elements moved or converted,
    or constants (``reshape``, ``select``, ``zeros``), so it makes no NaN from operands that are not
    NaN (``--trap-nan`` tests the others). A builtin that ``faults`` may stop a run on scalar
    operands (integer division by zero, ``fptosi`` out of range): optimizations keep it where it is
    (a tensor builtin may fault on shapes too: ``may_fault`` tells both)."""

    name: str
    rule: TypeRule
    differentiable: bool
    elementwise: int = 0
    zero_derivative: bool = False
    keeps_shape: bool = False
    moves: bool = False
    faults: bool = False


def _float_element(t: Type) -> ScalarType | None:
    """The float element of a Float/Double scalar or a tensor of one."""
    if isinstance(t, TensorType):
        return t.element
    if isinstance(t, ScalarType) and t.is_float:
        return t
    return None


def _elementwise(arity: int) -> TypeRule:
    def rule(ops: Sequence[Type], result: Type) -> str | None:
        if len(ops) != arity:
            return f"expects {arity} operand{'s' if arity > 1 else ''}, got {len(ops)}"
        elements = [_float_element(t) for t in ops]
        if any(e is None for e in elements):
            return "operands must be Float, Double or Tensor"
        if len(set(elements)) != 1:
            return "operands must have the same element type"
        tensors = [t for t in ops if isinstance(t, TensorType)]
        expected = tensors[0] if tensors else ops[0]
        if result != expected:
            return f"result type must be {expected}"
        return None

    return rule


def _fixed(params: Sequence[Type], returns: Type) -> TypeRule:
    def rule(ops: Sequence[Type], result: Type) -> str | None:
        if list(ops) != list(params):
            return f"operands must be ({', '.join(map(str, params))})"
        if result != returns:
            return f"result type must be {returns}"
        return None

    return rule


def _compare(ops: Sequence[Type], result: Type) -> str | None:
    if len(ops) != 2 or ops[0] != ops[1] or not (isinstance(ops[0], ScalarType) and ops[0].is_float):
        return "operands must be two Float or two Double scalars"
    return None if result == BOOL else "result type must be Bool"


def _integer(allow_bool: bool, returns_bool: bool) -> TypeRule:
    def rule(ops: Sequence[Type], result: Type) -> str | None:
        allowed = (INT, BOOL) if allow_bool else (INT,)
        if len(ops) != 2 or ops[0] != ops[1] or ops[0] not in allowed:
            names = " or ".join(f"two {t}" for t in allowed)
            return f"operands must be {names}"
        expected = BOOL if returns_bool else ops[0]
        return None if result == expected else f"result type must be {expected}"

    return rule


def _int_to_float(ops: Sequence[Type], result: Type) -> str | None:
    if list(ops) != [INT]:
        return "operand must be Int"
    return None if result in (FLOAT, DOUBLE) else "result type must be Float or Double"


def _float_to_int(ops: Sequence[Type], result: Type) -> str | None:
    if len(ops) != 1 or ops[0] not in (FLOAT, DOUBLE):
        return "operand must be Float or Double"
    return None if result == INT else "result type must be Int"


def _tensor_rule(
    tensor_operands: int,
    scalar_operand: bool = False,
    int_operands: str = "none",
    returns: str = "tensor",
) -> TypeRule:
    """Tensor builtins: ``tensor_operands`` tensors, then an optional element scalar, then the
    trailing operands ``int_operands`` names: "none", "one" (an Int), "any" (Ints), "dims" (Ints,
    one a dimension, or a single ``TensorShape``) or "shape" (one ``TensorShape``). The result
    (``returns``) is a tensor, the element scalar, an Int or a TensorShape. The element type is
    the one the result names when no operand fixes it."""

    def rule(ops: Sequence[Type], result: Type) -> str | None:
        fixed = tensor_operands + (1 if scalar_operand else 0)
        problem = _trailing_problem(ops[fixed:], int_operands) if len(ops) >= fixed else "count"
        if problem == "count":
            return _describe(tensor_operands, scalar_operand, int_operands)
        if problem is not None:
            return problem
        element, problem = _result_element(result, returns)
        if problem is not None:
            return problem
        for t in ops[:tensor_operands]:
            if not isinstance(t, TensorType):
                return _describe(tensor_operands, scalar_operand, int_operands)
            if element is None:
                element = t.element
            elif t.element != element:
                return "operands and result must have the same element type"
        if scalar_operand:
            scalar = ops[tensor_operands]
            if not (isinstance(scalar, ScalarType) and scalar.is_float) or (
                element is not None and scalar != element
            ):
                return f"scalar operand must be {element or 'Float or Double'}"
        return None

    return rule


def _trailing_problem(trailing: Sequence[Type], kind: str) -> str | None:
    """What is wrong with a tensor builtin's trailing operands: "count" for the wrong number."""
    if kind == "dims" and list(trailing) == [TENSOR_SHAPE]:
        return None
    if kind == "shape":
        return None if list(trailing) == [TENSOR_SHAPE] else "count"
    if (kind == "none" and trailing) or (kind == "one" and len(trailing) != 1):
        return "count"
    if any(t != INT for t in trailing):
        what = (
            "shape operands must be Int, or one TensorShape"
            if kind == "dims"
            else "axis and index operands must be Int"
        )
        return what
    return None


def _result_element(result: Type, returns: str) -> tuple[ScalarType | None, str | None]:
    """The element type ``result`` fixes (None when it fixes none), or what is wrong with it."""
    if returns == "tensor":
        if not isinstance(result, TensorType):
            return None, "result type must be a Tensor"
        return result.element, None
    if returns == "scalar":
        if not (isinstance(result, ScalarType) and result.is_float):
            return None, "result type must be Float or Double"
        return result, None
    expected = TENSOR_SHAPE if returns == "shape" else INT
    return None, None if result == expected else f"result type must be {expected}"


def _describe(tensors: int, scalar: bool, trailing: str) -> str:
    parts = ["Tensor"] * tensors + (["a scalar"] if scalar else [])
    parts += {
        "none": [],
        "one": ["Int"],
        "any": ["Int…"],
        "dims": ["Int… or TensorShape"],
        "shape": ["TensorShape"],
    }[trailing]
    return f"operands must be ({', '.join(parts)})"


def _select(ops: Sequence[Type], result: Type) -> str | None:
    if (
        len(ops) != 3
        or ops[0] != BOOL
        or ops[1] != ops[2]
        or not (isinstance(ops[1], ScalarType) and ops[1].is_float)
    ):
        return "operands must be (Bool, a Float or Double, the same type)"
    return None if result == ops[1] else f"result type must be {ops[1]}"


def _identity(ops: Sequence[Type], result: Type) -> str | None:
    if len(ops) != 1:
        return f"expects 1 operand, got {len(ops)}"
    return None if result == ops[0] else f"result type must be {ops[0]}"


def _table() -> dict[str, BuiltinInfo]:
    masks = ("step", "sign")
    elementwise = [
        BuiltinInfo(name, _elementwise(arity), True, arity, zero_derivative=name in masks)
        for arity, names in [
            (1, ("fneg", "exp", "log", "sin", "cos", "tanh", "sqrt", "abs", "relu", *masks)),
            (2, ("fadd", "fsub", "fmul", "fdiv", "fmin", "fmax", "pow")),
        ]
        for name in names
    ]
    constant = [  # of derivative zero: only the shape, or no derivative by definition
        BuiltinInfo("dim", _tensor_rule(1, int_operands="one", returns="int"), True, zero_derivative=True),
        BuiltinInfo("shape", _tensor_rule(1, returns="shape"), True, zero_derivative=True),
        BuiltinInfo("rank", _tensor_rule(1, returns="int"), True, zero_derivative=True),
        BuiltinInfo("no_derivative", _identity, True, zero_derivative=True, keeps_shape=True),
    ]
    rows: list[tuple[str, TypeRule, bool]] = []
    for name in ("fcmp_olt", "fcmp_ole", "fcmp_ogt", "fcmp_oge", "fcmp_oeq", "fcmp_one"):
        rows.append((name, _compare, False))
    for name in ("add", "sub", "mul", "sdiv", "srem"):
        rows.append((name, _integer(allow_bool=False, returns_bool=False), False))
    for name in ("and", "or", "xor"):
        rows.append((name, _integer(allow_bool=True, returns_bool=False), False))
    for name in ("cmp_slt", "cmp_sle"):
        rows.append((name, _integer(allow_bool=False, returns_bool=True), False))
    for name in ("cmp_eq", "cmp_ne"):
        rows.append((name, _integer(allow_bool=True, returns_bool=True), False))
    rows += [
        ("sitofp", _int_to_float, False),
        ("fptosi", _float_to_int, False),
        ("fpext", _fixed([FLOAT], DOUBLE), True),
        ("fptrunc", _fixed([DOUBLE], FLOAT), True),
        ("matmul", _tensor_rule(2), True),
        ("transpose", _tensor_rule(1), True),
        ("sum", _tensor_rule(1, returns="scalar"), True),
        ("mean", _tensor_rule(1, returns="scalar"), True),
        ("sum_axis", _tensor_rule(1, int_operands="one"), True),
        ("broadcast_to", _tensor_rule(1, int_operands="dims"), True),
        ("reshape", _tensor_rule(1, int_operands="dims"), True),
        ("zeros", _tensor_rule(0, int_operands="dims"), False),
        ("ones", _tensor_rule(0, int_operands="dims"), False),
        ("fill", _tensor_rule(0, scalar_operand=True, int_operands="dims"), True),
        ("arange", _tensor_rule(0, int_operands="one"), False),
        ("tensor_from_scalar", _tensor_rule(0, scalar_operand=True), True),
        ("scalar_from_tensor", _tensor_rule(1, returns="scalar"), True),
        ("unbroadcast", _tensor_rule(1, int_operands="shape"), True),
        ("expand_dims", _tensor_rule(1, int_operands="one"), True),
        ("element", _tensor_rule(1, int_operands="any", returns="scalar"), True),
        ("select", _select, True),
    ]
    with_element = _tensor_rule(1, scalar_operand=True, int_operands="any")
    shaped = [BuiltinInfo("with_element", with_element, True, keeps_shape=True)]
    infos = [*elementwise, *[BuiltinInfo(*row) for row in rows], *constant, *shaped]
    moving = {
        *("no_derivative", "select", "sitofp", "fpext", "fptrunc"),
        *("element", "with_element", "scalar_from_tensor", "tensor_from_scalar"),
        *("reshape", "transpose", "broadcast_to", "expand_dims", "fill", "zeros", "ones", "arange"),
    }
    faulting = {"sdiv", "srem", "fptosi"}
    return {
        info.name: attrs.evolve(info, moves=info.name in moving, faults=info.name in faulting)
        for info in infos
    }


BUILTINS: dict[str, BuiltinInfo] = _table()


# Tensor builtins that no tensor shape can make fail: a unary elementwise builtin maps any shape to
# itself, and these accept a tensor of any shape.
_SHAPE_SAFE = frozenset({"shape", "rank", "no_derivative", "sum", "mean", "transpose", "tensor_from_scalar"})


def may_fault(name: str, operands: Sequence[Type], result: Type) -> bool:
    """Whether the builtin ``name`` applied to ``operands`` can stop a run: on scalars
    (``BuiltinInfo.faults``: ``sdiv`` by zero), or on shapes (two tensor operands that do not
    broadcast, a ``matmul``'s inner sizes, a ``reshape``'s element count, an ``element`` index
    out of range, a negative size given to ``zeros``). Optimizations erase or move only builtins
    that cannot."""
    info = BUILTINS[name]
    if info.faults:
        return True
    if info.elementwise:
        return sum(isinstance(t, TensorType) for t in operands) > 1
    scalars = all(isinstance(t, ScalarType) for t in [*operands, result])
    return not scalars and name not in _SHAPE_SAFE


def elementwise_builtins(arity: int) -> tuple[str, ...]:
    """The names of the elementwise builtins of ``arity`` operands, in table order."""
    return tuple(name for name, info in BUILTINS.items() if info.elementwise == arity)


_SUFFIXES = ("_FPIEEE32", "_FPIEEE64", "_Int64", "_Int32", "_Int1")


@functools.lru_cache(maxsize=4096)
def check_builtin(name: str, operands: tuple[Type, ...], result: Type) -> str | None:
    """What is wrong with this use of builtin ``name``, or None (memoized: a module uses few
    distinct signatures)."""
    info = BUILTINS.get(name)
    if info is None:
        return f"unknown builtin '{name}'"
    problem = info.rule(operands, result)
    return None if problem is None else f"builtin '{name}' {problem}"


def canonical_builtin_name(name: str) -> str:
    """The table's name for ``name``, accepting SIL's suffixed spellings (``fadd_FPIEEE32``)."""
    info = BUILTINS.get(name)
    if info is not None:
        return info.name  # the table's own string, shared by every instruction
    base = name
    while base not in BUILTINS:
        for suffix in _SUFFIXES:
            if base.endswith(suffix):
                base = base[: -len(suffix)]
                break
        else:
            return name
    return BUILTINS[base].name
