"""Module 07, tinytorch.core.optimizers: checkpoints of the optimizers and schedules, and their errors (PyTorch's update
rules step for step, clipping and schedules are compared in test_optimizers_torch.py)."""
import math

import numpy as np
import pytest

from tinytorch.core.autograd import Variable
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.operations import Parameter
from tinytorch.core.optimizers import SGD, Adam, AdamW, CosineAnnealingLR, StepLR

SHAPES = [(3, 4), (4,), (1,)]
STEPS = 20

CONFIGS = {
    "sgd": (SGD, dict(lr=0.1)),
    "sgd-momentum": (SGD, dict(lr=0.05, momentum=0.9)),
    "sgd-nesterov": (SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    "sgd-weight-decay": (SGD, dict(lr=0.1, weight_decay=0.01)),
    "sgd-momentum-dampening-weight-decay": (SGD, dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.02)),
    "sgd-nesterov-weight-decay": (SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.05)),
    "adam-defaults": (Adam, dict()),
    "adam": (Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6)),
    "adam-weight-decay": (Adam, dict(lr=0.01, weight_decay=0.1)),
    "adam-amsgrad": (Adam, dict(lr=0.01, amsgrad=True)),
    "adamw-defaults": (AdamW, dict()),
    "adamw": (AdamW, dict(lr=0.01, weight_decay=0.1)),
    "adamw-amsgrad": (AdamW, dict(lr=0.01, weight_decay=0.05, amsgrad=True)),
}


def gradient_sequence(seed=0, dtype=np.float64):
    """STEPS lists of gradients, one per parameter; some steps leave a parameter without a gradient."""
    rng = np.random.default_rng(seed)
    steps = []
    for step in range(STEPS):
        grads = [rng.standard_normal(shape).astype(dtype) * (10.0 if step == 5 else 1.0) for shape in SHAPES]
        if step in (7, 13):
            grads[2] = None  # PyTorch skips it, and does not count the step in its Adam state
        steps.append(grads)
    return steps


def starting_parameters(dtype=np.float64):
    rng = np.random.default_rng(42)
    return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


@pytest.mark.parametrize("config", ["sgd-momentum", "adam-amsgrad", "adamw"])
def test_state_dict_through_np_savez_resumes_exactly(config, tmp_path):
    optimizer_class, kwargs = CONFIGS[config]
    grads = gradient_sequence()
    params = [Parameter(values) for values in starting_parameters()]
    optimizer = optimizer_class(params, **kwargs)
    scheduler = StepLR(optimizer, step_size=4, gamma=0.5)

    def train(params, optimizer, scheduler, steps):
        for step_grads in steps:
            for param, grad in zip(params, step_grads):
                param.grad = grad
            optimizer.step()
            scheduler.step()

    train(params, optimizer, scheduler, grads[:10])
    saved = optimizer.state_dict()
    assert all(isinstance(value, (np.ndarray, int, float, bool)) for value in saved.values())
    np.savez(tmp_path / "optimizer.npz", **saved)
    np.savez(tmp_path / "scheduler.npz", **scheduler.state_dict())
    np.savez(tmp_path / "model.npz", *[p.numpy() for p in params])
    train(params, optimizer, scheduler, grads[10:])

    with np.load(tmp_path / "model.npz") as model_file:
        resumed = [Parameter(model_file[f"arr_{i}"]) for i in range(len(SHAPES))]
    resumed_optimizer = optimizer_class(resumed, lr=123.0)
    resumed_scheduler = StepLR(resumed_optimizer, step_size=4, gamma=0.5)
    with np.load(tmp_path / "optimizer.npz") as optimizer_file, np.load(tmp_path / "scheduler.npz") as scheduler_file:
        resumed_optimizer.load_state_dict(dict(optimizer_file))
        resumed_scheduler.load_state_dict(dict(scheduler_file))
    train(resumed, resumed_optimizer, resumed_scheduler, grads[10:])
    for a, b in zip(params, resumed):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert resumed_optimizer.lr == optimizer.lr


