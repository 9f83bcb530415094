"""`tito milestone digits|cnn|gpt|compress`: train a network made of the student's own modules on real data: handwritten
digits, or text for the GPT; or make the trained digits CNN smaller."""
from __future__ import annotations

import math
import time
from pathlib import Path

from rich.markup import escape

from ..milestones.cnn import CNN_CHECKPOINT_NAME, CNN_OUT, CNN_PLOT_NAME, CnnOptions, run_cnn
from ..milestones.common import DigitsOptions, EpochProgress
from ..milestones.compress import COMPRESS_OUT, SPARSITY_PLOT_NAME, CompressOptions, run_compress
from ..milestones.digits import CHECKPOINT_NAME, DEFAULT_OUT, PLOT_NAME, run_digits
from ..milestones.gpt import GPT_CHECKPOINT_NAME, GPT_OUT, GPT_PLOT_NAME, PROFILE_STEPS, TOKENIZERS, GptOptions, \
    StepProgress, run_gpt, sample_from_checkpoint
from ..ui import console


def register(commands) -> None:
    parser = commands.add_parser(
        "milestone", help="whole-stack runs on real data (e.g. `tito milestone digits`)",
        description="Train a model built from your own modules on real data, with no network. "
                    "Example: `tito milestone digits`, once modules 01-08 are complete.")
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
        "cnn", help="train a small CNN (module 09) on handwritten digits; save a plot and a checkpoint",
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
    _register_gpt(milestones)
    _register_compress(milestones)


def _register_gpt(milestones) -> None:
    defaults = GptOptions()
    gpt = milestones.add_parser(
        "gpt", help="train a small GPT (modules 10-11) on text; bits per character, a sample, a plot, a checkpoint",
        description=f"Train a character-level GPT ({defaults.layers} layers, {defaults.heads} heads, width "
                    f"{defaults.width}, context {defaults.context}; AdamW with warm-up, cosine decay and clipping) on "
                    "Python's reference documentation (pydoc_data.topics) or a UTF-8 text file; every tenth block of "
                    f"2,048 characters is held out. Reports bits per character on the held-out text and writes a sample.")
    gpt.add_argument("--steps", type=int, default=defaults.steps, help=f"training steps (default {defaults.steps})")
    gpt.add_argument("--seed", type=int, default=defaults.seed,
                     help="seeds the initial weights, the batches and the sample: the same seed gives the same run (default 0)")
    gpt.add_argument("--data", type=Path, metavar="FILE", help="a UTF-8 text file (default: pydoc_data.topics)")
    gpt.add_argument("--sample", action="store_true",
                     help="only write text with the checkpoint of an earlier run (in --out), without training")
    gpt.add_argument("--prompt", help="the text the sample continues (default 'The ', or the training text's first "
                                      "4 characters if it has no 'The ')")
    gpt.add_argument("--length", type=int, default=defaults.length,
                     help=f"tokens to write, characters with the char tokenizer (default {defaults.length})")
    gpt.add_argument("--temperature", type=float, default=defaults.temperature,
                     help=f"below 1 safer, above 1 wilder (default {defaults.temperature})")
    gpt.add_argument("--top-k", type=int, default=defaults.top_k,
                     help=f"draw only among the k likeliest characters (default {defaults.top_k})")
    gpt.add_argument("--profile", action="store_true",
                     help=f"after training, profile {PROFILE_STEPS} more steps (module 12): a table, a trace for Perfetto "
                          "and a roofline plot in --out")
    gpt.add_argument("--out", type=Path, metavar="FOLDER",
                     help=f"where {GPT_PLOT_NAME} and {GPT_CHECKPOINT_NAME} go (default: {GPT_OUT} in the course)")
    gpt.add_argument("--tokenizer", choices=TOKENIZERS, default=defaults.tokenizer,
                     help="char: module 11's characters; bpe: module 16's byte-pair encoding, learned from the "
                          "training text (default char)")
    gpt.add_argument("--merges", type=int, default=defaults.merges,
                     help=f"BPE merges learned with --tokenizer bpe (default {defaults.merges})")
    gpt.set_defaults(handler=run_gpt_command)


def run_gpt_command(args) -> int:
    options = GptOptions(steps=args.steps, seed=args.seed, data=args.data, out=args.out, sample=args.sample,
                         prompt=args.prompt, length=args.length, temperature=args.temperature, top_k=args.top_k,
                         profile=args.profile, tokenizer=args.tokenizer, merges=args.merges)
    if options.sample:
        text, described = sample_from_checkpoint(options)
        console.print(f"[bold]sample[/] from a model trained {described['steps']} steps on {escape(str(described['corpus']))} "
                      f"({described['validation_bits']:.3f} bits per character on validation):")
        console.print(text, highlight=False, markup=False)
        return 0
    start = time.perf_counter()
    result = run_gpt(options, StepProgress(console))
    console.print(f"trained {len(result.train_bits)} steps in {result.train_seconds:.1f} s "
                  f"({time.perf_counter() - start:.1f} s with loading, sampling, plotting and saving)")
    tokens = "characters" if options.tokenizer == "char" else "tokens"
    console.print(f"[bold]validation: {result.final_bits:.3f} bits per character[/] on {result.validation_characters:,} "
                  f"held-out characters (a uniform guess over {result.vocabulary} {tokens}: "
                  f"{math.log2(result.vocabulary) * result.tokens_per_character:.2f})")
    if options.tokenizer == "bpe":
        console.print(f"tokenizer: BPE with {options.merges} merges learned from the training text, "
                      f"{result.tokens_per_character:.3f} tokens per character of the held-out text")
    console.print(f"[bold]sample[/] (temperature {options.temperature:g}, top-k {options.top_k}):")
    console.print(result.sample, highlight=False, markup=False)
    if result.replaced:
        console.print(f"[yellow]note[/]: replaced the earlier run in {escape(str(result.plot.parent))} "
                      f"(--out FOLDER keeps runs apart)")
    console.print(f"plot: {escape(str(result.plot))}")
    console.print(f"checkpoint: {escape(str(result.checkpoint))}")
    if result.profile is not None:
        _print_profile(result.profile)
    return 0


