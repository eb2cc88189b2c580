"""Fuse an elementwise array expression (or a gather) into its reductions.

The pass itself (:class:`FuseReductions`, registered with numba as
``loopopt_fuse_reduce``): for each array that is reduced it calls
:func:`~numba_loopopt.transforms.fuse_reduce.matching.match`, and for a
:class:`~numba_loopopt.transforms.fuse_reduce.matching.FusionPlan`
:func:`~numba_loopopt.transforms.fuse_reduce.planning.plan_kernel`,
:func:`~numba_loopopt.transforms.fuse_reduce.kernels.compile_kernel` and
:func:`~numba_loopopt.transforms.fuse_reduce.rewrite.rewrite`; it emits the
remarks.  What the pass does and why it is exact: the package's docstring
(:mod:`numba_loopopt.transforms.fuse_reduce`).
"""

from __future__ import annotations

from numba.core.compiler_machinery import register_pass

from ...analysis.manager import Analyses
from ...passbase import LoopOptPass
from ...remarks import Missed, RemarkEmitter
from .kernels import compile_kernel
from .matching import find_reductions, match
from .planning import plan_kernel
from .rewrite import rewrite

PASS = "fuse-reduce"

#: How remarks name the kind of source (not numba's internal 'arrayexpr').
_SHOWN_KIND = {"arrayexpr": "elementwise expression", "gather": "gather"}


@register_pass(mutates_CFG=False, analysis_only=False)
class FuseReductions(LoopOptPass):
    """The fuse-reduce pass; see :mod:`numba_loopopt.transforms.fuse_reduce`."""

    pass_name = PASS

    def transform(self, state, options, emit: RemarkEmitter) -> bool:
        func_ir, typemap = state.func_ir, state.typemap
        candidates = find_reductions(func_ir, typemap)
        if not candidates:
            return False
        am = Analyses(state)
        am.definitions()
        changed = False
        # One def-use build serves every candidate whose names no fusion
        # since has touched (a fusion replaces statements of its own block
        # only); a candidate that reads or is read by an earlier fused
        # expression gets facts brought up to date.  A build per candidate
        # was quadratic in the number of reductions.
        du, since = None, 0
        for source, reductions in candidates.items():
            if du is None or am.changed_since(since, names=(source,)):
                du, since = am.defuse, am.mark()
            plan = match(func_ir, du, typemap, source, reductions)
            if isinstance(plan, Missed):
                emit.missed(plan)  # its key, message, location and arguments
                continue
            kernel = plan_kernel(plan, typemap, state.typingctx, state.flags,
                                 reassociate=options.reassociate,
                                 vector_exp=options.vector_exp)
            compiled = compile_kernel(plan, kernel, state)
            # All analysis has completed; start transforming.
            with am.edit():
                rewrite(state, plan, compiled)
            changed = True
            self._remark(emit, state, options, plan, kernel)
        if changed:
            am.definitions()
        return changed

    @staticmethod
    def _remark(emit: RemarkEmitter, state, options, plan, kernel) -> None:
        """The ``Fused`` remark for ``plan``, compiled as ``kernel`` says."""
        kinds = plan.describe()
        source = plan.source
        what = f"'{source}'" if not source.startswith("$") else "the array"
        how = ("which is also stored into the array once, in the same loop"
               if plan.escapes else "without materialising it")
        if options.reassociate and not state.flags.fastmath:
            how += " (accumulations reassociated: reassociate=True)"
        extra = {}
        if kernel.note is not None:
            how += f"; {kernel.note}"
            extra["vector_exp"] = kernel.vector_exp
        emit.passed("Fused", plan.reductions[0].stmt.loc,
                    f"{kinds} of {what} computed in one loop with its "
                    f"{_SHOWN_KIND[plan.kind]}, {how}", reductions=kinds, **extra)
