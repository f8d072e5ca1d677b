"""``silopt --check-derivatives``: every derivative the module asks for, checked on the interpreter.

The requests are the ``[differentiable]`` attributes, the ``differentiable_function`` bundles of
``function_ref``s and the ``gradient``s of them; the module is differentiated and its gradients
lowered first, as ``--run`` does, so what is checked is what a run would use. At random points x
(or the one ``--args`` gives), for random tangents v and seeds w:
- a JVP: J·v against finite differences of the original (see ``finite_differences``);
- with a VJP too: the dot-product identity <J·v, w> = <v, Jᵀ·w>;
- a VJP alone (a ``gradient``, through its lowered function): <v, Jᵀ·w> against the finite
  differences' <D·v, w>, with w = 1 where the gradient has no seed.
A request that cannot be checked (a type that cannot be drawn, a function without a body to
difference, a point where the differences do not settle) is an error, as is a failed check; a
failure names the point, both values and the error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from accel import Backend
from analysis.activity import Config
from differentiation.naming import gradient_name
from differentiation.requests import attribute_config, bundle_config, gradient_requests
from interp import Program
from interp.faults import RunError
from interp.literals import ArgumentSyntaxError, format_value, parse_argument
from interp.program import DEFAULT_MAX_DEPTH
from sil import derivative_types as dt
from sil.diagnostics import Diagnostic, SILError, Span, note
from sil.instructions import DifferentiableFunctionInst, FunctionRefInst, GradientInst
from sil.ir import DifferentiableAttr, Function, Module, Result
from sil.passes import PassManager, registered_passes
from sil.types import DOUBLE, FLOAT, ScalarType, TensorType, TupleType, Type
from silopt.finite_differences import (
    FD_TOLERANCE,
    IDENTITY_TOLERANCE,
    TENSOR_SHAPE,
    CannotDraw,
    Draw,
    Estimate,
    directional_derivative,
    flat,
)

POINTS = 3
DRAWS = 20  # points drawn, at most, to find POINTS where the differences settle


@attrs.frozen
class Request:
    """A derivative of the results ``sources`` of ``original`` with respect to ``wrt``, asked for
    at ``span``, and what answers it: a JVP, a VJP, or a lowered gradient function. With several
    sources, the derivative's tangent is the tuple of theirs (SIL-SPEC §3)."""

    original: Function
    sources: tuple[int, ...]
    wrt: tuple[int, ...]
    span: Span | None
    jvp: Function | None = None
    vjp: Function | None = None
    gradient: Function | None = None
    seedable: bool = False
    preserving_result: bool = False

    def describe(self) -> str:
        what = f"@{self.original.name} ({Config(self.sources, self.wrt).describe()})"
        if self.gradient is None:
            return what
        options = (" [seedable]" if self.seedable else "") + (
            " [preserving_result]" if self.preserving_result else ""
        )
        return f"gradient{options} of {what}"

    @property
    def result_type(self) -> Type:
        """The type of the results differentiated: one result's, or a tuple of theirs."""
        t = self.original.type
        if not dt.several_results(t.result):
            return t.result
        if len(self.sources) == 1:
            return t.results[self.sources[0]]
        return TupleType(
            tuple(t.results[i] for i in self.sources), tuple(t.result.labels[i] for i in self.sources)
        )

    def selected(self, value: Any) -> Any:
        """The results differentiated, out of a value the original returns."""
        if not dt.several_results(self.original.type.result):
            return value
        if len(self.sources) == 1:
            return value[self.sources[0]]
        return tuple(value[i] for i in self.sources)


@attrs.frozen
class LoweredGradient:
    """A ``gradient`` of a ``function_ref``: what ``-lower-gradient`` makes of it is the function
    ``name``, which answers it."""

    original: str
    config: Config
    seedable: bool
    preserving_result: bool
    span: Span | None

    @property
    def name(self) -> str:
        return gradient_name(self.original, self.config, self.seedable, self.preserving_result)


