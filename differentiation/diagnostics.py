"""``-differentiation-diagnostics``: everything that would stop differentiation, reported at once.

Run before any derivative is emitted (as Swift's differentiation diagnostics are), so the emitters
can assume what they are given is differentiable. For every request (``analysis.activity``), and
for every function an active call makes it differentiate, it reports:
- an active value through a builtin with no derivative ("expression is not differentiable"), or
  through one whose rule is not there yet (see ``differentiation/rules.py``);
- an active call of a function with neither a body nor a registered derivative ("function is not
  differentiable", with a note at the callee's declaration), or of a function value it cannot see
  through;
- an active value put into an enum payload or a struct that is not ``Differentiable``, which
  carry no derivative;
- what control flow cannot do yet: a branch that reaches one block twice with different
  arguments (the trace names the predecessor, not the edge), a tensor whose tangent must cross
  blocks (a zero tangent would need its shape), a function that never returns.
A problem inside a function differentiated for a call carries a note at that call.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import attrs

from analysis.activity import ActivityInfo, Config, analyze_activity, differentiation_requests
from analysis.liveness import compute_liveness
from differentiation.legacy.pairs import legacy_pair
from differentiation.rules import RULES, may_broadcast
from sil.builtins import BUILTINS
from sil.cfg import blocks_that_return
from sil.diagnostics import Diagnostic, SILError, Span, note
from sil.instructions import (
    ApplyInst,
    BuiltinInst,
    EnumInst,
    FunctionRefInst,
    PartialApplyInst,
    StructInst,
    ThinToThickFunctionInst,
)
from sil.ir import Block, DifferentiableAttr, Function, Instruction, Module, Result, Value
from sil.passes import Pass, PassContext, register_pass
from sil.types import TensorType

OPAQUE_CALLEE = "expression is not differentiable: the callee is a function value that cannot be seen through"


@attrs.frozen
class ResolvedCallee:
    """The function an ``apply`` calls, seen through closures, and how its parameters line up:
    ``arguments[i]`` is the value passed as the callee's parameter ``i``."""

    function: Function
    arguments: tuple[Value, ...]


def resolve_callee(module: Module, apply: ApplyInst) -> ResolvedCallee | None:
    """The function behind an apply's callee (a ``function_ref``, possibly made thick or partially
    applied), or None when it is an opaque function value (a parameter, a loaded closure…)."""
    callee = apply.callee
    bound: list[Value] = []
    while isinstance(callee, Result):
        owner = callee.owner
        if isinstance(owner, ThinToThickFunctionInst):
            callee = owner.operands[0]
        elif isinstance(owner, PartialApplyInst):
            bound = [*owner.args, *bound]  # partial application binds trailing arguments
            callee = owner.callee
        elif isinstance(owner, FunctionRefInst):
            fn = module.functions.get(owner.function_name)
            return None if fn is None else ResolvedCallee(fn, (*apply.args, *bound))
        else:
            return None
    return None


def registered_derivative(fn: Function, wrt: tuple[int, ...], kind: str = "vjp") -> DifferentiableAttr | None:
    """A ``[differentiable]`` attribute of ``fn`` naming a derivative of ``kind`` ("vjp" or "jvp")
    for ``wrt`` (or a superset of it)."""
    for attr in fn.attributes:
        if not isinstance(attr, DifferentiableAttr) or getattr(attr, kind) is None:
            continue
        if attr.wrt is None or set(wrt) <= set(attr.wrt):
            return attr
    return None


@attrs.frozen
class CallChain:
    """The calls that led to a function's check, innermost first: a note at each, shared by the
    checks of all the callees below it (so a chain of n calls keeps n notes, not n² copies)."""

    call: Diagnostic
    outer: CallChain | None


Request = tuple[Function, Config, CallChain | None]
"""A function to check, how it is differentiated, and the calls that led to it."""


