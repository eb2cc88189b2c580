"""Fuse an elementwise array expression (or a gather) into its reductions.

Stock numba materialises ``a*b + c`` into a new array and then sums it: an 80
MB temporary at 1e7 elements.  After numba's own ``nopython_rewrites`` has
built the ``arrayexpr`` tree, this typed pass replaces the expression and its
reductions by one call to a generated kernel that computes each element once
and feeds every reduction of it, with no temporary.

Legal when, all checked before any edit (else a missed remark):

* the reduced array is an ``arrayexpr`` whose array operands have its number
  of dimensions (C-ordered if N-D), or a gather ``x[idx]`` of a 1-D array by
  an integer array of any shape, of booleans, integers, floats or complex
  numbers;
* its reductions (``sum``, ``prod``, ``mean``, ``min``, ``max``, ``any``,
  ``all``, ``argmin``, ``argmax``; functions or methods, ``sum`` with a
  constant ``axis`` of a 2-D expression) are all in the block that computes it;
* if it is also used otherwise (it escapes), it is a C array, which the fused
  loop then fills as it goes (the one allocation stock numba makes, and still
  one pass), and every statement between the expression and its last
  reduction is proven to write no array (deny by default:
  :func:`~numba_loopopt.analysis.effects.may_write_memory`).

Order: the kernel runs where the expression was and raises only what it
raises there (numba's broadcast ``ValueError``, naming the same argument; the
allocation's ``ValueError('array is too big...')`` or ``MemoryError``, by
allocating and freeing the result when it would take a GiB or more; an
``IndexError`` of a gather under ``boundscheck``).  Each reduction's value is
taken where the reduction was, and an empty ``min``/``max``/``argmin``/
``argmax`` raises numba's ``ValueError`` there (:func:`empty_guard`), after
whatever the statements in between printed, stored or raised.

Exactness: the element is computed by the very scalar kernel numba's
array-expression lowering builds (``_arr_expr_to_ast``, compiled with
``error_model='numpy'`` and cast to the output dtype), in the same order, and
each reduction repeats numba's own loop: sequential accumulation from index 0
in the reduction's result type (numba's accumulator type), the first NaN wins
for ``min``/``max``/``argmin``/``argmax``, complex numbers compare
lexicographically, NaN for an empty ``mean``; each accumulator starts from
a value LLVM cannot fold into the first element (a signalling NaN is quieted
as in stock).  So results
are bit-identical to stock numba (with ``fastmath`` both may reassociate).

``np.exp`` of float64s in a 1-D expression of float64s: unless the option
``vector_exp`` is off or :func:`numba_loopopt.vecmath.vector_exp_available`
finds the port not bit-identical to this process's ``exp``, the kernel
(:func:`kernel_source_blocked`) computes the elements a block at a time with
the vectorisable port, recomputes those whose ``exp`` arguments are off its
main path with numba's own element, and reduces each block in order.
"""

from __future__ import annotations

import ast
import copy
import threading

import numba
import numpy as np
from numba.core import ir, types
from numba.core.compiler_machinery import register_pass
from numba.core.ir_utils import build_definitions, find_callname, guard
from numba.np import numpy_support
from numba.np.ufunc.array_exprs import (
    _arr_expr_to_ast,
    _fix_invalid_lineno_ranges,
    _legalize_parameter_names,
)

from .. import vecmath
from ..analysis.defuse import DefUse
from ..analysis.effects import may_write_memory
from ..irbuild import fresh, with_body
from ..pipeline import LoopOptPass
from ..remarks import Missed, RemarkEmitter
from ..runtime import opaque

PASS = "fuse-reduce"

#: Reductions fused, by the names numba's ``find_callname`` gives them.
KINDS = {"sum": "sum", "prod": "prod", "mean": "mean", "min": "min", "amin": "min",
         "max": "max", "amax": "max", "any": "any", "all": "all", "argmin": "argmin",
         "argmax": "argmax"}

#: Element dtypes fused: booleans, integers, floats and complex numbers.
ELEMENT_TYPES = (types.Boolean, types.Integer, types.Float, types.Complex)


def element_family(dtype) -> str:
    """How numba's reductions treat an element type: floats test for NaN,
    complex numbers compare lexicographically, the rest compare plainly."""
    if isinstance(dtype, types.Float):
        return "float"
    if isinstance(dtype, types.Complex):
        return "complex"
    return "plain"


class Reduction:
    __slots__ = ("stmt", "kind", "index", "axis")

    def __init__(self, stmt, kind, index, axis=None):
        self.stmt, self.kind, self.index, self.axis = stmt, kind, index, axis

    @property
    def code(self) -> str:
        """The kind, with the axis of an axis reduction: ``sum@0``."""
        return self.kind if self.axis is None else f"{self.kind}@{self.axis}"

    def describe(self) -> str:
        return self.kind if self.axis is None else f"{self.kind}(axis={self.axis})"


def _literal_int(func_ir, typemap, var: ir.Var):
    ty = typemap.get(var.name)
    if isinstance(ty, types.IntegerLiteral):
        return ty.literal_value
    value = guard(func_ir.get_definition, var)
    if isinstance(value, (ir.Const, ir.Global, ir.FreeVar)) and isinstance(
            value.value, int) and not isinstance(value.value, bool):
        return value.value
    return None


