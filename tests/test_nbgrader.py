"""The instructor workflow (`tito nbgrader`) on a private copy of the course: real nbgrader, real kernels, no mocks.

One course is set up for the whole session (a copy of the repository, so its own course/ is never touched):
each graded module is released once and eight students hand it in: the solution, the untouched release, a
half-done one, an endless loop, emptied-and-deleted tests, a finished one with tests deleted and edited, a
corrupt notebook and a file that is no notebook. Each test then checks one promise against the gradebook,
the CSV report or the files. A small probe lesson covers what the course's modules may not (hidden tests).
"""
from __future__ import annotations

import copy
import csv
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, copy_course, needs_sandbox, run_tito
from tito.course import Course, Module, load_course
from tito.coursefolder import course_folder
from tito.errors import TitoError
from tito.grading.autograde import Grade, autograde
from tito.grading.feedback import feedback
from tito.grading.release import check_no_leaks, generate, release
from tito.leaks import find_leaks, secret_lines
from tito.notebook import execute, graded_cells
from tito.grading.scores import collect_scores, write_csv
from tito.testing import cell_results

pytestmark = [pytest.mark.slow, needs_sandbox]

# The modules graded end to end (when settings.ini lists them), plus a small lesson made here.
GRADED = ["01_tensor", "05_autograd", "06_operations", "09_convolutions", "10_attention", "11_transformer", "12_profiling",
          "13_acceleration", "14_quantization", "15_compression", "16_generation", "17_capstone"]
TIMEOUT = 8  # seconds a cell may run while grading: short, so the endless loop costs little

# A lesson that exercises what the course's own modules may not: a hidden test, a method stub inside a
# class that must still define, and grading that imports the reference package.
PROBE = '''\
# %% [markdown]
# # A probe for the grading machinery

# %%
from tinytorch.core.tensor import Tensor

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "counter-class", "locked": false, "solution": true}
class Counter:
    """Counts ticks in a Tensor."""

    def __init__(self):
        self.total = Tensor(0.0)

    def tick(self, by=1):
        """Add `by` to the total and return the new total as a number."""
        ### BEGIN SOLUTION
        self.total = self.total + by
        return self.total.item()
        ### END SOLUTION

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-counter", "locked": true, "points": 3, "solution": false}
counter = Counter()
assert counter.tick() == 1, "one tick should count 1"
### BEGIN HIDDEN TESTS
assert counter.tick(by=5) == 6, "tick(by=5) should add 5"
### END HIDDEN TESTS

# %% [markdown]
# **Q.** Why count in a Tensor?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-counter", "locked": false, "points": 1, "solution": true}
# To show that grading imports the reference package.
'''
PROBE_MODULE = "99_probe"


@pytest.fixture(scope="session")
def course(tmp_path_factory) -> Course:
    """A copy of the course holding the graded modules and the probe, with a short grading timeout."""
    root = copy_course(tmp_path_factory.mktemp("nbgrader") / "repo")
    names = graded_modules() + [PROBE_MODULE]
    (root / "modules" / PROBE_MODULE).mkdir()
    (root / "modules" / PROBE_MODULE / "probe_dev.py").write_text(PROBE)
    settings = root / "settings.ini"
    text = re.sub(r"modules =\n(    .*\n)+", "modules =\n" + "".join(f"    {name}\n" for name in names), settings.read_text())
    settings.write_text(re.sub(r"timeout = \d+", f"timeout = {TIMEOUT}", text))
    loaded = load_course(root)
    assert loaded.timeout == TIMEOUT and [module.name for module in loaded.modules] == names
    return loaded


def graded_modules() -> list[str]:
    """The modules of GRADED that this course lists and has written."""
    return [module.name for module in load_course(ROOT).modules if module.name in GRADED and module.dev_file.exists()]


# ---------------------------------------------------------------------------------------- submissions

@dataclass
class Outcome:
    module: Module
    source: nbformat.NotebookNode
    release: nbformat.NotebookNode
    expected: dict[str, dict[str, float]]  # student -> test grade id -> points, where known in advance
    grades: dict[str, Grade]
    halfway: nbformat.NotebookNode
    halfway_done: list[str]  # the solution cells the halfway student filled in


