"""The behaviour-preservation harness for optimization passes (issue 16): a pass, or a pipeline of
passes, must leave every module it is given verifying, and every function computing what it
computed before, bit for bit, faults included.

Subjects are the golden cases that run (``// RUN: silopt %s … --run``: the RUN line's passes are
applied first, as the driver would), the inputs of the optimization passes' own golden cases
(``golden/opt``), the shipped examples, and the outputs of the golden
differentiation cases (``golden/differentiation/**/*.expected``: derivatives are ordinary SIL).
Each is lowered as ``--run`` lowers (``lower_derivatives``). Then every function with a body whose
parameters can be drawn is run on drawn arguments before and after the passes, and the outcomes
are compared by ``fingerprint``: exact IEEE bits (so a Float result rounded otherwise, a -0.0 for a
0.0, or another NaN payload is a difference), tensors by dtype, shape and bytes, and faults by
their message. A point at which the original exceeds the step limit is not compared (the
optimized code may legitimately take fewer steps).

Arguments mix ordinary values with the edge cases of IEEE arithmetic (±0.0, ±inf, NaN of both
signs, subnormals, the largest finite values), which the algebraic identities of -canonicalize
must respect.

A later pass joins by adding its name to ``PRESERVING`` in ``test_preservation.py``.

The same machinery compares differentiation's placements in a pipeline (``PLACEMENTS``: alone,
then ``-O``, between two ``-O``, after ``-O``; ``test_semantics_through_O.py``): ``ad_subjects``
are the modules that ask for derivatives, ``through`` puts one through a placement, and
``compare_modules`` runs two modules' functions side by side, calling the pullbacks and
differentials that derivatives return (``Close`` compares those to a tolerance where rounding
may legitimately differ).
"""

from __future__ import annotations

import math
import random
import shlex
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from interp import EnumValue, Program, RunError, SILFunction
from interp.values import struct_class
from sil import SILError, parse, print_module, verify_module
from sil.diagnostics import SourceFile
from sil.instructions import DifferentiableFunctionInst, GradientInst
from sil.ir import EnumDecl, Function, Module, Result, StructDecl
from sil.passes import Pass, PassManager, registered_passes
from sil.types import BOOL, DOUBLE, FLOAT, INT, NominalType, ScalarType, TensorType, TupleType, Type
from silopt.run import lower_derivatives, lower_reached
from silopt.split_input import split_input

ROOT = Path(__file__).resolve().parents[3]
ORDINARY_POINTS = 5  # argument vectors drawn per function: ordinary ones, then edge cases
POINTS = ORDINARY_POINTS + 8
MAX_STEPS = 50_000  # per call: a loop whose trip count was drawn large is not compared
MAX_DEPTH = 200  # nor a recursion drawn too deep (inlining may change the frames it takes)

_FLOAT_EDGES = (
    0.0,
    -0.0,
    1.0,
    -1.0,
    math.inf,
    -math.inf,
    math.nan,
    -math.nan,
    2.5,
    -3.0,
    1.401298464324817e-45,  # the smallest Float subnormal
    3.4028234663852886e38,  # the largest finite Float
)
_DOUBLE_EDGES = (*_FLOAT_EDGES[:-2], 5e-324, 1.7976931348623157e308, 0.1)
_INTS = (-2, -1, 0, 1, 2, 3, 5, 7)


class CannotDraw(Exception):
    """A parameter type the harness has no values for (a function, a shape)."""


@attrs.frozen
class Subject:
    """A module to optimize: its file, and what to do before the passes run."""

    path: Path
    passes: tuple[str, ...] = ()  # the RUN line's passes
    run: str | None = None  # the RUN line's function, whose requests are lowered if not all can be
    chunk: int | None = None  # with --split-input-file, which of the file's modules

    @property
    def id(self) -> str:
        name = self.path.relative_to(ROOT).as_posix()
        return name if self.chunk is None else f"{name}#{self.chunk}"

    def text(self) -> str:
        """The subject's module: the file, or its chunk."""
        text = self.path.read_text(encoding="utf-8")
        if self.chunk is None:
            return text
        chunks, _ = split_input(SourceFile(self.id, text))
        return chunks[self.chunk].source.text


