"""Compile PyTensor's NUMBA mode through :class:`~numba_loopopt.LoopOptPipeline`.

``pytensor.function(..., mode="NUMBA")`` turns a graph into Python source and
hands every generated function (the graph, each Op, the loop of a ``scan``) to
``pytensor.link.numba.dispatch.basic.numba_njit``, a thin wrapper around
``numba.njit``.  :func:`enable` replaces the one ``numba.njit`` that wrapper
calls with :func:`numba_loopopt.jit`, so every function PyTensor creates from
then on compiles through the loopopt passes, with PyTensor's own keywords
(``fastmath``, ``boundscheck``, ``cache``...) unchanged.  :func:`disable` puts
``numba.njit`` back.  The choice is made when PyTensor *creates* a function,
that is in ``pytensor.function``: a compiled PyTensor function keeps the
pipeline it was compiled with.

PyTensor caches compiled code on disk (``config.numba__cache``, in
``<base_compiledir>/numba``), keyed on a hash of the generated source and on
numba's signature.  Functions created while enabled are
:class:`~numba_loopopt.dispatcher.LoopOptDispatcher`\\ s, whose cache entries
are keyed also on the package fingerprint and the loopopt options: optimised
and stock code share PyTensor's cache files but never each other's entries.

Setting ``NUMBA_LOOPOPT_PYTENSOR=1`` enables it with default options as soon
as this module is imported, without importing PyTensor: if PyTensor's numba
backend is not loaded yet, a one-shot import hook patches it when it is.

PyTensor is imported lazily: this module imports without it.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import sys
import types
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from . import scalar_calls
from .decorator import NJIT_KEYWORDS, jit
from .options import Options
from .remarks import METADATA_KEY, Remark

#: Setting it to a true value (``1``) enables the integration at import time.
ENV_VAR = "NUMBA_LOOPOPT_PYTENSOR"

#: The PyTensor module whose ``_njit`` (``numba.njit``) is replaced.
BACKEND_MODULE = "pytensor.link.numba.dispatch.basic"

#: The options while enabled, ``None`` while disabled.
_active: Options | None = None
#: The ``_njit`` found in PyTensor's backend before it was patched.
_stock_njit: Callable | None = None


def _loopopt_njit(*args: Any, **kwargs: Any):
    """Stands in for ``numba.njit`` inside PyTensor's ``numba_njit``."""
    options = _active
    unknown = set(kwargs) - set(NJIT_KEYWORDS)
    if options is None or unknown:
        if unknown:
            warnings.warn(
                f"numba_loopopt.pytensor: PyTensor passed numba keywords "
                f"{sorted(unknown)} that numba_loopopt.jit does not take; this "
                "function compiles with stock numba", RuntimeWarning, stacklevel=3)
        return _stock_njit(*args, **kwargs)
    return jit(*args, options=options, **kwargs)


def _patch(module) -> None:
    global _stock_njit
    current = getattr(module, "_njit", None)
    if current is _loopopt_njit:
        return
    import numba

    if current is not numba.njit:
        version = getattr(sys.modules.get("pytensor"), "__version__", "?")
        raise RuntimeError(
            f"numba_loopopt.pytensor cannot hook PyTensor {version}: "
            f"{BACKEND_MODULE}._njit is {current!r}, not numba.njit; this "
            "integration supports pytensor>=2.38,<3.1")
    _stock_njit = current
    module._njit = _loopopt_njit


def _unpatch() -> None:
    module = sys.modules.get(BACKEND_MODULE)
    if module is not None and getattr(module, "_njit", None) is _loopopt_njit:
        module._njit = _stock_njit


class _PatchOnImport:
    """A one-shot ``sys.meta_path`` finder: patches PyTensor's backend right
    after it executes, before the modules that import it define their
    module-level helpers."""

    def find_spec(self, name, path, target=None):
        if name != BACKEND_MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        _remove_hook()
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_and_patch(module):
            global _active
            exec_module(module)
            if _active is None:
                return
            try:
                _patch(module)
            except RuntimeError as exc:
                # Never break PyTensor's import: run it stock and say why.
                _active = None
                warnings.warn(str(exc), RuntimeWarning, stacklevel=2)

        loader.exec_module = exec_and_patch
        return spec


_hook = _PatchOnImport()


def _remove_hook() -> None:
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(_hook)


