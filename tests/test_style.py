"""ruff and mypy --strict run with the test suite, so the one test command checks style too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


# Outside CI the tools may be missing (pytest installed alone); CI installs them and must run them.
needs_ruff = pytest.mark.skipif(
    shutil.which("ruff") is None and not os.environ.get("CI"), reason="ruff comes with the 'test' extra"
)


@needs_ruff
def test_ruff_check() -> None:
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_ruff
def test_ruff_format() -> None:
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    if not os.environ.get("CI"):
        pytest.importorskip("mypy", reason="mypy comes with the 'test' extra")
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr
