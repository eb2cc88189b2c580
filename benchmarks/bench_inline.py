"""Compile time of the inline pass, against stock numba, measured in one run.

Run::

    python benchmarks/bench_inline.py            # min of 5 fresh compilations
    python benchmarks/bench_inline.py --repeats 3

Kernels (targets from the inlining issue; informational, the script exits 0):

* ``200 calls``: a function with 200 call sites of a small ``@njit`` helper,
  all inlined: at most 2x the stock compile time.
* ``fact``/``fib``/``even-odd`` compiled through ``LoopOptPipeline`` with
  ``inline.max_depth=4``: recursive functions, at most 5x stock.
* ``main calls fib``: a doubly recursive callee inlined 4 levels deep into its
  caller (15 copies of ``fib``, 16 calls left at the bound).

Every measurement compiles a *fresh* dispatcher for a freshly created
function (``exec`` of the source), stock and optimised interleaved, and keeps
the minimum; the results are checked against stock numba first.
"""

from __future__ import annotations

import argparse
import math
import time

import numba
from numba import types

import numba_loopopt as lo

HELPER = "@numba.njit\ndef helper(x, y):\n    return x * 2.0 + y\n"
MANY = HELPER + "def kernel(a, b):\n    s = 0.0\n" + "".join(
    f"    s += helper(a + {k}.0, b)\n" for k in range(200)) + "    return s\n"
FACT = ("def kernel(n):\n    if n <= 1:\n        return 1\n"
        "    return n * kernel(n - 1)\n")
FIB = ("def kernel(n):\n    if n < 2:\n        return n\n"
       "    return kernel(n - 1) + kernel(n - 2)\n")
EVEN_ODD = ("def kernel(n):\n    if n == 0:\n        return True\n    return odd(n - 1)\n"
            "def odd(n):\n    if n == 0:\n        return False\n    return kernel(n - 1)\n")
MAIN_FIB = ("@numba.njit\ndef fib(n):\n    if n < 2:\n        return n\n"
            "    return fib(n - 1) + fib(n - 2)\n"
            "def kernel(n):\n    return fib(n) + 1\n")

DEPTH4 = {"inline": {"max_depth": 4}}

#: label, source, signature, arguments, options, target ratio
CASES = [
    ("200 calls to a helper", MANY, (types.float64, types.float64), (1.0, 2.0), None, 2.0),
    ("fact, max_depth=4", FACT, (types.int64,), (12,), DEPTH4, 5.0),
    ("fib, max_depth=4", FIB, (types.int64,), (15,), DEPTH4, 5.0),
    ("even/odd, max_depth=4", EVEN_ODD, (types.int64,), (9,), DEPTH4, 5.0),
    ("main calls fib, max_depth=4", MAIN_FIB, (types.int64,), (15,), DEPTH4, 5.0),
]


def build(source: str, decorate):
    """Fresh functions from ``source``; ``kernel`` and any undecorated
    companions (``odd``) get ``decorate``."""
    namespace = {"numba": numba}
    exec(compile(source, "<bench_inline>", "exec"), namespace)
    for name, value in list(namespace.items()):
        if callable(value) and getattr(value, "__module__", None) is None \
                and not hasattr(value, "py_func") and name != "numba":
            namespace[name] = decorate(value)
    return namespace["kernel"]


def compile_time(source, sig, decorate) -> float:
    kernel = build(source, decorate)
    start = time.perf_counter()
    kernel.compile(sig)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print("numba_loopopt inline benchmark: compile time, fresh dispatchers, "
          f"min of {args.repeats}, stock and optimised interleaved")
    print(f"{'kernel':32s} {'stock (ms)':>10s} {'loopopt (ms)':>12s} {'ratio':>6s} "
          f"{'target':>7s}  result  remarks")
    met = 0
    for label, source, sig, sample, options, target in CASES:
        stock_deco = numba.njit
        opt_deco = lo.jit(options=options)
        stock, opt = build(source, stock_deco), build(source, opt_deco)
        expected, got = stock(*sample), opt(*sample)
        if expected != got:
            raise AssertionError(f"{label}: loopopt returned {got!r}, stock {expected!r}")
        keys = {}
        for sig_remarks in lo.remarks(opt).values():
            for r in sig_remarks:
                keys[r.key] = keys.get(r.key, 0) + 1
        best = {"stock": math.inf, "opt": math.inf}
        for r in range(args.repeats):
            order = (("stock", stock_deco), ("opt", opt_deco))
            for name, deco in order if r % 2 == 0 else reversed(order):
                best[name] = min(best[name], compile_time(source, sig, deco))
        ratio = best["opt"] / best["stock"]
        ok = ratio <= target
        met += ok
        shown = ", ".join(f"{k} x{n}" for k, n in keys.items())
        print(f"{label:32s} {best['stock'] * 1e3:10.1f} {best['opt'] * 1e3:12.1f} "
              f"{ratio:6.2f} {'<= ' + format(target, 'g'):>7s}  "
              f"{'PASS' if ok else 'FAIL':6s}  {shown}")
    print(f"\n{met}/{len(CASES)} targets met (informational)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
