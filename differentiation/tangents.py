"""Tangents and adjoints held symbolically while a derivative is emitted, as Swift's
PullbackCloner holds adjoint values: absent (zero, built only when a value is needed), a value,
or, for a tuple, an aggregate of its elements' tangents, so that taking a tuple apart and putting
it together builds no tuple of tangents."""

from __future__ import annotations

import attrs

from sil.builder import Builder
from sil.diagnostics import SILError, Span
from sil.ir import Module, Value
from sil.types import ScalarType, TupleType, Type


@attrs.define
class Aggregate:
    """The tangent of a tuple, element by element (an absent element's tangent is zero)."""

    elements: dict[int, Symbolic] = attrs.field(factory=dict)


Symbolic = Value | Aggregate


class TangentBuilder:
    """Builds tangent values from symbolic ones, with a builder positioned in a derivative."""

    def __init__(self, b: Builder, module: Module, where: Span | None) -> None:
        self.b = b
        self.module = module
        self.where = where  # for the error a tangent this cannot build yet reports

    def add(self, x: Symbolic, y: Symbolic, t: Type) -> Symbolic:
        """``x + y`` for values of type ``t``'s tangent; tuples element by element."""
        if isinstance(x, Value) and isinstance(y, Value) and not isinstance(t, TupleType):
            return self.b.builtin("fadd", x, y)
        assert isinstance(t, TupleType)
        ax, ay = self.as_aggregate(x, t), self.as_aggregate(y, t)
        merged = dict(ax.elements)
        for i, a in ay.elements.items():
            merged[i] = a if i not in merged else self.add(merged[i], a, t.elements[i])
        return Aggregate(merged)

    def as_aggregate(self, tangent: Symbolic | None, t: Type) -> Aggregate:
        """A tuple's tangent element by element; a tangent value is taken apart."""
        if tangent is None:
            return Aggregate()
        if isinstance(tangent, Aggregate):
            return tangent
        assert isinstance(t, TupleType)
        positions = self.positions(t)
        if len(positions) == 1:
            ((index, _),) = positions.items()
            return Aggregate({index: tangent})
        return Aggregate({i: self.b.tuple_extract(tangent, p) for i, p in positions.items()})

    def element(self, tangent: Symbolic | None, t: Type, index: int) -> Symbolic | None:
        """The tangent of element ``index`` of a tuple of type ``t``."""
        return self.as_aggregate(tangent, t).elements.get(index)

    def positions(self, t: TupleType) -> dict[int, int]:
        """Element index -> position in the tangent tuple (non-differentiable elements drop out)."""
        differentiable = [i for i, e in enumerate(t.elements) if self.module.tangent_type(e) is not None]
        return {i: p for p, i in enumerate(differentiable)}

    def materialize(self, tangent: Symbolic | None, t: Type) -> Value:
        """The tangent as a value of ``t``'s tangent type (zero when absent)."""
        if isinstance(tangent, Value):
            return tangent
        if isinstance(t, TupleType):
            positions = self.positions(t)
            elements = tangent.elements if tangent is not None else {}
            parts = [self.materialize(elements.get(i), t.elements[i]) for i in positions]
            if len(parts) == 1:
                return parts[0]
            tuple_type = self.module.tangent_type(t)
            assert isinstance(tuple_type, TupleType)
            return self.b.tuple(*parts, labels=tuple_type.labels)
        if isinstance(t, ScalarType):
            return self.b.float_literal(t, 0.0)
        raise SILError.at(self.where, f"cannot build a zero tangent of {t} yet")
