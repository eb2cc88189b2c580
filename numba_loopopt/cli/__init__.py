"""The command line, ``python -m numba_loopopt COMMAND``: the top layer of
the package, beside the integrations.

* :mod:`~numba_loopopt.cli.bench`: the benchmark suite (``bench``);
* :mod:`~numba_loopopt.cli.demo`: a tour of four kernels (``demo``);
* :mod:`~numba_loopopt.cli.explain`: the remarks and the IR around each pass
  for one function of a file (``explain``).

Nothing in the compiler imports this package.
"""

from __future__ import annotations

import argparse

from .._version import __version__
from . import bench, demo, explain


class _IntermixedParser(argparse.ArgumentParser):
    """A sub-command's parser taking options and positional arguments in any
    order (``explain FILE.py:FUNC --no-ir "float64[:]"``), as
    :meth:`~argparse.ArgumentParser.parse_intermixed_args` does."""

    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):
        # parse_known_intermixed_args calls parse_known_args itself (before
        # Python 3.13): those calls parse as usual.
        if self._intermixing:
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m numba_loopopt",
        description="Loop-optimising compiler passes for numba.")
    parser.add_argument("--version", action="version",
                        version=f"numba_loopopt {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND",
                                     parser_class=_IntermixedParser)

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
                    "elided).  Options may come anywhere after the command.")
    explain.add_arguments(explain_parser)
    explain_parser.set_defaults(run=explain.main)

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
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); returns
    the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.run(args)
