"""Adversarial differential tests of the ``forward-stores`` pass.

Written from the pass's contract (``docs/passes/forward_stores.rst``) and the
general one (``docs/getting_started.rst``, "What stays as in stock numba"):
every kernel is compiled with stock ``numba.njit`` and ``numba_loopopt.jit``
and the two are compared bit for bit (results, the arguments' contents,
exceptions with their messages, printed output).  Where the documentation says
the pass forwards, the ``Forwarded`` remark is asserted too, so the test runs
the rewritten loop; where it says the pass must refuse, the documented missed
key is asserted.

Arguments that alias through views (a view's base is not kept by
``copy.deepcopy``) are built afresh for each run by a factory.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import difference, outcome
from numba import float64, njit, prange
from numba.core.errors import NumbaError
from numba.experimental import jitclass

import numba_loopopt as lo

PASS = "forward-stores"


# --------------------------------------------------------------------------
# helpers


def fs_keys(disp, kind=None):
    """The remark keys of this pass (of every signature compiled)."""
    found = []
    for sig_remarks in lo.remarks(disp).values():
        found += [r.key for r in sig_remarks
                  if r.pass_name == PASS and (kind is None or r.kind.value == kind)]
    return found


def fs_remarks(disp):
    found = []
    for sig_remarks in lo.remarks(disp).values():
        found += [r for r in sig_remarks if r.pass_name == PASS]
    return found


def assert_forwarded(disp, array=None):
    rs = [r for r in fs_remarks(disp) if r.key == "Forwarded"]
    assert rs, [str(r) for r in fs_remarks(disp)]
    if array is not None:
        assert any(r.arguments.get("array") == array for r in rs), [str(r) for r in rs]


def assert_not_forwarded(disp, key=None):
    keys = fs_keys(disp)
    assert "Forwarded" not in keys, [str(r) for r in fs_remarks(disp)]
    if key is not None:
        assert key in keys, [str(r) for r in fs_remarks(disp)]


#: (stock, optimised) dispatchers, kept across the tests of this file so that
#: each signature compiles once (conftest's run_both compiles anew per test).
_COMPILED: dict = {}


def _pair(py_func, options, njit_kwargs):
    key = (py_func, repr(options), repr(sorted(njit_kwargs.items())))
    if key not in _COMPILED:
        _COMPILED[key] = (njit(**njit_kwargs)(py_func),
                          lo.jit(options=options, **njit_kwargs)(py_func))
    return _COMPILED[key]


def both(py_func, *args, options=None, **njit_kwargs):
    """conftest's ``run_both`` (deep copies keeping aliasing, bit-for-bit
    comparison), with the dispatchers kept for the whole file."""
    stock, opt = _pair(py_func, options, njit_kwargs)
    first = outcome(stock, args)
    _compiled(first)
    why = difference(first, outcome(opt, args))
    assert why is None, why
    return opt


def _compiled(out):
    """A kernel that does not compile would compare equal vacuously."""
    assert not (out[0] == "raise" and isinstance(out[1], NumbaError)), out[1]


def _run(disp, args):
    try:
        return ("ok", disp(*args), args)
    except Exception as exc:  # noqa: BLE001 - comparing exceptions
        return ("raise", exc, args)


def run_made(py_func, make, options=None, capfd=None, **njit_kwargs):
    """Like ``both`` but each side's arguments come from ``make()`` (so
    views keep pointing into their base); compares printed output too when
    ``capfd`` is given."""
    stock, opt = _pair(py_func, options, njit_kwargs)
    outs, texts = [], []
    for disp in (stock, opt):
        outs.append(_run(disp, make()))
        _compiled(outs[-1])
        if capfd is not None:
            texts.append(capfd.readouterr().out)
    why = difference(*outs)
    assert why is None, why
    if capfd is not None:
        assert texts[0] == texts[1], texts
    return opt


def run_printing(py_func, args, capfd, **njit_kwargs):
    """``both`` comparing the printed output too."""
    return run_made(py_func, lambda: tuple(np.copy(a) if isinstance(a, np.ndarray)
                                           else a for a in args),
                    capfd=capfd, **njit_kwargs)


def nan_with_payload(payload, dtype=np.float64):
    if dtype == np.float32:
        return np.array([0x7FC00000 | payload], dtype=np.uint32).view(np.float32)[0]
    return np.array([0x7FF8000000000000 | payload], dtype=np.uint64).view(np.float64)[0]


# --------------------------------------------------------------------------
# the documented forms, forwarded, under many inputs


def recurrence(y, x, a):
    for i in range(x.shape[0]):
        y[i + 1] = a * y[i] + x[i]
    return y


def test_recurrence_forwarded_and_equal():
    x = np.linspace(-1, 1, 9)
    opt = both(recurrence, np.zeros(10), x, 0.5)
    assert_forwarded(opt, "y")
    both(recurrence, np.zeros(10), x[:0], 0.5)          # no iteration
    both(recurrence, np.array([-0.0] * 10), x * 0.0 - 0.0, 1.0)   # -0.0 kept


def test_recurrence_y_is_x():
    """The loaded array x is the stored y: x[i] reads what y stored."""
    y = np.arange(10.0)
    opt = both(recurrence, y, y, 0.5)
    assert_forwarded(opt, "y")


def test_recurrence_x_is_view_of_y():
    """x = y[1:] (made afresh): x[i] is y[i + 1], the element stored."""
    def make():
        y = np.arange(12.0)
        return (y, y[1:11], 0.5)
    run_made(recurrence, make)

    def make_rev():
        y = np.arange(12.0)
        return (y, y[::-1][:11], 0.5)
    run_made(recurrence, make_rev)


def scan_mod(buf, x, a, b):
    L = buf.shape[0]
    for i in range(x.shape[0]):
        buf[(i + 2) % L] = a * buf[(i + 1) % L] + b * buf[i % L] + x[i]
    return buf


@pytest.mark.parametrize("L", [1, 2, 3, 5])
def test_scan_mod_buffer_lengths(L):
    """The doc's example; L = 1 makes all indices the same element (the
    window check must fail), L = 2 is just enough."""
    x = np.linspace(0.5, 3.0, 11)
    opt = both(scan_mod, np.linspace(1, 2, L), x, 0.5, 0.25)
    assert_forwarded(opt, "buf")


def mod_var(buf, x, m):
    for i in range(x.shape[0]):
        buf[(i + 3) % m] = buf[(i + 1) % m] * 0.5 + buf[i % m] + x[i]
    return buf


@pytest.mark.parametrize("m", [1, 2, 3, 4, -1, -2, -3, -4])
def test_mod_runtime_modulus_incl_negative(m):
    """``% m`` with m a runtime value: m < d (including negative m, whose
    indices are negative and wrap) must fall back to memory."""
    x = np.linspace(0.25, 2.0, 13)
    opt = both(mod_var, np.linspace(1, 2, 4), x, m, boundscheck=True)
    assert_forwarded(opt, "buf")


def mod_var_d2(buf, x, m):
    for i in range(x.shape[0]):
        buf[(i + 2) % m] = buf[i % m] + x[i]
    return buf


@pytest.mark.parametrize("m,L", [(-3, 2), (-2, 2), (-3, 3), (2, 2), (3, 2)])
def test_mod_negative_modulus_small_buffer(m, L):
    x = np.array([1.0, 10.0, 100.0, 1000.0, 1e4, 1e5, 1e6])
    opt = both(mod_var_d2, np.zeros(L), x, m, boundscheck=True)
    assert_forwarded(opt, "buf")


def test_mod_zero_modulus():
    """``% 0``: ZeroDivisionError at the first iteration (python error model),
    none with no iteration (the pre-loop check must not divide)."""
    x = np.arange(5.0)
    opt = both(mod_var_d2, np.zeros(3), x, 0)
    both(mod_var_d2, np.zeros(3), x[:0], 0)
    assert_forwarded(opt, "buf")


def test_mod_zero_modulus_numpy_error_model():
    """error_model='numpy': ``i % 0`` is 0, every index is element 0."""
    x = np.array([1.0, 10.0, 100.0, 1000.0, 1e4])
    opt = both(mod_var_d2, np.zeros(3), x, 0, error_model="numpy")
    assert_forwarded(opt, "buf")
    both(mod_var, np.zeros(3), x, 0, error_model="numpy")


def mod_two_moduli(buf, x, m1, m2):
    for i in range(x.shape[0]):
        buf[(i + 1) % m1] = buf[i % m2] + x[i]
    return buf


@pytest.mark.parametrize("m1,m2", [(3, 3), (3, 2), (2, 3), (4, -4)])
def test_mod_two_different_moduli(m1, m2):
    """g must be the same each time: ``% m1`` on the store, ``% m2`` on the load."""
    x = np.array([1.0, 10.0, 100.0, 1000.0, 1e4, 1e5])
    both(mod_two_moduli, np.zeros(4), x, m1, m2)


def mod_changing_modulus(buf, x, base):
    for i in range(x.shape[0]):
        m = base + (i & 1)
        buf[(i + 1) % m] = buf[i % m] + x[i]
    return buf


def test_mod_modulus_assigned_in_loop():
    x = np.array([1.0, 10.0, 100.0, 1000.0, 1e4, 1e5])
    both(mod_changing_modulus, np.zeros(4), x, 2)


def mul_var(buf, x, m):
    for i in range(x.shape[0]):
        buf[(i + 2) * m] = buf[i * m] + x[i]
    return buf


@pytest.mark.parametrize("m", [0, 1, -1, 2])
def test_mul_runtime_factor(m):
    """``* m`` with d = 2: only m == 1 keeps the window distinct (m = 0 makes
    one element; m = 2 with wrap-around makes two indices one element)."""
    x = np.array([1.0, 10.0, 100.0, 1000.0])
    opt = both(mul_var, np.zeros(12), x, m)
    assert_forwarded(opt, "buf")


def mul_var_neg_start(buf, m):
    for i in range(-3, 2):
        buf[(i + 2) * m] = buf[i * m] * 3.0 + 1.0
    return buf


@pytest.mark.parametrize("m,L", [(2, 2), (2, 4), (1, 2), (-1, 3), (0, 3)])
def test_mul_negative_indices_wrap(m, L):
    opt = both(mul_var_neg_start, np.arange(1.0, L + 1.0), m, boundscheck=True)
    assert_forwarded(opt, "buf")


def mul_two_factors(buf, x, m1, m2):
    for i in range(x.shape[0]):
        buf[(i + 1) * m1] = buf[i * m2] + x[i]
    return buf


@pytest.mark.parametrize("m1,m2", [(1, 1), (1, 2), (2, 1), (0, 1)])
def test_mul_two_different_factors(m1, m2):
    x = np.array([1.0, 10.0, 100.0, 1000.0])
    both(mul_two_factors, np.zeros(12), x, m1, m2)


def neg_start(buf, lo_, hi):
    for i in range(lo_, hi):
        buf[i + 2] = buf[i] * 2.0 + buf[i + 1] + 1.0
    return buf


@pytest.mark.parametrize("L,lo_,hi", [(2, -2, 0), (3, -3, 1), (2, -1, 0), (4, -4, 2),
                                      (5, -5, 3)])
def test_negative_start_wraps(L, lo_, hi):
    """Negative indices wrap: with len 2 and d = 2, i and i + 2 reach...
    different elements only when the window fits (len >= d)."""
    opt = both(neg_start, np.arange(1.0, L + 1.0), lo_, hi, boundscheck=True)
    assert_forwarded(opt, "buf")


def neg_start_len1(buf, lo_, hi):
    for i in range(lo_, hi):
        buf[i + 2] = buf[i] * 2.0 + 1.0
    return buf


def test_len1_buffer_distance2():
    """len 1: a[-1] and a[0] are the same element; d = 2 must read memory."""
    opt = both(neg_start_len1, np.array([1.0]), -2, -1, boundscheck=True)
    both(neg_start_len1, np.array([1.0]), -3, -1, boundscheck=True)
    assert_forwarded(opt, "buf")


def fixed_acc(out, x, j):
    for i in range(x.shape[0]):
        out[j] = out[j] * 0.5 + x[i]
    return out


@pytest.mark.parametrize("j", [0, 1, -1, -2])
def test_fixed_index_variable(j):
    opt = both(fixed_acc, np.array([1.0, 2.0]), np.arange(7.0), j)
    assert_forwarded(opt, "out")


def fixed_two_names(out, x, j, k):
    for i in range(x.shape[0]):
        out[j] = out[k] * 0.5 + x[i]
    return out


@pytest.mark.parametrize("j,k", [(0, 0), (0, 1), (1, 0), (0, -2), (-1, 1)])
def test_fixed_index_store_and_load_different_names(j, k):
    """Store a[j], load a[k]: the same element only when j and k reach it."""
    both(fixed_two_names, np.array([1.0, 2.0]), np.arange(1.0, 8.0), j, k)


def fixed_const_aliases(out, x):
    for i in range(x.shape[0]):
        out[0] = out[-3] * 2.0 + x[i]
    return out


def test_fixed_constant_negative_same_element():
    both(fixed_const_aliases, np.array([1.0, 2.0, 3.0]), np.arange(1.0, 6.0))


def fixed_changes_between_entries(out, x, n):
    for j in range(n):
        for i in range(x.shape[0]):
            out[j] = out[j] * 0.5 + x[i]
        out[j + 1] = out[j] - 1.0
    return out


def test_fixed_index_changes_between_loop_entries():
    opt = both(fixed_changes_between_entries, np.arange(1.0, 6.0), np.arange(4.0), 4)
    assert_forwarded(opt, "out")


def outer_changes_buffer(buf, x, reps):
    for r in range(reps):
        buf[0] = -float(r)
        buf[1] = buf[1] + 100.0
        for i in range(x.shape[0]):
            buf[i + 2] = buf[i + 1] + buf[i] + x[i]
    return buf


def test_outer_loop_rewrites_buffer_between_entries():
    """The flag that says "the loop has stored d times" must restart at each
    entry: the outer loop stores buf[0], buf[1] before each inner loop."""
    opt = both(outer_changes_buffer, np.zeros(8), np.array([1.0, 2.0, 3.0]), 3)
    assert_forwarded(opt, "buf")
    both(outer_changes_buffer, np.zeros(8), np.array([1.0]), 4)


def inner_short_then_long(buf, counts):
    for c in range(counts.shape[0]):
        buf[0] = buf[0] + 1000.0
        for i in range(counts[c]):
            buf[(i + 1) % 2] = buf[i % 2] * 2.0 + 1.0
    return buf


def inner_short_then_long_m(buf, counts, m):
    for c in range(counts.shape[0]):
        buf[0] = buf[0] + 1000.0
        for i in range(counts[c]):
            buf[(i + 1) % m] = buf[i % m] * 2.0 + 1.0
    return buf


def test_inner_trip_counts_vary():
    counts = np.array([0, 1, 3, 0, 2, 5])
    both(inner_short_then_long, np.zeros(2), counts)
    opt = both(inner_short_then_long_m, np.zeros(2), counts, 2)
    assert_forwarded(opt, "buf")


def const_mod(buf, n):
    for i in range(n):
        buf[(i + 2) % 3] = buf[i % 3] * 2.0 + 1.0
    return buf


def test_literal_modulus_forwarded():
    opt = both(const_mod, np.arange(3.0), 9)
    assert_forwarded(opt, "buf")


def distance8(buf, n):
    for i in range(n):
        buf[i + 8] = buf[i] + buf[i + 7] * 0.5 + 1.0
    return buf


def distance9(buf, n):
    for i in range(n):
        buf[i + 9] = buf[i] + 1.0
    return buf


def test_distance_8_and_9():
    opt = both(distance8, np.arange(20.0), 12)
    assert_forwarded(opt, "buf")
    both(distance8, np.arange(20.0), 5)     # fewer iterations than d
    both(distance8, np.arange(9.0), 1)
    opt9 = both(distance9, np.arange(20.0), 11)
    assert "Forwarded" not in fs_keys(opt9)


def distance8_mod(buf, n):
    L = buf.shape[0]
    for i in range(n):
        buf[(i + 8) % L] = buf[i % L] + 1.0
    return buf


@pytest.mark.parametrize("L", [7, 8, 9])
def test_distance_8_modulus_around_8(L):
    opt = both(distance8_mod, np.arange(float(L)), 30)
    assert_forwarded(opt, "buf")


def while_counter(buf, n):
    i = 0
    while i < n:
        buf[i + 1] = buf[i] * 3.0 + 1.0
        i += 1
    return buf


def test_while_loop_forwarded():
    opt = both(while_counter, np.zeros(9), 8)
    assert_forwarded(opt, "buf")
    both(while_counter, np.zeros(9), 0)


def while_extra_step(buf, x, n):
    i = 0
    while i < n:
        buf[i + 2] = buf[i] * 3.0 + 1.0
        if x[i] > 0:
            i += 1
        i += 1
    return buf


def test_while_counter_other_update():
    x = np.array([0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    opt = both(while_extra_step, np.arange(14.0), x, 10)
    assert "Forwarded" not in fs_keys(opt)


def while_increment_first(buf, n):
    i = 0
    while i < n:
        t = buf[i]
        i += 1
        buf[i + 1] = t + buf[i] * 2.0
    return buf


def test_while_increment_before_store():
    both(while_increment_first, np.arange(10.0), 8)


def while_double(buf, n):
    i = 1
    while i < n:
        buf[i + 1] = buf[i] + 1.0
        i = i * 2
    return buf


def test_while_counter_doubles():
    both(while_double, np.arange(20.0), 17)


@pytest.mark.parametrize("step", [2, 3])
def test_range_step_not_one(step):
    def k(buf, n):
        for i in range(0, n, step):
            buf[i + step] = buf[i] * 2.0 + 1.0
        return buf
    opt = both(k, np.arange(1.0, 13.0), 9)
    assert "Forwarded" not in fs_keys(opt)


def step2_distance2(buf, n):
    for i in range(0, n, 2):
        buf[i + 2] = buf[i] * 2.0 + 1.0
    return buf


def test_range_step_two_literal():
    """Step 2: the load a[i] reads the store of the iteration before (a
    distance of 1, not 2); a pass treating step 2 as 1 reads a stale value."""
    opt = both(step2_distance2, np.arange(1.0, 13.0), 9)
    assert "Forwarded" not in fs_keys(opt)


def step_var(buf, n, step):
    for i in range(0, n, step):
        buf[i + 1] = buf[i] * 2.0 + 1.0
    return buf


@pytest.mark.parametrize("step", [1, 2])
def test_range_step_runtime(step):
    both(step_var, np.arange(1.0, 13.0), 10, step)


def descending(buf, n):
    for i in range(n, 0, -1):
        buf[i + 1] = buf[i] * 2.0 + 1.0
    return buf


def descending2(buf, n):
    for i in range(n - 1, -1, -1):
        buf[i] = buf[i + 1] * 2.0 + 1.0
    return buf


def test_descending_range():
    """Step -1: the store of the iteration before wrote a[i + 1], the load a[i]
    has not been stored yet (a[i + 1] = f(a[i]) is not a recurrence here)."""
    opt = both(descending, np.arange(1.0, 12.0), 9)
    assert "Forwarded" not in fs_keys(opt)
    both(descending2, np.arange(1.0, 12.0), 10)


def reversed_counter(buf, n):
    for k in range(n):
        i = n - 1 - k
        buf[i] = buf[i + 1] * 2.0 + 1.0
    return buf


def test_counter_derived_descending():
    both(reversed_counter, np.arange(1.0, 12.0), 10)


def index_offset_var(buf, n, s):
    for i in range(n):
        buf[i + s] = buf[i] * 2.0 + 1.0
    return buf


@pytest.mark.parametrize("s", [0, 1, 2, -1])
def test_store_offset_runtime(s):
    both(index_offset_var, np.arange(1.0, 13.0), 9, s, boundscheck=True)


def index_uint8_cast(buf, n):
    for i in range(n):
        buf[np.uint8(i + 1)] = buf[np.uint8(i)] + 1.0
    return buf


def test_index_through_narrow_cast():
    both(index_uint8_cast, np.zeros(256), 300)


# --------------------------------------------------------------------------
# aliasing between the forwarded array and the other stored arrays


def two_stores(a, b, n):
    for i in range(n):
        a[i + 1] = a[i] + 1.0
        b[i] = -10.0 * (i + 1)
    return a


def test_other_store_same_array():
    a = np.zeros(10)
    opt = both(two_stores, a, a, 9)
    both(two_stores, np.zeros(10), np.zeros(10), 9)
    assert_forwarded(opt, "a")


def two_stores_d2(a, b, n):
    for i in range(n):
        a[i + 2] = a[i] + 1.0
        b[i + 1] = -10.0 * (i + 1)
    return a


def view_store_k(a, b, n, base):
    for i in range(n):
        a[i + 2] = a[i] + 1.0
        b[i + 1] = -10.0 * (i + 1)
    return a


def view_store_int(a, b, n, base):
    for i in range(n):
        a[i + 2] = a[i] + 1.0
        b[i + 1] = -(i + 1)
    return a


def view_store_bytes(a, b, n, base):
    for i in range(n):
        a[i + 2] = a[i] + 1.0
        b[8 * i + 3] = 0x40 + i
    return a


_VIEWS = {"same": lambda base: base[:12],
          "shift1": lambda base: base[1:13],
          "shift2": lambda base: base[2:14],
          "reversed": lambda base: base[11::-1],
          "rev_shift": lambda base: base[12::-1],
          "rev_tail": lambda base: base[:1:-1],
          "step2": lambda base: base[::2],
          "step-2": lambda base: base[::-2],
          "int_view": lambda base: base[:12].view(np.int64),
          "bytes": lambda base: base[:12].view(np.uint8)[4:],
          "ravel2d": lambda base: base.reshape(4, 6).ravel()[:12],
          "col2d": lambda base: base.reshape(12, 2)[:, 0],
          "last_byte": lambda base: base[11:12].view(np.uint8)[7:],
          "disjoint_half": lambda base: base[12:]}


@pytest.mark.parametrize("view", sorted(_VIEWS))
def test_other_store_through_view(view):
    """b is a view of a's buffer (overlapping it, or not), made afresh for
    each side; the loop forwards a (d = 2) and stores into b."""
    def make():
        base = np.zeros(24)
        return (base[:12], _VIEWS[view](base), 10, base)

    f = {"int_view": view_store_int, "bytes": view_store_bytes,
         "last_byte": view_store_bytes}.get(view, view_store_k)
    if view == "last_byte":
        def f(a, b, n, base):
            for i in range(n):
                a[i + 2] = a[i] + 1.0
                b[0] = 0x40 + i
            return a
    opt = run_made(f, make, boundscheck=True)
    assert_forwarded(opt, "a")


def view_made_inside(base, n):
    a = base[:10]
    w = base[::-1]
    for i in range(n):
        a[i + 1] = a[i] * 2.0 + 1.0
        w[9 - i] = w[9 - i] - 0.5
    return base


def test_reverse_view_made_before_loop():
    opt = both(view_made_inside, np.zeros(10), 9)
    assert_forwarded(opt, "a")


def reshape_view_inside(m, n):
    v = m.reshape(-1)
    for i in range(n):
        v[i + 2] = v[i] + v[i + 1] + 1.0
        m[1, i % 3] = -1.0
    return m


def test_reshape_view_and_2d_base_store():
    """v is a 1-d view of the 2-d m; the loop stores into both."""
    opt = both(reshape_view_inside, np.zeros((3, 3)), 7)
    assert_forwarded(opt, "v")


def ravel_view_inside(m, n):
    v = m.ravel()
    for i in range(n):
        v[i + 1] = v[i] * 2.0 + 1.0
        m[(i + 1) // 3, (i + 1) % 3] = 7.0
    return m


def test_ravel_view_and_2d_base_store():
    both(ravel_view_inside, np.zeros((3, 3)), 8)


def view_before_loop(buf, n):
    w = buf[1:]
    for i in range(n):
        buf[i + 2] = buf[i] + 1.0
        w[i + 1] = 100.0 + i
    return buf


def test_view_made_before_loop_written_in_loop():
    opt = both(view_before_loop, np.zeros(12), 9)
    assert_forwarded(opt, "buf")


def two_forwarded(a, b, n):
    for i in range(n):
        a[i + 1] = a[i] + b[i] + 1.0
        b[i + 1] = b[i] * 2.0 + a[i]
    return a, b


def test_two_forwarded_arrays_aliasing():
    a = np.arange(10.0)
    both(two_forwarded, a, a, 9)
    opt = both(two_forwarded, np.arange(10.0), np.ones(10), 9)
    assert_forwarded(opt)

    def make():
        base = np.arange(12.0)
        return (base[:10], base[2:], 9)
    run_made(two_forwarded, make)


def conditional_alias(a, b, flag, n):
    c = a if flag else b
    for i in range(n):
        a[i + 2] = a[i] + 1.0
        c[i + 1] = -float(i)
    return a


@pytest.mark.parametrize("flag", [True, False])
def test_conditionally_aliased_other_store(flag):
    opt = both(conditional_alias, np.zeros(12), np.zeros(12), flag, 10)
    assert_forwarded(opt, "a")


def zero_stride(buf, n):
    a = np.lib.stride_tricks.as_strided(buf, shape=(5,), strides=(0,))
    for i in range(n):
        a[i + 2] = a[i] + 1.0
    return buf


def test_zero_stride_view_distance2():
    """A 1-d view of stride 0 has len 5 but a single element: the stores in
    between wrote the element the load reads."""
    opt = both(zero_stride, np.zeros(3), 3)
    assert_forwarded(opt, "a")


def half_stride(buf, n):
    a = np.lib.stride_tricks.as_strided(buf, shape=(8,), strides=(4,))
    for i in range(n):
        a[i + 2] = a[i] * 1.5 + 1.0
    return buf


def test_overlapping_elements_stride_smaller_than_item():
    opt = both(half_stride, np.arange(6.0), 5)
    assert_forwarded(opt, "a")


def zero_stride_arg(a, n):
    for i in range(n):
        a[i + 2] = a[i] + 1.0
    return a


def test_zero_stride_argument():
    def make():
        base = np.zeros(1)
        return (np.lib.stride_tricks.as_strided(base, shape=(6,), strides=(0,)), 4)
    run_made(zero_stride_arg, make)


# --------------------------------------------------------------------------
# writes the docs say block it (deny by default)


def method_write(a, b, n):
    for i in range(n):
        a[i + 1] = a[i] + 1.0
        b.fill(float(i))
    return a


def test_method_call_blocks():
    a = np.zeros(10)
    opt = both(method_write, a, a, 9)
    assert_not_forwarded(opt, "LoopMayWrite")


@njit
def _helper_write(arr, j, v):
    arr[j] = v


def helper_write(a, b, n):
    for i in range(n):
        a[i + 2] = a[i] + 1.0
        _helper_write(b, i + 1, -5.0)
    return a


def test_njit_helper_given_array():
    a = np.zeros(12)
    both(helper_write, a, a, 10)
    opt = both(helper_write, np.zeros(12), np.zeros(12), 10,
                   options={"inline": False})
    assert_not_forwarded(opt, "LoopMayWrite")
    opt = both(helper_write, a, a, 10, options={"inline": False})


def ufunc_out(a, b, n):
    for i in range(n):
        a[i + 1] = a[i] + 1.0
        np.add(b, 1.0, b)
    return a


def test_ufunc_out_blocks():
    a = np.zeros(6)
    opt = both(ufunc_out, a, a, 5)
    assert_not_forwarded(opt, "LoopMayWrite")


def inplace_op(a, b, n):
    for i in range(n):
        a[i + 1] = a[i] + 1.0
        b *= 2.0
    return a


def test_inplace_operator_equal():
    a = np.ones(6)
    opt = both(inplace_op, a, a, 5)
    assert_not_forwarded(opt)


def test_inplace_operator_blocks_with_loop_may_write():
    opt = both(inplace_op, np.ones(6), np.ones(6), 5)
    assert_not_forwarded(opt, "LoopMayWrite")
    assert "InternalError" not in fs_keys(opt)


def print_in_loop(a, n):
    for i in range(n):
        t = a[i]
        print(t)
        a[i + 1] = t * 2.0 + 1.0
    return a


def test_print_in_loop(capfd):
    run_printing(print_in_loop, (np.zeros(6), 5), capfd)


def builtin_calls(a, x):
    for i in range(x.shape[0]):
        a[i + 1] = min(a[i], 3.0) + abs(x[i]) + max(a[i], x[i])
    return a


def test_builtin_scalar_calls_forwarded():
    opt = both(builtin_calls, np.zeros(8), np.linspace(-1, 4, 7))
    assert_forwarded(opt, "a")


def np_sqrt_call(a, x):
    for i in range(x.shape[0]):
        a[i + 1] = np.sqrt(abs(a[i])) + x[i]
    return a


def math_hypot_call(a, x):
    for i in range(x.shape[0]):
        a[i + 1] = math.hypot(a[i], x[i])
    return a


def test_numpy_math_scalar_calls_equal():
    x = np.linspace(-1, 1, 7)
    both(np_sqrt_call, np.zeros(8), x)
    both(math_hypot_call, np.zeros(8), x)


def np_scalar_types(a, x):
    for i in range(x.shape[0]):
        a[i + 1] = np.float32(a[i] * 1.1) + np.float64(np.int8(x[i]))
    return a


def np_call_given_array(a, x):
    for i in range(x.shape[0]):
        a[i + 1] = a[i] + np.sum(a)
    return a


@pytest.mark.parametrize("func", [np_sqrt_call, math_hypot_call, np_scalar_types])
def test_numpy_math_scalar_calls_forwarded(func):
    """Found refused (LoopMayWrite on '$..load_attr') by this file's first
    version; e037502 looks a module attribute's callee up."""
    opt = both(func, np.zeros(8), np.linspace(-150, 150, 7))
    assert_forwarded(opt, "a")


