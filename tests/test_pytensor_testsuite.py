"""tools/pytensor_testsuite.py: skips with one line without a PyTensor source,
and, on a source tree of two tiny test modules, runs them stock and enabled and
reports the test that fails only enabled as the one new failure."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parent.parent / "tools" / "pytensor_testsuite.py"


def _run(*args, cwd, env_extra=None, timeout=600):
    import os

    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTENSOR_SRC", "NUMBA_LOOPOPT_PYTENSOR")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


def test_no_source_is_a_one_line_skip(tmp_path):
    proc = _run("--source", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"pytensor test suite: skipped ({tmp_path / 'nowhere'} does not exist)"]
    proc = _run("--source", str(tmp_path), cwd=tmp_path)  # neither git nor tests/link/numba
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("pytensor test suite: skipped (")
    assert proc.stdout.count("\n") == 1


def test_a_test_failing_only_enabled_is_a_new_failure(tmp_path):
    pytest.importorskip("pytensor")
    tests = tmp_path / "src" / "tests" / "link" / "numba"
    tests.mkdir(parents=True)
    for d in (tmp_path / "src" / "tests", tests.parent, tests):
        (d / "__init__.py").write_text("")
    (tests / "test_tiny.py").write_text(textwrap.dedent("""
        import numpy as np
        import pytest
        import pytensor
        import pytensor.tensor as pt

        import numba_loopopt.pytensor as integration


        @pytest.mark.parametrize("n", [3, 4, 5])
        def test_scan(n):
            x0 = pt.dscalar("x0")
            xs = pytensor.scan(lambda x: x + 1.0, outputs_info=[x0], n_steps=n,
                               return_updates=False)
            f = pytensor.function([x0], xs[-1], mode="NUMBA")
            assert f(0.5) == 0.5 + n


        def test_fails_only_enabled():
            assert not integration.is_enabled(), "enabled"


        def test_fails_in_both():
            assert False, "always"


        def test_benchmark_stand_in(benchmark):
            assert benchmark(lambda a, b: a + b, 1, 2) == 3
    """))
    proc = _run("--source", str(tmp_path / "src"), "--max-params", "1", cwd=tmp_path)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "tests of the working tree" in out
    # test_scan runs once (--max-params 1) and passes both ways.
    assert "stock: 4 tests in " in out and ": 3 pass, 1 fail; 0 functions" in out
    assert "loopopt: 4 tests in " in out and ": 2 pass, 2 fail; " in out
    assert "; 0 functions" not in out.split("loopopt: ")[1].splitlines()[0]
    assert ", 1 new failures, 1 failing in both runs, 0 failing only stock" in out
    assert ("failing in both runs: tests/link/numba/test_tiny.py::test_fails_in_both "
            "(fail: AssertionError: always)") in out
    new = [line for line in out.splitlines() if line.startswith("NEW FAILURE")]
    assert new == ["NEW FAILURE: tests/link/numba/test_tiny.py::test_fails_only_enabled "
                   "(fail; stock: pass)"]
    assert "AssertionError: enabled" in out
