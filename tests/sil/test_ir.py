"""IR editing keeps use-lists right; the builder inserts where it is positioned."""

from __future__ import annotations

import ast
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from sil import print_module, verify_module
from sil.builder import Builder
from sil.instructions import BuiltinInst, FunctionRefInst, ReturnInst, TypeRuleError
from sil.ir import Block, EnumCase, EnumDecl, Function, Instruction, Module, Value, release_instructions
from sil.types import BOOL, FLOAT, FunctionType, NominalType


def check_use_lists(fn: Function) -> None:
    """Every value's ``uses`` holds exactly one entry per operand slot of a live instruction."""
    expected: dict[Value, Counter[int]] = {}
    values: set[Value] = set()
    for block in fn.blocks:
        values.update(block.args)
        for inst in block.instructions:
            assert inst.block is block
            values.update(inst.results)
            for op in inst.operands:
                values.add(op)
                expected.setdefault(op, Counter())[id(inst)] += 1
    for v in values:
        actual = Counter(id(user) for user in v.uses)
        assert actual == expected.get(v, Counter()), f"use-list of {v!r} is out of date"


def make() -> tuple[Module, Function, Block, Value, Value]:
    """``@f(x, y)`` with an empty entry block."""
    m = Module()
    fn = m.add_function(Function("f", FunctionType((FLOAT, FLOAT), FLOAT)))
    bb = fn.add_block("bb0")
    return m, fn, bb, bb.add_argument(FLOAT), bb.add_argument(FLOAT)


def ops(block: Block) -> list[str]:
    return [inst.name if isinstance(inst, BuiltinInst) else inst.opname for inst in block.instructions]


# --- replace_all_uses_with -----------------------------------------------------------------------


def test_uses_are_recorded_per_operand_slot() -> None:
    m, fn, bb, x, y = make()
    b = Builder.at_end(bb, m)
    sq = b.builtin("fmul", x, x)
    s = b.builtin("fadd", sq, y)
    b.return_(s)
    assert x.user_count() == 2
    assert x.uses == [sq.owner, sq.owner]
    assert y.uses == [s.owner]
    check_use_lists(fn)
    assert verify_module(m) == []


def test_replace_all_uses_with() -> None:
    m, fn, bb, x, y = make()
    b = Builder.at_end(bb, m)
    sq = b.builtin("fmul", x, x)
    s = b.builtin("fadd", x, sq)
    ret = b.return_(s)
    x.replace_all_uses_with(y)
    assert x.uses == []
    assert sq.owner.operands == [y, y]  # type: ignore[union-attr]
    assert s.owner.operands == [y, sq]  # type: ignore[union-attr]
    assert y.user_count() == 3
    check_use_lists(fn)
    s.replace_all_uses_with(sq)
    assert ret.operands == [sq]
    assert s.uses == []
    check_use_lists(fn)


def test_replace_with_a_value_the_user_already_uses() -> None:
    m, fn, bb, x, y = make()
    b = Builder.at_end(bb, m)
    s = b.builtin("fadd", x, y)
    b.return_(s)
    x.replace_all_uses_with(y)
    assert s.owner.operands == [y, y]  # type: ignore[union-attr]
    assert y.uses == [s.owner, s.owner]
    check_use_lists(fn)


def test_replace_with_itself_changes_nothing() -> None:
    m, fn, bb, x, _ = make()
    b = Builder.at_end(bb, m)
    sq = b.builtin("fmul", x, x)
    b.return_(sq)
    x.replace_all_uses_with(x)
    assert x.user_count() == 2
    check_use_lists(fn)


def test_replace_uses_in_terminators_across_blocks() -> None:
    m = Module()
    fn = m.add_function(Function("f", FunctionType((FLOAT, FLOAT, BOOL), FLOAT)))
    bb0, bb1, bb2 = fn.add_block("bb0"), fn.add_block("bb1"), fn.add_block("bb2")
    x, y, c = bb0.add_argument(FLOAT), bb0.add_argument(FLOAT), bb0.add_argument(BOOL)
    arg = bb2.add_argument(FLOAT)
    Builder.at_end(bb0, m).cond_br(c, bb1, [], bb2, [x])
    Builder.at_end(bb1, m).br(bb2, x)
    Builder.at_end(bb2, m).return_(arg)
    assert x.user_count() == 2
    x.replace_all_uses_with(y)
    assert x.uses == []
    assert y.user_count() == 2
    check_use_lists(fn)
    assert verify_module(m) == []


