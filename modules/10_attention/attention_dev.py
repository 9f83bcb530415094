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
# # Attention: a layer that decides where to look
#
# A convolution looks at a fixed neighbourhood; an MLP at a fixed vector. Text needs something else:
# to guess the next character of `def __init__(self`, the model must look back at *whichever*
# earlier characters matter, near or far. **Attention** lets every position compute, from the data,
# how much to read from every earlier position, and reads a weighted average of what they hold.
#
# ```
# ids (B, T) -> Embedding -> + positions -> x (B, T, C)
#   x -> LayerNorm -> q, k, v (B, H, T, D) -> softmax(q k^T / sqrt(D) + causal mask) v -> merge heads -> (B, T, C)
# ```
#
# This module builds the parts one at a time: an `Embedding` that turns characters into vectors
# (§1), `LayerNorm` (§2), scaled dot-product attention with a causal mask (§3), and
# `MultiHeadAttention`, all heads in one batched matrix product (§4). Module 11 stacks them into a
# small GPT. The systems analysis (§5) measures why the scale is $1/\sqrt{D}$, what the mask does to
# the gradient, and how the memory of attention grows with the square of the context.
#
# **Objectives.** By the end of this module you can:
#
# - turn ids into learned vectors with an `Embedding` whose gradient adds up over repeated ids, and give
#   every position a learned vector of its own;
# - normalize each vector over its features with `LayerNorm`, one graph operation with its own backward rule;
# - compute scaled dot-product attention with a causal mask, and say why the scores are divided by $\sqrt{D}$;
# - run several heads in one batched matrix product with `MultiHeadAttention`, and measure how the memory of
#   attention grows with the context.
#
# | You write here | It becomes | Used by |
# |---|---|---|
# | this notebook, `attention.ipynb` | `tinytorch.core.attention` | module 11, `tito milestone gpt` |

# %%
#| default_exp core.attention

# %%
#| export
from __future__ import annotations

import math

import numpy as np

from tinytorch.core.autograd import record
from tinytorch.core.layers import Linear, Module
from tinytorch.core.operations import Parameter

# %%
# For the examples and tests below (the exported code does not need them).
import time
import tracemalloc

from tinytorch.core.autograd import Variable, no_grad
from tinytorch.core.operations import gradcheck
from tinytorch.core.tensor import Tensor, one_blas_thread

# %% [markdown]
# ## 0. Operations of our own
#
# Module 05 differentiates any operation recorded as a `Node`: a name and, for each input, a rule
# mapping the output's gradient to that input's gradient. Module 05's `record(value, name, *edges)`
# records one, with the course's conventions: no graph under `no_grad()` or when no input needs a
# gradient, and a plain `Tensor` when no input is a Variable. The rules are what you write.

# %%
#| export
def token_ids(ids, vocabulary: int) -> np.ndarray:
    """`ids` (a Tensor, Variable, array or list of whole numbers) as an int64 array, each checked to be in
    [0, vocabulary); a ValueError names the first bad one."""
    values = np.asarray(ids)
    if values.dtype.kind == "f":
        if not np.all(values == np.round(values)):
            raise ValueError(f"token ids must be whole numbers, got {values.ravel()[:5].tolist()}")
    elif values.dtype.kind not in "iu":
        raise ValueError(f"token ids must be integers, got dtype {values.dtype}")
    values = values.astype(np.int64)
    outside = (values < 0) | (values >= vocabulary)
    if np.any(outside):
        raise ValueError(f"token id {values[outside][0]} is out of range for a vocabulary of {vocabulary} (0 to {vocabulary - 1})")
    return values


def generator(rng: np.random.Generator | None) -> np.random.Generator:
    """`rng`, or a fresh unseeded generator when it is None (the layers' default)."""
    return np.random.default_rng() if rng is None else rng

# %% [markdown]
# ## 1. Embedding: a character becomes a vector
#
# A network multiplies and adds numbers; a character is a symbol. The standard trick: give each of the
# $V$ symbols of the vocabulary its own learned row of a table $E$ of shape $(V, C)$, and replace
# symbol $i$ by row $E_i$. For a batch of ids of shape $(B, T)$ the result has shape $(B, T, C)$.
#
# This is `one_hot(ids) @ E` without building the one-hot matrix: the forward pass is indexing,
# `E[ids]`. The backward pass follows from the same view: $E$ receives `one_hot(ids).T @ g`, that is,
# **row $i$ of the gradient is the sum of $g$ at every position where id $i$ was used**. Text repeats
# characters constantly (`e` and the space are everywhere), so the same row is used many times in one
# batch, and its gradient must **add up** all those uses.
#
# NumPy's `grad[ids] = g` is wrong for this: with repeated ids the later write replaces the earlier,
# so a row used ten times receives only one of its ten gradients. `np.add.at(grad, ids, g)` adds each
# use in turn.
#
# The layer `Embedding(V, C)` holds $E$ as a Parameter, drawn from a normal distribution with
# standard deviation `std` (PyTorch's default is 1; GPT-2 uses 0.02, module 11 too).

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "attention-embedding", "locked": false, "solution": true}
#| export
def embedding(weight, ids):
    """Rows `ids` of `weight` (V, C): shape ids.shape + (C,). `weight` receives, in row i, the sum of the
    output's gradient over every position whose id is i (repeated ids add up).

    >>> embedding(Variable(np.eye(3)), [[2, 0]]).shape
    (1, 2, 3)
    """
    table = np.asarray(weight)
    index = token_ids(ids, len(table))
    ### BEGIN SOLUTION
    def rule(g):
        grad = np.zeros(table.shape, dtype=g.dtype)
        np.add.at(grad, index, g)  # grad[index] = g would keep only the last use of a repeated id
        return grad

    return record(table[index], "Embedding", (weight, rule))
    ### END SOLUTION


