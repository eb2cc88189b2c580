"""Golden files for the kernels fuse-reduce generates.

Each case generates one kernel's Python source with the generators of
``numba_loopopt.transforms.fuse_reduce.codegen`` and compares it, byte for
byte, with ``tests/golden/fuse_reduce/<case>.txt``: a change to the generated
kernels shows up in review as a diff of those files.  After an intended
change, regenerate them and review the diff::

    LOOPOPT_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_fuse_reduce_golden.py
    git diff tests/golden/fuse_reduce/

(The fused kernel's source is also part of the kernel cache's key.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from numba_loopopt.transforms.fuse_reduce import codegen

GOLDEN = Path(__file__).parent / "golden" / "fuse_reduce"
UPDATE = os.environ.get("LOOPOPT_UPDATE_GOLDEN", "") not in ("", "0")
#: What the pass gives for the broadcast error's location (the expression's file).
WHERE = '\nFile "kernels.py", line 1, '

CASES = {
    # np.sum(a * b + c)
    "sum_1d": lambda: codegen.kernel_source(["sum"], [True, True, True], gather=False,
                                            where=WHERE),
    # t = a * s; t.sum(), t.min(), t.max(), t.argmax()
    "extremes_1d": lambda: codegen.kernel_source(["sum", "min", "max", "argmax"],
                                                 [True, False], gather=False, where=WHERE),
    # t = a - b; t.sum(), t.max(); return t too
    "materialised_1d": lambda: codegen.kernel_source(["sum", "max"], [True, True],
                                                     gather=False, materialise=True,
                                                     where=WHERE),
    # complex: lexicographic min/max, an empty mean is nan+nanj
    "complex_1d": lambda: codegen.kernel_source(["min", "max", "mean"], [True, True],
                                                gather=False, family="complex", where=WHERE),
    # integers: any, all, prod
    "integers_1d": lambda: codegen.kernel_source(["any", "all", "prod"], [True],
                                                 gather=False, family="plain", where=WHERE),
    # (m * s + row).sum(), .argmin(): a 2-D, a scalar and a 1-D operand
    "nd_broadcast_ranks": lambda: codegen.kernel_source_nd(
        ["sum", "argmin"], [True, False, True], 2, ranks=[2, 0, 1], where=WHERE),
    # t = m * n; t.sum(axis=0), t.sum(axis=1)
    "nd_axis_sums": lambda: codegen.kernel_source_nd(["sum@0", "sum@1"], [True, True], 2,
                                                     where=WHERE),
    # 3-D, materialised, a 1-D operand broadcast over the first two dimensions
    "nd_materialised_3d": lambda: codegen.kernel_source_nd(
        ["max"], [True, True], 3, materialise=True, ranks=[3, 1], where=WHERE),
    # x[idx].sum(), .mean(), .argmin()
    "gather_1d": lambda: codegen.kernel_source(["sum", "mean", "argmin"], [True, True],
                                               gather=True),
    # x[idx2d].sum()
    "gather_2d": lambda: codegen.kernel_source_nd(["sum"], [True, True], 2, gather=True),
    # (np.exp(a) * b).max() and its sum, with the vectorised exp
    "blocked_exp": lambda: codegen.kernel_source_blocked(["max", "sum"], [True, True],
                                                         where=WHERE),
    # np.exp(a) * s, materialised, with min, argmax and mean
    "blocked_exp_materialised": lambda: codegen.kernel_source_blocked(
        ["min", "argmax", "mean"], [True, False], materialise=True, where=WHERE),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_kernel_matches_golden_file(case):
    source = CASES[case]()
    compile(source, f"<{case}>", "exec")  # valid Python
    path = GOLDEN / f"{case}.txt"
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8", newline="\n")
    assert path.is_file(), f"{path} is missing: run with LOOPOPT_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    assert source == expected, (
        f"the generated kernel differs from {path}; if the change is intended, "
        "regenerate with LOOPOPT_UPDATE_GOLDEN=1 and review the diff")


def test_no_stale_golden_files():
    """Every golden file belongs to a case (a renamed case leaves none behind)."""
    names = {path.stem for path in GOLDEN.glob("*.txt")}
    assert names == set(CASES), names ^ set(CASES)
