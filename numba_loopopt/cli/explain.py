"""What the passes did to one function: ``python -m numba_loopopt explain``.

::

    python -m numba_loopopt explain kernels.py:total "float64[:]" int64
    python -m numba_loopopt explain kernels.py:total "(float64[:], int64)"
    python -m numba_loopopt explain kernels.py:total     # its compiled signatures
    python -m numba_loopopt explain kernels.py:total --no-ir "float64[:]" int64

loads ``kernels.py`` by path (it need not be importable), compiles ``total``
(a plain function, or one decorated with ``numba.njit`` or
``numba_loopopt.jit``) through :class:`~numba_loopopt.LoopOptPipeline` for the
given argument types, and prints the remarks, then the numba IR before and
after each pass that changed it, as a unified diff (``--full`` prints both
dumps).  Without argument types it explains every signature the module
compiled while it ran.  Options may come anywhere after ``explain``.

The IR is captured by :class:`numba_loopopt.testing.CaptureIR` around the
passes, and dumped by :func:`numba_loopopt.testing.dump_ir`, which elides large
constants before any text is made of them.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType

from numba.core import sigutils, types, typing
from numba.core.registry import CPUDispatcher
from numba.extending import is_jitted

from ..passbase import LoopOptPass
from ..pipeline import LoopOptPipeline
from ..remarks import METADATA_KEY, Remark
from ..testing import _METADATA_KEY as _DUMPS_KEY
from ..testing import CaptureIR

#: Where the explaining pipeline records which capture is which.
_PLAN_KEY = "loopopt_explain_plan"


class ExplainError(Exception):
    """A problem with what ``explain`` was asked; the message is one line."""


# -- Finding the function -----------------------------------------------------


def load_module(path: str) -> ModuleType:
    """Run the file at ``path`` as a fresh module, as ``python path`` would
    (its directory first on ``sys.path`` while it runs), without importing
    it by name."""
    if not os.path.exists(path):
        raise ExplainError(f"no such file: {path}")
    if not os.path.isfile(path):
        raise ExplainError(f"not a file: {path}")
    stem = os.path.splitext(os.path.basename(path))[0]
    # A private name: never replace a module the process already imported.
    name = "_loopopt_explain_" + re.sub(r"\W", "_", stem)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ExplainError(f"cannot load {path}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    saved_path = list(sys.path)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        where = f"{exc.filename or path}:{exc.lineno}" if exc.lineno else path
        raise ExplainError(f"cannot load {path}: SyntaxError at {where}: {exc.msg}") from None
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        raise ExplainError(f"cannot load {path}: {_one_line(exc)}") from None
    finally:
        sys.path[:] = saved_path
    return module


def find_function(module: ModuleType, path: str, name: str):
    """``(py_func, dispatcher or None)`` for the top-level ``name``."""
    if not name.isidentifier():
        raise ExplainError(f"{name!r} is not a function name (give FILE.py:FUNC)")
    if not hasattr(module, name):
        found = sorted(n for n, v in vars(module).items()
                       if not n.startswith("_") and (is_jitted(v) or inspect.isfunction(v))
                       and getattr(v, "__module__", None) == module.__name__)
        hint = f"; its functions: {', '.join(found)}" if found else ""
        raise ExplainError(f"{path} has no function {name!r}{hint}")
    value = getattr(module, name)
    if is_jitted(value) and isinstance(value, CPUDispatcher):
        return value.py_func, value
    if inspect.isfunction(value):
        return value, None
    raise ExplainError(f"{path}:{name} is not a function (its type is "
                       f"{type(value).__name__})")


# -- Argument types -----------------------------------------------------------


def _parse_type(text: str):
    try:
        value = sigutils._parse_signature_string(text)
    except Exception as exc:  # noqa: BLE001 - eval of the user's text
        raise ExplainError(f"bad type {text!r}: {_one_line(exc)}") from None
    return value


def _check_type(text: str, value) -> types.Type:
    if not isinstance(value, types.Type):
        raise ExplainError(f"bad type {text!r}: it evaluates to {type(value).__name__}, "
                           "not a numba type (e.g. float64[:], int64, UniTuple(float64, 3))")
    return value


def parse_argtypes(texts: Sequence[str]) -> tuple[types.Type, ...]:
    """Argument types from the command line: one numba type string per
    argument (``"float64[:]" int64``), or one signature string
    (``"(float64[:], int64)"`` or ``"float64(float64[:], int64)"``)."""
    if len(texts) == 1:
        value = _parse_type(texts[0])
        if isinstance(value, tuple):
            return tuple(_check_type(texts[0], v) for v in value)
        if isinstance(value, typing.Signature):
            return tuple(_check_type(texts[0], v) for v in value.args)
        return (_check_type(texts[0], value),)
    return tuple(_check_type(text, _parse_type(text)) for text in texts)


def complete_argtypes(py_func, argtypes: tuple) -> tuple:
    """``argtypes`` checked against ``py_func``'s positional parameters, with
    ``types.Omitted(default)`` for each defaulted one left out, as numba
    types a call that leaves it out.  Raises :class:`ExplainError` when the
    count does not fit."""
    params = list(inspect.signature(py_func).parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return tuple(argtypes)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if len(required) <= len(argtypes) <= len(positional):
        return tuple(argtypes) + tuple(types.Omitted(p.default)
                                       for p in positional[len(argtypes):])
    takes = (f"{len(positional)}" if len(required) == len(positional)
             else f"{len(required)} to {len(positional)}")
    names = ", ".join(p.name for p in positional)
    given = ", ".join(str(t) for t in argtypes) or "none"
    raise ExplainError(f"{py_func.__name__}({names}) takes {takes} argument"
                       f"{'' if takes == '1' else 's'}, got {len(argtypes)} "
                       f"type{'' if len(argtypes) == 1 else 's'}: {given}")


# -- Compiling with the IR captured around the passes -------------------------


@dataclass
class PassReport:
    """The IR right before and right after one run of a pass."""

    name: str
    """numba's registry name, e.g. ``loopopt_while_to_range``."""
    label: str
    """The pass's name in remarks (``while-to-range``), or ``name``."""
    before: str | None = None
    after: str | None = None

    @property
    def ran(self) -> bool:
        return self.after is not None

    @property
    def changed(self) -> bool:
        return self.ran and self.before != self.after


