"""PyTensor's NUMBA mode compiled through the loopopt passes.

Real PyTensor graphs (a counting scan, an AR(1) log-likelihood scan and
``sum(a*b + c)``) compiled stock and with :func:`numba_loopopt.pytensor.enable`:
same results bit for bit, every numba function PyTensor created goes through
``LoopOptPipeline``, :func:`~numba_loopopt.pytensor.disable` restores stock
numba, and PyTensor's disk cache never hands stock code to an enabled compile
or the reverse.  PyTensor compiles are slow (seconds), so each graph is
compiled once per mode, in a module-scoped fixture; tests that use PyTensor's
disk cache point it at a temporary directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

pytensor = pytest.importorskip("pytensor")

import pytensor.tensor as pt  # noqa: E402
from numba.core.errors import NumbaPerformanceWarning  # noqa: E402
from numba.core.registry import CPUDispatcher  # noqa: E402

import numba_loopopt.pytensor as lpt  # noqa: E402
from numba_loopopt import LoopOptPipeline, Options, RemarkKind  # noqa: E402
from numba_loopopt.dispatcher import LoopOptDispatcher  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:PyTensor could not link to a BLAS:UserWarning",
    "ignore:Scan return signature will change:DeprecationWarning",
)

SCAN_STEPS = 100_000
AR1_STEPS = 100_000


# ---------------------------------------------------------------------------
# Graphs: (inputs, output) of each, and arguments to call them with.
# ---------------------------------------------------------------------------


def counting_scan():
    """x[t + 1] = x[t] + 1 for n steps; the last state."""
    x0, n = pt.dscalar("x0"), pt.iscalar("n")
    xs = pytensor.scan(lambda x: x + 1, outputs_info=[x0], n_steps=n,
                       return_updates=False)
    return [x0, n], xs[-1]


def ar1_loglik():
    """sum over t of the normal log-density of y[t] - rho * y[t - 1], summed
    by the scan itself (a running total, so PyTensor keeps the loop)."""
    y, rho, sigma = pt.dvector("y"), pt.dscalar("rho"), pt.dscalar("sigma")

    def step(y_t, y_tm1, total, rho, sigma):
        r = y_t - rho * y_tm1
        return total + (-0.5 * np.log(2 * np.pi) - pt.log(sigma) - 0.5 * (r / sigma) ** 2)

    totals = pytensor.scan(step, sequences=[{"input": y, "taps": [0, -1]}],
                           outputs_info=[pt.constant(0.0, dtype="float64")],
                           non_sequences=[rho, sigma], return_updates=False)
    return [y, rho, sigma], totals[-1]


def sum_axpy():
    a, b, c = pt.dvectors("a", "b", "c")
    return [a, b, c], pt.sum(a * b + c)


def ar1_args(n, seed=0):
    rng = np.random.default_rng(seed)
    y = np.zeros(n)
    for t in range(1, n):
        y[t] = 0.6 * y[t - 1] + rng.normal()
    return y, 0.6, 1.3


def sum_args(n, seed=1):
    rng = np.random.default_rng(seed)
    return tuple(rng.normal(size=n) for _ in range(3))


GRAPHS = {
    "scan": (counting_scan, (0.0, SCAN_STEPS)),
    "ar1": (ar1_loglik, ar1_args(AR1_STEPS)),
    "sum": (sum_axpy, sum_args(100_001)),
}


def numba_function(graph):
    inputs, output = graph()
    return pytensor.function(inputs, output, mode="NUMBA")


def same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def numba_cache_dir(tmp_path_factory):
    """A fresh PyTensor numba cache for this module (the user's is left alone)."""
    import pytensor.link.numba.cache as pt_cache

    path = tmp_path_factory.mktemp("pytensor_numba_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pt_cache, "NUMBA_CACHE_PATH", path)
        yield path


@pytest.fixture(autouse=True)
def _disabled_between_tests():
    lpt.disable()
    yield
    lpt.disable()


@pytest.fixture(scope="module")
def compiled():
    """Each graph compiled and run once stock and once enabled:
    ``{name: {"stock": (fn, result), "opt": (fn, result)}}``.  Without
    PyTensor's disk cache, so numba compiles (and records remarks for) every
    function, even two Ops with the same cache key."""
    out = {}
    with pytensor.config.change_flags(numba__cache=False):
        for name, (graph, args) in GRAPHS.items():
            lpt.disable()
            stock = numba_function(graph)
            with lpt.enabled():
                opt = numba_function(graph)
            # Called after the block: the pipeline was chosen at creation.
            out[name] = {"stock": (stock, stock(*args)), "opt": (opt, opt(*args))}
    lpt.disable()
    return out


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(GRAPHS))
def test_enabled_results_equal_stock_numba_mode_bit_for_bit(compiled, name):
    (_, stock), (_, opt) = compiled[name]["stock"], compiled[name]["opt"]
    assert same_bits(stock, opt), (stock, opt)


def test_counting_scan_counts(compiled):
    _, opt = compiled["scan"]["opt"]
    assert float(opt) == float(SCAN_STEPS)


def test_ar1_loglik_matches_python_mode(compiled):
    fn, _ = compiled["ar1"]["opt"]
    inputs, output = ar1_loglik()
    py_mode = pytensor.compile.mode.Mode(linker="py", optimizer="fast_run")
    reference = pytensor.function(inputs, output, mode=py_mode)
    args = ar1_args(500, seed=3)
    y, rho, sigma = args
    r = y[1:] - rho * y[:-1]
    by_hand = np.sum(-0.5 * np.log(2 * np.pi) - np.log(sigma) - 0.5 * (r / sigma) ** 2)
    # PyTensor compiles with fastmath (contraction, reassociation): close, not equal.
    np.testing.assert_allclose(fn(*args), reference(*args), rtol=1e-12)
    np.testing.assert_allclose(fn(*args), by_hand, rtol=1e-12)


def test_sum_matches_numpy(compiled):
    fn, _ = compiled["sum"]["opt"]
    a, b, c = sum_args(1001, seed=5)
    np.testing.assert_allclose(fn(a, b, c), np.sum(a * b + c), rtol=1e-12)


# ---------------------------------------------------------------------------
# The pipeline really was used, and only while enabled
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(GRAPHS))
def test_every_numba_function_compiles_through_loopopt(compiled, name):
    fn, _ = compiled[name]["opt"]
    found = lpt.dispatchers(fn)
    assert len(found) >= 3, [d.py_func.__name__ for d in found]
    for disp in found:
        assert isinstance(disp, LoopOptDispatcher), disp.py_func.__name__
        assert issubclass(disp._compiler.pipeline_class, LoopOptPipeline)


