"""``numba_loopopt.jit``: ``numba.njit`` compiling through :class:`LoopOptPipeline`."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from numba.core import config, extending, sigutils, typeinfer
from numba.core.errors import NumbaPerformanceWarning

from .dispatcher import LoopOptDispatcher
from .options import OptionError, Options
from .pipeline import LoopOptPipeline

# Imported with the package, before the first compilation: the inline pass
# records every compilation of a numba dispatcher from then on (what the
# compiled code froze, with which flags), and inlines only what it saw compiled.
from .transforms import inline as _inline  # noqa: E402,F401,I001


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

    The result is a :class:`~numba_loopopt.dispatcher.LoopOptDispatcher`: a
    numba dispatcher that keeps its pipeline and options when pickled, and
    keys ``cache=True`` entries on them too.
    """
    opts = Options.coerce(options)
    _check_njit_keywords(njit_kwargs)
    targetoptions = dict(njit_kwargs)
    locals_ = dict(targetoptions.pop("locals", {}))
    cache = targetoptions.pop("cache", False)
    forceobj = targetoptions.get("forceobj", False)
    # As numba.jit does: nopython unless object mode is forced.
    targetoptions["nopython"] = not forceobj
    targetoptions.setdefault("boundscheck", None)
    pipeline = LoopOptPipeline.with_options(opts)

    if signature_or_function is None:
        pyfunc, sigs = None, None
    elif isinstance(signature_or_function, list):
        pyfunc, sigs = None, signature_or_function
    elif sigutils.is_signature(signature_or_function):
        pyfunc, sigs = None, [signature_or_function]
    else:
        pyfunc, sigs = signature_or_function, None

    def wrapper(func):
        if extending.is_jitted(func):
            raise TypeError(f"numba_loopopt.jit was applied to an already jitted "
                            f"function {func}; use its .py_func")
        if not inspect.isfunction(func):
            raise TypeError(f"numba_loopopt.jit decorates functions, got "
                            f"{type(func).__name__}")
        if config.DISABLE_JIT:
            return func
        if forceobj and targetoptions.get("looplift", True):
            warnings.warn(NumbaPerformanceWarning(
                f"numba_loopopt: {func.__qualname__} compiles in object mode; "
                "numba compiles the loops it lifts out of it without the loopopt "
                "passes (pass looplift=False, or drop forceobj=True)"), stacklevel=2)
        disp = LoopOptDispatcher(py_func=func, locals=locals_,
                                 targetoptions=targetoptions, pipeline_class=pipeline)
        if cache:
            disp.enable_caching()
        if sigs is not None:
            with typeinfer.register_dispatcher(disp):
                for sig in sigs:
                    disp.compile(sig)
                disp.disable_compile()
        return disp

    return wrapper(pyfunc) if pyfunc is not None else wrapper
