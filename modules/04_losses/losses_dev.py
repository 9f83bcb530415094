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
# # Losses: one number that says how wrong the network is
#
# Training needs a single number to make smaller. A **loss function** compares the network's
# predictions with the targets and returns that number: a scalar, averaged over the batch. This
# module builds the three classics:
#
# | loss | prediction | target | typical task |
# |---|---|---|---|
# | `MSELoss` | any real numbers | same shape | regression |
# | `CrossEntropyLoss` | logits `(N, C)` | class indices `(N,)` or probabilities (one-hot) `(N, C)` | classification into C classes |
# | `NLLLoss` (given) | log-probabilities `(N, C)` | class indices `(N,)` | the same, after your own log-softmax |
# | `BCELoss` | probabilities in [0, 1] | 0/1 (or in [0, 1]), same shape | yes/no questions |
#
# **Objectives.** By the end of this module you can:
#
# - write MSE, cross-entropy (from logits, with log-sum-exp) and binary cross-entropy that stay in the graph;
# - check the cross-entropy gradient $(p - y)/N$ by finite differences;
# - refuse shapes and labels that would silently give a wrong loss, with errors that name them;
# - keep losses finite for extreme logits and for probabilities of exactly 0 or 1.
#
# | You write here | It becomes | Used by |
# |---|---|---|
# | this notebook, `losses.ipynb` | `tinytorch.core.losses` | optimizers (07), training (08) |
#
# ## The loss must stay in the graph
#
# In module 05, `loss.backward()` walks back from the loss through every operation that produced it,
# down to the weights. That only works if the loss *is* the end of that chain. A loss that takes the
# numbers out (`prediction.numpy()`), computes the result in NumPy and wraps it in a new Tensor looks
# right (the value is correct) but is a fresh leaf: backward stops there and nothing learns. The
# course's earlier losses did exactly that, and their models stayed at chance accuracy.
#
# So, as in module 02, every loss here is written with operations that `Tensor` has and `Variable`
# will have. Raw numbers from `.numpy()` are used only where no gradient is needed: to **check** the
# inputs, to pick out **constant** shifts and masks, and to **index**. The targets are constants
# too; they are converted to the prediction's dtype, so a float32 network gets a float32 loss.

# %%
#| default_exp core.losses

# %%
#| export
from __future__ import annotations

import math

import numpy as np

from tinytorch.core.tensor import Tensor

# %%
# Module 02's `Traced` probe: the tests below check with it that every loss stays in the graph.
from tinytorch.core.activations import Traced, assert_in_graph

# %% [markdown]
# ## 1. Shared pieces, and the mean squared error
#
# All losses are called the same way, `loss_fn(prediction, target)`, and need the same two
# conversions: a prediction that is a NumPy array or a list becomes a Tensor (a Tensor or Variable is
# used as it is), and a target becomes a constant of the prediction's dtype (unless it is itself a
# Variable that requires a gradient, which then stays in the graph).
#
# The **mean squared error** averages the squared differences over all entries:
#
# $$\mathrm{MSE}(\hat y, y) = \frac{1}{n}\sum_{i=1}^{n} (\hat y_i - y_i)^2, \qquad
#   \frac{\partial\,\mathrm{MSE}}{\partial \hat y_i} = \frac{2}{n}(\hat y_i - y_i).$$
#
# Prediction and target must have the **same shape**. Broadcasting would otherwise turn a classic
# mistake into a silent one: predictions of shape `(N, 1)` against targets of shape `(N,)` broadcast
# to `(N, N)`, and the "loss" compares every prediction with every target. (PyTorch only warns.)
# We raise a `ValueError` that names both shapes. `diff * diff` rather than `diff ** 2` keeps it to
# cheap operations: three in all.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "losses-mse", "locked": false, "solution": true}
#| export
def as_tensor(value):
    """A Tensor or Variable (anything with `.numpy()`) as it is; an array, list or number as a Tensor."""
    return value if hasattr(value, "numpy") else Tensor(value)


def values_of(value) -> np.ndarray:
    """The numbers of a Tensor, Variable, array, list or number, as a NumPy array (outside any graph)."""
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def as_target(target, prediction):
    """A constant Tensor of the prediction's dtype; a Variable that requires a gradient stays as it is."""
    if getattr(target, "requires_grad", False):
        return target
    return Tensor(values_of(target), dtype=prediction.dtype)


