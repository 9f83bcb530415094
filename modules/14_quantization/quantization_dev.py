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
# # Quantization: the same network in 8-bit integers
#
# A trained network is a pile of float32 numbers, four bytes each. Most of those bytes are wasted: a
# weight's value matters to two or three significant digits, and the weights of one layer cover a
# narrow range. **Quantization** stores each number as an 8-bit integer $q$ and one shared float, the
# **scale** $s$, with $x \approx s\,(q - z)$: a quarter of the memory, and arithmetic that a phone's
# or a microcontroller's integer units do quickly and with little energy.
#
# ```
# range [-0.96, 1.58]  ->  s = 0.00996, z = -32              (how s and z are chosen: §2)
# float x:    -0.61    0.00    0.27    1.93     one float32 each (4 bytes)
# int8 q:       -93     -32      -5     127     one int8 each (1 byte)
# s (q - z):  -0.608   0.000   0.269   1.584    1.93 lies above the range: it is clipped to its top
# ```
#
# This module builds post-training INT8 quantization as PyTorch does it, number for number: the
# affine mapping (§1), how to choose its scale and zero point (§2), how to find the range to cover
# from observed values (§3), *fake quantization* that lets training see the rounding (§4), integer
# matrix products with int32 accumulation (§5), and quantized `Linear` and `Conv2d` layers (§6)
# that turn module 08's digits MLP and module 09's CNN into integer networks (§7), which then leave
# the course in ONNX, the format inference engines read (§8). It builds on modules 01 to 09 only.
#
# **Objectives.** By the end of this module you can:
#
# - quantize and dequantize an array, per tensor or per channel, symmetric or asymmetric, with PyTorch's rounding;
# - calibrate a range by min/max or by the least squared error, and say when each is better;
# - write fake quantization as one graph operation with a straight-through gradient;
# - run `Linear` and `Conv2d` in int8 with int32 accumulation and requantization, quantize a trained model and export it to ONNX;
# - measure what INT8 saves in bytes and costs in accuracy and time.
#
# | You write here | It becomes | Used by |
# |---|---|---|
# | this notebook, `quantization.ipynb` | `tinytorch.core.quantization` | any trained course model, ONNX Runtime |

# %%
#| default_exp core.quantization

# %%
#| export
from __future__ import annotations

import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import _value, no_grad, record
from tinytorch.core.convolutions import Conv2d, MaxPool2d, _geometry, im2col
from tinytorch.core.layers import Flatten, Linear, Module, Sequential
from tinytorch.core.tensor import Tensor

# %%
# The rest of the stack, for the examples and tests below (the exported code does not need it).
import os
import tempfile
import time
from pathlib import Path

from tinytorch.core.autograd import Variable
from tinytorch.core.convolutions import conv2d
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.operations import Parameter, gradcheck
from tinytorch.core.optimizers import Adam
from tinytorch.core.tensor import best_time
from tinytorch.core.training import DataLoader, Standardizer, Trainer, load_digits_dataset, save_checkpoint

# %% [markdown]
# ## 1. The affine mapping: scale and zero point
#
# An int8 holds the integers $-128 \dots 127$. To store floats in it, pick a **scale** $s > 0$ (the
# float step between neighbouring codes) and a **zero point** $z$ (the code that stands for 0.0), and
#
# $$q = \mathrm{clip}\big(\mathrm{round}(x / s + z),\; -128,\; 127\big), \qquad \hat x = s\,(q - z).$$
#
# Inside the range, $|\hat x - x| \le s/2$: the rounding error is at most half a step. Outside it,
# `clip` saturates at the nearest end. Four details decide whether our numbers equal PyTorch's:
#
# - **round half to even.** $x/s = 2.5$ becomes 2, $3.5$ becomes 4 (`np.round` does this, as C's
#   `nearbyint` does); rounding halves up would bias every sum upwards. The zero point is added
#   *before* rounding, as in PyTorch's `quantize_per_tensor`: "even" is a property of the code, so
#   $0.5 + 5 = 5.5$ becomes 6, where $\mathrm{round}(0.5) + 5$ would give 5.
# - **clip, never wrap.** NumPy's `astype(np.int8)` of 200 gives -56: casting is not clipping.
# - $\hat x$ is computed in int32 first: $q - z$ can reach 255, which an int8 cannot hold.
# - **multiply by $1/s$.** PyTorch computes the reciprocal once (float32) and multiplies every value
#   by it, because a multiplication is several times cheaper than a division. $x \cdot (1/s)$ and
#   $x / s$ can differ in the last bit, which decides an exact half: and a symmetric range (§2) puts
#   its most negative value exactly at $-127.5$ steps. Write `np.round(x * (1 / scale) + zero_point)`
#   to get PyTorch's codes.
#
# **Per channel.** One scale for a whole weight matrix wastes codes on the columns whose weights are
# small. With `axis`, `scale` and `zero_point` hold one value per entry along that axis: column $j$
# of a `Linear` weight (shape (in, out), axis 1) or filter $o$ of a `Conv2d` weight (axis 0) gets its
# own. The given helper `_qparams_like` checks them and shapes them to broadcast against the array.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "quantization-affine", "locked": false, "solution": true}
#| export
QMIN, QMAX = -128, 127  # the range of int8


def _qparams_like(x: np.ndarray, scale, zero_point, axis) -> tuple[np.ndarray, np.ndarray]:
    """`scale` (float32) and `zero_point` (int32), checked, shaped to broadcast against `x`: one value each per
    tensor (axis None) or one per entry along `axis` (per channel). A ValueError names what does not fit."""
    scale, zero_point = np.asarray(scale, dtype=np.float32), np.asarray(zero_point)
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise ValueError(f"a scale must be positive and finite, got {scale}")
    if np.any(zero_point != np.round(zero_point)) or np.any(zero_point < QMIN) or np.any(zero_point > QMAX):
        raise ValueError(f"a zero point must be an integer in {QMIN}..{QMAX}, got {zero_point}")
    zero_point = zero_point.astype(np.int32)
    if axis is None:
        if scale.size != 1 or zero_point.size != 1:
            raise ValueError(f"per-tensor quantization takes one scale and one zero point, got shapes {scale.shape} and "
                             f"{zero_point.shape}: pass axis= for one per channel")
        return scale.reshape(()), zero_point.reshape(())
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for an array of shape {x.shape}")
    channels = x.shape[axis]
    if scale.shape != (channels,) or zero_point.shape != (channels,):
        raise ValueError(f"per-channel quantization along axis {axis} of shape {x.shape} needs {channels} scales and zero "
                         f"points, got shapes {scale.shape} and {zero_point.shape}")
    shape = [1] * x.ndim
    shape[axis] = channels
    return scale.reshape(shape), zero_point.reshape(shape)


def quantize(x, scale, zero_point, axis: int | None = None) -> np.ndarray:
    """The int8 codes clip(round(x * (1 / scale) + zero_point), -128, 127) of x (an array, Tensor or Variable),
    rounding halves to even; with `axis`, one scale and zero point per entry along that axis.

    >>> quantize(np.array([0.25, 0.75, 1.0, 100.0]), 0.5, 0).tolist()
    [0, 2, 2, 127]
    """
    x = np.asarray(_value(x), dtype=np.float32)
    scale, zero_point = _qparams_like(x, scale, zero_point, axis)
    ### BEGIN SOLUTION
    codes = np.round(x * (1 / scale) + zero_point)
    return np.clip(codes, QMIN, QMAX).astype(np.int8)
    ### END SOLUTION


def dequantize(q, scale, zero_point, axis: int | None = None) -> np.ndarray:
    """The floats scale * (q - zero_point) (float32) that the int8 codes q stand for.

    >>> dequantize(np.array([-128, 0, 127], dtype=np.int8), 0.5, -128).tolist()
    [0.0, 64.0, 127.5]
    """
    q = np.asarray(q)
    scale, zero_point = _qparams_like(q, scale, zero_point, axis)
    ### BEGIN SOLUTION
    return ((q.astype(np.int32) - zero_point) * scale).astype(np.float32)
    ### END SOLUTION

