"""Benchmark PyTensor's NUMBA mode, stock and with numba_loopopt enabled.

Run::

    python benchmarks/bench_pytensor.py            # 1e5 scan steps, 1e6-element sum, ~90 s
    python benchmarks/bench_pytensor.py --quick    # fewer repeats, one compile each, ~40 s
    python benchmarks/bench_pytensor.py --graphs scan,sum --json out.json

Most of the run time is PyTensor and numba compiling each graph twice (stock
and enabled; numba compiles every function afresh: PyTensor's disk cache is
off for the whole run, so remarks are recorded and the user's cache is left
alone).

Graphs (real ``pytensor.function(..., mode="NUMBA")`` functions):

scan
    ``x[t + 1] = x[t] + 1`` with ``pytensor.scan(..., n_steps=n)``, the last
    state returned.
ar1
    An AR(1) log-likelihood: ``sum_t logN(y[t] - rho * y[t-1]; 0, sigma)``,
    summed by the scan itself (a running total, so PyTensor keeps the loop).
sum
    ``pt.sum(a * b + c)`` on float64 vectors.

Candidates: stock NUMBA mode; NUMBA mode with ``numba_loopopt.pytensor``
enabled (default options); and, for scale, a hand-written ``numba.njit`` loop
computing the same thing (informational: it is neither PyTensor's code nor its
summation order).  Without ``--quick`` each PyTensor function is compiled
twice and both copies are timed: two copies of one mode run the same code, so
their ratio (the "control" rows) is this run's noise floor, and a stock /
loopopt ratio inside it means nothing.  The enabled function's results are checked bit for bit
against stock's (several sizes) before any timing, and the hand loop's for
closeness; a mismatch raises.

Per graph it prints the times, the ratios, the NRT allocations of one call,
the compile time (``pytensor.function`` plus the first call, where numba
compiles; the faster of two compiles per candidate, ordered stock, enabled,
enabled, stock; not measured with ``--quick``), and the loopopt remarks of every numba function
PyTensor generated, so a missed rewrite is visible next to the numbers.

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
import json
import platform
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

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
except ImportError:  # pragma: no cover - reported in main()
    pytensor = None

import numba_loopopt.pytensor as lpt  # noqa: E402

# ---------------------------------------------------------------------------
# Graphs and hand-written loops
# ---------------------------------------------------------------------------


def counting_scan():
    x0, n = pt.dscalar("x0"), pt.iscalar("n")
    xs = pytensor.scan(lambda x: x + 1, outputs_info=[x0], n_steps=n,
                       return_updates=False)
    return [x0, n], xs[-1]


def ar1_loglik():
    y, rho, sigma = pt.dvector("y"), pt.dscalar("rho"), pt.dscalar("sigma")

    def step(y_t, y_tm1, total, rho, sigma):
        r = y_t - rho * y_tm1
        return total + (-0.5 * np.log(2 * np.pi) - pt.log(sigma) - 0.5 * (r / sigma) ** 2)

    totals = pytensor.scan(step, sequences=[{"input": y, "taps": [0, -1]}],
                           outputs_info=[pt.constant(0.0, dtype="float64")],
                           non_sequences=[rho, sigma], return_updates=False)
    return [y, rho, sigma], totals[-1]


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
def hand_sum(a, b, c):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i] + c[i]
    return s


def scan_args(n):
    return (0.0, n)


def ar1_args(n):
    rng = np.random.default_rng(0)
    y = np.zeros(n)
    for t in range(1, n):
        y[t] = 0.6 * y[t - 1] + rng.normal()
    return (y, 0.6, 1.3)


def sum_args(n):
    rng = np.random.default_rng(1)
    return tuple(rng.normal(size=n) for _ in range(3))


@dataclass
class Graph:
    key: str
    title: str
    build: Callable
    make_args: Callable[[int], tuple]
    hand: Callable
    unit: str
    size: int = 0


GRAPHS = {
    "scan": Graph("scan", "scan: x[t + 1] = x[t] + 1, n_steps = n, last state",
                  counting_scan, scan_args, hand_scan, "step"),
    "ar1": Graph("ar1", "scan: AR(1) log-likelihood, running total over y[1:]",
                 ar1_loglik, ar1_args, hand_ar1, "step"),
    "sum": Graph("sum", "pt.sum(a * b + c), float64 vectors",
                 sum_axpy, sum_args, hand_sum, "elem"),
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
    remarks: list[tuple[int, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def compile_graph(graph: Graph, enabled: bool, args: tuple):
    """``pytensor.function`` for the graph, stock or enabled, and the seconds
    it took together with the first call (where numba compiles)."""
    started = time.perf_counter()
    with lpt.enabled() if enabled else _disabled():
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


def same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def verify(graph: Graph, stock, opt, sizes: list[int]) -> None:
    for n in sizes:
        args = graph.make_args(n)
        ref, got = stock(*args), opt(*args)
        if not same_bits(ref, got):
            raise AssertionError(f"{graph.key}: enabled returned {got!r}, stock "
                                 f"NUMBA mode {ref!r} at size {n}")
        hand = graph.hand(*args)
        if not np.allclose(hand, ref, rtol=1e-9, atol=1e-9):
            raise AssertionError(f"{graph.key}: hand loop returned {hand!r}, "
                                 f"PyTensor {ref!r} at size {n}")


def allocations(call: Callable[[], object]) -> int:
    """NRT allocations made by one call (after a warm-up call)."""
    call()
    _nrt_python.memsys_enable_stats()
    try:
        before = rtsys.get_allocation_stats().alloc
        call()
        return rtsys.get_allocation_stats().alloc - before
    finally:
        _nrt_python.memsys_disable_stats()


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
    for stock, opt in zip(fns["stock"], fns["opt"], strict=True):
        verify(graph, stock, opt, [2, 3, 10, 101, graph.size])
    labels = {"stock": "stock NUMBA mode", "opt": "loopopt enabled"}
    candidates = []
    for mode in ("stock", "opt"):
        for copy, fn in enumerate(fns[mode]):
            suffix = "" if copy == 0 else " (2nd compile)"
            candidates.append(Candidate(labels[mode] + suffix, fn, f"{mode}{copy}"))
    candidates.append(Candidate("hand-written numba loop (info)", graph.hand, "hand"))
    ratios = [Ratio("stock / loopopt (speed-up)", "stock", "opt"),
              Ratio("loopopt / stock (no slowdown)", "opt", "stock", "<=", 1.05),
              Ratio("loopopt / hand loop", "opt", "hand")]
    if compile_rounds > 1:
        ratios += [Ratio("control: stock / its 2nd compile", "stock0", "stock1"),
                   Ratio("control: loopopt / its 2nd compile", "opt0", "opt1")]
    result = Result(graph, candidates, ratios,
                    compile_s=compile_s if compile_rounds > 1 else {})
    calls = {c.role: (lambda f=c.dispatcher: f(*args)) for c in candidates}
    result.best, _ = interleaved_min(calls, repeats, min_sample)
    for mode in ("stock", "opt"):
        result.best[mode] = min(t for role, t in result.best.items()
                                if role.startswith(mode))
    for r in ratios:
        r.value = result.best[r.num] / result.best[r.den]
    result.allocs = {role: allocations(call) for role, call in calls.items()}
    result.remarks = remark_summary(fns["opt"][0])
    if not any("while-to-range" in text or "fuse-" in text for _, text in result.remarks):
        result.notes.append("no loop pass reported on this graph's functions")
    return result


def print_result(res: Result, repeats: int) -> None:
    g = res.graph
    print(f"\n== {g.key}. {g.title}")
    print(f"   size {g.size:,}, min of {repeats} interleaved rounds")
    print(f"   {'candidate':36s} {'time (ms)':>10s} {'ns/' + g.unit:>9s} "
          f"{'allocs/call':>11s} {'compile (s)':>11s}")
    for c in res.candidates:
        t = res.best[c.role]
        comp = res.compile_s.get(c.role[:-1]) if c.role.endswith("0") else None
        comp_text = f"{comp:11.2f}" if comp is not None else f"{'-':>11s}"
        print(f"   {c.label:36s} {t * 1e3:10.3f} {t / g.size * 1e9:9.2f} "
              f"{res.allocs[c.role]:11d} {comp_text}")
    print(f"   {'ratio (of times)':36s} {'value':>10s} {'target':>9s}  result")
    for r in res.ratios:
        print(f"   {r.label:36s} {r.value:10.2f} {r.target_text():>9s}  {r.result_text()}")
    print("   loopopt remarks on PyTensor's generated functions (count x remark):")
    for n, text in res.remarks or [(0, "(none)")]:
        print(f"     {n:3d} x {text}")
    if not res.compile_s:
        res.notes.append("compile times need two rounds each; not measured with --quick")
    for note in res.notes:
        print(f"   note: {note}")


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="fewer repeats and a 1e5-element sum (a smoke run)")
    p.add_argument("--steps", type=int, default=100_000,
                   help="scan steps and AR(1) series length (default 1e5)")
    p.add_argument("--size", type=int, default=None,
                   help="elements per vector of the sum graph (default 1e6, 1e5 with --quick)")
    p.add_argument("--repeats", type=int, default=None,
                   help="interleaved rounds (default 11, 5 with --quick)")
    p.add_argument("--graphs", default="scan,ar1,sum",
                   help="comma-separated subset of scan, ar1, sum")
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
        graph.size = args.size if key == "sum" else args.steps
        res = run_graph(graph, args.repeats, min_sample=0.02,
                        compile_rounds=1 if args.quick else 2)
        print_result(res, args.repeats)
        results.append(res)
    lpt.disable()

    checks = [r.passed for res in results for r in res.ratios if r.passed is not None]
    print(f"\n{sum(checks)}/{len(checks)} targets met "
          f"(informational); total {time.perf_counter() - started:.1f} s")

    if args.json:
        out = {
            "config": {"steps": args.steps, "size": args.size, "repeats": args.repeats,
                       "python": platform.python_version(), "numba": numba.__version__,
                       "pytensor": pytensor.__version__, "numba_loopopt": lo.__version__},
            "graphs": [{
                "key": res.graph.key, "size": res.graph.size,
                "seconds": res.best, "compile_seconds": res.compile_s,
                "allocations": res.allocs,
                "ratios": [{"label": r.label, "value": r.value, "target": r.target,
                            "op": r.op, "passed": r.passed} for r in res.ratios],
                "remarks": [{"count": n, "remark": text} for n, text in res.remarks],
                "notes": res.notes,
            } for res in results],
        }
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