def test_replaced_value_can_then_be_erased() -> None:
    m, fn, bb, x, y = make()
    b = Builder.at_end(bb, m)
    a = b.builtin("fadd", x, y)
    c = b.builtin("fmul", a, a)
    b.return_(c)
    a.replace_all_uses_with(x)
    a.owner.erase()  # type: ignore[union-attr]
    assert ops(bb) == ["fmul", "return"]
    assert y.uses == []
    check_use_lists(fn)
    assert verify_module(m) == []


# --- set_operand ------------------------------------------------------------------------------------


def test_set_operand() -> None:
    m, fn, bb, x, y = make()
    b = Builder.at_end(bb, m)
    sq = b.builtin("fmul", x, x)
    b.return_(sq)
    inst = sq.owner
    assert inst is not None
    inst.set_operand(1, y)
    assert inst.operands == [x, y]
    assert x.uses == [inst]
    assert y.uses == [inst]
    check_use_lists(fn)
    inst.set_operand(0, y)
    assert x.uses == []
    assert y.user_count() == 2
    check_use_lists(fn)


def test_set_operand_to_the_same_value() -> None:
    m, fn, bb, x, _ = make()
    b = Builder.at_end(bb, m)
    sq = b.builtin("fmul", x, x)
    b.return_(sq)
    sq.owner.set_operand(0, x)  # type: ignore[union-attr]
    assert x.user_count() == 2
    check_use_lists(fn)


def test_set_operands_keeps_use_lists_and_leaves_a_reordering_alone() -> None:
    m, fn, bb, x, y = make()
    b = Builder.at_end(bb, m)
    other = b.builtin("fadd", y, x)
    s = b.builtin("fsub", x, y)
    b.return_(s)
    inst = s.owner
    assert isinstance(inst, Instruction)
    before = (list(x.uses), list(y.uses))
    inst.set_operands([y, x])  # the same values in other slots: no use-list changes
    assert inst.operands == [y, x] and (x.uses, y.uses) == before
    inst.set_operands([y, y])
    assert x.uses == [other.owner] and y.uses == [other.owner, inst, inst]
    check_use_lists(fn)
    inst.set_operands([other, x])
    assert y.uses == [other.owner] and other.uses[0] is inst
    check_use_lists(fn)


def test_block_arguments_are_inserted_erased_and_permuted() -> None:
    m, _, bb, x, y = make()
    z = bb.insert_arg(BOOL, 1, "z")
    assert bb.args == [x, z, y] and z.block is bb
    bb.permute_args([2, 0, 1])
    assert bb.args == [y, x, z]
    with pytest.raises(ValueError, match="not a permutation"):
        bb.permute_args([0, 0, 1])
    assert bb.args == [y, x, z]
    bb.erase_arg(z)
    assert bb.args == [y, x] and z.block is None
    Builder.at_end(bb, m).return_(x)
    with pytest.raises(ValueError, match="still has uses"):
        bb.erase_arg(x)
    assert bb.args == [y, x]


def test_a_signature_changes_with_its_entry_block_and_references() -> None:
    m, fn, bb, x, y = make()
    caller = m.add_function(Function("g", FunctionType((FLOAT, FLOAT), FLOAT)))
    cb = caller.add_block("bb0")
    a, c = cb.add_argument(FLOAT), cb.add_argument(FLOAT)
    b = Builder.at_end(cb, m)
    ref = b.function_ref(fn)
    b.return_(b.apply(ref, a, c))
    Builder.at_end(bb, m).return_(x)
    new_type = FunctionType((FLOAT,), FLOAT)
    with pytest.raises(ValueError, match="entry block"):
        fn.set_type(new_type)  # the entry block still takes two
    assert fn.type == FunctionType((FLOAT, FLOAT), FLOAT)
    bb.erase_arg(y)
    fn.set_type(new_type)
    inst = ref.owner
    assert isinstance(inst, FunctionRefInst)
    inst.retarget(new_type)
    assert inst.type is new_type and ref.type is new_type
    (call,) = ref.uses
    call.set_operands([ref, a])
    assert verify_module(m) == []
    check_use_lists(caller)


# --- erase ----------------------------------------------------------------------------------------


