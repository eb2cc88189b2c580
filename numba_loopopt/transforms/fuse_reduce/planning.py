"""Deciding how a matched fusion is compiled: the kernel plan.  No IR edits.

:func:`plan_kernel` turns a :class:`~numba_loopopt.transforms.fuse_reduce.matching.FusionPlan`
into a frozen :class:`KernelPlan`: which generator
(:mod:`~numba_loopopt.transforms.fuse_reduce.codegen`) and the kernel's
source, whether ``np.exp`` is computed by the vectorised port
(:func:`vector_exp_decision`, with the remark's note), whether the elements
pass the optimisation fence, and the constants in the kernel's namespace.
It compiles nothing itself; the first call of
:func:`numba_loopopt.vecmath.vector_exp_status` in a process runs the port's
self-test (once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numba.core import ir, types
from numba.np import numpy_support

from ... import vecmath
from ..._compat import MEAN_EMPTY_IS_NAN
from . import codegen
from .matching import FusionPlan, element_family


@dataclass(frozen=True)
class KernelPlan:
    """How a :class:`FusionPlan` is compiled."""

    generator: str
    """The :mod:`codegen` function that wrote :attr:`source`."""
    source: str
    """The kernel's Python source."""
    vector_exp: bool | None
    """Whether ``np.exp`` is computed by the vectorised port; None when the
    expression calls no ``np.exp`` of float64s (nothing to say)."""
    note: str | None
    """The ``Fused`` remark's note on the vectorised exp (with
    :attr:`vector_exp`)."""
    fence: bool
    """Whether the elements pass the optimisation fence
    (:func:`numba_loopopt.runtime.opaque`) before they are accumulated: not
    with ``fastmath`` or ``reassociate``."""
    reassociate: bool
    """Whether the kernel's accumulations get LLVM's ``reassoc`` flag."""
    constants: tuple[tuple[str, Any], ...]
    """``_OUT``, ``_ITEMSIZE``, ``_ACC{j}``, ``_NAN{j}``: numpy types and
    scalars for the kernel's namespace."""


def exp_calls(tree, typemap, typingctx) -> tuple[int, int] | None:
    """``(number of np.exp calls, how many of them take a float64)`` in an
    ``arrayexpr`` tree, typing its nodes on the operands' scalar types as
    numba types the element kernel; None if a node does not type."""
    counts = [0, 0]

    def scalar(node):
        if isinstance(node, ir.Var):
            ty = typemap[node.name]
            return ty.dtype if isinstance(ty, types.Array) else ty
        if isinstance(node, ir.Const):
            return numba.typeof(node.value)
        op, args = node
        argtys = tuple(scalar(arg) for arg in args)
        if op is np.exp:
            counts[0] += 1
            counts[1] += argtys == (types.float64,)
        fnty = typingctx.resolve_value_type(op)
        return typingctx.resolve_function_type(fnty, argtys, {}).return_type

    try:
        scalar(tree)
    except Exception:  # noqa: BLE001 - untypable here: no vector exp
        return None
    return counts[0], counts[1]


def vector_exp_decision(value, typemap, typingctx, dtype, ndim, reds,
                        enabled) -> tuple[bool, str] | None:
    """Whether the fused kernel computes ``np.exp`` with the vectorised port
    (:mod:`numba_loopopt.vecmath`), and the remark's note; None when the
    expression has no ``np.exp`` of float64s (nothing to say)."""
    counts = exp_calls(value.expr, typemap, typingctx)
    if counts is None or counts[1] == 0:
        return None
    if not enabled:
        return False, "np.exp not vectorised: fuse_reduce.vector_exp is off"
    if ndim != 1 or any(r.axis is not None for r in reds):
        return False, "np.exp not vectorised: the expression is not 1-D"
    if dtype != types.float64:
        return False, f"np.exp not vectorised: the elements are {dtype}, not float64"
    available, why = vecmath.vector_exp_status()
    if not available:
        return False, f"np.exp not vectorised: {why}"
    return True, (f"np.exp vectorised ({counts[1]} call{'s' * (counts[1] > 1)}, "
                  f"blocks of {vecmath.BLOCK} elements; the vectorised exp was "
                  f"{why})")


