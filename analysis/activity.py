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
    """The activity of every value of ``fn`` (which has a body) for ``config``."""
    info = ActivityInfo(fn, config, set(), set(), module)
    entry = fn.blocks[0]
    for i in config.wrt:
        if i < len(entry.args) and not fn.type.no_derivative[i]:
            info.varied.add(entry.args[i])
    _propagate_varied(module, fn, info.varied)
    _seed_useful(fn, config, info.useful)
    _propagate_useful(module, fn, info.useful)
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


def _propagate_varied(module: Module, fn: Function, varied: set[Value]) -> None:
    changed = True
    while changed:  # to a fixed point: loops carry values around back edges
        changed = False
        for block in fn.blocks:
            for inst in block.instructions:
                if inst.is_terminator:
                    for src, arg in _successor_flows(inst):
                        if src in varied and arg not in varied:
                            varied.add(arg)
                            changed = True
                    continue
                if not any(op in varied for op in inst.operands):
                    continue
                blocked = _no_derivative_results(module, inst)
                for r in inst.results:
                    if r not in varied and r not in blocked:
                        varied.add(r)
                        changed = True


def _seed_useful(fn: Function, config: Config, useful: set[Value]) -> None:
    """The returned value (or, for a tuple of several results built where it is returned, the
    elements ``sources``) is useful."""
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
            useful.update(value.owner.operands[i] for i in config.sources)
        else:
            useful.add(value)


def _propagate_useful(module: Module, fn: Function, useful: set[Value]) -> None:
    changed = True
    while changed:
        changed = False
        for block in reversed(fn.blocks):
            for inst in reversed(block.instructions):
                if inst.is_terminator:
                    for src, arg in _successor_flows(inst):
                        if arg in useful and src not in useful:
                            useful.add(src)
                            changed = True
                    continue
                blocked = _no_derivative_results(module, inst)
                if not any(r in useful and r not in blocked for r in inst.results):
                    continue
                for op in inst.operands:
                    if op not in useful:
                        useful.add(op)
                        changed = True


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
