# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Training: data in, a trained network out
#
# Modules 01 to 07 built every part of a neural network: tensors, activations, layers, losses,
# automatic differentiation and optimizers. This module puts them to work on real data: scanned
# handwritten digits. It builds what sits around the network in every training script:
#
# ```
# data = load_digits_dataset()                       # §1 real images, a held-out test split
# for epoch in range(epochs):                        # §5 Trainer.fit
#     for inputs, targets in DataLoader(...):        # §3 shuffled mini-batches
#         optimizer.zero_grad()
#         loss = loss_fn(model(inputs), targets)     #    forward
#         loss.backward()                            #    backward (module 05)
#         optimizer.step()                           #    update (module 07)
#     evaluate(model, test_loader, loss_fn)          # §4 no graph, eval mode
#     save_checkpoint("model.npz", model, optimizer) # §6 survives a crash mid-save
# ```
#
# and a reader for IDX files (§2), the format MNIST is distributed in, for anybody who has those files.
#
# **Objectives.** By the end of this module you can:
#
# - split data into stratified training and test sets and standardise it with training statistics only;
# - read MNIST's IDX files and refuse malformed ones with a message;
# - batch and shuffle data, train with a loop of zero_grad, forward, backward, step, and evaluate without a graph;
# - stop early, and write checkpoints that survive a crash.
#
# | You write here | It becomes | Used by |
# |---|---|---|
# | this notebook, `training.ipynb` | `tinytorch.core.training` | `tito milestone digits` |

# %%
#| default_exp core.training

# %%
#| export
from __future__ import annotations

import gzip
import json
import math
import os
import struct
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Module
from tinytorch.core.tensor import Tensor

# %%
# The rest of the stack, for the examples and tests below (the exported code does not need it).
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import Variable
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import SGD, Adam

# %% [markdown]
# ## 1. Real data, and a test set the network never sees
#
# scikit-learn ships a small scanned-digits data set with its wheel, so it needs no network: 1797
# images of 8 x 8 pixels, each pixel a darkness from 0 to 16, each image labelled 0 to 9. We scale
# the pixels to [0, 1] and flatten each image into a vector of 64 numbers.
#
# **A held-out test set.** Accuracy on the images a network was trained on says little: a large
# enough network can memorise them. So before training we put 20% of the images aside and only ever
# *evaluate* on them. The split is **stratified**: each digit keeps its share (20% of the zeros,
# 20% of the ones, ...), so a small test set does not by chance hold too few of one digit. A seed
# makes the split the same on every run, so accuracies are comparable.
#
# **Standardising.** Gradient descent works best when every input feature has a similar scale. We
# shift each pixel to mean 0 and divide by its standard deviation, both measured on the *training*
# images only (the test set must not influence anything learned, preprocessing included). Pixels on
# the border are almost always 0 and have a standard deviation near 0: dividing by it would turn
# a speck of noise into a huge input, so we divide by $\sigma + 0.1$ instead.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "training-data", "locked": false, "solution": true}
#| export
@dataclass
class ImageDataset:
    """Flattened images with integer labels, split into training and test sets."""

    x_train: np.ndarray  # (N, height * width) float32
    y_train: np.ndarray  # (N,) int64
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, int]
    name: str

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def train_test_split(x: np.ndarray, y: np.ndarray, test_fraction: float = 0.2, seed: int = 0):
    """A stratified split: a `test_fraction` share of each label's examples goes to the test set.

    Returns (x_train, y_train, x_test, y_test); each part keeps the original order of its examples.

    >>> x_train, y_train, x_test, y_test = train_test_split(np.arange(10), np.array([0] * 5 + [1] * 5), 0.2)
    >>> sorted(y_test.tolist())
    [0, 1]
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)} labels")
    ### BEGIN SOLUTION
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        chosen = rng.choice(members, size=int(round(test_fraction * len(members))), replace=False)
        is_test[chosen] = True
    return x[~is_test], y[~is_test], x[is_test], y[is_test]
    ### END SOLUTION


class Standardizer:
    """Per-feature (x - mean) / (std + eps), with mean and std measured on the training data only."""

    def __init__(self, train: np.ndarray, eps: float = 0.1):
        ### BEGIN SOLUTION
        self.mean = train.mean(axis=0).astype(np.float32)
        self.scale = (train.std(axis=0) + eps).astype(np.float32)
        ### END SOLUTION

    def __call__(self, x: np.ndarray) -> np.ndarray:
        ### BEGIN SOLUTION
        return ((x - self.mean) / self.scale).astype(np.float32)
        ### END SOLUTION


def load_digits_dataset(test_fraction: float = 0.2, seed: int = 0) -> ImageDataset:
    """scikit-learn's 8 x 8 handwritten digits (no download), pixels in [0, 1], split by `train_test_split`."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("the digits data set comes with scikit-learn: `pip install scikit-learn`") from None
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    return ImageDataset(*train_test_split(x, y, test_fraction, seed), image_shape=(8, 8), name="digits")

# %% [markdown]
# ### Test: the split and standardisation

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-training-data", "locked": true, "points": 3, "solution": false}
def test_unit_data():
    data = load_digits_dataset()
    sizes = (len(data.x_train), len(data.x_test))
    assert sum(sizes) == 1797 and abs(sizes[1] / 1797 - 0.2) < 0.01, f"expected about 1438 + 359 images, got {sizes}"
    assert data.x_train.shape[1] == 64 and data.x_train.dtype == np.float32, f"expected (N, 64) float32, got {data.x_train.shape}, {data.x_train.dtype}"
    assert 0 <= data.x_train.min() and data.x_train.max() <= 1, "pixels should be scaled into [0, 1]"
    for label in range(10):
        share = np.mean(data.y_test == label) / np.mean(np.concatenate([data.y_train, data.y_test]) == label)
        assert abs(share - 1) < 0.1, f"digit {label} should keep its share in the test set (stratified), ratio {share:.2f}"
    again = load_digits_dataset()
    assert np.array_equal(again.y_test, data.y_test), "the same seed should give the same split"
    assert not np.array_equal(load_digits_dataset(seed=1).y_test, data.y_test), "another seed should give another split"
    x, y = np.arange(100), np.repeat(np.arange(4), 25)
    x_train, y_train, x_test, y_test = train_test_split(x, y, 0.2)
    assert sorted(np.concatenate([x_train, x_test]).tolist()) == list(range(100)), "every example should land in exactly one part"
    assert np.bincount(y_test).tolist() == [5, 5, 5, 5], f"each label should give 20% to the test set, got {np.bincount(y_test)}"
    assert np.array_equal(y[x_test], y_test), "examples and labels must stay paired"

    standardize = Standardizer(data.x_train)
    scaled = standardize(data.x_train)
    spread = data.x_train.std(axis=0)
    assert np.allclose(scaled.std(axis=0), spread / (spread + 0.1), atol=1e-3), "each feature should be divided by its std + 0.1"
    assert np.allclose(scaled.mean(axis=0), 0, atol=1e-4), "standardised training features should have mean 0"
    assert np.abs(scaled).max() < 20, "eps keeps near-constant pixels from exploding"
    assert scaled.dtype == np.float32 and standardize(data.x_test).shape == data.x_test.shape, "float32, same shape"
    expected = (data.x_test - data.x_train.mean(axis=0)) / (spread + 0.1)
    assert np.allclose(standardize(data.x_test), expected, atol=1e-4), \
        "new data should be standardised with the training data's mean and std + 0.1, never with its own statistics"

