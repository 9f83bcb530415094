"""Reading a module as a notebook, running it in a real Jupyter kernel, and what part each cell plays in
nbgrader's grading (`cell_role`: every other file of tito asks here, none reads nbgrader's metadata itself)."""
from __future__ import annotations

import copy
import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .course import Module
from .errors import TitoError


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """A notebook from a percent-format `.py` file or an `.ipynb`, with cell ids that depend only on content.

    Stable ids matter because nbdev writes them into the generated package: random ids would change
    `tinytorch/` on every export. A command reads a lesson many times (its prerequisites, its secret lines,
    its export) and parsing is slow, so each file is parsed once per version; callers get their own copy.
    """
    try:
        version = path.stat()
    except OSError:
        return _parse(path)  # the one-line error for a missing or unreadable file
    return copy.deepcopy(_parse_once(path, version.st_mtime_ns, version.st_size))


@functools.lru_cache(maxsize=64)
def _parse_once(path: Path, mtime_ns: int, size: int) -> nbformat.NotebookNode:
    return _parse(path)


def _parse(path: Path) -> nbformat.NotebookNode:
    try:
        if path.suffix == ".py":
            import jupytext

            notebook = jupytext.read(path, fmt="py:percent")
        else:
            notebook = nbformat.read(path, as_version=4)
    except Exception as error:  # jupytext and nbformat raise many types for a bad file
        raise TitoError(f"cannot read {path} as a notebook: {type(error).__name__}: {error}".splitlines()[0]) from None
    assign_stable_ids(notebook)
    return notebook


def assign_stable_ids(notebook: nbformat.NotebookNode) -> None:
    seen: dict[str, int] = {}
    for cell in notebook.cells:
        digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
        seen[digest] = seen.get(digest, 0) + 1
        cell["id"] = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"
    notebook.nbformat, notebook.nbformat_minor = 4, max(notebook.get("nbformat_minor", 5), 5)


def module_notebook(module: Module) -> nbformat.NotebookNode:
    return read_notebook(module.source)


# A cell's part in grading, from its nbgrader metadata (nbgrader's own names in brackets):
SOLUTION = "solution"  # code the student writes, graded through the tests ("Autograded answer")
TEST = "test"          # code with points, graded by running it; locked ("Autograder tests")
ANSWER = "answer"      # a written answer with points, graded by hand ("Manually graded answer")
LOCKED = "locked"      # given code or text that nbgrader restores if a student changes it ("Read-only")
PLAIN = "plain"        # nbgrader ignores it


def nbgrader_metadata(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader") or {}


def cell_role(cell) -> str:
    info = nbgrader_metadata(cell)
    if info.get("grade"):
        if info.get("solution"):
            return ANSWER
        return TEST if cell.get("cell_type") == "code" else LOCKED  # a graded task text: metadata_problems names it
    if info.get("solution"):
        return SOLUTION
    return LOCKED if info.get("locked") else PLAIN


def is_locked(cell) -> bool:
    """Whether nbgrader restores the cell from the lesson (a test, or given code or text)."""
    return bool(nbgrader_metadata(cell).get("locked"))


def is_student_work(cell) -> bool:
    """Whether the student writes in the cell: code (a solution) or a written answer."""
    return cell_role(cell) in (SOLUTION, ANSWER)


def grade_id(cell) -> str | None:
    return nbgrader_metadata(cell).get("grade_id")


def points(cell) -> float:
    return float(nbgrader_metadata(cell).get("points", 0))


@dataclass(frozen=True)
class GradedCell:
    """A cell that earns points: a locked test (graded by running it) or a written answer (graded by hand)."""

    grade_id: str
    points: float
    is_test: bool


def graded_cells(notebook: nbformat.NotebookNode) -> list[GradedCell]:
    return [GradedCell(grade_id(cell) or "?", points(cell), cell_role(cell) == TEST) for cell in notebook.cells
            if cell_role(cell) in (TEST, ANSWER)]


def metadata_problems(notebook: nbformat.NotebookNode) -> list[str]:
    """nbgrader's rules for cell metadata, checked up front so that a mistake is named (nbgrader only says
    "the nbgrader metadata may be corrupted")."""
    problems, seen = [], {}
    for index, cell in enumerate(notebook.cells, start=1):
        info = nbgrader_metadata(cell)
        if cell_role(cell) == PLAIN:
            continue
        name = info.get("grade_id") or f"cell {index}"
        if not info.get("grade_id"):
            problems.append(f"cell {index} has no grade_id")
        elif info["grade_id"] in seen:
            problems.append(f"grade_id '{name}' is used by cells {seen[info['grade_id']]} and {index}")
        seen.setdefault(info.get("grade_id"), index)
        if info.get("schema_version") != 3:
            problems.append(f"{name} lacks \"schema_version\": 3")
        if info.get("grade") and not isinstance(info.get("points"), (int, float)):
            problems.append(f"{name} is graded but has no points")
        if info.get("grade") and cell.cell_type == "markdown" and not info.get("solution"):
            problems.append(f"{name} is a graded markdown cell, so it must also be a solution (answer) cell")
    return problems


def execute(notebook: nbformat.NotebookNode, cwd: Path, timeout: int = 600,
            stop_at_error: bool = False) -> nbformat.NotebookNode:
    """Run every cell in a fresh python3 kernel started in `cwd`, going on past errors so each test reports.

    `cwd` goes first on the kernel's PYTHONPATH, so the `tinytorch` package of that folder (the course's, or a
    student's own) is the one the notebook imports. With `stop_at_error`, the run ends at the first cell that
    raises (its error stays in its outputs), as a student running the notebook in order would see it.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(cwd), os.environ.get("PYTHONPATH")])))
    # log_level=40 (ERROR) hides the kernel's warning about local TCP, which only concerns remote kernels.
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", allow_errors=not stop_at_error,
                            extra_arguments=["--IPKernelApp.log_level=40"],
                            resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute(env=env)
    except CellExecutionError:
        pass  # only with stop_at_error: the failing cell holds its error, the cells after it did not run
    except CellTimeoutError:
        raise TitoError(f"a cell ran longer than {timeout} s (an endless loop?): stopped") from None
    except DeadKernelError as error:
        raise TitoError(f"the Jupyter kernel died while running the notebook: {error}") from None
    return notebook
