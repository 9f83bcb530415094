"""`tito nbgrader`: each step an instructor takes in nbgrader's course folder (see tito/coursefolder.py).

generate: lesson -> source notebook, checked by running the solution; release: source -> student version,
checked (nothing passes without work, every cell compiles, no leak); autograde: each submission in a fresh
kernel, one student at a time, each all or nothing; feedback: an HTML page per student.
"""
from __future__ import annotations

import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

from .course import Course, Module
from .coursefolder import (CourseFolder, GradedCell, course_folder, grading_settings, graded_cells, metadata_problems,
                           notebook_name, source_notebook, write_atomically)
from .errors import TitoError
from .leaks import Leak, find_leaks, secret_lines
from .nbgrader_session import (Snapshot, all_or_nothing, failure_reason, nbgrader_session, one_line, quiet_warnings,
                               run_converter)

# A student id is a folder name, and nbgrader reads it as a file glob: no wildcards, spaces or slashes.
STUDENT_ID = re.compile(r"[A-Za-z0-9][\w.@-]*")

# ------------------------------------------------------------------------------------ generate / release

@dataclass
class Generated:
    module: Module
    path: Path
    cells: list[GradedCell]


@dataclass
class Released:
    module: Module
    source: Generated
    path: Path
    checked_files: int


def generate(course: Course, module: Module) -> Generated:
    """modules/<m>/<short>_dev.py -> source/<m>/<short>.ipynb, written only when every test passes on the solution."""
    folder = course_folder(course)
    notebook = source_notebook(module)
    problems = metadata_problems(notebook)
    if problems:
        raise TitoError(f"{module.dev_file.name} of {module.name} has bad nbgrader metadata: {'; '.join(problems)}")
    cells = graded_cells(notebook)
    if not any(cell.is_test for cell in cells):
        raise TitoError(f"{module.name} has no graded test cells (nbgrader metadata with \"grade\": true and points)")
    with tempfile.TemporaryDirectory(prefix="tito-generate-") as scratch:
        candidate = Path(scratch) / notebook_name(module)
        nbformat.write(notebook, candidate)
        with nbgrader_session(course, module, folder.log(module, "generate")) as (config, _log):
            from nbgrader.validator import Validator

            try:
                results = Validator(config=config).validate(str(candidate))
            except Exception as error:  # bad metadata, a dead kernel, ...: nbgrader raises many kinds
                raise TitoError(f"nbgrader could not run the solution of {module.name}: {one_line(error)}") from None
        failed = [f"{_grade_id_of(entry['source'], notebook)} ({_last_line(entry.get('raw_error', ''))})"
                  for entry in results.get("failed", [])]
        if failed:
            raise TitoError(f"the solution of {module.name} fails its own tests, so nothing was written: {'; '.join(failed)}")
        write_atomically(folder.source(module), candidate.read_bytes())
    return Generated(module, folder.source(module), cells)


def release(course: Course, module: Module) -> Released:
    """Generate the source, let nbgrader make the student version, and check it; on any failure undo it all.

    Checks: every code cell of the release compiles; nbgrader's validate in inverted mode finds no test
    that passes without work; no solution line reaches release/ (`check_no_leaks`).
    """
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.converters import GenerateAssignment
    from nbgrader.validator import Validator

    folder = course_folder(course)
    touched = [folder.source(module).parent, folder.release(module).parent, folder.gradebook, folder.gradebook_journal]
    with all_or_nothing(touched):
        generated = generate(course, module)
        with nbgrader_session(course, module, folder.log(module, "release")) as (config, log):
            directory = CourseDirectory(config=config)
            directory.assignment_id = module.name
            generator = GenerateAssignment(coursedir=directory, config=config)
            generator.force, generator.create_assignment = True, True
            succeeded, text = run_converter(generator, log)
            if not succeeded:
                raise TitoError(f"nbgrader could not release {module.name}: {failure_reason(text)}")
            released = nbformat.read(folder.release(module), as_version=4)
            problems = _syntax_errors(released)
            if "jupytext" in released.metadata:
                problems.append("it still carries jupytext metadata, which could pair it with a solution file")
            if problems:
                raise TitoError(f"the release of {module.name} is broken: {'; '.join(problems)}")
            try:
                results = Validator(config=config, invert=True).validate(str(folder.release(module)))
            except Exception as error:
                raise TitoError(f"nbgrader could not run the release of {module.name}: {one_line(error)}") from None
        passing = [_grade_id_of(entry["source"], released) for entry in results.get("passed", [])]
        if passing or results.get("changed") or results.get("type_changed"):
            raise TitoError(f"in the release of {module.name}, tests pass with no work done, so a student would get points "
                            f"for nothing: {', '.join(passing) or 'checksums changed'}; fix the lesson's tests")
        leaks = check_no_leaks(course)
        if leaks:
            raise TitoError(f"the release would leak solutions ({len(leaks)} lines), e.g. {leaks[0]}")
    files = sum(1 for path in (folder.root / "release").rglob("*") if path.is_file())
    return Released(module, generated, folder.release(module), files)