def subjects() -> list[Subject]:
    """Every module the harness checks passes on, in a stable order, but for those that
    differentiate a derivative: one lowering does not prepare them to run (``_second_order``)."""
    found = [s for p in sorted((ROOT / "golden").glob("**/*.sil")) for s in _run_cases(p)]
    found += [Subject(p) for p in sorted((ROOT / "golden" / "opt").glob("**/*.sil"))]
    found += [Subject(p) for p in sorted((ROOT / "examples").glob("*.sil"))]
    found += [
        Subject(p)
        for p in sorted((ROOT / "golden" / "differentiation").glob("**/*.expected"))
        if not {"--run", "--check-derivatives"} & set(_run_words(p.with_suffix(".sil")))
    ]
    return [s for s in found if s is not None and not _second_order(s.text())]


def _run_words(path: Path) -> list[str]:
    return shlex.split(path.read_text(encoding="utf-8").split("\n", 1)[0].removeprefix("// RUN:"))


def _run_cases(path: Path) -> list[Subject]:
    """The case's module if its RUN line runs it; each of its modules with ``--split-input-file``."""
    words = _run_words(path)
    if "--run" not in words:
        return []
    names = registered_passes()
    passes = tuple(w[1:] for w in words[: words.index("--run")] if w.startswith("-") and w[1:] in names)
    run = words[words.index("--run") + 1].removeprefix("@")
    if "--split-input-file" not in words:
        return [Subject(path, passes, run)]
    chunks, _ = split_input(SourceFile(path.name, path.read_text(encoding="utf-8")))
    return [Subject(path, passes, run, i) for i in range(len(chunks))]


def prepared_text(subject: Subject) -> str:
    """The subject as it would run: parsed, its RUN line's passes applied, its requests lowered."""
    module = parse(subject.text(), subject.id)
    assert verify_module(module) == []
    names = registered_passes()
    PassManager([names[n]() for n in subject.passes]).run(module)
    try:
        lower_derivatives(module)
    except SILError:
        # A request some function cannot have lowered (a golden case of a refusal): lower only
        # what the RUN line's function reaches, as --run does (which may refuse too).
        if subject.run is None:
            raise
        module = parse(subject.text(), subject.id)
        PassManager([names[n]() for n in subject.passes]).run(module)
        lower_reached(module, subject.run)
    return print_module(module)


def optimized(text: str, passes: Sequence[str], name: str = "<subject>") -> Module:
    """``text`` parsed and run through ``passes``, checked to verify after each and to print
    canonically (printing what it prints gives the same text back)."""
    module = parse(text, name)
    registry = registered_passes()
    pipeline: list[Pass] = [registry[p]() for p in passes]
    PassManager(pipeline, verify_each=True).run(module)
    assert verify_module(module) == []
    printed = print_module(module)
    assert print_module(parse(printed, name)) == printed
    return module