@pytest.mark.parametrize("name", list(GRAPHS))
def test_stock_compile_uses_no_loopopt_pipeline(compiled, name):
    fn, _ = compiled[name]["stock"]
    for disp in lpt.dispatchers(fn):
        assert type(disp) is CPUDispatcher, disp.py_func.__name__
        assert not issubclass(disp._compiler.pipeline_class, LoopOptPipeline)
    assert lpt.remarks(fn) == []


@pytest.mark.parametrize("name", ["scan", "ar1"])
def test_passes_examined_the_scan_loop(compiled, name):
    fn, _ = compiled[name]["opt"]
    by_function = {}
    for function, remark in lpt.remarks(fn):
        by_function.setdefault(function, []).append(remark)
    # The scan loop (PyTensor's `while i < n_steps and not cond.item()`) was
    # looked at by while-to-range, and its inner graph function inlined.
    scan_remarks = by_function["scan"]
    assert any(r.pass_name == "while-to-range" for r in scan_remarks), scan_remarks
    assert any(r.pass_name == "inline" and r.kind is RemarkKind.PASSED
               and "numba_scan" in r.message for r in scan_remarks), scan_remarks


@pytest.mark.xfail(int(pytensor.__version__.split(".")[0]) >= 3, strict=True,
                   reason="PyTensor 3.0 compiles every Sum (CAReduce) as its own loop "
                   "(create_multiaxis_reducer), never array.sum(): fuse-reduce finds no "
                   "reduction to examine")
