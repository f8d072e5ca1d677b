"""The instruction class is the whole schema: every registered instruction declares its text form
on itself, the parser and printer reach it through the base class, and ``sil/`` type-checks
without ``type: ignore``."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import sil.instructions  # noqa: F401  (registers every instruction)
from sil import parse, print_module
from sil.ir import Instruction
from sil.lexer import FastForm

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("opname", sorted(Instruction.registry))
def test_every_instruction_declares_parse_and_format(opname: str) -> None:
    cls = Instruction.registry[opname]
    for method in ("parse", "format"):
        declared = inspect.getattr_static(cls, method)
        assert declared is not vars(Instruction)[method], f"{cls.__name__} declares no {method}"


def test_the_base_class_refuses_what_it_cannot_parse_or_print() -> None:
    class Bare(Instruction):
        """An instruction that is never registered (no opcode) and declares no text form."""

    with pytest.raises(NotImplementedError):
        Bare.parse(None)
    with pytest.raises(NotImplementedError):
        Bare([]).format(None)
    assert Bare.parse_fast(None, None, ()) is None
    assert "" not in Instruction.registry


@pytest.mark.parametrize("opname", sorted(n for n, c in Instruction.registry.items() if c.fast_form))
def test_a_fast_form_matches_the_line_its_instruction_prints(opname: str) -> None:
    """Each declared fast form matches the canonical text of its instruction, so that printed
    modules parse back on the fused paths."""
    lines = {
        "builtin": '  %2 = builtin "fadd"(%0 : $Float, %1 : $Float) : $Float\n',
        "float_literal": "  %3 = float_literal $Float, 1.5\n",
        "function_ref": "  %4 = function_ref @f : $@convention(thin) (Float, Float) -> Float\n",
        "apply": "  %5 = apply %4(%0, %1) : $@convention(thin) (Float, Float) -> Float\n",
        "return": "  return %5 : $Float\n",
    }
    form = Instruction.registry[opname].fast_form
    assert isinstance(form, FastForm)
    line = lines[opname]
    if form.line_first:
        m = form.line_re(opname).match(line)
    else:
        m = form.tail_re().match(line, line.index(opname) + len(opname))
    assert m is not None and m.end() == len(line)
    text = "sil @f : $@convention(thin) (Float, Float) -> Float {\nbb0(%0 : $Float, %1 : $Float):\n"
    module = parse(text + "".join(lines.values()) + "}\n")
    assert print_module(module).splitlines()[2:-1] == [line.rstrip("\n") for line in lines.values()]


def test_no_type_ignore_in_sil() -> None:
    ignores = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "sil").rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"#\s*type:\s*ignore", line)
    ]
    assert ignores == []
