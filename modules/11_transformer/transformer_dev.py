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
# # The transformer: a small GPT, trained by your own engine
#
# Module 10 built the parts: embeddings, `LayerNorm`, causal multi-head attention. This module stacks
# them into a **GPT**, a language model that reads characters and predicts, at every position, the
# next one:
#
# ```
# ids (B, T) -> token embedding + position embedding               (B, T, C)
#            -> N x Block: x + Attention(LayerNorm(x)); x + MLP(LayerNorm(x))
#            -> LayerNorm -> Linear(C, V)                          logits (B, T, V)
# ```
#
# It then trains one on text that ships with Python: the reference documentation in `pydoc_data`,
# with module 08's `DataLoader` and `Trainer`, module 07's `AdamW`, gradient clipping and a warm-up
# learning-rate schedule, and makes it write. Everything below, down to the matrix products'
# gradients, is code you wrote.
#
# **Objectives.** By the end of this module you can:
#
# - write GELU as one operation with its own backward rule;
# - build a pre-norm transformer block (attention, then an MLP, each on a normalized copy added back to the
#   residual stream) and stack blocks into a GPT;
# - sample text from it one character at a time, with a temperature and top-k;
# - cut a text into windows of ids and targets, and train the GPT with module 08's `Trainer`, `AdamW`, gradient
#   clipping and a warm-up;
# - say, from measurements, where the parameters and the time of a training step go.
#
# | You write here | It becomes | Used by |
# |---|---|---|
# | this notebook, `transformer.ipynb` | `tinytorch.core.transformer` | `tito milestone gpt` |

# %%
#| default_exp core.transformer

# %%
#| export
from __future__ import annotations

import math

import numpy as np

from tinytorch.core.attention import Embedding, LayerNorm, MultiHeadAttention, PositionalEmbedding, generator
from tinytorch.core.attention import token_ids
from tinytorch.core.autograd import no_grad, record
from tinytorch.core.layers import Linear, Module, array_of
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import LRScheduler, clip_grad_norm

# %%
# For the examples and tests below (the exported code does not need them).
import time

from tinytorch.core.activations import GELU
from tinytorch.core.autograd import Variable
from tinytorch.core.operations import gradcheck
from tinytorch.core.optimizers import AdamW
from tinytorch.core.tensor import Tensor, best_time, one_blas_thread
from tinytorch.core.training import DataLoader, Trainer

# %% [markdown]
# ## 1. GELU, as one operation
#
# The MLP of a transformer block uses GELU, $x\,\Phi(x)$, a smooth ReLU. Module 02 wrote its tanh
# approximation (GPT-2's, and PyTorch's `GELU(approximate="tanh")`) from Tensor operations:
#
# $$\mathrm{GELU}(x) = \tfrac12\,x\,\bigl(1 + \tanh u\bigr),\qquad u = \sqrt{2/\pi}\,\bigl(x + 0.044715\,x^3\bigr).$$
#
# That is eight graph nodes and eight temporary arrays for every entry of the widest activation of the
# network ($B \cdot T \cdot 4C$ numbers). As one operation it is one node, with the derivative next to
# the value:
#
# $$\frac{d}{dx}\mathrm{GELU}(x) = \tfrac12\,(1 + \tanh u) + \tfrac12\,x\,(1 - \tanh^2 u)\,\sqrt{2/\pi}\,\bigl(1 + 3 \cdot 0.044715\,x^2\bigr).$$
#
# Module 05's `record(value, name, (x, rule))` records it.
#
# Because the array is the network's widest, how the formulas are evaluated matters as much as the
# formulas. Written as they stand, each `*`, `+` or `1 -` makes a new array of $B \cdot T \cdot 4C$
# numbers (2 MB in the milestone's model): memory that the allocator takes from the operating system and
# gives back, step after step, and one more pass over memory each (section 7 measures it). Two habits
# avoid both:
#
# - **in place**: build each result in an array made for it, with `out=` and in-place operators
#   (`np.multiply(x, x, out=t)`, `t *= x`, `np.tanh(t, out=t)`), and arrange the derivative so that it
#   needs one temporary (a spare piece, reused for every piece): with $t = \tanh u$ and
#   $s = \tfrac12\sqrt{2/\pi}\,x\,(1 + 3 \cdot 0.044715\,x^2)$,
#
# $$\frac{d}{dx}\mathrm{GELU}(x) = \tfrac12(1 + t) + s\,(1 - t^2) = \tfrac12 + s + t\,\bigl(\tfrac12 - s\,t\bigr);$$
#
# - **in blocks**: a chain of eight operations over 2 MB reads and writes the arrays eight times from main
#   memory; cut into pieces of $2^{16}$ numbers (256 KB of float32), the chain runs on one piece while it
#   sits in the processor's cache, then on the next. `blocks` (given) yields matching pieces of arrays
#   of one shape, as views of the C-contiguous ones (the arrays made here): writing into a piece writes
#   into the array.
#
# Write the loop bodies: the value and $\tanh u$ (kept for the rule) piece by piece, then the rule.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "transformer-gelu", "locked": false, "solution": true}
#| export
GELU_SCALE = math.sqrt(2.0 / math.pi)
GELU_CUBIC = 0.044715
BLOCK = 1 << 16  # numbers per piece: 256 KB of float32, so that a piece and its temporaries stay in the cache


def blocks(*arrays: np.ndarray):
    """Matching pieces of BLOCK numbers of arrays of one shape, as tuples of flat pieces: views of the arrays
    that are C-contiguous, so write only into those (a piece of any other array is a copy)."""
    flat = [array.reshape(-1) for array in arrays]
    for start in range(0, flat[0].size, BLOCK):
        yield tuple(array[start:start + BLOCK] for array in flat)


