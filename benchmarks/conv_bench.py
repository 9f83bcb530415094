"""Module 09's convolutions against PyTorch (CPU, one thread) and against the loop form of the lesson.

Run from the repository root (see benchmarks/convolutions.md):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/conv_bench.py

(a) Forward + backward of LeNet-sized convolution layers on a batch of 64: the output's gradient is sent
    back to the input, the weight and the bias. (b) One training epoch of the CNN of `tito milestone cnn`
    on the 1438 training digits (batch 32, Adam), from the same initial weights and in the same batch
    order for all three. The loop form is `conv2d_loops` of the lesson with its backward written with the
    same four loops, made a graph operation like `conv2d`, so only the convolution differs.

Times are CPU seconds of this process (everything runs on one thread: NumPy's BLAS is pinned with
threadpoolctl, PyTorch with torch.set_num_threads(1)); on a shared machine they leave out the time spent
waiting for a core. Each number is the best of several interleaved runs; the loop form runs once.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's tinytorch, whatever is installed
sys.path.insert(0, str(ROOT / "benchmarks"))

from training_bench import environment  # noqa: E402
from tinytorch.core.activations import ReLU  # noqa: E402
from tinytorch.core.autograd import Variable, _value, record  # noqa: E402
from tinytorch.core.convolutions import Conv2d, MaxPool2d, conv2d_loops, pair  # noqa: E402
from tinytorch.core.layers import Flatten, Linear, Sequential  # noqa: E402
from tinytorch.core.losses import CrossEntropyLoss  # noqa: E402
from tinytorch.core.optimizers import Adam  # noqa: E402
from tinytorch.core.training import DataLoader, Standardizer, Trainer, load_digits_dataset  # noqa: E402

# Targets: tinytorch's time over PyTorch's, per row, and the loop form's time over tinytorch's.
TARGET_LAYER_VS_TORCH = 1.0
TARGET_EPOCH_VS_TORCH = 0.8
TARGET_VS_LOOPS = 50.0
LENET_LAYERS = [("LeNet conv1: 1->6, 5x5, 28x28", 1, 6, 5, 28), ("LeNet conv2: 6->16, 5x5, 12x12", 6, 16, 5, 12)]


# --- the loop form as a graph operation ------------------------------------------------------------------
def conv2d_loops_backward(x, weight, g, stride, padding):
    """The gradients of conv2d_loops by its own four loops: each output number's gradient goes back to
    the filter (times its window) and to the window (times its filter)."""
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    _, _, kh, kw = weight.shape
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    grad_padded, grad_weight = np.zeros_like(padded), np.zeros_like(weight)
    n, out_channels, oh, ow = g.shape
    for image in range(n):
        for channel in range(out_channels):
            for i in range(oh):
                for j in range(ow):
                    rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
                    grad_weight[channel] += g[image, channel, i, j] * padded[image, :, rows, cols]
                    grad_padded[image, :, rows, cols] += g[image, channel, i, j] * weight[channel]
    return grad_padded[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]], grad_weight, g.sum(axis=(0, 2, 3))


def loop_conv2d(x, weight, bias=None, stride=1, padding=0):
    xv, wv = np.asarray(_value(x)), np.asarray(_value(weight))
    out = conv2d_loops(xv, wv, None if bias is None else np.asarray(_value(bias)), stride, padding)
    found = {}

    def gradient(part):
        def rule(g):
            if not found:  # one backward pass of the loops serves the three inputs
                found.update(zip("xwb", conv2d_loops_backward(xv, wv, g, stride, padding)))
            return found[part]
        return rule

    return record(out, "Conv2dLoops", (x, gradient("x")), (weight, gradient("w")), (bias, gradient("b")))


class LoopConv2d(Conv2d):
    def forward(self, x):
        return loop_conv2d(x, self.weight, self.bias, self.stride, self.padding)


# --- (a) layers ------------------------------------------------------------------------------------------
def cpu_time(work) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def layer_benchmarks(torch, repeats: int) -> list[dict]:
    results = []
    for label, cin, cout, kernel, size in LENET_LAYERS:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((64, cin, size, size)).astype(np.float32)
        layer = Conv2d(cin, cout, kernel, rng=rng)
        loops = LoopConv2d(cin, cout, kernel)
        loops.load_state_dict(layer.state_dict())
        reference = torch.nn.Conv2d(cin, cout, kernel)
        with torch.no_grad():
            reference.weight.copy_(torch.tensor(layer.weight.numpy()))
            reference.bias.copy_(torch.tensor(layer.bias.numpy()))
        g = rng.standard_normal((64, cout, size - kernel + 1, size - kernel + 1)).astype(np.float32)
        torch_x, torch_g = torch.tensor(x, requires_grad=True), torch.tensor(g)

        def ours(module):
            def step():
                inputs = Variable(x, requires_grad=True)
                module.zero_grad()
                module(inputs).backward(g)
                return inputs.grad
            return step

        def theirs():
            reference.zero_grad()
            torch_x.grad = None
            reference(torch_x).backward(torch_g)
            return torch_x.grad

        # The three agree before they are timed.
        np.testing.assert_allclose(ours(layer)(), theirs().numpy(), rtol=1e-3, atol=1e-3)
        best = {"tinytorch": float("inf"), "pytorch": float("inf")}
        for _ in range(repeats):
            best["tinytorch"] = min(best["tinytorch"], cpu_time(ours(layer)))
            best["pytorch"] = min(best["pytorch"], cpu_time(theirs))
        loop_grad = {}
        best["loops"] = cpu_time(lambda: loop_grad.setdefault("x", ours(loops)()))
        np.testing.assert_allclose(loop_grad["x"], theirs().numpy(), rtol=1e-3, atol=1e-3)
        results.append({"work": f"{label}, batch 64, fwd + bwd", "target": TARGET_LAYER_VS_TORCH, **best})
    return results


# --- (b) one epoch of the milestone's CNN ----------------------------------------------------------------
def milestone_cnn(seed: int, conv=Conv2d) -> Sequential:
    """The network of `tito milestone cnn` (default options), with `conv` as its convolution layer."""
    rng = np.random.default_rng(seed)
    return Sequential(conv(1, 16, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2),
                      conv(16, 32, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2), Flatten(), Linear(128, 10, rng=rng))


def torch_cnn(torch, model: Sequential):
    nn = torch.nn
    reference = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 10))
    state = {name: torch.tensor(array.T if name == "7.weight" else array) for name, array in model.state_dict().items()}
    reference.load_state_dict(state)  # our Linear keeps (in, out), PyTorch's (out, in)
    return reference


def epoch_benchmarks(torch, repeats: int, loop_epoch: bool, seed: int = 0, batch_size: int = 32, lr: float = 2e-3) -> dict:
    data = load_digits_dataset()
    images = Standardizer(data.x_train)(data.x_train).reshape(-1, 1, 8, 8)

    def tinytorch_epoch(conv):
        model = milestone_cnn(seed, conv)
        trainer = Trainer(model, Adam(model.parameters(), lr=lr), CrossEntropyLoss())
        loader = DataLoader(images, data.y_train, batch_size=batch_size, shuffle=True, seed=seed)
        return lambda: trainer.train_epoch(loader)

    def torch_epoch():
        model = torch_cnn(torch, milestone_cnn(seed))
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        loss_fn = torch.nn.CrossEntropyLoss()
        order = np.random.default_rng(seed).permutation(len(images))  # the DataLoader's first epoch
        x, y = torch.tensor(images), torch.tensor(data.y_train)

        def run():
            for start in range(0, len(order), batch_size):
                batch = torch.tensor(order[start:start + batch_size])
                optimizer.zero_grad()
                loss = loss_fn(model(x[batch]), y[batch])
                loss.backward()
                optimizer.step()
        return run

    best = {"tinytorch": float("inf"), "pytorch": float("inf")}
    for _ in range(repeats):  # a fresh model each time, so every run is the same first epoch
        best["tinytorch"] = min(best["tinytorch"], cpu_time(tinytorch_epoch(Conv2d)))
        best["pytorch"] = min(best["pytorch"], cpu_time(torch_epoch()))
    best["loops"] = cpu_time(tinytorch_epoch(LoopConv2d)) if loop_epoch else None
    return {"work": f"CNN epoch on the digits ({len(images)} images, batch {batch_size}, Adam)", "target": TARGET_EPOCH_VS_TORCH,
            **best}


# --- the table -------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="interleaved runs of tinytorch and PyTorch (best counts)")
    parser.add_argument("--no-loop-epoch", action="store_true", help="skip the loop form's training epoch (about 30 s)")
    parser.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    args = parser.parse_args(argv)

    import threadpoolctl
    import torch

    torch.set_num_threads(1)
    with threadpoolctl.threadpool_limits(limits=1):
        print("NumPy's BLAS and PyTorch held to one thread each (threadpoolctl, torch.set_num_threads(1))")
        print("\n".join(environment()))
        results = layer_benchmarks(torch, args.repeats)
        results.append(epoch_benchmarks(torch, args.repeats, not args.no_loop_epoch))

    header = ["work", "tinytorch ms", "PyTorch ms", "loop form ms", "tinytorch / PyTorch", "target", "loop form / tinytorch"]
    rows, misses = [], []
    for result in results:
        ours, theirs, loops = result["tinytorch"], result["pytorch"], result["loops"]
        vs_torch, vs_loops = ours / theirs, (loops / ours if loops is not None else None)
        met = vs_torch <= result["target"]
        if not met:
            misses.append(f"{result['work']}: {vs_torch:.2f}x PyTorch (target <= {result['target']:g}x)")
        if vs_loops is not None and vs_loops < TARGET_VS_LOOPS:
            misses.append(f"{result['work']}: only {vs_loops:.0f}x faster than the loop form (target >= {TARGET_VS_LOOPS:g}x)")
        rows.append([result["work"], f"{ours * 1e3:.2f}", f"{theirs * 1e3:.2f}",
                     "-" if loops is None else f"{loops * 1e3:.0f}", f"{vs_torch:.2f}x",
                     f"<= {result['target']:g}x: {'met' if met else 'MISSED'}", "-" if vs_loops is None else f"{vs_loops:.0f}x"])
    print()
    if args.markdown:
        print("| " + " | ".join(header) + " |\n|---|" + "---:|" * (len(header) - 1))
        print("\n".join("| " + " | ".join(row) + " |" for row in rows))
    else:
        widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
        for row in [header] + rows:
            print("  ".join(cell.ljust(width) if i == 0 else cell.rjust(width) for i, (cell, width) in enumerate(zip(row, widths))))
    print(f"\ntargets: tinytorch <= {TARGET_LAYER_VS_TORCH:g}x PyTorch per layer and <= {TARGET_EPOCH_VS_TORCH:g}x per epoch, "
          f"loop form >= {TARGET_VS_LOOPS:g}x tinytorch: "
          + ("all met" if not misses else "MISSED: " + "; ".join(misses)))
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
