"""The analyses kept across rewrites (for compile time) answer exactly as new
ones would, and the passes produce the same IR and remarks with them."""

from __future__ import annotations

import re

import numba
import numpy as np
import pytest
from conftest import run_both
from numba import types
from numba.core import ir

import numba_loopopt as lo
import numba_loopopt.transforms.while_to_range as w2r
from numba_loopopt.analysis import effects, manager
from numba_loopopt.analysis.defuse import BlockScans, DefUse
from numba_loopopt.analysis.loops import LoopForest
from numba_loopopt.irbuild import with_body
from numba_loopopt.testing import check, ir_after

F8 = types.float64[::1]


def sequential(buf, n):
    flag = np.zeros((), dtype=np.bool_)
    other = np.zeros(3, dtype=np.bool_)
    acc = 0.0
    i = 0
    while i < n and not flag.item():
        acc += buf[i]
        i += 1
    j = 0
    while j < n and not other[1]:
        acc += buf[j] * 2.0
        j += 1
    k = n
    while k > 0 and not flag.item() and not other[0]:
        acc -= buf[k - 1]
        k -= 1
    return acc + i + j + k


def nested_and_versioned(buf, n):
    flag = np.zeros((), dtype=np.bool_)
    L = len(buf)
    acc = 0.0
    outer = 0
    while outer < 3 and not flag.item():
        i = 0
        while i < n and not flag.item():
            buf[(i + 1) % L] = buf[i % L] + 1.0
            i += 1
        outer += 1
    m = 0
    while m < n and not flag.item():
        acc += buf[m % L]
        m += 1
    return acc


def mixed_exits(buf, n):
    flag = np.zeros((), dtype=np.bool_)
    acc = 0.0
    i = 0
    while i < n and not flag.item():
        if buf[i] < 0:
            break
        acc += buf[i]
        i += 1
    else:
        acc += 100.0
    for k in range(n):
        acc += k
    j = 0
    while j < n and not flag.item():
        acc += buf[j]
        j += 1
    return acc


KERNELS = [sequential, nested_and_versioned, mixed_exits]


def canonical_labels(dump: str) -> str:
    """The dump with labels numbered in order of appearance: blocks copied by
    versioning take labels from numba's process-wide counter."""
    order = {}
    for label in re.findall(r"^label (\d+):", dump, flags=re.MULTILINE):
        order.setdefault(label, f"L{len(order)}")

    def targets(match):
        return re.sub(r"\b\d+\b", lambda m: order.get(m.group(0), m.group(0)),
                      match.group(0))

    return re.sub(r"^(label \d+:|\s*(jump|branch) .*)$", targets, dump,
                  flags=re.MULTILINE)


@pytest.mark.parametrize("kernel", KERNELS, ids=[k.__name__ for k in KERNELS])
def test_kept_forest_and_refreshed_defuse_match_new_ones(kernel, monkeypatch):
    checks = []
    monkeypatch.setattr(manager, "CHECK_INCREMENTAL", True)
    monkeypatch.setattr(manager, "_check_forest",
                        lambda *a, _f=manager._check_forest: checks.append(_f(*a)))
    for n in (0, 1, 5, 9):
        for buf in (np.arange(10.0), np.full(10, -1.0)):
            run_both(kernel, buf, n)
    assert checks  # every rewrite compared the kept analyses with new ones


@pytest.mark.parametrize("kernel", KERNELS, ids=[k.__name__ for k in KERNELS])
def test_same_ir_and_remarks_as_rebuilding_after_every_rewrite(kernel, monkeypatch):
    kept, disp = ir_after(kernel, (F8, types.int64), "loopopt_while_to_range")
    kept_remarks = lo.remarks(disp, disp.signatures[0])
    monkeypatch.setattr(w2r, "_keeps_forest", lambda *a: False)
    monkeypatch.setattr(DefUse, "refresh", DefUse._build)
    rebuilt, disp = ir_after(kernel, (F8, types.int64), "loopopt_while_to_range")
    assert canonical_labels(kept) == canonical_labels(rebuilt)
    assert kept_remarks == lo.remarks(disp, disp.signatures[0])
    assert any(r.key == "Rewritten" for r in kept_remarks)


def blocks_of(kernel):
    """The untyped IR the while-to-range pass sees."""
    seen = {}

    class Grab(w2r.WhileToRange):
        def transform(self, state, options, emit):
            seen["ir"] = state.func_ir
            return False

    orig = w2r.WhileToRange.transform
    try:
        w2r.WhileToRange.transform = Grab.transform
        # Without scalar-replace, which would turn the 0-d flags into scalars.
        lo.jit(kernel, options={"scalar_replace": False}).compile((F8, types.int64))
    finally:
        w2r.WhileToRange.transform = orig
    return seen["ir"]