def _tests(notebook) -> list[tuple[str, float]]:
    return [(cell.grade_id, cell.points) for cell in graded_cells(notebook) if cell.is_test]


def _info(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _index(notebook, grade_id) -> int:
    return next(index for index, cell in enumerate(notebook.cells) if _info(cell).get("grade_id") == grade_id)


def _own_solution_cells(notebook) -> dict[str, list[str]]:
    """Each test -> the solution code cells between the previous test and it: the code it was written for."""
    own, pending = {}, []
    for cell in notebook.cells:
        info = _info(cell)
        if cell.cell_type == "code" and info.get("solution"):
            pending.append(info["grade_id"])
        elif cell.cell_type == "code" and info.get("grade"):
            own[info["grade_id"]], pending = pending, []
    return own


def _with_cells(base, donor, grade_ids) -> nbformat.NotebookNode:
    """`base` with the cells named `grade_ids` taken from `donor` (e.g. a release with some solutions filled in)."""
    result = copy.deepcopy(base)
    for grade_id in grade_ids:
        result.cells[_index(result, grade_id)].source = donor.cells[_index(donor, grade_id)].source
    return result


def _submissions(source, released):
    """What the students hand in; the points each must get on each test where that is known in advance; and
    the solution cells the halfway student completed."""
    tests = _tests(source)
    own = _own_solution_cells(source)
    full = {grade_id: points for grade_id, points in tests}
    first, last = tests[0][0], tests[-1][0]

    # Half done: every solution above the middle test filled in, nothing below it.
    middle = tests[len(tests) // 2 - 1][0] if len(tests) > 1 else first
    done = [grade_id for test, _ in tests[:_position(tests, middle) + 1] for grade_id in own[test]]
    halfway = _with_cells(released, source, done)

    # An endless loop at the top of the first solution region of the last test that has code of its own.
    target = next(test for test, _ in reversed(tests) if own[test])
    looping = copy.deepcopy(source)
    cell = looping.cells[_index(looping, own[target][0])]
    cell.source = re.sub(r"^(\s*)(### BEGIN SOLUTION.*)$", r"\1\2\n\1while True:\n\1    pass", cell.source, count=1,
                         flags=re.M)

    # Cheating on nothing done: every test emptied, the first one deleted. Tidying a finished one: the first
    # test deleted, a comment added to the last. Grading must restore all of them.
    cheating = copy.deepcopy(released)
    for test, _ in tests:
        cheating.cells[_index(cheating, test)].source = "pass  # nothing to check"
    del cheating.cells[_index(cheating, first)]
    tidy = copy.deepcopy(source)
    tidy.cells[_index(tidy, last)].source += "\n# looks fine to me"
    del tidy.cells[_index(tidy, first)]

    notebooks = {"solver": source, "idle": released, "halfway": halfway, "looper": looping, "cheater": cheating,
                 "tidy": tidy, "broken": b"{\"cells\": [ this is not JSON", "wrongfile": b"%PDF-1.4 a scanned page"}
    zero = {grade_id: 0.0 for grade_id in full}
    expected = {"solver": full, "idle": zero, "cheater": zero, "tidy": full}
    return notebooks, expected, done


def _position(tests, grade_id) -> int:
    return [test for test, _ in tests].index(grade_id)


def _hand_in(course: Course, module: Module, student: str, content) -> Path:
    path = course_folder(course).submitted(student, module)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        nbformat.write(content, path)
    return path


_outcomes: dict[str, Outcome] = {}


@pytest.fixture(scope="session")
def graded(course):
    """Release a module, hand in the submissions, autograde them all (once per module per session; the probe
    is only released)."""
    def outcome(name: str) -> Outcome:
        if name not in _outcomes:
            module = course.module(name)
            release(course, module)
            folder = course_folder(course)
            source = nbformat.read(folder.source(module), as_version=4)
            released = nbformat.read(folder.release(module), as_version=4)
            if name == PROBE_MODULE:  # its own tests hand in what they need
                _outcomes[name] = Outcome(module, source, released, {}, {}, released, [])
                return _outcomes[name]
            notebooks, expected, done = _submissions(source, released)
            for student, content in notebooks.items():
                _hand_in(course, module, student, content)
            grades = {grade.student: grade for grade in autograde(course, module)}
            _outcomes[name] = Outcome(module, source, released, expected, grades, notebooks["halfway"], done)
        return _outcomes[name]
    return outcome


def _gradebook_points(course: Course, module: Module, student: str) -> dict[str, float]:
    """Each test's autograded points, read straight from nbgrader's gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_folder(course).gradebook}", course.course_id) as gradebook:
        notebook = gradebook.find_submission_notebook(module.short, module.name, student)
        return {grade.name: grade.auto_score for grade in notebook.grades if grade.cell.cell_type == "code"}


def _gradebook_dump(course: Course) -> list[tuple]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_folder(course).gradebook}", course.course_id) as gradebook:
        return sorted((submission.student_id, submission.assignment.name, grade.name, grade.auto_score,
                       grade.needs_manual_grade)
                      for assignment in gradebook.assignments for submission in assignment.submissions
                      for notebook in submission.notebooks for grade in notebook.grades)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()
            and "logs" not in path.relative_to(folder).parts and path.name != "gradebook.db.bak"}


# ---------------------------------------------------------------------------------------------- release

@pytest.mark.parametrize("name", graded_modules())
def test_release_stubs_every_solution_and_keeps_the_rest(graded, name):
    outcome = graded(name)
    release_text = nbformat.writes(outcome.release)
    assert "BEGIN SOLUTION" not in release_text and "BEGIN HIDDEN TESTS" not in release_text
    assert "jupytext" not in outcome.release.metadata, "a release must not be paired with a jupytext file"
    assert f"raise NotImplementedError('{outcome.module.name} is not complete" in release_text
    assert len(outcome.release.cells) == len(outcome.source.cells)
    for cell in outcome.release.cells:
        info = _info(cell)
        if info.get("grade") and cell.cell_type == "code":
            assert info.get("locked") and cell.metadata.get("editable") is False and cell.metadata.get("deletable") is False, \
                f"test cell {info['grade_id']} should be locked"
        if info.get("solution") and cell.cell_type == "markdown":
            assert cell.source == "YOUR ANSWER HERE" and info.get("grade") and info.get("points"), \
                f"{info['grade_id']} should be a manually graded answer cell"


@pytest.mark.parametrize("name", graded_modules())
def test_release_runs_top_to_bottom_failing_only_at_stubs(graded, course, name):
    """Every solution cell still defines what it defines; every error comes from a stub or from what it left undone."""
    outcome = graded(name)
    executed = execute(copy.deepcopy(outcome.release), cwd=course.root, timeout=120)
    errors = [(cell, output) for cell in executed.cells if cell.cell_type == "code"
              for output in cell.get("outputs", []) if output.output_type == "error"]
    assert not [output.ename for _, output in errors if output.ename in ("SyntaxError", "IndentationError")]
    defining = [_info(cell)["grade_id"] for cell, _ in errors if _info(cell).get("solution")]
    assert not defining, f"solution cells should define their classes and functions without error: {defining}"
    first = errors[0][1]
    assert first.ename == "NotImplementedError" and outcome.module.name in first.evalue, f"{first.ename}: {first.evalue}"
    failing_tests = {_info(cell)["grade_id"] for cell, _ in errors if _info(cell).get("grade")}
    assert failing_tests == {grade_id for grade_id, _ in _tests(outcome.source)}


@pytest.mark.parametrize("name", graded_modules())
def test_no_solution_line_reaches_the_release(graded, course, name):
    outcome = graded(name)
    folder = course_folder(course)
    assert check_no_leaks(course) == []
    secrets = secret_lines(outcome.source, name)
    assert secrets, "the check must have solution lines to look for"
    release_lines = {line.strip() for cell in outcome.release.cells for line in cell.source.splitlines()}
    assert not release_lines & set(secrets)
    assert not list((folder.root / "release").rglob("*.py")), "the release must carry no package code"


def test_the_leak_check_finds_a_copied_package_and_a_pasted_line(graded, course, tmp_path):
    outcome = graded(GRADED[0])
    secrets = secret_lines(outcome.source, outcome.module.name)
    package = course.root / "tinytorch" / (outcome.module.package_module.replace(".", "/") + ".py")
    shared = tmp_path / "handout"
    shared.mkdir()
    shutil.copy(package, shared / package.name)
    notebook = copy.deepcopy(outcome.release)
    line = next(iter(secrets))
    notebook.cells[0].source += "\n" + line
    nbformat.write(notebook, shared / "copy.ipynb")
    leaks = find_leaks(secrets, shared)
    assert {leak.file.name for leak in leaks} == {package.name, "copy.ipynb"}
    assert any(leak.text.strip() == line and "cell 1" in leak.where for leak in leaks)


def test_no_module_solution_may_reach_any_release(graded, course, tmp_path):
    """A workspace hands out every release at once: 01's solutions must not show in a later release either."""
    first, probe = graded(GRADED[0]), graded(PROBE_MODULE)
    folder = course_folder(course)
    scratch = replace(course, course_dir=tmp_path / "course")
    for part in ("source", "release"):
        shutil.copytree(folder.root / part, scratch.course_dir / part)
    assert check_no_leaks(scratch) == []
    early_secret = next(iter(secret_lines(first.source, first.module.name)))
    late_secret = next(iter(secret_lines(probe.source, PROBE_MODULE)))
    for owner, line in [(PROBE_MODULE, early_secret), (first.module.name, late_secret)]:
        path = scratch.course_dir / "release" / owner / "notes.txt"
        path.write_text(line + "\n")
    (scratch.course_dir / "release" / "README.txt").write_text(early_secret + "\n")
    leaks = check_no_leaks(scratch)
    assert {(leak.file.parent.name, leak.file.name, leak.origin.split()[0]) for leak in leaks} == \
        {(first.module.name, "notes.txt", PROBE_MODULE), (PROBE_MODULE, "notes.txt", first.module.name),
         ("release", "README.txt", first.module.name)}


def test_probe_release_keeps_the_class_and_hides_the_hidden_test(graded, course):
    outcome = graded(PROBE_MODULE)
    cells = {_info(cell).get("grade_id"): cell.source for cell in outcome.release.cells}
    assert "class Counter:" in cells["counter-class"] and "def tick(self, by=1):" in cells["counter-class"]
    assert "        raise NotImplementedError('99_probe is not complete" in cells["counter-class"], \
        "the stub must keep the method body's indentation"
    assert "tick(by=5)" not in cells["test-counter"] and "tick(by=5)" in nbformat.writes(outcome.source)


# -------------------------------------------------------------------------------------------- autograde

@pytest.mark.parametrize("name", graded_modules())
@pytest.mark.parametrize("student", ["solver", "idle", "cheater", "tidy"])
def test_each_submission_gets_exactly_its_points(graded, course, name, student):
    """The solution: full marks; the untouched release: 0; emptied or deleted tests are restored before grading."""
    outcome = graded(name)
    grade = outcome.grades[student]
    assert grade.graded, grade.error
    assert _gradebook_points(course, outcome.module, student) == outcome.expected[student]
    assert grade.score == sum(outcome.expected[student].values())
    assert grade.max_score == sum(points for _, points in _tests(outcome.source))


@pytest.mark.parametrize("name", graded_modules())
def test_tampered_tests_are_restored_and_noted(graded, name):
    outcome = graded(name)
    tests = [test for test, _ in _tests(outcome.source)]
    restored = {f"restored edited {test}" for test in tests[1:]}
    assert set(outcome.grades["cheater"].notes) == restored | {f"put back deleted {tests[0]}"}
    assert set(outcome.grades["tidy"].notes) == {f"restored edited {tests[-1]}", f"put back deleted {tests[0]}"}


@pytest.mark.parametrize("name", graded_modules())
def test_halfway_scores_exactly_its_completed_parts(graded, course, name):
    """Tests whose code is all written score in full, tests of stubbed code score 0, and a direct run agrees."""
    outcome = graded(name)
    points = _gradebook_points(course, outcome.module, "halfway")
    own = _own_solution_cells(outcome.source)
    tests = _tests(outcome.source)
    written_through = max(index for index, (test, _) in enumerate(tests) if own[test] and set(own[test]) <= set(outcome.halfway_done))
    for index, (test, full) in enumerate(tests):
        if index <= written_through:
            assert points[test] == full, f"{test} tests only completed code, yet scored {points[test]}"
        elif own[test]:
            assert points[test] == 0, f"{test} tests a stub, yet scored {points[test]}"
    direct = {result.name: result.passed for result in cell_results(execute(copy.deepcopy(outcome.halfway), cwd=course.root))
              if result.is_test}
    assert points == {test: (full if direct[test] else 0.0) for test, full in tests}
    assert 0 < sum(points.values()) < sum(full for _, full in tests)


@pytest.mark.parametrize("name", graded_modules())
def test_an_endless_loop_stops_the_run_and_keeps_the_points_before_it(graded, course, name):
    outcome = graded(name)
    grade = outcome.grades["looper"]
    own = _own_solution_cells(outcome.source)
    target = next(test for test, _ in reversed(_tests(outcome.source)) if own[test])
    assert grade.graded and len(grade.notes) == 1 and f"{own[target][0]} was stopped after {TIMEOUT} s" in grade.notes[0], grade.notes
    points = _gradebook_points(course, outcome.module, "looper")
    before = [test for test, _ in _tests(outcome.source)]
    before = before[:before.index(target)]
    assert points == {test: (full if test in before else 0.0) for test, full in _tests(outcome.source)}
    assert grade.seconds < TIMEOUT + 60, "the endless cell should be stopped after the timeout"


@pytest.mark.parametrize("name", graded_modules())
def test_a_corrupt_file_is_reported_and_the_rest_are_graded(graded, course, name):
    outcome = graded(name)
    folder = course_folder(course)
    broken, wrong = outcome.grades["broken"], outcome.grades["wrongfile"]
    assert not broken.graded and "is not a Jupyter notebook" in broken.error and "broken" in broken.error
    assert not wrong.graded and "is not a Jupyter notebook" in wrong.error
    assert "\n" not in broken.error + wrong.error
    assert not folder.autograded("broken", outcome.module).parent.exists()
    assert all(grade.graded for student, grade in outcome.grades.items() if student not in ("broken", "wrongfile"))


def test_a_notebook_that_lost_its_metadata_is_reported_not_crashed_on(graded, course):
    outcome = graded(GRADED[0])
    stripped = copy.deepcopy(outcome.source)
    for cell in stripped.cells:
        cell.metadata = {}
    _hand_in(course, outcome.module, "retyped", stripped)
    grade, = autograde(course, outcome.module, ["retyped"])
    assert grade.graded and grade.score == 0 and "lost its nbgrader metadata" in grade.notes[0] and "\n" not in grade.notes[0]
    row, = [row for row in collect_scores(course) if (row.student, row.module) == ("retyped", outcome.module.name)]
    assert row.tests_score == 0


def test_probe_grading_restores_hidden_tests_and_imports_the_reference_package(graded, course):
    outcome = graded(PROBE_MODULE)
    module = outcome.module
    # Passes the visible assert only: the hidden one, restored at grading, fails it.
    visible_only = _with_cells(outcome.release, outcome.source, ["counter-class"])
    cell = visible_only.cells[_index(visible_only, "counter-class")]
    cell.source = cell.source.replace("self.total + by", "self.total + 1")
    _hand_in(course, module, "shortcut", visible_only)
    # Hands in a package of its own that breaks on import: grading must not use it.
    _hand_in(course, module, "packer", outcome.source)
    poisoned = course_folder(course).submitted("packer", module).parent / "tinytorch"
    (poisoned / "core").mkdir(parents=True)
    (poisoned / "__init__.py").write_text("raise ImportError('a student package must not be imported')\n")
    grades = {grade.student: grade for grade in autograde(course, module, ["shortcut", "packer"])}
    assert _gradebook_points(course, module, "shortcut") == {"test-counter": 0.0}
    assert _gradebook_points(course, module, "packer") == {"test-counter": 3.0}
    assert grades["packer"].score == 3 and grades["packer"].answer_points == 1
    assert not (course_folder(course).autograded("packer", module).parent / "tinytorch").exists()
    shown = course_folder(course).autograded("shortcut", module).read_text()
    assert "tick(by=5)" not in shown, "hidden test code ran in the judge and stays off what the student is shown"


def test_regrading_replaces_results_without_duplicates(graded, course):
    outcome = graded(GRADED[0])
    before = _gradebook_dump(course)
    again = autograde(course, outcome.module, ["solver", "idle"])
    assert [grade.score for grade in again] == [outcome.grades["solver"].score, 0]
    assert _gradebook_dump(course) == before


def test_a_kernel_that_dies_scores_what_it_earned_and_changes_nothing_else(graded, course):
    """os._exit() before the first test: a score of 0 with the reason; every other result stays as it was."""
    outcome = graded(GRADED[0])
    folder = course_folder(course)
    before_db = _gradebook_dump(course)
    killer = copy.deepcopy(outcome.source)
    killer.cells.insert(_index(killer, _tests(killer)[0][0]), nbformat.v4.new_code_cell("import os\nos._exit(1)"))
    _hand_in(course, outcome.module, "killer", killer)
    before_tree = _tree(folder.root)
    grade, = autograde(course, outcome.module, ["killer"])
    assert grade.graded and grade.score == 0 and "kernel died" in grade.notes[0] and "\n" not in grade.notes[0]
    assert [row for row in _gradebook_dump(course) if row[0] != "killer"] == before_db
    def others(tree):  # the gradebook's own rows are compared above
        return {path: data for path, data in tree.items() if "killer" not in path and path != "gradebook.db"}
    assert others(_tree(folder.root)) == others(before_tree)


# --------------------------------------------------------------------------------------- report, feedback

def test_report_csv_has_every_score(graded, course, tmp_path):
    outcomes = [graded(name) for name in graded_modules()]
    path = write_csv(collect_scores(course), tmp_path / "scores.csv")
    rows = {(row["student"], row["module"]): row for row in csv.DictReader(path.open())}
    for outcome in outcomes:
        name = outcome.module.name
        tests_max = sum(points for _, points in _tests(outcome.source))
        answers_max = sum(cell.points for cell in graded_cells(outcome.source) if not cell.is_test)
        for student in ("solver", "idle", "halfway", "looper", "cheater", "tidy"):
            row = rows[(student, name)]
            expected = outcome.expected.get(student) or _gradebook_points(course, outcome.module, student)
            assert float(row["tests_score"]) == sum(expected.values()), (student, name, row)
            assert float(row["tests_max"]) == tests_max and float(row["answers_max"]) == answers_max
        assert rows[("solver", name)]["status"] == "answers to grade", "the model answers await a human"
        assert rows[("idle", name)]["status"] == "graded", "untouched answers score 0 with nothing to grade"
        for student in ("broken", "wrongfile"):
            assert rows[(student, name)]["status"] == "not graded" and float(rows[(student, name)]["score"]) == 0


def test_hand_grades_count_in_the_report_and_survive_regrading(graded, course):
    """What a grader enters in the formgrader (here through nbgrader's API) is kept when autograde runs again."""
    from nbgrader.api import Gradebook

    outcome = graded(GRADED[0])
    name = outcome.module.name
    answers = [cell for cell in graded_cells(outcome.source) if not cell.is_test]
    with Gradebook(f"sqlite:///{course_folder(course).gradebook}", course.course_id) as gradebook:
        for cell in answers:
            gradebook.find_grade(cell.grade_id, outcome.module.short, name, "tidy").manual_score = cell.points
        gradebook.db.commit()
    again, = autograde(course, outcome.module, ["tidy"])
    assert not again.answers_to_grade
    row, = [row for row in collect_scores(course) if (row.student, row.module) == ("tidy", name)]
    assert row.answers_score == sum(cell.points for cell in answers) and row.status == "graded"
    assert row.score == row.max_score


def _hand_grade(course: Course, module: Module, student: str, answers) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_folder(course).gradebook}", course.course_id) as gradebook:
        for cell in answers:
            gradebook.find_grade(cell.grade_id, module.short, module.name, student).manual_score = cell.points
        gradebook.db.commit()


def _flagged(course: Course, module: Module, student: str) -> set[str]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_folder(course).gradebook}", course.course_id) as gradebook:
        notebook = gradebook.find_submission_notebook(module.short, module.name, student)
        return {grade.name for grade in notebook.grades if grade.needs_manual_grade}


