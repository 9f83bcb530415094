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
# # Activations: the nonlinearities between layers
#
# A linear layer computes $xW + b$. Two linear layers in a row are still one linear map
# ($(xW_1 + b_1)W_2 + b_2 = x(W_1W_2) + (b_1W_2 + b_2)$), so a stack of them can only draw straight
# lines through data. An **activation** applied elementwise between layers bends the map, and with
# enough of them a network can approximate any reasonable function. This module builds the five you
# will meet most: `ReLU`, `Sigmoid`, `Tanh`, `Softmax` and `GELU`.
#
# **Objectives.** By the end of this module you can:
#
# - write ReLU, Sigmoid, Tanh, Softmax and GELU with Tensor operations only, so modules 05-06 can differentiate them;
# - keep `exp` from overflowing with a constant shift, and say why the shift changes no gradient;
# - normalise a softmax along any axis with `keepdims`;
# - measure what each extra operation costs in time and memory.
#
# | You write here | It becomes | Used by |
# |---|---|---|
# | this notebook, `activations.ipynb` | `tinytorch.core.activations` | layers (03), losses (04), training (08) |
#
# ## One code path, before and after autograd
#
# Module 05 will teach a `Variable` to record the operations applied to it and to differentiate
# through them. We do **not** want a second copy of every activation written for Variables. So each
# activation here is written only with operations that `Tensor` has now and `Variable` will have
# then: arithmetic, comparisons, `exp`, `log`, `tanh`, `sum`, `max`. Given a Tensor, an activation
# returns a Tensor; given a Variable, the very same code returns a Variable that is part of the graph,
# and modules 05 and 06 differentiate it with no extra work.
#
# One more tool keeps the math numerically safe: `x.numpy()` gives the numbers behind `x` (for a
# Tensor and, later, for a Variable) as a plain NumPy array, outside any graph. We use such numbers
# only as **constants** whose effect cancels out (a shift that stops `exp` from overflowing); a
# constant has no gradient, and because its effect cancels, treating it as one changes no gradient.
#
# Every activation is a small class: configure it once (`Softmax(axis=1)`), then call it like a
# function (`Softmax(axis=1)(logits)`), which is how module 03 chains it with layers.

# %%
#| default_exp core.activations

# %%
#| export
from __future__ import annotations

import math

import numpy as np

from tinytorch.core.tensor import Tensor

# %% [markdown]
# **How the tests check it.** Autograd does not exist yet, so the tests hand each activation a
# `Traced` tensor (given below): a Tensor whose every operation returns another `Traced` that remembers
# its operands. An activation written with Tensor operations returns a `Traced` that leads back to its
# input; one that computes in NumPy and wraps the numbers in a fresh `Tensor` returns a plain Tensor
# with no past. That cut is exactly what module 05 could not differentiate, so the tests report it
# as "the graph is cut". Modules 03 and 04 use the same probe.

# %%
#| exporti
class Traced(Tensor):
    """A Tensor that remembers the Traced tensors it was computed from: a stand-in for module 05's Variable.

    >>> x = Traced([1.0, -2.0])
    >>> (x * (x > 0)).depends_on(x), Tensor(x.numpy() * 2).__class__.__name__
    (True, 'Tensor')
    """

    def __init__(self, data, inputs: tuple = ()):
        Tensor.__init__(self, data)
        self.inputs = inputs

    def depends_on(self, source) -> bool:
        """Whether `source` is among the Traced tensors this one was computed from (or is this one)."""
        stack, seen = [self], set()
        while stack:
            node = stack.pop()
            if node is source:
                return True
            if id(node) not in seen:
                seen.add(id(node))
                stack.extend(node.inputs)
        return False


