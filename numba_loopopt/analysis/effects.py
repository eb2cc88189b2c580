"""Can an array's contents change?  Writes, aliases, escapes.

An array is *read-only here* when the function allocates it itself and every
use of it reads an element or a property: it is never written, never bound to
another name, viewed, stored, returned or passed to a call, so nothing can
write it through another route either.
"""

from __future__ import annotations

import numpy as np
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


# --- Which statements of typed IR may write memory --------------------------
#
# A whitelist: a statement is harmless only if it is one of the forms below,
# on operands of the types below.  Everything else (an in-place operator on
# an array, a ufunc with an output argument, a call of another function, an
# attribute of a jitclass, a store) counts as writing every array it can
# reach.

#: Types whose values a statement can read, copy or combine without any
#: array's memory being written (operators on arrays make new arrays).
_PLAIN_TYPES = (types.Number, types.Boolean, types.NoneType, types.UnicodeType,
                types.Array, types.BaseTuple, types.StringLiteral, types.Omitted,
                types.EnumMember, types.NPDatetime, types.NPTimedelta)

#: Types whose ``getitem`` only reads (or, for an array, views).
_READABLE = (types.Array, types.BaseTuple, types.List, types.ListType,
             types.DictType, types.UnicodeType)

#: Containers a store into writes no array's memory (it keeps a reference).
_STORABLE = (types.List, types.ListType, types.DictType)

#: Methods of arrays that return a new array, a view or a scalar and write
#: nothing (``fill``, ``sort``, ``resize``, ``put`` and the rest are absent).
PURE_ARRAY_METHODS = frozenset({
    "sum", "prod", "mean", "min", "max", "any", "all", "argmin", "argmax", "std",
    "var", "cumsum", "cumprod", "copy", "astype", "item", "ravel", "flatten",
    "reshape", "transpose", "view", "nonzero", "dot", "conj", "conjugate", "tolist",
    "argsort", "take", "repeat", "squeeze", "swapaxes",
})

#: numpy functions (not ufuncs) that write none of their arguments.
PURE_NUMPY_FUNCTIONS = FRESH_ALLOCATORS | frozenset({
    "sum", "prod", "mean", "min", "max", "amin", "amax", "any", "all", "argmin",
    "argmax", "std", "var", "median", "cumsum", "cumprod", "dot", "where", "sort",
    "argsort", "ravel", "reshape", "transpose", "linspace", "asarray", "isclose",
    "allclose", "array_equal", "count_nonzero", "nansum", "nanmax", "nanmin",
    "nanmean", "shape", "size", "ndim", "float64", "float32", "int64", "int32",
    "int16", "int8", "uint64", "uint32", "uint16", "uint8", "bool_", "complex128",
    "complex64", "intp",
})

#: builtins and math functions that write none of their arguments.
PURE_BUILTINS = frozenset({"len", "abs", "min", "max", "float", "int", "bool", "round",
                           "complex", "pow", "range", "divmod", "print"})


def _callname(func_ir: ir.FunctionIR, value: ir.Expr, typemap: dict):
    """numba's ``find_callname``, or None where it cannot tell (also for a
    callee defined by an edit made after the definitions were built)."""
    try:
        return guard(find_callname, func_ir, value, typemap)
    except KeyError:
        return None


def pure_call(func_ir: ir.FunctionIR, value: ir.Expr, typemap: dict) -> bool:
    """Whether call ``value`` provably writes no array: a builtin, ``math``
    or numpy function of the whitelists, a ufunc called with exactly its
    inputs (no output argument, no keywords), a pure method of an array, or
    a kernel numba_loopopt generated (``_loopopt_pure``)."""
    if value.vararg is not None or value.varkwarg is not None:
        return False
    fnty = typemap.get(value.func.name)
    if isinstance(fnty, types.Dispatcher) and getattr(
            fnty.dispatcher, "_loopopt_pure", False):
        return True
    name = _callname(func_ir, value, typemap)
    if name is None:
        return False
    fn, module = name
    if isinstance(module, ir.Var):
        return (isinstance(typemap.get(module.name), types.Array)
                and fn in PURE_ARRAY_METHODS and not value.kws)
    if module == "math":
        return True
    if module == "builtins":
        return fn in PURE_BUILTINS and not value.kws
    if module == "numpy":
        obj = getattr(np, fn, None)
        if isinstance(obj, np.ufunc):
            return len(value.args) == obj.nin and not value.kws
        return fn in PURE_NUMPY_FUNCTIONS and not any(k == "out" for k, _ in value.kws)
    return False


def may_write_memory(func_ir: ir.FunctionIR, stmt: ir.Stmt, typemap: dict) -> str | None:
    """``None`` if typed statement ``stmt`` provably writes no array's
    memory, else what it is (for a remark).  Deny by default: only the
    forms listed here are harmless."""
    line = getattr(stmt.loc, "line", 0)
    if isinstance(stmt, (ir.Del, ir.Print)):
        return None
    if isinstance(stmt, (ir.SetItem, ir.StaticSetItem)):
        if isinstance(typemap.get(stmt.target.name), _STORABLE):
            return None
        return f"the store into '{stmt.target.name}' at line {line}"
    if not isinstance(stmt, ir.Assign):
        return f"'{stmt}' at line {line}"
    value = stmt.value
    if isinstance(value, (ir.Var, ir.Const, ir.Global, ir.FreeVar, ir.Arg)):
        return None
    if not isinstance(value, ir.Expr):
        return f"'{stmt}' at line {line}"
    op = value.op
    if op in ("binop", "unary", "arrayexpr", "inplace_binop"):
        operands = value.list_vars()
        if op == "inplace_binop" and not isinstance(
                typemap.get(value.lhs.name), (types.Number, types.Boolean)):
            return f"the in-place '{value.fn.__name__}' on '{value.lhs.name}' at line {line}"
        if all(isinstance(typemap.get(v.name), _PLAIN_TYPES) for v in operands):
            return None
        return f"the operator at line {line} (operands of types " + ", ".join(
            str(typemap.get(v.name)) for v in operands) + ")"
    if op in ("getitem", "static_getitem", "typed_getitem"):
        if isinstance(typemap.get(value.value.name), _READABLE):
            return None
        return f"the subscript of '{value.value.name}' at line {line}"
    if op == "getattr":
        if isinstance(typemap.get(value.value.name), _READABLE + _PLAIN_TYPES + (
                types.Module, types.NumberClass)):
            return None
        return f"the attribute '{value.attr}' of '{value.value.name}' at line {line}"
    if op in ("build_tuple", "build_list", "build_set", "build_map", "cast",
              "exhaust_iter", "pair_first", "pair_second"):
        return None
    if op == "call":
        if pure_call(func_ir, value, typemap):
            return None
        name = _callname(func_ir, value, typemap)
        shown = (f"{name[1]}.{name[0]}" if name and isinstance(name[1], str)
                 else f"'{name[0]}'" if name else "a call")
        return f"the call of {shown} at line {line}"
    return f"'{op}' at line {line}"
