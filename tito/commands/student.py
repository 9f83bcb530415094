"""`tito student init DIR | submit MODULE | update`: a student's own workspace, handing work in, new modules (see
docs/student.md)."""
from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from ..course import load_course
from ..ui import console, table
from ..update import update_workspace
from ..workspace import init_workspace, submit


def register(commands) -> None:
    parser = commands.add_parser("student", help="student workflow: make your workspace, submit a module")
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
    hand_in.add_argument("--instructor", action="store_true",
                         help="grading staff: hand in under a --student id other than the workspace's")
    hand_in.set_defaults(handler=run_submit)
    update = actions.add_parser("update", help="add the modules released since this workspace was made",
                                description="Run in your workspace. Adds each new module's notebook, stubs and tests; "
                                            "never changes a file you have.")
    update.add_argument("--from", dest="source", metavar="KIT",
                        help="a newer kit: its folder or git address (default: the course this workspace was made from)")
    update.set_defaults(handler=run_update)


def run_init(args) -> int:
    course = load_course()
    made = init_workspace(course, args.directory, args.release, args.student,
                          say=lambda text: console.print(f"  {escape(text)}"))
    rows = [[module.name, escape(f"modules/{module.name}/{module.short}.ipynb"), str(made.stubs[module.name])]
            for module in made.modules]
    console.print(table(f"Workspace {made.root}", ["module", "your notebook", "parts to write"], rows))
    console.print(f"package tinytorch/ (stubs) | tests: {escape(', '.join(made.tests))}")
    console.print(f"no leak: no solution line in the {made.checked_files} files of the workspace")
    console.print(f"[green]ready[/]: cd {escape(str(made.root))} && tito lab   (then `tito module test "
                  f"{made.modules[0].name}`, `tito module complete {made.modules[0].name}`)")
    return 0


def run_submit(args) -> int:
    workspace = load_course()
    module = workspace.module(args.module)
    done = submit(workspace, module, args.course, args.student, args.instructor)
    last = done.last_test
    if last is None:
        console.print(f"[yellow]note[/]: you have not run `tito module test {module.name}` on this notebook")
    elif not last["passed"]:
        console.print(f"[yellow]note[/]: `tito module test {module.name}` failed at its last run: submitted anyway")
    verb = "replaced your earlier submission" if done.replaced else "submitted"
    console.print(f"{verb}: {escape(str(done.notebook.relative_to(workspace.root)))} -> {escape(str(done.destination))}")
    console.print(f"graded with `tito nbgrader autograde {module.name} --student {escape(done.student)}`")
    return 0


def run_update(args) -> int:
    workspace = load_course()
    updated = update_workspace(workspace, args.source, say=lambda text: console.print(f"  {escape(text)}"))
    if not updated.added:
        console.print("up to date: no new modules")
        return 0
    console.print(f"added {', '.join(updated.added)} ({len(updated.files)} new files; none of yours changed)")
    console.print(f"[green]next[/]: tito module test {updated.added[0]}")
    return 0
