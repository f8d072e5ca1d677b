"""Passes that print what an analysis finds, as comments in the printed module (for golden tests
and for researchers reading the IR)."""

from __future__ import annotations

from analysis.activity import ActivityInfo, analyze_activity, differentiation_requests
from sil.ir import Function, Module, Value
from sil.passes import Pass, PassContext, register_pass


@register_pass
class PrintActivity(Pass):
    """Annotates every value of each function something asks to differentiate."""

    name = "print-activity"
    description = "Annotate values with their activity: [ACTIVE], [VARIED], [USEFUL] or [NONE]"

    def run(self, module: Module, ctx: PassContext) -> None:
        for name, configs in differentiation_requests(module).items():
            fn = module.functions[name]
            infos = [analyze_activity(module, fn, config) for config in configs]
            ctx.annotations.update(activity_annotations(fn, infos))


def activity_annotations(fn: Function, infos: list[ActivityInfo]) -> dict[Value | Function, str]:
    """``[ACTIVE]`` and the like for each value; with several configurations, the labels of each
    in the order the function's header comment lists them: ``[ACTIVE | USEFUL]``."""
    configs = " | ".join(info.config.describe() for info in infos)
    notes: dict[Value | Function, str] = {fn: f"activity for {configs}"}
    for value in infos[0].values():
        notes[value] = "[" + " | ".join(info.activity(value).value for info in infos) + "]"
    return notes
