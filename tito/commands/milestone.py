"""`tito milestone digits|cnn`: train a network made of the student's own modules on real handwritten digits."""
from __future__ import annotations

import time
from pathlib import Path

from rich.markup import escape

from ..milestone import (CHECKPOINT_NAME, CNN_CHECKPOINT_NAME, CNN_OUT, CNN_PLOT_NAME, DEFAULT_OUT, PLOT_NAME,
                         CnnOptions, DigitsOptions, EpochProgress, run_cnn, run_digits)
from ..ui import console


def register(commands) -> None:
    parser = commands.add_parser("milestone", help="whole-stack runs on real data (e.g. `tito milestone digits`)")
    milestones = parser.add_subparsers(dest="milestone", required=True, metavar="MILESTONE")
    digits = milestones.add_parser(
        "digits", help="train an MLP built from your modules on handwritten digits; save a plot and a checkpoint",
        description="Train an MLP with one hidden layer (Adam) on scikit-learn's 8x8 digits, or on MNIST IDX files, "
                    "and report the accuracy on a held-out 20%.")
    _add_common(digits, DigitsOptions(), PLOT_NAME, CHECKPOINT_NAME, DEFAULT_OUT)
    digits.add_argument("--hidden", type=int, default=DigitsOptions().hidden,
                        help=f"units in the hidden layer (default {DigitsOptions().hidden})")
    digits.set_defaults(handler=run)

    cnn = milestones.add_parser(
        "cnn", help="train a small CNN (module 08) on handwritten digits; save a plot and a checkpoint",
        description="Train a LeNet-style CNN (two 3x3 convolutions with ReLU and 2x2 max pooling, then a Linear "
                    "layer; Adam) on scikit-learn's 8x8 digits, or on MNIST IDX files, and report the accuracy on "
                    "the same held-out 20% as `tito milestone digits`.")
    defaults = CnnOptions()
    _add_common(cnn, defaults, CNN_PLOT_NAME, CNN_CHECKPOINT_NAME, CNN_OUT)
    cnn.add_argument("--channels", type=int, default=defaults.channels,
                     help=f"filters of the first convolution; the second has twice as many (default {defaults.channels})")
    cnn.add_argument("--hidden", type=int, default=defaults.hidden,
                     help=f"units in a hidden Linear layer before the output, 0 for none (default {defaults.hidden})")
    cnn.set_defaults(handler=run)


def _add_common(parser, defaults: DigitsOptions, plot_name: str, checkpoint_name: str, default_out: Path) -> None:
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help=f"passes over the training data (default {defaults.epochs})")
    parser.add_argument("--lr", type=float, default=defaults.lr, help=f"Adam's learning rate (default {defaults.lr})")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help=f"examples per step (default {defaults.batch_size})")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="seeds the initial weights and the shuffling: the same seed gives the same run (default 0)")
    parser.add_argument("--data", type=Path, metavar="PATH",
                        help="an IDX images file (labels found next to it) or a folder of MNIST IDX files "
                             "(default: scikit-learn's bundled digits)")
    parser.add_argument("--out", type=Path, metavar="FOLDER",
                        help=f"where {plot_name} and {checkpoint_name} go (default: {default_out} in the course)")


def run(args) -> int:
    common = dict(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed, hidden=args.hidden,
                  data=args.data, out=args.out)
    start = time.perf_counter()
    if args.milestone == "cnn":
        result = run_cnn(CnnOptions(channels=args.channels, **common), EpochProgress(console, "cnn"))
    else:
        result = run_digits(DigitsOptions(**common), EpochProgress(console))
    epochs = f"{result.history.epochs} epoch" + ("s" if result.history.epochs != 1 else "")
    console.print(f"trained on {result.train_size} images for {epochs} in {result.train_seconds:.1f} s "
                  f"({time.perf_counter() - start:.1f} s with loading, evaluating, plotting and saving)")
    console.print(f"[bold]test accuracy: {result.test_accuracy:.2%}[/] on {result.test_size} held-out images "
                  f"({result.misclassified} misclassified), test loss {result.test_loss:.4f}")
    if result.replaced:
        console.print(f"[yellow]note[/]: replaced the earlier run in {escape(str(result.plot.parent))} "
                      f"(--out FOLDER keeps runs apart)")
    console.print(f"plot: {escape(str(result.plot))}")
    console.print(f"checkpoint: {escape(str(result.checkpoint))}")
    return 0
