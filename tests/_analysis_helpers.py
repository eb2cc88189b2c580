"""What the analysis tests share: the untyped IR of a function, and the
state a partial type inference (TypeFacts) needs, without compiling."""

from __future__ import annotations

from types import SimpleNamespace

from numba.core.compiler import run_frontend
from numba.core.registry import cpu_target

from numba_loopopt.analysis.defuse import DefUse
from numba_loopopt.analysis.loops import LoopForest
from numba_loopopt.analysis.typing import TypeFacts


def state_of(func, *argtypes) -> SimpleNamespace:
    """A compile state as far as TypeFacts reads it."""
    typingctx = cpu_target.typing_context
    typingctx.refresh()
    return SimpleNamespace(typingctx=typingctx, targetctx=cpu_target.target_context,
                           func_ir=run_frontend(func), args=tuple(argtypes),
                           return_type=None, locals={})


def analyses(func, *argtypes):
    """``(func_ir, forest, du, facts)`` for ``func`` with ``argtypes``."""
    state = state_of(func, *argtypes)
    blocks = state.func_ir.blocks
    return state.func_ir, LoopForest(blocks), DefUse(blocks), TypeFacts(state)
