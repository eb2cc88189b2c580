"""Benchmark the fuse-loops pass: run time of adjacent range loops, and allocations.

Run::

    python benchmarks/bench_fuse_loops.py            # 1e7 float64 elements, ~35 s
    python benchmarks/bench_fuse_loops.py --quick    # 1e6 elements, fewer repeats, ~6 s
    python benchmarks/bench_fuse_loops.py --size 2000000 --json out.json

Groups (see ``benchmarks/README.md`` for the targets and why they were chosen):

a. Fill a temporary, then sum it (``tmp[i] = a[i] * b[i] + c[i]``, then
   ``s += tmp[i]``) -- stock ``numba.njit``, ``numba.njit(parallel=True)`` run
   on one thread (``numba.set_num_threads(1)``: numba's parfors fuse array
   expressions, not explicit loops), ``numba_loopopt.jit``, ``numba_loopopt.jit``
   with the pass switched off (the control), and the hand-written single loop.
b. Two map loops over the same range into two fresh output arrays, both
   returned: fused, nothing to contract -- stock, loopopt, hand single loop.
c. A chain of three loops: fill ``t1``, fill ``t2`` from ``t1``, reduce ``t2``:
   fused pairwise, both temporaries contracted -- stock, loopopt, hand.
e. Kernel a written as two PyTensor-scan-style ``while i < n and not
   cond.item()`` loops: while-to-range, then fuse-loops -- stock, loopopt, loopopt
   without fusion, hand.
d. NRT allocations per call of kernel a (``memsys_enable_stats`` and the
   ``alloc`` counter of ``rtsys.get_allocation_stats()`` around one call):
   stock, loopopt and hand; loopopt must allocate exactly what hand does.

Every candidate's results are checked bit for bit against stock numba's before
any timing (sizes 0, 1, 2, 7, 100 and the benchmark size); a mismatch raises.
The PASS/FAIL column is informational: the script exits 0 whatever the timings.

Timing tool: :class:`timeit.Timer`, as in ``bench_while_to_range.py`` (whose
docstring says why not pyperf): all candidates are compiled and warmed in one
process, then timed round-robin (``Timer.timeit`` once per candidate per round,
the order reversed every other round) and each keeps its minimum over the
rounds, so drift hits every candidate alike and cancels in the ratios.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field

import llvmlite
import numba
import numpy as np

# The timing harness is shared with the while-to-range benchmark.
from bench_while_to_range import Candidate, Ratio, interleaved_min, remark_lines
from numba.core.errors import NumbaPerformanceWarning
from numba.core.runtime import _nrt_python, rtsys

import numba_loopopt as lo

# ---------------------------------------------------------------------------
# Kernels.  Plain Python functions: each candidate compiles its own dispatcher.
# ---------------------------------------------------------------------------


def fill_then_sum(a, b, c):
    """Group a: the two-loop form users write (and stock numba runs as two
    passes over memory, through an n-element temporary)."""
    n = a.shape[0]
    tmp = np.empty(n)
    for i in range(n):
        tmp[i] = a[i] * b[i] + c[i]
    s = 0.0
    for i in range(n):
        s += tmp[i]
    return s


def fill_then_sum_hand(a, b, c):
    """Group a: the hand-written single loop (same summation order)."""
    n = a.shape[0]
    s = 0.0
    for i in range(n):
        s += a[i] * b[i] + c[i]
    return s


def two_maps(a, b):
    """Group b: two maps over the same range, into two returned arrays."""
    n = a.shape[0]
    x = np.empty(n)
    y = np.empty(n)
    for i in range(n):
        x[i] = a[i] * b[i] + 1.0
    for i in range(n):
        y[i] = a[i] - b[i] * 0.5
    return x, y


def two_maps_hand(a, b):
    """Group b: both maps in one loop."""
    n = a.shape[0]
    x = np.empty(n)
    y = np.empty(n)
    for i in range(n):
        x[i] = a[i] * b[i] + 1.0
        y[i] = a[i] - b[i] * 0.5
    return x, y


def chain_of_three(a, b):
    """Group c: fill t1, fill t2 from t1, reduce t2."""
    n = a.shape[0]
    t1 = np.empty(n)
    for i in range(n):
        t1[i] = a[i] * b[i]
    t2 = np.empty(n)
    for i in range(n):
        t2[i] = np.sqrt(t1[i]) + 1.0
    total = 0.0
    for i in range(n):
        total += t2[i]
    return total


def chain_of_three_hand(a, b):
    """Group c: the chain as one loop, no temporaries."""
    n = a.shape[0]
    total = 0.0
    for i in range(n):
        total += np.sqrt(a[i] * b[i]) + 1.0
    return total


def scan_fill_then_sum(a, b, c):
    # Kernel a as two PyTensor-scan-style while loops: while-to-range removes
    # the flag tests, fuse-loops fuses the counted loops that remain.
    n = a.shape[0]
    cond = np.zeros((), dtype=np.bool_)
    tmp = np.empty(n)
    i = 0
    while i < n and not cond.item():
        tmp[i] = a[i] * b[i] + c[i]
        i += 1
    s = 0.0
    k = 0
    while k < n and not cond.item():
        s += tmp[k]
        k += 1
    return s


NO_FUSION = {"fuse_loops": False}


# ---------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------


@dataclass
class Group:
    key: str
    title: str
    candidates: list[Candidate]
    ratios: list[Ratio]
    size: int
    nargs: int
    """The kernels take the first ``nargs`` input arrays."""
    expected_keys: list[str]
    """The remark keys the loopopt candidate should report."""
    best: dict[str, float] = field(default_factory=dict)
    number: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def make_inputs(size: int, k: int = 3, seed: int = 0) -> tuple[np.ndarray, ...]:
    """``k`` float64 arrays of ``size`` uniform values in [0, 1)."""
    rng = np.random.default_rng(seed)
    return tuple(rng.random(size) for _ in range(k))


# ---------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------


def same_bits(x, y) -> bool:
    """Equal bit for bit: floats by their bytes, arrays by dtype, shape and bytes."""
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)
                and x.dtype == y.dtype and x.shape == y.shape
                and x.tobytes() == y.tobytes())
    if isinstance(x, tuple) and isinstance(y, tuple):
        return len(x) == len(y) and all(same_bits(p, q) for p, q in zip(x, y, strict=True))
    if isinstance(x, float) and isinstance(y, float):
        return np.float64(x).tobytes() == np.float64(y).tobytes()
    return type(x) is type(y) and x == y


def summary(value) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(summary(v) for v in value) + ")"
    if isinstance(value, np.ndarray):
        return f"array(n={value.size}, sum={value.sum()!r})"
    return repr(value)


def verify(group: Group, stock: Candidate, sizes: list[int],
           inputs: tuple[np.ndarray, ...]) -> None:
    """Every candidate returns what stock numba returns, bit for bit, and leaves
    its inputs alone."""
    for n in sizes:
        args = tuple(x[:n].copy() for x in inputs[:group.nargs])
        ref = stock.dispatcher(*args)
        for cand in group.candidates:
            if cand is stock:
                continue
            mine = tuple(x.copy() for x in args)
            got = cand.dispatcher(*mine)
            if not same_bits(got, ref):
                raise AssertionError(
                    f"group {group.key}: {cand.label} differs from stock numba at "
                    f"n={n}: returned {summary(got)}, stock {summary(ref)}")
            if not same_bits(mine, args):
                raise AssertionError(f"group {group.key}: {cand.label} changed its "
                                     f"inputs at n={n}")


def remark_keys(dispatcher) -> list[str]:
    """The remark keys of the dispatcher's first signature (the kernels are
    compiled for one)."""
    found = lo.remarks(dispatcher, dispatcher.signatures[0])
    return [r.key if r.kind is not lo.RemarkKind.MISSED else f"missed {r.key}"
            for r in found]


# ---------------------------------------------------------------------------
# Groups
# ---------------------------------------------------------------------------


def group_a(size: int) -> Group:
    cands = [
        Candidate("stock numba.njit", numba.njit(fill_then_sum), "stock"),
        Candidate("njit(parallel=True), 1 thread", numba.njit(parallel=True)(fill_then_sum),
                  "parallel"),
        Candidate("numba_loopopt.jit", lo.jit(fill_then_sum), "opt"),
        Candidate("loopopt, fuse_loops=False", lo.jit(fill_then_sum, options=NO_FUSION),
                  "opt_off"),
        Candidate("hand: one fused loop", numba.njit(fill_then_sum_hand), "hand"),
    ]
    ratios = [
        Ratio("stock / loopopt", "stock", "opt", ">=", 6.0),
        Ratio("loopopt / hand", "opt", "hand", "<=", 1.05),
        Ratio("parallel 1 thread / loopopt", "parallel", "opt"),
        Ratio("fuse_loops=False / loopopt", "opt_off", "opt"),
        Ratio("stock / hand", "stock", "hand"),
    ]
    return Group("a", "tmp[i] = a[i] * b[i] + c[i]; then s += tmp[i] (two range loops)",
                 cands, ratios, size, 3, ["Fused", "Contracted"])


def group_b(size: int) -> Group:
    cands = [
        Candidate("stock numba.njit", numba.njit(two_maps), "stock"),
        Candidate("numba_loopopt.jit", lo.jit(two_maps), "opt"),
        Candidate("hand: one loop, two stores", numba.njit(two_maps_hand), "hand"),
    ]
    ratios = [
        Ratio("stock / loopopt", "stock", "opt"),
        Ratio("loopopt / hand", "opt", "hand"),
    ]
    return Group("b", "x[i] = a[i] * b[i] + 1.0; then y[i] = a[i] - b[i] * 0.5 "
                 "(both returned)", cands, ratios, size, 2, ["Fused"])


def group_c(size: int) -> Group:
    cands = [
        Candidate("stock numba.njit", numba.njit(chain_of_three), "stock"),
        Candidate("numba_loopopt.jit", lo.jit(chain_of_three), "opt"),
        Candidate("hand: one loop", numba.njit(chain_of_three_hand), "hand"),
    ]
    ratios = [
        Ratio("stock / loopopt", "stock", "opt"),
        Ratio("loopopt / hand", "opt", "hand"),
    ]
    return Group("c", "t1[i] = a[i] * b[i]; t2[i] = sqrt(t1[i]) + 1.0; total += t2[i] "
                 "(three range loops)", cands, ratios, size, 2,
                 ["Fused", "Contracted", "Fused", "Contracted"])


def group_e(size: int) -> Group:
    cands = [
        Candidate("stock numba.njit", numba.njit(scan_fill_then_sum), "stock"),
        Candidate("numba_loopopt.jit", lo.jit(scan_fill_then_sum), "opt"),
        Candidate("loopopt, fuse_loops=False", lo.jit(scan_fill_then_sum,
                                                      options=NO_FUSION), "opt_off"),
        Candidate("hand: one fused loop", numba.njit(fill_then_sum_hand), "hand"),
    ]
    ratios = [
        Ratio("stock / loopopt", "stock", "opt", ">=", 6.0),
        Ratio("loopopt / hand", "opt", "hand", "<=", 1.05),
        Ratio("fuse_loops=False / loopopt", "opt_off", "opt"),
    ]
    return Group("e", "kernel a as two 'while i < n and not cond.item()' loops",
                 cands, ratios, size, 3, ["Rewritten", "Rewritten", "Fused", "Contracted"])


def run_group(group: Group, inputs: tuple[np.ndarray, ...], repeats: int,
              min_sample: float) -> None:
    stock = next(c for c in group.candidates if c.role == "stock")
    verify(group, stock, [0, 1, 2, 7, 100, group.size], inputs)  # also compiles
    args = inputs[:group.nargs]
    calls = {c.role: (lambda d=c.dispatcher: d(*args)) for c in group.candidates}
    opt = next(c for c in group.candidates if c.role == "opt")
    keys = remark_keys(opt.dispatcher)
    if keys != group.expected_keys:
        group.notes.append(f"WARNING: loopopt's remark keys are {keys}, expected "
                           f"{group.expected_keys}: the pass did not do what this "
                           "group measures")
    group.best, group.number = interleaved_min(calls, repeats, min_sample)
    for r in group.ratios:
        r.value = group.best[r.num] / group.best[r.den]


def print_group(group: Group, repeats: int) -> None:
    print(f"\n== {group.key}. {group.title}")
    print(f"   {group.size:,} float64 elements, min of {repeats} interleaved rounds")
    print(f"   {'candidate':34s} {'time (ms)':>10s} {'ns/elem':>9s}")
    for c in group.candidates:
        t = group.best[c.role]
        print(f"   {c.label:34s} {t * 1e3:10.2f} {t / group.size * 1e9:9.3f}")
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
class AllocRow:
    label: str
    role: str
    allocs: int
    remarks: list[str]


def run_allocations(size: int, inputs: tuple[np.ndarray, ...]) -> list[AllocRow]:
    """NRT allocations made by one call of each group-a candidate (after a
    warm-up call that compiles it)."""
    cands = [
        ("stock numba.njit", numba.njit(fill_then_sum), "stock"),
        ("numba_loopopt.jit", lo.jit(fill_then_sum), "opt"),
        ("hand: one fused loop", numba.njit(fill_then_sum_hand), "hand"),
    ]
    args = inputs[:3]
    rows = []
    _nrt_python.memsys_enable_stats()
    try:
        for label, disp, role in cands:
            disp(*args)
            before = rtsys.get_allocation_stats().alloc
            disp(*args)
            allocs = rtsys.get_allocation_stats().alloc - before
            keys = remark_keys(disp) if role == "opt" else []
            rows.append(AllocRow(label, role, allocs, keys))
    finally:
        _nrt_python.memsys_disable_stats()
    return rows


def print_allocations(rows: list[AllocRow], size: int) -> bool:
    """Print the table; returns whether loopopt allocates what hand does."""
    by_role = {r.role: r.allocs for r in rows}
    print(f"\n== d. NRT allocations per call of kernel a ({size:,} elements; "
          "rtsys.get_allocation_stats().alloc around one call)")
    print(f"   {'candidate':34s} {'allocations':>11s}  remarks")
    for r in rows:
        print(f"   {r.label:34s} {r.allocs:11d}  {', '.join(r.remarks) or '-'}")
    ok = by_role["opt"] == by_role["hand"]
    print(f"   {'loopopt == hand':34s} {'':11s}  {'PASS' if ok else 'FAIL'}")
    print(f"   (stock allocates {by_role['stock'] - by_role['opt']} more per call than "
          "loopopt: the temporary; the others wrap the 3 array arguments)")
    return ok


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="1e6 elements and fewer repeats (a smoke run)")
    p.add_argument("--size", "--steps", dest="size", type=int, default=None,
                   help="float64 elements per array (default 1e7, 1e6 with --quick)")
    p.add_argument("--repeats", type=int, default=None,
                   help="interleaved rounds for groups a-c and e (default 11, 5 with --quick)")
    p.add_argument("--groups", default="abcde",
                   help="which groups to run, e.g. 'ad' (default 'abcde')")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = p.parse_args(argv)
    if args.size is None:
        args.size = 10**6 if args.quick else 10**7
    if args.repeats is None:
        args.repeats = 5 if args.quick else 11
    if args.size < 1 or args.repeats < 1:
        p.error("--size and --repeats must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    # The parallel=True candidate runs on one thread: it is there to show what
    # numba's own fusion (parfors) does with explicit loops, not parallelism.
    numba.set_num_threads(1)
    # ... and has nothing to parallelise, which numba warns about: expected.
    warnings.filterwarnings("ignore", message=r"(?s).*'parallel=True' was specified",
                            category=NumbaPerformanceWarning)
    print("numba_loopopt fuse-loops benchmark")
    print(f"python {platform.python_version()}, numba {numba.__version__}, "
          f"llvmlite {llvmlite.__version__}, numpy {np.__version__}, "
          f"numba_loopopt {lo.__version__}; {platform.machine()}, "
          f"{numba.config.NUMBA_NUM_THREADS} threads (parallel=True runs on "
          f"{numba.get_num_threads()})")
    print("timing: timeit.Timer, candidates interleaved in one process, min of rounds; "
          "results checked bit for bit against stock numba first")

    inputs = make_inputs(args.size)
    groups = []
    makers = {"a": group_a, "b": group_b, "c": group_c, "e": group_e}
    for key in "abce":
        if key in args.groups:
            groups.append(makers[key](args.size))
    for group in groups:
        run_group(group, inputs, args.repeats, min_sample=0.005)
        print_group(group, args.repeats)
    alloc_rows, alloc_ok = [], None
    if "d" in args.groups:
        alloc_rows = run_allocations(args.size, inputs)
        alloc_ok = print_allocations(alloc_rows, args.size)

    checks = [r.passed for g in groups for r in g.ratios] + [alloc_ok]
    checks = [c for c in checks if c is not None]
    print(f"\n{sum(checks)}/{len(checks)} targets met "
          f"(informational); total {time.perf_counter() - started:.1f} s")

    if args.json:
        out = {
            "config": {"size": args.size, "repeats": args.repeats,
                       "python": platform.python_version(), "numba": numba.__version__,
                       "numpy": np.__version__, "numba_loopopt": lo.__version__},
            "groups": {g.key: {
                "title": g.title, "size": g.size,
                "candidates": {c.role: {"label": c.label, "seconds": g.best[c.role],
                                        "ns_per_element": g.best[c.role] / g.size * 1e9,
                                        "calls_per_sample": g.number[c.role]}
                               for c in g.candidates},
                "ratios": [{"label": r.label, "num": r.num, "den": r.den,
                            "value": r.value, "op": r.op or None, "target": r.target,
                            "passed": r.passed} for r in g.ratios],
                "remarks": [line for c in g.candidates if c.role == "opt"
                            for line in remark_lines(c.dispatcher)],
                "notes": g.notes} for g in groups},
            "allocations": {"per_call": {r.role: r.allocs for r in alloc_rows},
                            "opt_equals_hand": alloc_ok} if alloc_rows else None,
        }
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