# %% [markdown]
# ### Test: quantize and dequantize

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-quantization-affine", "locked": true, "points": 3, "solution": false}
def test_unit_affine():
    codes = quantize(np.array([0.0, 1.0, -1.0, 0.3]), 0.1, 0)
    assert codes.dtype == np.int8, f"quantize should return int8 codes, got {codes.dtype}"
    assert codes.tolist() == [0, 10, -10, 3], f"round(x / 0.1) should give [0, 10, -10, 3], got {codes.tolist()}"
    shifted = quantize(np.array([0.0, 1.0, -1.0]), 0.1, 20).tolist()
    assert shifted == [20, 30, 10], (f"the zero point is ADDED to x / scale: 0.0 should become code 20, got {shifted}"
                                     + (" (the zero point was subtracted)" if shifted[0] == -20 else ""))
    ties = quantize(np.array([0.25, 0.75, 1.25, -0.25, -0.75]), 0.5, 0).tolist()
    assert ties == [0, 2, 2, 0, -2], (f"x / scale = 0.5, 1.5, 2.5, -0.5, -1.5 should round half to even (as np.round and "
                                     f"PyTorch do) to [0, 2, 2, 0, -2], got {ties}"
                                     + (": round, do not truncate" if ties == [0, 1, 2, 0, -1] else ""))
    odd = quantize(np.array([0.25, 0.75, -0.25]), 0.5, 5).tolist()
    assert odd == [6, 6, 4], (f"0.5 + 5, 1.5 + 5 and -0.5 + 5 should round to the even codes [6, 6, 4], got {odd}: add the "
                              "zero point before rounding (round(x / scale + zero_point))")
    clipped = quantize(np.array([100.0, -100.0, 12.8, -12.9]), 0.1, 0).tolist()
    assert clipped == [127, -128, 127, -128], (
        f"codes outside int8 should be clipped to 127 and -128, got {clipped}"
        + (": casting to int8 wraps around (200 -> -56), clip first" if clipped[0] not in (127, 255) else "")
        + (": the range is int8, -128..127, not uint8's 0..255" if min(clipped) >= 0 else ""))
    edge_scale = np.float32(0.01) / np.float32(127.5)  # a symmetric scale (§2): -0.01 sits at exactly -127.5 steps
    edge = int(quantize(np.float32(-0.01), edge_scale, 0))
    assert edge == -128, (f"-0.01 with scale 0.01 / 127.5 should give PyTorch's code -128, got {edge}: multiply by the "
                          "reciprocal (x * (1 / scale) is -127.5 in float32, x / scale is -127.49999)")
    truncated = quantize(np.array([0.9, -0.9]), 1.0, 0).tolist()
    assert truncated == [1, -1], f"0.9 and -0.9 should round to 1 and -1, got {truncated}: round, do not truncate"
    grid = np.arange(-2.0, 2.0, 0.013, dtype=np.float32)
    back = dequantize(quantize(grid, 0.02, -3), 0.02, -3)
    assert back.dtype == np.float32, f"dequantize should return float32, got {back.dtype}"
    assert np.max(np.abs(back - grid)) <= 0.01 + 1e-6, (
        f"inside the range, dequantize(quantize(x)) is within half a step (0.01) of x, got {np.max(np.abs(back - grid)):.4f}: "
        "dequantize is scale * (q - zero_point)")
    extremes = dequantize(np.array([-128, 127], dtype=np.int8), 1.0, 100).tolist()
    assert extremes == [-228.0, 27.0], \
        f"dequantize([-128, 127], scale 1, zero point 100) should be [-228, 27], got {extremes}: subtract in int32, not in int8"

    weight = np.array([[0.5, -8.0, 0.02], [-0.25, 4.0, -0.01]], dtype=np.float32)  # (in, out): one scale per column
    scales, zeros = np.array([0.25, 4.0, 0.01], dtype=np.float32), np.zeros(3, dtype=np.int32)
    per_column = quantize(weight, scales, zeros, axis=1)
    assert per_column.tolist() == [[2, -2, 2], [-1, 1, -1]], \
        f"with axis=1, column j uses scale[j]: expected [[2, -2, 2], [-1, 1, -1]], got {per_column.tolist()}"
    assert np.allclose(dequantize(per_column, scales, zeros, axis=1), weight), "dequantize with axis=1 should give the weight back"
    rows = quantize(weight, [0.5, 0.25], [1, -1], axis=0).tolist()
    assert rows == [[2, -15, 1], [-2, 15, -1]], f"with axis=0, row i uses scale[i] and zero_point[i]; got {rows}"
    for bad in [dict(scale=0.0, zero_point=0), dict(scale=0.1, zero_point=300), dict(scale=[0.1, 0.2], zero_point=[0, 0])]:
        try:
            quantize(weight, **bad)
        except ValueError:
            continue
        raise AssertionError(f"quantize(weight, {bad}) should raise ValueError")

test_unit_affine()
print("test_unit_affine: passed")

# %% [markdown]
# ## 2. Choosing the scale and the zero point
#
# Given a range $[\ell, h]$ of floats to cover, PyTorch's observers choose as follows.
#
# - First the range is **widened to include 0**: $\ell \leftarrow \min(\ell, 0)$,
#   $h \leftarrow \max(h, 0)$. Zero must be exactly a code: zero padding, ReLU's zeros and sparse
#   weights are exact zeros, and a zero that dequantizes to 0.003 shifts every sum.
# - **Asymmetric** (activations, e.g. after a ReLU, all $\ge 0$): spread the 255 steps over the whole
#   range, $s = (h - \ell)/255$, and put $\ell$ at code $-128$:
#   $z = \mathrm{clip}(-128 - \mathrm{round}(\ell / s),\, -128,\, 127)$.
# - **Symmetric** (weights, centred on 0): $z = 0$ and $s = \max(|\ell|, |h|) / 127.5$ (that is
#   $(q_{max} - q_{min})/2$, PyTorch's choice: the most negative weight uses code $-128$, the most
#   positive rounds to 127.5 and is clipped to 127). A zero point of 0 makes integer products simpler
#   (§5).
# - The scale is at least $\epsilon$ = `np.finfo(np.float32).eps`, so that a range of zeros still has one.
#
# The arithmetic is float32, as PyTorch's, so the scales agree to the last bit. `low` and `high`
# may be arrays (one range per channel); the results then have their shape.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "quantization-qparams", "locked": false, "solution": true}
#| export
EPS = np.finfo(np.float32).eps


