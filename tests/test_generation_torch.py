"""Module 16, tinytorch.core.generation, against PyTorch: the logits that the KV cache gives one position at a time
are those of PyTorch's GPT (tests/torch_gpt.py) on the whole sequence, tied or not."""
from __future__ import annotations

import numpy as np
import pytest

from tinytorch.core.generation import KVCache, forward_with_cache
from tinytorch.core.transformer import GPT

from torch_gpt import build_torch_gpt
from torch_oracle import assert_close, torch

pytestmark = pytest.mark.module("generation")


@pytest.mark.parametrize("tied", [False, True])
def test_cached_logits_match_pytorch_on_the_whole_sequence(tied):
    model = GPT(vocab_size=17, context=10, d_model=16, num_heads=4, num_layers=2, tied=tied,
                rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    for parameter in model.parameters():
        parameter.numpy()[...] += (0.3 * rng.standard_normal(parameter.shape)).astype(np.float32)
    ids = rng.integers(0, 17, (2, 10))
    with torch.no_grad():
        expected = build_torch_gpt(torch, model)(torch.tensor(ids)).numpy()
    cache = KVCache.for_model(model, 2)
    got = np.concatenate([forward_with_cache(model, ids[:, :4], cache)] +
                         [forward_with_cache(model, ids[:, t:t + 1], cache) for t in range(4, 10)], axis=1)
    assert_close(got, expected, "logits from the cache, one position at a time", dict(rtol=0, atol=1e-5))
