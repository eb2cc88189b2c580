"""Callees for the inlining tests, in a module of their own: their globals
must resolve here, not in the caller's module."""

import numba

SCALE = 10.0


@numba.njit
def scaled(x):
    return x * SCALE


@numba.njit
def with_defaults(x, offset=1.5, factor=2.0):
    return (x + offset) * factor
