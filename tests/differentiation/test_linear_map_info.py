"""The plan of a derivative's records (``differentiation/linear_map_info.py``), made before any code
is emitted: which fields each record has, which records exist, and what each rule declares it
saves. The golden cases check the plans of the shapes they cover through the output; these check
the plan itself, where a saved value is left out, and the declarations the plan relies on."""

from __future__ import annotations

import itertools
import math

import pytest

from analysis.activity import Config, analyze_activity
from differentiation.forward import FORWARD
from differentiation.linear_map_info import LinearMapInfo, Mode
from differentiation.reverse import REVERSE
from differentiation.rules import RESULT, RULES
from differentiation.visitors import InstructionVisitor
from sil import parse, print_module
from sil.builder import Builder
from sil.diagnostics import SILError
from sil.ir import Function, Module
from sil.types import BOOL, DOUBLE, FLOAT, INT, TENSOR_SHAPE, FunctionType, TensorType, Type
from tests.differentiation.test_control_flow import NO_DERIVATIVE_FIELD_ACROSS_BLOCKS, differentiated_text

MODES = {"reverse": REVERSE, "forward": FORWARD}


def plan(
    text: str, mode: Mode, fn: str = "f", sources: tuple[int, ...] = (0,), wrt: tuple[int, ...] = (0,)
) -> LinearMapInfo:
    module = parse(text, "test.sil")
    function = module.functions[fn]
    config = Config(sources, wrt)
    return LinearMapInfo(module, function, config, analyze_activity(module, function, config), mode)


def fields(info: LinearMapInfo) -> dict[str, list[str] | None]:
    """Each block's record's fields by name (None: the block keeps no record)."""
    return {r.label: [f.name for f in r.decl.fields] if r.present else None for r in info.records.values()}


TUPLE_WITH_A_CONSTANT = """
sil [differentiable source 0 wrt 0] @f : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  %c = float_literal $Double, 2.0
  %t = tuple (%c : $Double, %x : $Double)
  %u = tuple_extract %t : $(Double, Double), 0
  %v = tuple_extract %t : $(Double, Double), 1
  %r = builtin "fmul"(%u : $Double, %v : $Double) : $Double
  return %r : $Double
}
"""


@pytest.mark.parametrize("mode", MODES)
def test_the_plan_is_made_without_emitting_anything(mode: str) -> None:
    module = parse(TUPLE_WITH_A_CONSTANT, "test.sil")
    before = print_module(module)
    fn = module.functions["f"]
    config = Config((0,), (0,))
    info = LinearMapInfo(module, fn, config, analyze_activity(module, fn, config), MODES[mode])
    assert print_module(module) == before
    # %u takes the constant's element: its tangent is zero and its cotangent goes nowhere, so
    # fmul's partial for %v (which is %u) is read, and its partial for %u (%v) is not.
    assert fields(info) == {"bb0": ["u"]}


def test_a_zero_tangent_operand_reads_no_partial_and_the_others_read_their_own() -> None:
    """fmul(u, v) with u's tangent zero: dv times u, not times v (the partial of the other slot)."""
    program = differentiated_text(
        TUPLE_WITH_A_CONSTANT.replace('"fmul"(%u : $Double, %v', '"fmul"(%v : $Double, %u')
    )
    _, differential = program.run("@AD__f__jvp_src_0_wrt_0", 3.0)
    assert differential(0.5) == pytest.approx(1.0)  # d(2 x) = 2 dx
    program = differentiated_text(TUPLE_WITH_A_CONSTANT)
    _, differential = program.run("@AD__f__jvp_src_0_wrt_0", 3.0)
    assert differential(0.5) == pytest.approx(1.0)


POW_OF_A_CONSTANT = TUPLE_WITH_A_CONSTANT.replace('"fmul"', '"pow"')


def test_pow_with_a_zero_tangent_base_differentiates_the_exponent() -> None:
    program = differentiated_text(POW_OF_A_CONSTANT)  # 2 ** x
    x = 1.5
    _, differential = program.run("@AD__f__jvp_src_0_wrt_0", x)
    assert differential(1.0) == pytest.approx(2**x * math.log(2))
    _, pullback = program.run("@AD__f__vjp_src_0_wrt_0", x)
    assert pullback(1.0) == pytest.approx(2**x * math.log(2))


MEAN = """
sil [differentiable source 0 wrt 0] @f : $@convention(thin) (Tensor<Double>) -> Double {
bb0(%t : $Tensor<Double>):
  %m = builtin "mean"(%t : $Tensor<Double>) : $Double
  return %m : $Double
}
"""

FILL = """
sil [differentiable source 0 wrt 0] @f : $@convention(thin) (Double, Int) -> Double {
bb0(%v : $Double, %n : $Int):
  %t = builtin "fill"(%v : $Double, %n : $Int) : $Tensor<Double>
  %s = builtin "sum"(%t : $Tensor<Double>) : $Double
  return %s : $Double
}
"""


