"""Modulo versioning of counted loops: ``x[(i + k) % L]`` without the modulo
when one check before the loop proves every index is in ``[0, L)``."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import remark_keys, run_both
from numba import types

import numba_loopopt as lo
from numba_loopopt.testing import check, ir_after


@pytest.fixture(autouse=True)
def _without_scalar_replacement(monkeypatch):
    """These tests pin what the later passes do with 0-d flags and
    accumulators themselves; scalar-replace, which runs first and dissolves
    most of them, is tested with them in tests/test_scalar_replace.py."""
    # forward-stores, which runs after them, is tested in tests/test_forward_stores.py.
    monkeypatch.setenv("NUMBA_LOOPOPT_DISABLE_PASSES", "scalar-replace,forward-stores")

PASS = "loopopt_while_to_range"
F64 = types.float64[:]
I64 = types.int64


def scan_modulo(buf, n, L):
    # The loop PyTensor's scan emits for a sit-sot state kept in a buffer.
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[(i + 1) % L] = buf[i % L] + 1.0
        i += 1
    return i


def test_versioned_copy_drops_the_modulo():
    dump, _ = ir_after(scan_modulo, (F64, I64, I64), PASS)
    check(dump, r"""
        CHECK:      [[START:\$loopopt_binop[\w.]*]] = i >= [[ZERO:\$loopopt_const[\w.]*]]
        CHECK:      branch {{.*}}, [[NEXT:\d+]], [[ORIG:\d+]]
        CHECK:      label [[NEXT]]:
        CHECK:      $loopopt_keep = L != $loopopt_const
        CHECK:      = L == $loopopt_const
        CHECK:      branch {{.*}}, [[COPY:\d+]], {{\d+}}
        CHECK:      label [[COPY]]:
        CHECK-NEXT: [[M0:\$binop_mod[\w.]+]] = i * $loopopt_keep
        CHECK-NEXT: getitem(value=buf, index=[[M0]]
        CHECK:      [[M1:\$binop_mod[\w.]+]] = [[ADD:\$binop_add[\w.]+]] * $loopopt_keep
        CHECK-NEXT: buf[[[M1]]] =
        CHECK:      label [[ORIG]]:
        CHECK-NEXT: = i % L
        CHECK:      = [[ADD]] % L
    """)


def test_versioned_remark_states_the_check():
    disp = run_both(scan_modulo, np.zeros(11), 10, 11)
    (remark,) = [r for r in lo.remarks(disp, disp.signatures[0]) if r.key == "Versioned"]
    assert ("(i + 1) % L, i % L cannot wrap, or divide by 1, when i >= 0 and "
            "(L == 1 or L > 0 and n <= L - 1)") in remark.message


@pytest.mark.parametrize("n,L", [
    (10, 11),   # the whole range fits: the copy runs
    (10, 10),   # the last index wraps to 0: the original runs
    (10, 2),    # a circular buffer, as PyTensor keeps only the last state
    (0, 11), (-4, 3), (1, 1),
    (10, -3),   # Python's modulo with a negative modulus
    (5, 0),     # ZeroDivisionError in both
])
def test_scan_modulo_matches_stock(n, L):
    buf = np.arange(12.0)
    run_both(scan_modulo, buf, n, L)
    run_both(scan_modulo, buf, n, L, error_model="numpy")


def negative_start(buf, start, n, L):
    cond = np.array(False)
    i = start
    while i < n and not cond.item():
        buf[i % L] += 1.0
        i += 1
    return i


def step_two_inclusive(buf, n, L):
    cond = np.array(False)
    i = 0
    while i <= n and not cond.item():
        buf[(i + 2) % L] = buf[i % L] * 0.5 + 1.0
        i += 2
    return i


def counting_down(buf, n, L):
    cond = np.array(False)
    i = n
    while i > 0 and not cond.item():
        buf[(i - 1) % L] = buf[i % L] + 1.0
        i -= 1
    return i


def counting_down_inclusive(buf, n, L):
    cond = np.array(False)
    i = n
    while i >= 1 and not cond.item():
        buf[(i - 1) % L] += buf[(i + 1) % L]
        i -= 1
    return i


def read_after_update(buf, n, L):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        x = buf[i % L]
        i += 1
        buf[i % L] = x + 1.0
    return i


def two_moduli(buf, other, n, L, M):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[(i + 1) % L] = buf[i % L] + other[i % M]
        i += 1
    return i


def constant_modulus(buf, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[(i + 1) % 8] = buf[i % 8] + 1.0
        i += 1
    return i


def plain_while(buf, n, L):
    i = 0
    while i < n:
        buf[(i + 1) % L] = buf[i % L] + 1.0
        i += 1
    return i


CASES = [
    (negative_start, lambda: [(np.zeros(10), s, n, L) for s in (-3, 0, 2)
                              for n in (-1, 3, 6) for L in (3, 6, 7, 9)]),
    (step_two_inclusive, lambda: [(np.arange(12.0), n, L) for n in (-1, 0, 5, 8, 9)
                                  for L in (2, 9, 10, 11, 12)]),
    (counting_down, lambda: [(np.arange(12.0), n, L) for n in (-2, 0, 3, 10)
                             for L in (1, 4, 10, 11)]),
    (counting_down_inclusive, lambda: [(np.arange(12.0), n, L) for n in (0, 3, 9, 10)
                                       for L in (4, 10, 11, 12)]),
    (read_after_update, lambda: [(np.zeros(12), n, L) for n in (0, 4, 9, 10)
                                 for L in (5, 10, 11)]),
    (two_moduli, lambda: [(np.zeros(12), np.arange(12.0), n, L, M)
                          for n in (0, 5, 10) for L in (6, 11) for M in (3, 10, 12)]),
    (constant_modulus, lambda: [(np.zeros(12), n) for n in (0, 6, 7, 8, 20)]),
    (plain_while, lambda: [(np.zeros(12), n, L) for n in (0, 5, 10) for L in (2, 10, 11)]),
]


@pytest.mark.parametrize("kernel,argsets", CASES, ids=[c[0].__name__ for c in CASES])
def test_versioned_kernels_match_stock_on_both_paths(kernel, argsets):
    for args in argsets():
        disp = run_both(kernel, *args)
    assert "Versioned" in remark_keys(disp, "passed"), lo.remarks(disp)


def test_versioning_can_be_switched_off():
    options = {"while_to_range": {"version_modulo": False}}
    disp = run_both(scan_modulo, np.zeros(11), 10, 11, options=options)
    assert remark_keys(disp) == ["Rewritten"]


def test_large_loops_are_not_copied():
    options = {"while_to_range": {"max_versioned_stmts": 5}}
    disp = run_both(scan_modulo, np.zeros(11), 10, 11, options=options)
    assert remark_keys(disp, "missed") == ["LoopTooLarge"]
    assert remark_keys(disp, "passed") == ["Rewritten"]


def unsigned_bound(buf, n, L):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[(i + 1) % L] = buf[i % L] + 1.0
        i += 1
    return i


def test_unsigned_bound_is_not_versioned():
    disp = run_both(unsigned_bound, np.zeros(11), np.uint64(10), 11)
    assert "Versioned" not in remark_keys(disp)
    assert remark_keys(disp, "missed") == ["ModuloBoundUnsigned"]


def not_equal_test(buf, n, L):
    cond = np.array(False)
    i = 0
    while i != n and not cond.item():
        buf[(i + 1) % L] = buf[i % L] + 1.0
        i += 1
    return i


def test_a_counter_whose_range_is_unknown_is_not_versioned():
    disp = run_both(not_equal_test, np.zeros(11), 10, 11)
    assert remark_keys(disp, "missed") == ["ModuloRangeUnknown"]
    (why,) = [r for r in lo.remarks(disp, disp.signatures[0]) if r.kind.value == "missed"]
    assert why.arguments == {"counter": "i", "modulos": 2}


def modulo_of_another_value(buf, n, L):
    cond = np.array(False)
    i = 0
    j = 3
    while i < n and not cond.item():
        buf[j % L] += 1.0
        j += 2
        i += 1
    return j


def test_modulo_not_of_the_counter_is_left_alone():
    disp = run_both(modulo_of_another_value, np.zeros(11), 10, 11)
    assert remark_keys(disp) == ["Rewritten"]


def test_new_labels_never_collide_with_bytecode_offsets(monkeypatch):
    # numba's global label counter knows only labels made by its helpers; the
    # function's own labels are bytecode offsets that may lie above it.  Put
    # the counter just below the function's last label, where it would collide.
    import re

    from numba.core import ir_utils

    sig = (F64, I64, I64, I64)
    before, _ = ir_after(negative_start, sig, "make_function_op_code_to_jit_function")
    last = max(int(m) for m in re.findall(r"^label (\d+):", before, re.M))
    for start in (-3, 0, 2):
        monkeypatch.setattr(ir_utils._the_max_label, "_value", last - 3)
        disp = run_both(negative_start, np.zeros(10), start, 6, 9, fresh=True)
    assert "Versioned" in remark_keys(disp, "passed")


def two_buffers(a, b, n, La, Lb):
    # Two scan states: one kept whole, one in a one-element buffer.
    i = 0
    while i < n:
        a[(i + 1) % La] = a[i % La] + 1.0
        b[(i + 1) % Lb] = b[i % Lb] * 0.5 + a[i % La]
        i += 1
    return i


@pytest.mark.parametrize("La,Lb,n", [(1, 11, 10), (11, 1, 10), (1, 1, 10), (11, 11, 10),
                                     (2, 11, 10), (1, 5, 10), (1, 11, 0), (1, -3, 4),
                                     (1, 0, 3)])
def test_buffers_of_one_element_beside_whole_ones_match_stock(La, Lb, n):
    run_both(two_buffers, np.arange(12.0), np.arange(12.0), n, La, Lb)
