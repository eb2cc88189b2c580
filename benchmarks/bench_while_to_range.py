"""Benchmark the while-to-range pass: run time of scan-style loops, and compile time.

Run::

    python benchmarks/bench_while_to_range.py            # 1e7 steps, ~25 s
    python benchmarks/bench_while_to_range.py --quick    # 1e6 steps, fewer repeats
    python benchmarks/bench_while_to_range.py --steps 2000000 --json out.json

Groups (see ``benchmarks/README.md`` for the targets and why they were chosen):

a. ``while i < n and not cond.item(): buf[i + 1] = buf[i] + 1.0`` -- stock
   ``numba.njit``, ``numba_loopopt.jit`` and hand-written counted loops.
b. PyTensor's scan shape, with the state stored at ``buf[(i + 1) % L]``: the
   same, plus the hand ``for`` loop *with* the modulo (the fix proposed in
   PyTensor issue #2024), loopopt without modulo versioning, and a circular
   buffer (``L = 2``) on which the versioning check must fall back to the loop
   with the modulo at no cost.
c. Compile time through ``LoopOptPipeline`` for kernels the pass leaves alone.

The hand-written ``while`` and ``for`` loops in groups a and b are the
measurement behind the pass's emitted form: it keeps numba's plain ``while``
loop, which is never slower than ``range`` here and much faster when a modulo
stays in the body (numba issue 10670).

Every candidate's results are checked against stock numba's before any timing;
a mismatch raises.  The PASS/FAIL column is informational: the script exits 0
whatever the timings.

Timing tool: :class:`timeit.Timer` from the standard library, not pyperf.
What this benchmark needs is the *ratio* of candidates on a noisy 2-core
machine (+-10% between runs).  pyperf's ``Runner`` times each benchmark in its
own freshly spawned worker processes, one benchmark after another; every worker
has to JIT-compile its kernel again, and slow drift (CPU frequency, other
tenants) lands on whichever candidate happens to run at that moment, so it does
not cancel in a ratio.  Here all candidates are compiled and warmed once in one
process, then timed round-robin (``Timer.timeit`` once per candidate per round,
the order reversed every other round) and each keeps its minimum over the
rounds: drift hits every candidate alike, and the minimum is the least-disturbed
run.  ``timeit`` provides the clock (``perf_counter``) and switches the garbage
collector off while timing.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field

import llvmlite
import numba
import numpy as np
from numba import types

import numba_loopopt as lo

# ---------------------------------------------------------------------------
# Kernels.  Plain Python functions: each candidate compiles its own dispatcher.
# ---------------------------------------------------------------------------


def while_cond(buf, n):
    """Group a: the loop as PyTensor's scan emits it (the flag never changes)."""
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[i + 1] = buf[i] + 1.0
        i += 1
    return i


def for_range(buf, n):
    """Group a: the hand-written counted loop."""
    for i in range(n):
        buf[i + 1] = buf[i] + 1.0
    return n


def while_plain(buf, n):
    """Group a: the hand-written loop without the flag (numba issue 10670)."""
    i = 0
    while i < n:
        buf[i + 1] = buf[i] + 1.0
        i += 1
    return i


def scan_while_modulo(buf, n_steps):
    """Group b: PyTensor's scan with its states stored modulo the buffer length."""
    cond = np.array(False)
    L = len(buf)
    i = 0
    while i < n_steps and not cond.item():
        buf[(i + 1) % L] = buf[i % L] + 1.0
        i += 1
    return i


def scan_for_modulo(buf, n_steps):
    """Group b: the fix PyTensor's issue proposes: a ``for`` loop, modulo kept."""
    L = len(buf)
    for i in range(n_steps):
        buf[(i + 1) % L] = buf[i % L] + 1.0
    return n_steps


def scan_while_plain_modulo(buf, n_steps):
    """Group b: a plain ``while`` loop with the modulo kept."""
    L = len(buf)
    i = 0
    while i < n_steps:
        buf[(i + 1) % L] = buf[i % L] + 1.0
        i += 1
    return i


# Group c: nothing to rewrite.


def c_for_reduction(a):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * a[i]
    return s


def c_array_expression(a, b, c):
    return np.sum(a * b + c)


def c_collatz(n):
    # A while loop with no flag, and a counter that is not a simple counter.
    steps = 0
    while n != 1:
        if n % 2 == 0:
            n = n // 2
        else:
            n = 3 * n + 1
        steps += 1
    return steps


def c_no_loop(x, y):
    return np.sqrt(x * x + y * y) + np.arctan2(y, x)


F8_1D = types.float64[::1]