def _traced(operation):
    """`operation` of Tensor, returning a Traced that remembers the Traced operands."""
    def traced_operation(self, *args, **kwargs):
        result = operation(self, *args, **kwargs)
        if not isinstance(result, Tensor):  # NotImplemented, or a plain number (item, len)
            return result
        return Traced(result.data, (self, *(arg for arg in args if isinstance(arg, Traced))))
    return traced_operation


for _name in ["__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__",
              "__pow__", "__rpow__", "__neg__", "__matmul__", "__rmatmul__", "__getitem__", "__gt__", "__ge__",
              "__lt__", "__le__", "exp", "log", "sqrt", "tanh", "abs", "sum", "mean", "max", "min", "reshape",
              "permute", "transpose", "clamp", "maximum", "minimum"]:
    setattr(Traced, _name, _traced(getattr(Tensor, _name)))
Traced.T = property(_traced(Tensor.T.fget))


def assert_in_graph(output, source, what: str, source_name: str = "its input") -> None:
    """Raise AssertionError unless `output` was computed from the Traced `source` by Tensor operations."""
    if not isinstance(output, Traced):
        raise AssertionError(f"the graph is cut: {what} returned a plain {type(output).__name__}, not the result of "
                             "Tensor operations on its input (NumPy numbers wrapped in a new Tensor?), so module 05 "
                             "could not differentiate it")
    if not output.depends_on(source):
        raise AssertionError(f"the graph is cut: {what} is not computed from {source_name} by Tensor operations "
                             f"(did {source_name} go through .numpy()?), so no gradient would reach it")

