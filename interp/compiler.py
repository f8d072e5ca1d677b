"""Compiles SIL functions into Python functions, once, before they run.

Each SIL value becomes a local variable of a generated Python function, each instruction one or a
few Python statements chosen by instruction class and operand types at compile time, so a run does
no dictionary lookup and no type dispatch per instruction. Blocks after the entry block become the
arms of a ``while True`` loop dispatched on a block number; branches assign the target's block
arguments and set that number. Constants (helpers, backend operations, record classes, literal
objects) and the functions a body refers to are closure cells of the generated function.

Code generation writes a function as a small tree of statements (``interp/statements.py``) in
which the points where a counted run charges steps are data: each instruction's step, calls,
returns, jumps to a dispatched block, code that can fault. When steps are counted
(``--max-steps``), the metering layer (``interp/metering.py``) rewrites those points into the
statements that charge them; then the tree is rendered to Python source once. An uncounted run
renders the same tree with no counting code in it.

A scalar builtin used once by the next arithmetic is written inside its user's expression
(``interp/fusion.py``), and a call of a function called from one place, with one block and no
other calls, is written inline, with the tuples, structs and closures that then go unread left out
(``interp/inlining.py``): a lowered gradient runs its VJP and its pullback as one Python function.

Calls pass the call depth first; a callee deeper than the limit faults at the caller's ``apply``.
"""

from __future__ import annotations

import functools
import re
import types
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from accel.backend import CREATION_BUILTINS, ELEMENTWISE_UNARY, AllocationError, Backend, ShapeError
from interp.faults import Fault, RunError, run_error
from interp.fusion import ASSIGN, fused_results
from interp.inlining import InlinePlan, Inliner
from interp.metering import Metering, StepBudget
from interp.nan_trap import NaNTrap, checked
from interp.ownership import UNSHARED, Lifetimes, reusing
from interp.semantics import HELPERS, scalar_template
from interp.statements import (
    Arm,
    Branches,
    Call,
    Fallible,
    Goto,
    Loop,
    Nest,
    Node,
    Return,
    Step,
    Trap,
    render,
)
from interp.values import closure_wrapper
from sil.diagnostics import Diagnostic
from sil.instructions import (
    EXTRACTEES,
    ApplyInst,
    BranchInst,
    BuiltinInst,
    CondBranchInst,
    DestructureStructInst,
    DestructureTupleInst,
    DifferentiableFunctionExtractInst,
    DifferentiableFunctionInst,
    EnumInst,
    FloatLiteralInst,
    FunctionRefInst,
    GradientInst,
    IntegerLiteralInst,
    PartialApplyInst,
    ReturnInst,
    StructExtractInst,
    StructInst,
    SwitchEnumInst,
    ThinToThickFunctionInst,
    TupleExtractInst,
    TupleInst,
    UnreachableInst,
)
from sil.ir import Block, Function, Instruction, Module, Result, Value
from sil.types import BOOL, FLOAT, TENSOR_SHAPE, FunctionType, ScalarType, TensorType, Type

UNLOWERED = (GradientInst,)  # and a differentiable_function not yet given its derivatives


class CallFault(Fault):
    """Raised on entry to a function that cannot run this call; the caller's ``apply`` gives it
    its place (site -1 until then)."""

    def __init__(self, message: str) -> None:
        super().__init__(-1, message)

    def called_from(self, site: int) -> None:
        if self.site < 0:
            self.site = site
        else:
            super().called_from(site)


