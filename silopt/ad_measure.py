"""What ``silopt --ad-stats`` measures: the sizes of records' fields by type, the records a pullback
holds after a run, and the cost of a gradient over its primal on the interpreter.

Sizes (``Sizes``): Float 4 bytes, Double 8, Int 8, Bool 1; a function, a closure or a record held
by another (its successor's ``pred`` field) 8, a pointer; an enum 1 (the tag) + its largest
payload; tuples and structs the sum of their elements, without padding. A tensor's or a shape's
size is known at run time only: they are counted apart, and measured after a run (a tensor's
``nbytes``, 8 bytes a dimension of a shape).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from differentiation.statistics import ADStatistics, RequestStats
from sil.diagnostics import SILError
from sil.ir import EnumDecl, Module, StructDecl
from sil.types import (
    BOOL,
    DOUBLE,
    FLOAT,
    INT,
    FunctionType,
    NominalType,
    ShapeType,
    TensorType,
    TupleType,
    Type,
)

if TYPE_CHECKING:
    import argparse

    from accel import Backend
    from interp import Program

SCALAR_BYTES = {FLOAT: 4, DOUBLE: 8, INT: 8, BOOL: 1}
POINTER = 8  # a function, a closure, a record kept by reference
TAG = 1  # an enum's case
SHAPE_DIMENSION = 8  # a TensorShape's dimension, an Int, when measured
REPETITIONS = 5  # timed runs of the primal and of the gradient; the best counts
REPETITION_SECONDS = 0.002  # calls are repeated within a timed run until it lasts this long


def count_of(n: int, noun: str) -> str:
    """``1 byte``, ``2 bytes``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


@attrs.frozen
class Size:
    """What values of a type hold: bytes known statically, and tensors and shapes, whose sizes
    are known at run time."""

    bytes: int = 0
    tensors: int = 0
    shapes: int = 0

    def __add__(self, other: Size) -> Size:
        return Size(self.bytes + other.bytes, self.tensors + other.tensors, self.shapes + other.shapes)

    def least(self, other: Size) -> Size:
        return Size(
            min(self.bytes, other.bytes), min(self.tensors, other.tensors), min(self.shapes, other.shapes)
        )

    def most(self, other: Size) -> Size:
        return Size(
            max(self.bytes, other.bytes), max(self.tensors, other.tensors), max(self.shapes, other.shapes)
        )

    def up_to(self, most: Size) -> str:
        """``16 to 24 bytes + 1 tensor``: from this size to ``most``."""
        if (self.tensors, self.shapes) == (most.tensors, most.shapes):
            return f"{self.bytes} to {most.text()}"
        return f"{self.text()} to {most.text()}"

    def text(self) -> str:
        out = count_of(self.bytes, "byte")
        if self.tensors:
            out += f" + {count_of(self.tensors, 'tensor')}"
        if self.shapes:
            out += f" + {count_of(self.shapes, 'shape')}"
        return out


class Sizes:
    """The sizes of the values of types (see ``SIZES``): a record (``references``, the record
    structs the passes planned) is kept by reference where a field holds it."""

    def __init__(self, module: Module, references: set[str]) -> None:
        self.module = module
        self.references = references
        self._sizes: dict[Type, Size] = {}
        self._open: set[str] = set()  # the nominal types being sized: a recursive one is a reference

    def of(self, t: Type) -> Size:
        """What a field of type ``t`` holds."""
        found = self._sizes.get(t)
        if found is None:
            found = self._sizes[t] = self._size(t)
        return found

    def layout(self, name: str) -> Size:
        """What a record (or any struct or enum) named ``name`` holds itself, by value."""
        return self._nominal(name)

    def _size(self, t: Type) -> Size:
        if t in SCALAR_BYTES:
            return Size(SCALAR_BYTES[t])
        if isinstance(t, TensorType):
            return Size(tensors=1)
        if isinstance(t, ShapeType):
            return Size(shapes=1)
        if isinstance(t, FunctionType):
            return Size(POINTER * (3 if t.differentiable else 1))  # a bundle: three functions
        if isinstance(t, TupleType):
            return sum((self.of(e) for e in t.elements), Size())
        if isinstance(t, NominalType) and t.name not in self.references and t.name not in self._open:
            return self._nominal(t.name)
        return Size(POINTER)

    def _nominal(self, name: str) -> Size:
        decl = self.module.lookup_type(name)
        self._open.add(name)
        try:
            if isinstance(decl, StructDecl):
                return sum((self.of(f.type) for f in decl.fields), Size())
            if isinstance(decl, EnumDecl):
                payloads = [self.of(c.payload) for c in decl.cases if c.payload is not None]
                largest = Size()
                for payload in payloads:
                    largest = largest.most(payload)
                return Size(TAG) + largest
            return Size(POINTER)
        finally:
            self._open.discard(name)


