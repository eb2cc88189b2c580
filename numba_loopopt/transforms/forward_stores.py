"""Forward a value a loop stores into an array to the later iterations that
read it back, instead of a round trip through memory.

A scan keeps its state in an array: ``buf[(i + 1) % L] = f(buf[i % L], ...)``.
After scalar replacement and modulo versioning its step is a few scalar
operations, but each iteration still reads back what the previous one stored.
LLVM cannot keep the value in a register: another array the loop writes might
overlap ``buf``, and nothing tells it otherwise.  The round trip through the
store buffer costs about 4 ns an iteration, more than the step itself (LLVM's
``LoopLoadElimination`` does this for loops whose arrays it can tell apart).

This pass keeps the last stored values in variables.  In a loop with an
integer counter ``i`` incremented by one once an iteration, take a 1-d array
``a`` of scalars that the loop stores into exactly once an iteration,
``a[g(i + s)] = v`` in a block every iteration runs, and loads from before
that store in the same block, ``x = a[g(i + c)]``, with ``g`` the same each
time: the identity, ``% m`` or ``* m`` for a loop-invariant ``m``, or a
constant or loop-invariant index (the same element every iteration, ``s = c
+ 1``).  The load at iteration ``k`` reads the element the store of iteration
``k - d`` wrote, ``d = s - c >= 1``, unless

* fewer than ``d`` iterations have stored (the loop reads memory then);
* a store in between wrote the same element: with ``d >= 2`` the pass checks
  once, before the loop, that ``d`` consecutive indices reach different
  elements (:func:`~numba_loopopt.runtime.distinct_window`);
* something else wrote it: every other array the loop stores into is checked,
  before the loop, not to overlap ``a`` in memory
  (:func:`~numba_loopopt.runtime.disjoint`), and every other statement of the
  loop must be proven to write no memory (a whitelist: operators and numpy's
  functions on scalars, reads, the scalar functions of PyTensor's
  elementwise operations, ...; any other call counts as writing every array).

When all of that holds the load takes the value of a variable holding what
the store stored, converted to the array's type exactly as the store converts
it (:func:`~numba_loopopt.runtime.as_element`); otherwise it reads memory as
before.  The stores all stay, so the array holds the same values during and
after the loop, and nothing that can raise moves: results and exceptions are
those of the original loop.  A loop the pass cannot prove safe is left alone,
with a missed remark for each array it stores into and reads back.
"""

from __future__ import annotations

import builtins
import math
import operator
from dataclasses import dataclass

import numpy as np
from numba.core import ir, types
from numba.core.compiler_machinery import register_pass

from .. import irbuild, runtime, scalar_calls
from ..analysis.counted import match_range_loop
from ..analysis.defuse import DefUse
from ..analysis.effects import LOOP, expr_effect, known_call
from ..analysis.induction import is_for_loop
from ..analysis.loops import Loop, LoopForest
from ..analysis.manager import TYPES, Analyses
from ..analysis.typing import TypeFacts
from ..passbase import LoopOptPass
from ..remarks import Missed, RemarkEmitter

#: Loads further back than this many iterations stay loads (each needs a
#: variable live across the loop).
MAX_DISTANCE = 8

_SCALAR = (types.Number, types.Boolean)


# ---------------------------------------------------------------------------
# Plans
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Index:
    """An index as a function of the counter ``i``: ``g(i + offset)`` where
    ``g`` is ``form`` (``"plain"``, ``"mod"``, ``"mul"``) with ``operand``, or
    the same element every iteration (``form == "fixed"``, ``operand`` the
    constant or the loop-invariant name)."""

    form: str
    offset: int = 0
    operand: object = None

    def same_function(self, other: Index) -> bool:
        return self.form == other.form and self.operand == other.operand

    def render(self, counter: str) -> str:
        if self.form == "fixed":
            return str(self.operand)
        base = counter if self.offset == 0 else f"{counter} {'+' if self.offset > 0 else '-'} " \
            f"{abs(self.offset)}"
        if self.form == "mod":
            return f"({base}) % {self.operand}"
        if self.form == "mul":
            return f"({base}) * {self.operand}"
        return base


