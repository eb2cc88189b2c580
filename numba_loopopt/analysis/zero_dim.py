"""0-d arrays in untyped IR: what each use of one does with it.

A use *reads* the element (``a[()]``, ``a.item()``, ``bool(a)``, the value of
an element store ``buf[k] = a``), *writes* it (``a[()] = v``), *copies* the
reference (``b = a``), or does something else with the array itself, which
keeps it an array: the :class:`Use` says which, in words a remark can show.
The list of reads and writes is a whitelist: anything not on it is
``other``.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
from numba.core import errors, ir, types
from numba.np.numpy_support import as_dtype

from .defuse import DefUse, Site

__all__ = ["Use", "allocation", "classify", "constant_value", "dtype_of",
           "is_empty_tuple", "NOT_CONSTANT"]

#: What :func:`constant_value` returns for a variable that is not a constant.
NOT_CONSTANT = object()

LOAD, STORE, COPY, ITEM, TRUTH, STORED, COMPARE, OTHER = (
    "load", "store", "copy", "item", "truth", "stored", "compare", "other")


@dataclass(frozen=True)
class Use:
    kind: str
    site: Site
    what: str = ""
    """For ``other``: the use, in words (``"returned"``, ``"passed to 'f'"``)."""
    key: str = ""
    """For ``other``: the remark key of the use."""
    calls: tuple[Site, ...] = ()
    """For ``item``: the ``$m()`` calls of the bound method."""


def constant_value(func_ir: ir.FunctionIR, var: ir.Var, depth: int = 6):
    """The value ``var`` always holds (a constant, a global, an attribute of
    one), or :data:`NOT_CONSTANT`."""
    try:
        defn = func_ir.get_definition(var)
    except (KeyError, AttributeError, errors.NumbaError):  # several or no definitions
        return NOT_CONSTANT
    if isinstance(defn, (ir.Const, ir.Global, ir.FreeVar)):
        return defn.value
    if depth and isinstance(defn, ir.Expr) and defn.op == "getattr":
        base = constant_value(func_ir, defn.value, depth - 1)
        if base is not NOT_CONSTANT:
            return getattr(base, defn.attr, NOT_CONSTANT)
    return NOT_CONSTANT


def is_empty_tuple(func_ir: ir.FunctionIR, var) -> bool:
    if not isinstance(var, ir.Var):
        return var == ()
    try:
        defn = func_ir.get_definition(var)
    except (KeyError, AttributeError, errors.NumbaError):
        return False
    if isinstance(defn, ir.Expr) and defn.op == "build_tuple":
        return not defn.items
    return isinstance(defn, ir.Const) and defn.value == ()


#: ``np.<name>`` calls that make a 0-d array from a shape ``()`` (and a
#: dtype), with the value they fill it with (``None``: unspecified).
_FILLED = {"empty": None, "zeros": 0, "ones": 1}


def allocation(func_ir: ir.FunctionIR, expr) -> tuple[str, object] | None:
    """``(kind, fill)`` when ``expr`` allocates a fresh 0-d array:
    ``np.empty(())``/``np.zeros(())``/``np.ones(())`` (any dtype argument;
    ``fill`` the number they fill it with, ``None`` for ``empty``) or
    ``np.array(x)`` of one positional argument (``fill`` the variable ``x``;
    the caller checks, from types, that ``x`` is a scalar)."""
    if not (isinstance(expr, ir.Expr) and expr.op == "call") or expr.vararg or expr.varkwarg:
        return None
    fn = constant_value(func_ir, expr.func)
    for name, fill in _FILLED.items():
        if fn is getattr(np, name):
            if not expr.args or not is_empty_tuple(func_ir, expr.args[0]):
                return None
            if len(expr.args) > 2 or any(k != "dtype" for k, _ in expr.kws):
                return None
            return name, fill
    if fn is np.array and len(expr.args) == 1 and not expr.kws:
        return "array", expr.args[0]
    return None


def dtype_of(ty) -> np.dtype | None:
    """The dtype of a 0-d array type, else ``None``."""
    if isinstance(ty, types.Array) and ty.ndim == 0:
        try:
            return np.dtype(as_dtype(ty.dtype))
        except Exception:
            return None
    return None


_COMPARISONS = {operator.lt, operator.le, operator.gt, operator.ge,
                operator.eq, operator.ne}


def _describe_call(func_ir: ir.FunctionIR, expr: ir.Expr) -> str:
    fn = constant_value(func_ir, expr.func)
    name = getattr(fn, "__name__", None) or getattr(getattr(fn, "py_func", None),
                                                     "__name__", None)
    return f"passed to '{name}'" if name else "passed to a call"


def classify(func_ir: ir.FunctionIR, du: DefUse, name: str, site: Site) -> Use:
    """What the statement at ``site`` does with the 0-d array ``name``."""
    stmt = site.stmt
    if isinstance(stmt, ir.Assign):
        value = stmt.value
        if isinstance(value, ir.Var):
            return Use(COPY, site)
        if isinstance(value, ir.Expr):
            op = value.op
            if op == "static_getitem" and value.value.name == name and value.index == ():
                return Use(LOAD, site)
            if (op == "getitem" and value.value.name == name
                    and value.index.name != name and is_empty_tuple(func_ir, value.index)):
                return Use(LOAD, site)
            if op == "getattr" and value.attr == "item":
                calls = []
                for use in du.uses.get(stmt.target.name, ()):
                    u = use.stmt
                    if not (isinstance(u, ir.Assign) and isinstance(u.value, ir.Expr)
                            and u.value.op == "call" and u.value.func.name == stmt.target.name
                            and not u.value.args and not u.value.kws
                            and not u.value.vararg and not u.value.varkwarg):
                        return Use(OTHER, site, "its 'item' method kept", "MethodKept")
                    calls.append(use)
                if len(du.defs.get(stmt.target.name, ())) != 1:
                    return Use(OTHER, site, "its 'item' method kept", "MethodKept")
                return Use(ITEM, site, calls=tuple(calls))
            if op == "getattr":
                return Use(OTHER, site, f"its attribute '{value.attr}' read",
                           "AttributeRead")
            if op == "call":
                fn = constant_value(func_ir, value.func)
                if (fn is bool and len(value.args) == 1 and not value.kws
                        and value.args[0].name == name):
                    return Use(TRUTH, site)
                return Use(OTHER, site, _describe_call(func_ir, value), "PassedToCall")
            if op == "binop" and value.fn in _COMPARISONS:
                return Use(COMPARE, site, f"operand of '{value.fn.__name__}'",
                           "ArrayOperand")
            if op in ("binop", "inplace_binop", "unary"):
                return Use(OTHER, site, "operand of an array operator", "ArrayOperand")
            if op in ("build_tuple", "build_list", "build_set", "build_map"):
                return Use(OTHER, site, f"put in a container ({op})", "InContainer")
            if op == "cast":
                return Use(OTHER, site, "returned", "Returned")
            return Use(OTHER, site, f"used by '{op}'", "OtherUse")
    if isinstance(stmt, (ir.StaticSetItem, ir.SetItem)):
        index = stmt.index if isinstance(stmt, ir.StaticSetItem) else stmt.index
        if stmt.target.name == name:
            if stmt.value.name != name and (
                    (isinstance(stmt, ir.StaticSetItem) and stmt.index == ())
                    or (isinstance(stmt, ir.SetItem) and index.name != name
                        and is_empty_tuple(func_ir, index))):
                return Use(STORE, site)
            return Use(OTHER, site, "indexed by a non-empty index", "IndexedStore")
        if stmt.value.name == name and getattr(index, "name", None) != name:
            return Use(STORED, site)
        return Use(OTHER, site, "used as an index", "OtherUse")
    if isinstance(stmt, ir.Return):
        return Use(OTHER, site, "returned", "Returned")
    if isinstance(stmt, ir.Branch):
        return Use(OTHER, site, "a branch condition", "OtherUse")
    return Use(OTHER, site, f"used by {type(stmt).__name__}", "OtherUse")
