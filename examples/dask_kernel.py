"""A ``numba_loopopt.jit`` kernel mapped over the chunks of a dask array, on
a local ``dask.distributed`` cluster of worker *processes*.

Run it from a checkout, with the ``dask`` extra installed
(``pip install -e ".[dask]"``)::

    python examples/dask_kernel.py

The kernel is pickled (with its pipeline and options) into each worker
process, and compiles there, through :class:`~numba_loopopt.LoopOptPipeline`,
the first time a chunk reaches it.  The script checks the result against
NumPy and against stock ``numba.njit`` over the same chunks, then asks every
worker which pipeline compiled its copy of the kernel and what the remarks
say.  It exits non-zero if anything differs.
"""

from __future__ import annotations

import os
import sys

import numba
import numpy as np

import numba_loopopt


# A non-default option (no inlining; the kernel calls nothing anyway), to
# show that the options travel to the workers with the kernel.
@numba_loopopt.jit(options={"inline": False})
def scaled_energy(block, scale):
    """``(block * scale) ** 2 + 1``, written as two loops through a
    temporary: the fuse-loops pass makes them one loop and removes ``tmp``."""
    n = block.shape[0]
    tmp = np.empty(n)
    for i in range(n):
        tmp[i] = block[i] * scale
    out = np.empty(n)
    for i in range(n):
        out[i] = tmp[i] * tmp[i] + 1.0
    return out


def numpy_reference(x, scale):
    tmp = x * scale
    return tmp * tmp + 1.0


def compiled_here(kernel, options) -> dict:
    """Run on a worker: how the worker's copy of ``kernel`` was compiled."""
    pipeline = kernel._compiler.pipeline_class
    return {
        "same_options": pipeline.options == options,
        "pid": os.getpid(),
        "dispatcher": type(kernel).__name__,
        "pipeline": pipeline.__name__,
        "is_loopopt": issubclass(pipeline, numba_loopopt.LoopOptPipeline),
        "signatures": [", ".join(map(str, sig)) for sig in kernel.signatures],
        "remarks": [str(r) for rs in numba_loopopt.remarks(kernel).values() for r in rs],
    }


def run(client, n: int = 1_000_000, chunks: int = 250_000, scale: float = 0.5) -> bool:
    """Compute on ``client``'s cluster, print what happened; True if the
    results are right and every worker compiled through LoopOptPipeline."""
    import dask.array as da

    x = da.random.default_rng(0).random(n, chunks=chunks)
    # meta= tells dask the output's type; without it dask calls the kernel
    # on an empty array in this process to find out, compiling it here too.
    y = x.map_blocks(scaled_energy, scale, meta=np.empty((0,), np.float64))
    result = y.compute()

    # References: NumPy on the whole array, stock numba on the same chunks.
    x_local = x.compute()
    stock = numba.njit(scaled_energy.py_func)
    blocks = np.split(x_local, np.cumsum(x.chunks[0])[:-1])
    stock_result = np.concatenate([stock(block, scale) for block in blocks])
    same_numpy = np.array_equal(result, numpy_reference(x_local, scale))
    same_stock = np.array_equal(result, stock_result)
    print(f"{n:,} elements in {x.numblocks[0]} chunks on "
          f"{len(client.scheduler_info()['workers'])} worker processes")
    print(f"result equals NumPy: {same_numpy}")
    print(f"result equals stock numba.njit: {same_stock}")

    # Every worker process that ran a chunk has its own copy of the kernel
    # (unpickled once per process), compiled there.
    # The client only shipped the kernel: it compiled nothing itself.
    print(f"compiled in the client process (pid {os.getpid()}): "
          f"{len(scaled_energy.signatures)} signatures")
    ok = same_numpy and same_stock and not scaled_energy.signatures
    reports = client.run(compiled_here, scaled_energy, scaled_energy.loopopt_options)
    for address, report in sorted(reports.items()):
        print(f"worker {address} (pid {report['pid']}): {report['dispatcher']} "
              f"compiled {report['signatures'] or 'nothing'} through "
              f"{report['pipeline']} (a LoopOptPipeline: {report['is_loopopt']}, "
              f"the client's options: {report['same_options']})")
        for remark in report["remarks"]:
            print(f"    {remark}")
        ok &= report["is_loopopt"] and report["same_options"] \
            and report["pid"] != os.getpid()
    compiled = [r for r in reports.values() if r["signatures"]]
    ok &= bool(compiled) and all(any("[fuse-loops] Fused" in m for m in r["remarks"])
                                 for r in compiled)
    return ok


def main() -> int:
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        ok = run(client)
    print("ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
