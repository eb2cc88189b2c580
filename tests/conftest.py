"""Shared helpers: run a kernel stock and through LoopOptPipeline, compare."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
from numba import njit
from numba.core.errors import NumbaError

import numba_loopopt as lo


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                and a.dtype == b.dtype and a.shape == b.shape
                and a.tobytes() == b.tobytes())
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return np.float64(a).tobytes() == np.float64(b).tobytes()
    if isinstance(a, complex) and isinstance(b, complex):
        return np.complex128(a).tobytes() == np.complex128(b).tobytes()
    return type(a) is type(b) and a == b


_DISPATCHERS: dict = {}


@pytest.fixture(autouse=True)
def _fresh_dispatchers_per_test():
    _DISPATCHERS.clear()
    yield
    _DISPATCHERS.clear()


def run_both(py_func, *args, options=None, fresh=False, **njit_kwargs):
    """Run ``py_func`` stock and optimised on copies of ``args``; assert the
    results, the arguments' final contents and any exception type are the
    same, bit for bit.  Returns the optimised dispatcher.

    Within one test the two dispatchers are reused across calls with the same
    options (each signature compiles once); ``fresh=True`` compiles anew.
    """
    key = (py_func, repr(options), repr(sorted(njit_kwargs.items())))
    if fresh or key not in _DISPATCHERS:
        _DISPATCHERS[key] = (njit(**njit_kwargs)(py_func),
                             lo.jit(options=options, **njit_kwargs)(py_func))
    stock, opt = _DISPATCHERS[key]
    why = difference(outcome(stock, args), outcome(opt, args))
    assert why is None, why
    return opt


def outcome(disp, args):
    """``(kind, result or exception type, the arguments after the call)`` of
    calling ``disp`` on a deep copy of ``args`` (which keeps aliasing)."""
    mine = copy.deepcopy(args)
    try:
        return ("ok", disp(*mine), mine)
    except Exception as exc:  # noqa: BLE001 - comparing exceptions
        return ("raise", exc, mine)


#: numba ends some messages (a broadcast's ValueError) in the location of the
#: last statement it happened to compile before (``errors.loc_info``, global
#: state): the same call's message differs between a fresh process and a warm
#: one in stock numba itself.  Compared without it.
_LOCATION_SUFFIX = re.compile(r'\nFile "[^"]*", line \d+, $')


def _message(exc) -> str:
    return _LOCATION_SUFFIX.sub("", str(exc))


def difference(stock, opt) -> str | None:
    """How two outcomes differ, bit for bit, or None if they do not."""
    (k1, r1, a1), (k2, r2, a2) = stock, opt
    if k1 != k2:
        return f"stock {k1} {r1!r}, optimised {k2} {r2!r}"
    if k1 == "raise" and isinstance(r1, type):  # an outcome that kept the type only
        if r1 is not r2:
            return f"stock raised {r1.__name__}, optimised raised {r2.__name__}"
    elif k1 == "raise":
        # The same type and message (a compilation error's message names the
        # pipeline: its type is enough).
        if type(r1) is not type(r2):
            return (f"stock raised {type(r1).__name__}: {r1}, optimised raised "
                    f"{type(r2).__name__}: {r2}")
        if not isinstance(r1, NumbaError) and _message(r1) != _message(r2):
            return f"stock raised {type(r1).__name__}({r1}), optimised ({r2})"
    if k1 == "ok" and not _same(r1, r2):
        return f"stock returned {r1!r}, optimised {r2!r}"
    for pos, (x, y) in enumerate(zip(a1, a2, strict=True)):
        if not _same(x, y):
            return f"argument {pos} differs: stock {x!r}, optimised {y!r}"
    return None


def remark_keys(disp, kind=None):
    found = []
    for sig_remarks in lo.remarks(disp).values():
        found += [r.key for r in sig_remarks if kind is None or r.kind.value == kind]
    return found


@pytest.fixture
def both():
    return run_both