def gelu(x):
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) elementwise, as one graph operation whose rule is the
    derivative above.

    >>> gelu(Variable([0.0, 1.0])).numpy().round(4).tolist()
    [0.0, 0.8412]
    """
    xv = np.asarray(x, order="C")  # C-contiguous, and so the arrays made like it, which blocks() writes into
    tanh_u, out = np.empty_like(xv), np.empty_like(xv)
    ### BEGIN SOLUTION
    for x_part, tanh_part, out_part in blocks(xv, tanh_u, out):
        np.multiply(x_part, x_part, out=tanh_part)
        tanh_part *= GELU_CUBIC * GELU_SCALE
        tanh_part += GELU_SCALE
        tanh_part *= x_part                         # u = sqrt(2/pi) (x + 0.044715 x^3)
        np.tanh(tanh_part, out=tanh_part)
        np.multiply(tanh_part, x_part, out=out_part)
        out_part += x_part
        out_part *= 0.5                             # 0.5 x (1 + tanh u)

    def rule(g):
        grad, spare = np.empty_like(xv), np.empty(min(BLOCK, xv.size), xv.dtype)  # spare: one temporary piece
        for x_part, tanh_part, g_part, slope in blocks(xv, tanh_u, g, grad):
            np.multiply(x_part, x_part, out=slope)
            slope *= 1.5 * GELU_CUBIC * GELU_SCALE
            slope += 0.5 * GELU_SCALE
            slope *= x_part                         # s = 0.5 sqrt(2/pi) x (1 + 3 * 0.044715 x^2)
            rest = np.multiply(slope, tanh_part, out=spare[:slope.size])
            np.subtract(0.5, rest, out=rest)
            rest *= tanh_part                       # t (0.5 - s t)
            slope += rest
            slope += 0.5
            slope *= g_part
        return grad

    return record(out, "GELU", (x, rule))
    ### END SOLUTION

# %% [markdown]
# ### Test: GELU

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-transformer-gelu", "locked": true, "points": 2, "solution": false}
def test_unit_gelu():
    x = np.linspace(-6, 6, 49)
    expected = GELU()(Tensor(x)).numpy()
    got = gelu(Variable(x)).numpy()
    assert np.allclose(got, expected, atol=1e-12), f"gelu should equal module 02's GELU (tanh form); at x=1 expected {expected[28]:.6f}, got {got[28]:.6f}"
    gradcheck(gelu, Variable(x + 0.013, requires_grad=True), name="gelu")
    y = Variable(np.array([1.0, -2.0]), requires_grad=True)
    gelu(y).sum().backward()
    assert np.allclose(y.grad, [1.0829641, -0.0860993], atol=1e-6), f"GELU'(1) = 1.08296, GELU'(-2) = -0.08610, got {y.grad}"
    assert gelu(Variable(np.zeros(3, dtype=np.float32))).dtype == np.float32, "gelu should keep float32"
    with no_grad():
        assert gelu(y).grad_fn is None, "under no_grad, gelu should record nothing"
    # GELU's tanh u and derivative in NumPy, for inputs too large for gradcheck
    def tanh_u(x):
        return np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))

    def expected_slope(x):
        t = tanh_u(x)
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x * x)

    rng = np.random.default_rng(0)
    long = Variable(rng.standard_normal(2 * BLOCK + 7), requires_grad=True)  # two whole pieces and a short one
    out = gelu(long)
    try:
        out.sum().backward()
    except ValueError as error:
        raise AssertionError(f"gelu's rule on more than one piece (2 BLOCKs and 7 numbers) raised {error}: "
                             "is the last, shorter piece handled?") from None
    assert np.allclose(out.numpy(), 0.5 * long.numpy() * (1 + tanh_u(long.numpy()))), "gelu on more than one piece (2 BLOCKs and 7 numbers): wrong values"
    assert np.allclose(long.grad, expected_slope(long.numpy())), \
        "gelu's gradient on more than one piece (2 BLOCKs and 7 numbers) is wrong: is the last, shorter piece handled?"
    square = Variable(rng.standard_normal((3, 4)), requires_grad=True)
    weights = rng.standard_normal((4, 3))
    (gelu(square).transpose(0, 1) * Variable(weights)).sum().backward()  # gelu's rule receives a transposed g
    assert np.allclose(square.grad, weights.T * expected_slope(square.numpy())), \
        "gelu's gradient is wrong for a non-contiguous g (here a transposed one): make the gradient like x, which is C-contiguous"

test_unit_gelu()

# %% [markdown]
# ## 2. The block: attention, then an MLP, each on a normalized copy and added back
#
# A transformer block lets each position first gather from other positions (attention), then think
# about what it gathered on its own (an MLP applied to every position separately, $C \to 4C \to C$
# with GELU). Each sub-layer reads a **normalized copy** of the stream $x$ and **adds** its result to
# $x$ (a residual connection):
#
# $$x \leftarrow x + \mathrm{Attention}(\mathrm{LN}_1(x)), \qquad x \leftarrow x + \mathrm{MLP}(\mathrm{LN}_2(x)).$$
#
# This is the **pre-norm** block of GPT-2. The original transformer normalized *after* the addition,
# $x \leftarrow \mathrm{LN}(x + f(x))$, which puts a normalization on the main path of every layer;
# pre-norm leaves the path from the input to the output a plain sum, $x_N = x_0 + \sum_l f_l(\cdot)$,
# so the gradient reaches early layers undiminished and deep stacks train without a careful warm-up.
# A consequence you can test: a block whose two output projections are zero is exactly the identity.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "transformer-block", "locked": false, "solution": true}
#| export
class FeedForward(Module):
    """The position-wise MLP: Linear(C, hidden) -> GELU -> Linear(hidden, C), applied to x (B, T, C) as one
    (B * T, C) matrix. `activation` is the function between the two layers (`gelu`)."""

    def __init__(self, d_model: int, hidden: int, *, rng: np.random.Generator | None = None, dtype=np.float32):
        self.up = Linear(d_model, hidden, rng=rng, dtype=dtype)
        self.down = Linear(hidden, d_model, rng=rng, dtype=dtype)
        self.activation = gelu

    def forward(self, x):
        batch, length, width = x.shape
        return self.down(self.activation(self.up(x.reshape(batch * length, width)))).reshape(batch, length, width)


class Block(Module):
    """A pre-norm transformer block: x + attention(norm1(x)), then that + mlp(norm2(that))."""

    def __init__(self, d_model: int, num_heads: int, *, rng: np.random.Generator | None = None, dtype=np.float32,
                 attention: type = MultiHeadAttention, norm: type = LayerNorm):
        self.norm1 = norm(d_model, dtype=dtype)
        self.attention = attention(d_model, num_heads, rng=rng, dtype=dtype)
        self.norm2 = norm(d_model, dtype=dtype)
        self.mlp = FeedForward(d_model, 4 * d_model, rng=rng, dtype=dtype)

    def forward(self, x):
        ### BEGIN SOLUTION
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))
        ### END SOLUTION

# %% [markdown]
# ### Test: the block

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-transformer-block", "locked": true, "points": 3, "solution": false}
def zero_output_projections(block):
    for layer in (block.attention.out, block.mlp.down):
        array_of(layer.weight)[...] = 0
        array_of(layer.bias)[...] = 0


def test_unit_block():
    rng = np.random.default_rng(0)
    block = Block(8, 2, rng=rng, dtype=np.float64)
    for norm in (block.norm1, block.norm2):  # two different norms, so that using one for both shows
        array_of(norm.weight)[...] = rng.uniform(0.5, 1.5, 8)
        array_of(norm.bias)[...] = rng.standard_normal(8)
    x = Variable(rng.standard_normal((2, 5, 8)) * 3 + 1)
    out = block(x)
    assert out.shape == (2, 5, 8), f"a block keeps the shape (B, T, C) = (2, 5, 8), got {out.shape}"
    middle = x.numpy() + block.attention(block.norm1(x)).numpy()
    expected = middle + block.mlp(block.norm2(Variable(middle))).numpy()
    assert np.allclose(out.numpy(), expected), ("expected x + attention(norm1(x)), then + mlp(norm2(.)) of that sum "
                                                "(pre-norm: normalize the input of each sub-layer, not the sum)")
    zero_output_projections(block)
    if not np.allclose(block(x).numpy(), x.numpy()):
        raise AssertionError("with both output projections zero, a pre-norm block must return x unchanged: the "
                             "residual path is a plain sum (is the sum normalized, or is a residual missing?)")
    small = Block(4, 2, rng=np.random.default_rng(1), dtype=np.float64)
    gradcheck(small, Variable(rng.standard_normal((1, 3, 4)), requires_grad=True), name="Block")
    names = {name.split(".")[0] for name, _ in small.named_parameters()}
    assert names == {"norm1", "attention", "norm2", "mlp"}, f"a block holds norm1, attention, norm2 and mlp, got {names}"
    assert small.mlp.up.weight.shape == (4, 16), f"the MLP widens C = 4 to 4C = 16, got {small.mlp.up.weight.shape}"

test_unit_block()

# %% [markdown]
# ## 3. GPT
#
# The whole model: ids $(B, T)$ become token vectors plus position vectors, pass through $N$ blocks,
# a final `LayerNorm`, and an output layer that gives, at every position, one score (logit) per
# character of the vocabulary: $(B, T, V)$. The logits at position $t$ predict the character at
# $t + 1$; thanks to the causal masks, they depend only on characters $0..t$.
#
# The output layer is a `Linear(C, V)` without bias, or, with `tied=True`, the token embedding used
# backwards: logits $= h E^\top$. Tying saves $V C$ parameters and says that a character's input
# vector and its output vector should agree; for a vocabulary of about 100 characters it saves
# little, for a word-level vocabulary of 50,000 it halves a small model.
#
# Initialization follows GPT-2 (given): every weight matrix and embedding from $N(0, 0.02^2)$, biases
# zero, and the two projections that write into the residual stream (attention's `out`, the MLP's
# `down`) scaled down by $\sqrt{2N}$, so the stream's variance does not grow with depth.
#
# `model.loss_function()` (given) is the loss to train a GPT with: module 04's cross-entropy, over the
# logits laid out by `PerPositionLogits` (section 6). The blocks attend with the class in `attention_layer`,
# module 10's `MultiHeadAttention`, and normalize with `norm_layer`, module 10's `LayerNorm`; a subclass may
# name other layers with the same parameters, and its own loss, and is trained the same way.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "transformer-gpt", "locked": false, "solution": true}
#| export
class GPT(Module):
    """A character-level GPT: `num_layers` pre-norm blocks of width `d_model` with `num_heads` heads, over
    contexts of up to `context` positions; logits (B, T, vocab_size) for ids (B, T).

    >>> GPT(vocab_size=10, context=8, d_model=16, num_heads=2, num_layers=1, rng=np.random.default_rng(0))(Tensor([[1, 2, 3]])).shape
    (1, 3, 10)
    """

    attention_layer = MultiHeadAttention  # the layer every block attends with
    norm_layer = LayerNorm  # the layer of every normalization

    def __init__(self, vocab_size: int, context: int, d_model: int = 64, num_heads: int = 4, num_layers: int = 2,
                 tied: bool = False, *, rng: np.random.Generator | None = None, dtype=np.float32):
        rng = generator(rng)
        self.vocab_size, self.context, self.d_model = int(vocab_size), int(context), int(d_model)
        self.num_heads, self.num_layers, self.tied = int(num_heads), int(num_layers), bool(tied)
        self.token = Embedding(vocab_size, d_model, std=0.02, rng=rng, dtype=dtype)
        self.position = PositionalEmbedding(context, d_model, std=0.02, rng=rng, dtype=dtype)
        self.blocks = [Block(d_model, num_heads, rng=rng, dtype=dtype, attention=self.attention_layer, norm=self.norm_layer)
                       for _ in range(num_layers)]
        self.norm = self.norm_layer(d_model, dtype=dtype)
        self.head = None if tied else Linear(d_model, vocab_size, bias=False, rng=rng, dtype=dtype)
        self._initialize(rng)

    def _initialize(self, rng: np.random.Generator) -> None:
        """GPT-2's initialization: N(0, 0.02^2) weights, zero biases, residual projections / sqrt(2 N)."""
        for name, module in self.named_modules():
            if isinstance(module, Linear):
                residual = name.endswith(("attention.out.", "mlp.down."))
                std = 0.02 / math.sqrt(2 * self.num_layers) if residual else 0.02
                weight = array_of(module.weight)
                weight[...] = std * rng.standard_normal(weight.shape)
                if module.bias is not None:
                    array_of(module.bias)[...] = 0

    def forward(self, ids):
        ids = token_ids(ids, self.vocab_size)
        if ids.ndim != 2:
            raise ValueError(f"GPT expects ids of shape (B, T), got {ids.shape}")
        batch, length = ids.shape
        ### BEGIN SOLUTION
        x = self.position(self.token(ids))
        for block in self.blocks:
            x = block(x)
        rows = self.norm(x).reshape(batch * length, self.d_model)
        logits = rows @ self.token.weight.transpose(0, 1) if self.tied else self.head(rows)
        return logits.reshape(batch, length, self.vocab_size)
        ### END SOLUTION

    def loss_function(self):
        """The loss to train this model with: module 04's cross-entropy of its logits."""
        return CrossEntropyLoss()

    def extra_repr(self) -> str:
        return (f"vocab_size={self.vocab_size}, context={self.context}, d_model={self.d_model}, "
                f"num_heads={self.num_heads}, num_layers={self.num_layers}, tied={self.tied}")

