"""`tito nbgrader generate|release|autograde|feedback|report|kit`: the instructor's workflow (see docs/instructor.md)."""
from __future__ import annotations

import argparse
import getpass
import os
import socket
import sys
from pathlib import Path

import nbformat
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..course import Course, Module, load_course, require_course_repository
from ..coursefolder import course_folder, require_release
from ..errors import TitoError
from ..grading.autograde import autograde, submissions
from ..grading.exchange import collect, publish, require_exchange, return_feedback
from ..grading.feedback import autograded_students, feedback
from ..grading.formgrader import formgrader_command, free_port
from ..grading.lms import LMS, export_lms, read_roster
from ..grading.release import generate, release, release_stale
from ..grading.scores import collect_scores, points, write_csv
from ..notebook import graded_cells
from ..student.kit import build_kit
from ..student.workspace import require_new_folder
from ..ui import console, table

STEPS = [
    ("generate", "lesson -> course source notebook, checked: every test passes on the solution"),
    ("release", "source -> student notebook in the course's release/, checked: no test passes without work, no leak"),
    ("autograde", "grade every submission of a module (or --student ID), each in its own sandbox"),
    ("feedback", "an HTML feedback page per autograded student"),
    ("publish", "release/ -> nbgrader's exchange on a shared server, where students fetch it"),
    ("collect", "each student's newest submission in the exchange -> submitted/"),
    ("return", "each feedback page -> the exchange, where only its student fetches it"),
]


def register(commands) -> None:
    parser = commands.add_parser(
        "nbgrader", help="instructor workflow: release modules, grade submissions (nbgrader)",
        description="The instructor's steps, run in the course repository: generate and release a module, (publish "
                    "and collect through an exchange), autograde, grade written answers in the formgrader, feedback, "
                    "(return), report; kit makes the students' copy. See docs/instructor.md. "
                    "Example: `tito nbgrader release 01_tensor`.")
    steps = parser.add_subparsers(dest="step", required=True, metavar="STEP")
    for name, text in STEPS:
        step = steps.add_parser(name, help=text, description=text)
        step.add_argument("modules", nargs="*", metavar="MODULE", help="01_tensor, 01 or tensor")
        step.add_argument("--all", action="store_true", help="every module in settings.ini, in order")
        if name in ("autograde", "feedback"):
            step.add_argument("--student", action="append", metavar="ID", help="only this student (repeatable)")
        if name == "autograde":
            step.add_argument("--jobs", type=_positive, default=len(os.sched_getaffinity(0)), metavar="N",
                              help="grade N submissions at once (default and most: the number of cores)")
            step.add_argument("--no-sandbox", dest="sandboxed", action="store_false",
                              help="UNSAFE: run students' code as you, with no isolation (only where bubblewrap "
                                   "cannot be installed and every submission is trusted)")
        step.set_defaults(handler=_in_course_repository(HANDLERS[name]))
    report = steps.add_parser(
        "report", help="scores per student per module: a CSV file and a table",
        description="Reads nbgrader's gradebook: a CSV row per student and released module (test points, written "
                    "answer points, status) and a table of each student's test points per module; or, with --format "
                    "and --roster, the gradebook CSV that Canvas, Moodle or Blackboard imports (docs/instructor.md, "
                    "'Moving grades to your LMS'). Example: `tito nbgrader report --format canvas --roster roster.csv`.")
    report.add_argument("--output", type=Path, metavar="CSV",
                        help="where to write the CSV (default: <course_dir>/scores.csv, or scores-FORMAT.csv)")
    report.add_argument("--format", choices=["tito", *LMS], default="tito",
                        help="tito: a row per student and module (the default); canvas, moodle, blackboard: that "
                             "LMS's gradebook import, a row per roster student and a column per module")
    report.add_argument("--roster", type=Path, metavar="CSV",
                        help="with an LMS format: who each tito student is in the LMS (columns in docs/instructor.md)")
    report.set_defaults(handler=_in_course_repository(run_report))
    kit = steps.add_parser("kit", help="a student kit in OUT: a git repository of the releases, stubs, tests and tito, "
                                       "with no solution in it",
                          description="Makes OUT, a git repository with one commit: the release notebooks (each "
                                      "module released first where its release is missing or older than its lesson), "
                                      "the students' tinytorch of stubs, the package tests and tito, checked to hold "
                                      "no solution line. Push it as the students' template; its README tells them how "
                                      "to install it. Example: `tito nbgrader kit ../tinytorch-kit`.")
    kit.add_argument("out", type=Path, metavar="OUT", help="the new kit folder (absent or empty)")
    kit.set_defaults(handler=_in_course_repository(run_kit))
    lab = steps.add_parser("formgrader", help="JupyterLab with nbgrader's formgrader on the course folder (grade "
                                              "written answers by hand)",
                           description="Starts JupyterLab in the course folder, the only place where the formgrader "
                                       "finds the course. Arguments after `--` go to JupyterLab.")
    lab.add_argument("--ip", default="127.0.0.1", metavar="ADDRESS",
                     help="the address to listen on (default 127.0.0.1; reach a headless server through an SSH tunnel)")
    lab.add_argument("--port", type=int, default=8888, metavar="N", help="the port (default 8888)")
    lab.add_argument("--browser", action="store_true", help="open a web browser (default: print the address)")
    lab.set_defaults(handler=_in_course_repository(run_formgrader))


