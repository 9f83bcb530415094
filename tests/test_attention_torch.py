"""Module 10, tinytorch.core.attention, against PyTorch: embedding (the gradients of repeated ids add up),
layer_norm with and without its affine parameters, scaled dot-product attention with and without the causal mask,
and MultiHeadAttention give PyTorch's values and the gradients of every input and parameter
(torch_oracle.compare)."""
from __future__ import annotations

import numpy as np
import pytest

from tinytorch.core.attention import MultiHeadAttention, embedding, layer_norm, scaled_dot_product_attention

from nn_testing import as_function_of_parameters
from torch_oracle import compare, torch

pytestmark = pytest.mark.module("attention")
F = torch.nn.functional

# float32 sums of many terms (the key bias's gradient is zero in exact arithmetic) carry rounding of about 1e-5.
TOLERANCE = {np.float32: dict(rtol=2e-4, atol=1e-4), np.float64: dict(rtol=1e-9, atol=1e-10)}
DTYPES = [np.float32, np.float64]


def normal(rng, dtype, *shapes) -> list:
    return [rng.standard_normal(shape).astype(dtype) for shape in shapes]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(4))
def test_embedding_matches_pytorch_and_adds_the_gradients_of_repeated_ids(seed, dtype):
    rng = np.random.default_rng(seed)
    vocabulary = int(rng.integers(2, 9))
    ids = rng.integers(0, vocabulary, (3, 7))  # 21 ids from at most 8 rows: repeats are certain
    compare(lambda table: embedding(table, ids), lambda table: F.embedding(torch.tensor(ids), table),
            normal(rng, dtype, (vocabulary, 5)), f"embedding of {vocabulary} rows", tolerance=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5,), (3, 8), (2, 4, 16), (2, 3, 2, 6)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_pytorch(shape, dtype, affine):
    rng = np.random.default_rng(len(shape))
    width = shape[-1]
    x, weight, bias = normal(rng, dtype, shape, (width,), (width,))
    x = x * 4 + 2  # far from normalized already
    if affine:
        compare(layer_norm, lambda x, w, b: F.layer_norm(x, (width,), w, b, 1e-5), [x, weight, bias],
                f"layer_norm {shape}", tolerance=TOLERANCE[dtype])
    else:
        compare(layer_norm, lambda x: F.layer_norm(x, (width,)), [x], f"layer_norm {shape} alone", tolerance=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("shape", [(4, 8), (2, 5, 4), (2, 3, 6, 16)])
def test_attention_matches_pytorch(shape, causal, dtype):
    rng = np.random.default_rng(len(shape) + causal)
    compare(lambda q, k, v: scaled_dot_product_attention(q, k, v, causal=causal),
            lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
            normal(rng, dtype, shape, shape, shape[:-1] + (3,)), f"attention {shape} causal={causal}",
            tolerance=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("heads", [1, 2, 4])
def test_multihead_attention_matches_pytorch(heads, dtype):
    rng = np.random.default_rng(heads)
    layer = MultiHeadAttention(8, heads, rng=rng, dtype=dtype)
    names = [name for name, _ in layer.named_parameters()]
    # Nonzero biases, so a bias sent to the wrong place shows.
    parameters = [rng.standard_normal(parameter.shape).astype(dtype) for parameter in layer.parameters()]
    (x,) = normal(rng, dtype, (3, 5, 8))

    def ours(x, *parameters):
        return as_function_of_parameters(layer, lambda model: model(x))(*parameters)

    def theirs(x, *parameters):
        weights = dict(zip(names, parameters))

        def project(name):
            return (x @ weights[f"{name}.weight"] + weights[f"{name}.bias"]).view(3, 5, heads, 8 // heads).transpose(1, 2)

        mixed = F.scaled_dot_product_attention(project("query"), project("key"), project("value"), is_causal=True)
        return mixed.transpose(1, 2).reshape(3, 5, 8) @ weights["out.weight"] + weights["out.bias"]

    compare(ours, theirs, [x, *parameters], f"{heads} heads", tolerance=TOLERANCE[dtype], names=["x", *names])
