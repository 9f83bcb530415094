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
# # Compression: fewer weights, smaller layers, a small student taught by a big teacher
#
# Module 14 kept every weight and stored each in fewer bits. This module removes weights. A trained
# network has many weights close to zero that contribute little; setting them to exactly zero is
# **pruning**. Pruning single weights (*unstructured*) keeps the shapes and leaves zeros scattered
# through the arrays: the file shrinks only with a sparse format, and dense kernels do the same work
# as before. Pruning whole output channels of a convolution or neurons of a `Linear` (*structured*)
# makes the arrays themselves smaller, and then every kernel does less work.
#
# ```
# unstructured (80%):  w = [ .  .  0.9  .  .  -1.2  .  .  .  0.4 ]   same shape, 80% zeros
# structured (half):   Conv2d(8 -> 16)  becomes  Conv2d(8 -> 8), and the next layer takes 8 inputs, not 16
# distillation:        teacher (big) --soft probabilities at temperature T--> student (small)
# ```
#
# The third technique trains a small network from scratch, but with a better teacher than the labels:
# a big trained network's full probability distribution, softened by a temperature
# (**knowledge distillation**). This module builds magnitude pruning per layer and global (§1, §2),
# keeps the pruned weights at zero through fine-tuning (§3), removes whole channels (§4, §5), writes
# the distillation loss (§6), and measures accuracy, bytes and time on the digits CNN (§7). It builds
# on modules 01 to 09, and on module 14 for INT8 (`tito milestone compress` combines the two).
#
# **Objectives.** By the end of this module you can:
#
# - prune a network by weight magnitude, with one threshold per layer or one for the whole network, and say why global is better;
# - fine-tune a pruned network so that pruned weights stay zero with any optimizer;
# - remove whole channels and neurons, and the matching inputs of the next layer, for genuinely smaller layers;
# - write the distillation loss with its temperature and its $T^2$ factor, and check it against PyTorch;
# - measure what sparsity costs in accuracy and saves in bytes and time, dense and sparse.
#
# | You write here | It becomes | Used by |
# |---|---|---|
# | this notebook, `compression.ipynb` | `tinytorch.core.compression` | `tito milestone compress` |

# %%
#| default_exp core.compression

# %%
#| export
from __future__ import annotations

import numpy as np

from tinytorch.core.autograd import _value, no_grad
from tinytorch.core.convolutions import Conv2d
from tinytorch.core.layers import Flatten, Linear, Module, Sequential, array_of
from tinytorch.core.losses import cross_entropy
from tinytorch.core.operations import Parameter, log_softmax

# %%
# The rest of the stack, for the examples and tests below (the exported code does not need it).
import io

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import Variable
from tinytorch.core.convolutions import MaxPool2d
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import Adam
from tinytorch.core.tensor import Tensor, best_time
from tinytorch.core.training import DataLoader, Standardizer, Trainer, load_digits_dataset

# %% [markdown]
# ## 1. Magnitude pruning
#
# Which weights matter least? The simplest answer, and a surprisingly good one: the smallest in
# magnitude $|w|$. Pruning a fraction $p$ (the **sparsity**) of an array of $n$ weights sets to zero
# the $k = \mathrm{round}(p\,n)$ weights of smallest magnitude, and leaves the others as they are.
# The result is a **mask**, a boolean array of the weight's shape: `True` where a weight is kept,
# `False` where it is pruned.
#
# ```
# w     = [ 0.3  -0.05   1.2  -0.8   0.01   0.2 ]      p = 0.5: k = 3 weights go
# |w|   = [ 0.3   0.05   1.2   0.8   0.01   0.2 ]      the three smallest: 0.01, 0.05, 0.2
# mask  = [ T     F      T     T     F      F   ]
# ```
#
# Exactly $k$ weights are pruned, even when several have the same magnitude (a threshold "prune
# all $|w| \le t$" would prune every tied weight at once): sort the magnitudes with a stable sort
# (`np.argsort(..., kind="stable")`, which keeps ties in their order) and prune the first $k$.
# Note the sign: $-0.8$ is a large weight.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "compression-magnitude", "locked": false, "solution": true}
#| export
def _checked_sparsity(sparsity) -> float:
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be a fraction between 0 and 1, got {sparsity}")
    return float(sparsity)


def magnitude_mask(weight, sparsity: float) -> np.ndarray:
    """A boolean mask of weight's shape: False at the round(sparsity * size) entries of smallest magnitude
    |w| (ties broken by position, first pruned first), True at the others.

    >>> magnitude_mask(np.array([0.3, -0.05, 1.2, -0.8, 0.01, 0.2]), 0.5).tolist()
    [True, False, True, True, False, False]
    """
    values = np.asarray(_value(weight))
    sparsity = _checked_sparsity(sparsity)
    ### BEGIN SOLUTION
    pruned = round(sparsity * values.size)
    order = np.argsort(np.abs(values), axis=None, kind="stable")
    mask = np.ones(values.size, dtype=bool)
    mask[order[:pruned]] = False
    return mask.reshape(values.shape)
    ### END SOLUTION

# %% [markdown]
# ### Test: magnitude pruning

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-compression-magnitude", "locked": true, "points": 3, "solution": false}
def test_unit_magnitude():
    weight = np.array([[0.3, -0.05, 1.2], [-0.8, 0.01, 0.2]], dtype=np.float32)
    mask = magnitude_mask(weight, 0.5)
    assert mask.dtype == bool and mask.shape == (2, 3), f"the mask should be a bool array of the weight's shape (2, 3), got {mask.dtype} {mask.shape}"
    kept = mask.tolist()
    assert kept[0][2] and not kept[1][1], (
        f"pruning keeps the LARGEST magnitudes and prunes the smallest: 1.2 must be kept, 0.01 pruned; got {kept}"
        + (": this prunes the largest" if not kept[0][2] else ""))
    assert kept == [[True, False, True], [True, False, False]], (
        f"at sparsity 0.5 the three smallest |w| (0.01, -0.05, 0.2) should be pruned: expected "
        f"[[True, False, True], [True, False, False]], got {kept}"
        + (": compare magnitudes |w|, -0.8 is a large weight" if not kept[1][0] else ""))
    many = np.linspace(1.0, 2.0, 10)
    for sparsity, expected in [(0.27, 3), (0.0, 0), (1.0, 10), (0.84, 8)]:
        pruned = int((~magnitude_mask(many, sparsity)).sum())
        assert pruned == expected, (
            f"sparsity {sparsity} of 10 weights should prune round({sparsity} * 10) = {expected}, got {pruned}"
            + (" (round, do not truncate)" if pruned == int(sparsity * 10) else ""))
    ties = magnitude_mask(np.array([0.5, -0.5, 0.5, 0.5, 2.0]), 0.4).tolist()
    assert ties == [False, False, True, True, True], (
        f"with ties, exactly round(0.4 * 5) = 2 weights go, the first ones: expected [False, False, True, True, True], got {ties}")
    assert np.array_equal(magnitude_mask(Variable(weight), 0.5), mask), "a Variable's values should be pruned like its array"
    try:
        magnitude_mask(weight, 1.5)
    except ValueError:
        pass
    else:
        raise AssertionError("magnitude_mask(weight, 1.5) should raise ValueError: sparsity is a fraction")

