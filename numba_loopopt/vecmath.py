"""A vectorisable ``exp`` for float64, bit-identical to the libm ``exp`` numba calls.

numba 0.68 has no vector math library (no SVML): ``np.exp`` of a float64 is a
scalar call to the C library's ``exp`` per element, and LLVM cannot vectorise a
loop around it.  This module holds a port of that very ``exp`` written in numba
with plain float and integer operations and ``llvm.fma.f64``, so LLVM
vectorises it, plus what the fuse-reduce pass needs to use it: a stack buffer
for blocks of elements (no NRT allocation) and exact block reductions.

The algorithm is ARM's optimized-routines ``exp`` (``math/exp.c``,
``math/exp_data.c``; Copyright (c) 2018-2023, Arm Limited; licence
``MIT OR Apache-2.0 WITH LLVM-exception``), which glibc (2.28 and later) uses
as its double-precision ``exp``.  It is ported from that source: the same
constants, the same 2^(k/128) table (generated below from its definition, not
copied), the same operations in the same order; the multiply-adds are fused
exactly where glibc's x86-64 ``__exp_fma`` variant (the one the ``exp`` ifunc
picks on FMA-capable CPUs) fuses them.  Only the main path is ported,
``2^-54 <= |x| < 512``; callers compute every other input (tiny, large, NaN,
inf) with the real ``np.exp``.

Whether the port is bit-identical to the ``exp`` this process calls (another
libm, a CPU without FMA, another architecture, all differ) is not assumed:
:func:`vector_exp_available` checks it once per process on more than a million
inputs, and the pass uses the port only if not a single bit differs.
"""

from __future__ import annotations

import struct
import time
from decimal import Context, Decimal

import numba
import numpy as np
from llvmlite import ir as llvmir
from numba import types
from numba.core import cgutils
from numba.core.compiler_lock import global_compiler_lock
from numba.extending import intrinsic, overload

# -- The algorithm's constants -------------------------------------------------

#: log2 of the table size, N = 2**TABLE_BITS (``EXP_TABLE_BITS``).
TABLE_BITS = 7
N = 1 << TABLE_BITS
INVLN2N = float.fromhex("0x1.71547652b82fep0") * N  # N/ln2
NEGLN2HIN = float.fromhex("-0x1.62e42fefa0000p-8")  # -ln2/N, high part
NEGLN2LON = float.fromhex("-0x1.cf79abc9e3b3ap-47")  # -ln2/N, low part
SHIFT = float.fromhex("0x1.8p52")  # round to an integer by adding and subtracting
# exp(r) - 1 - r ~= r^2 (C2 + r C3 + r^2 C4 + r^3 C5) on |r| <= ln2/256.
C2 = float.fromhex("0x1.ffffffffffdbdp-2")
C3 = float.fromhex("0x1.555555555543cp-3")
C4 = float.fromhex("0x1.55555cf172b91p-5")
C5 = float.fromhex("0x1.1111167a4d017p-7")
#: The main path: 2^-54 <= |x| < 512, by the top 12 bits (sign cleared).
TOP_LO = 0x3C9  # top12(0x1p-54)
TOP_HI = 0x408  # top12(512.0)


def _bits(x: float) -> int:
    return struct.unpack("<q", struct.pack("<d", x))[0]


