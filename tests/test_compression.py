"""Module 15's package: properties of magnitude pruning, masks that survive any optimizer, structurally pruned
networks equal to their masked originals on random geometries, clear errors for bad input, and the digits CNN
keeping its accuracy at 80% sparsity."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import Variable, no_grad
from tinytorch.core.compression import (MaskedOptimizer, Pruning, channels_to_keep, distillation_loss, global_masks,
                                        magnitude_mask, narrow, prunable_weights, soft_kl, structured_prune)
from tinytorch.core.convolutions import Conv2d, MaxPool2d
from tinytorch.core.layers import Flatten, Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import SGD, Adam, AdamW, StepLR
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import DataLoader, Standardizer, Trainer, load_digits_dataset

pytestmark = pytest.mark.module("compression")

FEW = settings(max_examples=40, deadline=None)


@FEW
@given(weight=hnp.arrays(np.float32, hnp.array_shapes(max_dims=4, max_side=6), elements=st.floats(-10, 10, width=32)),
       sparsity=st.floats(0, 1))
def test_magnitude_mask_prunes_exactly_the_smallest(weight, sparsity):
    mask = magnitude_mask(weight, sparsity)
    assert mask.shape == weight.shape and mask.dtype == bool
    assert int((~mask).sum()) == round(sparsity * weight.size)
    if mask.any() and (~mask).any():
        assert np.abs(weight[~mask]).max() <= np.abs(weight[mask]).min()


@FEW
@given(sizes=st.lists(st.integers(1, 30), min_size=1, max_size=4), sparsity=st.floats(0, 1), seed=st.integers(0, 99))
def test_global_masks_are_one_ranking_over_all_arrays(sizes, sparsity, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(size) * rng.uniform(0.1, 10) for size in sizes]
    masks = global_masks(arrays, sparsity)
    together = magnitude_mask(np.concatenate(arrays), sparsity)
    assert [m.shape for m in masks] == [a.shape for a in arrays]
    assert np.array_equal(np.concatenate(masks), together)


def small_model(rng):
    return Sequential(Linear(6, 12, rng=rng), ReLU(), Linear(12, 3, rng=rng))


@pytest.mark.parametrize("make_optimizer", [
    lambda params: Adam(params, lr=0.01),
    lambda params: AdamW(params, lr=0.01, weight_decay=0.1),
    lambda params: SGD(params, lr=0.1, momentum=0.9),
], ids=["adam", "adamw", "sgd-momentum"])
def test_pruned_weights_stay_zero_with_every_optimizer_and_in_a_trainer(make_optimizer):
    rng = np.random.default_rng(0)
    model = small_model(rng)
    x, y = rng.standard_normal((64, 6)).astype(np.float32), rng.integers(0, 3, 64)
    optimizer = make_optimizer(model.parameters())
    trainer = Trainer(model, optimizer, CrossEntropyLoss())
    trainer.fit(DataLoader(x, y, batch_size=16), epochs=2)  # momentum and moving averages now non-zero
    pruning = Pruning(model, 0.6, scope="layer")
    masked = MaskedOptimizer(optimizer, pruning)
    history = Trainer(model, masked, CrossEntropyLoss()).fit(DataLoader(x, y, batch_size=16), epochs=3)
    for weight, mask in zip(prunable_weights(model), pruning.masks):
        assert np.all(weight.numpy()[~mask] == 0) and np.all(weight.numpy()[mask] != 0)
    assert pruning.sparsity() == pytest.approx((round(0.6 * 72) + round(0.6 * 36)) / 108)
    assert history.train_loss[-1] < history.train_loss[0]


def test_a_masked_optimizer_is_scheduled_and_saved_as_the_optimizer_it_wraps():
    model = small_model(np.random.default_rng(0))
    adam = Adam(model.parameters(), lr=0.1)
    masked = MaskedOptimizer(adam, Pruning(model, 0.5))
    schedule = StepLR(masked, step_size=1, gamma=0.5)
    schedule.step()
    assert masked.lr == adam.lr == pytest.approx(0.05)  # the schedule's rate reached the wrapped optimizer
    masked.lr = 0.2
    assert adam.lr == 0.2
    assert masked.params is adam.params and masked.state_dict()["lr"] == 0.2


def random_cnn(rng, channels, hidden, image):
    """conv -> ReLU -> pool -> conv -> ReLU -> pool -> Flatten -> Linear -> ReLU -> Linear, with biases that matter."""
    first, second = channels
    side = image // 4
    model = Sequential(Conv2d(1, first, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2),
                       Conv2d(first, second, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2), Flatten(),
                       Linear(second * side * side, hidden, rng=rng), ReLU(), Linear(hidden, 4, rng=rng))
    for layer in model.layers:
        if isinstance(layer, (Linear, Conv2d)):
            layer.bias.numpy()[...] = rng.uniform(-0.5, 0.5, layer.bias.shape)
    return model


def masked_reference(model, fraction):
    """The model with the pruned output channels' weights and biases zeroed, the channels chosen by L1 norm here."""
    layers = [narrow(layer) if isinstance(layer, (Linear, Conv2d)) else layer for layer in model.layers]
    weighted = [layer for layer in layers if isinstance(layer, (Linear, Conv2d))]
    for layer in weighted[:-1]:
        out_axis = 0 if isinstance(layer, Conv2d) else 1
        weight = layer.weight.numpy()
        norms = np.abs(np.moveaxis(weight, out_axis, 0)).reshape(weight.shape[out_axis], -1).sum(axis=1)
        dropped = np.argsort(-norms, kind="stable")[max(1, round(len(norms) * (1 - fraction))):]
        np.moveaxis(weight, out_axis, 0)[dropped] = 0
        layer.bias.numpy()[dropped] = 0
    return Sequential(*layers)


