"""Running nbgrader 0.9 in this process, as grading needs it, and undoing what a failed step did.

nbgrader is imported once per command (about 2.5 s) and its converters run here, with the settings of the
course's nbgrader_config.py; kernels are its subprocesses. Their chatter goes to a log file.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbgrader.api
from traitlets.config.loader import PyFileConfigLoader

from ..course import Course, Module
from ..coursefolder import MODULE_VARIABLE, course_folder, write_config


@contextlib.contextmanager
def nbgrader_session(course: Course, module: Module, log_path: Path):
    """nbgrader's configuration for `module`, with the process set up as nbgrader needs it, and a log file.

    - `alembic`, which nbgrader runs by bare name, is found next to this Python;
    - kernels import the reference `tinytorch` of the course root before any other;
    - TITO_MODULE names the module for the stub message in nbgrader_config.py;
    - what kernels and libraries print on stderr (warnings, mostly) goes to the log, not the screen.
    """
    folder = course_folder(course)
    write_config(course)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    saved = dict(os.environ)
    os.environ["PATH"] = os.pathsep.join(filter(None, [os.path.dirname(sys.executable), saved.get("PATH")]))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(course.root), saved.get("PYTHONPATH")]))
    os.environ[MODULE_VARIABLE] = module.name
    try:
        config = PyFileConfigLoader(folder.config.name, path=str(folder.root)).load_config()
        config.CourseDirectory.root = str(folder.root)
        with open(log_path, "w", encoding="utf-8") as log, stderr_into(log), quiet_warnings(), statements_kept():
            yield config, log
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def statements_kept():
    """For a while, nbgrader's Gradebooks of one database share one SQLAlchemy engine.

    nbgrader makes a new engine for every Gradebook it opens (about ten per graded submission), and a new
    engine compiles every SQL statement anew: that was a third of tito's own time per submission. The shared
    engine keeps the compiled statements; it is disposed before each Gradebook gets it, so every Gradebook
    still starts on a fresh connection (the gradebook file may have been put back by a Snapshot meanwhile).
    """
    original = nbgrader.api.create_engine
    engines = {}

    def shared(url, **options):
        key = (str(url), tuple(sorted(options.items())))
        if key not in engines:
            engines[key] = original(url, **options)
        engines[key].dispose()
        return engines[key]

    nbgrader.api.create_engine = shared
    try:
        yield
    finally:
        nbgrader.api.create_engine = original
        for engine in engines.values():
            engine.dispose()


@contextlib.contextmanager
def stderr_into(log):
    """Send file descriptor 2 (this process's and its kernels' stderr) into `log` for a while."""
    sys.stderr.flush()
    log.flush()
    saved = os.dup(2)
    os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def quiet_warnings():
    """SQLAlchemy 2 warns about nbgrader's queries on every use; the warnings say nothing to an instructor."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"nbgrader\..*")
        warnings.filterwarnings("ignore", message=r".*(relationship|SAWarning|missing an id field).*")
        yield


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


class Snapshot:
    """Copies of some files and folders, to put back exactly (absent ones are removed again) or to throw away."""

    def __init__(self, paths: list[Path]):
        self.scratch = Path(tempfile.mkdtemp(prefix="tito-snapshot-"))
        self.saved: list[tuple[Path, Path | None]] = []
        for index, path in enumerate(paths):
            copy = self.scratch / str(index)
            if path.is_dir():
                shutil.copytree(path, copy, symlinks=True)
            elif path.exists():
                shutil.copy2(path, copy)
            else:
                copy = None
            self.saved.append((path, copy))

    def restore(self) -> None:
        for path, copy in self.saved:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
            if copy is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(copy), str(path))

    def discard(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)


@contextlib.contextmanager
def all_or_nothing(paths: list[Path]):
    """Run a step; if it raises (or is interrupted), put `paths` back as they were."""
    snapshot = Snapshot(paths)
    try:
        yield
    except BaseException:
        snapshot.restore()
        raise
    finally:
        snapshot.discard()