# %% [markdown]
# ## 1. The shape of an activation, and ReLU
#
# All activations share two small pieces of behaviour, written once in a base class: calling the
# object runs its `forward`, and its `repr` names it. Each activation then only writes `forward`.
#
# **ReLU** (rectified linear unit) keeps positive numbers and zeroes the rest:
#
# $$\mathrm{ReLU}(x) = \max(0, x) = x \cdot \mathbb{1}[x > 0], \qquad
#   \frac{d\,\mathrm{ReLU}}{dx} = \mathbb{1}[x > 0].$$
#
# The second form is the one to implement. `x > 0` is a boolean **mask** (a comparison: it has no
# gradient and needs none), and multiplying by it is a single operation whose gradient is that same
# mask. Its derivative is 0 or 1, so gradients pass through active units undiminished: this is why
# deep ReLU networks train far better than deep sigmoid ones. At exactly $x = 0$ we take the
# derivative to be 0, as PyTorch does.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "activations-relu", "locked": false, "solution": true}
#| export
class Activation:
    """Base of every activation: `activation(x)` runs `activation.forward(x)`."""

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} must define forward(x)")

    def __call__(self, x):
        return self.forward(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(Activation):
    """max(0, x), elementwise.

    >>> ReLU()(Tensor([-2.0, 0.0, 3.0]))
    Tensor([0., 0., 3.], dtype=float32)
    """

    def forward(self, x):
        """Multiply `x` by the mask `x > 0`: one operation, so one graph node in module 05."""
        ### BEGIN SOLUTION
        return x * (x > 0)
        ### END SOLUTION

# %% [markdown]
# ### Test: ReLU

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-activations-relu", "locked": true, "points": 2, "solution": false}
def test_unit_relu():
    relu = ReLU()
    given = np.array([[-2.0, -0.5, 0.0], [0.5, 2.0, 100.0]], dtype=np.float32)
    x = Tensor(given.copy())
    out = relu(x)
    assert np.array_equal(x.numpy(), given), (
        f"ReLU changed its input in place (now {x.numpy().tolist()}): return a new tensor, x * (x > 0)")
    assert isinstance(out, Tensor), f"ReLU of a Tensor should be a Tensor, got {type(out).__name__}"
    expected = [[0.0, 0.0, 0.0], [0.5, 2.0, 100.0]]
    assert np.array_equal(out.numpy(), expected), f"expected {expected}, got {out.numpy().tolist()}"
    assert out.dtype == np.float32, f"ReLU should keep float32, got {out.dtype}"
    assert relu(Tensor([1.0], dtype=np.float64)).dtype == np.float64, "ReLU should keep float64"
    assert repr(relu) == "ReLU()", f"repr should be 'ReLU()', got {relu!r}"
    traced = Traced([[-1.0, 2.0]])
    assert_in_graph(relu(traced), traced, "ReLU")

test_unit_relu()
print("test_unit_relu: passed")

# %% [markdown]
# ## 2. Sigmoid, and how to keep `exp` from overflowing
#
# The **sigmoid** squashes any number into $(0, 1)$, which makes it the natural output for a
# probability (module 04's `BCELoss` expects one):
#
# $$\sigma(x) = \frac{1}{1 + e^{-x}}, \qquad \sigma'(x) = \sigma(x)\,(1 - \sigma(x)).$$
#
# Written that way it breaks for large negative $x$: float32 `exp` overflows above about 88.7, so
# $e^{-x}$ for $x = -100$ is `inf` (with a warning), and in other formulas `inf / inf` becomes `nan`.
# The cure is a **shift**. Multiply top and bottom by $e^{-m}$ for any number $m$:
#
# $$\sigma(x) = \frac{1}{1 + e^{-x}} = \frac{e^{x}}{e^{0} + e^{x}} = \frac{e^{x - m}}{e^{-m} + e^{x - m}}.$$
#
# With $m = \max(0, x)$ both exponents are $\le 0$, so neither `exp` can overflow, and for very
# negative $x$ the tiny result $e^{x}$ is kept to full relative precision instead of being rounded
# to 0. (This is a softmax over the two numbers $0$ and $x$: section 4 generalises it.)
#
# The shift $m$ comes from `x.numpy()`, a constant outside the graph. That is safe: the formula's
# value does not depend on $m$ at all, so its derivative with respect to $m$ is zero and nothing is
# lost by not differentiating through it. The whole sigmoid is four operations:
# subtract, `exp`, add, divide.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "activations-sigmoid", "locked": false, "solution": true}
#| export
class Sigmoid(Activation):
    """1 / (1 + exp(-x)), elementwise, computed without overflow for any x.

    >>> Sigmoid()(Tensor([0.0, -1000.0, 1000.0]))
    Tensor([0.5, 0. , 1. ], dtype=float32)
    """

    def forward(self, x):
        """exp(x - m) / (exp(-m) + exp(x - m)) with the constant shift m = max(0, x) from `x.numpy()`."""
        ### BEGIN SOLUTION
        shift = np.maximum(x.numpy(), 0)
        numerator = (x - shift).exp()
        return numerator / (numerator + np.exp(-shift))
        ### END SOLUTION

# %% [markdown]
# ### Test: Sigmoid

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-activations-sigmoid", "locked": true, "points": 2, "solution": false}
def test_unit_sigmoid():
    sigmoid = Sigmoid()
    x = np.array([-5.0, -1.0, 0.0, 1.0, 5.0], dtype=np.float32)
    inputs = Tensor(x.copy())
    out = sigmoid(inputs)
    assert np.array_equal(inputs.numpy(), x), (
        f"Sigmoid changed its input in place (now {inputs.numpy().tolist()}): x.numpy() is the input's own array, "
        "so build the shift as a new one (np.maximum(x.numpy(), 0))")
    expected = 1 / (1 + np.exp(-x.astype(np.float64)))
    assert isinstance(out, Tensor) and out.dtype == np.float32, f"expected a float32 Tensor, got {out!r}"
    assert np.allclose(out.numpy(), expected, rtol=1e-6), f"expected {expected}, got {out.numpy()}"
    try:
        with np.errstate(over="raise", divide="raise", invalid="raise"):  # overflow or nan is an error here
            extreme = sigmoid(Tensor([-1000.0, -100.0, 100.0, 1000.0])).numpy()
    except FloatingPointError as error:
        raise AssertionError(f"sigmoid of +-1000 overflowed ({error}): shift by m = max(0, x) so every exponent is <= 0") from None
    assert np.all(np.isfinite(extreme)), f"sigmoid of extreme inputs should be finite, got {extreme}"
    assert extreme[0] == 0.0 and extreme[3] == 1.0, f"sigmoid(-1000) = 0 and sigmoid(1000) = 1, got {extreme}"
    tail = sigmoid(Tensor([-30.0], dtype=np.float64)).numpy()[0]
    assert abs(tail / math.exp(-30) - 1) < 1e-9, f"sigmoid(-30) should keep full precision (~9.36e-14), got {tail}"
    assert np.allclose(sigmoid(Tensor(-x)).numpy(), 1 - out.numpy(), atol=1e-6), "sigmoid(-x) should equal 1 - sigmoid(x)"
    traced = Traced([[-3.0, 0.0, 3.0]])
    assert_in_graph(sigmoid(traced), traced, "Sigmoid")

test_unit_sigmoid()
print("test_unit_sigmoid: passed")

# %% [markdown]
# ## 3. Tanh
#
# $$\tanh(x) = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}} = 2\sigma(2x) - 1, \qquad \tanh'(x) = 1 - \tanh^2(x).$$
#
# Tanh is a sigmoid stretched to $(-1, 1)$ and centred on 0, which keeps the inputs of the next layer
# centred too. Tensor already has a stable `tanh` (NumPy's), and Variable will have one with its
# derivative, so the activation is a single operation.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "activations-tanh", "locked": false, "solution": true}
#| export
class Tanh(Activation):
    """tanh(x), elementwise.

    >>> Tanh()(Tensor([0.0]))
    Tensor([0.], dtype=float32)
    """

    def forward(self, x):
        """One operation: the tensor's own tanh."""
        ### BEGIN SOLUTION
        return x.tanh()
        ### END SOLUTION

# %% [markdown]
# ### Test: Tanh

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-activations-tanh", "locked": true, "points": 1, "solution": false}
def test_unit_tanh():
    x = np.linspace(-4, 4, 9).astype(np.float32)
    out = Tanh()(Tensor(x))
    assert isinstance(out, Tensor) and out.dtype == np.float32, f"expected a float32 Tensor, got {out!r}"
    assert np.allclose(out.numpy(), np.tanh(x), atol=1e-6), f"expected {np.tanh(x)}, got {out.numpy()}"
    assert np.allclose(out.numpy(), 2 * Sigmoid()(Tensor(2 * x)).numpy() - 1, atol=1e-6), "tanh(x) should equal 2 sigmoid(2x) - 1"
    with np.errstate(all="ignore"):
        saturated = Tanh()(Tensor([-1e4, 1e4])).numpy()
    assert np.array_equal(saturated, [-1.0, 1.0]), f"tanh should saturate at -1 and 1 (no overflow), got {saturated}"
    traced = Traced([0.5, -0.5])
    assert_in_graph(Tanh()(traced), traced, "Tanh")

test_unit_tanh()
print("test_unit_tanh: passed")

# %% [markdown]
# ## 4. Softmax, stable along any axis
#
# Softmax turns a vector of scores (**logits**) into a probability distribution:
#
# $$\mathrm{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}}, \qquad
#   \frac{\partial\, \mathrm{softmax}_i}{\partial x_j} = s_i(\delta_{ij} - s_j).$$
#
# Logits of a few hundred are common in practice, and $e^{1000}$ overflows even in float64. The
# same shift as for the sigmoid fixes it: $\mathrm{softmax}(x - c) = \mathrm{softmax}(x)$ for any
# constant $c$, because $e^{-c}$ cancels between numerator and denominator. Choosing
# $c = \max_j x_j$ makes every exponent $\le 0$, so the largest term is exactly $e^0 = 1$: nothing
# overflows and the sum is at least 1, so nothing divides by zero.
#
# For a batch of shape `(N, C)` (N examples, C classes) the sum and the max run along the class
# axis, `axis=-1` by default, with `keepdims=True` so that they broadcast back against `(N, C)`:
#
# ```
# logits (N, C) - max over axis -1 (N, 1)  -> shifted (N, C)   every row's largest entry is 0
# exp(shifted) / its sum over axis -1 (N, 1) -> (N, C)          every row sums to 1
# ```
#
# As before, the shift is taken from `x.numpy()`: its effect cancels exactly, so it is a constant
# with zero gradient. Softmax is four operations: subtract, `exp`, `sum`, divide.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "activations-softmax", "locked": false, "solution": true}
#| export
class Softmax(Activation):
    """exp(x) / sum(exp(x)) along `axis` (default: the last), computed without overflow.

    >>> Softmax()(Tensor([[1.0, 1.0], [0.0, 1000.0]]))
    Tensor([[0.5, 0.5],
            [0. , 1. ]], dtype=float32)
    """

    def __init__(self, axis: int = -1):
        self.axis = axis

    def __repr__(self) -> str:
        return f"Softmax(axis={self.axis})"

    def forward(self, x):
        """Subtract the constant max along `self.axis`, exponentiate, divide by the sum along `self.axis`."""
        ### BEGIN SOLUTION
        shift = x.numpy().max(axis=self.axis, keepdims=True)
        exponentials = (x - shift).exp()
        return exponentials / exponentials.sum(axis=self.axis, keepdims=True)
        ### END SOLUTION

# %% [markdown]
# ### Test: Softmax

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-activations-softmax", "locked": true, "points": 3, "solution": false}
def test_unit_softmax():
    square_logits = np.array([[0.0, 1.0, 2.0], [0.0, 0.0, 0.0], [3.0, 0.0, 1.0]])
    square = Softmax()(Tensor(square_logits)).numpy()
    assert np.allclose(square.sum(axis=1), 1.0, atol=1e-6), \
        f"every row should sum to 1 (does the sum keep its axis, keepdims=True?), got {square.sum(axis=1)}"
    square_exps = np.exp(square_logits)
    assert np.allclose(square, square_exps / square_exps.sum(axis=1, keepdims=True), atol=1e-6), (
        f"softmax of a (3, 3) batch is wrong although its rows sum to 1, got {square.round(4).tolist()}: does the "
        "max keep its axis (keepdims=True)? Without it, a square batch is shifted along the wrong axis")
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    inputs = Tensor(logits.copy())
    out = Softmax()(inputs)
    assert np.array_equal(inputs.numpy(), logits), (
        f"Softmax changed its input in place (now {inputs.numpy().tolist()}): subtract the shift with x - shift, "
        "which makes a new tensor")
    exps = np.exp(logits.astype(np.float64))
    expected = exps / exps.sum(axis=1, keepdims=True)
    assert isinstance(out, Tensor) and out.shape == (2, 3), f"expected a (2, 3) Tensor, got {out!r}"
    assert np.allclose(out.numpy(), expected, atol=1e-6), f"expected {expected.round(4).tolist()}, got {out.numpy().round(4).tolist()}"
    try:
        with np.errstate(over="raise", divide="raise", invalid="raise"):  # overflow or nan is an error here
            big = Softmax()(Tensor([[1000.0, 1001.0, 1002.0], [-1000.0, 0.0, 1000.0]])).numpy()
            far_apart = Softmax()(Tensor([[0.0, 1.0], [1000.0, 1001.0]])).numpy()
    except FloatingPointError as error:
        raise AssertionError(f"softmax of logits near +-1000 gave {error}: subtract each row's own max "
                             "(max along the axis, keepdims=True) before exp") from None
    assert np.allclose(big[0], expected[0], atol=1e-6), f"softmax(x + 1000) should equal softmax(x), got {big[0]}"
    assert np.allclose(big[1], [0.0, 0.0, 1.0]), f"one logit far above the others should get all the mass, got {big[1]}"
    assert np.allclose(far_apart[0], far_apart[1]), f"each row is shifted by its own max, got {far_apart}"
    cube = np.random.default_rng(0).normal(size=(2, 3, 4))
    cube_exps = np.exp(cube)
    try:
        along_last = Softmax()(Tensor(cube)).numpy()
        vector = Softmax()(Tensor([1.0, 2.0, 3.0])).numpy()
    except (ValueError, IndexError) as error:
        raise AssertionError(f"Softmax() works along the last axis whatever the number of axes (a (3,) vector, a "
                             f"(2, 3, 4) batch): {type(error).__name__}: {error}") from None
    assert np.allclose(along_last, cube_exps / cube_exps.sum(axis=-1, keepdims=True), atol=1e-6), (
        "Softmax() of a (2, 3, 4) batch should normalise along the last axis (axis=-1, not axis 1)")
    assert np.allclose(vector, np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum(), atol=1e-6), (
        f"Softmax() of the vector [1, 2, 3] should be [0.090, 0.245, 0.665], got {vector.round(3).tolist()}")
    columns = Softmax(axis=0)(Tensor(logits))
    assert np.allclose(columns.numpy().sum(axis=0), 1.0, atol=1e-6), f"Softmax(axis=0) should normalise columns, got {columns.numpy()}"
    column_exps = np.exp(logits.astype(np.float64))
    assert np.allclose(columns.numpy(), column_exps / column_exps.sum(axis=0, keepdims=True), atol=1e-6), (
        f"Softmax(axis=0) is wrong although its columns sum to 1, got {columns.numpy().round(4).tolist()}: take the "
        "max (the shift) along self.axis too, so that it is constant down each column")
    assert repr(Softmax(axis=0)) == "Softmax(axis=0)", f"repr should show the axis, got {Softmax(axis=0)!r}"
    traced = Traced(logits)
    assert_in_graph(Softmax()(traced), traced, "Softmax")

test_unit_softmax()
print("test_unit_softmax: passed")

# %% [markdown]
# ## 5. GELU
#
# The Gaussian error linear unit weighs its input by the probability that a standard normal variable
# is below it, $\mathrm{GELU}(x) = x\,\Phi(x)$. It is a smooth ReLU: close to 0 for very negative
# $x$, close to $x$ for large $x$, slightly negative just below 0. Transformers (BERT, GPT) use it.
# $\Phi$ needs the error function, which our tensors do not have; the standard approximation (the
# one GPT-2 used, PyTorch's `GELU(approximate="tanh")`) needs only `tanh`:
#
# $$\mathrm{GELU}(x) \approx \tfrac12\, x \left(1 + \tanh\!\left(\sqrt{2/\pi}\,\bigl(x + 0.044715\, x^3\bigr)\right)\right).$$
#
# Write the constants as Python floats: NumPy keeps a float32 tensor float32 when it is multiplied
# by a Python float, but a NumPy float64 scalar would turn the result into float64.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "activations-gelu", "locked": false, "solution": true}
#| export
class GELU(Activation):
    """x * Phi(x) in the tanh approximation (PyTorch's GELU(approximate="tanh")).

    >>> GELU()(Tensor([0.0, 1.0]))
    Tensor([0.       , 0.8411919], dtype=float32)
    """

    def forward(self, x):
        """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), with Python-float constants."""
        ### BEGIN SOLUTION
        scale = math.sqrt(2.0 / math.pi)
        inner = x * (scale + (scale * 0.044715) * (x * x))
        return x * (0.5 + 0.5 * inner.tanh())
        ### END SOLUTION

# %% [markdown]
# ### Test: GELU

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-activations-gelu", "locked": true, "points": 2, "solution": false}
def test_unit_gelu():
    x = np.array([-6.0, -1.0, -0.5, 0.0, 0.5, 1.0, 6.0], dtype=np.float32)
    out = GELU()(Tensor(x))
    x64 = x.astype(np.float64)
    expected = 0.5 * x64 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64 ** 3)))
    assert isinstance(out, Tensor) and out.dtype == np.float32, f"GELU should keep float32, got {out!r}"
    assert np.allclose(out.numpy(), expected, atol=1e-6), f"expected {expected.round(5)}, got {out.numpy().round(5)}"
    assert abs(out.numpy()[5] - 0.8411920) < 1e-6, f"GELU(1) should be about 0.841192, got {out.numpy()[5]}"
    assert abs(out.numpy()[0]) < 1e-6 and abs(out.numpy()[6] - 6.0) < 1e-6, "GELU should approach 0 on the far left and x on the far right"
    assert out.numpy()[2] < 0, f"GELU dips below zero just left of 0: GELU(-0.5) should be negative, got {out.numpy()[2]}"
    traced = Traced(x)
    assert_in_graph(GELU()(traced), traced, "GELU")

