"""Inline calls to other ``@njit`` functions at numba-IR level, by a cost model.

numba inlines only functions declared ``inline='always'`` (or with an
``inline=`` cost model), never bounds recursion (a recursive ``'always'``
callee never finishes compiling), and mutates the caller's flags on the way.
This pass replaces numba's ``InlineInlinables`` in the pipeline: it inlines any
``@njit`` dispatcher reached as a global, a closure variable or a module
attribute, when the cost model agrees, so type inference crosses the call
(``z = []; bar(z)`` with ``bar`` appending) and the later passes see through
helpers.

Stock numba calls the callee's compiled code: compiled when the caller is
typed (with the globals, closure cells and module attributes of that moment,
and the flags it inherits from the caller), or earlier, with the values and
flags of then.  Inlining rebuilds the callee from its Python source, so a call
is inlined only when that is provably the same code.  Deny by default; legal
when (checked before any edit, else a missed remark and a real call):

* the callee is a plain numba CPU dispatcher (``numba.njit`` or
  ``numba_loopopt.jit``, numba's function compiler, the CPU target) compiled
  by numba's ``Compiler`` or this package's pipeline, not a generator, without
  explicit signatures (their argument casts would be lost), without
  ``locals=`` annotations, and with only the target options of
  :data:`KNOWN_TARGET_OPTIONS` (``UnknownDispatcher``, ``UnknownTargetOption``);
* it compiles in nopython mode (``ObjectModeCallee``);
* every flag that is not in :data:`HARMLESS_FLAGS` equals the caller's, both
  for a compilation now and for each signature compiled already, and so do the
  loopopt options that change results (``FlagsDiffer``);
* every signature it has compiled already was compiled, as numba_loopopt saw
  (``UnknownProvenance`` if not: loaded from numba's cache, or compiled before
  numba_loopopt was imported), when everything its code froze -- its code, the
  globals and closure cells it loads, the attributes of modules it reads,
  argument defaults, the contents of constant arrays -- had the values it has
  now (``FrozenValueChanged``);
* the call passes no ``*args``/``**kwargs``.

After the caller compiled, each callee inlined into its own body is compiled
for the argument types of the call, as stock numba compiles it while typing
the caller: later calls and callers find the same compiled code they would
with stock numba.

Termination: every inlined block remembers its inline path; a call deeper than
``max_depth`` stays a real call (``RecursionLimit`` when the callee is already
on the path), and the function grows by at most ``max_growth`` statements.
"""

from __future__ import annotations

import builtins
import ctypes
import enum
import hashlib
import inspect
import re
import struct
import types as pytypes
import weakref
from dataclasses import dataclass

import numpy as np
from numba.core import compiler, event, ir, types
from numba.core.caching import NullCache
from numba.core.compiler import DefaultPassBuilder
from numba.core.compiler_machinery import register_pass
from numba.core.cpu import InlineOptions
from numba.core.dispatcher import _DispatcherBase, _FunctionCompiler
from numba.core.extending import _Intrinsic
from numba.core.inline_closurecall import InlineWorker, callee_ir_validator
from numba.core.ir_utils import (
    guard,
    resolve_func_from_module,
)
from numba.core.registry import CPUDispatcher, cpu_target
from numba.core.targetconfig import ConfigStack
from numba.core.untyped_passes import InlineInlinables

from .. import irbuild
from ..analysis import code_references
from ..analysis.effects import has_try_block
from ..analysis.manager import Analyses
from ..irbuild import with_body
from ..passbase import LoopOptPass, compile_context, is_known_dispatcher_class, is_known_pipeline
from ..remarks import INLINED_NAMES, Missed, RemarkEmitter

#: numba flags that may differ between caller and callee without changing
#: what the callee's code computes (the GIL, wrappers, debug information,
#: LLVM inlining hints, IR form).  Every other flag must be equal: a flag
#: numba adds later is compared too (deny by default).
HARMLESS_FLAGS = frozenset({
    "release_gil", "no_cpython_wrapper", "no_cfunc_wrapper", "debuginfo",
    "dbg_extend_lifetimes", "dbg_optnone", "dbg_directives_only", "forceinline",
    "inline", "enable_ssa", "no_compile", "enable_looplift", "enable_pyobject_looplift",
})

#: The flags that make a function compile in object mode.
OBJECT_MODE_FLAGS = ("force_pyobject", "enable_pyobject")

#: The target options a callee may have been given: the harmless ones above,
#: and those whose effect is compared through the flags they set.  A callee
#: with any other option is not inlined.
KNOWN_TARGET_OPTIONS = frozenset({
    "nopython", "forceobj", "looplift", "boundscheck", "fastmath", "error_model",
    "parallel", "nogil", "no_cpython_wrapper", "no_cfunc_wrapper", "inline",
    "forceinline", "debug", "no_rewrites", "_nrt", "_dbg_extend_lifetimes",
    "_dbg_optnone",
})

