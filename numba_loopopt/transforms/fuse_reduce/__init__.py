"""Fuse an elementwise array expression (or a gather) into its reductions.

Stock numba materialises ``a*b + c`` into a new array and then sums it: an 80
MB temporary at 1e7 elements.  After numba's own ``nopython_rewrites`` has
built the ``arrayexpr`` tree, this typed pass replaces the expression and its
reductions by one call to a generated kernel that computes each element once
and feeds every reduction of it, with no temporary.

The package, one module per step:

``matching``
    :func:`find_reductions` and :func:`match`: read-only; a frozen
    :class:`FusionPlan` or a :class:`~numba_loopopt.remarks.Missed` with one
    key per reason.
``planning``
    :func:`plan_kernel`: which kernel, its source, the vectorised-exp
    decision, the constants (a frozen :class:`KernelPlan`).
``codegen``
    the kernels' Python source (:func:`kernel_source`,
    :func:`kernel_source_nd`, :func:`kernel_source_blocked`): pure text.
``kernels``
    compiling elements, kernels and empty guards, the process-wide caches
    that share them, and :func:`clear_caches`.
``rewrite``
    the IR edit that puts the kernel's call in place.
``driver``
    the pass, :class:`FuseReductions`, and its remarks.

Legal when, all checked before any edit (else a missed remark):

* the reduced array is an ``arrayexpr`` whose array operands have its number
  of dimensions (C-ordered if N-D), or a gather ``x[idx]`` of a 1-D array by
  an integer array of any shape, of booleans, integers, floats or complex
  numbers;
* its reductions (``sum``, ``prod``, ``mean``, ``min``, ``max``, ``any``,
  ``all``, ``argmin``, ``argmax``; functions or methods, ``sum`` with a
  constant ``axis`` of a 2-D expression) are all in the block that computes it;
* if it is also used otherwise (it escapes), it is a C array, which the fused
  loop then fills as it goes (the one allocation stock numba makes, and still
  one pass), and every statement between the expression and its last
  reduction is proven to write no array (deny by default:
  :func:`~numba_loopopt.analysis.effects.may_write_memory`).

Order: the kernel runs where the expression was and raises only what it
raises there (numba's broadcast ``ValueError``, naming the same argument; the
allocation's ``ValueError('array is too big...')`` or ``MemoryError``, by
allocating and freeing the result when it would take a GiB or more; an
``IndexError`` of a gather under ``boundscheck``).  Each reduction's value is
taken where the reduction was, and an empty ``min``/``max``/``argmin``/
``argmax`` raises numba's ``ValueError`` there (:func:`empty_guard`), after
whatever the statements in between printed, stored or raised.

Exactness: the element is computed by the very scalar kernel numba's
array-expression lowering builds (``_arr_expr_to_ast``, compiled with
``error_model='numpy'`` and cast to the output dtype), in the same order, and
each reduction repeats numba's own loop: sequential accumulation from index 0
in the reduction's result type (numba's accumulator type), the first NaN wins
for ``min``/``max``/``argmin``/``argmax``, complex numbers compare
lexicographically, NaN for an empty ``mean``; each accumulator starts from
a value LLVM cannot fold into the first element (a signalling NaN is quieted
as in stock).  So results
are bit-identical to stock numba (with ``fastmath`` both may reassociate).

``np.exp`` of float64s in a 1-D expression of float64s: unless the option
``vector_exp`` is off or :func:`numba_loopopt.vecmath.vector_exp_available`
finds the port not bit-identical to this process's ``exp``, the kernel
(:func:`kernel_source_blocked`) computes the elements a block at a time with
the vectorisable port, recomputes those whose ``exp`` arguments are off its
main path with numba's own element, and reduces each block in order.
"""

from __future__ import annotations

from .codegen import EXTREMES, kernel_source, kernel_source_blocked, kernel_source_nd
from .driver import PASS, FuseReductions

# The caches themselves, for code that inspects them
# (tests/test_compile_time.py counts _ELEMENTS); clear them with clear_caches().
from .kernels import _ELEMENTS as _ELEMENTS
from .kernels import _GUARDS as _GUARDS
from .kernels import _KERNELS as _KERNELS
from .kernels import (
    CompiledKernel,
    clear_caches,
    compile_kernel,
    element_kernel,
    empty_guard,
    fused_kernel,
    vector_element_kernel,
)
from .matching import (
    ELEMENT_TYPES,
    KINDS,
    FusionPlan,
    Reduction,
    element_family,
    find_reductions,
    match,
)
from .planning import KernelPlan, exp_calls, plan_kernel

__all__ = [
    "ELEMENT_TYPES", "EXTREMES", "KINDS", "PASS", "CompiledKernel", "FuseReductions",
    "FusionPlan", "KernelPlan", "Reduction", "clear_caches", "compile_kernel",
    "element_family", "element_kernel", "empty_guard", "exp_calls", "find_reductions",
    "fused_kernel", "kernel_source", "kernel_source_blocked", "kernel_source_nd", "match",
    "plan_kernel", "vector_element_kernel",
]