@dataclass
class Explanation:
    """What compiling one function for one signature did."""

    func_name: str
    argtypes: tuple
    remarks: list[Remark] = field(default_factory=list)
    passes: list[PassReport] = field(default_factory=list)
    fell_back: bool = False
    """The optimised pipeline failed and numba's stock one compiled the function."""
    object_mode: bool = False

    @property
    def title(self) -> str:
        return f"{self.func_name}({', '.join(str(t) for t in self.argtypes)})"


def _label(cls) -> str:
    return cls.pass_name if issubclass(cls, LoopOptPass) else cls.name()


def _explaining(base: type, wanted: Sequence[str] | None) -> type:
    """A subclass of pipeline class ``base`` capturing the IR right before and
    right after each wanted pass (by default every loopopt pass)."""

    def define_pipelines(self):
        pipelines = base.define_pipelines(self)
        pm = pipelines[0]
        classes = [cls for cls, _ in pm.passes]
        if wanted is None:
            targets = {cls for cls in classes if issubclass(cls, LoopOptPass)}
        else:
            targets = {cls for cls in classes if cls.name() in wanted or _label(cls) in wanted}
            unknown = [w for w in wanted if not any(w in (c.name(), _label(c)) for c in classes)]
            if unknown:
                loopopt = [_label(c) for c in classes if issubclass(c, LoopOptPass)]
                raise _UnknownPass(
                    f"no pass named {unknown[0]!r} in the pipeline; the loopopt passes "
                    f"are {', '.join(loopopt) or 'switched off'}, and numba's passes "
                    f"are named as in docs/architecture.rst (e.g. "
                    f"nopython_type_inference)")
        plan, passes = [], []
        for cls, desc in pm.passes:
            if cls in targets:
                passes.append((CaptureIR, f"explain: IR before {cls.name()}"))
                plan.append((cls.name(), _label(cls), "before"))
            passes.append((cls, desc))
            if cls in targets:
                passes.append((CaptureIR, f"explain: IR after {cls.name()}"))
                plan.append((cls.name(), _label(cls), "after"))
        pm.passes = passes
        pm.finalize()
        self.state.metadata[_PLAN_KEY] = plan
        return pipelines

    return type(f"Explain{base.__name__}", (base,), {"define_pipelines": define_pipelines})


