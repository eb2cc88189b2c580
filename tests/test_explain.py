"""``python -m numba_loopopt explain``: remarks and the IR around each pass,
clear one-line errors, and large constants elided in every text path."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import types
from numba.core import ir

from numba_loopopt.cli import main
from numba_loopopt.testing import dump_ir, format_stmt, format_type

KERNELS = '''
import numpy as np
import numba
import numba_loopopt


def total(x, n):
    done = np.zeros((), dtype=np.bool_)
    i = 0
    acc = 0.0
    while i < n and not done.item():
        acc += x[i]
        i += 1
    return acc


@numba_loopopt.jit
def compiled(x, n):
    done = np.zeros((), dtype=np.bool_)
    i = 0
    while i < n and not done.item():
        i += 1
    return x[0] + i


@numba.njit
def stock(x, n):
    done = np.zeros((), dtype=np.bool_)
    i = 0
    while i < n and not done.item():
        i += 1
    return x[0] + i


@numba.njit
def never_called(x):
    return x


def with_default(x, n=2):
    return x * n


def typo(x):
    return x + "one"


NOT_A_FUNCTION = 3

compiled(np.arange(4.0), 4)
stock(np.arange(4.0), 4)
'''


@pytest.fixture
def kernels(tmp_path, monkeypatch):
    """A kernel file in a directory of its own, which is the working directory."""
    (tmp_path / "kernels.py").write_text(KERNELS)
    monkeypatch.chdir(tmp_path)
    return "kernels.py"


def explain(capsys, *argv):
    status = main(["explain", *argv])
    out, err = capsys.readouterr()
    return status, out, err


# -- Output ------------------------------------------------------------------


def test_remarks_then_the_diff_of_the_pass_that_changed(kernels, capsys):
    status, out, err = explain(capsys, f"{kernels}:total", "float64[:]", "int64")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "== total(array(float64, 1d, A), int64) =="
    assert lines[1] == "remarks:"
    assert "kernels.py:8: [scalar-replace] ScalarReplaced: 0-d array 'done'" in lines[2]
    assert "kernels.py:11: [while-to-range] Rewritten: while loop is counted" in lines[3]
    assert "[fuse-loops] no change" in lines
    assert "[inline] no change" in lines
    start = lines.index("[while-to-range] changed the IR:")
    assert lines[start + 1:start + 3] == ["--- before loopopt_while_to_range",
                                          "+++ after loopopt_while_to_range"]
    diff = lines[start + 3:]
    # The flag's test leaves the loop: its read (of the scalar that
    # scalar-replace made of the 0-d flag) is removed, a jump replaces the branch.
    assert any(line.startswith("-") and "= $0d.done" in line for line in diff)
    assert any(line.startswith("+") and " jump " in line for line in diff)


def test_one_signature_string_is_the_same_as_one_type_per_argument(kernels, capsys):
    _, separate, _ = explain(capsys, f"{kernels}:total", "float64[::1]", "int64")
    status, together, _ = explain(capsys, f"{kernels}:total", "(float64[::1], int64)")
    _, with_return, _ = explain(capsys, f"{kernels}:total", "float64(float64[::1], int64)")
    assert status == 0
    assert together == separate == with_return
    assert together.startswith("== total(array(float64, 1d, C), int64) ==")


@pytest.mark.parametrize("name", ["compiled", "stock"])
def test_without_types_the_signatures_compiled_at_import_are_explained(kernels, capsys,
                                                                       name):
    status, out, _ = explain(capsys, f"{kernels}:{name}")
    assert status == 0
    assert out.startswith(f"== {name}(array(float64, 1d, C), int64) ==\n")
    # Through LoopOptPipeline whichever decorator compiled it at import.
    assert "[while-to-range] Rewritten" in out
    assert "[while-to-range] changed the IR:" in out


def test_full_prints_both_dumps(kernels, capsys):
    status, out, _ = explain(capsys, f"{kernels}:total", "float64[:]", "int64", "--full")
    assert status == 0
    assert "[while-to-range] changed the IR; before loopopt_while_to_range:" in out
    before, after = out.split("[while-to-range] after loopopt_while_to_range:")
    assert "label 0:" in before and "label 0:" in after
    assert "= $0d.done" in before.split("before loopopt_while_to_range:")[1]
    assert "---" not in out and "+++" not in out


def test_no_ir_prints_remarks_and_which_passes_changed(kernels, capsys):
    status, out, _ = explain(capsys, f"{kernels}:total", "float64[:]", "int64", "--no-ir")
    assert status == 0
    assert "[while-to-range] changed the IR\n" in out
    assert "label" not in out and "+++" not in out


def test_pass_restricts_the_output_to_that_pass(kernels, capsys):
    status, out, _ = explain(capsys, f"{kernels}:total", "float64[:]", "int64",
                             "--pass", "while-to-range")
    assert status == 0
    assert "[while-to-range] changed the IR:" in out
    assert "[fuse-loops]" not in out and "[inline]" not in out


def test_pass_takes_numba_pass_names_too(kernels, capsys):
    status, out, _ = explain(capsys, f"{kernels}:total", "float64[:]", "int64",
                             "--pass", "nopython_type_inference", "--full")
    assert status == 0
    # Typing adds the types: the dump after it has them, the one before not.
    before, after = out.split("after nopython_type_inference:")
    assert ":: int64" in after and ":: int64" not in before


@pytest.mark.parametrize("argv", [
    ["kernels.py:total", "--no-ir", "float64[:]", "int64"],
    ["--no-ir", "kernels.py:total", "float64[:]", "int64"],
    ["kernels.py:total", "float64[:]", "--no-ir", "int64"],
    ["kernels.py:total", "float64[:]", "int64", "--no-ir"],
])
def test_options_may_come_between_the_arguments(kernels, capsys, argv):
    status, out, err = explain(capsys, *argv)
    assert (status, err) == (0, "")
    assert out.startswith("== total(array(float64, 1d, A), int64) ==")
    assert "[while-to-range] changed the IR\n" in out and "+++" not in out


def test_repeated_options_between_the_arguments_keep_their_order(kernels, capsys):
    status, out, _ = explain(capsys, "kernels.py:total", "--pass", "while-to-range",
                             "float64[:]", "--pass", "fuse-loops", "int64", "--no-ir")
    assert status == 0
    assert "[while-to-range] changed the IR" in out and "[fuse-loops] no change" in out
    assert "[inline]" not in out


def test_unknown_options_are_still_rejected(kernels, capsys):
    with pytest.raises(SystemExit) as info:
        main(["explain", "kernels.py:total", "--no-such-option", "float64[:]", "int64"])
    assert info.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


def test_left_out_defaults_are_typed_as_omitted(kernels, capsys):
    status, out, _ = explain(capsys, f"{kernels}:with_default", "float64")
    assert status == 0
    assert out.startswith("== with_default(float64, omitted(default=2)) ==")


def test_a_module_run_as_a_script_from_the_command_line(kernels, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "numba_loopopt", "explain", f"{kernels}:total",
         "float64[:]", "int64"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "[while-to-range] Rewritten" in proc.stdout
    assert "+++ after loopopt_while_to_range" in proc.stdout


# -- Errors: one line, non-zero, naming the culprit -----------------------------


ERRORS = [
    (["missing.py:f", "int64"], "no such file: missing.py"),
    (["syntax.py:f", "int64"], "cannot load syntax.py: SyntaxError at "),
    (["imports.py:f", "int64"],
     "cannot load imports.py: ModuleNotFoundError: No module named 'no_such_module_xyz'"),
    (["kernels.py:nope", "int64"], "kernels.py has no function 'nope'; its functions: "),
    (["kernels.py:NOT_A_FUNCTION", "int64"],
     "kernels.py:NOT_A_FUNCTION is not a function (its type is int)"),
    (["kernels.py:total", "flaot64[:]", "int64"],
     "bad type 'flaot64[:]': NameError: name 'flaot64' is not defined"),
    (["kernels.py:total", "3", "int64"], "bad type '3': it evaluates to int, not a numba type"),
    (["kernels.py:total", "(float64[:], int64"], "bad type '(float64[:], int64': SyntaxError"),
    (["kernels.py:total", "float64[:]"],
     "total(x, n) takes 2 arguments, got 1 type: array(float64, 1d, A)"),
    (["kernels.py:with_default", "int64", "int64", "int64"],
     "with_default(x, n) takes 1 to 2 arguments, got 3 types"),
    (["kernels.py:typo", "float64"],
     "compiling typo(float64) failed at "),
    (["kernels.py:never_called"],
     "never_called has no compiled signatures: give the types of its arguments (x)"),
    (["kernels.py:total"], "total has no compiled signatures"),
    (["kernels.py"], "expected FILE.py:FUNC, got 'kernels.py'"),
    # FILE.py:FUNC forgotten: the types' colons do not make a file name of them.
    (["(float64[:], float64[:], float64[:])"],
     "expected FILE.py:FUNC, got '(float64[:], float64[:], float64[:])' "
     "(argument types come after FILE.py:FUNC)"),
    (["float64[:]", "int64"],
     "expected FILE.py:FUNC, got 'float64[:]' (argument types come after FILE.py:FUNC)"),
    (["int64"], "expected FILE.py:FUNC, got 'int64'"),
    (["kernels.py:1st", "int64"], "'1st' is not a function name (give FILE.py:FUNC)"),
    (["kernels.py:total", "float64[:]", "int64", "--pass", "nope"],
     "no pass named 'nope' in the pipeline; the loopopt passes are inline, "
     "scalar-replace, while-to-range, fuse-loops, forward-stores, fuse-reduce"),
]


@pytest.mark.parametrize(("argv", "message"), ERRORS, ids=[e[1][:30] for e in ERRORS])
def test_errors_are_one_line(kernels, tmp_path, capsys, argv, message):
    (tmp_path / "syntax.py").write_text("def f(x:\n    return x\n")
    (tmp_path / "imports.py").write_text("import no_such_module_xyz\n")
    status, out, err = explain(capsys, *argv)
    assert status == 1
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("numba_loopopt explain: ")
    assert message in err, err


def test_typing_errors_name_the_line_and_the_problem(kernels, capsys):
    _, _, err = explain(capsys, "kernels.py:typo", "float64")
    assert "kernels.py:45: TypingError: No implementation of function" in err
    assert ">>> add(float64, " in err


# -- Large constants are elided before any text is made of them -----------------


BIG_KERNEL = '''
import os
import traceback

import numpy as np


class NeverPrinted(np.ndarray):
    """Refuses to become text inside numba_loopopt's dumps and explain."""

    def __repr__(self):
        # Who asked for the text, past numba's ir.Stmt.__str__ methods?
        for frame in reversed(traceback.extract_stack()[:-1]):
            if not frame.filename.endswith(os.path.join("numba", "core", "ir.py")):
                break
        if "numba_loopopt" in frame.filename:
            raise AssertionError(f"a large constant became text in {frame.name}")
        # numba's lowering makes a text of every statement it lowers.
        return "NeverPrinted(...)"

    __str__ = __repr__


