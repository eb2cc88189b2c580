"""Finding fuse-reduce's candidates and matching them: read-only.

:func:`find_reductions` lists the reductions of arrays in a function;
:func:`match` checks one array and its reductions and returns a frozen
:class:`FusionPlan`, or a :class:`~numba_loopopt.remarks.Missed` saying why
not.  Neither changes the IR, the type map or its arguments.

Missed keys, one per reason (documented in ``docs/passes/fuse_reduce.rst``):
``SourceReassigned``, ``UnsupportedElementType``, ``NotCContiguous``,
``OperandRankMismatch``, ``UnsupportedOperand``, ``NotExpressionOrGather``,
``ReductionElsewhere``, ``SourceRewritten``, ``IntermediateEscapes``,
``InputMayBeWritten``, ``AxisNotSupported``, ``ReductionResultNotScalar``,
``ComplexArgExtreme``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from numba.core import ir, types
from numba.core.ir_utils import find_callname, guard

from ...analysis.defuse import DefUse, Site
from ...analysis.effects import may_write_memory
from ...remarks import Missed

#: Reductions fused, by the names numba's ``find_callname`` gives them.
KINDS = {"sum": "sum", "prod": "prod", "mean": "mean", "min": "min", "amin": "min",
         "max": "max", "amax": "max", "any": "any", "all": "all", "argmin": "argmin",
         "argmax": "argmax"}

#: Element dtypes fused: booleans, integers, floats and complex numbers.
ELEMENT_TYPES = (types.Boolean, types.Integer, types.Float, types.Complex)


def element_family(dtype) -> str:
    """How numba's reductions treat an element type: floats test for NaN,
    complex numbers compare lexicographically, the rest compare plainly."""
    if isinstance(dtype, types.Float):
        return "float"
    if isinstance(dtype, types.Complex):
        return "complex"
    return "plain"


@dataclass(frozen=True, eq=False)
class Reduction:
    """A reduction's statement, its kind (a value of :data:`KINDS`), its
    position in its block when it was found, and the ``axis`` of a ``sum``
    along an axis (as written; in a :class:`FusionPlan`, 0 or 1)."""

    stmt: ir.Assign
    kind: str
    index: int
    axis: int | None = None

    @property
    def code(self) -> str:
        """The kind, with the axis of an axis reduction: ``sum@0``."""
        return self.kind if self.axis is None else f"{self.kind}@{self.axis}"

    def describe(self) -> str:
        return self.kind if self.axis is None else f"{self.kind}(axis={self.axis})"


@dataclass(frozen=True, eq=False)
class FusionPlan:
    """A fusable array and its reductions, as :func:`match` found them."""

    source: str
    """The reduced array's name."""
    kind: str
    """``"arrayexpr"`` or ``"gather"``."""
    site: Site
    """Where the array is computed (its only definition)."""
    reductions: tuple[Reduction, ...]
    """In program order, each ``axis`` normalised to 0 or 1."""
    escapes: bool
    """Whether the array is also used otherwise: the kernel then builds it."""
    array_type: types.Array
    """The reduced array's type."""
    operands: tuple[str, ...]
    """The kernel's arguments: the expression's variables
    (:func:`element_operands`), or the gathered array and the index array."""

    @property
    def value(self) -> ir.Expr:
        """The ``arrayexpr`` or ``getitem`` expression."""
        return self.site.stmt.value

    def describe(self) -> str:
        """The reductions, for remarks: ``sum, max(axis=1)``."""
        return ", ".join(r.describe() for r in self.reductions)


def element_operands(expr: ir.Expr) -> tuple[str, ...]:
    """The variables of an ``arrayexpr``, in the order its element function
    takes them."""
    return tuple(var.name for var in sorted(set(expr.list_vars()), key=lambda v: v.name))


