"""`tito status`: one row per module: is it exported and in sync, did its tests pass last time."""
from rich.markup import escape

from .. import results
from ..course import load_course
from ..errors import TitoError
from ..exporter import render
from ..ui import console, mark, table
from ..workspace import is_workspace, progress


def register(commands) -> None:
    parser = commands.add_parser(
        "status", help="show each module's export and test state",
        description="One row per module: its file in tinytorch/ (in sync with the lesson, out of date, or not "
                    "exported) and the result of its last `tito module test` or `complete`; in a student workspace, "
                    "also the parts left to write. Changes nothing. Example: `tito status`.")
    parser.set_defaults(handler=run)


def run(args) -> int:
    course = load_course()
    last = results.load(course)
    student = is_workspace(course)  # a student's workspace: one more column, their progress
    rows = []
    for module in course.modules:
        exported = _export_state(course, module)
        tested = last.get(module.name)
        when = f" ({tested['when'].replace('T', ' ')})" if tested else ""
        rows.append([module.name, exported, mark(tested and tested["passed"]) + when]
                    + ([progress(course, module)] if student else []))
    console.print(table(course.title, ["module", "tinytorch/", "tests (last run)"] + (["your work"] if student else []),
                        rows))
    return 0


def _export_state(course, module) -> str:
    try:
        (path, text), = render(course, [module]).items()
    except TitoError as error:
        return f"[red]{escape(str(error))}[/]"
    if not path.exists():
        return "[dim]not exported[/]"
    name = path.relative_to(course.package_dir)  # short, so the table fits an 80-column terminal
    return f"[green]{name}[/]" if path.read_text(encoding="utf-8") == text else f"[yellow]{name} out of date[/]"
