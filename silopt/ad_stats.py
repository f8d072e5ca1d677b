"""``silopt --ad-stats``: what the differentiation passes of the pipeline made, and what it costs.

The report goes to standard error after the output, as mlir-opt prints pass statistics, so that
standard output stays what it would be without the flag (the module, or ``--run``'s value). For
each request the passes answered, in order: the instructions (and blocks) of the original and of
every function made for it (its VJP and pullback, its JVP and differential, those of the
functions it calls, a gradient function, subset-parameters thunks); the zero derivatives each
linear map's emitter kept symbolic or materialized (``differentiation.statistics.ZeroCounts``);
the fields and bytes of each block's record and of a loop's trip, from the planned field types;
and with ``--args`` the cost of the gradient over the primal, measured on the interpreter: the
primal, then the VJP and its pullback with a seed of ones, in executed instructions (the
interpreter's step count: deterministic) and in wall time (best of ``REPETITIONS``; left out by
``--ad-stats-untimed``, so that the report is the same on every run), and the bytes of the
records the pullback holds. Everything but the wall time is deterministic.

The figures come from ``ADStatistics``, which the passes fill as they emit; none is read back
from the module's text.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from differentiation.passes import Differentiation, LowerGradient
from differentiation.statistics import ADStatistics, DerivativeStats, LoopLayout, RequestStats
from sil.diagnostics import SILError
from sil.ir import EnumDecl, Module, StructDecl
from sil.passes import PassManager
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

SCALAR_BYTES = {FLOAT: 4, DOUBLE: 8, INT: 8, BOOL: 1}
POINTER = 8  # a function, a closure, a record kept by reference
TAG = 1  # an enum's case
SHAPE_DIMENSION = 8  # a TensorShape's dimension, an Int, when measured
REPETITIONS = 5  # timed runs of the primal and of the gradient; the best counts
REPETITION_SECONDS = 0.002  # calls are repeated within a timed run until it lasts this long
SIZES = (
    "sizes: Float 4 bytes, Double 8, Int 8, Bool 1; a function, a closure or a record (a 'pred' "
    "field) 8, by reference; an enum 1 + its largest payload; no padding. Tensors and shapes "
    "are sized at run time: counted apart, and measured with --args.\n"
    "A pullback or a differential is one function, with a block for each block of the original "
    "and blocks that pass between them; its derivative's partial_apply of it to the record is "
    "its closure."
)


def attach(manager: PassManager) -> ADStatistics:
    """Have the differentiation passes of ``manager``'s pipeline collect statistics."""
    statistics = ADStatistics()
    for p in manager.passes:
        if isinstance(p, Differentiation | LowerGradient):
            p.statistics = statistics
    return statistics


def report(statistics: ADStatistics, args: argparse.Namespace, backend: Backend | None) -> str:
    """The report of ``statistics``; with ``args.args``, the costs measured on ``backend``."""
    requests = list(statistics.requests.values())
    made = sum(len(r.made) for r in requests)
    head = f"AD statistics: {_count(len(requests), 'request')} answered, {_count(made, 'derivative')} made"
    if not requests:
        return head + " (the module asks for none)\n"
    module = statistics.module
    assert module is not None
    sizes = Sizes(module, statistics.record_types)
    runner = None
    if args.args is not None and backend is not None:
        runner = CostRunner(module, backend, args, statistics, sizes)
    lines = [head, SIZES]
    where: dict[str, int] = {}  # the request each derivative was made for
    for number, request in enumerate(requests, 1):
        lines += ["", *_request_lines(number, request, sizes, where)]
        lines += _cost_lines(request, runner)
    return "\n".join(lines) + "\n"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _request_lines(number: int, request: RequestStats, sizes: Sizes, where: dict[str, int]) -> list[str]:
    place = ""
    if request.span is not None:
        line = request.span.source.line_col(request.span.start)[0]
        place = f", {request.span.source.name}:{line}"
    title = f"request {number}: {request.form} @{request.original} ({request.config.describe()}){place}"
    lines = [title, *_table(_instruction_rows(request, where), "  ", {2})]
    for d in request.made:
        where[d.derivative] = where[d.linear_map] = number
    if request.made:
        lines += _table(_zero_rows(request), "  ", {2, 3})
        lines += _table(_record_rows(request, sizes), "  ", {3})
        lines += _table(_trip_rows(request, sizes), "  ", set())
    return lines


