"""Fuse consecutive counted loops, and contract the temporary between them.

Users write the two-loop form by hand::

    tmp = np.empty(n)
    for i in range(n):
        tmp[i] = a[i] * b[i] + c[i]
    s = 0.0
    for i in range(n):
        s += tmp[i]

which stock numba runs as two passes over memory.  This pass makes one loop of
two adjacent ``for ... in range(...)`` loops, or of two adjacent counted
``while`` loops as the while-to-range pass leaves them (see
:func:`~numba_loopopt.analysis.counted.match_while_loop`), and when the first one's array is
a local temporary read only at the same index and dead afterwards, the array,
its allocation and its stores disappear.  Chains of loops fuse pairwise.

Legal when, all checked before any edit (else a missed remark):

* both loops are ``for i in range(...)`` loops with no ``break``/``return``,
  the second's set-up directly follows the first's exit, and their ranges are
  provably equal: the same constant or single-assignment names, ``len(a)``,
  ``a.shape[0]``, or the length of a fresh ``np.empty(n)``;
* every array written in either loop is allocated by the function itself
  (``np.empty``/``zeros``/...), is used before the loops only by that
  allocation, and is accessed in the loops only at the loop index; so no
  element is read or written in a different iteration of the other loop, and
  no other name can alias it (arrays only read may be read anywhere);
* neither loop reads or writes a scalar the other one assigns (the index
  excepted);
* each loop contains only constructs on a whitelist
  (:func:`~numba_loopopt.analysis.effects.body_effects`,
  deny by default): stores, operators, indexing and whitelisted calls on
  plain values, ``print`` of scalars -- no method call, no other call, no
  in-place operator on anything but a number, no ufunc with an output
  argument (a write of the whole array);
* what the caller sees when an exception comes stays the same
  (:func:`_exception_order`): not both loops may raise (or not finish), not
  both print, the first does not print if the second may raise, nor the
  second if the first may;
* the statements between the loops are whitelisted expressions, neither read
  what the first loop computes nor assign what it uses, and do not raise after
  a first loop that may raise or prints: they move ahead of the fused loop.

Contraction additionally needs the first loop to store the array exactly once
per iteration, at the index, with a value of the array's (numeric) dtype,
never read it, and nothing after the loops to use it.  Its allocation becomes
:func:`~numba_loopopt.runtime.check_shape`, which raises what the allocation
raised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba.core import ir, types
from numba.core.compiler_machinery import register_pass
from numba.core.errors import NumbaError
from numba.np.numpy_support import as_dtype

from .. import irbuild
from ..analysis.counted import (
    RangeLoop,
    alloc_length_key,
    allocator_name,
    copies,
    match_counted_loop,
    trip_defined_before,
)
from ..analysis.defuse import DefUse
from ..analysis.effects import (
    Denied,
    Effects,
    body_effects,
    boundscheck_on,
    expr_effect,
    has_try_block,
    is_fresh_allocation,
    read_only_array,
)
from ..analysis.loops import LoopForest, neighbours
from ..analysis.manager import TYPES, Analyses
from ..analysis.typing import TypeFacts
from ..passbase import LoopOptPass
from ..remarks import Missed, RemarkEmitter
from ..runtime import check_shape, opaque

PASS = "fuse-loops"

def _guards_agree(func_ir, du: DefUse, facts: TypeFacts, flags, l1: RangeLoop,
                  l2: RangeLoop, changed: set[str]) -> Missed | None:
    """Whether the invariant guards of two counted while loops surely have the
    same outcome: the same tests, on values that neither the first loop nor
    the code up to the second's guards changes.  Then the fused loop needs the
    second loop's guards only."""
    loc = l2.loc
    keys1 = {(g.key, g.stay_on) for g in l1.guards}
    keys2 = {(g.key, g.stay_on) for g in l2.guards}
    if keys1 != keys2:
        shown = lambda gs: ", ".join(f"'{g.describe()}'" for g in gs) or "none"  # noqa: E731
        return Missed("DifferentEntryTests", f"the loops are entered through different "
                      f"tests ({shown(l1.guards)}; {shown(l2.guards)}), so they may run "
                      "a different number of times", loc, first=shown(l1.guards),
                      second=shown(l2.guards))
    for g in l1.guards:
        why = Missed("EntryTestMayChange", f"the test '{g.describe()}' guarding both "
                     "loops may change between them", g.loc, test=g.describe())
        if g.kind not in ("item", "index", "scalar", "compare", "constant") or (
                g.kind == "index" and boundscheck_on(flags)):
            return why
        if g.names() & changed:
            return why
        if g.kind in ("item", "index") and read_only_array(
                func_ir, du, g.subject, facts.typemap, g.loc) is not None:
            return why
    return None