test_unit_data()
print("test_unit_data: passed")

# %% [markdown]
# ## 2. The IDX format: how MNIST is stored
#
# MNIST, the classic 28 x 28 handwritten digits (60,000 training and 10,000 test images), is
# distributed as four files in the **IDX** format: a tiny header that says what the array is, then
# the raw numbers.
#
# ```
# offset   bytes   meaning
# 0        2       0x00 0x00
# 2        1       type of each value: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
#                  0x0D float32, 0x0E float64
# 3        1       number of dimensions, d
# 4        4 * d   the size of each dimension, a big-endian unsigned 32-bit integer
# 4 + 4d   ...     the values, row-major, big-endian
# ```
#
# `train-images-idx3-ubyte` starts `00 00 08 03 | 00 00 EA 60 | 00 00 00 1C | 00 00 00 1C`: uint8,
# three dimensions, 60000 x 28 x 28. Its labels are in `train-labels-idx1-ubyte`: uint8, one dimension.
#
# **Big-endian** means the most significant byte comes first. Our processors are little-endian, so
# NumPy must be told: dtype `'>i4'` reads big-endian int32, and `.astype('=i4')` converts to the
# machine's order. `np.frombuffer` then reads the values without a loop.
#
# A reader of files from outside must distrust them. A file may be missing, cut off by an aborted
# download, or something else altogether; each of these should fail *here*, with a message that
# names the file and the problem, not later as a baffling shape error. The check that catches most:
# the header promises a number of bytes (the product of the sizes times the item size), and the
# file must hold exactly that many. Files ending in `.gz` are read through `gzip`, as MNIST is
# often stored compressed.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "training-idx", "locked": false, "solution": true}
#| export
IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class IDXError(ValueError):
    """A file that is not a well-formed IDX file."""


def read_idx(path) -> np.ndarray:
    """The array stored in an IDX file (gzip-compressed if its name ends in .gz), in native byte order.

    A missing file raises FileNotFoundError; a malformed one raises IDXError naming the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no IDX file at {path}" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as error:
        raise IDXError(f"{path}: cannot decompress: {error}") from None
    ### BEGIN SOLUTION
    if len(raw) < 4:
        raise IDXError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    if raw[:2] != b"\x00\x00":
        raise IDXError(f"{path} is not an IDX file: it should start with two zero bytes, not {raw[:4].hex(' ')}")
    type_code, ndim = raw[2], raw[3]
    if type_code not in IDX_TYPES:
        raise IDXError(f"{path}: unknown IDX type code 0x{type_code:02x} (known: "
                       + ", ".join(f"0x{code:02x}" for code in IDX_TYPES) + ")")
    if ndim == 0:
        raise IDXError(f"{path}: the header says the array has 0 dimensions")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise IDXError(f"{path}: the header promises {ndim} dimension sizes but the file ends after {len(raw)} bytes")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    dtype = IDX_TYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize
    found = len(raw) - header_size
    if found != expected:
        raise IDXError(f"{path}: the header says {dtype.name} values of shape {shape}, {expected} bytes, "
                       f"but {found} bytes follow it (truncated or not an IDX file?)")
    values = np.frombuffer(raw, dtype=dtype, count=math.prod(shape), offset=header_size)
    return values.astype(dtype.newbyteorder("=")).reshape(shape)
    ### END SOLUTION


def write_idx(path, array: np.ndarray) -> None:
    """Store `array` as an IDX file (the inverse of `read_idx`): handy for tests and for your own data."""
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"IDX cannot store {array.dtype}: use one of " + ", ".join(str(d) for d in codes))
    header = bytes([0, 0, codes[native], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body = array.astype(IDX_TYPES[codes[native]]).tobytes()
    data = header + body
    Path(path).write_bytes(gzip.compress(data) if Path(path).suffix == ".gz" else data)

# %% [markdown]
# ### Test: reading IDX files
# The test writes the bytes of small IDX files by hand, following the table above, so that it checks
# the reader against the format rather than against `write_idx`.

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-training-idx", "locked": true, "points": 3, "solution": false}
def test_unit_idx():
    folder = Path(tempfile.mkdtemp(prefix="idx-test-"))
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (folder / "images").write_bytes(bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2, 3, 4) + images.tobytes())
    try:
        read = read_idx(folder / "images")
    except IDXError as error:
        raise AssertionError(f"a valid IDX file was refused; are the dimension sizes read as big-endian unsigned "
                             f"32-bit integers? {error}") from None
    assert read.shape == (2, 3, 4) and read.dtype == np.uint8, f"expected (2, 3, 4) uint8, got {read.shape} {read.dtype}"
    assert np.array_equal(read, images), "the values should be read in row-major order"

    values = np.array([1, -2, 300000], dtype=np.int32)
    (folder / "ints").write_bytes(bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 3) + values.astype(">i4").tobytes())
    read = read_idx(folder / "ints")
    assert read.tolist() == [1, -2, 300000], f"int32 values are big-endian in the file; got {read.tolist()}"
    assert read.dtype == np.int32 and read.dtype.byteorder in "=|", f"expected native int32, got {read.dtype.str}"

    for dtype in ["u1", "i1", "i2", "i4", "f4", "f8"]:
        array = (np.arange(6).reshape(2, 3) - 2).astype(dtype)
        write_idx(folder / f"round-{dtype}.gz", array)
        assert np.array_equal(read_idx(folder / f"round-{dtype}.gz"), array), f"a gzipped {dtype} round trip failed"

    broken = {
        "short": b"\x00\x00",
        "magic": b"PK\x03\x04" + bytes(20),
        "type": bytes([0, 0, 0x07, 1]) + struct.pack(">I", 1) + b"\x00",
        "header": bytes([0, 0, 0x08, 3]) + struct.pack(">I", 2),
        "dimensions": bytes([0, 0, 0x08, 0]) + b"\x01",
        "truncated": bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2, 3, 4) + images.tobytes()[:-5],
        "longer": bytes([0, 0, 0x08, 1]) + struct.pack(">I", 2) + b"\x01\x02\x03",
    }
    for name, data in broken.items():
        (folder / name).write_bytes(data)
        try:
            read_idx(folder / name)
        except IDXError as error:
            assert str(folder / name) in str(error), f"the error should name the file: {error}"
        except Exception as error:
            raise AssertionError(f"a file with a bad {name} should raise IDXError, got {type(error).__name__}: {error}") from None
        else:
            raise AssertionError(f"a file with a bad {name} should raise IDXError")
    try:
        read_idx(folder / "missing")
    except FileNotFoundError as error:
        assert "missing" in str(error), f"the error should name the missing file: {error}"
    else:
        raise AssertionError("a missing file should raise FileNotFoundError")

test_unit_idx()
print("test_unit_idx: passed")

# %% [markdown]
# MNIST comes as pairs of files, images and labels, for a training and a test set. `load_idx_dataset`
# takes either a folder holding such pairs, or one images file (its labels file is found by the
# standard naming, `images` -> `labels`, `idx3` -> `idx1`). With only one pair, 20% of it is held out
# as above. It checks what only a pair can show: one label per image.

# %%
#| export
def _pair(images_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images as (N, H, W) uint8, labels as (N,) int64) from an images file and its labels file."""
    images = read_idx(images_path)
    if images.ndim != 3 or len(images) == 0:
        raise IDXError(f"{images_path}: images should have 3 dimensions (count, height, width) and at least one "
                       f"image, got shape {images.shape}")
    labels_path = images_path.with_name(images_path.name.replace("images", "labels").replace("idx3", "idx1"))
    if not labels_path.is_file():  # the labels may be compressed when the images are not, or the other way round
        other = labels_path.with_name(labels_path.name[:-3] if labels_path.suffix == ".gz" else labels_path.name + ".gz")
        labels_path = other if other.is_file() else labels_path
    if labels_path == images_path or not labels_path.is_file():
        raise FileNotFoundError(f"no labels file for {images_path}: expected {labels_path}")
    labels = read_idx(labels_path)
    if labels.ndim != 1 or len(labels) != len(images) or labels.dtype.kind not in "iu":
        raise IDXError(f"{labels_path}: expected {len(images)} integer labels for {images_path.name}, "
                       f"got {labels.dtype} of shape {labels.shape}")
    return images, labels.astype(np.int64)


