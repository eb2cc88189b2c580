"""Before/after: compile time and run time of two checkouts of numba_loopopt.

    git worktree add /tmp/old 567fbf7        # the commit before issue 14's refactor
    git worktree add /tmp/new HEAD
    python benchmarks/bench_refactor.py old=/tmp/old new=/tmp/new

Each checkout is imported in fresh worker processes (its directory first on
``sys.path``; the worker checks which package it imported), alternating
between the checkouts round by round (``--rounds``, order reversed every
other round) so that drift on a shared machine hits both alike.  A worker
compiles every kernel once with stock ``numba.njit`` and once with
``numba_loopopt.jit`` (CPU time, ``time.process_time``, garbage collector
off, after one warm-up compilation), then times each compiled run-time
kernel at ``--size`` elements (``timeit``, minimum of ``--repeats``).  The
figures kept are the minimums over the rounds.  Stock numba's times are a
control: the same numba compiles and runs the same kernels for every
checkout, so their spread is the run's noise, and ``loopopt/stock`` (both
measured in the same process) the figure least disturbed by it.

The kernels are defined here, the same source for both checkouts: the main
benchmark suite's (``python -m numba_loopopt bench``: the scans, the
reductions, the gather, the two loops) and ``bench_compile_time.py``'s
generated ones at ``--units`` units (``for``, ``while``, ``pairs``,
``calls``, ``reductions``, ``stmts``).

A spec ``label=PATH,VAR=VALUE`` also sets environment variables for that
checkout's workers (``new-sr=/tmp/new,NUMBA_LOOPOPT_DISABLE_PASSES=scalar-replace``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

# -- Kernels (plain Python; both checkouts compile the same functions) -------


def scan(buf, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[i + 1] = buf[i] + 1.0
        i += 1
    return i


def scan_mod(buf, n_steps):
    cond = np.array(False)
    L = len(buf)
    i = 0
    while i < n_steps and not cond.item():
        buf[(i + 1) % L] = buf[i % L] + 1.0
        i += 1
    return i


def sum_expr(a, b, c):
    return np.sum(a * b + c)


def centered_sq(x):
    return ((x - x.mean()) ** 2).sum()


def exp_max(a, b):
    return (np.exp(a) * b).max()


def three(a, b):
    t = a * b
    return t.sum(), t.max(), t.min()


def gather(x, idx):
    return x[idx].sum()


def two_loops(a, b, c):
    n = a.shape[0]
    tmp = np.empty(n)
    for i in range(n):
        tmp[i] = a[i] * b[i] + c[i]
    s = 0.0
    for i in range(n):
        s += tmp[i]
    return s


def _vectors(count):
    return lambda n, rng: tuple(rng.random(n) for _ in range(count))


RUN_KERNELS = {
    "scan": (scan, lambda n, rng: (np.zeros(n + 1), n)),
    "scan_mod": (scan_mod, lambda n, rng: (np.zeros(n + 1), n)),
    "sum_expr": (sum_expr, _vectors(3)),
    "centered_sq": (centered_sq, _vectors(1)),
    "exp_max": (exp_max, _vectors(2)),
    "three": (three, _vectors(2)),
    "gather": (gather, lambda n, rng: (rng.random(n), rng.integers(0, n, n))),
    "two_loops": (two_loops, _vectors(3)),
}

# bench_compile_time.py's generated kernels (copied: that script imports
# modules the old layout does not have).
HELPER = "@numba.njit\ndef helper(x, y):\n    return x * 2.0 + y\n"
UNITS = {
    "for": lambda k: ["    for i in range(n):", f"        acc += a[i] * {k % 7 + 1}.0"],
    "while": lambda k: ["    i = 0", "    while i < n and not flag.item():",
                        f"        acc += a[i] * {k % 7 + 1}.0", "        i += 1"],
    "pairs": lambda k: [f"    t{k} = np.empty(n)", "    for i in range(n):",
                        f"        t{k}[i] = a[i] * {k % 7 + 1}.0", "    for i in range(n):",
                        f"        acc += t{k}[i]"],
    "calls": lambda k: [f"    acc += helper(a[{k} % n], {k % 7}.0)"],
    "reductions": lambda k: [f"    acc += np.sum(a * {k + 1}.0 + a)"],
    "stmts": lambda k: [f"    x = x * 0.5 + {k % 5}.0 - acc", f"    acc = acc + x * {k % 7 + 1}.0"],
}


def generated(kind: str, units: int):
    import numba

    body = {"while": ["    flag = np.zeros((), dtype=np.bool_)"],
            "stmts": ["    x = a[0]"]}.get(kind, [])
    for k in range(units):
        body += UNITS[kind](k)
    src = HELPER + "def kernel(a, n):\n    acc = 0.0\n" + "\n".join(body) + "\n    return acc\n"
    namespace = {"np": np, "numba": numba}
    exec(compile(src, f"<bench_refactor {kind} {units}>", "exec"), namespace)
    return namespace["kernel"]


# -- Worker ------------------------------------------------------------------


def worker(tree: str, size: int, units: int, repeats: int) -> dict:
    import gc
    import time
    import timeit

    sys.path.insert(0, tree)
    import numba

    import numba_loopopt  # from ``tree``: the path is set above

    where = os.path.realpath(numba_loopopt.__file__)
    assert where.startswith(os.path.realpath(tree) + os.sep), where

    def compile_time(decorate, func, args) -> tuple[float, object]:
        gc.disable()
        try:
            start = time.process_time()
            disp = decorate(func)
            disp.compile(tuple(numba.typeof(a) for a in args))
            return time.process_time() - start, disp
        finally:
            gc.enable()

    rng = np.random.default_rng(0)
    warm = np.ones(3)
    compile_time(numba.njit, two_loops, (warm, warm, warm))
    compile_time(numba_loopopt.jit, two_loops, (warm, warm, warm))
    out: dict = {"package": where, "compile": {}, "run": {}}
    for kind in UNITS:
        args = (np.ones(8), 8)
        stock, _ = compile_time(numba.njit, generated(kind, units), args)
        mine, disp = compile_time(numba_loopopt.jit, generated(kind, units), args)
        out["compile"][f"{kind}{units}"] = (stock, mine)
    for key, (func, make) in RUN_KERNELS.items():
        args = make(size, rng)
        stock_c, stock = compile_time(numba.njit, func, args)
        mine_c, mine = compile_time(numba_loopopt.jit, func, args)
        out["compile"][key] = (stock_c, mine_c)
        ref = stock(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
        got = mine(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
        assert np.array_equal(np.asarray(ref), np.asarray(got)), (key, ref, got)
        best = {}
        for role, disp in (("stock", stock), ("loopopt", mine)):
            timer = timeit.Timer(lambda disp=disp, args=args: disp(*args))
            number = 1
            while timer.timeit(number) < 0.005:
                number *= 2
            best[role] = min(timer.repeat(repeats, number)) / number
        out["run"][key] = (best["stock"], best["loopopt"])
    return out


# -- Driver ------------------------------------------------------------------


def run_worker(spec: tuple[str, str, dict], args) -> dict:
    label, tree, env = spec
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", tree, "--size",
           str(args.size), "--units", str(args.units), "--repeats", str(args.repeats)]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd="/",
                            env={**os.environ, **env}, check=False)
    if result.returncode != 0:
        raise SystemExit(f"worker for {label} failed:\n{result.stderr}")
    return json.loads(result.stdout.splitlines()[-1])


def parse_spec(text: str) -> tuple[str, str, dict]:
    label, _, rest = text.partition("=")
    tree, *pairs = rest.split(",")
    env = dict(p.split("=", 1) for p in pairs)
    return label, tree, env


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", metavar="LABEL=PATH[,VAR=VALUE]")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=10**5)
    parser.add_argument("--units", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--worker", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.size, args.units, args.repeats)))
        return 0
    specs = [parse_spec(s) for s in args.specs]
    if len(specs) < 2:
        parser.error("give at least two checkouts, LABEL=PATH")
    best: dict = {}
    for r in range(args.rounds):
        for spec in (specs if r % 2 == 0 else specs[::-1]):
            res = run_worker(spec, args)
            print(f"round {r + 1}: {spec[0]} ({res['package']})", file=sys.stderr)
            for part in ("compile", "run"):
                for key, pair in res[part].items():
                    held = best.setdefault((spec[0], part, key), list(pair))
                    best[(spec[0], part, key)] = [min(a, b) for a, b
                                                  in zip(held, pair, strict=True)]
    labels = [s[0] for s in specs]
    first = labels[0]
    print(f"python {' '.join(sys.argv)}")
    print(f"rounds {args.rounds}, size {args.size}, units {args.units}; minimums")
    for part, unit, scale in (("compile", "s", 1.0), ("run", "us", 1e6)):
        keys = [k for (lab, p, k) in best if lab == first and p == part]
        head = (["kernel"] + [f"stock {lab}" for lab in labels]
                + [f"loopopt {lab} ({unit})" for lab in labels]
                + [f"{lab}/{first}" for lab in labels[1:]]
                + [f"loopopt/stock {lab}" for lab in labels])
        print(f"\n{part} time")
        print(" | ".join(head))
        for key in keys:
            stock = [best[(lab, part, key)][0] for lab in labels]
            mine = [best[(lab, part, key)][1] for lab in labels]
            row = [key]
            row += [f"{t * scale:.3f}" for t in stock + mine]
            row += [f"{t / mine[0]:.2f}" for t in mine[1:]]
            row += [f"{m / s:.2f}" for m, s in zip(mine, stock, strict=True)]
            print(" | ".join(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
