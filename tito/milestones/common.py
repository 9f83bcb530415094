"""Milestones: whole-stack runs that prove the student's modules work together on real data; what they share.

`digits` (digits.py) and `cnn` (cnn.py) train on handwritten digits through `run`, `gpt` (gpt.py) on text; each
loads the student's modules (`tinytorch_modules`, after `_require_finished` in a workspace), shows progress and
leaves a plot and a checkpoint. The work is in plain functions; `tito/commands/milestone.py` only parses options.
"""
from __future__ import annotations

import contextlib
import importlib
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from ..course import find_root, is_workspace, load_course
from ..errors import TitoError
from ..stubs import package_stubs

# The held-out 20% is the same for every --seed, so runs with different seeds are compared on the same images.
SPLIT_SEED = 0
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class DigitsOptions:
    epochs: int = 15
    lr: float = 1e-3
    batch_size: int = 64
    seed: int = 0
    hidden: int = 512
    data: Path | None = None  # an IDX images file or a folder of MNIST IDX files; None: scikit-learn's digits
    out: Path | None = None   # where the plot and checkpoint go; None: runs/digits in the course (or here)
    min_hidden: ClassVar[int] = 1

    def check(self) -> None:
        for name, value, least in [("--epochs", self.epochs, 1), ("--batch-size", self.batch_size, 1),
                                   ("--hidden", self.hidden, self.min_hidden)]:
            if value < least:
                raise TitoError(f"{name} must be at least {least}, got {value}", exit_code=2)
        if not self.lr > 0:
            raise TitoError(f"--lr must be positive, got {self.lr}", exit_code=2)
        if self.seed < 0:
            raise TitoError(f"--seed must be 0 or more, got {self.seed}", exit_code=2)


@dataclass
class DigitsResult:
    dataset: str
    train_size: int
    test_size: int
    history: object  # tinytorch.core.training.History
    test_loss: float
    test_accuracy: float
    misclassified: int
    plot: Path
    checkpoint: Path
    train_seconds: float
    replaced: bool  # an earlier run's plot or checkpoint was overwritten


MLP_LESSONS = (("tensor", "01_tensor"), ("activations", "02_activations"), ("layers", "03_layers"),
               ("losses", "04_losses"), ("autograd", "05_autograd"), ("operations", "06_operations"),
               ("optimizers", "07_optimizers"), ("training", "08_training"))


def tinytorch_modules(root: Path | None, lessons: tuple = MLP_LESSONS) -> dict:
    """The course's own tinytorch modules (the package in `root` first on the path), or a TitoError saying what to export."""
    if root is not None and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    modules = {}
    for name, lesson in lessons:
        try:
            modules[name] = importlib.import_module(f"tinytorch.core.{name}")
        except ImportError as error:
            if error.name != f"tinytorch.core.{name}":
                raise TitoError(f"tinytorch.core.{name} cannot be imported: {error}") from None
            raise TitoError(f"tinytorch.core.{name} is not exported yet: run `tito module complete {lesson}` first") from None
    return modules


def load_dataset(training, data: Path | None):
    """scikit-learn's digits, or images and labels from IDX files; user mistakes become one-line TitoErrors."""
    try:
        if data is not None:
            return training.load_idx_dataset(data, TEST_FRACTION, SPLIT_SEED)
        return training.load_digits_dataset(TEST_FRACTION, SPLIT_SEED)
    except FileNotFoundError as error:
        raise TitoError(str(error)) from None
    except training.IDXError as error:
        raise TitoError(f"bad IDX data: {error}") from None
    except ImportError as error:
        raise TitoError(str(error)) from None


@dataclass(frozen=True)
class Milestone:
    """What differs between the milestones; `run` does the rest the same way for each."""

    lessons: tuple  # (tinytorch.core module, lesson) pairs the milestone needs
    out: Path
    plot_name: str
    checkpoint_name: str
    build: Callable  # (modules, image_shape, classes, options) -> model
    describe: Callable  # (options, image_shape, classes) -> one line about the model
    images: bool  # True: inputs (N, 1, H, W); False: flat vectors (N, H * W)


def predictions(modules: dict, model, loader) -> np.ndarray:
    """The predicted class of every example of `loader`, in order, in eval mode and without building a graph."""
    model.eval()
    with modules["autograd"].no_grad():
        found = [modules["training"].values(model(inputs)).argmax(axis=1) for inputs, _ in loader]
    model.train()
    return np.concatenate(found)


