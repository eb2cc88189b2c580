"""The inline pass: what it inlines, what it refuses and why, recursion
bounds, and that other passes see through inlined helpers."""

from __future__ import annotations

import enum
import importlib
import json
import os
import re
import subprocess
import sys
import types as pytypes
import warnings
from types import SimpleNamespace

import _inline_helpers
import numba
import numba.extending
import numpy as np
import pytest
from conftest import difference, remark_keys, run_both
from numba import njit, types
from numba.core.errors import NumbaWarning, TypingError
from numba.core.registry import CPUDispatcher

import numba_loopopt as lo
from numba_loopopt.testing import check, ir_after

SCALE = -1.0  # the callee's module has its own SCALE


@njit
def append_ten(a):
    a.append(10)


def make_list():
    z = []
    append_ten(z)
    return z


def test_type_inference_crosses_the_call():
    # numba's own example: the list's type is only known inside the callee.
    with pytest.raises(TypingError):
        njit(make_list)()
    disp = lo.jit(make_list)
    assert disp() == [10]
    assert remark_keys(disp) == ["Inlined"]


@njit
def helper(x, y):
    return x * 2.0 + y


def calls_helper(a, b):
    return helper(a, b) + helper(b, a)


def test_inlined_call_leaves_no_call_behind():
    dump, disp = ir_after(calls_helper, (types.float64, types.float64), "loopopt_inline")
    assert disp(1.0, 2.0) == njit(calls_helper)(1.0, 2.0)
    check(dump, r"""
        CHECK-NOT: global(helper
        CHECK:     [[X:helper_v\d+_x]] = a
        CHECK:     {{.*}} = [[X]] * {{.*}}
        CHECK:     [[X2:helper_v\d+_x[.\d]*]] = b
        CHECK:     {{.*}} = [[X2]] * {{.*}}
        CHECK:     return
    """)
    (first, second) = lo.remarks(disp, disp.signatures[0])
    assert first.key == "Inlined" and first.arguments == {"cost": first.arguments["cost"],
                                                          "threshold": 60, "depth": 1}


def uses_module_attribute(x):
    return _inline_helpers.scaled(x) + _inline_helpers.with_defaults(x)


def uses_keywords(x):
    return _inline_helpers.with_defaults(x, factor=3.0) + _inline_helpers.with_defaults(
        offset=0.5, x=x)


def test_module_attributes_defaults_and_keywords():
    for kernel in (uses_module_attribute, uses_keywords):
        disp = run_both(kernel, 2.0)
        assert remark_keys(disp) == ["Inlined", "Inlined"]
    # SCALE resolved in the callee's module: 2 * 10 + (2 + 1.5) * 2
    assert lo.jit(uses_module_attribute)(2.0) == 27.0


def make_closure(k):
    @njit
    def add_k(x):
        return x + k

    def caller(x):
        return add_k(x) * 2

    return caller


def test_closure_variables():
    caller = make_closure(5)
    disp = run_both(caller, 1)
    assert disp(1) == 12 and remark_keys(disp) == ["Inlined"]


@njit
def checked_sqrt(x):
    if x < 0:
        raise ValueError("negative")
    return x ** 0.5


def calls_raising(x):
    return checked_sqrt(x) + 1.0


def test_exceptions_raised_in_the_callee_keep_their_type():
    run_both(calls_raising, 4.0)
    run_both(calls_raising, -4.0)
    with pytest.raises(ValueError, match="negative"):
        lo.jit(calls_raising)(-1.0)


def fact(n):
    if n <= 1:
        return 1
    return n * fact(n - 1)


fact = lo.jit(fact)


def is_even(n):
    if n == 0:
        return True
    return is_odd(n - 1)


def is_odd(n):
    if n == 0:
        return False
    return is_even(n - 1)


is_even, is_odd = lo.jit(is_even), lo.jit(is_odd)


def test_factorial_is_inlined_up_to_the_depth_bound():
    assert [fact(n) for n in range(12)] == [1, 1, 2, 6, 24, 120, 720, 5040, 40320,
                                            362880, 3628800, 39916800]
    assert remark_keys(fact) == ["Inlined"] * 3 + ["RecursionLimit"]


def test_mutual_recursion_terminates_and_is_correct():
    assert [is_even(n) for n in range(7)] == [True, False, True, False, True, False, True]
    assert [is_odd(n) for n in range(7)] == [False, True, False, True, False, True, False]
    (sig,) = is_even.signatures
    keys = [r.key for r in lo.remarks(is_even, sig)]
    assert keys == ["Inlined"] * 3 + ["RecursionLimit"]


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


fib = lo.jit(fib)
stock_fib = njit(fib.py_func)


