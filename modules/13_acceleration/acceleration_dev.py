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
# # Acceleration: fused operations for the GPT
#
# Module 12's profile of a GPT training step showed where the time goes: not in the matrix products that
# hold the FLOPs, but in chains of cheap operations, each of which reads and writes a whole array and
# records a graph node: the scores, the mask, the softmax and its backward rule in attention; the
# log-softmax, the gather and the mean of the loss. This module replaces each chain by one **fused**
# operation: one graph node, whose forward pass makes as few arrays as it can and whose backward rule is
# derived by hand, so the engine never builds (or walks back through) the intermediate steps.
#
# A fused operation must compute the same numbers as the composed one. Every operation here is checked
# against the composed form (to 1e-6 in float64), against PyTorch where it is installed, and with module
# 06's locked gradient checker. The module ends with `FusedGPT`: module 11's `GPT` with these operations,
# the same parameters under the same names. Module 11 knows nothing of it; `tito milestone gpt` trains a
# `FusedGPT` once this module is complete (tito reads that from your package: no part left to write) and
# module 11's `GPT` before, and says which in its first line.
#
# **Objectives.** At the end you can
# - derive the backward rule of softmax followed by cross-entropy, and write the pair as one operation;
# - write causal scaled dot-product attention as one operation, with the mask applied inside and the
#   softmax backward folded into its rule;
# - compute LayerNorm's value and gradients from fewer passes over memory (row sums as products, `einsum`);
# - check a fused operation against its composed form and a numerical gradient;
# - measure what fusing gains on the GPT step, with module 12's profiler.
#
# | You write here | It becomes | Used by |
# |---|---|---|
# | this notebook, `acceleration.ipynb` | `tinytorch.core.acceleration` | `FusedGPT`, trained by `tito milestone gpt` |

# %%
#| default_exp core.acceleration

# %%
#| export
from __future__ import annotations

import math

import numpy as np

from tinytorch.core.attention import LayerNorm, MultiHeadAttention, causal_mask, token_ids
from tinytorch.core.autograd import record
from tinytorch.core.losses import Loss, flatten_positions, values_of
from tinytorch.core.transformer import GPT

# %%
# For the examples and tests below (the exported code does not need them).
from tinytorch.core.attention import layer_norm, scaled_dot_product_attention
from tinytorch.core.autograd import Variable
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.operations import gradcheck
from tinytorch.core.profiling import Profiler
from tinytorch.core.tensor import Tensor, best_time
from tinytorch.core.transformer import PerPositionLogits

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # comes with scikit-learn; without it, BLAS runs as configured
    threadpool_limits = None
if threadpool_limits is not None:
    threadpool_limits(1, "blas")  # one BLAS thread: the measurements below compare the engine, not the load


def float64(*shape, seed=0):
    """A float64 Variable of standard normal numbers that requires gradients (for the tests)."""
    return Variable(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)

# %% [markdown]
# ## 1. Softmax and cross-entropy as one operation
#
# Module 04's `CrossEntropyLoss` computes, for logits $x$ (N, C) and class indices $t$ (N,),
#
# $$L = \frac{1}{N}\sum_n \Big(\log \sum_c e^{x_{nc}} - x_{n t_n}\Big)$$
#
# as a chain: subtract the row maximum, exponentiate, sum, take the log, subtract, pick each row's target,
# average. About half a dozen graph nodes, each with an array of size N x C and a backward rule. Yet the
# gradient of the whole chain is short. With $p_{nc} = e^{x_{nc}} / \sum_{c'} e^{x_{nc'}}$ the softmax,
#
# $$\frac{\partial L}{\partial x_{nc}} = \frac{1}{N}\big(p_{nc} - [c = t_n]\big)$$
#
# (the log-sum-exp differentiates to the softmax, the picked logit to a one-hot row). So the fused
# operation keeps the exponentials of the forward pass and its backward rule is one division, one
# subtraction at the targets and one scaling by $g/N$.
#
# Write `softmax_cross_entropy(logits, targets)`: the mean loss as **one** graph node named
# `"SoftmaxCrossEntropy"` (recorded with module 05's `record`), stable for large logits (shift each row by
# its maximum), of the logits' dtype (a float32 model stays float32: no float64 drift), whose rule gives
# `g * (p - onehot) / N`. Targets are checked with module 10's `token_ids` (whole numbers in `[0, C)`).

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "acceleration-cross-entropy", "locked": false, "solution": true}
#| export
def softmax_cross_entropy(logits, targets):
    """The mean cross-entropy of logits (N, C) against class indices (N,), as one operation whose rule is
    (softmax(logits) - onehot(targets)) / N times the output's gradient.

    >>> float(softmax_cross_entropy(Variable([[0.0, 0.0]]), [1]).numpy().round(4))  # log 2
    0.6931
    """
    x = np.asarray(values_of(logits))
    if x.ndim != 2:
        raise ValueError(f"softmax_cross_entropy expects logits of shape (N, C), got shape {x.shape}")
    t = token_ids(values_of(targets), x.shape[1])
    if t.shape != (x.shape[0],):
        raise ValueError(f"softmax_cross_entropy expects targets of shape ({x.shape[0]},) for logits {x.shape}, got shape {t.shape}")
    rows = np.arange(x.shape[0])
    ### BEGIN SOLUTION
    shifted = x - x.max(axis=1, keepdims=True)
    exps = np.exp(shifted)
    sums = exps.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(sums[:, 0]) - shifted[rows, t])

    def rule(g):
        grad = exps / sums
        grad[rows, t] -= 1.0
        grad *= g / x.shape[0]
        return grad

    return record(np.asarray(loss, dtype=x.dtype), "SoftmaxCrossEntropy", (logits, rule))
    ### END SOLUTION

