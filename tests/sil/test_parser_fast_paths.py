"""The parser's fused fast paths (a whole builtin line; the rest of a float_literal, return,
function_ref or apply line, each declared by its instruction class as its ``fast_form``; a plain
block label; a function head at once) must parse exactly what
the general path parses: the same module, and errors at the same places. Each case is written
twice: canonically, which takes the fast paths, and with comments and line breaks between tokens,
which they do not match. A differential test also parses every golden input, and mutants of
each, with the fused paths switched off, and compares."""

from __future__ import annotations

import random
import re

import pytest

import sil.parser
from sil import parse, print_module
from sil.diagnostics import SILError
from sil.ir import Instruction
from sil.lexer import FUNCTION_LINE_RE, LABEL_LINE_RE, LINE_HEAD_RE, PLAIN_ARGUMENTS_RE
from sil.parser import FastPaths, fast_paths
from tests.test_fuzz_silopt import CORPUS, mutate, tokenize

CANONICAL = """\
sil @f : $@convention(thin) (Double, Double) -> Double {
bb0(%x : $Double, %y : $Double):
  %s = builtin "fadd"(%x : $Double, %y : $Double) : $Double
  %n = builtin "fneg_FPIEEE64"(%s : $Double) : $Double  // a suffixed name
  %t = builtin "fmul"(%n : $Double, %later : $Double) : $Double
  %later = builtin "sin"(%x : $Double) : $Double
  %c = float_literal $Double, -2.5e-1
  %tc = builtin "fmul"(%t : $Double, %c : $Double) : $Double
  %g = function_ref @g : $@convention(thin) (Double) -> Double  // the callee
  %u = apply %g(%tc) : $@convention(thin) (Double) -> Double\t
  br bb1(%u : $Double)
bb1(%r : $Double):
  return %r : $Double
}

sil @g : $@convention(thin) (Double) -> Double {
bb0(%v : $Double):
  return %v : $Double
}
"""

SPREAD = """\
sil @f : $@convention(thin) (Double, Double) -> Double {
bb0(%x : $Double, // the first
    %y : $Double):
  %s = builtin "fadd"(%x : $Double,
                      %y : $Double) : $Double
  %n = builtin "fneg_FPIEEE64" // a suffixed name
    (%s : $Double) : $Double
  %t = builtin "fmul"(%n : $Double, %later
    : $Double) : $Double
  %later = builtin "sin"(%x : $Double)
    : $Double
  %c = float_literal $Double,
    -2.5e-1
  %tc = builtin "fmul"(%t : $Double, %c
    : $Double) : $Double
  %g = function_ref @g // the callee
    : $@convention(thin) (Double) -> Double
  %u = apply %g(
    %tc) : $@convention(thin) (Double) -> Double
  br bb1(%u : $Double)
bb1(%r // the result
   : $Double):
  return %r
    : $Double
}

// the callee
sil @g :
    $@convention(thin) (Double) -> Double {
bb0(%v :
    $Double):
  return // the argument
    %v : $Double
}
"""


def test_the_canonical_lines_take_the_fused_paths() -> None:
    """Each line of CANONICAL but the branch and the first function's (whose type is not spelled
    before it) is matched whole by a fused pattern, so that the tests below compare the fused
    paths with the general one."""
    lines = [line + "\n" for line in CANONICAL.splitlines() if line and line != "}" and "br " not in line]
    assert lines[0].startswith("sil @f") and FUNCTION_LINE_RE.match(lines[0])
    for line in lines[1:]:
        if line.startswith("sil "):
            fused = FUNCTION_LINE_RE.match(line)
        elif line.startswith("bb"):
            fused = LABEL_LINE_RE.match(line)
            assert fused is not None and PLAIN_ARGUMENTS_RE.fullmatch(fused.group(2))
        else:
            head = LINE_HEAD_RE.match(line)
            assert head is not None
            tail = fast_paths().tails.get(head.group(2))
            fused = fast_paths().line.match(line) or (tail[0].match(line, head.end()) if tail else None)
        assert fused is not None and fused.end() == len(line), line
    # SPREAD's second function, whose type is spelled before it, is not written as one line.
    assert all(not FUNCTION_LINE_RE.match(line) for line in SPREAD.splitlines(keepends=True)[1:])


def test_fast_and_general_paths_parse_the_same_module() -> None:
    fast, general = parse(CANONICAL, "fast.sil"), parse(SPREAD, "spread.sil")
    assert print_module(fast) == print_module(general)
    assert [i.name for i in fast.functions["f"].blocks[0].instructions[:4]] == ["fadd", "fneg", "fmul", "sin"]