def _in_course_repository(handler):
    """Every step works on the lessons and the grading folder of the course repository, which a workspace lacks."""
    def run(args) -> int:
        require_course_repository(load_course(), f"tito nbgrader {args.step}")
        return handler(args)
    return run


def run_kit(args) -> int:
    course = load_course()
    say = lambda text: console.print(f"  {escape(text)}")  # noqa: E731
    require_new_folder(args.out, "kit")  # before releasing, which takes minutes
    released = release_stale(course, say)
    kit = build_kit(course, args.out, say=say)
    if released:
        console.print(f"released first (missing or older than the lesson): {', '.join(released)}")
    console.print(f"kit: {_count(kit.modules, 'module')} ({', '.join(kit.modules)}), {_count(kit.files, 'file')}, "
                  f"no solution line in any of them")
    console.print(f"[green]ready[/]: {escape(str(kit.root))} is a git repository (commit {kit.commit[:10]}): push "
                  f"it as the students' template; they run `pip install -e .` then `tito lab`")
    return 0


def _chosen(course: Course, args) -> list[Module]:
    if not args.modules and not args.all:
        raise TitoError(f"name a module (e.g. `tito nbgrader {args.step} 01_tensor`) or pass --all", exit_code=2)
    if args.modules and args.all:
        raise TitoError("name modules or pass --all, not both", exit_code=2)
    return course.select(None if args.all else args.modules)


def run_generate(args) -> int:
    course = load_course()
    folder = course_folder(course)
    rows = []
    for module in _chosen(course, args):
        console.print(f"[bold]Generating {module.name}[/]: running its solution in a kernel...")
        generated = generate(course, module)
        tests = [cell for cell in generated.cells if cell.is_test]
        console.print(f"  {folder.show(generated.path)}: all {len(tests)} tests pass on the solution")
        rows.append([module.name, str(len(tests)), points(sum(cell.points for cell in tests))])
    console.print(table("Source notebooks", ["module", "tests", "points"], rows, whole=("module", "tests", "points")))
    console.print(f"source notebooks: {escape(folder.show(folder.root / 'source'))}/<module>/<name>.ipynb")
    return 0


