"""`tito milestone compress`: the trained digits CNN of `tito milestone cnn` made smaller with the student's modules
14 (INT8 quantization, ONNX export) and 15 (pruning): accuracy, bytes and inference time of four versions, a
sparsity-vs-accuracy plot and the .onnx files. The work is in plain functions; `tito/commands/milestone.py` only
parses options."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checkpoints import checkpoint_description
from ..errors import TitoError
from .cnn import CNN_CHECKPOINT_NAME, CNN_LESSONS, CNN_OUT, CnnOptions, build_cnn, run_cnn
from .common import (_course_root, _make_folder, _one_blas_thread, _require_finished, load_dataset, tinytorch_modules,
                     write_figure)

COMPRESS_OUT = Path("runs") / "compress"
SPARSITY_PLOT_NAME = "sparsity_accuracy.png"
COMPRESS_LESSONS = CNN_LESSONS + (("quantization", "14_quantization"), ("compression", "15_compression"))
SPARSITIES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95)
CALIBRATION_IMAGES = 256  # training images that calibrate INT8 (never test images: they are only measured)
TIMING_REPEATS = 10


@dataclass(frozen=True)
class CompressOptions:
    cnn: Path | None = None  # the folder of a `tito milestone cnn` run; None: runs/cnn in the course (or here)
    prune_channels: float = 0.5  # the fraction of each hidden layer's channels removed by structured pruning
    finetune_epochs: int = 3  # after each pruning, with the masks kept
    seed: int = 0
    data: Path | None = None  # as `tito milestone cnn --data`: the images the CNN was trained on
    out: Path | None = None  # where the plot and the .onnx files go; None: runs/compress in the course (or here)

    def check(self) -> None:
        if not 0 < self.prune_channels < 1:
            raise TitoError(f"--prune-channels must be a fraction between 0 and 1, got {self.prune_channels}", exit_code=2)
        if self.finetune_epochs < 0:
            raise TitoError(f"--finetune-epochs must be 0 or more, got {self.finetune_epochs}", exit_code=2)
        if self.seed < 0:
            raise TitoError(f"--seed must be 0 or more, got {self.seed}", exit_code=2)


@dataclass
class Version:
    name: str
    accuracy: float
    parameter_bytes: int  # the arrays inference needs: weights, biases, and for INT8 the scales and zero points
    seconds_per_image: float  # the fastest of a few forward passes over the test set, divided by its size
    onnx: Path | None  # the exported file, None without the onnx package


@dataclass
class CompressResult:
    versions: list[Version]
    curve: list[tuple[float, float, float]]  # (sparsity, accuracy right after pruning, after fine-tuning)
    plot: Path
    checkpoint: Path
    trained: bool  # no checkpoint was there: the CNN was trained first
    test_size: int
    onnx_missing: bool


def run_compress(options: CompressOptions, progress=None) -> CompressResult:
    """Load (or first train) the digits CNN, then measure it as float, INT8, structurally pruned and pruned + INT8,
    draw the accuracy of unstructured pruning against sparsity, and export the four versions to ONNX."""
    options.check()
    root = _course_root()
    _require_finished(root, [lesson for _, lesson in COMPRESS_LESSONS])
    modules = tinytorch_modules(root, COMPRESS_LESSONS)
    cnn_folder = Path(options.cnn) if options.cnn is not None else (root or Path.cwd()) / CNN_OUT
    checkpoint = cnn_folder / CNN_CHECKPOINT_NAME
    trained = not checkpoint.exists()
    if trained:
        run_cnn(CnnOptions(seed=options.seed, data=options.data, out=cnn_folder), progress)
    dataset = load_dataset(modules["training"], options.data)
    model, extra = load_cnn(modules, checkpoint, dataset)
    out = Path(options.out) if options.out is not None else (root or Path.cwd()) / COMPRESS_OUT
    _make_folder(out)

    def standardized(x):
        return ((x - extra["mean"]) / extra["scale"]).astype(np.float32).reshape(len(x), 1, *dataset.image_shape)

    data = _Data(modules, standardized(dataset.x_train), dataset.y_train, standardized(dataset.x_test), dataset.y_test,
                 options.seed)
    quantization, compression = modules["quantization"], modules["compression"]
    with _one_blas_thread():
        pruned = compression.structured_prune(model, options.prune_channels)
        data.fit(pruned, options.finetune_epochs)
        calibration = data.x_train[:CALIBRATION_IMAGES]
        models = {"float": model, "INT8": quantization.quantize_model(model, calibration),
                  "pruned": pruned,
                  "pruned + INT8": quantization.quantize_model(pruned, calibration)}
        measured = [(name, data.accuracy(version), parameter_bytes(quantization, version), data.seconds_per_image(version))
                    for name, version in models.items()]
        curve = sparsity_curve(modules, model, data, options.finetune_epochs)
    files = export_onnx(quantization, models, out, data.x_test.shape)
    versions = [Version(*row, onnx=file) for row, file in zip(measured, files)]
    plot = save_sparsity_plot(out / SPARSITY_PLOT_NAME, curve, versions[0].accuracy, dataset.name)
    return CompressResult(versions, curve, plot, checkpoint, trained, len(data.y_test), files[0] is None)


def load_cnn(modules: dict, checkpoint: Path, dataset):
    """The CNN saved by `tito milestone cnn`, rebuilt with its own architecture, and the checkpoint's `extra`
    (the standardization's mean and scale); a file that does not fit is one line."""
    try:
        described = checkpoint_description(checkpoint)
        model = build_cnn(modules, dataset.image_shape, int(described["channels"]), int(described["hidden"]),
                          dataset.num_classes, seed=0)
        extra = modules["training"].load_checkpoint(checkpoint, model)
    except (KeyError, TypeError, ValueError, OSError) as error:
        raise TitoError(f"{checkpoint} is not a checkpoint of `tito milestone cnn` for these images (pass the same "
                        f"--data as to it): {error}") from None
    return model, extra


class _Data:
    """The standardized images, and training and measuring on them."""

    def __init__(self, modules, x_train, y_train, x_test, y_test, seed):
        self.modules, self.seed = modules, seed
        self.x_train, self.y_train, self.x_test, self.y_test = x_train, y_train, x_test, y_test

    def fit(self, model, epochs: int, pruning=None) -> None:
        optimizer = self.modules["optimizers"].Adam(model.parameters(), lr=1e-3)
        if pruning is not None:
            optimizer = self.modules["compression"].MaskedOptimizer(optimizer, pruning)
        training = self.modules["training"]
        loader = training.DataLoader(self.x_train, self.y_train, batch_size=32, shuffle=True, seed=self.seed)
        if epochs:
            training.Trainer(model, optimizer, self.modules["losses"].CrossEntropyLoss()).fit(loader, epochs=epochs)

    def accuracy(self, model) -> float:
        with self.modules["autograd"].no_grad():
            logits = self.modules["training"].values(model(self.modules["tensor"].Tensor(self.x_test)))
        return float(np.mean(logits.argmax(axis=1) == self.y_test))

    def seconds_per_image(self, model) -> float:
        images = self.modules["tensor"].Tensor(self.x_test)
        with self.modules["autograd"].no_grad():
            return self.modules["tensor"].best_time(lambda: model(images), TIMING_REPEATS) / len(self.x_test)


def parameter_bytes(quantization, model) -> int:
    """Bytes of the arrays inference needs: each float layer's parameters; each quantized layer's int8 weights,
    int32 biases, and float32 scales and zero points."""
    names = ("qweight", "qbias", "weight_scale", "input_scale", "input_zero_point", "output_scale", "output_zero_point")
    quantized = sum(np.asarray(getattr(layer, name)).nbytes for layer in model.layers
                    if isinstance(layer, quantization.QuantizedLayer) for name in names)
    return quantized + sum(parameter.numpy().nbytes for parameter in model.parameters())


def sparsity_curve(modules: dict, model, data: _Data, epochs: int) -> list[tuple[float, float, float]]:
    """(sparsity, accuracy after global magnitude pruning, after fine-tuning with the masks kept) per sparsity."""
    compression, curve = modules["compression"], []
    for sparsity in SPARSITIES:
        pruned = copy_model(modules, model)
        pruning = compression.Pruning(pruned, sparsity)
        before = data.accuracy(pruned)
        data.fit(pruned, epochs, pruning)
        curve.append((sparsity, before, data.accuracy(pruned)))
    return curve


def copy_model(modules: dict, model):
    """A Sequential with new Linear and Conv2d layers holding copies of `model`'s parameters (the others shared)."""
    narrow = modules["compression"].narrow
    weighted = (modules["layers"].Linear, modules["convolutions"].Conv2d)
    return modules["layers"].Sequential(*[narrow(layer) if isinstance(layer, weighted) else layer for layer in model.layers])


def export_onnx(quantization, models: dict, out: Path, input_shape: tuple) -> list[Path | None]:
    """Each model written as `<name>.onnx` in `out` with module 14's `to_onnx`; Nones without the onnx package."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return [None] * len(models)
    paths = []
    for name in models:
        path = out / f"digits_cnn_{name.replace(' + ', '_').lower()}.onnx"
        try:
            quantization.to_onnx(models[name], input_shape, path)
        except OSError as error:
            raise TitoError(f"cannot write {path}: {error.strerror or error}") from None
        paths.append(path)
    return paths


def save_sparsity_plot(path: Path, curve: list, dense_accuracy: float, dataset: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(6.5, 4), layout="constrained")
    sparsities = [100 * sparsity for sparsity, _, _ in curve]
    axes.plot(sparsities, [tuned for _, _, tuned in curve], marker="o", label="pruned, then fine-tuned")
    axes.plot(sparsities, [before for _, before, _ in curve], marker="o", label="pruned, not fine-tuned")
    axes.axhline(dense_accuracy, color="gray", linestyle="--", label=f"dense {dense_accuracy:.1%}")
    axes.set_xlabel("weights pruned (global magnitude), %")
    axes.set_ylabel("test accuracy")
    axes.set_title(f"{dataset} CNN: sparsity against accuracy")
    axes.grid(alpha=0.3)
    axes.legend()
    return write_figure(figure, path)
