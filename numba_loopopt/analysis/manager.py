"""One way to keep the analyses current while a pass edits the IR.

A pass makes one :class:`Analyses` for the function it transforms, asks it for
what its match reads, and runs each rewrite inside :meth:`Analyses.edit`::

    am = Analyses(state)
    for header in ...:
        plan = match(state.func_ir, am.loops, am.defuse, am.types, ...)
        if isinstance(plan, Missed):
            ...
        # All analysis has completed; start transforming.
        with am.edit(preserves=TYPES):
            rewrite(state.func_ir, plan)
    if changed:
        irbuild.finish_untyped_edit(state.func_ir)   # renumbers labels: am is done

The three ideas of LLVM's new pass manager, for numba IR:

* **Computed when first asked for, then cached**: :attr:`~Analyses.loops`
  (the :class:`~.loops.LoopForest`: CFG, loops, dominators),
  :attr:`~Analyses.defuse` (:class:`~.defuse.DefUse`), :attr:`~Analyses.types`
  (:class:`~.typing.TypeFacts`, a partial type inference) and numba's own
  ``func_ir._definitions`` (:meth:`~Analyses.definitions`).
* **An edit says what it changed**: the blocks a rewrite replaced, added or
  removed are found by identity, not declared (passes never edit a block in
  place, see :mod:`numba_loopopt.irbuild`), and with them the names the
  changed statements mention.  A rewrite declares only what survives beyond
  that: ``preserves=TYPES`` (no name changes type), or
  :meth:`Edit.removed_exit_edges` (the loops stay the same).
* **Invalidated or updated in one place** (:meth:`Analyses._after`), by one
  rule per analysis:

  - ``defuse`` is brought up to date on its next request, from the changed
    blocks only (:meth:`~.defuse.DefUse.refresh`);
  - ``loops`` stays when the edit kept every block's successors (no edge
    changed, no block added or removed), or when the rewrite declared the
    edges it removed (its predecessor lists are updated, and a loop holding
    a changed block gets a new forest from :meth:`Analyses.loops_for`);
    otherwise it is rebuilt on its next request;
  - ``types`` is dropped unless the edit preserves ``TYPES``;
  - ``_definitions`` is rebuilt on the next :meth:`Analyses.definitions`.

A pass that works in rounds (fuse-loops, fuse-reduce) keeps one round's
analyses in local names and asks :meth:`Analyses.changed_since` whether an
edit since the round began touched the blocks or names a candidate reads:
the analyses still hold for a candidate that no edit touched.

With :data:`CHECK_INCREMENTAL` set (tests set it), every edit compares what
was kept or updated with analyses built anew.

The manager changes no statement: what it writes is numba's
``_definitions``, an analysis numba keeps on the IR.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from numba.core import ir
from numba.core.ir_utils import build_definitions

from .defuse import BlockScans, DefUse
from .loops import LoopForest, successors
from .typing import TypeFacts

#: What a rewrite may declare it preserves, beyond what the edit finds.
LOOPS = "loops"
"""The loop forest: loops, predecessors and dominators are unchanged."""
TYPES = "types"
"""Every name keeps its type (a name the rewrite made may have none: the types
are inferred once, when first read, before or after the rewrite)."""
_PRESERVABLE = frozenset({LOOPS, TYPES})

#: Tests set this to compare, after every edit, each analysis kept or
#: updated with one built anew (slow: it brings back the quadratic cost).
CHECK_INCREMENTAL = False


class Edit:
    """What one rewrite changed, found when it finishes by comparing the
    block map before and after (by identity)."""

    def __init__(self, before: dict[int, ir.Block], preserves: frozenset[str]):
        self._before = before
        self.preserved = preserves
        self.exit_edges: list[tuple[int, int]] = []
        self.replaced: frozenset[int] = frozenset()
        self.added: frozenset[int] = frozenset()
        self.removed: frozenset[int] = frozenset()
        self.names: frozenset[str] = frozenset()
        self.keeps_cfg = True

    def removed_exit_edges(self, edges: Iterable[tuple[int, int]]) -> None:
        """Declare that the edit only turned branches leaving a loop into
        jumps, dropping the edges ``(src, dst)``, and that the loops and the
        dominators inside loops without a changed block stay what a new
        forest would find (the caller's proof: see
        :meth:`~.loops.LoopForest.remove_exit_edge`).  The forest is kept."""
        self.exit_edges.extend(edges)

    @property
    def labels(self) -> frozenset[int]:
        """Every label whose block changed: replaced, added or removed."""
        return self.replaced | self.added | self.removed

    def _close(self, after: dict[int, ir.Block]) -> None:
        before = self._before
        self.replaced = frozenset(label for label, block in after.items()
                                  if label in before and before[label] is not block)
        self.added = frozenset(after.keys() - before.keys())
        self.removed = frozenset(before.keys() - after.keys())
        names = set()
        for label in self.labels:
            old = before[label].body if label in before else []
            new = after[label].body if label in after else []
            kept = {id(s) for s in old} & {id(s) for s in new}
            for stmt in old + new:
                if id(stmt) not in kept:
                    names.update(var.name for var in stmt.list_vars())
        self.names = frozenset(names)
        #: Whether every block kept its successors and none came or went.
        self.keeps_cfg = not self.added and not self.removed and all(
            successors(before[label]) == successors(after[label])
            for label in self.replaced)


class Analyses:
    """The analyses of one function while one pass transforms it; see the
    module docstring.  ``state`` is numba's compile state (``func_ir``, and
    for :attr:`types` what a partial type inference needs)."""

    def __init__(self, state):
        self._state = state
        self._scans = BlockScans()
        self._forest: LoopForest | None = None
        self._stale: set[int] = set()
        self._defuse: DefUse | None = None
        self._defuse_current = False
        self._types: TypeFacts | None = None
        self._definitions_current = False
        self._edits = 0
        self._label_edit: dict[int, int] = {}
        self._name_edit: dict[str, int] = {}

    @property
    def func_ir(self) -> ir.FunctionIR:
        return self._state.func_ir

    # -- The analyses --------------------------------------------------------

    @property
    def loops(self) -> LoopForest:
        """The loop forest of the IR as it is now (or as a declared edit
        kept it: see :meth:`loops_for`)."""
        if self._forest is None or self._forest.blocks is not self.func_ir.blocks:
            self._forest = LoopForest(self.func_ir.blocks)
            self._stale = set()
        return self._forest

    def loops_for(self, labels: Iterable[int]) -> LoopForest:
        """The loop forest, made anew first if it was kept across an edit
        that changed one of ``labels`` (the dominators there may have
        changed): what to match a loop whose body is ``labels`` with."""
        if self._stale and not self._stale.isdisjoint(labels):
            self._forest = None
        return self.loops

    @property
    def defuse(self) -> DefUse:
        """Every definition and use of each name, as the IR is now."""
        if self._defuse is None:
            self._defuse = DefUse(self.func_ir.blocks, self._scans)
        elif not self._defuse_current:
            self._defuse.refresh(self.func_ir.blocks)
        self._defuse_current = True
        return self._defuse

    @property
    def types(self) -> TypeFacts:
        """The types of the untyped IR (inferred when first read)."""
        if self._types is None:
            self._types = TypeFacts(self._state)
        return self._types

    def definitions(self) -> dict:
        """numba's ``func_ir._definitions``, rebuilt if this pass edited the
        IR since the last rebuild, or never rebuilt it (numba's helpers,
        ``get_definition`` and ``find_callname``, read it)."""
        if not self._definitions_current:
            self.func_ir._definitions = build_definitions(self.func_ir.blocks)
            self._definitions_current = True
        return self.func_ir._definitions

    # -- Edits ---------------------------------------------------------------

    @contextmanager
    def edit(self, preserves: str | Iterable[str] = ()) -> Iterator[Edit]:
        """Run a rewrite: ``with am.edit(): rewrite(...)``.  ``preserves``
        names what survives beyond what the edit finds (:data:`TYPES`,
        :data:`LOOPS`)."""
        preserves = frozenset((preserves,) if isinstance(preserves, str) else preserves)
        if not preserves <= _PRESERVABLE:
            raise ValueError(f"cannot preserve {sorted(preserves - _PRESERVABLE)}; "
                             f"known: {sorted(_PRESERVABLE)}")
        edit = Edit(dict(self.func_ir.blocks), preserves)
        yield edit
        edit._close(self.func_ir.blocks)
        self._after(edit)

    def _after(self, edit: Edit) -> None:
        """The one place where analyses are invalidated or updated."""
        if not edit.labels:
            return
        self._edits += 1
        for label in edit.labels:
            self._label_edit[label] = self._edits
        for name in edit.names:
            self._name_edit[name] = self._edits
        self._defuse_current = False
        self._definitions_current = False
        if TYPES not in edit.preserved:
            self._types = None
        if self._forest is not None:
            if edit.exit_edges:
                for src, dst in edit.exit_edges:
                    self._forest.remove_exit_edge(src, dst)
                self._stale |= edit.labels
            elif not (LOOPS in edit.preserved or edit.keeps_cfg):
                self._forest = None
        if CHECK_INCREMENTAL:
            self.check()

    def mark(self) -> int:
        """A point in this pass's edits, for :meth:`changed_since`."""
        return self._edits

    def changed_since(self, mark: int, *, labels: Iterable[int] | None = None,
                      names: Iterable[str] | None = None) -> bool:
        """Whether an edit after ``mark`` changed one of the blocks ``labels``
        or a statement mentioning one of ``names``; with neither given,
        whether there was any edit since ``mark``."""
        if labels is None and names is None:
            return self._edits > mark
        return (any(self._label_edit.get(label, 0) > mark for label in labels or ())
                or any(self._name_edit.get(name, 0) > mark for name in names or ()))

    # -- Checking ------------------------------------------------------------

    def check(self) -> None:
        """Assert that every analysis kept or updated is what a new one
        finds."""
        blocks = self.func_ir.blocks
        if self._defuse is not None:
            _check_defuse(self.defuse, DefUse(blocks))
        if self._forest is not None:
            _check_forest(self._forest, LoopForest(blocks), self._stale)


def _check_defuse(kept: DefUse, new: DefUse) -> None:
    """Assert that refreshed def-use facts are those of a new build."""
    for mine, fresh in ((kept.defs, new.defs), (kept.uses, new.uses)):
        assert {k: v for k, v in mine.items() if v} == dict(fresh)


def _check_forest(kept: LoopForest, new: LoopForest, stale: set[int]) -> None:
    """Assert that a kept forest answers as a new one would (dominators
    inside loops holding a changed block aside)."""
    assert kept.loops == new.loops, (kept.loops, new.loops)
    for label in new.blocks:
        if label in new.cfg.dead_nodes():
            continue
        assert sorted(kept.predecessors(label)) == sorted(new.predecessors(label)), label
    for lp in new.loops:
        if lp.body & stale:
            continue
        for a in lp.body:
            for b in lp.body:
                assert kept.dominates(a, b) == new.dominates(a, b), (lp, a, b)