test_unit_gelu()
print("test_unit_gelu: passed")

# %% [markdown]
# ## 6. Looking ahead: the same code, differentiated
#
# Once you have completed modules 05 and 06, this cell hands a `Variable` to each activation: the output
# is a Variable in the graph, and `backward()` fills in the gradient, with no change to the code above.
# Before then it just says so.

# %%
try:
    from tinytorch.core.autograd import Variable
    from tinytorch.core.operations import exp
    exp(Variable(0.0))  # modules 05 and 06 still to be written (a student's stubs) raise NotImplementedError here
except (ImportError, NotImplementedError):
    print("autograd (modules 05 and 06) is not complete yet: come back after module 06.")
else:
    for activation in [ReLU(), Sigmoid(), Tanh(), Softmax(), GELU()]:
        x = Variable(np.array([[-1.0, 0.5, 2.0]]), requires_grad=True)
        out = activation(x)
        (out * np.array([[1.0, 2.0, 3.0]])).sum().backward()
        print(f"{activation!r:16} output {type(out).__name__:8} d/dx {np.round(x.grad, 4)}")

# %% [markdown]
# ## 7. Systems analysis: stability, time and memory
#
# **Stability.** Feed the textbook formulas and ours the same extreme inputs. For each we record
# whether NumPy had to overflow (`exp` of a number above about 88.7 in float32) and how many of the
# seven outputs came out `inf` or `nan`. An overflow that happens to give the right answer (as
# `1 / (1 + inf) = 0` does) is still a warning on every batch and a `nan` waiting in the next formula.

