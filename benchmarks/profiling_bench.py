"""Benchmark: what module 12's profiler costs, off and on.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/profiling_bench.py

Measures, with NumPy's BLAS on one thread:
  (a) off: autograd_bench's fixed cost per operation (a 200-operation chain on one element, forward and
      backward) in fresh processes that never import the profiler, against fresh processes that switched a
      Profiler on and off before timing; the processes alternate and each side keeps its best;
  (b) on: the same chain inside a fresh Profiler, against the chain without one, per operation (switching the
      Profiler on and off, which looks for the recording functions in every loaded module, is included and
      also timed alone);
  (c) the training step of `tito milestone gpt`'s model (batch 32 x 64 positions) with the profiler off and on.
Every number is a best of interleaved repeats. A script, not a test: it exits 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

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


def on_against_off(repeats: int) -> tuple[float, float, float]:
    """(off, on) seconds per operation of the chain (on: a fresh Profiler per chain, switching included), and the
    seconds a Profiler takes to switch on and off with nothing inside."""
    from tinytorch.core.profiling import Profiler

    work = chain()

    def profiled():
        with Profiler():
            work()

    def switch_only():
        with Profiler():
            pass

    times = best_of({"off": work, "on": profiled, "switch": switch_only}, 20, repeats)
    return times["off"] / CHAIN, times["on"] / CHAIN, times["switch"]


def gpt_step_off_on(repeats: int) -> tuple[float, float, int]:
    """(off, on) seconds per training step of the milestone's GPT, and the events one profiled step records."""
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

    def profiled():
        with Profiler() as profiler:
            step()
        return profiler

    times = best_of({"off": step, "on": profiled}, 1, repeats)
    return times["off"], times["on"], len(profiled().events)


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
        chain_off, chain_on, switch = on_against_off(args.repeats)
        step_off, step_on, events = gpt_step_off_on(args.repeats)
    ratios = {"off": off / never, "on": chain_on / chain_off}
    print(f"(a) per operation, {CHAIN}-operation chain, forward + backward, best of {args.processes} processes each")
    print(f"    never profiled {never * 1e6:.3f} us, profiler switched on and off before {off * 1e6:.3f} us: {ratios['off']:.3f}x")
    print(f"(b) per operation in one process: off {chain_off * 1e6:.3f} us, on {chain_on * 1e6:.3f} us: {ratios['on']:.2f}x "
          f"(switching a Profiler on and off alone: {switch * 1e3:.2f} ms)")
    print(f"(c) GPT training step (forward + backward, batch 32 x 64): off {step_off * 1e3:.1f} ms, on {step_on * 1e3:.1f} ms: "
          f"{step_on / step_off:.2f}x for {events} events")
    missed = [name for name, (label, limit) in TARGETS.items() if ratios[name] > limit]
    for name, (label, limit) in TARGETS.items():
        print(f"target: {label} at most {limit}x: {ratios[name]:.3f}x {'missed' if name in missed else 'holds'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
