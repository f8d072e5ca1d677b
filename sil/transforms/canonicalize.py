"""Canonicalization: constant folding, algebraic identities that hold exactly in IEEE arithmetic,
projections of known aggregates, and branches on known values, to a fixed point.

A worklist drives it, as MLIR's greedy rewrite driver and Swift's SILCombine do: every instruction
starts on it, and a rewrite puts back the users of what it replaced (they may fold now). A
branch that becomes a ``br`` leaves blocks no path reaches; they are removed here, so that the
module printed has no dead paths and the users of what they defined are gone; merging what is
left is -simplify-cfg's. Unused instructions that cannot fault (literals, aggregates, projections,
closures, scalar builtins but ``sdiv``, ``srem`` and ``fptosi``) are erased, as MLIR's canonicalizer erases
trivially dead operations; an unused instruction that may fault stays, to fault as before.
"""

from __future__ import annotations

import math

from sil.builder import Builder
from sil.builtins import may_fault
from sil.instructions import (
    BUNDLE_PARTS,
    BuiltinInst,
    CondBranchInst,
    DestructureStructInst,
    DestructureTupleInst,
    DifferentiableFunctionExtractInst,
    DifferentiableFunctionInst,
    EnumInst,
    FloatLiteralInst,
    FunctionRefInst,
    IntegerLiteralInst,
    PartialApplyInst,
    StructExtractInst,
    StructInst,
    SwitchEnumInst,
    ThinToThickFunctionInst,
    TupleExtractInst,
    TupleInst,
)
from sil.ir import Function, Instruction, Module, Result, Value
from sil.passes import Pass, PassContext, register_pass
from sil.transforms.before_ad import differentiated_functions, optimizable_functions
from sil.transforms.folding import Scalar, fold_builtin
from sil.transforms.simplify_cfg import remove_unreachable_blocks
from sil.types import BOOL, DOUBLE, FLOAT, INT, ScalarType

# Instructions that never fault (with the scalar builtins that cannot, ``builtins.may_fault``):
# erased when unused. Making a closure runs nothing: the callee runs when the closure is applied.
_HARMLESS = (
    FloatLiteralInst,
    IntegerLiteralInst,
    FunctionRefInst,
    PartialApplyInst,
    ThinToThickFunctionInst,
    TupleInst,
    StructInst,
    EnumInst,
    TupleExtractInst,
    StructExtractInst,
    DestructureTupleInst,
    DestructureStructInst,
)


@register_pass
class Canonicalize(Pass):
    """Folds constants and known values, and applies identities exact in IEEE arithmetic."""

    name = "canonicalize"
    description = (
        "Fold constants (exact IEEE, Float in binary32), identities exact in IEEE arithmetic "
        "(x*1, x/1, x-0.0, x+(-0.0), fneg(fneg x)), projections of known aggregates, and branches "
        "on known values"
    )

    def run(self, module: Module, ctx: PassContext) -> None:
        differentiated = differentiated_functions(module)
        for fn in optimizable_functions(module, ctx):
            canonicalize_function(fn, module, fn.name in differentiated)


def constant(v: Value) -> Scalar | None:
    """The value of a literal (a Bool as a bool), or None when ``v`` is not one."""
    owner = v.owner if isinstance(v, Result) else None
    if isinstance(owner, FloatLiteralInst):
        return owner.value
    if isinstance(owner, IntegerLiteralInst):
        return bool(owner.value) if owner.type == BOOL else owner.value
    return None


def _bits_equal(v: Value, x: float) -> bool:
    """Whether ``v`` is a float literal of exactly ``x``, sign of zero included."""
    c = constant(v)
    return isinstance(c, float) and c == x and math.copysign(1.0, c) == math.copysign(1.0, x)


# x op e = x, and e op x = x, for Int.
_RIGHT_IDENTITY = {"add": 0, "sub": 0, "or": 0, "xor": 0, "mul": 1, "sdiv": 1}
_LEFT_IDENTITY = {"add": 0, "or": 0, "xor": 0, "mul": 1}