def check_no_leaks(course: Course) -> list[Leak]:
    """Every solution line of any generated source that appears in any file under release/.

    Every module's solutions are checked against every release, earlier or later: a student workspace
    hands out all the releases at once.
    """
    folder = course_folder(course)
    settings = grading_settings(course)
    secrets: dict[str, str] = {}
    for source in sorted((folder.root / "source").glob("*/*.ipynb")):
        notebook = nbformat.read(source, as_version=4)
        secrets.update(secret_lines(notebook, source.parent.name, settings.delimiters))
    return find_leaks(secrets, folder.root / "release") if (folder.root / "release").is_dir() else []


# ------------------------------------------------------------------------------------------- autograde

@dataclass
class Grade:
    """One student's autograded submission of one module."""

    student: str
    graded: bool
    score: float = 0.0         # points from the autograded tests
    max_score: float = 0.0
    answer_points: float = 0.0  # points of written answers, graded by hand (nbgrader's formgrader)
    answers_to_grade: bool = False  # some written answer awaits a grader (an untouched one scores 0 at once)
    failed: list[str] = field(default_factory=list)  # tests that scored less than full points
    notes: list[str] = field(default_factory=list)   # restored test cells, cells cut off at the timeout
    error: str = ""
    seconds: float = 0.0


def submissions(course: Course, module: Module, students: list[str] | None = None) -> list[str]:
    """The students who handed in `module` (a folder submitted/<student>/<module>/), or just those named."""
    folder = course_folder(course)
    found = sorted(path.parent.name for path in (folder.root / "submitted").glob(f"*/{module.name}") if path.is_dir())
    for student in students or []:
        if student not in found:
            raise TitoError(f"no submission of {module.name} from student '{student}': expected "
                            f"{folder.show(folder.submitted(student, module))}", 2)
    return list(dict.fromkeys(students)) if students else found


def autograde(course: Course, module: Module, students: list[str] | None = None,
              on_result: Callable[[Grade], None] | None = None) -> list[Grade]:
    """Grade each submission of `module` in turn; a submission that cannot be graded changes nothing and the rest go on.

    Rerunning replaces a student's earlier autograded results (nbgrader's --force). The gradebook as it was
    before this run is kept in gradebook.db.bak.
    """
    folder = course_folder(course)
    require_release(course, module)
    chosen = submissions(course, module, students)
    shutil.copy2(folder.gradebook, folder.root / "gradebook.db.bak")
    results = []
    with nbgrader_session(course, module, folder.log(module, "autograde")) as (config, log):
        for student in chosen:
            result = _autograde_one(course, module, student, config, log)
            results.append(result)
            if on_result:
                on_result(result)
    return results


def require_release(course: Course, module: Module) -> None:
    folder = course_folder(course)
    if not (folder.release(module).exists() and folder.source(module).exists() and folder.gradebook.exists()):
        raise TitoError(f"{module.name} has not been released yet: run `tito nbgrader release {module.name}` first", 2)


