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
# # Profiling: where your engine spends its time
#
# Module 11 trained a GPT with the engine you wrote. It works, and it is slower than it needs to be, but
# *where*? Guessing is the usual way to waste a week of optimization. This module builds the tools that
# answer with numbers: how much work a model is (parameters and floating-point operations, FLOPs), a
# **profiler** that watches every operation your engine records and every backward rule it runs, a
# **trace** you can open in a timeline viewer, and a **roofline**: how fast this machine could go for each
# operation, and how far each one is from it.
#
# The profiler costs nothing when it is off: it does not change module 05's engine, it swaps the functions
# that record operations for ones that also log them while it is on, and puts them back after; and it costs
# little when it is on, because it does its bookkeeping after. Module 13 uses its table to decide which
# operations to fuse.
#
# **Objectives.** At the end you can
# - count the parameters of a model and the FLOPs of every operation of the course, forward and backward;
# - measure a model with a profiler that hooks the engine, and read its table like `torch.profiler`'s;
# - write a trace in Chrome's Trace Event Format and look at it in Perfetto;
# - place each operation on this machine's roofline and say whether it is limited by arithmetic or by memory.
#
# | You write here | It becomes | Used by |
# |---|---|---|
# | this notebook, `profiling.ipynb` | `tinytorch.core.profiling` | `tito milestone gpt --profile`, module 13 |

# %%
#| default_exp core.profiling

# %%
#| export
from __future__ import annotations

import gc
import json
import math
import sys
import types
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from time import perf_counter

import numpy as np

from tinytorch.core import autograd as _autograd
from tinytorch.core.autograd import Variable
from tinytorch.core.layers import Module
from tinytorch.core.tensor import Tensor, best_time

# %%
# For the examples and tests below (the exported code does not need them).
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.convolutions import Conv2d, MaxPool2d
from tinytorch.core.layers import Flatten, Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.transformer import GPT, PerPositionLogits

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # comes with scikit-learn; without it, BLAS runs as configured
    threadpool_limits = None
if threadpool_limits is not None:
    # One BLAS thread for every measurement below: on a busy machine a second thread waiting for a core makes
    # small products many times slower, and the times would measure the machine's load, not the engine.
    threadpool_limits(1, "blas")

# %% [markdown]
# ## 1. Counting parameters
#
# A model's size is the number of numbers it learns: the sum of the sizes of its parameters, weights and
# biases alike, as PyTorch's `sum(p.numel() for p in model.parameters())`. One parameter can be used twice
# (a GPT with `tied=True` uses the token embedding again as its output layer): it is still one set of
# numbers, and module 03's `parameters()` lists it once.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "profiling-parameters", "locked": false, "solution": true}
#| export
def count_parameters(model: Module) -> int:
    """The number of learned numbers in `model`: every element of every parameter, a shared parameter once.

    >>> count_parameters(Linear(3, 2))
    8
    """
    ### BEGIN SOLUTION
    return sum(int(parameter.size) for parameter in model.parameters())
    ### END SOLUTION

# %% [markdown]
# ### Test: parameters

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-profiling-parameters", "locked": true, "points": 2, "solution": false}
def test_unit_parameters():
    mlp = Sequential(Linear(64, 32), ReLU(), Linear(32, 10))
    got = count_parameters(mlp)
    assert got == 64 * 32 + 32 + 32 * 10 + 10, f"Linear(64, 32) and Linear(32, 10) hold 2410 numbers (weights and biases), got {got}" + (
        ": count numbers, not bytes" if got in (4 * 2410, 8 * 2410) else ": count elements (p.size), not parameters")
    assert isinstance(got, int), f"count_parameters should return a Python int, got {type(got).__name__}"
    gpt = GPT(10, 8, d_model=16, num_heads=2, num_layers=1, tied=True, rng=np.random.default_rng(0))
    untied = GPT(10, 8, d_model=16, num_heads=2, num_layers=1, rng=np.random.default_rng(0))
    got = count_parameters(untied) - count_parameters(gpt)
    assert got == 16 * 10, f"a tied GPT has no output layer of its own: 160 numbers fewer than an untied one, got {got}"

test_unit_parameters()

# %% [markdown]
# ## 2. FLOPs of matrix products and convolutions
#
# A **FLOP** here is one floating-point add or multiply. A matrix product $(m \times k)(k \times n)$ makes
# $m n$ outputs, each a sum of $k$ products: $k$ multiplies and $k$ adds (counting the first add into a
# zero, as BLAS does and as PyTorch's `FlopCounterMode` counts), so
#
# $$\text{FLOPs} = 2\,m\,k\,n = 2\,k \times (\text{number of outputs}).$$
#
# The same holds for a batched product (a stack of matrices, as attention's `q @ k.T`): every output
# still sums $k$ products. Module 09 computed a convolution as one matrix product `W @ im2col(x)`:
# each output number sums over a window of $C \cdot k_h \cdot k_w$ inputs, so
#
# $$\text{FLOPs} = 2\,(C\,k_h\,k_w) \times (\text{number of outputs } N\,O\,H_{out}\,W_{out}).$$
#
# The bias of a layer is an addition, counted with the elementwise operations (Section 3).

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "profiling-flops", "locked": false, "solution": true}
#| export
def size_of(shape: tuple) -> int:
    """The number of elements of an array of `shape` (1 for a scalar's ())."""
    return math.prod(shape)


def matmul_flops(a_shape: tuple, b_shape: tuple, out_shape: tuple) -> int:
    """FLOPs of `a @ b` (matrices, stacks of matrices, or vectors) giving an array of `out_shape`.

    >>> matmul_flops((4, 3), (3, 2), (4, 2))
    48
    """
    ### BEGIN SOLUTION
    return 2 * a_shape[-1] * size_of(out_shape)
    ### END SOLUTION


def conv2d_flops(weight_shape: tuple, out_shape: tuple) -> int:
    """FLOPs of a convolution with `weight_shape` (O, C, kh, kw) giving `out_shape` (N, O, Hout, Wout), bias aside.

    >>> conv2d_flops((5, 2, 3, 3), (3, 5, 5, 5))
    13500
    """
    ### BEGIN SOLUTION
    return 2 * size_of(weight_shape[1:]) * size_of(out_shape)
    ### END SOLUTION

# %% [markdown]
# ### Test: FLOPs of products

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-profiling-flops", "locked": true, "points": 3, "solution": false}
def test_unit_flops():
    got = matmul_flops((4, 3), (3, 2), (4, 2))
    assert got == 48, f"(4x3) @ (3x2): 8 outputs of 3 multiplies and 3 adds = 48 FLOPs, got {got}" + (
        " (count the adds too: the factor 2)" if got == 24 else " (k is the shared axis, a's last)" if got == 64 else "")
    got = matmul_flops((2, 3), (3, 7), (2, 7))
    assert got == 2 * 2 * 3 * 7, f"(2x3) @ (3x7) is 2*2*3*7 = 84 FLOPs, got {got}: k is the shared axis, a's last"
    got = matmul_flops((8, 4, 5, 6), (8, 4, 6, 5), (8, 4, 5, 5))
    assert got == 2 * 8 * 4 * 5 * 6 * 5, f"a stack of 8 x 4 products (5x6)(6x5) is {2 * 8 * 4 * 5 * 6 * 5} FLOPs, got {got}: every matrix of the batch counts"
    assert matmul_flops((6,), (6, 3), (3,)) == 36, f"a vector (6,) @ (6x3) is 2*6*3 = 36 FLOPs, got {matmul_flops((6,), (6, 3), (3,))}"
    try:
        got = matmul_flops((4, 6), (6,), (4,))
    except IndexError as error:
        got = f"IndexError: {error}"
    assert got == 48, f"a matrix @ vector (4x6) @ (6,) is 2*4*6 = 48 FLOPs, got {got}: k is a's last axis (a vector b has one axis only)"
    got = conv2d_flops((4, 3, 3, 3), (5, 4, 4, 4))
    hints = {8640: ": count the adds too (the factor 2)", 5760: ": the window spans every input channel (C * kh * kw)",
             69120: ": the output channels are in the outputs already (the window is C * kh * kw, not the whole weight)",
             3456: ": every image of the batch counts (N * O * Hout * Wout outputs)"}
    assert got == 17280, f"a 3x3 convolution of 3 channels into 4 on a batch of 5 (4x4 outputs) is 2*(3*3*3)*(5*4*4*4) = 17280 FLOPs, got {got}" + hints.get(got, "")
    got = conv2d_flops((5, 2, 3, 3), (3, 5, 5, 5))
    assert got == 13500, f"a 3x3 convolution of 2 channels into 5 on a batch of 3 (5x5 outputs) is 2*(2*3*3)*(3*5*5*5) = 13500 FLOPs, got {got}" + (
        ": the window spans every input channel (C * kh * kw)" if got == 6750 else "")