def run(milestone: Milestone, options: DigitsOptions, progress=None) -> DigitsResult:
    options.check()
    root = _course_root()
    _require_finished(root, [lesson for _, lesson in milestone.lessons])
    modules = tinytorch_modules(root, milestone.lessons)
    training = modules["training"]
    dataset = load_dataset(training, options.data)
    out = Path(options.out) if options.out is not None else (root or Path.cwd()) / milestone.out
    _make_folder(out)

    standardize = training.Standardizer(dataset.x_train)
    input_shape = (1, *dataset.image_shape) if milestone.images else (-1,)
    x_train, x_test = (standardize(x).reshape(len(x), *input_shape) for x in (dataset.x_train, dataset.x_test))
    train_loader = training.DataLoader(x_train, dataset.y_train, batch_size=options.batch_size, shuffle=True, seed=options.seed)
    test_loader = training.DataLoader(x_test, dataset.y_test, batch_size=1024)
    model = milestone.build(modules, dataset.image_shape, dataset.num_classes, options)
    optimizer = modules["optimizers"].Adam(model.parameters(), lr=options.lr)
    trainer = training.Trainer(model, optimizer, modules["losses"].CrossEntropyLoss())
    description = (f"{milestone.describe(options, dataset.image_shape, dataset.num_classes)}, Adam lr {options.lr:g}, "
                   f"batch {options.batch_size}, seed {options.seed}: {len(x_train)} {dataset.name} images for "
                   f"training, {len(x_test)} held out")

    with _one_blas_thread():
        start = time.perf_counter()
        history = _fit(trainer, train_loader, test_loader, options.epochs, progress, description)
        train_seconds = time.perf_counter() - start
        test_loss, test_accuracy = trainer.evaluate(test_loader)
        predicted = predictions(modules, model, test_loader)

    wrong = np.flatnonzero(predicted != dataset.y_test)
    architecture = {"hidden": options.hidden, **({"channels": options.channels} if milestone.images else {})}
    replaced = (out / milestone.checkpoint_name).exists() or (out / milestone.plot_name).exists()
    try:
        checkpoint = training.save_checkpoint(out / milestone.checkpoint_name, model, optimizer, extra={
            "mean": standardize.mean, "scale": standardize.scale, **architecture,
            "image_shape": list(dataset.image_shape), "epochs": history.epochs, "seed": options.seed,
            "dataset": dataset.name, "test_accuracy": test_accuracy})
        _ordinary_permissions(checkpoint)
    except OSError as error:
        raise TitoError(f"cannot write the checkpoint {out / milestone.checkpoint_name}: {error.strerror or error}") from None
    plot = save_plot(out / milestone.plot_name, history, dataset.x_test[wrong], dataset.y_test[wrong], predicted[wrong],
                     dataset.image_shape, f"{dataset.name}: test accuracy {test_accuracy:.2%}")
    return DigitsResult(dataset.name, len(dataset.y_train), len(dataset.y_test), history, test_loss, test_accuracy,
                        len(wrong), plot, checkpoint, train_seconds, replaced)


