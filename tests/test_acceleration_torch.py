"""Module 13 against PyTorch: the fused cross-entropy equals F.cross_entropy, the fused causal attention
F.scaled_dot_product_attention(is_causal=True), the fused LayerNorm F.layer_norm, forward and backward, and a fused
GPT computes PyTorch's loss and gradients."""
from __future__ import annotations

import numpy as np
import pytest

from tinytorch.core.acceleration import FusedGPT, causal_attention, fused_layer_norm, softmax_cross_entropy
from tinytorch.core.transformer import PerPositionLogits
from nn_testing import as_function_of_parameters
from torch_gpt import build_torch_gpt, logits_from
from torch_oracle import compare, torch

F = torch.nn.functional

pytestmark = pytest.mark.module("acceleration")
# float32: the fused forms add up in another order than PyTorch's kernels, over 103 classes or 16 keys.
FLOAT32 = dict(rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_equals_torchs(dtype):
    logits = np.random.default_rng(0).standard_normal((64, 103)).astype(dtype)
    targets = np.random.default_rng(1).integers(0, 103, 64)
    compare(lambda x: softmax_cross_entropy(x, targets), lambda t: F.cross_entropy(t, torch.tensor(targets)), [logits],
            "softmax_cross_entropy", tolerance=FLOAT32 if dtype == np.float32 else None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_causal_attention_equals_torchs_sdpa(dtype):
    q, k, v = (np.random.default_rng(seed).standard_normal((2, 4, 16, 8)).astype(dtype) for seed in (0, 1, 2))
    compare(causal_attention, lambda tq, tk, tv: F.scaled_dot_product_attention(tq, tk, tv, is_causal=True), [q, k, v],
            "causal_attention (q, k, v)", tolerance=FLOAT32 if dtype == np.float32 else None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_layer_norm_equals_torchs(dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 5, 16)) * 4 + 3).astype(dtype)
    weight, bias = rng.uniform(0.5, 1.5, 16).astype(dtype), rng.standard_normal(16).astype(dtype)
    compare(fused_layer_norm, lambda tx, tw, tb: F.layer_norm(tx, (16,), tw, tb, 1e-5), [x, weight, bias],
            "fused_layer_norm (x, weight, bias)", tolerance=FLOAT32 if dtype == np.float32 else None)


def test_a_fused_gpt_computes_torchs_loss_and_gradients():
    model = FusedGPT(13, 8, d_model=16, num_heads=4, num_layers=2, rng=np.random.default_rng(0), dtype=np.float64)
    net = build_torch_gpt(torch, model)
    ids, targets = np.random.default_rng(1).integers(0, 13, (2, 3, 8))
    names = [name for name, _ in model.named_parameters()]
    weights = [parameter.numpy().copy() for _, parameter in model.named_parameters()]
    compare(as_function_of_parameters(model, lambda gpt: gpt.loss_function()(PerPositionLogits(gpt)(ids), targets)),
            lambda *w: F.cross_entropy(logits_from(torch, net, names, w, ids).transpose(1, 2), torch.tensor(targets)),
            weights, "a fused GPT's loss", tolerance=dict(rtol=1e-9, atol=1e-11), names=names)
