"""The pass base: what every loopopt pass derives from.

It sits between the analyses and the transforms (``analysis/`` -> this module
-> ``transforms/`` -> ``pipeline``): a pass imports its base from here, never
from the pipeline that schedules it.

* :class:`LoopOptPass`: one name per pass, its options, its remarks and the
  per-pass safety net (an IR snapshot restored when the pass raises);
* :class:`CompileContext` and :func:`compile_context`: the per-compilation
  state, kept in numba's compile state under :data:`STATE_KEY`;
* :func:`register_pipeline` and :func:`is_known_pipeline`: which pipeline
  classes compile as the loopopt pipeline does (the pipeline registers them;
  a pass asks without importing the pipeline);
* :func:`register_dispatcher_class` and :func:`is_known_dispatcher_class`:
  which dispatcher classes compile as numba's CPU dispatcher does (the API
  layer registers its own; a pass asks without importing it).

A pass declares its one name::

    @register_pass(mutates_CFG=True, analysis_only=False)
    class FuseReductions(LoopOptPass):
        pass_name = "fuse-reduce"

        def transform(self, state, options, emit) -> bool: ...

and the rest derives from it when the class is created: its field of
:class:`~numba_loopopt.Options` (``options_field = "fuse_reduce"``) and its
name in numba's pass registry (``_name = "loopopt_fuse_reduce"``, which
numba's ``name()`` returns).  A class that still spells those out must spell
them as derived, and the options field must exist: a mistake fails at import,
not at the first compile.  (The attribute is ``pass_name``, not ``name``:
numba's passes already have a ``name()`` classmethod, returning the registry
name, which numba's pass manager calls.)
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass, field
from typing import Any, ClassVar

from numba.core.compiler_machinery import FunctionPass

from .options import PASS_OPTIONS, Options
from .remarks import RemarkEmitter

#: Key of the per-compilation :class:`CompileContext` in numba's state.
STATE_KEY = "loopopt"

#: Prefix of a loopopt pass's name in numba's pass registry.
REGISTRY_PREFIX = "loopopt_"

_PASS_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*\Z")


@dataclass
class CompileContext:
    """Per-compilation state.  Passes are singletons shared by every
    compilation and thread, so nothing per-compile may live on them."""

    options: Options
    changed: bool = False
    initial: dict[str, Any] = field(default_factory=dict)


def compile_context(state) -> CompileContext:
    """The context of this compilation; a default one when a loopopt pass runs
    in someone else's pipeline."""
    ctx = state.get(STATE_KEY)
    if ctx is None:
        ctx = CompileContext(Options().with_environment())
        state[STATE_KEY] = ctx
    return ctx


class IRSnapshot:
    """A cheap copy of everything a pass may change, to roll it back.

    Passes never edit existing statements in place (they build new ones), so
    copying the block bodies, the definitions and the type maps is enough; no
    deep copy, which would also copy every large constant the IR holds.
    """

    def __init__(self, state):
        func_ir = state.func_ir
        self.func_ir = func_ir
        self.attrs = dict(func_ir.copy().__dict__)
        self.attrs["_definitions"] = {k: list(v) for k, v in func_ir._definitions.items()}
        self.state = {k: (dict(state[k]) if isinstance(state.get(k), dict) else state.get(k))
                      for k in ("typemap", "calltypes", "return_type")}

    def restore(self, state) -> None:
        self.func_ir.__dict__.clear()
        self.func_ir.__dict__.update(self.attrs)
        state.func_ir = self.func_ir
        state.update(self.state)


def derived_names(pass_name: str) -> tuple[str, str]:
    """``(options_field, registry name)`` of the pass named ``pass_name``:
    ``"fuse-reduce"`` gives ``("fuse_reduce", "loopopt_fuse_reduce")``."""
    field_name = pass_name.replace("-", "_")
    return field_name, REGISTRY_PREFIX + field_name


