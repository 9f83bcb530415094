"""Shared fixtures: a private copy of the course, so tests that change files never touch the repository."""
from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Grading runs in the bubblewrap sandbox; where it is missing, tests that autograde skip with this reason.
needs_sandbox = pytest.mark.skipif(shutil.which("bwrap") is None,
                                   reason="autograding needs bubblewrap (apt-get install bubblewrap)")
COURSE_FILES = ["settings.ini", "pyproject.toml", "modules", "tinytorch", "tests"]


def copy_course(destination: Path) -> Path:
    """Copy what a course needs (lessons, package, tests, settings) into `destination`."""
    destination.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.ipynb", ".ipynb_checkpoints", ".hypothesis")
    for name in COURSE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=ignore)
        else:
            shutil.copy2(source, destination / name)
    return destination


@contextlib.contextmanager
def passable(paths: list[Path]):
    """Let every user through each folder above `paths` (o+x, nothing listed), as long as the block runs."""
    changed: list[tuple[Path, int]] = []
    try:
        for path in paths:
            for folder in [*reversed(path.resolve().parents), path.resolve()]:
                mode = folder.stat().st_mode
                if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
                    os.chmod(folder, stat.S_IMODE(mode) | stat.S_IXOTH)
                    changed.append((folder, stat.S_IMODE(mode)))
        yield
    finally:
        for folder, mode in reversed(changed):
            os.chmod(folder, mode)


@pytest.fixture
def course_copy(tmp_path) -> Path:
    return copy_course(tmp_path / "course-copy")


# The tito of this checkout, whichever copy of the course is installed; its kernels and children see no trace
# of it (PYTHONPATH stays unset), as for a user.
TITO = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from tito.main import main; sys.exit(main())"


def run_tito(*args: str, cwd: Path, timeout: int = 600, columns: int = 200) -> subprocess.CompletedProcess:
    """Run the real `tito` command line in a subprocess, as a user would, in a terminal `columns` wide."""
    return subprocess.run([sys.executable, "-c", TITO, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=_plain_env(columns))


def run_with_package_from(folder: Path, script: str) -> subprocess.CompletedProcess:
    """Run `script` in a fresh Python that imports tinytorch from `folder` only (a partial copy of the package).

    `-S` skips site-packages' .pth files: an editable install (`pip install -e .`) adds an import hook mapping
    tinytorch to the checkout, which would supply the very modules the copy left out. The installed libraries
    (NumPy, ...) stay importable through PYTHONPATH.
    """
    import numpy

    site_packages = Path(numpy.__file__).resolve().parent.parent
    return subprocess.run([sys.executable, "-S", "-c", script], cwd=folder, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": f"{folder}:{site_packages}", "PATH": "/usr/bin:/bin"})


def _plain_env(columns: int = 200) -> dict:
    import os

    env = dict(os.environ, COLUMNS=str(columns), NO_COLOR="1")
    env.pop("PYTHONPATH", None)
    return env


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items):
    """Groups for CI's parallel slow suite (`-n 2 --dist loadgroup`, pytest-xdist): a test file runs whole on one
    worker, so its module fixtures are built once; the files that grade in the sandbox share one worker, because a
    sandbox's Unix user (61000 and up) comes from one pool for every process and these tests count those users' processes."""
    sandboxed = {item.path for item in items if needs_sandbox.mark in item.iter_markers("skipif")}
    for item in items:
        item.add_marker(pytest.mark.xdist_group("sandbox" if item.path in sandboxed else item.path.name))