class DepthFault(CallFault):
    """Raised on entry to a function one call too deep."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"recursion deeper than {limit} calls (see --max-depth)")


def _not_lowered(inst: Instruction) -> RunError:
    return run_error(f"cannot run '{inst.opname}': the module must be differentiated and lowered first", inst)


def _fault_from_shape(site: int, name: str, error: ShapeError) -> Fault:
    if isinstance(error, AllocationError):
        return Fault(site, f"tensor too large in '{name}': {error}")
    return Fault(site, f"shape mismatch in '{name}': {error}")


class Compiler:
    """Turns a module's functions into Python functions, each one when it is first called.

    A function is compiled with the functions its body uses as values (passed, stored, partially
    applied), so that a function value is always compiled code. A function it only calls directly
    is bound to a stand-in until then: the stand-in's first call compiles it, rebinds every caller
    to it, and calls it, so later calls cost nothing more. A declaration without a body is bound
    to a stand-in that faults at the ``apply`` that reaches it: a module that names one runs as
    long as it does not call it.
    """

    def __init__(
        self,
        module: Module,
        backend: Backend,
        max_depth: int,
        budget: StepBudget | None,
        nan_trap: NaNTrap | None = None,
        float_as_double: bool = False,
    ) -> None:
        self.module = module
        self.backend = backend
        self.max_depth = max_depth
        self.float_as_double = float_as_double
        """Float computed as Double: the Double shadow of the module (see ``Program``)."""
        self.sites: list[Instruction] = []
        self.compiled: dict[str, Callable[..., Any]] = {}
        self.packed = _packed_functions(module)
        self._stand_ins: dict[str, Callable[..., Any]] = {}
        self._waiting: dict[str, list[Callable[[Any], None]]] = {}  # cell setters, by callee
        self.frames_per_call = _frames_per_call(module)
        """Python frames one SIL call may take: the callee's, and the closure wrappers' before it."""
        self.metering = None if budget is None else Metering(budget, self.site)
        """Charges the steps of a counted run (see ``interp.metering``); None: steps are not counted."""
        self.with_element_reusing = reusing(
            backend.with_element_in_place, backend.with_element, backend.owns_buffer, UNSHARED
        )
        """``with_element`` writing in place into a tensor nothing else holds."""
        self.nan_trap = nan_trap
        """Tests the results of builtins under ``--trap-nan`` (see ``interp.nan_trap``); None: no tests."""
        # Counted runs compile each call as a call: their steps are charged at calls and returns.
        # Under the trap, a builtin it tests can fault, so it is not left out when unread.
        self.inliner = (
            None if budget is not None else Inliner(module) if nan_trap is None else Inliner(module, checked)
        )

    def function(self, name: str) -> Callable[..., Any]:
        """The compiled form of ``@name``, compiling it and the functions it uses as values first,
        taking its arguments one by one."""
        fn = self.module.functions[name]
        if fn.is_declaration:
            message = f"cannot run '@{name}': it is a declaration without a body"
            raise RunError([Diagnostic("error", message, fn.span)])
        compiled = self._compiled(name)
        bound = self.packed.get(name)
        if bound is None:
            return compiled

        def by_one(_d: int, *args: Any) -> Any:
            return compiled(_d, *args[:-bound], args[-bound:])

        return by_one

    def _compiled(self, name: str) -> Callable[..., Any]:
        """The compiled function itself (see ``_packed_functions`` for how it takes arguments)."""
        found = self.compiled.get(name)
        if found is not None:
            return found
        pending = self._batch(name)
        built: dict[str, Callable[..., Any]] = {}
        binders = []
        for i, n in enumerate(pending):
            code = _FunctionCode(self, self.module.functions[n], i)
            fn, setters = code.build()
            built[n] = fn
            binders.append((setters, code.callees))
        # Only a batch that compiled whole is kept: a function whose callees are unbound never runs.
        self.compiled.update(built)
        for setters, callees in binders:
            for set_cell, callee in zip(setters, callees):
                form = self.compiled.get(callee)
                if form is None:
                    form = self._stand_in(callee)
                    if not self.module.functions[callee].is_declaration:
                        self._waiting.setdefault(callee, []).append(set_cell)
                set_cell(form)
        for n in pending:  # callers bound to a stand-in of a function of this batch
            for set_cell in self._waiting.pop(n, ()):
                set_cell(built[n])
        return self.compiled[name]

    def _batch(self, name: str) -> list[str]:
        """``@name`` and the functions with a body it reaches through values, not compiled yet."""
        order: list[str] = []
        seen = {name}
        stack = [name]
        while stack:
            n = stack.pop()
            order.append(n)
            for callee in self._value_references(n):
                if callee not in seen and callee not in self.compiled:
                    seen.add(callee)
                    if not self.module.functions[callee].is_declaration:
                        stack.append(callee)
        return order

    def _value_references(self, name: str) -> list[str]:
        """The functions ``@name`` refers to as values, also in the callees the inliner may write
        into it: their references become ``@name``'s own (and a stand-in, which takes a function's
        arguments one by one, must not become a closure's function)."""
        found: list[str] = []
        stack = [name]
        seen = {name}
        while stack:
            fn = self.module.functions[stack.pop()]
            found += _value_references(fn)
            if self.inliner is None:
                continue
            inlinable = [
                inst.function_name
                for inst in fn.instructions()
                if isinstance(inst, FunctionRefInst)
                and inst.function_name not in seen
                and _direct_only(inst)
                and self.inliner.height(inst.function_name) is not None
            ]
            seen.update(inlinable)
            stack += inlinable
        return found

    def _stand_in(self, name: str) -> Callable[..., Any]:
        """What a caller of ``@name`` is bound to until ``@name`` is compiled (see the class)."""
        found = self._stand_ins.get(name)
        if found is not None:
            return found
        fn = self.module.functions[name]
        if fn.is_declaration:
            message = f"cannot run '@{name}': it is a declaration without a body"

            def declared(_d: int, *args: Any) -> Any:
                raise CallFault(message)

            found = declared
        else:  # the compiled function's own parameters, so that the call is a plain Python call
            params = "".join(f", a{i}" for i in range(len(fn.blocks[0].args)))
            source = (
                "def _factory(_compile, _n):\n"
                f"    def first_call(_d{params}):\n"
                f"        return _compile(_n)(_d{params})\n"
                "    return first_call\n"
            )
            namespace: dict[str, Any] = {}
            exec(compiled_code(source, f"<sil @{name} before its first call>"), namespace)
            found = namespace["_factory"](self._compiled, name)
        self._stand_ins[name] = found
        return found

    def site(self, inst: Instruction) -> int:
        self.sites.append(inst)
        return len(self.sites) - 1


