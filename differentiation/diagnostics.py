"""``-differentiation-diagnostics``: everything that would stop differentiation, reported at once.

Run before any derivative is emitted (as Swift's differentiation diagnostics are), so the emitters
can assume what they are given is differentiable. For every request (``requests.py``) that a
registered derivative does not answer (a request of a function without a body is then "function is
not differentiable", at the request), and for every function an active call makes it
differentiate, it reports:
- an active value through a builtin with no derivative ("expression is not differentiable"), or
  through one whose rule is not there yet (see ``differentiation/rules.py``);
- an active call of a function with neither a body nor a registered derivative ("function is not
  differentiable", with a note at the callee's declaration), or of a function value it cannot see
  through (the ``[original]`` of a ``@differentiable`` value is differentiated with the value's own
  ``[jvp]`` and ``[vjp]``, for the parameters it is differentiable in and its result 0);
- an active value put into an enum payload or a struct that is not ``Differentiable``, which
  carry no derivative;
- what control flow cannot do yet: a branch that reaches one block twice with different
  arguments (the trace names the predecessor, not the edge), a tensor whose tangent must cross
  blocks (a zero tangent would need its shape), a function that never returns.
A problem inside a function differentiated for a call carries a note at that call.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from analysis.activity import ActivityInfo, Config, analyze_activity
from analysis.liveness import compute_liveness
from differentiation.legacy.pairs import legacy_pair
from differentiation.requests import Request, derivative_requests
from differentiation.rules import RULES, may_broadcast
from sil.builtins import BUILTINS
from sil.cfg import blocks_that_return
from sil.derivative_types import several_results
from sil.diagnostics import Diagnostic, SILError, Span, note
from sil.instructions import (
    ApplyInst,
    BuiltinInst,
    DifferentiableFunctionExtractInst,
    DifferentiableFunctionInst,
    EnumInst,
    FunctionRefInst,
    GradientInst,
    PartialApplyInst,
    StructInst,
    ThinToThickFunctionInst,
)
from sil.ir import Block, DifferentiableAttr, Function, Instruction, Module, Result, Value
from sil.passes import Pass, PassContext, register_pass
from sil.types import FunctionType, TensorType

OPAQUE_CALLEE = "expression is not differentiable: the callee is a function value that cannot be seen through"


@attrs.frozen
class ResolvedCallee:
    """The function an ``apply`` calls, seen through closures, and how its parameters line up:
    ``arguments[i]`` is the value passed as the callee's parameter ``i``."""

    function: Function
    arguments: tuple[Value, ...]


def _unwrap_callee(apply: ApplyInst) -> tuple[Value, list[Value]]:
    """The function value behind an apply's callee, seen through ``thin_to_thick_function``,
    ``partial_application`` (whose bound arguments come back too) and the ``[original]`` of a
    ``differentiable_function`` still to be differentiated (which asks the same derivatives)."""
    callee = apply.callee
    bound: list[Value] = []
    while isinstance(callee, Result):
        owner = callee.owner
        if isinstance(owner, ThinToThickFunctionInst):
            callee = owner.operands[0]
        elif isinstance(owner, PartialApplyInst):
            bound = [*owner.args, *bound]  # partial application binds trailing arguments
            callee = owner.callee
        elif isinstance(owner, DifferentiableFunctionExtractInst) and (seen := _requested(owner)) is not None:
            callee = seen
        else:
            break
    return callee, bound


def _requested(extract: DifferentiableFunctionExtractInst) -> Value | None:
    """The function an ``[original]`` extract takes out of a bundle without derivatives yet."""
    bundle = extract.operands[0]
    if extract.extractee != "original" or not isinstance(bundle, Result):
        return None
    owner = bundle.owner
    if isinstance(owner, DifferentiableFunctionInst) and len(owner.operands) == 1:
        return owner.original
    return None


def resolve_callee(module: Module, apply: ApplyInst) -> ResolvedCallee | None:
    """The function behind an apply's callee (a ``function_ref``, possibly made thick or partially
    applied), or None when it is a function value (a parameter, a loaded closure…)."""
    callee, bound = _unwrap_callee(apply)
    if isinstance(callee, Result) and isinstance(callee.owner, FunctionRefInst):
        fn = module.functions.get(callee.owner.function_name)
        return None if fn is None else ResolvedCallee(fn, (*apply.args, *bound))
    return None


@attrs.frozen
class BundleCallee:
    """A call of the ``[original]`` of a ``@differentiable`` function value ``bundle``: its
    derivatives are the same value's ``[jvp]`` and ``[vjp]``, as in Swift's SIL, for the
    parameters ``wrt`` the value is differentiable in. ``arguments`` as in ``ResolvedCallee``."""

    bundle: Value
    arguments: tuple[Value, ...]

    @property
    def wrt(self) -> tuple[int, ...]:
        t = self.bundle.type
        assert isinstance(t, FunctionType)
        return tuple(i for i, nd in enumerate(t.no_derivative) if not nd)