def test_erase_drops_operand_uses_and_leaves_the_block() -> None:
    m, fn, bb, x, y = make()
    b = Builder.at_end(bb, m)
    dead = b.builtin("fmul", x, x).owner
    live = b.builtin("fadd", x, y)
    b.return_(live)
    assert dead is not None
    dead.erase()
    assert dead.block is None
    assert dead not in bb.instructions
    assert x.uses == [live.owner]
    assert ops(bb) == ["fadd", "return"]
    check_use_lists(fn)


def test_erase_with_remaining_uses_fails_and_changes_nothing() -> None:
    m, fn, bb, x, y = make()
    b = Builder.at_end(bb, m)
    a = b.builtin("fadd", x, y)
    b.return_(a)
    with pytest.raises(ValueError, match="still has uses"):
        a.owner.erase()  # type: ignore[union-attr]
    assert a.owner in bb.instructions
    assert a.owner.block is bb
    assert x.uses == [a.owner]
    check_use_lists(fn)


def test_erase_instructions_removes_a_dead_chain_at_once() -> None:
    m, fn, bb, x, y = make()
    b = Builder.at_end(bb, m)
    a = b.builtin("fadd", x, y)
    keep = b.builtin("fsub", x, y)
    c = b.builtin("fmul", a, a)
    d = b.builtin("fneg", c)
    b.return_(keep)
    dead: set[Instruction] = {v.owner for v in (a, c, d) if v.owner is not None}
    bb.erase_instructions(dead)
    assert ops(bb) == ["fsub", "return"]
    assert all(inst.block is None for inst in dead)
    assert x.uses == [keep.owner]
    assert y.uses == [keep.owner]
    assert a.uses == []
    assert c.uses == []
    check_use_lists(fn)
    assert verify_module(m) == []


def test_erase_instructions_ignores_instructions_of_other_blocks() -> None:
    m, fn, bb, x, _ = make()
    other = fn.add_block("bb1")
    b = Builder.at_end(bb, m)
    a = b.builtin("fneg", x)
    b.return_(x)
    Builder.at_end(other, m).return_(x)
    other.erase_instructions({a.owner})  # type: ignore[arg-type]
    assert ops(bb) == ["fneg", "return"]
    assert a.owner.block is bb  # type: ignore[union-attr]
    check_use_lists(fn)


def test_batched_edits_place_insertions_and_drop_erasures_at_the_end() -> None:
    m, fn, bb, x, y = make()
    b = Builder.at_end(bb, m)
    a = b.builtin("fadd", x, y)
    c = b.builtin("fmul", a, y)
    b.return_(c)
    with fn.batched_edits():
        first = Builder.before(c.owner, m).builtin("fsub", x, y)  # type: ignore[arg-type]
        Builder.before(c.owner, m).builtin("fneg", first)  # type: ignore[arg-type]
        Builder.before(first.owner, m).builtin("fdiv", x, y)  # type: ignore[arg-type]
        c.replace_all_uses_with(a)
        c.owner.erase()  # type: ignore[union-attr]
        assert x.uses.count(a.owner) == 1 and c.owner.block is None  # type: ignore[union-attr]
        assert len(bb.instructions) == 3  # the erased one waits; the inserted ones wait too
    assert ops(bb) == ["fadd", "fdiv", "fsub", "fneg", "return"]
    assert bb.edits is None
    check_use_lists(fn)
    assert verify_module(m) == []


def test_a_retired_terminator_keeps_its_uses_until_released() -> None:
    m, fn, bb, x, y = make()
    b = Builder.at_end(bb, m)
    users = [b.builtin("fadd", x, y) for _ in range(3)]
    keep = b.builtin("fsub", x, x)
    b.return_(keep)
    old = bb.retire_terminator()
    Builder.at_end(bb, m).return_(x)
    assert old.block is bb and keep.uses == [old]  # retired: its uses wait for the release
    release_instructions([old])
    bb.erase_instructions({u.owner for u in users if u.owner is not None})
    assert ops(bb) == ["fsub", "return"]
    assert keep.uses == [] and y.uses == []
    assert x.uses == [keep.owner, keep.owner, bb.instructions[-1]]
    check_use_lists(fn)


# --- builder positions -----------------------------------------------------------------------------


def test_builder_at_end_appends() -> None:
    m, _, bb, x, _ = make()
    b = Builder.at_end(bb, m)
    b.builtin("fneg", x)
    b.builtin("sin", x)
    assert ops(bb) == ["fneg", "sin"]