def test_regrading_flags_only_the_answers_changed_since_they_were_graded(graded, course):
    """nbgrader flags every hand-graded answer again on each autograde; tito keeps an unchanged one graded, and a
    changed one awaits its grader with its points blank in the report."""
    outcome = graded(GRADED[0])
    module, student = outcome.module, "rethinker"
    answers = [cell for cell in graded_cells(outcome.source) if not cell.is_test]
    assert answers, f"{module.name} has written answers"
    _hand_in(course, module, student, outcome.source)
    autograde(course, module, [student])
    assert _flagged(course, module, student) == {cell.grade_id for cell in answers}, "model answers await a grader"
    _hand_grade(course, module, student, answers)
    again, = autograde(course, module, [student])
    assert not again.answers_to_grade and _flagged(course, module, student) == set()
    row, = [row for row in collect_scores(course) if (row.student, row.module) == (student, module.name)]
    assert row.status == "graded" and row.answers_score == sum(cell.points for cell in answers)

    changed = copy.deepcopy(outcome.source)
    changed.cells[_index(changed, answers[0].grade_id)].source += "\n\nOn second thought, also this."
    _hand_in(course, module, student, changed)
    third, = autograde(course, module, [student])
    assert third.answers_to_grade and _flagged(course, module, student) == {answers[0].grade_id}
    row, = [row for row in collect_scores(course) if (row.student, row.module) == (student, module.name)]
    assert row.status == "answers to grade" and row.answers_score is None and row.score is None
    assert row.row()[4] == "" and row.row()[6] == "", "the CSV leaves the answers' points and the total blank"


