"""Scalar replacement of 0-d arrays a function creates.

A *group* is a set of names joined by copies (``b = a``) whose every
definition is a 0-d allocation (``np.empty(())``, ``np.zeros(())``,
``np.ones(())``, ``np.array(x)`` of a scalar) or a copy from the group.  When
every use of every name reads the element, writes it, or copies the
reference (:mod:`numba_loopopt.analysis.zero_dim`), the group becomes scalar
variables:

* a group that is never written through holds *values*: each name gets its
  own scalar, assigned where the name is (a copy copies the value);
* a group written through (``a[()] = v``) must have exactly one allocation,
  outside every loop, so that all its names always denote that one array:
  one scalar for the group, and a write assigns it, cast to the dtype as an
  element store is.

Anything else keeps the arrays, with a missed remark naming the use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba.core import ir, types

from ... import irbuild
from ...analysis.defuse import DefUse, Site
from ...analysis.loops import LoopForest
from ...analysis.zero_dim import (
    COPY,
    ITEM,
    LOAD,
    OTHER,
    STORE,
    STORED,
    TRUTH,
    Use,
    allocation,
    classify,
    dtype_of,
)
from ...remarks import Missed

SCALAR_PREFIX = "$0d."


@dataclass(frozen=True)
class GroupPlan:
    names: frozenset[str]
    dtype: np.dtype
    shared: bool
    """One scalar for every name (the group is written through)."""
    allocations: tuple[tuple[Site, str, object], ...]
    """``(site, kind, fill)`` of each allocation."""
    uses: tuple[Use, ...]
    loc: ir.Loc

    def scalar(self, name: str) -> str:
        return SCALAR_PREFIX + (min(self.names) if self.shared else name)


def _component(du: DefUse, seed: str) -> set[str]:
    names, todo = set(), [seed]
    while todo:
        n = todo.pop()
        if n in names:
            continue
        names.add(n)
        for site in du.defs.get(n, ()):
            if isinstance(site.stmt, ir.Assign) and isinstance(site.stmt.value, ir.Var):
                todo.append(site.stmt.value.name)
        for site in du.uses.get(n, ()):
            s = site.stmt
            if isinstance(s, ir.Assign) and isinstance(s.value, ir.Var) and s.value.name == n:
                todo.append(s.target.name)
    return names


def _in_loop(forest: LoopForest, label: int) -> bool:
    return any(label in loop.body for loop in forest.loops)


def _plan_group(func_ir, du, forest, facts, names: set[str]) -> GroupPlan | Missed:
    first = min(names)
    dtypes = set()
    allocations = []
    loc = None
    for n in sorted(names):
        dtype = dtype_of(facts.of(n))
        if dtype is None:
            return Missed("NotZeroDim", f"'{n}' is {facts.of(n)}, not a 0-d array",
                          None, array=n, type=str(facts.of(n)))
        dtypes.add(dtype)
        for site in du.defs.get(n, ()):
            value = site.stmt.value
            if isinstance(value, ir.Var) and value.name in names:
                continue
            found = allocation(func_ir, value)
            if found is None:
                what = (value.op if isinstance(value, ir.Expr)
                        else type(value).__name__.lower())
                return Missed("UnknownDefinition", f"'{n}' is also assigned a value "
                              f"this pass does not know to be a fresh 0-d array ({what})",
                              site.stmt.loc, array=n, definition=what)
            kind, fill = found
            if kind == "array" and not isinstance(facts.of(fill.name),
                                                  (types.Number, types.Boolean)):
                return Missed("UnknownDefinition", f"'{n}' is np.array of "
                              f"{facts.of(fill.name)}, not of a scalar", site.stmt.loc,
                              array=n, definition="np.array")
            allocations.append((site, kind, fill))
            loc = loc or site.stmt.loc
    if len(dtypes) != 1:
        return Missed("MixedDtypes", f"the 0-d arrays copied into '{first}' have "
                      f"different dtypes ({', '.join(sorted(map(str, dtypes)))})", loc,
                      array=first)
    uses = []
    for n in sorted(names):
        for site in du.uses.get(n, ()):
            use = classify(func_ir, du, n, site)
            if use.kind == OTHER or use.kind not in (LOAD, STORE, COPY, ITEM, TRUTH, STORED):
                key = use.key or "OtherUse"
                return Missed(key, f"the 0-d array '{n}' is {use.what or use.kind}: "
                              "it stays an array", site.stmt.loc, array=n,
                              use=use.what or use.kind)
            uses.append(use)
    written = any(u.kind == STORE for u in uses)
    if written and (len(allocations) != 1
                    or _in_loop(forest, allocations[0][0].label)):
        where = ("in a loop" if len(allocations) == 1 else
                 f"at {len(allocations)} places")
        return Missed("WrittenAliased", f"the 0-d array '{first}' is written through "
                      f"and allocated {where}: its names may denote different arrays",
                      loc, array=first)
    return GroupPlan(frozenset(names), dtypes.pop(), written, tuple(allocations),
                     tuple(uses), loc)


def match(func_ir: ir.FunctionIR, du: DefUse, forest: LoopForest,
          facts) -> list[GroupPlan | Missed]:
    """A plan per group of fresh 0-d arrays, or why it stays."""
    seen: set[str] = set()
    found: list[GroupPlan | Missed] = []
    for name in sorted(du.defs):
        if name in seen:
            continue
        if not any(isinstance(s.stmt, ir.Assign) and allocation(func_ir, s.stmt.value)
                   for s in du.defs[name]):
            continue
        if dtype_of(facts.of(name)) is None:
            continue  # not a 0-d array (np.array of a list, say)
        names = _component(du, name)
        seen |= names
        found.append(_plan_group(func_ir, du, forest, facts, names))
    return found


def _ctor(scope, loc, dtype: np.dtype, value: ir.Var, target: ir.Var) -> list[ir.Stmt]:
    cls = np.dtype(dtype).type
    g = irbuild.fresh(scope, f"g_{cls.__name__}", loc)
    return [ir.Assign(ir.Global(cls.__name__, cls, loc), g, loc),
            ir.Assign(ir.Expr.call(g, [value], (), loc), target, loc)]


def rewrite(func_ir: ir.FunctionIR, plans: list[GroupPlan]) -> None:
    scalar: dict[str, str] = {}
    dtype: dict[str, np.dtype] = {}
    for p in plans:
        for n in p.names:
            scalar[n] = p.scalar(n)
            dtype[n] = p.dtype
    allocs = {id(site.stmt): (kind, fill) for p in plans for site, kind, fill in p.allocations}
    item_calls: dict[int, str] = {}
    dropped: set[int] = set()
    for p in plans:
        for u in p.uses:
            if u.kind == ITEM:
                dropped.add(id(u.site.stmt))
                for c in u.calls:
                    item_calls[id(c.stmt)] = u.site.stmt.value.value.name

    def var(block, name, loc):
        return block.scope.get_or_define(scalar[name], loc=loc)

    def mapped(block, v: ir.Var) -> ir.Var:
        return var(block, v.name, v.loc) if v.name in scalar else v

    for label, block in list(func_ir.blocks.items()):
        body: list[ir.Stmt] = []
        changed = False
        for s in block.body:
            new = _replace(block, s, scalar, dtype, allocs, item_calls, dropped, var, mapped)
            if new is None:
                body.append(s)
            else:
                body.extend(new)
                changed = True
        if changed:
            func_ir.blocks[label] = irbuild.with_body(block, body)
    for block in func_ir.blocks.values():
        for s in block.body:
            left = [v.name for v in s.list_vars() if v.name in scalar]
            if left:  # a use the plan did not account for: roll the pass back
                raise AssertionError(f"scalar replacement left {left} in {s}")


def _replace(block, s, scalar, dtype, allocs, item_calls, dropped, var, mapped):
    loc = s.loc
    if id(s) in dropped:
        return []
    if isinstance(s, ir.Assign):
        t = s.target.name
        if id(s) in allocs:
            kind, fill = allocs[id(s)]
            if kind == "array":
                value = fill
                pre = []
            else:
                value = irbuild.fresh(block.scope, "fill", loc)
                pre = [ir.Assign(ir.Const(fill or 0, loc), value, loc)]
            return pre + _ctor(block.scope, loc, dtype[t], value, var(block, t, loc))
        if t in scalar and isinstance(s.value, ir.Var):
            if scalar[t] == scalar[s.value.name]:
                return []
            return [ir.Assign(var(block, s.value.name, loc), var(block, t, loc), loc)]
        if id(s) in item_calls:
            return [ir.Assign(var(block, item_calls[id(s)], loc), s.target, loc)]
        value = s.value
        if isinstance(value, ir.Expr) and value.op in ("static_getitem", "getitem") \
                and value.value.name in scalar:
            return [ir.Assign(var(block, value.value.name, loc), s.target, loc)]
        if isinstance(value, ir.Expr) and value.op == "call" and value.args \
                and value.args[0].name in scalar:
            call = ir.Expr.call(value.func, [mapped(block, value.args[0])], (), loc)
            return [ir.Assign(call, s.target, loc)]
        return None
    if isinstance(s, (ir.StaticSetItem, ir.SetItem)):
        if s.target.name in scalar:
            t = s.target.name
            return _ctor(block.scope, loc, dtype[t], mapped(block, s.value),
                         var(block, t, loc))
        if s.value.name in scalar:
            if isinstance(s, ir.StaticSetItem):
                return [ir.StaticSetItem(s.target, s.index, s.index_var,
                                         mapped(block, s.value), loc)]
            return [ir.SetItem(s.target, s.index, mapped(block, s.value), loc)]
    return None
