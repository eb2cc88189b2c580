"""Differential fuzzing of the inline pass.

A hypothesis strategy writes the *source text* of a module with 1-4 small
``@njit`` helpers and a caller.  Helpers take float, int and array arguments,
some with defaults, and are called positionally, by keyword and with defaults
left out; they call helpers defined after them, recurse into themselves or
into a partner (mutual recursion, with a base case on a decreasing depth
argument), raise ``ValueError`` on some inputs, divide by arguments that are
zero in some argument sets, mutate an array argument (the argument sets pass
the same array twice sometimes), loop, and return a float, an int, a tuple or
nothing.  Some compile with other flags than the caller (``error_model='numpy'``,
``boundscheck=True``, ``fastmath=True``, ``no_rewrites=True``, and the harmless
``nogil``, ``forceinline``, ``debug``), some through ``numba.jit`` rather than
``numba.njit``, some with an explicit signature, some through
``numba_loopopt.jit`` themselves.  Rarer families: a call inside
``try``/``except``, a ``*args`` helper, a ``None`` default, a closure helper, a
helper in another module with a global of the same name as the caller's, and
two loops calling helpers (inlining feeding loop fusion).

Values numba freezes when it compiles (family ``frozen``): helpers read module
globals (a float, an int, a small array), a closure helper whose cell changes
and the other module's ``K``.  Such a program first calls some helpers through
a stock ``numba.njit`` wrapper (family ``inherit``: a wrapper with
``error_model='numpy'`` or ``fastmath=True``, whose flags the helpers it
compiles inherit), so that they compile with the values of then, changes the
values, compiles and compares the caller, changes them again and compiles and
compares a second caller with the same body (which finds the helpers stock
numba compiled while compiling the first).  Family ``objmode``: a call of an
object-mode helper (``numba.jit(forceobj=True)``), which stock numba refuses
to type.

The module is written twice to real files: once with every helper compiled by
stock ``numba.njit`` and the caller compiled by ``numba.njit`` (the reference),
once as generated, with the caller compiled by ``numba_loopopt.jit`` (default
options, or ``options={"inline": {"max_depth": k}}`` for k in 0..4).  Both run
on a fixed list of argument sets and every outcome is compared bit for bit,
the way ``conftest.run_both`` compares them: return value, the arguments' final
contents, exception types.  A pass that rolled itself back (``InternalError``)
or whose rewrite failed to compile (``StockFallback``) is a failure too.

Runs:

* default (CI): ``pytest tests/test_fuzz_inline.py`` -- 20 derandomised
  programs, well under a minute;
* long: ``LOOPOPT_FUZZ_EXAMPLES=1000 pytest -m slow tests/test_fuzz_inline.py``
  (``LOOPOPT_FUZZ_SEED``, ``LOOPOPT_FUZZ_LOG=path.jsonl``,
  ``LOOPOPT_FUZZ_KEEP_GOING=1`` and ``LOOPOPT_FUZZ_SKIP=try,star,...`` as in
  ``test_fuzz_fuse_loops.py``: by default the families in ``KNOWN_BUGS`` are
  skipped, ``LOOPOPT_FUZZ_SKIP=none`` runs them all; ``-s`` prints the
  statistics).  The known bugs each have a minimal reproducer at the end of
  this file, as a strict xfail.

Stock numba itself aborts at run time ("unresolved symbol") when helpers with
different flags recurse into each other; such programs are counted, not
compared.
"""

from __future__ import annotations

import atexit
import copy
import dataclasses
import hashlib
import importlib.util
import itertools
import json
import os
import shutil
import sys
import tempfile
from collections import Counter

import numpy as np
import pytest
from conftest import difference, run_both
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from numba import njit

import numba_loopopt as lo

CRASH_KEYS = {"InternalError", "StockFallback"}

FAMILIES = ("try", "star", "none", "closure", "lib", "fuse", "raise", "sig", "lojit",
            "mutual", "self", "fanout", "frozen", "inherit", "objmode", "numbajit")

#: Families that hit a known, not yet fixed bug (each has a strict xfail
#: reproducer below): skipped unless LOOPOPT_FUZZ_SKIP says otherwise
#: (LOOPOPT_FUZZ_SKIP=none runs every family).  Remove a family from here when
#: its reproducers start passing.
KNOWN_BUGS: dict[str, str] = {}

