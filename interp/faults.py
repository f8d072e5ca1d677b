"""Run-time faults: raised by compiled code at an instruction, reported as located diagnostics.

Compiled code knows instructions by their index in the program's site table (``Program.sites``);
a fault carries the index where it happened and, as it unwinds, the index of each ``apply`` it
passes through, which become the ``called from`` notes.
"""

from __future__ import annotations

from sil.diagnostics import Diagnostic, SILError, note
from sil.ir import Instruction


class Fault(Exception):
    """A fault at run time: the site where it happened and the call sites it unwound through."""

    def __init__(self, site: int, message: str) -> None:
        super().__init__(message)
        self.site = site
        self.message = message
        self.callers: list[int] = []

    def called_from(self, site: int) -> None:
        """Record that the fault unwound through the ``apply`` at ``site``."""
        self.callers.append(site)


class RunError(SILError):
    """A run ended in a fault (or could not start): its diagnostics say where and why."""


def fault_diagnostic(fault: Fault, sites: list[Instruction]) -> Diagnostic:
    """The located diagnostic of a fault, with a note per active call frame, innermost first; a
    fault on entry to a function called from Python (site -1) has no place in the module."""
    span = sites[fault.site].span if fault.site >= 0 else None
    notes = []
    callers = fault.callers
    i = 0
    while i < len(callers):
        j = i
        while j + 1 < len(callers) and callers[j + 1] == callers[i]:
            j += 1
        call = sites[callers[i]]
        fn = call.block.function if call.block is not None else None
        message = f"called from @{fn.name if fn is not None else '?'}"
        if j > i:
            message += f" ({j - i + 1} nested calls from this place)"
        notes.append(note(call.span, message))
        i = j + 1
    return Diagnostic("error", fault.message, span, notes)


def run_error(message: str, where: Instruction | None = None) -> RunError:
    """A RunError with one diagnostic, located at an instruction when one is given."""
    return RunError([Diagnostic("error", message, where.span if where is not None else None)])