#: (label, python function, signature, sample arguments) for group c.
COMPILE_KERNELS = [
    ("for-range reduction", c_for_reduction, (F8_1D,),
     lambda: (np.linspace(0.0, 1.0, 101),)),
    ("np.sum(a*b+c)", c_array_expression, (F8_1D, F8_1D, F8_1D),
     lambda: tuple(np.linspace(0.0, 1.0, 101) + k for k in range(3))),
    ("while, no flag (collatz)", c_collatz, (types.int64,), lambda: (27,)),
    ("no loop", c_no_loop, (types.float64, types.float64), lambda: (3.0, 4.0)),
]

#: An extra, informational group-c row: a kernel the pass does rewrite.
COMPILE_KERNEL_REWRITTEN = ("while+cond (rewritten; info)", while_cond,
                            (F8_1D, types.int64), lambda: (np.zeros(11), 10))

NO_VERSIONING = {"while_to_range": {"version_modulo": False}}


# ---------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------


@dataclass
class Candidate:
    label: str
    dispatcher: Callable
    role: str = ""
    """Key used by the ratios ('stock', 'opt', 'hand', ...)."""


@dataclass
class Ratio:
    label: str
    num: str
    den: str
    op: str = ""
    """'>=', '<=' or '' (informational)."""
    target: float | None = None
    value: float = math.nan

    @property
    def passed(self) -> bool | None:
        if not self.op:
            return None
        return self.value >= self.target if self.op == ">=" else self.value <= self.target

    def target_text(self) -> str:
        return f"{self.op} {self.target:g}" if self.op else "-"

    def result_text(self) -> str:
        return {None: "info", True: "PASS", False: "FAIL"}[self.passed]


@dataclass
class Group:
    key: str
    title: str
    candidates: list[Candidate]
    ratios: list[Ratio]
    steps: int
    make_buf: Callable[[int], np.ndarray]
    best: dict[str, float] = field(default_factory=dict)
    number: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def interleaved_min(calls: dict[str, Callable[[], object]], repeats: int,
                    min_sample: float) -> tuple[dict[str, float], dict[str, int]]:
    """Seconds per call of each callable: min over ``repeats`` round-robin rounds.

    Each sample runs a callable ``number`` times, with ``number`` chosen once so
    that a sample lasts at least ``min_sample`` seconds.
    """
    timers, number = {}, {}
    for name, call in calls.items():
        call()  # warm-up: caches, page faults
        timer = timeit.Timer(call)
        one = timer.timeit(1)
        timers[name] = timer
        number[name] = max(1, math.ceil(min_sample / one)) if one > 0 else 1000
    best = dict.fromkeys(calls, math.inf)
    names = list(calls)
    for r in range(repeats):
        for name in names if r % 2 == 0 else reversed(names):
            t = timers[name].timeit(number[name]) / number[name]
            best[name] = min(best[name], t)
    return best, number


def fresh_compile_time(make: Callable, py_func: Callable, sig: tuple) -> Callable[[], float]:
    """A callable timing ``make(py_func).compile(sig)`` on a fresh dispatcher
    (built untimed, in timeit's setup) each time it is called."""
    holder = []

    def setup():
        holder[:] = [make(py_func)]

    timer = timeit.Timer(lambda: holder[0].compile(sig), setup=setup)
    return lambda: timer.timeit(1)


# ---------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------


def verify(group: Group, stock: Candidate, sizes: list[int]) -> None:
    """Every candidate returns what stock numba returns and leaves the same buffer."""
    for n in sizes:
        ref_buf = group.make_buf(n)
        ref_ret = stock.dispatcher(ref_buf, n)
        for cand in group.candidates:
            if cand is stock:
                continue
            buf = group.make_buf(n)
            ret = cand.dispatcher(buf, n)
            if ret != ref_ret or not np.array_equal(buf, ref_buf):
                raise AssertionError(
                    f"group {group.key}: {cand.label} differs from stock numba at "
                    f"n={n}: returned {ret!r} (stock {ref_ret!r}); buffers equal: "
                    f"{np.array_equal(buf, ref_buf)}")


def remark_lines(dispatcher) -> list[str]:
    found = []
    for sig in dispatcher.signatures:
        found += [str(r) for r in lo.remarks(dispatcher, sig)]
    return found


def remark_keys(dispatcher) -> list[str]:
    keys = []
    for sig in dispatcher.signatures:
        for r in lo.remarks(dispatcher, sig):
            keys.append(r.key if r.kind is not lo.RemarkKind.MISSED else f"missed {r.key}")
    return keys


# ---------------------------------------------------------------------------
# Groups
# ---------------------------------------------------------------------------


