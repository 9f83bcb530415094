"""autograde: each submission of a module run in a sandbox (tito/grading/sandbox.py) that sees only the module's
prerequisites, several at once, and recorded in nbgrader's gradebook by this process alone; a submission that
cannot run scores zero with the reason, and written answers already graded by hand keep their points.
"""
from __future__ import annotations

import copy
import io
import json
import logging
import os
import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat
from nbgrader.api import Gradebook
from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor

from ..course import Course, Module
from ..coursefolder import CourseFolder, course_folder, grading_settings, require_release
from ..errors import TitoError
from ..leaks import normalized_secrets, shows_secret
from ..nbgrader_steps import failure_reason, run_converter
from ..notebook import ANSWER, cell_role, grade_id, nbgrader_metadata
from .outputs import safe_notebook
from .release import all_solution_lines
from .sandbox import Limits, Run, is_test, make_grader_folder, require_bwrap, run_notebook
from .session import Snapshot, nbgrader_session, one_line, quiet_warnings
from .submission import read_submission

@dataclass
class Grade:
    """One student's autograded submission of one module."""

    student: str
    graded: bool
    score: float = 0.0         # points from the autograded tests
    max_score: float = 0.0
    answer_points: float = 0.0  # points of written answers, graded by hand (nbgrader's formgrader)
    answers_to_grade: bool = False  # some written answer awaits a grader (an untouched one scores 0 at once)
    answers: int = 0             # written answers in the module
    answers_pending: int = 0     # of them, awaiting a grader
    answers_unanswered: int = 0  # of them, left as released ("YOUR ANSWER HERE"): nbgrader scored them 0
    answers_score: float = 0.0   # points given by hand so far
    failed: list[str] = field(default_factory=list)  # tests that scored less than full points
    notes: list[str] = field(default_factory=list)   # why points were lost to a limit, restored cells, cut output
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
              on_result: Callable[[Grade], None] | None = None, jobs: int = 1, sandboxed: bool = True,
              solutions=None, unprivileged: bool = False) -> list[Grade]:
    """Grade each submission of `module`: `jobs` sandboxed kernels run them side by side, and this process alone
    writes each result to the gradebook, one at a time, as it comes in.

    Every notebook gets a score and, where it lost points to a limit, a dead kernel or a refusal, a reason; a
    file that is no notebook changes nothing. Rerunning replaces a student's earlier results (nbgrader's
    --force). The gradebook as it was before this run is kept in gradebook.db.bak. Output showing a line of
    `solutions` (anything answering `normalized_line in solutions`; by default every lesson's, from the course
    folder's sources) is cut. `unprivileged` (with `sandboxed` False): each kernel runs as an unprivileged user
    of its own with the same limits, where bubblewrap cannot run (sandbox.run_notebook).
    """
    folder = course_folder(course)
    require_release(course, module)
    require_cores(jobs)
    if sandboxed:
        require_bwrap()
    chosen = submissions(course, module, students)
    shutil.copy2(folder.gradebook, folder.root / "gradebook.db.bak")
    limits = grading_limits(course)
    if solutions is None:
        solutions = normalized_secrets(all_solution_lines(course))
    source = nbformat.read(folder.source(module), as_version=4)
    results = {}
    with tempfile.TemporaryDirectory(prefix="tito-grader-") as scratch, \
            nbgrader_session(course, module, folder.log(module, "autograde")) as (config, log), \
            ThreadPoolExecutor(max(1, jobs)) as pool:
        grader = make_grader_folder(Path(scratch) / "grader", _reference_files(course, module))
        tests = write_tests(source, Path(scratch) / "tests.json")

        def run(notebook: nbformat.NotebookNode) -> Run:  # each run leases a Unix user of its own (sandbox_user)
            return run_notebook(notebook, grader, tests, limits, sandboxed, unprivileged)

        running = {}
        for student in chosen:
            prepared = _prepare(course, module, student, config, source)
            if isinstance(prepared, Grade):
                results[student] = _report(prepared, on_result)
            else:
                running[pool.submit(run, prepared.notebook)] = prepared
        for future in as_completed(running):
            prepared = running[future]
            try:
                grade = _record(course, module, prepared, future.result(), config, log, solutions)
            except Exception as error:  # one submission's trouble must not stop the class's grading
                grade = Grade(prepared.student, graded=False, error=f"grading failed ({one_line(error)}); the "
                                                                    f"gradebook and earlier results are as they were")
            results[prepared.student] = _report(grade, on_result)
    return [results[student] for student in chosen]


def _report(grade: Grade, on_result: Callable[[Grade], None] | None) -> Grade:
    if on_result:
        on_result(grade)
    return grade