test_unit_flops()

# %% [markdown]
# ## 3. FLOPs of every operation, forward and backward
#
# The engine names each operation it records (`"MatMul"`, `"Add"`, `"Sum"`, `"LayerNorm"`, ...). The
# rule for each kind, counting each add, multiply, exp or tanh as one FLOP:
#
# | Kind | Forward | Gradient of each input |
# |---|---|---|
# | `MatMul` | $2k \times$ outputs | another product of the same size: the forward's FLOPs |
# | `Conv2d` | $2\,C k_h k_w \times$ outputs | the forward's FLOPs for `x` and for the weight; the bias: one per output |
# | moving data (`Reshape`, `Permute`, `Index`, `Expand`, `Flip`, `Embedding`) | 0 | 0 |
# | reductions (`Sum`, `Mean`, `Max`, ..., the pools, `SoftmaxCrossEntropy`) | `FLOPS_PER_ELEMENT` (1 unless listed) per **input** element | the same per input element |
# | `CausalAttention` (q, k, v) | its two products: `q @ k.T` and `weights @ v` | q: `g @ v.T` and the scores' gradient times `k`; k: that gradient, transposed, times `q`; v: `weights.T @ g` |
# | everything else (elementwise) | `FLOPS_PER_ELEMENT` (1 unless listed) per **output** element | the same per output element |
#
# The fused operations of modules 10-11 do several elementwise steps in one node: `FLOPS_PER_ELEMENT`
# counts the steps of their forward computation. Module 13 goes further and fuses whole computations into
# one node, and a profile of its GPT must still count them: `SoftmaxCrossEntropy` turns logits into one
# number (a reduction, five steps per logit, as `LogSoftmax`), and `CausalAttention` does attention's two
# products inside one node. `attention_products` (given) measures those products; each gradient is a product
# of the same size as one of them, so the backward pass costs twice the forward, as for `MatMul`. A gradient
# is counted only for an input that needs one, as PyTorch does: no gradient for a batch of data.

# %%
#| export
MOVING_DATA = frozenset({"Reshape", "Permute", "Index", "Expand", "Flip", "Embedding"})
REDUCTIONS = frozenset({"Sum", "Mean", "Max", "Min", "Var", "LogSumExp", "MaxPool2d", "AvgPool2d", "SoftmaxCrossEntropy"})
# The steps per element of operations that do more than one (module 11's GELU: x*x, *c, +1, *x, *s, tanh, +1, *x,
# *0.5; module 10's LayerNorm: mean, subtract, square, mean, scale, *weight, +bias; softmax: max, subtract, exp,
# sum, divide; module 13's SoftmaxCrossEntropy: the log-softmax of each logit).
FLOPS_PER_ELEMENT = {"GELU": 9, "LayerNorm": 7, "Softmax": 5, "LogSoftmax": 5, "Sigmoid": 3, "Tanh": 1,
                     "SoftmaxCrossEntropy": 5}


def attention_products(input_shapes: list) -> tuple[int, int]:
    """FLOPs of the two products inside CausalAttention(q, k, v), for q, k (..., T, D) and v (..., T, Dv):
    (scores = q @ k.T, weights @ v).

    >>> attention_products([(2, 5, 3), (2, 5, 3), (2, 5, 4)])
    (300, 400)
    """
    q, k, v = input_shapes
    scores = q[:-1] + k[-2:-1]  # (..., T, T)
    k_transposed = k[:-2] + (k[-1], k[-2])
    return matmul_flops(q, k_transposed, scores), matmul_flops(scores, v, scores[:-1] + v[-1:])

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "profiling-op-flops", "locked": false, "solution": true}
#| export
def forward_flops(name: str, input_shapes: list, out_shape: tuple) -> int:
    """FLOPs of operation `name` on inputs of `input_shapes` giving `out_shape`, by the table above.

    >>> forward_flops("Add", [(4, 3), (3,)], (4, 3))
    12
    """
    ### BEGIN SOLUTION
    if name == "MatMul":
        return matmul_flops(input_shapes[0], input_shapes[1], out_shape)
    if name == "Conv2d":
        return conv2d_flops(input_shapes[1], out_shape)
    if name == "CausalAttention":
        return sum(attention_products(input_shapes))
    if name in MOVING_DATA:
        return 0
    if name in REDUCTIONS:
        return FLOPS_PER_ELEMENT.get(name, 1) * size_of(input_shapes[0])
    return FLOPS_PER_ELEMENT.get(name, 1) * size_of(out_shape)
    ### END SOLUTION


def gradient_flops(name: str, input_shapes: list, out_shape: tuple, index: int) -> int:
    """FLOPs of the gradient of input number `index` of operation `name`, by the table above.

    >>> gradient_flops("MatMul", [(4, 3), (3, 2)], (4, 2), 1)
    48
    """
    ### BEGIN SOLUTION
    if name == "Conv2d" and index == 2:
        return size_of(out_shape)  # the bias: a sum over everything but the channel
    if name in ("MatMul", "Conv2d"):
        return forward_flops(name, input_shapes, out_shape)
    if name == "CausalAttention":
        scores, weighted = attention_products(input_shapes)
        return (scores + weighted, scores, weighted)[index]  # q: g @ v.T, then times k; k: one; v: weights.T @ g
    if name in REDUCTIONS:
        return FLOPS_PER_ELEMENT.get(name, 1) * size_of(input_shapes[index])
    return forward_flops(name, input_shapes, out_shape)
    ### END SOLUTION

