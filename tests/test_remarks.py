"""The remark format and the public remarks() API."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import types
from numba.core import ir

import numba_loopopt as lo
from numba_loopopt.remarks import Missed, Remark, RemarkEmitter, RemarkKind


@pytest.fixture(autouse=True)
def _without_scalar_replacement(monkeypatch):
    """These tests pin what the later passes do with 0-d flags and
    accumulators themselves; scalar-replace, which runs first and dissolves
    most of them, is tested with them in tests/test_scalar_replace.py."""
    monkeypatch.setenv("NUMBA_LOOPOPT_DISABLE_PASSES", "scalar-replace")


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
    assert out.strip() == "(int64): no remarks []"


# -- Missed carries named arguments, as LLVM remarks do ------------------------


def test_missed_takes_arguments_and_stays_positional_compatible():
    loc = ir.Loc("kernel.py", 7)
    old = Missed("BoundChanges", "'n' is reassigned", loc)
    assert (old.key, old.message, old.loc, old.args) == ("BoundChanges", "'n' is reassigned",
                                                         loc, ())
    assert Missed("K", "m") == Missed("K", "m", None)
    why = Missed("BoundChanges", "'n' is reassigned", loc, bound="n", line=9)
    assert why.arguments == {"bound": "n", "line": 9}
    # Names the signature takes go through args= (a mapping or pairs).
    assert Missed("K", "m", args={"key": 1, "loc": 2}).arguments == {"key": 1, "loc": 2}
    assert Missed("K", "m", args=[("a", 1)], b=2).args == (("a", 1), ("b", 2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        why.key = "Other"


def test_emitter_records_a_missed_with_its_arguments():
    emit = RemarkEmitter("while-to-range", ir.Loc("kernel.py", 3))
    why = Missed("BoundChanges", "'n' is reassigned at line 9", ir.Loc("kernel.py", 7),
                 bound="n")
    remark = emit.missed(why)
    assert (remark.key, remark.line, remark.message) == ("BoundChanges", 7,
                                                         "'n' is reassigned at line 9")
    assert remark.arguments == {"bound": "n"}
    # Without a location of its own, the one given (or the emitter's) is used;
    # arguments given at the call are added.
    remark = emit.missed(Missed("NotInlinable", "no"), ir.Loc("kernel.py", 5), depth=2)
    assert (remark.line, remark.arguments) == (5, {"depth": 2})
    assert emit.missed(Missed("NotInlinable", "no")).line == 3
    # The old positional form is unchanged.
    remark = emit.missed("Key", None, "why", bound="n")
    assert (remark.key, remark.line, remark.arguments) == ("Key", 3, {"bound": "n"})
    with pytest.raises(TypeError, match="needs a message"):
        emit.missed("Key", None)
    with pytest.raises(TypeError, match="message is the Missed object's own"):
        emit.missed(why, None, "another message")


# -- remarks() prints readably -------------------------------------------------


def bound_changes(buf, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[i] = 1.0
        n -= 1
        i += 1
    return i


def test_remarks_print_one_per_line_under_their_signature():
    disp = lo.jit(bound_changes)
    disp(np.zeros(6), 5)
    disp(np.zeros(6, dtype=np.float32), 5)
    by_sig = lo.remarks(disp)
    assert isinstance(by_sig, dict) and isinstance(by_sig[disp.signatures[0]], list)
    text = str(by_sig)
    assert repr(by_sig) == text and "Remark(" not in text and "RemarkKind" not in text
    lines = text.splitlines()
    assert lines[0] == "(array(float64, 1d, C), int64):"
    assert lines[1].startswith("  ") and lines[1].endswith(
        "[while-to-range] missed BoundChanges: both sides of 'i < n' change in the loop: "
        "'n' is reassigned at line " + str(bound_changes.__code__.co_firstlineno + 5))
    assert lines[2] == "(array(float32, 1d, C), int64):"
    one = lo.remarks(disp, disp.signatures[0])
    assert repr(one) == str(one) == lines[1].strip()


def test_empty_remarks_print_as_empty():
    disp = lo.jit(lambda x: x + 1)
    assert repr(lo.remarks(disp)) == "{}"
    disp(1)
    assert repr(lo.remarks(disp)) == "(int64): no remarks"
    assert repr(lo.remarks(disp, disp.signatures[0])) == "[]"


# -- Remark texts speak the user's language, not numba's -----------------------


def sum_of_expression(a, b, c):
    return np.sum(a * b + c)


def mean_of_gather(x, idx):
    return x[idx].sum()


def test_remark_texts_do_not_use_numba_internal_names():
    x = np.arange(8.0)
    texts = []
    for func, args in ((sum_of_expression, (x, x, x)),
                       (mean_of_gather, (x, np.arange(8)))):
        disp = lo.jit(func)
        disp(*args)
        texts += [str(r) for r in lo.remarks(disp, disp.signatures[0])]
    assert texts and all("Fused" in t for t in texts), texts
    assert not [t for t in texts if "arrayexpr" in t], texts
