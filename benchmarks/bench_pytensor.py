"""Benchmark PyTensor's NUMBA mode, stock and with numba_loopopt enabled.

Run::

    python benchmarks/bench_pytensor.py            # 1e5 scan steps, 1e6-element sum
    python benchmarks/bench_pytensor.py --quick    # fewer repeats, one compile each
    python benchmarks/bench_pytensor.py --graphs garch,until --json out.json

Most of the run time is PyTensor and numba compiling each graph twice (stock
and enabled; numba compiles every function afresh: PyTensor's disk cache is
off for the whole run, so remarks are recorded and the user's cache is left
alone).

Graphs (real ``pytensor.function(..., mode="NUMBA")`` functions; the scans are
``pytensor.scan(..., return_updates=False)`` of the kinds PyMC models use,
1e5 steps by default):

scan
    ``x[t + 1] = x[t] + 1`` with ``pytensor.scan(..., n_steps=n)``, the last
    state returned.
ar1
    An AR(1) log-likelihood: ``sum_t logN(y[t] - rho * y[t-1]; 0, sigma)``,
    summed by the scan itself.  ``y[t-1]`` is a recurrent state, so the
    log-density is computed in the scan step (with ``taps=[0, -1]`` on the
    sequence PyTensor hoists it out of the loop into one vectorised Elemwise).
walk
    A random walk over a sequence of shocks, ``x[t] = x[t-1] + eps[t]``; the
    whole path.
garch
    GARCH(1,1): ``sigma2[t] = omega + alpha * r[t-1]**2 + beta * sigma2[t-1]``
    and the running total of ``logN(r[t]; 0, sqrt(sigma2[t]))``.
taps2
    Two taps (``taps=[-2, -1]``): ``x[t] = a x[t-1] + b x[t-2] + eps[t]``, the
    last state.
until
    A scan with ``until``: the first passage of a drifting walk over ``n / 2``
    (the condition is updated every step; it stops after about half of the
    ``n`` steps, checked); the last state and the number of steps run.
sum
    ``pt.sum(a * b + c)`` on float64 vectors (not a scan).
pymc_garch_logp, pymc_garch_logp_dlogp
    A real client: the PyMC 5 GARCH(1,1) model of
    ``examples/pymc_scan_model.py`` (its variance recursion a ``scan`` over
    the returns, ``n`` observations), compiled as ``Model.compile_logp`` and
    ``compile_dlogp`` do (``Model.compile_fn`` in NUMBA mode over the model's
    value variables): the log-probability, and the log-probability with its
    gradient (a second, backward scan) in one function.  The arguments are the
    model's initial point, moved by the seed.  No hand loop (PyMC's
    log-probability has priors, transforms and their Jacobians); the model is
    built for the size of the run, so the sizes of the bit-for-bit check
    (below) all call the one model.  Needs PyMC (``pip install -e ".[pymc]"``);
    without it these graphs are skipped with a note.

Candidates: stock NUMBA mode; NUMBA mode with ``numba_loopopt.pytensor``
enabled (default options); and, for scale, a hand-written ``numba.njit`` loop
computing the same thing (informational: it is neither PyTensor's code nor its
summation order).  Without ``--quick`` each PyTensor function is compiled
twice and both copies are timed: two copies of one mode run the same code, so
their ratio (the "control" rows) is this run's noise floor, and a stock /
loopopt ratio inside it means nothing.  The enabled function's results are
checked bit for bit against stock's (several sizes, each with a few random
inputs) before any timing, and the hand loop's to ``HAND_RTOL`` relative; a
mismatch is printed (``RESULT MISMATCH``), the graph is still timed, and the
script exits 1 at the end.  PyTensor compiles with ``numba__fastmath`` on by
default; ``--no-fastmath`` turns it off for the whole run.

Per graph it prints the times, the ratios (targets from issue 15: stock /
enabled >= 10 on every scan without ``until``, enabled / hand loop <= 1.5,
compile time enabled / stock <= 1.2), the NRT allocations of one call,
the compile time (``pytensor.function`` plus the first call, where numba
compiles; the faster of two compiles per candidate, ordered stock, enabled,
enabled, stock; not measured with ``--quick``), and the loopopt
remarks of every numba function PyTensor generated, so a missed rewrite is
visible next to the numbers; then a summary table of all graphs.
:func:`nrt_allocations` (NRT allocations of one call of a compiled function)
is importable, for tests.

Timing: the shared harness of ``bench_while_to_range.py``
(``interleaved_min``): all candidates compiled and warmed in one process, then
timed round-robin with :class:`timeit.Timer`, each keeping its minimum, so
drift hits all candidates alike and cancels in the ratios.  Calls go through
the PyTensor ``Function`` (its few microseconds of Python overhead are in
every candidate but the hand loop).  The PASS/FAIL column is informational:
the script exits 0 whatever the timings.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import platform
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import llvmlite
import numba
import numpy as np

# The timing harness is shared with the while-to-range benchmark.
from bench_while_to_range import Candidate, Ratio, interleaved_min
from numba.core.runtime import _nrt_python, rtsys

import numba_loopopt as lo

try:
    import pytensor
    import pytensor.tensor as pt
    from pytensor.scan.utils import until
except ImportError:  # pragma: no cover - reported in main()
    pytensor = None

import numba_loopopt.pytensor as lpt  # noqa: E402

# ---------------------------------------------------------------------------
# Graphs and hand-written loops
#
# Each graph: a builder returning ``(inputs, outputs)`` of a real PyTensor
# graph, ``make_args(n, seed=0)`` (``n`` steps or elements; any ``n >= 2``; the
# seed varies the random inputs) and a hand-written ``numba.njit`` loop
# computing the same thing from the same arguments.
# ---------------------------------------------------------------------------

_LOG_2PI = float(np.log(2 * np.pi))

#: How close a hand loop must come to PyTensor's result (relative).
HAND_RTOL = 1e-12


def counting_scan():
    """x[t + 1] = x[t] + 1 for n steps (``n_steps``, no sequence); the last state."""
    x0, n = pt.dscalar("x0"), pt.iscalar("n")
    xs = pytensor.scan(lambda x: x + 1, outputs_info=[x0], n_steps=n,
                       return_updates=False)
    return [x0, n], xs[-1]


def ar1_loglik():
    """AR(1) log-likelihood ``sum_t logN(y[t] - rho * y[t-1]; 0, sigma)``.

    The previous observation is a recurrent state of the scan (not a tap of
    the sequence), so the residual and its log-density depend on the state and
    are computed inside the scan step: with ``taps=[0, -1]`` PyTensor pushes
    the whole term out of the loop into one vectorised Elemwise and leaves
    only ``total + term[t]`` in the scan.
    """
    y, rho, sigma = pt.dvector("y"), pt.dscalar("rho"), pt.dscalar("sigma")

    def step(y_t, y_tm1, total, rho, sigma):
        r = y_t - rho * y_tm1
        return y_t, total + (-0.5 * _LOG_2PI - pt.log(sigma) - 0.5 * (r / sigma) ** 2)

    _, totals = pytensor.scan(step, sequences=[y[1:]],
                              outputs_info=[y[0], pt.constant(0.0, dtype="float64")],
                              non_sequences=[rho, sigma], return_updates=False)
    return [y, rho, sigma], totals[-1]


def random_walk():
    """x[t] = x[t-1] + eps[t] over a sequence of shocks; the whole path."""
    x0, eps = pt.dscalar("x0"), pt.dvector("eps")
    xs = pytensor.scan(lambda e, x: x + e, sequences=[eps], outputs_info=[x0],
                       return_updates=False)
    return [x0, eps], xs


def garch11_loglik():
    """GARCH(1,1): sigma2[t] = omega + alpha * r[t-1]**2 + beta * sigma2[t-1],
    and the running total of logN(r[t]; 0, sqrt(sigma2[t])), t = 1..n-1."""
    r = pt.dvector("r")
    omega, alpha, beta, s2_0 = pt.dscalars("omega", "alpha", "beta", "sigma2_0")

    def step(r_tm1, r_t, s2_tm1, total, omega, alpha, beta):
        s2 = omega + alpha * r_tm1**2 + beta * s2_tm1
        return s2, total - 0.5 * (_LOG_2PI + pt.log(s2) + r_t**2 / s2)

    _, totals = pytensor.scan(step, sequences=[{"input": r, "taps": [-1, 0]}],
                              outputs_info=[s2_0, pt.constant(0.0, dtype="float64")],
                              non_sequences=[omega, alpha, beta], return_updates=False)
    return [r, omega, alpha, beta, s2_0], totals[-1]


def ar2_taps():
    """Two taps: x[t] = a * x[t-1] + b * x[t-2] + eps[t] (an AR(2) driven by
    shocks, ``outputs_info=[dict(initial=x_init, taps=[-2, -1])]``); the last
    state."""
    x_init, eps = pt.dvector("x_init"), pt.dvector("eps")
    a, b = pt.dscalars("a", "b")

    def step(e, x_tm2, x_tm1, a, b):
        return a * x_tm1 + b * x_tm2 + e

    xs = pytensor.scan(step, sequences=[eps],
                       outputs_info=[{"initial": x_init, "taps": [-2, -1]}],
                       non_sequences=[a, b], return_updates=False)
    return [x_init, eps, a, b], xs[-1]


def until_passage():
    """First passage: x[t] = x[t-1] + eps[t] until x[t] >= barrier (a
    condition updated every step); the last state and the steps run.  The
    shocks drift by +1 and the barrier is n / 2, so the scan stops after about
    half of its n steps."""
    x0, eps, barrier = pt.dscalar("x0"), pt.dvector("eps"), pt.dscalar("barrier")

    def step(e, x, barrier):
        x_new = x + e
        return x_new, until(x_new >= barrier)

    xs = pytensor.scan(step, sequences=[eps], outputs_info=[x0],
                       non_sequences=[barrier], return_updates=False)
    return [x0, eps, barrier], [xs[-1], xs.shape[0]]


def sum_axpy():
    a, b, c = pt.dvectors("a", "b", "c")
    return [a, b, c], pt.sum(a * b + c)


@numba.njit
def hand_scan(x0, n):
    x = x0
    for _ in range(n):
        x = x + 1.0
    return x


@numba.njit
def hand_ar1(y, rho, sigma):
    const = -0.5 * np.log(2 * np.pi) - np.log(sigma)
    total = 0.0
    for t in range(1, y.shape[0]):
        r = (y[t] - rho * y[t - 1]) / sigma
        total += const - 0.5 * r * r
    return total


@numba.njit
def hand_walk(x0, eps):
    out = np.empty_like(eps)
    x = x0
    for t in range(eps.shape[0]):
        x = x + eps[t]
        out[t] = x
    return out


@numba.njit
def hand_garch(r, omega, alpha, beta, s2_0):
    log_2pi = np.log(2 * np.pi)
    s2, total = s2_0, 0.0
    for t in range(1, r.shape[0]):
        s2 = omega + alpha * r[t - 1] * r[t - 1] + beta * s2
        total -= 0.5 * (log_2pi + np.log(s2) + r[t] * r[t] / s2)
    return total


@numba.njit
def hand_taps2(x_init, eps, a, b):
    x_tm2, x_tm1 = x_init[0], x_init[1]
    for t in range(eps.shape[0]):
        x = a * x_tm1 + b * x_tm2 + eps[t]
        x_tm2, x_tm1 = x_tm1, x
    return x_tm1


@numba.njit
def hand_until(x0, eps, barrier):
    x = x0
    steps = 0
    for t in range(eps.shape[0]):
        x = x + eps[t]
        steps = t + 1
        if x >= barrier:
            break
    return x, steps


@numba.njit
def hand_sum(a, b, c):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i] + c[i]
    return s


def scan_args(n, seed=0):
    x0 = 0.0 if seed == 0 else float(np.random.default_rng(seed).normal())
    return (x0, n)


def ar1_args(n, seed=0):
    rng = np.random.default_rng(seed)
    y = np.zeros(n)
    for t in range(1, n):
        y[t] = 0.6 * y[t - 1] + rng.normal()
    return (y, 0.6, 1.3)


def walk_args(n, seed=0):
    rng = np.random.default_rng(100 + seed)
    return (float(rng.normal()), rng.normal(size=n))


def garch_args(n, seed=0):
    """A simulated GARCH(1,1) series (omega 0.1, alpha 0.1, beta 0.8)."""
    rng = np.random.default_rng(200 + seed)
    omega, alpha, beta = 0.1, 0.1, 0.8
    s2 = s2_0 = omega / (1 - alpha - beta)
    r = np.empty(n)
    z = rng.normal(size=n)
    for t in range(n):
        if t:
            s2 = omega + alpha * r[t - 1] ** 2 + beta * s2
        r[t] = np.sqrt(s2) * z[t]
    return (r, omega, alpha, beta, s2_0)


def taps2_args(n, seed=0):
    """A stationary AR(2) (roots of modulus sqrt(0.5)): no overflow, no decay
    to subnormals."""
    rng = np.random.default_rng(300 + seed)
    return (rng.normal(size=2), rng.normal(size=n), 0.5, -0.5)


def until_args(n, seed=0):
    rng = np.random.default_rng(400 + seed)
    return (0.0, rng.normal(1.0, 1.0, size=n), n / 2)


def sum_args(n, seed=0):
    rng = np.random.default_rng(1 + seed)
    return tuple(rng.normal(size=n) for _ in range(3))


# -- PyMC: the model of examples/pymc_scan_model.py -----------------------------

_PYMC_MODEL: dict = {}


def _pymc_example():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "pymc_scan_model.py"
    spec = importlib.util.spec_from_file_location("pymc_scan_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pymc_garch_model(steps: int):
    """The example's GARCH(1,1) model of ``steps`` observations, built once per
    size (and then the one :func:`pymc_garch_args` uses)."""
    if _PYMC_MODEL.get("steps") != steps:
        _PYMC_MODEL.update(steps=steps, model=_pymc_example().garch_model(steps))
    return _PYMC_MODEL["model"]


def pymc_garch_compile(graph: Graph, gradient: bool):
    """``Model.compile_fn`` in NUMBA mode, positional over the value variables,
    as ``compile_logp`` / ``compile_dlogp`` compile (``point_fn=False``: the
    arguments are arrays, not a point dictionary)."""
    model = pymc_garch_model(max(graph.size, 2))
    outputs = [model.logp(), model.dlogp()] if gradient else model.logp()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return model.compile_fn(outputs, inputs=model.value_vars, point_fn=False,
                                mode="NUMBA")


def pymc_garch_args(n, seed=0):
    """The model's initial point (its value variables, in order), moved by a
    normal step of 0.1 per value for a non-zero seed.  ``n`` is ignored: the
    data is part of the model, built at compile time."""
    model = _PYMC_MODEL.get("model") or pymc_garch_model(max(n, 2))
    point = model.initial_point()
    rng = np.random.default_rng(500 + seed)
    return tuple(np.asarray(point[v.name] + (0.1 * rng.normal(size=np.shape(point[v.name]))
                                             if seed else 0.0), dtype=point[v.name].dtype)
                 for v in model.value_vars)


@dataclass
class Graph:
    key: str
    title: str
    build: Callable
    make_args: Callable[..., tuple]
    hand: Callable | None
    """A hand-written loop computing the same (None: none, no ratio to it)."""
    unit: str
    size: int = 0
    speedup_target: float | None = 10.0
    """Issue 15's target for stock / enabled at 1e5 steps (None: no target)."""
    hand_goal: float | None = 1.5
    """Issue 15's goal for enabled / hand loop (None: no goal)."""
    stops_early: bool = False
    """The second output is the number of steps run, which must be fewer than
    the size at the benchmark size (an ``until`` scan)."""
    compile: Callable[[Graph], Callable] | None = None
    """How to compile it (default: ``pytensor.function(*build(), mode="NUMBA")``)."""
    needs: str | None = None
    """A module the graph needs besides PyTensor (skipped with a note without it)."""


