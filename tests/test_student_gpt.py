"""The student workflow on modules 10 and 11, end to end: a workspace of the whole course (releases, stubs and
tests of 09 and 10, no solution line), a student who writes every lesson, completes 09 and 10 on their own
package, runs the GPT milestone on it, and hands both in for full marks.

Slow (real nbgrader, kernels, the sandbox): a few minutes on 2 cores.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import copy_course, needs_sandbox, run_tito
from student_helpers import write_solutions
from tito.course import load_course
from tito.student.workspace import workspace_leaks

pytestmark = [pytest.mark.slow, needs_sandbox]
STUDENT = "alice"
NEW = ["10_attention", "11_transformer"]


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    return copy_course(tmp_path_factory.mktemp("gpt-course") / "repo")


@pytest.fixture(scope="module")
def workspace(course, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gpt-student") / "my-tinytorch"
    result = run_tito("student", "init", str(folder), "--student", STUDENT, cwd=course)
    assert result.returncode == 0, result.stdout + result.stderr
    return folder


def test_the_workspace_holds_the_new_lessons_their_stubs_and_tests_and_no_solution(course, workspace):
    for module, short in [("10_attention", "attention"), ("11_transformer", "transformer")]:
        assert (workspace / "modules" / module / f"{short}.ipynb").exists()
        assert f"{module} is not complete" in (workspace / "tinytorch" / "core" / f"{short}.py").read_text()
        assert (workspace / "tests" / f"test_{short}.py").exists()
    assert (workspace / "tests" / "torch_gpt.py").exists(), "the PyTorch oracle the tests import goes with them"
    assert workspace_leaks(load_course(course), workspace)[0] == []


def test_a_student_completes_10_and_11_runs_the_milestone_and_gets_full_marks(course, workspace):
    from tito.grading.autograde import read_grade

    for module in load_course(course).modules:
        assert write_solutions(workspace, module.name, course) > 0
    exported = run_tito("export", cwd=workspace)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    for module in NEW:
        done = run_tito("module", "complete", module, cwd=workspace, timeout=1200)
        assert done.returncode == 0 and f"{module} is complete" in done.stdout, done.stdout + done.stderr

    trained = run_tito("milestone", "gpt", "--steps", "20", "--length", "20", cwd=workspace)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "bits per character" in trained.stdout and (workspace / "runs" / "gpt" / "gpt.npz").exists()
    assert "FusedGPT (module 13" in trained.stdout, "every module is written: the milestone trains module 13's model"

    for module in NEW:
        handed_in = run_tito("student", "submit", module, cwd=workspace)
        assert handed_in.returncode == 0, handed_in.stdout
        graded = run_tito("nbgrader", "autograde", module, "--student", STUDENT, cwd=course)
        assert graded.returncode == 0, graded.stdout + graded.stderr
        grade = read_grade(load_course(course), load_course(course).module(module), STUDENT)
        assert grade.max_score > 0 and grade.score == grade.max_score and not grade.failed, grade
