"""When CPython's cyclic collector runs while IR is built (parsing, passes).

Building IR allocates objects that stay alive, so collections during it free nothing; they cost a
third of a parse, and made -differentiation superlinear. ``building()`` turns the collector off
for the build, then moves every tracked object to the oldest generation at once (``gc.freeze``
then ``gc.unfreeze``), so that the first collections after it do not traverse the new IR either.

Objects moved that way escape CPython's own rule for full collections, which counts only what
younger collections promote. Without a rule of our own, the cyclic garbage of dropped modules (IR
points back at its owners) was never freed: a process that built module after module grew without
bound (a campaign worker reached 12 GB). So ``building()`` keeps the same kind of rule itself: a
full collection once a module was dropped (``Module.__del__``: the module object is in no cycle,
its functions are) and the objects moved since the last collection outnumber both ``FLOOR`` and
the objects that survived it. Each collection then traverses at most about twice what was built
since the previous one; and while every module built is still alive, which is a single ``silopt``
run or a timed benchmark, nothing would be freed, so none runs.
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
    dropped = False  # whether a module was dropped since


def _after_collection(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and info["generation"] == _OLDEST:
        _Counts.moved = 0
        _Counts.survivors = None
        _Counts.dropped = False


def module_dropped() -> None:
    """A module's last reference went: its functions are cyclic garbage now."""
    _Counts.dropped = True


gc.callbacks.append(_after_collection)


@contextmanager
def building() -> Iterator[None]:
    """Run the body (which builds IR) with the collector off; after it, promote what it built
    and collect fully when the rule above says so. Nothing happens after a body that raised, nor
    when the collector was off already or the host program froze objects itself (unfreezing
    would undo that)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
    if was_enabled and gc.get_freeze_count() == 0:
        _promote()


def _promote() -> None:
    young = gc.get_count()[0]  # allocated less freed since the last collection: mostly the new IR
    gc.freeze()
    gc.unfreeze()
    _Counts.moved += young
    if not _Counts.dropped or _Counts.moved <= FLOOR:
        return
    if _Counts.survivors is None:
        _Counts.survivors = max(len(gc.get_objects()) - _Counts.moved, 0)
    if _Counts.moved > _Counts.survivors:
        gc.collect()