def test_numpy_call_given_the_array_refused():
    opt = both(np_call_given_array, np.ones(8), np.zeros(7))
    assert_not_forwarded(opt)


def list_store(a, lst, n):
    for i in range(n):
        a[i + 1] = a[i] + 1.0
        lst[0] = a[i]
    return a


@pytest.mark.filterwarnings("ignore::numba.core.errors.NumbaPendingDeprecationWarning")
def test_list_store_unknown_write():
    opt = both(list_store, np.zeros(6), [0.0, 1.0], 5)
    assert_not_forwarded(opt, "UnknownWrite")


def transposed_alias(a, b, n):
    for i in range(n):
        a[i + 2] = a[i] + 1.0
        b.T[i + 1] = -1.0
    return a


def test_store_through_attribute_view():
    a = np.zeros(12)
    opt = both(transposed_alias, a, a, 10)
    assert_not_forwarded(opt)


def alloc_in_loop(a, n):
    for i in range(n):
        t = np.empty(2)
        t[0] = a[i]
        a[i + 1] = t[0] + 1.0
    return a


def test_array_allocated_in_loop():
    both(alloc_in_loop, np.zeros(6), 5)


def slice_store(a, n):
    for i in range(n):
        a[i + 2] = a[i] + 1.0
        a[i + 1:i + 2] = -3.0
    return a


