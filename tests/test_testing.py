"""The IR-dump helpers: dumps after any pass, FileCheck, elided constants."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit, types
from numba.core import ir

from numba_loopopt.testing import check, format_stmt, ir_after

BIG = np.arange(2_000_000, dtype=np.float64)


def uses_big_global(i):
    return BIG[i] + 1.0


def add_one(x):
    return x + 1


def test_dump_after_a_numba_pass_with_types():
    dump, disp = ir_after(add_one, (types.int64,), "nopython_type_inference")
    assert disp(2) == 3
    check(dump, r"""
        CHECK: label 0:
        CHECK: x = arg(0, name=x) :: int64
        CHECK: [[SUM:\$[\w.]+]] = x + [[ONE:\$[\w.]+]] :: int64
        CHECK: return
    """)


def test_dump_through_the_stock_pipeline():
    dump, disp = ir_after(add_one, (types.float64,), "reconstruct_ssa", stock=True)
    assert disp(1.5) == 2.5 and "label 0:" in dump


def test_unknown_pass_names_list_the_pipeline():
    with pytest.raises(ValueError, match="no pass named 'nope'.*loopopt_while_to_range"):
        ir_after(add_one, (types.int64,), "nope")


def test_check_reports_filecheck_failures_with_the_dump():
    dump, _ = ir_after(add_one, (types.int64,), "loopopt_while_to_range")
    check(dump, "CHECK-NOT: while")
    with pytest.raises(AssertionError, match="CHECK-NOT: excluded string found"):
        check(dump, "CHECK-NOT: arg(0")


def test_large_globals_are_elided_in_dumps():
    dump, disp = ir_after(uses_big_global, (types.int64,), "loopopt_while_to_range")
    assert disp(3) == njit(uses_big_global)(3) == 4.0
    check(dump, r"CHECK: global(BIG: <elided ndarray float64 shape=(2000000,) 16000000 bytes>)")
    assert len(dump) < 2000


class _NeverPrinted(np.ndarray):
    def __repr__(self):
        raise AssertionError("the dump turned a large constant into text")

    __str__ = __repr__


def test_large_constants_never_become_text():
    loc = ir.Loc("f.py", 1)
    scope = ir.Scope(None, loc)
    value = np.zeros(10_000).view(_NeverPrinted)
    stmt = ir.Assign(ir.Global("G", value, loc), ir.Var(scope, "g", loc), loc)
    assert format_stmt(stmt) == "g = global(G: <elided ndarray float64 shape=(10000,) 80000 bytes>)"
    big_tuple = ir.Assign(ir.Const(tuple(range(1000)), loc), ir.Var(scope, "t", loc), loc)
    assert format_stmt(big_tuple) == "t = const(<elided tuple of 1000 items>)"
