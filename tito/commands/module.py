"""`tito module test|complete MODULE`: run a lesson's own tests; export it only when they pass."""
from __future__ import annotations

import contextlib
import signal

from rich.markup import escape

from ..course import Course, Module, load_course
from ..errors import TitoError
from ..exporter import install, render, restore, snapshot
from ..testing import run_module_tests, run_package_tests
from ..ui import console, mark, table
from ..prerequisites import prerequisite_problem


def register(commands) -> None:
    parser = commands.add_parser(
        "module", help="work on one module: run its tests, or complete it",
        description="Example: `tito module test 05_autograd` while you work, then `tito module complete 05_autograd`.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, handler, text, description in [
        ("test", run_test, "run the module's notebook in a kernel and report each unit test",
         "Runs the module's notebook top to bottom in a fresh Jupyter kernel and prints a row per unit test, and one "
         "line per part not written yet. Changes no file. Example: `tito module test 05`."),
        ("complete", run_complete, "test the module, export it, then run its package tests",
         "Runs the module's unit tests; only when all pass, exports its code into tinytorch/ and runs its package "
         "tests, undoing the export if they fail. The modules it builds on must be complete first. "
         "Example: `tito module complete 01_tensor`."),
    ]:
        action = actions.add_parser(name, help=text, description=description)
        action.add_argument("modules", nargs="*", metavar="MODULE", help="01_tensor, 01 or tensor")
        action.add_argument("--all", action="store_true", help="every module of the course, in order")
        action.set_defaults(handler=handler)


def _chosen(course: Course, args) -> list[Module]:
    if not args.modules and not args.all:
        raise TitoError(f"name a module (e.g. `tito module {args.action} {course.modules[0].name}`) or pass --all",
                        exit_code=2)
    return course.select(None if args.all else args.modules)


def run_test(args) -> int:
    course = load_course()
    return 0 if all([test_module(course, module) for module in _chosen(course, args)]) else 1


def run_complete(args) -> int:
    course = load_course()
    chosen, done = _chosen(course, args), []
    for module in chosen:
        try:
            complete_module(course, module)
        except TitoError as error:
            if done:  # say what did get completed before the failure
                raise TitoError(f"{error} ({len(done)} of {len(chosen)} modules completed before it: "
                                f"{', '.join(done)})", error.exit_code) from None
            raise
        done.append(module.name)
    if len(chosen) > 1:
        console.print(f"[green]all {len(done)} modules complete[/]: {escape(', '.join(done))}")
    return 0


@contextlib.contextmanager
def terminate_as_interrupt():
    """SIGTERM (a closed terminal, a killed job) raises KeyboardInterrupt like Ctrl+C, so the export is undone."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def test_module(course: Course, module: Module) -> bool:
    """Run the module's notebook and print one row per unit test; True when nothing failed."""
    console.print(f"[bold]Testing {module.name}[/] ({module.source.relative_to(course.root)}) in a Jupyter kernel...")
    unfinished = prerequisite_problem(course, module)
    if unfinished:
        console.print(f"[yellow]note[/]: {escape(unfinished)}; until then its tests fail where they use it")
    outcome = run_module_tests(course, module)
    waiting = [result for result in outcome if result.unwritten or result.knock_on]
    judged = [result for result in outcome if result not in waiting]  # passed, or failed for a reason of its own
    if judged:
        rows = [[escape(result.name) + ("" if result.is_test else " [dim](a cell, not a test)[/]"),
                 mark(result.passed), escape(result.message)] for result in judged]
        console.print(table(f"{module.name}: unit tests", ["test", "result", "message"], rows, whole=("result",)))
    parts = list(dict.fromkeys(result.unwritten for result in waiting if result.unwritten))
    for part in parts:
        console.print(f"[yellow]not written yet[/]: {escape(part)}")
    if waiting:  # their errors only repeat the stub's message, or name what a failed cell would have defined
        cause = "waiting for these parts" if parts else "stopped by the failure above"
        console.print(f"[yellow]{cause}[/]: {_tests_and_cells(waiting)}")
    failed = [result.name for result in judged if not result.passed]
    if failed:
        console.print(f"[red]{len(failed)} failed[/]: {escape(', '.join(failed))}")
    elif not waiting:
        console.print(f"[green]all {sum(result.is_test for result in outcome)} tests passed[/]")
    return not (failed or waiting)


def _tests_and_cells(results) -> str:
    """e.g. "3 tests (test-a, test-b, test-c) and 2 other cells"."""
    tests = [result.name for result in results if result.is_test]
    cells = len(results) - len(tests)
    said = [f"{len(tests)} test{'s' * (len(tests) != 1)} ({escape(', '.join(tests))})"] if tests else []
    said += [f"{cells} other cell{'s' * (cells != 1)}"] if cells else []
    return " and ".join(said)


def complete_module(course: Course, module: Module) -> None:
    """Test, export, run the package tests; on any failure the package is left exactly as it was."""
    unfinished = prerequisite_problem(course, module)
    if unfinished:
        raise TitoError(f"{unfinished}; the package was not changed")
    if not test_module(course, module):
        raise TitoError(f"{module.name} is not complete: fix the failing tests above; the package was not changed")
    files = render(course, [module])
    previous = snapshot(files)  # taken first: an interrupt may come in the middle of `install`
    try:
        with terminate_as_interrupt():
            install(files)
            console.print(f"exported {module.name} -> {', '.join(str(path.relative_to(course.root)) for path in files)}")
            console.print(f"[bold]Running the package tests of {module.name}...[/]")
            passed = run_package_tests(course, [module]) == 0
    except KeyboardInterrupt:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # a second Ctrl+C waits
        try:
            restore(previous)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        raise TitoError(f"interrupted: {module.name} is not complete, the package is as it was", 130) from None
    if not passed:
        restore(previous)
        raise TitoError(f"the package tests of {module.name} failed: the export was undone, the package is unchanged")
    console.print(f"[green]{module.name} is complete[/]: import it with `from tinytorch.{module.package_module} import ...`")