def find_reductions(func_ir, typemap) -> dict[str, list]:
    """Reductions of arrays: ``{array name: [(label, Reduction)]}``.  Only
    ``sum`` may take an argument: a constant ``axis``."""
    found: dict[str, list] = {}
    for label, block in func_ir.blocks.items():
        for index, stmt in enumerate(block.body):
            if not (isinstance(stmt, ir.Assign) and isinstance(stmt.value, ir.Expr)
                    and stmt.value.op == "call" and stmt.value.vararg is None
                    and stmt.value.varkwarg is None):
                continue
            name = guard(find_callname, func_ir, stmt.value, typemap)
            if name is None or name[0] not in KINDS:
                continue
            call = stmt.value
            if name[1] == "numpy" and call.args:
                source, rest = call.args[0], list(call.args[1:])
            elif isinstance(name[1], ir.Var):
                source, rest = name[1], list(call.args)
            else:
                continue
            kws = dict(call.kws)
            axis = None
            if rest or kws:
                if KINDS[name[0]] != "sum" or len(rest) + len(kws) != 1 or (
                        kws and "axis" not in kws):
                    continue
                axis = _literal_int(func_ir, typemap, rest[0] if rest else kws["axis"])
                if axis is None:
                    continue
            if isinstance(typemap.get(source.name), types.Array):
                found.setdefault(source.name, []).append(
                    (label, Reduction(stmt, KINDS[name[0]], index, axis)))
    return found


def match(func_ir, du: DefUse, typemap, source: str, reductions) -> tuple | Missed:
    """``(kind, definition, label)`` of a fusable source, or why not."""
    first = reductions[0][1].stmt
    sites = du.defs.get(source, ())
    if len(sites) != 1:
        return Missed("SourceNotFusable", f"'{source}' is assigned more than once",
                      first.loc)
    site = sites[0]
    value = site.stmt.value
    ty = typemap[source]
    if not (isinstance(ty, types.Array) and isinstance(ty.dtype, ELEMENT_TYPES)
            and (ty.ndim == 1 or ty.layout == "C")):
        return Missed("SourceNotFusable", f"the reduced array has type {ty}; only 1-D "
                      "or C-ordered arrays of booleans and numbers are fused", first.loc)
    if isinstance(value, ir.Expr) and value.op == "arrayexpr":
        for var in value.list_vars():
            vty = typemap[var.name]
            if isinstance(vty, types.Array) and (vty.ndim > ty.ndim or (
                    ty.ndim == 1 and vty.ndim != 1)):
                return Missed("SourceNotFusable", f"operand '{var.name}' is {vty.ndim}-D "
                              f"and the expression {ty.ndim}-D", first.loc)
            if not isinstance(vty, (types.Array, types.Number, types.Boolean)):
                return Missed("SourceNotFusable", f"operand '{var.name}' has type {vty}",
                              first.loc)
        kind = "arrayexpr"
    elif isinstance(value, ir.Expr) and value.op == "getitem" \
            and _is_gather(typemap, value) \
            and ty.ndim == typemap[value.index.name].ndim:
        kind = "gather"
    else:
        return Missed("SourceNotFusable", "the reduced array is not an elementwise "
                      "expression or a gather", first.loc)
    if any(label != site.label for label, _ in reductions):
        return Missed("ReductionElsewhere", "a reduction is in another block than the "
                      "expression", first.loc)
    block = func_ir.blocks[site.label]
    reds = {id(r.stmt) for _, r in reductions}
    # Where the expression and the reductions are now: an earlier fusion in
    # this block has moved them (find_reductions' indices, and the def-use
    # facts' if they were built before it, are from before).
    at = {id(stmt): k for k, stmt in enumerate(block.body)}
    if id(site.stmt) not in at or not reds <= at.keys():
        return Missed("SourceNotFusable", "the expression or a reduction was "
                      "rewritten", first.loc)
    start, last = at[id(site.stmt)], max(at[r] for r in reds)
    escapes = None
    for use in du.uses.get(source, ()):
        stmt = use.stmt
        if id(stmt) in reds:
            continue
        if isinstance(stmt, ir.Assign) and isinstance(stmt.value, ir.Expr) \
                and stmt.value.op == "getattr" and stmt.target.name in {
                    r.stmt.value.func.name for _, r in reductions}:
            continue
        escapes = escapes or stmt
    if escapes is not None and ty != types.Array(ty.dtype, ty.ndim, "C"):
        return Missed("IntermediateEscapes", f"'{source}' is also used at line "
                      f"{escapes.loc.line} and has type {ty}, which the fused loop "
                      "does not build", escapes.loc)
    # The kernel reads the operands where the expression was, as stock
    # numba does, and the reductions' values are used where they were: what
    # happens to the operands in between cannot change them.  But an array
    # that escapes is materialised there, and stock's reductions read it
    # later: nothing in between may write it, through any alias.  Deny by
    # default: only statements proven to write no array's memory may be
    # there.  (What they raise, print or append is kept in order: the kernel
    # raises only what the expression raises, and a min/max/argmin/argmax of
    # no elements raises at its own statement.)
    for stmt in block.body[start + 1:last] if escapes is not None else ():
        if id(stmt) in reds:
            continue
        why = may_write_memory(func_ir, stmt, typemap)
        if why is not None:
            return Missed("InputMayBeWritten", f"{why} runs between the expression and "
                          f"its reductions and may write '{source}', which is also used "
                          f"at line {escapes.loc.line}", stmt.loc)
    for _, r in reductions:
        rty = typemap[r.stmt.target.name]
        if r.axis is not None:
            if not (kind == "arrayexpr" and ty.ndim == 2 and -2 <= r.axis < 2
                    and rty == types.Array(rty.dtype, 1, "C")):
                return Missed("SourceNotFusable", f"{r.describe()} is fused only for "
                              "2-D expressions and axis 0 or 1", r.stmt.loc)
            r.axis %= 2
            continue
        if not isinstance(rty, ELEMENT_TYPES):
            return Missed("SourceNotFusable", f"{r.kind} returns {rty}", r.stmt.loc)
        if r.kind in ("argmin", "argmax") and isinstance(ty.dtype, types.Complex):
            return Missed("SourceNotFusable", f"{r.kind} of complex numbers is not "
                          "fused", r.stmt.loc)
    return kind, value, site, escapes is not None


