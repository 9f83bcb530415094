"""A student kit: the course as students get it, with no solution anywhere in it.

`tito nbgrader kit OUT` takes the released modules and makes OUT, a git repository with one commit, ready to
push as a classroom template:

    OUT/README.md            the student's two commands: install, open the lab
    OUT/pyproject.toml       `pip install -e .` installs the course tool and the student's own `tinytorch`
    OUT/settings.ini         a student workspace (see tito/student/workspace.py): modules, notebooks, stubs, tests
    OUT/modules/...          the release notebooks
    OUT/tinytorch/...        the student's package: every part a student writes is a stub
    OUT/tests/...            the package tests students may see
    OUT/tito/...             the course tool without its grading wing (tito/grading/, and the `tito nbgrader`
                             commands that need it): a student's tito has no `nbgrader` command

What goes in: a course repository whose course folder holds every module's release (`tito nbgrader kit`
releases what is missing or stale first). What comes out: OUT, written only when the whole kit is made and
the no-leak check finds no solution line of any module in any of its files; otherwise nothing.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..course import Course, require_course_repository
from ..errors import TitoError
from .workspace import (COMMANDS, IGNORED, init_workspace, pytest_settings, require_new_folder, scratch_folder,
                        workspace_leaks)

TOOL = Path(__file__).resolve().parent.parent  # the `tito` package, copied into the kit
# What of tito only an instructor runs: the grading wing, and the commands that compose it (nbgrader, gradescope).
GRADING_ONLY = ("grading", "nbgrader.py", "gradescope.py")
# Course dependencies only an instructor or the course's own tests need.
INSTRUCTOR_ONLY = ("nbgrader", "playwright")

README = """\
# {title}

Your copy of the course: the lessons as notebooks, your own `tinytorch` package (stubs until you write
them), its tests, and `tito`, the course's command line.

```bash
pip install -e .    # once, in a virtual environment: installs tito, JupyterLab and your own tinytorch
tito lab            # open the lessons in JupyterLab (a plain `jupyter lab` works too)
```

Python 3.10 or newer. After the install, `import tinytorch` is the package in this folder, whatever folder
or notebook you are in. Start with `modules/{first.name}/{first.short}.ipynb`: write your code where it says
`# YOUR CODE HERE`, then run `tito module complete {first.name}`.

""" + COMMANDS


@dataclass
class Kit:
    root: Path
    modules: list[str]
    files: int            # files in the kit (and read by the no-leak check)
    commit: str


def build_kit(course: Course, out: Path, say: Callable[[str], None] = lambda text: None) -> Kit:
    """Make the student kit in `out` (absent or empty) from the course folder's releases; all or nothing."""
    require_course_repository(course, "tito nbgrader kit")
    out = require_new_folder(out, "kit")
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = scratch_folder(out)
    try:
        made = init_workspace(course, scratch / "kit", record_origin=False, say=say)
        root = made.root
        shutil.copytree(TOOL, root / "tito", ignore=_without_grading)
        (root / "pyproject.toml").write_text(_pyproject(course), encoding="utf-8")
        (root / "README.md").write_text(README.format(title=course.title, first=made.modules[0]), encoding="utf-8")
        say("checking that no solution line is anywhere in the kit, the course tool included ...")
        leaks, files = workspace_leaks(course, root)
        if leaks:
            raise TitoError(f"the kit would show solutions ({len(leaks)} line{'s' * (len(leaks) != 1)}), e.g. "
                            f"{str(leaks[0]).replace(str(root), str(out))}: no kit was written")
        commit = _commit(root, f"{course.title}: student kit")
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(root, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return Kit(out, [module.name for module in made.modules], files, commit)


def _without_grading(folder: str, names: list[str]) -> set[str]:
    """What `shutil.copytree` leaves out of the kit's tito: caches, and the grading wing with its commands."""
    skipped = set(IGNORED(folder, names))
    if Path(folder) in (TOOL, TOOL / "commands"):
        skipped |= {name for name in names if name in GRADING_ONLY}
    return skipped


def _pyproject(course: Course) -> str:
    """One install for a student: the course tool and the student's package, with what the tool needs."""
    project = tomllib.loads((course.root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project.get("optional-dependencies", {})
    needed = [*project.get("dependencies", []), *extras.get("course", []), *extras.get("test", [])]
    needed = [requirement for requirement in needed if not requirement.startswith(INSTRUCTOR_ONLY)]
    listed = "".join(f"\n    {requirement!r}," for requirement in needed).replace("'", '"')
    return f"""\
# `pip install -e .` installs tito and this folder's tinytorch (yours), so every Python and every Jupyter
# kernel of the environment imports your package.
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "tinytorch"
version = "{project.get("version", "0.1.0")}"
description = "{course.title}: a student's copy"
requires-python = "{project.get("requires-python", ">=3.10")}"
dependencies = [{listed}
]

[project.scripts]
tito = "tito.main:main"

[tool.setuptools.packages.find]
include = ["tinytorch*", "tito*"]

{pytest_settings(course)}"""


def _commit(root: Path, message: str) -> str:
    """Make `root` a git repository with one commit of everything in it; the commit's id."""
    identity = ["-c", "user.name=tito", "-c", "user.email=tito@localhost"]
    steps = {"init": ["init", "--quiet", "--initial-branch=main"], "add": ["add", "--all"],
             "commit": [*identity, "commit", "--quiet", "--no-verify", "-m", message]}
    for step, command in steps.items():
        try:
            subprocess.run(["git", *command], cwd=root, check=True, capture_output=True, text=True)
        except FileNotFoundError:
            raise TitoError("git is not installed: the kit is a git repository, so `tito nbgrader kit` needs git",
                            2) from None
        except subprocess.CalledProcessError as error:
            said = (error.stderr or error.stdout).strip().splitlines()
            raise TitoError(f"`git {step}` failed in the kit: {said[-1] if said else f'exit {error.returncode}'}") \
                from None
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, check=True, capture_output=True,
                          text=True).stdout.strip()
