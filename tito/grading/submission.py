"""A handed-in notebook, read as the untrusted file it is.

`read_submission` never follows a symbolic link and reads only a regular file of bounded size; files handed
in beside the notebook are named, never used.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

import nbformat

from ..course import Module
from ..coursefolder import EXCHANGE_FILES, STUDENT_ID, CourseFolder
from ..notebook import PLAIN, cell_role, grade_id, graded_cells
MAX_FILE_MB = 200      # a handed-in file, saved outputs included (they are dropped: not what is graded)
MAX_NOTEBOOK_MB = 20   # what is graded: the cells' text
MAX_DEPTH = 64         # nesting of the notebook's JSON (a real one nests about 10 deep)


@dataclass
class Submission:
    notebook: nbformat.NotebookNode | None
    refusal: str = ""         # why it is not run: it then scores 0, or is not graded when it is no notebook
    score_zero: bool = False
    notes: list[str] = field(default_factory=list)


def read_submission(folder: CourseFolder, module: Module, student: str, source: nbformat.NotebookNode) -> Submission:
    if not STUDENT_ID.fullmatch(student):
        return Submission(None, f"'{student}' is not usable as a student id: name the folder with letters, digits, "
                                f"'.', '_', '-' or '@'")
    expected = folder.submitted(student, module)
    shown = folder.show(expected)
    try:
        status = os.lstat(expected)
    except FileNotFoundError:
        found = sorted(path.name for path in expected.parent.iterdir()) if expected.parent.is_dir() else []
        return Submission(None, f"no {expected.name} in {folder.show(expected.parent)} (found: {', '.join(found) or 'nothing'})")
    if expected.is_symlink() or not stat.S_ISREG(status.st_mode):
        return Submission(None, f"{shown} is {'a symbolic link' if expected.is_symlink() else 'not a regular file'}, "
                                f"so it was not run: hand in the notebook file itself", score_zero=True)
    if status.st_size > MAX_FILE_MB * 2**20:
        return Submission(None, f"{shown} is larger than {MAX_FILE_MB} MB, so it was not run", score_zero=True)
    too_deep = Submission(None, f"{shown} nests its JSON more than {MAX_DEPTH} levels deep, which no notebook "
                                f"Jupyter saves does, so it was not run", score_zero=True)
    try:
        descriptor = os.open(expected, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(descriptor, encoding="utf-8") as file:
            notebook = nbformat.read(file, as_version=4)
    except RecursionError:
        return too_deep
    except Exception as error:  # nbformat raises many kinds for a file that is no notebook
        return Submission(None, f"{shown} is not a Jupyter notebook ({type(error).__name__}: "
                                f"{str(error).strip().splitlines()[0][:200] if str(error).strip() else ''})")
    _drop_saved_outputs(notebook)
    if _depth(notebook) > MAX_DEPTH:
        return too_deep
    if sum(len(cell.get("source", "")) for cell in notebook.cells) > MAX_NOTEBOOK_MB * 2**20:
        return Submission(None, f"{shown} holds more than {MAX_NOTEBOOK_MB} MB of cell text, so it was not run",
                          score_zero=True)
    lost = _unrestorable_cells(source, notebook)
    if lost:
        return Submission(None, f"{shown} lacks the cells {' and '.join(lost)} (deleted, or the notebook lost its "
                                f"nbgrader metadata), so the test cannot be put back: have the student move their work "
                                f"into a fresh copy of the release", score_zero=True)
    # nbgrader's exchange adds its own two files (when and under which secret the work was handed in).
    others = sorted(path.name for path in expected.parent.iterdir()
                    if path.name not in (expected.name, *EXCHANGE_FILES))
    notes = [f"ignored the files handed in beside the notebook: {', '.join(others)}"] if others else []
    return Submission(notebook, notes=notes + _drop_duplicate_grade_ids(notebook))


def _drop_saved_outputs(notebook: nbformat.NotebookNode) -> None:
    """A submission is graded on what its cells do when run, never on what it saved: drop that at once."""
    for cell in notebook.cells:
        if cell.get("cell_type") == "code":
            cell.outputs, cell.execution_count = [], None


def _depth(value) -> int:
    """How deeply lists and dicts nest in `value` (counted without recursion: the nesting is untrusted)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            pending += [(child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)]
    return deepest


def _drop_duplicate_grade_ids(notebook: nbformat.NotebookNode) -> list[str]:
    """A cell copied with its metadata (Jupyter's copy and paste) repeats a grade id. As nbgrader does, the
    last copy keeps it and the earlier ones become plain cells; unlike nbgrader 0.9, whose next step then
    fails on them, their nbgrader metadata is removed whole."""
    seen, notes = set(), []
    for cell in reversed(notebook.cells):
        name = grade_id(cell)
        if name in seen:
            del cell.metadata["nbgrader"]
            notes.append(f"{name} was in the notebook twice: the last copy was graded")
        elif name:
            seen.add(name)
    return list(dict.fromkeys(reversed(notes)))


def _unrestorable_cells(source: nbformat.NotebookNode, submitted: nbformat.NotebookNode) -> list[str]:
    """A deleted graded cell and the missing cell before it, when nbgrader cannot put the graded cell back.

    nbgrader re-inserts a deleted graded cell after the graded, solution or locked cell that precedes it in
    the source; when that cell is gone too (and is not graded, so not re-inserted itself), nbgrader crashes.
    """
    def ids(notebook) -> list[str]:
        return [grade_id(cell) for cell in notebook.cells if grade_id(cell) and cell_role(cell) != PLAIN]

    order, present = ids(source), set(ids(submitted))
    graded = {cell.grade_id for cell in graded_cells(source)}
    for previous, cell in zip(order, order[1:]):
        if cell in graded and cell not in present and previous not in present and previous not in graded:
            return [previous, cell]
    return []
