"""`tito nbgrader`: each step an instructor takes in nbgrader's course folder (see tito/coursefolder.py).

generate: lesson -> source notebook, checked by running the solution; release: source -> student version,
checked (nothing passes without work, every cell compiles, no leak); autograde: each submission run in a
sandbox (tito/sandbox.py) that sees only the module's prerequisites, several at once, recorded in nbgrader's
gradebook by this process alone; feedback: an HTML page per student.
"""
from __future__ import annotations

import copy
import io
import logging
import os
import queue
import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

from .course import Course, Module
from .coursefolder import (CourseFolder, GradedCell, course_folder, grading_settings, graded_cells, metadata_problems,
                           notebook_name, source_notebook, write_atomically)
from .errors import TitoError
from .leaks import Leak, find_leaks, normalized_secrets, secret_lines, shows_secret
from .nbgrader_session import (Snapshot, all_or_nothing, failure_reason, nbgrader_session, one_line, quiet_warnings,
                               run_converter)
from .outputs import safe_notebook
from .sandbox import END_MARKER, VERDICT_MIME, Limits, Run, make_grader_folder, require_bwrap, run_notebook
from .submission import read_submission, suspicious_code

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
    release_folder = folder.root / "release"
    return find_leaks(all_solution_lines(course), release_folder) if release_folder.is_dir() else []


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
    answers: int = 0             # written answers in the module
    answers_pending: int = 0     # of them, awaiting a grader
    answers_unanswered: int = 0  # of them, left as released ("YOUR ANSWER HERE"): nbgrader scored them 0
    answers_score: float = 0.0   # points given by hand so far
    failed: list[str] = field(default_factory=list)  # tests that scored less than full points
    notes: list[str] = field(default_factory=list)   # why points were lost to a limit, restored cells, cut output
    flags: list[str] = field(default_factory=list)   # solution code that reaches for the grading machinery
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
              on_result: Callable[[Grade], None] | None = None, jobs: int = 1, sandboxed: bool = True) -> list[Grade]:
    """Grade each submission of `module`: `jobs` sandboxed kernels run them side by side, and this process alone
    writes each result to the gradebook, one at a time, as it comes in.

    Every notebook gets a score and, where it lost points to a limit, a dead kernel or a refusal, a reason; a
    file that is no notebook changes nothing. Rerunning replaces a student's earlier results (nbgrader's
    --force). The gradebook as it was before this run is kept in gradebook.db.bak.
    """
    folder = course_folder(course)
    require_release(course, module)
    require_cores(jobs)
    if sandboxed:
        require_bwrap()
    chosen = submissions(course, module, students)
    shutil.copy2(folder.gradebook, folder.root / "gradebook.db.bak")
    limits = grading_limits(course)
    solutions = normalized_secrets(all_solution_lines(course))
    source = nbformat.read(folder.source(module), as_version=4)
    released = nbformat.read(folder.release(module), as_version=4)
    results = {}
    with tempfile.TemporaryDirectory(prefix="tito-grader-") as scratch, \
            nbgrader_session(course, module, folder.log(module, "autograde")) as (config, log), \
            ThreadPoolExecutor(max(1, jobs)) as pool:
        grader = make_grader_folder(Path(scratch) / "grader", _reference_files(course, module), _locked_sources(source))
        reference_modules = _reference_modules(course, module)
        slots: queue.Queue[int] = queue.Queue()  # each running sandbox has its own slot (and so its own user)
        for slot in range(max(1, jobs)):
            slots.put(slot)

        def run(notebook: nbformat.NotebookNode) -> Run:
            slot = slots.get()
            try:
                return run_notebook(notebook, grader, limits, slot, sandboxed, reference_modules)
            finally:
                slots.put(slot)

        running = {}
        for student in chosen:
            prepared = _prepare(course, module, student, config, source, released)
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


def require_release(course: Course, module: Module) -> None:
    folder = course_folder(course)
    if not (folder.release(module).exists() and folder.source(module).exists() and folder.gradebook.exists()):
        raise TitoError(f"{module.name} has not been released yet: run `tito nbgrader release {module.name}` first", 2)


def grading_limits(course: Course) -> Limits:
    settings = grading_settings(course)
    return Limits(cell_seconds=settings.timeout, notebook_seconds=settings.notebook_seconds,
                  memory_mb=settings.memory_mb, output_kb=settings.output_kb, scratch_mb=settings.scratch_mb)


def all_solution_lines(course: Course) -> dict[str, str]:
    """Every module's secret lines (see tito/leaks.py), from the generated sources in the course folder."""
    folder = course_folder(course)
    settings = grading_settings(course)
    secrets: dict[str, str] = {}
    for source in sorted((folder.root / "source").glob("*/*.ipynb")):
        notebook = nbformat.read(source, as_version=4)
        secrets.update(secret_lines(notebook, source.parent.name, settings.delimiters))
    return secrets


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