def gradients_in(module: Module) -> list[LoweredGradient]:
    """The ``gradient``s of ``function_ref``s in ``module``, in module order."""
    return [
        LoweredGradient(
            original.name, Config(inst.source, inst.wrt), inst.seedable, inst.preserving_result, inst.span
        )
        for original, inst in gradient_requests(module)
    ]


def answered_requests(module: Module, gradients: Sequence[LoweredGradient] = ()) -> list[Request]:
    """The requests ``module`` answers, without changing it: its attributes and bundles with their
    derivatives, then each of ``gradients`` whose function and original it holds (once a name)."""
    requests = _answered_pairs(module)
    seen: set[str] = set()
    functions = module.functions
    for g in gradients:
        grad, original = functions.get(g.name), functions.get(g.original)
        if grad is None or original is None or g.name in seen:
            continue
        seen.add(g.name)
        requests.append(
            Request(
                original,
                g.config.sources,
                g.config.wrt,
                g.span,
                gradient=grad,
                seedable=g.seedable,
                preserving_result=g.preserving_result,
            )
        )
    return requests


def derivative_requests(module: Module) -> list[Request]:
    """Differentiate ``module`` (``-differentiation``, ``-lower-gradient``) and give each request
    with what answers it: attributes and bundles, then gradients, in module order."""
    passes = registered_passes()
    PassManager([passes["differentiation"]()]).run(module)
    gradients = gradients_in(module)
    PassManager([passes["lower-gradient"]()]).run(module)
    return answered_requests(module, gradients)


def _answered_pairs(module: Module) -> list[Request]:
    """The requests answered by a JVP and a VJP (either may be missing from a declaration's
    attribute): ``[differentiable]`` attributes, then ``differentiable_function`` bundles."""
    found: dict[tuple[str, Config], Request] = {}
    functions = module.functions
    for fn in functions.values():
        for attr in fn.attributes:
            if isinstance(attr, DifferentiableAttr):
                config = attribute_config(module, fn, attr)
                jvp, vjp = functions.get(attr.jvp or ""), functions.get(attr.vjp or "")
                request = Request(fn, config.sources, config.wrt, attr.span or fn.span, jvp, vjp)
                found.setdefault((fn.name, config), request)
    for fn in functions.values():
        for inst in fn.instructions():
            if isinstance(inst, DifferentiableFunctionInst) and inst.has_derivatives:
                names = [_referenced(op) for op in inst.operands]
                if all(n in functions for n in names):
                    original, jvp, vjp = (functions[n] for n in names)  # type: ignore[index]
                    config = bundle_config(module, original, inst)
                    request = Request(original, config.sources, config.wrt, inst.span, jvp, vjp)
                    found.setdefault((original.name, config), request)
    return list(found.values())


def _referenced(value: Any) -> str | None:
    if isinstance(value, Result) and isinstance(value.owner, FunctionRefInst):
        return value.owner.function_name
    return None


@attrs.frozen
class Comparison:
    """The worst disagreement of two ways to compute one number, and where it was."""

    name: str  # "JVP vs finite differences", …
    error: float = 0.0
    detail: str = ""

    def worse(self, error: float, detail: str) -> Comparison:
        """The worse of this and ``error`` (a NaN is worst of all)."""
        if self.detail and (math.isnan(self.error) or error <= self.error):
            return self
        return Comparison(self.name, error, detail)


@attrs.frozen
class Outcome:
    request: Request
    comparisons: tuple[Comparison, ...]
    tolerances: tuple[float, ...]
    kind: ScalarType
    """The values' kind whose tolerances apply: Float where any value checked is a Float."""
    shadow: Outcome | None = None
    """For a request on Float values: the same checks in the program's Double shadow (Float computed
    in binary64, ``Program.double_shadow``) at Double's tolerances. They decide: a disagreement in
    Float alone is rounding, one in the shadow a wrong derivative."""

    @property
    def within_tolerance(self) -> bool:
        return all(c.error <= t for c, t in zip(self.comparisons, self.tolerances))

    @property
    def passed(self) -> bool:
        return (self.shadow or self).within_tolerance

    def line(self) -> str:
        measured = _measured(self)
        verdict = "ok" if self.passed else "FAILED"
        if self.shadow is not None:
            measured += f"; in Double: {_measured(self.shadow)}"
            if self.passed and not self.within_tolerance:
                verdict = "ok (Float rounding only)"
        return f"{self.request.describe()}: {measured}: {verdict}"

    def diagnostic(self) -> Diagnostic:
        decisive = self.shadow or self
        where = "" if self.shadow is None else "in the Double shadow of the Float program: "
        notes = [
            note(None, f"{where}{c.name}: {c.detail} (relative error {c.error:.1e}, tolerance {t:.0e})")
            for c, t in zip(decisive.comparisons, decisive.tolerances)
            if c.error > t
        ]
        message = f"the derivatives of {self.request.describe()} disagree"
        return Diagnostic("error", message, self.request.span, notes)