def exp_table() -> np.ndarray:
    """``exp_data.c``'s table: 2^(k/N) ~= H[k] * (1 + T[k]) with H[k] the
    double nearest 2^(k/N) and T[k] the double nearest (2^(k/N) - H[k]) /
    H[k]; ``tab[2k]`` holds the bits of T[k], ``tab[2k+1]`` those of H[k]
    minus ``(k << 52) / N`` (the caller adds the exponent back).  Computed in
    50-digit decimal arithmetic (about 2 ms)."""
    ctx = Context(prec=50)
    ln2 = ctx.ln(Decimal(2))
    tab = []
    for k in range(N):
        exact = ctx.exp(ctx.multiply(ln2, ctx.divide(Decimal(k), Decimal(N))))
        high = float(exact)  # correctly rounded
        tail = float(ctx.divide(ctx.subtract(exact, Decimal(high)), Decimal(high)))
        tab += [_bits(tail), _bits(high) - ((k << 52) // N)]
    return np.array(tab, dtype=np.int64)


TAB = exp_table()

# -- Intrinsics ----------------------------------------------------------------


@intrinsic
def f2i(typingctx, x):
    """The bits of a float64, as an int64."""
    if x != types.float64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], llvmir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def i2f(typingctx, x):
    """The float64 with the bits of an int64."""
    if x != types.int64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], llvmir.DoubleType())
    return types.float64(types.int64), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (``llvm.fma.f64``)."""
    if not all(t == types.float64 for t in (a, b, c)):
        return None

    def codegen(context, builder, sig, args):
        d = llvmir.DoubleType()
        fn = cgutils.get_or_insert_function(
            builder.module, llvmir.FunctionType(d, [d, d, d]), "llvm.fma.f64")
        return builder.call(fn, args)
    return types.float64(types.float64, types.float64, types.float64), codegen


@intrinsic
def stack_buffer(typingctx, size):
    """A pointer to ``size`` (a literal integer) float64s in the stack frame of
    the function using it (an ``alloca`` in its entry block: no NRT
    allocation, no free).  Wrap it with ``numba.carray(ptr, size)``; the
    array must not outlive the function."""
    if not isinstance(size, types.IntegerLiteral) or size.literal_value <= 0:
        return None
    count = size.literal_value

    def codegen(context, builder, sig, args):
        ptr = cgutils.alloca_once(builder, llvmir.DoubleType(), size=count,
                                  name="loopopt_block")
        ptr.align = 64
        return ptr
    return types.CPointer(types.float64)(size), codegen


# -- The port --------------------------------------------------------------------


@numba.njit
def exp_in_range(x):
    """Whether ``x`` is on the port's main path, 2^-54 <= |x| < 512 (not NaN)."""
    top = (f2i(x) >> 52) & 0x7FF
    return (top >= TOP_LO) & (top < TOP_HI)


@numba.njit
def exp_core(x):
    """exp(x) for ``exp_in_range(x)``, as optimized-routines computes it (with
    the fused multiply-adds of glibc's ``__exp_fma``); garbage elsewhere."""
    # exp(x) = 2^(k/N) * exp(r), x = k ln2/N + r, |r| <= ln2/2N.
    z = fma(x, INVLN2N, SHIFT)
    ki = f2i(z)
    kd = z - SHIFT
    r = fma(kd, NEGLN2HIN, x)
    r = fma(kd, NEGLN2LON, r)
    # 2^(k/N) ~= scale * (1 + tail).
    idx = 2 * (ki & (N - 1))
    tail = i2f(TAB[idx])
    sbits = TAB[idx + 1] + (ki << (52 - TABLE_BITS))
    # exp(x) ~= scale + scale * (tail + r + r^2 (C2 + r C3) + r^4 (C4 + r C5)).
    r2 = r * r
    tmp = fma(fma(r, C3, C2), r2, tail + r)
    tmp = fma(r2 * r2, fma(r, C5, C4), tmp)
    scale = i2f(sbits)
    return fma(scale, tmp, scale)


def vexp(x):
    """Stand-in for ``np.exp(x)`` in generated code: the port (exact on the
    main path only; see :func:`vexp_ok`) for a float64, ``np.exp`` else."""
    return np.exp(x)


def vexp_ok(x):
    """Whether :func:`vexp` of ``x`` is ``np.exp(x)``: on the main path for a
    float64, always for other types."""
    return True


@overload(vexp)
def _vexp(x):
    if x == types.float64:
        return lambda x: exp_core(x)
    return lambda x: np.exp(x)


@overload(vexp_ok)
def _vexp_ok(x):
    if x == types.float64:
        return lambda x: exp_in_range(x)
    return lambda x: True


# -- Exact block reductions -------------------------------------------------------