def calls_fib(n):
    return stock_fib(n) + 1


def test_recursion_with_fanout_stays_a_call_at_the_root():
    assert fib(15) == 610
    assert set(remark_keys(fib)) == {"RecursionFanout"}


def test_recursive_callee_is_inlined_up_to_the_bound():
    disp = lo.jit(calls_fib, options={"inline": {"max_depth": 4}})
    assert disp(15) == 611
    keys = remark_keys(disp)
    assert keys.count("Inlined") == 1 + 2 + 4 + 8 and keys.count("RecursionLimit") == 16


@njit(error_model="numpy")
def numpy_errors(a, b):
    return a // b


@njit(boundscheck=True)
def checked_index(a, i):
    return a[i]


@njit(fastmath=True)
def fast_sum(a, b):
    return a + b


def test_callees_with_other_semantics_are_not_inlined():
    def caller(a, b, arr):
        return numpy_errors(a, b) + checked_index(arr, 0) + fast_sum(1.0, 2.0)

    disp = run_both(caller, 7, 0, np.ones(3))
    found = lo.remarks(disp, disp.signatures[0])
    assert [r.key for r in found] == ["FlagsDiffer"] * 3
    assert "error_model=numpy, the caller with error_model=python" in found[0].message
    assert "boundscheck" in found[1].message and "fastmath" in found[2].message


@njit
def counter(n):
    for i in range(n):  # noqa: UP028 - numba does not support 'yield from'
        yield i


@njit("float64(float64)")
def typed_callee(x):
    return x + 1


@njit(locals={"y": types.float32})
def narrowing(x):
    y = x
    return y


def test_callees_numba_cannot_inline_stay_calls():
    def caller(n, x):
        s = 0
        for v in counter(n):
            s += v
        return s + typed_callee(x) + narrowing(x)

    disp = run_both(caller, 4, 0.1)
    messages = [r.message for r in lo.remarks(disp, disp.signatures[0])]
    assert remark_keys(disp) == ["GeneratorCallee", "ExplicitSignatures", "LocalsAnnotation"]
    assert "generator" in messages[0] and "explicit signatures" in messages[1]
    assert "locals=" in messages[2]


@njit
def level3(x):
    return x + 3


@njit
def level2(x):
    return level3(x) * 2


@njit
def level1(x):
    return level2(x) - 1


def nested(x):
    return level1(x)


def test_budgets_depth_and_size():
    disp = run_both(nested, 1, options={"inline": {"max_depth": 2}})
    assert remark_keys(disp) == ["Inlined", "Inlined", "DepthLimit"]
    disp = run_both(nested, 1, options={"inline": {"max_callee_stmts": 3}})
    assert remark_keys(disp) == ["TooCostly"]
    disp = run_both(calls_helper, 1.0, 2.0, options={"inline": {"max_growth": 10}})
    assert remark_keys(disp) == ["Inlined", "GrowthBudget"]


def test_user_cost_model_decides_with_the_depth():
    seen = []

    def only_top_level(expr, caller_ir, callee_ir, depth):
        seen.append((type(caller_ir).__name__, type(callee_ir).__name__, depth))
        return depth == 0

    disp = run_both(nested, 1, options={"inline": {"cost_model": only_top_level}})
    assert remark_keys(disp) == ["Inlined", "CostModelDeclined"]
    assert seen == [("FunctionIR", "FunctionIR", 0), ("FunctionIR", "FunctionIR", 1)]


def big_always(x):
    t = x
    for k in range(3):
        t = t * 1.5 + k
        t = t - 0.25 * k
    return t


big_always = njit(inline="always")(big_always)


def recursive_always(n):
    if n <= 0:
        return 0
    return 1 + recursive_always(n - 1)


# Stock numba never finishes compiling this (its inliner recurses forever);
# through numba_loopopt the depth bound stops it.
recursive_always = lo.jit(inline="always")(recursive_always)


def test_callees_own_inline_always_is_honoured_with_a_bound():
    def caller(x, n):
        return big_always(x) + recursive_always(n)

    # Stock numba cannot compile recursive_always, so compare with Python.
    disp = lo.jit(caller, options={"inline": {"max_callee_stmts": 1}})
    assert disp(2.0, 5) == caller(2.0, 5)
    keys = remark_keys(disp)
    assert keys[0] == "Inlined" and keys.count("RecursionLimit") == 1


def test_callees_own_cost_model_is_honoured():
    calls = []

    def never(expr, caller_ir, callee_ir):
        calls.append(expr.op)
        return False

    tiny = njit(inline=never)(lambda x: x + 1)

    def caller(x):
        return tiny(x)

    disp = lo.jit(caller)
    assert disp(1) == 2
    assert calls == ["call"] and remark_keys(disp) == ["CostModelDeclined"]


