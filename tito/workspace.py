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

import configparser
import getpass
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nbformat

from . import results
from .course import SETTINGS, Course, Module, load_course
from .errors import TitoError
from .leaks import Delimiters, Leak, leaks_in_file, secret_lines

SECTION = "workspace"
# The first line of nbgrader's code stub (tito's nbgrader_config.py and nbgrader's default both use it).
STUB_COMMENT = "# YOUR CODE HERE"
_RAISE = re.compile(r"^(?P<indent>\s*)raise NotImplementedError\((?P<message>.*)\)\s*$")
# What a workspace stub says; parsed back to tell a student which part of which module is unfinished.
_STUB_TEXT = re.compile(r"(?P<module>\d+_\w+) is not complete: write your code(?: in (?P<what>[\w.]+)\(\))? "
                        r"\(cell '(?P<cell>[^']+)'")
_DEF = re.compile(r"^(?P<indent>\s*)(?:async\s+)?def\s+(?P<name>\w+)")
_CLASS = re.compile(r"^(?P<indent>\s*)class\s+(?P<name>\w+)")
# `from tinytorch.core.tensor import ...`, `import tinytorch.core.operations` or `from tinytorch.core import operations`
_IMPORT = re.compile(r"^\s*(?:from|import)\s+tinytorch\.core(?:\.|\s+import\s+)(\w+)", re.MULTILINE)
_TEST_IMPORT = re.compile(r"^\s*(?:from\s+(\w+)\s+import|import\s+(\w+))", re.MULTILINE)
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".hypothesis")

# Who handed in under a student id, in the course folder: submitted/<student>/.tito-owner.json (see `submit`).
OWNER_FILE = ".tito-owner.json"
ANSWER_STUB = "YOUR ANSWER HERE"  # nbgrader's text in a written-answer cell

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

@dataclass(frozen=True)
class Stub:
    """One unfinished part: a `raise NotImplementedError` where a solution goes."""

    line: int   # 1-based, in the file or the cell
    what: str   # e.g. "Tensor.__add__", or "" for code outside any function
    cell: str   # the cell's grade id, when known

    def describe(self) -> str:
        where = f"cell '{self.cell}'" if self.cell else "a cell"
        return f"{self.what}() in {where}" if self.what else where


def find_stubs(text: str, cell: str = "") -> list[Stub]:
    """The stubs in a piece of code: nbgrader's `# YOUR CODE HERE` + `raise NotImplementedError(...)`, or a
    `raise NotImplementedError("... is not complete ...")` whose comment line a student removed."""
    lines = text.splitlines()
    stubs = []
    for index, line in enumerate(lines):
        found = _RAISE.match(line)
        if not found:
            continue
        after_comment = index > 0 and lines[index - 1].strip() == STUB_COMMENT
        if not after_comment and " is not complete" not in found.group("message"):
            continue
        named = _STUB_TEXT.search(found.group("message"))
        what, where = (named.group("what") or "", named.group("cell")) if named else (enclosing_name(lines, index), cell)
        stubs.append(Stub(index + 1, what, where))
    return stubs


def enclosing_name(lines: list[str], index: int) -> str:
    """The function (with its class, if any) whose body holds line `index`: "Tensor.__add__", "add" or ""."""
    names: list[str] = []
    limit = _indent(lines[index])
    for line in reversed(lines[:index]):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or _indent(line) >= limit:
            continue
        limit = _indent(line)  # a line that encloses the stub: a def, a class, or an if/for/with block
        header = _DEF.match(line) or _CLASS.match(line)
        if header:
            names.insert(0, header.group("name"))
        if limit == 0:
            break
    return ".".join(names)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def stub_message(module: Module, what: str, cell: str) -> str:
    """What a workspace stub says, e.g. "01_tensor is not complete: write your code in Tensor.__add__() (cell
    'tensor-elementwise' of modules/01_tensor/tensor.ipynb), then run `tito module complete 01_tensor`"."""
    function = f" in {what}()" if what else ""
    return (f"{module.name} is not complete: write your code{function} (cell '{cell}' of modules/{module.name}/"
            f"{module.short}.ipynb), then run `tito module complete {module.name}`")


