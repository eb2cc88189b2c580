"""examples/pymc_scan_model.py: PyMC models whose log-probability contains a
scan give bit-identical ``compile_logp()`` and ``compile_dlogp()`` values in
NUMBA mode stock and with ``numba_loopopt.pytensor.enable()``, and the
enabled functions do compile through the passes."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pymc")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "pymc_scan_model.py"


def _example():
    spec = importlib.util.spec_from_file_location("pymc_scan_model", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check(res) -> None:
    assert res["identical"] == {"logp": True, "dlogp": True}, res
    for fn in ("logp", "dlogp"):
        stock, ours = res["stock"][fn], res["loopopt"][fn]
        assert stock["through_loopopt"] == 0
        assert ours["dispatchers"] > 0
        assert ours["through_loopopt"] == ours["dispatchers"]
    assert res["loopopt"]["dlogp"]["value"].shape == res["stock"]["dlogp"]["value"].shape


def test_garch_logp_and_dlogp_identical_stock_and_enabled():
    import numba_loopopt.pytensor as integration

    was = integration.is_enabled()
    res = _example().compare("garch", steps=20, repeat=1)
    _check(res)
    assert integration.is_enabled() == was  # compare() restores the state
    assert res["stock"]["dlogp"]["value"].shape == (3,)  # omega, alpha, beta


@pytest.mark.slow
def test_ar_custom_dist_logp_and_dlogp_identical_stock_and_enabled(request):
    if "slow" not in (request.config.option.markexpr or ""):
        pytest.skip("a second model (about a minute of compiling): select -m slow")
    _check(_example().compare("ar", steps=20, repeat=1))


@pytest.mark.slow
def test_the_example_script_at_1e4_steps(request, tmp_path):
    if "slow" not in (request.config.option.markexpr or ""):
        pytest.skip("the script at 10,000 steps (a few minutes): select -m slow")
    env = dict(os.environ)
    env.pop("NUMBA_LOOPOPT_PYTENSOR", None)
    proc = subprocess.run([sys.executable, str(EXAMPLE), "--steps", "10000", "--repeat", "2"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=1200)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert proc.stdout.count("identical: True") == 4
    assert "all values identical" in proc.stdout
