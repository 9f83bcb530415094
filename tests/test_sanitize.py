"""tito/grading/outputs.py: what of a submission may reach a browser. Each attack form is dropped; honest output is kept."""
from __future__ import annotations

import base64
import hashlib
import io
import re

import nbformat
import pytest

from tito.grading.outputs import clean_html, clean_markdown, safe_notebook
from conftest import ROOT

ACTIVE = re.compile(r"<script|<iframe|<object|<embed|<form|<style|\bon\w+\s*=|javascript:|srcdoc|data:text|svg\+xml",
                    re.IGNORECASE)
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()


def display(data: dict, kind: str = "display_data") -> nbformat.NotebookNode:
    output = nbformat.v4.new_output(kind, data=data, **({"execution_count": 1} if kind == "execute_result" else {}))
    return output


def notebook_with(*outputs, markdown: str = "") -> nbformat.NotebookNode:
    code = nbformat.v4.new_code_cell("x", outputs=list(outputs))
    cells = [code] + ([nbformat.v4.new_markdown_cell(markdown)] if markdown else [])
    return nbformat.v4.new_notebook(cells=cells)


@pytest.mark.parametrize("attack", [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<iframe src='https://example.com'></iframe>",
    "<iframe srcdoc='&lt;script&gt;alert(1)&lt;/script&gt;'></iframe>",
    "<a href='javascript:alert(1)'>x</a>",
    "<a href=' JaVaScRiPt:alert(1)'>x</a>",
    "<a href='data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;'>x</a>",
    "<img src='data:image/svg+xml;base64,PHN2Zz48L3N2Zz4='>",
    "<svg><script>alert(1)</script><rect onload='alert(1)'/></svg>",
    "<svg><a xlink:href='javascript:alert(1)'><text>x</text></a></svg>",
    "<object data='x.swf'></object><embed src='x'>",
    "<form action='https://example.com'><input name=a></form>",
    "<style>body{background:url(https://example.com/x)}</style>",
    "<div style='background:url(https://example.com/x)'>x</div>",
    "<img src='https://example.com/track.png'>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
])
def test_each_attack_form_is_dropped_from_html(attack):
    cleaned = clean_html(attack)
    assert not ACTIVE.search(cleaned), cleaned
    assert "example.com/x" not in cleaned and "track.png" not in cleaned, cleaned


def test_outputs_keep_only_the_closed_list_of_types():
    widget = {"application/vnd.jupyter.widget-view+json": {"model_id": "m", "version_major": 2, "version_minor": 0},
              "text/plain": "IntSlider()"}
    notebook = notebook_with(
        display({"application/javascript": "alert(1)"}),
        display(widget),
        display({"text/html": "<b>bold</b><script>alert(1)</script>", "text/latex": "$x$"}),
        display({"application/x-unknown": "?"}),
        display({"image/png": PNG, "image/jpeg": PNG, "text/plain": "<Figure>"}, "execute_result"),
    )
    notebook.cells[0].outputs.append(nbformat.from_dict({"output_type": "update_display_data", "data": {}, "metadata": {}}))
    safe, notes = safe_notebook(notebook)
    kept = [sorted(output.get("data", {})) for output in safe.cells[0].outputs]
    assert kept == [["text/plain"], ["text/html"], ["image/jpeg", "image/png", "text/plain"]]
    assert safe.cells[0].outputs[1].data["text/html"] == "<b>bold</b>"
    assert notes == ["removed active content (scripts, frames, widgets or unknown output types) from cell 1"]


def test_honest_outputs_are_kept_as_they_were():
    table = ('<div><style scoped>.dataframe tbody tr th {vertical-align: top;}</style><table border="1" '
             'class="dataframe"><thead><tr style="text-align: right;"><th></th><th>a</th></tr></thead>'
             '<tbody><tr><th>0</th><td>1</td></tr></tbody></table></div>')
    notebook = notebook_with(
        nbformat.v4.new_output("stream", name="stdout", text="<not a tag> & 1 < 2\n"),
        nbformat.v4.new_output("error", ename="AssertionError", evalue="<b>", traceback=["\x1b[0;31mAssertionError\x1b[0m"]),
        display({"text/plain": "Tensor([1.])"}, "execute_result"),
        display({"text/html": table, "text/plain": "df"}),
        display({"image/png": PNG, "text/plain": "<Figure>"}),
        markdown="The rule: $\\frac{\\partial L}{\\partial x} = 2x$ when $a<b$, and\n\n$$\\sum_i x_i$$\n\n"
                 "| a | b |\n|---|---|\n| 1 | 2 |\n\n[docs](https://pytorch.org) `x < y`")
    before = nbformat.writes(notebook)
    safe, notes = safe_notebook(notebook)
    outputs = safe.cells[0].outputs
    assert notes == []
    assert [output.output_type for output in outputs] == ["stream", "error", "execute_result", "display_data", "display_data"]
    assert outputs[0].text == "<not a tag> & 1 < 2\n" and outputs[4].data["image/png"] == PNG
    assert "<table" in outputs[3].data["text/html"] and "<td>1</td>" in outputs[3].data["text/html"]
    assert safe.cells[1].source == nbformat.reads(before, as_version=4).cells[1].source, "honest markdown is left as written"


