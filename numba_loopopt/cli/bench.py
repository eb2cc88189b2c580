"""Benchmark suite: ``python -m numba_loopopt bench [--quick] [--out DIR] [--kernels ...]``.

For every kernel of the project's baselines (a scan loop with and without a
modulo, ``np.sum(a*b+c)``, ``((x-x.mean())**2).sum()``, ``(np.exp(a)*b).max()``,
``t.sum(), t.max(), t.min()`` of ``t = a*b``, the gather ``x[idx].sum()``, two
``range`` loops through a temporary, and real PyTensor NUMBA-mode graphs) and
several sizes, it times the candidates: stock ``numba.njit``,
``numba.njit(parallel=True)`` on one thread, NumPy, numexpr (one thread; where
the kernel can be written in it), JAX ``jit`` (only if ``import jax`` works), a
hand-written ``numba.njit`` loop and ``numba_loopopt.jit``.  It prints, per
kernel and size, each time relative to the hand-written loop and to
``numba_loopopt.jit``, then a table of loopopt's speed-up over every other
candidate, and writes ``results.json`` (every sample), ``speedup.png`` (the
speed-ups against size; needs matplotlib) and, if pyperf is installed,
``results.pyperf.json`` to ``--out`` (default ``bench_results``).

Before anything is timed, every candidate's result (the return value and, for
the scan kernels, the buffer it writes) is compared with stock numba's at
sizes 1, 2, 7, 100 and every timed size: ``numba_loopopt.jit`` and the
hand-written loops that keep stock numba's order of operations must be
bit-identical; NumPy, numexpr, ``parallel=True`` and JAX, which may reorder a
sum, must agree to ``rtol=1e-9``.  A mismatch stops the run (exit status 1):
the speed of a wrong kernel means nothing.

Harness
-------
Timing uses :class:`timeit.Timer` from the standard library (the clock is
``perf_counter``, or with ``--clock cpu`` ``process_time``; the garbage
collector is off while timing), calibrated the way
:meth:`timeit.Timer.autorange` does it (1, 2, 5, 10, ... calls per sample until
a sample lasts ``min_sample`` seconds: autorange's fixed 0.2 s would make the
quick mode too slow).  The candidates of one kernel and size are sampled
**round-robin** (order reversed every other round), each keeping its minimum --
the method of ``benchmarks/bench_while_to_range.py`` -- so slow drift hits all
candidates alike and cancels in the ratios.  Stock numba is timed twice in
every round (a control): how far apart its two minimums land is the run's
noise floor, printed next to every ratio, and rounds continue, up to twice
``--repeats``, while they differ by more than 3%.  On a machine shared with
other work, ``--clock cpu`` measures the process's CPU time, which time slices
lost to other processes do not inflate.

pyperf was evaluated and is not used for the timing.  Its ``Runner`` measures
each benchmark in fresh worker processes, and each worker imports numba (0.6 s
here) and JIT-compiles its kernel again (0.1-1 s per candidate): one
benchmark, ``np.sum(a*b+c)`` through ``numba_loopopt.jit`` at 1e5 elements,
took 26 s with ``--fast`` and 13 s with ``--processes 3 --values 3`` on this
2-core machine, and the quick suite has about 240 (kernel, size, candidate)
benchmarks: an hour or more instead of under two minutes.  pyperf 2.11's
``--in-process`` mode avoids the workers but still measures one benchmark after
another (drift lands on whichever candidate runs at the time and does not
cancel in a ratio), allows one ``Runner`` per process and owns ``sys.argv``.
pyperf is used for its file format instead: with pyperf installed, the samples
are also written as a pyperf ``BenchmarkSuite``, so ``python -m pyperf
compare_to old.pyperf.json new.pyperf.json`` compares two runs (before and
after a change to a pass, say) with pyperf's statistics.

Nothing optional is imported with the package: matplotlib, numexpr, pyperf,
JAX and PyTensor are imported when the suite runs, and a missing one is
reported and skipped.  numexpr and numba's parallel backend are held to one
thread (NumPy runs these kernels on one thread anyway; JAX is not held: it has
no simple switch).
"""

from __future__ import annotations

import argparse
import copy
import importlib
import importlib.util
import json
import math
import os
import platform
import sys
import textwrap
import time
import timeit
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
from numba.core.errors import NumbaPerformanceWarning

from .._version import __version__
from ..decorator import jit
from ..remarks import RemarkKind, remarks
from .demo import fill_then_sum, pytensor_scan, while_with_flag

QUICK_SIZES = (10**3, 10**4, 10**5, 10**6)
FULL_SIZES = (10**3, 10**4, 10**5, 10**6, 10**7)
#: PyTensor's scan allocates per step (~55 ns/step): larger sizes add nothing.
PYTENSOR_MAX_SIZE = 10**6
CHECK_SIZES = (1, 2, 7, 100)
#: Role under which stock numba is timed a second time (the noise floor).
CONTROL = "stock_again"
#: Rounds continue (up to twice --repeats) while the two timings of stock
#: numba differ by more than this.
SETTLED = 0.03
RTOL, ATOL = 1e-9, 1e-12