def choose_qparams(low, high, symmetric: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The scale (float32) and zero point (int32) that map the range [low, high], widened to include 0, onto
    -128..127: asymmetric s = (high - low) / 255, z = -128 - round(low / s); symmetric s = max(|low|, |high|) / 127.5,
    z = 0; s at least EPS.

    >>> scale, zero_point = choose_qparams(0.0, 2.55)
    >>> float(scale), int(zero_point)
    (0.009999999776482582, -128)
    """
    low, high = np.asarray(low, dtype=np.float32), np.asarray(high, dtype=np.float32)
    if low.shape != high.shape or np.any(low > high) or not np.all(np.isfinite(low) & np.isfinite(high)):
        raise ValueError(f"a range needs finite low <= high of the same shape, got low {low} and high {high}")
    ### BEGIN SOLUTION
    low, high = np.minimum(low, np.float32(0)), np.maximum(high, np.float32(0))
    if symmetric:
        scale = np.maximum(np.maximum(-low, high) / np.float32((QMAX - QMIN) / 2), EPS)
        return scale, np.zeros(scale.shape, dtype=np.int32)
    scale = np.maximum((high - low) / np.float32(QMAX - QMIN), EPS)
    zero_point = np.clip(QMIN - np.round(low / scale), QMIN, QMAX).astype(np.int32)
    return scale, zero_point
    ### END SOLUTION

# %% [markdown]
# ### Test: choosing the scale and zero point

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-quantization-qparams", "locked": true, "points": 3, "solution": false}
def test_unit_qparams():
    scale, zero_point = choose_qparams(-1.0, 1.55)
    assert scale.dtype == np.float32 and zero_point.dtype == np.int32, \
        f"the scale should be float32 and the zero point int32, got {scale.dtype} and {zero_point.dtype}"
    assert np.isclose(scale, 0.01), f"asymmetric: the scale of [-1, 1.55] should be (high - low) / 255 = 0.01, got {scale}"
    assert zero_point == -28, (f"asymmetric: the zero point of [-1, 1.55] should be -128 - round(low / scale) = -28, got "
                               f"{zero_point}" + (" (the sign of round(low / scale) is flipped)" if zero_point == -228 or
                                                  zero_point == QMIN else ""))
    assert quantize(-1.0, scale, zero_point) == -128 and quantize(1.55, scale, zero_point) == 127, \
        "low should map to code -128 and high to 127"

    positive_scale, positive_zero = choose_qparams(0.5, 2.55)
    assert np.isclose(positive_scale, 0.01) and positive_zero == -128, (
        f"[0.5, 2.55] should be widened to [0, 2.55] (0 must be a code): scale 0.01, zero point -128, got "
        f"{positive_scale}, {positive_zero}")
    assert quantize(0.0, positive_scale, positive_zero) == positive_zero and dequantize(positive_zero, positive_scale, positive_zero) == 0, \
        "0.0 should be exactly the zero point's code"
    negative_scale, _ = choose_qparams(-2.55, -1.0)
    assert np.isclose(negative_scale, 0.01), f"[-2.55, -1] should be widened to [-2.55, 0]: scale 0.01, got {negative_scale}"

    sym_scale, sym_zero = choose_qparams(-0.5, 2.55, symmetric=True)
    assert sym_zero == 0, f"symmetric quantization has zero point 0, got {sym_zero}"
    assert sym_zero.dtype == np.int32, f"symmetric quantization's zero point is int32 too, got {sym_zero.dtype}"
    assert np.isclose(sym_scale, 0.02), (
        f"symmetric: the scale of [-0.5, 2.55] should be max(|low|, |high|) / 127.5 = 0.02 (PyTorch's (qmax - qmin) / 2), "
        f"got {sym_scale}" + (" (that is / 127)" if np.isclose(sym_scale, 2.55 / 127) else "")
        + (" (asymmetric scales span high - low; symmetric ones max(|low|, |high|))" if np.isclose(sym_scale, 3.05 / 127.5) else ""))

    wide_scale, _ = choose_qparams(-3.0, 0.5)
    assert np.isclose(wide_scale, 3.5 / 255), (
        f"asymmetric: the scale of [-3, 0.5] should be (high - low) / 255 = {3.5 / 255:.5f}, got {wide_scale}"
        + (" (the scale came from high alone, not high - low)" if np.isclose(wide_scale, 0.5 / 255) else "")
        + (" (the scale came from max(|low|, |high|), not high - low)" if np.isclose(wide_scale, 3.0 / 255) else ""))

    flat_scale, flat_zero = choose_qparams(0.0, 0.0)
    assert flat_scale == EPS and flat_zero == -128, \
        f"a range of zeros should get the smallest scale EPS (not 0 or nan) and zero point -128, got {flat_scale}, {flat_zero}"
    flat_scale, _ = choose_qparams(0.0, 0.0, symmetric=True)
    assert flat_scale == EPS, f"symmetric: a range of zeros (a weight channel of zeros) should get the smallest scale EPS too, got {flat_scale}"
    low, high = np.float32(-0.3), np.float32(1.0)
    expected = int(-128 - np.round(low / ((high - low) / np.float32(255))))  # -0.3 / scale = -58.8 steps: -128 + 59
    _, zero_point = choose_qparams(low, high)
    assert zero_point == expected, f"the zero point of [-0.3, 1] should be -128 - round(low / scale) = {expected}: round (-58.8 -> -59), do not truncate; got {zero_point}"

    scales, zeros = choose_qparams(np.array([-1.0, 0.0, -0.2]), np.array([1.0, 2.55, 0.1]), symmetric=True)
    assert scales.shape == (3,) and np.allclose(scales, [1 / 127.5, 0.02, 0.2 / 127.5]) and zeros.tolist() == [0, 0, 0], \
        f"one range per channel gives one scale per channel: expected {[1 / 127.5, 0.02, 0.2 / 127.5]}, got {scales}"
    try:
        choose_qparams(1.0, -1.0)
    except ValueError:
        pass
    else:
        raise AssertionError("choose_qparams(1.0, -1.0) should raise ValueError: low is above high")

test_unit_qparams()
print("test_unit_qparams: passed")

# %% [markdown]
# ## 3. Calibration: which range to cover
#
# A weight is known, so its range is its minimum and maximum. An activation is not: we **calibrate**
# by running a few batches through the float network and observing what each layer sees.
#
# **Min/max.** Cover everything observed: `tensor_range(x)` is $(\min x, \max x)$; with `axis`, one
# $(\min, \max)$ per entry along that axis (reduce over every *other* axis), for per-channel weights.
#
# **Least squared error.** One outlier stretches the min/max range, and then every ordinary value is
# rounded to a coarse step. Clipping the outlier costs more on that one value but less on all the
# others. `mse_range(x)` tries the ranges $[f\ell, fh]$ for $f = 1/n, 2/n, \dots, 1$ (`steps` = $n$)
# of the min/max range $[\ell, h]$, quantizes $x$ with each, and returns the range whose
# dequantized values have the smallest mean squared error $\overline{(\hat x - x)^2}$ (the first
# such range when several tie).
#
# At 8 bits the step is already fine, so clipping pays only when outliers are rare: the bulk's total
# error is the number of values times about $s^2/12$, an outlier's is the square of how far it is
# clipped. Two outliers at 24 and 30 standard deviations among 5 000 normal values keep the range
# almost whole (fraction 0.99); among 300 000 they are clipped (fraction 0.56), as the test below
# checks. With 4-bit codes, whose step is 17 times coarser, clipping pays far sooner.
#
# ```
# values:   ....::::|||||||||::::....                              *   (one outlier)
# min/max:  [-------------------------------------------------------]   coarse steps for everybody
# MSE:          [--------------------]                                 fine steps, the outlier clipped
# ```

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "quantization-calibration", "locked": false, "solution": true}
#| export
def tensor_range(x, axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) of x as float32, over all entries, or with `axis` one (min, max) per entry along that axis.

    >>> [a.tolist() for a in tensor_range(np.array([[1.0, -2.0], [3.0, 0.5]]), axis=1)]
    [[1.0, -2.0], [3.0, 0.5]]
    """
    x = np.asarray(_value(x), dtype=np.float32)
    if x.size == 0:
        raise ValueError(f"cannot take the range of an empty array of shape {x.shape}")
    ### BEGIN SOLUTION
    others = None if axis is None else tuple(i for i in range(x.ndim) if i != axis % x.ndim)
    return x.min(axis=others), x.max(axis=others)
    ### END SOLUTION


def mse_range(x, symmetric: bool = False, steps: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """The range [f * low, f * high], f in 1/steps, 2/steps, ..., 1 of the min/max range [low, high], with which
    quantizing x has the least mean squared error (the smallest f among ties)."""
    x = np.asarray(_value(x), dtype=np.float32)
    low, high = tensor_range(x)
    ### BEGIN SOLUTION
    best, best_error = (low, high), np.inf
    for fraction in np.arange(1, steps + 1, dtype=np.float32) / np.float32(steps):
        candidate = (low * fraction, high * fraction)
        scale, zero_point = choose_qparams(*candidate, symmetric=symmetric)
        error = np.mean((dequantize(quantize(x, scale, zero_point), scale, zero_point) - x) ** 2)
        if error < best_error:
            best, best_error = candidate, error
    return best
    ### END SOLUTION

# %% [markdown]
# ### Test: calibration

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-quantization-calibration", "locked": true, "points": 3, "solution": false}
def quantization_error(x, low, high, symmetric=False):
    """The mean squared error of x quantized with the range [low, high]."""
    scale, zero_point = choose_qparams(low, high, symmetric)
    return float(np.mean((dequantize(quantize(x, scale, zero_point), scale, zero_point) - x) ** 2))


def test_unit_calibration():
    batch = np.array([[[1.0, -2.0], [3.0, 0.5]], [[-1.0, 4.0], [0.0, 2.0]]], dtype=np.float32)  # (2, 2, 2)
    low, high = tensor_range(batch)
    assert np.shape(low) == np.shape(high) == (), \
        f"tensor_range over everything gives two numbers (shape ()), got shapes {np.shape(low)} and {np.shape(high)}: do not keep the reduced axes"
    assert (float(low), float(high)) == (-2.0, 4.0), f"tensor_range over everything should be (-2, 4), got ({low}, {high})"
    lows, highs = tensor_range(batch, axis=2)
    assert lows.shape == (2,) and lows.tolist() == [-1.0, -2.0] and highs.tolist() == [3.0, 4.0], (
        f"tensor_range(x, axis=2) should give one (min, max) per entry along axis 2, reducing over the OTHER axes: "
        f"([-1, -2], [3, 4]); got ({lows.tolist()}, {highs.tolist()})")
    lows, highs = tensor_range(batch, axis=-1)
    assert np.asarray(lows).tolist() == [-1.0, -2.0] and np.asarray(highs).tolist() == [3.0, 4.0], \
        f"tensor_range(x, axis=-1) is axis 2 here (a negative axis counts from the end): ([-1, -2], [3, 4]); got ({np.asarray(lows).tolist()}, {np.asarray(highs).tolist()})"
    lows, highs = tensor_range(batch, axis=0)
    assert lows.tolist() == [-2.0, -1.0] and highs.tolist() == [3.0, 4.0], \
        f"tensor_range(x, axis=0) should give ([-2, -1], [3, 4]), got ({lows.tolist()}, {highs.tolist()})"

    rng = np.random.default_rng(0)
    spiky = rng.standard_normal(300_000).astype(np.float32)
    spiky[:2] = [30.0, -24.0]  # two outliers among 300 000 ordinary values
    low, high = mse_range(spiky)
    minmax_error = quantization_error(spiky, -24.0, 30.0)
    chosen_error = quantization_error(spiky, low, high)
    assert high < 0.75 * 30 and low > 0.75 * -24, (
        f"with two outliers among 300 000 values, the least-error range should clip them, got [{float(low):.1f}, "
        f"{float(high):.1f}] (min/max is [-24, 30])")
    assert chosen_error < 0.75 * minmax_error, (
        f"mse_range should have a smaller squared error than min/max ({minmax_error:.5f}), got {chosen_error:.5f}: "
        "compare the dequantized values with x, not the codes")
    for fraction in [0.1, 0.2, 0.5, 0.6, 1.0]:
        other = quantization_error(spiky, -24.0 * fraction, 30.0 * fraction)
        assert chosen_error <= other + 1e-9, \
            f"the range at fraction {fraction} has a smaller error ({other:.5f}) than the one chosen ({chosen_error:.5f})"
    assert np.isclose(high / low, 30.0 / -24.0), "mse_range should shrink low and high by the same fraction"

    even = np.linspace(-1.0, 1.0, 1001, dtype=np.float32)
    low, high = mse_range(even, symmetric=True)
    assert high >= 0.9, f"without outliers, clipping costs more than it saves: the range should stay near [-1, 1], got high {high}"
    skewed = np.abs(rng.standard_normal(5000)).astype(np.float32)
    skewed[0] = 12.0  # one outlier; symmetric codes spend half their steps on negatives that never come
    fractions = np.arange(1, 101, dtype=np.float32) / np.float32(100)
    errors = []
    for fraction in fractions:  # the search, symmetric, in NumPy: s = f * max(|low|, |high|) / 127.5, z = 0
        step = np.float32(12.0) * fraction / np.float32(127.5)
        errors.append(np.mean((np.clip(np.round(skewed * (1 / step)), -128, 127) * step - skewed) ** 2))
    best = float(fractions[int(np.argmin(errors))])
    _, high = mse_range(skewed, symmetric=True)
    assert np.isclose(high, 12.0 * best), (f"mse_range(x, symmetric=True) should search symmetric ranges (choose_qparams(..., "
                                           f"symmetric=True)): the best fraction is {best}, high {12.0 * best:.3f}; got high {float(high):.3f}")
    half = mse_range(even, steps=2)
    assert np.isclose(half[1], 1.0), f"with steps=2 the candidates are fractions 0.5 and 1; 1 is better here, got {half}"

test_unit_calibration()
print("test_unit_calibration: passed")

# %% [markdown]
# ## 4. Fake quantization and the straight-through estimator
#
# Post-training quantization rounds a network that never saw rounding. **Quantization-aware
# training** lets it adapt: in the forward pass each weight is replaced by its quantized value,
# $\hat w = s\,(\mathrm{clip}(\mathrm{round}(w/s + z)) - z)$, still a float (*fake quantization*),
# so the loss sees the rounding; the float weight $w$ is what the optimizer updates.
#
# But rounding is a staircase: its derivative is 0 almost everywhere, and no gradient would reach $w$.
# The **straight-through estimator** (STE) pretends the staircase is the identity inside the range,
# and keeps clipping's true derivative outside it:
#
# $$\frac{\partial \hat w}{\partial w} \approx \begin{cases} 1 & \text{if } -128 \le \mathrm{round}(w/s + z) \le 127 \\
#   0 & \text{otherwise (clipped: moving } w \text{ changes nothing)} \end{cases}$$
#
# `fake_quantize` is one operation of module 05's graph, recorded through module 05's `record` (a
# graph node when the input is a Variable, a plain Tensor otherwise), with its forward value and its
# backward rule side by side. The scale and zero point are constants here, as in PyTorch's
# `torch.fake_quantize_per_tensor_affine` and `..._per_channel_affine` (which add the zero point
# after rounding: at an exact half with an odd zero point they can differ from §1 by one code).

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "quantization-fake", "locked": false, "solution": true}
#| export
def fake_quantize(x, scale, zero_point, axis: int | None = None):
    """dequantize(quantize(x)) in x's dtype, as one graph operation whose gradient is the straight-through
    estimator: g where round(x * (1 / scale) + zero_point) is within -128..127, 0 where it was clipped.

    >>> fake_quantize(Tensor(np.array([0.26, 1.0, 9.0], dtype=np.float32)), 0.5, 0).numpy().tolist()
    [0.5, 1.0, 9.0]
    """
    values = np.asarray(_value(x))
    ### BEGIN SOLUTION
    shaped_scale, shaped_zero = _qparams_like(values, scale, zero_point, axis)
    codes = np.round(values.astype(np.float32) * (1 / shaped_scale) + shaped_zero)
    inside = (codes >= QMIN) & (codes <= QMAX)
    value = dequantize(quantize(values, scale, zero_point, axis), scale, zero_point, axis).astype(values.dtype)
    return record(value, "FakeQuantize", (x, lambda g: g * inside))
    ### END SOLUTION

# %% [markdown]
# ### Test: fake quantization

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-quantization-fake", "locked": true, "points": 3, "solution": false}
def test_unit_fake_quantize():
    x = Variable(np.array([0.26, -0.74, 1.0, 70.0, -70.0], dtype=np.float32), requires_grad=True)
    out = fake_quantize(x, 0.5, 0)
    assert isinstance(out, Variable) and out.grad_fn is not None, \
        "fake_quantize of a Variable should record a graph node (record(...)); the graph is cut"
    assert out.dtype == np.float32, f"fake_quantize should keep x's dtype float32, got {out.dtype}"
    assert np.allclose(out.numpy(), [0.5, -0.5, 1.0, 63.5, -64.0]), \
        f"the value should be dequantize(quantize(x)) = [0.5, -0.5, 1, 63.5, -64], got {out.numpy()}"
    out.backward(np.array([1.0, 2.0, 3.0, 4.0, 5.0], dtype=np.float32))
    assert x.grad is not None and not np.allclose(x.grad[:3], 0), (
        "the gradient inside the range should pass straight through (the STE), not be rounding's derivative 0; "
        f"got {x.grad}")
    assert np.allclose(x.grad, [1.0, 2.0, 3.0, 0.0, 0.0]), (
        f"the straight-through gradient is g inside the range and 0 where the value was clipped: expected [1, 2, 3, 0, 0], "
        f"got {x.grad}" + (" (the STE must be clipped too)" if np.allclose(x.grad, [1, 2, 3, 4, 5]) else ""))

    edge = Variable(np.array([1.0, 60.0, -60.0, 58.5, -69.0], dtype=np.float32), requires_grad=True)
    fake_quantize(edge, 0.5, 10).backward(np.ones(5, dtype=np.float32))
    got = edge.grad.tolist()
    assert got == [1.0, 0.0, 1.0, 1.0, 1.0], (
        f"with scale 0.5 and zero point 10 the codes are 12, 130 (clipped), -110, 127 and -128: expected the gradient "
        f"[1, 0, 1, 1, 1], got {got}" + (": the range test must add the zero point" if got[1] == 1 else "")
        + (": codes -128 and 127 are inside the range" if got[3] == 0 or got[4] == 0 else ""))

    weight = Variable(np.array([[0.3, -2.0], [-0.6, 9.0]], dtype=np.float64), requires_grad=True)
    per_column = fake_quantize(weight, np.array([0.2, 0.05]), np.array([0, 0]), axis=1)
    assert per_column.dtype == np.float64, "fake_quantize should keep float64 as float64"
    assert np.allclose(per_column.numpy(), [[0.4, -2.0], [-0.6, 6.35]]), \
        f"per column (axis=1): expected [[0.4, -2.0], [-0.6, 6.35]], got {per_column.numpy()}"
    per_column.sum().backward()
    assert np.array_equal(weight.grad, [[1.0, 1.0], [1.0, 0.0]]), f"per column, 9.0 is clipped (9 / 0.05 = 180): got {weight.grad}"
    by_row = Variable(np.array([[0.3, 9.0], [-2.0, 0.6]]), requires_grad=True)
    fake_quantize(by_row, np.array([0.05, 0.2]), np.array([0, 0]), axis=0).sum().backward()
    assert np.array_equal(by_row.grad, [[1.0, 0.0], [1.0, 1.0]]), \
        f"per row (axis=0), row 0 has scale 0.05 and 9.0 is clipped (9 / 0.05 = 180): expected [[1, 0], [1, 1]], got {by_row.grad.tolist()}"
    assert type(fake_quantize(Tensor(np.ones(3, dtype=np.float32)), 0.1, 0)) is Tensor, \
        "fake_quantize of a plain Tensor should give a Tensor"
    with no_grad():
        assert fake_quantize(x, 0.5, 0).grad_fn is None, "under no_grad, fake_quantize should record nothing"

test_unit_fake_quantize()
print("test_unit_fake_quantize: passed")

# %% [markdown]
# ## 5. Integer arithmetic: int32 accumulation and requantization
#
# A quantized layer multiplies codes, not floats. With the input $x = s_x (q_x - z_x)$ and a weight
# column $w_j = s_{w,j}\, q_{w,\cdot j}$ (symmetric per channel: $z_w = 0$),
#
# $$y_j = \sum_k x_k w_{kj} = s_x s_{w,j} \underbrace{\sum_k (q_{x,k} - z_x)\, q_{w,kj}}_{a_j \text{, an integer}} .$$
#
# The sum $a_j$ is computed in **int32**: one product of two int8 codes reaches $128 \cdot 128 = 16384$,
# and 64 of them add up to a million. Hardware multiplies int8 pairs and adds into int32 registers;
# an int8 accumulator would overflow on the first product, an int16 one after two.
#
# The result has the scale $s_x s_{w,j}$. The next layer wants int8 codes at the output's own scale
# $s_y$ and zero point $z_y$: **requantize**,
#
# $$q_{y,j} = \mathrm{clip}\big(\mathrm{round}(a_j \cdot M_j) + z_y,\, -128,\, 127\big), \qquad M_j = \frac{s_x s_{w,j}}{s_y}.$$
#
# ($M_j$ is a float here; integer hardware stores it as an int32 and a shift, a detail that moves a
# result by at most one code.)

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "quantization-integer", "locked": false, "solution": true}
#| export
def integer_matmul(q_x: np.ndarray, x_zero_point, q_w: np.ndarray) -> np.ndarray:
    """(q_x - x_zero_point) @ q_w, exactly, in int32: q_x holds int8 codes (..., in), q_w symmetric int8 codes (in, out).

    >>> integer_matmul(np.array([[127, -128]], dtype=np.int8), -1, np.array([[127], [127]], dtype=np.int8)).tolist()
    [[127]]
    """
    ### BEGIN SOLUTION
    return (q_x.astype(np.int32) - np.int32(x_zero_point)) @ q_w.astype(np.int32)
    ### END SOLUTION


