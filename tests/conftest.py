"""Shared fixtures: a private copy of the course, so tests that change files never touch the repository."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
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


@pytest.fixture
def course_copy(tmp_path) -> Path:
    return copy_course(tmp_path / "course-copy")


def run_tito(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the real `tito` command line in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "tito.main", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=_plain_env())


def _plain_env() -> dict:
    import os

    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    env.pop("PYTHONPATH", None)
    return env
