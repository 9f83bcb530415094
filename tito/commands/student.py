"""`tito student init DIR | submit MODULE | update | fetch MODULE | feedback MODULE`: a student's own workspace,
handing work in (to a course folder, or through nbgrader's exchange on a shared server), new modules (see
docs/student.md)."""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from rich.markup import escape
from rich.prompt import Confirm

from ..course import is_workspace, load_course
from ..errors import TitoError
from ..student.exchange import fetch, fetch_feedback, published_module, student_side
from ..student.submit import nothing_answered, submit
from ..student.update import update_workspace
from ..student.workspace import absolute_path, check_new_workspace, init_workspace
from ..ui import console, table


def register(commands) -> None:
    parser = commands.add_parser(
        "student", help="student workflow: make your workspace, submit a module",
        description="A student's copy of the course is a workspace (a kit clone, or made by `tito student init`); "
                    "see docs/student.md. Example: `tito student submit 01_tensor`.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = actions.add_parser("init", help="make a student workspace in DIR from the release notebooks",
                              description="Run in the course repository. DIR must be new or empty.")
    init.add_argument("directory", type=Path, metavar="DIR", help="the new workspace folder")
    init.add_argument("--release", type=Path, metavar="PATH",
                      help="a release folder (<module>/<name>.ipynb); default: the course's, released first if needed")
    init.add_argument("--student", metavar="ID", help="your student id, used by `tito student submit`")
    init.set_defaults(handler=run_init)
    hand_in = actions.add_parser("submit", help="hand a module's notebook in to the course folder for grading",
                                 description="Run in your workspace: copies modules/<m>/<name>.ipynb to "
                                             "<course>/submitted/<student>/<m>/<name>.ipynb.")
    hand_in.add_argument("module", metavar="MODULE", help="05_autograd, 05 or autograd")
    hand_in.add_argument("--course", type=Path, metavar="PATH",
                         help="the nbgrader course folder (default: the course this workspace was made from)")
    hand_in.add_argument("--student", metavar="ID", help="your student id (default: the workspace's, else your login)")
    hand_in.add_argument("--yes", action="store_true",
                         help="hand in without asking, even a notebook in which nothing was answered")
    _exchange_options(hand_in, "hand in through nbgrader's exchange on a shared server (JupyterHub) instead: ")
    hand_in.set_defaults(handler=run_submit)
    take = actions.add_parser("fetch", help="get a module your instructor published in nbgrader's exchange (JupyterHub)",
                              description="In a workspace: into modules/<m>/; elsewhere: into <m>/ of this folder, "
                                          "as nbgrader's Assignment List does. A copy you have is never overwritten.")
    take.add_argument("module", metavar="MODULE", help="01_tensor, 01 or tensor")
    _exchange_options(take)
    take.set_defaults(handler=run_fetch)
    back = actions.add_parser("feedback", help="get the feedback returned for your submissions of a module (JupyterHub)",
                              description="Into <m>/feedback/<time handed in>/<name>.html beside your notebook.")
    back.add_argument("module", metavar="MODULE", help="01_tensor, 01 or tensor")
    _exchange_options(back)
    back.set_defaults(handler=run_feedback)
    update = actions.add_parser("update", help="add the modules released since this workspace was made",
                                description="Run in your workspace. Adds each new module's notebook, stubs and tests; "
                                            "never changes a file you have.")
    update.add_argument("--from", dest="source", metavar="KIT",
                        help="a newer kit: its folder or git address (default: the course this workspace was made from)")
    update.set_defaults(handler=run_update)


def run_init(args) -> int:
    course = load_course()
    say = lambda text: console.print(f"  {escape(text)}")  # noqa: E731
    if args.release is None:  # the course folder's release/: the grading wing first releases what is missing or stale
        check_new_workspace(course, args.directory, args.student)  # refused before releasing, which takes minutes
        from ..grading.release import release_stale  # here, not at the top: a kit (a workspace) has no grading wing

        release_stale(course, say)
    made = init_workspace(course, args.directory, args.release, args.student, say=say)
    rows = [[module.name, escape(f"modules/{module.name}/{module.short}.ipynb"), str(made.stubs[module.name])]
            for module in made.modules]
    console.print(table(f"Workspace {made.root}", ["module", "your notebook", "parts to write"], rows))
    console.print(f"package tinytorch/ (stubs) | tests: {escape(', '.join(made.tests))}")
    console.print(f"no leak: no solution line in the {made.checked_files} files of the workspace")
    console.print(f"[green]ready[/]: cd {escape(str(made.root))} && tito lab   (then `tito module test "
                  f"{made.modules[0].name}`, `tito module complete {made.modules[0].name}`)")
    return 0


