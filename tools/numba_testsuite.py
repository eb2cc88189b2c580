"""Re-run numba's own test suite with LoopOptPipeline as every function's pipeline.

numba ships its tests inside the package (``numba.tests``).  This tool runs a
set of those modules twice, each in its own fresh process: once stock, once
with every compilation that would use numba's default ``Compiler`` routed
through :class:`numba_loopopt.LoopOptPipeline` (``compile_extra`` and
``compile_ir`` are patched; tests that bring their own pipeline class keep it).
It then reports the tests that fail only with the passes: the new failures.

Usage::

    python tools/numba_testsuite.py                       # the default module set
    python tools/numba_testsuite.py --quick               # the subset CI runs
    python tools/numba_testsuite.py numba.tests.test_range numba.tests.test_lists
    python tools/numba_testsuite.py --json results.json
    python tools/numba_testsuite.py --no-inline     # the passes, inlining off

Exit status 1 if any test fails with the passes but passes stock.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import unittest

#: The modules the issue names: reductions, array expressions, inlining, flow
#: control, loops, ranges, closures, recursion, lists, math, operators, ...
DEFAULT_MODULES = [
    "numba.tests.test_array_reductions", "numba.tests.test_array_exprs",
    "numba.tests.test_ir_inlining", "numba.tests.test_flow_control",
    "numba.tests.test_looplifting", "numba.tests.test_range",
    "numba.tests.test_closure", "numba.tests.test_recursion", "numba.tests.test_lists",
    "numba.tests.test_mathlib", "numba.tests.test_operators", "numba.tests.test_builtins",
    "numba.tests.test_generators", "numba.tests.test_exceptions",
    "numba.tests.test_tuples", "numba.tests.test_optional", "numba.tests.test_indexing",
    "numba.tests.test_remove_dead", "numba.tests.test_func_lifetime",
    "numba.tests.test_sort", "numba.tests.test_dicts",
]
#: A subset that fits CI's time budget.
QUICK_MODULES = [
    "numba.tests.test_flow_control", "numba.tests.test_range",
    "numba.tests.test_closure", "numba.tests.test_recursion",
    "numba.tests.test_ir_inlining", "numba.tests.test_looplifting",
    "numba.tests.test_remove_dead",
]


ROUTED = {"compilations": 0}


#: numba tests that inspect what a *callee's* dispatcher compiled
#: (``callee.signatures``): when the inline pass inlines the callee, its
#: dispatcher never compiles, by design, so these fail with inlining on and pass
#: with ``--no-inline``.  Results are not involved.
EXPECTED_WITH_INLINING = {
    "numba.tests.test_array_exprs.TestOptionals.test_optional_array_type",
    "numba.tests.test_array_exprs.TestOptionals.test_optional_scalar_type",
    "numba.tests.test_array_exprs.TestOptionalsExceptions."
    "test_optional_array_type_exception_on_none",
    "numba.tests.test_array_exprs.TestOptionalsExceptions."
    "test_optional_scalar_type_exception_on_none",
    "numba.tests.test_lists.TestListInitialValues.test_list_of_list_ctor",
    "numba.tests.test_lists.TestListInitialValues."
    "test_mutation_not_carried_single_function",
}


def patch_numba(inline: bool = True) -> None:
    """Route numba's default pipeline through LoopOptPipeline."""
    from numba.core import compiler

    from numba_loopopt import LoopOptPipeline, Options

    if not inline:
        LoopOptPipeline = LoopOptPipeline.with_options(Options(inline=False))  # noqa: N806

    for name in ("compile_extra", "compile_ir"):
        original = getattr(compiler, name)

        def patched(*args, _original=original, **kwargs):
            if kwargs.get("pipeline_class", compiler.Compiler) is compiler.Compiler:
                kwargs["pipeline_class"] = LoopOptPipeline
                ROUTED["compilations"] += 1
            return _original(*args, **kwargs)

        setattr(compiler, name, patched)


