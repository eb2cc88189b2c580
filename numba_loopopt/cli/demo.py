"""A short tour of numba_loopopt: ``python -m numba_loopopt demo``.

It compiles four kernels twice, with stock ``numba.njit`` and with
``numba_loopopt.jit``, checks that both give identical results, prints what
the passes did (the remarks) and how much faster the optimised version runs.

The kernels:

1. ``while i < n and not cond.item()``: the loop PyTensor's scan emits.  The
   flag ``cond`` never changes, but numba reloads it on every iteration, which
   keeps LLVM from unrolling the loop.  The while-to-range pass proves the flag
   invariant and removes its test from the loop.
2. The same loop with its state stored modulo the buffer length, as PyTensor
   stores scan states.  After the rewrite the counter's range is known, so the
   loop is also *versioned*: when one check before the loop shows that no index
   can wrap, a copy without the modulo runs.
3. A plain ``for`` loop: nothing to rewrite, no remarks, the same speed.
4. Two ``for i in range(n)`` loops: the first fills a temporary array, the
   second sums it.  Stock numba allocates the temporary and goes over memory
   twice; the fuse-loops pass makes one loop of the two and removes the
   temporary, so the values go straight from the first loop's computation to
   the sum (in the same order: the result is bit-identical).

Reading this file is a good way to learn the API; all of it is::

    import numba_loopopt as lo

    f_opt = lo.jit(f)                         # instead of numba.njit(f)
    f_opt(*args)                              # compiles, like any dispatcher
    for remark in lo.remarks(f_opt, f_opt.signatures[0]):
        print(remark)                         # file:line: [pass] Key: message
"""

from __future__ import annotations

import argparse
import inspect
import textwrap
import time

import numba
import numpy as np

from ..decorator import jit
from ..remarks import remarks

DEFAULT_STEPS = 5_000_000
DEFAULT_REPEATS = 5

# -- The kernels --------------------------------------------------------------
# The first three take a float64 buffer of length n + 1 and the number of
# steps n; the fourth takes three float64 arrays of length n.


def while_with_flag(buf, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[i + 1] = buf[i] + 1.0
        i += 1
    return i


def pytensor_scan(buf, n_steps):
    cond = np.array(False)
    L = len(buf)
    i = 0
    while i < n_steps and not cond.item():
        buf[(i + 1) % L] = buf[i % L] + 1.0
        i += 1
    return i


def plain_for(buf, n):
    for i in range(n):
        buf[i + 1] = 0.5 * buf[i] + 1.0
    return n


def fill_then_sum(a, b, c):
    n = a.shape[0]
    tmp = np.empty(n)
    for i in range(n):
        tmp[i] = a[i] * b[i] + c[i]
    s = 0.0
    for i in range(n):
        s += tmp[i]
    return s


def buffer_and_steps(steps: int) -> tuple:
    return np.zeros(steps + 1), steps


def three_arrays(steps: int) -> tuple:
    rng = np.random.default_rng(0)
    return tuple(rng.random(steps) for _ in range(3))


#: (title, kernel, make_args(steps) -> the kernel's arguments)
KERNELS = [
    ("while loop with a flag that never changes", while_with_flag, buffer_and_steps),
    ("PyTensor's scan: the same loop, state stored modulo the buffer length",
     pytensor_scan, buffer_and_steps),
    ("a plain for loop: nothing to rewrite", plain_for, buffer_and_steps),
    ("two loops through a temporary array: fill it, then sum it", fill_then_sum,
     three_arrays),
]

# -- Running them -------------------------------------------------------------


def call_time(func, args) -> float:
    """Seconds taken by one call."""
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def same_arrays(xs, ys) -> bool:
    return all(not isinstance(x, np.ndarray) or np.array_equal(x, y)
               for x, y in zip(xs, ys, strict=True))


def show_kernel(number: int, title: str, py_func, make_args, steps: int,
                repeats: int) -> tuple:
    """Compile, check, explain and time one kernel; returns (identical, speedup)."""
    print(f"\n[{number}/{len(KERNELS)}] {title}")
    print(textwrap.indent(inspect.getsource(py_func).rstrip(), "    | "))

    stock = numba.njit(py_func)
    optimised = jit(py_func)

    # Same inputs, then compare return values and the whole arrays.
    # (The first call compiles; benchmarks/ measures compile time properly.)
    stock_args, opt_args = make_args(steps), make_args(steps)
    stock_result = stock(*stock_args)
    opt_result = optimised(*opt_args)
    identical = stock_result == opt_result and same_arrays(stock_args, opt_args)
    print(f"  results: {'identical' if identical else 'DIFFERENT'} "
          f"(returned {opt_result}, stock numba returned {stock_result})")

    found = remarks(optimised, optimised.signatures[0])
    print("  remarks:" if found else "  remarks: none (nothing to rewrite)")
    for remark in found:
        print(f"    {remark}")

    # Time both, alternating, and keep each one's fastest call.
    stock_time = opt_time = float("inf")
    for _ in range(repeats):
        stock_time = min(stock_time, call_time(stock, stock_args))
        opt_time = min(opt_time, call_time(optimised, opt_args))
    speedup = stock_time / opt_time
    print(f"  {steps:,} steps: numba.njit {stock_time * 1e3:.1f} ms, "
          f"numba_loopopt.jit {opt_time * 1e3:.1f} ms -> {speedup:.2f}x")
    return identical, speedup


def run(steps: int = DEFAULT_STEPS, repeats: int = DEFAULT_REPEATS) -> int:
    """Run the demo; returns the exit status (1 if any result differed)."""
    print(f"numba_loopopt demo: stock numba.njit vs numba_loopopt.jit, {steps:,} "
          f"steps, best of {repeats} calls each")
    started = time.perf_counter()
    summary = []
    for number, (title, py_func, make_args) in enumerate(KERNELS, start=1):
        identical, speedup = show_kernel(number, title, py_func, make_args, steps,
                                         repeats)
        summary.append((py_func.__name__, identical, speedup))

    print("\nsummary (time of numba.njit / time of numba_loopopt.jit):")
    for name, identical, speedup in summary:
        print(f"  {name:18s} {speedup:5.2f}x   results "
              f"{'identical' if identical else 'DIFFERENT'}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0 if all(identical for _, identical, _ in summary) else 1


# -- Command line (used by ``python -m numba_loopopt demo``) -------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help=f"loop steps (array elements) per call "
                             f"(default {DEFAULT_STEPS:,})")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS,
                        help=f"timed calls per version (default {DEFAULT_REPEATS})")


def main(args: argparse.Namespace) -> int:
    if args.steps < 1 or args.repeats < 1:
        raise SystemExit("numba_loopopt demo: --steps and --repeats must be >= 1")
    return run(args.steps, args.repeats)
