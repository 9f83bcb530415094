"""tinytorch.core.operations (module 06) against PyTorch's autograd: the same values and the same gradients.

Every operation on random shapes (broadcasting pairs included), random expression graphs that reuse
intermediate values, a cross-entropy network, and dtypes. Skipped when PyTorch is not installed
(CI installs the CPU build).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from autograd_testing import run_both, run_random_graph, train_both, values
from tinytorch.core.operations import log_softmax

torch = pytest.importorskip("torch", reason="PyTorch comparisons need PyTorch: `pip install torch==2.13.0`")

FEW = settings(max_examples=30, deadline=None)
PAIRS = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=4)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


@FEW
@given(data=st.data())
def test_division_with_broadcasting_matches_torch(data):
    left, right = data.draw(PAIRS).input_shapes
    run_both(lambda a, b: a / b, lambda a, b: a / b, [data.draw(values(left)), data.draw(values(right, 0.5, 2.0))])


UNARY = {
    "exp": (lambda v: v.exp(), torch.exp, (-2, 2)),
    "log": (lambda v: v.log(), torch.log, (0.1, 3)),
    "sqrt": (lambda v: v.sqrt(), torch.sqrt, (0.1, 3)),
    "tanh": (lambda v: v.tanh(), torch.tanh, (-3, 3)),
    "sigmoid": (lambda v: v.sigmoid(), torch.sigmoid, (-30, 30)),
    "relu": (lambda v: v.relu(), torch.relu, (-2, 2)),
    "neg": (lambda v: -v, lambda t: -t, (-2, 2)),
    "pow": (lambda v: v ** 3, lambda t: t ** 3, (-2, 2)),
    "pow fractional": (lambda v: v ** -0.5, lambda t: t ** -0.5, (0.1, 3)),
    "rpow": (lambda v: 2.5 ** v, lambda t: 2.5 ** t, (-2, 2)),
    "rdiv": (lambda v: 1.0 / v, lambda t: 1.0 / t, (0.1, 3)),
}


@pytest.mark.parametrize("name", list(UNARY))
@FEW
@given(data=st.data())
def test_elementwise_functions_match_torch(name, data):
    ours, theirs, (low, high) = UNARY[name]
    run_both(ours, theirs, [data.draw(values(data.draw(SHAPES), low, high))])


@pytest.mark.parametrize("reduction", ["mean", "amax"])
@FEW
@given(data=st.data())
def test_reductions_match_torch(reduction, data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    keepdims = data.draw(st.booleans())
    size = int(np.prod(shape))
    values = np.random.default_rng(size).permutation(size).reshape(shape) / 7.0  # no ties for max
    method = "max" if reduction == "amax" else reduction
    dims = () if axis is None else axis

    def reference(t):
        if axis is None:
            result = getattr(t, reduction)()
            return result.reshape((1,) * t.ndim) if keepdims else result
        return getattr(t, reduction)(dims, keepdim=keepdims)

    run_both(lambda v: getattr(v, method)(axis=axis, keepdims=keepdims), reference, [values])


@FEW
@given(data=st.data())
def test_log_softmax_matches_torch(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    run_both(lambda v: v.log_softmax(axis=axis), lambda t: torch.log_softmax(t, dim=axis),
             [data.draw(values(shape, -50.0, 50.0))])


def test_shapes_and_indexing_match_torch():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 2))
    rows, columns = np.array([0, 2, 2, 1]), np.array([3, 0, 0, 1])
    cases = [
        (lambda v: v.reshape(4, 6), lambda t: t.reshape(4, 6)),
        (lambda v: v.permute(2, 0, 1), lambda t: t.permute(2, 0, 1)),
        (lambda v: v.transpose(0, 2), lambda t: t.transpose(0, 2)),
        (lambda v: v.T, lambda t: t.permute(2, 1, 0)),
        (lambda v: v[1:, ::2], lambda t: t[1:, ::2]),
        (lambda v: v[rows, columns], lambda t: t[torch.tensor(rows), torch.tensor(columns)]),
        (lambda v: v[x > 0], lambda t: t[torch.tensor(x > 0)]),
    ]
    for ours, theirs in cases:
        run_both(ours, theirs, [x])


# The random expression graphs: each step applies an operation to earlier results, chosen at random,
# so values are reused (diamonds) and shapes broadcast. Operations keep values in a safe range.
STEPS = {
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
    run_random_graph(data, STEPS)


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

    run_both(ours, theirs, arrays)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mlp_steps_dtypes_and_values_match_torch(dtype):
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((32, 6)).astype(dtype), rng.standard_normal((32, 3)).astype(dtype)

    def ours(w1, b1, w2, b2):
        return ((((x @ w1 + b1).relu() @ w2 + b2) - y) ** 2).mean()

    def theirs(w1, b1, w2, b2):
        return ((torch.relu(torch.tensor(x) @ w1 + b1) @ w2 + b2 - torch.tensor(y)) ** 2).mean()

    train_both(ours, theirs, [rng.standard_normal(shape).astype(dtype) * 0.3 for shape in [(6, 10), (10,), (10, 3), (3,)]])
