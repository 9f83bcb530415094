"""tinytorch.core.operations (module 06) against PyTorch's autograd: the same values, dtypes and gradients.

Every public operation and every method it gives Variable, on a seeded sweep over broadcasting shapes (0-d and
empty ones included) in float32 and float64, at zeros and infinities, on shapes drawn by hypothesis, in random
expression graphs that reuse intermediate values, in a cross-entropy network and an MLP trained for a few steps.
Every comparison is torch_oracle.compare; the last test fails when a public operation has no case here.

Ties follow PyTorch: a full max/min (`x.max()`, `torch.max(x)`) and one over several axes (`torch.amax`) share
the gradient equally between tied entries; one over a single axis (`torch.max(x, dim)`) gives it all to the
first tied entry; `maximum`/`minimum` give half to each input on a tie.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinytorch.core.operations as operations
from autograd_testing import values
from tinytorch.core.autograd import Variable
from tinytorch.core.operations import log_softmax
from tinytorch.core.tensor import Tensor
from torch_oracle import assert_covered, compare, compare_random_graph, torch, train_both

FEW = settings(max_examples=30, deadline=None)
DTYPES = [np.float32, np.float64]
# Broadcasting pairs, 0-d and empty shapes included.
PAIRS = [((), ()), ((3,), ()), ((), (2, 3)), ((2, 3), (3,)), ((2, 1, 4), (3, 1)), ((4, 1), (1, 5)),
         ((1,), (2, 2)), ((0, 3), (3,)), ((2, 0), (1, 0))]
SHAPES = [(), (1,), (5,), (2, 3), (3, 1, 4), (0,), (2, 0, 3)]
DRAWN_PAIRS = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=4)
DRAWN_SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


def sample(shape, dtype, rng, low=-2.0, high=2.0):
    return rng.uniform(low, high, shape).astype(dtype)


# ---------------------------------------------------------------- elementwise operations

BINARY = {
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "add method": (lambda a, b: a.add(b), lambda a, b: a.add(b)),
    "sub method": (lambda a, b: a.sub(b), lambda a, b: a.sub(b)),
    "mul method": (lambda a, b: a.mul(b), lambda a, b: a.mul(b)),
    "div method": (lambda a, b: a.div(b), lambda a, b: a.div(b)),
    "maximum": (lambda a, b: a.maximum(b), torch.maximum),
    "minimum": (lambda a, b: a.minimum(b), torch.minimum),
    "maximum function": (operations.maximum, torch.maximum),
    "minimum function": (operations.minimum, torch.minimum),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_operations_on_broadcasting_shapes(name, dtype):
    rng = np.random.default_rng(0)
    for left, right in PAIRS:  # a divisor kept away from zero
        b = sample(right, dtype, rng, 0.5, 2.0) * rng.choice([-1, 1], right) if name.startswith("div") else sample(right, dtype, rng)
        compare(*BINARY[name], [sample(left, dtype, rng), b.astype(dtype)], f"{name} {left} {right}")


@FEW
@given(data=st.data())
def test_division_on_drawn_shapes(data):
    left, right = data.draw(DRAWN_PAIRS).input_shapes
    compare(*BINARY["div"], [data.draw(values(left)), data.draw(values(right, 0.5, 2.0))], "div")


@pytest.mark.parametrize("dtype", DTYPES)
def test_maximum_and_minimum_split_ties_in_half(dtype):
    a, b = np.array([1.0, 2.0, 3.0], dtype), np.array([1.0, 5.0, 3.0], dtype)
    for name in ["maximum", "minimum"]:
        compare(*BINARY[name], [a, b], f"{name} ties")


UNARY = {  # name: (ours, torch, low, high)
    "exp": (lambda v: v.exp(), torch.exp, -3, 3),
    "log": (lambda v: v.log(), torch.log, 0.1, 3),
    "sqrt": (lambda v: v.sqrt(), torch.sqrt, 0.1, 3),
    "tanh": (lambda v: v.tanh(), torch.tanh, -3, 3),
    "sigmoid": (lambda v: v.sigmoid(), torch.sigmoid, -20, 20),
    "relu": (lambda v: v.relu(), torch.relu, -2, 2),
    "neg": (lambda v: -v, torch.neg, -2, 2),
    "neg method": (lambda v: v.neg(), torch.neg, -2, 2),
    "abs": (lambda v: v.abs(), torch.abs, -2, 2),
    "pow 3": (lambda v: v ** 3, lambda t: t ** 3, -2, 2),
    "pow 2.0": (lambda v: v ** 2.0, lambda t: t ** 2.0, -2, 2),
    "pow -0.5": (lambda v: v ** -0.5, lambda t: t ** -0.5, 0.1, 3),
    "pow 0": (lambda v: v ** 0, lambda t: t ** 0, -2, 2),
    "rpow 2.5": (lambda v: 2.5 ** v, lambda t: 2.5 ** t, -2, 2),
    "rpow 0": (lambda v: 0.0 ** v, lambda t: 0.0 ** t, -2, 2),
    "rsub": (lambda v: 1.0 - v, lambda t: 1.0 - t, -2, 2),
    "rdiv": (lambda v: 1.0 / v, lambda t: 1.0 / t, 0.5, 3),
    "clamp": (lambda v: v.clamp(-0.5, 1.0), lambda t: t.clamp(-0.5, 1.0), -2, 2),
    "clamp min": (lambda v: v.clamp(min=0.0), lambda t: t.clamp(min=0.0), -2, 2),
    "clip max": (lambda v: v.clip(max=0.3), lambda t: t.clip(max=0.3), -2, 2),
    "clamp function": (lambda v: operations.clamp(v, -1.0, 1.0), lambda t: t.clamp(-1.0, 1.0), -2, 2),
    "absolute function": (operations.absolute, torch.abs, -2, 2),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(UNARY))
def test_elementwise_functions_on_every_shape(name, dtype):
    rng = np.random.default_rng(1)
    ours, theirs, low, high = UNARY[name]
    for shape in SHAPES:
        compare(ours, theirs, [sample(shape, dtype, rng, low, high)], f"{name} {shape}")


DRAWN_RANGES = {"sigmoid": (-30, 30), "rdiv": (0.1, 3)}  # wider than the sweep's: hypothesis seeks the ends


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "tanh", "sigmoid", "relu", "neg", "pow 3", "pow -0.5", "rpow 2.5",
                                  "rdiv"])
@FEW
@given(data=st.data())
def test_elementwise_functions_on_drawn_shapes(name, data):
    ours, theirs, low, high = UNARY[name]
    low, high = DRAWN_RANGES.get(name, (low, high))
    compare(ours, theirs, [data.draw(values(data.draw(DRAWN_SHAPES), low, high))], name)


EDGE_VALUES = np.array([0.0, -0.0, 1.0, -1.0, 2.0, np.inf, -np.inf])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "pow 3", "pow 2.0", "pow 0",
                                  "rpow 2.5", "rpow 0", "clamp", "clamp min", "neg"])
def test_elementwise_functions_at_zeros_and_infinities(name, dtype):
    ours, theirs, _, _ = UNARY[name]
    compare(ours, theirs, [EDGE_VALUES.astype(dtype)], f"{name} at {EDGE_VALUES.tolist()}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_power_with_a_variable_exponent(dtype):
    """x ** y with both Variables: values and both gradients, broadcasting, and PyTorch's answers at base 0
    (0 ** 0 = 1 with no gradient to either side, 0 ** -1 = inf) and for negative bases (NaN where no real power)."""
    rng = np.random.default_rng(10)
    for left, right in PAIRS:
        compare(lambda a, b: a ** b, lambda a, b: a ** b, [sample(left, dtype, rng, 0.1, 2.0), sample(right, dtype, rng)],
                f"pow {left} {right}")
    bases = np.array([0.0, 0.0, 0.0, 0.0, -2.0, -2.0, -0.5, 3.0, 1.0], dtype)
    exponents = np.array([0.0, 2.0, 0.5, -1.0, 2.0, 0.5, 3.0, 0.0, -2.5], dtype)
    compare(lambda a, b: a ** b, lambda a, b: a ** b, [bases, exponents], "pow at base 0 and negative bases")
    compare(lambda b: Variable(bases) ** b, lambda b: torch.tensor(bases) ** b, [exponents], "a constant base")
    compare(lambda a: a ** Variable(exponents), lambda a: a ** torch.tensor(exponents), [bases], "a constant exponent")


def test_the_zero_powers():
    compare(lambda v: 0.0 ** v, lambda t: 0.0 ** t, [np.array([-1.0, 0.0, 2.0], np.float32)], "0 ** x")
    compare(lambda v: v ** 0, lambda t: t ** 0, [np.array([0.0, 2.0], np.float32)], "x ** 0")


# ---------------------------------------------------------------- reductions

def _dims(t, dim):
    """PyTorch's spelling of "all axes" (None) for reductions that need a dim argument."""
    return tuple(range(t.ndim)) if dim is None else dim


