"""Module 11, tinytorch.core.transformer, against PyTorch: GELU is F.gelu(approximate="tanh"), and a GPT computes the
logits, the loss and every parameter's gradient of the same model written with PyTorch's own functions
(tests/torch_gpt.py), tied or not, in float32 and float64 (torch_oracle.compare)."""
from __future__ import annotations

import numpy as np
import pytest

from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.transformer import GPT, PerPositionLogits, gelu

from nn_testing import as_function_of_parameters
from torch_gpt import build_torch_gpt, logits_from
from torch_oracle import compare, torch

pytestmark = pytest.mark.module("transformer")
F = torch.nn.functional


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_matches_pytorchs_tanh_gelu(dtype):
    tolerance = dict(rtol=1e-5, atol=5e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    compare(gelu, lambda t: F.gelu(t, approximate="tanh"), [np.linspace(-8, 8, 101).astype(dtype)], "gelu",
            tolerance=tolerance)


def test_gelu_in_blocks_matches_pytorch_across_pieces_and_layouts():
    """More numbers than three blocks (the last piece short), given transposed (not contiguous), with a transposed
    output gradient; and a single number."""
    from tinytorch.core.autograd import Variable
    from tinytorch.core.transformer import BLOCK
    rng = np.random.default_rng(0)
    wide, g = (rng.standard_normal((3 * BLOCK // 256 + 1, 256)).T * 3 for _ in range(2))
    assert wide.size > 3 * BLOCK and not wide.flags.c_contiguous and not g.flags.c_contiguous
    x = Variable(wide, requires_grad=True)
    out = gelu(x)
    out.backward(g)
    reference = torch.tensor(wide, requires_grad=True)
    expected = F.gelu(reference, approximate="tanh")
    expected.backward(torch.tensor(g))
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(x.grad, reference.grad.numpy(), rtol=1e-12, atol=1e-13)
    compare(gelu, lambda t: F.gelu(t, approximate="tanh"), [np.array(0.7)], "gelu of one number",
            tolerance=dict(rtol=1e-12, atol=1e-13))


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpt_logits_and_every_gradient_match_pytorch(tied, dtype):
    model = GPT(vocab_size=13, context=8, d_model=16, num_heads=4, num_layers=2, tied=tied,
                rng=np.random.default_rng(0), dtype=dtype)
    rng = np.random.default_rng(1)
    for parameter in model.parameters():  # away from the initial values (zero biases, unit norms hide mistakes)
        parameter.numpy()[...] += (0.1 * rng.standard_normal(parameter.shape)).astype(dtype)
    net = build_torch_gpt(torch, model)
    ids, targets = rng.integers(0, 13, (3, 8)), rng.integers(0, 13, (3, 8))
    names = [name for name, _ in model.named_parameters()]
    weights = [parameter.numpy().copy() for _, parameter in model.named_parameters()]
    tolerance = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)
    compare(as_function_of_parameters(model, lambda gpt: gpt(ids)), lambda *w: logits_from(torch, net, names, w, ids),
            weights, "logits", tolerance=tolerance, names=names)
    compare(as_function_of_parameters(model, lambda gpt: CrossEntropyLoss()(PerPositionLogits(gpt)(ids), targets)),
            lambda *w: F.cross_entropy(logits_from(torch, net, names, w, ids).transpose(1, 2), torch.tensor(targets)),
            weights, "the loss", tolerance=tolerance, names=names)
