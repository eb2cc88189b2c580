"""Compile time of stock numba and of the loopopt pipeline as functions grow.

Run::

    python benchmarks/bench_compile_time.py --quick     # sizes 10, 100 (a few minutes)
    python benchmarks/bench_compile_time.py             # sizes 10, 100, 1000 (hours:
                                                        # stock numba alone takes minutes
                                                        # per 1000-loop function)
    python benchmarks/bench_compile_time.py --kinds for,calls --sizes 10,300 --json out.json

Kernels are generated source text (``exec``), ``N`` units each:

* ``for``: ``N`` consecutive ``for i in range(n): acc += a[i] * k`` loops
  (fuse-loops refuses them: each one updates ``acc``);
* ``while``: ``N`` loops ``while i < n and not flag.item(): ...`` over one
  flag the function allocates (while-to-range rewrites every one);
* ``stmts``: ``N`` pairs of arithmetic statements, no loop;
* ``pairs``: ``N`` pairs "fill ``t_k``, then sum it" (fuse-loops fuses each pair
  and removes ``t_k``);
* ``calls``: ``N`` calls to a small ``@numba.njit`` helper (the inline pass
  inlines them until its ``max_growth`` budget is spent);
* ``reductions``: ``N`` statements ``acc += np.sum(a * k + a)``, each ``k``
  different (fuse-reduce fuses each into a kernel of its own; equal
  expressions would share one).

For each kernel and size, a fresh function is built and compiled (``.compile``
of a fresh dispatcher, and fuse-reduce's process-wide kernels forgotten, so
nothing is reused between measurements) with stock
``numba.njit`` and with ``numba_loopopt.jit``, interleaved, and each keeps its
minimum.  Times are **CPU seconds of the process** (``time.process_time``):
compilation is single-threaded, and on a shared machine CPU time is far less
disturbed by other tenants than wall time (JSON output has both).  The garbage
collector is off during each compilation, as ``timeit`` does (``--gc`` keeps
it on): a full collection would land in whichever pass happens to allocate
then.  The passes' own time is measured by wrapping ``LoopOptPass.run_pass``
(every loopopt pass runs through it) with a CPU clock, per pass.

Before timing, both compiled kernels run on the same small input and must
return the same value (the inputs are small integers, so every sum is exact).
Targets (informational; the script exits 0): total loopopt/stock <= 1.2, and
the passes' time per unit ("per unit", ms) about constant as ``N`` grows.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import subprocess
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import llvmlite
import numba
import numpy as np
from numba import types

import numba_loopopt as lo
from numba_loopopt.passbase import LoopOptPass
from numba_loopopt.transforms import fuse_reduce

SIGNATURE = (types.float64[::1], types.int64)
TARGET = 1.2
PASSES = ("loopopt_inline", "loopopt_while_to_range", "loopopt_fuse_loops",
          "loopopt_fuse_reduce")
SHORT = {"loopopt_inline": "inline", "loopopt_while_to_range": "w2r",
         "loopopt_fuse_loops": "fuse", "loopopt_fuse_reduce": "fred"}

HELPER = "@numba.njit\ndef helper(x, y):\n    return x * 2.0 + y\n"


def _for(n: int) -> list[str]:
    lines = []
    for k in range(n):
        lines += ["    for i in range(n):", f"        acc += a[i] * {k % 7 + 1}.0"]
    return lines


def _while(n: int) -> list[str]:
    lines = ["    flag = np.zeros((), dtype=np.bool_)"]
    for k in range(n):
        lines += ["    i = 0", "    while i < n and not flag.item():",
                  f"        acc += a[i] * {k % 7 + 1}.0", "        i += 1"]
    return lines


def _stmts(n: int) -> list[str]:
    lines = ["    x = a[0]"]
    for k in range(n):
        lines += [f"    x = x * 0.5 + {k % 5}.0 - acc",
                  f"    acc = acc + x * {k % 7 + 1}.0"]
    return lines


def _pairs(n: int) -> list[str]:
    lines = []
    for k in range(n):
        lines += [f"    t{k} = np.empty(n)", "    for i in range(n):",
                  f"        t{k}[i] = a[i] * {k % 7 + 1}.0", "    for i in range(n):",
                  f"        acc += t{k}[i]"]
    return lines


def _reductions(n: int) -> list[str]:
    # A different constant each: every expression is distinct, so no kernel is
    # shared (equal expressions share one compiled kernel per process).
    return [f"    acc += np.sum(a * {k + 1}.0 + a)" for k in range(n)]


def _calls(n: int) -> list[str]:
    return [f"    acc += helper(a[{k} % n], {k % 7}.0)" for k in range(n)]


#: kind -> (what one unit is, body generator)
KINDS: dict[str, tuple[str, Callable[[int], list[str]]]] = {
    "for": ("for-range loop", _for),
    "while": ("while loop with a flag", _while),
    "stmts": ("pair of statements", _stmts),
    "pairs": ("fusable loop pair", _pairs),
    "calls": ("call to an @njit helper", _calls),
    "reductions": ("fused reduction of an expression", _reductions),
}


def source(kind: str, n: int) -> str:
    body = KINDS[kind][1](n)
    return (HELPER + "def kernel(a, n):\n    acc = 0.0\n" + "\n".join(body)
            + "\n    return acc\n")


def build(kind: str, n: int, decorate):
    """A fresh kernel (and a fresh helper) from generated source."""
    namespace = {"np": np, "numba": numba}
    exec(compile(source(kind, n), f"<bench_compile_time {kind} {n}>", "exec"), namespace)
    return decorate(namespace["kernel"])


# ---------------------------------------------------------------------------
# Pass timing: every loopopt pass runs through LoopOptPass.run_pass.
# ---------------------------------------------------------------------------

_pass_times: dict[str, float] = defaultdict(float)


def _install_pass_timer() -> None:
    original = LoopOptPass.run_pass
    if getattr(original, "_bench_timer", False):
        return

    def timed(self, state):
        start = time.process_time()
        try:
            return original(self, state)
        finally:
            _pass_times[self._name] += time.process_time() - start

    timed._bench_timer = True
    LoopOptPass.run_pass = timed


def compile_once(kind: str, n: int, decorate, collect: bool = False) -> dict:
    """CPU and wall seconds of one fresh compilation, and the passes' CPU time.

    The garbage collector is off while it runs (as ``timeit`` does), unless
    ``collect``: a full collection lands in whichever pass happens to allocate
    at that moment, which blurs the passes' times."""
    disp = build(kind, n, decorate)
    # fuse-reduce compiles one kernel per distinct expression and keeps it for
    # the process: forget them, so that every compilation is a cold one.
    fuse_reduce.clear_caches()
    _pass_times.clear()
    gc.collect()
    if not collect:
        gc.disable()
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        disp.compile(SIGNATURE)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        gc.enable()
    return {"cpu": cpu, "wall": wall, "passes": dict(_pass_times), "disp": disp}


