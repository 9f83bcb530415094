"""Helpers for the student-workflow tests (test_student.py, test_browser.py): a small course, and a student who
writes the reference solution into their notebooks cell by cell."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat

from conftest import copy_course
from tito.notebook import read_notebook

# The modules a simulated student works through: module 05 builds on module 01.
MODULES = ["01_tensor", "05_autograd"]
STUB_COMMENT = "# YOUR CODE HERE"


def small_course(destination: Path, modules: list[str] = MODULES) -> Path:
    """A copy of the course whose settings.ini teaches only `modules` (releasing them takes seconds), nothing released."""
    root = copy_course(destination)
    settings = root / "settings.ini"
    listed = "".join(f"\n    {name}" for name in modules)
    text, count = re.subn(r"^modules =(?:\n[ \t]+\S+)+", f"modules ={listed}", settings.read_text(), flags=re.MULTILINE)
    assert count == 1, "settings.ini should list the modules under `modules =`"
    settings.write_text(text)
    return root


def solution_regions(course: Path, module: str) -> dict[str, list[list[str]]]:
    """grade_id -> the lines of each solution region of that cell, read from the lesson's dev file in `course`."""
    short = module.split("_", 1)[1]
    regions: dict[str, list[list[str]]] = {}
    for cell in read_notebook(course / "modules" / module / f"{short}_dev.py").cells:
        info = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not info.get("solution"):
            continue
        found, current = [], None
        for line in cell.source.splitlines():
            if "### BEGIN SOLUTION" in line:
                current = []
            elif "### END SOLUTION" in line:
                found.append(current)
                current = None
            elif current is not None:
                current.append(line)
        regions[info["grade_id"]] = found
    return regions


def write_solutions(workspace: Path, module: str, course: Path) -> int:
    """Do a student's work: replace each stub of the module's notebook by the reference solution of its region
    (from the lessons of `course`, the course the workspace was made from), in order, editing the notebook as
    Jupyter would save it. Returns how many stubs were replaced."""
    short = module.split("_", 1)[1]
    path = workspace / "modules" / module / f"{short}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    regions, replaced = solution_regions(course, module), 0
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type != "code" or grade_id not in regions:
            continue
        lines, written, todo = cell.source.splitlines(), [], list(regions[grade_id])
        index = 0
        while index < len(lines):
            if lines[index].strip() == STUB_COMMENT and "raise NotImplementedError" in lines[index + 1]:
                written += todo.pop(0)
                index += 2
                replaced += 1
            else:
                written.append(lines[index])
                index += 1
        assert not todo, f"{module} cell {grade_id}: {len(todo)} solution regions found no stub"
        cell.source = "\n".join(written)
    nbformat.write(notebook, path)
    return replaced


def edit_notebook(path: Path, old: str, new: str) -> None:
    """Replace `old` by `new` in the one cell of the notebook that holds it."""
    notebook = nbformat.read(path, as_version=4)
    cells = [cell for cell in notebook.cells if old in cell.source]
    assert len(cells) == 1, f"{old!r} is in {len(cells)} cells of {path.name}"
    cells[0].source = cells[0].source.replace(old, new)
    nbformat.write(notebook, path)
