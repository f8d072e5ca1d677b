"""Defunctionalization: closures that cross function boundaries become the data they close over.

A closure made by ``partial_apply @p(bound…)`` and passed out of its function (returned, kept in a
struct or an enum payload, carried by a block argument or a parameter) is a value no transform can
see into: the pullback a VJP returns, the callee pullbacks its records keep. Differentiating code
that applies such closures (a gradient, to differentiate it again) needs what they close over as
values. Reynolds' defunctionalization gives that, here in its simplest form: where every closure
that can reach a place was made from the same function ``@p`` binding the same number of
arguments, the place holds the bound values instead (the closure's *context*: nothing for a
``function_ref``, the value itself for one bound value, a tuple for several), and ``apply %c(a…)``
of such a closure becomes ``apply @p(a…, context…)``.

Which closures reach which places comes from a flow analysis over the functions the roots reach,
field-based for structs and enums (one set of closures a field, whoever builds the struct), to a
fixed point. The rewrite then copies each function whose signature changes, and each struct and
enum that holds a closure, as ``…__defunc`` (a struct the differentiation synthesized, ``_AD__…``,
is copied as a ``Differentiable`` one, so that what it keeps carries derivatives); functions whose
signature stays are rewritten where they are. When any place can hold closures of two functions,
or one the analysis cannot see (a parameter of a root, a bundle's derivative, a closure passed to
a function without a body), nothing changes and ``defunctionalize`` says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import networkx as nx

from sil.builder import Builder
from sil.cfg import reverse_postorder
from sil.cloning import clone_instruction
from sil.instructions import (
    ApplyInst,
    BranchInst,
    CondBranchInst,
    DestructureStructInst,
    DestructureTupleInst,
    EnumInst,
    FunctionRefInst,
    PartialApplyInst,
    ReturnInst,
    StructExtractInst,
    StructInst,
    SwitchEnumInst,
    ThinToThickFunctionInst,
    TupleExtractInst,
    TupleInst,
)
from sil.ir import (
    Block,
    EnumCase,
    EnumDecl,
    FieldDecl,
    Function,
    Instruction,
    Module,
    Result,
    StructDecl,
    Value,
    release_instructions,
)
from sil.passes import Pass, PassContext, register_pass
from sil.references import reference_graph
from sil.transforms.dead_function_elim import SYNTHESIZED_PREFIX
from sil.types import FunctionType, NominalType, ScalarType, ShapeType, TupleType, Type

SUFFIX = "__defunc"


@attrs.frozen
class Maker:
    """How a closure was made: ``function`` with its last ``bound`` parameters bound."""

    function: str
    bound: int


Closures = frozenset[Maker]
Shape = Closures | tuple["Shape", ...] | None
"""What the analysis knows of a value: for a function value, the closures it may be; for a
tuple, its elements' shapes; None for anything else (a struct's or an enum's closures are its
type's, field by field)."""


class NotDefunctionalizable(Exception):
    """Why the closures of some functions cannot be replaced by their contexts."""


def _join(a: Shape, b: Shape) -> Shape:
    if isinstance(a, frozenset) and isinstance(b, frozenset):
        return a | b
    if isinstance(a, tuple) and isinstance(b, tuple):
        return tuple(_join(x, y) for x, y in zip(a, b, strict=True))
    return a if b is None else b


def _empty(t: Type) -> Shape:
    if isinstance(t, FunctionType):
        return frozenset()
    if isinstance(t, TupleType):
        return tuple(_empty(e) for e in t.elements)
    return None


