"""analysis.manager: analyses computed when first asked for, cached, and
invalidated or updated in one place after each edit."""

from __future__ import annotations

import numpy as np
import pytest
from _analysis_helpers import state_of
from numba import types
from numba.core import ir

from numba_loopopt import irbuild
from numba_loopopt.analysis import manager
from numba_loopopt.analysis.defuse import DefUse
from numba_loopopt.analysis.manager import LOOPS, TYPES, Analyses


def two_loops(a, n):
    s = 0.0
    for i in range(n):
        s += a[i]
    t = s * 2.0
    for i in range(n):
        t += a[i]
    return t


def flagged(a, n):
    flag = np.zeros((), dtype=np.bool_)
    s = 0.0
    i = 0
    while i < n and not flag.item():
        s += a[i]
        i += 1
    return s


F8 = types.float64[::1]


@pytest.fixture(autouse=True)
def checked(monkeypatch):
    """Every edit of these tests compares what was kept with new analyses."""
    monkeypatch.setattr(manager, "CHECK_INCREMENTAL", True)


def analyses_of(func):
    state = state_of(func, F8, types.int64)
    return state, Analyses(state)


def drop_statement(blocks, label, pick):
    """Replace block ``label`` by a copy without its first statement that
    ``pick`` accepts (its terminator kept); returns the statement."""
    block = blocks[label]
    stmt = next(s for s in block.body[:-1] if pick(s))
    blocks[label] = irbuild.with_body(block, [s for s in block.body if s is not stmt])
    return stmt


def assigns(name):
    return lambda s: isinstance(s, ir.Assign) and s.target.name == name


def label_assigning(blocks, name):
    return next(label for label, block in blocks.items()
                if any(assigns(name)(s) for s in block.body))


def test_analyses_are_computed_once_and_cached():
    state, am = analyses_of(two_loops)
    assert am.loops is am.loops
    assert am.defuse is am.defuse
    assert am.types is am.types
    assert len(am.loops.loops) == 2
    assert am.defuse.defs.keys() == DefUse(state.func_ir.blocks).defs.keys()


def test_an_edit_finds_the_blocks_it_replaced_added_and_removed_and_the_names():
    state, am = analyses_of(two_loops)
    blocks = state.func_ir.blocks
    label = label_assigning(blocks, "t")
    spare = next(iter(blocks.values()))
    with am.edit() as edit:
        drop_statement(blocks, label, assigns("t"))
        new = irbuild.new_label(blocks)
        blocks[new] = irbuild.with_body(spare, [ir.Return(ir.Var(spare.scope, "t", spare.loc),
                                                          spare.loc)])
    assert edit.replaced == {label} and edit.added == {new} and not edit.removed
    assert edit.labels == {label, new}
    assert "t" in edit.names and "s" in edit.names   # t = s * 2.0 went
    with am.edit() as edit:
        del blocks[new]
    assert edit.removed == {new} and edit.labels == {new}


def test_defuse_is_brought_up_to_date_after_an_edit():
    state, am = analyses_of(two_loops)
    blocks = state.func_ir.blocks
    du = am.defuse
    assert "t" in du.defs
    with am.edit():
        drop_statement(blocks, label_assigning(blocks, "t"), assigns("t"))
    assert am.defuse is du   # refreshed in place, not rebuilt
    fresh = DefUse(blocks)
    assert {k: v for k, v in du.defs.items() if v} == dict(fresh.defs)


def test_loops_stay_when_no_edge_changed_and_are_rebuilt_when_one_did():
    state, am = analyses_of(two_loops)
    blocks = state.func_ir.blocks
    forest = am.loops
    with am.edit() as edit:
        drop_statement(blocks, label_assigning(blocks, "t"), assigns("t"))
    assert edit.keeps_cfg and am.loops is forest
    first, second = sorted(lp.header for lp in forest.loops)
    exit_label = min(forest.loops, key=lambda lp: lp.header).exits
    (exit_label,) = exit_label
    with am.edit() as edit:   # the first loop's header now jumps past it
        header = blocks[first]
        blocks[first] = irbuild.with_body(header, header.body[:-1] + [
            ir.Jump(exit_label, header.loc)])
    assert not edit.keeps_cfg
    assert am.loops is not forest and len(am.loops.loops) == 1


def test_a_declared_exit_edge_removal_keeps_the_forest_until_a_loop_needs_it():
    state, am = analyses_of(flagged)
    blocks = state.func_ir.blocks
    forest = am.loops
    (loop,) = forest.loops
    # A latch test leaving the loop: the flag's test in the rotated loop.
    src, dst = next((label, t) for label in sorted(loop.body)
                    for t in _targets(blocks[label]) if t not in loop.body
                    and label != max(loop.latches))
    stay = next(t for t in _targets(blocks[src]) if t != dst)
    with am.edit(preserves=TYPES) as edit:
        block = blocks[src]
        blocks[src] = irbuild.with_body(block, block.body[:-1] + [ir.Jump(stay, block.loc)])
        edit.removed_exit_edges([(src, dst)])
    assert am.loops is forest
    assert src not in forest.predecessors(dst)
    assert am.loops_for(set()) is forest
    assert am.loops_for(loop.body) is not forest   # src is in the loop: made anew


def _targets(block):
    term = block.terminator
    return [term.truebr, term.falsebr] if isinstance(term, ir.Branch) else []


def test_types_are_dropped_unless_preserved():
    state, am = analyses_of(two_loops)
    blocks = state.func_ir.blocks
    facts = am.types
    with am.edit(preserves=TYPES):
        drop_statement(blocks, label_assigning(blocks, "t"), assigns("t"))
    assert am.types is facts
    with am.edit():
        drop_statement(blocks, label_assigning(blocks, "s"), assigns("s"))
    assert am.types is not facts


def test_definitions_are_rebuilt_only_after_an_edit():
    state, am = analyses_of(two_loops)
    func_ir = state.func_ir
    func_ir._definitions = {}
    assert len(am.definitions()["t"]) == 2   # never built in this pass: built
    built = func_ir._definitions
    assert am.definitions() is built      # no edit since: kept
    with am.edit():
        drop_statement(func_ir.blocks, label_assigning(func_ir.blocks, "t"), assigns("t"))
    assert func_ir._definitions is built  # rebuilt when asked, not before
    assert am.definitions() is not built and len(func_ir._definitions["t"]) == 1


def test_changed_since_answers_for_blocks_and_names():
    state, am = analyses_of(two_loops)
    blocks = state.func_ir.blocks
    mark = am.mark()
    assert not am.changed_since(mark)
    label = label_assigning(blocks, "t")
    with am.edit():
        drop_statement(blocks, label, assigns("t"))
    assert am.changed_since(mark)
    assert am.changed_since(mark, labels={label})
    assert not am.changed_since(mark, labels={label + 10_000})
    assert am.changed_since(mark, names=("t",))
    assert not am.changed_since(mark, names=("n",))
    assert not am.changed_since(am.mark(), labels={label}, names=("t",))


def test_an_edit_that_changes_nothing_is_no_edit():
    state, am = analyses_of(two_loops)
    forest, mark = am.loops, am.mark()
    with am.edit() as edit:
        pass
    assert not edit.labels and not am.changed_since(mark) and am.loops is forest


def test_only_known_analyses_can_be_preserved():
    _, am = analyses_of(two_loops)
    with pytest.raises(ValueError, match="defuse"):
        with am.edit(preserves=("defuse",)):
            pass
    with am.edit(preserves=(LOOPS, TYPES)):
        pass