class Loss:
    """Base of every loss: `loss_fn(prediction, target)` runs `loss_fn.forward(prediction, target)`."""

    def forward(self, prediction, target):
        raise NotImplementedError(f"{type(self).__name__} must define forward(prediction, target)")

    def __call__(self, prediction, target):
        return self.forward(prediction, target)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MSELoss(Loss):
    """Mean of (prediction - target)**2 over all entries; shapes must match.

    >>> MSELoss()(Tensor([1.0, 2.0]), Tensor([1.0, 4.0]))
    Tensor(2., dtype=float32)
    """

    def forward(self, prediction, target):
        prediction = as_tensor(prediction)
        target = as_target(target, prediction)
        ### BEGIN SOLUTION
        if prediction.shape != target.shape:
            raise ValueError(f"MSELoss needs prediction and target of the same shape, got {prediction.shape} and {target.shape}")
        diff = prediction - target
        return (diff * diff).mean()
        ### END SOLUTION

# %% [markdown]
# ### Test: MSELoss

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-losses-mse", "locked": true, "points": 2, "solution": false}
def test_unit_mse():
    loss = MSELoss()(Tensor([[1.0, 2.0], [3.0, 4.0]]), Tensor([[1.0, 0.0], [0.0, 4.0]]))
    assert isinstance(loss, Tensor) and loss.shape == (), f"the loss should be a scalar Tensor, got {loss!r}"
    assert abs(loss.item() - 13 / 4) < 1e-6, f"(0 + 4 + 9 + 0) / 4 = 3.25, got {loss.item()}"
    assert loss.dtype == np.float32, f"a float32 prediction should give a float32 loss, got {loss.dtype}"
    assert MSELoss()(Tensor([1.0, 2.0]), [1, 2]).item() == 0.0, "a list target should work and give 0 for a perfect prediction"
    assert MSELoss()(Tensor([0.5], dtype=np.float64), np.array([0])).dtype == np.float64, "an int target should take the prediction's dtype"
    try:
        MSELoss()(Tensor(np.zeros((4, 1))), Tensor(np.zeros(4)))
    except ValueError as error:
        assert "(4, 1)" in str(error) and "(4,)" in str(error), f"the error should name both shapes: {error}"
    else:
        raise AssertionError("MSELoss of shapes (4, 1) and (4,) should raise ValueError, not broadcast to (4, 4)")
    traced = Traced([[1.0, 2.0]])
    assert_in_graph(MSELoss()(traced, Tensor([[0.0, 1.0]])), traced, "MSELoss", "the prediction")

test_unit_mse()
print("test_unit_mse: passed")

