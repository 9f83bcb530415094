# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Optimizers: turning gradients into better weights
#
# Module 05 gives every parameter a gradient: the direction in which the loss grows fastest. An
# **optimizer** decides how far to move each parameter against it. This module builds the three that
# train almost every network today, with PyTorch's defaults and update rules, so that a run here and a
# run in PyTorch with the same numbers take the same steps:
#
# - `SGD` with momentum, Nesterov momentum and weight decay;
# - `Adam`, which scales each parameter's step by a running estimate of its gradient's size;
# - `AdamW`, Adam with weight decay done right;
#
# and the tools around them: `clip_grad_norm`, learning-rate schedules (`StepLR`,
# `CosineAnnealingLR`) and `state_dict()` / `load_state_dict()` for checkpoints.
#
# **Objectives.** By the end of this module you can:
#
# - write SGD with momentum, Nesterov and weight decay, Adam with bias correction, and AdamW, step for step as PyTorch does;
# - clip gradients by their global norm and schedule the learning rate;
# - save and restore an optimizer's state so that a resumed run takes the same steps;
# - measure the memory an optimizer keeps and how fast each one converges.
#
# | You write here | It becomes | Used by |
# |---|---|---|
# | this notebook, `optimizers.ipynb` | `tinytorch.core.optimizers` | training (08) |
#
# A training step, with everything built so far:
#
# ```python
# optimizer.zero_grad()                   # forget last step's gradients
# loss = loss_fn(model(x), y)             # forward: modules 02-04, building a graph (05-06)
# loss.backward()                         # every parameter's .grad (05)
# optimizer.step()                        # move the parameters (this module)
# ```

# %%
#| default_exp core.optimizers

# %%
#| export
from __future__ import annotations

import math

import numpy as np

from tinytorch.core.autograd import Variable
from tinytorch.core.layers import array_of
import tinytorch.core.operations  # noqa: F401 (module 06: Variable's operators, and module 03's layers trainable)

# %%
# Trainable parameters for the tests and examples below: leaf Variables with requires_grad=True (module 06's
# `Parameter`). The examples also index them and use `**`, and the losses use `exp` and `log`.
from tinytorch.core.operations import Parameter

# %% [markdown]
# ## 1. The optimizer's frame, and plain gradient descent
#
# Every optimizer keeps the list of parameters it updates, a few hyperparameters (`lr`, ...) and,
# per parameter, a small dict of **state** (a momentum buffer, Adam's running averages). The shared
# frame, written once in `Optimizer`:
#
# - `zero_grad()` sets each parameter's `.grad` to `None`. Gradients **accumulate** across
#   `backward()` calls (a value used twice gets both contributions), so without this every step
#   would also follow all the previous steps' gradients.
# - `step()` visits each parameter that has a gradient and calls `update(param, grad, state)`, which
#   each optimizer defines. `param` is the parameter's own NumPy array (`array_of` from module 03), so
#   an update written in place (`param -= ...`) changes the parameter. Updating the array directly,
#   not through Variable operations, also means the update itself is never recorded in a graph.
# - Parameters must be leaf Variables with `requires_grad=True` (what `Module.parameters()` returns);
#   anything else is a `ValueError` that says which one.
#
# **SGD** without extras is gradient descent: $\theta \leftarrow \theta - \eta\, g$, with learning
# rate $\eta$ (`lr`). PyTorch's default `lr` for every optimizer here is $10^{-3}$; we use the same.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "optimizers-base", "locked": false, "solution": true}
#| export
class Optimizer:
    """Base of every optimizer: holds parameters, hyperparameters and per-parameter state.

    A subclass lists its hyperparameter names in `hyperparameters` and defines `update`.
    """

    hyperparameters: tuple[str, ...] = ("lr",)

    def __init__(self, params, lr: float):
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        for index, param in enumerate(self.params):
            if not isinstance(param, Variable) or not param.requires_grad:
                raise ValueError(f"parameter {index} ({type(param).__name__} of shape {getattr(param, 'shape', '?')}) is not a Variable "
                                 "with requires_grad=True, so it can have no gradient to follow")
        if lr < 0:
            raise ValueError(f"learning rate must be >= 0, got {lr}")
        self.lr = lr
        self.state: list[dict] = [{} for _ in self.params]

    def zero_grad(self) -> None:
        """Set every parameter's gradient to None."""
        ### BEGIN SOLUTION
        for param in self.params:
            param.grad = None
        ### END SOLUTION

    def step(self) -> None:
        """Update, in place, every parameter that has a gradient."""
        ### BEGIN SOLUTION
        for param, state in zip(self.params, self.state):
            if param.grad is not None:
                self.update(array_of(param), np.asarray(param.grad), state)
        ### END SOLUTION

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define update(param, grad, state)")

    # Checkpoints: written in section 6 (a method may call a function defined further down).
    def state_dict(self) -> dict:
        return optimizer_state_dict(self)

    def load_state_dict(self, state: dict) -> None:
        load_optimizer_state_dict(self, state)

