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

Elementwise builtins take Float/Double scalars or tensors, which broadcast (SIL-SPEC §5). A tensor
operand that may have been broadcast gets its cotangent summed back with ``unbroadcast(ct,
shape(x))``, and a tangent a rule passes through alone (``fadd``, ``fsub``) is spread to the
result's shape; both read a shape slot (``Kept.shape``) that is kept only where the operand may not
have the result's shape (``analysis.shapes``), so that ``x * x`` or a bias of the batch's own
shape costs nothing extra. A scalar combined with a tensor gets the tensor's cotangent summed.
The rules of ``sum``, ``mean``, ``broadcast_to``, ``reshape``, ``sum_axis`` and ``element`` undo
their shape change with the operand's saved shape, never by keeping the tensor itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from differentiation.tangents import AddedAt, Negated
from sil.builder import Builder
from sil.builtins import elementwise_builtins
from sil.ir import Instruction, Value
from sil.types import DOUBLE, FLOAT, ScalarType, TensorType, Type

Cotangents = list[Value | Negated | AddedAt | None]
RESULT = -1  # a ``Kept.source``: the builtin's result


@attrs.frozen
class Kept:
    """One slot of what a rule saves: operand ``source`` as it is, the result (``RESULT``), or a
    partial ``save`` computes (None; of the result's type). It is saved when an operand it
    ``serves`` is needed, and read by the pullback for their cotangents (``pullback``) and by the
    differential for their tangents (``differential``).

    A ``shape`` slot keeps ``shape(source)`` (a ``TensorShape``), made by the emitter, not by the
    rule's ``save``. A ``broadcast`` slot is read only where a served operand may not have the
    result's shape (it undoes a broadcast); an ``alone`` slot only where exactly one served
    operand's derivative is present."""

    source: int | None
    serves: tuple[int, ...]
    pullback: bool = True
    differential: bool = True
    shape: bool = False
    broadcast: bool = False
    alone: bool = False

    def read(self, operands: Sequence[bool], mode: str, reshaped: Sequence[bool] = ()) -> bool:
        """Whether the linear map of ``mode`` ("pullback" or "differential") reads this slot when
        it handles the derivatives of ``operands``; ``reshaped`` says, operand by operand,
        whether its shape may differ from the result's."""
        if not (self.pullback if mode == "pullback" else self.differential):
            return False
        served = [i for i in self.serves if operands[i]]
        if not served or (self.alone and len(served) != 1):
            return False
        return not self.broadcast or any(reshaped[i] for i in served)


def kept_value(inst: Instruction, kept: Kept) -> Value | None:
    """The value of ``inst`` a slot names: an operand, the result, or None (a computed partial)."""
    if kept.source is None:
        return None
    return inst.results[0] if kept.source == RESULT else inst.operands[kept.source]


class Saved:
    """The saved values a linear map reads, slot by slot as the rule's ``keeps`` declares them.
    A slot not saved or not read (see ``Kept.read``) holds None and cannot be read: the plan of
    the records and the rule would disagree. A shape slot is found by its source (``shape_of``):
    None where the plan found it not needed."""

    __slots__ = ("_keeps", "_values")

    def __init__(self, values: Sequence[Value | None], keeps: Sequence[Kept] = ()) -> None:
        self._values = values
        self._keeps = keeps

    def __getitem__(self, slot: int) -> Value:
        value = self._values[slot]
        assert value is not None, f"saved slot {slot} is not kept for this linear map"
        return value

    def __len__(self) -> int:
        return len(self._values)

    def every(self) -> list[Value]:
        return self.from_slot(0)

    def from_slot(self, first: int) -> list[Value]:
        """The values of the slots from ``first`` on (the dimensions, axis or indices a rule
        keeps after a shape)."""
        return [self[i] for i in range(first, len(self._values))]

    def shape_of(self, source: int) -> Value | None:
        """The saved shape of operand ``source`` (or of the result: ``RESULT``), if kept."""
        for kept, value in zip(self._keeps, self._values):
            if kept.shape and kept.source == source:
                return value
        return None


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


@attrs.frozen
class Rule:
    """How one builtin is differentiated (see the module docstring).

    ``keeps(operand_types)`` declares the slots ``save`` fills. ``save(b, operands, result,
    needed)`` returns one value a slot (None where no operand the slot serves is ``needed``, and
    for shape slots, which the emitter fills), so that a rule computes no partial nobody uses.
    ``pullback(b, seed, saved, wanted)`` returns one cotangent per operand, None but for those
    ``wanted`` (a subset of ``needed``). ``differential(b, tangents, saved)`` returns the result's
    tangent, None exactly when every operand's tangent is (zero).
    """

    keeps: Callable[[Sequence[Type]], tuple[Kept, ...]]
    save: Callable[[Builder, Sequence[Value], Value, Sequence[bool]], list[Value | None]]
    pullback: Callable[[Builder, Value, Saved, Sequence[bool]], Cotangents]
    differential: Callable[[Builder, Sequence[Value | None], Saved], Value | None]


