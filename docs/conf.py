"""Sphinx configuration for the numba_loopopt documentation.

Builds offline: no intersphinx, no remote images.  ``docs/_ext`` holds the
``loopopt_docs`` extension, which renders the options reference from the
``Options`` dataclasses and checks that the documented environment variables
and remark keys match the package source.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "_ext"))
# Document the checkout the docs live in, even without an editable install.
sys.path.insert(0, os.path.dirname(HERE))

import numba_loopopt  # noqa: E402

project = "numba_loopopt"
author = "numba_loopopt contributors"
copyright = "numba_loopopt contributors"
release = numba_loopopt.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "loopopt_docs",
]

exclude_patterns = ["_build"]
templates_path: list[str] = []
html_static_path: list[str] = []

html_theme = "furo"
html_title = f"numba_loopopt {release}"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
# Signatures show the dataclass fields' defaults as written, not ``<factory>``.
autodoc_preserve_defaults = True

default_role = "code"