def _own(d: DerivativeStats, request: RequestStats) -> bool:
    return d.original == request.original and d.config == request.config


def _made(request: RequestStats) -> list[DerivativeStats]:
    """The derivatives made for ``request``: its own, then those made for the calls they make."""
    return sorted(request.made, key=lambda d: not _own(d, request))


def _role(d: DerivativeStats, request: RequestStats, linear_map: bool) -> str:
    """``VJP``, ``pullback``, …; ``VJP of @g`` for a derivative made for a call of ``@g``."""
    role = d.linear_map_kind if linear_map else d.kind.upper()
    if _own(d, request):
        return role
    if d.original == request.original:
        return f"{role} of @{d.original} ({d.config.describe()})"
    return f"{role} of @{d.original}"


def _instruction_rows(request: RequestStats, where: dict[str, int]) -> list[list[str]]:
    rows = [["instructions"]]
    own = [d for d in request.made if _own(d, request)]
    if own:
        rows.append(
            ["  original", f"@{request.original}", str(own[0].instructions[0]), _blocks(own[0].blocks[0])]
        )
    total = 0
    for d in _made(request):
        rows.append(
            [
                "  " + _role(d, request, False),
                f"@{d.derivative}",
                str(d.instructions[1]),
                _blocks(d.blocks[1]),
            ]
        )
        rows.append(
            ["  " + _role(d, request, True), f"@{d.linear_map}", str(d.instructions[2]), _blocks(d.blocks[2])]
        )
        total += d.instructions[1] + d.instructions[2]
    for s in request.synthesized:
        rows.append(["  " + s.what, f"@{s.name}", str(s.instructions), ""])
        total += s.instructions
    made = {d.derivative for d in request.made} | {s.name for s in request.synthesized}
    for kind, name in request.answers.items():
        if name not in made:
            earlier = where.get(name)
            said = f"made for request {earlier}" if earlier is not None else "registered, or made before"
            rows.append(["  " + (kind if kind == "gradient" else kind.upper()), f"@{name}", "", said])
    rows.append(["  made for it", "", str(total), ""])
    return rows


def _blocks(n: int) -> str:
    return f"in {_count(n, 'block')}"


def _zero_rows(request: RequestStats) -> list[list[str]]:
    rows = [["zero derivatives"], ["", "", "kept symbolic", "materialized"]]
    for d in _made(request):
        zeros = d.zeros
        rows.append(
            ["  " + _role(d, request, True), f"@{d.linear_map}", str(zeros.symbolic), str(zeros.materialized)]
        )
    return rows


def _record_rows(request: RequestStats, sizes: Sizes) -> list[list[str]]:
    rows = [["records, per block visited"], ["", "block", "record", "fields", "bytes"]]
    for d in _made(request):
        role = "  " + _role(d, request, False)
        for record in d.records:
            if record.name is None:
                rows.append([role, record.block, "(nothing kept)", "", ""])
                continue
            size = sizes.layout(record.name)
            rows.append([role, record.block, record.name, str(len(record.fields)), size.text()])
        if d.exit_trace is not None:  # the enum the pullback is bound to: which block returned
            rows.append([role, "exit", d.exit_trace, "", sizes.of(NominalType(d.exit_trace)).text()])
    return rows


def _trip_rows(request: RequestStats, sizes: Sizes) -> list[list[str]]:
    rows = [["records, per loop trip"], ["", "loop", "blocks", "bytes"]]
    for d in _made(request):
        for loop in d.loops:
            least, most = trip_sizes(d, loop, sizes)
            amount = least.text() if least == most else f"{least.up_to(most)}, by path"
            inner = [lp.header for lp in d.loops if lp.parent == loop.header]
            if inner:
                amount += f", besides the trips of the inner loop at {', '.join(inner)}"
            rows.append(["  " + _role(d, request, False), loop.header, ", ".join(loop.blocks), amount])
    return rows if len(rows) > 2 else []


