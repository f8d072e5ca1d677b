"""``silopt --verify-derivatives``: every derivative a pipeline emits, checked after the pass that
emitted it.

After each pass, each derivative the module holds (the JVPs and VJPs its ``[differentiable]``
attributes and ``differentiable_function`` bundles name, the functions ``-lower-gradient`` made of
its ``gradient``s) whose code the pass made or changed is checked as ``--check-derivatives`` checks
one (``silopt.check_derivatives``: finite differences with Richardson's step control, the JVP–VJP
identity, a Float program also in its Double shadow), at the point ``--args`` gives where it fits
the original's parameters and at points drawn. The code of a derivative is every function it and
its original reach by ``function_ref``: a pass that rewrites a callee changes it too. Where the
derivative is a second one, the Jacobian of a gradient (a Hessian), its symmetry
⟨u, H·v⟩ = ⟨v, H·u⟩ is checked as well.

What the input holds before the first pass was not emitted by the pipeline and is not checked; a
derivative whose original a pass removed cannot be compared with it any more and is left alone.
A failure stops the pipeline after the pass that emitted the derivative, with an error at the
request naming the pass, the derivative's functions, the point and the two values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import networkx as nx
import numpy as np

from accel import Backend
from interp import Program
from interp.faults import RunError
from interp.literals import ArgumentSyntaxError, format_value, parse_argument
from sil.diagnostics import Diagnostic, SILError, note
from sil.ir import Module
from sil.passes import Pass, PassContext, PassInstrumentation
from sil.printer import Printer
from sil.references import reference_graph
from sil.types import DOUBLE, TupleType
from silopt.check_derivatives import (
    LoweredGradient,
    Outcome,
    Request,
    answered_requests,
    check_request,
    gradients_in,
)
from silopt.finite_differences import IDENTITY_TOLERANCE, CannotDraw, Draw, flat

SYMMETRY_POINTS = 3


class DerivativeVerification(PassInstrumentation):
    """Checks, after each pass, the derivatives whose code it made or changed (see the module)."""

    def __init__(
        self,
        backend: Backend,
        arguments: Sequence[str] | None = None,
        *,
        seed: int = 0,
        max_steps: int | None = None,
        max_depth: int | None = None,
        trap_nan: bool = False,
    ) -> None:
        self.backend = backend
        self.arguments = arguments
        self.seed = seed
        self.limits: dict[str, Any] = {"max_steps": max_steps, "trap_nan": trap_nan}
        if max_depth is not None:
            self.limits["max_depth"] = max_depth
        self.gradients: dict[str, LoweredGradient] = {}
        """Every ``gradient`` seen in the module, by the name of the function that answers it."""
        self.code: dict[tuple[object, ...], tuple[str, ...]] | None = None
        """The code of each derivative as last checked (None: before the first pass)."""
        self.checked = 0
        """Derivatives checked so far (a derivative changed by two passes counts twice)."""

    def before_pass(self, p: Pass, module: Module, ctx: PassContext) -> None:
        self.see_gradients(module)
        if self.code is None:  # what the input holds was not emitted by the pipeline
            self.code = {_key(r): _code(module, r) for r in self._requests(module)}

    def after_pass(self, p: Pass, module: Module, ctx: PassContext) -> None:
        assert self.code is not None
        self.see_gradients(module)
        requests = self._requests(module)
        emitted = []
        for request in requests:
            code = _code(module, request)
            if self.code.get(_key(request)) != code:
                self.code[_key(request)] = code
                emitted.append(request)
        if not emitted:
            return
        program = Program(module, self.backend, **self.limits)
        errors = [e for r in emitted for e in self._verify(program, r, requests, p.name)]
        self.checked += len(emitted)
        if errors:
            raise SILError(errors)

    def see_gradients(self, module: Module) -> None:
        """Learn the ``gradient`` instructions of ``module``: their lowered functions are
        checked as gradients, and a JVP or VJP of one for the Hessian's symmetry. A pipeline
        verified only from some pass on shows this the module before its first pass."""
        for g in gradients_in(module):
            self.gradients.setdefault(g.name, g)

    def _requests(self, module: Module) -> list[Request]:
        """The requests ``module`` answers with at least one derivative (an attribute not yet
        differentiated names none)."""
        found = answered_requests(module, list(self.gradients.values()))
        return [r for r in found if (r.jvp, r.vjp, r.gradient) != (None, None, None)]

    def _verify(
        self, program: Program, request: Request, requests: list[Request], emitter: str
    ) -> list[Diagnostic]:
        """The errors of one derivative ``emitter`` made: its checks at ``--args`` (where they fit)
        and at points drawn, and the symmetry of a Hessian."""
        given = self._given(request)
        found = [check_request(program, request, [given], self.seed)] if given is not None else []
        found.append(check_request(program, request, None, self.seed))
        errors = [
            _blamed(f if isinstance(f, Diagnostic) else f.diagnostic(), emitter, request)
            for f in found
            if not (isinstance(f, Outcome) and f.passed)
        ]
        first = next((r for r in requests if r.gradient is request.original), None)
        if first is not None and not errors:
            asymmetry = hessian_asymmetry(program, request, first, self.seed)
            if asymmetry is not None:
                errors.append(_blamed(asymmetry, emitter, request))
        return errors

    def _given(self, request: Request) -> list[Any] | None:
        """The point ``--args`` spells, when it spells one for the original's parameters."""
        params = request.original.type.params
        if self.arguments is None or len(self.arguments) != len(params):
            return None
        try:
            return [parse_argument(a, t) for a, t in zip(self.arguments, params)]
        except ArgumentSyntaxError:
            return None


