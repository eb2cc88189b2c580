"""Differential fuzzing of the forward-stores pass.

A seeded generator writes the source of loops using every construct
``docs/passes/forward_stores.rst`` names, the forwarded ones and those that
must read memory:

* the store ``buf[g(i + s)] = v`` with ``g`` the identity, ``% L``
  (``L = buf.shape[0]``), ``% m`` and ``* m`` for an argument ``m`` (``0``,
  ``1``, ``2``, negative), or a fixed index (``0``, an argument ``k``, negative
  too); loads ``buf[g(i + c)]`` before it, 0 to 3 iterations back (0 reads
  what the previous iteration left, not forwarded) and, sometimes, one after
  it;
* arrays of float64, float32, int64, int32, uint8 (stores wrap and round),
  plain, or views of stride 0 (every index one element) or of half an item
  (elements overlapping their neighbours);
* a second array ``other`` the loop also stores into, passed as a fresh
  array, as ``buf`` itself, or as a view overlapping it;
* ``for i in range(start, stop)`` loops (negative starts: negative indices
  wrap) and ``while i < n: ...; i += 1`` loops;
* sometimes a branch around the store, a second store, a call that may write
  (``other.fill``), a division that raises ``ZeroDivisionError``, bounds
  checking on (an ``IndexError`` part way; always on but for ``% L``, the
  only form that cannot index past the end).

Each kernel is compiled with stock ``numba.njit`` and ``numba_loopopt.jit``
(same flags), run on several argument sets (each built afresh for each run)
and compared bit for bit: return value, arguments, exception type and message
(``conftest.difference``).  An ``InternalError`` or ``StockFallback`` remark
fails too.

* default (CI): 30 kernels, fixed seed (about 40 s on the 2-core machine);
* long: ``LOOPOPT_FUZZ_EXAMPLES=500 pytest -m slow tests/test_fuzz_forward_stores.py``
  (``LOOPOPT_FUZZ_SEED`` picks the first seed).
"""

from __future__ import annotations

import importlib.util
import os
import random
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import difference
from numba import njit

import numba_loopopt as lo

DTYPES = ["float64", "float32", "int64", "int32", "uint8"]


def _index(form: str, offset: int) -> str:
    base = "i" if offset == 0 else f"i + {offset}" if offset > 0 else f"i - {-offset}"
    return {"plain": base, "modL": f"({base}) % L", "modm": f"({base}) % m",
            "mulm": f"({base}) * m", "fixed0": "0", "fixedk": "k"}[form]


def generate(rng: random.Random) -> tuple[str, dict]:
    form = rng.choice(["plain", "modL", "modm", "mulm", "fixed0", "fixedk"])
    dtype = rng.choice(DTYPES)
    s = rng.randint(1, 3)
    offsets = sorted({rng.randint(s - 3, s) for _ in range(rng.randint(1, 3))})
    loop = rng.choice(["for", "for", "while"])
    extras = {e for e in ("branch", "second_store", "call", "divide", "other", "late_load")
              if rng.random() < 0.15}
    if rng.random() < 0.5:
        extras.add("other")
    lines = ["def kernel(buf, other, x, m, k, start, stop):", "    L = buf.shape[0]"]
    body = []
    loads = []
    for j, c in enumerate(offsets):
        body.append(f"t{j} = buf[{_index(form, c)}]")
        loads.append(f"t{j}")
    coeff = "2" if dtype in ("int64", "int32", "uint8") else "0.5"
    value = " + ".join(f"{coeff} * {t}" for t in loads) + " + x[i % x.shape[0]]"
    if "divide" in extras:
        value = f"({value}) // x[i % x.shape[0]]" if dtype != "float64" else \
            f"({value}) / x[i % x.shape[0]]"
    body.append(f"v = {value}")
    if "other" in extras:
        body.append(f"other[(i + {rng.randint(0, 2)}) % other.shape[0]] = v - 1")
    if "call" in extras:
        body.append("other.fill(3)")
    store = f"buf[{_index(form, s)}] = v"
    if "branch" in extras:
        body += ["if x[i % x.shape[0]] > 0:", "    " + store]
    else:
        body.append(store)
    if "second_store" in extras:
        body.append(f"buf[{_index(form, s - 1)}] = v + 1")
    if "late_load" in extras:
        body.append(f"w = buf[{_index(form, s)}]")
        body.append("other[0] = w")
    if loop == "for":
        lines.append("    for i in range(start, stop):")
        lines += ["        " + b for b in body]
    else:
        lines += ["    i = start", "    while i < stop:"]
        lines += ["        " + b for b in body]
        lines.append("        i += 1")
    lines.append("    return buf, other")
    meta = {"form": form, "dtype": dtype, "loop": loop, "extras": sorted(extras),
            # Only ``% L`` surely stays in bounds: any other form is checked,
            # so that an index past the end raises instead of corrupting memory.
            "boundscheck": rng.random() < 0.5 or form != "modL"}
    return "\n".join(lines) + "\n", meta


