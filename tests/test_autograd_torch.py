"""tinytorch.core.autograd (module 05's engine) against PyTorch's autograd: the same values and gradients.

Its operations on random shapes (broadcasting pairs included), random expression graphs that reuse
intermediate values, and a linear model trained for a few steps in both dtypes. Only module 05's names are
used; module 06's operations are compared in test_operations_torch.py. Skipped when PyTorch is not installed
(CI installs the CPU build).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from autograd_testing import run_both, run_random_graph, train_both, values
from tinytorch.core.autograd import reduce_sum

torch = pytest.importorskip("torch", reason="PyTorch comparisons need PyTorch: `pip install torch==2.13.0`")

FEW = settings(max_examples=30, deadline=None)
PAIRS = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=4)

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


@pytest.mark.parametrize("name", list(BINARY))
@FEW
@given(data=st.data())
def test_binary_operations_with_broadcasting_match_torch(name, data):
    left, right = data.draw(PAIRS).input_shapes
    run_both(*BINARY[name], [data.draw(values(left)), data.draw(values(right))])


@pytest.mark.parametrize("name", list(NUMBER_ON_THE_LEFT))
def test_a_number_on_the_left_matches_torch(name):
    run_both(*NUMBER_ON_THE_LEFT[name], [np.random.default_rng(0).standard_normal((2, 3))])


@pytest.mark.parametrize("keepdims", [False, True])
@FEW
@given(data=st.data())
def test_sum_matches_torch(keepdims, data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))

    def reference(t):
        if axis is None:
            return t.sum().reshape((1,) * t.ndim) if keepdims else t.sum()
        return t.sum(axis, keepdim=keepdims)

    run_both(lambda v: reduce_sum(v, axis, keepdims), reference, [data.draw(values(shape))])
    run_both(lambda v: v.sum(dim=axis, keepdim=keepdims), reference, [data.draw(values(shape))], weights_seed=1)


@pytest.mark.parametrize("left, right", [((2, 3), (3, 4)), ((3,), (3, 2)), ((2, 3), (3,)), ((3,), (3,)),
                                         ((2, 2, 3), (3, 2)), ((4, 1, 2, 3), (2, 3, 5)), ((5,), (2, 5, 3))])
def test_matmul_matches_torch(left, right):
    rng = np.random.default_rng(0)
    run_both(lambda a, b: a @ b, lambda a, b: a @ b, [rng.standard_normal(left), rng.standard_normal(right)])


# The steps of the random expression graphs: module 05's operations only.
STEPS = {
    "add": (2, lambda a, b: a + b, lambda a, b: a + b),
    "sub": (2, lambda a, b: a - b, lambda a, b: a - b),
    "mul": (2, lambda a, b: a * b, lambda a, b: a * b),
    "scale": (1, lambda a: a * 0.5 + 0.25, lambda a: a * 0.5 + 0.25),
    "sum_last": (1, lambda a: a.sum(axis=-1, keepdims=True) if a.ndim else a, lambda a: a.sum(-1, keepdim=True) if a.ndim else a),
}


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_expression_graphs_match_torch(data):
    run_random_graph(data, STEPS)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_model_steps_dtypes_and_values_match_torch(dtype):
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((32, 6)).astype(dtype), rng.standard_normal((32, 3)).astype(dtype)

    def ours(w, b):
        error = x @ w + b - y
        return (error * error).sum() * (1 / len(x))

    def theirs(w, b):
        return ((torch.tensor(x) @ w + b - torch.tensor(y)) ** 2).mean(0).sum()

    train_both(ours, theirs, [rng.standard_normal(shape).astype(dtype) * 0.3 for shape in [(6, 3), (3,)]])