# %% [markdown]
# ### Test: GPT

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-transformer-gpt", "locked": true, "points": 4, "solution": false}
def test_unit_gpt():
    model = GPT(vocab_size=11, context=6, d_model=8, num_heads=2, num_layers=2, rng=np.random.default_rng(0),
                dtype=np.float64)
    ids = np.array([[1, 2, 3, 4, 5], [5, 4, 3, 2, 1]])
    logits = model(Tensor(ids))
    assert logits.shape == (2, 5, 11), f"ids (2, 5) and 11 characters give logits (2, 5, 11), got {logits.shape}"
    changed = ids.copy()
    changed[:, 3:] = 0
    if not np.allclose(model(changed).numpy()[:, :3], logits.numpy()[:, :3]):
        raise AssertionError("the logits at positions 0-2 changed when only positions 3 and later did: "
                             "a position must not see its future")
    x = model.position(model.token(ids))
    for block in model.blocks:
        x = block(x)
    expected = model.norm(x).numpy() @ model.head.weight.numpy()
    assert np.allclose(logits.numpy(), expected), ("expected token + position embeddings, every block in order, the "
                                                   "final norm, then the head")
    logits.sum().backward()
    missing = [name for name, parameter in model.named_parameters() if parameter.grad is None]
    assert not missing, f"every parameter should receive a gradient, these did not: {missing}"
    tied = GPT(vocab_size=11, context=6, d_model=8, num_heads=2, num_layers=2, tied=True, rng=np.random.default_rng(0),
               dtype=np.float64)
    expected = tied.norm(tied.blocks[1](tied.blocks[0](tied.position(tied.token(ids))))).numpy() @ tied.token.weight.numpy().T
    try:
        got = tied(ids).numpy()
    except (TypeError, ValueError) as raised:
        raise AssertionError(f"with tied=True there is no head: the output layer is the token embedding, transposed "
                             f"(h @ E.T); calling the tied GPT raised {type(raised).__name__}: {raised}") from None
    assert np.allclose(got, expected), "with tied=True the output layer is the token embedding, transposed"
    count = lambda m: sum(p.size for p in m.parameters())
    assert count(model) - count(tied) == 11 * 8, f"tying should save exactly V * C = 88 parameters, saved {count(model) - count(tied)}"
    try:
        model(np.zeros((1, 7), dtype=int))
    except ValueError:
        pass
    else:
        raise AssertionError("7 positions exceed the context of 6: GPT should raise a ValueError")

