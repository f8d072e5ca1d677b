"""Writes a drawn ``ast.Program`` as a SIL module: ``@f`` (SSA with block arguments at each join),
its helpers, the recursive helper, the enums and their choosers, the struct declarations."""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs

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
)

Env = dict[str, tuple[str, str]]  # a variable's SSA value and type


@attrs.define
class Body:
    """Writes one function's body, blocks in the order they are written; labels are numbered in
    order of appearance at the end (``text``)."""

    s: str  # the scalar type
    struct_param: str | None = None
    lines: list[str] = attrs.field(factory=list)
    values: int = 0
    labels: int = 0
    structs: set[str] = attrs.field(factory=set)
    enums: dict[str, tuple[float | None, ...]] = attrs.field(factory=dict)

    @property
    def t(self) -> str:
        return f"Tensor<{self.s}>"

    def name(self, base: str) -> str:
        self.values += 1
        return f"%{base}_{self.values}"

    def label(self) -> str:
        self.labels += 1
        return f"<L{self.labels}>"

    def emit(self, line: str) -> None:
        self.lines.append("  " + line)

    def start(self, label: str, args: Sequence[tuple[str, str]] = ()) -> None:
        params = f"({', '.join(f'{v} : ${t}' for v, t in args)})" if args else ""
        self.lines.append(f"{label}{params}:")

    def result(self, base: str, rhs: str) -> str:
        name = self.name(base)
        self.emit(f"{name} = {rhs}")
        return name

    def builtin(self, op: str, operands: Sequence[tuple[str, str]], result: str, base: str = "t") -> str:
        listed = ", ".join(f"{v} : ${t}" for v, t in operands)
        return self.result(base, f'builtin "{op}"({listed}) : ${result}')

    def int_literal(self, value: int) -> str:
        return self.result("c", f"integer_literal $Int, {value}")

    def int_value(self, i: int | str, ints: dict[str, str]) -> str:
        return self.int_literal(i) if isinstance(i, int) else ints[i]

    def text(self) -> str:
        order: dict[str, str] = {}
        for line in self.lines:
            if line.startswith("<L"):
                order[line[: line.index(">") + 1]] = f"bb{len(order) + 1}"
        return re.sub(r"<L\d+>", lambda m: order[m.group(0)], "\n".join(self.lines))

    # --- scalars ---

    def expr(self, e: Expr, env: Env, ints: dict[str, str], base: str = "t") -> str:
        s = self.s
        if isinstance(e, Var):
            return env[e.name][0]
        if isinstance(e, Const):
            return self.result(base, f"float_literal ${s}, {e.value!r}")
        if isinstance(e, IntAsScalar):
            return self.builtin("sitofp", [(ints[e.name], "Int")], s, base)
        if isinstance(e, Unary):
            return self.builtin(e.op, [(self.expr(e.arg, env, ints), s)], s, base)
        if isinstance(e, Binary):
            a, b = self.expr(e.lhs, env, ints), self.expr(e.rhs, env, ints)
            return self.builtin(e.op, [(a, s), (b, s)], s, base)
        if isinstance(e, Reduce):
            return self.builtin(e.op, [(self.texpr(e.arg, env, ints), self.t)], s, base)
        if isinstance(e, Element):
            return self.element(e, env, ints, base)
        if isinstance(e, ParamField):
            assert self.struct_param is not None
            return self.result(
                base, f"struct_extract %p : ${self.struct_param}, #{self.struct_param}.{e.field}"
            )
        if isinstance(e, Field):
            return self.field(e, env, ints, base)
        if isinstance(e, AggregateField):
            return self.project(*env[e.name], e.index, e.destructure, base)
        return self.call(e, env, ints, base)

    def element(self, e: Element, env: Env, ints: dict[str, str], base: str) -> str:
        tensor = self.texpr(e.arg, env, ints)
        indices = []
        for i, dim in zip(e.indices, e.dims):
            if isinstance(i, int):
                indices.append(self.int_literal(i))
            else:  # an Int variable, taken modulo the axis
                indices.append(
                    self.builtin("srem", [(ints[i], "Int"), (self.int_literal(dim), "Int")], "Int")
                )
        return self.builtin("element", [(tensor, self.t), *((i, "Int") for i in indices)], self.s, base)

    def make(
        self, kind: str, lhs: Expr, rhs: Expr, env: Env, ints: dict[str, str], base: str
    ) -> tuple[str, str]:
        """``(lhs, rhs)`` as a tuple or a struct of ``kind``: its value and type."""
        s = self.s
        a, b = self.expr(lhs, env, ints), self.expr(rhs, env, ints)
        if kind == "tuple":
            return self.result(base, f"tuple ({a} : ${s}, {b} : ${s})"), f"({s}, {s})"
        self.structs.add(kind)
        return self.result(base, f"struct ${kind} ({a} : ${s}, {b} : ${s})"), kind

    def project(self, made: str, made_type: str, index: int, destructure: bool, base: str) -> str:
        if made_type.startswith("("):
            project, destructure_op = f"tuple_extract {made} : ${made_type}, {index}", "destructure_tuple"
        else:
            field = f"#{made_type}.{'ab'[index]}"
            project, destructure_op = f"struct_extract {made} : ${made_type}, {field}", "destructure_struct"
        if not destructure:
            return self.result(base, project)
        parts = (self.name("e"), self.name("e"))
        self.emit(f"({parts[0]}, {parts[1]}) = {destructure_op} {made} : ${made_type}")
        return parts[index]

    def field(self, e: Field, env: Env, ints: dict[str, str], base: str) -> str:
        made, made_type = self.make(e.kind, e.lhs, e.rhs, env, ints, "agg")
        return self.project(made, made_type, e.index, e.destructure, base)

    def call(self, e: Call | Closure | Recurse, env: Env, ints: dict[str, str], base: str) -> str:
        s = self.s
        if isinstance(e, Recurse):
            fn_type = f"@convention(thin) ({s}, Int) -> {s}"
            arg, depth = self.expr(e.arg, env, ints), self.int_value(e.depth, ints)
            ref = self.result("fn", f"function_ref @{e.callee} : ${fn_type}")
            return self.result(base, f"apply {ref}({arg}, {depth}) : ${fn_type}")
        fn_type = f"@convention(thin) ({s}, {s}) -> {s}"
        a, b = self.expr(e.lhs, env, ints), self.expr(e.rhs, env, ints)
        ref = self.result("fn", f"function_ref @{e.callee} : ${fn_type}")
        if isinstance(e, Call):
            return self.result(base, f"apply {ref}({a}, {b}) : ${fn_type}")
        if e.thick:
            thick = f"@callee_guaranteed ({s}, {s}) -> {s}"
            closure = self.result("cl", f"thin_to_thick_function {ref} : ${fn_type} to ${thick}")
            return self.result(base, f"apply {closure}({a}, {b}) : ${thick}")
        closure = self.result("cl", f"partial_apply [callee_guaranteed] {ref}({b}) : ${fn_type}")
        return self.result(base, f"apply {closure}({a}) : $@callee_guaranteed ({s}) -> {s}")

    # --- tensors ---

    def texpr(self, e: TExpr, env: Env, ints: dict[str, str], base: str = "t") -> str:
        s, t = self.s, self.t
        if isinstance(e, TVar):
            return env[e.name][0]
        if isinstance(e, TUnary):
            return self.builtin(e.op, [(self.texpr(e.arg, env, ints), t)], t, base)
        if isinstance(e, TBinary | Matmul):
            a, b = self.texpr(e.lhs, env, ints), self.texpr(e.rhs, env, ints)
            return self.builtin("matmul" if isinstance(e, Matmul) else e.op, [(a, t), (b, t)], t, base)
        if isinstance(e, TScalar):
            a, x = self.texpr(e.tensor, env, ints), self.expr(e.scalar, env, ints)
            operands = [(x, s), (a, t)] if e.scalar_first else [(a, t), (x, s)]
            return self.builtin(e.op, operands, t, base)
        if isinstance(e, SumAxis | ExpandDims):
            a, axis = self.texpr(e.arg, env, ints), self.int_literal(e.axis)
            op = "sum_axis" if isinstance(e, SumAxis) else "expand_dims"
            return self.builtin(op, [(a, t), (axis, "Int")], t, base)
        if isinstance(e, BroadcastTo):
            a = self.texpr(e.arg, env, ints)
            if e.like is None:
                three = self.int_literal(3)
                return self.builtin("broadcast_to", [(a, t), (three, "Int"), (three, "Int")], t, base)
            shape = self.builtin("shape", [(env[e.like][0], t)], "TensorShape", "shape")
            return self.builtin("broadcast_to", [(a, t), (shape, "TensorShape")], t, base)
        assert isinstance(e, FromScalar)
        return self.builtin("tensor_from_scalar", [(self.expr(e.arg, env, ints), s)], t, base)

    # --- statements ---

    def statements(self, stmts: tuple[Stmt, ...], env: Env, ints: dict[str, str]) -> bool:
        """Emits ``stmts`` into the current block; True when they end it with a return."""
        for st in stmts:
            if isinstance(st, Assign):
                env[st.name] = (self.expr(st.value, env, ints, st.name), self.s)
            elif isinstance(st, TAssign):
                env[st.name] = (self.texpr(st.value, env, ints, st.name), self.t)
            elif isinstance(st, AggregateAssign):
                env[st.name] = self.make(st.kind, st.lhs, st.rhs, env, ints, st.name)
            elif isinstance(st, Return):
                self.emit(f"return {self.expr(st.value, env, ints, 'r')} : ${self.s}")
                return True
            elif isinstance(st, If):
                if self.if_(st, env, ints):
                    return True
            elif isinstance(st, Switch):
                if self.switch(st, env, ints):
                    return True
            else:
                self.for_(st, env, ints)
        return False

    def branches(
        self,
        cases: list[tuple[str, list[tuple[str, str]], tuple[Stmt, ...]]],
        env: Env,
        ints: dict[str, str],
        join: str,
        merged: list[str],
    ) -> bool:
        """Emits each case (a label, its block arguments as names bound in the body, the body),
        each branching to ``join`` with the variables ``merged``; whether any case reaches it."""
        reached = False
        for label, args, body in cases:
            case_env = dict(env)
            names = [(self.name(bound), t) for bound, t in args]
            case_env.update({bound: (v, t) for (bound, t), (v, _) in zip(args, names)})
            self.start(label, names)
            if not self.statements(body, case_env, ints):
                self.emit(f"br {join}{operands(case_env, merged)}")
                reached = True
        return reached

    def if_(self, st: If, env: Env, ints: dict[str, str]) -> bool:
        a, b = self.expr(st.lhs, env, ints), self.expr(st.rhs, env, ints)
        cond = self.builtin("fcmp_olt", [(a, self.s), (b, self.s)], "Bool", "lt")
        merged = sorted((assigned(st.then) | assigned(st.orelse)) & env.keys())
        then_label, join = self.label(), self.label()
        if st.orelse is None:  # the false edge goes to the join directly
            self.emit(f"cond_br {cond}, {then_label}, {join}{operands(env, merged)}")
            self.branches([(then_label, [], st.then)], env, ints, join, merged)
            return self.rejoin(env, merged, join, True)
        else_label = self.label()
        self.emit(f"cond_br {cond}, {then_label}, {else_label}")
        cases: list[tuple[str, list[tuple[str, str]], tuple[Stmt, ...]]] = [
            (then_label, [], st.then),
            (else_label, [], st.orelse),
        ]
        reached = self.branches(cases, env, ints, join, merged)
        return self.rejoin(env, merged, join, reached)

    def rejoin(self, env: Env, merged: list[str], join: str, reached: bool) -> bool:
        if not reached:
            return True
        env.update((v, (self.name(v), env[v][1])) for v in merged)
        self.start(join, [env[v] for v in merged])
        return False

    def switch(self, st: Switch, env: Env, ints: dict[str, str]) -> bool:
        self.enums[st.enum] = st.payloads
        chooser = f"@convention(thin) (Int) -> {st.enum}"
        ref = self.result("fn", f"function_ref @choose_{st.enum} : ${chooser}")
        value = self.result("ch", f"apply {ref}({self.int_value(st.selector, ints)}) : ${chooser}")
        labels = [self.label() for _ in st.payloads]
        targets = ", ".join(f"case #{st.enum}.c{i}!enumelt: {label}" for i, label in enumerate(labels))
        self.emit(f"switch_enum {value} : ${st.enum}, {targets}")
        cases = [
            (label, [] if payload is None else [(bind, self.s)], body)
            for label, payload, bind, body in zip(labels, st.payloads, st.binds, st.bodies)
        ]
        merged = sorted(set().union(*(assigned(body) for body in st.bodies)) & env.keys())
        join = self.label()
        reached = self.branches(cases, env, ints, join, merged)
        return self.rejoin(env, merged, join, reached)

    def for_(self, st: For, env: Env, ints: dict[str, str]) -> None:
        count = self.int_value(st.count, ints)
        zero = self.int_literal(0)
        header, exit_ = self.label(), self.label()
        carried = list(st.carried)
        into = f"{header}({zero} : $Int{operands(env, carried, first=False)})"
        if st.rotated:
            enter = self.builtin("cmp_slt", [(zero, "Int"), (count, "Int")], "Bool", "enter")
            self.emit(f"cond_br {enter}, {into}, {exit_}{operands(env, carried)}")
        else:
            self.emit(f"br {into}")
        index = self.name(st.index)
        body_env = dict(env)
        body_env.update((v, (self.name(v), env[v][1])) for v in carried)
        self.start(header, [(index, "Int")] + [body_env[v] for v in carried])
        if not st.rotated:
            more, body = (
                self.builtin("cmp_slt", [(index, "Int"), (count, "Int")], "Bool", "more"),
                self.label(),
            )
            self.emit(f"cond_br {more}, {body}, {exit_}")
            self.start(body)
            env.update((v, body_env[v]) for v in carried)  # the header's arguments, after the loop
        if not self.statements(st.body, body_env, {**ints, st.index: index}):
            step = self.builtin("add", [(index, "Int"), (self.int_literal(1), "Int")], "Int", "next")
            back = f"{header}({step} : $Int{operands(body_env, carried, first=False)})"
            if st.rotated:
                again = self.builtin("cmp_slt", [(step, "Int"), (count, "Int")], "Bool", "again")
                self.emit(f"cond_br {again}, {back}, {exit_}{operands(body_env, carried)}")
            else:
                self.emit(f"br {back}")
        if st.rotated:
            env.update((v, (self.name(v), env[v][1])) for v in carried)
            self.start(exit_, [env[v] for v in carried])
        else:
            self.start(exit_)


