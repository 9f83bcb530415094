"""PyTorch as the oracle: the one comparison that every tests/test_<module>_torch.py file makes.

`compare(ours, theirs, arrays)` builds the same computation with tinytorch and with PyTorch from the same NumPy
arrays (as leaves that require a gradient when they hold floats), compares the value and its dtype, sends the
same random weighting of the output back through both, and compares every input's gradient, with tolerances
that follow the dtype. A module 01 computation (`differentiable=False`) runs on Tensors and compares values
only. Importing this file skips the test file that imports it when PyTorch is not installed.
"""
from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

torch = pytest.importorskip("torch", reason="PyTorch is the oracle here; install it with `pip install torch==2.13.0`")

# float32 agrees to a few units in the last place of its 24-bit mantissa, float64 to rounding that long
# computations accumulate; integers and booleans exactly.
TOLERANCE = {np.dtype(np.float32): dict(rtol=2e-5, atol=2e-6), np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12)}
EXACT = dict(rtol=0, atol=0)


def assert_close(ours, theirs, what: str, tolerance: dict | None = None) -> None:
    """Our array (or Tensor, Variable, number) has PyTorch's shape and values, within the tolerance of its dtype."""
    expected = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    ours = np.asarray(ours)
    assert ours.shape == expected.shape, f"{what}: shape {ours.shape}, PyTorch {expected.shape}"
    np.testing.assert_allclose(ours, expected, err_msg=what, equal_nan=True,
                               **(tolerance or TOLERANCE.get(expected.dtype, EXACT)))


def tinytorch_leaves(arrays, differentiable: bool) -> list:
    if not differentiable:
        from tinytorch.core.tensor import Tensor
        return [Tensor(array.copy()) for array in arrays]
    # Imported here, not above: module 01's oracle runs before a student has written autograd.
    from tinytorch.core.autograd import Variable
    return [Variable(array.copy(), requires_grad=array.dtype.kind == "f") for array in arrays]


def compare(ours, theirs, arrays, what: str = "", *, differentiable: bool = True, seed: int = 7,
            tolerance: dict | None = None, names: list[str] | None = None) -> list:
    """Apply `ours` to tinytorch leaves and `theirs` to torch leaves holding copies of `arrays`; compare the output's
    value and dtype and, if `differentiable`, every input's gradient under the same random weighting of the
    output (a leaf left without a gradient, on either side, counts as zeros).
    `tolerance` replaces the dtype's default for computations long enough to round more; `names` name the inputs in
    messages (else "input 0", "input 1", ...). Returns our leaves."""
    arrays = [np.asarray(array) for array in arrays]
    mine = tinytorch_leaves(arrays, differentiable)
    reference = [torch.tensor(array.copy(), requires_grad=differentiable and array.dtype.kind == "f") for array in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log(0), 0 ** -1: infinities are part of the comparison
        out, expected = ours(*mine), theirs(*reference)
        kind = type(mine[0]) if mine else type(out)
        assert isinstance(out, kind), f"{what}: gave a {type(out).__name__}, not a {kind.__name__}"
        assert out.dtype == expected.detach().numpy().dtype, f"{what}: dtype {out.dtype}, PyTorch {expected.dtype}"
        assert_close(out.numpy(), expected, f"{what}: value", tolerance)
        if not (differentiable and expected.requires_grad):
            return mine
        weights = np.random.default_rng(seed).standard_normal(expected.shape).astype(out.dtype)
        out.backward(gradient=weights)
        expected.backward(torch.tensor(weights))
    for index, (leaf, theirs_leaf) in enumerate(zip(mine, reference)):
        if not theirs_leaf.requires_grad:
            continue
        name = names[index] if names else f"input {index}"
        got = leaf.grad if leaf.grad is not None else np.zeros(leaf.shape, leaf.dtype)
        assert got.dtype == leaf.dtype, f"{what}: the gradient of {name} has dtype {got.dtype}, its input {leaf.dtype}"
        wanted = theirs_leaf.grad if theirs_leaf.grad is not None else torch.zeros_like(theirs_leaf)
        assert_close(got, wanted, f"{what}: gradient of {name}", tolerance)
    return mine


def compare_random_graph(data, steps: dict) -> None:
    """Draw an expression graph over three broadcastable inputs and compare it (above). `steps` maps a name to
    (arity, ours, theirs); each step applies one to earlier results chosen at random, so values are reused
    (diamonds) and shapes broadcast. The steps must keep values in a safe range."""
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=1, max_dims=2, min_side=1, max_side=3))
    arrays = [data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-1.5, 1.5))) for shape in shapes.input_shapes]
    plan = []
    for _ in range(data.draw(st.integers(1, 12))):
        name = data.draw(st.sampled_from(sorted(steps)))
        plan.append((name, [data.draw(st.integers(0, len(arrays) + len(plan) - 1)) for _ in range(steps[name][0])]))

    def graph(side: int):  # side 1: tinytorch's operations, side 2: PyTorch's
        def run(*inputs):
            results = list(inputs)
            for name, picks in plan:
                results.append(steps[name][side](*(results[i] for i in picks)))
            return results[-1]
        return run

    # Hypothesis seeks out graphs whose gradients cancel in sums that the two libraries add in different orders.
    compare(graph(1), graph(2), arrays, "graph " + ", ".join(f"{name}{picks}" for name, picks in plan),
            tolerance=dict(rtol=1e-7, atol=1e-10))