# %% [markdown]
# ## 2. Cross-entropy from logits, with log-sum-exp
#
# A classifier outputs one **logit** per class; softmax (module 02) turns them into probabilities
# $p_{c} = e^{z_{c}} / \sum_j e^{z_j}$. Cross-entropy is the average negative log-probability of the
# correct class $y_n$:
#
# $$\mathrm{CE} = -\frac{1}{N}\sum_{n} \log p_{n, y_n}, \qquad
#   \log p_{n,c} = z_{n,c} - \log\sum_j e^{z_{n,j}}.$$
#
# The right-hand form, **log-softmax**, matters. Computing `softmax` first and then `log` fails twice:
# `exp` overflows for large logits, and a probability that rounds to 0 gives $\log 0 = -\infty$.
# The log-sum-exp trick shifts by the row maximum $m_n$ (a constant, as in module 02):
#
# $$\log\sum_j e^{z_{n,j}} = m_n + \log\sum_j e^{z_{n,j} - m_n}
#   \quad\Rightarrow\quad \log p_{n,c} = s_{n,c} - \log\sum_j e^{s_{n,j}},\ s = z - m.$$
#
# Every exponent is $\le 0$ and the sum is $\ge 1$, so nothing overflows and the log is always finite.
# Its gradient is the reason cross-entropy and softmax are always paired:
#
# $$\frac{\partial\,\mathrm{CE}}{\partial z_{n,c}} = \frac{1}{N}\bigl(p_{n,c} - \mathbb{1}[c = y_n]\bigr):$$
#
# predicted probabilities minus the truth, never saturating, however wrong the network is.
#
# **Targets** come in two forms, told apart by their shape:
#
# - class indices, shape `(N,)`: integers in `[0, C)`. We pick out $\log p_{n, y_n}$ with one indexing
#   operation, `log_probs[np.arange(N), y]` (in module 06 its gradient is scattered back into place);
# - one-hot rows (or any probability distributions), shape `(N, C)`:
#   $\mathrm{CE} = -\frac1N \sum_{n,c} y_{n,c} \log p_{n,c}$.
#
# Anything else is a `ValueError` naming the shapes, and so is a class index outside `[0, C)` or one
# that is not a whole number; the message names the bad values. (Silently indexing with `-1` would pick
# the last class and train on the wrong label.)
#
# You write `sample_losses`: one loss per row of `log_probs`. The rest of the class is given and
# follows PyTorch: `reduction="mean"` (or `"sum"`, or `"none"` for the per-sample losses),
# `label_smoothing=ε`, which mixes the target with the uniform distribution
# (loss $= (1 - ε)\,\mathrm{CE} - ε \cdot \mathrm{mean}_c \log p_c$), and logits of shape `(N, C, d1, ...)`
# (one prediction per pixel, say) with targets `(N, d1, ...)`: each position becomes a row of
# `(N·d1·..., C)` before `sample_losses` sees it (probability targets too: one of the logits' shape stays in the
# graph if it requires grad, as in PyTorch). `NLLLoss` is the same loss for inputs that are already
# log-probabilities; `cross_entropy(logits, target)` is the loss as a function, PyTorch's `F.cross_entropy`.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "losses-cross-entropy", "locked": false, "solution": true}
#| export
def log_softmax(x, axis: int = -1):
    """log(softmax(x)) along `axis`, as shifted - log(sum(exp(shifted))) with a constant max shift."""
    ### BEGIN SOLUTION
    shifted = x - x.numpy().max(axis=axis, keepdims=True)
    return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()
    ### END SOLUTION


def class_axis_last(x):
    """(N, C, d1, ...) as rows (N*d1*..., C): one row of C numbers per position. Given code."""
    return x.permute(0, *range(2, x.ndim), 1).reshape(-1, x.shape[1])


def flatten_positions(logits, target_values: np.ndarray, name: str):
    """Logits (N, C, d1, ...) as rows (N*d1*..., C), the targets to match, and the shape of one loss per position.

    Targets are class indices (N, d1, ...) or probabilities of the logits' shape. Given code.
    """
    if logits.ndim < 2:
        raise ValueError(f"{name} expects logits of shape (N, C) or (N, C, d1, ...), got shape {logits.shape}")
    if logits.ndim == 2:
        return logits, target_values, (logits.shape[0],)
    count, num_classes, *rest = logits.shape
    positions = (count, *rest)
    rows = class_axis_last(logits)
    if target_values.shape == positions:
        return rows, target_values.reshape(-1), positions
    if target_values.shape == logits.shape:
        return rows, np.moveaxis(target_values, 1, -1).reshape(-1, num_classes), positions
    raise ValueError(f"{name}: for logits of shape {logits.shape}, targets must have shape {positions} (class indices) "
                     f"or {logits.shape} (probabilities), got {target_values.shape}")


REDUCTIONS = ("mean", "sum", "none")


def reduce_losses(losses, reduction: str):
    """PyTorch's `reduction`: the mean or the sum of the per-sample losses, or the losses themselves ("none")."""
    return losses.mean() if reduction == "mean" else losses.sum() if reduction == "sum" else losses


def checked_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def class_indices(target: np.ndarray, num_classes: int) -> np.ndarray:
    """Check that `target` holds whole numbers in [0, num_classes) and return them as int64."""
    ### BEGIN SOLUTION
    if target.dtype.kind not in "iu" and not np.all(np.mod(target, 1) == 0):
        raise ValueError(f"class indices must be whole numbers, got {target.ravel()[:10].tolist()}")
    bad = (target < 0) | (target >= num_classes)
    if bad.any():
        raise ValueError(f"class index out of range: targets must be in [0, {num_classes - 1}] for {num_classes} classes, "
                         f"got {np.unique(target[bad])[:10].tolist()}")
    return target.astype(np.int64)
    ### END SOLUTION


