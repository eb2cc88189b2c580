"""One frozen, validated, hashable object holding every option of every pass.

Options are checked when they are built (that is, at decoration time), and an
unknown or ill-typed option raises :class:`OptionError` naming it.  A few
``NUMBA_LOOPOPT_*`` environment variables override them at compile time, the way
``NUMBA_*`` variables override numba's own configuration.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class OptionError(TypeError, ValueError):
    """An unknown option, or an option with a value of the wrong type."""


@dataclass(frozen=True)
class _Check:
    """How one option field is validated."""

    kind: type
    minimum: int | None = None
    optional_callable: bool = False
    optional: bool = False
    """``None`` is accepted too."""

    def validate(self, qualname: str, value: Any) -> None:
        if self.optional and value is None:
            return
        if self.optional_callable:
            if value is not None and not callable(value):
                raise OptionError(
                    f"numba_loopopt option {qualname!r} must be a callable or None, "
                    f"got {type(value).__name__} ({value!r})"
                )
            return
        # bool is an int subclass: an int option must not silently take True.
        if not isinstance(value, self.kind) or (
            self.kind is int and isinstance(value, bool)
        ):
            raise OptionError(
                f"numba_loopopt option {qualname!r} must be of type "
                f"{self.kind.__name__}{' or None' if self.optional else ''}, "
                f"got {type(value).__name__} ({value!r})"
            )
        if self.minimum is not None and value < self.minimum:
            raise OptionError(
                f"numba_loopopt option {qualname!r} must be >= {self.minimum}, "
                f"got {value!r}"
            )


def _option(default: Any, doc: str, **check: Any) -> Any:
    return field(default=default, metadata={"check": _Check(**check), "doc": doc})


class _Validated:
    """Validates every field of a frozen dataclass after construction."""

    _prefix = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            f.metadata["check"].validate(self._prefix + f.name, getattr(self, f.name))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]):
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise OptionError(
                    f"unknown numba_loopopt option {cls._prefix + str(key)!r}; "
                    f"known options: {', '.join(sorted(cls._prefix + k for k in known))}"
                )
        return cls(**values)

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class WhileToRangeOptions(_Validated):
    """Options of the ``while-to-range`` pass."""

    _prefix = "while_to_range."

    enabled: bool = _option(True, "Run the pass.", kind=bool)
    version_modulo: bool = _option(
        True,
        "Version loops that index ``x[(i + k) % L]``: one check before the loop "
        "selects a copy without the modulo when every index is in range.",
        kind=bool,
    )
    max_versioned_stmts: int = _option(
        2000,
        "Largest loop (in IR statements) that modulo versioning may duplicate.",
        kind=int,
        minimum=0,
    )


@dataclass(frozen=True)
class InliningOptions(_Validated):
    """Options of the ``inline`` pass."""

    _prefix = "inline."

    enabled: bool = _option(
        True, "Run the pass (it replaces numba's InlineInlinables; when off, "
        "numba's own inlining of inline='always' callees runs as usual).", kind=bool)
    max_callee_stmts: int = _option(
        60, "Largest callee, in numba IR statements, the default cost model inlines.",
        kind=int, minimum=0)
    max_growth: int = _option(
        2000, "Most statements inlining may add to one function in total.",
        kind=int, minimum=0)
    max_depth: int = _option(
        3, "Deepest inline nesting: a call inside code inlined this many levels "
        "deep stays a real call, so recursive callees always terminate.",
        kind=int, minimum=0)
    cost_model: Any = _option(
        None, "A callable ``(expr, caller_ir, callee_ir, depth) -> bool`` deciding "
        "each call site instead of the size budgets (numba's inline= cost model "
        "signature plus the inline depth); the depth bound still applies. "
        "``cache=True`` keys it on its code, constants, defaults, closure cells "
        "and the globals it reads, and does not cache a function whose cost "
        "model cannot be keyed (a callable object).",
        kind=object, optional_callable=True)


@dataclass(frozen=True)
class FuseLoopsOptions(_Validated):
    """Options of the ``fuse-loops`` pass."""

    _prefix = "fuse_loops."

    enabled: bool = _option(True, "Run the pass.", kind=bool)


@dataclass(frozen=True)
class FuseReduceOptions(_Validated):
    """Options of the ``fuse-reduce`` pass."""

    _prefix = "fuse_reduce."

    enabled: bool = _option(True, "Run the pass.", kind=bool)
    reassociate: bool = _option(
        False,
        "Let the fused loop's accumulations be reassociated (LLVM's ``reassoc`` "
        "flag on them, as ``fastmath`` gives), so that sums vectorise with several "
        "accumulators: faster, but the result may round differently from stock "
        "numba's.  ``fastmath=True`` implies it.",
        kind=bool,
    )
    vector_exp: bool = _option(
        True,
        "Compute ``np.exp`` of float64 values in a 1-D fused expression with "
        "a vectorised port of the C library's ``exp``, a block of elements at "
        "a time: bit-identical to stock numba, and used only if a self-test "
        "(run once per process) finds it so on this machine; else, and when "
        "``False``, one scalar ``exp`` call per element as before. "
        "Env: NUMBA_LOOPOPT_VECTOR_EXP.",
        kind=bool,
    )


@dataclass(frozen=True)
class ScalarReplaceOptions(_Validated):
    """Options of the ``scalar-replace`` pass."""

    _prefix = "scalar_replace."

    enabled: bool = _option(True, "Run the pass.", kind=bool)
    hoist_arguments: bool = _option(
        True,
        "Read a 0-d array argument used only through its element once, at "
        "entry; when another array argument may be written, the function is "
        "compiled twice and a check that the arguments do not overlap in "
        "memory picks the copy at run time.",
        kind=bool,
    )


@dataclass(frozen=True)
class ForwardStoresOptions(_Validated):
    """Options of the ``forward-stores`` pass."""

    _prefix = "forward_stores."

    enabled: bool = _option(True, "Run the pass.", kind=bool)


def _coerce_pass_options(cls: type, value: Any, name: str):
    """``True``/``False`` toggles a pass, a mapping sets its fields."""
    if isinstance(value, cls):
        return value
    if isinstance(value, bool):
        return cls(enabled=value)
    if isinstance(value, Mapping):
        return cls.from_mapping(value)
    raise OptionError(
        f"numba_loopopt option {name!r} must be a bool, a mapping or a "
        f"{cls.__name__}, got {type(value).__name__} ({value!r})"
    )


#: The options object of each pass, by field name of :class:`Options`.
PASS_OPTIONS: dict[str, type] = {
    "inline": InliningOptions,
    "scalar_replace": ScalarReplaceOptions,
    "while_to_range": WhileToRangeOptions,
    "fuse_loops": FuseLoopsOptions,
    "forward_stores": ForwardStoresOptions,
    "fuse_reduce": FuseReduceOptions,
}


@dataclass(frozen=True)
class Options(_Validated):
    """Every option of numba_loopopt, validated when built.

    A pass's options are given as its options object, a mapping of its fields,
    or a bool that switches the pass on or off::

        Options(while_to_range={"version_modulo": False}, warn_missed=True)
    """

    inline: InliningOptions = field(
        default_factory=InliningOptions,
        metadata={"check": _Check(kind=InliningOptions), "doc": "inline pass"},
    )
    scalar_replace: ScalarReplaceOptions = field(
        default_factory=ScalarReplaceOptions,
        metadata={"check": _Check(kind=ScalarReplaceOptions), "doc": "scalar-replace pass"},
    )
    while_to_range: WhileToRangeOptions = field(
        default_factory=WhileToRangeOptions,
        metadata={"check": _Check(kind=WhileToRangeOptions), "doc": "while-to-range pass"},
    )
    fuse_loops: FuseLoopsOptions = field(
        default_factory=FuseLoopsOptions,
        metadata={"check": _Check(kind=FuseLoopsOptions), "doc": "fuse-loops pass"},
    )
    forward_stores: ForwardStoresOptions = field(
        default_factory=ForwardStoresOptions,
        metadata={"check": _Check(kind=ForwardStoresOptions), "doc": "forward-stores pass"},
    )
    fuse_reduce: FuseReduceOptions = field(
        default_factory=FuseReduceOptions,
        metadata={"check": _Check(kind=FuseReduceOptions), "doc": "fuse-reduce pass"},
    )
    strict: bool = _option(
        False,
        "Re-raise internal errors of a pass instead of rolling the pass back "
        "(for debugging the passes). Env: NUMBA_LOOPOPT_STRICT.",
        kind=bool,
    )
    warn_missed: bool = _option(
        False,
        "Report every missed optimisation as a NumbaPerformanceWarning. "
        "Env: NUMBA_LOOPOPT_WARNINGS.",
        kind=bool,
    )
    fallback: bool = _option(
        True,
        "If compilation fails after a pass changed the IR, compile again with "
        "numba's stock pipeline instead of failing.",
        kind=bool,
    )
    global_arrays_by_address: int | None = _option(
        None,
        "A size in bytes: constant (global or closure) numpy arrays larger than "
        "this are referenced by address instead of being copied into the "
        "compiled code, as numba does only above 1 MB (numba copies smaller "
        "C/F-contiguous ones into the LLVM module, which makes large IR and slow "
        "compiles). The code then sees later changes to such an array, keeps it "
        "alive, and cannot be cached (``cache=True`` warns and compiles it in "
        "each process). ``None``: numba's behaviour. "
        "Env: NUMBA_LOOPOPT_GLOBAL_ARRAYS_BY_ADDRESS.",
        kind=int,
        minimum=0,
        optional=True,
    )

    def __post_init__(self) -> None:
        for name, cls in PASS_OPTIONS.items():
            value = _coerce_pass_options(cls, getattr(self, name), name)
            object.__setattr__(self, name, value)
        super().__post_init__()

    @classmethod
    def coerce(cls, value: Any) -> Options:
        """Build options from ``None``, an :class:`Options` or a mapping."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            return cls.from_mapping(value)
        raise OptionError(
            "numba_loopopt 'options' must be an Options object or a mapping, "
            f"got {type(value).__name__} ({value!r})"
        )

    def with_environment(self, environ: Mapping[str, str] = os.environ) -> Options:
        """Apply the ``NUMBA_LOOPOPT_*`` environment overrides."""

        def flag(name: str) -> bool | None:
            raw = environ.get(name)
            if raw is None or raw == "":
                return None
            return raw not in ("0", "false", "False", "no")

        opts = self
        threshold = _byte_threshold(environ, "NUMBA_LOOPOPT_GLOBAL_ARRAYS_BY_ADDRESS")
        if threshold is not _UNSET:
            opts = opts.replace(global_arrays_by_address=threshold)
        if flag("NUMBA_LOOPOPT_DISABLE"):
            # Compile as stock numba does: no pass, no array by address.
            opts = opts.replace(
                global_arrays_by_address=None,
                **{name: getattr(opts, name).replace(enabled=False) for name in PASS_OPTIONS},
            )
        skipped = environ.get("NUMBA_LOOPOPT_DISABLE_PASSES", "")
        for pass_name in filter(None, (p.strip() for p in skipped.split(","))):
            field_name = pass_name.replace("-", "_")
            if field_name not in PASS_OPTIONS:
                raise OptionError(
                    f"NUMBA_LOOPOPT_DISABLE_PASSES names no pass {pass_name!r} "
                    f"(the passes: {', '.join(n.replace('_', '-') for n in PASS_OPTIONS)})")
            opts = opts.replace(**{field_name: getattr(opts, field_name).replace(enabled=False)})
        for var, attr in (
            ("NUMBA_LOOPOPT_STRICT", "strict"),
            ("NUMBA_LOOPOPT_WARNINGS", "warn_missed"),
        ):
            value = flag(var)
            if value is not None:
                opts = opts.replace(**{attr: value})
        vector_exp = flag("NUMBA_LOOPOPT_VECTOR_EXP")
        if vector_exp is not None:
            opts = opts.replace(fuse_reduce=opts.fuse_reduce.replace(vector_exp=vector_exp))
        return opts


_UNSET = object()


def _byte_threshold(environ: Mapping[str, str], name: str):
    """An environment variable holding a size in bytes or ``none``; ``_UNSET``
    when it is unset or empty."""
    raw = environ.get(name, "").strip()
    if not raw:
        return _UNSET
    if raw.lower() == "none":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise OptionError(
            f"environment variable {name}={raw!r} must be a size in bytes (an "
            "integer >= 0) or 'none'"
        )
    return value
