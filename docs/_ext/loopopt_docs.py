"""Sphinx directives that keep the numba_loopopt docs true to the code.

``.. loopopt-options::``
    A table of every option, generated from the :class:`numba_loopopt.Options`
    dataclasses (each field's ``metadata["doc"]`` and validation check).

``.. loopopt-pipeline::``
    numba's nopython pipeline with the loopopt passes inserted, built by the
    package's own ``add_loopopt_passes`` with default options.

``.. loopopt-environment::``
    A table of the ``NUMBA_LOOPOPT_*`` environment variables.  Their text lives
    here, but the build warns (and so fails under ``-W``) when the package
    source reads a variable this table lacks, or the table lists one the source
    no longer mentions.

``.. loopopt-remark-keys::``
    A list-table of remark keys written in the page; ``:source:`` names the
    package files (relative to ``numba_loopopt/``) whose keys it documents, and
    the build warns about keys emitted there but missing from the table, and
    about documented keys no file emits.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

#: Every environment variable the package reads, and what it does.
ENVIRONMENT = {
    "NUMBA_LOOPOPT_DISABLE": (
        "Switch every loopopt pass off (``enabled=False`` for each pass) and "
        "``global_arrays_by_address`` too, so functions compile as with stock "
        "numba.  Read at each compilation."),
    "NUMBA_LOOPOPT_DISABLE_PASSES": (
        "Switch the named passes off (``enabled=False``), e.g. "
        "``scalar-replace,fuse-loops``; an unknown name raises ``OptionError`` "
        "when a function compiles.  Read at each compilation."),
    "NUMBA_LOOPOPT_STRICT": (
        "Overrides the ``strict`` option: re-raise a pass's internal errors "
        "instead of rolling the pass back, and do not fall back to the stock "
        "pipeline."),
    "NUMBA_LOOPOPT_WARNINGS": (
        "Overrides the ``warn_missed`` option: report every missed optimisation "
        "as a ``NumbaPerformanceWarning``."),
    "NUMBA_LOOPOPT_VECTOR_EXP": (
        "Overrides the ``fuse_reduce.vector_exp`` option: ``0`` keeps the "
        "scalar ``exp`` call per element in fused kernels "
        "(:doc:`passes/fuse_reduce`)."),
    "NUMBA_LOOPOPT_PYTENSOR": (
        "Enable the PyTensor integration (:doc:`pytensor`) with default "
        "options when ``numba_loopopt`` is imported; PyTensor's numba backend "
        "is patched when it loads (PyTensor itself is not imported)."),
    "NUMBA_LOOPOPT_GLOBAL_ARRAYS_BY_ADDRESS": (
        "Overrides the ``global_arrays_by_address`` option: constant arrays "
        "larger than this many bytes are referenced by address instead of "
        "copied into the code (see :doc:`compile_time`).  An invalid value "
        "raises ``OptionError`` when a function compiles."),
    "NUMBA_LOOPOPT_SKIP_VERSION_CHECK": (
        "Import the package under a numba release outside the supported range "
        "instead of raising ``ImportError`` (untested; for trying a new numba). "
        "Read once, at import time."),
}

ENV_SYNTAX = {
    "NUMBA_LOOPOPT_DISABLE_PASSES": "unset or empty: no effect; pass names "
                                    "(as in remarks) separated by commas",
    "NUMBA_LOOPOPT_GLOBAL_ARRAYS_BY_ADDRESS": "unset or empty: no effect; an "
                                              "integer >= 0: the size in bytes; "
                                              "``none``: off",
    "NUMBA_LOOPOPT_SKIP_VERSION_CHECK": "any value other than empty or ``0`` skips "
                                        "the check",
}
FLAG_SYNTAX = ("unset or empty: no effect; ``0``, ``false``, ``False``, ``no``: "
               "off; anything else: on")

_ENV_RE = re.compile(r"NUMBA_LOOPOPT_[A-Z_]+[A-Z]")
_KEY_RES = (
    re.compile(r"""\bMissed\(\s*["'](\w+)["']"""),
    re.compile(r"""\bemit\.(?:passed|missed|analysis)\(\s*["'](\w+)["']"""),
    # Some keys are chosen by a conditional expression: "A" if cond else "B".
    # (Keys are CamelCase: "i" if arg else "v" in generated code is no key.)
    re.compile(r"""["']([A-Z]\w+)["']\s+if\s+[\w.]+\s+else\s+["']([A-Z]\w+)["']"""),
)


def _package_dir() -> Path:
    import numba_loopopt

    return Path(numba_loopopt.__file__).parent


def _list_table(header: list[str], rows: list[list[str]], widths: str) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in [header, *rows]:
        for i, cell in enumerate(row):
            cell_lines = cell.splitlines() or [""]
            lead = "   * - " if i == 0 else "     - "
            lines.append(lead + cell_lines[0])
            lines.extend("       " + extra for extra in cell_lines[1:])
    return lines


def _literal(value: object) -> str:
    return f"``{value!r}``"


def _describe_check(check, annotation: object) -> str:
    """The accepted values, from the field's ``_Check`` (whatever attributes
    it has today) or, failing that, its annotation."""
    choices = getattr(check, "choices", ())
    if choices:
        return "one of " + ", ".join(_literal(c) for c in choices)
    if getattr(check, "optional_callable", False):
        return "a callable, or ``None``"
    kind = getattr(check, "kind", None)
    if kind is None or kind is object:
        text = f"``{annotation}``"
    else:
        text = f"``{kind.__name__}``"
    minimum = getattr(check, "minimum", None)
    if minimum is not None:
        text += f", at least ``{minimum}``"
    if getattr(check, "optional", False):
        text += ", or ``None``"
    return text


def option_rows() -> list[list[str]]:
    """One row per option: qualified name, type, default, doc."""
    from numba_loopopt.options import PASS_OPTIONS, Options

    rows = []

    def walk(cls, prefix: str) -> None:
        for f in dataclasses.fields(cls):
            if cls is Options and f.name in PASS_OPTIONS:
                walk(PASS_OPTIONS[f.name], PASS_OPTIONS[f.name]._prefix)
                continue
            default = (f.default if f.default is not dataclasses.MISSING
                       else f.default_factory())
            rows.append([f"``{prefix}{f.name}``",
                         _describe_check(f.metadata.get("check"), f.type),
                         _literal(default), f.metadata.get("doc", "")])

    walk(Options, "")
    return rows


class _TableDirective(SphinxDirective):
    has_content = False

    def _render(self, lines: list[str]) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=self.get_source_info()[0]),
                                self.content_offset, container)
        return container.children


