"""The compiler pipeline: numba's nopython pipeline plus the loopopt passes.

Two safety nets keep a pass from breaking a user's compile:

* each pass runs under :class:`LoopOptPass`, which snapshots the IR, and on an
  internal error restores it and records a missed ``InternalError`` remark;
* if compilation fails *after* a pass changed the IR (type inference or
  lowering rejecting a rewrite), :class:`LoopOptPipeline` returns a second,
  stock pipeline, and numba's ``_compile_core`` moves on to it.  It starts from
  a clean state (bytecode re-translated, types and return type reset), so the
  function compiles exactly as stock numba would, and the remarks say why.
  When no pass changed anything, the first error is re-raised as it is, so a
  user's own typing error reads exactly as with stock numba.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from numba.core import errors
from numba.core.compiler import CompilerBase, DefaultPassBuilder
from numba.core.compiler_machinery import AnalysisPass, FunctionPass, PassManager, register_pass
from numba.core.typed_passes import NopythonRewrites
from numba.core.untyped_passes import InlineInlinables

from . import global_arrays
from .options import Options
from .remarks import METADATA_KEY, RemarkEmitter, warn_missed

#: Key of the per-compilation :class:`CompileContext` in numba's state.
STATE_KEY = "loopopt"


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


class LoopOptFallback(errors.NumbaError):
    """Compilation failed after a loopopt pass changed the IR."""


class _IRSnapshot:
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


class LoopOptPass(FunctionPass):
    """Base of every loopopt pass: options, remarks and the rollback net.

    Subclasses set ``_name`` (numba's registry name), ``pass_name`` (the name
    in remarks) and ``options_field`` (their field of :class:`Options`), and
    implement :meth:`transform`.
    """

    pass_name: ClassVar[str]
    options_field: ClassVar[str]

    def __init__(self):
        FunctionPass.__init__(self)

    def transform(self, state, options, emit: RemarkEmitter) -> bool:
        raise NotImplementedError

    def run_pass(self, state) -> bool:
        ctx = compile_context(state)
        pass_options = getattr(ctx.options, self.options_field)
        if not pass_options.enabled:
            return False
        emit = RemarkEmitter(self.pass_name, state.func_ir.loc)
        snapshot = _IRSnapshot(state)
        try:
            changed = bool(self.transform(state, pass_options, emit))
        except Exception as exc:
            if ctx.options.strict:
                raise
            snapshot.restore(state)
            emit = RemarkEmitter(self.pass_name, state.func_ir.loc)
            emit.missed("InternalError", None,
                        f"the pass raised {type(exc).__name__}: {exc}; "
                        "it was rolled back and the function compiles without it")
            changed = False
        emit.commit(state.metadata)
        ctx.changed |= changed
        return changed


@register_pass(mutates_CFG=False, analysis_only=True)
class ReportRemarks(AnalysisPass):
    """Turns missed remarks into NumbaPerformanceWarnings when asked to."""

    _name = "loopopt_report_remarks"

    def __init__(self):
        AnalysisPass.__init__(self)

    def run_pass(self, state) -> bool:
        ctx = compile_context(state)
        emit = RemarkEmitter("loopopt", state.func_ir.loc if state.func_ir else None)
        global_arrays.report(state, emit)
        emit.commit(state.metadata)
        if ctx.options.warn_missed:
            warn_missed(state.metadata.get(METADATA_KEY, ()))
        return False


class _OptimisingPassManager(PassManager):
    """Turns a failure after a loopopt rewrite into a request for the stock
    pipeline (numba moves on to the next pipeline only on a NumbaError)."""

    def run(self, state):
        try:
            super().run(state)
        except Exception as exc:
            ctx = compile_context(state)
            if ctx.changed and ctx.options.fallback and not ctx.options.strict:
                raise LoopOptFallback(f"{type(exc).__name__}: {exc}") from exc
            raise


class _FallbackPassManager(PassManager):
    """numba's stock pipeline, run from a clean state after a failed rewrite."""

    def run(self, state):
        ctx = compile_context(state)
        failure = state.status.fail_reason
        if not isinstance(failure, LoopOptFallback):
            # Nothing was rewritten: the error is the user's, exactly as stock
            # numba reports it.  Running the stock pipeline again would only
            # repeat it with the stage message prefixed twice.
            raise failure
        loc = state.func_ir.loc if state.func_ir is not None else None
        for key, value in ctx.initial.items():
            state[key] = value
        # The rewrites were discarded with the IR, and what the passes missed
        # was judged on IR that did not compile: only internal errors stay.
        state.metadata[METADATA_KEY] = [
            r for r in state.metadata.get(METADATA_KEY, ()) if r.key == "InternalError"]
        emit = RemarkEmitter("loopopt", loc)
        emit.missed("StockFallback", None,
                    "compilation failed after the loopopt passes rewrote the "
                    f"function ({failure}); compiled with numba's stock "
                    "pipeline instead, so no rewrite applies")
        emit.commit(state.metadata)
        ctx.changed = False
        # numba stores the failure in the compile result as a typing error,
        # which the dispatcher raises: this one has been handled.
        state.status.fail_reason = None
        super().run(state)