# %% [markdown]
# ### Test: softmax and cross-entropy

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-acceleration-cross-entropy", "locked": true, "points": 4, "solution": false}
def test_unit_cross_entropy():
    logits, targets = float64(6, 5), np.array([0, 4, 2, 2, 1, 3])
    fused = softmax_cross_entropy(logits, targets)
    composed = CrossEntropyLoss()(Variable(logits.numpy()), targets)
    assert abs(fused.item() - composed.item()) < 1e-6, f"the loss should equal module 04's CrossEntropyLoss {composed.item():.6f} (the mean over rows of log-sum-exp minus the target's logit), got {fused.item():.6f}"
    assert fused.grad_fn is not None and fused.grad_fn.name == "SoftmaxCrossEntropy", \
        f"the loss should be one graph node named SoftmaxCrossEntropy, got {fused.grad_fn}"
    assert fused.grad_fn.inputs == (logits,), f"the node's only input should be the logits themselves (one node, no chain), got {fused.grad_fn.inputs}"
    big = softmax_cross_entropy(Variable([[1000.0, 0.0]]), [0])
    assert np.isfinite(big.item()) and abs(big.item()) < 1e-6, f"logits [[1000, 0]] with target 0 have loss 0: shift each row by its maximum, got {big.item()}"
    apart = softmax_cross_entropy(Variable([[1000.0, 0.0], [0.0, -1000.0]]), [0, 0])
    assert np.isfinite(apart.item()) and abs(apart.item()) < 1e-6, f"logits [[1000, 0], [0, -1000]] with targets [0, 0] have loss 0: shift each row by its OWN maximum, got {apart.item()}"
    half = softmax_cross_entropy(Variable(np.zeros((2, 3), dtype=np.float32)), [0, 1])
    assert half.numpy().dtype == np.float32, f"float32 logits should give a float32 loss (no float64 drift), got {half.numpy().dtype}"
    fused.backward()
    probs = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum(axis=1, keepdims=True)
    expected = (probs - np.eye(5)[targets]) / 6
    assert np.allclose(logits.grad, expected, atol=1e-9), f"the gradient should be (softmax - onehot) / N, got\n{np.round(logits.grad, 4)}\nexpected\n{np.round(expected, 4)}"
    twice = Variable(logits.numpy(), requires_grad=True)
    softmax_cross_entropy(twice, targets).backward(np.array(2.0))
    assert np.allclose(twice.grad, 2 * expected, atol=1e-9), "the rule should multiply by the output's gradient g: backward(2.0) should double the gradient"
    again = Variable(logits.numpy(), requires_grad=True)
    loss = softmax_cross_entropy(again, targets)
    loss.backward(retain_graph=True)
    loss.backward()
    assert np.allclose(again.grad, 2 * expected, atol=1e-9), \
        "a second backward through the same loss (retain_graph=True) should add the same gradient again: the rule must not write into the exponentials it keeps"
    assert gradcheck(lambda x: softmax_cross_entropy(x, targets) * 3.0, float64(6, 5, seed=1), name="softmax_cross_entropy")
    for bad, message in (([0, 1, 2, 3, 4, 5], "out of range"), ([0, 1], "shape")):
        try:
            softmax_cross_entropy(logits, bad)
        except ValueError as error:
            assert message in str(error), f"targets {bad} should be refused naming the problem ({message}), got: {error}"
        else:
            raise AssertionError(f"targets {bad} should be refused with a ValueError")