# %% [markdown]
# ### Test: FLOPs of every operation

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-profiling-op-flops", "locked": true, "points": 3, "solution": false}
def test_unit_op_flops():
    assert forward_flops("MatMul", [(4, 3), (3, 2)], (4, 2)) == 48, "a MatMul counts as matmul_flops"
    got = forward_flops("Conv2d", [(3, 2, 7, 7), (5, 2, 3, 3), (5,)], (3, 5, 5, 5))
    assert got == 13500, f"a Conv2d's inputs are (x, weight, bias): its FLOPs are conv2d_flops(weight, out) = 13500, got {got}"
    got = forward_flops("Sum", [(10, 20)], (10,))
    assert got == 200, f"a reduction does one add per INPUT element (200 for (10, 20) -> (10,)), got {got}"
    got = forward_flops("Reshape", [(10, 20)], (200,))
    assert got == 0, f"reshaping moves no number through arithmetic: 0 FLOPs, got {got}"
    assert forward_flops("Embedding", [(5, 3), ()], (2, 3)) == 0, "an embedding looks rows up: 0 FLOPs"
    got = forward_flops("Mul", [(4, 3), ()], (4, 3))
    assert got == 12, f"an elementwise multiply is one FLOP per output element (12), got {got}"
    got = forward_flops("Add", [(3,), (4, 3)], (4, 3))
    assert got == 12, f"an elementwise operation does one FLOP per OUTPUT element: (3,) + (4, 3) broadcasts to 12, got {got}"
    got = forward_flops("GELU", [(4, 3)], (4, 3))
    assert got == 9 * 12, f"GELU does FLOPS_PER_ELEMENT['GELU'] = 9 steps per element: 108, got {got}"
    got = [gradient_flops("MatMul", [(4, 3), (3, 2)], (4, 2), i) for i in (0, 1)]
    assert got == [48, 48], f"each input's gradient of a product is another product of the same size: [48, 48], got {got}"
    got = [gradient_flops("Conv2d", [(3, 2, 7, 7), (5, 2, 3, 3), (5,)], (3, 5, 5, 5), i) for i in (0, 1, 2)]
    assert got == [13500, 13500, 375], f"Conv2d's gradients: x and weight cost the forward's 13500 each, the bias one per output (375); got {got}"
    got = gradient_flops("Sum", [(10, 20)], (10,), 0)
    assert got == 200, f"a reduction's gradient spreads to every input element: 200, got {got}"
    assert gradient_flops("Mul", [(4, 3), (4, 3)], (4, 3), 1) == 12, "an elementwise gradient is one per output element"
    got = forward_flops("SoftmaxCrossEntropy", [(6, 10), (6,)], ())
    assert got == 5 * 60, f"SoftmaxCrossEntropy reduces 6 x 10 logits to one number, 5 steps per INPUT element: 300, got {got}"
    attention = [(2, 4, 5, 3), (2, 4, 5, 3), (2, 4, 5, 7)]  # q, k, v: 2 x 4 heads, 5 positions
    scores, weighted = 2 * 3 * (2 * 4 * 5 * 5), 2 * 5 * (2 * 4 * 5 * 7)
    got = forward_flops("CausalAttention", attention, (2, 4, 5, 7))
    assert got == scores + weighted, f"CausalAttention does two products, q @ k.T ({scores}) and weights @ v ({weighted}): {scores + weighted}, got {got}"
    got = [gradient_flops("CausalAttention", attention, (2, 4, 5, 7), i) for i in (0, 1, 2)]
    assert got == [scores + weighted, scores, weighted], (
        f"CausalAttention's gradients: q needs g @ v.T and a product with k ({scores + weighted}), k one product ({scores}), "
        f"v weights.T @ g ({weighted}); got {got}")

test_unit_op_flops()

# %% [markdown]
# ## 4. What backward keeps alive
#
# Every rule that module 05 records is a function that will need some arrays later: `multiply`'s rule for
# `a` holds `b`, `matmul`'s holds both operands, `exp`'s holds its output. Python keeps them in the rule's
# **closure**: `rule.__closure__` is a tuple of cells, each `cell.cell_contents` one captured value. A rule
# can capture a helper function that captures more (module 05's `matmul` for vectors does), and two rules
# of one operation often capture the same array: count every array once. A rule can also be a
# `functools.partial`, a function with some arguments already given: it keeps those arguments (its `.args`)
# alive the same way (the profiler of Section 5 makes its timed rules that way).
#
# This is the memory that `torch.profiler` calls "saved tensors": it stays allocated from the forward pass
# until the backward pass has used it.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "profiling-saved", "locked": false, "solution": true}
#| export
def _captured(function: types.FunctionType) -> list:
    """The values held in the closure of `function` (a cell not yet filled is skipped)."""
    values = []
    for cell in function.__closure__ or ():
        try:
            values.append(cell.cell_contents)
        except ValueError:
            pass
    return values


def saved_bytes(rules) -> int:
    """The bytes of the distinct NumPy arrays that the functions `rules` capture (in their closures, or as the
    arguments of a `functools.partial`), directly or through functions they capture.

    >>> b = np.ones(10, dtype=np.float32)
    >>> saved_bytes([lambda g: g * b, lambda g: g + b])
    40
    """
    ### BEGIN SOLUTION
    seen, total = set(), 0
    waiting = list(rules)
    while waiting:
        value = waiting.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, np.ndarray):
            total += value.nbytes
        elif isinstance(value, types.FunctionType):
            waiting.extend(_captured(value))
        elif isinstance(value, partial):
            waiting.extend(value.args)
    return total
    ### END SOLUTION

# %% [markdown]
# ### Test: saved bytes

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "profiling-saved-rules", "locked": true, "solution": false}
def rules_capturing(a: np.ndarray, b: np.ndarray) -> dict:
    """Backward rules that capture arrays as recorded operations' rules do, for the test below (given). They are
    made here, not in the test cell, because `saved_bytes` looks into the closures of functions of its own
    process: graded, your code runs in a sandbox and the tests outside it."""
    def helper(g):
        return g * a

    return {"a and b": [lambda g: g @ b.T, lambda g: a.T @ g], "b twice": [lambda g: g * b, lambda g: g * b],
            "nothing": [np.negative, lambda g: g], "a through a helper": [lambda g: helper(g) + 1],
            "partials of b and a": [partial(np.multiply, b), partial(lambda c, g: g * c, a)]}

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-profiling-saved", "locked": true, "points": 2, "solution": false}
def test_unit_saved():
    a, b = np.ones((4, 3), dtype=np.float32), np.ones((3, 5), dtype=np.float64)
    rules = rules_capturing(a, b)
    got = saved_bytes(rules["a and b"])
    assert got == a.nbytes + b.nbytes, f"two rules holding a (48 bytes) and b (120 bytes): 168, got {got}" + (
        ": count bytes (nbytes), not elements" if got == a.size + b.size else "")
    got = saved_bytes(rules["b twice"])
    assert got == b.nbytes, f"two rules capturing the same array keep it once: {b.nbytes} bytes, got {got}"
    assert saved_bytes(rules["nothing"]) == 0, "rules that capture nothing keep nothing"
    got = saved_bytes(rules["a through a helper"])
    assert got == a.nbytes, f"a rule that calls a helper capturing `a` keeps `a` ({a.nbytes} bytes) alive, got {got}: follow captured functions"
    got = saved_bytes(rules["partials of b and a"])
    assert got == a.nbytes + b.nbytes, f"a partial keeps its arguments alive (b, and a given to a function): {a.nbytes + b.nbytes} bytes, got {got}: follow a partial's args"
    x = Variable(np.ones(3), requires_grad=True)
    y = x.exp()
    got = saved_bytes([rule for _, rule in y.grad_fn.edges])
    assert got == 24, f"exp's rule keeps its output (3 float64 = 24 bytes), got {got}"

test_unit_saved()