@dataclass(frozen=True)
class Contraction:
    array: str
    store: ir.Stmt
    reads: tuple
    allocation: ir.Assign
    labels: frozenset[int]
    """The blocks that hold the store, the reads and the allocation."""
    dtype: np.dtype | None = None
    """The array's dtype, which the shape check left of the allocation needs."""


@dataclass(frozen=True)
class Plan:
    first: RangeLoop
    second: RangeLoop
    contractions: tuple[Contraction, ...]
    kept: tuple[tuple[str, str], ...]
    """Arrays read by the second loop that stay, with why."""


def refusal(denied: Denied) -> Missed:
    """The missed remark of a construct off the effects whitelist."""
    return Missed("UfuncOutput" if denied.ufunc_output else "SideEffects",
                  denied.message, denied.loc)


def _line(stmt) -> int:
    return stmt.loc.line


def match(func_ir, forest: LoopForest, du: DefUse, facts: TypeFacts, flags,
          l1: RangeLoop, l2: RangeLoop) -> Plan | Missed:
    """The plan to fuse ``l1`` and ``l2`` (and which arrays then contract), or
    why they cannot be fused.  Read-only."""
    blocks = func_ir.blocks
    loc = l2.loc
    if l1.kind != l2.kind:
        return Missed("LoopForms", f"one loop is a 'for' loop and the other a counted "
                      f"'while' loop ({l1.range_text}, {l2.range_text}); only loops of "
                      "one form are fused", loc, first=l1.range_text, second=l2.range_text)
    if l1.trip is None or l2.trip is None or l1.trip != l2.trip \
            or not trip_defined_before(du, forest, l1.trip, l1.preheader):
        return Missed("DifferentTripCount", f"the loops run {l1.range_text} and "
                      f"{l2.range_text}, which are not provably the same", loc,
                      first=l1.range_text, second=l2.range_text)
    step = l1.trip[2]
    if not (step[0] == "const" and step[1] != 0):
        # range(a, b, k) raises for k == 0: which loop raises first, and how,
        # depends on code the fusion would reorder.
        return Missed("StepNotConstant", f"the loops step by a variable ({l1.range_text}), "
                      "and range() raises for a zero step", loc, range=l1.range_text)
    only_from = ({l1.loop.header} if l1.kind == "range" else
                 {g.label for g in l1.guards} | {l1.preheader, l1.test_block})
    if sorted(forest.predecessors(l1.exit)) != sorted(only_from):
        return Missed("OtherPathToSecondLoop", "the second loop can also be reached "
                      "without running the first", loc)
    e1, e2 = (body_effects(func_ir, rl.body, du, facts, flags, forest, rl.loop.header,
                           rl.control) for rl in (l1, l2))
    for eff in (e1, e2):
        if eff.impure is not None:
            return refusal(eff.impure)
    why = _exception_order(e1, e2, loc)
    if why is not None:
        return why
    if l1.kind == "while":
        if l1.index == l2.index:
            return Missed("SameCounter", f"both loops count with '{l1.index}'", loc,
                          counter=l1.index)
        changed = e1.assigned | {s.target.name for label in
                                 {l1.exit} | {g.label for g in l2.guards}
                                 for s in blocks[label].body if isinstance(s, ir.Assign)}
        why = _guards_agree(func_ir, du, facts, flags, l1, l2, changed)
        if why is not None:
            return why
    # Scalars: neither loop may see what the other assigns (the index aside).
    shared_index = {l1.index} if l1.index == l2.index else set()
    for name in sorted((e1.assigned - shared_index) & (e2.used | e2.assigned)):
        return Missed("ScalarDependence", f"'{name}' is assigned in the first loop and "
                      "used in the second", loc, name=name, assigned_in="first")
    for name in sorted((e2.assigned - shared_index) & e1.used):
        return Missed("ScalarDependence", f"'{name}' is assigned in the second loop and "
                      "used in the first", loc, name=name, assigned_in="second")
    # Arrays written in either loop: fresh, accessed only at the loop index.
    written = {w[0] for w in e1.writes + e2.writes}
    index_of = {1: l1.index, 2: l2.index}
    at_index = set()
    for which, eff in ((1, e1), (2, e2)):
        for array, index, stmt, _ in eff.reads + eff.writes:
            if array in written and index != index_of[which]:
                return Missed("ShiftedAccess", f"'{array}' is accessed at another "
                              f"index than the loop's at line {_line(stmt)}", stmt.loc,
                              array=array, line=_line(stmt))
            if array in written and (isinstance(stmt, ir.SetItem)
                                     or stmt.value.value.name == array):
                at_index.add(id(stmt))
    for array in sorted(written):
        for use in du.uses.get(array, ()):
            if use.label in l1.body | l2.body and id(use.stmt) not in at_index:
                return Missed("WholeArrayUse", f"'{array}' is used whole (not as "
                              f"'{array}[index]') at line {use.stmt.loc.line}, so another "
                              "iteration's elements may be read", use.stmt.loc,
                              array=array, line=use.stmt.loc.line)
    # Code between the loops moves ahead of the fused loop.
    between = [s for s in blocks[l1.exit].body[:-1] if id(s) not in l2.setup]
    for stmt in between:
        why = _movable(func_ir, du, facts, stmt, e1, written, flags)
        if why is not None:
            return why
    loops_blocks = l1.body | l2.body
    after = _After(forest, l1, l2)
    for array in sorted(written):
        why = _fresh_and_unaliased(func_ir, du, facts, array, loops_blocks, after)
        if why is not None:
            return why
    return _plan_contractions(du, facts, forest, l1, l2, e1, e2, after, flags)