test_unit_cross_entropy()
print("test_unit_cross_entropy: passed")

# %% [markdown]
# A language model's loss has logits (B, C, T) (module 11's `PerPositionLogits`) against targets (B, T).
# `FusedCrossEntropyLoss` lays them out as rows with module 04's `flatten_positions` and calls the fused
# operation (given).

# %%
#| export
class FusedCrossEntropyLoss(Loss):
    """Mean cross-entropy of logits (N, C) or (N, C, d1, ...) against class indices (N,) or (N, d1, ...),
    as module 04's CrossEntropyLoss() with its defaults, computed by one fused operation."""

    def forward(self, logits, target):
        rows, row_targets, _ = flatten_positions(logits, values_of(target), "FusedCrossEntropyLoss")
        return softmax_cross_entropy(rows, row_targets)

# %% [markdown]
# ## 2. Causal attention as one operation: the forward pass
#
# Module 10's `scaled_dot_product_attention` is a chain too: scale the queries, transpose the keys, the
# product, add the mask, softmax, the product with the values. For queries, keys and values $Q, K, V$
# (..., T, D) and $s = 1/\sqrt{D}$:
#
# $$S = s\,Q K^\top, \qquad P = \mathrm{softmax}(S + M), \qquad O = P V$$
#
# where the causal mask $M$ is $-\infty$ above the diagonal. Fused, every step works in place on one
# array: the scores become the weights, so the forward pass makes one T x T array per head instead of
# five, and records one node instead of six.
#
# One fact about memory decides the layout. A softmax reduces each row of $S$ (the max, the sum): NumPy
# reduces along the last axis one short row at a time, but along any other axis it combines whole
# contiguous rows with vectorized elementwise operations, often several times faster for short rows. So compute
# the scores **transposed**, keys along axis -2: $S^\top = K (sQ)^\top$ (scaling $Q$, a T x D array, rather
# than the T x T scores), add module 10's `causal_mask` transposed, and reduce over axis -2. Return
# $P$ as `np.swapaxes` of that array: a view, no copy; the product $PV$ reads it as it is.
#
# Write `causal_attention_forward(q, k, v)` on NumPy arrays: it returns the output $O$ and the weights $P$
# (kept for the backward pass). The diagonal is never masked, so each row's maximum is finite.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "acceleration-attention-forward", "locked": false, "solution": true}
#| export
def causal_attention_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P @ v, P) with P = softmax(q k^T / sqrt(D) + causal mask) over the last axis, for q, k (..., T, D)
    and v (..., T, Dv); P is (..., T, T), zero above the diagonal.

    >>> causal_attention_forward(np.ones((2, 1)), np.ones((2, 1)), np.array([[1.0], [3.0]]))[0].tolist()
    [[1.0], [2.0]]
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    ### BEGIN SOLUTION
    weights_t = k @ np.swapaxes(q * scale, -1, -2)        # S^T: (..., keys, queries)
    weights_t += causal_mask(q.shape[-2], weights_t.dtype).T
    weights_t -= weights_t.max(axis=-2, keepdims=True)
    np.exp(weights_t, out=weights_t)
    weights_t /= weights_t.sum(axis=-2, keepdims=True)
    weights = np.swapaxes(weights_t, -1, -2)
    return weights @ v, weights
    ### END SOLUTION

# %% [markdown]
# ### Test: attention forward

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-acceleration-attention-forward", "locked": true, "points": 3, "solution": false}
def test_unit_attention_forward():
    q, k, v = (np.random.default_rng(seed).standard_normal((2, 3, 5, 4)) for seed in (0, 1, 2))
    out, weights = causal_attention_forward(q, k, v)
    composed = scaled_dot_product_attention(Variable(q), Variable(k), Variable(v), causal=True).numpy()
    assert out.shape == (2, 3, 5, 4) and weights.shape == (2, 3, 5, 5), f"out should be (2, 3, 5, 4) and weights (2, 3, 5, 5), got {out.shape} and {weights.shape}"
    assert np.all((weights >= 0) & (weights <= 1)), \
        f"the weights are probabilities in [0, 1], the exponentials of the shifted scores normalized (np.exp(a) without out= leaves a as it was), got\n{np.round(weights[0, 0], 3)}"
    assert np.allclose(weights.sum(axis=-1), 1.0, atol=1e-12), f"each row of the weights should sum to 1 (a softmax over the keys, with the mask before the softmax), got {weights.sum(axis=-1)[0, 0]}"
    assert np.all(weights[..., np.triu_indices(5, 1)[0], np.triu_indices(5, 1)[1]] == 0), \
        f"a query may not see later keys: the weights above the diagonal should be 0, got\n{np.round(weights[0, 0], 3)}"
    assert np.allclose(out, composed, atol=1e-6), f"the output should equal module 10's scaled_dot_product_attention (causal), P V, whose scores are scaled by 1/sqrt(D), the max shift and the sum run over the keys (axis -2 of S^T); largest difference {np.abs(out - composed).max():.2e}"
    big = causal_attention_forward(np.full((2, 1), 1000.0), np.full((2, 1), 1000.0), np.ones((2, 1)))[0]
    assert np.all(np.isfinite(big)), f"large scores should not overflow: subtract each row's maximum before exp, got {big.ravel()}"