class OptionsDirective(_TableDirective):
    def run(self) -> list[nodes.Node]:
        return self._render(_list_table(["Option", "Type", "Default", "Description"],
                                        option_rows(), "22 18 10 50"))


class EnvironmentDirective(_TableDirective):
    def run(self) -> list[nodes.Node]:
        package = _package_dir()
        self.env.note_dependency(str(package / "options.py"))
        found: dict[str, str] = {}
        for path in sorted(package.rglob("*.py")):
            for name in _ENV_RE.findall(path.read_text(encoding="utf-8")):
                found.setdefault(name, path.relative_to(package).as_posix())
        for name in sorted(set(found) - set(ENVIRONMENT)):
            logger.warning("numba_loopopt/%s reads %s, which the environment table "
                           "in docs/_ext/loopopt_docs.py does not document",
                           found[name], name, location=self.get_location())
        for name in sorted(set(ENVIRONMENT) - set(found)):
            logger.warning("the docs list environment variable %s, which no file "
                           "of numba_loopopt mentions", name,
                           location=self.get_location())
        rows = [[f"``{name}``", ENV_SYNTAX.get(name, FLAG_SYNTAX), text]
                for name, text in ENVIRONMENT.items()]
        return self._render(_list_table(["Variable", "Values", "Effect"], rows,
                                        "30 25 45"))


