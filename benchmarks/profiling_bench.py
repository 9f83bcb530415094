"""Benchmark: what module 12's profiler costs, off and on.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/profiling_bench.py

Measures, with NumPy's BLAS on one thread:
  (a) off: autograd_bench's fixed cost per operation (a 200-operation chain on one element, forward and
      backward) in fresh processes that never import the profiler, against fresh processes that switched a
      Profiler on and off before timing; the processes alternate and each side keeps its best;
  (b) on: the same chain timed inside a `with Profiler():` block, against the chain without one, per operation;
      and the whole block (switching the Profiler on and off, and building its events from its log when it
      stops), which the profiled code does not pay for but a user waits for;
  (c) the training step of `tito milestone gpt`'s model (batch 32 x 64 positions) off, on, and the whole block.
Every number is a best of interleaved repeats. A script, not a test: it exits 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from time import perf_counter

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from autograd_bench import CHAIN, _chain, best_of  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from tinytorch.core.autograd import Variable  # noqa: E402

TARGETS = {"off": ("profiler off: per-operation cost vs never profiled", 1.02),
           "on": ("profiler on: per-operation cost vs off", 2.0)}


def chain() -> callable:
    return _chain(Variable(np.ones(1, dtype=np.float32), requires_grad=True))


def per_op_in_this_process(profiled_before: bool, repeats: int) -> float:
    """Seconds per operation of the chain here; with `profiled_before`, after a Profiler was switched on and off."""
    if profiled_before:
        from tinytorch.core.profiling import Profiler

        with Profiler():
            chain()()
    return best_of({"chain": chain()}, 20, repeats)["chain"] / CHAIN


def off_against_never(processes: int, repeats: int) -> tuple[float, float]:
    """(never profiled, profiled then off): seconds per operation, each the best over alternating fresh processes."""
    best = {False: float("inf"), True: float("inf")}
    for index in range(2 * processes):
        side = bool(index % 2)
        out = subprocess.run([sys.executable, __file__, "--one-process", str(int(side)), "--repeats", str(repeats)],
                             capture_output=True, text=True, check=True).stdout
        best[side] = min(best[side], json.loads(out))
    return best[False], best[True]


def off_on_whole(work, inner: int, repeats: int) -> tuple[float, float, float]:
    """Seconds per call of `work()`: off; on, timed inside a `with Profiler():` block; and that whole block (switching
    on and off and building the events included); each the best of `repeats` rounds of `inner` calls, off and on
    taking turns to go first."""
    from tinytorch.core.profiling import Profiler

    def off() -> float:
        start = perf_counter()
        for _ in range(inner):
            work()
        return (perf_counter() - start) / inner

    def on() -> tuple[float, float]:
        start = perf_counter()
        with Profiler():
            begun = perf_counter()
            for _ in range(inner):
                work()
            inside = perf_counter() - begun
        return inside / inner, (perf_counter() - start) / inner

    best = [float("inf")] * 3
    for round_number in range(repeats):
        if round_number % 2:
            inside, whole = on()
            unprofiled = off()
        else:
            unprofiled = off()
            inside, whole = on()
        best = [min(kept, now) for kept, now in zip(best, (unprofiled, inside, whole))]
    return tuple(best)


def on_against_off(repeats: int) -> tuple[float, float, float]:
    """(off, on, whole) seconds per operation of the chain, 20 chains per round."""
    return tuple(seconds / CHAIN for seconds in off_on_whole(chain(), 20, repeats))


def gpt_step_off_on(repeats: int) -> tuple[float, float, float, int]:
    """(off, on, whole) seconds per training step of the milestone's GPT, and the events one profiled step records."""
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.profiling import Profiler
    from tinytorch.core.tensor import Tensor
    from tinytorch.core.transformer import GPT, PerPositionLogits

    rng = np.random.default_rng(0)
    model = PerPositionLogits(GPT(103, 64, d_model=64, num_heads=4, num_layers=2, rng=rng))
    ids = rng.integers(0, 103, (32, 65))
    inputs, targets = Tensor(ids[:, :-1].astype(np.float32)), ids[:, 1:]
    loss_fn = CrossEntropyLoss()

    def step():
        loss_fn(model(inputs), targets).backward()

    with Profiler() as profiler:
        step()
    return (*off_on_whole(step, 1, repeats), len(profiler.events))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="rounds per measurement; the best is kept (default 9)")
    parser.add_argument("--processes", type=int, default=6, help="(a): fresh processes per side (default 6)")
    parser.add_argument("--one-process", type=int, choices=[0, 1], help=argparse.SUPPRESS)
    args = parser.parse_args()
    with threadpool_limits(1, "blas"):
        if args.one_process is not None:
            print(json.dumps(per_op_in_this_process(bool(args.one_process), args.repeats)))
            return 0
        never, off = off_against_never(args.processes, args.repeats)
        chain_off, chain_on, chain_whole = on_against_off(args.repeats)
        step_off, step_on, step_whole, events = gpt_step_off_on(args.repeats)
    ratios = {"off": off / never, "on": chain_on / chain_off}
    print(f"(a) per operation, {CHAIN}-operation chain, forward + backward, best of {args.processes} processes each")
    print(f"    never profiled {never * 1e6:.3f} us, profiler switched on and off before {off * 1e6:.3f} us: {ratios['off']:.3f}x")
    print(f"(b) per operation in one process: off {chain_off * 1e6:.3f} us, on {chain_on * 1e6:.3f} us: {ratios['on']:.2f}x; "
          f"the whole profiled block of 20 chains {chain_whole * 1e6:.3f} us: {chain_whole / chain_off:.2f}x")
    print(f"(c) GPT training step (forward + backward, batch 32 x 64): off {step_off * 1e3:.1f} ms, on {step_on * 1e3:.1f} ms: "
          f"{step_on / step_off:.2f}x; the whole profiled block {step_whole * 1e3:.1f} ms: {step_whole / step_off:.2f}x; "
          f"{events} events")
    missed = [name for name, (label, limit) in TARGETS.items() if ratios[name] > limit]
    for name, (label, limit) in TARGETS.items():
        print(f"target: {label} at most {limit}x: {ratios[name]:.3f}x {'missed' if name in missed else 'holds'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