def helper_with_scan_loop(buf, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[i + 1] = buf[i] + 1.0
        i += 1
    return i


scan_helper = njit(helper_with_scan_loop)


def calls_scan(buf, n):
    return scan_helper(buf, n) * 2


def test_later_passes_see_through_inlined_helpers():
    for n in (0, 3, 10):
        disp = run_both(calls_scan, np.zeros(12), n)
    assert remark_keys(disp, "passed") == ["Inlined", "ScalarReplaced", "Rewritten",
                                           "Forwarded"]


def test_with_the_pass_off_numba_inlines_inline_always_as_usual():
    def caller(x):
        return big_always(x)

    dump, disp = ir_after(caller, (types.float64,), "inline_inlinables",
                          options={"inline": False})
    assert disp(2.0) == njit(caller)(2.0)
    check(dump, "CHECK-NOT: call $4load_global.0(")
    check(dump, "CHECK: big_always_{{.*}} = const(float, 1.5)")
    assert lo.remarks(disp, disp.signatures[0]) == []


def test_numba_registers_no_duplicate_pipeline_entries():
    # The inline pass takes InlineInlinables' place instead of adding to it.
    dump, _ = ir_after(calls_helper, (types.float64, types.float64), "loopopt_inline")
    with pytest.raises(ValueError, match="no pass named 'inline_inlinables'"):
        ir_after(calls_helper, (types.float64, types.float64), "inline_inlinables")
    # (under each supported numba release: the registration is the same)
    from numba_loopopt._compat import NUMBA_RELEASE, SUPPORTED_NUMBA
    assert SUPPORTED_NUMBA[0] <= NUMBA_RELEASE < SUPPORTED_NUMBA[1]


class _NeverCopied(np.ndarray):
    def __deepcopy__(self, memo):
        raise AssertionError("inlining deep-copied a large constant")


TABLE = np.arange(200_000, dtype=np.float64).view(_NeverCopied)


@njit
def lookup(i):
    return TABLE[i] * 2.0


def three_lookups(i):
    return lookup(i) + lookup(i + 1) + lookup(i + 2)


def test_inlining_never_copies_a_large_constant():
    # The callee's IR is copied per call site; its constants are shared.
    disp = run_both(three_lookups, 3)
    assert remark_keys(disp) == ["Inlined"] * 3


def test_objmode_block_does_not_break_inlining():
    # numba's with-lifting calls the lifted block through a name with no
    # definition; the inliner must pass over it, not raise (and roll back).
    def with_objmode(x):
        with numba.objmode(r="float64[:]"):
            r = 2 * x
        return r

    disp = lo.jit(options={"strict": True})(with_objmode)
    np.testing.assert_array_equal(disp(np.ones(2)), np.full(2, 2.0))
    assert not [r for r in lo.remarks(disp, disp.signatures[0]) if r.key == "InternalError"]


@njit
def _scan_helper(buf, n):
    cond = np.zeros((), dtype=np.bool_)
    i = 0
    while i < n and not cond.item():
        buf[i] = i
        i += 1
    return i


def calls_scan_helper(buf, n):
    return _scan_helper(buf, n)


def test_remarks_about_inlined_code_use_the_callees_names():
    disp = run_both(calls_scan_helper, np.zeros(6), 4)
    inlined, replaced, rewritten = lo.remarks(disp, disp.signatures[0])
    assert inlined.key == "Inlined" and rewritten.key == "Rewritten"
    assert replaced.key == "ScalarReplaced" and replaced.arguments["arrays"] == ["cond"]
    assert "(i < n, step 1)" in rewritten.message and "'cond'" in rewritten.message
    assert dict(rewritten.args)["counter"] == "i"
    assert "_v" not in rewritten.message


def test_demangle_leaves_other_names_alone():
    from numba_loopopt.remarks import demangle

    names = {"helper$2", "outer.<locals>.inner$5"}
    assert demangle("helper_v2_i < helper_v2_n", names) == "i < n"
    assert demangle("'outer__locals__inner_v5_helper_v2_x'", names) == "'x'"
    assert demangle("my_helper_v2_i, helper_v3_i", names) == "my_helper_v2_i, helper_v3_i"


# --- What a compiled callee froze (globals, cells, attributes, arrays) ------
#
# Stock numba calls a callee's compiled code, which keeps the values of the
# moment it was compiled; the inlined body is rebuilt from the source.  Each
# test builds two worlds from the same Python functions, each with its own
# dispatchers: callers with numba.njit in one, numba_loopopt.jit in the other
# (callees numba.njit in both), and runs the same steps in both: calls are
# compared (values bit for bit, exception types and messages), mutations of
# globals apply to both.

G_FROZEN = 1
TABLE_FROZEN = np.arange(4.0)
CFG_FROZEN = pytypes.ModuleType("loopopt_test_cfg")
CFG_FROZEN.K = 1.5


class Colour(enum.IntEnum):
    RED = 1
    BLUE = 2


@njit
def _double(x):
    return x * 2


@njit
def _negate(x):
    return -x


OP_FROZEN = _double
COLOUR_FROZEN = Colour.RED


def _adds_global(x):
    return x + G_FROZEN


def _reads_table(i):
    return TABLE_FROZEN[i] * 2.0


def _reads_module_attribute(x):
    return x * CFG_FROZEN.K


def _calls_global_dispatcher(x):
    return OP_FROZEN(x) + 1


def _reads_enum(x):
    return x + COLOUR_FROZEN.value


def _with_default(x, y=2):
    return x + y


def _divides(a, b):
    return a // b


def _normalise(message: str) -> str:
    # Two worlds hold two dispatchers of one function: their reprs differ by
    # address only.
    return " ".join(re.sub(r"0x[0-9a-f]+", "0x?", message).split())


def _outcome(fn, args):
    try:
        return ("ok", fn(*args), "")
    except Exception as exc:  # noqa: BLE001 - comparing exceptions
        return ("raise", type(exc), _normalise(str(exc)))


class Worlds:
    """A stock world and an optimised one, built by ``make(jit)``."""

    def __init__(self, make, **jit_kwargs):
        self.stock = make(lambda f: njit(**jit_kwargs)(f))
        self.opt = make(lambda f: lo.jit(**jit_kwargs)(f))

    def call(self, name, *args):
        theirs, mine = (_outcome(getattr(w, name), args) for w in (self.stock, self.opt))
        why = difference((theirs[0], theirs[1], args), (mine[0], mine[1], args))
        assert why is None, f"{name}{args}: {why}"
        assert theirs[2] == mine[2], f"{name}{args}: messages differ:\n{theirs[2]}\n{mine[2]}"
        return mine[1]

    def both(self, action):
        action(self.stock)
        action(self.opt)

    def remarks(self, name):
        disp = getattr(self.opt, name)
        return [r for sig in disp.signatures for r in lo.remarks(disp, sig)
                if r.pass_name == "inline"]


def one_callee(py_func, **callee_kwargs):
    """A world maker: ``callee`` (numba.njit) and ``caller`` passing its
    one or two arguments on."""
    def make(jit):
        callee = njit(**callee_kwargs)(py_func)

        def caller1(x):
            return callee(x)

        def caller2(x, y):
            return callee(x, y)

        two = py_func.__code__.co_argcount - len(py_func.__defaults__ or ()) == 2
        return SimpleNamespace(callee=callee, caller=jit(caller2 if two else caller1))
    return make


def _cell_world(jit):
    c = 1

    @njit
    def adds_cell(x):
        return x + c

    def set_cell(value):
        nonlocal c
        c = value

    def caller(x):
        return adds_cell(x)

    return SimpleNamespace(callee=adds_cell, caller=jit(caller), set_cell=set_cell)


def _set_table(world):
    TABLE_FROZEN[1] = 10.0


FROZEN_CASES = {
    # name: (world maker, arguments, mutation(monkeypatch) -> per-world action, what)
    "global": (one_callee(_adds_global), (1,),
               lambda mp: mp.setitem(globals(), "G_FROZEN", 100), "global 'G_FROZEN'"),
    "closure cell": (_cell_world, (1,), lambda mp: (lambda w: w.set_cell(50)),
                     "closure variable 'c'"),
    "module attribute": (one_callee(_reads_module_attribute), (2.0,),
                         lambda mp: mp.setattr(CFG_FROZEN, "K", -4.0),
                         "attribute 'CFG_FROZEN.K'"),
    "array contents": (one_callee(_reads_table), (1,),
                       lambda mp: _set_table(None), "global 'TABLE_FROZEN'"),
    "global dispatcher": (one_callee(_calls_global_dispatcher), (3,),
                          lambda mp: mp.setitem(globals(), "OP_FROZEN", _negate),
                          "global 'OP_FROZEN'"),
    "enum member": (one_callee(_reads_enum), (3,),
                    lambda mp: mp.setitem(globals(), "COLOUR_FROZEN", Colour.BLUE),
                    "global 'COLOUR_FROZEN'"),
}


@pytest.fixture
def restore_table():
    saved = TABLE_FROZEN.copy()
    yield
    TABLE_FROZEN[:] = saved


@pytest.mark.parametrize("case", FROZEN_CASES)
def test_a_value_changed_since_the_callee_compiled_keeps_the_call(case, monkeypatch,
                                                                   restore_table):
    make, args, mutate, what = FROZEN_CASES[case]
    worlds = Worlds(make)
    before = worlds.call("callee", *args)  # compiled with the old value
    action = mutate(monkeypatch)
    if callable(action):
        worlds.both(action)
    assert worlds.call("caller", *args) == before  # numba calls the old code
    (remark,) = worlds.remarks("caller")
    assert remark.key == "FrozenValueChanged", remark
    assert what in remark.message and "has code compiled for" in remark.message


@pytest.mark.parametrize("case", FROZEN_CASES)
def test_a_callee_compiled_with_the_same_values_is_inlined(case, monkeypatch, restore_table):
    make, args, mutate, _ = FROZEN_CASES[case]
    worlds = Worlds(make)
    worlds.call("callee", *args)
    worlds.call("caller", *args)
    assert {r.key for r in worlds.remarks("caller")} == {"Inlined"}


def test_a_value_changed_back_is_the_same_value(monkeypatch):
    worlds = Worlds(one_callee(_adds_global))
    worlds.call("callee", 1)
    monkeypatch.setitem(globals(), "G_FROZEN", 7)
    monkeypatch.setitem(globals(), "G_FROZEN", 1)
    worlds.call("caller", 1)
    assert [r.key for r in worlds.remarks("caller")] == ["Inlined"]


def _two_callers(jit):
    callee = njit(_adds_global)

    def first(x):
        return callee(x)

    def second(x):
        return callee(x) * 2

    return SimpleNamespace(callee=callee, first=jit(first), second=jit(second))


def test_a_callee_not_compiled_yet_sees_the_values_of_the_callers_compilation(monkeypatch):
    # Stock numba compiles the callee while typing the caller, with the
    # values of that moment, and keeps that code: for later direct calls and
    # for later callers.  Inlined, the caller sees the same values, and the
    # callee is compiled for the call's types as stock numba would.
    worlds = Worlds(_two_callers)
    monkeypatch.setitem(globals(), "G_FROZEN", 100)
    assert worlds.call("first", 1) == 101
    assert [r.key for r in worlds.remarks("first")] == ["Inlined"]
    assert worlds.opt.callee.signatures == worlds.stock.callee.signatures
    monkeypatch.setitem(globals(), "G_FROZEN", 7)
    assert worlds.call("callee", 1) == 101
    assert worlds.call("second", 1) == 202
    (remark,) = worlds.remarks("second")
    assert remark.key == "FrozenValueChanged" and "was 100; it is 7 now" in remark.message


def _defaults_world(jit):
    callee = njit(_with_default)

    def caller(x):
        return callee(x)

    return SimpleNamespace(callee=callee, caller=jit(caller))


def test_a_default_changed_after_decoration_keeps_the_call(monkeypatch):
    # numba takes the defaults when it makes the dispatcher.
    worlds = Worlds(_defaults_world)
    monkeypatch.setattr(_with_default, "__defaults__", (40,))
    assert worlds.call("caller", 1) == 3
    (remark,) = worlds.remarks("caller")
    assert remark.key == "FrozenValueChanged" and "the default of 'y'" in remark.message


def test_the_callees_compiled_signatures_are_the_ones_stock_compiles():
    def make(jit):
        callee = njit(_with_default)

        def caller(a, arr):
            s = callee(1) + callee(a, y=3) + callee(arr[0], 2) + callee(np.float32(a))
            t = a
            t = t * 2
            for i in range(2):
                s += callee(i)
            return s + callee(t) + callee((a, i)[0])

        return SimpleNamespace(callee=callee, caller=jit(caller))

    worlds = Worlds(make)
    worlds.call("caller", 1.5, np.ones(2))
    assert set(worlds.remarks("caller")[i].key for i in range(7)) == {"Inlined"}
    assert sorted(map(str, worlds.opt.callee.signatures)) == sorted(
        map(str, worlds.stock.callee.signatures))


def _inherits(flags):
    def make(jit):
        callee = njit(_divides)

        def wrapper(a, b):
            return callee(a, b)

        def caller(a, b):
            return callee(a, b)

        return SimpleNamespace(callee=callee, wrapper=njit(**flags)(wrapper),
                               caller=jit(caller))
    return make


@pytest.mark.parametrize("flags,shown", [({"error_model": "numpy"}, "error_model=numpy"),
                                         ({"fastmath": True}, "fastmath=True")])
def test_flags_a_compiled_signature_inherited_keep_the_call(flags, shown):
    # A callee without its own error_model/fastmath inherits the caller's
    # when numba compiles it while typing that caller.
    worlds = Worlds(_inherits(flags))
    worlds.call("wrapper", 7, 0)  # error_model=numpy: 0, no ZeroDivisionError
    worlds.call("caller", 7, 0)   # numba calls that code
    worlds.call("caller", 7, 2)
    (remark,) = worlds.remarks("caller")
    assert remark.key == "FlagsDiffer" and shown in remark.message, remark


def test_a_callee_compiled_for_the_caller_inherits_its_flags():
    worlds = Worlds(one_callee(_divides), error_model="numpy")
    assert worlds.call("caller", 7, 0) == 0
    assert [r.key for r in worlds.remarks("caller")] == ["Inlined"]
    assert worlds.call("callee", 7, 0) == 0  # compiled with the caller's error model


def test_a_signature_numba_loopopt_did_not_see_compiled_keeps_the_call():
    from numba_loopopt.transforms import inline

    worlds = Worlds(one_callee(_adds_global))
    worlds.call("callee", 1)
    # As if compiled before numba_loopopt was imported (or loaded from a cache).
    for world in (worlds.stock, worlds.opt):
        del world.callee.__dict__[inline.RECORDS]
    worlds.call("caller", 1)
    (remark,) = worlds.remarks("caller")
    assert remark.key == "UnknownProvenance" and "(int64,)" in remark.message


# --- Which callees are inlined at all: plain nopython dispatchers ----------


@pytest.fixture
def inline_remarks(monkeypatch):
    """The inline pass's remarks, also of compilations that fail later."""
    remarks_module = importlib.import_module("numba_loopopt.remarks")
    found = []
    commit = remarks_module.RemarkEmitter.commit

    def capture(self, metadata):
        found.extend(r for r in self.pending if r.pass_name == "inline")
        commit(self, metadata)

    monkeypatch.setattr(remarks_module.RemarkEmitter, "commit", capture)
    return found


def _big_power(x):
    return 3 ** 70 + x


@pytest.mark.parametrize("decorate", [
    lambda f: numba.jit(forceobj=True)(f),
    lambda f: numba.jit(forceobj=True, looplift=False)(f),
    lambda f: lo.jit(forceobj=True, looplift=False)(f),
], ids=["numba-forceobj", "numba-forceobj-nolooplift", "loopopt-forceobj"])
def test_object_mode_callees_are_not_inlined(decorate, inline_remarks):
    def make(jit):
        callee = decorate(_big_power)

        def caller(x):
            return callee(x)

        return SimpleNamespace(caller=jit(caller))

    worlds = Worlds(make)
    # Stock numba cannot type a call of an object-mode function: the same
    # TypingError, with the same message.
    assert worlds.call("caller", 1) is TypingError
    assert [r.key for r in inline_remarks] == ["ObjectModeCallee"]
    assert "'_big_power' compiles in object mode (forceobj=True)" in inline_remarks[0].message


@pytest.mark.parametrize("decorate", [
    lambda f: numba.jit(looplift=True)(f),
    lambda f: numba.jit(nogil=True, forceinline=True)(f),
    lambda f: numba.jit(error_model="python", no_cfunc_wrapper=True)(f),
    lambda f: numba.jit(debug=True)(f),
], ids=["looplift", "nogil-forceinline", "explicit-defaults", "debug"])
def test_nopython_callees_with_harmless_options_are_inlined(decorate):
    def make(jit):
        callee = decorate(_with_default)

        def caller(x):
            return callee(x)

        return SimpleNamespace(caller=jit(caller))

    worlds = Worlds(make)
    worlds.call("caller", 4)
    assert [r.key for r in worlds.remarks("caller")] == ["Inlined"]


@pytest.mark.parametrize("options,shown", [
    ({"no_rewrites": True}, "no_rewrites=True"),
    ({"boundscheck": True}, "boundscheck=True"),
    ({"parallel": True}, "parallel=True"),
    ({"_nrt": False}, "_nrt=False"),
])
def test_callees_with_other_flags_are_not_inlined(options, shown):
    def make(jit):
        callee = njit(**options)(_with_default)

        def caller(x):
            return callee(x)

        return SimpleNamespace(caller=jit(caller))

    worlds = Worlds(make)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaWarning)  # parallel=True, nothing parallel
        worlds.call("caller", 4)
    (remark,) = worlds.remarks("caller")
    assert remark.key == "FlagsDiffer" and shown in remark.message, remark


