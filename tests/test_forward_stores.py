"""The forward-stores pass: a value a loop stores into an array reaches the
later iterations that read it back through a variable, not memory.

Every test runs the kernel stock and through the pipeline (``run_both``:
results, the arguments' final contents and exceptions, bit for bit), and
checks the remark: forwarded, or why not.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import remark_keys, run_both
from numba import njit
from numba.core import types as lo_types

import numba_loopopt as lo
from numba_loopopt.testing import check, ir_after


def _remarks(disp, key):
    return [r for rs in lo.remarks(disp).values() for r in rs if r.key == key]


# -- What is forwarded ------------------------------------------------------------


def circular(buf, x, a):
    L = buf.shape[0]
    for i in range(x.shape[0]):
        buf[(i + 1) % L] = buf[i % L] * a + x[i]
    return buf


def two_taps(buf, x):
    L = buf.shape[0]
    for i in range(x.shape[0]):
        buf[(i + 2) % L] = 0.5 * buf[(i + 1) % L] - 0.25 * buf[i % L] + x[i]
    return buf


def recurrence(y, x, a):
    for i in range(x.shape[0]):
        y[i + 1] = y[i] * a + x[i]
    return y


def accumulate(out, x):
    for i in range(x.shape[0]):
        out[0] = out[0] + x[i]
    return out


def accumulate_at(out, k, x):
    for i in range(x.shape[0]):
        out[k] = out[k] * 0.5 + x[i]
    return out


def while_scan(buf, x, n):
    i = 0
    while i < n:
        buf[i + 1] = buf[i] - x[i]
        i += 1
    return buf


X = np.random.default_rng(0).normal(size=64)


@pytest.mark.parametrize("length", [1, 2, 3, 5])
def test_circular_buffer(length):
    for n in (0, 1, 2, 7, 64):
        opt = run_both(circular, np.arange(length, dtype=np.float64), X[:n].copy(), 0.9)
    assert "Forwarded" in remark_keys(opt)


@pytest.mark.parametrize("length", [1, 2, 3, 4])
def test_two_taps_check_the_window(length):
    """Loads 1 and 2 iterations back: forwarded when 2 consecutive indices
    reach 2 elements; with one element (every store hits it) memory is read,
    as in stock."""
    for n in (0, 1, 2, 3, 30):
        opt = run_both(two_taps, np.linspace(1.0, 2.0, length), X[:n].copy())
    (remark,) = _remarks(opt, "Forwarded")
    assert remark.arguments["distances"] == (1, 2)
    assert "2 consecutive indices reach different elements" in remark.message


def test_recurrence_and_accumulators():
    for n in (0, 1, 5, 63):
        opt = run_both(recurrence, np.zeros(n + 1), X[:n].copy(), 0.75)
        assert "Forwarded" in remark_keys(opt)
        opt = run_both(accumulate, np.array([0.5, 7.0]), X[:n].copy())
        assert "Forwarded" in remark_keys(opt)
        opt = run_both(accumulate_at, np.array([0.5, 7.0, 3.0]), 2, X[:n].copy())
        assert "Forwarded" in remark_keys(opt)
    opt = run_both(accumulate_at, np.array([0.5, 7.0, 3.0]), -1, X.copy())


def test_while_loop():
    for n in (0, 1, 40):
        opt = run_both(while_scan, np.zeros(n + 1), X.copy(), n)
    assert "Forwarded" in remark_keys(opt)


def test_forwarded_value_converted_as_the_store_converts_it():
    """float32 rounds, int32 and uint8 wrap, bool truncates: the load after
    the store sees the converted value, and so does the variable."""
    big = np.arange(1, 65, dtype=np.int64) * (2**40 + 12345)
    for dtype, x in ((np.float32, X), (np.int32, big), (np.uint8, big),
                     (np.float64, big), (np.bool_, X)):
        def f(buf, x):
            for i in range(x.shape[0]):
                buf[i + 1] = buf[i] + x[i]
            return buf
        opt = run_both(f, np.zeros(65, dtype=dtype), x.copy(), fresh=True)
        assert "Forwarded" in remark_keys(opt), dtype


def test_nan_payloads_and_signed_zeros_pass_through():
    x = np.array([-0.0, np.nan, -np.nan, 0.0, np.inf, -0.0])
    x[1] = np.frombuffer(np.uint64(0x7FF0000000000123).tobytes(), np.float64)[0]

    def f(buf, x):
        for i in range(x.shape[0]):
            buf[i + 1] = x[i] * buf[i]
        return buf
    run_both(f, np.full(7, -0.0), x)
    run_both(f, np.full(7, 1.0), x)


# -- Aliasing, exceptions -------------------------------------------------------------


def store_two(buf, out, x):
    for i in range(x.shape[0]):
        buf[i + 1] = buf[i] + x[i]
        out[i] = buf[i] * 2.0
    return buf, out


def test_another_array_overlapping_is_checked():
    """The loop also writes ``out``; when ``out`` overlaps ``buf`` (a view,
    the same array) the loop reads memory, as stock does."""
    for make in (lambda: (np.zeros(9), np.zeros(8)),
                 lambda: (lambda b: (b, b[1:]))(np.zeros(9)),
                 lambda: (lambda b: (b, b))(np.zeros(9)),
                 lambda: (lambda b: (b[:5], b[4:]))(np.zeros(13))):
        buf, out = make()
        opt = run_both(store_two, buf, out, X[: min(len(buf) - 1, len(out))].copy())
    (remark,) = _remarks(opt, "Forwarded")
    assert remark.arguments["checked"] == ("out",)


def test_exception_in_the_loop_leaves_memory_as_stock():
    def f(buf, x):
        for i in range(x.shape[0]):
            buf[i + 1] = buf[i] + 1.0 / x[i]
        return buf
    x = np.array([1.0, 2.0, 0.0, 4.0])
    x_int = np.array([1, 2, 0, 4])
    opt = run_both(f, np.zeros(5), x, error_model="python")
    run_both(f, np.zeros(5), x_int, error_model="python")
    assert "Forwarded" in remark_keys(opt)


def test_negative_indices_and_bounds_checks():
    def f(buf, start, n):
        for i in range(start, n):
            buf[i + 2] = buf[i] + buf[i + 1] + 1.0
        return buf
    for length in (1, 2, 3, 6):
        for start, n in ((-4, 2), (-2, 3), (0, 4), (-7, 0)):
            opt = run_both(f, np.arange(length, dtype=np.float64), start, n,
                           boundscheck=True)
    assert "Forwarded" in remark_keys(opt)


# -- What is not forwarded, and why ------------------------------------------------


@njit
def _writes(a, v):
    a[0] = v


def test_refusals_have_their_own_keys():
    def call_may_write(buf, other, x):
        for i in range(x.shape[0]):
            buf[i + 1] = buf[i] + x[i]
            other.sort()
        return buf

    def conditional_store(buf, x):
        for i in range(x.shape[0]):
            if x[i] > 0:
                buf[i + 1] = buf[i] + x[i]
        return buf

    def two_stores(buf, x):
        for i in range(x.shape[0]):
            buf[i + 1] = buf[i] + x[i]
            buf[i] = 0.0
        return buf

    def rows(buf, x):
        for i in range(x.shape[0]):
            buf[i + 1] = buf[i] + x[i]
        return buf

    def nested(buf, x):
        for _ in range(2):
            for i in range(x.shape[0]):
                buf[i + 1] = buf[i] + x[i]
        return buf

    def not_affine(buf, x):
        for i in range(x.shape[0]):
            buf[2 * i + 1] = buf[2 * i] + x[i]
        return buf

    cases = [
        (call_may_write, (np.zeros(9), np.ones(3), X[:8].copy()), "LoopMayWrite"),
        (conditional_store, (np.zeros(9), X[:8].copy()), "StoreNotEveryIteration"),
        (two_stores, (np.zeros(9), X[:8].copy()), "SeveralStores"),
        (rows, (np.zeros((9, 2)), X[:8].copy()), "NotScalarArray"),
    ]
    for func, args, key in cases:
        opt = run_both(func, *args)
        keys = remark_keys(opt)
        assert key in keys and "Forwarded" not in keys, (func.__name__, keys)
    # A loop with nothing to forward gets no remark of the pass.
    opt = run_both(not_affine, np.zeros(20), X[:8].copy())
    assert not [r for rs in lo.remarks(opt).values() for r in rs
                if r.pass_name == "forward-stores"]
    # The inner loop is forwarded; the outer one is not a candidate of its own.
    opt = run_both(nested, np.zeros(9), X[:8].copy())
    assert "Forwarded" in remark_keys(opt)


def test_option_switches_it_off():
    opt = run_both(circular, np.zeros(2), X.copy(), 0.5,
                   options={"forward_stores": False})
    assert not [k for k in remark_keys(opt) if k == "Forwarded"]


def test_the_rewritten_ir():
    dump, disp = ir_after(circular, (lo_types.float64[::1], lo_types.float64[::1],
                                     lo_types.float64), "loopopt_forward_stores")
    check(dump, """
    CHECK: $loopopt_fwd_count = const(int, 0)
    CHECK: element_zero
    CHECK: jump
    CHECK: $loopopt_fwd_use{{.*}} = {{.*}} & $loopopt_fwd_enough
    CHECK: branch
    CHECK: = $loopopt_fwd_buf_1
    CHECK: getitem(value=buf
    CHECK: buf[{{.*}}] =
    CHECK: $loopopt_fwd_buf_1 = call $loopopt_g_as_element{{.*}}(buf,
    CHECK: $loopopt_fwd_count = $loopopt_fwd_count + $loopopt_const
    """)
    buf = np.zeros(2)
    disp(buf, X.copy(), 0.5)
    assert np.array_equal(buf, njit(circular)(np.zeros(2), X.copy(), 0.5))



def test_numpy_and_math_functions_of_scalars_do_not_block_it():
    import math

    def f(y, x):
        for i in range(x.shape[0]):
            y[i + 1] = np.exp(-abs(y[i])) + math.sqrt(abs(x[i])) + np.float32(y[i])
        return y
    opt = run_both(f, np.zeros(9), X[:8].copy())
    assert "Forwarded" in remark_keys(opt)

    def g(y, x):
        for i in range(x.shape[0]):
            y[i + 1] = np.sum(x) + y[i]   # an array argument: not proven harmless
        return y
    opt = run_both(g, np.zeros(9), X[:8].copy())
    assert "LoopMayWrite" in remark_keys(opt)
