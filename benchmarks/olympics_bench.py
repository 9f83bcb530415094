"""Benchmark: `tito olympics score` on a class of 30 entries, twice, and how stable the speed ranking is.

    python benchmarks/olympics_bench.py                 # 30 entries, scored twice with --jobs 2: about 3 minutes
    python benchmarks/olympics_bench.py --count 12 --repeats 5

The entries are MLPs of ten hidden widths (16 to 1,024) and one to three hidden layers, with seeded random
weights (speed does not depend on training), each packed with the course's own tinytorch package by
`tito.olympics_entry.pack_entry`, as a student's `tito olympics submit` packs it. The whole folder is scored twice
by `tito.grading.olympics.score_entries` in the grading sandbox, `--jobs` sessions side by side, and the script prints the
wall time, the time per entry, and the Spearman rank correlation of the two scorings' speed ratios (and, for
comparison, of the raw median times). It is a script, not a test: timings on a shared machine are too noisy to
assert on. It exits 1 when the target is missed.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tito.course import load_course  # noqa: E402
from tito.grading.autograde import grading_limits  # noqa: E402
from tito.grading.olympics import score_entries  # noqa: E402
from tito.olympics_entry import pack_entry  # noqa: E402

WIDTHS = (16, 32, 64, 128, 192, 256, 384, 512, 768, 1024)
TARGET = ("Spearman rank correlation of the speed ratios, two scorings, at least 0.9", 0.9)


def class_of_entries(folder: Path, count: int) -> None:
    """`count` entries: every (hidden layers, width) pair in turn, seeded random weights."""
    package = ROOT / "tinytorch"
    shapes = list(itertools.product((1, 2, 3), WIDTHS))[:count]
    for number, (layers, width) in enumerate(shapes):
        widths = (64, *([width] * layers), 10)
        rng = np.random.default_rng(number)
        weights = {}
        for index, (fan_in, fan_out) in enumerate(zip(widths, widths[1:])):
            weights[f"{2 * index}.weight"] = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
            weights[f"{2 * index}.bias"] = np.zeros(fan_out, dtype=np.float32)
        path = folder / f"weights-{number}.npz"
        np.savez(path, **weights)
        pack_entry("digits-fastest", f"s{number:02d}-{layers}x{width}", path, package, folder / "entries")


def spearman(first: list[float], second: list[float]) -> float:
    """Pearson correlation of the ranks (ties share their mean rank)."""
    def ranks(values):
        order = np.argsort(values, kind="stable")
        ranked = np.empty(len(values))
        ranked[order] = np.arange(len(values))
        for value in set(values):  # ties: the mean of their ranks
            tied = np.asarray(values) == value
            ranked[tied] = ranked[tied].mean()
        return ranked
    return float(np.corrcoef(ranks(first), ranks(second))[0, 1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    course = load_course(ROOT)
    limits = grading_limits(course)
    with tempfile.TemporaryDirectory(prefix="olympics-bench-") as scratch:
        folder = Path(scratch)
        class_of_entries(folder, args.count)
        scorings = []
        for attempt in (1, 2):
            start = time.perf_counter()
            scores = score_entries(folder / "entries", "digits-fastest", ROOT / "tinytorch", limits, args.jobs,
                                   args.repeats, seed=attempt)
            seconds = time.perf_counter() - start
            invalid = [f"{s.name}: {s.reason}" for s in scores if not s.valid]
            print(f"scoring {attempt}: {len(scores)} entries, --jobs {args.jobs}, --repeats {args.repeats}: {seconds:.1f} s, "
                  f"{seconds / len(scores):.2f} s per entry; invalid: {invalid or 'none'}")
            scorings.append({s.name: s for s in scores})
    names = sorted(name for name in scorings[0] if scorings[0][name].valid and scorings[1][name].valid)
    print(f"{'entry':14} {'ratio 1':>8} {'ratio 2':>8} {'entry ms 1':>11} {'entry ms 2':>11} {'ref ms 1':>9} {'ref ms 2':>9}")
    for name in names:
        a, b = scorings[0][name], scorings[1][name]
        print(f"{name:14} {a.speed_ratio:>8.3f} {b.speed_ratio:>8.3f} {a.entry_ms:>11.2f} {b.entry_ms:>11.2f} "
              f"{a.reference_ms:>9.2f} {b.reference_ms:>9.2f}")
    by_ratio = spearman([scorings[0][n].speed_ratio for n in names], [scorings[1][n].speed_ratio for n in names])
    by_time = spearman([scorings[0][n].entry_ms for n in names], [scorings[1][n].entry_ms for n in names])
    print(f"Spearman of the two scorings over {len(names)} entries: speed ratios {by_ratio:.3f}, raw median times {by_time:.3f}")
    met = by_ratio >= TARGET[1]
    print(f"target: {TARGET[0]}: {'met' if met else 'MISSED'} ({by_ratio:.3f})")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
