"""`tito milestone digits`: an MLP built only from the student's tinytorch (Tensor, autograd, layers, losses,
optimizers, training), trained on handwritten digits."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import MLP_LESSONS, DigitsOptions, DigitsResult, Milestone, run

DEFAULT_OUT = Path("runs") / "digits"
PLOT_NAME = "digits_training.png"
CHECKPOINT_NAME = "digits_mlp.npz"


def build_mlp(modules: dict, inputs: int, hidden: int, classes: int, seed: int):
    layers, activations = modules["layers"], modules["activations"]
    rng = np.random.default_rng(seed)
    return layers.Sequential(layers.Linear(inputs, hidden, rng=rng), activations.ReLU(),
                             layers.Linear(hidden, classes, rng=rng))


MLP = Milestone(MLP_LESSONS, DEFAULT_OUT, PLOT_NAME, CHECKPOINT_NAME,
                lambda modules, shape, classes, o: build_mlp(modules, shape[0] * shape[1], o.hidden, classes, o.seed),
                lambda o, shape, classes: f"{shape[0] * shape[1]}-{o.hidden}-{classes} MLP", images=False)


def run_digits(options: DigitsOptions, progress=None) -> DigitsResult:
    """Train the MLP, evaluate, plot and checkpoint. `progress` is an optional `EpochProgress`-like object."""
    return run(MLP, options, progress)
