"""Helpers shared by the package tests of modules 05 (the autograd engine) and 06 (the operations on it).

Hypothesis strategies for values and shapes, a finite-difference reference for the engine's own operations
(module 05's tests cannot use `gradcheck`: a student writes it in module 06). The PyTorch comparisons are in
torch_oracle.py.
"""
from __future__ import annotations

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.core.autograd import Variable

FEW = settings(max_examples=40, deadline=None)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)
PAIRS = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=3)


def values(shape, low=-2.0, high=2.0):
    return hnp.arrays(np.float64, shape, elements=st.floats(low, high, allow_nan=False))


def leaf(array, dtype=np.float64) -> Variable:
    return Variable(np.array(array, dtype=dtype), requires_grad=True)


def axes_for(ndim):
    """axis=None, one axis (possibly negative) or a tuple of axes."""
    single = st.integers(-ndim, ndim - 1) if ndim else st.nothing()
    several = st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple) if ndim else st.nothing()
    return st.one_of(st.none(), single, several)


def assert_dtype_is_preserved(name: str, fn, dtype) -> None:
    """fn(a, b) on two (2, 3) leaves of `dtype` gives `dtype`, and so does each leaf's gradient."""
    rng = np.random.default_rng(0)
    a, b = leaf(rng.uniform(0.5, 1.5, (2, 3)), dtype), leaf(rng.uniform(0.5, 1.5, (2, 3)), dtype)
    out = fn(a, b)
    assert out.dtype == dtype, f"{name}: forward gave {out.dtype}"
    out.sum().backward()
    for operand in (a, b):
        assert operand.grad is not None and operand.grad.dtype == dtype and operand.grad.shape == operand.shape, \
            f"{name}: gradient {None if operand.grad is None else (operand.grad.dtype, operand.grad.shape)}"


# ---------------------------------------------------------------- the engine against finite differences

def assert_backward_matches_differences(fn, *arrays, name: str = "fn", eps: float = 1e-6) -> None:
    """Backpropagate a fixed random weighting of `fn`'s output, and compare each input's gradient with central
    differences of the weighted output (computed on constants, so nothing is recorded for them)."""
    inputs = [leaf(array) for array in arrays]
    out = fn(*inputs)
    weights = np.random.default_rng(3).standard_normal(out.shape)
    out.backward(gradient=weights)

    def weighted(*constants) -> float:
        return float(np.sum(np.asarray(fn(*map(Variable, constants))) * weights))

    for position, variable in enumerate(inputs):
        differences = np.zeros(variable.shape)
        for index in np.ndindex(variable.shape):
            nudge = np.zeros(variable.shape)
            nudge[index] = eps
            above = [array + nudge if k == position else array for k, array in enumerate(arrays)]
            below = [array - nudge if k == position else array for k, array in enumerate(arrays)]
            differences[index] = (weighted(*above) - weighted(*below)) / (2 * eps)
        assert variable.grad is not None, f"{name}: input {position} got no gradient"
        np.testing.assert_allclose(variable.grad, differences, rtol=1e-5, atol=1e-7,
                                   err_msg=f"{name}: gradient of input {position} (backward vs finite differences)")