_SKIP_ENV = os.environ.get("LOOPOPT_FUZZ_SKIP")
SKIP = (frozenset(KNOWN_BUGS) if _SKIP_ENV is None else
        frozenset(x.strip() for x in _SKIP_ENV.split(",") if x.strip() not in ("", "none")))

SIGNATURE = "def kern(x, y, k, d, arr, arr2):"
ARR_LEN = 4
TYPES = {"f": "float64", "i": "int64", "A": "float64[::1]"}
RET_TYPES = {"f": "float64", "i": "int64", "fi": "Tuple((float64, int64))"}

_TMP = tempfile.mkdtemp(prefix="loopopt_fuzz_inline_")
atexit.register(shutil.rmtree, _TMP, True)
sys.path.insert(0, _TMP)

#: A module of its own, for a helper reached as a module attribute: its K is
#: not the caller's K.
LIB = '''\
from numba import njit

K = 3.0


@njit
def scaled(x):
    return x * K
'''
with open(os.path.join(_TMP, "fuzz_inline_lib.py"), "w") as _fh:
    _fh.write(LIB)

MODULE_HEADER = '''\
import numba
import numpy as np
from numba import njit
import numba_loopopt as lo
import fuzz_inline_lib as lib

K = -1.0
G0 = 1.25
G1 = 2
T0 = np.array([0.5, 1.5, 2.5, 3.5])


def _make_cell(c):
    @njit
    def hcell(v):
        return v * c + 1.0

    def set_cell(value):
        nonlocal c
        c = value
    return hcell, set_cell


hcell, set_cell = _make_cell(0.5)


def _mutate(step):
    """Change every value a compiled helper froze."""
    global G0, G1
    G0 = G0 * -2.0 + step
    G1 = G1 + 3 * step
    T0[step % 4] += 10.0
    set_cell(0.25 * step - 1.0)
    lib.K = lib.K + 0.5


@numba.jit(forceobj=True)
def hobj(v):
    n = 3
    if v > 1e300:
        n = 4
    return v * 2.0 + n ** 70  # a Python int here; an int64 that wraps in nopython code


def _make_closure(kc):
    @njit
    def hclos(v):
        return v * 2.0 + kc
    return hclos


hclos = _make_closure(0.75)


@njit
def hstar(*vs):
    return vs[0] * 2.0 + vs[1]


@njit
def hnone(v, w=None):
    if w is None:
        return v + 1.0
    return v * w
'''


@dataclasses.dataclass
class Helper:
    name: str
    params: list  # (name, kind, default or None)
    ret: str  # "f", "i", "fi" or "none"
    flags: dict
    signature: bool = False
    lo_jit: bool = False
    numba_jit: bool = False
    depth_param: str | None = None  # the decreasing argument of a recursive helper
    partner: int | None = None  # mutual recursion
    self_rec: bool = False
    fanout: int = 1
    body: list = dataclasses.field(default_factory=list)

    def decorator(self, stock: bool) -> str:
        kw = [f"{k}={v!r}" for k, v in self.flags.items()]
        if self.signature:
            args = ", ".join(TYPES[p[1]] for p in self.params)
            kw.insert(0, repr(f"{RET_TYPES[self.ret]}({args})"))
        deco = "njit" if stock or not self.lo_jit else "lo.jit"
        if self.numba_jit and deco == "njit":
            deco = "numba.jit"
        return f"@{deco}({', '.join(kw)})"

    def source(self, stock: bool) -> list[str]:
        params = ", ".join(p[0] if p[2] is None else f"{p[0]}={p[2]}" for p in self.params)
        return [self.decorator(stock), f"def {self.name}({params}):",
                *("    " + x for x in self.body), ""]


@dataclasses.dataclass
class Program:
    helpers: list
    caller: str
    caller_flags: dict
    options: dict | None
    features: tuple = ()
    prelude: str | None = None
    """Source of ``_pre(...)``, calling helpers before the values change."""
    prelude_flags: dict = dataclasses.field(default_factory=dict)

    @property
    def frozen(self) -> bool:
        return self.prelude is not None

    def module(self, stock: bool) -> str:
        lines = [MODULE_HEADER, ""]
        for h in reversed(self.helpers):  # callees first: signatures compile eagerly
            lines += h.source(stock) + [""]
        text = "\n".join(lines) + "\n" + self.caller
        if self.frozen:
            # The second caller: the same body, compiled after the values
            # changed again.
            text += "\n\n" + self.caller.replace("def kern(", "def kern2(", 1)
            text += "\n\n" + self.prelude
        return text

    def __str__(self) -> str:
        prelude = f", prelude flags {self.prelude_flags}" if self.frozen else ""
        return (f"caller flags {self.caller_flags}, options {self.options}{prelude}\n"
                f"{self.module(stock=False)}")


