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


#: One block's contribution: ``(is_definition, name, site)`` in the order a
#: full scan meets them.
_Records = list[tuple[bool, str, Site]]


def _block_records(label: int, block: ir.Block) -> _Records:
    records: _Records = []
    for index, stmt in enumerate(block.body):
        site = Site(label, index, stmt)
        if isinstance(stmt, ir.Assign):
            records.append((True, stmt.target.name, site))
            value = stmt.value
            if isinstance(value, ir.Var):
                used = [value]
            elif isinstance(value, ir.Expr):
                used = value.list_vars()
            else:  # Arg, Const, Global, FreeVar
                used = []
        else:
            used = stmt.list_vars()
        records.extend((False, var.name, site) for var in used)
    return records


class BlockScans:
    """Each block's definitions and uses, kept across :class:`DefUse` rebuilds
    within one pass.

    A pass that edits a few blocks and then needs a fresh :class:`DefUse`
    rescans only the blocks it replaced: blocks are matched by identity, so
    this is only valid while every edit replaces a block (``with_body``) rather
    than changing its statements in place, as the loopopt passes do.
    """

    def __init__(self):
        self._scans: dict[int, tuple[ir.Block, _Records]] = {}

    def records(self, label: int, block: ir.Block) -> _Records:
        held = self._scans.get(label)
        if held is not None and held[0] is block:
            return held[1]
        records = _block_records(label, block)
        self._scans[label] = (block, records)
        return records


class DefUse:
    """Every assignment and every use of every name in a function.

    ``scans`` reuses the scans of unchanged blocks from earlier builds (see
    :class:`BlockScans`), and lets :meth:`refresh` update the facts in place;
    the result is the same as a build from scratch.
    """

    def __init__(self, blocks: dict[int, ir.Block], scans: BlockScans | None = None):
        self._scans = scans
        self._build(blocks)

    def _build(self, blocks: dict[int, ir.Block]) -> None:
        scans = self._scans
        self.defs: dict[str, list[Site]] = defaultdict(list)
        self.uses: dict[str, list[Site]] = defaultdict(list)
        defs, uses = self.defs, self.uses
        for label, block in blocks.items():
            records = (scans.records(label, block) if scans is not None
                       else _block_records(label, block))
            for is_def, name, site in records:
                (defs if is_def else uses)[name].append(site)
        self._blocks = dict(blocks)
        #: Results analyses derive from these facts, for them to reuse; see
        #: ``effects.read_only_array``.
        self.memo: dict = {}
        #: Changes when a refresh adds a statement the facts did not have:
        #: while it stays the same, refreshes have only taken statements away.
        self.additions = 0

    def refresh(self, blocks: dict[int, ir.Block]) -> None:
        """Update the facts after blocks of ``blocks`` were replaced, as a new
        build would find them.

        Cheap when the labels are the same and no replaced block mentions a
        name its predecessor did not (a pass that only removed statements):
        each name's sites of a block form one run in its lists, in block
        order, so the run is swapped for the new block's sites.  Anything else
        rebuilds (rescanning only the replaced blocks).
        """
        scans = self._scans
        if scans is None or blocks.keys() != self._blocks.keys():
            self._build(blocks)
            return
        changed = [label for label, block in blocks.items()
                   if self._blocks[label] is not block]
        updates = []
        for label in changed:
            old = scans.records(label, self._blocks[label])
            new = scans.records(label, blocks[label])
            names = {(is_def, name) for is_def, name, _ in old}
            if any((is_def, name) not in names for is_def, name, _ in new):
                self._build(blocks)
                return
            updates.append((label, names, new))
            kept = {id(site.stmt) for _, _, site in old}
            if any(id(site.stmt) not in kept for _, _, site in new):
                self.additions += 1
        for label, names, new in updates:
            for is_def, name in names:
                table = self.defs if is_def else self.uses
                sites = table[name]
                start = next(i for i, site in enumerate(sites) if site.label == label)
                end = start
                while end < len(sites) and sites[end].label == label:
                    end += 1
                sites[start:end] = [site for d, n, site in new if d == is_def and n == name]
                if not sites:
                    del table[name]
            self._blocks[label] = blocks[label]

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

