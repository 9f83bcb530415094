"""Module 13's fused operations, measured: each fused operation's forward + backward at the shapes of the GPT
milestone's model, against the composed operations it replaces and against PyTorch; then the milestone's GPT
training step, fused and composed, against PyTorch eager, with the validation loss after the same steps.

Run from the repository root (see benchmarks/acceleration.md):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/acceleration_bench.py

Times are CPU seconds of this process (NumPy's BLAS and PyTorch held to one thread), so that on a shared
machine the time spent waiting for a core is left out. The operations are measured round-robin, the median of
many repeats each; the three training runs alternate in chunks of steps, so a busy spell falls on all of them.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from gpt_bench import TinytorchRun, TorchRun, report_targets  # noqa: E402
from training_bench import environment  # noqa: E402
from tito.milestones.gpt import GptOptions, TextData, batch_orders, gpt_modules, read_corpus  # noqa: E402

# Target: the fused step at most 1.0x PyTorch's; the validation loss within gpt_bench's TARGET_LOSS_GAP of PyTorch's.
TARGET_TIME_VS_TORCH = 1.0
# The milestone model's shapes: batch 32 windows of 64 characters, 4 heads of 16 features, 103 characters.
BATCH, LENGTH, HEADS, HEAD_DIM, VOCABULARY = 32, 64, 4, 16, 103


def cpu_median(functions: dict, repeat: int) -> dict:
    """The median CPU time of each function, calling them in turn `repeat` times."""
    times = {name: [] for name in functions}
    for _ in range(repeat):
        for name, function in functions.items():
            start = time.process_time()
            function()
            times[name].append(time.process_time() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def operation_cases(torch) -> dict:
    """For each fused operation: its fused, composed and PyTorch forward + backward, on the same float32 numbers."""
    from tinytorch.core.acceleration import causal_attention, fused_layer_norm, softmax_cross_entropy
    from tinytorch.core.attention import layer_norm, scaled_dot_product_attention
    from tinytorch.core.autograd import Variable
    from tinytorch.core.losses import CrossEntropyLoss

    rng = np.random.default_rng(0)
    functional = torch.nn.functional
    logits = rng.standard_normal((BATCH * LENGTH, VOCABULARY)).astype(np.float32)
    targets = rng.integers(0, VOCABULARY, BATCH * LENGTH)
    qkv = [rng.standard_normal((BATCH, HEADS, LENGTH, HEAD_DIM)).astype(np.float32) for _ in range(3)]
    g = rng.standard_normal((BATCH, HEADS, LENGTH, HEAD_DIM)).astype(np.float32)
    width = HEADS * HEAD_DIM
    stream = [rng.standard_normal((BATCH, LENGTH, width)).astype(np.float32), np.ones(width, np.float32), np.zeros(width, np.float32)]
    g_stream = rng.standard_normal((BATCH, LENGTH, width)).astype(np.float32)

    def ours(function, arrays, *extra, gradient=None):
        def run():
            inputs = [Variable(array, requires_grad=True) for array in arrays]
            function(*inputs, *extra).backward(gradient)
        return run

    def theirs(function, arrays, *extra, gradient=None):
        def run():
            inputs = [torch.tensor(array, requires_grad=True) for array in arrays]
            out = function(*inputs, *extra)
            out.backward(None if gradient is None else torch.tensor(gradient))
        return run

    torch_targets = torch.tensor(targets)
    return {
        f"softmax + cross-entropy, logits {BATCH * LENGTH} x {VOCABULARY}": {
            "fused": ours(softmax_cross_entropy, [logits], targets),
            "composed": ours(CrossEntropyLoss(), [logits], targets),
            "pytorch": theirs(functional.cross_entropy, [logits], torch_targets)},
        f"causal attention, q k v {BATCH} x {HEADS} x {LENGTH} x {HEAD_DIM}": {
            "fused": ours(causal_attention, qkv, gradient=g),
            "composed": ours(lambda q, k, v: scaled_dot_product_attention(q, k, v, True), qkv, gradient=g),
            "pytorch": theirs(lambda q, k, v: functional.scaled_dot_product_attention(q, k, v, is_causal=True), qkv, gradient=g)},
        f"layer norm, x {BATCH} x {LENGTH} x {width}": {
            "fused": ours(fused_layer_norm, stream, gradient=g_stream),
            "composed": ours(layer_norm, stream, gradient=g_stream),
            "pytorch": theirs(lambda x, w, b: functional.layer_norm(x, (width,), w, b), stream, gradient=g_stream)},
    }


def linear_products(torch) -> dict:
    """Forward and both gradients of every Linear layer's product in one step of the milestone's model, in
    NumPy and in PyTorch: the part of the step that no fusion in Python changes."""
    rng = np.random.default_rng(0)
    shapes = [(64, 64)] * 8 + [(64, 256), (256, 64)] * 2 + [(64, 103)]  # q k v out x 2 layers, the MLPs, the head
    weights = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    inputs = {n: rng.standard_normal((BATCH * LENGTH, n)).astype(np.float32) for n in (64, 256)}
    grads = {n: rng.standard_normal((BATCH * LENGTH, n)).astype(np.float32) for n in (64, 256, 103)}

    def products(convert):
        ws, xs, gs = [convert(w) for w in weights], {n: convert(x) for n, x in inputs.items()}, {n: convert(g) for n, g in grads.items()}

        def run():
            for w in ws:
                x, g = xs[w.shape[0]], gs[w.shape[1]]
                x @ w, g @ w.T, x.T @ g
        return run

    return {"numpy": products(np.asarray), "pytorch": products(torch.tensor)}


def train_three(torch, steps: int, chunk: int, seed: int) -> dict:
    """The milestone's training run three times from the same weights on the same batches: module 13's FusedGPT
    (what the milestone runs once module 13 is complete), module 11's GPT (what it runs before), and PyTorch."""
    options = GptOptions(steps=steps, seed=seed)
    modules = gpt_modules(ROOT)
    data = TextData(modules["transformer"], read_corpus(None)[0], options.context)
    fused = TinytorchRun(modules, data, options)
    composed = TinytorchRun({name: module for name, module in modules.items() if name != "acceleration"}, data, options)
    assert type(fused.model).__name__ == "FusedGPT" and type(composed.model).__name__ == "GPT"
    runs = {"fused": fused, "composed": composed, "pytorch": TorchRun(torch, fused.model, fused.schedule, data, options)}
    seconds = dict.fromkeys(runs, 0.0)
    for windows in batch_orders(len(data.x_train), steps, options.batch_size, chunk, seed):
        for name, run in runs.items():
            start = time.process_time()
            run.train(windows)
            seconds[name] += time.process_time() - start
    return {"steps": steps, "time": {name: value / steps for name, value in seconds.items()},
            "validation": {name: run.validation_loss() for name, run in runs.items()},
            "first_losses": {name: run.losses[:3] for name, run in runs.items()}}


