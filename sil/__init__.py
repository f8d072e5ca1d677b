"""The IR: types, values, instructions, blocks, functions, modules; parser, printer, verifier.

Importing ``sil`` registers every instruction.
"""

from sil import instructions
from sil.diagnostics import Diagnostic, SILError, SourceFile, Span
from sil.ir import Block, Function, Instruction, Module, Value
from sil.parser import parse, parse_source
from sil.printer import print_module
from sil.verifier import verify, verify_module

__all__ = [
    "Block",
    "Diagnostic",
    "Function",
    "Instruction",
    "Module",
    "SILError",
    "SourceFile",
    "Span",
    "Value",
    "instructions",
    "parse",
    "parse_source",
    "print_module",
    "verify",
    "verify_module",
]
