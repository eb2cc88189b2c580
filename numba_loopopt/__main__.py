"""``python -m numba_loopopt COMMAND``: the command line, in
:mod:`numba_loopopt.cli`."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