def _identity(inst: BuiltinInst) -> Value | None:
    """The operand an exact identity reduces ``inst`` to. Each holds for every operand value,
    ±0.0, ±inf and NaN included (a NaN comes out with its sign and payload, as from the hardware
    operation on a quiet NaN; a signalling NaN would come out unquieted, as with LLVM's and MLIR's
    folds of these identities: no arithmetic of a run makes one)."""
    ops = inst.operands
    name = inst.name
    if inst.type in (FLOAT, DOUBLE):
        if name == "fmul":  # x * 1 = x. Never x * 0: -1 * 0 = -0, inf * 0 = NaN.
            return ops[0] if _bits_equal(ops[1], 1.0) else ops[1] if _bits_equal(ops[0], 1.0) else None
        if name == "fdiv":  # x / 1 = x
            return ops[0] if _bits_equal(ops[1], 1.0) else None
        if name == "fsub":  # x - (+0) = x, -0 - +0 = -0 included; x - (-0) = x + 0 is not
            return ops[0] if _bits_equal(ops[1], 0.0) else None
        if name == "fadd":  # x + (-0) = x (+0 + -0 = +0); never x + (+0): -0 + +0 = +0
            return ops[0] if _bits_equal(ops[1], -0.0) else ops[1] if _bits_equal(ops[0], -0.0) else None
        inner = ops[0].owner if isinstance(ops[0], Result) else None
        if name == "fneg" and isinstance(inner, BuiltinInst) and inner.name == "fneg":
            return inner.operands[0]  # fneg flips the sign bit only, NaN included
        if name == "fptrunc" and isinstance(inner, BuiltinInst) and inner.name == "fpext":
            return inner.operands[0]  # Float to Double is exact, and back
        return None
    if inst.type == INT and len(ops) == 2:  # Int arithmetic wraps: these hold for every value
        a, b = constant(ops[0]), constant(ops[1])
        if name in _RIGHT_IDENTITY and b == _RIGHT_IDENTITY[name]:
            return ops[0]
        if name in _LEFT_IDENTITY and a == _LEFT_IDENTITY[name]:
            return ops[1]
    return None


def _simplify_builtin(inst: BuiltinInst) -> Value | None:
    ops = inst.operands
    if inst.name == "select":
        cond = constant(ops[0])
        if isinstance(cond, bool):
            return ops[1] if cond else ops[2]
        return ops[1] if ops[1] is ops[2] else None
    values = [v for v in map(constant, ops) if v is not None]
    if ops and len(values) == len(ops):
        types = [op.type for op in ops]
        folded = fold_builtin(inst.name, types, values, inst.type)
        if folded is not None:
            b = Builder.before(inst)
            if inst.type in (FLOAT, DOUBLE):
                return b.float_literal(inst.type, float(folded))
            return b.integer_literal(inst.type, int(folded))
    return _identity(inst)


def known_projection(inst: Instruction, module: Module, differentiated: bool = False) -> list[Value] | None:
    """The values of the results of ``inst`` when it is a projection of a known aggregate (a
    ``tuple_extract`` of a ``tuple``, …); None otherwise. In a function differentiation will
    differentiate (``differentiated``), a ``@noDerivative`` field of a differentiable struct is
    read as ``no_derivative`` of its value: no derivative goes through the field (SIL-SPEC §3),
    nor may one go through what replaces the projection."""
    source = inst.operands[0].owner if inst.operands and isinstance(inst.operands[0], Result) else None
    if isinstance(inst, TupleExtractInst) and isinstance(source, TupleInst):
        return [source.operands[inst.index]]
    if isinstance(inst, DestructureTupleInst) and isinstance(source, TupleInst):
        return list(source.operands)
    if isinstance(inst, DifferentiableFunctionExtractInst) and isinstance(source, DifferentiableFunctionInst):
        # A call of a bundle's original is differentiated with the bundle's derivatives: before
        # differentiation, the original must not become a plain function_ref.
        keep = differentiated and inst.extractee == "original"
        return None if keep or not source.has_derivatives else [source.operands[BUNDLE_PARTS[inst.extractee]]]
    if not isinstance(source, StructInst) or not isinstance(inst, DestructureStructInst | StructExtractInst):
        return None
    decl = module.struct(source.type.name)
    if decl is None:
        return None
    fields = [(f, v) for f, v in zip(decl.fields, source.operands, strict=True)]
    if isinstance(inst, StructExtractInst):
        fields = [(f, v) for f, v in fields if f.name == inst.field]
        if not fields:
            return None
    if not (differentiated and decl.differentiable):
        return [v for _, v in fields]
    b = Builder.before(inst)
    return [b.builtin("no_derivative", v, type=v.type) if f.no_derivative else v for f, v in fields]


