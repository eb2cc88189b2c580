"""examples/dask_kernel.py: a ``numba_loopopt.jit`` kernel mapped over the
chunks of a dask array on worker processes compiles in the workers, through
LoopOptPipeline with the kernel's options, and computes NumPy's result."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dask.array")
pytest.importorskip("dask.distributed")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "dask_kernel.py"


def test_example_compiles_in_the_workers_through_the_pipeline(tmp_path):
    # A script, as users run it: its kernel lives in __main__ and is pickled
    # by value into the worker processes.
    proc = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=240)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    lines = out.splitlines()
    assert "result equals NumPy: True" in lines
    assert "result equals stock numba.njit: True" in lines
    assert any(line.startswith("compiled in the client process")
               and line.endswith(": 0 signatures") for line in lines)
    workers = [line for line in lines if line.startswith("worker ")]
    assert len(workers) == 2
    assert all(": LoopOptDispatcher compiled " in line
               and "(a LoopOptPipeline: True, the client's options: True)" in line
               for line in workers)
    compiled = [line for line in workers
                if "compiled ['array(float64, 1d, C), float64']" in line]
    assert compiled
    # The remarks the workers recorded while compiling.
    assert out.count("[fuse-loops] Fused: the loop at line") == len(compiled)
    assert out.count("[fuse-loops] Contracted: temporary 'tmp' is gone") == len(compiled)
    assert lines[-1] == "ok"
