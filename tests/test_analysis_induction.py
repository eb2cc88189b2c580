"""analysis.induction: the counter that ends a while loop, and why a loop has
none."""

from __future__ import annotations

import operator

import numpy as np
import pytest
from _analysis_helpers import analyses
from numba.core import types

from numba_loopopt.analysis.induction import (
    CountedWhile,
    is_for_loop,
    match_counted_while,
    render,
)
from numba_loopopt.remarks import Missed

A = types.float64[:]
I = types.int64  # noqa: E741


def scan(a, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        a[i] = 1.0
        i += 2
    return i


def only_loop(func, *argtypes):
    func_ir, forest, du, facts = analyses(func, *argtypes)
    (loop,) = forest.loops
    return func_ir, forest, loop, du, facts


def test_the_counter_and_the_removable_tests_are_found():
    func_ir, forest, loop, du, facts = only_loop(scan, A, I)
    cw = match_counted_while(func_ir, forest, loop, du, facts)
    assert isinstance(cw, CountedWhile)
    counter = cw.counter
    assert (counter.name, counter.op, str(counter.bound), counter.step) == (
        "i", operator.lt, "n", 2)
    assert counter.describe() == "i < n"
    assert [t.describe() for t in cw.removable] == ["cond.item()"]


def two_updates(a, n):
    i = 0
    while i < n:
        i += 1
        if a[0] > 0:
            i += 1
    return i


def variable_step(a, n, k):
    i = 0
    while i < n:
        a[0] += 1.0
        i += k
    return i


def conditional_update(a, n):
    i = 0
    while i < n:
        a[0] += 1.0
        if a[0] > 3.0:
            i += 1
    return i


def moves_away(a, n):
    i = 10
    while i < n:
        i -= 1
    return i


def float_counter(a, n):
    i = 0.0
    while i < n:
        i += 1
    return i


def no_counter(a, n):
    k = 0
    cond = np.array(False)
    while k < n and not cond.item():
        a[1] += 1.0
    return a[1]


@pytest.mark.parametrize("func,argtypes,key", [
    (two_updates, (A, I), "CounterReassigned"),
    (variable_step, (A, I, I), "CounterStepNotConstant"),
    (moves_away, (A, I), "CounterDirection"),
    (float_counter, (A, I), "CounterNotInteger"),
    (no_counter, (A, I), "NotCounted"),
    (conditional_update, (A, I), "CounterUpdateNotOnce"),
], ids=lambda v: getattr(v, "__name__", None) if callable(v) else None)
def test_each_reason_has_its_key(func, argtypes, key):
    func_ir, forest, du, facts = analyses(func, *argtypes)
    found = [match_counted_while(func_ir, forest, lp, du, facts) for lp in forest.loops]
    assert [w.key for w in found if isinstance(w, Missed)][-1:] == [key], found


def for_loop(a):
    for i in range(len(a)):
        a[i] = 0.0


def test_is_for_loop():
    func_ir, forest, _, _ = analyses(for_loop, A)
    assert is_for_loop(func_ir.blocks, forest.loops[0])
    func_ir, forest, _, _ = analyses(scan, A, I)
    assert not is_for_loop(func_ir.blocks, forest.loops[0])


def bound_expression(a):
    i = 0
    while i < a.shape[0]:
        i += 1
    return i


def test_render_shows_a_temporary_as_source():
    func_ir, forest, loop, du, facts = only_loop(bound_expression, A)
    why = match_counted_while(func_ir, forest, loop, du, facts)
    assert why.key == "BoundNotInvariant"
    assert why.arguments["bound"].startswith("a.shape")
    name = next(n for n in du.defs if n.startswith("$") and du.single_def(n) is not None
                and getattr(du.single_def(n), "op", None) == "getattr")
    assert render(du, name) == "a.shape"