GRAPHS = {
    "scan": Graph("scan", "scan: x[t + 1] = x[t] + 1, n_steps = n, last state",
                  counting_scan, scan_args, hand_scan, "step"),
    "ar1": Graph("ar1", "scan: AR(1) log-likelihood, y[t-1] a recurrent state, "
                 "running total", ar1_loglik, ar1_args, hand_ar1, "step"),
    "walk": Graph("walk", "scan: random walk x[t] = x[t-1] + eps[t], whole path",
                  random_walk, walk_args, hand_walk, "step"),
    "garch": Graph("garch", "scan: GARCH(1,1) variance recursion and log-likelihood",
                   garch11_loglik, garch_args, hand_garch, "step"),
    "taps2": Graph("taps2", "scan: taps=[-2, -1], x[t] = a x[t-1] + b x[t-2] + eps[t], "
                   "last state", ar2_taps, taps2_args, hand_taps2, "step"),
    "until": Graph("until", "scan with until: first passage of a drifting walk over "
                   "n / 2 (stops after ~n/2 of n steps)", until_passage, until_args,
                   hand_until, "step", speedup_target=None, hand_goal=None,
                   stops_early=True),
    "sum": Graph("sum", "pt.sum(a * b + c), float64 vectors",
                 sum_axpy, sum_args, hand_sum, "elem", speedup_target=None,
                 hand_goal=None),
    "pymc_garch_logp": Graph(
        "pymc_garch_logp", "PyMC 5 GARCH(1,1) model: compile_logp (a scan over the returns)",
        None, pymc_garch_args, None, "obs", hand_goal=None, needs="pymc",
        compile=lambda graph: pymc_garch_compile(graph, gradient=False)),
    "pymc_garch_logp_dlogp": Graph(
        "pymc_garch_logp_dlogp", "PyMC 5 GARCH(1,1) model: logp and its gradient "
        "(forward and backward scans)", None, pymc_garch_args, None, "obs",
        hand_goal=None, needs="pymc",
        compile=lambda graph: pymc_garch_compile(graph, gradient=True)),
}