class Embedding(Module):
    """A learned vector for each of `num_embeddings` ids, of size `embedding_dim`, drawn from N(0, std**2).

    >>> Embedding(10, 4, rng=np.random.default_rng(0))(Tensor([[1, 2, 1]])).shape
    (1, 3, 4)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, *, std: float = 1.0,
                 rng: np.random.Generator | None = None, dtype=np.float32):
        if num_embeddings < 1 or embedding_dim < 1:
            raise ValueError(f"Embedding needs positive sizes, got {num_embeddings} and {embedding_dim}")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        rng = generator(rng)
        self.weight = Parameter((std * rng.standard_normal((self.num_embeddings, self.embedding_dim))).astype(dtype))

    def forward(self, ids):
        return embedding(self.weight, ids)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"

# %% [markdown]
# ### Test: embedding

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-attention-embedding", "locked": true, "points": 3, "solution": false}
def test_unit_embedding():
    table = Variable(np.arange(12, dtype=np.float64).reshape(4, 3), requires_grad=True)
    out = embedding(table, [[1, 3, 1], [0, 1, 2]])
    assert out.shape == (2, 3, 3), f"ids of shape (2, 3) and a table (4, 3) give (2, 3, 3), got {out.shape}"
    assert np.array_equal(out.numpy()[0, 1], [9, 10, 11]), f"id 3 should give row 3 [9, 10, 11], got {out.numpy()[0, 1]}"
    out.backward(np.ones(out.shape))
    counts = table.grad[:, 0]
    if counts[1] == 1:
        raise AssertionError("id 1 is used 3 times, but its row received the gradient of only one use: repeated ids "
                             "must ADD their gradients (np.add.at), not overwrite them (grad[ids] = g)")
    assert counts.tolist() == [1, 3, 1, 1], \
        f"each row's gradient should count its uses (ids 0, 1, 2, 3 used 1, 3, 1, 1 times), got {counts.tolist()}"
    weights = Variable(np.random.default_rng(0).standard_normal((5, 2)), requires_grad=True)
    gradcheck(lambda w: embedding(w, np.array([[4, 4, 0], [2, 4, 0]])) ** 2, weights, name="embedding, repeated ids")
    with no_grad():
        assert embedding(table, [0]).grad_fn is None, "under no_grad, embedding should record nothing"
    assert embedding(table, Tensor([2.0, 0.0])).numpy()[0].tolist() == [6, 7, 8], "ids may come as whole-number floats"
    for bad in ([4], [-1], [0.5]):
        try:
            embedding(table, bad)
        except ValueError:
            continue
        raise AssertionError(f"ids {bad} are not valid for 4 rows: embedding should raise a ValueError")
    layer = Embedding(100, 8, std=0.02, rng=np.random.default_rng(0))
    assert layer.weight.shape == (100, 8) and abs(layer.weight.numpy().std() - 0.02) < 0.002, \
        f"Embedding(100, 8, std=0.02) should hold a (100, 8) table with standard deviation 0.02, got {layer.weight.numpy().std():.4f}"
    assert [name for name, _ in layer.named_parameters()] == ["weight"], "the table is the layer's only parameter"

test_unit_embedding()

# %% [markdown]
# ### Positions
#
# Attention (§3) treats its inputs as a *set*: shuffle the positions and each output moves with its
# input, unchanged. Order matters in text, so each position $t$ gets a learned vector $P_t$ too,
# added to the character's vector: $x_t = E_{id_t} + P_t$. `PositionalEmbedding(max_len, C)` holds
# $P$ for positions 0 to `max_len - 1`; a sequence of length $T$ uses the first $T$ rows (a slice, so
# module 06's indexing gives the gradient). Given code.

# %%
#| export
class PositionalEmbedding(Module):
    """x (B, T, C) + a learned vector per position 0..T-1, for T up to `max_len`."""

    def __init__(self, max_len: int, embedding_dim: int, *, std: float = 1.0,
                 rng: np.random.Generator | None = None, dtype=np.float32):
        self.max_len = int(max_len)
        rng = generator(rng)
        self.weight = Parameter((std * rng.standard_normal((self.max_len, int(embedding_dim)))).astype(dtype))

    def forward(self, x):
        length = x.shape[-2]
        if length > self.max_len:
            raise ValueError(f"a sequence of {length} positions is longer than the {self.max_len} this model was built for")
        return x + self.weight[:length]

    def extra_repr(self) -> str:
        return f"{self.max_len}, {self.weight.shape[1]}"

# %% [markdown]
# ## 2. LayerNorm: every vector rescaled on its own
#
# Deep stacks train well when the numbers entering each layer keep a steady scale. **Layer
# normalization** rescales each position's vector $x \in \mathbb{R}^C$ to mean 0 and variance 1,
# then applies a learned scale $\gamma$ and shift $\beta$ (both of size $C$, starting at 1 and 0):
#
# $$\mu = \tfrac1C\textstyle\sum_i x_i,\quad \sigma^2 = \tfrac1C\sum_i (x_i-\mu)^2,\quad
#   \hat x = \frac{x-\mu}{\sqrt{\sigma^2+\epsilon}},\quad y = \gamma \odot \hat x + \beta .$$
#
# The statistics are over the **last axis only**, the features of one position: unlike batch
# normalization, nothing mixes positions or examples, so a model behaves the same in training and
# evaluation and for a batch of one. ($\sigma^2$ divides by $C$, not $C-1$, as PyTorch does.)
#
# Written with the operations of modules 05 and 06 this is a dozen graph nodes; as one operation it is one, and
# the backward rule is short. With $g' = g \odot \gamma$ and $s = 1/\sqrt{\sigma^2+\epsilon}$:
#
# $$\frac{\partial L}{\partial x} = s\left(g' - \operatorname{mean}(g') - \hat x\,\operatorname{mean}(g'\odot\hat x)\right),
#   \qquad \frac{\partial L}{\partial \gamma} = \sum_{\text{positions}} g\odot\hat x,\qquad
#   \frac{\partial L}{\partial \beta} = \sum_{\text{positions}} g$$
#
# (the means over the last axis). The two subtracted terms are the gradient flowing through $\mu$ and
# through $\sigma$. The rules of $\gamma$ and $\beta$ may return arrays of $x$'s shape: module 05 sums
# a gradient over the axes its input was broadcast along.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "attention-layernorm", "locked": false, "solution": true}
#| export
def layer_norm(x, weight=None, bias=None, eps: float = 1e-5):
    """Normalize each vector along the last axis of x to mean 0 and variance 1 (dividing by C), then
    multiply by `weight` and add `bias` (shape (C,), each optional). One graph operation.

    >>> layer_norm(Variable([[1.0, 3.0]])).numpy().round(3).tolist()
    [[-1.0, 1.0]]
    """
    xv = np.asarray(x)
    gamma = None if weight is None else np.asarray(weight)
    ### BEGIN SOLUTION
    centered = xv - xv.mean(axis=-1, keepdims=True)
    inv_std = 1.0 / np.sqrt((centered * centered).mean(axis=-1, keepdims=True) + eps)
    normalized = centered * inv_std
    out = normalized if gamma is None else normalized * gamma
    if bias is not None:
        out = out + np.asarray(bias)

    def grad_x(g):
        scaled = g if gamma is None else g * gamma
        return inv_std * (scaled - scaled.mean(axis=-1, keepdims=True)
                          - normalized * (scaled * normalized).mean(axis=-1, keepdims=True))

    return record(out, "LayerNorm", (x, grad_x), (weight, lambda g: g * normalized), (bias, lambda g: g))
    ### END SOLUTION


class LayerNorm(Module):
    """Layer normalization over the last axis, of size `normalized_shape`, with a learned scale (ones) and
    shift (zeros), as PyTorch's nn.LayerNorm(normalized_shape)."""

    def __init__(self, normalized_shape: int, eps: float = 1e-5, dtype=np.float32):
        self.normalized_shape, self.eps = int(normalized_shape), eps
        self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype))

    def forward(self, x):
        if x.shape[-1] != self.normalized_shape:
            raise ValueError(f"{self!r} normalizes a last axis of size {self.normalized_shape}, got shape {x.shape}")
        return layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"

