"""Benchmark: `tito nbgrader autograde` on a class of generated submissions of modules 01 and 05, serial against
parallel, and against the grading code of another checkout (before) in the same run.

    python benchmarks/grading_bench.py --count 20
    git worktree add /tmp/before 96078d6      # the grading code before the judge (never committed)
    python benchmarks/grading_bench.py --count 20 --baseline /tmp/before

In a private copy of the course (the repository's course/ is never touched), each module is released and
`--count` students hand it in: a mix of full solutions, half-done ones, untouched releases, endless loops and
cheats (an input transformer). Each grading runs `tito.grading.autograde` in a fresh Python whose `tito` and
`tinytorch` come from one checkout: this one (after) or `--baseline` (before), which grades its own copy of the
same class. The gradings alternate (before, after, after, before, ...), so that a machine that gets busier or
quieter meanwhile weighs on both alike. The script prints seconds per submission and the ratios, checks that
every grading gave every student the same score, and exits 1 when a target is missed. It is a script, not a
test: timings on a shared machine are too noisy to assert on.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import copy_course  # noqa: E402
from tito.course import load_course  # noqa: E402
from tito.coursefolder import course_folder  # noqa: E402
from tito.grading.release import release  # noqa: E402

MODULES = ("01_tensor", "05_autograd")
CELL_SECONDS = 5
SLOWDOWN = 1.5   # after / before, per submission, serial: at most
SPEED_UP = 1.7   # --jobs 1 / --jobs 2 (after): at least
SANDBOX_COST = 0.5  # seconds per submission the sandbox may add (serial, module 01), with --sandbox-cost

# One grading, in a fresh Python importing tito and tinytorch from the checkout on its PYTHONPATH; prints JSON.
# It also times the waits after each kernel for the last process of its sandbox's user to end: that user (61000 +
# slot) is the same for every tito on the machine, so on a shared machine a run also waits for other sandboxes.
GRADE = """\
import json, sys, time
from pathlib import Path
from tito.course import load_course
from tito.grading import sandbox
from tito.grading.autograde import autograde
root, name, jobs, sandboxed = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "sandbox"
waited, wait_until_gone = [], sandbox._wait_until_gone
def timed_wait(*args, **kwargs):
    started = time.perf_counter()
    wait_until_gone(*args, **kwargs)
    waited.append(time.perf_counter() - started)
sandbox._wait_until_gone = timed_wait
course = load_course(Path(root))
started = time.perf_counter()
grades = autograde(course, course.module(name), jobs=jobs, sandboxed=sandboxed)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds / len(grades), "waited": sum(waited) / len(grades),
                  "scores": {grade.student: grade.score for grade in grades}}))