def fold_branch(inst: Instruction) -> bool:
    """Replace a ``cond_br`` on a literal or a ``switch_enum`` of an ``enum`` by a ``br``
    (erasing ``inst``)."""
    if isinstance(inst, CondBranchInst):
        cond = constant(inst.operands[0])
        if not isinstance(cond, bool):
            return False
        dest, args = (inst.true_dest, inst.true_args) if cond else (inst.false_dest, inst.false_args)
    elif isinstance(inst, SwitchEnumInst):
        made = inst.operands[0].owner if isinstance(inst.operands[0], Result) else None
        if not isinstance(made, EnumInst):
            return False
        found = next((d for case, d in inst.cases if case == made.case), None)
        if found is None:
            if inst.default is None:
                return False
            dest, args = inst.default, []
        else:
            dest, args = found, list(made.operands)  # the payload is the case's block argument
    else:
        return False
    Builder.before(inst).br(dest, *args)
    erase_with_dead_operands(inst)
    return True


def canonicalize_function(fn: Function, module: Module, differentiated: bool = False) -> int:
    """Rewrite ``fn`` to a fixed point; returns how many rewrites were made. ``differentiated``:
    differentiation will differentiate ``fn`` (``sil.transforms.before_ad``), so branches stay
    and ``@noDerivative`` fields keep stopping derivatives."""
    fold = not differentiated
    rewrites = 0
    while True:
        with fn.batched_edits():  # an erase or an insertion costs O(1), not a scan of the block
            made, branches = _run_worklist(fn, module, differentiated, fold)
        rewrites += made
        if not branches:
            return rewrites
        # What the removed blocks used may be dead now: another round erases it.
        remove_unreachable_blocks(fn)


def _run_worklist(fn: Function, module: Module, differentiated: bool, fold: bool) -> tuple[int, bool]:
    """One pass of the worklist over every instruction; returns the rewrites made and whether a
    branch was folded."""
    worklist = list(reversed(list(fn.instructions())))
    queued = set(worklist)
    rewrites = 0
    branches = False
    while worklist:
        inst = worklist.pop()
        queued.discard(inst)
        if inst.block is None:
            continue
        if inst.is_terminator:
            if fold and fold_branch(inst):
                rewrites += 1
                branches = True
            continue
        if not any(r.uses for r in inst.results) and cannot_fault(inst):
            erase_with_dead_operands(inst)
            continue
        replacement = _rewrite(inst, module, differentiated)
        if replacement is None:
            continue
        rewrites += 1
        for result, value in zip(inst.results, replacement, strict=True):
            for user in result.uses:
                if user not in queued:
                    queued.add(user)
                    worklist.append(user)
            result.replace_all_uses_with(value)
        erase_with_dead_operands(inst)
    return rewrites, branches


def _rewrite(inst: Instruction, module: Module, differentiated: bool) -> list[Value] | None:
    if isinstance(inst, BuiltinInst):
        value = _simplify_builtin(inst)
        return None if value is None else [value]
    return known_projection(inst, module, differentiated)


def cannot_fault(inst: Instruction) -> bool:
    """Whether ``inst`` computes a value and nothing else, whatever its operands: no effect, no
    fault (so it may be erased when unused, or run where it would not have run: -licm)."""
    if isinstance(inst, BuiltinInst):
        # Tensor builtins stay put even where they cannot fault: one hoisted out of a loop makes AD
        # sum its adjoint over the trips before one product instead of summing products, which
        # rounds differently, and -O must not change a derivative's bits (test_semantics_through_O).
        operands = [op.type for op in inst.operands]
        scalars = all(isinstance(t, ScalarType) for t in [*operands, inst.type])
        return scalars and not may_fault(inst.name, operands, inst.type)
    if isinstance(inst, DifferentiableFunctionInst):  # a bundle made; a request is AD's to answer
        return inst.has_derivatives
    return isinstance(inst, _HARMLESS)


def erase_with_dead_operands(inst: Instruction) -> None:
    """Erase ``inst`` (unused now), and what only it used among instructions that cannot fault
    (a closure no one applies any more, its ``function_ref``, …)."""
    dead = [inst]
    while dead:
        victim = dead.pop()
        owners = list(dict.fromkeys(op.owner for op in victim.operands if isinstance(op, Result)))
        victim.erase()
        for owner in owners:
            if (
                owner is not None
                and owner.block is not None
                and cannot_fault(owner)
                and not any(r.uses for r in owner.results)
            ):
                dead.append(owner)
