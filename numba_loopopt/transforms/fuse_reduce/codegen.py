"""Python source of fuse-reduce's kernels: pure text, no numba in it.

The generators :func:`kernel_source` (1-D, and gathers), :func:`kernel_source_nd`
(N-D, broadcasting ranks, ``sum`` along an axis) and
:func:`kernel_source_blocked` (1-D with the vectorised ``exp``) return the
source of a function ``_fused(a0, a1, ...)``.  They are built from the same
parts, each a function returning a list of lines:

* the head: the ``def`` line and the operands' sizes (:func:`_broadcast`, or
  the index array's shape for a gather);
* the prologue: the result's allocation or allocation probe
  (:func:`_allocation`), each reduction's set-up and the early return on no
  elements (:func:`_empty_return`);
* the loops, one per branch: the contiguous operands' loop, then the loop
  that broadcasts operands of length 1 (:func:`_scalar_loop`,
  :func:`_blocked_loop`, :func:`_nd_loop`);
* the epilogue: each reduction's result and the return (:func:`_epilogue`).

Each reduction's own lines come from :func:`_reduction_code`, which repeats
numba's loops (``numba/np/arraymath.py``).  The kernel's namespace
(:func:`~numba_loopopt.transforms.fuse_reduce.kernels.fused_kernel`) holds
``np``, ``_element`` (the element function), ``_OUT`` (the element dtype),
``_ITEMSIZE``, ``_V`` (the optimisation fence or the identity), ``_ACC{j}``
(reduction ``j``'s result type), ``_NAN{j}`` (an empty mean) and, for the
blocked kernel, ``_element_vec``, ``_carray``, ``_stack_buffer``,
``_BLOCK_MAX`` and ``_BLOCK_MIN``.

The generated text is part of the kernel cache's key and is checked against
golden files (``tests/golden/fuse_reduce/``): a change here shows up there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ...runtime import ALLOCATE_FROM
from ...vecmath import BLOCK

#: Reductions that start from the first element and have no value on no
#: elements: the kernel returns placeholders and the element count, and the
#: reduction's own statement raises numba's ValueError
#: (:func:`~numba_loopopt.transforms.fuse_reduce.kernels.empty_guard`).
EXTREMES = frozenset({"min", "max", "argmin", "argmax"})

#: Reductions of a float block computed by vecmath's exact block functions.
_BLOCK_EXTREMES = {"max": "_BLOCK_MAX", "min": "_BLOCK_MIN"}

#: Each reduction's result when there are no elements, if its own code does
#: not give it.  An empty extreme's result is a placeholder: the reduction's
#: statement raises numba's ValueError (``empty_guard``).
_EMPTY_RESULTS = {"mean": "_NAN{j}", "min": "_OUT(0)", "max": "_OUT(0)",
                  "argmin": "0", "argmax": "0"}

IND, IND2 = "    ", "        "


class ReductionCode(NamedTuple):
    """One reduction's lines in a kernel (without indentation)."""

    setup: list[str]
    """Before the loop."""
    update: str
    """On element ``v`` at flat index ``i`` (may span lines)."""
    peel: list[str]
    """On the peeled first element (extremes only)."""
    final: list[str]
    """After the loop."""
    on_nan: list[str]
    """When ``v`` is NaN: the kernels share one such test among all reductions."""