# %% [markdown]
# ### Test: the frame
#
# A minimal optimizer, plain gradient descent, written as a subclass: one step on
# $f(\theta) = \sum \theta^2$ (gradient $2\theta$) must move $\theta$ to $\theta - 0.1 \cdot 2\theta$.

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-optimizers-base", "locked": true, "points": 2, "solution": false}
def test_unit_optimizer_base():
    class GradientDescent(Optimizer):
        def update(self, param, grad, state):
            param -= self.lr * grad

    theta = Parameter(np.array([1.0, -2.0]))
    frozen = Parameter(np.array([5.0]))
    optimizer = GradientDescent([theta, frozen], lr=0.1)
    (theta * theta).sum().backward()
    try:
        optimizer.step()
    except Exception as error:
        raise AssertionError(f"step should skip a parameter without a gradient (its .grad is None), got "
                             f"{type(error).__name__}: {error}") from None
    assert np.allclose(theta.numpy(), [0.8, -1.6]), f"one step of lr 0.1 on sum(theta^2) should give [0.8, -1.6], got {theta.numpy()}"
    assert frozen.numpy()[0] == 5.0, "a parameter without a gradient should be left alone"
    optimizer.zero_grad()
    assert theta.grad is None and frozen.grad is None, "zero_grad should set every gradient to None"

    seen = []

    class RecordState(Optimizer):
        def update(self, param, grad, state):
            seen.append(state["label"])

    first, second = Parameter(np.zeros(2)), Parameter(np.zeros(3))
    recording = RecordState([first, second], lr=0.1)
    recording.state = [{"label": "first"}, {"label": "second"}]
    first.grad, second.grad = np.ones(2), np.ones(3)
    recording.step()
    assert seen == ["first", "second"], \
        f"step should pass each parameter its own state dict (self.state[i] for parameter i): the updates saw {seen}"
    for bad in [[], [Variable(np.ones(2))], [np.ones(2)]]:
        try:
            GradientDescent(bad, lr=0.1)
        except ValueError:
            continue
        raise AssertionError(f"an optimizer over {bad!r} should raise ValueError")

test_unit_optimizer_base()
print("test_unit_optimizer_base: passed")

# %% [markdown]
# ## 2. SGD: momentum, Nesterov, weight decay
#
# Plain gradient descent zigzags across narrow valleys and crawls along their floor. **Momentum**
# keeps a running sum of past gradients, a velocity $b$, and follows it:
#
# $$g_t = \nabla_\theta L + \lambda\,\theta, \qquad
#   b_t = \mu\, b_{t-1} + (1 - \tau)\, g_t \ \ (b_1 = g_1), \qquad
#   \theta \leftarrow \theta - \eta\, b_t .$$
#
# Zigzag components cancel in $b$ while the steady downhill component adds up, up to $1/(1-\mu)$
# times (10 times for $\mu = 0.9$). $\tau$ (`dampening`, default 0) scales new gradients down.
#
# **Nesterov** momentum looks one step ahead: it follows $g_t + \mu\, b_t$ instead of $b_t$, which
# corrects an overshoot one step earlier. PyTorch requires `momentum > 0` and `dampening = 0` for it.
#
# **Weight decay** $\lambda$ adds $\lambda\theta$ to the gradient, the gradient of an L2 penalty
# $\frac{\lambda}{2}\lVert\theta\rVert^2$: it pulls every weight a little toward zero.
#
# These are PyTorch's exact rules, in PyTorch's order (including $b_1 = g_1$ on the first step). The
# buffer lives in the parameter's state under PyTorch's name, `momentum_buffer`.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "optimizers-sgd", "locked": false, "solution": true}
#| export
class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and weight decay.

    >>> optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)  # doctest: +SKIP
    """

    hyperparameters = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, dampening: float = 0.0):
        super().__init__(params, lr)
        if momentum < 0 or weight_decay < 0:
            raise ValueError(f"momentum and weight_decay must be >= 0, got {momentum} and {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum > 0 and zero dampening")
        self.momentum, self.dampening, self.weight_decay, self.nesterov = momentum, dampening, weight_decay, nesterov

    def update(self, param, grad, state):
        """PyTorch's rule: add weight decay to the gradient; update state["momentum_buffer"]; step by -lr."""
        ### BEGIN SOLUTION
        if self.weight_decay != 0:
            grad = grad + self.weight_decay * param
        if self.momentum != 0:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                buffer = state["momentum_buffer"] = grad.copy()
            else:
                buffer *= self.momentum
                buffer += (1 - self.dampening) * grad
            grad = grad + self.momentum * buffer if self.nesterov else buffer
        param -= self.lr * grad
        ### END SOLUTION

# %% [markdown]
# ### Test: SGD
#
# Two steps by hand, with the gradient held at $g = 1$ and $\theta_0 = 0$, $\eta = 0.1$, $\mu = 0.9$:
# plain SGD moves $-0.1$ twice; momentum moves $-0.1$ then $-0.1 \cdot 1.9$; Nesterov follows
# $g + \mu b$: $-0.1 \cdot 1.9$ then $-0.1 \cdot (1 + 0.9 \cdot 1.9)$.

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-optimizers-sgd", "locked": true, "points": 4, "solution": false}
def two_steps(make_optimizer, start=0.0, gradient=1.0):
    """Positions after each of two steps with a fixed gradient."""
    theta = Parameter(np.array([start]))
    optimizer, positions = make_optimizer([theta]), []
    for _ in range(2):
        theta.grad = np.array([gradient])
        optimizer.step()
        positions.append(float(theta.numpy()[0]))
    return positions