def _is_gather(typemap, value) -> bool:
    x, idx = typemap[value.value.name], typemap[value.index.name]
    return (isinstance(x, types.Array) and x.ndim == 1
            and isinstance(x.dtype, ELEMENT_TYPES)
            and isinstance(idx, types.Array) and isinstance(idx.dtype, types.Integer))


def element_kernel(expr: ir.Expr, fastmath, returns=None):
    """numba's own scalar kernel for an ``arrayexpr`` (as its lowering builds
    it), and the variables it takes, in order.  ``returns(value, namespace)``,
    if given, makes the function's return expression from the element's AST
    (and may add globals to ``namespace``)."""
    params = sorted(set(expr.list_vars()), key=lambda var: var.name)
    names = [var.name for var in params]
    with _legalize_parameter_names(params) as legal:
        module = ast.parse("def _element(): return", "<numba_loopopt>", "exec")
        module.body[0].args.args = [ast.arg(p, None) for p in legal]
        value, namespace = _arr_expr_to_ast(expr.expr)
        if returns is not None:
            value = returns(value, namespace)
        module.body[0].body[0].value = value
        ast.fix_missing_locations(module)
        _fix_invalid_lineno_ranges(module)
    return _compiled_element(module, namespace, fastmath), names


#: Elements and kernels are called from compiled code only: numba need not
#: build (and compile) their CPython and cfunc wrappers, a good part of a
#: small function's compile time.
_JITTED_CALLERS_ONLY = {"no_cpython_wrapper": True, "no_cfunc_wrapper": True}

_ELEMENTS: dict = {}
_ELEMENTS_LOCK = threading.Lock()


def _compiled_element(module: ast.Module, namespace: dict, fastmath):
    """The dispatcher of the element function ``module`` defines, shared by
    every expression with the same text, globals and flags: the same
    expression in several places (or functions) is compiled once, and so is
    the fused kernel around it (:func:`fused_kernel` keys on the element)."""
    # numba's legal parameter names come from a process-wide counter: number
    # them from 0 so that equal expressions have equal text.
    args = module.body[0].args.args
    rename = {arg.arg: f"_p{k}" for k, arg in enumerate(args)}
    for node in ast.walk(module):
        if isinstance(node, ast.Name) and node.id in rename:
            node.id = rename[node.id]
    for arg in args:
        arg.arg = rename[arg.arg]
    key = (ast.dump(module), tuple(sorted((k, id(v)) for k, v in namespace.items())),
           repr(fastmath))
    with _ELEMENTS_LOCK:
        disp = _ELEMENTS.get(key)
        if disp is None:
            keep = dict(namespace)
            exec(compile(module, "<numba_loopopt>", "exec"), namespace)
            disp = numba.njit(error_model="numpy", fastmath=fastmath,
                              **_JITTED_CALLERS_ONLY)(namespace["_element"])
            # The key holds ids: keep the objects alive with the dispatcher.
            _ELEMENTS[key] = disp
            disp._loopopt_globals = keep
    return disp


def exp_calls(tree, typemap, typingctx) -> tuple[int, int] | None:
    """``(number of np.exp calls, how many of them take a float64)`` in an
    ``arrayexpr`` tree, typing its nodes on the operands' scalar types as
    numba types the element kernel; None if a node does not type."""
    counts = [0, 0]

    def scalar(node):
        if isinstance(node, ir.Var):
            ty = typemap[node.name]
            return ty.dtype if isinstance(ty, types.Array) else ty
        if isinstance(node, ir.Const):
            return numba.typeof(node.value)
        op, args = node
        argtys = tuple(scalar(arg) for arg in args)
        if op is np.exp:
            counts[0] += 1
            counts[1] += argtys == (types.float64,)
        fnty = typingctx.resolve_value_type(op)
        return typingctx.resolve_function_type(fnty, argtys, {}).return_type

    try:
        scalar(tree)
    except Exception:  # noqa: BLE001 - untypable here: no vector exp
        return None
    return counts[0], counts[1]


class _VectorExp(ast.NodeTransformer):
    """Replaces the calls of ``np.exp`` in an element's AST by
    :func:`~numba_loopopt.vecmath.vexp` and collects their (rewritten)
    arguments."""

    def __init__(self, namespace):
        self.namespace = namespace
        self.arguments: list[ast.expr] = []

    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and self.namespace.get(node.func.id) is np.exp \
                and len(node.args) == 1 and not node.keywords:
            self.arguments.append(node.args[0])
            return ast.Call(ast.Name("_vexp", ast.Load()), node.args, [])
        return node


