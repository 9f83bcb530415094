"""The mutation check: do a lesson's tests catch the mistakes students really make?

Each lesson has a catalogue, `tests/mutations/NN_name.py`, listing plausible mistakes (`Mistake`): one edit to
one solution cell, and the test cell that must catch it. For every mistake the lesson is read with jupytext,
edited, and run in a fresh Jupyter kernel up to that test, stopping at the first cell that raises. The mistake
is caught when that first failing cell is the expected test and its error matches the expected message. The
unmutated lesson must pass every test (run once per lesson, up to its last test: `tito module test` runs the
systems analyses after it).

A full run that passes records each lesson's fingerprint in `tests/mutations/verified.json`: a hash of the
lesson, its catalogue, this harness and every file of the package its kernel imported. A run without lesson
names (CI's) runs every lesson as written, then the mistakes only of the lessons whose fingerprint differs from
the recorded one; the others are as they were when all their mistakes were caught.

    python tests/mutation.py            # lessons changed since the last full run
    python tests/mutation.py --all      # every lesson, every mistake; records verified.json when all pass
    python tests/mutation.py 05 07      # these lessons, every mistake
    (each with --jobs N: kernels run at once, 2 by default)
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import importlib.util
import json
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
CATALOGUES = Path(__file__).resolve().parent / "mutations"
sys.path[:0] = [folder for folder in (str(ROOT), str(CATALOGUES.parent)) if folder not in sys.path]

from mutations import Mistake  # noqa: E402
from tito.course import Module, load_course  # noqa: E402
from tito.errors import TitoError  # noqa: E402
from tito.notebook import TEST, cell_role, execute, grade_id, module_notebook  # noqa: E402
from tito.testing import cell_results  # noqa: E402

# Per cell, in seconds. Generous on purpose: an endless loop must be stopped by the lesson's own test (a step
# budget and a message); running into this timer counts as not caught.
CELL_TIMEOUT = 120
UNMUTATED = "(the lesson as written)"
UNCHANGED = "(its mistakes)"
VERIFIED = CATALOGUES / "verified.json"
# The code that turns a mistake into a verdict: a change here can change any lesson's outcome.
HARNESS = ("tests/mutation.py", "tests/mutations/__init__.py", "tito/notebook.py", "tito/testing.py", "tito/stubs.py")
# Run after the lesson's last test: the package files its kernel imported (they go into its fingerprint).
LIST_PACKAGE_FILES = ("import sys\n"
                      "print(*sorted({module.__file__ for name, module in list(sys.modules.items())\n"
                      "               if name.partition('.')[0] == 'tinytorch' and getattr(module, '__file__', None)}),\n"
                      "      sep='\\n')")


@dataclass(frozen=True)
class Outcome:
    lesson: str
    mistake: str
    verdict: str  # "caught" / "passes" (unmutated) / "unchanged" (not run), or why not: "missed", "wrong message", ...
    cell: str = ""  # the first cell that failed
    message: str = ""  # its error, `ename: evalue`
    seconds: float = 0.0  # wall time of the run
    fingerprint: str = ""  # the lesson as written, when it passes: see `fingerprint`

    @property
    def ok(self) -> bool:
        return self.verdict in ("caught", "passes", "unchanged")

    def row(self) -> str:
        first_line = self.message.splitlines()[0] if self.message else ""
        return (f"{self.lesson:<16} {self.mistake[:52]:<52} {self.verdict:<15} {self.seconds:>4.0f}s "
                f"{self.cell:<34} {first_line[:110]}")


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


def first_failure(executed) -> tuple[str, str] | None:
    """The first cell of a run that raised (its name and error), or None."""
    failure = next((result for result in cell_results(executed) if not result.passed), None)
    return None if failure is None else (failure.name, failure.message)


def run_until_failure(notebook) -> tuple[str, str] | None:
    """Run the cells in order in a fresh kernel; the first cell that raises (its name and error), or None."""
    return first_failure(execute(notebook, cwd=ROOT, timeout=CELL_TIMEOUT, stop_at_error=True))


def fingerprint(module: Module, package_files: list[Path]) -> str:
    """One hash of everything a lesson's mutation outcomes depend on: the harness, the lesson, its catalogue and
    the package files its kernel imported (earlier lessons' exports, and any later one it peeks at)."""
    root = module.directory.parent.parent
    files = [*(root / name for name in HARNESS), module.source, root / "tests" / "mutations" / f"{module.name}.py",
             *sorted(package_files)]
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(root)}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()


