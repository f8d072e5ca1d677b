"""What the VJP and the JVP have in common: they compute the original and keep, in a checkpoints
record, what their linear map (the pullback or the differential) needs.

``DerivativeEmitter`` emits that primal side once for both modes: it clones the original, saves
what each active builtin's rule asks for, turns each active call into a call of the callee's
derivative of the same mode (whose linear map it keeps), and returns the original result with
``partial_apply [callee_guaranteed]`` of the linear-map function to the record. A subclass says
which mode (the names, the types, the callee's derivative) and emits the linear map's body.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

import attrs

from analysis.activity import Config, analyze_activity
from differentiation.diagnostics import resolve_callee
from differentiation.rules import RULES
from sil.builder import Builder
from sil.cloning import clone_instruction
from sil.diagnostics import SILError
from sil.instructions import ApplyInst, BuiltinInst, DestructureStructInst, ReturnInst, StructInst
from sil.ir import FieldDecl, Function, Instruction, Result, StructDecl, Value
from sil.transforms.dce import eliminate_dead_code
from sil.types import FunctionType, TupleType

if TYPE_CHECKING:
    from differentiation.differentiator import Differentiator


@attrs.frozen
class Checkpoint:
    """A field of the checkpoints record: its name, and the primal value stored in it."""

    name: str
    value: Value


class DerivativeEmitter(abc.ABC):
    """Emits a derivative (VJP or JVP) of one function for one configuration, and its linear map."""

    # Set by subclasses: what the callee-derivative fields are called (``pullback_0``…).
    linear_map_kind = ""

    def __init__(self, differentiator: Differentiator, fn: Function, config: Config) -> None:
        self.differentiator = differentiator
        self.module = differentiator.module
        self.fn = fn
        self.config = config
        self.info = analyze_activity(self.module, fn, config)
        self.checkpoints: list[Checkpoint] = []
        self.saved: dict[Instruction, list[int]] = {}  # checkpoint indices, per original instruction
        # For each active call: the arguments, as the callee's parameters, and those its linear
        # map takes or gives tangents for.
        self.calls: dict[Instruction, tuple[tuple[Value, ...], tuple[int, ...]]] = {}
        self._counts = {"partial": 0, self.linear_map_kind: 0}
        self._kept: dict[Value, int] = {}  # checkpoint index of each value kept
        self._field_names: set[str] = set()
        self._references: dict[str, Value] = {}  # function_refs made in the derivative, by name

    # --- what a mode says ----------------------------------------------------------------------
    @abc.abstractmethod
    def derivative_type(self) -> FunctionType:
        """The VJP's or JVP's type (SIL-SPEC §6)."""

    @abc.abstractmethod
    def names(self, record: str) -> tuple[str, str, str]:
        """The derivative's, the linear map's and the record's names."""

    @abc.abstractmethod
    def linear_map_type(self, closure: FunctionType, record: StructDecl) -> FunctionType:
        """The linear-map function's type: the closure's parameters plus the record, where the
        record goes last (bound by partial application)."""

    @abc.abstractmethod
    def callee_derivative(self, callee: Function, wrt: tuple[int, ...]) -> tuple[Function, tuple[int, ...]]:
        """The derivative of this mode a call of ``callee`` uses, and the parameters its linear map
        covers (see ``Differentiator.vjp_for_call``)."""

    @abc.abstractmethod
    def emit_linear_map(self, ret: ReturnInst) -> None:
        """The body of the pullback or the differential."""

    # --- the shared part -----------------------------------------------------------------------
    def declare(self) -> Function:
        """Add the derivative, the linear map and the record to the module, without bodies yet (so
        that a recursive call can refer to the derivative being emitted)."""
        module, fn = self.module, self.fn
        derivative_t = self.derivative_type()
        assert isinstance(derivative_t.result, TupleType)
        closure = derivative_t.result.elements[1]
        assert isinstance(closure, FunctionType)
        derivative_name, linear_map_name, record_name = self.names(fn.blocks[0].name or "bb0")
        self.record = StructDecl(record_name)
        self.derivative = Function(derivative_name, derivative_t)
        self.linear_map = Function(linear_map_name, self.linear_map_type(closure, self.record))
        for new in (self.derivative, self.linear_map):
            if new.name in module.functions:
                raise SILError.at(fn.span, f"cannot synthesize '@{new.name}': the name is taken")
            self.differentiator.add_function(new)
        self.differentiator.add_type(self.record)
        return self.derivative

    def emit_bodies(self) -> None:
        """The derivative's body, then the linear map's."""
        entry = self.fn.blocks[0]
        block = self.derivative.add_block("bb0")
        values: dict[Value, Value] = {a: block.add_argument(a.type, a.name) for a in entry.args}
        b = Builder.at_end(block, self.module)
        ret: ReturnInst | None = None
        for inst in entry.instructions:
            if isinstance(inst, ReturnInst):
                ret = inst
                break
            if isinstance(inst, ApplyInst) and self.active(inst):
                self._call_derivative(b, inst, values)
                continue
            copy = b.insert(clone_instruction(inst, values))
            for old, new in zip(inst.results, copy.results):
                values[old] = new
                new.name = old.name
            if isinstance(inst, BuiltinInst) and self.active(inst):
                self._save(b, inst, copy)
        assert ret is not None, "the diagnostics admit only single-block functions"
        self.record.fields = [FieldDecl(cp.name, cp.value.type) for cp in self.checkpoints]
        saved = b.struct(self.record.type, *[cp.value for cp in self.checkpoints])
        closure = b.partial_apply(b.function_ref(self.linear_map), saved)
        b.return_(b.tuple(values[ret.operands[0]], closure))
        self.emit_linear_map(ret)
        self._keep_only_what_is_read(saved)
        eliminate_dead_code(self.derivative)

    def _keep_only_what_is_read(self, saved: Value) -> None:
        """Drop the record's fields the linear map does not read: a rule saves what either mode
        needs (``mean`` keeps its operand for the pullback, ``fill`` its dims for the differential)."""
        record_arg = self.linear_map.blocks[0].args[-1]
        reads = [u for u in record_arg.uses if isinstance(u, DestructureStructInst)]
        if not reads:
            return
        (read,) = reads
        kept = [i for i, r in enumerate(read.results) if r.uses]
        if len(kept) == len(read.results):
            return
        built = saved.owner if isinstance(saved, Result) else None
        assert isinstance(built, StructInst)
        self.record.fields = [self.record.fields[i] for i in kept]
        rebuilt = Builder.before(built, self.module).struct(
            self.record.type, *[built.operands[i] for i in kept]
        )
        built.result.replace_all_uses_with(rebuilt)
        built.erase()
        if kept:
            parts = Builder.before(read, self.module).destructure_struct(record_arg)
            for new, i in zip(parts, kept):
                new.name = read.results[i].name
                read.results[i].replace_all_uses_with(new)
        read.erase()

    def active(self, inst: Instruction) -> bool:
        return any(self.info.is_active(r) for r in inst.results)

    def checkpoint(self, value: Value, kind: str) -> int:
        """The index of the field holding ``value``, added the first time it is kept. A field is
        named after its value when the input named it (``xx``), else ``partial_N``/``pullback_N``."""
        index = self._kept.get(value)
        if index is not None:
            return index
        name = value.name if value.name is not None and not value.name.isdigit() else None
        if name is None or name in self._field_names:
            name = f"{kind}_{self._counts[kind]}"
            self._counts[kind] += 1
        self._field_names.add(name)
        self.checkpoints.append(Checkpoint(name, value))
        self._kept[value] = index = len(self.checkpoints) - 1
        return index

    def _save(self, b: Builder, inst: BuiltinInst, copy: Instruction) -> None:
        rule = RULES.get(inst.name)
        if rule is None:
            raise SILError.at(inst.span, f"cannot differentiate '{inst.name}' yet")
        needed = [self.info.is_active(op) for op in inst.operands]
        kept = rule.save(b, list(copy.operands), copy.result, needed)
        self.saved[inst] = [self.checkpoint(v, "partial") for v in kept]

    def _call_derivative(self, b: Builder, inst: ApplyInst, values: dict[Value, Value]) -> None:
        """A call of the callee's derivative in place of the call; its linear map is kept."""
        resolved = resolve_callee(self.module, inst)
        if resolved is None:
            raise SILError.at(inst.span, "cannot differentiate a call of an opaque function value")
        callee = resolved.function
        if isinstance(callee.type.result, TupleType) and len(callee.type.results) > 1:
            raise SILError.at(
                inst.span, f"cannot differentiate a call of '@{callee.name}' yet: it returns several results"
            )
        wrt = tuple(i for i, a in enumerate(resolved.arguments) if self.info.is_active(a))
        derivative, callee_wrt = self.callee_derivative(callee, wrt)
        reference = self._references.get(derivative.name)
        if reference is None:  # one function_ref per callee derivative, however often it is called
            reference = self._references[derivative.name] = b.function_ref(derivative)
        pair = b.apply(reference, *[values[a] for a in resolved.arguments])
        result, linear_map = b.destructure_tuple(pair)
        result.name = inst.result.name
        values[inst.result] = result
        self.saved[inst] = [self.checkpoint(linear_map, self.linear_map_kind)]
        self.calls[inst] = (resolved.arguments, callee_wrt)
