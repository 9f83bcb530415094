"""What of a submission may reach a browser: a notebook in, a notebook with no active content out.

The formgrader and the feedback page render a submission's outputs and markdown cells as HTML in the
instructor's (or the student's) browser, where a script would act as them. So only a closed list of output
types is kept: plain text, PNG and JPEG (outputs and markdown attachments) as they are; HTML, SVG and Markdown after nh3 (a maintained
sanitizer, Rust's ammonia) has removed scripts, event handlers, frames, styles and every URL that is not a
plain link or a data image. Everything else (JavaScript, widget views, LaTeX, unknown types) is dropped, and
so is any notebook or cell metadata nbgrader and Jupyter do not need.
"""
from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import nbformat
import nh3

from ..notebook import grade_id, nbgrader_metadata

KEPT_AS_IS = ("text/plain", "image/png", "image/jpeg")
SANITIZED = ("text/html", "image/svg+xml", "text/markdown")
# Keys of cell and notebook metadata that nbgrader, nbformat and the renderers read; the rest is dropped.
CELL_METADATA = ("nbgrader", "deletable", "editable", "tags", "collapsed", "scrolled", "trusted")
NOTEBOOK_METADATA = ("kernelspec", "language_info")

_SVG_TAGS = {"svg", "g", "path", "rect", "circle", "ellipse", "line", "polyline", "polygon", "text", "tspan", "defs",
             "use", "clipPath", "title", "desc", "linearGradient", "radialGradient", "stop", "symbol", "marker"}
_SVG_ATTRIBUTES = {"d", "x", "y", "width", "height", "viewBox", "transform", "fill", "stroke", "stroke-width", "id",
                   "clip-path", "points", "cx", "cy", "r", "rx", "ry", "x1", "y1", "x2", "y2", "xlink:href", "href",
                   "style", "version", "font-size", "font-family", "text-anchor", "dx", "dy", "offset", "stop-color",
                   "gradientUnits", "opacity", "fill-opacity", "stroke-opacity", "preserveAspectRatio",
                   "stroke-linecap", "stroke-linejoin", "xmlns", "xmlns:xlink", "class"}
_TABLE_ATTRIBUTES = {"class", "border", "align", "colspan", "rowspan"}
_STYLE_PROPERTIES = {"fill", "stroke", "stroke-width", "stroke-linecap", "stroke-linejoin", "stroke-opacity",
                     "fill-opacity", "opacity", "font-size", "font-family", "font-weight", "font-style", "text-anchor",
                     "color", "background-color", "text-align", "vertical-align"}
_URL_ATTRIBUTES = {"href", "xlink:href", "src"}
_LOCAL_REFERENCE = re.compile(r"url\((?!#)", re.IGNORECASE)  # only url(#id): a reference inside the same image


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    """nh3's last word on an attribute: an image's src only as inline data, SVG references only inside the image."""
    if attribute == "src":
        return value if value.startswith(("data:image/png;", "data:image/jpeg;", "data:image/gif;")) else None
    if tag == "a" and attribute == "href" and value.strip().lower().startswith("data:"):
        return None
    if attribute in _URL_ATTRIBUTES and tag != "a":
        return value if value.startswith("#") else None
    if _LOCAL_REFERENCE.search(value):
        return None
    return value


def _allowed_attributes() -> dict[str, set[str]]:
    allowed = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()}
    allowed.update({tag: set(_SVG_ATTRIBUTES) for tag in _SVG_TAGS})
    for tag in ("table", "thead", "tbody", "tr", "th", "td", "div", "span", "p", "code", "pre"):
        allowed[tag] = allowed.get(tag, set()) | _TABLE_ATTRIBUTES | {"style"}
    allowed["img"] = {"src", "alt", "width", "height"}
    for level in range(1, 7):  # the Markdown renderer's heading anchors
        allowed[f"h{level}"] = allowed.get(f"h{level}", set()) | {"id"}
    allowed["a"] = allowed.get("a", set()) | {"class"}
    return allowed


_TAGS = (set(nh3.ALLOWED_TAGS) | _SVG_TAGS) - {"style", "script", "iframe", "object", "embed", "form", "input"}
_CLEANER = nh3.Cleaner(tags=_TAGS, attributes=_allowed_attributes(), attribute_filter=_keep_attribute,
                       url_schemes={"http", "https", "mailto", "data"}, filter_style_properties=_STYLE_PROPERTIES,
                       clean_content_tags={"script", "style"}, link_rel="noopener noreferrer nofollow")


def clean_html(text: str) -> str:
    """HTML (or SVG) with no script, event handler, frame, form, style sheet or foreign resource left in it."""
    return _CLEANER.clean(text)


