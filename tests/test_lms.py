"""`tito nbgrader report --format canvas|moodle|blackboard --roster`: the gradebook CSV each LMS imports.

Each file is read back by a checker written from the LMS's documented import rules (below), the way the LMS reads
it, and its grades are compared with tito's own scores of the same gradebook."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from conftest import copy_course, needs_sandbox, run_tito
from test_narrow import _class_gradebook
from tito.course import load_course
from tito.errors import TitoError
from tito.grading.lms import export_lms, read_roster
from tito.grading.scores import collect_scores

STUDENTS = ["ada", "bob", "=cy", "dan"]  # =cy: a student id a spreadsheet would run as a formula
ROSTER = """tito_id,last_name,first_name,email,username,sis_id,canvas_id,section
ada,Lovelace,Ada,ada@uni.example,alovelace,S-001,101,Lab A
bob,Boole,George,bob@uni.example,gboole,S-002,102,Lab B
=cy,=HYPERLINK("http://evil.example"),+Cy,cy@uni.example,@cy,S-003,103,-1
eve,Noether,Emmy,eve@uni.example,enoether,S-005,105,Lab A
"""
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture(scope="module")
def course_root(tmp_path_factory) -> Path:
    """A course whose gradebook holds four students over three modules with every kind of result; dan and the
    late hand-in student-0099 are not on the roster, eve is on it and was never graded."""
    root = copy_course(tmp_path_factory.mktemp("lms") / "course")
    _class_gradebook(root, [module.name for module in load_course(root).modules][:3], STUDENTS)
    (root / "roster.csv").write_text(ROSTER, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def scores(course_root) -> dict[tuple[str, str], object]:
    return {(row.student, row.module): row for row in collect_scores(load_course(course_root))}


def _read(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as sheet:
        return list(csv.reader(sheet))


def _number(cell: str, where: str) -> float:
    try:
        return float(cell)  # both LMSs read a point as the decimal mark, and nothing else in a number
    except ValueError:
        raise AssertionError(f"{where}: {cell!r} is not a number") from None


# ------------------------------------------------------------------- checkers from the documented import formats

def canvas_import(path: Path) -> tuple[dict[str, float], dict[str, dict[str, str]]]:
    """Canvas's gradebook import: the header's first five columns are Student, ID, SIS User ID, SIS Login ID and
    Section, then one column per assignment; a row whose first cell says "Points Possible" gives each assignment's
    points; every other row is a student, found by ID, SIS User ID, SIS Login ID or name; a grade is a number or
    blank. Returns the points possible and each student's grades, by SIS User ID."""
    header, possible_row, *rows = _read(path)
    assert header[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"], header
    assignments = header[5:]
    assert assignments and len(set(assignments)) == len(assignments), header
    assert "Points Possible" in possible_row[0] and possible_row[1:5] == ["", "", "", ""], possible_row
    possible = {name: _number(cell, f"points possible of {name}") for name, cell in zip(assignments, possible_row[5:])}
    assert len(possible_row) == len(header) and all(points > 0 for points in possible.values()), possible_row
    grades = {}
    for number, row in enumerate(rows, 3):
        assert len(row) == len(header), f"line {number}: {row}"
        assert row[1].isdigit() or row[2] or row[3], f"line {number}: Canvas cannot find this student: {row}"
        for name, cell in zip(assignments, row[5:]):
            assert cell == "" or 0 <= _number(cell, f"line {number}, {name}") <= possible[name], (number, name, cell)
        grades[row[2]] = dict(zip(assignments, row[5:]))
    return possible, grades


def moodle_import(path: Path, identity: str) -> dict[str, dict[str, str]]:
    """Moodle's CSV grade import: a header row, then a row per student; the instructor maps one column to a user
    field (ID number, email address or username) and each grade column to a grade item. A row with a blank identity
    is skipped, so none may have one; a grade is a number or blank. Returns each student's grades by `identity`."""
    header, *rows = _read(path)
    assert header[:5] == ["First name", "Last name", "ID number", "Email address", "Username"], header
    items = header[5:]
    assert items and identity in header, header
    grades = {}
    for number, row in enumerate(rows, 2):
        assert len(row) == len(header), f"line {number}: {row}"
        student = row[header.index(identity)]
        assert student and student not in grades, f"line {number}: no {identity}, or twice"
        for name, cell in zip(items, row[5:]):
            assert cell == "" or _number(cell, f"line {number}, {name}") >= 0, (number, name, cell)
        grades[student] = dict(zip(items, row[5:]))
    return grades


def _expected(scores, student: str, module: str) -> str:
    """tito's own total for a fully graded module, blank for everything else (see tito/grading/lms.py)."""
    score = scores.get((student, module))
    return "" if score is None or score.status != "graded" else f"{score.score:g}"


# ------------------------------------------------------------------------------------------------------ tests

def test_canvas_csv_imports_with_every_roster_student_and_tito_points(course_root, scores, tmp_path):
    roster = read_roster(course_root / "roster.csv", "canvas")
    rows = collect_scores(load_course(course_root))
    export = export_lms(rows, roster, "canvas", tmp_path / "canvas.csv")
    possible, grades = canvas_import(export.path)
    modules = list(dict.fromkeys(row.module for row in rows))
    assert list(possible) == modules, "one column per released module, in course order"
    for module in modules:
        row = scores[("ada", module)]
        assert possible[module] == pytest.approx(row.tests_max + row.answers_max), "tests and written answers"
    assert list(grades) == ["S-001", "S-002", "S-003", "S-005"], "one row per roster student, in roster order"
    for student, sis in [("ada", "S-001"), ("bob", "S-002"), ("=cy", "S-003"), ("eve", "S-005")]:
        assert grades[sis] == {module: _expected(scores, student, module) for module in modules}, student
    assert any(cell not in ("", "0") for row in grades.values() for cell in row.values()), "some points exported"
    assert grades["S-005"] == dict.fromkeys(modules, ""), "eve was never graded: blank, never 0"
    assert export.unknown == ["dan", "student-0099"] and export.missing == ["eve"]
    assert set(export.blank) == {"answers to grade", "no submission"}
    assert all(cell.split(" ")[0] in ("ada", "bob", "=cy", "dan") for cells in export.blank.values() for cell in cells)


def test_moodle_csv_imports_by_the_first_identity_the_roster_has(course_root, scores, tmp_path):
    roster = read_roster(course_root / "roster.csv", "moodle")
    export = export_lms(collect_scores(load_course(course_root)), roster, "moodle", tmp_path / "moodle.csv")
    grades = moodle_import(export.path, "Email address")
    assert list(grades) == ["ada@uni.example", "bob@uni.example", "cy@uni.example", "eve@uni.example"]
    for student in ("ada", "bob", "=cy"):
        assert grades[f"{student.strip('=')}@uni.example"] == {module: _expected(scores, student, module)
                                                               for module in export.modules}
    header = _read(export.path)[0]
    assert "Points Possible" not in [row[0] for row in _read(export.path)], "Moodle would read it as a student"
    assert header[5:] == export.modules


def test_moodle_by_id_number_needs_it_on_every_line(course_root, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("tito_id,sis_id\nada,S-001\nbob,\n", encoding="utf-8")
    with pytest.raises(TitoError) as error:
        read_roster(roster, "moodle")
    assert str(error.value) == f"{roster} line 3, column 2 (sis_id): empty"


def test_blackboard_csv_has_username_and_a_column_per_module(course_root, scores, tmp_path):
    roster = read_roster(course_root / "roster.csv", "blackboard")
    export = export_lms(collect_scores(load_course(course_root)), roster, "blackboard", tmp_path / "bb.csv")
    header, *rows = _read(export.path)
    assert header == ["Last Name", "First Name", "Username", *export.modules]
    assert [row[2] for row in rows] == ["alovelace", "gboole", "'@cy", "enoether"]
    assert export.path.read_text(encoding="utf-8").startswith('"Last Name","First Name"'), "every cell quoted"
    assert rows[0][3:] == [_expected(scores, "ada", module) for module in export.modules]


@pytest.mark.parametrize("lms, kept", [
    ("canvas", ["'=HYPERLINK(\"http://evil.example\"), +Cy", "'-1"]),
    ("moodle", ["'+Cy", "'=HYPERLINK(\"http://evil.example\")"]),
    ("blackboard", ["'=HYPERLINK(\"http://evil.example\")", "'+Cy", "'@cy"]),
])
def test_no_cell_starts_a_formula(course_root, tmp_path, lms, kept):
    export = export_lms(collect_scores(load_course(course_root)), read_roster(course_root / "roster.csv", lms), lms,
                        tmp_path / "out.csv")
    cells = [cell for row in _read(export.path) for cell in row]
    assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS)], cells
    assert set(kept) <= set(cells), "the text is kept, as text"