def _literal_int(func_ir, typemap, var: ir.Var):
    ty = typemap.get(var.name)
    if isinstance(ty, types.IntegerLiteral):
        return ty.literal_value
    value = guard(func_ir.get_definition, var)
    if isinstance(value, (ir.Const, ir.Global, ir.FreeVar)) and isinstance(
            value.value, int) and not isinstance(value.value, bool):
        return value.value
    return None


def find_reductions(func_ir, typemap) -> dict[str, list]:
    """Reductions of arrays: ``{array name: [(label, Reduction)]}``, in
    program order.  Only ``sum`` may take an argument: a constant ``axis``."""
    found: dict[str, list] = {}
    for label, block in func_ir.blocks.items():
        for index, stmt in enumerate(block.body):
            if not (isinstance(stmt, ir.Assign) and isinstance(stmt.value, ir.Expr)
                    and stmt.value.op == "call" and stmt.value.vararg is None
                    and stmt.value.varkwarg is None):
                continue
            name = guard(find_callname, func_ir, stmt.value, typemap)
            if name is None or name[0] not in KINDS:
                continue
            call = stmt.value
            if name[1] == "numpy" and call.args:
                source, rest = call.args[0], list(call.args[1:])
            elif isinstance(name[1], ir.Var):
                source, rest = name[1], list(call.args)
            else:
                continue
            kws = dict(call.kws)
            axis = None
            if rest or kws:
                if KINDS[name[0]] != "sum" or len(rest) + len(kws) != 1 or (
                        kws and "axis" not in kws):
                    continue
                axis = _literal_int(func_ir, typemap, rest[0] if rest else kws["axis"])
                if axis is None:
                    continue
            if isinstance(typemap.get(source.name), types.Array):
                found.setdefault(source.name, []).append(
                    (label, Reduction(stmt, KINDS[name[0]], index, axis)))
    return found


def _is_gather(typemap, value) -> bool:
    x, idx = typemap[value.value.name], typemap[value.index.name]
    return (isinstance(x, types.Array) and x.ndim == 1
            and isinstance(x.dtype, ELEMENT_TYPES)
            and isinstance(idx, types.Array) and isinstance(idx.dtype, types.Integer))


