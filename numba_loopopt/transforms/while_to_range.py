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

import operator
from dataclasses import dataclass

from numba.core import ir, types
from numba.core.compiler_machinery import register_pass
from numba.core.ir_utils import build_definitions

from .. import irbuild
from ..analysis.defuse import BlockScans, DefUse
from ..analysis.effects import read_only_array
from ..analysis.loops import Loop, LoopForest
from ..analysis.tests import SYMBOL, Operand, Test, entry_guards, latch_chain
from ..analysis.typing import TypeFacts
from ..elide import short_repr
from ..irbuild import with_body
from ..passbase import LoopOptPass
from ..remarks import Missed, RemarkEmitter
from . import modulo_versioning

#: Comparisons a counter may use, with the sign its step must have.
_DIRECTION = {operator.lt: 1, operator.le: 1, operator.gt: -1, operator.ge: -1,
              operator.ne: 0}


@dataclass(frozen=True)
class Counter:
    """The loop's induction variable and the test that ends the loop."""

    name: str
    test: Test
    op: object
    """The comparison, oriented as ``counter op bound``."""
    bound: Operand
    step: int
    increment: ir.Assign

    def describe(self) -> str:
        return f"{self.name} {SYMBOL[self.op]} {self.bound}"


@dataclass(frozen=True)
class Candidate:
    loop: Loop
    counter: Counter
    removable: tuple[Test, ...]


def render(du: DefUse, name: str, depth: int = 3) -> str:
    """Source-like text for a temporary: ``len(buf)``, ``a.shape[0]``."""
    value = du.single_def(name)
    if value is None or depth == 0:
        return name
    if isinstance(value, (ir.Global, ir.FreeVar)):
        return getattr(value.value, "__name__", value.name)
    if isinstance(value, ir.Const):
        return short_repr(value.value)
    if isinstance(value, ir.Expr):
        sub = lambda var: render(du, var.name, depth - 1)  # noqa: E731
        if value.op == "call":
            args = ", ".join(sub(a) for a in value.args)
            return f"{sub(value.func)}({args})"
        if value.op == "getattr":
            return f"{sub(value.value)}.{value.attr}"
        if value.op == "static_getitem":
            return f"{sub(value.value)}[{value.index!r}]"
        if value.op == "getitem":
            return f"{sub(value.value)}[{sub(value.index)}]"
    return name


def _is_integer(ty) -> bool:
    return isinstance(ty, types.Integer)


def _is_scalar(ty) -> bool:
    return isinstance(ty, (types.Boolean, types.Number))


def _lines(sites) -> str:
    return ", ".join(str(s.stmt.loc.line) for s in sites)


def is_for_loop(blocks: dict[int, ir.Block], loop: Loop) -> bool:
    """Loops numba built from ``for`` (over ``range`` or anything else)."""
    return any(isinstance(s, ir.Assign) and isinstance(s.value, ir.Expr)
               and s.value.op == "iternext" for s in blocks[loop.header].body)


def _invariant_operand(op: Operand, du: DefUse, loop: Loop) -> bool:
    return op.name is None or not du.defs_in(op.name, loop.body)


def match_counter(forest: LoopForest, loop: Loop, chain: list[Test],
                  du: DefUse) -> Counter | Missed:
    compares = [t for t in chain if t.kind == "compare"]
    varying = [t for t in compares
               if not (_invariant_operand(t.lhs, du, loop)
                       and _invariant_operand(t.rhs, du, loop))]
    loc = chain[-1].loc if chain else None
    if not varying:
        return Missed("NotCounted", "the loop test does not compare a counter "
                      "that changes in the loop with a bound", loc)
    if len(varying) > 1:
        return Missed("MultipleCounters", "the loop test has several comparisons "
                      "that change in the loop: "
                      + ", ".join(t.describe() for t in varying), loc,
                      tests=len(varying))
    test = varying[0]
    lhs_varies = not _invariant_operand(test.lhs, du, loop)
    rhs_varies = not _invariant_operand(test.rhs, du, loop)
    if lhs_varies and rhs_varies:
        for side in (test.rhs, test.lhs):
            if side.name in test.temps:
                return Missed("BoundNotInvariant", f"the loop test recomputes "
                              f"'{render(du, side.name)}' on every iteration; "
                              "assign it to a variable before the loop", test.loc,
                              bound=render(du, side.name))
        name = test.rhs.name
        return Missed("BoundChanges", f"both sides of '{test.describe()}' change "
                      f"in the loop: '{name}' is reassigned at line "
                      f"{_lines(du.defs_in(name, loop.body))}", test.loc, bound=name)
    if lhs_varies:
        iv, bound, op = test.lhs.name, test.rhs, test.op
    else:
        from ..analysis.tests import COMPARISONS
        iv, bound, op = test.rhs.name, test.lhs, COMPARISONS[test.op]
    sites = du.defs_in(iv, loop.body)
    if len(sites) != 1:
        return Missed("CounterUpdate", f"'{iv}' is assigned {len(sites)} times in "
                      f"the loop (lines {_lines(sites)})", test.loc, counter=iv,
                      assignments=len(sites))
    site = sites[0]
    step = _constant_step(du, iv, site.stmt, loop)
    if step is None:
        return Missed("CounterUpdate", f"'{iv}' is updated at line "
                      f"{site.stmt.loc.line} by something other than a constant "
                      "step", site.stmt.loc, counter=iv)
    if step == 0 or not (_DIRECTION[op] * step > 0 or (_DIRECTION[op] == 0
                                                      and abs(step) == 1)):
        return Missed("CounterDirection", f"'{iv}' moves by {step} per iteration, "
                      f"which does not lead '{iv} {SYMBOL[op]} {bound}' to an end",
                      site.stmt.loc, counter=iv, step=step)
    runs_once = (forest.dominates(site.label, test.label)
                 and not any(site.label in inner for inner in forest.inner_loops(loop)))
    if not runs_once:
        return Missed("CounterUpdate", f"the update of '{iv}' at line "
                      f"{site.stmt.loc.line} does not run exactly once per iteration",
                      site.stmt.loc, counter=iv)
    return Counter(iv, test, op, bound, step, site.stmt)