def _reduction_code(kind: str, j: int, family: str) -> ReductionCode:
    """Reduction ``j``'s code, repeating numba's own loops
    (``numba/np/arraymath.py``).  ``_ACC{j}`` is the reduction's result type;
    ``family`` is :func:`~numba_loopopt.transforms.fuse_reduce.matching.element_family`'s."""
    r = f"r{j}"
    if kind.startswith("sum@"):
        # numba's _numpy_sum_axis: a zeroed result, each element added in
        # C order to its slot: each slot sums along the axis in order.
        axis = int(kind[4:])
        return ReductionCode([f"{r} = np.zeros(n{1 - axis}, _ACC{j})"],
                             f"{r}[i{1 - axis}] += _ACC{j}(v)", [], [], [])
    # The starting value passes the optimisation fence: LLVM would fold
    # ``1.0 * v`` (or ``-0.0 + v``) of the first element into ``v``, which
    # keeps a signalling NaN signalling where stock's loop quiets it.
    # "meansum": a mean under numba < 0.66, which divides the sum by the size
    # at the reduction's statement (``mean_division``); the kernel returns
    # the sum in the accumulator type, and ``n``.
    if kind in ("sum", "mean", "meansum"):
        return ReductionCode([f"{r} = _V(_ACC{j}(0))"], f"{r} += _ACC{j}(v)", [], [], [])
    if kind == "prod":
        return ReductionCode([f"{r} = _V(_ACC{j}(1))"], f"{r} *= _ACC{j}(v)", [], [], [])
    if kind == "any":
        return ReductionCode([f"{r} = False"], f"if v:\n    {r} = True", [], [], [])
    if kind == "all":
        return ReductionCode([f"{r} = True"], f"if not v:\n    {r} = False", [], [], [])
    less = kind in ("min", "argmin")
    cmp = "<" if less else ">"
    if family == "complex":
        better = (f"v.real {cmp} m{j}.real or (v.real == m{j}.real and "
                  f"v.imag {cmp} m{j}.imag)")
    else:
        better = f"v {cmp} m{j}"
    arg = kind.startswith("arg")
    keep = f"m{j} = v" + (f"\n    {r} = i" if arg else "")
    update = f"if {better}:\n    " + keep
    peel = [f"m{j} = v"] + ([f"{r} = 0"] if arg else [])
    final = [] if arg else [f"{r} = m{j}"]
    if family == "float":
        # The first NaN wins, as in numba, which stops at it.  The scan goes
        # on (no comparison with a NaN is true, so it cannot move the
        # extreme) and the NaN is kept aside: a rarely taken branch, where
        # testing for it before each comparison would cost a third of the
        # loop's time.
        # (nan{j}, not n{j}: the N-D kernel's sizes are n0, n1, ...)
        seen = f"nan{j} = " + ("i" if arg else "v")
        peel += [f"d{j} = np.isnan(v)", f"nan{j} = " + ("0" if arg else "v")]
        final = [f"{r} = nan{j} if d{j} else " + (r if arg else f"m{j}")]
        return ReductionCode([], update, peel, final,
                             [f"if not d{j}:", f"    {seen}", f"    d{j} = True"])
    return ReductionCode([], update, peel, final, [])


def _codes(kinds: list[str], family: str,
           materialise: bool) -> tuple[list[ReductionCode], list[int]]:
    """Each reduction's code (:func:`_reduction_code`), the 1-D kernels'
    materialising store first when there is one, and the positions of the
    extremes among them."""
    codes = [_reduction_code(kind, j, family) for j, kind in enumerate(kinds)]
    if materialise:
        codes.insert(0, ReductionCode([], "out[i] = v", ["out[i] = v"], [], []))
    return codes, [j + materialise for j, kind in enumerate(kinds) if kind in EXTREMES]


def _indented(pad: str, codes, part: str) -> list[str]:
    """Part ``part`` (``"setup"``, ``"update"``, ...) of every code, at ``pad``."""
    lines = []
    for code in codes:
        value = getattr(code, part)
        lines += [pad + line for line in (value.split("\n") if isinstance(value, str)
                                          else value)]
    return lines


def _on_nan(codes, pad: str) -> list[str]:
    """One test for a NaN element, shared by every reduction that notes it."""
    body = [line for code in codes for line in code.on_nan]
    return [pad + "if np.isnan(v):", *(pad + IND + line for line in body)] if body else []


# -- the head ---------------------------------------------------------------

def _def(n_args: int) -> list[str]:
    return [f"def _fused({', '.join(f'a{k}' for k in range(n_args))}):"]


