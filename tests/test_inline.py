"""The inline pass: what it inlines, what it refuses and why, recursion
bounds, and that other passes see through inlined helpers."""

from __future__ import annotations

import _inline_helpers
import numba
import numpy as np
import pytest
from conftest import remark_keys, run_both
from numba import njit, types
from numba.core.errors import TypingError

import numba_loopopt as lo
from numba_loopopt.testing import check, ir_after

SCALE = -1.0  # the callee's module has its own SCALE


@njit
def append_ten(a):
    a.append(10)


def make_list():
    z = []
    append_ten(z)
    return z


def test_type_inference_crosses_the_call():
    # numba's own example: the list's type is only known inside the callee.
    with pytest.raises(TypingError):
        njit(make_list)()
    disp = lo.jit(make_list)
    assert disp() == [10]
    assert remark_keys(disp) == ["Inlined"]


@njit
def helper(x, y):
    return x * 2.0 + y


def calls_helper(a, b):
    return helper(a, b) + helper(b, a)


def test_inlined_call_leaves_no_call_behind():
    dump, disp = ir_after(calls_helper, (types.float64, types.float64), "loopopt_inline")
    assert disp(1.0, 2.0) == njit(calls_helper)(1.0, 2.0)
    check(dump, r"""
        CHECK-NOT: global(helper
        CHECK:     [[X:helper_v\d+_x]] = a
        CHECK:     {{.*}} = [[X]] * {{.*}}
        CHECK:     [[X2:helper_v\d+_x[.\d]*]] = b
        CHECK:     {{.*}} = [[X2]] * {{.*}}
        CHECK:     return
    """)
    (first, second) = lo.remarks(disp, disp.signatures[0])
    assert first.key == "Inlined" and first.arguments == {"cost": first.arguments["cost"],
                                                          "threshold": 60, "depth": 1}


def uses_module_attribute(x):
    return _inline_helpers.scaled(x) + _inline_helpers.with_defaults(x)


def uses_keywords(x):
    return _inline_helpers.with_defaults(x, factor=3.0) + _inline_helpers.with_defaults(
        offset=0.5, x=x)


def test_module_attributes_defaults_and_keywords():
    for kernel in (uses_module_attribute, uses_keywords):
        disp = run_both(kernel, 2.0)
        assert remark_keys(disp) == ["Inlined", "Inlined"]
    # SCALE resolved in the callee's module: 2 * 10 + (2 + 1.5) * 2
    assert lo.jit(uses_module_attribute)(2.0) == 27.0


def make_closure(k):
    @njit
    def add_k(x):
        return x + k

    def caller(x):
        return add_k(x) * 2

    return caller


def test_closure_variables():
    caller = make_closure(5)
    disp = run_both(caller, 1)
    assert disp(1) == 12 and remark_keys(disp) == ["Inlined"]


@njit
def checked_sqrt(x):
    if x < 0:
        raise ValueError("negative")
    return x ** 0.5


def calls_raising(x):
    return checked_sqrt(x) + 1.0


def test_exceptions_raised_in_the_callee_keep_their_type():
    run_both(calls_raising, 4.0)
    run_both(calls_raising, -4.0)
    with pytest.raises(ValueError, match="negative"):
        lo.jit(calls_raising)(-1.0)


def fact(n):
    if n <= 1:
        return 1
    return n * fact(n - 1)


fact = lo.jit(fact)


def is_even(n):
    if n == 0:
        return True
    return is_odd(n - 1)


def is_odd(n):
    if n == 0:
        return False
    return is_even(n - 1)


is_even, is_odd = lo.jit(is_even), lo.jit(is_odd)


def test_factorial_is_inlined_up_to_the_depth_bound():
    assert [fact(n) for n in range(12)] == [1, 1, 2, 6, 24, 120, 720, 5040, 40320,
                                            362880, 3628800, 39916800]
    assert remark_keys(fact) == ["Inlined"] * 3 + ["RecursionLimit"]


def test_mutual_recursion_terminates_and_is_correct():
    assert [is_even(n) for n in range(7)] == [True, False, True, False, True, False, True]
    assert [is_odd(n) for n in range(7)] == [False, True, False, True, False, True, False]
    (sig,) = is_even.signatures
    keys = [r.key for r in lo.remarks(is_even, sig)]
    assert keys == ["Inlined"] * 3 + ["RecursionLimit"]


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