class _FunctionCode:
    """The statements of one SIL function, the constants they close over, and the Python
    function they compile to."""

    def __init__(self, compiler: Compiler, fn: Function, index: int) -> None:
        self.compiler = compiler
        self.fn = fn
        self.names: dict[Value, str] = {}
        self.constants: dict[str, Any] = {}
        self._constant_ids: dict[int, str] = {}
        self.callees: list[str] = []
        self._callee_vars: dict[str, str] = {}
        self.block_numbers = {b: i for i, b in enumerate(fn.blocks)}
        self.single_entry = _single_entry_blocks(fn)
        inliner = compiler.inliner
        self.plan = InlinePlan(functions=[fn]) if inliner is None else inliner.plan(fn)
        self._inline_level = 0  # how many inlined calls the code being written is inside
        # Under --trap-nan, nothing is fused: the tests read each value by its variable. Nor in a
        # Double shadow, whose Float builtins have other templates than fusion reads.
        self.fused = (
            set().union(*(fused_results(f) for f in self.plan.functions))
            if compiler.nan_trap is None and not compiler.float_as_double
            else set()
        )
        self.lifetimes = Lifetimes(fn, self.plan)  # where tensors are let go (``interp.ownership``)
        self._expressions: dict[Value, str] = {}  # a fused result's expression, once emitted
        self._arms: list[Block] = []
        self._arm_set: set[Block] = set()
        self._nesting = 0

    # --- names ------------------------------------------------------------------------------
    def var(self, v: Value) -> str:
        v = self.plan.forward.get(v, v)
        name = self.names.get(v)
        if name is None:
            name = self.names[v] = f"v{len(self.names)}"
        return name

    def operand(self, v: Value) -> str:
        """How an instruction reads ``v``: its variable, or its expression when it is fused."""
        expression = self._expressions.get(v)
        return self.var(v) if expression is None else expression

    def const(self, value: Any, hint: str = "k") -> str:
        """The name of a closure cell holding ``value`` (one cell per distinct object)."""
        name = self._constant_ids.get(id(value))
        if name is None:
            name = f"_{hint}{len(self.constants)}"
            while name in HELPERS or name in self.constants:  # ``_f32`` names a helper too
                name += "_"
            self._constant_ids[id(value)] = name
            self.constants[name] = value
        return name

    def helper(self, name: str) -> str:
        self.constants.setdefault(name, HELPERS[name])
        return name

    def callee(self, name: str) -> str:
        var = self._callee_vars.get(name)
        if var is None:
            var = self._callee_vars[name] = f"_fn{len(self.callees)}"
            self.callees.append(name)
        return var

    # --- building ---------------------------------------------------------------------------
    def build(self) -> tuple[Callable[..., Any], tuple[Callable[[Any], None], ...]]:
        """The compiled function, and a setter of each callee's cell (in ``callees`` order)."""
        head, body = self._function()
        metering = self.compiler.metering
        if metering is not None:
            body = metering.function(body, self.const)
        for name in ("_Fault", "_DepthFault", "_MAXD"):
            self.constants.setdefault(
                name, {"_Fault": Fault, "_DepthFault": DepthFault, "_MAXD": self.compiler.max_depth}[name]
            )
        if metering is not None:
            self.constants.update(metering.names)
        if self.compiler.nan_trap is not None:
            self.constants.update(self.compiler.nan_trap.names)
        params = ", ".join(self.constants)
        callee_vars = [self._callee_vars[c] for c in self.callees]
        lines = [f"def _factory({params}):"]
        if callee_vars:
            lines.append(f"    {' = '.join(callee_vars)} = None")
        for v in callee_vars:  # one setter per callee's cell: rebinding one costs one call
            lines += [f"    def _set{v}(_x):", f"        nonlocal {v}", f"        {v} = _x"]
        lines += ["    " + line for line in head]
        # With one dispatched block, every jump goes to it: no block number is needed.
        lines += render(body, len(self._arms) > 1, "        ")
        lines.append(f"    return f, ({''.join(f'_set{v}, ' for v in callee_vars)})")
        source = "\n".join(lines) + "\n"
        namespace: dict[str, Any] = {}
        exec(compiled_code(source, f"<sil @{self.fn.name}>"), namespace)
        fn, setters = namespace["_factory"](*self.constants.values())
        fn.__qualname__ = fn.__name__ = f"sil_{self.fn.name}"
        return fn, setters

    def _function(self) -> tuple[list[str], list[Node]]:
        """The function's header (``def``, the depth test, the parameters), and its body: the
        entry block, then the dispatch loop over the blocks not written in place."""
        entry = self.fn.blocks[0]
        names = [self.var(a) for a in entry.args]
        bound = self.compiler.packed.get(self.fn.name)
        if bound is None:
            params = ", ".join(["_d", *names])
            unpack = []
        else:  # called only through closures: the bound arguments come as one tuple
            params = ", ".join(["_d", *names[:-bound], "_bound"])
            unpack = [f"    {''.join(n + ', ' for n in names[-bound:])}= _bound"]
        head = [f"def f({params}):", "    if _d > _MAXD:", "        raise _DepthFault(_MAXD)", *unpack]
        body = self._block(entry)
        arms: list[Arm] = []
        while len(arms) < len(self._arms):  # emitting an arm can add arms
            block = self._arms[len(arms)]
            arms.append((self.block_numbers[block], self._block(block)))
        if arms:
            body.append(Loop(arms))
        return head, body

    def _block(self, block: Block) -> list[Node]:
        """A block's statements: each instruction's step, then its code."""
        out: list[Node] = []
        for inst in block.instructions:
            out.append(Step(inst))
            out += self._instruction(inst)
        return out

    # --- instructions -----------------------------------------------------------------------
    def _instruction(self, inst: Instruction) -> Iterable[Node]:
        if inst in self.plan.folded:
            return ()
        emit = _EMITTERS.get(type(inst))
        if emit is None:
            if isinstance(inst, UNLOWERED):
                raise _not_lowered(inst)
            raise run_error(f"the interpreter cannot run '{inst.opname}'", inst)
        code = emit(self, inst)
        trap = self.compiler.nan_trap
        if trap is not None and checked(inst):  # tested before the ``del`` of the operands it reads
            assert isinstance(inst, BuiltinInst)
            code = [*code, *trap.check(inst, self.compiler.site(inst), self.var, self.const)]
        released = self.lifetimes.released.get(inst)
        if released is None:
            return code
        return [*code, f"del {', '.join(self.var(v) for v in released)}"]

    def builtin(self, inst: BuiltinInst) -> list[Node]:
        ops = [self.operand(o) for o in inst.operands]
        types = [o.type for o in inst.operands]
        if inst.name == "no_derivative":  # the identity, on a value of any type
            return [f"{self.var(inst.result)} = {ops[0]}"]
        if isinstance(inst.type, TensorType) or any(isinstance(t, TensorType) for t in types):
            return self._tensor_builtin(inst, self.var(inst.result), ops)
        operand = types[0] if types else inst.type
        assert isinstance(operand, ScalarType) and isinstance(inst.type, ScalarType)
        template = scalar_template(inst.name, operand, inst.type, self.compiler.float_as_double)
        if template is None:
            raise run_error(f"the interpreter has no rule for builtin '{inst.name}' on {operand}", inst)
        for name in _helpers_of(template):
            self.helper(name)
        a, b, c = [*ops, "", "", ""][:3]
        if inst.result in self.fused:  # no statement: its one user reads the expression
            expression = template.removeprefix(ASSIGN).format(a=a, b=b, c=c)
            self._expressions[inst.result] = f"({expression})"
            return []
        site = self.compiler.site(inst) if "{site}" in template else -1
        lines: list[Node] = [*template.format(r=self.var(inst.result), a=a, b=b, c=c, site=site).split("\n")]
        return lines if site < 0 else [Fallible(lines)]  # a template that takes its site can fault

    def _tensor_builtin(self, inst: BuiltinInst, r: str, ops: list[str]) -> list[Node]:
        backend_op = self.const(self.compiler.backend.op(inst.name), "T")
        if inst in self.lifetimes.moved:
            # The variable lets go of the tensor as it is passed: nothing else holding it, the
            # tensor is written in place (``interp.ownership``).
            backend_op = self.const(self.compiler.with_element_reusing, "T")
            ops = [f"({ops[0]}, {ops[0]} := None)[0]", *ops[1:]]
        # A TensorShape operand (a tuple) gives the backend its dimensions, as trailing Ints would.
        args = [f"*{op}" if o.type == TENSOR_SHAPE else op for op, o in zip(ops, inst.operands)]
        if inst.name in CREATION_BUILTINS:
            element = inst.type.element if isinstance(inst.type, TensorType) else inst.type
            single = element == FLOAT and not self.compiler.float_as_double
            args.insert(0, self.const(np.float32 if single else np.float64, "dtype"))
        call = f"{r} = {backend_op}({', '.join(args)})"
        if inst.name in ELEMENTWISE_UNARY:
            return [call]
        site = self.compiler.site(inst)
        shape_error = self.const(ShapeError, "ShapeError")
        fault = f"raise {self.const(_fault_from_shape, 'shape_fault')}({site}, {inst.name!r}, _e) from None"
        return [Fallible([Nest("try:", [call]), Nest(f"except {shape_error} as _e:", [fault])])]

    def apply(self, inst: ApplyInst) -> list[Node]:
        inlined = self.plan.inlined.get(inst)
        if inlined is not None:
            return self._inline(inst, inlined)
        owner = inst.callee.owner if isinstance(inst.callee, Result) else None
        if isinstance(owner, FunctionRefInst) and _direct_only(owner):  # the cell: rebound once compiled
            callee = self.callee(owner.function_name)
        else:
            callee = self.var(inst.callee)
        args = ", ".join([f"_d + {1 + self._inline_level}", *[self.var(a) for a in inst.args]])
        if _is_thick(inst.callee.type):  # a closure: (function, its bound arguments)
            args += f", {callee}[1]"
            callee += "[0]"
        site = self.compiler.site(inst)
        call = f"{self.var(inst.result)} = {callee}({args})"
        return [
            Call([Nest("try:", [call]), Nest("except _Fault as _e:", [f"_e.called_from({site})", "raise"])])
        ]

    def _inline(self, inst: ApplyInst, callee: Function) -> list[Node]:
        """The body of a leaf callee in place of its call (see ``interp.inlining``; counted runs
        inline nothing): its parameters and its result are its arguments' and its returned
        value's variables. The depth limit and the ``called from`` note of a fault are kept as
        the call would keep them."""
        self._inline_level += 1
        body: list[Node] = [Nest(f"if _d + {self._inline_level} > _MAXD:", ["raise _DepthFault(_MAXD)"])]
        for inner in callee.blocks[0].instructions[:-1]:
            body += self._instruction(inner)
        self._inline_level -= 1
        site = self.compiler.site(inst)
        return [
            Fallible([Nest("try:", body), Nest("except _Fault as _e:", [f"_e.called_from({site})", "raise"])])
        ]

    def partial_apply(self, inst: PartialApplyInst) -> list[str]:
        callee = self.var(inst.callee)
        bound = "".join(f"{self.var(a)}, " for a in inst.args)
        r = self.var(inst.result)
        callee_type = inst.callee.type
        assert isinstance(callee_type, FunctionType)
        params = len(callee_type.params) - len(inst.args)
        if _is_thick(callee_type):
            if not inst.args:  # binds nothing: the same closure (and no wrapper to grow a call)
                return [f"{r} = {callee}"]
            wrap = self.const(closure_wrapper(params, len(inst.args), True), "rebinding")
            return [f"{r} = ({wrap}({callee}[0]), (({bound}), {callee}[1]))"]
        owner = inst.callee.owner if isinstance(inst.callee, Result) else None
        if isinstance(owner, FunctionRefInst) and self.compiler.packed.get(owner.function_name) == len(
            inst.args
        ):
            return [f"{r} = ({callee}, ({bound}))"]
        wrap = self.const(closure_wrapper(params, len(inst.args), False), "unpacking")
        return [f"{r} = ({wrap}({callee}), ({bound}))"]

    def thin_to_thick(self, inst: ThinToThickFunctionInst) -> list[str]:
        t = inst.operands[0].type
        assert isinstance(t, FunctionType)
        wrap = self.const(closure_wrapper(len(t.params), 0, False), "unpacking")
        return [f"{self.var(inst.result)} = ({wrap}({self.var(inst.operands[0])}), ())"]

    def branch_to(self, dest: Block, values: list[Value]) -> list[Node]:
        lines: list[Node] = []
        if values:  # empty for switch_enum, which assigns a payload argument itself
            targets = ", ".join(self.var(a) for a in dest.args)
            sources = ", ".join(self.var(v) for v in values)
            lines.append(f"{targets} = {sources}")
            passed_on = self.lifetimes.passed_on(dest, values) if self._passes_tensors(values) else []
            if passed_on:  # the arguments alone hold them now (see ``interp.ownership``)
                lines.append(f"{' = '.join(self.var(v) for v in passed_on)} = None")
        if dest in self.single_entry and self._nesting < _MAX_INLINE_NESTING:
            # The only way into ``dest``: its code goes here, with no dispatch.
            self._nesting += 1
            lines += self._block(dest)
            self._nesting -= 1
        else:
            if dest not in self._arm_set:
                self._arm_set.add(dest)
                self._arms.append(dest)
            lines.append(Goto(self.block_numbers[dest]))
        return lines

    @staticmethod
    def _passes_tensors(values: list[Value]) -> bool:
        return any(isinstance(v.type, TensorType) for v in values)

    def cond_br(self, inst: CondBranchInst) -> list[Node]:
        if_true = Nest(f"if {self.var(inst.operands[0])}:", self.branch_to(inst.true_dest, inst.true_args))
        return [Branches([if_true, Nest("else:", self.branch_to(inst.false_dest, inst.false_args))])]

    def switch_enum(self, inst: SwitchEnumInst) -> list[Node]:
        e = self.var(inst.operands[0])
        arms: list[tuple[str | None, Block]] = [(case, dest) for case, dest in inst.cases]
        if inst.default is not None:
            arms.append((None, inst.default))
        clauses = []
        for i, (case, dest) in enumerate(arms):
            if i == len(arms) - 1:
                head = "else:" if i else "if True:"
            else:
                head = f"{'if' if i == 0 else 'elif'} _c == {case!r}:"
            body: list[Node] = []
            if dest.args and case is not None:
                body.append(f"{self.var(dest.args[0])} = {e}[1]")
            clauses.append(Nest(head, body + self.branch_to(dest, [])))
        return [f"_c = {e}[0]", Branches(clauses)]

    def struct(self, inst: StructInst) -> list[str]:
        if len(inst.operands) == 1:  # a one-field struct runs as its field (see interp/values.py)
            return [f"{self.var(inst.result)} = {self.var(inst.operands[0])}"]
        fields = "".join(f"{self.var(o)}, " for o in inst.operands)
        return [f"{self.var(inst.result)} = ({fields})"]

    def struct_extract(self, inst: StructExtractInst) -> list[str]:
        t = inst.operands[0].type
        decl = self.compiler.module.struct(str(t))
        assert decl is not None
        if len(decl.fields) == 1:
            return [f"{self.var(inst.result)} = {self.var(inst.operands[0])}"]
        index = [f.name for f in decl.fields].index(inst.field)
        return [f"{self.var(inst.result)} = {self.var(inst.operands[0])}[{index}]"]

    def destructure(self, inst: Instruction) -> list[str]:
        if not inst.results:
            return []
        if isinstance(inst, DestructureStructInst) and len(inst.results) == 1:
            return [f"{self.var(inst.result)} = {self.var(inst.operands[0])}"]
        targets = "".join(f"{self.var(r)}, " for r in inst.results)
        return [f"{targets}= {self.var(inst.operands[0])}"]

    def enum(self, inst: EnumInst) -> list[str]:
        payload = self.var(inst.operands[0]) if inst.operands else "None"
        return [f"{self.var(inst.result)} = ({inst.case!r}, {payload})"]

    def differentiable_function(self, inst: DifferentiableFunctionInst) -> list[str]:
        """A bundle whose derivatives the differentiation pass named runs as their triple."""
        if len(inst.operands) != 3:
            raise _not_lowered(inst)
        return [f"{self.var(inst.result)} = ({', '.join(self.var(o) for o in inst.operands)})"]

    def literal(self, inst: IntegerLiteralInst | FloatLiteralInst) -> list[str]:
        r = self.var(inst.result)
        value = inst.value
        if isinstance(inst, IntegerLiteralInst):
            return [f"{r} = {bool(value) if inst.type == BOOL else value!r}"]
        if inst.type == FLOAT and not self.compiler.float_as_double:
            return [f"{r} = {self.const(np.float32(value), 'f')}"]
        if value != value or value in (float("inf"), float("-inf")):
            return [f"{r} = {self.const(value, 'd')}"]
        return [f"{r} = {value!r}"]


