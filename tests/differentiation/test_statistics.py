"""What ``ADStatistics`` collects while the passes differentiate (``--ad-stats``), checked against
counts made independently: instructions and zeros read from the printed module, records from
their declarations, and what a context without statistics does (nothing)."""

from __future__ import annotations

import re

from analysis.activity import Config
from differentiation.differentiator import Differentiator
from differentiation.passes import Differentiation, LowerGradient
from differentiation.statistics import ADStatistics, DerivativeStats, ZeroCounts
from sil import parse, print_module
from sil.ir import Module
from sil.passes import PassManager

# @f keeps %c's zero adjoint symbolic (only element 0 of the pair reaches the result); @loop's
# pullback and differential pass zeros along the loop's edges; @call differentiates a call.
PROGRAM = """\
sil [differentiable source 0 wrt 0, 1] @f : $@convention(thin) (Double, Double) -> Double {
bb0(%x : $Double, %y : $Double):
  %s = builtin "sin"(%x : $Double) : $Double
  %p = builtin "fmul"(%s : $Double, %y : $Double) : $Double
  %c = builtin "fmul"(%x : $Double, %y : $Double) : $Double
  %pair = tuple (%p : $Double, %c : $Double)
  %r = tuple_extract %pair : $(Double, Double), 0
  return %r : $Double
}

sil [differentiable source 0 wrt 0] @loop : $@convention(thin) (Double, Int) -> Double {
bb0(%x : $Double, %n : $Int):
  %one = float_literal $Double, 1.0
  %zero = integer_literal $Int, 0
  br bb1(%zero : $Int, %one : $Double)
bb1(%i : $Int, %acc : $Double):
  %more = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  cond_br %more, bb2, bb3
bb2:
  %next = builtin "fmul"(%acc : $Double, %x : $Double) : $Double
  %step = integer_literal $Int, 1
  %i1 = builtin "add"(%i : $Int, %step : $Int) : $Int
  br bb1(%i1 : $Int, %next : $Double)
bb3:
  return %acc : $Double
}

sil [differentiable source 0 wrt 0] @call : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  %f = function_ref @f : $@convention(thin) (Double, Double) -> Double
  %y = apply %f(%x, %x) : $@convention(thin) (Double, Double) -> Double
  return %y : $Double
}
"""


def differentiated(text: str, *passes: str) -> tuple[Module, ADStatistics]:
    module = parse(text)
    statistics = ADStatistics()
    chosen = {"differentiation": Differentiation(), "lower-gradient": LowerGradient()}
    for p in chosen.values():
        p.statistics = statistics
    PassManager([chosen[name] for name in passes or ("differentiation",)]).run(module)
    return module, statistics


def bodies(printed: str) -> dict[str, list[str]]:
    """Each function's body lines in printed text, by name: instructions are indented, block
    labels are not."""
    found: dict[str, list[str]] = {}
    for match in re.finditer(r"^sil (?:\[[^\n]*\] )?@(\w+) [^\n]*\{\n(.*?)^\}", printed, re.M | re.S):
        found[match.group(1)] = match.group(2).splitlines()
    return found


def everything(statistics: ADStatistics) -> list[DerivativeStats]:
    return [d for r in statistics.requests.values() for d in r.made]


def test_instruction_and_block_counts_match_the_printed_module() -> None:
    module, statistics = differentiated(PROGRAM)
    printed = bodies(print_module(module))
    made = everything(statistics)
    assert len(made) == 6  # the JVPs and VJPs of @f, @loop, @call: each once
    for d in made:
        for name, count, blocks in zip(
            (d.original, d.derivative, d.linear_map), d.instructions, d.blocks, strict=True
        ):
            lines = printed[name]
            assert count == sum(line.startswith("  ") for line in lines), name
            assert blocks == sum(not line.startswith(" ") for line in lines), name


def test_requests_group_what_was_made_for_them() -> None:
    _, statistics = differentiated(PROGRAM)
    requests = list(statistics.requests.values())
    assert [(r.form, r.original) for r in requests] == [
        ("[differentiable]", "f"),
        ("[differentiable]", "loop"),
        ("[differentiable]", "call"),
    ]
    # @call's attribute comes after @f's: @f's derivatives (wrt 0, 1) were made for @f's request,
    # and @call's calls @f for both arguments too, so nothing more is made for @call.
    assert [(d.kind, d.original) for d in requests[2].made] == [("jvp", "call"), ("vjp", "call")]
    assert requests[2].answers == {"jvp": "AD__call__jvp_src_0_wrt_0", "vjp": "AD__call__vjp_src_0_wrt_0"}


def test_records_are_the_planned_declarations() -> None:
    module, statistics = differentiated(PROGRAM)
    for d in everything(statistics):
        for record in d.records:
            if record.name is None:  # not declared: no type of the module is this block's record
                prefix = f"_AD__{d.original}_{record.block}__{'PB' if d.kind == 'vjp' else 'DF'}__"
                assert not any(n.startswith(prefix) for n in module.types)
                continue
            decl = module.struct(record.name)
            assert decl is not None
            assert [(f.name, f.type) for f in decl.fields] == [(f.name, f.type) for f in record.fields]
    loop = next(d for d in everything(statistics) if d.original == "loop" and d.kind == "vjp")
    assert [(lp.header, lp.blocks, lp.latches, lp.parent) for lp in loop.loops] == [
        ("bb1", ("bb1", "bb2"), ("bb2",), None)
    ]


