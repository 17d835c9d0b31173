"""Sphinx configuration: ``sphinx-build -W -b html docs docs/_build/html``."""

from __future__ import annotations

import sys
from importlib.metadata import version as installed_version
from pathlib import Path

# The local extension that renders the configuration table from flask_maintenance.config.
sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "flask-maintenance"
author = "the flask-maintenance authors"
copyright = f"2026, {author}"
# The installed distribution's version: the package is installed (pip install -e ".[docs]") so
# that autodoc and the generated tables describe the code being documented.
release = installed_version("flask-maintenance-mode")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx_click",
    "pallets_sphinx_themes",
    "maintenance_config",
]

exclude_patterns = ["_build", "_extensions"]
default_role = "code"
# Quotes and ellipses only: "--option" in the CLI reference must not become an en dash.
smartquotes_action = "qe"
# Every cross-reference must resolve, so that a renamed function or key fails the build.
nitpicky = True
# No intersphinx: the docs build offline (in CI too), so names from Python, Flask and Werkzeug
# render as code without a link instead of failing to fetch an inventory.
nitpick_ignore_regex = [
    (r"py:.*", r"(flask|werkzeug|click|blinker|datetime|collections|typing|os|pathlib|types)\..*"),
    # Annotations autodoc cannot evaluate (guard.py imports Flask only under TYPE_CHECKING) stay
    # bare names.
    (r"py:class", r"Flask"),
]
# Private types that public signatures and docstrings name; each is reported to be either made
# public or kept out of the public docstrings. Remove an entry once its name resolves.
nitpick_ignore = [
    ("py:class", "flask_maintenance.config.Settings"),  # Maintenance.settings()
    ("py:class", "flask_maintenance.backends.base.Backend"),  # Maintenance.backend(), isolated()
    ("py:class", "Guard"),  # skip_during_maintenance()
    ("py:class", "flask_maintenance.extension.F"),  # the TypeVar of the decorators
    ("py:class", "V"),  # the TypeVar of State.replace() and the other values'
    ("py:class", "StateCache"),  # workers.Worker(cache_of=...), built by the extension
]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True

html_theme = "flask"
html_title = f"flask-maintenance {version}"
html_static_path = ["_static"]
html_css_files = ["maintenance-config.css"]
# The theme's banner asks the package index for newer versions; nothing is published yet.
version_banner = False
html_context = {
    "project_links": [],
}
html_sidebars = {
    "**": ["localtoc.html", "relations.html", "searchbox.html"],
}