def markdown(header: list, rows: list) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
                     + ["| " + " | ".join(row) + " |" for row in rows])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps for each run (default 300)")
    parser.add_argument("--chunk", type=int, default=25, help="steps each run takes before the next (default 25)")
    parser.add_argument("--repeat", type=int, default=30, help="repeats of each operation (default 30)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import threadpoolctl
    import torch

    torch.set_num_threads(1)
    with threadpoolctl.threadpool_limits(limits=1):
        print("NumPy's BLAS and PyTorch held to one thread each (threadpoolctl, torch.set_num_threads(1))")
        print("\n".join(environment()))
        rows = []
        for name, functions in operation_cases(torch).items():
            for function in functions.values():
                function()  # warm up
            t = cpu_median(functions, args.repeat)
            rows.append([name, f"{t['fused'] * 1e3:.2f} ms", f"{t['composed'] * 1e3:.2f} ms", f"{t['pytorch'] * 1e3:.2f} ms",
                         f"{t['fused'] / t['composed']:.2f}x", f"{t['fused'] / t['pytorch']:.2f}x"])
        print("\nforward + backward, float32, median CPU time:\n")
        print(markdown(["operation", "fused", "composed", "PyTorch", "fused / composed", "fused / PyTorch"], rows))
        products = linear_products(torch)
        t = cpu_median(products, args.repeat)
        print(f"\nthe Linear layers' products of one step (forward and both gradients): NumPy {t['numpy'] * 1e3:.2f} ms, "
              f"PyTorch {t['pytorch'] * 1e3:.2f} ms, {t['numpy'] / t['pytorch']:.2f}x")
        result = train_three(torch, args.steps, args.chunk, args.seed)

    step, validation, ln2 = result["time"], result["validation"], np.log(2)
    for name, losses in result["first_losses"].items():
        print(f"first losses (nats), {name}: {np.round(losses, 5).tolist()}")
    ratio = step["fused"] / step["pytorch"]
    gap = validation["fused"] / validation["pytorch"] - 1
    print(f"\nthe milestone's GPT, {result['steps']} steps each:\n")
    print(markdown(["GPT training step", "ms per step", "/ PyTorch", f"validation bits/char after {result['steps']} steps", "vs PyTorch"],
                   [[name, f"{step[name] * 1e3:.1f}", f"{step[name] / step['pytorch']:.2f}x", f"{validation[name] / ln2:.4f}",
                     f"{validation[name] / validation['pytorch'] - 1:+.2%}"] for name in ("fused", "composed", "pytorch")]))
    return report_targets("fused step", ratio, TARGET_TIME_VS_TORCH, gap)


if __name__ == "__main__":
    sys.exit(main())
