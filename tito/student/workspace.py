"""A student's workspace: the release notebooks, the student's own `tinytorch` package, and the package tests.

`tito student init DIR` makes one from the course's release (course/release/ by default):

    DIR/settings.ini                         the workspace's modules (tito reads it, so tito works in DIR)
    DIR/pyproject.toml                       pytest's settings for the package tests
    DIR/modules/05_autograd/autograd.ipynb   a release notebook: the student writes here
    DIR/tinytorch/core/autograd.py           exported from that notebook: stubs until the module is completed
    DIR/tests/test_autograd*.py              the package tests `tito module complete` runs

Each stub names the module and the cell to complete, so an unfinished function met from a later module
says where the work is. The workspace is built in a scratch folder and moved into place only when it is
complete and the no-leak check finds no solution line in it.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nbformat

from ..course import SECTION, SETTINGS, Course, Module, is_workspace, load_course
from ..coursefolder import (JUPYTEXT_CELL_KEYS, STUDENT_ID, course_folder, grading_settings, require_release,
                            source_notebook)
from ..errors import TitoError
from ..exporter import install, render
from ..leaks import Delimiters, Leak, course_secrets, leaks_in_file
from ..prerequisites import prerequisites
from ..stubs import name_the_stubs

_TEST_IMPORT = re.compile(r"^\s*(?:from\s+(\w+)\s+import|import\s+(\w+))", re.MULTILINE)
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".hypothesis")

# What git should not track in a workspace or kit: Python's and Jupyter's caches, tito's records, and what
# docs/student.md's install makes inside it (the virtual environment, pip's egg-info).
GITIGNORE = """\
__pycache__/
*.pyc
.ipynb_checkpoints/
.hypothesis/
.pytest_cache/
.tito/
.venv/
venv/
*.egg-info/
build/
"""

# What a student runs, in a workspace's README and a kit's.
COMMANDS = """\
| command (run it in this folder) | what it does |
|---|---|
| `tito lab` (or `tito notebook 05`) | open JupyterLab here, with this folder's `tinytorch` on the path |
| `tito module test 05_autograd` | run your notebook in a fresh kernel and report each unit test |
| `tito module complete 05_autograd` | test, then export your `#| export` cells into `tinytorch/` and run the package tests |
| `tito status` | your progress, module by module |
| `tito student submit 05_autograd` | hand a notebook in for grading (a kit's first time: add `--course PATH --student ID`) |
| `tito student update` | add the modules released since (a kit: `--from` the newer kit); changes none of your files |

Work through the modules in order: module 05 runs on the `Tensor` you wrote in module 01.
"""

README = """\
# My tinytorch

A tinytorch workspace: you write the code, `tito` checks it and builds it into your own `tinytorch` package.

""" + COMMANDS


# ------------------------------------------------------------------------------------------------ stubs




@dataclass
class Made:
    """What `init_workspace` made."""

    root: Path
    modules: list[Module]
    stubs: dict[str, int]       # module name -> unfinished parts
    tests: list[str]            # the package test files copied
    checked_files: int          # files the no-leak check read


def init_workspace(course: Course, target: Path, release_dir: Path | None = None, student: str | None = None,
                   say: Callable[[str], None] = lambda text: None, record_origin: bool = True) -> Made:
    """Make a student workspace in `target` (absent or empty) from the release notebooks in `release_dir`
    (default: the course folder's release/, which must hold every module); all or nothing.

    Releasing is the instructor's step: a missing release is named, never made here (`tito student init` in a
    course repository releases what is stale first). The workspace records where it came from (the course, its
    release and course folders) so that `tito student submit` and `tito student update` find them; a kit, made
    to be copied to other machines, does not.
    """
    target = check_new_workspace(course, target, student)
    settings = grading_settings(course)
    folder = course_folder(course)
    if release_dir is None:
        for module in course.modules:
            require_release(course, module)
        release_dir = folder.root / "release"
    release_dir = absolute_path(release_dir)
    notebooks = _release_notebooks(course, release_dir, settings.delimiters)
    for module in (module for module in course.modules if module.name in notebooks):
        missing = [other.name for other in prerequisites(course, module) if other.name not in notebooks]
        if missing:
            raise TitoError(f"{release_dir} has {module.name} but not {', '.join(missing)}, which it builds on: "
                            f"give a release folder with every module up to {module.name}", 2)

    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = scratch_folder(target)
    try:
        modules = [module for module in course.modules if module.name in notebooks]
        stubs = {}
        for module in modules:
            notebook = nbformat.read(notebooks[module.name], as_version=4)
            _strip_pairing(notebook)
            stubs[module.name] = name_the_stubs(notebook, module)
            path = scratch / "modules" / module.name / f"{module.short}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, path)
        origin = (course.root, release_dir, folder.root) if record_origin else None
        _write_settings(course, scratch, modules, origin, student)
        if record_origin:  # a kit, copied to every student, gets no id: each copy makes its own at its first submit
            workspace_id(scratch)
        _write_pyproject(course, scratch)
        (scratch / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
        (scratch / "README.md").write_text(README, encoding="utf-8")
        _package_skeleton(course, scratch)
        workspace = load_course(scratch)
        say(f"exporting the stubs of {len(modules)} module{'s' * (len(modules) != 1)} into tinytorch/ ...")
        _export(workspace)
        tests = _copy_tests(course, scratch, modules)
        say("checking that no solution line is in the workspace ...")
        leaks, checked = workspace_leaks(course, scratch)
        if leaks:
            raise TitoError(f"the workspace would show solutions ({len(leaks)} lines), e.g. "
                            f"{str(leaks[0]).replace(str(scratch), str(target))}: nothing was made")
        _move_into_place(scratch, target)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    made = [Module(module.name, target / "modules" / module.name) for module in modules]
    return Made(target, made, stubs, tests, checked)


def check_new_workspace(course: Course, target: Path, student: str | None = None) -> Path:
    """Refuse a workspace that cannot be made, before anything is made (or released for it); `target`, absolute."""
    if is_workspace(course):
        raise TitoError(f"{course.root} is already a student workspace: run `tito student init` in the course "
                        f"repository", 2)
    if student is not None and not STUDENT_ID.fullmatch(student):
        raise TitoError(f"'{student}' is not usable as a student id: use letters, digits, '.', '_', '-' or '@'", 2)
    return require_new_folder(target, "workspace")


def require_new_folder(target: Path, what: str) -> Path:
    """`target` as an absolute path, refused unless it is absent or an empty folder."""
    target = absolute_path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        kind = "folder" if target.is_dir() else "file"
        raise TitoError(f"{target} is a {kind} that is not empty: choose a new folder for the {what}", 2)
    return target


def scratch_folder(target: Path) -> Path:
    """A new hidden folder beside `target`, to build it in before moving it into place. mkdtemp makes it 0700;
    it gets the mode any new folder gets (0755 with the usual umask 022), so that others can read or clone the
    result as they would any folder the user makes."""
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-partial-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    scratch.chmod(0o777 & ~umask)
    return scratch


def absolute_path(path: Path) -> Path:
    """An absolute path as a person would write it: `~` expanded, `..` folded (symbolic links kept)."""
    return Path(os.path.abspath(path.expanduser()))


def _release_notebooks(course: Course, release_dir: Path, delimiters: Delimiters) -> dict[str, Path]:
    """module name -> its release notebook in `release_dir` (release/<module>/<short>.ipynb), checked."""
    if not release_dir.is_dir():
        raise TitoError(f"no release folder at {release_dir}: give the folder holding <module>/<name>.ipynb "
                        f"(e.g. course/release), or run `tito nbgrader release --all` first", 2)
    found = {}
    for module in course.modules:
        path = release_dir / module.name / f"{module.short}.ipynb"
        if not path.exists():
            continue
        try:
            notebook = nbformat.read(path, as_version=4)
        except Exception as error:  # nbformat raises many kinds for a file that is no notebook
            raise TitoError(f"{path} is not a Jupyter notebook ({type(error).__name__}): "
                            f"{str(error).splitlines()[0] if str(error) else ''}".rstrip(": "), 2) from None
        if any(marker in cell.source for cell in notebook.cells for marker in delimiters.markers):
            raise TitoError(f"{path} still has solution or hidden-test markers: it is a source notebook, not a "
                            f"release (give the release folder, made by `tito nbgrader release`)", 2)
        found[module.name] = path
    if not found:
        expected = ", ".join(f"{module.name}/{module.short}.ipynb" for module in course.modules[:2])
        raise TitoError(f"{release_dir} holds no release notebook of this course (expected e.g. {expected})", 2)
    return found


def _strip_pairing(notebook: nbformat.NotebookNode) -> None:
    """No jupytext metadata: it could pair the notebook with a file holding solutions."""
    notebook.metadata.pop("jupytext", None)
    for cell in notebook.cells:
        for key in JUPYTEXT_CELL_KEYS:
            cell.metadata.pop(key, None)


def _write_settings(course: Course, root: Path, modules: list[Module], origin: tuple[Path, Path, Path] | None,
                    student: str | None) -> None:
    """settings.ini of a workspace; `origin` is (course repository, release folder, course folder), or None."""
    listed = "".join(f"\n    {module.name}" for module in modules)
    course_root, release_dir, course_dir = origin or ("", "", "")
    text = f"""\
# A tinytorch student workspace (or kit), made by tito on {datetime.now():%Y-%m-%d %H:%M}.
# tito reads this file: run tito anywhere in this folder. Your modules are modules/<name>/<short name>.ipynb.

[course]
id = {course.course_id}
title = {course.title}
modules ={listed}

[nbgrader]
# The course's grading time limit per notebook cell, in seconds (`tito module test` allows at least 600).
timeout = {course.timeout}

[{SECTION}]
# Where the release came from, and where `tito student submit` hands work in (an nbgrader course folder).
course = {course_root}
release = {release_dir}
course_dir = {course_dir}
# Your student id for `tito student submit` (empty: your login name).
student = {student or ''}
"""
    (root / SETTINGS).write_text(text, encoding="utf-8")


def _write_pyproject(course: Course, root: Path) -> None:
    (root / "pyproject.toml").write_text(
        "# pytest's settings for the package tests of this tinytorch workspace (tito reads settings.ini).\n"
        + pytest_settings(course), encoding="utf-8")


def pytest_settings(course: Course) -> str:
    """pytest's settings for the package tests: the course's markers (tito itself reads only settings.ini)."""
    import tomllib

    try:
        markers = tomllib.loads((course.root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"][
            "ini_options"].get("markers", [])
    except (OSError, KeyError, ValueError):
        markers = []
    listed = "".join(f"\n    {json.dumps(marker)}," for marker in markers)
    return f"[tool.pytest.ini_options]\ntestpaths = [\"tests\"]\nmarkers = [{listed}\n]\n"


def _package_skeleton(course: Course, root: Path) -> None:
    """The package's `__init__.py` files (not generated from lessons), as the course has them."""
    for init in sorted(course.package_dir.rglob("__init__.py")):
        if "__pycache__" in init.parts:
            continue
        destination = root / init.relative_to(course.root)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(init, destination)


def _export(workspace: Course) -> None:
    install(render(workspace, list(workspace.modules)))
    for path in sorted(workspace.package_dir.rglob("*.py")):
        try:
            compile(path.read_text(encoding="utf-8"), str(path), "exec")
        except SyntaxError as error:
            raise TitoError(f"the stub package does not compile: {path.relative_to(workspace.root)} line "
                            f"{error.lineno}: {error.msg}") from None


def workspace_test_files(course: Course, modules: list[Module]) -> list[Path]:
    """The package tests of `modules` in the course (tests/test_<short>*.py), with conftest.py and every helper
    file of tests/ they import."""
    tests = course.root / "tests"
    chosen = {path for module in modules for path in tests.glob(f"test_{module.short}*.py")}
    # A test of another module that merely starts with this one's name (test_optimizers_training.py) is
    # wanted only when its own module is in the workspace.
    shorts = sorted((module.short for module in course.modules), key=len, reverse=True)
    names = {module.short for module in modules}
    chosen = {path for path in chosen
              if next(short for short in shorts if path.name.startswith(f"test_{short}")) in names}
    if (tests / "conftest.py").exists():
        chosen.add(tests / "conftest.py")
    pending = list(chosen)
    while pending:
        for match in _TEST_IMPORT.findall(pending.pop().read_text(encoding="utf-8")):
            helper = tests / f"{match[0] or match[1]}.py"
            if helper.exists() and helper not in chosen:
                chosen.add(helper)
                pending.append(helper)
    return sorted(chosen)


def _copy_tests(course: Course, root: Path, modules: list[Module]) -> list[str]:
    files = workspace_test_files(course, modules)
    for path in files:
        destination = root / "tests" / path.name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
    return [path.name for path in files]


def _move_into_place(scratch: Path, target: Path) -> None:
    if not target.exists():
        os.replace(scratch, target)
        return
    for item in scratch.iterdir():  # an empty folder that exists already: keep it, fill it
        os.replace(item, target / item.name)
    scratch.rmdir()


def workspace_leaks(course: Course, folder: Path) -> tuple[list[Leak], int]:
    """Every solution line of the course's lessons found in any file of `folder` (a workspace), and how many
    files were read. The rule is the release's (`tito.grading.release.check_no_leaks`): a workspace hands out
    every module at once, so no file may show a solution line of any module.
    """
    delimiters = grading_settings(course).delimiters
    lessons = [(module.name, source_notebook(module)) for module in course.modules if module.dev_file.exists()]
    secrets = course_secrets(lessons, delimiters)
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    return [leak for path in files for leak in leaks_in_file(secrets, path)], len(files)



def workspace_id(root: Path) -> str:
    """The workspace's random id (.tito/workspace-id, which git ignores), made on first use."""
    path = root / ".tito" / "workspace-id"
    if not path.is_file():
        path.parent.mkdir(exist_ok=True)
        path.write_text(secrets.token_hex(16) + "\n", encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()




