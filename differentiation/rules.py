"""The derivative rules of the builtins (SIL-SPEC §5), one table for both modes.

A rule is split the way a VJP splits a function: ``save`` runs in the primal (the VJP or JVP) and
builds the values the linear maps need, the partial derivatives mostly (``cos x`` for ``sin``),
which the emitter records in the checkpoints; ``pullback`` (reverse mode) and ``differential``
(forward mode) run in the pullback or differential function and build the linear map from those
saved values. Each takes a Builder positioned where the code goes, so a rule reads like the
mathematics. A zero tangent or cotangent is ``None`` and is never materialized by a rule; a
cotangent may be ``Negated``, which the pullback adds to others with ``fsub``.

What a rule saves is also declared, without emitting anything (``keeps``: one ``Kept`` a slot,
saying which value it is and which operands' derivatives read it in each mode), so that the
records are planned before any code is emitted (``linear_map_info.py``). The linear maps read
the slots by position (``Saved``), and only those of the operands they are asked for.

Elementwise builtins take Float/Double scalars or tensors. A tensor combined with a scalar sums
the scalar's cotangent over the tensor. SIL-SPEC §5 gives no way to ask a tensor's rank or shape,
so a cotangent cannot be summed back to an operand that was broadcast (two tensor operands, see
``may_broadcast``), and ``reshape``, ``broadcast_to`` and ``sum_axis`` cannot be undone; the
diagnostics report such uses. A tensor of zeros shaped like another is made elementwise
(``zeros_like``), which is enough for ``sum``, ``mean`` and ``scalar_from_tensor``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from differentiation.tangents import Negated
from sil.builder import Builder
from sil.builtins import elementwise_builtins
from sil.ir import Value
from sil.types import DOUBLE, FLOAT, ScalarType, TensorType, Type

Cotangents = list[Value | Negated | None]
RESULT = -1  # a ``Kept.source``: the builtin's result


@attrs.frozen
class Kept:
    """One slot of what a rule saves: operand ``source`` as it is, the result (``RESULT``), or a
    partial ``save`` computes (None; of the result's type). It is saved when an operand it
    ``serves`` is needed, and read by the pullback for their cotangents (``pullback``) and by the
    differential for their tangents (``differential``)."""

    source: int | None
    serves: tuple[int, ...]
    pullback: bool = True
    differential: bool = True

    def read(self, operands: Sequence[bool], mode: str) -> bool:
        """Whether the linear map of ``mode`` ("pullback" or "differential") reads this slot when
        it handles the derivatives of ``operands``."""
        if not (self.pullback if mode == "pullback" else self.differential):
            return False
        return any(operands[i] for i in self.serves)


class Saved:
    """The saved values a linear map reads, slot by slot as the rule's ``keeps`` declares them.
    A slot not saved or not read (see ``Kept.read``) holds None and cannot be read: the plan of
    the records and the rule would disagree."""

    __slots__ = ("_values",)

    def __init__(self, values: Sequence[Value | None]) -> None:
        self._values = values

    def __getitem__(self, slot: int) -> Value:
        value = self._values[slot]
        assert value is not None, f"saved slot {slot} is not kept for this linear map"
        return value

    def __len__(self) -> int:
        return len(self._values)

    def every(self) -> list[Value]:
        return [self[i] for i in range(len(self._values))]


def element_type(t: Type) -> ScalarType:
    """The Float/Double of a scalar or a tensor type."""
    if isinstance(t, TensorType):
        return t.element
    assert isinstance(t, ScalarType)
    return t


def _literal(b: Builder, like: Value, value: float) -> Value:
    """A scalar literal of ``like``'s element type (it broadcasts against tensors)."""
    return b.float_literal(element_type(like.type), value)


def _mul(b: Builder, x: Value, y: Value) -> Value:
    return b.builtin("fmul", x, y)


def _add(b: Builder, x: Value | None, y: Value | None) -> Value | None:
    if x is None:
        return y
    if y is None:
        return x
    return b.builtin("fadd", x, y)


def _neg(b: Builder, x: Value | None) -> Value | None:
    return None if x is None else b.builtin("fneg", x)


def _sub(b: Builder, x: Value | None, y: Value | None) -> Value | None:
    if y is None:
        return x
    return b.builtin("fneg", y) if x is None else b.builtin("fsub", x, y)


def _step(b: Builder, x: Value) -> Value:
    """1 where ``x`` > 0, else 0 (saturating ``x`` times the largest finite value): the mask of
    ``relu``, ``abs``, ``fmin`` and ``fmax``, which have no select to use."""
    largest = 3.4028234663852886e38 if element_type(x.type) == FLOAT else 1.7976931348623157e308
    big = b.builtin("fmul", x, _literal(b, x, largest))
    return b.builtin("fmin", b.builtin("fmax", big, _literal(b, x, 0.0)), _literal(b, x, 1.0))


@attrs.frozen
class Rule:
    """How one builtin is differentiated (see the module docstring).

    ``keeps(arity)`` declares the slots ``save`` fills. ``save(b, operands, result, needed)``
    returns one value a slot (None where no operand the slot serves is ``needed``), so that a
    rule computes no partial nobody uses. ``pullback(b, seed, saved, wanted)`` returns one
    cotangent per operand, None but for those ``wanted`` (a subset of ``needed``).
    ``differential(b, tangents, saved)`` returns the result's tangent, None exactly when every
    operand's tangent is (zero).
    """

    keeps: Callable[[int], tuple[Kept, ...]]
    save: Callable[[Builder, Sequence[Value], Value, Sequence[bool]], list[Value | None]]
    pullback: Callable[[Builder, Value, Saved, Sequence[bool]], Cotangents]
    differential: Callable[[Builder, Sequence[Value | None], Saved], Value | None]


def _constant(*keeps: Kept) -> Callable[[int], tuple[Kept, ...]]:
    return lambda arity: keeps


def _unary(partial: Callable[[Builder, Value, Value], Value], source: int | None = None) -> Rule:
    """A unary elementwise builtin whose derivative is multiplication by ``partial(x, result)``
    (which is the value ``source``, when it is the result)."""
    return Rule(
        keeps=_constant(Kept(source, (0,))),
        save=lambda b, ops, r, needed: [partial(b, ops[0], r) if needed[0] else None],
        pullback=lambda b, seed, saved, needed: [_mul(b, seed, saved[0]) if needed[0] else None],
        differential=lambda b, t, saved: None if t[0] is None else _mul(b, t[0], saved[0]),
    )


def _binary(
    partials: Callable[[Builder, Value, Value, Value, Sequence[bool]], tuple[Value | None, Value | None]],
    sources: tuple[int | None, int | None] = (None, None),
) -> Rule:
    """A binary elementwise builtin whose derivatives are multiplications by two partials (which
    are the operands ``sources``, where they are operands)."""

    def save(b: Builder, ops: Sequence[Value], r: Value, needed: Sequence[bool]) -> list[Value | None]:
        px, py = partials(b, ops[0], ops[1], r, needed)
        return [px if needed[0] else None, py if needed[1] else None]

    def pullback(b: Builder, seed: Value, saved: Saved, wanted: Sequence[bool]) -> Cotangents:
        return [_mul(b, seed, saved[i]) if want else None for i, want in enumerate(wanted)]

    def differential(b: Builder, t: Sequence[Value | None], saved: Saved) -> Value | None:
        total: Value | None = None
        for i, tangent in enumerate(t):
            if tangent is not None:
                total = _add(b, total, _mul(b, tangent, saved[i]))
        return total

    return Rule(_constant(Kept(sources[0], (0,)), Kept(sources[1], (1,))), save, pullback, differential)


def _linear(
    pullback: Callable[[Builder, Value, Sequence[bool]], Cotangents],
    differential: Callable[[Builder, Sequence[Value | None]], Value | None],
) -> Rule:
    """A builtin linear in its operands: nothing to save. ``pullback`` builds only the cotangents
    ``needed`` asks for."""
    return Rule(
        keeps=_constant(),
        save=lambda b, ops, r, needed: [],
        pullback=lambda b, seed, saved, needed: pullback(b, seed, needed),
        differential=lambda b, t, saved: differential(b, t),
    )


def _only(value: Callable[[], Value], wanted: bool) -> Value | None:
    return value() if wanted else None


def _one_minus_square(b: Builder, x: Value, r: Value) -> Value:
    return b.builtin("fsub", _literal(b, r, 1.0), b.builtin("fmul", r, r))


def _sign(b: Builder, x: Value, r: Value) -> Value:
    return b.builtin("fsub", _step(b, x), _step(b, b.builtin("fneg", x)))


def _fmul_partials(b: Builder, x: Value, y: Value, r: Value, needed: Sequence[bool]) -> tuple[Value, Value]:
    return y, x


def _fdiv_save(b: Builder, ops: Sequence[Value], r: Value, needed: Sequence[bool]) -> list[Value | None]:
    """``x / y``: the linear maps divide by ``y``, and ``y``'s derivative also needs ``r``."""
    return [ops[1] if any(needed) else None, r if needed[1] else None]


def _fdiv_pullback(b: Builder, seed: Value, saved: Saved, wanted: Sequence[bool]) -> Cotangents:
    if not any(wanted):
        return [None, None]
    scaled = b.builtin("fdiv", seed, saved[0])  # seed / y: x's cotangent, and y's times -r
    dy = Negated(b.builtin("fmul", scaled, saved[1])) if wanted[1] else None
    return [scaled if wanted[0] else None, dy]


def _fdiv_differential(b: Builder, t: Sequence[Value | None], saved: Saved) -> Value | None:
    """(dx - r dy) / y."""
    if t[0] is None and t[1] is None:
        return None
    numerator = t[0]
    if t[1] is not None:
        r_dy = b.builtin("fmul", saved[1], t[1])
        numerator = b.builtin("fsub", numerator, r_dy) if numerator is not None else b.builtin("fneg", r_dy)
    assert numerator is not None
    return b.builtin("fdiv", numerator, saved[0])


def _pow_partials(
    b: Builder, x: Value, y: Value, r: Value, needed: Sequence[bool]
) -> tuple[Value | None, Value | None]:
    dx = dy = None
    if needed[0]:  # y * x^(y-1)
        lower = b.builtin("pow", x, b.builtin("fsub", y, _literal(b, y, 1.0)))
        dx = b.builtin("fmul", y, lower)
    if needed[1]:  # x^y * log x
        dy = b.builtin("fmul", r, b.builtin("log", x))
    return dx, dy


def _select_partials(first_wins: str) -> Callable[..., tuple[Value, Value]]:
    """``fmin``/``fmax``: the derivative goes to the operand chosen (to ``x`` on a tie)."""

    def partials(b: Builder, x: Value, y: Value, r: Value, needed: Sequence[bool]) -> tuple[Value, Value]:
        # fmin picks y where x - y > 0; fmax picks y where y - x > 0.
        diff = b.builtin("fsub", x, y) if first_wins == "min" else b.builtin("fsub", y, x)
        to_y = _step(b, diff)
        return b.builtin("fsub", _literal(b, to_y, 1.0), to_y), to_y

    return partials


RULES: dict[str, Rule] = {
    "fneg": _linear(lambda b, s, n: [Negated(s) if n[0] else None], lambda b, t: _neg(b, t[0])),
    "exp": _unary(lambda b, x, r: r, RESULT),
    "log": _unary(lambda b, x, r: b.builtin("fdiv", _literal(b, x, 1.0), x)),
    "sin": _unary(lambda b, x, r: b.builtin("cos", x)),
    "cos": Rule(  # -sin x: sin x is saved, and the minus goes to the linear maps
        keeps=_constant(Kept(None, (0,))),
        save=lambda b, ops, r, needed: [b.builtin("sin", ops[0]) if needed[0] else None],
        pullback=lambda b, seed, saved, needed: [Negated(_mul(b, seed, saved[0])) if needed[0] else None],
        differential=lambda b, t, saved: None if t[0] is None else b.builtin("fneg", _mul(b, t[0], saved[0])),
    ),
    "tanh": _unary(_one_minus_square),
    "sqrt": _unary(lambda b, x, r: b.builtin("fdiv", _literal(b, r, 0.5), r)),
    "abs": _unary(_sign),
    "relu": _unary(lambda b, x, r: _step(b, x)),
    "fadd": _linear(
        lambda b, s, n: [s if n[0] else None, s if n[1] else None], lambda b, t: _add(b, t[0], t[1])
    ),
    "fsub": _linear(
        lambda b, s, n: [s if n[0] else None, Negated(s) if n[1] else None],
        lambda b, t: _sub(b, t[0], t[1]),
    ),
    "fmul": _binary(_fmul_partials, (1, 0)),
    "fdiv": Rule(
        _constant(Kept(1, (0, 1)), Kept(RESULT, (1,))), _fdiv_save, _fdiv_pullback, _fdiv_differential
    ),
    "pow": _binary(_pow_partials),
    "fmin": _binary(_select_partials("min")),
    "fmax": _binary(_select_partials("max")),
    "fpext": _linear(
        lambda b, s, n: [_only(lambda: b.builtin("fptrunc", s, type=FLOAT), n[0])],
        lambda b, t: None if t[0] is None else b.builtin("fpext", t[0], type=DOUBLE),
    ),
    "fptrunc": _linear(
        lambda b, s, n: [_only(lambda: b.builtin("fpext", s, type=DOUBLE), n[0])],
        lambda b, t: None if t[0] is None else b.builtin("fptrunc", t[0], type=FLOAT),
    ),
    "transpose": _linear(
        lambda b, s, n: [_only(lambda: b.builtin("transpose", s), n[0])],
        lambda b, t: None if t[0] is None else b.builtin("transpose", t[0]),
    ),
    "tensor_from_scalar": _linear(
        lambda b, s, n: [_only(lambda: b.builtin("scalar_from_tensor", s, type=element_type(s.type)), n[0])],
        lambda b, t: (
            None
            if t[0] is None
            else b.builtin("tensor_from_scalar", t[0], type=TensorType(element_type(t[0].type)))
        ),
    ),
}


def _matmul_save(b: Builder, ops: Sequence[Value], r: Value, needed: Sequence[bool]) -> list[Value | None]:
    x, y = ops
    return [y if needed[0] else None, x if needed[1] else None]  # each partial needs the other operand


def _matmul_pullback(b: Builder, seed: Value, saved: Saved, wanted: Sequence[bool]) -> Cotangents:
    dx = b.builtin("matmul", seed, b.builtin("transpose", saved[0])) if wanted[0] else None
    dy = b.builtin("matmul", b.builtin("transpose", saved[1]), seed) if wanted[1] else None
    return [dx, dy]


def _matmul_differential(b: Builder, t: Sequence[Value | None], saved: Saved) -> Value | None:
    total: Value | None = None
    if t[0] is not None:
        total = b.builtin("matmul", t[0], saved[0])
    if t[1] is not None:
        total = _add(b, total, b.builtin("matmul", saved[1], t[1]))
    return total


RULES["matmul"] = Rule(
    _constant(Kept(1, (0,)), Kept(0, (1,))), _matmul_save, _matmul_pullback, _matmul_differential
)


def zeros_like(b: Builder, t: Value) -> Value:
    """A tensor of zeros shaped like ``t``, from elementwise builtins alone (SIL-SPEC §5 has no
    way to ask a shape): ``fmin(abs(t), 0)`` is 0 wherever ``t`` is not NaN (NaN stays NaN)."""
    return b.builtin("fmin", b.builtin("abs", t), _literal(b, t, 0.0))


def _spread(b: Builder, t: Value, scalar: Value) -> Value:
    """``scalar`` in every element of a tensor shaped like ``t``."""
    return b.builtin("fadd", zeros_like(b, t), scalar)


def _mean_pullback(b: Builder, seed: Value, saved: Saved, wanted: Sequence[bool]) -> Cotangents:
    if not wanted[0]:
        return [None]
    t = saved[0]
    zeros = zeros_like(b, t)
    count = b.builtin("sum", b.builtin("fadd", zeros, _literal(b, t, 1.0)), type=seed.type)
    return [b.builtin("fadd", zeros, b.builtin("fdiv", seed, count))]


def _keep_tensor(b: Builder, ops: Sequence[Value], r: Value, needed: Sequence[bool]) -> list[Value | None]:
    """The tensor operand itself: its pullback spreads a scalar over a tensor of its shape (the
    differential, linear, reads nothing)."""
    return [ops[0] if needed[0] else None]


_KEEP_TENSOR = _constant(Kept(0, (0,), differential=False))


def _linear_in_tensor(reduce: str) -> Callable[[Builder, Sequence[Value | None], Saved], Value | None]:
    def differential(b: Builder, t: Sequence[Value | None], saved: Saved) -> Value | None:
        if t[0] is None:
            return None
        return b.builtin(reduce, t[0], type=element_type(t[0].type))

    return differential


RULES["sum"] = Rule(
    _KEEP_TENSOR,
    _keep_tensor,
    lambda b, seed, saved, needed: [_spread(b, saved[0], seed) if needed[0] else None],
    _linear_in_tensor("sum"),
)
RULES["mean"] = Rule(_KEEP_TENSOR, _keep_tensor, _mean_pullback, _linear_in_tensor("mean"))
RULES["scalar_from_tensor"] = Rule(
    _KEEP_TENSOR,
    _keep_tensor,
    lambda b, seed, saved, needed: [_spread(b, saved[0], seed) if needed[0] else None],
    _linear_in_tensor("scalar_from_tensor"),
)
# fill(v, d0, d1, …): linear in v; the differential fills the same shape, so it keeps the dims.
RULES["fill"] = Rule(
    keeps=lambda arity: tuple(Kept(i, (0,), pullback=False) for i in range(1, arity)),
    save=lambda b, ops, r, needed: list(ops[1:]),
    pullback=lambda b, seed, saved, needed: [
        b.builtin("sum", seed, type=element_type(seed.type)) if needed[0] else None,
        *[None] * len(saved),
    ],
    differential=lambda b, t, saved: (
        None
        if t[0] is None
        else b.builtin("fill", t[0], *saved.every(), type=TensorType(element_type(t[0].type)))
    ),
)


def fit_cotangent(
    b: Builder, cotangent: Value | Negated | None, operand_type: Type
) -> Value | Negated | None:
    """A cotangent of an elementwise builtin, summed over the tensor when its operand was a
    scalar broadcast against a tensor."""
    if cotangent is None:
        return None
    if isinstance(cotangent, Negated):
        fitted = fit_cotangent(b, cotangent.value, operand_type)
        assert isinstance(fitted, Value)
        return Negated(fitted)
    if isinstance(cotangent.type, TensorType) and not isinstance(operand_type, TensorType):
        return b.builtin("sum", cotangent, type=operand_type)
    return cotangent


ELEMENTWISE_BINARY = elementwise_builtins(2)


def may_broadcast(name: str, operand_types: Sequence[Type]) -> bool:
    """Whether builtin ``name`` combines two tensors elementwise, whose shapes may have broadcast."""
    return name in ELEMENTWISE_BINARY and sum(isinstance(t, TensorType) for t in operand_types) > 1