def requantize(accumulator: np.ndarray, multiplier, zero_point) -> np.ndarray:
    """int32 accumulators (..., out) -> int8 codes clip(round(accumulator * multiplier) + zero_point, -128, 127), with
    one multiplier per output channel (the last axis) or one for all.

    >>> requantize(np.array([1000, -30, 5000]), 0.01, 3).tolist()
    [13, 3, 53]
    """
    ### BEGIN SOLUTION
    codes = np.round(accumulator * np.asarray(multiplier, dtype=np.float64)) + zero_point
    return np.clip(codes, QMIN, QMAX).astype(np.int8)
    ### END SOLUTION

# %% [markdown]
# ### Test: integer arithmetic

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-quantization-integer", "locked": true, "points": 3, "solution": false}
def test_unit_integer():
    q_x = np.array([[127, -128, 5]], dtype=np.int8)
    q_w = np.array([[127, 1], [-128, 0], [0, 2]], dtype=np.int8)
    sums = integer_matmul(q_x, 0, q_w)
    assert sums.dtype == np.int32, f"accumulate in int32 (exact integers), got {sums.dtype}"
    assert sums.tolist() == [[127 * 127 + 128 * 128, 137]], (
        f"(q_x - 0) @ q_w should be [[32513, 137]], got {sums.tolist()}: accumulate in int32, int8 products overflow")
    shifted = integer_matmul(q_x, -3, q_w)
    assert shifted.tolist() == [[130 * 127 + 125 * 128, 130 + 16]], (
        f"subtract the input's zero point from q_x, in int32 (127 - (-3) = 130 overflows int8), before multiplying: "
        f"expected [[32510, 146]], got {shifted.tolist()}")
    rng = np.random.default_rng(0)
    big_x = rng.integers(-128, 128, (4, 64)).astype(np.int8)
    big_w = rng.integers(-128, 128, (64, 3)).astype(np.int8)
    exact = (big_x.astype(np.int64) - 7) @ big_w.astype(np.int64)
    assert np.array_equal(integer_matmul(big_x, 7, big_w), exact), \
        "64 products of int8 codes should add up exactly: accumulate in int32, int8 products overflow"

    codes = requantize(np.array([[1000, -30, 5000, -100000]], dtype=np.int32), 0.01, 3)
    assert codes.dtype == np.int8, f"requantize should return int8 codes, got {codes.dtype}"
    assert codes.tolist() == [[13, 3, 53, -128]], (
        f"round(a * M) + z, clipped: expected [[13, 3, 53, -128]], got {codes.tolist()}"
        + (": the multiplier is s_x s_w / s_y, so multiply by it" if codes[0, 0] == 127 else "")
        + (": clip to -128..127 before casting (casting wraps around)" if codes[0, 3] != -128 else ""))
    per_channel = requantize(np.array([[100, 100], [-50, 250]], dtype=np.int32), np.array([0.1, 0.02]), -5)
    assert per_channel.tolist() == [[5, -3], [-10, 0]], \
        f"one multiplier per output channel, along the last axis: expected [[5, -3], [-10, 0]], got {per_channel.tolist()}"
    assert requantize(np.array([25, 35]), 0.1, 0).tolist() == [2, 4], "requantize should round half to even (2.5 -> 2, 3.5 -> 4)"