def test_target_options_outside_the_whitelist_are_refused(monkeypatch):
    from numba_loopopt.transforms import inline

    monkeypatch.setattr(inline, "KNOWN_TARGET_OPTIONS", inline.KNOWN_TARGET_OPTIONS - {"nogil"})
    worlds = Worlds(lambda jit: SimpleNamespace(caller=jit(_calls_nogil)))
    worlds.call("caller", 2)
    (remark,) = worlds.remarks("caller")
    assert remark.key == "UnknownTargetOption" and "nogil=True" in remark.message


@njit(nogil=True)
def _nogil(x):
    return x + 1


def _calls_nogil(x):
    return _nogil(x)


class _OwnDispatcher(CPUDispatcher):
    """A dispatcher subclass the inline pass knows nothing about."""


def test_dispatchers_the_pass_does_not_know_are_refused():
    def make(jit):
        callee = _OwnDispatcher(_with_default, targetoptions={"nopython": True,
                                                              "boundscheck": None})

        def caller(x):
            return callee(x)

        return SimpleNamespace(caller=jit(caller))

    worlds = Worlds(make)
    worlds.call("caller", 4)
    (remark,) = worlds.remarks("caller")
    assert remark.key == "UnknownDispatcher" and "_OwnDispatcher" in remark.message


