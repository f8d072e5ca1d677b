"""Why a value is (or is not) active: the shortest chains of flows that make it so.

The chains are walks, breadth first, over ``analysis.activity.flow_graph``: the very edges the
activity analysis follows, so an explanation cannot disagree with ``-print-activity``. A value is
varied when a chain leads from a ``wrt`` parameter to it, useful when one leads from it to a
result; where there is none, the blocked flows (a builtin of derivative zero, a ``@noDerivative``
field) that a chain would have crossed say where it stops.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

import attrs

from analysis.activity import ActivityInfo, Flow, FlowGraph, flow_graph, useful_seeds, varied_seeds
from sil.diagnostics import Span
from sil.instructions import BuiltinInst, CondBranchInst, ReturnInst, SwitchEnumInst, TupleInst
from sil.ir import BlockArgument, Function, Instruction, Result, Value
from sil.printer import Printer


@attrs.frozen
class Chain:
    """A walk from ``start`` over ``flows``; ``returned_by`` is the ``return`` that ends a chain to
    a result (None for a chain to a value)."""

    start: Value
    flows: tuple[Flow, ...]
    returned_by: Instruction | None = None

    @property
    def end(self) -> Value:
        return self.flows[-1].target if self.flows else self.start


def _shortest(
    starts: Iterable[Value], is_goal: Callable[[Value], bool], edges: dict[Value, list[Flow]]
) -> Chain | None:
    """The shortest walk forward over ``edges`` from one of ``starts`` to a goal (ties: the first
    start, then instruction order)."""
    parent: dict[Value, Flow | None] = {}
    queue: deque[Value] = deque()
    for s in starts:
        if s not in parent:
            parent[s] = None
            queue.append(s)
    while queue:
        v = queue.popleft()
        if is_goal(v):
            flows: list[Flow] = []
            while (flow := parent[v]) is not None:
                flows.append(flow)
                v = flow.source
            return Chain(v, tuple(reversed(flows)))
        for flow in edges.get(v, ()):
            if flow.target not in parent:
                parent[flow.target] = flow
                queue.append(flow.target)
    return None


def _returned_by(value: Value) -> Instruction | None:
    """The ``return`` of ``value``, or of the tuple of several results it is an element of."""
    for user in value.uses:
        if isinstance(user, ReturnInst):
            return user
        if isinstance(user, TupleInst):
            found = next((u for u in user.result.uses if isinstance(u, ReturnInst)), None)
            if found is not None:
                return found
    return None


@attrs.define
class ActivityExplainer:
    """The chains of one function for one configuration (``info``, the analysis's answer)."""

    info: ActivityInfo
    graph: FlowGraph = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.graph = flow_graph(self.info.module, self.info.function)

    def varied_chain(self, value: Value) -> Chain | None:
        """The shortest chain from a ``wrt`` parameter to ``value``."""
        seeds = varied_seeds(self.info.function, self.info.config)
        return _shortest(seeds, lambda v: v is value, self.graph.forward)

    def useful_chain(self, value: Value) -> Chain | None:
        """The shortest chain from ``value`` to a result, ended by its ``return``."""
        results = set(useful_seeds(self.info.function, self.info.config))
        chain = _shortest([value], results.__contains__, self.graph.forward)
        return None if chain is None else attrs.evolve(chain, returned_by=_returned_by(chain.end))

    def chain_through(self, inst: Instruction) -> Chain | None:
        """The shortest chain from a ``wrt`` parameter through ``inst`` (from one of its varied
        operands to one of its useful results) to a result: the active path a diagnostic at
        ``inst`` is about."""
        info = self.info
        result = next((r for r in inst.results if r in info.useful), None)
        operands = {op for op in inst.operands if op in info.varied}
        if result is None or not operands:
            return None
        to_operand = _shortest(
            varied_seeds(info.function, info.config), operands.__contains__, self.graph.forward
        )
        from_result = self.useful_chain(result)
        if to_operand is None or from_result is None:
            return None
        step = Flow(to_operand.end, result, inst)
        return Chain(to_operand.start, (*to_operand.flows, step, *from_result.flows), from_result.returned_by)

    def stops_before(self, value: Value) -> list[Flow]:
        """Blocked flows from a varied value into ``value`` or what it is computed from: where
        chains from the ``wrt`` parameters stop."""
        behind = self._reached([value], self.graph.backward, forward=False)
        return [f for f in self.graph.blocked if f.target in behind and f.source in self.info.varied]

    def stops_after(self, value: Value) -> list[Flow]:
        """Blocked flows out of ``value`` or what it flows to: where chains to a result stop."""
        ahead = self._reached([value], self.graph.forward, forward=True)
        return [f for f in self.graph.blocked if f.source in ahead]

    def branches_after(self, value: Value) -> list[Instruction]:
        """The branches that ``value``, or what it flows to, decides: control dependence, which
        carries no derivative."""
        ahead = self._reached([value], self.graph.forward, forward=True)
        return [
            inst
            for inst in self.info.function.instructions()
            if isinstance(inst, (CondBranchInst, SwitchEnumInst)) and inst.operands[0] in ahead
        ]

    @staticmethod
    def _reached(starts: list[Value], edges: dict[Value, list[Flow]], forward: bool) -> set[Value]:
        found = set(starts)
        work = list(starts)
        while work:
            for flow in edges.get(work.pop(), ()):
                nxt = flow.target if forward else flow.source
                if nxt not in found:
                    found.add(nxt)
                    work.append(nxt)
        return found


def parameter_index(value: Value) -> int | None:
    """The parameter ``value`` is, if it is one (an argument of its function's entry block)."""
    if not isinstance(value, BlockArgument) or value.block is None or value.block.function is None:
        return None
    fn = value.block.function
    return fn.blocks[0].args.index(value) if value.block is fn.blocks[0] else None


def value_span(value: Value) -> Span | None:
    """Where ``value`` is defined: its instruction, or its block's label."""
    if isinstance(value, Result):
        return value.owner.span if value.owner is not None else None
    if isinstance(value, BlockArgument) and value.block is not None:
        return value.block.span
    return None


def named_values(fn: Function) -> tuple[Printer, dict[str, Value]]:
    """A printer that has named ``fn``'s values as the canonical printer does, and the values by
    those names (``%x``, ``%3``): what a user reads in silopt's output and asks about."""
    printer = Printer()
    printer.print_function(fn)
    return printer, {name: v for v, name in printer.names.items()}


def instruction_text(printer: Printer, inst: Instruction) -> str:
    """The line the printer writes for ``inst`` (without its indentation)."""
    body = inst.format(printer)
    text = f"{inst.opname} {body}" if body else inst.opname
    results = inst.results
    if len(results) == 1:
        return f"{printer.value(results[0])} = {text}"
    if results:
        return f"({printer.value_list(results)}) = {text}"
    return text


def short_step(printer: Printer, flow: Flow) -> str:
    """One step of a chain in a few words: ``%y = fmul (line 5)``, ``%acc of bb1 (line 9)``."""
    inst = flow.through
    line = _line(inst.span)
    if inst.is_terminator:
        block = flow.target.block if isinstance(flow.target, BlockArgument) else None
        where = f" of {printer.block(block)}" if block is not None else ""
        return f"{printer.value(flow.target)}{where}{line}"
    what = inst.name if isinstance(inst, BuiltinInst) else inst.opname
    return f"{printer.value(flow.target)} = {what}{line}"


def short_chain(printer: Printer, chain: Chain) -> str:
    """A chain on one line, for a diagnostic's note."""
    parts = [printer.value(chain.start), *(short_step(printer, f) for f in chain.flows)]
    if chain.returned_by is not None:
        parts.append("return" + _line(chain.returned_by.span))
    return " -> ".join(parts)


def _line(span: Span | None) -> str:
    return "" if span is None else f" (line {span.source.line_col(span.start)[0]})"
