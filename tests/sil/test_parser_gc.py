"""The parser and the cyclic GC: a parsed module goes to the oldest generation at once, so that
no young-generation collection traverses it to free nothing, and a host's frozen objects stay
frozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from sil import parse

TEXT = "".join(
    f"sil @f{i} : $@convention(thin) (Float) -> Float {{\nbb0(%x : $Float):\n"
    f'  %y = builtin "fmul"(%x : $Float, %x : $Float) : $Float\n  return %y : $Float\n}}\n\n'
    for i in range(300)
)


@pytest.fixture
def gc_enabled() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.enable()
    yield
    if not was_enabled:
        gc.disable()


@pytest.mark.usefixtures("gc_enabled")
def test_a_parsed_module_leaves_nothing_for_the_young_generations() -> None:
    gc.collect()
    module = parse(TEXT)
    assert len(module.functions) == 300
    young = gc.get_objects(generation=0) + gc.get_objects(generation=1)
    assert not any(o is module or o is module.functions for o in young)
    assert gc.get_count()[0] < 100  # the thousands of objects parsed count for no collection
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("gc_enabled")
def test_a_hosts_frozen_objects_stay_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        parse(TEXT)
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_a_parse_error_leaves_the_gc_as_it_was() -> None:
    was_enabled = gc.isenabled()
    with pytest.raises(Exception, match="expected"):
        parse("sil @f : $@convention(thin) () -> () {\nbb0:\n  return %x :\n}\n")
    assert gc.isenabled() == was_enabled
    assert gc.get_freeze_count() == 0