@pytest.mark.parametrize("text, message", [
    ("", "empty; its first line names the columns"),
    ("tito_id,emial\nada,a@x\n", "line 1, column 2 ('emial'): not a roster column"),
    ("tito_id,email,email\nada,a@x,b@x\n", "line 1, column 3 (email): already column 2"),
    ("email,sis_id\na@x,S1\n", "line 1: no tito_id column"),
    ("tito_id,section\nada,A\n", "line 1: Canvas finds students by canvas_id or sis_id or username, and the roster "
                                 "has none of these columns"),
    ("tito_id,sis_id\nada,S1\nbob,S2,extra\n", "line 3: 3 cells where the header has 2"),
    ("tito_id,sis_id\nada,S1\n,S2\n", "line 3, column 1 (tito_id): empty"),
    ("tito_id,sis_id\nada,S1\n\nada,S2\n", "line 4, column 1 (tito_id): 'ada' is already on line 2"),
    ("tito_id,sis_id,canvas_id\nada,S1,12a\n", "line 2, column 3 (canvas_id): '12a' is not a Canvas user id"),
    ('tito_id,sis_id\nada,"S1\n', "line 2: not CSV (unexpected end of data)"),
])
def test_a_malformed_roster_names_the_file_line_and_column(tmp_path, text, message):
    roster = tmp_path / "roster.csv"
    roster.write_text(text, encoding="utf-8")
    with pytest.raises(TitoError) as error:
        read_roster(roster, "canvas")
    assert str(error.value).startswith(f"{roster}") and message in str(error.value), str(error.value)
    assert "\n" not in str(error.value)


