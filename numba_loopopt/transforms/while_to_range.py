"""Make ``while`` loops whose exit test cannot change into plain counted loops.

PyTensor's scan, and many hand-written kernels, loop with
``while i < n and not cond.item(): ...; i += 1``.  numba re-reads ``cond`` on
every iteration (LLVM cannot prove the loop's stores leave it alone), which
blocks unrolling and vectorisation: about 4x slower than a counted loop.

Legal when, all checked before any edit:

* the loop has one entry edge and one back edge, and ends in a chain of test
  blocks (CPython 3.11+ rotates ``while`` loops: every test runs once in a chain
  of guards before the loop and once at the latch);
* exactly one latch test compares an integer *counter* with a loop-invariant
  integer *bound*; the counter is assigned once in the loop, ``i += step`` with
  a constant step towards the bound, in a block that runs once per iteration;
* every other latch test is an invariant conjunct: an item or element of a 0-d
  or 1-d flag array that the function allocates and only reads (never written,
  bound to another name, viewed, returned or passed to a call), a scalar not
  assigned in the loop, or a comparison of such scalars;
* each of these tests also guards the loop's entry, with nothing assigned to
  its names between the guard and the loop.

An invariant conjunct then held on entry and holds on every iteration, so its
latch test is removed and the loop becomes a plain counted ``while`` loop, whose
counter keeps exactly its old value after the loop.  Once the counter's range
is known, loops indexing ``x[(i + k) % L]`` are versioned (see
:mod:`.modulo_versioning`).  Anything else leaves the IR untouched and emits a
missed remark saying why.

Emitted form: the loop keeps numba's plain ``while`` shape rather than
becoming ``for i in range(...)``.  Measured (``benchmarks/bench_while_to_range.py``,
hand-written loops in one run): a plain ``while`` runs as fast as ``range`` on
``buf[i + 1] = buf[i] + 1`` and 1.5x faster when the body keeps a modulo
(numba's range iterator adds branches, numba issue 10670), which is what a
scan with a circular buffer runs when versioning's check fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from numba.core import ir
from numba.core.compiler_machinery import register_pass

from .. import irbuild
from ..analysis.defuse import DefUse
from ..analysis.induction import CountedWhile, is_for_loop, match_counted_while
from ..analysis.loops import Loop, LoopForest
from ..analysis.manager import TYPES, Analyses
from ..analysis.typing import TypeFacts
from ..irbuild import with_body
from ..passbase import LoopOptPass
from ..remarks import Missed, RemarkEmitter
from . import modulo_versioning


@dataclass(frozen=True)
class LoopPlan:
    """Everything the rewrite of one loop needs, built by :func:`plan_loop`
    without changing the IR: the matched loop, and the modulo versioning to
    apply (or why there is none)."""

    candidate: CountedWhile
    versioning: modulo_versioning.Plan | None = None
    not_versioned: Missed | None = None
    """Why a modulo in the loop is not versioned (the rest still applies)."""

    @property
    def changes(self) -> bool:
        """Whether the rewrite changes anything: a test to remove or a loop to
        version."""
        return bool(self.candidate.removable) or self.versioning is not None


def plan_loop(func_ir: ir.FunctionIR, forest: LoopForest, loop: Loop, du: DefUse,
              facts: TypeFacts, options) -> LoopPlan | Missed:
    """The plan for ``loop``, or why it cannot be rewritten.  Never changes
    the IR."""
    cand = match_counted_while(func_ir, forest, loop, du, facts)
    if isinstance(cand, Missed):
        return cand
    if not options.version_modulo:
        return LoopPlan(cand)
    found = modulo_versioning.plan(func_ir.blocks, cand.loop, cand.counter, du, facts,
                                   options.max_versioned_stmts)
    if isinstance(found, Missed):
        return LoopPlan(cand, not_versioned=found)
    return LoopPlan(cand, versioning=found)


def remove_tests(blocks: dict[int, ir.Block], tests) -> None:
    """Replace each test by a jump to the block it always continues to."""
    for test in tests:
        block = blocks[test.label]
        body = [s for i, s in enumerate(block.body[:-1]) if i not in test.slice]
        blocks[test.label] = with_body(block, body + [ir.Jump(test.stay, test.loc)])


def rewrite(func_ir: ir.FunctionIR, plan: LoopPlan) -> set[int]:
    """Apply ``plan``: remove the loop's invariant tests, then version it.
    Returns the labels of the loop's copy (the new loops)."""
    cand = plan.candidate
    if cand.removable:
        remove_tests(func_ir.blocks, cand.removable)
    if plan.versioning is None:
        return set()
    return modulo_versioning.apply(func_ir, cand.loop, cand.counter, plan.versioning)


