"""Inline calls to other ``@njit`` functions at numba-IR level, by a cost model.

numba inlines only functions declared ``inline='always'`` (or with an
``inline=`` cost model), never bounds recursion (a recursive ``'always'``
callee never finishes compiling), and mutates the caller's flags on the way.
This pass replaces numba's ``InlineInlinables`` in the pipeline: it inlines any
``@njit`` dispatcher reached as a global, a closure variable or a module
attribute, when the cost model agrees, so type inference crosses the call
(``z = []; bar(z)`` with ``bar`` appending) and the later passes see through
helpers.

Legal when (checked before any edit, else a missed remark and a real call):

* the callee is a numba CPU dispatcher compiled by numba's or this package's
  pipeline, not a generator, without explicit signatures (their argument casts
  would be lost) and without ``locals=`` annotations;
* its flags that change semantics (``error_model``, ``boundscheck``,
  ``fastmath``, ``parallel``) equal the caller's;
* the call passes no ``*args``/``**kwargs``.

Termination: every inlined block remembers its inline path; a call deeper than
``max_depth`` stays a real call (``RecursionLimit`` when the callee is already
on the path), and the function grows by at most ``max_growth`` statements.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from numba.core import compiler, ir
from numba.core.compiler import DefaultPassBuilder
from numba.core.compiler_machinery import register_pass
from numba.core.cpu import InlineOptions
from numba.core.inline_closurecall import InlineWorker, callee_ir_validator
from numba.core.ir_utils import (
    guard,
    resolve_func_from_module,
)
from numba.core.registry import CPUDispatcher
from numba.core.untyped_passes import InlineInlinables

from .. import irbuild
from ..analysis.defuse import BlockScans, DefUse
from ..analysis.effects import has_try_block
from ..irbuild import with_body
from ..pipeline import LoopOptPass
from ..remarks import INLINED_NAMES, Missed, RemarkEmitter

PASS = "inline"

#: Flags whose difference between caller and callee changes what code means.
SEMANTIC_FLAGS = ("error_model", "boundscheck", "fastmath", "auto_parallel")


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
    flags = compiler.Flags()
    dispatcher.targetdescr.options.parse_as_flags(flags, dispatcher.targetoptions)
    return flags


def why_not_inlinable(site: CallSite, caller_flags, allowed_pipelines) -> Missed | None:
    disp, loc = site.dispatcher, site.expr.loc
    py_func = disp.py_func
    if site.expr.vararg is not None or site.expr.varkwarg is not None:
        return Missed("NotInlinable", f"the call to '{site.name}' passes *args or "
                      "**kwargs", loc)
    if inspect.isgeneratorfunction(py_func):
        return Missed("NotInlinable", f"'{site.name}' is a generator", loc)
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
           for p in inspect.signature(py_func).parameters.values()):
        return Missed("NotInlinable", f"'{site.name}' takes *args or **kwargs", loc)
    if not disp._can_compile:
        return Missed("NotInlinable", f"'{site.name}' has explicit signatures: "
                      "inlining would drop the casts to them", loc)
    if disp.locals:
        return Missed("NotInlinable", f"'{site.name}' declares locals= types", loc)
    pipeline = disp._compiler.pipeline_class
    if not issubclass(pipeline, allowed_pipelines):
        return Missed("NotInlinable", f"'{site.name}' compiles with its own "
                      f"pipeline {pipeline.__name__}", loc)
    theirs = callee_flags(disp)
    for flag in SEMANTIC_FLAGS:
        mine, other = getattr(caller_flags, flag), getattr(theirs, flag)
        if bool(mine) != bool(other) or (flag != "boundscheck" and mine != other):
            return Missed("FlagsDiffer", f"'{site.name}' compiles with {flag}="
                          f"{other}, the caller with {flag}={mine}", loc,)
    return None


def _untyped_pipeline_without_inlining(state):
    """numba's untyped pipeline for a callee, minus its InlineInlinables: that
    one would inline a recursive ``inline='always'`` callee forever.  This pass
    inlines the callee's own calls itself, one level deeper, with the bound."""
    pm = DefaultPassBuilder.define_untyped_pipeline(state)
    pm.passes = [(cls, desc) for cls, desc in pm.passes if cls is not InlineInlinables]
    return pm