class ArgumentDraw:
    """Random arguments of SIL types, as ``Program.run`` takes them. The first
    ``ORDINARY_POINTS`` are ordinary (scalars uniform in [-2, 2]); in the others, every Float or
    Double is an edge value, taken in turn (so that a one-parameter function meets ±0.0, ±1.0,
    ±inf and NaN of both signs)."""

    def __init__(self, module: Module, seed: str) -> None:
        self.module = module
        self.r = random.Random(seed)
        self.edges = False
        self.turn = 0

    def point(self, params: Sequence[Type], index: int) -> list[Any]:
        self.edges = index >= ORDINARY_POINTS
        return [self.value(t) for t in params]

    def value(self, t: Type) -> Any:
        if isinstance(t, ScalarType):
            return self._scalar(t)
        if isinstance(t, TensorType):
            dtype = np.float32 if t.element == FLOAT else np.float64
            return np.array([[self._scalar(t.element) for _ in range(3)] for _ in range(3)], dtype=dtype)
        if isinstance(t, TupleType):
            return tuple(self.value(e) for e in t.elements)
        decl = self.module.lookup_type(t.name) if isinstance(t, NominalType) else None
        if isinstance(decl, StructDecl):
            return tuple.__new__(struct_class(decl), tuple(self.value(f.type) for f in decl.fields))
        if isinstance(decl, EnumDecl) and decl.cases:
            case = self.r.choice(decl.cases)
            payload = None if case.payload is None else self.value(case.payload)
            return EnumValue(decl.name, case.name, payload)
        raise CannotDraw(str(t))

    def _scalar(self, t: ScalarType) -> Any:
        if t == BOOL:
            return self.r.random() < 0.5
        if t == INT:
            return self.r.choice(_INTS) if self.edges else self.r.randint(0, 5)
        if t not in (FLOAT, DOUBLE):
            raise CannotDraw(str(t))
        if self.edges:
            edges = _FLOAT_EDGES if t == FLOAT else _DOUBLE_EDGES
            x = edges[self.turn % len(edges)]
            self.turn += 1
        else:
            x = self.r.uniform(-2.0, 2.0)
        return float(np.float32(x)) if t == FLOAT else x


def fingerprint(value: Any) -> Any:
    """A value reduced to what must be preserved exactly: bits of floats (but a NaN's sign and
    payload, which IEEE 754 leaves unspecified for arithmetic results (§6.3), and which Python's
    and NumPy's operations on the same operands already give differently), bytes of tensors."""
    if isinstance(value, np.ndarray):
        return ("tensor", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, np.floating):
        return (value.dtype.str, "nan" if np.isnan(value) else value.tobytes())
    if isinstance(value, bool | np.bool_):
        return ("bool", bool(value))
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("double", "nan" if math.isnan(value) else struct.pack("<d", value))
    if isinstance(value, EnumValue):
        return ("enum", value.enum, value.case, fingerprint(value.payload))
    if isinstance(value, tuple):
        return (type(value).__name__, tuple(fingerprint(v) for v in value))
    if value is None:
        return None
    get = getattr(value, "get", None)  # a CuPy array
    if callable(get):
        return fingerprint(get())
    return ("opaque", type(value).__name__)  # a closure: compared by kind only


def outcome(program: Program, name: str, args: Sequence[Any], closures: ArgumentDraw | None = None) -> Any:
    """What a call gives: its result's fingerprint or its fault's message; None when it ran out
    of steps (not compared). With ``closures``, each function value in the result is called on
    arguments it draws (a VJP's pullback on a cotangent), and what that gives is compared."""
    try:
        result = program.run(name, *args)
        return ("result", fingerprint(result if closures is None else _called(result, closures)))
    except RunError as e:
        message = e.diagnostics[0].message
        if "--max-steps" in message or "--max-depth" in message:
            return None  # limits: the optimized code may take fewer steps or frames
        return ("fault", message.split(", in synthesized code")[0])


def exploded(
    args: Sequence[Any], old: Sequence[Type], new: Sequence[Type], fn: Function, module: Module
) -> list[Any]:
    """``args`` for the parameters ``old`` given to the parameters ``new`` that -sroa made of
    them: an argument whose type is not the next parameter's is a tuple or struct whose fields
    (exploded in turn where they need to be) the function takes instead. Only a synthesized
    function may change its signature."""
    if list(old) == list(new):
        return list(args)
    assert fn.name.startswith("AD__"), f"@{fn.name}, written by a user, changed its signature"
    pending = list(zip(args, old))[::-1]
    out: list[Any] = []
    for param in [*new, None]:  # None: the end, where only empty aggregates may be left
        while pending and pending[-1][1] != param:
            value, t = pending.pop()
            pending += list(zip(value, _fields(t, module)))[::-1]
        if param is not None:
            out.append(pending.pop()[0])
    return out


def _fields(t: Type, module: Module) -> list[Type]:
    if isinstance(t, TupleType):
        return list(t.elements)
    decl = module.struct(t.name) if isinstance(t, NominalType) else None
    assert decl is not None, f"{t} is not an aggregate -sroa splits"
    return [f.type for f in decl.fields]


