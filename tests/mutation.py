"""The mutation check: do a lesson's tests catch the mistakes students really make?

Each lesson has a catalogue, `tests/mutations/NN_name.py`, listing plausible mistakes (`Mistake`): one edit to
one solution cell, and the test cell that must catch it. For every mistake the lesson is read with jupytext,
edited, and run in a fresh Jupyter kernel up to that test, stopping at the first cell that raises. The mistake
is caught when that first failing cell is the expected test and its error matches the expected message. The
unmutated lesson must pass every test (run once per lesson, top to bottom).

    python tests/mutation.py [05 07 ...] [--jobs 2]
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATALOGUES = Path(__file__).resolve().parent / "mutations"
sys.path[:0] = [folder for folder in (str(ROOT), str(CATALOGUES.parent)) if folder not in sys.path]

from mutations import Mistake  # noqa: E402
from tito.course import Module, load_course  # noqa: E402
from tito.errors import TitoError  # noqa: E402
from tito.notebook import cell_results, execute, grade_id, module_notebook  # noqa: E402

# Per cell, in seconds. Generous on purpose: an endless loop must be stopped by the lesson's own test (a step
# budget and a message); running into this timer counts as not caught.
CELL_TIMEOUT = 120
UNMUTATED = "(the lesson as written)"


@dataclass(frozen=True)
class Outcome:
    lesson: str
    mistake: str
    verdict: str  # "caught" / "passes" (unmutated), or why not: "missed", "failed elsewhere", "wrong message", ...
    cell: str = ""  # the first cell that failed
    message: str = ""  # its error, `ename: evalue`

    @property
    def ok(self) -> bool:
        return self.verdict in ("caught", "passes")

    def row(self) -> str:
        first_line = self.message.splitlines()[0] if self.message else ""
        return f"{self.lesson:<16} {self.mistake[:52]:<52} {self.verdict:<15} {self.cell:<34} {first_line[:110]}"


def load_catalogue(module: Module) -> list[Mistake]:
    """The lesson's `MISTAKES`, loaded by path (the file name starts with a digit, so it cannot be imported)."""
    path = CATALOGUES / f"{module.name}.py"
    if not path.exists():
        raise ValueError(f"no catalogue {path.relative_to(ROOT)}")
    spec = importlib.util.spec_from_file_location(f"mutations.lesson_{module.name}", path)
    catalogue = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(catalogue)
    mistakes = list(catalogue.MISTAKES)
    names = [mistake.name for mistake in mistakes]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"mistake names used twice: {', '.join(repeated)}")
    return mistakes


def mutate(module: Module, mistake: Mistake):
    """The lesson as a notebook, with the mistake's edit made, cut after the test that must catch it.

    Raises ValueError naming what is wrong with the mistake (a cell that does not exist, a text to replace that
    does not occur exactly once): such a mistake is a catalogue error, never silently skipped.
    """
    notebook = module_notebook(module)
    ids = [grade_id(cell) for cell in notebook.cells]
    for wanted in (mistake.cell, mistake.caught_by):
        if wanted not in ids:
            raise ValueError(f"{module.name} has no cell with grade_id {wanted!r}")
    target, test = ids.index(mistake.cell), ids.index(mistake.caught_by)
    if test < target:
        raise ValueError(f"the test {mistake.caught_by!r} comes before the cell {mistake.cell!r}")
    source = notebook.cells[target].source
    for find, replace in mistake.edits():
        if source.count(find) != 1:
            raise ValueError(f"{find!r} occurs {source.count(find)} times in {mistake.cell!r}, not once")
        source = source.replace(find, replace)
    notebook.cells[target].source = source
    notebook.cells = notebook.cells[:test + 1]
    return notebook


def run_until_failure(notebook) -> tuple[str, str] | None:
    """Run the cells in order in a fresh kernel; the first cell that raises (its name and error), or None."""
    executed = execute(notebook, cwd=ROOT, timeout=CELL_TIMEOUT, stop_at_error=True)
    failure = next((result for result in cell_results(executed) if not result.passed), None)
    return None if failure is None else (failure.name, failure.message)


def check_unmutated(module: Module) -> Outcome:
    try:
        failure = run_until_failure(module_notebook(module))
    except TitoError as error:
        return Outcome(module.name, UNMUTATED, "stopped", message=str(error))
    if failure is None:
        return Outcome(module.name, UNMUTATED, "passes")
    return Outcome(module.name, UNMUTATED, "fails", *failure)


def try_mistake(module: Module, mistake: Mistake) -> Outcome:
    try:
        notebook = mutate(module, mistake)
    except ValueError as error:
        return Outcome(module.name, mistake.name, "catalogue error", message=str(error))
    try:
        failure = run_until_failure(notebook)
    except TitoError as error:  # a cell ran past CELL_TIMEOUT, or the kernel died
        return Outcome(module.name, mistake.name, "stopped", message=str(error))
    if failure is None:
        return Outcome(module.name, mistake.name, "missed")
    cell, message = failure
    if cell != mistake.caught_by:
        verdict = "failed elsewhere"
    elif not re.search(mistake.message, message, re.IGNORECASE | re.DOTALL):
        verdict = "wrong message"
    else:
        verdict = "caught"
    return Outcome(module.name, mistake.name, verdict, cell, message)


def checks(lessons: list[str] | None = None) -> list:
    """One call per run to make: each lesson as written, then each of its mistakes."""
    course = load_course(ROOT)
    modules = course.select(lessons) if lessons else [
        module for module in course.modules if (CATALOGUES / f"{module.name}.py").exists()]
    calls = []
    for module in modules:
        calls.append(functools.partial(check_unmutated, module))
        try:
            mistakes = load_catalogue(module)
        except Exception as error:  # any error in a catalogue file is reported as one, not raised
            calls.append(lambda module=module, error=error: Outcome(
                module.name, "(catalogue)", "catalogue error", message=f"{type(error).__name__}: {error}"))
            continue
        calls += [functools.partial(try_mistake, module, mistake) for mistake in mistakes]
    return calls


def run_check(lessons: list[str] | None = None, jobs: int = 2):
    """Outcomes in catalogue order, yielded as they are ready; `jobs` kernels run at once."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        yield from pool.map(lambda call: call(), checks(lessons))


def scores(outcomes: list[Outcome]) -> dict[str, tuple[int, int]]:
    """Per lesson: (mistakes caught, mistakes in the catalogue)."""
    table: dict[str, tuple[int, int]] = {}
    for outcome in outcomes:
        if outcome.mistake != UNMUTATED:
            caught, total = table.get(outcome.lesson, (0, 0))
            table[outcome.lesson] = (caught + outcome.ok, total + 1)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Apply each lesson's catalogue of student mistakes, one at a "
                                                 "time, and report which test caught each.")
    parser.add_argument("lessons", nargs="*", help="lessons to check (05, autograd or 05_autograd); "
                                                   "default: every lesson with a catalogue")
    parser.add_argument("--jobs", type=int, default=2, help="mistakes run at once, each in its own kernel")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    start = time.perf_counter()
    outcomes = []
    try:
        for outcome in run_check(args.lessons, args.jobs):
            print(outcome.row(), flush=True)
            outcomes.append(outcome)
    except TitoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for lesson, (caught, total) in scores(outcomes).items():
        print(f"{lesson}: {caught}/{total} caught")
    print(f"{sum(outcome.ok for outcome in outcomes)}/{len(outcomes)} as expected in "
          f"{time.perf_counter() - start:.0f} s with {args.jobs} jobs")
    return 0 if all(outcome.ok for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
