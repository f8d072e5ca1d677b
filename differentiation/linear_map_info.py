"""Planning before emission (after Swift's ``LinearMapInfo``): which records and traces a
derivative keeps, and which fields each record has, decided from the original function, its
activity and the derivative rules before any code is emitted.

Each block that runs on the way to a return keeps a record (SIL-SPEC §6). Its fields are the
values its linear map reads: what each active builtin's rule saves (``Rule.keeps``) and each
active call's linear map, named after the value when the input named it, else ``partial_N`` or
``pullback_N``/``differential_N``; its field ``pred`` keeps the predecessor's record, or the trace
enum naming the predecessor that ran where there are several. A record is kept only where its
linear map reads something, so the plan also decides what the linear map will read: it follows
the linear map's code, block by block, as ``Dependences`` (``tangents.py``), without building it.
A saved value is read when the code reading it reaches what the linear map uses: a return, a
call (kept for its effects), and every tangent or adjoint a block's code ends with (what goes to
the parameters' tangents or to the next block's code; in a differential of one block, only what
it returns). So a partial of an operand whose tangent is zero, of a cotangent dropped at an
inactive operand or a ``@noDerivative`` field within the block, or a slot only the rule's other
linear map reads (``Kept``) is not kept. Records left with nothing to say are not declared (a
trace case then has no payload). The emitters only follow the plan: ``operands`` says for each
builtin which operands' derivatives its linear map handles (the others' code would be dead).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from analysis.activity import ActivityInfo, Config
from analysis.liveness import compute_liveness
from analysis.shapes import ShapeClasses
from differentiation.diagnostics import OPAQUE_CALL, VARIED_CLOSURE, resolve_bundle_callee, resolve_callee
from differentiation.naming import EXIT_BLOCK, block_label, checkpoints_name, trace_name
from differentiation.requests import registered_derivative
from differentiation.rules import RULES, Kept, kept_value
from differentiation.tangents import Dependences, Node, Shape, misses_a_tensor, tensor_leaves
from differentiation.visitors import AdjointPuller, TangentPusher
from sil.cfg import blocks_that_return, reverse_postorder
from sil.diagnostics import SILError, note
from sil.instructions import (
    ApplyInst,
    BuiltinInst,
    FloatLiteralInst,
    IntegerLiteralInst,
    ReturnInst,
    SwitchEnumInst,
    extractee_type,
)
from sil.ir import (
    Block,
    EnumCase,
    EnumDecl,
    FieldDecl,
    Function,
    Instruction,
    Module,
    Result,
    StructDecl,
    Value,
)
from sil.types import TENSOR_SHAPE, FunctionType, NominalType, TensorType, TupleType, Type

PRED_FIELD = "pred"


def leaf_shapes_type(module: Module, t: Type) -> Type:
    """What keeps the shapes a zero of ``t`` needs (``tangents.tensor_leaves``): one shape, or a
    tuple of them."""
    count = tensor_leaves(module, t)
    return TENSOR_SHAPE if count == 1 else TupleType((TENSOR_SHAPE,) * count)


def _shape_field_name(v: Value) -> str | None:
    """``x_shape`` for the shape of a value the input named ``x``."""
    return f"{v.name}_shape" if v.name is not None and not v.name.isdigit() else None


@attrs.frozen
class Mode:
    """What differs between the JVP and the VJP for planning and naming: the derivative's kind
    (``jvp``), what its linear map is called (``differential``), the tag of its records (``DF``),
    the derivative's type (SIL-SPEC §6) and names."""

    derivative: str
    linear_map: str
    tag: str
    derivative_type: Callable[[Module, FunctionType, tuple[int, ...], tuple[int, ...]], FunctionType]
    derivative_name: Callable[[str, Config], str]
    linear_map_name: Callable[[str, Config], str]


def edge_arguments(term: Instruction, succ: Block) -> list[Value]:
    """The values ``term`` passes to ``succ``'s arguments (none from a ``switch_enum``, whose
    payload is not a value of the branching block)."""
    for dest, args in term.successor_args():
        if dest is succ:
            return args
    return []