class ClosureFlow:
    """Which closures each value, result, parameter, struct field and enum payload of
    ``functions`` may hold."""

    def __init__(self, module: Module, functions: Sequence[Function]) -> None:
        self.module = module
        self.functions = functions
        self.values: dict[Value, Shape] = {}
        self.fields: dict[tuple[str, int], Shape] = {}
        self.payloads: dict[tuple[str, str], Shape] = {}
        self.results: dict[str, Shape] = {fn.name: _empty(fn.type.result) for fn in functions}
        self._changed = True
        while self._changed:
            self._changed = False
            for fn in functions:
                for block in fn.blocks:
                    for inst in block.instructions:
                        self._flow(fn, inst)

    # --- the lattice ------------------------------------------------------------------------
    def shape(self, v: Value) -> Shape:
        return self.values.get(v, _empty(v.type))

    def _into(self, table: dict[Any, Shape], key: object, shape: Shape, t: Type) -> None:
        old = table.get(key, _empty(t))
        new = _join(old, shape)
        if new != old:
            table[key] = new
            self._changed = True

    def _set(self, v: Value, shape: Shape) -> None:
        self._into(self.values, v, shape, v.type)

    def field(self, struct: str, index: int) -> Shape:
        decl = self.module.struct(struct)
        assert decl is not None
        return self.fields.get((struct, index), _empty(decl.fields[index].type))

    def payload(self, enum: str, case: str) -> Shape:
        decl = self.module.enum(enum)
        assert decl is not None
        payload = decl.case(case)
        assert payload is not None and payload.payload is not None
        return self.payloads.get((enum, case), _empty(payload.payload))

    def callee(self, name: str) -> Function:
        fn = self.module.functions.get(name)
        if fn is None or fn.is_declaration:
            raise NotDefunctionalizable(f"a closure of @{name}, which has no body, is applied")
        return fn

    # --- transfer -----------------------------------------------------------------------------
    def _flow(self, fn: Function, inst: Instruction) -> None:  # noqa: C901 (one case a kind)
        ops = inst.operands
        if isinstance(inst, FunctionRefInst):
            self._set(inst.results[0], frozenset({Maker(inst.function_name, 0)}))
        elif isinstance(inst, ThinToThickFunctionInst):
            self._set(inst.results[0], self.shape(ops[0]))
        elif isinstance(inst, PartialApplyInst):
            self._partial_apply(inst)
        elif isinstance(inst, ApplyInst):
            self._apply(inst)
        elif isinstance(inst, TupleInst):
            self._set(inst.results[0], tuple(self.shape(op) for op in ops))
        elif isinstance(inst, TupleExtractInst | DestructureTupleInst):
            shape = self.shape(ops[0])
            assert isinstance(shape, tuple)
            picked = [shape[inst.index]] if isinstance(inst, TupleExtractInst) else list(shape)
            for result, element in zip(inst.results, picked, strict=True):
                self._set(result, element)
        elif isinstance(inst, StructInst):
            for i, op in enumerate(ops):
                self._into(self.fields, (inst.type.name, i), self.shape(op), op.type)
        elif isinstance(inst, StructExtractInst | DestructureStructInst):
            self._struct_projection(inst)
        elif isinstance(inst, EnumInst):
            if ops:
                self._into(self.payloads, (inst.type.name, inst.case), self.shape(ops[0]), ops[0].type)
        elif isinstance(inst, SwitchEnumInst):
            enum = ops[0].type
            assert isinstance(enum, NominalType)
            for case, dest in inst.cases:
                if dest.args:
                    self._set(dest.args[0], self.payload(enum.name, case))
        elif isinstance(inst, BranchInst | CondBranchInst):
            for dest, args in inst.successor_args():
                for param, arg in zip(dest.args, args, strict=True):
                    self._set(param, self.shape(arg))
        elif isinstance(inst, ReturnInst):
            self._into(self.results, fn.name, self.shape(ops[0]), fn.type.result)
        else:
            self._opaque(inst)

    def _opaque(self, inst: Instruction) -> None:
        for v in (*inst.operands, *inst.results):
            if self.holds_closures(v.type):
                raise NotDefunctionalizable(
                    f"'{inst.opname}' takes or makes a closure the analysis cannot follow"
                )

    def _struct_projection(self, inst: StructExtractInst | DestructureStructInst) -> None:
        t = inst.operands[0].type
        decl = self.module.struct(t.name) if isinstance(t, NominalType) else None
        assert decl is not None
        if isinstance(inst, StructExtractInst):
            index = next(i for i, f in enumerate(decl.fields) if f.name == inst.field)
            self._set(inst.results[0], self.field(decl.name, index))
            return
        for i, result in enumerate(inst.results):
            self._set(result, self.field(decl.name, i))

    def _makers(self, callee: Value) -> Closures:
        shape = self.shape(callee)
        assert isinstance(shape, frozenset)
        return shape

    def _partial_apply(self, inst: PartialApplyInst) -> None:
        bound = len(inst.args)
        made = set()
        for maker in self._makers(inst.callee):
            fn = self.callee(maker.function)
            first = len(fn.type.params) - maker.bound - bound
            for param, arg in zip(fn.entry.args[first:], inst.args, strict=False):
                self._set(param, self.shape(arg))
            made.add(Maker(maker.function, maker.bound + bound))
        self._set(inst.results[0], frozenset(made))

    def _apply(self, inst: ApplyInst) -> None:
        for maker in self._makers(inst.callee):
            fn = self.module.functions.get(maker.function)
            if fn is None or fn.is_declaration:
                if any(self.holds_closures(a.type) for a in inst.args) or self.holds_closures(
                    inst.result.type
                ):
                    self.callee(maker.function)
                continue
            for param, arg in zip(fn.entry.args, inst.args, strict=False):
                self._set(param, self.shape(arg))
            self._set(inst.result, self.results.get(fn.name, _empty(fn.type.result)))

    def holds_closures(self, t: Type, seen: frozenset[str] = frozenset()) -> bool:
        """Whether a value of type ``t`` may hold a closure, directly or in a field or payload."""
        if isinstance(t, FunctionType):
            return True
        if isinstance(t, TupleType):
            return any(self.holds_closures(e, seen) for e in t.elements)
        if isinstance(t, NominalType) and t.name not in seen:
            decl = self.module.lookup_type(t.name)
            inner = seen | {t.name}
            if isinstance(decl, StructDecl):
                return any(self.holds_closures(f.type, inner) for f in decl.fields)
            if isinstance(decl, EnumDecl):
                return any(
                    c.payload is not None and self.holds_closures(c.payload, inner) for c in decl.cases
                )
        return False