def _constant_step(du: DefUse, iv: str, stmt: ir.Assign,
                   loop: Loop) -> int | float | None:
    value = stmt.value
    if isinstance(value, ir.Var):
        # 'i = nxt' steps only if nxt = i + k is computed in this iteration,
        # not once before the loop.
        sites = du.defs.get(value.name, ())
        if len(sites) != 1 or sites[0].label not in loop:
            return None
        value = sites[0].stmt.value
    if not isinstance(value, ir.Expr) or value.op not in ("binop", "inplace_binop"):
        return None
    fn = value.fn
    sign = {operator.add: 1, operator.iadd: 1, operator.sub: -1, operator.isub: -1}.get(fn)
    if sign is None:
        return None
    if value.lhs.name == iv:
        other = value.rhs
    elif sign == 1 and value.rhs.name == iv:
        other = value.lhs
    else:
        return None
    step = du.const_value(other)
    # A float step is still a constant step: the type check then reports the
    # counter as not an integer, which is the real reason.
    if not isinstance(step, (int, float)) or isinstance(step, bool):
        return None
    return sign * step


def check_invariant(func_ir: ir.FunctionIR, test: Test, loop: Loop, du: DefUse,
                    facts: TypeFacts) -> Missed | None:
    """``None`` if latch test ``test`` always has the value it had on entry."""
    for name in test.names():
        sites = du.defs_in(name, loop.body)
        if sites:
            return Missed("FlagChanges", f"'{name}' in the loop test "
                          f"'{test.describe()}' is reassigned at line "
                          f"{_lines(sites)}", sites[0].stmt.loc, name=name,
                          test=test.describe())
    if test.kind == "constant":
        return None
    if test.kind in ("item", "index"):
        return read_only_array(func_ir, du, test.subject, facts.typemap, test.loc)
    for name in test.names():
        if not _is_scalar(facts.of(name)):
            return Missed("FlagNotScalar", f"'{name}' in the loop test "
                          f"'{test.describe()}' has type {facts.of(name)}, not a "
                          "scalar", test.loc, name=name, type=str(facts.of(name)))
    return None


def match(func_ir: ir.FunctionIR, forest: LoopForest, loop: Loop, du: DefUse,
          facts: TypeFacts) -> Candidate | Missed:
    """Everything the rewrite needs, or why the loop cannot be rewritten.
    Never changes the IR."""
    loc = forest.blocks[loop.header].loc
    if len(loop.entries) != 1:
        return Missed("MultipleEntries", f"the loop is entered from "
                      f"{len(loop.entries)} places", loc, entries=len(loop.entries))
    if len(loop.latches) != 1:
        return Missed("MultipleLatches", f"the loop has {len(loop.latches)} back "
                      "edges (a 'continue' before the counter update?)", loc,
                      latches=len(loop.latches))
    chain = latch_chain(forest, loop, du)
    if not chain:
        (latch,) = loop.latches
        back = forest.blocks[latch].terminator
        if isinstance(back, ir.Jump):
            return Missed("NotCounted", f"the loop jumps back at line {back.loc.line} "
                          "without testing its condition (a 'continue' or "
                          "'while True')", back.loc)
        return Missed("NotCounted", "the loop does not end in a test this pass "
                      "understands", loc)
    counter = match_counter(forest, loop, chain, du)
    if isinstance(counter, Missed):
        return counter
    others = tuple(t for t in chain if t is not counter.test)
    guards = entry_guards(forest, loop, du)
    for test in (counter.test, *others):
        guarded = any(g.test.key == test.key and g.test.stay_on == test.stay_on
                      and not (test.names() & g.assigned_after) for g in guards)
        if not guarded:
            return Missed("NoEntryGuard", f"the loop is not entered through the "
                          f"test '{test.describe()}' (not a rotated while loop)",
                          test.loc, test=test.describe())
    for test in others:
        why = check_invariant(func_ir, test, loop, du, facts)
        if why is not None:
            return why
    # Types last: partial type inference is the costly check.
    iv_type = facts.of(counter.name)
    if not _is_integer(iv_type):
        return Missed("CounterNotInteger", f"the counter '{counter.name}' has type "
                      f"{iv_type}, not an integer", counter.test.loc,
                      counter=counter.name, type=str(iv_type))
    bound = counter.bound
    bound_type = facts.of(bound.name) if bound.name else None
    if bound.name and not _is_integer(bound_type) or (
            bound.name is None and (not isinstance(bound.const, int)
                                    or isinstance(bound.const, bool))):
        shown = bound_type if bound.name else type(bound.const).__name__
        return Missed("BoundNotInteger", f"the bound '{bound}' has type {shown}, "
                      "not an integer", counter.test.loc, bound=str(bound),
                      type=str(shown))
    return Candidate(loop, counter, others)