def _broadcast(sizes: list[str], arrays: list[tuple[int, list[tuple[str, str, str]]]],
               where: str = "") -> list[str]:
    """Lines setting each of ``sizes`` to the broadcast of the operands'
    lengths, as numba's ``_broadcast_onto`` does it: operand by operand
    (``(argument number, [(size, length name, length expression)])``), each
    dimension starting at 1; a length other than 1 and the size so far raises
    numba's ValueError naming the argument, whose message ends in ``where``
    (numba adds the location of the last statement it compiled)."""
    lines = [f"    {size} = 1" for size in sizes]
    for argno, dims in arrays:
        message = f"unable to broadcast argument {argno} to output array{where}"
        for size, name, expr in dims:
            lines += [f"    {name} = {expr}",
                      f"    if {size} != 1:",
                      f"        if {name} != {size} and {name} != 1:",
                      f"            raise ValueError({message!r})",
                      f"    elif {name} != 1:",
                      f"        {size} = {name}"]
    return lines


def _sizes_1d(array_args: list[bool], gather: bool, where: str) -> list[str]:
    """``n``: the index array's length for a gather, else the operands'
    broadcast length (each array operand's length in ``L{k}``)."""
    if gather:
        return ["    n = a1.shape[0]"]
    return _broadcast(["n"], [(k, [("n", f"L{k}", f"a{k}.shape[0]")])
                              for k in _arrays(array_args)], where)


def _arrays(array_args: list[bool]) -> list[int]:
    return [k for k, is_array in enumerate(array_args) if is_array]


# -- the prologue -----------------------------------------------------------

def _allocation_probe(dims: list[str]) -> list[str]:
    """Stock numba allocates the expression's result before reducing it: an
    array of ``dims`` too big to be represented raises ``ValueError('array is
    too big...')`` and one the allocator cannot give raises ``MemoryError``.
    When the result would take ``runtime.ALLOCATE_FROM`` bytes (a GiB) or
    more -- the bound fuse-loops' contracted allocations use too -- the kernel
    allocates it (and
    frees it at once) with ``np.empty``, numba's own checks, so that exactly
    these exceptions come out; zero dimensions count as 1, since numba's
    overflow check multiplies the dimensions in order."""
    size = " * ".join(f"float(max({d}, 1))" for d in dims)
    shape = ", ".join(dims) + ("," if len(dims) == 1 else "")
    return [f"    if {size} * _ITEMSIZE >= {float(ALLOCATE_FROM)!r}:",
            f"        np.empty(({shape}), _OUT)"]


def _allocation(dims: list[str], materialise: bool) -> list[str]:
    """The materialised result's allocation, or :func:`_allocation_probe`."""
    if materialise:
        shape = ", ".join(dims) + ("," if len(dims) == 1 else "")
        return [f"    out = np.empty(({shape}), _OUT)"]
    return _allocation_probe(dims)


def _empty_return(kinds: list[str], materialise: bool) -> list[str]:
    """With a min/max/argmin/argmax, the kernel does not raise on no
    elements (stock raises at the reduction, after whatever statements run
    between the expression and it): it returns placeholders and ``n``, and
    the reduction's own statement raises."""
    if not any(k in EXTREMES for k in kinds):
        return []
    results = (["out"] if materialise else []) + [
        _EMPTY_RESULTS.get(kind, "r{j}").format(j=j) for j, kind in enumerate(kinds)]
    return ["    if n == 0:", f"        return {', '.join(results + ['n'])}"]


def _prologue(dims: list[str], codes, kinds: list[str], materialise: bool) -> list[str]:
    """After the sizes: the result allocated (or probed) where stock numba
    allocates the expression's result, after the broadcast check and before
    any reduction; the reductions' set-up; the return on no elements."""
    return (_allocation(dims, materialise) + _indented(IND, codes, "setup")
            + _empty_return(kinds, materialise))


# -- the loops --------------------------------------------------------------