def _flatten_images(images: np.ndarray) -> np.ndarray:
    scale = 255.0 if images.dtype == np.uint8 else max(float(np.abs(images).max()), 1.0)
    return (images.reshape(len(images), -1) / scale).astype(np.float32)


def load_idx_dataset(path, test_fraction: float = 0.2, seed: int = 0) -> ImageDataset:
    """Images and labels from IDX files: a folder with MNIST's train-/t10k- pairs, or one images file."""
    path = Path(path)
    if path.is_dir():
        found = {}
        for prefix in ("train", "t10k"):
            candidates = sorted(path.glob(f"{prefix}-images*idx3*"))
            if candidates:
                found[prefix] = _pair(candidates[0])
        if not found:
            raise FileNotFoundError(f"no IDX images file (train-images-idx3-ubyte, t10k-images-idx3-ubyte) in {path}")
    elif path.is_file():
        found = {"train": _pair(path)}
    else:
        raise FileNotFoundError(f"no IDX file or folder at {path}")
    if len(found) == 2:
        (train_images, y_train), (test_images, y_test) = found["train"], found["t10k"]
        if train_images.shape[1:] != test_images.shape[1:]:
            raise IDXError(f"{path}: training images are {train_images.shape[1:]} but test images {test_images.shape[1:]}")
        x_train, x_test = _flatten_images(train_images), _flatten_images(test_images)
    else:
        (images, labels), = found.values()
        x_train, y_train, x_test, y_test = train_test_split(_flatten_images(images), labels, test_fraction, seed)
        train_images = images
    return ImageDataset(x_train, y_train, x_test, y_test, image_shape=tuple(train_images.shape[1:]), name=path.name)

