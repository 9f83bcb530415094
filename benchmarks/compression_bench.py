"""Module 15's pruning (with module 14's INT8) on the digits CNN of `tito milestone cnn`: accuracy, bytes, time.

Run from the repository root (see benchmarks/compression.md):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compression_bench.py

Trains the CNN with the milestone's settings (16/32 channels, 20 epochs, Adam 2e-3, batch 32) in a temporary
folder, then runs `tito milestone compress`'s own function on it (float, INT8, half the channels removed and
fine-tuned, both; the global-magnitude sparsity curve with fine-tuning). On top: the bytes of the 80%-sparse
weights in sparse formats, and the forward time of the dense and the half-channel CNN timed interleaved,
`--repeats` rounds, the best of each. NumPy's BLAS runs on one thread. Exits 1 if a target is missed.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's tinytorch and tito, whatever is installed
sys.path.insert(0, str(ROOT / "benchmarks"))

from training_bench import environment  # noqa: E402
from tito.milestones.cnn import CNN_CHECKPOINT_NAME, CnnOptions, run_cnn  # noqa: E402
from tito.milestones.common import tinytorch_modules  # noqa: E402
from tito.milestones.compress import COMPRESS_LESSONS, CompressOptions, load_cnn, run_compress  # noqa: E402

# The targets: at 80% unstructured sparsity, after fine-tuning, within 1 point of float; half the
# channels removed, inference at least 1.5x faster.
TARGET_SPARSITY, TARGET_ACCURACY_DROP, TARGET_SPEEDUP = 0.8, 0.01, 1.5


def sparse_bytes(weights: list, value_bytes: int) -> dict:
    """Bytes of the pruned weights stored dense, in CSR (values, int32 column indices, row offsets: each array as
    a matrix with its first axis as rows) and as a bitmask (one bit per weight) plus the non-zero values."""
    nonzero = sum(int(np.count_nonzero(w)) for w in weights)
    return {"dense": sum(w.size for w in weights) * value_bytes,
            "CSR": nonzero * (value_bytes + 4) + sum((len(w) + 1) * 4 for w in weights),
            "bitmask": sum(int(np.ceil(w.size / 8)) for w in weights) + nonzero * value_bytes}


def interleaved_times(modules, models: list, images: np.ndarray, repeats: int) -> list[float]:
    """The best forward time of each model over `images`, the models timed in turn, `repeats` rounds."""
    tensor, best = modules["tensor"].Tensor(images), [np.inf] * len(models)
    with modules["autograd"].no_grad():
        for _ in range(repeats):
            for index, model in enumerate(models):
                best[index] = min(best[index], modules["tensor"].best_time(lambda: model(tensor), 1))
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30, help="interleaved timing rounds, the best counts")
    parser.add_argument("--finetune-epochs", type=int, default=CompressOptions().finetune_epochs)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print("\n".join(environment()), file=sys.stderr)
    from threadpoolctl import threadpool_limits

    modules = tinytorch_modules(ROOT, COMPRESS_LESSONS)
    with tempfile.TemporaryDirectory() as folder, threadpool_limits(1, "blas"):
        run_cnn(CnnOptions(seed=args.seed, out=Path(folder) / "cnn"))
        result = run_compress(CompressOptions(cnn=Path(folder) / "cnn", out=Path(folder) / "out",
                                              finetune_epochs=args.finetune_epochs, seed=args.seed))
        dataset = modules["training"].load_digits_dataset()
        model, extra = load_cnn(modules, Path(folder) / "cnn" / CNN_CHECKPOINT_NAME, dataset)
        onnx_bytes = [None if v.onnx is None else v.onnx.stat().st_size for v in result.versions]
        images = ((dataset.x_test - extra["mean"]) / extra["scale"]).astype(np.float32).reshape(-1, 1, 8, 8)
        compression = modules["compression"]
        half = compression.structured_prune(model, 0.5)
        dense_time, half_time = interleaved_times(modules, [model, half], images, args.repeats)
        compression.Pruning(model, TARGET_SPARSITY)
        weights = [w.numpy() for w in compression.prunable_weights(model)]

    print("| version | held-out accuracy | parameters (bytes) | .onnx (bytes) | NumPy, us/image |")
    print("|---|---:|---:|---:|---:|")
    for version, size in zip(result.versions, onnx_bytes):
        print(f"| {version.name} | {version.accuracy:.2%} | {version.parameter_bytes:,} | "
              f"{'not installed' if size is None else f'{size:,}'} | {version.seconds_per_image * 1e6:.1f} |")
    print(f"\n| weights pruned (global magnitude) | accuracy right after | after {args.finetune_epochs} epochs of fine-tuning |")
    print("|---:|---:|---:|")
    for sparsity, before, tuned in result.curve:
        print(f"| {sparsity:.0%} | {before:.2%} | {tuned:.2%} |")
    print(f"\n| {TARGET_SPARSITY:.0%}-sparse weights | dense | CSR | bitmask + values |")
    print("|---|---:|---:|---:|")
    for label, value_bytes in (("float32 values", 4), ("int8 values", 1)):
        sizes = sparse_bytes(weights, value_bytes)
        print(f"| {label} | {sizes['dense']:,} | {sizes['CSR']:,} | {sizes['bitmask']:,} |")

    dense_accuracy = result.versions[0].accuracy
    at_target = next(tuned for sparsity, _, tuned in result.curve if sparsity == TARGET_SPARSITY)
    speedup = dense_time / half_time
    print(f"\n{TARGET_SPARSITY:.0%} sparsity after fine-tuning: {at_target:.2%} against {dense_accuracy:.2%} float "
          f"({(at_target - dense_accuracy) * 100:+.2f} points; target >= -{TARGET_ACCURACY_DROP * 100:.0f})")
    print(f"half the channels: forward {dense_time * 1e3:.2f} ms -> {half_time * 1e3:.2f} ms over {len(images)} images, "
          f"{speedup:.2f}x faster (target {TARGET_SPEEDUP}x); accuracy {result.versions[2].accuracy:.2%} after fine-tuning")
    missed = [name for name, ok in [("sparsity", dense_accuracy - at_target <= TARGET_ACCURACY_DROP),
                                    ("speed-up", speedup >= TARGET_SPEEDUP)] if not ok]
    if missed:
        print(f"target missed: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
