"""Benchmark: tinytorch's autograd against PyTorch (CPU, eager, one thread) and hand-written NumPy.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/autograd_bench.py

Measures, in one run, the same work three ways (tinytorch, PyTorch, NumPy by hand):
  (a) the fixed cost per operation: a 200-operation chain on a 1-element float32 tensor, forward and backward;
  (b) one training step (forward, backward, SGD update) of a 64-128-10 ReLU MLP with MSE loss, float32,
      at batch 64 and 1024;
  (c) backward time against graph size (chains of 1,000 to 100,000 operations);
  (d) with `--before DIR` (the root of an earlier checkout, e.g. from `git worktree add`): (a) and (b) for this
      engine and that one, so "did this change make anything slower?" is answered in one run: timed, each engine
      in fresh processes with glibc's malloc thresholds fixed, and (with `--instructions`) counted by callgrind.
Every number is the best of several interleaved repeats (the machine is shared; the best is the least
disturbed). NumPy's BLAS and PyTorch are both pinned to one thread so that the comparison is fair.
This is a script, not a test: timing assertions would be flaky on shared machines. It exits 1 when a
target is missed, so that a person running it sees it at once.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's tinytorch, run from anywhere

from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from tinytorch.core.autograd import Variable  # noqa: E402
import tinytorch.core.operations  # noqa: E402,F401 (module 06 gives Variable relu, ** and mean)

torch = None  # imported by main(): the processes of (d), which time one engine each, do without it

TARGETS = {
    "per-op": ("per-operation cost (forward + backward) <= 0.7 x PyTorch's", 0.7),
    "batch 1024": ("MLP step at batch 1024 <= 1.25 x hand-written NumPy's", 1.25),
    "batch 64": ("MLP step at batch 64 <= 1.0 x PyTorch's", 1.0),
}


def best_of(functions: dict, inner: int, repeats: int) -> dict:
    """Seconds per call of each function: the best over `repeats` rounds, each the mean of `inner` calls.

    The functions take turns inside each round, so a slow moment of the machine hits all of them alike, and
    each round starts one place further along: whichever runs first after another framework's round is
    measured slower (the same engine in both columns: 2% in the median of ten runs, up to 10%).
    """
    names = list(functions)
    best = {name: float("inf") for name in names}
    for round_number in range(repeats):
        start_at = round_number % len(names)
        for name in names[start_at:] + names[:start_at]:
            fn = functions[name]
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / inner)
    return best


# ------------------------------------------------------------------ (a) fixed cost per operation

CHAIN = 200
MUL, ADD = 1.0001, 0.001


def engine_from(root: Path) -> type:
    """The `Variable` of the tinytorch checked out at `root`, loaded beside this checkout's own.

    Its modules are imported under their usual names and then moved out of `sys.modules`, so that the
    imports that follow find this checkout's; the loaded functions keep the globals they were made with.
    """
    ours = lambda: [name for name in sys.modules if name == "tinytorch" or name.startswith("tinytorch.")]
    saved = {name: sys.modules.pop(name) for name in ours()}
    sys.path.insert(0, str(root))
    try:
        module = importlib.import_module("tinytorch.core.autograd")
        importlib.import_module("tinytorch.core.operations")  # module 06 completes its Variable (relu, **, mean)
    finally:
        sys.path.remove(str(root))
        for name in ours():
            del sys.modules[name]
        sys.modules.update(saved)
    if not Path(module.__file__).resolve().is_relative_to(root.resolve()):
        raise SystemExit(f"{root}: its tinytorch was not the one imported ({module.__file__})")
    return module.Variable


def chain_benchmarks(engines: dict) -> dict:
    """One chain function per framework; `engines` maps a column name to a tinytorch `Variable` class."""
    one = np.ones(1, dtype=np.float32)
    functions = {name: _chain(engine(one.copy(), requires_grad=True)) for name, engine in engines.items()}

    def numpy_chain():  # forward values, then the chain rule by hand: only the multiplies scale the gradient
        y = one
        for _ in range(CHAIN // 2):
            y = y * MUL
            y = y + ADD
        grad = np.ones_like(y)
        for _ in range(CHAIN // 2):
            grad = grad * MUL
        return grad

    functions["numpy"] = numpy_chain
    if torch is not None:
        functions["pytorch"] = _chain(torch.ones(1, dtype=torch.float32, requires_grad=True))
    return functions


def _chain(leaf):
    """The chain, forward and backward, from `leaf` (a tinytorch Variable or a torch tensor: same spelling)."""
    def chain():
        y = leaf
        for _ in range(CHAIN // 2):
            y = y * MUL
            y = y + ADD
        y.backward()
        leaf.grad = None

    return chain


# ------------------------------------------------------------------ (b) an MLP training step

LR = 0.01


MLP_BATCHES = [(64, 200), (1024, 30)]  # (batch size, steps per timed round)


def mlp_benchmarks(batch: int, engines: dict) -> tuple[dict, dict]:
    """Step functions for each framework, all starting from the same float32 weights and data."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 64)).astype(np.float32)
    y = rng.standard_normal((batch, 10)).astype(np.float32)
    init = [(rng.standard_normal((64, 128)) * np.sqrt(2 / 64)).astype(np.float32), np.zeros(128, np.float32),
            (rng.standard_normal((128, 10)) * np.sqrt(2 / 128)).astype(np.float32), np.zeros(10, np.float32)]
    functions = {name: _tinytorch_step(engine, x, y, init) for name, engine in engines.items()}
    losses = {name: step().item() for name, step in functions.items()}

    nW1, nb1, nW2, nb2 = (p.copy() for p in init)

    def numpy_step():
        z1 = x @ nW1 + nb1
        h = np.maximum(z1, 0)
        out = h @ nW2 + nb2
        diff = out - y
        loss = (diff * diff).mean()
        d_out = diff * (2.0 / diff.size)
        dW2, db2 = h.T @ d_out, d_out.sum(axis=0)
        dz1 = (d_out @ nW2.T) * (z1 > 0)
        dW1, db1 = x.T @ dz1, dz1.sum(axis=0)
        for p, g in ((nW1, dW1), (nb1, db1), (nW2, dW2), (nb2, db2)):
            p -= LR * g
        return loss

    functions["numpy"] = numpy_step
    losses["numpy"] = float(numpy_step())
    if torch is not None:
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        tparams = [torch.tensor(p, requires_grad=True) for p in init]
        tW1, tb1, tW2, tb2 = tparams

        def torch_step():
            out = torch.relu(tx @ tW1 + tb1) @ tW2 + tb2
            loss = ((out - ty) ** 2).mean()
            for p in tparams:
                p.grad = None
            loss.backward()
            with torch.no_grad():
                for p in tparams:
                    p.sub_(p.grad, alpha=LR)
            return loss

        functions["pytorch"] = torch_step
        losses["pytorch"] = torch_step().item()
    return functions, losses


