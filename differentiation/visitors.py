"""Dispatch on the class of an instruction, for the emitters and the planner of differentiation:
a class's ``visit_<Instruction class>`` methods, looked up in a table built once per class, so
that each instruction's derivative is one method documented with its original and its tangent or
adjoint (as Swift's ``PullbackCloner::visitStructExtractInst`` is).

Tuples and structs move tangents and adjoints the same way, and the same way whether code is
emitted (``TangentBuilder``) or planned (``Dependences``): ``TangentPusher`` and ``AdjointPuller``
hold those visits once, for the differential and the pullback and for their plans
(``linear_map_info.py``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast

from differentiation.tangents import element_index, misses_a_tensor
from sil import instructions
from sil.derivative_types import several_results
from sil.diagnostics import SILError
from sil.instructions import (
    DestructureStructInst,
    DestructureTupleInst,
    EnumInst,
    ReturnInst,
    StructExtractInst,
    StructInst,
    TupleExtractInst,
    TupleInst,
)
from sil.ir import Instruction, Module, Result, Value
from sil.types import Type

PREFIX = "visit_"


class InstructionVisitor:
    """A base class whose subclasses' ``visit_XInst(self, inst)`` methods handle the instructions
    of class ``XInst`` (``sil.instructions``); ``visit`` calls the one for an instruction and
    reports the instructions no method handles as not differentiable yet."""

    _visits: ClassVar[dict[type[Instruction], Callable[[Any, Any], None]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[type[Instruction], Callable[[Any, Any], None]] = {}
        for name in dir(cls):
            if name.startswith(PREFIX):
                table[getattr(instructions, name[len(PREFIX) :])] = getattr(cls, name)
        cls._visits = table

    def visit(self, inst: Instruction) -> None:
        method = self._visits.get(type(inst))
        if method is None:
            raise SILError.at(inst.span, f"cannot differentiate '{inst.opname}' yet")
        method(self, inst)


S = TypeVar("S")


class TangentAlgebra(Protocol[S]):
    """What the visits of tuples and structs need of symbolic tangents ``S``: ``TangentBuilder``
    builds them as code, ``Dependences`` only follows what they are computed from."""

    def add(self, x: S, y: S, t: Type) -> S: ...

    def elements_of(self, tangent: S | None, t: Type) -> dict[int, S]: ...

    def element(self, tangent: S | None, t: Type, index: int) -> S | None: ...

    def aggregate(self, elements: dict[int, S]) -> S: ...

    def enum_case(
        self, t: Type, case: str, payload: S | None, payload_type: Type, shapes: Sequence[Value] | None = None
    ) -> S | None: ...

    def enum_payload(
        self, tangent: S | None, t: Type, case: str, payload_type: Type, shapes: Sequence[Value] | None = None
    ) -> S | None: ...


class TangentPusher(InstructionVisitor, Generic[S]):
    """The tangents of tuples and structs, pushed forwards (by the differential, and by its plan):
    ``tangents`` maps each value to its symbolic tangent, built with ``t``."""

    module: Module
    tangents: dict[Value, S]
    t: TangentAlgebra[S]

    def returned(self, ret: ReturnInst, result_type: Type, sources: tuple[int, ...]) -> S | None:
        """The tangent ``ret`` returns: of its operand, or, when the function returns several
        results in a tuple built in the block, of the elements ``sources`` read where the tuple
        is made (the tuple itself is not active, as in reverse mode)."""
        returned = ret.operands[0]
        owner = returned.owner if isinstance(returned, Result) else None
        if several_results(result_type) and isinstance(owner, TupleInst) and owner.block is ret.block:
            tangents = self.tangents
            return self.t.aggregate(
                {i: s for i in sources if (s := tangents.get(owner.operands[i])) is not None}
            )
        return self.tangents.get(returned)

    def visit_TupleInst(self, inst: TupleInst | StructInst) -> None:
        """``%t = tuple (%a, %b)`` (or ``struct``): ``dt = (da, db)``, kept as an aggregate of the
        elements that have a tangent, built only where a value is needed."""
        elements = {i: s for i, op in enumerate(inst.operands) if (s := self.tangents.get(op)) is not None}
        if elements:
            self.tangents[inst.result] = self.t.aggregate(elements)

    visit_StructInst = visit_TupleInst

    def visit_TupleExtractInst(self, inst: TupleExtractInst | StructExtractInst) -> None:
        """``%e = tuple_extract %t, i`` (or ``struct_extract %t, #S.f``): ``de = dt.i``."""
        whole = inst.operands[0]
        element = self.t.element(self.tangents.get(whole), whole.type, element_index(self.module, inst))
        if element is not None:
            self.tangents[inst.result] = element

    visit_StructExtractInst = visit_TupleExtractInst

    def visit_DestructureTupleInst(self, inst: DestructureTupleInst | DestructureStructInst) -> None:
        """``(%a, %b) = destructure_tuple %t`` (or ``destructure_struct``): ``(da, db) = dt``."""
        whole = inst.operands[0]
        tangent = self.tangents.get(whole)
        for i, r in enumerate(inst.results):
            element = self.t.element(tangent, whole.type, i)
            if element is not None:
                self.tangents[r] = element

    visit_DestructureStructInst = visit_DestructureTupleInst

    def visit_EnumInst(self, inst: EnumInst) -> None:
        """``%e = enum $E, #E.c, %p``: ``de = enum $E.TangentVector, #c, dp`` (zero without ``dp``)."""
        if inst.operands:
            payload = inst.operands[0]
            found = self.tangents.get(payload)
            shapes = None
            if found is not None and misses_a_tensor(self.module, cast(Any, found), payload.type):
                shapes = self.payload_shapes(payload)
            tangent = self.t.enum_case(inst.type, inst.case, found, payload.type, shapes)
            if tangent is not None:
                self.tangents[inst.result] = tangent

    def payload_shapes(self, payload: Value) -> Sequence[Value] | None:
        """The shapes of the tensors ``payload`` holds, for the zeros its tangent misses."""
        return None


class AdjointPuller(InstructionVisitor, Generic[S]):
    """The adjoints of tuples and structs, pulled backwards (by the pullback, and by its plan):
    ``adjoints`` maps each value to its symbolic adjoint, accumulated with ``t``; only active
    values have adjoints."""

    module: Module
    is_active: Callable[[Value], bool]
    adjoints: dict[Value, S]
    t: TangentAlgebra[S]

    def seed(self, ret: ReturnInst, adjoint: S, result_type: Type) -> None:
        """``adjoint`` is the adjoint of what ``ret`` returns: of its operand, or, when the
        function returns several results in a tuple built in the block, of those elements."""
        returned = ret.operands[0]
        owner = returned.owner if isinstance(returned, Result) else None
        if several_results(result_type) and isinstance(owner, TupleInst) and owner.block is ret.block:
            for i, element in self.t.elements_of(adjoint, result_type).items():
                self.accumulate(owner.operands[i], element)
        else:
            self.accumulate(returned, adjoint)

    def accumulate(self, v: Value, adjoint: S | None) -> None:
        """Add ``adjoint`` to ``v``'s; only active values have adjoints (the others' are dropped)."""
        if adjoint is None or not self.is_active(v):
            return
        old = self.adjoints.get(v)
        self.adjoints[v] = adjoint if old is None else self.t.add(old, adjoint, v.type)

    def visit_TupleInst(self, inst: TupleInst | StructInst) -> None:
        """``%t = tuple (%a, %b)`` (or ``struct``): ``adj[a] += adj[t].0``, ``adj[b] += adj[t].1``;
        the adjoint of ``t`` is taken apart only where it is a value."""
        elements = self.t.elements_of(self.adjoints.pop(inst.result, None), inst.result.type)
        for i, op in enumerate(inst.operands):
            if i in elements:
                self.accumulate(op, elements[i])

    visit_StructInst = visit_TupleInst

    def visit_TupleExtractInst(self, inst: TupleExtractInst | StructExtractInst) -> None:
        """``%e = tuple_extract %t, i`` (or ``struct_extract %t, #S.f``): ``adj[t] += (0, …, adj[e],
        …, 0)``, kept as an aggregate of the one element."""
        element = self.adjoints.pop(inst.result, None)
        if element is not None:
            self.accumulate(inst.operands[0], self.t.aggregate({element_index(self.module, inst): element}))

    visit_StructExtractInst = visit_TupleExtractInst

    def visit_DestructureTupleInst(self, inst: DestructureTupleInst | DestructureStructInst) -> None:
        """``(%a, %b) = destructure_tuple %t`` (or ``destructure_struct``): ``adj[t] += (adj[a],
        adj[b])``, an aggregate of the elements that have an adjoint."""
        elements = {i: a for i, r in enumerate(inst.results) if (a := self.adjoints.pop(r, None)) is not None}
        if elements:
            self.accumulate(inst.operands[0], self.t.aggregate(elements))

    visit_DestructureStructInst = visit_DestructureTupleInst

    def visit_EnumInst(self, inst: EnumInst) -> None:
        """``%e = enum $E, #E.c, %p``: ``adj[p] += adj[e]``'s payload at ``c`` (zero where
        ``adj[e]`` is ``zero``)."""
        adjoint = self.adjoints.pop(inst.result, None)
        if adjoint is not None and inst.operands:
            payload = inst.operands[0]
            shapes = self.payload_shapes(payload)
            self.accumulate(payload, self.t.enum_payload(adjoint, inst.type, inst.case, payload.type, shapes))

    def payload_shapes(self, payload: Value) -> Sequence[Value] | None:
        """The shapes of the tensors ``payload`` holds, for a zero of its tangent (None: none)."""
        return None
