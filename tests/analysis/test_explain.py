"""Chains of flows that explain activity: shortest, over the analysis's own edges, and the
blocked flows where a chain stops."""

from __future__ import annotations

from analysis.activity import Config, analyze_activity
from analysis.explain import ActivityExplainer, named_values, short_chain
from sil import parse, verify_module
from sil.ir import Module, Result

TEXT = """\
sil @f : $@convention(thin) (Double, Double, Int) -> Double {
bb0(%x : $Double, %y : $Double, %n : $Int):
  %long = builtin "sin"(%x : $Double) : $Double
  %longer = builtin "cos"(%long : $Double) : $Double
  %short = builtin "fmul"(%x : $Double, %y : $Double) : $Double
  %sum = builtin "fadd"(%longer : $Double, %short : $Double) : $Double
  %cut = builtin "no_derivative"(%y : $Double) : $Double
  %dead = builtin "exp"(%x : $Double) : $Double
  %gate = builtin "step"(%dead : $Double) : $Double
  %out = builtin "fadd"(%sum : $Double, %cut : $Double) : $Double
  br bb1(%out : $Double)

bb1(%r : $Double):
  return %r : $Double
}
"""


def explainer(wrt: tuple[int, ...]) -> tuple[Module, ActivityExplainer]:
    module = parse(TEXT, "t.sil")
    assert verify_module(module) == []
    return module, ActivityExplainer(analyze_activity(module, module.functions["f"], Config(0, wrt)))


def test_the_varied_chain_is_the_shortest_one() -> None:
    module, ex = explainer((0,))
    printer, values = named_values(module.functions["f"])
    chain = ex.varied_chain(values["%sum"])
    assert chain is not None
    assert short_chain(printer, chain) == "%x -> %short = fmul (line 5) -> %sum = fadd (line 6)"


def test_the_useful_chain_goes_through_block_arguments_to_the_return() -> None:
    module, ex = explainer((0,))
    printer, values = named_values(module.functions["f"])
    chain = ex.useful_chain(values["%short"])
    assert chain is not None
    assert short_chain(printer, chain) == (
        "%short -> %sum = fadd (line 6) -> %out = fadd (line 10) -> %r of bb1 (line 11) -> return (line 14)"
    )


def test_a_chain_through_an_instruction_enters_it_by_its_varied_operand() -> None:
    module, ex = explainer((0,))
    printer, values = named_values(module.functions["f"])
    longer = values["%longer"]
    assert isinstance(longer, Result) and longer.owner is not None
    chain = ex.chain_through(longer.owner)
    assert chain is not None
    assert short_chain(printer, chain).startswith(
        "%x -> %long = sin (line 3) -> %longer = cos (line 4) -> %sum"
    )


def test_blocked_flows_say_where_chains_stop() -> None:
    module, ex = explainer((1,))
    _, values = named_values(module.functions["f"])
    assert ex.varied_chain(values["%cut"]) is None
    assert [f.through.opname for f in ex.stops_before(values["%cut"])] == ["builtin"]
    assert [f.target for f in ex.stops_before(values["%cut"])] == [values["%cut"]]
    module, ex = explainer((0,))
    _, values = named_values(module.functions["f"])
    assert ex.useful_chain(values["%dead"]) is None
    assert [f.target for f in ex.stops_after(values["%dead"])] == [values["%gate"]]


def test_chains_agree_with_the_analysis_on_every_value() -> None:
    """A varied chain exists exactly for the varied values, a useful one for the useful values."""
    for wrt in [(0,), (1,), (0, 1)]:
        _, ex = explainer(wrt)
        for v in ex.info.values():
            assert (ex.varied_chain(v) is not None) == (v in ex.info.varied)
            assert (ex.useful_chain(v) is not None) == (v in ex.info.useful)