class _CalleeIRs:
    """Each callee's untyped IR, built once per compilation (not per call
    site: numba's frontend is the expensive part of inlining)."""

    def __init__(self, state):
        # numba's untyped pipeline writes flags.enable_ssa on the flags it is
        # given: hand it a copy, never the caller's.
        self.worker = InlineWorker(state.typingctx, state.targetctx, state.locals,
                                   state.pipeline, state.flags.copy(),
                                   validator=callee_ir_validator)
        self.worker._compiler_pipeline = _untyped_pipeline_without_inlining
        self.cache: dict = {}

    def get(self, dispatcher):
        key = dispatcher.py_func
        if key not in self.cache:
            try:
                self.cache[key] = self.worker.run_untyped_passes(dispatcher.py_func)
            except Exception as exc:  # noqa: BLE001 - any frontend failure
                self.cache[key] = exc
        return self.cache[key]


def ir_size(func_ir: ir.FunctionIR) -> int:
    return sum(len(block.body) for block in func_ir.blocks.values())


@dataclass(frozen=True)
class Decision:
    inline: bool
    key: str
    message: str
    args: tuple = ()


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
           growth: int, options, root) -> Decision:
    """The cost model: the depth bound, then the callee's own ``inline=``
    option, then the user's ``cost_model``, else the size and growth budgets."""
    size = ir_size(callee_ir)
    where = f"'{site.name}' at depth {depth + 1}"
    if depth >= options.max_depth:
        key = "RecursionLimit" if recursive else "DepthLimit"
        return Decision(False, key, f"{where} is past max_depth={options.max_depth}; "
                        "it stays a call", (("depth", depth + 1),
                                            ("max_depth", options.max_depth)))
    if site.dispatcher.py_func is root:
        fanout = self_calls(callee_ir, root)
        if fanout > 1:
            # numba types each call to the function being compiled by
            # re-typing the whole function; inlining a function with k
            # self-calls into itself leaves k**depth such calls.
            return Decision(False, "RecursionFanout", f"{where}: '{site.name}' "
                            f"calls itself {fanout} times, so inlining it into "
                            "itself would multiply the recursive calls numba "
                            "re-types; it stays a call", (("self_calls", fanout),))
    own = InlineOptions(site.dispatcher.targetoptions.get("inline", "never"))
    if own.is_always_inline:
        return Decision(True, "Inlined", f"{where} (inline='always')",
                        (("cost", size), ("depth", depth + 1)))
    if own.has_cost_model:
        ok = bool(own.value(site.expr, caller_ir, callee_ir))
        return Decision(ok, "Inlined" if ok else "CostModelDeclined",
                        f"{where}: its own inline= cost model said {ok}",
                        (("cost", size), ("depth", depth + 1)))
    if options.cost_model is not None:
        ok = bool(options.cost_model(site.expr, caller_ir, callee_ir, depth))
        return Decision(ok, "Inlined" if ok else "CostModelDeclined",
                        f"{where}: the cost_model option said {ok}",
                        (("cost", size), ("depth", depth + 1)))
    if size > options.max_callee_stmts:
        return Decision(False, "TooCostly", f"{where} costs {size} statements, more "
                        f"than max_callee_stmts={options.max_callee_stmts}",
                        (("cost", size), ("threshold", options.max_callee_stmts)))
    if growth + size > options.max_growth:
        return Decision(False, "GrowthBudget", f"{where} would grow the function to "
                        f"{growth + size} inlined statements, more than "
                        f"max_growth={options.max_growth}",
                        (("cost", size), ("growth", growth),
                         ("threshold", options.max_growth)))
    return Decision(True, "Inlined", f"{where}: cost {size} <= "
                    f"{options.max_callee_stmts}", (("cost", size),
                                                    ("threshold", options.max_callee_stmts),
                                                    ("depth", depth + 1)))