@FEW
@given(seed=st.integers(0, 999), channels=st.tuples(st.integers(1, 6), st.integers(1, 6)), hidden=st.integers(1, 7),
       image=st.sampled_from([4, 8, 12]), fraction=st.floats(0, 1))
def test_structured_pruning_equals_the_masked_model_and_shrinks_the_arrays(seed, channels, hidden, image, fraction):
    rng = np.random.default_rng(seed)
    model = random_cnn(rng, channels, hidden, image)
    small = structured_prune(model, fraction)
    x = Tensor(rng.standard_normal((3, 1, image, image)).astype(np.float32))
    with no_grad():
        assert np.allclose(small(x).numpy(), masked_reference(model, fraction)(x).numpy(), atol=1e-4)
    kept = [max(1, round((1 - fraction) * n)) for n in (*channels, hidden)]
    conv1, conv2, linear1, linear2 = [layer for layer in small.layers if isinstance(layer, (Linear, Conv2d))]
    side = image // 4
    assert conv1.weight.shape == (kept[0], 1, 3, 3) and conv2.weight.shape == (kept[1], kept[0], 3, 3)
    assert linear1.weight.shape == (kept[1] * side * side, kept[2]) and linear2.weight.shape == (kept[2], 4)
    assert [layer.bias.shape for layer in (conv1, conv2, linear1, linear2)] == [(kept[0],), (kept[1],), (kept[2],), (4,)]


def test_a_pruned_model_trains_and_keeps_its_shapes_through_a_checkpoint(tmp_path):
    from tinytorch.core.training import load_checkpoint, save_checkpoint

    rng = np.random.default_rng(1)
    small = structured_prune(random_cnn(rng, (4, 6), 5, 8), 0.5)
    x, y = rng.standard_normal((16, 1, 8, 8)).astype(np.float32), rng.integers(0, 4, 16)
    Trainer(small, Adam(small.parameters(), lr=0.01), CrossEntropyLoss()).fit(DataLoader(x, y, batch_size=8), epochs=1)
    path = save_checkpoint(tmp_path / "small.npz", small)
    twin = structured_prune(random_cnn(np.random.default_rng(2), (4, 6), 5, 8), 0.5)
    load_checkpoint(path, twin)
    with no_grad():
        assert np.array_equal(twin(Tensor(x)).numpy(), small(Tensor(x)).numpy())


