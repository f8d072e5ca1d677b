"""``-differentiation`` and ``-lower-gradient``: answer the module's derivative requests.

Each pass checks everything first (``diagnostics.py``) and changes the module only once nothing
can stop it; the derivatives come from a differentiation context (``differentiator.py``), which
takes back what it added should anything fail after all. A ``gradient`` is answered by a
registered gradient form where one applies (``requests.py``; the legacy primal and adjoint), else
through a VJP."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import attrs

from analysis.activity import Config
from differentiation.diagnostics import (
    OPAQUE_CALL,
    SYNTHESIZED_CODE,
    DifferentiabilityChecker,
    resolve_bundle_callee,
    resolve_callee,
)
from differentiation.differentiator import Differentiator
from differentiation.naming import gradient_name
from differentiation.requests import (
    GradientParts,
    Lowered,
    Request,
    attribute_config,
    bundle_requests,
    derivative_requests,
    gradient_form,
    gradient_requests,
    lowered_view,
    named_extracts,
)
from differentiation.statistics import ADStatistics
from differentiation.thunks import pick_tangents
from sil import derivative_types as dt
from sil.builder import Builder
from sil.diagnostics import Diagnostic, SILError, Span, note
from sil.instructions import (
    ApplyInst,
    DifferentiableFunctionExtractInst,
    DifferentiableFunctionInst,
    FunctionRefInst,
    GradientInst,
)
from sil.ir import DifferentiableAttr, Function, FunctionAttr, Instruction, Module, Result, Value
from sil.passes import Pass, PassContext, register_pass
from sil.transforms.defunctionalize import (
    Defunctionalized,
    NotDefunctionalizable,
    defunctionalize,
    reached_functions,
)
from sil.types import TensorType


def _check(d: Differentiator) -> None:
    """Report everything that stops the module's requests, before any is answered (the activity
    the checks compute is the context's, for its emitters)."""
    errors = DifferentiabilityChecker(d.module, d.activity).check_module()
    if errors:
        raise SILError(errors)


def _defunctionalize_requests(module: Module) -> tuple[list[Defunctionalized], list[str]]:
    """Defunctionalize each function to differentiate that applies a closure passed to it from
    another function (a gradient applying its VJP's pullback, to differentiate it again), so that
    what the closure binds is differentiated as values. One whose closures cannot be is left as
    it is, for the checks to report, with the reason why (the second list)."""
    done, refused = [], []
    for fn in dict.fromkeys(r.function for r in derivative_requests(module) if r.unanswered(module)):
        if fn.is_declaration or not any(
            _applies_unseen_closure(module, f) for f in reached_functions(module, [fn])
        ):
            continue
        try:
            done.append(defunctionalize(module, [fn], differentiable_records=True))
        except NotDefunctionalizable as e:
            refused.append(f"the closures @{fn.name} applies cannot be replaced by what they bind: {e}")
    return done, refused


def _with_reasons(error: SILError, refused: list[str]) -> SILError:
    """``error`` with why defunctionalization did not apply, noted at each opaque call."""
    if not refused:
        return error
    diagnostics = [
        attrs.evolve(d, notes=[*d.notes, *(note(None, reason) for reason in refused)])
        if d.message.startswith(OPAQUE_CALL)
        else d
        for d in error.diagnostics
    ]
    return SILError(diagnostics)


def _applies_unseen_closure(module: Module, fn: Function) -> bool:
    """Whether ``fn`` applies a function value the checks cannot see through."""
    return any(
        isinstance(inst, ApplyInst)
        and resolve_callee(module, inst) is None
        and resolve_bundle_callee(inst) is None
        for inst in fn.instructions()
    )


def _stand_in(request: Instruction, *values: Value) -> None:
    """The instructions defining ``values`` replace ``request``: they take its place in the source,
    so that a fault or a diagnostic at one of them (``--max-steps`` running out there, a check of
    the bundle) points at the line the user wrote."""
    for value in values:
        if isinstance(value, Result) and value.owner is not None:
            value.owner.span = request.span


def _gradient_name(original: Function, inst: GradientInst) -> str:
    config = Config(inst.source, inst.wrt)
    return gradient_name(original.name, config, inst.seedable, inst.preserving_result)


def _lower_extracts(extracts: list[tuple[DifferentiableFunctionExtractInst, int]]) -> None:
    """Each of ``named_extracts`` becomes the value it extracts; a bundle left unused goes, and so
    do the references to its derivatives nothing else uses."""
    for inst, part in extracts:
        bundle = inst.operands[0]
        assert isinstance(bundle, Result)
        owner = bundle.owner
        assert isinstance(owner, DifferentiableFunctionInst)
        inst.result.replace_all_uses_with(owner.operands[part])
        inst.erase()
        if not owner.result.uses:
            references = [op for op in owner.operands[1:] if isinstance(op, Result)]
            owner.erase()
            for ref in references:  # the derivatives' function_refs, if nothing else uses them
                if isinstance(ref.owner, FunctionRefInst) and not ref.uses:
                    ref.owner.erase()