def reached_functions(module: Module, roots: Iterable[Function]) -> list[Function]:
    """``roots`` and the functions with bodies they reach by ``function_ref``, in module order."""
    graph = reference_graph(module, derivatives=False)
    seen = {fn.name for fn in roots}
    seen |= set().union(*(nx.descendants(graph, name) for name in seen))
    return [fn for fn in module.functions.values() if fn.name in seen and not fn.is_declaration]


def _values(fn: Function) -> Iterable[Value]:
    for block in fn.blocks:
        yield from block.args
        for inst in block.instructions:
            yield from inst.results


def _nominal_names(t: Type) -> set[str]:
    if isinstance(t, NominalType):
        return {t.name}
    if isinstance(t, TupleType):
        return set().union(*(_nominal_names(e) for e in t.elements))
    if isinstance(t, FunctionType):
        return set().union(_nominal_names(t.result), *(_nominal_names(p) for p in t.params))
    return set()


def _decl_types(decl: object) -> list[Type]:
    if isinstance(decl, StructDecl):
        return [f.type for f in decl.fields]
    if isinstance(decl, EnumDecl):
        return [c.payload for c in decl.cases if c.payload is not None]
    return []


def _plain(t: Type) -> bool:
    """A type that carries no derivative, plainly: an integer, a flag, a shape."""
    if isinstance(t, ScalarType):
        return not t.is_float
    if isinstance(t, TupleType):
        return bool(t.elements) and all(_plain(e) for e in t.elements)
    return isinstance(t, ShapeType)


def _synthesized(name: str) -> bool:
    return name.startswith("_" + SYNTHESIZED_PREFIX)


