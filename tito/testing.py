"""Running a module's own unit tests (its notebook, in a kernel) and its package tests (pytest)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from . import results
from .course import Course, Module
from .notebook import CellResult, cell_results, execute, module_notebook

NO_TESTS_COLLECTED = 5  # pytest's exit code when nothing matched


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