class CrossEntropyLoss(Loss):
    """Cross-entropy of logits (N, C) against class indices (N,) or one-hot/probability rows (N, C).

    As in PyTorch: `reduction` "mean" (default), "sum" or "none"; `label_smoothing` in [0, 1]; logits may be
    (N, C, d1, ...) with targets (N, d1, ...).

    >>> CrossEntropyLoss()(Tensor([[0.0, 0.0]]), np.array([1]))  # log 2
    Tensor(0.6931472, dtype=float32)
    """

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0):
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.reduction, self.label_smoothing = checked_reduction(reduction), label_smoothing

    def __repr__(self) -> str:
        return f"CrossEntropyLoss(reduction={self.reduction!r}, label_smoothing={self.label_smoothing})"

    def forward(self, logits, target):
        logits, target_values = as_tensor(logits), values_of(target)
        rows, row_targets, positions = flatten_positions(logits, target_values, "CrossEntropyLoss")
        if rows is logits:
            row_targets = target  # 2-D logits: the target as given (it may be a Variable that requires grad)
        elif getattr(target, "requires_grad", False) and target.shape == logits.shape:
            row_targets = class_axis_last(target)  # probabilities that require grad, kept in the graph
        log_probs = log_softmax(rows, axis=1)
        losses = self.sample_losses(log_probs, row_targets)
        if self.label_smoothing:
            losses = losses * (1 - self.label_smoothing) - log_probs.mean(axis=1) * self.label_smoothing
        return reduce_losses(losses.reshape(positions), self.reduction)

    def sample_losses(self, log_probs, target):
        """One cross-entropy per row of `log_probs` (N, C): for class indices (N,), or probability rows (N, C)."""
        count, num_classes = log_probs.shape
        target_values = values_of(target)
        ### BEGIN SOLUTION
        if target_values.shape == (count,):
            return -log_probs[np.arange(count), class_indices(target_values, num_classes)]
        if target_values.shape == (count, num_classes):
            return -(log_probs * as_target(target, log_probs)).sum(axis=1)
        raise ValueError(f"CrossEntropyLoss: for logits of shape {log_probs.shape}, targets must have shape ({count},) "
                         f"(class indices) or {log_probs.shape} (one-hot), got {target_values.shape}")
        ### END SOLUTION


class NLLLoss(Loss):
    """Negative log-likelihood of log-probabilities (N, C, d1, ...) against class indices (N, d1, ...). Given.

    `CrossEntropyLoss()(logits, y)` equals `NLLLoss()(log_softmax(logits, axis=1), y)`.
    """

    def __init__(self, reduction: str = "mean"):
        self.reduction = checked_reduction(reduction)

    def __repr__(self) -> str:
        return f"NLLLoss(reduction={self.reduction!r})"

    def forward(self, log_probs, target):
        log_probs, target_values = as_tensor(log_probs), values_of(target)
        rows, row_targets, positions = flatten_positions(log_probs, target_values, "NLLLoss")
        count, num_classes = rows.shape
        if row_targets.shape != (count,):
            raise ValueError(f"NLLLoss needs class indices of shape {positions}, got {target_values.shape}")
        picked = rows[np.arange(count), class_indices(row_targets, num_classes)]
        return reduce_losses(-picked.reshape(positions), self.reduction)


def cross_entropy(logits, target, reduction: str = "mean", label_smoothing: float = 0.0):
    """PyTorch's functional form, `F.cross_entropy`: `CrossEntropyLoss(reduction, label_smoothing)(logits, target)`.
    Given. The target is class indices (N, d1, ...) or probabilities of the logits' shape."""
    return CrossEntropyLoss(reduction, label_smoothing)(logits, target)