class Plan:
    """What the rewrite gives each closure place (its context type) and each struct and enum:
    a copy (``…__defunc``) for one that holds a closure or a copied type, and for a synthesized
    one (a differentiation record, trace or path), whose copy is ``Differentiable`` when each of
    its fields carries a derivative or plainly cannot."""

    def __init__(self, flow: ClosureFlow) -> None:
        self.flow = flow
        self.module = flow.module
        self._contexts: dict[Maker, Type] = {}
        self.copies = self._copied_types()

    def maker(self, shape: Shape, where: str) -> Maker:
        assert isinstance(shape, frozenset)
        if len(shape) != 1:
            made = ", ".join(sorted(f"@{m.function}" for m in shape)) or "none the analysis sees"
            raise NotDefunctionalizable(f"{where} may hold closures of other than one function ({made})")
        return next(iter(shape))

    def type(self, t: Type, shape: Shape, where: str) -> Type:
        """``t`` as the rewrite has it, for a value of shape ``shape``."""
        if isinstance(t, FunctionType):
            return self.context_type(self.maker(shape, where))
        if isinstance(t, TupleType):
            assert isinstance(shape, tuple)
            elements = tuple(self.type(e, s, where) for e, s in zip(t.elements, shape, strict=True))
            return TupleType(elements, t.labels)
        return self.renamed(t)

    def renamed(self, t: Type) -> Type:
        """``t`` with the copied structs and enums in place of their originals."""
        if isinstance(t, NominalType):
            return NominalType(self.copies.get(t.name, t.name))
        if isinstance(t, TupleType):
            return TupleType(tuple(self.renamed(e) for e in t.elements), t.labels)
        if isinstance(t, FunctionType):
            return attrs.evolve(
                t, params=tuple(self.renamed(p) for p in t.params), result=self.renamed(t.result)
            )
        return t

    def context_type(self, maker: Maker) -> Type:
        """What a closure made by ``maker`` becomes: its bound values, one alone or a tuple."""
        found = self._contexts.get(maker)
        if found is None:
            params = self.params(self.flow.callee(maker.function))
            bound = params[len(params) - maker.bound :]
            found = bound[0] if len(bound) == 1 else TupleType(tuple(bound))
            self._contexts[maker] = found
        return found

    def params(self, fn: Function) -> tuple[Type, ...]:
        return tuple(
            self.type(a.type, self.flow.shape(a), f"parameter {i} of @{fn.name}")
            for i, a in enumerate(fn.entry.args)
        )

    def signature(self, fn: Function) -> FunctionType:
        result = self.type(fn.type.result, self.flow.results[fn.name], f"the result of @{fn.name}")
        return attrs.evolve(fn.type, params=self.params(fn), result=result)

    def _copied_types(self) -> dict[str, str]:
        used: set[str] = set()
        work = [name for fn in self.flow.functions for v in _values(fn) for name in _nominal_names(v.type)]
        while work:
            name = work.pop()
            if name not in used and self.module.lookup_type(name) is not None:
                used.add(name)
                work.extend(n for t in _decl_types(self.module.lookup_type(name)) for n in _nominal_names(t))
        copied = {n for n in used if _synthesized(n) or self.flow.holds_closures(NominalType(n))}
        grew = True
        while grew:
            more = {
                n
                for n in used - copied
                if any(_nominal_names(t) & copied for t in _decl_types(self.module.lookup_type(n)))
            }
            copied |= more
            grew = bool(more)
        return {n: n + SUFFIX for n in sorted(copied)}

    def declarations(self) -> dict[str, StructDecl | EnumDecl]:
        """The copies of the structs and enums, by name (those a run before made are reused)."""
        made: dict[str, StructDecl | EnumDecl] = {}
        for name, copy in self.copies.items():
            decl = self.module.lookup_type(name)
            existing = self.module.lookup_type(copy)
            if isinstance(existing, StructDecl | EnumDecl):
                made[copy] = existing
            elif isinstance(decl, StructDecl):
                fields = [
                    FieldDecl(
                        f.name,
                        self.type(f.type, self.flow.field(name, i), f"field '{f.name}' of '{name}'"),
                        f.no_derivative,
                    )
                    for i, f in enumerate(decl.fields)
                ]
                made[copy] = StructDecl(copy, fields, decl.differentiable or _synthesized(name))
            elif isinstance(decl, EnumDecl):
                cases = [
                    EnumCase(c.name, None if c.payload is None else self._payload(name, c.name, c.payload))
                    for c in decl.cases
                ]
                made[copy] = EnumDecl(copy, cases, differentiable=_synthesized(name))
        return made

    def declare(self, made: dict[str, StructDecl | EnumDecl]) -> str | None:
        """Add the copies to the module, and settle which synthesized ones are differentiable;
        why one is not, if one is not."""
        new = [decl for name, decl in made.items() if name not in self.module.types]
        for decl in new:
            self.module.add_type(decl)
        self._settle_differentiability(new)
        for decl in made.values():
            if isinstance(decl, StructDecl) and not decl.differentiable and _synthesized(decl.name):
                kept = next(
                    f for f in decl.fields if self.module.tangent_type(f.type) is None and not _plain(f.type)
                )
                return (
                    f"the record '{decl.name.removesuffix(SUFFIX)}' keeps '{kept.name}' of type "
                    f"{str(kept.type).removesuffix(SUFFIX)}, which carries no derivative"
                )
        return None

    def _payload(self, enum: str, case: str, t: Type) -> Type:
        return self.type(t, self.flow.payload(enum, case), f"case '{case}' of '{enum}'")

    def _settle_differentiability(self, made: list[StructDecl | EnumDecl]) -> None:
        """A synthesized copy stays ``Differentiable`` while each field (payload) carries a
        derivative or plainly cannot (then ``@noDerivative``; an enum's case then has no payload
        in its tangent); one with another field is not, nor what holds it."""
        synthesized = [d for d in made if d.differentiable and _synthesized(d.name[: -len(SUFFIX)])]
        changed = True
        while changed:
            changed = False
            for decl in synthesized:
                if decl.differentiable and any(
                    self.module.tangent_type(t) is None and not _plain(t) for t in _decl_types(decl)
                ):
                    decl.differentiable = False
                    changed = True
        for decl in synthesized:
            if decl.differentiable and isinstance(decl, StructDecl):
                decl.fields = [
                    attrs.evolve(f, no_derivative=f.no_derivative or _plain(f.type)) for f in decl.fields
                ]


