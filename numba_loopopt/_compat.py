"""The numba versions this package is built and tested against.

The passes read and rewrite numba's IR and drive its pipeline internals, which
change between numba releases, so importing the package under any other numba
fails with a clear message instead of miscompiling later.  Set
``NUMBA_LOOPOPT_SKIP_VERSION_CHECK=1`` to try an untested numba anyway.

It also holds the facts about the installed release's semantics that differ
within the supported range, each read from numba's own source for that
release (``numba/np/arraymath.py``, ``numba/core/typing/arraydecl.py``), so
that the passes mirror the release they run under and no version test is
scattered through them.
"""

from __future__ import annotations

import os

import numba

#: Inclusive lower and exclusive upper bound of the supported numba releases.
SUPPORTED_NUMBA = ((0, 62), (0, 69))


def _release(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def check_numba_version(version: str = numba.__version__) -> None:
    if os.environ.get("NUMBA_LOOPOPT_SKIP_VERSION_CHECK", "0") not in ("", "0"):
        return
    low, high = SUPPORTED_NUMBA
    if not (low <= _release(version) < high):
        raise ImportError(
            f"numba_loopopt supports numba >={low[0]}.{low[1]},<{high[0]}.{high[1]}, "
            f"but numba {version} is installed; its passes depend on numba "
            "internals that differ between releases. Install a supported numba, "
            "or set NUMBA_LOOPOPT_SKIP_VERSION_CHECK=1 to try anyway."
        )


#: The installed numba release, ``(major, minor)``.
NUMBA_RELEASE = _release(numba.__version__)

#: ``np.mean``/``ndarray.mean`` of an array.  From numba 0.66 it returns NaN
#: (``nan+nanj``) for no elements and casts ``sum / size`` to the accumulator
#: type (the element type, float64 for booleans and integers).  Before 0.66 it
#: returns ``sum / size`` as numba's division gives it: an empty array raises
#: numba's ``ZeroDivisionError`` (or gives NaN for floats under
#: ``error_model='numpy'``), and a float32 (complex64) mean is a float64
#: (complex128) of the float32 (complex64) sum.
MEAN_EMPTY_IS_NAN = NUMBA_RELEASE >= (0, 66)

#: ``x[idx]`` with an integer array ``idx`` of two or more dimensions: numba
#: 0.66 and later type it; before, typing fails ("Multi-dimensional indices
#: are not supported").
MULTIDIM_GATHER = NUMBA_RELEASE >= (0, 66)