# %% [markdown]
# ### Test: CrossEntropyLoss
#
# Besides values and errors, this test checks the gradient formula above by **finite differences**:
# nudge each logit by $\pm\epsilon$ and watch the loss, in float64. This is the check module 06's
# `gradcheck` automates, and it needs no autograd.

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-losses-cross-entropy", "locked": true, "points": 4, "solution": false}
def test_unit_cross_entropy():
    logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
    labels = np.array([0, 1])
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    expected = -np.log(probs[[0, 1], labels]).mean()
    loss_fn = CrossEntropyLoss()
    loss = loss_fn(Tensor(logits), labels)
    assert isinstance(loss, Tensor) and loss.shape == (), f"the loss should be a scalar Tensor, got {loss!r}"
    assert abs(loss.item() - expected) < 1e-9, f"expected {expected:.6f}, got {loss.item():.6f}"
    one_hot = np.eye(3)[labels]
    assert abs(loss_fn(Tensor(logits), Tensor(one_hot)).item() - expected) < 1e-9, "one-hot targets should give the same loss"
    try:
        float_labels = loss_fn(Tensor(logits), Tensor(labels.astype(np.float32))).item()
    except IndexError as error:
        raise AssertionError(f"whole-number float labels (e.g. Tensor([0, 1])) should work as class indices: "
                             f"class_indices should return them as int64, got IndexError: {error}") from None
    assert abs(float_labels - expected) < 1e-9, "whole-number float labels (e.g. Tensor([0, 1])) should work as class indices"
    soft = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    soft_expected = -(soft * np.log(probs)).sum(axis=1).mean()
    soft_loss = loss_fn(Tensor(logits), Tensor(soft)).item()
    assert abs(soft_loss - soft_expected) < 1e-9, (
        f"probability targets (not one-hot) should give -sum(p * log_softmax) per row, {soft_expected:.6f}, got "
        f"{soft_loss:.6f}: weigh every class by its probability, not only the most likely one")
    for text, target in [("class indices", labels), ("float64 one-hot rows", one_hot)]:
        dtype = loss_fn(Tensor(logits.astype(np.float32)), target).dtype
        assert dtype == np.float32, f"float32 logits with {text} should give a float32 loss, got {dtype}"
    columns = log_softmax(Tensor(logits), axis=0).numpy()
    column_shifted = logits - logits.max(axis=0, keepdims=True)
    column_expected = column_shifted - np.log(np.exp(column_shifted).sum(axis=0, keepdims=True))
    assert np.allclose(columns, column_expected, atol=1e-9), (
        f"log_softmax(x, axis=0) should normalise each column, expected {column_expected.round(4).tolist()}, got "
        f"{columns.round(4).tolist()}: take the max and the sum along `axis`")

    try:
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            huge = loss_fn(Tensor([[1000.0, 0.0], [0.0, 1000.0]]), np.array([1, 1]))
            far_apart = loss_fn(Tensor([[0.0, 1.0], [1000.0, 1001.0]]), np.array([1, 1]))
    except FloatingPointError as error:
        raise AssertionError(f"logits near 1000 gave {error}: subtract each row's own max (keepdims=True) "
                             "before exp, and take the log of the shifted sum") from None
    assert abs(huge.item() - 500.0) < 1e-3, f"logits of 1000 should give a finite loss of (1000 + 0) / 2 = 500, got {huge.item()}"
    assert abs(far_apart.item() - math.log(1 + math.exp(-1))) < 1e-6, f"each row is shifted by its own max, got {far_apart.item()}"
    traced = Traced(logits)
    assert_in_graph(loss_fn(traced, labels), traced, "CrossEntropyLoss", "the logits")
    assert_in_graph(loss_fn(traced, one_hot), traced, "CrossEntropyLoss with one-hot targets", "the logits")

    eps, numeric = 1e-6, np.zeros_like(logits)
    for index in np.ndindex(*logits.shape):
        bumped_up, bumped_down = logits.copy(), logits.copy()
        bumped_up[index] += eps
        bumped_down[index] -= eps
        numeric[index] = (loss_fn(Tensor(bumped_up), labels).item() - loss_fn(Tensor(bumped_down), labels).item()) / (2 * eps)
    analytic = (probs - one_hot) / len(labels)
    assert np.allclose(numeric, analytic, atol=1e-8), f"d CE / d logits should be (softmax - one_hot) / N = {analytic}, got {numeric}"

    for bad_target, words in [(np.array([0, 3]), "[3]"), (np.array([-1, 0]), "[-1]"), (np.array([0.5, 1]), "whole"),
                              (np.array([0, 1, 2]), "(3,)"), (np.zeros((2, 4)), "(2, 4)")]:
        try:
            loss_fn(Tensor(logits), bad_target)
        except ValueError as error:
            assert words in str(error), f"the error for target {bad_target.tolist()} should mention {words!r}: {error}"
        except Exception as error:
            raise AssertionError(f"target {bad_target.tolist()} for logits of shape (2, 3) should raise ValueError, "
                                 f"got {type(error).__name__}: {error}") from None
        else:
            raise AssertionError(f"target {bad_target.tolist()} for logits of shape (2, 3) should raise ValueError")

