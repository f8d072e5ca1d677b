"""Run-time values of the interpreter, and their conversion to and from Python values.

Inside a run: Float is ``numpy.float32`` (so every result rounds to binary32, as NumPy does), Double
is ``float``, Int is ``int`` (kept in the signed 64-bit range), Bool is ``bool``, a tuple and a
struct are ``tuple``s (a struct's fields in declaration order; a struct of one field is that
field's value itself), an enum is a pair ``(case name, payload or None)``, a tensor is an array of
the active backend, a function value is a Python function taking the call depth first, a
closure a pair of such a function and the arguments bound to it (see ``unpacking``), and a
``@differentiable`` function the triple of its original, its JVP and its VJP. Types
are static, so a run needs no more: building a record or a trace enum costs at most one tuple (a
loop's derivative builds them on every trip). At the Python API's boundary, scalars become
``float``/``int``/``bool``, structs become records (``StructValue``: fields by name), enums
``EnumValue``s, and functions ``SILFunction`` objects that convert their arguments and results.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sil.instructions.differentiation import EXTRACTEES, extractee_type
from sil.ir import Module, StructDecl
from sil.types import (
    BOOL,
    DOUBLE,
    FLOAT,
    INT,
    TENSOR_SHAPE,
    FunctionType,
    NominalType,
    ScalarType,
    TensorType,
    TupleType,
    Type,
)

if TYPE_CHECKING:
    from accel.backend import Backend

INT_MIN, INT_MAX = -(2**63), 2**63 - 1


class StructValue(tuple):  # type: ignore[type-arg]
    """A struct value: its fields in declaration order, readable by name (``p.x``).

    Each declared struct gets a subclass (see ``struct_class``) whose properties name the fields.
    """

    __slots__ = ()
    struct_name = ""
    field_names: tuple[str, ...] = ()

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={v!r}" for n, v in zip(self.field_names, self))
        return f"{self.struct_name}({fields})"

    def __getattr__(self, name: str) -> Any:
        """Fields whose names are not Python identifiers (``p.__getattr__("a$b")``)."""
        try:
            return self[self.field_names.index(name)]
        except ValueError:
            raise AttributeError(f"struct '{self.struct_name}' has no field '{name}'") from None

    def asdict(self) -> dict[str, Any]:
        return dict(zip(self.field_names, self))


def struct_class(decl: StructDecl) -> type[StructValue]:
    """The record class of a struct declaration."""
    names = tuple(f.name for f in decl.fields)
    namespace: dict[str, Any] = {"__slots__": (), "struct_name": decl.name, "field_names": names}
    for i, name in enumerate(names):
        if name.isidentifier() and name not in namespace:  # a field named `count` hides tuple.count
            namespace[name] = property(operator.itemgetter(i))
    return type(decl.name, (StructValue,), namespace)


class EnumValue:
    """An enum value: its case name and its payload (None when the case has none)."""

    __slots__ = ("case", "enum", "payload")

    def __init__(self, enum: str, case: str, payload: Any = None) -> None:
        self.enum = enum
        self.case = case
        self.payload = payload

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, EnumValue)
            and (self.enum, self.case) == (other.enum, other.case)
            and _equal(self.payload, other.payload)
        )

    def __hash__(self) -> int:
        return hash((self.enum, self.case))

    def __repr__(self) -> str:
        payload = "" if self.payload is None else f"({self.payload!r})"
        return f"{self.enum}.{self.case}{payload}"


def _equal(a: Any, b: Any) -> bool:
    result = a == b
    return bool(result) if isinstance(result, (bool, np.bool_)) else bool(np.all(result))


class ArgumentError(Exception):
    """A Python value does not fit a parameter's type."""


