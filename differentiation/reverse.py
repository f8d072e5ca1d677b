"""Reverse mode: the VJP of a function and its pullback (SIL-SPEC §6, after Swift's VJPCloner and
PullbackCloner).

The VJP computes the original and keeps what the pullback needs in checkpoints records, one per
block visited, as ``differentiation/primal.py`` does for both modes (the callees' VJPs, and their
pullbacks).

The pullback has one block per block of the original. It walks that block's active instructions
backwards, holding adjoints symbolically (``differentiation/tangents.py``); fan-out accumulates
with ``fadd``; inactive code is not replayed. Then it goes to the pullback block of the
predecessor that ran (read from the record's trace), passing the adjoints of the values live
there, with the adjoints of its own block arguments added to the values the predecessor passed
for them. Loops in the original are loops in the pullback, one trip per record.
"""

from __future__ import annotations

from analysis.liveness import compute_liveness
from differentiation.naming import checkpoints_name, pullback_name, trace_name, vjp_name
from differentiation.primal import DerivativeEmitter, edge_arguments
from differentiation.rules import RULES, fit_cotangent
from differentiation.tangents import Aggregate, Symbolic, TangentBuilder, field_index, leaves
from sil import derivative_types as dt
from sil.builder import Builder
from sil.derivative_types import several_results
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
from sil.ir import Block, Function, Instruction, Result, Value
from sil.transforms.dce import eliminate_dead_code
from sil.types import FunctionType, Type


class ReverseEmitter(DerivativeEmitter):
    """Emits the VJP and the pullback of one function for one configuration."""

    linear_map_kind = "pullback"
    derivative_kind = "vjp"

    def derivative_type(self) -> FunctionType:
        return dt.vjp_type(self.module, self.fn.type, self.config.sources, self.config.wrt)

    def names(self) -> tuple[str, str]:
        return vjp_name(self.fn.name, self.config), pullback_name(self.fn.name, self.config)

    def record_names(self, label: str) -> tuple[str, str]:
        fn, config = self.fn.name, self.config
        return checkpoints_name(fn, label, config, "PB"), trace_name(fn, label, config, "PB")

    def linear_map_type(self, closure: FunctionType, record: Type) -> FunctionType:
        return FunctionType((closure.params[0], record), closure.result)

    def callee_derivative(
        self, callee: Function, sources: tuple[int, ...], wrt: tuple[int, ...]
    ) -> tuple[Function, tuple[int, ...]]:
        return self.differentiator.vjp_for_call(callee, wrt, sources=sources)

    def emit_linear_map(self) -> None:
        PullbackEmitter(self).emit()


