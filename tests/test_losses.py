"""Module 04, tinytorch.core.losses: values, errors, and losses that stay in the graph (the PyTorch comparisons
are in test_losses_torch.py)."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.core.activations import ReLU, Sigmoid, Tanh
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import BCELoss, CrossEntropyLoss, MSELoss, clamped_log, cross_entropy, log_softmax
from tinytorch.core.tensor import Tensor

from nn_testing import Variable, as_function_of_parameters, gradcheck, leaf, needs_autograd

RNG = np.random.default_rng(0)
LOGITS = RNG.standard_normal((6, 4)) * 2
LABELS = np.array([0, 3, 1, 1, 2, 0])
PROBS = RNG.dirichlet(np.ones(4), size=6)  # soft targets: rows of probabilities
P = RNG.uniform(0.05, 0.95, (5, 3))
Y = (RNG.random((5, 3)) > 0.5).astype(np.float64)


def numpy_cross_entropy(logits, target):
    log_probs = logits - logits.max(axis=1, keepdims=True)
    log_probs = log_probs - np.log(np.exp(log_probs).sum(axis=1, keepdims=True))
    if target.ndim == 1:
        return -log_probs[np.arange(len(target)), target].mean()
    return -(target * log_probs).sum() / len(target)


def test_values_on_tensors():
    assert MSELoss()(Tensor(P), Tensor(Y)).item() == pytest.approx(((P - Y) ** 2).mean(), rel=1e-12)
    assert CrossEntropyLoss()(Tensor(LOGITS), LABELS).item() == pytest.approx(numpy_cross_entropy(LOGITS, LABELS), rel=1e-12)
    assert CrossEntropyLoss()(Tensor(LOGITS), PROBS).item() == pytest.approx(numpy_cross_entropy(LOGITS, PROBS), rel=1e-12)
    one_hot = np.eye(4)[LABELS]
    assert CrossEntropyLoss()(Tensor(LOGITS), Tensor(one_hot)).item() == pytest.approx(numpy_cross_entropy(LOGITS, LABELS), rel=1e-12)
    bce = -(Y * np.log(P) + (1 - Y) * np.log(1 - P)).mean()
    assert BCELoss()(Tensor(P), Y).item() == pytest.approx(bce, rel=1e-12)


@pytest.mark.parametrize("target", [LABELS, LABELS.astype(np.float32), Tensor(LABELS), Tensor(LABELS.astype(np.float32)),
                                    LABELS.tolist(), LABELS.astype(np.uint8)],
                         ids=["int64", "float32", "Tensor-int", "Tensor-float", "list", "uint8"])
def test_cross_entropy_accepts_class_indices_in_any_container(target):
    assert CrossEntropyLoss()(Tensor(LOGITS), target).item() == pytest.approx(numpy_cross_entropy(LOGITS, LABELS), rel=1e-12)


def test_losses_are_scalars_in_the_prediction_dtype():
    for dtype in (np.float32, np.float64):
        for loss in [MSELoss()(Tensor(P.astype(dtype)), Y.astype(np.int64)), BCELoss()(Tensor(P.astype(dtype)), Y),
                     CrossEntropyLoss()(Tensor(LOGITS.astype(dtype)), LABELS),
                     CrossEntropyLoss()(Tensor(LOGITS.astype(dtype)), PROBS)]:
            assert loss.shape == () and loss.dtype == dtype


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 6)), elements=st.floats(-1e4, 1e4)),
       st.data())
def test_cross_entropy_is_finite_nonnegative_and_matches_log_softmax(logits, data):
    labels = np.array(data.draw(st.lists(st.integers(0, logits.shape[1] - 1), min_size=len(logits), max_size=len(logits))))
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        loss = CrossEntropyLoss()(Tensor(logits), labels).item()
        log_probs = log_softmax(Tensor(logits)).data
    assert np.isfinite(loss) and loss >= -1e-12
    assert loss == pytest.approx(-log_probs[np.arange(len(labels)), labels].mean(), rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1.0, rtol=1e-9)


def test_bce_clamps_logs_like_pytorch():
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        assert BCELoss()(Tensor([1.0, 0.0, 1.0]), Tensor([1.0, 0.0, 0.0])).item() == pytest.approx(100 / 3, rel=1e-6)
        assert clamped_log(Tensor([0.0, 1e-300, math.exp(-99)], dtype=np.float64)).data.tolist() == pytest.approx([-100, -100, -99])


@pytest.mark.parametrize("call, match", [
    (lambda: CrossEntropyLoss()(Tensor(LOGITS), np.array([0, 1, 2, 3, 4, 0])), r"class index out of range.*\[0, 3\].*\[4\]"),
    (lambda: CrossEntropyLoss()(Tensor(LOGITS), np.array([0, 1, 2, 3, -1, 0])), r"out of range.*\[-1\]"),
    (lambda: CrossEntropyLoss()(Tensor(LOGITS), np.array([0, 1, 2, 3, 1.5, 0])), "whole numbers"),
    (lambda: CrossEntropyLoss()(Tensor(LOGITS), LABELS[:5]), r"\(6, 4\).*\(6,\).*\(5,\)"),
    (lambda: CrossEntropyLoss()(Tensor(LOGITS), np.zeros((6, 5))), r"\(6, 4\).*\(6, 5\)"),
    (lambda: CrossEntropyLoss()(Tensor(LOGITS[0]), LABELS[:1]), r"\(N, C\).*\(4,\)"),
    (lambda: MSELoss()(Tensor(np.zeros((5, 1))), np.zeros(5)), r"\(5, 1\) and \(5,\)"),
    (lambda: BCELoss()(Tensor(P), Y[:, :2]), r"\(5, 3\) and \(5, 2\)"),
    (lambda: BCELoss()(Tensor(P * 3), Y), r"predictions must lie in \[0, 1\]"),
    (lambda: BCELoss()(Tensor(P), Y * 2), r"targets must lie in \[0, 1\]"),
])
def test_bad_input_raises_clear_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- in the graph (module 05) ---

CASES = {
    "mse": (MSELoss(), lambda: leaf(P), Y),
    "cross-entropy-indices": (CrossEntropyLoss(), lambda: leaf(LOGITS), LABELS),
    "cross-entropy-probabilities": (CrossEntropyLoss(), lambda: leaf(LOGITS), PROBS),
    "bce": (BCELoss(), lambda: leaf(P), Y),
}


@needs_autograd
@pytest.mark.parametrize("case", CASES)
def test_loss_of_a_variable_is_a_scalar_variable_in_the_graph(case):
    loss_fn, make, target = CASES[case]
    prediction = make()
    loss = loss_fn(prediction, target)
    assert isinstance(loss, Variable) and loss.shape == () and loss.grad_fn is not None
    loss.backward()
    assert prediction.grad is not None and prediction.grad.shape == prediction.shape and np.any(prediction.grad != 0)


@needs_autograd
@pytest.mark.parametrize("case", CASES)
def test_gradcheck_each_loss(case):
    loss_fn, make, target = CASES[case]
    assert gradcheck(lambda prediction: loss_fn(prediction, target), make(), name=case)


@needs_autograd
def test_gradcheck_with_respect_to_targets_that_require_grad():
    assert gradcheck(lambda p, y: MSELoss()(p, y), leaf(P), leaf(Y))
    assert gradcheck(lambda z, q: CrossEntropyLoss()(z, q), leaf(LOGITS), leaf(PROBS))


@needs_autograd
def test_cross_entropy_gradient_is_softmax_minus_one_hot_over_n():
    logits = leaf(LOGITS)
    CrossEntropyLoss()(logits, LABELS).backward()
    probs = np.exp(LOGITS - LOGITS.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(logits.grad, (probs - np.eye(4)[LABELS]) / len(LABELS), rtol=1e-12, atol=1e-15)


@needs_autograd
@pytest.mark.parametrize("activation", [ReLU(), Tanh()], ids=["relu", "tanh"])
def test_gradcheck_whole_two_layer_mlp_loss_with_respect_to_every_parameter(activation):
    rng = np.random.default_rng(1)
    model = Sequential(Linear(5, 7, rng=rng, dtype=np.float64), activation, Linear(7, 3, rng=rng, dtype=np.float64))
    for parameter in model.parameters():  # nonzero biases, so every parameter is exercised
        parameter.numpy()[...] += rng.normal(0, 0.1, parameter.shape)
    x, labels = Tensor(rng.standard_normal((8, 5))), rng.integers(0, 3, 8)
    loss_of_parameters = as_function_of_parameters(model, lambda m: CrossEntropyLoss()(m(x), labels))
    assert gradcheck(loss_of_parameters, *model.parameters(), name="MLP cross-entropy")
    # and backward through the model itself fills every parameter's gradient
    model.zero_grad()
    CrossEntropyLoss()(model(x), labels).backward()
    assert all(p.grad is not None and np.any(p.grad != 0) for p in model.parameters())


@needs_autograd
def test_float32_training_step_stays_float32():
    model = Sequential(Linear(4, 5), ReLU(), Linear(5, 3))
    x = Tensor(np.random.default_rng(2).standard_normal((6, 4)).astype(np.float32))
    loss = CrossEntropyLoss()(model(x), np.array([0, 1, 2, 0, 1, 2]))
    loss.backward()
    assert loss.dtype == np.float32 and all(p.grad.dtype == np.float32 for p in model.parameters())
    prediction = Sigmoid()(Linear(4, 1)(x))
    assert BCELoss()(prediction, np.ones((6, 1))).dtype == np.float32


@needs_autograd
def test_gradcheck_of_probability_targets_per_position():
    logits, target = leaf(RNG.standard_normal((2, 3, 4))), leaf(np.moveaxis(RNG.dirichlet(np.ones(3), size=(2, 4)), -1, 1))
    assert gradcheck(lambda z, q: cross_entropy(z, q, label_smoothing=0.1), logits, target, name="cross_entropy (N, C, d)")
