"""Every lesson runs top to bottom in a real Jupyter kernel, and all its unit tests pass."""
import pytest

from tito.course import load_course
from tito.notebook import execute, module_notebook
from tito.testing import cell_results

from conftest import ROOT

COURSE = load_course(ROOT)


@pytest.mark.slow
@pytest.mark.parametrize("module", COURSE.modules, ids=lambda module: module.name)
def test_lesson_runs_in_a_kernel_with_every_unit_test_passing(module):
    executed = execute(module_notebook(module), cwd=ROOT, timeout=600)
    outcome = cell_results(executed)
    failures = [f"{result.name}: {result.message}" for result in outcome if not result.passed]
    assert not failures, f"{module.name} failed in a kernel:\n" + "\n".join(failures)
    assert [result for result in outcome if result.is_test], f"{module.name} has no unit test cells"


def _given(cell) -> bool:
    info = cell.metadata.get("nbgrader", {})
    return bool(info.get("locked")) and not info.get("grade") and not info.get("solution")


@pytest.mark.parametrize("module", COURSE.modules, ids=lambda module: module.name)
def test_lesson_follows_the_course_form(module):
    """Solution cells are fenced and followed by a locked, pointed test (given code the test needs beside the
    student's, in a locked cell without points, may come between); grade ids are unique."""
    cells = module_notebook(module).cells
    grade_ids = [cell.metadata["nbgrader"]["grade_id"] for cell in cells if "nbgrader" in cell.metadata]
    assert len(grade_ids) == len(set(grade_ids)), f"{module.name} repeats a grade_id"
    for index, cell in enumerate(cells):
        info = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and info.get("solution"):
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, \
                f"{module.name} solution cell {info['grade_id']} has no solution region"
            following = next(other for other in cells[index + 1:] if other.cell_type == "code" and not _given(other))
            test = following.metadata.get("nbgrader", {})
            assert test.get("grade") and test.get("locked") and test.get("points"), \
                f"{module.name}: the code cell after {info['grade_id']} should be a locked test cell with points"
        if info:
            assert info.get("schema_version") == 3, f"{module.name} cell {info.get('grade_id')} lacks schema_version 3"