class _Gen:
    def __init__(self, draw, caller_flags):
        self.draw = draw
        self.caller_flags = caller_flags
        self.features: list[str] = []
        self.names = itertools.count()
        self.helpers: list[Helper] = []
        self.frozen = False  # helpers may read values that change
        self.objmode = False

    def pick(self, seq, label=None):
        value = self.draw(st.sampled_from(seq))
        if label:
            self.features.append(f"{label}={value}")
        return value

    def coin(self, p_true_in_10=5):
        return self.draw(st.integers(0, 9)) >= 10 - p_true_in_10

    def family(self, name, p_in_100):
        if name in SKIP:
            return False
        if self.draw(st.integers(0, 99)) >= 100 - p_in_100:
            self.features.append(name)
            return True
        return False

    def fresh(self, prefix):
        return f"{prefix}{next(self.names)}"

    # -- expressions over the variables in scope ------------------------------

    def fexpr(self, env, depth=0, divides=True) -> str:
        fs, ints = env["f"], env["i"]
        if depth >= 2 or self.coin(4):
            kind = self.pick(["f", "f", "f", "i", "const"] + ["frozen"] * 2 * self.frozen)
            if kind == "f" and fs:
                return self.pick(fs)
            if kind == "i" and ints:
                return f"{self.pick(ints)} * 0.5"
            if kind == "frozen":
                return self.pick(["G0", "G1 * 0.5", f"T0[{self.index(env, {})}]",
                                  "hcell(G0)", "lib.K"])
            return self.pick(["1.5", "0.25", "-2.0"])
        form = self.pick(["+", "+", "-", "*", "/", "sqrt", "max"])
        x = self.fexpr(env, depth + 1, divides)
        if form == "/" and divides and fs:
            return f"({x} / {self.pick(fs)})"
        if form == "sqrt":
            return f"np.sqrt(abs({x}))"
        if form == "max":
            return f"max({x}, {self.fexpr(env, depth + 1, divides)})"
        if form == "/":
            form = "*"
        return f"({x} {form} {self.fexpr(env, depth + 1, divides)})"

    def iexpr(self, env, depth=0) -> str:
        ints = env["i"]
        if depth >= 1 or self.coin(5):
            return self.pick(ints) if ints and self.coin(7) else self.pick(["1", "2", "-1"])
        form = self.pick(["+", "-", "% 4", "// 2", "* 2", "abs", "min"])
        x = self.iexpr(env, depth + 1)
        if form in ("% 4", "// 2", "* 2"):
            return f"({x} {form})"
        if form == "abs":
            return f"abs({x})"
        if form == "min":
            return f"min({x}, {self.iexpr(env, depth + 1)})"
        return f"({x} {form} {self.iexpr(env, depth + 1)})"

    def index(self, env, flags) -> str:
        ints = env["i"]
        if flags.get("boundscheck") and ints and self.coin(5):
            return self.pick(ints)  # may be out of range: IndexError
        if ints and self.coin(6):
            return f"{self.pick(ints)} % {ARR_LEN}"
        return self.pick(["0", "1", f"{ARR_LEN - 1}"])

    # -- calls ----------------------------------------------------------------

    def call(self, callee: Helper, env, depth_arg: str | None = None) -> str:
        """A call of ``callee`` with arguments from ``env``: positional, by
        keyword, defaults left out."""
        pos, kws = [], []
        keyword = False
        params = list(callee.params)
        # Leave out some trailing defaulted parameters.
        while params and params[-1][2] is not None and self.coin(4):
            params.pop()
        for name, kind, _default in params:
            if name == callee.depth_param:
                value = depth_arg if depth_arg is not None else \
                    f"min({self.iexpr(env)}, {self.pick(['2', '3', '4'])})"
            elif kind == "f":
                # An int where a float is expected now and then: the call is
                # typed for int64 (or cast, with a signature).
                value = self.fexpr(env) if not (env["i"] and self.coin(1)) else \
                    self.pick(env["i"])
            elif kind == "i":
                value = self.iexpr(env)
            else:
                value = self.pick(env["A"]) if env["A"] else f"np.ones({ARR_LEN})"
            if not callee.signature and (keyword or self.coin(2)):
                keyword = True
                kws.append(f"{name}={value}")
            else:
                pos.append(value)
        if kws and self.coin(5):
            kws.reverse()
        return f"{callee.name}({', '.join(pos + kws)})"

    def use_call(self, callee: Helper, env, target_f: str, target_i: str | None,
                 depth_arg=None) -> list[str]:
        """Statements that call ``callee`` and use its result."""
        text = self.call(callee, env, depth_arg)
        if callee.ret == "f":
            return [f"{target_f} += {text}"]
        if callee.ret == "i":
            return [f"{target_i} += {text}"] if target_i else [f"{target_f} += {text} * 0.5"]
        if callee.ret == "fi":
            if self.coin():
                t = self.fresh("tt")
                return [f"{t} = {text}", f"{target_f} += {t}[0] * 2.0 + {t}[1]"]
            p, q = self.fresh("p"), self.fresh("q")
            return [f"{p}, {q} = {text}", f"{target_f} += {p} - {q}"]
        return [text]

    # -- helpers --------------------------------------------------------------

    def helper_flags(self):
        if self.coin(7):
            return dict(self.caller_flags)
        return self.pick([{}, {"error_model": "numpy"}, {"boundscheck": True},
                          {"fastmath": True}, {"no_rewrites": True}, {"nogil": True},
                          {"forceinline": True}, {"debug": True}], "helper_flags")

    def plan(self, count):
        for j in range(count):
            params = []
            kinds = [self.pick(["f", "f", "i", "A"]) for _ in range(self.draw(st.integers(1, 3)))]
            for m, kind in enumerate(kinds):
                params.append([f"{kind.lower() if kind != 'A' else 'v'}{m}", kind, None])
            ret = self.pick(["f", "f", "f", "i", "fi", "none"])
            if ret == "none" and "A" not in kinds:
                ret = "f"
            h = Helper(f"h{j}", params, ret, self.helper_flags())
            self.helpers.append(h)
        # Recursion: self, or a mutual pair of neighbours.
        for j, h in enumerate(self.helpers):
            if h.partner is not None:
                continue
            if j + 1 < count and self.helpers[j + 1].partner is None \
                    and self.family("mutual", 15):
                other = self.helpers[j + 1]
                h.partner, other.partner = j + 1, j
                for x in (h, other):
                    self._make_recursive(x)
            elif self.family("self", 15):
                h.self_rec = True
                self._make_recursive(h)
            if (h.self_rec or h.partner is not None) and self.family("fanout", 15):
                h.fanout = 2
        for h in self.helpers:
            # Defaults on trailing scalar parameters.
            for p in reversed(h.params):
                if p[1] == "A" or p[0] == h.depth_param or not self.coin(4):
                    break
                p[2] = self.pick(["2.0", "0.5"]) if p[1] == "f" else self.pick(["1", "3"])
            recursive = h.self_rec or h.partner is not None
            has_default = any(p[2] is not None for p in h.params)
            if not recursive and not has_default and h.ret != "none" \
                    and self.family("sig", 15):
                h.signature = True
            if self.family("lojit", 15):
                h.lo_jit = True
            elif self.family("numbajit", 10):
                h.numba_jit = True

    def _make_recursive(self, h: Helper):
        if h.depth_param is None:
            h.params.insert(0, ["dd", "i", None])
            h.depth_param = "dd"
        if h.ret in ("none", "fi", "i"):
            h.ret = "f"

    def helper_body(self, j: int):
        h = self.helpers[j]
        env = {"f": [p[0] for p in h.params if p[1] == "f"],
               "i": [p[0] for p in h.params if p[1] == "i" and p[0] != h.depth_param],
               "A": [p[0] for p in h.params if p[1] == "A"]}
        body: list[str] = []
        if h.depth_param:
            body += [f"if {h.depth_param} <= 0:",
                     f"    return {self.fexpr(env, 1, divides=False)}"]
            env["i"].append(h.depth_param)
        if env["f"] and self.family("raise", 30):
            body += [f"if {self.pick(env['f'])} < -5.0:", "    raise ValueError('neg')"]
        body.append(f"acc = {self.fexpr(env)}")
        env["f"].append("acc")
        if h.ret in ("i", "fi"):
            body.append(f"r = {self.iexpr(env)}")
        for _ in range(self.draw(st.integers(0, 3))):
            kind = self.pick(["mutate", "loop", "div", "call", "call"])
            if kind == "mutate" and env["A"]:
                a = self.pick(env["A"])
                op = self.pick(["=", "+="])
                body.append(f"{a}[{self.index(env, h.flags)}] {op} {self.fexpr(env)}")
            elif kind == "loop" and env["i"]:
                body += [f"for q in range({self.pick(env['i'])} % 3):",
                         f"    acc += {self.fexpr(env, 1)}"]
            elif kind == "div" and env["f"]:
                body.append(f"acc = acc / {self.pick(env['f'])}")
            elif kind == "mutate" and self.objmode and self.coin(2):
                body.append(f"acc += hobj({self.fexpr(env)})")
            elif kind == "call":
                later = self.helpers[j + 1:]
                later = [c for c in later if c.partner != j]
                if later:
                    callee = self.pick(later)
                    body += self.use_call(callee, env, "acc", "r" if h.ret in ("i", "fi")
                                          else None)
        if h.depth_param:
            targets = []
            if h.self_rec:
                targets.append(h)
            if h.partner is not None:
                targets.append(self.helpers[h.partner])
            for _ in range(h.fanout):
                callee = self.pick(targets)
                body += self.use_call(callee, env, "acc", None,
                                      depth_arg=f"{h.depth_param} - 1")
        if h.ret == "f":
            body.append("return acc")
        elif h.ret == "i":
            body.append("return r + 1" if self.coin() else "return r")
        elif h.ret == "fi":
            body.append("return (acc, r)")
        elif self.coin():
            body.append("return")
        h.body = body

    def caller(self) -> str:
        env = {"f": ["x", "y"], "i": ["k", "d"], "A": ["arr", "arr2"]}
        body = ["s = 0.0", "c = 0"]
        env["f"].append("s")
        for _ in range(self.draw(st.integers(1, 4))):
            form = self.pick(["plain", "plain", "plain", "loop", "try", "extra"])
            callee = self.pick(self.helpers)
            if form == "loop":
                body.append(f"for q in range({self.pick(['2', 'd % 4'])}):")
                body += ["    " + x for x in self.use_call(callee, env, "s", "c")]
            elif form == "try" and self.family("try", 40):
                body.append("try:")
                body += ["    " + x for x in self.use_call(callee, env, "s", "c")]
                body += ["except Exception:", "    s -= 100.0"]
            elif form == "extra":
                which = self.pick(["star", "none", "closure", "lib", "fuse"])
                if self.objmode and self.coin(3):
                    body.append(f"s += hobj({self.fexpr(env)})")
                elif not self.family(which, 60):
                    body += self.use_call(callee, env, "s", "c")
                elif which == "star":
                    body.append(f"s += hstar({self.fexpr(env)}, {self.fexpr(env)})")
                elif which == "none":
                    body.append("s += hnone(x)" if self.coin() else
                                f"s += hnone(x, {self.fexpr(env)})")
                elif which == "closure":
                    body.append(f"s += hclos({self.fexpr(env)})")
                elif which == "lib":
                    body.append(f"s += lib.scaled({self.fexpr(env)}) + K")
                else:
                    body += self.fuse_loops(env)
            else:
                body += self.use_call(callee, env, "s", "c")
        if self.objmode and self.coin(7):
            # Between two top-level statements, not inside a loop or try.
            spots = [i for i in range(2, len(body) + 1)
                     if i == len(body) or not body[i].startswith(" ")]
            body.insert(self.pick(spots), f"s += hobj({self.fexpr(env)})")
        ret = self.pick(["(s, c)", "s", "(s, c, arr[0], arr2[1])"])
        body.append(f"return {ret}")
        return SIGNATURE + "\n" + "\n".join("    " + x for x in body) + "\n"

    def prelude(self) -> str:
        """``_pre``: calls of some helpers, compiling them before the values
        they read change."""
        env = {"f": ["x", "y"], "i": ["k", "d"], "A": ["arr", "arr2"]}
        body = ["s = 0.0", "c = 0"]
        env["f"].append("s")
        for callee in self.helpers:
            if self.coin(6):
                body += self.use_call(callee, env, "s", "c")
        if self.coin(3):
            body.append(f"s += hcell({self.fexpr(env)})")
        body.append("return s, c")
        return ("def _pre(x, y, k, d, arr, arr2):\n"
                + "\n".join("    " + x for x in body) + "\n")

    def fuse_loops(self, env) -> list[str]:
        """Two loops over the array whose bodies call helpers: once inlined
        they may fuse, and their temporary contract."""
        fs = [h for h in self.helpers if h.ret == "f"]
        if not fs:
            return []
        t, u = self.fresh("tmp"), self.fresh("acc")
        loop_env = {"f": ["x", "y", "arr[q]"], "i": ["k", "q"], "A": []}
        first = self.use_call(self.pick(fs), loop_env, "w", None)
        second = self.use_call(self.pick(fs), {**loop_env, "f": ["x", f"{t}[q]"]}, u, None)
        return [f"{t} = np.empty(len(arr))", "for q in range(len(arr)):", "    w = 0.0",
                *("    " + x for x in first), f"    {t}[q] = w", f"{u} = 0.0",
                "for q in range(len(arr)):", *("    " + x for x in second),
                f"s += {u}"]