def group_a(steps: int) -> Group:
    cands = [
        Candidate("stock numba.njit", numba.njit(while_cond), "stock"),
        Candidate("numba_loopopt.jit", lo.jit(while_cond), "opt"),
        Candidate("hand: for i in range(n)", numba.njit(for_range), "hand"),
        Candidate("hand: while i < n (no flag)", numba.njit(while_plain), "hand_while"),
    ]
    ratios = [
        Ratio("stock / loopopt", "stock", "opt", ">=", 3.5),
        Ratio("loopopt / hand for", "opt", "hand", "<=", 1.05),
        Ratio("hand while / hand for", "hand_while", "hand"),
    ]
    return Group("a", "while i < n and not cond.item(): buf[i + 1] = buf[i] + 1.0",
                 cands, ratios, steps, lambda n: np.zeros(n + 1))


def group_b(steps: int) -> Group:
    cands = [
        Candidate("stock numba.njit", numba.njit(scan_while_modulo), "stock"),
        Candidate("numba_loopopt.jit", lo.jit(scan_while_modulo), "opt"),
        Candidate("loopopt, version_modulo=False",
                  lo.jit(scan_while_modulo, options=NO_VERSIONING), "opt_nover"),
        Candidate("hand: for range, with % L", numba.njit(scan_for_modulo), "for_mod"),
        Candidate("hand: while i < n, with % L", numba.njit(scan_while_plain_modulo),
                  "while_mod"),
        Candidate("hand: for range, no modulo", numba.njit(for_range), "hand"),
    ]
    ratios = [
        Ratio("for with % / loopopt", "for_mod", "opt", ">=", 2.0),
        Ratio("stock / loopopt", "stock", "opt"),
        Ratio("loopopt / hand no modulo", "opt", "hand"),
        Ratio("no-versioning / loopopt", "opt_nover", "opt"),
        Ratio("no-versioning / for with %", "opt_nover", "for_mod"),
        Ratio("hand while % / for with %", "while_mod", "for_mod"),
    ]
    return Group("b", "PyTensor scan: buf[(i + 1) % L] = buf[i % L] + 1.0, L = n + 1",
                 cands, ratios, steps, lambda n: np.zeros(n + 1))


def group_b_circular(steps: int) -> Group:
    cands = [
        Candidate("stock numba.njit", numba.njit(scan_while_modulo), "stock"),
        Candidate("numba_loopopt.jit", lo.jit(scan_while_modulo), "opt"),
        Candidate("hand: for range, with % L", numba.njit(scan_for_modulo), "for_mod"),
    ]
    ratios = [
        Ratio("loopopt / for with %", "opt", "for_mod", "<=", 1.05),
        Ratio("stock / loopopt", "stock", "opt"),
    ]
    return Group("b-circular", "circular buffer: same kernel, L = len(buf) = 2 "
                 "(the versioning check fails at run time)",
                 cands, ratios, steps, lambda n: np.zeros(2))


def run_group(group: Group, repeats: int, min_sample: float) -> None:
    stock = next(c for c in group.candidates if c.role == "stock")
    small = [0, 1, 2, 7, 100]
    verify(group, stock, small + [group.steps])  # also compiles every candidate
    buf = group.make_buf(group.steps)
    calls = {c.role: (lambda d=c.dispatcher: d(buf, group.steps)) for c in group.candidates}
    group.best, group.number = interleaved_min(calls, repeats, min_sample)
    for r in group.ratios:
        r.value = group.best[r.num] / group.best[r.den]


def print_group(group: Group, repeats: int) -> None:
    print(f"\n== {group.key}. {group.title}")
    print(f"   {group.steps:,} steps, min of {repeats} interleaved rounds")
    print(f"   {'candidate':34s} {'time (ms)':>10s} {'ns/step':>9s}")
    for c in group.candidates:
        t = group.best[c.role]
        print(f"   {c.label:34s} {t * 1e3:10.2f} {t / group.steps * 1e9:9.3f}")
    print(f"   {'ratio (of times)':34s} {'value':>10s} {'target':>9s}  result")
    for r in group.ratios:
        print(f"   {r.label:34s} {r.value:10.2f} {r.target_text():>9s}  {r.result_text()}")
    opt = next((c for c in group.candidates if c.role == "opt"), None)
    if opt is not None:
        print("   remarks (numba_loopopt.jit):")
        for line in remark_lines(opt.dispatcher) or ["(none)"]:
            print(f"     {line}")
    for note in group.notes:
        print(f"   note: {note}")


@dataclass
class CompileRow:
    label: str
    stock: float
    opt: float
    remarks: list[str]
    target: float | None

    @property
    def ratio(self) -> float:
        return self.opt / self.stock

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.ratio <= self.target


