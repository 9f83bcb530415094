"""`tito gradescope MODULE|--all OUT`: one Gradescope autograder zip per module (see docs/instructor.md)."""
from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from ..course import load_course, require_course_repository
from ..errors import TitoError
from ..grading.gradescope import build_autograder
from ..grading.release import release_stale
from ..ui import console


def register(commands) -> None:
    parser = commands.add_parser(
        "gradescope", help="a Gradescope autograder zip per module: grades an upload as `tito nbgrader autograde` does",
        description="Writes OUT/<module>-gradescope.zip for each module named (releasing it first if its "
                    "release is missing or older than its lesson): upload it as the assignment's autograder; students "
                    "upload their notebook. Checked to hold no solution line of the module or a later one. "
                    "Example: `tito gradescope 01_tensor dist/`.")
    parser.add_argument("modules", nargs="*", metavar="MODULE", help="01_tensor, 01 or tensor")
    parser.add_argument("--all", action="store_true", help="every module in settings.ini, in order")
    parser.add_argument("out", type=Path, metavar="OUT", help="the folder the zips are written to")
    parser.set_defaults(handler=run)


def run(args) -> int:
    course = load_course()
    require_course_repository(course, "tito gradescope")
    if bool(args.modules) == args.all:
        raise TitoError("name the modules (e.g. `tito gradescope 01_tensor OUT`) or pass --all, not both", 2)
    modules = course.select(None if args.all else args.modules)
    released = release_stale(course, lambda text: console.print(f"  {escape(text)}"), modules)  # only those zipped
    if released:
        console.print(f"released first (missing or older than the lesson): {', '.join(released)}")
    for module in modules:
        autograder = build_autograder(course, module, args.out)
        console.print(f"{module.name}: {escape(str(autograder.path))} ({autograder.files} files, no solution line)")
    return 0