def vector_element_kernel(expr: ir.Expr, fastmath):
    """A scalar kernel besides :func:`element_kernel`'s, with its parameters,
    returning ``(element, ok)``: the element with each ``np.exp`` computed by
    the vectorisable port (exact only on its main path), and whether every
    such ``exp``'s argument is on the main path (the element is then exactly
    numba's)."""

    def returns(value, namespace):
        rewrite = _VectorExp(namespace)
        value = rewrite.visit(value)
        tests = [ast.Call(ast.Name("_vexp_ok", ast.Load()), [copy.deepcopy(arg)], [])
                 for arg in rewrite.arguments] or [ast.Constant(True)]
        ok = tests[0]
        for test in tests[1:]:
            ok = ast.BinOp(ok, ast.BitAnd(), test)
        namespace.update(_vexp=vecmath.vexp, _vexp_ok=vecmath.vexp_ok)
        return ast.Tuple([value, ok], ast.Load())

    return element_kernel(expr, fastmath, returns)[0]


_EMPTY = {"min": "zero-size array to reduction operation minimum which has no "
                 "identity",
          "max": "zero-size array to reduction operation maximum which has no "
                 "identity",
          "argmin": "attempt to get argmin of an empty sequence",
          "argmax": "attempt to get argmax of an empty sequence"}
_EXTREMES = frozenset(_EMPTY)


def _reduction_code(kind: str, j: int, family: str) -> tuple:
    """(set-up lines, update on element ``v`` at index ``i``, lines run on the
    peeled first element, lines run after the loop, lines run when ``v`` is
    NaN -- the kernels share one such test among all reductions) for
    reduction ``j``,
    repeating numba's own loops (``numba/np/arraymath.py``).  ``_ACC{j}`` is
    the reduction's result type."""
    r = f"r{j}"
    if kind.startswith("sum@"):
        # numba's _numpy_sum_axis: a zeroed result, each element added in
        # C order to its slot: each slot sums along the axis in order.
        axis = int(kind[4:])
        return ([f"{r} = np.zeros(n{1 - axis}, _ACC{j})"],
                f"{r}[i{1 - axis}] += _ACC{j}(v)", [], [], [])
    # The starting value passes the optimisation fence: LLVM would fold
    # ``1.0 * v`` (or ``-0.0 + v``) of the first element into ``v``, which
    # keeps a signalling NaN signalling where stock's loop quiets it.
    if kind in ("sum", "mean"):
        return [f"{r} = _V(_ACC{j}(0))"], f"{r} += _ACC{j}(v)", [], [], []
    if kind == "prod":
        return [f"{r} = _V(_ACC{j}(1))"], f"{r} *= _ACC{j}(v)", [], [], []
    if kind == "any":
        return [f"{r} = False"], f"if v:\n    {r} = True", [], [], []
    if kind == "all":
        return [f"{r} = True"], f"if not v:\n    {r} = False", [], [], []
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
        return [], update, peel, final, [f"if not d{j}:", f"    {seen}", f"    d{j} = True"]
    return [], update, peel, final, []


def _on_nan(codes, pad: str) -> list[str]:
    """One test for a NaN element, shared by every reduction that notes it."""
    body = [line for code in codes for line in code[4]]
    return [pad + "if np.isnan(v):", *(pad + "    " + line for line in body)] if body else []


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


def _allocation_probe(dims: list[str]) -> list[str]:
    """Stock numba allocates the expression's result before reducing it: an
    array of ``dims`` too big to be represented raises ``ValueError('array is
    too big...')`` and one the allocator cannot give raises ``MemoryError``.
    When the result would take a GiB or more, the kernel allocates it (and
    frees it at once) with ``np.empty``, numba's own checks, so that exactly
    these exceptions come out; zero dimensions count as 1, since numba's
    overflow check multiplies the dimensions in order."""
    size = " * ".join(f"float(max({d}, 1))" for d in dims)
    shape = ", ".join(dims) + ("," if len(dims) == 1 else "")
    return [f"    if {size} * _ITEMSIZE >= 1073741824.0:",
            f"        np.empty(({shape}), _OUT)"]


def _allocation(dims: list[str], materialise: bool) -> list[str]:
    """The materialised result's allocation, or :func:`_allocation_probe`."""
    if materialise:
        shape = ", ".join(dims) + ("," if len(dims) == 1 else "")
        return [f"    out = np.empty(({shape}), _OUT)"]
    return _allocation_probe(dims)


#: Each reduction's result when there are no elements, if its own code does
#: not give it.  An empty extreme's result is a placeholder: the reduction's
#: statement raises numba's ValueError (:func:`empty_guard`).
_EMPTY_RESULTS = {"mean": "_NAN{j}", "min": "_OUT(0)", "max": "_OUT(0)",
                  "argmin": "0", "argmax": "0"}


def _empty_return(kinds: list[str], materialise: bool) -> list[str]:
    """With a min/max/argmin/argmax, the kernel does not raise on no
    elements (stock raises at the reduction, after whatever statements run
    between the expression and it): it returns placeholders and ``n``, and
    the reduction's own statement raises."""
    if not any(k in _EXTREMES for k in kinds):
        return []
    results = (["out"] if materialise else []) + [
        _EMPTY_RESULTS.get(kind, "r{j}").format(j=j) for j, kind in enumerate(kinds)]
    return ["    if n == 0:", f"        return {', '.join(results + ['n'])}"]


def _epilogue(codes, kinds: list[str], materialise: bool) -> list[str]:
    """After the loop: each reduction's result, then the return."""
    lines = ["    " + line for code in codes for line in code[3]]
    lines += [f"    r{j} = _NAN{j} if n == 0 else _ACC{j}(r{j} / n)"
              for j, kind in enumerate(kinds) if kind == "mean"]
    extremes = any(k in _EXTREMES for k in kinds)
    results = (["out"] if materialise else []) + [f"r{j}" for j in range(len(kinds))] + (
        ["n"] if extremes else [])
    return lines + [f"    return {', '.join(results)}" + ("," if len(results) > 1 else "")]