def _branch(number: int, cond: str) -> str:
    """The line opening loop ``number``: the first under ``cond``, the other
    one its ``else``."""
    return f"    if {cond}:" if number == 0 else "    else:"


def _element_call(fn: str, array_args: list[bool], index: str) -> str:
    """``fn`` applied to every operand, the arrays at ``index``."""
    return "{}({})".format(fn, ", ".join(
        f"a{k}[{index}]" if is_array else f"a{k}" for k, is_array in enumerate(array_args)))


Element = Callable[[str], str]


def _loops_1d(array_args: list[bool], gather: bool) -> list[tuple[str, Element]]:
    """The 1-D kernel's loops: ``(condition, element at an index)`` for the
    operands at full length, then (not for a gather) for operands broadcast
    from length 1."""
    if gather:
        return [("True", lambda i: f"_V(_OUT(a0[a1[{i}]]))")]
    same = " and ".join(f"L{k} == n" for k in _arrays(array_args))

    def plain(i):
        return f"_V(_OUT({_element_call('_element', array_args, i)}))"

    def wrapped(i):
        return "_V(_OUT(_element({})))".format(", ".join(
            f"a{k}[{i} if L{k} != 1 else 0]" if is_array else f"a{k}"
            for k, is_array in enumerate(array_args)))

    return [(same, plain), ("True", wrapped)]


def _peeled(codes, extremes: list[int], first: str) -> list[str]:
    """The peeled first element ``first`` (n > 0 here: on no elements the
    kernel has returned), which starts every scan, as in numba's min/max."""
    lines = [f"        v = {first}", "        i = 0"]
    for j, code in enumerate(codes):
        source = code.peel if j in extremes else code.update.split("\n")
        lines += [IND2 + line for line in source]
    return lines


def _scalar_loop(element: Element, codes, extremes: list[int]) -> list[str]:
    """A 1-D loop over the elements, each fed to every reduction; with an
    extreme, the first element is peeled."""
    lines, start = [], "0"
    if extremes:
        lines += _peeled(codes, extremes, element("0"))
        start = "1"
    pad = IND2 + IND
    lines += [f"        for i in range({start}, n):", f"{pad}v = {element('i')}"]
    return lines + _indented(pad, codes, "update") + _on_nan(codes, pad)


def _blocked_loop(array_args: list[bool], codes, extremes: list[int], materialise: bool,
                  kinds: list[str], family: str, block: int) -> list[str]:
    """The 1-D loop of :func:`kernel_source_blocked`: the elements a block at
    a time into a stack buffer, then the reductions over the block."""

    def call(fn, index):
        return _element_call(fn, array_args, index)

    blocked = {j + materialise: _BLOCK_EXTREMES[kind] for j, kind in enumerate(kinds)
               if kind in _BLOCK_EXTREMES and family == "float"}
    lines = [f"        buf = _carray(_stack_buffer({block}), {block})"]
    first = "0"
    if extremes:
        lines += _peeled(codes, extremes, f"_V(_OUT({call('_element', '0')}))")
        first = "1"
    lines += [f"        for s in range({first}, n, {block}):",
              f"            cnt = min({block}, n - s)",
              "            bad = False",
              "            for j in range(cnt):",
              "                u = np.uint64(s + j)",
              f"                e, ok = {call('_element_vec', 'u')}",
              "                bad |= not ok",
              "                buf[j] = _OUT(e)",
              "            if bad:",
              "                for j in range(cnt):",
              "                    u = np.uint64(s + j)",
              f"                    e, ok = {call('_element_vec', 'u')}",
              "                    if not ok:",
              f"                        buf[j] = _OUT({call('_element', 'u')})"]
    for j, fn in blocked.items():
        r = j - materialise
        lines.append(f"            m{r}, d{r}, nan{r} = {fn}(buf, cnt, m{r}, d{r}, nan{r})")
    rest = [code for j, code in enumerate(codes) if j not in blocked]
    if rest:
        pad = "                "
        lines += ["            for j in range(cnt):",
                  f"{pad}i = s + j",
                  f"{pad}v = _V(buf[j])"]
        lines += _indented(pad, rest, "update") + _on_nan(rest, pad)
    return lines