# %% [markdown]
# ### Test: LayerNorm

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-attention-layernorm", "locked": true, "points": 3, "solution": false}
def reference_layer_norm(x, gamma, beta, eps=1e-5):
    """The formula in plain NumPy, over the last axis."""
    mean = x.mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=-1, keepdims=True) + eps) * gamma + beta


def test_unit_layer_norm():
    rng = np.random.default_rng(0)
    # Every axis has its own scale, so normalizing over a wrong axis shows.
    x = rng.standard_normal((2, 3, 5)) * np.array([1.0, 10.0, 0.5])[None, :, None] + 3.0
    out = layer_norm(Variable(x)).numpy()
    assert out.shape == x.shape, f"layer_norm keeps the shape {x.shape}, got {out.shape}"
    means, variances = out.mean(axis=-1), out.var(axis=-1)
    if not np.allclose(means, 0, atol=1e-6) or not np.allclose(variances, 1, atol=1e-3):
        raise AssertionError("each vector along the LAST axis should come out with mean 0 and variance 1; got means "
                             f"{means.ravel()[:3].round(3)} and variances {variances.ravel()[:3].round(3)} "
                             "(normalized over the wrong axis, or divided by C - 1?)")
    flat = layer_norm(Variable(np.full((1, 4), 3.0))).numpy()
    assert np.allclose(flat, 0), f"a constant vector should normalize to 0 (eps keeps the division finite), got {flat}"
    tight = np.array([[0.0, 1e-3, 2e-3, 0.0, 1e-3]])  # a variance far below eps
    expected = (tight - tight.mean()) / np.sqrt(tight.var() + 1e-5)
    got = layer_norm(Variable(tight)).numpy()
    assert np.allclose(got, expected, atol=1e-6), (f"eps goes inside the square root, 1 / sqrt(variance + eps): for a "
                                                   f"variance of {tight.var():.1e} expected {expected.round(4)}, got {got.round(4)}")
    gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
    expected = reference_layer_norm(x, gamma, beta)
    got = layer_norm(Variable(x), Variable(gamma), Variable(beta)).numpy()
    assert np.allclose(got, expected, atol=1e-6), f"with weight and bias, expected\n{expected[0, 0]}\ngot\n{got[0, 0]}"
    for name, inputs in [("x", (x,)), ("x, weight, bias", (x, gamma, beta))]:
        variables = [Variable(value, requires_grad=True) for value in inputs]
        gradcheck(lambda *v: layer_norm(*v) * Variable(np.linspace(-1, 2, 5)), *variables, name=f"layer_norm in {name}")
    layer = LayerNorm(5)
    assert [(n, p.numpy().tolist()) for n, p in layer.named_parameters()] == [("weight", [1.0] * 5), ("bias", [0.0] * 5)], \
        "LayerNorm(5) should start with weight ones(5) and bias zeros(5)"
    assert layer(Variable(x.astype(np.float32))).dtype == np.float32, "LayerNorm should keep float32"