def _make_block_extreme(less: bool):
    """``block(buf, cnt, m, d, nan) -> (m, d, nan)``: continue the scan of
    numba's float ``max`` (``less``: ``min``) over ``buf[:cnt]``, with
    running extreme ``m``, ``d`` whether a NaN was seen and ``nan`` the first
    NaN.  Eight independent running extremes (no loop-carried chain through
    one register), then exact fix-ups: a zero extreme (+0 and -0 tie, the
    first one in order wins) rescans the block in order, and so does the first
    block with a NaN for its first NaN.  Any other equal values have equal
    bits, so which one wins does not matter."""
    init = np.inf if less else -np.inf

    if less:
        @numba.njit
        def better(v, m):
            return v < m
    else:
        @numba.njit
        def better(v, m):
            return v > m

    @numba.njit
    def block(buf, cnt, m, d, nan):
        l0 = l1 = l2 = l3 = l4 = l5 = l6 = l7 = init
        anynan = False
        j = 0
        while j + 8 <= cnt:
            v0 = buf[j]
            v1 = buf[j + 1]
            v2 = buf[j + 2]
            v3 = buf[j + 3]
            v4 = buf[j + 4]
            v5 = buf[j + 5]
            v6 = buf[j + 6]
            v7 = buf[j + 7]
            l0 = v0 if better(v0, l0) else l0
            l1 = v1 if better(v1, l1) else l1
            l2 = v2 if better(v2, l2) else l2
            l3 = v3 if better(v3, l3) else l3
            l4 = v4 if better(v4, l4) else l4
            l5 = v5 if better(v5, l5) else l5
            l6 = v6 if better(v6, l6) else l6
            l7 = v7 if better(v7, l7) else l7
            anynan |= ((v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3)
                       | (v4 != v4) | (v5 != v5) | (v6 != v6) | (v7 != v7))
            j += 8
        while j < cnt:
            v = buf[j]
            l0 = v if better(v, l0) else l0
            anynan |= v != v
            j += 1
        # No lane holds a NaN: their extreme is order-independent but for the
        # sign of a zero.
        b = l0
        for lane in (l1, l2, l3, l4, l5, l6, l7):
            b = lane if better(lane, b) else b
        if b == 0.0:
            for k in range(cnt):
                v = buf[k]
                if better(v, m):
                    m = v
        elif better(b, m):
            m = b
        if anynan and not d:
            for k in range(cnt):
                v = buf[k]
                if v != v:
                    nan = v
                    d = True
                    break
        return m, d, nan

    return block


block_max = _make_block_extreme(less=False)
block_min = _make_block_extreme(less=True)

#: Elements per block of the fused kernels (a 4 KB stack buffer).
BLOCK = 512

# -- The self-test -------------------------------------------------------------------

#: Inputs the self-test always checks: signed zeros, subnormals, infinities,
#: NaNs with payloads, the main path's bounds and their neighbours, overflow
#: and underflow thresholds.
SPECIALS = np.array(
    [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072009e-308, 2.2250738585072014e-308,
     -2.2250738585072014e-308, 1e-300, -1e-300, np.inf, -np.inf, np.nan, -np.nan,
     2.0**-54, -(2.0**-54), np.nextafter(2.0**-54, 0), np.nextafter(-(2.0**-54), 0),
     2.0**-55, 2.0**-53, 511.99999999999994, -511.99999999999994, 512.0, -512.0,
     709.782712893384, 709.7827128933841, 709.78, 709.79, -708.3964185322641,
     -708.39641853226408, -744.4400719213812, -745.1332191019411, -745.1332191019412,
     -745.2, 1100.0, -1100.0, 1.0, -1.0, 0.5, -0.5, 0.34657359027997264,
     0.0027076061740622863, -0.0027076061740622863, 1e-10, -1e-10, 100.0, -100.0],
    dtype=np.float64)
#: Bounds the self-test also probes a few thousand ulps either side of.
EDGES = np.array([2.0**-54, 512.0, 709.782712893384, -708.3964185322641,
                  -745.1332191019411, 0.0027076061740622863, 0.34657359027997264,
                  1.0, 0.0], dtype=np.float64)
#: Size of the self-test's sample (besides the specials).
SAMPLE = 1 << 20