# %%
import tracemalloc

extreme = np.array([[-1000.0, -100.0, -10.0, 0.0, 10.0, 100.0, 1000.0]], dtype=np.float32)
formulas = {
    "1 / (1 + exp(-x))": lambda x: 1 / (1 + np.exp(-x)),
    "exp(x) / (1 + exp(x))": lambda x: np.exp(x) / (1 + np.exp(x)),
    "Sigmoid (shifted)": lambda x: Sigmoid()(Tensor(x)).numpy(),
    "exp(x) / sum exp(x)": lambda x: np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True),
    "Softmax (shifted)": lambda x: Softmax()(Tensor(x)).numpy(),
}
print(f"{'formula':24} {'overflows':>9} {'inf/nan of 7':>13}")
for name, formula in formulas.items():
    with np.errstate(over="raise"):
        try:
            formula(extreme)
            overflows = "no"
        except FloatingPointError:
            overflows = "yes"
    with np.errstate(all="ignore"):
        values = formula(extreme)
    print(f"{name:24} {overflows:>9} {int((~np.isfinite(values)).sum()):>13}")

# %% [markdown]
# **Time and memory.** Each activation below runs on a batch of 64 x 1024 float32 numbers (256 KB).
# We time it (best of several runs) and measure with `tracemalloc` the peak memory it allocates,
# as a multiple of the input's size. Three NumPy baselines, one pass and one output each: `x + 1`
# (plain arithmetic), `np.maximum` (a comparison) and `np.exp` (a transcendental function, computed
# by a polynomial per entry). Every operation we chain allocates a full-size intermediate array, and
# in module 05 each will also become a graph node that stays alive until `backward()`.