# -- the epilogue -----------------------------------------------------------

def _epilogue(codes, kinds: list[str], materialise: bool) -> list[str]:
    """After the loop: each reduction's result, then the return."""
    lines = _indented(IND, codes, "final")
    lines += [f"    r{j} = _NAN{j} if n == 0 else _ACC{j}(r{j} / n)"
              for j, kind in enumerate(kinds) if kind == "mean"]
    sized = any(k in EXTREMES or k == "meansum" for k in kinds)
    results = (["out"] if materialise else []) + [f"r{j}" for j in range(len(kinds))] + (
        ["n"] if sized else [])
    return lines + [f"    return {', '.join(results)}" + ("," if len(results) > 1 else "")]


def _text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


# -- the generators ---------------------------------------------------------

def kernel_source(kinds: list[str], array_args: list[bool], gather: bool,
                  family: str = "float", materialise: bool = False, where: str = "") -> str:
    """Python source of the fused loop for reductions ``kinds`` (``"sum"``,
    ..., ``"sum@0"`` for an axis) of elements of ``family`` (``"float"``,
    ``"complex"``, ``"plain"``) over operands ``a{k}``, arrays where
    ``array_args`` says so; with ``gather``, the elements are
    ``a0[a1[i]]``.  With ``materialise``, the kernel also stores every
    element into a new array, returned first.  ``where`` ends the broadcast
    error's message."""
    codes, extremes = _codes(kinds, family, materialise)
    lines = (_def(2 if gather else len(array_args)) + _sizes_1d(array_args, gather, where)
             + _prologue(["n"], codes, kinds, materialise))
    for number, (cond, element) in enumerate(_loops_1d(array_args, gather)):
        lines += [_branch(number, cond), *_scalar_loop(element, codes, extremes)]
    return _text(lines + _epilogue(codes, kinds, materialise))


def kernel_source_blocked(kinds: list[str], array_args: list[bool],
                          family: str = "float", materialise: bool = False,
                          block: int = BLOCK, where: str = "") -> str:
    """:func:`kernel_source` (1-D, not a gather) with the elements computed a
    block of ``block`` at a time into a stack buffer (no NRT allocation) by
    ``_element_vec`` (each ``np.exp`` by the vectorisable port; LLVM
    vectorises this loop), then the few whose ``exp`` arguments are off the
    port's main path again by ``_element`` itself, so every element has
    numba's bits.  The reductions then consume the block in order, as in
    :func:`kernel_source`: ``sum``/``prod``/``mean`` keep their sequential
    accumulation; a float ``max``/``min`` scans the block with
    ``_BLOCK_MAX``/``_BLOCK_MIN`` (several running extremes, exact fix-ups
    for zeros and the first NaN).  The broadcasting loop (an operand of
    length 1) is :func:`kernel_source`'s, unchanged."""
    codes, extremes = _codes(kinds, family, materialise)
    (same, _), (_, wrapped) = _loops_1d(array_args, gather=False)
    lines = (_def(len(array_args)) + _sizes_1d(array_args, False, where)
             + _prologue(["n"], codes, kinds, materialise))
    lines += [_branch(0, same),
              *_blocked_loop(array_args, codes, extremes, materialise, kinds, family, block)]
    lines += [_branch(1, "True"), *_scalar_loop(wrapped, codes, extremes)]
    # This kernel's source has always ended in an empty line (it was once
    # spliced from the plain kernel's text split at its newlines); kept, so
    # that the source, a key of the kernel cache, is unchanged.
    return _text(lines + _epilogue(codes, kinds, materialise) + [""])


