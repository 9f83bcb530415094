"""`tito status`: one row per module: is it exported and in sync, did its tests pass last time."""
from rich.markup import escape

from .. import results
from ..course import is_workspace, load_course
from ..errors import TitoError
from ..exporter import render
from ..ui import console, mark, table
from ..stubs import progress


def register(commands) -> None:
    parser = commands.add_parser(
        "status", help="show each module's export and test state",
        description="One row per module: its file in tinytorch/ (in sync with the lesson, out of date, or not "
                    "exported) and the result of its last `tito module test` or `complete`; in a student workspace, "
                    "also the parts left to write and the next step. Changes nothing. Example: `tito status`.")
    parser.set_defaults(handler=run)


def run(args) -> int:
    course = load_course()
    last = results.load(course)
    student = is_workspace(course)  # a student's workspace: one more column, their progress, and the next steps
    rows, next_steps = [], []
    for module in course.modules:
        tested = last.get(module.name)
        # "2026-12-06T17:55:48" -> "12-06 17:55": the day and minute fit beside the result in 80 columns
        when = f" {tested['when'][5:16].replace('T', ' ')}" if tested else ""
        row = [module.name, _export_state(course, module), mark(tested and tested["passed"]) + when]
        if student:
            state, step = progress(course, module)
            row.append(state)
            if step:
                next_steps.append(f"{module.name}: {step}")
        rows.append(row)
    columns = ["module", "tinytorch/core/", "last test"] + (["your work"] if student else [])
    console.print(table(course.title, columns, rows, whole=("module", "last test", "your work")))
    for step in next_steps:
        console.print(f"next in {step}")
    return 0


def _export_state(course, module) -> str:
    try:
        (path, text), = render(course, [module]).items()
    except TitoError as error:
        return f"[red]{escape(str(error))}[/]"
    if not path.exists():
        return "[dim]not exported[/]"
    name = path.name  # every lesson exports to tinytorch/core/ (docs/developers.md): the column's header says so
    return f"[green]{name}[/]" if path.read_text(encoding="utf-8") == text else f"[yellow]{name} out of date[/]"