# %% [markdown]
# ## 5. A profiler that hooks the engine
#
# Every operation of the course ends in one function: module 05's `record(value, name, *edges)`, called by
# module 05's and 06's operations, convolutions, attention, LayerNorm, GELU and the fused kernels alike. It
# receives the finished result, the operation's name and its `(input, rule)` edges: everything a profiler needs.
#
# **The hook.** Python looks a global name up each time a function runs. So while the profiler is on, it
# replaces `record` in every module that holds it with a *recording* version that writes the operation
# down, wraps each rule in a timed one and calls the original; on exit it puts the originals back. When the
# profiler is off nothing is different: the engine's hot path runs exactly the code it ran before
# (`benchmarks/profiling.md` measures it). The same trick wraps `Module.__call__` (a range per layer, named
# `Linear()`, `Block()`, ...) and `Variable.backward` (a range `backward()` around the backward pass).
#
# **Write down now, work out later.** A profiler runs inside what it measures. Every microsecond it spends
# while the program runs is added to the program, and an operation of module 05's engine on a small array
# takes only a few microseconds: a profiler that counted FLOPs, walked closures and built an `Event` at each
# operation could easily cost more than the operation itself. So while it is on, the hook does only what
# cannot wait: it reads the clock and appends one tuple to a list, the **log**: the operation's name, the
# shapes and sizes of its inputs and result (read, not copied: holding the arrays themselves would keep every
# intermediate result alive), and the edges its graph node kept. The FLOPs of Section 3, the bytes of
# Section 4 and the nesting of layers are worked out once the profiler has stopped, from the log.
# `torch.profiler` is built the same way: while it is on, its callbacks push raw records (an operator, two
# timestamps, and input shapes only if you ask with `record_shapes=True`) into a buffer, and the events and
# their tree are built when it stops. The price is memory: through the kept edges, the log keeps what each
# graph node saved for backward (the arrays its rules hold) until the profiler stops, where the engine alone
# would free it after the backward pass. Profile a few steps, not a whole training run.
#
# **The log and the garbage collector.** Off, an operation's rules and graph node are freed as soon as
# the backward pass is done with them. On, the log keeps them, and Python's cycle collector, which runs
# whenever many more objects have been created than freed, would scan the growing log again and again:
# time spent because of the profiler, charged to whichever operation happens to be running. So the profiler
# switches the collector off while it is on and back on when it stops, as Python's `timeit` does while it
# times (reference counting still frees everything the log does not hold).
#
# The log holds four kinds of entry, in the order they happen:
#
# | Entry | Written when |
# |---|---|
# | `("begin", label, start)` | a layer or the backward pass starts |
# | `("forward", name, start, stop, inputs, output, kept)` | an operation is recorded: `inputs` one `(shape, bytes)` per input, `output` the result's, `kept` the `(input, rule)` edges of its graph node (none if it recorded none: under `no_grad`, or with no input needing a gradient) |
# | `("backward", start, stop, position, index, moved)` | a rule returns: its operation is `log[position]`, it computes the gradient of input number `index`, and read and wrote `moved` bytes of gradient |
# | `("end", stop)` | the layer or backward pass that began last ends |
#
# **Times.** The recording function runs when the operation's arithmetic is *done*. An operation's time
# is therefore the time since the profiler last logged an operation or the start or end of a layer (the
# clock): its own arithmetic plus the Python that prepared it. A rule is timed exactly, around its call.
# The profiler's own work is left out: the clock restarts after it.
#
# ```
#  clock ──── Linear.__call__ ────────────────────────────────┐ range "Linear"
#        │ x @ weight  (MatMul: clock -> record) │ + bias (Add) │
# ```
#
# A layer's **total** time runs from its start to its end; its **self** time is the total minus the
# totals of everything recorded directly inside it. An operation's self and total times are equal.
# The hook is given below; you write what happens after it.

# %%
#| export
@dataclass
class Event:
    """One thing the profiler saw: an operation (`kind` "forward"), a rule ("backward") or a layer or the
    backward pass ("range"); times in seconds from `time.perf_counter()`."""
    name: str
    kind: str
    start: float
    duration: float
    self_time: float
    flops: int = 0
    saved_bytes: int = 0
    bytes_moved: int = 0
    depth: int = 0
    input: int | None = None  # for a rule: the number of the input whose gradient it computes


def footprint(value) -> tuple:
    """(shape, bytes) of the array behind a Variable, Tensor, array or number (a Python number: ((), 0)), read
    without making an array."""
    if type(value) is not np.ndarray:  # an operation's result is one: it goes straight through
        if isinstance(value, Variable):
            value = value.data.data
        elif isinstance(value, (int, float)) or value is None:
            return (), 0
        elif isinstance(value, Tensor):
            value = value.data
        else:
            value = np.asarray(value)
    return value.shape, value.nbytes


RECORD = _autograd.record  # the one function every operation is recorded through
_MODULE_CALL = Module.__call__


class Profiler:
    """`with Profiler() as prof:` logs every operation, backward rule and layer run inside; when it stops, the log
    becomes `prof.events`, read through `prof.key_averages()`, `prof.table()` and `prof.export_chrome_trace(path)`."""

    def __init__(self):
        self.events: list[Event] = []  # built from the log when the profiler stops
        self._log: list[tuple] = []    # what the hooks write while it is on: the entries of the table above
        self._clock = 0.0              # when the last operation or range start or end was logged
        self._active = False
        self._swapped: list = []       # (owner, attribute, original) to put back on exit
        self._collecting = False       # whether Python's cycle collector ran before the profiler started

    def __enter__(self) -> Profiler:
        if Module.__call__ is not _MODULE_CALL:
            raise RuntimeError("a Profiler is already on: profilers do not nest, measure with the outer one")
        for module in list(sys.modules.values()):
            if getattr(module, "__dict__", {}).get("record") is RECORD:
                self._swap(module, "record", self._recording(RECORD))
        self._swap(Module, "__call__", self._ranged(Module.__call__, lambda module: type(module).__name__ + "()"))
        self._swap(Variable, "backward", self._ranged(Variable.backward, lambda variable: "backward()"))
        self._collecting = gc.isenabled()
        gc.disable()  # "the log and the garbage collector", above
        self._active = True
        self._clock = perf_counter()
        return self

    def __exit__(self, *exc) -> bool:
        self._active = False
        for owner, attribute, original in reversed(self._swapped):
            setattr(owner, attribute, original)
        self._swapped.clear()
        try:  # the bookkeeping, now that nothing is measured; then the log lets go of what it held
            self.events, self._log = events_from_log(self._log), []
        finally:
            if self._collecting:
                gc.enable()
        return False

    def _swap(self, owner, attribute: str, replacement) -> None:
        self._swapped.append((owner, attribute, getattr(owner, attribute)))
        setattr(owner, attribute, replacement)

    def _recording(self, record):
        """Module 05's `record`, logging each operation and wrapping its rules in timed ones."""
        log, timed_rule = self._log, self._timed_rule

        def recorded(value, name, *edges):
            stop = perf_counter()  # the operation's arithmetic is done
            if not self._active:   # kept by a module imported while the profiler was on
                return record(value, name, *edges)
            position = len(log)    # where this operation's entry goes: its rules point there
            # Only a Variable can receive a gradient: the rules of numbers and arrays never run.
            result = record(value, name, *[(source, partial(timed_rule, rule, position, index)
                                            if isinstance(source, Variable) else rule)
                                           for index, (source, rule) in enumerate(edges)])
            node = getattr(result, "grad_fn", None)
            log.append(("forward", name, self._clock, stop, [footprint(source) for source, _ in edges],
                        footprint(value), () if node is None else node.edges))
            self._clock = perf_counter()
            return result
        return recorded

    def _timed_rule(self, rule, position: int, index: int, g):
        """`rule(g)`, logging when it ran and the bytes of gradient it read and wrote (`partial` binds the first three)."""
        start = perf_counter()
        grad = rule(g)
        stop = perf_counter()
        if self._active:  # not for a graph recorded under the profiler whose backward runs after it
            self._log.append(("backward", start, stop, position, index, g.nbytes + grad.nbytes))
        return grad

    def _ranged(self, method, label):
        """`method` (a layer's call, or backward), logged as a range around everything it runs."""
        log = self._log

        def ranged(owner, *args, **kwargs):
            if not self._active:
                return method(owner, *args, **kwargs)
            name = label(owner)
            start = self._clock = perf_counter()
            log.append(("begin", name, start))
            try:
                return method(owner, *args, **kwargs)
            finally:
                log.append(("end", perf_counter()))
                self._clock = perf_counter()
        return ranged

    # --- what it measured, through the functions of Sections 6 and 7 ---
    def key_averages(self, sort_by: str = "self_time") -> list:
        return key_averages(self.events, sort_by)

    def table(self, sort_by: str = "self_time", row_limit: int | None = None) -> str:
        return format_table(key_averages(self.events, sort_by), row_limit)

    def export_chrome_trace(self, path) -> Path:
        return export_chrome_trace(self.events, path)