def _reductions_kernel(count: int):
    lines = ["def kernel(a):", "    acc = 0.0"]
    lines += [f"    acc += np.sum(a * {k + 1}.0 + a)" for k in range(count)]
    lines += ["    t = a * 2.0", "    acc += t.sum() + t.max()"]
    namespace = {"np": np}
    exec("\n".join(lines + ["    return acc"]), namespace)
    return namespace["kernel"]


@numba.njit
def _helper(x, y):
    return x * 2.0 + y


def _calls_and_zero_dim(a):
    acc = np.zeros((), dtype=np.float64)
    for i in range(a.shape[0]):
        acc[()] += _helper(a[i], 1.0)
    s = 0.0
    for i in range(a.shape[0]):
        s += _helper(a[i], acc[()])
    return s


def _recurrences(a):
    n = a.shape[0]
    out = np.empty(n + 1)
    out[0] = 0.0
    for i in range(n):
        out[i + 1] = out[i] * 0.5 + a[i]
    acc = np.zeros(1)
    for i in range(n):
        acc[0] = acc[0] + out[i]
    return out, acc


EVERY_PASS = [("pairs", lambda: _pairs_kernel(6)), ("chain", lambda: chain_of_five),
              ("recurrences", lambda: _recurrences),
              ("reductions", lambda: _reductions_kernel(5)),
              ("calls_and_zero_dim", lambda: _calls_and_zero_dim),
              ("while_loops", lambda: sequential)]


@pytest.mark.parametrize("make", [m for _, m in EVERY_PASS], ids=[k for k, _ in EVERY_PASS])
def test_every_pass_keeps_its_analyses_as_new_ones_would_say(make, monkeypatch):
    """With CHECK_INCREMENTAL, every edit of every pass compares the loop
    forest and def-use facts it kept or refreshed with new ones."""
    checked = []
    monkeypatch.setattr(manager, "CHECK_INCREMENTAL", True)
    monkeypatch.setattr(manager.Analyses, "check",
                        lambda self, _f=manager.Analyses.check: checked.append(_f(self)))
    kernel = make()
    nargs = kernel.__code__.co_argcount
    for n in (0, 1, 7):
        rng = np.random.default_rng(n)
        args = [rng.random(n) for _ in range(nargs)]
        if nargs == 2 and kernel is sequential:
            args = [np.arange(10.0), min(n, 9)]
        run_both(kernel, *args, fresh=True)
    assert checked


def test_refresh_swaps_the_sites_of_replaced_blocks():
    func_ir = blocks_of(sequential)
    blocks = dict(func_ir.blocks)
    du = DefUse(blocks, BlockScans())
    # Drop the first statement of every block that has one besides its
    # terminator (no new names: the cheap path).
    for label, block in list(blocks.items()):
        if len(block.body) > 1:
            blocks[label] = with_body(block, block.body[1:])
    du.refresh(blocks)
    fresh = DefUse(blocks)
    assert {k: v for k, v in du.defs.items() if v} == dict(fresh.defs)
    assert {k: v for k, v in du.uses.items() if v} == dict(fresh.uses)
    # A block mentioning a new name, and a new block: rebuilt from scratch.
    label = next(iter(blocks))
    block = blocks[label]
    new_var = ir.Var(block.scope, "$fresh_name", block.loc)
    blocks[label] = with_body(block, [ir.Assign(ir.Const(1, block.loc), new_var, block.loc),
                                      *block.body])
    blocks[max(blocks) + 10] = with_body(block, list(block.body))
    du.refresh(blocks)
    fresh = DefUse(blocks)
    assert dict(du.defs) == dict(fresh.defs) and dict(du.uses) == dict(fresh.uses)


def test_dominates_is_membership_in_numbas_dominator_sets():
    forest = LoopForest(blocks_of(nested_and_versioned).blocks)
    doms = LoopForest(forest.blocks).dominators()
    labels = [label for label in forest.blocks if label in doms]
    for a in labels:
        for b in labels:
            assert forest.dominates(a, b) == (a in doms[b])
    assert forest.reducible()


def test_read_only_verdict_is_reused_only_while_uses_are_only_lost():
    func_ir = blocks_of(sequential)
    blocks = dict(func_ir.blocks)
    du = DefUse(blocks, BlockScans())
    typemap = {"flag": types.Array(types.boolean, 0, "C")}
    assert effects.read_only_array(func_ir, du, "flag", typemap) is None
    assert ("read_only_array", "flag") in du.memo
    # Taking a use away keeps the verdict...
    label = du.uses["flag"][-1].label
    block = blocks[label]
    blocks[label] = with_body(block, [s for s in block.body
                                      if s is not du.uses["flag"][-1].stmt])
    du.refresh(blocks)
    assert du.additions == 0
    assert effects.read_only_array(func_ir, du, "flag", typemap) is None
    # ...a new use that writes the flag is judged, not taken from the memo.
    label = du.uses["flag"][0].label
    block = blocks[label]
    flag = ir.Var(block.scope, "flag", block.loc)
    index = ir.Var(block.scope, "$idx", block.loc)
    write = ir.SetItem(flag, index, index, block.loc)
    blocks[label] = with_body(block, [*block.body[:-1], write, block.body[-1]])
    du.refresh(blocks)
    missed = effects.read_only_array(func_ir, du, "flag", typemap)
    assert missed is not None and missed.key == "FlagChanges"


