"""Property: random differentiable functions with control flow get the right derivatives.

Hand-written control-flow cases (``test_control_flow.py``) cover the shapes someone thought of; this
draws shapes nobody wrote down. A generator builds a small program over Double values: assignments
of ``fadd``/``fsub``/``fmul``/``sin``/``cos``/``tanh``/``exp`` (bounded: a value that could grow past
``CAP`` goes through ``tanh``, so ``exp`` never overflows and finite differences stay accurate),
``if``/``else`` and ``if`` without ``else`` on ``fcmp_olt``, counted loops ``for i in 0..<k`` (``k`` a
literal 0 to 4, ``%n`` or an enclosing loop's index; nested two deep) carrying one or two values,
and early ``return``s inside branches and loop bodies. It is emitted as SIL (SSA with block
arguments at each join) for ``@f : (Double, Double, Int) -> Double``, differentiated with respect
to both Doubles, and checked at a few points:

- the differentiated module verifies, and prints to text that parses back to the same text;
- ``@f`` returns exactly what a Python evaluation of the program gives (``math``'s functions, as
  the interpreter uses for Double), and the VJP and JVP return that same value;
- the pullback's gradient equals the exact gradient (the evaluation carries dual numbers) and,
  where the point is away from every branch tie and the function is smooth at the step's scale,
  central finite differences of ``@f``;
- the differential of a random tangent is the tangent's dot product with the gradient.

The examples are derandomized, so CI sees the same ones each run; ``CF_PROPERTY_EXAMPLES`` raises
their number for a longer hunt.

``programs(extended=True)`` also draws what the optimizer has to keep the meaning of before
differentiation (issue 16; ``tests/sil/transforms/test_semantics_through_O.py``): calls of a helper
``@g``, values through a tuple or through a differentiable struct whose second field is
``@noDerivative``, ``no_derivative``, a parameter ``%z`` outside ``wrt`` (``@noDerivative`` in the
bundle's type), and expressions drawn again (redundancy for -cse; in a loop, invariant for -licm).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence

import attrs
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from interp import Program
from sil import parse, print_module, verify_module
from tests.differentiation.test_control_flow import differentiated_text

EXAMPLES = int(os.environ.get("CF_PROPERTY_EXAMPLES", "100"))
CAP = 4.0  # every variable stays within [-CAP, CAP]; a larger intermediate only feeds tanh
MAX_STATEMENTS = 8  # per program, nested ones included: a few dozen instructions
UNARY = ("sin", "cos", "tanh", "exp")
BINARY = ("fadd", "fsub", "fmul")
EXTENDED = ("no_derivative", "call", "tuple", "struct")  # what programs(extended=True) adds
STEP = 1e-6
TIE = 1e-3  # finite differences only where every comparison's operands are at least this far apart


# --- the programs --------------------------------------------------------------------------------


@attrs.frozen
class Const:
    value: float


@attrs.frozen
class Var:
    name: str


@attrs.frozen
class IntAsDouble:
    """``sitofp`` of ``n`` or of a loop index: a Double that carries no derivative."""

    name: str


@attrs.frozen
class Unary:
    op: str
    arg: Expr


@attrs.frozen
class Binary:
    op: str
    lhs: Expr
    rhs: Expr


@attrs.frozen
class Call:
    """``@g(lhs, rhs)``, the helper of extended programs: ``lhs * sin(rhs) + no_derivative(rhs)``."""

    lhs: Expr
    rhs: Expr


@attrs.frozen
class Field:
    """Element ``index`` of ``(lhs, rhs)`` made as a ``tuple`` or as a struct ``Pair`` whose field
    1 is ``@noDerivative`` (so no derivative comes through it)."""

    kind: str  # "tuple" or "struct"
    lhs: Expr
    rhs: Expr
    index: int


Expr = Const | Var | IntAsDouble | Unary | Binary | Call | Field


@attrs.frozen
class Assign:
    name: str
    value: Expr


@attrs.frozen
class If:
    """``if lhs < rhs { then } else { orelse }``; no else block when ``orelse`` is None."""

    lhs: Expr
    rhs: Expr
    then: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...] | None


@attrs.frozen
class For:
    """``for index in 0..<count { body }``, the outer variables in ``carried`` live around it.

    Emitted with the test in a header before the body, or ``rotated`` as loop rotation leaves it: a
    guard, then a body that branches back to itself, the test at its end."""

    index: str
    count: int | str
    carried: tuple[str, ...]
    body: tuple[Stmt, ...]
    rotated: bool


@attrs.frozen
class Return:
    value: Expr


Stmt = Assign | If | For | Return


def assigned(stmts: tuple[Stmt, ...] | None) -> set[str]:
    """Variables assigned anywhere in ``stmts``, nested statements included."""
    out: set[str] = set()
    for s in stmts or ():
        if isinstance(s, Assign):
            out.add(s.name)
        elif isinstance(s, If):
            out |= assigned(s.then) | assigned(s.orelse)
        elif isinstance(s, For):
            out |= assigned(s.body)
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
    return False


def variables(e: Expr) -> set[str]:
    """The variables ``e`` reads, Ints (``n``, loop indices) included."""
    if isinstance(e, Var | IntAsDouble):
        return {e.name}
    if isinstance(e, Unary):
        return variables(e.arg)
    if isinstance(e, Binary | Call | Field):
        return variables(e.lhs) | variables(e.rhs)
    return set()


# --- the generator -------------------------------------------------------------------------------


@attrs.define
class Scope:
    """What a statement may use: Double variables with a bound on their magnitude, the ones it may
    assign (in a loop: those the loop carries and its own), and the Ints (``n``, loop indices)."""

    bounds: dict[str, float]
    assignable: set[str]
    ints: list[str]
    loops: int = 0

    def child(self) -> Scope:
        return Scope(dict(self.bounds), set(self.assignable), list(self.ints), self.loops)


@attrs.define
class Generator:
    """Draws one program, statement by statement, ``budget`` statements at most."""

    draw: st.DrawFn
    budget: int = MAX_STATEMENTS
    names: int = 0
    extended: bool = False
    seen: list[Expr] = attrs.field(factory=list)  # drawn expressions, to draw again

    def fresh(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}{self.names}"

    def atom(self, scope: Scope, constants: bool = True, other_than: str = "") -> tuple[Expr, float]:
        kinds = ["var", "var", "var"] + (["const", "int"] if constants else [])
        again = [e for e in self.seen if variables(e) <= scope.bounds.keys() | set(scope.ints)]
        if constants and again:
            kinds.append("again")
        kind = self.draw(st.sampled_from(kinds))
        if kind == "again":  # the same computation again: bounded by tanh, whatever it was
            return Unary("tanh", self.draw(st.sampled_from(again))), 1.0
        if kind == "const":
            c = self.draw(st.integers(-8, 8)) / 4
            return Const(c), abs(c)
        if kind == "int":
            return IntAsDouble(self.draw(st.sampled_from(scope.ints))), 4.0
        name = self.draw(st.sampled_from(sorted(scope.bounds.keys() - {other_than})))
        return Var(name), scope.bounds[name]

    def expr(self, scope: Scope, depth: int) -> tuple[Expr, float]:
        if depth == 0 or self.draw(st.integers(0, 2)) == 0:
            return self.atom(scope)
        op = self.draw(st.sampled_from(BINARY + UNARY + (EXTENDED * 2 if self.extended else ())))
        if op in EXTENDED:
            e, bound = self.extended_expr(op, scope, depth)
            self.seen.append(e)
            return e, bound
        if op in UNARY:
            arg, bound = self.expr(scope, depth - 1)
            if op == "exp":
                if bound > 1:
                    arg, bound = Unary("tanh", arg), 1.0
                return Unary(op, arg), math.exp(bound)
            return Unary(op, arg), min(bound, 1.0)
        (lhs, lb), (rhs, rb) = self.expr(scope, depth - 1), self.expr(scope, depth - 1)
        return Binary(op, lhs, rhs), lb * rb if op == "fmul" else lb + rb

    def extended_expr(self, op: str, scope: Scope, depth: int) -> tuple[Expr, float]:
        (lhs, lb), (rhs, rb) = self.expr(scope, depth - 1), self.expr(scope, depth - 1)
        if op == "no_derivative":
            return Unary(op, lhs), lb
        if op == "call":
            return Call(lhs, rhs), lb + rb
        index = self.draw(st.integers(0, 1))
        return Field(op, lhs, rhs, index), (lb, rb)[index]

    def value(self, scope: Scope) -> tuple[Expr, float]:
        e, bound = self.expr(scope, 2)
        return (Unary("tanh", e), 1.0) if bound > CAP else (e, bound)

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
        kinds = ["assign", "copy", "if", "for"] if scope.loops < 2 else ["assign", "copy", "if"]
        kind = self.draw(st.sampled_from(kinds))
        if kind == "if":
            return self.if_(scope)
        if kind == "for" and scope.assignable:
            return self.for_(scope)
        targets = sorted(scope.assignable)
        reassign = bool(targets) and self.draw(st.booleans())
        name = self.draw(st.sampled_from(targets)) if reassign else self.fresh("v")
        # A copy makes two variables name one SSA value: passed to a block argument and still
        # live, or passed for two arguments at once.
        value, bound = self.atom(scope, constants=False) if kind == "copy" else self.value(scope)
        scope.bounds[name] = bound
        scope.assignable.add(name)
        return Assign(name, value)

    def if_(self, scope: Scope) -> If:
        lhs, _ = self.atom(scope, constants=False)
        assert isinstance(lhs, Var)
        rhs, _ = self.atom(scope, other_than=lhs.name)  # never `v < v`: a tie everywhere
        then_scope = scope.child()
        then = self.block(then_scope, 0, 2, returns=4)
        else_scope = scope.child() if self.draw(st.booleans()) else None
        orelse = self.block(else_scope, 0, 2, returns=4) if else_scope is not None else None
        for name in scope.bounds:
            scope.bounds[name] = max(then_scope.bounds[name], (else_scope or scope).bounds[name])
        return If(lhs, rhs, then, orelse)

    def for_(self, scope: Scope) -> For:
        candidates = sorted(scope.assignable)
        carried = self.draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=2, unique=True))
        count: int | str = self.draw(st.one_of(st.integers(0, 4), st.sampled_from(scope.ints)))
        index = self.fresh("i")
        for name in carried:
            scope.bounds[name] = CAP  # whatever a trip assigns stays within CAP
        body_scope = Scope(dict(scope.bounds), set(carried), [*scope.ints, index], scope.loops + 1)
        body = self.block(body_scope, 1, 3, returns=8)  # a return here ends the first trip
        missing = [name for name in carried if name not in assigned(body)]
        if missing and not terminates(body):
            body += tuple(Assign(name, self.value(body_scope)[0]) for name in missing)
        return For(index, count, tuple(carried), body, self.draw(st.booleans()))


@st.composite
def programs(draw: st.DrawFn, extended: bool = False) -> tuple[Stmt, ...]:
    gen = Generator(draw, extended=extended)
    scope = Scope({"x": 2.0, "y": 2.0} | ({"z": 2.0} if extended else {}), {"x", "y"}, ["n"])
    body = gen.block(scope, 1, 4)
    if not terminates(body):
        body += (Return(gen.value(scope)[0]),)
    return body


# --- SIL -----------------------------------------------------------------------------------------


@attrs.define
class Emitter:
    """Writes a program as the body of ``@f``, blocks in the order they are written."""

    lines: list[str] = attrs.field(factory=list)
    values: int = 0
    labels: int = 0

    def name(self, base: str) -> str:
        self.values += 1
        return f"%{base}_{self.values}"

    def label(self) -> str:
        self.labels += 1
        return f"<L{self.labels}>"  # numbered in order of appearance at the end

    def emit(self, line: str) -> None:
        self.lines.append("  " + line)

    def start(self, label: str, args: Sequence[tuple[str, str]] = ()) -> None:
        params = f"({', '.join(f'{v} : ${t}' for v, t in args)})" if args else ""
        self.lines.append(f"{label}{params}:")

    def expr(self, e: Expr, env: dict[str, str], ints: dict[str, str], base: str = "t") -> str:
        if isinstance(e, Var):
            return env[e.name]
        if isinstance(e, Const):
            result = self.name(base)
            self.emit(f"{result} = float_literal $Double, {e.value!r}")
        elif isinstance(e, IntAsDouble):
            result = self.name(base)
            self.emit(f'{result} = builtin "sitofp"({ints[e.name]} : $Int) : $Double')
        elif isinstance(e, Unary):
            a = self.expr(e.arg, env, ints)
            result = self.name(base)
            self.emit(f'{result} = builtin "{e.op}"({a} : $Double) : $Double')
        elif isinstance(e, Call | Field):
            result = self.extended_expr(e, env, ints, base)
        else:
            a, b = self.expr(e.lhs, env, ints), self.expr(e.rhs, env, ints)
            result = self.name(base)
            self.emit(f'{result} = builtin "{e.op}"({a} : $Double, {b} : $Double) : $Double')
        return result

    def extended_expr(self, e: Call | Field, env: dict[str, str], ints: dict[str, str], base: str) -> str:
        a, b = self.expr(e.lhs, env, ints), self.expr(e.rhs, env, ints)
        made, result = self.name("agg"), self.name(base)
        operands = f"({a} : $Double, {b} : $Double)"
        if isinstance(e, Call):
            self.emit(f"{made} = function_ref @g : $@convention(thin) (Double, Double) -> Double")
            self.emit(f"{result} = apply {made}({a}, {b}) : $@convention(thin) (Double, Double) -> Double")
        elif e.kind == "tuple":
            self.emit(f"{made} = tuple {operands}")
            self.emit(f"{result} = tuple_extract {made} : $(Double, Double), {e.index}")
        else:
            self.emit(f"{made} = struct $Pair {operands}")
            self.emit(f"{result} = struct_extract {made} : $Pair, #Pair.{'ab'[e.index]}")
        return result

    def statements(self, stmts: tuple[Stmt, ...], env: dict[str, str], ints: dict[str, str]) -> bool:
        """Emits ``stmts`` into the current block; True when they end it with a return."""
        for s in stmts:
            if isinstance(s, Assign):
                env[s.name] = self.expr(s.value, env, ints, s.name)
            elif isinstance(s, Return):
                self.emit(f"return {self.expr(s.value, env, ints, 'r')} : $Double")
                return True
            elif isinstance(s, If):
                if self.if_(s, env, ints):
                    return True
            else:
                self.for_(s, env, ints)
        return False

    def if_(self, s: If, env: dict[str, str], ints: dict[str, str]) -> bool:
        a, b = self.expr(s.lhs, env, ints), self.expr(s.rhs, env, ints)
        cond = self.name("lt")
        self.emit(f'{cond} = builtin "fcmp_olt"({a} : $Double, {b} : $Double) : $Bool')
        merged = sorted((assigned(s.then) | assigned(s.orelse)) & env.keys())
        then_label, join_label = self.label(), self.label()
        reached = s.orelse is None
        if s.orelse is None:
            self.emit(f"cond_br {cond}, {then_label}, {join_label}{operands(env, merged)}")
        else:
            else_label = self.label()
            self.emit(f"cond_br {cond}, {then_label}, {else_label}")
        for label, body in [(then_label, s.then)] + ([] if s.orelse is None else [(else_label, s.orelse)]):
            self.start(label)
            branch_env = dict(env)
            if not self.statements(body, branch_env, ints):
                self.emit(f"br {join_label}{operands(branch_env, merged)}")
                reached = True
        if not reached:
            return True
        env.update((v, self.name(v)) for v in merged)
        self.start(join_label, [(env[v], "Double") for v in merged])
        return False

    def for_(self, s: For, env: dict[str, str], ints: dict[str, str]) -> None:
        if isinstance(s.count, int):
            count = self.name("k")
            self.emit(f"{count} = integer_literal $Int, {s.count}")
        else:
            count = ints[s.count]
        zero = self.name("zero")
        self.emit(f"{zero} = integer_literal $Int, 0")
        header, exit_ = self.label(), self.label()
        carried = list(s.carried)
        into = f"{header}({zero} : $Int{operands(env, carried, first=False)})"
        if s.rotated:
            enter = self.name("enter")
            self.emit(f'{enter} = builtin "cmp_slt"({zero} : $Int, {count} : $Int) : $Bool')
            self.emit(f"cond_br {enter}, {into}, {exit_}{operands(env, carried)}")
        else:
            self.emit(f"br {into}")
        index = self.name(s.index)
        body_env = dict(env)
        body_env.update((v, self.name(v)) for v in carried)
        self.start(header, [(index, "Int")] + [(body_env[v], "Double") for v in carried])
        if not s.rotated:
            more, body = self.name("more"), self.label()
            self.emit(f'{more} = builtin "cmp_slt"({index} : $Int, {count} : $Int) : $Bool')
            self.emit(f"cond_br {more}, {body}, {exit_}")
            self.start(body)
            env.update((v, body_env[v]) for v in carried)  # the header's arguments, after the loop
        if not self.statements(s.body, body_env, {**ints, s.index: index}):
            one, step = self.name("one"), self.name("next")
            self.emit(f"{one} = integer_literal $Int, 1")
            self.emit(f'{step} = builtin "add"({index} : $Int, {one} : $Int) : $Int')
            back = f"{header}({step} : $Int{operands(body_env, carried, first=False)})"
            if s.rotated:
                again = self.name("again")
                self.emit(f'{again} = builtin "cmp_slt"({step} : $Int, {count} : $Int) : $Bool')
                self.emit(f"cond_br {again}, {back}, {exit_}{operands(body_env, carried)}")
            else:
                self.emit(f"br {back}")
        if s.rotated:
            env.update((v, self.name(v)) for v in carried)
            self.start(exit_, [(env[v], "Double") for v in carried])
        else:
            self.start(exit_)


def operands(env: dict[str, str], names: list[str], first: bool = True) -> str:
    """Branch operands ``(%a : $Double, …)`` for ``names``, or ``, %a : $Double…`` after others."""
    listed = ", ".join(f"{env[v]} : $Double" for v in names)
    if first:
        return f"({listed})" if names else ""
    return f", {listed}" if names else ""


EXTENDED_PRELUDE = """struct Pair : Differentiable {
  var a: Double
  @noDerivative var b: Double
}