def _exception_order(e1: Effects, e2: Effects, loc) -> Missed | None:
    """Whether fusing keeps what the caller sees when a loop raises (or never
    finishes).  The fused loop runs iteration k of the first loop, then
    iteration k of the second; stock numba runs all of the first loop first.
    If the second loop raises at iteration k, stock numba has run the whole
    first loop, the fused loop only its iterations 0..k; if the first raises
    at k, stock numba has run none of the second, the fused loop its
    iterations 0..k-1.  Both loops' stores are into arrays the function
    allocates and nothing sees them after an exception (a try/except is
    refused for the whole function), so the difference shows only through
    what the caller sees at once: a ``print``.  Hence the rules:

    * not both loops may raise (which exception comes first);
    * not both print (their lines would interleave);
    * the first loop does not print if the second may raise;
    * the second loop does not print if the first may raise."""
    def raises(eff) -> str:
        return f"may raise ({eff.raises[0]}, line {eff.raises[1].line})"

    def shows(eff) -> str:
        return f"{eff.visible[0]} (line {eff.visible[1].line})"

    if e1.may_raise and e2.may_raise:
        return Missed("BothMayRaise", f"both loops may raise (the first {raises(e1)}, "
                      f"the second {raises(e2)}), so fusing them could change which "
                      "exception comes first", loc, first=e1.raises[0], second=e2.raises[0])
    if e1.visible and e2.visible:
        return Missed("BothHaveEffects", f"both loops have effects the caller sees "
                      f"(the first {shows(e1)}, the second {shows(e2)}): fused, they "
                      "would interleave", loc, first=e1.visible[1].line,
                      second=e2.visible[1].line)
    if e1.visible and e2.may_raise:
        return Missed("EffectsBeforeRaise", f"the first loop {shows(e1)} and the second "
                      f"{raises(e2)}: stock numba finishes the first loop's effects "
                      "before the exception, the fused loop would not", loc,
                      effect=e1.visible[1].line, raises=e2.raises[0])
    if e2.visible and e1.may_raise:
        return Missed("RaiseBeforeEffects", f"the first loop {raises(e1)} and the second "
                      f"{shows(e2)}: fused, some of the second loop's effects would come "
                      "before an exception that stock numba raises without them", loc,
                      raises=e1.raises[0], effect=e2.visible[1].line)
    return None


