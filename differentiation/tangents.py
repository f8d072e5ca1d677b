"""Tangents and adjoints held symbolically while a derivative is emitted, as Swift's
PullbackCloner holds adjoint values: absent (zero, built only when a value is needed), a value,
or, for a tuple or a struct, an aggregate of its elements' tangents, so that taking one apart and
putting it together builds no tangent tuple or ``S.TangentVector``.

``TangentBuilder`` builds tangent values from symbolic ones. ``Dependences`` does the same
operations without building anything: its leaves are ``Node``s, each standing for a value the
builder would build and knowing the nodes it is computed from, so that the planner of the records
(``linear_map_info.py``) can tell which of them a linear map keeps (what dead-code elimination
would leave) before any of its code is emitted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from sil.builder import Builder
from sil.derivative_types import several_results
from sil.diagnostics import SILError, Span
from sil.instructions import StructExtractInst, TupleExtractInst
from sil.ir import ZERO_CASE, Function, Instruction, Module, Value
from sil.types import TENSOR_SHAPE, FunctionType, NominalType, ScalarType, TensorType, TupleType, Type

if TYPE_CHECKING:
    from differentiation.statistics import ZeroCounts


@attrs.define
class Aggregate:
    """The tangent of a tuple or struct, element (field) by element, by index in the original
    type (an absent element's tangent is zero)."""

    elements: dict[int, Symbolic] = attrs.field(factory=dict)


@attrs.frozen
class Negated:
    """The negation of a scalar's or a tensor's tangent, kept symbolic so that adding it to another
    is one ``fsub`` (``fsub``'s second operand, ``fneg`` and a divisor get one)."""

    value: Value


@attrs.frozen
class AddedAt:
    """A tensor's adjoint that is zero but at one element: ``value`` at ``indices``, in a tensor of
    ``shape`` (the pullback of ``element``, Swift's ``zeroTangentVector`` updated at the read
    location). Kept symbolic so that adding it to an adjoint updates that one element
    (``with_element``), which the interpreter does in place where the adjoint's buffer is not
    shared: a loop that reads each element of a tensor once has an O(n) pullback, not O(n^2)."""

    value: Value
    indices: tuple[Value, ...]
    shape: Value


Symbolic = Value | Negated | Aggregate | AddedAt
# The zeros made for the arguments of one edge, shared: one per type, and one per shape for tensors.
Zeros = dict[Type | Value, Value]


SYNTHESIZED = "AD__"


class TangentBuilder:
    """Builds tangent values from symbolic ones, with a builder positioned in a derivative."""

    def __init__(
        self, b: Builder, module: Module, where: Span | None, zeros: ZeroCounts | None = None
    ) -> None:
        self.b = b
        self.module = module
        self.where = where  # for the error a tangent this cannot build yet reports
        self.zeros = zeros  # counts the zeros built, for --ad-stats (None: not counted)

    def add(self, x: Symbolic, y: Symbolic, t: Type) -> Symbolic:
        """``x + y`` for values of type ``t``'s tangent; tuples and structs element by element,
        enums by a helper that adds the payloads of the one case (``enum_tangent_add``)."""
        if is_enum(self.module, t):
            helper = enum_tangent_add(self.module, t, self.where)
            return self.b.apply(self.b.function_ref(helper), self.materialize(x, t), self.materialize(y, t))
        if isinstance(x, AddedAt) or isinstance(y, AddedAt):
            return self._add_one_element(x, y, t)
        if not isinstance(x, Aggregate) and not isinstance(y, Aggregate) and not self._is_aggregate(t):
            if isinstance(x, Negated) and isinstance(y, Negated):
                return Negated(self.b.builtin("fadd", x.value, y.value))
            if isinstance(y, Negated):
                assert isinstance(x, Value)
                return self.b.builtin("fsub", x, y.value)
            if isinstance(x, Negated):
                return self.b.builtin("fsub", y, x.value)
            return self.b.builtin("fadd", x, y)
        ax, ay = self.as_aggregate(x, t), self.as_aggregate(y, t)
        merged = dict(ax.elements)
        for i, a in ay.elements.items():
            merged[i] = a if i not in merged else self.add(merged[i], a, self._element_type(t, i))
        return Aggregate(merged)

    def _add_one_element(self, x: Symbolic, y: Symbolic, t: Type) -> Symbolic:
        """``x + y`` where one is ``AddedAt``: that element of the other updated,
        ``with_element(x, element(x, i…) + v, i…)``, the other made a value first."""
        at, other = (x, y) if isinstance(x, AddedAt) else (y, x)
        assert isinstance(at, AddedAt)
        if not isinstance(other, Value):
            other = self.materialize(other, t)
        b, indices = self.b, at.indices
        old = b.builtin("element", other, *indices, type=at.value.type)
        return b.builtin("with_element", other, b.builtin("fadd", old, at.value), *indices, type=other.type)

    def _is_aggregate(self, t: Type) -> bool:
        return is_aggregate(self.module, t)

    def _element_type(self, t: Type, index: int) -> Type:
        return element_type(self.module, t, index)

    def as_aggregate(self, tangent: Symbolic | None, t: Type) -> Aggregate:
        """A tuple's or struct's tangent element by element; a tangent value is taken apart."""
        if tangent is None:
            return Aggregate()
        if isinstance(tangent, Aggregate):
            return tangent
        assert isinstance(tangent, Value), "a negated or one-element tangent is a scalar's or a tensor's"
        positions = self.positions(t)
        if isinstance(t, TupleType):
            if len(positions) == 1:
                ((index, _),) = positions.items()
                return Aggregate({index: tangent})
            return Aggregate({i: self.b.tuple_extract(tangent, int(p)) for i, p in positions.items()})
        return Aggregate({i: self.b.struct_extract(tangent, str(name)) for i, name in positions.items()})

    def element(self, tangent: Symbolic | None, t: Type, index: int) -> Symbolic | None:
        """The tangent of element (or field) ``index`` of a tuple (or struct) of type ``t``."""
        return self.as_aggregate(tangent, t).elements.get(index)

    def elements_of(self, tangent: Symbolic | None, t: Type) -> dict[int, Symbolic]:
        return self.as_aggregate(tangent, t).elements

    def aggregate(self, elements: dict[int, Symbolic]) -> Symbolic:
        return Aggregate(elements)

    def positions(self, t: Type) -> dict[int, int | str]:
        return positions(self.module, t)

    def of_results(self, value: Value, t: Type, sources: tuple[int, ...]) -> Symbolic:
        """The tangent of a value of type ``t`` (a function's result) when ``value`` is the tangent
        of its results ``sources`` (SIL-SPEC §3: one result's tangent, or a tuple of theirs); the
        other results' tangents are zero."""
        if not several_results(t) or tuple(self.positions(t)) == sources:
            return value
        if len(sources) == 1:
            return Aggregate({sources[0]: value})
        return Aggregate({i: self.b.tuple_extract(value, j) for j, i in enumerate(sources)})

    def results(
        self,
        tangent: Symbolic | None,
        t: Type,
        sources: tuple[int, ...],
        shapes: Sequence[Value] | None = None,
    ) -> Value:
        """The tangent of the results ``sources`` of a value of type ``t`` whose tangent is
        ``tangent``, as one value (the inverse of ``of_results``; zeros where absent, a tensor's
        made to its shape among ``shapes``, as for ``materialize``)."""
        if not several_results(t) or tuple(self.positions(t)) == sources:
            return self.materialize(tangent, t, shapes)
        elements = self.as_aggregate(tangent, t).elements
        shaped = dict(self._element_shapes(t, shapes))
        parts = [self.materialize(elements.get(i), t.elements[i], shaped[i]) for i in sources]
        if len(parts) == 1:
            return parts[0]
        return self.b.tuple(*parts, labels=[t.labels[i] for i in sources])

    def materialize_sharing_zeros(self, tangent: Symbolic | None, t: Type, zeros: Zeros) -> Value:
        """``materialize``, but an absent tangent is the zero of ``t`` in ``zeros``, made there once
        (one zero per type for all the arguments of a branch)."""
        if tangent is not None:
            return self.materialize(tangent, t)
        if t not in zeros:
            zeros[t] = self.materialize(None, t)
        return zeros[t]

    def materialize(self, tangent: Symbolic | None, t: Type, shapes: Sequence[Value] | None = None) -> Value:
        """The tangent as a value of ``t``'s tangent type (zero when absent). A tensor's zero, or
        one in a tuple or struct, is made to its shape: ``shapes`` are those of ``t``'s tensor
        leaves (``tensor_leaves``), in order, read where the record keeps them."""
        if isinstance(tangent, Value):
            return tangent
        if isinstance(tangent, Negated):
            return self.b.builtin("fneg", tangent.value)
        if isinstance(tangent, AddedAt):
            if self.zeros is not None:
                self.zeros.materialized += 1
            zero = self.b.builtin("zeros", tangent.shape, type=t)
            return self.b.builtin("with_element", zero, tangent.value, *tangent.indices, type=t)
        elements = tangent.elements if tangent is not None else {}
        if self._is_aggregate(t):
            parts = [
                self.materialize(elements.get(i), self._element_type(t, i), leaf_shapes)
                for i, leaf_shapes in self._element_shapes(t, shapes)
            ]
            tangent_type = self.module.tangent_type(t)
            if isinstance(t, TupleType):
                if len(parts) == 1:
                    return parts[0]
                assert isinstance(tangent_type, TupleType)
                return self.b.tuple(*parts, labels=tangent_type.labels)
            assert isinstance(tangent_type, NominalType)
            return self.b.struct(tangent_type, *parts)
        if is_enum(self.module, t):
            tangent_enum = self.module.tangent_type(t)
            assert isinstance(tangent_enum, NominalType)
            return self.b.enum(tangent_enum, ZERO_CASE)
        if isinstance(t, TensorType) and shapes:
            if self.zeros is not None:
                self.zeros.materialized += 1
            return self.b.builtin("zeros", shapes[0], type=t)
        if isinstance(t, ScalarType):
            if self.zeros is not None:
                self.zeros.materialized += 1
            return self.b.float_literal(t, 0.0)
        raise SILError.at(self.where, f"cannot build a zero tangent of {t} yet")

    def enum_case(
        self,
        t: Type,
        case: str,
        payload: Symbolic | None,
        payload_type: Type,
        shapes: Sequence[Value] | None = None,
    ) -> Symbolic | None:
        """The tangent of ``enum $t, #case`` of a payload whose tangent is ``payload`` (the
        tensors it misses made to ``shapes``, as for ``materialize``)."""
        if payload is None or self.module.tangent_type(payload_type) is None:
            return None
        tangent_enum = self.module.tangent_type(t)
        assert isinstance(tangent_enum, NominalType)
        return self.b.enum(tangent_enum, case, self.materialize(payload, payload_type, shapes))

    def enum_payload(
        self,
        tangent: Symbolic | None,
        t: Type,
        case: str,
        payload_type: Type,
        shapes: Sequence[Value] | None = None,
    ) -> Symbolic | None:
        """The tangent of the payload of case ``case`` of an enum whose tangent is ``tangent``:
        the tangent's payload, or zero when it is ``zero`` (``enum_tangent_payload``), the
        tensors it holds made to ``shapes`` (the payload's, ``tensor_leaves``)."""
        if tangent is None or self.module.tangent_type(payload_type) is None:
            return None
        if shapes is None and tensor_leaves(self.module, payload_type):
            raise SILError.at(
                self.where, f"cannot build a zero tangent of {payload_type} yet: no shapes kept"
            )
        helper = enum_tangent_payload(self.module, t, case, payload_type, self.where)
        return self.b.apply(self.b.function_ref(helper), self.materialize(tangent, t), *(shapes or ()))

    def _element_shapes(
        self, t: Type, shapes: Sequence[Value] | None
    ) -> list[tuple[int, Sequence[Value] | None]]:
        """Each differentiable element of ``t`` with its tensor leaves' shapes out of ``shapes``."""
        out: list[tuple[int, Sequence[Value] | None]] = []
        at = 0
        for i in self.positions(t):
            count = tensor_leaves(self.module, self._element_type(t, i))
            out.append((i, None if shapes is None else shapes[at : at + count]))
            at += count
        return out


def is_enum(module: Module, t: Type) -> bool:
    return isinstance(t, NominalType) and module.enum(t.name) is not None


def enum_tangent_payload(
    module: Module, t: Type, case: str, payload_type: Type, where: Span | None
) -> Function:
    """``@AD__E__case__tangent``: the payload of a tangent of enum ``E`` (``t``) at ``case``, or
    the payload's zero where the tangent is ``zero``, the tensors it holds made to the shapes its
    other parameters give (one a tensor, ``tensor_leaves``). Made once a module."""
    tangent_enum, payload_tangent = module.tangent_type(t), module.tangent_type(payload_type)
    assert tangent_enum is not None and payload_tangent is not None
    name = f"{SYNTHESIZED}{t}__{case}__tangent"
    found = module.functions.get(name)
    if found is not None:
        return found
    shape_params = (TENSOR_SHAPE,) * tensor_leaves(module, payload_type)
    fn = module.add_function(Function(name, FunctionType((tangent_enum, *shape_params), payload_tangent)))
    entry, taken, other = fn.add_block("bb0"), fn.add_block("bb1"), fn.add_block("bb2")
    tangent = entry.add_argument(tangent_enum, "tangent")
    shapes = [entry.add_argument(t, f"shape_{i}") for i, t in enumerate(shape_params)]
    Builder.at_end(entry, module).switch_enum(tangent, [(case, taken)], other)
    Builder.at_end(taken, module).return_(taken.add_argument(payload_tangent, "payload"))
    b = Builder.at_end(other, module)
    b.return_(TangentBuilder(b, module, where).materialize(None, payload_type, shapes))
    return fn


def enum_tangent_add(module: Module, t: Type, where: Span | None) -> Function:
    """``@AD__E__tangent_add``: the sum of two tangents of enum ``E`` (``t``): one where the
    other is ``zero`` (or a case without a payload tangent), else the case with the payloads
    added; two different cases cannot be added (a derivative never makes them: ``unreachable``)."""
    tangent_enum = module.tangent_type(t)
    decl = module.enum(str(t))
    assert isinstance(tangent_enum, NominalType) and decl is not None
    name = f"{SYNTHESIZED}{t}__tangent_add"
    found = module.functions.get(name)
    if found is not None:
        return found
    fn = module.add_function(Function(name, FunctionType((tangent_enum, tangent_enum), tangent_enum)))
    entry, give_y, give_x, mismatch = (fn.add_block(n) for n in ("bb0", "y", "x", "mismatch"))
    x, y = entry.add_argument(tangent_enum, "x"), entry.add_argument(tangent_enum, "y")
    Builder.at_end(give_y, module).return_(y)
    Builder.at_end(give_x, module).return_(x)
    Builder.at_end(mismatch, module).unreachable()
    cases = []
    for c in decl.cases:
        if c.payload is None or module.tangent_type(c.payload) is None:
            continue
        payload_tangent = module.tangent_type(c.payload)
        assert payload_tangent is not None
        on_x, both = fn.add_block(f"{c.name}_x"), fn.add_block(f"{c.name}_both")
        px = on_x.add_argument(payload_tangent, "px")
        Builder.at_end(on_x, module).switch_enum(y, [(c.name, both), (ZERO_CASE, give_x)], mismatch)
        py = both.add_argument(payload_tangent, "py")
        b = Builder.at_end(both, module)
        total = TangentBuilder(b, module, where).add(px, py, c.payload)
        b.return_(
            b.enum(tangent_enum, c.name, TangentBuilder(b, module, where).materialize(total, c.payload))
        )
        cases.append((c.name, on_x))
    Builder.at_end(entry, module).switch_enum(x, cases, give_y)
    return fn


def tensor_leaves(module: Module, t: Type) -> int:
    """How many tensors a tangent of ``t`` holds: the tensors among its differentiable elements
    and fields, at any depth; what a zero of ``t`` needs the shapes of."""
    if isinstance(t, TensorType):
        return 1
    if is_aggregate(module, t) and module.tangent_type(t) is not None:
        return sum(tensor_leaves(module, element_type(module, t, i)) for i in positions(module, t))
    return 0


def misses_a_tensor(module: Module, tangent: Symbolic | Shape | None, t: Type) -> bool:
    """Whether materializing ``tangent`` (a ``TangentBuilder``'s or a ``Dependences``' symbolic
    tangent) makes the zero of a tensor: one absent, whole or in a tuple or struct."""
    if tensor_leaves(module, t) == 0:
        return False
    if tangent is None:
        return True
    elements = (
        tangent.elements if isinstance(tangent, Aggregate) else tangent if isinstance(tangent, dict) else None
    )
    if elements is None:
        return False
    return any(
        misses_a_tensor(module, elements.get(i), element_type(module, t, i)) for i in positions(module, t)
    )


def tensor_leaf_values(b: Builder, module: Module, v: Value) -> list[Value]:
    """The tensors a tangent of ``v`` would hold (``tensor_leaves``), taken out of ``v``."""
    t = v.type
    if isinstance(t, TensorType):
        return [v]
    if tensor_leaves(module, t) == 0:
        return []
    out = []
    for i in positions(module, t):
        element = (
            b.tuple_extract(v, i) if isinstance(t, TupleType) else b.struct_extract(v, _field(module, t, i))
        )
        out.extend(tensor_leaf_values(b, module, element))
    return out


def leaf_shapes(b: Builder, kept: Value) -> list[Value]:
    """The shapes a record keeps for a zero (``LinearMapInfo.leaf_shapes_type``), one by one."""
    return list(b.destructure_tuple(kept)) if isinstance(kept.type, TupleType) else [kept]


def _field(module: Module, t: Type, index: int) -> str:
    decl = module.struct(str(t))
    assert decl is not None
    return decl.fields[index].name


def is_aggregate(module: Module, t: Type) -> bool:
    """Whether values of ``t`` have elements (a tuple) or fields (a struct)."""
    return isinstance(t, TupleType) or module.struct(str(t)) is not None


def element_type(module: Module, t: Type, index: int) -> Type:
    """The type of element (or field) ``index`` of a tuple (or struct) type ``t``."""
    if isinstance(t, TupleType):
        return t.elements[index]
    decl = module.struct(str(t))
    assert decl is not None
    return decl.fields[index].type


def positions(module: Module, t: Type) -> dict[int, int | str]:
    """Element index -> its place in the tangent: the position in a tangent tuple (elements
    without a tangent drop out), or the field name in ``S.TangentVector`` (``@noDerivative``
    fields drop out)."""
    if isinstance(t, TupleType):
        differentiable = [i for i, e in enumerate(t.elements) if module.tangent_type(e) is not None]
        return {i: p for p, i in enumerate(differentiable)}
    decl = module.struct(str(t))
    tangent = module.tangent_type(t)
    tangent_decl = module.struct(str(tangent)) if tangent is not None else None
    assert decl is not None and tangent_decl is not None, f"{t} is not a differentiable struct"
    kept = {f.name for f in tangent_decl.fields}
    return {i: f.name for i, f in enumerate(decl.fields) if f.name in kept and not f.no_derivative}


class Node:
    """A value a linear map would build, for ``Dependences``: ``token`` names what it stands for
    where the planner asks (a builtin's tangent, an operand's cotangent; None otherwise), and
    ``inputs`` are the nodes it is computed from."""

    __slots__ = ("inputs", "token")

    def __init__(self, token: object = None, inputs: tuple[Node, ...] = ()) -> None:
        self.token = token
        self.inputs = inputs


Shape = Node | dict[int, "Shape"]
"""A symbolic tangent seen by ``Dependences``: a node for a value (negated or not), a dict for an
aggregate (``Aggregate.elements``)."""


class Dependences:
    """``TangentBuilder``'s operations on ``Shape``s: what each built value would be computed from.

    ``reached(sinks)`` then gives the tokens of the nodes the values in ``sinks`` (those a
    terminator or a call uses) are computed from: what survives dead-code elimination."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self._positions: dict[Type, tuple[int, ...]] = {}
        self._aggregate: dict[Type, bool] = {}

    def positions(self, t: Type) -> tuple[int, ...]:
        found = self._positions.get(t)
        if found is None:
            found = self._positions[t] = tuple(positions(self.module, t))
        return found

    def add(self, x: Shape, y: Shape, t: Type) -> Shape:
        if isinstance(x, Node) and isinstance(y, Node):
            aggregate = self._aggregate.get(t)
            if aggregate is None:
                aggregate = self._aggregate[t] = is_aggregate(self.module, t)
            if not aggregate:
                return Node(None, (x, y))
        merged = dict(self.elements_of(x, t))
        for i, a in self.elements_of(y, t).items():
            merged[i] = a if i not in merged else self.add(merged[i], a, element_type(self.module, t, i))
        return merged

    def elements_of(self, tangent: Shape | None, t: Type) -> dict[int, Shape]:
        if tangent is None:
            return {}
        if isinstance(tangent, dict):
            return tangent
        return dict.fromkeys(self.positions(t), tangent)  # elements taken out of the value

    def element(self, tangent: Shape | None, t: Type, index: int) -> Shape | None:
        return self.elements_of(tangent, t).get(index)

    def aggregate(self, elements: dict[int, Shape]) -> Shape:
        return elements

    def enum_case(
        self,
        t: Type,
        case: str,
        payload: Shape | None,
        payload_type: Type,
        shapes: Sequence[Value] | None = None,
    ) -> Shape | None:
        return self._through_enum(payload, payload_type)

    def enum_payload(
        self,
        tangent: Shape | None,
        t: Type,
        case: str,
        payload_type: Type,
        shapes: Sequence[Value] | None = None,
    ) -> Shape | None:
        return self._through_enum(tangent, payload_type)

    def _through_enum(self, source: Shape | None, payload_type: Type) -> Shape | None:
        """A value computed from ``source`` into or out of an enum, where its payload (of type
        ``payload_type``) carries a derivative."""
        if source is None or self.module.tangent_type(payload_type) is None:
            return None
        return Node(None, tuple(self.leaves(source)))

    def of_results(self, node: Node, t: Type, sources: tuple[int, ...]) -> Shape:
        if not several_results(t) or self.positions(t) == sources:
            return node
        return dict.fromkeys(sources, node)

    def results(self, shape: Shape | None, t: Type, sources: tuple[int, ...]) -> Node | None:
        if not several_results(t) or self.positions(t) == sources:
            return self.materialize(shape, t)
        elements = self.elements_of(shape, t)
        return self._combine([self.materialize(elements.get(i), t.elements[i]) for i in sources])

    def materialize(self, shape: Shape | None, t: Type) -> Node | None:
        """The node of the value ``shape`` becomes (None: a zero, computed from nothing)."""
        if shape is None or isinstance(shape, Node):
            return shape
        return self._combine(
            [self.materialize(shape.get(i), element_type(self.module, t, i)) for i in self.positions(t)]
        )

    @staticmethod
    def leaves(shape: Shape) -> list[Node]:
        """The nodes a symbolic tangent is made of."""
        if isinstance(shape, Node):
            return [shape]
        return [node for element in shape.values() for node in Dependences.leaves(element)]

    @staticmethod
    def _combine(parts: list[Node | None]) -> Node | None:
        inputs = tuple(p for p in parts if p is not None)
        return Node(None, inputs) if inputs else None

    @staticmethod
    def reached(sinks: list[Node]) -> set[object]:
        """The tokens of the nodes ``sinks`` are computed from (themselves included)."""
        seen: set[Node] = set()
        stack = list(sinks)
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(node.inputs)
        return {node.token for node in seen if node.token is not None}


def element_index(module: Module, inst: Instruction) -> int:
    """The index of the element a ``tuple_extract`` takes, or of the field a ``struct_extract``
    takes in its struct's declaration."""
    if isinstance(inst, TupleExtractInst):
        return inst.index
    assert isinstance(inst, StructExtractInst)
    decl = module.struct(str(inst.operands[0].type))
    assert decl is not None
    return [f.name for f in decl.fields].index(inst.field)