def run_release(args) -> int:
    course = load_course()
    folder = course_folder(course)
    rows = []
    for module in _chosen(course, args):
        console.print(f"[bold]Releasing {module.name}[/]: source, student version, checks...")
        released = release(course, module)
        cells = released.source.cells
        tests, answers = [cell for cell in cells if cell.is_test], [cell for cell in cells if not cell.is_test]
        console.print(f"  source   {folder.show(released.source.path)}: all {len(tests)} tests pass on the solution")
        console.print(f"  release  {folder.show(released.path)}: every code cell compiles")
        console.print("  invert   no test passes without work (nbgrader validate --invert)")
        console.print(f"  no leak  no solution line in the {_count(released.checked_files, 'file')} of "
                      f"{folder.show(folder.root / 'release')}/")
        console.print(table(f"{module.name}: graded cells", ["cell", "graded", "points"],
                            [[escape(cell.grade_id), "by its test" if cell.is_test else "by hand (written answer)",
                              points(cell.points)] for cell in cells], whole=("cell", "graded", "points")))
        rows.append([module.name, f"{len(tests)} ({points(sum(c.points for c in tests))} points)",
                     f"{len(answers)} ({points(sum(c.points for c in answers))} points)"])
    console.print(table("Released", ["module", "autograded tests", "written answers"], rows,
                        whole=("module", "autograded tests", "written answers")))
    console.print(f"student notebooks: {escape(folder.show(folder.root / 'release'))}/<module>/<name>.ipynb")
    return 0


def run_autograde(args) -> int:
    course = load_course()
    failures = []
    for module in _released_modules(course, args):
        students = _students(args, module, submissions(course, module), f"no submissions of {module.name} in submitted/")
        if not students:
            continue
        submissions(course, module, students)  # a named student without a submission: one clear line, before any work
        if not args.sandboxed:
            console.print("[bold red]--no-sandbox[/]: students' code runs as you and can read and change your files")
        console.print(f"[bold]Autograding {module.name}[/]: {_count(students, 'submission')}, "
                      f"{_count(min(args.jobs, len(students)), 'at a time', plural='at a time')}")
        grades = _with_progress(students, lambda report: autograde(course, module, students, report, args.jobs,
                                                                   args.sandboxed), _grade_line)
        _autograde_summary(course, module, grades)
        failures += [f"{grade.student} ({module.name})" for grade in grades if not grade.graded]
    if failures:
        raise TitoError(f"{_count(failures, 'submission')} could not be graded (see above): {', '.join(failures)}; "
                        f"the others were")
    return 0


def run_feedback(args) -> int:
    course = load_course()
    folder = course_folder(course)
    failures = []
    for module in _released_modules(course, args):
        students = _students(args, module, autograded_students(course, module),
                             f"no autograded submissions of {module.name}: run `tito nbgrader autograde {module.name}` first")
        if not students:
            continue
        missing = [student for student in students if student not in autograded_students(course, module)]
        if missing:
            raise TitoError(f"no autograded submission of {module.name} from student '{missing[0]}': run "
                            f"`tito nbgrader autograde {module.name} --student {missing[0]}` first", 2)
        console.print(f"[bold]Feedback for {module.name}[/]: {_count(students, 'student')}")
        pages = _with_progress(students, lambda report: feedback(course, module, students, report), _feedback_line)
        console.print(table(f"{module.name}: feedback", ["student", "page"],
                            [[escape(page.student), escape(folder.show(page.path)) if page.path else f"[red]{escape(page.error)}[/]"]
                             for page in pages]))
        failures += [f"{page.student} ({module.name})" for page in pages if page.path is None]
        waiting = [page.student for page in pages if page.pending]
        if waiting:
            console.print(f"[yellow]warning[/]: written answers of {_count(waiting, 'student')} are not graded yet "
                          f"({escape(', '.join(waiting))}); their pages say so. Grade them in the formgrader "
                          f"(`tito nbgrader formgrader`), then run `tito nbgrader feedback {module.name}` again")
    if failures:
        raise TitoError(f"no feedback for {', '.join(failures)} (see above)")
    return 0


