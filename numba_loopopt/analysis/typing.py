"""Types of untyped IR, for passes that run before numba's type inference."""

from __future__ import annotations

import warnings

from numba.core import types
from numba.core.typed_passes import type_inference_stage


class TypeFacts:
    """Argument-specialised types of the untyped IR, computed only when a loop
    passes every structural check (type inference is the expensive part)."""

    def __init__(self, state):
        self._state = state
        self._typemap = None

    @property
    def typemap(self) -> dict:
        if self._typemap is None:
            s = self._state
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    result = type_inference_stage(
                        s.typingctx, s.targetctx, s.func_ir, s.args, s.return_type,
                        s.locals, raise_errors=False)
                    self._typemap = dict(result.typemap)
                except Exception:
                    self._typemap = {}
        return self._typemap

    def of(self, name: str):
        ty = self.typemap.get(name)
        return None if ty is None else types.unliteral(ty)