def test_sum_graph_reduction_was_examined_by_fuse_reduce(compiled):
    fn, _ = compiled["sum"]["opt"]
    assert any(r.pass_name == "fuse-reduce" for _, r in lpt.remarks(fn))


def test_options_reach_the_dispatchers():
    options = {"inline": False, "while_to_range": {"version_modulo": False}}
    lpt.enable(options)
    inputs, output = sum_axpy()
    # pytensor.function creates the dispatchers; numba compiles on the first call.
    fn = pytensor.function(inputs, output, mode="NUMBA")
    for disp in lpt.dispatchers(fn):
        assert disp.loopopt_options.inline.enabled is False
        assert disp.loopopt_options.while_to_range.version_modulo is False


@pytest.mark.parametrize("name", list(GRAPHS))
def test_no_pass_failed_internally(compiled, name):
    fn, _ = compiled[name]["opt"]
    assert [str(r) for _, r in lpt.remarks(fn) if r.key == "InternalError"] == []


class Twice(pytensor.graph.op.Op):
    """An Op with no numba implementation: PyTensor runs its ``perform`` in
    numba's object mode (``with numba.objmode(...)`` in generated code)."""

    __props__ = ()

    def make_node(self, x):
        x = pt.as_tensor_variable(x)
        return pytensor.graph.basic.Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = 2 * inputs[0]


@pytest.fixture(scope="module")
def object_mode_fallback():
    x = pt.dvector("x")
    with pytensor.config.change_flags(numba__cache=False), lpt.enabled(), \
            pytest.warns(UserWarning, match="object mode"):
        fn = pytensor.function([x], Twice()(x).sum(), mode="NUMBA")
    return fn, fn(np.arange(4.0))


def test_object_mode_fallback_op_runs_enabled(object_mode_fallback):
    fn, result = object_mode_fallback
    assert float(result) == 12.0
    assert all(isinstance(d, LoopOptDispatcher) for d in lpt.dispatchers(fn))


def test_object_mode_fallback_compiles_without_internal_errors(object_mode_fallback):
    fn, _ = object_mode_fallback
    assert [str(r) for _, r in lpt.remarks(fn) if r.key == "InternalError"] == []


# ---------------------------------------------------------------------------
# enable / disable / enabled
# ---------------------------------------------------------------------------


def test_disable_restores_numba_njit():
    import numba
    from pytensor.link.numba.dispatch import basic

    lpt.enable()
    assert lpt.is_enabled() and basic._njit is not numba.njit
    lpt.disable()
    assert not lpt.is_enabled() and basic._njit is numba.njit
    inputs, output = sum_axpy()
    fn = pytensor.function(inputs, output, mode="NUMBA")
    assert all(type(d) is CPUDispatcher for d in lpt.dispatchers(fn))


def test_enabled_context_restores_the_previous_state():
    outer = Options(warn_missed=True)
    with lpt.enabled():
        assert lpt.active_options() == Options()
    assert not lpt.is_enabled()
    lpt.enable(outer)
    with lpt.enabled({"inline": False}):
        assert lpt.active_options().inline.enabled is False
    assert lpt.active_options() == outer


def test_enable_refuses_an_unknown_hook_point(monkeypatch):
    from pytensor.link.numba.dispatch import basic

    monkeypatch.setattr(basic, "_njit", lambda *a, **k: None)
    with pytest.raises(RuntimeError, match="cannot hook PyTensor"):
        lpt.enable()
    assert not lpt.is_enabled()


def test_unknown_numba_keyword_falls_back_to_stock_numba():
    from numba.core.compiler import Compiler
    from pytensor.link.numba.dispatch import basic

    def add(x, y):
        return x + y

    with lpt.enabled(), pytest.warns(RuntimeWarning, match="pipeline_class"):
        disp = basic.numba_njit(add, final_function=True, pipeline_class=Compiler)
    assert type(disp) is CPUDispatcher and disp(1, 2) == 3


