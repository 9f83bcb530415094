"""Every lesson opens and closes the same way (docs/developers.md, "The shape of every lesson").

The opening is the lesson's first markdown cell: a title `# Name: what it is for`, the objectives (three to
five items), then the table `You write here | It becomes | Used by` whose first row is this notebook and its
package module; the first code cell is `#| default_exp core.<short>`. The closing is a systems analysis that prints what it measures, a reflection (questions
answered in manually graded markdown cells) and a summary that ends the lesson with
`tito module complete NN_name`, in that order. A lesson that misses a part fails with one line naming the
lesson and the part.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tito.course import Module, load_course
from tito.notebook import read_notebook

from conftest import ROOT

COURSE = load_course(ROOT)
# The lessons of settings.ini and every lesson folder, listed there or not yet (one being written).
FOLDERS = {path.name for path in (ROOT / "modules").glob("[0-9][0-9]_*") if path.is_dir()}
LESSONS = sorted({module.name for module in COURSE.modules} | FOLDERS)

TITLE = re.compile(r"^# \S.*: \S")
OBJECTIVES = "**Objectives.**"
OBJECTIVE_ITEM = re.compile(r"^- \S")
TABLE_HEADER = re.compile(r"^\|\s*You write here\s*\|\s*It becomes\s*\|\s*Used by\s*\|")
SECTION = re.compile(r"^## (?:\d+\. )?(.*)")


def table_row(module: Module) -> re.Pattern:
    return re.compile(rf"^\|\s*this notebook, `{module.short}\.ipynb`\s*\|\s*`tinytorch\.core\.{module.short}`\s*\|")


def opening_problem(module: Module, cell) -> str | None:
    """What the opening cell lacks, or None: a title, then the objectives, then the table."""
    if cell is None or cell.cell_type != "markdown":
        return "its first cell is not markdown: the opening (title, objectives, table) comes first"
    lines = cell.source.splitlines()
    if not lines or not TITLE.match(lines[0]):
        return "no title: the opening cell must start with `# Name: what it is for`"
    start = next((i for i, line in enumerate(lines) if line.startswith(OBJECTIVES)), None)
    if start is None:
        return f"no objectives: a paragraph starting `{OBJECTIVES}` after the title's paragraphs"
    items = 0
    for line in lines[start + 1:]:
        if OBJECTIVE_ITEM.match(line):
            items += 1
        elif items and not line.startswith("  "):  # an item may run over several indented lines
            break
    if not 3 <= items <= 5:
        return f"{items} objectives: list three to five (`- ...`) after `{OBJECTIVES}`"
    header = next((i for i, line in enumerate(lines) if TABLE_HEADER.match(line)), None)
    if header is None or header < start:
        return "no table after the objectives: `| You write here | It becomes | Used by |`"
    if header + 2 >= len(lines) or not table_row(module).match(lines[header + 2]):
        return (f"the table's first row must be `| this notebook, `{module.short}.ipynb` | "
                f"`tinytorch.core.{module.short}` | ... |`")
    return None


def package_problem(module: Module, cells) -> str | None:
    """The first code cell names the package module: `#| default_exp core.<short>`."""
    first = next((cell for cell in cells if cell.cell_type == "code"), None)
    if first is None or first.source.strip() != f"#| default_exp core.{module.short}":
        return f"the first code cell must be `#| default_exp core.{module.short}`, right after the opening"
    return None


def sections(cells) -> list[tuple[int, str]]:
    """(cell index, title) of every `## ` heading of the markdown cells, in order, numbering dropped."""
    found = []
    for index, cell in enumerate(cells):
        if cell.cell_type == "markdown":
            found += [(index, match.group(1).strip()) for line in cell.source.splitlines()
                      if (match := SECTION.match(line))]
    return found


def section_cells(cells, headings, title: str) -> list | None:
    """The cells of the first section whose title starts with `title` (its heading's cell, then up to the next
    heading), or None when there is no such section."""
    for position, (index, name) in enumerate(headings):
        if name.lower().startswith(title.lower()):
            end = headings[position + 1][0] if position + 1 < len(headings) else len(cells)
            return cells[index:max(end, index + 1)]
    return None


def is_answer_cell(cell, short: str) -> bool:
    info = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "markdown" and str(info.get("grade_id", "")).startswith(f"reflect-{short}-")


def answer_problem(cell) -> str | None:
    info = cell.metadata["nbgrader"]
    if not (info.get("grade") and info.get("solution") and not info.get("locked") and info.get("points", 0) > 0):
        return (f"reflection answer {info['grade_id']} must be manually graded: "
                '"grade": true, "solution": true, "locked": false and points')
    return None


def closing_problem(module: Module, cells) -> str | None:
    """What the closing lacks, or None: a systems analysis that prints, a reflection, a summary, in that order."""
    headings = sections(cells)
    analysis = section_cells(cells, headings, "Systems analysis")
    if analysis is None:
        return "no systems analysis: a `## N. Systems analysis: ...` section"
    if not any(cell.cell_type == "code" and "print(" in cell.source for cell in analysis):
        return "the systems analysis prints nothing: it measures, then prints a small table"
    reflection = section_cells(cells, headings, "Reflection")
    if reflection is None:
        return "no reflection: a `## N. Reflection` section of questions and graded answer cells"
    answers = [position for position, cell in enumerate(reflection) if is_answer_cell(cell, module.short)]
    if len(answers) < 2:
        return (f"{len(answers)} reflection answer cells: ask two or three questions, each answered in a markdown "
                f"cell with grade_id `reflect-{module.short}-<topic>`")
    for position in answers:
        question = reflection[position - 1]
        if question.cell_type != "markdown" or "nbgrader" in question.metadata:
            return f"reflection answer {reflection[position].metadata['nbgrader']['grade_id']} has no question cell before it"
        if problem := answer_problem(reflection[position]):
            return problem
    elsewhere = [cell.metadata["nbgrader"]["grade_id"] for cell in cells
                 if is_answer_cell(cell, module.short) and not any(cell is other for other in reflection)]
    if elsewhere:
        return f"reflection answers outside the reflection section: {', '.join(elsewhere)}"
    titles = [name.lower() for _, name in headings]
    if not titles or titles[-1] != "summary":
        return "no summary at the end: the last section is `## Summary`"
    order = [next(i for i, name in enumerate(titles) if name.startswith(part))
             for part in ("systems analysis", "reflection", "summary")]
    if order != sorted(order):
        return "the closing is out of order: systems analysis, then reflection, then summary"
    summary = section_cells(cells, headings, "Summary")
    if not any(f"tito module complete {module.name}" in cell.source for cell in summary):
        return f"the summary does not say `tito module complete {module.name}`"
    return None


def form_problem(module: Module) -> str | None:
    """The first part of the lesson form that `module`'s lesson misses, as one line, or None."""
    if not module.dev_file.exists():
        return f"{module.name}: no lesson file {module.dev_file.relative_to(ROOT)}"
    cells = read_notebook(module.dev_file).cells
    problem = (opening_problem(module, cells[0] if cells else None) or package_problem(module, cells)
               or closing_problem(module, cells))
    return f"{module.name}: {problem}" if problem else None


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_opens_and_closes_in_the_course_form(name):
    problem = form_problem(Module(name, ROOT / "modules" / name))
    assert problem is None, problem