test_unit_cross_entropy()
print("test_unit_cross_entropy: passed")

# %% [markdown]
# ## 3. Binary cross-entropy
#
# For a yes/no question the network outputs one probability $p = \sigma(z)$ (module 02's `Sigmoid`),
# and the loss is the cross-entropy of two classes:
#
# $$\mathrm{BCE}(p, y) = -\frac1n \sum_i \bigl(y_i \log p_i + (1 - y_i)\log(1 - p_i)\bigr), \qquad
#   \frac{\partial\,\mathrm{BCE}}{\partial p_i} = \frac1n\,\frac{p_i - y_i}{p_i(1 - p_i)}.$$
#
# Probabilities are allowed to be exactly 0 or 1 (a float32 sigmoid of 17 already rounds to 1.0), and
# then a log is $-\infty$; worse, $0 \cdot (-\infty)$ is `nan`, even where the prediction is *right*.
# PyTorch's `BCELoss` clamps each log at $-100$, and so do we, with a helper `clamped_log`: where
# $x < e^{-100}$ it computes $\log(x + 1) - 100 \approx -100$ instead, using a constant mask; elsewhere
# (almost always, and then as one operation) it is plain `log`. Predictions outside [0, 1] mean the
# network forgot its sigmoid: that is a `ValueError`, as in PyTorch.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "losses-bce", "locked": false, "solution": true}
#| export
LOG_FLOOR = -100.0


def clamped_log(x):
    """log(x), but -100 where x < exp(-100) (so log(0) is -100, not -inf), as PyTorch's BCELoss does."""
    ### BEGIN SOLUTION
    tiny = values_of(x) < math.exp(LOG_FLOOR)
    if not tiny.any():
        return x.log()
    mask = tiny.astype(x.dtype)
    return (x + mask).log() + LOG_FLOOR * mask
    ### END SOLUTION


class BCELoss(Loss):
    """Mean binary cross-entropy of probabilities against targets in [0, 1] of the same shape.

    >>> BCELoss()(Tensor([0.5]), Tensor([1.0]))  # log 2
    Tensor(0.6931472, dtype=float32)
    """

    def forward(self, prediction, target):
        prediction = as_tensor(prediction)
        target = as_target(target, prediction)
        ### BEGIN SOLUTION
        if prediction.shape != target.shape:
            raise ValueError(f"BCELoss needs prediction and target of the same shape, got {prediction.shape} and {target.shape}")
        for name, values in [("predictions", values_of(prediction)), ("targets", values_of(target))]:
            if values.size and (values.min() < 0 or values.max() > 1):
                raise ValueError(f"BCELoss {name} must lie in [0, 1] (apply a Sigmoid first), got values from {values.min()} to {values.max()}")
        log_p, log_not_p = clamped_log(prediction), clamped_log(1 - prediction)
        return -(target * log_p + (1 - target) * log_not_p).mean()
        ### END SOLUTION

