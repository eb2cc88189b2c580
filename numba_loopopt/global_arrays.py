"""Reference large constant arrays by address instead of freezing them.

numba compiles a global (or closure) numpy array that a function reads as a
constant.  ``BaseContext.make_constant_array`` copies a C- or F-contiguous
array of up to 1 MB into the LLVM module, byte by byte (a 0.9 MB array is
megabytes of IR text to build, optimise and compile), and references a larger
one by its address (which makes ``cache=True`` refuse the function: an address
is valid in one process only).

With the ``global_arrays_by_address`` option (a size in bytes), the compilation
uses a copy of numba's target context whose ``make_constant_array`` references
every array larger than that size by address, as numba itself does above 1 MB,
and keeps the array alive as long as the compiled code: the code library holds
a reference to it.  Nothing else changes: typing, the IR and every other
constant are numba's own.  The code then reads the array where it lives, so it
sees later in-place changes to it (a frozen copy does not), and it is never
saved by ``cache=True`` (the dispatcher warns why).
"""

from __future__ import annotations

from numba.core import cgutils, ir, types

#: numba 0.68's own limit (``BaseContext.make_constant_array``): larger
#: C/F-contiguous arrays are referenced by address anyway.
NUMBA_FREEZE_LIMIT = 10**6

#: Attribute of a code library holding the arrays its code references by
#: address: ``[(array, nbytes), ...]``.
LIBRARY_ATTR = "_loopopt_arrays_by_address"


class _ArraysByAddress:
    """Mixed into a copy of the target context for one compilation."""

    _loopopt_array_threshold: int

    def make_constant_array(self, builder, typ, ary):
        if ary.nbytes <= self._loopopt_array_threshold:
            return super().make_constant_array(builder, typ, ary)
        # As numba 0.68's make_constant_array does for arrays it does not
        # freeze: the data pointer and the array object (its parent, which
        # boxing returns) become dynamic globals, which also marks the library
        # as not cachable.
        library = self.active_code_library
        kept = library.__dict__.setdefault(LIBRARY_ATTR, [])
        if not any(held is ary for held, _ in kept):
            kept.append((ary, ary.nbytes))
        dataptr = ary.ctypes.data
        data = self.add_dynamic_addr(builder, dataptr, info=str(type(dataptr)))
        rt_addr = self.add_dynamic_addr(builder, id(ary), info=str(type(ary)))
        llintp = self.get_value_type(types.intp)
        shape = cgutils.create_constant_array(
            llintp, [self.get_constant(types.intp, s) for s in ary.shape])
        strides = cgutils.create_constant_array(
            llintp, [self.get_constant(types.intp, s) for s in ary.strides])
        cary = self.make_array(typ)(self, builder)
        self.populate_array(cary, data=builder.bitcast(data, cary.data.type),
                            shape=shape, strides=strides,
                            itemsize=self.get_constant(types.intp, ary.dtype.itemsize),
                            parent=rt_addr, meminfo=None)
        return cary._getvalue()


_CLASSES: dict[type, type] = {}
#: Subroutines numba compiles during lowering are cached per target context;
#: those compiled here may hold arrays by address, so they get a cache of
#: their own per (context cache, threshold), never numba's shared one.
_SUBROUTINE_CACHES: dict[tuple[int, int], tuple[dict, dict]] = {}


def arrays_by_address(targetctx, threshold: int):
    """A copy of ``targetctx`` (as numba's ``subtarget`` makes) that references
    constant arrays of more than ``threshold`` bytes by address."""
    if not targetctx.allow_dynamic_globals:
        return targetctx  # this target cannot reference memory by address
    base = type(targetctx)
    cls = _CLASSES.get(base)
    if cls is None:
        cls = type(f"ArraysByAddress{base.__name__}", (_ArraysByAddress, base),
                   {"__module__": __name__})
        _CLASSES[base] = cls
    ctx = cls.__new__(cls)
    ctx.__dict__.update(targetctx.__dict__)
    ctx._loopopt_array_threshold = threshold
    shared = targetctx.cached_internal_func
    ctx.cached_internal_func = _SUBROUTINE_CACHES.setdefault(
        (id(shared), threshold), (shared, {}))[1]
    return ctx


def arrays_held(library) -> list[tuple[object, int]]:
    """The arrays ``library`` and the libraries it links reference by address
    through this module, each once."""
    found, seen, work = [], set(), [library]
    while work:
        lib = work.pop()
        if id(lib) in seen:
            continue
        seen.add(id(lib))
        for ary, nbytes in lib.__dict__.get(LIBRARY_ATTR, ()):
            if not any(held is ary for held, _ in found):
                found.append((ary, nbytes))
        work.extend(getattr(lib, "_linking_libraries", ()))
    return found


def megabytes(nbytes: int) -> str:
    return f"{nbytes / 1e6:.2g} MB"


def report(state, emit) -> None:
    """One ``ArrayByAddress`` analysis remark per array the compiled code
    references by address, at the first line that loads it."""
    library = state.library
    threshold = getattr(state.targetctx, "_loopopt_array_threshold", None)
    if library is None or threshold is None:
        return
    held = arrays_held(library)
    if not held:
        return
    where: dict[int, tuple[str, ir.Loc]] = {}
    if state.func_ir is not None:
        for block in state.func_ir.blocks.values():
            for stmt in block.body:
                value = stmt.value if isinstance(stmt, ir.Assign) else None
                if isinstance(value, (ir.Global, ir.FreeVar, ir.Const)):
                    where.setdefault(id(value.value),
                                     (getattr(value, "name", None), stmt.loc))
    for ary, nbytes in held:
        name, loc = where.get(id(ary), (None, None))
        shown = f"'{name}'" if name else "a constant array"
        emit.analysis("ArrayByAddress", loc,
                      f"{shown} ({megabytes(nbytes)}, more than "
                      f"global_arrays_by_address={threshold} bytes) is referenced by "
                      "address, not copied into the code: the function sees later "
                      "changes to it, and cache=True cannot save it",
                      array=name or "", nbytes=nbytes, threshold=threshold)
