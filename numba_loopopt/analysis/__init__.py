"""Read-only analyses over numba IR: they never change the IR they read.

One analysis of Python bytecode lives here too, for want of a module of its
own: :func:`code_references`, which both the inline pass (what a compiled
callee froze) and the dispatcher's cache key (what a callable option depends
on) need, below both of them.
"""

from __future__ import annotations

import dis
import types
from functools import lru_cache


@lru_cache(maxsize=4096)
def code_references(code: types.CodeType) -> tuple[frozenset, frozenset]:
    """The global names ``code`` (or a function nested in it) loads, and the
    attribute names it reads (``np.pi``, ``lib.K``, ``x.item``)."""
    names, attrs = set(), set()
    stack, seen = [code], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for ins in dis.get_instructions(current):
            if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                names.add(ins.argval)
            elif ins.opname in ("LOAD_ATTR", "LOAD_METHOD", "IMPORT_FROM"):
                attrs.add(ins.argval)
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    return frozenset(names), frozenset(attrs)