test_unit_gpt()

# %% [markdown]
# ## 4. Generating text: temperature and top-k
#
# To write, the model reads a prompt, turns the logits of the last position into probabilities, draws
# the next character, appends it, and repeats (only the last `context` characters fit in a window).
# Two knobs shape the draw:
#
# - **temperature** $\tau > 0$ divides the logits before the softmax: $\tau < 1$ sharpens the
#   distribution (as $\tau \to 0$, always the most likely character), $\tau > 1$ flattens it;
# - **top-k** keeps only the $k$ largest logits (the others get probability 0), cutting the long tail
#   of unlikely characters that otherwise turns up now and then as garbage. Ties with the $k$-th
#   largest are kept.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "transformer-sampling", "locked": false, "solution": true}
#| export
def next_distribution(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None) -> np.ndarray:
    """Probabilities (float64, summing to 1) from one row of logits: softmax(logits / temperature), with only
    the `top_k` largest logits kept (None: all).

    >>> next_distribution(np.array([0.0, 0.0, 1.0]), top_k=1).tolist()
    [0.0, 0.0, 1.0]
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    ### BEGIN SOLUTION
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    if top_k is not None and top_k < len(scaled):
        kth_largest = np.partition(scaled, -top_k)[-top_k]
        scaled = np.where(scaled < kth_largest, -np.inf, scaled)
    weights = np.exp(scaled - scaled.max())
    return weights / weights.sum()
    ### END SOLUTION


def generate(model: GPT, prompt, length: int, temperature: float = 1.0, top_k: int | None = None,
             rng: np.random.Generator | None = None) -> list[int]:
    """`length` ids drawn one at a time after the ids of `prompt`, each from `next_distribution` of the logits
    at the last position of the last `model.context` ids; in eval mode, without a graph."""
    ids = [int(i) for i in prompt]
    if not ids:
        raise ValueError("generate needs a prompt of at least one id")
    rng = generator(rng)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for _ in range(length):
                logits = np.asarray(model(np.array([ids[-model.context:]])))[0, -1]
                probabilities = next_distribution(logits, temperature, top_k)
                ids.append(int(rng.choice(len(probabilities), p=probabilities)))
    finally:
        model.train(was_training)
    return ids[-length:] if length else []

# %% [markdown]
# ### Test: sampling

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-transformer-sampling", "locked": true, "points": 3, "solution": false}
def test_unit_sampling():
    logits = np.array([2.0, 1.0, 0.5, 3.0])
    plain = next_distribution(logits)
    softmax = np.exp(logits - 3) / np.exp(logits - 3).sum()
    assert np.allclose(plain, softmax), f"temperature 1 and no top_k: the softmax of the logits {softmax.round(4)}, got {plain}"
    sharp, flat = next_distribution(logits, temperature=0.5), next_distribution(logits, temperature=4.0)
    assert logits.tolist() == [2.0, 1.0, 0.5, 3.0], f"next_distribution must not change the logits it is given (divide into a new array), they became {logits}"
    if sharp[3] < plain[3]:
        raise AssertionError("temperature 0.5 should sharpen the distribution (divide the logits by it, not multiply)")
    assert np.allclose(sharp, np.exp(2 * (logits - 3)) / np.exp(2 * (logits - 3)).sum()) and flat[3] < plain[3], \
        "softmax(logits / temperature): below 1 sharper, above 1 flatter"
    top2 = next_distribution(logits, top_k=2)
    assert np.count_nonzero(top2) == 2 and top2[0] > 0 and top2[3] > 0, f"top_k=2 keeps the two largest logits (3.0 and 2.0), got {top2}"
    top1 = next_distribution(np.array([0.0, 1.0, 2.0, 3.0, 4.0]), top_k=1)
    assert top1.tolist() == [0.0, 0.0, 0.0, 0.0, 1.0], f"top_k=1 keeps only the largest logit (the k-th largest counts from the top), got {top1}"
    assert np.isclose(top2.sum(), 1) and np.isclose(top2[3] / top2[0], math.e), "the kept ones are renormalized softmax weights"
    assert np.allclose(next_distribution(logits, top_k=10), plain), "a top_k larger than the vocabulary keeps everything"
    assert next_distribution(np.array([1.0, 1.0, 0.0]), top_k=1).tolist() == [0.5, 0.5, 0.0], "ties with the k-th largest are kept"
    assert next_distribution(np.array([1e4, 0.0]), temperature=0.01)[0] == 1.0, "large logits must not overflow"
    got = next_distribution(np.array([0.5, 1.5, 1.0], dtype=np.float32)).dtype
    assert got == np.float64, f"the probabilities are float64 even for float32 logits (rng.choice wants them to sum to 1 closely), got {got}"

    model = GPT(vocab_size=7, context=4, d_model=8, num_heads=2, num_layers=1, rng=np.random.default_rng(0))
    drawn = generate(model, [1, 2], 12, rng=np.random.default_rng(0))
    assert len(drawn) == 12 and all(0 <= i < 7 for i in drawn), f"12 ids in [0, 7) expected, got {drawn}"
    assert drawn == generate(model, [1, 2], 12, rng=np.random.default_rng(0)), "the same rng seed should give the same text"
    greedy = generate(model, [3], 3, top_k=1)
    assert greedy[0] == int(np.asarray(model(np.array([[3]])))[0, -1].argmax()), "top_k=1 always picks the most likely id"

test_unit_sampling()

# %% [markdown]
# ## 5. Text as training data
#
# **Characters.** The vocabulary is every distinct character of the text, sorted; a character's id is
# its position in that list (`CharTokenizer`, given).
#
# **Train and validation.** The text is cut into blocks of 2,048 characters and every tenth block
# (blocks 9, 19, 29, ...) is held out for validation. A fixed rule, not a random one: any run, with
# any seed, is measured on the same characters; and blocks, not single characters, so the held-out
# text is read in pieces long enough for a context (`split_text`, given).
#
# **Windows.** A training example is a window of $T$ ids and, as targets, the same window moved one
# character on: the target at position $t$ is the character at $t + 1$. One window of $T + 1$
# characters thus gives $T$ predictions, each with all the context before it. Windows are cut side by
# side (window $i$ starts at $iT$), so every character is a target exactly once per epoch.

# %%
#| export
class CharTokenizer:
    """Characters <-> ids: the vocabulary is the sorted set of characters of a text."""

    def __init__(self, characters):
        self.characters = "".join(sorted(set(characters)))
        if not self.characters:
            raise ValueError("a tokenizer needs at least one character")
        self.ids = {character: index for index, character in enumerate(self.characters)}

    def __len__(self) -> int:
        return len(self.characters)

    def encode(self, text: str) -> np.ndarray:
        unknown = sorted(set(text) - set(self.ids))
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {''.join(unknown)[:20]!r}")
        return np.array([self.ids[character] for character in text], dtype=np.int64)

    def decode(self, ids) -> str:
        return "".join(self.characters[int(i)] for i in ids)


def split_text(text: str, block: int = 2048, every: int = 10) -> tuple[str, str]:
    """(train, validation): `text` cut into blocks of `block` characters; block i is validation if
    i % every == every - 1."""
    blocks = [text[start:start + block] for start in range(0, len(text), block)]
    held_out = [index % every == every - 1 for index in range(len(blocks))]
    return ("".join(b for b, out in zip(blocks, held_out) if not out), "".join(b for b, out in zip(blocks, held_out) if out))

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "transformer-windows", "locked": false, "solution": true}
#| export
def next_character_windows(ids: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets), both (N, context): window i is ids[i*context : (i+1)*context], its targets the same
    positions moved one on; N = (len(ids) - 1) // context, so every target exists.

    >>> [a.tolist() for a in next_character_windows(np.arange(7), 3)]
    [[[0, 1, 2], [3, 4, 5]], [[1, 2, 3], [4, 5, 6]]]
    """
    ids = np.asarray(ids)
    count = (len(ids) - 1) // context
    if count < 1:
        raise ValueError(f"{len(ids)} characters are too few for one window of {context} plus its next character")
    ### BEGIN SOLUTION
    inputs = ids[:count * context].reshape(count, context)
    targets = ids[1:count * context + 1].reshape(count, context)
    return inputs, targets
    ### END SOLUTION