def _rebuild(pm: PassManager, cls: type) -> PassManager:
    new = cls(pm.pipeline_name)
    new.passes = list(pm.passes)
    return new


class LoopOptPipeline(CompilerBase):
    """numba's nopython pipeline with the loopopt passes inserted.

    Use it as ``@njit(pipeline_class=LoopOptPipeline)`` (default options) or
    through :func:`numba_loopopt.jit`, which also takes options.  Object-mode
    requests get numba's object-mode pipeline, as with numba's ``Compiler``.
    """

    options: ClassVar[Options] = Options()
    _with_options_cache: ClassVar[dict] = {}

    @classmethod
    def with_options(cls, options: Options) -> type:
        """The pipeline class compiling with ``options`` (one class per value)."""
        options = Options.coerce(options)
        if options == cls.options:
            return cls
        key = (cls, options)
        sub = LoopOptPipeline._with_options_cache.get(key)
        if sub is None:
            sub = type(cls.__name__, (cls,), {"options": options,
                                              "__module__": cls.__module__})
            LoopOptPipeline._with_options_cache[key] = sub
        return sub

    def define_pipelines(self):
        state = self.state
        if state.flags.force_pyobject:
            return [DefaultPassBuilder.define_objectmode_pipeline(state)]
        ctx = CompileContext(self.options.with_environment())
        if ctx.options.global_arrays_by_address is not None:
            # Lowering (of this compilation only) references large constant
            # arrays by address; the fallback pipeline keeps doing so.
            state.targetctx = global_arrays.arrays_by_address(
                state.targetctx, ctx.options.global_arrays_by_address)
        # Only a function compiled from bytecode can be re-translated for the
        # fallback; IR handed to compile_ir is mutated by numba's own passes.
        can_fall_back = state.func_ir is None
        ctx.initial = {k: state.get(k) for k in
                       ("func_ir", "typemap", "calltypes", "return_type",
                        "library", "type_annotation", "lifted", "lifted_from")}
        ctx.initial["reload_init"] = []
        state[STATE_KEY] = ctx

        pm = _rebuild(DefaultPassBuilder.define_nopython_pipeline(state, "nopython"),
                      _OptimisingPassManager)
        add_loopopt_passes(pm, ctx.options)
        pm.add_pass(ReportRemarks, "report loopopt remarks")
        pm.finalize()
        if not can_fall_back:
            return [pm]
        stock = _rebuild(DefaultPassBuilder.define_nopython_pipeline(state, "nopython"),
                         _FallbackPassManager)
        stock.add_pass(ReportRemarks, "report loopopt remarks")
        stock.finalize()
        return [pm, stock]


def add_loopopt_passes(pm: PassManager, options: Options) -> None:
    """Insert the loopopt passes into a nopython pipeline, in order.

    The untyped, structural passes sit where numba's ``InlineInlinables`` is
    (before SSA is built, so names may be reassigned freely and no phi needs
    repair); that anchor occurs once in the pipeline.  The inline pass takes
    its place (it honours ``inline='always'`` itself, with a depth bound).
    """
    from .transforms.fuse_loops import FuseLoops
    from .transforms.fuse_reduce import FuseReductions
    from .transforms.inline import InlineCalls
    from .transforms.while_to_range import WhileToRange

    anchor = InlineInlinables
    if options.inline.enabled:
        index = [cls for cls, _ in pm.passes].index(InlineInlinables)
        pm.passes[index] = (InlineCalls, "loopopt: inline calls by a cost model")
        anchor = InlineCalls
    pm.add_pass_after(WhileToRange, anchor)
    pm.add_pass_after(FuseLoops, WhileToRange)
    # Typed: it needs the types and the arrayexpr trees numba's rewrites build
    # (with no_rewrites=True there are none, and no NopythonRewrites either).
    if NopythonRewrites in [cls for cls, _ in pm.passes]:
        pm.add_pass_after(FuseReductions, NopythonRewrites)
