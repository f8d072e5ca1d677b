"""Which calls a compiled function runs inline, and which values it then need not build.

A lowered gradient (``@AD__f__grad_…``) calls the VJP, which builds the checkpoints record and a
closure of the pullback over it and returns both in a tuple; the gradient takes the tuple apart
and calls the closure, which takes the record apart again. In Python each of these steps costs:
a call and a frame per function, and a record of more than 30 fields is even built through a
list. Compiled into the gradient, the VJP and the pullback need none of it: the pullback reads
the VJP's locals, and the record, the closure and the tuple are never made.

So the compiler writes a call inline when the callee is a leaf (one block, no ``apply``) called
from this one place in the module, directly or through a closure whose ``partial_apply`` it can
see; a projection (``destructure_tuple``, ``struct_extract``, …) of a tuple or struct it can see
reads the element's variable; and a pure instruction whose result nothing reads any more is left
out. Values are SSA: a variable is assigned again only when its definition runs again, so a
projection reads the element that the aggregate was built from wherever the aggregate reaches.
Each function is written inline at most once per compiled function, so its values keep one
variable each. Counted runs (``--max-steps``) compile every call as a call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs

from interp.fusion import is_pure_builtin
from sil.instructions import (
    ApplyInst,
    DestructureStructInst,
    DestructureTupleInst,
    EnumInst,
    FloatLiteralInst,
    FunctionRefInst,
    IntegerLiteralInst,
    PartialApplyInst,
    ReturnInst,
    StructExtractInst,
    StructInst,
    ThinToThickFunctionInst,
    TupleExtractInst,
    TupleInst,
)
from sil.ir import Function, Instruction, Module, Value

_AGGREGATES = (TupleInst, StructInst, PartialApplyInst, FunctionRefInst)
_PROJECTIONS = (DestructureTupleInst, DestructureStructInst, TupleExtractInst, StructExtractInst)
_PURE = (
    *_AGGREGATES,
    *_PROJECTIONS,
    IntegerLiteralInst,
    FloatLiteralInst,
    ThinToThickFunctionInst,
    EnumInst,
)


# How deeply inlined calls may nest: a gradient (the VJP and the pullback inline) is itself
# written inline into its caller, and a chain of calls grows the code linearly, not quadratically.
MAX_INLINE_HEIGHT = 2


@attrs.define
class InlinePlan:
    """What the compiler writes differently in one function."""

    inlined: dict[ApplyInst, Function] = attrs.Factory(dict)
    """Calls written inline, with their callee."""
    forward: dict[Value, Value] = attrs.Factory(dict)
    """Values held in another value's variable: projections of known aggregates, the parameters
    of inlined callees (their arguments), the results of inlined calls (what the callee returns)."""
    folded: set[Instruction] = attrs.Factory(set)
    """Instructions written as nothing: forwarded projections, and pure instructions whose
    results nothing reads."""
    functions: list[Function] = attrs.Factory(list)
    """The functions whose instructions the compiled code holds: this one, then those inlined."""


class Inliner:
    """Decides which functions of a module may be written inline, and plans each function.

    A function may be written inline when one ``function_ref`` in the module names it (so its
    code is written out at one place, and in whatever inlines that place), its body is one block
    ending in ``return``, and every call it makes is itself written inline, at most
    ``MAX_INLINE_HEIGHT`` levels deep: then the inlined code makes no call.
    """

    def __init__(self, module: Module, can_fault: Callable[[Instruction], bool] | None = None) -> None:
        self.module = module
        self.can_fault = can_fault
        """Instructions that can fault beyond those that always can (under ``--trap-nan``, the
        builtins it tests): never left out when unread."""
        self.references: dict[str, int] = {}
        for fn in module.functions.values():
            for inst in fn.instructions():
                if isinstance(inst, FunctionRefInst):
                    self.references[inst.function_name] = self.references.get(inst.function_name, 0) + 1
        self._heights: dict[str, int] = {}  # those found, all at most MAX_INLINE_HEIGHT
        self._above: dict[str, int] = {}  # a height known to be exceeded (or never inlined)

    def height(self, name: str, limit: int = MAX_INLINE_HEIGHT) -> int | None:
        """How deeply calls nest once ``@name`` is written inline (1: it calls nothing), when
        that is at most ``limit``; None otherwise, or when it may not be written inline.

        Deciding plans the function with callees of height ``limit - 1`` at most, so the search
        recurses at most ``limit`` deep whatever the call graph (and stops in cycles)."""
        found = self._heights.get(name)
        if found is not None:
            return found if found <= limit else None
        if limit <= 0 or self._above.get(name, 0) >= limit:
            return None
        fn = self.module.functions.get(name)
        if fn is None or not self._may_be_inlined(fn):
            self._above[name] = MAX_INLINE_HEIGHT
            return None
        planner = _Planner(self, fn, limit - 1)
        planner.visit_all(fn.blocks[0].instructions)
        if any(isinstance(inst, ApplyInst) for inst in planner.emitted):
            self._above[name] = limit
            return None
        height = 1 + max((self._heights[f.name] for f in planner.plan.functions[1:]), default=0)
        self._heights[name] = height
        return height

    def _may_be_inlined(self, fn: Function) -> bool:
        return (
            not fn.is_declaration
            and self.references.get(fn.name) == 1
            and len(fn.blocks) == 1
            and isinstance(fn.blocks[0].instructions[-1], ReturnInst)
        )

    def plan(self, fn: Function) -> InlinePlan:
        """The inlining plan of ``fn``."""
        planner = _Planner(self, fn, MAX_INLINE_HEIGHT)
        for block in fn.blocks:
            planner.visit_all(block.instructions)
        if planner.plan.inlined or planner.plan.folded:  # else no read went away
            planner.fold_dead()
        return planner.plan


class _Planner:
    def __init__(self, inliner: Inliner, fn: Function, limit: int) -> None:
        self.inliner = inliner
        self.limit = limit  # the greatest height of a callee written inline here
        self.module = inliner.module
        self.plan = InlinePlan(functions=[fn])
        self.known: dict[Value, Instruction] = {}  # values an aggregate instruction made
        self.emitted: list[Instruction] = []  # the instructions compiled, inlined ones included

    def resolve(self, v: Value) -> Value:
        return self.plan.forward.get(v, v)

    def visit_all(self, instructions: Iterable[Instruction]) -> None:
        for inst in instructions:
            if isinstance(inst, _AGGREGATES):
                self.known[inst.result] = inst
            elif isinstance(inst, _PROJECTIONS) and self._forward_projection(inst):
                self.plan.folded.add(inst)
                continue
            elif isinstance(inst, ApplyInst) and self._inline(inst):
                continue
            self.emitted.append(inst)

    def _forward_projection(self, inst: Instruction) -> bool:
        """Forward the results of a projection of a known tuple or struct to its elements."""
        aggregate = self.known.get(self.resolve(inst.operands[0]))
        if not isinstance(aggregate, (TupleInst, StructInst)):
            return False
        elements = [self.resolve(o) for o in aggregate.operands]
        if isinstance(inst, TupleExtractInst):
            picked = [elements[inst.index]]
        elif isinstance(inst, StructExtractInst):
            decl = self.module.struct(str(inst.operands[0].type))
            if decl is None:
                return False
            picked = [elements[[f.name for f in decl.fields].index(inst.field)]]
        else:
            picked = elements
        if len(picked) != len(inst.results):
            return False
        self.plan.forward.update(zip(inst.results, picked))
        return True

    def _inline(self, inst: ApplyInst) -> bool:
        """Plan ``inst`` inline when its callee may be written inline and is seen here: through a
        ``function_ref``, or as a closure of one made by a ``partial_apply``."""
        callee = self.known.get(self.resolve(inst.callee))
        args = [self.resolve(a) for a in inst.args]
        if isinstance(callee, PartialApplyInst):
            args += [self.resolve(a) for a in callee.args]
            callee = self.known.get(self.resolve(callee.callee))
        if not isinstance(callee, FunctionRefInst):
            return False
        if self.inliner.height(callee.function_name, self.limit) is None:
            return False
        target = self.module.functions[callee.function_name]
        entry = target.blocks[0]
        if target in self.plan.functions or len(entry.args) != len(args):
            return False
        self.plan.inlined[inst] = target
        self.plan.functions.append(target)
        self.plan.forward.update(zip(entry.args, args))
        self.limit -= 1  # what the callee inlines is one level lower
        self.visit_all(entry.instructions[:-1])
        self.limit += 1
        self.plan.forward[inst.result] = self.resolve(entry.instructions[-1].operands[0])
        return True

    def fold_dead(self) -> None:
        """Fold the pure instructions that forwarding and inlining left unread: those whose
        results no kept instruction reads, directly or through other kept ones. What the SIL
        itself computes for nothing stays (removing it is ``-dce``'s business): a compiled
        function runs every instruction its SIL runs but those the plan made unnecessary."""
        owner: dict[Value, Instruction] = {r: inst for inst in self.emitted for r in inst.results}
        live: set[Instruction] = set()
        can_fault = self.inliner.can_fault
        work = [
            inst
            for inst in self.emitted
            if not _is_pure(inst)
            or not any(r.uses for r in inst.results)
            or (can_fault is not None and can_fault(inst))
        ]
        while work:
            inst = work.pop()
            if inst in live:
                continue
            live.add(inst)
            for op in inst.operands:
                definition = owner.get(self.resolve(op))
                if definition is not None and definition not in live:
                    work.append(definition)
        self.plan.folded.update(inst for inst in self.emitted if inst not in live)


def _is_pure(inst: Instruction) -> bool:
    """Whether leaving ``inst`` out when nothing reads it is unobservable: it cannot fault and
    has no effect."""
    return isinstance(inst, _PURE) or is_pure_builtin(inst)