test_unit_layer_norm()

# %% [markdown]
# ## 3. Scaled dot-product attention, and the causal mask
#
# Each position $t$ produces three vectors from its own $x_t$: a **query** $q_t$ (what am I looking
# for?), a **key** $k_t$ (what do I offer?) and a **value** $v_t$ (what do I pass on?). Position $t$
# scores every position $j$ by $q_t \cdot k_j$, turns the scores into weights with a softmax, and
# returns the weighted average of the values:
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{D}} + M\right) V$$
#
# for $Q, K, V$ of shape $(\dots, T, D)$: the scores $QK^\top$ are $(\dots, T, T)$, row $t$ is
# position $t$'s view of all positions, and the softmax runs along each row (the last axis).
#
# **The scale $1/\sqrt{D}$.** With $q$ and $k$ of $D$ independent unit-variance entries, $q\cdot k$
# is a sum of $D$ terms and has variance $D$. For $D = 64$ the scores spread over $\pm 16$, the
# softmax puts almost all weight on one position, and its gradient nearly vanishes (§5 measures it).
# Dividing by $\sqrt{D}$ brings the variance back to 1. (Scaling $q$ before the product, as here, is
# the same arithmetic on $T \times D$ numbers instead of $T \times T$.)
#
# **The causal mask $M$.** A language model predicts the character after position $t$; if it could
# read positions after $t$, it would copy the answer instead of learning. So position $t$ may only
# attend to $j \le t$: $M_{tj} = -\infty$ for $j > t$ (above the diagonal) and 0 elsewhere. After the
# softmax those weights are exactly 0, the row still sums to 1, and (§5) no gradient flows from a
# position to the keys and values of its future. The diagonal is never masked: position 0 attends
# to itself alone.
#
# ```
#          keys j ->     0    1    2    3
# query t = 0         [  .  -inf -inf -inf ]
#           1         [  .    .  -inf -inf ]
#           2         [  .    .    .  -inf ]
#           3         [  .    .    .    .  ]
# ```
#
# Everything here is operations of modules 05 and 06 (`@`, `transpose`, `softmax`, `+` with a constant), so the
# backward pass comes for free. The leading axes (batch, heads) ride along in every `@`.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "attention-sdpa", "locked": false, "solution": true}
#| export
def causal_mask(size: int, dtype=np.float32) -> np.ndarray:
    """(size, size): 0 on and below the diagonal, -inf above it (query t may not see key j > t).

    >>> causal_mask(2).tolist()
    [[0.0, -inf], [0.0, 0.0]]
    """
    ### BEGIN SOLUTION
    return np.where(np.triu(np.ones((size, size), dtype=bool), k=1), -np.inf, 0.0).astype(dtype)
    ### END SOLUTION


