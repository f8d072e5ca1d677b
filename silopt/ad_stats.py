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
interpreter's step count: deterministic) and in wall time (best of five; left out by
``--ad-stats-untimed``, so that the report is the same on every run), and the bytes of the
records the pullback holds. Everything but the wall time is deterministic.

The figures come from ``ADStatistics``, which the passes fill as they emit; none is read back
from the module's text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from differentiation.passes import Differentiation, LowerGradient
from differentiation.statistics import ADStatistics, DerivativeStats, LoopLayout, RequestStats
from sil.cfg import reverse_postorder_from
from sil.passes import PassManager
from sil.types import NominalType
from silopt.ad_measure import CannotMeasure, CostRunner, Size, Sizes, count_of

if TYPE_CHECKING:
    import argparse

    from accel import Backend

LEGEND = (
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
    head = (
        f"AD statistics: {count_of(len(requests), 'request')} answered, {count_of(made, 'derivative')} made"
    )
    if not requests:
        return head + " (the module asks for none)\n"
    module = statistics.module
    assert module is not None
    sizes = Sizes(module, statistics.record_types)
    runner = None
    if args.args is not None and backend is not None:
        runner = CostRunner(module, backend, args, statistics, sizes)
    lines = [head, LEGEND]
    where: dict[str, int] = {}  # the request each derivative was made for
    for number, request in enumerate(requests, 1):
        lines += ["", *_request_lines(number, request, sizes, where)]
        lines += _cost_lines(request, runner)
    return "\n".join(lines) + "\n"


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
    return f"in {count_of(n, 'block')}"


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

    def forward(block: str) -> list[str]:  # a trip's edges: in the body, no back edge
        return [s for s in d.successors.get(block, ()) if s in body and (block, s) not in back]

    for block in reversed(reverse_postorder_from(loop.header, forward)):
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


def _cost_lines(request: RequestStats, runner: CostRunner | None) -> list[str]:
    if runner is None:
        return [
            "  cost gradient/primal: needs --args (the point at which to run the primal and the gradient)"
        ]
    try:
        return runner.lines(request)
    except CannotMeasure as e:
        return [f"  cost gradient/primal: cannot be measured: {e}"]
