"""Forward mode: the JVP of a single-block function and its differential (SIL-SPEC §6, after
Swift's JVPCloner).

The JVP computes the original and what the differential needs, as the VJP does for its pullback
(the same rules save the same partials, and an active call becomes a call of the callee's JVP
whose differential is kept); it returns the original result with ``partial_apply`` of the
differential function to the checkpoints record. The differential takes the tangents of the
``wrt`` parameters and pushes them forward through the active instructions, in order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analysis.activity import Config, analyze_activity
from differentiation.diagnostics import resolve_callee
from differentiation.naming import checkpoints_name, differential_name, jvp_name
from differentiation.reverse import Checkpoint
from differentiation.rules import RULES
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


class ForwardEmitter:
    """Emits the JVP and the differential of one function for one configuration."""

    def __init__(self, differentiator: Differentiator, fn: Function, config: Config) -> None:
        self.differentiator = differentiator
        self.module = differentiator.module
        self.fn = fn
        self.config = config
        self.info = analyze_activity(self.module, fn, config)
        self.checkpoints: list[Checkpoint] = []
        self.saved: dict[Instruction, list[int]] = {}
        self.calls: dict[Instruction, tuple[tuple[Value, ...], tuple[int, ...]]] = {}
        self._counts = {"partial": 0, "differential": 0}

    def _active(self, inst: Instruction) -> bool:
        return any(self.info.is_active(r) for r in inst.results)

    def jvp_function(self) -> Function:
        """Add the JVP, the differential and the checkpoints record, without bodies yet."""
        module, fn, config = self.module, self.fn, self.config
        jvp_t = dt.jvp_type(module, fn.type, config.source, config.wrt)
        assert isinstance(jvp_t.result, TupleType)
        differential_t = jvp_t.result.elements[1]
        assert isinstance(differential_t, FunctionType)
        block_name = fn.blocks[0].name or "bb0"
        self.record = StructDecl(checkpoints_name(fn.name, block_name, config).replace("__PB__", "__DF__"))
        self.jvp = Function(jvp_name(fn.name, config), jvp_t)
        self.differential = Function(
            differential_name(fn.name, config),
            FunctionType((*differential_t.params, self.record.type), differential_t.result),
        )
        for new in (self.jvp, self.differential):
            if new.name in module.functions:
                raise SILError.at(fn.span, f"cannot synthesize '@{new.name}': the name is taken")
            self.differentiator.add_function(new)
        self.differentiator.add_type(self.record)
        return self.jvp

    def emit_bodies(self) -> None:
        entry = self.fn.blocks[0]
        block = self.jvp.add_block("bb0")
        values: dict[Value, Value] = {a: block.add_argument(a.type, a.name) for a in entry.args}
        b = Builder.at_end(block, self.module)
        ret: ReturnInst | None = None
        for inst in entry.instructions:
            if isinstance(inst, ReturnInst):
                ret = inst
                break
            if isinstance(inst, ApplyInst) and self._active(inst):
                self._jvp_call(b, inst, values)
                continue
            copy = b.insert(clone_instruction(inst, values))
            for old, new in zip(inst.results, copy.results):
                values[old] = new
                new.name = old.name
            if isinstance(inst, BuiltinInst) and self._active(inst):
                rule = RULES.get(inst.name)
                if rule is None:
                    raise SILError.at(inst.span, f"cannot differentiate '{inst.name}' yet")
                needed = [self.info.is_active(op) for op in inst.operands]
                kept = rule.save(b, list(copy.operands), copy.result, needed)
                self.saved[inst] = [self._checkpoint(v, "partial") for v in kept]
        assert ret is not None, "the diagnostics admit only single-block functions"
        self.record.fields = [FieldDecl(cp.name, cp.value.type) for cp in self.checkpoints]
        saved = b.struct(self.record.type, *[cp.value for cp in self.checkpoints])
        closure = b.partial_apply(b.function_ref(self.differential), saved)
        b.return_(b.tuple(values[ret.operands[0]], closure))
        eliminate_dead_code(self.jvp)
        self._emit_differential(ret)

    def _checkpoint(self, value: Value, kind: str) -> int:
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

    def _jvp_call(self, b: Builder, inst: ApplyInst, values: dict[Value, Value]) -> None:
        resolved = resolve_callee(self.module, inst)
        if resolved is None:
            raise SILError.at(inst.span, "cannot differentiate a call of an opaque function value")
        callee = resolved.function
        if isinstance(callee.type.result, TupleType) and len(callee.type.results) > 1:
            raise SILError.at(
                inst.span, f"cannot differentiate a call of '@{callee.name}' yet: it returns several results"
            )
        wrt = tuple(i for i, a in enumerate(resolved.arguments) if self.info.is_active(a))
        callee_jvp, callee_wrt = self.differentiator.jvp_for_call(callee, wrt)
        pair = b.apply(b.function_ref(callee_jvp), *[values[a] for a in resolved.arguments])
        result, differential = b.destructure_tuple(pair)
        result.name = inst.result.name
        values[inst.result] = result
        self.saved[inst] = [self._checkpoint(differential, "differential")]
        self.calls[inst] = (resolved.arguments, callee_wrt)

    # --- the differential ----------------------------------------------------------------------
    def _emit_differential(self, ret: ReturnInst) -> None:
        fn, config = self.fn, self.config
        entry = fn.blocks[0]
        block = self.differential.add_block("bb0")
        tangents: dict[Value, Symbolic] = {}
        for i in config.wrt:
            arg = entry.args[i]
            tangents[arg] = block.add_argument(
                self.differential.type.params[len(tangents)], f"d{arg.name or i}"
            )
        record = block.add_argument(self.record.type, "checkpoints")
        b = Builder.at_end(block, self.module)
        t = TangentBuilder(b, self.module, fn.span)
        fields = b.destructure_struct(record) if self.record.fields else ()
        for field, checkpoint in zip(fields, self.checkpoints):
            field.name = checkpoint.name
        for inst in entry.instructions[:-1]:
            if not self._active(inst):
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
                arguments, callee_wrt = self.calls[inst]
                (differential,) = [fields[i] for i in self.saved[inst]]
                ins = [t.materialize(tangents.get(arguments[i]), arguments[i].type) for i in callee_wrt]
                tangents[inst.result] = b.apply(differential, *ins)
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
        returned = ret.operands[0]
        owner = returned.owner if isinstance(returned, Result) else None
        if isinstance(fn.type.result, TupleType) and len(fn.type.results) > 1:
            # As in reverse mode, only the source element is differentiated: the returned tuple
            # itself is not active when built here, so its element is read where it was made.
            if isinstance(owner, TupleInst):
                out = tangents.get(owner.operands[config.source])
            else:
                out = t.element(tangents.get(returned), returned.type, config.source)
            b.return_(t.materialize(out, fn.type.results[config.source]))
        else:
            b.return_(t.materialize(tangents.get(returned), returned.type))
        eliminate_dead_code(self.differential)