@dataclass(frozen=True)
class LoopPlan:
    """Everything the rewrite of one loop needs, built by :func:`plan_loop`
    without changing the IR: the matched loop, and the modulo versioning to
    apply (or why there is none)."""

    candidate: Candidate
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
    cand = match(func_ir, forest, loop, du, facts)
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
        forest = LoopForest(func_ir.blocks)
        if not forest.loops:
            return False
        func_ir._definitions = build_definitions(func_ir.blocks)
        facts = TypeFacts(state)
        changed = False
        seen: set[int] = set()
        # Rebuilding the analyses after every rewrite made the pass quadratic in
        # the number of loops.  The def-use facts are brought up to date lazily,
        # from the blocks a rewrite replaced (DefUse.refresh); the forest is
        # kept across a rewrite that only removed exit tests (_keeps_forest),
        # with the blocks it changed in `stale`: a loop containing one gets a
        # new forest before it is matched (its dominators may have changed).
        du = None
        du_current = False
        stale: set[int] = set()
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
            if stale & loop.body:
                forest, stale, pos = LoopForest(func_ir.blocks), set(), 0
                loop = next(lp for lp in forest.loops if lp.header == loop.header)
            if du is None:
                du = DefUse(func_ir.blocks, BlockScans())
            elif not du_current:
                du.refresh(func_ir.blocks)
            du_current = True
            done = self._rewrite_loop(func_ir, forest, loop, du, facts, options, emit, seen)
            if done is None:
                continue
            changed = True
            du_current = False
            if _keeps_forest(forest, *done):
                for test in done[0].removable:
                    forest.remove_exit_edge(test.label, test.leave)
                    stale.add(test.label)
            else:
                forest, stale, pos = LoopForest(func_ir.blocks), set(), 0
            if CHECK_INCREMENTAL:
                _check_forest(forest, LoopForest(func_ir.blocks), stale)
                du.refresh(func_ir.blocks)
                du_current = True
                _check_defuse(du, DefUse(func_ir.blocks))
        if changed:
            irbuild.finish_untyped_edit(func_ir)
        return changed

    def _rewrite_loop(self, func_ir, forest, loop, du, facts, options, emit,
                      seen) -> tuple[Candidate, bool] | None:
        """``(candidate, versioned)`` if the loop was rewritten, else None."""
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
        # All analysis has completed; start transforming.
        seen.update(rewrite(func_ir, plan))
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
        return plan.candidate, plan.versioning is not None


#: Tests set this to compare the forest kept across rewrites with a new one
#: after every rewrite (slow: it brings back the quadratic cost).
CHECK_INCREMENTAL = False


def _keeps_forest(forest: LoopForest, cand: Candidate, versioned: bool) -> bool:
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


def _check_defuse(kept: DefUse, new: DefUse) -> None:
    """Assert that refreshed def-use facts are those of a new build."""
    for mine, fresh in ((kept.defs, new.defs), (kept.uses, new.uses)):
        assert {k: v for k, v in mine.items() if v} == dict(fresh)


def _check_forest(kept: LoopForest, new: LoopForest, stale: set[int]) -> None:
    """Assert that a kept forest answers as a new one would."""
    assert kept.loops == new.loops, (kept.loops, new.loops)
    for label in new.blocks:
        if label in new.cfg.dead_nodes():
            continue
        assert sorted(kept.predecessors(label)) == sorted(new.predecessors(label)), label
    for lp in new.loops:
        if lp.body & stale:
            continue
        for a in lp.body:
            for b in lp.body:
                assert kept.dominates(a, b) == new.dominates(a, b), (lp, a, b)
