"""Registered elementwise calls on 0-d operands become scalar calls.

``out = elemwise(x, y)``, where an integration declared ``elemwise`` (see
:mod:`numba_loopopt.scalar_calls`) and every operand is a 0-d array or a
scalar, computes ``f(x[()], y[()])`` and stores it, cast to the output dtype,
in a fresh 0-d array (or in the input an in-place output is written into).
The rewrite spells exactly that out::

    $x = x[()]; $y = y[()]            # a scalar operand is passed as it is
    $r = f($x, $y)
    $c = np.float64($r)               # the output's dtype
    out = np.array($c)                # or: x[()] = $c; out = x  (in place)

and the 0-d arrays left are for scalar replacement to dissolve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba.core import ir, types

from ... import irbuild, runtime, scalar_calls
from ...analysis.zero_dim import constant_value, dtype_of
from ...remarks import Missed


@dataclass(frozen=True)
class CallPlan:
    label: int
    stmt: ir.Assign
    call: scalar_calls.ScalarCall
    array_operands: tuple[bool, ...]
    """Per operand: a 0-d array (loaded) rather than a scalar (passed as is)."""
    out_dtypes: tuple = ()
    """Each output's dtype (``call.out_dtypes`` with a copy's filled in)."""


def _operand_kind(ty) -> str | None:
    if isinstance(ty, types.Array) and ty.ndim == 0:
        return "array"
    if isinstance(ty, (types.Number, types.Boolean)):
        return "scalar"
    return None


def match(func_ir: ir.FunctionIR, facts) -> list[CallPlan | Missed]:
    """A plan per call to a registered wrapper, or why it stays a call."""
    found: list[CallPlan | Missed] = []
    for label, block in func_ir.blocks.items():
        for stmt in block.body:
            if not (isinstance(stmt, ir.Assign) and isinstance(stmt.value, ir.Expr)
                    and stmt.value.op == "call"):
                continue
            expr = stmt.value
            callee = constant_value(func_ir, expr.func)
            if callee is None or isinstance(callee, (int, float, str)):
                continue
            call = scalar_calls.resolve(callee)
            if call is None:
                continue
            loc = stmt.loc
            if expr.kws or expr.vararg or expr.varkwarg:
                found.append(Missed("CallKeywords", f"the call to '{call.name}' passes "
                                    "keywords or *args", loc, callee=call.name))
                continue
            if len(expr.args) != call.n_in:
                found.append(Missed("CallArity", f"'{call.name}' takes {call.n_in} "
                                    f"operands, the call passes {len(expr.args)}", loc,
                                    callee=call.name))
                continue
            if not call.all_0d:
                found.append(Missed("CallNotZeroDim", f"'{call.name}' works on arrays "
                                    "of more than 0 dimensions", loc, callee=call.name))
                continue
            kinds = [_operand_kind(facts.of(a.name)) for a in expr.args]
            bad = [a.name for a, k in zip(expr.args, kinds, strict=False) if k is None]
            if bad:
                found.append(Missed("OperandNotZeroDim", f"operand '{bad[0]}' of "
                                    f"'{call.name}' is {facts.of(bad[0])}, not a 0-d "
                                    "array or a scalar", loc, callee=call.name,
                                    operand=bad[0], type=str(facts.of(bad[0]))))
                continue
            for _out, inp in call.inplace:
                if kinds[inp] != "array":
                    kinds = None
                    break
            if kinds is None:
                found.append(Missed("InplaceOnScalar", f"'{call.name}' writes its "
                                    "output into an operand that is not an array", loc,
                                    callee=call.name))
                continue
            if call.arrays_only and any(k != "array" for k in kinds):
                found.append(Missed("OperandNotZeroDim", f"'{call.name}' of a scalar "
                                    "stays a call", loc, callee=call.name))
                continue
            operand_dtypes = [dtype_of(facts.of(a.name)) for a in expr.args]
            out_dtypes = tuple(call.out_dtype(k, operand_dtypes) for k in range(call.n_out))
            if any(d is None for d in out_dtypes):
                found.append(Missed("CallDtypeUnknown", f"the output dtype of "
                                    f"'{call.name}' is not known", loc, callee=call.name))
                continue
            found.append(CallPlan(label, stmt, call,
                                  tuple(k == "array" for k in kinds), out_dtypes))
    return found


def _call(scope, loc, fn_var, args, hint) -> tuple[ir.Var, ir.Assign]:
    target = irbuild.fresh(scope, hint, loc)
    return target, ir.Assign(ir.Expr.call(fn_var, list(args), (), loc), target, loc)


def _global(scope, loc, name, value, out) -> ir.Var:
    var = irbuild.fresh(scope, f"g_{name}", loc)
    out.append(ir.Assign(ir.Global(name, value, loc), var, loc))
    return var


def _empty_tuple(scope, loc, out) -> ir.Var:
    var = irbuild.fresh(scope, "empty_tuple", loc)
    out.append(ir.Assign(ir.Expr.build_tuple([], loc), var, loc))
    return var


def _fenced(scope, loc, value: ir.Var, out) -> ir.Var:
    g = _global(scope, loc, "opaque", runtime.opaque, out)
    fenced, assign = _call(scope, loc, g, [value], "fenced")
    out.append(assign)
    return fenced


def expansion(scope, plan: CallPlan, fence: bool = False) -> list[ir.Stmt]:
    """The statements standing for the call.  ``fence``: the operands and
    results pass through :func:`~numba_loopopt.runtime.opaque`, so that
    under ``fastmath`` LLVM cannot contract or reassociate the scalar
    function's arithmetic with the code around it, which the wrapper's
    memory round trips kept apart (results stay bit-identical)."""
    stmt, call, loc = plan.stmt, plan.call, plan.stmt.loc
    out: list[ir.Stmt] = []
    loaded = []
    for arg, is_array in zip(stmt.value.args, plan.array_operands, strict=False):
        if is_array:
            idx = _empty_tuple(scope, loc, out)
            v = irbuild.fresh(scope, f"load_{arg.name}", loc)
            out.append(ir.Assign(ir.Expr.static_getitem(arg, (), idx, loc), v, loc))
            loaded.append(_fenced(scope, loc, v, out) if fence else v)
        else:
            loaded.append(_fenced(scope, loc, arg, out) if fence else arg)
    fn = _global(scope, loc, call.name, call.fn, out)
    result, assign = _call(scope, loc, fn, loaded, "scalar_result")
    out.append(assign)
    inplace = dict(call.inplace)
    outputs = []
    for k, dtype in enumerate(plan.out_dtypes):
        if call.n_out > 1:
            value = irbuild.fresh(scope, f"scalar_result_{k}", loc)
            out.append(ir.Assign(ir.Expr.static_getitem(result, k, None, loc), value, loc))
        else:
            value = result
        ctor = _global(scope, loc, np.dtype(dtype).type.__name__, np.dtype(dtype).type, out)
        cast, assign = _call(scope, loc, ctor, [value], f"scalar_out_{k}")
        out.append(assign)
        if fence:
            cast = _fenced(scope, loc, cast, out)
        if k in inplace:
            target = stmt.value.args[inplace[k]]
            idx = _empty_tuple(scope, loc, out)
            out.append(ir.StaticSetItem(target, (), idx, cast, loc))
            outputs.append(target)
        else:
            np_array = _global(scope, loc, "array", np.array, out)
            arr, assign = _call(scope, loc, np_array, [cast], f"array0d_{k}")
            out.append(assign)
            outputs.append(arr)
    if call.n_out == 1:
        out.append(ir.Assign(outputs[0], stmt.target, loc))
    else:
        out.append(ir.Assign(ir.Expr.build_tuple(list(outputs), loc), stmt.target, loc))
    return out


def rewrite(func_ir: ir.FunctionIR, plans: list[CallPlan], fence: bool = False) -> None:
    by_stmt = {id(p.stmt): p for p in plans}
    for label, block in list(func_ir.blocks.items()):
        if not any(id(s) in by_stmt for s in block.body):
            continue
        body = []
        for s in block.body:
            plan = by_stmt.get(id(s))
            body.extend(expansion(block.scope, plan, fence) if plan else [s])
        func_ir.blocks[label] = irbuild.with_body(block, body)