def resolve_bundle_callee(apply: ApplyInst) -> BundleCallee | None:
    """The ``@differentiable`` function value whose original an apply calls, if it does."""
    callee, bound = _unwrap_callee(apply)
    owner = callee.owner if isinstance(callee, Result) else None
    if isinstance(owner, DifferentiableFunctionExtractInst) and owner.extractee == "original":
        return BundleCallee(owner.operands[0], (*apply.args, *bound))
    return None


class DifferentiabilityChecker:
    """Finds every problem in the functions a module asks to differentiate, and in their callees."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.errors: list[Diagnostic] = []
        self._checked: set[tuple[str, Config, tuple[str, ...]]] = set()

    def check_module(self) -> list[Diagnostic]:
        for request in derivative_requests(self.module):
            fn, config, site = request.function, request.config, request.site
            if isinstance(site, GradientInst) and legacy_pair(self.module, fn, config) is not None:
                continue  # a legacy pair answers it as it is
            missing = request.unanswered(self.module)
            if not missing:
                continue
            if fn.is_declaration:
                self._not_differentiable(site.span if site is not None else fn.span, fn, [], missing, config)
            else:
                self.check(fn, config, [], missing)
        return sorted(self.errors, key=lambda d: d.span.start if d.span is not None else -1)

    def check(self, fn: Function, config: Config, context: list[Diagnostic], kinds: tuple[str, ...]) -> None:
        """Check ``fn`` differentiated as ``config`` for derivatives of ``kinds`` ("jvp", "vjp");
        ``context`` notes say which calls led here."""
        key = (fn.name, config, kinds)
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
                self._check_apply(inst, info, context, kinds)
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

    def _check_control_flow(self, fn: Function, info: ActivityInfo, context: list[Diagnostic]) -> None:
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

    def _check_builtin(self, inst: BuiltinInst, info: ActivityInfo, context: list[Diagnostic]) -> None:
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

    def _check_apply(
        self, inst: ApplyInst, info: ActivityInfo, context: list[Diagnostic], kinds: tuple[str, ...]
    ) -> None:
        if not self._carries_derivative(inst, info):
            return
        resolved = resolve_callee(self.module, inst)
        if resolved is None:
            through = resolve_bundle_callee(inst)
            if through is None:
                self.error(inst.span, OPAQUE_CALLEE, context)
            else:
                self._check_bundle_call(inst, through, info, context)
            return
        callee = resolved.function
        sources = info.active_elements(inst.result)
        wrt = tuple(
            i
            for i, arg in enumerate(resolved.arguments)
            if arg in info.varied and self.module.tangent_type(arg.type) is not None
        )
        if not sources or not wrt:
            return
        config = Config(sources, wrt)
        missing = Request(callee, config, kinds, inst).unanswered(self.module)
        if not missing:
            return
        if callee.is_declaration:
            self._not_differentiable(inst.span, callee, context, missing, config)
            return
        here = note(inst.span, f"in the derivative of '@{callee.name}', needed for this call")
        self.check(callee, config, [here, *context], missing)

    def _check_bundle_call(
        self, inst: ApplyInst, through: BundleCallee, info: ActivityInfo, context: list[Diagnostic]
    ) -> None:
        """A call of a ``@differentiable`` function value: its derivatives cover its own parameters
        and its result 0."""
        t = through.bundle.type
        assert isinstance(t, FunctionType)
        for i, arg in enumerate(through.arguments):
            if i not in through.wrt and arg in info.varied and self.module.tangent_type(arg.type) is not None:
                noun = f"parameter {i} of the function value"
                self.error(inst.span, f"expression is not differentiable: {noun} is @noDerivative", context)
                return
        if several_results(t.result):
            message = (
                "cannot differentiate a call of a @differentiable function value with several results "
                "yet: its derivatives are of result 0"
            )
            self.error(inst.span, message, context)

    def _not_differentiable(
        self,
        span: Span | None,
        fn: Function,
        context: list[Diagnostic],
        missing: tuple[str, ...],
        config: Config,
    ) -> None:
        """A request or a call needs the derivatives ``missing`` of ``fn`` for ``config``, which
        ``fn`` has no body to make them from."""
        what = missing[0].upper() if len(missing) == 1 else "derivative"
        why = f"'@{fn.name}' has neither a body nor a registered {what}"
        if any(isinstance(attr, DifferentiableAttr) for attr in fn.attributes):
            why = f"'@{fn.name}' has no body, and no {what} registered for {config.describe()}"
        reason = note(fn.span, why)
        self.error(span, "function is not differentiable", [*context, reason])

    def error(self, span: Span | None, message: str, notes: list[Diagnostic]) -> None:
        self.errors.append(Diagnostic("error", message, span, list(notes)))


@register_pass
class DifferentiationDiagnostics(Pass):
    """Reports every reason the module's requests cannot be differentiated; changes nothing."""

    name = "differentiation-diagnostics"
    description = "Report what cannot be differentiated (non-differentiable builtins and calls)"

    def run(self, module: Module, ctx: PassContext) -> None:
        errors = DifferentiabilityChecker(module).check_module()
        if errors:
            raise SILError(errors)