def require_cores(jobs: int) -> None:
    """Refuse more parallel kernels than cores. The cell limits are wall-clock time, which is what stops a
    submission that sleeps or waits (CPU time would not); with more kernels than cores each would get less
    than a core, so an honest cell could pass its limit and lose points it earned."""
    cores = len(os.sched_getaffinity(0))
    if jobs > cores:
        raise TitoError(f"--jobs {jobs} is more than this machine's {cores} cores: each kernel's time limit is "
                        f"wall-clock time, so honest work could run out of it; use --jobs {cores} or fewer", 2)


def grading_limits(course: Course) -> Limits:
    settings = grading_settings(course)
    return Limits(cell_seconds=settings.timeout, notebook_seconds=settings.notebook_seconds,
                  memory_mb=settings.memory_mb, output_kb=settings.output_kb, scratch_mb=settings.scratch_mb)


def _reference_files(course: Course, module: Module) -> dict[str, Path]:
    """The reference package a grading kernel may import: every file of the course's package but those of
    `module` and of the modules the course teaches after it."""
    withheld = set()
    for later in course.modules[course.modules.index(module):]:
        try:
            withheld.add(later.package_file(course.root))
        except TitoError:  # a lesson that exports nothing
            pass
    return {str(path.relative_to(course.root)): path for path in sorted(course.package_dir.rglob("*.py"))
            if "__pycache__" not in path.parts and path not in withheld}


def write_tests(source: nbformat.NotebookNode, path: Path) -> Path:
    """The lesson's tests, for the judge: grade id -> the source of each test cell (hidden tests included),
    from the course's own copy of the lesson, whatever a submission holds. Kept outside every sandbox."""
    tests = {grade_id(cell): cell.source for cell in source.cells if is_test(cell)}
    path.write_text(json.dumps(tests), encoding="utf-8")
    return path


@dataclass
class _Prepared:
    student: str
    notebook: nbformat.NotebookNode  # sanitized as nbgrader does it: outputs cleared, locked cells restored
    notes: list[str]
    started: float


def _prepare(course: Course, module: Module, student: str, config,
             lesson: nbformat.NotebookNode) -> _Prepared | Grade:
    """Read a submission safely and sanitize it as nbgrader will; or, when it cannot be run, its Grade."""
    folder = course_folder(course)
    started = time.perf_counter()
    read = read_submission(folder, module, student, lesson)
    if read.refusal:
        if read.notebook is None and not read.score_zero:
            return Grade(student, graded=False, error=read.refusal)
        grade = _record_zero(course, module, student)
        grade.notes = [read.refusal]
        return grade
    try:
        notebook, restored = _sanitized(read.notebook, module, student, config, folder)
    except Exception as error:  # nbgrader refuses cells it cannot make sense of
        grade = _record_zero(course, module, student)
        grade.notes = [f"nbgrader could not read its cells ({one_line(error)}): have the student move their work "
                       f"into a fresh copy of the release"]
        return grade
    return _Prepared(student, notebook, read.notes + restored, started)


def _sanitized(notebook: nbformat.NotebookNode, module: Module, student: str, config,
               folder: CourseFolder) -> tuple[nbformat.NotebookNode, list[str]]:
    """The submission after nbgrader's own sanitizing steps (those its Autograde runs before executing: clear
    outputs, restore locked and graded cells from the gradebook), and notes on the cells they restored."""
    resources = {"nbgrader": {"notebook": module.short, "assignment": module.name, "student": student,
                              "db_url": f"sqlite:///{folder.gradebook}", "course_id": config.CourseDirectory.course_id}}
    said = io.StringIO()
    handler = logging.StreamHandler(said)
    with quiet_warnings():
        for step_class in Autograde.sanitize_preprocessors.default():
            step = step_class(config=config)
            step.log.addHandler(handler)
            try:
                notebook, resources = step.preprocess(notebook, resources)
            finally:
                step.log.removeHandler(handler)
    return notebook, _restored_cells(said.getvalue())