@functools.lru_cache(maxsize=2048)
def compiled_code(source: str, filename: str) -> types.CodeType:
    """The code of a function's source. Programs of one module (a Float run and its Double
    shadow, a metered run and a plain one, each check's) write many functions alike, and
    CPython's ``compile`` is most of the time it takes to make one."""
    return compile(source, filename, "exec")


@functools.cache
def _helpers_of(template: str) -> tuple[str, ...]:
    """The helpers a template names (``_dexp``, …), found once per template."""
    return tuple(sorted(set(re.findall(r"\b_[a-z0-9_]+\b", template)) & HELPERS.keys()))


def _is_thick(t: Type) -> bool:
    """Whether values of ``t`` are closures, which run as pairs (see ``interp.values.closure_wrapper``)."""
    return isinstance(t, FunctionType) and t.convention == "callee_guaranteed"


def _packed_functions(module: Module) -> dict[str, int]:
    """The functions used only as the callee of ``partial_apply``s that all bind the same number
    of arguments (a pullback or a differential, partially applied to its record), with that
    number: these are compiled to take their bound arguments as one tuple, as closures pass them,
    so that calling such a closure needs no wrapper."""
    bound: dict[str, int | None] = {}
    for fn in module.functions.values():
        for inst in fn.instructions():
            if not isinstance(inst, FunctionRefInst):
                continue
            name = inst.function_name
            uses = inst.result.uses  # one entry per operand slot
            as_callee = [
                u
                for u in uses
                if isinstance(u, PartialApplyInst)
                and u.operands[0] is inst.result
                and inst.result not in u.operands[1:]
            ]
            counts = {len(u.operands) - 1 for u in as_callee}
            if len(as_callee) != len(uses) or len(counts) != 1:  # unused, or used otherwise too
                bound[name] = None
                continue
            (count,) = counts
            if count == 0 or bound.get(name, count) != count:
                bound[name] = None
            else:
                bound[name] = count
    return {name: count for name, count in bound.items() if count is not None}