class _OwnLoopOptDispatcher(lo.dispatcher.LoopOptDispatcher):
    """A subclass of the package's own dispatcher: unknown too."""


class _OwnPipeline(lo.LoopOptPipeline):
    """A user's pipeline class, which may change what the callee computes."""


def _plain_callee(x):
    return x + 1


@pytest.mark.parametrize("make_callee, key, shown", [
    (lambda: _OwnLoopOptDispatcher(_plain_callee, targetoptions={"nopython": True},
                                   pipeline_class=lo.LoopOptPipeline),
     "UnknownDispatcher", "_OwnLoopOptDispatcher"),
    # Its per-options variant is no loopopt pipeline either.
    (lambda: njit(pipeline_class=_OwnPipeline.with_options({"inline": False}))(
        _plain_callee), "UnknownPipeline", "_OwnPipeline"),
    (lambda: njit(pipeline_class=_OwnPipeline)(_plain_callee), "UnknownPipeline",
     "_OwnPipeline"),
])
def test_subclasses_of_the_packages_own_classes_are_refused(make_callee, key, shown):
    callee = make_callee()

    def caller(x):
        return callee(x)

    disp = lo.jit(caller)
    assert disp(4) == 5
    (remark,) = lo.remarks(disp, disp.signatures[0])
    assert remark.key == key and shown in remark.message, remark


