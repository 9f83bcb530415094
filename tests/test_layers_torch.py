"""Module 03, tinytorch.core.layers, against PyTorch: Linear computes F.linear and the gradients of its input, weight
and bias (torch_oracle.compare; tinytorch's weight is (in, out), PyTorch's (out, in)). It needs modules 05 and 06
(skipped with the reason until then)."""
import numpy as np

from tinytorch.core.layers import Linear

from nn_testing import as_function_of_parameters, needs_autograd
from torch_oracle import compare, torch

pytestmark = needs_autograd


def test_linear_matches_pytorch():
    layer = Linear(4, 3, rng=np.random.default_rng(0), dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((5, 4))
    compare(lambda x, weight, bias: as_function_of_parameters(layer, lambda linear: linear(x))(weight, bias),
            lambda x, weight, bias: torch.nn.functional.linear(x, weight.T, bias),
            [x, layer.weight.numpy().copy(), layer.bias.numpy().copy()], "Linear(4, 3)",
            tolerance=dict(rtol=1e-12, atol=0), names=["x", "weight", "bias"])