def test_builder_at_start_keeps_insertion_order() -> None:
    m, fn, bb, x, _ = make()
    Builder.at_end(bb, m).return_(x)
    b = Builder.at_start(bb, m)
    first = b.builtin("fneg", x)
    b.builtin("sin", first)
    assert ops(bb) == ["fneg", "sin", "return"]
    assert all(inst.block is bb for inst in bb.instructions)
    check_use_lists(fn)


def test_builder_before() -> None:
    m, fn, bb, x, y = make()
    b = Builder.at_end(bb, m)
    a = b.builtin("fadd", x, y)
    ret = b.return_(a)
    before = Builder.before(ret, m)
    n = before.builtin("fneg", a)
    before.builtin("sin", n)
    assert ops(bb) == ["fadd", "fneg", "sin", "return"]
    before_first = Builder.before(a.owner, m)  # type: ignore[arg-type]
    before_first.builtin("cos", x)
    assert ops(bb) == ["cos", "fadd", "fneg", "sin", "return"]
    check_use_lists(fn)


def test_builder_after() -> None:
    m, fn, bb, x, y = make()
    b = Builder.at_end(bb, m)
    a = b.builtin("fadd", x, y)
    b.builtin("fsub", x, y)
    b.return_(a)
    after = Builder.after(a.owner, m)  # type: ignore[arg-type]
    n = after.builtin("fneg", a)
    after.builtin("sin", n)
    assert ops(bb) == ["fadd", "fneg", "sin", "fsub", "return"]
    check_use_lists(fn)


def test_builder_after_the_last_instruction_appends() -> None:
    m, _, bb, x, _ = make()
    b = Builder.at_end(bb, m)
    a = b.builtin("fneg", x)
    after = Builder.after(a.owner, m)  # type: ignore[arg-type]
    after.builtin("sin", x)
    after.return_(a)
    assert ops(bb) == ["fneg", "sin", "return"]


def test_built_function_verifies_and_prints() -> None:
    m, _, bb, x, y = make()
    ret = Builder.at_end(bb, m).return_(x)
    b = Builder.before(ret, m)
    s = b.builtin("fadd", x, y)
    ret.set_operand(0, s)
    assert isinstance(ret, ReturnInst)
    assert verify_module(m) == []
    assert print_module(m) == (
        "sil @f : $@convention(thin) (Float, Float) -> Float {\n"
        "bb0(%0 : $Float, %1 : $Float):\n"
        '  %2 = builtin "fadd"(%0 : $Float, %1 : $Float) : $Float\n'
        "  return %2 : $Float\n"
        "}\n"
    )


def test_builder_without_module_reports_it_needs_one() -> None:
    _, _, bb, x, _ = make()
    with pytest.raises(ValueError, match="module"):
        Builder.at_end(bb).struct_extract(x, "x")
    with pytest.raises(ValueError, match="module"):
        Builder.at_end(bb).destructure_struct(Builder.at_end(bb).struct(NominalType("P")))


def test_failed_type_rule_leaves_no_phantom_use() -> None:
    """An instruction whose result type cannot be computed is never made, so it uses nothing."""
    m, fn, bb, x, y = make()
    b = Builder.at_end(bb, m)
    pair = b.tuple(x, y)
    with pytest.raises(TypeRuleError):
        b.tuple_extract(pair, 5)
    with pytest.raises(TypeRuleError):
        b.apply(x, y)
    assert pair.uses == []
    assert x.uses == [pair.owner]
    check_use_lists(fn)
    pair.owner.erase()  # type: ignore[union-attr]


SOURCE = """sil @f : $@convention(thin) (Float) -> Float {
bb0(%x : $Float):
  %y = builtin "fneg"(%x : $Float) : $Float
  return %y : $Float
}
"""


def test_parsed_instruction_points_at_its_line_and_keeps_it_when_moved() -> None:
    from sil import parse

    m = parse(SOURCE, "f.sil")
    fn = m.functions["f"]
    neg, ret = fn.entry.instructions
    span, ret_span = neg.span, ret.span
    assert span is not None and span.source.line_col(span.start) == (3, 3)
    assert ret_span is not None and ret_span.source.line_col(ret_span.start) == (4, 3)
    ret.erase()
    assert ret.span == ret_span
    other = Function("g", fn.type)
    block = other.add_block("bb0")
    fn.entry.instructions.remove(neg)
    block.append(neg)
    assert neg.span == span


