"""Module 09: Conv2d, MaxPool2d and AvgPool2d: gradchecks, and module 08 training a CNN unchanged (the PyTorch comparisons
are in test_convolutions_torch.py)."""
from __future__ import annotations

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import Variable
from tinytorch.core.operations import gradcheck
from tinytorch.core.convolutions import (AvgPool2d, Conv2d, MaxPool2d, avg_pool2d, col2im, col2im_of_product, conv2d, conv2d_loops,
                                         first_largest, im2col, max_pool2d)
from tinytorch.core.layers import Flatten, Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import Adam
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import DataLoader, Trainer, load_checkpoint, save_checkpoint

pytestmark = pytest.mark.module("convolutions")


def random_conv_case(rng):
    """A random convolution: shapes, stride, padding, channels and batch, each axis drawn on its own."""
    kernel = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    padding = (int(rng.integers(0, kernel[0])), int(rng.integers(0, kernel[1])))
    size = tuple(int(rng.integers(max(k - 2 * p, 1), 9)) for k, p in zip(kernel, padding))
    n, c, o = (int(rng.integers(1, 5)) for _ in range(3))
    return (n, c, *size), (o, c, *kernel), stride, padding


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), ((1, 2), (2, 0))])
def test_conv2d_gradchecks(stride, padding):
    rng = np.random.default_rng(0)
    x, weight, bias = (Variable(rng.standard_normal(shape), requires_grad=True) for shape in [(2, 3, 5, 6), (2, 3, 3, 2), (2,)])
    assert gradcheck(lambda a, w, b: conv2d(a, w, b, stride, padding), x, weight, bias)


@pytest.mark.parametrize("pool", [max_pool2d, avg_pool2d])
def test_pooling_gradchecks_with_overlapping_windows(pool):
    x = Variable(np.random.default_rng(1).standard_normal((2, 2, 6, 5)), requires_grad=True)
    assert gradcheck(lambda a: pool(a, 3, 1), x)
    assert gradcheck(lambda a: pool(a, (2, 3), (2, 1)), x)


def test_im2col_and_col2im_are_adjoint_and_match_the_loop_form():
    rng = np.random.default_rng(2)
    for _ in range(10):
        x_shape, w_shape, stride, padding = random_conv_case(rng)
        x, weight = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        cols = im2col(x, w_shape[2:], stride, padding)
        other = rng.standard_normal(cols.shape)
        assert np.isclose(np.sum(cols * other), np.sum(x * col2im(other, x_shape, w_shape[2:], stride, padding)))
        np.testing.assert_allclose(conv2d(Tensor(x), Tensor(weight), None, stride, padding).numpy(),
                                   conv2d_loops(x, weight, None, stride, padding), atol=1e-12)


def test_one_code_path_tensors_in_tensors_out():
    x = Tensor(np.ones((1, 1, 4, 4), dtype=np.float32))
    assert type(conv2d(x, Tensor(np.ones((2, 1, 3, 3), dtype=np.float32)))) is Tensor
    assert type(MaxPool2d(2)(x)) is Tensor and type(AvgPool2d(2)(x)) is Tensor
    assert isinstance(Conv2d(1, 2, 3)(x), Variable)  # its weights are Parameters, so it builds a graph


def test_module_08_trains_and_checkpoints_a_cnn_unchanged(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 64)
    images = rng.standard_normal((64, 1, 6, 6)).astype(np.float32) * 0.1
    images[labels == 1, 0, :, :3] += 1.0  # class 1 is bright on the left: a pattern a convolution can find

    def model(seed):
        rng = np.random.default_rng(seed)
        return Sequential(Conv2d(1, 4, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2), Flatten(), Linear(36, 2, rng=rng))

    cnn = model(0)
    assert [name for name, _ in cnn.named_parameters()] == ["0.weight", "0.bias", "4.weight", "4.bias"]
    optimizer = Adam(cnn.parameters(), lr=0.02)
    history = Trainer(cnn, optimizer, CrossEntropyLoss()).fit(DataLoader(images, labels, batch_size=16, shuffle=True, seed=0),
                                                              epochs=15)
    assert history.train_accuracy[-1] == 1.0 and history.train_loss[-1] < history.train_loss[0]
    path = save_checkpoint(tmp_path / "cnn.npz", cnn, optimizer)
    restored = model(1)
    load_checkpoint(path, restored, Adam(restored.parameters()))
    np.testing.assert_array_equal(restored(Tensor(images)).numpy(), cnn(Tensor(images)).numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_col2im_of_product_is_col2im_of_the_product(dtype):
    rng = np.random.default_rng(3)
    for _ in range(10):
        x_shape, w_shape, stride, padding = random_conv_case(rng)
        weight = rng.standard_normal(w_shape).astype(dtype)
        grad_columns = rng.standard_normal((w_shape[0], im2col(np.zeros(x_shape), w_shape[2:], stride, padding).shape[1]))
        grad_columns = grad_columns.astype(dtype)
        got = col2im_of_product(weight, grad_columns, x_shape, stride, padding)
        expected = col2im(weight.reshape(w_shape[0], -1).T @ grad_columns, x_shape, w_shape[2:], stride, padding)
        assert got.dtype == dtype and got.shape == x_shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_first_largest_marks_the_first_maximum_of_each_column_as_argmax_does():
    rng = np.random.default_rng(4)
    cols = np.maximum(np.round(rng.standard_normal((3, 9, 50))), 0)  # many ties, as after a ReLU
    mask = first_largest(cols, cols.max(axis=1, keepdims=True))
    assert mask.dtype == bool and (mask.sum(axis=1) == 1).all()
    np.testing.assert_array_equal(mask.argmax(axis=1), cols.argmax(axis=1))


def test_activations_keep_the_channel_height_width_batch_order_between_layers():
    """conv2d, ReLU and pooling hand on views of (C, H, W, N) arrays, so no layer reorders its input in memory."""
    x = Variable(np.random.default_rng(5).standard_normal((4, 2, 8, 8)).astype(np.float32), requires_grad=True)
    network = Sequential(Conv2d(2, 3, 3, padding=1), ReLU(), MaxPool2d(2), Conv2d(3, 5, 3, padding=1), ReLU(), AvgPool2d(2))
    out = x
    for layer in network:
        out = layer(out)
        assert out.numpy().transpose(1, 2, 3, 0).flags.c_contiguous, f"{layer!r} left its output out of (C, H, W, N) order"
    out.sum().backward()
    assert x.grad.shape == x.shape
