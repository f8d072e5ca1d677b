"""Forward mode: the JVP of a function and its differential (SIL-SPEC §6, after Swift's JVPCloner).

The JVP computes the original and keeps what the differential needs, as ``differentiation/primal.py``
does for both modes (the same rules save the same partials; active calls call the callees' JVPs),
following the plan of ``differentiation/linear_map_info.py``. The differential takes the tangents
of the ``wrt`` parameters and pushes them forward through the active instructions, in order, one
``visit_`` method per instruction class (``DifferentialEmitter``); with control flow, block by block
along the path the records describe (``DifferentialWalk``).
"""

from __future__ import annotations

from collections.abc import Callable

from differentiation.linear_map_info import PRED_FIELD, Mode, edge_arguments, switch_payload
from differentiation.naming import differential_name, jvp_name, path_name
from differentiation.primal import DerivativeEmitter, LinearMapEmitter
from differentiation.rules import RULES
from differentiation.tangents import (
    Aggregate,
    Symbolic,
    TangentBuilder,
    Zeros,
    leaf_shapes,
    misses_a_tensor,
    tensor_leaves,
)
from differentiation.visitors import TangentPusher
from sil import derivative_types as dt
from sil.builder import Builder
from sil.diagnostics import SILError
from sil.instructions import ApplyInst, BuiltinInst, ReturnInst
from sil.ir import Block, EnumCase, EnumDecl, Value
from sil.transforms.dce import eliminate_dead_code
from sil.types import TupleType, Type

FORWARD = Mode("jvp", "differential", "DF", dt.jvp_type, jvp_name, differential_name)


class DifferentialEmitter(LinearMapEmitter, TangentPusher[Symbolic]):
    """Emits the body of the differential: ``(tangents of the wrt parameters, checkpoints) ->
    the result's tangent``."""

    t: TangentBuilder

    def emit(self) -> None:
        fn, config = self.fn, self.config
        entry = fn.blocks[0]
        start = self.linear_map.add_block("bb0")
        self.dx: dict[Value, Symbolic] = {}
        for i in config.wrt:
            arg = entry.args[i]
            self.dx[arg] = start.add_argument(self.linear_map.type.params[len(self.dx)], f"d{arg.name or i}")
        if len(self.plan.records) == 1:  # one block: the record is all there is
            record = start.add_argument(self.plan.exit_type, "checkpoints")
            self.push(entry, Builder.at_end(start, self.module), dict(self.dx), record)
        else:
            DifferentialWalk(self, start).emit()
        eliminate_dead_code(self.linear_map)

    def push(
        self, block: Block, b: Builder, tangents: dict[Value, Symbolic], record: Value | None
    ) -> dict[Value, Symbolic]:
        """Push the tangents through ``block``'s active instructions (the differential's code for
        one visit of it, reading ``record``) and return them; where the block returns, the code
        returns the result's tangent."""
        fn, config = self.fn, self.config
        self.tangents = tangents
        self.start_block(block, b, record)
        for inst in self.plan.active_instructions[block]:
            self.visit(inst)
        ret = block.instructions[-1]
        if isinstance(ret, ReturnInst):
            out = self.returned(ret, fn.type.result, config.sources)
            shapes = None  # a tensor's zero, alone or in a tuple or struct, is made to its shape
            if misses_a_tensor(self.module, out, fn.type.result):
                shapes = leaf_shapes(b, self.own_shape(block, ret.operands[0])())
            b.return_(self.t.results(out, fn.type.result, config.sources, shapes))
        return tangents

    # --- instructions, forwards ----------------------------------------------------------------
    def visit_BuiltinInst(self, inst: BuiltinInst) -> None:
        """``%r = builtin "f"(%x, %y)``: ``dr = df/dx * dx + df/dy * dy``, by the builtin's rule
        (``rules.py``) from what its record keeps; not emitted where nothing uses ``dr``
        (``LinearMapInfo.operands``)."""
        present = self.plan.operands[inst]
        if self.zeros is not None:
            self._count_zeros(inst, present)
        if not any(present):
            return
        t, tangents = self.t, self.tangents
        operands = [
            None if (s := tangents.get(op)) is None else t.materialize(s, op.type) for op in inst.operands
        ]
        assert tuple(o is not None for o in operands) == present, inst
        saved = self.saved(inst)
        result = RULES[inst.name].differential(self.b, operands, saved)
        if result is not None:
            tangents[inst.result] = result

    def _count_zeros(self, inst: BuiltinInst, present: tuple[bool, ...]) -> None:
        """The zero tangents of ``inst``'s active operands, left out of its tangent code (see
        ``ZeroCounts``); none where the tangent code is left out because nothing uses it."""
        assert self.zeros is not None
        absent = [op not in self.tangents for op in inst.operands if self.is_active(op)]
        if any(present) or all(absent):
            self.zeros.symbolic += sum(absent)

    def visit_ApplyInst(self, inst: ApplyInst) -> None:
        """``%r = apply %f(%x, …)``: ``dr = differential_f(dx, …)``, the callee's differential its JVP
        returned (kept in the record), of the parameters it covers."""
        call, t, tangents = self.plan.calls[inst], self.t, self.tangents
        differential = self.saved(inst)[0]
        ins = [t.materialize(tangents.get(call.arguments[i]), call.arguments[i].type) for i in call.wrt]
        tangents[inst.result] = t.of_results(self.b.apply(differential, *ins), inst.result.type, call.sources)