def test_a_roster_from_a_spreadsheet_reads(tmp_path):
    """Excel's "CSV UTF-8" starts with a byte-order mark, ends lines with CRLF and may add empty lines."""
    roster = tmp_path / "roster.csv"
    roster.write_bytes("\ufefftito_id,Last_Name,email\r\nada,Lovelace,ada@x\r\n,,\r\n".encode("utf-8"))
    student, = read_roster(roster, "moodle")
    assert (student.tito_id, student.last_name, student.email) == ("ada", "Lovelace", "ada@x")
    roster.write_bytes("tito_id,email\nad\xe9,a@x\n".encode("latin-1"))
    with pytest.raises(TitoError, match="not UTF-8 text"):
        read_roster(roster, "moodle")


def test_the_command_lists_who_is_left_out_or_blank_and_keeps_the_default_report(course_root):
    result = run_tito("nbgrader", "report", "--format", "canvas", "--roster", "roster.csv", cwd=course_root)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "not on the roster, left out of the file (2): dan, student-0099" in lines
    assert "on the roster, never graded by tito, every grade blank (1): eve" in lines
    assert any(line.startswith("blank, answers to grade (") for line in lines), result.stdout
    assert any(line.startswith("points possible: 01_") for line in lines), result.stdout
    assert lines[-1] == "Canvas: 4 students x 3 modules -> course/scores-canvas.csv"
    canvas_import(course_root / "course" / "scores-canvas.csv")
    plain = run_tito("nbgrader", "report", cwd=course_root)
    assert plain.returncode == 0 and "-> course/scores.csv" in plain.stdout, plain.stdout + plain.stderr
    assert _read(course_root / "course" / "scores.csv")[0][:2] == ["student", "module"], "the default is unchanged"