def test_slice_store_of_same_array():
    opt = both(slice_store, np.zeros(12), 10)
    assert_not_forwarded(opt)


def fancy_store(a, idx, n):
    for i in range(n):
        a[i + 2] = a[i] + 1.0
        a[idx] = -3.0
    return a


def test_fancy_store_of_same_array():
    opt = both(fancy_store, np.zeros(12), np.array([3, 5]), 10)
    assert_not_forwarded(opt)


def closure_write(a, n):
    def put(j, v):
        a[j] = v
    for i in range(n):
        a[i + 2] = a[i] + 1.0
        put(i + 1, -7.0)
    return a


def test_closure_writing_array():
    opt = both(closure_write, np.zeros(12), 10)
    assert "Forwarded" not in fs_keys(opt)


def closure_reads(a, n, c):
    def f(v):
        return v * c + 1.0
    for i in range(n):
        a[i + 1] = f(a[i])
    return a


def test_closure_scalar():
    both(closure_reads, np.zeros(8), 7, 0.5)


def gen_kernel(a, n):
    for i in range(n):
        t = a[i]
        a[i + 1] = t + 1.0
        yield t


def test_generator_caller_writes_between_yields():
    """The caller writes the array between two iterations of the loop."""
    outs = []
    for disp in _pair(gen_kernel, None, {}):
        a = np.zeros(6)
        got = []
        for j, v in enumerate(disp(a, 5)):
            got.append(v)
            a[j + 1] = 100.0
        outs.append((got, a.tobytes()))
    assert outs[0] == outs[1]


