"""Compiling fuse-reduce's code, and the process-wide caches that share it.

* :func:`element_kernel`: numba's own scalar kernel for an ``arrayexpr`` (as
  its array-expression lowering builds it), and :func:`vector_element_kernel`,
  the same with each ``np.exp`` by :mod:`numba_loopopt.vecmath`'s port;
  cached in ``_ELEMENTS`` by their text, globals and flags.
* :func:`fused_kernel`: the dispatcher of a generated kernel
  (:mod:`~numba_loopopt.transforms.fuse_reduce.codegen`), cached in
  ``_KERNELS`` by its source, element, constants and flags.
* :func:`empty_guard`: the function that raises numba's ``ValueError`` for an
  empty ``min``/``max``/``argmin``/``argmax``, cached in ``_GUARDS``.
* :func:`compile_kernel`: all of these for one
  :class:`~numba_loopopt.transforms.fuse_reduce.matching.FusionPlan` and its
  :class:`~numba_loopopt.transforms.fuse_reduce.planning.KernelPlan`, typed
  for the call the rewrite puts in the IR (:class:`CompiledKernel`).

The caches live for the process: the same expression in several places or
functions is compiled once.  :func:`clear_caches` forgets them (the
compile-time benchmark does, so that every compilation is a cold one).
"""

from __future__ import annotations

import ast
import copy
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
from numba.core import ir
from numba.np.ufunc.array_exprs import (
    _arr_expr_to_ast,
    _fix_invalid_lineno_ranges,
    _legalize_parameter_names,
)

from ... import vecmath
from ...runtime import opaque
from .codegen import EXTREMES
from .planning import kernel_kind

if TYPE_CHECKING:
    from .matching import FusionPlan
    from .planning import KernelPlan

#: Elements and kernels are called from compiled code only: numba need not
#: build (and compile) their CPython and cfunc wrappers, a good part of a
#: small function's compile time.
_JITTED_CALLERS_ONLY = {"no_cpython_wrapper": True, "no_cfunc_wrapper": True}

_ELEMENTS: dict = {}
_ELEMENTS_LOCK = threading.Lock()
_KERNELS: dict = {}
_KERNELS_LOCK = threading.Lock()
_GUARDS: dict = {}


def clear_caches() -> None:
    """Forget every compiled element, kernel and empty guard (the caches are
    emptied in place).  Functions compiled before keep the ones they call;
    the next fusion compiles anew."""
    with _ELEMENTS_LOCK:
        _ELEMENTS.clear()
    with _KERNELS_LOCK:
        _KERNELS.clear()
        _GUARDS.clear()


def element_kernel(expr: ir.Expr, fastmath, returns=None):
    """numba's own scalar kernel for an ``arrayexpr`` (as its lowering builds
    it), and the variables it takes, in order.  ``returns(value, namespace)``,
    if given, makes the function's return expression from the element's AST
    (and may add globals to ``namespace``)."""
    params = sorted(set(expr.list_vars()), key=lambda var: var.name)
    names = [var.name for var in params]
    with _legalize_parameter_names(params) as legal:
        module = ast.parse("def _element(): return", "<numba_loopopt>", "exec")
        module.body[0].args.args = [ast.arg(p, None) for p in legal]
        value, namespace = _arr_expr_to_ast(expr.expr)
        if returns is not None:
            value = returns(value, namespace)
        module.body[0].body[0].value = value
        ast.fix_missing_locations(module)
        _fix_invalid_lineno_ranges(module)
    return _compiled_element(module, namespace, fastmath), names


