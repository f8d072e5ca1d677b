"""Well-typed SIL programs drawn by hypothesis, and the properties each must have (issue 17).

``programs(features)`` draws a program as a small AST (``ast.py``; hypothesis shrinks a failure
structurally, to a small program) over the features ``FEATURES`` names, and writes it as SIL
(``emit.py``): ``@f`` with a ``[differentiable]`` attribute, its helpers, enums and structs.
``check_program`` (``check.py``) says which properties a program fails: it parses and verifies,
prints and re-parses identically, runs the same before and after ``-O``, and its derivatives pass
``silopt.check_derivatives`` in both modes, with ``-O`` before differentiation too.

The strategies need hypothesis (the ``test`` extra).
"""

from __future__ import annotations

from silopt.generate.check import Failure, check_program
from silopt.generate.program import GeneratedProgram, generated, programs
from silopt.generate.strategies import FEATURES

__all__ = ["FEATURES", "Failure", "GeneratedProgram", "check_program", "generated", "programs"]