def _direct_only(ref: FunctionRefInst) -> bool:
    """Whether every use of the reference calls it (an ``apply``'s callee, not an argument):
    such a call reads the callee's cell, which a stand-in rebinds (see ``Compiler``)."""
    result = ref.result
    return all(
        isinstance(u, ApplyInst) and u.operands[0] is result and result not in u.args for u in result.uses
    )


def _value_references(fn: Function) -> list[str]:
    """The functions ``fn`` refers to other than by calling them directly: as values."""
    return [
        inst.function_name
        for inst in fn.instructions()
        if isinstance(inst, FunctionRefInst) and not _direct_only(inst)
    ]


def _frames_per_call(module: Module) -> int:
    """At most how many Python frames one call runs on: the function's own, a wrapper of a thin
    function, and one wrapper for each ``partial_apply`` of a closure in the chain that built the
    closure, each binding at least one of the parameters of the closure it rebinds."""
    params = 0
    for fn in module.functions.values():
        for inst in fn.instructions():
            if isinstance(inst, PartialApplyInst) and _is_thick(inst.callee.type):
                callee_type = inst.callee.type
                assert isinstance(callee_type, FunctionType)
                params = max(params, len(callee_type.params))
    return 2 + params


def _single_entry_blocks(fn: Function) -> set[Block]:
    """Blocks other than the entry with exactly one incoming edge from a reachable block."""
    edges: dict[Block, int] = {}
    seen = {fn.blocks[0]}
    stack = [fn.blocks[0]]
    while stack:
        for succ in stack.pop().successors():
            edges[succ] = edges.get(succ, 0) + 1
            if succ not in seen:
                seen.add(succ)
                stack.append(succ)
    return {b for b, n in edges.items() if n == 1 and b is not fn.blocks[0]}


