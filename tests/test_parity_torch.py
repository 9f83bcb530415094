"""PyTorch as the oracle for every public operation of tinytorch.core.tensor, tinytorch.core.autograd (module 05's
engine) and tinytorch.core.operations (module 06).

Each case computes the same thing with tinytorch and with PyTorch 2.13, in float32 and float64, and compares
the value (and its dtype) and, for Variables, the gradient of every input under the same random weighting of
the output. Inputs come from a seeded sweep over broadcasting shapes, plus edge cases: zeros, 0-d and empty
arrays, repeated indices, ties and infinities. The last test fails when a public operation has no case here.

Ties follow PyTorch: a full max/min (`x.max()`, `torch.max(x)`) and one over several axes (`torch.amax`) share
the gradient equally between tied entries; one over a single axis (`torch.max(x, dim)`) gives it all to the
first tied entry; `maximum`/`minimum` give half to each input on a tie.
"""
from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

import tinytorch.core.autograd as autograd
import tinytorch.core.operations as operations
import tinytorch.core.tensor as tensor_module
from tinytorch.core.autograd import Variable
from tinytorch.core.tensor import Tensor

torch = pytest.importorskip("torch", reason="PyTorch is the oracle here; install it with `pip install torch==2.13.0`")

DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}

# Broadcasting pairs, 0-d and empty shapes included.
PAIRS = [((), ()), ((3,), ()), ((), (2, 3)), ((2, 3), (3,)), ((2, 1, 4), (3, 1)), ((4, 1), (1, 5)),
         ((1,), (2, 2)), ((0, 3), (3,)), ((2, 0), (1, 0))]
SHAPES = [(), (1,), (5,), (2, 3), (3, 1, 4), (0,), (2, 0, 3)]


def sample(shape, dtype, rng, low=-2.0, high=2.0):
    return rng.uniform(low, high, shape).astype(dtype)


def leaves(arrays):
    ours = [Variable(array.copy(), requires_grad=True) for array in arrays]
    theirs = [torch.tensor(array.copy(), requires_grad=True) for array in arrays]
    return ours, theirs


def assert_close(ours, theirs, dtype, what):
    expected = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    ours = np.asarray(ours)
    assert ours.shape == expected.shape, f"{what}: shape {ours.shape}, PyTorch {expected.shape}"
    np.testing.assert_allclose(ours, expected, err_msg=what, equal_nan=True, **TOLERANCE[dtype])


def check(ours_fn, torch_fn, arrays, dtype, what=""):
    """Values, the value's dtype, and every input's gradient under the same random weighting."""
    ours, theirs = leaves(arrays)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log(0), 0 ** -1: infinities are part of the check
        out, expected = ours_fn(*ours), torch_fn(*theirs)
        assert out.dtype == expected.detach().numpy().dtype, f"{what}: dtype {out.dtype}, PyTorch {expected.dtype}"
        assert_close(out.data.data, expected, dtype, f"{what}: value")
        weights = np.random.default_rng(7).standard_normal(expected.shape).astype(dtype)
        out.backward(weights)
        expected.backward(torch.tensor(weights))
    for index, (mine, reference) in enumerate(zip(ours, theirs)):
        expected_grad = reference.grad if reference.grad is not None else torch.zeros_like(reference)
        got = mine.grad if mine.grad is not None else np.zeros(mine.shape, mine.dtype)
        assert got.dtype == mine.dtype, f"{what}: gradient {index} has dtype {got.dtype}, its input {mine.dtype}"
        assert_close(got, expected_grad, dtype, f"{what}: gradient of input {index}")


# ---------------------------------------------------------------- elementwise operations

BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
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
    ours, theirs = BINARY[name]
    for left, right in PAIRS:
        b = sample(right, dtype, rng, 0.5, 2.0) * rng.choice([-1, 1], right) if name.startswith("div") else sample(right, dtype, rng)
        check(ours, theirs, [sample(left, dtype, rng), b.astype(dtype)], dtype, f"{name} {left} {right}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_maximum_and_minimum_split_ties_in_half(dtype):
    a, b = np.array([1.0, 2.0, 3.0], dtype), np.array([1.0, 5.0, 3.0], dtype)
    for ours, theirs in [BINARY["maximum"], BINARY["minimum"]]:
        check(ours, theirs, [a, b], dtype, "ties")


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
        check(ours, theirs, [sample(shape, dtype, rng, low, high)], dtype, f"{name} {shape}")


EDGE_VALUES = np.array([0.0, -0.0, 1.0, -1.0, 2.0, np.inf, -np.inf])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "pow 3", "pow 2.0", "pow 0",
                                  "rpow 2.5", "rpow 0", "clamp", "clamp min", "neg"])
def test_elementwise_functions_at_zeros_and_infinities(name, dtype):
    ours, theirs, _, _ = UNARY[name]
    check(ours, theirs, [EDGE_VALUES.astype(dtype)], dtype, f"{name} at {EDGE_VALUES.tolist()}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_power_with_a_variable_exponent(dtype):
    """x ** y with both Variables: values and both gradients, broadcasting, and PyTorch's answers at base 0
    (0 ** 0 = 1 with no gradient to either side, 0 ** -1 = inf) and for negative bases (NaN where no real power)."""
    rng = np.random.default_rng(10)
    for left, right in PAIRS:
        check(lambda a, b: a ** b, lambda a, b: a ** b, [sample(left, dtype, rng, 0.1, 2.0), sample(right, dtype, rng)],
              dtype, f"pow {left} {right}")
    bases = np.array([0.0, 0.0, 0.0, 0.0, -2.0, -2.0, -0.5, 3.0, 1.0], dtype)
    exponents = np.array([0.0, 2.0, 0.5, -1.0, 2.0, 0.5, 3.0, 0.0, -2.5], dtype)
    check(lambda a, b: a ** b, lambda a, b: a ** b, [bases, exponents], dtype, "pow at base 0 and negative bases")
    check(lambda b: Variable(bases) ** b, lambda b: torch.tensor(bases) ** b, [exponents], dtype, "a constant base")
    check(lambda a: a ** Variable(exponents), lambda a: a ** torch.tensor(exponents), [bases], dtype, "a constant exponent")


def test_the_zero_power_cases_of_the_issue():
    check(lambda v: 0.0 ** v, lambda t: 0.0 ** t, [np.array([-1.0, 0.0, 2.0], np.float32)], np.float32, "0 ** x")
    check(lambda v: v ** 0, lambda t: t ** 0, [np.array([0.0, 2.0], np.float32)], np.float32, "x ** 0")


# ---------------------------------------------------------------- reductions

REDUCTIONS = {  # name: (ours(v, axis, keepdims), torch(t, dim, keepdim)); dim None means all axes
    "sum": (lambda v, a, k: v.sum(a, keepdims=k), lambda t, d, k: t.sum(_dims(t, d), keepdim=k)),
    "mean": (lambda v, a, k: v.mean(dim=a, keepdim=k), lambda t, d, k: t.mean(_dims(t, d), keepdim=k)),
    "max": (lambda v, a, k: v.max(a, k), lambda t, d, k: _torch_extreme(t, d, k, torch.max, torch.amax)),
    "min": (lambda v, a, k: v.min(dim=a, keepdim=k), lambda t, d, k: _torch_extreme(t, d, k, torch.min, torch.amin)),
    "var": (lambda v, a, k: v.var(a, keepdims=k), lambda t, d, k: t.var(_dims(t, d), keepdim=k)),
    "var unbiased=False": (lambda v, a, k: v.var(dim=a, keepdim=k, unbiased=False),
                           lambda t, d, k: t.var(_dims(t, d), keepdim=k, unbiased=False)),
    "std correction=0": (lambda v, a, k: v.std(a, k, correction=0), lambda t, d, k: t.std(_dims(t, d), keepdim=k, correction=0)),
    "logsumexp": (lambda v, a, k: v.logsumexp(dim=a, keepdim=k), lambda t, d, k: t.logsumexp(_dims(t, d), keepdim=k)),
}


def _dims(t, dim):
    """PyTorch's spelling of "all axes" (None) for reductions that need a dim argument."""
    return tuple(range(t.ndim)) if dim is None else dim


def _torch_extreme(t, dim, keepdim, single, several):
    if dim is None:
        return single(t) if not keepdim else several(t, tuple(range(t.ndim)), keepdim=True)
    if isinstance(dim, int):
        return single(t, dim, keepdim=keepdim).values
    return several(t, dim, keepdim=keepdim)


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
                check(lambda v: ours(v, axis, keep), lambda t: theirs(t, axis, keep), [sample(shape, dtype, rng)],
                      dtype, f"{name} {shape} axis={axis} keepdim={keep}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions_of_a_0d_variable_over_axis_0_and_minus_1(dtype):
    value = np.array(1.5, dtype)
    for name in ["sum", "mean", "max", "min", "logsumexp"]:
        ours, theirs = REDUCTIONS[name]
        for axis in (0, -1):
            check(lambda v: ours(v, axis, False), lambda t: theirs(t, axis, False), [value], dtype, f"{name}(0-d, {axis})")


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_and_min_ties_follow_pytorch(dtype):
    tied = np.array([[3.0, 1.0, 3.0], [2.0, 2.0, 2.0]], dtype)
    for name in ["max", "min"]:
        ours, theirs = REDUCTIONS[name]
        for axis in [None, 0, 1, (0, 1)]:
            check(lambda v: ours(v, axis, False), lambda t: theirs(t, axis, False), [tied], dtype, f"{name} ties axis={axis}")


def test_max_over_one_axis_is_torch_max_not_amax():
    """docs/pytorch.md's table: over one axis tinytorch's max is torch.max(x, dim) (the first tie takes the gradient),
    which differs from torch.amax(x, dim) (ties share); over several axes it is amax."""
    values = np.array([[3.0, 3.0, 1.0], [0.0, 2.0, 2.0]])
    check(lambda v: v.max(1), lambda t: t.max(1).values, [values], np.float64, "max(dim) ties")
    amax = torch.tensor(values, requires_grad=True)
    torch.amax(amax, 1).sum().backward()
    ours = Variable(values, requires_grad=True)
    ours.max(1).sum().backward()
    assert not np.allclose(ours.grad, amax.grad.numpy()), "amax(x, 1) shares ties: the table's third row"
    check(lambda v: v.max(axis=(0, 1)), lambda t: torch.amax(t, (0, 1)), [values[:1]], np.float64, "amax over two axes")


@pytest.mark.filterwarnings("ignore:var\\(\\)")  # PyTorch warns about var of one value
@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions_of_empty_arrays_and_infinities(dtype):
    empty = np.zeros((0, 3), dtype)
    for name in ["sum", "mean"]:
        ours, theirs = REDUCTIONS[name]
        for axis in [None, 0, 1]:
            check(lambda v: ours(v, axis, False), lambda t: theirs(t, axis, False), [empty], dtype, f"{name} of (0, 3) axis={axis}")
    infinite = np.array([[1.0, np.inf, 0.0], [-np.inf, -np.inf, -np.inf]], dtype)
    for name in ["max", "min", "logsumexp"]:
        ours, theirs = REDUCTIONS[name]
        check(lambda v: ours(v, 1, False), lambda t: theirs(t, 1, False), [infinite], dtype, f"{name} with infinities")
    one = np.array([2.0], dtype)
    check(lambda v: v.var(), lambda t: t.var(), [one], dtype, "var of one value: nan, as in PyTorch")


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
            check(lambda v: ours(v, dim), lambda t: theirs(t, dim), [sample(shape, dtype, rng, -5, 5)], dtype,
                  f"{name} {shape} dim={dim}")
    large = np.array([[1000.0, 0.0, -np.inf], [-1000.0, -1000.0, 3.0]], dtype)
    check(lambda v: ours(v, 1), lambda t: theirs(t, 1), [large], dtype, f"{name} of large and infinite logits")


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
    check(ours, theirs, [sample(shape, dtype, np.random.default_rng(4))], dtype, what)


MATMUL_SHAPES = [((2, 3), (3, 4)), ((3,), (3, 2)), ((2, 3), (3,)), ((3,), (3,)), ((2, 2, 3), (3, 4)),
                 ((4, 3), (2, 3, 2)), ((2, 1, 2, 3), (3, 3, 1)), ((0, 3), (3, 2)), ((2, 0), (0, 3))]


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_for_matrices_vectors_stacks_and_empty(dtype):
    rng = np.random.default_rng(5)
    for left, right in MATMUL_SHAPES:
        arrays = [sample(left, dtype, rng), sample(right, dtype, rng)]
        check(lambda a, b: a @ b, lambda a, b: a @ b, arrays, dtype, f"{left} @ {right}")
        check(lambda a, b: a.matmul(b), lambda a, b: a.matmul(b), arrays, dtype, f"{left}.matmul({right})")


# ---------------------------------------------------------------- the functional forms

FUNCTIONS = {  # name: (ours, torch, number of inputs, low, high)
    "add": (autograd.add, torch.add, 2, -2, 2), "subtract": (autograd.subtract, torch.sub, 2, -2, 2),
    "multiply": (autograd.multiply, torch.mul, 2, -2, 2), "divide": (operations.divide, torch.div, 2, 0.5, 2),
    "matmul": (autograd.matmul, torch.matmul, 2, -2, 2), "negative": (operations.negative, torch.neg, 1, -2, 2),
    "power": (lambda v: operations.power(v, 1.5), lambda t: t ** 1.5, 1, 0.1, 2),
    "exponential_of": (lambda v: operations.exponential_of(3.0, v), lambda t: 3.0 ** t, 1, -2, 2),
    "exp": (operations.exp, torch.exp, 1, -2, 2), "log": (operations.log, torch.log, 1, 0.1, 2),
    "sqrt": (operations.sqrt, torch.sqrt, 1, 0.1, 2), "tanh": (operations.tanh, torch.tanh, 1, -2, 2),
    "sigmoid": (operations.sigmoid, torch.sigmoid, 1, -2, 2), "relu": (operations.relu, torch.relu, 1, -2, 2),
    "reduce_sum": (lambda v: autograd.reduce_sum(v, 1), lambda t: t.sum(1), 1, -2, 2),
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
    shapes = [(3, 3)] * count
    check(ours, theirs, [sample(shape, dtype, rng, low, high) for shape in shapes], dtype, name)


# ---------------------------------------------------------------- dtypes, comparisons, graph lifetime

@pytest.mark.parametrize("integer", [np.int32, np.int64, np.bool_])
def test_integer_data_promotes_like_pytorch(integer):
    values = np.array([1, 0, 1], dtype=integer)
    cases = [lambda x: x * 0.5, lambda x: 0.5 * x, lambda x: x + 1.5, lambda x: x / 2, lambda x: 0.7 ** x]
    if integer is not np.bool_:
        cases += [lambda x: x ** 0.5, lambda x: x + 1, lambda x: x * 3]
    for kind in (Variable, Tensor):
        for case in cases:
            ours, theirs = case(kind(values)), case(torch.tensor(values))
            assert ours.dtype == theirs.numpy().dtype, f"{kind.__name__} of {integer.__name__}: {ours.dtype}, PyTorch {theirs.dtype}"
            np.testing.assert_allclose(np.asarray(ours.data if kind is Tensor else ours.data.data, float), theirs.double().numpy(), rtol=1e-6)


def test_float_variables_meeting_integer_variables_keep_their_float_dtype():
    for dtype in DTYPES:
        x = Variable(np.array([1.5, 2.0], dtype), requires_grad=True)
        counts = Variable(np.array([2, 3], np.int32))
        theirs = torch.tensor(np.array([1.5, 2.0], dtype)) * torch.tensor(np.array([2, 3], np.int32))
        assert (x * counts).dtype == theirs.numpy().dtype == dtype


def test_comparisons_return_boolean_tensors_and_variables_stay_hashable():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0])
    for ours in (Variable(a), Tensor(a)):
        for operator in ("__eq__", "__ne__", "__gt__", "__ge__", "__lt__", "__le__"):
            got, expected = getattr(ours, operator)(b), getattr(torch.tensor(a), operator)(torch.tensor(b))
            assert isinstance(got, Tensor) and got.dtype == np.bool_, f"{operator} should give a boolean Tensor"
            assert got.data.tolist() == expected.tolist(), f"{operator}: {got.data.tolist()}, PyTorch {expected.tolist()}"
    x, y = Variable(a), Variable(a)
    assert len({x, y, x}) == 2 and {x: 1}[x] == 1, "Variables hash by identity"
    assert (x == None) is False and (x != None) is True and (Tensor(a) == None) is (torch.tensor(a) == None) is False  # noqa: E711


def test_bool_of_one_value_and_of_many():
    for values in [[-1.0], [0.0], 2.0, [[0.5]]]:
        for kind in (Tensor, Variable):
            assert bool(kind(values) > 0) is bool(torch.tensor(values) > 0), f"bool({kind.__name__}({values}) > 0)"
    assert bool(Tensor(0.0) > 1) is False and bool(Variable([3.0])) is True
    for kind in (Tensor, Variable):
        with pytest.raises(ValueError, match="more than one value is ambiguous"):
            bool(kind([1.0, 2.0]))
        with pytest.raises(ValueError, match="no values"):
            bool(kind(np.zeros(0)))
    with pytest.raises(RuntimeError, match="more than one value is ambiguous"):
        bool(torch.tensor([1.0, 2.0]))  # PyTorch's message, which ours follows


@pytest.mark.parametrize("dtype", [object, "str", "U3", np.str_])
def test_non_numeric_dtypes_are_refused_with_their_name(dtype):
    with pytest.raises(TypeError, match="dtype"):
        Tensor([1.0, 2.0], dtype=dtype)


def test_numpy_asarray_of_a_tensor_and_leaf_state():
    t = Tensor([[1.0, 2.0]])
    assert np.asarray(t) is t.data and np.asarray(t, dtype=np.float64).dtype == np.float64
    x = Variable([1.0, 2.0])
    assert x.is_leaf and x.requires_grad_() is x and x.requires_grad and x.is_leaf
    y = x * 2.0
    assert not y.is_leaf and torch.tensor([1.0], requires_grad=True).mul(2).is_leaf is False
    with pytest.raises(RuntimeError):
        y.requires_grad_(False)
    with pytest.raises(TypeError, match="int64"):
        Variable(np.arange(2)).requires_grad_()


def test_second_backward_raises_unless_the_graph_was_retained():
    for retain in (True, False):
        ours, theirs = leaves([np.array([2.0, 3.0])])
        out, expected = (ours[0] * ours[0]).sum(), (theirs[0] * theirs[0]).sum()
        out.backward(retain_graph=retain)
        expected.backward(retain_graph=retain)
        if retain:
            out.backward()
            expected.backward()
            assert_close(ours[0].grad, theirs[0].grad, np.float64, "two backward passes add up")
        else:
            with pytest.raises(RuntimeError, match="retain_graph=True"):
                out.backward()
            with pytest.raises(RuntimeError, match="retain_graph=True"):
                expected.backward()


def test_backward_through_a_shared_part_of_a_released_graph_raises():
    x = Variable([1.0, 2.0], requires_grad=True)
    hidden = x.exp()
    (hidden * 2.0).sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        (hidden * 3.0).sum().backward()


def test_release_frees_the_saved_arrays():
    import gc
    import weakref

    class Saved(np.ndarray):  # a weak reference tells us whether the graph still holds the array
        pass

    x = Variable(np.ones(3), requires_grad=True)
    activation = x.exp()
    probe = activation.data.data.view(Saved)
    activation.data.data = probe
    alive = weakref.ref(probe)
    loss = (activation * activation).sum()
    del activation, probe
    gc.collect()
    assert alive() is not None, "before backward the multiply's rule holds the activation"
    loss.backward()
    gc.collect()
    assert alive() is None, "after backward (no retain_graph) the saved activation should be freed while loss lives"


# ---------------------------------------------------------------- Tensor (module 01) against torch

TENSOR_CASES = [  # (what, ours, torch)
    ("sum dim tuple keepdim", lambda t: t.sum(dim=(0, 2), keepdim=True), lambda t: t.sum((0, 2), keepdim=True)),
    ("mean axis", lambda t: t.mean(axis=1), lambda t: t.mean(1)),
    ("max", lambda t: t.max(), torch.max), ("max dim", lambda t: t.max(dim=2), lambda t: t.max(2).values),
    ("min dim", lambda t: t.min(1, True), lambda t: t.min(1, keepdim=True).values),
    ("argmax", lambda t: t.argmax(axis=1), lambda t: t.argmax(1)),
    ("var", lambda t: t.var(dim=1), lambda t: t.var(1)), ("std unbiased=False", lambda t: t.std(unbiased=False), lambda t: t.std(unbiased=False)),
    ("permute", lambda t: t.permute(2, 0, 1), lambda t: t.permute(2, 0, 1)),
    ("transpose", lambda t: t.transpose(0, 1), lambda t: t.transpose(0, 1)),
    (".T", lambda t: t.T, lambda t: t.permute(2, 1, 0)),
    ("reshape", lambda t: t.reshape(6, 4), lambda t: t.reshape(6, 4)), ("view", lambda t: t.view(-1), lambda t: t.view(-1)),
    ("unsqueeze", lambda t: t.unsqueeze(0), lambda t: t.unsqueeze(0)), ("squeeze", lambda t: t[:1].squeeze(), lambda t: t[:1].squeeze()),
    ("expand", lambda t: t[:, :1].expand(2, 5, 4), lambda t: t[:, :1].expand(2, 5, 4)),
    ("flip", lambda t: t.flip(1, 2), lambda t: t.flip(1, 2)),
    ("abs", lambda t: t.abs(), torch.abs), ("clamp", lambda t: t.clamp(-0.5, 0.5), lambda t: t.clamp(-0.5, 0.5)),
    ("clip", lambda t: t.clip(min=0.0), lambda t: t.clip(min=0.0)),
    ("maximum", lambda t: t.maximum(t.T.T * 0.5), lambda t: t.maximum(t * 0.5)),
    ("minimum", lambda t: t.minimum(Tensor(np.zeros(4, np.float32))), lambda t: t.minimum(torch.zeros(4))),
    ("add sub mul div", lambda t: t.add(1.0).sub(t).mul(t).div(2.0), lambda t: t.add(1.0).sub(t).mul(t).div(2.0)),
    ("neg", lambda t: t.neg(), torch.neg), ("pow", lambda t: t ** 2, lambda t: t ** 2), ("rpow", lambda t: 2.0 ** t, lambda t: 2.0 ** t),
    ("exp log sqrt tanh", lambda t: (t.exp().log().abs() + 1.0).sqrt().tanh(), lambda t: (t.exp().log().abs() + 1.0).sqrt().tanh()),
    ("matmul", lambda t: t.matmul(t.transpose(1, 2)), lambda t: t.matmul(t.transpose(1, 2))),
    ("rmatmul array", lambda t: np.ones((2, 4), np.float32) @ t[0].T, lambda t: torch.ones(2, 4) @ t[0].T),
    ("getitem", lambda t: t[Tensor(np.array([1, 0]))], lambda t: t[torch.tensor([1, 0])]),
    ("comparisons", lambda t: (t > 0) != (t <= 0.5), lambda t: (t > 0) != (t <= 0.5)),
    ("sum of 0-d over axis 0", lambda t: t[0, 0, 0].sum(0), lambda t: t[0, 0, 0].sum(0)),
]


@pytest.mark.parametrize("case", TENSOR_CASES, ids=[case[0] for case in TENSOR_CASES])
def test_tensor_methods_match_torch(case):
    what, ours, theirs = case
    values = np.random.default_rng(8).uniform(-2, 2, (2, 3, 4)).astype(np.float32)
    got, expected = ours(Tensor(values)), theirs(torch.tensor(values))
    expected = expected.numpy()
    assert isinstance(got, Tensor) and got.dtype == expected.dtype, f"{what}: {got!r}, PyTorch dtype {expected.dtype}"
    np.testing.assert_allclose(got.data, expected, rtol=2e-6, atol=1e-6, err_msg=what)


def test_tensor_module_functions_match_torch():
    a = np.random.default_rng(9).uniform(-2, 2, (2, 3)).astype(np.float32)
    ta = torch.tensor(a)
    t = Tensor(a)
    pairs = [
        (tensor_module.elementwise(np.multiply, t, 2.0), ta * 2.0),
        (tensor_module.matmul(t, Tensor(a.T)), ta @ ta.T),
        (tensor_module.reduce(np.sum, t, 1, True), ta.sum(1, keepdim=True)),
        (tensor_module.reshape(t, (3, 2)), ta.reshape(3, 2)),
        (tensor_module.permute(t, 1, 0), ta.permute(1, 0)),
        (tensor_module.zeros(2, 3), torch.zeros(2, 3)),
        (tensor_module.ones((2,), dtype=np.float64), torch.ones(2, dtype=torch.float64)),
    ]
    for got, expected in pairs:  # two BLAS libraries may round a matmul differently: compare with a tolerance
        assert got.dtype == expected.numpy().dtype
        np.testing.assert_allclose(got.data, expected.numpy(), **TOLERANCE[np.float32])
    sample_ = tensor_module.randn(2, 3, rng=np.random.default_rng(0))
    assert sample_.shape == tuple(torch.randn(2, 3).shape) and sample_.dtype == np.float32
    assert tensor_module.as_array(t) is t.data and tensor_module.as_shape(((2, 3),)) == (2, 3)


# ---------------------------------------------------------------- coverage of the public operations

COVERED_AUTOGRAD = {"add", "subtract", "multiply", "matmul", "reduce_sum", "Variable"}
ENGINE = {  # the engine and its tools, tested in test_autograd.py
    "Node", "backpropagate", "topological_order", "unbroadcast", "no_grad", "is_grad_enabled", "record",
}
COVERED_OPERATIONS = {
    "divide", "negative", "power", "exponential_of", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "reduce_mean",
    "reduce_max", "reduce_min", "variance", "logsumexp", "softmax", "log_softmax", "reshape", "permute", "transpose",
    "expand", "flip", "getitem", "absolute", "clamp", "maximum", "minimum",
}
TOOLS = {"gradcheck", "draw_graph", "GraphDrawing", "Parameter"}  # tools and layers' trainable Parameter: test_operations.py
COVERED_TENSOR = {"Tensor", "elementwise", "matmul", "reduce", "reshape", "permute", "zeros", "ones", "randn",
                  "as_array", "as_shape"}
TENSOR_HELPERS = {  # shape and dtype helpers, exercised above through the methods that use them
    "axes_and_keepdims", "correction_of", "expanded_shape", "normalized_axes", "promote_integers", "reduction_axes",
    "single_value", "squeezed_shape", "swapped_axes", "unsqueezed_shape", "best_time",
}


def public_names(module) -> set:
    """The names in the module's __all__, and the functions and classes it defines (not those it imports) under a
    name without a leading underscore."""
    defined = {name for name, value in vars(module).items() if not name.startswith("_")
               and (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == module.__name__}
    return defined | set(getattr(module, "__all__", ()))


@pytest.mark.parametrize("module, covered, others", [(autograd, COVERED_AUTOGRAD, ENGINE),
                                                     (operations, COVERED_OPERATIONS, TOOLS),
                                                     (tensor_module, COVERED_TENSOR, TENSOR_HELPERS)])
def test_every_public_operation_has_a_torch_case_here(module, covered, others):
    public = public_names(module)
    missing = public - covered - others
    assert not missing, f"{module.__name__}: public operations without a PyTorch case in this file: {sorted(missing)}"
    stale = (covered | others) - public
    assert not stale, f"{module.__name__} has no public {sorted(stale)}: this file lists them under the wrong module"
