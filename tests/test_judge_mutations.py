"""Every lesson graded through the real autograde path (the sandboxed kernel, the judge, nbgrader's gradebook):
its reference solution scores full marks, its untouched release scores 0, and a sample of its mutation
catalogue's mistakes (tests/mutations/NN_name.py), each handed in as the full solution with that one mistake
made in its solution cell, scores below full marks, the test that must catch it failing.

tests/mutation.py runs each mistake in a plain kernel, where the test runs beside the student's code; here the
same mistakes are caught by tests that run in the judge and reach the code only through the kernel. Three
mistakes a lesson (the first, middle and last of its catalogue that edit a solution cell) keep the file within
CI's time; each lesson's five submissions are graded in one call, two at a time.
"""
from __future__ import annotations

import copy

import nbformat
import pytest

from conftest import ROOT, copy_course, needs_sandbox
from mutation import load_catalogue, mutate
from tito.course import load_course
from tito.coursefolder import course_folder
from tito.grading.autograde import autograde
from tito.grading.release import release
from tito.notebook import SOLUTION, cell_role, grade_id

pytestmark = [pytest.mark.slow, needs_sandbox]

LESSONS = [module.name for module in load_course(ROOT).modules]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return load_course(copy_course(tmp_path_factory.mktemp("judge-mutations") / "repo"))


def sampled_mistakes(module, source: nbformat.NotebookNode) -> list:
    """The first, middle and last mistake of the lesson's catalogue that edit a solution cell."""
    solutions = {grade_id(cell) for cell in source.cells if cell_role(cell) == SOLUTION}
    mistakes = [mistake for mistake in load_catalogue(module) if mistake.cell in solutions]
    assert len(mistakes) >= 3, f"{module.name}'s catalogue has {len(mistakes)} mistakes in solution cells, not 3"
    return [mistakes[0], mistakes[len(mistakes) // 2], mistakes[-1]]


def with_mistake(module, source: nbformat.NotebookNode, mistake) -> nbformat.NotebookNode:
    """The full solution a student would hand in, with the mistake made in its cell (as tests/mutation.py makes it)."""
    edited = next(cell.source for cell in mutate(module, mistake).cells if grade_id(cell) == mistake.cell)
    handed_in = copy.deepcopy(source)
    for cell in handed_in.cells:
        if grade_id(cell) == mistake.cell:
            cell.source = edited
    assert handed_in != source, f"{module.name}: the mistake {mistake.name!r} changed nothing"
    return handed_in


@pytest.mark.parametrize("lesson", LESSONS)
def test_mistakes_score_below_full_marks_and_the_reference_full(course, lesson):
    module = course.module(lesson)
    folder = course_folder(course)
    release(course, module)
    source = nbformat.read(folder.source(module), as_version=4)
    mistakes = {f"mistake{number}": mistake for number, mistake in enumerate(sampled_mistakes(module, source))}
    handed_in = {"reference": source, "release": nbformat.read(folder.release(module), as_version=4),
                 **{student: with_mistake(module, source, mistake) for student, mistake in mistakes.items()}}
    for student, notebook in handed_in.items():
        path = folder.submitted(student, module)
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, path)

    grades = {grade.student: grade for grade in autograde(course, module, jobs=2)}

    reference = grades["reference"]
    assert reference.max_score > 0 and reference.score == reference.max_score, \
        f"{lesson}'s reference solution scored {reference.score}/{reference.max_score}: failed {reference.failed}, " \
        f"{reference.notes} {reference.error}"
    assert grades["release"].graded and grades["release"].score == 0, \
        f"{lesson}'s untouched release scored {grades['release'].score} {grades['release'].error}"
    uncaught = [f"{mistake.name!r} ({mistake.cell}) scored {grades[student].score}/{grades[student].max_score}, "
                f"failing {grades[student].failed} {grades[student].error}" for student, mistake in mistakes.items()
                if not (grades[student].score < grades[student].max_score and mistake.caught_by in grades[student].failed)]
    assert not uncaught, f"{lesson}: mistakes its test did not catch through the judge: " + "; ".join(uncaught)
