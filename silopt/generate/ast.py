"""The programs the generator draws: a small AST of statements and expressions.

Hypothesis shrinks a failing example through the draws that built it, so a program is kept as
structure (a statement dropped, an expression replaced by an atom) rather than as SIL text; the
emitter (``emit.py``) writes it as SIL. Scalars are all of one float type per program (Double or
Float); tensors are of that element type; Ints are ``%n`` and loop indices.
"""

from __future__ import annotations

import attrs

# --- scalar expressions -----------------------------------------------------------------------------


@attrs.frozen
class Const:
    value: float


@attrs.frozen
class Var:
    name: str


@attrs.frozen
class IntAsScalar:
    """``sitofp`` of ``%n`` or a loop index: a scalar that carries no derivative."""

    name: str


@attrs.frozen
class Unary:
    op: str  # sin cos tanh exp no_derivative
    arg: Expr


@attrs.frozen
class Binary:
    op: str  # fadd fsub fmul
    lhs: Expr
    rhs: Expr


@attrs.frozen
class Call:
    """``apply`` of a generated helper ``(S, S) -> S``."""

    callee: str
    lhs: Expr
    rhs: Expr


@attrs.frozen
class Closure:
    """The helper as a closure: ``partial_apply`` binding ``rhs`` then applied to ``lhs``, or
    (``thick``) ``thin_to_thick_function`` applied to both."""

    callee: str
    lhs: Expr
    rhs: Expr
    thick: bool


@attrs.frozen
class Recurse:
    """A call of the recursive helper ``(S, Int) -> S`` with a bounded depth."""

    callee: str
    arg: Expr
    depth: int | str  # a literal, or an Int variable


@attrs.frozen
class Field:
    """Element ``index`` of ``(lhs, rhs)`` made as a ``tuple`` or a struct (``Vec``, or ``Pair``
    whose field ``b`` is ``@noDerivative``), read by projection or by destructuring."""

    kind: str  # "tuple", "Vec" or "Pair"
    lhs: Expr
    rhs: Expr
    index: int
    destructure: bool


@attrs.frozen
class AggregateField:
    """A field of an aggregate variable (``AggregateAssign``), by projection or destructuring."""

    name: str
    kind: str
    index: int
    destructure: bool


@attrs.frozen
class ParamField:
    """A field of the struct parameter ``%p``."""

    field: str  # "a" or "b"


@attrs.frozen
class Reduce:
    op: str  # sum or mean
    arg: TExpr


@attrs.frozen
class Element:
    """``element(arg, i…)``, an index a literal or an Int variable taken modulo the axis."""

    arg: TExpr
    indices: tuple[int | str, ...]
    dims: tuple[int, ...]


Expr = (
    Const
    | Var
    | IntAsScalar
    | Unary
    | Binary
    | Call
    | Closure
    | Recurse
    | Field
    | AggregateField
    | ParamField
    | Reduce
    | Element
)

# --- tensor expressions -----------------------------------------------------------------------------


@attrs.frozen
class TVar:
    name: str


@attrs.frozen
class TUnary:
    op: str
    arg: TExpr


@attrs.frozen
class TBinary:
    """Elementwise on two tensors, broadcasting as NumPy does."""

    op: str
    lhs: TExpr
    rhs: TExpr


@attrs.frozen
class TScalar:
    """Elementwise on a tensor and a scalar (the scalar broadcasts), in either order."""

    op: str
    tensor: TExpr
    scalar: Expr
    scalar_first: bool


@attrs.frozen
class SumAxis:
    arg: TExpr
    axis: int


@attrs.frozen
class ExpandDims:
    arg: TExpr
    axis: int


@attrs.frozen
class BroadcastTo:
    """``broadcast_to(arg, 3, 3)``, or to ``shape(like)`` when ``like`` is given."""

    arg: TExpr
    like: str | None


@attrs.frozen
class FromScalar:
    arg: Expr


@attrs.frozen
class Matmul:
    lhs: TExpr
    rhs: TExpr


