"""Module 13 against PyTorch: the fused cross-entropy equals F.cross_entropy, the fused causal attention
F.scaled_dot_product_attention(is_causal=True), forward and backward, and a fused GPT computes PyTorch's loss
and gradients."""
from __future__ import annotations

import numpy as np
import pytest

from tinytorch.core.acceleration import causal_attention, softmax_cross_entropy
from tinytorch.core.autograd import Variable
from tinytorch.core.transformer import GPT, PerPositionLogits
from torch_gpt import build_torch_gpt, torch_gradients

torch = pytest.importorskip("torch", reason="PyTorch is the oracle here; install it with `pip install torch==2.13.0`")
F = torch.nn.functional

pytestmark = pytest.mark.module("acceleration")
TOLERANCE = {np.float64: dict(rtol=1e-9, atol=1e-12), np.float32: dict(rtol=1e-4, atol=1e-6)}


def pair(shape, seed, dtype):
    values = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return Variable(values, requires_grad=True), torch.tensor(values, requires_grad=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_equals_torchs(dtype):
    mine, theirs = pair((64, 103), 0, dtype)
    targets = np.random.default_rng(1).integers(0, 103, 64)
    loss, expected = softmax_cross_entropy(mine, targets), F.cross_entropy(theirs, torch.tensor(targets))
    np.testing.assert_allclose(loss.item(), expected.item(), **TOLERANCE[dtype])
    loss.backward()
    expected.backward()
    np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_causal_attention_equals_torchs_sdpa(dtype):
    (q, tq), (k, tk), (v, tv) = (pair((2, 4, 16, 8), seed, dtype) for seed in (0, 1, 2))
    out = causal_attention(q, k, v)
    expected = F.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), **TOLERANCE[dtype])
    g = np.random.default_rng(3).standard_normal(out.shape).astype(dtype)
    out.backward(g)
    expected.backward(torch.tensor(g))
    for name, mine, theirs in (("q", q, tq), ("k", k, tk), ("v", v, tv)):
        np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), **TOLERANCE[dtype], err_msg=name)


def test_a_fused_gpt_computes_torchs_loss_and_gradients():
    model = GPT(13, 8, d_model=16, num_heads=4, num_layers=2, rng=np.random.default_rng(0), dtype=np.float64, fused=True)
    net = build_torch_gpt(torch, model)
    ids, targets = np.random.default_rng(1).integers(0, 13, (2, 3, 8))
    loss = model.loss_function()(PerPositionLogits(model)(ids), targets)
    expected = F.cross_entropy(net(torch.tensor(ids)).transpose(1, 2), torch.tensor(targets))
    np.testing.assert_allclose(loss.item(), expected.item(), **TOLERANCE[np.float64])
    loss.backward()
    expected.backward()
    reference = torch_gradients(net)
    for name, parameter in model.named_parameters():
        np.testing.assert_allclose(parameter.grad, reference[name], rtol=1e-9, atol=1e-11, err_msg=name)
