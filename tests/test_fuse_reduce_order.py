"""fuse-reduce keeps stock numba's writes, exceptions, side effects and NaN
bits: the classes of difference an outside differential review found (issue
13), each with more cases than the one reported."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import remark_keys, run_both
from numba import njit, typed, types

import numba_loopopt as lo


def fresh_both(kernel, make_args, **njit_kwargs):
    """Like conftest's run_both, for arguments that cannot be deep-copied
    (typed lists and dicts): each dispatcher gets ``make_args()``; results,
    exceptions (type and message) and the arguments afterwards must agree."""
    stock, fused = njit(**njit_kwargs)(kernel), lo.jit(**njit_kwargs)(kernel)
    seen = []
    for disp in (stock, fused):
        args = make_args()
        try:
            out = ("ok", repr(disp(*args)))
        except Exception as exc:  # noqa: BLE001 - comparing exceptions
            out = ("raise", type(exc),
                   str(exc).replace("LoopOptDispatcher(", "CPUDispatcher("))
        seen.append((out, [dict(x) if isinstance(x, typed.Dict) else
                           list(x) if isinstance(x, typed.List) else repr(x)
                           for x in args]))
    assert seen[0] == seen[1]
    return fused


def bits(*values):
    return np.array(values, dtype=np.uint64).view(np.float64)


SNAN = 0x7FF0000000001111
NEG_SNAN = 0xFFF0000000002222


# -- 1. In-place operators, views and out= through aliases are writes --------


def inplace_through_alias(a):
    t = a * 2.0
    u = t
    u += 1.0
    return t.sum()


def inplace_through_transpose(a):
    t = a * 2.0
    u = t.T
    u += 1.0
    return t.sum()


def store_through_view(a):
    t = a * 2.0
    u = t[1:]
    u[0] = 100.0
    return t.sum(), t.max()


def ufunc_out_positional(a):
    t = a * 2.0
    np.add(t, 1.0, t)
    return t.sum()


def ufunc_out_keyword(a):
    t = a * 2.0
    np.negative(t, out=t)
    return t.min()


def writing_method(a):
    t = a - 1.0
    t.fill(3.0)
    return t.sum()


def sorting_method(a):
    t = 1.0 - a
    s = t.sum()
    t.sort()
    return s, t.argmax()


@njit
def _bump(x):
    x[0] += 10.0


def writing_call(a):
    t = a * 3.0
    _bump(t)
    return t.mean()


WRITES = [inplace_through_alias, inplace_through_transpose, store_through_view,
          ufunc_out_positional, ufunc_out_keyword, writing_method, sorting_method,
          writing_call]


@pytest.mark.parametrize("kernel", WRITES, ids=lambda k: k.__name__)
def test_a_write_to_an_escaping_array_between_is_seen(kernel):
    for n in (1, 5, 17):
        disp = run_both(kernel, np.arange(float(n)))
    keys = remark_keys(disp, "missed")
    # Either refused with the reason, or not a candidate at all (a writing
    # call inlined) -- never fused across the write.
    assert "Fused" not in remark_keys(disp, "passed") or not keys, lo.remarks(disp)


def test_the_refusal_names_the_write():
    disp = run_both(inplace_through_alias, np.arange(5.0))
    (remark,) = [r for rs in lo.remarks(disp).values() for r in rs]
    assert remark.key == "InputMayBeWritten"
    assert "in-place" in remark.message and "'t'" in remark.message, remark.message


def operand_written_after(a, b):
    t = a * b
    a[0] = 100.0
    b += 1.0
    return t.sum(), t.max()


def test_writes_to_an_operand_after_the_expression_do_not_matter():
    # The kernel reads the operands where stock numba computes the
    # expression, so later writes to them cannot change the reductions.
    for n in (1, 4):
        disp = run_both(operand_written_after, np.arange(float(n)), np.ones(n))
    assert remark_keys(disp) == ["Fused"], lo.remarks(disp)


def harmless_between(a, lst, d):
    t = a * 2.0
    s = t.sum()
    lst.append(s)
    d[1] = s
    print("between", s)
    return s + t.max() + len(lst)


def test_an_escaping_array_fuses_across_statements_proven_harmless():
    def escaping(a):
        t = a * 2.0
        u = t
        k = len(u) + 1
        m = np.sqrt(a)
        return t.sum() + t.max() + k + m.sum(), u

    for n in (1, 6):
        disp = run_both(escaping, np.arange(float(n)))
    assert remark_keys(disp).count("Fused") >= 1, lo.remarks(disp)


# -- 2. Exceptions and side effects keep stock's order ------------------------


def divide_between(a, q):
    t = a * 2.0
    x = 1 // q
    return t.max() + x


def index_between(a, b, k):
    t = a * 2.0
    y = b[k]
    return t.argmin() + y


def dict_between(a, d, k):
    t = a + 1.0
    y = d[k]
    return t.min() + y


def two_failing(a, b):
    t = a * 2.0
    s = b - 1.0
    return t.max() + s.argmin()


def two_failing_other_order(a, b):
    t = a * 2.0
    s = b - 1.0
    return s.argmin() + t.max()


def append_then_fail(a, lst):
    t = a * 2.0
    lst.append(1.0)
    return t.argmax()


def test_a_statement_between_raises_before_the_empty_reduction():
    empty = np.zeros(0)
    disp = run_both(divide_between, empty, 0)
    run_both(divide_between, empty, 3)
    run_both(divide_between, np.ones(3), 0)
    assert remark_keys(disp) == ["Fused"], lo.remarks(disp)
    for k in (0, 7):
        run_both(index_between, empty, np.ones(3), k, boundscheck=True)
        run_both(index_between, np.ones(2), np.ones(3), k, boundscheck=True)


def _dict(**items):
    d = typed.Dict.empty(types.int64, types.float64)
    for k, v in items.items():
        d[int(k[1:])] = v
    return d


def test_a_typed_dict_key_error_between():
    for a in (np.zeros(0), np.ones(3)):
        for k in (1, 5):
            disp = fresh_both(dict_between, lambda a=a, k=k: (a, _dict(k1=2.0), k))
    assert "Fused" in remark_keys(disp)


def test_which_of_two_failing_reductions_raises_first():
    empty = np.zeros(0)
    for kernel in (two_failing, two_failing_other_order):
        for a, b in ((empty, empty), (empty, np.ones(2)), (np.ones(2), empty)):
            disp = run_both(kernel, a, b)
        assert remark_keys(disp) == ["Fused", "Fused"], lo.remarks(disp)


def test_side_effects_before_the_exception_happen(capfd):
    for a in (np.zeros(0), np.ones(2)):
        fresh_both(append_then_fail, lambda a=a: (a, typed.List([0.0])))
    stock = njit(harmless_between)
    fused = lo.jit(harmless_between)
    outputs = []
    for disp in (stock, fused):
        mine_lst, mine_d = typed.List([0.0]), typed.Dict.empty(types.int64, types.float64)
        with pytest.raises(ValueError, match="zero-size array to reduction operation maximum"):
            disp(np.zeros(0), mine_lst, mine_d)
        outputs.append((capfd.readouterr().out, list(mine_lst), dict(mine_d)))
    assert outputs[0] == outputs[1] and "between" in outputs[0][0]
    assert "Fused" in remark_keys(fused)
    fresh_both(harmless_between, lambda: (np.arange(4.0), typed.List([0.0]), _dict()))


def broadcast_error(a, b, c):
    return (a * b + c).max()


def test_the_broadcast_error_names_the_same_argument():
    one, three, four = np.ones(1), np.ones(3), np.ones(4)
    for args in ((three, four, three), (three, three, four), (four, one, three),
                 (np.zeros(0), three, one)):
        disp = run_both(broadcast_error, *args)
    for args in ((np.ones((3, 5)), np.ones((3, 4)), np.ones((4, 5))),
                 (np.ones((3, 5)), np.ones((3, 1)), np.ones((4, 1))),
                 (np.ones((2, 3)), np.ones((4, 3)), np.ones(2))):
        run_both(broadcast_error, *args)
    assert "Fused" in remark_keys(disp)


# -- 3. Too big, out of memory: as stock's allocation ----------------------


def sum_product(a, b):
    return np.sum(a * b)


def max_product(a, b):
    t = a * b
    return t.max(), t.argmin()


def escaping_product(a, b):
    t = a * b
    return t.sum(), t


@pytest.mark.parametrize("kernel", [sum_product, max_product, escaping_product],
                         ids=lambda k: k.__name__)
def test_a_result_too_big_raises_as_stock(kernel):
    # 2**62 elements: numba's allocation raises ValueError('array is too
    # big...'); a fused loop over them would run for ever.
    # (fresh_both: a deep copy of these views would allocate them.)
    a = np.broadcast_to(np.ones((1, 1)), (2**31, 1))
    b = np.broadcast_to(np.ones((1, 1)), (1, 2**31))
    disp = fresh_both(kernel, lambda: (a, b))
    assert remark_keys(disp) == ["Fused"], lo.remarks(disp)
    # A zero dimension after an overflow: numba still raises (its check
    # multiplies in order); without the overflow, an empty result.
    for big in (2**32, 2**31):
        y = np.broadcast_to(np.ones((1, 1, 1)), (big, 1, 0))
        z = np.broadcast_to(np.ones((1, 1, 1)), (1, big, 0))
        fresh_both(kernel, lambda y=y, z=z: (y, z))


def test_a_result_the_allocator_cannot_give_raises_memory_error():
    # 2**40 float64s (8 TiB) are representable: stock's allocation fails.
    a = np.broadcast_to(np.ones(1), (2**40,))
    disp = fresh_both(sum_product, lambda: (a, a))
    assert remark_keys(disp) == ["Fused"]


# -- 4. Signalling NaNs are quieted as in stock -------------------------------


def negate_reduce(a):
    t = -a
    return t.prod(), t.max(), t.sum(), t.mean(), t.min(), t.argmax()


def scale_prod(a):
    return (a * 1.0).prod()


def plain_sum(a):
    return (a + 0.0).sum()


@pytest.mark.parametrize("kernel", [negate_reduce, scale_prod, plain_sum],
                         ids=lambda k: k.__name__)
def test_signalling_nans_keep_stocks_bits(kernel):
    for a in (bits(SNAN), bits(NEG_SNAN), bits(SNAN, 0x3FF0000000000000),
              bits(0x3FF0000000000000, NEG_SNAN, SNAN),
              np.concatenate([np.ones(20), bits(SNAN)])):
        disp = run_both(kernel, a)
    assert remark_keys(disp) == ["Fused"], lo.remarks(disp)