def unwritten_part(message: str) -> str:
    """The part a workspace stub's error names, e.g. "Tensor.__add__() in cell 'tensor-arithmetic' (01_tensor)";
    "" for any other message."""
    named = _STUB_TEXT.search(message)
    if not named:
        return ""
    what = f"{named.group('what')}() in " if named.group("what") else ""
    return f"{what}cell '{named.group('cell')}' ({named.group('module')})"


def name_the_stubs(notebook: nbformat.NotebookNode, module: Module) -> int:
    """Rewrite each stub of the notebook's solution cells so that its message names the module and the cell.

    nbgrader writes one stub for every solution region, naming only the module; a student who meets it from a
    later module (through the package) needs to know which part to write, and where. Returns how many stubs.
    """
    count = 0
    for index, cell in enumerate(notebook.cells, start=1):
        info = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or not info.get("solution"):
            continue
        stubs = find_stubs(cell.source)
        if not stubs:
            continue
        lines = cell.source.splitlines()
        for stub in stubs:
            position = stub.line - 1
            indent = _RAISE.match(lines[position]).group("indent")
            message = stub_message(module, stub.what, info.get("grade_id") or f"cell {index}")
            lines[position] = f"{indent}raise NotImplementedError({message!r})"
            count += 1
        cell.source = "\n".join(lines) + ("\n" if cell.source.endswith("\n") else "")
    return count


def notebook_stubs(notebook: nbformat.NotebookNode) -> list[Stub]:
    """The unfinished parts left in a module notebook's solution cells."""
    stubs = []
    for cell in notebook.cells:
        info = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and info.get("solution"):
            stubs += find_stubs(cell.source, info.get("grade_id", ""))
    return stubs


def package_stubs(course: Course, module: Module) -> list[Stub] | None:
    """The unfinished parts in the module's file of the package; None when it has not been exported."""
    path = module.package_file(course.root)
    return find_stubs(path.read_text(encoding="utf-8")) if path.exists() else None


# ----------------------------------------------------------------------------------------- prerequisites

def prerequisites(course: Course, module: Module) -> list[Module]:
    """The earlier modules whose package code this module imports, directly or through each other, in course order.

    Only modules before this one count: a lesson may peek at a later module (module 02 tries autograd when it
    exists). Module 05 loads module 06 when it exists, so a module after 06 that imports 05 needs 06 too.
    """
    order = list(course.modules)
    position = order.index(module)
    by_package = {}
    for other in order:
        try:
            by_package[other.package_module.split(".")[-1]] = other
        except TitoError:
            continue
    needed: set[str] = set()
    pending = [module]
    while pending:
        current = pending.pop()
        for name in _IMPORT.findall(_code_of(current)):
            other = by_package.get(name)
            if other and order.index(other) < position and other.name not in needed:
                needed.add(other.name)
                pending.append(other)
    return [other for other in order if other.name in needed]


def _code_of(module: Module) -> str:
    from .notebook import module_notebook

    return "\n".join(cell.source for cell in module_notebook(module).cells if cell.cell_type == "code")


def unfinished_prerequisites(course: Course, module: Module) -> list[tuple[Module, list[Stub] | None]]:
    """Each earlier module this one builds on whose package file is missing or still has stubs."""
    unfinished = []
    for other in prerequisites(course, module):
        stubs = package_stubs(course, other)
        if stubs is None or stubs:
            unfinished.append((other, stubs))
    return unfinished


def prerequisite_problem(course: Course, module: Module) -> str:
    """One line saying which earlier modules must be completed before `module`, or "" when none."""
    unfinished = unfinished_prerequisites(course, module)
    if not unfinished:
        return ""
    parts = []
    for other, stubs in unfinished:
        file = other.package_file(course.root).relative_to(course.root)
        if stubs is None:
            parts.append(f"{other.name} ({file} does not exist yet)")
        else:
            count = f"{len(stubs)} unfinished part{'s' * (len(stubs) != 1)}"
            parts.append(f"{other.name} ({file} still has {count}, first: {stubs[0].describe()})")
    names = [other.name for other, _ in unfinished]
    return (f"{module.name} builds on {' and '.join(parts)}: complete {' and '.join(names)} first, "
            f"with `tito module complete {names[0]}`")


