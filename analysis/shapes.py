"""Which tensors of a function provably have the same shape at run time.

Tensor types carry no shape (SIL-SPEC §2), so a derivative rule that must sum a cotangent back to
an operand's shape (``unbroadcast``) or spread a tangent over the result's asks this analysis
first: where the operand provably has the result's shape already, the derivative needs neither
the shape nor the sum, and reads like hand-written code.

The classes are built from facts that hold on every run: an elementwise builtin's result has the
shape of its tensor operand (of both, when they are of one class); ``with_element`` and
``no_derivative`` keep their operand's shape; a tensor made to ``shape(x)`` (``broadcast_to``,
``reshape``, ``unbroadcast``, ``zeros``, ``ones``, ``fill``) has ``x``'s shape. Block arguments are not
followed (a loop may change a shape), so the answer errs on the side of "maybe different".
"""

from __future__ import annotations

from sil.builtins import BUILTINS
from sil.instructions import BuiltinInst
from sil.ir import Function, Result, Value
from sil.types import TENSOR_SHAPE, TensorType


class ShapeClasses:
    """The tensors of one function in classes of provably equal shape (a union-find)."""

    def __init__(self, fn: Function) -> None:
        self._parent: dict[Value, Value] = {}
        for block in fn.blocks:
            for inst in block.instructions:
                if isinstance(inst, BuiltinInst) and isinstance(inst.type, TensorType):
                    self._learn(inst)

    def same(self, a: Value, b: Value) -> bool:
        """Whether ``a`` and ``b`` have the same shape on every run (a scalar has none)."""
        return a is b or (isinstance(a.type, TensorType) and self._root(a) is self._root(b))

    def _learn(self, inst: BuiltinInst) -> None:
        r, operands = inst.result, inst.operands
        if BUILTINS[inst.name].elementwise:
            tensors = [op for op in operands if isinstance(op.type, TensorType)]
            if tensors and all(self.same(t, tensors[0]) for t in tensors[1:]):
                self._union(r, tensors[0])
        elif BUILTINS[inst.name].keeps_shape:
            self._union(r, operands[0])
        else:  # a tensor made to a TensorShape operand has the shape it names
            shaped = [_shape_source(op) for op in operands if op.type == TENSOR_SHAPE]
            if shaped and shaped[0] is not None:
                self._union(r, shaped[0])

    def _root(self, v: Value) -> Value:
        parent = self._parent.get(v, v)
        while parent is not v:
            grand = self._parent.get(parent, parent)
            self._parent[v] = grand
            v, parent = parent, grand
        return v

    def _union(self, a: Value, b: Value) -> None:
        ra, rb = self._root(a), self._root(b)
        if ra is not rb:
            self._parent[ra] = rb


def _shape_source(s: Value) -> Value | None:
    """The tensor ``x`` when ``s`` is ``shape(x)``."""
    owner = s.owner if isinstance(s, Result) else None
    if isinstance(owner, BuiltinInst) and owner.name == "shape":
        return owner.operands[0]
    return None
