"""Applying a fusion to the IR: the only part of fuse-reduce that edits it.

:func:`rewrite` replaces the expression's statement by the compiled kernel's
call (:class:`~numba_loopopt.transforms.fuse_reduce.kernels.CompiledKernel`)
and each reduction's statement by its value from the kernel's results
(through the empty guard for a ``min``/``max``/``argmin``/``argmax``), giving
every new variable its ``typemap`` entry and every new call its
``calltypes`` entry.  Everything was decided, generated, compiled and typed
before.
"""

from __future__ import annotations

from numba.core import ir

from ...irbuild import fresh, with_body
from .kernels import CompiledKernel, Typed
from .matching import FusionPlan, Reduction


def rewrite(state, plan: FusionPlan, compiled: CompiledKernel) -> None:
    """Replace ``plan``'s expression and reductions in ``state.func_ir`` by
    the call of ``compiled``'s kernel (a new block in place of theirs)."""
    func_ir, typemap, calltypes = state.func_ir, state.typemap, state.calltypes
    reds, escapes, site = plan.reductions, plan.escapes, plan.site
    block = func_ir.blocks[site.label]
    scope, loc = block.scope, site.stmt.loc
    kernel = compiled.kernel
    fn = fresh(scope, "fused_kernel", loc)
    argvars = [ir.Var(scope, n, loc) for n in plan.operands]
    call = ir.Expr.call(fn, argvars, (), loc)
    sig = kernel.signature
    typemap[fn.name] = kernel.fnty
    calltypes[call] = sig
    # An extreme's empty guard, or the division of a mean under numba < 0.66,
    # takes the kernel's element count.
    sized = any(guard is not None for guard in compiled.guards)
    size = None
    if len(reds) == 1 and not escapes and not sized:
        result, unpack = reds[0].stmt.target, {}
    else:
        result = fresh(scope, "fused_results", loc)
        typemap[result.name] = sig.return_type
        if sized:
            size = fresh(scope, "fused_size", loc)
            typemap[size.name] = sig.return_type.types[-1]
        unpack = {id(r.stmt): _unpack(state, result, j + escapes, r, size, guard)
                  for j, (r, guard) in enumerate(zip(reds, compiled.guards, strict=True))}
    getattrs = {r.stmt.value.func.name for r in reds}
    body = []
    for stmt in block.body:
        if stmt is site.stmt:
            body += [ir.Assign(ir.Global("_fused", kernel.dispatcher, loc), fn, loc),
                     ir.Assign(call, result, loc)]
            if escapes:
                body.append(ir.Assign(ir.Expr.static_getitem(result, 0, None, loc),
                                      site.stmt.target, loc))
            if size is not None:
                body.append(ir.Assign(ir.Expr.static_getitem(
                    result, len(reds) + escapes, None, loc), size, loc))
        elif id(stmt) in unpack:
            body += unpack[id(stmt)]
        elif any(stmt is r.stmt for r in reds):
            continue  # the single reduction now is the call itself
        elif isinstance(stmt, ir.Assign) and stmt.target.name in getattrs \
                and isinstance(stmt.value, ir.Expr) and stmt.value.op == "getattr":
            continue
        else:
            body.append(stmt)
    func_ir.blocks[site.label] = with_body(block, body)
    if not escapes:
        typemap.pop(plan.source, None)


def _unpack(state, result: ir.Var, index: int, r: Reduction, size,
            guard: Typed | None) -> list:
    """The statements that replace reduction ``r``: its value from the
    kernel's results, through its empty ``guard`` for an extreme."""
    loc, target = r.stmt.loc, r.stmt.target
    take = ir.Expr.static_getitem(result, index, None, loc)
    if guard is None:
        return [ir.Assign(take, target, loc)]
    scope, typemap = target.scope, state.typemap
    value, fn = fresh(scope, "fused_value", loc), fresh(scope, "empty_guard", loc)
    typemap[value.name] = typemap[result.name].types[index]
    call = ir.Expr.call(fn, [size, value], (), loc)
    typemap[fn.name] = guard.fnty
    state.calltypes[call] = guard.signature
    return [ir.Assign(take, value, loc),
            ir.Assign(ir.Global("_guard", guard.dispatcher, loc), fn, loc),
            ir.Assign(call, target, loc)]
