"""Run-time faults: raised by compiled code at an instruction, reported as located diagnostics.

Compiled code knows instructions by their index in the program's site table (``Program.sites``);
a fault carries the index where it happened and, as it unwinds, the index of each ``apply`` it
passes through, which become the ``called from`` notes. A fault may carry notes of its own (what
``--trap-nan`` found in the operands), which come first.
"""

from __future__ import annotations

from sil.diagnostics import Diagnostic, SILError, note
from sil.ir import Instruction


class Fault(Exception):
    """A fault at run time: the site where it happened and the call sites it unwound through."""

    def __init__(self, site: int, message: str, notes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.site = site
        self.message = message
        self.notes = notes
        """Notes without a place, about the values at the fault."""
        self.callers: list[int] = []

    def called_from(self, site: int) -> None:
        """Record that the fault unwound through the ``apply`` at ``site``."""
        self.callers.append(site)


class RunError(SILError):
    """A run ended in a fault (or could not start): its diagnostics say where and why."""


def fault_diagnostic(fault: Fault, sites: list[Instruction]) -> Diagnostic:
    """The located diagnostic of a fault, with a note per active call frame, innermost first.

    A fault on entry to a function called from Python (site -1) has no place in the module. A fault
    at an instruction the differentiation passes synthesized (it has no place in the source) names
    that instruction, and points at the innermost call in the source that the run was under: the
    ``apply`` of the derivative there, not nowhere.
    """
    own = [note(None, n) for n in fault.notes]
    if fault.site < 0:
        return Diagnostic("error", fault.message, None, [*own, *_call_notes(fault.callers, sites)])
    inst = sites[fault.site]
    message = fault.message
    span = inst.span
    callers = fault.callers
    if span is None:
        message += f", in synthesized code: {_quoted_line(inst)}"
        located = next((i for i, site in enumerate(callers) if sites[site].span is not None), None)
        if located is not None:
            span = sites[callers[located]].span
            message += ", reached from this call"
            callers = callers[:located]
            outer = _call_notes(fault.callers[located + 1 :], sites)
            return Diagnostic("error", message, span, [*own, *_call_notes(callers, sites), *outer])
    return Diagnostic("error", message, span, [*own, *_call_notes(callers, sites)])


def _call_notes(callers: list[int], sites: list[Instruction]) -> list[Diagnostic]:
    """A ``called from`` note per call site, runs of the same site (recursion) as one."""
    notes = []
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
    return notes


def _quoted_line(inst: Instruction) -> str:
    """```%5 = float_literal $Float, 1.0``` in '@f'``: the instruction as the printer writes it."""
    from sil.printer import Printer

    fn = inst.block.function if inst.block is not None else None
    if fn is None:
        return f"'{inst.opname}'"
    lines = Printer().print_function(fn).splitlines()
    line = 0
    for block in fn.blocks:
        line += 1  # the label
        if block is inst.block:
            line += block.instructions.index(inst) + 1
            break
        line += len(block.instructions)
    return f"`{lines[line].strip()}` in '@{fn.name}'"


def run_error(message: str, where: Instruction | None = None) -> RunError:
    """A RunError with one diagnostic, located at an instruction when one is given."""
    return RunError([Diagnostic("error", message, where.span if where is not None else None)])
