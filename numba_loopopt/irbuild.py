"""Small helpers that build numba IR.  They create new nodes and never edit
existing ones, so a pass can be rolled back by restoring block bodies."""

from __future__ import annotations

import copy

from numba.core import ir, ir_utils, postproc


def new_label(blocks: dict[int, ir.Block]) -> int:
    """A label no block of ``blocks`` (nor any other numba IR) uses yet.

    numba's global label counter only knows the labels that went through its
    own helpers; bytecode offsets can be above it, so lift it past ``blocks``
    first."""
    ir_utils._the_max_label.update(max(blocks))
    return ir_utils.next_label()


def fresh(scope: ir.Scope, hint: str, loc: ir.Loc) -> ir.Var:
    return scope.redefine(f"$loopopt_{hint}", loc)


def const(scope: ir.Scope, value, loc: ir.Loc) -> tuple[ir.Var, ir.Assign]:
    var = fresh(scope, "const", loc)
    return var, ir.Assign(ir.Const(value, loc), var, loc)


def binop(scope: ir.Scope, fn, lhs: ir.Var, rhs: ir.Var,
          loc: ir.Loc) -> tuple[ir.Var, ir.Assign]:
    var = fresh(scope, "binop", loc)
    return var, ir.Assign(ir.Expr.binop(fn, lhs, rhs, loc), var, loc)


def branch_on(scope: ir.Scope, cond: ir.Var, truebr: int, falsebr: int,
              loc: ir.Loc) -> list[ir.Stmt]:
    """``branch bool(cond), truebr, falsebr``, as numba's bytecode front end
    emits it."""
    fn = fresh(scope, "bool", loc)
    pred = fresh(scope, "pred", loc)
    return [
        ir.Assign(ir.Global("bool", bool, loc), fn, loc),
        ir.Assign(ir.Expr.call(fn, (cond,), (), loc), pred, loc),
        ir.Branch(pred, truebr, falsebr, loc),
    ]


def retarget(term: ir.Stmt, mapping: dict[int, int]) -> ir.Stmt:
    """A copy of a jump or branch with its targets renamed by ``mapping``."""
    if isinstance(term, ir.Jump):
        return ir.Jump(mapping.get(term.target, term.target), term.loc)
    if isinstance(term, ir.Branch):
        return ir.Branch(term.cond, mapping.get(term.truebr, term.truebr),
                         mapping.get(term.falsebr, term.falsebr), term.loc)
    return term


def with_body(block: ir.Block, body: list[ir.Stmt]) -> ir.Block:
    new = ir.Block(block.scope, block.loc)
    new.body = body
    return new


def copy_region(blocks: dict[int, ir.Block],
                labels) -> tuple[dict[int, int], dict[int, ir.Block]]:
    """Copies of ``labels``' blocks under fresh labels, with jumps between
    them redirected into the copy.  Statements are copied (passes after this
    one rename variables in place), but constant values are shared: numba's
    ``Const``/``Global`` deep copies keep their value, and the scope is kept
    through the memo."""
    mapping = {label: new_label(blocks) for label in sorted(labels)}
    copies = {}
    for label in sorted(labels):
        block = blocks[label]
        memo = {id(block.scope): block.scope}
        body = [copy.deepcopy(stmt, memo) for stmt in block.body[:-1]]
        body.append(retarget(copy.deepcopy(block.terminator, memo), mapping))
        copies[mapping[label]] = with_body(block, body)
    return mapping, copies


def finish_untyped_edit(func_ir: ir.FunctionIR) -> None:
    """What an untyped pass runs after changing the CFG, as numba's own
    InlineInlinables does: drop unreachable blocks, rebuild the definitions,
    re-run numba's post-processing, and merge blocks (which renumbers labels:
    keep none across this call)."""
    cfg = ir_utils.compute_cfg_from_blocks(func_ir.blocks)
    for dead in cfg.dead_nodes():
        del func_ir.blocks[dead]
    func_ir._definitions = ir_utils.build_definitions(func_ir.blocks)
    postproc.PostProcessor(func_ir).run()
    func_ir.blocks = ir_utils.simplify_CFG(func_ir.blocks)