def attention_weights(q, k, causal: bool = True):
    """softmax(q k^T / sqrt(D) + mask) over the last axis, for q (..., Tq, D) and k (..., Tk, D):
    (..., Tq, Tk), each row summing to 1; with `causal`, the mask of `causal_mask` (Tq = Tk)."""
    ### BEGIN SOLUTION
    scores = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.transpose(-2, -1)
    if causal:
        scores = scores + causal_mask(scores.shape[-1], scores.dtype)
    return scores.softmax(axis=-1)
    ### END SOLUTION


def scaled_dot_product_attention(q, k, v, causal: bool = True):
    """attention_weights(q, k, causal) @ v: for each query, the weighted average of the values (..., Tq, D)."""
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"attention needs q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv); got {q.shape}, {k.shape}, {v.shape}")
    ### BEGIN SOLUTION
    return attention_weights(q, k, causal) @ v
    ### END SOLUTION

# %% [markdown]
# ### Test: attention

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-attention-sdpa", "locked": true, "points": 4, "solution": false}
def reference_attention(q, k, v, causal):
    """The formula in plain NumPy, one query row at a time: the definition, slow and clear."""
    out = np.zeros(q.shape[:-1] + v.shape[-1:])
    for t in range(q.shape[-2]):
        visible = t + 1 if causal else k.shape[-2]
        scores = np.einsum("...d,...jd->...j", q[..., t, :], k[..., :visible, :]) / math.sqrt(q.shape[-1])
        weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
        weights /= weights.sum(axis=-1, keepdims=True)
        out[..., t, :] = np.einsum("...j,...jd->...d", weights, v[..., :visible, :])
    return out


def test_unit_attention():
    mask = causal_mask(3)
    assert mask.shape == (3, 3) and mask[0, 0] == 0, f"causal_mask(3) is (3, 3) with 0 on the diagonal, got\n{mask}"
    if np.isinf(mask[1, 0]):
        raise AssertionError(f"the mask is on the wrong side: -inf belongs ABOVE the diagonal (key j > query t), got\n{mask}")
    assert np.isinf(mask[0, 1]) and mask[0, 1] < 0 and not np.isinf(np.tril(mask)).any(), \
        f"expected -inf above the diagonal and 0 on and below it, got\n{mask}"

    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 3, 5, 8)) for _ in range(3))
    weights = attention_weights(Variable(q), Variable(k)).numpy()
    assert weights.shape == (2, 3, 5, 5), f"weights of 5 queries over 5 keys per (batch, head): (2, 3, 5, 5), got {weights.shape}"
    assert np.allclose(weights.sum(axis=-1), 1), \
        "each row of attention weights should sum to 1 (mask the scores before the softmax, not the weights after it)"
    if not np.allclose(np.triu(weights, k=1), 0):
        raise AssertionError("a query attends to a later key: with causal=True every weight above the diagonal must be 0")
    assert np.allclose(weights[..., 0, 0], 1), "position 0 can only see itself: its weight on key 0 should be 1"
    open_weights = attention_weights(Variable(q), Variable(k), causal=False).numpy()
    assert not np.allclose(np.triu(open_weights, k=1), 0), \
        "with causal=False every query should see every key: the weights above the diagonal should not all be 0"
    by_length = np.exp(q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[-2]))
    if np.allclose(open_weights, by_length / by_length.sum(axis=-1, keepdims=True)):
        raise AssertionError("the scores are scaled by sqrt(T), T the number of positions: divide by sqrt(D), "
                             "D the size of each query (its last axis)")
    unscaled = np.exp(q @ k.swapaxes(-1, -2))
    if np.allclose(attention_weights(Variable(q), Variable(k), causal=False).numpy(),
                   unscaled / unscaled.sum(axis=-1, keepdims=True)):
        raise AssertionError("the scores are not scaled: divide q k^T by sqrt(D) (here sqrt(8)) before the softmax")
    for causal in (True, False):
        expected = reference_attention(q, k, v, causal)
        got = scaled_dot_product_attention(Variable(q), Variable(k), Variable(v), causal).numpy()
        assert np.allclose(got, expected), f"attention (causal={causal}) disagrees with the formula:\n{got[0, 0]}\nvs\n{expected[0, 0]}"
    small = [Variable(rng.standard_normal((2, 4, 3)), requires_grad=True) for _ in range(3)]
    gradcheck(lambda a, b, c: scaled_dot_product_attention(a, b, c), *small, name="causal attention")
    # What position 1 returns may not depend on positions 2 and 3.
    changed = v.copy()
    changed[..., 2:, :] += 100.0
    before = scaled_dot_product_attention(Variable(q), Variable(k), Variable(v)).numpy()[..., :2, :]
    after = scaled_dot_product_attention(Variable(q), Variable(k), Variable(changed)).numpy()[..., :2, :]
    assert np.allclose(before, after), "changing the values at positions 2 and later changed the output at positions 0-1"

test_unit_attention()

