"""Benchmark: `tito nbgrader autograde` on a class of generated submissions, serial against parallel, with and
without the sandbox.

    python benchmarks/grading_bench.py            # 100 submissions of 01_tensor, four runs: about 25 minutes
    python benchmarks/grading_bench.py --count 20

In a private copy of the course (the repository's course/ is never touched), module 01 is released and
`--count` students hand it in: a mix of full solutions, half-done ones, untouched releases, endless loops
and cheats (an emptied test, an input transformer). The same class is then graded four times: serial
(`--jobs 1`) and `--jobs 2`, each in the sandbox and with `--no-sandbox`, and the script prints seconds per
submission and the ratios. It checks that every run gave every student the same score. It is a script, not a
test: timings on a shared machine are too noisy to assert on. It exits 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import copy_course  # noqa: E402
from tito.course import load_course  # noqa: E402
from tito.coursefolder import course_folder  # noqa: E402
from tito.grading.autograde import autograde  # noqa: E402
from tito.grading.release import release  # noqa: E402

MODULE = "01_tensor"
CELL_SECONDS = 5
TARGETS = {"parallel": ("--jobs 2 at least 1.7 x faster than serial (sandboxed)", 1.7),
           "sandbox": ("the sandbox adds at most 0.5 s per submission (serial)", 0.5)}


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="submissions to generate (default 100)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tito-grading-bench-") as scratch:
        root = copy_course(Path(scratch) / "repo")
        settings = root / "settings.ini"
        settings.write_text(re.sub(r"\ntimeout = \d+", f"\ntimeout = {CELL_SECONDS}", settings.read_text()))
        course = load_course(root)
        module = course.module(MODULE)
        release(course, module)
        folder = course_folder(course)
        source = nbformat.read(folder.source(module), as_version=4)
        released = nbformat.read(folder.release(module), as_version=4)
        for student, notebook in _class(source, released, args.count).items():
            path = folder.submitted(student, module)
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, path)
        seconds, scores = {}, {}
        for sandboxed in (True, False):
            for jobs in (1, 2):
                started = time.perf_counter()
                grades = autograde(course, module, jobs=jobs, sandboxed=sandboxed)
                seconds[sandboxed, jobs] = (time.perf_counter() - started) / args.count
                scores[sandboxed, jobs] = {grade.student: grade.score for grade in grades}
                print(f"  {'sandbox' if sandboxed else 'no sandbox':10}  --jobs {jobs}: "
                      f"{seconds[sandboxed, jobs]:.2f} s per submission", flush=True)
    same = all(result == scores[True, 1] for result in scores.values())
    parallel = seconds[True, 1] / seconds[True, 2]
    overhead = seconds[True, 1] - seconds[False, 1]
    print(f"\n{args.count} submissions of {MODULE} (full, half, blank, endless loop, cheat), cell timeout "
          f"{CELL_SECONDS} s, seconds per submission:\n")
    print("|            | --jobs 1 | --jobs 2 | speed-up |")
    print("|------------|---------:|---------:|---------:|")
    for sandboxed in (True, False):
        print(f"| {'sandbox' if sandboxed else 'no sandbox':10} | {seconds[sandboxed, 1]:8.2f} | "
              f"{seconds[sandboxed, 2]:8.2f} | {seconds[sandboxed, 1] / seconds[sandboxed, 2]:7.2f}x |")
    print(f"\nthe sandbox adds {overhead:+.2f} s per submission (serial); every run gave the same scores: {same}")
    missed = [TARGETS["parallel"][0]] * (parallel < TARGETS["parallel"][1]) + \
        [TARGETS["sandbox"][0]] * (overhead > TARGETS["sandbox"][1]) + ["the same scores in every run"] * (not same)
    for text in missed:
        print(f"target missed: {text}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