# ---------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------


@dataclass
class Result:
    graph: Graph
    candidates: list[Candidate]
    ratios: list[Ratio]
    best: dict[str, float] = field(default_factory=dict)
    compile_s: dict[str, float] = field(default_factory=dict)
    allocs: dict[str, int] = field(default_factory=dict)
    compile_ratio: Ratio | None = None
    mismatches: list[str] = field(default_factory=list)
    remarks: list[tuple[int, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def compile_graph(graph: Graph, enabled: bool, args: tuple):
    """``pytensor.function`` for the graph, stock or enabled, and the seconds
    it took together with the first call (where numba compiles)."""
    started = time.perf_counter()
    with lpt.enabled() if enabled else _disabled():
        if graph.compile is not None:
            fn = graph.compile(graph)
        else:
            inputs, output = graph.build()
            fn = pytensor.function(inputs, output, mode="NUMBA")
    fn(*args)
    return fn, time.perf_counter() - started


class _disabled:
    def __enter__(self):
        self.previous = lpt.active_options()
        lpt.disable()

    def __exit__(self, *exc):
        if self.previous is not None:
            lpt.enable(self.previous)
        return False


def _values(result) -> list[np.ndarray]:
    """A function's result as a flat list of arrays (PyTensor returns a list
    for several outputs, a hand loop a tuple)."""
    if isinstance(result, (list, tuple)):
        return [v for r in result for v in _values(r)]
    return [np.asarray(result)]


def same_bits(a, b) -> bool:
    """Same values, dtypes and shapes, bit for bit (several outputs: each)."""
    a, b = _values(a), _values(b)
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
        for x, y in zip(a, b, strict=True))


def hand_agrees(hand, ref, rtol: float = HAND_RTOL) -> bool:
    """The hand loop's result equals PyTensor's to ``rtol`` relative, value by
    value (integers exactly).  Not bit for bit: PyTensor compiles with
    fastmath and orders some operations differently."""
    hand, ref = _values(hand), _values(ref)
    return len(hand) == len(ref) and all(
        h.shape == r.shape and np.allclose(h, r, rtol=rtol, atol=0.0)
        for h, r in zip(hand, ref, strict=True))


def _show(result) -> str:
    """A result with its floats in hex, so a one-ulp difference shows."""
    shown = []
    for v in _values(result):
        if v.dtype.kind == "f" and v.size <= 4:
            shown.append("[" + ", ".join(float(x).hex() for x in v.ravel()) + "]")
        else:
            shown.append(repr(v))
    return ", ".join(shown)


def mismatches(graph: Graph, stock, opt, sizes: list[int], seeds=(0, 1, 2)) -> list[str]:
    """Where the enabled function is not bit for bit equal to stock, or the
    hand loop not within ``HAND_RTOL`` of stock: every size with every seed
    (the random inputs), except the largest size, which runs with seed 0 only."""
    found = []
    for n in sizes:
        for seed in seeds if n < max(sizes) else seeds[:1]:
            args = graph.make_args(n, seed)
            ref, got = stock(*args), opt(*args)
            if not same_bits(ref, got):
                found.append(f"{graph.key}: enabled returned {_show(got)}, stock NUMBA "
                             f"mode {_show(ref)} at size {n}, seed {seed}")
            hand = graph.hand(*args) if graph.hand is not None else ref
            if not hand_agrees(hand, ref):
                found.append(f"{graph.key}: hand loop returned {_show(hand)}, PyTensor "
                             f"{_show(ref)} at size {n}, seed {seed}")
    return found


def verify(graph: Graph, stock, opt, sizes: list[int], seeds=(0, 1, 2)) -> None:
    """Raise on the first of :func:`mismatches`."""
    found = mismatches(graph, stock, opt, sizes, seeds)
    if found:
        raise AssertionError(found[0] + (f" (and {len(found) - 1} more)" if found[1:] else ""))


class NrtCounts(NamedTuple):
    """NRT events of one call: allocations, frees, and the same for meminfos."""
    alloc: int
    free: int
    mi_alloc: int
    mi_free: int


def nrt_counts(call: Callable[[], object]) -> NrtCounts:
    """numba's NRT allocation counters over one call of ``call()`` (after a
    warm-up call, which compiles and fills caches)."""
    call()
    _nrt_python.memsys_enable_stats()
    try:
        before = rtsys.get_allocation_stats()
        call()
        after = rtsys.get_allocation_stats()
    finally:
        _nrt_python.memsys_disable_stats()
    return NrtCounts(*(a - b for a, b in zip(after, before, strict=True)))


def nrt_allocations(fn: Callable, *args) -> int:
    """NRT allocations made by one call ``fn(*args)`` of a compiled PyTensor
    function (or any numba function), after a warm-up call.  A scan that
    allocates per step makes at least one allocation per step."""
    return nrt_counts(lambda: fn(*args)).alloc


def allocations(call: Callable[[], object]) -> int:
    """NRT allocations made by one call (after a warm-up call)."""
    return nrt_counts(call).alloc


def remark_summary(fn) -> list[tuple[int, str]]:
    """Distinct remarks of the enabled function's numba functions, with how
    often each occurs (file and line dropped: generated source).  Successful
    inlines are many and alike: one line per function counts them."""
    counts = Counter()
    for function, r in lpt.remarks(fn):
        if r.pass_name == "inline" and r.kind is lo.RemarkKind.PASSED:
            counts[f"{function}: [inline] Inlined: calls inlined (count)"] += 1
            continue
        what = r.key if r.kind is not lo.RemarkKind.MISSED else f"missed {r.key}"
        counts[f"{function}: [{r.pass_name}] {what}: {r.message}"] += 1
    return sorted(((n, text) for text, n in counts.items()), key=lambda x: x[1])


def run_graph(graph: Graph, repeats: int, min_sample: float,
              compile_rounds: int) -> Result:
    """Compile stock and enabled, check, time.

    With ``compile_rounds`` = 2 each is compiled twice, in the order stock,
    enabled, enabled, stock (so numba's one-time warm-up for the graph's Ops
    does not land on one side), and all four functions are timed: the two
    copies of one mode run the same code, so their ratio is this run's noise
    floor, and each mode's time is the faster of its copies.
    """
    args = graph.make_args(graph.size)
    order = ["stock", "opt"] if compile_rounds == 1 else ["stock", "opt", "opt", "stock"]
    fns, compile_s = {"stock": [], "opt": []}, {}
    for mode in order:
        fn, seconds = compile_graph(graph, mode == "opt", args)
        fns[mode].append(fn)
        compile_s[mode] = min(compile_s.get(mode, seconds), seconds)
    wrong = []
    for stock, opt in zip(fns["stock"], fns["opt"], strict=True):
        wrong += mismatches(graph, stock, opt, [2, 3, 10, 101, graph.size])
    labels = {"stock": "stock NUMBA mode", "opt": "loopopt enabled"}
    candidates = []
    for mode in ("stock", "opt"):
        for copy, fn in enumerate(fns[mode]):
            suffix = "" if copy == 0 else " (2nd compile)"
            candidates.append(Candidate(labels[mode] + suffix, fn, f"{mode}{copy}"))
    if graph.hand is not None:
        candidates.append(Candidate("hand-written numba loop (info)", graph.hand, "hand"))
    if graph.stops_early:
        steps = int(_values(fns["stock"][0](*args))[1])
        if steps >= graph.size:
            raise AssertionError(f"{graph.key}: the scan ran all {graph.size:,} steps; "
                                 "its until condition never stopped it")
        note = f"the until condition stopped the scan after {steps:,} of {graph.size:,} steps"
    speedup = (Ratio("stock / loopopt (speed-up)", "stock", "opt", ">=", graph.speedup_target)
               if graph.speedup_target else Ratio("stock / loopopt (speed-up)", "stock", "opt"))
    to_hand = (Ratio("loopopt / hand loop", "opt", "hand", "<=", graph.hand_goal)
               if graph.hand_goal else Ratio("loopopt / hand loop", "opt", "hand"))
    ratios = [speedup,
              Ratio("loopopt / stock (no slowdown)", "opt", "stock", "<=", 1.05)]
    if graph.hand is not None:
        ratios.append(to_hand)
    if compile_rounds > 1:
        ratios += [Ratio("control: stock / its 2nd compile", "stock0", "stock1"),
                   Ratio("control: loopopt / its 2nd compile", "opt0", "opt1")]
    result = Result(graph, candidates, ratios,
                    compile_s=compile_s if compile_rounds > 1 else {})
    result.mismatches = wrong
    if graph.stops_early:
        result.notes.append(note)
    calls = {c.role: (lambda f=c.dispatcher: f(*args)) for c in candidates}
    result.best, _ = interleaved_min(calls, repeats, min_sample)
    for mode in ("stock", "opt"):
        result.best[mode] = min(t for role, t in result.best.items()
                                if role.startswith(mode))
    for r in ratios:
        r.value = result.best[r.num] / result.best[r.den]
    if result.compile_s:
        compile_ratio = Ratio("compile: loopopt / stock", "opt", "stock", "<=", 1.2)
        compile_ratio.value = compile_s["opt"] / compile_s["stock"]
        result.compile_ratio = compile_ratio
    result.allocs = {role: allocations(call) for role, call in calls.items()}
    result.remarks = remark_summary(fns["opt"][0])
    if not any("while-to-range" in text or "fuse-" in text for _, text in result.remarks):
        result.notes.append("no loop pass reported on this graph's functions")
    return result


def print_result(res: Result, repeats: int) -> None:
    g = res.graph
    print(f"\n== {g.key}. {g.title}")
    print(f"   size {g.size:,}, min of {repeats} interleaved rounds")
    for text in res.mismatches:
        print(f"   RESULT MISMATCH: {text}")
    print(f"   {'candidate':36s} {'time (ms)':>10s} {'ns/' + g.unit:>9s} "
          f"{'allocs/call':>11s} {'compile (s)':>11s}")
    for c in res.candidates:
        t = res.best[c.role]
        comp = res.compile_s.get(c.role[:-1]) if c.role.endswith("0") else None
        comp_text = f"{comp:11.2f}" if comp is not None else f"{'-':>11s}"
        print(f"   {c.label:36s} {t * 1e3:10.3f} {t / g.size * 1e9:9.2f} "
              f"{res.allocs[c.role]:11d} {comp_text}")
    print(f"   {'ratio (of times)':36s} {'value':>10s} {'target':>9s}  result")
    for r in res.ratios + ([res.compile_ratio] if res.compile_ratio else []):
        print(f"   {r.label:36s} {r.value:10.2f} {r.target_text():>9s}  {r.result_text()}")
    print("   loopopt remarks on PyTensor's generated functions (count x remark):")
    for n, text in res.remarks or [(0, "(none)")]:
        print(f"     {n:3d} x {text}")
    if not res.compile_s:
        res.notes.append("compile times need two rounds each; not measured with --quick")
    for note in res.notes:
        print(f"   note: {note}")


def print_summary(results: list[Result], quick: bool) -> None:
    """One line per graph: the times, the two ratios, NRT allocations per
    call and (without ``--quick``) compile times."""
    if not results:
        return
    print("\n== summary (times: min per call; allocs: NRT allocations in one call; "
          "bits: enabled vs stock results;\n   compile: pytensor.function + first call)")
    width = max(6, *(len(res.graph.key) for res in results))
    head = (f"{'graph':{width}s} {'size':>9s} {'stock ms':>9s} {'enabled ms':>10s} "
            f"{'hand ms':>9s} {'stock/enabled':>13s} {'enabled/hand':>12s} "
            f"{'allocs stock':>12s} {'allocs enabled':>14s} {'bits':>5s}")
    if not quick:
        head += f" {'compile stock s':>15s} {'compile enabled s':>17s}"
    print(head)
    print("-" * len(head))
    for res in results:
        b, a = res.best, res.allocs
        line = (f"{res.graph.key:{width}s} {res.graph.size:9,d} {b['stock'] * 1e3:9.3f} "
                f"{b['opt'] * 1e3:10.3f} {b.get('hand', math.nan) * 1e3:9.3f} "
                f"{b['stock'] / b['opt']:13.2f} {b['opt'] / b.get('hand', math.nan):12.2f} "
                f"{a['stock0']:12,d} {a['opt0']:14,d} "
                f"{'DIFF' if res.mismatches else 'same':>5s}")
        if not quick:
            c = res.compile_s
            line += f" {c.get('stock', math.nan):15.2f} {c.get('opt', math.nan):17.2f}"
        print(line)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="fewer repeats and a 1e5-element sum (a smoke run)")
    p.add_argument("--steps", type=int, default=100_000,
                   help="scan steps, series lengths (default 1e5)")
    p.add_argument("--size", type=int, default=None,
                   help="elements per vector of the sum graph (default 1e6, 1e5 with --quick)")
    p.add_argument("--repeats", type=int, default=None,
                   help="interleaved rounds (default 11, 5 with --quick)")
    p.add_argument("--graphs", default=",".join(GRAPHS),
                   help=f"comma-separated subset of {', '.join(GRAPHS)} (default all)")
    p.add_argument("--no-fastmath", action="store_true",
                   help="compile with pytensor.config.numba__fastmath = False "
                        "(PyTensor's default is on)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = p.parse_args(argv)
    if args.size is None:
        args.size = 10**5 if args.quick else 10**6
    if args.repeats is None:
        args.repeats = 5 if args.quick else 11
    args.graphs = [g.strip() for g in args.graphs.split(",") if g.strip()]
    unknown = sorted(set(args.graphs) - set(GRAPHS))
    if unknown:
        p.error(f"unknown graphs {unknown}; choose from {sorted(GRAPHS)}")
    if min(args.steps, args.size, args.repeats) < 1:
        p.error("--steps, --size and --repeats must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if pytensor is None:
        print("bench_pytensor: PyTensor is not installed "
              "(pip install 'numba_loopopt[pytensor]')", file=sys.stderr)
        return 2
    started = time.perf_counter()
    warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS",
                            category=UserWarning)
    pytensor.config.numba__cache = False
    if args.no_fastmath:
        pytensor.config.numba__fastmath = False
    print("numba_loopopt PyTensor benchmark")
    print(f"python {platform.python_version()}, numba {numba.__version__}, "
          f"llvmlite {llvmlite.__version__}, numpy {np.__version__}, "
          f"pytensor {pytensor.__version__}, numba_loopopt {lo.__version__}; "
          f"{platform.machine()}; pytensor numba__fastmath="
          f"{pytensor.config.numba__fastmath}, numba__cache off")
    print("timing: timeit.Timer, candidates interleaved in one process, min of rounds; "
          "enabled results checked bit for bit against stock NUMBA mode first")

    results = []
    for key in args.graphs:
        graph = GRAPHS[key]
        if graph.needs and importlib.util.find_spec(graph.needs) is None:
            print(f"\n== {key}: skipped ({graph.needs} is not installed: "
                  f"pip install -e '.[{graph.needs}]')")
            continue
        graph.size = args.size if key == "sum" else args.steps
        res = run_graph(graph, args.repeats, min_sample=0.02,
                        compile_rounds=1 if args.quick else 2)
        print_result(res, args.repeats)
        results.append(res)
    lpt.disable()
    print_summary(results, quick=args.quick)

    checks = [r.passed for res in results
              for r in res.ratios + ([res.compile_ratio] if res.compile_ratio else [])
              if r.passed is not None]
    print(f"\n{sum(checks)}/{len(checks)} targets met "
          f"(informational); total {time.perf_counter() - started:.1f} s")

    if args.json:
        out = {
            "config": {"steps": args.steps, "size": args.size, "repeats": args.repeats,
                       "python": platform.python_version(), "numba": numba.__version__,
                       "pytensor": pytensor.__version__, "numba_loopopt": lo.__version__,
                       "numba__fastmath": bool(pytensor.config.numba__fastmath)},
            "graphs": [{
                "key": res.graph.key, "size": res.graph.size,
                "seconds": res.best, "compile_seconds": res.compile_s,
                "allocations": res.allocs,
                "compile_ratio": (None if res.compile_ratio is None
                                  else res.compile_ratio.value),
                "ratios": [{"label": r.label, "value": r.value, "target": r.target,
                            "op": r.op, "passed": r.passed} for r in res.ratios],
                "remarks": [{"count": n, "remark": text} for n, text in res.remarks],
                "notes": res.notes,
                "mismatches": res.mismatches,
            } for res in results],
        }
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    wrong = [text for res in results for text in res.mismatches]
    if wrong:
        print(f"\n{len(wrong)} RESULT MISMATCHES (exit status 1):")
        for text in wrong:
            print(f"  {text}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
