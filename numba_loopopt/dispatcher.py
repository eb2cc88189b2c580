"""The dispatcher behind ``numba_loopopt.jit``: numba's CPU dispatcher that
also carries the loopopt pipeline and options through pickling and caching.

numba's own dispatcher forgets its ``pipeline_class`` when pickled (an
unpickled function compiles with the stock pipeline in the other process), and
its ``cache=True`` keys only on bytecode and signature (a function cached by
one pipeline or option set is loaded, stale, by another).  This subclass

* pickles its options and rebuilds itself with the same pipeline class;
* keys its cache entries also on the package (version and a hash of its
  source) and on the effective options, and keeps the remarks with the
  cached code.
"""

from __future__ import annotations

import hashlib
import warnings
from functools import cache
from pathlib import Path

from numba.core.caching import CompileResultCacheImpl, FunctionCache
from numba.core.errors import NumbaWarning
from numba.core.registry import CPUDispatcher

from . import global_arrays
from ._version import __version__
from .options import Options
from .remarks import METADATA_KEY


@cache
def package_fingerprint() -> str:
    """The version and a hash of the package's sources: a changed pass must
    never load code another version of it compiled."""
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _stable(value) -> str:
    """A text for an option value that is the same in every process."""
    if callable(value):
        code = getattr(value, "__code__", None)
        body = hashlib.sha256(code.co_code).hexdigest()[:16] if code else "?"
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', '?')}:{body}"
    if hasattr(value, "__dataclass_fields__"):
        fields = ", ".join(f"{name}={_stable(getattr(value, name))}"
                           for name in value.__dataclass_fields__)
        return f"{type(value).__name__}({fields})"
    return repr(value)


def options_fingerprint(options: Options) -> str:
    text = _stable(options.with_environment())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _LoopOptCacheImpl(CompileResultCacheImpl):
    """Caches the remarks with the compiled code (numba drops all metadata),
    and says why code holding arrays by address is not cached."""

    def reduce(self, cres):
        remarks = tuple((cres.metadata or {}).get(METADATA_KEY, ()))
        return (super().reduce(cres), remarks)

    def rebuild(self, target_context, payload):
        data, remarks = payload
        cres = super().rebuild(target_context, data)
        return cres._replace(metadata={METADATA_KEY: list(remarks)})

    def check_cachable(self, cres):
        held = global_arrays.arrays_held(cres.library)
        if not held:
            return super().check_cachable(cres)
        # numba would refuse it too, for "dynamic globals": say which, and why.
        name = cres.fndesc.qualname.split(".")[-1]
        total = sum(nbytes for _, nbytes in held)
        warnings.warn_explicit(
            f'numba_loopopt: cannot cache compiled function "{name}": with '
            f"global_arrays_by_address it references {len(held)} global "
            f"array(s) ({global_arrays.megabytes(total)}) by address, and an "
            "address is valid in one process only, so it compiles again in each "
            "process; set the option above the arrays' size (or to None) to "
            "cache it with the arrays copied into the code",
            NumbaWarning, self._locator._py_file, self._lineno)
        return False


class LoopOptFunctionCache(FunctionCache):
    """numba's function cache, keyed also on the package and the options."""

    _impl_class = _LoopOptCacheImpl

    def __init__(self, py_func, options: Options):
        super().__init__(py_func)
        self._options = options

    def _index_key(self, sig, codegen):
        key = super()._index_key(sig, codegen)
        return key + (("numba_loopopt", package_fingerprint(),
                       options_fingerprint(self._options)),)


class LoopOptDispatcher(CPUDispatcher):
    """A CPU dispatcher compiling through a ``LoopOptPipeline`` class."""

    @property
    def loopopt_options(self) -> Options:
        return self._compiler.pipeline_class.options

    def enable_caching(self):
        self._cache = LoopOptFunctionCache(self.py_func, self.loopopt_options)

    def _reduce_states(self):
        states = super()._reduce_states()
        states["loopopt_options"] = self.loopopt_options
        return states

    @classmethod
    def _rebuild(cls, uuid, py_func, locals, targetoptions, can_compile, sigs,
                 loopopt_options):
        try:
            return cls._memo[uuid]
        except KeyError:
            pass
        from .pipeline import LoopOptPipeline

        self = cls(py_func, locals, targetoptions,
                   pipeline_class=LoopOptPipeline.with_options(loopopt_options))
        self._set_uuid(uuid)
        for sig in sigs:
            self.compile(sig)
        self._can_compile = can_compile
        return self