def test_results_of_one_none_and_several() -> None:
    from sil.instructions import DestructureTupleInst, TupleInst

    _, _, bb, x, y = make()
    pair = bb.append(TupleInst([x, y]))
    assert pair.results == (pair.result,) and pair.single_result is pair.result
    parts = bb.append(DestructureTupleInst([pair.result]))
    assert len(parts.results) == 2 and parts.single_result is None
    with pytest.raises(ValueError, match="2 results"):
        _ = parts.result
    ret = bb.append(ReturnInst([x]))
    assert ret.results == () and ret.single_result is None


def test_values_and_blocks_named_alike_get_the_first_free_suffix() -> None:
    m, fn, bb, x, y = make()
    b = Builder.at_end(bb, m)
    values = [b.builtin("fadd", x, y) for _ in range(5)]
    for v, name in zip(values, ["x", "x_2", "x", "x", "x"]):
        v.name = name
    x.name = "x"
    b.return_(values[-1])
    for _ in range(3):
        Builder.at_end(fn.add_block("exit"), m).return_(x)
    text = print_module(m)
    assert [line.split(" = ")[0].strip() for line in text.split("\n") if " = builtin" in line] == [
        "%x_1",
        "%x_2",
        "%x_3",
        "%x_4",
        "%x_5",
    ]
    assert [line for line in text.split("\n") if line.startswith("exit")] == ["exit:", "exit_1:", "exit_2:"]


def test_an_enum_finds_its_cases_after_they_change() -> None:
    decl = EnumDecl("E", [EnumCase("a"), EnumCase("b", FLOAT)])
    b = decl.case("b")
    assert b is not None and b.payload == FLOAT
    assert decl.case("c") is None
    decl.cases.append(EnumCase("c"))
    assert decl.case("c") is decl.cases[2]
    decl.cases = [EnumCase("b")]
    assert decl.case("a") is None and decl.case("b") is decl.cases[0]
    decl.cases.append(EnumCase("b", FLOAT))  # a duplicate: the first of the name counts
    assert decl.case("b") is decl.cases[0]
    assert list(decl.cases_by_name()) == ["b"]


# --- only the IR's API changes operands, block arguments and types ---------------------------------

_GUARDED = {"operands", "args", "type"}
_MUTATORS = {"append", "insert", "extend", "pop", "remove", "clear", "sort", "reverse", "__setitem__"}


def _guarded_field(node: ast.expr) -> ast.Attribute | None:
    """``x.operands``, ``x.args`` or ``x.type`` (of anything but ``self``), or a subscript of one."""
    if isinstance(node, ast.Subscript):
        node = node.value
    if not isinstance(node, ast.Attribute) or node.attr not in _GUARDED:
        return None
    return None if isinstance(node.value, ast.Name) and node.value.id == "self" else node


def ir_field_edits(tree: ast.AST) -> list[tuple[int, str]]:
    """Each line that assigns, deletes or mutates in place a guarded field, and what it writes."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign | ast.Delete):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _MUTATORS
        ):
            targets = [node.func.value]
        for target in targets:
            for part in target.elts if isinstance(target, ast.Tuple | ast.List) else [target]:
                if _guarded_field(part) is not None:
                    found.append((node.lineno, ast.unparse(part)))
    return sorted(found)


def test_the_guard_sees_every_way_of_writing_a_field() -> None:
    code = (
        "fn.type = t\nentry.args = a[:2]\nuser.operands[1:] = x\nref.result.type = t\n"
        "block.args.append(v)\ndel inst.operands[0]\na, b.args = p\nself.type = t\nx = y.type\n"
    )
    assert [line for line, _ in ir_field_edits(ast.parse(code))] == [1, 2, 3, 4, 5, 6, 7]


def test_no_module_outside_the_ir_assigns_operands_arguments_or_types() -> None:
    """Passes change IR through ``set_operand(s)``, ``replace_all_uses_with``, ``Block.insert_arg``,
    ``erase_arg``, ``permute_args``, ``Function.set_type`` and ``FunctionRefInst.retarget``, which
    keep use-lists right; an object's own methods may set its own fields (``self.type``)."""
    root = Path(__file__).resolve().parents[2]
    listed = subprocess.run(["git", "ls-files", "*.py"], cwd=root, capture_output=True, text=True, check=True)
    offenders = [
        f"{name}:{line}: {text}"
        for name in listed.stdout.split()
        if name != "sil/ir.py" and (root / name).exists()
        for line, text in ir_field_edits(ast.parse((root / name).read_text(), name))
    ]
    assert len(listed.stdout.split()) > 100
    assert offenders == []
