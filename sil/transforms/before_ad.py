"""What the optimization passes keep when they run before differentiation (issue 16): optimizing
must not change what is differentiated, nor what differentiation reports.

A module whose requests differentiation rejects is left as written (``optimizable_functions``
gives none of it): its diagnostics, located and with notes that trace the active path value by
value, are about the code the user wrote. The check is differentiation's own, registered here by
the package that owns it (``register_rejection_check``): ``sil`` imports nothing of ours.

In a function differentiation will differentiate (``differentiated_functions``), a rewrite keeps
the function differentiable and its derivative the same: -canonicalize folds a projection of a
``@noDerivative`` struct field to ``no_derivative`` of the field's value, not to the value
(SIL-SPEC §3: no derivative goes through the field), and folds no branch on a known value (the
blocks it would cut off may hold the function's every return, and differentiation rejects a
function that never returns); -simplify-cfg makes no branch that reaches one block twice with
different arguments (differentiation's trace names the predecessor that ran, not the edge, so it
cannot differentiate one yet); an instruction that makes a tuple or struct holding a tensor stays
in its block (``block_bound``): -licm does not hoist it and -cse does not replace it by one in a
dominating block, for differentiation cannot yet carry such a tangent from block to block.
``no_derivative`` itself is never folded away but for a literal operand; two identical ones may
be merged by -cse: both give the same value and stop activity alike.

Once differentiation has run and its requests are lowered (``-lower-gradient``), no function is
differentiated, and nothing is held back.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from sil.instructions import (
    BUNDLE_PARTS,
    DifferentiableFunctionExtractInst,
    DifferentiableFunctionInst,
    FunctionRefInst,
    GradientInst,
)
from sil.ir import DifferentiableAttr, Function, Instruction, LegacyDifferentiableAttr, Module, Result, Value
from sil.passes import PassContext, registered_passes
from sil.types import NominalType, TensorType, TupleType, Type

RejectionCheck = Callable[[Module], bool]
"""Whether differentiation would reject the module's requests (report an error)."""

_CHECKS: list[RejectionCheck] = []
REJECTED = ("before_ad", "rejected")
"""The key of the answer in a ``PassContext``'s analyses: the passes keep it true (they leave a
rejected module alone) and keep it false (their rules keep a module differentiable), so a
pipeline may keep it from one pass to the next (-O does)."""


def register_rejection_check(check: RejectionCheck) -> RejectionCheck:
    """Add a check that the passes consult before optimizing a module that holds requests."""
    if check not in _CHECKS:
        _CHECKS.append(check)
    return check


def optimizable_functions(module: Module, ctx: PassContext | None = None) -> list[Function]:
    """The functions an optimization pass may change: every one, unless the module asks for
    derivatives that differentiation rejects (then none). Cached in ``ctx`` for the pass."""
    if ctx is None:
        return [] if rejected_by_differentiation(module) else list(module.functions.values())
    rejected = ctx.analysis(REJECTED, lambda: rejected_by_differentiation(module))
    return [] if rejected else list(module.functions.values())


def rejected_by_differentiation(module: Module) -> bool:
    """Whether the module asks for derivatives that differentiation rejects."""
    if not differentiated_functions(module):
        return False
    registered_passes()  # loads the packages above sil, which register their checks
    return any(check(module) for check in _CHECKS)


def differentiated_functions(module: Module) -> frozenset[str]:
    """The functions differentiation will differentiate (or check, or the legacy migration passes
    rewrite) as the module stands: those a request names (a ``[differentiable]`` attribute lacking
    a derivative, a legacy ``[reverse_differentiable]`` attribute and its primal and adjoint, a
    ``gradient``, a ``differentiable_function`` without its derivatives), and what they refer to.
    A request of a function value that is not a ``function_ref`` (seen through the extracts of
    bundles that name their parts) counts the function holding it. Conservative: a callee an
    inactive call reaches is in it too. Empty once no work is left."""
    roots: list[str] = []
    for fn in module.functions.values():
        for attr in fn.attributes:
            if isinstance(attr, LegacyDifferentiableAttr):
                roots += [fn.name, *(n for n in (attr.primal, attr.adjoint) if n is not None)]
            elif isinstance(attr, DifferentiableAttr) and (attr.jvp is None or attr.vjp is None):
                roots.append(fn.name)
        for inst in fn.instructions():
            if isinstance(inst, GradientInst) or (
                isinstance(inst, DifferentiableFunctionInst) and not inst.has_derivatives
            ):
                roots.append(named_function(inst.operands[0]) or fn.name)
    return frozenset(_reached(module, roots))


def named_function(value: Value) -> str | None:
    """The function ``value`` is a ``function_ref`` of, seen through the extracts of bundles that
    name their parts (as -lower-gradient will see it); None for any other value."""
    while isinstance(value, Result) and isinstance(value.owner, DifferentiableFunctionExtractInst):
        owner = value.owner.operands[0].owner if isinstance(value.owner.operands[0], Result) else None
        part = BUNDLE_PARTS[value.owner.extractee]
        if not isinstance(owner, DifferentiableFunctionInst) or part >= len(owner.operands):
            return None
        value = owner.operands[part]
    if isinstance(value, Result) and isinstance(value.owner, FunctionRefInst):
        return value.owner.function_name
    return None


def _reached(module: Module, roots: Collection[str]) -> set[str]:
    """``roots`` and every function of ``module`` their bodies refer to, transitively."""
    seen = {r for r in roots if r in module.functions}
    worklist = list(seen)
    while worklist:
        for inst in module.functions[worklist.pop()].instructions():
            name = inst.function_name if isinstance(inst, FunctionRefInst) else None
            if name is not None and name in module.functions and name not in seen:
                seen.add(name)
                worklist.append(name)
    return seen


def block_bound(inst: Instruction, module: Module) -> bool:
    """Whether ``inst`` makes a tuple or struct holding a tensor, whose tangent differentiation
    cannot carry from one block to another yet (its zero would need the tensor's shape): in a
    function it differentiates, such a value stays where it was made."""
    return any(_holds_tensor(r.type, module, False) for r in inst.results)


def _holds_tensor(t: Type, module: Module, inside: bool) -> bool:
    """Whether ``t`` is (``inside`` an aggregate: holds) a tensor, in an aggregate."""
    if isinstance(t, TensorType):
        return inside
    if isinstance(t, TupleType):
        return any(_holds_tensor(e, module, True) for e in t.elements)
    decl = module.struct(t.name) if isinstance(t, NominalType) else None
    return decl is not None and any(_holds_tensor(f.type, module, True) for f in decl.fields)
