"""tinytorch.core.autograd (module 05's engine) against PyTorch's autograd: the same values, dtypes and gradients.

Its operations (+, -, *, @, sum and their functional forms) on a seeded sweep over broadcasting shapes (0-d and
empty ones included) in float32 and float64, on shapes drawn by hypothesis, in random expression graphs that
reuse intermediate values, and in a linear model trained for a few steps; integer data, and a second backward
pass. Only module 05's names are used, so a student who has not written module 06 can run them; module 06's
operations are compared in test_operations_torch.py. Every comparison is torch_oracle.compare.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinytorch.core.autograd as autograd
from autograd_testing import values
from tinytorch.core.autograd import Variable, reduce_sum
from torch_oracle import assert_close, assert_covered, compare, compare_random_graph, torch, train_both

FEW = settings(max_examples=30, deadline=None)
DTYPES = [np.float32, np.float64]
# Broadcasting pairs, 0-d and empty shapes included.
PAIRS = [((), ()), ((3,), ()), ((), (2, 3)), ((2, 3), (3,)), ((2, 1, 4), (3, 1)), ((4, 1), (1, 5)),
         ((1,), (2, 2)), ((0, 3), (3,)), ((2, 0), (1, 0))]
DRAWN_PAIRS = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=4)


def sample(shape, dtype, rng, low=-2.0, high=2.0):
    return rng.uniform(low, high, shape).astype(dtype)


BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
}
NUMBER_ON_THE_LEFT = {
    "radd": (lambda v: 2.5 + v, lambda t: 2.5 + t),
    "rsub": (lambda v: 1.0 - v, lambda t: 1.0 - t),
    "rmul": (lambda v: -3.0 * v, lambda t: -3.0 * t),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_operations_on_broadcasting_shapes(name, dtype):
    rng = np.random.default_rng(0)
    for left, right in PAIRS:
        compare(*BINARY[name], [sample(left, dtype, rng), sample(right, dtype, rng)], f"{name} {left} {right}")


@pytest.mark.parametrize("name", list(BINARY))
@FEW
@given(data=st.data())
def test_binary_operations_on_drawn_shapes(name, data):
    left, right = data.draw(DRAWN_PAIRS).input_shapes
    compare(*BINARY[name], [data.draw(values(left)), data.draw(values(right))], name)


@pytest.mark.parametrize("name", list(NUMBER_ON_THE_LEFT))
def test_a_number_on_the_left_matches_torch(name):
    compare(*NUMBER_ON_THE_LEFT[name], [np.random.default_rng(0).standard_normal((2, 3))], name)


MATMUL_SHAPES = [((2, 3), (3, 4)), ((3,), (3, 2)), ((2, 3), (3,)), ((3,), (3,)), ((2, 2, 3), (3, 4)), ((2, 2, 3), (3, 2)),
                 ((4, 3), (2, 3, 2)), ((2, 1, 2, 3), (3, 3, 1)), ((4, 1, 2, 3), (2, 3, 5)), ((5,), (2, 5, 3)),
                 ((0, 3), (3, 2)), ((2, 0), (0, 3))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("left, right", MATMUL_SHAPES)
def test_matmul_for_matrices_vectors_stacks_and_empty(left, right, dtype):
    rng = np.random.default_rng(5)
    compare(lambda a, b: a @ b, lambda a, b: a @ b, [sample(left, dtype, rng), sample(right, dtype, rng)],
            f"{left} @ {right}")


# ---------------------------------------------------------------- sums

def torch_sum(t, dim, keepdim):
    return t.sum(tuple(range(t.ndim)) if dim is None else dim, keepdim=keepdim)


AXES = {(): [None, 0, -1], (5,): [None, 0, -1, (0,)], (2, 3): [None, 0, 1, -1, (0, 1)],
        (2, 3, 4): [None, 1, (0, 2), (-1, 0), (0, 1, 2)]}


@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_over_every_kind_of_axis(dtype):
    rng = np.random.default_rng(2)
    for shape, axes in AXES.items():
        for axis in axes:
            for keep in (False, True):
                compare(lambda v: v.sum(axis, keepdims=keep), lambda t: torch_sum(t, axis, keep),
                        [sample(shape, dtype, rng)], f"sum {shape} axis={axis} keepdim={keep}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_of_empty_arrays(dtype):
    empty = np.zeros((0, 3), dtype)
    for axis in [None, 0, 1]:
        compare(lambda v: v.sum(axis), lambda t: torch_sum(t, axis, False), [empty], f"sum of (0, 3) axis={axis}")


@pytest.mark.parametrize("keepdims", [False, True])
@FEW
@given(data=st.data())
def test_sum_on_drawn_shapes(keepdims, data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    compare(lambda v: reduce_sum(v, axis, keepdims), lambda t: torch_sum(t, axis, keepdims), [data.draw(values(shape))])
    compare(lambda v: v.sum(dim=axis, keepdim=keepdims), lambda t: torch_sum(t, axis, keepdims),
            [data.draw(values(shape))], seed=1)


# ---------------------------------------------------------------- the functional forms, integers

FUNCTIONS = {  # name: (ours, torch, number of inputs)
    "add": (autograd.add, torch.add, 2), "subtract": (autograd.subtract, torch.sub, 2),
    "multiply": (autograd.multiply, torch.mul, 2), "matmul": (autograd.matmul, torch.matmul, 2),
    "reduce_sum": (lambda v: autograd.reduce_sum(v, 1), lambda t: t.sum(1), 1),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_functional_forms(name, dtype):
    ours, theirs, count = FUNCTIONS[name]
    rng = np.random.default_rng(6)
    compare(ours, theirs, [sample((3, 3), dtype, rng) for _ in range(count)], name)


PROMOTIONS = {"x * 0.5": lambda x: x * 0.5, "0.5 * x": lambda x: 0.5 * x, "x + 1.5": lambda x: x + 1.5,
              "x + 1": lambda x: x + 1, "x * 3": lambda x: x * 3}


@pytest.mark.parametrize("integer", [np.int32, np.int64, np.bool_])
def test_integer_data_promotes_like_pytorch(integer):
    values_ = np.array([1, 0, 1], dtype=integer)
    for what, expression in PROMOTIONS.items():
        if integer is np.bool_ and what in ("x + 1", "x * 3"):
            continue  # PyTorch keeps bool where NumPy promotes
        compare(expression, expression, [values_], f"Variable of {integer.__name__}: {what}", tolerance=dict(rtol=1e-6, atol=0))


def test_float_variables_meeting_integer_variables_keep_their_float_dtype():
    for dtype in DTYPES:
        compare(lambda x, counts: x * counts, lambda x, counts: x * counts,
                [np.array([1.5, 2.0], dtype), np.array([2, 3], np.int32)], f"{dtype.__name__} * int32")


# ---------------------------------------------------------------- graphs and training

STEPS = {  # the steps of the random expression graphs: module 05's operations only
    "add": (2, lambda a, b: a + b, lambda a, b: a + b),
    "sub": (2, lambda a, b: a - b, lambda a, b: a - b),
    "mul": (2, lambda a, b: a * b, lambda a, b: a * b),
    "scale": (1, lambda a: a * 0.5 + 0.25, lambda a: a * 0.5 + 0.25),
    "sum_last": (1, lambda a: a.sum(axis=-1, keepdims=True) if a.ndim else a, lambda a: a.sum(-1, keepdim=True) if a.ndim else a),
}


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_expression_graphs_match_torch(data):
    compare_random_graph(data, STEPS)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_model_steps_dtypes_and_values_match_torch(dtype):
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((32, 6)).astype(dtype), rng.standard_normal((32, 3)).astype(dtype)

    def ours(w, b):
        error = x @ w + b - y
        return (error * error).sum() * (1 / len(x))

    def theirs(w, b):
        return ((torch.tensor(x) @ w + b - torch.tensor(y)) ** 2).mean(0).sum()

    train_both(ours, theirs, [rng.standard_normal(shape).astype(dtype) * 0.3 for shape in [(6, 3), (3,)]],
               tolerance=dict(rtol=1e-4 if dtype == np.float32 else 1e-9, atol=1e-6))


def test_second_backward_raises_unless_the_graph_was_retained():
    for retain in (True, False):
        ours, theirs = Variable([2.0, 3.0], requires_grad=True), torch.tensor([2.0, 3.0], requires_grad=True)
        out, expected = (ours * ours).sum(), (theirs * theirs).sum()
        out.backward(retain_graph=retain)
        expected.backward(retain_graph=retain)
        if retain:
            out.backward()
            expected.backward()
            assert_close(ours.grad, theirs.grad, "two backward passes add up")
        else:
            with pytest.raises(RuntimeError, match="retain_graph=True"):
                out.backward()
            with pytest.raises(RuntimeError, match="retain_graph=True"):
                expected.backward()


COVERED = {"add", "subtract", "multiply", "matmul", "reduce_sum", "Variable"}
ENGINE = {"Node", "backpropagate", "topological_order", "unbroadcast", "no_grad", "is_grad_enabled", "record"}  # test_autograd.py


def test_every_public_operation_has_a_torch_case_here():
    assert_covered(autograd, COVERED, ENGINE)