def _codes(kinds: list[str], family: str, materialise: bool) -> tuple[list, list[int]]:
    """Each reduction's code (:func:`_reduction_code`), the materialising store
    first when there is one, and the positions of the extremes among them."""
    codes = [_reduction_code(kind, j, family) for j, kind in enumerate(kinds)]
    if materialise:
        codes.insert(0, ([], "out[i] = v", ["out[i] = v"], [], []))
    return codes, [j + materialise for j, kind in enumerate(kinds) if kind in _EXTREMES]


def _peeled(codes, extremes: list[int], first: str) -> list[str]:
    """The peeled first element ``first`` (n > 0 here: on no elements the
    kernel has returned), which starts every scan, as in numba's min/max."""
    lines = [f"        v = {first}", "        i = 0"]
    for j, (_, update, peel, *_) in enumerate(codes):
        source = peel if j in extremes else update.split("\n")
        lines += ["        " + line for line in source]
    return lines


def _element_call(fn: str, array_args: list[bool], index: str) -> str:
    """``fn`` applied to every operand, the arrays at ``index``."""
    return "{}({})".format(fn, ", ".join(
        f"a{k}[{index}]" if is_array else f"a{k}" for k, is_array in enumerate(array_args)))


def kernel_source(kinds: list[str], array_args: list[bool], gather: bool,
                  family: str = "float", materialise: bool = False, where: str = "") -> str:
    """Python source of the fused loop for reductions ``kinds`` of elements of
    ``family`` (see :func:`element_family`).  The kernel's namespace holds
    ``_OUT`` (the element dtype), ``_ACC{j}`` (reduction ``j``'s result
    type) and ``_NAN{j}`` (an empty mean).  With ``materialise``, the kernel
    also stores every element into a new array, returned first."""
    n_args = 2 if gather else len(array_args)
    args = [f"a{k}" for k in range(n_args)]
    lines = [f"def _fused({', '.join(args)}):"]
    if gather:
        lines.append("    n = a1.shape[0]")
        loops = [("True", lambda i: f"_V(_OUT(a0[a1[{i}]]))")]
    else:
        arrays = [k for k, is_array in enumerate(array_args) if is_array]
        lines += _broadcast(["n"], [(k, [("n", f"L{k}", f"a{k}.shape[0]")])
                                    for k in arrays], where)
        same = " and ".join(f"L{k} == n" for k in arrays)

        def plain(i):
            return f"_V(_OUT({_element_call('_element', array_args, i)}))"

        def wrapped(i):
            return "_V(_OUT(_element({})))".format(", ".join(
                f"a{k}[{i} if L{k} != 1 else 0]" if array_args[k] else f"a{k}"
                for k in range(n_args)))

        loops = [(same, plain), ("True", wrapped)]
    # Allocated (or probed) where stock numba allocates the expression's
    # result, after the broadcast check, before any reduction.
    lines += _allocation(["n"], materialise)
    codes, extremes = _codes(kinds, family, materialise)
    for setup, *_ in codes:
        lines += ["    " + line for line in setup]
    lines += _empty_return(kinds, materialise)
    for index, (cond, element) in enumerate(loops):
        lines.append(f"    if {cond}:" if index == 0 else "    else:")
        start = "0"
        if extremes:
            lines += _peeled(codes, extremes, element("0"))
            start = "1"
        lines += [f"        for i in range({start}, n):", f"            v = {element('i')}"]
        for _, update, *_ in codes:
            lines += ["            " + line for line in update.split("\n")]
        lines += _on_nan(codes, "            ")
    lines += _epilogue(codes, kinds, materialise)
    return "\n".join(lines) + "\n"


#: Reductions of a float block computed by vecmath's exact block functions.
_BLOCK_EXTREMES = {"max": "_BLOCK_MAX", "min": "_BLOCK_MIN"}


def kernel_source_blocked(kinds: list[str], array_args: list[bool],
                          family: str = "float", materialise: bool = False,
                          block: int = vecmath.BLOCK, where: str = "") -> str:
    """:func:`kernel_source` (1-D, not a gather) with the elements computed a
    block of ``block`` at a time into a stack buffer (no NRT allocation) by
    ``_element_vec`` (:func:`vector_element_kernel`: each ``np.exp`` by the
    vectorisable port; LLVM vectorises this loop), then the few whose ``exp``
    arguments are off the port's main path again by ``_element`` itself, so
    every element has numba's bits.  The reductions then consume the block in
    order, as in :func:`kernel_source`: ``sum``/``prod``/``mean`` keep their
    sequential accumulation; a float ``max``/``min`` scans the block with
    ``_BLOCK_MAX``/``_BLOCK_MIN`` (several running extremes, exact fix-ups
    for zeros and the first NaN).  The broadcasting loop (an operand of
    length 1) is :func:`kernel_source`'s, unchanged."""
    plain = kernel_source(kinds, array_args, gather=False, family=family,
                          materialise=materialise, where=where).split("\n")
    # Reuse the plain kernel's head (broadcast, empty check, set-up) and its
    # broadcasting loop; replace its first loop.
    arrays = [k for k, is_array in enumerate(array_args) if is_array]
    cond = " and ".join(f"L{k} == n" for k in arrays)
    split = plain.index(f"    if {cond}:")
    head, tail = plain[:split], plain[plain.index("    else:", split):]

    def call(fn, index):
        return _element_call(fn, array_args, index)

    codes, extremes = _codes(kinds, family, materialise)
    blocked = {j + materialise: _BLOCK_EXTREMES[kind] for j, kind in enumerate(kinds)
               if kind in _BLOCK_EXTREMES and family == "float"}
    lines = head + [f"    if {cond}:",
                    f"        buf = _carray(_stack_buffer({block}), {block})"]
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
        lines += ["            for j in range(cnt):",
                  "                i = s + j",
                  "                v = _V(buf[j])"]
        for _, update, *_ in rest:
            lines += ["                " + line for line in update.split("\n")]
        lines += _on_nan(rest, "                ")
    return "\n".join(lines + tail) + "\n"


