"""Reads of 0-d array arguments, made once before the loops reading them.

PyTensor passes a scan its number of steps as a 0-d array, and the loop
tests ``i < n_steps`` on every iteration: an array expression while-to-range
cannot count.  When a 0-d argument is only ever read (element reads,
``.item()``, truth value, comparisons with a number of its kind) its element
can be read once, before the loop, if nothing the loop does can change it.
Nothing the function allocates can overlap an argument, and constant arrays
cannot be written; so only the other array arguments can.  With none, the
element is read at the function's entry.  With some, each loop reading the
argument is copied together with the tests on its way in (a rotated while
loop tests its condition before the loop too), and a check before them that
the 0-d argument shares no byte with any other array argument picks the copy
reading it once (they overlap: the original runs).  Only the loop is copied,
not the function: compile time stays.  Arguments of other kinds (tuples, lists,
records, objects) could hold arrays: the pass leaves such functions alone.
"""

from __future__ import annotations

import copy
import operator
from dataclasses import dataclass

from numba.core import ir, ir_utils, types

from ... import irbuild, runtime
from ...analysis.defuse import DefUse
from ...analysis.tests import entry_guards
from ...analysis.zero_dim import COMPARE, COPY, ITEM, LOAD, STORED, TRUTH, classify, constant_value
from ...remarks import Missed

_SAFE_SCALARS = (types.Number, types.Boolean, types.NoneType, types.Omitted,
                 types.NPDatetime, types.NPTimedelta)


@dataclass(frozen=True)
class Region:
    """A loop that reads a hoisted argument, and its way in.

    ``start`` is the block where the way in begins: its statements from
    ``split`` on (the first entry test's computation) and the blocks of
    ``labels`` are copied; the copy reads the arguments once."""

    start: int
    split: int
    labels: frozenset[int]
    """The loop's blocks and the entry-test blocks after ``start``."""


@dataclass(frozen=True)
class HoistPlan:
    names: tuple[str, ...]
    """The 0-d arguments read once."""
    others: tuple[str, ...]
    """Array arguments that might overlap them: the function is versioned."""
    loc: ir.Loc
    copies: tuple[tuple[str, str], ...] = ()
    """``(copy, argument)``: names only ever assigned the argument."""
    regions: tuple[Region, ...] = ()
    """With ``others``: the loops (with the tests on the way into them) that
    are versioned; without, the reads are made once at the function's entry."""

    def describe(self) -> str:
        shown = ", ".join(f"'{n}'" for n in self.names)
        if not self.others:
            return f"0-d argument {shown} read once at entry"
        return (f"0-d argument {shown} read once before the loop (the loop, with "
                "the tests on its way in, is versioned on the argument not "
                f"overlapping {', '.join(repr(o) for o in self.others)} in memory; "
                "the original loop keeps reading it)")


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
    regions: list[Region] = []
    if others:
        family = set(names) | {c for c, _ in copies}
        used_in = {site.label for n in family for site in du.uses.get(n, ())}
        taken: set[int] = set()
        for loop in forest.loops:
            if any(loop.body < other.body for other in forest.loops):
                continue  # an inner loop: its outermost loop is versioned
            if not (loop.body & used_in):
                continue
            region = _region(forest, loop, du, family)
            if isinstance(region, Missed):
                return region
            if (region.labels | {region.start}) & taken:
                return Missed("RegionsOverlap", "two loops reading the 0-d argument "
                              "share their way in", loc)
            taken |= region.labels | {region.start}
            regions.append(region)
    return HoistPlan(tuple(names), tuple(others), loc, tuple(copies), tuple(regions))


def _region(forest, loop, du: DefUse, family: set[str]) -> Region | Missed:
    """The loop and the chain of tests on its single way in.  The copied part
    of the first test's block starts at the test's computation, or earlier,
    at the first read of the argument (``n.item()`` reads it in two
    statements before the test compares)."""
    blocks = forest.blocks
    if len(loop.entries) != 1:
        return Missed("LoopEntries", "the loop reading the 0-d argument is entered "
                      "from several places", blocks[loop.header].loc)
    guards = entry_guards(forest, loop, du)
    (entry,) = loop.entries
    if not guards:
        # No test on the way in (a for loop): version the entry edge.
        block = blocks[entry]
        return Region(entry, len(block.body) - 1, frozenset(loop.body))
    first = guards[-1].test
    chain, cur = [], entry
    while cur != first.label:
        chain.append(cur)
        (cur,) = forest.predecessors(cur)
    body = blocks[first.label].body
    split = min(first.slice) if first.slice else len(body) - 1
    reads = [i for i, s in enumerate(body[:-1]) if _reads_any(s, family)]
    if reads:
        split = min(split, reads[0])
    return Region(first.label, split, frozenset(loop.body) | frozenset(chain))


def _reads_any(stmt: ir.Stmt, names: set[str]) -> bool:
    if isinstance(stmt, ir.Assign):
        value = stmt.value
        used = [value] if isinstance(value, ir.Var) else (
            value.list_vars() if isinstance(value, ir.Expr) else [])
    else:
        used = stmt.list_vars()
    return any(v.name in names for v in used)


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
    _forward_copies(blocks, {v.name for v in hoisted.values()})