class DifferentialWalk:
    """The differential of a function with control flow.

    The JVP's records describe the path backwards (each record holds its predecessor's), and a
    differential must push tangents forwards. So the differential first walks the records from
    the exit to the entry, turning them into a path enum (``_AD__f__DFPath__…``) whose head is
    the block to run next, with its record, and whose tail is the rest. Then it runs one block
    of tangent code per block of the original, each taking the next from the path, until the
    block that returns. The tangents of values live across blocks are block arguments.
    """

    def __init__(self, emitter: DifferentialEmitter, start: Block) -> None:
        forward = self.forward = emitter.emitter
        self.emitter = emitter
        self.module = forward.module
        self.linear_map = forward.linear_map
        self.start = start
        self.records = forward.records
        self.incoming = forward.plan.incoming
        fn = forward.fn
        self.blocks = [b for b in fn.blocks if b in self.records]
        labels = {r.label for r in self.records.values()}
        self.end = "end"
        while self.end in labels:
            self.end += "_"
        self.path = EnumDecl(path_name(fn.name, forward.config))
        if self.path.name in forward.module.types:
            raise SILError.at(fn.span, f"cannot synthesize type '{self.path.name}': the name is taken")
        entry = fn.blocks[0]
        self.path.cases = [EnumCase(self.end)] + [
            EnumCase(r.label, self._payload_type(b)) for b, r in self.records.items() if b is not entry
        ]
        forward.differentiator.add_type(self.path)
        self._unreachable: Block | None = None

    def emit(self) -> None:
        forward, module = self.forward, self.module
        entry = forward.fn.blocks[0]
        path_type = self.path.type
        # The entry's walk block would only go on to its tangent code, which takes the same.
        self.walks = {b: self.linear_map.add_block() for b in reversed(self.blocks) if b is not entry}
        self.pushes: dict[Block, Block] = {}
        states: dict[Block, tuple[Builder, dict[Value, Symbolic], Value, dict[int, Value]]] = {}
        for block in self.blocks:
            push = self.pushes[block] = self.linear_map.add_block()
            tangents = dict(self.emitter.dx) if block is entry else {}
            for v in self.incoming[block] if block is not entry else ():
                tangent = module.tangent_type(v.type)
                assert tangent is not None
                tangents[v] = push.add_argument(tangent)
            record = self.records[block]
            record_arg = push.add_argument(record.decl.type, "checkpoints") if record.present else None
            rest = push.add_argument(path_type, "path")
            b = Builder.at_end(push, module)
            tangents = self.emitter.push(block, b, tangents, record_arg)
            states[block] = (b, tangents, rest, dict(self.emitter.fields))
        self.walks[entry] = self.pushes[entry]
        for block in self.blocks:
            if not isinstance(block.instructions[-1], ReturnInst):
                self._next(block, *states[block])
        for block in self.blocks:
            if block is not entry:
                self._walk(block)
        b = Builder.at_end(self.start, module)
        checkpoints = self.start.add_argument(forward.exit_type, "checkpoints")
        end = b.enum(path_type, self.end)
        returns = forward.returns
        if len(returns) == 1:
            b.br(self.walks[returns[0]], checkpoints, end)
        else:
            self._switch_to_walks(b, checkpoints, returns, end)

    def _switch_to_walks(self, b: Builder, trace: Value, blocks: list[Block], path: Value) -> None:
        """Switch on ``trace``, whose cases name ``blocks``, to the walk block of the one that ran,
        passing it that block's record (the case's payload) and ``path``."""
        cases = []
        for block in blocks:
            trampoline = self.linear_map.add_block()
            record = self.records[block]
            payload = [trampoline.add_argument(record.decl.type)] if record.present else []
            Builder.at_end(trampoline, self.module).br(self.walks[block], *payload, path)
            cases.append((record.label, trampoline))
        b.switch_enum(trace, cases)

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
        if record_arg is not None and record.has_pred_field:
            pred = b.struct_extract(record_arg, PRED_FIELD)
        if record.trace is None:
            (p,) = record.preds
            b.br(self.walks[p], *([pred] if pred is not None else []), path)
            return
        assert pred is not None
        self._switch_to_walks(b, pred, record.preds, path)

    def _next(
        self, block: Block, b: Builder, tangents: dict[Value, Symbolic], rest: Value, fields: dict[int, Value]
    ) -> None:
        """The end of ``block``'s tangent code: take the next block from the path, and go to its
        code with the tangents it receives (a tensor's zero made to the shape ``block``'s record
        keeps, in ``fields``)."""
        module = self.module
        t = TangentBuilder(b, module, self.forward.fn.span, self.emitter.zeros)
        for v, s in tangents.items():  # once here, not once per successor
            if isinstance(s, Aggregate) and not misses_a_tensor(module, s, v.type):
                tangents[v] = t.materialize(s, v.type)
        cases = []
        successors = [s for s in dict.fromkeys(block.successors()) if s in self.records]
        for succ in successors:
            trampoline = self.linear_map.add_block()
            payload = trampoline.add_argument(self._payload_type(succ))
            tb = Builder.at_end(trampoline, module)
            if self.records[succ].present:
                record, after = tb.destructure_tuple(payload)
                tail: list[Value] = [record, after]
            else:
                tail = [payload]
            passed = edge_arguments(block.instructions[-1], succ)
            edge: dict[Value, Value] = dict(zip(succ.args, passed))
            switched = switch_payload(block.instructions[-1], succ)
            tt = TangentBuilder(tb, module, self.forward.fn.span, self.emitter.zeros)
            zeros: Zeros = {}
            out: list[Value] = []
            for v in self.incoming[succ]:
                source = edge.get(v, v)
                shape = self._shape_kept(fields, block, source)
                tangent = tangents.get(source)
                if switched is not None and v is succ.args[0]:  # a payload: the enum's tangent's
                    enum, case = switched
                    shapes = None
                    if tensor_leaves(module, v.type):  # for its zero: kept by ``succ``'s record
                        kept = self.forward.plan.zero_shape(succ, v).name
                        shapes = leaf_shapes(tb, tb.struct_extract(tail[0], kept))
                    tangent = tt.enum_payload(tangents.get(enum), enum.type, case, v.type, shapes)
                    if tangent is None and shapes is not None:  # the enum's is zero: so is this
                        tangent = tt.materialize(None, v.type, shapes)
                out.append(self.emitter.tangent_or_zero(tt, tangent, source, zeros, shape))
            tb.br(self.pushes[succ], *out, *tail)
            cases.append((self.records[succ].label, trampoline))
        b.switch_enum(rest, cases, self._unreachable_block())

    def _shape_kept(self, fields: dict[int, Value], block: Block, v: Value) -> Callable[[], Value]:
        plan = self.forward.plan
        return lambda: fields[plan.zero_shape_index(block, v)]

    def _unreachable_block(self) -> Block:
        """Where a path that cannot follow goes (the switch on the path must name every case)."""
        if self._unreachable is None:
            self._unreachable = self.linear_map.add_block()
            Builder.at_end(self._unreachable, self.module).unreachable()
        return self._unreachable


class ForwardEmitter(DerivativeEmitter):
    """Emits the JVP and the differential of one function for one configuration."""

    mode = FORWARD

    def emit_linear_map(self) -> None:
        DifferentialEmitter(self).emit()
