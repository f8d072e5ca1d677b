"""What the differentiation passes did, collected as they do it, for ``silopt --ad-stats``.

A differentiation context (``Differentiator``) carries an ``ADStatistics`` when asked to (the
passes' ``statistics`` option), else None, and then nothing is counted. It groups the derivatives
emitted by the request being answered (a ``[differentiable]`` attribute, a
``differentiable_function``, a ``gradient``): each request's own JVP and VJP, and those of the
functions they call, synthesized for it. For each derivative it keeps, as emission leaves them,
the sizes of the original, the derivative and its linear map, the plan of the records
(``LinearMapInfo``: each block's fields, with their types) and the loops of the original, and
how the emitters treated zero derivatives (``ZeroCounts``).

The report (``silopt/ad_stats.py``) reads these; it never re-derives them from the module's text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from analysis.activity import Config
from sil.cfg import natural_loops
from sil.diagnostics import Span
from sil.ir import Block, Function, Module
from sil.types import Type

if TYPE_CHECKING:
    from differentiation.linear_map_info import LinearMapInfo
    from differentiation.primal import DerivativeEmitter


@attrs.define(slots=True)
class ZeroCounts:
    """How a linear map's emitter treated the zero derivatives of active values it met.

    ``symbolic``: a zero kept symbolic, for which nothing is emitted: in a pullback, an active
    builtin's or call's result whose adjoint is zero (its pullback code is skipped); in a
    differential, an active operand of an active builtin whose tangent is zero (its term is left
    out; when all are, the builtin's whole tangent code). ``materialized``: a zero value built,
    counted once per scalar or tensor built (a struct of zeros counts its fields): where a value
    must exist (a branch's arguments, the returned tangents, a callee's linear map's argument, an
    aggregate adjoint made a value, a one-element tensor adjoint made whole). A rule's own
    arithmetic (``select``'s differential building a zero for a tangent handed to it as absent)
    is the rule's, not counted."""

    symbolic: int = 0
    materialized: int = 0


@attrs.frozen
class Field:
    name: str
    type: Type


@attrs.frozen
class RecordLayout:
    """One block's record as planned: its struct's name and fields (none declared: ``name`` is
    None, the block keeps nothing), and the trace enum naming its predecessor, if several."""

    block: str
    name: str | None
    fields: tuple[Field, ...]
    trace: str | None


@attrs.frozen
class LoopLayout:
    """A natural loop of the original, by block labels (``sil.cfg.natural_loops``)."""

    header: str
    blocks: tuple[str, ...]
    latches: tuple[str, ...]
    parent: str | None


@attrs.frozen
class DerivativeStats:
    """One derivative emitted: the ``kind`` (``vjp`` or ``jvp``) of ``original`` for ``config``,
    its functions' names and instruction counts as emitted, its records and zeros, and the
    original's control flow (block labels, successors and loops) for sizes per loop trip."""

    kind: str
    original: str
    config: Config
    derivative: str
    linear_map: str
    instructions: tuple[int, int, int]  # the original, the derivative, the linear map
    blocks: tuple[int, int, int]
    zeros: ZeroCounts
    records: tuple[RecordLayout, ...]
    exit_trace: str | None  # the enum the linear map is bound to when several blocks return
    successors: dict[str, tuple[str, ...]]
    loops: tuple[LoopLayout, ...]

    @property
    def linear_map_kind(self) -> str:
        return "pullback" if self.kind == "vjp" else "differential"


@attrs.frozen
class Synthesized:
    """Another function made for a request: a subset-parameters thunk, a gradient function."""

    what: str
    name: str
    instructions: int


@attrs.define
class RequestStats:
    """A request the passes answered (``form`` of ``original`` for ``config``, written at
    ``span``), what answers it (``answers``: kind -> function name, made or registered) and
    what was made while answering it, in order."""

    form: str
    original: str
    config: Config
    span: Span | None
    answers: dict[str, str] = attrs.field(factory=dict)
    made: list[DerivativeStats] = attrs.field(factory=list)
    synthesized: list[Synthesized] = attrs.field(factory=list)


def instruction_count(fn: Function) -> int:
    return sum(len(b.instructions) for b in fn.blocks)


class ADStatistics:
    """The requests answered, in order, with what each made. A request seen again (a
    ``gradient`` by ``-differentiation`` then by ``-lower-gradient``) is the same request."""

    def __init__(self) -> None:
        self.module: Module | None = None  # the module differentiated (set by the context)
        self.requests: dict[tuple[object, ...], RequestStats] = {}
        self._current: RequestStats | None = None
        self.record_types: set[str] = set()  # every record struct planned: kept by reference

    def request(self, form: str, original: Function, config: Config, span: Span | None, *key: object) -> None:
        """From now on, what is made is made for this request (``key``: what else tells it apart)."""
        whole = (form, original.name, config, *key)
        found = self.requests.get(whole)
        if found is None:
            found = self.requests[whole] = RequestStats(form, original.name, config, span)
        self._current = found

    def answered(self, kind: str, name: str) -> None:
        """The current request's ``kind`` (``jvp``, ``vjp``, ``gradient``) is ``@name``."""
        self._request().answers[kind] = name

    def synthesized(self, what: str, fn: Function) -> None:
        self._request().synthesized.append(Synthesized(what, fn.name, instruction_count(fn)))

    def emitted(self, emitter: DerivativeEmitter) -> None:
        """``emitter`` has emitted its derivative and linear map: keep what the report needs."""
        assert emitter.zeros is not None
        plan, fn = emitter.plan, emitter.fn
        derivative, linear_map = emitter.derivative, emitter.linear_map
        labels = plan.labels
        self._request().made.append(
            DerivativeStats(
                emitter.mode.derivative,
                fn.name,
                emitter.config,
                derivative.name,
                linear_map.name,
                (instruction_count(fn), instruction_count(derivative), instruction_count(linear_map)),
                (len(fn.blocks), len(derivative.blocks), len(linear_map.blocks)),
                emitter.zeros,
                self._records(plan),
                plan.exit_trace.name if plan.exit_trace is not None else None,
                {labels[b]: tuple(labels[s] for s in dict.fromkeys(b.successors())) for b in fn.blocks},
                _loops(fn, labels),
            )
        )

    def _records(self, plan: LinearMapInfo) -> tuple[RecordLayout, ...]:
        """Each block's record as ``plan`` decided it, in block order."""
        records = []
        for block, record in plan.records.items():
            name = record.decl.name if record.present else None
            if name is not None:
                self.record_types.add(name)
            fields = tuple(Field(f.name, f.type) for f in record.decl.fields) if record.present else ()
            trace = record.trace.name if record.trace is not None else None
            records.append(RecordLayout(plan.labels[block], name, fields, trace))
        return tuple(records)

    def _request(self) -> RequestStats:
        if self._current is None:  # made outside any request (a context used directly)
            self._current = RequestStats("derivatives", "", Config((), ()), None)
            self.requests[("derivatives",)] = self._current
        return self._current


def _loops(fn: Function, labels: dict[Block, str]) -> tuple[LoopLayout, ...]:
    return tuple(
        LoopLayout(
            labels[lp.header],
            tuple(labels[b] for b in lp.blocks),
            tuple(labels[b] for b in lp.latches),
            labels[lp.parent.header] if lp.parent is not None else None,
        )
        for lp in natural_loops(fn)
    )
