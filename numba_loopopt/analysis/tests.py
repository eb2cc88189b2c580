"""Loop tests: the conditional branches that leave or stay in a loop.

numba IR for ``while i < n and not cond.item():`` branches on
``$pred = bool($x)``; ``$x`` is a comparison, ``cond.item()``, ``flag[k]`` or a
plain name.  CPython 3.11+ emits every test twice: once in a chain of guard
blocks before the loop and once in a chain at the latch.  This module
recognises one test, and walks those two chains.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from numba.core import ir

from ..elide import short_repr
from .defuse import DefUse
from .loops import Loop, LoopForest

#: Comparisons a counter test may use, and the same comparison with swapped operands.
COMPARISONS = {
    operator.lt: operator.gt, operator.le: operator.ge,
    operator.gt: operator.lt, operator.ge: operator.le,
    operator.ne: operator.ne,
}
SYMBOL = {operator.lt: "<", operator.le: "<=", operator.gt: ">",
          operator.ge: ">=", operator.ne: "!="}

#: Longest guard or latch chain walked (each link is one block).
MAX_CHAIN = 16


@dataclass(frozen=True)
class Operand:
    """A compared value: a named variable, or a constant."""

    name: str | None = None
    const: object = None

    def __str__(self) -> str:
        return self.name if self.name is not None else short_repr(self.const)


@dataclass(frozen=True)
class Test:
    """A branch on one condition, with the outcome that continues the loop."""

    label: int
    kind: str
    """'compare', 'item' (``a.item()``), 'index' (``a[k]``), 'scalar' (``x``) or
    'constant' (a global or literal numba freezes)."""
    key: tuple
    """Identifies the same condition in a guard and in the latch."""
    stay_on: bool
    stay: int
    leave: int
    slice: frozenset[int]
    """Statement indices in the block that only compute this test."""
    loc: ir.Loc
    op: object = None
    lhs: Operand | None = None
    rhs: Operand | None = None
    subject: str | None = None
    """The flag array or scalar of a non-comparison test."""
    temps: frozenset[str] = frozenset()
    """Single-definition names the block computes for this test."""

    def describe(self) -> str:
        if self.kind == "compare":
            return f"{self.lhs} {SYMBOL[self.op]} {self.rhs}"
        if self.kind == "item":
            return f"{self.subject}.item()"
        if self.kind == "index":
            return f"{self.subject}[{self.key[2][1]}]"
        if self.kind == "constant":
            return short_repr(self.lhs.const)
        return self.subject

    def names(self) -> frozenset[str]:
        """The non-temporary variables the test reads."""
        found = {o.name for o in (self.lhs, self.rhs) if o is not None and o.name}
        if self.subject:
            found.add(self.subject)
        if self.kind == "index" and self.key[2][0] == "var":
            found.add(self.key[2][1])
        return frozenset(n for n in found if n not in self.temps)


def _local_defs(block: ir.Block) -> dict[str, tuple[int, ir.Assign]]:
    found = {}
    for index, stmt in enumerate(block.body[:-1]):
        if isinstance(stmt, ir.Assign):
            found[stmt.target.name] = (index, stmt)
    return found


def _frozen_scalar(value):
    """The value of a constant or of a global numba freezes at compile time,
    if it is a plain scalar."""
    if isinstance(value, (ir.Const, ir.Global, ir.FreeVar)) and isinstance(
            value.value, (bool, int, float)):
        return value.value
    return _NOT_SCALAR


_NOT_SCALAR = object()


def _operand(local: dict, var: ir.Var, is_local_temp) -> Operand:
    entry = local.get(var.name) if is_local_temp(var.name) else None
    if entry is not None:
        frozen = _frozen_scalar(entry[1].value)
        if frozen is not _NOT_SCALAR:
            return Operand(const=frozen)
    return Operand(name=var.name)


def classify(block: ir.Block, label: int, stay_target, du: DefUse) -> Test | None:
    """The test ``block`` ends with, if it is one this pass understands.

    ``stay_target(label)`` says whether a branch target continues the loop;
    exactly one of the two targets must.
    """
    term = block.terminator
    if not isinstance(term, ir.Branch):
        return None
    true_stays, false_stays = stay_target(term.truebr), stay_target(term.falsebr)
    if true_stays == false_stays:
        return None
    stay, leave = (term.truebr, term.falsebr) if true_stays else (term.falsebr, term.truebr)
    local = _local_defs(block)
    used: list[str] = []

    # A temporary: computed once, in this block, and used only here.  Not
    # "named with a $": after numba inlines a callee its temporaries lose it.
    def is_local_temp(name: str) -> bool:
        return (name in local and len(du.defs.get(name, ())) == 1
                and all(site.label == label for site in du.uses.get(name, ())))

    def local_value(var: ir.Var):
        entry = local.get(var.name)
        if entry is None:
            return None
        used.append(var.name)
        return entry[1].value

    subject = term.cond
    value = local_value(subject)
    if isinstance(value, ir.Expr) and value.op == "call" and len(value.args) == 1 \
            and not value.kws and isinstance(local_value(value.func), ir.Global) \
            and local[value.func.name][1].value.value is bool:
        subject = value.args[0]
        value = local_value(subject)
    if isinstance(value, ir.Var) and is_local_temp(subject.name):
        # A copy made for the test (scalar replacement leaves ``$t = x``).
        subject = value
        value = local_value(subject)
    common = dict(label=label, stay_on=true_stays, stay=stay, leave=leave, loc=term.loc)
    if isinstance(value, ir.Expr) and value.op == "binop" and value.fn in COMPARISONS:
        lhs = _operand(local, value.lhs, is_local_temp)
        rhs = _operand(local, value.rhs, is_local_temp)
        for var in (value.lhs, value.rhs):
            if is_local_temp(var.name):
                used.append(var.name)
        test = Test(kind="compare", key=("compare", value.fn, lhs, rhs), op=value.fn,
                    lhs=lhs, rhs=rhs, slice=frozenset(), **common)
    elif isinstance(value, ir.Expr) and value.op == "call" and not value.args \
            and not value.kws and value.vararg is None:
        method = local_value(value.func)
        if not (isinstance(method, ir.Expr) and method.op == "getattr"
                and method.attr == "item" and not is_local_temp(method.value.name)):
            return None
        name = method.value.name
        test = Test(kind="item", key=("item", name), subject=name,
                    slice=frozenset(), **common)
    elif isinstance(value, ir.Expr) and value.op in ("getitem", "static_getitem") \
            and not is_local_temp(value.value.name):
        if value.op == "static_getitem":
            index = ("const", value.index)
            if value.index_var is not None and value.index_var.name in local:
                used.append(value.index_var.name)
        else:
            idx = _operand(local, value.index, is_local_temp)
            if value.index.name in local:
                used.append(value.index.name)
            index = ("const", idx.const) if idx.name is None else ("var", idx.name)
        name = value.value.name
        test = Test(kind="index", key=("index", name, index), subject=name,
                    slice=frozenset(), **common)
    elif value is None:
        test = Test(kind="scalar", key=("scalar", subject.name), subject=subject.name,
                    slice=frozenset(), **common)
    elif _frozen_scalar(value) is not _NOT_SCALAR:
        # A global or constant flag: numba freezes it, so it never changes.
        frozen = _frozen_scalar(value)
        test = Test(kind="constant", key=("constant", frozen), subject=None,
                    slice=frozenset(), op=None, lhs=Operand(const=frozen), **common)
    else:
        return None
    temps = frozenset(n for n in used if is_local_temp(n))
    return _with_slice(Test(**{**test.__dict__, "temps": temps}), block, local, du)


def _with_slice(test: Test, block: ir.Block, local: dict, du: DefUse) -> Test:
    """Attach the statements that exist only to compute the test: local
    temporaries whose every use is the test itself."""
    slice_names = test.temps
    indices = {local[n][0] for n in slice_names}
    stmts = {id(block.body[i]) for i in indices} | {id(block.terminator)}
    for name in slice_names:
        if any(id(site.stmt) not in stmts or site.label != test.label
               for site in du.uses.get(name, ())):
            # Used elsewhere too: the computation must stay.
            return Test(**{**test.__dict__, "slice": frozenset()})
    return Test(**{**test.__dict__, "slice": frozenset(indices)})


def only_test_statements(block: ir.Block, test: Test) -> bool:
    return len(test.slice) == len(block.body) - 1


@dataclass(frozen=True)
class Guard:
    """A test run on the way into a loop, and the names assigned after it."""

    test: Test
    assigned_after: frozenset[str]


def entry_guards(forest: LoopForest, loop: Loop, du: DefUse) -> list[Guard]:
    """The tests every execution passes on its single way into ``loop``, each
    with the outcome that leads on toward the loop."""
    blocks = forest.blocks
    (entry,) = loop.entries
    guards: list[Guard] = []
    assigned: set[str] = set()
    cur, nxt = entry, loop.header
    for _ in range(MAX_CHAIN):
        block = blocks[cur]
        if isinstance(block.terminator, ir.Branch):
            test = classify(block, cur, lambda t, n=nxt: t == n, du)
            if test is None:
                break
            guards.append(Guard(test, frozenset(assigned)))
        elif not isinstance(block.terminator, ir.Jump):
            break
        assigned.update(s.target.name for s in block.body if isinstance(s, ir.Assign))
        preds = forest.predecessors(cur)
        if len(preds) != 1 or preds[0] in loop:
            break
        cur, nxt = preds[0], cur
    return guards


def latch_chain(forest: LoopForest, loop: Loop, du: DefUse) -> list[Test]:
    """The tests at the end of each iteration, first to last: a chain of test
    blocks (linked by plain jumps) ending in the loop's single back edge.  Only
    the first test block of the chain may hold other statements."""
    blocks = forest.blocks
    (latch,) = loop.latches
    chain: list[Test] = []
    cur, nxt = latch, loop.header
    for _ in range(MAX_CHAIN):
        block = blocks[cur]
        if isinstance(block.terminator, ir.Jump):
            pass  # a plain link, e.g. where numba pruned a constant test
        else:
            test = classify(block, cur, lambda t, n=nxt: t == n, du)
            if test is None or test.leave in loop:
                break
            chain.append(test)
            if not only_test_statements(block, test):
                break
        if cur == loop.header:
            break
        preds = forest.predecessors(cur)
        if len(preds) != 1 or preds[0] not in loop:
            break
        cur, nxt = preds[0], cur
    chain.reverse()
    return chain