def _tinytorch_step(engine: type, x: np.ndarray, y: np.ndarray, init: list):
    params = [engine(p.copy(), requires_grad=True) for p in init]
    W1, b1, W2, b2 = params

    def step():
        out = (x @ W1 + b1).relu() @ W2 + b2
        loss = ((out - y) ** 2).mean()
        for p in params:
            p.grad = None
        loss.backward()
        for p in params:
            p.data.data -= LR * p.grad
        return loss

    return step


# ------------------------------------------------------------------ (c) backward time against graph size

def backward_scaling(sizes: list[int], repeats: int) -> list[tuple[int, float, float | None]]:
    rows = []
    for n in sizes:
        rounds = max(3, min(repeats, 300_000 // n))  # fewer rounds for the big graphs: each takes a while
        leaf = Variable(np.ones(1, dtype=np.float32), requires_grad=True)
        y = leaf
        for _ in range(n // 2):
            y = y * MUL
            y = y + ADD
        # The same graph each round: retain_graph=True keeps it (a plain backward releases it, as PyTorch does).
        ours = min(_timed(lambda: y.backward(retain_graph=True)) for _ in range(rounds))
        theirs = None
        if torch is not None:
            theirs = float("inf")
            for _ in range(rounds):  # PyTorch frees its graph after backward: rebuild it each time
                t = torch.ones(1, requires_grad=True)
                z = t
                for _ in range(n // 2):
                    z = z * MUL
                    z = z + ADD
                theirs = min(theirs, _timed(z.backward))
        rows.append((n, ours, theirs))
        del y, leaf
    return rows


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ------------------------------------------------------------------ (d) this engine against an earlier one

HERE = Path(__file__).resolve().parent.parent  # this checkout's root
# (d)'s work: name -> (row label, operations per call, calls that callgrind counts)
WORK = {"per-op": ("fixed cost per operation", CHAIN, 50), "batch 64": ("MLP step, batch 64", 1, 200),
        "batch 1024": ("MLP step, batch 1024", 1, 30)}


def engine_workloads(root: Path) -> dict:
    """(a) and (b) for the engine checked out at `root`: {name in WORK: (function, calls per timed round)}."""
    engines = {"engine": engine_from(root)}
    workloads = {"per-op": (chain_benchmarks(engines)["engine"], 20)}
    for batch, inner in MLP_BATCHES:
        workloads[f"batch {batch}"] = (mlp_benchmarks(batch, engines)[0]["engine"], inner)
    return workloads


def time_engine(root: Path, repeats: int) -> dict:
    """Seconds per operation (a) or per step (b) of the engine at `root`, each the best of `repeats` rounds."""
    return {name: best_of({name: function}, inner, repeats)[name] / WORK[name][1]
            for name, (function, inner) in engine_workloads(root).items()}


def _engine_process(root: Path, *options: str) -> list[str]:
    return [sys.executable, __file__, "--time-engine", str(root), *options]


# glibc moves its mmap threshold after each large free, so whatever ran earlier in a process decides whether a
# step's large arrays come from the heap or from fresh pages: on a batch-1024 step, 0 or 224 page faults and up to
# 2x the time, for either engine. Fixed thresholds leave the engines' own work to compare.
FIXED_MALLOC = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=67108864"}


def _timed_in_own_process(root: Path, repeats: int) -> dict:
    done = subprocess.run(_engine_process(root, "--repeats", str(repeats)), capture_output=True, text=True, check=False,
                          env={**os.environ, **FIXED_MALLOC})
    if done.returncode != 0:
        raise SystemExit(f"timing the engine at {root} failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout)


def instructions(root: Path, workload: str) -> float:
    """Instructions per operation or step of `workload`, counted by valgrind's callgrind: the same to 0.3% from run
    to run, where timings on a shared machine vary by a third.

    Two runs, with 0 calls and with WORK's count, so that starting Python and building the workload cancel out. BLAS
    runs without its thread pool: its idle threads spin for as long as the scheduler lets them, which is not work.
    """
    def total(count: int) -> int:
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "callgrind.out"
            command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                       *_engine_process(root, "--workload", workload, "--calls", str(count))]
            done = subprocess.run(command, capture_output=True, text=True, check=False,
                                  env={**os.environ, **FIXED_MALLOC, "OPENBLAS_NUM_THREADS": "1"})
            if done.returncode != 0:
                raise SystemExit(f"counting {workload} of the engine at {root} failed:\n{done.stderr.strip()[-2000:]}")
            return int(re.search(r"^summary: (\d+)$", out.read_text(), re.MULTILINE).group(1))

    _, operations, calls = WORK[workload]
    return (total(calls) - total(0)) / calls / operations


def compare_engines(before: Path, pairs: int, repeats: int, count_instructions: bool) -> list[list[str]]:
    """Rows of (d). Timings: `pairs` times, each engine in a fresh process, the two taking turns at going first;
    each engine's best is kept, as everywhere in this script. Instructions: counted once each."""
    ours, theirs = [], []
    for pair in range(pairs):
        turns = [(HERE, ours), (before, theirs)]
        for root, results in turns if pair % 2 == 0 else reversed(turns):
            results.append(_timed_in_own_process(root, repeats))
    rows = []
    for key, (label, _, _) in WORK.items():
        best = [min(times[key] for times in results) for results in (ours, theirs)]
        row = [label, f"{best[0] * 1e6:.1f} us", f"{best[1] * 1e6:.1f} us", f"{best[0] / best[1]:.3f}"]
        if count_instructions:
            counted = [instructions(root, key) for root in (HERE, before)]
            row += [f"{counted[0]:,.0f}", f"{counted[1]:,.0f}", f"{counted[0] / counted[1]:.3f}"]
        rows.append(row)
    return rows


def run_workload(root: Path, workload: str, calls: int) -> None:
    """Call one workload `calls` times, untimed: what `instructions` counts."""
    function = engine_workloads(root)[workload][0]
    for _ in range(calls):
        function()


def _import_torch() -> None:
    global torch
    try:
        import torch
    except ImportError:  # the script still runs: PyTorch columns are left out
        torch = None


# ------------------------------------------------------------------ report

def environment() -> list[str]:
    blas = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    described = ", ".join(f"{info.get('internal_api')} {info.get('version')} kernel {info.get('architecture')} "
                          f"({info.get('num_threads')} thread{'s' if info.get('num_threads') != 1 else ''})"
                          for info in blas) or "unknown"
    lines = [f"Python {platform.python_version()}, NumPy {np.__version__}, "
             f"PyTorch {torch.__version__ if torch else 'not installed'}, {platform.machine()}, {os.cpu_count()} cores",
             f"NumPy BLAS while measuring: {described} (pinned to one thread with threadpoolctl)"]
    if torch is not None:
        capability = torch.backends.cpu.get_cpu_capability()
        threads = torch.get_num_threads()
        lines.append(f"PyTorch: {threads} thread{'s' if threads != 1 else ''} (torch.set_num_threads(1)), CPU capability {capability}, "
                     f"BLAS {'MKL' if torch.backends.mkl.is_available() else 'not MKL'}")
    overrides = [f"{name}={os.environ[name]}" for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if name in os.environ]
    if overrides:
        lines.append(f"WARNING: {', '.join(overrides)} set: OpenBLAS is forced onto an older kernel, which slows NumPy; "
                     "run with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`")
    else:
        lines.append("OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset: OpenBLAS chose its kernel for this CPU itself")
    return lines


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "-"


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="rounds per measurement; the best is kept (default 9)")
    parser.add_argument("--before", type=Path, metavar="DIR",
                        help="the root of an earlier checkout: its engine and this one are compared in (d)")
    parser.add_argument("--pairs", type=int, default=8, help="with --before: processes per engine (default 8)")
    parser.add_argument("--instructions", action="store_true",
                        help="with --before: count each engine's instructions too (needs valgrind; about 6 minutes more)")
    # The processes of (d): one times an engine, or calls one of its workloads for callgrind to count.
    parser.add_argument("--time-engine", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workload", choices=list(WORK), help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.instructions and not args.before:
        parser.error("--instructions compares with an earlier engine: give --before DIR too")
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions counts with valgrind, which is not installed (e.g. apt install valgrind)")
    if hasattr(os, "sched_setaffinity"):  # Linux: one core for the whole run, the processes of (d) included.
        # Moving between cores made one process's MLP step vary from 0.20 to 0.32 ms on our 2-core machine.
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    if args.time_engine:
        with threadpool_limits(limits=1, user_api="blas"):
            if args.workload:
                run_workload(args.time_engine, args.workload, args.calls)
            else:
                print(json.dumps(time_engine(args.time_engine, args.repeats)))
        return 0
    engines = {"tinytorch": Variable}
    _import_torch()
    if torch is not None:
        torch.set_num_threads(1)
    checks = {}
    with threadpool_limits(limits=1, user_api="blas"):
        print("\n".join(environment()))

        print(f"\n(a) Fixed cost per operation: a {CHAIN}-operation chain (x * c, x + c) on a 1-element float32 tensor,"
              " forward + backward, microseconds per operation")
        chain = best_of(chain_benchmarks(engines), inner=20, repeats=args.repeats)
        per_op = {name: seconds / CHAIN * 1e6 for name, seconds in chain.items()}
        print(table(["", "tinytorch", "PyTorch", "NumPy by hand", "tinytorch / PyTorch"],
                    [["us per operation", f"{per_op['tinytorch']:.2f}", f"{per_op.get('pytorch', float('nan')):.2f}",
                      f"{per_op['numpy']:.2f}", ratio(per_op["tinytorch"], per_op.get("pytorch"))]]))
        if "pytorch" in per_op:
            checks["per-op"] = per_op["tinytorch"] / per_op["pytorch"]

        print("\n(b) One training step of a 64-128-10 ReLU MLP, MSE loss, float32 (forward, backward, SGD update), "
              "milliseconds per step")
        rows = []
        for batch, inner in MLP_BATCHES:
            functions, losses = mlp_benchmarks(batch, engines)
            if len({round(value, 4) for value in losses.values()}) != 1:
                print(f"WARNING: the first losses differ at batch {batch}: {losses}")
            steps = best_of(functions, inner=inner, repeats=args.repeats)
            ms = {name: seconds * 1e3 for name, seconds in steps.items()}
            rows.append([f"batch {batch}", f"{ms['tinytorch']:.3f}", f"{ms.get('pytorch', float('nan')):.3f}",
                         f"{ms['numpy']:.3f}", ratio(ms["tinytorch"], ms.get("pytorch")), ratio(ms["tinytorch"], ms["numpy"])])
            if batch == 64 and "pytorch" in ms:
                checks["batch 64"] = ms["tinytorch"] / ms["pytorch"]
            if batch == 1024:
                checks["batch 1024"] = ms["tinytorch"] / ms["numpy"]
        print(table(["", "tinytorch", "PyTorch", "NumPy by hand", "tinytorch / PyTorch", "tinytorch / NumPy"], rows))

        print("\n(c) Backward time against graph size (a chain of x * c, x + c on 1 element)")
        scaling = backward_scaling([1_000, 10_000, 100_000], repeats=args.repeats)
        print(table(["operations", "tinytorch ms", "us per op", "PyTorch ms", "us per op"],
                    [[f"{n:,}", f"{ours * 1e3:.2f}", f"{ours / n * 1e6:.2f}",
                      "-" if theirs is None else f"{theirs * 1e3:.2f}", "-" if theirs is None else f"{theirs / n * 1e6:.2f}"]
                     for n, ours, theirs in scaling]))

    if args.before:
        print(f"\n(d) This engine against the one at {args.before}, per operation (a) or per step (b): the best time of "
              f"{args.pairs} fresh processes per engine, the two taking turns")
        counted = ["instructions", "before", "this / before"] if args.instructions else []
        print(table(["work", "time, this engine", "before", "this / before", *counted],
                    compare_engines(args.before, args.pairs, args.repeats, args.instructions)))

    print("\nTargets")
    missed = 0
    for key, (text, limit) in TARGETS.items():
        if key not in checks:
            print(f"  [skipped] {text}: PyTorch is not installed")
            continue
        held = checks[key] <= limit
        missed += not held
        print(f"  [{'holds' if held else 'MISSED'}] {text}: measured {checks[key]:.2f}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