# %% [markdown]
# ### After the profiled region: from the log to events
#
# Once the profiler has stopped, nothing is being measured, and each entry can take the work it needs. An
# operation's entry becomes an `Event` with its FLOPs (`forward_flops` of its input and output shapes), the
# bytes its graph node keeps for backward (`saved_bytes` of the kept edges' rules: none under `no_grad`) and the
# bytes it moved (its inputs read, its result written). A rule's entry becomes an `Event` named after its
# operation with `Backward` appended (`torch.profiler` says `MmBackward0`), with the FLOPs of the gradient it
# computed (`gradient_flops`) and the number of that input.
#
# Then the nesting: walk the log in order with a stack of the ranges begun and not yet ended. Every event's
# **depth** is the number of ranges open around it; its duration adds to the time spent directly inside the
# innermost open range, so that when a range ends, its self time is its duration less that.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "profiling-profiler", "locked": false, "solution": true}
#| export
def operation_event(entry: tuple) -> Event:
    """The Event of a logged operation `("forward", name, start, stop, inputs, output, kept)`: its FLOPs, the bytes
    its kept rules hold, the bytes of its inputs and its result; its self time is its duration."""
    _, name, start, stop, inputs, output, kept = entry
    ### BEGIN SOLUTION
    flops = forward_flops(name, [shape for shape, _ in inputs], output[0])
    moved = sum(size for _, size in inputs) + output[1]
    return Event(name, "forward", start, stop - start, stop - start, flops,
                 saved_bytes([rule for _, rule in kept]), moved)
    ### END SOLUTION


def rule_event(entry: tuple, log: list) -> Event:
    """The Event of a logged rule `("backward", start, stop, position, index, moved)` of the operation `log[position]`:
    named after it with "Backward", the FLOPs of the gradient of its input `index`, that index as `input`."""
    _, start, stop, position, index, moved = entry
    _, name, _, _, inputs, output, _ = log[position]
    ### BEGIN SOLUTION
    flops = gradient_flops(name, [shape for shape, _ in inputs], output[0], index)
    return Event(name + "Backward", "backward", start, stop - start, stop - start, flops, 0, moved, input=index)
    ### END SOLUTION


def events_from_log(log: list) -> list:
    """One Event per operation, rule and range of `log`, in the log's order (a range's where it ends), each with its
    depth (the ranges open around it); a range's self time is its duration less those of the events directly inside."""
    events = []
    open_ranges = []  # the ranges begun and not ended: [label, start, duration of the events directly inside]
    ### BEGIN SOLUTION
    for entry in log:
        kind = entry[0]
        if kind == "begin":
            open_ranges.append([entry[1], entry[2], 0.0])
            continue
        if kind == "end":
            label, start, inside = open_ranges.pop()
            event = Event(label, "range", start, entry[1] - start, entry[1] - start - inside)
        elif kind == "forward":
            event = operation_event(entry)
        else:
            event = rule_event(entry, log)
        event.depth = len(open_ranges)
        if open_ranges:
            open_ranges[-1][2] += event.duration
        events.append(event)
    return events
    ### END SOLUTION

# %% [markdown]
# ### Test: the profiler

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-profiling-profiler", "locked": true, "points": 4, "solution": false}
def test_unit_profiler():
    # A log written by hand: a Block() running a Linear() (a MatMul and an Add) and a Mul, then the backward pass
    # running the MatMul's rule for the weight; times in seconds.
    a, w = np.ones((5, 6), dtype=np.float32), np.ones((6, 4), dtype=np.float32)
    out = a @ w
    holding_w, holding_a = rules_capturing(a, w)["a and b"]  # given in Section 4: rules beside your code
    matmul = ([(a.shape, a.nbytes), (w.shape, w.nbytes)], (out.shape, out.nbytes),
              [(None, holding_w), (None, holding_a)])
    elementwise = ([(out.shape, out.nbytes), ((), 0)], (out.shape, out.nbytes), [(None, lambda g: g)])
    log = [("begin", "Block()", 1.000),
           ("begin", "Linear()", 1.001),
           ("forward", "MatMul", 1.001, 1.004, *matmul),
           ("forward", "Add", 1.004, 1.005, *elementwise),
           ("end", 1.007),
           ("forward", "Mul", 1.007, 1.009, *elementwise),
           ("end", 1.010),
           ("begin", "backward()", 1.020),
           ("backward", 1.021, 1.023, 2, 1, 176),
           ("end", 1.025)]
    events = events_from_log(log)
    got = [(event.kind, event.name) for event in events]
    expected = [("forward", "MatMul"), ("forward", "Add"), ("range", "Linear()"), ("forward", "Mul"), ("range", "Block()"),
                ("backward", "MatMulBackward"), ("range", "backward()")]
    assert got == expected, f"one Event per operation, rule and range, in the log's order (a range's where it ends): expected {expected}, got {got}"
    by_name = {event.name: event for event in events}
    product, block, linear, rule = by_name["MatMul"], by_name["Block()"], by_name["Linear()"], by_name["MatMulBackward"]
    assert abs(product.duration - 0.003) < 1e-9 and abs(product.start - 1.001) < 1e-12, f"an operation runs from its start to its stop (1.001 s, 3 ms), got {product.start}, {product.duration}"
    assert product.self_time == product.duration, f"an operation's self time is its duration, got {product.self_time} for {product.duration}"
    assert product.flops == 240, f"the MatMul's Event carries the forward_flops of its shapes (2*5*6*4 = 240), got {product.flops}"
    assert product.saved_bytes == a.nbytes + w.nbytes, f"the MatMul's kept rules hold a and w ({a.nbytes + w.nbytes} bytes), got {product.saved_bytes}"
    got = product.bytes_moved
    assert got == a.nbytes + w.nbytes + out.nbytes, f"bytes moved: its inputs read and its result written ({a.nbytes + w.nbytes + out.nbytes}), got {got}"
    depths = {event.name: event.depth for event in events}
    assert depths == {"Block()": 0, "Linear()": 1, "MatMul": 2, "Add": 2, "Mul": 1, "backward()": 0, "MatMulBackward": 1}, f"an Event's depth is the number of ranges open around it: count the open ranges, got {depths}"
    assert abs(linear.duration - 0.006) < 1e-9, f"Linear() runs from its begin (1.001) to its end (1.007): 6 ms, got {linear.duration}"
    assert abs(linear.self_time - 0.002) < 1e-9, f"a range's self time is its duration less the events inside it: 6 - 3 - 1 = 2 ms for Linear(), got {linear.self_time * 1e3:.3f} ms"
    assert abs(block.self_time - 0.002) < 1e-9, f"a range's self time is its duration less the events directly inside it (Linear() 6 ms and Mul 2 ms, not the MatMul again): 10 - 6 - 2 = 2 ms for Block(), got {block.self_time * 1e3:.3f} ms"
    assert rule.input == 1 and rule.flops == 240, f"the rule computes the gradient of input 1 (the weight) of the MatMul: gradient_flops 240, record its input; got input {rule.input}, {rule.flops} FLOPs"
    assert rule.bytes_moved == 176 and abs(rule.duration - 0.002) < 1e-9, f"a rule's Event keeps the bytes it moved (176) and runs 2 ms, got {rule.bytes_moved}, {rule.duration}"
    conv = ([((2, 1, 5, 5), 400), ((3, 1, 3, 3), 216), ((3,), 24)], ((2, 3, 3, 3), 432), [])
    got = events_from_log([("forward", "Conv2d", 0.0, 1.0, *conv), ("backward", 1.0, 2.0, 0, 2, 0)])[1].flops
    assert got == 2 * 3 * 3 * 3, f"a convolution's bias rule does one add per output (54 FLOPs): a rule's FLOPs are its gradient_flops, got {got}"

    # The real thing: a layer, forward and backward, under the profiler.
    rng = np.random.default_rng(0)
    layer = Linear(6, 4, rng=rng)
    x = Tensor(rng.standard_normal((5, 6)).astype(np.float32))
    original = _autograd.record
    with Profiler() as prof:
        loss = layer(x).sum()
        loss.backward()
    assert _autograd.record is original, "after the profiler, module 05's record must be the original again"
    names = [(event.kind, event.name) for event in prof.events]
    for expected in [("forward", "MatMul"), ("forward", "Add"), ("range", "Linear()"), ("forward", "Sum"),
                     ("backward", "MatMulBackward"), ("backward", "SumBackward"), ("range", "backward()")]:
        assert expected in names, f"the profiler should record {expected}, got {names}"
    by_name = {event.name: event for event in prof.events}
    product, linear, add = by_name["MatMul"], by_name["Linear()"], by_name["Add"]
    got = product.saved_bytes
    assert got == x.numpy().nbytes, f"x needs no gradient: MatMul's graph node keeps only the weight's rule, which holds x ({x.numpy().nbytes} bytes), got {got}"
    assert product.start >= linear.start and product.start + product.duration <= linear.start + linear.duration + 1e-9, "an operation inside a layer must lie inside the layer's time"
    assert add.start >= product.start + product.duration - 1e-9, "Add starts after MatMul ended"
    assert 0 <= linear.self_time < linear.duration, "the layer's self time must leave out its operations"
    assert layer.weight.grad is not None and np.allclose(layer.weight.grad, x.numpy().sum(axis=0)[:, None]), "the profiled backward must give the same gradients"
    rules = [e for e in prof.events if e.name == "MatMulBackward"]
    assert [e.input for e in rules] == [1], f"x needs no gradient: one MatMul rule runs, the weight's (input 1), got inputs {[e.input for e in rules]}"
    with no_grad():
        with Profiler() as quiet:
            layer(x)
    assert [e.saved_bytes for e in quiet.events if e.name == "MatMul"] == [0], "under no_grad nothing is saved for backward"