@attrs.define
class _ThroughVJP:
    """A gradient through a VJP (registered or synthesized) for the parameters ``covered``: the
    VJP gives the result and the pullback, the pullback of the seed the gradients, of which those
    for ``wrt`` are kept."""

    vjp: Function
    covered: tuple[int, ...]
    wrt: tuple[int, ...]
    pullback: Value | None = None

    def call(self, b: Builder, arguments: Sequence[Value]) -> Value:
        result, self.pullback = b.destructure_tuple(b.apply(b.function_ref(self.vjp), *arguments))
        return result

    def tangents(self, b: Builder, seed: Value) -> Value:
        assert self.pullback is not None
        return pick_tangents(b, b.apply(self.pullback, seed), self.covered, self.wrt)


def derivative(module: Module, original: Function, config: Config, kind: str) -> Function:
    """The derivative of ``kind`` ("jvp" or "vjp") of ``original`` for exactly ``config``, as
    ``-differentiation`` answers a request for it: a registered one (through a subset-parameters
    thunk where it is registered for more parameters), else one synthesized into ``module`` once
    the same checks found nothing that stops it. For callers that ask without writing a request
    into the module (``silopt.api``); ``module`` is left as it was when this raises SILError."""
    d = Differentiator(module)
    errors = DifferentiabilityChecker(module, d.activity).check_requests(
        [Request(original, config, (kind,), None)]
    )
    if errors:
        raise SILError(errors)
    try:
        return d.derivative_for(original, config, kind)[0]
    except SILError:
        d.roll_back()
        raise


@contextmanager
def _located_at(span: Span | None) -> Iterator[None]:
    """A problem found in code without a source (a function an earlier pass synthesized), while
    answering a request made at ``span``, is reported there, with a note saying why."""
    try:
        yield
    except SILError as error:
        if span is None or all(d.span is not None for d in error.diagnostics):
            raise
        raise SILError(
            [
                d
                if d.span is not None
                else attrs.evolve(d, span=span, notes=[note(None, SYNTHESIZED_CODE), *d.notes])
                for d in error.diagnostics
            ]
        ) from None


@register_pass
class Differentiation(Pass):
    """Answers every derivative request, after checking that all can be differentiated: the JVP
    and VJP a ``[differentiable]`` attribute lacks, the derivatives of each ``differentiable_function``
    of a ``function_ref`` (which then names them: ``with_derivative``), and the VJP of each function
    a ``gradient`` differentiates."""

    name = "differentiation"
    description = "Synthesize JVPs, VJPs, differentials and pullbacks for the module's derivative requests"
    statistics: ADStatistics | None = None  # what the derivatives made are like (--ad-stats)

    def run(self, module: Module, ctx: PassContext) -> None:
        rewritten, refused = _defunctionalize_requests(module)
        try:
            self._answer(module)
        except SILError as e:
            for done in reversed(rewritten):
                done.revert()
            raise _with_reasons(e, refused) from None
        for done in rewritten:
            done.commit()

    def _answer(self, module: Module) -> None:
        d = Differentiator(module, self.statistics)
        _check(d)
        saved: list[tuple[Function, list[FunctionAttr]]] = []
        try:
            for fn in list(module.functions.values()):
                if fn.is_declaration:
                    continue
                for i, attr in enumerate(fn.attributes):
                    if isinstance(attr, DifferentiableAttr) and (attr.vjp is None or attr.jvp is None):
                        config = attribute_config(module, fn, attr)
                        d.request("[differentiable]", fn, config, fn.span)
                        with _located_at(fn.span):
                            jvp_name = attr.jvp or d.jvp_for(fn, config).name
                            vjp_name = attr.vjp or d.vjp_for(fn, config).name
                        if self.statistics is not None and attr.vjp is not None:
                            self.statistics.answered("vjp", attr.vjp)
                        saved.append((fn, list(fn.attributes)))
                        fn.attributes[i] = attrs.evolve(attr, jvp=jvp_name, vjp=vjp_name)
            bundles = []
            for original, asked, config in bundle_requests(module):
                d.request("differentiable_function", original, config, asked.span)
                with _located_at(asked.span):
                    bundles.append((asked, d.jvp_for(original, config), d.vjp_for(original, config)))
            for original, inst in gradient_requests(module):
                config = Config(inst.source, inst.wrt)
                d.request("gradient", original, config, inst.span, inst.seedable, inst.preserving_result)
                if gradient_form(module, original, config) is None:
                    with _located_at(inst.span):
                        d.derivative_for(original, config, "vjp", exact=False)
        except SILError:
            for fn, attributes in reversed(saved):
                fn.attributes = attributes
            d.roll_back()
            raise
        for request, jvp, vjp in bundles:
            b = Builder.before(request, module)
            jvp_ref, vjp_ref = b.function_ref(jvp), b.function_ref(vjp)
            bundle = b.differentiable_function(
                request.original, request.parameters, jvp_ref, vjp_ref, request.result_indices
            )
            _stand_in(request, jvp_ref, vjp_ref, bundle)
            request.result.replace_all_uses_with(bundle)
            request.erase()