# ---------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------


@dataclass
class Row:
    kind: str
    size: int
    repeats: int
    stock: float = math.inf
    opt: float = math.inf
    stock_wall: float = math.inf
    opt_wall: float = math.inf
    passes: dict[str, float] = field(default_factory=dict)
    """CPU seconds per pass, in the fastest loopopt compilation."""
    remarks: dict[str, int] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.opt / self.stock

    @property
    def pass_total(self) -> float:
        return sum(self.passes.values())

    @property
    def per_unit_ms(self) -> float:
        return self.pass_total / self.size * 1e3


def remark_counts(disp) -> dict[str, int]:
    counts: dict[str, int] = {}
    for sig_remarks in lo.remarks(disp).values():
        for r in sig_remarks:
            key = r.key if r.kind is not lo.RemarkKind.MISSED else f"missed {r.key}"
            counts[key] = counts.get(key, 0) + 1
    return counts


def _in_process(kind: str, n: int, name: str, collect: bool) -> dict:
    """:func:`compile_once` with ``name``'s pipeline (``stock`` or ``opt``);
    instead of the dispatcher, the compiled kernel's value on the check input
    and loopopt's remark counts (the dispatcher is dropped, so that it does
    not weigh on the next compilation)."""
    deco = numba.njit if name == "stock" else lo.jit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = compile_once(kind, n, deco, collect)
    disp = got.pop("disp")
    got["value"] = float(disp(np.arange(8.0), 8))
    got["remarks"] = remark_counts(disp) if name == "opt" else {}
    return got


