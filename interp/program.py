"""A module made ready to run: compiled functions, the backend, limits, and calls from Python."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from accel.backend import Backend
from interp.compiler import Compiler
from interp.faults import Fault, RunError, fault_diagnostic, run_error
from interp.metering import StepBudget, StepsExceeded
from interp.nan_trap import NaNTrap
from interp.values import ArgumentError, Converter
from sil.ir import Module
from sil.types import FunctionType, Type

DEFAULT_MAX_DEPTH = 10_000
_COMPILER_FRAMES = 500  # the compiler's own recursion, at most, when a first call compiles a callee


class Program:
    """Runs the functions of a verified module. Each function is compiled once, on first use.

    ``max_steps`` bounds the instructions one call from Python may execute (None: no bound, and
    no counting code at all); ``count_steps`` counts without a bound, for cost reports.
    ``trap_nan`` stops a call at the first instruction that makes a NaN from operands that are not
    NaN (``interp.nan_trap``; off: no test at all). ``float_as_double`` runs the module's Double
    shadow: every Float value, scalar or tensor element, is a binary64 number (conversions between
    Float and Double are the identity), so that what rounding to binary32 does to a result can be
    told apart from what the program computes. A fault raises ``RunError`` with a located diagnostic.
    """

    def __init__(
        self,
        module: Module,
        backend: Backend | None = None,
        *,
        max_steps: int | None = None,
        max_depth: int = DEFAULT_MAX_DEPTH,
        count_steps: bool = False,
        trap_nan: bool = False,
        float_as_double: bool = False,
    ) -> None:
        if backend is None:
            from accel import select_backend

            backend = select_backend()
        self.module = module
        self.backend = backend
        self.max_steps = max_steps
        self.max_depth = max_depth
        self.trap_nan = trap_nan
        counting = max_steps is not None or count_steps
        self._initial_budget = max_steps if max_steps is not None else 2**63
        self.budget = StepBudget(self._initial_budget, max_steps) if counting else None
        self.steps: int | None = None
        """Instructions the last call executed (when counting)."""
        self.float_as_double = float_as_double
        self.compiler = Compiler(
            module, backend, max_depth, self.budget, NaNTrap(backend) if trap_nan else None, float_as_double
        )
        self.converter = Converter(module, backend, float_as_double)
        self.converter.call = self._call_value
        self._shadow: Program | None = None

    def double_shadow(self) -> Program:
        """This program's Double shadow (``float_as_double``), with the same backend and limits:
        made once, so that what it compiled is compiled once."""
        if self.float_as_double:
            return self
        if self._shadow is None:
            self._shadow = Program(
                self.module,
                self.backend,
                max_steps=self.max_steps,
                max_depth=self.max_depth,
                count_steps=self.budget is not None,
                trap_nan=self.trap_nan,
                float_as_double=True,
            )
        return self._shadow

    def function(self, name: str) -> Callable[..., Any]:
        """The compiled form of a function (``"f"`` or ``"@f"``): call it with the depth first."""
        name = name.removeprefix("@")
        if name not in self.module.functions:
            raise run_error(f"no function '@{name}' in the module")
        return self.compiler.function(name)

    def signature(self, name: str) -> FunctionType:
        name = name.removeprefix("@")
        if name not in self.module.functions:
            raise run_error(f"no function '@{name}' in the module")
        return self.module.functions[name].type

    def run(self, name: str, *args: Any) -> Any:
        """Call ``@name`` with Python values; return its result as Python values."""
        compiled = self.function(name)
        return self._call_value(compiled, self.signature(name), args, f"@{name.removeprefix('@')}")

    def _call_value(
        self, run_form: Any, t: FunctionType, args: Sequence[Any], what: str = "the function"
    ) -> Any:
        if len(args) != len(t.params):
            noun = "argument" if len(t.params) == 1 else "arguments"
            raise run_error(f"{what} takes {len(t.params)} {noun} ({_list(t.params)}), {len(args)} given")
        try:
            with np.errstate(all="ignore"):  # a Float argument out of range becomes ±inf, quietly
                run_args = [
                    self.converter.to_run(a, p, f"argument {i}")
                    for i, (a, p) in enumerate(zip(args, t.params))
                ]
        except ArgumentError as e:
            raise run_error(f"{what}: {e}") from None
        if t.convention == "callee_guaranteed":  # a closure: its function, and what it binds
            function, bound = run_form
            run_args.append(bound)
        else:
            function = run_form
        result = self.call_compiled(function, run_args)
        return self.converter.to_python(result, t.result)

    def call_compiled(self, compiled: Callable[..., Any], run_args: Sequence[Any]) -> Any:
        """Call a compiled function with run-time values; faults become RunError.

        When counting, ``steps`` is then what the call executed (None after a fault other than
        --max-steps: frames that fault keep steps they drew but did not use).

        The cyclic garbage collector is paused during the call: run-time values are immutable
        (scalars, tuples, arrays, closures over them), so a run makes no cycles, and a loop's
        derivative, which builds a record per trip, would otherwise have it rescan them all.
        """
        budget = self.budget
        if budget is not None:
            budget.left = self._initial_budget
        self.steps = None
        old_limit = sys.getrecursionlimit()
        # A direct call's first run also runs its callee's stand-in, which compiles the callee there
        # (see ``Compiler``).
        needed = _stack_depth() + self.compiler.frames_per_call * self.max_depth + _COMPILER_FRAMES + 100
        if needed > old_limit:
            sys.setrecursionlimit(needed)
        collecting = gc.isenabled()
        gc.disable()
        try:
            with np.errstate(all="ignore"):
                result = compiled(1, *run_args)
        except StepsExceeded as fault:
            self.steps = self.max_steps
            raise RunError([fault_diagnostic(fault, self.compiler.sites)]) from None
        except Fault as fault:
            raise RunError([fault_diagnostic(fault, self.compiler.sites)]) from None
        finally:
            if collecting:
                gc.enable()
            if needed > old_limit:
                sys.setrecursionlimit(old_limit)
        if budget is not None:
            self.steps = self._initial_budget - budget.left
        return result


def _list(types: Sequence[Type]) -> str:
    return ", ".join(str(t) for t in types)


def _stack_depth() -> int:
    frame = sys._getframe()
    depth = 0
    while frame is not None:
        depth += 1
        frame = frame.f_back  # type: ignore[assignment]
    return depth


def run(module: Module, function: str, *args: Any, backend: Backend | None = None, **limits: Any) -> Any:
    """Run ``function`` (``"@f"``) of a verified module on Python values and return Python values.

    ``limits``: ``max_steps``, ``max_depth``, ``trap_nan``. Faults raise RunError with a located diagnostic.
    """
    return Program(module, backend, **limits).run(function, *args)