def match(func_ir, du: DefUse, typemap, source: str, reductions) -> FusionPlan | Missed:
    """A :class:`FusionPlan` for array ``source`` and its ``reductions``
    (``[(label, Reduction)]``, from :func:`find_reductions`), or why they
    cannot be fused.  Changes nothing."""
    first = reductions[0][1].stmt
    sites = du.defs.get(source, ())
    if len(sites) != 1:
        return Missed("SourceReassigned", f"'{source}' is assigned more than once",
                      first.loc, array=source)
    site = sites[0]
    value = site.stmt.value
    ty = typemap[source]
    unsupported = (f"the reduced array has type {ty}; only 1-D or C-ordered arrays of "
                   "booleans and numbers are fused")
    if not (isinstance(ty, types.Array) and isinstance(ty.dtype, ELEMENT_TYPES)):
        return Missed("UnsupportedElementType", unsupported, first.loc, array=source,
                      type=str(ty))
    if not (ty.ndim == 1 or ty.layout == "C"):
        return Missed("NotCContiguous", unsupported, first.loc, array=source, type=str(ty))
    if isinstance(value, ir.Expr) and value.op == "arrayexpr":
        for var in value.list_vars():
            vty = typemap[var.name]
            if isinstance(vty, types.Array) and (vty.ndim > ty.ndim or (
                    ty.ndim == 1 and vty.ndim != 1)):
                return Missed("OperandRankMismatch", f"operand '{var.name}' is "
                              f"{vty.ndim}-D and the expression {ty.ndim}-D", first.loc,
                              operand=var.name, operand_ndim=vty.ndim, ndim=ty.ndim)
            if not isinstance(vty, (types.Array, types.Number, types.Boolean)):
                return Missed("UnsupportedOperand", f"operand '{var.name}' has type {vty}",
                              first.loc, operand=var.name, type=str(vty))
        kind, operands = "arrayexpr", element_operands(value)
    elif isinstance(value, ir.Expr) and value.op == "getitem" \
            and _is_gather(typemap, value) \
            and ty.ndim == typemap[value.index.name].ndim:
        kind, operands = "gather", (value.value.name, value.index.name)
    else:
        return Missed("NotExpressionOrGather", "the reduced array is not an elementwise "
                      "expression or a gather", first.loc, array=source)
    if any(label != site.label for label, _ in reductions):
        return Missed("ReductionElsewhere", "a reduction is in another block than the "
                      "expression", first.loc, array=source)
    block = func_ir.blocks[site.label]
    reds = {id(r.stmt) for _, r in reductions}
    # Where the expression and the reductions are now: an earlier fusion in
    # this block has moved them (find_reductions' indices, and the def-use
    # facts' if they were built before it, are from before).
    at = {id(stmt): k for k, stmt in enumerate(block.body)}
    if id(site.stmt) not in at or not reds <= at.keys():
        return Missed("SourceRewritten", "the expression or a reduction was rewritten",
                      first.loc, array=source)
    start, last = at[id(site.stmt)], max(at[r] for r in reds)
    escapes = None
    for use in du.uses.get(source, ()):
        stmt = use.stmt
        if id(stmt) in reds:
            continue
        if isinstance(stmt, ir.Assign) and isinstance(stmt.value, ir.Expr) \
                and stmt.value.op == "getattr" and stmt.target.name in {
                    r.stmt.value.func.name for _, r in reductions}:
            continue
        escapes = escapes or stmt
    if escapes is not None and ty != types.Array(ty.dtype, ty.ndim, "C"):
        return Missed("IntermediateEscapes", f"'{source}' is also used at line "
                      f"{escapes.loc.line} and has type {ty}, which the fused loop "
                      "does not build", escapes.loc, array=source, line=escapes.loc.line,
                      type=str(ty))
    # The kernel reads the operands where the expression was, as stock
    # numba does, and the reductions' values are used where they were: what
    # happens to the operands in between cannot change them.  But an array
    # that escapes is materialised there, and stock's reductions read it
    # later: nothing in between may write it, through any alias.  Deny by
    # default: only statements proven to write no array's memory may be
    # there.  (What they raise, print or append is kept in order: the kernel
    # raises only what the expression raises, and a min/max/argmin/argmax of
    # no elements raises at its own statement.)
    for stmt in block.body[start + 1:last] if escapes is not None else ():
        if id(stmt) in reds:
            continue
        why = may_write_memory(func_ir, stmt, typemap)
        if why is not None:
            return Missed("InputMayBeWritten", f"{why} runs between the expression and "
                          f"its reductions and may write '{source}', which is also used "
                          f"at line {escapes.loc.line}", stmt.loc, array=source,
                          statement=why, line=escapes.loc.line)
    planned = []
    for _, r in reductions:
        rty = typemap[r.stmt.target.name]
        if r.axis is not None:
            if not (kind == "arrayexpr" and ty.ndim == 2 and -2 <= r.axis < 2
                    and rty == types.Array(rty.dtype, 1, "C")):
                return Missed("AxisNotSupported", f"{r.describe()} is fused only for "
                              "2-D expressions and axis 0 or 1", r.stmt.loc,
                              reduction=r.describe(), ndim=ty.ndim)
            planned.append(replace(r, axis=r.axis % 2))
            continue
        if not isinstance(rty, ELEMENT_TYPES):
            return Missed("ReductionResultNotScalar", f"{r.kind} returns {rty}", r.stmt.loc,
                          reduction=r.kind, type=str(rty))
        if r.kind in ("argmin", "argmax") and isinstance(ty.dtype, types.Complex):
            return Missed("ComplexArgExtreme", f"{r.kind} of complex numbers is not "
                          "fused", r.stmt.loc, reduction=r.kind)
        planned.append(r)
    return FusionPlan(source, kind, site, tuple(sorted(planned, key=lambda r: r.index)),
                      escapes is not None, ty, operands)