def test_generator_no_outside_writes():
    outs = []
    for disp in _pair(gen_kernel, None, {}):
        a = np.zeros(6)
        outs.append((list(disp(a, 5)), a.tobytes()))
    assert outs[0] == outs[1]


# --------------------------------------------------------------------------
# control flow inside the loop


def store_in_branch(a, x):
    for i in range(x.shape[0]):
        if x[i] > 0:
            a[i + 1] = a[i] + x[i]
    return a


def test_store_in_branch():
    opt = both(store_in_branch, np.zeros(8), np.array([1.0, -1, 2, 3, -1, -1, 4]))
    assert_not_forwarded(opt, "StoreNotEveryIteration")


def continue_before_store(a, x, m):
    for i in range(x.shape[0]):
        t = a[(i + 1) % m]
        if x[i] < 0:
            continue
        a[(i + 2) % m] = t + a[i % m] + x[i]
    return a


def continue_plain(a, x):
    for i in range(x.shape[0]):
        if x[i] < 0:
            continue
        a[i + 1] = a[i] * 2.0 + x[i]
    return a


def test_continue_skips_store():
    """With ``continue`` an iteration may store nothing: counting iterations
    instead of stores would forward a value two stores old."""
    x = np.array([1.0, -1, 2, 3, -1, -1, 4, 5, -1, 6])
    opt = both(continue_before_store, np.arange(3.0), x, 3)
    assert_not_forwarded(opt, "StoreNotEveryIteration")
    opt = both(continue_plain, np.ones(11), x)
    assert_not_forwarded(opt, "StoreNotEveryIteration")