def check_unmutated(module: Module) -> Outcome:
    notebook = module_notebook(module)
    last_test = max((index for index, cell in enumerate(notebook.cells) if cell_role(cell) == TEST), default=-1)
    notebook.cells = notebook.cells[:last_test + 1] + [nbformat.v4.new_code_cell(LIST_PACKAGE_FILES)]
    try:
        executed = execute(notebook, cwd=ROOT, timeout=CELL_TIMEOUT, stop_at_error=True)
    except TitoError as error:
        return Outcome(module.name, UNMUTATED, "stopped", message=str(error))
    failure = first_failure(executed)
    if failure is not None:
        return Outcome(module.name, UNMUTATED, "fails", *failure)
    listed = "".join(output.get("text", "") for output in executed.cells[-1].outputs)
    return Outcome(module.name, UNMUTATED, "passes",
                   fingerprint=fingerprint(module, [Path(line) for line in listed.split()]))


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


def catalogued(lessons: list[str] | None = None) -> list[Module]:
    """The lessons named (one without a catalogue is then a catalogue error), else every lesson with a catalogue."""
    course = load_course(ROOT)
    if lessons:
        return course.select(lessons)
    return [module for module in course.modules if (CATALOGUES / f"{module.name}.py").exists()]


def mistake_checks(module: Module) -> list:
    """One call per mistake of the lesson (or one that reports its catalogue's error)."""
    try:
        mistakes = load_catalogue(module)
    except Exception as error:  # any error in a catalogue file is reported as one, not raised
        message = f"{type(error).__name__}: {error}"  # `error` itself is unbound once the except block ends
        return [lambda: Outcome(module.name, "(catalogue)", "catalogue error", message=message)]
    return [functools.partial(try_mistake, module, mistake) for mistake in mistakes]


def timed(call) -> Outcome:
    start = time.perf_counter()
    return dataclasses.replace(call(), seconds=time.perf_counter() - start)


def read_verified() -> dict[str, str]:
    """Each lesson's fingerprint at the last full run that passed (none when there was none)."""
    return json.loads(VERIFIED.read_text()) if VERIFIED.exists() else {}


def run_check(lessons: list[str] | None = None, jobs: int = 2, changed_only: bool = False):
    """Outcomes, yielded as they are ready: each lesson as written, then each mistake; `jobs` kernels run at once.

    With `changed_only`, a lesson whose fingerprint is the one recorded at the last full run yields a single
    "unchanged" outcome instead of running its mistakes.
    """
    modules = catalogued(lessons)
    verified = read_verified() if changed_only else {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        as_written = []
        for outcome in pool.map(timed, [functools.partial(check_unmutated, module) for module in modules]):
            as_written.append(outcome)
            yield outcome
        calls = []
        for module, outcome in zip(modules, as_written):
            if outcome.fingerprint and verified.get(module.name) == outcome.fingerprint:
                calls.append(lambda module=module: Outcome(module.name, UNCHANGED, "unchanged",
                                                           message=f"as at the last full run ({VERIFIED.name})"))
            else:
                calls += mistake_checks(module)
        yield from pool.map(timed, calls)


def record_verified(outcomes: list[Outcome]) -> int:
    """Write each lesson's fingerprint, after a full run in which every outcome was as expected; how many."""
    fingerprints = {outcome.lesson: outcome.fingerprint for outcome in outcomes if outcome.mistake == UNMUTATED}
    VERIFIED.write_text(json.dumps(fingerprints, indent=1, sort_keys=True) + "\n")
    return len(fingerprints)


def scores(outcomes: list[Outcome]) -> dict[str, tuple[int, int]]:
    """Per lesson that ran its mistakes: (mistakes caught, mistakes in the catalogue)."""
    table: dict[str, tuple[int, int]] = {}
    for outcome in outcomes:
        if outcome.mistake not in (UNMUTATED, UNCHANGED):
            caught, total = table.get(outcome.lesson, (0, 0))
            table[outcome.lesson] = (caught + outcome.ok, total + 1)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Apply each lesson's catalogue of student mistakes, one at a "
                                                 "time, and report which test caught each.")
    parser.add_argument("lessons", nargs="*", help="lessons to check, every mistake (05, autograd or 05_autograd); "
                                                   "default: the lessons changed since the last full run")
    parser.add_argument("--all", action="store_true", help=f"every mistake of every lesson; when all are caught, "
                                                           f"record the lessons' fingerprints in {VERIFIED.name}")
    parser.add_argument("--jobs", type=int, default=2, help="mistakes run at once, each in its own kernel")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    if args.all and args.lessons:
        parser.error("--all checks every lesson: name no lesson with it")
    start = time.perf_counter()
    outcomes = []
    try:
        for outcome in run_check(args.lessons, args.jobs, changed_only=not (args.all or args.lessons)):
            print(outcome.row(), flush=True)
            outcomes.append(outcome)
    except TitoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for lesson, (caught, total) in scores(outcomes).items():
        print(f"{lesson}: {caught}/{total} caught")
    passed = all(outcome.ok for outcome in outcomes)
    print(f"{sum(outcome.ok for outcome in outcomes)}/{len(outcomes)} as expected in "
          f"{time.perf_counter() - start:.0f} s with {args.jobs} jobs")
    if args.all and passed:
        print(f"recorded the fingerprints of {record_verified(outcomes)} lessons in {VERIFIED.relative_to(ROOT)}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