def _called(value: Any, draw: ArgumentDraw) -> Any:
    """``value`` with each SIL function value in it replaced by the outcome of a call of it."""
    if isinstance(value, SILFunction):
        return ("called", _called(value(*draw.point(value.type.params, 0)), draw))
    if isinstance(value, tuple):
        return (type(value).__name__, tuple(_called(v, draw) for v in value))
    return value


def drawable(fn: Function) -> bool:
    return not fn.is_declaration and fn.type.convention != "callee_guaranteed"


@attrs.define
class Report:
    """What a check compared: calls made, and the functions whose parameters could not be drawn."""

    calls: int = 0
    skipped: list[str] = attrs.field(factory=list)


def check_preserves(text: str, passes: Sequence[str], name: str = "<subject>") -> Report:
    """Run every drawable function of ``text`` before and after ``passes`` and assert that the
    outcomes are identical; returns what was compared."""
    return compare_modules(
        parse(text, name), optimized(text, passes, name), f"{name}: after {' '.join(passes)}"
    )


def compare_modules(
    before: Module, after: Module, label: str, call_closures: bool = False, close: Close | None = None
) -> Report:
    """Run every drawable function of ``before`` that ``after`` has too, in both, on drawn
    arguments, and assert that the outcomes are identical (with ``close``, that floats agree to
    it); with ``call_closures``, the function values they return are called too (a VJP's
    pullback, a JVP's differential). A function taking a record or trace of the differentiation
    passes (a pullback) is reached only through what returns it: its records may hold other
    fields in ``after``. Returns what was compared."""
    old = Program(before, max_steps=MAX_STEPS, max_depth=MAX_DEPTH)
    new = Program(after, max_steps=MAX_STEPS, max_depth=MAX_DEPTH)
    points = POINTS if close is None else close.points
    report = Report()
    for fn in before.functions.values():
        if not drawable(fn) or fn.name not in after.functions or any(map(_synthesized_type, fn.type.params)):
            continue
        draw = ArgumentDraw(before, f"{label}:{fn.name}")
        try:
            drawn = [draw.point(fn.type.params, i) for i in range(points)]
        except CannotDraw as e:
            report.skipped.append(f"@{fn.name}: {e}")
            continue
        for i, args in enumerate(drawn):
            closures = (
                [ArgumentDraw(before, f"{fn.name}:{i}") for _ in "ab"] if call_closures else [None, None]
            )
            expected = outcome(old, fn.name, args, closures[0])
            if expected is None:
                continue
            after_args = exploded(args, fn.type.params, after.functions[fn.name].type.params, fn, before)
            got = outcome(new, fn.name, after_args, closures[1])
            same = got == expected if close is None else close.same(got, expected)
            assert same, f"{label}: @{fn.name}{tuple(args)!r}: {got!r} != {expected!r}"
            report.calls += 1
    return report


@attrs.frozen
class Close:
    """Agreement of floats to a relative tolerance (±0.0 alike, every NaN alike), on the first
    ``points`` drawn points (ordinary ones: edge values are for exact comparisons)."""

    rel_tol: float
    points: int = ORDINARY_POINTS

    def same(self, a: Any, b: Any) -> bool:
        if a == b:
            return True
        x, y = _float_of(a), _float_of(b)
        if x is not None and y is not None:
            both_nan = math.isnan(x) and math.isnan(y)
            return both_nan or math.isclose(x, y, rel_tol=self.rel_tol, abs_tol=self.rel_tol)
        if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
            return all(self.same(x, y) for x, y in zip(a, b))
        return False


def _float_of(fingerprinted: Any) -> float | None:
    """The float a fingerprint holds (a Double, or a NumPy float), or None."""
    if not (
        isinstance(fingerprinted, tuple) and len(fingerprinted) == 2 and isinstance(fingerprinted[1], bytes)
    ):
        return None
    kind, raw = fingerprinted
    if kind == "double":
        return float(struct.unpack("<d", raw)[0])
    if kind in ("<f4", "<f8"):
        return float(np.frombuffer(raw, dtype=kind)[0])
    return None