def _footprint(rl: RangeLoop) -> set[int]:
    """Every block :func:`match` and :func:`rewrite` look at for one loop: its
    body, the blocks that enter it (a while loop's guards) and its exit."""
    return (set(rl.loop.body) | rl.loop.entries | {rl.preheader, rl.exit}
            | {g.label for g in rl.guards}
            | ({rl.test_block, rl.entry} - {None}))


class _After:
    """The blocks that run only after both loops: dominated by the second's
    exit and not leading back to the first (through an enclosing loop).
    Membership is tested for a few uses of written arrays, so the set of
    blocks that reach the first loop is found only when needed."""

    def __init__(self, forest: LoopForest, l1: RangeLoop, l2: RangeLoop):
        self._forest, self._l1, self._l2 = forest, l1, l2
        self._reaching = None

    def __contains__(self, label: int) -> bool:
        if not self._forest.dominates(self._l2.exit, label):
            return False
        if self._reaching is None:
            self._reaching = _reaching(self._forest, self._l1.preheader)
        return label not in self._reaching


def _reaching(forest: LoopForest, label: int) -> set[int]:
    """Blocks from which ``label`` can be reached (an enclosing loop's tail)."""
    found, work = set(), [label]
    while work:
        for pred in forest.predecessors(work.pop()):
            if pred not in found:
                found.add(pred)
                work.append(pred)
    return found


def _fresh_and_unaliased(func_ir, du, facts, array, loop_blocks, after) -> Missed | None:
    sites = du.defs.get(array, ())
    if len(sites) != 1 or not is_fresh_allocation(func_ir, sites[0].stmt.value) \
            or not isinstance(facts.of(array), types.Array):
        loc = sites[0].stmt.loc if sites else None
        return Missed("WrittenArrayNotLocal", f"'{array}' is written in a loop but is "
                      "not an array this function allocates, so another name may share "
                      "its memory", loc, array=array)
    for use in du.uses.get(array, ()):
        if use.label in loop_blocks or use.label in after:
            continue
        value = use.stmt.value if isinstance(use.stmt, ir.Assign) else None
        if isinstance(value, ir.Expr) and value.op == "getattr" and value.attr in (
                "shape", "size", "ndim"):
            continue
        if isinstance(value, ir.Expr) and value.op == "call" and value.args \
                and value.args[0].name == array and du.global_value(value.func) is len:
            continue
        return Missed("WrittenArrayMayAlias", f"'{array}' is used at line "
                      f"{use.stmt.loc.line} before the loops finish, so it may be "
                      "aliased or observed", use.stmt.loc, array=array,
                      line=use.stmt.loc.line)
    return None