@dataclass(frozen=True)
class Load:
    stmt: ir.Assign
    distance: int


@dataclass(frozen=True)
class ArrayPlan:
    """One array's store and the loads it forwards to."""

    array: str
    store: ir.SetItem | ir.StaticSetItem
    value: ir.Var
    index: Index
    loads: tuple[Load, ...]
    others: tuple[str, ...]
    """Other arrays the loop stores into: checked not to overlap this one."""

    @property
    def depth(self) -> int:
        return max(load.distance for load in self.loads)


@dataclass(frozen=True)
class Plan:
    loop: Loop
    block: int
    """The block holding the loads, the store and the counter's increment."""
    counter: str
    arrays: tuple[ArrayPlan, ...]
    loc: ir.Loc


# ---------------------------------------------------------------------------
# Match (read-only)
# ---------------------------------------------------------------------------


def _static_int(index) -> bool:
    return isinstance(index, int) and not isinstance(index, bool)


def _is_store(stmt) -> bool:
    """``a[k] = v`` with an index variable, or with a constant integer."""
    return isinstance(stmt, ir.SetItem) or (isinstance(stmt, ir.StaticSetItem)
                                            and _static_int(stmt.index))


def _is_load(stmt, name: str | None = None) -> bool:
    """``x = a[k]`` with an index variable, or with a constant integer."""
    if not (isinstance(stmt, ir.Assign) and isinstance(stmt.value, ir.Expr)):
        return False
    value = stmt.value
    if value.op == "getitem" or (value.op == "static_getitem" and _static_int(value.index)):
        return name is None or (value.value.name == name and (
            value.op == "static_getitem" or value.index.name != name))
    return False


def _store_index(stmt, local, du, loop, counter) -> Index | None:
    if isinstance(stmt, ir.StaticSetItem):
        return Index("fixed", operand=stmt.index)
    return _index(stmt.index, local, du, loop, counter)


def _load_index(value: ir.Expr, local, du, loop, counter) -> Index | None:
    if value.op == "static_getitem":
        return Index("fixed", operand=value.index)
    return _index(value.index, local, du, loop, counter)


def _value(du: DefUse, loop: Loop, var: ir.Var):
    """What ``var`` is assigned: its one assignment in the loop, or, with none
    there, its one assignment in the function (a loop copied by versioning
    repeats its temporaries' names in the copy: numba's own lookups, which
    want one assignment in the function, fail there)."""
    sites = du.defs_in(var.name, loop.body)
    if len(sites) == 1:
        return sites[0].stmt.value
    return du.single_def(var.name) if not sites else None


def _int_const(du: DefUse, loop: Loop, var: ir.Var) -> int | None:
    value = _value(du, loop, var)
    if isinstance(value, ir.Const) and isinstance(value.value, int) \
            and not isinstance(value.value, bool):
        return value.value
    return None


def _counter(block: ir.Block, du: DefUse, loop: Loop) -> tuple[str, int] | None:
    """``(i, position)`` of the block's ``i = i + 1`` (or ``i += 1``), when it
    is the only assignment of ``i`` in the loop."""
    for pos, stmt in enumerate(block.body):
        if not (isinstance(stmt, ir.Assign) and isinstance(stmt.value, ir.Var)):
            continue
        name = stmt.target.name
        step = _value(du, loop, stmt.value)
        if not (isinstance(step, ir.Expr) and step.op in ("binop", "inplace_binop")
                and step.fn in (operator.add, operator.iadd)
                and isinstance(step.lhs, ir.Var) and step.lhs.name == name
                and _int_const(du, loop, step.rhs) == 1):
            continue
        if len(du.defs_in(name, loop.body)) == 1:
            return name, pos
    return None


class _Before:
    """The block's assignments before statement ``upto``, by name (what
    :func:`_index` follows); the block is scanned once, not per statement."""

    def __init__(self, assigned: dict[str, tuple[int, ir.Assign]], upto: int):
        self._assigned, self._upto = assigned, upto

    def get(self, name: str) -> ir.Assign | None:
        found = self._assigned.get(name)
        return found[1] if found is not None and found[0] < self._upto else None