@pytest.mark.parametrize("call, words", [
    (lambda: magnitude_mask(np.ones(3), 1.5), "sparsity must be a fraction between 0 and 1, got 1.5"),
    (lambda: magnitude_mask(np.ones(3), -0.1), "sparsity must be a fraction"),
    (lambda: global_masks([], 0.5), "at least one weight array"),
    (lambda: Pruning(small_model(np.random.default_rng(0)), 0.5, scope="block"), "scope must be one of"),
    (lambda: Pruning(Sequential(ReLU()), 0.5), "Sequential has no Linear or Conv2d weights to prune"),
    (lambda: channels_to_keep(ReLU(), 0.5), "needs a Linear or a Conv2d, got ReLU"),
    (lambda: structured_prune(Linear(2, 2), 0.5), "needs a Sequential, got Linear"),
    (lambda: structured_prune(Sequential(Linear(2, 2)), 0.5), "at least two Linear or Conv2d layers"),
    (lambda: soft_kl(Variable(np.zeros((2, 3))), np.zeros((2, 3)), 0.0), "temperature must be positive, got 0.0"),
    (lambda: soft_kl(Variable(np.zeros((2, 3))), np.zeros((2, 4)), 1.0), r"\(2, 3\) and teacher logits \(2, 4\)"),
    (lambda: distillation_loss(Variable(np.zeros((2, 3))), np.zeros((2, 3)), np.zeros(2, dtype=int), alpha=1.5),
     "alpha must be between 0 and 1"),
])
def test_bad_input_gets_one_clear_line(call, words):
    with pytest.raises((ValueError, TypeError), match=words) as error:
        call()
    assert "\n" not in str(error.value)


@pytest.fixture(scope="module")
def digits_cnn():
    """The lesson's digits CNN (16 and 32 channels), trained 10 epochs with one BLAS thread."""
    from threadpoolctl import threadpool_limits

    digits = load_digits_dataset()
    standardize = Standardizer(digits.x_train)
    train_x, test_x = (standardize(x).reshape(-1, 1, 8, 8) for x in (digits.x_train, digits.x_test))
    rng = np.random.default_rng(0)
    model = Sequential(Conv2d(1, 16, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2), Conv2d(16, 32, 3, padding=1, rng=rng),
                       ReLU(), MaxPool2d(2), Flatten(), Linear(128, 10, rng=rng))

    def fit(target, epochs, optimizer):
        with threadpool_limits(1, "blas"):
            Trainer(target, optimizer, CrossEntropyLoss()).fit(
                DataLoader(train_x, digits.y_train, batch_size=32, shuffle=True, seed=0), epochs=epochs)

    def accuracy(target):
        with no_grad():
            return float(np.mean(target(Tensor(test_x)).numpy().argmax(axis=1) == digits.y_test))

    fit(model, 10, Adam(model.parameters(), lr=3e-3))
    return model, fit, accuracy


def test_the_digits_cnn_at_80_percent_sparsity_stays_within_a_point_after_fine_tuning(digits_cnn):
    model, fit, accuracy = digits_cnn
    dense = accuracy(model)
    pruned = Sequential(*[narrow(layer) if isinstance(layer, (Linear, Conv2d)) else layer for layer in model.layers])
    pruning = Pruning(pruned, 0.8)
    assert pruning.sparsity() == pytest.approx(0.8, abs=1e-4)
    fit(pruned, 5, MaskedOptimizer(Adam(pruned.parameters(), lr=3e-3), pruning))
    assert pruning.sparsity() == pytest.approx(0.8, abs=1e-4)
    assert dense > 0.97 and accuracy(pruned) >= dense - 0.01


def test_distillation_trains_a_student_through_the_engine(digits_cnn):
    teacher, _, accuracy = digits_cnn
    rng = np.random.default_rng(3)
    student = Sequential(Flatten(), Linear(64, 32, rng=rng), ReLU(), Linear(32, 10, rng=rng))
    digits = load_digits_dataset()
    standardize = Standardizer(digits.x_train)
    x = standardize(digits.x_train).reshape(-1, 1, 8, 8)
    with no_grad():
        teacher_logits = teacher(Tensor(x)).numpy()
    optimizer = Adam(student.parameters(), lr=3e-3)
    for _ in range(5):
        for batch in np.array_split(rng.permutation(len(x)), len(x) // 64):
            optimizer.zero_grad()
            distillation_loss(student(Tensor(x[batch])), teacher_logits[batch], digits.y_train[batch], 4.0, 0.9).backward()
            optimizer.step()
    assert accuracy(student) > 0.9