# %% [markdown]
# ## 3. `DataLoader`: mini-batches, shuffled
#
# One optimizer step per example is slow (the fixed cost of every operation is paid per example);
# one step per pass over the whole data set is slow to learn (one update per epoch). Training uses
# **mini-batches** of, say, 64 examples: each step averages the gradient over the batch.
#
# ```
# examples   0 1 2 3 4 5 6 7 8 9          batch_size = 4
# shuffled   7 2 9 0 | 4 8 1 5 | 3 6      -> 3 batches; the last one is partial (2 examples)
# ```
#
# - **Shuffling.** If the data is sorted (all zeros, then all ones...), every batch is lopsided and
#   the network chases whatever digit it saw last. So each epoch visits the examples in a new random
#   order. The order comes from a NumPy `Generator` made once from `seed`: epoch 2 differs from
#   epoch 1, yet a loader built again with the same seed repeats the same sequence of epochs, so a
#   run can be reproduced exactly.
# - **The last batch.** 1438 examples in batches of 64 leave 30 over. By default they form a smaller
#   last batch, so every example is used every epoch; `drop_last=True` skips them (useful when a
#   layer needs equal batch sizes).
# - **Fancy indexing.** `x[order[start:stop]]` gathers a batch in one NumPy call: no Python loop
#   over examples.
#
# It yields `(inputs, targets)`: inputs as a `Tensor` (float32), targets as an int64 array of class
# indices, which is what `CrossEntropyLoss` expects.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "training-dataloader", "locked": false, "solution": true}
#| export
class DataLoader:
    """Iterate over (inputs, targets) mini-batches, optionally in a new shuffled order each epoch.

    >>> loader = DataLoader(np.zeros((10, 2)), np.arange(10), batch_size=4)
    >>> len(loader), [len(targets) for _, targets in loader]
    (3, [4, 4, 2])
    """

    def __init__(self, inputs, targets, batch_size: int = 32, shuffle: bool = False, seed: int | None = None,
                 drop_last: bool = False):
        self.inputs = np.asarray(inputs.data if isinstance(inputs, Tensor) else inputs, dtype=np.float32)
        self.targets = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
        if len(self.inputs) != len(self.targets):
            raise ValueError(f"inputs has {len(self.inputs)} examples but targets has {len(self.targets)}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), shuffle, drop_last
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        """The number of batches in one epoch."""
        ### BEGIN SOLUTION
        full, rest = divmod(len(self.inputs), self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1
        ### END SOLUTION

    def __iter__(self):
        ### BEGIN SOLUTION
        count = len(self.inputs)
        order = self.rng.permutation(count) if self.shuffle else np.arange(count)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            batch = order[start:start + self.batch_size]
            yield Tensor(self.inputs[batch]), self.targets[batch]
        ### END SOLUTION

# %% [markdown]
# ### Test: DataLoader

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-training-dataloader", "locked": true, "points": 3, "solution": false}
def test_unit_dataloader():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10)
    loader = DataLoader(x, y, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [len(t) for _, t in batches] == [4, 4, 2], \
        f"10 examples in batches of 4 should give sizes [4, 4, 2], got {[len(t) for _, t in batches]}"
    assert isinstance(batches[0][0], Tensor) and batches[0][0].dtype == np.float32, "inputs should be float32 Tensors"
    assert np.concatenate([t for _, t in batches]).tolist() == list(range(10)), "without shuffle, keep the order"
    assert all(np.array_equal(inputs.numpy()[:, 0] / 2, targets) for inputs, targets in batches), "inputs and targets must stay paired"

    dropped = DataLoader(x, y, batch_size=4, drop_last=True)
    assert len(dropped) == 2 and [len(t) for _, t in dropped] == [4, 4], "drop_last should skip the partial batch"
    assert len(DataLoader(x, y, batch_size=5)) == 2 and len(DataLoader(x, y, batch_size=64)) == 1, "len() counts batches"

    shuffled = DataLoader(x, y, batch_size=3, shuffle=True, seed=0)
    first = list(shuffled)
    assert all(np.array_equal(inputs.numpy()[:, 0] / 2, targets) for inputs, targets in first), "shuffling must keep pairs"
    epoch1 = np.concatenate([t for _, t in first])
    epoch2 = np.concatenate([t for _, t in shuffled])
    assert sorted(epoch1.tolist()) == list(range(10)), f"an epoch should visit every example once, got {epoch1}"
    assert not np.array_equal(epoch1, np.arange(10)), "shuffle=True should change the order"
    assert not np.array_equal(epoch1, epoch2), "each epoch should have a new order"
    same = DataLoader(x, y, batch_size=3, shuffle=True, seed=0)
    assert np.array_equal(np.concatenate([t for _, t in same]), epoch1), "the same seed should repeat the same order"
    for bad in [lambda: DataLoader(x, y[:5]), lambda: DataLoader(x, y, batch_size=0)]:
        try:
            bad()
        except ValueError:
            continue
        raise AssertionError("mismatched lengths or batch_size=0 should raise ValueError")

test_unit_dataloader()
print("test_unit_dataloader: passed")

# %% [markdown]
# ## 4. Evaluation: no graph, evaluation mode
#
# **Accuracy** is the share of examples whose largest output (logit) is at the right class:
# `argmax(logits, axis=1) == targets`.
#
# Measuring a model on the test set differs from training in two ways:
#
# 1. **No graph.** Module 05's Variables record every operation so that `backward()` can run. We
#    will not call `backward()` here, so that record is wasted time and memory: the activations of
#    every layer would be kept alive until the loss is dropped. Inside `with no_grad():` operations
#    build no graph.
# 2. **Evaluation mode.** `model.eval()` switches layers such as `Dropout` to their deterministic
#    behaviour. Afterwards the model is put back into the mode it was in, even when something fails.
#
# The mean loss over the data set weights each batch's mean loss by its size: a last partial batch of
# 2 examples must not count as much as a full one of 64.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "training-evaluate", "locked": false, "solution": true}
#| export
def values(x) -> np.ndarray:
    """The NumPy array behind a Variable, a Tensor or an array."""
    while not isinstance(x, np.ndarray):
        x = np.asarray(x) if isinstance(x, (int, float, list, np.generic)) else x.data
    return x


def accuracy(logits, targets) -> float:
    """The fraction of rows of `logits` whose largest entry is at the target class.

    >>> accuracy(Tensor([[0.1, 2.0], [3.0, 0.5]]), np.array([1, 1]))
    0.5
    """
    ### BEGIN SOLUTION
    return float(np.mean(values(logits).argmax(axis=1) == values(targets)))
    ### END SOLUTION


def evaluate(model: Module, loader, loss_fn) -> tuple[float, float]:
    """(mean loss, accuracy) of `model` over all batches of `loader`, in eval mode and without a graph."""
    was_training = model.training
    model.eval()
    try:
        ### BEGIN SOLUTION
        total_loss, correct, count = 0.0, 0, 0
        with no_grad():
            for inputs, targets in loader:
                logits = model(inputs)
                size = len(targets)
                total_loss += float(loss_fn(logits, targets).item()) * size
                correct += int((values(logits).argmax(axis=1) == values(targets)).sum())
                count += size
        ### END SOLUTION
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("cannot evaluate on an empty loader")
    return total_loss / count, correct / count

# %% [markdown]
# ### Test: accuracy and evaluate

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-training-evaluate", "locked": true, "points": 3, "solution": false}
def test_unit_evaluate():
    square = Tensor([[0.0, 5.0, 1.0], [3.0, 0.0, 0.0], [4.0, 1.0, 2.0]])  # rows' argmax 1, 0, 0; columns' 2, 0, 2
    assert accuracy(square, np.array([1, 0, 0])) == 1.0, "accuracy compares each row's argmax (axis=1) with its target"
    assert accuracy(Tensor([[0.1, 2.0], [3.0, 0.5], [0.0, 1.0]]), np.array([1, 0, 0])) == 2 / 3, "2 of 3 rows are right"
    assert accuracy(Variable(np.eye(4, dtype=np.float32)), np.arange(4)) == 1.0, "accuracy should accept a Variable"

    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 5)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    model = Sequential(Linear(5, 3, rng=rng))
    loss_fn = CrossEntropyLoss()
    loss, acc = evaluate(model, DataLoader(x, y, batch_size=16), loss_fn)
    full = model(Tensor(x))
    expected_loss, expected_acc = float(loss_fn(full, y).item()), accuracy(full, y)
    assert abs(loss - expected_loss) < 1e-5, f"batch losses must be weighted by batch size: expected {expected_loss:.6f}, got {loss:.6f}"
    assert abs(acc - expected_acc) < 1e-12, f"expected accuracy {expected_acc}, got {acc}"

    seen = {}

    class Spy(Module):
        def __init__(self):
            self.inner = Linear(5, 3, rng=rng)

        def forward(self, x):
            seen["training"] = self.training
            out = self.inner(x)
            seen["has_graph"] = bool(getattr(out, "requires_grad", False))
            return out

    spy = Spy()
    evaluate(spy, DataLoader(x, y, batch_size=64), loss_fn)
    assert seen["training"] is False, "evaluate should run the model in eval mode"
    assert seen["has_graph"] is False, "evaluate should run under no_grad: outputs must not require gradients"
    assert spy.training is True, "evaluate should put the model back in training mode afterwards"

test_unit_evaluate()
print("test_unit_evaluate: passed")

# %% [markdown]
# ## 5. The training loop: `Trainer`
#
# One **epoch** is one pass over the training data. For each batch:
#
# 1. `optimizer.zero_grad()`: gradients *accumulate* in `.grad`, so clear last step's;
# 2. forward: `logits = model(inputs)`, `loss = loss_fn(logits, targets)`;
# 3. `loss.backward()`: every parameter's `.grad` now holds $\partial \text{loss} / \partial p$;
# 4. `optimizer.step()`: move each parameter against its gradient.
#
# Along the way we add up the loss (weighted by batch size) and the correct predictions, giving the
# epoch's training loss and accuracy for free: they come from the forward passes we run anyway.
# These are measured while the weights change, so they lag slightly behind the model at the end of
# the epoch; that is the usual convention.
#
# After each epoch, `fit` evaluates on a validation loader if one is given and records everything in
# a `History`.
#
# **Early stopping.** Validation loss usually falls, flattens, then rises as the network starts to
# memorise the training set. With `patience=k`, `fit` stops after `k` epochs without an improvement
# of the monitored loss (the validation loss, or the training loss if there is no validation data)
# and puts back the weights of the best epoch.
#
# ```
# val loss   0.40  0.21  0.15  0.16  0.17  0.18     patience = 3
# epoch         1     2     3     4     5     6     best: 3; epochs 4, 5, 6 no better -> stop, restore 3
# ```
#
# `on_batch(loss)` and `on_epoch_end(epoch, history)` are optional callbacks: a progress bar hooks in
# there, without the loop knowing anything about displays.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "training-trainer", "locked": false, "solution": true}
#| export
@dataclass
class History:
    """Per-epoch metrics of a `Trainer.fit` run (lists indexed by epoch - 1)."""

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        return len(self.train_loss)


class Trainer:
    """Trains `model` with `optimizer` to minimise `loss_fn(model(inputs), targets)`.

    >>> trainer = Trainer(model, Adam(model.parameters()), CrossEntropyLoss())   # doctest: +SKIP
    >>> history = trainer.fit(train_loader, test_loader, epochs=10, patience=3)  # doctest: +SKIP
    """

    def __init__(self, model: Module, optimizer, loss_fn):
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn

    def train_epoch(self, loader, on_batch=None) -> tuple[float, float]:
        """One pass over `loader` in training mode, one optimizer step per batch: (mean loss, accuracy)."""
        self.model.train()
        ### BEGIN SOLUTION
        total_loss, correct, count = 0.0, 0, 0
        for inputs, targets in loader:
            self.optimizer.zero_grad()
            logits = self.model(inputs)
            loss = self.loss_fn(logits, targets)
            loss.backward()
            self.optimizer.step()
            batch_loss, size = float(loss.item()), len(targets)
            total_loss += batch_loss * size
            correct += int((values(logits).argmax(axis=1) == values(targets)).sum())
            count += size
            if on_batch is not None:
                on_batch(batch_loss)
        ### END SOLUTION
        if count == 0:
            raise ValueError("the training loader yielded no batches")
        return total_loss / count, correct / count

    def evaluate(self, loader) -> tuple[float, float]:
        return evaluate(self.model, loader, self.loss_fn)

    def fit(self, train_loader, val_loader=None, epochs: int = 10, patience: int | None = None,
            min_delta: float = 0.0, on_epoch_end=None, on_batch=None) -> History:
        """Train for up to `epochs` epochs; with `patience`, stop early and restore the best weights."""
        history = History()
        best_loss, best_state, epochs_without_gain = math.inf, None, 0
        for epoch in range(1, epochs + 1):
            ### BEGIN SOLUTION
            loss, acc = self.train_epoch(train_loader, on_batch)
            history.train_loss.append(loss)
            history.train_accuracy.append(acc)
            if val_loader is not None:
                val_loss, val_acc = self.evaluate(val_loader)
                history.val_loss.append(val_loss)
                history.val_accuracy.append(val_acc)
            monitored = history.val_loss[-1] if val_loader is not None else loss
            if monitored < best_loss - min_delta:
                best_loss, history.best_epoch, epochs_without_gain = monitored, epoch, 0
                if patience is not None:
                    best_state = self.model.state_dict()
            else:
                epochs_without_gain += 1
            if on_epoch_end is not None:
                on_epoch_end(epoch, history)
            if patience is not None and epochs_without_gain >= patience:
                history.stopped_early = True
                break
        if best_state is not None and history.best_epoch != history.epochs:
            self.model.load_state_dict(best_state)
            ### END SOLUTION
        return history

# %% [markdown]
# ### Test: training learns the digits, and early stopping stops
# A small network trained for a few epochs on the digits must beat 90% test accuracy. The training
# loss must fall, and every epoch must be recorded.

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-training-trainer", "locked": true, "points": 4, "solution": false}
def test_unit_trainer():
    data = load_digits_dataset()
    standardize = Standardizer(data.x_train)
    inputs, labels = standardize(data.x_train[:64]), data.y_train[:64]

    # With lr=0 the weights stay put, so after an epoch of two batches each .grad must be the gradient of the
    # last batch alone: backward() adds to .grad, so the optimizer's zero_grad() must come before it.
    frozen = Sequential(Linear(64, 10, rng=np.random.default_rng(3)))
    Trainer(frozen, SGD(frozen.parameters(), lr=0.0), CrossEntropyLoss()).train_epoch(DataLoader(inputs, labels, batch_size=32))
    left = [None if p.grad is None else np.copy(p.grad) for p in frozen.parameters()]
    frozen.zero_grad()
    CrossEntropyLoss()(frozen(Tensor(inputs[32:])), labels[32:]).backward()
    for (name, parameter), got in zip(frozen.named_parameters(), left):
        assert got is not None and np.allclose(got, parameter.grad, atol=1e-6), \
            (f"after an epoch, {name}.grad should be the last batch's gradient alone: gradients accumulate across "
             "backward() calls, so call optimizer.zero_grad() before each backward")
    # With lr=0, the epoch's loss and accuracy are those of the whole data: 40 examples, batches of 32 and 8.
    still = Sequential(Linear(64, 10, rng=np.random.default_rng(5)))
    loss, acc = Trainer(still, SGD(still.parameters(), lr=0.0), CrossEntropyLoss()).train_epoch(
        DataLoader(inputs[:40], labels[:40], batch_size=32))
    logits = still(Tensor(inputs[:40]))
    expected_loss = float(CrossEntropyLoss()(logits, labels[:40]).item())
    expected_acc = float(np.mean(logits.numpy().argmax(axis=1) == labels[:40]))
    assert abs(loss - expected_loss) < 1e-5, \
        f"the epoch's training loss should weigh each batch's mean loss by batch size: expected {expected_loss:.6f}, got {loss:.6f}"
    assert abs(acc - expected_acc) < 1e-12, \
        f"the epoch's training accuracy should count the right predictions of every batch: expected {expected_acc}, got {acc}"
    # One batch, one SGD step: the weights must move by -lr times the gradient of that batch.
    stepped = Sequential(Linear(64, 10, rng=np.random.default_rng(4)))
    before = [np.copy(values(p)) for p in stepped.parameters()]
    Trainer(stepped, SGD(stepped.parameters(), lr=0.5), CrossEntropyLoss()).train_epoch(DataLoader(inputs[:32], labels[:32], batch_size=32))
    for (name, parameter), old in zip(stepped.named_parameters(), before):
        assert parameter.grad is not None and np.allclose(values(parameter), old - 0.5 * parameter.grad, atol=1e-6), \
            f"one batch should give one optimizer step after backward: {name} should move by -lr * its gradient"

    train = DataLoader(standardize(data.x_train), data.y_train, batch_size=32, shuffle=True, seed=0)
    test = DataLoader(standardize(data.x_test), data.y_test, batch_size=256)
    rng = np.random.default_rng(0)
    model = Sequential(Linear(64, 64, rng=rng), ReLU(), Linear(64, 10, rng=rng))
    trainer = Trainer(model, Adam(model.parameters(), lr=0.003), CrossEntropyLoss())
    epochs_seen, batches_seen = [], []
    history = trainer.fit(train, test, epochs=3, on_epoch_end=lambda epoch, h: epochs_seen.append(epoch),
                          on_batch=batches_seen.append)
    assert history.epochs == 3 and len(history.val_accuracy) == 3, f"expected 3 recorded epochs, got {history}"
    assert epochs_seen == [1, 2, 3] and len(batches_seen) == 3 * len(train), "callbacks once per epoch and per batch"
    assert history.train_loss[-1] < history.train_loss[0], f"the training loss should fall, got {history.train_loss}"
    assert history.val_accuracy[-1] > 0.9, f"after 3 epochs the test accuracy should beat 90%, got {history.val_accuracy[-1]:.3f}"
    assert model.training, "fit should leave the model in training mode"

    # Early stopping: asking for an improvement of at least 10 in the loss, only epoch 1 (from infinity)
    # counts, so with patience=2 training stops after epoch 3 and puts back the weights of epoch 1.
    stopper = Sequential(Linear(64, 10, rng=rng))
    after_epoch = {}
    trainer = Trainer(stopper, SGD(stopper.parameters(), lr=0.05), CrossEntropyLoss())
    history = trainer.fit(train, test, epochs=20, patience=2, min_delta=10.0,
                          on_epoch_end=lambda epoch, h: after_epoch.update({epoch: stopper.state_dict()}))
    assert history.stopped_early and history.epochs == 3 and history.best_epoch == 1, \
        f"patience=2 should stop after epoch 3 (best epoch 1), got {history.epochs} epochs, best {history.best_epoch}"
    assert sorted(after_epoch) == [1, 2, 3], f"training should stop after epoch 3, ran {sorted(after_epoch)}"
    assert not np.allclose(after_epoch[3]["0.weight"], after_epoch[1]["0.weight"]), "the weights should change while training"
    assert np.array_equal(stopper.state_dict()["0.weight"], after_epoch[1]["0.weight"]), \
        "after stopping early, the weights of the best epoch should be restored"

    # Early stopping watches the validation loss: on labels shifted by one it rises from epoch 1 on, while the
    # model learns the true labels and the training loss falls.
    watcher = Sequential(Linear(64, 10, rng=np.random.default_rng(6)))
    shifted = DataLoader(inputs, (labels + 1) % 10, batch_size=64)
    history = Trainer(watcher, SGD(watcher.parameters(), lr=0.5), CrossEntropyLoss()).fit(
        DataLoader(inputs, labels, batch_size=64), shifted, epochs=4, patience=1)
    assert history.best_epoch == 1 and history.epochs == 2, \
        (f"with a validation loader, early stopping should watch the validation loss {np.round(history.val_loss, 3)}, "
         f"not the training loss: patience=1 should stop after epoch 2 (best 1), got {history.epochs} epochs, best {history.best_epoch}")

test_unit_trainer()
print("test_unit_trainer: passed")

# %% [markdown]
# ## 6. Checkpoints that survive a crash
#
# Training takes minutes to days; a checkpoint stores what is needed to resume it or to use the
# model: every parameter, the optimizer's state (momentum buffers, Adam's moment estimates and step
# count: without them a resumed run takes different steps) and a little extra information (the epoch,
# the standardisation statistics).
#
# **The file.** NumPy's `.npz` is a zip archive of `.npy` arrays, readable without running any code
# from the file (`np.load(..., allow_pickle=False)`): a checkpoint someone sends you cannot execute
# anything. Parameters are stored under `model/<name>`. The optimizer's state is a tree of dicts,
# lists and numbers with arrays at the leaves; each array is stored as `optimizer/<i>`, and the tree
# itself, with the arrays replaced by their keys, as JSON in `__meta__`.
#
# **Atomic writes.** If the process dies halfway through `np.savez(path, ...)`, `path` holds half a
# zip file and the previous checkpoint is gone too. The fix is a pattern as old as Unix:
#
# ```
# 1. write everything to a temporary file in the same folder:  .model.npz.k3j2a.tmp
# 2. flush it and fsync: the bytes are on the disk, not in a buffer
# 3. os.replace(temporary, path)
# 4. fsync the folder: the rename itself is on the disk
# ```
#
# `os.replace` is atomic on one file system: anybody opening `path` sees either the old file or the
# new one, never a mix. (It must be the same folder: a rename across file systems is a copy, and is
# not atomic.) A crash before step 3 leaves the old checkpoint untouched, plus a stray `.tmp` file,
# which we also remove when we can.
#
# **Loading into the wrong model.** A checkpoint of a 64-128-10 network does not fit a 64-256-10
# one. Before changing anything, `load_checkpoint` compares names and shapes and raises a
# `CheckpointError` that names the first parameter that does not fit, so a failed load never leaves
# a half-loaded model.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "training-checkpoint", "locked": false, "solution": true}
#| export
CHECKPOINT_FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that does not fit the model or optimizer it is loaded into."""


def _pack(tree, arrays: dict, prefix: str):
    """A JSON-able copy of `tree` whose arrays are moved into `arrays` under prefix/<i>."""
    if isinstance(tree, (np.ndarray, np.generic)):
        key = f"{prefix}/{len(arrays)}"
        arrays[key] = np.asarray(tree)
        return {"array": key, "scalar": isinstance(tree, np.generic)}
    if isinstance(tree, dict):
        return {"dict": [[_pack(key, arrays, prefix), _pack(value, arrays, prefix)] for key, value in tree.items()]}
    if isinstance(tree, (list, tuple)):
        return {type(tree).__name__: [_pack(item, arrays, prefix) for item in tree]}
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return {"value": tree}
    raise TypeError(f"cannot store a {type(tree).__name__} in a checkpoint (arrays, numbers, strings, lists, dicts only)")


def _unpack(packed, archive):
    kind, content = next((key, value) for key, value in packed.items() if key != "scalar")
    if kind == "array":
        array = archive[content]
        return array[()] if packed.get("scalar") else array
    if kind == "dict":
        return {_unpack(key, archive): _unpack(value, archive) for key, value in content}
    if kind in ("list", "tuple"):
        items = [_unpack(item, archive) for item in content]
        return items if kind == "list" else tuple(items)
    return content


def save_checkpoint(path, model: Module, optimizer=None, extra: dict | None = None) -> Path:
    """Write the model's parameters, the optimizer's state and `extra` to `path` (.npz), atomically."""
    path = Path(path)
    arrays = {f"model/{name}": array for name, array in model.state_dict().items()}
    meta = {
        "format": CHECKPOINT_FORMAT,
        "model": type(model).__name__,
        "optimizer": None if optimizer is None else type(optimizer).__name__,
        "optimizer_state": None if optimizer is None else _pack(optimizer.state_dict(), arrays, "optimizer"),
        "extra": _pack(extra or {}, arrays, "extra"),
    }
    arrays["__meta__"] = np.array(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    ### BEGIN SOLUTION
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    ### END SOLUTION
    return path


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX); where a folder cannot be opened (Windows), skip it."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _check_fits(saved: dict, model: Module, path: Path) -> None:
    """Raise CheckpointError naming the first parameter whose name or shape differs between checkpoint and model."""
    ### BEGIN SOLUTION
    own = {name: parameter.shape for name, parameter in model.named_parameters()}
    for name, shape in own.items():
        if name not in saved:
            raise CheckpointError(f"{path} does not fit this {type(model).__name__}: the model has parameter "
                                  f"'{name}' {shape}, the checkpoint does not")
        if saved[name].shape != shape:
            raise CheckpointError(f"{path} does not fit this {type(model).__name__}: parameter '{name}' has shape "
                                  f"{saved[name].shape} in the checkpoint but {shape} in the model")
    for name in saved:
        if name not in own:
            raise CheckpointError(f"{path} does not fit this {type(model).__name__}: the checkpoint has parameter "
                                  f"'{name}' {saved[name].shape}, the model does not")
    ### END SOLUTION


def load_checkpoint(path, model: Module, optimizer=None) -> dict:
    """Load parameters (and the optimizer's state, if an optimizer is given) from `path`; return `extra`.

    Nothing is changed unless the whole checkpoint fits the model and optimizer.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            archive = {key: archive[key] for key in archive.files}
        meta = json.loads(str(archive.pop("__meta__")))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
        raise CheckpointError(f"{path} is not a readable tinytorch checkpoint: {type(error).__name__}: {error}") from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {meta.get('format')}, this tinytorch reads {CHECKPOINT_FORMAT}")
    saved = {key[len("model/"):]: value for key, value in archive.items() if key.startswith("model/")}
    _check_fits(saved, model, path)
    optimizer_state = None
    if optimizer is not None:
        if meta["optimizer_state"] is None:
            raise CheckpointError(f"{path} holds no optimizer state to load into {type(optimizer).__name__}")
        if meta["optimizer"] != type(optimizer).__name__:
            raise CheckpointError(f"{path} holds {meta['optimizer']} state, not {type(optimizer).__name__} state")
        optimizer_state = _unpack(meta["optimizer_state"], archive)
    model.load_state_dict(saved)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    return _unpack(meta["extra"], archive)

# %% [markdown]
# ### Test: checkpoints
# A round trip restores parameters and optimizer state exactly, so a resumed run takes the same steps
# as an uninterrupted one. A crash in the middle of a save (simulated by making the writer fail after
# part of the file is written) leaves the previous checkpoint readable and no stray temporary file.

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-training-checkpoint", "locked": true, "points": 4, "solution": false}
def test_unit_checkpoint():
    folder = Path(tempfile.mkdtemp(prefix="checkpoint-test-"))
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 6)).astype(np.float32), rng.integers(0, 3, 40)

    def make():
        model = Sequential(Linear(6, 8, rng=np.random.default_rng(1)), ReLU(), Linear(8, 3, rng=np.random.default_rng(2)))
        return model, Adam(model.parameters(), lr=0.01)

    def steps(model, optimizer, count):
        Trainer(model, optimizer, CrossEntropyLoss()).fit(DataLoader(x, y, batch_size=40), epochs=count)

    model, optimizer = make()
    steps(model, optimizer, 3)
    path = save_checkpoint(folder / "run.npz", model, optimizer, extra={"epoch": 3, "mean": np.ones(6)})
    steps(model, optimizer, 2)  # the uninterrupted run goes on

    resumed, resumed_optimizer = make()
    extra = load_checkpoint(path, resumed, resumed_optimizer)
    assert extra["epoch"] == 3 and np.array_equal(extra["mean"], np.ones(6)), f"extra should come back as saved, got {extra}"
    steps(resumed, resumed_optimizer, 2)
    for (name, a), b in zip(model.named_parameters(), resumed.parameters()):
        assert np.allclose(values(a), values(b), atol=1e-6), f"a resumed run should match an uninterrupted one: {name} differs"
    with np.load(path, allow_pickle=False) as archive:
        assert "model/0.weight" in archive.files, f"parameters should be stored as model/<name>, got {archive.files}"

    before = path.read_bytes()
    writers = np.savez, np.savez_compressed

    during = []

    def crash_midway(file, *args, **arrays):
        during.extend(p.name for p in folder.iterdir())
        file.write(b"PK\x03\x04 half a zip file")
        raise KeyboardInterrupt("simulated crash during the save")

    np.savez = np.savez_compressed = crash_midway
    try:
        save_checkpoint(path, resumed, resumed_optimizer)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the simulated crash inside np.savez should have stopped save_checkpoint")
    finally:
        np.savez, np.savez_compressed = writers
    assert path.read_bytes() == before, "a crash during save must leave the previous checkpoint untouched"
    assert len(during) == 2, \
        (f"save_checkpoint should write to a temporary file in the checkpoint's own folder (os.replace is atomic only "
         f"within one file system); while it wrote, the folder held {during}")
    assert sorted(p.name for p in folder.iterdir()) == ["run.npz"], f"no temporary file should remain: {list(folder.iterdir())}"
    load_checkpoint(path, make()[0])

    wider = Sequential(Linear(6, 16), ReLU(), Linear(16, 3))
    deeper = Sequential(Linear(6, 8), ReLU(), Linear(8, 3), ReLU(), Linear(3, 3))
    shallower = Sequential(Linear(6, 8))
    for other, words in [(wider, "'0.weight'"), (deeper, "'4.weight'"), (shallower, "'2.weight'")]:
        try:
            load_checkpoint(path, other)
        except CheckpointError as error:
            assert words in str(error), f"the error should name the mismatching parameter {words}: {error}"
        except Exception as error:
            raise AssertionError(f"a checkpoint that does not fit ({words}) should raise CheckpointError, "
                                 f"got {type(error).__name__}: {error}") from None
        else:
            raise AssertionError(f"loading into a different architecture should raise CheckpointError ({words})")
    assert np.all(values(wider.parameters()[1]) == 0), "a failed load must not change the model"
    try:
        load_checkpoint(path, make()[0], SGD(make()[0].parameters(), lr=0.1))
    except CheckpointError as error:
        assert "Adam" in str(error), f"the error should say which optimizer the state belongs to: {error}"
    else:
        raise AssertionError("loading Adam state into SGD should raise CheckpointError")
    (folder / "junk.npz").write_bytes(b"not a zip file")
    for bad, error_type in [(folder / "junk.npz", CheckpointError), (folder / "absent.npz", FileNotFoundError)]:
        try:
            load_checkpoint(bad, make()[0])
        except error_type:
            continue
        raise AssertionError(f"loading {bad.name} should raise {error_type.__name__}")

