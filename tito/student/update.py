"""`tito student update`: bring modules released after a workspace (or kit) was made into it.

What goes in: the student's workspace, and where the newer modules come from: a newer kit (a folder or a git
address, `--from`), or else the course repository the workspace was made from (its release folder). What
comes out: each new module's notebook, its stub package file and its package tests, added to the workspace,
and the new module listed in settings.ini. Nothing the workspace already has is touched, so a student's work
is safe; the new files pass the no-leak check before they land (the newer workspace is built and checked in a
scratch folder first).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..course import SETTINGS, Course, load_course, require_workspace, workspace_settings
from ..errors import TitoError
from .workspace import IGNORED, init_workspace

_MODULES = re.compile(r"^modules\s*=(?:[ \t]*\n[ \t]+\S+)+", re.MULTILINE)


@dataclass
class Updated:
    added: list[str]      # new modules, in course order
    files: list[str]      # files added, relative to the workspace


def update_workspace(workspace: Course, source: str | None = None,
                     say: Callable[[str], None] = lambda text: None) -> Updated:
    """Add the modules of the newer course (a kit at `source`, else the course this workspace came from)."""
    require_workspace(workspace, "tito student update")
    with tempfile.TemporaryDirectory(prefix="tito-update-") as scratch:
        newer = _newer_workspace(workspace, source, Path(scratch), say)
        if newer.course_id != workspace.course_id:
            raise TitoError(f"{source or newer.root} is the course '{newer.course_id}', this workspace is "
                            f"'{workspace.course_id}': nothing was added", 2)
        have = [module.name for module in workspace.modules]
        added = [module for module in newer.modules if module.name not in have]
        files = []
        for module in added:
            files += _copy_missing(newer.root, workspace.root, module.directory.relative_to(newer.root))
        # The new modules' stub files and tests (and a new subpackage's __init__.py); the student's stay as they are.
        files += _copy_missing(newer.root, workspace.root, Path("tinytorch"))
        files += _copy_missing(newer.root, workspace.root, Path("tests"))
        if added:  # the newer course's order; a module it no longer has stays, last
            names = [module.name for module in newer.modules]
            _list_modules(workspace, names + [name for name in have if name not in names])
    return Updated([module.name for module in added], files)


def _newer_workspace(workspace: Course, source: str | None, scratch: Path, say: Callable[[str], None]) -> Course:
    """The course as it is now, as a workspace in `scratch`: a kit (cloned when `source` is a git address), or
    one made from the course repository this workspace records."""
    if source is not None:
        folder = Path(source).expanduser()
        if not folder.is_dir():
            say(f"fetching {source} ...")
            folder = scratch / "kit"
            cloned = subprocess.run(["git", "clone", "--quiet", "--depth", "1", source, str(folder)],
                                    capture_output=True, text=True)
            if cloned.returncode != 0:
                said = cloned.stderr.strip().splitlines()
                raise TitoError(f"cannot fetch {source}: {said[-1] if said else 'git clone failed'}", 2)
        newer = load_course(folder)
        if newer.root != folder.resolve():
            raise TitoError(f"{source} is not a tinytorch kit (no {SETTINGS} at its top)", 2)
        require_workspace(newer, "tito student update --from KIT")
        return newer
    settings = workspace_settings(workspace)
    if not settings.get("course") or not Path(settings["course"]).is_dir():
        raise TitoError("this workspace does not know where its course is: pass --from KIT (the newer kit's folder "
                        "or git address, from your instructor)", 2)
    course = load_course(Path(settings["course"]))
    release = Path(settings["release"]) if settings.get("release") else None
    say(f"making the newer workspace from {course.root} ...")
    return load_course(init_workspace(course, scratch / "newer", release, say=say).root)


def _copy_missing(source_root: Path, target_root: Path, relative: Path) -> list[str]:
    """Copy the files under source_root/relative that target_root lacks; never replace one. The files copied."""
    source = source_root / relative
    paths = [source] if source.is_file() else sorted(path for path in source.rglob("*") if path.is_file())
    copied = []
    for path in paths:
        if IGNORED(str(path.parent), [path.name]):
            continue
        destination = target_root / path.relative_to(source_root)
        if destination.exists():
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
        copied.append(str(path.relative_to(source_root)))
    return copied


def _list_modules(workspace: Course, names: list[str]) -> None:
    """Rewrite the workspace's `modules =` list in settings.ini, keeping every other line (and comment) as it is."""
    path = workspace.root / SETTINGS
    listed = "".join(f"\n    {name}" for name in names)
    text, count = _MODULES.subn(f"modules ={listed}", path.read_text(encoding="utf-8"), count=1)
    if count != 1:
        raise TitoError(f"{path} has no `modules =` list to extend: the new modules' files were added, list them "
                        f"there by hand", 2)
    path.write_text(text, encoding="utf-8")
