"""analysis.loops: the natural loops of a function, innermost first, and
dominance answered without building every block's dominator set."""

from __future__ import annotations

from numba.core import ir
from numba.core.compiler import run_frontend

from numba_loopopt.analysis.loops import LoopForest, neighbours, successors


def straight(x):
    return x + 1


def nested(a):
    s = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            s += a[i, j]
    return s


def counted_while(n):
    i = 0
    while i < n:
        i += 1
    return i


def two_in_a_row(a):
    s = 0.0
    for i in range(a.size):
        s += a[i]
    for i in range(a.size):
        s *= a[i]
    return s


def forest_of(func) -> LoopForest:
    return LoopForest(run_frontend(func).blocks)


def test_a_function_without_loops_has_none():
    forest = forest_of(straight)
    assert forest.loops == []
    assert forest.reducible()


def test_loops_come_innermost_first_and_nest():
    forest = forest_of(nested)
    inner, outer = forest.loops
    assert inner.body < outer.body
    assert inner.header in outer and outer.header not in inner
    assert forest.inner_loops(outer) == [inner]
    assert forest.inner_loops(inner) == []
    assert forest.dominates(outer.header, inner.header)
    assert not forest.dominates(inner.header, outer.header)
    assert forest.reducible()


def test_entries_latches_and_exits_are_edges_of_the_cfg():
    forest = forest_of(nested)
    for loop in forest.loops:
        preds = set(forest.predecessors(loop.header))
        assert loop.latches == preds & loop.body
        assert loop.entries == preds - loop.body
        assert loop.exits == {s for b in loop.body for s in successors(forest.blocks[b])
                              if s not in loop.body}


def test_a_while_loop_has_one_entry_and_one_latch():
    (loop,) = forest_of(counted_while).loops
    assert len(loop.entries) == 1 and len(loop.latches) == 1
    assert len(loop.exits) >= 1


def test_dominates_agrees_with_numbas_dominator_sets():
    for func in (straight, nested, counted_while, two_in_a_row):
        fast, slow = forest_of(func), forest_of(func)
        sets = slow.dominators()  # from now on, slow answers from numba's sets
        for a in fast.blocks:
            for b in fast.blocks:
                assert fast.dominates(a, b) == (a in sets.get(b, ())) == slow.dominates(a, b), \
                    (func.__name__, a, b)


def test_loops_in_a_row_do_not_contain_each_other():
    forest = forest_of(two_in_a_row)
    first, second = sorted(forest.loops, key=lambda lp: lp.header)
    assert not first.body & second.body
    assert forest.inner_loops(first) == forest.inner_loops(second) == []


def test_a_removed_exit_edge_is_no_predecessor_any_more():
    forest = forest_of(counted_while)
    (loop,) = forest.loops
    (latch,) = loop.latches
    exit_label = next(s for s in successors(forest.blocks[latch]) if s not in loop)
    assert latch in forest.predecessors(exit_label)
    forest.remove_exit_edge(latch, exit_label)
    assert latch not in forest.predecessors(exit_label)
    # Nothing else changes.
    assert forest.loops == forest_of(counted_while).loops


def test_successors_of_each_terminator():
    blocks = run_frontend(nested).blocks
    for block in blocks.values():
        term = block.terminator
        if isinstance(term, ir.Jump):
            assert successors(block) == [term.target]
        elif isinstance(term, ir.Branch):
            assert sorted(successors(block)) == sorted([term.truebr, term.falsebr])
        else:
            assert successors(block) == []


def three_apart(a, flag):
    s = 0.0
    for i in range(a.size):
        s += a[i]
    if flag:
        s += 1.0
    for i in range(a.size):
        s *= a[i]
    return s


def lone_then_nested(a):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i, 0]
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            s += a[i, j]
        for j in range(a.shape[1]):
            s -= a[i, j]
    return s


def branches_between(a, x):
    s = 0.0
    for i in range(a.size):
        s += a[i]
    if x > 0:
        s += 1.0
    if x > 1:
        s += 1.0
    if x > 2:
        s += 1.0
    for i in range(a.size):
        s *= a[i]
    return s


def test_neighbours_are_loops_the_code_after_one_enters():
    forest = forest_of(two_in_a_row)
    assert neighbours(forest) == {lp.header for lp in forest.loops}
    assert neighbours(forest_of(three_apart)) == {
        lp.header for lp in forest_of(three_apart).loops}


def test_a_loop_alone_or_its_enclosing_loop_is_no_neighbour():
    assert neighbours(forest_of(counted_while)) == set()
    # The inner loop's exit leads back to the outer loop's header: that is
    # no neighbour.
    assert neighbours(forest_of(nested)) == set()


def test_neighbours_in_a_nest_are_siblings_and_the_loops_around_them():
    forest = forest_of(lone_then_nested)
    (outer,) = [lp for lp in forest.loops if len(forest.inner_loops(lp)) == 2]
    inner = forest.inner_loops(outer)
    (first,) = [lp for lp in forest.loops if lp is not outer and lp not in inner]
    assert len(inner) == 2
    # The lone loop and the outer one are adjacent; so are the two inner
    # loops (the first one's exit enters the second).
    assert neighbours(forest) == {first.header, outer.header} | {lp.header for lp in inner}


def test_neighbours_look_only_reach_blocks_ahead():
    forest = forest_of(branches_between)
    headers = {lp.header for lp in forest.loops}
    assert neighbours(forest) == headers
    assert neighbours(forest, reach=1) == set()
