"""Can an array's contents change?  Writes, aliases, escapes.

An array is *read-only here* when the function allocates it itself and every
use of it reads an element or a property: it is never written, never bound to
another name, viewed, stored, returned or passed to a call, so nothing can
write it through another route either.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
from numba.core import config, ir, types
from numba.core.ir_utils import find_callname, guard

from ..remarks import Missed
from ..runtime import opaque
from .defuse import DefUse, Site
from .loops import LoopForest
from .typing import TypeFacts

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
        return Missed("FlagReassigned", f"'{name}' is assigned {len(defs)} times "
                      f"(lines {where})", defs[-1].stmt.loc if defs else None, name=name,
                      assignments=len(defs))
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
            return Missed("FlagChanges", why, site.stmt.loc, name=name)
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

# --- The whitelist of calls ----------------------------------------------------
#
# One table for every pass, deny by default: a call not proven harmless here
# counts as writing every array it can reach, and as possibly raising.  Every
# function listed writes none of its arguments; each entry says what else is
# proven of it, for which use:
#
# ``TYPED``     harmless in typed IR (:func:`may_write_memory`, fuse-reduce);
# ``LOOP``      may run in a fused loop's body (:func:`call_effect`,
#               fuse-loops): a function of plain values, called without
#               keywords or an output argument;
# ``NO_RAISE``  raises nothing when every argument is a number.
#
# numpy's ufuncs called with their inputs only are harmless in typed IR
# whatever their name; in a fused loop, only those listed.  ``math``: every
# function, ``TYPED`` and ``LOOP`` (``math.sqrt(-1)`` raises).

TYPED, LOOP, NO_RAISE = "typed", "loop", "no-raise"


def _entries(names: str, *uses: str) -> dict[str, frozenset[str]]:
    return dict.fromkeys(names.split(), frozenset(uses))


#: module -> function name -> what it is proven harmless for.
CALLS: dict[str, dict[str, frozenset[str]]] = {
    "builtins": {
        **_entries("abs min max float int bool round complex", TYPED, LOOP, NO_RAISE),
        # pow(0, -1) and range(0, 4, 0) raise; len never raises (see call_effect).
        **_entries("len pow range", TYPED, LOOP),
        **_entries("divmod print", TYPED),
    },
    "numpy": {
        # ufuncs
        **_entries("sqrt exp exp2 expm1 log log2 log10 log1p sin cos tan arcsin arccos "
                   "arctan arctan2 sinh cosh tanh abs absolute fabs floor ceil trunc "
                   "rint sign power hypot maximum minimum fmax fmin isnan isinf "
                   "isfinite square cbrt conj conjugate add subtract multiply negative",
                   TYPED, LOOP, NO_RAISE),
        # scalar types
        **_entries("float64 float32 int64 int32 int8 int16 uint8 uint64 bool_ complex128",
                   TYPED, LOOP, NO_RAISE),
        **_entries("uint32 uint16 complex64 intp", TYPED),
        # np.real and np.imag are views of an array: proven only for loop bodies.
        **_entries("real imag", LOOP, NO_RAISE),
        **_entries("sum prod mean min max amin amax any all argmin argmax std var median "
                   "cumsum cumprod dot where sort argsort ravel reshape transpose linspace "
                   "asarray isclose allclose array_equal count_nonzero nansum nanmax "
                   "nanmin nanmean shape size ndim", TYPED),
    },
}


def known_call(module: str | None, name: str, use: str) -> bool:
    """Whether ``module.name`` is on the whitelist for ``use`` (``TYPED``,
    ``LOOP`` or ``NO_RAISE``)."""
    if module == "math":
        return use != NO_RAISE
    return use in CALLS.get(module or "", {}).get(name, ())


#: numpy functions (not ufuncs) that write none of their arguments.
PURE_NUMPY_FUNCTIONS = FRESH_ALLOCATORS | frozenset(
    name for name, uses in CALLS["numpy"].items() if TYPED in uses)

#: builtins that write none of their arguments.
PURE_BUILTINS = frozenset(name for name, uses in CALLS["builtins"].items() if TYPED in uses)


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
        return known_call(module, fn, TYPED)
    if module == "builtins":
        return known_call(module, fn, TYPED) and not value.kws
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


# --- What a block of untyped IR may do ----------------------------------------
#
# The same rule for untyped IR, with the types of a partial inference
# (TypeFacts): a construct is harmless only if it is on the whitelist, and
# what is known of it says whether it may raise.  Used by fuse-loops on the
# bodies of two loops it would fuse.


@dataclass(frozen=True)
class Denied:
    """Why a construct is not proven harmless: the message names it and its
    line; ``ufunc_output`` when it is a ufunc given an output array."""

    message: str
    loc: ir.Loc
    ufunc_output: bool = False


#: Builtins that raise nothing on numbers (``bool(x > y)`` is how a ``while``
#: test calls one); ``pow(0, -1)``, ``range(0, 4, 0)`` and ``len`` of a
#: container are left out (``len`` never raises at all).
SCALAR_SAFE = frozenset(name for name, uses in CALLS["builtins"].items() if NO_RAISE in uses)

#: Types whose values run no user code when operated on, indexed, compared,
#: iterated or passed to a whitelisted call (a jitclass may define
#: ``__add__``, ``__len__``, properties ...).
_PLAIN = (types.Number, types.Boolean, types.Array, types.BaseTuple, types.List,
          types.UnicodeType, types.RangeType, types.NoneType)

#: Objects whose attributes are data or methods, never code run on access.
_PLAIN_ATTRIBUTE_OWNERS = _PLAIN + (types.Module, types.NumberClass, types.Record)

#: Iterators that always come to an end, running no user code.
_FINITE_ITERATORS = (types.RangeIteratorType, types.ArrayIterator, types.ListIter,
                     types.UniTupleIter)

#: Operators that raise ZeroDivisionError under error_model='python'.
DIVIDING = {operator.truediv, operator.floordiv, operator.mod, operator.pow,
            operator.itruediv, operator.ifloordiv, operator.imod, operator.ipow}


@dataclass
class Effects:
    """What one loop body reads, writes, calls, shows and may raise.

    Deny by default: a construct is harmless only if it is on a whitelist
    (:func:`expr_effect`); anything else makes the loop :attr:`impure` (a
    write to every array it can reach, which may raise).  What a loop may
    contain is: assignments to local names, stores ``x[k] = v`` (which
    fuse-loops then requires to be
    into arrays the function allocates, at the loop index), whitelisted
    expressions and calls, and ``print`` of scalars and strings -- the one
    effect the caller sees (:attr:`visible`)."""

    assigned: set
    used: set
    reads: list
    """(array name, index var name or None, stmt, label) for each array read."""
    writes: list
    raises: tuple | None = None
    """(what, loc) of the first construct that may raise, or not finish."""
    visible: tuple | None = None
    """(what, loc) of the first effect the caller sees even after an
    exception: a ``print``."""
    impure: Denied | None = None
    """Why the body is not proven harmless: its first construct off the
    whitelist."""

    @property
    def may_raise(self) -> bool:
        return self.raises is not None

    def raise_at(self, what: str, loc) -> None:
        if self.raises is None:
            self.raises = (what, loc)


def body_effects(func_ir, body, du: DefUse, facts: TypeFacts, flags,
                 forest: LoopForest | None = None, header: int | None = None,
                 control: frozenset[int] = frozenset()) -> Effects:
    """The effects of the blocks ``body`` (labels), untyped IR with ``facts``
    for types; ``control`` holds the ids of statements to skip (a loop's
    own test).  With ``forest``, a loop inside ``body`` other than the one
    headed by ``header`` that may not finish counts as raising."""
    blocks = func_ir.blocks
    eff = Effects(set(), set(), [], [])
    for label in sorted(body):
        block = blocks[label]
        for stmt in block.body:
            if id(stmt) in control:
                continue
            if isinstance(stmt, ir.Assign):
                eff.assigned.add(stmt.target.name)
                value = stmt.value
                if isinstance(value, ir.Var):
                    eff.used.add(value.name)
                    continue
                if isinstance(value, (ir.Const, ir.Global, ir.FreeVar, ir.Arg)):
                    continue
                if not isinstance(value, ir.Expr):
                    eff.impure = eff.impure or _side_effects(stmt)
                    continue
                eff.used.update(v.name for v in value.list_vars())
                if value.op in ("getitem", "static_getitem", "typed_getitem"):
                    index = value.index.name if value.op != "static_getitem" else None
                    eff.reads.append((value.value.name, index, stmt, label))
                why, raises = expr_effect(func_ir, du, facts, flags, value, stmt)
                eff.impure = eff.impure or why
                if raises is not None:
                    eff.raise_at(raises, stmt.loc)
            elif isinstance(stmt, (ir.SetItem, ir.StaticSetItem)):
                eff.used.update(v.name for v in stmt.list_vars())
                index = stmt.index.name if isinstance(stmt, ir.SetItem) else None
                eff.writes.append((stmt.target.name, index, stmt, label))
                if store_may_raise(facts, stmt, flags):
                    eff.raise_at(f"the store into '{stmt.target.name}'", stmt.loc)
            elif isinstance(stmt, (ir.Jump, ir.Branch)):
                eff.used.update(v.name for v in stmt.list_vars())
            elif isinstance(stmt, (ir.Raise, ir.StaticRaise, ir.DynamicRaise)):
                eff.used.update(v.name for v in stmt.list_vars())
                eff.raise_at("a raise statement", stmt.loc)
            elif isinstance(stmt, ir.Print) and stmt.vararg is None and all(
                    isinstance(facts.of(v.name), (types.Number, types.Boolean,
                                                  types.UnicodeType))
                    for v in stmt.args):
                eff.used.update(v.name for v in stmt.list_vars())
                if eff.visible is None:
                    eff.visible = ("prints", stmt.loc)
            else:
                eff.impure = eff.impure or _side_effects(stmt)
    if forest is not None:
        headers = _loop_headers(forest)
        for label in sorted(set(body) - {header}):
            if label in headers and not finite_loop(blocks[label], facts):
                eff.raise_at("a loop that may not finish", blocks[label].loc)
    return eff


def _loop_headers(forest: LoopForest) -> frozenset[int]:
    """The forest's loop headers, found once per forest (a round looks at
    every pair's bodies; scanning every loop for each made it quadratic)."""
    headers = forest.__dict__.get("_fuse_loops_headers")
    if headers is None:
        headers = forest.__dict__["_fuse_loops_headers"] = frozenset(
            lp.header for lp in forest.loops)
    return headers