# Inlining single-entry blocks nests their code; Python allows 100 levels of indentation.
_MAX_INLINE_NESTING = 40


_EMITTERS: dict[type[Instruction], Callable[[_FunctionCode, Any], Iterable[Node]]] = {
    BuiltinInst: _FunctionCode.builtin,
    IntegerLiteralInst: _FunctionCode.literal,
    FloatLiteralInst: _FunctionCode.literal,
    FunctionRefInst: lambda c, i: (
        [] if _direct_only(i) else [f"{c.var(i.result)} = {c.callee(i.function_name)}"]
    ),
    ApplyInst: _FunctionCode.apply,
    PartialApplyInst: _FunctionCode.partial_apply,
    ThinToThickFunctionInst: _FunctionCode.thin_to_thick,
    TupleInst: lambda c, i: [f"{c.var(i.result)} = ({''.join(c.var(o) + ', ' for o in i.operands)})"],
    TupleExtractInst: lambda c, i: [f"{c.var(i.result)} = {c.var(i.operands[0])}[{i.index}]"],
    DestructureTupleInst: _FunctionCode.destructure,
    StructInst: _FunctionCode.struct,
    StructExtractInst: _FunctionCode.struct_extract,
    DestructureStructInst: _FunctionCode.destructure,
    EnumInst: _FunctionCode.enum,
    DifferentiableFunctionInst: _FunctionCode.differentiable_function,
    DifferentiableFunctionExtractInst: lambda c, i: [
        f"{c.var(i.result)} = {c.var(i.operands[0])}[{EXTRACTEES.index(i.extractee)}]"
    ],
    ReturnInst: lambda c, i: [Return(c.var(i.operands[0]))],
    BranchInst: lambda c, i: c.branch_to(i.dest, i.operands),
    CondBranchInst: _FunctionCode.cond_br,
    SwitchEnumInst: _FunctionCode.switch_enum,
    UnreachableInst: lambda c, i: [Trap(f"raise _Fault({c.compiler.site(i)}, 'unreachable executed')")],
}