def test_unit_sgd():
    cases = {
        "plain": (lambda p: SGD(p, lr=0.1), [-0.1, -0.2]),
        "momentum": (lambda p: SGD(p, lr=0.1, momentum=0.9), [-0.1, -0.1 - 0.19]),
        "nesterov": (lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True), [-0.19, -0.19 - 0.1 * (1 + 0.9 * 1.9)]),
        "dampening": (lambda p: SGD(p, lr=0.1, momentum=0.9, dampening=0.5), [-0.1, -0.1 - 0.1 * (0.9 + 0.5)]),
    }
    for name, (make, expected) in cases.items():
        got = two_steps(make)
        assert np.allclose(got, expected), f"SGD {name}: positions after two steps should be {expected}, got {got}"
    decayed = two_steps(lambda p: SGD(p, lr=0.1, weight_decay=0.5), start=2.0, gradient=0.0)
    assert np.allclose(decayed, [1.9, 1.805]), f"weight decay 0.5 with zero gradient should shrink 2.0 to 1.9 then 1.805, got {decayed}"
    theta = Parameter(np.array([2.0]))
    theta.grad = np.array([0.0])
    SGD([theta], lr=0.1, weight_decay=0.5).step()
    assert theta.grad[0] == 0.0, \
        f"weight decay must not change the parameter's gradient (write grad = grad + wd * param, not +=): it became {theta.grad}"
    with_momentum = two_steps(lambda p: SGD(p, lr=0.1, momentum=0.9, weight_decay=0.5), start=2.0, gradient=0.0)
    assert np.allclose(with_momentum, [1.9, 1.715]), \
        f"weight decay goes into the gradient before momentum (b2 = 0.9 * 1 + 0.95): expected [1.9, 1.715], got {with_momentum}"
    theta = Parameter(np.zeros(1))
    optimizer = SGD([theta], lr=0.1, momentum=0.9)
    theta.grad = np.array([1.0])
    optimizer.step()
    optimizer.step()  # the same gradient array again
    assert theta.grad[0] == 1.0, f"the momentum buffer must be a copy: the optimizer changed the parameter's gradient to {theta.grad}"
    assert SGD([Parameter(np.zeros(1))]).lr == 1e-3, "the default learning rate should be PyTorch's, 1e-3"
    for bad in [dict(lr=-1), dict(momentum=-0.1), dict(nesterov=True), dict(nesterov=True, momentum=0.9, dampening=0.1)]:
        try:
            SGD([Parameter(np.zeros(1))], **bad)
        except ValueError:
            continue
        raise AssertionError(f"SGD(**{bad}) should raise ValueError")

test_unit_sgd()
print("test_unit_sgd: passed")

