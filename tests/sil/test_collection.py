"""Building IR promotes it past CPython's young collections (sil/collection.py), and still frees
the cyclic garbage of dropped modules: a process that builds module after module stays bounded."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sil import collection, parse
from sil.passes import PassManager, get_pass

ROOT = Path(__file__).resolve().parents[2]

TEXT = "\n".join(
    f"""
sil @f{i} : $@convention(thin) (Double) -> Double {{
bb0(%x : $Double):
  %y = builtin "fmul"(%x : $Double, %x : $Double) : $Double
  %z = builtin "fadd"(%y : $Double, %x : $Double) : $Double
  return %z : $Double
}}"""
    for i in range(40)
)


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.enable()
    gc.collect()  # a full collection starts the count afresh
    yield
    if not was_enabled:
        gc.disable()


SCRIPT = """
import gc, sys, weakref
from interp import Program
from sil import collection, parse
from sil.passes import PassManager, get_pass
from tests.sil.test_collection import TEXT

floor, builds, how = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
collection.FLOOR = floor
gc.collect()


def build():
    module = parse(TEXT)
    if how == "passes":
        PassManager([get_pass(name)() for name in ("dce", "cse")]).run(module)
    else:  # a Program allocates between builds
        Program(module).run("@f0", 1.0)
    return module


first = weakref.ref(build().functions["f0"])  # the module goes; its cyclic functions stay
for _ in range(builds):
    if first() is None:
        break
    build()
print("alive" if first() is not None else "collected")
"""


@pytest.mark.parametrize(
    ("floor", "builds", "how", "expected"),
    [
        (2_000, 300, "passes", "collected"),
        (2_000, 1_000, "run", "collected"),
        (10**9, 100, "passes", "alive"),
    ],
)
def test_dropped_modules_are_collected_once_enough_was_built(
    floor: int, builds: int, how: str, expected: str
) -> None:
    """In a process of its own, whose heap is small (a test worker's would need far more builds):
    build a module and drop it, then build up to ``builds`` more. Above the floor it is freed;
    with the floor out of reach, it stays, as it did in any process before the rule."""
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(floor), str(builds), how],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert run.stdout.split() == [expected]


def test_a_parse_that_raises_promotes_nothing() -> None:
    moved = collection._Counts.moved
    with pytest.raises(Exception, match="expected"):
        parse("sil @f : garbage")
    assert collection._Counts.moved == moved


def test_a_module_below_the_floor_is_parsed_and_transformed_without_a_collection() -> None:
    full = gc.get_stats()[-1]["collections"]
    module = parse(TEXT)
    PassManager([get_pass(name)() for name in ("dce", "cse", "dce")]).run(module)
    assert gc.get_stats()[-1]["collections"] == full
