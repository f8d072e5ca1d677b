"""``--print-ir-before=PASS``, ``--print-ir-after=PASS`` and their ``-all`` forms: the module,
printed to standard error around the passes named, under MLIR's headers
(``// -----// IR Dump Before NAME //----- //``)."""

from __future__ import annotations

from collections.abc import Collection
from typing import IO

from sil.ir import Module
from sil.passes import Pass, PassContext, PassInstrumentation
from sil.printer import print_module


class IRPrinting(PassInstrumentation):
    """Prints the module before the passes named in ``before`` and after those in ``after`` (None:
    every pass)."""

    def __init__(
        self, stream: IO[str], before: Collection[str] | None, after: Collection[str] | None
    ) -> None:
        self.stream = stream
        self.before = before
        self.after = after

    def before_pass(self, p: Pass, module: Module, ctx: PassContext) -> None:
        if self.before is None or p.name in self.before:
            self._dump("Before", p, module, ctx)

    def after_pass(self, p: Pass, module: Module, ctx: PassContext) -> None:
        if self.after is None or p.name in self.after:
            self._dump("After", p, module, ctx)

    def _dump(self, when: str, p: Pass, module: Module, ctx: PassContext) -> None:
        self.stream.write(f"// -----// IR Dump {when} {p.name} //----- //\n")
        # Before a pass, the annotations are none: the pass manager clears the last pass's.
        self.stream.write(print_module(module, ctx.annotations))