def _closure(fn) -> dict:
    code = getattr(fn, "__code__", None)
    cells = getattr(fn, "__closure__", None) or ()
    if code is None:
        return {}
    return {name: cell.cell_contents for name, cell in zip(code.co_freevars, cells, strict=False)
            if _cell_filled(cell)}


def elemwise_scalar_call(callee) -> scalar_calls.ScalarCall | None:
    """What an ``Elemwise`` function of PyTensor's NUMBA mode computes.

    PyTensor compiles ``def elemwise(*args): return jitable_func(*args)``,
    where ``jitable_func`` is the Python function ``numba_funcify_Elemwise``
    made, typed by an ``@overload`` calling numba's ``_vectorized`` with
    ``store_core_outputs(scalar_op_fn)``: each output element is
    ``scalar_op_fn`` of the input elements, cast to the output dtype, written
    into the input the ``inplace_pattern`` names or into a fresh array.  Its
    closure holds the Apply ``node`` (types, in-place pattern), the
    ``output_dtypes`` and ``scalar_op_fn``: all the scalar-replace pass needs.
    Anything else: ``None``.
    """
    qualname = "numba_funcify_Elemwise.<locals>.elemwise"
    if getattr(callee, "__qualname__", "") == qualname:
        jitable = callee  # the Python function itself, typed by its overload
    else:
        py_func = getattr(callee, "py_func", None)
        if py_func is None or getattr(py_func, "__name__", None) != "elemwise":
            return None
        jitable = getattr(py_func, "__globals__", {}).get("jitable_func")
    if getattr(jitable, "__qualname__", "") != qualname:
        return None
    cells = _closure(jitable)
    node, dtypes, fn = cells.get("node"), cells.get("output_dtypes"), cells.get("scalar_op_fn")
    op = getattr(node, "op", None)
    if node is None or fn is None or dtypes is None or type(op).__name__ != "Elemwise":
        return None
    if not type(op).__module__.startswith("pytensor."):
        return None
    if len(dtypes) != len(node.outputs):
        return None
    import numpy as np

    return scalar_calls.ScalarCall(
        fn=fn, n_in=len(node.inputs),
        out_dtypes=tuple(np.dtype(d) for d in dtypes),
        inplace=tuple(sorted(op.inplace_pattern.items())),
        in_ndims=tuple(i.type.ndim for i in node.inputs),
        out_ndims=tuple(o.type.ndim for o in node.outputs),
        name=f"elemwise {op}")


def deepcopy_scalar_call(callee) -> scalar_calls.ScalarCall | None:
    """PyTensor's ``DeepCopyOp`` and the ``numba_deepcopy`` it calls
    (``np.copy(x)`` for an array): of a 0-d array, a fresh 0-d array holding
    the same value."""
    py_func = getattr(callee, "py_func", callee)
    if getattr(py_func, "__qualname__", "") not in (
            "numba_funcify_DeepCopyOp.<locals>.deepcopy",   # the Op's function
            "numba_deepcopy"):                              # what it calls, inlined
        return None
    if not getattr(py_func, "__module__", "").startswith("pytensor."):
        return None
    from .runtime import identity

    return scalar_calls.ScalarCall(fn=identity, n_in=1, out_dtypes=(None,),
                                   in_ndims=(0,), out_ndims=(0,), name="deepcopy",
                                   arrays_only=True)


scalar_calls.register(elemwise_scalar_call)
scalar_calls.register(deepcopy_scalar_call)


def enable(options: Options | Mapping | None = None) -> None:
    """Compile the functions PyTensor's NUMBA mode creates from now on through
    the loopopt passes, with ``options`` (an :class:`~numba_loopopt.Options`
    or a mapping of its fields; default options when ``None``).

    Calling it again changes the options for functions created afterwards.
    Imports PyTensor's numba backend; raises ``ImportError`` when PyTensor is
    not installed, and ``RuntimeError`` when its backend has no hook point
    this module knows (an unsupported PyTensor release).
    """
    global _active
    options = Options.coerce(options)
    previous = _active
    _active = options
    try:
        if BACKEND_MODULE not in sys.modules:
            if _hook not in sys.meta_path:
                sys.meta_path.insert(0, _hook)
            try:
                importlib.import_module(BACKEND_MODULE)  # the hook patches it
            except ImportError as exc:
                raise ImportError(f"numba_loopopt.pytensor needs PyTensor ({exc}): "
                                  "pip install 'numba_loopopt[pytensor]'") from exc
        _patch(sys.modules[BACKEND_MODULE])
    except BaseException:
        _active = previous
        if previous is None:
            _remove_hook()
        raise


