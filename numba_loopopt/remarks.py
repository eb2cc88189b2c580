"""Optimisation remarks: what each pass did, and why it could not do more.

Modelled on LLVM's optimisation remarks.  A remark has a kind (passed, missed,
analysis), the pass that emitted it, a stable key (``Rewritten``,
``BoundChanges``), a source location, a message and named arguments.  Passes
record them in the compile state's metadata, which numba keeps with each
compiled signature, so users read them per signature with :func:`remarks`.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from numba.core import ir
from numba.core.errors import NumbaPerformanceWarning

#: Key of the remark list in ``state.metadata`` / ``cres.metadata``.
METADATA_KEY = "loopopt_remarks"

#: Key in ``state.metadata`` of the unique names (``helper$2``) of the
#: functions inlined so far: numba names their variables after them.
INLINED_NAMES = "loopopt_inlined_names"


def demangle(text: str, unique_names: Iterable[str]) -> str:
    """``text`` with the prefixes numba gives inlined variables removed:
    ``helper_v2_i`` becomes ``i`` (numba's ``_created_inlined_var_name``)."""
    prefixes = [name.replace("<", "_").replace(">", "_").replace(".", "_")
                .replace("$", "_v") + "_" for name in unique_names]
    if not prefixes:
        return text
    pattern = re.compile(r"(?<![\w$])(?:" + "|".join(map(re.escape, prefixes)) + ")+")
    return pattern.sub("", text)


#: Names the passes give the variables they create, and how remarks show them:
#: scalar-replace's scalar standing for the 0-d array ``x`` is ``x``; the
#: element of the 0-d argument ``n`` it reads once is ``n[()]``.
_MADE_NAMES = [(re.compile(r"\$0d\.([A-Za-z_][\w]*)"), r"\1"),
               (re.compile(r"\$loopopt_hoisted_([A-Za-z_]\w*)"), r"\1[()]")]


def readable(text: str) -> str:
    """``text`` with the passes' own variable names shown as the user's."""
    for pattern, replacement in _MADE_NAMES:
        text = pattern.sub(replacement, text)
    return text


class RemarkKind(enum.Enum):
    PASSED = "passed"
    MISSED = "missed"
    ANALYSIS = "analysis"


@dataclass(frozen=True)
class Remark:
    """One optimisation remark."""

    kind: RemarkKind
    pass_name: str
    key: str
    message: str
    filename: str
    line: int
    args: tuple[tuple[str, object], ...] = ()

    @property
    def arguments(self) -> dict[str, object]:
        return dict(self.args)

    def __str__(self) -> str:
        where = f"{self.filename}:{self.line}" if self.line else self.filename
        what = self.key if self.kind is not RemarkKind.MISSED else f"missed {self.key}"
        return f"{where}: [{self.pass_name}] {what}: {self.message}"


class RemarkEmitter:
    """Collects one pass run's remarks; they are kept only if the run commits.

    A pass that raises internally is rolled back, and so are its remarks: a
    ``Rewritten`` remark for a rewrite that was undone would be a lie.
    """

    def __init__(self, pass_name: str, default_loc: ir.Loc | None = None):
        self.pass_name = pass_name
        self.default_loc = default_loc
        self.pending: list[Remark] = []

    def _emit(self, kind: RemarkKind, key: str, loc: ir.Loc | None, message: str,
              args: dict[str, object]) -> Remark:
        loc = loc or self.default_loc
        filename = getattr(loc, "filename", None) or "<unknown>"
        line = getattr(loc, "line", None) or 0
        remark = Remark(kind, self.pass_name, key, message, filename, int(line),
                        tuple(args.items()))
        self.pending.append(remark)
        return remark

    def passed(self, key: str, loc: ir.Loc | None, message: str, **args: object) -> Remark:
        return self._emit(RemarkKind.PASSED, key, loc, message, args)

    def missed(self, key: str | Missed, loc: ir.Loc | None = None, message: str | None = None,
               **args: object) -> Remark:
        """Record a missed remark: ``missed(key, loc, message, **args)``, or
        ``missed(why)`` with a :class:`Missed` (its key, message, location and
        arguments; a ``loc`` given here is used when ``why`` has none, and
        ``args`` given here are added to its own)."""
        if isinstance(key, Missed):
            if message is not None:
                raise TypeError("missed(why): the message is the Missed object's own")
            why = key
            return self._emit(RemarkKind.MISSED, why.key,
                              why.loc if why.loc is not None else loc, why.message,
                              {**why.arguments, **args})
        if message is None:
            raise TypeError(f"missed({key!r}, ...) needs a message")
        return self._emit(RemarkKind.MISSED, key, loc, message, args)

    def analysis(self, key: str, loc: ir.Loc | None, message: str, **args: object) -> Remark:
        return self._emit(RemarkKind.ANALYSIS, key, loc, message, args)

    def commit(self, metadata: dict) -> None:
        names = metadata.get(INLINED_NAMES)

        def show(value):
            if isinstance(value, (list, tuple)):
                return type(value)(show(v) for v in value)
            if not isinstance(value, str):
                return value
            value = readable(value)
            return demangle(value, names) if names else value
        self.pending = [dataclasses.replace(
            r, message=show(r.message), args=tuple((k, show(v)) for k, v in r.args))
            for r in self.pending]
        metadata.setdefault(METADATA_KEY, []).extend(self.pending)
        self.pending = []


def warn_missed(found: Iterable[Remark]) -> None:
    """Report missed remarks as ``NumbaPerformanceWarning``s."""
    for remark in found:
        if remark.kind is RemarkKind.MISSED:
            loc = ir.Loc(remark.filename, remark.line) if remark.line else None
            # Attribute the warning to the user's source line, not to this module.
            warnings.warn_explicit(NumbaPerformanceWarning(str(remark), loc=loc),
                                   NumbaPerformanceWarning, remark.filename,
                                   remark.line or 1)


class RemarkList(list):
    """The remarks of one signature: a list of :class:`Remark` that prints
    one remark per line, as ``str(remark)`` does."""

    def __repr__(self) -> str:
        return "\n".join(map(str, self)) if self else "[]"

    __str__ = __repr__


class RemarksBySignature(dict):
    """Each compiled signature's :class:`RemarkList`: a dict that prints each
    signature, then its remarks indented below it."""

    def __repr__(self) -> str:
        if not self:
            return "{}"
        lines = []
        for sig, found in self.items():
            head = "(" + ", ".join(str(t) for t in sig) + ")"
            if not found:
                lines.append(f"{head}: no remarks")
                continue
            lines.append(f"{head}:")
            lines += [f"  {remark}" for remark in found]
        return "\n".join(lines)

    __str__ = __repr__


def _as_argtypes(signature):
    args = getattr(signature, "args", signature)
    return tuple(args)


def remarks(dispatcher, signature=None):
    """The remarks recorded while compiling ``dispatcher``.

    Follows numba's ``inspect_*`` convention: with a ``signature`` (a tuple of
    argument types, as in ``dispatcher.signatures``, or a numba ``Signature``)
    return that signature's list of :class:`Remark`; without one, return a
    dict from each compiled signature to its list.  Both print readably:
    one remark per line (a :class:`RemarkList`), under its signature (a
    :class:`RemarksBySignature`).
    """
    overloads = getattr(dispatcher, "overloads", None)
    if overloads is None:
        raise TypeError(
            f"remarks() needs a numba dispatcher, got {type(dispatcher).__name__}"
        )
    if signature is None:
        # numba's own cache loads overloads without metadata (None).
        return RemarksBySignature(
            (sig, RemarkList((cres.metadata or {}).get(METADATA_KEY, ())))
            for sig, cres in overloads.items())
    key = _as_argtypes(signature)
    if key not in overloads:
        known = ", ".join(str(s) for s in overloads) or "none"
        raise KeyError(f"{dispatcher.__name__} has no compiled signature {key}; "
                       f"compiled: {known}")
    return RemarkList((overloads[key].metadata or {}).get(METADATA_KEY, ()))


def _pairs(args) -> tuple[tuple[str, object], ...]:
    """Named arguments as a tuple of ``(name, value)`` pairs, from a mapping
    or from pairs."""
    if not args:
        return ()
    items = args.items() if isinstance(args, Mapping) else args
    pairs = tuple((str(name), value) for name, value in items)
    return tuple(dict(pairs).items())


@dataclass(frozen=True, init=False)
class Missed:
    """Why a match failed: the key, message, location and named arguments of
    a missed remark.

    ``Missed(key, message, loc=None, args=(), **kwargs)``: the arguments, as
    LLVM remarks carry them, are the values the message is made of, given
    as keywords (``Missed("BoundChanges", msg, loc, bound="n")``) or as
    ``args``, a mapping or ``(name, value)`` pairs (for a name such as
    ``key`` or ``loc``).  ``emit.missed(why)`` records it with all of them.
    """

    key: str
    message: str
    loc: ir.Loc | None = None
    args: tuple[tuple[str, object], ...] = ()

    def __init__(self, key: str, message: str, loc: ir.Loc | None = None,
                 args: Mapping[str, object] | Iterable[tuple[str, object]] = (),
                 **kwargs: object):
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "loc", loc)
        object.__setattr__(self, "args", _pairs(_pairs(args) + tuple(kwargs.items())))

    @property
    def arguments(self) -> dict[str, object]:
        """The named arguments, as a dict."""
        return dict(self.args)
