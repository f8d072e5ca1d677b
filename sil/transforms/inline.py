"""Inlining: an ``apply`` of a ``function_ref`` of a function with a body becomes a copy of that
body in the caller.

The block holding the call is split at it: what follows the call moves to a continuation block
whose argument is the call's result, the copy's entry takes the call's arguments in place of its
parameters (``sil.cloning.clone_blocks``), and each ``return`` of the copy becomes a ``br`` to the
continuation. The copy's blocks come right after the split block, then the continuation, so the
output reads in the order it runs; -simplify-cfg merges the straight-line pieces again.

Which calls (``inline_verdict``):
- never a call of a ``[noinline]`` function, nor of one that can call itself (recursion: a copy
  would only unroll one level, and each run of the pass, as -O's rounds make, one more); a
  registered derivative calling its original is no recursion;
- always a call of an ``[always_inline]`` or ``[transparent]`` function;
- otherwise the cost model: a callee of at most ``SMALL_CALLEE`` instructions, or the only call of
  a synthesized (``AD__``) function, which dead-function elimination then erases (its code moves
  rather than being copied), while the caller has grown by less than ``MAX_GROWTH`` instructions of
  copies in this run.
Functions are taken bottom-up over the strongly connected components of the graph of calls
(``sil.references.bottom_up``): a callee has had its own calls inlined before it is copied. The
calls a copy brings in (those its callee kept) are considered in the caller in turn, where the
rules may take them (the callee was differentiated, the caller is not): one run inlines all the
rules allow, so that -O's rounds do not unroll one level each.

Semantics before differentiation (issue 16, item 2). While the module still holds differentiation
work (``before_ad.differentiated_functions``: a ``gradient``, a ``differentiable_function``
without derivatives, a ``[differentiable]`` attribute lacking a JVP or a VJP, a legacy
``[reverse_differentiable]`` attribute), a call of a function with a registered derivative (a
``[differentiable]`` attribute naming a JVP or VJP, or a legacy primal and adjoint) is never
copied into a function that work may differentiate (those it names, every function they call,
and legacy primals and adjoints): the derivative differentiation would use for the call would be
lost. A module differentiation rejects is left as written (``before_ad.optimizable_functions``),
so its diagnostics are those of the code the user wrote. In a module it accepts, the cost model
decides in the differentiated functions too when a trial copy of the module inlined so is still
accepted (``_stays_accepted``): then no diagnostic is made or lost, and the copied calls are
differentiated in place, to the same derivatives up to rounding (a copied callee's adjoints are
summed in the caller's order); else those functions copy only ``[transparent]`` and
``[always_inline]`` callees, as the user asked. ``no_derivative`` builtins in a callee are copied
as they are, keeping their meaning. ``@noDerivative`` marks parameters of ``@differentiable``
function values only, never a function's own type (the verifier rejects it), so a callee named by
``function_ref`` has none to guard. A legacy primal or adjoint is never copied while a legacy
attribute names it: the migration passes rewrite the calls of it (a VJP's call of its primal).
Once no work is left (after -differentiation), the cost model alone decides.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from sil.builder import Builder
from sil.cloning import clone_blocks
from sil.instructions import (
    ApplyInst,
    FunctionRefInst,
    ReturnInst,
)
from sil.ir import (
    Block,
    DifferentiableAttr,
    FlagAttr,
    Function,
    Instruction,
    LegacyDifferentiableAttr,
    Module,
    Result,
    Value,
    release_instructions,
)
from sil.parser import parse
from sil.passes import Pass, PassContext, register_pass
from sil.printer import print_module
from sil.references import bottom_up, reference_graph, referenced_functions
from sil.transforms.before_ad import (
    differentiated_functions,
    optimizable_functions,
    rejected_by_differentiation,
)
from sil.transforms.dead_function_elim import is_root

SMALL_CALLEE = 20
"""The largest callee (in instructions, terminators included) the cost model copies. On the
interpreter a call costs about what seven scalar builtins cost (measured on a loop of 2*10^5 trips
calling a one-``fmul`` function: 96 ns a call against 14 ns an ``fmul``), and a copy costs nothing
once -simplify-cfg has merged it, so inlining saves about 7/n of a callee of n instructions' time,
and costs n instructions of code. At n <= 20 that is a third or more of the callee's time (and
-canonicalize and -cse then see through the call, which may save more); beyond, the gain falls
while the code grows with each copy. Larger bodies are copied only when asked
(``[always_inline]``) or when the call is their only one."""

MAX_GROWTH = 200
"""How many instructions of copies of small callees the cost model adds to one caller in one run
(ten copies of the largest small callee): a caller with many calls of helpers grows by a bounded
amount per run, not by the product of its calls and their sizes. Copies the user asked for and the
only calls of synthesized functions (whose code moves, not copies) do not count."""

Call = tuple[ApplyInst, Function]
"""An ``apply`` of a ``function_ref``, and the function it calls."""

# How the cost model took a call (``inline_verdict``'s answers besides no).
ASKED, SOLE_CALL, SMALL = "asked", "sole call", "small"


@register_pass
class Inline(Pass):
    """Inlines calls of known functions, bottom-up over the call graph."""

    name = "inline"
    description = (
        "Inline calls of known functions: [always_inline] and [transparent] always, [noinline] and "
        "recursive ones never, else small callees and the only call of a synthesized function; "
        "before differentiation only what keeps derivatives and diagnostics"
    )

    def run(self, module: Module, ctx: PassContext) -> None:
        if optimizable_functions(module, ctx):  # none: differentiation rejects the module as written
            inline_calls(module, freely=_stays_accepted(module))


def _stays_accepted(module: Module) -> bool:
    """Whether the cost model may decide in the functions differentiation will differentiate too:
    a copy of the module inlined so is still accepted by differentiation (which accepts the module
    as it stands: ``optimizable_functions``). Then no diagnostic is lost or made, and the calls
    copied are differentiated in place, to the same derivatives up to rounding. Nothing to decide
    (False) when no differentiation work is pending."""
    if not differentiated_functions(module):
        return False
    trial = parse(print_module(module), "<inline trial>")
    inline_calls(trial, freely=True)
    return not rejected_by_differentiation(trial)


def inline_calls(module: Module, freely: bool = False) -> int:
    """Inline the calls the rules allow (module docstring) in every function; how many. With
    ``freely``, the cost model decides in the functions differentiation will differentiate too
    (but for callees with a registered derivative)."""
    graph = reference_graph(module, derivatives=False)
    order = {name: i for i, name in enumerate(module.functions)}
    groups = bottom_up(graph, order)
    recursive = {name for group in groups for name in group if len(group) > 1 or graph.has_edge(name, name)}
    inliner = _Inliner(module, recursive, differentiated_functions(module), freely)
    for group in groups:
        for name in group:
            fn = module.functions[name]
            if not fn.is_declaration:
                inliner.inline_into(fn)
    return inliner.inlined


def _flags(fn: Function) -> set[str]:
    return {attr.name for attr in fn.attributes if isinstance(attr, FlagAttr)}


def has_registered_derivative(fn: Function) -> bool:
    """Whether an attribute of ``fn`` names a derivative (a JVP or VJP, or a legacy primal and
    adjoint) that differentiation would use for a call of it."""
    return any(
        (isinstance(attr, DifferentiableAttr) and (attr.jvp is not None or attr.vjp is not None))
        or (
            isinstance(attr, LegacyDifferentiableAttr)
            and (attr.primal is not None or attr.adjoint is not None)
        )
        for attr in fn.attributes
    )


def size(fn: Function) -> int:
    """The number of instructions of ``fn``, terminators included."""
    return sum(len(block.instructions) for block in fn.blocks)


class _Inliner:
    """The state of one run: which functions recurse, what differentiation work may still
    differentiate, and how often each function is referenced (for the sole-call rule)."""

    def __init__(self, module: Module, recursive: set[str], pending: frozenset[str], freely: bool) -> None:
        self.module = module
        self.recursive = recursive
        self.pending = pending
        self.freely = freely
        self.legacy_parts = {  # what the migration passes find calls of, and rewrite
            name
            for fn in module.functions.values()
            for attr in fn.attributes
            if isinstance(attr, LegacyDifferentiableAttr)
            for name in (attr.primal, attr.adjoint)
        }
        self.references = Counter(
            name for fn in module.functions.values() for name in referenced_functions(fn, module)
        )
        self.inlined = 0

    def inline_verdict(self, caller: Function, apply: ApplyInst, callee: Function) -> str | None:
        """How the rules take this call (module docstring): None to leave it."""
        flags = _flags(callee)
        if callee.is_declaration or "noinline" in flags or callee.name in self.recursive:
            return None
        if callee.name in self.legacy_parts:
            return None
        asked = bool(flags & {"always_inline", "transparent"})
        if caller.name in self.pending:
            if has_registered_derivative(callee):
                return None
            if not self.freely:
                return ASKED if asked else None
        if asked:
            return ASKED
        ref = apply.callee
        sole = self.references[callee.name] == 1 and len(ref.uses) == 1
        if sole and not is_root(callee.name):
            return SOLE_CALL
        return SMALL if size(callee) <= SMALL_CALLEE else None

    def inline_into(self, caller: Function) -> None:
        """Inline the calls ``caller`` makes that the rules take, then those their copies bring
        in, and so on (recursive callees are never copied, so the chain ends), up to
        ``MAX_GROWTH`` of copies of small callees."""
        calls = list(self._calls(caller.instructions()))
        growth = 0
        while calls:
            chosen: dict[Block, list[Call]] = {}
            for apply, callee in calls:
                verdict = self.inline_verdict(caller, apply, callee)
                if verdict == SMALL:
                    if growth + size(callee) > MAX_GROWTH:
                        continue
                    growth += size(callee)
                if verdict is not None:
                    assert apply.block is not None
                    chosen.setdefault(apply.block, []).append((apply, callee))
            calls = self._inline_all(caller, chosen)

    def _inline_all(self, caller: Function, chosen: dict[Block, list[Call]]) -> list[Call]:
        """Inline the ``chosen`` calls of each block, the last first (a split moves only what
        follows its call, and the earlier calls keep their places); returns the calls the copies
        bring in. Linear in the caller's size: the replaced instructions release their operands
        together, and the blocks are put in order once."""
        first_new = len(caller.blocks)
        placed: dict[Block, list[list[Block]]] = {}
        retired: list[Instruction] = []
        brought: list[Call] = []
        for block, block_calls in chosen.items():
            position = {inst: i for i, inst in enumerate(block.instructions)}
            found: list[list[Call]] = []
            for apply, callee in reversed(block_calls):
                made = self._inline(caller, block, position[apply], callee, retired)
                placed.setdefault(block, []).append(made)
                found.append(list(self._calls(i for copy in made for i in copy.instructions)))
            brought += [call for calls in reversed(found) for call in calls]
        release_instructions(retired)
        for inst in retired:
            if isinstance(inst, ApplyInst):
                self._drop_reference(inst.callee)
        order: list[Block] = []
        for block in caller.blocks[:first_new]:
            order.append(block)
            for made in reversed(placed.get(block, [])):
                order += made
        caller.blocks = order
        return brought

    def _calls(self, instructions: Iterable[Instruction]) -> Iterator[Call]:
        """Each ``apply`` of a ``function_ref`` among ``instructions``, with the function it calls."""
        for inst in instructions:
            if isinstance(inst, ApplyInst):
                ref = inst.callee.owner if isinstance(inst.callee, Result) else None
                if isinstance(ref, FunctionRefInst) and ref.function_name in self.module.functions:
                    yield inst, self.module.functions[ref.function_name]

    def _inline(
        self, caller: Function, block: Block, index: int, callee: Function, retired: list[Instruction]
    ) -> list[Block]:
        """Replace the ``apply`` at ``index`` in ``block`` (its last call still to inline) by a
        copy of ``callee``'s body; the copy's blocks and the continuation, appended to the caller.
        The apply and the copy's returns go to ``retired``."""
        apply = block.instructions[index]
        assert isinstance(apply, ApplyInst)
        body = clone_blocks(callee, caller, apply.args)
        rest = caller.add_block()
        result = rest.add_argument(apply.result.type, apply.result.name)
        rest.take_instructions(block, index + 1)
        apply.result.replace_all_uses_with(result)
        block.instructions.pop()  # the apply, which ends the block now
        retired.append(apply)
        _branch(Builder.at_end(block), body.blocks[callee.entry], [], apply)
        for copy in body.blocks.values():
            if isinstance(copy.terminator, ReturnInst):
                term = copy.retire_terminator()
                retired.append(term)
                _branch(Builder.at_end(copy), rest, [term.operands[0]], term)
        self.references.update(
            inst.function_name for inst in callee.instructions() if isinstance(inst, FunctionRefInst)
        )
        self.inlined += 1
        return [*body.blocks.values(), rest]

    def _drop_reference(self, ref: Value) -> None:
        """Erase the ``function_ref`` of an inlined call once nothing else uses it."""
        owner = ref.owner if isinstance(ref, Result) else None
        if isinstance(owner, FunctionRefInst) and owner.block is not None and not ref.uses:
            self.references[owner.function_name] -= 1
            owner.erase()


def _branch(b: Builder, dest: Block, args: list[Value], replacing: Instruction) -> None:
    """A ``br`` where ``replacing`` was, located where it was (for diagnostics)."""
    made = b.br(dest, *args)
    made.span = replacing.span
