"""Module 04, tinytorch.core.losses, against PyTorch: MSELoss, CrossEntropyLoss (class indices, probabilities,
extreme logits, a target per position, the reductions and label smoothing) and BCELoss give PyTorch's loss and
gradients. They need modules 05 and 06 (skipped with the reason until then); every comparison is
torch_oracle.compare.
"""
import numpy as np
import pytest

from tinytorch.core.losses import BCELoss, CrossEntropyLoss, MSELoss, cross_entropy

from nn_testing import needs_autograd
from test_losses import LABELS, LOGITS, P, PROBS, Y  # the inputs of the module's own tests
from torch_oracle import compare, torch

pytestmark = needs_autograd
F = torch.nn.functional

TOLERANCE = {np.float64: dict(rtol=1e-10, atol=1e-14), np.float32: dict(rtol=1e-5, atol=1e-7)}

CASES = {  # (ours, PyTorch's, prediction, target)
    "mse": (MSELoss(), torch.nn.MSELoss(), P, Y),
    "cross-entropy-indices": (CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), LOGITS, LABELS),
    "cross-entropy-probabilities": (CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), LOGITS, PROBS),
    "bce": (BCELoss(), torch.nn.BCELoss(), P, Y),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_value_and_gradient_match_pytorch(case, dtype):
    """A float64 target (an array, not a Variable) with a prediction of either dtype: the prediction's dtype wins."""
    ours, theirs, prediction, target = CASES[case]
    target_t = torch.tensor(target) if target.dtype.kind == "i" else torch.tensor(target.astype(dtype))
    compare(lambda p: ours(p, target), lambda p: theirs(p, target_t), [prediction.astype(dtype)], case,
            tolerance=TOLERANCE[dtype])


def test_extreme_logits_match_pytorch():
    logits = np.array([[1000.0, -1000.0, 0.0], [-500.0, 500.0, 499.0]])
    labels = np.array([1, 2])
    compare(lambda z: CrossEntropyLoss()(z, labels), lambda t: F.cross_entropy(t, torch.tensor(labels)), [logits],
            "extreme logits", tolerance=dict(rtol=1e-10, atol=1e-15))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(6, 4), (2, 4, 3), (2, 4, 2, 3)], ids=["(N, C)", "(N, C, d)", "(N, C, d1, d2)"])
@pytest.mark.parametrize("options", [{}, {"reduction": "sum"}, {"reduction": "none"}, {"label_smoothing": 0.2}],
                         ids=["mean", "sum", "none", "smoothing"])
def test_probability_targets_match_pytorch(shape, options, dtype):
    """F.cross_entropy with a float target of the logits' shape: the loss and the gradients of logits and target; an
    array target is a constant with the same loss."""
    rng = np.random.default_rng(11)
    logits = rng.standard_normal(shape).astype(dtype)
    probabilities = np.moveaxis(rng.dirichlet(np.ones(shape[1]), size=(shape[0], *shape[2:])), -1, 1).astype(dtype)
    tolerance = dict(rtol=1e-10, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    compare(lambda z, q: cross_entropy(z, q, **options), lambda z, q: F.cross_entropy(z, q, **options),
            [logits, probabilities], f"cross_entropy {options}", tolerance=tolerance)
    compare(lambda z: CrossEntropyLoss(**options)(z, probabilities),
            lambda z: F.cross_entropy(z, torch.tensor(probabilities), **options), [logits], "an array target", tolerance=tolerance)
