"""Pickling into fresh processes, caching across processes and options,
compiling from several threads, object mode."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import cloudpickle
import numpy as np
import pytest
from conftest import remark_keys
from numba.core.errors import NumbaPerformanceWarning

import numba_loopopt as lo

KERNELS = textwrap.dedent('''
    import os
    import numpy as np
    import numba
    import numba_loopopt as lo

    def scan(buf, n, L):
        cond = np.array(False)
        i = 0
        while i < n and not cond.item():
            buf[(i + 1) % L] = buf[i % L] + 1.0
            i += 1
        return i

    if os.environ.get("USE_STOCK"):
        scan_cached = numba.njit(cache=True)(scan)
    else:
        scan_cached = lo.jit(cache=True)(scan)
    no_versioning = lo.jit(options={"while_to_range": {"version_modulo": False}})(scan)
''')

REPORT = textwrap.dedent('''
    import sys, pickle
    import numpy as np
    import numba_loopopt as lo
    disp = pickle.loads(open(sys.argv[1], "rb").read())
    buf = np.zeros(11)
    print(disp(buf, 10, 11), buf[-1], type(disp).__name__)
    print(sorted({r.key for rs in lo.remarks(disp).values() for r in rs}))
''')


def run(code, *args, env=None, cwd=None):
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.fixture
def kernels_module(tmp_path, monkeypatch):
    (tmp_path / "loopopt_kernels.py").write_text(KERNELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    for var in ("NUMBA_LOOPOPT_DISABLE", "NUMBA_LOOPOPT_WARNINGS", "USE_STOCK"):
        env.pop(var, None)
    import loopopt_kernels

    return loopopt_kernels, env, tmp_path


def test_pickled_function_compiles_with_its_pipeline_and_options(kernels_module):
    mod, env, tmp = kernels_module
    path = tmp / "pickled.bin"
    path.write_bytes(pickle.dumps(mod.no_versioning))
    result, keys = run(REPORT, path, env=env)
    assert result == "10 10.0 LoopOptDispatcher"
    # Rewritten, but not versioned: the option crossed the process boundary.
    assert keys == "['Forwarded', 'Rewritten', 'ScalarReplaced']"


def test_cloudpickled_closure_compiles_with_its_pipeline(kernels_module):
    _, env, tmp = kernels_module

    def make(step):
        def scan(buf, n, L):
            cond = np.array(False)
            i = 0
            while i < n and not cond.item():
                buf[(i + 1) % L] = buf[i % L] + step
                i += 1
            return i
        return lo.jit(scan)

    path = tmp / "cloudpickled.bin"
    path.write_bytes(cloudpickle.dumps(make(1.0)))
    result, keys = run(REPORT, path, env=env)
    assert result == "10 10.0 LoopOptDispatcher"
    assert keys == "['Forwarded', 'Rewritten', 'ScalarReplaced', 'Versioned']"


CACHE_REPORT = textwrap.dedent('''
    import numpy as np
    import numba_loopopt as lo
    from loopopt_kernels import scan_cached as disp
    buf = np.zeros(11)
    disp(buf, 10, 11)
    print(disp.stats.cache_hits and 'hit' or 'miss', buf[-1])
    print(sorted({r.key for rs in lo.remarks(disp).values() for r in rs}))
''')


def test_cache_is_keyed_on_package_and_options(kernels_module):
    _, env, tmp = kernels_module
    first = run(CACHE_REPORT, env=env, cwd=tmp)
    again = run(CACHE_REPORT, env=env, cwd=tmp)
    disabled = run(CACHE_REPORT, env=dict(env, NUMBA_LOOPOPT_DISABLE="1"), cwd=tmp)
    stock = run(CACHE_REPORT, env=dict(env, USE_STOCK="1"), cwd=tmp)
    ours_after_stock = run(CACHE_REPORT, env=env, cwd=tmp)
    assert first == ["miss 10.0", "['Forwarded', 'Rewritten', 'ScalarReplaced', 'Versioned']"]
    # Loaded from the cache, remarks included.
    assert again == ["hit 10.0", "['Forwarded', 'Rewritten', 'ScalarReplaced', 'Versioned']"]
    # Other options, other entry: compiled afresh, without the passes.
    assert disabled == ["miss 10.0", "[]"]
    # Stock numba does not load what the loopopt pipeline compiled, nor the
    # reverse.
    assert stock == ["miss 10.0", "[]"]
    assert ours_after_stock == again


def test_compiling_from_several_threads(kernels_module):
    mod = kernels_module[0]
    kernels = [lo.jit(mod.scan.py_func if hasattr(mod.scan, "py_func") else mod.scan)
               for _ in range(8)]

    def work(k):
        buf = np.zeros(12)
        n = 5 + k % 3
        return kernels[k](buf, n, 12 if k % 2 else 2), buf.copy()

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(work, range(8)))
    for k, (got, buf) in enumerate(results):
        expected = np.zeros(12)
        assert got == mod.scan(expected, 5 + k % 3, 12 if k % 2 else 2)
        assert (buf == expected).all()
        # forward-stores keeps buf's last element in a variable in both copies.
        assert remark_keys(kernels[k]) == ["ScalarReplaced", "Rewritten", "Versioned",
                                           "Forwarded", "Forwarded"]


def test_object_mode_with_loop_lifting_is_reported():
    def py(values):
        total = 0
        for v in values:
            total += v
        return {"total": total}

    with pytest.warns(NumbaPerformanceWarning, match="loops it lifts"):
        disp = lo.jit(forceobj=True)(py)
    assert disp([1, 2, 3]) == {"total": 6}