test_unit_magnitude()
print("test_unit_magnitude: passed")

# %% [markdown]
# ## 2. One threshold per layer, or one for the whole network
#
# Pruning each layer to the same sparsity treats all layers alike, but they are not alike: a first
# convolution with 72 weights, each of which sees the raw pixels, cannot lose 80% of them as easily
# as a large `Linear` layer can. **Global** magnitude pruning ranks all the weights of all the layers
# together and prunes the $k = \mathrm{round}(p\,n_{total})$ smallest: one threshold for the whole
# network. Layers whose weights are small (often the big ones, with many redundant weights) lose
# more; small, important layers lose less. The overall sparsity is the same.
#
# `global_masks(weights, sparsity)` returns one mask per array, of its shape. Write it with
# `magnitude_mask` applied once to all the weights put end to end (`np.concatenate` of the raveled
# arrays), then cut that mask back into pieces (`np.split` at the running totals of the sizes).
#
# Only the weights of `Linear` and `Conv2d` layers are pruned (`prunable_weights`, given): biases are
# few (one per output channel) and each shifts a whole channel.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "compression-global", "locked": false, "solution": true}
#| export
def prunable_weights(model: Module) -> list:
    """The weight Parameters of every Linear and Conv2d in `model`, in order."""
    return [layer.weight for _, layer in model.named_modules() if isinstance(layer, (Linear, Conv2d))]


def global_masks(weights: list, sparsity: float) -> list[np.ndarray]:
    """One mask per array of `weights`: the round(sparsity * total size) entries of smallest magnitude over all
    the arrays together are pruned (one threshold for all), so each array may keep a different fraction.

    >>> [m.tolist() for m in global_masks([np.array([0.1, 0.2]), np.array([3.0, 0.05, 4.0])], 0.4)]
    [[False, True], [True, False, True]]
    """
    arrays = [np.asarray(_value(weight)) for weight in weights]
    if not arrays:
        raise ValueError("global_masks needs at least one weight array")
    ### BEGIN SOLUTION
    everything = np.concatenate([array.ravel() for array in arrays])
    mask = magnitude_mask(everything, sparsity)
    pieces = np.split(mask, np.cumsum([array.size for array in arrays])[:-1])
    return [piece.reshape(array.shape) for piece, array in zip(pieces, arrays)]
    ### END SOLUTION

# %% [markdown]
# ### Test: global pruning

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-compression-global", "locked": true, "points": 3, "solution": false}
def test_unit_global():
    rng = np.random.default_rng(0)
    small = rng.uniform(-0.1, 0.1, (20, 5))  # a layer of small weights
    large = rng.uniform(1.0, 2.0, (4, 5)) * rng.choice([-1, 1], (4, 5))  # a layer of large ones
    masks = global_masks([small, large], 0.5)
    assert [m.shape for m in masks] == [(20, 5), (4, 5)], f"one mask per array, of its shape: got {[m.shape for m in masks]}"
    pruned = [int((~m).sum()) for m in masks]
    assert sum(pruned) == 60, f"sparsity 0.5 of 120 weights in all should prune 60 in all, got {sum(pruned)} ({pruned} per array)"
    assert pruned == [60, 0], (
        f"one threshold for all layers: the 60 smallest weights are all in the small layer, so it should lose 60 and the large "
        f"one none; got {pruned}" + (": this is one threshold per layer, not a global one" if pruned == [50, 10] else ""))
    flat = np.concatenate([small.ravel(), large.ravel()])
    expected = magnitude_mask(flat, 0.5)
    assert np.array_equal(np.concatenate([m.ravel() for m in masks]), expected), \
        "the masks put end to end should equal magnitude_mask of all the weights put end to end"
    model = Sequential(Linear(4, 3, rng=rng), ReLU(), Linear(3, 2, rng=rng))
    assert [w.shape for w in prunable_weights(model)] == [(4, 3), (3, 2)], "prunable_weights should give each Linear's weight"

test_unit_global()
print("test_unit_global: passed")

# %% [markdown]
# ## 3. Keeping pruned weights at zero through fine-tuning
#
# Pruning costs accuracy; a few steps of training on the pruned network win most of it back, as
# the kept weights take over the work of the pruned ones. But the optimizer knows nothing of the
# masks, and a pruned weight must stay exactly zero. Two ways suggest themselves:
#
# - **mask the gradient** (set $g = 0$ where the mask is `False`) before `optimizer.step()`;
# - **reapply the mask after each step** (set the pruned weights back to 0).
#
# Masking the gradient is not enough with the optimizers we use. Adam's moving average $m$ of the
# gradient still holds the gradients from before pruning, so a weight with $g = 0$ keeps moving
# for many steps ($m$ decays by $\beta_1$ per step, and $v$ in the denominator decays too); SGD with
# momentum does the same with its velocity, and weight decay adds a term of its own. Reapplying the
# mask *after* the step is right for every optimizer, whatever it keeps; it costs one multiplication
# per weight per step. (The gradient of a pruned weight is still computed: a dense engine cannot
# skip it, which is why unstructured sparsity saves no training time here.)
#
# `Pruning(model, sparsity, scope)` (given: its constructor makes the masks, "global" with
# `global_masks` or "layer" with `magnitude_mask` per weight, and applies them) writes the zeros with
# `apply()`: in place, into the arrays the model computes with (`array_of(weight)`, module 03),
# since a new array would not reach the model. `MaskedOptimizer(optimizer, pruning)` is an
# optimizer: `zero_grad()` as the one it wraps, and `step()` that steps, then reapplies the masks. A
# `Trainer` takes it as it takes any optimizer.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "compression-finetune", "locked": false, "solution": true}
#| export
SCOPES = ("global", "layer")


class Pruning:
    """The magnitude masks of a model's Linear and Conv2d weights (one threshold for all, or one per layer),
    applied at once and whenever `apply()` is called."""

    def __init__(self, model: Module, sparsity: float, scope: str = "global"):
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
        self.weights = prunable_weights(model)
        if not self.weights:
            raise ValueError(f"{type(model).__name__} has no Linear or Conv2d weights to prune")
        if scope == "global":
            self.masks = global_masks(self.weights, sparsity)
        else:
            self.masks = [magnitude_mask(weight, sparsity) for weight in self.weights]
        self.apply()

    def apply(self) -> None:
        """Set every pruned weight to zero, in the arrays the model computes with."""
        ### BEGIN SOLUTION
        for weight, mask in zip(self.weights, self.masks):
            array_of(weight)[~mask] = 0
        ### END SOLUTION

    def sparsity(self) -> float:
        """The fraction of the prunable weights that are zero now."""
        zeros = sum(int(np.count_nonzero(array_of(weight) == 0)) for weight in self.weights)
        return zeros / sum(int(array_of(weight).size) for weight in self.weights)


