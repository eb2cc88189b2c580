"""analysis.effects: the one whitelist of harmless calls and constructs, typed
(fuse-reduce's may_write_memory) and untyped (fuse-loops' loop bodies)."""

from __future__ import annotations

import operator
from types import SimpleNamespace

import numpy as np
from numba.core import ir, types
from numba.core.compiler import run_frontend

from numba_loopopt.analysis import effects
from numba_loopopt.analysis.defuse import DefUse
from numba_loopopt.analysis.effects import LOOP, NO_RAISE, TYPED, known_call
from numba_loopopt.analysis.loops import LoopForest

# The tables as the two passes had them before they were merged: the merged
# whitelist must say exactly the same.
OLD_LOOP_CALLS = {
    "builtins": frozenset({"abs", "min", "max", "float", "int", "bool", "round", "len",
                           "complex", "pow", "range"}),
    "numpy": frozenset({
        "sqrt", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sin", "cos",
        "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh", "abs",
        "absolute", "fabs", "floor", "ceil", "trunc", "rint", "sign", "power", "hypot",
        "maximum", "minimum", "fmax", "fmin", "isnan", "isinf", "isfinite", "square",
        "cbrt", "float64", "float32", "int64", "int32", "int8", "int16", "uint8",
        "uint64", "bool_", "complex128", "real", "imag", "conj", "conjugate", "add",
        "subtract", "multiply", "negative"}),
}
OLD_SCALAR_SAFE = frozenset({"abs", "min", "max", "float", "int", "bool", "round", "complex"})
OLD_PURE_BUILTINS = frozenset({"len", "abs", "min", "max", "float", "int", "bool", "round",
                               "complex", "pow", "range", "divmod", "print"})
OLD_PURE_NUMPY_FUNCTIONS = effects.FRESH_ALLOCATORS | frozenset({
    "sum", "prod", "mean", "min", "max", "amin", "amax", "any", "all", "argmin",
    "argmax", "std", "var", "median", "cumsum", "cumprod", "dot", "where", "sort",
    "argsort", "ravel", "reshape", "transpose", "linspace", "asarray", "isclose",
    "allclose", "array_equal", "count_nonzero", "nansum", "nanmax", "nanmin",
    "nanmean", "shape", "size", "ndim", "float64", "float32", "int64", "int32",
    "int16", "int8", "uint64", "uint32", "uint16", "uint8", "bool_", "complex128",
    "complex64", "intp",
})


def _names(module: str, use: str) -> frozenset[str]:
    return frozenset(n for n in effects.CALLS[module] if known_call(module, n, use))


def test_the_loop_whitelist_is_the_one_fuse_loops_had():
    for module, names in OLD_LOOP_CALLS.items():
        assert _names(module, LOOP) == names, module
    assert effects.SCALAR_SAFE == OLD_SCALAR_SAFE == _names("builtins", NO_RAISE)
    # Every numpy function a loop may call raised nothing on numbers before.
    assert _names("numpy", NO_RAISE) == OLD_LOOP_CALLS["numpy"]


def test_the_typed_whitelist_is_the_one_fuse_reduce_had():
    assert effects.PURE_BUILTINS == OLD_PURE_BUILTINS
    # Names added to the typed list are ufuncs, which pure_call decides by
    # their inputs before it looks at the list.
    added = effects.PURE_NUMPY_FUNCTIONS - OLD_PURE_NUMPY_FUNCTIONS
    assert added and all(isinstance(getattr(np, n), np.ufunc) for n in added), sorted(
        n for n in added if not isinstance(getattr(np, n), np.ufunc))
    assert OLD_PURE_NUMPY_FUNCTIONS <= effects.PURE_NUMPY_FUNCTIONS


def test_known_call_denies_by_default():
    assert known_call("math", "sqrt", TYPED) and known_call("math", "sqrt", LOOP)
    assert not known_call("math", "sqrt", NO_RAISE)  # math.sqrt(-1) raises
    assert not known_call("numpy", "fill", TYPED)
    assert not known_call("os", "remove", LOOP)
    assert not known_call(None, "f", LOOP)
    assert known_call("builtins", "print", TYPED) and not known_call("builtins", "print", LOOP)
    assert not known_call("numpy", "real", TYPED) and known_call("numpy", "real", LOOP)


# --- untyped IR: expressions, calls, loop bodies --------------------------------


