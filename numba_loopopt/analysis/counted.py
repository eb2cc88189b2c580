"""Counted loops: the loops whose trip count is known before they start.

:class:`RangeLoop` is one view of the two counted forms numba's untyped IR
has: ``for index in range(...)`` (:func:`match_range_loop`), and a rotated
``while index < stop: ...; index += step`` loop as the while-to-range pass
leaves it (:func:`match_while_loop`).  Its :attr:`~RangeLoop.trip` is a
*value key* of ``(start, stop, step)`` (:func:`value_key`): two loops with
equal keys run the same number of times, when the names the keys rest on are
assigned before both (:func:`trip_defined_before`).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from numba.core import ir

from ..remarks import Missed
from .defuse import DefUse
from .induction import is_for_loop, match_counted_while
from .loops import Loop, LoopForest, successors
from .tests import entry_guards
from .typing import TypeFacts


@dataclass(frozen=True)
class RangeLoop:
    """A counted loop in numba's untyped IR: ``for index in range(...)``
    (``kind == "range"``), or a rotated ``while index < stop: ...; index +=
    step`` loop (``kind == "while"``, as the while-to-range pass leaves it)."""

    loop: Loop
    preheader: int
    """The block that enters the loop; a while loop's entry guard ends it."""
    exit: int
    body_entry: int
    latch: int
    index: str
    next_value: ir.Var | None
    """The header's copy of the iterator's value, assigned to the index (range
    loops only)."""
    setup: tuple[int, ...]
    """ids of the preheader statements that set the loop up: the range
    iterator, or the counter's initial value and the entry guard's test."""
    trip: tuple | None
    """Value keys of (start, stop, step); None where unknown."""
    range_text: str
    loc: ir.Loc
    kind: str = "range"
    test_block: int | None = None
    """A while loop's block that tests the counter and leaves the loop."""
    control: frozenset[int] = frozenset()
    """ids of a while loop's latch test statements: loop control, not body."""
    entry: int | None = None
    """The block that enters a while loop: the last of its guards."""
    guards: tuple = ()
    """A while loop's entry tests other than the counter's, nearest first."""

    @property
    def body(self) -> frozenset[int]:
        """The blocks of the loop's body (a range loop's header excluded)."""
        if self.kind == "while":
            return self.loop.body
        return self.loop.body - {self.loop.header}


def value_key(du: DefUse, var: ir.Var, depth: int = 4):
    """A key equal for two names only if they surely hold the same value."""
    sites = du.defs.get(var.name, ())
    if len(sites) != 1 or depth == 0:
        return None
    value = sites[0].stmt.value
    if isinstance(value, ir.Arg):
        return ("arg", value.index)
    if isinstance(value, (ir.Const, ir.Global, ir.FreeVar)) and isinstance(
            value.value, int) and not isinstance(value.value, bool):
        return ("const", value.value)
    if isinstance(value, ir.Var):
        return value_key(du, value, depth - 1)
    if isinstance(value, ir.Expr):
        length = _length_of(du, value, depth)
        if length is not None:
            return length
        if value.op == "binop":
            lhs, rhs = value_key(du, value.lhs, depth - 1), value_key(du, value.rhs, depth - 1)
            if lhs is not None and rhs is not None:
                return ("binop", value.fn, lhs, rhs)
    return ("name", var.name)


def _length_of(du: DefUse, value: ir.Expr, depth: int):
    """The key of ``len(a)`` / ``a.shape[0]``, in terms of ``a``'s allocation
    when ``a = np.empty(n)``."""
    array = None
    if value.op == "call" and len(value.args) == 1 and du.global_value(value.func) is len:
        array = value.args[0]
    elif value.op == "static_getitem" and value.index == 0:
        attr = du.single_def(value.value.name)
        if isinstance(attr, ir.Expr) and attr.op == "getattr" and attr.attr == "shape":
            array = attr.value
    if array is None:
        return None
    key = alloc_length_key(du, array.name, depth)
    if key is not None:
        return key
    if len(du.defs.get(array.name, ())) == 1:
        return ("len", array.name)
    return None


def alloc_length_key(du: DefUse, array: str, depth: int = 4):
    """The value key of ``len(array)`` when ``array = np.empty(n)`` (or zeros,
    ones, full): that of ``n``."""
    alloc = du.single_def(array)
    if isinstance(alloc, ir.Expr) and alloc.op == "call" and len(alloc.args) >= 1 \
            and allocator_name(du, alloc) in ("empty", "zeros", "ones", "full"):
        shape = alloc.args[0]
        tup = du.single_def(shape.name)
        if isinstance(tup, ir.Expr) and tup.op == "build_tuple" and len(tup.items) == 1:
            shape = tup.items[0]
        return value_key(du, shape, depth - 1)
    return None


