"""``numba_loopopt.jit``: ``numba.njit`` compiling through :class:`LoopOptPipeline`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numba

from .options import OptionError, Options
from .pipeline import LoopOptPipeline


def _one_of(*values):
    return lambda v: v in values, " or ".join(repr(v) for v in values)


def _instance(*kinds):
    return (lambda v: isinstance(v, kinds),
            " or ".join(k.__name__ if k is not type(None) else "None" for k in kinds))


#: numba's ``jit`` keywords (and CPU target options) with a cheap value check.
NJIT_KEYWORDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "cache": _instance(bool),
    "locals": _instance(Mapping),
    "boundscheck": _instance(bool, type(None)),
    "nopython": _one_of(True),
    "forceobj": _instance(bool),
    "looplift": _instance(bool),
    "nogil": _instance(bool),
    "parallel": _instance(bool, Mapping),
    "fastmath": _instance(bool, set, frozenset, Mapping),
    "error_model": _one_of("python", "numpy"),
    "inline": (lambda v: v in ("always", "never") or callable(v),
               "'always', 'never' or a callable"),
    "forceinline": _instance(bool),
    "debug": _instance(bool),
    "no_rewrites": _instance(bool),
    "no_cpython_wrapper": _instance(bool),
    "no_cfunc_wrapper": _instance(bool),
    "_nrt": _instance(bool),
    "_dbg_extend_lifetimes": _instance(bool),
    "_dbg_optnone": _instance(bool),
}


def _check_njit_keywords(kwargs: Mapping[str, Any]) -> None:
    for name, value in kwargs.items():
        if name == "pipeline_class":
            raise OptionError(
                "numba_loopopt.jit sets 'pipeline_class' itself; use "
                "numba.njit(pipeline_class=...) for another pipeline")
        if name not in NJIT_KEYWORDS:
            raise OptionError(
                f"unknown keyword {name!r} for numba_loopopt.jit; it takes "
                f"numba's njit keywords ({', '.join(sorted(NJIT_KEYWORDS))}) and "
                "options=Options(...) for the passes")
        accept, expected = NJIT_KEYWORDS[name]
        if not accept(value):
            raise OptionError(
                f"numba_loopopt.jit keyword {name!r} must be {expected}, "
                f"got {value!r}")


def jit(signature_or_function=None, *, options: Options | Mapping | None = None,
        **njit_kwargs):
    """Compile like ``numba.njit``, through the loopopt passes.

    Works bare (``@jit``), called (``@jit()``, ``@jit(cache=True)``) and with
    explicit signatures (``@jit("f8(f8[:])")``, ``@jit([sig1, sig2])``).
    Every njit keyword passes through; ``options`` (an :class:`Options` or a
    mapping of its fields) configures the passes.  Unknown or ill-typed
    keywords and options raise :class:`OptionError` here, at decoration time.
    """
    opts = Options.coerce(options)
    _check_njit_keywords(njit_kwargs)
    if not njit_kwargs.get("forceobj"):
        njit_kwargs.setdefault("nopython", True)
    pipeline = LoopOptPipeline.with_options(opts)
    return numba.jit(signature_or_function, pipeline_class=pipeline, **njit_kwargs)