class CannotMeasure(Exception):
    """Why a request's cost cannot be measured at the ``--args`` given."""


class CostRunner:
    """Runs the primal and the gradient of requests at ``--args``, on the interpreter."""

    def __init__(
        self,
        module: Module,
        backend: Backend,
        args: argparse.Namespace,
        statistics: ADStatistics,
        sizes: Sizes,
    ) -> None:
        self.module, self.backend, self.args, self.sizes = module, backend, args, sizes
        self.timed = not args.ad_stats_untimed
        self.made = {d.derivative: d for r in statistics.requests.values() for d in r.made}

    def lines(self, request: RequestStats) -> list[str]:
        from interp import Program
        from interp.faults import RunError
        from silopt.run import lower_reached

        original, vjp, values = self._inputs(request)
        try:
            lower_reached(self.module, original)
            lower_reached(self.module, vjp)
            counting = Program(
                self.module,
                self.backend,
                max_steps=self.args.max_steps,
                max_depth=self.args.max_depth,
                count_steps=True,
            )
            steps, seed, bound = self._steps(counting, request, values)
            timing = self._timing(request, values, seed) if self.timed else None
        except (RunError, SILError) as e:
            raise CannotMeasure(e.diagnostics[0].message) from None
        primal, derivative, pullback = steps
        lines = [
            f"  cost gradient/primal at --args {' '.join(self.args.args)}",
            f"    executed instructions  primal {primal}, VJP {derivative} + pullback {pullback} "
            f"= {derivative + pullback}: ratio {_ratio(derivative + pullback, primal)}",
        ]
        if timing is not None:
            best_primal, best_gradient = timing
            lines.append(
                f"    wall time (best of {REPETITIONS})  primal {_seconds(best_primal)}, gradient "
                f"{_seconds(best_gradient)}: ratio {_ratio(best_gradient, best_primal)}"
            )
        if bound is not None:
            lines.append(f"    records kept           {self._kept(vjp, bound)}")
        return lines

    def _inputs(self, request: RequestStats) -> tuple[str, str, list[Any]]:
        """The original's and the VJP's names, and the --args as the original's arguments."""
        from interp.literals import ArgumentSyntaxError, parse_argument

        vjp = request.answers.get("vjp")
        if vjp is None:
            raise CannotMeasure("no VJP answers it (a legacy gradient form)")
        fn = self.module.functions[request.original]
        if fn.is_declaration:
            raise CannotMeasure(f"'@{fn.name}' has no body to run")
        params = fn.type.params
        given: Sequence[str] = self.args.args
        if len(given) != len(params):
            listed = ", ".join(str(p) for p in params) or "none"
            takes = f"'@{fn.name}' takes {count_of(len(params), 'argument')} ({listed})"
            raise CannotMeasure(f"--args gives {len(given)}, {takes}")
        try:
            return fn.name, vjp, [parse_argument(text, p) for text, p in zip(given, params)]
        except ArgumentSyntaxError as e:
            raise CannotMeasure(f"--args for '@{fn.name}': {e}") from None

    def _steps(
        self, program: Program, request: RequestStats, values: list[Any]
    ) -> tuple[tuple[int, int, int], Any, Any]:
        """Run the primal, the VJP, and its pullback with a seed of ones, counting the steps of
        each; also the seed, and the record the pullback holds (None: the VJP is not one made here)."""
        from silopt.check_derivatives import Request
        from silopt.finite_differences import Draw

        program.run(request.original, *values)
        primal = program.steps
        vjp = request.answers["vjp"]
        value, pullback = program.run(vjp, *values)
        vjp_steps = program.steps
        asked = Request(
            self.module.functions[request.original], request.config.sources, request.config.wrt, None
        )
        seed = Draw(self.module, "ad-stats").ones(asked.result_type, asked.selected(value))
        pullback(seed)
        bound = pullback.run_form[1][0] if vjp in self.made else None
        assert primal is not None and vjp_steps is not None and program.steps is not None  # counting
        return (primal, vjp_steps, program.steps), seed, bound

    def _timing(self, request: RequestStats, values: list[Any], seed: Any) -> tuple[float, float]:
        """The best time per call of the primal and of the gradient (the VJP, then the pullback)."""
        from interp import Program

        program = Program(self.module, self.backend, max_depth=self.args.max_depth)
        original, vjp = request.original, request.answers["vjp"]

        def primal() -> None:
            program.run(original, *values)

        def gradient() -> None:
            program.run(vjp, *values)[1](seed)

        return _best(primal), _best(gradient)

    def _kept(self, vjp: str, bound: Any) -> str:
        """The records a pullback holds (``bound``), measured: how many, of which blocks, bytes."""
        d = self.made[vjp]
        exit_type = self.module.functions[d.linear_map].type.params[-1]
        count, total = kept_records(self.sizes, bound, exit_type)
        blocks = {r.name: r.block for r in d.records if r.name is not None}
        per_block = ", ".join(
            f"{blocks[name]} {n}" for name, n in sorted(count.items(), key=lambda i: list(blocks).index(i[0]))
        )
        records = count_of(sum(count.values()), "record")
        return f"{records} ({per_block}), {count_of(total, 'byte')}, tensors and shapes included"