# %% [markdown]
# ## 3. Adam and AdamW
#
# Gradients of different parameters can differ in size by orders of magnitude, and one learning rate
# fits none of them well. **Adam** keeps two running averages per parameter, of the gradient and of its
# square, and divides one by the root of the other:
#
# $$m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2,$$
# $$\hat m_t = \frac{m_t}{1 - \beta_1^t}, \qquad \hat v_t = \frac{v_t}{1 - \beta_2^t}, \qquad
#   \theta \leftarrow \theta - \eta\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}.$$
#
# $m$ and $v$ start at zero, so early on they are too small; dividing by $1 - \beta^t$ (**bias
# correction**) undoes that exactly, and the first step has size about $\eta$ for every parameter,
# whatever the scale of its gradient. Defaults (PyTorch's): $\eta = 10^{-3}$, $\beta = (0.9, 0.999)$,
# $\epsilon = 10^{-8}$. With `amsgrad=True`, $v$ in the denominator is replaced by its running maximum.
#
# For Adam, `weight_decay` is added to the gradient, as in SGD ($g_t = \nabla L + \lambda\theta$). But
# then the decay is divided by $\sqrt{\hat v}$ like everything else: weights with large gradients are
# hardly decayed. **AdamW** decouples it: it shrinks the weights directly, $\theta \leftarrow
# \theta(1 - \eta\lambda)$, and then takes the Adam step on the plain gradient. Its default
# $\lambda$ is $10^{-2}$. Both write the arithmetic in PyTorch's order, so that float64 results agree
# to rounding: `exp_avg` is updated as $m + (1 - \beta_1)(g - m)$, and the step as
# $\theta - \frac{\eta}{1-\beta_1^t}\, m \,/\, (\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon)$. The state
# keeps PyTorch's names: `step`, `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "optimizers-adam", "locked": false, "solution": true}
#| export
class Adam(Optimizer):
    """Adam (Kingma & Ba), with PyTorch's defaults; weight_decay is added to the gradient (L2).

    >>> optimizer = Adam(model.parameters(), lr=1e-3)  # doctest: +SKIP
    """

    hyperparameters = ("lr", "betas", "eps", "weight_decay", "amsgrad")
    decoupled_weight_decay = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(params, lr)
        if not all(0.0 <= beta < 1.0 for beta in betas) or len(betas) != 2:
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas}")
        if eps < 0 or weight_decay < 0:
            raise ValueError(f"eps and weight_decay must be >= 0, got {eps} and {weight_decay}")
        self.betas, self.eps, self.weight_decay, self.amsgrad = tuple(betas), eps, weight_decay, amsgrad

    def update(self, param, grad, state):
        """One Adam step in PyTorch's order; AdamW (decoupled_weight_decay) shrinks param instead of adding L2."""
        beta1, beta2 = self.betas
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(param), exp_avg_sq=np.zeros_like(param))
            if self.amsgrad:
                state["max_exp_avg_sq"] = np.zeros_like(param)
        ### BEGIN SOLUTION
        state["step"] += 1
        if self.weight_decay != 0:
            if self.decoupled_weight_decay:
                param *= 1 - self.lr * self.weight_decay
            else:
                grad = grad + self.weight_decay * param
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg += (1 - beta1) * (grad - exp_avg)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        if self.amsgrad:
            np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            exp_avg_sq = state["max_exp_avg_sq"]
        step_size = self.lr / (1 - beta1 ** state["step"])
        denominator = np.sqrt(exp_avg_sq) / math.sqrt(1 - beta2 ** state["step"]) + self.eps
        param -= step_size * exp_avg / denominator
        ### END SOLUTION


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): param *= 1 - lr * weight_decay, then Adam."""

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)

# %% [markdown]
# ### Test: Adam and AdamW

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-optimizers-adam", "locked": true, "points": 4, "solution": false}
def test_unit_adam():
    for scale in [1e-3, 1.0, 1e4]:
        first = two_steps(lambda p: Adam(p, lr=0.01), gradient=scale)[0]
        assert abs(first + 0.01) < 1e-6, f"Adam's first step should be about -lr = -0.01 whatever the gradient's scale ({scale}), got {first}"

    beta1, beta2, lr, eps = 0.9, 0.999, 0.1, 1e-8
    m1, v1 = 0.1 * 2.0, 0.001 * 4.0
    m2, v2 = 0.9 * m1 + 0.1 * -1.0, 0.999 * v1 + 0.001 * 1.0
    theta1 = 1.0 - lr * (m1 / 0.1) / (math.sqrt(v1 / 0.001) + eps)
    theta2 = theta1 - lr * (m2 / (1 - beta1 ** 2)) / (math.sqrt(v2 / (1 - beta2 ** 2)) + eps)
    theta = Parameter(np.array([1.0]))
    adam = Adam([theta], lr=lr)
    for gradient in [2.0, -1.0]:
        theta.grad = np.array([gradient])
        adam.step()
    assert abs(theta.numpy()[0] - theta2) < 1e-12, f"two Adam steps (gradients 2, -1) should reach {theta2:.10f}, got {theta.numpy()[0]:.10f}"
    assert adam.state[0]["step"] == 2 and sorted(adam.state[0]) == ["exp_avg", "exp_avg_sq", "step"], \
        f"Adam's state should hold step, exp_avg and exp_avg_sq, got {adam.state[0]}"

    coupled = two_steps(lambda p: Adam(p, lr=0.1, weight_decay=0.5), start=2.0, gradient=0.0)
    decoupled = two_steps(lambda p: AdamW(p, lr=0.1, weight_decay=0.5), start=2.0, gradient=0.0)
    assert abs(coupled[0] - 1.9) < 1e-6, f"Adam's L2 decay goes through the normalisation: first step -lr, got {coupled[0]}"
    assert abs(decoupled[0] - 1.9) < 1e-12 and abs(decoupled[1] - 1.805) < 1e-12, \
        f"AdamW with a zero gradient should only shrink: 2 -> 1.9 -> 1.805, got {decoupled}"
    shrink_first = 2.0 * (1 - 0.1 * 0.5) - 0.1 * 1.0 / (1.0 + 1e-8)  # first step: m_hat = 1, sqrt(v_hat) = 1
    stepped = two_steps(lambda p: AdamW(p, lr=0.1, weight_decay=0.5), start=2.0, gradient=1.0)[0]
    assert abs(stepped - shrink_first) < 1e-12, \
        f"AdamW shrinks the weights before the Adam step: one step from 2 with gradient 1 should reach {shrink_first:.10f}, got {stepped:.10f}"
    defaults = AdamW([Parameter(np.zeros(1))])
    assert (defaults.lr, defaults.betas, defaults.eps, defaults.weight_decay) == (1e-3, (0.9, 0.999), 1e-8, 1e-2), \
        "AdamW's defaults should be PyTorch's: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 1e-2"
    assert Adam([Parameter(np.zeros(1))]).weight_decay == 0.0, "Adam's default weight_decay is 0"

    def adam_by_hand(gradients, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, amsgrad=False):
        m = v = v_max = 0.0
        theta = 1.0
        for t, g in enumerate(gradients, start=1):
            m, v = beta1 * m + (1 - beta1) * g, beta2 * v + (1 - beta2) * g * g
            v_max = max(v_max, v)
            theta -= lr * (m / (1 - beta1 ** t)) / (math.sqrt((v_max if amsgrad else v) / (1 - beta2 ** t)) + eps)
        return theta

    gradients = [2.0, -1.0, 0.0]  # the second moment shrinks at step 3, where AMSGrad keeps its maximum
    theta = Parameter(np.array([1.0]))
    amsgrad = Adam([theta], lr=0.1, amsgrad=True)
    for gradient in gradients:
        theta.grad = np.array([gradient])
        amsgrad.step()
    expected = adam_by_hand(gradients, amsgrad=True)
    assert abs(theta.numpy()[0] - expected) < 1e-12, \
        f"AMSGrad should divide by the running maximum of v: expected {expected:.10f}, got {theta.numpy()[0]:.10f}"

test_unit_adam()
print("test_unit_adam: passed")

# %% [markdown]
# ## 4. Gradient clipping by norm
#
# One bad batch can produce a gradient hundreds of times larger than usual, and one step along it can
# undo hours of training. **Clipping by norm** treats all gradients as one long vector $g$ and, when
# its length exceeds `max_norm`, scales it down to that length, keeping its direction:
#
# $$\lVert g\rVert = \sqrt{\textstyle\sum_{p}\sum_i g_{p,i}^2}, \qquad
#   g \leftarrow g \cdot \min\!\left(1, \frac{\text{max\_norm}}{\lVert g\rVert + 10^{-6}}\right).$$
#
# As PyTorch's `clip_grad_norm_`, it returns the norm *before* clipping (worth logging: a growing norm
# warns of trouble), skips parameters without a gradient, and goes between `backward()` and `step()`.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "optimizers-clip", "locked": false, "solution": true}
#| export
def clip_grad_norm(params, max_norm: float) -> float:
    """Scale all gradients together so that their total L2 norm is at most `max_norm`; return the norm before."""
    ### BEGIN SOLUTION
    with_grad = [param for param in params if param.grad is not None]
    total = math.sqrt(sum(float(np.sum(np.square(param.grad, dtype=np.float64))) for param in with_grad))
    scale = max_norm / (total + 1e-6)
    if scale < 1.0:
        for param in with_grad:
            param.grad = param.grad * scale  # a new array (a Python float keeps its dtype), never a shared one
    return total
    ### END SOLUTION

# %% [markdown]
# ### Test: clip_grad_norm

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-optimizers-clip", "locked": true, "points": 2, "solution": false}
def test_unit_clip_grad_norm():
    a, b, c = Parameter(np.zeros(2)), Parameter(np.zeros(1)), Parameter(np.zeros(3))
    a.grad, b.grad = np.array([3.0, 0.0]), np.array([4.0])
    norm = clip_grad_norm([a, b, c], max_norm=1.0)
    assert abs(norm - 5.0) < 1e-12, f"the returned norm should be the norm before clipping, 5, got {norm}"
    assert np.allclose(a.grad, [0.6, 0.0], atol=1e-6) and np.allclose(b.grad, [0.8], atol=1e-6), \
        f"gradients should be scaled by 1/5 together, got {a.grad}, {b.grad}"
    assert c.grad is None, "a parameter without a gradient should stay without one"
    a.grad = np.array([0.3, 0.4])
    assert abs(clip_grad_norm([a], max_norm=1.0) - 0.5) < 1e-12 and np.allclose(a.grad, [0.3, 0.4]), \
        "gradients already within max_norm should not change"
    a.grad = np.array([3.0, 4.0])
    old = a.grad
    clip_grad_norm([a], max_norm=1.0)
    assert np.allclose(a.grad, [0.6, 0.8], atol=1e-6) and np.allclose(old, [3.0, 4.0]), \
        ("clipping should give the parameter a new, scaled array, not scale its old one in place (another parameter "
         f"or the caller may share it): the old array became {old}")
    small = Parameter(np.zeros(2, dtype=np.float32))
    small.grad = np.array([30.0, 40.0], dtype=np.float32)
    clip_grad_norm([small], 5.0)
    assert small.grad.dtype == np.float32, f"clipping should keep the gradient's dtype, got {small.grad.dtype}"

test_unit_clip_grad_norm()
print("test_unit_clip_grad_norm: passed")

# %% [markdown]
# ## 5. Learning-rate schedules
#
# A large learning rate makes fast early progress; a small one settles into a minimum. A **schedule**
# lowers `optimizer.lr` as training goes on. Call `scheduler.step()` once per epoch (after the
# optimizer's steps); `last_epoch` counts those calls, and the rate depends only on it and on the
# initial rate `base_lr`:
#
# - `StepLR(optimizer, step_size, gamma=0.1)`: multiply by $\gamma$ every `step_size` epochs,
#   $\eta_e = \eta_0\, \gamma^{\lfloor e / \text{step\_size} \rfloor}$.
# - `CosineAnnealingLR(optimizer, T_max, eta_min=0)`: half a cosine from $\eta_0$ down to
#   $\eta_{\min}$ over `T_max` epochs, $\eta_e = \eta_{\min} + \frac12(\eta_0 - \eta_{\min})
#   \bigl(1 + \cos(\pi e / T_{\max})\bigr)$: slow at first, fastest in the middle, gentle at the end.
#
# These closed forms are what PyTorch's schedulers compute (PyTorch updates them step by step, which
# agrees up to rounding). Schedules keep `state_dict()` too, so a resumed run continues the curve.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "optimizers-schedules", "locked": false, "solution": true}
#| export
class LRScheduler:
    """Sets `optimizer.lr` from the number of `step()` calls so far (`last_epoch`) and the initial rate."""

    def __init__(self, optimizer: Optimizer):
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError(f"{type(self).__name__} must define lr_at(epoch)")

    def step(self) -> None:
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)

    def get_last_lr(self) -> float:
        """The current rate (a number; PyTorch returns a list, one per parameter group)."""
        return self.optimizer.lr

    def state_dict(self) -> dict:
        return {"base_lr": self.base_lr, "last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.base_lr, self.last_epoch = float(state["base_lr"]), int(state["last_epoch"])
        self.optimizer.lr = self.lr_at(self.last_epoch)


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        if step_size < 1:
            raise ValueError(f"step_size must be a positive number of epochs, got {step_size}")
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, gamma

    def lr_at(self, epoch: int) -> float:
        ### BEGIN SOLUTION
        return self.base_lr * self.gamma ** (epoch // self.step_size)
        ### END SOLUTION


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        if T_max < 1:
            raise ValueError(f"T_max must be a positive number of epochs, got {T_max}")
        super().__init__(optimizer)
        self.T_max, self.eta_min = T_max, eta_min

    def lr_at(self, epoch: int) -> float:
        ### BEGIN SOLUTION
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        ### END SOLUTION

# %% [markdown]
# ### Test: schedules

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-optimizers-schedules", "locked": true, "points": 2, "solution": false}
def test_unit_schedules():
    optimizer = SGD([Parameter(np.zeros(1))], lr=1.0)
    scheduler = StepLR(optimizer, step_size=2, gamma=0.5)
    rates = []
    for _ in range(5):
        scheduler.step()
        rates.append(optimizer.lr)
    assert np.allclose(rates, [1.0, 0.5, 0.5, 0.25, 0.25]), f"StepLR(2, 0.5) after epochs 1..5 should be 1, .5, .5, .25, .25, got {rates}"

    optimizer = SGD([Parameter(np.zeros(1))], lr=0.1)
    cosine = CosineAnnealingLR(optimizer, T_max=4, eta_min=0.02)
    rates = []
    for _ in range(4):
        cosine.step()
        rates.append(cosine.get_last_lr())
    expected = [0.02 + 0.08 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(1, 5)]
    assert np.allclose(rates, expected), f"cosine schedule should be {np.round(expected, 4)}, got {np.round(rates, 4)}"
    assert abs(rates[-1] - 0.02) < 1e-12, f"after T_max epochs the rate should be eta_min, got {rates[-1]}"

    resumed = CosineAnnealingLR(SGD([Parameter(np.zeros(1))], lr=0.5), T_max=4, eta_min=0.02)
    resumed.load_state_dict(cosine.state_dict())
    assert abs(resumed.optimizer.lr - rates[-1]) < 1e-12, "a scheduler restored from state_dict should set the same rate"

test_unit_schedules()
print("test_unit_schedules: passed")

# %% [markdown]
# ## 6. Saving and restoring an optimizer
#
# A checkpoint must hold the optimizer's state as well as the model's: restarting Adam with zero
# averages (or SGD with an empty momentum buffer) disturbs training for many steps. `state_dict()`
# returns a **flat** dict of numbers and NumPy arrays (so module 08 can save it with `np.savez`
# next to the model's):
#
# ```
# {"lr": 0.001, "betas": array([0.9, 0.999]), "eps": 1e-08, "weight_decay": 0.0, "amsgrad": False,
#  "state.0.step": 12, "state.0.exp_avg": array(...), "state.0.exp_avg_sq": array(...), "state.1.step": ...}
# ```
#
# The index is the parameter's position in the list the optimizer was built with, so restore into an
# optimizer over the same model's `parameters()`. `load_state_dict` checks every key and shape
# before changing anything, and copies the arrays, so the saved dict is never aliased.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "optimizers-state-dict", "locked": false, "solution": true}
#| export
def optimizer_state_dict(optimizer: Optimizer) -> dict:
    """Hyperparameters (tuples as arrays) and per-parameter state as 'state.<index>.<name>', all copied."""
    ### BEGIN SOLUTION
    flat = {}
    for name in optimizer.hyperparameters:
        value = getattr(optimizer, name)
        flat[name] = np.array(value) if isinstance(value, tuple) else value
    for index, state in enumerate(optimizer.state):
        for key, value in state.items():
            flat[f"state.{index}.{key}"] = value.copy() if isinstance(value, np.ndarray) else value
    return flat
    ### END SOLUTION


def load_optimizer_state_dict(optimizer: Optimizer, flat: dict) -> None:
    """Restore what `optimizer_state_dict` returned; a ValueError names any unknown key, bad index or shape first."""
    ### BEGIN SOLUTION
    hyperparameters, states = {}, [{} for _ in optimizer.params]
    for key, value in flat.items():
        if key in optimizer.hyperparameters:
            hyperparameters[key] = value
            continue
        parts = key.split(".")
        if len(parts) != 3 or parts[0] != "state" or not parts[1].isdigit():
            raise ValueError(f"unknown optimizer state_dict key {key!r} for {type(optimizer).__name__}")
        index = int(parts[1])
        if index >= len(optimizer.params):
            raise ValueError(f"state_dict key {key!r} is for parameter {index}, but this optimizer has {len(optimizer.params)}")
        param = array_of(optimizer.params[index])
        if np.ndim(value):  # an array: copied, in the parameter's dtype, so the saved dict is never aliased
            if np.shape(value) != param.shape:
                raise ValueError(f"state_dict entry {key!r} has shape {np.shape(value)}, but parameter {index} has shape {param.shape}")
            value = np.array(value, dtype=param.dtype)
        elif isinstance(value, np.ndarray):  # a number that went through np.save comes back as a 0-d array
            value = value.item()
        states[index][parts[2]] = value
    missing = [name for name in optimizer.hyperparameters if name not in hyperparameters]
    if missing:
        raise ValueError(f"state_dict lacks the hyperparameters {missing} of {type(optimizer).__name__}")
    for name, value in hyperparameters.items():
        current = getattr(optimizer, name)
        if isinstance(current, tuple):
            value = tuple(np.asarray(value, dtype=float).tolist())
        else:
            value = bool(value) if isinstance(current, bool) else float(value)
        setattr(optimizer, name, value)
    optimizer.state = states
    ### END SOLUTION

# %% [markdown]
# ### Test: state_dict and load_state_dict
#
# Train for three steps, save, take two more steps; then restore the save into a fresh optimizer and a
# copy of the first parameters, take the same two steps, and compare: the results must be identical.

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-optimizers-state-dict", "locked": true, "points": 3, "solution": false}
def test_unit_optimizer_state_dict():
    gradients = [np.array([0.5, -1.0]), np.array([1.5, 0.2]), np.array([-0.3, 0.7]), np.array([1.0, 1.0]), np.array([0.1, -2.0])]
    for make in [lambda p: SGD(p, lr=0.1, momentum=0.9), lambda p: Adam(p, lr=0.1, amsgrad=True)]:
        theta = Parameter(np.array([1.0, 2.0]))
        optimizer = make([theta])
        for gradient in gradients[:3]:
            theta.grad = gradient
            optimizer.step()
        saved, saved_theta = optimizer.state_dict(), theta.numpy().copy()
        assert all(isinstance(v, (np.ndarray, int, float, bool)) for v in saved.values()), f"state_dict should hold only arrays and numbers: {saved}"
        at_save = {key: np.copy(value) for key, value in saved.items()}
        for gradient in gradients[3:]:
            theta.grad = gradient
            optimizer.step()
        optimizer.state_dict()  # (read again: through tito's judge, an array shows its changes when it is sent again)
        moved = [key for key in at_save if not np.array_equal(at_save[key], saved[key])]
        assert not moved, f"{type(optimizer).__name__}: state_dict should hold copies; the saved {moved} changed as training went on"
        again = Parameter(saved_theta)
        restored = make([again])
        restored.lr = 123.0  # must be overwritten by the saved value
        kept = {key: np.copy(value) for key, value in saved.items()}
        restored.load_state_dict(saved)
        for gradient in gradients[3:]:
            again.grad = gradient
            restored.step()
        assert np.array_equal(again.numpy(), theta.numpy()), f"{type(optimizer).__name__}: resumed run should match, got {again.numpy()} vs {theta.numpy()}"
        changed = [key for key in kept if not np.array_equal(kept[key], saved[key])]
        assert not changed, f"{type(optimizer).__name__}: load_state_dict should copy the arrays; the restored optimizer changed the saved {changed}"
    refused = {
        "state.5.exp_avg (there is no parameter 5)": {**saved, "state.5.exp_avg": np.zeros(2)},
        "state.1.exp_avg (the only parameter is number 0)": {**saved, "state.1.exp_avg": np.zeros(2)},
        "state.0.exp_avg of a wrong shape": {**saved, "state.0.exp_avg": np.zeros(3)},
        "the unknown key 'bogus'": {**saved, "bogus": 1},
        "a state_dict without 'lr'": {key: value for key, value in saved.items() if key != "lr"},
    }
    for what, bad in refused.items():
        theta = Parameter(np.zeros(2))
        target = Adam([theta], amsgrad=True)
        theta.grad = np.array([1.0, -1.0])
        target.step()
        before = {key: np.copy(value) for key, value in target.state[0].items()}
        try:
            target.load_state_dict(bad)
        except ValueError:
            pass
        except Exception as error:
            raise AssertionError(f"load_state_dict should refuse {what} with a ValueError, got {type(error).__name__}: {error}") from None
        else:
            raise AssertionError(f"load_state_dict should refuse {what}")
        after = target.state[0]
        kept = target.lr == 1e-3 and sorted(after) == sorted(before) and all(np.array_equal(after[key], before[key]) for key in before)
        assert kept, f"a refused load_state_dict ({what}) should leave the optimizer as it was: state {before} became {dict(after)}"

test_unit_optimizer_state_dict()
print("test_unit_optimizer_state_dict: passed")

# %% [markdown]
# ## 7. Systems analysis: memory, speed of convergence, cost of a step
#
# **Memory.** Optimizer state for the 64-128-10 MLP of module 03 after one step, measured from the
# arrays in `state_dict()`, as a multiple of the parameters' own memory.

# %%
from tinytorch.core.activations import ReLU, Tanh
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss, MSELoss
from tinytorch.core.tensor import Tensor


def mlp(seed=0):
    rng = np.random.default_rng(seed)
    return Sequential(Linear(64, 128, rng=rng), ReLU(), Linear(128, 10, rng=rng))


print(f"{'optimizer':24} {'state KB':>9} {'x parameters':>13}")
for name, make in [("SGD", lambda p: SGD(p, lr=0.1)), ("SGD, momentum 0.9", lambda p: SGD(p, lr=0.1, momentum=0.9)),
                   ("Adam", lambda p: Adam(p)), ("Adam, amsgrad", lambda p: Adam(p, amsgrad=True))]:
    model = mlp()
    optimizer = make(model.parameters())
    for param in model.parameters():
        param.grad = np.ones(param.shape, dtype=np.float32)
    optimizer.step()
    state_bytes = sum(v.nbytes for k, v in optimizer.state_dict().items() if k.startswith("state.") and isinstance(v, np.ndarray))
    param_bytes = sum(array_of(p).nbytes for p in model.parameters())
    print(f"{name:24} {state_bytes / 1024:>9.1f} {state_bytes / param_bytes:>13.1f}")

# %% [markdown]
# **Convergence.** The Rosenbrock function $f(x, y) = (1 - x)^2 + 100(y - x^2)^2$ has its minimum
# at $(1, 1)$ at the bottom of a long, curved, narrow valley: the kind of landscape where plain gradient
# descent crawls. From $(-1.5, 2)$, 2000 steps with each optimizer; we print the distance to the
# minimum at checkpoints. The valley's walls are steep (curvature about 1000 near the minimum, 2000 at
# the start), and gradient descent is only stable while $\eta$ stays below about 2 / curvature, so every
# SGD variant gets $\eta = 10^{-3}$ (at $2 \cdot 10^{-3}$ Nesterov already diverges, at
# $3 \cdot 10^{-3}$ all do). Adam's step size does not depend on the curvature that way.

# %%
def rosenbrock_distances(make, steps=2000, report=(100, 500, 2000)):
    point = Parameter(np.array([-1.5, 2.0]))
    optimizer, distances = make([point]), {}
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        x, y = point[0], point[1]
        loss = (1 - x) ** 2 + 100 * (y - x * x) ** 2
        loss.backward()
        optimizer.step()
        if step in report:
            distances[step] = float(np.hypot(*(point.numpy() - 1)))
    return distances


print(f"{'optimizer':30} {'after 100':>10} {'after 500':>10} {'after 2000':>11}")
for name, make in [("SGD lr 1e-3", lambda p: SGD(p, lr=1e-3)),
                   ("SGD lr 1e-3, momentum 0.9", lambda p: SGD(p, lr=1e-3, momentum=0.9)),
                   ("SGD lr 1e-3, Nesterov 0.9", lambda p: SGD(p, lr=1e-3, momentum=0.9, nesterov=True)),
                   ("Adam lr 0.05", lambda p: Adam(p, lr=0.05))]:
    distances = rosenbrock_distances(make)
    print(f"{name:30} " + " ".join(f"{distances[s]:>10.4f}" for s in (100, 500)) + f" {distances[2000]:>11.2e}")

# %% [markdown]
# **Cost of a step.** For the same MLP on a batch of 64 examples: the time of the forward and backward
# pass, and of `step()` for each optimizer. The optimizer's arithmetic is a few passes over 9,610
# numbers, far less than the passes' matrix products; the last line says how the times compare here (at
# this size Python's fixed cost per operation counts too, and Adam makes several NumPy calls per parameter).

# %%
from tinytorch.core.tensor import best_time


model, loss_fn = mlp(), CrossEntropyLoss()
rng = np.random.default_rng(0)
inputs, labels = Tensor(rng.standard_normal((64, 64)).astype(np.float32)), rng.integers(0, 10, 64)


def forward_backward():
    model.zero_grad()
    loss_fn(model(inputs), labels).backward()


passes = best_time(forward_backward)
print(f"forward + backward: {passes * 1e6:8.1f} us")
forward_backward()
step_times = {}
for name, optimizer in [("SGD step", SGD(model.parameters(), lr=1e-3)),
                        ("SGD momentum step", SGD(model.parameters(), lr=1e-3, momentum=0.9)),
                        ("Adam step", Adam(model.parameters(), lr=1e-6)), ("AdamW step", AdamW(model.parameters(), lr=1e-6))]:
    step_times[name] = best_time(optimizer.step)
    print(f"{name:19} {step_times[name] * 1e6:8.1f} us")
slowest = max(step_times, key=step_times.get)
print(f"forward + backward take x{passes / step_times[slowest]:.1f} the slowest step ({slowest})")

# %% [markdown]
# ## 8. Reflection
#
# Answer in a sentence or three each.

# %% [markdown]
# **Q1.** You trained with Adam for 10 epochs, saved only `model.state_dict()`, and resumed with a new
# Adam optimizer. The loss jumps up for a while after resuming. Why, and what should the checkpoint
# have held?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-optimizers-resume", "locked": false, "points": 2, "solution": true}
# The new Adam starts with zero averages and step 0: bias correction then makes its first steps about
# `lr` in size for every parameter, regardless of the gradient history, which is much larger than the
# small, well-scaled steps it was taking late in training. The checkpoint should also hold
# `optimizer.state_dict()` (the step counts, `exp_avg`, `exp_avg_sq`) and the scheduler's state.

# %% [markdown]
# **Q2.** With SGD, `weight_decay` (L2 in the gradient) and decoupled decay are the same thing up to a
# rescaling of $\lambda$. Why are they different for Adam, and which parameters does Adam's L2 decay
# hardly regularise?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-optimizers-adamw", "locked": false, "points": 2, "solution": true}
# In SGD the decay term $\lambda\theta$ is multiplied by the same learning rate as the gradient, so it is
# simply a shrink of $\eta\lambda\theta$ per step. In Adam it is added to the gradient and then divided
# by $\sqrt{\hat v}$, so weights whose gradients are large (large $\hat v$) get a much smaller effective
# decay than weights with small gradients. AdamW shrinks every weight by the same factor
# $1 - \eta\lambda$, independent of its gradient history.

# %% [markdown]
# ## Summary
#
# `SGD`, `Adam` and `AdamW` follow PyTorch's rules and defaults step for step; `clip_grad_norm` guards
# against exploding gradients; `StepLR` and `CosineAnnealingLR` lower the learning rate; and every
# optimizer's state fits in a flat dict of numbers and arrays for checkpoints. Export with
# `tito module complete 07_optimizers`; module 08 puts it all together to train on real digits.
