"""`tito milestone digits`: train an MLP made of the student's own modules on real handwritten digits."""
from __future__ import annotations

import time
from pathlib import Path

from rich.markup import escape

from ..milestone import CHECKPOINT_NAME, DEFAULT_OUT, PLOT_NAME, DigitsOptions, EpochProgress, run_digits
from ..ui import console


def register(commands) -> None:
    parser = commands.add_parser("milestone", help="whole-stack runs on real data (e.g. `tito milestone digits`)")
    milestones = parser.add_subparsers(dest="milestone", required=True, metavar="MILESTONE")
    digits = milestones.add_parser(
        "digits", help="train an MLP built from your modules on handwritten digits; save a plot and a checkpoint",
        description="Train an MLP with one hidden layer (Adam) on scikit-learn's 8x8 digits, or on MNIST IDX files, "
                    "and report the accuracy on a held-out 20%.")
    defaults = DigitsOptions()
    digits.add_argument("--epochs", type=int, default=defaults.epochs, help=f"passes over the training data (default {defaults.epochs})")
    digits.add_argument("--lr", type=float, default=defaults.lr, help=f"Adam's learning rate (default {defaults.lr})")
    digits.add_argument("--batch-size", type=int, default=defaults.batch_size, help=f"examples per step (default {defaults.batch_size})")
    digits.add_argument("--seed", type=int, default=defaults.seed,
                        help="seeds the initial weights and the shuffling: the same seed gives the same run (default 0)")
    digits.add_argument("--hidden", type=int, default=defaults.hidden, help=f"units in the hidden layer (default {defaults.hidden})")
    digits.add_argument("--data", type=Path, metavar="PATH",
                        help="an IDX images file (labels found next to it) or a folder of MNIST IDX files "
                             "(default: scikit-learn's bundled digits)")
    digits.add_argument("--out", type=Path, metavar="FOLDER",
                        help=f"where {PLOT_NAME} and {CHECKPOINT_NAME} go (default: {DEFAULT_OUT} in the course)")
    digits.set_defaults(handler=run)


def run(args) -> int:
    options = DigitsOptions(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                            hidden=args.hidden, data=args.data, out=args.out)
    start = time.perf_counter()
    result = run_digits(options, EpochProgress(console))
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
