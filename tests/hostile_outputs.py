"""A module 01 submission whose outputs and answers try to run script in whoever views it (formgrader, feedback).

Each payload, if it ran, would set a property of `window` whose name starts with MARKER and fetch a URL on
BAIT_PORT of 127.0.0.1; the browser test reads both.
"""
from __future__ import annotations

import copy

import nbformat

MARKER = "titoPwned"
BAIT_PORT = 1  # never listened on: only the browser's record of the request matters


def _script(name: str) -> str:
    return f"window.{MARKER}_{name} = 1; fetch('http://127.0.0.1:{BAIT_PORT}/{name}')"


def hostile_cell() -> str:
    """A code cell that displays every kind of active output the notebook format can carry."""
    widget = {"model_id": "x", "version_major": 2, "version_minor": 0}
    svg = (f"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'><script>{_script('svg')}</script>"
           f"<rect width='10' height='10' onload=\"{_script('svgonload')}\"/></svg>")
    return "\n".join([
        "from IPython.display import display, HTML, Javascript, SVG, Markdown",
        f"display(HTML({'<script>' + _script('html') + '</script>'!r}))",
        f"display(Javascript({_script('javascript')!r}))",
        f"display(HTML({'<img src=x onerror=' + chr(34) + _script('onerror') + chr(34) + '>'!r}))",
        f"display(HTML({'<iframe srcdoc=' + chr(34) + '&lt;script&gt;parent.' + _script('iframe') + '&lt;/script&gt;' + chr(34) + '></iframe>'!r}))",
        f"display(HTML({'<a id=tito-link href=' + chr(34) + 'javascript:' + _script('link') + chr(34) + '>link</a>'!r}))",
        f"display(SVG({svg!r}))",
        f"display({{'application/vnd.jupyter.widget-view+json': {widget!r}, 'text/plain': 'widget'}}, raw=True)",
        f"display(Markdown({'<script>' + _script('markdown') + '</script> *md*'!r}))",
        f"display(HTML({'<img src=' + chr(34) + 'http://127.0.0.1:' + str(BAIT_PORT) + '/image.png' + chr(34) + '>'!r}))",
    ])


def hostile_markdown() -> str:
    return (f"My answer <script>{_script('answer')}</script> <img src=x onerror=\"{_script('answeronerror')}\"> "
            f"[click](javascript:{_script('answerlink')})")


def hostile_submission(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The full solution (it still earns every test point) with the hostile cell after the first solution cell
    and the hostile markdown as its first written answer."""
    notebook = copy.deepcopy(solution)
    first = next(i for i, cell in enumerate(notebook.cells)
                 if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"))
    notebook.cells.insert(first + 1, nbformat.v4.new_code_cell(hostile_cell()))
    answer = next(cell for cell in notebook.cells if cell.cell_type == "markdown"
                  and cell.metadata.get("nbgrader", {}).get("solution"))
    answer.source = hostile_markdown()
    return notebook
