"""Reverse mode: the VJP of a single-block function and its pullback (SIL-SPEC §6, after Swift's
VJPCloner and PullbackCloner).

The VJP computes the original and keeps what the pullback needs in a checkpoints record, as
``differentiation/primal.py`` does for both modes (the callees' VJPs, and their pullbacks).

The pullback walks the active instructions backwards from the seed, holding adjoints symbolically
(``differentiation/tangents.py``). Fan-out accumulates with ``fadd``; inactive code is not replayed.
"""

from __future__ import annotations

from differentiation.naming import checkpoints_name, pullback_name, vjp_name
from differentiation.primal import DerivativeEmitter
from differentiation.rules import RULES, fit_cotangent
from differentiation.tangents import Aggregate, Symbolic, TangentBuilder, field_index
from sil import derivative_types as dt
from sil.builder import Builder
from sil.diagnostics import SILError
from sil.instructions import (
    ApplyInst,
    BuiltinInst,
    DestructureStructInst,
    DestructureTupleInst,
    ReturnInst,
    StructExtractInst,
    StructInst,
    TupleExtractInst,
    TupleInst,
)
from sil.ir import Function, Instruction, Result, StructDecl, Value
from sil.transforms.dce import eliminate_dead_code
from sil.types import FunctionType, TupleType


class ReverseEmitter(DerivativeEmitter):
    """Emits the VJP and the pullback of one function for one configuration."""

    linear_map_kind = "pullback"

    def derivative_type(self) -> FunctionType:
        return dt.vjp_type(self.module, self.fn.type, self.config.source, self.config.wrt)

    def names(self, record: str) -> tuple[str, str, str]:
        fn, config = self.fn.name, self.config
        return vjp_name(fn, config), pullback_name(fn, config), checkpoints_name(fn, record, config)

    def linear_map_type(self, closure: FunctionType, record: StructDecl) -> FunctionType:
        return FunctionType((closure.params[0], record.type), closure.result)

    def callee_derivative(self, callee: Function, wrt: tuple[int, ...]) -> tuple[Function, tuple[int, ...]]:
        return self.differentiator.vjp_for_call(callee, wrt)

    def emit_linear_map(self, ret: ReturnInst) -> None:
        PullbackEmitter(self, self.linear_map, self.record).emit(ret)


class PullbackEmitter:
    """Emits the body of the pullback: ``(seed, checkpoints) -> tangents of the wrt parameters``."""

    def __init__(self, reverse: ReverseEmitter, pullback: Function, record: StructDecl) -> None:
        self.reverse = reverse
        self.module = reverse.module
        self.info = reverse.info
        self.pullback = pullback
        self.record = record
        self.adjoints: dict[Value, Symbolic] = {}

    def emit(self, ret: ReturnInst) -> None:
        fn, config = self.reverse.fn, self.reverse.config
        block = self.pullback.add_block("bb0")
        seed = block.add_argument(self.pullback.type.params[0], "seed")
        record = block.add_argument(self.record.type, "checkpoints")
        b = self.b = Builder.at_end(block, self.module)
        self.t = TangentBuilder(b, self.module, fn.span)
        fields: tuple[Value, ...] = b.destructure_struct(record) if self.record.fields else ()
        for field, checkpoint in zip(fields, self.reverse.checkpoints):
            field.name = checkpoint.name
        self.fields = fields
        returned = ret.operands[0]
        owner = returned.owner if isinstance(returned, Result) else None
        if isinstance(fn.type.result, TupleType) and len(fn.type.results) > 1:
            if isinstance(owner, TupleInst):
                self._accumulate(owner.operands[config.source], seed)
            else:
                self._accumulate(returned, Aggregate({config.source: seed}))
        else:
            self._accumulate(returned, seed)
        for inst in reversed(fn.blocks[0].instructions[:-1]):
            if self.reverse.active(inst):
                self._visit(inst)
        entry = fn.blocks[0]
        tangents = [
            self.t.materialize(self.adjoints.get(entry.args[i]), entry.args[i].type) for i in config.wrt
        ]
        b.return_(tangents[0] if len(tangents) == 1 else b.tuple(*tangents))
        eliminate_dead_code(self.pullback)

    # --- instructions, backwards ---------------------------------------------------------------
    def _visit(self, inst: Instruction) -> None:
        b = self.b
        if isinstance(inst, BuiltinInst):
            adjoint = self._take(inst.result)
            if adjoint is None:
                return
            needed = [self.info.is_active(op) for op in inst.operands]
            saved = [self.fields[i] for i in self.reverse.saved[inst]]
            cotangents = RULES[inst.name].pullback(b, adjoint, saved, needed)
            for op, cotangent in zip(inst.operands, cotangents):
                self._accumulate(op, fit_cotangent(b, cotangent, op.type))
        elif isinstance(inst, ApplyInst):
            adjoint = self._take(inst.result)
            if adjoint is None:
                return
            (pullback,) = [self.fields[i] for i in self.reverse.saved[inst]]
            arguments, callee_wrt = self.reverse.calls[inst]
            tangents = b.apply(pullback, adjoint)
            parts = (tangents,) if len(callee_wrt) == 1 else b.destructure_tuple(tangents)
            for i, part in zip(callee_wrt, parts):
                if self.info.is_active(arguments[i]):
                    self._accumulate(arguments[i], part)
        elif isinstance(inst, TupleInst):
            aggregate = self.t.as_aggregate(self.adjoints.pop(inst.result, None), inst.result.type)
            for i, op in enumerate(inst.operands):
                if self.info.is_active(op) and i in aggregate.elements:
                    self._accumulate(op, aggregate.elements[i])
        elif isinstance(inst, TupleExtractInst):
            element = self.adjoints.pop(inst.result, None)
            if element is not None:
                self._accumulate(inst.operands[0], Aggregate({inst.index: element}))
        elif isinstance(inst, DestructureTupleInst):
            elements = {
                i: a for i, r in enumerate(inst.results) if (a := self.adjoints.pop(r, None)) is not None
            }
            if elements:
                self._accumulate(inst.operands[0], Aggregate(elements))
        elif isinstance(inst, StructInst):
            aggregate = self.t.as_aggregate(self.adjoints.pop(inst.result, None), inst.result.type)
            for i, op in enumerate(inst.operands):
                if self.info.is_active(op) and i in aggregate.elements:
                    self._accumulate(op, aggregate.elements[i])
        elif isinstance(inst, StructExtractInst):
            field = self.adjoints.pop(inst.result, None)
            if field is not None:
                self._accumulate(inst.operands[0], Aggregate({field_index(self.module, inst): field}))
        elif isinstance(inst, DestructureStructInst):
            elements = {
                i: a for i, r in enumerate(inst.results) if (a := self.adjoints.pop(r, None)) is not None
            }
            if elements:
                self._accumulate(inst.operands[0], Aggregate(elements))
        else:
            raise SILError.at(inst.span, f"cannot differentiate '{inst.opname}' yet")

    # --- adjoints ------------------------------------------------------------------------------
    def _take(self, v: Value) -> Value | None:
        """The adjoint of ``v`` as one value (None: zero), forgetting it: ``v`` is visited once."""
        adjoint = self.adjoints.pop(v, None)
        return None if adjoint is None else self.t.materialize(adjoint, v.type)

    def _accumulate(self, v: Value, adjoint: Symbolic | None) -> None:
        if adjoint is None:
            return
        old = self.adjoints.get(v)
        self.adjoints[v] = adjoint if old is None else self.t.add(old, adjoint, v.type)
