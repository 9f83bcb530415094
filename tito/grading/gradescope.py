"""Gradescope: one autograder zip per module, grading an upload exactly as `tito nbgrader autograde` does.

Gradescope unpacks the zip to /autograder/source, runs `setup.sh` once (as root) to build its image, then
`run_autograder` for each upload (in /autograder/submission), and shows /autograder/results/results.json.

What the zip holds (`build_autograder`), and what it does not:
  - a course folder for this one module: its release, its lesson as the source with every solution cell
    replaced by the release's (so its tests, hidden ones included, and nothing a student writes), nbgrader's
    gradebook holding only this module (no student) and the reference package holding only the module's
    prerequisites, all stored read-only;
  - tito itself (the grading code; `run_autograder` imports it from the zip), the pinned requirements and the
    SHA-256 of every lesson's normalized solution lines, so that output showing one is cut, as at home;
  - checked like a release: no line of this module's solutions, or of any later module's, is in it.
Each upload then goes through `autograde` itself (tito/grading/autograde.py) in a fresh copy of that folder:
the sandbox, the limits, the leak-checked output, nbgrader's gradebook; its results become Gradescope's.
Where the container cannot create the namespaces bubblewrap needs, the kernel runs as an unprivileged user
of its own with the same limits (`sandbox.py`'s fallback), and the results say so.
"""
from __future__ import annotations

import ast
import configparser
import hashlib
import importlib.metadata
import json
import os
import shutil
import sqlite3
import stat
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbconvert.filters import strip_ansi
from nbgrader.api import Gradebook

from ..course import SETTINGS, Course, Module, load_course
from ..coursefolder import course_folder, grading_settings, notebook_name, require_release
from ..errors import TitoError
from ..leaks import Delimiters, Leak, find_leaks, normalized, secret_lines
from ..notebook import cell_role, grade_id, graded_cells, is_student_work, TEST
from .autograde import Grade, _reference_files, autograde
from .release import all_solution_lines
from .sandbox import sandbox_works
from .session import one_line, quiet_warnings

TITO_DIR = Path(__file__).resolve().parent.parent
COURSE = "course"                  # in the zip: the one-module course (settings.ini, tinytorch/, its course folder)
SECRETS = "solution_hashes.json"   # in the zip: SHA-256 of each normalized solution line of every lesson
STUDENT = "gradescope"             # the student id the upload is graded under, in a private copy of the folder
PYTHON_VARIABLE = "TITO_GRADESCOPE_PYTHON"  # an interpreter that already has the requirements (tests; no venv)
# What grading imports besides the lessons' own imports (found from the code in the zip).
GRADING_DISTRIBUTIONS = ["numpy", "nbgrader", "nbformat", "nbclient", "nbconvert", "ipykernel", "jupyter_client",
                         "pyzmq", "traitlets", "nh3", "rich"]

SETUP = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image: bubblewrap (the grading sandbox)
# and the pinned Python packages of requirements.txt, nothing else. With ${python_variable} naming an interpreter
# that already has them, pip finds every pin satisfied and installs nothing (tito's own tests do that).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v bwrap >/dev/null; then
    apt-get update && apt-get install -y --no-install-recommends bubblewrap
fi
python="${{{python_variable}:-/autograder/venv/bin/python}}"
if [ ! -x "$python" ]; then
    apt-get update && apt-get install -y --no-install-recommends python3-venv python3-pip
    python3 -m venv /autograder/venv
