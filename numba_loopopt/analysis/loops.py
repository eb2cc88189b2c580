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
        self._intervals = None
        self._reducible = None
        self._removed: set[tuple[int, int]] = set()

    def dominators(self) -> dict[int, set[int]]:
        if self._dominators is None:
            self._dominators = self.cfg.dominators()
        return self._dominators

    def dominates(self, a: int, b: int) -> bool:
        """``a in self.dominators()[b]``, without building every block's set
        of dominators (quadratic in the number of blocks for a function of
        consecutive loops): the dominator tree is numbered once, depth first,
        and ``a`` dominates ``b`` when ``b``'s number falls in ``a``'s
        subtree's interval.  Labels the CFG does not reach dominate nothing
        and are dominated by nothing but themselves, as in numba's sets."""
        if self._dominators is not None:
            return a in self._dominators.get(b, ())
        if self._intervals is None:
            self._intervals = _dominator_intervals(self.cfg.immediate_dominators())
        ia, ib = self._intervals.get(a), self._intervals.get(b)
        if ia is None or ib is None:
            return a == b
        return ia[0] <= ib[0] and ib[1] <= ia[1]

    def predecessors(self, label: int) -> list[int]:
        preds = [p for p, _ in self.cfg.predecessors(label)]
        if self._removed:
            preds = [p for p in preds if (p, label) not in self._removed]
        return preds

    def reducible(self) -> bool:
        """Whether every edge back to a loop header comes from a block the
        header dominates.  numba finds loops from the retreating edges of a
        depth-first search; when they all pass this test the CFG is
        reducible, and its loops and dominators are the textbook ones."""
        if self._reducible is None:
            self._reducible = all(self.dominates(lp.header, latch)
                                  for lp in self.loops for latch in lp.latches)
        return self._reducible

    def remove_exit_edge(self, src: int, dst: int) -> None:
        """Record that a pass replaced the branch of ``src`` (a block of a
        loop) by a jump, dropping its edge to ``dst`` (a block outside the
        loop): :meth:`predecessors` no longer lists it.  The caller guarantees
        the loops and the dominators inside unchanged blocks stay what a new
        forest would find (see ``WhileToRange``); nothing else is updated."""
        self._removed.add((src, dst))

    def inner_loops(self, loop: Loop) -> list[Loop]:
        # A loop inside another has its header in the other's body: test
        # that first, it is cheaper than comparing the bodies.
        return [lp for lp in self.loops if lp.header in loop.body
                and lp.header != loop.header and lp.body < loop.body]


def _dominator_intervals(idom: dict[int, int]) -> dict[int, tuple[int, int]]:
    """Each block's (entry, exit) number in a depth-first walk of the
    dominator tree given by immediate dominators (the root is its own)."""
    children: dict[int, list[int]] = {}
    roots = []
    for block, parent in idom.items():
        if parent == block:
            roots.append(block)
        else:
            children.setdefault(parent, []).append(block)
    intervals: dict[int, tuple[int, int]] = {}
    clock = 0
    for root in roots:
        stack = [(root, False)]
        while stack:
            block, done = stack.pop()
            if done:
                intervals[block] = (intervals[block][0], clock)
                clock += 1
                continue
            intervals[block] = (clock, -1)
            clock += 1
            stack.append((block, True))
            stack.extend((child, False) for child in children.get(block, ()))
    return intervals


def successors(block: ir.Block) -> list[int]:
    term = block.terminator
    if isinstance(term, ir.Branch):
        return [term.truebr, term.falsebr]
    if isinstance(term, ir.Jump):
        return [term.target]
    return []


def neighbours(forest: LoopForest, reach: int = 16) -> set[int]:
    """The headers of the loops next to another loop: the code after one
    (within ``reach`` blocks, through no loop's header) enters the other.
    A loop's enclosing loops are not its neighbours (its exit leads back to
    their header).  fuse-loops explains why a loop that is next to another
    one is not counted; a pass that looks at pairs of loops asks this."""
    headers = {lp.header for lp in forest.loops}
    found = set()
    for lp in forest.loops:
        enclosing = {o.header for o in forest.loops if lp.header in o.body}
        seen, work = set(), [(x, 0) for x in sorted(lp.exits)]
        while work:
            label, depth = work.pop()
            if label in seen or depth > reach:
                continue
            seen.add(label)
            if label in headers:
                if label not in enclosing:
                    found |= {lp.header, label}
                continue
            block = forest.blocks.get(label)
            if block is not None:
                work += [(t, depth + 1) for t in successors(block)]
    return found
