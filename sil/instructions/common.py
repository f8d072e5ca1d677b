"""What every instruction module shares: the type-rule error and its helpers."""

from __future__ import annotations

from sil.types import (
    FunctionType,
    Type,
)


class TypeRuleError(Exception):
    """An instruction's result type cannot be computed from its operands."""


def function_type_of(t: Type, what: str) -> FunctionType:
    """``t`` as a function type, or a TypeRuleError naming ``what``."""
    if not isinstance(t, FunctionType):
        raise TypeRuleError(f"{what} must have a function type, not {t}")
    return t