def test_the_packages_own_dispatcher_and_pipelines_are_known():
    callee = lo.jit(_plain_callee, options=lo.Options(inline={"max_depth": 2}))

    def caller(x):
        return callee(x)

    disp = lo.jit(caller, options=lo.Options(inline={"max_depth": 2}))
    assert disp(4) == 5
    assert remark_keys(disp) == ["Inlined"]


@numba.extending.register_jitable
def _jitable(x):
    return x * 3


def test_overload_like_callees_stay_numbas_business():
    worlds = Worlds(lambda jit: SimpleNamespace(caller=jit(lambda x: _jitable(x) + 1)))
    worlds.call("caller", 2)
    assert worlds.remarks("caller") == []


def _reduces(a):
    return np.sum(a * 1.1)


def test_loopopt_options_that_change_results_must_be_the_callees():
    def make(jit):
        callee = lo.jit(options={"fuse_reduce": {"reassociate": True}})(_reduces)

        def caller(a):
            return callee(a)

        return SimpleNamespace(caller=jit(caller))

    worlds = Worlds(make)
    worlds.call("caller", np.linspace(0, 1, 1001))
    (remark,) = worlds.remarks("caller")
    assert remark.key == "FlagsDiffer" and "fuse_reduce.reassociate=True" in remark.message


