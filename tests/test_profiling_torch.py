"""Module 12 against PyTorch: the FLOPs the profiler counts for the products (matrix products, batched products,
convolutions) of the MLP, the CNN and the GPT, forward and backward, equal `torch.utils.flop_counter`'s on the
same models exactly; parameter counts equal PyTorch's.

PyTorch counts only products (mm, addmm, bmm, convolution): not elementwise operations, reductions, or the
sum that is a bias's gradient. So the profiler's side is its MatMul and Conv2d events and the rules that
compute the gradients of their matrix operands (inputs 0 and 1), and module 13's CausalAttention, whose
FLOPs are its products alone, forward and backward."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tinytorch.core.acceleration import FusedGPT
from tinytorch.core.activations import ReLU
from tinytorch.core.convolutions import Conv2d, MaxPool2d
from tinytorch.core.layers import Flatten, Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.profiling import Profiler, count_parameters
from tinytorch.core.tensor import Tensor
from tinytorch.core.transformer import GPT, PerPositionLogits
from torch_gpt import build_torch_gpt
from torch_oracle import torch
from torch.utils.flop_counter import FlopCounterMode  # after torch_oracle, which skips this file without PyTorch

pytestmark = pytest.mark.module("profiling")
PRODUCTS = ("MatMul", "Conv2d")


def product_flops(events) -> tuple[int, int]:
    """(forward, backward) FLOPs of the products among `events`, as PyTorch counts them."""
    forward = sum(e.flops for e in events if e.kind == "forward" and e.name in PRODUCTS + ("CausalAttention",))
    backward = sum(e.flops for e in events if e.kind == "backward" and (
        e.name[:-len("Backward")] in PRODUCTS and e.input in (0, 1) or e.name == "CausalAttentionBackward"))
    return forward, backward


def torch_flops(forward, loss_of) -> tuple[int, int]:
    """(forward, backward) FLOPs that FlopCounterMode counts for `forward()`, then `loss_of(output).backward()`."""
    with FlopCounterMode(display=False) as counter:
        out = forward()
    ahead = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        loss_of(out).backward()
    return ahead, counter.get_total_flops()


def tinytorch_flops(model, x, targets) -> tuple[int, int]:
    with Profiler() as prof:
        CrossEntropyLoss()(model(x), targets).backward()
    return product_flops(prof.events)


def torch_sequential(model):
    """The same layers in PyTorch, with copies of the weights (tinytorch's Linear weight is (in, out))."""
    layers = []
    for layer in model.layers:
        if isinstance(layer, Linear):
            copy = torch.nn.Linear(layer.in_features, layer.out_features)
            copy.weight.data = torch.tensor(np.array(layer.weight.numpy()).T.copy())
            copy.bias.data = torch.tensor(np.array(layer.bias.numpy()))
        elif isinstance(layer, Conv2d):
            weight = layer.weight.numpy()
            copy = torch.nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2:], padding=layer.padding)
            copy.weight.data, copy.bias.data = torch.tensor(np.array(weight)), torch.tensor(np.array(layer.bias.numpy()))
        elif isinstance(layer, MaxPool2d):
            copy = torch.nn.MaxPool2d(2)
        elif isinstance(layer, ReLU):
            copy = torch.nn.ReLU()
        else:
            copy = torch.nn.Flatten()
        layers.append(copy)
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_products_of_the_mlp_and_the_cnn_equal_pytorchs_counts(kind):
    rng = np.random.default_rng(0)
    if kind == "mlp":  # the digits milestone's MLP
        model = Sequential(Linear(64, 32, rng=rng), ReLU(), Linear(32, 10, rng=rng))
        x = rng.standard_normal((16, 64)).astype(np.float32)
    else:  # the cnn milestone's shape: two 3x3 convolutions with pooling, then a Linear
        model = Sequential(Conv2d(1, 4, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2),
                           Conv2d(4, 8, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2), Flatten(), Linear(8 * 2 * 2, 10, rng=rng))
        x = rng.standard_normal((16, 1, 8, 8)).astype(np.float32)
    targets = rng.integers(0, 10, 16)
    ours = tinytorch_flops(model, Tensor(x), targets)
    net = torch_sequential(model)
    expected = torch_flops(lambda: net(torch.tensor(x)), lambda out: torch.nn.functional.cross_entropy(out, torch.tensor(targets)))
    assert ours == expected and expected[0] > 0 and expected[1] > 0
    assert count_parameters(model) == sum(p.numel() for p in net.parameters())


def explicit_attention(q, k, v, is_causal=True):
    """Scaled dot-product attention from two batched products: PyTorch's CPU kernel for
    F.scaled_dot_product_attention is counted as 0 FLOPs, this one as its two products."""
    length = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    mask = torch.ones(length, length, dtype=torch.bool).tril()
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ v


@pytest.mark.parametrize("model_class", [GPT, FusedGPT])
@pytest.mark.parametrize("tied", [False, True])
def test_products_of_the_gpt_equal_pytorchs_counts(monkeypatch, tied, model_class):
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", explicit_attention)
    rng = np.random.default_rng(0)
    # Module 11's composed attention: its products are MatMul events; module 13's FusedGPT does them inside
    # one CausalAttention node, whose FLOPs are those products.
    model = model_class(20, 16, d_model=32, num_heads=4, num_layers=2, tied=tied, rng=rng)
    ids = rng.integers(0, 20, (4, 17))
    inputs, targets = ids[:, :-1], ids[:, 1:]
    with Profiler() as prof:
        model.loss_function()(PerPositionLogits(model)(Tensor(inputs.astype(np.float32))), targets).backward()
    ours = product_flops(prof.events)
    net = build_torch_gpt(torch, model)
    expected = torch_flops(lambda: net(torch.tensor(inputs)),
                           lambda logits: torch.nn.functional.cross_entropy(logits.reshape(-1, 20), torch.tensor(targets).reshape(-1)))
    assert ours == expected and expected[0] > 0
    assert count_parameters(model) == sum(p.numel() for p in net.parameters())
