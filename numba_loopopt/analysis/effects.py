"""Can an array's contents change?  Writes, aliases, escapes.

An array is *read-only here* when the function allocates it itself and every
use of it reads an element or a property: it is never written, never bound to
another name, viewed, stored, returned or passed to a call, so nothing can
write it through another route either.
"""

from __future__ import annotations

from numba.core import ir, types
from numba.core.ir_utils import find_callname, guard

from ..remarks import Missed
from .defuse import DefUse, Site

#: numpy functions that return a new array, not a view of an argument.
FRESH_ALLOCATORS = frozenset({
    "array", "zeros", "ones", "empty", "full", "zeros_like", "ones_like",
    "empty_like", "full_like", "copy", "arange",
})

#: Attributes whose reading neither writes nor exposes the array's data.
PURE_ATTRIBUTES = frozenset({"shape", "size", "ndim", "dtype", "itemsize", "nbytes"})


def _line(site: Site) -> int:
    return getattr(site.stmt.loc, "line", 0)


def is_fresh_allocation(func_ir: ir.FunctionIR, value) -> bool:
    if not (isinstance(value, ir.Expr) and value.op == "call"):
        return False
    callname = guard(find_callname, func_ir, value)
    return bool(callname) and callname[1] == "numpy" and callname[0] in FRESH_ALLOCATORS


def read_only_array(func_ir: ir.FunctionIR, du: DefUse, name: str,
                    typemap: dict, loc: ir.Loc | None = None) -> Missed | None:
    """``None`` if array ``name`` provably never changes after it is built,
    else why not.  ``loc`` is where to report a reason that has no statement
    of its own (the array's origin or type)."""
    defs = du.defs.get(name, ())
    if len(defs) != 1:
        where = ", ".join(str(_line(s)) for s in defs)
        return Missed("FlagChanges", f"'{name}' is assigned {len(defs)} times "
                      f"(lines {where})", defs[-1].stmt.loc if defs else None)
    definition = defs[0].stmt
    if isinstance(definition.value, ir.Arg):
        return Missed("FlagMayAlias",
                      f"'{name}' is an argument: the caller may pass a view of an "
                      "array the loop writes", loc or definition.loc)
    if not is_fresh_allocation(func_ir, definition.value):
        return Missed("FlagMayAlias",
                      f"'{name}' is not a fresh numpy allocation, so it may share "
                      "memory with another array", loc or definition.loc)
    ty = typemap.get(name)
    if not isinstance(ty, types.Array) or ty.ndim > 1:
        return Missed("FlagNotScalarArray",
                      f"'{name}' has type {ty}, not a 0-d or 1-d array",
                      loc or definition.loc)
    # A function of many loops on one flag asks this once per loop.  A use's
    # verdict depends on its statement and, for '.item', on the uses of the
    # bound method; taking statements away (a rewrite removing a test) cannot
    # turn "read-only" into anything else, so that verdict is reused until the
    # def-use facts gain a statement (or are rebuilt, which clears the memo).
    key = ("read_only_array", name)
    held = du.memo.get(key)
    if held is not None and held[0] is typemap and held[1] == du.additions:
        return None
    for site in du.uses.get(name, ()):
        why = _use_changes_array(du, name, site, typemap)
        if why is not None:
            return Missed("FlagChanges", why, site.stmt.loc)
    du.memo[key] = (typemap, du.additions)
    return None


def _use_changes_array(du: DefUse, name: str, site: Site, typemap: dict) -> str | None:
    stmt, line = site.stmt, _line(site)
    if isinstance(stmt, ir.Assign):
        value = stmt.value
        if isinstance(value, ir.Var):
            return f"'{name}' is aliased by '{stmt.target.name}' at line {line}"
        if isinstance(value, ir.Expr):
            if value.op in ("getitem", "static_getitem") and value.value.name == name:
                if isinstance(typemap.get(stmt.target.name), types.Array):
                    return f"'{name}' is viewed by '{stmt.target.name}' at line {line}"
                return None
            if value.op == "getattr" and value.attr in PURE_ATTRIBUTES:
                return None
            if value.op == "getattr" and value.attr == "item":
                # The bound method may only be called, with no arguments.
                for use in du.uses.get(stmt.target.name, ()):
                    call = use.stmt.value if isinstance(use.stmt, ir.Assign) else None
                    if not (isinstance(call, ir.Expr) and call.op == "call"
                            and call.func.name == stmt.target.name
                            and not call.args and not call.kws):
                        return f"'{name}.item' is used other than called at line {_line(use)}"
                return None
            if value.op == "inplace_binop":
                return f"'{name}' is updated in place at line {line}"
            if value.op == "call":
                return f"'{name}' is passed to a call at line {line}"
            if value.op == "getattr":
                return f"'{name}.{value.attr}' at line {line} may view or write it"
            if value.op in ("cast",):
                return f"'{name}' is returned at line {line}"
        return f"'{name}' is used by '{stmt.target.name} = {value}' at line {line}"
    if isinstance(stmt, (ir.SetItem, ir.StaticSetItem)) and stmt.target.name == name:
        return f"'{name}' is written at line {line}"
    if isinstance(stmt, ir.Return):
        return f"'{name}' is returned at line {line}"
    return f"'{name}' is used by '{stmt}' at line {line}"


def has_try_block(func_ir: ir.FunctionIR) -> bool:
    """Whether the function has ``try``/``except``: numba marks each try block
    with a call to its ``mark_try_block`` intrinsic."""
    return any(isinstance(stmt, ir.Assign) and isinstance(stmt.value, ir.Global)
               and stmt.value.name == "mark_try_block"
               for block in func_ir.blocks.values() for stmt in block.body)
