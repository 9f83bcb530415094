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
# that record operations for timed ones while it is on, and puts them back after. Module 13 uses its table
# to decide which operations to fuse.
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

import json
import math
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinytorch.core import autograd as _autograd
from tinytorch.core.autograd import Variable
from tinytorch.core.layers import Module
from tinytorch.core.tensor import best_time

# %%
# For the examples and tests below (the exported code does not need them).
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.convolutions import Conv2d, MaxPool2d
from tinytorch.core.layers import Flatten, Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.tensor import Tensor
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
    assert got == 64 * 32 + 32 + 32 * 10 + 10, f"Linear(64, 32) and Linear(32, 10) hold 2410 numbers (weights and biases), got {got}: count elements (p.size), not parameters"
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
# | reductions (`Sum`, `Mean`, `Max`, ..., the pools) | one per **input** element | one per input element |
# | everything else (elementwise) | `FLOPS_PER_ELEMENT` (1 unless listed) per **output** element | the same per output element |
#
# The fused operations of modules 10-11 do several elementwise steps in one node: `FLOPS_PER_ELEMENT`
# counts the steps of their forward computation. A gradient is counted only for an input that needs one,
# as PyTorch does: no gradient for a batch of data.

# %%
#| export
MOVING_DATA = frozenset({"Reshape", "Permute", "Index", "Expand", "Flip", "Embedding"})
REDUCTIONS = frozenset({"Sum", "Mean", "Max", "Min", "Var", "LogSumExp", "MaxPool2d", "AvgPool2d"})
# The steps per element of operations that do more than one (module 11's GELU: x*x, *c, +1, *x, *s, tanh, +1, *x,
# *0.5; module 10's LayerNorm: mean, subtract, square, mean, scale, *weight, +bias; softmax: max, subtract, exp,
# sum, divide).
FLOPS_PER_ELEMENT = {"GELU": 9, "LayerNorm": 7, "Softmax": 5, "LogSoftmax": 5, "Sigmoid": 3, "Tanh": 1}

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
    if name in MOVING_DATA:
        return 0
    if name in REDUCTIONS:
        return size_of(input_shapes[0])
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
    if name in REDUCTIONS:
        return size_of(input_shapes[index])
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
    got = forward_flops("GELU", [(4, 3)], (4, 3))
    assert got == 9 * 12, f"GELU does FLOPS_PER_ELEMENT['GELU'] = 9 steps per element: 108, got {got}"
    got = [gradient_flops("MatMul", [(4, 3), (3, 2)], (4, 2), i) for i in (0, 1)]
    assert got == [48, 48], f"each input's gradient of a product is another product of the same size: [48, 48], got {got}"
    got = [gradient_flops("Conv2d", [(3, 2, 7, 7), (5, 2, 3, 3), (5,)], (3, 5, 5, 5), i) for i in (0, 1, 2)]
    assert got == [13500, 13500, 375], f"Conv2d's gradients: x and weight cost the forward's 13500 each, the bias one per output (375); got {got}"
    got = gradient_flops("Sum", [(10, 20)], (10,), 0)
    assert got == 200, f"a reduction's gradient spreads to every input element: 200, got {got}"
    assert gradient_flops("Mul", [(4, 3), (4, 3)], (4, 3), 1) == 12, "an elementwise gradient is one per output element"

test_unit_op_flops()

