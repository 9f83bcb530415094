"""modules -> tinytorch: nbdev 3 exports each module's `#| export` cells into the package.

A package file reads as a library: the nbgrader marker lines around solutions and hidden tests are left out
(a student's export, from a release notebook, has none to leave out).

Each export runs in a scratch copy of the course layout, so nbdev never touches the real package until
the new files are complete; `install` then swaps them in and can put the old ones back.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

import nbformat

from .course import PACKAGE, Course, Module
from .errors import TitoError
from .leaks import Delimiters
from .notebook import module_notebook

PYPROJECT = """[project]
name = "tinytorch"

[tool.nbdev]
lib_path = "tinytorch"
nbs_path = "modules"
"""


def render(course: Course, modules: list[Module]) -> dict[Path, str]:
    """The generated text of each module's package file, keyed by its path in the real package.

    Rendering a lesson (jupytext, then nbdev) takes most of a second, and `tito status` renders every module to
    tell whether its package file is in sync; so each result is kept in the user's cache, under a digest of all
    that it depends on (the lesson's bytes, its paths, this file and notebook.py, the versions of nbdev and
    jupytext): an unchanged lesson is rendered once.
    """
    rendered = {}
    for module in modules:
        key = _cache_key(course, module)
        text = _cached(key)
        if text is None:
            text = _render(course, module)
            _keep(key, text)
        rendered[module.package_file(course.root)] = text
    return rendered


def _render(course: Course, module: Module) -> str:
    from nbdev.export import nb_export

    with tempfile.TemporaryDirectory(prefix="tito-export-") as scratch:
        scratch = Path(scratch)
        (scratch / "pyproject.toml").write_text(PYPROJECT)
        source = module.source
        notebook_path = scratch / "modules" / module.name / (source.stem + ".ipynb")
        notebook_path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(module_notebook(module), notebook_path)
        relative_file = module.package_file(course.root).relative_to(course.root)
        with _working_directory(scratch):
            try:
                nb_export(str(notebook_path), lib_path=str(scratch / PACKAGE))
            except Exception as error:
                raise TitoError(f"nbdev could not export {source.relative_to(course.root)}: {error}") from None
        generated = scratch / relative_file
        if not generated.exists():
            raise TitoError(f"{source.relative_to(course.root)} has no `#| export` cells to put in {relative_file}")
        text = generated.read_text(encoding="utf-8")
        # nbdev points readers at the notebook it read; in a course the file to edit is the dev file.
        return without_markers(text.replace(notebook_path.name, source.name))


def without_markers(text: str) -> str:
    """`text` without its nbgrader marker lines (`### BEGIN SOLUTION`, ...); the code between them stays."""
    markers = Delimiters().markers
    return "".join(line for line in text.splitlines(keepends=True) if not line.lstrip().startswith(markers))


def _cache_key(course: Course, module: Module) -> str:
    from importlib.metadata import version

    here = Path(__file__).parent
    parts = [module.source.read_bytes(), module.source.relative_to(course.root).as_posix().encode(),
             module.package_file(course.root).relative_to(course.root).as_posix().encode(),
             version("nbdev").encode(), version("jupytext").encode(),
             (here / "exporter.py").read_bytes(), (here / "notebook.py").read_bytes()]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def _cache_file(key: str) -> Path:
    home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(home) / "tito" / "exports" / f"{key}.py"


def _cached(key: str) -> str | None:
    try:
        return _cache_file(key).read_text(encoding="utf-8")
    except (OSError, RuntimeError):  # not rendered yet, no cache folder to read, or no home at all
        return None


def _keep(key: str, text: str) -> None:
    try:
        _write_atomically(_cache_file(key), text)
    except (OSError, RuntimeError):
        pass  # a home that cannot be written, or none: render again next time


def snapshot(paths) -> dict[Path, str | None]:
    """What is at each path now (None: nothing), for `restore`."""
    return {path: path.read_text(encoding="utf-8") if path.exists() else None for path in paths}


def install(files: dict[Path, str]) -> dict[Path, str | None]:
    """Write the generated files (each atomically) and return what was there before, for `restore`."""
    previous = snapshot(files)
    for path, text in files.items():
        _write_atomically(path, text)
    return previous


def restore(previous: dict[Path, str | None]) -> None:
    for path, text in previous.items():
        if text is None:
            path.unlink(missing_ok=True)
        else:
            _write_atomically(path, text)


def stale_files(course: Course, modules: list[Module]) -> list[Path]:
    """Package files that differ from what exporting their modules would write now."""
    return [path for path, text in render(course, modules).items()
            if not path.exists() or path.read_text(encoding="utf-8") != text]


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


@contextlib.contextmanager
def _working_directory(path: Path):
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)