def _side_effects(stmt) -> Denied:
    return Denied(f"'{stmt}' at line {stmt.loc.line} has side effects",
                  stmt.loc)


def finite_loop(header: ir.Block, facts: TypeFacts) -> bool:
    """Whether an inner loop surely ends: a ``for`` over a range, an array, a
    list or a tuple.  Any other loop may run forever, which is observable as
    an exception is (the other loop's effects are cut short, or its
    exception never comes)."""
    return any(isinstance(s, ir.Assign) and isinstance(s.value, ir.Expr)
               and s.value.op == "iternext"
               and isinstance(facts.of(s.value.value.name), _FINITE_ITERATORS)
               for s in header.body)


def _scalar(ty) -> bool:
    return isinstance(ty, (types.Number, types.Boolean))


def _plain(ty) -> bool:
    """Whether values of ``ty`` run no user code when used (see _PLAIN)."""
    if isinstance(ty, types.BaseTuple):
        return all(_plain(t) for t in ty.types)
    if isinstance(ty, types.List):
        return _plain(ty.dtype)
    return isinstance(ty, _PLAIN)


def store_may_raise(facts: TypeFacts, stmt, flags) -> bool:
    """A store raises nothing only if it puts a scalar into an array at an
    integer index, unchecked."""
    target = facts.of(stmt.target.name)
    index = (facts.of(stmt.index.name) if isinstance(stmt, ir.SetItem)
             else types.intp if isinstance(stmt.index, int) else None)
    return (boundscheck_on(flags) or not isinstance(target, types.Array)
            or not isinstance(index, types.Integer)
            or not _scalar(facts.of(stmt.value.name)))