def assert_one_error(bad: str, message: str, at: str) -> None:
    """Parsing ``bad`` reports exactly ``message``, at the text that starts with ``at``."""
    with pytest.raises(SILError) as e:
        parse(bad, "bad.sil")
    (d,) = e.value.diagnostics
    assert d.message == message
    assert d.span is not None
    assert bad[d.span.start :].startswith(at)


@pytest.mark.parametrize("text", [CANONICAL, SPREAD], ids=["fast", "general"])
def test_an_argument_of_the_wrong_type_is_reported_at_the_argument(text: str) -> None:
    bad = text.replace("(thin) (Double) -> Double", "(thin) (Float) -> Double")
    bad = re.sub(r"bb0\(%v :(\s*)\$Double\)", r"bb0(%v :\1$Float)", bad)
    assert_one_error(bad, "'%tc' has type Double, but is used here as Float", "%tc)")


@pytest.mark.parametrize("text", [CANONICAL, SPREAD], ids=["fast", "general"])
def test_an_operand_of_the_wrong_type_is_reported_at_the_operand(text: str) -> None:
    bad = text.replace('"fadd"(%x : $Double', '"fadd"(%x : $Float')
    assert_one_error(bad, "'%x' has type Double, but is used here as Float", "%x : $Float")


@pytest.mark.parametrize("text", [CANONICAL, SPREAD], ids=["fast", "general"])
def test_a_redefinition_is_reported_at_the_second_definition(text: str) -> None:
    bad = text.replace("%later = builtin", "%s = builtin")
    assert_one_error(bad, "redefinition of value '%s'", '%s = builtin "sin"')


@pytest.mark.parametrize("text", [CANONICAL, SPREAD], ids=["fast", "general"])
def test_a_block_redefinition_is_reported_at_the_second_label(text: str) -> None:
    bad = text.replace(
        "  br bb1(%u : $Double)\n", "  br bb0(%u : $Double)\nbb0(%z : $Double):\n  br bb1(%z : $Double)\n"
    )
    assert_one_error(bad, "redefinition of block 'bb0'", "bb0(%z")


@pytest.mark.parametrize("text", [CANONICAL, SPREAD], ids=["fast", "general"])
def test_a_function_redefinition_is_reported_at_its_name(text: str) -> None:
    bad = text.replace("sil @g", "sil @f")
    assert_one_error(
        bad,
        "redefinition of function '@f'",
        "@f :\n" if text is SPREAD else "@f : $@convention(thin) (Double)",
    )


@pytest.mark.parametrize("label", ["apply(%v : $Double):", "apply(%v :\n  $Double):"])
def test_an_opcode_with_arguments_is_no_entry_label(label: str) -> None:
    bad = f"sil @h : $@convention(thin) (Double) -> Double {{\n{label}\n  return %v : $Double\n}}\n"
    assert_one_error(bad, "expected a block label before 'apply'", "apply(")


@pytest.mark.parametrize("spelling", ["Tensor", "Double, %w : $Tensor"])
def test_a_plain_label_argument_of_a_bad_type_is_reported_at_the_type(spelling: str) -> None:
    head = "sil @h : $@convention(thin) (Double) -> Double {"
    bad = f"{head}\nbb0(%v : ${spelling}):\n  return %v : $Double\n}}\n"
    assert_one_error(bad, "Tensor needs an element type: 'Tensor<Float>' or 'Tensor<Double>'", "Tensor)")


@pytest.mark.parametrize("call", ["apply %h(%x, %y)", "apply %h(%x,\t%y)", "apply %h(\n  %x, %y)"])
def test_a_later_argument_of_the_wrong_type_is_reported_at_it(call: str) -> None:
    fn_type = "$@convention(thin) (Double, Float) -> Double"
    bad = (
        f"sil @h : {fn_type}\n\n"
        "sil @f : $@convention(thin) (Double, Double) -> Double {\n"
        "bb0(%x : $Double, %y : $Double):\n"
        f"  %h = function_ref @h : {fn_type}\n"
        f"  %r = {call} : {fn_type}\n"
        "  return %r : $Double\n"
        "}\n"
    )
    assert_one_error(bad, "'%y' has type Double, but is used here as Float", "%y)")


def outcome(text: str) -> str:
    """The printed module, or every diagnostic of the error, rendered."""
    try:
        return print_module(parse(text, "in.sil"))
    except SILError as e:
        return "".join(d.render() for d in e.diagnostics)