test_unit_checkpoint()
print("test_unit_checkpoint: passed")

# %% [markdown]
# ## 7. Systems analysis: where the time of an epoch goes
#
# **Batch size.** An epoch over the 1438 training digits with a 64-128-10 MLP, for several batch
# sizes. Every batch pays a fixed cost (a few dozen Python-level operations in the forward pass, the
# backward pass and the optimizer), and a cost proportional to its size (the arithmetic). Small
# batches pay the fixed cost many times.
#
# While timing we hold NumPy's BLAS (the library behind `@`) to one thread with `threadpoolctl`: for
# matrices this small a second thread costs more than it saves, and on a machine shared with other
# work, a thread waiting for a busy core can make a step several times slower.

# %%
import time

from threadpoolctl import threadpool_limits

blas_limit = threadpool_limits(limits=1, user_api="blas")

data = load_digits_dataset()
standardize = Standardizer(data.x_train)
x_train, x_test = standardize(data.x_train), standardize(data.x_test)


from tinytorch.core.tensor import best_time


def make_mlp(hidden=128, seed=0):
    rng = np.random.default_rng(seed)
    return Sequential(Linear(64, hidden, rng=rng), ReLU(), Linear(hidden, 10, rng=rng))


print(f"{'batch':>6} {'steps':>6} {'epoch (ms)':>11} {'per step (us)':>14} {'per example (us)':>17}")
for batch_size in [8, 32, 128, 512]:
    model = make_mlp()
    trainer = Trainer(model, SGD(model.parameters(), lr=0.01), CrossEntropyLoss())
    loader = DataLoader(x_train, data.y_train, batch_size=batch_size, shuffle=True, seed=0)
    seconds = best_time(lambda: trainer.train_epoch(loader))
    print(f"{batch_size:>6} {len(loader):>6} {seconds * 1e3:>11.1f} {seconds / len(loader) * 1e6:>14.0f} "
          f"{seconds / len(x_train) * 1e6:>17.2f}")

