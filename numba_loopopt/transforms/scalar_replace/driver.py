"""The ``scalar-replace`` pass: 0-d arrays become scalars.

Three steps, each a read-only match and a rewrite (see the modules):

1. :mod:`.lower_calls`: calls an integration declared elementwise
   (:mod:`numba_loopopt.scalar_calls`), on 0-d operands, become the scalar
   function on the loaded values;
2. :mod:`.tuples`: tuples built only to be unpacked (inlined returns, calls
   with several outputs) become copies;
3. :mod:`.replace`: 0-d arrays the function creates, used only through
   element reads and writes, become scalar variables;
4. :mod:`.hoist`: reads of 0-d array *arguments* that nothing writes are made
   once, at entry (the function versioned on the arguments not overlapping in
   memory when another array argument might be written).

It runs after inlining (which brings PyTensor's inner graphs into the loop)
and before while-to-range (which then sees an integer bound).
"""

from __future__ import annotations

from numba.core import ir, types
from numba.core.compiler_machinery import register_pass

from ... import irbuild, scalar_calls
from ...analysis.manager import Analyses
from ...analysis.zero_dim import NOT_CONSTANT, allocation, constant_value
from ...passbase import LoopOptPass
from ...remarks import Missed
from . import hoist, lower_calls, replace, tuples


@register_pass(mutates_CFG=True, analysis_only=False)
class ScalarReplace(LoopOptPass):
    """Scalar replacement of 0-d arrays."""

    pass_name = "scalar-replace"

    def transform(self, state, options, emit) -> bool:
        func_ir = state.func_ir
        if not _worth_a_look(func_ir, state.args):
            return False  # type inference, the costly part, is not run
        changed = False
        am = Analyses(state)
        calls = lower_calls.match(func_ir, am.types)
        lowered = [p for p in calls if not isinstance(p, Missed)]
        for p in calls:
            if isinstance(p, Missed):
                emit.missed(p)
        if lowered:
            fastmath = getattr(state.flags, "fastmath", None)
            with am.edit():
                lower_calls.rewrite(func_ir, lowered,
                                    fence=bool(getattr(fastmath, "flags", fastmath)))
            for p in lowered:
                emit.passed("ScalarCall", p.stmt.loc,
                            f"'{p.call.name}' on 0-d operands computed as a scalar "
                            "call", callee=p.call.name)
            changed = True
        with am.edit():
            if tuples.forward(func_ir):
                changed = True
            tuples.remove_dead_tuples(func_ir)
        am.definitions()
        groups = replace.match(func_ir, am.defuse, am.loops, am.types)
        plans = [g for g in groups if not isinstance(g, Missed)]
        for g in groups:
            if isinstance(g, Missed):
                emit.missed(g)
        if plans:
            with am.edit():
                replace.rewrite(func_ir, plans)
            for g in plans:
                shown = [n for n in sorted(g.names) if not n.startswith("$")] or [min(g.names)]
                emit.passed("ScalarReplaced", g.loc,
                            f"0-d array {', '.join(map(repr, shown))} kept in a scalar "
                            "variable (no allocation)", arrays=shown)
            changed = True
            am.definitions()
        if options.hoist_arguments:
            result = hoist.match(func_ir, am.defuse, am.loops, am.types, state.args)
            if isinstance(result, Missed):
                emit.missed(result)
            elif result is not None:
                with am.edit():
                    hoist.rewrite(func_ir, result)
                emit.passed("ReadHoisted", result.loc, result.describe(),
                            arrays=list(result.names), versioned=bool(result.others))
                changed = True
                irbuild.finish_untyped_edit(func_ir)
        return changed


def _worth_a_look(func_ir, argtypes) -> bool:
    """Whether the function has a 0-d argument, a 0-d allocation or a
    registered call: a syntactic look, before any type inference."""
    if any(isinstance(t, types.Array) and t.ndim == 0 for t in argtypes):
        return True
    for block in func_ir.blocks.values():
        for stmt in block.body:
            if not (isinstance(stmt, ir.Assign) and isinstance(stmt.value, ir.Expr)
                    and stmt.value.op == "call"):
                continue
            if allocation(func_ir, stmt.value) is not None:
                return True
            callee = constant_value(func_ir, stmt.value.func)
            if callee is not NOT_CONSTANT and scalar_calls.resolve(callee) is not None:
                return True
    return False

