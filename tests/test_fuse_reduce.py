"""The fuse-reduce pass: reductions of elementwise expressions and gathers
without a temporary, bit-identical to stock numba; refusals say why."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import remark_keys, run_both
from numba import types
from numba.core.runtime import _nrt_python, rtsys

import numba_loopopt as lo
from numba_loopopt._compat import MULTIDIM_GATHER, NUMBA_RELEASE
from numba_loopopt.testing import check, ir_after

PASS = "loopopt_fuse_reduce"
F64 = types.float64[:]


def data(n, k=3, seed=1):
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(n) for _ in range(k))


def sum_of_expression(a, b, c):
    return np.sum(a * b + c)


def test_sum_of_an_expression_is_one_loop_without_temporary():
    dump, _ = ir_after(sum_of_expression, (F64, F64, F64), PASS)
    check(dump, r"""
        CHECK:     $loopopt_fused_kernel = global(_fused: CPUDispatcher(
        CHECK:     [[R:\$[\w.]+]] = call $loopopt_fused_kernel(a, b, c, {{.*}}:: float64
        CHECK-NOT: arrayexpr
        CHECK:     return
    """)
    for n in (0, 1, 7, 100):
        disp = run_both(sum_of_expression, *data(n))
    assert remark_keys(disp) == ["Fused"]


def several(a, b):
    t = a * b - 0.5
    return t.sum(), t.max(), t.min(), t.mean(), np.prod(t), np.max(t)


def variance(x, m):
    return ((x - m) ** 2).sum()


def with_ufuncs(a, b):
    return np.exp(a) * np.sqrt(np.abs(b)) .max()


def ufunc_reduce(a, b):
    return (np.exp(a) * np.sqrt(np.abs(b))).max()


def broadcast(a, one, s):
    return (a * one + s).sum()


def divide(a, b):
    return np.sum(a / b)


def integer_operands(a, k):
    return (a * k + 1).sum()


def gather(x, idx):
    return x[idx].sum()


def gather_several(x, idx):
    g = x[idx]
    return g.min(), g.mean()


ZEROS = np.zeros(5)
NANS = np.array([1.0, np.nan, -2.0, np.nan])
FUSED = [
    (several, lambda: data(50, 2)),
    (several, lambda: (NANS, np.ones(4))),
    (several, lambda: (np.array([np.nan, 1.0]), np.ones(2))),
    (several, lambda: (np.array([]), np.array([]))),
    (variance, lambda: (data(40, 1)[0], 0.25)),
    (ufunc_reduce, lambda: data(30, 2)),
    (broadcast, lambda: (data(9, 1)[0], np.array([2.0]), 3.0)),
    (broadcast, lambda: (np.array([]), np.array([2.0]), 3.0)),
    (broadcast, lambda: (data(9, 1)[0], np.ones(8), 3.0)),
    (divide, lambda: (data(6, 1)[0], np.array([1.0, 0.0, -0.0, 2.0, 0.0, 3.0]))),
    (integer_operands, lambda: (data(7, 1)[0], 3)),
    (gather, lambda: (data(20, 1)[0], np.array([0, 19, -1, 5, 5, -20]))),
    (gather, lambda: (data(20, 1)[0], np.array([], dtype=np.int64))),
    (gather_several, lambda: (data(20, 1)[0], np.arange(19, -1, -3))),
]


@pytest.mark.parametrize("kernel,make_args", FUSED,
                         ids=[f"{k.__name__}-{i}" for i, (k, _) in enumerate(FUSED)])
def test_fused_reductions_match_stock_bit_for_bit(kernel, make_args):
    disp = run_both(kernel, *make_args())
    assert remark_keys(disp) == ["Fused"], lo.remarks(disp)


def test_fused_with_boundscheck_and_error_model():
    for kwargs in ({"boundscheck": True}, {"error_model": "numpy"}):
        disp = run_both(several, *data(20, 2), **kwargs)
        assert remark_keys(disp) == ["Fused"]
    run_both(gather, data(5, 1)[0], np.array([0, 9]), boundscheck=True)


def test_fastmath_may_reassociate_but_stays_close():
    # With fastmath the user allows reassociation: stock numba and the fused
    # loop may round differently, as two fastmath builds may.
    a, b = data(50, 2)
    disp = lo.jit(fastmath=True)(several)
    stock = lo.jit(fastmath=True, options={"fuse_reduce": False})(several)
    np.testing.assert_allclose(disp(a, b), stock(a, b), rtol=1e-12)
    assert remark_keys(disp) == ["Fused"]


def test_reassociate_option_vectorises_but_stays_close():
    a, b = data(1000, 2)
    disp = lo.jit(options={"fuse_reduce": {"reassociate": True}})(several)
    exact = lo.jit(several)
    np.testing.assert_allclose(disp(a, b), exact(a, b), rtol=1e-12)
    (remark,) = lo.remarks(disp, disp.signatures[0])
    assert remark.key == "Fused" and "reassociate=True" in remark.message
    with pytest.raises(lo.OptionError, match="fuse_reduce.reassociate"):
        lo.jit(options={"fuse_reduce": {"reassociate": 1}})


@pytest.fixture
def nrt_stats():
    _nrt_python.memsys_enable_stats()
    yield lambda: rtsys.get_allocation_stats().alloc
    _nrt_python.memsys_disable_stats()


def test_fused_reduction_allocates_no_temporary(nrt_stats):
    a, b, c = data(1000)
    stock = lo.jit(options={"fuse_reduce": False})(sum_of_expression)
    fused = lo.jit(sum_of_expression)

    def allocations(disp):
        disp(a, b, c)
        before = nrt_stats()
        disp(a, b, c)
        return nrt_stats() - before

    # The temporary is gone.  (Before numba 0.68 stock's axis sum makes
    # temporaries of its own, which the fused kernel does not: 0.62 allocates
    # 6 times here, 3 fused.)
    if NUMBA_RELEASE >= (0, 68):
        assert allocations(fused) == allocations(stock) - 1
    else:
        assert allocations(fused) <= allocations(stock) - 1


# -- Element types and the other reductions ----------------------------------


def every_reduction(a, b):
    t = a * b + a
    return (t.sum(), t.prod(), t.mean(), t.min(), t.max(), t.any(), t.all(),
            t.argmin(), t.argmax())


def no_extremes(a, b):
    t = a * b + a
    return t.sum(), t.prod(), t.mean(), t.any(), t.all()


def one_each(a, b):
    return (np.any(a > b), np.all(a >= b), np.argmin(a - b), np.argmax(a - b),
            (a * b).sum())


def gather_every_reduction(x, idx):
    g = x[idx]
    return g.sum(), g.prod(), g.min(), g.argmax(), g.any(), g.all()


def _values(dtype, n, seed):
    rng = np.random.default_rng(seed)
    if dtype == np.bool_:
        return rng.random(n) > 0.5
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        # Large values: sums and products wrap around, as in stock numba.
        return rng.integers(max(info.min, -(2**40)), min(info.max, 2**40), n,
                            endpoint=True).astype(dtype)
    if np.issubdtype(dtype, np.complexfloating):
        return (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dtype)
    x = rng.standard_normal(n).astype(dtype)
    if n > 3:
        x[[1, n - 2]] = [np.nan, np.inf]
    return x


DTYPES = [np.bool_, np.int8, np.uint8, np.int32, np.uint64, np.int64, np.float32,
          np.float64, np.complex64, np.complex128]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_reduction_of_every_element_type_matches_stock(dtype):
    kernels = [no_extremes] if np.issubdtype(dtype, np.complexfloating) else [
        every_reduction, one_each]
    for kernel in kernels:
        for n in (0, 1, 2, 7, 40):
            if n == 0 and kernel is not no_extremes:
                continue  # min, argmin ... of nothing raise: checked below
            disp = run_both(kernel, _values(dtype, n, n), _values(dtype, n, n + 1))
        keys = remark_keys(disp)
        assert keys and set(keys) == {"Fused"}, lo.remarks(disp)


def test_empty_extremes_raise_as_stock():
    for kernel in (every_reduction, one_each):
        disp = run_both(kernel, np.zeros(0), np.zeros(0))  # ValueError in both
        assert "Fused" in remark_keys(disp)


def mean_then_print(a, b):
    t = a * b
    m = t.mean()
    print("after the mean")
    return m, t.sum()


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32, np.complex64],
                         ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("error_model,fastmath", [("python", False), ("numpy", False),
                                                   ("python", True)])
def test_mean_follows_the_installed_numba(dtype, error_model, fastmath, capfd):
    # numba >= 0.66: NaN on no elements, the result in the accumulator type;
    # before: sum / size where the mean is (ZeroDivisionError there under
    # error_model='python', and for complex numbers under 'numpy' too), a
    # float64 of a float32 sum.
    # (with fastmath, sums of small integers, which no order of additions
    # changes: what is tested is the division, c / n or c * (1 / n))
    for n in (0, 3, 7) if fastmath else (0, 7, 1001):
        a = np.arange(n) if fastmath else np.arange(n) * 0.37
        a, b = a.astype(dtype), np.ones(n, dtype)
        disp = run_both(mean_then_print, a, b, error_model=error_model, fastmath=fastmath)
        assert "Fused" in remark_keys(disp)
    capfd.readouterr()


@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.bool_, np.complex128],
                         ids=lambda d: np.dtype(d).name)
def test_gathers_of_every_element_type(dtype):
    kernel = gather_every_reduction
    if np.issubdtype(dtype, np.complexfloating):
        def kernel(x, idx):
            g = x[idx]
            return g.sum(), g.prod(), g.min(), g.max(), g.any(), g.all(), g.mean()
    x = _values(dtype, 20, 3)
    for idx in (np.array([0, 19, -1, 5, 5, -20]), np.arange(19, -1, -3)):
        disp = run_both(kernel, x, idx)
    assert set(remark_keys(disp)) == {"Fused"}


def escapes(a, b):
    t = a * b
    return t.sum(), t


def escapes_and_is_changed_after(a, b):
    t = a * b + 1.0
    low, high, at = t.min(), np.max(t), t.argmax()
    t[0] = 0.0
    return low, high, t, at


def gather_escapes(x, idx):
    g = x[idx]
    return g, g.sum()


def escapes_view(a):
    t = a[::2] * 2
    m = t.mean()
    return m, t[1:]


ESCAPING = [
    (escapes, lambda n: data(n, 2)),
    (escapes_and_is_changed_after, lambda n: data(n, 2)),
    (gather_escapes, lambda n: (data(max(n, 1), 1)[0], np.arange(n) % max(n, 1) - 1)),
    (escapes_view, lambda n: (np.arange(n, dtype=np.int32),)),
]


@pytest.mark.parametrize("kernel,make_args", ESCAPING, ids=[k[0].__name__ for k in ESCAPING])
def test_an_escaping_intermediate_is_materialised_in_the_same_loop(kernel, make_args,
                                                                    nrt_stats):
    for n in (0, 1, 6, 33):
        disp = run_both(kernel, *make_args(n))
    assert remark_keys(disp)[:1] == ["Fused"], lo.remarks(disp)
    assert "stored into the array once" in lo.remarks(disp, disp.signatures[0])[0].message
    # One array, as stock numba allocates: the temporary is the result.
    args = make_args(1000)
    stock = lo.jit(options={"fuse_reduce": False})(kernel)

    def allocations(d):
        d(*args)
        before = nrt_stats()
        d(*args)
        return nrt_stats() - before

    assert allocations(disp) == allocations(stock)


def nd_reductions(a, b):
    t = a * b + 1.0
    return t.sum(), t.min(), t.argmax(), t.mean(), t.argmin(), np.max(t), t.any()


def nd_escapes(a, b):
    t = np.sqrt(np.abs(a - b))
    return t.prod(), t


@pytest.mark.parametrize("shape", [(3, 4), (0, 3), (1, 5), (2, 3, 4)], ids=str)
def test_n_dimensional_expressions_of_any_layout(shape):
    rng = np.random.default_rng(len(shape))
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    if a.size > 3:
        a.flat[2] = np.nan
    operands = [(a, b), (a, b[:1]), (np.asfortranarray(a), b),
                (a, np.ascontiguousarray(b.T).T), (a, b[..., ::-1])]
    for kernel in (nd_reductions, nd_escapes):
        for x, y in operands:
            if kernel is nd_reductions and x.size == 0:
                continue  # an empty min raises: checked with 1-D arrays
            disp = run_both(kernel, x, y)
            assert remark_keys(disp)[-1:] == ["Fused"], lo.remarks(disp)


def test_fused_elements_keep_the_sign_of_a_nan():
    # Without a fence LLVM folds 's + -x' into 's - x': the NaN's sign differs.
    def negated(a, b):
        return np.sum(-a), (-a * b).max(), np.prod(-(a - b))

    disp = run_both(negated, np.array([1.0, np.nan, 2.0, -np.nan]), np.ones(4))
    assert remark_keys(disp) == ["Fused", "Fused", "Fused"]


def axis_sums(a, b):
    t = a * b + 1.0
    return t.sum(axis=0), np.sum(t, 1), t.sum(), t.max(), np.sum(t, axis=-1)


def column_sums(a, b):
    return (a - b).sum(0)


@pytest.mark.parametrize("shape", [(3, 4), (0, 3), (3, 0), (1, 5), (5, 1)], ids=str)
def test_axis_sums_of_2d_expressions(shape):
    rng = np.random.default_rng(sum(shape))
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    for x, y in [(a, b), (np.asfortranarray(a), b), (a, b[:1])]:
        kernels = (axis_sums, column_sums) if a.size else (column_sums,)
        for kernel in kernels:
            disp = run_both(kernel, x, y)
            assert remark_keys(disp)[-1:] == ["Fused"], lo.remarks(disp)
    for dtype in (np.int8, np.bool_, np.float32, np.complex64):
        run_both(column_sums, a.astype(dtype), b.astype(dtype))


def test_axis_sum_allocates_only_its_result(nrt_stats):
    a, b = data(1000, 2)
    a, b = a.reshape(40, 25), b.reshape(40, 25)
    fused = lo.jit(column_sums)
    stock = lo.jit(options={"fuse_reduce": False})(column_sums)

    def allocations(disp):
        disp(a, b)
        before = nrt_stats()
        disp(a, b)
        return nrt_stats() - before

    # The temporary is gone.  (Before numba 0.68 stock's axis sum makes
    # temporaries of its own, which the fused kernel does not: 0.62 allocates
    # 6 times here, 3 fused.)
    if NUMBA_RELEASE >= (0, 68):
        assert allocations(fused) == allocations(stock) - 1
    else:
        assert allocations(fused) <= allocations(stock) - 1


def nd_gather(x, idx):
    g = x[idx]
    return g.sum(), g.max(), g.argmin(), g.mean()


@pytest.mark.skipif(not MULTIDIM_GATHER, reason="numba < 0.66 does not type x[idx] with an "
                    "N-D idx ('Multi-dimensional indices are not supported')")
def test_gathers_with_n_dimensional_indices():
    x = data(20, 1)[0]
    x[3] = np.nan
    for idx in (np.array([[0, 19, -1], [5, 5, -20]]), np.arange(24).reshape(2, 3, 4) % 20,
                np.array([[4, 4]]).T, np.arange(6).reshape(2, 3)[:, ::-1]):
        disp = run_both(nd_gather, x, idx)
        assert remark_keys(disp)[-1:] == ["Fused"], lo.remarks(disp)
    run_both(nd_gather, x, np.array([[0, 25]]), boundscheck=True)  # IndexError


def row_and_column(a, row, col):
    t = a * row + col
    return t.sum(), t.max(), t.argmin(), t.sum(axis=0), t


def lower_rank_3d(b, r):
    return (b - r).sum(), (b * 2.0 + r).min()


def test_broadcasting_lower_dimensional_operands():
    rng = np.random.default_rng(1)
    a, row, col = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal((3, 1))
    for args in [(a, row, col), (a, row[:1], col), (a, row, col[:1]),
                 (a, rng.standard_normal(5), col),  # ValueError in both
                 (np.asfortranarray(a), row[::-1], col)]:
        disp = run_both(row_and_column, *args)
        assert remark_keys(disp)[-1:] == ["Fused"], lo.remarks(disp)
    b = rng.standard_normal((2, 3, 4))
    for r in (row, a, rng.standard_normal((3, 1)), rng.standard_normal((1, 4)),
              rng.standard_normal(2)):  # the last: ValueError in both
        disp = run_both(lower_rank_3d, b, r)
        assert remark_keys(disp)[-2:] == ["Fused", "Fused"], lo.remarks(disp)
    disp = run_both(lower_rank_3d, b, np.array(2.5))  # a 0-d array operand
    assert remark_keys(disp)[-2:] == ["Fused", "Fused"], lo.remarks(disp)


def test_strided_operands_are_fused():
    def strided(a, b):
        return (a[::3] * b[1::3]).sum(), (a[::-1] + 1.0).max()

    for n in (0, 2, 30):
        disp = run_both(strided, *data(max(n, 1), 2)) if n else None
    assert remark_keys(disp) == ["Fused", "Fused"]


def written_between(a, b):
    t = a * b
    u = t
    u[0] = 100.0
    return t.sum()


def fortran_result(a, b):
    return (a * b).sum()


def reduction_in_other_block(a, b, flag):
    t = a + b
    if flag:
        return t.sum()
    return 0.0


def reassigned_source(a, b, flag):
    t = a * b
    if flag:
        t = a + b
    return t.sum()


def not_an_expression(a):
    return np.cumsum(a).sum()


def zero_d_operand(a, z):
    return (a * z).sum()


def axis_of_a_1d_expression(a, b):
    return (a * b).sum(axis=0)


def axis_of_a_3d_expression(a):
    return (a * 2.0).sum(axis=2)


def datetime_gather(x, idx):
    return x[idx].min()


REFUSED = [
    (written_between, lambda: data(5, 2), "InputMayBeWritten"),
    # Both operands Fortran-ordered: numba's temporary is too, and its
    # reductions would visit it in memory order.
    (fortran_result, lambda: (np.asfortranarray(np.ones((3, 4))),
                              np.asfortranarray(np.ones((3, 4)))), "NotCContiguous"),
    (reduction_in_other_block, lambda: (*data(5, 2), True), "ReductionElsewhere"),
    # After SSA, t is a phi of two definitions.
    (reassigned_source, lambda: (*data(5, 2), True), "SourceReassigned"),
    (not_an_expression, lambda: data(5, 1), "NotExpressionOrGather"),
    (zero_d_operand, lambda: (data(5, 1)[0], np.array(2.0)), "OperandRankMismatch"),
    (axis_of_a_1d_expression, lambda: data(5, 2), "AxisNotSupported"),
    (axis_of_a_3d_expression, lambda: (np.ones((2, 3, 4)),), "AxisNotSupported"),
    (datetime_gather, lambda: (np.arange(5).astype("datetime64[D]"), np.array([3, 1])),
     "UnsupportedElementType"),
]


#: Some refusals' named arguments (the values their message is made of).
REFUSED_ARGUMENTS = {
    "zero_d_operand": {"operand": "z", "operand_ndim": 0, "ndim": 1},
    "axis_of_a_3d_expression": {"reduction": "sum(axis=2)", "ndim": 3},
    "datetime_gather": {"type": "array(datetime64[D], 1d, C)"},
    "fortran_result": {"type": "array(float64, 2d, F)"},
}


@pytest.mark.parametrize("kernel,make_args,key", REFUSED, ids=[r[0].__name__ for r in REFUSED])
def test_refusals_say_why(kernel, make_args, key):
    args = make_args()
    disp = run_both(kernel, *args)
    assert remark_keys(disp) == [key]
    sig = disp.signatures[0]
    (remark,) = lo.remarks(disp, sig)
    expected = REFUSED_ARGUMENTS.get(kernel.__name__, {})
    assert {k: remark.arguments.get(k) for k in expected} == expected, remark.arguments
    on, _ = ir_after(kernel, sig, PASS)
    off, _ = ir_after(kernel, sig, PASS, options={"fuse_reduce": False})
    assert on == off


def many_reductions(a, b):
    acc = 0.0
    acc += np.sum(a * 1.0 + b)
    acc += np.sum(a * 2.0 + b)
    acc += (a * 3.0 - b).max()
    acc += np.sum(a * 4.0 + b)
    acc += (a * 5.0 + b).min()
    acc += np.sum(a * 6.0 + b)
    acc += np.sum(a * 7.0 + b)
    acc += np.sum(a * 8.0 + b)
    acc += np.sum(a * 9.0 + b)
    acc += np.sum(a * 10.0 + b)
    acc += np.sum(a * 11.0 + b)
    acc += np.sum(a * 12.0 + b)
    return acc


def test_every_reduction_of_a_long_block_is_fused():
    """Regression: the reductions' positions were taken before any fusion, so
    after the first few fusions in a block the statements 'between' an
    expression and its reduction were the wrong ones (here: an earlier fused
    kernel's call, refused as InputMayBeWritten)."""
    rng = np.random.default_rng(3)
    for n in (1, 9, 100):
        disp = run_both(many_reductions, rng.random(n), rng.random(n))
    assert remark_keys(disp) == ["Fused"] * 12, lo.remarks(disp)


def reduce_the_operand_after(a):
    t = a * 2.0
    u = t + 1.0
    return u.sum() + t.max()


def reduce_the_operand_before(a):
    t = a * 2.0
    m = t.max()
    u = t - 1.0
    return m + u.sum()


@pytest.mark.parametrize("kernel,keys", [
    # u's kernel, a call that writes nothing, now runs between t's
    # expression and t.max().
    (reduce_the_operand_after, ["Fused", "Fused"]),
    (reduce_the_operand_before, ["Fused", "Fused"]),
])
def test_an_expression_over_another_fused_expression(kernel, keys):
    """The def-use facts are shared by the candidates of a function until a
    fusion touches a candidate's array: here the second candidate reads (or
    is read by) the first, so it is judged on new facts."""
    rng = np.random.default_rng(5)
    for n in (0, 1, 7, 100):
        disp = run_both(kernel, rng.random(n))
    assert remark_keys(disp) == keys, lo.remarks(disp)


# -- the pass's parts: match, plan, compile, rewrite ----------------------------

def axis_sums_and_extremes(m, n):
    t = m * n
    return t.sum(axis=-1), t.max(), t.sum(axis=0)


def test_match_returns_a_frozen_plan_and_changes_nothing(monkeypatch):
    """match() leaves the reductions it is given as they are (the axis was
    once normalised in place) and returns a frozen plan with the axes
    normalised, in program order."""
    import dataclasses

    from numba_loopopt.transforms.fuse_reduce import FusionPlan, driver

    seen = []
    real = driver.match

    def spy(func_ir, du, typemap, source, reductions):
        before = [(label, r, r.axis) for label, r in reductions]
        plan = real(func_ir, du, typemap, source, reductions)
        assert [(label, r, r.axis) for label, r in reductions] == before
        seen.append(plan)
        return plan

    monkeypatch.setattr(driver, "match", spy)
    m, n = np.arange(12.0).reshape(3, 4), np.ones((3, 4))
    disp = run_both(axis_sums_and_extremes, m, n)
    assert remark_keys(disp) == ["Fused"], lo.remarks(disp)
    (remark,) = lo.remarks(disp, disp.signatures[0])
    assert remark.arguments["reductions"] == "sum(axis=1), max, sum(axis=0)"
    (plan,) = seen
    assert isinstance(plan, FusionPlan)
    assert plan.kind == "arrayexpr" and not plan.escapes
    assert [(r.kind, r.axis) for r in plan.reductions] == [("sum", 1), ("max", None),
                                                           ("sum", 0)]
    assert [r.code for r in plan.reductions] == ["sum@1", "max", "sum@0"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.escapes = True
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.reductions[0].axis = 0


def exp_max(a, b):
    return (np.exp(a) * b).max()


def gathered_sum(x, idx):
    return x[idx].sum()


def test_the_kernel_plan_decides_the_generator(monkeypatch):
    """plan_kernel chooses the generator before anything is compiled: the
    blocked kernel only with the vectorised exp, which the option turns off."""
    from numba_loopopt import vecmath
    from numba_loopopt.transforms.fuse_reduce import codegen, driver

    plans, blocked = [], []
    real_plan, real_blocked = driver.plan_kernel, codegen.kernel_source_blocked
    monkeypatch.setattr(driver, "plan_kernel",
                        lambda *a, **k: plans.append(real_plan(*a, **k)) or plans[-1])
    monkeypatch.setattr(codegen, "kernel_source_blocked",
                        lambda *a, **k: blocked.append((a, k)) or real_blocked(*a, **k))
    a, b = np.random.default_rng(4).standard_normal((2, 600))
    run_both(exp_max, a, b, options={"fuse_reduce": {"vector_exp": False}})
    (plan,) = plans
    assert (plan.generator, plan.vector_exp, blocked) == ("kernel_source", False, [])
    assert "vector_exp is off" in plan.note and plan.fence
    plans.clear()
    run_both(exp_max, a, b)
    (plan,) = plans
    if vecmath.vector_exp_available():
        assert (plan.generator, plan.vector_exp, len(blocked)) == (
            "kernel_source_blocked", True, 1)
        args, kwargs = blocked[0]
        assert plan.source == real_blocked(*args, **kwargs)
    else:
        assert (plan.generator, plan.vector_exp, blocked) == ("kernel_source", False, [])
    plans.clear()
    run_both(gathered_sum, np.arange(5.0), np.array([4, 0, 2]),
             options={"fuse_reduce": {"reassociate": True}})
    (plan,) = plans
    assert (plan.generator, plan.vector_exp, plan.note) == ("kernel_source", None, None)
    assert plan.reassociate and not plan.fence
    assert dict(plan.constants)["_OUT"] is np.float64


def test_clear_caches_forgets_the_compiled_kernels():
    from numba_loopopt.transforms import fuse_reduce as fr
    from numba_loopopt.transforms.fuse_reduce import kernels

    def several(a, b):
        t = a * 3.5 - b
        return t.sum(), t.min()

    run_both(several, *data(7, 2))
    assert fr._ELEMENTS and fr._KERNELS and fr._GUARDS
    caches = (kernels._ELEMENTS, kernels._KERNELS, kernels._GUARDS)
    fr.clear_caches()
    assert caches == (fr._ELEMENTS, fr._KERNELS, fr._GUARDS) == ({}, {}, {})
    assert all(a is b for a, b in zip(caches, (fr._ELEMENTS, fr._KERNELS, fr._GUARDS),
                                      strict=True))
    disp = run_both(several, *data(7, 2), fresh=True)
    assert remark_keys(disp) == ["Fused"]
    assert len(fr._ELEMENTS) == len(fr._KERNELS) == len(fr._GUARDS) == 1