@register_pass
class LowerGradient(Pass):
    """Replaces each ``gradient`` with a reference to a synthesized ``@AD__f__grad_…`` function: it
    calls the VJP, seeds the pullback with 1 (or the seed argument, ``[seedable]``) and returns the
    gradients (after the original result, ``[preserving_result]``)."""

    name = "lower-gradient"
    description = "Turn gradient into calls of synthesized gradient functions, and extracts into references"
    statistics: ADStatistics | None = None  # what the derivatives made are like (--ad-stats)

    def run(self, module: Module, ctx: PassContext) -> None:
        extracts = named_extracts(module)
        lowered = lowered_view(extracts)
        requests = gradient_requests(module, lowered)  # the same once the extracts are lowered
        if requests:
            self._check(module, lowered, requests)
        _lower_extracts(extracts)
        if not requests:
            return
        d = Differentiator(module, self.statistics)
        try:
            built: dict[str, Function] = {}
            for original, inst in requests:
                name = _gradient_name(original, inst)
                if name not in built:
                    config = Config(inst.source, inst.wrt)
                    d.request("gradient", original, config, inst.span, inst.seedable, inst.preserving_result)
                    built[name] = self._gradient_function(d, original, inst, name)
        except SILError:  # the checks ran before anything changed: this would be a bug of theirs
            d.roll_back()
            raise
        for original, inst in requests:
            ref = Builder.before(inst, module).function_ref(built[_gradient_name(original, inst)])
            _stand_in(inst, ref)
            inst.result.replace_all_uses_with(ref)
            inst.erase()

    @staticmethod
    def _check(module: Module, lowered: Lowered, requests: list[tuple[Function, GradientInst]]) -> None:
        """Everything that would stop the pass, on the module as it will be once the extracts
        ``lowered`` holds are lowered, before any change: the derivatives the gradients need, a
        gradient function's name taken by another type, a tensor result without a seed."""
        # Its own activity, not the emitters' context's: lowering changes the functions they see.
        errors = DifferentiabilityChecker(module, lowered=lowered).check_module()
        for original, inst in requests:
            name = _gradient_name(original, inst)
            existing = module.functions.get(name)
            if existing is not None and existing.type != inst.type:
                errors.append(
                    Diagnostic("error", f"'@{name}' exists with another type than this gradient's", inst.span)
                )
            seed_type = dt.source_tangent(module, original.type, inst.source)
            if existing is None and not inst.seedable and isinstance(seed_type, TensorType):
                errors.append(
                    Diagnostic(
                        "error", "a gradient of a tensor result needs a seed: use [seedable]", inst.span
                    )
                )
        if errors:
            raise SILError(sorted(errors, key=lambda e: e.span.start if e.span is not None else -1))

    @staticmethod
    def _gradient_function(d: Differentiator, original: Function, inst: GradientInst, name: str) -> Function:
        """``@AD__f__grad_…``: the VJP (registered or synthesized) and its pullback, or what a
        registered gradient form calls (for a function still in the legacy form, its primal and
        then its adjoint)."""
        module = d.module
        config = Config(inst.source, inst.wrt)
        existing = module.functions.get(name)
        if existing is not None:  # of this type: checked
            return existing
        answer: GradientParts | None = gradient_form(module, original, config)
        if answer is None:  # a registered VJP for more parameters answers too
            answer = _ThroughVJP(*d.derivative_for(original, config, "vjp", exact=False), inst.wrt)
        grad = Function(name, inst.type)
        d.add_function(grad)
        block = grad.add_block("bb0")
        params = [block.add_argument(t) for t in inst.type.params]
        b = Builder.at_end(block, module)
        result = answer.call(b, params[:-1] if inst.seedable else params)
        seed_type = dt.source_tangent(module, original.type, inst.source)
        seed = params[-1] if inst.seedable else b.float_literal(seed_type, 1.0)  # not a tensor: checked
        tangents = answer.tangents(b, seed)
        if inst.preserving_result:
            parts = [tangents] if len(inst.wrt) == 1 else list(b.destructure_tuple(tangents))
            b.return_(b.tuple(result, *parts))
        else:
            b.return_(tangents)
        if d.statistics is not None:
            d.statistics.synthesized("gradient function", grad)
            d.statistics.answered("gradient", grad.name)
        return grad
