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
# # Convolutions: layers that see images as images
#
# The MLP of module 08 flattens an 8 x 8 digit into 64 numbers and forgets which pixels were
# neighbours. A **convolutional layer** keeps the picture: it slides a small learned filter over the
# image and computes, at every position, one weighted sum of the pixels under the filter. The same few
# weights are used everywhere, so a stroke is detected wherever it appears, with far fewer parameters
# than a dense layer.
#
# ```
# x (N, 1, 8, 8) -> Conv2d(1, 16, 3, padding=1) -> ReLU -> MaxPool2d(2)   -> (N, 16, 4, 4)
#                -> Conv2d(16, 32, 3, padding=1) -> ReLU -> MaxPool2d(2)  -> (N, 32, 2, 2)
#                -> Flatten -> Linear(128, 10)                            -> logits (N, 10)
# ```
#
# This module builds it in three steps: the definition as plain loops (§1), the same computation
# as one matrix multiplication, *im2col* (§2), and its backward pass, *col2im* (§3). On top sit the
# layers `Conv2d`, `MaxPool2d` and `AvgPool2d` (§4, §5), with PyTorch's conventions, so a network
# written here reads like one written in PyTorch.
#
# **Objectives.** By the end of this module you can:
#
# - compute a convolution's output size, and write the convolution as loops straight from its definition;
# - turn it into one matrix multiplication with im2col, and write its adjoint, col2im, for the backward pass;
# - make `conv2d` one operation of module 05's graph, and build the `Conv2d` and pooling layers on it;
# - train a small CNN with module 08's `Trainer`, and measure what im2col costs in time and memory.
#
# | You write here | It becomes | Used by |
# |---|---|---|
# | this notebook, `convolutions.ipynb` | `tinytorch.core.convolutions` | `tito milestone cnn` |

# %%
#| default_exp core.convolutions

# %%
#| export
from __future__ import annotations

import math

import numpy as np

from tinytorch.core.autograd import _value, record
from tinytorch.core.layers import Module
from tinytorch.core.operations import Parameter

# %%
# The rest of the stack, for the examples and tests below (the exported code does not need it).
import tempfile
import time
from pathlib import Path

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import Variable, no_grad
from tinytorch.core.layers import Flatten, Linear, Sequential
from tinytorch.core.operations import gradcheck
from tinytorch.core.tensor import Tensor, best_time, one_blas_thread

# %% [markdown]
# ## 1. The definition: a filter slides over the image
#
# A batch of images has shape $(N, C, H, W)$: $N$ images, $C$ channels (1 for grey, 3 for colour, or
# the outputs of an earlier layer), $H \times W$ pixels. A layer with $O$ output channels holds a
# weight of shape $(O, C, k_h, k_w)$ (PyTorch's layout) and a bias of shape $(O,)$. Output channel
# $o$ at position $(i, j)$ is
#
# $$y_{n,o,i,j} = b_o + \sum_{c=0}^{C-1}\sum_{u=0}^{k_h-1}\sum_{v=0}^{k_w-1}
#   w_{o,c,u,v}\; x_{n,\,c,\,s i + u,\,s j + v}$$
#
# with **stride** $s$ (how far the filter moves per step). Before sliding, **padding** $p$ adds $p$
# rows and columns of zeros around each image, so that border pixels are seen as often as the others
# and a 3 x 3 filter with $p = 1$ keeps the image size.
#
# Strictly this is a *cross-correlation*: a mathematician's convolution flips the filter first
# ($w_{o,c,k_h-1-u,k_w-1-v}$). Deep learning libraries do not flip, and neither do we: the network
# learns whichever filter it needs, but a layer that flips would not load PyTorch's weights.
#
# The filter fits $\lfloor (H + 2p - k_h)/s \rfloor + 1$ times down the padded image (the last
# partial step is dropped), and the same across:
#
# $$H_{out} = \left\lfloor \frac{H + 2p - k_h}{s} \right\rfloor + 1 .$$
#
# Kernel size, stride and padding may each be one number (the same for height and width) or a pair.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "convolutions-output-size", "locked": false, "solution": true}
#| export
def pair(value) -> tuple[int, int]:
    """A size given as one int `k` or as a pair `(kh, kw)`, as a tuple of two ints."""
    if not isinstance(value, tuple):  # layers pass tuples; np.ndim would turn one into an array first
        value = (value, value) if np.ndim(value) == 0 else tuple(value)
    first, second = value
    if int(first) != first or int(second) != second:
        raise ValueError(f"expected an int or a pair of ints, got {value!r}")
    return int(first), int(second)


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """How many times a window of `kernel` fits along an axis of `size`, moving by `stride`, after `padding`
    zeros on each side: floor((size + 2 * padding - kernel) / stride) + 1.

    A ValueError names the sizes when the window does not fit at all, or when stride < 1 or padding < 0.

    >>> conv_output_size(8, 3, stride=1, padding=1)
    8
    """
    if stride < 1 or padding < 0:
        raise ValueError(f"stride must be at least 1 and padding at least 0, got stride={stride}, padding={padding}")
    ### BEGIN SOLUTION
    room = size + 2 * padding - kernel
    if room < 0:
        raise ValueError(f"a kernel of {kernel} does not fit in a size of {size} with padding {padding}")
    return room // stride + 1
    ### END SOLUTION

# %% [markdown]
# ### Test: output size

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-convolutions-output-size", "locked": true, "points": 1, "solution": false}
def test_unit_output_size():
    cases = [((8, 3, 1, 1), 8), ((28, 5, 1, 0), 24), ((7, 3, 2, 0), 3), ((8, 3, 2, 1), 4), ((6, 2, 2, 0), 3),
             ((8, 3, 3, 0), 2), ((5, 5, 1, 0), 1)]
    for (size, kernel, stride, padding), expected in cases:
        try:
            got = conv_output_size(size, kernel, stride, padding)
        except ValueError as error:
            got = f"ValueError ({error})"
        assert got == expected, (f"conv_output_size(size={size}, kernel={kernel}, stride={stride}, padding={padding}) "
                                 f"should be floor((size + 2 padding - kernel) / stride) + 1 = {expected}, got {got}")
    for bad in [(2, 3, 1, 0), (4, 7, 1, 1)]:
        try:
            conv_output_size(*bad)
        except ValueError:
            continue
        raise AssertionError(f"conv_output_size{bad}: the kernel does not fit, so it should raise ValueError")
    assert pair(3) == (3, 3) and pair((2, 5)) == (2, 5), "pair should turn 3 into (3, 3) and keep (2, 5)"

test_unit_output_size()
print("test_unit_output_size: passed")

