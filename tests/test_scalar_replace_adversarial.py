"""Adversarial differential tests of the ``scalar-replace`` pass.

Every program is compiled with ``numba_loopopt.jit`` (the pass on by default)
and with stock ``numba.njit`` and the two are compared bit for bit: results,
dtypes, NaN payloads, signed zeros, integer wrap-around, exceptions (type and
message), the arguments' final contents and printed output.  Arguments that
alias each other (a 0-d view into a buffer the function writes) are built
afresh for each run by a factory: ``copy.deepcopy`` does not keep a view
pointing into its base.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from conftest import difference, outcome, remark_keys
from numba import njit
from numba.core.runtime import _nrt_python, rtsys

import numba_loopopt as lo

# --------------------------------------------------------------------------
# helpers


#: (stock, optimised) dispatchers by function, kept across the tests of this
#: file so that each signature compiles once.
_COMPILED: dict = {}


def _pair(py_func):
    if py_func not in _COMPILED:
        _COMPILED[py_func] = (njit(py_func), lo.jit(py_func))
    return _COMPILED[py_func]


def run_both(py_func, *args):
    """``conftest.run_both`` with dispatchers kept across tests."""
    stock, opt = _pair(py_func)
    why = difference(outcome(stock, args), outcome(opt, args))
    assert why is None, why
    return opt


def run_fresh(py_func, make):
    """Run ``py_func`` stock and optimised on arguments ``make()`` builds
    anew for each (aliasing between them kept); assert the same outcome and
    the same final contents of the arguments.  Returns the optimised
    dispatcher."""
    stock, opt = _pair(py_func)
    s, o = _call(stock, make()), _call(opt, make())
    why = difference(s, o)
    assert why is None, why
    return opt


def _call(disp, args):
    try:
        return ("ok", disp(*args), args)
    except Exception as exc:  # noqa: BLE001 - comparing exceptions
        return ("raise", exc, args)


def missed(disp, key):
    return [r for rs in lo.remarks(disp).values() for r in rs
            if r.kind.value == "missed" and r.key == key]


def _f64(bits: int) -> float:
    return float(np.array(bits, dtype=np.uint64).view(np.float64))


def _f64_bits(x) -> bytes:
    return np.float64(x).tobytes()


# --------------------------------------------------------------------------
# 0-d arguments that overlap arrays the function writes


def count_to(n, buf):
    i = 0
    while i < n[()]:
        buf[i] = 0
        i += 1
    return i


def count_to_cmp(n, buf):
    i = 0
    while i < n:
        buf[i] = 0.0
        i += 1
    return i


def count_to_item(n, out):
    i = 0
    while i < n.item():
        out[i] = -1
        i += 1
    return i


def count_to_copy(n, out):
    m = n
    i = 0
    while i < m[()]:
        out[i] = 0
        i += 1
    return i


def count_to_2d(n, out):
    i = 0
    while i < n[()]:
        out[i % 2, i // 2] = 0
        i += 1
    return i


def loop_while_true(n, out):
    i = 0
    while n:
        out[0] = 0
        i += 1
        if i > 5:
            break
    return i


def _bound_in(size, at, value, dtype=np.int64):
    buf = np.zeros(size, dtype)
    buf[at] = value
    return buf[at:at + 1].reshape(()), buf


@pytest.mark.parametrize("at, value", [(3, 6), (5, 100), (0, 4), (7, 3)])
def test_a_bound_inside_the_written_buffer_stops_the_loop(at, value):
    # The loop zeroes buf[i]: when i reaches the bound's own element, the
    # bound becomes 0 and stock numba's loop stops there.
    opt = run_fresh(count_to, lambda: _bound_in(8, at, value))
    assert "ReadHoisted" in remark_keys(opt)
    # and disjoint arguments still take the fast copy
    run_fresh(count_to, lambda: (np.array(5), np.zeros(8, np.int64)))


def test_a_bound_seen_through_a_view_of_another_dtype():
    def make():
        buf = np.zeros(10)
        n = buf.view(np.int64)[5:6].reshape(())
        n[()] = 8
        return n, buf
    run_fresh(count_to_cmp, make)


def test_a_bound_inside_a_reversed_buffer():
    def make():
        n, buf = _bound_in(10, 2, 8)
        return n, buf[::-1]
    run_fresh(count_to_cmp, make)


def test_a_bound_half_overwritten_through_an_int32_view():
    def make():
        n, buf = _bound_in(6, 2, 9)
        return n, buf.view(np.int32)
    # buf[i] = 0 on int32 halves: at i == 4 the bound's low half becomes 0
    run_fresh(count_to, make)


def test_a_bound_in_a_misaligned_byte_view():
    def make():
        raw = np.zeros(40, np.uint8)
        n = raw[3:11].view(np.int64).reshape(())
        n[()] = 30
        return n, raw
    run_fresh(count_to, make)


def test_a_bound_read_through_item_and_a_copy():
    run_fresh(count_to_item, lambda: _bound_in(8, 4, 6))
    run_fresh(count_to_copy, lambda: _bound_in(8, 3, 6))


def test_a_bound_inside_a_transposed_2d_buffer():
    def make():
        n, buf = _bound_in(8, 5, 7)
        return n, buf.reshape(4, 2).T
    run_fresh(count_to_2d, make)


def test_a_truth_tested_0d_argument_overwritten_in_the_loop():
    def make():
        buf = np.ones(3, np.int64)
        return buf[0:1].reshape(()), buf
    run_fresh(loop_while_true, make)


def same_twice(n, m):
    i = 0
    while i < n:
        m[()] = m[()] - 1
        i += 1
    return i


def same_twice_item(n, m):
    i = 0
    while i < n[()]:
        m[()] = m[()] - 1
        i += 1
    return i


@pytest.mark.parametrize("f", [same_twice_item, same_twice])
def test_the_same_0d_array_passed_twice_one_written(f):
    def make():
        a = np.array(5)
        return a, a
    run_fresh(f, make)
    run_fresh(f, lambda: (np.array(5), np.array(5)))


def both_read(n, m):
    i = 0
    s = 0
    while i < n[()]:
        s += m[()]
        i += 1
    return s


def test_the_same_0d_array_passed_twice_only_read():
    def make():
        a = np.array(4)
        return a, a
    run_fresh(both_read, make)


def stored_bound(n, out):
    i = 0
    while i < 5:
        out[i] = n
        i += 1
    return out


def test_a_0d_argument_stored_into_the_buffer_it_lives_in():
    def make():
        x = np.arange(8.0)
        return x[1:2].reshape(()), x
    run_fresh(stored_bound, make)


def through_tuple(n, t):
    i = 0
    while i < n[()]:
        t[0][i] = 0
        i += 1
    return i


def test_an_array_in_a_tuple_argument_is_not_trusted():
    opt = run_fresh(through_tuple, lambda: (lambda nb: (nb[0], (nb[1], 1)))(_bound_in(8, 3, 6)))
    assert missed(opt, "OpaqueArgument")


def counted_from(n, k):
    i = k
    c = 0
    while i < n:
        i += 1
        c += 1
        if c > 20:
            break
    return c


@pytest.mark.parametrize("n, k", [
    (np.array(3, np.uint64), -2),                       # uint64 vs int64
    (np.array(2**63 + 1, np.uint64), 2**62),            # beyond int64
    (np.array(3.5), 0),                                 # float bound, int counter
    (np.array(-0.5), -3),
    (np.array(np.nan), 0),
    (np.array(3, np.int32), np.int64(-2)),
    (np.array(3, np.uint8), np.uint64(0)),
    (np.array(250, np.uint8), np.uint8(245)),
    (np.array(3.5, np.float32), 1.25),
    (np.array(3, np.int8), 250),                        # int8 bound, large counter
    (np.array(3, np.int8), -300),
    (np.array(0.1, np.float32), 0.1),                   # float32 bound, float64 counter
    (np.array(0.1, np.float32), 0.1 - 1),
    (np.array(3e38, np.float32), 1e39),
])
def test_comparisons_of_a_0d_bound_of_mixed_kinds(n, k):
    run_both(counted_from, n, k)


def loaded_bound(n, k, buf):
    i = k
    c = 0
    while i < n[()]:
        buf[c % 3] = i
        i += 1
        c += 1
        if c > 20:
            break
    return c


@pytest.mark.parametrize("n, k", [
    (np.array(2**64 - 1, np.uint64), -3),               # int64 < uint64 via float
    (np.array(0, np.uint64), -3),
    (np.array(2**63 + 3, np.uint64), 2**63 - 10),
    (np.array(5, np.uint64), np.uint64(2)),
    (np.array(np.nan), 0), (np.array(np.inf), 0), (np.array(-0.5), -3),
    (np.array(3, np.int8), -300), (np.array(200, np.uint8), np.int8(-5)),
    (np.array(True), 0), (np.array(2.5, np.float32), 0),
])
def test_a_loaded_0d_bound_of_mixed_kinds(n, k):
    opt = run_both(loaded_bound, n, k, np.zeros(3, np.int64))
    assert "ReadHoisted" in remark_keys(opt, "passed")


@njit
def bump(m):
    m[()] += 1


def bumped_bound(n):
    i = 0
    while i < n[()]:
        if i == 2:
            bump(n)
        i += 1
        if i > 30:
            break
    return i


def test_a_bound_written_by_an_inlined_callee_is_not_hoisted():
    opt = run_both(bumped_bound, np.array(5))
    assert "ReadHoisted" not in remark_keys(opt, "passed")
    assert missed(opt, "ArgumentNotOnlyRead")


def counted_down(n, k):
    c = 0
    i = k
    while n > i:
        i += 1
        c += 1
        if c > 5:
            break
    return c


@pytest.mark.parametrize("n, k", [(np.array(3, np.int8), 250), (np.array(0.1, np.float32), 0.1),
                                  (np.array(0.1, np.float32), -0.9)])
def test_a_0d_bound_on_the_left_of_the_comparison(n, k):
    run_both(counted_down, n, k)


def test_a_comparison_of_mixed_kinds_is_refused_with_a_reason():
    opt = run_both(counted_from, np.array(3.5), 0)
    why = missed(opt, "ArgumentCompared")
    assert why and "'n'" in why[0].message
    opt = run_both(counted_from, np.array(3, np.uint64), -2)
    assert missed(opt, "ArgumentCompared")


def gen_bound(n, buf):
    i = 0
    while i < n[()]:
        buf[i] = 0
        yield i
        i += 1


def test_a_generator_whose_bound_overlaps_the_buffer():
    def make():
        return _bound_in(6, 2, 5)
    s = list(njit(gen_bound)(*make()))
    o = list(lo.jit(gen_bound)(*make()))
    assert s == o == [0, 1, 2]
    assert list(lo.jit(gen_bound)(np.array(3), np.zeros(5, np.int64))) == [0, 1, 2]


# --------------------------------------------------------------------------
# fresh 0-d arrays: aliases, loops, casts


def alias_loop(n):
    a = np.zeros((), np.int64)
    b = a
    c = b
    for i in range(n):
        if i % 2:
            b[()] = c[()] + i
        else:
            c[()] = a[()] * 3
    return a[()], b[()], c.item()


def alias_copy_in_loop(n):
    a = np.zeros(())
    for i in range(n):
        b = a
        b[()] = b[()] + i
        c = b
        c[()] = c[()] * 0.5
    return a[()]


def test_an_aliased_0d_array_written_through_one_name_in_a_loop():
    opt = run_both(alias_loop, 7)
    assert "ScalarReplaced" in remark_keys(opt, "passed")
    run_both(alias_copy_in_loop, 9)


def alloc_in_loop(n):
    s = 0.0
    for i in range(n):
        a = np.zeros(())
        a[()] = a[()] + i
        s += a[()]
    return s


def alloc_in_loop_carry(n):
    a = np.zeros(())
    b = a
    for i in range(n):
        b[()] = b[()] + 1
        if i == 2:
            b = np.ones(())
    return a[()], b[()]


def alloc_in_branch(c, n):
    if c:
        a = np.zeros(())
    else:
        a = np.ones(())
    for _i in range(n):
        a[()] += 1
    return a[()]


def test_allocation_inside_a_loop_with_stores():
    run_both(alloc_in_loop, 5)
    opt = run_both(alloc_in_loop_carry, 5)
    why = missed(opt, "WrittenAliased")
    assert why and "written through" in why[0].message


def test_two_allocations_written_through_are_refused():
    for c in (True, False):
        opt = run_both(alloc_in_branch, c, 3)
    why = missed(opt, "WrittenAliased")
    assert why and "at 2 places" in why[0].message


@functools.cache
def store_as(dtype):
    def f(v):
        a = np.zeros((), dtype)
        a[()] = v
        b = a
        return b[()], a.item()
    return f


_NAN_PAYLOAD = _f64(0x7FF8000000000123)
_NAN_NEG = _f64(0xFFF8000020000123)


@pytest.mark.parametrize("dtype, value", [
    (np.int32, -3.7), (np.int32, 3.99), (np.int32, 2**31 + 5),
    (np.int8, 300), (np.int8, -129), (np.uint8, -1), (np.uint8, 256 + 7),
    (np.uint8, 3.9), (np.int16, 40000), (np.uint64, -1),
    (np.bool_, 0.5), (np.bool_, 2), (np.bool_, float("nan")), (np.bool_, -0.0),
    (np.bool_, 0),
    (np.float32, 0.1), (np.float32, 16777217), (np.float32, 2**60 + 2**36 + 1),
    (np.float32, np.uint64(2**63 + 2**39 + 1)), (np.float32, 1e300),
    (np.float32, _NAN_PAYLOAD), (np.float32, _NAN_NEG), (np.float32, -0.0),
    (np.float64, _NAN_PAYLOAD), (np.float64, -0.0), (np.float64, True),
    (np.complex64, 0.1), (np.complex64, 0.1 + 0.3j), (np.complex128, -0.0),
    (np.float64, 1 + 2j),  # a typing error in both
])
def test_a_store_casts_to_the_dtype(dtype, value):
    run_both(store_as(dtype), value)


def test_store_casts_go_through_the_scalar():
    opt = run_both(store_as(np.int8), 300)
    assert "ScalarReplaced" in remark_keys(opt, "passed")


def wrapping(n):
    a = np.zeros((), np.int8)
    u = np.zeros((), np.uint8)
    b = np.zeros((), np.bool_)
    for _i in range(n):
        a[()] = a[()] + 100
        u[()] -= 7
        b[()] = b[()] + 1
    return a[()], u[()], b[()]


def test_accumulators_wrap_as_their_dtype():
    run_both(wrapping, 5)


def complex_acc(x):
    a = np.zeros((), np.complex64)
    for i in range(x.shape[0]):
        a[()] = a[()] * x[i] + 1j
    return a[()]


def test_a_complex64_accumulator():
    run_both(complex_acc, np.array([0.1, 0.2, 3.0, -0.0]))


def of_scalar(v):
    a = np.array(v)
    b = a
    s = 0.0
    for i in range(3):
        s += b[()] * i
    return s, a.item(), bool(a), a[()]


@pytest.mark.parametrize("v", [np.float32(0.1), True, np.uint64(2**63 + 5), -0.0,
                               _NAN_PAYLOAD, np.int8(-5), 3 + 4j])
def test_np_array_of_a_scalar(v):
    run_both(of_scalar, v)


def empty_written_first(n):
    a = np.empty((), np.int16)
    a[()] = 40000
    b = a
    for _i in range(n):
        b[()] = b[()] * 3
    return a[()], b.item()


def ones_and_zeros():
    a = np.ones((), np.complex128)
    b = np.zeros((), np.bool_)
    c = np.ones((), np.uint8)
    d = np.zeros((), np.float32)
    return a[()], b[()], c[()], d.item()


def int_from_literal(x):
    a = np.array(0)
    a[()] = x
    b = np.empty(())
    b[()] = a[()] * 3
    return a[()], b[()]


def countdown(n):
    a = np.array(n)
    i = 0
    while i < a[()]:
        a[()] -= 1
        i += 1
    return i, a.item()


def test_np_empty_written_first_and_filled_allocations():
    run_both(empty_written_first, 5)
    run_both(empty_written_first, 0)
    run_both(alias_loop, 0)
    run_both(int_from_literal, 2.7)
    run_both(int_from_literal, -2**63)
    run_both(countdown, 9)
    run_both(countdown, -1)
    run_both(ones_and_zeros)


def truth(x):
    a = np.array(x)
    if a:
        return 1
    return 2


@pytest.mark.parametrize("x", [0.0, -0.0, float("nan"), 3, 0, False, 1j])
def test_truth_of_a_0d_array(x):
    run_both(truth, x)


def while_array(n):
    a = np.array(n)
    c = 0
    while a:
        a[()] = a[()] - 1
        c += 1
    return c


def bound_method(x):
    a = np.array(x)
    m = a.item
    a[()] = x + 1
    return m(), m()


def test_while_on_an_array_and_a_bound_item_method():
    run_both(while_array, 5)
    run_both(bound_method, 2)


def chained(x, y):
    a = np.zeros(())
    b = np.zeros(())
    a[()] = x
    b[()] = a
    a[()] = y
    return a[()], b[()]


def stored_into(n, buf):
    a = np.zeros((), np.int8)
    for i in range(n):
        a[()] = i * 50
        buf[i] = a
    return buf


def stored_slice(n, buf):
    a = np.ones(())
    a[()] = n
    buf[1:3] = a
    return buf


def test_one_0d_array_stored_into_another_and_into_buffers():
    run_both(chained, 1.5, 2.5)
    run_both(stored_into, 5, np.zeros(5, np.int64))
    run_both(stored_slice, 5, np.zeros(5))


def store_from_array(x):
    a = np.zeros(())
    a[()] = x
    return a.item()


def test_a_store_of_an_array_value():
    run_both(store_from_array, np.array(3.5))
    run_both(store_from_array, np.array(7, np.int8))
    run_both(store_from_array, np.array([3.5]))  # a typing error in both


# --------------------------------------------------------------------------
# uses that keep the array: results must not change and remarks say why


def returned(x):
    a = np.zeros(())
    a[()] = x
    return a


def in_tuple(x):
    a = np.zeros(())
    a[()] = x
    return (a, 1)


def in_list(x):
    a = np.zeros(())
    a[()] = x
    lst = [a]
    a[()] = 2.0
    return lst[0].item()


def reshaped(x):
    a = np.zeros(())
    a[()] = x
    b = a.reshape(1)
    b[0] = 7.0
    return a[()]


def copied(x):
    a = np.zeros(())
    a[()] = x
    b = a.copy()
    b[()] = 7.0
    return a[()], b[()]


def arithmetic(x):
    a = np.zeros(())
    a[()] = x
    b = a + 1.0
    return b


def ellipsis_store(x):
    a = np.zeros(())
    a[...] = x
    return a[()]


def summed(x):
    a = np.zeros(())
    a[()] = x
    return np.sum(a)


@pytest.mark.parametrize("f, key, says", [
    (returned, "Returned", "'a' is returned"),
    (in_tuple, "InContainer", "'a' is put in a container"),
    (in_list, "InContainer", "'a' is put in a container"),
    (reshaped, "AttributeRead", "attribute 'reshape'"),
    (copied, "AttributeRead", "attribute 'copy'"),
    (arithmetic, "ArrayOperand", "operand of an array operator"),
    (ellipsis_store, "IndexedStore", "non-empty index"),
    (summed, "PassedToCall", "passed to 'sum'"),
])
def test_a_kept_array_keeps_its_semantics_and_says_why(f, key, says):
    opt = run_both(f, 1.5)
    why = missed(opt, key)
    assert why, remark_keys(opt)
    assert says in why[0].message and "stays an array" in why[0].message


def ellipsis_read(x):
    a = np.zeros(())
    a[()] = x
    return a[...]


def filled(x):
    a = np.zeros(())
    a.fill(x)
    return a[()]


def add_out(x, y):
    a = np.zeros(())
    np.add(x, y, out=a)
    return a[()]


@pytest.mark.parametrize("f, args", [(ellipsis_read, (1.5,)), (filled, (1.5,)),
                                     (add_out, (np.array(1.5), np.array(2.0)))])
def test_unsupported_array_uses_fail_the_same_way(f, args):
    run_both(f, *args)


@njit
def doubled(a):
    a[()] = a[()] * 2
    return a[()]


def passed_on(x):
    a = np.zeros(())
    a[()] = x
    r = doubled(a)
    return r, a[()]


def test_a_0d_array_passed_to_another_njit_function():
    run_both(passed_on, 1.5)


def closure(n):
    a = np.zeros(())

    def inc(k):
        a[()] = a[()] + k
    for i in range(n):
        inc(i)
    return a[()]


def test_a_0d_array_written_by_a_closure():
    run_both(closure, 5)


def gen_acc(n):
    a = np.zeros(())
    for i in range(n):
        a[()] += i
        yield a[()]


def test_a_0d_accumulator_in_a_generator():
    assert list(njit(gen_acc)(5)) == list(lo.jit(gen_acc)(5))


# --------------------------------------------------------------------------
# exceptions and side effects, in order


def raise_in_loop(n, out):
    a = np.zeros(())
    for i in range(n):
        a[()] = a[()] + i
        out[0] = a[()]
        if a[()] > 5:
            raise ValueError("too big", i)
    return a[()]


def test_an_exception_raised_after_a_store_in_the_loop():
    run_both(raise_in_loop, 10, np.zeros(1))
    run_both(raise_in_loop, 3, np.zeros(1))


def printed(n):
    a = np.zeros((), np.int8)
    lst = []
    for _i in range(n):
        a[()] = a[()] + 100
        print(a[()])
        lst.append(a[()])
    return a[()], lst


def test_prints_and_appends_in_order(capsys):
    s = njit(printed)(4)
    out_stock = capsys.readouterr().out
    o = lo.jit(printed)(4)
    out_opt = capsys.readouterr().out
    assert out_stock == out_opt and out_stock.split() == ["100", "-56", "44", "-112"]
    assert s[0] == o[0] and type(s[0]) is type(o[0]) and s[1] == o[1]


# --------------------------------------------------------------------------
# tuples built to be unpacked (the pass forwards their items)


def stale_tuple(n, k):
    s = 0.0
    for i in range(n):
        a = i * 1.0
        if i == 0:
            t = (a, a + 0.5)
        p, q = t
        s += p * 10 + q + k[()]
    return s


def stale_tuple_fresh(n):
    z = np.zeros(())
    s = 0.0
    for i in range(n):
        a = i * 1.0
        if i == 0:
            t = (a, a + 0.5)
        p, q = t
        s += p * 10 + q
    return s + z[()]


def stale_tuple_of_0d(n):
    s = 0.0
    for i in range(n):
        a = np.array(i * 1.0)
        if i == 0:
            t = (a, 1.0)
        p, q = t
        s += p[()] * 10 + q
    return s


# Found by this file: tuples.forward once forwarded a tuple built in an
# earlier iteration (the items reassigned since); now only within a block.
@pytest.mark.parametrize("which", ["0-d argument", "0-d allocation", "0-d item"])
def test_a_tuple_built_in_an_earlier_iteration_keeps_its_items(which):
    if which == "0-d argument":
        run_both(stale_tuple, 4, np.array(0.0))
    elif which == "0-d allocation":
        run_both(stale_tuple_fresh, 4)
    else:  # stock 4.0, optimised 64.0
        run_both(stale_tuple_of_0d, 4)


def unpacked(x):
    z = np.zeros(())
    t = (x, x + 1.0)
    a, b = t
    return a, b, z[()]


def unpack_list(xs):
    z = np.zeros(())
    a, b = xs
    return a + b + z[()]


def test_tuples_unpacked_plainly():
    run_both(unpacked, 1.5)
    run_both(unpack_list, np.array([1.0, 2.0]))
    run_both(unpack_list, np.array([1.0, 2.0, 3.0]))  # the ValueError stays


# --------------------------------------------------------------------------
# allocations


def accumulate(x):
    acc = np.zeros(())
    for i in range(x.shape[0]):
        acc[()] = acc[()] + x[i]
    return acc.item()


def test_a_0d_accumulator_allocates_nothing_per_iteration():
    _nrt_python.memsys_enable_stats()
    try:
        def count(f, *args):
            f(*args)
            before = rtsys.get_allocation_stats().alloc
            f(*args)
            return rtsys.get_allocation_stats().alloc - before
        x = np.random.default_rng(0).standard_normal(1000)
        opt = run_both(accumulate, x)
        small, large = np.arange(10.0), np.arange(5000.0)
        assert count(opt, small) == count(opt, large)
        # A store into an array allocated in the loop is refused (the
        # contract): one allocation per iteration, as stock.
        stock, opt = _pair(alloc_in_loop)
        assert count(opt, 1000) == count(stock, 1000) == 1000
        why = missed(opt, "WrittenAliased")
        assert why and "allocated in a loop" in why[0].message
    finally:
        _nrt_python.memsys_disable_stats()


def test_the_outcome_helper_still_compares():
    # a sanity check of the comparison this file relies on
    s = outcome(njit(store_as(np.float32)), (_NAN_PAYLOAD,))
    assert s[0] == "ok" and _f64_bits(s[1][0]) == _f64_bits(np.float32(_NAN_PAYLOAD))