def _constant(*keeps: Kept) -> Callable[[Sequence[Type]], tuple[Kept, ...]]:
    return lambda types: keeps


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

    return _broadcasting(
        Rule(_constant(Kept(sources[0], (0,)), Kept(sources[1], (1,))), save, pullback, differential)
    )


def _broadcasting(rule: Rule, passes_lone_tangent: bool = False) -> Rule:
    """``rule`` of an elementwise builtin of two operands, whose tensors may have been broadcast
    against each other: each tensor operand's cotangent is summed back to its shape
    (``unbroadcast(ct, shape(x))``), and where the rule passes a lone tangent through unchanged
    (``fadd``, ``fsub``: ``dr = dx``), that tangent is spread to the result's shape. The shape
    slots follow the rule's own, and are read only where shapes may differ (``Kept.broadcast``)."""

    def keeps(types: Sequence[Type]) -> tuple[Kept, ...]:
        extra = [
            Kept(i, (i,), differential=False, shape=True, broadcast=True)
            for i, t in enumerate(types)
            if isinstance(t, TensorType)
        ]
        if passes_lone_tangent and extra:  # of scalars, the tangent has the result's shape
            extra.append(Kept(RESULT, (0, 1), pullback=False, shape=True, broadcast=True, alone=True))
        return (*rule.keeps(types), *extra)

    def save(b: Builder, ops: Sequence[Value], r: Value, needed: Sequence[bool]) -> list[Value | None]:
        own = rule.save(b, ops, r, needed)
        return [*own, *[None] * (len(keeps([op.type for op in ops])) - len(own))]

    def pullback(b: Builder, seed: Value, saved: Saved, wanted: Sequence[bool]) -> Cotangents:
        cotangents = rule.pullback(b, seed, saved, wanted)
        return [_unbroadcast(b, c, saved.shape_of(i)) for i, c in enumerate(cotangents)]

    def differential(b: Builder, t: Sequence[Value | None], saved: Saved) -> Value | None:
        tangent = rule.differential(b, t, saved)
        shape = saved.shape_of(RESULT)
        if tangent is None or shape is None:
            return tangent
        if isinstance(tangent.type, TensorType):
            return b.builtin("broadcast_to", tangent, shape, type=tangent.type)
        return b.builtin("fill", tangent, shape, type=TensorType(element_type(tangent.type)))

    return Rule(keeps, save, pullback, differential)


def _unbroadcast(
    b: Builder, cotangent: Value | Negated | AddedAt | None, shape: Value | None
) -> Value | Negated | AddedAt | None:
    """``cotangent`` summed back to ``shape`` (a negation stays outside), or as it is without one."""
    if cotangent is None or shape is None:
        return cotangent
    assert not isinstance(cotangent, AddedAt), "an elementwise builtin's cotangent is not one element"
    if isinstance(cotangent, Negated):
        return Negated(b.builtin("unbroadcast", cotangent.value, shape, type=cotangent.value.type))
    return b.builtin("unbroadcast", cotangent, shape, type=cotangent.type)


def _linear(
    pullback: Callable[[Builder, Value, Sequence[bool]], Cotangents],
    differential: Callable[[Builder, Sequence[Value | None]], Value | None],
) -> Rule:
    """A builtin linear in its operands: nothing to save. ``pullback`` builds only the
    cotangents ``needed`` asks for."""
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


def _chooser_partials(first_wins: str) -> Callable[..., tuple[Value, Value]]:
    """``fmin``/``fmax``: the derivative goes to the operand chosen (to ``x`` on a tie), by the
    exact mask ``step``."""

    def partials(b: Builder, x: Value, y: Value, r: Value, needed: Sequence[bool]) -> tuple[Value, Value]:
        # fmin picks y where x - y > 0; fmax picks y where y - x > 0.
        diff = b.builtin("fsub", x, y) if first_wins == "min" else b.builtin("fsub", y, x)
        to_y = b.builtin("step", diff)
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
    "abs": _unary(lambda b, x, r: b.builtin("sign", x)),
    "relu": _unary(lambda b, x, r: b.builtin("step", x)),
    "fadd": _broadcasting(
        _linear(lambda b, s, n: [s if n[0] else None, s if n[1] else None], lambda b, t: _add(b, t[0], t[1])),
        passes_lone_tangent=True,
    ),
    "fsub": _broadcasting(
        _linear(
            lambda b, s, n: [s if n[0] else None, Negated(s) if n[1] else None],
            lambda b, t: _sub(b, t[0], t[1]),
        ),
        passes_lone_tangent=True,
    ),
    "fmul": _binary(_fmul_partials, (1, 0)),
    "fdiv": _broadcasting(
        Rule(_constant(Kept(1, (0, 1)), Kept(RESULT, (1,))), _fdiv_save, _fdiv_pullback, _fdiv_differential)
    ),
    "pow": _binary(_pow_partials),
    "fmin": _binary(_chooser_partials("min")),
    "fmax": _binary(_chooser_partials("max")),
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