def allocator_name(du: DefUse, call: ir.Expr) -> str | None:
    attr = du.single_def(call.func.name)
    if isinstance(attr, ir.Expr) and attr.op == "getattr":
        module = du.global_value(attr.value)
        if getattr(module, "__name__", None) == "numpy":
            return attr.attr
    return None


def match_counted_loop(func_ir, forest: LoopForest, loop: Loop, du: DefUse,
                       facts: TypeFacts) -> RangeLoop | Missed:
    """The loop as a counted loop of either form, or why it is not one: a
    ``for`` loop is matched as a range loop, any other as a while loop."""
    if is_for_loop(func_ir.blocks, loop):
        return match_range_loop(func_ir.blocks, forest, loop, du)
    return match_while_loop(func_ir, forest, loop, du, facts)


def _leaves_early(blocks, loop: Loop, leaving: int) -> Missed | None:
    """Why the loop is left from a block other than ``leaving`` (its test):
    a ``break`` or a ``return`` in the body."""
    for label in sorted(loop.body - {leaving}):
        block = blocks[label]
        if any(t not in loop for t in successors(block)):
            loc = block.terminator.loc
            what = "returns" if isinstance(block.terminator, ir.Return) else "leaves"
            return Missed("EarlyExit", f"the loop {what} at line {loc.line}, not only "
                          "through its test (a 'break' or 'return'), so its trip count "
                          "is not known when it starts", loc, line=loc.line)
    return None


def _single_entry_and_latch(blocks, loop: Loop) -> Missed | None:
    loc = blocks[loop.header].loc
    if len(loop.entries) != 1:
        return Missed("MultipleEntries", f"the loop at line {loc.line} is entered from "
                      f"{len(loop.entries)} places", loc, entries=len(loop.entries))
    if len(loop.latches) != 1:
        return Missed("MultipleLatches", f"the loop at line {loc.line} has "
                      f"{len(loop.latches)} back edges (a 'continue'?)", loc,
                      latches=len(loop.latches))
    return None