def _autograde_one(course: Course, module: Module, student: str, config, log) -> Grade:
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory

    folder = course_folder(course)
    started = time.perf_counter()
    problem = _submission_problem(folder, module, student)
    if problem:
        return Grade(student, graded=False, error=problem)
    snapshot = Snapshot([folder.gradebook, folder.gradebook_journal, folder.autograded(student, module).parent])
    try:
        directory = CourseDirectory(config=config)
        directory.assignment_id, directory.student_id = module.name, student
        grader = Autograde(coursedir=directory, config=config)
        grader.force, grader.create_student = True, True
        log.write(f"\n===== {student} =====\n")
        succeeded, text = run_converter(grader, log)
        if not succeeded:
            snapshot.restore()
            return Grade(student, graded=False, seconds=time.perf_counter() - started,
                         error=f"grading failed ({failure_reason(text)}); the gradebook and earlier results are as they were "
                               f"(details in {folder.show(folder.log(module, 'autograde'))})")
        grade = read_grade(course, module, student)
        grade.notes = _restored_cells(text) + _timed_out_cells(folder.autograded(student, module))
        grade.seconds = time.perf_counter() - started
        return grade
    except BaseException:
        snapshot.restore()
        raise
    finally:
        snapshot.discard()


def _submission_problem(folder: CourseFolder, module: Module, student: str) -> str:
    """Why a submission cannot be graded, or "" when it can."""
    if not STUDENT_ID.fullmatch(student):
        return f"'{student}' is not usable as a student id: name the folder with letters, digits, '.', '_', '-' or '@'"
    expected = folder.submitted(student, module)
    if not expected.is_file():
        found = sorted(path.name for path in expected.parent.iterdir()) if expected.parent.is_dir() else []
        return f"no {expected.name} in {folder.show(expected.parent)} (found: {', '.join(found) or 'nothing'})"
    try:
        submitted = nbformat.read(expected, as_version=4)
    except Exception as error:  # nbformat raises many kinds for a file that is no notebook
        return f"{folder.show(expected)} is not a Jupyter notebook ({one_line(error)})"
    lost = _unrestorable_cells(nbformat.read(folder.source(module), as_version=4), submitted)
    if lost:
        return (f"{folder.show(expected)} lacks the cells {' and '.join(lost)} (deleted, or the notebook lost its "
                f"nbgrader metadata), so the test cannot be put back: have the student move their work into a "
                f"fresh copy of the release")
    return ""


def _unrestorable_cells(source: nbformat.NotebookNode, submitted: nbformat.NotebookNode) -> list[str]:
    """A deleted graded cell and the missing cell before it, when nbgrader cannot put the graded cell back.

    nbgrader re-inserts a deleted graded cell after the graded, solution or locked cell that precedes it in
    the source; when that cell is gone too (and is not graded, so not re-inserted itself), nbgrader crashes.
    """
    def ids(notebook) -> list[str]:
        return [info["grade_id"] for info in (cell.get("metadata", {}).get("nbgrader", {}) for cell in notebook.cells)
                if info.get("grade_id") and (info.get("grade") or info.get("solution") or info.get("locked"))]

    order, present = ids(source), set(ids(submitted))
    graded = {cell.grade_id for cell in graded_cells(source)}
    for previous, cell in zip(order, order[1:]):
        if cell in graded and cell not in present and previous not in present and previous not in graded:
            return [previous, cell]
    return []


def read_grade(course: Course, module: Module, student: str) -> Grade:
    """A student's autograded score on `module`, from the gradebook."""
    from nbgrader.api import Gradebook

    folder = course_folder(course)
    grade = Grade(student, graded=True)
    with quiet_warnings(), Gradebook(f"sqlite:///{folder.gradebook}", grading_settings(course).course_id) as gradebook:
        notebook = gradebook.find_submission_notebook(module.short, module.name, student)
        for entry in notebook.grades:
            if entry.cell.cell_type == "code":
                grade.score += entry.score
                grade.max_score += entry.max_score
                if entry.score < entry.max_score:
                    grade.failed.append(entry.name)
            else:
                grade.answer_points += entry.max_score
                grade.answers_to_grade |= entry.needs_manual_grade and entry.manual_score is None
    return grade


