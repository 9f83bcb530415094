"""`tito lab [MODULE]` (or `tito notebook MODULE`): JupyterLab on this course or workspace, using its own tinytorch."""
from __future__ import annotations

import os
import sys

from rich.markup import escape

from ..course import load_course
from ..ui import console
from ..student.lab import lab_command


def register(commands) -> None:
    parser = commands.add_parser("lab", aliases=["notebook"],
                                 help="open JupyterLab here (kernels import this folder's tinytorch)",
                                 description="Starts JupyterLab on this course or workspace; its kernels import the "
                                             "folder's own tinytorch. Arguments after `--` go to JupyterLab. "
                                             "Example: `tito lab 05` opens module 05's notebook.")
    parser.add_argument("module", nargs="?", metavar="MODULE", help="open this module's notebook (05_autograd, 05 or autograd)")
    parser.add_argument("--port", type=int, metavar="N", help="the port to listen on (127.0.0.1 only)")
    parser.add_argument("--no-browser", dest="browser", action="store_false", help="do not open a web browser")
    parser.set_defaults(handler=run)


def run(args) -> int:
    course = load_course()
    module = course.module(args.module) if args.module else None
    command, env = lab_command(course, module, args.port, args.browser, args.pytest_args)
    console.print(f"JupyterLab on {escape(str(course.root))} (kernels import {escape(str(course.root / 'tinytorch'))}); "
                  f"stop it with Ctrl+C")
    sys.stdout.flush()
    os.chdir(course.root)
    os.execve(command[0], command, env)  # JupyterLab takes over this process (Ctrl+C then reaches it alone)