# %% [markdown]
# ## 4. Multi-head attention: several views at once, one matrix product
#
# One attention looks for one kind of thing. **Multi-head attention** splits the $C$ features into $H$
# heads of $D = C/H$ features each, lets every head attend on its own, and concatenates the results:
#
# 1. three projections, $Q = xW_Q$, $K = xW_K$, $V = xW_V$, each $(B, T, C)$ (module 03's `Linear`);
# 2. **split the heads**: $(B, T, C) \to (B, T, H, D) \to (B, H, T, D)$, a reshape that cuts each
#    position's $C$ features into $H$ groups of $D$, then a transpose that brings the head axis
#    before the time axis;
# 3. attention on $(B, H, T, D)$: the batch and head axes are leading axes of one batched `@`, so all
#    heads are computed by the same two matrix products, not in a Python loop over heads;
# 4. **merge the heads**: $(B, H, T, D) \to (B, T, H, D) \to (B, T, C)$, and one more projection $W_O$.
#
# The order of step 2 matters. Reshaping $(B, T, C)$ straight to $(B, H, T, D)$ has the same size
# and runs without an error, but each "head" then holds $T/H$ consecutive *positions* with all their
# features jumbled into rows: the heads are mixed up. The reshape must only cut the feature axis.
#
# The projections run on $(BT, C)$ matrices: one plain matrix product per projection (a 3-d input
# times a matrix would be $B$ small products, and a gradient summed over $B$ afterwards).

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "attention-multihead", "locked": false, "solution": true}
#| export
class MultiHeadAttention(Module):
    """Causal (by default) self-attention of `num_heads` heads over x (B, T, d_model); each head has
    d_model // num_heads features. Projections `query`, `key`, `value`, `out` are Linear(d_model, d_model).

    >>> MultiHeadAttention(8, 2, rng=np.random.default_rng(0))(Variable(np.zeros((1, 3, 8)))).shape
    (1, 3, 8)
    """

    def __init__(self, d_model: int, num_heads: int, causal: bool = True, *, rng: np.random.Generator | None = None,
                 dtype=np.float32):
        if num_heads < 1 or d_model % num_heads:
            raise ValueError(f"d_model ({d_model}) must be a multiple of num_heads ({num_heads})")
        self.d_model, self.num_heads, self.head_dim, self.causal = d_model, num_heads, d_model // num_heads, causal
        rng = generator(rng)
        self.query, self.key, self.value, self.out = (Linear(d_model, d_model, rng=rng, dtype=dtype) for _ in range(4))

    def split_heads(self, projected, batch: int, length: int):
        """(B * T, C) -> (B, H, T, D)."""
        ### BEGIN SOLUTION
        return projected.reshape(batch, length, self.num_heads, self.head_dim).transpose(1, 2)
        ### END SOLUTION

    def merge_heads(self, heads):
        """(B, H, T, D) -> (B * T, C): each position's heads side by side, head 0 first."""
        batch, _, length, _ = heads.shape
        ### BEGIN SOLUTION
        return heads.transpose(1, 2).reshape(batch * length, self.d_model)
        ### END SOLUTION

    def forward(self, x):
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"{self!r} expects x of shape (B, T, {self.d_model}), got {x.shape}")
        batch, length, _ = x.shape
        rows = x.reshape(batch * length, self.d_model)
        ### BEGIN SOLUTION
        q, k, v = (self.split_heads(projection(rows), batch, length) for projection in (self.query, self.key, self.value))
        attended = scaled_dot_product_attention(q, k, v, self.causal)
        return self.out(self.merge_heads(attended)).reshape(batch, length, self.d_model)
        ### END SOLUTION

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, num_heads={self.num_heads}, causal={self.causal}"

# %% [markdown]
# ### Test: multi-head attention
#
# The reference computes each head on its own, in a loop, from the layer's own weights: head $h$ uses
# features $hD$ to $(h+1)D$ of the projections, and its output goes to the same features before $W_O$.

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-attention-multihead", "locked": true, "points": 4, "solution": false}
def head_by_head(layer, x):
    """Multi-head attention with an explicit loop over heads, from the layer's weights (NumPy)."""
    weights = {name: (getattr(layer, name).weight.numpy(), getattr(layer, name).bias.numpy())
               for name in ("query", "key", "value", "out")}
    q, k, v = (x @ w + b for w, b in (weights["query"], weights["key"], weights["value"]))
    size = layer.head_dim
    heads = [reference_attention(q[..., h * size:(h + 1) * size], k[..., h * size:(h + 1) * size],
                                 v[..., h * size:(h + 1) * size], layer.causal) for h in range(layer.num_heads)]
    w, b = weights["out"]
    return np.concatenate(heads, axis=-1) @ w + b


