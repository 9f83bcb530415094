"""generate: lesson -> nbgrader's source notebook, checked by running the solution; release: source -> the
student version, checked (nothing passes without work, every cell compiles, no solution line leaks); and
releasing every module whose release is missing or older than its lesson, for a workspace or a kit.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
from IPython.core.inputtransformer2 import TransformerManager
from nbconvert.filters import strip_ansi
from nbgrader.converters import GenerateAssignment
from nbgrader.coursedir import CourseDirectory
from nbgrader.validator import Validator

from ..course import Course, Module
from ..coursefolder import course_folder, grading_settings, notebook_name, source_notebook, write_atomically
from ..errors import TitoError
from ..leaks import Leak, course_secrets, find_leaks
from ..nbgrader_steps import failure_reason, run_converter
from ..notebook import GradedCell, grade_id, graded_cells, metadata_problems, nbgrader_metadata
from .session import all_or_nothing, nbgrader_session, one_line


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


def all_solution_lines(course: Course) -> dict[str, str]:
    """Every module's secret lines (see tito/leaks.py), from the generated sources in the course folder."""
    folder = course_folder(course)
    settings = grading_settings(course)
    sources = sorted((folder.root / "source").glob("*/*.ipynb"))  # NN_name folders: in teaching order
    return course_secrets([(source.parent.name, nbformat.read(source, as_version=4)) for source in sources],
                          settings.delimiters)


def _last_line(traceback_text: str) -> str:
    lines = [line.strip() for line in strip_ansi(traceback_text).splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


def _grade_id_of(source: str, notebook: nbformat.NotebookNode) -> str:
    """nbgrader's validator reports cells by their source; name them by grade id instead."""
    for cell in notebook.cells:
        if cell.source.strip() == source.strip():
            return grade_id(cell) or "a test cell"
    return "a test cell"


def _syntax_errors(notebook: nbformat.NotebookNode) -> list[str]:
    """Code cells that would not even compile in a Jupyter kernel (IPython syntax such as %magics allowed)."""
    transformer, problems = TransformerManager(), []
    for index, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code":
            continue
        try:
            compile(transformer.transform_cell(cell.source), f"cell {index}", "exec")
        except SyntaxError as error:
            name = grade_id(cell) or f"cell {index}"
            problems.append(f"{name} line {error.lineno}: {type(error).__name__}: {error.msg}")
    return problems


def release_stale(course: Course, say: Callable[[str], None] = lambda text: None, modules: list | None = None) -> list[str]:
    """Release every module of `modules` (default: the course's) whose release is missing or older than its
    lesson, before a workspace, a kit or an autograder is made from the course folder's release/; the names
    released. A release that is up to date is reused: releasing runs every solution in a kernel."""
    release_dir = course_folder(course).root / "release"
    stale = [module for module in (course.modules if modules is None else modules)
             if not release_is_current(course, module, release_dir)]
    for module in stale:
        if not module.dev_file.exists():
            raise TitoError(f"{module.name} has no release in {release_dir} and no {module.dev_file.name} to make one "
                            f"from: run `tito nbgrader release {module.name}` in the course repository", 2)
    for module in stale:
        say(f"releasing {module.name} (nbgrader: runs the solution, makes the student version, checks it) ...")
        release(course, module)
    return [module.name for module in stale]


def release_is_current(course: Course, module: Module, release_dir: Path) -> bool:
    """Whether the module's release exists and was made from the lesson as it is now (its source notebook in
    the course folder holds the same cells as the lesson)."""
    source = course_folder(course).source(module)
    if not (release_dir / module.name / f"{module.short}.ipynb").exists() or not source.exists():
        return False
    if not module.dev_file.exists():
        return True  # nothing to compare with: the release is all there is
    return _cells(nbformat.read(source, as_version=4)) == _cells(source_notebook(module))


def _cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str, dict]]:
    return [(cell.cell_type, cell.source, nbgrader_metadata(cell)) for cell in notebook.cells]