#: Candidate roles, in the order they are shown.
ROLES = ("stock", "parallel", "numpy", "numexpr", "jax", "hand", "loopopt")
LABELS = {
    "stock": "stock numba.njit",
    "parallel": "njit(parallel=True), 1 thread",
    "numpy": "NumPy",
    "numexpr": "numexpr, 1 thread",
    "jax": "JAX jit",
    "hand": "hand-written loop (njit)",
    "loopopt": "numba_loopopt.jit",
}
SHORT = {"stock": "stock", "parallel": "parallel", "numpy": "NumPy",
         "numexpr": "numexpr", "jax": "JAX", "hand": "hand", "loopopt": "loopopt"}

# ---------------------------------------------------------------------------
# Kernels: plain Python functions; every numba candidate compiles its own
# dispatcher from them.
# ---------------------------------------------------------------------------


# The scan kernels are the demo's: the loop PyTensor's scan emits, without
# and with its modulo state storage.
scan = while_with_flag
scan_mod = pytensor_scan


def hand_scan(buf, n):
    for i in range(n):
        buf[i + 1] = buf[i] + 1.0
    return n


def hand_scan_for_mod(buf, n):
    # The fix PyTensor issue #2024 proposes: a for loop, the modulo kept.
    L = len(buf)
    for i in range(n):
        buf[(i + 1) % L] = buf[i % L] + 1.0
    return n


def numpy_scan(buf, n):
    # np.cumsum adds left to right: ((buf[0] + 1) + 1) + ..., the recurrence.
    ones = np.ones(n + 1)
    ones[0] = buf[0]
    np.cumsum(ones, out=buf[:n + 1])
    return n


def sum_expr(a, b, c):
    return np.sum(a * b + c)


def hand_sum_expr(a, b, c):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i] + c[i]
    return s


def centered_sq(x):
    return ((x - x.mean()) ** 2).sum()


def hand_centered_sq(x):
    n = x.shape[0]
    s = 0.0
    for i in range(n):
        s += x[i]
    m = s / n
    acc = 0.0
    for i in range(n):
        d = x[i] - m
        acc += d ** 2
    return acc


def exp_max(a, b):
    return (np.exp(a) * b).max()


def hand_exp_max(a, b):
    mx = np.exp(a[0]) * b[0]
    for i in range(1, a.shape[0]):
        v = np.exp(a[i]) * b[i]
        if v > mx:
            mx = v
    return mx


def three(a, b):
    t = a * b
    return t.sum(), t.max(), t.min()


def hand_three(a, b):
    s = 0.0
    mx = a[0] * b[0]
    mn = mx
    for i in range(a.shape[0]):
        v = a[i] * b[i]
        s += v
        if v > mx:
            mx = v
        if v < mn:
            mn = v
    return s, mx, mn


def gather(x, idx):
    return x[idx].sum()


def hand_gather(x, idx):
    s = 0.0
    for k in range(idx.shape[0]):
        s += x[idx[k]]
    return s


#: The demo's kernel: fill a temporary in one loop, sum it in the next.
two_loops = fill_then_sum


def scan_args(n, rng):
    return (np.zeros(n + 1), n)


def vectors(count):
    def make(n, rng):
        return tuple(rng.random(n) for _ in range(count))
    return make


def gather_args(n, rng):
    return (rng.random(n), rng.integers(0, n, n))


# numexpr and JAX versions: factories given the imported module.

def _ne_sum_expr(ne):
    return lambda a, b, c: ne.evaluate("sum(a * b + c)", local_dict={"a": a, "b": b, "c": c})


def _ne_centered_sq(ne):
    def f(x):
        m = x.mean()  # numexpr has no mean(); NumPy computes it
        return ne.evaluate("sum((x - m) ** 2)", local_dict={"x": x, "m": m})
    return f


def _ne_exp_max(ne):
    return lambda a, b: ne.evaluate("max(exp(a) * b)", local_dict={"a": a, "b": b})


def _ne_three(ne):
    def f(a, b):
        env = {"a": a, "b": b}
        return (ne.evaluate("sum(a * b)", local_dict=env),
                ne.evaluate("max(a * b)", local_dict=env),
                ne.evaluate("min(a * b)", local_dict=env))
    return f


def _jax_sum_expr(jnp):
    return lambda a, b, c: jnp.sum(a * b + c)


def _jax_centered_sq(jnp):
    return lambda x: ((x - x.mean()) ** 2).sum()


def _jax_exp_max(jnp):
    return lambda a, b: (jnp.exp(a) * b).max()


def _jax_three(jnp):
    def f(a, b):
        t = a * b
        return t.sum(), t.max(), t.min()
    return f


def _jax_gather(jnp):
    return lambda x, idx: x[idx].sum()


NOT_NUMEXPR_SCAN = "a sequential recurrence; numexpr has no scan"
NOT_JAX_SCAN = "writes its buffer in place; JAX arrays are immutable"