@numba.njit
def _splitmix(state):
    """splitmix64 step on int64s (wrapping): ``(new state, 64 random bits)``."""
    state = state + -7046029254386353131  # 0x9E3779B97F4A7C15
    z = state
    z = (z ^ ((z >> 30) & 0x3FFFFFFFF)) * -4658895280553007687  # 0xBF58476D1CE4E5B9
    z = (z ^ ((z >> 27) & 0x1FFFFFFFFF)) * -7723592293110705685  # 0x94D049BB133111EB
    return state, z ^ ((z >> 31) & 0x1FFFFFFFF)


@numba.njit
def _sample(k, bits, specials, edges):
    """Input ``k`` of the self-test from 64 random ``bits``: in turn a random
    bit pattern (any exponent: NaNs, infinities, subnormals), a random number
    on the main path, a uniform number in [-746, 711), a neighbour of a
    bound, a special."""
    kind = k % 5
    mant = bits & 0xFFFFFFFFFFFFF
    sign = (bits >> 63) << 63
    if kind == 0:
        return i2f(bits)
    if kind == 1:
        top = TOP_LO + ((bits >> 52) & 0x7FF) % (TOP_HI - TOP_LO)
        return i2f(sign | (top << 52) | mant)
    if kind == 2:
        return -746.0 + 1457.0 * (mant * (1.0 / 4503599627370496.0))
    if kind == 3:
        edge = edges[((bits >> 52) & 0x7FF) % edges.shape[0]]
        return i2f(f2i(edge) + ((bits >> 40) & 0x1FFF) - 0x1000)
    return specials[((bits >> 52) & 0x7FF) % specials.shape[0]]


@numba.njit(cache=True)
def _self_test(n, seed, specials, edges):
    """How many of ``n`` sample inputs (and the specials) the vectorised port
    (the main path through :func:`exp_core` in a vectorisable loop, like the
    fused kernels; ``np.exp`` elsewhere) computes with other bits than numba's
    ``np.exp``.  A mismatch is counted in ``[0]``, a wrong main-path
    classification in ``[1]``."""
    xs = numba.carray(stack_buffer(BLOCK), BLOCK)
    ys = numba.carray(stack_buffer(BLOCK), BLOCK)
    state = seed
    differ = 0
    total = n + specials.shape[0]
    for start in range(0, total, BLOCK):
        cnt = min(BLOCK, total - start)
        for j in range(cnt):
            k = start + j
            if k < specials.shape[0]:
                xs[j] = specials[k]
            else:
                state, bits = _splitmix(state)
                xs[j] = _sample(k, bits, specials, edges)
        for j in range(cnt):
            ys[j] = exp_core(xs[j])
        for j in range(cnt):
            x = xs[j]
            y = ys[j] if exp_in_range(x) else np.exp(x)
            if f2i(y) != f2i(np.exp(x)):
                differ += 1
    return differ


_VERDICT: dict = {}


def self_test(n: int = SAMPLE, seed: int = 20240607) -> tuple[bool, str]:
    """Run the self-test now: ``(passed, what was found)``."""
    start = time.perf_counter()
    try:
        differ = _self_test(n, seed, SPECIALS, EDGES)
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return False, f"the self-test failed to run ({type(exc).__name__}: {exc})"
    ms = (time.perf_counter() - start) * 1e3
    inputs = n + SPECIALS.shape[0]
    if differ:
        return False, (f"the vectorised exp differs from np.exp on {differ} of {inputs} "
                       "self-test inputs (another libm or a CPU without FMA?)")
    _VERDICT["ms"] = ms
    return True, f"bit-identical to np.exp on {inputs} self-test inputs"


def vector_exp_available() -> bool:
    """Whether the vectorised exp is bit-identical to the ``np.exp`` numba
    calls in this process: the self-test runs once, at first use, and its
    verdict is kept (:func:`vector_exp_status` says why)."""
    return vector_exp_status()[0]


def vector_exp_status() -> tuple[bool, str]:
    """The cached ``(verdict, reason)`` of :func:`self_test`."""
    # numba's compiler lock, not a lock of our own: the pass asks from inside a
    # compilation (which holds it), and the self-test compiles.
    with global_compiler_lock:
        if "verdict" not in _VERDICT:
            _VERDICT["verdict"] = self_test()
        return _VERDICT["verdict"]
