"""analysis.tests: the tests that leave or stay in a loop, and the two chains
of them CPython 3.11+ emits for a rotated while loop."""

from __future__ import annotations

import operator

import numpy as np
from _analysis_helpers import analyses
from numba.core import types

from numba_loopopt.analysis.tests import SYMBOL, classify, entry_guards, latch_chain

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


def test_the_latch_and_the_entry_test_the_same_conditions():
    _, forest, loop, du, _ = only_loop(scan, A, I)
    latch = latch_chain(forest, loop, du)
    guards = entry_guards(forest, loop, du)
    assert [t.kind for t in latch] == ["compare", "item"]
    assert {t.key for t in latch} == {g.test.key for g in guards}
    # A guard stays in the loop on the same outcome as the latch's test.
    for t in latch:
        (g,) = [g for g in guards if g.test.key == t.key]
        assert g.test.stay_on == t.stay_on and g.test.leave == t.leave


def test_a_test_is_classified_with_its_operands():
    func_ir, forest, loop, du, _ = only_loop(scan, A, I)
    block = func_ir.blocks[loop.header]
    test = classify(block, loop.header, lambda label: label in loop, du)
    assert test is not None and test.kind == "compare"
    assert (test.op, str(test.lhs), str(test.rhs)) == (operator.lt, "i", "n")
    assert test.names() == {"i", "n"} and test.describe() == "i < n"
    assert SYMBOL[test.op] == "<"


def plain(a):
    return a + 1


def test_a_block_without_a_branch_is_no_test():
    func_ir, _, du, _ = analyses(plain, I)
    (label, block), = func_ir.blocks.items()
    assert classify(block, label, lambda _: True, du) is None
