"""The benchmark suite (``python -m numba_loopopt bench``): it runs, checks
results before timing, writes its files and skips what is missing.  No timing
assertions: the numbers depend on the machine."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from numba_loopopt.cli import bench
from numba_loopopt.cli import main as cli_main


def test_quick_run_prints_tables_and_writes_results(tmp_path, capsys):
    status = cli_main(["bench", "--quick", "--kernels", "sum_expr,scan",
                       "--sizes", "100", "1000", "--repeats", "1",
                       "--min-sample", "0.0005", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0
    assert "== sum_expr: np.sum(a*b + c)" in out
    assert "== scan: while i < n and not cond.item()" in out
    assert re.search(r"n = 1,000: min of [12] interleaved rounds", out)
    assert "speed-up of numba_loopopt.jit" in out
    # Every candidate that ran says how its result was checked.
    for line in (ln for ln in out.splitlines() if "numba_loopopt.jit " in ln):
        assert line.rstrip().endswith("bit-identical")
    assert "[fuse-reduce] Fused" in out and "[while-to-range] Rewritten" in out

    data = json.loads((tmp_path / "results.json").read_text())
    assert list(data["kernels"]) == ["sum_expr", "scan"]
    sizes = data["kernels"]["sum_expr"]["sizes"]
    assert [s["n"] for s in sizes] == [100, 1000]
    assert {"stock", "parallel", "numpy", "hand", "loopopt"} <= set(sizes[0]["best_s"])
    # One round, or two if stock numba's two timings disagreed.
    assert len({len(v) for v in sizes[0]["samples_s"].values()}) == 1
    assert len(sizes[0]["samples_s"]["loopopt"]) in (1, 2)
    assert {(r["kernel"], r["n"]) for r in data["speedup_over"]} == {
        ("sum_expr", 100), ("sum_expr", 1000), ("scan", 100), ("scan", 1000)}
    assert data["kernels"]["scan"]["candidates"]["numexpr"]["skipped"].startswith("n/a")

    if importlib.util.find_spec("matplotlib") is None:
        assert "note: no plot: matplotlib is not installed" in out
    else:
        assert (tmp_path / "speedup.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        replot = tmp_path / "replot"
        assert cli_main(["bench", "--plot-from", str(tmp_path / "results.json"),
                         "--out", str(replot)]) == 0
        assert (replot / "speedup.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if importlib.util.find_spec("pyperf") is not None:
        assert (tmp_path / "results.pyperf.json").is_file()


@pytest.mark.skipif(importlib.util.find_spec("jax") is not None, reason="jax is installed")
def test_missing_jax_is_skipped_and_said(tmp_path, capsys):
    assert cli_main(["bench", "--kernels", "gather", "--sizes", "50", "--repeats", "1",
                     "--min-sample", "0.0005", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "note: jax skipped: `import jax` failed" in out
    assert "JAX jit: skipped (`import jax` failed" in out


def test_optional_modules_are_not_imported_with_the_package():
    code = ("import sys, numba_loopopt, numba_loopopt.cli.bench, numba_loopopt.__main__\n"
            "print(sorted(m for m in ('matplotlib', 'numexpr', 'pyperf', 'jax', "
            "'pytensor') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_a_missing_tool_becomes_a_skipped_candidate(monkeypatch):
    real = bench.importlib.import_module

    def fake(name, *args):
        if name == "numexpr":
            raise ImportError("No module named 'numexpr'")
        return real(name, *args)

    monkeypatch.setattr(bench.importlib, "import_module", fake)
    tools = bench.load_tools([bench.KERNELS["sum_expr"]])
    assert tools.numexpr is None
    cands = {c.role: c for c in bench.numba_candidates(bench.KERNELS["sum_expr"], tools)}
    assert "No module named 'numexpr'" in cands["numexpr"].skipped
    assert not cands["numpy"].skipped and not cands["loopopt"].skipped


def test_a_wrong_result_stops_the_run_before_timing():
    kernel = bench.Kernel("k", "k", None, None, bench.vectors(1))
    x = (np.array([0.1, 0.2, 0.3]),)  # summed backwards: 0.6, forwards: 0.6000000000000001
    stock = bench.Candidate("stock", "stock", lambda a: a.sum(), exact=True)
    reordered = bench.Candidate("numpy", "numpy", lambda a: a[::-1].sum())
    bench.check(kernel, [stock, reordered], x, 3)  # allclose: reordering is fine
    exact = bench.Candidate("loopopt", "loopopt", lambda a: a[::-1].sum(), exact=True)
    with pytest.raises(bench.ResultMismatch, match="not bit-identical"):
        bench.check(kernel, [stock, exact], x, 3)
    wrong = bench.Candidate("numpy", "numpy", lambda a: a.sum() * (1 + 1e-6))
    with pytest.raises(bench.ResultMismatch, match="not close"):
        bench.check(kernel, [stock, wrong], x, 3)


def test_mutated_buffer_is_part_of_the_result():
    kernel = bench.KERNELS["scan"]
    args = kernel.make_args(5, None)
    stock = bench.Candidate("stock", "stock", bench.hand_scan, exact=True)
    off_by_one = bench.Candidate("hand", "hand", lambda buf, n: bench.hand_scan(buf, n - 1) + 1,
                                 exact=True)
    with pytest.raises(bench.ResultMismatch, match="value 1"):
        bench.check(kernel, [stock, off_by_one], args, 5)
    assert not args[0].any()  # the candidates ran on copies


def test_unknown_kernel_is_an_error():
    with pytest.raises(SystemExit, match="unknown kernel 'nope'"):
        bench.resolve_kernels(["sum_expr", "nope"])
    assert [k.key for k in bench.resolve_kernels(["pytensor"])] == [
        "pytensor_scan", "pytensor_ar1", "pytensor_walk", "pytensor_taps2", "pytensor_until",
        "pytensor_sum"]


def test_the_stock_line_is_not_hidden_under_the_parallel_line():
    from numba_loopopt.cli.bench import line_style

    stock, parallel = line_style("stock"), line_style("parallel")
    assert stock["zorder"] > parallel["zorder"]
    assert stock["linestyle"] != parallel["linestyle"]
    assert stock["color"] != parallel["color"]