def operands(env: Env, names: list[str], first: bool = True) -> str:
    """Branch operands ``(%a : $Double, …)`` for ``names``, or ``, %a : $Double…`` after others."""
    listed = ", ".join(f"{env[v][0]} : ${env[v][1]}" for v in names)
    if first:
        return f"({listed})" if names else ""
    return f", {listed}" if names else ""


STRUCTS = {"Vec": "", "Pair": "@noDerivative "}  # the prefix of field b


def struct_decl(name: str, s: str) -> str:
    return f"struct {name} : Differentiable {{\n  var a: {s}\n  {STRUCTS[name]}var b: {s}\n}}\n"


def enum_decl(name: str, payloads: tuple[float | None, ...], s: str) -> str:
    """The enum and its chooser ``@choose_<name> : (Int) -> <name>``: case ``i % k``."""
    cases = "".join(f"  case c{i}{'' if p is None else f'({s})'}\n" for i, p in enumerate(payloads))
    fn_type = f"@convention(thin) (Int) -> {name}"
    lines = [
        "bb0(%i : $Int):",
        f"  %k = integer_literal $Int, {len(payloads)}",
        '  %r = builtin "srem"(%i : $Int, %k : $Int) : $Int',
    ]
    for i, payload in enumerate(payloads):
        last = i == len(payloads) - 1
        if not last:
            lines += [
                f"  %c{i} = integer_literal $Int, {i}",
                f'  %e{i} = builtin "cmp_eq"(%r : $Int, %c{i} : $Int) : $Bool',
                f"  cond_br %e{i}, bb{2 * i + 1}, bb{2 * i + 2}",
                f"bb{2 * i + 1}:",
            ]
        make = f"  %v{i} = enum ${name}, #{name}.c{i}!enumelt"
        if payload is not None:
            lines.append(f"  %p{i} = float_literal ${s}, {payload!r}")
            make += f", %p{i} : ${s}"
        lines += [make, f"  return %v{i} : ${name}"]
        if not last:
            lines.append(f"bb{2 * i + 2}:")
    body = "\n".join(lines)
    return f"enum {name} {{\n{cases}}}\n\nsil @choose_{name} : ${fn_type} {{\n{body}\n}}\n"