class MaskedOptimizer:
    """Wraps an optimizer so that the pruned weights stay zero: each step is followed by `pruning.apply()`."""

    def __init__(self, optimizer, pruning: Pruning):
        self.optimizer, self.pruning = optimizer, pruning

    def __getattr__(self, name):  # asked only for what the wrapper lacks: zero_grad, state_dict, params, ...
        if name == "optimizer":
            raise AttributeError(name)  # not set yet (a copy being made): there is no wrapped optimizer to ask
        return getattr(self.optimizer, name)

    # A learning-rate schedule sets `lr`: the wrapped optimizer must see it.
    lr = property(lambda self: self.optimizer.lr, lambda self, value: setattr(self.optimizer, "lr", value))

    def step(self) -> None:
        ### BEGIN SOLUTION
        self.optimizer.step()
        self.pruning.apply()
        ### END SOLUTION

# %% [markdown]
# ### Test: fine-tuning keeps the zeros

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-compression-finetune", "locked": true, "points": 3, "solution": false}
def test_unit_finetune():
    rng = np.random.default_rng(2)
    x = Tensor(rng.standard_normal((32, 6)).astype(np.float32))
    y = rng.integers(0, 3, 32)
    model = Sequential(Linear(6, 16, rng=rng), ReLU(), Linear(16, 3, rng=rng))
    adam = Adam(model.parameters(), lr=0.01)
    loss_fn = CrossEntropyLoss()
    for _ in range(5):  # train first: Adam's moving averages now hold non-zero gradients for every weight
        adam.zero_grad()
        loss_fn(model(x), y).backward()
        adam.step()
    before = [w.numpy().copy() for w in prunable_weights(model)]
    pruning = Pruning(model, 0.7)
    zeros = [int((w.numpy() == 0).sum()) for w in prunable_weights(model)]
    assert sum(zeros) == round(0.7 * (96 + 48)), (
        f"Pruning(model, 0.7) should set round(0.7 * 144) = 101 weights to zero at once, got {sum(zeros)}: apply() must "
        "write the zeros into the model's own arrays (array_of(weight)), not into a copy")
    kept = [w.numpy() != 0 for w in prunable_weights(model)]
    assert all(np.array_equal(w.numpy()[k], b[k]) for w, b, k in zip(prunable_weights(model), before, kept)), \
        "apply() should zero the pruned weights (mask False) and leave the kept ones (mask True) as they were"
    assert all(np.array_equal(w.numpy() != 0, m) for w, m in zip(prunable_weights(model), pruning.masks)), \
        "after apply(), a weight should be zero exactly where its mask is False"
    masked = MaskedOptimizer(adam, pruning)
    start = float(loss_fn(model(x), y).item())
    for step in range(10):
        masked.zero_grad()
        loss_fn(model(x), y).backward()
        masked.step()
        for index, (weight, mask) in enumerate(zip(prunable_weights(model), pruning.masks)):
            moved = np.abs(weight.numpy()[~mask]).max()
            assert moved == 0, (
                f"after fine-tuning step {step + 1}, pruned weights of layer {index} moved (up to {moved:.2e}): Adam's moving "
                "averages move a weight whose gradient is zero, so reapply the masks AFTER each optimizer step")
    assert all(np.array_equal(w.numpy() != 0, m) for w, m in zip(prunable_weights(model), pruning.masks)), \
        "kept weights should still be trained (non-zero)"
    end = float(loss_fn(model(x), y).item())
    assert end < start, f"fine-tuning the kept weights should lower the loss, got {start:.4f} -> {end:.4f}"
    assert abs(pruning.sparsity() - 101 / 144) < 1e-9, f"sparsity() should stay 101/144, got {pruning.sparsity()}"
    layerwise = Pruning(Sequential(Linear(10, 10, rng=rng), Linear(10, 2, rng=rng)), 0.5, scope="layer")
    assert [int((~m).sum()) for m in layerwise.masks] == [50, 10], "scope='layer' prunes each weight to the sparsity"

test_unit_finetune()
print("test_unit_finetune: passed")

# %% [markdown]
# ## 4. Structured pruning: which channels to remove
#
# Unstructured zeros do not make a dense computation faster: a matrix product multiplies by zero as
# fast as by anything else. To save time the arrays must shrink. **Structured pruning** removes
# whole output channels: a filter of a `Conv2d` (one slice `weight[o]` of its `(out, in, kh, kw)`
# weight) or a neuron of a `Linear` (one column `weight[:, j]` of its `(in, out)` weight, module 03's
# layout), with its bias.
#
# Which ones? The same idea as §1, per channel: the channels whose weights have the smallest **L1
# norm** $\sum |w|$ over the channel contribute least. `channels_to_keep(layer, fraction)` keeps
# $\max(1, \mathrm{round}((1 - p)\,n))$ of the $n$ output channels, those with the largest L1 norms,
# and returns their indices in increasing order (so the layer's channels keep their order).
#
# ```
# Conv2d weight (out=4, in, kh, kw)   L1 per output channel: [3.1, 0.4, 2.2, 0.9]   p = 0.5 -> keep [0, 2]
# Linear weight (in, out=4)           L1 per column (sum over axis 0), the same rule
# ```

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "compression-channels", "locked": false, "solution": true}
#| export
def channels_to_keep(layer, fraction: float) -> np.ndarray:
    """The indices, in increasing order, of the max(1, round((1 - fraction) * n)) output channels of `layer`
    (a Conv2d, weight (out, in, kh, kw), or a Linear, weight (in, out)) with the largest L1 norms."""
    if not isinstance(layer, (Linear, Conv2d)):
        raise TypeError(f"channels_to_keep needs a Linear or a Conv2d, got {type(layer).__name__}")
    fraction = _checked_sparsity(fraction)
    weight = np.abs(layer.weight.numpy())
    ### BEGIN SOLUTION
    norms = weight.sum(axis=(1, 2, 3)) if isinstance(layer, Conv2d) else weight.sum(axis=0)
    keep = max(1, round((1 - fraction) * len(norms)))
    strongest = np.argsort(-norms, kind="stable")[:keep]
    return np.sort(strongest)
    ### END SOLUTION