sil @g : $@convention(thin) (Double, Double) -> Double {
bb0(%a : $Double, %b : $Double):
  %s = builtin "sin"(%b : $Double) : $Double
  %m = builtin "fmul"(%a : $Double, %s : $Double) : $Double
  %k = builtin "no_derivative"(%b : $Double) : $Double
  %r = builtin "fadd"(%m : $Double, %k : $Double) : $Double
  return %r : $Double
}

"""
"""What extended programs use: ``Pair`` (``Field``) and the helper ``@g`` (``Call``)."""


def sil_text(program: tuple[Stmt, ...], extended: bool = False) -> str:
    """``@f : (Double, Double, Int) -> Double``, differentiable with respect to its Doubles; an
    extended program's takes ``%z : Double`` before ``%n``, outside ``wrt``."""
    emitter = Emitter()
    doubles = ["x", "y", "z"] if extended else ["x", "y"]
    emitter.start("bb0", [*((f"%{v}", "Double") for v in doubles), ("%n", "Int")])
    returned = emitter.statements(program, {v: f"%{v}" for v in doubles}, {"n": "%n"})
    assert returned, "a program ends in a return"
    order: dict[str, str] = {}
    for line in emitter.lines:
        if line.startswith("<L"):
            order[line[: line.index(">") + 1]] = f"bb{len(order) + 1}"
    body = re.sub(r"<L\d+>", lambda m: order[m.group(0)], "\n".join(emitter.lines))
    params = "Double, Double, Double, Int" if extended else "Double, Double, Int"
    header = f"sil [differentiable source 0 wrt 0, 1] @f : $@convention(thin) ({params}) -> Double"
    return f"{EXTENDED_PRELUDE if extended else ''}{header} {{\n{body}\n}}\n"


