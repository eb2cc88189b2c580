"""Induction variables: the counter that ends a ``while`` loop.

A counted ``while`` loop, as CPython 3.11+ rotates it, ends in a chain of
tests at its latch (:func:`~.tests.latch_chain`); exactly one of them compares
an integer *counter*, stepped by a constant once per iteration, with a
loop-invariant integer *bound*.  :func:`match_counted_while` finds that
counter, and checks that every other latch test is invariant and also guards
the loop's entry (so the while-to-range pass may remove it), or says why not.
:func:`is_for_loop` tells the loops numba built from ``for`` apart.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from numba.core import ir, types

from ..elide import short_repr
from ..remarks import Missed
from .defuse import DefUse
from .effects import read_only_array
from .loops import Loop, LoopForest
from .tests import COMPARISONS, SYMBOL, Operand, Test, entry_guards, latch_chain
from .typing import TypeFacts

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
class CountedWhile:
    """A while loop ended by a counter test: the counter, and the latch's other
    tests, which :func:`match_counted_while` found invariant (the while-to-range
    pass removes them)."""

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
        iv, bound, op = test.rhs.name, test.lhs, COMPARISONS[test.op]
    sites = du.defs_in(iv, loop.body)
    if len(sites) != 1:
        return Missed("CounterReassigned", f"'{iv}' is assigned {len(sites)} times in "
                      f"the loop (lines {_lines(sites)})", test.loc, counter=iv,
                      assignments=len(sites))
    site = sites[0]
    step = _constant_step(du, iv, site.stmt, loop)
    if step is None:
        return Missed("CounterStepNotConstant", f"'{iv}' is updated at line "
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
        return Missed("CounterUpdateNotOnce", f"the update of '{iv}' at line "
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
            return Missed("FlagReassigned", f"'{name}' in the loop test "
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


def match_counted_while(func_ir: ir.FunctionIR, forest: LoopForest, loop: Loop,
                        du: DefUse, facts: TypeFacts) -> CountedWhile | Missed:
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
            return Missed("UntestedBackEdge", f"the loop jumps back at line {back.loc.line} "
                          "without testing its condition (a 'continue' or "
                          "'while True')", back.loc)
        return Missed("UnknownLoopTest", "the loop does not end in a test this pass "
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
    return CountedWhile(loop, counter, others)