# --- reductions and shape changes: undone with the operand's saved shape ---------------------------
_SHAPE_FOR_PULLBACK = Kept(0, (0,), differential=False, shape=True)


def _reshaping(
    pullback: Callable[[Builder, Value, Saved], Value | AddedAt],
    differential: Callable[[Builder, Value, Saved], Value],
    trailing: Callable[[int], tuple[Kept, ...]] = lambda arity: (),
) -> Rule:
    """A builtin linear in its tensor operand (its other operands are shapes, axes or indices,
    ``trailing`` declares which the linear maps read): the pullback is ``pullback(seed, saved)``
    from the operand's saved shape (slot 0) and those; the differential ``differential(dt,
    saved)``."""

    def keeps(types: Sequence[Type]) -> tuple[Kept, ...]:
        return (_SHAPE_FOR_PULLBACK, *trailing(len(types)))

    def save(b: Builder, ops: Sequence[Value], r: Value, needed: Sequence[bool]) -> list[Value | None]:
        return [None, *[ops[k.source] for k in trailing(len(ops)) if k.source is not None]]

    def pullback_of_operands(b: Builder, seed: Value, saved: Saved, needed: Sequence[bool]) -> Cotangents:
        return [pullback(b, seed, saved) if needed[0] else None, *[None] * (len(needed) - 1)]

    return Rule(
        keeps=keeps,
        save=save,
        pullback=pullback_of_operands,
        differential=lambda b, t, saved: None if t[0] is None else differential(b, t[0], saved),
    )


def _operands_after(first: int, pullback: bool = True) -> Callable[[int], tuple[Kept, ...]]:
    """The operands from ``first`` on (dimensions, an axis, indices), for both linear maps or the
    differential only."""
    return lambda arity: tuple(Kept(i, (0,), pullback=pullback) for i in range(first, arity))


def _tensor_of(t: Value) -> TensorType:
    return TensorType(element_type(t.type))


def _fill(b: Builder, value: Value, shape: Value) -> Value:
    return b.builtin("fill", value, shape, type=_tensor_of(value))


def _mean_pullback(b: Builder, seed: Value, saved: Saved) -> Value:
    """``seed / n`` in every element, ``n`` counted as the sum of ones of the operand's shape
    (SIL-SPEC has no builtin for a shape's size)."""
    count = b.builtin("sum", b.builtin("ones", saved[0], type=_tensor_of(seed)), type=seed.type)
    return _fill(b, b.builtin("fdiv", seed, count), saved[0])


def _reduction(name: str) -> Callable[[Builder, Value, Saved], Value]:
    return lambda b, t, saved: b.builtin(name, t, type=element_type(t.type))