TExpr = TVar | TUnary | TBinary | TScalar | SumAxis | ExpandDims | BroadcastTo | FromScalar | Matmul

# --- statements ---------------------------------------------------------------------------------------


@attrs.frozen
class Assign:
    name: str
    value: Expr


@attrs.frozen
class TAssign:
    """A tensor variable, always of the parameter's shape (3x3), so that joins agree."""

    name: str
    value: TExpr


@attrs.frozen
class AggregateAssign:
    """A variable holding ``(lhs, rhs)`` as a ``tuple`` or a struct (``Vec``, ``Pair``), which
    joins and loops carry like any other (its tangent crosses blocks)."""

    name: str
    kind: str
    lhs: Expr
    rhs: Expr


@attrs.frozen
class If:
    """``if lhs < rhs { then } else { orelse }``; no else block when ``orelse`` is None."""

    lhs: Expr
    rhs: Expr
    then: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...] | None


@attrs.frozen
class For:
    """``for index in 0..<count { body }``, ``carried`` live around it; ``rotated``: a guard, then
    a body that branches back to itself, as loop rotation leaves it."""

    index: str
    count: int | str
    carried: tuple[str, ...]
    body: tuple[Stmt, ...]
    rotated: bool


@attrs.frozen
class Switch:
    """``switch_enum`` over ``Choice<k>``, chosen by ``@choose<k>`` from an Int; case ``i`` carries
    the constant ``payloads[i]`` (None: no payload), bound to ``binds[i]`` in its body."""

    enum: str
    selector: int | str
    payloads: tuple[float | None, ...]
    binds: tuple[str, ...]
    bodies: tuple[tuple[Stmt, ...], ...]


@attrs.frozen
class Return:
    value: Expr


Stmt = Assign | TAssign | AggregateAssign | If | For | Switch | Return


@attrs.frozen
class Helper:
    """``@name : (S, S) -> S`` with parameters ``a`` and ``b``."""

    name: str
    body: tuple[Stmt, ...]


@attrs.frozen
class Recursive:
    """``@name : (S, Int) -> S``: ``base(x)`` at depth 0, else ``combine(x, v)`` with
    ``v = name(step(x), k - 1)``."""

    name: str
    base: Expr
    step: Expr
    combine: Expr


@attrs.frozen
class Program:
    """``@f`` and what it calls: its scalar type, which optional parameters it has, the helpers,
    the ``wrt`` indices, and how its derivative is asked for: a ``[differentiable]`` attribute,
    or (``gradient``: its options, ``seedable``, ``preserving_result``) a ``gradient`` in ``@main``."""

    scalar: str  # "Double" or "Float"
    struct_param: str | None  # "Vec" or "Pair"
    tensor_param: bool
    helpers: tuple[Helper, ...]
    recursive: Recursive | None
    body: tuple[Stmt, ...]
    wrt: tuple[int, ...]
    gradient: tuple[str, ...] | None = None  # asked by a `gradient` with these options, not an attribute


def assigned(stmts: tuple[Stmt, ...] | None) -> set[str]:
    """Variables assigned anywhere in ``stmts``, nested statements included."""
    out: set[str] = set()
    for s in stmts or ():
        if isinstance(s, Assign | TAssign | AggregateAssign):
            out.add(s.name)
        elif isinstance(s, If):
            out |= assigned(s.then) | assigned(s.orelse)
        elif isinstance(s, For):
            out |= assigned(s.body)
        elif isinstance(s, Switch):
            for body in s.bodies:
                out |= assigned(body)
    return out


def terminates(stmts: tuple[Stmt, ...] | None) -> bool:
    """Whether every path through ``stmts`` returns (a loop may run no trip, so never does)."""
    if stmts is None:
        return False
    for s in stmts:
        if isinstance(s, Return):
            return True
        if isinstance(s, If) and terminates(s.then) and terminates(s.orelse):
            return True
        if isinstance(s, Switch) and all(terminates(b) for b in s.bodies):
            return True
    return False
