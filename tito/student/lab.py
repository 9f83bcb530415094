"""`tito lab`: JupyterLab on a course or workspace folder, its kernels importing that folder's own tinytorch."""
from __future__ import annotations

import os

from ..course import Course, Module
from ..jupyterlab import jupyterlab_command, without_news


def lab_command(course: Course, module: Module | None, port: int | None, browser: bool,
                extra: list[str]) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that start JupyterLab on the course or workspace folder.

    The folder goes first on PYTHONPATH, so every kernel imports this folder's `tinytorch` (a kernel starts
    in the notebook's own folder, where Python would not find it). The server listens on 127.0.0.1 only.
    """
    command = jupyterlab_command(course.root, "127.0.0.1", port, browser)
    # nbgrader's formgrader is the instructor's (`tito nbgrader formgrader`, docs/instructor.md); here it would only
    # warn, twice, that it finds no nbgrader_config.py.
    command.append("--ServerApp.jpserver_extensions=nbgrader.server_extensions.formgrader=False")
    if module is not None:
        command.append(str(module.source.relative_to(course.root)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(course.root), os.environ.get("PYTHONPATH")])))
    return command + list(extra), without_news(course.root, env)