RULES["sum"] = _reshaping(lambda b, seed, saved: _fill(b, seed, saved[0]), _reduction("sum"))
RULES["mean"] = _reshaping(_mean_pullback, _reduction("mean"))
RULES["scalar_from_tensor"] = _reshaping(
    lambda b, seed, saved: _fill(b, seed, saved[0]), _reduction("scalar_from_tensor")
)
RULES["broadcast_to"] = _reshaping(
    lambda b, seed, saved: b.builtin("unbroadcast", seed, saved[0], type=seed.type),
    lambda b, t, saved: b.builtin("broadcast_to", t, *saved.from_slot(1), type=t.type),
    _operands_after(1, pullback=False),
)
RULES["reshape"] = _reshaping(
    lambda b, seed, saved: b.builtin("reshape", seed, saved[0], type=seed.type),
    lambda b, t, saved: b.builtin("reshape", t, *saved.from_slot(1), type=t.type),
    _operands_after(1, pullback=False),
)
RULES["expand_dims"] = _reshaping(
    lambda b, seed, saved: b.builtin("reshape", seed, saved[0], type=seed.type),
    lambda b, t, saved: b.builtin("expand_dims", t, saved[1], type=t.type),
    _operands_after(1, pullback=False),
)
RULES["sum_axis"] = _reshaping(  # the seed lacks the axis: put it back, then spread along it
    lambda b, seed, saved: b.builtin(
        "broadcast_to", b.builtin("expand_dims", seed, saved[1], type=seed.type), saved[0], type=seed.type
    ),
    lambda b, t, saved: b.builtin("sum_axis", t, saved[1], type=t.type),
    _operands_after(1),
)
RULES["unbroadcast"] = _reshaping(
    lambda b, seed, saved: b.builtin("broadcast_to", seed, saved[0], type=seed.type),
    lambda b, t, saved: b.builtin("unbroadcast", t, saved[1], type=t.type),
    _operands_after(1, pullback=False),
)
RULES["element"] = _reshaping(  # zero but at the element read: see ``AddedAt``
    lambda b, seed, saved: AddedAt(seed, tuple(saved.from_slot(1)), saved[0]),
    lambda b, t, saved: b.builtin("element", t, *saved.from_slot(1), type=element_type(t.type)),
    _operands_after(1),
)
# fill(v, d0, d1, …): linear in v; the differential fills the same shape, so it keeps the dims.
RULES["fill"] = Rule(
    keeps=lambda types: tuple(Kept(i, (0,), pullback=False) for i in range(1, len(types))),
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


def _with_element_save(
    b: Builder, ops: Sequence[Value], r: Value, needed: Sequence[bool]
) -> list[Value | None]:
    return [None, *ops[2:]]


def _with_element_pullback(b: Builder, seed: Value, saved: Saved, wanted: Sequence[bool]) -> Cotangents:
    """The seed without the element replaced (for ``t``), and that element (for ``v``)."""
    indices = saved.from_slot(1)
    dt = dv = None
    if wanted[0]:
        zero = _literal(b, seed, 0.0)
        dt = b.builtin("with_element", seed, zero, *indices, type=seed.type)
    if wanted[1]:
        dv = b.builtin("element", seed, *indices, type=element_type(seed.type))
    return [dt, dv, *[None] * len(indices)]


def _with_element_differential(b: Builder, t: Sequence[Value | None], saved: Saved) -> Value | None:
    """``with_element(dt, dv, i…)``, a zero standing in for the tangent not present."""
    if t[0] is None and t[1] is None:
        return None
    indices = saved.from_slot(1)
    dv = t[1]
    dt: Value
    if t[0] is None:
        assert dv is not None
        dt = b.builtin("zeros", saved[0], type=_tensor_of(dv))
    else:
        dt = t[0]
    if dv is None:
        dv = _literal(b, dt, 0.0)
    return b.builtin("with_element", dt, dv, *indices, type=dt.type)


RULES["with_element"] = Rule(
    keeps=lambda types: (
        Kept(0, (1,), pullback=False, shape=True),
        *[Kept(i, (0, 1)) for i in range(2, len(types))],
    ),
    save=_with_element_save,
    pullback=_with_element_pullback,
    differential=_with_element_differential,
)


def _select_pullback(b: Builder, seed: Value, saved: Saved, wanted: Sequence[bool]) -> Cotangents:
    """The seed to the operand chosen, zero to the other."""
    zero = _literal(b, seed, 0.0)
    da = b.builtin("select", saved[0], seed, zero, type=seed.type) if wanted[1] else None
    db = b.builtin("select", saved[0], zero, seed, type=seed.type) if wanted[2] else None
    return [None, da, db]


def _select_differential(b: Builder, t: Sequence[Value | None], saved: Saved) -> Value | None:
    """``select(c, da, db)``, a zero standing in for the tangent not present."""
    present = [v for v in t[1:] if v is not None]
    if not present:
        return None
    zero = _literal(b, present[0], 0.0) if len(present) == 1 else None
    da, db = (v if v is not None else zero for v in t[1:])
    assert da is not None and db is not None
    return b.builtin("select", saved[0], da, db, type=present[0].type)


RULES["select"] = Rule(
    keeps=_constant(Kept(0, (1, 2))),
    save=lambda b, ops, r, needed: [ops[0]],
    pullback=_select_pullback,
    differential=_select_differential,
)


def fit_cotangent(
    b: Builder, cotangent: Value | Negated | AddedAt | None, operand_type: Type
) -> Value | Negated | AddedAt | None:
    """A cotangent of an elementwise builtin, summed over the tensor when its operand was a
    scalar broadcast against a tensor."""
    if cotangent is None or isinstance(cotangent, AddedAt):
        return cotangent
    if isinstance(cotangent, Negated):
        fitted = fit_cotangent(b, cotangent.value, operand_type)
        assert isinstance(fitted, Value)
        return Negated(fitted)
    if isinstance(cotangent.type, TensorType) and not isinstance(operand_type, TensorType):
        return b.builtin("sum", cotangent, type=operand_type)
    return cotangent


ELEMENTWISE_BINARY = elementwise_builtins(2)