def _ordinary_permissions(path: Path) -> None:
    """The checkpoint is written atomically through a private temporary file (mode 0600); give it the mode any
    new file gets (0644 with the usual umask), so that others can read it as they read the plot."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _fit(trainer, train_loader, test_loader, epochs: int, progress, description: str):
    if progress is None:
        return trainer.fit(train_loader, test_loader, epochs=epochs)
    progress.start(epochs, len(train_loader), description)
    try:
        return trainer.fit(train_loader, test_loader, epochs=epochs, on_batch=progress.batch,
                           on_epoch_end=progress.epoch_end)
    finally:
        progress.stop()


@contextlib.contextmanager
def _one_blas_thread():
    """NumPy's BLAS on one thread: for matrices this small, threads cost more than they save, and on a
    shared 2-core machine a second BLAS thread waiting for a busy core made training five times slower."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # comes with scikit-learn; without it, run as NumPy is configured
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def save_plot(path: Path, history, images: np.ndarray, labels: np.ndarray, predicted: np.ndarray,
              image_shape: tuple, title: str, max_images: int = 24) -> Path:
    """Loss and accuracy per epoch, and a grid of misclassified images (true → predicted), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure = plt.figure(figsize=(14, 4.2), layout="constrained")
    left, middle, right = figure.subfigures(1, 3, width_ratios=[1, 1, 1.2])
    epochs = np.arange(1, history.epochs + 1)
    for subfigure, metric, label in [(left, "loss", "cross-entropy loss"), (middle, "accuracy", "accuracy")]:
        axes = subfigure.subplots()
        axes.plot(epochs, getattr(history, f"train_{metric}"), marker="o", label="training")
        if getattr(history, f"val_{metric}"):
            axes.plot(epochs, getattr(history, f"val_{metric}"), marker="o", label="test (held out)")
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend()
    shown = min(len(images), max_images)
    right.suptitle(f"misclassified: {len(images)} (true → predicted)" + (f", first {shown}" if shown < len(images) else ""))
    columns = 6
    grid = right.subplots(max(1, math.ceil(shown / columns)), columns, squeeze=False)
    for index, axes in enumerate(grid.flat):
        axes.axis("off")
        if index < shown:
            axes.imshow(images[index].reshape(image_shape), cmap="gray_r")
            axes.set_title(f"{labels[index]} → {predicted[index]}", fontsize=9)
    figure.suptitle(title)
    return write_figure(figure, path)


def write_figure(figure, path: Path) -> Path:
    """Save a milestone's figure (and close it, written or not); a folder that cannot take it is one line."""
    import matplotlib.pyplot as plt

    try:
        figure.savefig(path, dpi=100)
    except OSError as error:
        raise TitoError(f"cannot write the plot {path}: {error.strerror or error}") from None
    finally:
        plt.close(figure)
    return path

class EpochProgress:
    """A rich progress bar per epoch, advancing per batch, showing the epoch's loss and accuracy when done."""

    def __init__(self, console, milestone: str = "digits"):
        self.console, self.milestone = console, milestone

    def start(self, epochs: int, batches: int, description: str) -> None:
        from rich.markup import escape
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console.print(f"[bold]Milestone {self.milestone}[/]: {escape(description)}")
        self.console.print("[dim]each epoch: train loss and accuracy, then the held-out test loss and accuracy[/]")
        self.epochs, self.batches = epochs, batches
        # Fixed, short columns: an epoch's line fits an 80-column terminal whole (a wide bar would push the
        # metrics out, and rich would cut them).
        self.progress = Progress(TextColumn("epoch {task.fields[epoch]:>3}/{task.fields[epochs]}"),
                                 BarColumn(bar_width=10), MofNCompleteColumn(), TextColumn("{task.fields[metrics]}"),
                                 TimeElapsedColumn(), console=self.console)
        self.progress.start()
        self.task = self._add(1)

    def _add(self, epoch: int):
        return self.progress.add_task("", total=self.batches, epoch=epoch, epochs=self.epochs, metrics="")

    def batch(self, loss: float) -> None:
        self.progress.update(self.task, advance=1, metrics=f"loss {loss:.4f}")

    def epoch_end(self, epoch: int, history) -> None:
        metrics = f"train {history.train_loss[-1]:.4f} {history.train_accuracy[-1]:6.2%}"
        if history.val_accuracy:
            metrics += f"  test {history.val_loss[-1]:.4f} {history.val_accuracy[-1]:6.2%}"
        self.progress.update(self.task, completed=self.batches, metrics=metrics)
        if epoch < self.epochs:
            self.task = self._add(epoch + 1)

    def stop(self) -> None:
        self.progress.stop()


def _require_finished(root: Path | None, lessons: list[str]) -> None:
    """In a student workspace, the milestone runs on the student's modules: each of `lessons`, and every module
    before them, must be complete first."""
    if root is None or not is_workspace(course := load_course(root)):
        return
    names = [module.name for module in course.modules]
    last = max((names.index(lesson) for lesson in lessons if lesson in names), default=len(names) - 1)
    for module in course.modules[:last + 1]:
        stubs = package_stubs(course, module)
        if stubs is None or stubs:
            left = "not exported yet" if stubs is None else f"{len(stubs)} part{'s' * (len(stubs) != 1)} left, first: " \
                                                            f"{stubs[0].describe()}"
            raise TitoError(f"the milestone runs on your own modules, and {module.name} is not complete ({left}): "
                            f"finish it, then run `tito module complete {module.name}`", 2)


def _course_root() -> Path | None:
    try:
        return find_root()
    except TitoError:
        return None


def _make_folder(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TitoError(f"cannot create the output folder {out}: {error.strerror}") from None

