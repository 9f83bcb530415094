"""tito's output in an 80-column terminal: every line whole, nothing cut to `…`."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from conftest import run_tito
from tinytorch.core.training import History
from tito.milestones.common import EpochProgress
from tito.ui import table

WIDTH = 80


def test_milestone_epoch_lines_fit_80_columns_with_every_number():
    console = Console(width=WIDTH, record=True, force_terminal=False)
    progress = EpochProgress(console)
    progress.start(15, 23, "64-512-10 MLP, Adam lr 0.001, batch 64, seed 0: 1437 digits images for training, 360 held out")
    history = History()
    for epoch in range(1, 16):
        for _ in range(23):
            progress.batch(0.1234)
        history.train_loss.append(0.0123)
        history.train_accuracy.append(0.9987)
        history.val_loss.append(0.0456)
        history.val_accuracy.append(0.9861)
        progress.epoch_end(epoch, history)
    progress.stop()
    lines = console.export_text().splitlines()
    epochs = [line for line in lines if line.startswith("epoch")]
    assert len(epochs) == 15 and all(len(line) <= WIDTH for line in lines)
    assert all("23/23 train 0.0123 99.87%  test 0.0456 98.61% 0:00:" in line for line in epochs), epochs
    assert "…" not in console.export_text()


def test_a_table_wraps_long_paths_at_80_columns_instead_of_cutting_them():
    console = Console(width=WIDTH, record=True)
    path = "course/submitted/a-student-with-a-long-id/05_autograd/autograd.ipynb"
    console.print(table("Feedback", ["student", "module", "page", "note"], [["a-student-with-a-long-id", "05_autograd",
                                                                          path, "written answers still to grade"]]))
    text = console.export_text()
    assert "…" not in text and all(len(line) <= WIDTH for line in text.splitlines())
    assert "".join(line.split("│")[3].strip() for line in text.splitlines() if line.count("│") == 5) == path


def test_status_fits_80_columns(course_copy):
    result = run_tito("status", cwd=course_copy, columns=WIDTH)
    assert result.returncode == 0 and "…" not in result.stdout
    assert all(len(line) <= WIDTH for line in result.stdout.splitlines())
    assert "08_training" in result.stdout


# ------------------------------------------------------------------- tables of a realistic class, 80 and 120 wide

def _class_gradebook(course_root: Path, modules: list[str], students: list[str]) -> None:
    """A real nbgrader gradebook of a class: every module with tests and a written answer, students with every
    kind of result (full and partial points, answers awaiting a grader, not graded, no submission)."""
    from nbgrader.api import Gradebook

    from tito.course import load_course
    from tito.coursefolder import course_folder, grading_settings

    course = load_course(course_root)
    folder = course_folder(course)
    folder.root.mkdir(parents=True, exist_ok=True)
    with Gradebook(f"sqlite:///{folder.gradebook}", grading_settings(course).course_id) as gradebook:
        for number, module in enumerate(modules):
            short = module.split("_", 1)[1]
            gradebook.add_assignment(module)
            gradebook.add_notebook(short, module)
            gradebook.add_grade_cell(f"test-{short}", short, module, max_score=10 + number, cell_type="code")
            gradebook.add_grade_cell(f"answer-{short}", short, module, max_score=2, cell_type="markdown")
            gradebook.add_solution_cell(f"answer-{short}", short, module)
        for index, student in enumerate(students):
            gradebook.add_student(student)
            for number, module in enumerate(modules):
                if (index + number) % 7 == 3:
                    continue  # no submission
                submission = gradebook.add_submission(module, student)
                grades = {grade.cell.cell_type: grade for grade in submission.notebooks[0].grades}
                grades["code"].auto_score = (10 + number) * ((index + number) % 4) / 4 + 0.5 * (index % 2)
                grades["markdown"].needs_manual_grade = (index + number) % 5 == 0
                grades["markdown"].manual_score = None if grades["markdown"].needs_manual_grade else 1.5
        gradebook.db.commit()
    (folder.root / "submitted" / "student-0099" / modules[0]).mkdir(parents=True)  # handed in, not graded yet


def _assert_whole_at(text: str, width: int, words: list[str]) -> None:
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), "\n".join(line for line in lines if len(line) > width)
    assert "…" not in text
    missing = [word for word in words if not any(word in line for line in lines)]
    assert missing == [], f"split or missing at {width} columns: {missing}\n{text}"


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory) -> tuple[Path, list[str], list[str]]:
    """A course copy with the gradebook of a class of 12 students over 12 modules."""
    from conftest import copy_course
    from tito.course import load_course

    root = copy_course(tmp_path_factory.mktemp("class") / "course")
    lessons = [module.name for module in load_course(root).modules][:11]  # eleven, however many the course has
    settings = root / "settings.ini"
    text = settings.read_text(encoding="utf-8")
    settings.write_text(re.sub(r"(modules =\n)(    \S+\n)+", lambda m: m.group(1) + "".join(f"    {name}\n" for name in lessons),
                               text), encoding="utf-8")
    modules = lessons + ["12_systems"]
    students = [f"student-{number:04d}" for number in range(40, 52)]
    _class_gradebook(root, modules, students)
    return root, modules, students


@pytest.mark.parametrize("width", [80, 120])
def test_the_report_of_twelve_modules_and_students_fits_with_every_id_and_number_whole(graded_class, width):
    course, modules, students = graded_class
    result = run_tito("nbgrader", "report", cwd=course, columns=width)
    assert result.returncode == 0, result.stdout + result.stderr
    headers = [line for line in result.stdout.splitlines() if line.startswith("┃ student")]
    assert headers, result.stdout
    shown = [number for line in headers for number in line.replace("┃", " ").split()[1:]]
    assert shown == [module[:2] for module in modules], "each module once, in order, by its whole number"
    _assert_whole_at(result.stdout, width, students + ["12_systems"])
    assert len(headers) == (2 if width == 80 else 1), result.stdout
    row = next(line for line in result.stdout.splitlines() if line.startswith("│ student-0041 "))
    cells = [cell.strip() for cell in row.split("│")[2:-1]]
    assert cells[0] == "3", "student-0041's points in 01_tensor: a quarter of 10, plus 0.5"
    assert cells[2] == "-", "student-0041 handed in no 03_layers"
    assert cells[4] == "4*", "student-0041's 05_autograd: 3.5 + 0.5 points, and a written answer awaiting a grader"
    late = next(line for line in result.stdout.splitlines() if line.startswith("│ student-0099 "))
    assert [cell.strip() for cell in late.split("│")[2:4]] == ["?", "-"], "handed in 01, not graded yet; nothing else"


@pytest.mark.parametrize("width", [80, 120])
def test_status_of_a_students_unfinished_workspace_keeps_every_name_whole(course_copy, width):
    """Every module of the course stubbed as a release is and exported, two of them changed since (out of date),
    two with a last test run."""
    for lesson in course_copy.glob("modules/*/*_dev.py"):
        lesson.write_text(re.sub(r"^([ \t]*)### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*\n",
                                 r"\1# YOUR CODE HERE\n\1raise NotImplementedError()\n", lesson.read_text(),
                                 flags=re.MULTILINE | re.DOTALL))
    assert run_tito("export", cwd=course_copy).returncode == 0  # the package of stubs a workspace starts with
    for lesson in ["modules/09_convolutions/convolutions_dev.py", "modules/11_transformer/transformer_dev.py"]:
        text = (course_copy / lesson).read_text()  # changed since the export: out of date
        (course_copy / lesson).write_text(text.replace("import numpy as np\n", "import numpy as np  # mine\n", 1))
    with open(course_copy / "settings.ini", "a") as settings:
        settings.write("\n[workspace]\nstudent = student-0042\n")
    (course_copy / ".tito").mkdir()
    (course_copy / ".tito" / "results.json").write_text(json.dumps({
        "01_tensor": {"passed": True, "when": "2026-12-06T17:55:48"},
        "09_convolutions": {"passed": False, "when": "2026-12-06T18:02:11"}}))
    result = run_tito("status", cwd=course_copy, columns=width)
    assert result.returncode == 0, result.stdout + result.stderr
    from tito.course import load_course

    names = [module.name for module in load_course(course_copy).modules]
    _assert_whole_at(result.stdout, width, names + ["tinytorch/core/", "last test", "your work", "convolutions.py",
                                                    "passed 12-06 17:55", "failed 12-06 18:02", "parts to write",
                                                    "out of date"])
    text = " ".join(result.stdout.split())
    assert "next in 09_convolutions: write" in text and "in cell 'convolutions-" in text, result.stdout


@pytest.mark.slow
def test_a_release_at_80_columns_keeps_paths_and_cell_names_whole(tmp_path):
    from student_helpers import small_course

    from tito.course import load_course
    from tito.coursefolder import source_notebook
    from tito.notebook import graded_cells

    course = small_course(tmp_path / "course", ["01_tensor", "09_convolutions"])
    result = run_tito("nbgrader", "release", "01", "09", cwd=course, columns=80)
    assert result.returncode == 0, result.stdout + result.stderr
    cells = [cell.grade_id for name in ("01", "09")
             for cell in graded_cells(source_notebook(load_course(course).module(name)))]
    _assert_whole_at(result.stdout, 80, cells + ["course/release/01_tensor/tensor.ipynb",
                                                 "course/source/09_convolutions/convolutions.ipynb",
                                                 "course/release/<module>/<name>.ipynb", "by hand (written answer)"])
    paths = re.findall(r"course/[^\s│:]*", result.stdout)
    assert paths and all(path.endswith((".ipynb", "/")) for path in paths), f"a path broken across lines: {paths}"