def _assignments(block: ir.Block) -> dict[str, tuple[int, ir.Assign]]:
    """Each name's last assignment in the block, with its position.  A name
    :func:`_index` follows is assigned once in the loop, so "the last before
    a statement" and "the one, if before it" agree."""
    return {s.target.name: (pos, s) for pos, s in enumerate(block.body)
            if isinstance(s, ir.Assign)}


def _index(var: ir.Var, local: _Before, du: DefUse, loop: Loop, counter: str,
           depth: int = 0) -> Index | None:
    """``var`` as an :class:`Index` of ``counter``, from definitions earlier
    in the block (the counter itself is incremented after them)."""
    if depth > 6:
        return None
    name = var.name
    if name == counter:
        return Index("plain", 0)
    if not du.defs_in(name, loop.body):
        value = _int_const(du, loop, var)
        return Index("fixed", operand=name if value is None else value)
    stmt = local.get(name)
    if stmt is None or len(du.defs_in(name, loop.body)) != 1:
        return None
    value = stmt.value
    if isinstance(value, ir.Var):
        return _index(value, local, du, loop, counter, depth + 1)
    if not (isinstance(value, ir.Expr) and value.op == "binop"):
        return None
    lhs, rhs = value.lhs, value.rhs
    if value.fn in (operator.add, operator.sub):
        base = _index(lhs, local, du, loop, counter, depth + 1)
        k = _int_const(du, loop, rhs)
        if base is None or base.form != "plain" or k is None:
            return None
        return Index("plain", base.offset + (k if value.fn is operator.add else -k))
    if value.fn in (operator.mod, operator.mul):
        base = _index(lhs, local, du, loop, counter, depth + 1)
        if base is None or base.form != "plain":
            return None
        operand = _int_const(du, loop, rhs)
        if operand is None:
            if du.defs_in(rhs.name, loop.body):
                return None
            operand = rhs.name
        return Index("mod" if value.fn is operator.mod else "mul", base.offset, operand)
    return None


def _harmless_function(fn) -> bool:
    """Whether calling ``fn`` on scalars writes no memory: the runtime's
    fences, the scalar functions integrations declared
    (:mod:`numba_loopopt.scalar_calls`), numpy's scalar types, and the
    functions of numpy, ``math``
    and the builtins that :data:`~numba_loopopt.analysis.effects.CALLS`
    lists for loop bodies."""
    if fn is None:
        return False
    if fn is runtime.opaque or fn is runtime.identity or scalar_calls.is_scalar_function(fn):
        return True
    if isinstance(fn, type) and issubclass(fn, np.generic):
        return True  # a numpy scalar type (np.float64, np.bool_): a conversion
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str):
        return False
    for module, owner in (("numpy", np), ("math", math), ("builtins", builtins)):
        if getattr(owner, name, None) is fn:
            return known_call(module, name, LOOP)
    return False


def _callee(du: DefUse, loop: Loop, var: ir.Var, depth: int = 0):
    """The object a call's callee names: a global or closure variable, or an
    attribute of one (``np.exp``, ``math.sqrt``); None when it is anything
    else (a method of a value, a computed function)."""
    value = _value(du, loop, var)
    if isinstance(value, (ir.Global, ir.FreeVar)):
        return value.value
    if isinstance(value, ir.Expr) and value.op == "getattr" and depth < 3:
        owner = _callee(du, loop, value.value, depth + 1)
        if isinstance(owner, type(np)):  # a module
            return getattr(owner, value.attr, None)
    return None


