"""Module 15 against PyTorch: the distillation KL and loss (value and gradient) equal `F.kl_div` with the same
temperature, and magnitude and channel pruning choose what `torch.nn.utils.prune` chooses."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.autograd import Variable
from tinytorch.core.compression import channels_to_keep, distillation_loss, global_masks, magnitude_mask, soft_kl
from tinytorch.core.convolutions import Conv2d
from tinytorch.core.layers import Linear

torch = pytest.importorskip("torch")
F = torch.nn.functional
from torch.nn.utils import prune  # noqa: E402  (a submodule: not loaded by `import torch`)

pytestmark = pytest.mark.module("compression")

FEW = settings(max_examples=30, deadline=None)


def torch_kl(student: np.ndarray, teacher: np.ndarray, temperature: float):
    s = torch.tensor(student, requires_grad=True)
    kl = F.kl_div(F.log_softmax(s / temperature, dim=-1), F.softmax(torch.tensor(teacher) / temperature, dim=-1),
                  reduction="batchmean")
    kl.backward()
    return kl.item(), s.grad.numpy()


@FEW
@given(seed=st.integers(0, 999), batch=st.integers(1, 8), classes=st.integers(2, 12),
       temperature=st.floats(0.5, 20), spread=st.floats(0.1, 30))
def test_soft_kl_equals_torch_kl_div_in_value_and_gradient(seed, batch, classes, temperature, spread):
    rng = np.random.default_rng(seed)
    student, teacher = rng.standard_normal((2, batch, classes)) * spread
    logits = Variable(student.copy(), requires_grad=True)
    kl = soft_kl(logits, teacher, temperature)
    kl.backward()
    value, grad = torch_kl(student, teacher, temperature)
    assert float(kl.item()) == pytest.approx(value, rel=1e-7, abs=1e-10)
    np.testing.assert_allclose(logits.grad, grad, rtol=1e-6, atol=1e-12)


@FEW
@given(seed=st.integers(0, 999), temperature=st.floats(1, 10), alpha=st.floats(0, 1))
def test_distillation_loss_equals_the_torch_formula(seed, temperature, alpha):
    rng = np.random.default_rng(seed)
    student, teacher = rng.standard_normal((2, 6, 10)) * 3
    labels = rng.integers(0, 10, 6)
    logits = Variable(student.copy(), requires_grad=True)
    loss = distillation_loss(logits, teacher, labels, temperature, alpha)
    loss.backward()
    s = torch.tensor(student, requires_grad=True)
    kl = F.kl_div(F.log_softmax(s / temperature, dim=-1), F.softmax(torch.tensor(teacher) / temperature, dim=-1),
                  reduction="batchmean")
    expected = alpha * temperature ** 2 * kl + (1 - alpha) * F.cross_entropy(s, torch.tensor(labels))
    expected.backward()
    assert float(loss.item()) == pytest.approx(expected.item(), rel=1e-7)
    np.testing.assert_allclose(logits.grad, s.grad.numpy(), rtol=1e-6, atol=1e-12)


@FEW
@given(seed=st.integers(0, 999), amount=st.floats(0, 1))
def test_magnitude_mask_and_global_masks_equal_torch_prune(seed, amount):
    rng = np.random.default_rng(seed)
    first, second = torch.nn.Linear(7, 5), torch.nn.Conv2d(2, 3, 3)
    with torch.no_grad():  # distinct magnitudes: where |w| ties, torch's topk and our stable sort may pick different ones
        for module in (first, second):
            module.weight.copy_(torch.tensor(rng.permutation(module.weight.numel()) + 1.0).reshape(module.weight.shape)
                                * torch.tensor(rng.choice([-1.0, 1.0], module.weight.shape)) * rng.uniform(0.01, 1))
    weights = [first.weight.detach().numpy().copy(), second.weight.detach().numpy().copy()]
    prune.l1_unstructured(first, "weight", amount=amount)
    assert np.array_equal(magnitude_mask(weights[0], amount), first.weight_mask.numpy().astype(bool))
    prune.remove(first, "weight")
    with torch.no_grad():
        first.weight.copy_(torch.tensor(weights[0]))
    prune.global_unstructured([(first, "weight"), (second, "weight")], pruning_method=prune.L1Unstructured, amount=amount)
    ours = global_masks(weights, amount)
    assert all(np.array_equal(mine, module.weight_mask.numpy().astype(bool)) for mine, module in zip(ours, (first, second)))


@FEW
@given(seed=st.integers(0, 999), channels=st.integers(2, 9), amount=st.floats(0, 0.95))
def test_channels_to_keep_equals_torch_ln_structured(seed, channels, amount):
    if abs((amount * channels) % 1 - 0.5) < 1e-6:  # an exact half: Python and torch both round to even, but skip the edge
        return
    rng = np.random.default_rng(seed)
    conv, reference = Conv2d(3, channels, 3, rng=rng), torch.nn.Conv2d(3, channels, 3)
    linear, dense = Linear(4, channels, rng=rng), torch.nn.Linear(4, channels)
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(conv.weight.numpy()))
        dense.weight.copy_(torch.tensor(linear.weight.numpy().T))  # torch's Linear weight is (out, in)
    if round(amount * channels) == channels:  # torch would prune all; ours keeps one
        return
    prune.ln_structured(reference, "weight", amount=amount, n=1, dim=0)
    prune.ln_structured(dense, "weight", amount=amount, n=1, dim=0)
    torch_conv = np.flatnonzero(reference.weight_mask.numpy().reshape(channels, -1).any(axis=1))
    torch_linear = np.flatnonzero(dense.weight_mask.numpy().any(axis=1))
    assert channels_to_keep(conv, amount).tolist() == torch_conv.tolist()
    assert channels_to_keep(linear, amount).tolist() == torch_linear.tolist()