class Converter:
    """Converts values between the Python API and a run, by SIL type."""

    def __init__(self, module: Module, backend: Backend, float_as_double: bool = False) -> None:
        self.module = module
        self.backend = backend
        self.float_dtype = np.float64 if float_as_double else np.float32
        """What a Float is inside a run: binary32, or binary64 in a Double shadow."""
        self.records: dict[str, type[StructValue]] = {}  # each struct's record class, made once
        self.call: Callable[[Callable[..., Any], FunctionType, Sequence[Any]], Any] | None = None

    # --- into a run -------------------------------------------------------------------------
    def to_run(self, value: Any, t: Type, what: str) -> Any:
        """The run-time form of a Python value for type ``t``; ArgumentError when it does not fit."""
        if isinstance(t, ScalarType):
            return self._scalar_to_run(value, t, what)
        if isinstance(t, TensorType):
            dtype = self.float_dtype if t.element == FLOAT else np.float64
            if not isinstance(value, np.ndarray) and self.backend.is_tensor(value):
                if value.dtype == dtype:
                    return value
                return self.backend.from_host(self.backend.to_host(value), dtype)
            # A host array is copied in (for NumPy too), so a run never aliases the caller's memory.
            try:
                host = np.asarray(value, dtype=dtype)
            except (TypeError, ValueError) as e:
                raise ArgumentError(f"{what} must be a {t}: {e}") from None
            return self.backend.from_host(host, dtype)
        if isinstance(t, TupleType):
            items = self._sequence(value, len(t.elements), t, what)
            return tuple(self.to_run(v, e, f"{what}.{i}") for i, (v, e) in enumerate(zip(items, t.elements)))
        if t == TENSOR_SHAPE:
            return self._shape_to_run(value, what)
        if isinstance(t, NominalType):
            return self._nominal_to_run(value, t, what)
        if isinstance(t, FunctionType):
            return self._function_to_run(value, t, what)
        raise ArgumentError(f"{what}: values of type {t} cannot be passed")

    def _scalar_to_run(self, value: Any, t: ScalarType, what: str) -> Any:
        if t == BOOL:
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
            raise ArgumentError(f"{what} must be a Bool, not {value!r}")
        if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)
        ):
            raise ArgumentError(f"{what} must be {'an' if t == INT else 'a'} {t}, not {value!r}")
        if t == INT:
            if isinstance(value, (float, np.floating)):
                raise ArgumentError(f"{what} must be an Int, not {value!r}")
            if not INT_MIN <= int(value) <= INT_MAX:
                raise ArgumentError(f"{what}: {value} does not fit in Int")
            return int(value)
        if t == FLOAT and self.float_dtype is np.float32:
            return np.float32(value)
        return float(value)

    @staticmethod
    def _shape_to_run(value: Any, what: str) -> tuple[int, ...]:
        """A TensorShape runs as a tuple of Python ints, each a dimension (never negative)."""
        if not isinstance(value, (tuple, list)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, (bool, np.bool_)) and 0 <= d <= INT_MAX
            for d in value
        ):
            raise ArgumentError(f"{what} must be a TensorShape (a sequence of dimensions), not {value!r}")
        return tuple(int(d) for d in value)

    @staticmethod
    def _sequence(value: Any, n: int, t: Type, what: str) -> Sequence[Any]:
        if not isinstance(value, (tuple, list)) or len(value) != n:
            raise ArgumentError(f"{what} must be a {t} ({n} element{'s' if n != 1 else ''}), not {value!r}")
        return value

    def _nominal_to_run(self, value: Any, t: NominalType, what: str) -> Any:
        decl = self.module.lookup_type(t.name)
        if isinstance(decl, StructDecl):
            if isinstance(value, dict):
                missing = [f.name for f in decl.fields if f.name not in value]
                if missing:
                    raise ArgumentError(f"{what} lacks field '{missing[0]}' of {t}")
                value = [value[f.name] for f in decl.fields]
            items = self._sequence(value, len(decl.fields), t, what)
            fields = tuple(self.to_run(v, f.type, f"{what}.{f.name}") for v, f in zip(items, decl.fields))
            return fields[0] if len(fields) == 1 else fields
        if decl is not None:
            if not isinstance(value, EnumValue) or value.enum != t.name:
                raise ArgumentError(f"{what} must be a {t} (an EnumValue), not {value!r}")
            case = decl.case(value.case)
            if case is None:
                raise ArgumentError(f"{what}: enum '{t}' has no case '{value.case}'")
            if case.payload is None:
                if value.payload is not None:
                    raise ArgumentError(f"{what}: case '{value.case}' has no payload")
                return (case.name, None)
            return (case.name, self.to_run(value.payload, case.payload, f"{what}.{case.name}"))
        raise ArgumentError(f"{what}: type {t} is not declared")

    def _function_to_run(self, value: Any, t: FunctionType, what: str) -> Any:
        """A function (thin) runs as a Python function; a closure (``@callee_guaranteed``) as a
        pair (see ``unpacking``); a ``@differentiable`` function as the triple of its original, its
        JVP and its VJP (given from Python as a ``SILFunction`` of its type or such a triple)."""
        if t.differentiable:
            if isinstance(value, SILFunction) and value.type == t:
                return value.run_form
            if not isinstance(value, (tuple, list)) or len(value) != len(EXTRACTEES):
                raise ArgumentError(f"{what} must be a {t}: a triple (original, jvp, vjp), not {value!r}")
            return tuple(
                self._function_to_run(v, extractee_type(self.module, t, kind), f"{what}.{kind}")
                for v, kind in zip(value, EXTRACTEES)
            )
        thick = t.convention == "callee_guaranteed"
        if isinstance(value, SILFunction):
            if value.type.convention == t.convention:
                return value.run_form
            if thick:
                return (unpacking(value.run_form, len(t.params), 0), ())
            raise ArgumentError(f"{what} must be a function of type {t}, not a closure")
        if not callable(value):
            raise ArgumentError(f"{what} must be a function of type {t}, not {value!r}")
        python_fn = value

        def from_python(_depth: int, *args: Any) -> Any:
            py_args = [self.to_python(a, p) for a, p in zip(args, t.params)]
            return self.to_run(python_fn(*py_args), t.result, "the result of a Python function")

        return (unpacking(from_python, len(t.params), 0), ()) if thick else from_python

    # --- out of a run -----------------------------------------------------------------------
    def to_python(self, value: Any, t: Type) -> Any:
        """The Python API's form of a run-time value of type ``t``."""
        if isinstance(t, ScalarType):
            if t in (FLOAT, DOUBLE):
                return float(value)
            return bool(value) if t == BOOL else int(value)
        if isinstance(t, TensorType):
            return value
        if isinstance(t, TupleType):
            return tuple(self.to_python(v, e) for v, e in zip(value, t.elements))
        if t == TENSOR_SHAPE:
            return tuple(value)
        if isinstance(t, NominalType):
            decl = self.module.lookup_type(t.name)
            if isinstance(decl, StructDecl):
                record = self.records.get(t.name)
                if record is None:
                    record = self.records[t.name] = struct_class(decl)
                fields = (value,) if len(decl.fields) == 1 else value
                return tuple.__new__(record, [self.to_python(v, f.type) for v, f in zip(fields, decl.fields)])
            if decl is not None:
                name, payload = value
                case = decl.case(name)
                if case is None or case.payload is None:
                    return EnumValue(t.name, name)
                return EnumValue(t.name, name, self.to_python(payload, case.payload))
        if isinstance(t, FunctionType):
            return SILFunction(value, t, self)
        return value


