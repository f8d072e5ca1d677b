"""The placement study's programs (``benchmarks/placement/*.sil``), written as a straightforward
frontend emits them, with the inputs each takes at each size.

``Emitter`` is that frontend: it lowers expressions one instruction at a time and remembers
nothing, so a value the source names twice is computed twice, a literal or a ``function_ref`` in a
loop body is emitted on every trip's path, a loop-invariant expression stays in the loop, and a
small helper stays a call. That is the code optimization before AD is for; the programs are not
written to flatter either placement. Each program's ``@f`` is differentiated by a ``gradient`` in
``@main``, which takes the same arguments; sizes are arguments (trip counts, tensor shapes), so
one file serves every size.

    python3 benchmarks/placement_programs.py     # writes benchmarks/placement/*.sil

``tests/test_benchmarks.py`` checks that the files are what this script writes.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FOLDER = Path(__file__).resolve().parent / "placement"
D, INT, B, T = "Double", "Int", "Bool", "Tensor<Double>"
COMPARISONS = ("cmp_slt", "fcmp_olt")
INTEGER = ("add", "sub", "mul", "sdiv", "srem", "dim", "fptosi")


@dataclass(frozen=True)
class Val:
    """A value the frontend emitted: its SIL name and type."""

    name: str
    type: str

    def __str__(self) -> str:
        return f"%{self.name} : ${self.type}"


class Loop:
    """A counted loop being emitted: its index and carried values (the header's arguments, which
    dominate the exit, so they are the loop's results after ``end``)."""

    def __init__(self, fn: Function, count: Val, carried: Sequence[Val]) -> None:
        self.fn = fn
        zero = fn.ilit(0)
        self.header, self.body, self.exit = fn.block(), fn.block(), fn.block()
        fn.terminate(f"br {self.header}({', '.join(str(v) for v in (zero, *carried))})")
        self.index = fn.fresh("i", INT)
        self.vars = [fn.fresh("v", v.type) for v in carried]
        fn.start(self.header, [self.index, *self.vars])
        more = fn.b("cmp_slt", self.index, count)
        fn.terminate(f"cond_br %{more.name}, {self.body}, {self.exit}")
        fn.start(self.body, [])

    def end(self, carried: Sequence[Val]) -> None:
        """The back edge with the next trip's values; emission goes on in the exit block."""
        one = self.fn.ilit(1)
        step = self.fn.b("add", self.index, one)
        self.fn.terminate(f"br {self.header}({', '.join(str(v) for v in (step, *carried))})")
        self.fn.start(self.exit, [])


class Function:
    """A SIL function emitted one instruction at a time, with no memory of what it emitted."""

    def __init__(self, name: str, params: Sequence[tuple[str, str]], result: str) -> None:
        self.name = name
        self.params = [Val(n, t) for n, t in params]
        self.result = result
        self.lines: list[str] = []
        self.count = 0
        self.blocks = 0
        self.start(self.block(), self.params)

    @property
    def type(self) -> str:
        return f"$@convention(thin) ({', '.join(p.type for p in self.params)}) -> {self.result}"

    def fresh(self, stem: str, t: str) -> Val:
        self.count += 1
        return Val(f"{stem}{self.count}", t)

    def block(self) -> str:
        self.blocks += 1
        return f"bb{self.blocks - 1}"

    def start(self, label: str, args: Sequence[Val]) -> None:
        self.lines.append(f"{label}({', '.join(str(a) for a in args)}):" if args else f"{label}:")

    def terminate(self, line: str) -> None:
        self.lines.append(f"  {line}")

    def emit(self, stem: str, t: str, rhs: str) -> Val:
        v = self.fresh(stem, t)
        self.lines.append(f"  %{v.name} = {rhs}")
        return v

    def lit(self, x: float) -> Val:
        return self.emit("c", D, f"float_literal $Double, {x!r}")

    def ilit(self, n: int) -> Val:
        return self.emit("n", INT, f"integer_literal $Int, {n}")

    def b(self, op: str, *args: Val, t: str | None = None) -> Val:
        """``builtin op(args)``: of type ``t``, else Bool for a comparison, Int for integer
        arithmetic, else a tensor operand's type, else the first operand's."""
        if t is None:
            if op in COMPARISONS:
                t = B
            elif op in INTEGER:
                t = INT
            else:
                t = next((a.type for a in args if a.type.startswith("Tensor")), args[0].type)
        operands = ", ".join(str(a) for a in args)
        return self.emit("t", t, f'builtin "{op}"({operands}) : ${t}')

    def el(self, tensor: Val, *index: Val) -> Val:
        return self.b("element", tensor, *index, t=D)

    def call(self, callee: Function, *args: Val) -> Val:
        """A call as a frontend emits it: a ``function_ref`` where the call is."""
        ref = self.emit("fn", callee.type[1:], f"function_ref @{callee.name} : {callee.type}")
        return self.emit(
            "r", callee.result, f"apply %{ref.name}({', '.join('%' + a.name for a in args)}) : {callee.type}"
        )

    def loop(self, count: Val, carried: Sequence[Val] = ()) -> Loop:
        return Loop(self, count, carried)

    def ret(self, v: Val) -> None:
        self.terminate(f"return {v}")

    def text(self) -> str:
        return "\n".join([f"sil @{self.name} : {self.type} {{", *self.lines, "}", ""])


def main_text(f: Function, wrt: Sequence[int]) -> str:
    """``@main``: the same parameters as ``@f``, returning its gradient by ``wrt`` there."""
    params = ", ".join(str(p) for p in f.params)
    grad = f"$@convention(thin) ({', '.join(p.type for p in f.params)}) -> " + (
        f"({', '.join(f.params[i].type for i in wrt)})" if len(wrt) > 1 else f.params[wrt[0]].type
    )
    result = grad.split(" -> ", 1)[1]
    return "\n".join(
        [
            f"sil @main : {grad} {{",
            f"bb0({params}):",
            f"  %f = function_ref @f : {f.type}",
            f"  %g = gradient [wrt {', '.join(map(str, wrt))}] %f : {f.type}",
            f"  %r = apply %g({', '.join('%' + p.name for p in f.params)}) : {grad}",
            f"  return %r : ${result}",
            "}",
            "",
        ]
    )


def module_text(comment: str, helpers: Sequence[Function], f: Function, wrt: Sequence[int]) -> str:
    head = [f"// {line}" if line else "//" for line in comment.strip().splitlines()]
    body = [h.text() for h in helpers] + [f.text(), main_text(f, wrt)]
    return "\n".join([*head, "sil_stage canonical", "", *body])


def sqr_helper() -> Function:
    h = Function("sqr", [("x", D)], D)
    h.ret(h.b("fmul", h.params[0], h.params[0]))
    return h


# --- the programs ------------------------------------------------------------------------------------
def gmm() -> str:
    """ADBench's GMM objective with diagonal covariances (log-diagonals ``q``)."""
    sqr = sqr_helper()
    f = Function("f", [("alphas", T), ("means", T), ("q", T), ("x", T)], D)
    alphas, means, q, x = f.params
    zero_i, one_i = f.ilit(0), f.ilit(1)
    n, k = f.b("dim", x, zero_i), f.b("dim", means, zero_i)
    outer = f.loop(n, [f.lit(0.0)])
    i, (total,) = outer.index, outer.vars
    comps = f.loop(f.b("dim", means, f.ilit(0)), [f.lit(0.0)])
    kk, (s,) = comps.index, comps.vars
    dims = f.loop(f.b("dim", x, f.ilit(1)), [f.lit(0.0), f.lit(0.0)])
    j, (sumq, sq) = dims.index, dims.vars
    sumq1 = f.b("fadd", sumq, f.el(q, kk, j))
    diff = f.b("fsub", f.el(x, i, j), f.el(means, kk, j))
    scaled = f.b("fmul", f.b("exp", f.el(q, kk, j)), diff)
    dims.end([sumq1, f.b("fadd", sq, f.call(sqr, scaled))])
    sumq_k, sq_k = dims.vars
    inner = f.b("fsub", f.b("fadd", f.el(alphas, kk), sumq_k), f.b("fmul", f.lit(0.5), sq_k))
    comps.end([f.b("fadd", s, f.b("exp", inner))])
    outer.end([f.b("fadd", total, f.b("log", comps.vars[0]))])
    lse = f.loop(k, [f.lit(0.0)])
    lse.end([f.b("fadd", lse.vars[0], f.b("exp", f.el(alphas, lse.index)))])
    nd = f.b("sitofp", f.b("mul", n, f.b("dim", x, one_i)), t=D)
    const = f.b("fmul", f.b("fmul", nd, f.lit(0.5)), f.b("log", f.b("fmul", f.lit(2.0), f.lit(math.pi))))
    norm = f.b("fmul", f.b("sitofp", n, t=D), f.b("log", lse.vars[0]))
    f.ret(f.b("fsub", f.b("fsub", outer.vars[0], norm), const))
    return module_text(
        """GMM objective (ADBench): sum over points of log-sum-exp over components of
alpha_k + sum(q_k) - |exp(q_k) * (x_i - mu_k)|^2 / 2, less n log-sum-exp(alpha) and the constant.
Gradient by the weights, means and log-diagonals; sizes: the shapes of the tensors.""",
        [sqr],
        f,
        [0, 1, 2],
    )


def sigmoid_helper() -> Function:
    h = Function("sigmoid", [("t", T)], T)
    e = h.b("exp", h.b("fneg", h.params[0]))
    h.ret(h.b("fdiv", h.lit(1.0), h.b("fadd", h.lit(1.0), e)))
    return h


def lstm() -> str:
    """ADBench's LSTM: elementwise weights, a sequence of steps, the loss against a target."""
    sigmoid = sigmoid_helper()
    names = ("wf", "wi", "wo", "wc", "bf", "bi", "bo", "bc")
    f = Function("f", [*((n, T) for n in names), ("h0", T), ("steps", INT)], D)
    wf, wi, wo, wc, bf, bi, bo, bc, h0, steps = f.params
    zeros = f.b("fmul", h0, f.lit(0.0))
    run = f.loop(steps, [h0, zeros, f.lit(0.0)])
    t, (h, c, loss) = run.index, run.vars
    width = f.b("dim", h0, f.ilit(0))
    phase = f.b("fmul", f.b("arange", width, t=T), f.lit(0.3))  # the input at step t, from t
    xt = f.b("sin", f.b("fadd", phase, f.b("fmul", f.b("sitofp", t, t=D), f.lit(0.7))))
    forget = f.call(sigmoid, f.b("fadd", f.b("fmul", xt, wf), bf))
    ingate = f.call(sigmoid, f.b("fadd", f.b("fmul", h, wi), bi))
    outgate = f.call(sigmoid, f.b("fadd", f.b("fmul", xt, wo), bo))
    change = f.b("tanh", f.b("fadd", f.b("fmul", h, wc), bc))
    c1 = f.b("fadd", f.b("fmul", c, forget), f.b("fmul", ingate, change))
    h1 = f.b("fmul", outgate, f.b("tanh", c1))
    target = f.b(
        "cos", f.b("fadd", f.b("fmul", f.b("arange", width, t=T), f.lit(0.3)), f.b("sitofp", t, t=D))
    )
    err = f.b("fsub", h1, target)
    run.end([h1, c1, f.b("fadd", loss, f.b("sum", f.b("fmul", err, err), t=D))])
    f.ret(run.vars[2])
    return module_text(
        """An LSTM (ADBench's model: elementwise weights) run over a sequence computed from the step,
its hidden state against a target at each step, squared. Gradient by the eight weights and biases;
sizes: the hidden width (the tensors' length) and the steps.""",
        [sigmoid],
        f,
        list(range(8)),
    )


def bundle_adjustment() -> str:
    """ADBench's BA residuals: rotate (Rodrigues), translate, project, distort, compare."""
    f = Function("f", [("cams", T), ("points", T), ("obs", T)], D)
    cams, points, obs = f.params
    count = f.b("dim", obs, f.ilit(0))
    run = f.loop(count, [f.lit(0.0)])
    i, (total,) = run.index, run.vars
    c = f.b("srem", i, f.b("dim", cams, f.ilit(0)))
    p = f.b("srem", i, f.b("dim", points, f.ilit(0)))

    def cam(k: int) -> Val:
        return f.el(cams, c, f.ilit(k))

    def pt(k: int) -> Val:
        return f.el(points, p, f.ilit(k))

    def sq(v: Val) -> Val:
        return f.b("fmul", v, v)

    theta = f.b("sqrt", f.b("fadd", f.b("fadd", sq(cam(0)), sq(cam(1))), sq(cam(2))))
    axis = [f.b("fdiv", cam(k), theta) for k in range(3)]
    dot = f.b(
        "fadd",
        f.b("fadd", f.b("fmul", axis[0], pt(0)), f.b("fmul", axis[1], pt(1))),
        f.b("fmul", axis[2], pt(2)),
    )
    cross = [
        f.b(
            "fsub",
            f.b("fmul", axis[(k + 1) % 3], pt((k + 2) % 3)),
            f.b("fmul", axis[(k + 2) % 3], pt((k + 1) % 3)),
        )
        for k in range(3)
    ]
    rotated = []
    for k in range(3):
        keep = f.b("fmul", pt(k), f.b("cos", theta))
        turn = f.b("fmul", cross[k], f.b("sin", theta))
        along = f.b("fmul", f.b("fmul", axis[k], dot), f.b("fsub", f.lit(1.0), f.b("cos", theta)))
        rotated.append(f.b("fadd", f.b("fadd", f.b("fadd", keep, turn), along), cam(3 + k)))
    px = f.b("fdiv", f.b("fneg", rotated[0]), rotated[2])
    py = f.b("fdiv", f.b("fneg", rotated[1]), rotated[2])
    r2 = f.b("fadd", f.b("fmul", px, px), f.b("fmul", py, py))
    distortion = f.b(
        "fadd", f.b("fadd", f.lit(1.0), f.b("fmul", cam(7), r2)), f.b("fmul", cam(8), f.b("fmul", r2, r2))
    )
    ex = f.b("fsub", f.b("fmul", f.b("fmul", cam(6), distortion), px), f.el(obs, i, f.ilit(0)))
    ey = f.b("fsub", f.b("fmul", f.b("fmul", cam(6), distortion), py), f.el(obs, i, f.ilit(1)))
    run.end([f.b("fadd", total, f.b("fadd", sq(ex), sq(ey)))])
    f.ret(run.vars[0])
    return module_text(
        """Bundle adjustment (ADBench): for each observation, its camera (angle-axis rotation,
translation, focal length, two distortion coefficients) rotates, translates and projects its point;
the sum of squared reprojection residuals. Gradient by the cameras and the points; sizes: the
observations, cameras and points.""",
        [],
        f,
        [0, 1],
    )


def lotka_volterra_helpers() -> tuple[Function, Function]:
    """The two right-hand sides, ``dx = a x - b x y`` and ``dy = c x y - d y``."""
    prey = Function("prey", [("x", D), ("y", D), ("a", D), ("b", D)], D)
    x, y, a, b = prey.params
    prey.ret(prey.b("fsub", prey.b("fmul", a, x), prey.b("fmul", prey.b("fmul", b, x), y)))
    pred = Function("predator", [("x", D), ("y", D), ("c", D), ("d", D)], D)
    x, y, c, d = pred.params
    pred.ret(pred.b("fsub", pred.b("fmul", pred.b("fmul", c, x), y), pred.b("fmul", d, y)))
    return prey, pred


ODE_PARAMS = [("la", D), ("lb", D), ("lc", D), ("ld", D), ("x0", D), ("y0", D), ("tend", D), ("steps", INT)]


def ode(name: str, rk4: bool) -> str:
    """Lotka-Volterra from (x0, y0) to ``tend`` in ``steps`` steps, its rates in log space."""
    prey, pred = lotka_volterra_helpers()
    f = Function("f", ODE_PARAMS, D)
    la, lb, lc, ld, x0, y0, tend, steps = f.params
    run = f.loop(steps, [x0, y0, f.lit(0.0)])
    x, y, acc = run.vars
    dt = f.b("fdiv", tend, f.b("sitofp", steps, t=D))

    def rates() -> list[Val]:
        return [f.b("exp", v) for v in (la, lb, lc, ld)]

    def slope(px: Val, py: Val) -> tuple[Val, Val]:
        a, b, c, d = rates()
        return f.call(prey, px, py, a, b), f.call(pred, px, py, c, d)

    def ahead(v: Val, dv: Val, scale: float) -> Val:
        step = dt if scale == 1.0 else f.b("fmul", dt, f.lit(scale))
        return f.b("fadd", v, f.b("fmul", step, dv))

    if rk4:
        k1 = slope(x, y)
        k2 = slope(ahead(x, k1[0], 0.5), ahead(y, k1[1], 0.5))
        k3 = slope(ahead(x, k2[0], 0.5), ahead(y, k2[1], 0.5))
        k4 = slope(ahead(x, k3[0], 1.0), ahead(y, k3[1], 1.0))
        nxt = []
        for a, b_, c, d in zip(k1, k2, k3, k4):
            two = f.lit(2.0)
            weighted = f.b("fadd", f.b("fadd", a, f.b("fmul", two, b_)), f.b("fadd", f.b("fmul", two, c), d))
            nxt.append(weighted)
        x1 = f.b("fadd", x, f.b("fmul", f.b("fdiv", dt, f.lit(6.0)), nxt[0]))
        y1 = f.b("fadd", y, f.b("fmul", f.b("fdiv", dt, f.lit(6.0)), nxt[1]))
    else:
        dx, dy = slope(x, y)
        x1, y1 = ahead(x, dx, 1.0), ahead(y, dy, 1.0)
    run.end([x1, y1, f.b("fadd", acc, f.b("fmul", x1, y1))])
    f.ret(run.vars[2])
    method = "classic fourth-order Runge-Kutta" if rk4 else "explicit Euler"
    return module_text(
        f"""{name}: Lotka-Volterra (dx = a x - b x y, dy = c x y - d y) integrated by {method},
the rates exp(la) ... exp(ld) (log-space parameters), the sum of x y over the steps.
Gradient by the four log-rates and the initial state; size: the steps (tend fixed).""",
        [prey, pred],
        f,
        [0, 1, 2, 3, 4, 5],
    )


def brusselator() -> str:
    """A Brusselator-like reaction-diffusion stencil on a ring (whole-tensor arithmetic)."""
    f = Function("f", [("a", D), ("b", D), ("alpha", D), ("u0", T), ("v0", T), ("lap", T), ("steps", INT)], D)
    a, b, alpha, u0, v0, lap, steps = f.params
    run = f.loop(steps, [u0, v0])
    u, v = run.vars
    dt = f.b("fdiv", f.lit(0.5), f.b("sitofp", steps, t=D))
    uuv = f.b("fmul", f.b("fmul", u, u), v)
    du = f.b(
        "fadd",
        f.b("fsub", f.b("fadd", a, uuv), f.b("fmul", f.b("fadd", b, f.lit(1.0)), u)),
        f.b("fmul", alpha, f.b("matmul", lap, u)),
    )
    dv = f.b(
        "fadd",
        f.b("fsub", f.b("fmul", b, u), f.b("fmul", f.b("fmul", u, u), v)),
        f.b("fmul", alpha, f.b("matmul", lap, v)),
    )
    run.end([f.b("fadd", u, f.b("fmul", dt, du)), f.b("fadd", v, f.b("fmul", dt, dv))])
    u1, v1 = run.vars
    f.ret(f.b("fadd", f.b("sum", f.b("fmul", u1, u1), t=D), f.b("sum", v1, t=D)))
    return module_text(
        """A Brusselator-like stencil: u' = a + u^2 v - (b + 1) u + alpha L u, v' = b u - u^2 v + alpha L v
on a ring of cells (L the discrete Laplacian, a matrix), explicit Euler to t = 0.5.
Gradient by a, b, alpha and the initial fields; sizes: the cells and the steps.""",
        [],
        f,
        [0, 1, 2, 3, 4],
    )


def lennard_jones() -> str:
    """The Lennard-Jones energy of a cluster: every pair, a helper for squares."""
    sqr = sqr_helper()
    f = Function("f", [("pos", T), ("sigma", D), ("eps", D)], D)
    pos, sigma, eps = f.params
    n = f.b("dim", pos, f.ilit(0))
    outer = f.loop(n, [f.lit(0.0)])
    i, (total,) = outer.index, outer.vars
    start = f.b("add", i, f.ilit(1))
    rest = f.b("sub", n, start)
    inner = f.loop(rest, [total])
    j = f.b("add", start, inner.index)
    (acc,) = inner.vars
    r2 = f.lit(0.0)
    for k in range(3):
        r2 = f.b("fadd", r2, f.call(sqr, f.b("fsub", f.el(pos, i, f.ilit(k)), f.el(pos, j, f.ilit(k)))))
    s2 = f.b("fdiv", f.b("fmul", sigma, sigma), r2)
    s6 = f.b("fmul", f.b("fmul", s2, s2), s2)
    energy = f.b("fmul", f.b("fmul", f.lit(4.0), eps), f.b("fsub", f.b("fmul", s6, s6), s6))
    inner.end([f.b("fadd", acc, energy)])
    outer.end([inner.vars[0]])
    f.ret(outer.vars[0])
    return module_text(
        """Lennard-Jones energy of a cluster: 4 eps ((s/r)^12 - (s/r)^6) over every pair of
particles. Gradient by the positions, sigma and eps; size: the particles.""",
        [sqr],
        f,
        [0, 1, 2],
    )


# --- inputs at each size -----------------------------------------------------------------------------
Inputs = Callable[[int], list[Any]]


def _rng(size: int) -> np.random.Generator:
    return np.random.default_rng(1000 + size)


def gmm_inputs(size: int) -> list[Any]:
    n, k, d = size
    r = _rng(n * 100 + k * 10 + d)
    return [r.normal(0, 0.5, k), r.normal(0, 1, (k, d)), r.normal(0, 0.2, (k, d)), r.normal(0, 1, (n, d))]


def lstm_inputs(size: int) -> list[Any]:
    width, steps = size
    r = _rng(width * 1000 + steps)
    return [r.normal(0, 0.5, width) for _ in range(8)] + [r.normal(0, 0.5, width), steps]


def ba_inputs(size: int) -> list[Any]:
    m, c, p = size
    r = _rng(m * 100 + c * 10 + p)
    cams = np.concatenate(
        [
            r.normal(0, 0.3, (c, 3)),
            r.normal(0, 0.3, (c, 2)),
            r.uniform(3, 5, (c, 1)),
            r.uniform(1, 2, (c, 1)),
            r.normal(0, 0.01, (c, 2)),
        ],
        axis=1,
    )
    return [cams, r.normal(0, 0.5, (p, 3)), r.normal(0, 0.5, (m, 2))]


def ode_inputs(size: int) -> list[Any]:
    return [math.log(1.1), math.log(0.4), math.log(0.1), math.log(0.4), 10.0, 10.0, 4.0, size]


def brusselator_inputs(size: int) -> list[Any]:
    cells, steps = size
    r = _rng(cells * 100 + steps)
    lap = -2.0 * np.eye(cells) + np.roll(np.eye(cells), 1, axis=1) + np.roll(np.eye(cells), -1, axis=1)
    u0 = 1.0 + 0.1 * r.normal(size=(cells, 1))
    v0 = 3.0 + 0.1 * r.normal(size=(cells, 1))
    return [1.0, 3.0, 0.02 * cells * cells, u0, v0, lap, steps]


def lj_inputs(size: int) -> list[Any]:
    side = math.ceil(size ** (1 / 3))
    grid = np.array([(a, b, c) for a in range(side) for b in range(side) for c in range(side)][:size], float)
    r = _rng(size)
    return [1.2 * grid + r.normal(0, 0.05, grid.shape), 1.0, 1.0]


@dataclass(frozen=True)
class Program:
    """A study program: its file's stem, how it is generated, which of ``@f``'s arguments are
    differentiated, its two sizes (and the quick run's), and its arguments at a size."""

    name: str
    generate: Callable[[], str]
    wrt: tuple[int, ...]
    sizes: tuple[Any, Any]
    quick: Any
    inputs: Callable[[Any], list[Any]]

    @property
    def path(self) -> Path:
        return FOLDER / f"{self.name}.sil"


PROGRAMS = (
    Program("gmm", gmm, (0, 1, 2), ((10, 3, 2), (40, 5, 4)), (3, 2, 2), gmm_inputs),
    Program("lstm", lstm, tuple(range(8)), ((4, 10), (32, 60)), (4, 3), lstm_inputs),
    Program("ba", bundle_adjustment, (0, 1), ((8, 2, 4), (80, 8, 20)), (3, 2, 2), ba_inputs),
    Program("ode_euler", lambda: ode("ODE, Euler", False), (0, 1, 2, 3, 4, 5), (50, 500), 5, ode_inputs),
    Program("ode_rk4", lambda: ode("ODE, RK4", True), (0, 1, 2, 3, 4, 5), (25, 250), 3, ode_inputs),
    Program("brusselator", brusselator, (0, 1, 2, 3, 4), ((8, 10), (64, 80)), (4, 3), brusselator_inputs),
    Program("lennard_jones", lennard_jones, (0, 1, 2), (6, 24), 3, lj_inputs),
)


def write_all() -> list[Path]:
    """Write every program's file; the paths written."""
    FOLDER.mkdir(exist_ok=True)
    for p in PROGRAMS:
        p.path.write_text(p.generate())
    return [p.path for p in PROGRAMS]


if __name__ == "__main__":
    for path in write_all():
        print(path.relative_to(FOLDER.parent.parent))
    sys.exit(0)