fib = lo.jit(fib)
stock_fib = njit(fib.py_func)


def calls_fib(n):
    return stock_fib(n) + 1


def test_recursion_with_fanout_stays_a_call_at_the_root():
    assert fib(15) == 610
    assert set(remark_keys(fib)) == {"RecursionFanout"}


def test_recursive_callee_is_inlined_up_to_the_bound():
    disp = lo.jit(calls_fib, options={"inline": {"max_depth": 4}})
    assert disp(15) == 611
    keys = remark_keys(disp)
    assert keys.count("Inlined") == 1 + 2 + 4 + 8 and keys.count("RecursionLimit") == 16


@njit(error_model="numpy")
def numpy_errors(a, b):
    return a // b


@njit(boundscheck=True)
def checked_index(a, i):
    return a[i]


@njit(fastmath=True)
def fast_sum(a, b):
    return a + b


def test_callees_with_other_semantics_are_not_inlined():
    def caller(a, b, arr):
        return numpy_errors(a, b) + checked_index(arr, 0) + fast_sum(1.0, 2.0)

    disp = run_both(caller, 7, 0, np.ones(3))
    found = lo.remarks(disp, disp.signatures[0])
    assert [r.key for r in found] == ["FlagsDiffer"] * 3
    assert "error_model=numpy, the caller with error_model=python" in found[0].message
    assert "boundscheck" in found[1].message and "fastmath" in found[2].message


@njit
def counter(n):
    for i in range(n):  # noqa: UP028 - numba does not support 'yield from'
        yield i


@njit("float64(float64)")
def typed_callee(x):
    return x + 1


@njit(locals={"y": types.float32})
def narrowing(x):
    y = x
    return y


def test_callees_numba_cannot_inline_stay_calls():
    def caller(n, x):
        s = 0
        for v in counter(n):
            s += v
        return s + typed_callee(x) + narrowing(x)

    disp = run_both(caller, 4, 0.1)
    messages = [r.message for r in lo.remarks(disp, disp.signatures[0])]
    assert remark_keys(disp) == ["NotInlinable"] * 3
    assert "generator" in messages[0] and "explicit signatures" in messages[1]
    assert "locals=" in messages[2]


@njit
def level3(x):
    return x + 3


@njit
def level2(x):
    return level3(x) * 2


@njit
def level1(x):
    return level2(x) - 1


def nested(x):
    return level1(x)


def test_budgets_depth_and_size():
    disp = run_both(nested, 1, options={"inline": {"max_depth": 2}})
    assert remark_keys(disp) == ["Inlined", "Inlined", "DepthLimit"]
    disp = run_both(nested, 1, options={"inline": {"max_callee_stmts": 3}})
    assert remark_keys(disp) == ["TooCostly"]
    disp = run_both(calls_helper, 1.0, 2.0, options={"inline": {"max_growth": 10}})
    assert remark_keys(disp) == ["Inlined", "GrowthBudget"]


def test_user_cost_model_decides_with_the_depth():
    seen = []

    def only_top_level(expr, caller_ir, callee_ir, depth):
        seen.append((type(caller_ir).__name__, type(callee_ir).__name__, depth))
        return depth == 0

    disp = run_both(nested, 1, options={"inline": {"cost_model": only_top_level}})
    assert remark_keys(disp) == ["Inlined", "CostModelDeclined"]
    assert seen == [("FunctionIR", "FunctionIR", 0), ("FunctionIR", "FunctionIR", 1)]


def big_always(x):
    t = x
    for k in range(3):
        t = t * 1.5 + k
        t = t - 0.25 * k
    return t


big_always = njit(inline="always")(big_always)


def recursive_always(n):
    if n <= 0:
        return 0
    return 1 + recursive_always(n - 1)


# Stock numba never finishes compiling this (its inliner recurses forever);
# through numba_loopopt the depth bound stops it.
recursive_always = lo.jit(inline="always")(recursive_always)


def test_callees_own_inline_always_is_honoured_with_a_bound():
    def caller(x, n):
        return big_always(x) + recursive_always(n)

    # Stock numba cannot compile recursive_always, so compare with Python.
    disp = lo.jit(caller, options={"inline": {"max_callee_stmts": 1}})
    assert disp(2.0, 5) == caller(2.0, 5)
    keys = remark_keys(disp)
    assert keys[0] == "Inlined" and keys.count("RecursionLimit") == 1