def test_a_matplotlib_svg_keeps_its_drawing_and_loses_its_scripts():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(2, 2))
    axes.plot([1, 2, 3])
    text = io.StringIO()
    figure.savefig(text, format="svg")
    plt.close(figure)
    svg = text.getvalue().replace("</svg>", "<script>alert(1)</script></svg>")
    cleaned = clean_html(svg)
    assert not ACTIVE.search(cleaned)
    assert cleaned.count("<path") == svg.count("<path") and cleaned.count("<use") == svg.count("<use")
    assert 'xlink:href="#' in cleaned and "viewBox" in cleaned, "references inside the image still draw"


def test_markdown_with_html_is_replaced_by_its_sanitized_rendering():
    attack = "My answer <script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1)) $x<y$"
    cleaned = clean_markdown(attack)
    assert not ACTIVE.search(cleaned) and "My answer" in cleaned and "$x&lt;y$" in cleaned
    assert clean_markdown(cleaned) == cleaned, "sanitizing twice changes nothing (an answer regraded keeps its text)"


def test_attachments_other_than_images_and_unknown_metadata_are_dropped():
    notebook = notebook_with(markdown="![x](attachment:x.svg)")
    svg = base64.b64encode(b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>").decode()
    notebook.cells[1].attachments = {"x.svg": {"image/svg+xml": svg}}
    notebook.cells[1].metadata = {"nbgrader": {"grade_id": "answer"}, "widgets": {"x": 1}}
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    safe, notes = safe_notebook(notebook)
    assert "attachments" not in safe.cells[1] and safe.cells[1].metadata == {"nbgrader": {"grade_id": "answer"}}
    assert "<img" not in safe.cells[1].source, "the picture is gone; the reference to it shows as text"
    assert list(safe.metadata) == ["kernelspec"]
    assert notes == ["removed active content (scripts, frames, widgets or unknown output types) from answer"]


def test_a_pasted_png_stays_and_a_missing_attachment_shows_as_text():
    notebook = notebook_with(markdown="![plot](attachment:plot.png)")
    notebook.cells[1].attachments = {"plot.png": {"image/png": PNG}}
    safe, notes = safe_notebook(notebook)
    assert notes == [] and safe.cells[1].attachments == {"plot.png": {"image/png": PNG}}
    assert clean_markdown("<b>![x](attachment:gone.png)</b>") == "<pre>&lt;b&gt;![x](attachment:gone.png)&lt;/b&gt;</pre>"


def test_every_lessons_markdown_is_left_as_written():
    from tito.course import load_course
    from tito.notebook import read_notebook

    for module in load_course(ROOT).modules:
        if module.dev_file.exists():
            for cell in read_notebook(module.dev_file).cells:
                if cell.cell_type == "markdown":
                    assert clean_markdown(cell.source) == cell.source, f"{module.name}: {cell.source[:80]}"


@pytest.mark.parametrize("handler", ["toggle_name(true);", "toggle_name(false);"])
def test_the_formgrader_policy_allows_exactly_nbgraders_name_buttons(handler):
    policy = (ROOT / "tito" / "grading" / "templates" / "jupyter" / "nbconvert" / "templates" / "formgrade" / "mathjax.html.j2").read_text()
    digest = base64.b64encode(hashlib.sha256(handler.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy
    assert "unsafe-inline'; img" not in policy.split("script-src")[1].split(";")[0]


def test_nbgrader_metadata_with_html_in_it_is_dropped():
    """nbgrader's templates print a cell's grade id unescaped; nbgrader itself accepts any text there."""
    notebook = notebook_with(markdown="answer")
    honest = {"grade": True, "solution": True, "locked": False, "grade_id": "reflect-tensor-dtype", "points": 2,
              "schema_version": 3, "checksum": "0f3a", "score": None}
    notebook.cells[1].metadata["nbgrader"] = dict(honest)
    notebook.cells[0].metadata["nbgrader"] = {"solution": True, "grade_id": "<img src=x onerror=alert(1)>"}
    safe, notes = safe_notebook(notebook)
    assert "nbgrader" not in safe.cells[0].metadata and safe.cells[1].metadata["nbgrader"] == honest
    assert notes == ["removed active content (scripts, frames, widgets or unknown output types) from cell 1"]