def kept_records(sizes: Sizes, root: Any, t: Type) -> tuple[Counter[str], int]:
    """The records reachable from ``root``, a run-time value of type ``t`` (a pullback's bound
    record), by record type, and the bytes they hold: their layouts' and their tensors' and shapes'.
    Each record is held by one other (its successor's ``pred``): they form a chain (a tree through
    trace enums), so none is counted twice; identity cannot tell them apart, since a struct of one
    field runs as that field's value."""
    count: Counter[str] = Counter()
    total = 0
    stack: list[tuple[Any, Type]] = [(root, t)]
    while stack:  # a chain of records, as long as the trips of a loop: no recursion
        value, vt = stack.pop()
        if isinstance(vt, NominalType) and vt.name in sizes.references:
            count[vt.name] += 1
            total += sizes.layout(vt.name).bytes + _dynamic_bytes(
                sizes, value, sizes.module.lookup_type(vt.name), stack
            )
        else:
            total += sizes.of(vt).bytes + _dynamic_bytes(sizes, value, vt, stack)
    return count, total


def _dynamic_bytes(
    sizes: Sizes, value: Any, t: Type | StructDecl | EnumDecl | None, stack: list[tuple[Any, Type]]
) -> int:
    """The bytes of the tensors and shapes in ``value`` (of type or declaration ``t``); the records
    it refers to go on ``stack``."""
    if isinstance(t, TensorType):
        return int(value.nbytes)
    if isinstance(t, ShapeType):
        return SHAPE_DIMENSION * len(value)
    if isinstance(t, TupleType):
        return sum(_dynamic_bytes(sizes, v, e, stack) for v, e in zip(value, t.elements))
    if isinstance(t, NominalType):
        if t.name in sizes.references:
            stack.append((value, t))
            return 0
        return _dynamic_bytes(sizes, value, sizes.module.lookup_type(t.name), stack)
    if isinstance(t, StructDecl):
        fields = (value,) if len(t.fields) == 1 else value
        return sum(_dynamic_bytes(sizes, v, f.type, stack) for v, f in zip(fields, t.fields))
    if isinstance(t, EnumDecl):
        name, payload = value
        case = t.case(name)
        return (
            0 if case is None or case.payload is None else _dynamic_bytes(sizes, payload, case.payload, stack)
        )
    return 0


def _best(call: Callable[[], None]) -> float:
    """The best time per call over ``REPETITIONS`` runs of enough calls to last a little."""
    call()  # the first call compiles
    started = time.perf_counter()
    call()
    once = max(time.perf_counter() - started, 1e-7)
    number = max(1, min(1000, int(REPETITION_SECONDS / once)))
    best = float("inf")
    for _ in range(REPETITIONS):
        started = time.perf_counter()
        for _ in range(number):
            call()
        best = min(best, (time.perf_counter() - started) / number)
    return best


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "undefined (the primal took none)"


def _seconds(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"
