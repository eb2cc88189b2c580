"""analysis.defuse: the definitions and uses of each name, and refreshing
them after blocks were replaced gives what a new build gives."""

from __future__ import annotations

import numpy as np
from numba.core import ir
from numba.core.compiler import run_frontend

from numba_loopopt.analysis.defuse import BlockScans, DefUse
from numba_loopopt.irbuild import with_body

LIMIT = 7


def kernel(a, n):
    k = 3
    s = 0.0
    i = 0
    while i < n:
        s += a[i] * k
        i += 1
    return s + np.pi + LIMIT


def as_dicts(du: DefUse):
    return ({k: [id(s.stmt) for s in v] for k, v in du.defs.items() if v},
            {k: [id(s.stmt) for s in v] for k, v in du.uses.items() if v})


def test_defs_and_uses_of_each_name():
    func_ir = run_frontend(kernel)
    du = DefUse(func_ir.blocks)
    # 'i' is assigned before the loop and in it; 'k' once.
    assert len(du.defs["i"]) == 2 and len(du.defs["k"]) == 1
    assert du.uses["n"] and du.uses["k"]
    for name, sites in du.defs.items():
        for site in sites:
            assert isinstance(site.stmt, ir.Assign) and site.stmt.target.name == name
            assert site.stmt in func_ir.blocks[site.label].body


def test_single_definitions_constants_and_globals():
    func_ir = run_frontend(kernel)
    du = DefUse(func_ir.blocks)
    k_var = du.defs["k"][0].stmt.target
    assert du.const_value(k_var) == 3
    assert du.single_def("i") is None  # two definitions
    assert du.const_value(du.defs["i"][0].stmt.target) is None
    loads = {du.global_value(site.stmt.target) for sites in du.defs.values()
             for site in sites if isinstance(site.stmt.value, ir.Global)}
    assert np in loads and LIMIT in loads


def test_defs_in_restricts_to_labels():
    func_ir = run_frontend(kernel)
    du = DefUse(func_ir.blocks)
    (first,) = [s for s in du.defs["i"] if s.stmt.value.__class__ is ir.Const]
    assert du.defs_in("i", [first.label]) == [first]
    assert du.defs_in("i", []) == []


def test_refresh_after_removing_statements_equals_a_new_build():
    func_ir = run_frontend(kernel)
    blocks = dict(func_ir.blocks)
    du = DefUse(blocks, BlockScans())
    label = max(blocks, key=lambda lb: len(blocks[lb].body))
    block = blocks[label]
    dels = [s for s in block.body if isinstance(s, ir.Del)]
    keep = [s for s in block.body if not isinstance(s, ir.Del)] if dels else block.body[1:]
    blocks[label] = with_body(block, keep)
    du.refresh(blocks)
    assert as_dicts(du) == as_dicts(DefUse(blocks))
    assert du.additions == 0


def test_refresh_after_adding_a_statement_equals_a_new_build():
    func_ir = run_frontend(kernel)
    blocks = dict(func_ir.blocks)
    du = DefUse(blocks, BlockScans())
    label = min(blocks)
    block = blocks[label]
    loc = block.loc
    fresh = ir.Assign(ir.Const(1, loc), block.scope.redefine("extra", loc), loc)
    blocks[label] = with_body(block, [fresh, *block.body])
    du.refresh(blocks)
    assert as_dicts(du) == as_dicts(DefUse(blocks))
    assert du.single_def(fresh.target.name) is fresh.value


def test_refresh_without_scans_rebuilds():
    func_ir = run_frontend(kernel)
    blocks = dict(func_ir.blocks)
    du = DefUse(blocks)
    label = min(blocks)
    blocks[label] = with_body(blocks[label], blocks[label].body[1:])
    du.refresh(blocks)
    assert as_dicts(du) == as_dicts(DefUse(blocks))