@st.composite
def programs(draw):
    caller_flags = draw(st.sampled_from([{}, {}, {}, {"error_model": "numpy"},
                                         {"boundscheck": True}, {"fastmath": True}]))
    gen = _Gen(draw, caller_flags)
    gen.frozen = gen.family("frozen", 25)
    gen.objmode = gen.family("objmode", 10)
    gen.plan(draw(st.integers(1, 4)))
    for j in range(len(gen.helpers)):
        gen.helper_body(j)
    caller = gen.caller()
    depth = draw(st.sampled_from([None, None, 0, 1, 2, 3, 4]))
    options = None if depth is None else {"inline": {"max_depth": depth}}
    gen.features.append(f"max_depth={depth}")
    prelude, prelude_flags = None, {}
    if gen.frozen:
        prelude = gen.prelude()
        if gen.family("inherit", 40):
            prelude_flags = gen.pick([{"error_model": "numpy"}, {"fastmath": True}],
                                     "prelude_flags")
    return Program(gen.helpers, caller, caller_flags, options, tuple(gen.features),
                   prelude, prelude_flags)


# --- compiling and comparing ------------------------------------------------

_module_ids = itertools.count()


def load(source: str, tag: str):
    digest = hashlib.sha1(source.encode()).hexdigest()[:10]
    name = f"fuzzi_{tag}_{digest}_{next(_module_ids)}"
    path = os.path.join(_TMP, name + ".py")
    with open(path, "w") as fh:
        fh.write(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # Registered, as an imported module is: numba links a recursive function's
    # call to itself through it (unregistered, stock numba aborts at run time
    # with "unresolved symbol").
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module, path


def arg_sets():
    """(x, y, k, d, arr, arr2): y = 0 divides by zero, x = -7 makes helpers
    raise, k = 6 is past the arrays' end (IndexError under boundscheck),
    arr2 is arr itself in some."""
    base = np.arange(ARR_LEN) * 0.5 + 1.0
    rows = [(1.5, 2.0, 3, 3, False), (1.5, 2.0, 3, 3, True), (-7.0, 2.0, 3, 3, False),
            (1.5, 0.0, 3, 3, False), (1.5, 2.0, -2, 0, False), (1.5, 2.0, 6, 5, False),
            (0.0, 0.0, 0, 0, True), (-7.0, 0.0, -2, 5, True), (2.5, 1.0, 1, 2, False),
            (0.5, -3.0, 2, 1, True)]
    sets = []
    for x, y, k, d, same in rows:
        arr = base.copy()
        arr2 = arr if same else base[::-1].copy()
        sets.append((x, y, k, d, arr, arr2))
    return sets


ARG_SETS = arg_sets()


#: compare()'s answer when stock numba aborted with "unresolved symbol".
STOCK_BROKEN = "stock numba could not run it"


def _outcome(disp, args):
    """conftest's outcome, telling apart a stock numba that cannot link."""
    mine = copy.deepcopy(args)
    try:
        return ("ok", disp(*mine), mine)
    except Exception as exc:  # noqa: BLE001 - comparing exception types
        if isinstance(exc, RuntimeError) and "unresolved symbol" in str(exc):
            return ("broken", RuntimeError, mine)
        return ("raise", type(exc), mine)


def compare(stock, opt, args) -> str | None:
    theirs = _outcome(stock, args)
    if theirs[0] == "broken":
        return STOCK_BROKEN
    return difference(theirs, _outcome(opt, args))


def describe(args) -> str:
    x, y, k, d, arr, arr2 = args
    return (f"x={x}, y={y}, k={k}, d={d}, arr={arr.tolist()}, "
            f"arr2={'arr' if arr2 is arr else arr2.tolist()}")


@dataclasses.dataclass
class Stats:
    programs: int = 0
    stock_compile_errors: int = 0
    stock_broken: int = 0
    inlined: int = 0
    keys: Counter = dataclasses.field(default_factory=Counter)
    failures: list = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        p = max(self.programs, 1)
        return (f"{self.programs} programs, {self.inlined} with a call inlined "
                f"({100 * self.inlined / p:.0f}%), {self.stock_compile_errors} did not "
                f"compile with stock numba, {self.stock_broken} that stock numba could not "
                f"run, {len(self.failures)} failures; remarks "
                f"{dict(self.keys.most_common())}")


def check_program(prog: Program, stats: Stats, log=None, keep_going=False) -> None:
    if log:
        with open(log + ".current", "w") as fh:
            fh.write(str(prog))
        with open(log + ".stats", "w") as fh:
            fh.write(stats.summary() + "\n")
    try:
        stock_mod, _ = load(prog.module(stock=True), "stock")
    except Exception:  # noqa: BLE001 - a helper with a signature stock cannot compile
        stats.programs += 1
        stats.stock_compile_errors += 1
        return
    try:
        opt_mod, path = load(prog.module(stock=False), "opt")
    except Exception as exc:  # noqa: BLE001 - an eager lo.jit signature failed
        opt_mod, path = None, repr(exc)
    if opt_mod is None:
        stats.programs += 1
        record = {"source": prog.module(stock=False), "features": list(prog.features),
                  "problems": [{"why": f"the optimised module failed to import: {path}"}]}
        stats.failures.append(record)
        if log:
            with open(log, "a") as fh:
                fh.write(json.dumps(record) + "\n")
        if not keep_going:
            raise AssertionError(f"{record['problems']}\n{prog}")
        return
    if prog.frozen:
        # Compile some helpers (with the wrapper's flags, which they inherit),
        # then change every value they froze, in both modules alike (both
        # compile first: they share the other module's K).
        for mod in (stock_mod, opt_mod):
            try:
                njit(**prog.prelude_flags)(mod._pre)(*copy.deepcopy(ARG_SETS[0]))
            except Exception:  # noqa: BLE001, S110 - raising in both modules alike
                pass
        for mod in (stock_mod, opt_mod):
            mod._mutate(1)
    stock = njit(**prog.caller_flags)(stock_mod.kern)
    opt = lo.jit(options=prog.options, **prog.caller_flags)(opt_mod.kern)
    stats.programs += 1
    problems = []
    callers = [(stock, opt, ARG_SETS)]
    for stock_disp, opt_disp, arg_sets in callers:
        for args in arg_sets:
            why = compare(stock_disp, opt_disp, args)
            if why == STOCK_BROKEN:
                # Stock numba aborts ("unresolved symbol") when helpers with
                # different flags recurse into each other (a numba bug, not
                # ours: h0/h1 with boundscheck=True on one of them); no reference.
                stats.stock_broken += 1
                return
            if why is not None:
                problems.append({"args": describe(args), "why": why,
                                 "caller": stock_disp.py_func.__name__})
                break
        if prog.frozen and len(callers) == 1 and not problems:
            # The second caller finds the helpers stock numba compiled while
            # compiling the first, with the values of then.
            for mod in (stock_mod, opt_mod):
                mod._mutate(2)
            callers.append((njit(**prog.caller_flags)(stock_mod.kern2),
                            lo.jit(options=prog.options, **prog.caller_flags)(opt_mod.kern2),
                            ARG_SETS[:4]))
    if not stock.signatures:
        stats.stock_compile_errors += 1
    all_remarks = [r for _, disp, _ in callers for rs in lo.remarks(disp).values()
                   for r in rs]
    keys = [r.key for r in all_remarks]
    stats.keys.update(keys)
    stats.inlined += "Inlined" in keys
    crashed = CRASH_KEYS & set(keys)
    if crashed:
        problems.append({"why": "pass crashed: " + "; ".join(
            str(r) for r in all_remarks if r.key in crashed)})
    if not problems:
        return
    record = {"source": prog.module(stock=False), "caller_flags": prog.caller_flags,
              "options": prog.options, "features": list(prog.features),
              "problems": problems, "remarks": [str(r) for r in all_remarks]}
    stats.failures.append(record)
    if log:
        with open(log, "a") as fh:
            fh.write(json.dumps(record) + "\n")
    if not keep_going:
        raise AssertionError(f"{problems}\nremarks: {record['remarks']}\n{prog}")


def _fuzz(stats, examples, derandomize, seed_value=None, log=None, keep_going=False,
          shrink=True):
    phases = [Phase.explicit, Phase.reuse, Phase.generate]
    if shrink:
        phases.append(Phase.shrink)

    @settings(max_examples=examples, deadline=None, derandomize=derandomize,
              database=None, print_blob=False, phases=phases,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much])
    @given(programs())
    def run(prog):
        check_program(prog, stats, log, keep_going)

    if seed_value is not None:
        run = seed(seed_value)(run)
    run()