test_unit_integer()
print("test_unit_integer: passed")

# %% [markdown]
# ## 6. Quantized `Linear` and `Conv2d`
#
# A quantized layer is made from a trained float layer and two calibrated ranges: the range of its
# input and the range of its output.
#
# - **Weights**: symmetric, per output channel. `Linear`'s weight is (in, out), so its output channels
#   run along axis 1; `Conv2d`'s is (out, in, kh, kw), axis 0. One scale per channel
#   (`weight_scale`, shape (out,)) from that channel's min/max, codes `qweight` in int8.
# - **Bias**: int32 at the accumulator's scale $s_x s_{w,j}$, `qbias = round(bias / (s_x s_w))`, so it is
#   added to $a_j$ before requantizing (a layer without bias gets zeros).
# - **Forward**: quantize the float input with the input's scale and zero point, accumulate in
#   int32, add `qbias`, requantize at the output's scale, dequantize. Taking and returning floats
#   keeps the layer a drop-in part of a `Sequential` (ReLU, pooling and Flatten work on the
#   dequantized values; on codes they would be `max(q, z)`, pooling and reshaping). An integer-only
#   engine passes the int8 codes from layer to layer instead, requantizing once where the next
#   layer's input scale differs from this layer's output scale; the quantize-dequantize form used
#   here is also how ONNX writes a quantized model (§8).
#
# The given base class `QuantizedLayer` keeps the input and output parameters and does the last
# steps (`_output`); you write how the weights are quantized (`__init__`) and the integer part of
# each forward pass. For the convolution, im2col works on the codes minus the zero point, so that
# its zero padding is a real 0 (padding the raw codes with 0 would add $-z_x$ at the borders):
#
# ```
# centred = q_x (int32) - z_x                 # (N, C, H, W), a real 0 is code 0 now
# cols = im2col(centred, ...)                 # (C kh kw, OH OW N), module 09
# a = integer_matmul(cols.T, 0, W.reshape(O, -1).T)   # (OH OW N, O): output channels last
# ```

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "quantization-layers", "locked": false, "solution": true}
#| export
class QuantizedLayer(Module):
    """What a quantized Linear and Conv2d share: int8 weights per output channel (`channel_axis` of the float
    weight), an int32 bias, and the input's and the output's scale and zero point from calibrated ranges."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, channel_axis: int, input_range, output_range):
        self.input_scale, self.input_zero_point = choose_qparams(*input_range)
        self.output_scale, self.output_zero_point = choose_qparams(*output_range)
        ### BEGIN SOLUTION
        self.weight_scale, zeros = choose_qparams(*tensor_range(weight, axis=channel_axis), symmetric=True)
        self.qweight = quantize(weight, self.weight_scale, zeros, axis=channel_axis)
        bias_scale = self.input_scale.astype(np.float64) * self.weight_scale
        self.qbias = np.zeros(len(bias_scale), dtype=np.int32) if bias is None else np.round(bias / bias_scale).astype(np.int32)
        ### END SOLUTION

    def _output(self, accumulator: np.ndarray) -> np.ndarray:
        """int32 sums (..., out) without bias -> floats on the output's int8 grid."""
        multiplier = self.input_scale.astype(np.float64) * self.weight_scale / self.output_scale
        codes = requantize(accumulator + self.qbias, multiplier, self.output_zero_point)
        return dequantize(codes, self.output_scale, self.output_zero_point)


class QuantizedLinear(QuantizedLayer):
    """A `Linear` layer in int8 (see QuantizedLayer): floats in, floats on the output's int8 grid out."""

    def __init__(self, layer: Linear, input_range, output_range):
        bias = None if layer.bias is None else layer.bias.numpy()
        super().__init__(layer.weight.numpy(), bias, 1, input_range, output_range)
        self.in_features, self.out_features = layer.in_features, layer.out_features

    def forward(self, x):
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(f"{self!r} expects inputs whose last axis has size {self.in_features}, got shape {x.shape}")
        q_x = quantize(x, self.input_scale, self.input_zero_point)
        ### BEGIN SOLUTION
        accumulator = integer_matmul(q_x, self.input_zero_point, self.qweight)
        ### END SOLUTION
        return Tensor(self._output(accumulator))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class QuantizedConv2d(QuantizedLayer):
    """A `Conv2d` layer in int8 (see QuantizedLayer), with the float layer's stride and padding."""

    def __init__(self, layer: Conv2d, input_range, output_range):
        bias = None if layer.bias is None else layer.bias.numpy()
        super().__init__(layer.weight.numpy(), bias, 0, input_range, output_range)
        self.in_channels, self.out_channels = layer.in_channels, layer.out_channels
        self.kernel_size, self.stride, self.padding = layer.kernel_size, layer.stride, layer.padding

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r} expects inputs of shape (N, {self.in_channels}, H, W), got {x.shape}")
        q_x = quantize(x, self.input_scale, self.input_zero_point)
        _, _, _, (oh, ow) = _geometry(q_x.shape, self.kernel_size, self.stride, self.padding)
        ### BEGIN SOLUTION
        centred = q_x.astype(np.int32) - self.input_zero_point
        cols = im2col(centred, self.kernel_size, self.stride, self.padding)
        accumulator = integer_matmul(cols.T, 0, self.qweight.reshape(self.out_channels, -1).T)
        ### END SOLUTION
        out = self._output(accumulator)  # (OH * OW * N, O)
        return Tensor(out.reshape(oh, ow, len(q_x), self.out_channels).transpose(2, 3, 0, 1))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

# %% [markdown]
# ### Test: quantized layers
#
# The reference is the computation a quantized layer stands for, done in floats: dequantize the
# quantized input and weights, apply the float layer, quantize at the output's scale. Our integer
# path must give the same codes, up to one code where the float reference rounds a value that lies
# almost exactly on a half.

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-quantization-layers", "locked": true, "points": 4, "solution": false}
def reference_output(layer, float_op, x, weight_axis):
    """dequantize -> float op -> quantize -> dequantize, with the quantized layer's own parameters."""
    x_hat = dequantize(quantize(x, layer.input_scale, layer.input_zero_point), layer.input_scale, layer.input_zero_point)
    zeros = np.zeros(len(layer.weight_scale), dtype=np.int32)
    w_hat = dequantize(layer.qweight, layer.weight_scale, zeros, axis=weight_axis).astype(np.float64)
    out = float_op(x_hat.astype(np.float64), w_hat)
    return dequantize(quantize(out, layer.output_scale, layer.output_zero_point), layer.output_scale, layer.output_zero_point)