def _move_blocks(source: Function, into: Function) -> None:
    into.blocks = source.blocks
    for block in into.blocks:
        block.function = into


@attrs.define
class Defunctionalized:
    """What ``defunctionalize`` changed: the functions and types it added, and the functions it
    rewrote with their former blocks (kept whole, so that ``revert`` can put them back)."""

    module: Module
    functions: list[str] = attrs.field(factory=list)
    types: list[str] = attrs.field(factory=list)
    bodies: list[tuple[Function, list[Block]]] = attrs.field(factory=list)

    @property
    def changed(self) -> list[str]:
        return [fn.name for fn, _ in self.bodies] + self.functions

    def revert(self) -> None:
        for fn, blocks in self.bodies:
            _move_blocks(Function(fn.name, fn.type, blocks=blocks), fn)  # the rewritten ones dropped
        for name in self.functions:
            del self.module.functions[name]
        for name in self.types:
            del self.module.types[name]
        self.functions, self.types, self.bodies = [], [], []

    def commit(self) -> None:
        """Release what the former bodies used: they are gone for good."""
        for _, blocks in self.bodies:
            release_instructions([inst for block in blocks for inst in block.instructions])
        self.bodies = []


@attrs.define
class Context:
    """A closure as the rewrite has it: what made it, and its bound values, either as the values
    themselves (``parts``, where the closure was made in this function) or ``packed`` into one
    value of its context type (where it arrived as data)."""

    maker: Maker
    parts: list[Value] | None = None
    packed: Value | None = None