@register_pass(mutates_CFG=True, analysis_only=False)
class WhileToRange(LoopOptPass):
    """The while-to-range pass; see the module docstring."""

    pass_name = "while-to-range"

    def transform(self, state, options, emit: RemarkEmitter) -> bool:
        func_ir = state.func_ir
        am = Analyses(state)
        forest = am.loops
        if not forest.loops:
            return False
        am.definitions()
        facts = am.types
        changed = False
        seen: set[int] = set()
        # Rebuilding the analyses after every rewrite made the pass quadratic in
        # the number of loops.  The def-use facts are brought up to date from
        # the blocks a rewrite replaced; the forest is kept across a rewrite
        # that only removed exit tests (_keeps_forest), and a loop containing
        # a block such a rewrite changed gets a new forest before it is matched
        # (its dominators may have changed): see analysis.manager.
        pos = 0  # forest.loops[:pos] are all seen: `seen` only grows
        while True:
            while pos < len(forest.loops) and forest.loops[pos].header in seen:
                pos += 1
            if pos == len(forest.loops):
                break
            loop = forest.loops[pos]
            seen.add(loop.header)
            if is_for_loop(func_ir.blocks, loop):
                continue
            if am.loops_for(loop.body) is not forest:
                forest, pos = am.loops, 0
                loop = next(lp for lp in forest.loops if lp.header == loop.header)
            plan = self._plan(func_ir, forest, loop, am.defuse, facts, options, emit)
            if plan is None:
                continue
            # All analysis has completed; start transforming.  Removing tests
            # and versioning change no name's type.
            with am.edit(preserves=TYPES) as edit:
                seen.update(rewrite(func_ir, plan))
                if _keeps_forest(forest, plan.candidate, plan.versioning is not None):
                    edit.removed_exit_edges((test.label, test.leave)
                                            for test in plan.candidate.removable)
            self._remark(emit, plan)
            changed = True
            if am.loops is not forest:
                forest, pos = am.loops, 0
        if changed:
            irbuild.finish_untyped_edit(func_ir)
        return changed

    @staticmethod
    def _plan(func_ir, forest, loop, du, facts, options, emit) -> LoopPlan | None:
        """The plan for a loop that changes, else None (and a remark why)."""
        plan = plan_loop(func_ir, forest, loop, du, facts, options)
        if isinstance(plan, Missed):
            emit.missed(plan)
            return None
        if plan.not_versioned is not None:
            emit.missed(plan.not_versioned)
        counter = plan.candidate.counter
        if not plan.changes:
            emit.analysis("AlreadyCounted", counter.test.loc,
                          f"while loop is counted ({counter.describe()}, step "
                          f"{counter.step}) and has no invariant test to remove")
            return None
        return plan

    @staticmethod
    def _remark(emit, plan: LoopPlan) -> None:
        counter = plan.candidate.counter
        if plan.candidate.removable:
            removed = ", ".join(f"'{t.describe()}'" for t in plan.candidate.removable)
            emit.passed("Rewritten", counter.test.loc,
                        f"while loop is counted ({counter.describe()}, step "
                        f"{counter.step}): the loop-invariant test {removed} no "
                        "longer runs on every iteration",
                        counter=counter.name, bound=str(counter.bound),
                        step=counter.step, removed=removed)
        if plan.versioning is not None:
            emit.passed("Versioned", counter.test.loc, plan.versioning.describe(),
                        modulos=len(plan.versioning.uses))


def _keeps_forest(forest: LoopForest, cand: CountedWhile, versioned: bool) -> bool:
    """Whether ``forest`` still describes the CFG after ``cand``'s tests were
    removed, with only their exit edges dropped from its predecessor lists.

    Removing the test in block X of loop A drops the edge X -> L, L outside A.
    When the counter's test, which stays, also exits from A to L, every path
    that used X -> L has a twin through the counter's test: nothing becomes
    unreachable, no block reaches a loop's back edge only through X -> L (so
    no loop body shrinks), every loop exited to L still is, and no edge turns
    into a back edge.  With L no loop header, no loop loses an entry or back
    edge either: the loops stay the same.  Dominators can only grow, and only
    through paths that used X -> L; inside a loop that contains no X they are
    the ones of the loop's own subgraph, which did not change.  This needs a
    reducible CFG (numba's loops are then the textbook natural loops), which
    edge removal preserves.  Versioning adds blocks: a new forest then.
    """
    if versioned or not cand.removable or not forest.reducible():
        return False
    leave = cand.counter.test.leave
    headers = {lp.header for lp in forest.loops}
    return leave not in headers and all(t.leave == leave for t in cand.removable)

