"""Module 10: Embedding, PositionalEmbedding, LayerNorm, causal attention and MultiHeadAttention: gradchecks, and the
conventions shared with the other layers (the PyTorch comparisons are in test_attention_torch.py)."""
from __future__ import annotations

import numpy as np
import pytest

from tinytorch.core.attention import (Embedding, LayerNorm, MultiHeadAttention, PositionalEmbedding, attention_weights,
                                      causal_mask, embedding, layer_norm, scaled_dot_product_attention)
from tinytorch.core.autograd import Variable, no_grad, record
from tinytorch.core.operations import gradcheck
from tinytorch.core.tensor import Tensor

pytestmark = pytest.mark.module("attention")

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


def test_the_causal_mask_and_the_weights():
    assert causal_mask(3).tolist() == [[0, -np.inf, -np.inf], [0, 0, -np.inf], [0, 0, 0]]
    assert causal_mask(2, np.float64).dtype == np.float64
    rng = np.random.default_rng(0)
    weights = attention_weights(Variable(rng.standard_normal((7, 4))), Variable(rng.standard_normal((7, 4)))).numpy()
    np.testing.assert_allclose(weights.sum(axis=-1), 1, rtol=1e-6)
    assert not np.triu(weights, k=1).any()
    with pytest.raises(ValueError, match="attention needs"):
        scaled_dot_product_attention(Variable(np.zeros((3, 4))), Variable(np.zeros((3, 5))), Variable(np.zeros((3, 2))))


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