def test_a_value_only_the_other_mode_reads_is_not_kept() -> None:
    # mean's pullback spreads the seed over a tensor shaped like its operand, so it keeps the
    # operand's shape, not the operand; its differential, linear, needs nothing.
    assert fields(plan(MEAN, REVERSE)) == {"bb0": ["t_shape"]}
    assert fields(plan(MEAN, FORWARD)) == {"bb0": []}
    # fill's differential fills a tensor of the same shape (its dims); its pullback sums the seed,
    # and sum's pullback spreads the seed over its tensor's shape, which sum's differential does not
    # need.
    assert fields(plan(FILL, FORWARD)) == {"bb0": ["n"]}
    assert fields(plan(FILL, REVERSE)) == {"bb0": ["t_shape"]}


def test_a_partial_of_a_no_derivative_field_is_not_kept_by_the_pullback() -> None:
    text = NO_DERIVATIVE_FIELD_ACROSS_BLOCKS
    # sin's partial would only carry the cotangent of the @noDerivative field, which none has.
    assert fields(plan(text, REVERSE)) == {"bb0": None, "bb1": ["k"]}
    # The differential counts every tangent a block ends with as used (the next block's code may
    # take it), as the records were trimmed before planning: the partial stays in bb0's record.
    assert fields(plan(text, FORWARD)) == {"bb0": ["partial_0"], "bb1": ["pred", "k"]}


T = TensorType(DOUBLE)
SIGNATURES: dict[str, tuple[list[Type], Type]] = {
    "fill": ([DOUBLE, INT, INT], TensorType(DOUBLE)),
    "broadcast_to": ([T, TENSOR_SHAPE], T),
    "reshape": ([T, INT, INT], T),
    "unbroadcast": ([T, TENSOR_SHAPE], T),
    "expand_dims": ([T, INT], T),
    "sum_axis": ([T, INT], T),
    "element": ([T, INT, INT], DOUBLE),
    "with_element": ([T, DOUBLE, INT], T),
    "select": ([BOOL, DOUBLE, DOUBLE], DOUBLE),
    "sum": ([TensorType(DOUBLE)], DOUBLE),
    "mean": ([TensorType(DOUBLE)], DOUBLE),
    "scalar_from_tensor": ([TensorType(DOUBLE)], DOUBLE),
    "matmul": ([TensorType(DOUBLE)] * 2, TensorType(DOUBLE)),
    "transpose": ([TensorType(DOUBLE)], TensorType(DOUBLE)),
    "tensor_from_scalar": ([DOUBLE], TensorType(DOUBLE)),
    "fpext": ([FLOAT], DOUBLE),
    "fptrunc": ([DOUBLE], FLOAT),
    **{name: ([DOUBLE, DOUBLE], DOUBLE) for name in ("fadd", "fsub", "fmul", "fdiv", "pow", "fmin", "fmax")},
}


@pytest.mark.parametrize("name", sorted(RULES))
def test_each_rule_saves_what_it_declares(name: str) -> None:
    """For every pattern of needed operands, ``save`` fills exactly the slots ``keeps`` declares,
    with the operand or the result they name, or a partial of the result's type."""
    types, result = SIGNATURES.get(name, ([DOUBLE], DOUBLE))
    rule = RULES[name]
    keeps = rule.keeps(types)
    # Only Float, Double and tensor operands have derivatives; the others are never needed.
    tangent = [t in (FLOAT, DOUBLE) or isinstance(t, TensorType) for t in types]
    for pattern in itertools.product([True, False], repeat=sum(tangent)):
        if not any(pattern):  # an instruction no derivative flows through is not differentiated
            continue
        flags = iter(pattern)
        needed = [next(flags) if has else False for has in tangent]
        module = Module()
        fn = module.add_function(Function("f", FunctionType(tuple(types), result)))
        block = fn.add_block("bb0")
        ops = [block.add_argument(t) for t in types]
        b = Builder.at_end(block, module)
        r = b.builtin(name, *ops, type=result)
        saved = rule.save(b, ops, r, needed)
        assert len(saved) == len(keeps), (name, needed)
        for kept, value in zip(keeps, saved):
            if not any(needed[i] for i in kept.serves) or kept.shape:  # the emitter makes shapes
                assert value is None, (name, needed, kept)
            elif kept.source == RESULT:
                assert value is r
            elif kept.source is not None:
                assert value is ops[kept.source]
            else:
                assert value is not None and value.type == r.type and value not in ops and value is not r


def test_linear_rules_save_nothing() -> None:
    for name in ("fneg", "fadd", "fsub", "fpext", "fptrunc", "transpose", "tensor_from_scalar"):
        assert RULES[name].keeps([DOUBLE, DOUBLE]) == ()


def test_an_instruction_no_visit_handles_is_reported_where_it_is() -> None:
    module = parse(TUPLE_WITH_A_CONSTANT, "test.sil")
    inst = module.functions["f"].blocks[0].instructions[1]

    class Nothing(InstructionVisitor):
        pass

    with pytest.raises(SILError, match="cannot differentiate 'tuple' yet") as error:
        Nothing().visit(inst)
    assert error.value.diagnostics[0].span == inst.span is not None