def test_autograde_tells_unanswered_pending_and_hand_graded_answers_apart(graded, course):
    """The summary's "written answers" column: an untouched answer is "not answered", a written one awaits a
    grader, a hand-graded one shows its points."""
    outcome = graded(GRADED[0])
    module = outcome.module
    answers = [cell for cell in graded_cells(outcome.source) if not cell.is_test]
    assert len(answers) >= 2, f"{module.name} has written answers"
    for student, notebook in (("blank", outcome.release), ("writer", outcome.source), ("marked", outcome.source)):
        _hand_in(course, module, student, notebook)
    autograde(course, module, ["marked"])
    _hand_grade(course, module, "marked", answers[:1])  # full points for the first answer only, so far
    result = run_tito("nbgrader", "autograde", module.name, "--student", "blank", "--student", "writer",
                      "--student", "marked", cwd=course.root)
    assert result.returncode == 0, result.stdout + result.stderr
    total = sum(cell.points for cell in answers)
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines()
            if line.startswith("│ ") and line.split("│")[1].strip() in ("blank", "writer", "marked")}
    assert f"not answered (0/{total:g})" in rows["blank"], result.stdout
    assert "to grade by hand" in rows["writer"] and "(" not in rows["writer"].split("│")[3], result.stdout
    assert f"to grade by hand ({len(answers) - 1} of {len(answers)})" in rows["marked"], result.stdout
    _hand_grade(course, module, "marked", answers)
    assert f"{total:g}/{total:g} by hand" in run_tito("nbgrader", "autograde", module.name, "--student", "marked",
                                                       cwd=course.root).stdout