def test_callees_own_cost_model_is_honoured():
    calls = []

    def never(expr, caller_ir, callee_ir):
        calls.append(expr.op)
        return False

    tiny = njit(inline=never)(lambda x: x + 1)

    def caller(x):
        return tiny(x)

    disp = lo.jit(caller)
    assert disp(1) == 2
    assert calls == ["call"] and remark_keys(disp) == ["CostModelDeclined"]


def helper_with_scan_loop(buf, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[i + 1] = buf[i] + 1.0
        i += 1
    return i


scan_helper = njit(helper_with_scan_loop)


def calls_scan(buf, n):
    return scan_helper(buf, n) * 2


def test_later_passes_see_through_inlined_helpers():
    for n in (0, 3, 10):
        disp = run_both(calls_scan, np.zeros(12), n)
    assert remark_keys(disp, "passed") == ["Inlined", "Rewritten"]


def test_with_the_pass_off_numba_inlines_inline_always_as_usual():
    def caller(x):
        return big_always(x)

    dump, disp = ir_after(caller, (types.float64,), "inline_inlinables",
                          options={"inline": False})
    assert disp(2.0) == njit(caller)(2.0)
    check(dump, "CHECK-NOT: call $4load_global.0(")
    check(dump, "CHECK: big_always_{{.*}} = const(float, 1.5)")
    assert lo.remarks(disp, disp.signatures[0]) == []


def test_numba_registers_no_duplicate_pipeline_entries():
    # The inline pass takes InlineInlinables' place instead of adding to it.
    dump, _ = ir_after(calls_helper, (types.float64, types.float64), "loopopt_inline")
    with pytest.raises(ValueError, match="no pass named 'inline_inlinables'"):
        ir_after(calls_helper, (types.float64, types.float64), "inline_inlinables")
    assert numba.__version__.startswith("0.68")


class _NeverCopied(np.ndarray):
    def __deepcopy__(self, memo):
        raise AssertionError("inlining deep-copied a large constant")


TABLE = np.arange(200_000, dtype=np.float64).view(_NeverCopied)


@njit
def lookup(i):
    return TABLE[i] * 2.0


def three_lookups(i):
    return lookup(i) + lookup(i + 1) + lookup(i + 2)


def test_inlining_never_copies_a_large_constant():
    # The callee's IR is copied per call site; its constants are shared.
    disp = run_both(three_lookups, 3)
    assert remark_keys(disp) == ["Inlined"] * 3


def test_objmode_block_does_not_break_inlining():
    # numba's with-lifting calls the lifted block through a name with no
    # definition; the inliner must pass over it, not raise (and roll back).
    def with_objmode(x):
        with numba.objmode(r="float64[:]"):
            r = 2 * x
        return r

    disp = lo.jit(options={"strict": True})(with_objmode)
    np.testing.assert_array_equal(disp(np.ones(2)), np.full(2, 2.0))
    assert not [r for r in lo.remarks(disp, disp.signatures[0]) if r.key == "InternalError"]


@njit
def _scan_helper(buf, n):
    cond = np.zeros((), dtype=np.bool_)
    i = 0
    while i < n and not cond.item():
        buf[i] = i
        i += 1
    return i


def calls_scan_helper(buf, n):
    return _scan_helper(buf, n)


def test_remarks_about_inlined_code_use_the_callees_names():
    disp = run_both(calls_scan_helper, np.zeros(6), 4)
    inlined, rewritten = lo.remarks(disp, disp.signatures[0])
    assert inlined.key == "Inlined" and rewritten.key == "Rewritten"
    assert "(i < n, step 1)" in rewritten.message and "'cond.item()'" in rewritten.message
    assert dict(rewritten.args)["counter"] == "i"
    assert "_v" not in rewritten.message


def test_demangle_leaves_other_names_alone():
    from numba_loopopt.remarks import demangle

    names = {"helper$2", "outer.<locals>.inner$5"}
    assert demangle("helper_v2_i < helper_v2_n", names) == "i < n"
    assert demangle("'outer__locals__inner_v5_helper_v2_x'", names) == "'x'"
    assert demangle("my_helper_v2_i, helper_v3_i", names) == "my_helper_v2_i, helper_v3_i"
