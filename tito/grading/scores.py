"""The scores of every student on every released module, from nbgrader's gradebook, as rows and as a CSV file."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from ..course import Course
from ..coursefolder import course_folder, grading_settings, write_atomically
from ..errors import TitoError
from .session import quiet_warnings

COLUMNS = ["student", "module", "tests_score", "tests_max", "answers_score", "answers_max", "score", "max_score", "status"]


@dataclass(frozen=True)
class Score:
    """One student's result on one module. Tests are autograded; written answers are graded by hand."""

    student: str
    module: str
    tests_score: float
    tests_max: float
    answers_score: float | None  # None while a written answer awaits a grader: blank in the CSV, not 0
    answers_max: float
    status: str  # graded | answers to grade | not graded | no submission

    @property
    def score(self) -> float | None:
        return None if self.answers_score is None else self.tests_score + self.answers_score

    @property
    def max_score(self) -> float:
        return self.tests_max + self.answers_max

    def row(self) -> list[str]:
        numbers = [self.tests_score, self.tests_max, self.answers_score, self.answers_max, self.score, self.max_score]
        return [self.student, self.module, *("" if number is None else points(number) for number in numbers), self.status]


def points(value: float) -> str:
    return f"{value:g}"


def spreadsheet_safe(cell: str) -> str:
    """A cell a spreadsheet would run as a formula (=, +, -, @, or a tab or return before one) is kept as text;
    a lone "-" (no value) is none."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") and cell != "-" else cell


def collect_scores(course: Course) -> list[Score]:
    """A row per student and released module, in course order: every student known to the gradebook or with a
    folder in submitted/, and every module released (known to the gradebook)."""
    folder = course_folder(course)
    if not folder.gradebook.exists():
        raise TitoError(f"no gradebook at {folder.show(folder.gradebook)} yet: release a module and autograde it first", 2)
    order = {module.name: index for index, module in enumerate(course.modules)}
    rows = []
    with quiet_warnings(), Gradebook(f"sqlite:///{folder.gradebook}", grading_settings(course).course_id) as gradebook:
        modules = sorted((assignment.name for assignment in gradebook.assignments), key=lambda name: (order.get(name, 999), name))
        submitted = {path.name for path in (folder.root / "submitted").iterdir() if path.is_dir()} \
            if (folder.root / "submitted").is_dir() else set()
        students = sorted({student.id for student in gradebook.students} | submitted)
        for module in modules:
            assignment = gradebook.find_assignment(module)
            tests_max = sum(cell.max_score for notebook in assignment.notebooks for cell in notebook.grade_cells
                            if cell.cell_type == "code")
            answers_max = sum(cell.max_score for notebook in assignment.notebooks for cell in notebook.grade_cells
                              if cell.cell_type != "code")
            for student in students:
                try:
                    submission = gradebook.find_submission(module, student)
                except MissingEntry:
                    handed_in = (folder.root / "submitted" / student / module).is_dir()
                    status = "not graded" if handed_in else "no submission"
                    rows.append(Score(student, module, 0, tests_max, 0, answers_max, status))
                    continue
                tests = answers = 0.0
                pending = False
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        if grade.cell.cell_type == "code":
                            tests += grade.score
                        else:
                            answers += grade.score
                            # flagged: never graded, or changed since it was (tito keeps an unchanged hand grade)
                            pending = pending or grade.needs_manual_grade
                status = "answers to grade" if pending else "graded"
                rows.append(Score(student, module, tests, tests_max, None if pending else answers, answers_max, status))
    return rows


def write_csv(rows: list[Score], path: Path) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(row.row() for row in rows)
    write_atomically(path, buffer.getvalue().encode())
    return path
