"""The global_arrays_by_address option: large constant arrays referenced by
address instead of copied into the compiled code."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import weakref

import numpy as np
import pytest
from conftest import run_both
from numba import njit

import numba_loopopt as lo
from numba_loopopt import OptionError, Options
from numba_loopopt.global_arrays import arrays_by_address

BY_ADDRESS = {"global_arrays_by_address": 65536}

#: 0.9 MB: below numba's 1 MB limit, so stock numba freezes it into the code.
G = np.arange(112_500, dtype=np.float64) * 0.5
SMALL = np.arange(100, dtype=np.float64)


def read_global(i):
    return G[i] + G[-1 - i]


def read_both(i):
    return G[i] * SMALL[i % 100]


def llvm(disp) -> str:
    return disp.inspect_llvm(disp.signatures[0])


def test_results_equal_stock():
    for i in (0, 7, 112_499):
        run_both(read_global, i, options=BY_ADDRESS)
        run_both(read_both, i, options=BY_ADDRESS)


def test_large_array_is_referenced_by_address_and_the_ir_is_small():
    stock = njit(read_global)
    opt = lo.jit(options=BY_ADDRESS)(read_global)
    assert opt(3) == stock(3)
    frozen, small = llvm(stock), llvm(opt)
    assert ".const.array.data" in frozen and len(frozen) > 1_000_000
    assert ".const.array.data" not in small and "numba.dynamic.globals" in small
    assert len(small) < 50_000


def test_arrays_up_to_the_threshold_stay_frozen():
    opt = lo.jit(options=BY_ADDRESS)(read_both)
    opt(3)
    library = opt.overloads[opt.signatures[0]].library
    # SMALL (800 bytes) is copied into the code, G referenced by address.
    assert ".const.array.data" in llvm(opt)
    assert [nbytes for _, nbytes in library._loopopt_arrays_by_address] == [G.nbytes]


def test_default_keeps_numbas_behaviour():
    disp = lo.jit(read_global)
    disp(3)
    assert ".const.array.data" in llvm(disp)
    assert not disp.overloads[disp.signatures[0]].library.has_dynamic_globals


def test_threshold_zero_references_every_array_by_address():
    def small(i):
        return SMALL[i]

    disp = lo.jit(options={"global_arrays_by_address": 0})(small)
    assert disp(5) == 5.0
    assert ".const.array.data" not in llvm(disp)


def test_remark_names_each_array_by_address():
    disp = lo.jit(options=BY_ADDRESS)(read_both)
    disp(1)
    found = [r for r in lo.remarks(disp, disp.signatures[0]) if r.key == "ArrayByAddress"]
    assert len(found) == 1
    remark = found[0]
    assert remark.kind is lo.RemarkKind.ANALYSIS
    assert remark.arguments == {"array": "G", "nbytes": G.nbytes, "threshold": 65536}
    assert remark.line == read_both.__code__.co_firstlineno + 1


PAIR = (G, SMALL)


def read_tuple(i):
    return PAIR[0][i] + PAIR[1][i % 100]


def test_arrays_inside_a_global_tuple():
    disp = run_both(read_tuple, 99_999, options=BY_ADDRESS)
    assert ".const.array.data" in llvm(disp)  # SMALL, still copied
    found = [r for r in lo.remarks(disp, disp.signatures[0]) if r.key == "ArrayByAddress"]
    assert [r.arguments["array"] for r in found] == [""]
    assert found[0].message.startswith("a constant array (0.9 MB")


def make_reader():
    namespace = {"A": np.full(112_500, 3.0)}
    exec("def reader(i):\n    return A[i]\n", namespace)
    return namespace


def test_the_code_sees_later_changes_to_the_array():
    ns = make_reader()
    opt = lo.jit(options=BY_ADDRESS)(ns["reader"])
    stock = njit(ns["reader"])
    assert opt(1) == stock(1) == 3.0
    ns["A"][1] = 5.0
    # A frozen copy keeps the old value; the array itself has the new one.
    assert stock(1) == 3.0 and opt(1) == 5.0


def test_array_is_kept_alive_while_the_code_is():
    ns = make_reader()
    opt = lo.jit(options=BY_ADDRESS)(ns["reader"])
    assert opt(2) == 3.0
    # The code library holds it (numba's own IR, kept with the overload, does
    # too, but a library lives on in every function that links it).
    held = opt.overloads[opt.signatures[0]].library._loopopt_arrays_by_address
    assert len(held) == 1 and held[0][0] is ns["A"]
    ref = weakref.ref(ns["A"])
    ns["A"] = None  # the module no longer holds it
    gc.collect()
    assert ref() is not None
    junk = [np.full(112_500, -1.0) for _ in range(20)]  # reuse freed memory, if any
    assert opt(2) == 3.0
    del junk


def test_closure_and_strided_arrays():
    base = np.arange(300_000, dtype=np.float64)
    strided = base[::2]  # not contiguous: by address in stock numba too

    def make(arr):
        def f(i):
            return arr[i] + strided[i]
        return f

    disp = run_both(make(np.arange(112_500.0)), 11, options=BY_ADDRESS)
    assert ".const.array.data" not in llvm(disp)
    held = disp.overloads[disp.signatures[0]].library._loopopt_arrays_by_address
    assert {nbytes for _, nbytes in held} == {900_000, strided.nbytes}


def test_a_private_context_per_compilation():
    disp = lo.jit(read_global)
    disp(0)
    ctx = disp.targetctx
    copy = arrays_by_address(ctx, 100)
    assert copy is not ctx and type(copy) is not type(ctx) and isinstance(copy, type(ctx))
    # Subroutines it compiles may hold arrays by address: never in numba's cache.
    assert copy.cached_internal_func is not ctx.cached_internal_func
    assert arrays_by_address(ctx, 100).cached_internal_func is copy.cached_internal_func
    assert ctx.make_constant_array.__func__ is type(ctx).make_constant_array


@pytest.mark.parametrize("value, message", [
    ("1MB", "'global_arrays_by_address' must be of type int or None, got str"),
    (-1, "'global_arrays_by_address' must be >= 0, got -1"),
    (True, "'global_arrays_by_address' must be of type int or None, got bool"),
    (1.5, "'global_arrays_by_address' must be of type int or None, got float"),
])
def test_bad_option_values(value, message):
    with pytest.raises(OptionError, match=message):
        Options(global_arrays_by_address=value)
    with pytest.raises(OptionError, match=message):
        lo.jit(options={"global_arrays_by_address": value})


def test_environment_variable():
    var = "NUMBA_LOOPOPT_GLOBAL_ARRAYS_BY_ADDRESS"
    assert Options().with_environment({var: "4096"}).global_arrays_by_address == 4096
    assert Options(global_arrays_by_address=5).with_environment(
        {var: "none"}).global_arrays_by_address is None
    assert Options(global_arrays_by_address=5).with_environment(
        {var: ""}).global_arrays_by_address == 5
    # NUMBA_LOOPOPT_DISABLE compiles as stock numba does: nothing by address.
    assert Options().with_environment(
        {var: "4096", "NUMBA_LOOPOPT_DISABLE": "1"}).global_arrays_by_address is None
    for bad in ("1MB", "-3", "1.5"):
        with pytest.raises(OptionError, match=f"{var}='{bad}' must be a size in bytes"):
            Options().with_environment({var: bad})


# ---------------------------------------------------------------------------
# cache=True, across processes
# ---------------------------------------------------------------------------

MODULE = textwrap.dedent('''
    import os
    import numpy as np
    import numba_loopopt as lo

    G = np.arange(112_500, dtype=np.float64) * 0.5
    threshold = os.environ.get("THRESHOLD")
    options = {} if threshold is None else {
        "global_arrays_by_address": None if threshold == "none" else int(threshold)}

    @lo.jit(cache=True, options=options)
    def cached(i):
        return G[i] + 1.0
''')

REPORT = textwrap.dedent('''
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from large_globals_kernels import cached
        value = cached(10)
    print(value, cached.stats.cache_hits and "hit" or "miss")
    for w in caught:
        if "cache" in str(w.message):
            print(type(w.message).__name__, w.message)
''')


@pytest.fixture
def cache_env(tmp_path):
    (tmp_path / "large_globals_kernels.py").write_text(MODULE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    for var in ("NUMBA_LOOPOPT_DISABLE", "NUMBA_LOOPOPT_GLOBAL_ARRAYS_BY_ADDRESS",
                "THRESHOLD"):
        env.pop(var, None)
    return env, tmp_path


def report(env, cwd, **extra) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", REPORT], capture_output=True,
                          text=True, env=dict(env, **extra), cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_cache_refuses_code_holding_arrays_by_address(cache_env):
    env, tmp = cache_env
    first = report(env, tmp, THRESHOLD="65536")
    again = report(env, tmp, THRESHOLD="65536")
    assert first[0] == again[0] == "6.0 miss"
    for lines in (first, again):
        assert len(lines) == 2 and lines[1].startswith(
            'NumbaWarning numba_loopopt: cannot cache compiled function "cached": '
            "with global_arrays_by_address it references 1 global array(s) (0.9 MB) "
            "by address")
    # Nothing was saved but the index.
    assert not list((tmp / "cache").rglob("*.nbc"))


def test_cache_works_when_no_array_is_above_the_threshold(cache_env):
    env, tmp = cache_env
    assert report(env, tmp, THRESHOLD="1000000") == ["6.0 miss"]
    assert report(env, tmp, THRESHOLD="1000000") == ["6.0 hit"]
    # Another threshold is another cache entry: compiled (and refused) afresh.
    refused = report(env, tmp, THRESHOLD="65536")
    assert refused[0] == "6.0 miss" and "cannot cache" in refused[1]


def test_cache_refusal_through_the_environment_variable(cache_env):
    env, tmp = cache_env
    assert report(env, tmp) == ["6.0 miss"]
    assert report(env, tmp) == ["6.0 hit"]
    by_env = report(env, tmp, NUMBA_LOOPOPT_GLOBAL_ARRAYS_BY_ADDRESS="65536")
    assert by_env[0] == "6.0 miss" and "cannot cache" in by_env[1]
    # DISABLE wins over the variable: compiled as stock, cached in its own entry.
    disabled = dict(NUMBA_LOOPOPT_GLOBAL_ARRAYS_BY_ADDRESS="65536",
                    NUMBA_LOOPOPT_DISABLE="1")
    assert report(env, tmp, **disabled) == ["6.0 miss"]
    assert report(env, tmp, **disabled) == ["6.0 hit"]
