"""Issue 16, item 3: after differentiation and -O, a gradient at a call site is straight-line code
in the caller (no closure, record, trace enum or call of a synthesized function), for straight-line
functions, calls, a branch the call site decides and a loop whose trip count it fixes; and the
derivatives it computes are those of the unoptimized module, and of finite differences."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from interp import Program
from sil import parse
from sil.instructions import ApplyInst, FunctionRefInst, PartialApplyInst
from sil.ir import Module
from sil.passes import PassManager, registered_passes
from sil.transforms.dead_function_elim import is_root

CASES = sorted((Path(__file__).parents[3] / "golden/opt/O").glob("*_*.sil"))
CASES = [c for c in CASES if c.stem.startswith(("gradient_", "bundle_"))]


def _through(path: Path, optimize: bool) -> Module:
    passes = re.search(r"RUN: silopt %s (.*)", path.read_text(encoding="utf-8"))
    assert passes is not None
    names = [p.lstrip("-") for p in passes.group(1).split()]
    module = parse(path.read_text(encoding="utf-8"), str(path))
    registry = registered_passes()
    PassManager([registry[n]() for n in names if optimize or n != "O"]).run(module)
    return module


def test_every_kind_of_gradient_is_covered() -> None:
    assert {c.stem for c in CASES} >= {
        "gradient_straight_line",
        "gradient_of_calls",
        "gradient_known_branch",
        "gradient_counted_loop",
        "bundle_straight_line",
    }


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_the_caller_is_straight_line_code(path: Path) -> None:
    module = _through(path, optimize=True)
    main = module.functions["main"]
    assert len(main.blocks) == 1
    for inst in main.instructions():
        assert not isinstance(inst, PartialApplyInst | ApplyInst), inst.opname
        assert not (isinstance(inst, FunctionRefInst) and not is_root(inst.function_name))
    assert all(is_root(name) for name in module.functions)
    assert not [d for d in module.types.values() if d.name.startswith("_AD__")]


def _flat(value: Any) -> list[Any]:
    return list(value) if isinstance(value, tuple) else [value]


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_the_derivatives_are_those_of_the_unoptimized_module(path: Path) -> None:
    optimized, plain = Program(_through(path, True)), Program(_through(path, False))
    params = len(parse(path.read_text(encoding="utf-8")).functions["main"].type.params)
    for point in ([0.3, -0.7][:params], [1.1, 0.4][:params]):
        got, expected = optimized.run("main", *point), plain.run("main", *point)
        for a, b in zip(_flat(got), _flat(expected), strict=True):
            assert math.isclose(a, b, rel_tol=1e-6), (path.stem, point, got, expected)


def test_the_counted_loop_gradient_matches_finite_differences() -> None:
    path = next(c for c in CASES if c.stem == "gradient_counted_loop")
    program = Program(_through(path, True))
    x, h = 0.8, 1e-6
    central = ((x + h) ** 3 - (x - h) ** 3) / (2 * h)
    assert math.isclose(program.run("main", x), central, rel_tol=1e-8)