# --- what the program means, with exact derivatives ------------------------------------------------

Dual = tuple[float, float, float]  # a value and its derivatives with respect to x and y


@attrs.define
class Evaluation:
    """Runs a program on dual numbers, noting how close its comparisons came to a tie. Operands
    exactly equal are taken to be one value (a copy): they move together, so they are no tie. Two
    different functions that happen to be equal at a point are not told apart, which is why finite
    differences are never taken at a drawn point itself (hypothesis favours 0, where sin(x) == x)."""

    ints: dict[str, int]
    margin: float = math.inf

    def expr(self, e: Expr, env: dict[str, Dual]) -> Dual:
        if isinstance(e, Var):
            return env[e.name]
        if isinstance(e, Const):
            return (e.value, 0.0, 0.0)
        if isinstance(e, IntAsDouble):
            return (float(self.ints[e.name]), 0.0, 0.0)
        if isinstance(e, Call | Field):
            return self.extended_expr(e, env)
        if isinstance(e, Unary):
            a, da, db = self.expr(e.arg, env)
            if e.op == "no_derivative":
                return (a, 0.0, 0.0)
            if e.op == "sin":
                v, d = math.sin(a), math.cos(a)
            elif e.op == "cos":
                v, d = math.cos(a), -math.sin(a)
            elif e.op == "tanh":
                v = math.tanh(a)
                d = 1 - v * v
            else:
                v = d = math.exp(a)
            return (v, d * da, d * db)
        (a, da, db), (b, ea, eb) = self.expr(e.lhs, env), self.expr(e.rhs, env)
        if e.op == "fadd":
            return (a + b, da + ea, db + eb)
        if e.op == "fsub":
            return (a - b, da - ea, db - eb)
        return (a * b, a * ea + b * da, a * eb + b * db)

    def extended_expr(self, e: Call | Field, env: dict[str, Dual]) -> Dual:
        (a, da, db), (b, ea, eb) = self.expr(e.lhs, env), self.expr(e.rhs, env)
        if isinstance(e, Call):  # a * sin(b) + no_derivative(b)
            s, c = math.sin(b), math.cos(b)
            return (a * s + b, da * s + a * c * ea, db * s + a * c * eb)
        if e.index == 0:
            return (a, da, db)
        return (b, ea, eb) if e.kind == "tuple" else (b, 0.0, 0.0)  # Pair.b is @noDerivative

    def run(self, stmts: tuple[Stmt, ...], env: dict[str, Dual]) -> Dual | None:
        for s in stmts:
            if isinstance(s, Assign):
                env[s.name] = self.expr(s.value, env)
            elif isinstance(s, Return):
                return self.expr(s.value, env)
            elif isinstance(s, If):
                a, b = self.expr(s.lhs, env)[0], self.expr(s.rhs, env)[0]
                if a != b:
                    self.margin = min(self.margin, abs(a - b))
                result = self.run(s.then if a < b else s.orelse or (), env)
                if result is not None:
                    return result
            else:
                count = s.count if isinstance(s.count, int) else self.ints[s.count]
                for i in range(count):
                    self.ints[s.index] = i
                    result = self.run(s.body, env)
                    if result is not None:
                        return result
        return None