# %% [markdown]
# **One step, taken apart.** The share of a batch-64 step spent in each phase; then what `no_grad`
# saves when evaluating.

# %%
model = make_mlp()
optimizer, loss_fn = Adam(model.parameters(), lr=0.001), CrossEntropyLoss()
inputs, targets = Tensor(x_train[:64]), data.y_train[:64]
phases = {"forward + loss": 0.0, "backward": 0.0, "optimizer step": 0.0}
for _ in range(200):
    start = time.perf_counter()
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    middle = time.perf_counter()
    loss.backward()
    after_backward = time.perf_counter()
    optimizer.step()
    end = time.perf_counter()
    phases["forward + loss"] += middle - start
    phases["backward"] += after_backward - middle
    phases["optimizer step"] += end - after_backward
total = sum(phases.values())
for phase, seconds in phases.items():
    print(f"{phase:16} {seconds / 200 * 1e6:8.0f} us per step  {seconds / total:6.1%}")

# The test set in one batch through a deeper, wider network: the time, and the memory NumPy's arrays
# still hold once the loss is computed (tracemalloc sees them). With a graph, the backward rules keep
# every layer's intermediate arrays alive until the loss is dropped; under no_grad each is freed as
# soon as the next layer has used it. Recording also takes time: each operation builds its Node and
# prepares what its rule will need (ReLU's mask, cross-entropy's softmax).
import tracemalloc

