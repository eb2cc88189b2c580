"""Small functions the passes call from the code they generate."""

from __future__ import annotations

from numba.core import types
from numba.core.errors import TypingError
from numba.extending import overload


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
