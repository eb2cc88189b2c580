"""The while-to-range pass: IR-dump checks paired with execution checks
against stock numba, for rewrites and refusals."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import remark_keys, run_both
from numba import njit, types

import numba_loopopt as lo
from numba_loopopt.testing import check, ir_after


@pytest.fixture(autouse=True)
def _without_scalar_replacement(monkeypatch):
    """These tests pin what the later passes do with 0-d flags and
    accumulators themselves; scalar-replace, which runs first and dissolves
    most of them, is tested with them in tests/test_scalar_replace.py."""
    # forward-stores, which runs after them, is tested in tests/test_forward_stores.py.
    monkeypatch.setenv("NUMBA_LOOPOPT_DISABLE_PASSES", "scalar-replace,forward-stores")

PASS = "loopopt_while_to_range"
F64 = types.float64[:]
I64 = types.int64
COUNTS = (0, -3, 1, 2, 10)


def dump_after(func, argtypes, **options):
    dump, _ = ir_after(func, argtypes, PASS, options=options or None)
    return dump


def assert_unchanged(func, argtypes):
    """The pass left the IR exactly as it found it (inlining, which runs
    before it and names variables uniquely per compilation, is off)."""
    assert dump_after(func, argtypes, inline=False) == dump_after(
        func, argtypes, inline=False, while_to_range=False)


def missed(func, *args):
    disp = lo.jit(func)
    disp(*copy.deepcopy(args))
    return [r for r in lo.remarks(disp, disp.signatures[0]) if r.kind.value == "missed"]


# --- kernels that are rewritten -------------------------------------------


def scan_item(buf, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[i + 1] = buf[i] + 1.0
        i += 1
    return i


def test_item_flag_test_leaves_the_loop():
    dump = dump_after(scan_item, (F64, I64))
    # The guard before the loop keeps its cond.item(); the latch loses it.
    check(dump, r"""
        CHECK:     getattr(value=cond, attr=item)
        CHECK:     branch {{.*}}, [[EXIT:\d+]], [[BODY:\d+]]
        CHECK:     label [[BODY]]:
        CHECK-NOT: attr=item
        CHECK:     i = $binop_iadd
        CHECK:     [[CMP:\$[\w.]+]] = i < n
        CHECK-NOT: attr=item
        CHECK:     label [[EXIT]]:
    """)
    for n in COUNTS:
        disp = run_both(scan_item, np.zeros(12), n)
    assert "Rewritten" in remark_keys(disp, "passed")


def test_rewritten_remark_names_the_line_and_the_test():
    disp = lo.jit(scan_item)
    disp(np.zeros(4), 3)
    (remark,) = [r for r in lo.remarks(disp, disp.signatures[0]) if r.key == "Rewritten"]
    text = str(remark)
    assert text.startswith(f"{__file__}:{scan_item.__code__.co_firstlineno + 3}: "
                           "[while-to-range] Rewritten: ")
    assert "'cond.item()'" in text and "i < n" in text
    assert remark.arguments["counter"] == "i" and remark.arguments["step"] == 1


def flag_true_from_start(buf, n):
    cond = np.array(True)
    i = 0
    while i < n and not cond.item():
        buf[i + 1] = buf[i] + 1.0
        i += 1
    return i


def index_flag(buf, n):
    done = np.zeros(1, dtype=np.bool_)
    i = 0
    while i < n and not done[0]:
        buf[i + 1] = buf[i] * 2.0 + 1.0
        i += 1
    return i


def scalar_flag(buf, n, stop):
    i = 0
    while i < n and not stop:
        buf[i + 1] = buf[i] + 1.0
        i += 1
    return i


def flag_first(buf, n):
    cond = np.array(False)
    i = 0
    while not cond.item() and i < n:
        buf[i + 1] = buf[i] + 1.0
        i += 1
    return i


def inclusive_bound(buf, n):
    cond = np.array(False)
    i = 1
    while i <= n and not cond.item():
        buf[i] = buf[i - 1] + 2.0
        i += 1
    return i


def counting_down(buf, n):
    cond = np.array(False)
    i = n
    while i > 0 and not cond.item():
        buf[i - 1] = buf[i] + 1.0
        i -= 2
    return i


def counting_down_inclusive(buf, start):
    cond = np.array(False)
    i = start
    while i >= 0 and not cond.item():
        buf[i] += 1.0
        i -= 1
    return i


def not_equal(buf, n):
    cond = np.array(False)
    i = 0
    while i != n and not cond.item():
        buf[i] += 3.0
        i += 1
    return i


def bound_on_the_left(buf, n):
    cond = np.array(False)
    i = 2
    while n > i and not cond.item():
        buf[i] = buf[i - 1] + buf[i - 2]
        i += 1
    return i


def constant_bound(buf):
    cond = np.array(False)
    i = 0
    while i < 7 and not cond.item():
        buf[i + 1] = buf[i] + 1.0
        i += 1
    return i


def with_break(buf, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[i + 1] = buf[i] + 1.0
        if buf[i + 1] > 4.0:
            break
        i += 1
    return i


def with_early_return(buf, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        if buf[i] < 0.0:
            return -i
        buf[i + 1] = buf[i] + 1.0
        i += 1
    return i


def nested_for_inside(buf, n):
    cond = np.array(False)
    i = 0
    total = 0.0
    while i < n and not cond.item():
        for j in range(i):
            total += buf[j]
        i += 1
    return total + i


def nested_while_inside(buf, n):
    outer = np.array(False)
    inner = np.array(False)
    i = 0
    total = 0.0
    while i < n and not outer.item():
        j = 0
        while j < i and not inner.item():
            total += buf[j] * i
            j += 1
        i += 1
    return total + i + j


def inside_a_for(buf, n):
    cond = np.array(False)
    total = 0
    for k in range(3):
        i = k
        while i < n and not cond.item():
            buf[i] += k
            i += 1
        total += i
    return total


def int32_counter(buf, n):
    cond = np.array(False)
    i = np.int32(0)
    while i < n and not cond.item():
        buf[i + 1] = buf[i] + 1.0
        i += 1
    return i


REWRITTEN = [
    (flag_true_from_start, lambda n: (np.zeros(12), n)),
    (index_flag, lambda n: (np.zeros(12), n)),
    (scalar_flag, lambda n: (np.zeros(12), n, False)),
    (scalar_flag, lambda n: (np.zeros(12), n, True)),
    (flag_first, lambda n: (np.zeros(12), n)),
    (inclusive_bound, lambda n: (np.zeros(12), n)),
    (counting_down, lambda n: (np.zeros(12), n)),
    (counting_down_inclusive, lambda n: (np.zeros(12), n)),
    (not_equal, lambda n: (np.zeros(12), max(n, 0))),
    (bound_on_the_left, lambda n: (np.ones(12), n)),
    (constant_bound, lambda n: (np.zeros(12),)),
    (with_break, lambda n: (np.zeros(12), n)),
    (with_early_return, lambda n: (np.zeros(12), n)),
    (with_early_return, lambda n: (np.full(12, -1.0), n)),
    (nested_for_inside, lambda n: (np.arange(12.0), n)),
    (nested_while_inside, lambda n: (np.arange(12.0), max(n, 1))),
    (inside_a_for, lambda n: (np.zeros(12), n)),
    (int32_counter, lambda n: (np.zeros(12), n)),
]


@pytest.mark.parametrize("kernel,make_args", REWRITTEN,
                         ids=[f"{k.__name__}-{i}" for i, (k, _) in enumerate(REWRITTEN)])
def test_rewritten_kernels_match_stock(kernel, make_args):
    for n in COUNTS:
        disp = run_both(kernel, *make_args(n))
    assert "Rewritten" in remark_keys(disp, "passed"), lo.remarks(disp)


def test_nested_while_loops_are_both_rewritten():
    disp = run_both(nested_while_inside, np.arange(12.0), 6)
    assert remark_keys(disp, "passed").count("Rewritten") == 2
    dump = dump_after(nested_while_inside, (F64, I64))
    # One guard each for outer and inner remains; none in the latches.
    assert dump.count("attr=item") == 2


def test_counter_keeps_its_value_after_the_loop():
    # Zero trips, a negative bound, and a bound the step jumps over.
    for n in (-5, 0, 1, 7):
        run_both(counting_down, np.zeros(12), n)
        run_both(scan_item, np.zeros(12), n)


def test_exceptions_in_the_body_keep_their_type():
    run_both(scan_item, np.zeros(3), 10, boundscheck=True)


def test_every_njit_flag_combination_still_rewrites():
    for kwargs in ({"fastmath": True}, {"boundscheck": True}, {"nogil": True},
                   {"error_model": "numpy"}, {"parallel": True}):
        disp = run_both(scan_item, np.zeros(12), 10, **kwargs)
        assert "Rewritten" in remark_keys(disp, "passed"), kwargs


# --- refusals: the IR is untouched and a missed remark says why --------------


def flag_written(buf, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[i + 1] = buf[i] + 1.0
        if buf[i + 1] > 3.0:
            cond[()] = True
        i += 1
    return i


def flag_written_through_alias(buf, n):
    cond = np.array(False)
    alias = cond
    i = 0
    while i < n and not cond.item():
        buf[i + 1] = buf[i] + 1.0
        alias[()] = buf[i + 1] > 3.0
        i += 1
    return i


@njit
def _set_flag(flag, value):
    flag[0] = value


def flag_passed_to_callee(buf, n):
    done = np.zeros(1, dtype=np.bool_)
    i = 0
    while i < n and not done[0]:
        buf[i + 1] = buf[i] + 1.0
        _set_flag(done, buf[i + 1] > 3.0)
        i += 1
    return i


def flag_viewed(buf, n):
    done = np.zeros(2, dtype=np.bool_)
    view = done[0:1]
    i = 0
    while i < n and not done[0]:
        buf[i + 1] = buf[i] + 1.0
        view[0] = buf[i + 1] > 3.0
        i += 1
    return i


def flag_returned(buf, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[i + 1] = buf[i] + 1.0
        i += 1
    return cond


def flag_argument(buf, n, cond):
    i = 0
    while i < n and not cond.item():
        buf[i + 1] = buf[i] + 1.0
        cond[()] = buf[i + 1] > 3.0
        i += 1
    return i


def bound_reassigned(buf, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[i + 1] = buf[i] + 1.0
        n -= 1
        i += 1
    return i


def scalar_flag_reassigned(buf, n):
    stop = False
    i = 0
    while i < n and not stop:
        buf[i + 1] = buf[i] + 1.0
        stop = buf[i + 1] > 3.0
        i += 1
    return i


def float_counter(buf, n):
    cond = np.array(False)
    i = 0.0
    while i < n and not cond.item():
        buf[int(i) + 1] = buf[int(i)] + 1.0
        i += 1.0
    return i


def float_bound(buf, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[i + 1] = buf[i] + 1.0
        i += 1
    return i


def counter_updated_twice(buf, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[i + 1] = buf[i] + 1.0
        if buf[i] > 2.0:
            i += 1
        i += 1
    return i


def counter_conditional(buf, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[i + 1] = buf[i] + 1.0
        if buf[i] < 100.0:
            i += 1
    return i


def counter_variable_step(buf, n, step):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[i + 1] = buf[i] + 1.0
        i += step
    return i


def counter_moves_away(buf, n):
    cond = np.array(False)
    i = 5
    k = 0
    while i < n and not cond.item():
        buf[k] += 1.0
        k += 1
        if k > 8:
            break
        i -= 1
    return i


REFUSED = [
    (flag_written, (F64, I64), (np.zeros(12), 10), "FlagChanges", "written"),
    (flag_written_through_alias, (F64, I64), (np.zeros(12), 10), "FlagChanges",
     "aliased by 'alias'"),
    # The callee is inlined first, so its write shows through its parameter
    # (named as in the callee, at the callee's line).
    (flag_passed_to_callee, (F64, I64), (np.zeros(12), 10), "FlagChanges",
     "aliased by 'flag'"),
    (flag_viewed, (F64, I64), (np.zeros(12), 10), "FlagChanges", "viewed by 'view'"),
    (flag_returned, (F64, I64), (np.zeros(12), 10), "FlagChanges", "returned"),
    (flag_argument, (F64, I64, types.Array(types.boolean, 0, "C")),
     (np.zeros(12), 10, np.array(False)), "FlagMayAlias", "argument"),
    (bound_reassigned, (F64, I64), (np.zeros(12), 10), "BoundChanges",
     "'n' is reassigned"),
    (scalar_flag_reassigned, (F64, I64), (np.zeros(12), 10), "FlagReassigned",
     "'stop' in the loop test 'stop' is reassigned"),
    (float_counter, (F64, I64), (np.zeros(12), 10), "CounterNotInteger", "float64"),
    (float_bound, (F64, types.float64), (np.zeros(12), 9.5), "BoundNotInteger", "float64"),
    (counter_updated_twice, (F64, I64), (np.zeros(12), 10), "CounterReassigned",
     "assigned 2 times"),
    (counter_conditional, (F64, I64), (np.zeros(12), 10), "CounterUpdateNotOnce",
     "exactly once per iteration"),
    (counter_variable_step, (F64, I64, I64), (np.zeros(12), 10, 2), "CounterStepNotConstant",
     "constant step"),
    (counter_moves_away, (F64, I64), (np.zeros(12), 10), "CounterDirection",
     "moves by -1"),
]


@pytest.mark.parametrize("kernel,argtypes,args,key,reason", REFUSED,
                         ids=[r[0].__name__ for r in REFUSED])
def test_refusals_leave_ir_alone_and_say_why(kernel, argtypes, args, key, reason):
    assert_unchanged(kernel, argtypes)
    run_both(kernel, *args)
    found = missed(kernel, *args)
    assert [r.key for r in found] == [key], [str(r) for r in found]
    assert reason in found[0].message, str(found[0])
    # A reason found in an inlined callee points into the callee.
    inlined = kernel is flag_passed_to_callee
    assert found[0].line > (0 if inlined else kernel.__code__.co_firstlineno)


def test_flag_passed_to_a_call_that_is_not_inlined_is_refused():
    disp = lo.jit(flag_passed_to_callee, options={"inline": False})
    disp(np.zeros(12), 10)
    (remark,) = lo.remarks(disp, disp.signatures[0])
    assert remark.key == "FlagChanges" and "'done' is passed to a call" in remark.message


def test_for_loops_get_no_remark():
    def total(a):
        s = 0.0
        for i in range(a.shape[0]):
            s += a[i]
        return s

    disp = run_both(total, np.arange(5.0))
    assert lo.remarks(disp, disp.signatures[0]) == []


def test_plain_counted_while_is_reported_as_already_counted():
    def plain(buf, n):
        i = 0
        while i < n:
            buf[i] += 1.0
            i += 1
        return i

    assert_unchanged(plain, (F64, I64))
    disp = run_both(plain, np.zeros(5), 5)
    assert remark_keys(disp) == ["AlreadyCounted"]


# --- shapes around the target: continue, else, globals, computed bounds -----

LIMIT = 7
FLAG = False


def with_continue(buf, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        i += 1
        if buf[i] > 2:
            continue
        buf[i] += 1.0
    return i


def with_else(buf, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[i] += 1.0
        i += 1
    else:
        i += 100
    return i


def global_bound(buf):
    cond = np.array(False)
    i = 0
    while i < LIMIT and not cond.item():
        buf[i] += 1.0
        i += 1
    return i


def global_flag(buf, n):
    i = 0
    while i < n and not FLAG:
        buf[i] += 1.0
        i += 1
    return i


def len_bound(buf):
    cond = np.array(False)
    i = 0
    while i < len(buf) and not cond.item():
        buf[i] += 1.0
        i += 1
    return i


def test_continue_keeps_the_inner_rotated_loop_and_explains_the_outer_one():
    # CPython sends 'continue' back to the guard: two natural loops.
    for n in COUNTS:
        disp = run_both(with_continue, np.arange(12.0), n)
    assert remark_keys(disp) == ["Rewritten", "UntestedBackEdge"]
    (missed_remark,) = [r for r in lo.remarks(disp, disp.signatures[0])
                        if r.key == "UntestedBackEdge"]
    assert "a 'continue'" in missed_remark.message


@pytest.mark.parametrize("kernel,make_args,keys", [
    (with_else, lambda n: (np.zeros(12), n), ["Rewritten"]),
    (global_bound, lambda n: (np.zeros(12),), ["Rewritten"]),
    # numba prunes the constant test itself before this pass runs.
    (global_flag, lambda n: (np.zeros(12), n), ["AlreadyCounted"]),
    (len_bound, lambda n: (np.zeros(12),), ["BoundNotInvariant"]),
])
def test_shapes_around_the_target(kernel, make_args, keys):
    for n in COUNTS:
        disp = run_both(kernel, *make_args(n))
    assert remark_keys(disp) == keys


def test_recomputed_bound_is_named_in_the_remark():
    (remark,) = missed(len_bound, np.zeros(4))
    assert "recomputes 'len(buf)' on every iteration" in remark.message


def test_check_not_lines_can_fail_on_an_unrewritten_loop():
    dump = dump_after(scan_item, (F64, I64), while_to_range=False)
    with pytest.raises(AssertionError, match="CHECK-NOT"):
        check(dump, r"""
            CHECK:     getattr(value=cond, attr=item)
            CHECK:     label
            CHECK-NOT: attr=item
            CHECK:     return
        """)


@pytest.mark.parametrize("kernel,args,arguments", [
    (bound_reassigned, (np.zeros(12), 10), {"bound": "n"}),
    (counter_updated_twice, (np.zeros(12), 10), {"counter": "i", "assignments": 2}),
    (counter_moves_away, (np.zeros(12), 10), {"counter": "i", "step": -1}),
    (float_counter, (np.zeros(12), 10), {"counter": "i", "type": "float64"}),
    (len_bound, (np.zeros(12),), {"bound": "len(buf)"}),
], ids=lambda p: getattr(p, "__name__", ""))
def test_missed_remarks_carry_their_arguments(kernel, args, arguments):
    (remark,) = missed(kernel, *args)
    assert remark.arguments == arguments, str(remark)