# %% [markdown]
# ## 4. What backward keeps alive
#
# Every rule that module 05 records is a function that will need some arrays later: `multiply`'s rule for
# `a` holds `b`, `matmul`'s holds both operands, `exp`'s holds its output. Python keeps them in the rule's
# **closure**: `rule.__closure__` is a tuple of cells, each `cell.cell_contents` one captured value. A rule
# can capture a helper function that captures more (module 05's `matmul` for vectors does), and two rules
# of one operation often capture the same array: count every array once.
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
    """The bytes of the distinct NumPy arrays that the functions `rules` capture, directly or through functions
    they capture.

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
            "nothing": [np.negative, lambda g: g], "a through a helper": [lambda g: helper(g) + 1]}

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-profiling-saved", "locked": true, "points": 2, "solution": false}
def test_unit_saved():
    a, b = np.ones((4, 3), dtype=np.float32), np.ones((3, 5), dtype=np.float64)
    rules = rules_capturing(a, b)
    got = saved_bytes(rules["a and b"])
    assert got == a.nbytes + b.nbytes, f"two rules holding a (48 bytes) and b (120 bytes): 168, got {got}"
    got = saved_bytes(rules["b twice"])
    assert got == b.nbytes, f"two rules capturing the same array keep it once: {b.nbytes} bytes, got {got}"
    assert saved_bytes(rules["nothing"]) == 0, "rules that capture nothing keep nothing"
    got = saved_bytes(rules["a through a helper"])
    assert got == a.nbytes, f"a rule that calls a helper capturing `a` keeps `a` ({a.nbytes} bytes) alive, got {got}: follow captured functions"
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
# replaces `record` in every module that holds it with a *recording* version that notes
# the operation, wraps each rule in a timed one and calls the original; on exit it puts the originals
# back. When the profiler is off nothing is different: the engine's hot path runs exactly the code it ran
# before (`benchmarks/profiling.md` measures it). The same trick wraps `Module.__call__` (a range per
# layer, named `Linear()`, `Block()`, ...) and `Variable.backward` (a range `backward()` around the backward
# pass).
#
# **Times.** The recording function runs when the operation's arithmetic is *done*. An operation's time
# is therefore the time since the profiler last noted anything (the previous operation, or the start of a
# layer): its own arithmetic plus the Python that prepared it. A rule is timed exactly, around its call.
# The profiler's own bookkeeping is left out: the clock restarts after it.
#
# ```
#  clock ──── Linear.__call__ ────────────────────────────────┐ range "Linear"
#        │ x @ weight  (MatMul: clock -> record) │ + bias (Add) │
# ```
#
# A layer's **total** time runs from its start to its end; its **self** time is the total minus the
# totals of everything recorded directly inside it. An operation's self and total times are equal.
# You write `_note`: the step that turns one finished operation, rule or range into an `Event`.

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


def nbytes_of(value) -> int:
    """The bytes of the array behind a Variable, Tensor or array; 0 for a Python number or None."""
    if isinstance(value, (int, float)) or value is None:
        return 0
    return np.asarray(value).nbytes


RECORD = _autograd.record  # the one function every operation is recorded through
_MODULE_CALL = Module.__call__

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "profiling-profiler", "locked": false, "solution": true}
#| export
class Profiler:
    """`with Profiler() as prof:` records every operation, backward rule and layer run inside; then
    `prof.events`, `prof.key_averages()`, `prof.table()` and `prof.export_chrome_trace(path)`."""

    def __init__(self):
        self.events: list[Event] = []
        self._open: list[list] = []   # the ranges not finished yet: [name, start, time of what is inside]
        self._clock = 0.0             # when the profiler last noted something
        self._active = False
        self._swapped: list = []      # (owner, attribute, original) to put back on exit

    # --- given: switching the hook on and off ---
    def __enter__(self) -> Profiler:
        if Module.__call__ is not _MODULE_CALL:
            raise RuntimeError("a Profiler is already on: profilers do not nest, measure with the outer one")
        for module in list(sys.modules.values()):
            if getattr(module, "__dict__", {}).get("record") is RECORD:
                self._swap(module, "record", self._recording(RECORD))
        self._swap(Module, "__call__", self._ranged(Module.__call__, lambda module: type(module).__name__ + "()"))
        self._swap(Variable, "backward", self._ranged(Variable.backward, lambda variable: "backward()"))
        self._active = True
        self._clock = time.perf_counter()
        return self

    def __exit__(self, *exc) -> bool:
        self._active = False
        for owner, attribute, original in reversed(self._swapped):
            setattr(owner, attribute, original)
        self._swapped.clear()
        return False

    def _swap(self, owner, attribute: str, replacement) -> None:
        self._swapped.append((owner, attribute, getattr(owner, attribute)))
        setattr(owner, attribute, replacement)

    def _recording(self, record):
        """Module 05's `record`, noting each operation and timing its rules."""
        def recorded(value, name, *edges):
            stop = time.perf_counter()  # the operation's arithmetic is done
            shapes = [np.shape(source) for source, _ in edges]
            out_shape = np.shape(value)
            timed = [(source, self._timed(rule, name, index, shapes, out_shape))
                     for index, (source, rule) in enumerate(edges)]
            result = record(value, name, *timed)
            recorded_graph = getattr(result, "grad_fn", None) is not None
            self._note(name, "forward", self._clock, stop, forward_flops(name, shapes, out_shape),
                       saved_bytes([rule for _, rule in edges]) if recorded_graph else 0,
                       sum(nbytes_of(source) for source, _ in edges) + nbytes_of(value))
            return result
        return recorded

    def _timed(self, rule, name: str, index: int, shapes: list, out_shape: tuple):
        def timed(g):
            if not self._active:  # a graph recorded under the profiler, run backward after it
                return rule(g)
            start = time.perf_counter()
            grad = rule(g)
            stop = time.perf_counter()
            self._note(name + "Backward", "backward", start, stop, gradient_flops(name, shapes, out_shape, index),
                       0, nbytes_of(g) + nbytes_of(grad), input_index=index)
            return grad
        return timed

    def _ranged(self, method, label):
        def ranged(owner, *args, **kwargs):
            if not self._active:
                return method(owner, *args, **kwargs)
            self._open.append([label(owner), time.perf_counter(), 0.0])
            self._clock = self._open[-1][1]
            try:
                return method(owner, *args, **kwargs)
            finally:
                stop = time.perf_counter()
                name, start, inside = self._open.pop()
                self._note(name, "range", start, stop, inside_time=inside)
        return ranged

    # --- given: what it measured, through the functions of Sections 6 and 7 ---
    def key_averages(self, sort_by: str = "self_time") -> list:
        return key_averages(self.events, sort_by)

    def table(self, sort_by: str = "self_time", row_limit: int | None = None) -> str:
        return format_table(key_averages(self.events, sort_by), row_limit)

    def export_chrome_trace(self, path) -> Path:
        return export_chrome_trace(self.events, path)

    # --- you write: one finished thing becomes an Event ---
    def _note(self, name: str, kind: str, start: float, stop: float, flops: int = 0, saved: int = 0,
              moved: int = 0, inside_time: float = 0.0, input_index: int | None = None) -> None:
        """Append an Event for `name`, from `start` to `stop`: its self time is its duration less `inside_time`
        (what was recorded directly inside it), its depth the number of ranges open around it; add its duration
        to the time inside the innermost open range; then restart the clock (now, after this bookkeeping)."""
        ### BEGIN SOLUTION
        duration = stop - start
        self.events.append(Event(name, kind, start, duration, duration - inside_time, flops, saved, moved,
                                 len(self._open), input_index))
        if self._open:
            self._open[-1][2] += duration
        self._clock = time.perf_counter()
        ### END SOLUTION