def kernel_kind(r) -> str:
    """Reduction ``r``'s kind in the kernel's source: its code, except a
    mean under a numba whose mean divides at its statement (``meansum``)."""
    if r.kind == "mean" and not MEAN_EMPTY_IS_NAN:
        return "meansum"
    return r.code


def plan_kernel(plan: FusionPlan, typemap, typingctx, flags, *, reassociate: bool = False,
                vector_exp: bool = True) -> KernelPlan:
    """The kernel for ``plan`` under the caller's ``flags`` and the pass's
    options ``reassociate`` and ``vector_exp``."""
    reds, escapes = plan.reductions, plan.escapes
    kinds = [kernel_kind(r) for r in reds]
    dtype, ndim = plan.array_type.dtype, plan.array_type.ndim
    family = element_family(dtype)
    flat = ndim == 1 and all(r.axis is None for r in reds)
    decision = None
    if plan.kind == "arrayexpr":
        value = plan.value
        array_args = [isinstance(typemap[n], types.Array) for n in plan.operands]
        ranks = [getattr(typemap[n], "ndim", 0) for n in plan.operands]
        # numba's broadcast error ends in the location of the last
        # statement it compiled: usually the first line of the kernel it
        # builds for the expression, in the expression's file.
        where = f'\nFile "{value.loc.filename}", line 1, '
        decision = vector_exp_decision(value, typemap, typingctx, dtype, ndim, reds,
                                       vector_exp)
        if decision is not None and decision[0]:
            generator = "kernel_source_blocked"
            src = codegen.kernel_source_blocked(kinds, array_args, family=family,
                                                materialise=escapes, where=where)
        elif flat:
            generator = "kernel_source"
            src = codegen.kernel_source(kinds, array_args, gather=False, family=family,
                                        materialise=escapes, where=where)
        else:
            generator = "kernel_source_nd"
            src = codegen.kernel_source_nd(kinds, array_args, ndim, family=family,
                                           materialise=escapes, ranks=ranks, where=where)
    elif flat:
        generator = "kernel_source"
        src = codegen.kernel_source(kinds, [True, True], gather=True, family=family,
                                    materialise=escapes)
    else:
        generator = "kernel_source_nd"
        src = codegen.kernel_source_nd(kinds, [True, True], ndim, family=family,
                                       materialise=escapes, gather=True)
    out = numpy_support.as_dtype(dtype)
    constants = [("_OUT", out.type), ("_ITEMSIZE", float(out.itemsize))]
    for j, r in enumerate(reds):
        rty = typemap[r.stmt.target.name]
        rty = numpy_support.as_dtype(getattr(rty, "dtype", rty)).type
        if kinds[j] == "meansum":
            # numba < 0.66 sums a mean in the element type (float64 for
            # booleans and integers), whatever the division then returns.
            rty = (np.float64 if isinstance(dtype, (types.Boolean, types.Integer))
                   else numpy_support.as_dtype(dtype).type)
        constants.append((f"_ACC{j}", rty))
        if kinds[j] == "mean":
            constants.append((f"_NAN{j}", rty(complex("nan+nanj") if family == "complex"
                                              else np.nan)))
    fastmath = flags.fastmath.flags if flags.fastmath else False
    # Without fastmath the element passes through an optimisation fence
    # before it is accumulated, as it passes through memory in stock numba.
    return KernelPlan(generator, src,
                      vector_exp=None if decision is None else decision[0],
                      note=None if decision is None else decision[1],
                      fence=not (fastmath or reassociate), reassociate=reassociate,
                      constants=tuple(constants))