def kernel_source_nd(kinds: list[str], array_args: list[bool], ndim: int,
                     family: str = "float", materialise: bool = False,
                     gather: bool = False, ranks: list[int] | None = None,
                     where: str = "") -> str:
    """:func:`kernel_source` for an N-D expression: nested loops in C order
    (the order numba's reductions visit the C-contiguous temporary), a flat
    index ``i`` for ``argmin``/``argmax``, size-1 broadcasting per
    dimension.  With ``gather``, the elements are ``a0[a1[i0, i1, ...]]``
    over ``a1``'s shape.  ``ranks`` gives each operand's number of dimensions
    (default: ``ndim`` for arrays): one with fewer is aligned to the last
    dimensions, as NumPy broadcasts."""
    dims = range(ndim)
    if ranks is None:
        ranks = [ndim if is_array else 0 for is_array in array_args]
    first = {k: ndim - ranks[k] for k in _arrays(array_args)}  # its first output dim
    has = {(k, d) for k in _arrays(array_args) for d in dims if d >= first[k]}
    sizes = [f"n{d}" for d in dims]
    lines = _def(len(array_args))
    if gather:
        lines += [f"    n{d} = a1.shape[{d}]" for d in dims]
    else:
        lines += _broadcast(sizes, [
            (k, [(f"n{d}", f"L{k}_{d}", f"a{k}.shape[{d - first[k]}]")
                 for d in dims if (k, d) in has]) for k in _arrays(array_args)], where)
    lines.append("    n = " + " * ".join(sizes))
    codes = [_reduction_code(kind, j, family) for j, kind in enumerate(kinds)]
    lines += _prologue(sizes, codes, kinds, materialise)
    same = ("True" if gather else
            " and ".join(f"L{k}_{d} == n{d}" for k in _arrays(array_args) for d in dims
                         if (k, d) in has))
    loops = ((same, False),) if gather else ((same, False), ("True", True))
    for number, (cond, wrap) in enumerate(loops):
        element = _nd_element(array_args, ndim, has, gather, wrap)
        lines += [_branch(number, cond),
                  *_nd_loop(element, codes, kinds, ndim, materialise)]
    return _text(lines + _epilogue(codes, kinds, materialise))


def _nd_element(array_args: list[bool], ndim: int, has: set, gather: bool,
                wrap: bool) -> Callable[[list[str]], str]:
    """The N-D element at a list of indices; with ``wrap``, an operand's
    dimension of length 1 is read at 0."""
    def element(index: list[str]) -> str:
        if gather:
            return f"_V(_OUT(a0[a1[{', '.join(index)}]]))"

        def at(k):
            if not array_args[k]:
                return f"a{k}"
            parts = [f"{index[d]} if L{k}_{d} != 1 else 0" if wrap else index[d]
                     for d in range(ndim) if (k, d) in has]
            return f"a{k}[{', '.join(parts) or '()'}]"  # () for a 0-d array

        return f"_V(_OUT(_element({', '.join(at(k) for k in range(len(array_args)))})))"

    return element


def _nd_loop(element, codes, kinds: list[str], ndim: int, materialise: bool) -> list[str]:
    """The N-D kernel's nested loops in C order, with the flat index ``i``."""
    lines, pad = [], IND2
    if any(k in EXTREMES for k in kinds):
        # The first element starts the scans; the loop then visits it
        # again, which changes nothing (it is neither smaller nor larger
        # than itself, and a NaN there has ended the scan already).
        lines.append(pad + "v = " + element(["0"] * ndim))
        lines += _indented(pad, [code for code, kind in zip(codes, kinds, strict=True)
                                 if kind in EXTREMES], "peel")
    lines.append(pad + "i = 0")
    index = [f"i{d}" for d in range(ndim)]
    for d in range(ndim):
        lines.append(pad + f"for i{d} in range(n{d}):")
        pad += IND
    lines.append(pad + "v = " + element(index))
    if materialise:
        lines.append(pad + f"out[{', '.join(index)}] = v")
    lines += _indented(pad, codes, "update") + _on_nan(codes, pad)
    return lines + [pad + "i += 1"]