def continue_fixed(a, x):
    for i in range(x.shape[0]):
        if x[i] < 0:
            continue
        a[0] = a[0] * 2.0 + x[i]
    return a


def test_continue_fixed_index():
    both(continue_fixed, np.ones(1), np.array([1.0, -1, 2, -1, -1, 4]))


def break_after_load(a, x):
    for i in range(x.shape[0]):
        t = a[i]
        if t > 20.0:
            break
        a[i + 1] = t * 2.0 + x[i]
    return a


def test_break_in_loop():
    both(break_after_load, np.ones(12), np.arange(11.0))


def return_in_loop(a, x):
    for i in range(x.shape[0]):
        a[i + 2] = a[i] + a[i + 1] + x[i]
        if a[i + 2] > 30.0:
            return a[i + 1]
    return -1.0


def test_return_in_loop():
    both(return_in_loop, np.ones(14), np.arange(12.0))


def load_after_store(a, x):
    s = 0.0
    for i in range(x.shape[0]):
        a[i + 1] = a[i] + x[i]
        s += a[i + 1] * 0.5 + a[i]
    return s


def test_load_after_store_same_iteration():
    opt = both(load_after_store, np.zeros(9), np.arange(1.0, 9.0))
    assert_forwarded(opt, "a")


def load_in_branch(a, x):
    s = 0.0
    for i in range(x.shape[0]):
        v = a[i] + 1.0
        if x[i] > 2:
            s += a[i] * 3.0
        a[i + 1] = v
    return s