# ---------------------------------------------------------------------------
# PyTensor's disk cache keeps stock and optimised code apart
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("first", ["opt", "stock"])
def test_disk_cache_never_mixes_stock_and_optimised_code(tmp_path, monkeypatch, first):
    import pytensor.link.numba.cache as pt_cache

    monkeypatch.setattr(pt_cache, "NUMBA_CACHE_PATH", tmp_path)
    assert pytensor.config.numba__cache
    args = sum_args(11)

    def compile_and_run(mode):
        if mode == "opt":
            with lpt.enabled():
                fn = numba_function(sum_axpy)
        else:
            assert not lpt.is_enabled()
            fn = numba_function(sum_axpy)
        result = fn(*args)
        entry = lpt.dispatchers(fn)[0]
        [sig] = entry.signatures
        kinds = {type(d) for d in lpt.dispatchers(fn)}
        hit = entry._cache_hits[sig] == 1
        assert hit or entry._cache_misses[sig] == 1
        return result, hit, kinds, fn

    second = "stock" if first == "opt" else "opt"
    results = {}
    for mode, expect_hit in [(first, False), (second, False), (first, True), (second, True)]:
        result, hit, kinds, fn = compile_and_run(mode)
        assert hit is expect_hit, (mode, "hit" if hit else "miss")
        assert kinds == ({LoopOptDispatcher} if mode == "opt" else {CPUDispatcher})
        results.setdefault(mode, []).append(result)
        if mode == "opt" and hit:
            # Loaded from the cache with its remarks: code the passes compiled.
            assert lpt.remarks(fn)
    assert all(same_bits(r, results["stock"][0]) for rs in results.values() for r in rs)


# ---------------------------------------------------------------------------
# Import behaviour: without PyTensor, and NUMBA_LOOPOPT_PYTENSOR=1
# ---------------------------------------------------------------------------


def run_python(code, **env):
    full_env = {k: v for k, v in os.environ.items() if k != lpt.ENV_VAR}
    full_env.update(env)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, env=full_env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_package_imports_without_pytensor():
    out = run_python("""
        import sys
        sys.modules["pytensor"] = None  # importing it raises ImportError
        import numba_loopopt, numba_loopopt.pytensor as lpt
        try:
            lpt.enable()
        except ImportError as exc:
            print("ImportError", "pytensor" in str(exc), lpt.is_enabled())
    """)
    assert out == ["ImportError", "True", "False"]


def test_environment_variable_enables_on_import_without_importing_pytensor():
    out = run_python("""
        import sys
        import numba, numba_loopopt.pytensor as lpt
        print(lpt.is_enabled(), "pytensor" in sys.modules)
        import pytensor
        from pytensor.link.numba.dispatch import basic
        # Patched as soon as PyTensor's backend loaded: its module-level helpers too.
        from pytensor.link.numba.dispatch.linalg import utils
        print(basic._njit is lpt._loopopt_njit, type(utils._trans_char_to_int).__name__)
    """, **{lpt.ENV_VAR: "1"})
    assert out == ["True", "False", "True", "LoopOptDispatcher"]


def test_enable_before_pytensor_is_imported_patches_import_time_helpers():
    out = run_python("""
        import numba, numba_loopopt.pytensor as lpt
        print(lpt.is_enabled())  # NUMBA_LOOPOPT_PYTENSOR=0
        lpt.enable()
        from pytensor.link.numba.dispatch import basic
        from pytensor.link.numba.dispatch.linalg import utils
        print(type(utils._trans_char_to_int).__name__)
        lpt.disable()
        print(basic._njit is numba.njit)
    """, **{lpt.ENV_VAR: "0"})
    assert out == ["False", "LoopOptDispatcher", "True"]


def test_no_performance_warnings_by_default(numba_cache_dir):
    inputs, output = sum_axpy()
    a, b, c = sum_args(5)
    with lpt.enabled(), warnings.catch_warnings():
        warnings.simplefilter("error", NumbaPerformanceWarning)
        warnings.simplefilter("error", RuntimeWarning)
        fn = pytensor.function(inputs, output, mode="NUMBA")
        np.testing.assert_allclose(fn(a, b, c), np.sum(a * b + c), rtol=1e-12)
