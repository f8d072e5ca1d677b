"""Forward mode: the JVP of a single-block function and its differential (SIL-SPEC §6, after
Swift's JVPCloner).

The JVP computes the original and keeps what the differential needs, as ``differentiation/primal.py``
does for both modes (the same rules save the same partials; active calls call the callees' JVPs).
The differential takes the tangents of the ``wrt`` parameters and pushes them forward through the
active instructions, in order.
"""

from __future__ import annotations

from differentiation.naming import checkpoints_name, differential_name, jvp_name
from differentiation.primal import DerivativeEmitter
from differentiation.rules import RULES
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
from sil.ir import Function, Result, StructDecl, Value
from sil.transforms.dce import eliminate_dead_code
from sil.types import FunctionType, TupleType


class ForwardEmitter(DerivativeEmitter):
    """Emits the JVP and the differential of one function for one configuration."""

    linear_map_kind = "differential"

    def derivative_type(self) -> FunctionType:
        return dt.jvp_type(self.module, self.fn.type, self.config.source, self.config.wrt)

    def names(self, record: str) -> tuple[str, str, str]:
        fn, config = self.fn.name, self.config
        checkpoints = checkpoints_name(fn, record, config).replace("__PB__", "__DF__")
        return jvp_name(fn, config), differential_name(fn, config), checkpoints

    def linear_map_type(self, closure: FunctionType, record: StructDecl) -> FunctionType:
        return FunctionType((*closure.params, record.type), closure.result)

    def callee_derivative(self, callee: Function, wrt: tuple[int, ...]) -> tuple[Function, tuple[int, ...]]:
        return self.differentiator.jvp_for_call(callee, wrt)

    def emit_linear_map(self, ret: ReturnInst) -> None:
        self._emit_differential(ret)

    # --- the differential ----------------------------------------------------------------------
    def _emit_differential(self, ret: ReturnInst) -> None:
        fn, config = self.fn, self.config
        entry = fn.blocks[0]
        block = self.linear_map.add_block("bb0")
        tangents: dict[Value, Symbolic] = {}
        for i in config.wrt:
            arg = entry.args[i]
            tangents[arg] = block.add_argument(
                self.linear_map.type.params[len(tangents)], f"d{arg.name or i}"
            )
        record = block.add_argument(self.record.type, "checkpoints")
        b = Builder.at_end(block, self.module)
        t = TangentBuilder(b, self.module, fn.span)
        fields = b.destructure_struct(record) if self.record.fields else ()
        for field, checkpoint in zip(fields, self.checkpoints):
            field.name = checkpoint.name
        for inst in entry.instructions[:-1]:
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
        eliminate_dead_code(self.linear_map)
