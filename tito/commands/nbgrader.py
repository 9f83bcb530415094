"""`tito nbgrader generate|release|autograde|feedback|report|kit`: the instructor's workflow (see docs/instructor.md)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..course import Course, Module, load_course
from ..errors import TitoError
from ..exchange import collect, publish, return_feedback
from ..coursefolder import course_folder, graded_cells
from ..grading import autograde, autograded_students, feedback, generate, release, require_release, submissions
from ..scores import collect_scores, points, write_csv
from ..ui import console, table
from ..kit import build_kit
from ..workspace import formgrader_command, require_course_repository

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
    parser = commands.add_parser("nbgrader", help="instructor workflow: release modules, grade submissions (nbgrader)")
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
    report = steps.add_parser("report", help="scores per student per module: a CSV file and a table")
    report.add_argument("--output", type=Path, metavar="CSV", help="where to write the CSV (default: <course_dir>/scores.csv)")
    report.set_defaults(handler=_in_course_repository(run_report))
    kit = steps.add_parser("kit", help="a student kit in OUT: a git repository of the releases, stubs, tests and tito, "
                                       "with no solution in it", description="See tito/kit.py and docs/instructor.md.")
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
    kit = build_kit(course, args.out, say=lambda text: console.print(f"  {escape(text)}"))
    if kit.released:
        console.print(f"released first (missing or older than the lesson): {', '.join(kit.released)}")
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
        rows.append([module.name, str(len(tests)), points(sum(cell.points for cell in tests)), folder.show(generated.path)])
    console.print(table("Source notebooks", ["module", "tests", "points", "notebook"], rows))
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
                              points(cell.points)] for cell in cells]))
        rows.append([module.name, f"{len(tests)} ({points(sum(c.points for c in tests))} points)",
                     f"{len(answers)} ({points(sum(c.points for c in answers))} points)", folder.show(released.path)])
    console.print(table("Released", ["module", "autograded tests", "written answers", "student notebook"], rows))
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
    path = write_csv(rows, args.output.resolve() if args.output else folder.report)
    modules = list(dict.fromkeys(row.module for row in rows))
    by_student: dict[str, dict[str, str]] = {}
    for row in rows:
        cell = f"{points(row.tests_score)}/{points(row.tests_max)}"
        if row.status == "answers to grade":
            cell += " *"
        elif row.status in ("not graded", "no submission"):
            cell = f"[dim]{row.status}[/]"
        by_student.setdefault(row.student, {})[row.module] = cell
    # Columns by module number, named below the table: seven modules fit an 80-column terminal.
    console.print(table("Autograded test points", ["student", *(module.split("_", 1)[0] for module in modules)],
                        [[escape(student), *(cells[m] for m in modules)] for student, cells in by_student.items()]))
    console.print(f"modules: {escape(', '.join(modules))}")
    if any(row.status == "answers to grade" for row in rows):
        console.print("* written answers still to grade by hand (nbgrader's formgrader; see docs/instructor.md)")
    console.print(f"{_count(rows, 'row')} ({_count(len(by_student), 'student')} x {_count(modules, 'module')}) "
                  f"-> {escape(folder.show(path))}")
    return 0


def run_publish(args) -> int:
    course = load_course()
    for module in _released_modules(course, args):
        path = publish(course, module)
        console.print(f"published {module.name}: {escape(str(path))} (students: Assignment List > Fetch, or "
                      f"`tito student fetch {module.name}`)")
    return 0


def run_collect(args) -> int:
    course = load_course()
    folder = course_folder(course)
    for module in _released_modules(course, args):
        collected = collect(course, module)
        rows = [[escape(student), state] for state, students in (("new", collected.new), ("updated", collected.updated),
                                                                  ("unchanged", collected.unchanged))
                for student in students]
        console.print(table(f"{module.name}: collected into {folder.show(folder.root / 'submitted')}/",
                            ["student", "submission"], rows))
        for refused in collected.refused:
            console.print(f"[bold red]refused[/] {escape(refused)}: a submission must be handed in by the student it "
                          f"names")
        if collected.new or collected.updated:
            console.print(f"next: tito nbgrader autograde {module.name}")
    return 0


def run_return(args) -> int:
    course = load_course()
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
    command, env = formgrader_command(course, args.ip, args.port, args.browser, args.pytest_args)
    if not folder.gradebook.exists():
        console.print(f"[yellow]warning[/]: nothing released in {escape(folder.show(folder.root))}/ yet, so the "
                      f"formgrader will list no assignment (run `tito nbgrader release MODULE` first)")
    console.print(f"formgrader on {escape(str(folder.root))}: open the address JupyterLab prints below (with its "
                  f"token), then Nbgrader > Formgrader > Manual Grading. Stop it with Ctrl+C.")
    if args.ip != "127.0.0.1":
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
             "to grade" if grade.answers_to_grade else "", escape("; ".join(grade.notes) or grade.error)]
            for grade in grades]
    console.print(table(f"{module.name}: autograded", ["student", "test points", "written answers", "notes"], rows))
    flagged = [grade for grade in grades if grade.flags]
    if flagged:
        console.print(table(f"{module.name}: code that reaches for the grader (scores are not affected; worth a look)",
                            ["student", "cells"], [[escape(grade.student), escape("; ".join(grade.flags))]
                                                   for grade in flagged]))
    graded = [grade for grade in grades if grade.graded]
    if graded:
        source = nbformat.read(course_folder(course).source(module), as_version=4)
        tests = [cell for cell in graded_cells(source) if cell.is_test]
        console.print(table(f"{module.name}: tests", ["test", "points", "passed by"],
                            [[escape(test.grade_id), points(test.points),
                              f"{sum(test.grade_id not in grade.failed for grade in graded)} of {len(graded)}"]
                             for test in tests]))


def _grade_line(grade) -> str:
    if not grade.graded:
        return f"  [red]{escape(grade.student)}: not graded[/]: {escape(grade.error)}"
    note = f" [yellow]({escape('; '.join(grade.notes))})[/]" if grade.notes else ""
    note += " [magenta](flagged: see below)[/]" if grade.flags else ""
    written = f", written answers to grade by hand ({points(grade.answer_points)} points)" if grade.answers_to_grade else ""
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