BIG_TABLE = np.arange(5000.0)


def _reads_big_table(i):
    return BIG_TABLE[i] + 1.0


def test_arrays_by_address_only_for_callees_that_say_so():
    opts = {"global_arrays_by_address": 1024}

    def make(jit):
        reads = njit(_reads_big_table)
        plain = njit(_with_default)

        def caller(i):
            return reads(i) + plain(i)

        return SimpleNamespace(caller=jit(caller))

    stock = make(njit)
    opt = make(lambda f: lo.jit(options=opts)(f))
    assert stock.caller(3) == opt.caller(3)
    keys = [(r.key, r.message) for sig in opt.caller.signatures
            for r in lo.remarks(opt.caller, sig) if r.pass_name == "inline"]
    assert [k for k, _ in keys] == ["FlagsDiffer", "Inlined"]
    assert "global 'BIG_TABLE'" in keys[0][1] and "40000 bytes" in keys[0][1]


CACHED_CALLEE = '''
import os
import numba

G = int(os.environ["LOOPOPT_TEST_G"])


@numba.njit(cache=True)
def adds_g(x):
    return x + G
'''

CACHED_CALLER = '''
import json, sys
import numba
import numba_loopopt as lo
import cached_callee


def caller(x):
    return cached_callee.adds_g(x)


if sys.argv[1] == "stock":
    print(json.dumps({"value": numba.njit(caller)(1)}))
else:
    disp = lo.jit(caller)
    value = disp(1)
    print(json.dumps({"value": value, "keys": [r.key for r in lo.remarks(disp, disp.signatures[0])
                                               if r.pass_name == "inline"]}))
'''


