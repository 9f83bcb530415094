"""Running a module's own unit tests (its notebook, in a kernel) and its package tests (pytest)."""
from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import results
from .course import Course, Module
from .notebook import TEST, cell_role, execute, grade_id, module_notebook
from .stubs import unwritten_part

NO_TESTS_COLLECTED = 5  # pytest's exit code when nothing matched


@dataclass
class CellResult:
    """What one code cell did when run: a named unit test, or any other cell that raised."""

    name: str
    is_test: bool
    passed: bool
    message: str = ""
    unwritten: str = ""     # the part not written yet (a workspace stub) that stopped it
    knock_on: bool = False  # stopped by a name that an earlier failing cell would have defined


def cell_results(notebook: nbformat.NotebookNode) -> list[CellResult]:
    """Every test cell (passed or not), plus every other code cell that raised an error; a cell stopped by a stub
    says which part is not written yet, and a NameError for a name an earlier failing cell defines is a knock-on."""
    found, failed_sources = [], []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        error = next((output for output in cell.get("outputs", []) if output.output_type == "error"), None)
        test = cell_role(cell) == TEST
        if not test and error is None:
            continue
        name = grade_id(cell) or f"cell {index + 1}"
        if error is None:
            found.append(CellResult(name, test, True))
            continue
        unwritten = unwritten_part(error.evalue) if error.ename == "NotImplementedError" else ""
        missing = re.fullmatch(r"name '(\w+)' is not defined", error.evalue) if error.ename == "NameError" else None
        knock_on = bool(missing) and any(re.search(rf"\b{missing.group(1)}\b", source) for source in failed_sources)
        found.append(CellResult(name, test, False, f"{error.ename}: {error.evalue}", unwritten, knock_on))
        failed_sources.append(cell.source)
    return found


def run_module_tests(course: Course, module: Module) -> list[CellResult]:
    """Execute the module top to bottom in a fresh kernel and report each unit test, and any other failing cell."""
    executed = execute(module_notebook(module), cwd=course.root, timeout=max(course.timeout, 600))
    outcome = cell_results(executed)
    results.record(course, module.name, all(result.passed for result in outcome))
    return outcome


def package_test_files(course: Course, module: Module) -> list[Path]:
    """The package tests of a module: `tests/test_<short name>*.py` (e.g. test_autograd.py, test_autograd_torch.py)."""
    return sorted((course.root / "tests").glob(f"test_{module.short}*.py"))


def run_package_tests(course: Course, modules: list[Module], pytest_args: list[str] = ()) -> int:
    """Run pytest on the modules' package tests in a subprocess (so it imports the package as it is now on disk)."""
    files = [str(path) for module in modules for path in package_test_files(course, module)]
    if not files:
        return 0
    # -q unless the caller chose a verbosity: a second -q would drop pytest's summary line.
    quiet = [] if any(arg.startswith(("-q", "-v", "--quiet", "--verbose")) for arg in pytest_args) else ["-q"]
    command = [sys.executable, "-m", "pytest", *quiet, "-p", "no:cacheprovider", *files, *pytest_args]
    code = subprocess.run(command, cwd=course.root).returncode
    return 0 if code == NO_TESTS_COLLECTED else code
