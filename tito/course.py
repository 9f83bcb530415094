"""The course as settings.ini describes it: where it lives and which modules it teaches, in order; and whether
this folder is the course repository or a student's workspace (a `[workspace]` section)."""
from __future__ import annotations

import configparser
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import TitoError

SETTINGS = "settings.ini"
PACKAGE = "tinytorch"
SECTION = "workspace"  # settings.ini's section of a student workspace (or kit): where it came from, whose it is


@dataclass(frozen=True)
class Module:
    """One lesson: `modules/01_tensor/` holding `tensor_dev.py` (or, in a student workspace, `tensor.ipynb`)."""

    name: str
    directory: Path

    @property
    def number(self) -> str:
        return self.name.split("_", 1)[0]

    @property
    def short(self) -> str:
        return self.name.split("_", 1)[1]

    @property
    def dev_file(self) -> Path:
        return self.directory / f"{self.short}_dev.py"

    @property
    def student_notebook(self) -> Path:
        return self.directory / f"{self.short}.ipynb"

    @property
    def source(self) -> Path:
        """The file the module is written in: the percent-format dev file, else the student's notebook."""
        if self.dev_file.exists():
            return self.dev_file
        if self.student_notebook.exists():
            return self.student_notebook
        raise TitoError(f"module {self.name} has no source: expected {self.dev_file} or {self.student_notebook}")

    @property
    def package_module(self) -> str:
        """The dotted module the lesson exports to, from its `#| default_exp` line, e.g. `core.tensor`."""
        found = re.search(r"#\|\s*default_exp\s+([\w.]+)", self.source.read_text(encoding="utf-8"))
        if not found:
            raise TitoError(f"{self.source} has no `#| default_exp` line, so it exports nothing")
        return found.group(1)

    def package_file(self, root: Path) -> Path:
        return root / PACKAGE / (self.package_module.replace(".", "/") + ".py")


@dataclass(frozen=True)
class Course:
    root: Path
    course_id: str
    title: str
    modules: tuple[Module, ...]
    course_dir: Path
    timeout: int

    @property
    def package_dir(self) -> Path:
        return self.root / PACKAGE

    def module(self, name: str) -> Module:
        """Find a module by its full name (`01_tensor`), number (`01`, `1`) or short name (`tensor`)."""
        wanted = name.strip().lower()
        for module in self.modules:
            if wanted in (module.name, module.short) or (wanted.isdigit() and int(wanted) == int(module.number)):
                return module
        known = ", ".join(module.name for module in self.modules)
        raise TitoError(f"unknown module '{name}': this course has {known}", exit_code=2)

    def select(self, names: list[str] | None) -> list[Module]:
        """The modules named, in course order; all of them when no name is given."""
        if not names:
            return list(self.modules)
        chosen = {self.module(name).name for name in names}
        return [module for module in self.modules if module.name in chosen]


def find_root(start: Path | None = None) -> Path:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / SETTINGS).is_file():
            return folder
    raise TitoError(f"no {SETTINGS} in {here} or above: run tito inside a tinytorch course or student workspace", 2)


def load_course(root: Path | None = None) -> Course:
    root = find_root(root)
    settings = configparser.ConfigParser()
    try:
        settings.read(root / SETTINGS, encoding="utf-8")
        names = settings.get("course", "modules").split()
        malformed = [name for name in names if not re.fullmatch(r"\d+_\w+", name)]
        if malformed:
            raise ValueError(f"module names look like 01_tensor, got {', '.join(malformed)}")
        return Course(
            root=root,
            course_id=settings.get("course", "id"),
            title=settings.get("course", "title", fallback=settings.get("course", "id")),
            modules=tuple(Module(name, root / "modules" / name) for name in names),
            course_dir=root / settings.get("nbgrader", "course_dir", fallback="course"),
            timeout=settings.getint("nbgrader", "timeout", fallback=60),
        )
    except (configparser.Error, ValueError) as error:
        raise TitoError(f"{root / SETTINGS} is not a valid course file: {error}".replace("\n", " "), 2) from None



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
