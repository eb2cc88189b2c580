"""The compiler pipeline: numba's nopython pipeline plus the loopopt passes.

Two safety nets keep a pass from breaking a user's compile:

* each pass runs under :class:`~numba_loopopt.passbase.LoopOptPass` (in
  :mod:`numba_loopopt.passbase`, below the transforms), which snapshots the
  IR, and on an internal error restores it and records a missed
  ``InternalError`` remark;
* if compilation fails *after* a pass changed the IR (type inference or
  lowering rejecting a rewrite), :class:`LoopOptPipeline` returns a second,
  stock pipeline, and numba's ``_compile_core`` moves on to it.  It starts from
  a clean state (bytecode re-translated, types and return type reset), so the
  function compiles exactly as stock numba would, and the remarks say why.
  When no pass changed anything, the first error is re-raised as it is, so a
  user's own typing error reads exactly as with stock numba.
"""

from __future__ import annotations

from typing import ClassVar

from numba.core import errors
from numba.core.compiler import CompilerBase, DefaultPassBuilder
from numba.core.compiler_machinery import AnalysisPass, PassManager, register_pass
from numba.core.typed_passes import NopythonRewrites
from numba.core.untyped_passes import InlineInlinables

from . import global_arrays
from .options import Options
from .passbase import STATE_KEY, CompileContext, compile_context, register_pipeline
from .remarks import METADATA_KEY, RemarkEmitter, warn_missed

__all__ = ["LoopOptFallback", "LoopOptPipeline", "ReportRemarks", "add_loopopt_passes"]


class LoopOptFallback(errors.NumbaError):
    """Compilation failed after a loopopt pass changed the IR."""


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


@register_pipeline
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
            if cls is LoopOptPipeline:
                # A user's subclass (which may change the passes) is not
                # known to compile as loopopt does, and nor is its variant.
                register_pipeline(sub)
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
    from .transforms.forward_stores import ForwardStores
    from .transforms.fuse_loops import FuseLoops
    from .transforms.fuse_reduce import FuseReductions
    from .transforms.inline import InlineCalls
    from .transforms.scalar_replace import ScalarReplace
    from .transforms.while_to_range import WhileToRange

    anchor = InlineInlinables
    if options.inline.enabled:
        index = [cls for cls, _ in pm.passes].index(InlineInlinables)
        pm.passes[index] = (InlineCalls, "loopopt: inline calls by a cost model")
        anchor = InlineCalls
    pm.add_pass_after(ScalarReplace, anchor)
    pm.add_pass_after(WhileToRange, ScalarReplace)
    pm.add_pass_after(FuseLoops, WhileToRange)
    pm.add_pass_after(ForwardStores, FuseLoops)
    # Typed: it needs the types and the arrayexpr trees numba's rewrites build
    # (with no_rewrites=True there are none, and no NopythonRewrites either).
    if NopythonRewrites in [cls for cls, _ in pm.passes]:
        pm.add_pass_after(FuseReductions, NopythonRewrites)
