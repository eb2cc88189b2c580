"""LoopOptPipeline, numba_loopopt.jit, options, and the two safety nets."""

from __future__ import annotations

import re
import warnings

import numba
import numpy as np
import pytest
from conftest import remark_keys, run_both
from numba import njit, types
from numba.core import ir
from numba.core.errors import NumbaPerformanceWarning, TypingError

import numba_loopopt as lo
from numba_loopopt import LoopOptPipeline, OptionError, Options
from numba_loopopt._compat import check_numba_version
from numba_loopopt.passbase import LoopOptPass, derived_names
from numba_loopopt.transforms.while_to_range import WhileToRange


def scan(buf, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[i + 1] = buf[i] + 1.0
        i += 1
    return i


def rewritten(disp):
    return "Rewritten" in remark_keys(disp, "passed")


def test_pipeline_class_works_with_plain_njit():
    disp = njit(pipeline_class=LoopOptPipeline)(scan)
    buf = np.zeros(6)
    assert disp(buf, 5) == 5 and buf[-1] == 5.0
    assert rewritten(disp)


def test_jit_bare_called_and_with_keywords():
    bare = lo.jit(scan)
    called = lo.jit()(scan)
    keyed = lo.jit(nogil=True, boundscheck=True)(scan)
    for disp in (bare, called, keyed):
        assert disp(np.zeros(6), 5) == 5 and rewritten(disp)
    assert keyed.targetoptions["nogil"] and keyed.targetoptions["boundscheck"]


def test_jit_with_explicit_signatures_compiles_eagerly():
    one = lo.jit("int64(float64[:], int64)")(scan)
    many = lo.jit([(types.float64[:], types.int64), (types.float32[:], types.int64)])(scan)
    assert len(one.signatures) == 1 and len(many.signatures) == 2
    assert one(np.zeros(4), 3) == 3
    assert all(any(r.key == "Rewritten" for r in lo.remarks(many, sig))
               for sig in many.signatures)


@pytest.mark.parametrize("kwargs", [
    {"fastmath": True}, {"fastmath": {"nnan", "ninf"}}, {"boundscheck": True},
    {"nogil": True}, {"error_model": "numpy"}, {"parallel": True}, {"inline": "always"},
    {"locals": {"i": types.int64}}, {"no_rewrites": True}, {"debug": True},
])
def test_njit_keywords_pass_through(kwargs):
    disp = lo.jit(**kwargs)(scan)
    for key, value in kwargs.items():
        assert disp.targetoptions.get(key, getattr(disp, key, value)) == value or key in (
            "locals",)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaPerformanceWarning)
        assert disp(np.zeros(6), 5) == 5
    assert rewritten(disp)


def test_cache_keyword_passes_through(tmp_path, monkeypatch):
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))
    disp = lo.jit(cache=True)(scan)
    assert disp(np.zeros(6), 5) == 5
    assert disp.stats.cache_misses and list(tmp_path.rglob("*.nbi"))


def test_object_mode_request_uses_numba_object_mode():
    def py(values):
        return {"total": sum(values)}

    disp = lo.jit(forceobj=True)(py)
    assert disp([1, 2, 3]) == {"total": 6}
    assert lo.remarks(disp, disp.signatures[0]) == []


# --- options: validated at decoration time --------------------------------


@pytest.mark.parametrize("make,fragment", [
    (lambda: Options(while_to_range={"fomr": "while"}),
     "unknown numba_loopopt option 'while_to_range.fomr'"),
    (lambda: Options(while_to_range={"version_modulo": "yes"}),
     "'while_to_range.version_modulo' must be of type bool, got str"),
    (lambda: Options(while_to_range={"max_versioned_stmts": -1}),
     "'while_to_range.max_versioned_stmts' must be >= 0"),
    (lambda: Options(while_to_range={"max_versioned_stmts": True}),
     "'while_to_range.max_versioned_stmts' must be of type int, got bool"),
    (lambda: Options(strict=1), "'strict' must be of type bool"),
    (lambda: Options(while_to_range=3), "'while_to_range' must be a bool, a mapping"),
    (lambda: Options.coerce({"warn_mised": True}), "unknown numba_loopopt option 'warn_mised'"),
    (lambda: lo.jit(options=42), "'options' must be an Options object or a mapping"),
    (lambda: lo.jit(optoins={}), "unknown keyword 'optoins' for numba_loopopt.jit"),
    (lambda: lo.jit(nogil="yes"), "keyword 'nogil' must be bool, got 'yes'"),
    (lambda: lo.jit(error_model="c"), "keyword 'error_model' must be 'python' or 'numpy'"),
    (lambda: lo.jit(pipeline_class=LoopOptPipeline), "sets 'pipeline_class' itself"),
])
def test_bad_options_raise_at_decoration_naming_the_option(make, fragment):
    with pytest.raises(OptionError) as info:
        make()
    assert fragment in str(info.value)


