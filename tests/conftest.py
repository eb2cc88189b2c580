"""Shared helpers: run a kernel stock and through LoopOptPipeline, compare."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from numba import njit

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
    outcomes = []
    for disp in (stock, opt):
        mine = copy.deepcopy(args)
        try:
            outcomes.append(("ok", disp(*mine), mine))
        except Exception as exc:  # noqa: BLE001 - comparing exception types
            outcomes.append(("raise", type(exc), mine))
    (k1, r1, a1), (k2, r2, a2) = outcomes
    assert k1 == k2, f"stock {k1} {r1!r}, optimised {k2} {r2!r}"
    if k1 == "raise":
        assert r1 is r2, f"stock raised {r1}, optimised raised {r2}"
    else:
        assert _same(r1, r2), f"stock returned {r1!r}, optimised {r2!r}"
    for x, y in zip(a1, a2, strict=True):
        assert _same(x, y), f"argument differs: stock {x!r}, optimised {y!r}"
    return opt


def remark_keys(disp, kind=None):
    found = []
    for sig_remarks in lo.remarks(disp).values():
        found += [r.key for r in sig_remarks if kind is None or r.kind.value == kind]
    return found


@pytest.fixture
def both():
    return run_both
