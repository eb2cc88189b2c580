"""Fuse an elementwise array expression (or a gather) into its reductions.

Stock numba materialises ``a*b + c`` into a new array and then sums it: an 80
MB temporary at 1e7 elements.  After numba's own ``nopython_rewrites`` has
built the ``arrayexpr`` tree, this typed pass replaces the expression and its
reductions by one call to a generated kernel that computes each element once
and feeds every reduction of it, with no temporary.

Legal when, all checked before any edit (else a missed remark):

* the reduced array is a 1-D ``float64`` ``arrayexpr`` whose array operands are
  1-D, or a gather ``x[idx]`` of a 1-D ``float64`` array by a 1-D integer array;
* it is used only by reductions (``sum``, ``prod``, ``mean``, ``min``, ``max``;
  functions or methods, no ``axis``), all in the block that computes it,
  with nothing in between that could write an operand (no stores, no calls);

Exactness: the element is computed by the very scalar kernel numba's
array-expression lowering builds (``_arr_expr_to_ast``, compiled with
``error_model='numpy'`` and cast to the output dtype), in the same order, and
each reduction repeats numba's own loop: sequential accumulation from index 0,
the first NaN wins for ``min``/``max``, ``ValueError`` on an empty ``min``/
``max``, NaN for an empty ``mean``, the broadcast ``ValueError``.  So results
are bit-identical to stock numba (with ``fastmath`` both may reassociate).
"""

from __future__ import annotations

import ast
import threading

import numba
import numpy as np
from numba.core import ir, types
from numba.core.compiler_machinery import register_pass
from numba.core.ir_utils import build_definitions, find_callname, guard
from numba.np.ufunc.array_exprs import (
    _arr_expr_to_ast,
    _fix_invalid_lineno_ranges,
    _legalize_parameter_names,
)

from ..analysis.defuse import DefUse
from ..irbuild import fresh, with_body
from ..pipeline import LoopOptPass
from ..remarks import Missed, RemarkEmitter

PASS = "fuse-reduce"

#: Reductions fused, by the names numba's ``find_callname`` gives them.
KINDS = {"sum": "sum", "prod": "prod", "mean": "mean", "min": "min", "amin": "min",
         "max": "max", "amax": "max"}


class Reduction:
    __slots__ = ("stmt", "kind", "index")

    def __init__(self, stmt, kind, index):
        self.stmt, self.kind, self.index = stmt, kind, index


def find_reductions(func_ir, typemap) -> dict[str, list]:
    """Reductions of arrays: ``{array name: [(label, Reduction)]}``."""
    found: dict[str, list] = {}
    for label, block in func_ir.blocks.items():
        for index, stmt in enumerate(block.body):
            if not (isinstance(stmt, ir.Assign) and isinstance(stmt.value, ir.Expr)
                    and stmt.value.op == "call" and not stmt.value.kws
                    and stmt.value.vararg is None):
                continue
            name = guard(find_callname, func_ir, stmt.value, typemap)
            if name is None or name[0] not in KINDS:
                continue
            if name[1] == "numpy" and len(stmt.value.args) == 1:
                source = stmt.value.args[0]
            elif isinstance(name[1], ir.Var) and not stmt.value.args:
                source = name[1]
            else:
                continue
            if isinstance(typemap.get(source.name), types.Array):
                found.setdefault(source.name, []).append(
                    (label, Reduction(stmt, KINDS[name[0]], index)))
    return found