@dataclass(frozen=True)
class Kernel:
    key: str
    title: str
    func: Callable | None
    """As users write it: stock, parallel=True and loopopt compile it."""
    hand: Callable | None
    make_args: Callable[[int, np.random.Generator], tuple]
    numpy: Callable | None = None
    numexpr: Callable | str | None = None
    """A factory given the numexpr module, or why the kernel is not written in it."""
    jax: Callable | str | None = None
    hand_exact: bool = True
    """The hand loop keeps stock numba's order of operations: bit-identical."""
    mutates: bool = False
    """The kernel writes its first argument, which is part of its result."""
    extra: tuple = ()
    """(role, label, python function compiled with numba.njit, exact)."""
    note: str = ""
    pytensor: str | None = None
    """Key of a ``benchmarks/bench_pytensor.py`` graph."""


KERNELS: dict[str, Kernel] = {k.key: k for k in [
    Kernel("scan", "while i < n and not cond.item(): buf[i+1] = buf[i] + 1",
           scan, hand_scan, scan_args, numpy=numpy_scan, numexpr=NOT_NUMEXPR_SCAN,
           jax=NOT_JAX_SCAN, mutates=True,
           note="NumPy: np.cumsum(out=buf), which adds in the loop's order"),
    Kernel("scan_mod", "the same with buf[(i+1) % L] = buf[i % L] + 1, L = n + 1",
           scan_mod, hand_scan, scan_args, numpy=numpy_scan, numexpr=NOT_NUMEXPR_SCAN,
           jax=NOT_JAX_SCAN, mutates=True,
           extra=(("hand_mod", "hand for loop with % L (#2024)", hand_scan_for_mod, True),),
           note="hand loop: for i in range(n) without the modulo (L = n + 1 cannot "
                "wrap); 'hand_mod' keeps the modulo, the fix PyTensor issue #2024 "
                "proposes"),
    Kernel("sum_expr", "np.sum(a*b + c)", sum_expr, hand_sum_expr, vectors(3),
           numpy=sum_expr, numexpr=_ne_sum_expr, jax=_jax_sum_expr),
    Kernel("centered_sq", "((x - x.mean())**2).sum()", centered_sq, hand_centered_sq,
           vectors(1), numpy=centered_sq, numexpr=_ne_centered_sq, jax=_jax_centered_sq),
    Kernel("exp_max", "(np.exp(a)*b).max()", exp_max, hand_exp_max, vectors(2),
           numpy=exp_max, numexpr=_ne_exp_max, jax=_jax_exp_max),
    Kernel("three", "t = a*b; t.sum(), t.max(), t.min()", three, hand_three, vectors(2),
           numpy=three, numexpr=_ne_three, jax=_jax_three,
           note="numexpr: three reductions, so a*b is computed three times"),
    Kernel("gather", "x[idx].sum(), idx random", gather, hand_gather, gather_args,
           numpy=gather, numexpr="numexpr cannot index an array", jax=_jax_gather),
    Kernel("two_loops", "two range loops: fill tmp = a*b + c, then sum it", two_loops,
           hand_sum_expr, vectors(3), numpy=sum_expr, numexpr=_ne_sum_expr,
           jax=_jax_sum_expr,
           note="NumPy, numexpr and JAX compute np.sum(a*b + c), what the loops compute"),
    # PyTensor graphs: arguments, hand loop and the graph come from bench_pytensor.
    Kernel("pytensor_scan", "PyTensor NUMBA mode: scan x[t+1] = x[t] + 1, n steps",
           None, None, scan_args, pytensor="scan"),
    Kernel("pytensor_ar1", "PyTensor NUMBA mode: AR(1) log-likelihood scan, n steps",
           None, None, scan_args, pytensor="ar1"),
    Kernel("pytensor_walk", "PyTensor NUMBA mode: random walk over shocks scan, n steps",
           None, None, scan_args, pytensor="walk"),
    # GARCH(1,1) is left to benchmarks/bench_pytensor.py: under PyTensor's
    # fastmath it differs from stock in the last bit (docs/pytensor.rst), and
    # this suite times only bit-identical results.
    Kernel("pytensor_taps2", "PyTensor NUMBA mode: scan with taps [-2, -1], n steps",
           None, None, scan_args, pytensor="taps2"),
    Kernel("pytensor_until", "PyTensor NUMBA mode: scan with until, up to n steps",
           None, None, scan_args, pytensor="until"),
    Kernel("pytensor_sum", "PyTensor NUMBA mode: pt.sum(a*b + c)",
           None, None, scan_args, pytensor="sum"),
]}

#: Names ``--kernels`` accepts for groups of kernels.
ALIASES = {"all": list(KERNELS), "pytensor": [k for k in KERNELS if k.startswith("pytensor")]}

PYTENSOR_NOTE = ("candidates: PyTensor's NUMBA mode, stock and with "
                 "numba_loopopt.pytensor enabled, and a hand-written njit loop "
                 "(not PyTensor's order of operations: compared with allclose)")


# ---------------------------------------------------------------------------
# Candidates and their checks
# ---------------------------------------------------------------------------


@dataclass
class Candidate:
    role: str
    label: str
    call: Callable | None = None
    exact: bool = False
    """Must be bit-identical to stock numba (else: allclose)."""
    skipped: str = ""
    """Why the candidate is not run (empty if it is)."""
    convert: Callable[[tuple], tuple] = tuple
    """Prepares the kernel's arguments for this candidate (JAX: device arrays)."""
    first_call_s: float = math.nan
    """Seconds of the first call, which compiles (informational)."""


class ResultMismatch(AssertionError):
    """A candidate's result differs from stock numba's."""


