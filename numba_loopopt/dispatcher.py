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

import builtins
import functools
import hashlib
import os
import sys
import sysconfig
import types
import warnings
from functools import cache
from pathlib import Path

import numpy as np
from numba.core.caching import CompileResultCacheImpl, FunctionCache
from numba.core.errors import NumbaWarning
from numba.core.registry import CPUDispatcher

from . import global_arrays
from ._version import __version__
from .analysis import code_references
from .options import Options
from .passbase import register_dispatcher_class
from .remarks import METADATA_KEY


@cache
def package_fingerprint() -> str:
    """The version and a hash of the package's sources: a changed pass must
    never load code another version of it compiled."""
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


#: Where installed packages and the standard library live: their functions,
#: classes and modules are keyed by name (their code is the installed version's).
_LIBRARY_DIRS = tuple(sorted({
    str(Path(p).resolve()) for key in ("stdlib", "platstdlib", "purelib", "platlib")
    if (p := sysconfig.get_paths().get(key))}))


class Unkeyable(Exception):
    """An option whose behaviour cannot be put into a cache key."""


def _in_library(obj) -> bool:
    """Whether ``obj`` (a function, class or module) comes from the standard
    library, an installed package, or is built in."""
    module = obj if isinstance(obj, types.ModuleType) else sys.modules.get(
        getattr(obj, "__module__", None) or "")
    if module is None:
        return False
    if module.__name__ in sys.builtin_module_names:
        return True
    path = getattr(module, "__file__", None)
    if path is None:
        return False  # __main__ of 'python -c', a module built in memory
    resolved = str(Path(path).resolve())
    return any(resolved.startswith(d + os.sep) for d in _LIBRARY_DIRS)


class _Keyer:
    """The text of a value that determines its behaviour, the same in every
    process, or :class:`Unkeyable` naming what cannot be keyed."""

    def __init__(self):
        self.active: dict[int, int] = {}  # objects being walked: a cycle's target

    def text(self, value, where: str) -> str:
        if value is None or value is NotImplemented or value is Ellipsis or isinstance(
                value, (bool, int, float, complex, str, bytes)):
            return f"{type(value).__name__}:{value!r}"
        if isinstance(value, np.generic):
            return f"np:{value.dtype.descr!r}:{value.tobytes().hex()}"
        if isinstance(value, np.dtype):
            return f"dtype:{value.descr!r}"
        if isinstance(value, np.ufunc):
            return f"ufunc:{value.__name__}"
        if isinstance(value, types.ModuleType):
            return f"module:{value.__name__}"
        key = id(value)
        if key in self.active:
            return f"@{self.active[key]}"  # a cycle: a recursive helper
        self.active[key] = len(self.active)
        try:
            return self._compound(value, where)
        finally:
            del self.active[key]

    def _compound(self, value, where: str) -> str:  # noqa: C901 - one case per kind
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise Unkeyable(f"{where} is an array of Python objects")
            data = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
            digest = hashlib.sha256(data).hexdigest()[:32]
            return f"array:{type(value).__name__}:{value.dtype.descr!r}:{value.shape}:{digest}"
        if isinstance(value, (tuple, list)):
            items = ", ".join(self.text(v, f"{where}[{i}]") for i, v in enumerate(value))
            return f"{type(value).__qualname__}({items})"
        if isinstance(value, (set, frozenset)):
            items = sorted(self.text(v, where) for v in value)
            return f"{type(value).__name__}{{{', '.join(items)}}}"
        if isinstance(value, dict):
            items = sorted(f"{self.text(k, where)}: {self.text(v, f'{where}[{k!r}]')}"
                           for k, v in value.items())
            return f"dict{{{', '.join(items)}}}"
        if isinstance(value, type):
            return self.cls(value, where)
        if isinstance(value, types.BuiltinFunctionType) or (
                isinstance(value, types.FunctionType) and _in_library(value)):
            name = f"{type(value).__name__}:{value.__module__}.{value.__qualname__}"
            bound = getattr(value, "__self__", None)
            if bound is not None and not isinstance(bound, types.ModuleType):
                # A built-in method of an object ({}.get): the object counts.
                name += f"({self.text(bound, f'{where}.__self__')})"
            return name
        if isinstance(value, types.FunctionType):
            return self.function(value, where)
        if isinstance(value, (types.MethodDescriptorType, types.WrapperDescriptorType,
                              types.ClassMethodDescriptorType)):
            # str.upper, int.__add__: a built-in type's method.
            return (f"{type(value).__name__}:{self.cls(value.__objclass__, where)}."
                    f"{value.__name__}")
        if isinstance(value, functools.partial):
            return (f"partial({self.text(value.func, where)}, "
                    f"{self.text(value.args, where)}, {self.text(value.keywords, where)})")
        if isinstance(value, types.MethodType):
            return (f"method({self.text(value.__func__, where)}, "
                    f"{self.text(value.__self__, f'{where}.__self__')})")
        if hasattr(type(value), "__dataclass_fields__"):
            fields = ", ".join(f"{name}={self.text(getattr(value, name), f'{where}.{name}')}"
                               for name in type(value).__dataclass_fields__)
            return f"{self.cls(type(value), where)}({fields})"
        raise Unkeyable(f"{where} is a {type(value).__name__} object, whose behaviour "
                        "cannot be keyed")

    def cls(self, cls: type, where: str) -> str:
        """A class of an installed package by name; a user's class also by
        the functions and plain values defined in it (and its user bases)."""
        name = f"class:{cls.__module__}.{cls.__qualname__}"
        if _in_library(cls):
            return name
        members = []
        for klass in cls.__mro__:
            if _in_library(klass):
                continue
            for attr, member in sorted(vars(klass).items()):
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if isinstance(member, property):
                    member = (member.fget, member.fset, member.fdel)
                elif attr.startswith("__") and attr.endswith("__") and not callable(member):
                    continue  # __module__, __doc__, __dataclass_fields__, ...
                members.append(f"{klass.__qualname__}.{attr}="
                               f"{self.text(member, f'{where}: {klass.__qualname__}.{attr}')}")
        return f"{name}[{'; '.join(members)}]"

    def code(self, code: types.CodeType, where: str) -> str:
        consts = ", ".join(self.code(c, where) if isinstance(c, types.CodeType)
                           else self.text(c, where) for c in code.co_consts)
        parts = (code.co_code.hex(), consts, code.co_names, code.co_varnames,
                 code.co_freevars, code.co_cellvars, code.co_argcount,
                 code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags,
                 getattr(code, "co_exceptiontable", b"").hex())
        return f"code({'; '.join(map(str, parts))})"

    def function(self, func: types.FunctionType, where: str) -> str:
        """Everything a Python function's behaviour depends on: its code
        (constants included, nested functions too), defaults, closure cells,
        the globals it loads and the attributes of user modules and classes
        among them that it reads."""
        code = func.__code__
        parts = [f"{func.__module__}.{func.__qualname__}", self.code(code, where),
                 self.text(func.__defaults__, f"{where}: its defaults"),
                 self.text(func.__kwdefaults__, f"{where}: its keyword defaults")]
        for name, cell in zip(code.co_freevars, func.__closure__ or (), strict=True):
            try:
                contents = cell.cell_contents
            except ValueError:
                parts.append(f"cell {name} empty")
                continue
            label = f"{where}: closure variable {name!r}"
            parts.append(f"cell {name}={self.text(contents, label)}")
        names, attrs = code_references(code)
        for name in sorted(names):
            if name in func.__globals__:
                value = func.__globals__[name]
            elif hasattr(builtins, name):
                value = getattr(builtins, name)
            else:
                parts.append(f"global {name} undefined")
                continue
            parts.append(f"global {name}={self.text(value, f'{where}: global {name!r}')}")
            parts += self.attributes(name, value, attrs, where)
        return f"function({'; '.join(parts)})"

    def attributes(self, path: str, value, attrs, where: str, depth: int = 0) -> list[str]:
        """The attributes named in ``attrs`` of a user module (``cfg.LIMIT``),
        and of the user modules among them."""
        if depth > 3 or not isinstance(value, types.ModuleType) or _in_library(value):
            return []
        found = []
        for attr in sorted(attrs):
            sub = vars(value).get(attr, _ABSENT)
            if sub is _ABSENT:
                continue
            found.append(f"{path}.{attr}={self.text(sub, f'{where}: attribute {path}.{attr}')}")
            found += self.attributes(f"{path}.{attr}", sub, attrs, where, depth + 1)
        return found


