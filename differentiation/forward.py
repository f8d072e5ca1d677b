"""Forward mode: the JVP of a function and its differential (SIL-SPEC §6, after Swift's JVPCloner).

The JVP computes the original and keeps what the differential needs, as ``differentiation/primal.py``
does for both modes (the same rules save the same partials; active calls call the callees' JVPs).
The differential takes the tangents of the ``wrt`` parameters and pushes them forward through the
active instructions, in order; with control flow, block by block along the path the records
describe (``DifferentialWalk``).
"""

from __future__ import annotations

from analysis.liveness import compute_liveness
from differentiation.naming import checkpoints_name, differential_name, jvp_name, path_name, trace_name
from differentiation.primal import PRED_FIELD, DerivativeEmitter, edge_arguments
from differentiation.rules import RULES
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
from sil.ir import Block, EnumCase, EnumDecl, Function, Result, Value
from sil.transforms.dce import eliminate_dead_code
from sil.types import FunctionType, TupleType, Type


class ForwardEmitter(DerivativeEmitter):
    """Emits the JVP and the differential of one function for one configuration."""

    linear_map_kind = "differential"
    derivative_kind = "jvp"

    def derivative_type(self) -> FunctionType:
        return dt.jvp_type(self.module, self.fn.type, self.config.sources, self.config.wrt)

    def names(self) -> tuple[str, str]:
        return jvp_name(self.fn.name, self.config), differential_name(self.fn.name, self.config)

    def record_names(self, label: str) -> tuple[str, str]:
        fn, config = self.fn.name, self.config
        return checkpoints_name(fn, label, config, "DF"), trace_name(fn, label, config, "DF")

    def linear_map_type(self, closure: FunctionType, record: Type) -> FunctionType:
        return FunctionType((*closure.params, record), closure.result)

    def callee_derivative(
        self, callee: Function, sources: tuple[int, ...], wrt: tuple[int, ...]
    ) -> tuple[Function, tuple[int, ...]]:
        return self.differentiator.jvp_for_call(callee, wrt, sources=sources)

    def emit_linear_map(self) -> None:
        fn, config = self.fn, self.config
        entry = fn.blocks[0]
        start = self.linear_map.add_block("bb0")
        self.dx: dict[Value, Symbolic] = {}
        for i in config.wrt:
            arg = entry.args[i]
            self.dx[arg] = start.add_argument(self.linear_map.type.params[len(self.dx)], f"d{arg.name or i}")
        if len(self.records) == 1:  # one block: the record is all there is
            self._push(entry, Builder.at_end(start, self.module), dict(self.dx))
            eliminate_dead_code(self.linear_map, keep=self.provisional_reads())
            self.decide_records()
            self.bind_record(entry, start.add_argument(self.exit_type, "checkpoints"))
        else:
            DifferentialWalk(self, start).emit()
        eliminate_dead_code(self.linear_map)

    def _push(self, block: Block, b: Builder, tangents: dict[Value, Symbolic]) -> dict[Value, Symbolic]:
        """Push the tangents through ``block``'s active instructions (the differential's code for
        one visit of it), and return them, or the result's tangent when the block returns."""
        fn, config = self.fn, self.config
        t = TangentBuilder(b, self.module, fn.span)
        fields = self.provisional_fields(block, b)
        for inst in block.instructions[:-1]:
            if not self.active(inst):
                continue
            if isinstance(inst, BuiltinInst):
                operands = [
                    None if (s := tangents.get(op)) is None else t.materialize(s, op.type)
                    for op in inst.operands
                ]
                saved = [fields[i] for i in self.saved[inst]]
                result = RULES[inst.name].differential(b, operands, saved)
                if result is not None:
                    tangents[inst.result] = result
            elif isinstance(inst, ApplyInst):
                call = self.calls[inst]
                (differential,) = [fields[i] for i in self.saved[inst]]
                ins = [
                    t.materialize(tangents.get(call.arguments[i]), call.arguments[i].type) for i in call.wrt
                ]
                tangents[inst.result] = t.of_results(
                    b.apply(differential, *ins), inst.result.type, call.sources
                )
            elif isinstance(inst, TupleInst):
                elements = {i: s for i, op in enumerate(inst.operands) if (s := tangents.get(op)) is not None}
                if elements:
                    tangents[inst.result] = Aggregate(elements)
            elif isinstance(inst, TupleExtractInst):
                element = t.element(tangents.get(inst.operands[0]), inst.operands[0].type, inst.index)
                if element is not None:
                    tangents[inst.result] = element
            elif isinstance(inst, DestructureTupleInst):
                whole = tangents.get(inst.operands[0])
                for i, r in enumerate(inst.results):
                    element = t.element(whole, inst.operands[0].type, i)
                    if element is not None:
                        tangents[r] = element
            elif isinstance(inst, StructInst):
                elements = {i: s for i, op in enumerate(inst.operands) if (s := tangents.get(op)) is not None}
                if elements:
                    tangents[inst.result] = Aggregate(elements)
            elif isinstance(inst, StructExtractInst):
                index = field_index(self.module, inst)
                element = t.element(tangents.get(inst.operands[0]), inst.operands[0].type, index)
                if element is not None:
                    tangents[inst.result] = element
            elif isinstance(inst, DestructureStructInst):
                whole = tangents.get(inst.operands[0])
                for i, r in enumerate(inst.results):
                    element = t.element(whole, inst.operands[0].type, i)
                    if element is not None:
                        tangents[r] = element
            else:
                raise SILError.at(inst.span, f"cannot differentiate '{inst.opname}' yet")
        ret = block.instructions[-1]
        if not isinstance(ret, ReturnInst):
            return tangents
        returned = ret.operands[0]
        owner = returned.owner if isinstance(returned, Result) else None
        out = tangents.get(returned)
        if several_results(fn.type.result) and isinstance(owner, TupleInst) and owner.block is block:
            # As in reverse mode, only the source elements are differentiated: the returned tuple
            # itself is not active when built here, so its elements are read where it was made.
            elements = {i: s for i in config.sources if (s := tangents.get(owner.operands[i])) is not None}
            out = Aggregate(elements)
        b.return_(t.results(out, fn.type.result, config.sources))
        return tangents