#: The user's names of numba's flags, for remarks.
_OPTION_NAMES = {"auto_parallel": "parallel", "release_gil": "nogil",
                 "debuginfo": "debug", "nrt": "_nrt", "force_pyobject": "forceobj"}

#: Flags named first when several differ (the ones users set).
_FLAG_ORDER = ("error_model", "boundscheck", "fastmath", "auto_parallel")


@dataclass(frozen=True)
class CallSite:
    """A call to an ``@njit`` function found in the caller."""

    label: int
    index: int
    expr: ir.Expr
    dispatcher: object

    @property
    def name(self) -> str:
        return self.dispatcher.py_func.__qualname__


def resolve_dispatcher(func_ir: ir.FunctionIR, expr: ir.Expr):
    """The numba dispatcher ``expr`` calls, if it is one."""
    try:
        definition = guard(func_ir.get_definition, expr.func)
    except KeyError:
        # A name with no definition at all, e.g. the function numba makes of a
        # 'with objmode' block: not a dispatcher.
        return None
    if isinstance(definition, (ir.Global, ir.FreeVar)):
        value = definition.value
    elif isinstance(definition, ir.Expr) and definition.op == "getattr":
        value = guard(resolve_func_from_module, func_ir, definition)
    else:
        return None
    return value if isinstance(value, CPUDispatcher) else None


def callee_flags(dispatcher) -> compiler.Flags:
    """The flags numba would compile ``dispatcher`` with now: inside a
    compilation, the options it was not given are inherited from the function
    being compiled (``fastmath``, ``error_model``, ``_nrt``)."""
    flags = compiler.Flags()
    dispatcher.targetdescr.options.parse_as_flags(flags, dispatcher.targetoptions)
    return dispatcher._compiler._customize_flags(flags)


def semantic_flags(flags) -> dict:
    """The flags of ``flags`` that change what code computes."""
    names = sorted(set(type(flags).options) - HARMLESS_FLAGS,
                   key=lambda n: (_FLAG_ORDER.index(n) if n in _FLAG_ORDER else 9, n))
    return {name: getattr(flags, name) for name in names}


def show_flag(name: str, value) -> str:
    """``fastmath=True``, ``parallel=False``: a flag as the user spells it."""
    if name == "enable_pyobject":
        return f"nopython={not value}"
    if hasattr(value, "flags") and isinstance(value.flags, (set, frozenset)):
        value = True if value.flags == {"fast"} else sorted(value.flags) or False
    elif hasattr(value, "enabled"):
        value = value.enabled
    return f"{_OPTION_NAMES.get(name, name)}={value}"


def flag_difference(theirs: dict, mine: dict) -> tuple[str, str, str] | None:
    """The first flag on which two flag sets differ: its user-facing name and
    both settings as the user spells them (``("fastmath", "fastmath=True",
    "fastmath=False")``), else None."""
    for name, other in theirs.items():
        own = mine.get(name)
        if other != own:
            return _OPTION_NAMES.get(name, name), show_flag(name, other), show_flag(name, own)
    return None


def _flags_missed(where: str, name: str, found: tuple[str, str, str], tail: str = "",
                  **args: object) -> Missed:
    flag, callee, caller = found
    return Missed("FlagsDiffer", f"{where} with {callee}, the caller with {caller}{tail}",
                  callee=name, flag=flag, callee_setting=callee, caller_setting=caller,
                  **args)


def _signature_text(sig) -> str:
    return f"({', '.join(str(t) for t in sig)}{',' if len(sig) == 1 else ''})"


# --- What a compiled callee froze -------------------------------------------
#
# numba reads a function's globals, closure cells and module attributes when
# it compiles it, and copies small constant arrays into the code: a compiled
# signature keeps those values, whatever they become.  Each compilation of a
# CPU dispatcher is recorded (by a listener on numba's "numba:compile" event)
# with a snapshot of them and the flags it got, so that inlining can prove a
# compiled signature computes what the callee's source computes now.

#: Attribute of a dispatcher: {argument types: Provenance} of its compilations.
RECORDS = "_loopopt_provenance"

#: Constant arrays up to this size are fingerprinted by their contents; a
#: larger one makes a compiled callee that reads it unprovable.
HASH_LIMIT = 1 << 24

_MISSING = object()
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class defined in Python, whose attributes can change

#: Values compared by identity: a function, a module or a class is the same
#: behaviour as long as it is the same object.
_IDENTITY_TYPES = (pytypes.FunctionType, pytypes.BuiltinFunctionType,
                   pytypes.ModuleType, type, np.ufunc, types.Type, _DispatcherBase,
                   _Intrinsic, ctypes._CFuncPtr, enum.Enum)