def test_unit_quantized_layers():
    rng = np.random.default_rng(0)
    linear = Linear(6, 4, rng=rng)
    linear.bias = Parameter(rng.uniform(-0.5, 0.5, 4).astype(np.float32))
    linear.weight.numpy()[:, 3] *= 0.01  # one output channel with tiny weights: per-channel scales matter
    x = rng.uniform(-1.0, 2.0, (5, 6)).astype(np.float32)
    with no_grad():
        float_out = linear(Tensor(x)).numpy()
    unbiased = QuantizedLinear(Linear(6, 4, bias=False, rng=rng), tensor_range(x), tensor_range(float_out))
    assert unbiased.weight_scale.shape == (4,), (
        f"one weight scale per OUTPUT channel: Linear's weight is (in, out), so per channel is axis 1, shape (4,); "
        f"got {unbiased.weight_scale.shape}")
    assert unbiased.qbias.tolist() == [0, 0, 0, 0], f"a layer without bias should get qbias zeros, got {unbiased.qbias}"
    layer = QuantizedLinear(linear, tensor_range(x), tensor_range(float_out))
    assert layer.qweight.dtype == np.int8 and layer.qweight.shape == (6, 4), \
        f"qweight should be int8 of the weight's shape (6, 4), got {layer.qweight.dtype} {layer.qweight.shape}"
    zeros = np.zeros(4, dtype=np.int32)
    restored = dequantize(layer.qweight, layer.weight_scale, zeros, axis=1)
    assert np.all(np.abs(restored - linear.weight.numpy()) <= layer.weight_scale / 2 + 1e-7), (
        "weights should be symmetric per output channel (zero point 0): dequantize(qweight, weight_scale, 0, axis=1) "
        "should be within half a step of the float weight")
    assert np.abs(layer.qweight.astype(np.int32)).max(axis=0).min() >= 127, \
        "each output channel's largest weight should use code 127 or -128: choose the scale per channel from its own range"
    assert layer.qbias.dtype == np.int32, f"the bias should be int32 (it is added to int32 sums), got {layer.qbias.dtype}"
    out = layer(Tensor(x))
    assert type(out) is Tensor and out.shape == (5, 4), f"QuantizedLinear should return a Tensor (5, 4), got {type(out).__name__} {out.shape}"
    expected = reference_output(layer, lambda a, w: a @ w + linear.bias.numpy(), x, 1)
    step = float(layer.output_scale)
    assert np.max(np.abs(out.numpy() - expected)) <= step * 1.001, (
        f"QuantizedLinear should equal dequantize -> float Linear -> quantize within one output step ({step:.4f}), got "
        f"{np.max(np.abs(out.numpy() - expected)):.4f} off: quantize the bias at input_scale * weight_scale, the "
        "accumulator's scale, requantize with input_scale * weight_scale / output_scale, and subtract the input's zero point "
        "from its codes")
    assert np.max(np.abs(out.numpy() - float_out)) < 0.05, "the int8 Linear should stay close to the float one"

    conv = Conv2d(3, 5, 3, padding=1, stride=(1, 2), rng=rng)
    images = rng.uniform(0.2, 1.5, (2, 3, 6, 7)).astype(np.float32)  # all positive: the zero point is far from 0
    with no_grad():
        float_images = conv(Tensor(images)).numpy()
    assert QuantizedConv2d(Conv2d(3, 5, 3, bias=False), tensor_range(images), tensor_range(float_images)).weight_scale.shape == (5,), \
        "Conv2d's weight is (out, in, kh, kw): one scale per output channel along axis 0"
    qconv = QuantizedConv2d(conv, tensor_range(images), tensor_range(float_images))
    assert qconv.weight_scale.shape == (5,), \
        f"Conv2d's weight is (out, in, kh, kw): one scale per output channel along axis 0, shape (5,); got {qconv.weight_scale.shape}"
    out = qconv(Tensor(images))
    assert out.shape == (2, 5, 6, 4), f"QuantizedConv2d should keep the layer's geometry: expected (2, 5, 6, 4), got {out.shape}"
    expected = reference_output(qconv, lambda a, w: conv2d(Tensor(a), Tensor(w), Tensor(conv.bias.numpy().astype(np.float64)),
                                                           conv.stride, conv.padding).numpy(), images, 0)
    step = float(qconv.output_scale)
    worst = np.abs(out.numpy() - expected)
    assert worst[:, :, 1:-1, 1:-1].max() <= step * 1.001, \
        (f"QuantizedConv2d disagrees with the float reference inside the image by {worst[:, :, 1:-1, 1:-1].max():.4f} (> one step): "
         "the sums are cols.T @ W.reshape(O, -1).T, each output channel's filter a column")
    assert worst.max() <= step * 1.001, (
        f"QuantizedConv2d is off by {worst.max():.4f} at the border: pad with a real zero, i.e. subtract the input's zero "
        "point BEFORE im2col pads")

test_unit_quantized_layers()
print("test_unit_quantized_layers: passed")

# %% [markdown]
# ## 7. Quantizing a trained network
#
# `quantize_model(model, calibration, method)` walks a `Sequential` in order, feeding a calibration
# batch of floats through the **float** network. Each `Linear` and `Conv2d` is replaced by its
# quantized version, made from the range of **its own input** (what arrives at that layer, after
# the layers before it) and of its own output, by `tensor_range` (`method="minmax"`) or `mse_range`
# (`method="mse"`); every other layer (ReLU, pooling, Flatten) is kept. The float model is left
# unchanged.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "quantization-model", "locked": false, "solution": true}
#| export
QUANTIZED = {Linear: QuantizedLinear, Conv2d: QuantizedConv2d}


def quantize_model(model: Sequential, calibration, method: str = "minmax") -> Sequential:
    """A new Sequential with each Linear and Conv2d of `model` replaced by its quantized version, calibrated on the
    float activations of `calibration` (a batch of inputs) with `tensor_range` ("minmax") or `mse_range` ("mse")."""
    observers = {"minmax": tensor_range, "mse": mse_range}
    if method not in observers:
        raise ValueError(f"method must be one of {sorted(observers)}, got {method!r}")
    if not isinstance(model, Sequential):
        raise TypeError(f"quantize_model needs a Sequential, got {type(model).__name__}")
    observe = observers[method]
    x = Tensor(np.asarray(_value(calibration), dtype=np.float32))
    layers = []
    with no_grad():
        for layer in model.layers:
            ### BEGIN SOLUTION
            y = Tensor(layer(x).numpy())
            quantized = QUANTIZED.get(type(layer))
            layers.append(layer if quantized is None else quantized(layer, observe(x), observe(y)))
            x = y
            ### END SOLUTION
    return Sequential(*layers)

# %% [markdown]
# ### Test: quantizing a model

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-quantization-model", "locked": true, "points": 3, "solution": false}
def test_unit_quantize_model():
    rng = np.random.default_rng(1)
    model = Sequential(Linear(8, 16, rng=rng), ReLU(), Linear(16, 3, rng=rng))
    calibration = rng.standard_normal((64, 8)).astype(np.float32)
    quantized = quantize_model(model, calibration)
    kinds = [type(layer).__name__ for layer in quantized.layers]
    assert kinds == ["QuantizedLinear", "ReLU", "QuantizedLinear"], f"each Linear should be replaced, the ReLU kept; got {kinds}"
    assert type(model.layers[0]) is Linear, "quantize_model should leave the float model unchanged"
    with no_grad():
        hidden = model.layers[0](Tensor(calibration)).numpy()
        after_relu = np.maximum(hidden, 0)
    for index, (seen, made) in enumerate([(calibration, hidden), (after_relu, None)]):
        expected_scale, expected_zero = choose_qparams(*tensor_range(seen))
        got = quantized.layers[2 * index]
        assert np.isclose(got.input_scale, expected_scale) and got.input_zero_point == expected_zero, (
            f"layer {2 * index}'s input scale and zero point should come from the range of that layer's own input "
            f"(after the layers before it), {expected_scale:.5f} and {expected_zero}; got {got.input_scale:.5f} and "
            f"{got.input_zero_point}: calibrate on the right tensor")
    out_scale, out_zero = choose_qparams(*tensor_range(hidden))
    assert np.isclose(quantized.layers[0].output_scale, out_scale) and quantized.layers[0].output_zero_point == out_zero, \
        "layer 0's output scale should come from the range of its output"
    with no_grad():
        difference = np.abs(quantized(Tensor(calibration)).numpy() - model(Tensor(calibration)).numpy()).max()
    assert difference < 0.1, f"the quantized model should stay close to the float one, got a difference of {difference:.3f}"
    lumpy = np.ones((64, 8), dtype=np.float32)
    lumpy[0, 0] = 1 / 0.99  # one value 1% above the others: the least-error range (fraction 0.99) puts 1.0 on a code
    by_mse = quantize_model(model, lumpy, method="mse").layers[0]
    mse_scale, _ = choose_qparams(*mse_range(lumpy))
    assert np.isclose(by_mse.input_scale, mse_scale), \
        f"method='mse' should calibrate with mse_range: input scale {float(mse_scale):.5f}, got {float(by_mse.input_scale):.5f}"
    conv = Sequential(Conv2d(1, 2, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2), Flatten(), Linear(8, 2, rng=rng))
    kinds = [type(layer).__name__ for layer in quantize_model(conv, rng.standard_normal((4, 1, 4, 4))).layers]
    assert kinds == ["QuantizedConv2d", "ReLU", "MaxPool2d", "Flatten", "QuantizedLinear"], f"a CNN quantizes too; got {kinds}"

