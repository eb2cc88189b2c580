"""Benchmark the fuse-reduce pass: reductions of expressions and gathers.

Run::

    python benchmarks/bench_fuse_reduce.py            # 1e7 elements
    python benchmarks/bench_fuse_reduce.py --quick    # 1e6 elements, fewer rounds

Per kernel, in one process, interleaved, min of rounds (the timing helper of
``bench_while_to_range.py``): stock ``numba.njit``, ``parallel=True`` on one
thread, NumPy, numexpr (if installed), ``numba_loopopt.jit`` and a
hand-written fused loop.  Targets from the fuse-reduce issue (informational,
the script exits 0): ``np.sum(a*b+c)`` at least 5x stock, within 1.05x of the
hand loop and at least 80% of the memory-bandwidth floor (bytes read over the
streaming rate of NumPy's ``a.sum()`` measured in the same run); ``t.sum(), t.max(),
t.min()`` within 1.15x of the hand loop; ``x[idx].sum()`` at least 1.8x stock;
with reassociation allowed (``options={"fuse_reduce": {"reassociate": True}}``
or ``fastmath=True``), ``np.sum(a*b+c)`` at 1e5 elements at least 2.5x faster
than the sequential fused loop.
"""

from __future__ import annotations

import argparse

import numba
import numpy as np
from bench_while_to_range import interleaved_min

import numba_loopopt as lo
from numba_loopopt.cli.bench import gather, hand_gather

try:
    import numexpr
except ImportError:  # optional
    numexpr = None


def sum_expr(a, b, c):
    return np.sum(a * b + c)


def hand_sum_expr(a, b, c):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i] + c[i]
    return s


def three(a, b):
    t = a * b
    return t.sum(), t.max(), t.min()


def hand_three(a, b):
    s = 0.0
    mx = -np.inf
    mn = np.inf
    for i in range(a.shape[0]):
        v = a[i] * b[i]
        s += v
        mx = max(mx, v)
        mn = min(mn, v)
    return s, mx, mn


def stream(a):
    return a.sum()


def numpy_sum_expr(a, b, c):
    return np.sum(a * b + c)


def candidates(py_func, hand, numpy_impl=None, numexpr_src=None):
    parallel = numba.njit(parallel=True)(py_func)
    cands = {"stock": numba.njit(py_func), "parallel=True, 1 thread": parallel,
             "loopopt": lo.jit(py_func), "hand loop": numba.njit(hand)}
    if numpy_impl is not None:
        cands["NumPy"] = numpy_impl
    if numexpr is not None and numexpr_src is not None:
        cands["numexpr"] = lambda *args: numexpr.evaluate(
            numexpr_src, local_dict=dict(zip("abc", args, strict=False)))
    return cands


def run(title, cands, args, repeats, targets, extra=None, exact=("loopopt",)):
    expected = cands["stock"](*args)
    for name in exact:
        got = cands[name](*args)
        if not np.array_equal(np.asarray(expected), np.asarray(got)):
            raise AssertionError(f"{title}: {name} {got!r} != stock {expected!r}")
    for name, f in cands.items():  # the others may reorder: close, not equal
        np.testing.assert_allclose(np.asarray(f(*args), dtype=float),
                                   np.asarray(expected, dtype=float), rtol=1e-9,
                                   err_msg=f"{title}: {name}")
    numba.set_num_threads(1)
    best, _ = interleaved_min({k: (lambda f=f: f(*args)) for k, f in cands.items()},
                              repeats, 0.02)
    print(f"\n== {title}")
    for name, t in best.items():
        print(f"   {name:28s} {t * 1e3:9.2f} ms   {t / best['loopopt']:6.2f}x loopopt")
    for label, (num, den, op, target) in targets.items():
        value = best[num] / best[den] if den else num(best)
        ok = value >= target if op == ">=" else value <= target
        print(f"   {label:40s} {value:6.2f} {op} {target:<5g} {'PASS' if ok else 'FAIL'}")
    remarks = lo.remarks(cands["loopopt"])
    for sig_remarks in remarks.values():
        for r in sig_remarks:
            print(f"   remark: {r}")
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size", type=int)
    args = parser.parse_args(argv)
    n = args.size or (10**6 if args.quick else 10**7)
    repeats = 5 if args.quick else 9
    rng = np.random.default_rng(0)
    a, b, c = rng.random(n), rng.random(n), rng.random(n)
    idx = rng.integers(0, n, n)
    print(f"numba_loopopt fuse-reduce benchmark, {n:,} float64 elements, min of "
          f"{repeats} interleaved rounds, one thread")

    # NumPy's a.sum() (pairwise, vectorised) streams memory; numba's sequential
    # sum is bound by its chain of additions, not by memory, and would set the
    # floor too low.
    streaming = interleaved_min({"a.sum()": lambda: stream(a)}, repeats, 0.02)[0]["a.sum()"]
    rate = a.nbytes / streaming
    print(f"streaming rate of NumPy's a.sum(): {rate / 1e9:.1f} GB/s")
    floor = 3 * a.nbytes / rate
    run("np.sum(a*b + c)",
        candidates(sum_expr, hand_sum_expr, numpy_sum_expr, "sum(a*b+c)"), (a, b, c),
        repeats, {"stock / loopopt": ("stock", "loopopt", ">=", 5),
                  "loopopt / hand": ("loopopt", "hand loop", "<=", 1.05),
                  "bandwidth floor / loopopt": (lambda best: floor / best["loopopt"],
                                                None, ">=", 0.8)})
    run("t = a*b; t.sum(), t.max(), t.min()", candidates(three, hand_three), (a, b),
        repeats, {"loopopt / hand": ("loopopt", "hand loop", "<=", 1.15),
                  "stock / loopopt": ("stock", "loopopt", ">=", 1)})
    run("x[idx].sum()", candidates(gather, hand_gather), (a, idx), repeats,
        {"stock / loopopt": ("stock", "loopopt", ">=", 1.8)})
    # Reassociation allowed, data in cache: several accumulators vectorise.
    m = 10**5
    small = (a[:m].copy(), b[:m].copy(), c[:m].copy())
    cands = candidates(sum_expr, hand_sum_expr, numpy_sum_expr, "sum(a*b+c)")
    cands["loopopt, reassociate=True"] = lo.jit(
        options={"fuse_reduce": {"reassociate": True}})(sum_expr)
    cands["loopopt, fastmath=True"] = lo.jit(fastmath=True)(sum_expr)
    run(f"np.sum(a*b + c), {m:,} elements (in cache), reassociation allowed", cands, small,
        repeats, {"loopopt / reassociate=True": ("loopopt", "loopopt, reassociate=True",
                                                 ">=", 2.5),
                  "loopopt / fastmath=True": ("loopopt", "loopopt, fastmath=True", ">=", 2.5)},
        exact=("loopopt",))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