@pytest.mark.parametrize("args, message", [
    (["--format", "moodle"], "error: --format moodle needs --roster CSV"),
    (["--roster", "roster.csv"], "error: --roster goes with --format canvas, moodle or blackboard"),
    (["--format", "canvas", "--roster", "bad.csv"], "error: bad.csv line 1, column 2 ('name'): not a roster column"),
    (["--format", "canvas", "--roster", "absent.csv"], "error: absent.csv: no such roster file"),
])
def test_a_bad_roster_or_option_stops_with_one_line_and_writes_nothing(course_root, args, message):
    (course_root / "bad.csv").write_text("tito_id,name\nada,Ada\n", encoding="utf-8")
    before = {path: path.read_bytes() for path in (course_root / "course").glob("scores*.csv")}
    result = run_tito("nbgrader", "report", *args, cwd=course_root)
    assert result.returncode == 2 and result.stdout.startswith(message), result.stdout + result.stderr
    assert result.stdout.count("\n") == 1 and result.stderr == "", "one line, no traceback"
    assert {path: path.read_bytes() for path in (course_root / "course").glob("scores*")} == before


# ------------------------------------------------------------------------------- through a real autograded course

@pytest.mark.slow
@needs_sandbox
def test_a_really_graded_module_exports_full_marks_zero_and_blanks(tmp_path):
    """01_tensor released and autograded by tito: the solution (written answers then graded by hand) gets the
    points possible, the untouched release 0, a roster student who handed in nothing a blank; both LMS files
    import-validate."""
    import nbformat
    from nbgrader.api import Gradebook

    from tito.coursefolder import course_folder
    from tito.notebook import graded_cells

    root = copy_course(tmp_path / "course")
    settings = root / "settings.ini"
    settings.write_text(re.sub(r"modules =\n(    .*\n)+", "modules =\n    01_tensor\n", settings.read_text()))
    course = load_course(root)
    module, folder = course.module("01_tensor"), course_folder(course)
    assert run_tito("nbgrader", "release", "01_tensor", cwd=root).returncode == 0
    source = nbformat.read(folder.source(module), as_version=4)
    for student, notebook in [("solver", source), ("idle", nbformat.read(folder.release(module), as_version=4)),
                              ("stranger", source)]:
        folder.submitted(student, module).parent.mkdir(parents=True)
        nbformat.write(notebook, folder.submitted(student, module))
    graded = run_tito("nbgrader", "autograde", "01_tensor", cwd=root)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    answers = [cell for cell in graded_cells(source) if not cell.is_test]
    with Gradebook(f"sqlite:///{folder.gradebook}", course.course_id) as gradebook:
        for cell in answers:  # what the formgrader records when a grader gives full marks
            grade = gradebook.find_grade(cell.grade_id, module.short, module.name, "solver")
            grade.manual_score, grade.needs_manual_grade = cell.points, False
        gradebook.db.commit()
    full = sum(cell.points for cell in graded_cells(source))
    (root / "roster.csv").write_text("tito_id,last_name,first_name,email,sis_id\nsolver,Solver,Sol,sol@x,S1\n"
                                     "idle,Idle,Ida,ida@x,S2\nabsent,Absent,Abe,abe@x,S3\n", encoding="utf-8")
    for lms in ("canvas", "moodle"):
        result = run_tito("nbgrader", "report", "--format", lms, "--roster", "roster.csv", cwd=root)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "not on the roster, left out of the file (1): stranger" in result.stdout
        assert "on the roster, never graded by tito, every grade blank (1): absent" in result.stdout
    possible, grades = canvas_import(folder.root / "scores-canvas.csv")
    assert possible == {"01_tensor": pytest.approx(full)} and full > 0
    assert {sis: float(row["01_tensor"] or "nan") for sis, row in grades.items()} == \
        pytest.approx({"S1": full, "S2": 0.0, "S3": float("nan")}, nan_ok=True)
    assert moodle_import(folder.root / "scores-moodle.csv", "Email address") == \
        {"sol@x": {"01_tensor": grades["S1"]["01_tensor"]}, "ida@x": {"01_tensor": "0"}, "abe@x": {"01_tensor": ""}}