class _UnknownPass(ValueError):
    pass


def _pipeline_of(dispatcher) -> type:
    """The LoopOptPipeline class (with its options) to compile through."""
    current = getattr(getattr(dispatcher, "_compiler", None), "pipeline_class", None)
    if isinstance(current, type) and issubclass(current, LoopOptPipeline):
        return current
    return LoopOptPipeline


def _reports(plan, dumps) -> list[PassReport]:
    reports: list[PassReport] = []
    # Captures run in plan order; a pipeline that failed part-way leaves a prefix.
    dumps = list(dumps)[:len(plan)]
    dumps += [None] * (len(plan) - len(dumps))
    for (name, label, when), dump in zip(plan, dumps, strict=True):
        if when == "before":
            reports.append(PassReport(name, label, before=dump))
        else:
            reports[-1].after = dump
    return reports


def explain(func, argtypes: Sequence, *, passes: Sequence[str] | None = None,
            pipeline_class: type | None = None) -> Explanation:
    """Compile ``func`` (a function or numba dispatcher) for ``argtypes``
    through ``LoopOptPipeline`` and return its remarks and the IR around each
    pass.

    ``passes`` names the passes to capture (remark names such as
    ``"while-to-range"`` or registry names such as ``"nopython_type_inference"``;
    default: every loopopt pass).  ``pipeline_class`` defaults to the
    dispatcher's own when it is a ``LoopOptPipeline`` (keeping its options),
    else ``LoopOptPipeline``.  The function's own dispatcher is left alone: a
    fresh one compiles.  numba's errors propagate.
    """
    py_func = getattr(func, "py_func", func)
    base = pipeline_class or _pipeline_of(func)
    disp = CPUDispatcher(py_func=py_func, locals=dict(getattr(func, "locals", {}) or {}),
                         targetoptions=dict(getattr(func, "targetoptions", {"nopython": True})),
                         pipeline_class=_explaining(base, passes))
    disp.compile(tuple(argtypes))
    cres = disp.overloads[disp.signatures[-1]]
    metadata = cres.metadata or {}
    found = list(metadata.get(METADATA_KEY, ()))
    result = Explanation(py_func.__name__, tuple(disp.signatures[-1]), remarks=found,
                         fell_back=any(r.key == "StockFallback" for r in found),
                         object_mode=bool(cres.objectmode))
    if _PLAN_KEY in metadata:
        result.passes = _reports(metadata[_PLAN_KEY], metadata.get(_DUMPS_KEY, ()))
    return result


# -- Printing -----------------------------------------------------------------


def render(explanation: Explanation, *, ir: bool = True, full: bool = False,
           context: int = 3, passes: Sequence[str] | None = None) -> str:
    """The text ``explain`` prints for one signature."""
    out = [f"== {explanation.title} =="]
    shown = explanation.remarks
    if passes is not None:
        shown = [r for r in shown if r.pass_name in passes or r.pass_name == "loopopt"
                 or any(p.label == r.pass_name and p.name in passes
                        for p in explanation.passes)]
    out.append("remarks:" if shown else "remarks: none")
    out += [f"  {remark}" for remark in shown]
    if explanation.object_mode:
        out.append("compiled in object mode: the loopopt passes do not run there")
        return "\n".join(out) + "\n"
    if explanation.fell_back:
        out.append("note: compiling the optimised IR failed and numba's stock pipeline "
                   "compiled the function; the IR below is what the passes produced "
                   "and what was thrown away")
    for report in explanation.passes:
        if not report.ran:
            out.append(f"[{report.label}] did not run (the pipeline stopped before it)")
        elif not report.changed:
            out.append(f"[{report.label}] no change")
        elif not ir:
            out.append(f"[{report.label}] changed the IR")
        elif full:
            out.append(f"[{report.label}] changed the IR; before {report.name}:")
            out.append(report.before.rstrip("\n"))
            out.append(f"[{report.label}] after {report.name}:")
            out.append(report.after.rstrip("\n"))
        else:
            out.append(f"[{report.label}] changed the IR:")
            out += difflib.unified_diff(
                report.before.splitlines(), report.after.splitlines(),
                f"before {report.name}", f"after {report.name}", n=context, lineterm="")
    return "\n".join(out) + "\n"