# %% [markdown]
# ### Test: BCELoss

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-losses-bce", "locked": true, "points": 3, "solution": false}
def test_unit_bce():
    p, y = np.array([0.9, 0.2, 0.6, 0.01]), np.array([1.0, 0.0, 1.0, 0.0])
    expected = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()
    try:
        loss = BCELoss()(Tensor(p), Tensor(y))
    except ValueError as error:
        raise AssertionError(f"targets (and predictions) of exactly 0 and 1 lie in [0, 1] and are allowed: {error}") from None
    assert isinstance(loss, Tensor) and loss.shape == (), f"the loss should be a scalar Tensor, got {loss!r}"
    assert abs(loss.item() - expected) < 1e-9, f"expected {expected:.6f}, got {loss.item():.6f}"
    for values in ([0.9, 0.2], [1.0, 0.0]):
        dtype = BCELoss()(Tensor(values), Tensor([1.0, 0.0])).dtype
        assert dtype == np.float32, f"float32 predictions {values} should give a float32 loss, got {dtype}"
    traced = Traced(p)
    assert_in_graph(BCELoss()(traced, Tensor(y)), traced, "BCELoss", "the prediction")
    try:
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            saturated = BCELoss()(Tensor([1.0, 0.0, 1.0]), Tensor([1.0, 0.0, 0.0])).item()
    except FloatingPointError as error:
        raise AssertionError(f"predictions of exactly 0 and 1 gave {error}: clamp each log at -100 (clamped_log)") from None
    except ValueError as error:
        raise AssertionError(f"predictions of exactly 0 and 1 lie in [0, 1] and are allowed: {error}") from None
    assert abs(saturated - 100 / 3) < 1e-4, f"p = 1 and 0 should be clamped, not nan: expected (0 + 0 + 100) / 3, got {saturated}"
    assert np.isfinite(clamped_log(Tensor([0.0, 1e-50, 0.5], dtype=np.float64)).numpy()).all(), "clamped_log should never be -inf"
    assert clamped_log(Tensor([0.0])).item() == -100.0, f"clamped_log(0) should be -100, got {clamped_log(Tensor([0.0])).item()}"
    tiny = clamped_log(Tensor([1e-50], dtype=np.float64)).item()
    assert abs(tiny + 100) < 1e-9, f"clamped_log(1e-50) should be clamped to -100 (every x below exp(-100)), got {tiny}"
    for bad_prediction, bad_target, words in [([1.5, 0.5], [1.0, 0.0], "[0, 1]"), ([0.5, 0.5], [1.0], "(1,)"),
                                              ([0.5, 0.5], [2.0, 0.0], "targets")]:
        try:
            BCELoss()(Tensor(bad_prediction), Tensor(bad_target))
        except ValueError as error:
            assert words in str(error), f"the error should mention {words!r}: {error}"
        else:
            raise AssertionError(f"BCELoss({bad_prediction}, {bad_target}) should raise ValueError")

test_unit_bce()
print("test_unit_bce: passed")

# %% [markdown]
# ## 4. Looking ahead: gradients through the losses
#
# With modules 05 and 06 complete, a loss of Variables is a Variable at the end of the graph, and `backward()`
# reaches the logits: for cross-entropy the gradient is $(p - y_{\text{one-hot}})/N$, as derived above.

# %%
try:
    from tinytorch.core.autograd import Variable
    from tinytorch.core.operations import exp
    exp(Variable(0.0))  # modules 05 and 06 still to be written (a student's stubs) raise NotImplementedError here
except (ImportError, NotImplementedError):
    print("autograd (modules 05 and 06) is not complete yet: come back after module 06.")
else:
    logits = Variable(np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]]), requires_grad=True)
    loss = CrossEntropyLoss()(logits, np.array([0, 1]))
    loss.backward()
    print(f"loss {loss.item():.4f} is a {type(loss).__name__}; d loss / d logits =\n{np.round(logits.grad, 4)}")

# %% [markdown]
# ## 5. Systems analysis: stability, silent broadcasting, cost
#
# **Stability.** Cross-entropy computed the textbook way, `-log(softmax(z)[y])`, against the
# log-sum-exp form, for logits of growing scale (float32, 64 examples, 10 classes, random labels).

# %%
rng = np.random.default_rng(0)
labels = rng.integers(0, 10, 64)
print(f"{'logit scale':>11} {'naive CE':>12} {'log-sum-exp CE':>15}")
for scale in [1, 10, 100, 1000]:
    z = (rng.standard_normal((64, 10)) * scale).astype(np.float32)
    with np.errstate(all="ignore"):
        naive = -np.log((np.exp(z) / np.exp(z).sum(axis=1, keepdims=True))[np.arange(64), labels]).mean()
    stable = CrossEntropyLoss()(Tensor(z), labels).item()
    print(f"{scale:>11} {naive:>12.4g} {stable:>15.4g}")