def _movable(func_ir, du, facts, stmt, e1: Effects, written, flags) -> Missed | None:
    """Whether a statement between the loops can run before the first loop:
    an assignment with no effect, independent of the first loop, and, if it
    may raise, after a first loop that neither may raise (which exception
    comes first) nor prints (stock numba prints all of it before the
    exception)."""
    line = stmt.loc.line
    cannot = f"the statement at line {line} between the loops cannot move ahead of the first loop"

    def has_effects(what: str) -> Missed:
        return Missed("InterveningCodeHasEffects", f"{cannot}: {what}", stmt.loc, line=line)

    if not isinstance(stmt, ir.Assign):
        return has_effects("it is not an assignment")
    value = stmt.value
    raises = None
    if isinstance(value, ir.Expr):
        if value.op == "call" and (is_fresh_allocation(func_ir, value)
                                   or du.global_value(value.func) is check_shape):
            # np.empty(n) raises for n < 0, or a too big n, as does the check a
            # contracted allocation left.
            raises = "an allocation"
        else:
            refused, raises = expr_effect(func_ir, du, facts, flags, value, stmt)
            if refused is not None:
                return has_effects(refused.message)
    elif not isinstance(value, (ir.Var, ir.Const, ir.Global, ir.FreeVar, ir.Arg)):
        return has_effects(f"it assigns a {type(value).__name__}")
    if raises is not None and (e1.may_raise or e1.visible):
        first = (f"may raise ({e1.raises[0]}, line {e1.raises[1].line})" if e1.may_raise
                 else f"{e1.visible[0]} (line {e1.visible[1].line})")
        return Missed("InterveningCodeMayRaise", f"the statement at line {line} "
                      f"between the loops may raise ({raises}) and the first loop "
                      f"{first}: it cannot move ahead of the first loop", stmt.loc,
                      line=line, raises=raises)
    used = ({value.name} if isinstance(value, ir.Var) else
            {v.name for v in value.list_vars()} if isinstance(value, ir.Expr)
            else set())
    if _reads_only_shape(du, value):
        used -= written  # an array's shape does not change in the loops
    read = sorted(used & (e1.assigned | written))
    if read:
        return Missed("InterveningCodeDependsOnLoop", f"{cannot}: it reads '{read[0]}', "
                      "which the first loop assigns or writes", stmt.loc, line=line,
                      name=read[0])
    target = stmt.target.name
    if target in (e1.used | e1.assigned):
        return Missed("InterveningCodeDependsOnLoop", f"{cannot}: it assigns '{target}', "
                      "which the first loop uses or assigns", stmt.loc, line=line,
                      name=target)
    return None


def _reads_only_shape(du: DefUse, value) -> bool:
    if isinstance(value, ir.Expr) and value.op == "getattr":
        return value.attr in ("shape", "size", "ndim")
    return (isinstance(value, ir.Expr) and value.op == "call" and len(value.args) == 1
            and du.global_value(value.func) is len)


def _plan_contractions(du, facts, forest, l1, l2, e1, e2, after, flags) -> Plan:
    contractions, kept = [], []
    written1 = {w[0] for w in e1.writes}
    read2 = {r[0] for r in e2.reads}
    for array in sorted(written1 & read2):
        stores = [w for w in e1.writes if w[0] == array]
        reason = None
        ty = facts.of(array)
        if len(stores) != 1 or not isinstance(stores[0][2], ir.SetItem):
            reason = "it is stored more than once per iteration"
        elif not forest.dominates(stores[0][3], l1.latch):
            reason = "its store does not run on every iteration"
        elif any(r[0] == array for r in e1.reads) or any(w[0] == array for w in e2.writes):
            reason = "the loops also read or write it otherwise"
        elif not (isinstance(ty, types.Array) and ty.ndim == 1
                  and facts.of(stores[0][2].value.name) == ty.dtype):
            reason = "the stored value's type differs from the array's dtype"
        elif not _integer_shape(du, facts, array):
            reason = "its allocation's shape is not a plain integer"
        elif (dtype := _numpy_dtype(ty.dtype)) is None:
            reason = f"its dtype {ty.dtype} is not a number"
        elif boundscheck_on(flags) and l1.trip != (
                ("const", 0), alloc_length_key(du, array), ("const", 1)):
            # Bounds-checked stores that go away must not have been able to raise.
            reason = "bounds are checked and its length is not provably the trip count"
        else:
            outside = [u for u in du.uses.get(array, ())
                       if u.label not in (l1.body | l2.body)]
            if outside:
                where = "after the loops" if outside[0].label in after else "elsewhere"
                reason = f"it is used {where} (line {outside[0].stmt.loc.line})"
        if reason is not None:
            kept.append((array, reason))
            continue
        contractions.append(Contraction(
            array, stores[0][2], tuple(r[2] for r in e2.reads if r[0] == array),
            du.defs[array][0].stmt,
            l1.loop.body | l2.loop.body | {du.defs[array][0].label}, dtype))
    return Plan(l1, l2, tuple(contractions), tuple(kept))