def trip_sizes(d: DerivativeStats, loop: LoopLayout, sizes: Sizes) -> tuple[Size, Size]:
    """The least and the most the records of one trip of ``loop`` hold: over the paths from its
    header to a latch, branching back to the header, the records of the blocks passed (those of
    inner loops' blocks not counted: they repeat with the inner loop's trips)."""
    inner = {b for lp in d.loops if lp.parent == loop.header for b in lp.blocks}
    record_of = {r.block: r.name for r in d.records}
    body = set(loop.blocks)
    back = {(latch, lp.header) for lp in d.loops for latch in lp.latches}

    def weight(block: str) -> Size:
        name = record_of.get(block)
        return sizes.layout(name) if name is not None and block not in inner else Size()

    # Paths from each block to the end of a trip, the blocks in reverse topological order.
    best: dict[str, tuple[Size, Size]] = {}
    for block in reversed(_topological(loop.header, body, d.successors, back)):
        options = [best[s] for s in d.successors.get(block, ()) if s in best and (block, s) not in back]
        if block in loop.latches:
            options.append((Size(), Size()))
        if options:
            w = weight(block)
            best[block] = (
                w + _fold(Size.least, [o[0] for o in options]),
                w + _fold(Size.most, [o[1] for o in options]),
            )
    return best.get(loop.header, (Size(), Size()))


def _fold(f: Callable[[Size, Size], Size], sizes: list[Size]) -> Size:
    out = sizes[0]
    for s in sizes[1:]:
        out = f(out, s)
    return out


def _topological(
    start: str, body: set[str], successors: dict[str, tuple[str, ...]], back: set[tuple[str, str]]
) -> list[str]:
    """The blocks of ``body`` reachable from ``start`` without back edges, each after those
    before it (a reverse postorder)."""
    order: list[str] = []
    seen = {start}
    stack = [(start, iter(successors.get(start, ())))]
    while stack:
        block, rest = stack[-1]
        for s in rest:
            if s in body and s not in seen and (block, s) not in back:
                seen.add(s)
                stack.append((s, iter(successors.get(s, ()))))
                break
        else:
            stack.pop()
            order.append(block)
    order.reverse()
    return order


def _table(rows: list[list[str]], indent: str, right: set[int]) -> list[str]:
    """Rows as aligned columns (those in ``right`` aligned right), two spaces apart."""
    if not rows:
        return []
    width = [0] * max(len(r) for r in rows)
    for r in rows:
        if len(r) > 1:  # a row of one cell is a title
            for i, cell in enumerate(r):
                width[i] = max(width[i], len(cell))
    return [
        (
            indent
            + "  ".join(c.rjust(width[i]) if i in right else c.ljust(width[i]) for i, c in enumerate(r))
        ).rstrip()
        for r in rows
    ]


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
        out = _count(self.bytes, "byte")
        if self.tensors:
            out += f" + {_count(self.tensors, 'tensor')}"
        if self.shapes:
            out += f" + {_count(self.shapes, 'shape')}"
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
                return Size(TAG) + _fold(Size.most, payloads or [Size()])
            return Size(POINTER)
        finally:
            self._open.discard(name)


def _cost_lines(request: RequestStats, runner: CostRunner | None) -> list[str]:
    if runner is None:
        return [
            "  cost gradient/primal: needs --args (the point at which to run the primal and the gradient)"
        ]
    try:
        return runner.lines(request)
    except _CannotMeasure as e:
        return [f"  cost gradient/primal: cannot be measured: {e}"]


class _CannotMeasure(Exception):
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
            raise _CannotMeasure(e.diagnostics[0].message) from None
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
            raise _CannotMeasure("no VJP answers it (a legacy gradient form)")
        fn = self.module.functions[request.original]
        if fn.is_declaration:
            raise _CannotMeasure(f"'@{fn.name}' has no body to run")
        params = fn.type.params
        given: Sequence[str] = self.args.args
        if len(given) != len(params):
            listed = ", ".join(str(p) for p in params) or "none"
            raise _CannotMeasure(
                f"--args gives {len(given)}, '@{fn.name}' takes {_count(len(params), 'argument')} ({listed})"
            )
        try:
            return fn.name, vjp, [parse_argument(text, p) for text, p in zip(given, params)]
        except ArgumentSyntaxError as e:
            raise _CannotMeasure(f"--args for '@{fn.name}': {e}") from None

    def _steps(
        self, program: Any, request: RequestStats, values: list[Any]
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
        records = _count(sum(count.values()), "record")
        return f"{records} ({per_block}), {_count(total, 'byte')}, tensors and shapes included"


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
