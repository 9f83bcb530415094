"""Helpers shared by the package tests of modules 05 (the autograd engine) and 06 (the operations on it).

Hypothesis strategies for values and shapes, a finite-difference reference for the engine's own operations
(module 05's tests cannot use `gradcheck`: a student writes it in module 06), and the PyTorch comparison
that test_autograd_torch.py and test_operations_torch.py share.
"""
from __future__ import annotations

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.core.autograd import Variable, no_grad

try:
    import torch
except ImportError:  # the PyTorch comparisons skip themselves (pytest.importorskip); nothing else here needs it
    torch = None

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
    out.backward(weights)

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


# ---------------------------------------------------------------- PyTorch as the oracle

def both(array):
    """The same values as a tinytorch leaf and a torch leaf."""
    return Variable(array.copy(), requires_grad=True), torch.tensor(array, requires_grad=True)


def assert_same(ours, theirs, what):
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-7, atol=1e-10, err_msg=what)


def run_both(fn_ours, fn_torch, arrays, weights_seed=0):
    """Apply both functions, backpropagate the same random weighting, compare values and gradients."""
    ours, theirs = zip(*(both(array) for array in arrays))
    out, expected = fn_ours(*ours), fn_torch(*theirs)
    assert_same(out.data.data, expected, "forward value")
    weights = np.random.default_rng(weights_seed).standard_normal(expected.shape)
    out.backward(weights)  # the same random weighting as torch's, next line
    expected.backward(torch.tensor(weights))
    for index, (mine, reference) in enumerate(zip(ours, theirs)):
        assert mine.grad is not None and mine.grad.shape == mine.shape
        assert_same(mine.grad, reference.grad, f"gradient of input {index}")


def run_random_graph(data, steps: dict) -> None:
    """Build the same random expression graph with tinytorch and torch, and compare the result and the gradients.

    `steps` maps a name to (arity, ours, theirs); each step applies one to earlier results chosen at random, so
    values are reused (diamonds) and shapes broadcast. The steps must keep values in a safe range.
    """
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=1, max_dims=2, min_side=1, max_side=3))
    arrays = [data.draw(values(shape, -1.5, 1.5)) for shape in shapes.input_shapes]
    ours, theirs = zip(*(both(array) for array in arrays))
    ours, theirs = list(ours), list(theirs)
    for _ in range(data.draw(st.integers(1, 12))):
        name = data.draw(st.sampled_from(sorted(steps)))
        arity, mine, reference = steps[name]
        picks = [data.draw(st.integers(0, len(ours) - 1)) for _ in range(arity)]
        ours.append(mine(*(ours[i] for i in picks)))
        theirs.append(reference(*(theirs[i] for i in picks)))
    total, expected = ours[-1].sum(), theirs[-1].sum()
    assert_same(total.data.data, expected, "final value")
    if not total.requires_grad:
        return
    total.backward()
    expected.backward()
    for index in range(3):
        reference = theirs[index].grad
        mine = ours[index].grad
        if reference is None:
            assert mine is None, f"input {index} should get no gradient"
        else:
            assert mine is not None and mine.shape == ours[index].shape
            assert_same(mine, reference, f"gradient of input {index}")


def train_both(loss_ours, loss_torch, arrays, steps: int = 3) -> None:
    """Take the same gradient steps (learning rate 0.1) from the same parameters `arrays` with tinytorch and torch:
    the loss keeps the arrays' dtype, and the gradients and the parameters stay equal after every step."""
    dtype = arrays[0].dtype
    ours = [Variable(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    tolerance = dict(rtol=1e-4 if dtype == np.float32 else 1e-9, atol=1e-6)
    for _ in range(steps):
        loss, expected = loss_ours(*ours), loss_torch(*theirs)
        for p in ours:
            p.zero_grad()
        for t in theirs:
            t.grad = None
        loss.backward()
        expected.backward()
        assert loss.dtype == dtype and expected.dtype == torch.from_numpy(arrays[0]).dtype
        with no_grad():
            for p, t in zip(ours, theirs):
                assert p.grad.dtype == dtype and p.grad.shape == p.shape
                np.testing.assert_allclose(p.grad, t.grad.numpy(), **tolerance)
                p.data.data -= 0.1 * p.grad
        with torch.no_grad():
            for t in theirs:
                t -= 0.1 * t.grad
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.data.data, t.detach().numpy(), **tolerance)
