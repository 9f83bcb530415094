"""Module 16 against two oracles: tiktoken, built from the lesson's own merge ranks, must encode any text to the
same ids; and PyTorch's GPT (tests/torch_gpt.py) on the whole sequence must give the logits the KV cache gives
one position at a time. Each skips with a reason when its package is absent (`pip install -e ".[oracle]"`)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.generation import PATTERN, BPETokenizer, KVCache, encode, forward_with_cache, train_bpe
from tinytorch.core.transformer import GPT
from torch_gpt import build_torch_gpt

pytestmark = pytest.mark.module("generation")

TEXT = ("The tokenizer learns the frequent pieces of a text: ' the', 'ing', indentation.\n    x = 1234\n"
        "Grüße aus Köln, 漢字とかな, emoji 🙂🙂🚀, tabs\tand\r\nline ends!!! ====\n") * 8


def import_tiktoken():
    return pytest.importorskip("tiktoken", reason="tiktoken is the BPE oracle; install it with `pip install tiktoken`")


@pytest.fixture(scope="module")
def ranks():
    return train_bpe(TEXT, 150)


@pytest.fixture(scope="module")
def oracle(ranks):
    tiktoken = import_tiktoken()
    return tiktoken.Encoding("tinytorch-bpe", pat_str=PATTERN, mergeable_ranks=ranks, special_tokens={})


def test_tiktoken_from_our_ranks_encodes_the_training_text_identically(ranks, oracle):
    assert encode(TEXT, ranks) == oracle.encode(TEXT)
    assert oracle.n_vocab == len(ranks) > 256 + 100  # it stops early: every chunk one token


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(sorted(set(TEXT)) + ["ß", "€", "\x00", "a"]), max_size=60) | st.text(max_size=40))
def test_tiktoken_from_our_ranks_encodes_any_text_identically(ranks, oracle, text):
    ours = encode(text, ranks)
    assert ours == oracle.encode(text)
    assert oracle.decode_bytes(ours) == text.encode("utf-8") and BPETokenizer(ranks).decode(ours) == text


def test_tiktoken_agrees_on_hand_made_ranks_where_merge_order_matters():
    tiktoken = import_tiktoken()
    base = {bytes([i]): i for i in range(256)}
    for extra, text in [((b"bc", b"ab", b"cd", b"abcd"), "abcd abcdabcd"), ((b"xyz", b"yz"), "xyzq xyz"),
                        ((b"aa", b"aaaa"), "aaaaaaa aaa")]:
        ranks = {**base, **{token: 256 + i for i, token in enumerate(extra)}}
        oracle = tiktoken.Encoding("hand", pat_str=PATTERN, mergeable_ranks=ranks, special_tokens={})
        assert encode(text, ranks) == oracle.encode(text), extra


@pytest.mark.parametrize("tied", [False, True])
def test_cached_logits_match_pytorch_on_the_whole_sequence(tied):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle here; install it with `pip install torch==2.13.0`")
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
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
