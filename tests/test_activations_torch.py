"""Module 02, tinytorch.core.activations, against PyTorch: ReLU, Sigmoid, Tanh, Softmax along either axis and GELU
(the tanh approximation) give PyTorch's values and gradients on Variables (torch_oracle.compare). They need modules
05 and 06 (skipped with the reason until then)."""
import numpy as np
import pytest

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh

from nn_testing import needs_autograd
from test_activations import ACTIVATIONS, IDS
from torch_oracle import compare, torch

pytestmark = needs_autograd


def torch_activation(activation):
    if isinstance(activation, Softmax):
        return lambda t: torch.softmax(t, dim=activation.axis)
    return {ReLU: torch.relu, Sigmoid: torch.sigmoid, Tanh: torch.tanh,
            GELU: lambda t: torch.nn.functional.gelu(t, approximate="tanh")}[type(activation)]


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=IDS)
def test_values_and_gradients_match_pytorch(activation):
    x = np.random.default_rng(4).standard_normal((4, 5)) * 3
    compare(activation, torch_activation(activation), [x], repr(activation))
