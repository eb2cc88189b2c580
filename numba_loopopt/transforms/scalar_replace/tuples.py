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


def _tuple_item(du: DefUse, expr) -> ir.Var | None:
    """The item ``static_getitem(exhaust_iter(build_tuple(items)), k)`` or
    ``static_getitem(build_tuple(items), k)`` reads."""
    if not (isinstance(expr, ir.Expr) and expr.op == "static_getitem"
            and isinstance(expr.index, int)):
        return None
    source = _single_def(du, expr.value)
    if isinstance(source, ir.Expr) and source.op == "exhaust_iter":
        inner = _single_def(du, source.value)
        if not (isinstance(inner, ir.Expr) and inner.op == "build_tuple"
                and len(inner.items) == source.count):
            return None
        source = inner
    if isinstance(source, ir.Expr) and source.op == "build_tuple" \
            and 0 <= expr.index < len(source.items):
        item = source.items[expr.index]
        # The item must not be reassigned between the tuple and the read:
        # before SSA a name may be; require a single definition.
        if len(du.defs.get(item.name, ())) == 1:
            return item
    return None


def forward(func_ir: ir.FunctionIR) -> int:
    """Replace reads of tuple items by copies; returns how many."""
    du = DefUse(func_ir.blocks)
    count = 0
    for label, block in list(func_ir.blocks.items()):
        body, changed = [], False
        for stmt in block.body:
            if isinstance(stmt, ir.Assign):
                item = _tuple_item(du, stmt.value)
                if item is not None:
                    stmt = ir.Assign(item, stmt.target, stmt.loc)
                    changed = True
                    count += 1
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
