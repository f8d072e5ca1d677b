"""``--trap-nan``: a run stops at the first instruction that makes a NaN from operands that are not
NaN, as JAX's ``jax_debug_nans`` does, with the operands' values in the fault's notes.

A run asks for it with ``Program(trap_nan=True)``. The compiler then writes, after the code of each
builtin that computes floats (``checked``), a test of its result, before the ``del`` of the
operands it last reads: a NaN in the result (any element of a tensor) while no operand holds one
faults there (``NaNFault``). A run without the trap compiles exactly the source it compiled before
the trap existed: the tests, their constants and the changes below are made only when it is on.

Under the trap:
- no scalar builtin is fused into its user (``interp/fusion.py``): a test reads each result and
  each operand by its variable, which a fused value does not have (its expression would be
  evaluated again), and tests must run in the instructions' order;
- calls are still written inline (``interp/inlining.py``) and their instructions tested as any
  other's, under the ``called from`` note the inlined call keeps; but a tested builtin can fault,
  so it is no longer pure: one whose result the inlined code leaves unread is computed and tested
  all the same, as the call would compute it.
A test is a ``Fallible`` statement, so a counted run (``--max-steps``) charges the steps before it,
and a loop with tests in its trips is charged trip by trip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from accel.backend import Backend
from interp.faults import Fault
from interp.statements import Fallible, Nest, Node
from sil.builtins import BUILTINS
from sil.instructions import BuiltinInst
from sil.instructions.literals import format_float
from sil.ir import Instruction, Value
from sil.types import BOOL, TENSOR_SHAPE, ScalarType, TensorType, Type


class NaNFault(Fault):
    """The ``--trap-nan`` fault: an instruction made a NaN from operands that are not NaN."""


def checked(inst: Instruction) -> bool:
    """Whether the trap tests the result of ``inst``: a builtin that computes floats (a Float, a
    Double or a tensor), not one that only moves them (``BuiltinInfo.moves``)."""
    if type(inst) is not BuiltinInst or BUILTINS[inst.name].moves:
        return False
    t = inst.type
    return isinstance(t, TensorType) or (isinstance(t, ScalarType) and t.is_float)


Constants = Callable[[Any, str], str]
"""Gives the name of a closure cell holding a value (the value, a hint for the name)."""


class NaNTrap:
    """Writes the tests of a run under ``--trap-nan``, on tensors of ``backend``."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.names: dict[str, Any] = {"_has_nan": self.has_nan}
        """The constants the tests read, by name."""

    def has_nan(self, t: Any) -> bool:
        """Whether tensor ``t`` holds a NaN. Its sum, one reduction and one scalar to the host, is
        NaN when it does; it is NaN also when ``t`` holds both infinities (or its partial sums
        overflow both ways), so a NaN sum is confirmed on the host."""
        total = self.backend.sum(t)
        return bool(total != total) and bool(np.isnan(self.backend.to_host(t)).any())

    def check(
        self, inst: BuiltinInst, site: int, var: Callable[[Value], str], const: Constants
    ) -> list[Node]:
        """The test after ``inst``'s code (``checked(inst)``): its result is NaN while none of its
        operands is; ``site``: the instruction's index in the program's site table."""
        result = var(inst.result)
        tests = [f"_has_nan({result})" if isinstance(inst.type, TensorType) else f"{result} != {result}"]
        names = [var(o) for o in inst.operands]
        for name, o in zip(names, inst.operands):
            if isinstance(o.type, TensorType):
                tests.append(f"not _has_nan({name})")
            elif isinstance(o.type, ScalarType) and o.type.is_float:
                tests.append(f"{name} == {name}")
        fault = const(_Explainer(site, inst, self.backend), "nan")
        raise_fault = f"raise {fault}({', '.join([result, *names])})"
        return [Fallible([Nest(f"if {' and '.join(tests)}:", [raise_fault])])]


class _Explainer:
    """Makes the fault of one tested instruction from the values at hand: the message says where
    a tensor result's first NaN is, and a note per operand shows it."""

    def __init__(self, site: int, inst: BuiltinInst, backend: Backend) -> None:
        self.site = site
        self.inst = inst
        self.backend = backend

    def __call__(self, result: Any, *operands: Any) -> NaNFault:
        inst = self.inst
        message = f"'{inst.name}' made a NaN from operands that are not NaN (--trap-nan)"
        at: tuple[int, ...] | None = None
        if isinstance(inst.type, TensorType):
            host = self.backend.to_host(result)
            at = _first(np.isnan(host))
            message += f": the first NaN of its result, of shape {_listed(host.shape)}, is at {_listed(at)}"
        index = at if BUILTINS[inst.name].elementwise else None  # where the operands' elements are shown
        notes = tuple(
            f"operand {i}{f' ({name})' if name else ''}: {self._describe(v, o.type, index)}"
            for i, (o, v, name) in enumerate(zip(inst.operands, operands, _operand_names(inst)))
        )
        return NaNFault(self.site, message, notes)

    def _describe(self, value: Any, t: Type, at: tuple[int, ...] | None) -> str:
        """``value`` exactly when a scalar; a tensor by its shape and dtype, then its element at
        ``at`` (broadcast to its shape) or, without ``at``, its infinities."""
        if isinstance(t, TensorType):
            host = self.backend.to_host(value)
            summary = f"shape {_listed(host.shape)}, {host.dtype}"
            if at is not None:
                index = _broadcast_index(at, host.shape)
                return f"{summary}, {format_float(float(host[index]), t.element)} at {_listed(index)}"
            return f"{summary}, {_infinities(host, t.element)}"
        if isinstance(t, ScalarType) and t.is_float:
            return format_float(float(value), t)
        if t == BOOL:
            return "true" if value else "false"
        if t == TENSOR_SHAPE:
            return _listed(value)
        return str(value)


def _operand_names(inst: Instruction) -> list[str | None]:
    """The operands' names as the diagnostic shows them: those the source gave (None for its
    numbers), or in synthesized code, which the message quotes as printed, the printer's."""
    fn = inst.block.function if inst.block is not None else None
    if inst.span is None and fn is not None:
        from sil.printer import Printer  # only when a fault is reported

        printer = Printer()
        printer.print_function(fn)
        return [printer.names.get(o) for o in inst.operands]
    return [f"%{o.name}" if o.name is not None else None for o in inst.operands]


def _listed(numbers: Sequence[int]) -> str:
    return f"[{', '.join(str(int(n)) for n in numbers)}]"


def _first(mask: np.ndarray[Any, Any]) -> tuple[int, ...]:
    """The index of the first true element of ``mask`` (in row-major order), which has one."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


def _broadcast_index(at: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The index of an operand of ``shape`` that broadcasting reads for the result's index ``at``."""
    trailing = at[len(at) - len(shape) :] if shape else ()
    return tuple(0 if n == 1 else i for i, n in zip(trailing, shape))


def _infinities(host: np.ndarray[Any, Any], element: ScalarType) -> str:
    """What may have made a NaN in a reduction: the operand's infinities, or how large it gets."""
    if host.size == 0:
        return "no element"
    infinite = np.isinf(host)
    count = int(infinite.sum())
    if count:
        first = _first(infinite)
        noun = "infinity" if count == 1 else "infinities"
        return f"{count} {noun}, the first {format_float(float(host[first]), element)} at {_listed(first)}"
    largest = _first(np.abs(host) == np.abs(host).max())
    magnitude = format_float(math.fabs(float(host[largest])), element)
    return f"every element finite, the largest in magnitude {magnitude} at {_listed(largest)}"