def function_text(header: str, body: Body) -> str:
    return f"{header} {{\n{body.text()}\n}}\n"


def recursive_text(r: Recursive, s: str, body: Body) -> str:
    """``@r(x, k)``: ``base(x)`` when ``k <= 0``, else ``combine(x, r(step(x), k - 1))``."""
    fn_type = f"@convention(thin) ({s}, Int) -> {s}"
    env: Env = {"x": ("%x", s)}
    body.start("bb0", [("%x", s), ("%k", "Int")])
    zero = body.int_literal(0)
    done = body.builtin("cmp_sle", [("%k", "Int"), (zero, "Int")], "Bool", "done")
    body.emit(f"cond_br {done}, bb1, bb2")
    body.start("bb1")
    body.emit(f"return {body.expr(r.base, env, {})} : ${s}")
    body.start("bb2")
    less = body.builtin("sub", [("%k", "Int"), (body.int_literal(1), "Int")], "Int", "less")
    step = body.expr(r.step, env, {})
    ref = body.result("fn", f"function_ref @{r.name} : ${fn_type}")
    env["v"] = (body.result("v", f"apply {ref}({step}, {less}) : ${fn_type}"), s)
    body.emit(f"return {body.expr(r.combine, env, {})} : ${s}")
    return function_text(f"sil @{r.name} : ${fn_type}", body)