def _students(args, module: Module, available: list[str], none_message: str) -> list[str]:
    """The students a step works on: those named (with --all: those of them this module has), else all available.

    Naming a student the module lacks is a mistake, except with --all; no students at all is a mistake, except with --all.
    """
    if args.student and args.all:
        chosen = [student for student in dict.fromkeys(args.student) if student in available]
    elif args.student:
        chosen = list(dict.fromkeys(args.student))  # the step itself names a missing student
    else:
        chosen = available
    if not chosen:
        if not args.all:
            raise TitoError(none_message, 2)
        console.print(f"[dim]{module.name}: nothing to do, skipped[/]")
    return chosen


def run_report(args) -> int:
    course = load_course()
    folder = course_folder(course)
    rows = collect_scores(course)
    roster = _roster(args)  # before anything is printed or written: a bad roster stops the report
    modules = list(dict.fromkeys(row.module for row in rows))
    maximum = {row.module: points(row.tests_max) for row in rows}
    by_student: dict[str, dict[str, str]] = {}
    for row in rows:
        by_student.setdefault(row.student, {})[row.module] = _report_cell(row)
    grid = [["max", *(maximum[module] for module in modules)]] + \
           [[student, *(cells[module] for module in modules)] for student, cells in by_student.items()]
    for first, last in _fitting_columns(grid, console.width):  # by module number, as many as the terminal fits
        numbers = [module.split("_", 1)[0] for module in modules[first:last]]
        title = "Autograded test points" + (f" (modules {numbers[0]}-{numbers[-1]})" if len(numbers) < len(modules) else "")
        console.print(table(title, ["student", *numbers], [[escape(cell) for cell in [row[0], *row[1 + first:1 + last]]]
                                                          for row in grid], whole=("student", *numbers)))
    console.print(f"modules: {escape(', '.join(modules))}")
    console.print(escape(f"max: a module's test points; {PENDING} written answers still to grade by hand (nbgrader's "
                         f"formgrader, docs/instructor.md); {NOT_GRADED} handed in, not graded yet; {MISSING} no "
                         f"submission"))
    if roster is None:
        path = write_csv(rows, args.output.resolve() if args.output else folder.report)
        console.print(f"{_count(rows, 'row')} ({_count(len(by_student), 'student')} x {_count(modules, 'module')}) "
                      f"-> {escape(folder.show(path))}")
        return 0
    path = args.output.resolve() if args.output else folder.report.with_name(f"scores-{args.format}.csv")
    _lms_summary(export_lms(rows, roster, args.format, path), folder)
    return 0


def _roster(args):
    if args.format == "tito":
        if args.roster:
            raise TitoError("--roster goes with --format canvas, moodle or blackboard", 2)
        return None
    if not args.roster:
        raise TitoError(f"--format {args.format} needs --roster CSV: who each student is in {LMS[args.format].name} "
                        f"(docs/instructor.md, 'Moving grades to your LMS')", 2)
    return read_roster(args.roster, args.format)


def _lms_summary(export, folder) -> None:
    """The file, and every student or grade it leaves out or blank, by name: the instructor decides, not tito."""
    console.print(escape("points possible: " + ", ".join(f"{module} {possible}" for module, possible
                                                          in zip(export.modules, export.possible))))
    if export.unknown:
        console.print(f"[yellow]not on the roster, left out of the file ({len(export.unknown)}):[/yellow] "
                      f"{escape(', '.join(export.unknown))}")
    if export.missing:
        console.print(f"[yellow]on the roster, never graded by tito, every grade blank ({len(export.missing)}):"
                      f"[/yellow] {escape(', '.join(export.missing))}")
    for status, cells in export.blank.items():
        console.print(f"[yellow]blank, {escape(status)} ({len(cells)}):[/yellow] {escape(', '.join(cells))}")
    console.print(f"{export.lms}: {_count(export.students, 'student')} x {_count(export.modules, 'module')} "
                  f"-> {escape(folder.show(export.path))}")


# The report's marks: after the test points when written answers await a grader; in place of them otherwise.
PENDING, NOT_GRADED, MISSING = "*", "?", "-"