@dataclass(frozen=True, eq=False)
class Frozen:
    """A value as compiled code holds it, comparable with a later snapshot.

    ``kind`` is ``value`` (immutable, compared by type and bits), ``same``
    (compared by identity), ``array`` (identity, layout and contents),
    ``tuple``, ``missing`` (an undefined name) or ``opaque`` (never proven
    unchanged)."""

    kind: str
    data: object
    shown: str

    def same(self, other: Frozen) -> bool:
        if self.kind != other.kind or self.kind == "opaque":
            return False
        if self.kind == "missing":
            return True
        if self.kind == "value":
            return self.data[0] is other.data[0] and self.data[1:] == other.data[1:]
        if self.kind == "same":
            return self.data is other.data
        if self.kind == "array":
            (ref, meta), (ref2, meta2) = self.data, other.data
            held = ref()
            return held is not None and held is ref2() and meta == meta2
        (cls, items), (cls2, items2) = self.data, other.data
        return cls is cls2 and len(items) == len(items2) and all(
            a.same(b) for a, b in zip(items, items2, strict=True))

    def arrays(self):
        """``(nbytes, shown)`` of each array in this value."""
        if self.kind == "array":
            yield self.data[1][-1], self.shown
        elif self.kind == "tuple":
            for item in self.data[1]:
                yield from item.arrays()


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def freeze(value, depth: int = 0) -> Frozen:  # noqa: C901 - one case per kind
    """``value`` as numba's compiled code keeps it."""
    if value is _MISSING or value is ir.UNDEFINED:
        return Frozen("missing", None, "undefined")
    cls = type(value)
    if value is None or cls in (bool, int, str, bytes):
        return Frozen("value", (cls, value), _short(value))
    if cls is float:
        return Frozen("value", (cls, struct.pack("<d", value)), _short(value))
    if cls is complex:
        return Frozen("value", (cls, struct.pack("<dd", value.real, value.imag)),
                      _short(value))
    if isinstance(value, np.generic):
        return Frozen("value", (cls, value.dtype, value.tobytes()), _short(value))
    if isinstance(value, np.dtype):
        return Frozen("value", (cls, value), _short(value))
    if isinstance(value, tuple):
        if depth > 8:
            return Frozen("opaque", None, "a deeply nested tuple")
        return Frozen("tuple", (cls, tuple(freeze(v, depth + 1) for v in value)),
                      _short(value))
    if isinstance(value, np.ndarray):
        shown = f"an array of shape {value.shape} and dtype {value.dtype}"
        if value.dtype.hasobject or value.nbytes > HASH_LIMIT:
            return Frozen("opaque", None, shown + " (not fingerprinted)")
        data = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
        digest = hashlib.blake2b(data, digest_size=16).digest()
        meta = (cls, value.dtype, value.shape, value.strides, digest, value.nbytes)
        return Frozen("array", (weakref.ref(value), meta), shown)
    if isinstance(value, _IDENTITY_TYPES):
        name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
        return Frozen("same", value, name if isinstance(name, str) else _short(value))
    return Frozen("opaque", None, f"a {cls.__name__} object")


def environment(dispatcher) -> dict[str, Frozen]:
    """What ``dispatcher``'s code depends on besides its arguments, as numba
    would compile it now: its code object, the globals and closure cells it
    loads, the attributes of modules and classes among them that it reads
    (``np.pi``, ``lib.K``, ``Colour.RED``), and its argument defaults (which
    numba took when the dispatcher was made)."""
    py_func = dispatcher.py_func
    code = py_func.__code__
    env = {"its code": Frozen("same", code, "other code")}
    names, attrs = code_references(code)
    namespaces = []
    for name in sorted(names):
        value = py_func.__globals__.get(name, _MISSING)
        if value is _MISSING:
            value = getattr(builtins, name, _MISSING)
        env[f"global '{name}'"] = freeze(value)
        namespaces.append((name, value))
    for name, cell in zip(code.co_freevars, py_func.__closure__ or (), strict=True):
        try:
            value = cell.cell_contents
        except ValueError:
            value = _MISSING
        env[f"closure variable '{name}'"] = freeze(value)
        namespaces.append((name, value))
    while namespaces:
        path, value = namespaces.pop(0)
        if path.count(".") >= 3:
            continue
        if isinstance(value, pytypes.ModuleType):
            for attr in sorted(attrs):
                sub = vars(value).get(attr, _MISSING)  # no module __getattr__ side effects
                if sub is not _MISSING:
                    env[f"attribute '{path}.{attr}'"] = freeze(sub)
                    namespaces.append((f"{path}.{attr}", sub))
        elif isinstance(value, type) and value.__flags__ & _HEAPTYPE:
            # A Python class (an Enum's members, a class constant): its plain
            # values; the methods the code names belong to its instances.
            for attr in sorted(a for a in attrs if not a.startswith("__")):
                sub = next((vars(k)[attr] for k in value.__mro__ if attr in vars(k)),
                           _MISSING)
                frozen = freeze(sub)
                if sub is not _MISSING and frozen.kind != "opaque":
                    env[f"attribute '{path}.{attr}'"] = frozen
                    namespaces.append((f"{path}.{attr}", sub))
    for name, param in dispatcher._compiler.pysig.parameters.items():
        if param.default is not param.empty:
            env[f"the default of '{name}'"] = freeze(param.default)
    return env


