"""The same MLP trained on the same digits three ways: tinytorch, PyTorch (CPU, one thread), hand-written NumPy.

Run from the repository root, with OpenBLAS left to pick its own kernel (see benchmarks/training.md):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/training_bench.py

All three start from the same initial weights, see the same shuffled batches in the same order and
take the same Adam steps, so their accuracies agree up to float rounding and their times compare
the machinery alone. NumPy's BLAS and PyTorch are held to one thread each. An epoch is what
`Trainer.train_epoch` does: for every batch, forward, cross-entropy loss, backward, Adam step, and
the running loss and accuracy. Each epoch is timed by the clock and by the CPU time of the process
(everything runs on one thread, so CPU time leaves out the time spent waiting for a core that other
work holds). Each run counts its median epoch, and the best of several interleaved runs is reported
(the one least disturbed by other work on the machine), with the median over all epochs beside it.
"""
from __future__ import annotations

import argparse
import functools
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's tinytorch, whatever is installed

from tinytorch.core.acceleration import FusedCrossEntropyLoss  # noqa: E402
from tinytorch.core.activations import ReLU  # noqa: E402
from tinytorch.core.layers import Linear, Sequential  # noqa: E402
from tinytorch.core.losses import CrossEntropyLoss  # noqa: E402
from tinytorch.core.operations import relu  # noqa: E402
from tinytorch.core.optimizers import Adam  # noqa: E402
from tinytorch.core.tensor import Tensor  # noqa: E402
from tinytorch.core.training import DataLoader, Standardizer, Trainer, evaluate, load_digits_dataset  # noqa: E402

# Targets: tinytorch's time per epoch over the others', per batch size.
TARGET_VS_TORCH = 1.0
TARGET_VS_NUMPY = {64: 2.0, 1024: 1.25}


def initial_weights(inputs: int, hidden: int, classes: int, seed: int) -> list[np.ndarray]:
    """tinytorch's own initialisation (Kaiming-uniform weights, zero biases), as arrays all three copy."""
    rng = np.random.default_rng(seed)
    first, second = Linear(inputs, hidden, rng=rng), Linear(hidden, classes, rng=rng)
    return [p.numpy().copy() for p in (first.weight, first.bias, second.weight, second.bias)]


def epoch_orders(count: int, seed: int):
    """The shuffled order of each epoch, drawn exactly as tinytorch's DataLoader draws it."""
    rng = np.random.default_rng(seed)
    while True:
        yield rng.permutation(count)


class EpochClock:
    """Times each `with clock:` block: wall-clock seconds and CPU seconds of this process (all threads).

    Everything runs on one thread, so the CPU time is the wall time minus the time spent waiting for a
    core that other work on the machine holds: the steadier of the two on a shared machine.
    """

    def __init__(self):
        self.epochs: list[tuple[float, float]] = []

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def __exit__(self, *exc):
        self.epochs.append((time.perf_counter() - self.wall, time.process_time() - self.cpu))


# --- tinytorch -------------------------------------------------------------------------------------------
class FusedReLU(ReLU):
    """Module 06's `relu`, one graph operation (np.maximum forward, one backward rule), in place of module 02's
    `x * (x > 0)` (a comparison and a product): for the `--fused` row only."""

    def forward(self, x):
        return relu(x)


def run_tinytorch(data, weights, batch_size, epochs, lr, seed, fused=False):
    """The milestone's network; with `fused`, module 06's ReLU and module 13's softmax-cross-entropy instead."""
    x_train, y_train, x_test, y_test = data
    activation, loss_fn = (FusedReLU(), FusedCrossEntropyLoss()) if fused else (ReLU(), CrossEntropyLoss())
    model = Sequential(Linear(*weights[0].shape), activation, Linear(*weights[2].shape))
    model.load_state_dict(dict(zip(["0.weight", "0.bias", "2.weight", "2.bias"], weights)))
    trainer = Trainer(model, Adam(model.parameters(), lr=lr), loss_fn)
    loader = DataLoader(x_train, y_train, batch_size=batch_size, shuffle=True, seed=seed)
    clock = EpochClock()
    for _ in range(epochs):
        with clock:
            trainer.train_epoch(loader)
    _, test_accuracy = evaluate(model, DataLoader(x_test, y_test, batch_size=1024), trainer.loss_fn)
    return clock.epochs, test_accuracy