def safe_notebook(notebook: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, list[str]]:
    """`notebook` (changed in place) with only safe outputs, markdown and metadata; notes naming what was removed."""
    notes = []
    notebook.metadata = nbformat.from_dict({key: notebook.metadata[key] for key in NOTEBOOK_METADATA
                                            if key in notebook.metadata})
    for index, cell in enumerate(notebook.cells, start=1):
        cell.metadata = nbformat.from_dict({key: cell.metadata[key] for key in CELL_METADATA
                                            if key in cell.get("metadata", {})})
        removed = cell.cell_type != "markdown" and bool(cell.pop("attachments", None))
        if not _plain_values(nbgrader_metadata(cell)):  # the formgrader's templates show them unescaped
            del cell.metadata["nbgrader"]
            removed = True
        name = grade_id(cell) or f"cell {index}"
        if cell.cell_type == "markdown":
            removed |= _safe_markdown(cell)
        elif cell.cell_type == "code":
            kept = [_safe_output(output) for output in cell.outputs]
            removed |= any(dropped for _, dropped in kept)
            cell.outputs = [output for output, _ in kept if output is not None]
        if removed:
            notes.append(f"removed active content (scripts, frames, widgets or unknown output types) from {name}")
    return notebook, notes


def _plain_values(info: dict) -> bool:
    """Whether nbgrader's metadata of a cell holds only numbers, booleans, None (a score not given yet) and text with
    no HTML in it."""
    return all(value is None or isinstance(value, (bool, int, float))
               or isinstance(value, str) and not set(value) & set("<>&\"'`") for value in info.values())


def _safe_output(output) -> tuple[nbformat.NotebookNode | None, bool]:
    """The output as it may be shown (itself, a cleaned copy, or None: nothing of it), and whether anything active
    was removed."""
    kind = output.get("output_type")
    if kind in ("stream", "error"):
        return output, False  # plain text: every renderer escapes it
    if kind not in ("display_data", "execute_result"):
        return None, True
    data, removed = {}, False
    for mime, value in output.get("data", {}).items():
        text = "".join(value) if isinstance(value, list) else value
        if mime in KEPT_AS_IS and isinstance(text, str):
            data[mime] = text
        elif mime in SANITIZED and isinstance(text, str):
            data[mime] = clean_markdown(text) if mime == "text/markdown" else clean_html(text)
            removed |= mime != "text/markdown" and _elements(data[mime]) != _elements(text)
            removed |= mime == "text/markdown" and data[mime] != text
        else:
            removed = True
    if data == output.get("data") and not output.get("metadata"):
        return output, False
    cleaned = nbformat.from_dict({key: value for key, value in output.items() if key not in ("data", "metadata")})
    cleaned.data, cleaned.metadata = data, {}
    return (cleaned if data else None), removed


def clean_markdown(text: str, attachments: dict | None = None) -> str:
    """Markdown unchanged when it renders to nothing a sanitizer would remove; else its rendering, sanitized (and
    shown as plain text when it does not render at all, e.g. an image attachment that is not there)."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    try:
        rendered = MarkdownWithMath(renderer=IPythonRenderer(escape=False, attachments=attachments or {})).render(text)
    except Exception:  # nbconvert raises on a missing attachment: the formgrader would fail on it too
        return f"<pre>{html.escape(text)}</pre>"
    cleaned = clean_html(rendered)
    return text if _elements(cleaned) == _elements(rendered) else cleaned


def _safe_markdown(cell) -> bool:
    """Sanitize a markdown cell in place; whether anything was removed. Only PNG and JPEG attachments are kept."""
    attachments = {name: {mime: data for mime, data in value.items() if mime in ("image/png", "image/jpeg")}
                   for name, value in cell.get("attachments", {}).items()}
    attachments = {name: value for name, value in attachments.items() if value}
    removed = attachments != cell.get("attachments", {})
    cell.pop("attachments", None)
    if attachments:
        cell.attachments = attachments
    cleaned = clean_markdown(cell.source, attachments)
    removed |= cleaned != cell.source
    cell.source = cleaned
    return removed


class _Elements(HTMLParser):
    """The tags and attributes of an HTML text, in order: what a sanitizer may remove (text it only escapes). Styles
    (which the sanitizer filters, a table's look), namespace declarations (which the HTML parser under the sanitizer
    drops from an inline SVG) and what it adds (a table body, a link's rel) do not count."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[tuple] = []

    def handle_starttag(self, tag, attrs):
        if tag not in ("style", "tbody"):
            self.found.append((tag, sorted((name, html.unescape(value or "")) for name, value in attrs
                                           if name not in ("rel", "style") and not name.startswith("xmlns"))))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)


def _elements(text: str) -> list[tuple]:
    parser = _Elements()
    parser.feed(text)
    parser.close()
    return parser.found