def _statement_effect(func_ir, du: DefUse, loop: Loop, facts: TypeFacts, flags,
                      stmt) -> Missed | None:
    """Why ``stmt`` may write memory other than by a store into an array
    (which the match follows), or None.  Deny by default: an expression is
    harmless only as :func:`expr_effect` proves it, a call only of a
    :func:`_harmless_function` on scalars, without keywords."""
    if isinstance(stmt, (ir.SetItem, ir.StaticSetItem, ir.Jump, ir.Branch, ir.Del,
                         ir.Raise, ir.StaticRaise)):
        return None
    if isinstance(stmt, ir.Assign):
        value = stmt.value
        if isinstance(value, (ir.Var, ir.Const, ir.Global, ir.FreeVar, ir.Arg)):
            return None
        if not isinstance(value, ir.Expr):  # a yield: the caller runs, and may write
            return Missed("LoopMayWrite", f"'{stmt}' at line {stmt.loc.line} may write "
                          "memory", stmt.loc, statement=str(stmt))
        if value.op == "call":
            fn = _callee(du, loop, value.func)
            if _harmless_function(fn) and not value.kws and value.vararg is None \
                    and all(isinstance(facts.of(a.name), _SCALAR) for a in value.args):
                return None
            shown = getattr(fn, "__name__", None) or value.func.name
            return Missed("LoopMayWrite", f"the call of '{shown}' at line {stmt.loc.line} "
                          "may write memory", stmt.loc, call=str(shown))
        why, _ = expr_effect(func_ir, du, facts, flags, value, stmt)
        if why is None or isinstance(why, Missed):
            return why
        # analysis.effects' Denied: a message and a location.
        return Missed("LoopMayWrite", why.message, why.loc, statement=str(stmt))
    return Missed("LoopMayWrite", f"'{stmt}' at line {stmt.loc.line} may write memory",
                  stmt.loc, statement=str(stmt))


@dataclass(frozen=True)
class _Pattern:
    """A store and the loads before it, in its block, of elements it stored
    1 to :data:`MAX_DISTANCE` iterations before: what the pass would forward,
    found before anything is checked (a loop without one gets no remark)."""

    array: str
    label: int
    position: int
    store: ir.SetItem | ir.StaticSetItem
    counter: str
    index: Index
    loads: tuple[Load, ...]


def _range_counter(func_ir, forest: LoopForest, loop: Loop, du: DefUse) -> str | None:
    """The index of a ``for i in range(...)`` loop stepping by 1."""
    rl = match_range_loop(func_ir.blocks, forest, loop, du)
    if isinstance(rl, Missed) or rl.trip is None or rl.trip[2] != ("const", 1):
        return None
    return rl.index


def _patterns(func_ir, forest: LoopForest, loop: Loop, du: DefUse,
              labels: set[int]) -> list[_Pattern]:
    """Each array's forwardable store in the blocks ``labels`` of the loop."""
    counter_of_range = (_range_counter(func_ir, forest, loop, du)
                        if is_for_loop(func_ir.blocks, loop) else None)
    found: dict[str, _Pattern] = {}
    for label in sorted(labels):
        block = func_ir.blocks[label]
        if not any(_is_store(stmt) for stmt in block.body):
            continue
        assigned = _assignments(block)
        found_counter = _counter(block, du, loop) if counter_of_range is None else None
        for pos, store in enumerate(block.body):
            if not _is_store(store):
                continue
            name = store.target.name
            if counter_of_range is not None:
                counter = counter_of_range
            else:
                if found_counter is None or found_counter[1] < pos:
                    continue
                counter = found_counter[0]
            index = _store_index(store, _Before(assigned, pos), du, loop, counter)
            if index is None:
                continue
            loads = []
            for at, stmt in enumerate(block.body[:pos]):
                if not _is_load(stmt, name):
                    continue
                load_index = _load_index(stmt.value, _Before(assigned, at), du, loop,
                                         counter)
                if load_index is None or not load_index.same_function(index):
                    continue
                distance = 1 if index.form == "fixed" else index.offset - load_index.offset
                if 1 <= distance <= MAX_DISTANCE:
                    loads.append(Load(stmt, distance))
            if loads:
                found[name] = _Pattern(name, label, pos, store, counter, index, tuple(loads))
    return list(found.values())


