"""Reading a module as a notebook, and running it in a real Jupyter kernel."""
from __future__ import annotations

import copy
import functools
import hashlib
import os
import re
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


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def is_test_cell(cell) -> bool:
    info = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and bool(info.get("grade")) and not info.get("solution")


@dataclass
class CellResult:
    """What one code cell did when run: a named unit test, or any other cell that raised."""

    name: str
    is_test: bool
    passed: bool
    message: str = ""
    unwritten: str = ""     # the part not written yet (a workspace stub) that stopped it
    knock_on: bool = False  # stopped by a name that an earlier failing cell would have defined


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


def cell_results(notebook: nbformat.NotebookNode) -> list[CellResult]:
    """Every test cell (passed or not), plus every other code cell that raised an error; a cell stopped by a stub
    says which part is not written yet, and a NameError for a name an earlier failing cell defines is a knock-on."""
    from .workspace import unwritten_part

    results, failed_sources = [], []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        error = next((output for output in cell.get("outputs", []) if output.output_type == "error"), None)
        test = is_test_cell(cell)
        if not test and error is None:
            continue
        name = grade_id(cell) or f"cell {index + 1}"
        if error is None:
            results.append(CellResult(name, test, True))
            continue
        unwritten = unwritten_part(error.evalue) if error.ename == "NotImplementedError" else ""
        missing = re.fullmatch(r"name '(\w+)' is not defined", error.evalue) if error.ename == "NameError" else None
        knock_on = bool(missing) and any(re.search(rf"\b{missing.group(1)}\b", source) for source in failed_sources)
        results.append(CellResult(name, test, False, f"{error.ename}: {error.evalue}", unwritten, knock_on))
        failed_sources.append(cell.source)
    return results
