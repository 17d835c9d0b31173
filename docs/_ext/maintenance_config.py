"""The ``maintenance-config`` directive: the configuration table, generated from the code.

``flask_maintenance.config.KEYS`` holds every key's default, what it accepts and what it means,
beside the validator that enforces them; rendering the table from it means the docs cannot drift
from what ``init_app`` does. Each key becomes a target of the ``:confkey:`` role, so prose
elsewhere links to its row and a misspelt key fails the (nitpicky) build.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import make_id

from flask_maintenance.config import KEYS, Key

OBJECT_TYPE = "confkey"
HEADERS = ("Key", "Default", "Accepts", "Meaning")
# Relative widths of the four columns: the meaning gets the room.
WIDTHS = (31, 15, 17, 37)


def literal(value: Any) -> str:
    """A default as a Python literal, with strings in double quotes as the prose writes them."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple):
        items = ", ".join(literal(item) for item in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    raise ExtensionError(f"cannot show the default {value!r}: give the key a shown_default")


def shown_default(key: Key) -> str:
    """The Default cell, as reStructuredText."""
    if key.shown_default is not None:
        return key.shown_default
    if callable(key.default):
        raise ExtensionError(f"{key.name}: a computed default needs a shown_default")
    return f"``{literal(key.default)}``"


class ConfigTable(SphinxDirective):
    """``.. maintenance-config::`` renders every key of ``KEYS`` as one table."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        table = nodes.table(classes=["maintenance-config", "colwidths-given"])
        group = nodes.tgroup(cols=len(HEADERS))
        table += group
        group.extend(nodes.colspec(colwidth=width) for width in WIDTHS)
        head = nodes.thead()
        head += self._row([nodes.paragraph(text=title) for title in HEADERS])
        body = nodes.tbody()
        body.extend(self._key_row(key) for key in KEYS)
        group += head
        group += body
        return [table]

    def _key_row(self, key: Key) -> nodes.row:
        node_id = make_id(self.env, self.state.document, "", key.name)
        name = nodes.paragraph()
        name += nodes.literal(text=key.name)
        name["ids"].append(node_id)
        std = self.env.get_domain("std")
        std.note_object(OBJECT_TYPE, key.name, node_id, location=self.get_location())
        return self._row(
            [
                name,
                *self._rst(shown_default(key)),
                *self._rst(key.accepts),
                *self._rst(key.doc),
            ]
        )

    def _rst(self, text: str) -> list[nodes.Node]:
        """One cell's worth of reStructuredText, parsed here so its roles resolve in this page."""
        cell = nodes.container()
        self.state.nested_parse(StringList(text.splitlines(), self.get_source_info()[0]), 0, cell)
        return [cell]

    @staticmethod
    def _row(cells: list[nodes.Node]) -> nodes.row:
        row = nodes.row()
        for content in cells:
            entry = nodes.entry()
            entry += content.children if isinstance(content, nodes.container) else content
            row += entry
        return row


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_object_type(
        OBJECT_TYPE, OBJECT_TYPE, objname="configuration key", indextemplate="pair: %s; configuration key"
    )
    app.add_directive("maintenance-config", ConfigTable)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
