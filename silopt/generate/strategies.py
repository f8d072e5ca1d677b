"""Hypothesis strategies that draw well-typed programs (``ast.Program``) feature by feature.

Values stay tame, so that ``exp`` never overflows and finite differences stay accurate: every
variable is bounded by ``CAP`` (a larger intermediate only feeds ``tanh``), as in
``tests/differentiation/test_cf_properties.py``. Programs terminate: loops count to a literal, to
``%n`` (at most 5 where the checks draw it) or to an enclosing index, two deep at most; the
recursive helper's depth is such an Int and decreases by one a call. Each feature a program may
use is drawn first (a boolean each, so a failure shrinks to the fewest features), then the
statements, within ``MAX_STATEMENTS``.
"""

from __future__ import annotations

import math

import attrs
from hypothesis import strategies as st

from silopt.generate.ast import (
    AggregateAssign,
    AggregateField,
    Assign,
    Binary,
    BroadcastTo,
    Call,
    Closure,
    Const,
    Element,
    ExpandDims,
    Expr,
    Field,
    For,
    FromScalar,
    Helper,
    If,
    IntAsScalar,
    Matmul,
    ParamField,
    Program,
    Recurse,
    Recursive,
    Reduce,
    Return,
    Stmt,
    SumAxis,
    Switch,
    TAssign,
    TBinary,
    TExpr,
    TScalar,
    TUnary,
    TVar,
    Unary,
    Var,
    assigned,
    terminates,
)

FEATURES = (
    "float",  # the program's scalars are Float, not Double
    "tuple",
    "struct",
    "no_derivative_field",
    "no_derivative",  # the builtin
    "enum",
    "call",
    "closure",
    "branch",
    "loop",
    "recursion",
    "tensor",
    "broadcast",
    "element",
    "gradient",  # the derivative asked for by a `gradient` (with options) rather than an attribute
)
"""What a program may use; ``programs(features)`` restricts them."""

CAP = 4.0
MAX_STATEMENTS = 10  # in @f, nested ones included
HELPER_STATEMENTS = 3
PARAM_BOUND = 2.0  # the checks draw scalars and tensor elements in [0.3, 1.5]
INT_BOUND = 5.0  # and Ints in [0, 5]
# The builtins drawn, keyed by name (sil.builtins has the one list of names): a unary one's bound
# on its result (None: exp, whose argument is kept within 1), whether a binary one's bounds
# multiply (else add), whether a reduction's bound grows with the elements it sums.
UNARY: dict[str, float | None] = {"sin": 1.0, "cos": 1.0, "tanh": 1.0, "exp": None}
BINARY = {"fadd": False, "fsub": False, "fmul": True}
REDUCTIONS = {"sum": True, "mean": False}
FULL = (3, 3)
SMALL_SHAPES = ((3,), (1, 3), (3, 1), ())
HELPER_FEATURES = frozenset(
    {"float", "tuple", "struct", "no_derivative_field", "no_derivative", "branch", "loop"}
)


@attrs.define
class Scope:
    """What a statement may use: scalar and (3x3) tensor variables with a bound on their
    magnitude, the ones it may assign (in a loop: those the loop carries and its own), and the
    Ints (``n``, loop indices)."""

    scalars: dict[str, float]
    tensors: dict[str, float]
    assignable: set[str]
    ints: list[str]
    loops: int = 0
    inactive: tuple[str, ...] = ()  # never assigned, and independent of the wrt parameters
    aggregates: dict[str, tuple[str, float, float]] = attrs.field(factory=dict)  # kind, bounds

    def child(self) -> Scope:
        return Scope(
            dict(self.scalars),
            dict(self.tensors),
            set(self.assignable),
            list(self.ints),
            self.loops,
            self.inactive,
            dict(self.aggregates),
        )

    def carry(self, name: str) -> None:
        """Whatever a loop's trip assigns ``name`` stays within CAP."""
        if name in self.scalars:
            self.scalars[name] = CAP
        elif name in self.tensors:
            self.tensors[name] = CAP
        else:
            self.aggregates[name] = (self.aggregates[name][0], CAP, CAP)

    def join(self, others: list[Scope]) -> None:
        """After branches: each variable bounded by the largest bound a branch left it."""
        for name in self.scalars:
            self.scalars[name] = max(o.scalars[name] for o in others)
        for name in self.tensors:
            self.tensors[name] = max(o.tensors[name] for o in others)
        for name, (kind, _, _) in self.aggregates.items():
            bounds = [o.aggregates[name] for o in others]
            self.aggregates[name] = (kind, max(b[1] for b in bounds), max(b[2] for b in bounds))


