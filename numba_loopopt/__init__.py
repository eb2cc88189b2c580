"""numba_loopopt: loop-optimising compiler passes for numba.

Add one line, ``@numba_loopopt.jit`` instead of ``@numba.njit`` (or
``@njit(pipeline_class=LoopOptPipeline)``), and read what the passes did with
:func:`remarks`.
"""

from ._compat import check_numba_version

check_numba_version()

# runtime registers the overloads generated code calls; pytensor honours
# NUMBA_LOOPOPT_PYTENSOR (and never imports PyTensor itself).
from . import pytensor, runtime  # noqa: E402,F401
from ._version import __version__  # noqa: E402
from .decorator import jit  # noqa: E402
from .options import (  # noqa: E402
    ForwardStoresOptions,
    FuseLoopsOptions,
    FuseReduceOptions,
    InliningOptions,
    OptionError,
    Options,
    ScalarReplaceOptions,
    WhileToRangeOptions,
)
from .pipeline import LoopOptPipeline  # noqa: E402
from .remarks import Remark, RemarkKind, remarks  # noqa: E402

__all__ = [
    "ForwardStoresOptions",
    "FuseLoopsOptions",
    "FuseReduceOptions",
    "InliningOptions",
    "LoopOptPipeline",
    "OptionError",
    "Options",
    "Remark",
    "RemarkKind",
    "ScalarReplaceOptions",
    "WhileToRangeOptions",
    "__version__",
    "jit",
    "remarks",
]