# %% [markdown]
# ### Test: windows

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-transformer-windows", "locked": true, "points": 2, "solution": false}
def test_unit_windows():
    ids = np.arange(100, 111)
    try:
        inputs, targets = next_character_windows(ids, 4)
    except ValueError as error:
        raise AssertionError(f"11 ids make (11 - 1) // 4 = 2 whole windows of 4, the ids left over are dropped; "
                             f"next_character_windows(np.arange(100, 111), 4) raised {error}") from None
    assert inputs.shape == targets.shape == (2, 4), f"11 ids give (11 - 1) // 4 = 2 windows of 4, got {inputs.shape}, {targets.shape}"
    assert inputs.tolist() == [[100, 101, 102, 103], [104, 105, 106, 107]], f"windows lie side by side, got {inputs.tolist()}"
    if targets.tolist() == inputs.tolist():
        raise AssertionError("the targets equal the inputs: the model would learn to copy; each target is the NEXT character")
    assert targets.tolist() == [[101, 102, 103, 104], [105, 106, 107, 108]], f"targets: the inputs moved one on, got {targets.tolist()}"
    assert next_character_windows(np.arange(9), 4)[1][-1, -1] == 8, "the last target may be the last id"
    try:
        next_character_windows(np.arange(4), 4)
    except ValueError:
        pass
    else:
        raise AssertionError("4 ids are too few for a window of 4 plus a next character: expected a ValueError")
    tokenizer = CharTokenizer("hello world")
    assert tokenizer.decode(tokenizer.encode("low door")) == "low door" and len(tokenizer) == 8
    train, validation = split_text("".join(chr(65 + i % 26) for i in range(100)), block=10, every=5)
    assert len(train) == 80 and validation == "".join(chr(65 + i % 26) for i in list(range(40, 50)) + list(range(90, 100)))

