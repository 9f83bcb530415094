"""Module 09: Conv2d, MaxPool2d and AvgPool2d against PyTorch, gradchecks, and module 08 training a CNN unchanged."""
from __future__ import annotations

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import Variable
from tinytorch.core.operations import gradcheck
from tinytorch.core.convolutions import (AvgPool2d, Conv2d, MaxPool2d, avg_pool2d, col2im, conv2d, conv2d_loops, im2col,
                                         max_pool2d)
from tinytorch.core.layers import Flatten, Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import Adam
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import DataLoader, Trainer, load_checkpoint, save_checkpoint

pytestmark = pytest.mark.module("convolutions")

TOLERANCE = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-9, atol=1e-9)}


def random_conv_case(rng):
    """A random convolution: shapes, stride, padding, channels and batch, each axis drawn on its own."""
    kernel = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    padding = (int(rng.integers(0, kernel[0])), int(rng.integers(0, kernel[1])))
    size = tuple(int(rng.integers(max(k - 2 * p, 1), 9)) for k, p in zip(kernel, padding))
    n, c, o = (int(rng.integers(1, 5)) for _ in range(3))
    return (n, c, *size), (o, c, *kernel), stride, padding


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(25))
def test_conv2d_values_and_gradients_match_pytorch(case, dtype):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle here; install it with `pip install torch==2.13.0`")
    rng = np.random.default_rng(case)
    x_shape, w_shape, stride, padding = random_conv_case(rng)
    x, weight, bias = (rng.standard_normal(shape).astype(dtype) for shape in (x_shape, w_shape, w_shape[:1]))
    with_bias = case % 3 != 0
    ours = [Variable(array, requires_grad=True) for array in (x, weight, bias)]
    out = conv2d(ours[0], ours[1], ours[2] if with_bias else None, stride, padding)
    theirs = [torch.tensor(array, requires_grad=True) for array in (x, weight, bias)]
    expected = torch.nn.functional.conv2d(theirs[0], theirs[1], theirs[2] if with_bias else None, stride, padding)
    assert out.shape == tuple(expected.shape) and out.dtype == dtype
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), **TOLERANCE[dtype])
    upstream = rng.standard_normal(out.shape).astype(dtype)
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    for mine, reference in zip(ours if with_bias else ours[:2], theirs):
        assert mine.grad.dtype == dtype
        np.testing.assert_allclose(mine.grad, reference.grad.numpy(), **TOLERANCE[dtype])
    if not with_bias:
        assert ours[2].grad is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(20))
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_values_and_gradients_match_pytorch(kind, case, dtype):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle here; install it with `pip install torch==2.13.0`")
    rng = np.random.default_rng(100 + case)
    kernel = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    stride = None if case % 2 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(kernel[0], 9)), int(rng.integers(kernel[1], 9)))
    x = rng.standard_normal(shape).astype(dtype)
    if case % 4 == 0:  # many ties, as after a ReLU: PyTorch sends a window's gradient to its first maximum only
        x = np.maximum(np.round(x), 0).astype(dtype)
    ours = Variable(x, requires_grad=True)
    reference = torch.tensor(x, requires_grad=True)
    layer, torch_layer = ((MaxPool2d, torch.nn.MaxPool2d) if kind == "max" else (AvgPool2d, torch.nn.AvgPool2d))
    out, expected = layer(kernel, stride)(ours), torch_layer(kernel, stride)(reference)
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), **TOLERANCE[dtype])
    upstream = rng.standard_normal(out.shape).astype(dtype)
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    np.testing.assert_allclose(ours.grad, reference.grad.numpy(), **TOLERANCE[dtype])


def test_conv2d_layer_starts_like_pytorch():
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle here; install it with `pip install torch==2.13.0`")
    torch.manual_seed(0)
    reference = torch.nn.Conv2d(32, 16, 3)
    ours = Conv2d(32, 16, 3, rng=np.random.default_rng(0))
    for name, theirs in reference.named_parameters():
        mine = getattr(ours, name).numpy()
        assert mine.shape == tuple(theirs.shape)
        assert abs(np.abs(mine).max() - theirs.abs().max().item()) < 0.01  # the same bound, 1/sqrt(fan_in)
        assert abs(mine.std() / theirs.std().item() - 1) < 0.1
    assert repr(ours) == repr(reference)
    assert repr(Conv2d(1, 6, 5, stride=2, padding=1, bias=False)) == repr(torch.nn.Conv2d(1, 6, 5, stride=2, padding=1, bias=False))


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
