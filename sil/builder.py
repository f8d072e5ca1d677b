"""The builder: passes create IR through a builder positioned in a block, so a pass reads like
the algorithm (``b = Builder.before(inst); y = b.builtin("fmul", x, x)``)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

from sil import derivative_types as dt
from sil.instructions import (
    ApplyInst,
    BranchInst,
    BuiltinInst,
    CondBranchInst,
    DestructureStructInst,
    DestructureTupleInst,
    DifferentiableFunctionExtractInst,
    DifferentiableFunctionInst,
    EnumInst,
    FloatLiteralInst,
    FunctionRefInst,
    GradientInst,
    IntegerLiteralInst,
    PartialApplyInst,
    ReturnInst,
    StructExtractInst,
    StructInst,
    SwitchEnumInst,
    ThinToThickFunctionInst,
    TupleExtractInst,
    TupleInst,
    TypeRuleError,
    UnreachableInst,
    extractee_type,
    round_to_float32,
)
from sil.ir import Block, Function, Instruction, Module, Result, Value
from sil.types import FLOAT, FunctionType, NominalType, TensorType, Type


class Builder:
    """Inserts instructions into ``block`` at ``index`` (None: at the end), or before ``anchor``
    (while the block batches its edits: ``Block.begin_edits``).

    ``module`` is needed by the instructions whose result types come from declarations
    (``struct_extract``, ``destructure_struct``, ``differentiable_function_extract``,
    ``gradient``) or from tangent types.
    """

    def __init__(self, block: Block, index: int | None = None, module: Module | None = None) -> None:
        self.block = block
        self.index = index
        self.module = module
        self.anchor: Instruction | None = None

    @classmethod
    def at_end(cls, block: Block, module: Module | None = None) -> Builder:
        return cls(block, None, module)

    @classmethod
    def at_start(cls, block: Block, module: Module | None = None) -> Builder:
        return cls(block, 0, module)

    @classmethod
    def before(cls, inst: Instruction, module: Module | None = None) -> Builder:
        assert inst.block is not None, "instruction is not in a block"
        if inst.block.edits is not None:
            builder = cls(inst.block, None, module)
            builder.anchor = inst
            return builder
        return cls(inst.block, inst.block.instructions.index(inst), module)

    @classmethod
    def after(cls, inst: Instruction, module: Module | None = None) -> Builder:
        assert inst.block is not None, "instruction is not in a block"
        inst.block.commit_edits()  # a position after an instruction needs the list as it is
        return cls(inst.block, inst.block.instructions.index(inst) + 1, module)

    def insert(self, inst: Instruction) -> Instruction:
        """Insert ``inst`` at the builder's position and move the position past it."""
        if self.anchor is not None:
            self.block.insert_before(self.anchor, inst)
        elif self.index is None:
            self.block.append(inst)
        else:
            self.block.insert(self.index, inst)
            self.index += 1
        return inst

    def _one(self, inst: Instruction) -> Result:
        return self.insert(inst).result

    def _module(self) -> Module:
        if self.module is None:
            raise ValueError("this builder needs the module (Builder(..., module=m))")
        return self.module

    # --- values ----------------------------------------------------------------------------
    def float_literal(self, t: Type, value: float) -> Result:
        return self._one(FloatLiteralInst([], t, round_to_float32(value) if t == FLOAT else float(value)))

    def integer_literal(self, t: Type, value: int) -> Result:
        return self._one(IntegerLiteralInst([], t, value))

    def builtin(self, name: str, *operands: Value, type: Type | None = None) -> Result:
        """A builtin; ``type`` defaults to the elementwise rule (the first tensor operand's
        type, else the first operand's)."""
        if type is None:
            if not operands:
                raise TypeRuleError(f"builtin '{name}' needs a result type")
            tensors = [op.type for op in operands if isinstance(op.type, TensorType)]
            type = tensors[0] if tensors else operands[0].type
        return self._one(BuiltinInst(list(operands), name, type))

    def function_ref(self, fn: Function) -> Result:
        return self._one(FunctionRefInst([], fn.name, fn.type))

    def apply(self, callee: Value, *args: Value) -> Result:
        return self._one(ApplyInst([callee, *args]))

    def partial_apply(self, callee: Value, *args: Value) -> Result:
        return self._one(PartialApplyInst([callee, *args]))

    def thin_to_thick_function(self, fn: Value) -> Result:
        t = fn.type
        assert isinstance(t, FunctionType)
        return self._one(ThinToThickFunctionInst([fn], FunctionType(t.params, t.result, "callee_guaranteed")))

    def tuple(self, *elements: Value, labels: Sequence[str | None] | None = None) -> Result:
        if labels is None:
            return self._one(TupleInst(list(elements)))
        return self._one(TupleInst(list(elements), builtins.tuple(labels)))

    def tuple_extract(self, value: Value, index: int) -> Result:
        return self._one(TupleExtractInst([value], index))

    def destructure_tuple(self, value: Value) -> builtins.tuple[Result, ...]:
        return self.insert(DestructureTupleInst([value])).results

    def struct(self, t: NominalType, *fields: Value) -> Result:
        return self._one(StructInst(list(fields), t))

    def struct_extract(self, value: Value, field: str) -> Result:
        decl = self._module().struct(str(value.type))
        found = decl.field(field) if decl is not None else None
        if found is None:
            raise TypeRuleError(f"{value.type} has no field '{field}'")
        return self._one(StructExtractInst([value], field, found.type))

    def destructure_struct(self, value: Value) -> builtins.tuple[Result, ...]:
        decl = self._module().struct(str(value.type))
        if decl is None:
            raise TypeRuleError(f"{value.type} is not a declared struct")
        return self.insert(DestructureStructInst([value], tuple(f.type for f in decl.fields))).results

    def enum(self, t: NominalType, case: str, payload: Value | None = None) -> Result:
        return self._one(EnumInst([] if payload is None else [payload], t, case))

    def differentiable_function(
        self,
        original: Value,
        parameters: Sequence[int] | None = None,
        jvp: Value | None = None,
        vjp: Value | None = None,
        results: Sequence[int] | None = None,
    ) -> Result:
        t = original.type
        assert isinstance(t, FunctionType)
        params = tuple(parameters) if parameters is not None else dt.differentiable_params(self._module(), t)
        derivatives = [jvp, vjp] if jvp is not None and vjp is not None else []
        chosen = tuple(results) if results is not None else None
        return self._one(DifferentiableFunctionInst([original, *derivatives], params, chosen))

    def differentiable_function_extract(self, extractee: str, bundle: Value) -> Result:
        t = bundle.type
        assert isinstance(t, FunctionType)
        return self._one(
            DifferentiableFunctionExtractInst(
                [bundle], extractee, extractee_type(self._module(), t, extractee)
            )
        )

    def gradient(
        self,
        fn: Value,
        wrt: Sequence[int] | None = None,
        source: int = 0,
        seedable: bool = False,
        preserving_result: bool = False,
    ) -> Result:
        t = fn.type
        assert isinstance(t, FunctionType)
        resolved, result = GradientInst.derive(
            self._module(), t, source, tuple(wrt) if wrt is not None else None, seedable, preserving_result
        )
        return self._one(GradientInst([fn], source, resolved, seedable, preserving_result, result))

    # --- terminators -----------------------------------------------------------------------
    def return_(self, value: Value) -> Instruction:
        return self.insert(ReturnInst([value]))

    def br(self, dest: Block, *args: Value) -> Instruction:
        return self.insert(BranchInst(list(args), dest))

    def cond_br(
        self,
        condition: Value,
        true_dest: Block,
        true_args: Sequence[Value],
        false_dest: Block,
        false_args: Sequence[Value],
    ) -> Instruction:
        operands = [condition, *true_args, *false_args]
        return self.insert(CondBranchInst(operands, true_dest, false_dest, len(true_args)))

    def switch_enum(
        self, value: Value, cases: Sequence[builtins.tuple[str, Block]], default: Block | None = None
    ) -> Instruction:
        return self.insert(SwitchEnumInst([value], list(cases), default))

    def unreachable(self) -> Instruction:
        return self.insert(UnreachableInst([]))