def _print_profile(profile) -> None:
    console.print(f"[bold]profile[/] of {PROFILE_STEPS} more training steps (this machine: {profile.peak / 1e9:.1f} "
                  f"GFLOP/s float32 matrix product, {profile.bandwidth / 1e9:.1f} GB/s copy):")
    console.print(profile.table, highlight=False, markup=False, soft_wrap=True)  # a table: never folded at the width
    console.print(f"table: {escape(str(profile.table_path))}")
    console.print(f"trace: {escape(str(profile.trace))} (open it at https://ui.perfetto.dev or with `vizviewer`)")
    console.print(f"roofline: {escape(str(profile.roofline))}")


def _register_compress(milestones) -> None:
    defaults = CompressOptions()
    compress = milestones.add_parser(
        "compress", help="quantize (module 14) and prune (module 15) the trained digits CNN; a table, a plot, .onnx files",
        description="Make the CNN of `tito milestone cnn` smaller (trained first if its folder has no checkpoint): "
                    "INT8, structured pruning of channels, and both. Prints accuracy, bytes and inference time per image "
                    f"of each, plots accuracy against unstructured sparsity ({SPARSITY_PLOT_NAME}) and exports each "
                    "version to ONNX.")
    compress.add_argument("--cnn", type=Path, metavar="FOLDER",
                          help=f"the folder of a `tito milestone cnn` run (default: {CNN_OUT} in the course)")
    compress.add_argument("--prune-channels", type=float, default=defaults.prune_channels,
                          help=f"fraction of each hidden layer's channels removed (default {defaults.prune_channels})")
    compress.add_argument("--finetune-epochs", type=int, default=defaults.finetune_epochs,
                          help=f"epochs of fine-tuning after each pruning (default {defaults.finetune_epochs})")
    compress.add_argument("--seed", type=int, default=defaults.seed, help="seeds the fine-tuning's shuffling (default 0)")
    compress.add_argument("--data", type=Path, metavar="PATH", help="the --data the CNN was trained with (default: "
                                                                    "scikit-learn's bundled digits)")
    compress.add_argument("--out", type=Path, metavar="FOLDER",
                          help=f"where {SPARSITY_PLOT_NAME} and the .onnx files go (default: {COMPRESS_OUT} in the course)")
    compress.set_defaults(handler=run_compress_command)


def run_compress_command(args) -> int:
    from rich.table import Table

    options = CompressOptions(cnn=args.cnn, prune_channels=args.prune_channels, finetune_epochs=args.finetune_epochs,
                              seed=args.seed, data=args.data, out=args.out)
    result = run_compress(options, EpochProgress(console, "cnn"))
    if result.trained:
        console.print(f"no checkpoint was there: trained the CNN first ({escape(str(result.checkpoint))})")
    table = Table(title=f"the digits CNN on {result.test_size} held-out images")
    for column in ("version", "accuracy", "bytes", "smaller", ".onnx bytes", "µs per image", "speed-up"):
        table.add_column(column, justify="left" if column == "version" else "right")
    base = result.versions[0]
    for version in result.versions:
        table.add_row(version.name, f"{version.accuracy:.2%}", f"{version.parameter_bytes:,}",
                      f"{base.parameter_bytes / version.parameter_bytes:.1f}x",
                      "-" if version.onnx is None else f"{version.onnx.stat().st_size:,}",
                      f"{version.seconds_per_image * 1e6:.1f}", f"{base.seconds_per_image / version.seconds_per_image:.2f}x")
    console.print(table)
    console.print(f"pruned: {options.prune_channels:.0%} of each hidden layer's channels removed (structured), then "
                  f"{options.finetune_epochs} epochs of fine-tuning. bytes: the arrays inference needs (weights, biases; "
                  "for INT8 also scales and zero points). INT8 runs in NumPy's integer loops, which have no fast path: "
                  "its time is not what int8 hardware gives.")
    console.print("[bold]unstructured (global magnitude) pruning[/], accuracy right after pruning -> after "
                  f"{options.finetune_epochs} epochs of fine-tuning with the masks kept:")
    for sparsity, before, tuned in result.curve:
        console.print(f"  {sparsity:>4.0%} of the weights pruned: {before:6.2%} -> {tuned:6.2%}")
    console.print(f"plot: {escape(str(result.plot))}")
    if result.onnx_missing:
        console.print("[yellow]note[/]: no .onnx files: exporting them needs the onnx package (`pip install onnx`)")
    for version in result.versions:
        if version.onnx is not None:
            console.print(f"onnx ({escape(version.name)}): {escape(str(version.onnx))}")
    return 0


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