def expr_effect(func_ir, du: DefUse, facts: TypeFacts, flags, value: ir.Expr,
                 stmt) -> tuple[Missed | None, str | None]:
    """``(why it is refused, what may raise)`` for one expression: ``why``
    is None when the expression writes nothing and has no other effect,
    ``what`` is None when it surely raises nothing.  A whitelist: any other
    operation is refused."""
    op, line = value.op, stmt.loc.line
    if op in ("getitem", "static_getitem", "typed_getitem"):
        base = facts.of(value.value.name)
        index = (facts.of(value.index.name) if op != "static_getitem"
                 else types.intp if isinstance(value.index, int) else None)
        if not _plain(base):
            return Denied(f"indexing '{value.value.name}' ({base}) at line "
                          f"{line} may run code", stmt.loc), "indexing"
        if isinstance(base, types.Array) and isinstance(index, types.Integer) \
                and not boundscheck_on(flags):
            return None, None
        return None, f"indexing '{value.value.name}'"
    if op in ("binop", "inplace_binop", "unary"):
        operands = [value.value] if op == "unary" else [value.lhs, value.rhs]
        tys = [facts.of(v.name) for v in operands]
        if op == "inplace_binop" and not _scalar(tys[0]):
            # 'x += y' on an array, a list, a set ... writes x in place.
            return Denied(f"'{value.lhs.name}' is updated in place at "
                          f"line {line}", stmt.loc), "an in-place operator"
        if not all(_plain(t) for t in tys):
            return Denied(f"an operator at line {line} applies to "
                          f"{', '.join(str(t) for t in tys)}, which may run code",
                          stmt.loc), "an operator"
        if not all(_scalar(t) for t in tys):
            return None, "an operator on arrays or containers"  # shapes, allocation
        if op != "unary" and value.fn in DIVIDING and flags.error_model == "python":
            return None, "a division"
        return None, None
    if op == "call":
        return call_effect(func_ir, du, facts, value, stmt)
    if op == "getattr":
        owner = facts.of(value.value.name)
        if isinstance(owner, _PLAIN_ATTRIBUTE_OWNERS):
            return None, None
        return Denied(f"the attribute '{value.attr}' of "
                      f"'{value.value.name}' ({owner}) at line {line} may run code",
                      stmt.loc), "an attribute"
    if op == "getiter":
        if isinstance(facts.of(value.value.name), (types.RangeType, types.Array,
                                                   types.List, types.UniTuple)):
            return None, None
    elif op == "iternext":
        if isinstance(facts.of(value.value.name), _FINITE_ITERATORS):
            return None, None
    elif op in ("pair_first", "pair_second", "build_tuple", "cast", "phi"):
        return None, None
    elif op in ("build_list", "build_set", "build_map"):
        return None, "an allocation"
    elif op == "exhaust_iter":
        if isinstance(facts.of(value.value.name), types.BaseTuple):
            return None, None
        return None, "unpacking"
    return _side_effects(stmt), f"'{op}'"


