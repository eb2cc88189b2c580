"""The fuse-loops pass: consecutive range loops become one, temporaries
between them disappear; refusals leave the IR alone and say why."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from conftest import remark_keys, run_both
from numba import njit, typeof, types
from numba.core import ir
from numba.core.compiler import run_frontend
from numba.core.runtime import _nrt_python, rtsys
from numba.typed import Dict

import numba_loopopt as lo
from numba_loopopt.analysis import effects
from numba_loopopt.analysis.defuse import BlockScans, DefUse
from numba_loopopt.runtime import check_shape
from numba_loopopt.testing import check, ir_after
from numba_loopopt.transforms import fuse_loops as fl

PASS = "loopopt_fuse_loops"

# Some kernels take a (reflected) list argument, which numba will deprecate.
pytestmark = pytest.mark.filterwarnings(
    "ignore::numba.core.errors.NumbaPendingDeprecationWarning")
F64 = types.float64[:]
SIZES = (0, 1, 5, 33)


def arrays(n, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(rng.random(n) for _ in range(k))


def two_loops(a, b, c):
    n = a.shape[0]
    tmp = np.empty(n)
    for i in range(n):
        tmp[i] = a[i] * b[i] + c[i]
    s = 0.0
    for i in range(n):
        s += tmp[i]
    return s


def test_fill_then_reduce_becomes_one_loop_without_the_temporary():
    dump, _ = ir_after(two_loops, (F64, F64, F64), PASS)
    check(dump, r"""
        CHECK:     call $loopopt_check_shape(n
        CHECK:     iternext
        CHECK-NOT: iternext
        CHECK:     [[V:\$loopopt_tmp_value[\w.]*]] = call $loopopt_opaque{{[\w.]*}}($binop_add
        CHECK-NOT: {{\btmp\b}}
        CHECK:     [[READ:\$[\w.]+]] = [[V]]{{$}}
        CHECK:     = inplace_binop(fn=<built-in function iadd>, {{.*}}lhs=s, rhs=[[READ]]
        CHECK:     return
    """)
    assert dump.count("iternext") == 1 and "tmp = " not in dump
    for n in SIZES:
        disp = run_both(two_loops, *arrays(n))
    assert remark_keys(disp) == ["Fused", "Contracted"]


def test_remarks_name_the_lines():
    disp = lo.jit(two_loops)
    disp(*arrays(3))
    fused, contracted = lo.remarks(disp, disp.signatures[0])
    first = two_loops.__code__.co_firstlineno
    assert fused.line == first + 3 and f"line {first + 6}" in fused.message
    assert "temporary 'tmp' is gone" in contracted.message


@pytest.fixture
def nrt_stats():
    _nrt_python.memsys_enable_stats()
    yield lambda: rtsys.get_allocation_stats().alloc
    _nrt_python.memsys_disable_stats()


def one_loop(a, b, c):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i] + c[i]
    return s


def test_contracted_loop_allocates_what_one_loop_does(nrt_stats):
    # A call allocates a few NRT objects however simple its body (argument
    # handling); the fused kernel must allocate exactly what the hand-written
    # single loop does, and the unfused one one array more.
    a, b, c = arrays(1000)
    unfused = lo.jit(options={"fuse_loops": False})(two_loops)
    fused, hand = lo.jit(two_loops), lo.jit(one_loop)

    def allocations(disp):
        disp(a, b, c)
        before = nrt_stats()
        disp(a, b, c)
        return nrt_stats() - before

    assert allocations(fused) == allocations(hand) == allocations(unfused) - 1


def sized_by_argument(a, n):
    tmp = np.empty(n)
    for i in range(n):
        tmp[i] = a[i] * 2.0
    s = 0.0
    for j in range(n):
        s += tmp[j]
    return s


def test_contraction_keeps_the_allocations_error():
    for n in (-1, 0, 4):
        disp = run_both(sized_by_argument, np.arange(5.0), n)
    assert remark_keys(disp) == ["Fused", "Contracted"]


def returns_temporary(a, b):
    n = len(a)
    tmp = np.empty(n)
    for i in range(n):
        tmp[i] = a[i] + b[i]
    s = 0.0
    for i in range(n):
        s += tmp[i] * 2.0
    return s, tmp


def two_maps(a, b):
    n = a.shape[0]
    x = np.empty(n)
    y = np.zeros(n)
    for i in range(n):
        x[i] = a[i] * 2.0
    for i in range(len(a)):
        y[i] = b[i] + 1.0
    return x, y


def chain_of_three(a, b):
    n = a.shape[0]
    t1 = np.empty(n)
    for i in range(n):
        t1[i] = a[i] * b[i]
    t2 = np.empty(n)
    for i in range(n):
        t2[i] = np.sqrt(abs(t1[i])) + 1.0
    total = 0.0
    for k in range(n):
        total += t2[k]
    return total


def bound_from_the_temporary(a):
    tmp = np.empty(a.shape[0])
    for i in range(a.shape[0]):
        tmp[i] = a[i] - 0.5
    acc = 0.0
    for i in range(tmp.shape[0]):
        acc += tmp[i] * tmp[i]
    return acc


def float32_temporary(a):
    n = a.shape[0]
    tmp = np.empty(n, dtype=np.float32)
    for i in range(n):
        tmp[i] = a[i] * 3.0
    s = 0.0
    for i in range(n):
        s += tmp[i]
    return s


def conditional_store(a):
    n = a.shape[0]
    tmp = np.zeros(n)
    for i in range(n):
        if a[i] > 0.5:
            tmp[i] = a[i]
    s = 0.0
    for i in range(n):
        s += tmp[i]
    return s


def with_code_between(a, b):
    n = a.shape[0]
    tmp = np.empty(n)
    for i in range(n):
        tmp[i] = a[i] * b[i]
    scale = 2.0
    s = 0.0
    for i in range(n):
        s += tmp[i] * scale
    return s


FUSED = [
    (returns_temporary, lambda n: arrays(n, 2), ["Fused", "TemporaryKept"]),
    (two_maps, lambda n: arrays(n, 2), ["Fused"]),
    (chain_of_three, lambda n: arrays(n, 2), ["Fused", "Contracted", "Fused", "Contracted"]),
    (bound_from_the_temporary, lambda n: arrays(n, 1), ["Fused", "TemporaryKept"]),
    (float32_temporary, lambda n: arrays(n, 1), ["Fused", "TemporaryKept"]),
    (conditional_store, lambda n: arrays(n, 1), ["Fused", "TemporaryKept"]),
    (with_code_between, lambda n: arrays(n, 2), ["Fused", "Contracted"]),
]


@pytest.mark.parametrize("kernel,make_args,keys", FUSED, ids=[f[0].__name__ for f in FUSED])
def test_fused_kernels_match_stock(kernel, make_args, keys):
    for n in SIZES:
        disp = run_both(kernel, *make_args(n))
    assert remark_keys(disp) == keys, lo.remarks(disp)


def test_kept_temporary_says_why():
    disp = lo.jit(float32_temporary)
    disp(np.ones(3))
    kept = [r for r in lo.remarks(disp, disp.signatures[0]) if r.key == "TemporaryKept"]
    assert "type differs from the array's dtype" in kept[0].message


# --- refusals -----------------------------------------------------------------


def shifted_read(a):
    n = a.shape[0]
    tmp = np.empty(n + 1)
    for i in range(n):
        tmp[i + 1] = a[i]
    s = 0.0
    for i in range(n):
        s += tmp[i + 1]
    return s


def reversed_read(a):
    n = a.shape[0]
    tmp = np.empty(n)
    for i in range(n):
        tmp[i] = a[i] * 2.0
    s = 0.0
    for i in range(n):
        s = s * 0.5 + tmp[n - 1 - i]
    return s


def different_trip_counts(a, m):
    n = a.shape[0]
    tmp = np.zeros(n)
    for i in range(n):
        tmp[i] = a[i]
    s = 0.0
    for i in range(m):
        s += tmp[i]
    return s


def scalar_carried(a):
    n = a.shape[0]
    total = 0.0
    for i in range(n):
        total += a[i]
    out = np.empty(n)
    for i in range(n):
        out[i] = a[i] / total
    return out


def with_print(a, k):
    n = a.shape[0]
    tmp = np.empty(n)
    for i in range(n):
        tmp[i] = a[i]
        print(i)
    s = 0.0
    for i in range(n):
        s += tmp[i] + 1 // k[i]
    return s


def touches_array_between(a):
    n = a.shape[0]
    tmp = np.empty(n)
    for i in range(n):
        tmp[i] = a[i]
    first = tmp[0]
    s = 0.0
    for i in range(n):
        s += tmp[i] - first
    return s


def prints_between(a):
    n = a.shape[0]
    tmp = np.empty(n)
    for i in range(n):
        tmp[i] = a[i]
    print(n)
    s = 0.0
    for i in range(n):
        s += tmp[i]
    return s


def assigns_between(a, flag):
    # Under an 'if', numba does not rename the second 'x' (as it does in
    # code every path runs): the statement between the loops assigns the
    # name the first loop assigns.
    n = a.shape[0]
    s = 0.0
    x = 0.0
    if flag:
        tmp = np.empty(n)
        for i in range(n):
            x = a[i]
            tmp[i] = x
        x = -1.0
        for i in range(n):
            s += tmp[i]
    return s + x


def writes_an_argument(a, out):
    n = a.shape[0]
    for i in range(n):
        out[i] = a[i] * 2.0
    s = 0.0
    for i in range(n):
        s += a[i] + out[i]
    return s


def both_may_raise(a, b):
    n = a.shape[0]
    tmp = np.empty(n)
    for i in range(n):
        tmp[i] = 1.0 / a[i]
    s = 0.0
    for i in range(n):
        s += b[i] / tmp[i]
    return s


def with_break(a):
    n = a.shape[0]
    tmp = np.empty(n)
    for i in range(n):
        tmp[i] = a[i]
        if a[i] > 10.0:
            break
    s = 0.0
    for i in range(n):
        s += tmp[i]
    return s


REFUSED = [
    (shifted_read, lambda n: arrays(n, 1), "ShiftedAccess", "another index"),
    (reversed_read, lambda n: arrays(n, 1), "ShiftedAccess", "'tmp'"),
    (different_trip_counts, lambda n: (arrays(n, 1)[0], max(n - 1, 0)),
     "DifferentTripCount", "range(n) and range(m)"),
    (scalar_carried, lambda n: arrays(n, 1), "ScalarDependence", "'total'"),
    (with_print, lambda n: (arrays(n, 1)[0], np.ones(n, dtype=np.int64)),
     "EffectsBeforeRaise", "prints"),
    (touches_array_between, lambda n: arrays(max(n, 1), 1), "InterveningCodeDependsOnLoop",
     "reads 'tmp'"),
    (assigns_between, lambda n: (arrays(n, 1)[0], True), "InterveningCodeDependsOnLoop",
     "assigns 'x'"),
    (prints_between, lambda n: arrays(n, 1), "InterveningCodeHasEffects", "line"),
    (writes_an_argument, lambda n: (arrays(n, 1)[0], np.zeros(n)), "WrittenArrayNotLocal",
     "'out'"),
    (both_may_raise, lambda n: arrays(n, 2), "BothMayRaise", "exception"),
]


def negated_nan_sum(a):
    n = a.shape[0]
    tmp = np.empty(n)
    for i in range(n):
        tmp[i] = -a[i]
    s = 0.0
    for i in range(n):
        s += tmp[i]
    return s


def test_contracted_values_keep_the_sign_of_a_nan():
    # Without a fence LLVM folds 's + -x' into 's - x': the NaN's sign differs.
    disp = run_both(negated_nan_sum, np.array([1.0, np.nan, 2.0]))
    assert remark_keys(disp) == ["Fused", "Contracted"]
    disp = run_both(negated_nan_sum, np.array([np.inf, -np.nan]), fastmath=False)


@pytest.mark.parametrize("kernel,make_args,key,reason", REFUSED,
                         ids=[r[0].__name__ for r in REFUSED])
def test_refusals_leave_ir_alone_and_say_why(kernel, make_args, key, reason, capsys):
    args = make_args(3)
    sig = tuple(typeof(x) for x in args)
    on, _ = ir_after(kernel, sig, PASS, options={"inline": False})
    off, _ = ir_after(kernel, sig, PASS, options={"inline": False, "fuse_loops": False})
    assert on == off
    for n in SIZES[:3]:
        disp = run_both(kernel, *make_args(n))
    found = [r for r in lo.remarks(disp, disp.signatures[0]) if r.kind.value == "missed"]
    assert [r.key for r in found] == [key], [str(r) for r in found]
    assert reason in found[0].message, str(found[0])


def test_break_in_a_loop_is_not_a_candidate_and_says_so():
    disp = run_both(with_break, *arrays(4, 1))
    assert remark_keys(disp) == ["EarlyExit"]
    (why,) = [r for r in lo.remarks(disp, disp.signatures[0]) if r.pass_name == "fuse-loops"]
    assert why.kind.value == "missed" and "'break'" in why.message
    assert why.arguments == {"line": with_break.__code__.co_firstlineno + 5}  # the if


def test_numpy_error_model_lets_dividing_loops_fuse():
    for n in SIZES:
        disp = run_both(both_may_raise, *arrays(n, 2), error_model="numpy")
    assert remark_keys(disp) == ["Fused", "Contracted"]


# --- regressions found by review and fuzzing ----------------------------------


def whole_array_in_second_loop(a):
    n = a.shape[0]
    tmp = np.zeros(n)
    for i in range(n):
        tmp[i] = a[i]
    s = 0.0
    for _ in range(n):
        s += np.sqrt(tmp)[n - 1]
    return s


def aliased_in_second_loop(a):
    n = a.shape[0]
    tmp = np.zeros(n)
    for i in range(n):
        tmp[i] = a[i]
    s = 0.0
    for _ in range(n):
        t = tmp
        s += t[n - 1]
    return s


def index_reassigned(a):
    n = a.shape[0]
    tmp = np.zeros(n + 1)
    for i in range(n):
        tmp[i] = a[i]
    s = 0.0
    for i in range(n):
        i = i + 1  # noqa: PLW2901 - the point of the test
        s += tmp[i]
    return s


def range_may_raise(a, b):
    n = a.shape[0]
    t = np.empty(n, dtype=np.int64)
    for i in range(n):
        t[i] = 1 // a[i]
    s = 0
    for i in range(n):
        s += len(range(0, 4, b[i]))
    return s, t


def short_temporary(a):
    n = a.shape[0]
    tmp = np.empty(n - 1)
    for i in range(n):
        tmp[i] = a[i]
    s = 0.0
    for i in range(n):
        s += tmp[i]
    return s


def length_between(a):
    n = a.shape[0]
    tmp = np.empty(n)
    for i in range(n):
        tmp[i] = a[i] * 2.0
    m = len(tmp)
    s = 0.0
    for i in range(n):
        s += tmp[i] * m
    return s


REGRESSIONS = [
    (whole_array_in_second_loop, (np.arange(1.0, 5.0),), {}, ["WholeArrayUse"]),
    (aliased_in_second_loop, (np.arange(1.0, 5.0),), {}, ["WholeArrayUse"]),
    # The recogniser's reason (no remark before fuse-loops said why).
    (index_reassigned, (np.arange(1.0, 5.0),), {}, ["IndexReassigned"]),
    (range_may_raise, (np.array([1, 0]), np.array([0, 1])), {}, ["BothMayRaise"]),
    (short_temporary, (np.arange(1.0, 5.0),), {"boundscheck": True},
     ["BothMayRaise"]),
    # len(tmp) needs the array, so it stays; but the loops fuse.
    (length_between, (np.arange(1.0, 5.0),), {}, ["Fused", "TemporaryKept"]),
]


@pytest.mark.parametrize("kernel,args,kwargs,keys", REGRESSIONS,
                         ids=[r[0].__name__ for r in REGRESSIONS])
def test_regressions(kernel, args, kwargs, keys):
    disp = run_both(kernel, *args, **kwargs)
    assert remark_keys(disp) == keys, lo.remarks(disp)


def test_numba_boundscheck_environment_variable_is_honoured(monkeypatch):
    from numba.core import config

    monkeypatch.setattr(config, "BOUNDSCHECK", 1)
    disp = run_both(short_temporary, np.arange(1.0, 5.0))
    assert "Contracted" not in remark_keys(disp)


def test_the_shape_check_is_known_before_the_first_compile():
    # numba refreshes its typing context once per compilation: the overload
    # generated code calls must exist before the first loopopt compile.
    import subprocess
    import sys

    code = ("import numpy as np, numba\n"
            "from test_fuse_loops import two_loops, arrays\n"
            "numba.njit(two_loops)(*arrays(5))\n"
            "import numba_loopopt as lo\n"
            "d = lo.jit(two_loops); d(*arrays(5))\n"
            "print([r.key for r in lo.remarks(d, d.signatures[0])])\n")
    import os

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.stdout.strip() == "['Fused', 'Contracted']", out.stderr


# -- Counted while loops, as the while-to-range pass leaves them ---------------


def two_while_loops(a, b, c):
    n = a.shape[0]
    tmp = np.empty(n)
    i = 0
    while i < n:
        tmp[i] = a[i] * b[i] + c[i]
        i += 1
    s = 0.0
    j = 0
    while j < n:
        s += tmp[j]
        j += 1
    return s, i, j


def scan_style_loops(a, b, c):
    # PyTensor's scan shape, twice: while-to-range removes the flag's latch
    # tests, leaving counted loops entered through the same flag test.
    n = a.shape[0]
    cond = np.zeros((), dtype=np.bool_)
    tmp = np.empty(n)
    i = 0
    while i < n and not cond.item():
        tmp[i] = a[i] * b[i] + c[i]
        i += 1
    s = 0.0
    k = 0
    while k < n and not cond.item():
        s += tmp[k]
        k += 1
    return s, i, k


def three_while_loops(a, b):
    n = len(a)
    u = np.empty(n)
    i = 0
    while i < n:
        u[i] = a[i] * 2.0
        i += 1
    v = np.empty(n)
    j = 0
    while j < n:
        v[j] = u[j] + b[j]
        j += 1
    s = 0.0
    k = 0
    while k < n:
        s += v[k]
        k += 1
    return s


def step_two_from_one(a, m):
    n = a.shape[0]
    out = np.zeros(n)
    tmp = np.empty(n)
    i = 1
    while i < m:
        tmp[i] = a[i] + 1.0
        i += 2
    j = 1
    while j < m:
        out[j] = tmp[j] * 3.0
        j += 2
    return out, i, j


WHILE_FUSED = [
    (two_while_loops, lambda n: arrays(n), ["Fused", "Contracted"]),
    (scan_style_loops, lambda n: arrays(n), ["Fused", "Contracted"]),
    (three_while_loops, lambda n: arrays(n, 2), ["Fused", "Contracted", "Fused",
                                                 "Contracted"]),
    (step_two_from_one, lambda n: (arrays(n, 1)[0], n), ["Fused", "Contracted"]),
]


@pytest.mark.parametrize("kernel,make_args,keys", WHILE_FUSED,
                         ids=[k[0].__name__ for k in WHILE_FUSED])
def test_counted_while_loops_fuse(kernel, make_args, keys):
    for n in SIZES:
        disp = run_both(kernel, *make_args(n))
    fuse_keys = [r.key for r in lo.remarks(disp, disp.signatures[0])
                 if r.pass_name == "fuse-loops"]
    assert fuse_keys == keys, lo.remarks(disp)


def test_fused_while_loops_test_one_counter_and_allocate_no_temporary(nrt_stats):
    dump, _ = ir_after(two_while_loops, (F64, F64, F64), PASS)
    check(dump, r"""
        CHECK:     call $loopopt_check_shape(n
        CHECK:     j < n
        CHECK-NOT: i < n
        CHECK:     [[V:\$loopopt_tmp_value[\w.]*]] = call $loopopt_opaque{{[\w.]*}}($binop_add
        CHECK:     i = $binop_iadd
        CHECK:     = inplace_binop(fn=<built-in function iadd>, {{.*}}lhs=s, rhs=
        CHECK:     j = $binop_iadd
        CHECK:     j < n
        CHECK:     return
    """)
    a, b, c = arrays(1000)
    fused, unfused = lo.jit(two_while_loops), lo.jit(options={"fuse_loops": False})(
        two_while_loops)

    def allocations(disp):
        disp(a, b, c)
        before = nrt_stats()
        disp(a, b, c)
        return nrt_stats() - before

    assert allocations(fused) == allocations(unfused) - 1


def flag_set_between(a, stop):
    n = a.shape[0]
    tmp = np.empty(n)
    i = 0
    while i < n and not stop:
        tmp[i] = a[i]
        i += 1
    stop = n > 3
    s = 0.0
    k = 0
    while k < n and not stop:
        s += tmp[k]
        k += 1
    return s


def guard_only_on_first(a):
    n = a.shape[0]
    cond = np.zeros((), dtype=np.bool_)
    tmp = np.empty(n)
    i = 0
    while i < n and not cond.item():
        tmp[i] = a[i]
        i += 1
    s = 0.0
    k = 0
    while k < n:
        s += tmp[k]
        k += 1
    return s


def while_then_for(a):
    n = a.shape[0]
    tmp = np.empty(n)
    i = 0
    while i < n:
        tmp[i] = a[i]
        i += 1
    s = 0.0
    for k in range(n):
        s += tmp[k]
    return s


def while_shifted_read(a):
    n = a.shape[0]
    tmp = np.empty(n + 1)
    tmp[n] = 0.0
    i = 0
    while i < n:
        tmp[i] = a[i]
        i += 1
    s = 0.0
    k = 0
    while k < n:
        s += tmp[k + 1]
        k += 1
    return s


def different_starts(a):
    n = a.shape[0]
    tmp = np.zeros(n)
    i = 0
    while i < n:
        tmp[i] = a[i]
        i += 1
    s = 0.0
    k = 1
    while k < n:
        s += tmp[k]
        k += 1
    return s


def counter_read_after_increment(a):
    # 'tmp[i - 1]' after 'i += 1': the counter is not the iteration's index
    # there, so the loop is no candidate at all.
    n = a.shape[0]
    tmp = np.empty(n)
    i = 0
    while i < n:
        i += 1
        tmp[i - 1] = a[i - 1]
    s = 0.0
    k = 0
    while k < n:
        s += tmp[k]
        k += 1
    return s


WHILE_REFUSED = [
    (flag_set_between, "DifferentEntryTests"),
    (guard_only_on_first, "DifferentEntryTests"),
    (while_then_for, "LoopForms"),
    (while_shifted_read, "ShiftedAccess"),
    (different_starts, "DifferentTripCount"),
    (counter_read_after_increment, "CounterUpdateNotLast"),
]


@pytest.mark.parametrize("kernel,key", WHILE_REFUSED, ids=[k[0].__name__ for k in WHILE_REFUSED])
def test_counted_while_loops_refused(kernel, key):
    for n in (1, 2, 7):
        args = (np.random.default_rng(n).random(n),)
        disp = run_both(kernel, *args, *((False,) if kernel is flag_set_between else ()))
    fuse = [r for r in lo.remarks(disp, disp.signatures[0]) if r.pass_name == "fuse-loops"]
    assert [r.key for r in fuse] == ([key] if key else []), lo.remarks(disp)


# --- effects: writes through calls, effects before exceptions, huge temporaries
#
# Each kernel runs stock and optimised on fresh arguments (typed dicts cannot
# be deep-copied), and everything the caller can observe must agree: the
# result or the exception's type and message, every argument's contents
# afterwards, and what was printed.


def _snapshot(x):
    """A comparable, bit-exact picture of a value."""
    if isinstance(x, np.ndarray):
        return ("array", x.dtype.str, x.shape, x.tobytes())
    if isinstance(x, float):
        return ("float", np.float64(x).tobytes())
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, tuple(_snapshot(v) for v in x))
    if isinstance(x, Dict):
        return ("dict", tuple(sorted((k, _snapshot(v)) for k, v in x.items())))
    return (type(x).__name__, repr(x))


def observed(disp, make_args):
    args = make_args()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        try:
            result = ("ok", _snapshot(disp(*args)))
        except Exception as exc:  # noqa: BLE001 - comparing exceptions
            result = ("raise", type(exc).__name__, str(exc))
    return result, _snapshot(args), printed.getvalue()


def same_as_stock(kernel, make_args, **njit_kwargs):
    """Run ``kernel`` stock and optimised on ``make_args()``; assert the
    caller sees the same.  Returns the optimised dispatcher and the outcome."""
    stock, opt = njit(**njit_kwargs)(kernel), lo.jit(**njit_kwargs)(kernel)
    want, got = observed(stock, make_args), observed(opt, make_args)
    assert got == want
    return opt, want


def fuse_keys(disp) -> list[str]:
    return [r.key for rs in lo.remarks(disp).values() for r in rs
            if r.pass_name == "fuse-loops"]


def missed(disp) -> list:
    return [r for rs in lo.remarks(disp).values() for r in rs
            if r.pass_name == "fuse-loops" and r.kind.value == "missed"]


# A ufunc's output argument is a write.


def out_maximum(a):
    n = a.shape[0]
    m = np.zeros(n)
    for i in range(n):
        np.maximum(a, i * 1.0, m)
    s = 0.0
    for _ in range(n):
        s += m[0]
    return s


def out_add_read_at_index(a):
    n = a.shape[0]
    m = np.zeros(n)
    for i in range(n):
        np.add(a, i * 1.0, m)
    s = 0.0
    for i in range(n):
        s += m[i]
    return s


def out_sqrt(a):
    n = a.shape[0]
    m = np.zeros(n)
    for i in range(n):
        np.sqrt(a * i, m)
    s = 0.0
    for _ in range(n):
        s += m[n - 1]
    return s


def out_in_second_loop(a):
    n = a.shape[0]
    m = np.zeros(n)
    s = 0.0
    for i in range(n):
        s += m[i]
    for i in range(n):
        np.minimum(a, -1.0 * i, m)
    return s, m


def out_argument(a, out):
    n = a.shape[0]
    for i in range(n):
        np.maximum(a, i * 1.0, out)
    s = 0.0
    for i in range(n):
        s += out[i]
    return s


def _out_keyword(call):
    namespace = {"np": np}
    exec(f"""def kernel(a):
    n = a.shape[0]
    m = np.zeros(n)
    for i in range(n):
        {call}
    s = 0.0
    for _ in range(n):
        s += m[0]
    return s
""", namespace)
    return namespace["kernel"]


def fill_method(a):
    n = a.shape[0]
    m = np.zeros(n)
    for i in range(n):
        m.fill(a[i])
    s = 0.0
    for i in range(n):
        s += m[i]
    return s


def ufunc_without_out(a):
    # The same ufuncs without an output argument: pure, and the loops fuse.
    n = a.shape[0]
    m = np.empty(n)
    for i in range(n):
        m[i] = np.maximum(a[i], i * 0.5) + np.sqrt(np.abs(a[i]))
    s = 0.0
    for i in range(n):
        s += np.add(m[i], 1.0)
    return s


UFUNC_OUT = [
    (out_maximum, lambda: (np.arange(4.0),), "UfuncOutput", "numpy.maximum"),
    (out_add_read_at_index, lambda: (np.arange(4.0),), "UfuncOutput", "numpy.add"),
    (out_sqrt, lambda: (np.arange(4.0),), "UfuncOutput", "argument 2 ('m')"),
    (out_in_second_loop, lambda: (np.arange(4.0),), "UfuncOutput", "numpy.minimum"),
    (out_argument, lambda: (np.arange(4.0), np.zeros(4)), "UfuncOutput", "'out'"),
    (fill_method, lambda: (np.arange(4.0),), "SideEffects", "may have side effects"),
]


@pytest.mark.parametrize("kernel,make_args,key,reason", UFUNC_OUT,
                         ids=[k[0].__name__ for k in UFUNC_OUT])
def test_ufunc_output_argument_is_a_write(kernel, make_args, key, reason):
    disp, _ = same_as_stock(kernel, make_args)
    found = missed(disp)
    assert [r.key for r in found] == [key], found
    assert reason in found[0].message, str(found[0])
    sig = tuple(typeof(x) for x in make_args())
    on, _ = ir_after(kernel, sig, PASS, options={"inline": False})
    off, _ = ir_after(kernel, sig, PASS, options={"inline": False, "fuse_loops": False})
    assert on == off


@pytest.mark.parametrize("call", ["np.maximum(a, i * 1.0, out=m)",
                                  "np.add(a, i * 1.0, out=m)", "np.sqrt(a * i, out=m)"])
def test_ufunc_out_keyword_is_refused_before_typing(call):
    # numba 0.68 rejects out= when typing (both versions raise the same); the
    # pass runs before typing and must refuse it as a write all the same.
    kernel = _out_keyword(call)
    _, ((kind, *_rest), _args, _printed) = same_as_stock(kernel,
                                                          lambda: (np.arange(4.0),))
    assert kind == "raise"
    func_ir = run_frontend(kernel)
    du = DefUse(func_ir.blocks, BlockScans())
    calls = [s for b in func_ir.blocks.values() for s in b.body
             if isinstance(s, ir.Assign) and isinstance(s.value, ir.Expr)
             and s.value.op == "call" and s.value.kws]
    why, _ = effects.call_effect(func_ir, du, None, calls[0].value, calls[0])
    assert fl.refusal(why).key == "UfuncOutput" and "the keyword 'out'" in why.message


def test_ufuncs_without_output_argument_still_fuse():
    for n in SIZES:
        disp, _ = same_as_stock(ufunc_without_out, lambda n=n: (np.arange(n) - 1.5,))
    assert fuse_keys(disp) == ["Fused", "Contracted"]


# Effects the caller sees, and exceptions.  In each of these the
# second loop raises ZeroDivisionError at i == 0 (k[0] == 0): stock numba has
# run the whole first loop by then, a fused loop only its first iteration.


def list_iadd_then_raise(a, k, lst):
    n = a.shape[0]
    for i in range(n):
        lst += [i * 1.0]
    s = 0
    for i in range(n):
        s += 1 // k[i]
    return s


def list_append_then_raise(a, k, lst):
    n = a.shape[0]
    for i in range(n):
        lst.append(i * 1.0)
    s = 0
    for i in range(n):
        s += 1 // k[i]
    return s


def list_store_then_raise(a, k, lst):
    n = a.shape[0]
    for i in range(n):
        lst[0] = i * 1.0
    s = 0
    for i in range(n):
        s += 1 // k[i]
    return s


def dict_store_then_raise(a, k, d):
    n = a.shape[0]
    for i in range(n):
        d[i] = i * 1.0
    s = 0
    for i in range(n):
        s += 1 // k[i]
    return s


def print_then_raise(a, k):
    n = a.shape[0]
    for i in range(n):
        print(i, a[i])
    s = 0
    for i in range(n):
        s += 1 // k[i]
    return s


def argument_store_then_raise(a, k, out):
    n = a.shape[0]
    for i in range(n):
        out[i] = a[i] * 2.0
    s = 0
    for i in range(n):
        s += 1 // k[i]
    return s


def print_then_index_error(a, lst):
    n = a.shape[0]
    for i in range(n):
        print(a[i])
    s = 0.0
    for i in range(n):
        s += lst[i]  # IndexError once i passes the list's end
    return s


def print_then_range_error(a, steps):
    n = a.shape[0]
    for i in range(n):
        print(a[i])
    s = 0.0
    for i in range(n):
        for _ in range(0, 2, steps[i]):  # ValueError for a zero step
            s += a[i]
    return s


def raise_then_print(a, k):
    n = a.shape[0]
    s = 0
    for i in range(n):
        s += 1 // k[i]
    for i in range(n):
        print(a[i])
    return s


def raise_then_append(a, k, lst):
    n = a.shape[0]
    s = 0
    for i in range(n):
        s += 1 // k[i]
    for i in range(n):
        lst.append(a[i])
    return s


def both_print(a):
    n = a.shape[0]
    for i in range(n):
        print("first", i)
    for i in range(n):
        print("second", a[i])
    return n


def print_then_allocation(a, size):
    n = a.shape[0]
    for i in range(n):
        print(a[i])
    t = np.zeros(size)  # ValueError for a negative size
    s = 0.0
    for i in range(n):
        s += a[i] * 2.0
    return s, t


def print_then_endless_loop(a, k):
    # The inner while loop may run forever for all the pass can tell (here it
    # does not): as an exception would, that cuts the first loop's prints
    # short.
    n = a.shape[0]
    for i in range(n):
        print(i)
    s = 0.0
    for i in range(n):
        x = a[i] + 1.0
        while x > k[i]:
            x = x * 0.5
        s += x
    return s


def _k(n=4):
    """Divisors with a zero first (if any)."""
    k = np.ones(n, dtype=np.int64)
    k[:1] = 0
    return k


A4 = np.arange(4.0) + 0.5

EFFECTS_REFUSED = [
    (list_iadd_then_raise, lambda: (A4, _k(), [0.5]), {}, "SideEffects",
     "'lst' is updated in place"),
    (list_iadd_then_raise, lambda: (A4, _k(), [0.5]), {"error_model": "numpy"},
     "SideEffects", "'lst' is updated in place"),
    (list_append_then_raise, lambda: (A4, _k(), [0.5]), {}, "SideEffects",
     "may have side effects"),
    (list_store_then_raise, lambda: (A4, _k(), [0.5]), {}, "BothMayRaise",
     "the store into 'lst'"),
    (list_store_then_raise, lambda: (A4, _k(), [0.5]), {"error_model": "numpy"},
     "ShiftedAccess", "'lst'"),
    (dict_store_then_raise, lambda: (A4, _k(), Dict.empty(types.int64, types.float64)),
     {}, "BothMayRaise", "the store into 'd'"),
    (print_then_raise, lambda: (A4, _k()), {}, "EffectsBeforeRaise",
     "the first loop prints"),
    (argument_store_then_raise, lambda: (A4, _k(), np.zeros(4)), {},
     "WrittenArrayNotLocal", "'out'"),
    (print_then_index_error, lambda: (A4, [1.0, 2.0]), {}, "EffectsBeforeRaise",
     "indexing 'lst'"),
    (print_then_range_error, lambda: (A4, np.array([1, 1, 0, 1])), {},
     "EffectsBeforeRaise", "builtins.range"),
    (raise_then_print, lambda: (A4, _k()), {}, "RaiseBeforeEffects",
     "the second prints"),
    (raise_then_append, lambda: (A4, _k(), [0.5]), {}, "SideEffects",
     "may have side effects"),
    (both_print, lambda: (A4,), {}, "BothHaveEffects", "interleave"),
    (print_then_allocation, lambda: (A4, -1), {}, "InterveningCodeMayRaise",
     "the first loop prints"),
    (print_then_endless_loop, lambda: (A4, np.full(4, 0.75)), {}, "EffectsBeforeRaise",
     "a loop that may not finish"),
]


@pytest.mark.parametrize("kernel,make_args,kwargs,key,reason", EFFECTS_REFUSED,
                         ids=[f"{k[0].__name__}-{k[2].get('error_model', 'python')}"
                              for k in EFFECTS_REFUSED])
def test_effects_before_an_exception_stay_as_in_stock(kernel, make_args, kwargs, key,
                                                      reason):
    disp, _ = same_as_stock(kernel, make_args, **kwargs)
    found = missed(disp)
    assert [r.key for r in found] == [key], [str(r) for r in found]
    assert reason in found[0].message, str(found[0])
    sig = tuple(typeof(x) for x in make_args())
    on, _ = ir_after(kernel, sig, PASS, options={"inline": False}, **kwargs)
    off, _ = ir_after(kernel, sig, PASS, options={"inline": False, "fuse_loops": False},
                      **kwargs)
    assert on == off


def print_then_sum(a):
    n = a.shape[0]
    tmp = np.empty(n)
    for i in range(n):
        tmp[i] = a[i] * 2.0
        print(i, a[i])
    s = 0.0
    for i in range(n):
        s += tmp[i]
    return s


def print_and_raise_then_sum(a, k):
    # Only the first loop may raise: its exception comes as in stock numba,
    # after the same lines, and the second loop shows nothing.
    n = a.shape[0]
    tmp = np.empty(n)
    for i in range(n):
        print(i)
        tmp[i] = a[i] + 1 // k[i]
    s = 0.0
    for i in range(n):
        s += tmp[i]
    return s


def sum_then_print(a, k):
    # Only the second loop prints, and only it may raise.
    n = a.shape[0]
    tmp = np.empty(n)
    for i in range(n):
        tmp[i] = a[i] * 3.0
    s = 0.0
    for i in range(n):
        print(tmp[i])
        s += tmp[i] + 1 // k[i]
    return s


PRINTS_FUSED = [
    (print_then_sum, lambda n: (np.arange(n) - 1.5,)),
    (print_and_raise_then_sum, lambda n: (np.arange(n) * 0.5, _k(n))),
    (print_and_raise_then_sum, lambda n: (np.arange(n) * 0.5, np.ones(n, np.int64))),
    (sum_then_print, lambda n: (np.arange(n) - 1.5, _k(n))),
    (sum_then_print, lambda n: (np.arange(n) - 1.5, np.ones(n, np.int64))),
]


@pytest.mark.parametrize("kernel,make_args", PRINTS_FUSED,
                         ids=[f"{k[0].__name__}-{i}" for i, k in enumerate(PRINTS_FUSED)])
def test_prints_fuse_when_no_exception_can_cut_them_short(kernel, make_args):
    for n in SIZES:
        disp, _ = same_as_stock(kernel, lambda n=n: make_args(n))
    assert fuse_keys(disp) == ["Fused", "Contracted"]


# A contracted temporary raises what its allocation raised.

TOO_BIG = ("ValueError", "array is too big; `arr.size * arr.dtype.itemsize` is larger "
           "than the maximum possible size.")


def _allocating(alloc, value):
    namespace = {"np": np}
    exec(f"""def kernel(a, n):
    tmp = {alloc}
    for i in range(n):
        tmp[i] = {value}
    s = 0.0
    for j in range(n):
        s += tmp[j]
    return s
""", namespace)
    kernel = namespace["kernel"]
    kernel.__name__ = kernel.__qualname__ = "alloc_" + alloc
    return kernel


ALLOCATIONS = [
    ("np.empty(n)", "a[i] * 2.0"), ("np.zeros(n)", "a[i] * 2.0"),
    ("np.ones(n)", "a[i] * 2.0"), ("np.full(n, 2.5)", "a[i] * 2.0"),
    ("np.empty(n, dtype=np.float32)", "np.float32(a[i] * 2.0)"),
    ("np.zeros((n,), np.float32)", "np.float32(a[i])"),
    ("np.full(n, 7, dtype=np.int64)", "int(a[i]) * 3"),
]


@pytest.mark.parametrize("alloc,value", ALLOCATIONS, ids=[a[0] for a in ALLOCATIONS])
def test_contracted_temporary_raises_what_its_allocation_raises(alloc, value):
    kernel = _allocating(alloc, value)
    a = np.arange(5.0)
    outcomes = {}
    # 2**61 elements: too big (bytes overflow); 2**60: too big for 8-byte
    # items, a failed allocation (MemoryError) for 4-byte ones; 2**44: a
    # failed allocation (128 TiB); -1: negative.
    for n in (3, 0, -1, 2**44, 2**60, 2**61, 2**62, 2**63 - 1):
        disp, outcomes[n] = same_as_stock(kernel, lambda n=n: (a, n))
    assert fuse_keys(disp) == ["Fused", "Contracted"]
    assert outcomes[2**61][0] == ("raise", *TOO_BIG)
    assert outcomes[2**44][0][:2] == ("raise", "MemoryError")
    assert outcomes[-1][0] == ("raise", "ValueError", "negative dimensions not allowed")
    itemsize = 8 if "float32" not in alloc else 4
    assert outcomes[2**60][0][1] == ("ValueError" if itemsize == 8 else "MemoryError")


def effects_then_huge_temporary(a, n, lst):
    # The temporary's allocation raises before the loops: the list is as
    # stock numba leaves it (appended to before the allocation only).
    lst.append(1.5)
    tmp = np.empty(n)
    for i in range(n):
        tmp[i] = a[i] + 1.0
    s = 0.0
    for i in range(n):
        s += tmp[i]
    lst.append(s)
    return s


def test_huge_temporary_raises_at_the_allocation():
    for n in (2, 2**61, 2**44):
        disp, _ = same_as_stock(effects_then_huge_temporary,
                                lambda n=n: (np.arange(3.0), n, [0.5]))
    assert fuse_keys(disp) == ["Fused", "Contracted"]


def _shape_outcome(fn, *args):
    try:
        fn(*args)
        return "ok"
    except Exception as exc:  # noqa: BLE001 - comparing exceptions
        return type(exc).__name__, str(exc)


@njit
def _checked(n, which):
    if which == 0:
        check_shape(n, np.dtype(np.float64))
    elif which == 1:
        check_shape(n, np.float32)
    else:
        check_shape((n, n), np.dtype(np.bool_))


@njit
def _allocated(n, which):
    if which == 0:
        np.empty(n, np.float64)
    elif which == 1:
        np.empty(n, np.float32)
    else:
        np.empty((n, n), np.bool_)


@pytest.mark.parametrize("n", [0, 7, -1, 2**27, 2**44, 2**60, 2**61, 2**63 - 1,
                               np.uint64(2**63), np.uint64(9), np.uint32(2**31 + 1),
                               np.int32(-3)], ids=repr)
def test_check_shape_raises_exactly_what_np_empty_raises(n):
    # Including numba's conversions: a uint64 size of 2**63 is negative, and
    # a uint32 in a shape tuple is sign-extended.
    for which in range(3):
        assert _shape_outcome(_checked, n, which) == _shape_outcome(_allocated, n, which)


def test_missed_remarks_carry_their_arguments():
    disp = run_both(scalar_carried, *arrays(5, 1))
    (why,) = missed(disp)
    assert why.key == "ScalarDependence"
    assert why.arguments == {"name": "total", "assigned_in": "first"}
    disp = run_both(writes_an_argument, arrays(5, 1)[0], np.zeros(5))
    (why,) = missed(disp)
    assert (why.key, why.arguments) == ("WrittenArrayNotLocal", {"array": "out"})