def test_load_in_other_block():
    both(load_in_branch, np.zeros(9), np.arange(8.0))


def try_except_store(a, x):
    for i in range(x.shape[0]):
        try:
            if x[i] < 0:
                raise ValueError("neg")
            a[i + 1] = a[i] + x[i]
        except Exception:
            pass
    return a


def test_try_except_in_loop():
    both(try_except_store, np.ones(8), np.array([1.0, -1, 2, 3, -1, 5, 6]))


def nested_inner(buf, x, reps):
    for r in range(reps):
        for i in range(x.shape[0]):
            buf[i + 1] = buf[i] * 0.5 + x[i] + r
        buf[0] = buf[x.shape[0]]
    return buf


def test_nested_loops_inner_forwarded():
    opt = both(nested_inner, np.zeros(6), np.arange(5.0), 4)
    assert_forwarded(opt, "buf")


def outer_store(buf, x, reps):
    for r in range(reps):
        buf[r + 1] = buf[r] + 1.0
        for i in range(x.shape[0]):
            x[i] = x[i] + buf[r]
    return buf


def test_store_in_loop_with_inner_loop():
    opt = both(outer_store, np.zeros(6), np.arange(3.0), 5)
    assert_not_forwarded(opt, "NotInnermost")


# --------------------------------------------------------------------------
# exceptions part way


def div_chain(a, x):
    for i in range(x.shape[0]):
        a[i + 1] = a[i] / x[i] + 1.0
    return a


def test_zero_division_part_way():
    x = np.array([1.0, 2.0, 0.0, 4.0])
    opt = both(div_chain, np.ones(5), x, error_model="python")
    assert_forwarded(opt, "a")
    both(div_chain, np.ones(5), x, error_model="numpy")


def int_div_chain(a, x):
    for i in range(x.shape[0]):
        a[(i + 2) % 3] = a[i % 3] // x[i] + a[(i + 1) % 3]
    return a


def test_int_zero_division_part_way():
    x = np.array([1, 2, 3, 0, 5], dtype=np.int64)
    both(int_div_chain, np.array([7, 8, 9]), x, error_model="python")
    both(int_div_chain, np.array([7, 8, 9]), x, error_model="numpy")


def oob_chain(a, n):
    for i in range(n):
        a[i + 2] = a[i] + a[i + 1]
    return a


def test_index_error_part_way():
    opt = both(oob_chain, np.arange(1.0, 7.0), 6, boundscheck=True)
    assert_forwarded(opt, "a")
    both(oob_chain, np.arange(1.0, 7.0), 9, boundscheck=True)


def oob_neg(a, lo_, n):
    for i in range(lo_, n):
        a[i + 1] = a[i] * 2.0 + 1.0
    return a


def test_index_error_negative_part_way():
    both(oob_neg, np.arange(1.0, 4.0), -5, 2, boundscheck=True)


def assert_in_loop(a, n):
    for i in range(n):
        t = a[i]
        if not t < 10.0:
            raise AssertionError("too big")
        a[i + 1] = t * 2.0 + 1.0
    return a


def test_assert_part_way():
    both(assert_in_loop, np.zeros(8), 7)


# --------------------------------------------------------------------------
# dtypes and casting stores


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.uint16, np.int32, np.bool_,
                                   np.complex128, np.complex64, np.uint64])
def test_casting_store_dtypes(dtype):
    def k(a, x):
        for i in range(x.shape[0]):
            a[i + 1] = a[i] * 3 + x[i]
        return a

    def kd2(a, x):
        L = a.shape[0]
        for i in range(x.shape[0]):
            a[(i + 2) % L] = a[i % L] * 3 + a[(i + 1) % L] + x[i]
        return a
    a = np.ones(12, dtype=dtype)
    x = np.linspace(-70.3, 91.7, 11)
    if dtype in (np.float32, np.complex128, np.complex64):
        opt = both(k, a, x)
        assert_forwarded(opt, "a")
    xi = (np.arange(11) * 37 - 100).astype(np.int64)
    if dtype in (np.bool_,):
        xi = (np.arange(11) % 3 == 0)
    opt = both(k, a, xi)
    assert_forwarded(opt, "a")
    opt = both(kd2, np.ones(3, dtype=dtype), xi)
    assert_forwarded(opt, "a")