test_unit_quantize_model()
print("test_unit_quantize_model: passed")

# %% [markdown]
# ### The digits MLP and CNN in int8
#
# Module 08's MLP (15 epochs) and module 09's CNN (3 epochs, as there), trained in a few seconds, then
# quantized with 256 training images for calibration (never the test images: what we measure must
# not be what we tuned on).

# %%
digits = load_digits_dataset()
standardize = Standardizer(digits.x_train)
train_x, test_x = standardize(digits.x_train), standardize(digits.x_test)

# %%
def train(model, inputs, epochs):
    trainer = Trainer(model, Adam(model.parameters(), lr=3e-3), CrossEntropyLoss())
    trainer.fit(DataLoader(inputs, digits.y_train, batch_size=32, shuffle=True, seed=0), epochs=epochs)
    return model


def accuracy_of(model, inputs) -> float:
    with no_grad():
        return float(np.mean(model(Tensor(inputs)).numpy().argmax(axis=1) == digits.y_test))


rng = np.random.default_rng(0)
mlp = train(Sequential(Linear(64, 128, rng=rng), ReLU(), Linear(128, 10, rng=rng)), train_x, epochs=15)
cnn = train(Sequential(Conv2d(1, 8, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2),
                       Conv2d(8, 16, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2), Flatten(), Linear(64, 10, rng=rng)),
            train_x.reshape(-1, 1, 8, 8), epochs=3)

# %%
calibration = train_x[:256]
models = {"MLP": (mlp, test_x, calibration), "CNN": (cnn, test_x.reshape(-1, 1, 8, 8), calibration.reshape(-1, 1, 8, 8))}
print(f"{'model':6} {'float':>7} {'int8 minmax':>12} {'int8 mse':>9}")
for name, (model, inputs, calibrate_on) in models.items():
    accuracies = [accuracy_of(model, inputs)] + [accuracy_of(quantize_model(model, calibrate_on, method), inputs)
                                                 for method in ("minmax", "mse")]
    print(f"{name:6} " + " ".join(f"{value:>{width}.1%}" for value, width in zip(accuracies, (7, 12, 9))))

# %% [markdown]
# ### Quantization-aware fine-tuning, in a few lines
#
# With `fake_quantize`, a layer can train while seeing its int8 weights: `FakeQuantLinear` below
# computes with the fake-quantized weight (per output channel, scales from the current weights,
# treated as constants), and the straight-through gradient updates the float weight. One epoch of
# fine-tuning, then `quantize_model` as before. On a network this small post-training quantization
# already loses little, so expect the two int8 accuracies to be close; the technique earns its keep
# at 4 bits and below, where rounding is coarse.

# %%
class FakeQuantLinear(Module):
    """A Linear layer whose forward pass uses its weight fake-quantized per output channel (symmetric)."""

    def __init__(self, layer: Linear):
        self.layer = layer

    def forward(self, x):
        weight = self.layer.weight
        scale, zero_point = choose_qparams(*tensor_range(weight, axis=1), symmetric=True)
        return x @ fake_quantize(weight, scale, zero_point, axis=1) + self.layer.bias


tuned = Sequential(Linear(64, 128), ReLU(), Linear(128, 10))
tuned.load_state_dict(mlp.state_dict())
train(Sequential(*[FakeQuantLinear(layer) if isinstance(layer, Linear) else layer for layer in tuned.layers]), train_x, epochs=1)
print(f"int8 after post-training quantization {accuracy_of(quantize_model(mlp, calibration), test_x):.1%}, "
      f"after one epoch of quantization-aware fine-tuning {accuracy_of(quantize_model(tuned, calibration), test_x):.1%}")

# %% [markdown]
# ## 8. Leaving the course: ONNX
#
# A model is deployed with an inference engine, not with the code that trained it. **ONNX** is the
# exchange format those engines read (ONNX Runtime, TensorRT, OpenVINO, phone runtimes): a graph of
# standard operators with the weights inside. `to_onnx` (given) writes one of our `Sequential`s with
# `onnx.helper`, layer by layer:
#
# | tinytorch | ONNX |
# |---|---|
# | `Linear` (weight (in, out)) | `MatMul` with the weight as it is, then `Add` of the bias |
# | `Conv2d`, `MaxPool2d`, `ReLU`, `Flatten` | `Conv`, `MaxPool`, `Relu`, `Flatten` (same layouts as PyTorch's) |
# | `QuantizedLinear`, `QuantizedConv2d` | the same, wrapped in `QuantizeLinear` / `DequantizeLinear` pairs |
#
# The quantized layers are written in ONNX's **QDQ** form, which says exactly what §6 computes: the
# input is quantized and dequantized with the input's scale and zero point, the int8 weights are
# stored as int8 and dequantized per output channel, the bias is stored as int32 at the
# accumulator's scale, and the output is quantized with the output's parameters. An engine that
# sees this pattern replaces it by its integer kernels (ONNX Runtime's `QLinearMatMul`,
# `QLinearConv`); one that does not still computes the same numbers in floats. ONNX rounds
# `QuantizeLinear` half to even too; it adds the zero point after rounding, so at an exact half with
# an odd zero point a code can differ by one from ours (§1): predictions are compared, not codes.
#
# `onnx` is imported only when `to_onnx` runs (`pip install onnx onnxruntime`): `tinytorch` itself
# needs only NumPy.

# %%
#| export
ONNX_OPSET = 17


class _OnnxGraph:
    """The nodes and weights of an ONNX graph under construction, one tinytorch layer at a time."""

    def __init__(self):
        from onnx import helper, numpy_helper
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.weights = [], []

    def weight(self, name: str, array) -> str:
        self.weights.append(self.numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs: list, output: str, **attributes) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def quantize_dequantize(self, x: str, scale, zero_point, name: str) -> str:
        """x through QuantizeLinear and DequantizeLinear with one scale and zero point (an activation)."""
        parameters = [self.weight(f"{name}_scale", np.float32(scale)), self.weight(f"{name}_zero_point", np.int8(zero_point))]
        return self.node("DequantizeLinear", [self.node("QuantizeLinear", [x, *parameters], f"{name}_q"), *parameters], f"{name}_dq")

    def add_layer(self, layer, x: str, name: str) -> str:
        """The nodes of `layer` applied to the tensor named x; returns the name of its output."""
        if isinstance(layer, QuantizedLayer):
            x = self.quantize_dequantize(x, layer.input_scale, layer.input_zero_point, f"{name}_input")
            axis = 1 if isinstance(layer, QuantizedLinear) else 0
            zeros = np.zeros(len(layer.weight_scale), dtype=np.int8)
            weight = self.node("DequantizeLinear", [self.weight(f"{name}_qweight", layer.qweight),
                                                    self.weight(f"{name}_weight_scale", layer.weight_scale),
                                                    self.weight(f"{name}_weight_zero_point", zeros)], f"{name}_weight", axis=axis)
            bias_scale = (layer.input_scale.astype(np.float64) * layer.weight_scale).astype(np.float32)
            bias = self.node("DequantizeLinear", [self.weight(f"{name}_qbias", layer.qbias),
                                                  self.weight(f"{name}_bias_scale", bias_scale)], f"{name}_bias", axis=0)
            y = self._affine(layer, x, weight, bias, name)
            return self.quantize_dequantize(y, layer.output_scale, layer.output_zero_point, f"{name}_output")
        if isinstance(layer, (Linear, Conv2d)):
            bias = None if layer.bias is None else self.weight(f"{name}_bias", layer.bias.numpy())
            return self._affine(layer, x, self.weight(f"{name}_weight", layer.weight.numpy()), bias, name)
        if isinstance(layer, ReLU):
            return self.node("Relu", [x], f"{name}_relu")
        if isinstance(layer, MaxPool2d):
            return self.node("MaxPool", [x], f"{name}_maxpool", kernel_shape=list(layer.kernel_size), strides=list(layer.stride))
        if isinstance(layer, Flatten):
            return self.node("Flatten", [x], f"{name}_flatten", axis=1)
        raise TypeError(f"to_onnx cannot export a {type(layer).__name__} (layer {name[1:]})")

    def _affine(self, layer, x: str, weight: str, bias: str | None, name: str) -> str:
        """x @ weight + bias (Linear's layout, weight (in, out)) or the convolution of x with weight, plus bias."""
        if isinstance(layer, (Linear, QuantizedLinear)):
            y = self.node("MatMul", [x, weight], f"{name}_matmul")
            return y if bias is None else self.node("Add", [y, bias], f"{name}_add")
        (ph, pw) = layer.padding
        return self.node("Conv", [x, weight] + ([] if bias is None else [bias]), f"{name}_conv",
                         kernel_shape=list(layer.kernel_size), strides=list(layer.stride), pads=[ph, pw, ph, pw])