# -- Command line (used by ``python -m numba_loopopt explain``) ----------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _one_line(exc: BaseException) -> str:
    """``Type: message`` on one line: for numba's multi-line errors, the first
    line that says what went wrong, with what it introduces."""
    lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines()]
    lines = [line for line in lines
             if line and not line.startswith(("Failed in ", "- Resolution failure"))]
    text = lines[0] if lines else ""
    if text.endswith(":") and len(lines) > 1:
        text += " " + lines[1]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _compile_error(exc: Exception, title: str) -> str:
    loc = getattr(exc, "loc", None)
    where = f" at {loc.filename}:{loc.line}" if getattr(loc, "line", None) else ""
    return f"compiling {title} failed{where}: {_one_line(exc)}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="FILE.py:FUNC",
                        help="the file (loaded by path) and its top-level function")
    parser.add_argument("argtypes", metavar="ARGTYPES", nargs="*",
                        help='numba argument types, one per argument ("float64[:]" '
                             'int64) or one signature ("(float64[:], int64)"); '
                             "default: the signatures FUNC compiled when FILE.py ran")
    parser.add_argument("--pass", dest="passes", metavar="NAME", action="append",
                        help="only this pass (repeatable): a loopopt pass "
                             "(while-to-range, ...) or any pass of numba's pipeline "
                             "by name (nopython_type_inference, ...)")
    parser.add_argument("--full", action="store_true",
                        help="print the whole IR before and after each pass that "
                             "changed it, not a diff")
    parser.add_argument("--no-ir", dest="ir", action="store_false",
                        help="print only the remarks and which passes changed the IR")
    parser.add_argument("-U", "--context", type=int, default=3, metavar="N",
                        help="lines of context in the diffs (default 3)")
    parser.add_argument("--traceback", action="store_true",
                        help="on a compile error, show numba's whole error and traceback")


def _split_target(target: str) -> tuple[str, str]:
    """``(path, function name)`` of the first argument, checked before
    anything is loaded: argument types given first (their ``[:]`` has a
    colon too) must not read as a file name."""
    path, sep, name = target.rpartition(":")
    if not (sep and path and name) or not (path.endswith(".py") or os.path.isfile(path)):
        hint = (" (argument types come after FILE.py:FUNC)"
                if any(c in target for c in "[](),") else "")
        raise ExplainError(f"expected FILE.py:FUNC, got {target!r}{hint}")
    if not name.isidentifier():
        raise ExplainError(f"{name!r} is not a function name (give FILE.py:FUNC)")
    return path, name


def run(args: argparse.Namespace) -> int:
    path, name = _split_target(args.target)
    if args.context < 0:
        raise ExplainError("--context must be >= 0")
    module = load_module(path)
    py_func, dispatcher = find_function(module, path, name)
    if args.argtypes:
        signatures = [complete_argtypes(py_func, parse_argtypes(args.argtypes))]
    elif dispatcher is not None and dispatcher.signatures:
        signatures = [tuple(sig) for sig in dispatcher.signatures]
    else:
        params = ", ".join(inspect.signature(py_func).parameters)
        raise ExplainError(
            f"{name} has no compiled signatures: give the types of its arguments "
            f"({params}), e.g. python -m numba_loopopt explain {args.target} "
            f"\"float64[:]\" int64")
    func = dispatcher if dispatcher is not None else py_func
    for number, argtypes in enumerate(signatures):
        title = f"{name}({', '.join(str(t) for t in argtypes)})"
        try:
            explanation = explain(func, argtypes, passes=args.passes)
        except _UnknownPass as exc:
            raise ExplainError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - numba's errors, as one line
            if args.traceback:
                raise
            raise ExplainError(_compile_error(exc, title)) from None
        if number:
            print()
        print(render(explanation, ir=args.ir, full=args.full, context=args.context,
                     passes=args.passes), end="")
    return 0


def main(args: argparse.Namespace) -> int:
    try:
        return run(args)
    except ExplainError as exc:
        print(f"numba_loopopt explain: {exc}", file=sys.stderr)
        return 1
