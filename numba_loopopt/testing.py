"""IR-dump helpers for testing compiler passes, ours or your own.

:func:`ir_after` compiles a function for one signature and returns the numba
IR as it was right after any named pass of the pipeline (numba's passes and
the loopopt passes alike), together with the compiled dispatcher, so a test
can check the IR and the results in one go.  :func:`check` matches a dump
against FileCheck lines with the ``filecheck`` package::

    dump, cfunc = ir_after(f, (types.int64,), "loopopt_while_to_range")
    assert cfunc(5) == numba.njit(f)(5)
    check(dump, '''
        CHECK: label [[HDR:\\d+]]:
        CHECK-NOT: item
    ''')

Dumps elide large constants *before* any text is made of them: a function
holding a 50 MB global array dumps as fast as one holding a scalar.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Sequence

from numba import njit, types
from numba.core import ir
from numba.core.compiler import Compiler
from numba.core.compiler_machinery import AnalysisPass, register_pass

from .elide import ELIDE_ABOVE  # noqa: F401 - ELIDE_ABOVE is API
from .elide import summary as _summary
from .options import Options
from .pipeline import LoopOptPipeline
from .remarks import METADATA_KEY

_METADATA_KEY = "loopopt_ir_dumps"


#: Type names longer than this are shown as a summary (numba made the text
#: already; this only keeps the dump readable).
_LONG_TYPE = 1000


#: How numba prints each kind of raise, before the exception class.
_RAISES = {ir.StaticRaise: "<static> raise ", ir.DynamicRaise: "<dynamic> raise ",
           ir.StaticTryRaise: "static_try_raise ", ir.DynamicTryRaise: "dynamic_try_raise "}


def format_stmt(stmt: ir.Stmt) -> str:
    """``str(stmt)``, but large constants never become text."""
    if isinstance(stmt, ir.Assign) and isinstance(stmt.value, (ir.Const, ir.Global,
                                                               ir.FreeVar)):
        short = _summary(stmt.value.value)
        if short is not None:
            kind = {ir.Const: "const", ir.Global: "global", ir.FreeVar: "freevar"}[
                type(stmt.value)]
            name = getattr(stmt.value, "name", "")
            inner = f"{name}: {short}" if name else short
            return f"{stmt.target} = {kind}({inner})"
    elif isinstance(stmt, ir.Assign) and isinstance(stmt.value, ir.Expr) \
            and stmt.value.op not in ("call", "binop"):
        # Constants an expression holds itself: static_getitem's index, the
        # leaves of an arrayexpr.  Printed as numba's Expr.__repr__ does.
        shorts = {k: _summary(v) for k, v in stmt.value._kws.items()}
        if any(s is not None for s in shorts.values()):
            args = ", ".join(f"{k}={shorts[k] or v}" for k, v in stmt.value._kws.items())
            return f"{stmt.target} = {stmt.value.op}({args})"
    elif isinstance(stmt, ir.StaticSetItem):
        short = _summary(stmt.index)
        if short is not None:
            return f"{stmt.target}[{short}] = {stmt.value}"
    elif type(stmt) in _RAISES and stmt.exc_class is not None \
            and stmt.exc_args is not None:
        shorts = [_summary(a) for a in stmt.exc_args]
        if any(s is not None for s in shorts):
            args = ", ".join(s or repr(a) for s, a in zip(shorts, stmt.exc_args, strict=True))
            return f"{_RAISES[type(stmt)]}{stmt.exc_class}({args})"
    return str(stmt)


def format_type(ty) -> str:
    """``str(ty)`` for a ``:: type`` annotation, with the literal value of a
    ``Literal`` type and very long type names (tuples of thousands of
    literals) elided as constants are."""
    literal = getattr(ty, "literal_value", None)
    if isinstance(ty, types.Literal) and _summary(literal) is not None:
        return f"Literal[{type(literal).__name__}]({_summary(literal)})"
    text = str(ty)
    if len(text) > _LONG_TYPE:
        return f"<elided {type(ty).__name__} type, {len(text)} characters>"
    return text


def dump_ir(func_ir: ir.FunctionIR, typemap: dict | None = None) -> str:
    """The text of ``func_ir``, one ``label N:`` line per block, statements
    indented, with ``:: type`` after assignments when ``typemap`` is given."""
    lines = []
    for label in sorted(func_ir.blocks):
        lines.append(f"label {label}:")
        for stmt in func_ir.blocks[label].body:
            text = format_stmt(stmt)
            if typemap and isinstance(stmt, ir.Assign) and stmt.target.name in typemap:
                text += f" :: {format_type(typemap[stmt.target.name])}"
            lines.append("    " + text)
    return "\n".join(lines) + "\n"


@register_pass(mutates_CFG=False, analysis_only=True)
class CaptureIR(AnalysisPass):
    """Records the IR text after the pass it is inserted behind."""

    _name = "loopopt_capture_ir"

    def __init__(self):
        AnalysisPass.__init__(self)

    def run_pass(self, state) -> bool:
        dumps = state.metadata.setdefault(_METADATA_KEY, [])
        dumps.append(dump_ir(state.func_ir, state.typemap))
        return False


def _capturing(base: type, pass_name: str) -> type:
    """A subclass of pipeline class ``base`` capturing the IR after ``pass_name``."""

    def define_pipelines(self):
        pipelines = base.define_pipelines(self)
        pm = pipelines[0]
        names = [cls.name() for cls, _ in pm.passes]
        if pass_name not in names:
            raise ValueError(
                f"no pass named {pass_name!r} in the {pm.pipeline_name!r} pipeline; "
                f"its passes are: {', '.join(names)}")
        index = names.index(pass_name)
        pm.passes.insert(index + 1, (CaptureIR, f"capture IR after {pass_name}"))
        pm.finalize()
        return pipelines

    return type(f"Capture{base.__name__}", (base,), {"define_pipelines": define_pipelines})


def ir_after(func, argtypes: Sequence, pass_name: str, *, stock: bool = False,
             options: Options | dict | None = None, **njit_kwargs):
    """Compile ``func`` for ``argtypes`` and return ``(dump, dispatcher)``.

    ``dump`` is the IR right after the first run of the pass registered as
    ``pass_name`` (e.g. ``"loopopt_while_to_range"``, ``"nopython_type_inference"``;
    typed passes' dumps show each assignment's type).  ``stock=True`` uses
    numba's own pipeline instead of :class:`LoopOptPipeline`.  The dispatcher
    has the signature compiled, so the test can run it.
    """
    if stock:
        base = Compiler
    else:
        base = LoopOptPipeline.with_options(Options.coerce(options))
    py_func = getattr(func, "py_func", func)
    disp = njit(pipeline_class=_capturing(base, pass_name), **njit_kwargs)(py_func)
    disp.compile(tuple(argtypes))
    cres = disp.overloads[disp.signatures[-1]]
    dumps = cres.metadata.get(_METADATA_KEY)
    fell_back = any(r.key == "StockFallback" for r in cres.metadata.get(METADATA_KEY, ()))
    if not dumps or fell_back:
        raise RuntimeError(f"pass {pass_name!r} did not run for {py_func.__name__}: "
                           "the optimised pipeline fell back to numba's stock one "
                           "(see numba_loopopt.remarks)")
    return dumps[0], disp


def check(dump: str, checks: str, *, prefix: str = "CHECK") -> None:
    """Match ``dump`` against FileCheck directives with the ``filecheck``
    package; raises ``AssertionError`` with FileCheck's report on a mismatch."""
    checks = textwrap.dedent(checks).strip() + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        check_file = os.path.join(tmp, "checks.txt")
        input_file = os.path.join(tmp, "input.txt")
        with open(check_file, "w") as fh:
            fh.write(checks)
        with open(input_file, "w") as fh:
            fh.write(dump)
        proc = subprocess.run(
            [sys.executable, "-m", "filecheck", check_file,
             "--input-file", input_file, "--check-prefix", prefix],
            capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(
            "FileCheck failed:\n" + proc.stdout + proc.stderr + "\n--- IR dump ---\n"
            + dump)
