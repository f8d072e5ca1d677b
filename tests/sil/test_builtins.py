"""``sil.builtins.BUILTINS`` is the one list of builtin names: every other layer keeps tables keyed
by those names (and only those), and no module outside ``sil/builtins.py`` lists names again."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from accel.backend import OPERATIONS
from differentiation.rules import ELEMENTWISE_BINARY, RULES
from interp.semantics import SCALAR_TEMPLATES
from sil.builtins import BUILTINS, elementwise_builtins

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sil", "analysis", "differentiation", "accel", "interp", "silopt")


@pytest.mark.parametrize(
    ("table", "keys"),
    [
        ("accel.backend.OPERATIONS", set(OPERATIONS)),
        ("differentiation.rules.RULES", set(RULES)),
        *[(f"interp.semantics.SCALAR_TEMPLATES[{t}]", set(v)) for t, v in SCALAR_TEMPLATES.items()],
    ],
)
def test_every_table_is_keyed_by_builtins(table: str, keys: set[str]) -> None:
    assert keys, f"{table} is empty"
    assert sorted(keys - set(BUILTINS)) == [], f"{table} names builtins sil.builtins does not have"


def test_the_views_of_other_layers_agree_with_the_table() -> None:
    assert elementwise_builtins(1) == tuple(n for n, kind in OPERATIONS.items() if kind == "unary")
    assert elementwise_builtins(2) == tuple(n for n, kind in OPERATIONS.items() if kind == "binary")
    assert elementwise_builtins(2) == ELEMENTWISE_BINARY


def name_lists(tree: ast.AST) -> list[tuple[int, list[str]]]:
    """Each tuple, list or set literal of two or more strings that are all builtin names."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple | ast.List | ast.Set) and len(node.elts) >= 2:
            names = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if len(names) == len(node.elts) and all(n in BUILTINS for n in names):
                found.append((node.lineno, names))
    return found


def test_the_scan_finds_a_list_of_names() -> None:
    code = 'A = ("fadd", "fsub")\nB = {"fadd": 1, "fsub": 2}\nC = ["x", "fadd"]\n'
    code += 'D = frozenset({"sdiv", "srem"})\n'
    assert [line for line, _ in name_lists(ast.parse(code))] == [1, 4]


def test_no_module_lists_builtin_names_again() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {names}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.relative_to(ROOT).as_posix() != "sil/builtins.py"
        for line, names in name_lists(ast.parse(path.read_text()))
    ]
    assert offenders == []
