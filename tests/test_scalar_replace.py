"""The scalar-replace pass: 0-d arrays become scalars (issue 15).

Each test compiles with stock numba and with the loopopt pipeline and
compares bit for bit (``run_both``), then checks what the pass did through
its remarks and NRT allocation counts.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import remark_keys, run_both
from numba import njit
from numba.core.runtime import _nrt_python, rtsys

import numba_loopopt as lo
from numba_loopopt.options import OptionError, Options
from numba_loopopt.runtime import disjoint


@pytest.fixture
def allocations():
    """``allocations(f, *args)``: NRT allocations of one call (after a warm-up)."""
    _nrt_python.memsys_enable_stats()

    def count(f, *args):
        f(*args)
        before = rtsys.get_allocation_stats().alloc
        f(*args)
        return rtsys.get_allocation_stats().alloc - before
    yield count
    _nrt_python.memsys_disable_stats()


def accumulate(x):
    acc = np.zeros(())
    for i in range(x.shape[0]):
        acc[()] = acc[()] + x[i]
    return acc.item()


def flagged_copy(x, out):
    t = np.empty((), dtype=np.float64)
    c = np.array(False)
    n = x.shape[0]
    i = 0
    while i < n and not c.item():
        t[()] = x[i]
        u = t
        out[i] = u
        i += 1
    return i


def returned(x):
    acc = np.zeros(())
    for i in range(x.shape[0]):
        acc[()] += x[i]
    return acc


def count_to(n, buf):
    i = 0
    while i < n:
        buf[i % buf.shape[0]] = i
        i += 1
    return i


def test_a_0d_accumulator_becomes_a_scalar(allocations):
    x = np.random.default_rng(0).standard_normal(1000)
    disp = run_both(accumulate, x)
    assert "ScalarReplaced" in remark_keys(disp, "passed")
    small, large = np.zeros(10), np.zeros(10_000)
    assert allocations(disp, small) == allocations(disp, large) == 1  # the argument


def test_a_flag_and_a_temporary_dissolve_and_the_loop_is_counted():
    x = np.arange(7.0)
    disp = run_both(flagged_copy, x, np.zeros(7))
    keys = remark_keys(disp, "passed")
    assert keys.count("ScalarReplaced") == 2 and "Rewritten" in keys


def test_a_returned_0d_array_stays_and_the_remark_names_the_use():
    disp = run_both(returned, np.arange(5.0))
    missed = [r for rs in lo.remarks(disp).values() for r in rs if r.key == "Returned"]
    assert missed and "'acc' is returned" in missed[0].message


def test_a_0d_bound_is_read_once_and_the_loop_is_counted():
    n = np.array(7)
    disp = run_both(count_to, n, np.zeros(3))
    keys = remark_keys(disp)
    # The copy reading the bound once is a counted loop (nothing to remove);
    # the original, kept for overlapping arguments, still reads an array.
    assert "ReadHoisted" in keys and "AlreadyCounted" in keys
    assert "BoundNotInteger" in keys


def test_a_0d_bound_inside_the_written_array_runs_the_original_loop():
    # The bound is an element of the buffer the loop writes: the check at
    # entry finds the overlap and the original loop, which reads the bound
    # on every iteration, runs: the loop stops when it overwrites the bound.
    def make():
        buf = np.zeros(8, dtype=np.int64)
        buf[5] = 100
        return buf[5:6].reshape(()), buf
    stock = njit(count_to)(*make())
    opt = lo.jit(count_to)(*make())
    assert stock == opt == 6


def test_disjoint_compares_address_ranges():
    x = np.zeros(10)
    check = njit(lambda a, b: disjoint(a, b))
    assert check(np.array(5), x) and check(x[:3], x[3:]) and check(x[:0], x)
    assert not check(x, x[3:]) and not check(x[::-1], x[9:])
    assert not check(x.view(np.int64)[2:3].reshape(()), x)
    assert check(x[::2], x[::2][:0])


def test_the_pass_can_be_switched_off_by_option_and_environment(monkeypatch):
    disp = run_both(accumulate, np.arange(4.0), options={"scalar_replace": False})
    assert "ScalarReplaced" not in remark_keys(disp)
    monkeypatch.setenv("NUMBA_LOOPOPT_DISABLE_PASSES", "scalar-replace")
    assert not Options().with_environment().scalar_replace.enabled
    monkeypatch.setenv("NUMBA_LOOPOPT_DISABLE_PASSES", "scalar-replaces")
    with pytest.raises(OptionError, match="NUMBA_LOOPOPT_DISABLE_PASSES names no pass "
                                          "'scalar-replaces'"):
        Options().with_environment()


pytensor = pytest.importorskip("pytensor")


def _scan_function(enabled: bool):
    import pytensor.tensor as pt

    import numba_loopopt.pytensor as lpt

    with pytensor.config.change_flags(numba__cache=False):
        x0, n = pt.dscalar("x0"), pt.iscalar("n")
        xs = pytensor.scan(lambda x: x * 0.5 + 1.0, outputs_info=[x0], n_steps=n,
                           return_updates=False)
        if enabled:
            with lpt.enabled():
                return pytensor.function([x0, n], xs[-1], mode="NUMBA")
        return pytensor.function([x0, n], xs[-1], mode="NUMBA")


def test_a_pytensor_scan_allocates_nothing_per_step(allocations):
    stock, opt = _scan_function(False), _scan_function(True)
    for steps in (1, 2, 17, 1000):
        assert np.asarray(opt(0.3, steps)).tobytes() == np.asarray(stock(0.3, steps)).tobytes()
    assert allocations(opt, 0.3, 2000) == allocations(opt, 0.3, 10)
    import pytensor
    if int(pytensor.__version__.split(".")[0]) >= 3:
        # PyTensor 3.0's scan allocates nothing per step already (stock: 5
        # allocations at 1000 steps and at 2000), and the passes leave its
        # n_steps a 0-d array (docs/versions.rst): nothing more to check.
        return
    assert allocations(stock, 0.3, 2000) - allocations(stock, 0.3, 1000) >= 1000
    import numba_loopopt.pytensor as lpt
    keys = {r.key for name, r in lpt.remarks(opt) if name == "scan"}
    assert {"ScalarCall", "ScalarReplaced", "ReadHoisted", "Rewritten"} <= keys


def bound_by_index(x, n0):
    s = 0.0
    i = 0
    while i < n0[()]:
        s += x[i]
        i += 1
    return s


def bound_by_item(x, n0):
    s = 0.0
    i = 0
    while i < n0.item():
        s += x[i]
        i += 1
    return s


@pytest.mark.parametrize("kernel", [bound_by_index, bound_by_item])
def test_a_0d_bound_read_by_index_or_item_is_counted_too(kernel):
    disp = run_both(kernel, np.arange(6.0), np.array(4))
    texts = [str(r) for rs in lo.remarks(disp).values() for r in rs]
    assert any("ReadHoisted" in t for t in texts)
    assert any("AlreadyCounted: while loop is counted (i < n0[()], step 1)" in t
               for t in texts), texts