def match(func_ir: ir.FunctionIR, forest: LoopForest, loop: Loop, du: DefUse,
          facts: TypeFacts, flags) -> tuple[Plan | None, list[Missed]]:
    """The plan for ``loop`` (None: nothing to forward) and why each array
    with a store the pass would forward was refused.  Never changes the IR."""
    inner = set().union(*(lp.body for lp in forest.inner_loops(loop)))
    patterns = _patterns(func_ir, forest, loop, du, set(loop.body) - inner)
    if not patterns:
        return None, []
    names = tuple(p.array for p in patterns)
    shown = ", ".join(f"'{n}'" for n in names)
    loc = patterns[0].store.loc

    if inner:
        return None, [Missed("NotInnermost", f"{shown}: the loop storing it has loops "
                             "inside it", loc, arrays=names)]
    if not forest.reducible():
        return None, [Missed("IrreducibleLoop", f"{shown}: the function's control flow "
                             "is irreducible", loc, arrays=names)]
    for label in sorted(loop.body):
        for stmt in func_ir.blocks[label].body:
            why = _statement_effect(func_ir, du, loop, facts, flags, stmt)
            if why is not None:
                return None, [Missed("LoopMayWrite", f"{shown}: {why.message}",
                                     why.loc or loc, arrays=names, **why.arguments)]
    stores: dict[str, list] = {}
    for label in sorted(loop.body):
        for stmt in func_ir.blocks[label].body:
            if isinstance(stmt, (ir.SetItem, ir.StaticSetItem)):
                stores.setdefault(stmt.target.name, []).append(stmt)
    found, missed = [], []
    for pat in patterns:
        name, store = pat.array, pat.store
        if len(stores[name]) != 1:
            missed.append(Missed("SeveralStores", f"'{name}' is stored into "
                                 f"{len(stores[name])} times in the loop", store.loc,
                                 array=name, stores=len(stores[name])))
            continue
        if not all(forest.dominates(pat.label, latch) for latch in loop.latches):
            missed.append(Missed("StoreNotEveryIteration", f"the store into '{name}' at line "
                                 f"{store.loc.line} does not run on every iteration",
                                 store.loc, array=name))
            continue
        if found and (found[0][0].label, found[0][0].counter) != (pat.label, pat.counter):
            missed.append(Missed("OtherBlock", f"'{name}' is stored in another block than "
                                 f"'{found[0][0].array}'", store.loc, array=name))
            continue
        ty = facts.of(name)
        if not (isinstance(ty, types.Array) and ty.ndim == 1
                and isinstance(ty.dtype, _SCALAR)):
            missed.append(Missed("NotScalarArray", f"'{name}' is {ty or 'of unknown type'}, "
                                 "not a 1-d array of numbers", store.loc, array=name,
                                 type=str(ty)))
            continue
        if du.defs_in(name, loop.body):
            missed.append(Missed("ArrayReassigned", f"'{name}' is assigned in the loop",
                                 store.loc, array=name))
            continue
        operand = pat.index.operand
        allowed = types.Integer if pat.index.form == "fixed" else (types.Integer,
                                                                  types.Boolean)
        if isinstance(operand, str) and not isinstance(facts.of(operand), allowed):
            missed.append(Missed("IndexNotInteger", f"the index of the store into "
                                 f"'{name}' uses '{operand}', which is "
                                 f"{facts.of(operand) or 'of unknown type'}, not an "
                                 "integer", store.loc, array=name, operand=operand))
            continue
        value_ty = facts.of(store.value.name)
        if not isinstance(value_ty, _SCALAR):
            missed.append(Missed("StoredNotScalar", f"the value stored into '{name}' is "
                                 f"{value_ty or 'of unknown type'}, not a number",
                                 store.loc, array=name, type=str(value_ty)))
            continue
        other_uses = [u for u in du.uses.get(name, ()) if u.label in loop.body
                      and u.stmt is not store and not _is_load(u.stmt, name)]
        if other_uses:
            line = other_uses[0].stmt.loc.line
            missed.append(Missed("ArrayUsedOtherwise", f"'{name}' is used at line {line} "
                                 "other than by element loads and its store",
                                 other_uses[0].stmt.loc, array=name, line=line))
            continue
        others = tuple(sorted(o for o in stores if o != name))
        bad = [o for o in others if du.defs_in(o, loop.body)
               or not isinstance(facts.of(o), types.Array)]
        if bad:
            missed.append(Missed("UnknownWrite", f"the loop also stores into '{bad[0]}', "
                                 "which is not an array assigned before the loop",
                                 store.loc, array=name, other=bad[0]))
            continue
        found.append((pat, ArrayPlan(name, store, store.value, pat.index, pat.loads, others)))
    if not found:
        return None, missed
    first = found[0][0]
    return Plan(loop, first.label, first.counter, tuple(ap for _, ap in found),
                first.store.loc), missed