class DifferentiabilityChecker:
    """Finds every problem in the functions a module asks to differentiate, and in their callees."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.errors: list[Diagnostic] = []
        self._checked: set[tuple[str, Config]] = set()

    def check_module(self) -> list[Diagnostic]:
        for name, configs in differentiation_requests(self.module).items():
            fn = self.module.functions[name]
            for config in configs:
                if legacy_pair(self.module, fn, config) is None:  # a legacy pair answers it as it is
                    self.check(fn, config, None)
        return sorted(self.errors, key=lambda d: d.span.start if d.span is not None else -1)

    def check(self, fn: Function, config: Config, context: CallChain | None) -> None:
        """Check ``fn`` differentiated as ``config``, and the callees it needs differentiated;
        ``context`` says which calls led here.

        Each function's check is a generator that yields the callees to check before it goes on,
        run from a stack: a chain of calls, however long, is not a chain of Python frames, and
        problems are found in the order a depth-first walk finds them."""
        stack = [self._check_function(fn, config, context)]
        while stack:
            callee = next(stack[-1], None)
            if callee is None:
                stack.pop()
            else:
                stack.append(self._check_function(*callee))

    def _check_function(self, fn: Function, config: Config, context: CallChain | None) -> Iterator[Request]:
        key = (fn.name, config)
        if key in self._checked:
            return
        self._checked.add(key)
        info = analyze_activity(self.module, fn, config)
        if len(fn.blocks) > 1:
            self._check_control_flow(fn, info, context)
        for inst in fn.instructions():
            if isinstance(inst, BuiltinInst):
                self._check_builtin(inst, info, context)
            elif isinstance(inst, ApplyInst):
                request = self._check_apply(inst, info, context)
                if request is not None:
                    yield request
            elif isinstance(inst, EnumInst) and self._carries_derivative(inst, info):
                self.error(
                    inst.span,
                    f"expression is not differentiable: an enum '{inst.type}' payload carries no derivative",
                    context,
                )
            elif (
                isinstance(inst, StructInst)
                and self.module.tangent_type(inst.type) is None
                and self._carries_derivative(inst, info)
            ):
                self.error(
                    inst.span,
                    f"expression is not differentiable: struct '{inst.type}' has no tangent "
                    "(declare it ': Differentiable')",
                    context,
                )

    def _check_control_flow(self, fn: Function, info: ActivityInfo, context: CallChain | None) -> None:
        returning = blocks_that_return(fn)
        if not returning:
            self.error(fn.span, f"cannot differentiate '@{fn.name}': it never returns", context)
            return
        calls: dict[Instruction, Sequence[Value]] = {}  # what calls use through closures
        for inst in fn.instructions():
            if isinstance(inst, ApplyInst) and (resolved := resolve_callee(self.module, inst)) is not None:
                calls[inst] = resolved.arguments
        liveness = compute_liveness(fn, info.is_active, calls, returning)
        for block in fn.blocks:
            if block not in returning:
                continue
            term = block.terminator
            if term is None:
                continue
            edges: dict[Block, list[Value]] = {}
            for succ, args in term.successor_args():
                differ = succ in edges and any(
                    info.is_active(arg) and a is not b for arg, a, b in zip(succ.args, edges[succ], args)
                )
                if differ:
                    self.error(
                        term.span,
                        "cannot differentiate a branch that reaches one block twice with different "
                        "arguments yet",
                        context,
                    )
                edges.setdefault(succ, list(args))
            crossing = [*liveness.live_out[block], *(a for _, args in term.successor_args() for a in args)]
            tensors = [v for v in crossing if info.is_active(v) and isinstance(v.type, TensorType)]
            if tensors:
                self.error(
                    term.span,
                    "cannot differentiate a tensor whose tangent crosses blocks yet: "
                    "its zero tangent would need its shape",
                    context,
                )

    def _carries_derivative(self, inst: Instruction, info: ActivityInfo) -> bool:
        """Whether a varied value with a tangent goes in and the result is useful: a derivative
        must go through. (A varied Int only comes from an instruction already reported.)"""
        module = self.module
        return any(
            op in info.varied and module.tangent_type(op.type) is not None for op in inst.operands
        ) and any(r in info.useful for r in inst.results)

    def _check_builtin(self, inst: BuiltinInst, info: ActivityInfo, context: CallChain | None) -> None:
        builtin = BUILTINS.get(inst.name)
        if builtin is None or not self._carries_derivative(inst, info):
            return
        if not builtin.differentiable:
            message = f"expression is not differentiable: '{inst.name}' has no derivative"
        elif inst.name not in RULES:
            message = f"cannot differentiate '{inst.name}' yet: its derivative needs the tensor's shape"
        elif may_broadcast(inst.name, [op.type for op in inst.operands]):
            message = (
                f"cannot differentiate '{inst.name}' of two tensors yet: "
                "a broadcast operand's cotangent cannot be summed back to its shape"
            )
        else:
            return
        self.error(inst.span, message, context)

    def _check_apply(self, inst: ApplyInst, info: ActivityInfo, context: CallChain | None) -> Request | None:
        """Report what stops the call's derivative, or return the callee to check for it."""
        if not self._carries_derivative(inst, info):
            return None
        resolved = resolve_callee(self.module, inst)
        if resolved is None:
            self.error(
                inst.span,
                OPAQUE_CALLEE,
                context,
            )
            return None
        callee = resolved.function
        wrt = tuple(
            i
            for i, arg in enumerate(resolved.arguments)
            if arg in info.varied and self.module.tangent_type(arg.type) is not None
        )
        if not wrt or registered_derivative(callee, wrt) is not None:
            return None
        if callee.is_declaration:
            self.error(
                inst.span,
                "function is not differentiable",
                context,
                note(callee.span, f"'@{callee.name}' has neither a body nor a registered derivative"),
            )
            return None
        here = note(inst.span, f"in the derivative of '@{callee.name}', needed for this call")
        return callee, Config(0, wrt), CallChain(here, context)

    def error(self, span: Span | None, message: str, context: CallChain | None, *notes: Diagnostic) -> None:
        calls = []
        while context is not None:
            calls.append(context.call)
            context = context.outer
        self.errors.append(Diagnostic("error", message, span, [*calls, *notes]))


@register_pass
class DifferentiationDiagnostics(Pass):
    """Reports every reason the module's requests cannot be differentiated; changes nothing."""

    name = "differentiation-diagnostics"
    description = "Report what cannot be differentiated (non-differentiable builtins and calls)"

    def run(self, module: Module, ctx: PassContext) -> None:
        errors = DifferentiabilityChecker(module).check_module()
        if errors:
            raise SILError(errors)
