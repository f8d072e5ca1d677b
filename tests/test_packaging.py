"""The packages are typed (PEP 561) and ship their marker, so mypy --strict checks user scripts."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["sil", "analysis", "differentiation", "accel", "interp", "silopt"]


def test_every_package_has_py_typed_and_ships_it() -> None:
    for package in PACKAGES:
        assert (ROOT / package / "py.typed").is_file(), f"{package} has no py.typed"
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert "py.typed" in setuptools["package-data"]["*"]
    # an editable install then writes a .pth that mypy follows (not an import-hook finder)
    assert setuptools["package-dir"] == {"": "."}