# %% [markdown]
# ### Test: choosing channels

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-compression-channels", "locked": true, "points": 2, "solution": false}
def test_unit_channels():
    conv = Conv2d(2, 4, 3, rng=np.random.default_rng(0))
    conv.weight.numpy()[...] = np.array([3.1, 0.4, 2.2, 0.9], dtype=np.float32)[:, None, None, None] / 18 * \
        np.where(np.arange(18).reshape(2, 3, 3) % 2, -1, 1)
    kept = channels_to_keep(conv, 0.5)
    assert list(kept) == [0, 2], (
        f"a Conv2d's output channels are axis 0 of its (out, in, kh, kw) weight; at fraction 0.5 the two with the largest L1 "
        f"norms (3.1 and 2.2) are channels 0 and 2, got {list(kept)}"
        + (": this keeps the weakest channels" if list(kept) == [1, 3] else "")
        + (": the L1 norm sums |w|, signs do not cancel" if list(kept) not in ([1, 3],) and len(kept) == 2 else ""))
    linear = Linear(3, 5, rng=np.random.default_rng(1))
    linear.weight.numpy()[...] = np.array([[0.1, -2.0, 0.3, 1.0, 0.0], [0.1, 1.0, -0.3, 1.0, 0.05], [0.1, 0.0, 0.3, -1.0, 0.0]])
    kept = channels_to_keep(linear, 0.4)
    assert len(kept) == 3, (
        f"a Linear's output neurons are the 5 columns of its (in, out) weight: fraction 0.4 keeps round(0.6 * 5) = 3, got "
        f"{len(kept)} indices {list(kept)}" + (": the norms were summed over the wrong axis" if max(kept, default=0) < 3 else ""))
    assert [int(i) for i in kept] == [1, 2, 3], (
        f"columns 1, 3 and 2 have the largest L1 norms (3.0, 3.0, 0.9): expected [1, 2, 3], got {[int(i) for i in kept]}"
        + (": return the indices in increasing order (np.sort), so the layer's channels keep their order"
           if sorted(int(i) for i in kept) == [1, 2, 3] else ""))
    spread = Linear(4, 2, rng=np.random.default_rng(2))
    spread.weight.numpy()[...] = np.array([[1.0, 3.0], [1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])  # L1 4 and 3, L2 2 and 3
    kept = [int(i) for i in channels_to_keep(spread, 0.5)]
    assert kept == [0], (f"column 0 (1, 1, -1, 1) has L1 norm 4, column 1 (3, 0, 0, 0) has 3: fraction 0.5 keeps [0], got {kept}"
                         + (": the L1 norm is the sum of |w|, not the L2 norm (square root of the sum of squares)"
                            if kept == [1] else ""))
    assert len(channels_to_keep(linear, 1.0)) == 1, "at least one channel is kept, even at fraction 1"
    assert len(channels_to_keep(conv, 0.0)) == 4 and len(channels_to_keep(conv, 0.25)) == 3, \
        "fraction 0 keeps every channel, fraction 0.25 keeps round(0.75 * 4) = 3: the fraction is what is REMOVED"
    kept = len(channels_to_keep(conv, 0.3))
    assert kept == 3, (f"fraction 0.3 of 4 channels keeps round(0.7 * 4) = round(2.8) = 3, got {kept}"
                       + (" (round, do not truncate)" if kept == 2 else ""))

test_unit_channels()
print("test_unit_channels: passed")

# %% [markdown]
# ## 5. Structured pruning: genuinely smaller layers
#
# Removing output channels of one layer removes inputs of the next: a `Conv2d(8 -> 16)` followed by
# `Conv2d(16 -> 32)` pruned to 8 channels becomes `Conv2d(8 -> 8)` followed by `Conv2d(8 -> 32)`,
# whose weight loses the matching slices along its *input* axis (axis 1). The layers in between
# (ReLU, pooling) work per channel and need no change. After a `Flatten`, channel $c$ of an
# $(N, C, H, W)$ map becomes the $H W$ consecutive features $cHW, \dots, cHW + HW - 1$ of the
# `Linear` that follows: keep those rows of its `(in, out)` weight. The number of positions $HW$ is
# that `Linear`'s `in_features` divided by the channels the convolution had before pruning.
#
# ```
# Conv2d(1 -> 8) -> ReLU -> MaxPool -> Conv2d(8 -> 16) -> ReLU -> MaxPool -> Flatten -> Linear(64 -> 10)
#   keep 4 of 8 outputs               keep inputs [kept], 8 of 16 outputs    keep the rows of the 8 kept
#                                                                            channels' 2x2 positions: 32 -> 10
# ```
#
# `narrow(layer, inputs, outputs)` (given) builds a new layer with only the chosen input and
# output channels (index arrays, `None` for all) and their weights and bias. `structured_prune(model,
# fraction)` walks a `Sequential`: every `Linear` and `Conv2d` except the last (whose outputs are the
# classes) keeps `channels_to_keep(layer, fraction)` of its outputs; each one loses the inputs its
# predecessor lost. The model given is not changed. Because a pruned channel is gone rather than
# zeroed, the smaller model computes exactly what the original would with those channels' weights
# *and biases* set to zero (a zero channel stays zero through ReLU and pooling, and contributes
# nothing to the next layer): the test checks this.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "compression-structured", "locked": false, "solution": true}
#| export
def narrow(layer, inputs=None, outputs=None):
    """A new layer like `layer` (Linear or Conv2d) with only the input channels `inputs` and the output channels
    `outputs` (index arrays; None keeps all), and their weights and bias."""
    weight = layer.weight.numpy()
    bias = None if layer.bias is None else layer.bias.numpy()
    in_axis, out_axis = (1, 0) if isinstance(layer, Conv2d) else (0, 1)
    if inputs is not None:
        weight = np.take(weight, inputs, axis=in_axis)
    if outputs is not None:
        weight = np.take(weight, outputs, axis=out_axis)
        bias = None if bias is None else bias[outputs]
    if isinstance(layer, Conv2d):
        new = Conv2d(weight.shape[1], weight.shape[0], layer.kernel_size, layer.stride, layer.padding, bias=bias is not None)
    else:
        new = Linear(weight.shape[0], weight.shape[1], bias=bias is not None)
    new.weight = Parameter(weight.copy())
    new.bias = None if bias is None else Parameter(bias.copy())
    return new


def structured_prune(model: Sequential, fraction: float) -> Sequential:
    """A new, smaller Sequential: each Linear and Conv2d but the last keeps `channels_to_keep(layer, fraction)` of
    its outputs, and the next Linear or Conv2d loses the matching inputs (after a Flatten, the inputs of those
    channels' positions); the other layers are kept, and `model` is not changed."""
    if not isinstance(model, Sequential):
        raise TypeError(f"structured_prune needs a Sequential, got {type(model).__name__}")
    layers = list(model.layers)
    weighted = [index for index, layer in enumerate(layers) if isinstance(layer, (Linear, Conv2d))]
    if len(weighted) < 2:
        raise ValueError("structured_prune needs at least two Linear or Conv2d layers: the last one keeps its outputs")
    inputs = None  # the input channels of the current layer that survive
    for position, index in enumerate(weighted):
        layer = layers[index]
        ### BEGIN SOLUTION
        last = position == len(weighted) - 1
        outputs = None if last else channels_to_keep(layer, fraction)
        layers[index] = narrow(layer, inputs, outputs)
        inputs = outputs
        if not last and any(isinstance(between, Flatten) for between in layers[index:weighted[position + 1]]):
            positions = layers[weighted[position + 1]].in_features // layer.out_channels
            inputs = (outputs[:, None] * positions + np.arange(positions)).ravel()
        ### END SOLUTION
    return Sequential(*layers)

# %% [markdown]
# ### Test: structured pruning

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-compression-structured", "locked": true, "points": 4, "solution": false}
def prunable_weights_of(model):
    return [layer for layer in model.layers if isinstance(layer, (Linear, Conv2d))]


def zero_channels(model, fraction):
    """A copy of `model` with the pruned channels' weights and biases set to zero (the reference), by L1 norm."""
    copy = Sequential(*[narrow(layer) if isinstance(layer, (Linear, Conv2d)) else layer for layer in model.layers])
    weighted = [layer for layer in copy.layers if isinstance(layer, (Linear, Conv2d))]
    for layer in weighted[:-1]:
        weight = layer.weight.numpy()
        norms = np.abs(weight).sum(axis=(1, 2, 3)) if isinstance(layer, Conv2d) else np.abs(weight).sum(axis=0)
        dropped = np.argsort(-norms, kind="stable")[max(1, round((1 - fraction) * len(norms))):]
        if isinstance(layer, Conv2d):
            weight[dropped] = 0
        else:
            weight[:, dropped] = 0
        layer.bias.numpy()[dropped] = 0
    return copy


def test_unit_structured():
    rng = np.random.default_rng(3)
    cnn = Sequential(Conv2d(1, 4, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2), Conv2d(4, 6, 3, padding=1, rng=rng), ReLU(),
                     MaxPool2d(2), Flatten(), Linear(24, 6, rng=rng), ReLU(), Linear(6, 3, rng=rng))
    for layer in cnn.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.numpy()[...] = rng.uniform(0.2, 0.5, layer.bias.shape)  # biases that matter
    original = [layer.weight.numpy().copy() for layer in prunable_weights_of(cnn)]
    try:
        small = structured_prune(cnn, 0.5)
    except IndexError as error:
        raise AssertionError(
            f"structured_prune failed on Conv2d(4, 6) -> Flatten -> Linear(24, 6) ({error}): after Flatten, the positions "
            "per channel are the Linear's in_features divided by the channels the convolution had BEFORE pruning "
            "(24 / 6 = 4), not by the channels kept") from None
    shapes = [tuple(layer.weight.shape) for layer in small.layers if isinstance(layer, (Linear, Conv2d))]
    assert shapes[0] == (2, 1, 3, 3), (
        f"the first Conv2d should keep 2 of its 4 output channels, weight (2, 1, 3, 3), got {shapes[0]}"
        + (": the OUTPUT channels are axis 0 of a Conv2d weight" if shapes[0] == (4, 1, 3, 3) else ""))
    assert shapes[1][1] == 2, (
        f"the second Conv2d should lose the inputs its predecessor lost: weight (3, 2, 3, 3), got {shapes[1]}: the next "
        "layer's input channels must be removed too")
    assert shapes[1] == (3, 2, 3, 3), f"the second Conv2d should keep 3 of 6 outputs: weight (3, 2, 3, 3), got {shapes[1]}"
    assert shapes[2] == (12, 3), (
        f"after Flatten, the Linear(24, 6) should keep the 3 kept channels x 2 x 2 positions = 12 inputs and 3 outputs, "
        f"weight (12, 3), got {shapes[2]}")
    assert shapes[3] == (3, 3), (
        f"the last Linear keeps its 3 outputs (the classes) and loses its predecessor's pruned inputs: (3, 3), got {shapes[3]}"
        + (": the last layer must not be pruned" if shapes[3][1] != 3 else ""))
    biases = [layer.bias.shape for layer in small.layers if isinstance(layer, (Linear, Conv2d))]
    assert biases == [(2,), (3,), (3,), (3,)], f"each bias loses its pruned channels with them: expected shapes (2,), (3,), (3,), (3,), got {biases}"
    x = Tensor(rng.standard_normal((5, 1, 8, 8)).astype(np.float32))
    with no_grad():
        got, expected = small(x).numpy(), zero_channels(cnn, 0.5)(x).numpy()
    assert np.allclose(got, expected, atol=1e-5), (
        f"the pruned model should compute what the original computes with the pruned channels zeroed, got a difference of "
        f"{np.abs(got - expected).max():.4f}: keep the right channels, and after Flatten the features c * H * W ... "
        "(c + 1) * H * W - 1 of each kept channel c")
    assert all(np.array_equal(a, layer.weight.numpy()) for a, layer in zip(original, prunable_weights_of(cnn))), \
        "structured_prune should not change the model it is given"
    mlp = Sequential(Linear(5, 8, rng=rng), ReLU(), Linear(8, 4, rng=rng), ReLU(), Linear(4, 2, rng=rng))
    small_mlp = structured_prune(mlp, 0.25)
    assert [tuple(l.weight.shape) for l in small_mlp.layers[::2]] == [(5, 6), (6, 3), (3, 2)], \
        f"an MLP at fraction 0.25: expected weights (5, 6), (6, 3), (3, 2), got {[l.weight.shape for l in small_mlp.layers[::2]]}"
    h = Tensor(rng.standard_normal((4, 5)).astype(np.float32))
    with no_grad():
        assert np.allclose(small_mlp(h).numpy(), zero_channels(mlp, 0.25)(h).numpy(), atol=1e-5), \
            "the pruned MLP should compute what the MLP computes with the pruned neurons zeroed"


test_unit_structured()
print("test_unit_structured: passed")

# %% [markdown]
# ## 6. Knowledge distillation
#
# A small network trained on the labels learns "this is a 7". A big trained network knows more: that
# this 7 looks a little like a 1 and not at all like a 0. **Distillation** (Hinton, Vinyals and
# Dean, 2015) trains the small *student* to match the *teacher's* whole probability distribution.
# The teacher's softmax is nearly one-hot, so both are first **softened** with a temperature $T > 1$:
#
# $$p = \mathrm{softmax}(t / T), \qquad \log q = \mathrm{log\_softmax}(s / T),$$
#
# where $t$ and $s$ are the teacher's and student's logits. The student is pulled towards the
# teacher by the Kullback-Leibler divergence *from the teacher*, averaged over the batch of $N$
# examples ("batchmean": summed over the classes, divided by $N$, not by $N$ times the classes):
#
# $$\mathrm{KL}(p \,\|\, q) = \frac{1}{N} \sum_{n} \sum_{c} p_{nc}\,(\log p_{nc} - \log q_{nc}).$$
#
# The order matters: KL is not symmetric. $\mathrm{KL}(p\|q)$ weights each class by the teacher's
# probability, so the student is pushed to cover every class the teacher believes in.
#
# **The $T^2$ factor.** The gradient of the KL with respect to a student logit is
# $(q - p) / (T N)$; for large $T$, $q - p$ itself shrinks like $1/T$, so the gradient shrinks like
# $1/T^2$. Multiplying the KL by $T^2$ keeps its gradient the same size whatever the temperature, so
# that changing $T$ does not silently change how much the soft term weighs against the labels:
#
# $$\mathcal{L} = \alpha\,T^2\,\mathrm{KL}(p \,\|\, q) + (1 - \alpha)\,\mathrm{CE}(s, y).$$
#
# `soft_kl(student_logits, teacher_logits, temperature)` is the KL above, built from module 06's
# operations (`log_softmax` of a Variable, products, sums), so that its gradient flows into the
# student through the engine; the teacher's logits are constants (an array: no gradient goes to
# the teacher). `distillation_loss` adds the factor and the labels' cross-entropy (module 04's
# `cross_entropy`). PyTorch's `F.kl_div(log_softmax(s / T), softmax(t / T), reduction="batchmean")`
# computes the same KL: `tests/test_compression_torch.py` checks value and gradient against it.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "compression-distillation", "locked": false, "solution": true}
#| export
def soft_kl(student_logits, teacher_logits, temperature: float):
    """KL(softmax(teacher / T) || softmax(student / T)), summed over the classes (last axis) and averaged over the
    batch; a graph operation of the student's logits (the teacher's are constants)."""
    if not temperature > 0:
        raise ValueError(f"the temperature must be positive, got {temperature}")
    teacher = np.asarray(_value(teacher_logits))
    if teacher.shape != tuple(student_logits.shape):
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits {teacher.shape} differ in shape")
    batch = teacher.shape[0] if teacher.ndim > 1 else 1
    ### BEGIN SOLUTION
    with no_grad():
        teacher_log_p = log_softmax(teacher / temperature).numpy()
    student_log_q = log_softmax(student_logits / temperature)
    return (np.exp(teacher_log_p) * (teacher_log_p - student_log_q)).sum() / batch
    ### END SOLUTION


def distillation_loss(student_logits, teacher_logits, targets, temperature: float = 4.0, alpha: float = 0.9):
    """alpha * T^2 * soft_kl(student, teacher, T) + (1 - alpha) * cross_entropy(student, targets)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    ### BEGIN SOLUTION
    soft = soft_kl(student_logits, teacher_logits, temperature) * (alpha * temperature ** 2)
    return soft + cross_entropy(student_logits, targets) * (1 - alpha)
    ### END SOLUTION

# %% [markdown]
# ### Test: distillation

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-compression-distillation", "locked": true, "points": 4, "solution": false}
def reference_kl(student, teacher, temperature):
    """The KL written out in NumPy, from the definition."""
    def log_softmax_np(z):
        z = z - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    log_p, log_q = log_softmax_np(teacher / temperature), log_softmax_np(student / temperature)
    return float((np.exp(log_p) * (log_p - log_q)).sum() / len(student))


def test_unit_distillation():
    rng = np.random.default_rng(4)
    student = rng.standard_normal((6, 5)) * 2
    teacher = rng.standard_normal((6, 5)) * 3
    logits = Variable(student.copy(), requires_grad=True)
    kl = soft_kl(logits, teacher, 2.0)
    assert isinstance(kl, Variable) and kl.grad_fn is not None, "soft_kl should be a graph operation of the student's logits"
    expected = reference_kl(student, teacher, 2.0)
    got = float(kl.item())
    assert not np.isclose(got, reference_kl(teacher, student, 2.0)) or np.isclose(got, expected), \
        f"soft_kl is KL(teacher || student) = sum p_teacher (log p_teacher - log q_student); the direction is swapped (got {got:.5f}, expected {expected:.5f})"
    assert not np.isclose(got, reference_kl(student / 2.0, teacher, 1.0)) or np.isclose(got, expected), \
        f"the temperature applies to BOTH sides: the teacher's logits are divided by T too (got {got:.5f}, expected {expected:.5f})"
    assert not np.isclose(got, reference_kl(student, teacher / 2.0, 1.0)) or np.isclose(got, expected), \
        f"the temperature applies to BOTH sides: the student's logits are divided by T too (got {got:.5f}, expected {expected:.5f})"
    cross = float((-np.exp(np.log(np.exp(teacher / 2.0) / np.exp(teacher / 2.0).sum(axis=1, keepdims=True)))
                   * (student / 2.0 - np.log(np.exp(student / 2.0).sum(axis=1, keepdims=True)))).sum() / 6)
    assert not np.isclose(got, cross), (
        f"soft_kl gave the cross-entropy H(p, q) = -sum p log q ({got:.5f}); the KL subtracts the teacher's entropy: "
        f"sum p (log p - log q) = {expected:.5f}")
    assert not np.isclose(got, expected / 5), \
        f"batchmean: sum over the classes, divide by the batch size N only, not by N * classes (got {got:.5f}, expected {expected:.5f})"
    assert np.isclose(got, expected, rtol=1e-6), f"soft_kl at T = 2 should be {expected:.6f}, got {got:.6f}"
    kl.backward()
    p = np.exp(teacher / 2.0) / np.exp(teacher / 2.0).sum(axis=1, keepdims=True)
    q = np.exp(student / 2.0) / np.exp(student / 2.0).sum(axis=1, keepdims=True)
    assert logits.grad is not None and np.allclose(logits.grad, (q - p) / (2.0 * 6)), \
        "the gradient of soft_kl with respect to a student logit should be (q - p) / (T * N)"
    assert np.isclose(float(soft_kl(Variable(teacher), teacher, 3.0).item()), 0.0, atol=1e-9), "KL of a distribution with itself is 0"
    confident = teacher * 100 + 800  # logits near 1,000: exp overflows without a shift
    big = float(soft_kl(Variable(student), confident, 1.0).item())
    assert np.isfinite(big) and np.isclose(big, reference_kl(student, confident, 1.0), rtol=1e-6), (
        f"soft_kl with teacher logits near 1,000 gave {big}, expected {reference_kl(student, confident, 1.0):.5f}: "
        "subtract the row's max before exp (log_softmax does)")

    labels = rng.integers(0, 5, 6)
    logits = Variable(student.copy(), requires_grad=True)
    loss = distillation_loss(logits, teacher, labels, temperature=3.0, alpha=0.7)
    ce = float(cross_entropy(Variable(student), labels).item())
    soft = reference_kl(student, teacher, 3.0)
    value = float(loss.item())
    assert not np.isclose(value, 0.7 * soft + 0.3 * ce), \
        f"the soft term is multiplied by T^2 = 9 (its gradient shrinks like 1/T^2 without it); got {value:.5f}"
    assert not np.isclose(value, 0.7 * 3 * soft + 0.3 * ce), \
        f"the soft term is multiplied by T^2 = 9, not by T = 3; got {value:.5f}"
    tempered_ce = float(cross_entropy(Variable(student / 3.0), labels).item())
    assert not np.isclose(value, 0.7 * 9 * soft + 0.3 * tempered_ce), \
        "the labels' cross-entropy takes the student's raw logits, not divided by T (only the soft term is softened)"
    assert not np.isclose(value, 0.3 * 9 * soft + 0.7 * ce), "alpha weighs the soft (teacher) term, 1 - alpha the labels"
    assert np.isclose(value, 0.7 * 9 * soft + 0.3 * ce, rtol=1e-6), \
        f"distillation_loss should be alpha * T^2 * KL + (1 - alpha) * CE = {0.7 * 9 * soft + 0.3 * ce:.5f}, got {value:.5f}"
    loss.backward()
    p, q = (np.exp(z / 3.0) / np.exp(z / 3.0).sum(axis=1, keepdims=True) for z in (teacher, student))
    softmax = np.exp(student) / np.exp(student).sum(axis=1, keepdims=True)
    expected_grad = 0.7 * 9 * (q - p) / (3.0 * 6) + 0.3 * (softmax - np.eye(5)[labels]) / 6
    assert logits.grad is not None and np.allclose(logits.grad, expected_grad, atol=1e-8), (
        "the gradient of distillation_loss should be alpha * T^2 * (q - p) / (T N) + (1 - alpha) * (softmax(s) - onehot) / N: "
        "both terms must stay graph operations of the student's logits (no float(), no .item())")
    try:
        soft_kl(Variable(student), teacher[:, :4], 2.0)
    except ValueError:
        pass
    else:
        raise AssertionError("soft_kl with logits of different shapes should raise ValueError")

test_unit_distillation()
print("test_unit_distillation: passed")

# %% [markdown]
# ## 7. Systems analysis: accuracy, bytes and time
#
# The digits CNN of `tito milestone cnn` (16 then 32 channels), trained for 10 epochs (a second or
# so). Training and test images are module 08's split; the test images are only ever measured. NumPy's
# BLAS is held to one thread for the whole analysis, as in module 09: for arrays this small a second
# thread costs more than it saves, and the times below compare like with like.

# %%
from threadpoolctl import threadpool_limits  # noqa: E402  (comes with scikit-learn, as module 09 notes)

blas_limit = threadpool_limits(1, "blas")  # kept until the kernel stops
digits = load_digits_dataset()
standardize = Standardizer(digits.x_train)
train_x, test_x = (standardize(x).reshape(-1, 1, 8, 8) for x in (digits.x_train, digits.x_test))


def digits_cnn(seed=0, channels=16):
    rng = np.random.default_rng(seed)
    return Sequential(Conv2d(1, channels, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2),
                      Conv2d(channels, 2 * channels, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2), Flatten(),
                      Linear(8 * channels, 10, rng=rng))


def fit(model, epochs, optimizer=None, lr=3e-3):
    optimizer = optimizer or Adam(model.parameters(), lr=lr)
    Trainer(model, optimizer, CrossEntropyLoss()).fit(
        DataLoader(train_x, digits.y_train, batch_size=32, shuffle=True, seed=0), epochs=epochs)
    return model


def accuracy_of(model) -> float:
    with no_grad():
        return float(np.mean(model(Tensor(test_x)).numpy().argmax(axis=1) == digits.y_test))


def copy_of(model):
    twin = digits_cnn(channels=model.layers[0].out_channels)
    twin.load_state_dict(model.state_dict())
    return twin


cnn = fit(digits_cnn(), epochs=10)
dense_accuracy = accuracy_of(cnn)
print(f"dense CNN: {dense_accuracy:.1%} on {len(test_x)} test images")

# %% [markdown]
# **Sparsity against accuracy.** For each sparsity: prune a copy of the trained CNN globally, measure,
# fine-tune three epochs with the masks kept, measure again. Layer-wise pruning at the same sparsity
# is shown for comparison (before fine-tuning). Moderate sparsities first, then extreme ones (two
# cells, so that each stays within a graded cell's time).

# %%
def prune_and_measure(sparsity):
    """(sparsity, accuracy right after global pruning, after 3 epochs of fine-tuning, after layer-wise pruning)."""
    pruned = copy_of(cnn)
    pruning = Pruning(pruned, sparsity)
    after_pruning = accuracy_of(pruned)
    fit(pruned, epochs=3, optimizer=MaskedOptimizer(Adam(pruned.parameters(), lr=1e-3), pruning))
    layerwise = copy_of(cnn)
    Pruning(layerwise, sparsity, scope="layer")
    return sparsity, after_pruning, accuracy_of(pruned), accuracy_of(layerwise)


curve = [(0.0, dense_accuracy, dense_accuracy, dense_accuracy)] + [prune_and_measure(s) for s in (0.5, 0.7, 0.8)]

# %%
curve += [prune_and_measure(s) for s in (0.9, 0.95)]
print(f"{'sparsity':>8} {'pruned':>7} {'fine-tuned':>11} {'layer-wise':>11}")
for sparsity, after_pruning, tuned, layerwise in curve:
    print(f"{sparsity:>8.0%} {after_pruning:>7.1%} {tuned:>11.1%} {layerwise:>11.1%}")

# %%
import matplotlib.pyplot as plt  # noqa: E402

figure, axes = plt.subplots(figsize=(6, 3.5))
axes.plot([c[0] for c in curve], [c[2] for c in curve], marker="o", label="global, fine-tuned 3 epochs")
axes.plot([c[0] for c in curve], [c[1] for c in curve], marker="o", label="global, not fine-tuned")
axes.plot([c[0] for c in curve], [c[3] for c in curve], marker="o", label="per layer, not fine-tuned")
axes.set_xlabel("sparsity (fraction of weights pruned)")
axes.set_ylabel("test accuracy")
axes.grid(alpha=0.3)
axes.legend()
plt.show()

at_80 = next(c for c in curve if c[0] == 0.8)
print(f"At 80% sparsity, fine-tuned: {at_80[2]:.1%} against {dense_accuracy:.1%} dense "
      + ("(within 1 point)." if dense_accuracy - at_80[2] <= 0.01 else f"({(dense_accuracy - at_80[2]) * 100:.1f} points lower)."))
print("Global pruning " + ("beats" if at_80[1] > at_80[3] else "does not beat") + f" per-layer pruning at 80% before fine-tuning "
      f"here ({at_80[1]:.1%} against {at_80[3]:.1%}).")

# %% [markdown]
# Read the curve: the fine-tuned line stays near the dense accuracy up to a high sparsity, then
# falls off a cliff, where too few weights remain to represent the task; without fine-tuning the
# cliff comes earlier. Per-layer pruning takes the same share from the 72 weights of the first
# convolution as from the big layers, and that small layer is where it hurts (compare the two
# columns before fine-tuning above).
#
# **Bytes.** An unstructured pruned array is as big as before: the zeros are stored. To save bytes
# it needs a sparse format. Compressed sparse row (CSR) stores each non-zero value (4 bytes) and its
# column index (4 bytes, int32) and one offset per row; a bitmask format stores one bit per weight
# and the non-zero values. Measured on the pruned weights of the CNN (the `np.savez` file of the
# dense arrays, and the sizes of the sparse arrays):

# %%
def csr_bytes(array: np.ndarray) -> int:
    """Bytes of `array` (as a matrix: first axis rows) in CSR: float32 values, int32 column indices, row offsets."""
    matrix = array.reshape(len(array), -1)
    nonzero = int(np.count_nonzero(matrix))
    return nonzero * 4 + nonzero * 4 + (len(matrix) + 1) * 4


def bitmask_bytes(array: np.ndarray) -> int:
    return int(np.ceil(array.size / 8)) + int(np.count_nonzero(array)) * 4


def saved_bytes(arrays) -> int:
    buffer = io.BytesIO()
    np.savez(buffer, *arrays)
    return buffer.getbuffer().nbytes


print(f"{'sparsity':>8} {'dense weights':>14} {'.npz file':>10} {'CSR':>8} {'bitmask':>8} {'CSR / dense':>12}")
for sparsity in [0.0, 0.5, 0.8, 0.9]:
    pruned = copy_of(cnn)
    Pruning(pruned, sparsity)
    weights = [w.numpy() for w in prunable_weights(pruned)]
    dense = sum(w.nbytes for w in weights)
    csr = sum(csr_bytes(w) for w in weights)
    print(f"{sparsity:>8.0%} {dense:>14,} {saved_bytes(weights):>10,} {csr:>8,} {sum(bitmask_bytes(w) for w in weights):>8,} "
          f"{csr / dense:>11.2f}x")

# %% [markdown]
# CSR costs 8 bytes per non-zero against 4 per weight dense: it breaks even at 50% sparsity and
# saves bytes only beyond; at 80% it needs about 40% of the dense bytes, plus the row offsets. The
# bitmask costs a fixed eighth of a byte per weight, and wins at moderate sparsity. Combined with
# module 14, the values themselves become int8 (1 byte): `tito milestone compress` reports that
# combination.
#
# **Time.** Structured pruning makes the layers smaller; a dense engine then really does less work.
# The forward pass over the 359 test images, dense against half the channels removed, and the
# accuracy before and after two epochs of fine-tuning:

# %%
half = structured_prune(cnn, 0.5)
half_before = accuracy_of(half)
fit(half, epochs=2, lr=1e-3)
images = Tensor(test_x)
with no_grad():
    dense_time = best_time(lambda: cnn(images), 10)
    half_time = best_time(lambda: half(images), 10)
weights_of = lambda model: sum(w.numpy().size for w in prunable_weights(model))  # noqa: E731
print(f"{'model':28} {'weights':>8} {'accuracy':>9} {'forward (ms)':>13}")
print(f"{'dense':28} {weights_of(cnn):>8,} {dense_accuracy:>9.1%} {dense_time * 1e3:>13.2f}")
print(f"{'half the channels':28} {weights_of(half):>8,} {half_before:>9.1%} {half_time * 1e3:>13.2f}")
print(f"{'half, fine-tuned 2 epochs':28} {weights_of(half):>8,} {accuracy_of(half):>9.1%} {'':>13}")
speedup = dense_time / half_time
print(f"Removing half the channels made the forward pass {speedup:.2f}x "
      + ("faster." if speedup > 1 else "as fast or slower: fixed costs dominate at this size on this machine."))

# %% [markdown]
# Count the arithmetic: halving the channels halves the work of the first convolution and of the
# `Linear` layer, and quarters the second convolution's (half the inputs times half the outputs); so arithmetic alone
# predicts a speed-up between 2x and 4x. The rest of the work shrinks by half at most: ReLU and
# pooling by half, the first convolution's im2col not at all (its columns come from the one input
# channel, however many outputs there are), each layer's fixed Python cost not at all. The larger
# their share of the dense time, the closer the measured number comes to 2x, or below; a number
# above 4x would come from memory instead (the smaller layers' im2col columns are half as large and
# stay in the caches). Unstructured sparsity gives no speed-up at all here: NumPy multiplies
# zeros as fast as anything else, and sparse kernels pay off only at very high sparsity or on
# hardware made for it (e.g. 2:4 structured sparsity on recent GPUs).
#
# **Distillation.** A student with a quarter of the channels (4 then 8), trained for the same 10
# epochs on the labels alone, and on the teacher's softened outputs (`distillation_loss`, T = 4,
# alpha = 0.9). The teacher's logits are computed once for all training images.

# %%
def distill(student, teacher, epochs, temperature=4.0, alpha=0.9, batch_size=32):
    with no_grad():
        teacher_logits = teacher(Tensor(train_x)).numpy()
    optimizer = Adam(student.parameters(), lr=3e-3)
    order = np.random.default_rng(0)
    for _ in range(epochs):
        for batch in np.array_split(order.permutation(len(train_x)), len(train_x) // batch_size):
            optimizer.zero_grad()
            loss = distillation_loss(student(Tensor(train_x[batch])), teacher_logits[batch], digits.y_train[batch],
                                     temperature, alpha)
            loss.backward()
            optimizer.step()
    return student


on_labels = accuracy_of(fit(digits_cnn(seed=1, channels=4), epochs=10))
distilled = accuracy_of(distill(digits_cnn(seed=1, channels=4), cnn, epochs=10))
print(f"teacher (16/32 channels) {dense_accuracy:.1%}; student (4/8 channels): labels only {on_labels:.1%}, distilled {distilled:.1%}")
print("Here distillation " + ("helped" if distilled > on_labels else "did not help") + f" the student by {(distilled - on_labels) * 100:+.1f} points.")

# %% [markdown]
# On a task this small the student already learns most of what there is from the labels, so the
# difference printed above is a few test images either way; distillation earns its keep where the
# labels say little that the teacher knows (many classes, similar classes, language models), and
# where data for the student is scarce: the teacher's soft targets carry more information per
# example than one label.

# %% [markdown]
# ## 8. Reflection
#
# Answer in a sentence or three each.

# %% [markdown]
# **Q1.** Why does global magnitude pruning usually keep more accuracy than pruning every layer to
# the same sparsity? What would go wrong with global pruning if one layer's weights were ten times
# larger than the others' for no reason of importance?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-compression-global", "locked": false, "points": 2, "solution": true}
# Layers differ in redundancy: big layers have many weights that carry little, small early layers
# (the first convolution) have few and each matters. One threshold takes more from the redundant
# layers and spares the small ones. But magnitude is compared across layers, so it assumes the
# layers' scales are comparable: a layer whose weights are ten times larger (compensated by a small
# next layer, or by normalization) would be spared entirely, and the others pruned much harder than
# their importance warrants.

# %% [markdown]
# **Q2.** Unstructured pruning at 80% and removing half the channels: compare them in bytes, in
# time on NumPy and in accuracy, using the numbers measured above. Which would you ship to a phone,
# and what would change your mind?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-compression-tradeoffs", "locked": false, "points": 2, "solution": true}
# Unstructured 80% keeps the accuracy best but saves bytes only in a sparse format (CSR about 40% of
# dense) and no time with dense kernels. Removing half the channels saves about three quarters of
# the convolution weights and measurably speeds up inference, with a larger accuracy loss that
# fine-tuning partly recovers. For a phone with dense kernels, structured pruning (plus INT8); an
# engine with fast sparse kernels, or a tight download-size budget, would favour unstructured.

# %% [markdown]
# **Q3.** In distillation, what does the temperature change about the teacher's targets, and why is
# the soft loss multiplied by $T^2$? What happens with $T = 1$ and a very confident teacher?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-compression-temperature", "locked": false, "points": 2, "solution": true}
# Dividing the logits by T > 1 flattens the softmax, so the small probabilities of the wrong classes
# (which classes the teacher finds similar) become large enough to learn from. The KL's gradient
# shrinks like 1/T^2, so T^2 keeps the soft term's weight against the hard labels independent of T.
# With T = 1 and a confident teacher the targets are almost one-hot: distillation degenerates into
# training on the labels and the "dark knowledge" is lost.

# %% [markdown]
# ## Summary
#
# Magnitude pruning zeroes the smallest weights, per layer or, better, with one threshold for the
# whole network; the masks are reapplied after every optimizer step, because optimizers with
# momentum move weights whose gradient is zero. Structured pruning removes whole channels and
# neurons, with their biases and the matching inputs of the next layer, and yields smaller layers
# that compute exactly what the masked network computes, faster. Distillation trains a student on a
# teacher's softened distribution, with the $T^2$ factor keeping the soft term's weight. Unstructured
# sparsity saves bytes only in a sparse format and time only with sparse kernels; structured pruning
# saves both with ordinary dense code. Export with `tito module complete 15_compression`.
