"""Module 07, tinytorch.core.optimizers, against PyTorch: SGD (momentum, Nesterov, dampening, weight decay), Adam and
AdamW (weight decay, amsgrad) take torch.optim's steps for 20 steps of the same gradients, some missing, in float64
and float32, with PyTorch's defaults; clip_grad_norm clips as clip_grad_norm_; the schedules give PyTorch's learning
rates."""
import numpy as np
import pytest

from tinytorch.core.operations import Parameter
from tinytorch.core.optimizers import SGD, Adam, AdamW, CosineAnnealingLR, StepLR, clip_grad_norm

from test_optimizers import CONFIGS, SHAPES, gradient_sequence, starting_parameters
from torch_oracle import assert_close, torch


def run_ours(optimizer_class, kwargs, dtype=np.float64):
    params = [Parameter(values) for values in starting_parameters(dtype)]
    optimizer = optimizer_class(params, **kwargs)
    for grads in gradient_sequence(dtype=dtype):
        optimizer.zero_grad()
        for param, grad in zip(params, grads):
            param.grad = grad
        optimizer.step()
    return [param.numpy() for param in params]


def run_torch(optimizer_class, kwargs, dtype=np.float64):
    params = [torch.tensor(values, requires_grad=True) for values in starting_parameters(dtype)]
    optimizer = getattr(torch.optim, optimizer_class.__name__)(params, **kwargs)
    for grads in gradient_sequence(dtype=dtype):
        optimizer.zero_grad()
        for param, grad in zip(params, grads):
            param.grad = None if grad is None else torch.tensor(grad)
        optimizer.step()
    return [param.detach().numpy() for param in params]


@pytest.mark.parametrize("config", CONFIGS)
def test_twenty_steps_match_pytorch_float64(config):
    """Tolerance: float64, rtol 1e-12 and atol 1e-14 on every parameter after 20 steps (seen: at most 1e-14)."""
    optimizer_class, kwargs = CONFIGS[config]
    for index, (ours, theirs) in enumerate(zip(run_ours(optimizer_class, kwargs), run_torch(optimizer_class, kwargs))):
        assert_close(ours, theirs, f"{config}: parameter {index}", dict(rtol=1e-12, atol=1e-14))


@pytest.mark.parametrize("config", ["sgd-nesterov-weight-decay", "adam-defaults", "adamw"])
def test_twenty_steps_match_pytorch_float32(config):
    """Tolerance: float32, rtol 1e-5 and atol 1e-6 after 20 steps (rounding order differs slightly)."""
    optimizer_class, kwargs = CONFIGS[config]
    for index, (ours, theirs) in enumerate(zip(run_ours(optimizer_class, kwargs, np.float32),
                                               run_torch(optimizer_class, kwargs, np.float32))):
        assert ours.dtype == np.float32
        assert_close(ours, theirs, f"{config}: parameter {index}", dict(rtol=1e-5, atol=1e-6))


def test_defaults_are_pytorchs():
    p = [Parameter(np.zeros(1))]
    t = [torch.zeros(1, requires_grad=True)]
    for ours, theirs, names in [(SGD(p), torch.optim.SGD(t), ["lr", "momentum", "dampening", "weight_decay", "nesterov"]),
                                (Adam(p), torch.optim.Adam(t), ["lr", "betas", "eps", "weight_decay", "amsgrad"]),
                                (AdamW(p), torch.optim.AdamW(t), ["lr", "betas", "eps", "weight_decay", "amsgrad"])]:
        for name in names:
            assert getattr(ours, name) == theirs.defaults[name], (type(ours).__name__, name)


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1000.0])
def test_clip_grad_norm_matches_pytorch(max_norm):
    """Tolerance: float64, rtol 1e-12 on the returned norm and on the clipped gradients."""
    grads = gradient_sequence()[0]
    ours = [Parameter(np.zeros(shape)) for shape in SHAPES]
    theirs = [torch.zeros(shape, dtype=torch.float64, requires_grad=True) for shape in SHAPES]
    for a, b, grad in zip(ours, theirs, grads):
        a.grad, b.grad = grad.copy(), torch.tensor(grad)
    norm = clip_grad_norm(ours, max_norm)
    norm_t = torch.nn.utils.clip_grad_norm_(theirs, max_norm)
    assert_close(norm, norm_t, "the norm", dict(rtol=1e-12, atol=0))
    for index, (a, b) in enumerate(zip(ours, theirs)):
        assert_close(a.grad, b.grad, f"the clipped gradient {index}", dict(rtol=1e-12, atol=0))


@pytest.mark.parametrize("make, make_torch", [
    (lambda o: StepLR(o, step_size=3, gamma=0.5), lambda torch, o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
    (lambda o: CosineAnnealingLR(o, T_max=10, eta_min=0.001),
     lambda torch, o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.001)),
], ids=["step", "cosine"])
def test_schedules_match_pytorch_for_25_epochs(make, make_torch):
    """Tolerance: rtol 1e-9, atol 1e-12 on the learning rate at each epoch (PyTorch updates cosine recursively)."""
    ours = make(SGD([Parameter(np.zeros(1))], lr=0.1))
    optimizer_t = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    theirs = make_torch(torch, optimizer_t)
    for epoch in range(25):
        optimizer_t.step()
        theirs.step()
        ours.step()
        assert_close(ours.get_last_lr(), theirs.get_last_lr()[0], f"learning rate after epoch {epoch}", dict(rtol=1e-9, atol=1e-12))