class PullbackEmitter:
    """Emits the body of the pullback: ``(seed, checkpoints) -> tangents of the wrt parameters``."""

    def __init__(self, reverse: ReverseEmitter) -> None:
        self.reverse = reverse
        self.module = reverse.module
        self.info = reverse.info
        self.pullback = reverse.linear_map
        self.adjoints: dict[Value, Symbolic] = {}

    def emit(self) -> None:
        reverse, fn, module = self.reverse, self.reverse.fn, self.module
        records = reverse.records
        calls = {inst: call.arguments for inst, call in reverse.calls.items()}
        liveness = compute_liveness(fn, self.info.is_active, calls, records)
        # The adjoints each pullback block receives: of the values live out of its block, and of
        # those its terminator passes to block arguments.
        self.incoming: dict[Block, tuple[Value, ...]] = {}
        for block in records:
            passed = [v for _, args in block.instructions[-1].successor_args() for v in args]
            wanted = dict.fromkeys([*liveness.live_out[block], *passed])
            self.incoming[block] = tuple(v for v in wanted if self.info.is_active(v))
        entry = self.pullback.add_block("bb0")
        self.seed = entry.add_argument(self.pullback.type.params[0], "seed")
        single = reverse.returns[0] if len(reverse.returns) == 1 else None
        self.blocks: dict[Block, Block] = {}
        backwards = [b for b in reversed(fn.blocks) if b in records]
        for block in backwards:
            pb = self.blocks[block] = entry if block is single else self.pullback.add_block()
            for v in self.incoming[block]:
                tangent = module.tangent_type(v.type)
                assert tangent is not None
                pb.add_argument(tangent)
        states: dict[Block, tuple[Builder, dict[Value, Symbolic]]] = {}
        for block in backwards:
            pb = self.blocks[block]
            b = self.b = Builder.at_end(pb, module)
            self.t = TangentBuilder(b, module, fn.span)
            self.fields = reverse.provisional_fields(block, b)
            arguments = pb.args[1:] if block is single else pb.args
            self.adjoints = dict(zip(self.incoming[block], arguments))
            term = block.instructions[-1]
            if isinstance(term, ReturnInst):
                self._seed(term)
            for inst in reversed(block.instructions[:-1]):
                if reverse.active(inst):
                    self._visit(inst)
            states[block] = (b, self.adjoints)
        pending = [v for _, adjoints in states.values() for a in adjoints.values() for v in leaves(a)]
        # Now, so that the records keep only what is read.
        eliminate_dead_code(self.pullback, keep=[*pending, *reverse.provisional_reads()])
        reverse.decide_records()
        for block in backwards:
            self._leave(block, *states[block])
        if single is None:
            exit_record = entry.add_argument(reverse.exit_type, "checkpoints")
            cases = [(records[r].label, self.blocks[r]) for r in reverse.returns]
            Builder.at_end(entry, module).switch_enum(exit_record, cases)
        eliminate_dead_code(self.pullback)

    def _seed(self, ret: ReturnInst) -> None:
        """The seed is the adjoint of the returned value (of its elements ``sources``, when the
        function returns several results: of those operands, when the tuple is built here)."""
        result_type, sources = self.reverse.fn.type.result, self.reverse.config.sources
        returned = ret.operands[0]
        owner = returned.owner if isinstance(returned, Result) else None
        adjoint = self.t.of_results(self.seed, result_type, sources)
        if several_results(result_type) and isinstance(owner, TupleInst) and owner.block is ret.block:
            for i, element in self.t.as_aggregate(adjoint, result_type).elements.items():
                self._accumulate(owner.operands[i], element)
        else:
            self._accumulate(returned, adjoint)

    def _leave(self, block: Block, b: Builder, adjoints: dict[Value, Symbolic]) -> None:
        """The end of ``block``'s pullback block: read the record, then return the tangents (the
        entry block) or go to the pullback block of the predecessor that ran."""
        reverse, module = self.reverse, self.module
        record = reverse.records[block]
        pb = self.blocks[block]
        record_arg = pb.add_argument(record.decl.type, "checkpoints") if record.present else None
        pred = reverse.bind_record(block, record_arg)
        t = TangentBuilder(b, module, reverse.fn.span)
        if block is reverse.fn.blocks[0]:
            args = [block.args[i] for i in reverse.config.wrt]
            tangents = [t.materialize(adjoints.get(a), a.type) for a in args]
            b.return_(tangents[0] if len(tangents) == 1 else b.tuple(*tangents))
            return
        for v, adjoint in adjoints.items():  # once here, not once per predecessor
            if isinstance(adjoint, Aggregate):
                adjoints[v] = t.materialize(adjoint, v.type)
        if len(record.preds) == 1:
            self._branch(b, block, record.preds[0], pred, adjoints)
            return
        assert pred is not None
        cases = []
        for p in record.preds:
            before = reverse.records[p]
            trampoline = self.pullback.add_block()
            payload = trampoline.add_argument(before.decl.type) if before.present else None
            self._branch(Builder.at_end(trampoline, module), block, p, payload, adjoints)
            cases.append((before.label, trampoline))
        b.switch_enum(pred, cases)

    def _branch(
        self, b: Builder, block: Block, pred: Block, record: Value | None, adjoints: dict[Value, Symbolic]
    ) -> None:
        """Go from ``block``'s pullback block to ``pred``'s, which ran before it: pass the adjoints
        of the values live out of ``pred``, adding those of the block arguments to the values
        ``pred`` passed for them (zero where none reached)."""
        t = TangentBuilder(b, self.module, self.reverse.fn.span)
        passed = edge_arguments(pred.instructions[-1], block)
        zeros: dict[Type, Value] = {}
        out: list[Value] = []
        for v in self.incoming[pred]:
            # An argument of ``block`` live out of ``pred`` (a loop's header, looping to itself) is
            # the value of the visit before: this visit's adjoint goes only to what was passed.
            total = None if v in block.args else adjoints.get(v)
            for op, arg in zip(passed, block.args):
                if op is v and arg in adjoints:
                    total = adjoints[arg] if total is None else t.add(total, adjoints[arg], v.type)
            out.append(t.materialize_sharing_zeros(total, v.type, zeros))
        if record is not None:
            out.append(record)
        b.br(self.blocks[pred], *out)

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
            result = self.adjoints.pop(inst.result, None)
            if result is None:
                return
            (pullback,) = [self.fields[i] for i in self.reverse.saved[inst]]
            call = self.reverse.calls[inst]
            tangents = b.apply(pullback, self.t.results(result, inst.result.type, call.sources))
            parts = (tangents,) if len(call.wrt) == 1 else b.destructure_tuple(tangents)
            for i, part in zip(call.wrt, parts):
                if self.info.is_active(call.arguments[i]):
                    self._accumulate(call.arguments[i], part)
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
        """Add ``adjoint`` to ``v``'s; only active values have adjoints (the others' are dropped)."""
        if adjoint is None or not self.info.is_active(v):
            return
        old = self.adjoints.get(v)
        self.adjoints[v] = adjoint if old is None else self.t.add(old, adjoint, v.type)