def clamp(e: Expr, bound: float) -> tuple[Expr, float]:
    return (Unary("tanh", e), 1.0) if bound > CAP else (e, bound)


def tclamp(e: TExpr, bound: float) -> tuple[TExpr, float]:
    return (TUnary("tanh", e), 1.0) if bound > CAP else (e, bound)


@attrs.define
class Generator:
    """Draws statements and expressions of one function, noting the features it reaches."""

    draw: st.DrawFn
    use: frozenset[str]
    helpers: tuple[str, ...] = ()
    recursive: str | None = None
    struct_param: str | None = None
    budget: int = MAX_STATEMENTS
    used: set[str] = attrs.field(factory=set)
    called: set[str] = attrs.field(factory=set)
    names: int = 0
    enums: list[int] = attrs.field(factory=lambda: [0])  # shared with the helpers' generators

    def fresh(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}{self.names}"

    def pick(self, options: list[str]) -> str:
        return self.draw(st.sampled_from(options))

    def int_or_var(self, most: int, ints: list[str]) -> int | str:
        """A literal Int in ``0...most``, or (where there are some) an Int variable."""
        if bool(ints) and self.draw(st.booleans()):
            return self.pick(ints)
        return self.draw(st.integers(0, most))

    # --- scalars ---

    def atom(self, scope: Scope, constants: bool = True, other_than: str = "") -> tuple[Expr, float]:
        kinds = ["var", "var", "var"]
        if constants:
            kinds += ["const"] + (["int"] if scope.ints else []) + (["field"] if self.struct_param else [])
        kind = self.pick(kinds)
        if kind == "const":
            c = self.draw(st.integers(-8, 8)) / 4
            return Const(c), abs(c)
        if kind == "int":
            return IntAsScalar(self.pick(scope.ints)), INT_BOUND
        if kind == "field":
            self.used.add("no_derivative_field" if self.struct_param == "Pair" else "struct")
            return ParamField(self.pick(["a", "b"])), PARAM_BOUND
        name = self.pick(sorted(scope.scalars.keys() - {other_than}))
        return Var(name), scope.scalars[name]

    def extras(self, scope: Scope) -> list[str]:
        """The kinds of compound expression beyond arithmetic that this scope allows."""
        out: list[str] = [f for f in ("no_derivative", "tuple") if f in self.use]
        out += ["Vec"] if "struct" in self.use else []
        out += ["Pair"] if "no_derivative_field" in self.use else []
        out += [f for f in ("call", "closure") if f in self.use and self.helpers]
        out += ["recursion"] if self.recursive else []
        out += ["aggregate"] * 2 if scope.aggregates else []
        if scope.tensors:
            out += ["reduce", "reduce"] + (["element"] * 3 if "element" in self.use else [])
        return out

    def scalar(self, scope: Scope, depth: int) -> tuple[Expr, float]:
        if depth <= 0 or self.draw(st.integers(0, 2)) == 0:
            return self.atom(scope)
        op = self.pick([*BINARY, *UNARY, *self.extras(scope)])
        if op in UNARY:
            arg, bound = self.scalar(scope, depth - 1)
            if UNARY[op] is None:
                arg, bound = (Unary("tanh", arg), 1.0) if bound > 1 else (arg, bound)
                return Unary(op, arg), math.exp(bound)
            return Unary(op, arg), min(bound, 1.0)
        if op in BINARY:
            (lhs, lb), (rhs, rb) = self.scalar(scope, depth - 1), self.scalar(scope, depth - 1)
            return Binary(op, lhs, rhs), lb * rb if BINARY[op] else lb + rb
        if op in ("reduce", "element"):
            return self.from_tensor(op, scope, depth)
        if op == "aggregate":
            name = self.pick(sorted(scope.aggregates))
            kind, first, second = scope.aggregates[name]
            index = self.draw(st.integers(0, 1))
            return AggregateField(name, kind, index, self.draw(st.booleans())), (first, second)[index]
        return self.compound(op, scope, depth)

    def compound(self, op: str, scope: Scope, depth: int) -> tuple[Expr, float]:
        """The expressions of a feature: a call, a closure, a recursion, a field."""
        self.used.add({"Vec": "struct", "Pair": "no_derivative_field", "reduce": "tensor"}.get(op, op))
        (lhs, lb), (rhs, rb) = [clamp(*self.scalar(scope, depth - 1)) for _ in range(2)]
        if op == "no_derivative":
            return Unary(op, self.inactive(scope, depth - 1)[0]), lb
        if op == "Pair":
            rhs, rb = self.inactive(scope, depth - 1)
        if op == "call":
            callee = self.pick(list(self.helpers))
            self.called.add(callee)
            return Call(callee, lhs, rhs), CAP
        if op == "closure":
            callee = self.pick(list(self.helpers))
            self.called.add(callee)
            return Closure(callee, lhs, rhs, self.draw(st.booleans())), CAP
        if op == "recursion":
            assert self.recursive is not None
            return Recurse(self.recursive, lhs, self.int_or_var(3, scope.ints)), CAP
        index = self.draw(st.integers(0, 1))
        return Field(op, lhs, rhs, index, self.draw(st.booleans())), (lb, rb)[index]

    def from_tensor(self, op: str, scope: Scope, depth: int) -> tuple[Expr, float]:
        shape = self.draw(
            st.sampled_from([FULL, *SMALL_SHAPES[:3]] if op == "element" else [FULL, *SMALL_SHAPES])
        )
        arg, bound = self.tensor(scope, depth - 1, shape)
        if op == "reduce":
            kind = self.pick(list(REDUCTIONS))
            return Reduce(kind, arg), bound * (math.prod(shape) if REDUCTIONS[kind] else 1)
        self.used.add("element")
        indices = tuple(self.int_or_var(d - 1, scope.ints) for d in shape)
        return Element(arg, indices, shape), bound

    def inactive(self, scope: Scope, depth: int) -> tuple[Expr, float]:
        """An expression independent of the wrt parameters: what ``no_derivative`` and a
        ``@noDerivative`` field may hold, since finite differences see through them (an active
        value there has a derivative the differentiated code, rightly, does not give)."""
        kinds = ["const"] + (["int"] if scope.ints else []) + (["var"] if scope.inactive else [])
        kinds += ["field"] if self.struct_param == "Pair" else []
        kind = self.pick(kinds if depth <= 0 else [*kinds, "unary", "binary"])
        if kind == "const":
            c = self.draw(st.integers(-8, 8)) / 4
            return Const(c), abs(c)
        if kind == "int":
            return IntAsScalar(self.pick(scope.ints)), INT_BOUND
        if kind == "var":
            name = self.pick(list(scope.inactive))
            return Var(name), scope.scalars[name]
        if kind == "field":
            return ParamField("b"), PARAM_BOUND
        if kind == "unary":
            bounded = [op for op, bound in UNARY.items() if bound is not None]
            return Unary(self.pick(bounded), self.inactive(scope, depth - 1)[0]), 1.0
        (lhs, lb), (rhs, rb) = self.inactive(scope, depth - 1), self.inactive(scope, depth - 1)
        return clamp(Binary(self.pick(list(BINARY)), lhs, rhs), lb + rb + lb * rb)

    def value(self, scope: Scope) -> tuple[Expr, float]:
        return clamp(*self.scalar(scope, 2))

    # --- tensors ---

    def tensor(self, scope: Scope, depth: int, shape: tuple[int, ...]) -> tuple[TExpr, float]:
        """A tensor expression of ``shape``: 3x3, or one that broadcasts against 3x3."""
        self.used.add("tensor")
        if shape == FULL:
            return self.full(scope, depth)
        if shape == (3,):
            arg, bound = self.full(scope, depth - 1)
            return SumAxis(arg, self.draw(st.integers(0, 1))), 3 * bound
        if shape:
            arg, bound = self.tensor(scope, depth, (3,))
            return ExpandDims(arg, 0 if shape == (1, 3) else 1), bound
        e, bound = self.scalar(scope, depth - 1)
        return FromScalar(e), bound

    def full(self, scope: Scope, depth: int) -> tuple[TExpr, float]:
        if depth <= 0 or self.draw(st.integers(0, 2)) == 0:
            name = self.pick(sorted(scope.tensors))
            return TVar(name), scope.tensors[name]
        kinds = ["unary", "binary", "scalar", "matmul"] + (
            ["broadcast"] * 2 if "broadcast" in self.use else []
        )
        kind = self.pick(kinds)
        if kind == "unary":
            op = self.pick(list(UNARY))
            arg, bound = self.full(scope, depth - 1)
            if UNARY[op] is None:
                arg, bound = (TUnary("tanh", arg), 1.0) if bound > 1 else (arg, bound)
                return TUnary(op, arg), math.exp(bound)
            return TUnary(op, arg), min(bound, 1.0)
        if kind == "scalar":
            op = self.pick(list(BINARY))
            (t, tb), (s, sb) = self.full(scope, depth - 1), self.scalar(scope, depth - 1)
            return TScalar(op, t, s, self.draw(st.booleans())), tb * sb if BINARY[op] else tb + sb
        if kind == "matmul":
            (lhs, lb), (rhs, rb) = self.full(scope, depth - 1), self.full(scope, depth - 1)
            return Matmul(lhs, rhs), 3 * lb * rb
        if kind == "binary":
            (lhs, lb), (rhs, rb) = self.full(scope, depth - 1), self.full(scope, depth - 1)
            op = self.pick(list(BINARY))
            return TBinary(op, lhs, rhs), lb * rb if BINARY[op] else lb + rb
        return self.broadcast(scope, depth)

    def broadcast(self, scope: Scope, depth: int) -> tuple[TExpr, float]:
        """A smaller tensor broadcast to 3x3: by an elementwise operation or by ``broadcast_to``."""
        self.used.add("broadcast")
        small, sb = self.tensor(scope, depth - 1, self.draw(st.sampled_from(SMALL_SHAPES)))
        if self.draw(st.booleans()):
            like = self.draw(st.one_of(st.none(), st.sampled_from(sorted(scope.tensors))))
            return BroadcastTo(small, like), sb
        other, ob = self.full(scope, depth - 1)
        op = self.pick(list(BINARY))
        lhs, rhs = (small, other) if self.draw(st.booleans()) else (other, small)
        return TBinary(op, lhs, rhs), sb * ob if BINARY[op] else sb + ob

    # --- statements ---

    def block(self, scope: Scope, least: int, most: int, returns: int = 0) -> tuple[Stmt, ...]:
        """``least`` to ``most`` statements, then a ``return`` one time in ``returns``."""
        out: list[Stmt] = []
        for _ in range(self.draw(st.integers(least, most))):
            if self.budget <= 0:
                break
            self.budget -= 1
            out.append(self.statement(scope))
            if terminates(tuple(out)):
                return tuple(out)
        if returns and self.draw(st.integers(1, returns)) == returns:
            out.append(Return(self.value(scope)[0]))
        return tuple(out)

    def statement(self, scope: Scope) -> Stmt:
        kinds = ["assign", "assign", "copy"] + (["tensor"] if scope.tensors else [])
        kinds += ["if"] * 2 if "branch" in self.use else []
        kinds += ["for"] * 2 if "loop" in self.use and scope.loops < 2 and scope.assignable else []
        kinds += ["switch"] if "enum" in self.use and scope.ints else []
        kinds += ["aggregate"] if self.aggregate_kinds() else []
        kind = self.pick(kinds)
        if kind == "if":
            return self.if_(scope)
        if kind == "for":
            return self.for_(scope)
        if kind == "switch":
            return self.switch(scope)
        if kind == "tensor":
            return self.tensor_assign(scope)
        if kind == "aggregate":
            return self.aggregate_assign(scope)
        targets = sorted(scope.assignable & scope.scalars.keys())
        reassign = bool(targets) and self.draw(st.booleans())
        name = self.pick(targets) if reassign else self.fresh("v")
        value, bound = self.atom(scope, constants=False) if kind == "copy" else self.value(scope)
        scope.scalars[name] = bound
        scope.assignable.add(name)
        return Assign(name, value)

    def aggregate_kinds(self) -> list[str]:
        kinds = ["tuple"] if "tuple" in self.use else []
        kinds += ["Vec"] if "struct" in self.use else []
        return kinds + (["Pair"] if "no_derivative_field" in self.use else [])

    def aggregate_assign(self, scope: Scope, name: str | None = None) -> AggregateAssign:
        """A new aggregate variable, or ``name`` (or one drawn) assigned again, of its kind."""
        targets = sorted(scope.assignable & scope.aggregates.keys())
        if name is None and targets and self.draw(st.booleans()):
            name = self.pick(targets)
        kind = scope.aggregates[name][0] if name is not None else self.pick(self.aggregate_kinds())
        self.used.add({"Vec": "struct", "Pair": "no_derivative_field"}.get(kind, kind))
        lhs, lb = self.value(scope)
        rhs, rb = self.inactive(scope, 1) if kind == "Pair" else self.value(scope)
        rhs, rb = clamp(rhs, rb)
        name = name or self.fresh("s")
        scope.aggregates[name] = (kind, lb, rb)
        scope.assignable.add(name)
        return AggregateAssign(name, kind, lhs, rhs)

    def tensor_assign(self, scope: Scope) -> TAssign:
        targets = sorted(scope.assignable & scope.tensors.keys())
        name = self.pick(targets) if bool(targets) and self.draw(st.booleans()) else self.fresh("t")
        value, bound = tclamp(*self.full(scope, 2))
        scope.tensors[name] = bound
        scope.assignable.add(name)
        return TAssign(name, value)

    def if_(self, scope: Scope) -> If:
        self.used.add("branch")
        lhs, _ = self.atom(scope, constants=False)
        assert isinstance(lhs, Var)
        rhs, _ = self.atom(scope, other_than=lhs.name)  # never `v < v`: a tie everywhere
        then_scope = scope.child()
        then = self.block(then_scope, 0, 2, returns=4)
        else_scope = scope.child() if self.draw(st.booleans()) else None
        orelse = self.block(else_scope, 0, 2, returns=4) if else_scope is not None else None
        scope.join([then_scope, else_scope or scope])
        return If(lhs, rhs, then, orelse)

    def for_(self, scope: Scope) -> For:
        self.used.add("loop")
        candidates = sorted(scope.assignable)
        carried = self.draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=2, unique=True))
        count = self.int_or_var(4, scope.ints)
        index = self.fresh("i")
        for name in carried:
            scope.carry(name)
        body_scope = Scope(
            dict(scope.scalars),
            dict(scope.tensors),
            set(carried),
            [*scope.ints, index],
            scope.loops + 1,
            scope.inactive,
            dict(scope.aggregates),
        )
        body = self.block(body_scope, 1, 3, returns=8)  # a return here ends the first trip
        missing = [name for name in carried if name not in assigned(body)]
        if missing and not terminates(body):
            body += tuple(self.assign_again(n, body_scope) for n in missing)
        return For(index, count, tuple(carried), body, self.draw(st.booleans()))

    def assign_again(self, name: str, scope: Scope) -> Stmt:
        """An assignment of ``name``, of its type: what a loop's trip carries on."""
        if name in scope.scalars:
            return Assign(name, self.value(scope)[0])
        if name in scope.tensors:
            return TAssign(name, tclamp(*self.full(scope, 2))[0])
        return self.aggregate_assign(scope, name)

    def switch(self, scope: Scope) -> Switch:
        """Cases whose payloads are constants: an enum carries no derivative (its payload may
        not be active: "an enum 'Choice' payload carries no derivative")."""
        self.used.add("enum")
        self.enums[0] += 1
        enum = f"Choice{self.enums[0]}"
        cases = self.draw(st.integers(2, 3))
        payloads = tuple(
            self.draw(st.one_of(st.none(), st.integers(-8, 8).map(lambda i: i / 4))) for _ in range(cases)
        )
        binds, bodies, scopes = [], [], []
        for payload in payloads:
            case_scope = scope.child()
            bind = self.fresh("k") if payload is not None else ""
            if payload is not None:
                case_scope.scalars[bind] = abs(payload)
                case_scope.inactive += (bind,)
            binds.append(bind)
            bodies.append(self.block(case_scope, 0, 2, returns=4))
            scopes.append(case_scope)
        scope.join(scopes)
        selector: int | str = self.draw(st.sampled_from(scope.ints))
        return Switch(enum, selector, payloads, tuple(binds), tuple(bodies))