def test_int8_wrap_around():
    def k(a, n):
        for i in range(n):
            a[i + 1] = a[i] + 100
        return a
    opt = both(k, np.zeros(8, np.int8), 7)
    assert_forwarded(opt, "a")


def test_bool_from_int_and_float():
    def k(a, x):
        for i in range(x.shape[0]):
            a[i + 1] = a[i] + x[i]
        return a

    def kf(a, x):
        for i in range(x.shape[0]):
            a[i + 1] = a[i] * x[i]
        return a
    both(k, np.zeros(8, np.bool_), np.array([0, 2, -1, 0, 1, -2, 0]))
    opt = both(kf, np.ones(8, np.bool_), np.array([0.5, 0.0, -0.0, np.nan, 2, 0, 3]))
    assert_forwarded(opt, "a")


def test_float32_from_int_rounding():
    def k(a, n):
        for i in range(n):
            a[i + 1] = (a[i] + 16777217) - 16777216 + i
        return a
    both(k, np.zeros(6, np.float32), 5)


def test_nan_payloads_float64():
    def k(a, x):
        for i in range(x.shape[0]):
            a[i + 1] = a[i] * x[i]
        return a

    def copy_only(a, n):
        for i in range(n):
            a[i + 1] = a[i]
        return a
    a = np.zeros(8)
    a[0] = nan_with_payload(0x1234)
    x = np.array([1.0, -1.0, nan_with_payload(0x55), 2.0, -0.0, 1.0, 1.0])
    opt = both(k, a, x)
    assert_forwarded(opt, "a")
    s = np.zeros(8)
    s[0] = np.array([0x7FF0000000000001], np.uint64).view(np.float64)[0]  # signalling
    s[1:] = -0.0
    opt = both(copy_only, s, 7)
    assert_forwarded(opt, "a")


def test_nan_payloads_float32_cast():
    def k(a, x):
        for i in range(x.shape[0]):
            a[i + 1] = a[i] + x[i]
        return a
    a = np.zeros(8, np.float32)
    a[0] = nan_with_payload(0x2345, np.float32)
    x = np.array([0.0, -0.0, 1.5, nan_with_payload(0x7777777), 1.0, 1e40, -1e40])
    opt = both(k, a, x)
    assert_forwarded(opt, "a")
    a = np.zeros(8, np.float32)
    x = np.zeros(7)
    x[2] = np.array([0x7FF0000000000001], np.uint64).view(np.float64)[0]
    both(k, a, x)


def test_negative_zero():
    def k(a, n):
        for i in range(n):
            a[i + 1] = -a[i] * 1.0
        return a

    def kmin(a, x):
        for i in range(x.shape[0]):
            a[0] = min(a[0], x[i])
        return a
    opt = both(k, np.array([0.0] * 6), 5)
    assert_forwarded(opt, "a")
    both(kmin, np.array([0.0]), np.array([-0.0, 0.0, -0.0]))


def test_complex_real_imag():
    def k(a, n):
        for i in range(n):
            a[i + 1] = complex(a[i].imag, a[i].real * 2.0 + 1.0)
        return a
    opt = both(k, np.array([1 + 2j] * 7), 6)
    assert_forwarded(opt, "a")


# --------------------------------------------------------------------------
# refusals the documentation lists


def two_d_elem(a, n):
    for i in range(n):
        a[i + 1, 0] = a[i, 0] + 1.0
    return a


def two_d_row(a, n):
    for i in range(n):
        a[i + 1] = a[i] + 1.0
    return a


def test_2d_buffers_not_scalar_array():
    opt = both(two_d_elem, np.zeros((6, 2)), 5)
    assert "Forwarded" not in fs_keys(opt)
    opt = both(two_d_row, np.zeros((6, 2)), 5)
    assert_not_forwarded(opt, "NotScalarArray")


def several_stores(a, n):
    for i in range(n):
        a[i + 1] = a[i] + 1.0
        a[i + 2] = a[i + 1] * 2.0
    return a


def test_several_stores():
    opt = both(several_stores, np.zeros(12), 9)
    assert_not_forwarded(opt, "SeveralStores")


def array_reassigned(a, b, n):
    c = a
    for i in range(n):
        c[i + 1] = c[i] + 1.0
        c = b if i == 2 else c
    return a, b


def test_array_reassigned_in_loop():
    opt = both(array_reassigned, np.zeros(8), np.ones(8), 7)
    assert_not_forwarded(opt, "ArrayReassigned")


def test_store_of_array_value():
    def k(a, v, n):
        for i in range(n):
            x = a[i]  # noqa: F841
            a[i + 1] = v
        return a
    opt = both(k, np.zeros(8), np.ones(()), 7)
    assert "Forwarded" not in fs_keys(opt)


def used_otherwise(a, n):
    s = 0.0
    for i in range(n):
        a[i + 1] = a[i] + 1.0
        s += a[:i + 1].sum()
    return s


def test_array_used_otherwise():
    opt = both(used_otherwise, np.zeros(8), 7)
    assert_not_forwarded(opt)


def other_block(a, b, x):
    for i in range(x.shape[0]):
        a[i + 1] = a[i] + 1.0
        if x[i] > 0:
            x[i] = 0.0
        b[i + 1] = b[i] * 2.0
    return a, b


def test_other_block():
    opt = both(other_block, np.zeros(8), np.ones(8), np.array([1.0, -1, 2, -3, 4, 5, 6]))
    keys = fs_keys(opt)
    assert "OtherBlock" in keys or "Forwarded" not in keys, keys


def test_pass_disabled_equal():
    opt = both(recurrence, np.zeros(10), np.arange(9.0), 0.5,
                   options={"forward_stores": False})
    assert fs_keys(opt) == []


# --------------------------------------------------------------------------
# flags


def test_fastmath():
    def k(a, x):
        for i in range(x.shape[0]):
            a[i + 1] = a[i] + x[i]
        return a
    opt = both(k, np.zeros(10), np.linspace(-1e16, 3.0, 9), fastmath=True)
    assert_forwarded(opt, "a")


def par_kernel(a, x):
    y = x * 2.0
    for i in range(x.shape[0]):
        a[i + 1] = a[i] * 0.5 + y[i]
    return a


def test_parallel():
    a = np.zeros(10)
    both(par_kernel, a, np.arange(9.0), parallel=True)


def par_alias(a, b):
    b[:] = b + 1.0
    for i in range(b.shape[0] - 2):
        a[i + 2] = a[i] + 1.0
        b[i + 1] = -float(i)
    return a