def argument_sets(rng: random.Random, dtype: str):
    """Four argument sets, each a function building it afresh (a deep copy
    of a strided view would be a plain array: each run gets its own views of
    its own base)."""
    for _ in range(4):
        seed = rng.randrange(2**32)
        yield lambda seed=seed: _arguments(random.Random(seed), dtype)


def _arguments(rng: random.Random, dtype: str):
    dt = np.dtype(dtype)
    length = rng.randint(1, 6)
    base = (np.arange(length + 3) * 3 + 1).astype(dt)
    layout = rng.choice(["plain", "plain", "plain", "stride0", "overlapping"])
    if layout == "stride0":      # every index reaches base[0]
        buf = np.lib.stride_tricks.as_strided(base[:1], shape=(length,),
                                              strides=(0,))
    elif layout == "overlapping" and dt.itemsize >= 2:
        # elements a half item apart: each overlaps its neighbours
        buf = np.lib.stride_tricks.as_strided(
            base, shape=(min(length, 2 * len(base) - 1),), strides=(dt.itemsize // 2,))
    else:
        buf = base[:length]
    which = rng.choice(["fresh", "same", "view"])
    other = (np.zeros(rng.randint(1, 4), dt) if which == "fresh" else buf if
             which == "same" else base[rng.randint(0, length):])
    x = np.array([rng.choice([1, 2, 3, -1, 0]) for _ in range(5)], dtype=dt
                 if dt.kind != "u" else np.int64).astype(dt)
    if dt.kind == "f":
        x = x * 1.25
    m = rng.choice([1, 2, 3, 0, -2])
    k = rng.choice([0, 1, -1])
    start = rng.choice([0, 0, 1, -3])
    stop = rng.choice([0, 1, 4, 9])
    return (buf, other, x, m, k, start, stop)


def _outcome(disp, args):
    """``conftest.outcome`` on arguments built for this call alone."""
    try:
        return ("ok", disp(*args), args)
    except Exception as exc:  # noqa: BLE001 - comparing exceptions
        return ("raise", exc, args)


_DIR = Path(tempfile.mkdtemp(prefix="loopopt_fuzz_fs_"))


def _load(source: str, name: str):
    path = _DIR / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.kernel


def run_one(seed: int, stats: Counter) -> None:
    rng = random.Random(seed)
    source, meta = generate(rng)
    func = _load(source, f"fs_kernel_{seed}")
    flags = {"boundscheck": meta["boundscheck"], "error_model": "python"}
    stock = njit(**flags)(func)
    opt = lo.jit(options={"strict": True}, **flags)(func)
    for make in argument_sets(rng, meta["dtype"]):
        why = difference(_outcome(stock, make()), _outcome(opt, make()))
        assert why is None, f"seed {seed} ({meta}):\n{source}\nargs {make()!r}\n{why}"
    keys = [r.key for rs in lo.remarks(opt).values() for r in rs]
    assert "InternalError" not in keys and "StockFallback" not in keys, (seed, source, keys)
    stats.update(k for k in keys if k in FORWARD_KEYS)


FORWARD_KEYS = {"Forwarded", "LoopMayWrite", "SeveralStores", "StoreNotEveryIteration",
                "NotScalarArray", "ArrayUsedOtherwise", "UnknownWrite", "OtherBlock"}


def _campaign(n: int, first: int) -> Counter:
    stats: Counter = Counter()
    for seed in range(first, first + n):
        run_one(seed, stats)
    return stats


def test_fuzz_bounded():
    stats = _campaign(30, int(os.environ.get("LOOPOPT_FUZZ_SEED", "0")))
    # The generator reaches the rewrite and its refusals.
    assert stats["Forwarded"] >= 5, stats
    assert stats["LoopMayWrite"] + stats["SeveralStores"] + stats["StoreNotEveryIteration"] \
        >= 1, stats


@pytest.mark.slow
def test_fuzz_long():
    examples = os.environ.get("LOOPOPT_FUZZ_EXAMPLES")
    if not examples:
        pytest.skip("long fuzzing run: set LOOPOPT_FUZZ_EXAMPLES or select -m slow")
    stats = _campaign(int(examples), int(os.environ.get("LOOPOPT_FUZZ_SEED", "1000")))
    print(dict(stats))