test_unit_windows()

# %% [markdown]
# ## 6. Training: module 08's Trainer, with clipping and a warm-up
#
# Module 08's `Trainer` runs `zero_grad`, forward, loss, `backward`, `step` for every batch, and
# module 04's `CrossEntropyLoss` already takes one loss per position when the classes are on axis 1,
# PyTorch's layout: logits $(B, V, T)$ against targets $(B, T)$. `PerPositionLogits` (given) wraps
# the GPT to return that layout. (The Trainer's accuracy then counts the correctly predicted
# positions per *window*: divided by $T$, it is the next-character accuracy.)
#
# Transformers want two more things, both from module 07's parts:
#
# - **gradient clipping** (`clip_grad_norm`, max norm 1): one unlucky batch cannot throw the weights
#   far;
# - **a warm-up**: Adam's second-moment estimates start from few samples, so the first steps are
#   noisy; the learning rate rises linearly over the first `warmup` steps, then decays along a
#   cosine to `min_ratio` of its peak at `total` steps:
#
# $$\eta_s = \eta \cdot \frac{s+1}{w}\ \ (s < w),\qquad
#   \eta_s = \eta \cdot \Bigl(r + (1-r)\,\tfrac12\bigl(1 + \cos\bigl(\pi\,\tfrac{s-w}{S-w}\bigr)\bigr)\Bigr)\ \ (w \le s \le S).$$
#
# `ClippedSchedule` (given) is an optimizer for the Trainer that clips, steps the optimizer inside it,
# and advances the schedule, once per batch.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "transformer-schedule", "locked": false, "solution": true}
#| export
class WarmupCosineLR(LRScheduler):
    """Linear warm-up over `warmup` steps to the optimizer's rate, then a cosine decay to `min_ratio` times it
    at step `total` (and after). Step s uses lr_at(s); the rate of step 0 is set at construction."""

    def __init__(self, optimizer, warmup: int, total: int, min_ratio: float = 0.1):
        if warmup < 0 or total <= warmup:
            raise ValueError(f"need 0 <= warmup < total, got warmup={warmup}, total={total}")
        super().__init__(optimizer)
        self.warmup, self.total, self.min_ratio = int(warmup), int(total), float(min_ratio)
        optimizer.lr = self.lr_at(0)

    def lr_at(self, step: int) -> float:
        ### BEGIN SOLUTION
        if step < self.warmup:
            return self.base_lr * (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / (self.total - self.warmup))
        return self.base_lr * (self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))
        ### END SOLUTION

# %% [markdown]
# ### Test: the schedule

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-transformer-schedule", "locked": true, "points": 2, "solution": false}
class RateOnly:
    """Stands in for an optimizer: the scheduler only reads and writes `lr`."""

    def __init__(self, lr):
        self.lr = lr


def test_unit_schedule():
    schedule = WarmupCosineLR(RateOnly(1.0), warmup=4, total=14, min_ratio=0.1)
    rates = [schedule.lr_at(step) for step in range(16)]
    assert schedule.optimizer.lr == 0.25, f"step 0 should already use the warm-up rate 1/4, got {schedule.optimizer.lr}"
    assert np.allclose(rates[:4], [0.25, 0.5, 0.75, 1.0]), (f"warm-up: (s + 1) / warmup of the peak base_lr (the optimizer's rate "
                                                         f"at construction, not its lr now, which the schedule changes), got {rates[:4]}")
    assert rates[4] == 1.0 and np.isclose(rates[9], 0.55) and np.isclose(rates[14], 0.1) and np.isclose(rates[15], 0.1), \
        f"cosine from the peak (step 4) to 0.1 (step 14) through 0.55 (step 9), then flat: got {np.round(rates, 3).tolist()}"
    assert all(a >= b for a, b in zip(rates[4:], rates[5:])), "after the warm-up the rate never rises"
    schedule.step()
    assert schedule.optimizer.lr == rates[1], "step() moves to the next step's rate"