def test_unit_multihead():
    rng = np.random.default_rng(0)
    layer = MultiHeadAttention(12, 3, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 5, 12))
    split = layer.split_heads(Variable(x.reshape(10, 12)), 2, 5).numpy()
    assert split.shape == (2, 3, 5, 4), f"split_heads of (B*T, C) = (10, 12) with 3 heads: (2, 3, 5, 4), got {split.shape}"
    if not np.array_equal(split[0, 1, 0], x[0, 0, 4:8]) or not np.array_equal(split[1, 2, 3], x[1, 3, 8:12]):
        raise AssertionError("the heads are mixed up: head 1 at position 0 should hold features 4 to 7 of that "
                             "position; reshape to (B, T, H, D) first, then swap the H and T axes")
    merged = layer.merge_heads(Variable(split)).numpy()
    assert np.array_equal(merged, x.reshape(10, 12)), "merge_heads(split_heads(x)) should give back x"
    got = layer(Variable(x)).numpy()
    assert got.shape == x.shape, f"the output has the input's shape {x.shape}, got {got.shape}"
    expected = head_by_head(layer, x)
    assert np.allclose(got, expected), ("the output differs from attention computed head by head: q, k and v each "
                                        "from its own projection (query, key, value), the heads split, attended and "
                                        f"merged, then the out projection:\n{got[0, 0]}\nvs\n{expected[0, 0]}")
    both_ways = MultiHeadAttention(12, 3, causal=False, rng=rng, dtype=np.float64)
    assert np.allclose(both_ways(Variable(x)).numpy(), head_by_head(both_ways, x)), "causal=False should attend everywhere"
    small = MultiHeadAttention(4, 2, rng=np.random.default_rng(1), dtype=np.float64)
    gradcheck(lambda a: small(a), Variable(rng.standard_normal((2, 3, 4)), requires_grad=True), name="MultiHeadAttention")
    names = [name for name, _ in layer.named_parameters()]
    assert names == [f"{p}.{w}" for p in ("query", "key", "value", "out") for w in ("weight", "bias")], f"parameters: {names}"
    for bad in [lambda: MultiHeadAttention(10, 3), lambda: layer(Variable(np.zeros((2, 5, 8))))]:
        try:
            bad()
        except ValueError:
            continue
        raise AssertionError("10 features do not split into 3 heads, and a (2, 5, 8) input does not fit d_model 12: "
                             "both should raise a ValueError")

test_unit_multihead()

# %% [markdown]
# ## 5. Systems analysis
#
# **Why $1/\sqrt{D}$: the softmax saturates without it.** For random unit-variance queries and keys,
# the table gives the spread of the scores, the largest attention weight of a row (1 means the row
# looks at one position only), and the size of the softmax's gradient (the mean absolute gradient of
# the scores for a random upstream gradient), with and without the scale, for 64 keys.

