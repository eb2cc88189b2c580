"""Calls that integrations declare elementwise over 0-d arrays.

A framework that generates numba code (PyTensor's NUMBA mode) wraps scalar
functions in array functions: ``elemwise(x, y)`` allocates a 0-d array and
stores ``f(x[()], y[()])`` in it.  The framework knows what it wrapped; the
compiler cannot see through the wrapper (a numba ``@overload`` over an
LLVM-level intrinsic).  An integration registers a *resolver*: given the
object a call's callee resolves to, it returns a :class:`ScalarCall`
describing the wrapper, or ``None`` when it does not recognise it.  The
``scalar-replace`` pass then turns the call on 0-d operands into the scalar
function applied to the loaded values.

The contract of a resolver: ``fn`` computes its outputs from its scalar
arguments and writes no memory (it may raise).  Every ``fn`` a resolver has
given is remembered, so that a later pass can tell a lowered call of one
(:func:`is_scalar_function`) from an arbitrary call, which it must assume
writes every array it can reach.

This module is a leaf: it imports nothing of the package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["ScalarCall", "is_scalar_function", "register", "resolve", "unregister"]


@dataclass(frozen=True)
class ScalarCall:
    """What a wrapper call computes, element by element.

    ``fn`` is called with one scalar per input and returns the outputs' values
    (a tuple when there are several outputs, as numba's ``_vectorized`` expects
    of a core function); each value is stored, cast to ``out_dtypes[k]``, in
    output ``k``.  ``inplace`` maps an output to the input it is written into
    (and returned as); the other outputs are fresh arrays.
    """

    fn: object
    n_in: int
    out_dtypes: tuple[np.dtype, ...]
    inplace: tuple[tuple[int, int], ...] = ()
    in_ndims: tuple[int, ...] = ()
    """Each input's number of dimensions, as the wrapper was built for."""
    out_ndims: tuple[int, ...] = ()
    name: str = "call"
    arrays_only: bool = False
    """Only a call on 0-d *arrays* is this (a scalar operand gives a scalar)."""

    def out_dtype(self, k: int, operand_dtypes) -> np.dtype | None:
        """Output ``k``'s dtype; ``None`` in ``out_dtypes`` means "the first
        operand's" (a copy), taken from ``operand_dtypes``."""
        dtype = self.out_dtypes[k]
        if dtype is None:
            return operand_dtypes[0] if operand_dtypes else None
        return dtype

    @property
    def n_out(self) -> int:
        return len(self.out_dtypes)

    @property
    def all_0d(self) -> bool:
        return (len(self.in_ndims) == self.n_in and not any(self.in_ndims)
                and len(self.out_ndims) == self.n_out and not any(self.out_ndims))


Resolver = Callable[[object], "ScalarCall | None"]
_resolvers: list[Resolver] = []
#: ``id`` -> the scalar functions resolvers gave (kept alive here, so an id
#: is never reused for another object).
_scalar_functions: dict[int, object] = {}


def register(resolver: Resolver) -> Resolver:
    """Add ``resolver`` (idempotent); returns it, so it can decorate."""
    if resolver not in _resolvers:
        _resolvers.append(resolver)
    return resolver


def unregister(resolver: Resolver) -> None:
    if resolver in _resolvers:
        _resolvers.remove(resolver)


def resolve(callee: object) -> ScalarCall | None:
    """The :class:`ScalarCall` a registered resolver gives for ``callee``.

    A resolver that raises is treated as not recognising the callee: a
    broken integration must not break a compile.
    """
    for resolver in tuple(_resolvers):
        try:
            found = resolver(callee)
        except Exception:
            continue
        if found is not None:
            _scalar_functions.setdefault(id(found.fn), found.fn)
            return found
    return None


def is_scalar_function(obj: object) -> bool:
    """Whether ``obj`` is the scalar function of a :class:`ScalarCall` a
    resolver gave: a function of scalars that writes no memory."""
    return obj is not None and _scalar_functions.get(id(obj)) is obj