def _numpy_dtype(ty) -> np.dtype | None:
    """The numpy dtype of a number or boolean type, which the shape check
    left of an allocation allocates with when it must (see check_shape)."""
    if not isinstance(ty, (types.Number, types.Boolean)):
        return None
    try:
        return as_dtype(ty)
    except (NotImplementedError, NumbaError):  # NumbaNotImplementedError
        return None


def _integer_shape(du, facts, array) -> bool:
    alloc = du.single_def(array)
    if not (isinstance(alloc, ir.Expr) and alloc.op == "call" and alloc.args
            and allocator_name(du, alloc) in ("empty", "zeros", "ones", "full")):
        return False
    ty = facts.of(alloc.args[0].name)
    return isinstance(ty, types.Integer) or (
        isinstance(ty, types.UniTuple) and isinstance(ty.dtype, types.Integer))


def rewrite(func_ir, forest: LoopForest, plan: Plan, fastmath=False) -> None:
    """Make one loop of the plan's two; all checks have passed.  Unless
    ``fastmath`` allows reassociation, a contracted value passes through
    :func:`~numba_loopopt.runtime.opaque`, as it passed through memory.
    ``forest`` is the analysis the plan was made with."""
    if plan.first.kind == "while":
        _fuse_while(func_ir, plan)
    else:
        _fuse_range(func_ir, plan)
    _join_entry(func_ir, forest, plan.first)
    for c in plan.contractions:
        _contract(func_ir, c, fence=not fastmath)


def _join_entry(func_ir, forest: LoopForest, l1: RangeLoop) -> None:
    """Merge the first loop's exit block (the code between the loops and the
    second loop's set-up) into the first loop's preheader, which now jumps
    straight to it, so the fused loop's preheader is again the exit of the
    loop before it: a later round can fuse that pair (a chain fused from both
    ends meets in the middle).  A while loop's own entry guards are
    unreachable now and go first, so the exit block has one predecessor."""
    blocks = func_ir.blocks
    if l1.kind == "while":
        cur = l1.entry
        while cur != l1.preheader:
            (pred,) = forest.predecessors(cur)
            del blocks[cur]
            cur = pred
    pre, exit_ = blocks[l1.preheader], blocks[l1.exit]
    assert isinstance(pre.terminator, ir.Jump) and pre.terminator.target == l1.exit
    blocks[l1.preheader] = irbuild.with_body(pre, pre.body[:-1] + exit_.body)
    del blocks[l1.exit]


def _fuse_while(func_ir, plan: Plan) -> None:
    """Two counted while loops with equal (start, stop, step), entered through
    the same invariant tests, run in lockstep: the fused loop, entered through
    the second loop's guards, runs the first body, then the second, and tests
    the second loop's counter.  The first loop's counter still counts, so it
    ends with the value it had after the first loop."""
    blocks = func_ir.blocks
    l1, l2 = plan.first, plan.second
    pre = blocks[l1.preheader]
    blocks[l1.preheader] = irbuild.with_body(pre, pre.body[:-1] + [
        ir.Jump(l1.exit, pre.terminator.loc)])
    into = {l2.loop.header: l1.loop.header}
    for label in (l2.entry, l2.latch):
        block = blocks[label]
        blocks[label] = irbuild.with_body(block, block.body[:-1] + [
            irbuild.retarget(block.terminator, into)])
    test1 = blocks[l1.test_block]
    blocks[l1.test_block] = irbuild.with_body(test1, test1.body[:-1] + [
        ir.Jump(l2.loop.header, test1.terminator.loc)])