class Rewriter:
    """Rewrites ``flow``'s functions by ``plan``: a copy for each whose signature changes, the
    function itself for each that applies or passes closures, the rest left as they are."""

    def __init__(self, flow: ClosureFlow, plan: Plan, differentiable_records: bool) -> None:
        self.flow, self.plan, self.module = flow, plan, flow.module
        self.differentiable_records = differentiable_records
        self.signatures = {fn.name: plan.signature(fn) for fn in flow.functions}
        self.declarations = plan.declarations()
        self.targets: dict[str, str] = {}
        for fn in flow.functions:
            if self.signatures[fn.name] != fn.type:
                base = fn.name if fn.name.startswith(SYNTHESIZED_PREFIX) else SYNTHESIZED_PREFIX + fn.name
                self.targets[fn.name] = base + SUFFIX

    def needs_rewrite(self, fn: Function) -> bool:
        """Whether ``fn`` changes: its signature does, or it passes a closure on or applies one it
        did not make by ``function_ref``, or it names a function or a type that is copied."""
        if fn.name in self.targets:
            return True
        for v in _values(fn):
            if not isinstance(v.type, FunctionType):
                if self.plan.renamed(v.type) != v.type:
                    return True
                continue
            owner = v.owner if isinstance(v, Result) else None
            if not isinstance(owner, FunctionRefInst) or owner.function_name in self.targets:
                return True
            if any(not (isinstance(u, ApplyInst) and u.callee is v) for u in v.uses):
                return True
        return False

    def run(self) -> Defunctionalized:
        """Rewrite, keeping what undoes it."""
        todo = [fn for fn in self.flow.functions if self.needs_rewrite(fn)]
        bodies = {fn.name: self._body(fn) for fn in todo}  # all planned before any changes
        done = Defunctionalized(self.module)
        done.types = [name for name in self.declarations if name not in self.module.types]
        undifferentiable = self.plan.declare(self.declarations)
        if undifferentiable is not None and self.differentiable_records:
            done.revert()
            raise NotDefunctionalizable(undifferentiable)
        for fn in todo:
            body = bodies[fn.name]
            target = self.targets.get(fn.name)
            if target is None:
                done.bodies.append((fn, fn.blocks))
                _move_blocks(body, fn)
            elif target not in self.module.functions:
                body.name = target
                self.module.add_function(body)
                done.functions.append(target)
        return done

    # --- one function -------------------------------------------------------------------------
    def _body(self, fn: Function) -> Function:
        into = Function(fn.name, self.signatures[fn.name], span=fn.span, source=fn.source)
        reached = reverse_postorder(fn)
        order = {block: i for i, block in enumerate(fn.blocks)}
        blocks: dict[Block, Block] = {}
        self._values: dict[Value, Value] = {}
        self._closures: dict[Value, Context] = {}
        for block in sorted(reached, key=order.__getitem__):
            copy = blocks[block] = into.add_block(block.name)
            copy.span = block.span
            for arg in block.args:
                t = self.plan.type(
                    arg.type, self.flow.shape(arg), f"an argument of {block.name} in @{fn.name}"
                )
                self._arrived(arg, copy.add_argument(t, arg.name))
        for block in reached:
            b = Builder.at_end(blocks[block], self.module)
            for inst in block.instructions:
                self._rewrite(b, inst, blocks)
        return into

    def _arrived(self, old: Value, new: Value) -> None:
        """``new`` stands for ``old``: a closure arriving as its packed context, or a value."""
        if isinstance(old.type, FunctionType):
            self._closures[old] = Context(self.plan.maker(self.flow.shape(old), "a closure"), packed=new)
        else:
            self._values[old] = new

    def _operand(self, b: Builder, v: Value) -> Value:
        closure = self._closures.get(v)
        if closure is None:
            return self._values[v]
        if closure.packed is not None:
            return closure.packed
        parts = closure.parts or []
        return parts[0] if len(parts) == 1 else b.tuple(*parts)

    def _parts(self, b: Builder, closure: Context) -> list[Value]:
        if closure.parts is not None:
            return closure.parts
        assert closure.packed is not None
        if closure.maker.bound == 1:
            return [closure.packed]
        return list(b.destructure_tuple(closure.packed)) if closure.maker.bound else []

    def _rewrite(self, b: Builder, inst: Instruction, blocks: dict[Block, Block]) -> None:
        if isinstance(inst, FunctionRefInst):
            self._closures[inst.results[0]] = Context(Maker(inst.function_name, 0), parts=[])
        elif isinstance(inst, ThinToThickFunctionInst):
            self._closures[inst.results[0]] = self._closures[inst.operands[0]]
        elif isinstance(inst, PartialApplyInst):
            made = self._closures[inst.callee]
            bound = [self._operand(b, a) for a in inst.args]
            maker = Maker(made.maker.function, made.maker.bound + len(bound))
            self._closures[inst.results[0]] = Context(maker, parts=[*bound, *self._parts(b, made)])
        elif isinstance(inst, ApplyInst):
            made = self._closures[inst.callee]
            args = [self._operand(b, a) for a in inst.args]
            name = made.maker.function
            callee = self.module.functions[name]
            signature = self.signatures.get(name, callee.type)
            ref = b.insert(
                FunctionRefInst([], self.targets.get(name, name), attrs.evolve(signature, convention="thin"))
            )
            result = b.apply(ref.results[0], *args, *self._parts(b, made))
            result.name = inst.result.name
            self._arrived(inst.result, result)
        else:
            operands = [self._operand(b, op) for op in inst.operands]
            copy = b.insert(self._retyped(inst, operands, blocks))
            for old, new in zip(inst.results, copy.results, strict=True):
                new.name = old.name
                self._arrived(old, new)

    def _retyped(self, inst: Instruction, operands: list[Value], blocks: dict[Block, Block]) -> Instruction:
        """A copy of ``inst`` on ``operands``, with the copied structs and enums in the types it
        names (a field's type as the struct's copy has it)."""
        types: dict[str, object] = {}
        if isinstance(inst, StructExtractInst | DestructureStructInst):
            t = operands[0].type
            assert isinstance(t, NominalType)
            decl = self.declarations.get(t.name) or self.module.struct(t.name)
            assert isinstance(decl, StructDecl)
            if isinstance(inst, StructExtractInst):
                field = decl.field(inst.field)
                assert field is not None
                types["type"] = field.type
            else:
                types["types"] = tuple(f.type for f in decl.fields)
        else:
            for field in attrs.fields(type(inst)):
                value = getattr(inst, field.name)
                if field.init and isinstance(value, Type):
                    types[field.name] = self.plan.renamed(value)
        return clone_instruction(inst, dict(zip(inst.operands, operands, strict=True)), blocks, types)