def evaluate(
    program: tuple[Stmt, ...], x: float, y: float, n: int, z: float | None = None
) -> tuple[Dual, float]:
    """The program's value and gradient at (x, y, n) (and ``z``, for an extended program), and
    its smallest comparison margin."""
    evaluation = Evaluation({"n": n})
    env = {"x": (x, 1.0, 0.0), "y": (y, 0.0, 1.0)} | ({} if z is None else {"z": (z, 0.0, 0.0)})
    result = evaluation.run(program, env)
    assert result is not None
    return result, evaluation.margin


# --- the property ----------------------------------------------------------------------------------

Point = tuple[float, float, int, float, float]  # x, y, n, and a tangent (dx, dy)
coordinates = st.floats(-2.0, 2.0, allow_subnormal=False)
points = st.tuples(coordinates, coordinates, st.integers(0, 4), coordinates, coordinates)
# Finite differences are taken near a drawn point, at the first of these shifts of it that is not
# near a branch tie (see Evaluation).
SHIFTS = [(0.0123, -0.0317), (-0.0411, 0.0059), (0.0731, 0.0467), (-0.0977, -0.0853)]


def check_derivatives(program: Program, body: tuple[Stmt, ...], point: Point) -> None:
    """The values, the gradient against the exact one, and the differential against the gradient."""
    x, y, n, dx, dy = point
    (value, *exact), _ = evaluate(body, x, y, n)
    assert program.run("@f", x, y, n) == value
    vjp_value, pullback = program.run("@AD__f__vjp_src_0_wrt_0_1", x, y, n)
    assert vjp_value == value
    gradient = list(pullback(1.0))
    for g, e in zip(gradient, exact):
        assert math.isclose(g, e, rel_tol=1e-9, abs_tol=1e-9), ("gradient", gradient, "exact", exact)
    jvp_value, differential = program.run("@AD__f__jvp_src_0_wrt_0_1", x, y, n)
    assert jvp_value == value
    expected = dx * gradient[0] + dy * gradient[1]
    scale = abs(dx * gradient[0]) + abs(dy * gradient[1])
    jv = differential(dx, dy)
    assert math.isclose(jv, expected, rel_tol=1e-9, abs_tol=1e-12 + 1e-9 * scale), ("jvp", jv, expected)