def _report_cell(row) -> str:
    if row.status == "no submission":
        return MISSING
    if row.status == "not graded":
        return NOT_GRADED
    return points(row.tests_score) + (PENDING if row.status == "answers to grade" else "")


def _fitting_columns(grid: list[list[str]], width: int) -> list[tuple[int, int]]:
    """Split the module columns of `grid` (its first column names the rows) into runs [first, last) that each fit,
    with the names, a table `width` columns wide: whole numbers, never a wrapped cell."""
    def widest(column: int) -> int:
        return max(len(row[column]) for row in grid)

    runs, first, used = [], 0, widest(0) + 4  # a table's outer borders and the names' padding
    for column in range(1, len(grid[0])):
        needed = max(widest(column), 2) + 3
        if used + needed > width and column - 1 > first:
            runs.append((first, column - 1))
            first, used = column - 1, widest(0) + 4
        used += needed
    return runs + [(first, len(grid[0]) - 1)]


def run_publish(args) -> int:
    course = load_course()
    require_exchange(course)  # before anything else: without an exchange no step can work
    for module in _released_modules(course, args):
        path = publish(course, module)
        console.print(f"published {module.name}: {escape(str(path))} (students: Assignment List > Fetch, or "
                      f"`tito student fetch {module.name}`)")
    return 0


def run_collect(args) -> int:
    course = load_course()
    require_exchange(course)  # before anything else: without an exchange no step can work
    folder = course_folder(course)
    for module in _released_modules(course, args):
        collected = collect(course, module)
        rows = [[escape(student), state] for state, students in (("new", collected.new), ("updated", collected.updated),
                                                                  ("unchanged", collected.unchanged))
                for student in students]
        console.print(table(f"{module.name}: collected into {folder.show(folder.root / 'submitted')}/",
                            ["student", "submission"], rows, whole=("student", "submission")))
        for refused in collected.refused:
            console.print(f"[bold red]refused[/] {escape(refused)}: a submission must be handed in by the student it "
                          f"names")
        if collected.new or collected.updated:
            console.print(f"next: tito nbgrader autograde {module.name}")
    return 0


def run_return(args) -> int:
    course = load_course()
    require_exchange(course)  # before anything else: without an exchange no step can work
    for module in _released_modules(course, args):
        returned, skipped = return_feedback(course, module)
        if returned:
            console.print(f"returned {module.name} feedback to {_count(returned, 'student')}: {escape(', '.join(returned))} "
                          f"(students: Assignment List > Fetch Feedback, or `tito student feedback {module.name}`)")
        if skipped:
            console.print(f"[yellow]not through the exchange[/] (handed in another way; send their pages yourself): "
                          f"{escape(', '.join(skipped))}")
    return 0


def run_formgrader(args) -> int:
    course = load_course()
    folder = course_folder(course)
    port = free_port(args.ip, args.port)
    # Chosen here, and JupyterLab told not to move on: the tunnel printed below names the port it listens on.
    command, env = formgrader_command(course, args.ip, port, args.browser,
                                      ["--ServerApp.port_retries=0", *args.pytest_args])
    if not folder.gradebook.exists():
        console.print(f"[yellow]warning[/]: nothing released in {escape(folder.show(folder.root))}/ yet, so the "
                      f"formgrader will list no assignment (run `tito nbgrader release MODULE` first)")
    if port != args.port:
        console.print(f"port {args.port} is taken (by `tito lab`?), so the formgrader listens on {port}")
    console.print(f"formgrader on {escape(str(folder.root))}: open the address JupyterLab prints below (with its "
                  f"token), then Nbgrader > Formgrader > Manual Grading. Stop it with Ctrl+C.")
    if args.ip == "127.0.0.1":
        console.print(f"from your own computer: ssh -N -L {port}:127.0.0.1:{port} {escape(getpass.getuser())}@"
                      f"{escape(socket.getfqdn())}, then open that address")
    else:
        console.print(f"[yellow]listening on {escape(args.ip)}[/]: anyone who reaches that address and has the token "
                      f"can grade and read every submission")
    sys.stdout.flush()
    os.chdir(folder.root)
    os.execve(command[0], command, env)  # JupyterLab takes over this process (Ctrl+C then reaches it alone)


