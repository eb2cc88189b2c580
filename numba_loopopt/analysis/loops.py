"""Natural loops of a numba function, with the facts the passes need."""

from __future__ import annotations

from dataclasses import dataclass

from numba.core import ir
from numba.core.ir_utils import compute_cfg_from_blocks


@dataclass(frozen=True)
class Loop:
    """One natural loop: ``header`` is its only entry block."""

    header: int
    body: frozenset[int]
    entries: frozenset[int]
    """Blocks outside the loop that jump to the header."""
    latches: frozenset[int]
    """Blocks inside the loop that jump back to the header."""
    exits: frozenset[int]
    """Blocks outside the loop that a loop block jumps to."""

    def __contains__(self, label: int) -> bool:
        return label in self.body


class LoopForest:
    """The CFG and the natural loops of a block map, innermost loops first."""

    def __init__(self, blocks: dict[int, ir.Block]):
        self.blocks = blocks
        self.cfg = compute_cfg_from_blocks(blocks)
        loops = []
        for lp in self.cfg.loops().values():
            loops.append(Loop(
                header=lp.header,
                body=frozenset(lp.body),
                entries=frozenset(lp.entries),
                latches=frozenset(p for p, _ in self.cfg.predecessors(lp.header)
                                  if p in lp.body),
                exits=frozenset(lp.exits),
            ))
        # Innermost first: a loop's body strictly contains its inner loops'.
        self.loops = sorted(loops, key=lambda lp: (len(lp.body), lp.header))
        self._dominators = None

    def dominators(self) -> dict[int, set[int]]:
        if self._dominators is None:
            self._dominators = self.cfg.dominators()
        return self._dominators

    def predecessors(self, label: int) -> list[int]:
        return [p for p, _ in self.cfg.predecessors(label)]

    def inner_loops(self, loop: Loop) -> list[Loop]:
        return [lp for lp in self.loops if lp.header != loop.header and lp.body < loop.body]


def successors(block: ir.Block) -> list[int]:
    term = block.terminator
    if isinstance(term, ir.Branch):
        return [term.truebr, term.falsebr]
    if isinstance(term, ir.Jump):
        return [term.target]
    return []