# --- whole programs -----------------------------------------------------------------------------------


def _helper(draw: st.DrawFn, use: frozenset[str], name: str, enums: list[int]) -> tuple[Helper, set[str]]:
    gen = Generator(draw, use & HELPER_FEATURES, budget=HELPER_STATEMENTS, enums=enums)
    scope = Scope({"a": CAP, "b": CAP}, {}, {"a", "b"}, [])
    body = gen.block(scope, 0, HELPER_STATEMENTS)
    if not terminates(body):
        body += (Return(gen.value(scope)[0]),)
    return Helper(name, body), gen.used


def _recursive(draw: st.DrawFn, use: frozenset[str]) -> tuple[Recursive, set[str]]:
    gen = Generator(draw, use & HELPER_FEATURES)
    scope = Scope({"x": CAP}, {}, set(), [])
    base, step = gen.value(scope)[0], gen.value(scope)[0]
    extra, bound = gen.scalar(Scope({"x": CAP, "v": CAP}, {}, set(), []), 1)
    op = draw(st.sampled_from(list(BINARY)))
    combine, _ = clamp(Binary(op, Var("v"), extra), CAP * bound if BINARY[op] else CAP + bound)
    return Recursive("r", base, step, combine), gen.used | {"recursion"}


@attrs.frozen
class Drawn:
    """A program and the features it reaches (a helper's only where @f calls it)."""

    program: Program
    features: frozenset[str]


