"""The numba versions this package is built and tested against.

The passes read and rewrite numba's IR and drive its pipeline internals, which
change between numba releases, so importing the package under any other numba
fails with a clear message instead of miscompiling later.  Set
``NUMBA_LOOPOPT_SKIP_VERSION_CHECK=1`` to try an untested numba anyway.
"""

from __future__ import annotations

import os

import numba

#: Inclusive lower and exclusive upper bound of the supported numba releases.
SUPPORTED_NUMBA = ((0, 68), (0, 69))


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