def _reference_modules(course: Course, module: Module) -> list[str]:
    """The reference modules, as dotted names, that a grading kernel imports before any student code runs."""
    return [".".join(Path(relative).with_suffix("").parts) for relative in _reference_files(course, module)
            if not relative.endswith("__init__.py")]


def _locked_sources(source: nbformat.NotebookNode) -> dict[str, str]:
    """The text of every locked code cell of the lesson: what the grading kernel runs for it, whatever a
    submission holds."""
    return {cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in source.cells
            if cell.cell_type == "code" and cell.get("metadata", {}).get("nbgrader", {}).get("locked")}


@dataclass
class _Prepared:
    student: str
    notebook: nbformat.NotebookNode  # sanitized as nbgrader does it: outputs cleared, locked cells restored
    notes: list[str]
    flags: list[str]
    started: float


def _prepare(course: Course, module: Module, student: str, config, lesson: nbformat.NotebookNode,
             released: nbformat.NotebookNode) -> _Prepared | Grade:
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
    return _Prepared(student, notebook, read.notes + restored, suspicious_code(notebook, lesson, released), started)


def _sanitized(notebook: nbformat.NotebookNode, module: Module, student: str, config,
               folder: CourseFolder) -> tuple[nbformat.NotebookNode, list[str]]:
    """The submission after nbgrader's own sanitizing steps (those its Autograde runs before executing: clear
    outputs, restore locked and graded cells from the gradebook), and notes on the cells they restored."""
    from nbgrader.converters import Autograde

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
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory

    folder = course_folder(course)
    problem = _malformed(run, prepared.notebook)
    if problem:  # nothing of it reaches the gradebook: the submission scores 0, with the reason
        grade = _record_zero(course, module, prepared.student)
        grade.notes, grade.flags = [f"its results could not be used ({problem})"], prepared.flags
        return grade
    notes = prepared.notes + mark_test_results(run, solutions) + safe_notebook(run.notebook)[1]
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
        grade.flags = prepared.flags
        grade.seconds = time.perf_counter() - prepared.started
        return grade
    except BaseException:
        snapshot.restore()
        raise
    finally:
        snapshot.discard()


def mark_test_results(run: Run, solutions: dict[str, str]) -> list[str]:
    """Make a run's outputs say to nbgrader exactly what the grading kernel saw; notes on what was changed.

    nbgrader awards a test's points when its cell shows no error: so each test the kernel did not see finish
    gets an error output with the reason, stderr becomes ordinary output (a debug print costs nothing), a test's
    returned value (nbgrader's partial credit) is dropped, any output showing a solution line of any module
    (`solutions`: `normalized_secrets`) is cut, and so is printed text past a short length.
    """
    notes = []
    for index, cell in enumerate(run.notebook.cells, start=1):
        if cell.cell_type != "code":
            continue
        info = cell.get("metadata", {}).get("nbgrader", {})
        name = info.get("grade_id") or f"cell {index}"
        if _cut_solution_lines(cell, solutions):
            notes.append(f"cut the output of {name}: it showed a line of a lesson's solution")
        if _shorten_printed_text(cell):
            notes.append(f"shortened the printed text of {name} to {SHOWN_CHARACTERS} characters")
        cell.outputs = [output for output in cell.outputs if VERDICT_MIME not in output.get("data", {})]
        if not (info.get("grade") and info.get("locked")):
            continue
        cell.outputs = [_without_end_marker(_as_stdout(output)) for output in cell.outputs
                        if output.output_type != "execute_result"]
        if not run.completed.get(info["grade_id"]) and not any(o.output_type == "error" for o in cell.outputs):
            reason = run.stopped or "the test did not run to its last line"
            cell.outputs.append(nbformat.v4.new_output("error", ename="TestNotCompleted", evalue=reason,
                                                       traceback=[f"TestNotCompleted: {reason}"]))
    return notes


def _as_stdout(output):
    if output.output_type == "stream" and output.name == "stderr":
        output.name = "stdout"
    return output


def _without_end_marker(output):
    """A traceback without the line the grading kernel appends to a test to see it finish (tito/grading_kernel.py)."""
    if output.output_type == "error":
        output.traceback = ["\n".join(line for line in entry.split("\n") if END_MARKER not in line)
                            for entry in output.traceback]
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
    from nbgrader.preprocessors import NbGraderPreprocessor

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
    cells = lambda notebook: [(cell.cell_type, cell.source, cell.metadata.get("nbgrader")) for cell in notebook.cells]
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
    answers = {}
    for cell in notebook.cells:
        info = cell.get("metadata", {}).get("nbgrader", {})
        if info.get("grade") and info.get("solution"):
            answers[info.get("grade_id", "")] = cell.source
    return answers


