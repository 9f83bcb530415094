"""Grades an LMS imports: tito's scores as the gradebook CSV that Canvas, Moodle or Blackboard reads, each student found
in the LMS through a roster the instructor writes (docs/instructor.md, "Moving grades to your LMS")."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..coursefolder import write_atomically
from ..errors import TitoError
from .scores import Score, points, spreadsheet_safe

ROSTER_COLUMNS = ("tito_id", "last_name", "first_name", "email", "username", "sis_id", "canvas_id", "section")


@dataclass(frozen=True)
class Student:
    """A line of the roster: the student's id in tito (their folder in submitted/) and who they are in the LMS."""

    tito_id: str
    last_name: str = ""
    first_name: str = ""
    email: str = ""
    username: str = ""
    sis_id: str = ""
    canvas_id: str = ""
    section: str = ""


Grid = Callable[[list[Student], list[str], list[str], Callable[[Student], list[str]]], list[list[str]]]


@dataclass(frozen=True)
class Lms:
    name: str
    identities: tuple[str, ...]  # roster columns the LMS finds a student by; the first the roster has must be filled
    grid: Grid  # (students, modules, points possible, a student's cells) -> the CSV's rows, header first


def _canvas(students, modules, possible, cells) -> list[list[str]]:
    """Canvas's gradebook import: five student columns (the last one Section), then one column per assignment; a
    "Points Possible" row gives a new assignment its points. A student is found by ID (Canvas's user id), SIS User
    ID, SIS Login ID or name, in that order; a column matches the assignment of that title or creates it."""
    return [["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *modules],
            ["Points Possible", "", "", "", "", *possible]] + \
           [[_sortable_name(student), student.canvas_id, student.sis_id, student.username, student.section,
             *cells(student)] for student in students]


def _moodle(students, modules, possible, cells) -> list[list[str]]:
    """Moodle's CSV grade import: the instructor maps one identity column to a user field (ID number, email address
    or username) and each grade column to a grade item; a points row would read as a student, so there is none."""
    return [["First name", "Last name", "ID number", "Email address", "Username", *modules]] + \
           [[student.first_name, student.last_name, student.sis_id, student.email, student.username, *cells(student)]
            for student in students]


def _blackboard(students, modules, possible, cells) -> list[list[str]]:
    """Blackboard's Grade Center upload: a student is found by Username; a column without a Grade Center id
    becomes a new column, whose points possible the instructor sets after the upload."""
    return [["Last Name", "First Name", "Username", *modules]] + \
           [[student.last_name, student.first_name, student.username, *cells(student)] for student in students]


LMS = {"canvas": Lms("Canvas", ("canvas_id", "sis_id", "username"), _canvas),
       "moodle": Lms("Moodle", ("email", "sis_id", "username"), _moodle),
       "blackboard": Lms("Blackboard", ("username",), _blackboard)}


def _sortable_name(student: Student) -> str:
    """Canvas's sortable name, "Last, First", which it matches when no id does."""
    return ", ".join(name for name in (student.last_name, student.first_name) if name)


# ------------------------------------------------------------------------------------------------------ roster

def read_roster(path: Path, lms: str) -> list[Student]:
    """The roster's students, in its order, each with the identity `lms` finds them by; a malformed roster raises a
    one-line TitoError naming the file, the line and the column."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's "CSV UTF-8" starts with a byte-order mark
    except FileNotFoundError:
        raise TitoError(f"{path}: no such roster file", 2) from None
    except UnicodeDecodeError as error:
        raise TitoError(f"{path}: not UTF-8 text (byte {error.start}); save the roster as CSV UTF-8", 2) from None
    lines = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip().lower() for name in next(lines, [])]
        columns = _roster_columns(path, header, LMS[lms])
        students, seen = [], {}
        for line in lines:
            if any(cell.strip() for cell in line):  # a spreadsheet's trailing ",,," lines are not students
                students.append(_roster_student(path, lines.line_num, header, line, columns, seen))
    except csv.Error as error:
        raise TitoError(f"{path} line {lines.line_num}: not CSV ({error})", 2) from None
    return students


def _roster_columns(path: Path, header: list[str], lms: Lms) -> tuple[str, ...]:
    """Check the header; return the columns every line must fill: tito_id and the identity the LMS finds students by."""
    if not header:
        raise TitoError(f"{path}: empty; its first line names the columns: {', '.join(ROSTER_COLUMNS)}", 2)
    for number, name in enumerate(header, 1):
        if name not in ROSTER_COLUMNS:
            raise TitoError(f"{path} line 1, column {number} ({name!r}): not a roster column; the columns are "
                            f"{', '.join(ROSTER_COLUMNS)}", 2)
        if header.index(name) != number - 1:
            raise TitoError(f"{path} line 1, column {number} ({name}): already column {header.index(name) + 1}", 2)
    if "tito_id" not in header:
        raise TitoError(f"{path} line 1: no tito_id column (each student's id in tito: their folder in submitted/)", 2)
    identity = next((name for name in lms.identities if name in header), None)
    if identity is None:
        raise TitoError(f"{path} line 1: {lms.name} finds students by {' or '.join(lms.identities)}, and the roster "
                        f"has none of these columns", 2)
    return "tito_id", identity


def _roster_student(path: Path, number: int, header: list[str], line: list[str], required: tuple[str, ...],
                    seen: dict[str, int]) -> Student:
    if len(line) != len(header):
        raise TitoError(f"{path} line {number}: {len(line)} cells where the header has {len(header)}", 2)
    values = {name: cell.strip() for name, cell in zip(header, line)}
    for name in required:
        if not values[name]:
            raise TitoError(f"{path} line {number}, column {header.index(name) + 1} ({name}): empty", 2)
    student = Student(**values)
    if student.tito_id in seen:
        raise TitoError(f"{path} line {number}, column {header.index('tito_id') + 1} (tito_id): {student.tito_id!r} "
                        f"is already on line {seen[student.tito_id]}", 2)
    seen[student.tito_id] = number
    if student.canvas_id and not student.canvas_id.isdigit():
        raise TitoError(f"{path} line {number}, column {header.index('canvas_id') + 1} (canvas_id): "
                        f"{student.canvas_id!r} is not a Canvas user id (digits only)", 2)
    return student


# ------------------------------------------------------------------------------------------------------ export

@dataclass
class Export:
    """What an LMS file holds, and what it leaves out or blank: each listed for the instructor, never silent."""

    path: Path
    lms: str
    students: int
    modules: list[str]
    possible: list[str]  # each module's points possible, tests and written answers
    unknown: list[str]  # graded in tito, not on the roster: not in the file (the LMS could not find them)
    missing: list[str]  # on the roster, unknown to tito's gradebook: every cell blank
    blank: dict[str, list[str]] = field(default_factory=dict)  # status -> "student module" cells left blank


def export_lms(rows: list[Score], roster: list[Student], lms: str, path: Path) -> Export:
    """Write the gradebook CSV `lms` imports: a row per roster student, a column per released module holding the
    student's points (tests and written answers) where every part is graded, blank otherwise."""
    modules = list(dict.fromkeys(row.module for row in rows))
    possible = {row.module: points(row.max_score) for row in rows}
    scores = {(row.student, row.module): row for row in rows}
    on_roster = {student.tito_id for student in roster}
    graded_students = list(dict.fromkeys(row.student for row in rows))
    export = Export(path, LMS[lms].name, len(roster), modules, [possible[module] for module in modules],
                    unknown=[student for student in graded_students if student not in on_roster],
                    missing=[student.tito_id for student in roster if student.tito_id not in graded_students])

    def cells(student: Student) -> list[str]:
        return [_cell(scores.get((student.tito_id, module)), export) for module in modules]

    grid = LMS[lms].grid(roster, modules, export.possible, cells)
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL).writerows([[spreadsheet_safe(cell) for cell in row] for row in grid])
    write_atomically(path, buffer.getvalue().encode())
    return export


def _cell(score: Score | None, export: Export) -> str:
    """A module's points once all of it is graded. Anything else is blank, never 0: Canvas and Moodle read a blank
    as "no grade", so the LMS's own missing and late rules still apply, where a 0 would look like a grade earned."""
    if score is None:
        return ""  # the student is listed among the missing
    if score.status != "graded":
        export.blank.setdefault(score.status, []).append(f"{score.student} {score.module}")
        return ""
    return points(score.score)
