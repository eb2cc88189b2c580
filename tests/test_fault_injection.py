"""Fault injection: whichever pass fails, and however, the function still
compiles, its results equal stock numba's, and the remarks say what failed."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_both
from numba import njit
from numba.core import ir

import numba_loopopt as lo
from numba_loopopt.transforms.fuse_loops import FuseLoops
from numba_loopopt.transforms.inline import InlineCalls
from numba_loopopt.transforms.scalar_replace import ScalarReplace
from numba_loopopt.transforms.while_to_range import WhileToRange

PASSES = [InlineCalls, ScalarReplace, WhileToRange, FuseLoops]


@njit
def _scale(x):
    return x * 2.0


def exercises_every_pass(a, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        a[i] = _scale(a[i])
        i += 1
    tmp = np.empty(n)
    for j in range(n):
        tmp[j] = a[j] + 1.0
    s = 0.0
    for j in range(n):
        s += tmp[j]
    return s + i


def test_every_pass_changes_the_kernel():
    disp = run_both(exercises_every_pass, np.arange(6.0), 6)
    passed = {r.pass_name for r in lo.remarks(disp, disp.signatures[0])
              if r.kind.value == "passed"}
    assert passed == {cls.pass_name for cls in PASSES}


def _raise_after_mangling(self, state, options, emit):
    emit.passed("Bogus", None, "never happened")
    for block in state.func_ir.blocks.values():
        block.body = block.body[:1]
    state.func_ir._definitions.clear()
    raise ZeroDivisionError("injected fault")


def _break_the_ir(self, state, options, emit):
    for block in state.func_ir.blocks.values():
        if isinstance(block.terminator, ir.Return):
            loc = block.terminator.loc
            bad = ir.Var(block.scope, "$loopopt_fault", loc)
            block.body.insert(-1, ir.Assign(ir.Global("fault", object(), loc), bad, loc))
            block.body[-1] = ir.Return(bad, loc)
    return True


@pytest.mark.parametrize("cls", PASSES, ids=[c.pass_name for c in PASSES])
def test_a_pass_that_raises_is_rolled_back(cls, monkeypatch):
    monkeypatch.setattr(cls, "transform", _raise_after_mangling)
    disp = run_both(exercises_every_pass, np.arange(6.0), 6)
    found = lo.remarks(disp, disp.signatures[0])
    failed = [r for r in found if r.pass_name == cls.pass_name]
    assert [r.key for r in failed] == ["InternalError"]
    assert "ZeroDivisionError: injected fault" in failed[0].message
    # The other passes still ran.
    others = {r.pass_name for r in found if r.kind.value == "passed"}
    assert others == {c.pass_name for c in PASSES if c is not cls}


@pytest.mark.parametrize("cls", PASSES, ids=[c.pass_name for c in PASSES])
def test_a_pass_that_breaks_the_ir_falls_back_to_stock(cls, monkeypatch):
    monkeypatch.setattr(cls, "transform", _break_the_ir)
    disp = run_both(exercises_every_pass, np.arange(6.0), 6)
    keys = [r.key for r in lo.remarks(disp, disp.signatures[0])]
    assert keys == ["StockFallback"]
