"""Activity analysis: which values of a function a derivative must carry (after Swift's
DifferentiableActivityAnalysis).

For a function, the parameters differentiated with respect to (``wrt``) and some of its results
(``sources``; a function returning a tuple has one result per element, SIL-SPEC §3):
- a value is **varied** when it depends on a ``wrt`` parameter,
- **useful** when a ``sources`` result depends on it,
- **active** when both, and its type has a tangent.

Dependence is data flow through every instruction and block argument (tuples, structs, enums,
applies, closures), so that a varied value reaching the result through, say, an ``Int`` is seen,
and the differentiation diagnostics can reject it. Two things stop it: a ``@noDerivative`` struct
field (extracting one gives an inactive value) and a ``@noDerivative`` parameter. Control
dependence (a ``cond_br`` on a varied condition) does not make values varied, as in Swift.

``ActivityCache`` keeps each function's activity per configuration, so that the checks before
differentiation and the emitters after compute it once (the differentiation context owns one).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator

import attrs

from sil.builtins import BUILTINS
from sil.derivative_types import DerivativeTypeError, resolve_sources, resolve_wrt, several_results
from sil.instructions import (
    BuiltinInst,
    DestructureStructInst,
    DestructureTupleInst,
    DifferentiableFunctionInst,
    FunctionRefInst,
    GradientInst,
    ReturnInst,
    StructExtractInst,
    SwitchEnumInst,
    TupleExtractInst,
    TupleInst,
)
from sil.ir import (
    DifferentiableAttr,
    Function,
    Instruction,
    LegacyDifferentiableAttr,
    Module,
    Result,
    Value,
)
from sil.types import Type


class Activity(enum.Enum):
    """The label of a value, as ``silopt -print-activity`` prints it."""

    ACTIVE = "ACTIVE"
    VARIED = "VARIED"
    USEFUL = "USEFUL"
    NONE = "NONE"


def _as_sources(sources: int | tuple[int, ...]) -> tuple[int, ...]:
    return (sources,) if isinstance(sources, int) else sources


@attrs.frozen
class Config:
    """What is differentiated: the results ``sources`` (increasing; one index may be given as an
    int) with respect to parameters ``wrt``."""

    sources: tuple[int, ...] = attrs.field(converter=_as_sources)
    wrt: tuple[int, ...]

    def describe(self) -> str:
        return f"source {', '.join(map(str, self.sources))} wrt {', '.join(map(str, self.wrt))}"


@attrs.define
class ActivityInfo:
    """The varied and useful values of one function for one configuration."""

    function: Function
    config: Config
    varied: set[Value]
    useful: set[Value]
    module: Module
    # Whether each type met has a tangent (asked for every value; types recur).
    _differentiable: dict[Type, bool] = attrs.field(factory=dict, init=False)

    def activity(self, v: Value) -> Activity:
        differentiable = self._differentiable.get(v.type)
        if differentiable is None:
            differentiable = self._differentiable[v.type] = self.module.tangent_type(v.type) is not None
        if not differentiable:
            return Activity.NONE
        varied, useful = v in self.varied, v in self.useful
        if varied and useful:
            return Activity.ACTIVE
        if varied:
            return Activity.VARIED
        return Activity.USEFUL if useful else Activity.NONE

    def is_active(self, v: Value) -> bool:
        return self.activity(v) is Activity.ACTIVE

    def active_elements(self, v: Value) -> tuple[int, ...]:
        """The results of a call (``v``, its result) whose derivatives are needed, after Swift's
        ``collectMinimalIndicesForFunctionCall``: with several results, those a ``tuple_extract``
        or ``destructure_tuple`` takes out active, and the function's own ``sources`` where it
        returns ``v`` as it is; every one of differentiable type where ``v`` is used whole."""
        if not self.is_active(v):
            return ()
        t = v.type
        if not several_results(t):
            return (0,)
        found: set[int] = set()
        for user in v.uses:
            if isinstance(user, TupleExtractInst):
                found.update([user.index] if self.is_active(user.result) else [])
            elif isinstance(user, DestructureTupleInst):
                found.update(i for i, r in enumerate(user.results) if self.is_active(r))
            elif isinstance(user, ReturnInst):
                found.update(self.config.sources)
            else:
                return tuple(i for i, e in enumerate(t.elements) if self.module.tangent_type(e) is not None)
        return tuple(sorted(found))

    def values(self) -> Iterator[Value]:
        """Every value the function defines, in order."""
        for block in self.function.blocks:
            yield from block.args
            for inst in block.instructions:
                yield from inst.results


def analyze_activity(module: Module, fn: Function, config: Config) -> ActivityInfo:
    """The activity of every value of ``fn`` (which has a body) for ``config``: the values its
    ``flow_graph`` reaches from the ``wrt`` parameters (varied) and reaches the results from
    (useful)."""
    info = ActivityInfo(fn, config, set(), set(), module)
    graph = flow_graph(module, fn)
    info.varied.update(varied_seeds(fn, config))
    _reach(info.varied, graph.forward, forward=True)
    info.useful.update(useful_seeds(fn, config))
    _reach(info.useful, graph.backward, forward=False)
    return info


class ActivityCache:
    """The activity of each function and configuration asked for, computed once: the checks before
    differentiation and the emitters after ask for the same ones. Valid while the functions'
    bodies do not change (a pass that rewrites them takes a new cache)."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self._found: dict[tuple[str, Config], ActivityInfo] = {}

    def __call__(self, fn: Function, config: Config) -> ActivityInfo:
        key = (fn.name, config)
        info = self._found.get(key)
        if info is None or info.function is not fn:
            info = self._found[key] = analyze_activity(self.module, fn, config)
        return info