def _exchange_options(parser, prefix: str = "") -> None:
    parser.add_argument("--exchange", nargs="?", const="", metavar="PATH",
                        help=prefix + "nbgrader's exchange folder (default: the one your JupyterLab's nbgrader_config.py "
                                      "names)")
    parser.add_argument("--course-id", metavar="ID", help="the course's id in the exchange (default: the workspace's, "
                                                          "else nbgrader_config.py's)")


def _student_side(args):
    """The student's exchange settings and folder: a workspace's modules/, else the current folder."""
    try:
        workspace = load_course()
    except TitoError:
        workspace = None
    if workspace is not None and not is_workspace(workspace):
        raise TitoError(f"{workspace.root} is the course repository: run `tito student {args.action}` in your "
                        f"workspace or home folder", 2)
    folder = workspace.root / "modules" if workspace else absolute_path(Path.cwd())
    course_id = args.course_id or (workspace.course_id if workspace else None)
    context = "" if workspace else f"no settings.ini in {folder} or above (no workspace here), and "
    return student_side(folder, args.exchange or None, course_id, context), workspace


def run_fetch(args) -> int:
    side, workspace = _student_side(args)
    module = published_module(side, args.module)
    path = fetch(side, module)
    notebooks = ", ".join(sorted(item.name for item in path.glob("*.ipynb")))
    console.print(f"fetched {module}: {escape(str(path))}/ ({escape(notebooks)})")
    console.print(f"hand it in with `tito student submit {module}{' --exchange' if workspace else ''}` "
                  f"(or the Assignment List's Submit)")
    return 0


def run_feedback(args) -> int:
    side, _ = _student_side(args)
    module = published_module(side, args.module)
    for page in fetch_feedback(side, module):
        console.print(f"feedback: {escape(str(page))}")
    return 0


def run_exchange_submit(args) -> int:
    from ..student.exchange import submit as submit_to_exchange

    side, _ = _student_side(args)
    module = published_module(side, args.module)
    stamp = submit_to_exchange(side, module)
    console.print(f"submitted {escape(str(side.folder / module))}/ to course {escape(side.course_id)} at {escape(stamp)}; "
                  f"submitting again replaces it (your instructor collects the newest)")
    return 0


def run_submit(args) -> int:
    if args.exchange is not None or _outside_any_course():
        return run_exchange_submit(args)
    workspace = load_course()
    module = workspace.module(args.module)
    if not args.yes:
        confirm_unanswered(workspace, module)
    done = submit(workspace, module, args.course, args.student)
    last = done.last_test
    if last is None:
        console.print(f"[yellow]note[/]: you have not run `tito module test {module.name}` on this notebook")
    elif not last["passed"]:
        console.print(f"[yellow]note[/]: `tito module test {module.name}` failed at its last run: submitted anyway")
    verb = "replaced your earlier submission" if done.replaced else "submitted"
    console.print(f"{verb}: {escape(str(done.notebook.relative_to(workspace.root)))} -> {escape(str(done.destination))}")
    console.print(f"graded with `tito nbgrader autograde {module.name} --student {escape(done.student)}`")
    return 0


def confirm_unanswered(workspace, module) -> None:
    """Ask before handing in a notebook in which nothing was answered; without a terminal to ask, refuse."""
    try:
        notebook = nbformat.read(module.student_notebook, as_version=4)
    except Exception:  # not readable: `submit` says so
        return
    if not nothing_answered(notebook):
        return
    shown = module.student_notebook.relative_to(workspace.root)
    if not sys.stdin.isatty():
        raise TitoError(f"nothing is answered in {shown} (every solution cell is still the release's): nothing was "
                        f"submitted; pass --yes to hand it in anyway", 2)
    console.print(f"[yellow]nothing is answered in {escape(str(shown))}[/]: every solution cell is still the release's")
    if not Confirm.ask("hand it in anyway?", default=False, console=console):
        raise TitoError("nothing was submitted", 1)


def run_update(args) -> int:
    workspace = load_course()
    updated = update_workspace(workspace, args.source, say=lambda text: console.print(f"  {escape(text)}"))
    if not updated.added:
        console.print("up to date: no new modules")
        return 0
    console.print(f"added {', '.join(updated.added)} ({len(updated.files)} new files; none of yours changed)")
    console.print(f"[green]next[/]: tito module test {updated.added[0]}")
    return 0


def _outside_any_course() -> bool:
    """No settings.ini here or above: a student's home on a shared server, where work goes through the exchange."""
    try:
        load_course()
    except TitoError:
        return True
    return False