class Facts:
    """TypeFacts from a given table (no type inference)."""

    def __init__(self, table):
        self.typemap = table

    def of(self, name):
        return self.typemap.get(name)


FLAGS = SimpleNamespace(error_model="python", boundscheck=False)
NUMPY_FLAGS = SimpleNamespace(error_model="numpy", boundscheck=False)


def _assign(func, op):
    func_ir = run_frontend(func)
    for block in func_ir.blocks.values():
        for stmt in block.body:
            if isinstance(stmt, ir.Assign) and isinstance(stmt.value, ir.Expr) \
                    and stmt.value.op == op:
                return func_ir, stmt
    raise AssertionError(op)


def divide(x, y):
    return x / y


def test_a_division_may_raise_only_under_python_error_model():
    func_ir, stmt = _assign(divide, "binop")
    facts = Facts({"x": types.float64, "y": types.float64})
    du = DefUse(func_ir.blocks)
    assert effects.expr_effect(func_ir, du, facts, FLAGS, stmt.value, stmt) == (
        None, "a division")
    assert effects.expr_effect(func_ir, du, facts, NUMPY_FLAGS, stmt.value, stmt) == (
        None, None)


def test_an_operator_on_an_unknown_type_is_denied():
    func_ir, stmt = _assign(divide, "binop")
    facts = Facts({"x": types.float64, "y": None})
    why, raises = effects.expr_effect(func_ir, DefUse(func_ir.blocks), facts, FLAGS,
                                      stmt.value, stmt)
    assert isinstance(why, effects.Denied) and not why.ufunc_output
    assert "may run code" in why.message and raises == "an operator"


def ufunc_with_output(a, m):
    return np.sqrt(a, m)


def test_a_ufunc_given_an_output_array_is_denied_as_such():
    func_ir, stmt = _assign(ufunc_with_output, "call")
    facts = Facts({"a": types.float64[:], "m": types.float64[:]})
    why, raises = effects.call_effect(func_ir, DefUse(func_ir.blocks), facts,
                                      stmt.value, stmt)
    assert why.ufunc_output and "argument 2 ('m')" in why.message
    assert raises == "a call"


def sqrt_of(x):
    return np.sqrt(x)


def test_a_whitelisted_ufunc_on_a_number_is_harmless():
    func_ir, stmt = _assign(sqrt_of, "call")
    facts = Facts({"x": types.float64})
    assert effects.call_effect(func_ir, DefUse(func_ir.blocks), facts, stmt.value,
                               stmt) == (None, None)


def loop_body(a, out, n):
    for i in range(n):
        out[i] = a[i] * 2.0
        print(i)


def test_body_effects_collects_reads_writes_and_denials():
    func_ir = run_frontend(loop_body)
    du = DefUse(func_ir.blocks)
    (loop,) = LoopForest(func_ir.blocks).loops
    facts = Facts({"a": types.float64[:], "out": types.float64[:], "n": types.int64,
                   "i": types.int64})
    for stmt in (s for b in func_ir.blocks.values() for s in b.body):
        if isinstance(stmt, ir.Assign) and stmt.target.name not in facts.typemap:
            facts.typemap[stmt.target.name] = (
                None if isinstance(stmt.value, ir.Global) else types.float64)
    eff = effects.body_effects(func_ir, loop.body - {loop.header}, du, facts, FLAGS)
    assert [w[0] for w in eff.writes] == ["out"]
    assert [r[0] for r in eff.reads] == ["a"]
    # run_frontend leaves print a call (numba's rewrite makes it a Print
    # statement later): a call of a function off the loop whitelist.
    assert eff.impure is not None and "builtins.print" in eff.impure.message
    assert eff.may_raise  # the denied call


def test_boundscheck_on_follows_the_flag_and_the_environment(monkeypatch):
    monkeypatch.setattr(effects.config, "BOUNDSCHECK", None)
    assert effects.boundscheck_on(SimpleNamespace(boundscheck=True))
    assert not effects.boundscheck_on(SimpleNamespace(boundscheck=False))
    monkeypatch.setattr(effects.config, "BOUNDSCHECK", 1)
    assert effects.boundscheck_on(SimpleNamespace(boundscheck=False))


def test_dividing_operators():
    assert operator.truediv in effects.DIVIDING and operator.add not in effects.DIVIDING
