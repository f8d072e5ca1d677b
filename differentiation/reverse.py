"""Reverse mode: the VJP of a single-block function and its pullback (SIL-SPEC §6, after Swift's
VJPCloner and PullbackCloner).

The VJP computes the original; for each active builtin it also computes what the builtin's rule
saves (``differentiation/rules.py``), and each active call becomes a call of the callee's VJP whose
pullback it keeps. What it keeps goes into a checkpoints record, a struct, and the VJP returns the
original result with ``partial_apply [callee_guaranteed]`` of the pullback function to the record.

The pullback walks the active instructions backwards from the seed, holding adjoints symbolically
(``differentiation/tangents.py``). Fan-out accumulates with ``fadd``; inactive code is not replayed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from analysis.activity import Config, analyze_activity
from differentiation.diagnostics import resolve_callee
from differentiation.naming import checkpoints_name, pullback_name, vjp_name
from differentiation.rules import RULES, fit_cotangent
from differentiation.tangents import Aggregate, Symbolic, TangentBuilder, field_index
from sil import derivative_types as dt
from sil.builder import Builder
from sil.cloning import clone_instruction
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
from sil.ir import FieldDecl, Function, Instruction, Result, StructDecl, Value
from sil.transforms.dce import eliminate_dead_code
from sil.types import FunctionType, TupleType

if TYPE_CHECKING:
    from differentiation.differentiator import Differentiator


@attrs.frozen
class Checkpoint:
    """A field of the checkpoints record: its name, and the VJP value stored in it."""

    name: str
    value: Value


class ReverseEmitter:
    """Emits the VJP and the pullback of one function for one configuration."""

    def __init__(self, differentiator: Differentiator, fn: Function, config: Config) -> None:
        self.differentiator = differentiator
        self.module = differentiator.module
        self.fn = fn
        self.config = config
        self.info = analyze_activity(self.module, fn, config)
        self.checkpoints: list[Checkpoint] = []
        self.saved: dict[Instruction, list[int]] = {}  # checkpoint indices, per original instruction
        self.calls: dict[Instruction, tuple[tuple[Value, ...], tuple[int, ...]]] = {}
        self._counts = {"partial": 0, "pullback": 0}

    def error(self, inst: Instruction, message: str) -> SILError:
        return SILError.at(inst.span, message)

    # --- the VJP -------------------------------------------------------------------------------
    def vjp_function(self) -> Function:
        """Add the VJP, the pullback and the checkpoints record to the module, without bodies yet
        (so that a recursive call can refer to the VJP being emitted)."""
        module, fn, config = self.module, self.fn, self.config
        vjp_t = dt.vjp_type(module, fn.type, config.source, config.wrt)
        assert isinstance(vjp_t.result, TupleType)
        pullback_t = vjp_t.result.elements[1]
        assert isinstance(pullback_t, FunctionType)
        self.record = StructDecl(checkpoints_name(fn.name, fn.blocks[0].name or "bb0", config))
        self.vjp = Function(vjp_name(fn.name, config), vjp_t)
        self.pullback = Function(
            pullback_name(fn.name, config),
            FunctionType((pullback_t.params[0], self.record.type), pullback_t.result),
        )
        for new in (self.vjp, self.pullback):
            if new.name in module.functions:
                raise SILError.at(fn.span, f"cannot synthesize '@{new.name}': the name is taken")
            self.differentiator.add_function(new)
        self.differentiator.add_type(self.record)
        return self.vjp

    def emit_bodies(self) -> None:
        """The VJP's body, then the pullback's."""
        module, fn = self.module, self.fn
        entry = fn.blocks[0]
        block = self.vjp.add_block("bb0")
        values: dict[Value, Value] = {a: block.add_argument(a.type, a.name) for a in entry.args}
        b = Builder.at_end(block, module)
        ret: ReturnInst | None = None
        for inst in entry.instructions:
            if isinstance(inst, ReturnInst):
                ret = inst
                break
            if isinstance(inst, ApplyInst) and self._active(inst):
                self._vjp_call(b, inst, values)
                continue
            copy = b.insert(clone_instruction(inst, values))
            for old, new in zip(inst.results, copy.results):
                values[old] = new
                new.name = old.name
            if isinstance(inst, BuiltinInst) and self._active(inst):
                self._save(b, inst, copy)
        assert ret is not None, "the diagnostics admit only single-block functions"
        self.record.fields = [FieldDecl(cp.name, cp.value.type) for cp in self.checkpoints]
        saved = b.struct(self.record.type, *[cp.value for cp in self.checkpoints])
        closure = b.partial_apply(b.function_ref(self.pullback), saved)
        b.return_(b.tuple(values[ret.operands[0]], closure))
        eliminate_dead_code(self.vjp)
        PullbackEmitter(self, self.pullback, self.record).emit(ret)

    def _active(self, inst: Instruction) -> bool:
        return any(self.info.is_active(r) for r in inst.results)

    def _checkpoint(self, value: Value, kind: str) -> int:
        """The index of the field holding ``value``, added the first time it is kept. A field is
        named after its value when the input named it (``xx``), else ``partial_N``/``pullback_N``."""
        for i, cp in enumerate(self.checkpoints):
            if cp.value is value:
                return i
        taken = {cp.name for cp in self.checkpoints}
        name = value.name if value.name is not None and not value.name.isdigit() else None
        if name is None or name in taken:
            name = f"{kind}_{self._counts[kind]}"
            self._counts[kind] += 1
        self.checkpoints.append(Checkpoint(name, value))
        return len(self.checkpoints) - 1

    def _save(self, b: Builder, inst: BuiltinInst, copy: Instruction) -> None:
        rule = RULES.get(inst.name)
        if rule is None:
            raise self.error(inst, f"cannot differentiate '{inst.name}' yet")
        needed = [self.info.is_active(op) for op in inst.operands]
        copies = list(copy.operands)
        self.saved[inst] = [self._checkpoint(v, "partial") for v in rule.save(b, copies, copy.result, needed)]

    def _vjp_call(self, b: Builder, inst: ApplyInst, values: dict[Value, Value]) -> None:
        """A call of the callee's VJP in place of the call; its pullback is checkpointed."""
        resolved = resolve_callee(self.module, inst)
        if resolved is None:
            raise self.error(inst, "cannot differentiate a call of an opaque function value")
        callee = resolved.function
        if isinstance(callee.type.result, TupleType) and len(callee.type.results) > 1:
            raise self.error(
                inst, f"cannot differentiate a call of '@{callee.name}' yet: it returns several results"
            )
        wrt = tuple(i for i, a in enumerate(resolved.arguments) if self.info.is_active(a))
        callee_vjp, callee_wrt = self.differentiator.vjp_for_call(callee, wrt)
        pair = b.apply(b.function_ref(callee_vjp), *[values[a] for a in resolved.arguments])
        result, pullback = b.destructure_tuple(pair)
        result.name = inst.result.name
        values[inst.result] = result
        self.saved[inst] = [self._checkpoint(pullback, "pullback")]
        self.calls[inst] = (resolved.arguments, callee_wrt)


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
            if self.reverse._active(inst):
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
            raise self.reverse.error(inst, f"cannot differentiate '{inst.opname}' yet")

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