def disable() -> None:
    """Create PyTensor's numba functions with stock ``numba.njit`` again.

    PyTensor functions compiled while enabled keep their optimised code.
    """
    global _active
    _active = None
    _remove_hook()
    _unpatch()


def is_enabled() -> bool:
    """Whether PyTensor functions created now compile through the passes."""
    return _active is not None


def active_options() -> Options | None:
    """The options in effect, ``None`` while disabled."""
    return _active


@contextlib.contextmanager
def enabled(options: Options | Mapping | None = None) -> Iterator[None]:
    """:func:`enable` for the ``with`` block, then restore the previous state
    (disabled, or enabled with the previous options)."""
    previous = _active
    enable(options)
    try:
        yield
    finally:
        if previous is None:
            disable()
        else:
            enable(previous)


def _environment_flag(environ: Mapping[str, str] = os.environ) -> bool:
    raw = environ.get(ENV_VAR)
    return bool(raw) and raw not in ("0", "false", "False", "no")


def enable_from_environment(environ: Mapping[str, str] = os.environ) -> bool:
    """Enable with default options if ``NUMBA_LOOPOPT_PYTENSOR`` says so,
    without importing PyTensor; returns whether it did.

    If PyTensor's numba backend is loaded, it is patched now; otherwise when it
    is imported.
    """
    global _active
    if not _environment_flag(environ):
        return False
    if _active is None:
        _active = Options()
    if BACKEND_MODULE in sys.modules:
        _patch(sys.modules[BACKEND_MODULE])
    elif _hook not in sys.meta_path:
        sys.meta_path.insert(0, _hook)
    return True


# ---------------------------------------------------------------------------
# Inspection: which numba functions a compiled PyTensor function is made of.
# ---------------------------------------------------------------------------


def _jitted_entry(fn) -> Any:
    """The numba dispatcher behind a compiled PyTensor function (or ``fn``
    itself if it is a dispatcher)."""
    from numba.core.dispatcher import Dispatcher

    if isinstance(fn, Dispatcher):
        return fn
    jit_fn = getattr(getattr(fn, "vm", None), "jit_fn", None)
    if not isinstance(jit_fn, Dispatcher):
        raise TypeError(
            "expected a pytensor function compiled with mode='NUMBA' (or a numba "
            f"dispatcher), got {type(fn).__name__}")
    return jit_fn


def _referenced_names(code) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _referenced_names(const)
    return names


def dispatchers(fn) -> list:
    """Every numba dispatcher a compiled PyTensor function calls, outermost
    first: the graph function, PyTensor's caching wrappers, each Op's
    function, a scan's loop and its inner graph, the scalar functions of
    Elemwise Ops.

    Found by following the names each function's code reads from its globals
    and closure, as numba's typing does, through plain Python functions too
    (PyTensor's Elemwise is a Python function with a numba ``@overload``).
    """
    from numba.core.dispatcher import Dispatcher

    found: list = []
    seen: set[int] = set()
    todo = [_jitted_entry(fn)]
    while todo:
        obj = todo.pop(0)
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, Dispatcher):
            found.append(obj)
            obj = obj.py_func
        values = [obj.__globals__.get(name)
                  for name in sorted(_referenced_names(obj.__code__))]
        values += [cell.cell_contents for cell in obj.__closure__ or ()
                   if _cell_filled(cell)]
        todo += [v for v in values if isinstance(v, (Dispatcher, types.FunctionType))]
    return found


def _cell_filled(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def remarks(fn) -> list[tuple[str, Remark]]:
    """The loopopt remarks of every numba function a compiled PyTensor
    function is made of, as ``(function name, remark)`` pairs.

    Only functions numba compiled in this process have remarks: on a hit in
    PyTensor's disk cache, numba loads the outermost function with everything
    it calls already linked in, and compiles none of the inner ones.  Compile
    with ``pytensor.config.numba__cache = False`` to see every remark.
    """
    found = []
    for disp in dispatchers(fn):
        for cres in disp.overloads.values():
            # numba's own cache drops the metadata of what it loads (None).
            found += [(disp.py_func.__name__, r)
                      for r in (cres.metadata or {}).get(METADATA_KEY, ())]
    return found


enable_from_environment()
