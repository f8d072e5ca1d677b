"""Reverse mode: the VJP of a function and its pullback (SIL-SPEC §6, after Swift's VJPCloner and
PullbackCloner).

The VJP computes the original and keeps what the pullback needs in checkpoints records, one per
block visited, as ``differentiation/primal.py`` does for both modes (the callees' VJPs, and their
pullbacks), following the plan of ``differentiation/linear_map_info.py``.

The pullback has one block per block of the original. It walks that block's active instructions
backwards, one ``visit_`` method per instruction class, holding adjoints symbolically
(``differentiation/tangents.py``); fan-out accumulates with ``fadd``; inactive code is not
replayed. Then it goes to the pullback block of the predecessor that ran (read from the record's
trace), passing the adjoints of the values live there, with the adjoints of its own block
arguments added to the values the predecessor passed for them. Loops in the original are loops in
the pullback, one trip per record.
"""

from __future__ import annotations

from collections.abc import Callable

from differentiation.linear_map_info import Mode, edge_arguments, switch_payload
from differentiation.naming import pullback_name, vjp_name
from differentiation.primal import DerivativeEmitter, LinearMapEmitter
from differentiation.rules import RULES, fit_cotangent
from differentiation.tangents import (
    Aggregate,
    Symbolic,
    TangentBuilder,
    Zeros,
    leaf_shapes,
    misses_a_tensor,
)
from differentiation.visitors import AdjointPuller
from sil import derivative_types as dt
from sil.builder import Builder
from sil.instructions import ApplyInst, BuiltinInst, ReturnInst
from sil.ir import Block, Value
from sil.transforms.dce import eliminate_dead_code

REVERSE = Mode("vjp", "pullback", "PB", dt.vjp_type, vjp_name, pullback_name)