# %% [markdown]
# ### Test: the profiler

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-profiling-profiler", "locked": true, "points": 4, "solution": false}
def test_unit_profiler():
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
    matmul, linear = by_name["MatMul"], by_name["Linear()"]
    assert matmul.flops == 2 * 5 * 6 * 4, f"MatMul's event should carry its FLOPs (240), got {matmul.flops}"
    assert matmul.saved_bytes == x.numpy().nbytes + layer.weight.numpy().nbytes, f"MatMul's rules keep x and the weight ({x.numpy().nbytes + layer.weight.numpy().nbytes} bytes), got {matmul.saved_bytes}"
    assert matmul.depth == 1 and linear.depth == 0, f"MatMul ran inside Linear: depths 1 and 0, got {matmul.depth} and {linear.depth}: count the open ranges"
    assert matmul.start >= linear.start and matmul.start + matmul.duration <= linear.start + linear.duration + 1e-9, "an operation inside a layer must lie inside the layer's time"
    add = by_name["Add"]
    assert add.start >= matmul.start + matmul.duration - 1e-9, "Add starts after MatMul ended: restart the clock after noting each event"
    assert matmul.self_time == matmul.duration, "an operation's self time equals its duration (nothing is recorded inside it)"
    inside = sum(e.duration for e in prof.events if e.depth == 1 and linear.start <= e.start <= linear.start + linear.duration)
    assert abs(linear.self_time - (linear.duration - inside)) < 1e-9, f"a layer's self time is its duration less what ran inside it ({(linear.duration - inside) * 1e6:.1f} us), got {linear.self_time * 1e6:.1f} us"
    assert 0 <= linear.self_time < linear.duration, "the layer's self time must leave out its operations"
    assert layer.weight.grad is not None and np.allclose(layer.weight.grad, x.numpy().sum(axis=0)[:, None]), "the profiled backward must give the same gradients"
    matmul_backward = [e for e in prof.events if e.name == "MatMulBackward"]
    assert len(matmul_backward) == 1 and matmul_backward[0].flops == 240, "x needs no gradient: one MatMul rule (the weight's), 240 FLOPs"
    assert matmul_backward[0].input == 1, f"the MatMul rule computes the gradient of input 1 (the weight): record input_index, got {matmul_backward[0].input}"
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
    lines = [f"{'Name':<22} {'Self %':>7} {'Self ms':>9} {'Total ms':>9} {'Calls':>6} {'MFLOPs':>9} {'Saved KB':>9}"]
    lines.append("-" * len(lines[0]))
    for row in rows[:row_limit]:
        lines.append(f"{row.name:<22} {row.self_time / whole:>7.1%} {row.self_time * 1e3:>9.3f} "
                     f"{row.total_time * 1e3:>9.3f} {row.calls:>6} {row.flops / 1e6:>9.3f} {row.saved_bytes / 1024:>9.1f}")
    lines.append(f"Self time total: {whole * 1e3:.3f} ms")
    return "\n".join(lines)


