"""The docs agree with the golden output: docs/sr9395.md is generated from golden/legacy/ and up to
date, and the golden steps (the walkthrough's, and golden/legacy/one_parameter/'s) form a chain
(each step's input is the previous step's output) that ends where the one-command pipeline ends;
docs/control-flow.md quotes only what a golden case prints."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_sr9395", ROOT / "docs" / "generate_sr9395.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_walkthrough_is_up_to_date() -> None:
    assert generator().main(["--check"]) == 0, "run python3 docs/generate_sr9395.py"


CHAINS = ["", "one_parameter"]  # the walkthrough's, and the one-parameter Float functions'


@pytest.mark.parametrize("chain", CHAINS, ids=["walkthrough", *CHAINS[1:]])
def test_each_step_starts_where_the_previous_ended(chain: str) -> None:
    g = generator()
    steps = g.LEGACY / chain
    for previous, step in zip(g.STEPS, g.STEPS[1:]):
        given = g.body((steps / f"{step}.sil").read_text(encoding="utf-8")).strip()
        produced = (steps / f"{previous}.expected").read_text(encoding="utf-8").strip()
        assert given == produced, f"{step}.sil does not start from {previous}.expected"


@pytest.mark.parametrize("chain", CHAINS, ids=["walkthrough", *CHAINS[1:]])
def test_the_steps_end_where_the_whole_pipeline_ends(chain: str) -> None:
    g = generator()
    steps = g.LEGACY / chain
    last = (steps / f"{g.STEPS[-1]}.expected").read_text(encoding="utf-8")
    assert (steps / "pipeline.expected").read_text(encoding="utf-8") == last


def test_the_control_flow_notes_quote_the_golden_output() -> None:
    """Every line of SIL that docs/control-flow.md shows (but for elisions and the comments it
    adds) is in the golden case it quotes, so the notes cannot drift from the output."""
    doc = (ROOT / "docs" / "control-flow.md").read_text(encoding="utf-8")
    case = ROOT / "golden" / "differentiation" / "cf" / "counted_loop"
    golden = set()
    for path in (case.with_suffix(".sil"), case.with_suffix(".expected")):
        golden |= {line.rstrip() for line in path.read_text(encoding="utf-8").splitlines()}
    blocks = doc.split("```sil\n")[1:]
    assert blocks, "the notes show no SIL"
    for block in blocks:
        for line in block.split("```")[0].splitlines():
            shown = line.split("  //")[0].rstrip()
            if shown and shown.strip() != "…":
                assert shown in golden, f"not in {case.name}: {shown!r}"


def test_the_readme_python_examples_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every ``python`` block of the README runs, from the repository root, as a reader would."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b.split("```")[0] for b in text.split("```python\n")[1:]]
    assert any("silopt.load" in b for b in blocks)
    monkeypatch.chdir(ROOT)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert "JVP vs VJP" in capsys.readouterr().out