@st.composite
def drawn_programs(draw: st.DrawFn, features: frozenset[str] | None = None) -> Drawn:
    allowed = FEATURES if features is None else tuple(f for f in FEATURES if f in features)
    # Each feature one time in two; Float one time in four (Double mostly).
    use = frozenset(
        f for f in allowed if (draw(st.integers(0, 3)) == 3 if f == "float" else draw(st.booleans()))
    )
    enums = [0]
    helpers: list[tuple[Helper, set[str]]] = []
    if use & {"call", "closure"}:
        helpers = [_helper(draw, use, f"g{i}", enums) for i in range(draw(st.integers(1, 2)))]
    recursive = _recursive(draw, use) if "recursion" in use else None
    struct_param = None
    if bool(use & {"struct", "no_derivative_field"}) and draw(st.booleans()):
        struct_param = "Pair" if "no_derivative_field" in use else "Vec"
    tensor_param = bool(use & {"tensor", "broadcast", "element"})
    differentiable = list(range(2 + (struct_param is not None) + tensor_param))
    wrt = tuple(sorted(draw(st.lists(st.sampled_from(differentiable), min_size=1, unique=True))))
    # A parameter outside wrt is never assigned, so that it stays inactive.
    outside = tuple(name for i, name in enumerate("xy") if i not in wrt)
    gen = Generator(
        draw,
        use,
        tuple(h.name for h, _ in helpers),
        recursive[0].name if recursive else None,
        struct_param,
        enums=enums,
    )
    tensors = {"t": PARAM_BOUND} if tensor_param else {}
    scope = Scope(
        {"x": PARAM_BOUND, "y": PARAM_BOUND}, tensors, {"x", "y"} - set(outside), ["n"], inactive=outside
    )
    body = gen.block(scope, 1, 5)
    if not terminates(body):
        body += (Return(gen.value(scope)[0]),)
    reached = set(gen.used) | ({"float"} if "float" in use else set())
    for helper, used in helpers:
        if helper.name in gen.called:
            reached |= used
    if recursive is not None and "recursion" in gen.used:
        reached |= recursive[1]
    program = Program(
        "Float" if "float" in use else "Double",
        struct_param,
        tensor_param,
        tuple(h for h, _ in helpers),
        recursive[0] if recursive else None,
        body,
        wrt,
        _gradient_options(draw) if "gradient" in use else None,
    )
    return Drawn(program, frozenset(reached | ({"gradient"} if "gradient" in use else set())))


def _gradient_options(draw: st.DrawFn) -> tuple[str, ...]:
    return tuple(o for o in ("seedable", "preserving_result") if draw(st.booleans()))