def _flatten(value) -> list[np.ndarray]:
    if isinstance(value, tuple | list):
        return [x for v in value for x in _flatten(v)]
    return [np.array(value, copy=True)]


def outcome(cand: Candidate, kernel: Kernel, args: tuple) -> list[np.ndarray]:
    """The candidate's return value and, for a kernel that writes its first
    argument, that argument afterwards; as a flat list of arrays."""
    if kernel.mutates:
        args = copy.deepcopy(args)
    result = _flatten(cand.call(*cand.convert(args)))
    if kernel.mutates:
        result += _flatten(args[0])
    return result


def same_result(ref: list[np.ndarray], got: list[np.ndarray], exact: bool) -> str | None:
    """How ``got`` differs from ``ref``, or None."""
    if len(ref) != len(got):
        return f"{len(got)} values instead of {len(ref)}"
    for pos, (r, g) in enumerate(zip(ref, got, strict=True)):
        if r.shape != g.shape:
            return f"value {pos}: shape {g.shape} instead of {r.shape}"
        if exact:
            if r.dtype != g.dtype or r.tobytes() != g.tobytes():
                return f"value {pos}: {g!r} is not bit-identical to {r!r}"
        elif not np.allclose(g.astype(np.float64), r.astype(np.float64),
                             rtol=RTOL, atol=ATOL, equal_nan=True):
            return f"value {pos}: {g!r} is not close to {r!r} (rtol={RTOL:g})"
    return None


def check(kernel: Kernel, cands: list[Candidate], args: tuple, n: int) -> None:
    stock = next(c for c in cands if c.role == "stock")
    ref = outcome(stock, kernel, args)
    for cand in cands:
        if cand is stock or cand.skipped:
            continue
        why = same_result(ref, outcome(cand, kernel, args), cand.exact)
        if why is not None:
            raise ResultMismatch(f"{kernel.key}, n={n}: {cand.label} differs from "
                                 f"stock numba: {why}")


# ---------------------------------------------------------------------------
# Optional tools: imported only when the suite runs
# ---------------------------------------------------------------------------


@dataclass
class Tools:
    numexpr: object = None
    jax: object = None
    pytensor_bench: object = None
    """``benchmarks/bench_pytensor.py`` of the checkout, imported."""
    missing: dict[str, str] = field(default_factory=dict)


def _import(name: str, tools: Tools):
    try:
        return importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - any failure means: skip it
        tools.missing[name] = f"`import {name}` failed ({type(exc).__name__}: {exc})"
        return None


def load_tools(kernels: Sequence[Kernel]) -> Tools:
    tools = Tools()
    if any(k.func is not None for k in kernels):
        tools.numexpr = _import("numexpr", tools)
        tools.jax = _import("jax", tools)
        if tools.jax is not None:
            tools.jax.config.update("jax_enable_x64", True)  # float64, as the others
    if any(k.pytensor for k in kernels):
        tools.pytensor_bench = _load_pytensor_bench(tools)
    return tools


def _load_pytensor_bench(tools: Tools):
    """Import ``benchmarks/bench_pytensor.py`` (its graph builders, hand loops
    and compile helper) from the checkout this package lives in."""
    if importlib.util.find_spec("pytensor") is None:
        tools.missing["pytensor"] = "PyTensor is not installed (pip install '.[pytensor]')"
        return None
    bench_dir = Path(__file__).resolve().parents[2] / "benchmarks"
    if not (bench_dir / "bench_pytensor.py").is_file():
        tools.missing["pytensor"] = (f"{bench_dir}/bench_pytensor.py not found (the "
                                     "PyTensor graphs need a source checkout)")
        return None
    sys.path.insert(0, str(bench_dir))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
            module = importlib.import_module("bench_pytensor")
    except Exception as exc:  # noqa: BLE001
        tools.missing["pytensor"] = f"importing bench_pytensor failed ({exc!r})"
        return None
    finally:
        sys.path.remove(str(bench_dir))
    if module.pytensor is None:
        tools.missing["pytensor"] = "`import pytensor` failed"
        return None
    return module


def numba_candidates(kernel: Kernel, tools: Tools) -> list[Candidate]:
    cands = [Candidate("stock", LABELS["stock"], numba.njit(kernel.func), exact=True),
             Candidate("parallel", LABELS["parallel"],
                       numba.njit(parallel=True)(kernel.func))]
    cands.append(Candidate("numpy", LABELS["numpy"], kernel.numpy) if kernel.numpy
                 else Candidate("numpy", LABELS["numpy"], skipped="n/a"))
    if isinstance(kernel.numexpr, str):
        cands.append(Candidate("numexpr", LABELS["numexpr"], skipped=f"n/a: {kernel.numexpr}"))
    elif tools.numexpr is None:
        cands.append(Candidate("numexpr", LABELS["numexpr"], skipped=tools.missing["numexpr"]))
    else:
        cands.append(Candidate("numexpr", LABELS["numexpr"], kernel.numexpr(tools.numexpr)))
    if isinstance(kernel.jax, str):
        cands.append(Candidate("jax", LABELS["jax"], skipped=f"n/a: {kernel.jax}"))
    elif tools.jax is None:
        cands.append(Candidate("jax", LABELS["jax"], skipped=tools.missing["jax"]))
    else:
        jax = tools.jax
        jitted = jax.jit(kernel.jax(jax.numpy))
        cands.append(Candidate(
            "jax", LABELS["jax"], lambda *a: jax.block_until_ready(jitted(*a)),
            convert=lambda args: tuple(jax.device_put(a) if isinstance(a, np.ndarray)
                                       else a for a in args)))
    cands.append(Candidate("hand", LABELS["hand"], numba.njit(kernel.hand),
                           exact=kernel.hand_exact))
    for role, label, func, exact in kernel.extra:
        cands.append(Candidate(role, label, numba.njit(func), exact=exact))
    cands.append(Candidate("loopopt", LABELS["loopopt"], jit(kernel.func), exact=True))
    return cands


