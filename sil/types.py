"""SIL types (SIL-SPEC §2): immutable values, compared and hashed structurally.

The scalar types are interned (``FLOAT`` is the one ``Float``), and every type caches its hash and
its printed form, because the parser, verifier and printer touch types on every instruction.
"""

from __future__ import annotations

from typing import Literal

import attrs

Convention = Literal["thin", "callee_guaranteed"]


@attrs.frozen(cache_hash=True)
class Type:
    """Base class of every SIL type. ``text`` is the printed form, computed once."""

    text: str = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "text", self._render())

    def __str__(self) -> str:
        return self.text

    def _render(self) -> str:
        raise NotImplementedError(type(self).__name__)

    @property
    def is_float(self) -> bool:
        """A floating-point scalar (``Float`` or ``Double``)."""
        return False


@attrs.frozen(cache_hash=True)
class ScalarType(Type):
    """One of the builtin scalars: ``Float``, ``Double``, ``Int``, ``Bool``."""

    name: str

    def _render(self) -> str:
        return self.name

    @property
    def is_float(self) -> bool:
        return self.name in ("Float", "Double")


FLOAT = ScalarType("Float")
DOUBLE = ScalarType("Double")
INT = ScalarType("Int")
BOOL = ScalarType("Bool")

SCALARS: dict[str, ScalarType] = {
    "Float": FLOAT,
    "Double": DOUBLE,
    "Int": INT,
    "Bool": BOOL,
    "Builtin.FPIEEE32": FLOAT,
    "Builtin.FPIEEE64": DOUBLE,
    "Builtin.Int64": INT,
    "Builtin.Int1": BOOL,
}


@attrs.frozen(cache_hash=True)
class TensorType(Type):
    """An n-dimensional array of ``Float`` or ``Double``; the shape is known at run time only."""

    element: ScalarType

    def _render(self) -> str:
        return f"Tensor<{self.element}>"


@attrs.frozen(cache_hash=True)
class ShapeType(Type):
    """``TensorShape``: a tensor's shape as a run-time value, a list of ``Int`` dimensions
    (Swift for TensorFlow's ``TensorShape``). Not differentiable: it has no tangent."""

    def _render(self) -> str:
        return "TensorShape"


TENSOR_SHAPE = ShapeType()

NAMED_TYPES: dict[str, Type] = {**SCALARS, "TensorShape": TENSOR_SHAPE}
"""Every builtin type spelled by a name alone (``Tensor`` needs its element: ``Tensor<Float>``)."""


def names_builtin_type(name: str) -> bool:
    """Whether ``name`` is taken by a builtin type, so that no struct or enum may be declared so."""
    return name in NAMED_TYPES or name == "Tensor"


@attrs.frozen(cache_hash=True)
class TupleType(Type):
    """A tuple; ``labels`` holds one optional label per element (all ``None`` when unlabeled)."""

    elements: tuple[Type, ...]
    labels: tuple[str | None, ...] = attrs.field()

    @labels.default
    def _no_labels(self) -> tuple[str | None, ...]:
        return (None,) * len(self.elements)

    def _render(self) -> str:
        parts = [
            f"{label}: {element}" if label is not None else str(element)
            for label, element in zip(self.labels, self.elements)
        ]
        return f"({', '.join(parts)})"


VOID = TupleType(())


@attrs.frozen(cache_hash=True)
class NominalType(Type):
    """A declared struct or enum, named; ``S.TangentVector`` names the tangent of struct ``S``."""

    name: str

    def _render(self) -> str:
        return self.name


@attrs.frozen(cache_hash=True)
class FunctionType(Type):
    """A function type: thin (no context) or a ``@callee_guaranteed`` closure.

    ``differentiable`` is set (to ``"reverse"``) for an original bundled with its derivatives;
    ``no_derivative`` marks parameters written ``@noDerivative``.
    """

    params: tuple[Type, ...]
    result: Type
    convention: Convention = "thin"
    differentiable: str | None = None
    no_derivative: tuple[bool, ...] = attrs.field()

    @no_derivative.default
    def _all_differentiable(self) -> tuple[bool, ...]:
        return (False,) * len(self.params)

    def _render(self) -> str:
        params = ", ".join(
            f"@noDerivative {param}" if nd else str(param)
            for param, nd in zip(self.params, self.no_derivative)
        )
        prefix = f"@differentiable({self.differentiable}) " if self.differentiable else ""
        conv = "@convention(thin)" if self.convention == "thin" else "@callee_guaranteed"
        return f"{prefix}{conv} ({params}) -> {self.result}"

    @property
    def results(self) -> tuple[Type, ...]:
        """The result as a sequence: a tuple's elements, else the result alone."""
        if isinstance(self.result, TupleType):
            return self.result.elements
        return (self.result,)

    def plain(self) -> FunctionType:
        """This type without the ``@differentiable`` bundle and ``@noDerivative`` markers."""
        return FunctionType(self.params, self.result, self.convention)


def tuple_or_single(elements: tuple[Type, ...]) -> Type:
    """A tuple of ``elements``, or the element itself when there is exactly one (SIL-SPEC §6)."""
    if len(elements) == 1:
        return elements[0]
    return TupleType(elements)