# %% [markdown]
# ### The loop form
#
# Write the formula as it stands, on NumPy arrays: one loop over images, one over output channels,
# two over output positions, and for each the sum of the window times the filter (`np.sum` over the
# $C \times k_h \times k_w$ products). It is slow, but it is the definition: §2 will be checked
# against it.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "convolutions-loops", "locked": false, "solution": true}
#| export
def conv2d_loops(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride=1, padding=0) -> np.ndarray:
    """The cross-correlation of `x` (N, C, H, W) with `weight` (O, C, kh, kw), plus `bias` (O,), by direct loops.

    >>> conv2d_loops(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))).tolist()
    [[[[4.0, 4.0], [4.0, 4.0]]]]
    """
    n, _, height, width = x.shape
    out_channels, _, kh, kw = weight.shape
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    oh, ow = conv_output_size(height, kh, sh, ph), conv_output_size(width, kw, sw, pw)
    ### BEGIN SOLUTION
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((n, out_channels, oh, ow), dtype=np.result_type(x, weight))
    for image in range(n):
        for channel in range(out_channels):
            for i in range(oh):
                for j in range(ow):
                    window = padded[image, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    out[image, channel, i, j] = np.sum(window * weight[channel])
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out
    ### END SOLUTION

# %% [markdown]
# ### Test: the loop form

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-convolutions-loops", "locked": true, "points": 2, "solution": false}
def check_against_hand_examples(conv, label):
    """Small cases worked out by hand; shared by the tests of the loop form and of im2col."""
    image = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    kernel = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    out = conv(image, kernel)
    assert out.shape == (1, 1, 3, 3), f"{label}: a 2 x 2 kernel on 4 x 4 gives 3 x 3, got {out.shape}"
    if out[0, 0, 0, 0] == 16.0:
        raise AssertionError(f"{label}: got 16 at (0, 0), the flipped kernel (true convolution); "
                             "compute the cross-correlation 0*1 + 1*2 + 4*3 + 5*4 = 34, without flipping")
    expected = np.array([[34, 44, 54], [74, 84, 94], [114, 124, 134]], dtype=np.float64)
    assert np.allclose(out[0, 0], expected), f"{label}: expected\n{expected}\ngot\n{out[0, 0]}"

    strided = conv(image, kernel, stride=2, padding=1)
    expected = np.array([[0, 11, 9], [40, 84, 40], [24, 41, 15]], dtype=np.float64)
    assert strided.shape == (1, 1, 3, 3), f"{label}: stride 2, padding 1 on 4 x 4 gives 3 x 3, got {strided.shape}"
    assert np.allclose(strided[0, 0], expected), \
        f"{label}: stride 2 with padding 1 (zeros around the image) should give\n{expected}\ngot\n{strided[0, 0]}"

    two_channels = np.stack([image[0, 0], -image[0, 0]])[None]  # (1, 2, 4, 4): the second channel cancels the first
    weight = np.stack([np.stack([kernel[0, 0], kernel[0, 0]]), np.stack([kernel[0, 0], np.zeros((2, 2))])])  # (2, 2, 2, 2)
    out = conv(two_channels, weight, np.array([0.5, -1.0]))
    assert out.shape == (1, 2, 3, 3), f"{label}: 2 filters give 2 output channels, got shape {out.shape}"
    assert np.allclose(out[0, 0], 0.5), f"{label}: each output sums over all input channels, plus its bias; got {out[0, 0]}"
    assert np.allclose(out[0, 1], expected_first := np.array([[34, 44, 54], [74, 84, 94], [114, 124, 134]]) - 1.0), \
        f"{label}: output channel 1 should use filter 1 and bias -1: expected {expected_first}, got {out[0, 1]}"


def test_unit_conv2d_loops():
    rng = np.random.default_rng(2)
    x, weight, bias = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), np.array([1.0, 2.0, 3.0])
    shift = conv2d_loops(x, weight, bias) - conv2d_loops(x, weight)  # 3 channels of 3 x 3: a wrong axis still broadcasts
    assert np.allclose(shift, bias.reshape(1, 3, 1, 1)), \
        f"bias[o] should be added to every position of output channel o: expected [1, 2, 3] per channel, got\n{shift[0]}"
    single = conv2d_loops(x.astype(np.float32), weight.astype(np.float32))
    assert single.dtype == np.float32, f"float32 inputs should give a float32 output, got {single.dtype}"
    check_against_hand_examples(conv2d_loops, "conv2d_loops")
    batch = np.random.default_rng(0).standard_normal((3, 2, 5, 6))
    weight = np.random.default_rng(1).standard_normal((4, 2, 3, 2))
    out = conv2d_loops(batch, weight, stride=(2, 1), padding=(1, 0))
    assert out.shape == (3, 4, 3, 5), f"expected (3, 4, 3, 5) for (kh, kw) = (3, 2), stride (2, 1), padding (1, 0), got {out.shape}"
    assert np.allclose(out[2], conv2d_loops(batch[2:], weight, stride=(2, 1), padding=(1, 0))[0]), \
        "each image of the batch should be convolved on its own"

test_unit_conv2d_loops()
print("test_unit_conv2d_loops: passed")

# %% [markdown]
# ## 2. im2col: the convolution as one matrix multiplication
#
# Four Python loops around a small `np.sum` cost a few microseconds per output number: fine for a
# check, hopeless for training. But look at what one output number is: a window of $C k_h k_w$ input
# numbers, dotted with a filter of $C k_h k_w$ weights. Copy **every window into a column** of a
# matrix (*image to columns*, im2col), and the whole layer is one matrix product:
#
# $$\underbrace{W}_{(O,\; C k_h k_w)} \;@\; \underbrace{\mathrm{cols}}_{(C k_h k_w,\; H_{out} W_{out} N)}
#   = \underbrace{Y}_{(O,\; H_{out} W_{out} N)}$$
#
# where $W$ is the weight reshaped to $(O, C k_h k_w)$. Reshaping $Y$ to $(O, H_{out}, W_{out}, N)$
# and moving the batch axis to the front gives the output. BLAS does the arithmetic; Python only
# arranges memory.
#
# How to fill the rows without looping over windows: loop over the $k_h k_w$ **offsets** instead.
# For a fixed offset $(u, v)$, the pixel at that offset in every window, over the whole batch, is one
# strided slice of the padded input:
#
# ```
# padded[:, :, u : u + s*H_out : s, v : v + s*W_out : s]     # (N, C, H_out, W_out)
# ```
#
# So `cols`, viewed as an array of shape $(C, k_h, k_w, H_{out}, W_{out}, N)$, is filled by
# $k_h k_w$ slice copies (9 for a 3 x 3 kernel), whatever the image size. Rows are ordered by
# (channel, $u$, $v$), the order of `weight.reshape(O, -1)`; columns by ($i$, $j$, image).
#
# Why the image index last? Each slice copy moves its data in runs along the last axis. With the
# batch last, the input seen as $(C, H, W, N)$ (one transposed copy), a run is a whole row of the
# window times the batch, hundreds of numbers; with the batch first it would be $W_{out}$ numbers,
# and NumPy's cost per run would dominate. (§7 measures both.)

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "convolutions-im2col", "locked": false, "solution": true}
#| export
def _geometry(shape: tuple, kernel_size, stride, padding) -> tuple:
    """(kh, kw), (sh, sw), (ph, pw), (oh, ow) for an input of `shape` (N, C, H, W)."""
    kernel, step, pad = pair(kernel_size), pair(stride), pair(padding)
    out = tuple(conv_output_size(shape[2 + axis], kernel[axis], step[axis], pad[axis]) for axis in (0, 1))
    return kernel, step, pad, out


def im2col(x: np.ndarray, kernel_size, stride=1, padding=0) -> np.ndarray:
    """Every window of `x` (N, C, H, W) as a column: shape (C * kh * kw, OH * OW * N), rows in (channel, u, v)
    order, columns in (i, j, image) order. Filled by one strided slice copy per kernel offset (u, v) from
    the zero-padded input laid out as (C, H, W, N).

    >>> im2col(np.arange(9.0).reshape(1, 1, 3, 3), 2)[:, 0].tolist()
    [0.0, 1.0, 3.0, 4.0]
    """
    n, channels, height, width = x.shape
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = _geometry(x.shape, kernel_size, stride, padding)
    ### BEGIN SOLUTION
    padded = np.zeros((channels, height + 2 * ph, width + 2 * pw, n), dtype=x.dtype)
    padded[:, ph:ph + height, pw:pw + width] = x.transpose(1, 2, 3, 0)
    cols = np.empty((channels, kh, kw, oh, ow, n), dtype=x.dtype)
    for u in range(kh):
        for v in range(kw):
            cols[:, u, v] = padded[:, u:u + sh * oh:sh, v:v + sw * ow:sw]
    return cols.reshape(channels * kh * kw, oh * ow * n)
    ### END SOLUTION