def kernel_source_nd(kinds: list[str], array_args: list[bool], ndim: int,
                     family: str = "float", materialise: bool = False,
                     gather: bool = False, ranks: list[int] | None = None,
                     where: str = "") -> str:
    """:func:`kernel_source` for an N-D expression whose array operands all
    have ``ndim`` dimensions: nested loops in C order (the order numba's
    reductions visit the C-contiguous temporary), a flat index ``i`` for
    ``argmin``/``argmax``, size-1 broadcasting per dimension.  With
    ``gather``, the elements are ``a0[a1[i0, i1, ...]]`` over ``a1``'s
    shape.  ``ranks`` gives each operand's number of dimensions (default:
    ``ndim`` for arrays): one with fewer is aligned to the last dimensions, as
    NumPy broadcasts."""
    n_args = len(array_args)
    arrays = [k for k, is_array in enumerate(array_args) if is_array]
    dims = range(ndim)
    if ranks is None:
        ranks = [ndim if is_array else 0 for is_array in array_args]
    first = {k: ndim - ranks[k] for k in arrays}  # the first output dim each covers
    has = {(k, d) for k in arrays for d in dims if d >= first[k]}
    lines = [f"def _fused({', '.join(f'a{k}' for k in range(n_args))}):"]
    if gather:
        lines += [f"    n{d} = a1.shape[{d}]" for d in dims]
    else:
        lines += _broadcast([f"n{d}" for d in dims], [
            (k, [(f"n{d}", f"L{k}_{d}", f"a{k}.shape[{d - first[k]}]")
                 for d in dims if (k, d) in has]) for k in arrays], where)
    lines.append("    n = " + " * ".join(f"n{d}" for d in dims))
    same = ("True" if gather else
            " and ".join(f"L{k}_{d} == n{d}" for k in arrays for d in dims
                         if (k, d) in has))

    def element(index, wrap):
        if gather:
            return f"_V(_OUT(a0[a1[{', '.join(index)}]]))"
        def at(k):
            if not array_args[k]:
                return f"a{k}"
            parts = [f"{index[d]} if L{k}_{d} != 1 else 0" if wrap else index[d]
                     for d in dims if (k, d) in has]
            return f"a{k}[{', '.join(parts) or '()'}]"  # () for a 0-d array
        return f"_V(_OUT(_element({', '.join(at(k) for k in range(n_args))})))"

    lines += _allocation([f"n{d}" for d in dims], materialise)
    codes = [_reduction_code(kind, j, family) for j, kind in enumerate(kinds)]
    for setup, *_ in codes:
        lines += ["    " + line for line in setup]
    lines += _empty_return(kinds, materialise)
    index = [f"i{d}" for d in dims]
    loops = ((same, False),) if gather else ((same, False), ("True", True))
    for number, (cond, wrap) in enumerate(loops):
        lines.append(f"    if {cond}:" if number == 0 else "    else:")
        pad = "        "
        if any(k in _EXTREMES for k in kinds):
            # The first element starts the scans; the loop then visits it
            # again, which changes nothing (it is neither smaller nor larger
            # than itself, and a NaN there has ended the scan already).
            lines.append(pad + "v = " + element(["0"] * ndim, wrap))
            for j, kind in enumerate(kinds):
                if kind in _EXTREMES:
                    lines += [pad + line for line in codes[j][2]]
        lines.append(pad + "i = 0")
        for d in dims:
            lines.append(pad + f"for i{d} in range(n{d}):")
            pad += "    "
        lines.append(pad + "v = " + element(index, wrap))
        if materialise:
            lines.append(pad + f"out[{', '.join(index)}] = v")
        for _, update, *_ in codes:
            lines += [pad + line for line in update.split("\n")]
        lines += _on_nan(codes, pad)
        lines.append(pad + "i += 1")
    lines += _epilogue(codes, kinds, materialise)
    return "\n".join(lines) + "\n"


@numba.njit
def _identity(value):
    return value


_KERNELS: dict = {}
_KERNELS_LOCK = threading.Lock()


def fused_kernel(source: str, element, flags, constants: dict, reassociate=False):
    """The compiled kernel for ``source`` (shared by identical kernels), with
    ``constants`` (``_OUT``, ``_V``, ``_ACC{j}``, ``_NAN{j}``) in its
    namespace.  The kernel has the caller's fastmath flags, or only
    ``reassoc`` with ``reassociate``; the element, compiled separately, keeps
    the caller's flags either way."""
    consts = tuple(sorted((k, repr(v)) for k, v in constants.items()))
    key = (source, element, consts, flags.boundscheck, str(flags.fastmath),
           flags.error_model, reassociate)
    with _KERNELS_LOCK:
        disp = _KERNELS.get(key)
        if disp is None:
            namespace = {"np": np, "_element": element, **constants}
            exec(compile(source, "<numba_loopopt fused kernel>", "exec"), namespace)
            fastmath = flags.fastmath.flags if flags.fastmath else False
            if reassociate and not fastmath:
                fastmath = {"reassoc"}
            disp = numba.njit(boundscheck=bool(flags.boundscheck), fastmath=fastmath or False,
                              error_model=flags.error_model,
                              **_JITTED_CALLERS_ONLY)(namespace["_fused"])
            # Reads its operands, writes only the array it allocates.
            disp._loopopt_pure = True
            _KERNELS[key] = disp
    return disp


