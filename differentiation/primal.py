"""What the VJP and the JVP have in common: they compute the original and keep, in checkpoints
records, what their linear map (the pullback or the differential) needs.

``DerivativeEmitter`` emits that primal side once for both modes: it clones the original, saves
what each active builtin's rule asks for, turns each active call into a call of the callee's
derivative of the same mode (whose linear map it keeps; of a callee with several results, for
those the caller uses: ``ActivityInfo.active_elements``), and returns the original result with
``partial_apply [callee_guaranteed]`` of the linear-map function to the record of the block that
returned. A subclass says which mode (the names, the types, the callee's derivative) and emits the
linear map's body.

With control flow (SIL-SPEC §6, after Swift's linear map structs and branching trace enums) each
block keeps its own record on each visit. A block with one predecessor keeps that predecessor's
record in its field ``pred``; a block with several keeps a trace enum whose case names the
predecessor that ran, with that predecessor's record as payload. The record of the block that
returns therefore describes the whole path, one record per block visited (a loop's trips are a
chain of records). A function with several ``return`` blocks binds the trace enum of a virtual
``exit`` block instead.

Records keep only what their linear map reads, so which fields exist is decided after the linear
map is emitted: it reads each record through ``provisional_fields``, and ``decide_records`` then
keeps the fields read, drops records left empty (a trace case then has no payload), and
``bind_record`` gives the linear map the final fields. ``finish_derivative`` then passes records
and traces along the derivative's branches.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

import attrs

from analysis.activity import Config
from differentiation.diagnostics import resolve_bundle_callee, resolve_callee
from differentiation.naming import EXIT_BLOCK, block_label
from differentiation.rules import RULES
from sil.builder import Builder
from sil.cfg import blocks_that_return, reverse_postorder
from sil.cloning import clone_instruction
from sil.diagnostics import SILError
from sil.instructions import (
    ApplyInst,
    BranchInst,
    BuiltinInst,
    CondBranchInst,
    DestructureStructInst,
    FloatLiteralInst,
    IntegerLiteralInst,
    ReturnInst,
    SwitchEnumInst,
)
from sil.ir import (
    Block,
    BlockArgument,
    EnumCase,
    EnumDecl,
    FieldDecl,
    Function,
    Instruction,
    Result,
    StructDecl,
    Value,
)
from sil.transforms.dce import eliminate_dead_code
from sil.types import FunctionType, NominalType, TupleType, Type

if TYPE_CHECKING:
    from differentiation.differentiator import Differentiator

PRED_FIELD = "pred"


def _is_literal(v: Value) -> bool:
    return isinstance(v, Result) and isinstance(v.owner, FloatLiteralInst | IntegerLiteralInst)


def edge_arguments(term: Instruction, succ: Block) -> list[Value]:
    """The values ``term`` passes to ``succ``'s arguments (none from a ``switch_enum``, whose
    payload is not a value of the branching block)."""
    for dest, args in term.successor_args():
        if dest is succ:
            return args
    return []


@attrs.frozen
class ActiveCall:
    """What an active call differentiates: the values passed as the callee's parameters, the
    parameters its linear map takes or gives tangents for, and the callee's results it carries
    tangents of (SIL-SPEC §3: the elements of a tuple result the caller differentiates)."""

    arguments: tuple[Value, ...]
    wrt: tuple[int, ...]
    sources: tuple[int, ...]


@attrs.frozen
class Checkpoint:
    """A field of a checkpoints record: its name, and the primal value stored in it."""

    name: str
    value: Value


@attrs.define(eq=False)
class BlockRecord:
    """What one block of the original keeps for the linear map each time it runs."""

    block: Block
    label: str
    decl: StructDecl
    preds: list[Block]  # the predecessors that lead to a return, each once, in block order
    trace: EnumDecl | None = None  # with several predecessors
    checkpoints: list[Checkpoint] = attrs.field(factory=list)
    kept: dict[Value, int] = attrs.field(factory=dict)
    field_names: set[str] = attrs.field(factory=lambda: {PRED_FIELD})
    provisional: DestructureStructInst | None = None  # the linear map's reads, before decide_records
    stored: list[int] = attrs.field(factory=list)  # checkpoints that are fields (not literals)
    reads: list[int] = attrs.field(factory=list)  # the fields the linear map reads
    present: bool = False  # whether the record exists (see ``decide_records``)

    def pred_field_type(self, records: dict[Block, BlockRecord]) -> Type | None:
        """The type of the record's ``pred`` field (the trace, or the one predecessor's record),
        or None when there is nothing to say about the predecessor."""
        if self.trace is not None:
            return self.trace.type
        if len(self.preds) == 1 and records[self.preds[0]].present:
            return records[self.preds[0]].decl.type
        return None


class DerivativeEmitter(abc.ABC):
    """Emits a derivative (VJP or JVP) of one function for one configuration, and its linear map."""

    # Set by subclasses: what the callee-derivative fields are called (``pullback_0``…), and
    # which derivative a call uses (``differentiable_function_extract [vjp]``…).
    linear_map_kind = ""
    derivative_kind = ""

    def __init__(self, differentiator: Differentiator, fn: Function, config: Config) -> None:
        self.differentiator = differentiator
        self.module = differentiator.module
        self.fn = fn
        self.config = config
        self.info = differentiator.activity(fn, config)
        self.saved: dict[Instruction, list[int]] = {}  # checkpoint indices in the block's record
        self.calls: dict[Instruction, ActiveCall] = {}
        self._counts = {"partial": 0, self.linear_map_kind: 0}
        self._references: dict[str, Value] = {}  # function_refs made in the derivative, by name
        self.order = reverse_postorder(fn)  # reachable blocks, each after its dominators
        self.labels = {b: block_label(i, b.name) for i, b in enumerate(fn.blocks)}
        reachable = set(self.order)
        self.returns = [b for b in fn.blocks if b in reachable and isinstance(b.terminator, ReturnInst)]
        self.exit_label = EXIT_BLOCK  # the virtual block several returns lead to: no block's name
        while self.exit_label in self.labels.values():
            self.exit_label += "_"
        self.records = self._plan_records()

    # --- what a mode says ----------------------------------------------------------------------
    @abc.abstractmethod
    def derivative_type(self) -> FunctionType:
        """The VJP's or JVP's type (SIL-SPEC §6)."""

    @abc.abstractmethod
    def names(self) -> tuple[str, str]:
        """The derivative's and the linear map's names."""

    @abc.abstractmethod
    def record_names(self, label: str) -> tuple[str, str]:
        """The record's and the trace enum's names for the block labelled ``label``."""

    @abc.abstractmethod
    def linear_map_type(self, closure: FunctionType, record: Type) -> FunctionType:
        """The linear-map function's type: the closure's parameters plus the record, where the
        record goes last (bound by partial application)."""

    @abc.abstractmethod
    def callee_derivative(
        self, callee: Function, sources: tuple[int, ...], wrt: tuple[int, ...]
    ) -> tuple[Function, tuple[int, ...]]:
        """The derivative of this mode a call of ``callee`` uses for its results ``sources``, and
        the parameters its linear map covers (see ``Differentiator.vjp_for_call``)."""

    @abc.abstractmethod
    def emit_linear_map(self) -> None:
        """The body of the pullback or the differential; it calls ``decide_records``."""

    # --- planning ------------------------------------------------------------------------------
    def _plan_records(self) -> dict[Block, BlockRecord]:
        """A record for each reachable block that runs on the way to a return."""
        reaching = blocks_that_return(self.fn)
        preds: dict[Block, list[Block]] = {b: [] for b in reaching}
        for b in self.fn.blocks:  # in block order
            if b in reaching:
                for s in b.successors():
                    if s in preds and b not in preds[s]:
                        preds[s].append(b)
        records: dict[Block, BlockRecord] = {}
        for b in self.fn.blocks:
            if b in reaching:
                label = self.labels[b]
                record_name, trace_name = self.record_names(label)
                record = BlockRecord(b, label, StructDecl(record_name), preds[b])
                if len(preds[b]) > 1:
                    record.trace = EnumDecl(trace_name)
                records[b] = record
        return records

    @property
    def exit_type(self) -> NominalType:
        """The type of what the linear map is bound to: the return block's record, or the trace
        of the virtual exit block when there are several."""
        if len(self.returns) == 1:
            return self.records[self.returns[0]].decl.type
        return NominalType(self.record_names(self.exit_label)[1])

    # --- the shared part -----------------------------------------------------------------------
    def declare(self) -> Function:
        """Add the derivative and the linear map to the module, without bodies yet (so that a
        recursive call can refer to the derivative being emitted)."""
        module, fn = self.module, self.fn
        if not self.returns:
            raise SILError.at(fn.span, f"cannot differentiate '@{fn.name}': it never returns")
        derivative_t = self.derivative_type()
        assert isinstance(derivative_t.result, TupleType)
        closure = derivative_t.result.elements[1]
        assert isinstance(closure, FunctionType)
        derivative_name, linear_map_name = self.names()
        self.derivative = Function(derivative_name, derivative_t)
        self.linear_map = Function(linear_map_name, self.linear_map_type(closure, self.exit_type))
        for new in (self.derivative, self.linear_map):
            if new.name in module.functions:
                raise SILError.at(fn.span, f"cannot synthesize '@{new.name}': the name is taken")
            self.differentiator.add_function(new)
        # Declared now, so that types come out in the order derivatives are requested; those left
        # empty are taken back by ``decide_records``.
        decls: list[StructDecl | EnumDecl] = []
        for record in self.records.values():
            decls.append(record.decl)
            if record.trace is not None:
                decls.append(record.trace)
        if len(self.returns) > 1:
            self.exit_trace = EnumDecl(self.exit_type.name)
            decls.append(self.exit_trace)
        for decl in decls:
            if decl.name in module.types:
                raise SILError.at(fn.span, f"cannot synthesize type '{decl.name}': the name is taken")
            self.differentiator.add_type(decl)
        return self.derivative

    def emit_bodies(self) -> None:
        """The derivative's body, then the linear map's, then the records between them."""
        self.values: dict[Value, Value] = {}
        self.copies: dict[Block, Block] = {}
        reachable = set(self.order)
        for block in self.fn.blocks:
            if block in reachable:
                copy = self.copies[block] = self.derivative.add_block(block.name)
                for a in block.args:
                    self.values[a] = copy.add_argument(a.type, a.name)
        for block in self.order:
            self._emit_block(block)
        self.emit_linear_map()
        self.finish_derivative()
        eliminate_dead_code(self.derivative)

    def _emit_block(self, block: Block) -> None:
        """The block's instructions in the derivative, but for its terminator."""
        b = Builder.at_end(self.copies[block], self.module)
        values = self.values
        active = block in self.records
        for inst in block.instructions[:-1]:
            if active and isinstance(inst, ApplyInst) and self.active(inst):
                self._call_derivative(b, inst)
                continue
            copy = b.insert(clone_instruction(inst, values))
            for old, new in zip(inst.results, copy.results):
                values[old] = new
                new.name = old.name
            if active and isinstance(inst, BuiltinInst) and self.active(inst):
                self._save(b, inst, copy)

    def active(self, inst: Instruction) -> bool:
        """Whether ``inst`` carries a derivative: a call, of some result it is differentiated for."""
        if isinstance(inst, ApplyInst):
            return bool(self.info.active_elements(inst.result))
        return any(self.info.is_active(r) for r in inst.results)

    def checkpoint(self, block: Block, value: Value, kind: str) -> int:
        """The index of the field of ``block``'s record holding ``value``, added the first time it
        is kept. A field is named after its value when the input named it (``xx``), else
        ``partial_N``/``pullback_N``."""
        record = self.records[block]
        index = record.kept.get(value)
        if index is not None:
            return index
        name = value.name if value.name is not None and not value.name.isdigit() else None
        if _is_literal(value):  # made again where it is read, not stored
            record.checkpoints.append(Checkpoint(name or "", value))
            record.kept[value] = index = len(record.checkpoints) - 1
            return index
        if name is None or name in record.field_names:
            name = f"{kind}_{self._counts[kind]}"
            self._counts[kind] += 1
        record.field_names.add(name)
        record.checkpoints.append(Checkpoint(name, value))
        record.kept[value] = index = len(record.checkpoints) - 1
        return index

    def _save(self, b: Builder, inst: BuiltinInst, copy: Instruction) -> None:
        rule = RULES.get(inst.name)
        if rule is None:
            raise SILError.at(inst.span, f"cannot differentiate '{inst.name}' yet")
        needed = [self.info.is_active(op) for op in inst.operands]
        kept = rule.save(b, list(copy.operands), copy.result, needed)
        assert inst.block is not None
        self.saved[inst] = [self.checkpoint(inst.block, v, "partial") for v in kept]

    def _call_derivative(self, b: Builder, inst: ApplyInst) -> None:
        """A call of the callee's derivative in place of the call; its linear map is kept."""
        resolved = resolve_callee(self.module, inst)
        if resolved is None:
            through = resolve_bundle_callee(inst)
            if through is None:
                raise SILError.at(inst.span, "cannot differentiate a call of an opaque function value")
            # The value's own derivative, as Swift's SIL has it.
            bundle_derivative = b.differentiable_function_extract(
                self.derivative_kind, self.values[through.bundle]
            )
            sources = through.sources(self.module)
            self._keep_linear_map(b, inst, bundle_derivative, through.arguments, through.wrt, sources)
            return
        callee = resolved.function
        sources = self.info.active_elements(inst.result)
        wrt = tuple(i for i, a in enumerate(resolved.arguments) if self.info.is_active(a))
        derivative, callee_wrt = self.callee_derivative(callee, sources, wrt)
        reference = self._references.get(derivative.name)
        if reference is None:  # one function_ref per callee derivative, however often it is called
            entry = self.derivative.blocks[0]
            at = b if b.block is entry else Builder(entry, len(entry.instructions), self.module)
            reference = self._references[derivative.name] = at.function_ref(derivative)
        self._keep_linear_map(b, inst, reference, resolved.arguments, callee_wrt, sources)

    def _keep_linear_map(
        self,
        b: Builder,
        inst: ApplyInst,
        derivative: Value,
        arguments: tuple[Value, ...],
        callee_wrt: tuple[int, ...],
        sources: tuple[int, ...],
    ) -> None:
        """Call the callee's ``derivative`` on the call's ``arguments`` (as the callee's parameters)
        in place of the call, and keep its linear map, which covers the parameters ``callee_wrt``
        and the results ``sources``."""
        pair = b.apply(derivative, *[self.values[a] for a in arguments])
        result, linear_map = b.destructure_tuple(pair)
        result.name = inst.result.name
        self.values[inst.result] = result
        assert inst.block is not None
        self.saved[inst] = [self.checkpoint(inst.block, linear_map, self.linear_map_kind)]
        self.calls[inst] = ActiveCall(arguments, callee_wrt, sources)

    # --- records -------------------------------------------------------------------------------
    def provisional_fields(self, block: Block, b: Builder) -> tuple[Value, ...]:
        """The values of ``block``'s checkpoints, read at ``b`` by the linear map: every field of
        the record (``bind_record`` replaces them with the fields kept), and the literals, which
        the linear map makes again rather than reading them from a record on each visit."""
        record = self.records[block]
        record.stored = [i for i, cp in enumerate(record.checkpoints) if not _is_literal(cp.value)]
        record.decl.fields = [
            FieldDecl(record.checkpoints[i].name, record.checkpoints[i].value.type) for i in record.stored
        ]
        values: dict[int, Value] = {}
        if record.stored:
            placeholder = Value(record.decl.type)
            types = tuple(f.type for f in record.decl.fields)
            record.provisional = DestructureStructInst([placeholder], types)
            for i, field in zip(record.stored, b.insert(record.provisional).results):
                field.name = record.checkpoints[i].name
                values[i] = field
        for i, checkpoint in enumerate(record.checkpoints):
            if i not in values:
                literal = checkpoint.value
                assert isinstance(literal, Result) and literal.owner is not None
                values[i] = b.insert(clone_instruction(literal.owner, {})).result
                values[i].name = literal.name
        return tuple(values[i] for i in range(len(record.checkpoints)))

    def provisional_reads(self) -> list[Value]:
        """A value of each provisional read, for dead-code elimination to keep until
        ``bind_record`` replaces it."""
        return [r.provisional.results[0] for r in self.records.values() if r.provisional is not None]

    def decide_records(self) -> None:
        """Keep the fields the linear map read, and the records and traces that say something;
        declare them."""
        records = self.records
        for record in records.values():
            if record.provisional is not None:
                results = record.provisional.results
                record.reads = [i for i, r in zip(record.stored, results) if r.uses]
        single_return = self.returns[0] if len(self.returns) == 1 else None
        changed = True
        while changed:  # a record exists when it keeps a field or a path worth following
            changed = False
            for record in records.values():
                present = (
                    bool(record.reads)
                    or record.trace is not None
                    or record.block is single_return
                    or (len(record.preds) == 1 and records[record.preds[0]].present)
                )
                if present and not record.present:
                    record.present = changed = True
        for record in records.values():
            if record.present:
                pred = record.pred_field_type(records)
                fields = [FieldDecl(PRED_FIELD, pred)] if pred is not None else []
                for i in record.reads:
                    cp = record.checkpoints[i]
                    fields.append(FieldDecl(cp.name, cp.value.type))
                record.decl.fields = fields
            else:
                self.differentiator.remove_type(record.decl)
            if record.trace is not None:
                record.trace.cases = [self._trace_case(p) for p in record.preds]
        if single_return is None:
            self.exit_trace.cases = [self._trace_case(r) for r in self.returns]

    def _trace_case(self, pred: Block) -> EnumCase:
        record = self.records[pred]
        return EnumCase(record.label, record.decl.type if record.present else None)

    def bind_record(self, block: Block, record_value: Value | None) -> Value | None:
        """Read ``block``'s record (``record_value``, None when it has no record) where the linear
        map read it provisionally; returns its ``pred`` field, if any."""
        record = self.records[block]
        provisional = record.provisional
        pred: Value | None = None
        if record_value is not None and record.decl.fields:
            types = tuple(f.type for f in record.decl.fields)
            read = DestructureStructInst([record_value], types)
            if provisional is not None:
                Builder.before(provisional, self.module).insert(read)
            else:
                assert isinstance(record_value, BlockArgument) and record_value.block is not None
                Builder.at_start(record_value.block, self.module).insert(read)
            fields = list(read.results)
            if record.decl.fields[0].name == PRED_FIELD:
                pred = fields.pop(0)
                pred.name = PRED_FIELD
            position = {i: j for j, i in enumerate(record.stored)}
            for field, i in zip(fields, record.reads):
                assert provisional is not None
                old = provisional.results[position[i]]
                field.name = old.name
                old.replace_all_uses_with(field)
        if provisional is not None:
            provisional.erase()
            record.provisional = None
        return pred

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
                parts += [record.checkpoints[i].value for i in record.reads]
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
