"""Small functions the passes call from the code they generate."""

from __future__ import annotations

import platform

import numpy as np
from llvmlite import ir as llvmir
from numba.core import types
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload, register_jitable
from numba.np.numpy_support import as_dtype

#: Byte size from which :func:`check_shape` allocates (and frees at once) the
#: array stock numba would have allocated, so that the allocator raises
#: exactly what it raises there.  Below it no array can be "too big"; an
#: allocation of less than 1 GiB that fails only because memory is exhausted
#: is the one ``MemoryError`` of stock numba's that a contracted temporary
#: does not repeat.
ALLOCATE_FROM = 1 << 30


def check_shape(shape, dtype):
    """Raise what ``np.empty(shape, dtype)`` raises, allocating nothing when
    that surely succeeds: what a contracted temporary leaves of its
    allocation.  A size that is not small and non-negative goes to
    ``np.empty`` itself (numba's: the negative-dimension and the "array is too
    big" ``ValueError``, and the ``MemoryError`` of a failed allocation, in
    numba's order), whose array is dropped at once.  (This Python version
    stands for the compiled one, :func:`_check_shape`, in typing.)"""
    total = np.dtype(dtype).itemsize
    for d in shape if isinstance(shape, tuple) else (shape,):
        total *= d
        if not 0 <= d < ALLOCATE_FROM or total >= ALLOCATE_FROM:
            np.empty(shape, dtype)
            return


@overload(check_shape)
def _check_shape(shape, dtype):
    if isinstance(dtype, types.DType):
        nb_dtype = dtype.dtype
    elif isinstance(dtype, types.NumberClass):
        nb_dtype = dtype.instance_type
    else:
        raise TypingError(f"check_shape: unsupported dtype {dtype}")
    itemsize = np.dtype(as_dtype(nb_dtype)).itemsize
    limit = ALLOCATE_FROM
    # np.int64() converts a size as numba's allocation does (a uint64 of 2**63
    # or more becomes negative), and any size not surely small goes to
    # np.empty, which converts and checks it itself; below the limit no
    # conversion of numba's differs from np.int64().  Each dimension is below
    # 2**30 and so is the running product: it cannot overflow.
    if isinstance(shape, types.Integer):
        def impl(shape, dtype):
            size = np.int64(shape)
            if size < 0 or size >= limit or size * itemsize >= limit:
                np.empty(shape, dtype)
        return impl
    if isinstance(shape, types.UniTuple) and isinstance(shape.dtype, types.Integer):
        def impl(shape, dtype):
            total = np.int64(itemsize)
            for d in shape:
                size = np.int64(d)
                total *= size
                if size < 0 or size >= limit or total >= limit:
                    np.empty(shape, dtype)
                    return
        return impl
    raise TypingError(f"check_shape: unsupported shape {shape}")


#: Inline-assembly constraint that keeps a float in a vector register, by
#: machine: the empty asm statement returns its operand unchanged, opaquely.
_FLOAT_REGISTER = {"x86_64": "=x,0", "AMD64": "=x,0", "i686": "=x,0",
                   "aarch64": "=w,0", "arm64": "=w,0"}.get(platform.machine())


@intrinsic
def opaque(typingctx, value):
    """``value``, unchanged, but opaque to LLVM's optimiser.

    A fused loop computes an element and accumulates it in one function, where
    LLVM may fold the two (``s + -x`` into ``s - x``).  That is exact for
    numbers but may give a NaN another sign bit than stock numba, which stores
    the element to memory in between; the fence keeps the two computations
    apart.  Other types (integers, booleans, ...) need none and pass through
    as they are, as floats do on a machine with no known register
    constraint."""
    if _FLOAT_REGISTER is None or not isinstance(value, (types.Float, types.Complex)):
        return value(value), lambda context, builder, sig, args: args[0]

    def fence(builder, v):
        fnty = llvmir.FunctionType(v.type, [v.type])
        return builder.asm(fnty, "", _FLOAT_REGISTER, [v], side_effect=False)

    def codegen(context, builder, sig, args):
        (v,) = args
        if isinstance(value, types.Complex):
            for k in (0, 1):
                v = builder.insert_value(v, fence(builder, builder.extract_value(v, k)), k)
            return v
        return fence(builder, v)

    return value(value), codegen


