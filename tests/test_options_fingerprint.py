"""The options fingerprint in the ``cache=True`` key: a callable option is
keyed on everything that determines what it returns, the same in every
process; what cannot be keyed is not cached, with one warning naming it.

The cache tests run real processes on a temporary ``NUMBA_CACHE_DIR``: the
cached kernels' file never changes (numba keys its index on that file), only
the module holding the cost models does, as between two runs of a program
whose configuration changed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys
import textwrap
import types
import warnings

import numpy as np
import pytest
from numba.core.errors import NumbaWarning

import numba_loopopt as lo
from numba_loopopt.dispatcher import Unkeyable, options_fingerprint

# --- in one process: what changes the fingerprint ---------------------------


def fingerprint(cost_model) -> str:
    return options_fingerprint(lo.Options(inline={"cost_model": cost_model}))


def _make(limit):
    def by_closure(expr, caller, callee, depth):
        return depth < limit
    return by_closure


LIMIT = 1


def by_global(expr, caller, callee, depth):
    return depth < LIMIT


def _limit():
    return 1


def by_helper(expr, caller, callee, depth):
    return depth < _limit()


@dataclasses.dataclass(frozen=True)
class _Limited:
    limit: int

    def cost_model(self, expr, caller, callee, depth):
        return depth < self.limit


def test_every_part_of_a_callable_is_keyed(monkeypatch):
    pairs = {
        "constant": (lambda e, a, b, d: d < 1, lambda e, a, b, d: d < 2),
        "nested constant": (lambda e, a, b, d: d < (lambda: 1)(),
                            lambda e, a, b, d: d < (lambda: 2)()),
        "default": (lambda e, a, b, d, k=1: d < k, lambda e, a, b, d, k=2: d < k),
        "closure cell": (_make(1), _make(2)),
        "partial": (functools.partial(lambda k, e, a, b, d: d < k, 1),
                    functools.partial(lambda k, e, a, b, d: d < k, 2)),
        "bound built-in method": ({0: True}.get, {0: False}.get),
        "bound method": (_Limited(1).cost_model, _Limited(2).cost_model),
    }
    for name, (one, other) in pairs.items():
        assert fingerprint(one) != fingerprint(other), name
        assert fingerprint(one) == fingerprint(one), name
    before = fingerprint(by_global), fingerprint(by_helper)
    monkeypatch.setitem(globals(), "LIMIT", 2)
    monkeypatch.setattr(_limit, "__code__", (lambda: 2).__code__)
    after = fingerprint(by_global), fingerprint(by_helper)
    assert before[0] != after[0] and before[1] != after[1]


def test_library_functions_are_keyed_by_name():
    a = fingerprint(lambda e, a, b, d: np.sum(np.ones(2)) > d)
    b = fingerprint(lambda e, a, b, d: np.sum(np.ones(2)) > d)
    assert a == b


def test_the_fingerprint_has_no_addresses():
    text_parts = [fingerprint(_make(1)), fingerprint(by_global)]
    assert all(len(t) == 16 for t in text_parts)


class _Callable:
    def __call__(self, expr, caller, callee, depth):
        return True


def test_what_cannot_be_keyed_is_named():
    with pytest.raises(Unkeyable, match=r"^inline.cost_model is a _Callable object"):
        fingerprint(_Callable())
    opaque = types.SimpleNamespace(limit=1)
    with pytest.raises(Unkeyable, match=r"inline.cost_model: closure variable 'limit' is a "
                                        r"SimpleNamespace object"):
        fingerprint(_make(opaque))


def _helper(x):
    return x * 2.0 + 1.0


def test_an_unkeyable_option_is_not_cached_with_one_warning(tmp_path, monkeypatch):
    import numba

    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))
    disp = lo.jit(cache=True, options={"inline": {"cost_model": _Callable()}})(_helper)
    with pytest.warns(NumbaWarning) as caught:
        assert disp(1.0) == 3.0
    messages = [str(w.message) for w in caught if "cannot cache" in str(w.message)]
    assert messages == [
        'numba_loopopt: cannot cache compiled function "_helper": option '
        "inline.cost_model is a _Callable object, whose behaviour cannot be keyed; "
        "it compiles again in each process"]
    assert "\n" not in messages[0]
    assert not list(tmp_path.rglob("*.nbi"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", NumbaWarning)
        disp(np.float32(1.0))  # warned once per reason


# --- across processes ---------------------------------------------------------

KERNELS = '''
import numba
import numba_loopopt as lo
import cm


@numba.njit
def helper(x):
    return x * 2.0 + 1.0


def kernel(x):
    return helper(x) + 1.0


NAMES = [n for n in dir(cm) if n.startswith("by_")]
DISPATCHERS = {name: lo.jit(cache=True, options={"inline": {"cost_model": getattr(cm, name)}})(
    kernel) for name in NAMES}
'''

RUN = '''
import json, warnings
import kernels
import numba_loopopt as lo

out = {}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for name, disp in kernels.DISPATCHERS.items():
        value = disp(1.5)
        sig = disp.signatures[0]
        out[name] = {"value": value, "hits": sum(disp.stats.cache_hits.values()),
                     "keys": [r.key for r in lo.remarks(disp, sig) if r.pass_name == "inline"]}
out["warnings"] = [str(w.message) for w in caught if "cannot cache" in str(w.message)]
print(json.dumps(out))
'''

#: Each cost model says "inline" in one variant and "do not" in the other, by
#: one kind of difference only.
COST_MODELS = '''
import functools
import cmcfg

LIMIT = {limit}


def by_constant(expr, caller, callee, depth):
    return depth < {limit}


def by_nested_constant(expr, caller, callee, depth):
    inner = lambda: {limit}  # noqa: E731
    return depth < inner()


def by_default(expr, caller, callee, depth, limit={limit}):
    return depth < limit


def _make(limit):
    def cost_model(expr, caller, callee, depth):
        return depth < limit
    return cost_model


by_closure = _make({limit})


def by_global(expr, caller, callee, depth):
    return depth < LIMIT


def by_module_attribute(expr, caller, callee, depth):
    return depth < cmcfg.LIMIT


def _limit():
    return {limit}


def by_helper(expr, caller, callee, depth):
    return depth < _limit()


def _with(limit, expr, caller, callee, depth):
    return depth < limit


by_partial = functools.partial(_with, {limit})


class _Callable:
    def __call__(self, expr, caller, callee, depth):
        return depth < {limit}


by_instance = _Callable()
'''


def _run(tmp_path, limit: int) -> dict:
    (tmp_path / "cm.py").write_text(COST_MODELS.format(limit=limit))
    (tmp_path / "cmcfg.py").write_text(f"LIMIT = {limit}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_LOOPOPT_")}
    path = os.pathsep.join(p for p in (str(tmp_path), env.get("PYTHONPATH")) if p)
    env.update(NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=path,
               PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run([sys.executable, str(tmp_path / "run.py")], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_process_never_loads_code_compiled_for_another_cost_model(tmp_path):
    (tmp_path / "kernels.py").write_text(textwrap.dedent(KERNELS))
    (tmp_path / "run.py").write_text(textwrap.dedent(RUN))
    first = _run(tmp_path, 1)    # each cost model inlines helper
    second = _run(tmp_path, 0)   # each declines: other code, other remarks
    third = _run(tmp_path, 1)    # the first process's entries, loaded
    names = [n for n in first if n.startswith("by_")]
    assert len(names) == 9
    for name in names:
        assert first[name]["value"] == second[name]["value"] == third[name]["value"] == 5.0
        assert first[name]["hits"] == 0 and first[name]["keys"] == ["Inlined"], name
        assert second[name]["hits"] == 0, f"{name}: loaded the other cost model's code"
        assert second[name]["keys"] == ["CostModelDeclined"], name
        if name == "by_instance":
            assert third[name]["hits"] == 0, "an unkeyable option was cached"
        else:
            assert third[name]["hits"] == 1 and third[name]["keys"] == ["Inlined"], name
    for run in (first, second, third):
        (warning,) = run["warnings"]
        assert warning.startswith('numba_loopopt: cannot cache compiled function "kernel": '
                                  "option inline.cost_model is a _Callable object")