fi
"$python" -m pip install --quiet --disable-pip-version-check --requirement requirements.txt
"""

RUN = """\
#!/usr/bin/env bash
# Gradescope runs this for each upload: tito (from this zip) grades /autograder/submission into
# /autograder/results/results.json, and never fails without writing it.
cd /autograder
export PYTHONPATH=/autograder/source
exec "${{{python_variable}:-/autograder/venv/bin/python}}" -P -m tito.grading.gradescope /autograder
"""


# ------------------------------------------------------------------------------------------------ build

@dataclass
class Autograder:
    module: Module
    path: Path
    files: int


def build_autograder(course: Course, module: Module, out: Path) -> Autograder:
    """OUT/<module>-gradescope.zip: the module's autograder, checked to hold none of what it withholds."""
    require_release(course, module)
    with tempfile.TemporaryDirectory(prefix="tito-gradescope-") as scratch:
        staging = Path(scratch) / "source"
        _stage_course(course, module, staging / COURSE)
        shutil.copytree(TITO_DIR, staging / "tito", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (staging / SECRETS).write_text(json.dumps(sorted(_digest(normalized(line)) for line in
                                                         all_solution_lines(course) if normalized(line))))
        (staging / "requirements.txt").write_text("".join(f"{pin}\n" for pin in requirements(staging)))
        (staging / "setup.sh").write_text(SETUP.format(python_variable=PYTHON_VARIABLE))
        (staging / "run_autograder").write_text(RUN.format(python_variable=PYTHON_VARIABLE))
        leaks = withheld_leaks(course, module, staging)
        if leaks:
            raise TitoError(f"the autograder of {module.name} would hold solutions ({len(leaks)} lines), e.g. "
                            f"{leaks[0]}; nothing was written")
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{module.name}-gradescope.zip"
        files = _write_zip(staging, path)
    return Autograder(module, path, files)


def _stage_course(course: Course, module: Module, root: Path) -> None:
    """The one-module course `autograde` grades in: settings, prerequisites, release, source, empty gradebook."""
    folder = course_folder(course)
    for relative, source in _reference_files(course, module).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, root / relative)
    settings = configparser.ConfigParser(interpolation=None)
    settings.read(course.root / SETTINGS, encoding="utf-8")
    settings["course"]["modules"] = module.name
    if not settings.has_section("nbgrader"):
        settings.add_section("nbgrader")
    settings["nbgrader"]["course_dir"] = COURSE
    with open(root / SETTINGS, "w", encoding="utf-8") as file:
        settings.write(file)
    graded = root / COURSE
    released = nbformat.read(folder.release(module), as_version=4)
    for place in ("release", "source"):
        (graded / place / module.name).mkdir(parents=True)
    shutil.copyfile(folder.release(module), graded / "release" / module.name / notebook_name(module))
    nbformat.write(tests_only(nbformat.read(folder.source(module), as_version=4), released),
                   graded / "source" / module.name / notebook_name(module))
    _gradebook_of(course, module, graded / "gradebook.db")


def tests_only(source: nbformat.NotebookNode, released: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The source notebook with each cell a student writes in replaced by its release: what grading reads of the
    source (locked cells, hidden tests included, and the order of graded cells), with no solution."""
    given = {grade_id(cell): cell.source for cell in released.cells if grade_id(cell)}
    for cell in source.cells:
        if is_student_work(cell):
            cell.source = given.get(grade_id(cell), "")
    return source


def _gradebook_of(course: Course, module: Module, path: Path) -> None:
    """A copy of the course's gradebook holding `module` alone: no student, no other module (and VACUUMed, so
    none of what was removed stays in its free pages). nbgrader saved its cells as released: no solution."""
    shutil.copyfile(course_folder(course).gradebook, path)
    with quiet_warnings(), Gradebook(f"sqlite:///{path}", grading_settings(course).course_id) as gradebook:
        for student in [student.id for student in gradebook.students]:
            gradebook.remove_student(student)
        for assignment in [assignment.name for assignment in gradebook.assignments]:
            if assignment != module.name:
                gradebook.remove_assignment(assignment)
    with sqlite3.connect(path) as database:
        database.execute("VACUUM")


def withheld_leaks(course: Course, module: Module, folder: Path) -> list[Leak]:
    """Each line in `folder` of a solution that grading `module` withholds: its own and every later module's
    (the zip holds the earlier modules' reference code by design, as the grading kernel imports it)."""
    folder_of = course_folder(course)
    settings = grading_settings(course)
    # Hidden tests ship (for the judge); a solution line must not.
    solutions_only = Delimiters(settings.delimiters.begin_solution, settings.delimiters.end_solution,
                                "\0no hidden tests\0", "\0end\0")
    # A withheld line that the prerequisites' reference code has too tells a student nothing new: the zip holds
    # that code by design (e.g. a later lesson writing `rng = ... default_rng()` as module 03 gives it).
    shipped = {line.strip() for path in _reference_files(course, module).values()
               for line in path.read_text(encoding="utf-8").splitlines()}
    secrets: dict[str, str] = {}
    for later in course.modules[course.modules.index(module):]:
        if folder_of.source(later).exists():
            lesson = nbformat.read(folder_of.source(later), as_version=4)
            secrets.update(secret_lines(lesson, later.name, solutions_only))
    return find_leaks({line: origin for line, origin in secrets.items() if line not in shipped}, folder)


def requirements(staging: Path) -> list[str]:
    """Pins (`name==version`, as installed here) of what grading and the zip's Python code import."""
    distributions = importlib.metadata.packages_distributions()  # top-level module -> the distributions giving it
    names = set(GRADING_DISTRIBUTIONS)
    for top in _imported_modules(staging / COURSE):
        if top not in sys.stdlib_module_names and top != "tinytorch":
            names.update(distributions.get(top, []))
    return sorted(f"{name}=={importlib.metadata.version(name)}" for name in names)


def _imported_modules(root: Path) -> set[str]:
    """Top-level modules imported by the reference package's files and the lesson's cells under `root`."""
    sources = [path.read_text(encoding="utf-8") for path in root.rglob("*.py")]
    sources += [cell.source for path in root.rglob("*.ipynb")
                for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
    modules = set()
    for text in sources:
        code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in text.splitlines())
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module.split(".")[0])
    return modules