deep = Sequential(Linear(64, 256), ReLU(), *[layer for _ in range(3) for layer in (Linear(256, 256), ReLU())],
                  Linear(256, 10))
test_batch = Tensor(x_test)


def forward_loss():
    return loss_fn(deep(test_batch), data.y_test)


def without_graph():
    with no_grad():
        return forward_loss()


def megabytes_held_by_result(fn):
    tracemalloc.start()
    result = fn()  # noqa: F841 (kept alive while measuring: what it holds is the point)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return held / 1e6


print(f"\n{'test set forward':18} {'time (ms)':>10} {'held after it (MB)':>19}")
for label, fn in [("building a graph", forward_loss), ("under no_grad", without_graph)]:
    print(f"{label:18} {best_time(fn, repeat=5) * 1e3:>10.2f} {megabytes_held_by_result(fn):>19.3f}")

# %% [markdown]
# **Checkpoints.** Their size is the parameters (4 bytes each in float32) plus the optimizer's state:
# none for plain SGD, a buffer per parameter for momentum, two for Adam.

# %%
folder = Path(tempfile.mkdtemp(prefix="checkpoint-size-"))
print(f"{'model':10} {'optimizer':16} {'parameters':>11} {'file (KB)':>10} {'save (ms)':>10}")
for hidden in [128, 512]:
    for name, make_optimizer in [("SGD", lambda p: SGD(p, lr=0.1)), ("SGD momentum", lambda p: SGD(p, lr=0.1, momentum=0.9)),
                                 ("Adam", lambda p: Adam(p))]:
        model = make_mlp(hidden)
        optimizer = make_optimizer(model.parameters())
        Trainer(model, optimizer, CrossEntropyLoss()).train_epoch(DataLoader(x_train[:64], data.y_train[:64], batch_size=64))
        seconds = best_time(lambda: save_checkpoint(folder / "size.npz", model, optimizer), repeat=3)
        count = sum(parameter.size for parameter in model.parameters())
        print(f"64-{hidden}-10 {name:16} {count:>11,} {(folder / 'size.npz').stat().st_size / 1024:>10.1f} {seconds * 1e3:>10.2f}")

