"""examples/api_tour.py runs, and mypy --strict passes on it against the installed package: in a
new virtual environment, installed as a user installs it (from the tree, and editable as the README
does), with the script copied out of the repository so that only the installed package is seen."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOUR = ROOT / "examples" / "api_tour.py"


def _run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_tour_runs() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = _run(sys.executable, TOUR, cwd=ROOT, env=env)
    assert out.count(": ok\n") == 2
    assert "sil_stage canonical" in out and "d poly / d(x, y) at (2, 0.5): (2.0, 4.0)" in out


@pytest.mark.parametrize("editable", [False, True], ids=["installed", "editable"])
def test_mypy_strict_passes_on_the_tour_against_the_installed_package(tmp_path: Path, editable: bool) -> None:
    if not os.environ.get("CI"):
        pytest.importorskip("mypy", reason="mypy comes with the 'test' extra")
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv, cwd=tmp_path)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    install = ["-e", str(ROOT)] if editable else [str(ROOT)]
    _run(
        sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", *install, cwd=tmp_path
    )
    script = tmp_path / "work" / "api_tour.py"
    script.parent.mkdir()
    shutil.copy(TOUR, script)
    for example in ("regression.sil", "polynomial.sil"):
        shutil.copy(ROOT / "examples" / example, script.parent / example)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    out = _run(
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        "--python-executable",
        python,
        script.name,
        cwd=script.parent,
        env=env,
    )
    assert "Success" in out
    assert ": ok\n" in _run(python, script.name, cwd=script.parent, env=env)