_GUARDS: dict = {}


def empty_guard(kind: str):
    """``guard(n, value)``: ``value``, or numba's ``ValueError`` for ``kind``
    (min, max, argmin, argmax) of no elements when ``n == 0``.  It replaces
    the reduction's statement, so the exception comes where stock raises it."""
    with _KERNELS_LOCK:
        disp = _GUARDS.get(kind)
        if disp is None:
            message = _EMPTY[kind]

            def guard(n, value):
                if n == 0:
                    raise ValueError(message)
                return value

            disp = numba.njit(**_JITTED_CALLERS_ONLY)(guard)
            disp._loopopt_pure = True
            _GUARDS[kind] = disp
    return disp


@register_pass(mutates_CFG=False, analysis_only=False)
class FuseReductions(LoopOptPass):
    """The fuse-reduce pass; see the module docstring."""

    _name = "loopopt_fuse_reduce"
    pass_name = PASS
    options_field = "fuse_reduce"

    def transform(self, state, options, emit: RemarkEmitter) -> bool:
        func_ir, typemap = state.func_ir, state.typemap
        candidates = find_reductions(func_ir, typemap)
        if not candidates:
            return False
        func_ir._definitions = build_definitions(func_ir.blocks)
        changed = False
        # One def-use build serves every candidate whose names no fusion so
        # far has touched (a fusion replaces statements of its own block
        # only); a candidate that reads or is read by an earlier fused
        # expression gets a new one.  A build per candidate was quadratic in
        # the number of reductions.
        du, touched = None, set()
        for source, reductions in candidates.items():
            if du is None or source in touched:
                du, touched = DefUse(func_ir.blocks), set()
            found = match(func_ir, du, typemap, source, reductions)
            if isinstance(found, Missed):
                emit.missed(found.key, found.loc, found.message)
                continue
            label = found[2].label
            before = func_ir.blocks[label].body
            note = self._fuse(state, source, reductions, *found,
                              reassociate=options.reassociate,
                              vector_exp=options.vector_exp)
            after = func_ir.blocks[label].body
            kept = {id(stmt) for stmt in before} & {id(stmt) for stmt in after}
            for stmt in before + after:
                if id(stmt) not in kept:
                    touched.update(var.name for var in stmt.list_vars())
            changed = True
            kinds = ", ".join(r.describe() for _, r in reductions)
            what = f"'{source}'" if not source.startswith("$") else "the array"
            how = ("which is also stored into the array once, in the same loop"
                   if found[3] else "without materialising it")
            if options.reassociate and not state.flags.fastmath:
                how += " (accumulations reassociated: reassociate=True)"
            extra = {}
            if note is not None:
                how += f"; {note[1]}"
                extra["vector_exp"] = note[0]
            emit.passed("Fused", reductions[0][1].stmt.loc,
                        f"{kinds} of {what} computed in one loop with its "
                        f"{found[0]}, {how}", reductions=kinds, **extra)
        if changed:
            func_ir._definitions = build_definitions(func_ir.blocks)
        return changed

    @staticmethod
    def _fuse(state, source, reductions, kind, value, site, escapes, reassociate=False,
              vector_exp=True):
        """Replace the expression and its reductions by the fused kernel's
        call.  Returns None, or for an expression that calls ``np.exp`` on
        float64s ``(whether the vectorised exp is used, a note saying so or
        why not)``."""
        func_ir, typemap, calltypes = state.func_ir, state.typemap, state.calltypes
        flags = state.flags
        fastmath = flags.fastmath.flags if flags.fastmath else False
        kinds = [r.code for _, r in sorted(reductions, key=lambda x: x[1].index)]
        reds = [r for _, r in sorted(reductions, key=lambda x: x[1].index)]
        dtype = typemap[source].dtype
        family = element_family(dtype)
        note = extra = None
        if kind == "arrayexpr":
            element, names = element_kernel(value, fastmath or False)
            array_args = [isinstance(typemap[n], types.Array) for n in names]
            ranks = [getattr(typemap[n], "ndim", 0) for n in names]
            ndim = typemap[source].ndim
            # numba's broadcast error ends in the location of the last
            # statement it compiled: usually the first line of the kernel it
            # builds for the expression, in the expression's file.
            where = f'\nFile "{value.loc.filename}", line 1, '
            note = _vector_exp_decision(value, typemap, state.typingctx, dtype, ndim,
                                        reds, vector_exp)
            if note is not None and note[0]:
                extra = {"_element_vec": vector_element_kernel(value, fastmath or False),
                         "_carray": numba.carray, "_stack_buffer": vecmath.stack_buffer,
                         "_BLOCK_MAX": vecmath.block_max, "_BLOCK_MIN": vecmath.block_min}
                src = kernel_source_blocked(kinds, array_args, family=family,
                                            materialise=escapes, where=where)
            elif ndim == 1 and all(r.axis is None for r in reds):
                src = kernel_source(kinds, array_args, gather=False, family=family,
                                    materialise=escapes, where=where)
            else:
                src = kernel_source_nd(kinds, array_args, ndim, family=family,
                                       materialise=escapes, ranks=ranks, where=where)
        else:
            element, names = None, [value.value.name, value.index.name]
            ndim = typemap[source].ndim
            if ndim == 1 and all(r.axis is None for r in reds):
                src = kernel_source(kinds, [True, True], gather=True, family=family,
                                    materialise=escapes)
            else:
                src = kernel_source_nd(kinds, [True, True], ndim, family=family,
                                       materialise=escapes, gather=True)
        # Without fastmath the element passes through an optimisation fence
        # before it is accumulated, as it passes through memory in stock numba.
        constants = {"_OUT": numpy_support.as_dtype(dtype).type,
                     "_ITEMSIZE": float(numpy_support.as_dtype(dtype).itemsize),
                     "_V": _identity if fastmath or reassociate else opaque}
        for j, r in enumerate(reds):
            rty = typemap[r.stmt.target.name]
            rty = numpy_support.as_dtype(getattr(rty, "dtype", rty)).type
            constants[f"_ACC{j}"] = rty
            if r.kind == "mean":
                constants[f"_NAN{j}"] = rty(complex("nan+nanj") if family == "complex"
                                            else np.nan)
        if extra:
            constants.update(extra)
        disp = fused_kernel(src, element, flags, constants, reassociate)
        block = func_ir.blocks[site.label]
        scope, loc = block.scope, site.stmt.loc
        fn = fresh(scope, "fused_kernel", loc)
        argvars = [ir.Var(scope, n, loc) for n in names]
        call = ir.Expr.call(fn, argvars, (), loc)
        argtys = tuple(typemap[n] for n in names)
        fnty = state.typingctx.resolve_value_type(disp)
        sig = fnty.get_call_type(state.typingctx, argtys, {})
        typemap[fn.name] = fnty
        calltypes[call] = sig
        extremes = [r for r in reds if r.kind in _EXTREMES]
        size = None
        if len(reds) == 1 and not escapes and not extremes:
            result, unpack = reds[0].stmt.target, {}
        else:
            result = fresh(scope, "fused_results", loc)
            typemap[result.name] = sig.return_type
            if extremes:
                size = fresh(scope, "fused_size", loc)
                typemap[size.name] = sig.return_type.types[-1]
            unpack = {id(r.stmt): _unpack(state, result, j + escapes, r, size)
                      for j, r in enumerate(reds)}
        getattrs = {r.stmt.value.func.name for r in reds}
        body = []
        for stmt in block.body:
            if stmt is site.stmt:
                body += [ir.Assign(ir.Global("_fused", disp, loc), fn, loc),
                         ir.Assign(call, result, loc)]
                if escapes:
                    body.append(ir.Assign(ir.Expr.static_getitem(result, 0, None, loc),
                                          site.stmt.target, loc))
                if size is not None:
                    body.append(ir.Assign(ir.Expr.static_getitem(
                        result, len(reds) + escapes, None, loc), size, loc))
            elif id(stmt) in unpack:
                body += unpack[id(stmt)]
            elif any(stmt is r.stmt for r in reds):
                continue  # the single reduction now is the call itself
            elif isinstance(stmt, ir.Assign) and stmt.target.name in getattrs \
                    and isinstance(stmt.value, ir.Expr) and stmt.value.op == "getattr":
                continue
            else:
                body.append(stmt)
        func_ir.blocks[site.label] = with_body(block, body)
        if not escapes:
            typemap.pop(source, None)
        return note


