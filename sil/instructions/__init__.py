"""Every instruction of SIL-SPEC §4, each declared once.

A class body is the instruction's schema: its fields (the operand layout is documented on the
class), its result-type rule (``result_types``), its checks (``verify``), and its text form as a
small function pair (``parse`` reads what follows the opcode; ``format`` writes it), all declared
on ``sil.ir.Instruction``. An instruction whose commonest line the parser should take in one match
declares that too: a ``FastForm`` (``sil.lexer``) and ``parse_fast``, beside its ``parse``.
Importing this package registers every instruction; the parser and printer know them only through
the registry.
"""

from sil.instructions.aggregates import (
    DestructureStructInst,
    DestructureTupleInst,
    EnumInst,
    StructExtractInst,
    StructInst,
    TupleExtractInst,
    TupleInst,
)
from sil.instructions.common import TypeRuleError, function_type_of
from sil.instructions.differentiation import (
    BUNDLE_PARTS,
    EXTRACTEES,
    DifferentiableFunctionExtractInst,
    DifferentiableFunctionInst,
    GradientInst,
    extractee_type,
)
from sil.instructions.functions import (
    ApplyInst,
    BuiltinInst,
    FunctionRefInst,
    PartialApplyInst,
    ThinToThickFunctionInst,
)
from sil.instructions.literals import (
    FloatLiteralInst,
    IntegerLiteralInst,
    float_bits,
    float_from_bits,
    format_float,
    round_to_float32,
)
from sil.instructions.terminators import (
    BranchInst,
    CondBranchInst,
    ReturnInst,
    SwitchEnumInst,
    UnreachableInst,
    set_edge_arguments,
)

__all__ = [
    "BUNDLE_PARTS",
    "EXTRACTEES",
    "ApplyInst",
    "BranchInst",
    "BuiltinInst",
    "CondBranchInst",
    "DestructureStructInst",
    "DestructureTupleInst",
    "DifferentiableFunctionExtractInst",
    "DifferentiableFunctionInst",
    "EnumInst",
    "FloatLiteralInst",
    "FunctionRefInst",
    "GradientInst",
    "IntegerLiteralInst",
    "PartialApplyInst",
    "ReturnInst",
    "StructExtractInst",
    "StructInst",
    "SwitchEnumInst",
    "ThinToThickFunctionInst",
    "TupleExtractInst",
    "TupleInst",
    "TypeRuleError",
    "UnreachableInst",
    "extractee_type",
    "float_bits",
    "float_from_bits",
    "format_float",
    "function_type_of",
    "round_to_float32",
    "set_edge_arguments",
]
