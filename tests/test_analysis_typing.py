"""analysis.typing: TypeFacts, the partial type inference of untyped IR, run
once and only when a pass asks for a type."""

from __future__ import annotations

import numpy as np
from _analysis_helpers import state_of
from numba.core import types

from numba_loopopt.analysis.typing import TypeFacts

A = types.float64[:]
I = types.int64  # noqa: E741


def scan(a, n):
    cond = np.array(False)
    i = 0
    while i < n and not cond.item():
        a[i] = 1.0
        i += 2
    return i


def test_type_facts_infer_once_and_only_when_asked(monkeypatch):
    import numba_loopopt.analysis.typing as typing_module

    calls = []
    real = typing_module.type_inference_stage
    monkeypatch.setattr(typing_module, "type_inference_stage",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    facts = TypeFacts(state_of(scan, A, I))
    assert calls == []
    assert facts.of("i") == types.int64
    assert facts.of("n") == types.int64
    assert facts.of("no such name") is None
    assert calls == [1]


def literal(a):
    k = 3
    return a + k


def test_type_facts_drop_literal_types():
    facts = TypeFacts(state_of(literal, I))
    assert facts.of("k") == types.int64  # not Literal[int](3)


def test_type_facts_of_code_that_does_not_type_are_empty():
    state = state_of(literal, I)
    state.typingctx = None  # inference raises: no facts rather than an error
    assert TypeFacts(state).typemap == {}
    assert TypeFacts(state).of("k") is None