def _torch_extreme(t, dim, keepdim, single, several):
    if dim is None:
        return single(t) if not keepdim else several(t, tuple(range(t.ndim)), keepdim=True)
    if isinstance(dim, int):
        return single(t, dim, keepdim=keepdim).values
    return several(t, dim, keepdim=keepdim)


REDUCTIONS = {  # name: (ours(v, axis, keepdims), torch(t, dim, keepdim)); dim None means all axes
    "mean": (lambda v, a, k: v.mean(dim=a, keepdim=k), lambda t, d, k: t.mean(_dims(t, d), keepdim=k)),
    "max": (lambda v, a, k: v.max(a, k), lambda t, d, k: _torch_extreme(t, d, k, torch.max, torch.amax)),
    "min": (lambda v, a, k: v.min(dim=a, keepdim=k), lambda t, d, k: _torch_extreme(t, d, k, torch.min, torch.amin)),
    "var": (lambda v, a, k: v.var(a, keepdims=k), lambda t, d, k: t.var(_dims(t, d), keepdim=k)),
    "var unbiased=False": (lambda v, a, k: v.var(dim=a, keepdim=k, unbiased=False),
                           lambda t, d, k: t.var(_dims(t, d), keepdim=k, unbiased=False)),
    "std correction=0": (lambda v, a, k: v.std(a, k, correction=0), lambda t, d, k: t.std(_dims(t, d), keepdim=k, correction=0)),
    "logsumexp": (lambda v, a, k: v.logsumexp(dim=a, keepdim=k), lambda t, d, k: t.logsumexp(_dims(t, d), keepdim=k)),
}
AXES = {(): [None, 0, -1], (5,): [None, 0, -1, (0,)], (2, 3): [None, 0, 1, -1, (0, 1)],
        (2, 3, 4): [None, 1, (0, 2), (-1, 0), (0, 1, 2)]}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reductions_over_every_kind_of_axis(name, dtype):
    rng = np.random.default_rng(2)
    ours, theirs = REDUCTIONS[name]
    for shape, axes in AXES.items():
        if name.startswith(("var", "std")) and shape == ():
            continue  # one value: the unbiased variance is a division by zero in both, tested below
        for axis in axes:
            for keep in (False, True):
                if name.startswith(("max", "min")) and axis is None and shape == () and keep:
                    continue  # torch.amax of a 0-d tensor over dim () is not a reduction
                compare(lambda v: ours(v, axis, keep), lambda t: theirs(t, axis, keep), [sample(shape, dtype, rng)],
                        f"{name} {shape} axis={axis} keepdim={keep}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions_of_a_0d_variable_over_axis_0_and_minus_1(dtype):
    value = np.array(1.5, dtype)
    for name in ["mean", "max", "min", "logsumexp"]:
        ours, theirs = REDUCTIONS[name]
        for axis in (0, -1):
            compare(lambda v: ours(v, axis, False), lambda t: theirs(t, axis, False), [value], f"{name}(0-d, {axis})")


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_and_min_ties_follow_pytorch(dtype):
    tied = np.array([[3.0, 1.0, 3.0], [2.0, 2.0, 2.0]], dtype)
    for name in ["max", "min"]:
        ours, theirs = REDUCTIONS[name]
        for axis in [None, 0, 1, (0, 1)]:
            compare(lambda v: ours(v, axis, False), lambda t: theirs(t, axis, False), [tied], f"{name} ties axis={axis}")


def test_max_over_one_axis_is_torch_max_not_amax():
    """docs/pytorch.md's table: over one axis tinytorch's max is torch.max(x, dim) (the first tie takes the gradient),
    which differs from torch.amax(x, dim) (ties share); over several axes it is amax."""
    values_ = np.array([[3.0, 3.0, 1.0], [0.0, 2.0, 2.0]])
    compare(lambda v: v.max(1), lambda t: t.max(1).values, [values_], "max(dim) ties")
    amax = torch.tensor(values_, requires_grad=True)
    torch.amax(amax, 1).sum().backward()
    ours = Variable(values_, requires_grad=True)
    ours.max(1).sum().backward()
    assert not np.allclose(ours.grad, amax.grad.numpy()), "amax(x, 1) shares ties: the table's third row"
    compare(lambda v: v.max(axis=(0, 1)), lambda t: torch.amax(t, (0, 1)), [values_[:1]], "amax over two axes")


@pytest.mark.filterwarnings("ignore:var\\(\\)")  # PyTorch warns about var of one value
@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions_of_empty_arrays_and_infinities(dtype):
    empty = np.zeros((0, 3), dtype)
    ours, theirs = REDUCTIONS["mean"]
    for axis in [None, 0, 1]:
        compare(lambda v: ours(v, axis, False), lambda t: theirs(t, axis, False), [empty], f"mean of (0, 3) axis={axis}")
    infinite = np.array([[1.0, np.inf, 0.0], [-np.inf, -np.inf, -np.inf]], dtype)
    for name in ["max", "min", "logsumexp"]:
        ours, theirs = REDUCTIONS[name]
        compare(lambda v: ours(v, 1, False), lambda t: theirs(t, 1, False), [infinite], f"{name} with infinities")
    compare(lambda v: v.var(), lambda t: t.var(), [np.array([2.0], dtype)], "var of one value: nan, as in PyTorch")


@pytest.mark.parametrize("reduction", ["mean", "amax"])
@FEW
@given(data=st.data())
def test_reductions_on_drawn_shapes(reduction, data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    keepdims = data.draw(st.booleans())
    size = int(np.prod(shape))
    distinct = np.random.default_rng(size).permutation(size).reshape(shape) / 7.0  # no ties for max
    method = "max" if reduction == "amax" else reduction

    def reference(t):
        if axis is None:
            result = getattr(t, reduction)()
            return result.reshape((1,) * t.ndim) if keepdims else result
        return getattr(t, reduction)(axis, keepdim=keepdims)

    compare(lambda v: getattr(v, method)(axis=axis, keepdims=keepdims), reference, [distinct], f"{reduction} axis={axis}")


SOFTMAXES = {
    "softmax": (lambda v, d: v.softmax(dim=d), lambda t, d: t.softmax(dim=d)),
    "log_softmax": (lambda v, d: v.log_softmax(dim=d), lambda t, d: t.log_softmax(dim=d)),
    "softmax function": (operations.softmax, lambda t, d: torch.softmax(t, d)),
    "log_softmax function": (operations.log_softmax, lambda t, d: torch.log_softmax(t, d)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(SOFTMAXES))
def test_softmax_and_log_softmax_along_any_axis(name, dtype):
    rng = np.random.default_rng(3)
    ours, theirs = SOFTMAXES[name]
    for shape in [(5,), (2, 3), (2, 3, 4)]:
        for dim in range(-len(shape), len(shape)):
            compare(lambda v: ours(v, dim), lambda t: theirs(t, dim), [sample(shape, dtype, rng, -5, 5)],
                    f"{name} {shape} dim={dim}")
    large = np.array([[1000.0, 0.0, -np.inf], [-1000.0, -1000.0, 3.0]], dtype)
    compare(lambda v: ours(v, 1), lambda t: theirs(t, 1), [large], f"{name} of large and infinite logits")


@FEW
@given(data=st.data())
def test_log_softmax_on_drawn_shapes(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    compare(lambda v: v.log_softmax(axis=axis), lambda t: torch.log_softmax(t, dim=axis),
            [data.draw(values(shape, -50.0, 50.0))], f"log_softmax axis={axis}")


# ---------------------------------------------------------------- shapes and indexing

SHAPE_OPERATIONS = [  # (what, ours, torch, input shape)
    ("reshape", lambda v: v.reshape(4, 6), lambda t: t.reshape(4, 6), (2, 3, 4)),
    ("reshape function", lambda v: operations.reshape(v, (-1,)), lambda t: t.reshape(-1), (2, 3, 4)),
    ("view", lambda v: v.view(6, -1), lambda t: t.view(6, -1), (2, 3, 4)),
    ("permute", lambda v: v.permute(2, 0, 1), lambda t: t.permute(2, 0, 1), (2, 3, 4)),
    ("permute tuple", lambda v: operations.permute(v, (1, 2, 0)), lambda t: t.permute(1, 2, 0), (2, 3, 4)),
    ("transpose", lambda v: v.transpose(0, 2), lambda t: t.transpose(0, 2), (2, 3, 4)),
    ("transpose negative", lambda v: operations.transpose(v, -1, -2), lambda t: t.transpose(-1, -2), (2, 3, 4)),
    (".T", lambda v: v.T, lambda t: t.T, (2, 3)),
    (".T of 3 axes", lambda v: v.T, lambda t: t.permute(2, 1, 0), (2, 3, 4)),
    ("squeeze", lambda v: v.squeeze(), lambda t: t.squeeze(), (1, 3, 1)),
    ("squeeze dim", lambda v: v.squeeze(0), lambda t: t.squeeze(0), (1, 3, 1)),
    ("squeeze non-1 dim", lambda v: v.squeeze(1), lambda t: t.squeeze(1), (1, 3, 1)),
    ("unsqueeze", lambda v: v.unsqueeze(1), lambda t: t.unsqueeze(1), (2, 3)),
    ("unsqueeze -1", lambda v: v.unsqueeze(-1), lambda t: t.unsqueeze(-1), (2, 3)),
    ("unsqueeze 0-d", lambda v: v.unsqueeze(0), lambda t: t.unsqueeze(0), ()),
    ("expand", lambda v: v.expand(2, 3), lambda t: t.expand(2, 3), (1, 3)),
    ("expand -1 and new axes", lambda v: v.expand(4, -1, 3), lambda t: t.expand(4, -1, 3), (2, 1)),
    ("expand function", lambda v: operations.expand(v, (2, 5)), lambda t: t.expand(2, 5), (5,)),
    ("flip", lambda v: v.flip(0), lambda t: t.flip(0), (2, 3, 4)),
    ("flip two", lambda v: operations.flip(v, (0, -1)), lambda t: t.flip(0, -1), (2, 3, 4)),
    ("slice", lambda v: v[1:, ::2], lambda t: t[1:, ::2], (3, 4)),
    ("integer", lambda v: v[1, 2], lambda t: t[1, 2], (3, 4)),
    ("repeated integer arrays", lambda v: v[np.array([0, 2, 2]), np.array([3, 0, 0])],
     lambda t: t[torch.tensor([0, 2, 2]), torch.tensor([3, 0, 0])], (3, 4)),
    ("repeated list", lambda v: v[[1, 1, 0]], lambda t: t[[1, 1, 0]], (3, 4)),
    ("repeated tuple inside an index", lambda v: v[:, (0, 0)], lambda t: t[:, [0, 0]], (2, 3)),
    ("boolean mask", lambda v: v[np.array([True, False, True])], lambda t: t[torch.tensor([True, False, True])], (3, 4)),
    ("empty slice", lambda v: v[2:2], lambda t: t[2:2], (3, 4)),
    ("getitem function", lambda v: operations.getitem(v, (slice(None), 1)), lambda t: t[:, 1], (3, 4)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SHAPE_OPERATIONS, ids=[case[0] for case in SHAPE_OPERATIONS])
def test_shape_operations_and_indexing(case, dtype):
    what, ours, theirs, shape = case
    compare(ours, theirs, [sample(shape, dtype, np.random.default_rng(4))], what)


def test_indexing_a_3d_variable_with_repeated_pairs_and_a_mask():
    x = np.random.default_rng(1).standard_normal((3, 4, 2))
    rows, columns = np.array([0, 2, 2, 1]), np.array([3, 0, 0, 1])
    compare(lambda v: v[rows, columns], lambda t: t[torch.tensor(rows), torch.tensor(columns)], [x], "repeated pairs")
    compare(lambda v: v[x > 0], lambda t: t[torch.tensor(x > 0)], [x], "a boolean mask of every axis")


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_method(dtype):
    rng = np.random.default_rng(5)
    for left, right in [((2, 3), (3, 4)), ((3,), (3, 2)), ((2, 3), (3,)), ((3,), (3,)), ((2, 2, 3), (3, 4)),
                        ((4, 3), (2, 3, 2)), ((2, 1, 2, 3), (3, 3, 1)), ((0, 3), (3, 2)), ((2, 0), (0, 3))]:
        compare(lambda a, b: a.matmul(b), lambda a, b: a.matmul(b), [sample(left, dtype, rng), sample(right, dtype, rng)],
                f"{left}.matmul({right})")


# ---------------------------------------------------------------- the functional forms, integers, comparisons

FUNCTIONS = {  # name: (ours, torch, number of inputs, low, high)
    "divide": (operations.divide, torch.div, 2, 0.5, 2), "negative": (operations.negative, torch.neg, 1, -2, 2),
    "power": (lambda v: operations.power(v, 1.5), lambda t: t ** 1.5, 1, 0.1, 2),
    "exponential_of": (lambda v: operations.exponential_of(3.0, v), lambda t: 3.0 ** t, 1, -2, 2),
    "exp": (operations.exp, torch.exp, 1, -2, 2), "log": (operations.log, torch.log, 1, 0.1, 2),
    "sqrt": (operations.sqrt, torch.sqrt, 1, 0.1, 2), "tanh": (operations.tanh, torch.tanh, 1, -2, 2),
    "sigmoid": (operations.sigmoid, torch.sigmoid, 1, -2, 2), "relu": (operations.relu, torch.relu, 1, -2, 2),
    "reduce_mean": (lambda v: operations.reduce_mean(v, (0, 1), True), lambda t: t.mean((0, 1), keepdim=True), 1, -2, 2),
    "reduce_max": (lambda v: operations.reduce_max(v, 0), lambda t: t.max(0).values, 1, -2, 2),
    "reduce_min": (lambda v: operations.reduce_min(v), torch.min, 1, -2, 2),
    "variance": (lambda v: operations.variance(v, 1, False, 0), lambda t: t.var(1, correction=0), 1, -2, 2),
    "logsumexp": (lambda v: operations.logsumexp(v, 0), lambda t: t.logsumexp(0), 1, -2, 2),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_functional_forms(name, dtype):
    ours, theirs, count, low, high = FUNCTIONS[name]
    rng = np.random.default_rng(6)
    compare(ours, theirs, [sample((3, 3), dtype, rng, low, high) for _ in range(count)], name)


PROMOTIONS = {"x / 2": lambda x: x / 2, "0.7 ** x": lambda x: 0.7 ** x, "x ** 0.5": lambda x: x ** 0.5}


@pytest.mark.parametrize("integer", [np.int32, np.int64, np.bool_])
def test_integer_data_promotes_like_pytorch(integer):
    values_ = np.array([1, 0, 1], dtype=integer)
    for what, expression in PROMOTIONS.items():
        if integer is np.bool_ and what == "x ** 0.5":
            continue  # PyTorch refuses a bool base
        compare(expression, expression, [values_], f"Variable of {integer.__name__}: {what}", tolerance=dict(rtol=1e-6, atol=0))


def test_comparisons_return_boolean_tensors_and_variables_stay_hashable():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0])
    for operator in ("__eq__", "__ne__", "__gt__", "__ge__", "__lt__", "__le__"):
        got, expected = getattr(Variable(a), operator)(b), getattr(torch.tensor(a), operator)(torch.tensor(b))
        assert isinstance(got, Tensor) and got.dtype == np.bool_, f"{operator} should give a boolean Tensor"
        assert got.data.tolist() == expected.tolist(), f"{operator}: {got.data.tolist()}, PyTorch {expected.tolist()}"
    x, y = Variable(a), Variable(a)
    assert len({x, y, x}) == 2 and {x: 1}[x] == 1, "Variables hash by identity"
    assert (x == None) is False and (x != None) is True  # noqa: E711


def test_bool_of_one_value_and_of_many():
    for values_ in [[-1.0], [0.0], 2.0, [[0.5]]]:
        assert bool(Variable(values_) > 0) is bool(torch.tensor(values_) > 0), f"bool(Variable({values_}) > 0)"
    assert bool(Variable([3.0])) is True
    with pytest.raises(ValueError, match="more than one value is ambiguous"):
        bool(Variable([1.0, 2.0]))
    with pytest.raises(ValueError, match="no values"):
        bool(Variable(np.zeros(0)))


def test_leaf_state_follows_pytorch():
    x = Variable([1.0, 2.0])
    assert x.is_leaf and x.requires_grad_() is x and x.requires_grad and x.is_leaf
    y = x * 2.0
    assert not y.is_leaf and torch.tensor([1.0], requires_grad=True).mul(2).is_leaf is False
    with pytest.raises(RuntimeError):
        y.requires_grad_(False)
    with pytest.raises(TypeError, match="int64"):
        Variable(np.arange(2)).requires_grad_()


# ---------------------------------------------------------------- graphs and networks

STEPS = {  # the steps of the random expression graphs; they keep values in a safe range
    "add": (2, lambda a, b: a + b, lambda a, b: a + b),
    "sub": (2, lambda a, b: a - b, lambda a, b: a - b),
    "mul": (2, lambda a, b: a * b, lambda a, b: a * b),
    "div": (2, lambda a, b: a / (b * b + 1.0), lambda a, b: a / (b * b + 1.0)),
    "tanh": (1, lambda a: a.tanh(), torch.tanh),
    "sigmoid": (1, lambda a: a.sigmoid(), torch.sigmoid),
    "exp": (1, lambda a: (a * 0.3).exp(), lambda a: (a * 0.3).exp()),
    "log": (1, lambda a: (a * a + 1.0).log(), lambda a: (a * a + 1.0).log()),
    "square": (1, lambda a: a ** 2, lambda a: a ** 2),
    "sum_last": (1, lambda a: a.sum(axis=-1, keepdims=True) if a.ndim else a, lambda a: a.sum(-1, keepdim=True) if a.ndim else a),
    "mean_first": (1, lambda a: a.mean(axis=0, keepdims=True) if a.ndim else a, lambda a: a.mean(0, keepdim=True) if a.ndim else a),
    "log_softmax": (1, lambda a: log_softmax(a) if a.ndim else a, lambda a: torch.log_softmax(a, -1) if a.ndim else a),
}


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_expression_graphs_match_torch(data):
    compare_random_graph(data, STEPS)


def test_cross_entropy_network_matches_torch():
    rng = np.random.default_rng(0)
    x, targets = rng.standard_normal((16, 8)), rng.integers(0, 5, 16)
    arrays = [rng.standard_normal((8, 12)) * 0.5, np.zeros(12), rng.standard_normal((12, 5)) * 0.5, np.zeros((1, 5))]

    def ours(w1, b1, w2, b2):
        logits = (x @ w1 + b1).relu() @ w2 + b2
        return -log_softmax(logits)[np.arange(16), targets].mean()

    def theirs(w1, b1, w2, b2):
        logits = torch.relu(torch.tensor(x) @ w1 + b1) @ w2 + b2
        return torch.nn.functional.cross_entropy(logits, torch.tensor(targets))

    compare(ours, theirs, arrays, "cross-entropy network")


@pytest.mark.parametrize("dtype", DTYPES)
def test_mlp_steps_dtypes_and_values_match_torch(dtype):
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((32, 6)).astype(dtype), rng.standard_normal((32, 3)).astype(dtype)

    def ours(w1, b1, w2, b2):
        return ((((x @ w1 + b1).relu() @ w2 + b2) - y) ** 2).mean()

    def theirs(w1, b1, w2, b2):
        return ((torch.relu(torch.tensor(x) @ w1 + b1) @ w2 + b2 - torch.tensor(y)) ** 2).mean()

    train_both(ours, theirs, [rng.standard_normal(shape).astype(dtype) * 0.3 for shape in [(6, 10), (10,), (10, 3), (3,)]],
               tolerance=dict(rtol=1e-4 if dtype == np.float32 else 1e-9, atol=1e-6))


# ---------------------------------------------------------------- coverage of the public operations

COVERED = {
    "divide", "negative", "power", "exponential_of", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "reduce_mean",
    "reduce_max", "reduce_min", "variance", "logsumexp", "softmax", "log_softmax", "reshape", "permute", "transpose",
    "expand", "flip", "getitem", "absolute", "clamp", "maximum", "minimum",
}
TOOLS = {"gradcheck", "draw_graph", "GraphDrawing", "Parameter"}  # tools and layers' trainable Parameter: test_operations.py


def test_every_public_operation_has_a_torch_case_here():
    assert_covered(operations, COVERED, TOOLS)
