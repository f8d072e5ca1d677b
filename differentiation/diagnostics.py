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
  ``[jvp]`` and ``[vjp]``, for the parameters it is differentiable in and every result of
  differentiable type);
- an active value put into an enum payload or a struct that is not ``Differentiable``, which
  carry no derivative;
- what control flow cannot do yet: a branch that reaches one block twice with different
  arguments (the trace names the predecessor, not the edge), a tuple or struct holding a tensor
  whose tangent must cross blocks (its zero would need the tensor's shape), a function that
  never returns.
A problem inside a function differentiated for a call carries a note at that call.

The activity it computes is the differentiation context's when a pass gives it one, so that the
emitters reuse it; ``-lower-gradient`` runs it on the module as it will be once its extracts are
lowered (``requests.Lowered``), so that it checks everything before it changes anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import attrs

from analysis.activity import ActivityCache, ActivityInfo, Config
from analysis.explain import ActivityExplainer, named_values, parameter_index, short_chain
from differentiation.requests import NOTHING_LOWERED, Lowered, Request, derivative_requests, seen_lowered
from differentiation.rules import RULES
from sil import derivative_types as dt
from sil.builtins import BUILTINS
from sil.cfg import blocks_that_return
from sil.diagnostics import Diagnostic, SILError, Span, note
from sil.instructions import (
    ApplyInst,
    BuiltinInst,
    DifferentiableFunctionExtractInst,
    DifferentiableFunctionInst,
    EnumInst,
    FunctionRefInst,
    PartialApplyInst,
    StructInst,
    ThinToThickFunctionInst,
)
from sil.ir import Block, DifferentiableAttr, Function, Instruction, Module, Result, Value
from sil.passes import Pass, PassContext, register_pass
from sil.transforms.before_ad import register_rejection_check
from sil.types import FunctionType, TensorType, TupleType, Type

OPAQUE_CALLEE = "expression is not differentiable: the callee is a function value that cannot be seen through"
# A call the checks let through (no argument carries a derivative) of a function value that
# itself varies: the planner finds it (``LinearMapInfo._plan_call``).
OPAQUE_CALL = "cannot differentiate a call of an opaque function value"
VARIED_CLOSURE = (
    "the function value itself depends on the parameters differentiated (a closure over them, such as "
    "a pullback), and is not one that -differentiation can replace by the values it binds; -O before "
    "differentiating may see through it (-inline, -closure-specialize)"
)
SYNTHESIZED_CODE = (
    "the problem is in code an earlier pass synthesized, which has no source: this is the request "
    "that differentiates it"
)


@attrs.frozen
class ResolvedCallee:
    """The function an ``apply`` calls, seen through closures, and how its parameters line up:
    ``arguments[i]`` is the value passed as the callee's parameter ``i``."""

    function: Function
    arguments: tuple[Value, ...]


def _unwrap_callee(apply: ApplyInst, lowered: Lowered) -> tuple[Value, list[Value]]:
    """The function value behind an apply's callee, seen through ``thin_to_thick_function``,
    ``partial_application`` (whose bound arguments come back too) and the ``[original]`` of a
    ``differentiable_function`` still to be differentiated (which asks the same derivatives);
    each as it will be once the extracts ``lowered`` holds are."""
    callee = apply.callee
    bound: list[Value] = []
    while isinstance(callee := seen_lowered(callee, lowered), Result):
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
    if isinstance(owner, DifferentiableFunctionInst) and not owner.has_derivatives:
        return owner.original
    return None


def resolve_callee(
    module: Module, apply: ApplyInst, lowered: Lowered = NOTHING_LOWERED
) -> ResolvedCallee | None:
    """The function behind an apply's callee (a ``function_ref``, possibly made thick or partially
    applied), or None when it is a function value (a parameter, a loaded closure…)."""
    callee, bound = _unwrap_callee(apply, lowered)
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

    def sources(self, module: Module) -> tuple[int, ...]:
        """The results the value's derivatives are of: every one of differentiable type."""
        t = self.bundle.type
        assert isinstance(t, FunctionType)
        return dt.resolve_sources(module, t.plain(), None)


def resolve_bundle_callee(apply: ApplyInst, lowered: Lowered = NOTHING_LOWERED) -> BundleCallee | None:
    """The ``@differentiable`` function value whose original an apply calls, if it does."""
    callee, bound = _unwrap_callee(apply, lowered)
    owner = callee.owner if isinstance(callee, Result) else None
    if isinstance(owner, DifferentiableFunctionExtractInst) and owner.extractee == "original":
        return BundleCallee(owner.operands[0], (*apply.args, *bound))
    return None


@attrs.frozen
class CallChain:
    """The calls that led to a function's check, innermost first: a note at each, shared by the
    checks of all the callees below it (so a chain of n calls keeps n notes, not n² copies)."""

    call: Diagnostic
    outer: CallChain | None


PendingCheck = tuple[Function, Config, CallChain | None, tuple[str, ...]]
"""A function to check, how it is differentiated, the calls that led to it, and the kinds of
derivative needed."""


class DifferentiabilityChecker:
    """Finds every problem in the functions a module asks to differentiate, and in their callees."""

    def __init__(
        self,
        module: Module,
        activity: Callable[[Function, Config], ActivityInfo] | None = None,
        lowered: Lowered = NOTHING_LOWERED,
    ) -> None:
        self.module = module
        # The differentiation context's, so that the emitters reuse what the checks computed.
        self.activity = ActivityCache(module) if activity is None else activity
        self.lowered = lowered  # the module is checked as it will be once these are lowered
        self.errors: list[Diagnostic] = []
        # Where the request being checked was made: what a problem in code without a source (a
        # function an earlier pass synthesized) is reported at.
        self._site: Span | None = None
        self._checked: set[tuple[str, Config, tuple[str, ...]]] = set()
        self.checked: list[tuple[Function, Config]] = []
        """Each function and configuration checked, in order: the requests, and the callees
        they differentiate (what ``--explain-activity`` can explain)."""

    def check_module(self) -> list[Diagnostic]:
        return self.check_requests(derivative_requests(self.module, self.lowered))

    def check_requests(self, requests: Iterable[Request]) -> list[Diagnostic]:
        """Every problem in ``requests`` (those a registered derivative does not answer) and in
        the callees they need differentiated, in source order."""
        for request in requests:
            fn, config, site = request.function, request.config, request.site
            missing = request.unanswered(self.module)
            if not missing:
                continue
            self._site = site.span if site is not None else fn.span
            if fn.is_declaration:
                self._not_differentiable(self._site, fn, None, missing, config)
            else:
                self.check(fn, config, None, missing)
        return sorted(self.errors, key=lambda d: d.span.start if d.span is not None else -1)

    def check(self, fn: Function, config: Config, context: CallChain | None, kinds: tuple[str, ...]) -> None:
        """Check ``fn`` differentiated as ``config`` for derivatives of ``kinds`` ("jvp", "vjp"), and
        the callees it needs differentiated; ``context`` says which calls led here.

        Each function's check is a generator that yields the callees to check before it goes on,
        run from a stack: a chain of calls, however long, is not a chain of Python frames, and
        problems are found in the order a depth-first walk finds them."""
        stack = [self._check_function(fn, config, context, kinds)]
        while stack:
            callee = next(stack[-1], None)
            if callee is None:
                stack.pop()
            else:
                stack.append(self._check_function(*callee))

    def _check_function(
        self, fn: Function, config: Config, context: CallChain | None, kinds: tuple[str, ...]
    ) -> Iterator[PendingCheck]:
        key = (fn.name, config, kinds)
        if key in self._checked:
            return
        self._checked.add(key)
        self.checked.append((fn, config))
        info = self.activity(fn, config)
        if len(fn.blocks) > 1 or not blocks_that_return(fn):
            self._check_control_flow(fn, info, context)  # one block may end in `unreachable` too
        for inst in fn.instructions():
            if isinstance(inst, BuiltinInst):
                self._check_builtin(inst, info, context)
            elif isinstance(inst, ApplyInst):
                pending = self._check_apply(inst, info, context, kinds)
                if pending is not None:
                    yield pending
            elif (
                isinstance(inst, EnumInst)
                and self.module.tangent_type(inst.type) is None
                and self._carries_derivative(inst, info)
            ):
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

    def _carries_derivative(self, inst: Instruction, info: ActivityInfo) -> bool:
        """Whether a varied value with a tangent goes in and the result is useful: a derivative
        must go through. (A varied Int only comes from an instruction already reported.)"""
        module = self.module
        return any(
            op in info.varied and module.tangent_type(op.type) is not None for op in inst.operands
        ) and any(r in info.useful for r in inst.results)

    def _check_builtin(self, inst: BuiltinInst, info: ActivityInfo, context: CallChain | None) -> None:
        builtin = BUILTINS.get(inst.name)
        if builtin is None or builtin.zero_derivative or not self._carries_derivative(inst, info):
            return
        if not builtin.differentiable:
            message = f"expression is not differentiable: '{inst.name}' has no derivative"
        elif inst.name not in RULES:
            message = f"cannot differentiate '{inst.name}' yet: no rule for its derivative"
        else:
            return
        self.error(inst.span, message, context, *active_path_notes(inst, info, context is None))

    def _check_apply(
        self, inst: ApplyInst, info: ActivityInfo, context: CallChain | None, kinds: tuple[str, ...]
    ) -> PendingCheck | None:
        """Report what stops the call's derivative, or return the callee to check for it."""
        if not self._carries_derivative(inst, info):
            return None
        resolved = resolve_callee(self.module, inst, self.lowered)
        if resolved is None:
            through = resolve_bundle_callee(inst, self.lowered)
            if through is None:
                self.error(inst.span, OPAQUE_CALLEE, context)
            else:
                self._check_bundle_call(inst, through, info, context, kinds)
            return None
        callee = resolved.function
        sources = info.active_elements(inst.result)
        wrt = tuple(
            i
            for i, arg in enumerate(resolved.arguments)
            if arg in info.varied and self.module.tangent_type(arg.type) is not None
        )
        if not sources or not wrt:
            return None
        config = Config(sources, wrt)
        missing = Request(callee, config, kinds, inst).unanswered(self.module)
        if not missing:
            return None
        if callee.is_declaration:
            self._not_differentiable(
                inst.span, callee, context, missing, config, *active_path_notes(inst, info, context is None)
            )
            return None
        here = note(inst.span, f"in the derivative of '@{callee.name}', needed for this call")
        return callee, config, CallChain(here, context), missing

    def _check_bundle_call(
        self,
        inst: ApplyInst,
        through: BundleCallee,
        info: ActivityInfo,
        context: CallChain | None,
        kinds: tuple[str, ...],
    ) -> None:
        """A call of a ``@differentiable`` function value: its derivatives cover its own parameters
        and every result of differentiable type. A varied argument for a ``@noDerivative``
        parameter stops it, and so, in reverse mode, does a result the call leaves unused whose
        zero cotangent would need a tensor's shape."""
        for i, arg in enumerate(through.arguments):
            if i not in through.wrt and arg in info.varied and self.module.tangent_type(arg.type) is not None:
                noun = f"parameter {i} of the function value"
                self.error(inst.span, f"expression is not differentiable: {noun} is @noDerivative", context)
                return
        if "vjp" not in kinds:
            return
        t = inst.result.type
        results = t.elements if isinstance(t, TupleType) and len(t.elements) > 1 else (t,)
        used = info.active_elements(inst.result)
        for i in through.sources(self.module):
            if i not in used and self._holds_tensor(results[i]):
                message = (
                    f"cannot differentiate a call of a @differentiable function value that leaves its "
                    f"result {i} unused yet: its zero cotangent would need a tensor's shape"
                )
                self.error(inst.span, message, context)
                return

    def _holds_tensor(self, t: Type) -> bool:
        """Whether the tangent of ``t`` holds a tensor (whose zero needs its shape)."""
        if isinstance(t, TensorType):
            return True
        if isinstance(t, TupleType):
            return any(self._holds_tensor(e) for e in t.elements)
        decl = self.module.struct(str(t))
        return decl is not None and any(
            not f.no_derivative and self._holds_tensor(f.type) for f in decl.fields
        )

    def _not_differentiable(
        self,
        span: Span | None,
        fn: Function,
        context: CallChain | None,
        missing: tuple[str, ...],
        config: Config,
        *path: Diagnostic,
    ) -> None:
        """A request or a call needs the derivatives ``missing`` of ``fn`` for ``config``, which
        ``fn`` has no body to make them from; ``path`` notes the active path to the call."""
        what = missing[0].upper() if len(missing) == 1 else "derivative"
        why = f"'@{fn.name}' has neither a body nor a registered {what}"
        if any(isinstance(attr, DifferentiableAttr) for attr in fn.attributes):
            why = f"'@{fn.name}' has no body, and no {what} registered for {config.describe()}"
        named = " ".join(f"{kind} @{fn.name}_{kind}" for kind in missing)
        fix = f"fix-it: register it: 'sil [differentiable {config.describe()} {named}] @{fn.name} …'"
        reason = note(fn.span, f"{why}; {fix}")
        self.error(span, "function is not differentiable", context, *path, reason)

    def error(self, span: Span | None, message: str, context: CallChain | None, *notes: Diagnostic) -> None:
        calls = []
        while context is not None:
            calls.append(context.call)
            context = context.outer
        if span is None and self._site is not None:
            span = self._site
            calls.insert(0, note(None, SYNTHESIZED_CODE))
        self.errors.append(Diagnostic("error", message, span, [*calls, *notes]))


def active_path_notes(inst: Instruction, info: ActivityInfo, requested: bool) -> list[Diagnostic]:
    """Notes for a problem at ``inst`` on an active path: the shortest path from a ``wrt``
    parameter through ``inst`` to a result, and the fix-its that cut it: a use wrapped in
    ``no_derivative``, and, where the function is differentiated because a request names it
    (``requested``; not for a call), a request without that parameter, which makes it
    ``@noDerivative`` (a function's own type cannot mark it: only a ``@differentiable`` one can)."""
    chain = ActivityExplainer(info).chain_through(inst)
    index = None if chain is None else parameter_index(chain.start)
    if chain is None or index is None:
        return []
    fn = info.function
    printer, _ = named_values(fn)
    path = f"active path from parameter {index} of '@{fn.name}': {short_chain(printer, chain)}"
    others = [str(i) for i in info.config.wrt if i != index]
    if requested and others:
        rest = ", ".join(others)
        path += (
            f"; fix-it: if parameter {index} needs no derivative, ask for 'wrt {rest}' (then @noDerivative)"
        )
    used = next(f.source for f in chain.flows if f.through is inst)
    wrap = f'builtin "no_derivative"({printer.typed(used)}) : ${used.type.text}'
    return [
        note(fn.span, path),
        note(inst.span, f"fix-it: if this use of {printer.value(used)} needs no derivative, pass '{wrap}'"),
    ]


@register_pass
class DifferentiationDiagnostics(Pass):
    """Reports every reason the module's requests cannot be differentiated; changes nothing."""

    name = "differentiation-diagnostics"
    description = "Report what cannot be differentiated (non-differentiable builtins and calls)"

    def run(self, module: Module, ctx: PassContext) -> None:
        errors = DifferentiabilityChecker(module).check_module()
        if errors:
            raise SILError(errors)


@register_rejection_check
def rejects(module: Module) -> bool:
    """Whether differentiation would stop at the module's requests: the optimization passes then
    leave it as written, so that what this reports is about the code the user wrote."""
    try:
        return bool(DifferentiabilityChecker(module).check_module())
    except SILError:
        return True
