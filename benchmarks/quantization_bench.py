"""Module 14's INT8 quantization on the digits MLP and CNN of `tito milestone digits` / `cnn`: accuracy, bytes, time.

Run from the repository root (see benchmarks/quantization.md):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/quantization_bench.py

Each model is trained with the milestone's settings (MLP 64-512-10, 15 epochs, Adam 1e-3, batch 64; CNN 16/32
channels, 20 epochs, Adam 2e-3, batch 32), then quantized by `quantize_model` with 256 training images for
calibration (min/max and least-squared-error ranges). Measured on the 359 held-out images: accuracy; bytes of the
weights and of the checkpoint files (module 08's `save_checkpoint` for float, `np.savez` of every array a
quantized layer needs for int8); and inference time per image over the whole test set in one batch, for
tinytorch (NumPy) and, when installed, ONNX Runtime on the exported model (float and QDQ int8). NumPy's BLAS
and ONNX Runtime run on one thread; times are wall-clock, the best of `--repeats` interleaved runs.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's tinytorch, whatever is installed
sys.path.insert(0, str(ROOT / "benchmarks"))

from training_bench import environment  # noqa: E402
from tinytorch.core.activations import ReLU  # noqa: E402
from tinytorch.core.autograd import no_grad  # noqa: E402
from tinytorch.core.convolutions import Conv2d, MaxPool2d  # noqa: E402
from tinytorch.core.layers import Flatten, Linear, Sequential  # noqa: E402
from tinytorch.core.losses import CrossEntropyLoss  # noqa: E402
from tinytorch.core.optimizers import Adam  # noqa: E402
from tinytorch.core.quantization import QuantizedLayer, quantize_model, to_onnx  # noqa: E402
from tinytorch.core.tensor import Tensor  # noqa: E402
from tinytorch.core.training import DataLoader, Standardizer, Trainer, load_digits_dataset, save_checkpoint  # noqa: E402

# Targets: held-out accuracy within 0.5 points of float, weights 4x smaller.
TARGET_ACCURACY_DROP = 0.005
TARGET_WEIGHT_RATIO = 4.0


def milestone_models(seed: int) -> dict:
    """The architectures and training settings of `tito milestone digits` and `tito milestone cnn`."""
    rng = np.random.default_rng(seed)
    mlp = Sequential(Linear(64, 512, rng=rng), ReLU(), Linear(512, 10, rng=rng))
    cnn = Sequential(Conv2d(1, 16, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2),
                     Conv2d(16, 32, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2), Flatten(), Linear(128, 10, rng=rng))
    return {"MLP 64-512-10": (mlp, (-1, 64), 15, 1e-3, 64), "CNN 16-32": (cnn, (-1, 1, 8, 8), 20, 2e-3, 32)}


def best_time(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def quantized_arrays(model: Sequential) -> dict:
    """Every array a quantized layer needs at inference (as the lesson's systems analysis saves them)."""
    names = ("qweight", "qbias", "weight_scale", "input_scale", "input_zero_point", "output_scale", "output_zero_point")
    return {f"{index}.{name}": getattr(layer, name) for index, layer in enumerate(model.layers)
            if isinstance(layer, QuantizedLayer) for name in names}


def onnx_session(model, shape):
    try:
        import onnxruntime
    except ImportError:
        return None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(to_onnx(model, shape).SerializeToString(), options, providers=["CPUExecutionProvider"])


def measure(name, model, shape, epochs, lr, batch_size, digits, standardize, repeats, folder: Path) -> list[dict]:
    train_x, test_x = standardize(digits.x_train).reshape(shape), standardize(digits.x_test).reshape(shape)
    start = time.perf_counter()
    Trainer(model, Adam(model.parameters(), lr=lr), CrossEntropyLoss()).fit(
        DataLoader(train_x, digits.y_train, batch_size=batch_size, shuffle=True, seed=0), epochs=epochs)
    print(f"{name}: trained in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    variants = [("float", model), ("int8 min/max", quantize_model(model, train_x[:256])),
                ("int8 MSE", quantize_model(model, train_x[:256], method="mse"))]
    rows = []
    for label, variant in variants:
        quantized = label != "float"
        path = folder / f"{name}-{label}.npz".replace(" ", "_").replace("/", "")
        if quantized:
            np.savez(path, **quantized_arrays(variant))
            weights = sum(layer.qweight.nbytes for layer in variant.layers if isinstance(layer, QuantizedLayer))
        else:
            save_checkpoint(path, variant)
            weights = sum(layer.weight.numpy().nbytes for layer in variant.layers if isinstance(layer, (Linear, Conv2d)))
        inputs = Tensor(test_x)
        with no_grad():
            accuracy = float(np.mean(variant(inputs).numpy().argmax(axis=1) == digits.y_test))
            numpy_time = best_time(lambda: variant(inputs), repeats) / len(test_x)
        session = onnx_session(variant, test_x.shape)
        onnx_time = None if session is None else best_time(lambda: session.run(["logits"], {"input": test_x}), repeats) / len(test_x)
        rows.append(dict(model=name, variant=label, accuracy=accuracy, weights=weights, file=os.path.getsize(path),
                         numpy_us=numpy_time * 1e6, onnx_us=None if onnx_time is None else onnx_time * 1e6))
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| model | variant | held-out accuracy | weights (bytes) | file (bytes) | NumPy, us/image | ONNX Runtime, us/image |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        onnx_us = "not installed" if row["onnx_us"] is None else f"{row['onnx_us']:.2f}"
        lines.append(f"| {row['model']} | {row['variant']} | {row['accuracy']:.2%} | {row['weights']:,} | {row['file']:,} | "
                     f"{row['numpy_us']:.2f} | {onnx_us} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per variant, the best counts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print("\n".join(environment()), file=sys.stderr)
    from threadpoolctl import threadpool_limits

    digits = load_digits_dataset()
    standardize = Standardizer(digits.x_train)
    rows = []
    with threadpool_limits(1, "blas"), tempfile.TemporaryDirectory() as folder:
        for name, settings in milestone_models(args.seed).items():
            rows += measure(name, *settings, digits, standardize, args.repeats, Path(folder))
    print(table(rows))
    missed = []
    for model in dict.fromkeys(row["model"] for row in rows):
        float_row, int8_row = [row for row in rows if row["model"] == model][:2]
        drop = float_row["accuracy"] - int8_row["accuracy"]
        ratio = float_row["weights"] / int8_row["weights"]
        print(f"{model}: int8 (min/max) accuracy {int8_row['accuracy'] - float_row['accuracy']:+.2%} against float (target >= -{TARGET_ACCURACY_DROP:.1%}); "
              f"weights {ratio:.2f}x smaller (target {TARGET_WEIGHT_RATIO:.0f}x), file {float_row['file'] / int8_row['file']:.2f}x; "
              f"NumPy time int8 / float {int8_row['numpy_us'] / float_row['numpy_us']:.1f}x"
              + ("" if float_row["onnx_us"] is None else
                 f", ONNX Runtime int8 / float {int8_row['onnx_us'] / float_row['onnx_us']:.2f}x"))
        if drop > TARGET_ACCURACY_DROP or ratio < TARGET_WEIGHT_RATIO:
            missed.append(model)
    if missed:
        print(f"target missed: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