def changed(then: dict[str, Frozen], now: dict[str, Frozen]):
    """The first entry that differs: ``(what, then, now)``, else None."""
    for key in sorted(set(then) | set(now)):
        old, new = then.get(key), now.get(key)
        if old is None or new is None or not old.same(new):
            return key, old, new
    return None


@dataclass(frozen=True)
class Provenance:
    """How one signature of a dispatcher was compiled."""

    flags: dict
    env: dict


class _ProvenanceRecorder(event.Listener):
    """Records each compilation of a CPU dispatcher (when it starts, so that
    a compilation in progress is known too), and compiles what the inline
    pass inlined once the caller is compiled."""

    def on_start(self, ev):
        disp, args = ev.data.get("dispatcher"), ev.data.get("args")
        if not isinstance(disp, CPUDispatcher) or args is None:
            return
        records = disp.__dict__.setdefault(RECORDS, {})
        key = tuple(args)
        try:
            records[key] = Provenance(semantic_flags(callee_flags(disp)), environment(disp))
        except Exception:  # noqa: BLE001 - never break a compilation; unknown instead
            records.pop(key, None)

    def on_end(self, ev):
        disp, args = ev.data.get("dispatcher"), ev.data.get("args")
        if not isinstance(disp, CPUDispatcher) or args is None:
            return
        cres = disp.overloads.get(tuple(args))
        if cres is None:  # the compilation failed (numba's Event.is_failed is unreliable)
            disp.__dict__.get(RECORDS, {}).pop(tuple(args), None)
            return
        compile_inlined_callees(cres)


_RECORDER = _ProvenanceRecorder()
if _RECORDER.__class__.__name__ not in {type(x).__name__ for x in
                                        event._registered["numba:compile"]}:
    event.register("numba:compile", _RECORDER)


#: Key in a compilation's metadata: the calls inlined into the function's own
#: body, to compile once it is compiled.
INLINED_CALLS = "loopopt_inlined_calls"


@dataclass(frozen=True)
class InlinedCall:
    """A call inlined at depth 1: its callee, the names of the variables it
    passed (positionally and by keyword) and the caller's flags."""

    dispatcher: object
    args: tuple
    kws: tuple
    flags: object


def _type_of(typemap, name: str):
    """The type of caller variable ``name`` after SSA, which may have renamed
    it (``x``, ``x.1``...): known if every version has one type."""
    if name in typemap:
        return typemap[name]
    pattern = re.compile(re.escape(name) + r"\.\d+")
    found = {ty for var, ty in typemap.items() if pattern.fullmatch(var)}
    return found.pop() if len(found) == 1 else None


def compile_inlined_callees(cres) -> None:
    """Compile each callee inlined into ``cres``'s own body for the argument
    types of its call, with the caller's flags on numba's stack, as numba
    does while typing a call: afterwards the callee has the compiled code it
    would have with stock numba (a later caller or call uses it).  A callee
    that does not compile for them is left as it is: stock numba would have
    failed to compile the caller."""
    metadata = cres.metadata
    calls = metadata.pop(INLINED_CALLS, None) if isinstance(metadata, dict) else None
    typemap = getattr(cres.type_annotation, "typemap", None)
    if not calls or not isinstance(typemap, dict):
        return
    for call in calls:
        args = [_type_of(typemap, name) for name in call.args]
        kws = {key: _type_of(typemap, name) for key, name in call.kws}
        if any(ty is None for ty in args) or any(ty is None for ty in kws.values()):
            continue
        try:
            with ConfigStack().enter(call.flags):
                call.dispatcher.get_call_template(tuple(args), kws)
        except Exception:  # noqa: BLE001, S110 - stock numba would not have compiled
            pass


def _cached_signatures(disp):
    """The signatures numba would load from its disk cache for ``disp``
    (``cache=True``): those of the index entries whose key is the one numba
    computes now.  None if the index cannot be read."""
    cache = getattr(disp, "_cache", None)
    if cache is None or isinstance(cache, NullCache) or not getattr(cache, "_enabled", True):
        return ()
    try:
        index = cache._cache_file._load_index()
        codegen = disp.targetctx.codegen()
        return [key[0] for key in index if cache._index_key(key[0], codegen) == key]
    except Exception:  # noqa: BLE001 - an index we cannot read proves nothing
        return None