def _isolated(kind: str, n: int, name: str, collect: bool) -> dict:
    """:func:`_in_process` in a fresh process (see ``--isolate``)."""
    cmd = [sys.executable, __file__, "--_one", f"{kind},{n},{name}"] + (
        ["--gc"] if collect else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _one(spec: str, collect: bool) -> int:
    kind, n, name = spec.split(",")
    _install_pass_timer()
    # numba's own first-compilation costs, outside the measurement.
    build(kind, 2, numba.njit if name == "stock" else lo.jit).compile(SIGNATURE)
    print(json.dumps(_in_process(kind, int(n), name, collect)))
    return 0


def measure(kind: str, n: int, repeats: int, collect: bool = False,
            isolate: bool = False) -> Row:
    """Both pipelines' best of ``repeats`` compilations, interleaved; both
    compiled kernels must return the same value on the check input."""
    row = Row(kind, n, repeats)
    run = _isolated if isolate else _in_process
    values = {}
    for r in range(repeats):
        for name in ("stock", "opt") if r % 2 == 0 else ("opt", "stock"):
            got = run(kind, n, name, collect)
            values[name] = got["value"]
            if name == "stock":
                row.stock = min(row.stock, got["cpu"])
                row.stock_wall = min(row.stock_wall, got["wall"])
            else:
                if got["cpu"] < row.opt:
                    row.passes = {p: got["passes"].get(p, 0.0) for p in PASSES}
                row.opt = min(row.opt, got["cpu"])
                row.opt_wall = min(row.opt_wall, got["wall"])
                row.remarks = got["remarks"]
    if values["stock"] != values["opt"]:
        raise AssertionError(f"{kind} N={n}: loopopt returned {values['opt']!r}, "
                             f"stock {values['stock']!r}")
    return row


def print_row(row: Row) -> None:
    result = "PASS" if row.ratio <= TARGET else "FAIL"
    shares = " ".join(f"{SHORT[p]}={row.passes.get(p, 0.0):.3f}" for p in PASSES)
    print(f"{row.kind:6s} {row.size:5d} {row.stock:10.2f} {row.opt:11.2f} {row.ratio:6.2f} "
          f"{result:>6s} {row.pass_total:10.3f} {row.per_unit_ms:9.2f}  {shares}",
          flush=True)


def print_growth(rows: list[Row]) -> None:
    print("\npasses' CPU time per unit (ms) as N grows; 'growth' is per-unit time at "
          "the largest N over the smallest (about 1 when linear):")
    by_kind: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_kind[row.kind].append(row)
    for kind, krows in by_kind.items():
        krows.sort(key=lambda r: r.size)
        steps = ", ".join(f"N={r.size}: {r.per_unit_ms:.2f}" for r in krows)
        growth = (krows[-1].per_unit_ms / krows[0].per_unit_ms
                  if len(krows) > 1 and krows[0].per_unit_ms > 0 else math.nan)
        print(f"  {kind:6s} ({KINDS[kind][0]}): {steps}; growth {growth:.1f}x")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="sizes 10 and 100 only")
    p.add_argument("--sizes", help="comma-separated sizes (default 10,100,1000; "
                   "10,100 with --quick)")
    p.add_argument("--kinds", default=",".join(KINDS),
                   help=f"comma-separated kernels among {', '.join(KINDS)}")
    p.add_argument("--repeats", type=int, default=None,
                   help="compilations per pipeline (default 3 below N=1000, 1 from it)")
    p.add_argument("--gc", action="store_true",
                   help="keep the garbage collector on while compiling (off by default)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--isolate", choices=("auto", "yes", "no"), default="auto",
                   help="compile each kernel in a fresh process (default: from N=1000 "
                        "on): in one process the second of two big compilations pays "
                        "for the heap the first left, about 20%% at N=1000")
    p.add_argument("--_one", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._one:
        return args
    args.sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
                  else [10, 100] if args.quick else [10, 100, 1000])
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in args.kinds if k not in KINDS]
    if unknown:
        p.error(f"unknown kinds {unknown}; known: {', '.join(KINDS)}")
    if any(s < 1 for s in args.sizes) or (args.repeats is not None and args.repeats < 1):
        p.error("sizes and --repeats must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args._one:
        return _one(args._one, args.gc)
    started = time.perf_counter()
    _install_pass_timer()
    print("numba_loopopt compile-time benchmark")
    print(f"python {platform.python_version()}, numba {numba.__version__}, "
          f"llvmlite {llvmlite.__version__}, numpy {np.__version__}, "
          f"numba_loopopt {lo.__version__}; {platform.machine()}")
    print("CPU seconds (time.process_time) of a fresh compilation, stock and loopopt "
          "interleaved, min of the repeats; 'passes' is the loopopt passes' own CPU time; "
          f"garbage collector {'on' if args.gc else 'off'} while compiling")
    # Warm numba's process-wide caches (typing templates, overloads) for both.
    for deco in (numba.njit, lo.jit):
        for kind in args.kinds:
            build(kind, 2, deco).compile(SIGNATURE)
    print(f"\n{'kind':6s} {'N':>5s} {'stock (s)':>10s} {'loopopt (s)':>11s} {'ratio':>6s} "
          f"{'<=' + format(TARGET, 'g'):>6s} {'passes (s)':>10s} {'per unit':>9s}  "
          "per pass (s)")
    rows = []
    for size in args.sizes:
        for kind in args.kinds:
            repeats = args.repeats or (3 if size < 1000 else 1)
            isolate = args.isolate == "yes" or (args.isolate == "auto" and size >= 1000)
            row = measure(kind, size, repeats, args.gc, isolate)
            rows.append(row)
            print_row(row)
    print_growth(rows)
    print("\nremarks of the loopopt compilation:")
    for row in rows:
        shown = ", ".join(f"{k} x{v}" for k, v in sorted(row.remarks.items()))
        print(f"  {row.kind:6s} {row.size:5d}: {shown or '(none)'}")
    met = sum(row.ratio <= TARGET for row in rows)
    print(f"\n{met}/{len(rows)} rows within {TARGET:g}x stock (informational); "
          f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"config": {"sizes": args.sizes, "kinds": args.kinds,
                                  "python": platform.python_version(),
                                  "numba": numba.__version__,
                                  "numba_loopopt": lo.__version__},
                       "rows": [dict(asdict(r), ratio=r.ratio, pass_total=r.pass_total,
                                     per_unit_ms=r.per_unit_ms) for r in rows]},
                      fh, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