def switch_payload(term: Instruction, succ: Block) -> tuple[Value, str] | None:
    """The enum and the case whose payload ``term``, a ``switch_enum``, gives ``succ`` (as its
    argument), if it does."""
    if not isinstance(term, SwitchEnumInst) or not succ.args:
        return None
    cases = [case for case, dest in term.cases if dest is succ]
    if len(cases) != 1:
        return None
    return term.operands[0], cases[0]


def is_literal(v: Value) -> bool:
    return isinstance(v, Result) and isinstance(v.owner, FloatLiteralInst | IntegerLiteralInst)


@attrs.frozen
class ActiveCall:
    """What an active call differentiates: the values passed as the callee's parameters
    (``arguments``), the active ones (``asked``, what the derivative is asked for), the parameters
    its linear map takes or gives tangents for (``wrt``; more where a registered derivative covers
    more), the callee's results it carries tangents of (``sources``, SIL-SPEC §3), and its linear
    map's type. ``callee`` is None for a call of a ``@differentiable`` value's original
    (``bundle``), whose own derivative is used."""

    arguments: tuple[Value, ...]
    asked: tuple[int, ...]
    wrt: tuple[int, ...]
    sources: tuple[int, ...]
    linear_map_type: FunctionType
    callee: Function | None = None
    bundle: Value | None = None


@attrs.frozen
class Checkpoint:
    """A value a block's linear map may read: ``value`` of the original (an operand or a result,
    a literal being made again where it is read), or None for a value only the derivative has (a
    partial a rule computes, a callee's linear map)."""

    name: str
    type: Type
    value: Value | None = None
    shape_of: Value | None = None  # the value of the original whose shape this is

    @property
    def literal(self) -> bool:
        return self.value is not None and is_literal(self.value)


@attrs.define(eq=False)
class BlockRecord:
    """What one block of the original keeps for the linear map each time it runs."""

    block: Block
    label: str
    decl: StructDecl
    preds: list[Block]  # the predecessors that lead to a return, each once, in block order
    trace: EnumDecl | None = None  # with several predecessors
    checkpoints: list[Checkpoint] = attrs.field(factory=list)
    # The checkpoint of each value of the original kept, and of each ("shape", value) kept.
    kept: dict[Value | tuple[str, Value], int] = attrs.field(factory=dict)
    field_names: set[str] = attrs.field(factory=lambda: {PRED_FIELD})
    read: set[int] = attrs.field(factory=set)  # the checkpoints the linear map reads
    fields: list[int] = attrs.field(factory=list)  # those stored, in the record after ``pred``
    literals: list[int] = attrs.field(factory=list)  # those made again in the linear map
    present: bool = False  # whether the record exists

    def pred_field_type(self, records: dict[Block, BlockRecord]) -> Type | None:
        """The type of the record's ``pred`` field (the trace, or the one predecessor's record),
        or None when there is nothing to say about the predecessor."""
        if self.trace is not None:
            return self.trace.type
        if len(self.preds) == 1 and records[self.preds[0]].present:
            return records[self.preds[0]].decl.type
        return None

    @property
    def has_pred_field(self) -> bool:
        return bool(self.decl.fields) and self.decl.fields[0].name == PRED_FIELD