def result_options(options) -> dict:
    """The loopopt options that change results: ``None`` for stock numba."""
    if options is None:
        return {"fuse_reduce.reassociate": False, "global_arrays_by_address": None}
    return {"fuse_reduce.reassociate": options.fuse_reduce.enabled
            and options.fuse_reduce.reassociate,
            "global_arrays_by_address": options.global_arrays_by_address}


class _Callees:
    """Each callee's untyped IR and verdict, built once per compilation (not
    per call site: numba's frontend is the expensive part of inlining)."""

    def __init__(self, state):
        # numba's untyped pipeline writes flags.enable_ssa on the flags it is
        # given: hand it a copy, never the caller's.
        self.worker = InlineWorker(state.typingctx, state.targetctx, state.locals,
                                   state.pipeline, state.flags.copy(),
                                   validator=callee_ir_validator)
        self.worker._compiler_pipeline = _untyped_pipeline_without_inlining
        self.cache: dict = {}
        self.verdicts: dict = {}
        self.caller_flags = semantic_flags(state.flags)
        self.fastmath = bool(state.flags.fastmath)
        self.caller_options = result_options(compile_context(state).options)

    def get(self, dispatcher):
        key = dispatcher.py_func
        if key not in self.cache:
            try:
                self.cache[key] = self.worker.run_untyped_passes(dispatcher.py_func)
            except Exception as exc:  # noqa: BLE001 - any frontend failure
                self.cache[key] = exc
        return self.cache[key]

    def verdict(self, dispatcher) -> Missed | None:
        """Why ``dispatcher`` cannot be inlined anywhere in this function (the
        remark's location is the call's)."""
        if dispatcher not in self.verdicts:
            try:
                self.verdicts[dispatcher] = self._verdict(dispatcher)
            except Exception as exc:  # noqa: BLE001 - deny what cannot be checked
                name = dispatcher.py_func.__qualname__
                self.verdicts[dispatcher] = Missed(
                    "UnknownDispatcher", f"'{name}' could not be checked "
                    f"({type(exc).__name__}: {exc}); it stays a call", callee=name,
                    error=type(exc).__name__)
        return self.verdicts[dispatcher]

    def _verdict(self, disp) -> Missed | None:  # noqa: C901 - one rule after another
        py_func = disp.py_func
        name = py_func.__qualname__
        if not is_known_dispatcher_class(type(disp)) or \
                type(disp._compiler) is not _FunctionCompiler or \
                disp.targetdescr is not cpu_target:
            return Missed("UnknownDispatcher", f"'{name}' is a {type(disp).__name__} "
                          f"(compiler {type(disp._compiler).__name__}) the inline pass "
                          "does not know; it stays a call", callee=name,
                          dispatcher=type(disp).__name__,
                          compiler=type(disp._compiler).__name__)
        if inspect.isgeneratorfunction(py_func):
            return Missed("GeneratorCallee", f"'{name}' is a generator", callee=name)
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in inspect.signature(py_func).parameters.values()):
            return Missed("VarArgsCallee", f"'{name}' takes *args or **kwargs",
                          callee=name)
        if not disp._can_compile:
            return Missed("ExplicitSignatures", f"'{name}' has explicit signatures: "
                          "inlining would drop the casts to them", callee=name,
                          signatures=len(disp.overloads))
        if disp.locals:
            return Missed("LocalsAnnotation", f"'{name}' declares locals= types",
                          callee=name, locals=", ".join(sorted(disp.locals)))
        pipeline = disp._compiler.pipeline_class
        if not is_known_pipeline(pipeline):
            return Missed("UnknownPipeline", f"'{name}' compiles with its own "
                          f"pipeline {pipeline.__name__}", callee=name,
                          pipeline=pipeline.__name__)
        unknown = sorted(set(disp.targetoptions) - KNOWN_TARGET_OPTIONS)
        if unknown:
            option = unknown[0]
            return Missed("UnknownTargetOption", f"'{name}' has the target option "
                          f"{option}={disp.targetoptions[option]!r}, which the inline "
                          "pass does not know to be harmless; it stays a call",
                          callee=name, option=option)
        fresh = callee_flags(disp)
        mode = [f for f in OBJECT_MODE_FLAGS if getattr(fresh, f)]
        if mode:
            shown = show_flag(mode[0], getattr(fresh, mode[0]))
            return Missed("ObjectModeCallee", f"'{name}' compiles in object mode "
                          f"({shown}): nopython code cannot inline it, and numba "
                          "cannot call it from nopython code either; it stays a call",
                          callee=name, flag=shown)
        found = flag_difference(semantic_flags(fresh), self.caller_flags)
        if found:
            return _flags_missed(f"'{name}' compiles", name, found)
        env = environment(disp)
        why = self._options_differ(name, pipeline, env)
        if why is not None:
            return why
        pysig = disp._compiler.pysig
        for pname, param in inspect.signature(py_func).parameters.items():
            if param.default is not pysig.parameters[pname].default:
                return Missed("FrozenValueChanged", f"the default of '{pname}' of "
                              f"'{name}' changed after numba made its dispatcher, "
                              "which keeps the one it saw then; it stays a call",
                              callee=name, value=f"the default of '{pname}'")
        records = disp.__dict__.get(RECORDS, {})
        for sig in list(disp.overloads):
            record = records.get(sig)
            shown_sig = _signature_text(sig)
            where = f"'{name}' has code compiled for {shown_sig}"
            if record is None:
                return Missed("UnknownProvenance", f"{where} that numba_loopopt did "
                              "not see compiled (loaded from numba's cache, or "
                              "compiled before numba_loopopt was imported): what it "
                              "froze is unknown, and numba would call it; it stays "
                              "a call", callee=name, signature=shown_sig)
            found = flag_difference(record.flags, self.caller_flags)
            if found:
                return _flags_missed(where, name, found, "; numba would call that "
                                     "code, so the call stays a call", signature=shown_sig)
            found = changed(record.env, env)
            if found is not None:
                what, old, new = found
                old = old.shown if old is not None else "absent"
                new = new.shown if new is not None else "absent"
                detail = (f"{what} was {old}; it is {new} now" if old != new else
                          f"{what} has changed since (it is {new})")
                return Missed("FrozenValueChanged", f"{where} when {detail}: numba "
                              "keeps calling the code compiled then, so the call "
                              "stays a call", callee=name, signature=shown_sig,
                              value=what)
        cached = _cached_signatures(disp)
        unseen = None if cached is None else [
            sig for sig in cached if not isinstance(sig, tuple) or sig not in disp.overloads]
        if unseen is None or unseen:
            what = ("code in numba's cache (cache=True) that numba_loopopt cannot list"
                    if unseen is None else "code for " + _signature_text(unseen[0])
                    + " in numba's cache (cache=True), compiled in another process")
            return Missed("UnknownProvenance", f"'{name}' has {what}, which numba would "
                          "load: what it froze is unknown; it stays a call",
                          callee=name, signature=None if unseen is None
                          else _signature_text(unseen[0]))
        return None

    def _options_differ(self, name, pipeline, env) -> Missed | None:
        """The loopopt options that change results must be the callee's."""
        theirs = result_options(pipeline.options.with_environment()
                                if pipeline is not compiler.Compiler else None)
        mine = self.caller_options
        option = "fuse_reduce.reassociate"
        if not self.fastmath and theirs[option] != mine[option]:
            return _flags_missed(f"'{name}' compiles", name, (
                option, f"{option}={theirs[option]}", f"{option}={mine[option]}"))
        option = "global_arrays_by_address"
        if theirs[option] != mine[option]:
            limits = [x for x in (theirs[option], mine[option]) if x is not None]
            for what, frozen in env.items():
                for nbytes, shown in frozen.arrays():
                    if nbytes > min(limits):
                        return _flags_missed(
                            f"'{name}' compiles", name,
                            (option, f"{option}={theirs[option]}", f"{option}={mine[option]}"),
                            f", and it reads {what}, {shown} ({nbytes} bytes)",
                            value=what, nbytes=nbytes)
        return None


