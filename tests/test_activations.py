"""Module 02, tinytorch.core.activations: forward math on Tensors, and the same code differentiated on Variables."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.tensor import Tensor

from nn_testing import Variable, gradcheck, leaf, needs_autograd, operation_count

ACTIVATIONS = [ReLU(), Sigmoid(), Tanh(), Softmax(), Softmax(axis=0), GELU()]
IDS = ["relu", "sigmoid", "tanh", "softmax", "softmax-axis0", "gelu"]


def reference(activation, x):
    """The activation in plain float64 NumPy, written the textbook way."""
    x = x.astype(np.float64)
    if isinstance(activation, ReLU):
        return np.maximum(x, 0)
    if isinstance(activation, Sigmoid):
        return 1 / (1 + np.exp(-x))
    if isinstance(activation, Tanh):
        return np.tanh(x)
    if isinstance(activation, Softmax):
        e = np.exp(x - x.max(axis=activation.axis, keepdims=True))
        return e / e.sum(axis=activation.axis, keepdims=True)
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_and_dtype_on_tensors(activation, dtype):
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(dtype) * 3
    out = activation(Tensor(x))
    assert isinstance(out, Tensor) and out.shape == x.shape and out.dtype == dtype
    np.testing.assert_allclose(out.data, reference(activation, x), rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=IDS)
def test_extreme_inputs_give_finite_results_without_overflow(activation):
    x = Tensor(np.array([[-1e4, -1000.0, -88.0, 0.0, 88.0, 1000.0, 1e4]] * 2, dtype=np.float32))
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        out = activation(x).data
    assert np.all(np.isfinite(out))


def test_sigmoid_keeps_relative_precision_in_the_far_tail():
    out = Sigmoid()(Tensor(np.array([-30.0, -100.0, -700.0]))).data
    np.testing.assert_allclose(out, np.exp([-30.0, -100.0, -700.0]), rtol=1e-12)


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=6),
                  elements=st.floats(-1e6, 1e6)), st.floats(-1e3, 1e3))
def test_softmax_is_a_distribution_and_ignores_a_shift(x, shift):
    out = Softmax()(Tensor(x)).data
    assert np.all(out >= 0) and np.allclose(out.sum(axis=-1), 1.0)
    np.testing.assert_allclose(Softmax()(Tensor(x + shift)).data, out, atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=5), elements=st.floats(-1e300, 1e300)))
def test_relu_and_sigmoid_properties(x):
    np.testing.assert_array_equal(ReLU()(Tensor(x)).data, np.maximum(x, 0))
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        s = Sigmoid()(Tensor(x)).data
    assert np.all((s >= 0) & (s <= 1))


def test_reprs():
    assert [repr(a) for a in ACTIVATIONS] == ["ReLU()", "Sigmoid()", "Tanh()", "Softmax(axis=-1)", "Softmax(axis=0)", "GELU()"]


# --- the same code on Variables (module 05) ---

@needs_autograd
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=IDS)
def test_variable_in_gives_a_variable_in_the_graph(activation):
    x = leaf(np.random.default_rng(1).standard_normal((3, 4)))
    out = activation(x)
    assert isinstance(out, Variable) and out.requires_grad and out.grad_fn is not None
    np.testing.assert_allclose(out.numpy(), reference(activation, x.numpy()), rtol=1e-12, atol=1e-15)


@needs_autograd
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=IDS)
def test_gradcheck(activation):
    rng = np.random.default_rng(2)
    x = leaf(rng.standard_normal((3, 4)) * 2)  # no entry within 1e-6 of ReLU's kink at 0
    assert np.abs(x.numpy()).min() > 1e-3
    assert gradcheck(activation, x, name=repr(activation))


@needs_autograd
@pytest.mark.parametrize("activation, operations", [(ReLU(), 1), (Tanh(), 1), (Sigmoid(), 4), (Softmax(), 4), (GELU(), 8)],
                         ids=["relu", "tanh", "sigmoid", "softmax", "gelu"])
def test_graph_stays_small(activation, operations):
    """Per-call overhead matters in training: each activation records only the operations it needs."""
    assert operation_count(activation(leaf(np.ones((2, 3))))) == operations


@needs_autograd
def test_float32_stays_float32_through_forward_and_backward():
    x = Variable(np.random.default_rng(3).standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    for activation in ACTIVATIONS:
        x.grad = None
        out = activation(x)
        assert out.dtype == np.float32, repr(activation)
        out.sum().backward()
        assert x.grad.dtype == np.float32, repr(activation)
