"""Module 09, tinytorch.core.convolutions, against PyTorch: conv2d and the pooling layers on random shapes,
strides, paddings and ties give F.conv2d's, MaxPool2d's and AvgPool2d's values and gradients (torch_oracle.compare),
and Conv2d starts with PyTorch's initialisation and repr."""
from __future__ import annotations

import numpy as np
import pytest

from tinytorch.core.convolutions import AvgPool2d, Conv2d, MaxPool2d, conv2d

from test_convolutions import random_conv_case
from torch_oracle import compare, torch

pytestmark = pytest.mark.module("convolutions")

# float32: a convolution adds up to C * k_h * k_w products per output, in another order than PyTorch's kernels.
TOLERANCE = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-9, atol=1e-9)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(25))
def test_conv2d_values_and_gradients_match_pytorch(case, dtype):
    rng = np.random.default_rng(case)
    x_shape, w_shape, stride, padding = random_conv_case(rng)
    arrays = [rng.standard_normal(shape).astype(dtype) for shape in (x_shape, w_shape, w_shape[:1])]
    with_bias = case % 3 != 0
    leaves = compare(lambda x, w, b: conv2d(x, w, b if with_bias else None, stride, padding),
                     lambda x, w, b: torch.nn.functional.conv2d(x, w, b if with_bias else None, stride, padding),
                     arrays, f"conv2d {x_shape} * {w_shape} stride={stride} padding={padding}", tolerance=TOLERANCE[dtype])
    if not with_bias:
        assert leaves[2].grad is None, "a bias that was not given gets no gradient"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(20))
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_values_and_gradients_match_pytorch(kind, case, dtype):
    rng = np.random.default_rng(100 + case)
    kernel = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    stride = None if case % 2 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(kernel[0], 9)), int(rng.integers(kernel[1], 9)))
    x = rng.standard_normal(shape).astype(dtype)
    if case % 4 == 0:  # many ties, as after a ReLU: PyTorch sends a window's gradient to its first maximum only
        x = np.maximum(np.round(x), 0).astype(dtype)
    layer, torch_layer = (MaxPool2d, torch.nn.MaxPool2d) if kind == "max" else (AvgPool2d, torch.nn.AvgPool2d)
    compare(layer(kernel, stride), torch_layer(kernel, stride), [x], f"{kind} pool {shape} kernel={kernel} stride={stride}",
            tolerance=TOLERANCE[dtype])


def test_conv2d_layer_starts_like_pytorch():
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