# %% [markdown]
# ### Test: im2col
#
# The convolution as `W @ im2col(x)` must agree with the loop form on the hand examples and on
# random shapes.

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-convolutions-im2col", "locked": true, "points": 3, "solution": false}
def conv2d_by_im2col(x, weight, bias=None, stride=1, padding=0):
    """The forward pass of §2 on plain arrays, to check im2col against the loop form."""
    (kh, kw), _, _, (oh, ow) = _geometry(x.shape, weight.shape[2:], stride, padding)
    columns = weight.reshape(len(weight), -1) @ im2col(x, (kh, kw), stride, padding)
    out = columns.reshape(len(weight), oh, ow, len(x)).transpose(3, 0, 1, 2)
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def test_unit_im2col():
    image = np.arange(9.0).reshape(1, 1, 3, 3)
    cols = im2col(image, 2)
    expected = np.array([[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]], dtype=np.float64)
    assert cols.shape == (4, 4), f"a 2 x 2 kernel on one 3 x 3 image: 4 windows of 4 pixels, shape (4, 4); got {cols.shape}"
    assert np.array_equal(cols, expected.T), f"column r should be window r, read row by row; expected\n{expected.T}\ngot\n{cols}"
    padded = im2col(image, 3, padding=1)
    assert padded.shape == (9, 9) and padded[0, 0] == 0 and padded[:, 4].tolist() == list(range(9)), \
        "with padding 1, the first window starts in the zeros and the middle window is the whole image"
    two = im2col(np.stack([image[0, 0], 10 * image[0, 0]])[None], 2)
    assert two[:, 0].tolist() == [0, 1, 3, 4, 0, 10, 30, 40], \
        f"rows go channel by channel, then row and column in the window; got {two[:, 0].tolist()}"
    batch = im2col(np.concatenate([image, image + 100]), 2)
    assert batch.shape == (4, 8) and batch[:, 1].tolist() == [100, 101, 103, 104], \
        f"columns go (i, j, image): column 1 is the first window of image 1, got {batch[:, 1].tolist()}"
    assert im2col(np.zeros((2, 3, 8, 8), dtype=np.float32), 3, padding=1).dtype == np.float32, "im2col should keep the dtype"

    check_against_hand_examples(conv2d_by_im2col, "im2col")
    rng = np.random.default_rng(0)
    for n, c, h, w, o, kh, kw, stride, padding in [(2, 3, 7, 6, 4, 3, 3, 1, 1), (3, 2, 9, 8, 5, 3, 2, 2, 0),
                                                  (1, 1, 5, 5, 2, 5, 5, 1, 2), (2, 4, 6, 7, 3, 2, 3, (2, 3), (1, 0))]:
        x, weight, bias = rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, kh, kw)), rng.standard_normal(o)
        expected = conv2d_loops(x, weight, bias, stride, padding)
        got = conv2d_by_im2col(x, weight, bias, stride, padding)
        assert got.shape == expected.shape and np.allclose(got, expected), \
            f"im2col @ W.T disagrees with the loop form for x {x.shape}, weight {weight.shape}, stride {stride}, padding {padding}"

test_unit_im2col()
print("test_unit_im2col: passed")