test_unit_profiler()

# %% [markdown]
# ## 6. The table
#
# One event per call is too much to read: `torch.profiler`'s `key_averages()` groups the events by name,
# and its `table()` sorts the groups, most self time first. Ours does the same: per name, the number of
# calls, the summed self and total times, FLOPs and saved bytes. Sorted by self time, the top rows are
# where the time really goes; total time would put the outer layers (the whole `GPT`) on top.

# %%
#| export
@dataclass
class OpSummary:
    """All the events of one name: `calls`, summed `self_time` and `total_time` (seconds), `flops`, `saved_bytes`
    and `bytes_moved`."""
    name: str
    kind: str
    calls: int = 0
    self_time: float = 0.0
    total_time: float = 0.0
    flops: int = 0
    saved_bytes: int = 0
    bytes_moved: int = 0

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "profiling-table", "locked": false, "solution": true}
#| export
SORT_KEYS = ("self_time", "total_time", "calls", "flops", "saved_bytes")


def key_averages(events: list, sort_by: str = "self_time") -> list:
    """One OpSummary per event name (in the order of first appearance while grouping), sorted by `sort_by`,
    largest first."""
    if sort_by not in SORT_KEYS:
        raise ValueError(f"sort_by must be one of {SORT_KEYS}, got {sort_by!r}")
    ### BEGIN SOLUTION
    groups: dict[str, OpSummary] = {}
    for event in events:
        row = groups.setdefault(event.name, OpSummary(event.name, event.kind))
        row.calls += 1
        row.self_time += event.self_time
        row.total_time += event.duration
        row.flops += event.flops
        row.saved_bytes += event.saved_bytes
        row.bytes_moved += event.bytes_moved
    return sorted(groups.values(), key=lambda row: getattr(row, sort_by), reverse=True)
    ### END SOLUTION


def format_table(rows: list, row_limit: int | None = None) -> str:
    """The rows as a text table like torch.profiler's, with each row's share of the summed self time."""
    whole = sum(row.self_time for row in rows) or 1.0
    shown = rows[:row_limit]
    width = max([22] + [len(row.name) for row in shown])  # the name column fits the longest name shown
    lines = [f"{'Name':<{width}} {'Self %':>7} {'Self ms':>9} {'Total ms':>9} {'Calls':>6} {'MFLOPs':>9} {'Saved KB':>9}"]
    lines.append("-" * len(lines[0]))
    for row in shown:
        lines.append(f"{row.name:<{width}} {row.self_time / whole:>7.1%} {row.self_time * 1e3:>9.3f} "
                     f"{row.total_time * 1e3:>9.3f} {row.calls:>6} {row.flops / 1e6:>9.3f} {row.saved_bytes / 1024:>9.1f}")
    lines.append(f"Self time total: {whole * 1e3:.3f} ms")
    return "\n".join(lines)


# %% [markdown]
# ### Test: the table

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-profiling-table", "locked": true, "points": 3, "solution": false}
def test_unit_table():
    events = [Event("MatMul", "forward", 0.0, 0.003, 0.003, flops=100, saved_bytes=8, bytes_moved=40),
              Event("Add", "forward", 0.003, 0.001, 0.001, flops=10),
              Event("Linear()", "range", 0.0, 0.006, 0.0015),
              Event("MatMul", "forward", 0.006, 0.002, 0.002, flops=100, saved_bytes=8, bytes_moved=24)]
    rows = key_averages(events)
    names = [row.name for row in rows]
    assert len(rows) == 3, f"one row per name: 3 rows for MatMul, Add, Linear(), got {len(rows)}: {names}"
    assert names == ["MatMul", "Linear()", "Add"], f"sorted by self time, largest first (MatMul 5 ms, Linear() 1.5 ms, Add 1 ms), got {names}"
    matmul = rows[0]
    assert matmul.calls == 2, f"MatMul was called twice, got calls={matmul.calls}"
    assert abs(matmul.self_time - 0.005) < 1e-12 and abs(matmul.total_time - 0.005) < 1e-12, f"MatMul's times sum over its calls: 5 ms, got self {matmul.self_time}, total {matmul.total_time}"
    assert matmul.flops == 200 and matmul.saved_bytes == 16, f"FLOPs and saved bytes sum over calls: 200 and 16, got {matmul.flops} and {matmul.saved_bytes}"
    assert matmul.bytes_moved == 64, f"bytes moved sum over calls: 40 + 24 = 64, got {matmul.bytes_moved}"
    kinds = [row.kind for row in rows]
    assert kinds == ["forward", "range", "forward"], f"a row keeps its events' kind (the roofline reads the forward rows only): expected ['forward', 'range', 'forward'], got {kinds}"
    linear = rows[1]
    assert abs(linear.self_time - 0.0015) < 1e-12 and abs(linear.total_time - 0.006) < 1e-12, f"a range's self time (1.5 ms) and total time (6 ms) differ: self sums self_time, total sums duration; got {linear.self_time}, {linear.total_time}"
    by_total = [row.name for row in key_averages(events, "total_time")]
    assert by_total == ["Linear()", "MatMul", "Add"], f"sort_by='total_time' sorts by the summed durations (Linear() 6 ms first), got {by_total}"
    assert [row.name for row in key_averages(events, "calls")][0] == "MatMul", "sort_by='calls' puts the most calls first"
    assert "MatMul" in format_table(rows) and "Self ms" in format_table(rows)

test_unit_table()

# %% [markdown]
# **Your GPT, profiled.** Two training steps of a small GPT: the table of the second (the first warms the
# memory allocator and NumPy's caches up). Layers appear as ranges (`Linear()`, `Block()`, ...) whose total
# time includes their operations.

# %%
rng = np.random.default_rng(0)
small_gpt = GPT(40, 32, d_model=32, num_heads=4, num_layers=2, rng=rng)
ids = rng.integers(0, 40, (16, 33))
step_inputs, step_targets = Tensor(ids[:, :-1].astype(np.float32)), ids[:, 1:]
loss_fn = CrossEntropyLoss()


def training_step():
    loss = loss_fn(PerPositionLogits(small_gpt)(step_inputs), step_targets)
    loss.backward()
    small_gpt.zero_grad()


training_step()
with Profiler() as prof:
    training_step()
print(prof.table(row_limit=14))