def call_effect(func_ir, du: DefUse, facts: TypeFacts, call: ir.Expr,
                 stmt) -> tuple[Missed | None, str | None]:
    """A call is harmless only if it calls a whitelisted function
    (:data:`CALLS`, ``LOOP``) on plain values, with no output argument: numpy's
    ufuncs write the array given after their inputs (``np.sqrt(x, m)``,
    ``np.maximum(a, b, m)``, ``out=m``), a method may write its object, any
    other function anything its arguments reach.  Only numpy's functions on
    scalars (IEEE arithmetic) and ``len`` surely raise nothing."""
    line = stmt.loc.line
    if du.global_value(call.func) is opaque:
        return None, None  # a contracted value of an earlier fusion
    name = guard(find_callname, func_ir, call)
    module = name[1] if name and isinstance(name[1], str) else None
    shown = f"{module}.{name[0]}" if module else "a call"
    func = getattr(np, name[0], None) if module == "numpy" else None
    kws = [k for k, _ in call.kws]
    if isinstance(func, np.ufunc) and (len(call.args) > func.nin or "out" in kws):
        where = ("the keyword 'out'" if "out" in kws else
                 f"argument {func.nin + 1} ('{call.args[func.nin].name}')")
        return Denied(f"{shown} at line {line} is given an output array "
                      f"({where}): it writes that array, which the pass does not "
                      "follow", stmt.loc, ufunc_output=True), "a call"
    if module is None or not known_call(module, name[0], LOOP):
        return Denied(f"{shown} at line {line} may have side effects",
                      stmt.loc), "a call"
    if kws or call.vararg is not None or (module == "numpy" and func is not None
                                          and not isinstance(func, np.ufunc)
                                          and len(call.args) > 1):
        return Denied(f"{shown} at line {line} is called with arguments "
                      "the pass does not know to be harmless", stmt.loc), "a call"
    tys = [facts.of(v.name) for v in call.args]
    if not all(_plain(t) for t in tys):
        return Denied(f"{shown} at line {line} is given "
                      f"{', '.join(str(t) for t in tys)}, which may run code",
                      stmt.loc), "a call"
    if module == "builtins" and name[0] == "len":
        return None, None
    if all(_scalar(t) for t in tys) and known_call(module, name[0], NO_RAISE):
        return None, None
    return None, f"{shown}"


def boundscheck_on(flags) -> bool:
    """Whether indexing is bounds-checked: NUMBA_BOUNDSCHECK overrides the flag."""
    if config.BOUNDSCHECK is not None:
        return bool(config.BOUNDSCHECK)
    return bool(flags.boundscheck)