# %% [markdown]
# ## 3. col2im: the backward pass of im2col
#
# With $Y = W\,\mathrm{cols}$, module 05's matmul rule gives the gradients of the two factors:
# $\partial L/\partial W = G\,\mathrm{cols}^\top$ and $\partial L/\partial\,\mathrm{cols} = W^\top G$,
# where $G$ is the output gradient in column form $(O, H_{out} W_{out} N)$. The bias gets $G$ summed
# over everything but the channel.
#
# What remains is to bring $\partial L/\partial\,\mathrm{cols}$ back to the input. im2col *copied* each
# pixel into every window containing it, so the pixel's gradient is the **sum** of the gradients of
# all its copies: windows overlap whenever the stride is smaller than the kernel, and a pixel in the
# middle of a 3 x 3 stride-1 convolution has nine copies. This is *col2im*, the adjoint of im2col:
# the same loop over offsets, adding where im2col copied,
#
# ```
# padded[:, :, u : u + s*H_out : s, v : v + s*W_out : s] += (gradient of the copies at offset (u, v))
# ```
#
# into zeros of the padded shape. Within one offset the slice never hits a pixel twice, so `+=` on a
# slice is exact; the overlaps come from different offsets, and `+=` adds them up. Finally the
# padding is cut off: those zeros were constants, not inputs, and the gradient must have the input's
# shape.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "convolutions-col2im", "locked": false, "solution": true}
#| export
def col2im(cols: np.ndarray, input_shape: tuple, kernel_size, stride=1, padding=0) -> np.ndarray:
    """The adjoint of `im2col`: add every entry of `cols` (C * kh * kw, OH * OW * N) back onto the pixel of
    an (N, C, H, W) input it was copied from (overlapping windows add up); the padding is cropped off.

    >>> col2im(np.ones((4, 4)), (1, 1, 3, 3), 2)[0, 0].tolist()
    [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    n, channels, height, width = input_shape
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = _geometry(input_shape, kernel_size, stride, padding)
    ### BEGIN SOLUTION
    windows = cols.reshape(channels, kh, kw, oh, ow, n)
    padded = np.zeros((channels, height + 2 * ph, width + 2 * pw, n), dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            padded[:, u:u + sh * oh:sh, v:v + sw * ow:sw] += windows[:, u, v]
    return padded[:, ph:ph + height, pw:pw + width].transpose(3, 0, 1, 2)
    ### END SOLUTION

# %% [markdown]
# ### Test: col2im

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-convolutions-col2im", "locked": true, "points": 3, "solution": false}
def test_unit_col2im():
    counts = col2im(np.ones((4, 4)), (1, 1, 3, 3), 2)
    expected = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float64)
    assert counts.shape == (1, 1, 3, 3), f"col2im should return the input's shape (1, 1, 3, 3), got {counts.shape}"
    assert np.array_equal(counts[0, 0], expected), (
        "the centre pixel of a 3 x 3 image is in all four 2 x 2 windows, so its gradient adds up four copies: "
        f"overlapping windows must accumulate (+=), not overwrite; expected\n{expected}\ngot\n{counts[0, 0]}")
    cropped = col2im(np.ones((9, 9)), (1, 1, 3, 3), 3, padding=1)
    assert cropped.shape == (1, 1, 3, 3), \
        f"the padding's gradient must be cropped off: expected the input's shape (1, 1, 3, 3), got {cropped.shape}"
    assert cropped[0, 0, 1, 1] == 9 and cropped[0, 0, 0, 0] == 4, \
        f"with padding 1 a 3 x 3 kernel covers the centre 9 times and a corner 4 times, got\n{cropped[0, 0]}"

    # The defining property of an adjoint: <im2col(x), c> = <x, col2im(c)> for every x and c.
    rng = np.random.default_rng(0)
    for shape, kernel, stride, padding in [((2, 3, 6, 5), 3, 1, 1), ((1, 2, 7, 7), 3, 2, 0), ((2, 1, 5, 6), (2, 3), (1, 2), (1, 0))]:
        x = rng.standard_normal(shape)
        cols = im2col(x, kernel, stride, padding)
        c = rng.standard_normal(cols.shape)
        back = col2im(c, shape, kernel, stride, padding)
        assert back.shape == shape, f"col2im should give the input's shape {shape}, got {back.shape}"
        assert np.isclose(np.sum(cols * c), np.sum(x * back)), \
            f"col2im is not the adjoint of im2col for {shape}, kernel {kernel}, stride {stride}, padding {padding}"
    single = col2im(np.ones((4, 4), dtype=np.float32), (1, 1, 3, 3), 2)
    assert single.dtype == np.float32, f"col2im should keep the columns' dtype float32, got {single.dtype}"

test_unit_col2im()
print("test_unit_col2im: passed")

# %% [markdown]
# ### col2im of a product, without the product
#
# In the convolution's backward pass, col2im always receives $W^\top G$: $C k_h k_w \times H_{out} W_{out} N$
# numbers, as many as `cols`, written to memory only to be read back once and added onto the input. The rows
# of $W^\top G$ for offset $(u, v)$ are $W_{:,:,u,v}^\top G$: the filters' $(O, C)$ slice at that offset,
# transposed, times $G$. So col2im can compute each offset's block when it needs it, a
# $(C,\; H_{out} W_{out} N)$ product small enough to stay in the processor's cache, and add it onto its
# slice straight away:
#
# ```
# padded[:, u : u + s*H_out : s, v : v + s*W_out : s] += (weight[:, :, u, v].T @ G).reshape(C, H_out, W_out, N)
# ```
#
# The multiplications and additions are those of `col2im(W.T @ G)`, grouped by offset; the large
# intermediate never exists. Two more choices make it faster still:
#
# - **One block, reused.** `np.matmul(..., out=block)` writes every offset's product into the same array,
#   where `block = ... @ G` would ask the allocator for a new one $k_h k_w$ times per call.
# - **Long runs.** In the $(C, H, W, N)$ layout, the slice `padded[:, u : u + H_out, v : v + W_out]` is cut
#   into runs of $W_{out} N$ contiguous numbers (512 for LeNet's second layer), one per row: short runs
#   that NumPy adds slowly (§7, "Layout", measures the same effect). So the blocks of column offset $v$
#   are first summed into `by_column[v]`, the gradient of the padded input's $W_{out}$ columns
#   $v, v + s, \dots$ over all its rows. There a block lands on whole rows, one run of
#   $H_{out} W_{out} N$ numbers per channel (4,096 for LeNet's second layer); then $k_w$ additions, not
#   $k_h k_w$, move the sums onto the input.
#
# §7 times this form against `col2im(W.T @ G)` on LeNet's second layer.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "convolutions-col2im-of-product", "locked": false, "solution": true}
#| export
def col2im_of_product(weight: np.ndarray, grad_columns: np.ndarray, input_shape: tuple, stride=1, padding=0) -> np.ndarray:
    """`col2im(weight.reshape(O, -1).T @ grad_columns, input_shape, (kh, kw), stride, padding)` without forming
    the product: for each kernel offset (u, v), the block `weight[:, :, u, v].T @ grad_columns` is added onto its
    slice of the padded input. `weight` is (O, C, kh, kw), `grad_columns` (O, OH * OW * N); the result has
    `input_shape` (N, C, H, W).

    >>> col2im_of_product(np.ones((1, 1, 2, 2)), np.ones((1, 4)), (1, 1, 3, 3))[0, 0].tolist()
    [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    n, channels, height, width = input_shape
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = _geometry(input_shape, weight.shape[2:], stride, padding)
    ### BEGIN SOLUTION
    by_offset = np.ascontiguousarray(weight.transpose(2, 3, 1, 0))  # by_offset[u, v] is weight[:, :, u, v].T
    block = np.empty((channels, oh * ow * n), dtype=grad_columns.dtype)  # one array, reused for every offset
    # by_column[v]: the gradient of the padded input's columns v, v + sw, ... (ow of them), all rows
    by_column = np.zeros((kw, channels, height + 2 * ph, ow, n), dtype=grad_columns.dtype)
    for u in range(kh):
        for v in range(kw):
            np.matmul(by_offset[u, v], grad_columns, out=block)  # the gradient of every copy at offset (u, v)
            by_column[v, :, u:u + sh * oh:sh] += block.reshape(channels, oh, ow, n)
    padded = np.zeros((channels, height + 2 * ph, width + 2 * pw, n), dtype=grad_columns.dtype)
    for v in range(kw):
        padded[:, :, v:v + sw * ow:sw] += by_column[v]
    return padded[:, ph:ph + height, pw:pw + width].transpose(3, 0, 1, 2)
    ### END SOLUTION

# %% [markdown]
# ### Test: col2im of a product

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-convolutions-col2im-of-product", "locked": true, "points": 2, "solution": false}
def test_unit_col2im_of_product():
    rng = np.random.default_rng(0)
    for shape, out_channels, kernel, stride, padding in [((2, 3, 6, 5), 4, (3, 3), 1, 1), ((1, 2, 7, 7), 3, (3, 2), 2, 0),
                                                          ((2, 1, 5, 6), 2, (2, 3), (1, 2), (1, 0)), ((3, 2, 4, 4), 1, (1, 1), 1, 0)]:
        weight = rng.standard_normal((out_channels, shape[1], *kernel))
        positions = im2col(np.zeros(shape), kernel, stride, padding).shape[1]
        grad_columns = rng.standard_normal((out_channels, positions))
        expected = col2im(weight.reshape(out_channels, -1).T @ grad_columns, shape, kernel, stride, padding)
        got = col2im_of_product(weight, grad_columns, shape, stride, padding)
        assert got.shape == shape, f"col2im_of_product should give the input's shape {shape} (crop the padding), got {got.shape}"
        assert np.allclose(got, expected), (
            f"col2im_of_product should equal col2im(W.T @ G) for input {shape}, kernel {kernel}, stride {stride}, "
            f"padding {padding}; the largest difference is {np.abs(got - expected).max():.3g}")
    small = col2im_of_product(np.ones((1, 1, 2, 2), dtype=np.float32), np.ones((1, 4), dtype=np.float32), (1, 1, 3, 3))
    assert small.dtype == np.float32, f"col2im_of_product should keep the gradient's dtype float32, got {small.dtype}"

test_unit_col2im_of_product()
print("test_unit_col2im_of_product: passed")

# %% [markdown]
# ## 4. `conv2d`, a graph operation, and the `Conv2d` layer
#
# Now the convolution becomes one operation of module 05's graph, recorded like every operation
# there: the forward value and, side by side, one backward rule per input, handed to module 05's
# `record(value, name, *edges)`. When no input is a Variable (plain Tensors in, for example a pooling
# layer on a Tensor), `record` returns a plain Tensor, as module 03's layers do for Tensor inputs.
#
# The three rules, with `as_columns(g)` putting the output gradient into column form
# $(O, H_{out} W_{out} N)$ and $W$ the weight as a matrix $(O, C k_h k_w)$:
#
# | input | receives |
# |---|---|
# | `x` | `col2im_of_product(weight, as_columns(g), x.shape, ...)`, i.e. `col2im(W.T @ as_columns(g), ...)` |
# | `weight` | `(cols @ as_columns(g).T).T.reshape(weight.shape)`, i.e. $G\,\mathrm{cols}^\top$ |
# | `bias` | `as_columns(g).sum(axis=1)`, i.e. `g.sum(axis=(0, 2, 3))` |
#
# `cols` is computed once in the forward pass and kept by the weight's rule. The three rules receive the
# same `g`, so `as_columns` converts it once and hands the same matrix to each. The weight's gradient is
# written as $(\mathrm{cols}\, G^\top)^\top$: the same numbers, and transposing the small
# $(C k_h k_w, O)$ result is free (a view), but OpenBLAS runs this long, thin product about 1.5 times
# faster in that order on these shapes (§7 measures both).
#
# The output is a view of the product's $(O, H_{out}, W_{out}, N)$ layout. ReLU (an elementwise product)
# and the pooling layers below keep that order in memory, so the next convolution's im2col finds its
# input already laid out as $(C, H, W, N)$, and `as_columns(g)` is free when the gradient arrives in the
# same order.
#
# The layer `Conv2d` starts its weights as PyTorch does: uniform on $[-1/\sqrt{f}, 1/\sqrt{f}]$ with
# fan-in $f = C k_h k_w$ (PyTorch's Kaiming-uniform with $a = \sqrt5$), and the bias too, uniform on
# the same interval. That is smaller than module 03's Kaiming bound $\sqrt{6/f}$; it is the default
# a PyTorch user gets, and with it a network built here starts where the same network in PyTorch
# starts.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "convolutions-conv2d", "locked": false, "solution": true}
#| export
def _array(x) -> np.ndarray:
    return np.asarray(_value(x))


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """The cross-correlation of x (N, C, H, W) with weight (O, C, kh, kw), plus bias (O,), as W @ im2col(x);
    differentiable in x, weight and bias.

    >>> conv2d(Tensor(np.ones((1, 1, 3, 3))), Tensor(np.ones((1, 1, 2, 2)))).shape
    (1, 1, 2, 2)
    """
    xv, wv = _array(x), _array(weight)
    if xv.ndim != 4 or wv.ndim != 4 or xv.shape[1] != wv.shape[1]:
        raise ValueError(f"conv2d needs x (N, C, H, W) and weight (O, C, kh, kw) with the same C, got {xv.shape} and {wv.shape}")
    kernel = wv.shape[2:]
    _, _, _, (oh, ow) = _geometry(xv.shape, kernel, stride, padding)
    out_channels = len(wv)
    ### BEGIN SOLUTION
    cols = im2col(xv, kernel, stride, padding)
    filters = wv.reshape(out_channels, -1)
    columns = filters @ cols
    if bias is not None:
        columns += _array(bias)[:, None]
    out = columns.reshape(out_channels, oh, ow, len(xv)).transpose(3, 0, 1, 2)

    converted = {}  # the three rules receive the same g: convert it once

    def as_columns(g):
        if converted.get("g") is not g:
            converted.update(g=g, columns=g.transpose(1, 2, 3, 0).reshape(out_channels, -1))
        return converted["columns"]

    return record(out, "Conv2d",
                  (x, lambda g: col2im_of_product(wv, as_columns(g), xv.shape, stride, padding)),
                  (weight, lambda g: (cols @ as_columns(g).T).T.reshape(wv.shape)),
                  (bias, lambda g: as_columns(g).sum(axis=1)))
    ### END SOLUTION


class Conv2d(Module):
    """A 2-d convolution layer on (N, C, H, W) batches, with PyTorch's weight layout and initialization.

    >>> layer = Conv2d(1, 6, 5, rng=np.random.default_rng(0))
    >>> layer.weight.shape, layer(Tensor(np.zeros((2, 1, 28, 28), dtype=np.float32))).shape
    ((6, 1, 5, 5), (2, 6, 24, 24))
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True, *,
                 rng: np.random.Generator | None = None, dtype=np.float32):
        if int(in_channels) != in_channels or int(out_channels) != out_channels or in_channels < 1 or out_channels < 1:
            raise ValueError(f"Conv2d needs positive integer channel counts, got {in_channels} and {out_channels}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = pair(kernel_size), pair(stride), pair(padding)
        ### BEGIN SOLUTION
        rng = rng if rng is not None else np.random.default_rng()
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        self.weight = Parameter(rng.uniform(-bound, bound, shape).astype(dtype))
        self.bias = Parameter(rng.uniform(-bound, bound, self.out_channels).astype(dtype)) if bias else None
        ### END SOLUTION

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r} expects inputs of shape (N, {self.in_channels}, H, W), got {x.shape}")
        ### BEGIN SOLUTION
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)
        ### END SOLUTION

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        return text if self.bias is not None else text + ", bias=False"

# %% [markdown]
# ### Test: conv2d and Conv2d

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-convolutions-conv2d", "locked": true, "points": 4, "solution": false}
def test_unit_conv2d():
    rng = np.random.default_rng(0)
    x = Variable(rng.standard_normal((2, 3, 6, 5)), requires_grad=True)
    weight = Variable(rng.standard_normal((4, 3, 3, 2)), requires_grad=True)
    bias = Variable(rng.standard_normal(4), requires_grad=True)
    out = conv2d(x, weight, bias, stride=(2, 1), padding=1)
    assert isinstance(out, Variable) and out.grad_fn is not None, "conv2d of Variables should record a graph node"
    expected = conv2d_loops(x.numpy(), weight.numpy(), bias.numpy(), (2, 1), 1)
    assert out.shape == expected.shape and np.allclose(out.numpy(), expected), "conv2d's value should match conv2d_loops"
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape, \
        f"x's gradient should have x's shape {x.shape} (crop the padding), got {None if x.grad is None else x.grad.shape}"
    assert np.allclose(bias.grad, np.full(4, 2 * 3 * 6)), \
        f"each bias gets the sum of its channel's gradient, 2 images x 3 x 6 positions = 36, got {bias.grad}"
    for stride, padding in [(1, 0), (2, 1), ((1, 2), (0, 1))]:
        small_x = Variable(rng.standard_normal((2, 2, 5, 4)), requires_grad=True)
        small_w = Variable(rng.standard_normal((3, 2, 3, 2)), requires_grad=True)
        small_b = Variable(rng.standard_normal(3), requires_grad=True)
        gradcheck(lambda a, w, b: conv2d(a, w, b, stride, padding), small_x, small_w, small_b,
                  name=f"conv2d stride {stride} padding {padding}")
    twice = conv2d(Variable(x.numpy()), weight, bias, stride=(2, 1), padding=1)
    weight.grad, bias.grad = None, None
    twice.backward(np.ones(twice.shape), retain_graph=True)
    twice.backward(np.full(twice.shape, 2.0))
    assert np.allclose(bias.grad, np.full(4, 3 * 36)), (
        "a second backward with another gradient (2 everywhere, after 1 everywhere) should add 2 x 36 to each bias's "
        f"1 x 36 = 108: each backward's own gradient must be converted to column form, got {bias.grad}")
    with no_grad():
        assert conv2d(x, weight).grad_fn is None, "under no_grad, conv2d should record nothing"
    plain = conv2d(Tensor(x.numpy()), Tensor(weight.numpy()))
    assert type(plain) is Tensor, f"conv2d of plain Tensors should give a Tensor, got {type(plain).__name__}"

    layer = Conv2d(3, 8, 5, padding=2, rng=np.random.default_rng(1))
    names = [(name, parameter.shape) for name, parameter in layer.named_parameters()]
    assert names == [("weight", (8, 3, 5, 5)), ("bias", (8,))], \
        f"Conv2d(3, 8, 5) should have weight (out, in, kh, kw) = (8, 3, 5, 5) and bias (8,), got {names}"
    assert layer.weight.dtype == np.float32, f"weights should default to float32, got {layer.weight.dtype}"
    images = Tensor(rng.standard_normal((2, 3, 7, 7)).astype(np.float32))
    expected = conv2d_loops(images.numpy(), layer.weight.numpy(), layer.bias.numpy(), 1, 2)
    got = layer(images)
    assert got.shape == (2, 8, 7, 7) and np.allclose(got.numpy(), expected, atol=1e-4), "Conv2d should call conv2d with its settings"
    wide = Conv2d(64, 64, 3, rng=np.random.default_rng(2))
    bound = 1 / math.sqrt(64 * 9)
    w, b = wide.weight.numpy(), wide.bias.numpy()
    assert np.abs(w).max() <= bound and abs(w.std() / (bound / math.sqrt(3)) - 1) < 0.02, \
        f"weights should be uniform on +-1/sqrt(fan_in) = +-{bound:.4f} (PyTorch's default), got max {np.abs(w).max():.4f}, std {w.std():.4f}"
    assert np.abs(b).max() <= bound and b.std() > bound / 3, \
        f"the bias should be uniform on +-1/sqrt(fan_in) too (PyTorch's default), not zeros; got {b[:4]}"
    assert Conv2d(1, 2, 3, bias=False).bias is None and len(Conv2d(1, 2, 3, bias=False).parameters()) == 1, "bias=False means no bias"
    assert repr(Conv2d(1, 6, 5)) == "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))", f"unexpected repr {Conv2d(1, 6, 5)!r}"

test_unit_conv2d()
print("test_unit_conv2d: passed")

# %% [markdown]
# ## 5. Pooling: shrink the picture, keep what matters
#
# A pooling layer summarises each $k \times k$ window of each channel by one number, usually with
# stride $k$ so windows do not overlap: `MaxPool2d(2)` halves height and width, keeping the strongest
# response of each window; `AvgPool2d(2)` keeps the mean. No weights, and channels stay separate.
#
# im2col does the windowing again. Its rows go channel by channel, so the $k_h k_w$ rows of channel
# $c$ hold the windows of that channel alone, one per column: `im2col(x).reshape(C, kh * kw, -1)` is,
# for each channel, a matrix whose columns are its windows.
#
# - **Max.** The output is each column's largest entry. Its gradient goes to that entry alone. When a
#   window holds the largest value twice (after ReLU, windows of zeros are common), PyTorch sends
#   the whole gradient to **one** of them, the first in window order (row by row). (Module 06's `max`
#   over several axes shares ties equally instead, as `torch.amax` does: also a valid subgradient.)
#   Backward: `first_largest` marks the entries equal to their column's maximum and keeps only the
#   first mark of each column (going down the $k_h k_w$ rows, a mark stays if no row above it was
#   marked); multiply the mask by `g`, and `col2im`, which also adds up the gradients of windows that
#   overlap when the stride is smaller than the kernel. `argmax(axis=1)` would find the same entries,
#   but NumPy runs it column by column; the $k_h k_w$ whole-row comparisons are several times faster
#   (§7).
# - **Average.** The output is each column's mean; every entry of a window receives $g/(k_h k_w)$,
#   spread back with `col2im`.
#
# Both keep the $(C, H, W, N)$ order of memory that the convolution's output has, so a network of
# convolutions, ReLUs and poolings never reorders its activations between layers.
#
# The stride defaults to the kernel size; there is no padding (PyTorch's default).

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "convolutions-pooling", "locked": false, "solution": true}
#| export
class _Windows:
    """The windows of each channel of x (N, C, H, W): `cols` (C, kh * kw, OH * OW * N) holds in cols[c] the
    windows of channel c, one per column (im2col's rows, grouped by channel)."""

    def __init__(self, xv: np.ndarray, kernel_size, stride):
        n, channels, _, _ = xv.shape
        self.kernel, self.stride = pair(kernel_size), pair(kernel_size if stride is None else stride)
        _, _, _, (oh, ow) = _geometry(xv.shape, self.kernel, self.stride, 0)
        self.input_shape, self.output_layout = xv.shape, (channels, oh, ow, n)
        self.cols = im2col(xv, self.kernel, self.stride).reshape(channels, self.kernel[0] * self.kernel[1], oh * ow * n)

    def to_output(self, per_window: np.ndarray) -> np.ndarray:
        """One number per column, (C, 1, OH * OW * N) -> the output (N, C, OH, OW), a view."""
        return per_window.reshape(self.output_layout).transpose(3, 0, 1, 2)

    def to_columns(self, g: np.ndarray) -> np.ndarray:
        """The output's gradient (N, C, OH, OW) -> one number per column, (C, 1, OH * OW * N)."""
        return g.transpose(1, 2, 3, 0).reshape(len(self.cols), 1, -1)

    def to_input(self, spread: np.ndarray) -> np.ndarray:
        """A gradient for every entry of `cols` -> the input's gradient (N, C, H, W), overlaps added up."""
        return col2im(spread.reshape(-1, spread.shape[-1]), self.input_shape, self.kernel, self.stride)


def first_largest(cols: np.ndarray, largest: np.ndarray) -> np.ndarray:
    """A mask of `cols` (C, K, P), True at the first entry of each column cols[c, :, p] (in row order) that equals
    the column's maximum `largest[c, 0, p]`.

    >>> first_largest(np.array([[[1.0], [3.0], [3.0]]]), np.array([[[3.0]]]))[0, :, 0].tolist()
    [False, True, False]
    """
    ### BEGIN SOLUTION
    first = cols == largest  # every largest entry of each column...
    seen = first[:, 0].copy()
    for row in range(1, first.shape[1]):  # ...then only the first one
        first[:, row] &= ~seen
        seen |= first[:, row]
    return first
    ### END SOLUTION


def max_pool2d(x, kernel_size, stride=None):
    """The largest entry of each window of each channel; the gradient goes to the first largest entry."""
    windows = _Windows(_array(x), kernel_size, stride)
    cols = windows.cols
    ### BEGIN SOLUTION
    largest = cols.max(axis=1, keepdims=True)

    def rule(g):
        return windows.to_input(first_largest(cols, largest) * windows.to_columns(g))

    return record(windows.to_output(largest), "MaxPool2d", (x, rule))
    ### END SOLUTION


def avg_pool2d(x, kernel_size, stride=None):
    """The mean of each window of each channel; each entry of a window receives g / (kh * kw)."""
    windows = _Windows(_array(x), kernel_size, stride)
    cols = windows.cols
    ### BEGIN SOLUTION
    count = cols.shape[1]

    def rule(g):
        return windows.to_input(np.broadcast_to(windows.to_columns(g) / count, cols.shape))

    return record(windows.to_output(cols.mean(axis=1)), "AvgPool2d", (x, rule))
    ### END SOLUTION


class _Pool2d(Module):
    """What the pooling layers share: a window size and a stride (default: the window size), no parameters."""

    def __init__(self, kernel_size, stride=None):
        self.kernel_size = pair(kernel_size)
        self.stride = self.kernel_size if stride is None else pair(stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class MaxPool2d(_Pool2d):
    """Max over each kernel_size window of each channel, moving by stride (default: kernel_size)."""

    def forward(self, x):
        return max_pool2d(x, self.kernel_size, self.stride)


class AvgPool2d(_Pool2d):
    """Mean over each kernel_size window of each channel, moving by stride (default: kernel_size)."""

    def forward(self, x):
        return avg_pool2d(x, self.kernel_size, self.stride)

# %% [markdown]
# ### Test: pooling

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-convolutions-pooling", "locked": true, "points": 4, "solution": false}
def test_unit_pooling():
    image = np.array([[1, 5, 2, 0], [3, 4, 8, 6], [0, 2, 1, 1], [7, 1, 3, 2]], dtype=np.float64).reshape(1, 1, 4, 4)
    x = Variable(image, requires_grad=True)
    out = MaxPool2d(2)(x)
    assert out.shape == (1, 1, 2, 2), f"MaxPool2d(2) halves 4 x 4 to 2 x 2 (stride defaults to the kernel), got {out.shape}"
    assert out.numpy()[0, 0].tolist() == [[5, 8], [7, 3]], f"expected the window maxima [[5, 8], [7, 3]], got {out.numpy()[0, 0]}"
    out.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    expected = np.zeros((4, 4))
    expected[0, 1], expected[1, 2], expected[3, 0], expected[3, 2] = 1, 2, 3, 4
    assert np.array_equal(x.grad[0, 0], expected), f"each window's gradient goes to its maximum; expected\n{expected}\ngot\n{x.grad[0, 0]}"

    ties = Variable(np.zeros((1, 1, 2, 4)), requires_grad=True)
    MaxPool2d(2)(ties).sum().backward()
    expected = np.array([[1.0, 0, 1, 0], [0, 0, 0, 0]])
    if np.allclose(ties.grad[0, 0], 0.25 * np.ones((2, 4))):
        raise AssertionError("a window of equal values shared its gradient; PyTorch sends it all to ONE entry, the first")
    assert np.array_equal(ties.grad[0, 0], expected), \
        f"with ties, the whole gradient goes to the first maximum in window order; expected\n{expected}\ngot\n{ties.grad[0, 0]}"

    overlapping = Variable(np.array([[[[1.0, 0.0, 2.0], [0.0, 9.0, 0.0], [3.0, 0.0, 0.0]]]]), requires_grad=True)
    MaxPool2d(2, stride=1)(overlapping).sum().backward()
    assert overlapping.grad[0, 0, 1, 1] == 4, (
        f"9 is the maximum of all four overlapping windows, so its gradient should add up to 4, got {overlapping.grad[0, 0, 1, 1]}")

    average = AvgPool2d(2)(x)
    assert np.allclose(average.numpy()[0, 0], [[3.25, 4.0], [2.5, 1.75]]), f"expected the window means, got {average.numpy()[0, 0]}"
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((2, 3, 7, 6))
    for kernel, stride in [(2, None), (3, 2), ((2, 3), (1, 2))]:
        gradcheck(lambda a: max_pool2d(a, kernel, stride), Variable(batch, requires_grad=True), name=f"max_pool2d {kernel} {stride}")
        gradcheck(lambda a: avg_pool2d(a, kernel, stride), Variable(batch, requires_grad=True), name=f"avg_pool2d {kernel} {stride}")
    assert MaxPool2d(2)(Variable(batch)).shape == (2, 3, 3, 3), "pooling keeps batch and channels and floors the size (7 -> 3)"
    assert type(AvgPool2d(2)(Tensor(batch))) is Tensor, "pooling a plain Tensor should give a Tensor"
    assert repr(MaxPool2d(2)) == "MaxPool2d(kernel_size=(2, 2), stride=(2, 2))", f"unexpected repr {MaxPool2d(2)!r}"

test_unit_pooling()
print("test_unit_pooling: passed")

# %% [markdown]
# ## 6. A CNN, trained by module 08 unchanged
#
# `Conv2d` and the pooling layers are `Module`s and their weights are `Parameter`s, so everything of
# modules 03 to 08 applies as it is: `parameters()` finds the filters, Adam updates them, `Trainer`
# runs the epochs and `save_checkpoint` stores them. Three epochs on the 8 x 8 digits (images reshaped
# to $(N, 1, 8, 8)$); `tito milestone cnn` trains a larger network for longer.

# %%
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import Adam
from tinytorch.core.training import DataLoader, Standardizer, Trainer, load_checkpoint, load_digits_dataset, save_checkpoint


def small_cnn(seed: int = 0) -> Sequential:
    rng = np.random.default_rng(seed)
    return Sequential(Conv2d(1, 8, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2),
                      Conv2d(8, 16, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2),
                      Flatten(), Linear(16 * 2 * 2, 10, rng=rng))


digits = load_digits_dataset()
standardize = Standardizer(digits.x_train)


def as_images(flat: np.ndarray) -> np.ndarray:
    """Standardized pixels, each row back in the shape of an image: (N, 64) -> (N, 1, 8, 8)."""
    return standardize(flat).reshape(-1, 1, 8, 8)


cnn = small_cnn()
trainer = Trainer(cnn, Adam(cnn.parameters(), lr=3e-3), CrossEntropyLoss())
start = time.perf_counter()
with one_blas_thread():
    history = trainer.fit(DataLoader(as_images(digits.x_train), digits.y_train, batch_size=32, shuffle=True, seed=0),
                          DataLoader(as_images(digits.x_test), digits.y_test, batch_size=512), epochs=3)
print(f"{sum(p.size for p in cnn.parameters())} parameters, 3 epochs in {time.perf_counter() - start:.1f} s, "
      f"held-out accuracy per epoch: {', '.join(f'{acc:.1%}' for acc in history.val_accuracy)}")

# A checkpoint of the CNN, loaded into a network with other initial weights, predicts the same.
with tempfile.TemporaryDirectory() as folder:
    restored = small_cnn(seed=1)
    load_checkpoint(save_checkpoint(Path(folder) / "cnn.npz", cnn), restored)
test_images = Tensor(as_images(digits.x_test))
print("restored from a checkpoint, same predictions:",
      np.array_equal(restored(test_images).numpy().argmax(axis=1), cnn(test_images).numpy().argmax(axis=1)))

# %% [markdown]
# ## 7. Systems analysis: loops against im2col, and what im2col costs
#
# **Speed.** The forward pass of LeNet-5's two convolution layers (1 -> 6 channels, 5 x 5, on
# 28 x 28 images; 6 -> 16 channels, 5 x 5, on 12 x 12) for a batch of 8, by the loop form and by
# im2col (BLAS held to one thread). The loop form pays Python's cost once per output number; im2col
# pays it $k_h k_w$ times per layer, and the matrix product does the arithmetic.

# %%
lenet_layers = [("1->6, 5x5, 28x28", (8, 1, 28, 28), (6, 1, 5, 5)), ("6->16, 5x5, 12x12", (8, 6, 12, 12), (16, 6, 5, 5))]
with one_blas_thread():
    print(f"{'layer (batch 8)':20} {'loops (ms)':>11} {'im2col (ms)':>12} {'speed-up':>9}")
    for label, x_shape, w_shape in lenet_layers:
        rng = np.random.default_rng(0)
        x, w = rng.standard_normal(x_shape).astype(np.float32), rng.standard_normal(w_shape).astype(np.float32)
        loops = best_time(lambda: conv2d_loops(x, w), repeat=2)
        fast = best_time(lambda: conv2d(Tensor(x), Tensor(w)), repeat=20)
        print(f"{label:20} {loops * 1e3:>11.2f} {fast * 1e3:>12.3f} {loops / fast:>8.0f}x")

# %% [markdown]
# **Memory.** im2col copies each input pixel into up to $k_h k_w$ rows. The table gives the size of
# `cols` against the size of the layer's input, per layer, for a batch of 64 in float32. The copy
# lives until backward (the weight's gradient needs it), so this is memory a training step holds.

# %%
print(f"{'layer (batch 64)':28} {'input (KB)':>11} {'cols (KB)':>10} {'ratio':>6}")
for label, x_shape, kernel, padding in [("LeNet 1->6, 5x5, 28x28", (64, 1, 28, 28), 5, 0),
                                        ("LeNet 6->16, 5x5, 12x12", (64, 6, 12, 12), 5, 0),
                                        ("digits 1->16, 3x3 pad 1, 8x8", (64, 1, 8, 8), 3, 1),
                                        ("digits 16->32, 3x3 pad 1, 4x4", (64, 16, 4, 4), 3, 1)]:
    x = np.zeros(x_shape, dtype=np.float32)
    cols = im2col(x, kernel, padding=padding)
    print(f"{label:28} {x.nbytes / 1024:>11.0f} {cols.nbytes / 1024:>10.0f} {cols.nbytes / x.nbytes:>6.1f}")

# %% [markdown]
# **Forward and backward.** Where the time of one training step of a convolution layer goes, batch
# 64, LeNet's second layer: im2col, the forward product, and the backward pass. The weight's and the
# input's gradients are each timed two ways, the form of §3/§4 that `conv2d` uses second: the same
# numbers, in another order of work.

# %%
rng = np.random.default_rng(0)
x = Variable(rng.standard_normal((64, 6, 12, 12)).astype(np.float32), requires_grad=True)
layer = Conv2d(6, 16, 5, rng=rng)
cols = im2col(x.numpy(), 5)
grad = np.ones((16, 8 * 8 * 64), dtype=np.float32)
filters = layer.weight.numpy().reshape(16, -1)


def forward_and_backward():
    layer(x).sum().backward()


with one_blas_thread():
    parts = [("im2col", lambda: im2col(x.numpy(), 5)),
             ("W @ cols", lambda: filters @ cols),
             ("weight grad: G @ cols.T", lambda: grad @ cols.T),
             ("weight grad: (cols @ G.T).T", lambda: (cols @ grad.T).T),
             ("input grad: col2im(W.T @ G)", lambda: col2im(filters.T @ grad, x.shape, 5)),
             ("input grad: col2im_of_product", lambda: col2im_of_product(layer.weight.numpy(), grad, x.shape)),
             ("whole forward + backward", forward_and_backward)]
    for label, work in parts:
        print(f"{label:31} {best_time(work, repeat=20) * 1e3:8.3f} ms")

# %% [markdown]
# **Max pooling's first winners.** The mask of §5 for `MaxPool2d(2)` on activations like the CNN's
# first ones after ReLU (batch 32, 16 channels, 8 x 8, about half zeros), by NumPy's `argmax` over the
# window axis (which finds the same entries) and by `first_largest`'s comparisons of whole rows.

# %%
activations = np.maximum(rng.standard_normal((32, 16, 8, 8)), 0).astype(np.float32)
pool_cols = _Windows(activations, 2, None).cols
pool_largest = pool_cols.max(axis=1, keepdims=True)
assert np.array_equal(first_largest(pool_cols, pool_largest).argmax(axis=1), pool_cols.argmax(axis=1))
by_argmax = best_time(lambda: pool_cols.argmax(axis=1), repeat=50)
by_rows = best_time(lambda: first_largest(pool_cols, pool_largest), repeat=50)
print(f"argmax over the window axis {by_argmax * 1e6:8.1f} us\nfirst_largest (row by row)  {by_rows * 1e6:8.1f} us")

# %% [markdown]
# **Layout.** The same additions of col2im, done on the batch-first layout $(N, C, H, W)$ and on the
# batch-last layout $(C, H, W, N)$ used above, for LeNet's second layer and a batch of 64. The data and
# the number of additions are equal; only the length of the contiguous runs differs ($W_{out} = 8$
# numbers against $W_{out} N = 512$).

# %%
def add_windows(image, windows, kernel, batch_last):
    """The loop of col2im on `windows` (C, kh, kw, OH, OW, N) if batch_last, else (N, C, kh, kw, OH, OW)."""
    oh, ow = windows.shape[3:5] if batch_last else windows.shape[4:6]
    for u in range(kernel):
        for v in range(kernel):
            if batch_last:
                image[:, u:u + oh, v:v + ow] += windows[:, u, v]
            else:
                image[:, :, u:u + oh, v:v + ow] += windows[:, :, u, v]


last = (filters.T @ grad).reshape(6, 5, 5, 8, 8, 64)
first = np.ascontiguousarray(last.transpose(5, 0, 1, 2, 3, 4))
with one_blas_thread():
    for label, windows, shape, batch_last in [("batch first (N, C, H, W)", first, (64, 6, 12, 12), False),
                                              ("batch last (C, H, W, N)", last, (6, 12, 12, 64), True)]:
        elapsed = best_time(lambda: add_windows(np.zeros(shape, dtype=np.float32), windows, 5, batch_last), repeat=20)
        print(f"{label:26} {elapsed * 1e3:8.3f} ms")

# %% [markdown]
# ## 8. Reflection
#
# Answer in a sentence or three each.

# %% [markdown]
# **Q1.** Our `Conv2d` computes a cross-correlation, not a convolution (it does not flip the filter).
# Would a network trained with a flipping layer be any worse? When does the difference matter?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-convolutions-flip", "locked": false, "points": 2, "solution": true}
# No: flipping is a fixed rearrangement of the weights, so whatever filter one layer learns, the other
# learns its mirror image, with the same outputs and the same training. The difference matters when
# weights move between implementations: loading PyTorch's weights into a flipping layer would give a
# different function, and the tests against the loop form and PyTorch would fail.

# %% [markdown]
# **Q2.** im2col trades memory for speed. Using the memory table above, say what the trade is, and
# when it would stop being a good one.

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-convolutions-memory", "locked": false, "points": 2, "solution": true}
# cols holds each pixel up to kh * kw times (9x the input for a 3 x 3 kernel with padding, 11-18x for
# LeNet's 5 x 5 layers), and it stays alive until backward; in return the whole layer is
# one BLAS product instead of one Python step per output number. With large images, large kernels or
# large batches the copy can exceed the memory the activations themselves need; then one processes
# the batch in chunks, or uses methods that never build the whole matrix (direct or FFT/Winograd
# kernels, as cuDNN and oneDNN do).

# %% [markdown]
# **Q3.** After a ReLU, a max-pooling window often holds several zeros and nothing larger. Our
# `MaxPool2d` gives the whole gradient to the first of them. Why not split it equally, as module 06's
# `max` over several axes does? Does it matter for training?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-convolutions-ties", "locked": false, "points": 2, "solution": true}
# Both are valid subgradients of max at a tie, so either trains. We pick PyTorch's rule so that the
# gradients agree with PyTorch exactly (our oracle tests compare them), and because one winner per
# window is cheaper: one index per window is stored, no counting of ties. In practice the
# difference is small, since exact ties among values that matter are rare, and tied ReLU zeros get
# no gradient through the ReLU anyway.

# %% [markdown]
# ## Summary
#
# A convolution is a cross-correlation of filters with windows of the image, with an output size of
# $\lfloor (H + 2p - k)/s \rfloor + 1$. im2col turns it into one matrix product, and col2im, its
# adjoint, sends gradients back, adding up where windows overlap and cropping the padding. `Conv2d`,
# `MaxPool2d` and `AvgPool2d` are modules like any other, so module 08 trains a CNN unchanged.
# Export with `tito module complete 09_convolutions`, then run `tito milestone cnn`.
