"""Version a counted loop that indexes ``x[(i + k) % L]``: no modulo when safe.

PyTensor's scan stores its states in a circular buffer indexed
``buf[i % L]``, ``buf[(i + 1) % L]``; an integer modulo per access costs more
than the rest of a small step.  Once the while-to-range pass knows the counter
``i`` runs from its start to the bound by a constant step, every ``i + k`` is
in ``[0, L)`` when one check before the loop holds, and then
``(i + k) % L == i + k`` (Python's modulo with ``L > 0``).

Legal when: ``L`` is a loop-invariant signed integer (or a positive constant),
``k`` a constant, and the operand of the modulo is the counter or
``counter +/- k`` computed in the loop.  The check compares the loop's entry
value and bound with ``L`` using constants only, so it cannot overflow.

The rewrite copies the loop, replaces each such modulo in the copy by its
operand, and puts the check on the loop's entry edge: true runs the copy, false
the original.  Both copies assign the same (pre-SSA) names, so code after the
loop sees the same values either way.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from numba.core import ir, types

from .. import irbuild
from ..analysis.defuse import DefUse
from ..analysis.loops import Loop, successors
from ..analysis.tests import Operand
from ..remarks import Missed

#: Offsets and steps are kept small so the check's constant arithmetic on a
#: positive int64 ``L`` cannot overflow.
MAX_CONSTANT = 2**31
INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)


@dataclass(frozen=True)
class ModuloUse:
    stmt: ir.Assign
    """``$m = x % L`` in the original loop."""
    operand: ir.Var
    offset: int
    """``k`` in ``(i + k) % L``, as written."""
    effective: int
    """``k``, plus the step if ``i`` is read after its update in the iteration."""
    modulus: Operand


@dataclass(frozen=True)
class Plan:
    counter: str
    uses: tuple[ModuloUse, ...]
    conditions: tuple[tuple[Operand, object, Operand, int], ...]
    """Each ``(a, op, b, c)`` reads ``a op (b - c)`` (``b`` may be None: ``a op -c``)."""
    common: tuple = ()
    """The conditions on the counter's range alone (a prefix of ``conditions``)."""
    per_modulus: tuple = ()
    """``(L, conditions)``: the rest of ``conditions``, by modulus.  When the
    first check fails, a second copy runs if ``common`` holds and each ``L``
    is 1 or meets its own conditions; in it ``x % L`` is ``x * (L != 1)``
    (``x % 1`` is 0: PyTensor keeps only the last state of a scan whose
    history is not used, in a one-element buffer).  Empty when a modulus is
    a constant."""

    @property
    def unit_moduli(self) -> tuple:
        return tuple(m for m, _ in self.per_modulus)

    def describe(self) -> str:
        shown = sorted({f"({self.counter} {'+' if u.offset > 0 else '-'} "
                        f"{abs(u.offset)}) % {u.modulus}"
                        if u.offset else f"{self.counter} % {u.modulus}"
                        for u in self.uses})
        if self.per_modulus:
            common = "".join(f"{_show(c)} and " for c in self.common)
            each = " and ".join(
                f"({m} == 1 or {' and '.join(_show(c) for c in own)})"
                for m, own in self.per_modulus)
            return (f"{', '.join(shown)} cannot wrap, or divide by 1, when {common}{each}: "
                    "the loop runs a copy without the modulo then (x % 1 is 0), "
                    "and the original otherwise")
        checks = " and ".join(_show(c) for c in self.conditions)
        return (f"{', '.join(shown)} cannot wrap when {checks}: the loop runs a "
                "copy without the modulo then, and the original otherwise")


def _show(cond) -> str:
    a, op, b, c = cond
    sym = {operator.ge: ">=", operator.le: "<=", operator.gt: ">"}[op]
    if b is None:
        return f"{a} {sym} {-c}"
    return f"{a} {sym} {b}" + (f" - {c}" if c > 0 else f" + {-c}" if c < 0 else "")


def _signed(ty) -> bool:
    return isinstance(ty, types.Integer) and ty.signed


def _offset(du: DefUse, loop: Loop, iv: str, var: ir.Var, stmt: ir.Assign):
    """``(k, read)`` if ``var`` is ``iv + k`` (or ``iv`` itself) computed in the
    loop, with ``read`` the statement that reads ``iv``."""
    if var.name == iv:
        return 0, stmt
    sites = du.defs.get(var.name, ())
    if len(sites) != 1 or sites[0].label not in loop:
        return None
    value = sites[0].stmt.value
    if not (isinstance(value, ir.Expr) and value.op == "binop"
            and value.fn in (operator.add, operator.sub)):
        return None
    if value.lhs.name == iv:
        k = du.const_value(value.rhs)
        sign = 1 if value.fn is operator.add else -1
    elif value.fn is operator.add and value.rhs.name == iv:
        k, sign = du.const_value(value.lhs), 1
    else:
        return None
    if not isinstance(k, int) or isinstance(k, bool) or abs(k) > MAX_CONSTANT:
        return None
    return sign * k, sites[0].stmt