def _key(request: Request) -> tuple[object, ...]:
    """What tells one derivative from another: its original, configuration and form."""
    form = "pair" if request.gradient is None else request.gradient.name
    return (request.original.name, request.sources, request.wrt, form)


def _code(module: Module, request: Request) -> tuple[str, ...]:
    """The text of every function the derivative and its original reach by ``function_ref``."""
    roots = [f.name for f in (request.original, request.jvp, request.vjp, request.gradient) if f is not None]
    graph = reference_graph(module, derivatives=False)
    reached = set(roots).union(*(nx.descendants(graph, r) for r in roots))
    printer = Printer()
    return tuple(printer.print_function(module.functions[name]) for name in sorted(reached))


def _blamed(found: Diagnostic, emitter: str, request: Request) -> Diagnostic:
    """``found`` as an error of the pass ``emitter``, naming the functions that were checked."""
    made = [f"@{f.name}" for f in (request.jvp, request.vjp, request.gradient) if f is not None]
    what = note(None, f"the derivative checked: {', '.join(made)}, as -{emitter} left it")
    return Diagnostic("error", f"after -{emitter}: {found.message}", found.span, [*found.notes, what])


def hessian_asymmetry(program: Program, request: Request, first: Request, seed: int) -> Diagnostic | None:
    """Where ``request`` differentiates ``first``'s gradient with respect to the parameters the
    gradient is of, and gives all of it: its Jacobian is a Hessian H, and an error where
    ⟨u, H·v⟩ ≠ ⟨v, H·u⟩ at points drawn (None: symmetric, or not a Hessian). Computed in Double
    (a Float program's shadow), so that rounding does not count."""
    if first.seedable or first.preserving_result or request.wrt != first.wrt:
        return None
    result = request.original.type.result
    every = tuple(range(len(result.elements))) if isinstance(result, TupleType) else (0,)
    if request.sources != every or (request.jvp is None and request.vjp is None):
        return None
    draw = Draw(program.module, f"{seed}:symmetry:{request.describe()}")
    params = request.original.type.params
    shadow = program.double_shadow()
    worst, detail = 0.0, ""
    try:
        for _ in range(SYMMETRY_POINTS):
            x = [draw.point(t) for t in params]
            u, v = ([draw.tangent(params[i], x[i]) for i in request.wrt] for _ in range(2))
            hu, hv = _hessian_times(shadow, request, x, u), _hessian_times(shadow, request, x, v)
            left, right = float(np.dot(flat(tuple(u)), hv)), float(np.dot(flat(tuple(v)), hu))
            error = abs(left - right) / max(1.0, abs(left), abs(right))
            if error >= worst:
                point = ", ".join(format_value(a, t, program.module) for a, t in zip(x, params))
                where = f"at @{request.original.name}({point})"
                worst, detail = error, f"{where}: <u, H·v> = {left:.9g}, <v, H·u> = {right:.9g}"
    except (CannotDraw, RunError):  # the derivative's own checks have said why
        return None
    tolerance = IDENTITY_TOLERANCE[DOUBLE]
    if worst <= tolerance:
        return None
    message = f"the Hessian the derivative of {request.describe()} gives is not symmetric"
    return Diagnostic(
        "error",
        message,
        request.span,
        [note(None, f"{detail} (relative error {worst:.1e}, tolerance {tolerance:.0e})")],
    )


def _hessian_times(program: Program, request: Request, x: list[Any], u: list[Any]) -> np.ndarray[Any, Any]:
    """H·u through the JVP of the gradient, else Hᵀ·u through its VJP."""
    if request.jvp is not None:
        _, differential = program.run("@" + request.jvp.name, *x)
        return flat(differential(*u))
    assert request.vjp is not None
    _, pullback = program.run("@" + request.vjp.name, *x)
    return flat(pullback(u[0] if len(u) == 1 else tuple(u)))
