"""Re-run PyTensor's own numba tests with numba_loopopt.pytensor enabled.

PyTensor's tests are not in its wheel, so this tool takes them from a source
checkout of the *installed* release: a git directory (the tag
``rel-<installed version>`` is extracted with ``git archive``) or a working
tree, given as ``--source`` or ``PYTENSOR_SRC``.  Without either it looks for
a mirror in :data:`SEARCHED` and, finding none, prints one line saying the run
is skipped and exits 0 (a fresh CI machine has no source).

It runs the test modules of ``tests/link/numba/`` twice, each in a fresh
pytest process with an empty PyTensor compile directory: once stock, once with
``NUMBA_LOOPOPT_PYTENSOR=1`` (every function PyTensor's NUMBA mode creates
compiles through the passes).  It then reports the tests that fail enabled but
pass stock: the new failures.  This file is also the pytest plugin of those
runs (``-p pytensor_testsuite``): it checks the integration is on (or off),
counts the functions created through ``numba_loopopt.jit``, records each
test's outcome as it finishes (so a hang or a crash names its test), and
stands in for pytest-benchmark's ``benchmark`` fixture when that plugin is not
installed (the function runs once: its result is still checked).

Usage::

    python tools/pytensor_testsuite.py                  # every module of tests/link/numba/
    python tools/pytensor_testsuite.py --quick          # the subset CI runs
    python tools/pytensor_testsuite.py --source ~/src/pytensor
    python tools/pytensor_testsuite.py tests/link/numba/test_scan.py
    python tools/pytensor_testsuite.py --json results.json

Exit status 1 if any test fails enabled but passes stock; 0 with "skipped"
when no source is available.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Where a source is looked for when neither ``--source`` nor ``PYTENSOR_SRC``
#: names one: the git directories the agent sessions' ``fetch`` mirrors.
SEARCHED = ["/work/.mirror/pymc-devs+pytensor*/repo"]
SOURCE_ENV = "PYTENSOR_SRC"

NUMBA_TESTS = "tests/link/numba"
#: The modules the issue names (336 tests in PyTensor 2.38.2: 16 minutes of
#: CPU for the two runs).
QUICK_MODULES = [f"{NUMBA_TESTS}/{m}.py"
                 for m in ("test_scan", "test_elemwise", "test_basic", "test_subtensor")]
#: CI's subset of them: every test function, with at most its first 4
#: parametrizations (159 tests: 11 minutes of CPU for the two runs), in 2
#: pytest-xdist workers.
QUICK_MAX_PARAMS = 4
QUICK_JOBS = 2
#: Tests left out of --quick: a 10000x10000 (800 MB) benchmark input.
QUICK_DESELECT = ["test_logsumexp_benchmark and 10000"]

# Set for the pytest processes this tool starts (read by the plugin below).
MODE_ENV = "PYTENSOR_TESTSUITE_MODE"
OUT_ENV = "PYTENSOR_TESTSUITE_OUT"
MAX_PARAMS_ENV = "PYTENSOR_TESTSUITE_MAX_PARAMS"


# ---------------------------------------------------------------------------
# Finding and extracting the source.
# ---------------------------------------------------------------------------


def installed_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("pytensor")
    except metadata.PackageNotFoundError:
        return None


def _git(gitdir: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["git", f"--git-dir={gitdir}", *args], capture_output=True,
                          **kwargs)


def _git_dir(path: Path) -> str | None:
    """The git directory of ``path`` (a bare mirror or a checkout), if any."""
    if shutil.which("git") is None:
        return None
    proc = subprocess.run(["git", "-C", str(path), "rev-parse", "--absolute-git-dir"],
                          capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def find_source(given: str | None) -> tuple[Path | None, str]:
    """The source to use and where it came from, or ``(None, why not)``."""
    if given:
        path = Path(given).expanduser()
        return (path, given) if path.exists() else (None, f"{given} does not exist")
    if os.environ.get(SOURCE_ENV):
        path = Path(os.environ[SOURCE_ENV]).expanduser()
        return ((path, f"{SOURCE_ENV}={path}") if path.exists()
                else (None, f"{SOURCE_ENV}={path} does not exist"))
    for pattern in SEARCHED:
        for found in sorted(glob.glob(pattern)):
            return Path(found), found
    return None, (f"no PyTensor source: pass --source or set {SOURCE_ENV} to a checkout "
                  "or git directory of pymc-devs/pytensor")


def extract(source: Path, version: str, ref: str | None, into: Path) -> str:
    """Put the tests of ``source`` (at ``ref``, default ``rel-<version>``) in
    ``into``; returns a description.  Raises ``LookupError`` when the source has
    neither the tag nor a ``tests/link/numba`` directory.

    Only ``conftest.py``, ``pyproject.toml`` (pytest's configuration) and
    ``tests/`` are copied: a ``pytensor/`` package next to them would be
    imported instead of the installed release.
    """
    gitdir = _git_dir(source)
    ref = ref or f"rel-{version}"
    if gitdir is not None and _git(gitdir, "rev-parse", "--verify", "-q",
                                   f"{ref}^{{commit}}").returncode == 0:
        archive = _git(gitdir, "archive", "--format=tar", ref,
                       "conftest.py", "pyproject.toml", "tests")
        if archive.returncode:
            raise LookupError(f"git archive {ref} failed: {archive.stderr.decode()[-500:]}")
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
        commit = _git(gitdir, "rev-parse", "--short", f"{ref}^{{commit}}", text=True)
        return f"{ref} ({commit.stdout.strip()}) of {gitdir}"
    if (source / NUMBA_TESTS).is_dir():
        for name in ("conftest.py", "pyproject.toml"):
            if (source / name).exists():
                shutil.copy(source / name, into / name)
        shutil.copytree(source / "tests", into / "tests")
        note = "" if gitdir is None else f"; {ref} not found in its git history"
        return f"the working tree {source} (its version is not checked{note})"
    where = f"git directory {gitdir}" if gitdir else "directory"
    raise LookupError(f"{source} is a {where} with neither the tag {ref} nor {NUMBA_TESTS}/")


# ---------------------------------------------------------------------------
# Running pytest, stock and enabled.
# ---------------------------------------------------------------------------


def run_mode(mode: str, src: Path, targets: list[str], deselect: list[str],
             jobs: int, timeout: float | None, max_params: int | None = None) -> dict:
    """One pytest run in a fresh process and compile directory."""
    with tempfile.TemporaryDirectory(prefix=f"pytensor-{mode}-") as tmp:
        out = Path(tmp) / "outcomes.jsonl"
        # Not what an enclosing pytest run set: inherited PYTEST_XDIST_WORKER
        # would make this run's plugin think it is a worker and record nothing.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        env.pop("NUMBA_LOOPOPT_PYTENSOR", None)
        if mode == "loopopt":
            env["NUMBA_LOOPOPT_PYTENSOR"] = "1"
        env[MODE_ENV] = mode
        env["NUMBA_BOUNDSCHECK"] = "1"  # as PyTensor's conftest sets it
        env[OUT_ENV] = str(out)
        env.pop(MAX_PARAMS_ENV, None)
        if max_params:
            env[MAX_PARAMS_ENV] = str(max_params)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(Path(__file__).resolve().parent), env.get("PYTHONPATH")) if p)
        flags = [f"base_compiledir={tmp}/compiledir"]
        env["PYTENSOR_FLAGS"] = ",".join(f for f in (env.get("PYTENSOR_FLAGS"), *flags) if f)
        cmd = [sys.executable, "-m", "pytest", "-p", "pytensor_testsuite", "-p",
               "no:cacheprovider", "-o", "addopts=", "-q", "--no-header", "-rN",
               "--tb=short", *targets]
        if deselect:
            cmd += ["-k", " and ".join(f"not ({k})" for k in deselect)]
        if jobs > 1:
            # Whole modules per worker, in file order, as a serial run orders
            # them: PyTensor 2.38.2's test_scan_multiple_output failed stock
            # once when load-balanced (its Subtensor function typed with another
            # test's signature), and passes in file order.
            cmd += ["-n", str(jobs), "--dist", "loadfile"]
        log = Path(tmp) / "pytest.log"
        started = time.perf_counter()
        status: int | str
        with open(log, "w") as fh:
            try:
                status = subprocess.run(cmd, cwd=src, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                        timeout=timeout).returncode
            except subprocess.TimeoutExpired:
                status = "timeout"
        elapsed = time.perf_counter() - started
        outcomes, details, durations, running, functions = {}, {}, {}, set(), None
        if out.exists():
            for line in out.read_text().splitlines():
                rec = json.loads(line)
                if "functions" in rec:
                    functions = (functions or 0) + rec["functions"]
                elif rec.get("outcome") == "start":
                    running.add(rec["test"])
                else:
                    running.discard(rec["test"])
                    outcomes[rec["test"]] = rec["outcome"]
                    durations[rec["test"]] = rec.get("seconds", 0.0)
                    if rec.get("detail"):
                        details[rec["test"]] = rec["detail"]
        # A test that started and never finished: the process hung or died in it.
        for test in running:
            outcomes[test] = "timeout" if status == "timeout" else "crash"
            details[test] = f"pytest {'timed out' if status == 'timeout' else 'died'} here"
        tail = log.read_text()[-3000:]
    if not outcomes:
        raise RuntimeError(f"{mode} run recorded no tests (exit {status}):\n{tail}")
    return {"outcomes": outcomes, "details": details, "durations": durations,
            "status": status, "seconds": elapsed, "functions": functions}


BAD = ("fail", "error", "crash", "timeout")


def _error_line(detail: str) -> str:
    """The first ``E`` line of a pytest traceback (the exception), if any."""
    for line in detail.splitlines():
        if line.startswith("E "):
            return line[1:].strip()[:200]
    return detail.strip().splitlines()[-1][:200] if detail.strip() else ""


def summary(outcomes: dict[str, str]) -> str:
    counts: dict[str, int] = {}
    for o in outcomes.values():
        counts[o] = counts.get(o, 0) + 1
    order = ("pass", "fail", "error", "skip", "xfail", "xpass", "crash", "timeout")
    return ", ".join(f"{counts[o]} {o}" for o in order if counts.get(o))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*",
                        help=f"test files or ids, relative to the source (default: {NUMBA_TESTS})")
    parser.add_argument("--quick", action="store_true", help="the subset CI runs")
    parser.add_argument("--source", help=f"a PyTensor checkout or git directory "
                        f"(default: ${SOURCE_ENV}, then {', '.join(SEARCHED)})")
    parser.add_argument("--ref", help="the git tag or commit to test (default: "
                        "rel-<installed pytensor version>)")
    parser.add_argument("--jobs", "-j", type=int, default=None,
                        help=f"pytest-xdist workers per run (default 1; {QUICK_JOBS} with "
                        "--quick); test_random.py needs 1 (its test ids hold object addresses, "
                        "which differ between workers)")
    parser.add_argument("--max-params", type=int, default=None,
                        help="run at most the first N parametrizations of each test "
                        f"function (default: all; {QUICK_MAX_PARAMS} with --quick)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds allowed for each of the two runs")
    parser.add_argument("--json", help="write the per-test outcomes here")
    args = parser.parse_args(argv)

    version = installed_version()
    if version is None:
        print("pytensor test suite: skipped (PyTensor is not installed)")
        return 0
    source, where = find_source(args.source)
    if source is None:
        print(f"pytensor test suite: skipped ({where})")
        return 0
    targets = args.targets or (QUICK_MODULES if args.quick else [NUMBA_TESTS])
    deselect = QUICK_DESELECT if args.quick and not args.targets else []
    jobs = args.jobs or (QUICK_JOBS if args.quick else 1)
    max_params = args.max_params or (QUICK_MAX_PARAMS if args.quick else None)
    with tempfile.TemporaryDirectory(prefix="pytensor-src-") as tmp:
        try:
            what = extract(source, version, args.ref, Path(tmp))
        except LookupError as exc:
            print(f"pytensor test suite: skipped ({exc})")
            return 0
        print(f"PyTensor {version}: tests of {what}", flush=True)
        started = time.perf_counter()
        results = {}
        for mode in ("stock", "loopopt"):
            run = run_mode(mode, Path(tmp), targets, deselect, jobs, args.timeout, max_params)
            results[mode] = run
            fns = "?" if run["functions"] is None else run["functions"]
            print(f"{mode}: {len(run['outcomes'])} tests in {run['seconds']:.0f} s: "
                  f"{summary(run['outcomes'])}; {fns} functions through numba_loopopt.jit",
                  flush=True)
    stock, ours = results["stock"]["outcomes"], results["loopopt"]["outcomes"]
    new = sorted(t for t, o in ours.items() if o in BAD and stock.get(t) not in BAD)
    fixed = sorted(t for t, o in stock.items() if o in BAD and ours.get(t) not in BAD)
    both = sorted(t for t, o in ours.items() if o in BAD and stock.get(t) in BAD)
    print(f"\n{len(targets)} target(s), {len(ours)} tests: "
          f"{sum(o == 'pass' for o in ours.values())} pass enabled "
          f"({sum(o == 'pass' for o in stock.values())} stock), {len(new)} new failures, "
          f"{len(both)} failing in both runs, {len(fixed)} failing only stock "
          f"({time.perf_counter() - started:.0f} s)")
    for test in both:
        error = _error_line(results["loopopt"]["details"].get(test, ""))
        print(f"failing in both runs: {test} ({ours[test]}{': ' + error if error else ''})")
    for test in new:
        detail = results["loopopt"]["details"].get(test, "").strip()
        print(f"NEW FAILURE: {test} ({ours[test]}; stock: {stock.get(test, 'not run')})")
        for line in detail.splitlines()[-15:]:
            print(f"    {line}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"pytensor": version, "source": what, "targets": targets,
                       "results": results, "new_failures": new}, fh, indent=1)
    return 1 if new else 0


# ---------------------------------------------------------------------------
# The pytest plugin of the runs above (loaded with -p pytensor_testsuite).
# ---------------------------------------------------------------------------

_FUNCTIONS = {"count": 0}


def _record(rec: dict) -> None:
    path = os.environ.get(OUT_ENV)
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")


def _controller() -> bool:
    """Not a pytest-xdist worker (the controller records the outcomes)."""
    return os.environ.get("PYTEST_XDIST_WORKER") is None


def pytest_configure(config):
    mode = os.environ.get(MODE_ENV)
    if mode is None:
        return
    import pytest

    import numba_loopopt.pytensor as integration

    if integration.is_enabled() != (mode == "loopopt"):
        raise RuntimeError(f"pytensor_testsuite: mode {mode} but numba_loopopt.pytensor "
                           f"is_enabled() = {integration.is_enabled()}")
    jit = getattr(integration, "jit", None)
    if mode == "loopopt" and callable(jit):
        def counting_jit(*args, **kwargs):
            _FUNCTIONS["count"] += 1
            return jit(*args, **kwargs)

        integration.jit = counting_jit
    if not config.pluginmanager.hasplugin("benchmark"):
        class BenchmarkStandIn:
            @pytest.fixture
            def benchmark(self):
                return _OneCall()

        config.pluginmanager.register(BenchmarkStandIn(), "pytensor_testsuite_benchmark")


def pytest_collection_modifyitems(config, items):
    """Keep the first ``PYTENSOR_TESTSUITE_MAX_PARAMS`` parametrizations of
    each test function (in collection order, the same in every xdist worker)."""
    limit = int(os.environ.get(MAX_PARAMS_ENV) or 0)
    if not os.environ.get(MODE_ENV) or limit <= 0:
        return
    seen: dict[str, int] = {}
    kept, dropped = [], []
    for item in items:
        function = item.nodeid.split("[", 1)[0]
        seen[function] = seen.get(function, 0) + 1
        (kept if seen[function] <= limit else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_runtest_logstart(nodeid, location):
    if os.environ.get(MODE_ENV) and _controller():
        _record({"test": nodeid, "outcome": "start"})


def pytest_runtest_logreport(report):
    if not os.environ.get(MODE_ENV) or not _controller():
        return
    outcome = None
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            outcome = "xfail" if report.skipped else "xpass" if report.passed else "fail"
        else:
            outcome = {"passed": "pass", "failed": "fail", "skipped": "skip"}[report.outcome]
    elif report.failed:
        outcome = "error"
    elif report.when == "setup" and report.skipped:
        outcome = "xfail" if hasattr(report, "wasxfail") else "skip"
    if outcome is not None:
        detail = report.longreprtext[-4000:] if report.failed else ""
        _record({"test": report.nodeid, "outcome": outcome, "detail": detail,
                 "seconds": round(report.duration, 3)})


def pytest_sessionfinish(session):
    if os.environ.get(MODE_ENV):
        # Every process (each xdist worker too) adds its count.
        _record({"functions": _FUNCTIONS["count"]})


class _OneCall:
    """pytest-benchmark's ``benchmark`` fixture, reduced to one call."""

    def __call__(self, fn, *args, **kwargs):
        return fn(*args, **kwargs)

    def pedantic(self, fn, args=(), kwargs=None, setup=None, rounds=1, iterations=1,
                 warmup_rounds=0):
        if setup is not None:
            made = setup()
            if made is not None:
                args, kwargs = made
        return fn(*args, **(kwargs or {}))


if __name__ == "__main__":
    raise SystemExit(main())