def _compiled_element(module: ast.Module, namespace: dict, fastmath):
    """The dispatcher of the element function ``module`` defines, shared by
    every expression with the same text, globals and flags: the same
    expression in several places (or functions) is compiled once, and so is
    the fused kernel around it (:func:`fused_kernel` keys on the element)."""
    # numba's legal parameter names come from a process-wide counter: number
    # them from 0 so that equal expressions have equal text.
    args = module.body[0].args.args
    rename = {arg.arg: f"_p{k}" for k, arg in enumerate(args)}
    for node in ast.walk(module):
        if isinstance(node, ast.Name) and node.id in rename:
            node.id = rename[node.id]
    for arg in args:
        arg.arg = rename[arg.arg]
    key = (ast.dump(module), tuple(sorted((k, id(v)) for k, v in namespace.items())),
           repr(fastmath))
    with _ELEMENTS_LOCK:
        disp = _ELEMENTS.get(key)
        if disp is None:
            keep = dict(namespace)
            exec(compile(module, "<numba_loopopt>", "exec"), namespace)
            disp = numba.njit(error_model="numpy", fastmath=fastmath,
                              **_JITTED_CALLERS_ONLY)(namespace["_element"])
            # The key holds ids: keep the objects alive with the dispatcher.
            _ELEMENTS[key] = disp
            disp._loopopt_globals = keep
    return disp


class _VectorExp(ast.NodeTransformer):
    """Replaces the calls of ``np.exp`` in an element's AST by
    :func:`~numba_loopopt.vecmath.vexp` and collects their (rewritten)
    arguments."""

    def __init__(self, namespace):
        self.namespace = namespace
        self.arguments: list[ast.expr] = []

    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and self.namespace.get(node.func.id) is np.exp \
                and len(node.args) == 1 and not node.keywords:
            self.arguments.append(node.args[0])
            return ast.Call(ast.Name("_vexp", ast.Load()), node.args, [])
        return node


def vector_element_kernel(expr: ir.Expr, fastmath):
    """A scalar kernel besides :func:`element_kernel`'s, with its parameters,
    returning ``(element, ok)``: the element with each ``np.exp`` computed by
    the vectorisable port (exact only on its main path), and whether every
    such ``exp``'s argument is on the main path (the element is then exactly
    numba's)."""

    def returns(value, namespace):
        rewrite = _VectorExp(namespace)
        value = rewrite.visit(value)
        tests = [ast.Call(ast.Name("_vexp_ok", ast.Load()), [copy.deepcopy(arg)], [])
                 for arg in rewrite.arguments] or [ast.Constant(True)]
        ok = tests[0]
        for test in tests[1:]:
            ok = ast.BinOp(ok, ast.BitAnd(), test)
        namespace.update(_vexp=vecmath.vexp, _vexp_ok=vecmath.vexp_ok)
        return ast.Tuple([value, ok], ast.Load())

    return element_kernel(expr, fastmath, returns)[0]


@numba.njit
def _identity(value):
    return value


def fused_kernel(source: str, element, flags, constants: dict, reassociate=False):
    """The compiled kernel for ``source`` (shared by identical kernels), with
    ``constants`` (``_OUT``, ``_V``, ``_ACC{j}``, ``_NAN{j}``) in its
    namespace.  The kernel has the caller's fastmath flags, or only
    ``reassoc`` with ``reassociate``; the element, compiled separately, keeps
    the caller's flags either way."""
    consts = tuple(sorted((k, repr(v)) for k, v in constants.items()))
    key = (source, element, consts, flags.boundscheck, str(flags.fastmath),
           flags.error_model, reassociate)
    with _KERNELS_LOCK:
        disp = _KERNELS.get(key)
        if disp is None:
            namespace = {"np": np, "_element": element, **constants}
            exec(compile(source, "<numba_loopopt fused kernel>", "exec"), namespace)
            fastmath = flags.fastmath.flags if flags.fastmath else False
            if reassociate and not fastmath:
                fastmath = {"reassoc"}
            disp = numba.njit(boundscheck=bool(flags.boundscheck), fastmath=fastmath or False,
                              error_model=flags.error_model,
                              **_JITTED_CALLERS_ONLY)(namespace["_fused"])
            # Reads its operands, writes only the array it allocates.
            disp._loopopt_pure = True
            _KERNELS[key] = disp
    return disp


#: numba's messages for a reduction of no elements that has no value.
_EMPTY = {"min": "zero-size array to reduction operation minimum which has no "
                 "identity",
          "max": "zero-size array to reduction operation maximum which has no "
                 "identity",
          "argmin": "attempt to get argmin of an empty sequence",
          "argmax": "attempt to get argmax of an empty sequence"}
