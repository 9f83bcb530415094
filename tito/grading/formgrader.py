"""`tito nbgrader formgrader`: JupyterLab with nbgrader's formgrader in the course folder."""
from __future__ import annotations

import os
import socket
import sys

from ..course import Course
from ..coursefolder import course_folder, write_config
from ..errors import TitoError
from ..jupyterlab import jupyterlab_command, without_news
from .feedback import TEMPLATES


def formgrader_command(course: Course, ip: str, port: int, browser: bool,
                       extra: list[str]) -> tuple[list[str], dict[str, str]]:
    """JupyterLab in the course folder, where nbgrader's formgrader reads nbgrader_config.py (started anywhere
    else it lists no assignment and says nothing). nbgrader runs `alembic` by bare name: its folder goes on PATH.

    The formgrader renders a submission with tito's mathjax macro first on nbconvert's search path
    (tito/grading/templates/jupyter/: a Content-Security-Policy, and MathJax from this server, never a CDN);
    tito's MathJax settings are served from tito/grading/templates/static/.
    """
    write_config(course)
    command = jupyterlab_command(course_folder(course).root, ip, port, browser)
    command.append(f"--ServerApp.extra_static_paths={[str(TEMPLATES / 'static')]}")  # /static/tito-mathjax-config.js
    env = dict(os.environ, PATH=os.pathsep.join(filter(None, [os.path.dirname(sys.executable), os.environ.get("PATH")])),
               JUPYTER_PATH=os.pathsep.join(filter(None, [str(TEMPLATES / "jupyter"), os.environ.get("JUPYTER_PATH")])))
    return command + list(extra), without_news(course.root, env)


def free_port(ip: str, first: int, tries: int = 50) -> int:
    """The first port from `first` on that nothing listens on at `ip` (JupyterLab would move on by itself, but then
    tito could not say which port to tunnel to)."""
    for port in range(first, first + tries):
        with socket.socket() as probe:
            try:
                probe.bind((ip, port))
                return port
            except OSError:
                continue
    raise TitoError(f"no free port on {ip} from {first} to {first + tries - 1}: pass --port N")