def test_options_are_hashable_and_pick_one_pipeline_class_each():
    a = Options(while_to_range={"version_modulo": False})
    b = Options(while_to_range={"version_modulo": False})
    assert a == b and hash(a) == hash(b)
    assert LoopOptPipeline.with_options(a) is LoopOptPipeline.with_options(b)
    assert LoopOptPipeline.with_options(Options()) is LoopOptPipeline


def test_a_pass_can_be_switched_off():
    disp = run_both(scan, np.zeros(6), 5, options={"while_to_range": False,
                                                   "scalar_replace": False,
                                                   "forward_stores": False})
    assert lo.remarks(disp, disp.signatures[0]) == []


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("NUMBA_LOOPOPT_DISABLE", "1")
    assert lo.remarks(run_both(scan, np.zeros(6), 5)) != {} and not rewritten(
        run_both(scan, np.zeros(6), 5))
    monkeypatch.delenv("NUMBA_LOOPOPT_DISABLE")
    opts = Options().with_environment({"NUMBA_LOOPOPT_STRICT": "1",
                                       "NUMBA_LOOPOPT_WARNINGS": "0"})
    assert opts.strict and not opts.warn_missed


def bound_changes(buf, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        buf[i] = 1.0
        n -= 1
        i += 1
    return i


def test_missed_remarks_as_performance_warnings():
    expected = r"missed BoundChanges: .*'n' is reassigned at line"
    with pytest.warns(NumbaPerformanceWarning, match=expected):
        lo.jit(options={"warn_missed": True})(bound_changes)(np.zeros(6), 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NumbaPerformanceWarning)
        lo.jit(bound_changes)(np.zeros(6), 5)


def test_warnings_from_the_environment(monkeypatch):
    monkeypatch.setenv("NUMBA_LOOPOPT_WARNINGS", "1")
    with pytest.warns(NumbaPerformanceWarning, match="BoundChanges"):
        lo.jit(bound_changes)(np.zeros(6), 5)


# --- safety net 1: a pass that raises is rolled back -----------------------


def _mangle_then_raise(self, state, options, emit):
    emit.passed("Rewritten", None, "about to break")
    for block in state.func_ir.blocks.values():
        block.body = block.body[:1]
    state.func_ir.blocks.clear()
    raise RuntimeError("boom")


def test_internal_error_rolls_the_pass_back(monkeypatch):
    monkeypatch.setattr(WhileToRange, "transform", _mangle_then_raise)
    disp = run_both(scan, np.zeros(6), 5)
    (remark,) = [r for r in lo.remarks(disp, disp.signatures[0])
                 if r.pass_name == "while-to-range"]
    assert remark.key == "InternalError" and remark.kind.value == "missed"
    assert "RuntimeError: boom" in remark.message


def test_strict_reraises_internal_errors(monkeypatch):
    monkeypatch.setattr(WhileToRange, "transform", _mangle_then_raise)
    with pytest.raises(RuntimeError, match="boom"):
        lo.jit(options={"strict": True})(scan)(np.zeros(6), 5)


# --- safety net 2: failure after a rewrite falls back to stock numba --------


def _break_typing(self, state, options, emit):
    """A 'rewrite' that type inference rejects."""
    for block in state.func_ir.blocks.values():
        ret = block.terminator
        if isinstance(ret, ir.Return):
            loc = ret.loc
            bad = ir.Var(block.scope, "$loopopt_bad", loc)
            block.body.insert(-1, ir.Assign(
                ir.Expr.getattr(state.func_ir.arg_names and block.scope.get_exact(
                    state.func_ir.arg_names[0]), "no_such_attribute", loc), bad, loc))
            block.body[-1] = ir.Return(bad, loc)
    emit.passed("Rewritten", None, "broke typing on purpose")
    return True


def test_failure_after_a_rewrite_falls_back_to_stock(monkeypatch):
    monkeypatch.setattr(WhileToRange, "transform", _break_typing)
    disp = run_both(scan, np.zeros(6), 5)
    keys = remark_keys(disp)
    assert keys == ["StockFallback"], keys
    assert "no_such_attribute" in lo.remarks(disp, disp.signatures[0])[0].message
    # numba keeps a compile failure as a "typing error" it raises on the next
    # call with object mode off; the handled one must not come back.
    assert disp(np.zeros(6), 5) == 5


def test_failure_after_a_rewrite_with_fallback_off_raises(monkeypatch):
    monkeypatch.setattr(WhileToRange, "transform", _break_typing)
    with pytest.raises(TypingError, match="no_such_attribute"):
        lo.jit(options={"fallback": False})(scan)(np.zeros(6), 5)


def user_typing_error(n):
    return n + "text"


def test_user_typing_errors_read_exactly_as_stock():
    with pytest.raises(TypingError) as stock:
        njit(user_typing_error)(3)
    with pytest.raises(TypingError) as ours:
        lo.jit(user_typing_error)(3)
    # numba's own message indents its candidate list deeper on every repeat,
    # so compare modulo whitespace.
    assert str(ours.value).split() == str(stock.value).split()


def test_remarks_are_kept_per_signature():
    disp = lo.jit(scan)
    disp(np.zeros(6), 5)
    disp(np.zeros(6, dtype=np.float32), 5)
    found = lo.remarks(disp)
    assert len(found) == 2 and all(
        [r.key for r in rs] == ["ScalarReplaced", "Rewritten", "Forwarded"]
        for rs in found.values())


def test_unsupported_numba_is_refused_with_a_clear_message(monkeypatch):
    # (the suite may run under an untested numba with the check skipped)
    monkeypatch.delenv("NUMBA_LOOPOPT_SKIP_VERSION_CHECK", raising=False)
    for version in ("0.61.2", "0.69.0", "1.0.0"):
        with pytest.raises(ImportError,
                           match=rf"supports numba >=0\.62,<0\.69, but numba {version}"):
            check_numba_version(version)
    for version in ("0.62.0", "0.65.1", "0.68.1", "0.68.2rc1"):
        check_numba_version(version)
    monkeypatch.setenv("NUMBA_LOOPOPT_SKIP_VERSION_CHECK", "1")
    check_numba_version("0.61.2")


# --- the pass base: one name per pass ---------------------------------------


def test_every_pass_has_one_name_the_others_derive_from():
    from numba_loopopt.transforms.fuse_loops import FuseLoops
    from numba_loopopt.transforms.fuse_reduce import FuseReductions
    from numba_loopopt.transforms.inline import InlineCalls

    for cls, name in ((InlineCalls, "inline"), (WhileToRange, "while-to-range"),
                      (FuseLoops, "fuse-loops"), (FuseReductions, "fuse-reduce")):
        field = name.replace("-", "_")
        assert (cls.pass_name, cls.options_field, cls.name()) == (
            name, field, f"loopopt_{field}")
        assert derived_names(name) == (field, f"loopopt_{field}")


def test_a_pass_declares_its_name_and_the_rest_derives():
    class Declared(LoopOptPass):
        pass_name = "fuse-reduce"

    assert (Declared.options_field, Declared.name()) == ("fuse_reduce", "loopopt_fuse_reduce")

    class Spelled(LoopOptPass):  # the old attributes, spelled as derived
        _name = "loopopt_while_to_range"
        pass_name = "while-to-range"
        options_field = "while_to_range"

    assert Spelled.options_field == "while_to_range"

    class Variant(Declared):  # a subclass of a pass keeps its names
        pass

    assert (Variant.pass_name, Variant.name()) == ("fuse-reduce", "loopopt_fuse_reduce")


@pytest.mark.parametrize("body,message", [
    ({}, "sets no pass_name"),
    ({"pass_name": "Fuse_Reduce"}, "must be lower-case words joined by '-'"),
    ({"pass_name": "fuse-reduce", "options_field": "fuse_loops"},
     "a pass has one name; pass_name = 'fuse-reduce' makes options_field 'fuse_reduce', "
     "but the class sets 'fuse_loops'"),
    ({"pass_name": "fuse-reduce", "_name": "loopopt_fusereduce"},
     "makes _name 'loopopt_fuse_reduce'"),
    ({"pass_name": "unroll"}, "needs the field 'unroll' of numba_loopopt.Options"),
])
def test_a_pass_with_inconsistent_names_fails_at_class_creation(body, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        type("Broken", (LoopOptPass,), body)


def test_the_pass_base_is_below_the_pipeline_which_registers_its_classes():
    from numba.core.compiler import Compiler

    from numba_loopopt import passbase, pipeline

    # Every pass imports its base from passbase: the pipeline no longer
    # re-exports it.
    assert "LoopOptPass" not in pipeline.__all__
    assert passbase.is_known_pipeline(Compiler)
    assert passbase.is_known_pipeline(LoopOptPipeline)
    assert passbase.is_known_pipeline(LoopOptPipeline.with_options({"inline": False}))
    assert not passbase.is_known_pipeline(type("Mine", (LoopOptPipeline,), {}))
    assert not passbase.is_known_pipeline(None)
