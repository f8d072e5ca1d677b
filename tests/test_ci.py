"""CI runs what a new user runs: the README's test command, in a virtual environment made afresh,
with test tools whose versions are bounded so that a new release cannot break a clean checkout."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    """The shell commands of the README's fenced ``sh`` blocks, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL)]


def test_ci_runs_the_readme_test_command_in_a_new_virtual_environment() -> None:
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    test_command = next(c for c in readme_commands() if "pytest" in c)
    assert test_command in lines
    venv = next(i for i, line in enumerate(lines) if line.startswith("python3 -m venv "))
    activate = next(i for i, line in enumerate(lines) if re.match(r"export PATH=.*venv/bin", line))
    assert venv < activate < lines.index(test_command)


def test_every_test_tool_has_an_upper_bound() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for requirement in project["optional-dependencies"]["test"]:
        assert "<" in requirement, f"'{requirement}' has no upper bound"