def test_state_dict_keys_are_pytorch_names_and_copies():
    params = [Parameter(values) for values in starting_parameters()]
    optimizer = Adam(params, amsgrad=True)
    for param, grad in zip(params, gradient_sequence()[0]):
        param.grad = grad
    optimizer.step()
    state = optimizer.state_dict()
    assert set(state) == {"lr", "betas", "eps", "weight_decay", "amsgrad"} | {
        f"state.{i}.{key}" for i in range(3) for key in ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")}
    state["state.0.exp_avg"][...] = 99.0
    assert not np.any(optimizer.state[0]["exp_avg"] == 99.0), "state_dict must copy the arrays"


@pytest.mark.parametrize("bad, match", [
    ({"lr": 0.1, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False, "state.3.momentum_buffer": np.zeros(1)}, "parameter 3"),
    ({"lr": 0.1, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False, "state.0.momentum_buffer": np.zeros(5)}, r"shape \(5,\)"),
    ({"lr": 0.1, "betas": np.array([0.9, 0.999])}, "unknown optimizer state_dict key 'betas'"),
    ({"lr": 0.1}, "lacks the hyperparameters"),
])
def test_load_state_dict_refuses_a_mismatch(bad, match):
    optimizer = SGD([Parameter(np.zeros((3, 4))), Parameter(np.zeros(4))], lr=0.5)
    with pytest.raises(ValueError, match=match):
        optimizer.load_state_dict(bad)
    assert optimizer.lr == 0.5, "a refused state_dict must change nothing"


@pytest.mark.parametrize("make, match", [
    (lambda p: SGD(p, lr=-0.1), "learning rate"),
    (lambda p: SGD(p, momentum=-0.5), "momentum"),
    (lambda p: SGD(p, nesterov=True), "Nesterov"),
    (lambda p: SGD(p, momentum=0.9, nesterov=True, dampening=0.1), "Nesterov"),
    (lambda p: Adam(p, betas=(0.9, 1.0)), "betas"),
    (lambda p: AdamW(p, eps=-1.0), "eps"),
    (lambda p: SGD([], lr=0.1), "empty"),
    (lambda p: SGD([Variable(np.zeros(2))], lr=0.1), "requires_grad"),
    (lambda p: StepLR(SGD(p), step_size=0), "step_size"),
    (lambda p: CosineAnnealingLR(SGD(p), T_max=0), "T_max"),
])
def test_bad_arguments_raise_value_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make([Parameter(np.zeros(2))])


def test_optimizer_over_a_model_updates_its_parameters_in_place():
    model = Sequential(Linear(3, 2))
    weight = model[0].weight
    optimizer = SGD(model.parameters(), lr=0.1)
    before = weight.numpy().copy()
    model(Variable(np.ones((4, 3), dtype=np.float32))).sum().backward()
    optimizer.step()
    assert model[0].weight is weight and weight.dtype == np.float32
    np.testing.assert_allclose(weight.numpy(), before - 0.1 * 4.0, rtol=1e-6)
    optimizer.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    assert weight.grad_fn is None and weight.requires_grad, "an update must not put the parameter into a graph"


def test_cosine_schedule_end_points():
    optimizer = SGD([Parameter(np.zeros(1))], lr=0.2)
    scheduler = CosineAnnealingLR(optimizer, T_max=8, eta_min=0.01)
    rates = []
    for _ in range(8):
        scheduler.step()
        rates.append(optimizer.lr)
    assert rates[3] == pytest.approx(0.01 + 0.19 / 2) and rates[-1] == pytest.approx(0.01)
    assert all(a > b for a, b in zip(rates, rates[1:])), "cosine annealing decreases monotonically over T_max"
    assert math.isclose(CosineAnnealingLR(SGD([Parameter(np.zeros(1))], lr=0.2), T_max=8).lr_at(0), 0.2)