blas_limit.restore_original_limits()

# %% [markdown]
# ## 8. Reflection
#
# Answer in a sentence or three each.

# %% [markdown]
# **Q1.** Look at the batch-size table. Why does the time per example fall as batches grow? If large
# batches are so much cheaper, why train with batches of 32 or 64 rather than the whole data set?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-training-batch", "locked": false, "points": 2, "solution": true}
# Each step has a fixed cost, the Python work of every operation in forward, backward and the
# optimizer, that does not depend on the batch size; larger batches share it among more examples and
# let the matmuls run at BLAS speed. But the number of updates per epoch falls with the batch size:
# with the whole data set as one batch there is a single step per epoch, so reaching a given accuracy
# takes many more epochs, and the noise of small batches also helps to find solutions that generalise.

# %% [markdown]
# **Q2.** `evaluate` uses both `no_grad()` and `model.eval()`. What does each one change, and what
# would you see if you forgot each?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-training-eval", "locked": false, "points": 2, "solution": true}
# `no_grad()` stops operations from recording a graph: without it the results are the same but
# evaluation is slower and keeps every intermediate activation alive (more memory) until the outputs
# are dropped. `eval()` changes what layers compute: without it Dropout keeps zeroing units at random,
# so test accuracy is noisy, varies between runs and usually comes out lower than the model's real one.

# %% [markdown]
# **Q3.** `save_checkpoint` writes to a temporary file and then calls `os.replace`. Why must the
# temporary file be in the same folder as the checkpoint, and what can still go wrong?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-training-atomic", "locked": false, "points": 2, "solution": true}
# A rename is atomic only within one file system; a temporary file in /tmp may sit on another one,
# where `os.replace` fails or turns into a copy that a crash can interrupt. Still possible: the disk
# can be full (the save then fails, but the old file survives); a crash can leave a stray temporary
# file behind (harmless, but it takes space); two processes saving to the same path at once each
# replace the other's file whole, so the last one wins; and a checkpoint is only as good as what
# it stores (a model saved without its optimizer state cannot resume exactly).

# %% [markdown]
# ## Summary
#
# You can now take real data (the digits, or MNIST's IDX files) through a stratified split and
# standardisation, feed it in shuffled mini-batches, train with a loop that records loss and
# accuracy and can stop early, evaluate without building a graph, and save checkpoints that a crash
# cannot corrupt. Export with `tito module complete 08_training`, then run `tito milestone digits`:
# a network built entirely from your own modules learns to read handwriting.