def keep_hand_grades(course: Course, module: Module, student: str, before: dict[str, str], now: dict[str, str]) -> None:
    """nbgrader flags every hand-graded answer for review again on each autograde; unflag those whose text is the
    one the grader saw (the last autograded copy), so that only answers changed since then await a grader."""
    from nbgrader.api import Gradebook

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
    from nbgrader.api import Gradebook

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

@dataclass
class Feedback:
    student: str
    path: Path | None
    error: str = ""
    pending: list[str] = field(default_factory=list)  # written answers not graded yet (shown so on the page)


TEMPLATES = Path(__file__).with_name("templates")


def autograded_students(course: Course, module: Module) -> list[str]:
    folder = course_folder(course)
    pattern = f"*/{module.name}/{notebook_name(module)}"
    return sorted(path.parent.parent.name for path in (folder.root / "autograded").glob(pattern))


def feedback(course: Course, module: Module, students: list[str] | None = None,
             on_result: Callable[[Feedback], None] | None = None) -> list[Feedback]:
    """An HTML page per autograded student: their notebook with each test's result and the points.

    A page shows only safe outputs (tito/outputs.py) and runs no script but MathJax, copied once into
    feedback/mathjax/ (tito/templates/feedback/ holds the page's template and its Content-Security-Policy).
    """
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
    bundle_mathjax(folder.root / "feedback" / "mathjax")
    results = []
    with nbgrader_session(course, module, folder.log(module, "feedback")) as (config, log):
        html = Config()
        html.HTMLExporter.template_name = "feedback"
        html.HTMLExporter.template_file = "tito_feedback.html.j2"
        # Searched first: tito's page and its mathjax macro in templates/feedback/, then nbgrader's feedback template.
        html.HTMLExporter.extra_template_basedirs = [str(TEMPLATES), nbgrader_templates()]
        config.merge(html)
        for student in list(dict.fromkeys(students)) if students else graded:
            directory = CourseDirectory(config=config)
            directory.assignment_id, directory.student_id = module.name, student
            generator = GenerateFeedback(coursedir=directory, config=config)
            generator.force = True
            pending = pending_answers(course, module, student)
            generator.preprocessors = [*generator.preprocessors, _safe_page(pending)]
            log.write(f"\n===== {student} =====\n")
            succeeded, text = run_converter(generator, log)
            result = (Feedback(student, folder.feedback(student, module), pending=pending) if succeeded
                      else Feedback(student, None, f"no feedback: {failure_reason(text)}"))
            results.append(result)
            if on_result:
                on_result(result)
    return results


def nbgrader_templates() -> str:
    from nbgrader.server_extensions.formgrader import handlers

    return handlers.template_path


def pending_answers(course: Course, module: Module, student: str) -> list[str]:
    """The grade ids of `student`'s written answers that await a grader in the formgrader."""
    from nbgrader.api import Gradebook

    with quiet_warnings(), Gradebook(f"sqlite:///{course_folder(course).gradebook}",
                                     grading_settings(course).course_id) as gradebook:
        notebook = gradebook.find_submission_notebook(module.short, module.name, student)
        return [entry.name for entry in notebook.grades if entry.cell.cell_type != "code" and entry.needs_manual_grade]


def _safe_page(pending: list[str]):
    """An nbgrader preprocessor for a feedback page: only safe content (tito/outputs.py), pending answers marked."""
    from nbgrader.preprocessors import NbGraderPreprocessor

    class SafePage(NbGraderPreprocessor):
        def preprocess(self, notebook, resources):
            safe_notebook(notebook)
            for cell in notebook.cells:
                info = cell.metadata.get("nbgrader", {})
                if info.get("grade_id") in pending:
                    info["tito_pending"] = True
            resources["tito_pending"] = bool(pending)
            return notebook, resources

    step = SafePage()
    step.enabled = True
    return step


def bundle_mathjax(target: Path) -> None:
    """MathJax (from jupyter_server_mathjax) and tito's settings for it in `target`, once: math on a feedback page
    renders with no network and from the course's own files."""
    import jupyter_server_mathjax

    config = TEMPLATES / "static" / "tito-mathjax-config.js"
    if not (target / "MathJax.js").exists():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(Path(jupyter_server_mathjax.__file__).with_name("static"), partial)
        os.replace(partial, target)
    if not (target / config.name).exists() or (target / config.name).read_bytes() != config.read_bytes():
        shutil.copy2(config, target / config.name)


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