def parameters(p: Program) -> list[tuple[str, str]]:
    """``@f``'s parameters: names and types."""
    s = p.scalar
    out = [("x", s), ("y", s)]
    out += [("p", p.struct_param)] if p.struct_param else []
    out += [("t", f"Tensor<{s}>")] if p.tensor_param else []
    return [*out, ("n", "Int")]


def gradient_caller(p: Program, params: list[tuple[str, str]]) -> str:
    """``@main``: the gradient of ``@f`` (with ``p.gradient``'s options) applied to its arguments."""
    s, given = p.scalar, p.gradient or ()
    tangents = [f"{t}.TangentVector" if t in STRUCTS else t for i, (_, t) in enumerate(params) if i in p.wrt]
    results = ([s] if "preserving_result" in given else []) + tangents
    result = results[0] if len(results) == 1 else f"({', '.join(results)})"
    seed = [("seed", s)] if "seedable" in given else []
    arguments = params + seed
    f_type = f"@convention(thin) ({', '.join(t for _, t in params)}) -> {s}"
    g_type = f"@convention(thin) ({', '.join(t for _, t in arguments)}) -> {result}"
    options = "".join(f" [{o}]" for o in given)
    body = Body(s)
    body.start("bb0", [(f"%{name}", t) for name, t in arguments])
    ref = body.result("fn", f"function_ref @f : ${f_type}")
    grad = body.result("g", f"gradient [wrt {', '.join(map(str, p.wrt))}]{options} {ref} : ${f_type}")
    listed = ", ".join(f"%{name}" for name, _ in arguments)
    body.emit(f"return {body.result('r', f'apply {grad}({listed}) : ${g_type}')} : ${result}")
    return function_text(f"sil @main : ${g_type}", body)