def test_fuzz_bounded():
    """20 derandomised programs: stable and quick enough for every CI run."""
    stats = Stats()
    try:
        _fuzz(stats, 20, derandomize=True, shrink=False)
    finally:
        print(stats.summary())
    assert stats.programs >= 15
    assert stats.inlined >= 0.4 * stats.programs, stats.summary()


@pytest.mark.slow
def test_fuzz_long(request):
    examples = os.environ.get("LOOPOPT_FUZZ_EXAMPLES")
    if not examples and "slow" not in (request.config.option.markexpr or ""):
        pytest.skip("long fuzzing run: set LOOPOPT_FUZZ_EXAMPLES or select -m slow")
    stats = Stats()
    seed_env = os.environ.get("LOOPOPT_FUZZ_SEED")
    keep_going = os.environ.get("LOOPOPT_FUZZ_KEEP_GOING", "") not in ("", "0")
    try:
        _fuzz(stats, int(examples or 1000), derandomize=False,
              seed_value=int(seed_env) if seed_env else None,
              log=os.environ.get("LOOPOPT_FUZZ_LOG"), keep_going=keep_going,
              shrink=not keep_going)
    finally:
        print(stats.summary())
    assert not stats.failures, f"{len(stats.failures)} failing programs; see the log"
    assert stats.inlined >= 0.4 * stats.programs, stats.summary()