def zero_literals(printed: dict[str, list[str]], name: str) -> int:
    return sum(
        re.search(r'float_literal \$\w+, 0\.0$|builtin "zeros"', line) is not None for line in printed[name]
    )


def test_materialized_zeros_are_the_zeros_the_linear_maps_build() -> None:
    module, statistics = differentiated(PROGRAM)
    printed = bodies(print_module(module))
    for d in everything(statistics):
        assert d.zeros.materialized == zero_literals(printed, d.linear_map), d.linear_map
    f = next(d for d in everything(statistics) if d.original == "f" and d.kind == "vjp")
    assert f.zeros == ZeroCounts(symbolic=1, materialized=0)


UNUSED_SECOND = """\
sil [differentiable source 0 wrt 0, 1] @g : $@convention(thin) (Double, Double) -> Double {
bb0(%x : $Double, %y : $Double):
  %xx = builtin "fmul"(%x : $Double, %x : $Double) : $Double
  %c = builtin "fmul"(%x : $Double, %y : $Double) : $Double
  %pair = tuple (%xx : $Double, %c : $Double)
  %r = tuple_extract %pair : $(Double, Double), 0
  return %r : $Double
}
"""


def test_a_zero_forced_to_exist_is_counted_materialized() -> None:
    """The same function, but @g's result no longer reads %y: %y's adjoint, kept symbolic as long
    as nothing needed a value, must be returned, so a zero is built for it."""
    uses_y = UNUSED_SECOND.replace('"fmul"(%x : $Double, %x : $Double)', '"fmul"(%x : $Double, %y : $Double)')
    (before,) = [d.zeros for d in everything(differentiated(uses_y)[1]) if d.kind == "vjp"]
    (after,) = [d.zeros for d in everything(differentiated(UNUSED_SECOND)[1]) if d.kind == "vjp"]
    assert before == ZeroCounts(symbolic=1, materialized=0)
    assert after == ZeroCounts(symbolic=1, materialized=1)


def test_a_differential_counts_a_zero_tangent_it_leaves_out() -> None:
    text = """\
struct P : Differentiable {
  var a: Double
  var b: Double
}

sil [differentiable source 0 wrt 0] @h : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  %one = float_literal $Double, 1.0
  %p = struct $P (%x : $Double, %one : $Double)
  (%a, %b) = destructure_struct %p : $P
  %q = builtin "fadd"(%a : $Double, %b : $Double) : $Double
  return %q : $Double
}
"""
    (jvp,) = [d for d in everything(differentiated(text)[1]) if d.kind == "jvp"]
    assert jvp.zeros == ZeroCounts(symbolic=1, materialized=0)  # %b's tangent, handed over as absent


def test_a_gradient_seen_by_both_passes_is_one_request() -> None:
    text = (
        PROGRAM.split("\n\n")[0]
        + """

sil @main : $@convention(thin) (Double, Double) -> (Double, Double) {
bb0(%x : $Double, %y : $Double):
  %f = function_ref @f : $@convention(thin) (Double, Double) -> Double
  %g = gradient [wrt 0, 1] %f : $@convention(thin) (Double, Double) -> Double
  %d = apply %g(%x, %y) : $@convention(thin) (Double, Double) -> (Double, Double)
  return %d : $(Double, Double)
}
"""
    )
    _, statistics = differentiated(text, "differentiation", "lower-gradient")
    requests = list(statistics.requests.values())
    assert [(r.form, r.original) for r in requests] == [("[differentiable]", "f"), ("gradient", "f")]
    gradient = requests[1]
    assert gradient.made == []  # the attribute's VJP answers it
    assert gradient.answers == {"vjp": "AD__f__vjp_src_0_wrt_0_1", "gradient": "AD__f__grad_src_0_wrt_0_1"}
    assert [(s.what, s.name) for s in gradient.synthesized] == [
        ("gradient function", "AD__f__grad_src_0_wrt_0_1")
    ]


def test_statistics_change_nothing_the_passes_make() -> None:
    """The passes keep no statistics unless given an ``ADStatistics``; given one, they make the
    same module."""
    assert Differentiation().statistics is None and LowerGradient().statistics is None
    plain = parse(PROGRAM)
    PassManager([Differentiation()]).run(plain)
    counted, statistics = differentiated(PROGRAM)
    assert print_module(counted) == print_module(plain)
    assert statistics.module is counted


def test_a_context_used_without_a_request_files_its_derivatives_apart() -> None:
    module = parse(PROGRAM)
    statistics = ADStatistics()
    Differentiator(module, statistics).vjp(module.functions["loop"], Config((0,), (0,)))
    (request,) = statistics.requests.values()
    assert request.form == "derivatives" and [d.derivative for d in request.made] == [
        "AD__loop__vjp_src_0_wrt_0"
    ]
