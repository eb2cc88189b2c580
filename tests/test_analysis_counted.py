"""analysis.counted: counted loops (range and counted while), their trip-count
keys, and the reasoned misses of the recognisers."""

from __future__ import annotations

import numpy as np
import pytest
from _analysis_helpers import analyses
from numba.core import types

from numba_loopopt.analysis.counted import (
    RangeLoop,
    alloc_length_key,
    match_counted_loop,
    match_range_loop,
    match_while_loop,
    trip_defined_before,
    value_key,
)
from numba_loopopt.remarks import Missed

A = types.float64[:]
I = types.int64  # noqa: E741


def only_loop(func, *argtypes):
    func_ir, forest, du, facts = analyses(func, *argtypes)
    (loop,) = forest.loops
    return match_counted_loop(func_ir, forest, loop, du, facts)


def line_of(func, offset: int) -> int:
    return func.__code__.co_firstlineno + offset


# --- range loops ---------------------------------------------------------------


def fill(a):
    n = len(a)
    for i in range(n):
        a[i] = 1.0


def test_a_range_loop_is_matched_with_its_trip_key():
    rl = only_loop(fill, A)
    assert isinstance(rl, RangeLoop) and rl.kind == "range"
    assert rl.index == "i" and rl.range_text == "range(n)"
    # n = len(a): the length of the argument 'a'.
    assert rl.trip == (("const", 0), ("len", "a"), ("const", 1))
    assert rl.loop.header not in rl.body


def with_break(a):
    for i in range(a.shape[0]):
        if a[i] > 0:
            break
        a[i] = 1.0


def with_return(a):
    for i in range(a.shape[0]):
        if a[i] > 0:
            return i
    return -1


def over_array(a):
    s = 0.0
    for x in a:
        s += x
    return s


def index_reassigned(a):
    for i in range(a.shape[0]):
        i = i + 1  # noqa: PLW2901
        a[0] = i


def iterator_value_used(a):
    for i in range(a.shape[0]):
        a[i] = 1.0


@pytest.mark.parametrize("func,key,args", [
    (with_break, "EarlyExit", {"line": line_of(with_break, 2)}),
    (with_return, "EarlyExit", {"line": line_of(with_return, 2)}),
    (over_array, "NotRange", None),
    (index_reassigned, "IndexReassigned", {"index": "i", "line": line_of(index_reassigned, 2)}),
], ids=lambda v: getattr(v, "__name__", None) if callable(v) else None)
def test_range_loop_misses_say_why(func, key, args):
    why = only_loop(func, A)
    assert isinstance(why, Missed) and why.key == key, why
    if args is not None:
        assert why.arguments == args
    assert why.loc is not None and why.message


def test_the_break_remark_names_the_statement_that_leaves():
    why = only_loop(with_break, A)
    assert "'break'" in why.message and f"line {line_of(with_break, 2)}" in why.message


def test_match_range_loop_of_a_while_loop_is_a_miss():
    func_ir, forest, du, _ = analyses(counted_while, A, I)
    (loop,) = forest.loops
    assert isinstance(match_range_loop(func_ir.blocks, forest, loop, du), Missed)


# --- counted while loops -------------------------------------------------------


def counted_while(a, n):
    i = 0
    while i < n:
        a[i] = 1.0
        i += 1
    return i


def while_le(a, n):
    i = 0
    while i <= n:
        a[i] = 1.0
        i += 1
    return i


def while_flag(a, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        a[i] = 1.0
        i += 1
    return i


def while_true(a, n):
    i = 0
    while True:
        if i >= n:
            break
        i += 1
    return i


def update_first(a, n):
    i = 0
    while i < n:
        i += 1
        a[i - 1] = 1.0
    return i


def test_a_counted_while_loop_is_matched():
    rl = only_loop(counted_while, A, I)
    assert isinstance(rl, RangeLoop) and rl.kind == "while"
    assert rl.index == "i" and rl.range_text == "while i < n"
    assert rl.trip == (("const", 0), ("arg", 1), ("const", 1))
    assert rl.test_block is not None and rl.control


@pytest.mark.parametrize("func,key", [
    (while_le, "CounterTestForm"),
    (while_flag, "InvariantTestsLeft"),
    (while_true, "WhileNotCounted"),
    (update_first, "CounterUpdateNotLast"),
], ids=lambda v: getattr(v, "__name__", None) if callable(v) else None)
def test_while_loop_misses_say_why(func, key):
    why = only_loop(func, A, I)
    assert isinstance(why, Missed) and why.key == key, why


def test_a_loop_not_counted_keeps_the_reason_of_the_counter_analysis():
    why = only_loop(while_true, A, I)
    # 'i >= n' leaves the loop: i moves away from the end the test needs.
    assert why.arguments["reason"] == "CounterDirection"
    assert "is not counted: 'i' moves by 1" in why.message


def test_match_while_loop_of_a_for_loop_is_a_miss():
    func_ir, forest, du, facts = analyses(fill, A)
    (loop,) = forest.loops
    assert match_while_loop(func_ir, forest, loop, du, facts).key == "NotWhileLoop"


# --- trip-count keys -----------------------------------------------------------


def two_temporaries(n, m):
    t = np.empty(n)
    u = np.zeros(n)
    v = np.empty(m)
    k = n
    for i in range(len(t)):
        t[i] = 0.0
    for i in range(len(u)):
        u[i] = 0.0
    for _ in range(k):
        v[0] = 0.0
    return t, u, v


def test_value_keys_are_equal_only_for_surely_equal_values():
    func_ir, forest, du, facts = analyses(two_temporaries, I, I)
    assert alloc_length_key(du, "t") == alloc_length_key(du, "u") == ("arg", 0)
    assert alloc_length_key(du, "v") == ("arg", 1)
    loops = [match_counted_loop(func_ir, forest, lp, du, facts) for lp in forest.loops]
    trips = {rl.range_text: rl.trip for rl in loops}
    assert len(set(trips.values())) == 1, trips  # len(t), u.shape[0], k: all n
    var = next(iter(func_ir.blocks.values())).scope.get_exact("k")
    assert value_key(du, var) == ("arg", 0)


def test_trip_keys_must_be_defined_before_the_loop():
    func_ir, forest, du, facts = analyses(fill, A)
    (loop,) = forest.loops
    rl = match_counted_loop(func_ir, forest, loop, du, facts)
    assert trip_defined_before(du, forest, rl.trip, rl.preheader)
    # A name assigned only inside the loop is not.
    assert not trip_defined_before(du, forest, ("name", "i"), rl.preheader)