def test_feedback_writes_a_page_per_student(graded, course):
    outcome = graded(GRADED[0])
    pages = feedback(course, outcome.module, ["solver", "idle"])
    assert [page.student for page in pages] == ["solver", "idle"] and all(page.path and page.path.exists() for page in pages)
    html = pages[0].path.read_text()
    assert _tests(outcome.source)[0][0] in html and "<html" in html


# ----------------------------------------------------------------------------------- the command line

def test_command_line_report_autograde_and_errors(graded, course):
    graded(GRADED[0])
    root = course.root
    report = run_tito("nbgrader", "report", cwd=root)
    assert report.returncode == 0, report.stdout + report.stderr
    assert "solver" in report.stdout and "scores.csv" in report.stdout
    assert (course_folder(course).report).read_text().startswith("student,module,tests_score")

    both = run_tito("nbgrader", "autograde", "tensor", "--student", "solver", "--student", "broken", cwd=root)
    assert both.returncode == 1, both.stdout + both.stderr
    assert "solver: 10/10 test points" in both.stdout
    last = both.stdout.strip().splitlines()[-1]
    assert last.startswith("error: 1 submission could not be graded") and "broken (01_tensor)" in last
    assert "Traceback" not in both.stdout + both.stderr

    for args, message in [(["release", "nope"], "unknown module 'nope'"),
                          (["autograde", "01", "--student", "nobody"], "no submission of 01_tensor from student 'nobody'"),
                          (["feedback"], "name a module"),
                          (["autograde", "--all", "01"], "not both")]:
        result = run_tito("nbgrader", *args, cwd=root)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stdout.strip().count("\n") == 0 and message in result.stdout, (args, result.stdout)
        assert "Traceback" not in result.stdout + result.stderr