def _untyped_pipeline_without_inlining(state):
    """numba's untyped pipeline for a callee, minus its InlineInlinables: that
    one would inline a recursive ``inline='always'`` callee forever.  This pass
    inlines the callee's own calls itself, one level deeper, with the bound."""
    pm = DefaultPassBuilder.define_untyped_pipeline(state)
    pm.passes = [(cls, desc) for cls, desc in pm.passes if cls is not InlineInlinables]
    return pm


def ir_size(func_ir: ir.FunctionIR) -> int:
    return sum(len(block.body) for block in func_ir.blocks.values())


@dataclass(frozen=True)
class InlinePlan:
    """A call the cost model accepted: everything the rewrite needs, and its
    ``Inlined`` remark.  Built by :func:`match`, which changes nothing."""

    site: CallSite
    callee_ir: ir.FunctionIR
    """The callee's untyped IR (shared by every call of it in this function:
    numba's ``inline_ir`` copies what it inlines)."""
    message: str
    args: tuple[tuple[str, object], ...]

    @property
    def cost(self) -> int:
        return ir_size(self.callee_ir)


def self_calls(callee_ir: ir.FunctionIR, py_func) -> int:
    """How many call sites of ``callee_ir`` call ``py_func``."""
    count = 0
    for block in callee_ir.blocks.values():
        for stmt in block.body:
            if isinstance(stmt, ir.Assign) and isinstance(stmt.value, ir.Expr) \
                    and stmt.value.op == "call":
                disp = resolve_dispatcher(callee_ir, stmt.value)
                count += disp is not None and disp.py_func is py_func
    return count