def _after_increment(blocks, loop: Loop, increment: ir.Assign):
    """A predicate: does a statement read the counter after this iteration's
    update (so it sees ``i + step``)?"""
    position = {}
    for label in loop.body:
        for index, stmt in enumerate(blocks[label].body):
            position[id(stmt)] = (label, index)
    inc_label, inc_index = position[id(increment)]
    reached, work = set(), list(successors(blocks[inc_label]))
    while work:
        label = work.pop()
        if label in reached or label not in loop or label == loop.header:
            continue
        reached.add(label)
        work.extend(successors(blocks[label]))

    def after(stmt: ir.Stmt) -> bool:
        label, index = position[id(stmt)]
        return label in reached or (label == inc_label and index > inc_index)

    return after


def plan(blocks, loop: Loop, counter, du: DefUse, facts,
         max_stmts: int) -> Plan | Missed | None:
    """What to version, ``None`` if the loop has no such modulo, or why not."""
    iv, step = counter.name, counter.step
    uses = []
    after = _after_increment(blocks, loop, counter.increment)
    for label in sorted(loop.body):
        for stmt in blocks[label].body:
            value = stmt.value if isinstance(stmt, ir.Assign) else None
            if not (isinstance(value, ir.Expr) and value.op == "binop"
                    and value.fn is operator.mod):
                continue
            found = _offset(du, loop, iv, value.lhs, stmt)
            if found is None or not _signed(facts.of(value.lhs.name)):
                continue
            k, read = found
            modulus = du.const_value(value.rhs)
            if isinstance(modulus, int) and not isinstance(modulus, bool):
                if modulus <= 0:
                    continue
                mod = Operand(const=modulus)
            elif not du.defs_in(value.rhs.name, loop.body) and _signed(facts.of(value.rhs.name)):
                mod = Operand(name=value.rhs.name)
            else:
                continue
            # Offsets are relative to the counter's value before its update.
            uses.append(ModuloUse(stmt, value.lhs, k, k + step * after(read), mod))
    if not uses:
        return None
    loc = counter.test.loc
    if counter.op is operator.ne or abs(step) > MAX_CONSTANT:
        return Missed("ModuloRangeUnknown", f"the range of '{iv}' is not known "
                      f"from '{counter.describe()}' with step {step}", loc,
                      counter=iv, modulos=len(uses))
    if facts.of(iv) != types.int64:
        # A narrower counter wraps around (numba truncates on assignment): the
        # range argument below would not hold.
        return Missed("ModuloCounterMayWrap", f"'{iv}' is {facts.of(iv)}, not int64, so "
                      "it may wrap around", loc, counter=iv, modulos=len(uses))
    if counter.bound.name and not _signed(facts.of(counter.bound.name)):
        return Missed("ModuloBoundUnsigned", f"the bound of '{iv}' is unsigned", loc,
                      counter=iv, modulos=len(uses))
    size = sum(len(blocks[label].body) for label in loop.body)
    if size > max_stmts:
        return Missed("LoopTooLarge", f"versioning would copy {size} statements, "
                      f"more than max_versioned_stmts={max_stmts}", loc,
                      size=size, threshold=max_stmts)
    start, bound = Operand(name=iv), counter.bound
    k_min = min(u.effective for u in uses)
    k_max: dict[Operand, int] = {}
    for u in uses:
        k_max[u.modulus] = max(k_max.get(u.modulus, u.effective), u.effective)
    inclusive = counter.op in (operator.le, operator.ge)
    conditions = []
    per_modulus = []
    if step > 0:
        # Before its update, i runs over [start, bound - 1] ([start, bound] if
        # inclusive); each use adds its effective offset.  The update itself
        # must not overflow: bound - 1 + step <= INT64_MAX.
        conditions.append((start, operator.ge, None, k_min))
        if step > 1 or inclusive:
            conditions.append((bound, operator.le, None, -(INT64_MAX - step + 1 - inclusive)))
        common = len(conditions)
        for modulus, k in k_max.items():
            own = [(bound, operator.le, modulus, k + inclusive)]
            if modulus.name is not None:
                own.insert(0, (modulus, operator.gt, None, 0))
            per_modulus.append((modulus, tuple(own)))
            conditions += own
    else:
        # Before its update, i runs over [bound + 1, start] ([bound, start]),
        # and bound + 1 + step must not overflow below INT64_MIN.
        conditions.append((bound, operator.ge, None, k_min + 1 - inclusive))
        if step < -1 or inclusive:
            conditions.append((bound, operator.ge, None, -(INT64_MIN - 1 - step + inclusive)))
        common = len(conditions)
        for modulus, k in k_max.items():
            own = [(start, operator.le, modulus, k + 1)]
            if modulus.name is not None:
                own.insert(0, (modulus, operator.gt, None, 0))
            per_modulus.append((modulus, tuple(own)))
            conditions += own
    mixed = (tuple(per_modulus) if all(m.name is not None for m, _ in per_modulus)
             else ())
    return Plan(iv, tuple(uses), tuple(conditions), tuple(conditions[:common]), mixed)