class DifferentialWalk:
    """The differential of a function with control flow.

    The JVP's records describe the path backwards (each record holds its predecessor's), and a
    differential must push tangents forwards. So the differential first walks the records from
    the exit to the entry, turning them into a path enum (``_AD__f__DFPath__…``) whose head is
    the block to run next, with its record, and whose tail is the rest. Then it runs one block
    of tangent code per block of the original, each taking the next from the path, until the
    block that returns. The tangents of values live across blocks are block arguments.
    """

    def __init__(self, forward: ForwardEmitter, start: Block) -> None:
        self.forward = forward
        self.module = forward.module
        self.info = forward.info
        self.differential = forward.linear_map
        self.start = start
        self.records = forward.records
        fn = forward.fn
        self.blocks = [b for b in fn.blocks if b in self.records]
        labels = {r.label for r in self.records.values()}
        self.end = "end"
        while self.end in labels:
            self.end += "_"
        self.path = EnumDecl(path_name(fn.name, forward.config))
        if self.path.name in forward.module.types:
            raise SILError.at(fn.span, f"cannot synthesize type '{self.path.name}': the name is taken")
        forward.differentiator.add_type(self.path)
        calls = {inst: call.arguments for inst, call in forward.calls.items()}
        liveness = compute_liveness(fn, self.info.is_active, calls, self.records)
        # The tangents each block's code receives: of the values live into it and of its arguments.
        self.incoming = {
            b: tuple(v for v in (*liveness.live_in[b], *b.args) if self.info.is_active(v))
            for b in self.blocks
        }
        self._unreachable: Block | None = None

    def emit(self) -> None:
        forward, module = self.forward, self.module
        entry = forward.fn.blocks[0]
        path_type = self.path.type
        # The entry's walk block would only go on to its tangent code, which takes the same.
        self.walks = {b: self.differential.add_block() for b in reversed(self.blocks) if b is not entry}
        self.pushes: dict[Block, Block] = {}
        states: dict[Block, tuple[Builder, dict[Value, Symbolic]]] = {}
        for block in self.blocks:
            push = self.pushes[block] = self.differential.add_block()
            tangents = dict(forward.dx) if block is entry else {}
            for v in self.incoming[block] if block is not entry else ():
                tangent = module.tangent_type(v.type)
                assert tangent is not None
                tangents[v] = push.add_argument(tangent)
            b = Builder.at_end(push, module)
            states[block] = (b, forward._push(block, b, tangents))
        self.walks[entry] = self.pushes[entry]
        pending = [v for _, tangents in states.values() for s in tangents.values() for v in leaves(s)]
        eliminate_dead_code(self.differential, keep=[*pending, *forward.provisional_reads()])
        forward.decide_records()
        self.path.cases = [EnumCase(self.end)] + [
            EnumCase(r.label, self._payload_type(b)) for b, r in self.records.items() if b is not entry
        ]
        for block in self.blocks:
            record = self.records[block]
            push = self.pushes[block]
            record_arg = push.add_argument(record.decl.type, "checkpoints") if record.present else None
            rest = push.add_argument(path_type, "path")
            forward.bind_record(block, record_arg)
            if not isinstance(block.instructions[-1], ReturnInst):
                self._next(block, *states[block], rest)
        for block in self.blocks:
            if block is not entry:
                self._walk(block)
        b = Builder.at_end(self.start, module)
        checkpoints = self.start.add_argument(forward.exit_type, "checkpoints")
        end = b.enum(path_type, self.end)
        returns = forward.returns
        if len(returns) == 1:
            b.br(self.walks[returns[0]], checkpoints, end)
            return
        cases = []
        for r in returns:
            trampoline = self.differential.add_block()
            record = self.records[r]
            payload = [trampoline.add_argument(record.decl.type)] if record.present else []
            Builder.at_end(trampoline, module).br(self.walks[r], *payload, end)
            cases.append((record.label, trampoline))
        b.switch_enum(checkpoints, cases)

    def _payload_type(self, block: Block) -> Type:
        record = self.records[block]
        if record.present:
            return TupleType((record.decl.type, self.path.type))
        return self.path.type

    def _walk(self, block: Block) -> None:
        """The walk block of ``block``: put it at the head of the path, then go to the walk block
        of its predecessor (for the entry, its tangent code)."""
        module = self.module
        walk = self.walks[block]
        record = self.records[block]
        record_arg = walk.add_argument(record.decl.type, "checkpoints") if record.present else None
        rest = walk.add_argument(self.path.type, "path")
        b = Builder.at_end(walk, module)
        payload = rest if record_arg is None else b.tuple(record_arg, rest)
        path = b.enum(self.path.type, record.label, payload)
        pred = None
        if record_arg is not None and record.decl.fields and record.decl.fields[0].name == PRED_FIELD:
            pred = b.struct_extract(record_arg, PRED_FIELD)
        if record.trace is None:
            (p,) = record.preds
            b.br(self.walks[p], *([pred] if pred is not None else []), path)
            return
        assert pred is not None
        cases = []
        for p in record.preds:
            trampoline = self.differential.add_block()
            before = self.records[p]
            payload_args = [trampoline.add_argument(before.decl.type)] if before.present else []
            Builder.at_end(trampoline, module).br(self.walks[p], *payload_args, path)
            cases.append((before.label, trampoline))
        b.switch_enum(pred, cases)

    def _next(self, block: Block, b: Builder, tangents: dict[Value, Symbolic], rest: Value) -> None:
        """The end of ``block``'s tangent code: take the next block from the path, and go to its
        code with the tangents it receives."""
        module = self.module
        t = TangentBuilder(b, module, self.forward.fn.span)
        for v, s in tangents.items():  # once here, not once per successor
            if isinstance(s, Aggregate):
                tangents[v] = t.materialize(s, v.type)
        cases = []
        successors = [s for s in dict.fromkeys(block.successors()) if s in self.records]
        for succ in successors:
            trampoline = self.differential.add_block()
            payload = trampoline.add_argument(self._payload_type(succ))
            tb = Builder.at_end(trampoline, module)
            if self.records[succ].present:
                record, after = tb.destructure_tuple(payload)
                tail: list[Value] = [record, after]
            else:
                tail = [payload]
            passed = edge_arguments(block.instructions[-1], succ)
            edge: dict[Value, Value] = dict(zip(succ.args, passed))
            tt = TangentBuilder(tb, module, self.forward.fn.span)
            zeros: dict[Type, Value] = {}
            out: list[Value] = []
            for v in self.incoming[succ]:
                out.append(tt.materialize_sharing_zeros(tangents.get(edge.get(v, v)), v.type, zeros))
            tb.br(self.pushes[succ], *out, *tail)
            cases.append((self.records[succ].label, trampoline))
        b.switch_enum(rest, cases, self._unreachable_block())

    def _unreachable_block(self) -> Block:
        """Where a path that cannot follow goes (the switch on the path must name every case)."""
        if self._unreachable is None:
            self._unreachable = self.differential.add_block()
            Builder.at_end(self._unreachable, self.module).unreachable()
        return self._unreachable
