"""`tito student submit` to a course folder: a module's notebook, byte for byte, into
<course folder>/submitted/<student>/<module>/, through no symbolic link, under an id only its owner uses."""
from __future__ import annotations

import getpass
import json
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .. import results
from ..course import SETTINGS, Course, Module, load_course, require_workspace, workspace_settings
from ..coursefolder import STUDENT_ID
from ..errors import TitoError
from ..notebook import is_student_work
from ..stubs import find_stubs
from .workspace import absolute_path, workspace_id


# Who handed in under a student id, in the course folder: submitted/<student>/.tito-owner.json (see `submit`).
OWNER_FILE = ".tito-owner.json"
ANSWER_STUB = "YOUR ANSWER HERE"  # nbgrader's text in a written-answer cell


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
    cells = [cell for cell in notebook.cells if is_student_work(cell)]
    untouched = [cell for cell in cells if (find_stubs(cell.source) if cell.cell_type == "code"
                                            else ANSWER_STUB in cell.source)]
    return bool(cells) and len(untouched) == len(cells)


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