def _record(course: Course, module: Module, prepared: _Prepared, run: Run, config, log,
            solutions: dict[str, str]) -> Grade:
    """Write one run's results through nbgrader's Autograde (its Execute step replaced by the run), in this process.

    A failure puts the gradebook and the student's earlier results back as they were.
    """
    folder = course_folder(course)
    problem = _malformed(run, prepared.notebook)
    if problem:  # nothing of it reaches the gradebook: the submission scores 0, with the reason
        grade = _record_zero(course, module, prepared.student)
        grade.notes = [f"its results could not be used ({problem})"]
        return grade
    notes = prepared.notes + mark_test_results(run, solutions) + safe_notebook(run.notebook)[1]
    _without_hidden_tests(run.notebook, config)
    graded_answers = _answers(folder.autograded(prepared.student, module))  # as the last autograde saw them
    snapshot = Snapshot([folder.gradebook, folder.gradebook_journal, folder.autograded(prepared.student, module).parent])
    try:
        directory = CourseDirectory(config=config)
        directory.assignment_id, directory.student_id = module.name, prepared.student
        grader = Autograde(coursedir=directory, config=config)
        grader.force, grader.create_student = True, True
        # nbgrader's steps, each handed tito's notebook: sanitized (phase one) and run in the sandbox (phase two).
        grader.sanitize_preprocessors = [handed_over(prepared.notebook)]
        # CheckCellMetadata is left out too: it checked these very cells' metadata in phase one (the sandbox
        # returns outputs only), and nbgrader's check re-validates its JSON schema on every cell.
        grader.autograde_preprocessors = [handed_over(run.notebook)] + [
            step for step in grader.autograde_preprocessors if step.__name__ not in ("Execute", "CheckCellMetadata")]
        log.write(f"\n===== {prepared.student} =====\n")
        succeeded, text = run_converter(grader, log)
        if not succeeded:
            snapshot.restore()
            return Grade(prepared.student, graded=False, seconds=time.perf_counter() - prepared.started,
                         error=f"grading failed ({failure_reason(text)}); the gradebook and earlier results are as "
                               f"they were (details in {folder.show(folder.log(module, 'autograde'))})")
        keep_hand_grades(course, module, prepared.student, graded_answers, _answers_of(run.notebook))
        grade = read_grade(course, module, prepared.student)
        grade.notes = ([run.stopped] if run.stopped else []) + notes
        grade.seconds = time.perf_counter() - prepared.started
        return grade
    except BaseException:
        snapshot.restore()
        raise
    finally:
        snapshot.discard()


def mark_test_results(run: Run, solutions: dict[str, str]) -> list[str]:
    """Make a run's outputs say to nbgrader exactly what the judge decided; notes on what was changed.

    nbgrader awards a test's points when its cell shows no error: so each test the judge did not see pass
    gets an error output with the reason (the judge's own error, or why the test did not run), stderr becomes ordinary output (a debug print costs nothing), a test's
    returned value (nbgrader's partial credit) is dropped, any output showing a solution line of any module
    (`solutions`: `normalized_secrets`) is cut, and so is printed text past a short length.
    """
    notes = []
    for index, cell in enumerate(run.notebook.cells, start=1):
        if cell.cell_type != "code":
            continue
        name = grade_id(cell) or f"cell {index}"
        if _cut_solution_lines(cell, solutions):
            notes.append(f"cut the output of {name}: it showed a line of a lesson's solution")
        if _shorten_printed_text(cell):
            notes.append(f"shortened the printed text of {name} to {SHOWN_CHARACTERS} characters")
        if not is_test(cell):
            continue
        cell.outputs = [_as_stdout(output) for output in cell.outputs if output.output_type != "execute_result"]
        if not run.completed.get(grade_id(cell)) and not any(o.output_type == "error" for o in cell.outputs):
            reason = run.stopped or "the test did not run to its last line"
            cell.outputs.append(nbformat.v4.new_output("error", ename="TestNotCompleted", evalue=reason,
                                                       traceback=[f"TestNotCompleted: {reason}"]))
    return notes


def _without_hidden_tests(notebook: nbformat.NotebookNode, config) -> None:
    """The tests as the release shows them: hidden test code (module 06's reference checker) ran in the judge
    and stays with the grader, off the autograded notebook and so off the feedback page."""
    clear = ClearHiddenTests(config=config)
    for index, cell in enumerate(notebook.cells):
        if is_test(cell):
            clear.preprocess_cell(cell, {}, index)


def _as_stdout(output):
    if output.output_type == "stream" and output.name == "stderr":
        output.name = "stdout"
    return output


SHOWN_CHARACTERS = 4000  # of printed text per cell: feedback shows a short printout, not whatever was printed


def _shorten_printed_text(cell) -> bool:
    """Cut a cell's printed text (its stream outputs) after SHOWN_CHARACTERS, saying so; whether it was cut."""
    room, cut = SHOWN_CHARACTERS, 0
    for output in cell.outputs:
        if output.output_type == "stream":
            text = _text(output.text)
            cut += max(0, len(text) - room)
            output.text = text[:max(room, 0)]
            room -= len(text)
    if cut:
        cell.outputs = [output for output in cell.outputs if output.output_type != "stream" or output.text]
        cell.outputs.append(nbformat.v4.new_output(
            "stream", name="stdout", text=f"\n[tito: {cut} more characters of printed text were cut: feedback "
                                          f"shows {SHOWN_CHARACTERS} characters of a cell's printout]\n"))
    return bool(cut)


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _cut_solution_lines(cell, solutions: dict[str, str]) -> bool:
    """Replace each output that shows a solution line (in any normalized form) by a note saying so; whether any was."""
    cut = False
    for position, output in enumerate(cell.outputs):
        texts = [output.get("text", ""), output.get("evalue", ""), *output.get("traceback", []),
                 *output.get("data", {}).values()]
        if any(shows_secret(_text(text), solutions) for text in texts if isinstance(text, (str, list))):
            cell.outputs[position] = nbformat.v4.new_output(
                "stream", name="stdout", text="[tito: this output showed a line of a lesson's solution and was cut]\n")
            cut = True
    return cut