def test_a_callee_cached_by_another_process_keeps_the_call(tmp_path):
    # numba's cache keys a function on its bytecode, not on the globals it
    # froze: a process whose globals differ loads the other's code.
    (tmp_path / "cached_callee.py").write_text(CACHED_CALLEE)
    (tmp_path / "cached_caller.py").write_text(CACHED_CALLER)

    def run(kind, g):
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_LOOPOPT_")}
        path = os.pathsep.join(p for p in (str(tmp_path), env.get("PYTHONPATH")) if p)
        env.update(NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=path,
                   LOOPOPT_TEST_G=str(g), PYTHONDONTWRITEBYTECODE="1")
        done = subprocess.run([sys.executable, str(tmp_path / "cached_caller.py"), kind],
                              env=env, capture_output=True, text=True, timeout=600,
                              check=False)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    first = run("opt", 1)  # inlined; adds_g compiled for the call and cached, as stock does
    assert first == {"value": 2, "keys": ["Inlined"]}
    assert run("stock", 50) == {"value": 2}  # loads the first process's code
    assert run("opt", 50) == {"value": 2, "keys": ["UnknownProvenance"]}


BEFORE_IMPORT = '''
import json
import numba

G = 1


@numba.njit
def adds_g(x):
    return x + G


adds_g(1)  # compiled before numba_loopopt is imported: nothing recorded it
G = 100

import numba_loopopt as lo  # noqa: E402


def caller(x):
    return adds_g(x)


disp = lo.jit(caller)
print(json.dumps({"value": disp(1), "stock": numba.njit(caller)(1),
                  "remarks": [[r.key, r.message] for r in lo.remarks(disp, disp.signatures[0])
                              if r.pass_name == "inline"]}))
'''


def test_a_callee_compiled_before_numba_loopopt_was_imported_keeps_the_call(tmp_path):
    script = tmp_path / "before_import.py"
    script.write_text(BEFORE_IMPORT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_LOOPOPT_")}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["value"] == out["stock"] == 2
    ((key, message),) = out["remarks"]
    assert key == "UnknownProvenance"
    assert "'adds_g' has code compiled for (int64,) that numba_loopopt did not see " \
           "compiled" in message


# -- One key per reason, with the remark's arguments -----------------------------


@njit
def _star_callee(*args):
    return args[0] + 1


_plain_jitted = njit(_plain_callee)


def _passes_star_args(x):
    t = (x,)
    return _plain_jitted(*t) + _star_callee(x)


def test_star_args_at_the_call_and_in_the_callee_have_their_own_keys():
    disp = run_both(_passes_star_args, 3)
    found = lo.remarks(disp, disp.signatures[0])
    assert [r.key for r in found] == ["VarArgsCall", "VarArgsCallee"], found
    assert [r.arguments["callee"] for r in found] == ["_plain_callee", "_star_callee"]
    assert "passes *args" in found[0].message and "takes *args" in found[1].message


def _catches(x):
    try:
        return _plain_jitted(x)
    except Exception:  # noqa: BLE001 - the pass refuses the whole function
        return -1


def test_a_try_block_is_the_same_key_as_in_fuse_loops():
    disp = run_both(_catches, 3)
    (remark,) = lo.remarks(disp, disp.signatures[0])
    assert remark.key == "TryExcept" and "try/except" in remark.message


def test_missed_remarks_carry_their_arguments():
    def caller(n, x):
        s = 0
        for v in counter(n):
            s += v
        return s + typed_callee(x) + narrowing(x)

    disp = lo.jit(caller)
    disp(4, 0.1)
    by_key = {r.key: r.arguments for r in lo.remarks(disp, disp.signatures[0])}
    assert by_key["GeneratorCallee"] == {"callee": "counter"}
    assert by_key["ExplicitSignatures"] == {"callee": "typed_callee", "signatures": 1}
    assert by_key["LocalsAnnotation"] == {"callee": "narrowing", "locals": "y"}