HANDLERS = {"generate": run_generate, "release": run_release, "autograde": run_autograde, "feedback": run_feedback,
            "publish": run_publish, "collect": run_collect, "return": run_return}


def _released_modules(course: Course, args) -> list[Module]:
    """The modules a grading step works on: with --all, those released so far; a named one must be released."""
    chosen = []
    for module in _chosen(course, args):
        if args.all and not _released(course, module):
            console.print(f"[dim]{module.name}: not released, skipped[/]")
            continue
        require_release(course, module)
        chosen.append(module)
    return chosen


def _released(course: Course, module: Module) -> bool:
    return course_folder(course).release(module).exists()


def _with_progress(students: list[str], work, line):
    """Run `work(report)`, printing a line per student as each finishes, under a progress bar when there are many."""
    if len(students) < 3:
        return work(lambda result: console.print(line(result)))
    columns = [TextColumn("  grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("students", total=len(students))

        def report(result):
            progress.console.print(line(result))
            progress.advance(task)

        return work(report)


def _autograde_summary(course: Course, module: Module, grades) -> None:
    """A row per student, then a row per test: how many of the graded students passed it."""
    rows = [[escape(grade.student),
             f"{points(grade.score)}/{points(grade.max_score)}" if grade.graded else "[red]not graded[/]",
             written_answers(grade) if grade.graded else "", escape("; ".join(grade.notes) or grade.error)]
            for grade in grades]
    console.print(table(f"{module.name}: autograded", ["student", "test points", "written answers", "notes"], rows,
                        whole=("student", "test points")))
    graded = [grade for grade in grades if grade.graded]
    if graded:
        source = nbformat.read(course_folder(course).source(module), as_version=4)
        tests = [cell for cell in graded_cells(source) if cell.is_test]
        console.print(table(f"{module.name}: tests", ["test", "points", "passed by"],
                            [[escape(test.grade_id), points(test.points),
                              f"{sum(test.grade_id not in grade.failed for grade in graded)} of {len(graded)}"]
                             for test in tests], whole=("test", "points", "passed by")))


def written_answers(grade) -> str:
    """The written answers' state: "to grade by hand" (some await a grader), "not answered" (left as released:
    nbgrader scored them 0), or the points a grader gave; "none" when the module asks for none."""
    if not grade.answers:
        return "none"
    if grade.answers_pending:
        state = "to grade by hand" + (f" ({grade.answers_pending} of {grade.answers})"
                                      if grade.answers_pending < grade.answers else "")
    elif grade.answers_unanswered == grade.answers:
        return f"not answered (0/{points(grade.answer_points)})"
    else:
        state = f"{points(grade.answers_score)}/{points(grade.answer_points)} by hand"
    unanswered = grade.answers_unanswered
    return state + (f", {unanswered} not answered" if unanswered else "")


def _grade_line(grade) -> str:
    if not grade.graded:
        return f"  [red]{escape(grade.student)}: not graded[/]: {escape(grade.error)}"
    note = f" [yellow]({escape('; '.join(grade.notes))})[/]" if grade.notes else ""
    written = f", written answers: {written_answers(grade)}" if grade.answers else ""
    return (f"  {escape(grade.student)}: {points(grade.score)}/{points(grade.max_score)} test points"
            f"{written}{note} [dim]{grade.seconds:.1f} s[/]")


def _feedback_line(page) -> str:
    if page.path is None:
        return f"  [red]{escape(page.student)}[/]: {escape(page.error)}"
    return f"  {escape(page.student)}: {escape(str(page.path.name))}"


def _count(items: list | int, noun: str, plural: str = "") -> str:
    number = items if isinstance(items, int) else len(items)
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