def match(func_ir, du: DefUse, typemap, source: str, reductions) -> tuple | Missed:
    """``(kind, definition, label)`` of a fusable source, or why not."""
    first = reductions[0][1].stmt
    sites = du.defs.get(source, ())
    if len(sites) != 1:
        return Missed("SourceNotFusable", f"'{source}' is assigned more than once",
                      first.loc)
    site = sites[0]
    value = site.stmt.value
    ty = typemap[source]
    if not (isinstance(ty, types.Array) and ty.ndim == 1 and ty.dtype == types.float64):
        return Missed("SourceNotFusable", f"the reduced array has type {ty}; only 1-D "
                      "float64 expressions are fused so far", first.loc)
    if isinstance(value, ir.Expr) and value.op == "arrayexpr":
        for var in value.list_vars():
            vty = typemap[var.name]
            if isinstance(vty, types.Array) and vty.ndim != 1:
                return Missed("SourceNotFusable", f"operand '{var.name}' is {vty.ndim}-D",
                              first.loc)
            if not isinstance(vty, (types.Array, types.Number, types.Boolean)):
                return Missed("SourceNotFusable", f"operand '{var.name}' has type {vty}",
                              first.loc)
        kind = "arrayexpr"
    elif isinstance(value, ir.Expr) and value.op == "getitem" and _is_gather(typemap, value):
        kind = "gather"
    else:
        return Missed("SourceNotFusable", "the reduced array is not an elementwise "
                      "expression or a gather", first.loc)
    if any(label != site.label for label, _ in reductions):
        return Missed("ReductionElsewhere", "a reduction is in another block than the "
                      "expression", first.loc)
    block = func_ir.blocks[site.label]
    reds = {id(r.stmt) for _, r in reductions}
    last = max(r.index for _, r in reductions)
    for use in du.uses.get(source, ()):
        stmt = use.stmt
        if id(stmt) in reds:
            continue
        if isinstance(stmt, ir.Assign) and isinstance(stmt.value, ir.Expr) \
                and stmt.value.op == "getattr" and stmt.target.name in {
                    r.stmt.value.func.name for _, r in reductions}:
            continue
        return Missed("IntermediateEscapes", f"'{source}' is also used at line "
                      f"{stmt.loc.line}, so it must be materialised", stmt.loc)
    for stmt in block.body[site.index + 1:last]:
        if id(stmt) in reds:
            continue
        if isinstance(stmt, (ir.SetItem, ir.StaticSetItem, ir.SetAttr)) or (
                isinstance(stmt, ir.Assign) and isinstance(stmt.value, ir.Expr)
                and stmt.value.op == "call"):
            return Missed("InputMayBeWritten", f"line {stmt.loc.line} runs between the "
                          "expression and its reductions and may write an operand",
                          stmt.loc)
    for _, r in reductions:
        if typemap[r.stmt.target.name] != types.float64:
            return Missed("SourceNotFusable", f"{r.kind} returns "
                          f"{typemap[r.stmt.target.name]}", r.stmt.loc)
    return kind, value, site


def _is_gather(typemap, value) -> bool:
    x, idx = typemap[value.value.name], typemap[value.index.name]
    return (isinstance(x, types.Array) and x.ndim == 1 and x.dtype == types.float64
            and isinstance(idx, types.Array) and idx.ndim == 1
            and isinstance(idx.dtype, types.Integer))


def element_kernel(expr: ir.Expr, fastmath):
    """numba's own scalar kernel for an ``arrayexpr`` (as its lowering builds
    it), and the variables it takes, in order."""
    params = sorted(set(expr.list_vars()), key=lambda var: var.name)
    names = [var.name for var in params]
    with _legalize_parameter_names(params) as legal:
        module = ast.parse("def _element(): return", "<numba_loopopt>", "exec")
        module.body[0].args.args = [ast.arg(p, None) for p in legal]
        module.body[0].body[0].value, namespace = _arr_expr_to_ast(expr.expr)
        _fix_invalid_lineno_ranges(module)
    exec(compile(module, "<numba_loopopt>", "exec"), namespace)
    return numba.njit(error_model="numpy", fastmath=fastmath)(namespace["_element"]), names


_UPDATES = {
    "sum": ("{r} = 0.0", "{r} += v"),
    "mean": ("{r} = 0.0", "{r} += v"),
    "prod": ("{r} = 1.0", "{r} *= v"),
}
_EMPTY = {"min": "minimum", "max": "maximum"}