def _restored_cells(log_text: str) -> list[str]:
    notes = []
    for attribute, cell in re.findall(r"Attribute '(\w+)' for cell (\S+) has changed", log_text):
        notes.append(f"restored edited {cell}" if attribute == "checksum" else f"restored the {attribute} of {cell}")
    notes += [f"put back deleted {cell}" for cell in re.findall(r"Missing grade cell (\S+) encountered", log_text)]
    return notes


def _timed_out_cells(autograded: Path) -> list[str]:
    try:
        notebook = nbformat.read(autograded, as_version=4)
    except (OSError, ValueError):
        return []
    timed_out = []
    for index, cell in enumerate(notebook.cells, start=1):
        if any(output.get("ename") == "CellTimeoutError" for output in cell.get("outputs", [])):
            timed_out.append(cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index}")
    return [f"cut off at the timeout: {', '.join(timed_out)}"] if timed_out else []


# -------------------------------------------------------------------------------------------- feedback

@dataclass
class Feedback:
    student: str
    path: Path | None
    error: str = ""


def autograded_students(course: Course, module: Module) -> list[str]:
    folder = course_folder(course)
    pattern = f"*/{module.name}/{notebook_name(module)}"
    return sorted(path.parent.parent.name for path in (folder.root / "autograded").glob(pattern))


def feedback(course: Course, module: Module, students: list[str] | None = None,
             on_result: Callable[[Feedback], None] | None = None) -> list[Feedback]:
    """An HTML page per autograded student: their notebook with each test's result and the points."""
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    folder = course_folder(course)
    require_release(course, module)
    graded = autograded_students(course, module)
    for student in students or []:
        if student not in graded:
            raise TitoError(f"no autograded submission of {module.name} from student '{student}': run "
                            f"`tito nbgrader autograde {module.name} --student {student}` first", 2)
    results = []
    with nbgrader_session(course, module, folder.log(module, "feedback")) as (config, log):
        html = Config()
        html.HTMLExporter.template_name = "feedback"
        config.merge(html)
        for student in list(dict.fromkeys(students)) if students else graded:
            directory = CourseDirectory(config=config)
            directory.assignment_id, directory.student_id = module.name, student
            generator = GenerateFeedback(coursedir=directory, config=config)
            generator.force = True
            log.write(f"\n===== {student} =====\n")
            succeeded, text = run_converter(generator, log)
            result = (Feedback(student, folder.feedback(student, module)) if succeeded
                      else Feedback(student, None, f"no feedback: {failure_reason(text)}"))
            results.append(result)
            if on_result:
                on_result(result)
    return results


# ------------------------------------------------------------------------------------------- helpers

def _last_line(traceback_text: str) -> str:
    from nbconvert.filters import strip_ansi

    lines = [line.strip() for line in strip_ansi(traceback_text).splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


def _grade_id_of(source: str, notebook: nbformat.NotebookNode) -> str:
    """nbgrader's validator reports cells by their source; name them by grade id instead."""
    for cell in notebook.cells:
        if cell.source.strip() == source.strip():
            return cell.metadata.get("nbgrader", {}).get("grade_id", "a test cell")
    return "a test cell"


def _syntax_errors(notebook: nbformat.NotebookNode) -> list[str]:
    """Code cells that would not even compile in a Jupyter kernel (IPython syntax such as %magics allowed)."""
    from IPython.core.inputtransformer2 import TransformerManager

    transformer, problems = TransformerManager(), []
    for index, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code":
            continue
        try:
            compile(transformer.transform_cell(cell.source), f"cell {index}", "exec")
        except SyntaxError as error:
            name = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index}"
            problems.append(f"{name} line {error.lineno}: {type(error).__name__}: {error.msg}")
    return problems
