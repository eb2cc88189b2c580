"""Tuples built only to be unpacked again: ``t = (a, b); x, y = t``.

An inlined callee returns ``build_tuple(items)``, and its caller unpacks it
with ``exhaust_iter`` and ``static_getitem``; a lowered multi-output call
does the same.  Each unpacked element becomes a copy of the item it is, so
later analyses see ``x = a`` rather than an array stored in a tuple.  The
tuple stays (numba drops it when nothing else uses it); the pass removes the
statements that only fed the copies when the items are dissolved.
"""

from __future__ import annotations

from numba.core import ir

from ... import irbuild
from ...analysis.defuse import DefUse


def _single_def(du: DefUse, var: ir.Var, copies: int = 8):
    """The one value ``var`` is assigned, through copies of singly
    assigned names (an inlined callee's return value is copied to the
    call's target)."""
    sites = du.defs.get(var.name, ())
    if len(sites) != 1 or not isinstance(sites[0].stmt, ir.Assign):
        return None
    value = sites[0].stmt.value
    if isinstance(value, ir.Var) and copies:
        return _single_def(du, value, copies - 1)
    return value


def forward(func_ir: ir.FunctionIR) -> int:
    """Replace reads of tuple items by copies; returns how many.

    Only within one block, in order: a read of a tuple built earlier in the
    block (directly, through copies of it, or through ``exhaust_iter``)
    becomes a copy of the item, if nothing in between assigned the item.  (A
    tuple built in an earlier iteration of a loop holds the values its items
    had then: the names may have changed since.)"""
    count = 0
    for label, block in list(func_ir.blocks.items()):
        tuples: dict[str, list[ir.Var]] = {}   # name -> items, valid here
        body, changed = [], False
        for stmt in block.body:
            if isinstance(stmt, ir.Assign):
                value = stmt.value
                item = None
                if isinstance(value, ir.Expr) and value.op == "static_getitem" \
                        and isinstance(value.index, int) and value.value.name in tuples:
                    items = tuples[value.value.name]
                    if 0 <= value.index < len(items):
                        item = items[value.index]
                target = stmt.target.name
                # The assignment invalidates every tuple holding the target,
                # and the target's own entry.
                tuples = {n: items for n, items in tuples.items()
                          if n != target and all(v.name != target for v in items)}
                if item is not None and item.name != target:
                    stmt = ir.Assign(item, stmt.target, stmt.loc)
                    changed = True
                    count += 1
                elif isinstance(value, ir.Expr) and value.op == "build_tuple":
                    if all(v.name != target for v in value.items):
                        tuples[target] = list(value.items)
                elif isinstance(value, ir.Expr) and value.op == "exhaust_iter" \
                        and value.value.name in tuples \
                        and len(tuples[value.value.name]) == value.count:
                    tuples[target] = tuples[value.value.name]
                elif isinstance(value, ir.Var) and value.name in tuples:
                    tuples[target] = tuples[value.name]
            body.append(stmt)
        if changed:
            func_ir.blocks[label] = irbuild.with_body(block, body)
    return count


def remove_dead_tuples(func_ir: ir.FunctionIR) -> None:
    """Drop tuples nothing uses, to a fixed point: ``build_tuple``, and
    ``exhaust_iter`` and ``static_getitem`` of a tuple built in the function
    (which cannot raise: the item count was checked when it was built)."""
    while True:
        du = DefUse(func_ir.blocks)
        dead = set()
        for block in func_ir.blocks.values():
            for stmt in block.body:
                if not isinstance(stmt, ir.Assign) or du.uses.get(stmt.target.name):
                    continue
                if isinstance(stmt.value, ir.Var):  # a copy: no effect
                    dead.add(id(stmt))
                    continue
                if not isinstance(stmt.value, ir.Expr):
                    continue
                op = stmt.value.op
                if op == "build_tuple":
                    dead.add(id(stmt))
                elif op == "exhaust_iter" or (op == "static_getitem"
                                              and isinstance(stmt.value.index, int)):
                    source = _single_def(du, stmt.value.value)
                    if op == "exhaust_iter" and not (
                            isinstance(source, ir.Expr) and source.op == "build_tuple"
                            and len(source.items) == stmt.value.count):
                        continue
                    if isinstance(source, ir.Expr) and (
                            source.op == "build_tuple" or (
                                op == "static_getitem" and source.op == "exhaust_iter")):
                        dead.add(id(stmt))
        if not dead:
            return
        for label, block in list(func_ir.blocks.items()):
            if any(id(s) in dead for s in block.body):
                func_ir.blocks[label] = irbuild.with_body(
                    block, [s for s in block.body if id(s) not in dead])
