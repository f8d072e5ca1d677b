"""What the VJP and the JVP have in common: they compute the original and keep, in checkpoints
records, what their linear map (the pullback or the differential) needs.

``DerivativeEmitter`` emits that primal side once for both modes, following the plan of the
records (``LinearMapInfo``, made before any code is emitted: which records and traces exist, and
which fields each has). It clones the original, saves what each active builtin's rule asks for,
turns each active call into a call of the callee's derivative of the same mode (whose linear map
it keeps; of a callee with several results, for those the caller uses:
``ActivityInfo.active_elements``), and returns the original result with ``partial_apply
[callee_guaranteed]`` of the linear-map function to the record of the block that returned. A
subclass says which mode (``Mode``: the names, the types, the callee's derivative) and emits the
linear map's body with a ``LinearMapEmitter``, which reads each block's record where its code
starts.

With control flow (SIL-SPEC §6, after Swift's linear map structs and branching trace enums) each
block keeps its own record on each visit. A block with one predecessor keeps that predecessor's
record in its field ``pred``; a block with several keeps a trace enum whose case names the
predecessor that ran, with that predecessor's record as payload. The record of the block that
returns therefore describes the whole path, one record per block visited (a loop's trips are a
chain of records). A function with several ``return`` blocks binds the trace enum of a virtual
``exit`` block instead. ``finish_derivative`` passes records and traces along the derivative's
branches.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from analysis.activity import Config
from differentiation.linear_map_info import PRED_FIELD, LinearMapInfo, Mode, linear_map_type
from differentiation.rules import RULES, Saved, kept_value
from differentiation.statistics import ZeroCounts
from differentiation.tangents import (
    Symbolic,
    TangentBuilder,
    Zeros,
    leaf_shapes,
    misses_a_tensor,
    tensor_leaf_values,
    tensor_leaves,
)
from sil.builder import Builder
from sil.cloning import clone_instruction
from sil.diagnostics import SILError
from sil.instructions import (
    ApplyInst,
    BranchInst,
    BuiltinInst,
    CondBranchInst,
    DestructureStructInst,
    ReturnInst,
    SwitchEnumInst,
)
from sil.ir import Block, Function, Instruction, Module, Result, Value
from sil.transforms.dce import eliminate_dead_code
from sil.types import TENSOR_SHAPE, FunctionType, NominalType, TensorType

if TYPE_CHECKING:
    from differentiation.differentiator import Differentiator


class DerivativeEmitter(abc.ABC):
    """Emits a derivative (VJP or JVP) of one function for one configuration, and its linear map."""

    mode: Mode  # set by subclasses

    def __init__(self, differentiator: Differentiator, fn: Function, config: Config) -> None:
        self.differentiator = differentiator
        self.module = differentiator.module
        self.fn = fn
        self.config = config
        self.info = differentiator.activity(fn, config)
        self.plan = LinearMapInfo(self.module, fn, config, self.info, self.mode)
        self.records = self.plan.records
        self.returns = self.plan.returns
        self._references: dict[str, Value] = {}  # function_refs made in the derivative, by name
        # How the linear map's emitter treats zeros, when the context keeps statistics.
        self.zeros = ZeroCounts() if differentiator.statistics is not None else None

    @abc.abstractmethod
    def emit_linear_map(self) -> None:
        """The body of the pullback or the differential."""

    def derivative_type(self) -> FunctionType:
        """The VJP's or JVP's type (SIL-SPEC §6)."""
        return self.mode.derivative_type(self.module, self.fn.type, self.config.sources, self.config.wrt)

    def callee_derivative(
        self, callee: Function, sources: tuple[int, ...], wrt: tuple[int, ...]
    ) -> tuple[Function, tuple[int, ...]]:
        """The derivative of this mode a call of ``callee`` uses for its results ``sources``, and
        the parameters its linear map covers (see ``Differentiator.vjp_for_call``)."""
        if self.mode.derivative == "jvp":
            return self.differentiator.jvp_for_call(callee, wrt, sources=sources)
        return self.differentiator.vjp_for_call(callee, wrt, sources=sources)

    @property
    def exit_type(self) -> NominalType:
        return self.plan.exit_type

    # --- the shared part -----------------------------------------------------------------------
    def declare(self) -> Function:
        """Add the derivative, the linear map and the planned types to the module, without bodies
        yet (so that a recursive call can refer to the derivative being emitted)."""
        module, fn, mode = self.module, self.fn, self.mode
        if not self.returns:
            raise SILError.at(fn.span, f"cannot differentiate '@{fn.name}': it never returns")
        derivative_t = self.derivative_type()
        closure = linear_map_type(derivative_t)
        self.derivative = Function(mode.derivative_name(fn.name, self.config), derivative_t)
        # The closure's parameters plus the record, bound last by partial application.
        linear_map_t = FunctionType((*closure.params, self.exit_type), closure.result)
        self.linear_map = Function(mode.linear_map_name(fn.name, self.config), linear_map_t)
        for new in (self.derivative, self.linear_map):
            if new.name in module.functions:
                raise SILError.at(fn.span, f"cannot synthesize '@{new.name}': the name is taken")
            self.differentiator.add_function(new)
        # Declared now, so that types come out in the order derivatives are requested.
        for decl, declared in self.plan.declarations():
            if decl.name in module.types:
                raise SILError.at(fn.span, f"cannot synthesize type '{decl.name}': the name is taken")
            if declared:
                self.differentiator.add_type(decl)
        return self.derivative

    def emit_bodies(self) -> None:
        """The derivative's body, then the linear map's, then the records between them."""
        self.values: dict[Value, Value] = {}
        self.copies: dict[Block, Block] = {}
        # The derivative's value of each checkpoint of each block's record.
        self.checkpoint_values: dict[Block, dict[int, Value]] = {b: {} for b in self.records}
        reachable = set(self.plan.order)
        for block in self.fn.blocks:
            if block in reachable:
                copy = self.copies[block] = self.derivative.add_block(block.name)
                for a in block.args:
                    self.values[a] = copy.add_argument(a.type, a.name)
        for block in self.plan.order:
            self._emit_block(block)
        self.emit_linear_map()
        self.finish_derivative()
        eliminate_dead_code(self.derivative)
        if self.differentiator.statistics is not None:
            self.differentiator.statistics.emitted(self)

    def _emit_block(self, block: Block) -> None:
        """The block's instructions in the derivative, but for its terminator."""
        b = Builder.at_end(self.copies[block], self.module)
        values, calls, saved = self.values, self.plan.calls, self.plan.saved
        for inst in block.instructions[:-1]:
            if inst in calls:
                assert isinstance(inst, ApplyInst)
                self._call_derivative(b, inst)
                continue
            copy = b.insert(clone_instruction(inst, values))
            for old, new in zip(inst.results, copy.results):
                values[old] = new
                new.name = old.name
            if inst in saved:
                assert isinstance(inst, BuiltinInst)
                self._save(b, inst, copy)

    def _save(self, b: Builder, inst: BuiltinInst, copy: Instruction) -> None:
        """What the rule of an active builtin saves, as the plan's checkpoints."""
        kept = RULES[inst.name].save(b, list(copy.operands), copy.result, self.plan.needed[inst])
        assert inst.block is not None
        made = self.checkpoint_values[inst.block]
        for index, value, slot in zip(self.plan.saved[inst], kept, self.plan.keeps[inst]):
            if index is None or index in made:  # a shape several rules keep is made once
                continue
            if slot.shape:  # the emitter makes the shapes the rules declare
                source = kept_value(copy, slot)
                assert value is None and source is not None
                value = b.builtin("shape", source, type=TENSOR_SHAPE)
            assert value is not None
            self._keep(inst.block, index, value)

    def _keep(self, block: Block, index: int, value: Value) -> None:
        checkpoint = self.records[block].checkpoints[index]
        assert value.type == checkpoint.type, (checkpoint, value.type)
        assert checkpoint.value is None or self.values[checkpoint.value] is value, checkpoint
        self.checkpoint_values[block][index] = value

    def _call_derivative(self, b: Builder, inst: ApplyInst) -> None:
        """Call the callee's derivative on the call's arguments (as the callee's parameters) in
        place of the call, and keep its linear map."""
        call = self.plan.calls[inst]
        derivative: Value | None
        if call.callee is None:  # the value's own derivative, as Swift's SIL has it
            assert call.bundle is not None
            derivative = b.differentiable_function_extract(self.mode.derivative, self.values[call.bundle])
        else:
            function, covered = self.callee_derivative(call.callee, call.sources, call.asked)
            assert covered == call.wrt, (covered, call.wrt)
            derivative = self._references.get(function.name)
            if derivative is None:  # one function_ref per callee derivative, however often it is called
                entry = self.derivative.blocks[0]
                at = b if b.block is entry else Builder(entry, len(entry.instructions), self.module)
                derivative = self._references[function.name] = at.function_ref(function)
        pair = b.apply(derivative, *[self.values[a] for a in call.arguments])
        result, linear_map = b.destructure_tuple(pair)
        result.name = inst.result.name
        self.values[inst.result] = result
        assert inst.block is not None
        (index,) = self.plan.saved[inst]
        assert index is not None
        self._keep(inst.block, index, linear_map)

    def finish_derivative(self) -> None:
        """The derivative's terminators: each block builds its record and passes it (wrapped in
        the successor's trace enum, when that has several predecessors) along its edges."""
        records = self.records
        traces: dict[Block, Value] = {}  # the pred value each block's copy receives
        for block, planned in records.items():
            pred = planned.pred_field_type(records)
            if pred is not None:
                traces[block] = self.copies[block].add_argument(pred, PRED_FIELD)
        for block in self.fn.blocks:
            if block not in self.copies:  # not reachable
                continue
            term = block.terminator
            assert term is not None
            b = Builder.at_end(self.copies[block], self.module)
            if block not in records:
                self._copy_terminator(b, term, {})
                continue
            record = records[block]
            built: Value | None = None
            if record.present:
                parts = [traces[block]] if block in traces else []
                parts += [self._field_value(b, block, i) for i in record.fields]
                built = b.struct(record.decl.type, *parts)
            if isinstance(term, ReturnInst):
                bound = built
                if len(self.returns) > 1:
                    bound = b.enum(self.exit_type, record.label, built)
                assert bound is not None
                closure = b.partial_apply(b.function_ref(self.linear_map), bound)
                b.return_(b.tuple(self.values[term.operands[0]], closure))
                continue
            extra: dict[Block, Value] = {}
            for succ in term.successors():
                succ_record = records.get(succ)
                if succ_record is None or succ in extra:
                    continue
                if succ_record.trace is not None:
                    extra[succ] = b.enum(succ_record.trace.type, record.label, built)
                elif built is not None:
                    extra[succ] = built
            self._copy_terminator(b, term, extra)

    def _field_value(self, b: Builder, block: Block, index: int) -> Value:
        """The value of one field of ``block``'s record: kept where it was computed, or, for a
        shape only a zero derivative reads (``LinearMapInfo.zero_needs_shape``), made here, where
        the block ends."""
        made = self.checkpoint_values[block]
        if index not in made:
            shape_of = self.records[block].checkpoints[index].shape_of
            assert shape_of is not None, (block.name, index)
            shapes = [
                b.builtin("shape", leaf, type=TENSOR_SHAPE)
                for leaf in tensor_leaf_values(b, self.module, self.values[shape_of])
            ]
            made[index] = shapes[0] if len(shapes) == 1 else b.tuple(*shapes)
        return made[index]

    def _copy_terminator(self, b: Builder, term: Instruction, extra: dict[Block, Value]) -> None:
        """``term`` in the derivative, passing ``extra[succ]`` last to each successor listed; a
        ``switch_enum`` target that takes one goes through a block that adds it."""
        values, copies = self.values, self.copies

        def target(succ: Block, args: list[Value]) -> tuple[Block, list[Value]]:
            mapped = [values[a] for a in args]
            if succ in extra:
                mapped.append(extra[succ])
            return copies[succ], mapped

        if isinstance(term, BranchInst):
            dest, args = target(term.dest, term.operands)
            b.br(dest, *args)
        elif isinstance(term, CondBranchInst):
            true_dest, true_args = target(term.true_dest, term.true_args)
            false_dest, false_args = target(term.false_dest, term.false_args)
            b.cond_br(values[term.operands[0]], true_dest, true_args, false_dest, false_args)
        elif isinstance(term, SwitchEnumInst):
            cases = [(case, self._switch_target(dest, extra)) for case, dest in term.cases]
            default = None if term.default is None else self._switch_target(term.default, extra)
            b.switch_enum(values[term.operands[0]], cases, default)
        else:
            b.insert(clone_instruction(term, values))

    def _switch_target(self, succ: Block, extra: dict[Block, Value]) -> Block:
        copy = self.copies[succ]
        if succ not in extra:
            return copy
        trampoline = self.derivative.add_block()
        payload = [trampoline.add_argument(a.type) for a in succ.args]
        Builder.at_end(trampoline, self.module).br(copy, *payload, extra[succ])
        return trampoline