def _operand_var(scope, operand: Operand, loc, out: list) -> ir.Var:
    if operand.name is not None:
        return scope.get_exact(operand.name)
    var, stmt = irbuild.const(scope, operand.const, loc)
    out.append(stmt)
    return var


def _condition(scope, cond, loc, body: list) -> None:
    """Statements computing ``a op (b - c)``; the last assigns the result."""
    a, op, b, c = cond
    lhs = _operand_var(scope, a, loc, body)
    cvar, cstmt = irbuild.const(scope, -c if b is None else c, loc)
    body.append(cstmt)
    if b is None:
        rhs = cvar
    else:
        rhs, sub = irbuild.binop(scope, operator.sub, _operand_var(scope, b, loc, body),
                                 cvar, loc)
        body.append(sub)
    _, cmp = irbuild.binop(scope, op, lhs, rhs, loc)
    body.append(cmp)


def apply(func_ir: ir.FunctionIR, loop: Loop, counter, plan: Plan) -> set[int]:
    """Version ``loop``; returns the labels of the copy."""
    blocks = func_ir.blocks
    header = blocks[loop.header]
    scope, loc = header.scope, counter.test.loc
    if plan.per_modulus:
        first, copies = _mixed_copy(blocks, loop, plan, scope, loc)
    else:
        first, copies = _plain_copy(blocks, loop, plan, scope, loc)
    (entry,) = loop.entries
    entry_block = blocks[entry]
    new_term = irbuild.retarget(entry_block.terminator, {loop.header: first})
    blocks[entry] = irbuild.with_body(entry_block, entry_block.body[:-1] + [new_term])
    return set(copies)


def _plain_copy(blocks, loop: Loop, plan: Plan, scope, loc):
    """A copy where ``x % L`` is ``x``, behind ``plan.conditions``."""
    header = blocks[loop.header]
    mapping, copies = irbuild.copy_region(blocks, loop.body)
    replaced = {id(u.stmt) for u in plan.uses}
    for label in loop.body:
        original, copy = blocks[label].body, copies[mapping[label]].body
        for index, stmt in enumerate(original):
            if id(stmt) in replaced:
                copy[index] = ir.Assign(copy[index].value.lhs, copy[index].target,
                                        stmt.loc)
    blocks.update(copies)
    check_labels = [irbuild.new_label(blocks) for _ in plan.conditions]
    for n, cond in enumerate(plan.conditions):
        body: list[ir.Stmt] = []
        _condition(scope, cond, loc, body)
        pred = body[-1].target
        on_true = (check_labels[n + 1] if n + 1 < len(check_labels)
                   else mapping[loop.header])
        body += irbuild.branch_on(scope, pred, on_true, loop.header, loc)
        blocks[check_labels[n]] = irbuild.with_body(header, body)
    return check_labels[0], copies


def _mixed_copy(blocks, loop: Loop, plan: Plan, scope, loc):
    """A copy where ``x % L`` is ``x * (L != 1)``, run when the counter's
    range conditions hold and each ``L`` is 1 (``x % 1 == 0``) or meets its
    own conditions (then ``x % L == x``)."""
    header = blocks[loop.header]
    keep = {m: scope.redefine("$loopopt_keep", loc) for m in plan.unit_moduli}
    mixed_map, mixed = irbuild.copy_region(blocks, loop.body)
    by_stmt = {id(u.stmt): u for u in plan.uses}
    for label in loop.body:
        original, copy = blocks[label].body, mixed[mixed_map[label]].body
        for index, stmt in enumerate(original):
            use = by_stmt.get(id(stmt))
            if use is not None:
                copy[index] = ir.Assign(
                    ir.Expr.binop(operator.mul, copy[index].value.lhs, keep[use.modulus],
                                  stmt.loc), copy[index].target, stmt.loc)
    blocks.update(mixed)
    # The chain: the common conditions, then per modulus "L == 1, or its own
    # conditions"; any failure runs the original.
    steps: list = [("cond", c) for c in plan.common]
    ends = {}
    for modulus, own in plan.per_modulus:
        steps.append(("unit", modulus))
        steps += [("cond", c) for c in own]
        ends[modulus] = len(steps)
    labels = [irbuild.new_label(blocks) for _ in steps]

    def label_at(n):
        return labels[n] if n < len(steps) else mixed_map[loop.header]

    for n, (kind, item) in enumerate(steps):
        body: list[ir.Stmt] = []
        if kind == "cond":
            _condition(scope, item, loc, body)
            body += irbuild.branch_on(scope, body[-1].target, label_at(n + 1),
                                      loop.header, loc)
        else:
            lhs = _operand_var(scope, item, loc, body)
            one, one_stmt = irbuild.const(scope, 1, loc)
            body.append(one_stmt)
            body.append(ir.Assign(ir.Expr.binop(operator.ne, lhs, one, loc), keep[item], loc))
            pred, cmp = irbuild.binop(scope, operator.eq, lhs, one, loc)
            body.append(cmp)
            body += irbuild.branch_on(scope, pred, label_at(ends[item]), label_at(n + 1), loc)
        blocks[labels[n]] = irbuild.with_body(header, body)
    return labels[0], mixed
