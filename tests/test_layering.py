"""The layering of the packages, as README.md's layout table states it ("may import"), holds for
every import in the library: at module level, inside functions and under ``TYPE_CHECKING``. Also
the guard rails that keep the core honest: the differentiation core never imports its legacy
passes, and ``sil/`` has no ``type: ignore``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sil", "analysis", "differentiation", "accel", "interp", "silopt")


def stated_rules() -> dict[str, set[str]]:
    """README.md's layout table: each package and the packages of ours it may import."""
    rules: dict[str, set[str]] = {}
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3:
            continue
        name = re.fullmatch(r"`(\w+)/`", cells[0])
        if name is None or name.group(1) not in PACKAGES:
            continue
        rules[name.group(1)] = (
            set() if cells[2] == "nothing of ours" else set(re.findall(r"`(\w+)`", cells[2]))
        )
    return rules


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports (absolute names), with the line of the import."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            found.append((node.lineno, node.module))
    return found


def library_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_the_table_states_a_rule_for_every_package() -> None:
    rules = stated_rules()
    assert set(rules) == set(PACKAGES)
    for package, allowed in rules.items():
        assert allowed <= set(PACKAGES) - {package}, package


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_what_the_layout_allows(package: str) -> None:
    allowed = stated_rules()[package] | {package}
    wrong = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in library_files(package)
        for line, module in imported_modules(path)
        if module.split(".")[0] in PACKAGES and module.split(".")[0] not in allowed
    ]
    assert not wrong, "\n".join(wrong)


def test_the_differentiation_core_does_not_import_its_legacy_passes() -> None:
    legacy = ROOT / "differentiation" / "legacy"
    wrong = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in library_files("differentiation")
        if legacy not in path.parents
        for line, module in imported_modules(path)
        if module == "differentiation.legacy" or module.startswith("differentiation.legacy.")
    ]
    assert not wrong, "\n".join(wrong)


def test_sil_has_no_type_ignore() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in library_files("sil")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "type: ignore" in line
    ]
    assert not wrong, "\n".join(wrong)