# --- hand-written NumPy ----------------------------------------------------------------------------------
class NumpyAdam:
    """Adam with PyTorch's defaults, on a list of arrays, updated in place."""

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.betas, self.eps, self.step_count = params, lr, betas, eps, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads):
        beta1, beta2 = self.betas
        self.step_count += 1
        step_size = self.lr / (1 - beta1 ** self.step_count)
        root_correction = math.sqrt(1 - beta2 ** self.step_count)  # a Python float: np.sqrt would give float64 and upcast
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m += (1 - beta1) * (g - m)
            v *= beta2
            v += (1 - beta2) * g * g
            p -= step_size * m / (np.sqrt(v) / root_correction + self.eps)


def numpy_epoch(params, optimizer, x_train, y_train, order, batch_size) -> tuple[float, int]:
    """One epoch of forward, cross-entropy, backward by hand and Adam: (summed loss, correct predictions)."""
    w1, b1, w2, b2 = params
    total_loss, correct = 0.0, 0
    for begin in range(0, len(order), batch_size):
        batch = order[begin:begin + batch_size]
        x, y = x_train[batch], y_train[batch]
        count = len(y)
        pre = x @ w1 + b1
        hidden = np.maximum(pre, 0)
        logits = hidden @ w2 + b2
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        rows = np.arange(count)
        loss = -log_probs[rows, y].mean()
        d_logits = np.exp(log_probs)  # softmax
        d_logits[rows, y] -= 1
        d_logits /= count
        d_hidden = (d_logits @ w2.T) * (pre > 0)
        optimizer.step([x.T @ d_hidden, d_hidden.sum(axis=0), hidden.T @ d_logits, d_logits.sum(axis=0)])
        total_loss += float(loss) * count
        correct += int((logits.argmax(axis=1) == y).sum())
    return total_loss, correct


def run_numpy(data, weights, batch_size, epochs, lr, seed):
    x_train, y_train, x_test, y_test = data
    params = [w.copy() for w in weights]
    optimizer = NumpyAdam(params, lr)
    orders = epoch_orders(len(x_train), seed)
    clock = EpochClock()
    for _ in range(epochs):
        with clock:
            numpy_epoch(params, optimizer, x_train, y_train, next(orders), batch_size)
    w1, b1, w2, b2 = params
    logits = np.maximum(x_test @ w1 + b1, 0) @ w2 + b2
    return clock.epochs, float(np.mean(logits.argmax(axis=1) == y_test))


# --- PyTorch ---------------------------------------------------------------------------------------------
def torch_epoch(model, optimizer, loss_fn, x_train, y_train, order, batch_size) -> tuple[float, int]:
    total_loss, correct = 0.0, 0
    for begin in range(0, len(order), batch_size):
        batch = order[begin:begin + batch_size]
        x, y = x_train[batch], y_train[batch]
        optimizer.zero_grad()
        logits = model(x)
        loss = loss_fn(logits, y)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(y)
        correct += int((logits.argmax(dim=1) == y).sum())
    return total_loss, correct


def run_torch(data, weights, batch_size, epochs, lr, seed):
    import torch

    x_train, y_train, x_test, y_test = (torch.from_numpy(np.ascontiguousarray(part)) for part in data)
    model = torch.nn.Sequential(torch.nn.Linear(*weights[0].shape), torch.nn.ReLU(), torch.nn.Linear(*weights[2].shape))
    with torch.no_grad():  # torch stores weights as (out, in)
        for param, array in zip(model.parameters(), weights):
            param.copy_(torch.from_numpy(array.T.copy() if array.ndim == 2 else array))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    orders = epoch_orders(len(x_train), seed)
    clock = EpochClock()
    for _ in range(epochs):
        with clock:
            torch_epoch(model, optimizer, loss_fn, x_train, y_train, torch.from_numpy(next(orders)), batch_size)
    with torch.no_grad():
        test_accuracy = float((model(x_test).argmax(dim=1) == y_test).double().mean())
    return clock.epochs, test_accuracy


