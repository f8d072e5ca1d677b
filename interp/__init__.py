"""The interpreter: runs any verified module that holds no unlowered AD instruction.

``run(module, "@f", *args)`` calls a function on Python values; ``Program`` keeps the compiled
functions for repeated calls and sets the limits (``max_steps``, ``max_depth``).
"""

from interp.faults import RunError
from interp.program import DEFAULT_MAX_DEPTH, Program, run
from interp.values import EnumValue, SILFunction, StructValue

__all__ = ["DEFAULT_MAX_DEPTH", "EnumValue", "Program", "RunError", "SILFunction", "StructValue", "run"]