def _unpack(state, result: ir.Var, index: int, r: Reduction, size) -> list:
    """The statements that replace reduction ``r``: its value from the
    kernel's results, through :func:`empty_guard` for an extreme."""
    loc, target = r.stmt.loc, r.stmt.target
    take = ir.Expr.static_getitem(result, index, None, loc)
    if r.kind not in _EXTREMES:
        return [ir.Assign(take, target, loc)]
    scope, typemap = target.scope, state.typemap
    value, fn = fresh(scope, "fused_value", loc), fresh(scope, "empty_guard", loc)
    typemap[value.name] = typemap[result.name].types[index]
    disp = empty_guard(r.kind)
    fnty = state.typingctx.resolve_value_type(disp)
    argtys = (typemap[size.name], typemap[value.name])
    call = ir.Expr.call(fn, [size, value], (), loc)
    typemap[fn.name] = fnty
    state.calltypes[call] = fnty.get_call_type(state.typingctx, argtys, {})
    return [ir.Assign(take, value, loc), ir.Assign(ir.Global("_guard", disp, loc), fn, loc),
            ir.Assign(call, target, loc)]


def _vector_exp_decision(value, typemap, typingctx, dtype, ndim, reds,
                         enabled) -> tuple[bool, str] | None:
    """Whether the fused kernel computes ``np.exp`` with the vectorised port
    (:mod:`numba_loopopt.vecmath`), and the remark's note; None when the
    expression has no ``np.exp`` of float64s (nothing to say)."""
    counts = exp_calls(value.expr, typemap, typingctx)
    if counts is None or counts[1] == 0:
        return None
    if not enabled:
        return False, "np.exp not vectorised: fuse_reduce.vector_exp is off"
    if ndim != 1 or any(r.axis is not None for r in reds):
        return False, "np.exp not vectorised: the expression is not 1-D"
    if dtype != types.float64:
        return False, f"np.exp not vectorised: the elements are {dtype}, not float64"
    available, why = vecmath.vector_exp_status()
    if not available:
        return False, f"np.exp not vectorised: {why}"
    return True, (f"np.exp vectorised ({counts[1]} call{'s' * (counts[1] > 1)}, "
                  f"blocks of {vecmath.BLOCK} elements; the vectorised exp was "
                  f"{why})")
