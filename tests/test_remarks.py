"""The remark format and the public remarks() API."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import types

import numba_loopopt as lo
from numba_loopopt.remarks import Remark, RemarkEmitter, RemarkKind


def test_passed_and_missed_remarks_read_like_llvm_remarks():
    passed = Remark(RemarkKind.PASSED, "while-to-range", "Rewritten", "while loop became counted",
                    "kernel.py", 12)
    missed = Remark(RemarkKind.MISSED, "while-to-range", "BoundChanges",
                    "'n' is reassigned at line 15", "kernel.py", 12, (("bound", "n"),))
    assert str(passed) == "kernel.py:12: [while-to-range] Rewritten: while loop became counted"
    assert str(missed) == ("kernel.py:12: [while-to-range] missed BoundChanges: "
                           "'n' is reassigned at line 15")
    assert missed.arguments == {"bound": "n"}


def test_emitter_keeps_remarks_only_when_committed():
    emit = RemarkEmitter("p", None)
    emit.missed("Key", None, "why")
    metadata = {}
    emit.commit(metadata)
    (remark,) = metadata["loopopt_remarks"]
    assert (remark.filename, remark.line, remark.kind) == ("<unknown>", 0, RemarkKind.MISSED)
    assert str(remark) == "<unknown>: [p] missed Key: why"


def kernel(buf, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[i] += 1.0
        i += 1
    return i


def test_remarks_follow_numbas_inspect_convention():
    disp = lo.jit(kernel)
    disp(np.zeros(3), 3)
    disp(np.zeros(3, dtype=np.float32), 3)
    by_sig = lo.remarks(disp)
    assert set(by_sig) == set(disp.signatures)
    sig = (types.Array(types.float32, 1, "C"), types.int64)
    assert lo.remarks(disp, sig) == by_sig[sig]
    # A numba Signature works too.
    full = disp.overloads[sig].signature
    assert lo.remarks(disp, full) == by_sig[sig]


def test_remarks_of_an_uncompiled_signature_raise_a_clear_error():
    disp = lo.jit(kernel)
    disp(np.zeros(3), 3)
    with pytest.raises(KeyError, match="has no compiled signature .*compiled: "):
        lo.remarks(disp, (types.int32,))
    with pytest.raises(TypeError, match="needs a numba dispatcher"):
        lo.remarks(kernel)


def test_remarks_of_a_function_loaded_from_numbas_own_cache(tmp_path):
    # numba's cache loads overloads without metadata: no remarks, no crash.
    (tmp_path / "cached_mod.py").write_text(textwrap.dedent("""
        import numba
        @numba.njit(cache=True)
        def f(x):
            return x + 1
    """))
    code = ("import cached_mod, numba_loopopt as lo; cached_mod.f(1); "
            "print(lo.remarks(cached_mod.f), lo.remarks(cached_mod.f, cached_mod.f.signatures[0]))")
    env = {**os.environ, "PYTHONPATH": str(tmp_path),
           "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    for _ in range(2):  # compile and store; then load from the cache
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True).stdout
    assert out.strip() == "{(int64,): []} []"