class LinearMapEmitter:
    """What the emitters of the pullback and the differential share: the derivative emitter whose
    plan they follow, the linear map they fill and, for the block of it being emitted, the builder
    (``b``, ``t``) and the checkpoints its code reads (``fields``)."""

    module: Module
    is_active: Callable[[Value], bool]
    b: Builder
    t: TangentBuilder

    def __init__(self, emitter: DerivativeEmitter) -> None:
        self.emitter = emitter
        self.plan = emitter.plan
        self.module = emitter.module
        self.is_active = self.plan.is_active
        self.fn, self.config = emitter.fn, emitter.config
        self.linear_map = emitter.linear_map
        self.zeros = emitter.zeros
        self.fields: dict[int, Value] = {}

    def start_block(self, block: Block, b: Builder, record: Value | None) -> Value | None:
        """Emit the code of ``block`` at ``b`` from now on, reading ``record`` (None when the block
        keeps none); returns the record's ``pred`` field, if any."""
        self.b, self.block = b, block
        self.t = TangentBuilder(b, self.module, self.fn.span, self.zeros)
        self.fields, pred = self.read_record(block, b, record)
        return pred

    def read_record(
        self, block: Block, b: Builder, record: Value | None
    ) -> tuple[dict[int, Value], Value | None]:
        """The checkpoints ``block``'s linear map reads, at ``b`` (the start of its code): the
        fields of ``record``, and the literals, made again rather than read from a record on each
        visit. Also the record's ``pred`` field, if any."""
        planned = self.plan.records[block]
        fields: dict[int, Value] = {}
        pred: Value | None = None
        if record is not None and planned.decl.fields:
            types = tuple(f.type for f in planned.decl.fields)
            results = list(b.insert(DestructureStructInst([record], types)).results)
            if planned.has_pred_field:
                pred = results.pop(0)
                pred.name = PRED_FIELD
            for index, field in zip(planned.fields, results):
                field.name = planned.checkpoints[index].name
                fields[index] = field
        for index in planned.literals:
            literal = planned.checkpoints[index].value
            assert isinstance(literal, Result) and literal.owner is not None
            fields[index] = b.insert(clone_instruction(literal.owner, {})).result
            fields[index].name = literal.name
        return fields, pred

    def tangent_or_zero(
        self, t: TangentBuilder, tangent: Symbolic | None, v: Value, zeros: Zeros, shape: Callable[[], Value]
    ) -> Value:
        """``tangent`` as a value of ``v``'s tangent type; where it is absent, a zero shared by the
        arguments of one edge. A tensor's zero is made to ``v``'s shape, which ``shape`` reads
        from the record that keeps it (``LinearMapInfo.zero_needs_shape``)."""
        if not isinstance(v.type, TensorType):
            if misses_a_tensor(self.module, tangent, v.type):
                return t.materialize(tangent, v.type, leaf_shapes(t.b, shape()))
            return t.materialize_sharing_zeros(tangent, v.type, zeros)
        if tangent is not None:
            return t.materialize(tangent, v.type)
        size = shape()
        if size not in zeros:
            zeros[size] = t.b.builtin("zeros", size, type=v.type)
            if self.zeros is not None:
                self.zeros.materialized += 1
        return zeros[size]

    def payload_shapes(self, payload: Value) -> Sequence[Value] | None:
        """The shapes of the tensors ``payload`` holds, which the record of the block being
        emitted keeps (``LinearMapInfo``'s flows ask for them)."""
        if not tensor_leaves(self.module, payload.type):
            return None
        return leaf_shapes(self.b, self.own_shape(self.block, payload)())

    def own_shape(self, block: Block, v: Value) -> Callable[[], Value]:
        """How to read ``shape(v)`` from the record of ``block``, whose code is being emitted."""
        return lambda: self.fields[self.plan.zero_shape_index(block, v)]

    def saved(self, inst: Instruction) -> Saved:
        """What ``inst``'s rule saved (or, for a call, the callee's linear map), as the code of
        its block reads it."""
        fields = self.fields
        values = [None if i is None else fields.get(i) for i in self.plan.saved[inst]]
        return Saved(values, self.plan.keeps.get(inst, ()))