def test_all_runs_a_step_for_every_module_that_has_work(graded, course):
    names = graded_modules()
    for name in names:
        graded(name)
    result = run_tito("nbgrader", "feedback", "--all", "--student", "solver", cwd=course.root)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in names:
        module = course.module(name)
        assert f"course/feedback/solver/{name}/{module.short}.html" in result.stdout
    assert f"{PROBE_MODULE}: " in result.stdout and "skipped" in result.stdout, "the probe has no student 'solver'"


# --------------------------------------------------------------------------------- bad lessons change nothing

def _lesson(course: Course, name: str, text: str) -> Module:
    directory = course.root / "lessons-under-test" / name
    directory.mkdir(parents=True, exist_ok=True)
    module = Module(name, directory)
    module.dev_file.write_text(text)
    return module


def test_bad_nbgrader_metadata_is_named_before_any_kernel_starts(course):
    module = _lesson(course, "96_twice", PROBE.replace('"grade_id": "test-counter"', '"grade_id": "counter-class"'))
    with pytest.raises(TitoError, match=r"grade_id 'counter-class' is used by cells 3 and 4"):
        generate(course, module)
    module = _lesson(course, "95_old", PROBE.replace('"schema_version": 3, ', ""))
    with pytest.raises(TitoError, match=r"counter-class lacks \"schema_version\": 3"):
        generate(course, module)


def test_a_solution_failing_its_own_test_is_not_generated(graded, course):
    graded(GRADED[0])
    module = _lesson(course, "97_wrong", PROBE.replace("self.total + by", "self.total - by"))
    folder = course_folder(course)
    with pytest.raises(TitoError, match=r"the solution of 97_wrong fails its own tests.*test-counter"):
        generate(course, module)
    assert not folder.source(module).exists()


def test_a_test_that_passes_without_work_stops_the_release_and_changes_nothing(graded, course):
    graded(GRADED[0])
    lenient = re.sub(r"counter = Counter\(\)\n(.*\n)+?### END HIDDEN TESTS\n", "assert Counter is not None\n", PROBE)
    assert "tick(by=5)" not in lenient
    module = _lesson(course, "98_lenient", lenient)
    folder = course_folder(course)
    before = _tree(folder.root)
    with pytest.raises(TitoError) as raised:
        release(course, module)
    assert "test-counter" in str(raised.value) and "\n" not in str(raised.value)
    assert "points for nothing" in str(raised.value)
    assert _tree(folder.root) == before