# %%
def saturation(head_dim: int, scaled: bool, keys: int = 64, rows: int = 256, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    q = Variable(rng.standard_normal((rows, 1, head_dim)))
    k = Variable(rng.standard_normal((rows, keys, head_dim)))
    scores = Variable((q.numpy() @ k.numpy().swapaxes(-1, -2)) / (math.sqrt(head_dim) if scaled else 1.0),
                      requires_grad=True)
    weights = scores.softmax(axis=-1)
    weights.backward(rng.standard_normal(weights.shape))
    return scores.numpy().std(), weights.numpy().max(axis=-1).mean(), np.abs(scores.grad).mean()


print(f"{'D':>5} | {'score std':>9} {'max weight':>10} {'|grad|':>9} (scaled) | {'score std':>9} {'max weight':>10} {'|grad|':>9} (unscaled)")
for head_dim in (4, 16, 64, 256):
    with one_blas_thread():
        with_scale, without = saturation(head_dim, True), saturation(head_dim, False)
    print(f"{head_dim:>5} | {with_scale[0]:>9.2f} {with_scale[1]:>10.3f} {with_scale[2]:>9.2e}          | "
          f"{without[0]:>9.2f} {without[1]:>10.3f} {without[2]:>9.2e}")

# %% [markdown]
# With the scale, the scores keep a standard deviation near 1 whatever $D$, and the weights stay
# spread. Without it, the spread grows as $\sqrt D$: at $D = 64$ a row puts most of its weight (about
# three quarters) on a single key, and the gradient reaching the scores is about a third of the scaled
# one, a fifth at $D = 256$, so $W_Q$ and $W_K$ learn slowly and unevenly.
#
# **What the mask does to the gradient.** The loss at position $t$ must not teach the model anything
# through later positions. Below, only position 2's output is differentiated: the keys and values of
# positions 3 and later receive exactly zero gradient with the mask, and a nonzero one without it.

# %%
rng = np.random.default_rng(0)
q, k, v = (Variable(rng.standard_normal((1, 6, 4)), requires_grad=True) for _ in range(3))
for causal in (True, False):
    for variable in (q, k, v):
        variable.grad = None
    scaled_dot_product_attention(q, k, v, causal)[:, 2].sum().backward()
    print(f"causal={causal!s:5}  |grad| of each position's key: {np.abs(k.grad[0]).sum(axis=-1).round(3)}, "
          f"value: {np.abs(v.grad[0]).sum(axis=-1).round(3)}")

# %% [markdown]
# **Memory grows with the square of the context.** The weights of one attention are a $T \times T$
# matrix per head and example, and training keeps them until the backward pass (the softmax's rule
# needs them). Below: the peak memory NumPy allocates for one forward and backward pass of causal
# attention (batch 1, 4 heads, $D = 16$, float32), measured with `tracemalloc`, and the time, as the
# context doubles. The inputs themselves grow only linearly ($4 \cdot T \cdot 16$ numbers each).

# %%
def attention_inputs(length: int, heads: int = 4, head_dim: int = 16) -> list:
    rng = np.random.default_rng(0)
    return [Variable(rng.standard_normal((1, heads, length, head_dim)).astype(np.float32), requires_grad=True)
            for _ in range(3)]


def attention_peak(length: int) -> int:
    """Peak bytes NumPy holds during one forward and backward pass (the inputs made before counting)."""
    q, k, v = attention_inputs(length)
    tracemalloc.start()
    scaled_dot_product_attention(q, k, v).sum().backward()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def attention_time(length: int) -> float:
    """Best of 3 forward and backward passes, in seconds (timed without tracemalloc, which slows allocation)."""
    q, k, v = attention_inputs(length)
    return min(time_one(lambda: scaled_dot_product_attention(q, k, v).sum().backward()) for _ in range(3))


def time_one(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


print(f"{'T':>6} {'peak MB':>9} {'x previous':>10} {'T*T*heads*4 B (MB)':>19} {'ms':>8}")
previous = None
with one_blas_thread():
    for length in (128, 256, 512, 1024):
        peak = attention_peak(length)
        ratio = f"{peak / previous:>10.2f}" if previous else f"{'':>10}"
        print(f"{length:>6} {peak / 2**20:>9.1f} {ratio} {length * length * 4 * 4 / 2**20:>19.1f} "
              f"{attention_time(length) * 1e3:>8.1f}")
        previous = peak

# %% [markdown]
# Each doubling of $T$ multiplies the peak by about four: the $(T, T)$ arrays (scores, weights, and
# the gradients of both) dominate, several copies of the one-matrix size in the last column. At
# $T = 1024$ one layer of one example already needs tens of megabytes; GPT-sized contexts and batches
# need gigabytes. That is what FlashAttention avoids: it computes the softmax in tiles and never
# stores the $T \times T$ matrix, recomputing it in the backward pass instead.

# %% [markdown]
# ## 6. Reflection
#
# Answer in a sentence or three each.

# %% [markdown]
# **Q1.** The mask uses $-\infty$ before the softmax. Why not multiply the weights by zero *after* the
# softmax instead?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-attention-mask", "locked": false, "points": 2, "solution": true}
# Zeroing after the softmax leaves rows that no longer sum to 1 (the visible weights keep the share the
# future took), so outputs shrink by an amount that depends on the future keys, and the normalizer
# still carries gradient to them: information leaks. With -inf before the softmax the future gets
# exactly zero weight, the rest renormalizes, and the softmax's rule sends no gradient there.

# %% [markdown]
# **Q2.** A model of width $C = 64$ has 4 heads of 16 features or 1 head of 64. Compare their cost
# (parameters and arithmetic) and what they can express.

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-attention-heads", "locked": false, "points": 2, "solution": true}
# The projections are the same four C x C matrices either way, so parameters and projection arithmetic
# are equal; QK^T and the weighted sum also cost the same total (H heads of D = C/H features), though
# H heads store H weight matrices of T x T. What differs is expressiveness: one head forms one weighted
# average per position, four heads can look at four different places at once (the previous character,
# the opening bracket, ...) with lower-dimensional, cheaper-to-learn comparisons.

# %% [markdown]
# **Q3.** The memory table shows the quadratic cost. For a context of 8,192 characters, 12 heads and
# a batch of 16, estimate the memory of one layer's attention weights in float32, and say what you
# would change.

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-attention-memory", "locked": false, "points": 2, "solution": true}
# 8192^2 x 12 x 16 x 4 bytes is about 51.5 GB for the weights alone, before the scores and the
# gradients, for one layer: impossible on one device. Options: a tiled (FlashAttention-style) kernel
# that never stores the T x T matrix, a shorter context or a sliding window, or recomputing attention
# in the backward pass (activation checkpointing) instead of storing it.

# %% [markdown]
# ## Summary
#
# An `Embedding` replaces ids by learned rows, adding up the gradients of repeated ids; positions get
# learned vectors too. `LayerNorm` rescales each vector over its last axis, in one graph operation.
# Attention is `softmax(q k^T / sqrt(D) + mask) v`: the scale keeps the softmax from saturating, and
# the causal mask keeps every position blind to its future, in the forward values and in the
# gradients. `MultiHeadAttention` splits the features into heads and runs all of them in one batched
# product; its weights cost memory that grows with the square of the context. Export with
# `tito module complete 10_attention`; module 11 builds a GPT from these parts.
