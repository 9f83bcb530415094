"""Module 14 against PyTorch: the same scales, zero points and int8 codes as torch's observers and
`quantize_per_tensor` / `quantize_per_channel`, the same fake quantization and straight-through gradients, and
quantized layers within one output step of PyTorch's quantized computation (its reference form and its fbgemm
integer kernels). Skipped when PyTorch is not installed (CI installs the CPU build)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from tinytorch.core.autograd import no_grad
from tinytorch.core.convolutions import Conv2d
from tinytorch.core.layers import Linear
from tinytorch.core.operations import Parameter
from tinytorch.core.quantization import (QuantizedConv2d, QuantizedLinear, choose_qparams, dequantize, fake_quantize,
                                         quantize, tensor_range)
from tinytorch.core.tensor import Tensor
from torch_oracle import compare, torch

observers = pytest.importorskip("torch.ao.quantization")

pytestmark = [
    pytest.mark.module("quantization"),
    # torch 2.13 warns that creating quantized tensors is deprecated (in favour of torchao); these tensors are
    # exactly the oracle we want, so that one warning is silenced here and nowhere else.
    pytest.mark.filterwarnings("ignore:.*quantiz.*deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*quantiz.*deprecated:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*quantiz.*deprecated:FutureWarning"),
]

ONE_MILLIONTH = dict(rtol=0, atol=1e-6)
SCHEMES = {False: (torch.per_tensor_affine, torch.per_channel_affine),
           True: (torch.per_tensor_symmetric, torch.per_channel_symmetric)}


def sample(rng, shape, case):
    """Values of varied spread and offset; every third case all positive, as after a ReLU."""
    x = rng.standard_normal(shape) * rng.uniform(0.01, 5.0) + rng.uniform(-1.0, 1.0)
    return np.abs(x).astype(np.float32) if case % 3 == 0 else x.astype(np.float32)


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("case", range(12))
def test_per_tensor_parameters_and_codes_equal_pytorch(case, symmetric):
    rng = np.random.default_rng(case)
    x = sample(rng, (int(rng.integers(1, 40)), int(rng.integers(1, 40))), case)
    observer = observers.MinMaxObserver(dtype=torch.qint8, qscheme=SCHEMES[symmetric][0])
    observer(torch.from_numpy(x))
    their_scale, their_zero = observer.calculate_qparams()
    scale, zero_point = choose_qparams(*tensor_range(x), symmetric=symmetric)
    assert scale.item() == their_scale.item() and zero_point.item() == their_zero.item()

    reference = torch.quantize_per_tensor(torch.from_numpy(x), float(scale), int(zero_point), torch.qint8)
    assert reference.q_scale() == float(scale) and reference.q_zero_point() == int(zero_point)
    codes = quantize(x, scale, zero_point)
    np.testing.assert_array_equal(codes, reference.int_repr().numpy())
    np.testing.assert_array_equal(dequantize(codes, scale, zero_point), reference.dequantize().numpy())


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("axis", [0, 1, 3])
@pytest.mark.parametrize("case", range(6))
def test_per_channel_parameters_and_codes_equal_pytorch(case, axis, symmetric):
    rng = np.random.default_rng(100 + case)
    x = sample(rng, (5, 4, 3, 6), case) * rng.uniform(0.01, 3.0, 6).astype(np.float32)  # channels of different sizes
    observer = observers.PerChannelMinMaxObserver(ch_axis=axis, dtype=torch.qint8, qscheme=SCHEMES[symmetric][1])
    observer(torch.from_numpy(x))
    their_scales, their_zeros = observer.calculate_qparams()
    scales, zero_points = choose_qparams(*tensor_range(x, axis=axis), symmetric=symmetric)
    np.testing.assert_array_equal(scales, their_scales.numpy())
    np.testing.assert_array_equal(zero_points, their_zeros.numpy())

    reference = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(scales.astype(np.float64)),
                                           torch.from_numpy(zero_points.astype(np.int64)), axis, torch.qint8)
    np.testing.assert_array_equal(reference.q_per_channel_scales().numpy(), scales)
    np.testing.assert_array_equal(reference.q_per_channel_zero_points().numpy(), zero_points)
    codes = quantize(x, scales, zero_points, axis=axis)
    np.testing.assert_array_equal(codes, reference.int_repr().numpy())
    np.testing.assert_array_equal(dequantize(codes, scales, zero_points, axis=axis), reference.dequantize().numpy())


def test_ties_and_saturation_equal_pytorch():
    """Exact halves (x / scale = k + 0.5 with a power-of-two scale; odd zero points decide the parity of the code),
    the end of a symmetric range (exactly -127.5 steps), and values far outside the range."""
    x = np.array([0.25, 0.75, 1.25, -0.25, -0.75, 63.75, -64.25, 100.0, -100.0, 0.0], dtype=np.float32)
    for zero_point in [0, 5, -128, 127]:
        reference = torch.quantize_per_tensor(torch.from_numpy(x), 0.5, zero_point, torch.qint8)
        np.testing.assert_array_equal(quantize(x, 0.5, zero_point), reference.int_repr().numpy())
    for low in np.arange(1, 200, dtype=np.float32) / np.float32(100):
        scale, _ = choose_qparams(-low, low / 2, symmetric=True)
        assert quantize(-low, scale, 0) == torch.quantize_per_tensor(torch.tensor([-low]), float(scale), 0, torch.qint8).int_repr().item()


@pytest.mark.parametrize("case", range(8))
def test_fake_quantize_values_and_straight_through_gradients_equal_pytorch(case):
    rng = np.random.default_rng(200 + case)
    x = sample(rng, (7, 5), case)
    low, high = tensor_range(x)
    scale, zero_point = choose_qparams(low * 0.6, high * 0.6)  # a narrow range: some values are clipped
    # torch's fake quantization adds the zero point after rounding, its quantize_per_tensor (and ours) before: they
    # differ only at an exact half with an odd zero point, which random values do not hit. The gradients pass
    # through (1) or stop (0) exactly: compared with a tolerance far below any upstream value.
    (ours,) = compare(lambda v: fake_quantize(v, scale, zero_point),
                      lambda t: torch.fake_quantize_per_tensor_affine(t, float(scale), int(zero_point), -128, 127),
                      [x], "per tensor", tolerance=ONE_MILLIONTH)
    assert np.any(ours.grad == 0) and np.any(ours.grad != 0)  # both sides of the clipping are exercised

    weight = sample(rng, (6, 4), case)
    scales, zeros = choose_qparams(*tensor_range(weight, axis=1), symmetric=True)
    scales = scales * np.float32(0.7)  # clip each column's largest weights
    compare(lambda v: fake_quantize(v, scales, zeros, axis=1),
            lambda t: torch.fake_quantize_per_channel_affine(t, torch.from_numpy(scales), torch.from_numpy(zeros), 1, -128, 127),
            [weight], "per channel", tolerance=ONE_MILLIONTH)


def reference_output(float_op, layer, x, weight):
    """PyTorch's reference quantized computation with our layer's parameters: quantize the input and the weight
    with torch, dequantize, the float op, quantize the output, dequantize."""
    x_q = torch.quantize_per_tensor(torch.from_numpy(x), float(layer.input_scale), int(layer.input_zero_point), torch.qint8)
    w_q = torch.quantize_per_channel(torch.from_numpy(weight), torch.from_numpy(layer.weight_scale.astype(np.float64)),
                                     torch.zeros(len(layer.weight_scale), dtype=torch.int64), 0, torch.qint8)
    out = float_op(x_q.dequantize(), w_q.dequantize())
    out_q = torch.quantize_per_tensor(out, float(layer.output_scale), int(layer.output_zero_point), torch.qint8)
    return w_q, out_q.dequantize().numpy()


def calibrated(layer, x):
    with no_grad():
        return tensor_range(x), tensor_range(layer(Tensor(x)).numpy())


@pytest.mark.parametrize("case", range(10))
def test_quantized_linear_within_one_step_of_pytorch(case):
    rng = np.random.default_rng(300 + case)
    in_features, out_features = int(rng.integers(1, 20)), int(rng.integers(1, 12))
    linear = Linear(in_features, out_features, rng=rng)
    linear.bias = Parameter(rng.uniform(-1, 1, out_features).astype(np.float32))
    x = sample(rng, (int(rng.integers(1, 30)), in_features), case)
    layer = QuantizedLinear(linear, *calibrated(linear, x))
    weight = np.ascontiguousarray(linear.weight.numpy().T)  # PyTorch's layout: (out, in)
    bias = torch.from_numpy(linear.bias.numpy())
    w_q, expected = reference_output(lambda a, w: torch.nn.functional.linear(a, w, bias), layer, x, weight)
    np.testing.assert_array_equal(layer.qweight.T, w_q.int_repr().numpy())
    got = layer(Tensor(x)).numpy()
    assert np.max(np.abs(got - expected)) <= float(layer.output_scale) * 1.0001

    # PyTorch's integer kernel (fbgemm): activations as quint8, whose codes are ours + 128.
    kernel = torch.ao.nn.quantized.Linear(in_features, out_features)
    kernel.set_weight_bias(w_q, bias)
    kernel.scale, kernel.zero_point = float(layer.output_scale), int(layer.output_zero_point) + 128
    x_q = torch.quantize_per_tensor(torch.from_numpy(x), float(layer.input_scale), int(layer.input_zero_point) + 128, torch.quint8)
    assert np.max(np.abs(got - kernel(x_q).dequantize().numpy())) <= float(layer.output_scale) * 1.0001


@pytest.mark.parametrize("case", range(8))
def test_quantized_conv2d_within_one_step_of_pytorch(case):
    rng = np.random.default_rng(400 + case)
    kernel_size, stride, padding = int(rng.integers(1, 4)), int(rng.integers(1, 3)), int(rng.integers(0, 2))
    in_channels, out_channels = int(rng.integers(1, 4)), int(rng.integers(1, 6))
    conv = Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=case % 4 != 0, rng=rng)
    x = sample(rng, (int(rng.integers(1, 4)), in_channels, int(rng.integers(kernel_size, 9)), int(rng.integers(kernel_size, 9))), case)
    layer = QuantizedConv2d(conv, *calibrated(conv, x))
    bias = None if conv.bias is None else torch.from_numpy(conv.bias.numpy())
    w_q, expected = reference_output(lambda a, w: torch.nn.functional.conv2d(a, w, bias, stride, padding), layer, x,
                                     conv.weight.numpy())
    np.testing.assert_array_equal(layer.qweight, w_q.int_repr().numpy())
    got = layer(Tensor(x)).numpy()
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= float(layer.output_scale) * 1.0001

    kernel = torch.ao.nn.quantized.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                          bias=bias is not None)
    kernel.set_weight_bias(w_q, bias)
    kernel.scale, kernel.zero_point = float(layer.output_scale), int(layer.output_zero_point) + 128
    x_q = torch.quantize_per_tensor(torch.from_numpy(x), float(layer.input_scale), int(layer.input_zero_point) + 128, torch.quint8)
    assert np.max(np.abs(got - kernel(x_q).dequantize().numpy())) <= float(layer.output_scale) * 1.0001