def pytensor_candidates(kernel: Kernel, tools: Tools) -> list[Candidate]:
    bp = tools.pytensor_bench
    graph = bp.GRAPHS[kernel.pytensor]
    args = graph.make_args(10)
    cands = []
    for role, enabled in (("stock", False), ("loopopt", True)):
        fn, seconds = bp.compile_graph(graph, enabled, args)
        cands.append(Candidate(role, ("PyTensor NUMBA mode, loopopt enabled" if enabled
                                      else "PyTensor NUMBA mode (stock)"),
                               fn, exact=True, first_call_s=seconds))
    cands.insert(1, Candidate("hand", LABELS["hand"], graph.hand))
    return cands


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------


def calibrate(timer: timeit.Timer, min_sample: float) -> int:
    """Calls per sample so that a sample lasts ``min_sample`` seconds, found as
    :meth:`timeit.Timer.autorange` does (1, 2, 5, 10, 20, ...)."""
    scale = 1
    while True:
        for step in (1, 2, 5):
            number = scale * step
            if timer.timeit(number) >= min_sample:
                return number
        scale *= 10


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def interleaved(calls: dict[str, Callable[[], object]], repeats: int,
                min_sample: float, clock: Callable[[], float] = time.perf_counter,
                unsettled: Callable[[dict[str, list[float]]], bool] | None = None,
                ) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Seconds per call of each callable, ``repeats`` samples each, taken
    round-robin (the order reversed every other round); up to ``2 * repeats``
    while ``unsettled(samples)`` says the samples disagree."""
    timers, number = {}, {}
    for name, call in calls.items():
        call()  # warm-up: caches, page faults, JAX's compile for this shape
        timers[name] = timeit.Timer(call, timer=clock)
        number[name] = calibrate(timers[name], min_sample)
    samples: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    r = 0
    while r < repeats or (r < 2 * repeats and unsettled is not None
                          and unsettled(samples)):
        for name in names if r % 2 == 0 else reversed(names):
            samples[name].append(timers[name].timeit(number[name]) / number[name])
        r += 1
    return samples, number


@dataclass
class Measurement:
    n: int
    samples: dict[str, list[float]]
    number: dict[str, int]

    @property
    def best(self) -> dict[str, float]:
        return {role: min(values) for role, values in self.samples.items()}

    @property
    def noise(self) -> float:
        """How far apart the two timings of stock numba are (0.03: 3%)."""
        a, b = self.best["stock"], self.best[CONTROL]
        return max(a, b) / min(a, b) - 1.0


@dataclass
class KernelResult:
    kernel: Kernel
    candidates: list[Candidate]
    measurements: list[Measurement] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    skipped: str = ""


def loopopt_remarks(disp) -> list[str]:
    lines = []
    for sig_remarks in remarks(disp).values():
        for r in sig_remarks:
            if r.pass_name == "inline" and r.kind is RemarkKind.PASSED:
                continue  # many and alike; `numba_loopopt explain` shows them
            lines.append(f"[{r.pass_name}] "
                         f"{'missed ' if r.kind is RemarkKind.MISSED else ''}{r.key}: "
                         f"{r.message}")
    return sorted(set(lines))


def _unsettled(samples: dict[str, list[float]]) -> bool:
    a, b = min(samples["stock"]), min(samples[CONTROL])
    return max(a, b) / min(a, b) - 1.0 > SETTLED


def _bound(call: Callable, args: tuple) -> Callable[[], object]:
    return lambda: call(*args)


def run_kernel(kernel: Kernel, sizes: Sequence[int], tools: Tools, repeats: int,
               min_sample: float, log: Callable[[str], None],
               clock: Callable[[], float] = time.perf_counter) -> KernelResult:
    rng = np.random.default_rng(0)
    if kernel.pytensor:
        if tools.pytensor_bench is None:
            return KernelResult(kernel, [], skipped=tools.missing["pytensor"])
        cands = pytensor_candidates(kernel, tools)
        graph = tools.pytensor_bench.GRAPHS[kernel.pytensor]
        make_args = lambda n, rng: graph.make_args(n)  # noqa: E731
        check_sizes = (2, 3, 10, 101)  # the AR(1) graph needs two points
        sizes = [n for n in sizes if n <= PYTENSOR_MAX_SIZE] or [min(sizes)]
    else:
        cands = numba_candidates(kernel, tools)
        make_args = kernel.make_args
        check_sizes = CHECK_SIZES
    result = KernelResult(kernel, cands)
    live = [c for c in cands if not c.skipped]
    with warnings.catch_warnings():
        # parallel=True finds nothing to parallelise in most of these kernels.
        warnings.simplefilter("ignore", NumbaPerformanceWarning)
        for cand in live:  # the first call compiles
            started = time.perf_counter()
            cand.call(*cand.convert(make_args(check_sizes[0], rng)))
            if math.isnan(cand.first_call_s):
                cand.first_call_s = time.perf_counter() - started
        for n in check_sizes:
            check(kernel, cands, make_args(n, rng), n)
        for n in sizes:
            args = make_args(n, rng)
            check(kernel, cands, args, n)
            calls = {c.role: _bound(c.call, c.convert(args)) for c in live}
            # Stock numba timed twice: how far apart two timings of the same
            # code land is this run's noise floor.
            calls[CONTROL] = calls["stock"]
            samples, number = interleaved(calls, repeats, min_sample, clock, _unsettled)
            result.measurements.append(Measurement(n, samples, number))
            log(f"   {kernel.key} n={n:,} timed")
    if kernel.pytensor:
        result.remarks = [f"{count} x {text}" for count, text in
                          tools.pytensor_bench.remark_summary(cands[-1].call)
                          if "[inline] Inlined" not in text]
    else:
        result.remarks = loopopt_remarks(cands[-1].call)
    return result


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:7.2f} {unit:2s}"
    return f"{seconds * 1e9:7.1f} ns"


def kernel_table(res: KernelResult) -> list[str]:
    k = res.kernel
    lines = [f"== {k.key}: {k.title}"]
    if res.skipped:
        return lines + [f"   skipped: {res.skipped}"]
    note = PYTENSOR_NOTE if k.pytensor else k.note
    if note:
        lines.append(f"   note: {note}")
    for cand in res.candidates:
        if cand.skipped:
            lines.append(f"   {cand.label}: skipped ({cand.skipped})")
    live = [c for c in res.candidates if not c.skipped]
    for m in res.measurements:
        best = m.best
        lines.append(f"   n = {m.n:,}: min of {len(m.samples['stock'])} interleaved "
                     "rounds (spread: median / min - 1)")
        lines.append(f"     {'candidate':38s} {'time':>10s} {'/ hand':>8s} "
                     f"{'/ loopopt':>9s} {'spread':>7s}  result")
        for c in live:
            t = best[c.role]
            check_text = ("reference" if c.role == "stock" else
                          "bit-identical" if c.exact else "allclose")
            spread = float(np.median(m.samples[c.role])) / t - 1.0
            lines.append(f"     {c.label:38s} {fmt_time(t):>10s} "
                         f"{t / best['hand']:8.2f} {t / best['loopopt']:9.2f} "
                         f"{spread:7.1%}  {check_text}")
        lines.append(f"     speed-up of loopopt over stock: "
                     f"{best['stock'] / best['loopopt']:.2f}x; noise floor: stock timed "
                     f"twice differs by {m.noise:.1%}")
    lines.append("   first call (compiles): " + ", ".join(
        f"{SHORT.get(c.role, c.role)} {c.first_call_s:.2f} s" for c in live
        if c.role in ("stock", "parallel", "hand", "loopopt")))
    lines.append("   loopopt remarks:")
    lines += [f"     {r}" for r in res.remarks or ["(none)"]]
    return lines


def speedup_rows(results: Sequence[KernelResult]) -> list[dict]:
    """One row per kernel and size: time of each candidate / time of loopopt."""
    rows = []
    for res in results:
        for m in res.measurements:
            best = m.best
            rows.append({"kernel": res.kernel.key, "n": m.n, "noise": m.noise,
                         "speedup": {role: best[role] / best["loopopt"]
                                     for role in best if role not in ("loopopt", CONTROL)}})
    return rows


def speedup_table(rows: Sequence[dict]) -> list[str]:
    roles = [r for r in ROLES if r != "loopopt"]
    head = (f"   {'kernel':14s} {'n':>10s} " + " ".join(f"{SHORT[r]:>9s}" for r in roles)
            + f" {'noise':>7s}")
    lines = ["== speed-up of numba_loopopt.jit: time of each candidate / time of loopopt "
             "(> 1: loopopt is faster; -: not run; noise: stock timed twice differs by)",
             head]
    for row in rows:
        cells = [f"{row['speedup'][r]:9.2f}" if r in row["speedup"] else f"{'-':>9s}"
                 for r in roles]
        lines.append(f"   {row['kernel']:14s} {row['n']:>10,} " + " ".join(cells)
                     + f" {row['noise']:7.1%}")
    return lines


#: (colour, marker, line width, line style) of each candidate's line.
#: parallel=True on one thread often equals stock: it is dashed, and stock is
#: drawn above every other line, so neither hides the other.
_STYLES = {"stock": ("C3", "o", 2.2, "-"), "parallel": ("C1", "s", 1.2, "--"),
           "numpy": ("C0", "^", 1.2, "-"), "numexpr": ("C2", "v", 1.2, "-"),
           "jax": ("C4", "D", 1.2, "-"), "hand": ("k", "x", 1.2, ":")}


def line_style(role: str) -> dict:
    """matplotlib keywords for the line of candidate ``role``."""
    color, marker, width, style = _STYLES.get(role, ("C5", ".", 1.0, "-"))
    return {"color": color, "marker": marker, "linewidth": width, "linestyle": style,
            "zorder": 4 if role == "stock" else 2,
            "markersize": 7 if role == "stock" else 5}


def write_plot(results: Sequence[KernelResult], path: Path, title: str) -> str | None:
    """loopopt's speed-up over each candidate against size, one panel per kernel
    measured at two sizes or more.  Returns why no plot was written, or None."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    except ImportError as exc:
        return f"matplotlib is not installed ({exc})"
    sized = [r for r in results if len(r.measurements) >= 2]
    if not sized:
        return "no kernel was measured at two sizes or more"
    cols = min(3, len(sized))
    rows = math.ceil(len(sized) / cols)
    fig = Figure(figsize=(5.0 * cols, 3.6 * rows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)  # the Agg backend, without touching pyplot's state
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, res in zip(axes, sized, strict=False):
        ns = [m.n for m in res.measurements]
        labels = {c.role: c.label for c in res.candidates}
        for role in [r for r in ROLES if r != "loopopt"] + [
                c.role for c in res.candidates if c.role not in ROLES]:
            if role not in res.measurements[0].samples:
                continue
            ax.plot(ns, [m.best[role] / m.best["loopopt"] for m in res.measurements],
                    label=labels[role], **line_style(role))
        ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(textwrap.fill(res.kernel.title, 62), fontsize=9)
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("size n")
        ax.set_ylabel("time / time of loopopt (> 1: loopopt faster)", fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[len(sized):]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return None


def write_pyperf(results: Sequence[KernelResult], path: Path) -> str | None:
    try:
        import pyperf
    except ImportError:
        return "pyperf is not installed (pip install '.[bench]')"
    benches = []
    for res in results:
        for m in res.measurements:
            for role, values in m.samples.items():
                meta = {"name": f"{res.kernel.key}[n={m.n}] {role}",
                        "loops": m.number[role], "unit": "second"}
                run = pyperf.Run(values, metadata=meta, collect_metadata=False)
                benches.append(pyperf.Benchmark([run]))
    if not benches:
        return "nothing was measured"
    pyperf.BenchmarkSuite(benches).dump(str(path), replace=True)
    return None


def to_json(results: Sequence[KernelResult], config: dict, rows: list[dict]) -> dict:
    return {
        "config": config,
        "kernels": {res.kernel.key: {
            "title": res.kernel.title,
            "skipped": res.skipped or None,
            "candidates": {c.role: {"label": c.label, "skipped": c.skipped or None,
                                    "check": "reference" if c.role == "stock" else
                                    "bit-identical" if c.exact else "allclose",
                                    "first_call_s": (None if math.isnan(c.first_call_s)
                                                     else c.first_call_s)}
                           for c in res.candidates},
            "sizes": [{"n": m.n, "best_s": m.best, "samples_s": m.samples,
                       "calls_per_sample": m.number} for m in res.measurements],
            "remarks": res.remarks,
        } for res in results},
        "speedup_over": rows,
    }


def results_from_json(data: dict) -> list[KernelResult]:
    """The measurements of a ``results.json``, enough to plot them again."""
    results = []
    for key, entry in data["kernels"].items():
        kernel = KERNELS.get(key) or Kernel(key, entry["title"], None, None, scan_args)
        cands = [Candidate(role, c["label"], skipped=c["skipped"] or "")
                 for role, c in entry["candidates"].items()]
        res = KernelResult(kernel, cands, skipped=entry["skipped"] or "")
        res.measurements = [Measurement(m["n"], m["samples_s"], m["calls_per_sample"])
                            for m in entry["sizes"]]
        results.append(res)
    return results


def plot_title(versions: str) -> str:
    return f"numba_loopopt.jit speed-up (time of candidate / time of loopopt); {versions}"


# ---------------------------------------------------------------------------
# Command line (``python -m numba_loopopt bench``)
# ---------------------------------------------------------------------------


def _size(text: str) -> int:
    value = float(text)  # accepts 1e6
    if value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return int(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="sizes 1e3-1e6, 9 rounds, 3 ms samples (under two minutes)")
    parser.add_argument("--out", default="bench_results", metavar="DIR",
                        help="directory for results.json, speedup.png and "
                             "results.pyperf.json (default: bench_results)")
    parser.add_argument("--kernels", nargs="+", default=["all"], metavar="KERNEL",
                        help="kernels to run (default: all): "
                             + ", ".join(list(KERNELS) + list(ALIASES)))
    parser.add_argument("--sizes", nargs="+", type=_size, metavar="N",
                        help="sizes (default 1e3 1e4 1e5 1e6 1e7; up to 1e6 with "
                             "--quick; PyTensor graphs up to 1e6)")
    parser.add_argument("--repeats", type=int,
                        help="interleaved rounds per size (default 11; 9 with --quick), "
                             "up to twice as many while the two timings of stock numba "
                             f"differ by more than {SETTLED * 100:g}%%")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall: time.perf_counter (default); cpu: "
                             "time.process_time, the CPU time of this process, which "
                             "time slices lost to other processes do not inflate (for "
                             "a shared machine; counts every thread, so JAX's too)")
    parser.add_argument("--plot-from", metavar="RESULTS.json",
                        help="measure nothing: draw speedup.png in --out again from "
                             "the results.json of an earlier run")
    parser.add_argument("--min-sample", type=float, metavar="SECONDS",
                        help="least duration of one sample (default 0.01; 0.003 "
                             "with --quick)")


def resolve_kernels(names: Sequence[str]) -> list[Kernel]:
    keys: list[str] = []
    for name in (part for item in names for part in item.split(",") if part):
        expanded = ALIASES.get(name, [name])
        for key in expanded:
            if key not in KERNELS:
                raise SystemExit(f"numba_loopopt bench: unknown kernel {key!r}; choose "
                                 f"from {', '.join(list(KERNELS) + list(ALIASES))}")
            if key not in keys:
                keys.append(key)
    return [KERNELS[k] for k in keys]


def main(args: argparse.Namespace) -> int:
    if args.plot_from:
        data = json.loads(Path(args.plot_from).read_text())
        path = Path(args.out) / "speedup.png"
        why = write_plot(results_from_json(data), path,
                         plot_title(data["config"]["versions"]))
        print(f"numba_loopopt bench: no plot: {why}" if why else f"wrote {path}")
        return 1 if why else 0
    kernels = resolve_kernels(args.kernels)
    sizes = sorted(set(args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)))
    repeats = args.repeats or (9 if args.quick else 11)
    min_sample = args.min_sample or (0.003 if args.quick else 0.01)
    if repeats < 1 or min_sample <= 0:
        raise SystemExit("numba_loopopt bench: --repeats and --min-sample must be positive")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    tools = load_tools(kernels)
    versions = (f"python {platform.python_version()}, numba {numba.__version__}, "
                f"numpy {np.__version__}, numba_loopopt {__version__}")
    for name, module in (("numexpr", tools.numexpr), ("jax", tools.jax)):
        if module is not None:
            versions += f", {name} {module.__version__}"
    if tools.pytensor_bench is not None:
        versions += f", pytensor {tools.pytensor_bench.pytensor.__version__}"
    print(f"numba_loopopt benchmark suite ({'quick' if args.quick else 'full'})")
    print(f"{versions}; {platform.machine()}, {os.cpu_count()} CPUs"
          + (f", load average {load_before[0]:.2f}" if load_before else ""))
    print(f"harness: timeit.Timer ({args.clock} clock), candidates interleaved in one "
          f"process, min of {repeats} rounds (up to {2 * repeats} until stock numba timed "
          f"twice agrees within {SETTLED:.0%}) of >= {min_sample * 1e3:g} ms samples; one "
          "thread; every result checked against stock numba first")
    for name, why in tools.missing.items():
        print(f"note: {name} skipped: {why}")

    previous_threads = numba.get_num_threads()
    previous_ne = tools.numexpr.set_num_threads(1) if tools.numexpr is not None else None
    pytensor_config = (tools.pytensor_bench.pytensor.config
                       if tools.pytensor_bench is not None else None)
    if pytensor_config is not None:
        # Compile afresh (so remarks are recorded) and leave the user's cache alone.
        previous_cache, pytensor_config.numba__cache = pytensor_config.numba__cache, False
    results = []
    try:
        numba.set_num_threads(1)
        for kernel in kernels:
            log(f"bench: {kernel.key} ...")
            res = run_kernel(kernel, sizes, tools, repeats, min_sample, log,
                             CLOCKS[args.clock])
            results.append(res)
            print()
            print("\n".join(kernel_table(res)), flush=True)
    except ResultMismatch as exc:
        print(f"numba_loopopt bench: wrong result, nothing timed for it: {exc}",
              file=sys.stderr)
        return 1
    finally:
        numba.set_num_threads(previous_threads)
        if previous_ne is not None:
            tools.numexpr.set_num_threads(previous_ne)
        if pytensor_config is not None:
            tools.pytensor_bench.lpt.disable()
            pytensor_config.numba__cache = previous_cache

    rows = speedup_rows(results)
    print()
    print("\n".join(speedup_table(rows)))
    elapsed = time.perf_counter() - started
    config = {"mode": "quick" if args.quick else "full", "sizes": sizes, "clock": args.clock,
              "repeats": repeats, "min_sample_s": min_sample, "versions": versions,
              "machine": platform.machine(), "cpus": os.cpu_count(),
              "load_average_before": load_before,
              "load_average_after": os.getloadavg() if hasattr(os, "getloadavg") else None,
              "missing": tools.missing, "wall_s": elapsed}
    json_path = out / "results.json"
    json_path.write_text(json.dumps(to_json(results, config, rows), indent=1))
    print(f"\nwrote {json_path}")
    why = write_plot(results, out / "speedup.png", plot_title(versions))
    print(f"note: no plot: {why}" if why else f"wrote {out / 'speedup.png'}")
    why = write_pyperf(results, out / "results.pyperf.json")
    print(f"note: no pyperf file: {why}" if why else
          f"wrote {out / 'results.pyperf.json'} (python -m pyperf compare_to A B)")
    print(f"total {elapsed:.1f} s")
    return 0