def sil_text(p: Program) -> str:
    """The module: declarations, choosers, helpers, the recursive helper, then ``@f``."""
    s = p.scalar
    bodies: list[Body] = []
    functions = []
    for helper in p.helpers:
        body = Body(s)
        bodies.append(body)
        body.start("bb0", [("%a", s), ("%b", s)])
        returned = body.statements(helper.body, {"a": ("%a", s), "b": ("%b", s)}, {})
        assert returned, "a helper ends in a return"
        functions.append(function_text(f"sil @{helper.name} : $@convention(thin) ({s}, {s}) -> {s}", body))
    if p.recursive is not None:
        bodies.append(Body(s))
        functions.append(recursive_text(p.recursive, s, bodies[-1]))
    params = parameters(p)
    body = Body(s, p.struct_param)
    bodies.append(body)
    body.start("bb0", [(f"%{name}", t) for name, t in params])
    env: Env = {name: (f"%{name}", t) for name, t in params if t != "Int"}
    returned = body.statements(p.body, env, {"n": "%n"})
    assert returned, "@f ends in a return"
    wrt = ", ".join(map(str, p.wrt))
    types = ", ".join(t for _, t in params)
    attribute = f"[differentiable source 0 wrt {wrt}] " if p.gradient is None else ""
    functions.append(function_text(f"sil {attribute}@f : $@convention(thin) ({types}) -> {s}", body))
    if p.gradient is not None:
        functions.append(gradient_caller(p, params))
    structs = set().union(*(b.structs for b in bodies)) | ({p.struct_param} if p.struct_param else set())
    enums = {name: payloads for b in bodies for name, payloads in b.enums.items()}
    decls = [struct_decl(name, s) for name in sorted(structs)]
    decls += [enum_decl(name, payloads, s) for name, payloads in sorted(enums.items())]
    return "\n".join(decls + functions)
