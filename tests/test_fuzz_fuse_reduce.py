"""Differential fuzzing of the fuse-reduce pass.

A hypothesis strategy writes kernels that reduce an elementwise expression
(operators, ufuncs, scalars, constants, length-1 broadcasting) or a gather,
of arrays of float64, float32, int64, int32, uint8, complex128 or booleans,
in one or two dimensions, with one to three of ``sum``, ``prod``, ``mean``,
``min``, ``max``, ``any``, ``all``, ``argmin``, ``argmax`` (and for 2-D,
``sum(axis=0)``, ``sum(axis=1)``), sometimes through a named intermediate that
also escapes (and is changed after its reductions), or whose input is written
before the reduction, or with a statement between the expression and its
reductions: an in-place operator through an alias or a transpose, a store
through a view, a ufunc with an output argument (positional or ``out=``), an
integer division that may raise, a list append.  Each is compiled with stock
``numba.njit`` and ``numba_loopopt.jit`` and run on data with NaNs,
signalling NaNs, zeros, infinities and empty arrays, and on operands whose
broadcast result is too big to allocate; results, exceptions (type and
message, in the same order) and the arguments afterwards must agree bit for
bit (``conftest.run_both``).

Default run: 25 derandomised examples.  Long run::

    LOOPOPT_FUZZ_EXAMPLES=2000 python -m pytest -m slow tests/test_fuzz_fuse_reduce.py
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import tempfile
from collections import Counter

import numpy as np
import pytest
from conftest import run_both
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba import njit

import numba_loopopt as lo

LEAVES = ["a", "b", "c", "s", "2.0", "0.5", "3"]
#: Statements put between an expression and its reductions: writes through
#: aliases, views and a ufunc's output; an exception; a side effect.
BETWEEN = {
    "alias_inplace": ["u = t", "u *= u"],
    "transpose_inplace": ["u = t.T", "u *= u"],
    "view_store": ["u = t[1:]", "u[:1] = u[:1] * 2"],
    "ufunc_out": ["np.multiply(t, t, t)"],
    "ufunc_out_keyword": ["np.multiply(t, t, out=t)"],
    "raise_between": ["x = 1 // int(s)"],
    "append_between": ["lst.append(1.5)"],
}
BINARY = ["+", "-", "*", "/", "**"]
UNARY = ["np.sqrt(np.abs({}))", "np.exp(-np.abs({}))", "-({})", "np.abs({})",
         "np.maximum({}, 0.25)"]
REDUCTIONS = ["sum", "max", "min", "mean", "prod", "any", "all", "argmin", "argmax"]
#: Element types of the array arguments (the scalar ``s`` stays a float).
DTYPES = ["float64", "float64", "float32", "int64", "int32", "uint8", "complex128", "bool_"]


@st.composite
def expressions(draw, depth=3):
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(LEAVES[:4] if depth == 3 else LEAVES))
    if draw(st.booleans()):
        op = draw(st.sampled_from(BINARY))
        lhs, rhs = draw(expressions(depth=depth - 1)), draw(expressions(depth=depth - 1))
        if op == "**":
            rhs = draw(st.sampled_from(["2", "3", "0.5"]))
        return f"({lhs} {op} {rhs})"
    return draw(st.sampled_from(UNARY)).format(draw(expressions(depth=depth - 1)))


@st.composite
def kernels(draw):
    expr = draw(expressions())
    if "a" not in expr and "b" not in expr and "c" not in expr:
        expr = f"({expr} + a)"
    if draw(st.integers(0, 4)) == 0:
        expr = "a[idx]"
    reds = draw(st.lists(st.sampled_from(REDUCTIONS), min_size=1, max_size=3))
    shape = draw(st.sampled_from(["direct", "named", "escapes", "written",
                                  "changed_after", *BETWEEN]))
    dtype = draw(st.sampled_from(DTYPES))
    ndim = draw(st.sampled_from([1, 1, 2]))
    if ndim == 2:
        reds += draw(st.lists(st.sampled_from(["sum(axis=0)", "sum(axis=1)"]), max_size=2))
    names = "".join(v for v in "abc" if re.search(rf"\b{v}\b", expr)) or "-"
    lines = [f"# dtype: {dtype} ndim: {ndim} shape: {shape} operands: {names} "
             f"bare: {int(expr in LEAVES)}",
             "def kernel(a, b, c, s, idx, lst):"]
    calls = [f"t.{r}" if "(" in r else f"t.{r}()" for r in reds]
    if shape in BETWEEN:
        # A statement between the expression (or its first reduction) and
        # the other reductions: a write through an alias, a ufunc's output,
        # an exception, a list append.
        lines.append(f"    t = {expr}")
        at = draw(st.integers(0, 1 if len(calls) > 1 else 0))
        lines += [f"    r{k} = {call}" for k, call in enumerate(calls[:at])]
        lines += ["    " + line for line in BETWEEN[shape]]
        lines += [f"    r{k} = {call}" for k, call in enumerate(calls) if k >= at]
        results = ", ".join(f"r{k}" for k in range(len(calls)))
        extra = ", x" if shape == "raise_between" else ""
        lines.append(f"    return ({results}{extra},)")
    elif shape == "direct" and len(reds) == 1:
        lines.append(f"    return np.{reds[0]}({expr})")
    else:
        lines.append(f"    t = {expr}")
        if shape == "written":
            lines.append("    a[:1] = 7")  # a slice: 'a' may be empty
        results = ", ".join(f"t.{r}" if "(" in r else f"t.{r}()" for r in reds)
        if shape == "escapes":
            results += ", t"
        if shape == "changed_after":
            # (A slice: 't[0] = 1' into an empty array is out of bounds, which
            # corrupts the heap in stock numba too.)
            lines += [f"    r = ({results},)", "    t[:1] = 1", "    return r, t"]
        else:
            lines.append(f"    return ({results},)")
    return "\n".join(lines) + "\n"


def datasets():
    rng = np.random.default_rng(3)
    n = 9
    base = rng.standard_normal(n)
    special = base.copy()
    special[[1, 4]] = [np.nan, 0.0]
    idx = np.array([0, 8, -1, 3, 3])
    yield (base, rng.standard_normal(n), rng.standard_normal(n), 1.5, idx)
    yield (special, rng.standard_normal(n), np.array([2.0]), -0.5, idx)
    yield (np.abs(base), np.full(n, np.inf), rng.standard_normal(n), 0.0, idx)
    yield (np.array([]), np.array([]), np.array([2.0]), 1.0, np.array([], dtype=np.int64))
    yield (base, rng.standard_normal(n - 1), rng.standard_normal(n), 1.0, idx)
    # Signalling NaNs (float64: the other types' data go through nan_to_num).
    snan = np.array([0x7FF0000000001111, 0xFFF0000000002222], dtype=np.uint64).view(
        np.float64)
    yield (np.concatenate([snan, base[:7]]), np.concatenate([base[:7], snan]),
           rng.standard_normal(n), 1.0, idx)


#: Kernel shapes that write none of their operands (the huge operands are
#: read-only views).
READ_ONLY = ("direct", "named", "escapes", "raise_between", "append_between")


def huge(dtype, ndim: int, operands: str):
    """Operands whose broadcast result numba cannot allocate, as read-only
    views of one element: 2**58 or 2**59 elements (a MemoryError), and in 2-D
    ``a`` and ``b`` broadcast to 2**62 elements (whose byte size overflows:
    ValueError('array is too big...'))."""
    wide = np.dtype(dtype).itemsize > 8
    shape = ((2**58,) if wide else (2**59,)) if ndim == 1 else (
        (2**29, 2**29) if wide else (2**30, 2**29))
    one = np.ones((1,) * ndim, dtype=dtype)
    yield tuple(np.broadcast_to(one, shape) for _ in range(3))
    if ndim == 2 and "c" not in operands and "a" in operands and "b" in operands:
        yield (np.broadcast_to(one, (2**31, 1)), np.broadcast_to(one, (1, 2**31)), one)


#: The list argument is a reflected list, which numba plans to deprecate.
pytestmark = pytest.mark.filterwarnings(
    "ignore::numba.core.errors.NumbaPendingDeprecationWarning")

_MODULES = tempfile.mkdtemp(prefix="loopopt_fuzz_reduce_")
STATS: Counter = Counter()


def load(source: str, number: int):
    path = os.path.join(_MODULES, f"fuzz_reduce_{number}.py")
    with open(path, "w") as fh:
        fh.write("import numpy as np\n\n" + source)
    spec = importlib.util.spec_from_file_location(f"fuzz_reduce_{number}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.kernel


def check(source: str) -> None:
    STATS["programs"] += 1
    kernel = load(source, STATS["programs"])
    header = source.split("\n", 1)[0].split()
    dtype, ndim = getattr(np, header[2]), int(header[4])
    for a, b, c, s, idx in datasets():
        with np.errstate(all="ignore"):
            a, b, c = (np.nan_to_num(x).astype(dtype) if dtype != np.float64 else x
                       for x in (a, b, c))
        if ndim == 2:
            # 9 elements as 3x3; 8 as 2x4 (a broadcast error); 1 as 1x1.
            a, b, c = (x.reshape({9: (3, 3), 8: (2, 4), 1: (1, 1), 0: (0, 3)}[x.size])
                       for x in (a, b, c))
            # Rows of a 3x3 array: an index past 2 would read out of bounds,
            # undefined in stock numba too (no boundscheck).
            idx = np.clip(idx, -3, 2).reshape(1, -1)
        disp = run_both(kernel, a, b, c, s, idx, [0.0])
    if header[6] in READ_ONLY and header[10] == "0" and header[8] != "-" \
            and "a[idx]" not in source:
        # A result too big to allocate: stock raises at once, and so must the
        # fused loop (not start 2**59 iterations).  No deep copy: the views
        # would be materialised.  (A bare operand has no temporary: stock
        # would reduce it for ever; nor has an expression of scalars.)
        for a, b, c in huge(dtype, ndim, header[8]):
            results = []
            for each in (njit(kernel), lo.jit(kernel)):
                try:
                    each(a, b, c, 1.0, idx, [0.0])
                    results.append(None)
                except Exception as exc:  # noqa: BLE001 - comparing exceptions
                    results.append((type(exc), str(exc)))
            assert results[0] == results[1] and results[0] is not None, results
            STATS["huge"] += 1
    keys = {r.key for rs in lo.remarks(disp).values() for r in rs}
    STATS["fused"] += "Fused" in keys
    assert not keys & {"InternalError", "StockFallback"}, (source, keys)


def _run(examples: int, derandomize: bool):
    @settings(max_examples=examples, deadline=None, derandomize=derandomize,
              suppress_health_check=list(HealthCheck), database=None)
    @given(kernels())
    def fuzz(source):
        try:
            check(source)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- kernel ---\n{source}") from exc

    fuzz()


def test_fuzz_bounded():
    STATS.clear()
    _run(25, derandomize=True)
    assert STATS["fused"] >= STATS["programs"] // 5, STATS


@pytest.mark.slow
def test_fuzz_long():
    examples = os.environ.get("LOOPOPT_FUZZ_EXAMPLES")
    if not examples:
        pytest.skip("long fuzzing run: set LOOPOPT_FUZZ_EXAMPLES")
    STATS.clear()
    _run(int(examples), derandomize=False)
    print(f"\nfuse-reduce fuzz: {dict(STATS)}")
