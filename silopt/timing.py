"""``--timing``: where a silopt run spends its time, reported as MLIR's ``--mlir-timing`` does.

A tree of named timers: the steps of a run (``Parser``, ``Verifier``, ``Pipeline`` and in it each
pass, ``Output``, ``Run``, ``Check derivatives``), each with the wall time spent in it. A step that
happens again (the verifier after the pipeline, each chunk of ``--split-input-file``) adds to the
timer it had, so a report has one row a step and one a pass of the pipeline. The report is MLIR's
tree display: a header, the total, a row a timer in the order they started (children indented under
their parent), ``Rest`` (the time in no top-level timer: reading the input, starting up) and
``Total``, each with its share of the total.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import attrs

from sil.ir import Module
from sil.passes import Pass, PassContext, PassInstrumentation

_WIDTH = 80
_DESCRIPTION = "... Execution time report ..."


@attrs.define(eq=False)
class Timer:
    """A step's accumulated wall time, and the steps inside it, in the order they first started."""

    name: str
    seconds: float = 0.0
    children: list[Timer] = attrs.field(factory=list)
    _by_key: dict[object, Timer] = attrs.field(factory=dict)

    def nest(self, key: object, name: str) -> Timer:
        """The child timer for ``key``, made (named ``name``) on first use."""
        child = self._by_key.get(key)
        if child is None:
            child = self._by_key[key] = Timer(name)
            self.children.append(child)
        return child


class Timing:
    """The timers of one silopt run, started when it is made; ``scope`` times a step in whichever
    step is running."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.root = Timer("Total")
        self._started = clock()
        self._running: list[tuple[Timer, float]] = []

    @contextlib.contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Time the step ``name`` (within the step running now) while the block runs; a timer
        started in it and left running (that of a pass that failed) stops with it."""
        depth = len(self._running)
        self.start(name, name)
        try:
            yield
        finally:
            while len(self._running) > depth:
                self.stop()

    def start(self, key: object, name: str) -> None:
        """Start the timer ``key`` (named ``name``) in the step running now."""
        parent = self._running[-1][0] if self._running else self.root
        self._running.append((parent.nest(key, name), self.clock()))

    def stop(self) -> None:
        """Stop the timer started last."""
        timer, started = self._running.pop()
        timer.seconds += self.clock() - started

    def instrumentation(self) -> PassInstrumentation:
        """Times each pass of one pipeline (a row each, in the pipeline's order)."""
        return _PassTiming(self)

    def report(self) -> str:
        """The report of the time until now, in MLIR's format."""
        total = self.clock() - self._started
        self.root.seconds = total
        rest = Timer("Rest", total - sum(t.seconds for t in self.root.children))
        rule = "===" + "-" * (_WIDTH - 7) + "===\n"
        lines = [
            rule,
            " " * ((_WIDTH - len(_DESCRIPTION)) // 2) + _DESCRIPTION + "\n",
            rule,
            f"  Total Execution Time: {total:.4f} seconds\n\n",
            "  ----Wall Time----  ----Name----\n",
        ]
        for child in self.root.children:
            _rows(child, 0, total, lines)
        lines.append(_row(rest, 0, total))
        lines.append(_row(self.root, 0, total))
        return "".join(lines)


def _rows(timer: Timer, depth: int, total: float, lines: list[str]) -> None:
    lines.append(_row(timer, depth, total))
    for child in timer.children:
        _rows(child, depth + 1, total, lines)


def _row(timer: Timer, depth: int, total: float) -> str:
    share = 100.0 * timer.seconds / total if total > 0 else 0.0
    return f"  {timer.seconds:8.4f} ({share:5.1f}%)  {'  ' * depth}{timer.name}\n"


class _PassTiming(PassInstrumentation):
    """A timer a pass, keyed by its place in the pipeline: ``-dce -dce`` gives two rows, and the
    pipelines of several chunks add to the same rows."""

    def __init__(self, timing: Timing) -> None:
        self.timing = timing
        self.place = 0

    def before_pass(self, p: Pass, module: Module, ctx: PassContext) -> None:
        self.timing.start(("pass", self.place), p.name)
        self.place += 1

    def after_pass(self, p: Pass, module: Module, ctx: PassContext) -> None:
        self.timing.stop()


_UNTIMED = contextlib.nullcontext()


def step(timing: Timing | None, name: str) -> contextlib.AbstractContextManager[None]:
    """``timing.scope(name)``; nothing without ``--timing`` (None)."""
    return _UNTIMED if timing is None else timing.scope(name)