_ABSENT = object()


def options_fingerprint(options: Options) -> str:
    """A hash of the effective options, the same in every process.

    A callable option (``inline.cost_model``) is keyed on everything that
    determines what it returns: its code with its constants (nested functions
    too), defaults, closure cells, the globals it loads, the attributes of
    user modules and classes it reads, recursively through the user functions
    it calls.  Functions, classes and modules of installed packages and the
    standard library are keyed by name.  Raises :class:`Unkeyable` naming the
    option when something cannot be keyed (an object of a user class, a
    callable instance, an array of objects)."""
    effective = options.with_environment()
    keyer = _Keyer()
    parts = []
    for name in effective.__dataclass_fields__:
        value = getattr(effective, name)
        if hasattr(value, "__dataclass_fields__"):
            fields = ", ".join(f"{field}={keyer.text(getattr(value, field), f'{name}.{field}')}"
                               for field in value.__dataclass_fields__)
            parts.append(f"{name}={type(value).__name__}({fields})")
        else:
            parts.append(f"{name}={keyer.text(value, name)}")
    text = f"Options({', '.join(parts)})"
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
    """numba's function cache, keyed also on the package and the options.

    When an option cannot be keyed (see :func:`options_fingerprint`), nothing
    is loaded or saved: the function compiles in each process, with one
    warning naming the option."""

    _impl_class = _LoopOptCacheImpl

    def __init__(self, py_func, options: Options):
        super().__init__(py_func)
        self._options = options
        self._fingerprint: str | None = None
        self._warned: set[str] = set()

    def _keyable(self) -> bool:
        """Fingerprint the options now (a callable's globals may have changed
        since the last compilation); warn once per reason if they cannot be."""
        try:
            self._fingerprint = options_fingerprint(self._options)
            return True
        except Unkeyable as exc:
            self._fingerprint = None
            why = str(exc)
            if why not in self._warned:
                self._warned.add(why)
                name = getattr(self._py_func, "__qualname__", "?")
                warnings.warn(
                    f'numba_loopopt: cannot cache compiled function "{name}": option '
                    f"{why}; it compiles again in each process", NumbaWarning,
                    stacklevel=4)
            return False

    def load_overload(self, sig, target_context):
        if not self._keyable():
            return None
        return super().load_overload(sig, target_context)

    def save_overload(self, sig, data):
        if self._keyable():
            super().save_overload(sig, data)

    def _index_key(self, sig, codegen):
        key = super()._index_key(sig, codegen)
        fingerprint = self._fingerprint or options_fingerprint(self._options)
        return key + (("numba_loopopt", package_fingerprint(), fingerprint),)


@register_dispatcher_class
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