def _fuse_range(func_ir, plan: Plan) -> None:
    blocks = func_ir.blocks
    l1, l2 = plan.first, plan.second
    pre = blocks[l1.preheader]
    body = [s for s in pre.body[:-1] if id(s) not in l1.setup]
    blocks[l1.preheader] = irbuild.with_body(pre, body + [ir.Jump(l1.exit, pre.loc)])
    header2 = blocks[l2.loop.header]
    term = header2.terminator
    blocks[l2.loop.header] = irbuild.with_body(header2, header2.body[:-1] + [
        ir.Branch(term.cond, l1.body_entry, term.falsebr, term.loc)])
    # The first loop's index (and, in an already fused loop, the index of each
    # loop fused into it) now comes from the second loop's iterator.
    for label in l1.body:
        block = blocks[label]
        if any(copies(s, l1.next_value.name) for s in block.body):
            blocks[label] = irbuild.with_body(block, [
                ir.Assign(ir.Var(block.scope, l2.next_value.name, s.loc), s.target, s.loc)
                if copies(s, l1.next_value.name) else s for s in block.body])
    latch = blocks[l1.latch]
    blocks[l1.latch] = irbuild.with_body(latch, latch.body[:-1] + [
        ir.Jump(l2.body_entry, latch.terminator.loc)])
    del blocks[l1.loop.header]


def _contract(func_ir, c: Contraction, fence: bool) -> None:
    blocks = func_ir.blocks
    scope = next(iter(blocks.values())).scope
    carried = irbuild.fresh(scope, f"{c.array}_value", c.store.loc)
    stored = [ir.Assign(c.store.value, carried, c.store.loc)]
    if fence:
        # The value went through memory; without that, LLVM may fold its
        # computation into its use ('s + -x' into 's - x'), exact for numbers
        # but not for the sign of a NaN.
        loc = c.store.loc
        fn = irbuild.fresh(scope, "opaque", loc)
        stored = [ir.Assign(ir.Global("opaque", opaque, loc), fn, loc),
                  ir.Assign(ir.Expr.call(fn, (c.store.value,), (), loc), carried, loc)]
    # The allocation goes, but not what it raises: a negative size, a size
    # too big, an allocation that fails (check_shape allocates what is not
    # surely small, and frees it at once).
    loc = c.allocation.loc
    check_fn = irbuild.fresh(scope, "check_shape", loc)
    dtype = irbuild.fresh(scope, "dtype", loc)
    result = irbuild.fresh(scope, "check_shape_result", loc)
    shape = c.allocation.value.args[0]
    replace = {id(c.store): stored,
               id(c.allocation): [
                   ir.Assign(ir.Global("check_shape", check_shape, loc), check_fn, loc),
                   ir.Assign(ir.Global("dtype", c.dtype, loc), dtype, loc),
                   ir.Assign(ir.Expr.call(check_fn, (ir.Var(scope, shape.name, loc), dtype),
                                          (), loc), result, loc)]}
    for read in c.reads:
        replace[id(read)] = ir.Assign(ir.Var(scope, carried.name, read.loc), read.target,
                                      read.loc)
    # The statements are in the blocks of the plan's loops and the
    # allocation's, unless a fusion of this round merged the allocation's
    # block into another one: then look everywhere.
    for labels in (sorted(c.labels & blocks.keys()), list(blocks)):
        for label in labels:
            block = blocks[label]
            if any(id(s) in replace for s in block.body):
                new = []
                for s in block.body:
                    r = replace.pop(id(s), s)
                    new.extend(r if isinstance(r, list) else [r])
                blocks[label] = irbuild.with_body(block, new)
        if not replace:
            return
    raise AssertionError(f"contraction of '{c.array}': statements not found")


