"""The vectorised exp (numba_loopopt.vecmath) and the fuse-reduce kernels that
use it: bit-identical to numba's np.exp and to stock numba, no allocation, and
today's kernel when the option is off or the self-test fails."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from conftest import run_both
from numba.core.runtime import _nrt_python, rtsys

import numba_loopopt as lo
from numba_loopopt import Options, vecmath
from numba_loopopt.transforms.fuse_reduce import codegen

needs_vector_exp = pytest.mark.skipif(
    not vecmath.vector_exp_available(),
    reason="the vectorised exp is not bit-identical to this machine's exp: "
           + vecmath.vector_exp_status()[1])


@numba.njit
def _port(xs, out):
    for i in range(xs.shape[0]):
        x = xs[i]
        out[i] = vecmath.exp_core(x) if vecmath.exp_in_range(x) else np.exp(x)


@numba.njit
def _stock(xs, out):
    for i in range(xs.shape[0]):
        out[i] = np.exp(xs[i])


def _differing(xs):
    xs = np.ascontiguousarray(xs, dtype=np.float64)
    mine, theirs = np.empty_like(xs), np.empty_like(xs)
    _port(xs, mine)
    _stock(xs, theirs)
    bad = mine.view(np.int64) != theirs.view(np.int64)
    return xs[bad]


def _neighbours(x, k=3):
    """``x`` and its ``k`` nearest floats either side."""
    bits = np.float64(x).view(np.int64)
    return (bits + np.arange(-k, k + 1, dtype=np.int64)).view(np.float64)


def _nan(payload, negative=False):
    bits = np.int64(0x7FF8000000000000 | payload)
    value = bits.view(np.float64)
    return -value if negative else value


SPECIALS = np.concatenate([
    [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, _nan(1), _nan(12345, True),
     np.int64(0x7FF0000000000001).view(np.float64),  # a signalling NaN
     5e-324, -5e-324, 2.2250738585072009e-308, -2.2250738585072009e-308,
     2.2250738585072014e-308, 1100.0, -1100.0, 1e308, -1e308],
    *(_neighbours(x) for x in (
        2.0**-54, -(2.0**-54), 512.0, -512.0,  # the port's main path
        709.782712893384, 709.7827128933840,  # overflow threshold
        -708.3964185322641,  # smallest normal result
        -745.1332191019411, -745.1332191019412,  # underflow to 0
        1.0, -1.0, 0.34657359027997264, 0.0027076061740622863)),
])


def test_table_is_the_algorithms():
    tab = vecmath.TAB
    assert tab.shape == (2 * vecmath.N,)
    assert tab[1] == 0x3FF0000000000000 and tab[0] == 0
    assert tab[2] == 0x3C9B3B4F1A88BF6E  # T[1]; checked against libm's __exp_data


@needs_vector_exp
def test_port_is_np_exp_on_specials_and_random_bits():
    assert _differing(SPECIALS).size == 0
    rng = np.random.default_rng(5)
    bits = rng.integers(-(2**63), 2**63 - 1, 200_000, dtype=np.int64, endpoint=True)
    assert _differing(bits.view(np.float64)).size == 0
    # Dense on the main path, and across the whole finite range.
    assert _differing(rng.uniform(-750.0, 750.0, 200_000)).size == 0
    assert _differing(rng.standard_normal(200_000) * 3).size == 0


def test_self_test_verdict_is_cached(monkeypatch):
    vecmath.vector_exp_status()
    monkeypatch.setattr(vecmath, "self_test", lambda *a, **k: pytest.fail("re-run"))
    assert vecmath.vector_exp_available() in (True, False)


def test_self_test_is_quick():
    vecmath.vector_exp_status()  # compiled (or loaded from numba's cache)
    ok, why = vecmath.self_test()
    assert ok == vecmath.vector_exp_available(), why
    assert vecmath._VERDICT.get("ms", 0) < 1000


# -- Fused kernels --------------------------------------------------------------


def exp_max(a, b):
    return (np.exp(a) * b).max()


def exp_min(a, b):
    return np.min(np.exp(a) * b)


def exp_sum(a, b):
    return np.sum(np.exp(a) * b)


def exp_argmax(a, b):
    return (np.exp(a) * b).argmax()


def exp_mean(a, b):
    return (np.exp(a) * b).mean()


def exp_several(a, b):
    t = np.exp(a - 1.5) * b + np.exp(-a)
    return t.max(), t.prod(), t.argmin(), t.min(), t.any(), t


LENGTHS = (0, 1, 7, 8, 9, 63, 64, 65, 511, 512, 513, 1000, 4097)


def _inputs(n, kind, rng):
    if kind == "wide":  # overflow, underflow, off the main path
        return rng.uniform(-800.0, 800.0, n), rng.standard_normal(n)
    if kind == "specials":
        pool = np.array([np.nan, -np.nan, _nan(7), _nan(99, True), np.inf, -np.inf,
                         0.0, -0.0, 5e-324, 709.9, -746.0, 2.0**-55, 512.0])
        a, b = rng.standard_normal(n) * 5, rng.standard_normal(n)
        k = max(1, n // 40)
        if n:
            a[rng.integers(0, n, k)] = rng.choice(pool, k)
            b[rng.integers(0, n, k)] = rng.choice(pool, k)
        return a, b
    if kind == "zeros-max":  # +0/-0 ties decide the sign of a zero maximum
        return rng.random(n), rng.choice([0.0, -0.0, -1.0], n)
    if kind == "zeros-min":
        return rng.random(n), rng.choice([0.0, -0.0, 1.0], n)
    if kind == "nan-payloads":  # which NaN comes first
        a, b = rng.random(n), rng.random(n)
        for i in rng.integers(0, n, max(1, n // 60)) if n else ():
            b[i] = _nan(int(rng.integers(1, 1000)), bool(rng.integers(0, 2)))
        return a, b
    return rng.standard_normal(n), rng.standard_normal(n)


KINDS = ("normal", "wide", "specials", "zeros-max", "zeros-min", "nan-payloads")


@needs_vector_exp
@pytest.mark.parametrize("kernel", [exp_max, exp_min, exp_sum, exp_argmax, exp_mean,
                                    exp_several], ids=lambda k: k.__name__)
def test_vector_exp_kernels_match_stock_bit_for_bit(kernel):
    rng = np.random.default_rng(11)
    for kind in KINDS:
        for n in LENGTHS:
            disp = run_both(kernel, *_inputs(n, kind, rng))
    # Broadcasting (an operand of length 1) takes the scalar loop.
    run_both(kernel, rng.standard_normal(70), np.array([-2.0]))
    run_both(kernel, rng.standard_normal(70), rng.standard_normal(3))
    (remark,) = lo.remarks(disp, disp.signatures[0])
    assert remark.key == "Fused" and remark.arguments["vector_exp"] is True, remark
    assert "np.exp vectorised" in remark.message


@needs_vector_exp
def test_scalar_operands_and_nested_exp():
    def nested(a, s):
        return np.sum(np.exp(np.exp(a) * s - 2.0))

    rng = np.random.default_rng(3)
    for n in (0, 5, 600):
        for s in (1.0, -0.0, np.inf, 700.0):
            disp = run_both(nested, rng.standard_normal(n) * 4, s)
    (remark,) = lo.remarks(disp, disp.signatures[0])
    assert remark.arguments["vector_exp"] is True and "2 calls" in remark.message


def test_empty_max_still_raises():
    with pytest.raises(ValueError, match="zero-size array"):
        lo.jit(exp_max)(np.array([]), np.array([]))
    run_both(exp_argmax, np.array([]), np.array([]))


@pytest.fixture
def nrt_stats():
    _nrt_python.memsys_enable_stats()
    yield lambda: rtsys.get_allocation_stats().alloc
    _nrt_python.memsys_disable_stats()


@needs_vector_exp
def test_vector_exp_kernel_allocates_nothing(nrt_stats):
    a, b = np.random.default_rng(2).standard_normal((2, 5000))

    def allocations(disp):
        disp(a, b)
        before = nrt_stats()
        disp(a, b)
        return nrt_stats() - before

    # Unboxing each array argument counts as an allocation (numba's
    # NRT_adapt_ndarray_from_python): a kernel that allocates nothing.
    baseline = allocations(numba.njit(lambda a, b: a[0] + b[0]))
    for kernel in (exp_max, exp_sum):
        assert allocations(lo.jit(kernel)) == baseline, kernel.__name__
        assert allocations(numba.njit(kernel)) == baseline + 1


def _blocked_calls(monkeypatch):
    calls = []
    real = codegen.kernel_source_blocked
    monkeypatch.setattr(codegen, "kernel_source_blocked",
                        lambda *a, **k: calls.append(a) or real(*a, **k))
    return calls


def test_option_off_keeps_the_scalar_kernel(monkeypatch):
    calls = _blocked_calls(monkeypatch)
    a, b = np.random.default_rng(4).standard_normal((2, 600))
    disp = run_both(exp_max, a, b, options={"fuse_reduce": {"vector_exp": False}})
    (remark,) = lo.remarks(disp, disp.signatures[0])
    assert remark.key == "Fused" and remark.arguments["vector_exp"] is False
    assert "vector_exp is off" in remark.message
    assert calls == []
    with pytest.raises(lo.OptionError, match="fuse_reduce.vector_exp"):
        lo.jit(options={"fuse_reduce": {"vector_exp": 1}})


def test_environment_switches_it_off(monkeypatch):
    assert Options().fuse_reduce.vector_exp is True
    monkeypatch.setenv("NUMBA_LOOPOPT_VECTOR_EXP", "0")
    assert Options().with_environment().fuse_reduce.vector_exp is False
    monkeypatch.setenv("NUMBA_LOOPOPT_VECTOR_EXP", "1")
    opts = Options(fuse_reduce={"vector_exp": False}).with_environment()
    assert opts.fuse_reduce.vector_exp is True


def test_failed_self_test_keeps_the_scalar_kernel(monkeypatch):
    calls = _blocked_calls(monkeypatch)
    monkeypatch.setitem(vecmath._VERDICT, "verdict",
                        (False, "the vectorised exp differs from np.exp (simulated)"))
    assert not vecmath.vector_exp_available()
    a, b = np.random.default_rng(6).uniform(-800, 800, (2, 700))
    for kernel in (exp_max, exp_sum):
        disp = run_both(kernel, a, b)
        (remark,) = lo.remarks(disp, disp.signatures[0])
        assert remark.arguments["vector_exp"] is False
        assert "not vectorised: the vectorised exp differs" in remark.message
    assert calls == []


def test_no_note_without_float64_exp():
    def float32_exp(a):
        return np.exp(a).max()

    def no_exp(a, b):
        return (a * b).max()

    disp = run_both(float32_exp, np.linspace(-3, 3, 50, dtype=np.float32))
    (remark,) = lo.remarks(disp, disp.signatures[0])
    assert "vector_exp" not in remark.arguments
    disp = run_both(no_exp, *np.ones((2, 9)))
    (remark,) = lo.remarks(disp, disp.signatures[0])
    assert "vector_exp" not in remark.arguments and "np.exp" not in remark.message


@needs_vector_exp
def test_vector_exp_kernel_is_vectorised_in_llvm_ir():
    """The fused kernel (linked into the function's module) computes the
    elements into the stack block with vector fused multiply-adds; with the
    option off there are none."""
    from numba import types

    from numba_loopopt.testing import check

    sig = (types.float64[::1], types.float64[::1])
    disp = lo.jit(exp_max)
    disp.compile(sig)
    check(disp.inspect_llvm(sig), f"""
        CHECK: alloca [{vecmath.BLOCK} x double], align 64
        CHECK: call <{{{{[0-9]+}}}} x double> @llvm.fma.v{{{{[0-9]+}}}}f64(
        """)
    off = lo.jit(options={"fuse_reduce": {"vector_exp": False}})(exp_max)
    off.compile(sig)
    check(off.inspect_llvm(sig), "CHECK-NOT: @llvm.fma.v{{[0-9]+}}f64(")
