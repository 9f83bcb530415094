"""modules -> tinytorch: nbdev 3 exports each module's `#| export` cells into the package.

Each export runs in a scratch copy of the course layout, so nbdev never touches the real package until
the new files are complete; `install` then swaps them in and can put the old ones back.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import nbformat

from .course import PACKAGE, Course, Module
from .errors import TitoError
from .notebook import module_notebook

PYPROJECT = """[project]
name = "tinytorch"

[tool.nbdev]
lib_path = "tinytorch"
nbs_path = "modules"
"""


def render(course: Course, modules: list[Module]) -> dict[Path, str]:
    """The generated text of each module's package file, keyed by its path in the real package."""
    from nbdev.export import nb_export

    rendered = {}
    with tempfile.TemporaryDirectory(prefix="tito-export-") as scratch:
        scratch = Path(scratch)
        (scratch / "pyproject.toml").write_text(PYPROJECT)
        for module in modules:
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
            rendered[course.root / relative_file] = text.replace(notebook_path.name, source.name)
    return rendered


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