class LoopOptPass(FunctionPass):
    """Base of every loopopt pass: options, remarks and the rollback net.

    A subclass sets :attr:`pass_name` and implements :meth:`transform`; see
    the module docstring for what derives from the name.
    """

    pass_name: ClassVar[str]
    """The pass's one name (``"fuse-reduce"``): in remarks, in ``explain
    --pass``, and the source of the two names below."""
    options_field: ClassVar[str]
    """Derived: its field of :class:`~numba_loopopt.Options` (``fuse_reduce``)."""
    _name: ClassVar[str]
    """Derived: its name in numba's pass registry (``loopopt_fuse_reduce``)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "pass_name" not in cls.__dict__:
            if not hasattr(cls, "pass_name"):
                raise TypeError(f"{cls.__qualname__} derives from LoopOptPass but sets "
                                "no pass_name (e.g. pass_name = \"fuse-reduce\")")
            # A subclass of a pass (a test's variant, say) keeps its names,
            # unless it gives numba's registry a name of its own.
            return
        name = cls.pass_name
        if not isinstance(name, str) or not _PASS_NAME.match(name):
            raise TypeError(f"{cls.__qualname__}.pass_name must be lower-case words "
                            f"joined by '-' (e.g. \"fuse-reduce\"), got {name!r}")
        field_name, registry_name = derived_names(name)
        for attr, derived in (("options_field", field_name), ("_name", registry_name)):
            given = cls.__dict__.get(attr)
            if given is not None and given != derived:
                raise TypeError(
                    f"{cls.__qualname__}: a pass has one name; pass_name = {name!r} "
                    f"makes {attr} {derived!r}, but the class sets {given!r} (drop it)")
        if field_name not in PASS_OPTIONS:
            raise TypeError(
                f"{cls.__qualname__}: pass_name = {name!r} needs the field "
                f"{field_name!r} of numba_loopopt.Options (options.PASS_OPTIONS has "
                f"{', '.join(sorted(PASS_OPTIONS))})")
        cls.options_field = field_name
        cls._name = registry_name

    def __init__(self):
        FunctionPass.__init__(self)

    def transform(self, state, options, emit: RemarkEmitter) -> bool:
        """Rewrite ``state.func_ir``; return whether it changed.  ``options``
        is this pass's options object, ``emit`` takes its remarks."""
        raise NotImplementedError

    def run_pass(self, state) -> bool:
        ctx = compile_context(state)
        pass_options = getattr(ctx.options, self.options_field)
        if not pass_options.enabled:
            return False
        emit = RemarkEmitter(self.pass_name, state.func_ir.loc)
        snapshot = IRSnapshot(state)
        try:
            changed = bool(self.transform(state, pass_options, emit))
        except Exception as exc:
            if ctx.options.strict:
                raise
            snapshot.restore(state)
            emit = RemarkEmitter(self.pass_name, state.func_ir.loc)
            emit.missed("InternalError", None,
                        f"the pass raised {type(exc).__name__}: {exc}; "
                        "it was rolled back and the function compiles without it",
                        exception=type(exc).__name__)
            changed = False
        emit.commit(state.metadata)
        ctx.changed |= changed
        return changed


# -- Pipelines that compile as loopopt does ----------------------------------

_KNOWN_PIPELINES: weakref.WeakSet = weakref.WeakSet()


def register_pipeline(cls: type) -> type:
    """Record that pipeline class ``cls`` compiles as the loopopt pipeline
    does (the pipeline registers itself and each of its per-options
    subclasses).  Returns ``cls``, so it works as a class decorator."""
    _KNOWN_PIPELINES.add(cls)
    return cls


def is_known_pipeline(cls) -> bool:
    """Whether ``cls`` is numba's stock ``Compiler`` or a registered loopopt
    pipeline class (not a user's subclass of one): what a pass needs to know
    of a callee's compilation, without importing the pipeline."""
    from numba.core.compiler import Compiler

    return cls is Compiler or (isinstance(cls, type) and cls in _KNOWN_PIPELINES)


# -- Dispatcher classes that compile as numba's CPU dispatcher does ---------------

_KNOWN_DISPATCHERS: weakref.WeakSet = weakref.WeakSet()


def register_dispatcher_class(cls: type) -> type:
    """Record that dispatcher class ``cls`` compiles a function as numba's
    ``CPUDispatcher`` does (``numba_loopopt.dispatcher`` registers its
    ``LoopOptDispatcher``).  Returns ``cls``, so it works as a class
    decorator."""
    _KNOWN_DISPATCHERS.add(cls)
    return cls


def is_known_dispatcher_class(cls) -> bool:
    """Whether ``cls`` is numba's ``CPUDispatcher`` or a registered dispatcher
    class (not a subclass of one): what a pass needs to know of a callee's
    dispatcher, without importing the API layer."""
    from numba.core.registry import CPUDispatcher

    return cls is CPUDispatcher or (isinstance(cls, type) and cls in _KNOWN_DISPATCHERS)