test_unit_schedule()

# %% [markdown]
# The two pieces that join module 08's Trainer to the GPT (given):

# %%
#| export
class PerPositionLogits(Module):
    """A language model's logits (B, T, V) as (B, V, T): the classes on axis 1, the layout in which
    CrossEntropyLoss gives one loss per position. The Trainer's accuracy then counts correct positions per
    window (T times the fraction of correct positions)."""

    def __init__(self, model: Module):
        self.model = model

    def forward(self, ids):
        return self.model(ids).transpose(1, 2)


class ClippedSchedule:
    """An optimizer for module 08's Trainer: each `step()` clips the gradients' total norm to `max_norm`,
    steps `optimizer` (kept as `inner`), then the `schedule`. `last_norm` keeps the norm before clipping."""

    def __init__(self, optimizer, schedule: LRScheduler | None = None, max_norm: float = 1.0):
        self.inner, self.schedule, self.max_norm = optimizer, schedule, max_norm
        self.last_norm = math.nan

    @property
    def params(self) -> list:
        return self.inner.params

    @property
    def lr(self) -> float:
        return self.inner.lr

    def zero_grad(self) -> None:
        self.inner.zero_grad()

    def step(self) -> None:
        self.last_norm = clip_grad_norm(self.inner.params, self.max_norm)
        self.inner.step()
        if self.schedule is not None:
            self.schedule.step()

    def state_dict(self) -> dict:
        return self.inner.state_dict()


def bits_per_character(nats: float) -> float:
    """A cross-entropy in nats (natural log) per character, in bits: nats / ln 2."""
    return nats / math.log(2)

# %% [markdown]
# **A short run.** A GPT of width 32, 2 layers and 4 heads, context 32, on the first 40,000
# characters of Python's reference documentation: three epochs of 36 steps each (AdamW, lr 1e-2,
# warm-up 20 steps, cosine decay over the three epochs), one per cell. A model that knew nothing would
# need $\log_2 V \approx 6.6$ bits per character; watch the held-out loss fall well below that.
# `tito milestone gpt` trains a larger model for longer.

# %%
from pydoc_data.topics import topics

corpus = "\n".join(topics[key] for key in sorted(topics))[:40_000]
tokenizer = CharTokenizer(corpus)
train_text, validation_text = split_text(corpus)
context = 32
train_loader = DataLoader(*next_character_windows(tokenizer.encode(train_text), context), batch_size=32, shuffle=True, seed=0)
validation_loader = DataLoader(*next_character_windows(tokenizer.encode(validation_text), context), batch_size=256)
gpt = GPT(len(tokenizer), context, d_model=32, num_heads=4, num_layers=2, rng=np.random.default_rng(0))
adamw = AdamW(gpt.parameters(), lr=1e-2, weight_decay=0.01)
optimizer = ClippedSchedule(adamw, WarmupCosineLR(adamw, warmup=20, total=3 * len(train_loader)), max_norm=1.0)
trainer = Trainer(PerPositionLogits(gpt), optimizer, gpt.loss_function())
print(f"{sum(p.size for p in gpt.parameters())} parameters, vocabulary {len(tokenizer)}, {len(train_loader)} steps per epoch")


def train_one_epoch_and_write():
    start = time.perf_counter()
    with one_blas_thread():
        history = trainer.fit(train_loader, validation_loader, epochs=1)
    print(f"{len(train_loader)} steps in {time.perf_counter() - start:.1f} s: validation "
          f"{bits_per_character(history.val_loss[-1]):.2f} bits/char, next-character accuracy "
          f"{history.val_accuracy[-1] / context:.1%}")
    written = generate(gpt, tokenizer.encode("The "), 100, temperature=0.8, top_k=10, rng=np.random.default_rng(0))
    print(repr("The " + tokenizer.decode(written)))


train_one_epoch_and_write()

# %%
train_one_epoch_and_write()

# %%
train_one_epoch_and_write()

# %% [markdown]
# After so few steps the model knows which characters are common and that spaces cut the text into
# short words, and a few frequent words appear; the milestone's longer run, with a model twice as wide
# and 2,000 steps, spells most words right and picks up the documentation's layout.
#
# ## 7. Systems analysis: where a training step goes
#
# **Parameters.** Per part, for the milestone's model (width 64, 4 heads, 2 layers, context 64,
# vocabulary 103): the blocks hold almost everything, the MLP twice as much as attention.

# %%
milestone_model = GPT(103, 64, d_model=64, num_heads=4, num_layers=2, rng=np.random.default_rng(0))
parts = {}
for name, parameter in milestone_model.named_parameters():
    part = name.split(".")[0] if not name.startswith("blocks") else "blocks: " + name.split(".")[2]
    parts[part] = parts.get(part, 0) + parameter.size
total = sum(parts.values())
for part, count in parts.items():
    print(f"{part:20} {count:>8} {count / total:>7.1%}")
print(f"{'total':20} {total:>8}")

# %% [markdown]
# **Time.** One training step of that model, batch 32 x 64 positions, split into the forward pass
# (with the loss), the backward pass and the optimizer step, NumPy's BLAS on one thread. The forward
# pass stores every intermediate array for the backward pass, whose matrix products do twice the
# forward's multiply-adds (two products per product).