def central(program: Program, point: list[float | int], i: int, h: float) -> float:
    """The central difference of ``@f`` in coordinate ``i`` with step ``h``."""
    plus, minus = list(point), list(point)
    plus[i] += h
    minus[i] -= h
    return float((program.run("@f", *plus) - program.run("@f", *minus)) / (2 * h))


def check_finite_differences(program: Program, body: tuple[Stmt, ...], x: float, y: float, n: int) -> None:
    """The pullback's gradient against central differences of ``@f``, near (x, y) but off any tie."""
    for sx, sy in SHIFTS:
        if evaluate(body, x + sx, y + sy, n)[1] >= TIE:
            break
    else:
        event("finite differences skipped: every shifted point is near a tie")
        return
    point: list[float | int] = [x + sx, y + sy, n]
    _, pullback = program.run("@AD__f__vjp_src_0_wrt_0_1", *point)
    for i, g in enumerate(pullback(1.0)):
        numeric = central(program, point, i, STEP)
        # The step straddles no branch (the margin); a step twice as wide agreeing says the
        # function is smooth enough at this scale for the estimate to be trusted.
        if not math.isclose(numeric, central(program, point, i, 2 * STEP), rel_tol=1e-7, abs_tol=5e-9):
            event("finite differences skipped: too curved at the step's scale")
            continue
        assert math.isclose(g, numeric, rel_tol=1e-6, abs_tol=1e-8), ("fd", point, i, g, numeric)


def check_program(body: tuple[Stmt, ...], at: list[Point]) -> None:
    """One example (plain, so a longer hunt can call it under other settings)."""
    text = sil_text(body)
    note(text)
    program = differentiated_text(text, "generated.sil")
    printed = print_module(program.module)
    reparsed = parse(printed, "printed.sil")
    assert verify_module(reparsed) == []
    assert print_module(reparsed) == printed
    for point in at:
        note(f"at {point}")
        check_derivatives(program, body, point)
        check_finite_differences(program, body, *point[:3])


PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY
@given(body=programs(), at=st.lists(points, min_size=1, max_size=3))
def test_random_control_flow_derivatives(body: tuple[Stmt, ...], at: list[Point]) -> None:
    check_program(body, at)
