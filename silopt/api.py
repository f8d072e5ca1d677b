"""The workbench from Python: load a module, run it, differentiate it, check and print it.

``load(path_or_text)`` gives a ``Workbench``. Its module is the one loaded, transformed only by
``apply_passes`` (which gives a new workbench): ``text()`` prints it, and nothing the workbench
does behind the scenes shows there. Runs and derivatives happen in a private copy of the module,
parsed again from the same source (so that every diagnostic points into the file the user wrote):
there the requests a run reaches are lowered (``silopt.run.lower_reached``) and the derivatives
``grad``, ``vjp`` and ``jvp`` ask for are made, each (function, parameters, mode) once, then kept
with the interpreter's compiled code. ``text(derivatives=True)`` prints that copy.

Names are functions of the loaded module, with or without ``@``. Parameters to differentiate
(``wrt``) are indices, as SIL's ``wrt`` (None: every differentiable parameter); a derivative for
one parameter is its tangent, for several a tuple of them, as SIL's pullbacks return them.
Everything a user can get wrong raises ``SILError`` (``RunError`` from a run), whose str renders the
located diagnostics; a failed ``check_grads`` raises ``GradientCheckError``, an AssertionError.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sil.diagnostics import Diagnostic, SILError, SourceFile, quoted
from sil.instructions import DifferentiableFunctionInst, FunctionRefInst, GradientInst
from sil.ir import Function, Module
from sil.parser import parse_source
from sil.passes import PassManager, registered_passes
from sil.printer import print_module
from sil.types import FunctionType
from sil.verifier import verify_module

if TYPE_CHECKING:
    from accel import Backend
    from analysis.activity import Config
    from interp import Program
    from silopt.check_derivatives import Outcome

Wrt = int | Sequence[int] | None
"""Parameters to differentiate with respect to: one index, several (increasing), or None (all of
differentiable type)."""


def load(
    source: str | os.PathLike[str],
    *,
    name: str | None = None,
    backend: str | Backend | None = None,
    max_steps: int | None = None,
    max_depth: int | None = None,
) -> Workbench:
    """A workbench for the module ``source`` names or holds, parsed and verified.

    ``source`` is read as a path when it is a ``PathLike`` (``pathlib.Path``), or a one-line string
    that ends in ``.sil`` or names an existing file; any other string (one with a newline, a
    ``sil_stage`` line alone) is SIL text, which diagnostics call ``name`` (default
    ``<string>``). ``backend`` is the tensor backend (``"numpy"``, ``"cupy"``, a ``Backend``; None:
    as ``silopt --accel auto``); ``max_steps`` and ``max_depth`` bound each run as ``--max-steps``
    and ``--max-depth`` do. A file that cannot be read raises OSError; a module that does not
    parse or verify, SILError."""
    if isinstance(source, os.PathLike) or _names_a_file(source):
        path = os.fspath(source)
        with open(path, encoding="utf-8") as f:
            text = SourceFile(name or path, f.read())
    else:
        text = SourceFile(name or "<string>", source)
    return Workbench(text, (), _Limits(backend, max_steps, max_depth))


def _names_a_file(text: str) -> bool:
    return "\n" not in text and (text.endswith(".sil") or os.path.isfile(text))


class GradientCheckError(AssertionError):
    """``check_grads`` found derivatives that disagree; the message gives the point, both values
    and the error (``outcome`` has them as data)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(str(SILError([outcome.diagnostic()])))
        self.outcome = outcome


class _Limits:
    """What every run of a workbench shares: the backend (chosen on the first run) and limits."""

    def __init__(self, backend: str | Backend | None, max_steps: int | None, max_depth: int | None) -> None:
        self._backend = backend
        self.max_steps = max_steps
        self.max_depth = max_depth

    def program(self, module: Module) -> Program:
        from accel import select_backend
        from interp import DEFAULT_MAX_DEPTH, Program

        if self._backend is None or isinstance(self._backend, str):
            self._backend = select_backend(self._backend)
        depth = DEFAULT_MAX_DEPTH if self.max_depth is None else self.max_depth
        return Program(module, self._backend, max_steps=self.max_steps, max_depth=depth)


