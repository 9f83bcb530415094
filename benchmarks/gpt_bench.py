"""Module 11's GPT trained by tinytorch and by PyTorch (CPU, one thread) from the same initial weights on the
same batches: time per training step and the validation loss after the same steps.

Run from the repository root (see benchmarks/gpt.md):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/gpt_bench.py

The model, data, batches and optimizer settings are those of `tito milestone gpt` (2 layers, 4 heads, width
64, context 64, batch 32, AdamW lr 1e-2 with weight decay 0.01, warm-up then cosine decay, clipping at norm 1,
on pydoc_data.topics). tinytorch trains through module 08's Trainer exactly as the milestone does; PyTorch runs
the same loop with torch.optim.AdamW, the same learning rate at every step (LambdaLR over module 11's
schedule) and torch.nn.utils.clip_grad_norm_. The PyTorch model is tests/torch_gpt.py, written with
PyTorch's own functions (F.scaled_dot_product_attention, F.layer_norm, F.gelu, F.cross_entropy).

Times are CPU seconds of this process per training step (NumPy's BLAS pinned to one thread with
threadpoolctl, PyTorch to one thread), which on a shared machine leave out the time spent waiting for a core.
The training runs alternate between the two in chunks, so that a busy spell on the machine hits both.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's tinytorch and tito, whatever is installed
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from torch_gpt import build_torch_gpt  # noqa: E402
from training_bench import environment  # noqa: E402
from tito.milestones.gpt import GptOptions, TextData, batch_orders, build_gpt, gpt_modules, read_corpus  # noqa: E402

# Targets: time per step at most 1.5x PyTorch's, validation loss within 2% of PyTorch's.
TARGET_TIME_VS_TORCH = 1.5
TARGET_LOSS_GAP = 0.02


class TinytorchRun:
    """The milestone's training, stretch by stretch: module 08's Trainer, AdamW, clipping, the schedule."""

    def __init__(self, modules, data: TextData, options: GptOptions):
        transformer, training = modules["transformer"], modules["training"]
        self.model = build_gpt(modules, len(data.tokenizer), options)
        adamw = modules["optimizers"].AdamW(self.model.parameters(), lr=options.lr, weight_decay=options.weight_decay)
        self.schedule = transformer.WarmupCosineLR(adamw, warmup=options.warmup_steps, total=options.steps)
        self.trainer = training.Trainer(transformer.PerPositionLogits(self.model),
                                        transformer.ClippedSchedule(adamw, self.schedule, options.max_norm),
                                        self.model.loss_function())
        self.training, self.data, self.options = training, data, options
        self.losses: list[float] = []

    def train(self, windows: np.ndarray) -> None:
        loader = self.training.DataLoader(self.data.x_train[windows], self.data.y_train[windows], batch_size=self.options.batch_size)
        self.trainer.train_epoch(loader, self.losses.append)

    def validation_loss(self) -> float:
        loader = self.training.DataLoader(self.data.x_validation, self.data.y_validation, batch_size=256)
        return self.trainer.evaluate(loader)[0]


class TorchRun:
    """The same loop in PyTorch, from a copy of the tinytorch model's initial weights."""

    def __init__(self, torch, model, schedule, data: TextData, options: GptOptions):
        self.torch, self.data, self.options = torch, data, options
        self.net = build_torch_gpt(torch, model)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=options.lr, weight_decay=options.weight_decay)
        # The rate of step s is module 11's schedule at s, as for tinytorch.
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: schedule.lr_at(step) / options.lr)
        self.x_train, self.y_train = torch.tensor(data.x_train), torch.tensor(data.y_train)
        self.losses: list[float] = []

    def train(self, windows: np.ndarray) -> None:
        torch, size = self.torch, self.options.batch_size
        functional = torch.nn.functional
        for start in range(0, len(windows), size):
            batch = torch.tensor(windows[start:start + size])
            self.optimizer.zero_grad()
            logits = self.net(self.x_train[batch])
            loss = functional.cross_entropy(logits.transpose(1, 2), self.y_train[batch])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.options.max_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.losses.append(loss.item())

    def validation_loss(self) -> float:
        torch = self.torch
        with torch.no_grad():
            x, y = torch.tensor(self.data.x_validation), torch.tensor(self.data.y_validation)
            total = sum(torch.nn.functional.cross_entropy(self.net(x[i:i + 256]).transpose(1, 2), y[i:i + 256], reduction="sum").item()
                        for i in range(0, len(x), 256))
        return total / y.numel()


