"""``-O``: the optimization passes (``ROUND``), in rounds, until a round changes nothing.

Each pass leaves a module behaving as before (``tests/sil/transforms/preservation.py``), so the
pipeline does too. ``-dce`` is not in it: it erases an unused tensor builtin, which can fault on
shapes at run time; ``-canonicalize`` erases only what is unused and cannot fault.
"""

from __future__ import annotations

from sil.ir import Module
from sil.passes import Pass, PassContext, register_pass
from sil.printer import print_module
from sil.transforms.before_ad import REJECTED, rejected_by_differentiation
from sil.transforms.canonicalize import Canonicalize
from sil.transforms.cse import CommonSubexpressionElimination
from sil.transforms.dead_function_elim import DeadFunctionElimination
from sil.transforms.licm import LoopInvariantCodeMotion
from sil.transforms.simplify_cfg import SimplifyCFG

ROUND: tuple[type[Pass], ...] = (
    Canonicalize,
    CommonSubexpressionElimination,
    LoopInvariantCodeMotion,
    SimplifyCFG,
    DeadFunctionElimination,
)
MAX_ROUNDS = 16
"""Each round that changes something shrinks the module or folds a value, so a fixed point comes
within a few rounds (the golden and example modules reach it in at most 4: the tests check); the
bound keeps two passes that undid each other from hanging silopt: the module they leave behaves as
the input did, optimized or not."""


@register_pass
class Optimize(Pass):
    """The optimization pipeline, to a fixed point."""

    name = "O"
    description = "-canonicalize, -cse, -licm, -simplify-cfg, -dead-function-elim in rounds, to a fixed point"

    def run(self, module: Module, ctx: PassContext) -> None:
        optimize(module, ctx)


def optimize(module: Module, ctx: PassContext) -> int:
    """Run rounds of ``ROUND`` on ``module`` until one leaves it printing the same (at most
    ``MAX_ROUNDS``); how many rounds ran."""
    printed = print_module(module)
    rejected = rejected_by_differentiation(module)
    for rounds in range(1, MAX_ROUNDS + 1):
        for cls in ROUND:
            ctx.analyses.clear()  # each pass sees the module as the last one left it
            ctx.analyses[REJECTED] = rejected  # but for this, which no pass changes
            cls().run(module, ctx)
        now = print_module(module)
        if now == printed:
            return rounds
        printed = now
    return MAX_ROUNDS