# ---------------------------------------------------------------------------
# fuse-loops: analyses once per round, not once per fusion.
# ---------------------------------------------------------------------------


def chain_of_five(a, b):
    """Every loop fuses with the next; 't1' is read by two later loops."""
    n = a.shape[0]
    t1 = np.empty(n)
    for i in range(n):
        t1[i] = a[i] * b[i]
    t2 = np.empty(n)
    for i in range(n):
        t2[i] = t1[i] + 1.0
    t3 = np.empty(n)
    for i in range(n):
        t3[i] = t1[i] - t2[i]
    s = 0.0
    for i in range(n):
        s += t3[i]
    m = 0.0
    for i in range(n):
        m = max(m, a[i])
    return s + m


def _pairs_kernel(pairs: int):
    lines = ["def kernel(a):", "    n = a.shape[0]", "    acc = 0.0"]
    for k in range(pairs):
        lines += [f"    t{k} = np.empty(n)", "    for i in range(n):",
                  f"        t{k}[i] = a[i] * {k + 1}.0", "    for i in range(n):",
                  f"        acc += t{k}[i]"]
    namespace = {"np": np}
    exec("\n".join(lines + ["    return acc"]), namespace)
    return namespace["kernel"]


def _count_forests(monkeypatch) -> list:
    """The loop forests fuse-loops has built (through its analysis manager),
    by their number of blocks."""
    import numba_loopopt.transforms.fuse_loops as fl

    built, active = [], []

    class Counting(LoopForest):
        def __init__(self, blocks):
            if active:
                built.append(len(blocks))
            super().__init__(blocks)

    def transform(self, *args, _orig=fl.FuseLoops.transform):
        active.append(True)
        try:
            return _orig(self, *args)
        finally:
            active.pop()

    monkeypatch.setattr(manager, "LoopForest", Counting)
    monkeypatch.setattr(fl.FuseLoops, "transform", transform)
    return built


def test_fuse_loops_builds_its_analyses_once_per_round(monkeypatch):
    # 30 fill-then-sum pairs: one round fuses all 30, a second finds nothing
    # left (each sum loop was refused with the next fill loop in round one).
    built = _count_forests(monkeypatch)
    disp = run_both(_pairs_kernel(30), np.arange(7.0))
    keys = [r.key for r in lo.remarks(disp)[next(iter(lo.remarks(disp)))]
            if r.pass_name == "fuse-loops"]
    assert keys.count("Fused") == 30 and keys.count("Contracted") == 30
    # The pass's first look serves round one; round two needs a new one.
    assert len(built) == 2, built


def test_a_chain_fuses_into_one_loop_in_rounds(monkeypatch):
    built = _count_forests(monkeypatch)
    for n in (0, 1, 5, 33):
        rng = np.random.default_rng(n)
        disp = run_both(chain_of_five, rng.random(n), rng.random(n))
    # Five loops: (1,2) and (3,4) fuse in round one, (12,34) in round two,
    # (1234,5) in round three, and round four finds no pair.  The first
    # look's forest serves round one.
    assert len(built) == 4, built
    remarks = lo.remarks(disp)[next(iter(lo.remarks(disp)))]
    keys = [r.key for r in remarks if r.pass_name == "fuse-loops"]
    assert keys.count("Fused") == 4, keys
    dump, _ = ir_after(chain_of_five, (F8, F8), "loopopt_fuse_loops")
    assert dump.count("iternext") == 1, dump
    # One loop; t2 and t3 contracted (their allocations became shape checks),
    # t1 kept: the fused loop also reads it.
    check(dump, r"""
        CHECK:     t1 = call
        CHECK:     call $loopopt_check_shape
        CHECK:     call $loopopt_check_shape
        CHECK:     iternext
        CHECK:     t1[{{.*}}] =
        CHECK-NOT: iternext
        CHECK:     return
        """)


def test_equal_expressions_share_one_compiled_kernel():
    """fuse-reduce compiles one element function (and one fused kernel) per
    distinct expression text, whatever the parameter names numba chose."""
    import numba_loopopt.transforms.fuse_reduce as fr

    def first(a, b):
        return np.sum(a * 2.5 + b)

    def second(x, y):
        return np.sum(x * 2.5 + y) + np.sum(x * 2.5 + y)

    before = len(fr._ELEMENTS)
    arrays = (np.arange(5.0), np.ones(5))
    run_both(first, *arrays)
    assert len(fr._ELEMENTS) == before + 1
    disp = run_both(second, *arrays)
    assert len(fr._ELEMENTS) == before + 1
    keys = [r.key for r in lo.remarks(disp)[next(iter(lo.remarks(disp)))]]
    assert keys == ["Fused", "Fused"], keys