def match_range_loop(blocks, forest: LoopForest, loop: Loop,
                     du: DefUse) -> RangeLoop | Missed:
    """The loop as a ``for index in range(...)`` loop in numba's simple form,
    or why it is not one.  Read-only."""
    header = blocks[loop.header]
    loc = header.loc
    why = _single_entry_and_latch(blocks, loop) or _leaves_early(blocks, loop, loop.header)
    if why is not None:
        return why
    term = header.terminator
    if len(loop.exits) != 1 or not isinstance(term, ir.Branch) \
            or term.falsebr not in loop.exits:
        return Missed("HeaderNotTest", f"the header of the loop at line {loc.line} "
                      "does not end in the test of its iterator", loc)
    (preheader,), (exit_,), (latch,) = loop.entries, loop.exits, loop.latches
    stmts = {s.target.name: s for s in header.body[:-1] if isinstance(s, ir.Assign)}
    nxt = [s for s in stmts.values() if isinstance(s.value, ir.Expr) and s.value.op == "iternext"]
    if len(nxt) != 1:
        return Missed("NotForLoop", f"the loop at line {loc.line} advances "
                      f"{len(nxt)} iterators in its header, not one", loc,
                      iterators=len(nxt))
    iterator = nxt[0].value.value
    pre = blocks[preheader]
    pre_defs = {s.target.name: s for s in pre.body if isinstance(s, ir.Assign)}
    copy = pre_defs.get(iterator.name)
    getiter = (pre_defs.get(copy.value.name)
               if copy is not None and isinstance(copy.value, ir.Var) else None)
    if getiter is None or not (isinstance(getiter.value, ir.Expr)
                               and getiter.value.op == "getiter"):
        return Missed("IteratorNotLocal", f"the iterator of the loop at line {loc.line} "
                      "is not made in the block that enters it", loc)
    call = pre_defs.get(getiter.value.value.name)
    if call is None or not (isinstance(call.value, ir.Expr) and call.value.op == "call"
                            and du.global_value(call.value.func) is range):
        iterable = getiter.value.value.name
        return Missed("NotRange", f"the loop at line {loc.line} iterates over "
                      f"'{iterable}', not over range(...)", loc, iterable=iterable)
    if call.value.kws or call.value.vararg is not None \
            or not 1 <= len(call.value.args) <= 3:
        return Missed("RangeArguments", f"range() at line {call.loc.line} is called "
                      "with keywords, *args or a wrong number of arguments", call.loc)
    entry = blocks[term.truebr]
    first = entry.body[0]
    if not (isinstance(first, ir.Assign) and isinstance(first.value, ir.Var)
            and first.value.name in stmts):
        return Missed("NoIndexVariable", f"the loop at line {loc.line} does not start "
                      "by assigning its iterator's value to a variable", loc)
    index = first.target.name
    # The index is assigned only from the iterator (a fused loop assigns it
    # once per loop fused into it): 'i = i + 1' in the body would make
    # 'tmp[i]' another element than the iteration's.
    for site in du.defs_in(index, loop.body):
        if not copies(site.stmt, first.value.name):
            line = site.stmt.loc.line
            return Missed("IndexReassigned", f"the loop variable '{index}' is also "
                          f"assigned at line {line}", site.stmt.loc, index=index, line=line)
    # The iterator's value may only be copied into index variables (fusion
    # redirects those copies to the other loop's iterator).
    for use in du.uses.get(first.value.name, ()):
        if use.label in loop.body and use.label != loop.header \
                and not copies(use.stmt, first.value.name):
            line = use.stmt.loc.line
            return Missed("IteratorValueUsed", f"the iterator's value of the loop at "
                          f"line {loc.line} is used at line {line} other than as "
                          f"'{index}'", use.stmt.loc, line=line)
    args = list(call.value.args)
    keys = [value_key(du, a) for a in args]
    if len(args) == 1:
        trip = (("const", 0), keys[0], ("const", 1))
    elif len(args) == 2:
        trip = (keys[0], keys[1], ("const", 1))
    else:
        trip = tuple(keys)
    if any(k is None for k in trip):
        trip = None
    text = "range(" + ", ".join(a.name for a in args) + ")"
    return RangeLoop(loop, preheader, exit_, term.truebr, latch, index,
                     first.value, (id(call), id(getiter), id(copy)), trip, text, call.loc)