def train_both(loss_ours, loss_torch, arrays, steps: int = 3, tolerance: dict | None = None) -> None:
    """Take the same gradient steps (learning rate 0.1) from the same parameters `arrays`, each side with its own
    gradients: the loss keeps the arrays' dtype, and the gradients and the parameters stay equal after every step."""
    from tinytorch.core.autograd import Variable

    ours = [Variable(array.copy(), requires_grad=True) for array in arrays]
    theirs = [torch.tensor(array.copy(), requires_grad=True) for array in arrays]
    for step in range(steps):
        for mine, reference in zip(ours, theirs):
            mine.zero_grad()
            reference.grad = None
        loss, expected = loss_ours(*ours), loss_torch(*theirs)
        assert loss.dtype == expected.detach().numpy().dtype, f"step {step}: loss dtype {loss.dtype}, PyTorch {expected.dtype}"
        loss.backward()
        expected.backward()
        for index, (mine, reference) in enumerate(zip(ours, theirs)):
            assert mine.grad is not None and mine.grad.dtype == mine.dtype, f"step {step}: gradient of parameter {index}"
            assert_close(mine.grad, reference.grad, f"step {step}: gradient of parameter {index}", tolerance)
            mine.numpy()[...] -= 0.1 * mine.grad
        with torch.no_grad():
            for reference in theirs:
                reference -= 0.1 * reference.grad
    for index, (mine, reference) in enumerate(zip(ours, theirs)):
        assert_close(mine.numpy(), reference, f"parameter {index} after {steps} steps", tolerance)


def public_names(module) -> set:
    """The names in the module's __all__, and the functions and classes it defines (not those it imports) under a
    name without a leading underscore."""
    defined = {name for name, value in vars(module).items() if not name.startswith("_")
               and (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == module.__name__}
    return defined | set(getattr(module, "__all__", ()))


def assert_covered(module, covered: set, others: set) -> None:
    """Every public name of `module` is `covered` by a PyTorch case of the calling file or listed among `others`
    (tested elsewhere, or exercised through the names that use it), and neither set names what does not exist."""
    public = public_names(module)
    missing = public - covered - others
    assert not missing, f"{module.__name__}: public names without a PyTorch case in this file: {sorted(missing)}"
    stale = (covered | others) - public
    assert not stale, f"{module.__name__} has no public {sorted(stale)}: this file lists them by mistake"