def _measured(outcome: Outcome) -> str:
    return ", ".join(f"{c.name} {c.error:.1e}" for c in outcome.comparisons)


def _unanswered(module: Module) -> list[Diagnostic]:
    """An error for each request the passes left as it was: a ``gradient`` or
    ``differentiable_function`` of a function value they cannot see through."""
    return [
        Diagnostic(
            "error",
            f"cannot check this '{inst.opname}': it is of a function value, not a function_ref",
            inst.span,
        )
        for fn in module.functions.values()
        for inst in fn.instructions()
        if isinstance(inst, GradientInst)
        or (isinstance(inst, DifferentiableFunctionInst) and not inst.has_derivatives)
    ]


def cannot_check(request: Request, why: str) -> Diagnostic:
    return Diagnostic("error", f"cannot check {request.describe()}: {why}", request.span)


def check_module(
    module: Module,
    backend: Backend,
    arguments: Sequence[str] | None = None,
    seed: int = 0,
    max_steps: int | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    trap_nan: bool = False,
) -> tuple[list[Outcome], list[Diagnostic]]:
    """The outcome of every request in ``module`` that could be checked, and an error for each
    that could not; at the point ``arguments`` spells (``--args``) when given. Each run has the
    limits and the checks ``--run`` has (``--max-steps``, ``--max-depth``, ``--trap-nan``)."""
    requests = derivative_requests(module)
    errors = _unanswered(module)
    if not requests and not errors:
        why = "the module asks for no derivative ([differentiable], differentiable_function, gradient)"
        raise SILError([Diagnostic("error", f"nothing to check: {why}")])
    program = Program(module, backend, max_steps=max_steps, max_depth=max_depth, trap_nan=trap_nan)
    outcomes = []
    for request in requests:
        found = _checked(program, request, seed, arguments)
        if isinstance(found, Outcome):
            outcomes.append(found)
        else:
            errors.append(found)
    return outcomes, errors


def check_request(
    program: Program, request: Request, points: list[list[Any]] | None = None, seed: int = 0
) -> Outcome | Diagnostic:
    """Check one request whose functions ``program`` runs, at ``points`` (each a list of Python
    values, one per parameter of the original; None: points drawn as for ``check_module``): its
    outcome, or an error saying why it cannot be checked."""
    return _checked(program, request, seed, None, points)


def _checked(
    program: Program,
    request: Request,
    seed: int,
    arguments: Sequence[str] | None,
    points: list[list[Any]] | None = None,
) -> Outcome | Diagnostic:
    """The outcome of ``request`` at the point or points given, else drawn; for a request on Float
    values, with the outcome of the same checks, at the same points, in the Double shadow."""
    found = _Checker(program, request, seed).check(arguments, points)
    if not isinstance(found, Outcome) or found.kind != FLOAT:
        return found
    shadowed = _Checker(program.double_shadow(), request, seed).check(arguments, points)
    return attrs.evolve(found, shadow=shadowed) if isinstance(shadowed, Outcome) else shadowed