# %% [markdown]
# ### Test: the table

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-profiling-table", "locked": true, "points": 3, "solution": false}
def test_unit_table():
    events = [Event("MatMul", "forward", 0.0, 0.003, 0.003, flops=100, saved_bytes=8),
              Event("Add", "forward", 0.003, 0.001, 0.001, flops=10),
              Event("Linear()", "range", 0.0, 0.006, 0.0015),
              Event("MatMul", "forward", 0.006, 0.002, 0.002, flops=100, saved_bytes=8)]
    rows = key_averages(events)
    names = [row.name for row in rows]
    assert len(rows) == 3, f"one row per name: 3 rows for MatMul, Add, Linear(), got {len(rows)}: {names}"
    assert names == ["MatMul", "Linear()", "Add"], f"sorted by self time, largest first (MatMul 5 ms, Linear() 1.5 ms, Add 1 ms), got {names}"
    matmul = rows[0]
    assert matmul.calls == 2, f"MatMul was called twice, got calls={matmul.calls}"
    assert abs(matmul.self_time - 0.005) < 1e-12 and abs(matmul.total_time - 0.005) < 1e-12, f"MatMul's times sum over its calls: 5 ms, got self {matmul.self_time}, total {matmul.total_time}"
    assert matmul.flops == 200 and matmul.saved_bytes == 16, f"FLOPs and saved bytes sum over calls: 200 and 16, got {matmul.flops} and {matmul.saved_bytes}"
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
# A profiler that changes what it measures is a bad one. With it off, the engine runs its original
# functions: there is nothing to measure but the time of the step. With it on, every operation pays for
# the bookkeeping: a few timestamps, the FLOP count and the walk of its rules' closures. Below: the same
# training step, the best of several runs, off and on.

# %%
off = best_time(training_step, repeat=7)


def profiled_step():
    with Profiler():
        training_step()


on = best_time(profiled_step, repeat=7)
with Profiler() as counted:
    training_step()
recorded = sum(1 for event in counted.events if event.kind != "range")
print(f"{'profiler':<10} {'step ms':>8}")
print(f"{'off':<10} {off * 1e3:>8.2f}")
print(f"{'on':<10} {on * 1e3:>8.2f}")
print(f"on / off: {on / off:.2f}x for {recorded} operations and rules, "
      f"{(on - off) / recorded * 1e6:.1f} us of bookkeeping each")
if on / off < 1.5:
    print("The profiler changes this step's time by less than half: its table shows the step as it runs.")
else:
    print("The profiler costs as much as a large part of the step here: small operations look slower than they are.")

# %% [markdown]
# The bookkeeping per operation is a fixed cost of microseconds, so it weighs most on the smallest
# operations: a profile exaggerates the share of cheap elementwise operations and understates the big
# products. The self times in the table leave the bookkeeping out (the clock restarts after it), which
# corrects most of this.
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
# that swaps the engine's recording functions for timed ones while it is on (and costs nothing when off),
# with a table sorted like `torch.profiler`'s; wrote a Chrome trace for Perfetto; and placed each
# operation of the GPT step on this machine's roofline. Export with `tito module complete 12_profiling`,
# then run `tito milestone gpt --profile`.
