"""Module 10: Embedding, PositionalEmbedding, LayerNorm, causal attention and MultiHeadAttention against PyTorch
(values and gradients), gradchecks, and the conventions shared with the other layers."""
from __future__ import annotations

import numpy as np
import pytest

from tinytorch.core.attention import (Embedding, LayerNorm, MultiHeadAttention, PositionalEmbedding, attention_weights,
                                      causal_mask, embedding, layer_norm, scaled_dot_product_attention)
from tinytorch.core.autograd import Variable, no_grad, record
from tinytorch.core.operations import gradcheck
from tinytorch.core.tensor import Tensor

pytestmark = pytest.mark.module("attention")

# float32 sums of many terms (the key bias's gradient is zero in exact arithmetic) carry rounding of about 1e-5.
TOLERANCE = {np.float32: dict(rtol=2e-4, atol=1e-4), np.float64: dict(rtol=1e-9, atol=1e-10)}
DTYPES = [np.float32, np.float64]


def import_torch():
    return pytest.importorskip("torch", reason="PyTorch is the oracle here; install it with `pip install torch==2.13.0`")


def leaves(rng, dtype, *shapes):
    arrays = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    return arrays, [Variable(array, requires_grad=True) for array in arrays]


def torch_leaves(torch, arrays):
    return [torch.tensor(array, requires_grad=True) for array in arrays]


def compare_backward(rng, ours_out, torch_out, ours, theirs, dtype):
    """Send the same random output gradient back through both; every input's gradient must agree."""
    np.testing.assert_allclose(ours_out.numpy(), torch_out.detach().numpy(), **TOLERANCE[dtype])
    upstream = rng.standard_normal(ours_out.shape).astype(dtype)
    ours_out.backward(upstream)
    torch_out.backward(import_torch().tensor(upstream))
    for index, (mine, reference) in enumerate(zip(ours, theirs)):
        assert mine.grad is not None and mine.grad.dtype == dtype, f"input {index}"
        np.testing.assert_allclose(mine.grad, reference.grad.numpy(), **TOLERANCE[dtype], err_msg=f"input {index}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(4))
def test_embedding_matches_pytorch_and_adds_the_gradients_of_repeated_ids(seed, dtype):
    torch = import_torch()
    rng = np.random.default_rng(seed)
    vocabulary = int(rng.integers(2, 9))
    ids = rng.integers(0, vocabulary, (3, 7))  # 21 ids from at most 8 rows: repeats are certain
    (table,), (mine,) = leaves(rng, dtype, (vocabulary, 5))
    theirs = torch_leaves(torch, [table])
    compare_backward(rng, embedding(mine, ids), torch.nn.functional.embedding(torch.tensor(ids), theirs[0]), [mine], theirs, dtype)


def test_embedding_layer_and_id_checks():
    layer = Embedding(10, 4, std=0.5, rng=np.random.default_rng(0))
    assert layer(Tensor([[1.0, 2.0]])).shape == (1, 2, 4) and repr(layer) == "Embedding(10, 4)"
    for bad, message in [([10], "out of range"), ([-1], "out of range"), ([1.5], "whole numbers"), (["a"], "integers")]:
        with pytest.raises(ValueError, match=message):
            layer(np.array(bad))
    assert type(embedding(Tensor(np.eye(3)), [0, 2])) is Tensor, "a plain Tensor table gives a plain Tensor"


def test_positional_embedding_sends_gradient_to_the_positions_used_only():
    layer = PositionalEmbedding(6, 3, rng=np.random.default_rng(0))
    x = Variable(np.zeros((2, 4, 3), dtype=np.float32), requires_grad=True)
    out = layer(x)
    np.testing.assert_array_equal(out.numpy()[1], layer.weight.numpy()[:4])
    out.sum().backward()
    assert layer.weight.grad[:4].tolist() == [[2.0] * 3] * 4 and not layer.weight.grad[4:].any()
    with pytest.raises(ValueError, match="longer than the 6"):
        layer(Variable(np.zeros((1, 7, 3))))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5,), (3, 8), (2, 4, 16), (2, 3, 2, 6)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_pytorch(shape, dtype, affine):
    torch = import_torch()
    rng = np.random.default_rng(len(shape))
    width = shape[-1]
    arrays, mine = leaves(rng, dtype, shape, (width,), (width,))
    arrays[0] = arrays[0] * 4 + 2  # far from normalized already
    mine[0] = Variable(arrays[0], requires_grad=True)
    theirs = torch_leaves(torch, arrays)
    if affine:
        ours_out = layer_norm(*mine)
        torch_out = torch.nn.functional.layer_norm(theirs[0], (width,), theirs[1], theirs[2], 1e-5)
        compare_backward(rng, ours_out, torch_out, mine, theirs, dtype)
    else:
        compare_backward(rng, layer_norm(mine[0]), torch.nn.functional.layer_norm(theirs[0], (width,)), mine[:1], theirs[:1], dtype)