# --- where a step's time goes ----------------------------------------------------------------------------
def phase_profile(data, weights, batch_size, lr, rounds=15, steps=50) -> dict:
    """CPU microseconds per step in each phase (forward, loss, backward, optimizer step), tinytorch and NumPy.

    The same batch again and again; each phase is the best of `rounds` averages over `steps` steps.
    """
    x, y = data[0][:batch_size], data[1][:batch_size]
    clock = time.process_time

    def tinytorch_step(state):
        model, optimizer, loss_fn = state
        t0 = clock()
        optimizer.zero_grad()
        logits = model(Tensor(x))
        t1 = clock()
        loss = loss_fn(logits, y)
        t2 = clock()
        loss.backward()
        t3 = clock()
        optimizer.step()
        return t1 - t0, t2 - t1, t3 - t2, clock() - t3

    def numpy_step(state):
        params, optimizer = state
        w1, b1, w2, b2 = params
        t0 = clock()
        pre = x @ w1 + b1
        hidden = np.maximum(pre, 0)
        logits = hidden @ w2 + b2
        t1 = clock()
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        rows = np.arange(len(y))
        -log_probs[rows, y].mean()
        t2 = clock()
        d_logits = np.exp(log_probs)
        d_logits[rows, y] -= 1
        d_logits /= len(y)
        d_hidden = (d_logits @ w2.T) * (pre > 0)
        grads = [x.T @ d_hidden, d_hidden.sum(axis=0), hidden.T @ d_logits, d_logits.sum(axis=0)]
        t3 = clock()
        optimizer.step(grads)
        return t1 - t0, t2 - t1, t3 - t2, clock() - t3

    def tinytorch_state():
        model = Sequential(Linear(*weights[0].shape), ReLU(), Linear(*weights[2].shape))
        model.load_state_dict(dict(zip(["0.weight", "0.bias", "2.weight", "2.bias"], weights)))
        return model, Adam(model.parameters(), lr=lr), CrossEntropyLoss()

    def numpy_state():
        params = [w.copy() for w in weights]
        return params, NumpyAdam(params, lr)

    best = {}
    states = {"tinytorch": (tinytorch_step, tinytorch_state()), "numpy": (numpy_step, numpy_state())}
    for _ in range(rounds):
        for name, (step, state) in states.items():
            phases = np.mean([step(state) for _ in range(steps)], axis=0)
            best[name] = phases if name not in best else np.minimum(best[name], phases)
    return {name: phases * 1e6 for name, phases in best.items()}