class Workbench:
    """A module loaded from Python (see the module docstring): run, differentiate, check, print."""

    def __init__(self, source: SourceFile, passes: tuple[str, ...], limits: _Limits) -> None:
        self._source = source
        self._passes = passes
        self._limits = limits
        self._module = _build(source, passes)
        self._work: Module | None = None  # the private copy: see the module docstring
        self._programs: dict[str, Program] = {}  # by the function they were made to run
        self._lowered_for: set[str] = set()  # functions whose reached requests are lowered
        self._derivatives: dict[tuple[str, tuple[int, ...], str], str] = {}  # to the function's name

    def __repr__(self) -> str:
        return f"<Workbench {self._source.name}: {len(self._module.functions)} functions>"

    @property
    def functions(self) -> list[str]:
        """The names of the module's functions, in module order (without ``@``)."""
        return list(self._module.functions)

    def text(self, derivatives: bool = False) -> str:
        """The module printed canonically, as ``silopt`` prints it. With ``derivatives``, the
        private copy runs and derivatives use: the requests runs reached lowered, and every
        derivative made so far."""
        if derivatives:
            return print_module(self._private())
        return print_module(self._module)

    def apply_passes(self, names: Sequence[str]) -> Workbench:
        """A new workbench whose module is this one's after the registered passes ``names``, in
        order (``silopt -NAME …``); this one, and what it made, stay as they are."""
        registry = registered_passes()
        for n in names:
            if n not in registry:
                close = difflib.get_close_matches(n, registry, n=1, cutoff=0.75)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise SILError([Diagnostic("error", f"no pass is named {quoted(n)}{hint}")])
        return Workbench(self._source, (*self._passes, *names), self._limits)

    def run(self, name: str, *args: Any) -> Any:
        """``@name`` called on Python values (as ``interp.Program.run`` takes and gives them), the
        derivative requests it reaches lowered first."""
        fn = self._function(name, len(args))
        return self._program(self._lowered(fn.name)).run(fn.name, *args)

    def grad(self, name: str, wrt: Wrt = None) -> Callable[..., Any]:
        """A function giving the gradient of ``@name`` (of one Float or Double result) at its
        arguments, with respect to the parameters ``wrt``, as ``jax.grad`` does."""
        gradient = self._gradient(name, wrt, preserving_result=False)

        def grad_of(*args: Any) -> Any:
            return gradient(*args)

        return grad_of

    def value_and_grad(self, name: str, wrt: Wrt = None) -> Callable[..., tuple[Any, Any]]:
        """As ``grad``, giving the value of ``@name`` too: ``(value, gradient)``."""
        gradient = self._gradient(name, wrt, preserving_result=True)

        def value_and_grad_of(*args: Any) -> tuple[Any, Any]:
            value, *tangents = gradient(*args)
            return value, tangents[0] if len(tangents) == 1 else tuple(tangents)

        return value_and_grad_of

    def vjp(self, name: str, *args: Any, wrt: Wrt = None) -> tuple[Any, Callable[[Any], Any]]:
        """The value of ``@name`` at ``args`` and its pullback: the pullback of a cotangent of the
        differentiable results (a tuple when there are several) is the cotangent of ``wrt``."""
        fn = self._function(name, len(args))
        vjp = self._derivative(fn, wrt, "vjp")
        value, pullback = self._program(vjp).run(vjp, *args)
        return value, pullback

    def jvp(
        self, name: str, primals: Sequence[Any], tangents: Sequence[Any], *, wrt: Wrt = None
    ) -> tuple[Any, Any]:
        """The value of ``@name`` at ``primals`` and its derivative along ``tangents``, one for
        each parameter of ``wrt``: the tangent of the differentiable results."""
        fn = self._function(name, len(primals))
        jvp = self._derivative(fn, wrt, "jvp")
        expected = len(self._wrt(fn, wrt))
        if len(tangents) != expected:
            message = (
                f"'@{fn.name}' is differentiated with respect to {expected} parameters (wrt),"
                f" but jvp is given {len(tangents)} tangents"
            )
            raise SILError.at(fn.span, message)
        value, differential = self._program(jvp).run(jvp, *primals)
        return value, differential(*tangents)

    def check_grads(
        self, name: str, at: Sequence[Any] | None = None, *, wrt: Wrt = None, seed: int = 0
    ) -> Outcome:
        """Check the JVP and the VJP of ``@name`` for ``wrt`` at the arguments ``at`` (None: at
        three points drawn, tensors of shape 3x3), as ``silopt --check-derivatives`` does: the JVP
        against finite differences and the dot-product identity ⟨J·v, w⟩ = ⟨v, Jᵀ·w⟩, with
        the tolerances of ``silopt.finite_differences``. Returns the outcome; raises
        GradientCheckError when they disagree, SILError when it cannot check."""
        from silopt.check_derivatives import Request, check_request

        fn = self._function(name, len(at) if at is not None else None)
        config = self._config(fn, wrt)
        jvp, vjp = self._derivative(fn, wrt, "jvp"), self._derivative(fn, wrt, "vjp")
        work = self._private()
        functions = work.functions
        request = Request(
            functions[fn.name], config.sources, config.wrt, fn.span, functions[jvp], functions[vjp]
        )
        snapshot = Module(work.types, dict(functions), work.stage)
        points = None if at is None else [list(at)]
        found = check_request(self._limits.program(snapshot), request, points, seed)
        if isinstance(found, Diagnostic):
            raise SILError([found])
        if not found.passed:
            raise GradientCheckError(found)
        return found

    # --- what the methods share ---------------------------------------------------------------
    def _function(self, name: str, arguments: int | None) -> Function:
        """The loaded module's ``@name``; ``arguments``, when given, must be as many as it takes."""
        bare = name.removeprefix("@")
        fn = self._module.functions.get(bare)
        if fn is None:
            close = difflib.get_close_matches(bare, self._module.functions, n=1)
            hint = f"; did you mean '@{close[0]}'?" if close else ""
            message = f"{quoted(self._source.name)} has no function {quoted('@' + bare)}{hint}"
            raise SILError([Diagnostic("error", message)])
        if arguments is not None and arguments != len(fn.type.params):
            params = fn.type.params
            listed = ", ".join(map(str, params)) or "none"
            noun = "argument" if len(params) == 1 else "arguments"
            message = f"'@{bare}' takes {len(params)} {noun} ({listed}), but is given {arguments}"
            raise SILError.at(fn.span, message)
        return fn

    def _private(self) -> Module:
        if self._work is None:
            self._work = _build(self._source, self._passes)
        return self._work

    def _lowered(self, name: str) -> str:
        """``name``, once the derivative requests a run of it reaches are lowered in the private
        copy (each entry once: what a run reaches was lowered whole)."""
        if name not in self._lowered_for:
            from silopt.run import lower_reached

            lower_reached(self._private(), name)
            self._lowered_for.add(name)
        return name

    def _program(self, name: str) -> Program:
        """The interpreter for runs of ``@name`` in the private copy: the functions it reaches."""
        found = self._programs.get(name)
        if found is None:
            from silopt.run import reached_from

            part = reached_from(self._private(), name)
            _refuse_unlowered(part)
            found = self._programs[name] = self._limits.program(part)
        return found

    def _config(self, fn: Function, wrt: Wrt) -> Config:
        from analysis.activity import Config
        from sil import derivative_types as dt

        try:
            return Config(dt.resolve_sources(self._module, fn.type, None), self._wrt(fn, wrt))
        except dt.DerivativeTypeError as e:
            raise SILError.at(fn.span, f"cannot differentiate '@{fn.name}': {e}") from None

    def _wrt(self, fn: Function, wrt: Wrt) -> tuple[int, ...]:
        from sil import derivative_types as dt

        given = None if wrt is None else (wrt,) if isinstance(wrt, int) else tuple(wrt)
        try:
            return dt.resolve_wrt(self._module, fn.type, given)
        except dt.DerivativeTypeError as e:
            raise SILError.at(fn.span, f"cannot differentiate '@{fn.name}': {e}") from None

    def _derivative(self, fn: Function, wrt: Wrt, kind: str) -> str:
        """The name, in the private copy, of the JVP or VJP (``kind``) of ``fn`` for ``wrt`` and
        every differentiable result: made (or found registered) on the first request only."""
        config = self._config(fn, wrt)
        key = (fn.name, config.wrt, kind)
        found = self._derivatives.get(key)
        if found is None:
            from differentiation.passes import derivative

            work = self._private()
            self._lowered(fn.name)
            found = self._derivatives[key] = derivative(work, work.functions[fn.name], config, kind).name
        return found

    def _gradient(self, name: str, wrt: Wrt, preserving_result: bool) -> Callable[..., Any]:
        """The lowered ``gradient`` of ``@name`` for ``wrt``, as a Python function: made on the
        first request only, as ``-lower-gradient`` makes it (``_gradient_function``)."""
        fn = self._function(name, None)
        wrt_ = self._wrt(fn, wrt)
        key = (fn.name, wrt_, "grad_p" if preserving_result else "grad")
        found = self._derivatives.get(key)
        if found is None:
            found = self._derivatives[key] = self._gradient_function(fn, wrt_, preserving_result)
        program, entry = self._program(found), found

        def gradient(*args: Any) -> Any:
            self._function(name, len(args))
            return program.run(entry, *args)

        return gradient

    def _gradient_function(self, fn: Function, wrt: tuple[int, ...], preserving_result: bool) -> str:
        """Ask for the gradient as a module does, with a ``gradient`` instruction, in a function of
        the private copy made for that and removed once ``lower_reached`` answered it: what stands
        in its place names the ``@AD__f__grad_…`` function made, which runs from then on."""
        from sil import derivative_types as dt
        from sil.builder import Builder
        from silopt.run import lower_reached

        work = self._private()
        original = work.functions[fn.name]
        sources = self._config(fn, wrt).sources
        result = dt.results_tangent(work, original.type, sources)
        source = sources[0]
        if str(result) not in ("Float", "Double"):
            message = (
                f"grad needs a function of one Float or Double result, and '@{fn.name}' gives {result}"
                " (vjp takes a cotangent of any)"
            )
            raise SILError.at(fn.span, message)
        asker = _unused_name(work, f"__silopt_api_gradient_of_{fn.name}")
        holder = Function(asker, original.type)
        block = holder.add_block("bb0")
        b = Builder.at_end(block, work)
        request = b.gradient(b.function_ref(original), wrt, source, preserving_result=preserving_result)
        assert isinstance(request.owner, GradientInst)
        request.owner.span = fn.span  # a diagnostic about the request points at @f
        b.return_(request)
        holder.set_type(FunctionType((), request.type))
        work.add_function(holder)
        try:
            lower_reached(work, asker)
            refs = [i for i in holder.instructions() if isinstance(i, FunctionRefInst)]
            return refs[-1].function_name
        finally:
            del work.functions[asker]


def _unused_name(module: Module, base: str) -> str:
    name, n = base, 0
    while name in module.functions:
        n += 1
        name = f"{base}_{n}"
    return name


def _refuse_unlowered(part: Module) -> None:
    """What lowering cannot answer, an error before the run rather than a fault in it: a
    ``gradient`` or ``differentiable_function`` of a function value the passes cannot see through."""
    left = [
        Diagnostic(
            "error",
            f"cannot lower this '{inst.opname}': it is of a function value, not a function_ref",
            inst.span,
        )
        for fn in part.functions.values()
        for inst in fn.instructions()
        if isinstance(inst, GradientInst)
        or (isinstance(inst, DifferentiableFunctionInst) and not inst.has_derivatives)
    ]
    if left:
        raise SILError(left)


def _build(source: SourceFile, passes: tuple[str, ...]) -> Module:
    """``source`` parsed, verified and run through ``passes``, as ``silopt`` does."""
    module = parse_source(source)
    problems = verify_module(module)
    if problems:
        raise SILError(problems)
    if passes:
        registry = registered_passes()
        PassManager([registry[n]() for n in passes]).run(module)
        broken = verify_module(module)
        if broken:
            raise SILError([Diagnostic("error", "module does not verify after the passes"), *broken])
    return module