def kernel_source(kinds: list[str], array_args: list[bool], gather: bool) -> str:
    """Python source of the fused loop for reductions ``kinds``."""
    n_args = 2 if gather else len(array_args)
    args = [f"a{k}" for k in range(n_args)]
    lines = [f"def _fused({', '.join(args)}):"]
    if gather:
        lines.append("    n = a1.shape[0]")
        loops = [("True", lambda i: f"_OUT(a0[a1[{i}]])")]
    else:
        lines.append("    n = -1")
        arrays = [k for k, is_array in enumerate(array_args) if is_array]
        for k in arrays:
            lines += [f"    L{k} = a{k}.shape[0]",
                      f"    if L{k} != 1:",
                      "        if n == -1:",
                      f"            n = L{k}",
                      f"        elif L{k} != n:",
                      "            raise ValueError('unable to broadcast argument to "
                      "output array')"]
        lines.append("    if n == -1:\n        n = 1")
        same = " and ".join(f"L{k} == n" for k in arrays)

        def plain(i):
            return "_OUT(_element({}))".format(", ".join(
                f"a{k}[{i}]" if array_args[k] else f"a{k}" for k in range(n_args)))

        def wrapped(i):
            return "_OUT(_element({}))".format(", ".join(
                f"a{k}[{i} if L{k} != 1 else 0]" if array_args[k] else f"a{k}"
                for k in range(n_args)))

        loops = [(same, plain), ("True", wrapped)]
    first_extreme = next((k for k in kinds if k in _EMPTY), None)
    if first_extreme:
        lines += ["    if n == 0:",
                  "        raise ValueError('zero-size array to reduction operation "
                  f"{_EMPTY[first_extreme]} which has no identity')"]
    body = []
    for j, kind in enumerate(kinds):
        r = f"r{j}"
        if kind in _UPDATES:
            init, update = _UPDATES[kind]
            lines.append("    " + init.format(r=r))
            body.append(update.format(r=r))
        else:
            # A NaN ends the scan: the first NaN wins, as in numba.
            cmp = "<" if kind == "min" else ">"
            lines += [f"    {r} = 0.0", f"    d{j} = False"]
            body.append(f"if not d{j}:\n    if np.isnan(v):\n        {r} = v\n"
                        f"        d{j} = True\n    elif v {cmp} {r}:\n        {r} = v")
    extremes = [j for j, kind in enumerate(kinds) if kind not in _UPDATES]
    for index, (cond, element) in enumerate(loops):
        lines.append(f"    if {cond}:" if index == 0 else "    else:")
        start = "0"
        if extremes:
            # Peel the first element (n > 0 here: an empty min/max raised):
            # it starts every scan, as in numba's min/max.
            lines.append(f"        v = {element('0')}")
            for j in range(len(kinds)):
                if j in extremes:
                    lines += [f"        r{j} = v", f"        d{j} = np.isnan(v)"]
                else:
                    lines += ["        " + line for line in body[j].split("\n")]
            start = "1"
        lines += [f"        for i in range({start}, n):", f"            v = {element('i')}"]
        for update in body:
            lines += ["            " + line for line in update.split("\n")]
    for j, kind in enumerate(kinds):
        if kind == "mean":
            lines.append(f"    r{j} = np.nan if n == 0 else np.float64(r{j} / n)")
    results = ", ".join(f"r{j}" for j in range(len(kinds)))
    lines.append(f"    return {results}" + ("," if len(kinds) > 1 else ""))
    return "\n".join(lines) + "\n"


_KERNELS: dict = {}
_KERNELS_LOCK = threading.Lock()


def fused_kernel(source: str, element, flags):
    """The compiled kernel for ``source`` (shared by identical kernels)."""
    key = (source, element, flags.boundscheck, str(flags.fastmath), flags.error_model)
    with _KERNELS_LOCK:
        disp = _KERNELS.get(key)
        if disp is None:
            namespace = {"np": np, "_OUT": np.float64, "_element": element}
            exec(compile(source, "<numba_loopopt fused kernel>", "exec"), namespace)
            fastmath = flags.fastmath.flags if flags.fastmath else False
            disp = numba.njit(boundscheck=bool(flags.boundscheck), fastmath=fastmath or False,
                              error_model=flags.error_model)(namespace["_fused"])
            _KERNELS[key] = disp
    return disp