def _no_derivative_results(module: Module, inst: Instruction) -> set[Value]:
    """Results that carry no derivative whatever the operands: ``@noDerivative`` fields, and the
    results of builtins of derivative zero (``no_derivative``, ``step``, ``shape``, …)."""
    if isinstance(inst, BuiltinInst):
        return {inst.result} if BUILTINS[inst.name].zero_derivative else set()
    if isinstance(inst, StructExtractInst):
        decl = module.struct(str(inst.operands[0].type))
        field = decl.field(inst.field) if decl is not None else None
        return {inst.result} if field is not None and field.no_derivative else set()
    if isinstance(inst, DestructureStructInst):
        decl = module.struct(str(inst.operands[0].type))
        if decl is None:
            return set()
        return {r for r, f in zip(inst.results, decl.fields) if f.no_derivative}
    return set()


def _successor_flows(inst: Instruction) -> list[tuple[Value, Value]]:
    """(operand, block argument) pairs that a terminator passes along its edges."""
    if isinstance(inst, SwitchEnumInst):
        e = inst.operands[0]
        return [(e, dest.args[0]) for _, dest in inst.cases if dest.args]
    return [(v, arg) for dest, values in inst.successor_args() for v, arg in zip(values, dest.args)]


@attrs.frozen
class Flow:
    """One edge of a function's data flow: ``through`` makes (or, a terminator, passes) ``target``
    from ``source``. A ``blocked`` flow carries no derivative (a ``@noDerivative`` field, a builtin
    of derivative zero): activity does not cross it, and ``--explain-activity`` shows where it
    stops a chain."""

    source: Value
    target: Value
    through: Instruction
    blocked: bool = False


@attrs.frozen
class FlowGraph:
    """The flows of a function, from each value (``forward``) and into each value (``backward``),
    in instruction order; the blocked ones apart."""

    forward: dict[Value, list[Flow]]
    backward: dict[Value, list[Flow]]
    blocked: list[Flow]


def flow_graph(module: Module, fn: Function) -> FlowGraph:
    """Every flow of ``fn``: from each operand of an instruction to each of its results, and from
    each value a terminator passes to the block argument that receives it. Varied is what the
    ``wrt`` parameters reach forward, useful what reaches the results."""
    graph = FlowGraph({}, {}, [])
    for block in fn.blocks:
        for inst in block.instructions:
            if inst.is_terminator:
                for src, arg in _successor_flows(inst):
                    _add_flow(graph, Flow(src, arg, inst))
                continue
            blocked = _no_derivative_results(module, inst)
            for op in inst.operands:
                for r in inst.results:
                    _add_flow(graph, Flow(op, r, inst, r in blocked))
    return graph


def _add_flow(graph: FlowGraph, flow: Flow) -> None:
    if flow.blocked:
        graph.blocked.append(flow)
        return
    graph.forward.setdefault(flow.source, []).append(flow)
    graph.backward.setdefault(flow.target, []).append(flow)


def _reach(found: set[Value], edges: dict[Value, list[Flow]], forward: bool) -> None:
    """Add to ``found`` every value its members reach over ``edges``: to the flows' targets
    (``forward``), else to their sources."""
    work = list(found)
    while work:
        for flow in edges.get(work.pop(), ()):
            nxt = flow.target if forward else flow.source
            if nxt not in found:
                found.add(nxt)
                work.append(nxt)


def varied_seeds(fn: Function, config: Config) -> list[Value]:
    """The parameters ``wrt`` names, less the ``@noDerivative`` ones."""
    entry = fn.blocks[0]
    return [entry.args[i] for i in config.wrt if i < len(entry.args) and not fn.type.no_derivative[i]]


def useful_seeds(fn: Function, config: Config) -> list[Value]:
    """The returned values (or, for a tuple of several results built where it is returned, its
    elements ``sources``)."""
    seeds: list[Value] = []
    for block in fn.blocks:
        term = block.terminator
        if not isinstance(term, ReturnInst):
            continue
        value = term.operands[0]
        if (
            several_results(fn.type.result)
            and isinstance(value, Result)
            and isinstance(value.owner, TupleInst)
            and value.owner.block is block
        ):
            seeds.extend(value.owner.operands[i] for i in config.sources)
        else:
            seeds.append(value)
    return seeds


def differentiation_requests(module: Module) -> dict[str, list[Config]]:
    """Every function something asks to differentiate, with each configuration asked for:
    ``[differentiable]`` and legacy attributes, and ``differentiable_function`` and ``gradient``
    of a ``function_ref``. Requests the verifier would reject are left out."""
    requests: dict[str, list[Config]] = {}

    def add(name: str, sources: tuple[int, ...] | None, wrt: tuple[int, ...] | None) -> None:
        fn = module.functions.get(name)
        if fn is None or fn.is_declaration:
            return
        try:
            config = Config(resolve_sources(module, fn.type, sources), resolve_wrt(module, fn.type, wrt))
        except DerivativeTypeError:
            return
        configs = requests.setdefault(name, [])
        if config not in configs:
            configs.append(config)

    for fn in module.functions.values():
        for attr in fn.attributes:
            if isinstance(attr, DifferentiableAttr):
                add(fn.name, attr.source, attr.wrt)
            elif isinstance(attr, LegacyDifferentiableAttr):
                add(fn.name, (attr.source,), attr.wrt)
    for fn in module.functions.values():
        for inst in fn.instructions():
            original = inst.operands[0] if inst.operands else None
            if not isinstance(original, Result) or not isinstance(original.owner, FunctionRefInst):
                continue
            if isinstance(inst, DifferentiableFunctionInst):  # of every differentiable result
                add(original.owner.function_name, None, inst.parameters)
            elif isinstance(inst, GradientInst):
                add(original.owner.function_name, (inst.source,), inst.wrt)
    return requests
