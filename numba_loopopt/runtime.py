"""Small functions the passes call from the code they generate."""

from __future__ import annotations

import platform

from llvmlite import ir as llvmir
from numba.core import types
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload


def check_shape(shape):
    """Raise what ``np.empty(shape)`` raises for a negative size, without
    allocating: what a contracted temporary leaves of its allocation."""
    if any(d < 0 for d in (shape if isinstance(shape, tuple) else (shape,))):
        raise ValueError("negative dimensions not allowed")


@overload(check_shape)
def _check_shape(shape):
    if isinstance(shape, types.Integer):
        def impl(shape):
            if shape < 0:
                raise ValueError("negative dimensions not allowed")
        return impl
    if isinstance(shape, types.UniTuple) and isinstance(shape.dtype, types.Integer):
        def impl(shape):
            for d in shape:
                if d < 0:
                    raise ValueError("negative dimensions not allowed")
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