assert frozenset(_EMPTY) == EXTREMES


def mean_division(error_model: str, fastmath=False):
    """``divide(n, total)``: ``total / n`` as numba < 0.66's ``mean`` returns
    it (its ``c / a.size``), compiled with the caller's error model and
    fastmath flags, which numba's ``mean`` inherits: it replaces the mean's
    statement, so an empty array's ``ZeroDivisionError`` comes where stock
    raises it."""
    fastmath = fastmath or False
    key = ("mean", error_model, repr(sorted(fastmath) if isinstance(fastmath, set)
                                     else fastmath))
    with _KERNELS_LOCK:
        disp = _GUARDS.get(key)
        if disp is None:

            def divide(n, total):
                return total / n

            disp = numba.njit(error_model=error_model, fastmath=fastmath,
                              **_JITTED_CALLERS_ONLY)(divide)
            disp._loopopt_pure = True
            _GUARDS[key] = disp
    return disp


def empty_guard(kind: str):
    """``guard(n, value)``: ``value``, or numba's ``ValueError`` for ``kind``
    (min, max, argmin, argmax) of no elements when ``n == 0``.  It replaces
    the reduction's statement, so the exception comes where stock raises it."""
    with _KERNELS_LOCK:
        disp = _GUARDS.get(kind)
        if disp is None:
            message = _EMPTY[kind]

            def guard(n, value):
                if n == 0:
                    raise ValueError(message)
                return value

            disp = numba.njit(**_JITTED_CALLERS_ONLY)(guard)
            disp._loopopt_pure = True
            _GUARDS[kind] = disp
    return disp


@dataclass(frozen=True)
class Typed:
    """A dispatcher, its numba type and its signature for the call's types."""

    dispatcher: Any
    fnty: Any
    signature: Any


@dataclass(frozen=True)
class CompiledKernel:
    """What the rewrite puts in the IR: the kernel, and for each reduction
    (in the plan's order) its empty guard, or None when it needs none."""

    kernel: Typed
    guards: tuple[Typed | None, ...]


def _guard_of(r, flags):
    """What replaces reduction ``r``'s statement, given the kernel's size and
    its value: an extreme's empty guard, or an old mean's division."""
    if r.kind in EXTREMES:
        return empty_guard(r.kind)
    return mean_division(flags.error_model, flags.fastmath.flags if flags.fastmath else False)


def _typed(typingctx, disp, argtys: tuple) -> Typed:
    fnty = typingctx.resolve_value_type(disp)
    return Typed(disp, fnty, fnty.get_call_type(typingctx, argtys, {}))


def compile_kernel(plan: FusionPlan, kernel: KernelPlan, state) -> CompiledKernel:
    """Compile (or find in the caches) the element, the kernel of ``kernel``
    and the empty guards, and type them for the call on ``plan``'s operands
    (numba compiles the kernel for those types here)."""
    flags, typemap, typingctx = state.flags, state.typemap, state.typingctx
    fastmath = flags.fastmath.flags if flags.fastmath else False
    element = None
    if plan.kind == "arrayexpr":
        element, _ = element_kernel(plan.value, fastmath or False)
    constants = {**dict(kernel.constants), "_V": opaque if kernel.fence else _identity}
    if kernel.vector_exp:
        constants.update(_element_vec=vector_element_kernel(plan.value, fastmath or False),
                         _carray=numba.carray, _stack_buffer=vecmath.stack_buffer,
                         _BLOCK_MAX=vecmath.block_max, _BLOCK_MIN=vecmath.block_min)
    disp = fused_kernel(kernel.source, element, flags, constants, kernel.reassociate)
    typed = _typed(typingctx, disp, tuple(typemap[n] for n in plan.operands))
    results = typed.signature.return_type
    guards = tuple(
        _typed(typingctx, _guard_of(r, flags),
               (results.types[-1], results.types[j + plan.escapes]))
        if r.kind in EXTREMES or kernel_kind(r) == "meansum" else None
        for j, r in enumerate(plan.reductions))
    return CompiledKernel(typed, guards)
