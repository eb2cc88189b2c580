"""Differential fuzzing of the fuse-reduce pass.

A hypothesis strategy writes kernels that reduce an elementwise expression
(operators, ufuncs, scalars, constants, length-1 broadcasting) or a gather,
of arrays of float64, float32, int64, int32, uint8, complex128 or booleans,
in one or two dimensions, with one to three of ``sum``, ``prod``, ``mean``,
``min``, ``max``, ``any``, ``all``, ``argmin``, ``argmax`` (and for 2-D,
``sum(axis=0)``, ``sum(axis=1)``), sometimes through a named intermediate that
also escapes (and is changed after its reductions), or whose input is written
before the reduction.  Each is
compiled with stock ``numba.njit`` and ``numba_loopopt.jit`` and run on data
with NaNs, zeros, infinities and empty arrays; results and exception types
must agree bit for bit (``conftest.run_both``).

Default run: 25 derandomised examples.  Long run::

    LOOPOPT_FUZZ_EXAMPLES=2000 python -m pytest -m slow tests/test_fuzz_fuse_reduce.py
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from collections import Counter

import numpy as np
import pytest
from conftest import run_both
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numba_loopopt as lo

LEAVES = ["a", "b", "c", "s", "2.0", "0.5", "3"]
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
                                  "changed_after"]))
    dtype = draw(st.sampled_from(DTYPES))
    ndim = draw(st.sampled_from([1, 1, 2]))
    if ndim == 2:
        reds += draw(st.lists(st.sampled_from(["sum(axis=0)", "sum(axis=1)"]), max_size=2))
    lines = [f"# dtype: {dtype} ndim: {ndim}", "def kernel(a, b, c, s, idx):"]
    if shape == "direct" and len(reds) == 1:
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
        disp = run_both(kernel, a, b, c, s, idx)
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