def decide(site: CallSite, caller_ir, callee_ir, depth: int, recursive: bool,
           growth: int, options, root) -> InlinePlan | Missed:
    """The cost model: the depth bound, then the callee's own ``inline=``
    option, then the user's ``cost_model``, else the size and growth budgets."""
    size = ir_size(callee_ir)
    name = site.name
    where = f"'{name}' at depth {depth + 1}"
    if depth >= options.max_depth:
        return Missed("RecursionLimit" if recursive else "DepthLimit",
                      f"{where} is past max_depth={options.max_depth}; it stays a call",
                      callee=name, depth=depth + 1, max_depth=options.max_depth)
    if site.dispatcher.py_func is root:
        fanout = self_calls(callee_ir, root)
        if fanout > 1:
            # numba types each call to the function being compiled by
            # re-typing the whole function; inlining a function with k
            # self-calls into itself leaves k**depth such calls.
            return Missed("RecursionFanout", f"{where}: '{name}' calls itself {fanout} "
                          "times, so inlining it into itself would multiply the "
                          "recursive calls numba re-types; it stays a call",
                          callee=name, self_calls=fanout)
    own = InlineOptions(site.dispatcher.targetoptions.get("inline", "never"))
    if own.is_always_inline:
        return InlinePlan(site, callee_ir, f"{where} (inline='always')",
                          (("cost", size), ("depth", depth + 1)))
    if own.has_cost_model or options.cost_model is not None:
        if own.has_cost_model:
            ok = bool(own.value(site.expr, caller_ir, callee_ir))
            message = f"{where}: its own inline= cost model said {ok}"
        else:
            ok = bool(options.cost_model(site.expr, caller_ir, callee_ir, depth))
            message = f"{where}: the cost_model option said {ok}"
        if not ok:
            return Missed("CostModelDeclined", message, callee=name, cost=size,
                          depth=depth + 1)
        return InlinePlan(site, callee_ir, message, (("cost", size), ("depth", depth + 1)))
    if size > options.max_callee_stmts:
        return Missed("TooCostly", f"{where} costs {size} statements, more than "
                      f"max_callee_stmts={options.max_callee_stmts}", callee=name,
                      cost=size, threshold=options.max_callee_stmts)
    if growth + size > options.max_growth:
        return Missed("GrowthBudget", f"{where} would grow the function to "
                      f"{growth + size} inlined statements, more than "
                      f"max_growth={options.max_growth}", callee=name, cost=size,
                      growth=growth, threshold=options.max_growth)
    return InlinePlan(site, callee_ir, f"{where}: cost {size} <= {options.max_callee_stmts}",
                      (("cost", size), ("threshold", options.max_callee_stmts),
                       ("depth", depth + 1)))


def match_function(func_ir: ir.FunctionIR) -> Missed | None:
    """Why no call of this function may be inlined, else None."""
    if has_try_block(func_ir):
        # numba routes only exceptions raised by calls it sees inside a try
        # block to the handler: an inlined raise would escape it.
        return Missed("TryExcept", "the function has try/except: inlined code's "
                      "exceptions would bypass the handlers, so no call is inlined")
    return None


def match(func_ir: ir.FunctionIR, site: CallSite, path: tuple, callees: _Callees,
          growth: int, options) -> InlinePlan | Missed:
    """Whether the call ``site``, in a block inlined through ``path``, is
    inlined: a plan for :func:`rewrite`, or why not.  Never changes the
    caller's IR (it builds, once, the callee's)."""
    loc = site.expr.loc
    if site.expr.vararg is not None or site.expr.varkwarg is not None:
        return Missed("VarArgsCall", f"the call to '{site.name}' passes *args or "
                      "**kwargs", loc, callee=site.name)
    why = callees.verdict(site.dispatcher)
    if why is not None:
        return why if why.loc is not None else Missed(why.key, why.message, loc, why.args)
    callee_ir = callees.get(site.dispatcher)
    if isinstance(callee_ir, Exception):
        return Missed("CalleeIRFailed", f"numba cannot build the IR of '{site.name}' "
                      f"for inlining: {callee_ir}", loc, callee=site.name,
                      error=type(callee_ir).__name__)
    recursive = site.dispatcher.py_func in path
    found = decide(site, func_ir, callee_ir, len(path) - 1, recursive, growth, options,
                   path[0])
    if isinstance(found, Missed) and found.loc is None:
        return Missed(found.key, found.message, loc, found.args)
    return found