def test_parallel_aliasing():
    a = np.zeros(10)
    both(par_alias, a, a, parallel=True)


# --------------------------------------------------------------------------
# aimed at the implementation (written after reading forward_stores.py)


def fancy_fixed(a, idx, x):
    s = 0.0
    for i in range(x.shape[0]):
        t = a[idx]
        s += t[0]
        a[idx] = x[i]
    return s


@pytest.mark.parametrize("index", [np.array([1, 3]), slice(1, 3),
                                   np.array([False, True, True, False, False])],
                         ids=["int_array", "slice", "mask"])
def test_fixed_index_that_is_not_an_element_equal(index):
    """A loop-invariant index that is an array, a slice or a mask: the load
    is a view or a copy, not an element; nothing to forward."""
    both(fancy_fixed, np.zeros(5), index, np.arange(1.0, 5.0))


@pytest.mark.parametrize("index", [np.array([1, 3]), slice(1, 3)],
                         ids=["int_array", "slice"])
def test_fixed_index_that_is_not_an_element_no_fallback(index):
    opt = both(fancy_fixed, np.zeros(5), index, np.arange(1.0, 5.0))
    keys = [r.key for rs in lo.remarks(opt).values() for r in rs]
    assert "StockFallback" not in keys, keys


@jitclass([("arr", float64[:])])
class _Writer:
    def __init__(self, arr):
        self.arr = arr

    def __getitem__(self, j):
        self.arr[j + 1] = 100.0
        return 0.5


def jitclass_getitem(a, n):
    w = _Writer(a)
    for i in range(n):
        t = a[i]
        u = w[i]
        a[i + 1] = t + u
    return a


def test_jitclass_getitem_writes_the_array():
    """``w[i]`` calls a __getitem__ that writes the forwarded array."""
    opt = both(jitclass_getitem, np.zeros(8), 6)
    assert_not_forwarded(opt)


def test_jitclass_getitem_loop_may_write():
    opt = both(jitclass_getitem, np.zeros(8), 6)
    assert "LoopMayWrite" in fs_keys(opt), fs_keys(opt)


def prange_rows(buf, x):
    for j in prange(buf.shape[0]):
        row = buf[j]
        for i in range(x.shape[0]):
            row[i + 1] = row[i] * 0.5 + x[i]
    return buf


def test_prange_rows_inner_recurrence():
    opt = both(prange_rows, np.arange(24.0).reshape(3, 8), np.arange(7.0), parallel=True)
    assert_forwarded(opt, "row")


def zero_d_other(a, b, n):
    for i in range(n):
        a[i + 2] = a[i] + 1.0
        b[()] = -float(i)
    return a


@pytest.mark.parametrize("at", [3, 20])
def test_zero_d_view_other_store(at):
    def make():
        base = np.zeros(24)
        return (base[:12], base[at:at + 1].reshape(()), 10)
    opt = run_made(zero_d_other, make)
    assert_forwarded(opt, "a")


def two_d_neg_other(a, m, n):
    for i in range(n):
        a[i + 2] = a[i] + 1.0
        m[i % 2, 1] = -1.0 - i
    return a


@pytest.mark.parametrize("view", ["neg_both", "neg_rows", "transposed", "apart"])
def test_2d_negative_stride_other_store(view):
    def make():
        base = np.zeros(30)
        grid = base[:24].reshape(4, 6)
        m = {"neg_both": grid[::-1, ::-1], "neg_rows": grid[::-2, :],
             "transposed": grid.T[::-1], "apart": base[24:].reshape(2, 3)}[view]
        return (base[6:18], m, 10)
    opt = run_made(two_d_neg_other, make)
    assert_forwarded(opt, "a")


def manual_counter_over_values(a, x):
    i = 0
    for v in x:
        a[i + 1] = a[i] * 0.5 + v
        i += 1
    return a


def manual_counter_continue(a, x):
    i = 0
    for v in x:
        i += 1
        if v < 0:
            continue
        a[i + 1] = a[i] * 0.5 + v
    return a


def test_for_over_values_with_manual_counter():
    x = np.array([1.0, -2.0, 3.0, -4.0, 5.0, 6.0])
    both(manual_counter_over_values, np.zeros(8), x)
    both(manual_counter_continue, np.zeros(8), x)


def while_true_break_at_end(a, n):
    i = 0
    while True:
        t = a[i]
        a[i + 1] = t * 2.0 + 1.0
        i += 1
        if i >= n:
            break
    return a


def while_true_break_before_store(a, n):
    i = 0
    while True:
        t = a[i]
        if t > 20.0:
            break
        a[i + 2] = t * 2.0 + 1.0 + a[i + 1]
        i += 1
    return a


def while_load_in_condition(a, n):
    i = 0
    while a[i] < 50.0 and i < n:
        a[i + 1] = a[i] * 2.0 + 1.0
        i += 1
    return a


def while_two_counters(a, n):
    i = 0
    j = 3
    while i < n:
        a[j + 1] = a[j] * 2.0 + 1.0
        i += 2
        j += 1
    return a


def test_while_loop_shapes():
    opt = both(while_true_break_at_end, np.zeros(8), 5)
    assert_forwarded(opt, "a")
    both(while_true_break_at_end, np.zeros(8), 1)
    opt = both(while_true_break_before_store, np.ones(12), 5)
    assert_forwarded(opt, "a")
    opt = both(while_load_in_condition, np.ones(12), 10)
    assert_forwarded(opt, "a")
    both(while_load_in_condition, np.full(12, 60.0), 10)
    opt = both(while_two_counters, np.ones(12), 10)
    assert_forwarded(opt, "a")


def reassign_counter(a, n):
    for i in range(n):
        t = a[i]
        i = i + 5
        a[i + 1] = t + 1.0
    return a


def test_counter_reassigned_in_body():
    """``i`` reassigned before the store: a[i + 1] is a[i_iter + 6]."""
    both(reassign_counter, np.arange(20.0), 8)


def maybe_undefined(buf, n, flag, k):
    if flag:
        m = k
        b = np.zeros(3)
    for i in range(n):
        buf[(i + 2) % m] = buf[i % m] + 1.0
        if flag:
            b[0] = 1.0
    return buf


def test_checks_on_possibly_undefined_names():
    """The checks before the loop read m and b, which are defined only when
    flag is true; with no iteration stock never reads them."""
    both(maybe_undefined, np.zeros(3), 0, False, 3)
    opt = both(maybe_undefined, np.zeros(3), 5, True, 3)
    assert_forwarded(opt, "buf")
    both(maybe_undefined, np.zeros(3), 5, True, 1)


def test_empty_buffer():
    opt = both(neg_start_len1, np.zeros(0), 0, 0)
    assert_forwarded(opt, "buf")
    both(recurrence, np.zeros(0), np.zeros(0), 0.5)