def drop_dead_loads(func_ir: ir.FunctionIR) -> None:
    """Remove the loads of inlined functions that nothing calls any more:
    ``$f = global(helper)`` and ``$f = getattr($mod, helper)``.  The untyped
    pipeline has no dead-code elimination, and a dump should not show them."""
    scans = BlockScans()  # each round rescans only the blocks the last one changed
    while True:
        du = DefUse(func_ir.blocks, scans)
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
        for label, block in func_ir.blocks.items():
            if any(id(s) in dead for s in block.body):
                func_ir.blocks[label] = with_body(
                    block, [s for s in block.body if id(s) not in dead])


@register_pass(mutates_CFG=True, analysis_only=False)
class InlineCalls(LoopOptPass):
    """The inlining pass; see the module docstring."""

    _name = "loopopt_inline"
    pass_name = PASS
    options_field = "inline"

    def transform(self, state, options, emit: RemarkEmitter) -> bool:
        from ..pipeline import LoopOptPipeline

        func_ir = state.func_ir
        if has_try_block(func_ir):
            # numba routes only exceptions raised by calls it sees inside a try
            # block to the handler: an inlined raise would escape it.
            emit.missed("NotInlinable", None, "the function has try/except: inlined "
                        "code's exceptions would bypass the handlers, so no call is "
                        "inlined")
            return False
        allowed = (compiler.Compiler, LoopOptPipeline)
        callees = _CalleeIRs(state)
        root = state.func_id.func
        # Each block's inline path: the functions it was inlined through.
        paths = {label: (root,) for label in func_ir.blocks}
        work = sorted(func_ir.blocks)
        growth = 0
        changed = False
        while work:
            label = work.pop(0)
            site = self._next_site(func_ir, label)
            while site is not None:
                path = paths[label]
                done = self._try_inline(state, site, path, callees, growth, options,
                                        allowed, emit)
                if isinstance(done, int):
                    site = self._next_site(func_ir, label, site.index + done)
                    continue
                size, new_blocks = done
                growth += size
                changed = True
                # The block was split: its tail continues at the caller's depth,
                # the callee's blocks one level deeper.
                (tail, _), *inlined = new_blocks
                paths[tail] = path
                for new_label, _ in inlined:
                    paths[new_label] = path + (site.dispatcher.py_func,)
                work[:0] = [new_label for new_label, _ in inlined] + [tail]
                site = None
        if changed:
            drop_dead_loads(func_ir)
            irbuild.finish_untyped_edit(func_ir)
        return changed

    @staticmethod
    def _next_site(func_ir, label, start=0) -> CallSite | None:
        block = func_ir.blocks[label]
        for index in range(start, len(block.body)):
            stmt = block.body[index]
            if isinstance(stmt, ir.Assign) and isinstance(stmt.value, ir.Expr) \
                    and stmt.value.op == "call":
                disp = resolve_dispatcher(func_ir, stmt.value)
                if disp is not None:
                    return CallSite(label, index, stmt.value, disp)
        return None

    def _try_inline(self, state, site, path, callees, growth, options, allowed, emit):
        func_ir = state.func_ir
        why = why_not_inlinable(site, state.flags, allowed)
        if why is not None:
            emit.missed(why.key, why.loc, why.message)
            return 1
        callee_ir = callees.get(site.dispatcher)
        if isinstance(callee_ir, Exception):
            emit.missed("NotInlinable", site.expr.loc, f"numba cannot build the IR of "
                        f"'{site.name}' for inlining: {callee_ir}")
            return 1
        recursive = site.dispatcher.py_func in path
        decision = decide(site, func_ir, callee_ir, len(path) - 1, recursive, growth,
                          options, path[0])
        if not decision.inline:
            emit.missed(decision.key, site.expr.loc, decision.message,
                        **dict(decision.args))
            return 1
        # All checks for this call site passed; start transforming.
        block = func_ir.blocks[site.label]
        _, callee_blocks, _, new_blocks = callees.worker.inline_ir(
            func_ir, block, site.index, callee_ir, ())
        emit.passed(decision.key, site.expr.loc, decision.message, **dict(decision.args))
        # numba names the inlined variables after the callee ('helper_v2_i'):
        # remarks about them show the callee's own names (see remarks.demangle).
        state.metadata.setdefault(INLINED_NAMES, set()).add(callee_ir.func_id.unique_name)
        return ir_size(callee_ir), new_blocks