def rewrite(state, plan: InlinePlan, worker: InlineWorker, path: tuple) -> list[int]:
    """Inline the call of ``plan``; the labels of the new blocks, the split
    block's tail first, then the callee's blocks."""
    func_ir = state.func_ir
    site = plan.site
    # numba's inline_ir splits the block it is given in place: give it a copy
    # that takes the block's place (a pass never edits a block in place).
    block = with_body(func_ir.blocks[site.label], list(func_ir.blocks[site.label].body))
    func_ir.blocks[site.label] = block
    _, _, _, new_blocks = worker.inline_ir(func_ir, block, site.index, plan.callee_ir, ())
    # numba names the inlined variables after the callee ('helper_v2_i'):
    # remarks about them show the callee's own names (see remarks.demangle).
    state.metadata.setdefault(INLINED_NAMES, set()).add(plan.callee_ir.func_id.unique_name)
    if len(path) == 1 and site.dispatcher.py_func is not path[0]:
        # Stock numba compiles this callee while typing the call: so will
        # compile_inlined_callees, once this function is compiled.
        state.metadata.setdefault(INLINED_CALLS, []).append(InlinedCall(
            site.dispatcher, tuple(v.name for v in site.expr.args),
            tuple((k, v.name) for k, v in site.expr.kws), state.flags.copy()))
    return [label for label, _ in new_blocks]


def next_site(func_ir: ir.FunctionIR, label: int, start: int = 0) -> CallSite | None:
    """The first call of an ``@njit`` dispatcher in block ``label`` from
    statement ``start`` on."""
    block = func_ir.blocks[label]
    for index in range(start, len(block.body)):
        stmt = block.body[index]
        if isinstance(stmt, ir.Assign) and isinstance(stmt.value, ir.Expr) \
                and stmt.value.op == "call":
            disp = resolve_dispatcher(func_ir, stmt.value)
            if disp is not None:
                return CallSite(label, index, stmt.value, disp)
    return None


def drop_dead_loads(am: Analyses) -> None:
    """Remove the loads of inlined functions that nothing calls any more:
    ``$f = global(helper)`` and ``$f = getattr($mod, helper)``.  The untyped
    pipeline has no dead-code elimination, and a dump should not show them.
    Each round's def-use facts are brought up to date from the blocks the
    last round changed."""
    func_ir = am.func_ir
    while True:
        du = am.defuse
        dead = set()
        for name, sites in du.defs.items():
            if len(sites) != 1 or du.uses.get(name):
                continue
            value = sites[0].stmt.value
            if isinstance(value, (ir.Global, ir.FreeVar)) or (
                    isinstance(value, ir.Expr) and value.op == "getattr"
                    and isinstance(du.single_def(value.value.name), (ir.Global, ir.FreeVar))):
                dead.add(id(sites[0].stmt))
        if not dead:
            return
        with am.edit():
            for label, block in func_ir.blocks.items():
                if any(id(s) in dead for s in block.body):
                    func_ir.blocks[label] = with_body(
                        block, [s for s in block.body if id(s) not in dead])


@register_pass(mutates_CFG=True, analysis_only=False)
class InlineCalls(LoopOptPass):
    """The inlining pass; see the module docstring."""

    pass_name = "inline"

    def transform(self, state, options, emit: RemarkEmitter) -> bool:
        func_ir = state.func_ir
        why = match_function(func_ir)
        if why is not None:
            emit.missed(why)
            return False
        am = Analyses(state)
        callees = _Callees(state)
        root = state.func_id.func
        # Each block's inline path: the functions it was inlined through.
        paths = {label: (root,) for label in func_ir.blocks}
        work = sorted(func_ir.blocks)
        growth = 0
        changed = False
        while work:
            label = work.pop(0)
            site = next_site(func_ir, label)
            while site is not None:
                path = paths[label]
                plan = match(func_ir, site, path, callees, growth, options)
                if isinstance(plan, Missed):
                    emit.missed(plan)
                    site = next_site(func_ir, label, site.index + 1)
                    continue
                # All checks for this call site passed; start transforming.
                with am.edit():
                    tail, *inlined = rewrite(state, plan, callees.worker, path)
                emit.passed("Inlined", site.expr.loc, plan.message, **dict(plan.args))
                growth += plan.cost
                changed = True
                # The block was split: its tail continues at the caller's depth,
                # the callee's blocks one level deeper.
                paths[tail] = path
                for new_label in inlined:
                    paths[new_label] = path + (site.dispatcher.py_func,)
                work[:0] = [*inlined, tail]
                site = None
        if changed:
            drop_dead_loads(am)
            irbuild.finish_untyped_edit(func_ir)
        return changed