test_unit_attention_forward()
print("test_unit_attention_forward: passed")

# %% [markdown]
# ## 3. The backward pass of attention, derived by hand
#
# Walk the forward pass backwards with $G = \partial L/\partial O$:
#
# - $O = PV$: $\;\partial L/\partial V = P^\top G$ and $\partial L/\partial P = G V^\top$;
# - $P = \mathrm{softmax}(S + M)$ row by row: $\;\partial L/\partial S = P \odot \big(\partial L/\partial P - \textstyle\sum_j (\partial L/\partial P \odot P)_{:,j}\big)$
#   (module 06's softmax rule; the masked entries have $P = 0$, so they get no gradient, with nothing to do);
# - $S = s\,QK^\top$: $\;\partial L/\partial Q = s\,(\partial L/\partial S)\,K$ and $\partial L/\partial K = s\,(\partial L/\partial S)^\top Q$.
#
# Write `causal_attention_backward(g, q, k, v, weights)`: the three gradients, working in place on the
# one T x T array it needs, in the transposed layout of the forward pass (`np.swapaxes(weights, -1, -2)`
# is the contiguous $P^\top$): $\partial L/\partial P^\top = V G^\top$, the row sums of the softmax rule
# become sums over axis -2 (`np.einsum` multiplies and sums in one pass, without the product array), and
# the scale $s$ multiplies the two T x D results rather than the T x T array. Then `causal_attention` (given) makes the operation: one graph node
# `"CausalAttention"` whose three rules share one call of your backward function per gradient.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "acceleration-attention-backward", "locked": false, "solution": true}
#| export
def causal_attention_backward(g: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray,
                              weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gradients (dq, dk, dv) of causal attention for the output's gradient g (..., T, Dv), with
    `weights` the P of causal_attention_forward(q, k, v)."""
    weights_t = np.swapaxes(weights, -1, -2)
    scale = 1.0 / math.sqrt(q.shape[-1])
    ### BEGIN SOLUTION
    grad_v = weights_t @ g
    grad_t = v @ np.swapaxes(g, -1, -2)                   # dL/dP^T
    grad_t -= np.einsum("...kq,...kq->...q", grad_t, weights_t)[..., None, :]
    grad_t *= weights_t                                   # dL/dS^T
    grad_q = np.swapaxes(grad_t, -1, -2) @ k
    grad_q *= scale
    grad_k = grad_t @ q
    grad_k *= scale
    return grad_q, grad_k, grad_v
    ### END SOLUTION


def causal_attention(q, k, v):
    """softmax(q k^T / sqrt(D) + causal mask) @ v as one graph operation, for q, k (..., T, D), v (..., T, Dv)."""
    if q.shape[-1] != k.shape[-1] or q.shape[-2] != k.shape[-2] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"causal attention needs q (..., T, D), k (..., T, D), v (..., T, Dv); got {q.shape}, {k.shape}, {v.shape}")
    qv, kv, vv = (np.asarray(values_of(x)) for x in (q, k, v))
    out, weights = causal_attention_forward(qv, kv, vv)
    last = {}  # the three rules receive the same gradient: compute the backward pass once for it

    def gradients(g):
        if last.get("g") is not g:
            last["g"], last["grads"] = g, causal_attention_backward(g, qv, kv, vv, weights)
        return last["grads"]

    return record(out, "CausalAttention", (q, lambda g: gradients(g)[0]), (k, lambda g: gradients(g)[1]),
                  (v, lambda g: gradients(g)[2]))

# %% [markdown]
# ### Test: attention backward

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-acceleration-attention-backward", "locked": true, "points": 4, "solution": false}
def test_unit_attention_backward():
    q, k, v = float64(2, 4, 3, seed=0), float64(2, 4, 3, seed=1), float64(2, 4, 5, seed=2)
    g = np.random.default_rng(3).standard_normal((2, 4, 5))
    fused = causal_attention(q, k, v)
    assert fused.grad_fn is not None and fused.grad_fn.name == "CausalAttention" and fused.grad_fn.inputs == (q, k, v), \
        f"attention should be one graph node CausalAttention over (q, k, v), got {fused.grad_fn}"
    fused.backward(g, retain_graph=True)
    copies = [Variable(x.numpy(), requires_grad=True) for x in (q, k, v)]
    scaled_dot_product_attention(*copies, causal=True).backward(g)
    rules = {"v": "P^T G", "q": "s dS K, with dS the softmax rule P * (dP - rowsum(dP * P))", "k": "s dS^T Q"}
    for name, mine, theirs in zip("vqk", (v, q, k), (copies[2], copies[0], copies[1])):
        assert np.allclose(mine.grad, theirs.grad, atol=1e-6), \
            f"d{name} should equal the composed attention's gradient ({rules[name]}); largest difference {np.abs(mine.grad - theirs.grad).max():.2e}"
    fused.backward(2 * g)
    for name, mine, theirs in zip("vqk", (v, q, k), (copies[2], copies[0], copies[1])):
        assert np.allclose(mine.grad, 3 * theirs.grad, atol=1e-6), \
            f"a second backward through the same attention (retain_graph=True, gradient 2 g) should add 2 d{name}: the backward must not write into the saved weights P"
    assert gradcheck(causal_attention, float64(1, 2, 4, 3, seed=4), float64(1, 2, 4, 3, seed=5), float64(1, 2, 4, 2, seed=6),
                     name="causal_attention")

test_unit_attention_backward()
print("test_unit_attention_backward: passed")

# %% [markdown]
# ## 4. Fused attention in the multi-head layer
#
# Module 10's `MultiHeadAttention` projects the input, splits the heads, attends and merges them back.
# `FusedMultiHeadAttention` is the same layer (the same parameters, the same names, so a checkpoint loads
# into either) whose attention step is your fused operation. Write its `forward`, reusing `split_heads` and
# `merge_heads`.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "acceleration-multi-head", "locked": false, "solution": true}
#| export
class FusedMultiHeadAttention(MultiHeadAttention):
    """Module 10's causal MultiHeadAttention whose attention step is one fused CausalAttention operation."""

    def forward(self, x):
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"{self!r} expects x of shape (B, T, {self.d_model}), got {x.shape}")
        if not self.causal:
            return super().forward(x)  # the fused operation is the causal one
        batch, length, _ = x.shape
        rows = x.reshape(batch * length, self.d_model)
        ### BEGIN SOLUTION
        q, k, v = (self.split_heads(projection(rows), batch, length) for projection in (self.query, self.key, self.value))
        return self.out(self.merge_heads(causal_attention(q, k, v))).reshape(batch, length, self.d_model)
        ### END SOLUTION