# %%
rng = np.random.default_rng(0)
batch_ids = rng.integers(0, 103, (32, 65))
inputs, targets = Tensor(batch_ids[:, :-1].astype(np.float32)), batch_ids[:, 1:]
wrapped, loss_fn = PerPositionLogits(milestone_model), milestone_model.loss_function()
step_optimizer = AdamW(milestone_model.parameters(), lr=1e-3)
timings = {"forward + loss": [], "backward": [], "AdamW step": []}
with one_blas_thread():
    for _ in range(6):
        step_optimizer.zero_grad()
        t0 = time.perf_counter()
        loss = loss_fn(wrapped(inputs), targets)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        step_optimizer.step()
        t3 = time.perf_counter()
        for key, seconds in zip(timings, (t1 - t0, t2 - t1, t3 - t2)):
            timings[key].append(seconds)
whole = sum(min(values) for values in timings.values())
for key, values in timings.items():
    print(f"{key:16} {min(values) * 1e3:7.2f} ms {min(values) / whole:>7.1%}")
print(f"{'step':16} {whole * 1e3:7.2f} ms, {32 * 64 / whole:,.0f} characters per second")
backward_per_forward = min(timings["backward"]) / min(timings["forward + loss"])
print(f"backward / forward: {backward_per_forward:.2f}, " + ("close to" if 1.6 <= backward_per_forward <= 2.5 else "far from")
      + " the 2 the multiply-adds predict")

# %% [markdown]
# **GELU, in place and in blocks.** Section 1 built GELU's value and derivative in one array each, in
# place, piece by piece. Here is the same operation written as the formulas read, one new array per `*`
# and `+` over the whole activation, in the MLPs of the same
# model, against yours: the training step's time, and its page faults, the times the process touched
# memory that the operating system had to map for it (counted where Python's `resource` module exists).

# %%
try:
    import resource
except ImportError:  # not on Windows: the faults are left out
    resource = None


def gelu_as_written(x):
    """GELU and its derivative as the formulas read: every operation makes a new array (for comparison)."""
    xv = np.asarray(x)
    tanh_u = np.tanh(GELU_SCALE * (xv + GELU_CUBIC * xv * xv * xv))
    return record(0.5 * xv * (1 + tanh_u), "GELU", (x, lambda g: g * (
        0.5 * (1 + tanh_u) + 0.5 * xv * (1 - tanh_u * tanh_u) * GELU_SCALE * (1 + 3 * GELU_CUBIC * xv * xv))))


def page_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0


def training_step():
    step_optimizer.zero_grad()
    loss_fn(wrapped(inputs), targets).backward()
    step_optimizer.step()


costs = {gelu_as_written: [], gelu: []}
with one_blas_thread():
    for _ in range(6):  # in turn, so that a busy moment of the machine falls on both
        for activation, measured in costs.items():
            for block in milestone_model.blocks:
                block.mlp.activation = activation
            before, start = page_faults(), time.perf_counter()
            training_step()
            measured.append((time.perf_counter() - start, page_faults() - before))
print(f"{'GELU in the MLPs':18} {'step ms':>8} {'page faults':>12}")
for activation, measured in costs.items():
    print(f"{activation.__name__:18} {min(t for t, _ in measured) * 1e3:8.2f} {np.median([f for _, f in measured]):12.0f}")

# %% [markdown]
# The temporaries are megabytes each: freed, such blocks go back to the operating system, and the next
# array is mapped again, a page fault for every 4 KB page it touches, every step. Working in place
# removes GELU's share of those faults, and working in blocks keeps each pass in the cache; the faults
# that remain come from the step's other arrays.

# %% [markdown]
# Where the measured split is far from that 1 : 2 (the last line says), the multiply-adds are not where most
# of the time goes at these sizes. Every elementwise operation (the softmax over 32 x 4 x 64 x 64 weights, GELU over
# 2,048 x 256 numbers, the adds of biases, residuals and the mask) makes a new array in each direction,
# and the forward pass makes as many as the backward. `benchmarks/gpt_bench.py` compares the same steps
# with PyTorch, which fuses several of these into one pass.
#
# ## 8. Reflection
#
# Answer in a sentence or three each.

# %% [markdown]
# **Q1.** Our blocks normalize *before* each sub-layer (pre-norm). What would change if they
# normalized after the residual addition, as the original transformer did?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-transformer-prenorm", "locked": false, "points": 2, "solution": true}
# Post-norm puts a LayerNorm on the main path of every block, so the gradient to early layers passes
# through N normalizations and their rescaling; deep post-norm stacks need a careful learning-rate
# warm-up to train at all. Pre-norm keeps the residual stream a plain sum from the embedding to the
# final norm, so every block gets a direct gradient path, and a block with zero output is the identity.

# %% [markdown]
# **Q2.** The validation loss is reported in bits per character. What does 2.0 bits per character
# mean, and how does it compare with the uniform guess and with a good text compressor?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-transformer-bits", "locked": false, "points": 2, "solution": true}
# On average the model gives the right next character a probability of 2^-2 = 1/4 (in the geometric
# mean): it is as unsure as a fair choice among 4 characters, against about 103 for the uniform guess
# (6.7 bits). An arithmetic coder driven by the model would store the text in 2 bits per character;
# general-purpose compressors such as gzip reach about 2.5-3 bits on English text, the best models
# well below 1.

# %% [markdown]
# **Q3.** Sampling with temperature 0.8 and top-k 10 reads better than temperature 1 without top-k.
# Why, and what is lost?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-transformer-sampling", "locked": false, "points": 2, "solution": true}
# A small model spreads some probability over many unlikely characters; drawn hundreds of times, a few
# of them come up and derail the text. Lowering the temperature and cutting the tail keep the draws
# among the plausible characters. What is lost is diversity and calibration: the samples no longer
# follow the model's distribution, repeat common phrases more, and never produce rare but correct text.

# %% [markdown]
# ## Summary
#
# A GPT is embeddings, a stack of pre-norm blocks (attention to gather, an MLP to compute, each added
# to a residual stream) and an output layer. Trained on next-character prediction with module 08's
# Trainer, module 07's AdamW, clipping and a warm-up, it learns the spelling and layout of its text,
# and writes new text one character at a time with a temperature and top-k. Export with
# `tito module complete 11_transformer`, then run `tito milestone gpt`.