def _forward_copies(blocks: dict[int, ir.Block], values: set[str]) -> None:
    """``$t = h; ... i < $t`` becomes ``i < h`` for a temporary ``$t`` assigned
    once, from a hoisted value, and used in the same block: the loop's test
    then compares with a name assigned before the loop (while-to-range counts
    ``i < n[()]`` as it counts ``i < n``)."""
    du = DefUse(blocks)
    for label, block in list(blocks.items()):
        renames = {}
        for s in block.body:
            if (isinstance(s, ir.Assign) and isinstance(s.value, ir.Var)
                    and s.value.name in values and s.target.name.startswith("$")
                    and len(du.defs.get(s.target.name, ())) == 1
                    and all(u.label == label for u in du.uses.get(s.target.name, ()))):
                renames[s.target.name] = s.value
        if not renames:
            continue
        memo = {id(block.scope): block.scope}
        body = [copy.deepcopy(s, memo) for s in block.body
                if not (isinstance(s, ir.Assign) and s.target.name in renames)]
        new = {label: irbuild.with_body(block, body)}
        ir_utils.replace_var_names(new, {k: v.name for k, v in renames.items()})
        blocks[label] = new[label]


def rewrite(func_ir: ir.FunctionIR, plan: HoistPlan) -> None:
    if plan.others:
        for region in plan.regions:
            _version_region(func_ir, plan, region)
        return
    _read_at_entry(func_ir, plan)


def _check(scope, loc, plan: HoistPlan) -> tuple[list[ir.Stmt], ir.Var]:
    """``disjoint(n, o)`` for each hoisted ``n`` and other array ``o``, and'ed."""
    body: list[ir.Stmt] = []
    g = irbuild.fresh(scope, "g_disjoint", loc)
    body.append(ir.Assign(ir.Global("disjoint", runtime.disjoint, loc), g, loc))
    ok = None
    for n in plan.names:
        for o in plan.others:
            d = irbuild.fresh(scope, "disjoint", loc)
            body.append(ir.Assign(ir.Expr.call(g, [ir.Var(scope, n, loc),
                                                   ir.Var(scope, o, loc)], (), loc), d, loc))
            if ok is None:
                ok = d
            else:
                both = irbuild.fresh(scope, "disjoint_all", loc)
                body.append(ir.Assign(ir.Expr.binop(operator.and_, ok, d, loc), both, loc))
                ok = both
    return body, ok


def _reads(scope, loc, hoisted: dict[str, ir.Var]) -> list[ir.Stmt]:
    reads = []
    for n, var in hoisted.items():
        idx = irbuild.fresh(scope, "empty_tuple", loc)
        reads.append(ir.Assign(ir.Expr.build_tuple([], loc), idx, loc))
        reads.append(ir.Assign(ir.Expr.static_getitem(ir.Var(scope, n, loc), (), idx, loc),
                               var, loc))
    return reads


def _version_region(func_ir: ir.FunctionIR, plan: HoistPlan, region: Region) -> None:
    """Copy the region; a check on its way in picks the copy reading the
    arguments once.  Names assigned in the region keep them in the copy
    (code after the loop reads them, whichever copy ran), but for
    temporaries assigned and used only inside it, renamed so that each keeps one
    definition (later passes expect that of temporaries)."""
    blocks = func_ir.blocks
    start_block = blocks[region.start]
    scope, loc = start_block.scope, start_block.loc
    tail = irbuild.new_label(blocks)
    blocks[tail] = irbuild.with_body(start_block, start_block.body[region.split:])
    labels = region.labels | {tail}
    du = DefUse(blocks)
    mapping, copies = irbuild.copy_region(blocks, labels)
    hoisted = {n: scope.redefine(f"$loopopt_hoisted_{n}", loc) for n in plan.names}
    _replace_reads(func_ir, copies, hoisted, dict(plan.copies))
    local = {s.target.name for label in labels for s in blocks[label].body
             if isinstance(s, ir.Assign) and s.target.name.startswith("$")
             and all(site.label in labels for site in du.uses.get(s.target.name, ()))
             and all(site.label in labels for site in du.defs.get(s.target.name, ()))}
    ir_utils.replace_var_names(copies, {n: scope.redefine(n, loc).name for n in sorted(local)})
    check, ok = _check(scope, loc, plan)
    fast = irbuild.new_label({**blocks, **copies})
    check_label = fast + 1
    ir_utils._the_max_label.update(check_label)
    blocks.update(copies)
    blocks[fast] = irbuild.with_body(start_block, _reads(scope, loc, hoisted)
                                     + [ir.Jump(mapping[tail], loc)])
    blocks[check_label] = irbuild.with_body(start_block,
                                            check + [ir.Branch(ok, fast, tail, loc)])
    blocks[region.start] = irbuild.with_body(
        start_block, start_block.body[:region.split] + [ir.Jump(check_label, loc)])


def _read_at_entry(func_ir: ir.FunctionIR, plan: HoistPlan) -> None:
    """No other array argument: the reads move to the function's entry."""
    blocks = func_ir.blocks
    entry_label = min(blocks)
    entry = blocks[entry_label]
    scope, loc = entry.scope, entry.loc
    n_args = 0
    while n_args < len(entry.body) and isinstance(entry.body[n_args], ir.Assign) \
            and isinstance(entry.body[n_args].value, ir.Arg):
        n_args += 1
    hoisted = {n: scope.redefine(f"$loopopt_hoisted_{n}", loc) for n in plan.names}
    rest = irbuild.with_body(entry, entry.body[n_args:])
    body = {label: (rest if label == entry_label else block)
            for label, block in blocks.items()}
    _replace_reads(func_ir, body, hoisted, dict(plan.copies))
    blocks.update({label: block for label, block in body.items() if label != entry_label})
    blocks[entry_label] = irbuild.with_body(
        entry, list(entry.body[:n_args]) + _reads(scope, loc, hoisted)
        + list(body[entry_label].body))