def test_generated_program_agrees_with_run_both():
    """The cached-dispatcher comparison above is run_both's, on one program."""
    h = Helper("h0", [["f0", "f", None], ["i1", "i", "3"]], "f", {},
               body=["acc = f0 * 2.0 + i1", "return acc"])
    prog = Program([h], SIGNATURE + "\n    return h0(x) + h0(y, i1=k)\n", {}, None)
    stats = Stats()
    check_program(prog, stats)
    py_func = load(prog.module(stock=False), "opt")[0].kern
    for args in ARG_SETS[:3]:
        disp = run_both(py_func, *args)
    assert [r.key for rs in lo.remarks(disp).values() for r in rs] == ["Inlined"] * 2
    assert stats.inlined == 1


# --- known bugs, minimised from the fuzzer -------------------------------------


@njit
def _check_negative(x):
    if x < 0:
        raise ValueError("negative")
    return x


@njit
def _inverse(y):
    return 1.5 / y


@njit
def _identity(x):
    return x


@njit
def _star(*vs):
    return vs[0] + vs[1]


def raise_in_try(x):
    try:
        v = _check_negative(x)  # inlined: its ValueError escapes the except
    except Exception:
        v = -1.0
    return v


def raise_before_try(x, y):
    s = _inverse(y)  # inlined: its ZeroDivisionError is caught by the except below
    try:
        s += _identity(x)
    except Exception:
        s -= 100.0
    return s


def raise_before_try_without_call(x, y):
    s = _inverse(y)
    try:
        s += x
    except Exception:
        s -= 100.0
    return s


KNOWN = [(raise_in_try, (-1.0,)), (raise_before_try, (1.0, 0.0)),
         (raise_before_try_without_call, (1.0, 0.0))]


@pytest.mark.parametrize("kernel,args", KNOWN, ids=[k[0].__name__ for k in KNOWN])
def test_former_miscompile(kernel, args):
    # Inlining into a function with try/except let exceptions bypass or reach
    # the handler wrongly; now nothing is inlined there.
    disp = run_both(kernel, *args)
    assert "Inlined" not in [r.key for rs in lo.remarks(disp).values() for r in rs]


def star_caller(x):
    return _star(x, 2.0)


def test_star_args_callee_is_refused_cleanly():
    disp = run_both(star_caller, 1.0)
    keys = [r.key for rs in lo.remarks(disp).values() for r in rs]
    assert "InternalError" not in keys, keys
