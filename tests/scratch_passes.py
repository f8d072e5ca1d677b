"""A pass that breaks the module, for the pass manager's and the driver's checks after a pass
(registered through the ``scratch_registry`` fixture of ``tests/conftest.py``)."""

from __future__ import annotations

from sil.ir import Module
from sil.passes import Pass, PassContext


class BreakModule(Pass):
    """Erases every terminator: the module no longer verifies."""

    name = "break-module"
    description = "Erase every terminator"

    def run(self, module: Module, ctx: PassContext) -> None:
        for fn in module.functions.values():
            for block in fn.blocks:
                term = block.terminator
                if term is not None:
                    term.erase()