def _synthesized_type(t: Type) -> bool:
    return isinstance(t, NominalType) and t.name.startswith("_AD__")


# --- differentiation anywhere in the pipeline (issue 16) ------------------------------------------

PLACEMENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "AD": ((), ()),
    "AD then O": ((), ("O",)),
    "O then AD then O": (("O",), ("O",)),
    "O then AD": (("O",), ()),
}
"""Where differentiation runs in a pipeline: the passes before it and after it. ``-O`` is taken by
name, so a pass that joins it is covered here as soon as it does."""
REFERENCE = "AD"
_AD_WORDS = {"differentiation", "differentiation-diagnostics", "lower-gradient"}


def ad_subjects() -> list[Subject]:
    """The modules that ask for derivatives: the golden differentiation cases, the legacy ones,
    the run cases, the shipped examples (those whose text holds a request or a ``[differentiable]``
    attribute, each chunk of a split file on its own), but for those that differentiate a
    derivative (``_second_order``). The RUN line's passes other than the
    differentiation passes (the legacy pipeline's) are the subject's ``passes``."""
    paths = [
        *sorted((ROOT / "golden" / "differentiation").glob("**/*.sil")),
        *sorted((ROOT / "golden" / "legacy").glob("*.sil")),
        *sorted((ROOT / "golden" / "run").glob("*.sil")),
        *sorted((ROOT / "examples").glob("*.sil")),
    ]
    found: list[Subject] = []
    names = registered_passes()
    for path in paths:
        words = _run_words(path) if path.read_text(encoding="utf-8").startswith("// RUN:") else []
        passes = tuple(
            w[1:] for w in words if w.startswith("-") and w[1:] in names and w[1:] not in _AD_WORDS
        )
        run = words[words.index("--run") + 1].removeprefix("@") if "--run" in words else None
        chunks: list[int | None] = [None]
        if "--split-input-file" in words:
            chunks = list(range(len(split_input(SourceFile(path.name, path.read_text(encoding="utf-8")))[0])))
        found += [Subject(path, passes, run, chunk) for chunk in chunks]
    return [s for s in found if _asks_for_derivatives(s.text()) and not _second_order(s.text())]


def _second_order(text: str) -> bool:
    """Whether the module differentiates a ``gradient``'s result: one differentiation does not
    answer it (the gradient must be lowered and optimized first), so no placement of one does."""
    try:
        module = parse(text)
    except SILError:
        return False
    return any(
        isinstance(inst, (GradientInst, DifferentiableFunctionInst))
        and isinstance(inst.operands[0], Result)
        and isinstance(inst.operands[0].owner, GradientInst)
        for fn in module.functions.values()
        for inst in fn.instructions()
    )


def _asks_for_derivatives(text: str) -> bool:
    return any(
        word in text
        for word in ("[differentiable", "[reverse_differentiable", "gradient ", "differentiable_function")
    )


def placed(subject: Subject, placement: str) -> Module:
    """The subject through a placement (``through``), its RUN line's own passes first."""
    return through(subject.text(), placement, subject.id, subject.passes, subject.run)


def through(
    text: str, placement: str, name: str = "<subject>", first: Sequence[str] = (), run: str | None = None
) -> Module:
    """``text`` through a placement: the passes ``first``, then the passes before
    differentiation, ``-differentiation -lower-gradient`` (or, when that refuses and ``run`` is
    given, what ``--run @run`` lowers: the requests it reaches), then the passes after; checked
    to verify after each pass. Raises SILError when differentiation refuses."""
    before, after = PLACEMENTS[placement]
    registry = registered_passes()

    def apply(module: Module, passes: Sequence[str]) -> None:
        PassManager([registry[p]() for p in passes], verify_each=True).run(module)

    module = parse(text, name)
    apply(module, (*before, *first))
    optimized_text = print_module(module)
    try:
        apply(module, ("differentiation", "lower-gradient"))
    except SILError:
        if run is None:
            raise
        module = parse(optimized_text, name)
        lower_reached(module, run)
    apply(module, after)
    assert verify_module(module) == []
    return module