# %%
from tinytorch.core.tensor import best_time


def peak_allocated(fn) -> int:
    """Peak bytes newly allocated while `fn` runs (NumPy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


batch = Tensor(np.random.default_rng(0).standard_normal((64, 1024)).astype(np.float32))
candidates = [("x + 1", lambda: batch.numpy() + 1), ("np.maximum(x, 0)", lambda: np.maximum(batch.numpy(), 0)),
              ("np.exp(x)", lambda: np.exp(batch.numpy()))] + [
    (repr(activation), lambda activation=activation: activation(batch))
    for activation in [ReLU(), Sigmoid(), Tanh(), Softmax(), GELU()]]
print(f"{'activation':18} {'time (us)':>10} {'peak memory / input':>20}")
for name, fn in candidates:
    print(f"{name:18} {best_time(fn) * 1e6:>10.1f} {peak_allocated(fn) / batch.numpy().nbytes:>20.2f}")

# %% [markdown]
# What to read in these numbers: time follows *which* operations run more than how many. One `exp`
# costs several additions; Sigmoid computes two (`exp(x - shift)` and `exp(-shift)`), so it costs
# about two `exp`s plus a little; Tanh and GELU each compute one `tanh` (a little dearer than an
# `exp`); ReLU, with no transcendental function at all, about one `np.maximum`. Memory follows how many operations run: each leaves an input-sized array
# (ReLU's mask is one byte an entry), which is why Sigmoid and GELU peak at several times the input.
# That is why ReLU remains the default for hidden layers of small networks, and why production
# libraries *fuse* an activation's operations into one kernel that reads the input once.

# %% [markdown]
# ## 8. Reflection
#
# Answer in a sentence or three each. Your reasoning is graded, not a single right answer.

# %% [markdown]
# **Q1.** A ReLU unit whose input is negative for every example in the training set is called
# "dead". What gradient does it pass back, and why can't plain gradient descent revive it? Name one
# remedy.

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-activations-dead-relu", "locked": false, "points": 2, "solution": true}
# Its mask is 0 everywhere, so it passes back a zero gradient to its input and to the weights that feed
# it; with zero gradient those weights never change, so the unit stays dead. Remedies: a smaller
# learning rate (big steps push units into the dead zone), a careful initialisation, or an activation
# with a nonzero slope for negative inputs (Leaky ReLU, GELU).

# %% [markdown]
# **Q2.** Softmax and Sigmoid subtract a shift taken from `x.numpy()`, a constant outside the graph.
# Why does this not make their gradients wrong? Would it be correct to take the *whole output* from
# `x.numpy()` and wrap it in a new Tensor?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-activations-shift", "locked": false, "points": 2, "solution": true}
# The function's value does not depend on the shift (it cancels between numerator and denominator), so
# the derivative with respect to the shift is zero and leaving it out of the graph loses nothing. The
# whole output is different: computed from raw numbers, it would be a new leaf with no link to `x`, so
# no gradient could flow back and the network before it would never learn.

# %% [markdown]
# ## Summary
#
# You built five activations as small callable classes, each written only with operations that
# `Tensor` has and `Variable` will have: `ReLU` as a mask multiply, `Sigmoid` and `Softmax` with a
# constant shift that keeps `exp` from overflowing, `Tanh`, and the tanh approximation of `GELU`.
# Export them with `tito module complete 02_activations`; module 03 puts them between layers.