def run_compile(repeats: int) -> list[CompileRow]:
    rows = []
    kernels = [(*k, 1.2) for k in COMPILE_KERNELS] + [(*COMPILE_KERNEL_REWRITTEN, None)]
    for label, py_func, sig, sample, target in kernels:
        stock, opt = numba.njit(py_func), lo.jit(py_func)
        stock.compile(sig)  # warm-up: numba's own caches (typing templates, overloads)
        opt.compile(sig)
        ref, got = stock(*sample()), opt(*sample())
        if not np.array_equal(ref, got):
            raise AssertionError(f"group c: {label}: loopopt returned {got!r}, "
                                 f"stock numba {ref!r}")
        calls = {"stock": fresh_compile_time(numba.njit, py_func, sig),
                 "opt": fresh_compile_time(lo.jit, py_func, sig)}
        best = dict.fromkeys(calls, math.inf)
        for r in range(repeats):
            for name in calls if r % 2 == 0 else reversed(calls):
                best[name] = min(best[name], calls[name]())
        rows.append(CompileRow(label, best["stock"], best["opt"], remark_keys(opt), target))
    return rows


def print_compile(rows: list[CompileRow], repeats: int) -> None:
    print("\n== c. compile time through LoopOptPipeline "
          f"(fresh dispatcher each time, min of {repeats})")
    print(f"   {'kernel':30s} {'stock (ms)':>10s} {'loopopt (ms)':>12s} "
          f"{'opt/stock':>9s} {'target':>7s}  result  remarks")
    for row in rows:
        target = f"<= {row.target:g}" if row.target is not None else "-"
        result = {None: "info", True: "PASS", False: "FAIL"}[row.passed]
        print(f"   {row.label:30s} {row.stock * 1e3:10.1f} {row.opt * 1e3:12.1f} "
              f"{row.ratio:9.2f} {target:>7s}  {result:6s}  "
              f"{', '.join(row.remarks) or '(none)'}")


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="1e6 steps and fewer repeats (a smoke run)")
    p.add_argument("--steps", type=int, default=None,
                   help="loop steps for groups a and b (default 1e7, 1e6 with --quick)")
    p.add_argument("--repeats", type=int, default=None,
                   help="interleaved rounds for groups a and b (default 11, 5 with --quick)")
    p.add_argument("--compile-repeats", type=int, default=None,
                   help="compilations per kernel and pipeline (default 7, 3 with --quick)")
    p.add_argument("--groups", default="abc",
                   help="which groups to run, e.g. 'ab' (default 'abc')")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = p.parse_args(argv)
    if args.steps is None:
        args.steps = 10**6 if args.quick else 10**7
    if args.repeats is None:
        args.repeats = 5 if args.quick else 11
    if args.compile_repeats is None:
        args.compile_repeats = 3 if args.quick else 7
    if args.steps < 1 or args.repeats < 1 or args.compile_repeats < 1:
        p.error("--steps, --repeats and --compile-repeats must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    print("numba_loopopt while-to-range benchmark")
    print(f"python {platform.python_version()}, numba {numba.__version__}, "
          f"llvmlite {llvmlite.__version__}, numpy {np.__version__}, "
          f"numba_loopopt {lo.__version__}; {platform.machine()}, "
          f"{numba.config.NUMBA_NUM_THREADS} threads")
    print("timing: timeit.Timer, candidates interleaved in one process, min of rounds; "
          "results checked against stock numba first")

    groups = []
    if "a" in args.groups:
        groups.append(group_a(args.steps))
    if "b" in args.groups:
        groups += [group_b(args.steps), group_b_circular(args.steps)]
    for group in groups:
        run_group(group, args.repeats, min_sample=0.005)
        print_group(group, args.repeats)
    rows = run_compile(args.compile_repeats) if "c" in args.groups else []
    if rows:
        print_compile(rows, args.compile_repeats)

    checks = [r.passed for g in groups for r in g.ratios] + [r.passed for r in rows]
    checks = [c for c in checks if c is not None]
    print(f"\n{sum(checks)}/{len(checks)} targets met "
          f"(informational); total {time.perf_counter() - started:.1f} s")

    if args.json:
        out = {
            "config": {"steps": args.steps, "repeats": args.repeats,
                       "compile_repeats": args.compile_repeats,
                       "python": platform.python_version(), "numba": numba.__version__,
                       "numpy": np.__version__, "numba_loopopt": lo.__version__},
            "groups": {g.key: {
                "title": g.title, "steps": g.steps,
                "candidates": {c.role: {"label": c.label, "seconds": g.best[c.role],
                                        "ns_per_step": g.best[c.role] / g.steps * 1e9,
                                        "calls_per_sample": g.number[c.role]}
                               for c in g.candidates},
                "ratios": [{"label": r.label, "num": r.num, "den": r.den,
                            "value": r.value, "op": r.op or None, "target": r.target,
                            "passed": r.passed} for r in g.ratios],
                "remarks": [line for c in g.candidates if c.role == "opt"
                            for line in remark_lines(c.dispatcher)],
                "notes": g.notes} for g in groups},
            "compile": [{"kernel": r.label, "stock_s": r.stock, "loopopt_s": r.opt,
                         "ratio": r.ratio, "target": r.target, "passed": r.passed,
                         "remarks": r.remarks} for r in rows],
        }
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