# %% [markdown]
# ## 7. A trace for a timeline viewer
#
# A table adds up; a **timeline** shows the order: which layer ran when, what ran inside it, where the
# backward pass starts. Chrome's Trace Event Format is the common language of timeline viewers (Perfetto,
# `chrome://tracing`, VizTracer's `vizviewer`): a JSON object `{"traceEvents": [...]}` in which a
# *complete* event is
#
# ```
# {"name": "MatMul", "cat": "forward", "ph": "X", "ts": 1520.3, "dur": 41.7, "pid": 1, "tid": 1, "args": {...}}
# ```
#
# with `ts` (start) and `dur` (duration) in **microseconds**. Events of one thread that lie inside each
# other are drawn nested, which is how a layer's operations appear under it. Times start at the first
# event (`ts` of 0), and `args` carries the FLOPs and saved bytes, shown when you click an event.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "profiling-trace", "locked": false, "solution": true}
#| export
def trace_event(event: Event, origin: float) -> dict:
    """`event` as a complete ("X") event of Chrome's Trace Event Format, its start counted from `origin`
    (seconds), times in microseconds, on process 1, thread 1, its kind as "cat", its FLOPs and saved bytes in
    "args"."""
    ### BEGIN SOLUTION
    return {"name": event.name, "cat": event.kind, "ph": "X", "ts": (event.start - origin) * 1e6,
            "dur": event.duration * 1e6, "pid": 1, "tid": 1,
            "args": {"flops": event.flops, "saved_bytes": event.saved_bytes}}
    ### END SOLUTION


def chrome_trace(events: list) -> dict:
    """The events as a Trace Event Format object, times counted from the earliest start."""
    origin = min((event.start for event in events), default=0.0)
    return {"traceEvents": [trace_event(event, origin) for event in events], "displayTimeUnit": "ms"}


def export_chrome_trace(events: list, path) -> Path:
    """Write the trace of `events` as JSON to `path` (open it in https://ui.perfetto.dev or `vizviewer`)."""
    path = Path(path)
    path.write_text(json.dumps(chrome_trace(events)))
    return path

# %% [markdown]
# ### Test: the trace

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-profiling-trace", "locked": true, "points": 3, "solution": false}
def test_unit_trace():
    event = Event("MatMul", "forward", 10.5, 0.000042, 0.000042, flops=240, saved_bytes=96)
    got = trace_event(event, origin=10.0)
    assert got.get("ph") == "X", f"a complete event has ph 'X' (one event with a duration), got {got.get('ph')!r}"
    assert abs(got.get("ts", 0) - 500_000) < 1e-3, f"ts is in microseconds from the origin: 0.5 s -> 500000, got {got.get('ts')}"
    assert abs(got.get("dur", 0) - 42) < 1e-6, f"dur is in microseconds: 42 us, got {got.get('dur')}"
    assert got.get("name") == "MatMul" and got.get("cat") == "forward", f"name and cat (the kind) are needed, got {got}"
    assert got.get("pid") == 1 and got.get("tid") == 1, "one process, one thread: pid 1, tid 1"
    assert got.get("args") == {"flops": 240, "saved_bytes": 96}, f"args carry flops and saved_bytes, got {got.get('args')}"
    json.dumps(got)  # must be plain JSON
    got = trace_event(Event("Linear()", "range", 10.0, 0.006, 0.0015), origin=10.0).get("dur")
    assert got is not None and abs(got - 6000) < 1e-6, f"a range's dur is its whole duration (6 ms = 6000 us), not its self time: a layer is drawn around what ran inside it; got {got}"
    trace = chrome_trace(prof.events)
    starts = [item["ts"] for item in trace["traceEvents"]]
    assert min(starts) == 0 and len(starts) == len(prof.events), "the GPT step's trace starts at ts 0 with one event per event"

test_unit_trace()

# %%
import tempfile

trace_path = export_chrome_trace(prof.events, Path(tempfile.mkdtemp()) / "gpt_step_trace.json")
print(f"{trace_path}: {len(prof.events)} events; open it at https://ui.perfetto.dev, or run `vizviewer {trace_path}`")

# %% [markdown]
# ## 8. The roofline
#
# An operation needs arithmetic and it needs to move its numbers between memory and the processor. The
# machine has a peak for each: $P$ FLOPs per second (measured here as the speed of a large float32 matrix
# product, the fastest thing NumPy does) and $B$ bytes per second (measured by copying an array much
# larger than the caches). An operation's **arithmetic intensity** $I$ is its FLOPs per byte moved (its
# inputs read, its output written). It cannot run faster than
#
# $$\text{attainable}(I) = \min(P,\; I \cdot B)$$
#
# FLOPs per second: below the **ridge** $I = P / B$ memory is the limit (elementwise operations, at
# fewer than one FLOP per byte), above it arithmetic is (large matrix products). The **fraction** of the
# roof an operation achieves says how much room is left: a memory-bound operation near its roof can only
# get faster by moving fewer bytes, which is what fusing operations (module 13) does. The bandwidth is
# measured on an array far larger than the caches: an operation whose arrays fit in a cache can read them
# faster, and a fraction above 100% says exactly that.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "profiling-roofline", "locked": false, "solution": true}
#| export
@dataclass
class RooflinePoint:
    name: str
    intensity: float    # FLOPs per byte moved
    achieved: float     # FLOPs per second measured
    attainable: float   # FLOPs per second the roof allows at this intensity
    fraction: float     # achieved / attainable


def roofline_point(name: str, flops: float, bytes_moved: float, seconds: float, peak: float,
                   bandwidth: float) -> RooflinePoint:
    """Where an operation that did `flops` FLOPs moving `bytes_moved` bytes in `seconds` sits under the roof of a
    machine with `peak` FLOPs/s and `bandwidth` bytes/s.

    >>> roofline_point("Add", 100, 1200, 1e-6, peak=1e10, bandwidth=1e10).attainable
    833333333.3333334
    """
    ### BEGIN SOLUTION
    intensity = flops / bytes_moved
    achieved = flops / seconds
    attainable = min(peak, intensity * bandwidth)
    return RooflinePoint(name, intensity, achieved, attainable, achieved / attainable)
    ### END SOLUTION

# %% [markdown]
# ### Test: the roofline

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-profiling-roofline", "locked": true, "points": 3, "solution": false}
def test_unit_roofline():
    low = roofline_point("Add", 100, 1200, 1e-6, peak=1e10, bandwidth=1e10)
    assert abs(low.intensity - 100 / 1200) < 1e-12, f"intensity is FLOPs per byte: 100 / 1200, got {low.intensity}"
    assert abs(low.achieved - 1e8) < 1, f"achieved is FLOPs per second: 100 FLOPs in 1 us = 1e8, got {low.achieved}"
    assert abs(low.attainable - 1e10 / 12) < 1, f"below the ridge the roof is intensity * bandwidth ({1e10 / 12:.4g}), got {low.attainable:.4g}: the roof is the LOWER of the two limits"
    assert abs(low.fraction - 0.12) < 1e-9, f"fraction = achieved / attainable = 0.12, got {low.fraction}"
    high = roofline_point("MatMul", 2e9, 1e6, 1.0, peak=1e10, bandwidth=1e10)
    assert abs(high.attainable - 1e10) < 1, f"above the ridge the roof is the peak (1e10), got {high.attainable:.4g}"
    assert abs(high.fraction - 0.2) < 1e-9, f"2e9 FLOPs in 1 s on a 1e10 peak is a fraction 0.2, got {high.fraction}"

test_unit_roofline()

# %% [markdown]
# The machine's two roofs, measured here (given): the best of several large float32 matrix products, and
# the best of several copies of a 64 MB array (each copy reads and writes every byte).

