"""Sphinx configuration of the softmax_xp documentation (``nox -s docs`` builds it).

The build needs no network: no intersphinx, MathJax is only referenced by the pages, and the
gallery trains on the MNIST copy bundled with the package.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
os.environ.setdefault("MPLBACKEND", "Agg")

import softmax_xp  # noqa: E402

project = "softmax_xp"
author = "softmax_xp developers"
copyright = "softmax_xp developers, BSD-3-Clause"
release = softmax_xp.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "clihelp",  # docs/_ext/clihelp.py: the CLI page from build_parser()
]

exclude_patterns = ["_build", "_generated", "examples/README.rst", "examples/*.py"]
templates_path = ["_templates"]
nitpicky = True
default_role = "literal"

# -- API reference -----------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # the signatures show names; the docstrings say the types
autodoc_default_options = {"member-order": "bysource"}
numpydoc_show_class_members = False  # the class template lists the members itself
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# Types written in prose in the docstrings (not objects Sphinx can link to offline).
nitpick_ignore_regex = [
    ("py:class", r"(numpy|np|array_api_strict|torch|cupy|sklearn|dask|matplotlib)\..*"),
    ("py:class", r"(ndarray|array|array-like|Array|Figure|optional|default .*)"),
    ("py:mod", r"softmax_xp\._\w+"),  # private modules named in docstrings, not documented
]

# -- the gallery (the chapter as runnable examples) ----------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": ["examples"],
    "gallery_dirs": ["tutorial"],
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "abort_on_example_error": True,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "reference_url": {},
    "backreferences_dir": None,
    "show_signature": False,
}

# -- HTML ---------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"softmax_xp {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_static_path: list[str] = []
html_show_sourcelink = False

# The docstrings' Examples run as doctests in ``nox -s docs`` (pytest --doctest-modules) and in
# tests/test_docs.py, not through Sphinx's doctest builder.


def _skip_member(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated metadata-routing setters (``set_fit_request``, ...)
    and every member a class inherits from outside softmax_xp (``get_params``, ...): their
    docstrings link into other projects' documentation. Members our classes inherit from our
    own (``SoftmaxXP.train`` from its training half) stay."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    function = getattr(obj, "__func__", obj)
    module = getattr(function, "__module__", None)
    if what == "class" and module is not None and not module.startswith("softmax_xp"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
