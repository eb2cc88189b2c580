"""Compile time and LLVM IR size of a function reading many large global arrays.

Run::

    python benchmarks/bench_large_globals.py              # 50 arrays of 0.9 MB, 3 rounds
    python benchmarks/bench_large_globals.py --quick      # 10 arrays, 1 round
    python benchmarks/bench_large_globals.py --arrays 20 --nbytes 500000 --json out.json

The kernel returns ``G0[i] + G1[i] + ... + G49[i]``, each ``Gk`` a global
float64 array of 0.9 MB: under numba's 1 MB limit, so stock numba copies every
one into the LLVM module.  Candidates:

* ``stock``: ``numba.njit``;
* ``loopopt``: ``numba_loopopt.jit`` with default options (arrays copied too);
* ``by address``: ``numba_loopopt.jit(options={"global_arrays_by_address": 65536})``.

Each compilation runs in a fresh process (``--child``), after a small warm-up
compile there, so that one candidate's peak memory (``ru_maxrss``) is its own;
the rounds alternate the candidates and each keeps its fastest compile.  The
results of all three are compared (they must be equal) before anything is
reported.  Times are wall seconds of ``dispatcher.compile(sig)``; IR size is
``len(dispatcher.inspect_llvm(sig))`` in characters.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

CANDIDATES = {
    "stock": None,
    "loopopt": {},
    "by address": {"global_arrays_by_address": 65536},
}


def child(name: str, n_arrays: int, nbytes: int) -> dict:
    import numba
    import numpy as np
    from numba import types

    import numba_loopopt as lo

    options = CANDIDATES[name]
    decorate = numba.njit if options is None else lo.jit(options=options)
    # Warm numba's process-wide caches with a small global first.
    warm_ns = {"W": np.ones(4)}
    exec("def warm(i):\n    return W[i] + 1.0\n", warm_ns)
    decorate(warm_ns["warm"]).compile((types.int64,))

    elements = nbytes // 8
    namespace = {f"G{k}": np.arange(elements, dtype=np.float64) * (k + 1)
                 for k in range(n_arrays)}
    terms = " + ".join(f"G{k}[i]" for k in range(n_arrays))
    exec(f"def kernel(i):\n    return {terms}\n", namespace)
    disp = decorate(namespace["kernel"])
    start = time.perf_counter()
    disp.compile((types.int64,))
    seconds = time.perf_counter() - start
    sig = disp.signatures[0]
    ir_chars = len(disp.inspect_llvm(sig))
    result = disp(elements - 1)
    cres = disp.overloads[sig]
    return {"seconds": seconds, "ir_chars": ir_chars, "result": float(result),
            "dynamic_globals": bool(cres.library.has_dynamic_globals),
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(name: str, n_arrays: int, nbytes: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", name,
                           "--arrays", str(n_arrays), "--nbytes", str(nbytes)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="10 arrays, 1 round")
    p.add_argument("--arrays", type=int, default=None, help="number of arrays (50)")
    p.add_argument("--nbytes", type=int, default=900_000, help="bytes per array")
    p.add_argument("--rounds", type=int, default=None, help="rounds (3, 1 with --quick)")
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--child", choices=sorted(CANDIDATES), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    n_arrays = args.arrays or (10 if args.quick else 50)
    if args.child:
        print(json.dumps(child(args.child, n_arrays, args.nbytes)))
        return 0
    rounds = args.rounds or (1 if args.quick else 3)
    import numba

    import numba_loopopt as lo

    print("numba_loopopt large-globals benchmark")
    print(f"python {platform.python_version()}, numba {numba.__version__}, "
          f"numba_loopopt {lo.__version__}; {n_arrays} global float64 arrays of "
          f"{args.nbytes / 1e6:g} MB, each compile in a fresh process, best of {rounds}")
    best: dict[str, dict] = {}
    names = list(CANDIDATES)
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            got = run_child(name, n_arrays, args.nbytes)
            if name not in best or got["seconds"] < best[name]["seconds"]:
                best[name] = got
    results = {b["result"] for b in best.values()}
    if len(results) != 1:
        raise AssertionError(f"the candidates returned different results: {best}")
    stock = best["stock"]
    print(f"\n{'candidate':12s} {'compile (s)':>11s} {'vs stock':>8s} {'LLVM IR chars':>14s} "
          f"{'vs stock':>9s} {'peak RSS (MB)':>13s}  by address")
    for name in names:
        b = best[name]
        print(f"{name:12s} {b['seconds']:11.2f} {b['seconds'] / stock['seconds']:8.3f} "
              f"{b['ir_chars']:14,d} {b['ir_chars'] / stock['ir_chars']:9.5f} "
              f"{b['max_rss_mb']:13.0f}  {b['dynamic_globals']}")
    speedup = stock["seconds"] / best["by address"]["seconds"]
    print(f"\nby address: {speedup:.1f}x faster to compile, IR "
          f"{stock['ir_chars'] / best['by address']['ir_chars']:.0f}x smaller; "
          f"all results equal ({results.pop()})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"arrays": n_arrays, "nbytes": args.nbytes, "rounds": rounds,
                       "candidates": best}, fh, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