@register_pass(mutates_CFG=False, analysis_only=False)
class FuseReductions(LoopOptPass):
    """The fuse-reduce pass; see the module docstring."""

    _name = "loopopt_fuse_reduce"
    pass_name = PASS
    options_field = "fuse_reduce"

    def transform(self, state, options, emit: RemarkEmitter) -> bool:
        func_ir, typemap = state.func_ir, state.typemap
        candidates = find_reductions(func_ir, typemap)
        if not candidates:
            return False
        func_ir._definitions = build_definitions(func_ir.blocks)
        changed = False
        for source, reductions in candidates.items():
            du = DefUse(func_ir.blocks)
            found = match(func_ir, du, typemap, source, reductions)
            if isinstance(found, Missed):
                emit.missed(found.key, found.loc, found.message)
                continue
            self._fuse(state, source, reductions, *found)
            changed = True
            kinds = ", ".join(r.kind for _, r in reductions)
            what = f"'{source}'" if not source.startswith("$") else "the array"
            emit.passed("Fused", reductions[0][1].stmt.loc,
                        f"{kinds} of {what} computed in one loop with its "
                        f"{found[0]}, without materialising it", reductions=kinds)
        if changed:
            func_ir._definitions = build_definitions(func_ir.blocks)
        return changed

    @staticmethod
    def _fuse(state, source, reductions, kind, value, site):
        func_ir, typemap, calltypes = state.func_ir, state.typemap, state.calltypes
        flags = state.flags
        fastmath = flags.fastmath.flags if flags.fastmath else False
        kinds = [r.kind for _, r in sorted(reductions, key=lambda x: x[1].index)]
        reds = [r for _, r in sorted(reductions, key=lambda x: x[1].index)]
        if kind == "arrayexpr":
            element, names = element_kernel(value, fastmath or False)
            array_args = [isinstance(typemap[n], types.Array) for n in names]
            src = kernel_source(kinds, array_args, gather=False)
        else:
            element, names = None, [value.value.name, value.index.name]
            src = kernel_source(kinds, [True, True], gather=True)
        disp = fused_kernel(src, element, flags)
        block = func_ir.blocks[site.label]
        scope, loc = block.scope, site.stmt.loc
        fn = fresh(scope, "fused_kernel", loc)
        argvars = [ir.Var(scope, n, loc) for n in names]
        call = ir.Expr.call(fn, argvars, (), loc)
        argtys = tuple(typemap[n] for n in names)
        fnty = state.typingctx.resolve_value_type(disp)
        sig = fnty.get_call_type(state.typingctx, argtys, {})
        typemap[fn.name] = fnty
        calltypes[call] = sig
        if len(reds) == 1:
            result, unpack = reds[0].stmt.target, {}
        else:
            result = fresh(scope, "fused_results", loc)
            typemap[result.name] = sig.return_type
            unpack = {id(r.stmt): ir.Assign(ir.Expr.static_getitem(result, j, None, loc),
                                            r.stmt.target, r.stmt.loc)
                      for j, r in enumerate(reds)}
        getattrs = {r.stmt.value.func.name for r in reds}
        body = []
        for stmt in block.body:
            if stmt is site.stmt:
                body += [ir.Assign(ir.Global("_fused", disp, loc), fn, loc),
                         ir.Assign(call, result, loc)]
            elif id(stmt) in unpack:
                body.append(unpack[id(stmt)])
            elif any(stmt is r.stmt for r in reds):
                continue  # the single reduction now is the call itself
            elif isinstance(stmt, ir.Assign) and stmt.target.name in getattrs \
                    and isinstance(stmt.value, ir.Expr) and stmt.value.op == "getattr":
                continue
            else:
                body.append(stmt)
        func_ir.blocks[site.label] = with_body(block, body)
        typemap.pop(source, None)