def match_while_loop(func_ir, forest: LoopForest, loop: Loop, du: DefUse,
                     facts: TypeFacts) -> RangeLoop | Missed:
    """The loop as a counted while loop, or why it is not one.  Read-only.

    That is a rotated ``while i < stop`` loop whose latch tests nothing else
    (the while-to-range pass removes invariant tests): it is entered through a
    chain of guards that starts with ``i < stop`` (after ``i``'s initial value)
    and may go on with the invariant tests the latch no longer repeats, each
    leaving to the loop's exit; the counter steps up by a positive constant in
    the block that tests it, after every other use of it in the iteration; no
    other edge leaves the loop.  So every statement of an iteration but the
    increment sees the counter's value at the start of the iteration, as a
    range loop's body sees its index."""
    blocks = func_ir.blocks
    loc = blocks[loop.header].loc
    if is_for_loop(blocks, loop):
        return Missed("NotWhileLoop", f"the loop at line {loc.line} is a 'for' loop",
                      loc)
    cand = match_counted_while(func_ir, forest, loop, du, facts)
    if isinstance(cand, Missed):
        return Missed("WhileNotCounted", f"the while loop at line {loc.line} is not "
                      f"counted: {cand.message}", cand.loc or loc, reason=cand.key)
    counter = cand.counter
    test = counter.test
    if cand.removable:
        tests = ", ".join(f"'{t.describe()}'" for t in cand.removable)
        return Missed("InvariantTestsLeft", f"the while loop at line {test.loc.line} still "
                      f"tests {tests} on every iteration", test.loc, tests=tests)
    if counter.op is not operator.lt:
        return Missed("CounterTestForm", f"the while loop's test is "
                      f"'{counter.describe()}', not '{counter.name} < bound'", test.loc,
                      test=counter.describe())
    if not isinstance(counter.step, int) or counter.step <= 0:
        return Missed("CounterStep", f"'{counter.name}' steps by {counter.step}, not by "
                      "a positive integer constant", counter.increment.loc,
                      counter=counter.name, step=counter.step)
    why = _leaves_early(blocks, loop, test.label)
    if why is not None:
        return why
    (exit_,), (latch,) = loop.exits, loop.latches
    # Only plain jumps between the test and the back edge.
    cur = test.stay
    while cur != loop.header:
        if len(blocks[cur].body) != 1 or not isinstance(blocks[cur].terminator, ir.Jump):
            line = blocks[cur].loc.line
            return Missed("CodeAfterTest", f"the while loop runs code after its test "
                          f"'{counter.describe()}' (line {line})", blocks[cur].loc,
                          line=line)
        cur = blocks[cur].terminator.target
    # The increment is the last statement of the iteration but the test.
    test_body = blocks[test.label].body
    at = [k for k, s in enumerate(test_body) if s is counter.increment]
    if not at or any(k not in test.slice for k in range(at[0] + 1, len(test_body) - 1)):
        line = counter.increment.loc.line
        return Missed("CounterUpdateNotLast", f"'{counter.name}' is updated at line "
                      f"{line}, not after the rest of the iteration", counter.increment.loc,
                      counter=counter.name, line=line)
    # The entry guards, nearest the loop first, up to the counter's.
    chain = []
    for g in entry_guards(forest, loop, du):
        chain.append(g.test)
        if g.test.key == test.key and g.test.stay_on == test.stay_on:
            break
    else:
        return Missed("NoCounterGuard", f"the while loop is not entered through its "
                      f"test '{counter.describe()}'", test.loc, test=counter.describe())
    head = chain[-1].label
    for g in chain:
        if g.leave != exit_:
            return Missed("GuardLeavesElsewhere", f"the test '{g.describe()}' before "
                          "the while loop leaves to another block than the loop does",
                          g.loc, test=g.describe())
    # Below the counter's guard, the chain holds nothing but tests.
    guard_of = {g.label: g for g in chain}
    cur = next(iter(loop.entries))
    while cur != head:
        block = blocks[cur]
        extra = len(block.body) - 1 - (len(guard_of[cur].slice) if cur in guard_of else 0)
        if extra or len(forest.predecessors(cur)) != 1:
            return Missed("CodeBetweenGuards", "code runs, or other paths join, between "
                          f"the test '{counter.describe()}' and the while loop",
                          block.loc, test=counter.describe())
        cur = forest.predecessors(cur)[0]
    pre = blocks[head]
    guard = chain[-1]
    inits = [k for k, s in enumerate(pre.body)
             if isinstance(s, ir.Assign) and s.target.name == counter.name]
    if not inits or inits[-1] > min(guard.slice, default=len(pre.body)):
        return Missed("CounterNotInitialised", f"'{counter.name}' is not assigned in the "
                      f"block that first tests '{counter.describe()}'", guard.loc,
                      counter=counter.name)
    init = pre.body[inits[-1]]
    start = (value_key(du, init.value) if isinstance(init.value, ir.Var)
             else ("const", init.value.value)
             if isinstance(init.value, ir.Const) and isinstance(init.value.value, int)
             and not isinstance(init.value.value, bool) else None)
    bound = counter.bound
    stop = (value_key(du, ir.Var(pre.scope, bound.name, test.loc)) if bound.name
            else ("const", bound.const))
    trip = (start, stop, ("const", counter.step))
    if any(k is None for k in trip):
        trip = None
    setup = (id(init),) + tuple(id(pre.body[k]) for k in sorted(guard.slice))
    step_text = "" if counter.step == 1 else f" step {counter.step}"
    text = f"while {counter.name} < {bound}{step_text}"
    return RangeLoop(loop, head, exit_, loop.header, latch, counter.name, None,
                     setup, trip, text, test.loc, kind="while", test_block=test.label,
                     control=frozenset(id(test_body[k]) for k in test.slice),
                     entry=next(iter(loop.entries)), guards=tuple(chain[:-1]))


def copies(stmt, name: str) -> bool:
    return isinstance(stmt, ir.Assign) and isinstance(stmt.value, ir.Var) \
        and stmt.value.name == name


def trip_defined_before(du: DefUse, forest: LoopForest, key, label: int) -> bool:
    """Whether every name a trip-count key rests on is assigned (once) in a
    block that dominates ``label``: then both loops see the same value."""
    if not isinstance(key, tuple):
        return True
    if len(key) == 2 and key[0] in ("name", "len") and isinstance(key[1], str):
        sites = du.defs.get(key[1], ())
        return len(sites) == 1 and forest.dominates(sites[0].label, label)
    return all(trip_defined_before(du, forest, part, label) for part in key)