class _Checker:
    """Checks one request: the comparisons its derivatives allow, at each point."""

    def __init__(self, program: Program, request: Request, seed: int) -> None:
        self.program = program
        self.module = program.module
        self.request = request
        self.draw = Draw(program.module, f"{seed}:{request.describe()}")
        self.params = request.original.type.params
        self.body = not request.original.is_declaration
        self.pullback = pullback = request.vjp is not None or request.gradient is not None
        names = []
        if request.jvp is not None and self.body:
            names.append("JVP vs finite differences")
        if request.jvp is not None and pullback:
            names.append("JVP vs VJP")
        elif pullback and self.body:
            names.append("VJP vs finite differences")
        self.comparisons = {n: Comparison(n) for n in names}
        self.given_as = "at the point --args gives"

    def check(
        self, arguments: Sequence[str] | None, points: list[list[Any]] | None = None
    ) -> Outcome | Diagnostic:
        """The outcome at the point ``arguments`` spells (``--args``), else at ``points`` (Python
        values), else at points drawn; or why it cannot be checked."""
        request = self.request
        if not self.comparisons or (request.jvp is None and not self.body):
            return cannot_check(request, "it has no body to compare its derivative with")
        try:
            kinds = set().union(*(self.draw.kinds(self.params[i]) for i in request.wrt))
            kinds |= self.draw.kinds(request.result_type)
            if arguments is not None:
                points = [self._given(arguments)]
            elif points is not None:
                self.given_as = "at the point given" if len(points) == 1 else "at any of the points given"
            kind = FLOAT if FLOAT in kinds else next(iter(kinds))
            checked = self._check_points(points, DOUBLE if self.program.float_as_double else kind)
        except CannotDraw as e:
            return cannot_check(request, f"a value of type {e} cannot be drawn")
        except _NotCheckable as e:
            return cannot_check(request, str(e))
        except RunError as e:
            # The fault's own notes (its operands, the calls it was under) follow it.
            notes = [n for d in e.diagnostics for n in (note(d.span, d.message), *d.notes)]
            drawn = arguments is None and any(isinstance(t, TensorType) for t in self.params)
            hint = (
                f" at tensors drawn of shape {list(TENSOR_SHAPE)} (give a point with --args)" if drawn else ""
            )
            message = f"cannot check {request.describe()}: a run faulted{hint}"
            return Diagnostic("error", message, request.span, notes)
        return checked

    def _given(self, arguments: Sequence[str]) -> list[Any]:
        if len(arguments) != len(self.params):
            raise _NotCheckable(f"it takes {len(self.params)} arguments, but --args gives {len(arguments)}")
        try:
            return [parse_argument(a, t) for a, t in zip(arguments, self.params)]
        except ArgumentSyntaxError as e:
            raise _NotCheckable(f"--args: {e}") from None

    def _check_points(self, given: list[list[Any]] | None, kind: ScalarType) -> Outcome:
        fd_tolerance = FD_TOLERANCE[kind]
        checked, why = 0, ""
        for attempt in range(len(given) if given is not None else DRAWS):
            x = given[attempt] if given is not None else [self.draw.point(t) for t in self.params]
            why = self._at(x, kind, fd_tolerance) or ""
            checked += not why
            if checked == POINTS:
                break
        if not checked:
            where = f"at any of {DRAWS} points drawn" if given is None else self.given_as
            raise _NotCheckable(f"{where}, {why}")
        tolerances = [fd_tolerance if "finite" in n else IDENTITY_TOLERANCE[kind] for n in self.comparisons]
        return Outcome(self.request, tuple(self.comparisons.values()), tuple(tolerances), kind)

    def _at(self, x: list[Any], kind: ScalarType, tolerance: float) -> str | None:
        """Check at ``x``; the reason when the finite differences do not settle there."""
        request, draw = self.request, self.draw
        v = [draw.tangent(t, a) if i in request.wrt else None for i, (t, a) in enumerate(zip(self.params, x))]
        numeric = None
        if self.body:
            estimate = self._differences(x, v, kind, tolerance)
            if estimate.value is None:
                return estimate.why
            numeric = estimate.value
            y = self._source(self._run(request.original, x))
        else:  # a declaration: its JVP gives the value
            assert request.jvp is not None
            y = self._source(self._run(request.jvp, x)[0])
        w = (
            1.0
            if request.gradient is not None and not request.seedable
            else draw.tangent(request.result_type, y)
        )
        where = self._where(x, v)
        jv = self._differential(x, v) if request.jvp is not None else None
        if jv is not None and numeric is not None:
            self._compare_fd(flat(jv), numeric, where)
        if self.pullback:
            cotangents = self._cotangents(x, w)
            right = [a * b for i, c in zip(request.wrt, cotangents) for a, b in zip(flat(v[i]), flat(c))]
            where += f" with seed {self._format(w, request.result_type)}"
            if jv is not None:
                self._compare_dots("JVP vs VJP", flat(jv) * flat(w), right, f"{where}: <J·v, w>")
            elif numeric is not None:
                what = f"{where}: finite differences <D·v, w>"
                self._compare_dots("VJP vs finite differences", numeric * flat(w), right, what)
        return None

    def _differences(self, x: list[Any], v: list[Any], kind: ScalarType, tolerance: float) -> Estimate:
        original = self.request.original

        def along(s: float) -> Any:
            return self._source(
                self._run(original, [self.draw.moved(t, a, d, s) for t, a, d in zip(self.params, x, v)])
            )

        return directional_derivative(along, kind, tolerance)

    def _run(self, fn: Function, args: list[Any]) -> Any:
        return self.program.run("@" + fn.name, *args)

    def _source(self, value: Any) -> Any:
        return self.request.selected(value)

    def _differential(self, x: list[Any], v: list[Any]) -> Any:
        assert self.request.jvp is not None
        _, differential = self._run(self.request.jvp, x)
        return differential(*[v[i] for i in self.request.wrt])

    def _cotangents(self, x: list[Any], w: Any) -> tuple[Any, ...]:
        request = self.request
        if request.gradient is not None:
            out = self._run(request.gradient, [*x, w] if request.seedable else x)
            if request.preserving_result:
                return tuple(out[1:])
        else:
            assert request.vjp is not None
            _, pullback = self._run(request.vjp, x)
            out = pullback(w)
        return tuple(out) if len(request.wrt) > 1 else (out,)

    def _where(self, x: list[Any], v: list[Any]) -> str:
        point = ", ".join(format_value(a, t, self.module) for a, t in zip(x, self.params))
        direction = ", ".join(self._format(v[i], self.params[i]) for i in self.request.wrt)
        return f"at @{self.request.original.name}({point}) along ({direction})"

    def _format(self, tangent: Any, t: Type) -> str:
        """A tangent of ``t`` in literal syntax (a tangent struct's fields as a tuple)."""
        tangent_type = self.module.tangent_type(t) or t
        if isinstance(tangent, tuple) and not isinstance(tangent_type, TupleType):
            return "(" + ", ".join(f"{x:.9g}" for x in flat(tangent)) + ")"
        if isinstance(tangent, np.ndarray) and isinstance(tangent_type, TensorType):
            element = np.float32 if tangent_type.element == FLOAT else np.float64
            return format_value(tangent.astype(element), tangent_type, self.module)
        return format_value(tangent, tangent_type, self.module)

    def _compare_fd(self, jv: np.ndarray[Any, Any], numeric: np.ndarray[Any, Any], where: str) -> None:
        errors = np.abs(jv - numeric) / np.maximum(1.0, np.maximum(np.abs(jv), np.abs(numeric)))
        i = int(np.argmax(errors)) if errors.size else 0
        component = f" (component {i})" if errors.size > 1 else ""
        detail = (
            f"{where}: J·v{component} = {jv[i]:.9g}, finite differences {numeric[i]:.9g}"
            if errors.size
            else where
        )
        name = "JVP vs finite differences"
        self.comparisons[name] = self.comparisons[name].worse(
            float(errors[i]) if errors.size else 0.0, detail
        )

    def _compare_dots(self, name: str, left: Any, right: list[float], what: str) -> None:
        a, b = float(np.sum(left)), float(sum(right))
        scale = max(1.0, float(np.sum(np.abs(left))), sum(abs(r) for r in right))
        detail = f"{what} = {a:.9g}, <v, Jᵀ·w> = {b:.9g}"
        self.comparisons[name] = self.comparisons[name].worse(abs(a - b) / scale, detail)


class _NotCheckable(Exception):
    """Why a request cannot be checked."""