TABLE = np.zeros(6_250_000).view(NeverPrinted)   # 50 MB
MESSAGE = "x" * 10_000


def lookup(n):
    done = np.zeros((), dtype=np.bool_)
    i = 0
    acc = 0.0
    while i < n and not done.item():
        acc += TABLE[i]
        i += 1
    if acc < 0:
        raise ValueError(MESSAGE)
    return acc
'''


def test_a_50_mb_global_is_elided_in_explain(tmp_path, monkeypatch, capsys):
    (tmp_path / "big.py").write_text(BIG_KERNEL)
    monkeypatch.chdir(tmp_path)
    status, out, err = explain(capsys, "big.py:lookup", "int64", "--full")
    assert (status, err) == (0, "")
    assert "[while-to-range] Rewritten" in out
    elided = "global(TABLE: <elided ndarray float64 shape=(6250000,) 50000000 bytes>)"
    assert out.count(elided) == 4          # before and after each of the two passes
    assert "raise <class 'ValueError'>(<elided str of 10000 items>)" in out
    assert "xxxxxxxxxx" not in out
    assert len(out) < 20_000


def test_remarks_elide_large_constants(tmp_path, monkeypatch, capsys):
    source = ("def count(n):\n    i = 0\n    while i < len(" + repr("a" * 10_000)
              + "):\n        i += 1\n    return i\n")
    (tmp_path / "literal.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    status, out, _ = explain(capsys, "literal.py:count", "int64", "--no-ir")
    assert status == 0 and "missed BoundNotInvariant" in out
    assert "aaaaaaaaaa" not in out


def _stmt(value, name="t"):
    loc = ir.Loc("f.py", 1)
    return ir.Assign(value, ir.Var(ir.Scope(None, loc), name, loc), loc)


LOC = ir.Loc("f.py", 1)


def test_small_constants_print_as_numba_prints_them():
    for value in (ir.Const((1, 2.5, "a"), LOC), ir.Global("g", np.arange(3.0), LOC),
                  ir.Const(10 ** 40, LOC)):
        assert format_stmt(_stmt(value)) == str(_stmt(value))
    index = ir.Expr.static_getitem(ir.Var(None, "a", LOC), (0, 1), None, LOC)
    assert format_stmt(_stmt(index)) == str(_stmt(index))
    raise_ = ir.StaticRaise(ValueError, ("short",), LOC)
    assert format_stmt(raise_) == str(raise_)


def test_huge_ints_are_elided_not_printed():
    # str() of a 5000-digit int raises ValueError in Python >= 3.11.
    text = format_stmt(_stmt(ir.Global("HUGE", 10 ** 5000, LOC)))
    assert text == "t = global(HUGE: <elided int of 16610 bits>)"


def test_raises_with_large_arguments_are_elided():
    stmt = ir.StaticRaise(ValueError, ("x" * 1000, 3), LOC)
    assert format_stmt(stmt) == ("<static> raise <class 'ValueError'>"
                                 "(<elided str of 1000 items>, 3)")
    stmt = ir.StaticTryRaise(KeyError, (tuple(range(100)),), LOC)
    assert format_stmt(stmt) == "static_try_raise <class 'KeyError'>(<elided tuple of 100 items>)"


def test_constants_inside_expressions_are_elided():
    a = ir.Var(None, "a", LOC)
    index = ir.Expr.static_getitem(a, tuple(range(100)), None, LOC)
    assert format_stmt(_stmt(index)) == (
        "t = static_getitem(value=a, index=<elided tuple of 100 items>, index_var=None, "
        "fn=<built-in function getitem>)")
    tree = ir.Expr(op="arrayexpr", loc=LOC, expr=(np.add, [a, ir.Const("y" * 100, LOC)]),
                   ty=types.float64[:])
    assert "<elided tuple of 2 items>" in format_stmt(_stmt(tree))
    setitem = ir.StaticSetItem(a, tuple(range(100)), ir.Var(None, "k", LOC),
                               ir.Var(None, "v", LOC), LOC)
    assert format_stmt(setitem) == "a[<elided tuple of 100 items>] = v"


def test_containers_holding_a_large_constant_are_elided():
    text = format_stmt(_stmt(ir.Global("D", {"table": np.zeros(1000)}, LOC)))
    assert text == "t = global(D: <elided dict of 1 items>)"


def test_types_of_large_literals_are_elided():
    assert format_type(types.literal("z" * 100)) == "Literal[str](<elided str of 100 items>)"
    assert format_type(types.literal(3)) == "Literal[int](3)"
    many = types.Tuple([types.literal(i) for i in range(1000)])
    assert format_type(many).startswith("<elided Tuple type, ")
    assert format_type(types.UniTuple(types.int64, 1000)) == "UniTuple(int64 x 1000)"


def test_dump_ir_elides_literal_types_in_annotations():
    x = ir.Var(None, "s", LOC)
    block = ir.Block(ir.Scope(None, LOC), LOC)
    block.body = [ir.Assign(ir.Const("q" * 500, LOC), x, LOC), ir.Return(x, LOC)]
    func_ir = type("FakeIR", (), {"blocks": {0: block}})()
    dump = dump_ir(func_ir, {"s": types.literal("q" * 500)})
    assert dump == textwrap.dedent("""\
        label 0:
            s = const(<elided str of 500 items>) :: Literal[str](<elided str of 500 items>)
            return s
    """)