# ---------------------------------------------------------------------------
# Rewrite
# ---------------------------------------------------------------------------


_FORMS = {"plain": runtime.PLAIN_INDEX, "mod": runtime.MOD_INDEX, "mul": runtime.MUL_INDEX}


class _Builder:
    def __init__(self, scope: ir.Scope, loc: ir.Loc):
        self.scope, self.loc = scope, loc

    def var(self, hint: str) -> ir.Var:
        return irbuild.fresh(self.scope, hint, self.loc)

    def same(self, var: ir.Var) -> ir.Var:
        return ir.Var(self.scope, var.name, self.loc)

    def assign(self, out: list, value, hint: str, target: ir.Var | None = None) -> ir.Var:
        target = target or self.var(hint)
        out.append(ir.Assign(value, target, self.loc))
        return target

    def const(self, out: list, value) -> ir.Var:
        return self.assign(out, ir.Const(value, self.loc), "const")

    def call(self, out: list, name: str, fn, args, hint: str, target=None) -> ir.Var:
        g = self.assign(out, ir.Global(name, fn, self.loc), f"g_{name}")
        return self.assign(out, ir.Expr.call(g, list(args), (), self.loc), hint, target)

    def binop(self, out: list, fn, lhs, rhs, hint: str, target=None) -> ir.Var:
        return self.assign(out, ir.Expr.binop(fn, lhs, rhs, self.loc), hint, target)


def apply(func_ir: ir.FunctionIR, plan: Plan) -> None:
    """Rewrite the loop as ``plan`` says: a preheader setting up the
    variables and the check, each forwarded load a choice between the
    variable and memory, the variables updated after each store."""
    blocks = func_ir.blocks
    loop = plan.loop
    header = blocks[loop.header]
    b = _Builder(header.scope, plan.loc)
    pre: list[ir.Stmt] = []
    count = b.var("fwd_count")
    pre.append(ir.Assign(ir.Const(0, b.loc), count, b.loc))
    ok = b.const(pre, True)
    windows: dict[str, list[ir.Var]] = {}
    checked: set[frozenset[str]] = set()
    for ap in plan.arrays:
        array = ir.Var(b.scope, ap.array, b.loc)
        windows[ap.array] = [
            b.call(pre, "element_zero", runtime.element_zero, [array], f"fwd_{ap.array}_{k}")
            for k in range(1, ap.depth + 1)]
        if ap.depth >= 2:
            operand = ap.index.operand
            m = (ir.Var(b.scope, operand, b.loc) if isinstance(operand, str)
                 else b.const(pre, operand if operand is not None else 0))
            form = b.const(pre, _FORMS[ap.index.form])
            depth = b.const(pre, ap.depth)
            fits = b.call(pre, "distinct_window", runtime.distinct_window,
                          [array, form, m, depth], "fwd_window")
            ok = b.binop(pre, operator.and_, ok, fits, "fwd_ok")
        for other in ap.others:
            pair = frozenset((ap.array, other))
            if pair in checked:
                continue
            checked.add(pair)
            apart = b.call(pre, "disjoint", runtime.disjoint,
                           [array, ir.Var(b.scope, other, b.loc)], "fwd_disjoint")
            ok = b.binop(pre, operator.and_, ok, apart, "fwd_ok")
    pre_label = irbuild.new_label(blocks)
    pre.append(ir.Jump(loop.header, b.loc))
    new_blocks = {pre_label: irbuild.with_body(header, pre)}
    for entry in loop.entries:
        block = blocks[entry]
        body = block.body[:-1] + [irbuild.retarget(block.terminator, {loop.header: pre_label})]
        new_blocks[entry] = irbuild.with_body(block, body)

    # The loop block: split at each forwarded load.
    depth_all = max(ap.depth for ap in plan.arrays)
    forwarded = {id(load.stmt): (ap, load) for ap in plan.arrays for load in ap.loads}
    stores = {id(ap.store): ap for ap in plan.arrays}
    block = blocks[plan.block]
    current_label, current = plan.block, []
    full = b.const(current, depth_all)
    enough = b.binop(current, operator.ge, b.same(count), full, "fwd_enough")
    use = b.binop(current, operator.and_, b.same(ok), enough, "fwd_use")
    for stmt in block.body:
        hit = forwarded.get(id(stmt))
        if hit is not None:
            ap, load = hit
            # numba's label counter goes up with each call.
            reg_label, mem_label, join_label = (irbuild.new_label(blocks) for _ in range(3))
            current.extend(irbuild.branch_on(b.scope, use, reg_label, mem_label, b.loc))
            new_blocks[current_label] = irbuild.with_body(block, current)
            window = windows[ap.array][load.distance - 1]
            new_blocks[reg_label] = irbuild.with_body(block, [
                ir.Assign(b.same(window), stmt.target, stmt.loc), ir.Jump(join_label, b.loc)])
            new_blocks[mem_label] = irbuild.with_body(block, [stmt, ir.Jump(join_label, b.loc)])
            current_label, current = join_label, []
            continue
        current.append(stmt)
        ap = stores.get(id(stmt))
        if ap is not None:
            array = ir.Var(b.scope, ap.array, b.loc)
            window = windows[ap.array]
            for k in range(len(window) - 1, 0, -1):
                current.append(ir.Assign(b.same(window[k - 1]), b.same(window[k]), b.loc))
            b.call(current, "as_element", runtime.as_element, [array, ap.value],
                   "fwd_stored", target=b.same(window[0]))
    # The count goes up once an iteration, at the end of the block.
    terminator = current.pop()
    one = b.const(current, 1)
    b.binop(current, operator.add, b.same(count), one, "fwd_count", target=b.same(count))
    current.append(terminator)
    new_blocks[current_label] = irbuild.with_body(block, current)
    for label, new in new_blocks.items():
        blocks[label] = new