def pipeline_rows() -> list[str]:
    """numba's nopython pipeline with the loopopt passes, as
    ``add_loopopt_passes`` builds it with default options."""
    from numba.core.compiler import DefaultPassBuilder, Flags

    from numba_loopopt import Options
    from numba_loopopt.passbase import LoopOptPass
    from numba_loopopt.pipeline import ReportRemarks, add_loopopt_passes

    class _State(dict):
        __getattr__ = dict.get

    pm = DefaultPassBuilder.define_nopython_pipeline(_State(flags=Flags()), "nopython")
    stock = {cls for cls, _ in pm.passes}
    try:
        add_loopopt_passes(pm, Options())
    except TypeError:  # the signature without options
        add_loopopt_passes(pm)
    pm.add_pass(ReportRemarks, "report loopopt remarks")
    lines = []
    for cls, _ in pm.passes:
        name = cls.name()
        if cls in stock:
            lines.append(f"   {name}")
            continue
        if isinstance(cls, type) and issubclass(cls, LoopOptPass):
            module = sys.modules[cls.__module__]
            what = f"[{cls.pass_name}] " + _first_line(module.__doc__)
        else:
            what = _first_line(cls.__doc__)
        lines.append(f"     -> {name:<28} {what}")
    return lines


def _first_line(doc: str | None) -> str:
    if not doc or not doc.strip():
        return ""
    return doc.strip().splitlines()[0].replace("``", "")


class PipelineDirective(_TableDirective):
    def run(self) -> list[nodes.Node]:
        self.env.note_dependency(str(_package_dir() / "pipeline.py"))
        return self._render([".. code-block:: text", "", *pipeline_rows()])


def emitted_keys(paths) -> dict[str, str]:
    """Remark keys emitted in ``paths``, each with the first file emitting it."""
    keys: dict[str, str] = {}
    package = _package_dir()
    for rel in paths:
        text = (package / rel).read_text(encoding="utf-8")
        for regex in _KEY_RES:
            for found in regex.findall(text):
                for key in (found if isinstance(found, tuple) else (found,)):
                    keys.setdefault(key, rel)
    return keys


class RemarkKeysDirective(SphinxDirective):
    """A list-table of remark keys, checked against the package source."""

    has_content = True
    option_spec = {"source": directives.unchanged_required,
                   "widths": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        sources = self.options["source"].split()
        package = _package_dir()
        for rel in sources:
            if not (package / rel).is_file():
                logger.warning("loopopt-remark-keys: no file numba_loopopt/%s", rel,
                               location=self.get_location())
                return []
            self.env.note_dependency(str(package / rel))
        emitted = emitted_keys(sources)
        documented = set(re.findall(r"^\s*\* - ``(\w+)``", "\n".join(self.content),
                                    flags=re.MULTILINE))
        for key in sorted(set(emitted) - documented):
            logger.warning("remark key %s (emitted in numba_loopopt/%s) is not "
                           "documented here", key, emitted[key],
                           location=self.get_location())
        for key in sorted(documented - set(emitted)):
            logger.warning("remark key %s is documented but not emitted by %s", key,
                           ", ".join(sources), location=self.get_location())
        lines = [".. list-table::", "   :header-rows: 1",
                 f"   :widths: {self.options.get('widths', '20 10 70')}", "",
                 "   * - Key", "     - Kind", "     - Meaning"]
        lines += ["   " + line for line in self.content]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=self.get_source_info()[0]),
                                self.content_offset, container)
        return container.children


def setup(app):
    app.add_directive("loopopt-options", OptionsDirective)
    app.add_directive("loopopt-environment", EnvironmentDirective)
    app.add_directive("loopopt-remark-keys", RemarkKeysDirective)
    app.add_directive("loopopt-pipeline", PipelineDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