# %%
#| export
def measure_peak_flops(size: int = 512, repeat: int = 5) -> float:
    """FLOPs per second of this machine's float32 matrix product (size x size), the best of `repeat`."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    return matmul_flops(a.shape, a.shape, a.shape) / best_time(lambda: a @ a, repeat)


def measure_bandwidth(megabytes: int = 64, repeat: int = 5) -> float:
    """Bytes per second of copying a large array (read once, written once), the best of `repeat`."""
    source = np.ones(megabytes * 2**20 // 4, dtype=np.float32)
    target = np.empty_like(source)
    return 2 * source.nbytes / best_time(lambda: np.copyto(target, source), repeat)


def roofline(rows: list, peak: float, bandwidth: float) -> list:
    """One RooflinePoint per forward operation of a `key_averages` table that did arithmetic."""
    return [roofline_point(row.name, row.flops, row.bytes_moved, row.self_time, peak, bandwidth)
            for row in rows if row.kind == "forward" and row.flops > 0 and row.bytes_moved > 0 and row.self_time > 0]


def plot_roofline(points: list, peak: float, bandwidth: float, path=None):
    """A log-log plot of the roof and one dot per operation; saved to `path` if given. Returns the figure."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5), layout="constrained")
    lowest = min([p.intensity for p in points] + [peak / bandwidth]) / 4
    highest = max([p.intensity for p in points] + [peak / bandwidth]) * 4
    grid = np.geomspace(lowest, highest, 200)
    axes.loglog(grid, np.minimum(peak, grid * bandwidth), color="black",
                label=f"roof: {peak / 1e9:.1f} GFLOP/s, {bandwidth / 1e9:.1f} GB/s")
    for point in points:
        axes.scatter(point.intensity, point.achieved)
        axes.annotate(point.name, (point.intensity, point.achieved), fontsize=8, xytext=(3, 3), textcoords="offset points")
    axes.set_xlabel("arithmetic intensity (FLOPs per byte)")
    axes.set_ylabel("FLOPs per second")
    axes.grid(alpha=0.3, which="both")
    axes.legend()
    if path is not None:
        figure.savefig(path, dpi=120)
        plt.close(figure)
    return figure

# %%
peak, bandwidth = measure_peak_flops(), measure_bandwidth()
print(f"this machine: {peak / 1e9:.2f} GFLOP/s (float32 matrix product), {bandwidth / 1e9:.2f} GB/s (copy); "
      f"ridge at {peak / bandwidth:.2f} FLOPs per byte")
points = roofline(prof.key_averages(), peak, bandwidth)
print(f"{'operation':<12} {'FLOPs/byte':>10} {'GFLOP/s':>9} {'roof GFLOP/s':>13} {'of roof':>8}  limit")
for point in sorted(points, key=lambda p: p.intensity):
    limit = "memory" if point.intensity < peak / bandwidth else "arithmetic"
    print(f"{point.name:<12} {point.intensity:>10.3f} {point.achieved / 1e9:>9.3f} {point.attainable / 1e9:>13.3f} "
          f"{point.fraction:>8.1%}  {limit}")
plot_roofline(points, peak, bandwidth);

# %% [markdown]
# ## 9. Systems analysis: what the profiler costs
#
# A profiler that changes what it measures is a bad one. Off, the engine runs its original functions. On,
# each operation pays for the hook (two clock readings, a tuple in the log, a timed wrapper per rule) and
# each rule for its wrapper (two clock readings, a tuple); everything else is paid when the profiler stops.
# Two workloads, each timed as the best of several runs: a chain of 200 operations on a single number,
# forward and backward (the engine's cheapest operations), and the GPT training step of Section 6. For
# each: the profiler off; on (timed inside the `with Profiler():` block); and the whole block, switching on
# and off and building the events included.

# %%
leaf = Variable(np.ones(1, dtype=np.float32), requires_grad=True)


def chain():
    y = leaf
    for _ in range(100):
        y = y * 1.0001 + 0.001
    y.backward()
    leaf.grad = None


def profiler_costs(work, repeat: int = 15) -> tuple:
    """Seconds of one `work()` with the profiler off, on (timed inside the `with Profiler():` block) and for the whole
    block (switching on and off and building the events included), each the best of `repeat`; and the number of
    events it records."""
    off, on, whole = [], [], []
    for _ in range(repeat):
        start = perf_counter()
        work()
        off.append(perf_counter() - start)
        start = perf_counter()
        with Profiler() as profiler:
            begun = perf_counter()
            work()
            on.append(perf_counter() - begun)
        whole.append(perf_counter() - start)
    return min(off), min(on), min(whole), len(profiler.events)


costs = {"chain of 200 operations": profiler_costs(chain), "GPT training step": profiler_costs(training_step)}
print(f"{'workload':<24} {'events':>7} {'off ms':>8} {'on ms':>8} {'on/off':>7} {'whole ms':>9} {'whole/off':>9}")
for label, (off, on, whole, events) in costs.items():
    print(f"{label:<24} {events:>7} {off * 1e3:>8.3f} {on * 1e3:>8.3f} {on / off:>7.2f} {whole * 1e3:>9.3f} {whole / off:>9.2f}")
for label, (off, on, whole, events) in costs.items():
    extra = (on - off) / events * 1e6
    while_on = f"{extra:.2f} us per event" if extra > 0 else "nothing measurable (on was no slower than off)"
    print(f"{label}: while on, {while_on}; after, {(whole - on) / events * 1e6:.2f} us per event")
(chain_off, chain_on, _, _), (step_off, step_on, _, _) = costs.values()
higher = "chain" if chain_on / chain_off > step_on / step_off else "step"
print(f"On / off is higher on the {higher} ({chain_on / chain_off:.2f}x on the chain, {step_on / step_off:.2f}x on the step).")
if step_on / step_off < 1.5:
    print("It changes the step's time by less than half: the step's table shows the step much as it runs.")
else:
    print("It costs as much as a large part of the step here: small operations look slower than they are.")

# %% [markdown]
# Whatever the hook costs per operation, it weighs most on the smallest operations: a profile exaggerates the
# share of cheap elementwise operations and understates the big products. The self times in the table leave
# the hook's own work out (the clock restarts after it), which corrects most of this. What the profiler does
# after the region (the difference between the "whole" and "on" columns) costs the profiled program nothing:
# it is only a wait before the table.
#
# ## 10. Reflection
#
# Answer in a sentence or three each.

# %% [markdown]
# **Q1.** In the GPT step's table, which operations take the most self time, and does that agree with
# where the FLOPs are? What does that tell you about what to optimize first?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-profiling-hotspots", "locked": false, "points": 2, "solution": true}
# The matrix products hold almost all the FLOPs, but a large share of the time goes to operations with few
# FLOPs: elementwise operations, softmax, LayerNorm and their backward rules, each of which reads and writes
# whole arrays. At these sizes the step is limited by memory traffic and per-operation overhead more than
# by arithmetic, so fusing chains of cheap operations into one pass gains more than a faster product.

# %% [markdown]
# **Q2.** The profiler takes an operation's time as the time since it last noted something. When does
# that attribute time to the wrong operation, and how does `torch.profiler` avoid it?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-profiling-attribution", "locked": false, "points": 2, "solution": true}
# Python work between two operations that is not an operation (building an index, a loop in a layer's
# forward, checking shapes) is charged to the next operation recorded, and NumPy work done outside any
# recording function (a mask built with NumPy) too. PyTorch's operators call the profiler when they start
# and when they end (a RecordFunction around each dispatched operator), so it times each one exactly.

# %% [markdown]
# **Q3.** An elementwise `Add` of two float32 arrays sits far left on the roofline. Compute its
# arithmetic intensity, and say why no amount of clever arithmetic can make it reach the machine's peak.

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-profiling-roofline", "locked": false, "points": 2, "solution": true}
# It does one FLOP per output element and moves 12 bytes for it (two 4-byte inputs read, one 4-byte output
# written): 1/12 of a FLOP per byte. At bandwidth B it can reach at most B/12 FLOPs per second, far below the
# peak whatever the arithmetic costs; only moving fewer bytes helps, for instance fusing it with the
# operation before or after so that the intermediate array is never written to memory.

# %% [markdown]
# ## Summary
#
# You counted a model's parameters and the FLOPs of each operation, forward and backward; built a profiler
# that swaps the engine's recording functions for ones that only write a log while it is on (nothing changes
# when it is off), builds its events from the log after, and gives a table sorted like `torch.profiler`'s;
# wrote a Chrome trace for Perfetto; and placed each operation of the GPT step on this machine's roofline. Export with `tito module complete 12_profiling`,
# then run `tito milestone gpt --profile`.