@register_jitable
def identity(value):
    """``value``: the scalar function of a copy."""
    return value


def disjoint(a, b):
    """Whether arrays ``a`` and ``b`` share no byte of memory (the address
    ranges their elements span do not meet; empty arrays share none).  Used
    to version code on arguments not aliasing each other."""
    if a.size == 0 or b.size == 0:
        return True
    alo, ahi = _py_extent(a)
    blo, bhi = _py_extent(b)
    return ahi <= blo or bhi <= alo


def _py_extent(a):
    lo = hi = a.ctypes.data
    for n, s in zip(a.shape, a.strides, strict=False):
        span = s * (n - 1)
        if span < 0:
            lo += span
        else:
            hi += span
    return lo, hi + a.itemsize


@overload(disjoint)
def _disjoint(a, b):
    if not (isinstance(a, types.Array) and isinstance(b, types.Array)):
        raise TypingError(f"disjoint: arrays expected, got {a} and {b}")

    def impl(a, b):
        if a.size == 0 or b.size == 0:
            return True
        alo, ahi = _extent(a)
        blo, bhi = _extent(b)
        return ahi <= blo or bhi <= alo
    return impl


def _extent(a):  # pragma: no cover - typed through the overload below
    raise NotImplementedError


@overload(_extent)
def _extent_overload(a):
    if a.ndim == 0:
        def impl(a):
            lo = np.intp(a.ctypes.data)
            return lo, lo + a.itemsize
        return impl

    def impl(a):
        lo = np.intp(a.ctypes.data)
        hi = lo
        for d in range(a.ndim):
            span = a.strides[d] * (a.shape[d] - 1)
            if span < 0:
                lo += span
            else:
                hi += span
        return lo, hi + a.itemsize
    return impl


# -- Store-to-load forwarding (the forward-stores pass) ------------------------


@intrinsic
def element_zero(typingctx, a):
    """A zero of 1-D array ``a``'s element type: the value a forwarded
    element starts from before the loop (never read: the loop reads memory
    until it has stored)."""
    if not isinstance(a, types.Array):
        return None
    dtype = a.dtype

    def codegen(context, builder, sig, args):
        return context.get_constant_null(dtype)
    return dtype(a), codegen


@intrinsic
def as_element(typingctx, a, value):
    """``value`` converted to array ``a``'s element type exactly as a store
    ``a[k] = value`` converts it (numba's cast to the dtype): the value a
    later load of that element returns."""
    if not isinstance(a, types.Array) or isinstance(value, types.Array) \
            or not typingctx.can_convert(value, a.dtype):
        return None
    dtype = a.dtype

    def codegen(context, builder, sig, args):
        return context.cast(builder, args[1], sig.args[1], dtype)
    return dtype(a, value), codegen


#: Index forms of :func:`distinct_window`: ``a[i + c]``, ``a[(i + c) % m]``,
#: ``a[(i + c) * m]``.
PLAIN_INDEX, MOD_INDEX, MUL_INDEX = 0, 1, 2


@register_jitable
def distinct_window(a, form, m, depth):
    """Whether ``depth`` consecutive indices ``g(i + c), g(i + c + 1), ...``
    of the form ``form`` (with operand ``m``) reach ``depth`` different
    elements of 1-D array ``a``, whatever ``i``, that share no byte: then the
    element a load reads was last written ``depth`` stores before, not by one
    in between.  Different indices are different bytes only when the stride
    is at least the item size (a view may have stride 0, or overlap its own
    elements).  ``x % m`` for ``m >= depth`` gives ``depth`` different
    indices in ``[0, m)``; ``x`` and ``x * 1`` give different integers, which
    reach different elements unless a negative one wraps onto another, which
    needs ``len(a) < depth``."""
    if abs(a.strides[0]) < a.itemsize:
        return False
    if form == 1:
        return m >= depth
    if form == 2:
        return m == 1 and a.shape[0] >= depth
    return a.shape[0] >= depth