"""


def _class(source, released, count: int) -> dict[str, nbformat.NotebookNode]:
    """`count` submissions cycling through five kinds of work."""
    def with_cell(notebook, after_test_number, text):
        changed = copy.deepcopy(notebook)
        tests = [i for i, cell in enumerate(changed.cells) if cell.metadata.get("nbgrader", {}).get("grade")
                 and cell.cell_type == "code"]
        changed.cells.insert(tests[after_test_number] + 1, nbformat.v4.new_code_cell(text))
        return changed

    half = copy.deepcopy(released)
    solutions = [i for i, cell in enumerate(source.cells) if cell.metadata.get("nbgrader", {}).get("solution")
                 and cell.cell_type == "code"]
    for index in solutions[:len(solutions) // 2]:
        half.cells[index].source = source.cells[index].source
    cheat = with_cell(released, 0, "get_ipython().input_transformers_cleanup.append(lambda lines: [])")
    kinds = {"full": source, "half": half, "blank": released,
             "loop": with_cell(source, 1, "while True:\n    pass"), "cheat": cheat}
    names = list(kinds)
    return {f"{names[i % len(names)]}{i:03d}": kinds[names[i % len(names)]] for i in range(count)}


def make_class(root: Path, count: int) -> None:
    """A course at `root` with a short cell timeout, each of MODULES released and handed in by `count` students."""
    copy_course(root)
    settings = root / "settings.ini"
    settings.write_text(re.sub(r"\ntimeout = \d+", f"\ntimeout = {CELL_SECONDS}", settings.read_text()))
    course = load_course(root)
    folder = course_folder(course)
    for name in MODULES:
        module = course.module(name)
        release(course, module)
        source = nbformat.read(folder.source(module), as_version=4)
        released = nbformat.read(folder.release(module), as_version=4)
        for student, notebook in _class(source, released, count).items():
            path = folder.submitted(student, module)
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, path)


def grade(checkout: Path, course: Path, module: str, jobs: int, sandboxed: bool = True) -> dict:
    """Seconds per submission and each student's score, graded by `checkout`'s code."""
    environment = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run([sys.executable, "-c", GRADE, str(course), module, str(jobs),
                           "sandbox" if sandboxed else "no-sandbox"],
                          env=environment, cwd=course, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"grading {module} with {checkout} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="submissions per module (default 20)")
    parser.add_argument("--baseline", type=Path, help="a checkout of the code to compare with (before)")
    parser.add_argument("--sandbox-cost", action="store_true",
                        help=f"also grade {MODULES[0]} without the sandbox (serial), to measure what it adds")
    args = parser.parse_args()
    if args.baseline and not (args.baseline / "tito" / "grading" / "autograde.py").exists():
        parser.error(f"--baseline {args.baseline}: no tito/grading/autograde.py there (a checkout of this repository?)")
    checkouts = {"after": ROOT, **({"before": args.baseline.resolve()} if args.baseline else {})}
    results: dict[tuple[str, str, int], dict] = {}
    with tempfile.TemporaryDirectory(prefix="tito-grading-bench-") as scratch:
        courses = {"after": Path(scratch) / "after"}
        make_class(courses["after"], args.count)
        if args.baseline:
            courses["before"] = Path(scratch) / "before"
            shutil.copytree(courses["after"], courses["before"], symlinks=True)
        turn = 0
        for module in MODULES:
            for jobs in (1, 2):
                order = list(checkouts) if turn % 2 else list(checkouts)[::-1]
                turn += 1
                for version in order:
                    results[version, module, jobs] = grade(checkouts[version], courses[version], module, jobs)
                    result = results[version, module, jobs]
                    print(f"  {module}  {version:6}  --jobs {jobs}: {result['seconds']:.2f} s per submission (kernels "
                          f"waited {result['waited']:.2f} s each for their sandbox's user to be free)", flush=True)
        if args.sandbox_cost:
            unsandboxed = grade(ROOT, courses["after"], MODULES[0], 1, sandboxed=False)
            print(f"  {MODULES[0]}  after   --jobs 1, no sandbox: {unsandboxed['seconds']:.2f} s per submission")
    missed = report(results, args.count, bool(args.baseline))
    if args.sandbox_cost:
        cost = results["after", MODULES[0], 1]["seconds"] - unsandboxed["seconds"]
        print(f"the sandbox adds {cost:+.2f} s per submission ({MODULES[0]}, serial)")
        missed += [f"the sandbox adds at most {SANDBOX_COST} s per submission"] * (cost > SANDBOX_COST)
        missed += ["the same scores with and without the sandbox"] * (
            unsandboxed["scores"] != results["after", MODULES[0], 1]["scores"])
    for text in missed:
        print(f"target missed: {text}")
    return 1 if missed else 0


def report(results: dict, count: int, compared: bool) -> list[str]:
    """Print the table; the targets missed."""
    seconds = {key: result["seconds"] for key, result in results.items()}
    net = {key: result["seconds"] - result["waited"] for key, result in results.items()}  # --jobs 1: no overlap
    print(f"\n{count} submissions per module (full, half, blank, endless loop, cheat), cell timeout {CELL_SECONDS} s, "
          f"seconds per submission (--jobs 1: of it, waiting for the sandbox's user to be free):\n")
    print("| module | code | --jobs 1 | of it waiting | --jobs 2 | speed-up |"
          + (" after / before, --jobs 1 (without the waits) |" if compared else ""))
    print("|---|---|---:|---:|---:|---:|" + ("---:|" if compared else ""))
    missed = []
    for module in MODULES:
        for version in ("before", "after") if compared else ("after",):
            serial, parallel = seconds[version, module, 1], seconds[version, module, 2]
            ratio = ""
            if compared:
                ratio = " |" if version == "before" else (
                    f" {serial / seconds['before', module, 1]:.2f}x ({net[version, module, 1] / net['before', module, 1]:.2f}x) |")
            print(f"| {module} | {version} | {serial:.2f} | {results[version, module, 1]['waited']:.2f} | {parallel:.2f} | "
                  f"{serial / parallel:.2f}x |{ratio}")
        speed_up = seconds["after", module, 1] / seconds["after", module, 2]
        missed += [f"{module}: --jobs 2 at least {SPEED_UP}x faster than --jobs 1 ({speed_up:.2f}x)"] * (
            speed_up < SPEED_UP)
        if compared:
            slowdown = seconds["after", module, 1] / seconds["before", module, 1]
            missed += [f"{module}: at most {SLOWDOWN}x the time per submission before ({slowdown:.2f}x)"] * (
                slowdown > SLOWDOWN)
        missed += _differing_scores(module, {key: result["scores"] for key, result in results.items()
                                             if key[1] == module})
    return missed


def _differing_scores(module: str, scores: dict) -> list[str]:
    """A line per student whose score differs between gradings of `module`."""
    students = next(iter(scores.values()))
    differing = []
    for student in students:
        seen = {f"{version} --jobs {jobs}": score[student] for (version, _, jobs), score in scores.items()}
        if len(set(seen.values())) > 1:
            differing.append(f"{module}: the same score in every grading ({student}: "
                             + ", ".join(f"{run} {points:g}" for run, points in seen.items()) + ")")
    return differing


if __name__ == "__main__":
    sys.exit(main())