def to_onnx(model: Sequential, input_shape: tuple, path=None):
    """The ONNX model (an `onnx.ModelProto`) of `model`, a Sequential of Linear, Conv2d, ReLU, MaxPool2d, Flatten
    and their quantized versions, with float32 input "input" of shape (batch, *input_shape[1:]) (any batch size)
    and output "logits"; checked by `onnx.checker` and written to `path` when given."""
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: `pip install onnx`") from None
    if not isinstance(model, Sequential):
        raise TypeError(f"to_onnx needs a Sequential, got {type(model).__name__}")
    graph = _OnnxGraph()
    x = "input"
    for index, layer in enumerate(model.layers):
        x = graph.add_layer(layer, x, f"l{index}")
    graph.node("Identity", [x], "logits")
    helper = graph.helper
    inputs = [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["batch", *input_shape[1:]])]
    outputs = [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["batch", "classes"])]
    proto = helper.make_model(helper.make_graph(graph.nodes, "tinytorch", inputs, outputs, graph.weights),
                              opset_imports=[helper.make_opsetid("", ONNX_OPSET)], producer_name="tinytorch")
    proto.ir_version = 9  # what ONNX Runtime 1.18 and later read
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        onnx.save(proto, str(path))
    return proto

# %% [markdown]
# Exporting the digits MLP of §7 in int8 and running it with ONNX Runtime takes four lines; they are
# not run here, because importing `onnx` alone takes seconds, longer than a graded cell may. The
# package test `tests/test_quantization.py` runs exactly this for the MLP and the CNN, float and int8,
# and checks the file with `onnx.checker`, the float logits against ours within 1e-4 and the int8
# predicted classes on at least 99.5% of the test images (all of them, at the time of writing).
#
# ```python
# import onnxruntime
# to_onnx(quantize_model(mlp, calibration), test_x.shape, "digits-int8.onnx")
# session = onnxruntime.InferenceSession("digits-int8.onnx", providers=["CPUExecutionProvider"])
# logits = session.run(["logits"], {"input": test_x})[0]
# ```

# %% [markdown]
# ## 9. Systems analysis: bytes, accuracy and time
#
# **Size.** The float MLP saved by module 08's `save_checkpoint`, and the int8 one saved with the
# same `np.savez`: int8 weights, int32 biases, and the float32 scales and zero points (one per output
# channel and per layer). The bytes are those of the files.

# %%
def quantized_arrays(model: Sequential) -> dict:
    """Everything a quantized model needs at inference, by layer index."""
    arrays = {}
    for index, layer in enumerate(model.layers):
        if isinstance(layer, QuantizedLayer):
            for name in ("qweight", "qbias", "weight_scale", "input_scale", "input_zero_point", "output_scale",
                         "output_zero_point"):
                arrays[f"{index}.{name}"] = getattr(layer, name)
    return arrays


print(f"{'model':6} {'weights float':>14} {'weights int8':>13} {'ratio':>6} {'file float':>11} {'file int8':>10} {'ratio':>6}")
with tempfile.TemporaryDirectory() as folder:
    for name, (model, _, calibrate_on) in models.items():
        quantized = quantize_model(model, calibrate_on)
        float_weights = sum(layer.weight.numpy().nbytes for layer in model.layers if isinstance(layer, (Linear, Conv2d)))
        int8_weights = sum(layer.qweight.nbytes for layer in quantized.layers if isinstance(layer, QuantizedLayer))
        float_path = save_checkpoint(Path(folder) / f"{name}.npz", model)
        int8_path = Path(folder) / f"{name}-int8.npz"
        np.savez(int8_path, **quantized_arrays(quantized))
        float_bytes, int8_bytes = os.path.getsize(float_path), os.path.getsize(int8_path)
        print(f"{name:6} {float_weights:>14,} {int8_weights:>13,} {float_weights / int8_weights:>5.2f}x "
              f"{float_bytes:>11,} {int8_bytes:>10,} {float_bytes / int8_bytes:>5.2f}x")

# %% [markdown]
# The weights shrink exactly 4x. The files shrink less: biases stay 32-bit, each channel keeps a
# float32 scale, and each array of an `.npz` carries a few hundred bytes of headers (its name twice
# in the zip directory, NumPy's header), a fixed cost that weighs most in a small model such as this
# CNN. For a model of millions of weights the file ratio approaches the weights' 4x.
#
# **Time.** The same forward pass over the test set, float32 against int8, and underneath it the
# one matrix product that dominates, in float32 and in int32 (BLAS held to one thread, as in module
# 09, so both run on one core).

# %%
from threadpoolctl import threadpool_limits  # noqa: E402  (comes with scikit-learn, as module 09 notes)

quantized_mlp = quantize_model(mlp, calibration)
codes = np.random.default_rng(0).integers(-128, 128, (256, 256)), np.random.default_rng(1).integers(-128, 128, (256, 256))
as_float = [a.astype(np.float32) for a in codes]
as_int = [a.astype(np.int32) for a in codes]
with threadpool_limits(1, "blas"), no_grad():
    rows = [("MLP forward, 360 images", best_time(lambda: mlp(Tensor(test_x)), 20),
             best_time(lambda: quantized_mlp(Tensor(test_x)), 20)),
            ("matmul 256x256 @ 256x256", best_time(lambda: as_float[0] @ as_float[1], 20),
             best_time(lambda: as_int[0] @ as_int[1], 5))]
print(f"{'work':26} {'float32 (ms)':>13} {'int8/int32 (ms)':>16} {'int / float':>12}")
for label, float_time, int_time in rows:
    print(f"{label:26} {float_time * 1e3:>13.3f} {int_time * 1e3:>16.3f} {int_time / float_time:>11.1f}x")
ratio = rows[1][2] / rows[1][1]
print(f"On this machine an int32 matrix product takes {ratio:.1f}x the time of a float32 one: "
      + ("integers are slower here, as expected without an integer BLAS." if ratio > 1
         else "integers are not slower here, an unusual NumPy build."))

# %% [markdown]
# Read the ratios above. NumPy sends float32 products to an optimized BLAS (blocked for the caches,
# vectorized, several multiply-adds per cycle) but integer products to its own generic loop; where
# the int32 product takes longer than the float32 one (a ratio above 1x), the int8 network cannot be
# faster on NumPy however small its numbers, and its quantize, requantize and dequantize steps add
# work on top. The savings are real where the hardware and the kernels are made
# for them: int8 dot-product instructions (x86 VNNI, Arm's SDOT), fbgemm and QNNPACK on CPUs,
# ONNX Runtime, TensorRT and phone NPUs do four times as many int8 multiply-adds per instruction as
# float32 ones and move a quarter of the bytes. What NumPy shows honestly here is the size, the
# accuracy, and the arithmetic those kernels perform.

# %% [markdown]
# ## 10. Reflection
#
# Answer in a sentence or three each.

# %% [markdown]
# **Q1.** Weights are quantized symmetrically per output channel, activations asymmetrically per
# tensor. Why each choice? What would go wrong with one symmetric scale for the output of a ReLU?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-quantization-schemes", "locked": false, "points": 2, "solution": true}
# Weights are centred on zero, so a symmetric range wastes little, and a zero point of 0 keeps the
# integer product simple (no correction term for the weight's zero point). Different output channels
# have very different weight sizes, so one scale per channel keeps small channels from being rounded
# to a few codes. Activations are produced on the fly, one per tensor is what kernels handle cheaply,
# and after a ReLU they are all >= 0: a symmetric range would spend the 128 negative codes on values
# that never occur, doubling the step (halving the resolution).

# %% [markdown]
# **Q2.** Compare the int8 and float times measured above. Explain them, and say what an engine
# needs for int8 to be faster than float32.

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-quantization-speed", "locked": false, "points": 2, "solution": true}
# NumPy multiplies float32 matrices with an optimized BLAS but integer matrices with a generic loop,
# and our layers add quantize, requantize and dequantize passes over the data. An engine needs
# integer kernels that use the hardware's int8 dot-product instructions (VNNI, SDOT, tensor cores),
# keep activations as int8 between layers (fusing requantization into the product) and so move a
# quarter of the bytes: then int8 is faster and uses less energy.

# %% [markdown]
# **Q3.** When would you calibrate with the least squared error rather than min/max, and what is
# the risk of calibrating on too few or the wrong images?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-quantization-calibration", "locked": false, "points": 2, "solution": true}
# When a tensor has rare large values (outliers in activations, a few huge weights): min/max lets
# them set a coarse step for everyone, while the least-error range clips them and resolves the bulk
# finely. With too few or unrepresentative images the observed ranges are wrong: too narrow and real
# inputs are clipped, too wide and resolution is wasted; calibrating on the test set would also make
# the measured accuracy optimistic.

# %% [markdown]
# ## Summary
#
# INT8 quantization stores $x \approx s\,(q - z)$: a scale and a zero point per tensor or per channel,
# chosen from a range that includes zero, observed by min/max or by the least squared error. Fake
# quantization with a straight-through gradient lets training see the rounding. A quantized layer
# multiplies int8 codes, accumulates exactly in int32, adds an int32 bias and requantizes at its
# output's scale; `quantize_model` turns a trained `Sequential` into one, and `to_onnx` writes it in
# the format inference engines read. The digits MLP and CNN keep their accuracy in a quarter of the
# weight bytes; in NumPy, without an integer BLAS, int8 costs time, which dedicated int8 kernels win
# back on hardware made for them. Export with `tito module complete 14_quantization`.
