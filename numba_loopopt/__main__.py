"""Command line: ``python -m numba_loopopt COMMAND``."""

from __future__ import annotations

import argparse
import sys

from . import __version__, bench, demo
from .explain import add_arguments as add_explain_arguments
from .explain import main as explain_main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m numba_loopopt",
        description="Loop-optimising compiler passes for numba.")
    parser.add_argument("--version", action="version",
                        version=f"numba_loopopt {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo_parser = commands.add_parser(
        "demo", help="compile example kernels stock vs optimised; show remarks "
                     "and speed-ups",
        description="Compile four example kernels with numba.njit and with "
                    "numba_loopopt.jit, check the results are identical, print "
                    "the optimisation remarks and the speed ratio.")
    demo.add_arguments(demo_parser)
    demo_parser.set_defaults(run=demo.main)

    explain_parser = commands.add_parser(
        "explain", help="show the remarks and the IR before/after each pass for "
                        "one function of a file",
        description="Load FILE.py by path, compile FUNC through LoopOptPipeline "
                    "for the given argument types (or the signatures it compiled "
                    "when the file ran), print the remarks, then the numba IR "
                    "before and after each pass that changed it (large constants "
                    "elided).")
    add_explain_arguments(explain_parser)
    explain_parser.set_defaults(run=explain_main)

    bench_parser = commands.add_parser(
        "bench", help="benchmark suite: every baseline kernel against stock numba, "
                      "parallel=True, NumPy, numexpr, JAX and hand-written loops",
        description="Check every candidate's result against stock numba, time the "
                    "candidates interleaved in one process, print ratio tables and "
                    "write results.json, speedup.png and results.pyperf.json to "
                    "--out.")
    bench.add_arguments(bench_parser)
    bench_parser.set_defaults(run=bench.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