def _write_zip(staging: Path, path: Path) -> int:
    """The zip, files at its root; the scripts executable, everything else read-only (0444)."""
    partial = path.with_name(path.name + ".partial")
    files = sorted(file for file in staging.rglob("*") if file.is_file())
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in files:
            relative = file.relative_to(staging).as_posix()
            entry = zipfile.ZipInfo(relative, date_time=(2020, 1, 1, 0, 0, 0))
            mode = 0o755 if relative in ("setup.sh", "run_autograder") else 0o444
            entry.external_attr = (stat.S_IFREG | mode) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, file.read_bytes())
    os.replace(partial, path)
    return len(files)


def _digest(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


class HashedSecrets:
    """`normalized_secrets(...)` as the autograder holds it: the hash of each normalized solution line, which is
    all `shows_secret` asks of it (`line in secrets`), so that the zip shows no solution line."""

    def __init__(self, digests: list[str]):
        self.digests = set(digests)

    def __contains__(self, line: object) -> bool:
        return isinstance(line, str) and _digest(line) in self.digests


# ------------------------------------------------------------------------------------------------- grade

def grade_upload(autograder: Path) -> dict:
    """Grade /autograder/submission (under `autograder`) as `tito nbgrader autograde` does: Gradescope's results."""
    started = time.monotonic()
    source = autograder / "source"
    with tempfile.TemporaryDirectory(prefix="tito-gradescope-") as scratch:
        root = Path(scratch) / COURSE
        shutil.copytree(source / COURSE, root)
        for path in [root, *root.rglob("*")]:  # the zip's files are read-only; this private copy is written to
            path.chmod(0o755 if path.is_dir() else 0o644)
        # The zip's tests (hidden ones too) are the judge's alone: the fallback's kernel user must not read them.
        (source / COURSE).chmod(0o700)
        course = load_course(root)
        module = course.modules[0]
        released = nbformat.read(course_folder(course).release(module), as_version=4)
        problem = _hand_in(autograder / "submission", course, module)
        sandboxed, isolation = _isolation()
        if problem:
            results = _results(released, Grade(STUDENT, graded=False, error=problem), {}, {})
        else:
            secrets = HashedSecrets(json.loads((source / SECRETS).read_text()))
            grade = autograde(course, module, [STUDENT], sandboxed=sandboxed, solutions=secrets,
                              unprivileged=not sandboxed)[0]
            scores, messages = _test_results(course, module)
            results = _results(released, grade, scores, messages)
    if isolation:
        results["output"] = f"{results['output']}\n{isolation}"
    results["execution_time"] = round(time.monotonic() - started, 3)
    return results


def _hand_in(uploads: Path, course: Course, module: Module) -> str:
    """Put the upload where `autograde` reads it; why it cannot be graded ("" when it can)."""
    expected = notebook_name(module)
    named = [path for path in uploads.rglob(expected) if ".ipynb_checkpoints" not in path.parts]
    if len(named) != 1:
        uploaded = sorted(path.relative_to(uploads).as_posix() for path in uploads.rglob("*") if not path.is_dir())
        found = f"{len(named)} files named {expected}" if named else f"no {expected}"
        return (f"upload the notebook {expected} of {module.name}: found {found} among the files uploaded "
                f"({', '.join(uploaded[:10]) or 'none'}), so nothing was graded")
    target = course_folder(course).submitted(STUDENT, module)
    target.parent.mkdir(parents=True)
    shutil.copy2(named[0], target, follow_symlinks=False)  # a link stays a link, which autograde refuses
    return ""


def _isolation() -> tuple[bool, str]:
    """Whether the grading sandbox (bubblewrap) can run here, and what the results must say when it cannot."""
    if sandbox_works():
        return True, ""
    return False, ("[tito] this container cannot create the namespaces of the grading sandbox (bubblewrap), so your "
                   "notebook ran as an unprivileged user of its own with the same time, memory and output limits "
                   "(but with this container's network and file system in view), and its test results were "
                   "checked by the grader as usual")


def _test_results(course: Course, module: Module) -> tuple[dict[str, float], dict[str, str]]:
    """grade id -> score, from nbgrader's gradebook; grade id -> the test's own message, from the graded notebook."""
    folder = course_folder(course)
    scores = {}
    with quiet_warnings(), Gradebook(f"sqlite:///{folder.gradebook}", grading_settings(course).course_id) as gradebook:
        try:
            notebook = gradebook.find_submission_notebook(module.short, module.name, STUDENT)
        except Exception:  # no submission recorded: nothing scored
            return {}, {}
        for entry in notebook.grades:
            scores[entry.name] = entry.score
    messages = {}
    graded = folder.autograded(STUDENT, module)
    if graded.exists():
        for cell in nbformat.read(graded, as_version=4).cells:
            if cell.cell_type == "code" and cell_role(cell) == TEST:
                messages[grade_id(cell)] = _message(cell)
    return scores, messages


def _message(cell) -> str:
    """What a test cell showed: its printout, then its error (the assert's own message)."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append("".join(output.text) if isinstance(output.text, list) else output.text)
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {strip_ansi(output.evalue)}")
    return "".join(part if part.endswith("\n") else part + "\n" for part in parts).strip()


def _results(released: nbformat.NotebookNode, grade: Grade, scores: dict[str, float],
             messages: dict[str, str]) -> dict:
    """Gradescope's results.json: one entry per graded test and per written answer, the total, tito's reasons."""
    tests = []
    for number, cell in enumerate(graded_cells(released), start=1):
        if cell.is_test:
            score = float(scores.get(cell.grade_id, 0.0))
            passed = score >= cell.points
            output = messages.get(cell.grade_id) or ("passed" if passed else "not graded" if not grade.graded else
                                                      "failed")
            tests.append({"name": cell.grade_id, "number": str(number), "score": score, "max_score": float(cell.points),
                          "status": "passed" if passed else "failed", "output": output, "visibility": "visible"})
        else:
            tests.append({"name": cell.grade_id, "number": str(number), "score": 0.0, "max_score": float(cell.points),
                          "output": "a written answer: graded by hand by your instructor after the autograder",
                          "visibility": "visible"})
    earned = sum(entry["score"] for entry in tests)
    possible = sum(entry["max_score"] for entry in tests if "status" in entry)
    lines = [f"tests: {earned:g} of {possible:g} points"]
    lines += [f"[tito] {text}" for text in ([grade.error] if grade.error else []) + grade.notes]
    return {"score": earned, "output": "\n".join(lines), "visibility": "visible", "stdout_visibility": "hidden",
            "tests": tests}


def main(argv: list[str] | None = None) -> int:
    """`run_autograder`'s entry point: write results.json whatever happens (a failure scores 0 with its reason)."""
    autograder = Path((argv or sys.argv[1:] or ["/autograder"])[0])
    results_file = autograder / "results" / "results.json"
    try:
        results = grade_upload(autograder)
    except Exception as error:  # the autograder must always answer: a reason and 0, never a silent crash
        results = {"score": 0.0, "output": f"[tito] the autograder failed ({one_line(error)}): ask your instructor",
                   "visibility": "visible", "stdout_visibility": "hidden", "tests": []}
        print(f"autograder failure: {error!r}", file=sys.stderr)
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(results["output"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
