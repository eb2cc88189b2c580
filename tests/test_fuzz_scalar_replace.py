"""Differential fuzzing of the scalar-replace pass (0-d arrays become scalars).

A hypothesis strategy writes the *source text* of kernels using every
construct ``docs/passes/scalar_replace.rst`` names, the ones the pass rewrites
and the ones that must keep the array:

* 0-d locals of float64, float32, int64, int32, uint8 and bool, allocated by
  ``np.empty(())`` (always written before read: reading it first is garbage in
  stock numba), ``np.zeros(())``, ``np.ones(())`` (with ``dtype=``) or
  ``np.array(x)`` of a literal or a variable, before the loop, and again inside
  it (conditionally: several allocations of one group);
* accumulation in loops with casts on store (``float64`` into ``uint8`` or
  ``int32`` wraps, into ``bool``...), copies ``b = a`` written through either
  name, element reads ``a[()]``, ``a.item()``, ``bool(a)``, element stores
  ``buf[k] = a``;
* escaping uses: returned, put in a tuple, passed to an ``@njit`` helper (one
  small enough to inline, one that reads and writes it), ``a + 1.0``,
  ``a += v``, ``a.fill(v)`` (which stock numba rejects for 0-d arrays),
  ``a[...] = v``;
* 0-d *arguments* as loop bounds (``i < n0[()]``, ``n0.item()``, ``i < n0``,
  ``range(n0[()])``) and flags (``not f0.item()``, ``not bool(f0)``), read in
  the body, written through another argument: the argument sets pass fresh
  arrays, views into an array the loop writes (``ibuf[3:4].reshape(())``,
  ``buf[3:4].reshape(())``), the same array twice, and two views of one
  element;
* ``IndexError`` in the loop after 0-d writes (an index past the end with
  ``boundscheck=True``, and an explicit ``raise IndexError(...)``).

Each kernel is written to a real module file, compiled with stock
``numba.njit`` and with ``numba_loopopt.jit``, run on each argument set (built
afresh for each of the two, so views keep their base), and compared bit for
bit (``conftest.difference``): return value, the arguments' final contents,
exception type and message.  ``InternalError``/``StockFallback`` remarks are
failures too.  Every ``while`` loop has an iteration cap.

Runs:

* default (CI): ``pytest tests/test_fuzz_scalar_replace.py`` -- 25
  derandomised kernels (about 20 s on the 2-core machine);
* long: ``LOOPOPT_FUZZ_EXAMPLES=2000 pytest -m slow tests/test_fuzz_scalar_replace.py``
  (``LOOPOPT_FUZZ_SEED``, ``LOOPOPT_FUZZ_LOG=path.jsonl``,
  ``LOOPOPT_FUZZ_KEEP_GOING=1`` as in ``test_fuzz_while_to_range.py``).
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import importlib.util
import itertools
import json
import os
import shutil
import tempfile
from collections import Counter

import numpy as np
import pytest
from conftest import difference, remark_keys, run_both
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from numba import njit

import numba_loopopt as lo

BUF_LEN = 12
IBUF_LEN = 8
CAP = 40

#: Remarks that mean the pass crashed or produced IR that did not compile.
CRASH_KEYS = {"InternalError", "StockFallback"}
#: Crashes already known and pinned by an ``xfail(strict=True)`` test below:
#: counted apart (``Stats.known``) so the campaign goes on looking for others.
#: When the pass is fixed the xfail test passes (strict: it fails) -- then
#: drop the entry here too.
KNOWN_CRASHES: dict = {}
#: Remarks of a rewrite by this pass.
DONE_KEYS = ("ScalarReplaced", "ReadHoisted")

MODULE_HEADER = f'''\
import numpy as np
from numba import njit


@njit
def peek(a):
    return a[()]


@njit
def bump(a):
    # Big enough not to be inlined at the default cost limit.
    t = a[()]
    for q in range(3):
        t = t + q
        if t > 100:
            t = t - 1
        elif t < -100:
            t = t + 1
        else:
            t = t * 1
    a[()] = t
    return a[()]


CAP = {CAP}
'''

DTYPES = ["float64", "float32", "int64", "int32", "uint8", "bool_"]

#: ``np.array(x)`` literals per dtype.
LITERALS = {
    "float64": ["0.0", "1.5"],
    "float32": ["np.float32(0.5)"],
    "int64": ["0", "3"],
    "int32": ["np.int32(2)"],
    "uint8": ["np.uint8(250)"],
    "bool_": ["False", "True"],
}


@dataclasses.dataclass
class Kernel:
    source: str
    njit_kwargs: dict
    features: tuple = ()

    def __str__(self) -> str:  # hypothesis prints this for a falsifying example
        return f"njit kwargs {self.njit_kwargs}\n{self.source}"


def _indent(lines, n=1):
    return ["    " * n + x for x in lines]


@dataclasses.dataclass
class Local:
    name: str
    dtype: str
    aliases: list


class _Gen:
    def __init__(self, draw):
        self.draw = draw
        self.features: list[str] = []
        self.locals: list[Local] = []
        self.pre: list[str] = []
        self.rets: list[str] = []

    def pick(self, seq, label=None):
        value = self.draw(st.sampled_from(seq))
        if label:
            self.features.append(f"{label}={value}")
        return value

    def coin(self, p_true_in_10=5):
        return self.draw(st.integers(0, 9)) >= 10 - p_true_in_10

    # -- pieces --------------------------------------------------------------

    def alloc(self, dtype, in_loop=False):
        """The right-hand side of a 0-d allocation and whether it is ``empty``."""
        kind = self.pick(["zeros", "ones", "empty", "array", "array", "array_var"],
                         None if in_loop else "alloc")
        if kind == "array" or (kind == "array_var" and dtype in ("uint8", "bool_")):
            return f"np.array({self.pick(LITERALS[dtype])})", False
        if kind == "array_var":
            conv = {"float64": "s", "float32": "np.float32(s)", "int64": "i",
                    "int32": "np.int32(i)"}[dtype]
            return f"np.array({conv})", False
        return f"np.{kind}((), dtype=np.{dtype})", kind == "empty"

    def idx(self, length="BUF_LEN"):
        return self.pick(["i % " + length, "i % " + length, "3", "(i + 1) % " + length,
                          "i"])

    def value(self, loc: Local, ref: str) -> str:
        """A value to store into ``loc`` (cast on store), reading ``ref``."""
        d = loc.dtype
        if d in ("float64", "float32"):
            return self.pick([f"{ref}[()] + buf[{self.idx()}]", f"{ref}[()] * 0.5 + i",
                              f"{ref}.item() - 1.25", "s * 0.25", "a0[()] + i"])
        if d in ("int64", "int32"):
            return self.pick([f"{ref}[()] + i", f"{ref}[()] + ibuf[{self.idx('IBUF_LEN')}]",
                              f"buf[{self.idx()}]", f"{ref}.item() - 2", "n0[()] + i"])
        if d == "uint8":
            return self.pick([f"{ref}[()] + 77", f"{ref}[()] * 3 + i",
                              f"abs(buf[{self.idx()}])", f"{ref}.item() + 200"])
        return self.pick([f"buf[{self.idx()}] > 1.0", f"not {ref}[()]", "i",
                          f"{ref}.item() or i > 3", "s"])

    def ref(self, loc: Local) -> str:
        return self.pick([loc.name, loc.name, *loc.aliases])

    # -- statements ----------------------------------------------------------

    def stmt(self, depth) -> list[str]:
        """One statement (a list of lines, relative indentation)."""
        return [y for x in self._stmt(depth) for y in x.split("\n")]

    def _stmt(self, depth) -> list[str]:
        kinds = ["store", "store", "store", "read_idx", "read_item", "read_bool",
                 "elem_store", "arg_read", "arg_write", "raise", "oob",
                 "realloc", "escape", "bound_write"]
        if depth == 0:
            kinds.append("inner")
        kind = self.pick(kinds, "stmt")
        if not self.locals and kind in ("store", "read_idx", "read_item", "read_bool",
                                         "elem_store", "realloc", "escape"):
            kind = "arg_read"
        loc = self.pick(self.locals) if self.locals else None
        if kind == "store":
            r = self.ref(loc)
            line = f"{r}[()] = {self.value(loc, self.ref(loc))}"
            if self.coin(3):
                return [f"if buf[{self.idx()}] > 0.5:", "    " + line]
            return [line]
        if kind == "read_idx":
            return [f"s += {self.ref(loc)}[()]"]
        if kind == "read_item":
            return [f"s += {self.ref(loc)}.item()"]
        if kind == "read_bool":
            return [f"if bool({self.ref(loc)}):", "    s += 1.0"]
        if kind == "elem_store":
            target = self.pick(["buf", "ibuf"])
            length = "BUF_LEN" if target == "buf" else "IBUF_LEN"
            return [f"{target}[{self.idx(length)}] = {self.ref(loc)}"]
        if kind == "arg_read":
            return [self.pick(["s += a0[()]", "s += a0.item()", "s += n0[()]",
                               "if bool(f0):\n    s += 2.0", "s += m0.item()",
                               "buf[i % BUF_LEN] = a0", "ibuf[i % IBUF_LEN] = n0"])]
        if kind == "arg_write":
            return [self.pick(["m0[()] = i", "m0[()] = m0[()] + 1", "a0[()] = s",
                               "f0[()] = buf[i % BUF_LEN] > 2.0",
                               "buf[3] = buf[3] + 1.0"], "argw")]
        if kind == "bound_write":
            # Writes the element the bound/flag views may point at.
            return [self.pick(["ibuf[3] = ibuf[3] + 1", "ibuf[3] = i", "ibuf[5] = 2",
                               "ibuf[i % IBUF_LEN] = ibuf[i % IBUF_LEN] + 1"])]
        if kind == "raise":
            t = self.pick(["20.0", "6.0", "40.0"])
            return [f"if s > {t}:", f"    raise IndexError('s over {t}')"]
        if kind == "oob":
            return [self.pick(["ibuf[i] = ibuf[i] + 1", "s += buf[i + 9]",
                               "ibuf[i + 2] = 1"])]
        if kind == "realloc":
            rhs, empty = self.alloc(loc.dtype, in_loop=True)
            target = self.ref(loc)
            lines = [f"{target} = {rhs}"]
            if empty:
                lines.append(f"{target}[()] = {LITERALS[loc.dtype][0]}")
            if loc.aliases and target == loc.name and self.coin():
                # keep the copy pointing at the same array
                lines.append(f"{loc.aliases[0]} = {loc.name}")
            return [f"if i % 3 == {self.draw(st.integers(0, 2))}:", *_indent(lines)]
        if kind == "escape":
            r = self.ref(loc)
            # (hypothesis draws the tail of a list rarely: the later forms are
            # listed more than once)
            form = self.pick(["helper_read", "helper_write", "arith", "fill", "shape",
                              "arith", "inplace", "inplace", "ellipsis", "ellipsis",
                              "tuple", "tuple", "inplace", "tuple", "ellipsis"], "escape")
            lit = LITERALS[loc.dtype][0]
            if form == "helper_read":
                return [f"s += peek({r})"]
            if form == "helper_write":
                return [f"s += bump({r})"]
            if form == "arith":
                return [f"s += ({r} + 1.0).item()"]
            if form == "inplace":
                return [f"{r} += {'True' if loc.dtype == 'bool_' else '1'}"]
            if form == "fill":
                return [f"{r}.fill({lit})"]
            if form == "ellipsis":
                return [f"{r}[...] = {lit}"]
            if form == "tuple":
                return [f"tp = ({r}, s)", "s += tp[0][()]"]
            return [f"s += {r}.ndim + {r}.size"]
        # an inner counted loop
        lines = [f"for q in range({self.pick(['2', 'n0[()]', 'm0.item()'])}):"]
        body = [self.stmt(1) for _ in range(self.draw(st.integers(1, 2)))]
        return lines + _indent([x for b in body for x in b])

    def loop(self) -> list[str]:
        form = self.pick(["while", "while", "while", "for"], "loop")
        if form == "for":
            bound = self.pick(["n0[()]", "n0.item()", "m0[()]", "7"], "bound")
            header = [f"for i in range({bound}):"]
            head_body: list[str] = []
        else:
            bound = self.pick(["n0[()]", "n0.item()", "n0", "m0[()]", "7"], "bound")
            conj = [f"i < {bound}"]
            for _ in range(self.draw(st.integers(0, 2))):
                conj.append(self.pick(["not f0.item()", "not f0[()]", "not bool(f0)",
                                       "not fl.item()", "not fl[()]"], "flag"))
            if self.coin(2):
                conj.reverse()
            header = ["i = 0", f"while {' and '.join(conj)}:"]
            head_body = ["g += 1", "if g > CAP:", "    break"]
            if any("fl" in c and "f0" not in c for c in conj):
                self.pre.append("fl = np.array(False)")
        body = [self.stmt(0) for _ in range(self.draw(st.integers(1, 5)))]
        if form == "while" and any("fl" in c for c in header[-1:]) and self.coin():
            body.append([f"fl[()] = buf[{self.idx()}] > 3.0"])
        lines = head_body + [x for b in body for x in b]
        if form == "while":
            lines.append("i += 1")
        return header + _indent(lines)


@st.composite
def kernels(draw):
    gen = _Gen(draw)
    for k in range(draw(st.integers(1, 3))):
        dtype = gen.pick(DTYPES, "dtype")
        loc = Local(f"acc{k}", dtype, [])
        rhs, empty = gen.alloc(dtype)
        gen.pre.append(f"{loc.name} = {rhs}")
        if empty:
            gen.pre.append(f"{loc.name}[()] = {LITERALS[dtype][-1]}")
        if gen.coin(4):
            alias = f"cp{k}"
            loc.aliases.append(alias)
            gen.pre.append(f"{alias} = {loc.name}")
            gen.features.append("alias")
        gen.locals.append(loc)
    loop = gen.loop()
    post: list[str] = []
    for _ in range(draw(st.integers(0, 2))):
        post += gen.stmt(1)
    rets = ["s", "g"]
    for loc in gen.locals:
        how = gen.pick(["item", "item", "index", "array", "none"], "ret")
        if how == "item":
            rets.append(f"{gen.ref(loc)}.item()")
        elif how == "index":
            rets.append(f"{gen.ref(loc)}[()]")
        elif how == "array":
            rets.append(gen.ref(loc))
    prelude = ["s = 0.0", "g = 0", "i = 0", *dict.fromkeys(gen.pre)]
    body = prelude + loop + post + [f"return ({', '.join(rets)},)"]
    text = "def kern(buf, ibuf, n0, m0, f0, a0):\n" + "\n".join(_indent(body)) + "\n"
    text = (text.replace("IBUF_LEN", str(IBUF_LEN)).replace("BUF_LEN", str(BUF_LEN)))
    kwargs = {"boundscheck": True}
    if draw(st.integers(0, 9)) == 0:
        kwargs["error_model"] = "numpy"
    return Kernel(text, kwargs, tuple(gen.features))


# --- compiling and comparing ------------------------------------------------

_TMP = tempfile.mkdtemp(prefix="loopopt_fuzz_sr_")
atexit.register(shutil.rmtree, _TMP, True)
_module_ids = itertools.count()


def load(kernel: Kernel):
    digest = hashlib.sha1(kernel.source.encode()).hexdigest()[:10]
    name = f"fuzzsr_{digest}_{next(_module_ids)}"
    path = os.path.join(_TMP, name + ".py")
    with open(path, "w") as fh:
        fh.write(MODULE_HEADER + "\n\n" + kernel.source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.kern, path


def _args(n, *, n0_view=False, m0="fresh", a0_view=False, flag=False):
    """One argument set, built afresh (views keep their base)."""
    buf = np.arange(BUF_LEN, dtype=np.float64) * 0.75 - 4.0
    ibuf = np.arange(IBUF_LEN, dtype=np.int64)
    if n0_view:
        ibuf[3] = n
        n0 = ibuf[3:4].reshape(())
    else:
        n0 = np.array(n)
    if m0 == "same":
        m0v = n0
    elif m0 == "view3":
        ibuf[3] = n
        m0v = ibuf[3:4].reshape(())
    elif m0 == "view5":
        m0v = ibuf[5:6].reshape(())
    else:
        m0v = np.array(2)
    f0 = np.array(flag)
    a0 = buf[3:4].reshape(()) if a0_view else np.array(2.5)
    return (buf, ibuf, n0, m0v, f0, a0)


#: Argument sets: (description, keyword arguments of ``_args``).
ARG_SETS = [
    ("fresh n=5", dict(n=5)),
    ("fresh n=0", dict(n=0)),
    ("fresh n=12 (out of range)", dict(n=12)),
    ("flag set", dict(n=5, flag=True)),
    ("n0 views ibuf[3], a0 views buf[3]", dict(n=6, n0_view=True, a0_view=True)),
    ("m0 is n0", dict(n=4, m0="same")),
    ("n0 and m0 view ibuf[3]", dict(n=5, n0_view=True, m0="view3")),
    ("m0 views ibuf[5], a0 views buf[3]", dict(n=7, m0="view5", a0_view=True)),
]


def outcome(disp, args):
    try:
        return ("ok", disp(*args), args)
    except Exception as exc:  # noqa: BLE001 - comparing exceptions
        return ("raise", exc, args)


@dataclasses.dataclass
class Stats:
    programs: int = 0
    runs: int = 0
    stock_compile_errors: int = 0
    rewritten: int = 0
    known: Counter = dataclasses.field(default_factory=Counter)
    keys: Counter = dataclasses.field(default_factory=Counter)
    failures: list = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        p = max(self.programs, 1)
        return (f"{self.programs} programs ({self.runs} runs), {self.rewritten} rewritten "
                f"by scalar-replace ({100 * self.rewritten / p:.0f}%; ScalarReplaced "
                f"{self.keys['ScalarReplaced']}, ReadHoisted {self.keys['ReadHoisted']}), "
                f"{self.stock_compile_errors} did not compile with stock numba, "
                f"{len(self.failures)} failures, known crashes {dict(self.known)}; "
                f"remarks {dict(self.keys.most_common())}")


def check_kernel(kernel: Kernel, stats: Stats, log: str | None = None,
                 keep_going: bool = False) -> None:
    py_func, _ = load(kernel)
    if log:
        with open(log + ".current", "w") as fh:
            fh.write(str(kernel))
        with open(log + ".stats", "w") as fh:
            fh.write(stats.summary() + "\n")
    stock = njit(**kernel.njit_kwargs)(py_func)
    opt = lo.jit(**kernel.njit_kwargs)(py_func)
    problems = []
    stats.programs += 1
    for desc, kw in ARG_SETS:
        stats.runs += 1
        why = difference(outcome(stock, _args(**kw)), outcome(opt, _args(**kw)))
        if why is not None:
            problems.append({"args": desc, "why": why})
            break
    if not stock.signatures:
        stats.stock_compile_errors += 1
    remarks = [r for rs in lo.remarks(opt).values() for r in rs]
    keys = [r.key for r in remarks]
    stats.keys.update(k for k in keys)
    stats.rewritten += any(k in DONE_KEYS for k in keys)
    crashes = [str(r) for r in remarks if r.key in CRASH_KEYS]
    known = [name for name, pat in KNOWN_CRASHES.items()
             if any(pat.search(c) for c in crashes)]
    if known and len(known) == len(crashes):
        stats.known.update(known)
    elif crashes:
        problems.append({"why": "pass crashed: " + "; ".join(crashes)})
    if not problems:
        return
    record = {"source": kernel.source, "njit_kwargs": kernel.njit_kwargs,
              "problems": problems, "remarks": [str(r) for r in remarks]}
    stats.failures.append(record)
    if log:
        with open(log, "a") as fh:
            fh.write(json.dumps(record) + "\n")
    if not keep_going:
        raise AssertionError(f"{problems}\nremarks: {record['remarks']}\n{kernel}")


def _fuzz(stats: Stats, examples: int, derandomize: bool, seed_value=None, log=None,
          keep_going=False):
    @settings(max_examples=examples, deadline=None, derandomize=derandomize,
              database=None, print_blob=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much])
    @given(kernels())
    def run(kernel):
        check_kernel(kernel, stats, log, keep_going)

    if seed_value is not None:
        run = seed(seed_value)(run)
    run()


def test_fuzz_bounded():
    """25 derandomised kernels, 8 argument sets each: quick enough for CI."""
    stats = Stats()
    _fuzz(stats, 25, derandomize=True)
    print(stats.summary())
    assert stats.programs >= 20
    assert stats.rewritten >= 0.2 * stats.programs, stats.summary()
    assert stats.keys["ReadHoisted"] >= 1, stats.summary()


@pytest.mark.slow
def test_fuzz_long(request):
    examples = os.environ.get("LOOPOPT_FUZZ_EXAMPLES")
    if not examples and "slow" not in (request.config.option.markexpr or ""):
        pytest.skip("long fuzzing run: set LOOPOPT_FUZZ_EXAMPLES or select -m slow")
    stats = Stats()
    seed_env = os.environ.get("LOOPOPT_FUZZ_SEED")
    keep_going = os.environ.get("LOOPOPT_FUZZ_KEEP_GOING", "") not in ("", "0")
    try:
        _fuzz(stats, int(examples or 2000), derandomize=False,
              seed_value=int(seed_env) if seed_env else None,
              log=os.environ.get("LOOPOPT_FUZZ_LOG"), keep_going=keep_going)
    finally:
        print(stats.summary())
    assert not stats.failures, f"{len(stats.failures)} failing kernels; see the log"
    assert stats.rewritten >= 0.2 * stats.programs, stats.summary()


# --- what the fuzzer found ----------------------------------------------------


def dead_accumulator_versioned(x, n0):
    # acc0 is scalar-replaced, n0 read once at entry (versioned on
    # disjoint(n0, x)); the accumulator's value is never used after the loop.
    acc0 = np.zeros(())
    i = 0
    while i < n0[()]:
        acc0[()] = acc0[()] + 1.0
        i += 1
    return 0.0


def accumulator_read_versioned(x, n0):
    # The same with the accumulator read into a float each iteration.
    s = 0.0
    acc0 = np.zeros(())
    i = 0
    while i < n0[()]:
        s += acc0[()]
        acc0[()] = acc0[()] + 1.0
        i += 1
    return s


# Found by this fuzzer: the versioned loop's copy renamed a scalar assigned
# before the loop too (read undefined); now only names assigned and used in
# the loop alone are renamed.
@pytest.mark.parametrize("func", [dead_accumulator_versioned, accumulator_read_versioned])
def test_scalar_local_in_versioned_function_compiles(func):
    disp = run_both(func, np.arange(3.0), np.array(3))
    keys = remark_keys(disp)
    assert "StockFallback" not in keys, keys
    assert "ReadHoisted" in keys and "ScalarReplaced" in keys, keys