# --- closures ----------------------------------------------------------------------------------
# A closure (a value of a ``@callee_guaranteed`` type) runs as a pair: a function taking the depth,
# the closure's own parameters, then one tuple of the arguments bound to it, and that tuple. A
# call is then one plain Python call (``c[0](d, x, c[1])``), and a ``partial_apply`` one tuple.
# The functions the derivatives partially apply are compiled to take their bound arguments that
# way; any other function is adapted by these wrappers.
#
# A wrapper takes and passes its arguments one by one, never with ``*args``: CPython runs a plain
# call of a Python function in the caller's C frame, but a call with unpacked arguments
# (``CALL_FUNCTION_EX``) on a new one, so a recursion through closures would grow the C stack and
# crash the process long before --max-depth or Python's recursion limit stops it.


def unpacking(fn: Callable[..., Any], params: int, bound: int) -> Callable[..., Any]:
    """A closure's function calling ``fn``, which takes the closure's ``params`` parameters then
    its ``bound`` bound arguments one by one."""
    return closure_wrapper(params, bound, False)(fn)


@functools.cache
def closure_wrapper(params: int, bound: int, rebind: bool) -> Callable[..., Callable[..., Any]]:
    """The maker of wrappers of one shape, generated once per shape (see the note above): it
    wraps a function ``fn`` into a closure's function of ``params`` parameters. ``fn`` takes
    them, then the ``bound`` arguments of the closure's tuple; when ``rebind``, that tuple holds
    the ``bound`` arguments then the bound tuple of the closure ``fn`` belongs to, passed on
    as one argument (a ``partial_apply`` of a closure)."""
    args = "".join(f"a{i}, " for i in range(params))
    new = "".join(f"b{i}, " for i in range(bound))
    if rebind:
        unpack = f"({new}), _old = _bound" if bound else "_old = _bound[1]"
        passed = f"{args}{new}_old"
    else:
        unpack = f"{new}= _bound" if bound else "pass"
        passed = f"{args}{new}"
    source = (
        "def make(fn):\n"
        f"    def closure(_d, {args}_bound):\n"
        f"        {unpack}\n"
        f"        return fn(_d, {passed})\n"
        "    return closure\n"
    )
    namespace: dict[str, Any] = {}
    exec(
        compile(source, f"<closure wrapper {params} {bound}{' rebind' if rebind else ''}>", "exec"), namespace
    )
    make: Callable[..., Callable[..., Any]] = namespace["make"]
    return make


class SILFunction:
    """A SIL function value returned to Python: calling it runs the function on the interpreter."""

    def __init__(self, run_form: Any, type: FunctionType, converter: Converter) -> None:
        self.run_form = run_form  # a function, a closure's pair, or a bundle's triple
        self.type = type
        self._converter = converter

    def __call__(self, *args: Any) -> Any:
        call = self._converter.call
        assert call is not None, "a Converter is always given its call hook by its Program"
        if self.type.differentiable:  # a bundle: its original is what a call runs
            return call(self.run_form[0], self.type.plain(), args)
        return call(self.run_form, self.type, args)

    def extract(self, kind: str) -> SILFunction:
        """The ``original``, ``jvp`` or ``vjp`` of a ``@differentiable`` function, as
        ``differentiable_function_extract`` gives it."""
        if not self.type.differentiable:
            raise TypeError(f"a {self.type} has no '{kind}': it is not @differentiable")
        t = extractee_type(self._converter.module, self.type, kind)
        return SILFunction(self.run_form[EXTRACTEES.index(kind)], t, self._converter)

    def __repr__(self) -> str:
        return f"<SIL function {self.type}>"