@register_pass(mutates_CFG=True, analysis_only=False)
class FuseLoops(LoopOptPass):
    """The loop fusion pass; see the module docstring."""

    pass_name = PASS

    def transform(self, state, options, emit: RemarkEmitter) -> bool:
        func_ir = state.func_ir
        am = Analyses(state)
        if len(am.loops.loops) < 2:
            return False
        if has_try_block(func_ir):
            # A caught exception would expose how far each loop had got.
            emit.missed("TryExcept", None, "the function has try/except, so loops are "
                        "not fused")
            return False
        am.definitions()
        facts = am.types
        changed = False
        refused: set[tuple[int, int]] = set()
        reported: set[int] = set()
        # Rounds: the analyses are taken once per round, and a round fuses
        # every pair whose blocks no earlier fusion of the round has touched.
        # A fusion edits only the blocks of its two loops, of the code that
        # enters them and of a contracted array's allocation (each replaced,
        # never edited in place, keeping the other statements' identity), so
        # for a pair none of whose blocks were replaced the analyses still
        # say what a rebuild would.  A pair next to a fused one waits for
        # the next round (a chain of k loops takes about log2(k) rounds).
        # Rebuilding after every fusion made the pass quadratic in the number
        # of loops.
        while True:
            forest, du = am.loops, am.defuse
            round_start = am.mark()
            for l1, l2 in self._pairs(func_ir, forest, du, facts, refused, emit,
                                      reported):
                if am.changed_since(round_start, labels=_footprint(l1) | _footprint(l2)):
                    continue
                plan = match(func_ir, forest, du, facts, state.flags, l1, l2)
                if isinstance(plan, Missed):
                    refused.add((l1.loop.header, l2.loop.header))
                    emit.missed(plan)
                    continue
                # All analysis has completed; start transforming.  Fusing
                # changes no name's type.
                with am.edit(preserves=TYPES):
                    rewrite(func_ir, forest, plan, fastmath=bool(state.flags.fastmath))
                changed = True
                emit.passed("Fused", l1.loc, f"the loop at line {l1.loc.line} is fused "
                            f"into the loop at line {l2.loc.line} (both {l2.range_text})",
                            first=l1.loc.line, second=l2.loc.line)
                for c in plan.contractions:
                    emit.passed("Contracted", c.store.loc, f"temporary '{c.array}' is "
                                f"gone: its values go straight from line "
                                f"{c.store.loc.line} to its reads", array=c.array)
                for array, reason in plan.kept:
                    emit.analysis("TemporaryKept", l2.loc, f"'{array}' stays an array: "
                                  f"{reason}", array=array)
            if not am.changed_since(round_start):
                break
        if changed:
            irbuild.finish_untyped_edit(func_ir)
        return changed

    @staticmethod
    def _pairs(func_ir, forest, du, facts, refused, emit, reported) -> list:
        """The adjacent pairs of counted loops not refused yet, in order.  A
        loop next to another one that is not counted gets a missed remark
        (once): it is why the two are not fused."""
        loops, missed = {}, {}
        for loop in forest.loops:
            rl = match_counted_loop(func_ir, forest, loop, du, facts)
            if isinstance(rl, Missed):
                missed[loop.header] = rl
            else:
                loops[rl.preheader] = rl
        if missed:
            for header in sorted(missed.keys() & neighbours(forest) - reported):
                reported.add(header)
                emit.missed(missed[header])
        return [(rl, loops[rl.exit]) for rl in loops.values() if rl.exit in loops
                and (rl.loop.header, loops[rl.exit].loop.header) not in refused]