def train_both(torch, steps: int, chunk: int, seed: int) -> dict:
    options = GptOptions(steps=steps, seed=seed)
    modules = gpt_modules(ROOT)  # as the milestone: module 13's FusedGPT, since it is complete here
    data = TextData(modules["transformer"], read_corpus(None)[0], options.context)
    ours = TinytorchRun(modules, data, options)
    theirs = TorchRun(torch, ours.model, ours.schedule, data, options)
    seconds = {"tinytorch": 0.0, "pytorch": 0.0}
    for windows in batch_orders(len(data.x_train), steps, options.batch_size, chunk, seed):
        for name, run in (("tinytorch", ours), ("pytorch", theirs)):
            start = time.process_time()
            run.train(windows)
            seconds[name] += time.process_time() - start
    return {"steps": steps, "time": {name: value / steps for name, value in seconds.items()},
            "validation": {"tinytorch": ours.validation_loss(), "pytorch": theirs.validation_loss()},
            "first_losses": (ours.losses[:3], theirs.losses[:3])}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps for each (default 300)")
    parser.add_argument("--chunk", type=int, default=25, help="steps each runs before the other takes over (default 25)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    args = parser.parse_args(argv)

    import threadpoolctl
    import torch

    torch.set_num_threads(1)
    with threadpoolctl.threadpool_limits(limits=1):
        print("NumPy's BLAS and PyTorch held to one thread each (threadpoolctl, torch.set_num_threads(1))")
        print("\n".join(environment()))
        result = train_both(torch, args.steps, args.chunk, args.seed)

    ours, theirs = result["first_losses"]
    print(f"first losses (nats): tinytorch {np.round(ours, 5).tolist()}, PyTorch {np.round(theirs, 5).tolist()}")
    time_ratio = result["time"]["tinytorch"] / result["time"]["pytorch"]
    validation = result["validation"]
    gap = validation["tinytorch"] / validation["pytorch"] - 1
    ln2 = np.log(2)
    header = ["work", "tinytorch", "PyTorch", "tinytorch / PyTorch", "target"]
    rows = [[f"GPT training step (milestone model, batch 32 x 64)", f"{result['time']['tinytorch'] * 1e3:.1f} ms",
             f"{result['time']['pytorch'] * 1e3:.1f} ms", f"{time_ratio:.2f}x", f"<= {TARGET_TIME_VS_TORCH:g}x"],
            [f"validation loss after {result['steps']} steps (bits/char)", f"{validation['tinytorch'] / ln2:.4f}",
             f"{validation['pytorch'] / ln2:.4f}", f"{gap:+.2%}", f"within {TARGET_LOSS_GAP:.0%}"]]
    print()
    if args.markdown:
        print("| " + " | ".join(header) + " |\n|---|" + "---:|" * (len(header) - 2) + "---|")
        print("\n".join("| " + " | ".join(row) + " |" for row in rows))
    else:
        widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
        for row in [header] + rows:
            print("  ".join(cell.ljust(width) if i == 0 else cell.rjust(width) for i, (cell, width) in enumerate(zip(row, widths))))
    return report_targets("time per step", time_ratio, TARGET_TIME_VS_TORCH, gap)


def report_targets(step: str, time_ratio: float, time_target: float, loss_gap: float) -> int:
    """Print whether a GPT step's time and validation loss met their targets against PyTorch; 1 if one was missed."""
    misses = []
    if time_ratio > time_target:
        misses.append(f"{step} {time_ratio:.2f}x PyTorch (target <= {time_target:g}x)")
    if abs(loss_gap) > TARGET_LOSS_GAP:
        misses.append(f"validation loss {loss_gap:+.2%} from PyTorch's (target within {TARGET_LOSS_GAP:.0%})")
    print("\ntargets: " + ("all met" if not misses else "MISSED: " + "; ".join(misses)))
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