class LinearMapInfo:
    """The plan of one derivative: its records and traces, what each active instruction saves
    where (``saved``: a checkpoint index per slot of the rule, or the call's linear map), the
    active calls, the values whose derivatives cross into each block's linear-map code
    (``incoming``), and which operands' derivatives each builtin's linear map handles
    (``operands``)."""

    def __init__(self, module: Module, fn: Function, config: Config, info: ActivityInfo, mode: Mode) -> None:
        self.module, self.fn, self.config, self.info, self.mode = module, fn, config, info, mode
        self._active: dict[Value, bool] = {}
        self.order = reverse_postorder(fn)  # reachable blocks, each after its dominators
        self.labels = {b: block_label(i, b.name) for i, b in enumerate(fn.blocks)}
        reachable = set(self.order)
        self.returns = [b for b in fn.blocks if b in reachable and isinstance(b.terminator, ReturnInst)]
        self.exit_label = EXIT_BLOCK  # the virtual block several returns lead to: no block's name
        while self.exit_label in self.labels.values():
            self.exit_label += "_"
        self.records = self._plan_records()
        self.saved: dict[Instruction, list[int | None]] = {}
        self.calls: dict[Instruction, ActiveCall] = {}
        self.keeps: dict[Instruction, tuple[Kept, ...]] = {}
        self.needed: dict[Instruction, list[bool]] = {}  # each builtin's active operands
        # The active instructions of each block, in order: those with a derivative to emit.
        self.active_instructions: dict[Block, list[Instruction]] = {}
        self._counts = {"partial": 0, "shape": 0, mode.linear_map: 0}
        for block in self.order:
            if block in self.records:
                self._plan_checkpoints(block)
        self._shapes: ShapeClasses | None = None  # made when a builtin asks (``_reshaped``)
        self.incoming = self._incoming()
        self.operands: dict[Instruction, tuple[bool, ...]] = {}
        self._plan_reads()
        self._decide_records()

    def is_active(self, v: Value) -> bool:
        """``ActivityInfo.is_active``, asked once a value (the emitters ask it again and again)."""
        found = self._active.get(v)
        if found is None:
            found = self._active[v] = self.info.is_active(v)
        return found

    def active(self, inst: Instruction) -> bool:
        """Whether ``inst`` carries a derivative: a call, of some result it is differentiated for."""
        if isinstance(inst, ApplyInst):
            return bool(self.info.active_elements(inst.result))
        return any(self.is_active(r) for r in inst.results)

    @property
    def exit_type(self) -> NominalType:
        """The type of what the linear map is bound to: the return block's record, or the trace
        of the virtual exit block when there are several."""
        if len(self.returns) == 1:
            return self.records[self.returns[0]].decl.type
        return NominalType(self.record_names(self.exit_label)[1])

    def record_names(self, label: str) -> tuple[str, str]:
        """The record's and the trace enum's names for the block labelled ``label``."""
        fn, config, tag = self.fn.name, self.config, self.mode.tag
        return checkpoints_name(fn, label, config, tag), trace_name(fn, label, config, tag)

    # --- records and what they may keep ---------------------------------------------------------
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
                record_name, trace = self.record_names(label)
                record = BlockRecord(b, label, StructDecl(record_name), preds[b])
                if len(preds[b]) > 1:
                    record.trace = EnumDecl(trace)
                records[b] = record
        return records

    def _plan_checkpoints(self, block: Block) -> None:
        """The checkpoints of ``block``'s active instructions, in the order the derivative computes
        them (which numbers the unnamed ones)."""
        record = self.records[block]
        active = self.active_instructions[block] = [i for i in block.instructions[:-1] if self.active(i)]
        for inst in active:
            if isinstance(inst, ApplyInst):
                call = self.calls[inst] = self._plan_call(inst)
                self.saved[inst] = [
                    self._checkpoint(record, None, call.linear_map_type, self.mode.linear_map)
                ]
            elif isinstance(inst, BuiltinInst):
                rule = RULES.get(inst.name)
                if rule is None:
                    raise SILError.at(inst.span, f"cannot differentiate '{inst.name}' yet")
                needed = self.needed[inst] = [self.is_active(op) for op in inst.operands]
                keeps = self.keeps[inst] = rule.keeps([op.type for op in inst.operands])
                self.saved[inst] = [
                    self._slot(record, inst, k) if any(needed[i] for i in k.serves) else None for k in keeps
                ]

    def _slot(self, record: BlockRecord, inst: BuiltinInst, kept: Kept) -> int:
        """The checkpoint of one slot of ``inst``'s rule: a value of the original, a partial the
        rule computes, or a value's shape (one checkpoint a value, however many rules keep it)."""
        value = kept_value(inst, kept)
        if not kept.shape:
            return self._checkpoint(record, value, inst.result.type, "partial")
        assert value is not None
        return self._shape_checkpoint(record, value)

    def _shape_checkpoint(self, record: BlockRecord, value: Value) -> int:
        index = record.kept.get(("shape", value))
        if index is None:
            index = self._checkpoint(
                record, None, leaf_shapes_type(self.module, value.type), "shape", _shape_field_name(value)
            )
            record.checkpoints[index] = attrs.evolve(record.checkpoints[index], shape_of=value)
            record.kept[("shape", value)] = index
        return index

    def zero_needs_shape(self, block: Block, v: Value) -> bool:
        """Say that ``block``'s linear-map code makes a zero derivative of ``v`` (a tensor: its
        shape is kept in ``block``'s record, and read; a tuple or struct holding tensors: theirs).
        False for a value of another type, whose zero needs nothing."""
        if tensor_leaves(self.module, v.type) == 0:
            return False
        record = self.records[block]
        record.read.add(self._shape_checkpoint(record, v))
        return True

    def zero_shape(self, block: Block, v: Value) -> Checkpoint:
        """The checkpoint of ``block``'s record keeping ``shape(v)`` (see ``zero_needs_shape``)."""
        record = self.records[block]
        return record.checkpoints[record.kept[("shape", v)]]

    def zero_shape_index(self, block: Block, v: Value) -> int:
        """The index of ``zero_shape(block, v)`` in ``block``'s record."""
        return self.records[block].kept[("shape", v)]

    def _checkpoint(
        self, record: BlockRecord, value: Value | None, partial_type: Type, kind: str, name: str | None = None
    ) -> int:
        """The index of the checkpoint of ``record`` holding ``value`` (None: a new value of type
        ``partial_type``), added the first time it is kept. A field is named ``name``, else after
        its value when the input named it (``xx``), else ``partial_N``/``pullback_N``."""
        if value is not None:
            index = record.kept.get(value)
            if index is not None:
                return index
        if name is None and value is not None and value.name is not None and not value.name.isdigit():
            name = value.name
        field_type = partial_type if value is None else value.type
        if value is not None and is_literal(value):  # made again where it is read, not stored
            record.checkpoints.append(Checkpoint(name or "", field_type, value))
        else:
            while name is None or name in record.field_names:  # a value may be named partial_0
                name = f"{kind}_{self._counts[kind]}"
                self._counts[kind] += 1
            record.field_names.add(name)
            record.checkpoints.append(Checkpoint(name, field_type, value))
        index = len(record.checkpoints) - 1
        if value is not None:
            record.kept[value] = index
        return index

    def _plan_call(self, inst: ApplyInst) -> ActiveCall:
        """What an active call asks of its callee's derivative, and the type of its linear map:
        a registered derivative's (one for more parameters answers), else a synthesized one's."""
        module, kind = self.module, self.mode.derivative
        resolved = resolve_callee(module, inst)
        if resolved is None:
            through = resolve_bundle_callee(inst)
            if through is None:
                raise SILError.at(
                    inst.span,
                    OPAQUE_CALL,
                    [note(None, VARIED_CLOSURE)],
                )
            bundle_type = through.bundle.type
            assert isinstance(bundle_type, FunctionType)
            derivative_type = extractee_type(module, bundle_type, kind)
            wrt, sources = through.wrt, through.sources(module)
            linear_map = linear_map_type(derivative_type)
            return ActiveCall(through.arguments, wrt, wrt, sources, linear_map, bundle=through.bundle)
        callee = resolved.function
        sources = self.info.active_elements(inst.result)
        asked = tuple(i for i, a in enumerate(resolved.arguments) if self.is_active(a))
        found = registered_derivative(module, callee, Config(sources, asked), kind)
        if found is not None:
            derivative_type, covered = found[0].type, found[1]
        else:
            derivative_type, covered = self.mode.derivative_type(module, callee.type, sources, asked), asked
        linear_map = linear_map_type(derivative_type)
        return ActiveCall(resolved.arguments, asked, covered, sources, linear_map, callee=callee)

    # --- what the linear map reads --------------------------------------------------------------
    def _incoming(self) -> dict[Block, tuple[Value, ...]]:
        """The values whose derivatives each block's linear-map code receives: in a pullback, those
        of the values live out of the block and of those its terminator passes to block arguments;
        in a differential, those of the values live into it and of its arguments."""
        fn, is_active, module = self.fn, self.is_active, self.module
        if self.mode.linear_map == "differential" and len(self.records) == 1:
            return {}  # one block: the tangents of the parameters are all there is
        calls = {inst: call.arguments for inst, call in self.calls.items()}
        liveness = compute_liveness(fn, is_active, calls, self.records)
        incoming: dict[Block, tuple[Value, ...]] = {}
        for block in self.records:
            if self.mode.linear_map == "differential":
                wanted = dict.fromkeys([*liveness.live_in[block], *block.args])
            else:
                term = block.instructions[-1]
                passed = [v for _, args in term.successor_args() for v in args]
                passed += [  # a differentiable enum whose payload a successor takes
                    p[0]
                    for succ in term.successors()
                    if (p := switch_payload(term, succ)) is not None and module.tangent_type(p[0].type)
                ]
                wanted = dict.fromkeys([*liveness.live_out[block], *passed])
            incoming[block] = tuple(v for v in wanted if is_active(v))
        return incoming

    def _plan_reads(self) -> None:
        """Which checkpoints each linear map reads: it follows the linear map's code (``TangentFlow``
        or ``AdjointFlow``), then keeps the slots of the derivatives that reach what it uses."""
        deps = Dependences(self.module)
        flow: TangentFlow | AdjointFlow
        flow = TangentFlow(self, deps) if self.mode.linear_map == "differential" else AdjointFlow(self, deps)
        for block in self.records:
            flow.run(block)
        reached = deps.reached(flow.sinks)
        mode = self.mode.linear_map
        for inst, keeps in self.keeps.items():
            if isinstance(flow, TangentFlow):
                operands = flow.present[inst] if inst in reached else (False,) * len(inst.operands)
            else:
                operands = tuple([(inst, i) in reached for i in range(len(inst.operands))])
            self.operands[inst] = operands
            if keeps and any(operands):
                record = self._record_of(inst)
                reshaped = self._reshaped(inst)
                for k, index in zip(keeps, self.saved[inst]):
                    if index is not None and k.read(operands, mode, reshaped):
                        record.read.add(index)
        for inst in flow.calls_read:
            (index,) = self.saved[inst]
            assert index is not None
            self._record_of(inst).read.add(index)

    def _reshaped(self, inst: Instruction) -> tuple[bool, ...]:
        """For each operand of ``inst``, whether its shape may differ from its tensor result's."""
        r = inst.results[0]
        if not isinstance(r.type, TensorType):
            return (False,) * len(inst.operands)
        if self._shapes is None:
            self._shapes = ShapeClasses(self.fn)
        return tuple(not self._shapes.same(op, r) for op in inst.operands)

    def _record_of(self, inst: Instruction) -> BlockRecord:
        assert inst.block is not None
        return self.records[inst.block]

    def _decide_records(self) -> None:
        """The records that say something (a field, or a path worth following), their fields,
        and the traces' cases."""
        records = self.records
        for record in records.values():
            for i in sorted(record.read):
                (record.literals if record.checkpoints[i].literal else record.fields).append(i)
        single_return = self.returns[0] if len(self.returns) == 1 else None
        changed = True
        while changed:
            changed = False
            for record in records.values():
                present = (
                    bool(record.fields)
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
                for i in record.fields:
                    cp = record.checkpoints[i]
                    fields.append(FieldDecl(cp.name, cp.type))
                record.decl.fields = fields
            if record.trace is not None:
                record.trace.cases = [self._trace_case(p) for p in record.preds]
        self.exit_trace: EnumDecl | None = None
        if single_return is None and self.returns:
            self.exit_trace = EnumDecl(self.exit_type.name, [self._trace_case(r) for r in self.returns])

    def _trace_case(self, pred: Block) -> EnumCase:
        record = self.records[pred]
        return EnumCase(record.label, record.decl.type if record.present else None)

    def declarations(self) -> list[tuple[StructDecl | EnumDecl, bool]]:
        """Every type the plan names, in order, and whether it is declared (a record left with
        nothing to say is not)."""
        decls: list[tuple[StructDecl | EnumDecl, bool]] = []
        for record in self.records.values():
            decls.append((record.decl, record.present))
            if record.trace is not None:
                decls.append((record.trace, True))
        if self.exit_trace is not None:
            decls.append((self.exit_trace, True))
        return decls


def linear_map_type(derivative: FunctionType) -> FunctionType:
    """The type of the linear map a derivative of type ``derivative`` returns."""
    assert isinstance(derivative.result, TupleType)
    linear_map = derivative.result.elements[1]
    assert isinstance(linear_map, FunctionType)
    return linear_map


class TangentFlow(TangentPusher[Shape]):
    """The differential's code for each block, as ``Dependences``: which tangents each builtin's
    differential is given (``present``), and what the code uses (``sinks``: the tangent it
    returns, those it gives a callee's differential, which is always called, and, with several
    blocks, every tangent a block ends with)."""

    t: Dependences

    def __init__(self, plan: LinearMapInfo, deps: Dependences) -> None:
        self.plan, self.t, self.module = plan, deps, plan.module
        self.sinks: list[Node] = []
        self.present: dict[Instruction, tuple[bool, ...]] = {}
        self.calls_read = list(plan.calls)  # a differential calls each callee's differential
        self.tangents: dict[Value, Shape] = {}

    def run(self, block: Block) -> None:
        self.block = block
        plan, deps = self.plan, self.t
        entry = plan.fn.blocks[0]
        if block is entry:
            self.tangents = {entry.args[i]: Node() for i in plan.config.wrt}
        else:
            self.tangents = {v: Node() for v in plan.incoming[block]}
        for inst in plan.active_instructions[block]:
            self.visit(inst)
        term = block.instructions[-1]
        if isinstance(term, ReturnInst):
            result_type, sources = plan.fn.type.result, plan.config.sources
            returned = self.returned(term, result_type, sources)
            if misses_a_tensor(plan.module, returned, result_type):  # a tensor's zero returned
                plan.zero_needs_shape(block, term.operands[0])
            self._sink(deps.results(returned, result_type, sources))
        if len(plan.records) > 1:  # what the block ends with, the next block's code may take
            self.sinks.extend(node for shape in self.tangents.values() for node in deps.leaves(shape))
            self._zeros_passed(block)

    def payload_shapes(self, payload: Value) -> Sequence[Value] | None:
        """The tangent of an enum's payload misses a tensor: ``block``'s record keeps its shape."""
        self.plan.zero_needs_shape(self.block, payload)
        return None

    def _zeros_passed(self, block: Block) -> None:
        """The zero tangents ``block``'s code passes to its successors' (see ``DifferentialWalk``)."""
        plan, term = self.plan, block.instructions[-1]
        for succ in dict.fromkeys(block.successors()):
            if succ not in plan.records:
                continue
            edge: dict[Value, Value] = dict(zip(succ.args, edge_arguments(term, succ)))
            switched = switch_payload(term, succ)
            for v in plan.incoming[succ]:
                if switched is not None and v is succ.args[0]:
                    # A payload: its tangent's zero, where the enum's is ``zero``, is made to the
                    # shapes of the tensors it holds, which ``succ``'s record keeps.
                    plan.zero_needs_shape(succ, v)
                    continue
                source = edge.get(v, v)
                if misses_a_tensor(plan.module, self.tangents.get(source), source.type):
                    plan.zero_needs_shape(block, source)

    def _sink(self, node: Node | None) -> None:
        if node is not None:
            self.sinks.append(node)

    def visit_BuiltinInst(self, inst: BuiltinInst) -> None:
        tangents = [self.tangents.get(op) for op in inst.operands]
        self.present[inst] = tuple(t is not None for t in tangents)
        if any(self.present[inst]):
            inputs = [self.t.materialize(t, op.type) for t, op in zip(tangents, inst.operands)]
            self.tangents[inst.result] = Node(inst, tuple(n for n in inputs if n is not None))

    def visit_ApplyInst(self, inst: ApplyInst) -> None:
        call = self.plan.calls[inst]
        for i in call.wrt:
            arg = call.arguments[i]
            self._sink(self.t.materialize(self.tangents.get(arg), arg.type))
        self.tangents[inst.result] = self.t.of_results(Node(), inst.result.type, call.sources)


class AdjointFlow(AdjointPuller[Shape]):
    """The pullback's code for each block, as ``Dependences``: each cotangent a builtin's pullback
    could give an operand is a node ``(inst, i)``; ``sinks`` are what the code uses (every adjoint
    a block ends with, and those it gives a callee's pullback, whose call is kept); ``calls_read``
    the calls whose pullback is called (those an adjoint reaches)."""

    t: Dependences

    def __init__(self, plan: LinearMapInfo, deps: Dependences) -> None:
        self.plan, self.t, self.module, self.is_active = plan, deps, plan.module, plan.is_active
        self.sinks: list[Node] = []
        self.calls_read: list[Instruction] = []
        self.adjoints: dict[Value, Shape] = {}

    def run(self, block: Block) -> None:
        self.block = block
        plan, deps = self.plan, self.t
        self.adjoints = {v: Node() for v in plan.incoming[block]}
        term = block.instructions[-1]
        if isinstance(term, ReturnInst):
            result_type = plan.fn.type.result
            self.seed(term, deps.of_results(Node(), result_type, plan.config.sources), result_type)
        for inst in reversed(plan.active_instructions[block]):
            self.visit(inst)
        # What the block ends with goes to the parameters' tangents or to the predecessor's block.
        self.sinks.extend(node for shape in self.adjoints.values() for node in deps.leaves(shape))
        self._zeros_passed(block)

    def payload_shapes(self, payload: Value) -> Sequence[Value] | None:
        """A payload's tangent out of an enum's adjoint needs, for a zero, the shapes of the
        tensors it holds: ``block``'s record keeps them."""
        self.plan.zero_needs_shape(self.block, payload)
        return None

    def _zeros_passed(self, block: Block) -> None:
        """The zero adjoints ``block``'s pullback code makes: of the parameters no adjoint reached
        (the entry), or of the values live out of a predecessor that none reached (see
        ``PullbackEmitter._branch``), whose shapes the predecessor's record keeps."""
        plan, adjoints = self.plan, self.adjoints
        if block is plan.fn.blocks[0]:
            for i in plan.config.wrt:
                if misses_a_tensor(plan.module, adjoints.get(block.args[i]), block.args[i].type):
                    plan.zero_needs_shape(block, block.args[i])
            return
        for pred in plan.records[block].preds:
            passed = edge_arguments(pred.instructions[-1], block)
            switched = switch_payload(pred.instructions[-1], block)
            for v in plan.incoming[pred]:
                # What ``PullbackEmitter._branch`` adds up for ``v``: a zero where it misses a tensor.
                total = None if v in block.args else adjoints.get(v)
                for op, arg in zip(passed, block.args):
                    if op is v and arg in adjoints:
                        total = adjoints[arg] if total is None else self.t.add(total, adjoints[arg], v.type)
                if switched is not None and switched[0] is v and block.args[0] in adjoints:
                    payload = block.args[0]
                    if misses_a_tensor(plan.module, adjoints[payload], payload.type):
                        plan.zero_needs_shape(block, payload)  # its zeros, in the enum's adjoint
                    total = adjoints[payload]  # stands for the enum's adjoint, at the case
                if misses_a_tensor(plan.module, total, v.type):
                    plan.zero_needs_shape(pred, v)

    def _sink(self, node: Node | None) -> None:
        if node is not None:
            self.sinks.append(node)

    def visit_BuiltinInst(self, inst: BuiltinInst) -> None:
        adjoint = self.adjoints.pop(inst.result, None)
        if adjoint is None:
            return
        seed = self.t.materialize(adjoint, inst.result.type)
        inputs = () if seed is None else (seed,)
        for i, (op, needed) in enumerate(zip(inst.operands, self.plan.needed[inst])):
            if needed:
                self.accumulate(op, Node((inst, i), inputs))

    def visit_ApplyInst(self, inst: ApplyInst) -> None:
        adjoint = self.adjoints.pop(inst.result, None)
        if adjoint is None:
            return
        call = self.plan.calls[inst]
        self.calls_read.append(inst)
        self._sink(self.t.results(adjoint, inst.result.type, call.sources))
        for i in call.wrt:
            self.accumulate(call.arguments[i], Node())