# ------------------------------------------------------------------------------------------- workspaces

def is_workspace(course: Course) -> bool:
    return bool(workspace_settings(course))


def workspace_settings(course: Course) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(course.root / SETTINGS, encoding="utf-8")
    return dict(parser[SECTION]) if parser.has_section(SECTION) else {}


def require_course_repository(course: Course, command: str) -> None:
    """Instructor commands work on the course's lessons and reference package, which a workspace does not have."""
    if is_workspace(course):
        raise TitoError(f"{course.root} is a student workspace, not the course repository: `{command}` is an "
                        f"instructor's command (run it in the course repository)", 2)


def require_workspace(course: Course, command: str) -> None:
    if not is_workspace(course):
        raise TitoError(f"{course.root} is the course repository, not a student workspace: make one with "
                        f"`tito student init DIR`, then run `{command}` inside it", 2)


@dataclass
class Made:
    """What `init_workspace` made."""

    root: Path
    modules: list[Module]
    stubs: dict[str, int]       # module name -> unfinished parts
    tests: list[str]            # the package test files copied
    released: list[str]         # modules released first (default release folder only)
    checked_files: int          # files the no-leak check read


def init_workspace(course: Course, target: Path, release_dir: Path | None = None, student: str | None = None,
                   say: Callable[[str], None] = lambda text: None, record_origin: bool = True) -> Made:
    """Make a student workspace in `target` (absent or empty) from the release notebooks; all or nothing.

    The workspace records where it came from (the course, its release and course folders) so that `tito
    student submit` and `tito student update` find them; a kit, made to be copied to other machines, does not.
    """
    from .coursefolder import course_folder, grading_settings
    from .submission import STUDENT_ID

    if is_workspace(course):
        raise TitoError(f"{course.root} is already a student workspace: run `tito student init` in the course "
                        f"repository", 2)
    target = absolute_path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        kind = "folder" if target.is_dir() else "file"
        raise TitoError(f"{target} is a {kind} that is not empty: choose a new folder for the workspace", 2)
    if student is not None and not STUDENT_ID.fullmatch(student):
        raise TitoError(f"'{student}' is not usable as a student id: use letters, digits, '.', '_', '-' or '@'", 2)
    settings = grading_settings(course)
    folder = course_folder(course)
    released: list[str] = []
    if release_dir is None:
        release_dir = folder.root / "release"
        released = _release_stale(course, release_dir, say)
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
    return Made(target, made, stubs, tests, released, checked)


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


def _release_stale(course: Course, release_dir: Path, say: Callable[[str], None]) -> list[str]:
    """Release (with nbgrader) every module of the course whose release is missing or older than its lesson;
    the names released. A release that is up to date is reused: releasing runs every solution in a kernel."""
    from .grading import release

    stale = [module for module in course.modules if not release_is_current(course, module, release_dir)]
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
    from .coursefolder import course_folder, source_notebook

    source = course_folder(course).source(module)
    if not (release_dir / module.name / f"{module.short}.ipynb").exists() or not source.exists():
        return False
    if not module.dev_file.exists():
        return True  # nothing to compare with: the release is all there is
    return _cells(nbformat.read(source, as_version=4)) == _cells(source_notebook(module))


def _cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str, dict]]:
    return [(cell.cell_type, cell.source, dict(cell.metadata.get("nbgrader", {}))) for cell in notebook.cells]


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
    from .coursefolder import JUPYTEXT_CELL_KEYS

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
    from .exporter import install, render

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


# ------------------------------------------------------------------------------------------------- leaks

def workspace_leaks(course: Course, folder: Path) -> tuple[list[Leak], int]:
    """Every solution line of the course's lessons found in any file of `folder` (a workspace), and how many
    files were read. The rule is the release's (`tito.grading.check_no_leaks`): a workspace hands out every
    module at once, so no file may show a solution line of any module.
    """
    from .coursefolder import grading_settings, source_notebook

    delimiters = grading_settings(course).delimiters
    secrets: dict[str, str] = {}
    for module in course.modules:
        if module.dev_file.exists():
            secrets.update(secret_lines(source_notebook(module), module.name, delimiters))
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    return [leak for path in files for leak in leaks_in_file(secrets, path)], len(files)


