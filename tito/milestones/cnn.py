"""`tito milestone cnn`: a small convolutional network (module 09 too) trained on the same digits."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import TitoError
from .common import MLP_LESSONS, DigitsOptions, DigitsResult, Milestone, run

CNN_LESSONS = MLP_LESSONS + (("convolutions", "09_convolutions"),)
CNN_OUT = Path("runs") / "cnn"
CNN_PLOT_NAME = "cnn_training.png"
CNN_CHECKPOINT_NAME = "digits_cnn.npz"


@dataclass(frozen=True)
class CnnOptions(DigitsOptions):
    """Two 3x3 convolutions (`channels`, then twice as many), each followed by ReLU and 2x2 max pooling,
    then one Linear layer; `hidden` > 0 puts a hidden Linear layer of that size before it."""

    epochs: int = 20
    lr: float = 2e-3
    batch_size: int = 32
    hidden: int = 0
    channels: int = 16

    min_hidden: ClassVar[int] = 0

    def check(self) -> None:
        super().check()
        if self.channels < 1:
            raise TitoError(f"--channels must be at least 1, got {self.channels}", exit_code=2)


def build_cnn(modules: dict, image_shape: tuple, channels: int, hidden: int, classes: int, seed: int):
    """conv 3x3 (channels) -> ReLU -> max pool 2 -> conv 3x3 (2 * channels) -> ReLU -> max pool 2 -> Linear,
    with a hidden Linear layer and ReLU before the last one if `hidden` > 0. Padding 1 keeps each conv's size."""
    layers, activations, convolutions = modules["layers"], modules["activations"], modules["convolutions"]
    rng = np.random.default_rng(seed)
    height, width = (size // 2 // 2 for size in image_shape)
    features = 2 * channels * height * width
    if features == 0:
        raise TitoError(f"images of {image_shape[0]}x{image_shape[1]} are too small for two 2x2 poolings")
    features_layers = [
        convolutions.Conv2d(1, channels, 3, padding=1, rng=rng), activations.ReLU(), convolutions.MaxPool2d(2),
        convolutions.Conv2d(channels, 2 * channels, 3, padding=1, rng=rng), activations.ReLU(), convolutions.MaxPool2d(2),
        layers.Flatten()]
    head = ([layers.Linear(features, hidden, rng=rng), activations.ReLU(), layers.Linear(hidden, classes, rng=rng)]
            if hidden else [layers.Linear(features, classes, rng=rng)])
    return layers.Sequential(*features_layers, *head)


CNN = Milestone(CNN_LESSONS, CNN_OUT, CNN_PLOT_NAME, CNN_CHECKPOINT_NAME,
                lambda modules, shape, classes, o: build_cnn(modules, shape, o.channels, o.hidden, classes, o.seed),
                lambda o, shape, classes: (f"CNN conv{o.channels}-pool-conv{2 * o.channels}-pool-"
                                           + (f"{o.hidden}-" if o.hidden else "") + f"{classes}"), images=True)


def run_cnn(options: CnnOptions, progress=None) -> DigitsResult:
    """The same for the convolutional network of module 09."""
    return run(CNN, options, progress)