def describe(ap: ArrayPlan, counter: str) -> str:
    loads = sorted({load.distance for load in ap.loads})
    shown = ", ".join(str(d) for d in loads)
    checks = []
    if ap.depth >= 2:
        checks.append(f"{ap.depth} consecutive indices reach different elements")
    if ap.others:
        checks.append(f"'{ap.array}' does not overlap {', '.join(repr(o) for o in ap.others)}")
    when = f" when {' and '.join(checks)} (checked before the loop)" if checks else ""
    return (f"'{ap.array}[...]' loads read the value stored into "
            f"'{ap.array}[{ap.index.render(counter)}]' {shown} iteration(s) before from a "
            f"variable{when}, not from memory")


# ---------------------------------------------------------------------------
# The pass
# ---------------------------------------------------------------------------


@register_pass(mutates_CFG=True, analysis_only=False)
class ForwardStores(LoopOptPass):
    """The forward-stores pass; see the module docstring."""

    pass_name = "forward-stores"

    def transform(self, state, options, emit: RemarkEmitter) -> bool:
        func_ir = state.func_ir
        am = Analyses(state)
        facts = am.types
        changed = False
        done: set[int] = set()
        while True:
            # The analyses of the IR as it is now: kept while loops are only
            # refused, brought up to date after a rewrite (analysis.manager).
            forest, du = am.loops, am.defuse
            todo = [lp for lp in forest.loops if lp.header not in done]
            if not todo:
                break
            loop = todo[0]
            done.add(loop.header)
            plan, missed = match(func_ir, forest, loop, du, facts, state.flags)
            for why in missed:
                emit.missed(why)
            if plan is None:
                continue
            # All analysis has completed; start transforming.  The rewrite
            # changes no name's type.
            with am.edit(preserves=TYPES):
                apply(func_ir, plan)
            for ap in plan.arrays:
                emit.passed("Forwarded", ap.store.loc, describe(ap, plan.counter),
                            array=ap.array,
                            distances=tuple(sorted({ld.distance for ld in ap.loads})),
                            checked=ap.others)
            changed = True
        if changed:
            irbuild.finish_untyped_edit(func_ir)
        return changed
