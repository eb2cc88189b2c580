"""Definitions and uses of variables in (pre-SSA) numba IR.

Before SSA a name may be assigned many times, so definitions are lists.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from numba.core import ir


@dataclass(frozen=True)
class Site:
    """A statement and where it is."""

    label: int
    index: int
    stmt: ir.Stmt


class DefUse:
    """Every assignment and every use of every name in a function."""

    def __init__(self, blocks: dict[int, ir.Block]):
        self.defs: dict[str, list[Site]] = defaultdict(list)
        self.uses: dict[str, list[Site]] = defaultdict(list)
        for label, block in blocks.items():
            for index, stmt in enumerate(block.body):
                site = Site(label, index, stmt)
                if isinstance(stmt, ir.Assign):
                    self.defs[stmt.target.name].append(site)
                    value = stmt.value
                    if isinstance(value, ir.Var):
                        used = [value]
                    elif isinstance(value, ir.Expr):
                        used = value.list_vars()
                    else:  # Arg, Const, Global, FreeVar
                        used = []
                else:
                    used = stmt.list_vars()
                for var in used:
                    self.uses[var.name].append(site)

    def defs_in(self, name: str, labels: Iterable[int]) -> list[Site]:
        labels = set(labels)
        return [s for s in self.defs.get(name, ()) if s.label in labels]

    def single_def(self, name: str):
        """The value assigned to ``name`` if it has exactly one definition."""
        sites = self.defs.get(name, ())
        if len(sites) != 1:
            return None
        return sites[0].stmt.value

    def const_value(self, var: ir.Var):
        """The constant ``var`` holds, if it is a single-definition constant."""
        value = self.single_def(var.name)
        if isinstance(value, ir.Const):
            return value.value
        return None

    def global_value(self, var: ir.Var):
        value = self.single_def(var.name)
        if isinstance(value, (ir.Global, ir.FreeVar)):
            return value.value
        return _MISSING


_MISSING = object()