# ------------------------------------------------------------------------------------------------ submit

@dataclass
class Submitted:
    notebook: Path
    destination: Path
    student: str
    replaced: bool
    last_test: dict | None


def nothing_answered(notebook: nbformat.NotebookNode) -> bool:
    """Whether every solution cell is still the release's stub: code that raises NotImplementedError, written
    answers that say YOUR ANSWER HERE."""
    cells = [cell for cell in notebook.cells if cell.get("metadata", {}).get("nbgrader", {}).get("solution")]
    untouched = [cell for cell in cells if (find_stubs(cell.source) if cell.cell_type == "code"
                                            else ANSWER_STUB in cell.source)]
    return bool(cells) and len(untouched) == len(cells)


def workspace_id(root: Path) -> str:
    """The workspace's random id (.tito/workspace-id, which git ignores), made on first use."""
    path = root / ".tito" / "workspace-id"
    if not path.is_file():
        path.parent.mkdir(exist_ok=True)
        path.write_text(secrets.token_hex(16) + "\n", encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


def submit(workspace: Course, module: Module, course_dir: Path | None = None, student: str | None = None) -> Submitted:
    """Copy the module's notebook, byte for byte, to <course_dir>/submitted/<student>/<module>/<short>.ipynb.

    Only the workspace's own student hands in; the first submission of a workspace that records no student
    or course folder (a kit) records the ones it used. No symbolic link is followed, on either side.

    Who may hand in under an id: the first submission under it writes submitted/<student>/.tito-owner.json
    (the Unix user and this workspace's random id), and a submission from another user or workspace is
    refused. On one machine every student may be the same Unix user, and a copy of a workspace carries its
    id: this stops mistakes and casual overwrites, not a classmate who copies the workspace (see
    docs/instructor.md: a class of untrusted students hands in through the hub's exchange).
    """
    from .submission import STUDENT_ID

    require_workspace(workspace, f"tito student submit {module.name}")
    settings = workspace_settings(workspace)
    shown = module.student_notebook.relative_to(workspace.root)
    data = _read_regular_file(module.student_notebook, shown)
    try:
        nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as error:  # nbformat raises many kinds for a broken file
        raise TitoError(f"{shown} is not a readable notebook ({type(error).__name__}): fix it before submitting",
                        2) from None
    recorded = settings.get("student", "")
    student = student or recorded or getpass.getuser()
    if not STUDENT_ID.fullmatch(student):
        raise TitoError(f"'{student}' is not usable as a student id: use letters, digits, '.', '_', '-' or '@' "
                        f"(--student ID)", 2)
    if recorded and student != recorded:
        raise TitoError(f"this workspace is {recorded}'s, so it hands in only {recorded}'s work, not {student}'s", 2)
    folder = _submission_folder(course_dir, settings, module)
    _claim(folder, student, {"uid": os.getuid(), "workspace": workspace_id(workspace.root)})
    destination, replaced = _write_without_links(folder, ["submitted", student, module.name, module.student_notebook.name],
                                                 data)
    remembered = {"course_dir": str(folder), "student": student}
    _fill_in_settings(workspace, remembered)  # where empty (a kit): the next submit needs neither option
    return Submitted(module.student_notebook, destination, student, replaced, results.load(workspace).get(module.name))


def _claim(folder: Path, student: str, owner: dict) -> None:
    """Make sure `owner` may hand in under `student` in the course folder (see `submit`), recording it the
    first time."""
    record = folder / "submitted" / student / OWNER_FILE
    if record.is_symlink() or record.exists():
        try:
            found = json.loads(_read_regular_file(record, record))
        except ValueError:
            found = None
        if found != owner:
            raise TitoError(f"{student}'s submissions in {folder} were handed in from another workspace or user: "
                            f"nothing was submitted (if {student} is you, ask your instructor)", 2)
        return
    existing = folder / "submitted" / student
    if existing.is_dir() and not existing.is_symlink() and any(existing.iterdir()):
        raise TitoError(f"{existing} holds work that was not handed in with `tito student submit`: nothing was "
                        f"submitted (if {student} is you, ask your instructor)", 2)
    _write_without_links(folder, ["submitted", student, OWNER_FILE], json.dumps(owner).encode())


def _read_regular_file(path: Path, shown: Path) -> bytes:
    """The bytes of a regular file, refusing a symbolic link (it could hand in any file the student can read)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a FIFO must not block
    except FileNotFoundError:
        raise TitoError(f"no notebook to submit: {shown} does not exist", 2) from None
    except OSError:
        if path.is_symlink():
            raise TitoError(f"{shown} is a symbolic link: submit the notebook itself (copy it in place of the link)",
                            2) from None
        raise
    with os.fdopen(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise TitoError(f"{shown} is not a regular file: submit the notebook itself", 2)
        return file.read()


def _write_without_links(root: Path, parts: list[str], data: bytes) -> tuple[Path, bool]:
    """Write `data` to root/parts[0]/.../parts[-1], making missing folders, through no symbolic link (a planted
    link would make tito write elsewhere, e.g. over another student's work); whether a file was replaced."""
    folder = root
    for part in parts[:-1]:
        folder = folder / part
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise TitoError(f"{folder} is a symbolic link or not a folder: nothing was submitted (ask your "
                            f"instructor to remove it)", 2)
        folder.mkdir(exist_ok=True)
    destination = folder / parts[-1]
    if destination.is_symlink() or (destination.exists() and not destination.is_file()):
        raise TitoError(f"{destination} is a symbolic link or not a file: nothing was submitted (ask your instructor "
                        f"to remove it)", 2)
    replaced = destination.exists()
    descriptor, scratch = tempfile.mkstemp(prefix=f".{parts[-1]}.", suffix=".partial", dir=folder)  # new: no link
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.chmod(scratch, 0o644)
        os.replace(scratch, destination)  # replaces a name, never writes through one
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
    return destination, replaced


def _fill_in_settings(workspace: Course, values: dict[str, str]) -> None:
    """Write each value on its `key =` line of settings.ini where that line is empty (a kit's), keeping the rest."""
    path = workspace.root / SETTINGS
    text = path.read_text(encoding="utf-8")
    for key, value in values.items():
        text = re.sub(rf"^{key}[ \t]*=[ \t]*$", lambda _: f"{key} = {value}", text, count=1, flags=re.MULTILINE)
    path.write_text(text, encoding="utf-8")


def _submission_folder(course_dir: Path | None, settings: dict[str, str], module: Module) -> Path:
    """The nbgrader course folder to hand in to: --course (a course folder, or a course repository), else the
    one of the course this workspace was made from."""
    if course_dir is None:
        if not settings.get("course_dir"):
            raise TitoError("this workspace does not know where to submit: pass --course PATH (the course folder "
                            "holding release/ and submitted/)", 2)
        course_dir = Path(settings["course_dir"])
    course_dir = absolute_path(course_dir)
    if (course_dir / SETTINGS).is_file() and not (course_dir / "release").is_dir():
        course_dir = load_course(course_dir).course_dir  # a course repository: its nbgrader folder
    if not course_dir.is_dir():
        raise TitoError(f"no course folder at {course_dir}: pass --course PATH (the folder holding release/ and "
                        f"submitted/)", 2)
    if not (course_dir / "release" / module.name).is_dir():
        raise TitoError(f"{course_dir} has no release of {module.name} (no release/{module.name}/): is it the "
                        f"course folder, and has the module been released?", 2)
    return course_dir


# --------------------------------------------------------------------------------------------- progress

def progress(course: Course, module: Module) -> tuple[str, str]:
    """A student's progress on a module, as rich text: its state in a few words (complete, written, how many parts
    are left), and the next step ("" when complete)."""
    from rich.markup import escape

    from .notebook import module_notebook

    try:
        left = notebook_stubs(module_notebook(module))
        packaged = package_stubs(course, module)
    except TitoError as error:
        return "[red]unreadable[/]", escape(str(error))
    if packaged is not None and not packaged:
        return "[green]complete[/]", ""
    if not left:
        return "[yellow]written[/]", escape(f"run `tito module complete {module.name}`")
    return f"{len(left)} part{'s' * (len(left) != 1)} to write", escape(f"write {left[0].describe()}")


# -------------------------------------------------------------------------------------------------- lab

def lab_command(course: Course, module: Module | None, port: int | None, browser: bool,
                extra: list[str]) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that start JupyterLab on the course or workspace folder.

    The folder goes first on PYTHONPATH, so every kernel imports this folder's `tinytorch` (a kernel starts
    in the notebook's own folder, where Python would not find it). The server listens on 127.0.0.1 only.
    """
    command = _jupyterlab(course.root, "127.0.0.1", port, browser)
    # nbgrader's formgrader is the instructor's (`tito nbgrader formgrader`, docs/instructor.md); here it would only
    # warn, twice, that it finds no nbgrader_config.py.
    command.append("--ServerApp.jpserver_extensions=nbgrader.server_extensions.formgrader=False")
    if module is not None:
        command.append(str(module.source.relative_to(course.root)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(course.root), os.environ.get("PYTHONPATH")])))
    return command + list(extra), without_news(course.root, env)


# JupyterLab's plugin that asks "Would you like to get notified about official Jupyter news?" and then fetches
# news from the internet; the hub turns it off the same way (hub/student/labconfig/page_config.json).
NEWS_PLUGIN = "@jupyterlab/apputils-extension:announcements"


def without_news(root: Path, env: dict[str, str]) -> dict[str, str]:
    """`env` for a JupyterLab on `root` that shows no news toast: a page config of tito's own, in root/.tito/,
    goes first on JUPYTER_CONFIG_PATH, so the user's own Jupyter settings (~/.jupyter) are neither changed nor
    needed."""
    settings = root / ".tito" / "jupyter"
    (settings / "labconfig").mkdir(parents=True, exist_ok=True)
    (settings / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {NEWS_PLUGIN: True}}, indent=1) + "\n", encoding="utf-8")
    return dict(env, JUPYTER_CONFIG_PATH=os.pathsep.join(filter(None, [str(settings), env.get("JUPYTER_CONFIG_PATH")])))


def formgrader_command(course: Course, ip: str, port: int, browser: bool,
                       extra: list[str]) -> tuple[list[str], dict[str, str]]:
    """JupyterLab in the course folder, where nbgrader's formgrader reads nbgrader_config.py (started anywhere
    else it lists no assignment and says nothing). nbgrader runs `alembic` by bare name: its folder goes on PATH.

    The formgrader renders a submission with tito's mathjax macro first on nbconvert's search path
    (tito/templates/jupyter/: a Content-Security-Policy, and MathJax from this server, never a CDN); tito's
    MathJax settings are served from tito/templates/static/.
    """
    import sys

    from .coursefolder import course_folder, write_config

    write_config(course)
    command = _jupyterlab(course_folder(course).root, ip, port, browser)
    templates = Path(__file__).with_name("templates")
    command.append(f"--ServerApp.extra_static_paths={[str(templates / 'static')]}")  # /static/tito-mathjax-config.js
    env = dict(os.environ, PATH=os.pathsep.join(filter(None, [os.path.dirname(sys.executable), os.environ.get("PATH")])),
               JUPYTER_PATH=os.pathsep.join(filter(None, [str(templates / "jupyter"), os.environ.get("JUPYTER_PATH")])))
    return command + list(extra), without_news(course.root, env)


def free_port(ip: str, first: int, tries: int = 50) -> int:
    """The first port from `first` on that nothing listens on at `ip` (JupyterLab would move on by itself, but then
    tito could not say which port to tunnel to)."""
    import socket

    for port in range(first, first + tries):
        with socket.socket() as probe:
            try:
                probe.bind((ip, port))
                return port
            except OSError:
                continue
    raise TitoError(f"no free port on {ip} from {first} to {first + tries - 1}: pass --port N")


def _jupyterlab(root: Path, ip: str, port: int | None, browser: bool) -> list[str]:
    import sys

    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}", f"--ServerApp.ip={ip}"]
    if port is not None:
        command.append(f"--ServerApp.port={port}")
    if not browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI machines run as root; JupyterLab refuses it otherwise
    return command