def respace(text: str, r: random.Random) -> str:
    """``text`` with its lines spaced otherwise: runs of spaces become spaces or tabs of another
    length, and some lines end in spaces, a comment or a carriage return."""
    lines = []
    for line in text.split("\n"):
        line = re.sub(r" +", lambda _: r.choice([" ", " ", "  ", "\t", " \t"]), line)
        roll = r.random()
        if roll < 0.1:
            line += r.choice([" ", "\t", "  // a comment", "\r"])
        elif roll < 0.15:
            line = ""
        lines.append(line)
    return "\n".join(lines)


def switch_off_fused_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every fused pattern fail, so that the parser takes its general path only."""
    never = re.compile(r"(?!)")
    for pattern in ("FUNCTION_LINE_RE", "LABEL_LINE_RE", "LINE_HEAD_RE"):
        monkeypatch.setattr(sil.parser, pattern, never)
    monkeypatch.setattr(sil.parser, "fast_paths", lambda: FastPaths({}))


def test_the_fast_paths_come_from_the_instruction_classes() -> None:
    """The parser names no instruction: its fused paths are the ``fast_form`` of the registered
    classes, the builtin line the one matched first."""
    paths = fast_paths()
    declared = {name for name, cls in Instruction.registry.items() if cls.fast_form is not None}
    assert declared == {"builtin", "float_literal", "return", "function_ref", "apply"}
    assert paths.line_class.opname == "builtin"
    assert set(paths.tails) == declared - {"builtin"}
    assert all(cls.opname == name for name, (_, cls, _) in paths.tails.items())


def test_golden_inputs_and_mutants_parse_alike_with_the_fused_paths_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r = random.Random(2026)
    texts = []
    for path in CORPUS:
        text = path.read_text()
        tokens = tokenize(text)
        texts += [text, respace(text, r), respace(text, r)]
        texts += [mutate(tokens, r) for _ in range(4)]
    fast = [outcome(text) for text in texts]
    switch_off_fused_paths(monkeypatch)
    general = [outcome(text) for text in texts]
    differ = [(text, f, g) for text, f, g in zip(texts, fast, general) if f != g]
    assert not differ, f"{len(differ)} of {len(texts)} inputs differ; the first:\n{differ[0][0]}"
    assert sum(not f.startswith("in.sil:") for f in fast) > len(CORPUS)  # many parse, not only errors


VOID = "sil @f : $@convention(thin) () -> () {\n"
S1 = "$@convention(thin) (Float) -> (Float, Float)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A label's errors come in the general path's order: the block, then each argument.
        (
            VOID + "bb0:\n  unreachable\nbb0(%a : $Tensor):\n  unreachable\n}\n",
            "4:1: error: redefinition of block",
        ),
        (
            "sil @f : $@convention(thin) (Float) -> () {\nbb0(%a : $Float):\n  br bb1(%a : $Float)\n"
            "bb1(%a : $Float, %b : $Tensor):\n  unreachable\n}\n",
            "4:5: error: redefinition of value '%a'",
        ),
        # An opcode is no label unless ':' follows it at once.
        (VOID + "return :\n  unreachable\n}\n", "2:1: error: expected a block label before 'return'"),
        (VOID + "return\t:\n  unreachable\n}\n", "2:1: error: expected a block label before 'return'"),
        # A type ends with its line: an arrow on the next line starts no function type, whether
        # the type's spelling was seen before or not.
        (
            f"sil @g : {S1}\nsil @f : {S1} {{\nbb0(%0 : $Float):\n"
            f'  %1 = function_ref @"g" : {S1}\n  -> x\n  unreachable\n}}\n',
            "5:3: error: expected an instruction, found '->'",
        ),
        (
            f"sil @f : {S1} {{\nbb0(%0 : $Float):\n"
            f"  %1 = function_ref @f : {S1}\n  -> x\n  unreachable\n}}\n",
            "4:3: error: expected an instruction, found '->'",
        ),
    ],
)
def test_edge_cases_fail_alike_on_both_paths(
    text: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = outcome(text)
    assert fast.startswith(f"in.sil:{expected}"), fast
    switch_off_fused_paths(monkeypatch)
    assert outcome(text) == fast


def test_only_one_instruction_is_matched_first_on_every_line() -> None:
    builtin = Instruction.registry["builtin"]
    with pytest.raises(ValueError, match="cannot be matched first on every line"):
        FastPaths({"builtin": builtin, "builtin_again": builtin})