def handed_over(notebook: nbformat.NotebookNode):
    """An nbgrader preprocessor that replaces the notebook nbgrader read by `notebook`: the submission as tito
    read it safely and sanitized, or as the sandbox ran it (standing in for nbgrader's Execute step)."""
    class HandedOver(NbGraderPreprocessor):
        def preprocess(self, _, resources):
            return copy.deepcopy(notebook), resources

    step = HandedOver()
    step.enabled = True
    return step


def _malformed(run: Run, sanitized: nbformat.NotebookNode) -> str:
    """Why a run's notebook cannot be what tito sent into the sandbox, or "" when it can."""
    try:
        nbformat.validate(run.notebook)
    except nbformat.ValidationError as error:
        return f"not a valid notebook: {str(error).splitlines()[0][:200]}"
    cells = lambda notebook: [(cell.cell_type, cell.source, nbgrader_metadata(cell)) for cell in notebook.cells]
    if cells(run.notebook) != cells(sanitized):
        return "its cells are not the ones that were run"
    return ""


def _answers(path: Path) -> dict[str, str]:
    """grade id -> text of each written answer (a graded cell that is no test) of a notebook; {} when absent."""
    try:
        return _answers_of(nbformat.read(path, as_version=4))
    except (OSError, ValueError):  # no earlier autograde, or a file nbformat cannot read
        return {}


def _answers_of(notebook: nbformat.NotebookNode) -> dict[str, str]:
    return {grade_id(cell) or "": cell.source for cell in notebook.cells if cell_role(cell) == ANSWER}


def keep_hand_grades(course: Course, module: Module, student: str, before: dict[str, str], now: dict[str, str]) -> None:
    """nbgrader flags every hand-graded answer for review again on each autograde; unflag those whose text is the
    one the grader saw (the last autograded copy), so that only answers changed since then await a grader."""
    folder = course_folder(course)
    with quiet_warnings(), Gradebook(f"sqlite:///{folder.gradebook}", grading_settings(course).course_id) as gradebook:
        notebook = gradebook.find_submission_notebook(module.short, module.name, student)
        for entry in notebook.grades:
            unchanged = entry.name in before and before[entry.name] == now.get(entry.name)
            if entry.manual_score is not None and entry.needs_manual_grade and unchanged:
                entry.needs_manual_grade = False
        gradebook.db.commit()


def _record_zero(course: Course, module: Module, student: str) -> Grade:
    """Every autograded cell of `student`'s `module` scored 0, as nbgrader does for a notebook never handed in;
    earlier autograded results of it are removed, so no feedback shows work that was not graded."""
    folder = course_folder(course)
    with quiet_warnings(), Gradebook(f"sqlite:///{folder.gradebook}", grading_settings(course).course_id) as gradebook:
        gradebook.update_or_create_student(student)
        submission = gradebook.update_or_create_submission(module.name, student)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                grade.auto_score, grade.needs_manual_grade = 0, False
        gradebook.db.commit()
    shutil.rmtree(folder.autograded(student, module).parent, ignore_errors=True)
    return read_grade(course, module, student)


def read_grade(course: Course, module: Module, student: str) -> Grade:
    """A student's autograded score on `module`, from the gradebook."""
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
                grade.answers += 1
                grade.answers_to_grade |= entry.needs_manual_grade  # never graded, or changed since it was
                grade.answers_pending += entry.needs_manual_grade
                grade.answers_unanswered += not entry.needs_manual_grade and entry.manual_score is None
                grade.answers_score += entry.manual_score or 0
    return grade


def _restored_cells(log_text: str) -> list[str]:
    notes = []
    for attribute, cell in re.findall(r"Attribute '(\w+)' for cell (\S+) has changed", log_text):
        notes.append(f"restored edited {cell}" if attribute == "checksum" else f"restored the {attribute} of {cell}")
    notes += [f"put back deleted {cell}" for cell in re.findall(r"Missing grade cell (\S+) encountered", log_text)]
    return list(dict.fromkeys(notes))


# -------------------------------------------------------------------------------------------- feedback


# ------------------------------------------------------------------------------------------- helpers