# --- the comparison --------------------------------------------------------------------------------------
def environment() -> list[str]:
    import threadpoolctl
    import torch

    lines = [f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
             f"{os.cpu_count()} cores ({platform.machine()})"]
    for pool in threadpoolctl.threadpool_info():
        lines.append(f"  {pool['user_api']}: {pool['internal_api']} {pool.get('version')} "
                     f"kernel {pool.get('architecture')} threads {pool['num_threads']}  ({Path(pool['filepath']).name})")
    lines.append(f"  torch threads: {torch.get_num_threads()}")
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            lines.append(f"  WARNING: {name}={os.environ[name]} is set: OpenBLAS runs a slower kernel than this CPU allows; "
                         "run with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` (see benchmarks/training.md)")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 1024])
    parser.add_argument("--epochs", type=int, default=15, help="epochs per run (the milestone's default)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per framework and batch size, interleaved")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", choices=["tinytorch", "pytorch", "numpy"], help="run only these")
    parser.add_argument("--fused", action="store_true",
                        help="add a row: tinytorch with module 06's fused ReLU and module 13's fused cross-entropy")
    parser.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    parser.add_argument("--phases", action="store_true",
                        help="also show where a step's time goes (forward, loss, backward, step), tinytorch vs NumPy")
    args = parser.parse_args(argv)

    import threadpoolctl
    import torch

    torch.set_num_threads(1)
    dataset = load_digits_dataset()
    standardize = Standardizer(dataset.x_train)
    data = (standardize(dataset.x_train), dataset.y_train, standardize(dataset.x_test), dataset.y_test)
    weights = initial_weights(data[0].shape[1], args.hidden, 10, args.seed)
    runners = {"tinytorch": run_tinytorch, "pytorch": run_torch, "numpy": run_numpy}
    runners = {name: run for name, run in runners.items() if not args.only or name in args.only}
    if args.fused:
        runners["tinytorch fused"] = functools.partial(run_tinytorch, fused=True)

    with threadpoolctl.threadpool_limits(limits=1):
        print(f"MLP {data[0].shape[1]}-{args.hidden}-10, Adam lr {args.lr}, {len(data[0])} training digits "
              f"({len(data[2])} held out), {args.repeats} interleaved runs of {args.epochs} epochs each")
        print("NumPy's BLAS and PyTorch held to one thread each (threadpoolctl, torch.set_num_threads(1))")
        print("\n".join(environment()))
        times, accuracies = {}, {}
        for batch_size in args.batch_sizes:
            for name, run in runners.items():  # warm-up: imports, caches, BLAS buffers
                run(data, weights, batch_size, 1, args.lr, args.seed)
            for _ in range(args.repeats):
                for name, run in runners.items():
                    epoch_times, test_accuracy = run(data, weights, batch_size, args.epochs, args.lr, args.seed)
                    times.setdefault((name, batch_size), []).append(epoch_times)
                    accuracies[(name, batch_size)] = test_accuracy
        # Each run counts its median epoch; the best run is the one least disturbed by other work on the machine.
        results = {}
        for key, runs in times.items():
            epochs = np.array(runs)  # (runs, epochs, [wall, cpu])
            medians = np.median(epochs, axis=1)
            results[key] = {"cpu": medians[:, 1].min(), "wall": medians[:, 0].min(),
                            "median": float(np.median(epochs[:, :, 1])), "accuracy": accuracies[key]}

    rows, misses = [], []
    for batch_size in args.batch_sizes:
        ours = results.get(("tinytorch", batch_size))
        for name in runners:
            result = results[(name, batch_size)]
            ratio = ours["cpu"] / result["cpu"] if ours else None
            target = {"pytorch": TARGET_VS_TORCH, "numpy": TARGET_VS_NUMPY.get(batch_size)}.get(name)
            verdict = ""
            if ratio is not None and target is not None:
                verdict = f"<= {target:g}x: " + ("met" if ratio <= target else "MISSED")
                if ratio > target:
                    misses.append(f"batch {batch_size}: {ratio:.2f}x {name} (target {target:g}x)")
            rows.append([str(batch_size), name, f"{result['cpu'] * 1e3:.2f}", f"{result['median'] * 1e3:.2f}",
                         f"{result['wall'] * 1e3:.2f}", f"{result['accuracy']:.2%}",
                         "-" if ratio is None else f"{ratio:.2f}x", verdict])
    header = ["batch", "framework", "CPU ms/epoch", "median", "wall ms/epoch", "test acc", "tinytorch / this", "target"]
    print()
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---:" if index in (0, 2, 3, 4, 5, 6) else "---" for index in range(len(header))) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(row[index]) for row in [header, *rows]) for index in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(cell.rjust(width) if index in (0, 2, 3, 4, 5, 6) else cell.ljust(width)
                            for index, (cell, width) in enumerate(zip(row, widths))).rstrip())
    print(f"\nCPU ms/epoch: CPU time of the process for a median epoch, best of {args.repeats} runs; median: over all "
          f"epochs of all runs; wall ms/epoch: by the clock, median epoch of the best run.")
    if "tinytorch" in runners:
        print("targets missed: " + "; ".join(misses) if misses else "all targets met")
    if args.phases:
        print(f"\n{'CPU us per step':21}" + "".join(f"{column:>9}" for column in ["forward", "loss", "backward", "step", "total"]))
        with threadpoolctl.threadpool_limits(limits=1):
            for batch_size in args.batch_sizes:
                for name, phases in phase_profile(data, weights, batch_size, args.lr).items():
                    print(f"{name:9} batch {batch_size:<5}" + "".join(f"{value:>9.0f}" for value in phases)
                          + f"{phases.sum():>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
