"""Short texts for large constants, decided from sizes alone.

Every text path of the package (IR dumps, ``explain``, remark messages) asks
:func:`summary` before it makes the text of a constant: a 50 MB array or a
10,000-character string literal must never become text first.
"""

from __future__ import annotations

import numpy as np
from numba.core import ir

#: Constants with more elements than this are shown as a summary.
ELIDE_ABOVE = 64

#: Integers with more digits than this are shown as a summary (the text of a
#: huge int is slow to make, and past 4300 digits Python refuses to make it).
_BIG_INT = 10 ** ELIDE_ABOVE


def short_repr(value) -> str:
    """``repr(value)``, or its summary if the value is large."""
    return summary(value) or repr(value)


def summary(value) -> str | None:
    """A short text for a large constant, or None if it is small.  Decided
    from the value's size alone: nothing here makes a text of the value."""
    if isinstance(value, (ir.Const, ir.Global, ir.FreeVar)):
        # Constant leaves of an expression tree (arrayexpr).
        return summary(value.value)
    if isinstance(value, np.ndarray):
        if value.size <= ELIDE_ABOVE:
            return None
        return (f"<elided ndarray {value.dtype} shape={value.shape} "
                f"{value.nbytes} bytes>")
    if isinstance(value, int) and not isinstance(value, bool):
        if -_BIG_INT < value < _BIG_INT:
            return None
        return f"<elided int of {value.bit_length()} bits>"
    if isinstance(value, (tuple, list, str, bytes, bytearray, set, frozenset, dict)):
        if len(value) <= ELIDE_ABOVE:
            if isinstance(value, (str, bytes, bytearray)):
                return None
            items = (x for kv in value.items() for x in kv) if isinstance(
                value, dict) else value
            if not any(summary(v) is not None for v in items):
                return None
        return f"<elided {type(value).__name__} of {len(value)} items>"
    return None
