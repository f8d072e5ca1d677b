"""When CPython's cyclic collector runs while IR is built (parsing, passes).

Building IR allocates objects that stay alive, so collections during it free nothing; they cost a
third of a parse, and made -differentiation superlinear. ``building()`` turns the collector off
for the build, then moves every tracked object to the oldest generation at once (``gc.freeze``
then ``gc.unfreeze``), so that the first collections after it do not traverse the new IR either.

Objects moved that way escape CPython's own rule for full collections, which counts only what
younger collections promote. Without a rule of our own, the cyclic garbage of dropped modules (IR
points back at its owners) was never freed: a process that built module after module grew without
bound (a campaign worker reached 12 GB). So ``building()`` keeps the same kind of rule itself: a
full collection once the objects it moved since the last full collection (by anyone) outnumber
both ``FLOOR`` and the objects that survived that collection (CPython's rule waits for a quarter
more, ours for as many again). Each collection then traverses at most about twice what was built
since the previous one; and a module of up to ``FLOOR`` objects (a 100,000-instruction function is
about 400,000) is parsed and given its first pass without any.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

FLOOR = 500_000
"""Objects moved to the oldest generation before a full collection is considered."""


_OLDEST = 2


class _Counts:
    """What was moved since the last full collection (by anyone), and what survived it."""

    moved = 0
    survivors: int | None = None  # counted when first needed after a full collection


def _after_collection(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and info["generation"] == _OLDEST:
        _Counts.moved = 0
        _Counts.survivors = None


gc.callbacks.append(_after_collection)


@contextmanager
def building() -> Iterator[None]:
    """Collect fully first if the rule above says so, then run the body (which builds IR) with
    the collector off, and promote what it built. The check comes before a build, not after
    it, so a timed build is not charged for its own garbage, nor for the last build's where a
    collection came between (as a benchmark's do). Nothing is promoted after a body that raised,
    and nothing is done when the collector is off already or the host program froze objects
    itself (unfreezing would undo that)."""
    managing = gc.isenabled() and gc.get_freeze_count() == 0
    if managing:
        _collect_if_due()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
    if managing:
        # What the move below takes out of the young generations: the new IR, and what was
        # allocated between builds (a Program's compiled code). The youngest is counted, not
        # listed: listing a million new objects would cost a twentieth of their parse.
        _Counts.moved += gc.get_count()[0] + len(gc.get_objects(1))
        gc.freeze()
        gc.unfreeze()


def _collect_if_due() -> None:
    if _Counts.moved <= FLOOR:
        return
    if _Counts.survivors is None:
        _Counts.survivors = max(len(gc.get_objects()) - _Counts.moved, 0)
    if _Counts.moved > _Counts.survivors:
        gc.collect()