# %% [markdown]
# **Silent broadcasting.** What an MSE that broadcast `(N, 1)` against `(N,)` would report, next to the
# true loss, for predictions that are perfect.

# %%
targets = rng.standard_normal(100).astype(np.float32)
perfect = targets.reshape(100, 1)
broadcast_mse = float(((perfect - targets) ** 2).mean())  # (100, 1) - (100,) -> (100, 100)
true_mse = MSELoss()(Tensor(perfect.ravel()), Tensor(targets)).item()
print(f"true MSE of perfect predictions {true_mse:.4f}; broadcast 'MSE' {broadcast_mse:.4f} (shape {(perfect - targets).shape})")

# %% [markdown]
# **Cost.** Time per call for a batch of 64 and of 1024 examples with 10 classes. The losses' extra
# operations (checks, masks, indices) cost a fixed few microseconds; the rest grows with the batch.

# %%
from tinytorch.core.tensor import best_time


print(f"{'loss':28} {'N = 64 (us)':>12} {'N = 1024 (us)':>14}")
cases = {
    "MSELoss (N, 10)": lambda n: (MSELoss(), Tensor(rng.standard_normal((n, 10)).astype(np.float32)),
                                 Tensor(rng.standard_normal((n, 10)).astype(np.float32))),
    "CrossEntropyLoss, indices": lambda n: (CrossEntropyLoss(), Tensor(rng.standard_normal((n, 10)).astype(np.float32)),
                                            rng.integers(0, 10, n)),
    "CrossEntropyLoss, one-hot": lambda n: (CrossEntropyLoss(), Tensor(rng.standard_normal((n, 10)).astype(np.float32)),
                                            np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]),
    "BCELoss (N, 10)": lambda n: (BCELoss(), Tensor(rng.random((n, 10)).astype(np.float32)),
                                 Tensor((rng.random((n, 10)) > 0.5).astype(np.float32))),
}
for name, make in cases.items():
    times = []
    for n in (64, 1024):
        loss_fn, prediction, target = make(n)
        times.append(best_time(lambda: loss_fn(prediction, target)) * 1e6)
    print(f"{name:28} {times[0]:>12.1f} {times[1]:>14.1f}")

# %% [markdown]
# ## 6. Reflection
#
# Answer in a sentence or three each.

# %% [markdown]
# **Q1.** A classmate's loss function computes `-np.log(probs[range(N), y]).mean()` on
# `prediction.numpy()` and returns `Tensor(result)`. Its value is right. What happens when they train
# with it, and how would you detect the problem quickly?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-losses-graph", "locked": false, "points": 2, "solution": true}
# The returned Tensor is a new leaf with no link to the network, so `backward()` from it reaches no
# parameter: every gradient stays `None` (or zero), the optimizer changes nothing and accuracy stays at
# chance. A quick check: after one `backward()`, assert that every parameter has a nonzero gradient
# (or run `gradcheck` on the loss as a function of the logits).

# %% [markdown]
# **Q2.** Why is it better to give `CrossEntropyLoss` logits than probabilities from a `Softmax`
# layer? Think about both the forward value and the gradient.

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-losses-logits", "locked": false, "points": 2, "solution": true}
# From logits the loss is computed with log-sum-exp, which never overflows and never takes the log of a
# probability that rounded to 0; from probabilities those failures come back. The combined gradient is
# simply softmax minus one-hot, cheap and well-conditioned; going through a separate softmax and log
# multiplies large and tiny factors (1/p times p(1 - p)) and loses precision when p is near 0.

# %% [markdown]
# ## Summary
#
# Three losses, each a scalar built from operations that modules 05 and 06 differentiate: `MSELoss` refuses
# mismatched shapes, `CrossEntropyLoss` uses log-softmax with a constant shift and takes class indices
# or one-hot rows, and `BCELoss` clamps its logs like PyTorch's. Export with
# `tito module complete 04_losses`; modules 05 and 06 make all of it differentiable.
