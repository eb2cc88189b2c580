"""Reads of 0-d array arguments, made once at entry.

PyTensor passes a scan its number of steps as a 0-d array, and the loop
tests ``i < n_steps`` on every iteration: an array expression while-to-range
cannot count.  When a 0-d argument is only ever read (element reads,
``.item()``, truth value, comparisons with a number of its kind) its element
can be read once, at entry, if nothing the function does can change it.
Nothing the function allocates can overlap an argument, and constant arrays
cannot be written; so only the other array arguments can: when there are
some, the function is compiled twice, and a check at entry that the 0-d
argument shares no byte with any of them picks the copy reading it once
(they overlap: the original runs).  Arguments of other kinds (tuples, lists,
records, objects) could hold arrays: the pass leaves such functions alone.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from numba.core import ir, ir_utils, types

from ... import irbuild, runtime
from ...analysis.defuse import DefUse
from ...analysis.zero_dim import COMPARE, COPY, ITEM, LOAD, STORED, TRUTH, classify, constant_value
from ...remarks import Missed

_SAFE_SCALARS = (types.Number, types.Boolean, types.NoneType, types.Omitted,
                 types.NPDatetime, types.NPTimedelta)


@dataclass(frozen=True)
class HoistPlan:
    names: tuple[str, ...]
    """The 0-d arguments read once."""
    others: tuple[str, ...]
    """Array arguments that might overlap them: the function is versioned."""
    loc: ir.Loc
    copies: tuple[tuple[str, str], ...] = ()
    """``(copy, argument)``: names only ever assigned the argument."""

    def describe(self) -> str:
        shown = ", ".join(f"'{n}'" for n in self.names)
        text = f"0-d argument {shown} read once at entry"
        if self.others:
            text += (" (the function is versioned on it not overlapping "
                     f"{', '.join(repr(o) for o in self.others)} in memory)")
        return text


def _arguments(func_ir: ir.FunctionIR) -> dict[str, int]:
    entry = func_ir.blocks[min(func_ir.blocks)]
    return {s.target.name: s.value.index for s in entry.body
            if isinstance(s, ir.Assign) and isinstance(s.value, ir.Arg)}


def _comparable(a, b) -> bool:
    """Comparing ``a`` with ``b`` gives what comparing their 0-d array with
    ``b`` gives (numpy's promotion and numba's agree)."""
    if isinstance(a, types.Integer) and isinstance(b, types.Integer):
        return a.signed == b.signed
    return isinstance(a, types.Float) and isinstance(b, types.Float)


def _copies(du: DefUse, name: str) -> list[str]:
    """``name`` and the names that are only ever copies of it (an inlined
    callee's parameter is assigned its argument)."""
    names, todo = [], [name]
    while todo:
        n = todo.pop()
        if n in names:
            continue
        names.append(n)
        for site in du.uses.get(n, ()):
            s = site.stmt
            if (isinstance(s, ir.Assign) and isinstance(s.value, ir.Var)
                    and s.value.name == n and len(du.defs.get(s.target.name, ())) == 1):
                todo.append(s.target.name)
    return names


def _read_only(func_ir, du: DefUse, facts, name: str, family=()) -> Missed | None:
    dtype = facts.of(name).dtype
    for site in du.uses.get(name, ()):
        use = classify(func_ir, du, name, site)
        if use.kind in (LOAD, ITEM, TRUTH, STORED):
            continue
        if use.kind == COPY and site.stmt.target.name in family:
            continue
        if use.kind == COMPARE:
            expr = site.stmt.value
            other = expr.rhs if expr.lhs.name == name else expr.lhs
            if other.name != name and _comparable(dtype, facts.of(other.name)) and all(
                    _is_truth_call(func_ir, u.stmt, site.stmt.target.name)
                    for u in du.uses.get(site.stmt.target.name, ())):
                continue
            return Missed("ArgumentCompared", f"the 0-d argument '{name}' is compared "
                          f"with a value of type {facts.of(other.name)}, or the "
                          "comparison's array is used as an array", site.stmt.loc,
                          argument=name)
        return Missed("ArgumentNotOnlyRead", f"the 0-d argument '{name}' is "
                      f"{use.what or use.kind}: it is read on every use",
                      site.stmt.loc, argument=name, use=use.what or use.kind)
    return None


def _is_truth_call(func_ir, stmt, name: str) -> bool:
    return (isinstance(stmt, ir.Assign) and isinstance(stmt.value, ir.Expr)
            and stmt.value.op == "call" and constant_value(func_ir, stmt.value.func) is bool
            and [a.name for a in stmt.value.args] == [name] and not stmt.value.kws)


def match(func_ir: ir.FunctionIR, du: DefUse, forest, facts, argtypes) -> HoistPlan | Missed | None:
    """A plan, a reason, or ``None`` when no 0-d argument is read in a loop."""
    args = _arguments(func_ir)
    in_loop = set().union(*(lp.body for lp in forest.loops)) if forest.loops else set()
    wanted = []
    for name, index in sorted(args.items(), key=lambda kv: kv[1]):
        ty = argtypes[index] if index < len(argtypes) else None
        if not (isinstance(ty, types.Array) and ty.ndim == 0):
            continue
        if any(site.label in in_loop for site in du.uses.get(name, ())):
            wanted.append(name)
    if not wanted:
        return None
    entry = min(func_ir.blocks)
    loc = func_ir.blocks[entry].loc
    if entry in in_loop:
        return Missed("EntryInLoop", "the function's first block is in a loop", loc)
    names, others, copies = [], [], []
    for name in wanted:
        if len(du.defs.get(name, ())) != 1:
            return Missed("ArgumentReassigned", f"the 0-d argument '{name}' is "
                          "reassigned", loc, argument=name)
        family = _copies(du, name)
        for member in family:
            why = _read_only(func_ir, du, facts, member, family)
            if why is not None:
                return why
        names.append(name)
        copies.extend((n, name) for n in family if n != name)
    for name, index in sorted(args.items(), key=lambda kv: kv[1]):
        if name in names:
            continue
        ty = argtypes[index] if index < len(argtypes) else None
        if isinstance(ty, types.Array):
            others.append(name)
        elif not isinstance(ty, _SAFE_SCALARS):
            return Missed("OpaqueArgument", f"argument '{name}' of type {ty} might hold "
                          "an array that overlaps the 0-d argument", loc,
                          argument=name, type=str(ty))
    return HoistPlan(tuple(names), tuple(others), loc, tuple(copies))


def _replace_reads(func_ir, blocks: dict[int, ir.Block], hoisted: dict[str, ir.Var],
                   copies: dict[str, str]) -> None:
    """Every read of a hoisted argument (or a copy of it) in ``blocks`` reads
    its variable; the copies go."""
    hoisted = {**hoisted, **{copy: hoisted[arg] for copy, arg in copies.items()}}
    du = DefUse(blocks)
    drop, item_calls = set(), {}
    for name, var in hoisted.items():
        for site in du.uses.get(name, ()):
            use = classify(func_ir, du, name, site)
            if use.kind == ITEM:
                drop.add(id(site.stmt))
                for c in use.calls:
                    item_calls[id(c.stmt)] = var
    for label, block in list(blocks.items()):
        body = []
        for s in block.body:
            if id(s) in drop:
                continue
            if isinstance(s, ir.Assign) and s.target.name in hoisted \
                    and isinstance(s.value, ir.Var) and s.value.name in hoisted:
                continue  # a copy of the argument
            if id(s) in item_calls:
                s = ir.Assign(item_calls[id(s)], s.target, s.loc)
            elif isinstance(s, ir.Assign) and isinstance(s.value, ir.Expr):
                e = s.value
                if e.op in ("static_getitem", "getitem") and e.value.name in hoisted:
                    s = ir.Assign(hoisted[e.value.name], s.target, s.loc)
                elif e.op == "binop" and (e.lhs.name in hoisted or e.rhs.name in hoisted):
                    s = ir.Assign(ir.Expr.binop(e.fn, hoisted.get(e.lhs.name, e.lhs),
                                                hoisted.get(e.rhs.name, e.rhs), e.loc),
                                  s.target, s.loc)
                elif e.op == "call" and any(a.name in hoisted for a in e.args):
                    s = ir.Assign(ir.Expr.call(e.func, [hoisted.get(a.name, a) for a in e.args],
                                               e.kws, e.loc), s.target, s.loc)
            elif isinstance(s, ir.SetItem) and s.value.name in hoisted:
                s = ir.SetItem(s.target, s.index, hoisted[s.value.name], s.loc)
            elif isinstance(s, ir.StaticSetItem) and s.value.name in hoisted:
                s = ir.StaticSetItem(s.target, s.index, s.index_var,
                                     hoisted[s.value.name], s.loc)
            body.append(s)
        blocks[label] = irbuild.with_body(block, body)
    for block in blocks.values():
        for s in block.body:
            left = [v.name for v in s.list_vars() if v.name in hoisted]
            if left:
                raise AssertionError(f"hoisting left a read of {left} in {s}")


def rewrite(func_ir: ir.FunctionIR, plan: HoistPlan) -> None:
    blocks = func_ir.blocks
    entry_label = min(blocks)
    entry = blocks[entry_label]
    scope, loc = entry.scope, entry.loc
    n_args = 0
    while n_args < len(entry.body) and isinstance(entry.body[n_args], ir.Assign) \
            and isinstance(entry.body[n_args].value, ir.Arg):
        n_args += 1
    # The entry's own statements move to a block of their own: the function
    # below the arguments, which the versioning copies.
    start = irbuild.new_label(blocks)
    blocks[start] = irbuild.with_body(entry, entry.body[n_args:])
    body_labels = [label for label in blocks if label != entry_label]
    if plan.others:
        mapping, copies = irbuild.copy_region(blocks, body_labels)
        fast_start = mapping[start]
    else:
        copies, fast_start = {label: blocks[label] for label in body_labels}, start
    hoisted = {n: scope.redefine(f"$loopopt_hoisted_{n}", loc) for n in plan.names}
    _replace_reads(func_ir, copies, hoisted, dict(plan.copies))
    if plan.others:
        # The two copies never meet again (each returns on its own): the
        # copy's names are renamed, so that each name keeps one definition
        # per copy, as the analyses of later passes expect of temporaries.
        defined = {s.target.name for b in copies.values() for s in b.body
                   if isinstance(s, ir.Assign)}
        renames = {n: scope.redefine(n, loc).name for n in sorted(defined)}
        ir_utils.replace_var_names(copies, renames)
    reads = []
    for n, var in hoisted.items():
        idx = irbuild.fresh(scope, "empty_tuple", loc)
        reads.append(ir.Assign(ir.Expr.build_tuple([], loc), idx, loc))
        reads.append(ir.Assign(ir.Expr.static_getitem(ir.Var(scope, n, loc), (), idx, loc),
                               var, loc))
    fast = copies[fast_start]
    copies[fast_start] = irbuild.with_body(fast, reads + list(fast.body))
    blocks.update(copies)
    head = list(entry.body[:n_args])
    if plan.others:
        g = irbuild.fresh(scope, "g_disjoint", loc)
        head.append(ir.Assign(ir.Global("disjoint", runtime.disjoint, loc), g, loc))
        ok = None
        for n in plan.names:
            for o in plan.others:
                d = irbuild.fresh(scope, "disjoint", loc)
                head.append(ir.Assign(ir.Expr.call(g, [ir.Var(scope, n, loc),
                                                       ir.Var(scope, o, loc)], (), loc), d, loc))
                if ok is None:
                    ok = d
                else:
                    both = irbuild.fresh(scope, "disjoint_all", loc)
                    head.append(ir.Assign(ir.Expr.binop(operator.and_, ok, d, loc), both, loc))
                    ok = both
        head.append(ir.Branch(ok, fast_start, start, loc))
    else:
        head.append(ir.Jump(start, loc))
    blocks[entry_label] = irbuild.with_body(entry, head)