class PullbackEmitter(LinearMapEmitter, AdjointPuller[Symbolic]):
    """Emits the body of the pullback: ``(seed, checkpoints) -> tangents of the wrt parameters``."""

    t: TangentBuilder

    def emit(self) -> None:
        fn, module, plan = self.fn, self.module, self.plan
        records, returns = plan.records, plan.returns
        entry = self.linear_map.add_block("bb0")
        seed = entry.add_argument(self.linear_map.type.params[0], "seed")
        single = returns[0] if len(returns) == 1 else None
        self.blocks: dict[Block, Block] = {}
        backwards = [b for b in reversed(fn.blocks) if b in records]
        for block in backwards:
            pb = self.blocks[block] = entry if block is single else self.linear_map.add_block()
            for v in plan.incoming[block]:
                tangent = module.tangent_type(v.type)
                assert tangent is not None
                pb.add_argument(tangent)
        for block in backwards:
            pb = self.blocks[block]
            arguments = pb.args[1:] if block is single else pb.args
            self.adjoints = dict(zip(plan.incoming[block], arguments))
            record = records[block]
            record_arg = pb.add_argument(record.decl.type, "checkpoints") if record.present else None
            pred = self.start_block(block, Builder.at_end(pb, module), record_arg)
            term = block.instructions[-1]
            if isinstance(term, ReturnInst):  # the seed is the adjoint of the returned value
                result_type = fn.type.result
                self.seed(term, self.t.of_results(seed, result_type, self.config.sources), result_type)
            for inst in reversed(plan.active_instructions[block]):
                self.visit(inst)
            self._leave(block, pred)
        if single is None:
            exit_record = entry.add_argument(plan.exit_type, "checkpoints")
            cases = [(records[r].label, self.blocks[r]) for r in returns]
            Builder.at_end(entry, module).switch_enum(exit_record, cases)
        eliminate_dead_code(self.linear_map)

    def _leave(self, block: Block, pred: Value | None) -> None:
        """The end of ``block``'s pullback block: return the tangents (the entry block) or go to
        the pullback block of the predecessor that ran (``pred``: the record's trace)."""
        module, b, t, adjoints = self.module, self.b, self.t, self.adjoints
        record = self.plan.records[block]
        if block is self.fn.blocks[0]:
            args = [block.args[i] for i in self.config.wrt]
            zeros: Zeros = {}
            tangents = [
                self.tangent_or_zero(t, adjoints.get(a), a, zeros, self.own_shape(block, a)) for a in args
            ]
            b.return_(tangents[0] if len(tangents) == 1 else b.tuple(*tangents))
            return
        for v, adjoint in adjoints.items():  # once here, not once per predecessor
            if isinstance(adjoint, Aggregate) and not misses_a_tensor(module, adjoint, v.type):
                adjoints[v] = t.materialize(adjoint, v.type)
        if len(record.preds) == 1:
            self._branch(b, block, record.preds[0], pred)
            return
        assert pred is not None
        cases = []
        for p in record.preds:
            before = self.plan.records[p]
            trampoline = self.linear_map.add_block()
            payload = trampoline.add_argument(before.decl.type) if before.present else None
            self._branch(Builder.at_end(trampoline, module), block, p, payload)
            cases.append((before.label, trampoline))
        b.switch_enum(pred, cases)

    def _branch(self, b: Builder, block: Block, pred: Block, record: Value | None) -> None:
        """Go from ``block``'s pullback block to ``pred``'s, which ran before it: pass the adjoints
        of the values live out of ``pred``, adding those of the block arguments to the values
        ``pred`` passed for them (zero where none reached)."""
        t, adjoints = TangentBuilder(b, self.module, self.fn.span, self.zeros), self.adjoints
        passed = edge_arguments(pred.instructions[-1], block)
        zeros: Zeros = {}
        out: list[Value] = []
        switched = switch_payload(pred.instructions[-1], block)
        for v in self.plan.incoming[pred]:
            # An argument of ``block`` live out of ``pred`` (a loop's header, looping to itself) is
            # the value of the visit before: this visit's adjoint goes only to what was passed.
            total = None if v in block.args else adjoints.get(v)
            for op, arg in zip(passed, block.args):
                if op is v and arg in adjoints:
                    total = adjoints[arg] if total is None else t.add(total, adjoints[arg], v.type)
            if switched is not None and switched[0] is v and block.args[0] in adjoints:
                # The payload ``block`` took out of the enum ``v``: its adjoint is ``v``'s, at the case.
                payload = block.args[0]
                shapes = None
                if misses_a_tensor(self.module, adjoints[payload], payload.type):
                    shapes = leaf_shapes(b, self.own_shape(block, payload)())
                adjoint = t.enum_case(v.type, switched[1], adjoints[payload], payload.type, shapes)
                if adjoint is not None:
                    total = adjoint if total is None else t.add(total, adjoint, v.type)
            out.append(self.tangent_or_zero(t, total, v, zeros, self._shape_in(b, record, pred, v)))
        if record is not None:
            out.append(record)
        b.br(self.blocks[pred], *out)

    def _shape_in(self, b: Builder, record: Value | None, pred: Block, v: Value) -> Callable[[], Value]:
        """How to read ``shape(v)`` from ``record``, ``pred``'s, at ``b``."""

        def read() -> Value:
            assert record is not None
            return b.struct_extract(record, self.plan.zero_shape(pred, v).name)

        return read

    # --- instructions, backwards ---------------------------------------------------------------
    def visit_BuiltinInst(self, inst: BuiltinInst) -> None:
        """``%r = builtin "f"(%x, %y)``: ``adj[x] += adj[r] * df/dx``, ``adj[y] += adj[r] * df/dy``,
        by the builtin's rule (``rules.py``) from what its record keeps; for the operands whose
        cotangent the pullback uses (``LinearMapInfo.operands``)."""
        adjoint = self.adjoints.pop(inst.result, None)
        wanted = self.plan.operands[inst]
        if adjoint is None or not any(wanted):
            if adjoint is None and self.zeros is not None:
                self.zeros.symbolic += 1
            return
        b = self.b
        seed = self.t.materialize(adjoint, inst.result.type)
        saved = self.saved(inst)
        cotangents = RULES[inst.name].pullback(b, seed, saved, wanted)
        for op, cotangent in zip(inst.operands, cotangents):
            self.accumulate(op, fit_cotangent(b, cotangent, op.type))

    def visit_ApplyInst(self, inst: ApplyInst) -> None:
        """``%r = apply %f(%x, …)``: ``(adj[x], …) += pullback_f(adj[r])``, the callee's pullback its
        VJP returned (kept in the record), of the results the call is differentiated for."""
        result = self.adjoints.pop(inst.result, None)
        if result is None:
            if self.zeros is not None:
                self.zeros.symbolic += 1
            return
        b, call = self.b, self.plan.calls[inst]
        pullback = self.saved(inst)[0]
        tangents = b.apply(pullback, self.t.results(result, inst.result.type, call.sources))
        parts = (tangents,) if len(call.wrt) == 1 else b.destructure_tuple(tangents)
        for i, part in zip(call.wrt, parts):
            self.accumulate(call.arguments[i], part)


class ReverseEmitter(DerivativeEmitter):
    """Emits the VJP and the pullback of one function for one configuration."""

    mode = REVERSE

    def emit_linear_map(self) -> None:
        PullbackEmitter(self).emit()
