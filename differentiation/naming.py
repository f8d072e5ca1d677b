"""The names of synthesized functions and types (SIL-SPEC §6, after Swift's AD naming), so that
output is deterministic and can be compared with Swift's."""

from __future__ import annotations

from analysis.activity import Config


def _suffix(config: Config) -> str:
    return f"src_{config.source}_wrt_{'_'.join(map(str, config.wrt))}"


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


def checkpoints_name(original: str, block: str, config: Config) -> str:
    """The record of what block ``block``'s pullback needs."""
    return f"_AD__{original}_{block}__PB__{_suffix(config)}"