def defunctionalize(
    module: Module, roots: Sequence[Function], differentiable_records: bool = False
) -> Defunctionalized:
    """Replace the closures ``roots`` and the functions they reach pass around by their
    contexts; what changed, to commit or revert. Raises ``NotDefunctionalizable``, changing
    nothing, when some closure cannot be, or (``differentiable_records``, for differentiation)
    when a synthesized record's copy cannot be ``Differentiable``: what it keeps would then carry
    no derivative, silently."""
    flow = ClosureFlow(module, reached_functions(module, roots))
    for fn in roots:
        if any(flow.holds_closures(t) for t in (*fn.type.params, fn.type.result)):
            raise NotDefunctionalizable(f"@{fn.name} takes or returns a closure")
    return Rewriter(flow, Plan(flow), differentiable_records).run()


@register_pass
class Defunctionalize(Pass):
    """Closures passed between functions become the values they close over."""

    name = "defunctionalize"
    description = (
        "Replace closures that cross function boundaries (returned, kept in records) by the values "
        "they bind, and their applies by direct calls, where each has one known function"
    )

    def run(self, module: Module, ctx: PassContext) -> None:
        for root in [fn for fn in module.functions.values() if not fn.is_declaration and _applies_data(fn)]:
            try:
                defunctionalize(module, [root]).commit()
            except NotDefunctionalizable:
                continue  # left as it is: a closure of it cannot be


def _applies_data(fn: Function) -> bool:
    """Whether ``fn`` applies a closure it did not make itself."""
    for inst in fn.instructions():
        if isinstance(inst, ApplyInst):
            callee = inst.callee
            while isinstance(
                owner := getattr(callee, "owner", None), PartialApplyInst | ThinToThickFunctionInst
            ):
                callee = owner.operands[0]
            if not isinstance(getattr(callee, "owner", None), FunctionRefInst):
                return True
    return False
