"""``-O``: the optimization passes (``ROUND``), in rounds, until a round changes nothing.

Each pass leaves a module behaving as before (``tests/sil/transforms/preservation.py``), so the
pipeline does too. ``-dce`` is not in it: ``-canonicalize`` erases what is unused and cannot fault,
except tensor builtins (``canonicalize.cannot_fault``); ``-dce`` erases those too where no shape
can make them fault (``builtins.may_fault``).
"""

from __future__ import annotations

from sil.ir import Module
from sil.passes import Pass, PassContext, register_pass
from sil.printer import print_module
from sil.transforms.before_ad import REJECTED, rejected_by_differentiation
from sil.transforms.canonicalize import Canonicalize
from sil.transforms.closure_specialize import ClosureSpecialize
from sil.transforms.cse import CommonSubexpressionElimination
from sil.transforms.dead_function_elim import DeadFunctionElimination
from sil.transforms.inline import Inline
from sil.transforms.licm import LoopInvariantCodeMotion
from sil.transforms.loop_unroll import LoopUnroll
from sil.transforms.simplify_cfg import SimplifyCFG
from sil.transforms.sroa import ScalarReplacementOfAggregates

ROUND: tuple[type[Pass], ...] = (
    Inline,
    Canonicalize,
    ClosureSpecialize,
    ScalarReplacementOfAggregates,
    Canonicalize,
    CommonSubexpressionElimination,
    LoopInvariantCodeMotion,
    LoopUnroll,
    SimplifyCFG,
    DeadFunctionElimination,
)
MAX_ROUNDS = 16
"""A round enables the next: a call inlined makes a closure known, whose application becomes a
direct call (-closure-specialize) that the next round inlines, one level of calls a round; a loop
unrolled leaves a known trace for the pullback's loop. The golden and example modules reach a
fixed point in at most 6 rounds (the tests check). The bound keeps two passes that undid each
other from hanging silopt: the module they leave behaves as the input did, optimized or not."""


@register_pass
class Optimize(Pass):
    """The optimization pipeline, to a fixed point."""

    name = "O"
    description = (
        "-inline, -canonicalize, -closure-specialize, -sroa, -cse, -licm, -loop-unroll, -simplify-cfg, "
        "-dead-function-elim in rounds, to a fixed point"
    )

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