def test_layer_norm_layer_and_gradcheck():
    rng = np.random.default_rng(0)
    layer = LayerNorm(4, dtype=np.float64)
    x = Variable(rng.standard_normal((3, 4)), requires_grad=True)
    weights = Variable(rng.standard_normal(4))
    gradcheck(lambda a: layer(a) * weights, x, name="LayerNorm")
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    with pytest.raises(ValueError, match="last axis of size 4"):
        layer(Variable(np.zeros((2, 5))))
    assert type(layer_norm(Tensor(np.ones((2, 3))))) is Tensor
    with no_grad():
        assert layer(x).grad_fn is None


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("shape", [(4, 8), (2, 5, 4), (2, 3, 6, 16)])
def test_attention_matches_pytorch(shape, causal, dtype):
    torch = import_torch()
    rng = np.random.default_rng(len(shape) + causal)
    arrays, mine = leaves(rng, dtype, shape, shape, shape[:-1] + (3,))
    theirs = torch_leaves(torch, arrays)
    ours_out = scaled_dot_product_attention(*mine, causal=causal)
    torch_out = torch.nn.functional.scaled_dot_product_attention(*theirs, is_causal=causal)
    compare_backward(rng, ours_out, torch_out, mine, theirs, dtype)


def test_the_causal_mask_and_the_weights():
    assert causal_mask(3).tolist() == [[0, -np.inf, -np.inf], [0, 0, -np.inf], [0, 0, 0]]
    assert causal_mask(2, np.float64).dtype == np.float64
    rng = np.random.default_rng(0)
    weights = attention_weights(Variable(rng.standard_normal((7, 4))), Variable(rng.standard_normal((7, 4)))).numpy()
    np.testing.assert_allclose(weights.sum(axis=-1), 1, rtol=1e-6)
    assert not np.triu(weights, k=1).any()
    with pytest.raises(ValueError, match="attention needs"):
        scaled_dot_product_attention(Variable(np.zeros((3, 4))), Variable(np.zeros((3, 5))), Variable(np.zeros((3, 2))))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("heads", [1, 2, 4])
def test_multihead_attention_matches_pytorch(heads, dtype):
    torch = import_torch()
    rng = np.random.default_rng(heads)
    layer = MultiHeadAttention(8, heads, rng=rng, dtype=dtype)
    for parameter in layer.parameters():  # nonzero biases, so a bias sent to the wrong place shows
        parameter.numpy()[...] = rng.standard_normal(parameter.shape)
    (x_array,), (x,) = leaves(rng, dtype, (3, 5, 8))
    ours_out = layer(x)
    weights = {name: torch.tensor(parameter.numpy(), requires_grad=True) for name, parameter in layer.named_parameters()}
    theirs_x = torch.tensor(x_array, requires_grad=True)

    def project(name):
        return (theirs_x @ weights[f"{name}.weight"] + weights[f"{name}.bias"]).view(3, 5, heads, 8 // heads).transpose(1, 2)

    mixed = torch.nn.functional.scaled_dot_product_attention(project("query"), project("key"), project("value"), is_causal=True)
    torch_out = mixed.transpose(1, 2).reshape(3, 5, 8) @ weights["out.weight"] + weights["out.bias"]
    names = [name for name, _ in layer.named_parameters()]
    compare_backward(rng, ours_out, torch_out, [x] + layer.parameters(), [theirs_x] + [weights[n] for n in names], dtype)


def test_multihead_attention_is_one_batched_product_for_all_heads():
    """The graph holds two matrix products of attention however many heads there are (no loop over heads)."""
    from tinytorch.core.autograd import topological_order

    def matmuls(heads):
        layer = MultiHeadAttention(8, heads, rng=np.random.default_rng(0))
        out = layer(Variable(np.ones((2, 3, 8), dtype=np.float32), requires_grad=True))
        return sum(1 for node in topological_order(out) if getattr(node, "name", "") == "MatMul")

    assert matmuls(1) == matmuls(8) == 6  # 4 projections, q k^T, weights @ v


def test_record_follows_the_course_conventions():
    x = Variable(np.ones(2), requires_grad=True)
    recorded = record(np.zeros(2), "Probe", (x, lambda g: g))
    assert recorded.grad_fn is not None and recorded.grad_fn.name == "Probe"
    assert record(np.zeros(2), "Probe", (Variable(np.ones(2)), lambda g: g)).grad_fn is None
    assert type(record(np.zeros(2), "Probe", (Tensor(np.ones(2)), lambda g: g))) is Tensor
    with no_grad():
        assert record(np.zeros(2), "Probe", (x, lambda g: g)).grad_fn is None