# %% [markdown]
# ### Test: the fused layer

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-acceleration-multi-head", "locked": true, "points": 3, "solution": false}
def test_unit_multi_head():
    composed = MultiHeadAttention(8, 2, rng=np.random.default_rng(0), dtype=np.float64)
    fused = FusedMultiHeadAttention(8, 2, rng=np.random.default_rng(0), dtype=np.float64)
    x = float64(2, 5, 8)
    want, got = composed(x), fused(x)
    assert np.allclose(got.numpy(), want.numpy(), atol=1e-6), f"FusedMultiHeadAttention should equal MultiHeadAttention with the same weights (project the rows with query, key, value in that order, split_heads(..., batch, length), attend, merge_heads, out); largest difference {np.abs(got.numpy() - want.numpy()).max():.2e}"
    names = [node.name for node in _nodes(got)]
    assert "CausalAttention" in names and "Softmax" not in names, f"the layer should attend with the fused operation (one CausalAttention, no Softmax), got nodes {sorted(set(names))}"
    got.sum().backward()
    want.sum().backward()
    for (name, mine), theirs in zip(fused.named_parameters(), composed.parameters()):
        assert np.allclose(mine.grad, theirs.grad, atol=1e-6), f"the gradient of {name} should equal the composed layer's"

def _nodes(root):  # every graph node behind `root` (given)
    seen, stack = [], [root.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and getattr(node, "edges", None) is not None and node not in seen:
            seen.append(node)
            stack.extend(source for source, _ in node.edges)
    return seen

test_unit_multi_head()
print("test_unit_multi_head: passed")

# %% [markdown]
# ## 5. LayerNorm, reading each row fewer times
#
# Module 10's `layer_norm` is already one graph node, but its forward and backward passes make about a
# dozen arrays the size of the residual stream, and four of its steps are means along the last axis: the
# short-row reductions that section 2 avoided, and a GPT step runs five LayerNorms, forward and backward.
# The same numbers come from fewer passes over memory:
#
# - a mean along the rows is a matrix-vector product: $\bar{x} = X\,\mathbf{w}$ with $\mathbf{w} = (1/C, \ldots, 1/C)$,
#   which BLAS computes in one pass, without NumPy's per-row reduction;
# - a sum of products along the rows, $\sum_j a_{ij} b_{ij}$, is `np.einsum("ij,ij->i", a, b)`: one pass, no
#   product array (and `"ij,ij->j"` sums down the columns: the gradient of the scale $\gamma$);
# - the centred rows become the normalized ones in place: $\hat{x} = (x - \bar{x})\,r$ with $r = 1/\sqrt{\sigma^2 + \epsilon}$.
#
# The backward rule is module 10's, with $s = g\,\gamma$ and $C$ the row width:
#
# $$\frac{\partial L}{\partial x} = r\,\Big(s - \tfrac{1}{C}\textstyle\sum_j s_j - \hat{x}\,\tfrac{1}{C}\sum_j s_j \hat{x}_j\Big),\qquad
#   \frac{\partial L}{\partial \gamma} = \sum_{\text{rows}} g\,\hat{x},\qquad \frac{\partial L}{\partial \beta} = \sum_{\text{rows}} g.$$
#
# Write `fused_layer_norm(x, weight, bias, eps)`: the forward pass makes two arrays of x's size ($\hat{x}$,
# kept for the rule, and the output), the rule for x two (its result and $s$), all of x's dtype. The rows
# are given as a (N, C) matrix (`rows`), and `row_mean` (given) is the product with $\mathbf{w}$.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "acceleration-layer-norm", "locked": false, "solution": true}
#| export
def row_mean(rows: np.ndarray) -> np.ndarray:
    """The mean of each row of `rows` (N, C), as a column (N, 1): one matrix-vector product."""
    return (rows @ np.full(rows.shape[1], 1.0 / rows.shape[1], dtype=rows.dtype))[:, None]


def fused_layer_norm(x, weight, bias, eps: float = 1e-5):
    """Module 10's layer_norm(x, weight, bias, eps) over the last axis of x, with weight and bias of shape (C,):
    the same values and gradients, from fewer passes over memory.

    >>> fused_layer_norm(Variable([[1.0, 3.0]]), np.ones(2), np.zeros(2)).numpy().round(3).tolist()
    [[-1.0, 1.0]]
    """
    xv, gamma, beta = np.asarray(x), np.asarray(weight), np.asarray(bias)
    if gamma.shape != xv.shape[-1:] or beta.shape != xv.shape[-1:]:
        raise ValueError(f"fused_layer_norm: weight and bias must have shape ({xv.shape[-1]},) for x of shape {xv.shape}, "
                         f"got {gamma.shape} and {beta.shape}")
    rows = xv.reshape(-1, xv.shape[-1])
    width = rows.shape[1]
    ### BEGIN SOLUTION
    normalized = rows - row_mean(rows)
    inv_std = 1.0 / np.sqrt(np.einsum("ij,ij->i", normalized, normalized) / width + eps)
    normalized *= inv_std[:, None]
    out = normalized * gamma
    out += beta

    def grad_x(g):
        scaled = g.reshape(rows.shape) * gamma
        grad = normalized * (np.einsum("ij,ij->i", scaled, normalized) / -width)[:, None]
        grad += scaled
        grad -= row_mean(scaled)
        grad *= inv_std[:, None]
        return grad.reshape(xv.shape)

    def grad_weight(g):
        return np.einsum("ij,ij->j", g.reshape(rows.shape), normalized)

    def grad_bias(g):
        return g.reshape(rows.shape).sum(axis=0)

    return record(out.reshape(xv.shape), "LayerNorm", (x, grad_x), (weight, grad_weight), (bias, grad_bias))
    ### END SOLUTION


class FusedLayerNorm(LayerNorm):
    """Module 10's LayerNorm (the same parameters, under the same names), computed by fused_layer_norm."""

    def forward(self, x):
        if x.shape[-1] != self.normalized_shape:
            raise ValueError(f"{self!r} normalizes a last axis of size {self.normalized_shape}, got shape {x.shape}")
        return fused_layer_norm(x, self.weight, self.bias, self.eps)

# %% [markdown]
# ### Test: LayerNorm

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-acceleration-layer-norm", "locked": true, "points": 3, "solution": false}
def test_unit_layer_norm():
    x, weight, bias = float64(2, 3, 6, seed=0), float64(6, seed=1), float64(6, seed=2)
    x.numpy()[...] = 4 * x.numpy() + 3  # rows far from mean 0 and variance 1
    g = np.random.default_rng(3).standard_normal((2, 3, 6))
    before = x.numpy().copy()
    fused = fused_layer_norm(x, weight, bias)
    assert np.array_equal(x.numpy(), before), "fused_layer_norm must not write into x: `rows` is a view of x's array (rows - mean makes a new one)"
    copies = [Variable(v.numpy(), requires_grad=True) for v in (x, weight, bias)]
    composed = layer_norm(*copies)
    assert fused.shape == (2, 3, 6), f"the output should have x's shape (2, 3, 6), got {fused.shape}"
    assert np.allclose(fused.numpy(), composed.numpy(), atol=1e-6), \
        f"the values should equal module 10's layer_norm: (x - mean) / sqrt(var + eps) * weight + bias over the last axis; largest difference {np.abs(fused.numpy() - composed.numpy()).max():.2e}"
    assert fused.grad_fn is not None and fused.grad_fn.name == "LayerNorm" and fused.grad_fn.inputs == (x, weight, bias), \
        f"fused_layer_norm should be one graph node LayerNorm over (x, weight, bias), got {fused.grad_fn}"
    fused.backward(g)
    composed.backward(g)
    for name, mine, theirs in zip(("x", "weight", "bias"), (x, weight, bias), copies):
        assert np.allclose(mine.grad, theirs.grad, atol=1e-6), \
            f"the gradient of {name} should equal module 10's layer_norm's; largest difference {np.abs(mine.grad - theirs.grad).max():.2e}"
    small = fused_layer_norm(Variable(np.array([[1.0, 1.0 + 1e-4]], dtype=np.float32)), np.ones(2, np.float32), np.zeros(2, np.float32))
    assert small.numpy().dtype == np.float32, f"float32 inputs should give a float32 output (no float64 drift), got {small.numpy().dtype}"
    assert np.allclose(small.numpy(), [[-0.0158, 0.0158]], atol=1e-3), f"eps = 1e-5 belongs under the square root with the variance, got {small.numpy()}"
    rows = np.array([[1.0, 2.0, 4.0], [0.0, -3.0, 3.0]])
    centred = rows - rows.mean(axis=1, keepdims=True)
    expected = centred / np.sqrt((centred ** 2).mean(axis=1, keepdims=True) + 0.5)
    got = fused_layer_norm(Variable(rows), np.ones(3), np.zeros(3), eps=0.5).numpy()
    assert np.allclose(got, expected), f"with eps=0.5 the rows are (x - mean) / sqrt(var + 0.5): expected {np.round(expected, 4).tolist()}, got {np.round(got, 4).tolist()}"
    assert gradcheck(lambda *args: fused_layer_norm(*args), float64(3, 5, seed=4), float64(5, seed=5), float64(5, seed=6),
                     name="fused_layer_norm")
    assert isinstance(FusedLayerNorm(6), LayerNorm) and [name for name, _ in FusedLayerNorm(6).named_parameters()] == ["weight", "bias"]

test_unit_layer_norm()
print("test_unit_layer_norm: passed")

# %% [markdown]
# ## 6. The fused GPT
#
# `FusedGPT` (given) is module 11's `GPT` with the fused operations: its blocks attend with
# `FusedMultiHeadAttention` (GPT's `attention_layer`), it normalizes with `FusedLayerNorm` (GPT's
# `norm_layer`), and `loss_function()` is `FusedCrossEntropyLoss`, so a caller trains either model the same way. The parameters and their names are GPT's, so a checkpoint of one
# loads into the other. Module 11 does not refer to it: the caller chooses, as `tito milestone gpt` does.

# %%
#| export
class FusedGPT(GPT):
    """Module 11's GPT whose attention, normalizations and loss are fused operations; the same parameters, under
    the same names."""

    attention_layer = FusedMultiHeadAttention
    norm_layer = FusedLayerNorm

    def loss_function(self):
        """The loss to train this model with: module 04's cross-entropy, as one fused operation."""
        return FusedCrossEntropyLoss()

# %% [markdown]
# A checkpoint of module 11's GPT, loaded into a `FusedGPT`, gives the same loss:

# %%
from tinytorch.core.autograd import topological_order

ids = np.random.default_rng(1).integers(0, 11, (2, 6))
composed_gpt = GPT(11, 8, d_model=16, num_heads=2, num_layers=1, rng=np.random.default_rng(2), dtype=np.float64)
fused_gpt = FusedGPT(11, 8, d_model=16, num_heads=2, num_layers=1, dtype=np.float64)
fused_gpt.load_state_dict(composed_gpt.state_dict())
for model in (composed_gpt, fused_gpt):
    loss = model.loss_function()(PerPositionLogits(model)(ids[:, :-1]), ids[:, 1:])
    operations = sum(not isinstance(node, Variable) for node in topological_order(loss))
    print(f"{type(model).__name__:<9} loss {loss.item():.9f}, {operations} operations recorded")

# %% [markdown]
# ## 7. Systems analysis: the GPT step, before and after
#
# Module 12's profiler on one training step of a small GPT, composed (module 11's `GPT`: module 10's
# attention, module 04's loss) and fused (`FusedGPT`, with the same weights), each measured on its second
# step. The table shows the operations each records; the numbers are this machine's, now.

# %%
rng = np.random.default_rng(0)
ids = rng.integers(0, 40, (16, 33))
step_inputs, step_targets = Tensor(ids[:, :-1].astype(np.float32)), ids[:, 1:]


def training_step(model):
    loss = model.loss_function()(PerPositionLogits(model)(step_inputs), step_targets)
    loss.backward()
    model.zero_grad()


profiles, times = {}, {}
for fused in (False, True):
    model = (FusedGPT if fused else GPT)(40, 32, d_model=32, num_heads=4, num_layers=2, rng=np.random.default_rng(0))
    training_step(model)
    with Profiler() as prof:
        training_step(model)
    profiles[fused] = prof.key_averages()
    times[fused] = best_time(lambda: training_step(model), repeat=7)
    print(("fused" if fused else "composed") + ":")
    print(prof.table(row_limit=8))

# %%
nodes = {fused: sum(row.calls for row in rows if row.kind == "forward") for fused, rows in profiles.items()}
print(f"{'GPT step':<10} {'ms':>8} {'operations':>11}")
for fused in (False, True):
    print(f"{'fused' if fused else 'composed':<10} {times[fused] * 1e3:>8.2f} {nodes[fused]:>11}")
ratio = times[True] / times[False]
print(f"fused / composed: {ratio:.2f}x, {nodes[False] - nodes[True]} fewer operations recorded per step")
if ratio < 0.95:
    print("Fusing made the step faster here: fewer arrays written, fewer nodes recorded and walked back.")
elif ratio <= 1.05:
    print("Here the two steps take about the same time: the products dominate this small model.")
else:
    print("Here the fused step measured slower: the machine was busy, or the products dominate; rerun to see.")

# %% [markdown]
# The count of operations is exact and the same on any machine; the times depend on it. What fusing saves
# is memory traffic and bookkeeping: each removed node is an array not written, a backward rule not run
# and a Python call not made (the fused LayerNorm records as many nodes as module 10's, but makes fewer
# arrays). The matrix products are untouched, so the larger the model the smaller the share that fusing
# can save; the next step (not taken here) is to make the optimizer update all parameters in place from
# one flat buffer.

# %% [markdown]
# ## Reflection
#
# Answer in a sentence or three each.

# %% [markdown]
# **Q1.** Why is the backward rule of the fused softmax + cross-entropy both cheaper and more accurate than
# the chain of rules it replaces?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-acceleration-fusion", "locked": false, "points": 2, "solution": true}
# The chain runs one rule per node, each reading and writing an N x C array, and passes the gradient
# through log and exp separately; the fused rule is softmax minus one-hot, one pass over one array. It
# never divides by a small sum or subtracts nearly equal numbers, so it loses no precision where a
# probability is close to 0 or 1.

# %% [markdown]
# **Q2.** The fused attention keeps the weights P (T x T per head) for the backward pass. What does that
# cost at long contexts, and what could be kept instead?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-acceleration-memory", "locked": false, "points": 2, "solution": true}
# The weights grow with the square of the context: B x H x T x T numbers per layer, which dominates memory
# long before the activations do. One can keep only each row's maximum and sum (the log-sum-exp) and
# recompute P block by block during the backward pass, as FlashAttention does: more arithmetic, far less
# memory traffic.

# %% [markdown]
# ## Summary
#
# You replaced the two chains that module 12's profile showed costly by fused operations with hand-derived
# backward rules: softmax + cross-entropy, and causal attention with the mask applied in place and the
# softmax backward folded in, and checked each against the composed form and a numerical gradient. You
# rewrote LayerNorm to read each row fewer times. `FusedGPT` is module 11's GPT with all three; export with `tito module complete 13_acceleration`, and
# `tito milestone gpt` trains it.
