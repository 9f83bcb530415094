"""tinytorch.core.tensor (module 01) against PyTorch: every public method and function gives PyTorch's values
and dtype, integers promote as in PyTorch, comparisons give boolean tensors, and `bool` of one value is
PyTorch's. A Tensor has no gradient, so only values are compared (torch_oracle.compare, differentiable=False).
The last test fails when a public name of the module has no case here.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinytorch.core.tensor as tensor_module
from tinytorch.core.tensor import Tensor
from torch_oracle import assert_close, assert_covered, compare, torch

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
    compare(ours, theirs, [values], what, differentiable=False, tolerance=dict(rtol=2e-6, atol=1e-6))


def test_tensor_module_functions_match_torch():
    a = np.random.default_rng(9).uniform(-2, 2, (2, 3)).astype(np.float32)
    cases = [
        ("elementwise", lambda t: tensor_module.elementwise(np.multiply, t, 2.0), lambda t: t * 2.0),
        ("matmul", lambda t: tensor_module.matmul(t, Tensor(a.T)), lambda t: t @ t.T),
        ("reduce", lambda t: tensor_module.reduce(np.sum, t, 1, True), lambda t: t.sum(1, keepdim=True)),
        ("reshape", lambda t: tensor_module.reshape(t, (3, 2)), lambda t: t.reshape(3, 2)),
        ("permute", lambda t: tensor_module.permute(t, 1, 0), lambda t: t.permute(1, 0)),
    ]
    for what, ours, theirs in cases:  # two BLAS libraries may round a matmul differently: compared with a tolerance
        compare(ours, theirs, [a], what, differentiable=False)
    for what, got, expected in [("zeros", tensor_module.zeros(2, 3), torch.zeros(2, 3)),
                                ("ones", tensor_module.ones((2,), dtype=np.float64), torch.ones(2, dtype=torch.float64))]:
        assert got.dtype == expected.numpy().dtype, f"{what}: dtype {got.dtype}, PyTorch {expected.dtype}"
        assert_close(got.numpy(), expected, what)
    sample = tensor_module.randn(2, 3, rng=np.random.default_rng(0))
    assert sample.shape == tuple(torch.randn(2, 3).shape) and sample.dtype == np.float32
    t = Tensor(a)
    assert tensor_module.as_array(t) is t.data and tensor_module.as_shape(((2, 3),)) == (2, 3)


PROMOTIONS = {  # what: (ours, torch), the same expression on an integer or boolean Tensor
    "x * 0.5": lambda x: x * 0.5, "0.5 * x": lambda x: 0.5 * x, "x + 1.5": lambda x: x + 1.5, "x / 2": lambda x: x / 2,
    "0.7 ** x": lambda x: 0.7 ** x, "x ** 0.5": lambda x: x ** 0.5, "x + 1": lambda x: x + 1, "x * 3": lambda x: x * 3,
}
NOT_FOR_BOOLEANS = {"x ** 0.5", "x + 1", "x * 3"}  # PyTorch refuses or keeps bool where NumPy promotes


@pytest.mark.parametrize("integer", [np.int32, np.int64, np.bool_])
def test_integer_data_promotes_like_pytorch(integer):
    values = np.array([1, 0, 1], dtype=integer)
    for what, expression in PROMOTIONS.items():
        if integer is np.bool_ and what in NOT_FOR_BOOLEANS:
            continue
        compare(expression, expression, [values], f"Tensor of {integer.__name__}: {what}", differentiable=False,
                tolerance=dict(rtol=1e-6, atol=0))


def test_comparisons_return_boolean_tensors():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0])
    for operator in ("__eq__", "__ne__", "__gt__", "__ge__", "__lt__", "__le__"):
        got, expected = getattr(Tensor(a), operator)(b), getattr(torch.tensor(a), operator)(torch.tensor(b))
        assert isinstance(got, Tensor) and got.dtype == np.bool_, f"{operator} should give a boolean Tensor"
        assert got.data.tolist() == expected.tolist(), f"{operator}: {got.data.tolist()}, PyTorch {expected.tolist()}"
    assert (Tensor(a) == None) is (torch.tensor(a) == None) is False  # noqa: E711


def test_bool_of_one_value_and_of_many():
    for values in [[-1.0], [0.0], 2.0, [[0.5]]]:
        assert bool(Tensor(values) > 0) is bool(torch.tensor(values) > 0), f"bool(Tensor({values}) > 0)"
    assert bool(Tensor(0.0) > 1) is False
    with pytest.raises(ValueError, match="more than one value is ambiguous"):
        bool(Tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="no values"):
        bool(Tensor(np.zeros(0)))
    with pytest.raises(RuntimeError, match="more than one value is ambiguous"):
        bool(torch.tensor([1.0, 2.0]))  # PyTorch's message, which ours follows


# ---------------------------------------------------------------- coverage of the public names

COVERED = {"Tensor", "elementwise", "matmul", "reduce", "reshape", "permute", "zeros", "ones", "randn", "as_array",
           "as_shape"}
HELPERS = {  # shape and dtype helpers, exercised above through the methods that use them; the timing helpers
    "axes_and_keepdims", "correction_of", "expanded_shape", "normalized_axes", "promote_integers", "reduction_axes",
    "single_value", "squeezed_shape", "swapped_axes", "unsqueezed_shape", "best_time", "one_blas_thread",
}


def test_every_public_name_has_a_torch_case_here():
    assert_covered(tensor_module, COVERED, HELPERS)
