"""The names of synthesized functions and types (SIL-SPEC §6, after Swift's AD naming), so that
output is deterministic and can be compared with Swift's."""

from __future__ import annotations

from analysis.activity import Config


def _suffix(config: Config) -> str:
    return f"src_{'_'.join(map(str, config.sources))}_wrt_{'_'.join(map(str, config.wrt))}"


def vjp_name(original: str, config: Config) -> str:
    return f"AD__{original}__vjp_{_suffix(config)}"


def pullback_name(original: str, config: Config) -> str:
    return f"AD__{original}__pullback_{_suffix(config)}"


def jvp_name(original: str, config: Config) -> str:
    return f"AD__{original}__jvp_{_suffix(config)}"


def differential_name(original: str, config: Config) -> str:
    return f"AD__{original}__differential_{_suffix(config)}"


def gradient_name(original: str, config: Config, seedable: bool, preserving_result: bool) -> str:
    return (
        f"AD__{original}__grad_{_suffix(config)}"
        + ("_s" if seedable else "")
        + ("_p" if preserving_result else "")
    )


def checkpoints_name(original: str, block: str, config: Config, kind: str = "PB") -> str:
    """The record of what block ``block``'s pullback (``PB``) or differential (``DF``) needs."""
    return f"_AD__{original}_{block}__{kind}__{_suffix(config)}"


def trace_name(original: str, block: str, config: Config, kind: str = "PB") -> str:
    """The trace enum of block ``block``: which predecessor ran before it (``Pred`` for a VJP's,
    ``DFPred`` for a JVP's, whose payloads are the differential's records)."""
    return f"_AD__{original}_{block}__{'Pred' if kind == 'PB' else 'DFPred'}__{_suffix(config)}"


def path_name(original: str, config: Config) -> str:
    """The enum a differential turns its JVP's trace into: the blocks that ran, first to last."""
    return f"_AD__{original}__DFPath__{_suffix(config)}"


EXIT_BLOCK = "exit"
"""The block a trace enum names for a function with several ``return`` blocks: the virtual exit
they all lead to (Swift's SIL has one return block, so Swift needs no such name)."""


def block_label(position: int, name: str | None) -> str:
    """A block's label as the printer writes it: its own name, unless it is numbered."""
    if name is None or (name.startswith("bb") and name[2:].isdigit()):
        return f"bb{position}"
    return name


def subset_thunk_name(original: str, kind: str, config: Config) -> str:
    """A ``vjp``, ``pullback``, ``jvp`` or ``differential`` adapting a registered derivative for
    more parameters to ``config``'s (Swift's subset-parameters thunks)."""
    return f"AD__{original}__{kind}_subset_parameters_thunk_{_suffix(config)}"
