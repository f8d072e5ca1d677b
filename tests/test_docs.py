"""docs/sr9395.md is generated from golden/legacy/ and up to date; the golden steps form a chain
(each step's input is the previous step's output) that ends where the one-command pipeline ends."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_sr9395", ROOT / "docs" / "generate_sr9395.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_walkthrough_is_up_to_date() -> None:
    assert generator().main(["--check"]) == 0, "run python3 docs/generate_sr9395.py"


def test_each_step_starts_where_the_previous_ended() -> None:
    g = generator()
    for previous, step in zip(g.STEPS, g.STEPS[1:]):
        given = g.body((g.LEGACY / f"{step}.sil").read_text(encoding="utf-8")).strip()
        produced = (g.LEGACY / f"{previous}.expected").read_text(encoding="utf-8").strip()
        assert given == produced, f"{step}.sil does not start from {previous}.expected"


def test_the_steps_end_where_the_whole_pipeline_ends() -> None:
    g = generator()
    last = (g.LEGACY / f"{g.STEPS[-1]}.expected").read_text(encoding="utf-8")
    assert (g.LEGACY / "pipeline.expected").read_text(encoding="utf-8") == last