class _Recorder(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outcomes: dict[str, str] = {}

    def addSuccess(self, test):  # noqa: N802 - unittest's API
        super().addSuccess(test)
        self.outcomes[test.id()] = "pass"

    def addFailure(self, test, err):  # noqa: N802
        super().addFailure(test, err)
        self.outcomes[test.id()] = "fail"

    def addError(self, test, err):  # noqa: N802
        super().addError(test, err)
        self.outcomes[test.id()] = "error"

    def addSkip(self, test, reason):  # noqa: N802
        super().addSkip(test, reason)
        self.outcomes[test.id()] = "skip"

    def addExpectedFailure(self, test, err):  # noqa: N802
        super().addExpectedFailure(test, err)
        self.outcomes[test.id()] = "xfail"

    def addUnexpectedSuccess(self, test):  # noqa: N802
        super().addUnexpectedSuccess(test)
        self.outcomes[test.id()] = "xpass"


def run_in_this_process(mode: str, modules: list[str]) -> dict[str, str]:
    if mode in ("loopopt", "loopopt-no-inline"):
        patch_numba(inline=mode == "loopopt")
    suite = unittest.defaultTestLoader.loadTestsFromNames(modules)
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=0,
                                     resultclass=_Recorder)
    outcomes = runner.run(suite).outcomes
    return {"outcomes": outcomes, "routed": ROUTED["compilations"]}


def run_mode(mode: str, modules: list[str]) -> dict[str, str]:
    """Run the modules in a fresh process (patches must not leak)."""
    code = (f"import json, sys; sys.path.insert(0, {sys.path[0]!r}); "
            "import numba_testsuite as t; "
            f"print('@@' + json.dumps(t.run_in_this_process({mode!r}, {modules!r})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("@@"):
            return json.loads(line[2:])
    raise RuntimeError(f"{mode} run produced no results:\n{proc.stderr[-5000:]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*")
    parser.add_argument("--quick", action="store_true", help="the subset CI runs")
    parser.add_argument("--json", help="write the per-test outcomes here")
    parser.add_argument("--no-inline", action="store_true",
                        help="run the loopopt pipeline with the inline pass off")
    args = parser.parse_args(argv)
    modules = args.modules or (QUICK_MODULES if args.quick else DEFAULT_MODULES)
    started = time.perf_counter()
    results = {}
    ours_mode = "loopopt-no-inline" if args.no_inline else "loopopt"
    for mode in ("stock", ours_mode):
        t0 = time.perf_counter()
        run = run_mode(mode, modules)
        results["loopopt" if mode == ours_mode else mode] = run["outcomes"]
        print(f"{mode}: {len(run['outcomes'])} tests in {time.perf_counter() - t0:.0f} s, "
              f"{run['routed']} compilations through LoopOptPipeline", flush=True)
    stock, ours = results["stock"], results["loopopt"]
    bad = ("fail", "error")
    differing = sorted(t for t, o in ours.items() if o in bad and stock.get(t) not in bad)
    expected = [t for t in differing if t in EXPECTED_WITH_INLINING and not args.no_inline]
    new = [t for t in differing if t not in expected]
    fixed = sorted(t for t, o in stock.items() if o in bad and ours.get(t) not in bad)
    both = sorted(t for t, o in ours.items() if o in bad and stock.get(t) in bad)
    print(f"\n{len(modules)} numba test modules, {len(ours)} tests: "
          f"{sum(o == 'pass' for o in ours.values())} pass with the passes, "
          f"{len(new)} new failures, {len(expected)} expected differences (callee "
          f"inlined), {len(both)} failing in both runs, "
          f"{len(fixed)} failing only stock ({time.perf_counter() - started:.0f} s)")
    for test in expected:
        print(f"expected with inlining: {test} (inspects the callee's signatures)")
    for test in new:
        print(f"NEW FAILURE: {test} ({ours[test]})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"modules": modules, "results": results, "new_failures": new}, fh,
                      indent=1)
    return 1 if new else 0


if __name__ == "__main__":
    raise SystemExit(main())
