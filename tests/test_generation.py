"""Module 16: byte-pair encoding (training, tiktoken's merge rule, exact round trips on any text), the KV cache
(the same logits and tokens as module 11 without it, within and past the context, batched), top-p sampling."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.generation import (PATTERN, BPETokenizer, KVCache, cached_attention, decode, encode, encode_chunk,
                                       forward_with_cache, generate_batch, generate_cached, pre_tokenize,
                                       sampling_distribution, top_p_filter, train_bpe)
from tinytorch.core.transformer import GPT, generate, next_distribution

pytestmark = pytest.mark.module("generation")

TRAINING_TEXT = ("def tokenize(text):\n    return [piece for piece in text.split()]\n"
                 "Grüße, naïve café! 漢字 🙂🚀 1234 5678 ===\n") * 6


def ranks_with(*tokens):
    return {**{bytes([i]): i for i in range(256)}, **{token: 256 + i for i, token in enumerate(tokens)}}


def jostled_gpt(context=8, tied=False, dtype=np.float64, layers=2, seed=0):
    """A small GPT whose parameters are moved away from their initial values (zero biases, unit norms hide mistakes)."""
    model = GPT(vocab_size=13, context=context, d_model=16, num_heads=4, num_layers=layers, tied=tied,
                rng=np.random.default_rng(seed), dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    for parameter in model.parameters():
        parameter.numpy()[...] += (0.3 * rng.standard_normal(parameter.shape)).astype(dtype)
    return model


@pytest.fixture(scope="module")
def tokenizer():
    return BPETokenizer.train(TRAINING_TEXT, 60)


def test_training_learns_frequent_pieces_in_order_and_stays_inside_chunks(tokenizer):
    learned = tokenizer.vocabulary[256:]
    assert len(tokenizer) == 316 and len(learned) == 60
    assert b" piece" in learned and all(len(token) >= 2 for token in learned)
    for token in learned:
        text = token.decode("utf-8", errors="replace")
        assert "\ufffd" in text or len(pre_tokenize(text)) == 1, f"{token!r} crosses a chunk"
    assert train_bpe("aaaa", 3) == {**ranks_with(b"aa", b"aaaa")}, "training stops when every chunk is one token"


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80))
def test_round_trip_is_exact_on_any_text(tokenizer, text):
    ids = tokenizer.encode(text)
    assert ids.dtype == np.int64 and (ids < len(tokenizer)).all()
    assert tokenizer.decode(ids) == text


def test_round_trip_of_multibyte_text_split_inside_characters():
    tokenizer = BPETokenizer(ranks_with(b"\x9f\x99", b"\x82\xf0", b" \xc3"))
    text = "🙂🙂 é"
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert decode([0x82, 0x41], tokenizer.vocabulary) == "\ufffdA"


def test_encoding_follows_the_lowest_rank_and_takes_whole_chunks():
    assert encode_chunk(b"abcd", ranks_with(b"bc", b"ab", b"cd")) == [97, 256, 100]
    assert encode_chunk(b"abcd", ranks_with(b"bc", b"ab", b"cd", b"abcd")) == [259]
    assert encode_chunk(b"xyzq", ranks_with(b"xyz", b"yz")) == [256, 113]
    assert encode_chunk(b"aaaaa", ranks_with(b"aa")) == [256, 256, 97]
    assert encode("ab ab", ranks_with(b"ab", b" a")) == [256, 32, 256], "in the chunk ' ab', ab has the lower rank"


def test_tokenizer_rejects_bad_ranks_and_negative_merges():
    with pytest.raises(ValueError, match="0 to 256"):
        BPETokenizer({**ranks_with(), b"ab": 300})
    with pytest.raises(ValueError, match="256 single bytes"):
        BPETokenizer({bytes([i]): (i + 1) % 256 for i in range(256)})
    with pytest.raises(ValueError, match="num_merges"):
        train_bpe("abc", -1)


def test_the_pattern_splits_as_documented():
    assert pre_tokenize("The cat's 9 lives  ok\n") == ["The", " cat", "'", "s", " 9", " lives", "  ", "ok", "\n"]
    assert PATTERN.count("|") == 3


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cached_logits_equal_the_full_forward_pass_position_by_position(tied, dtype):
    model = jostled_gpt(tied=tied, dtype=dtype)
    ids = np.random.default_rng(2).integers(0, 13, (3, 8))
    full = np.asarray(model(ids))
    cache = KVCache.for_model(model, batch=3)
    pieces = [forward_with_cache(model, ids[:, :3], cache)]
    pieces += [forward_with_cache(model, ids[:, t:t + 1], cache) for t in range(3, 8)]
    atol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, rtol=0, atol=atol)
    assert cache.length == 8 and cache.keys[0].dtype == dtype


def test_the_cache_refuses_more_positions_than_the_context():
    model = jostled_gpt(context=4)
    cache = KVCache.for_model(model, 1)
    forward_with_cache(model, [[1, 2, 3, 4]], cache)
    with pytest.raises(ValueError, match="exceed the context of 4"):
        forward_with_cache(model, [[5]], cache)
    with pytest.raises(ValueError, match="out of range"):
        forward_with_cache(model, [[13]], KVCache.for_model(model, 1))
    with pytest.raises(ValueError, match=r"shape \(B, n\)"):
        forward_with_cache(model, [1, 2], KVCache.for_model(model, 1))


@pytest.mark.parametrize("options", [dict(), dict(temperature=0.7, top_k=4), dict(temperature=1.3)])
def test_cached_generation_gives_module_11s_tokens_within_and_past_the_context(options):
    model = jostled_gpt(context=8, dtype=np.float32)
    for prompt, length in [([3], 6), ([1, 2, 3], 30), (list(range(12)), 5)]:
        expected = generate(model, prompt, length, rng=np.random.default_rng(11), **options)
        assert generate_cached(model, prompt, length, rng=np.random.default_rng(11), **options) == expected
    assert model.training


def test_batched_generation_matches_each_prompt_alone_when_greedy():
    model = jostled_gpt(context=6)
    prompts = np.array([[1, 2, 3], [4, 4, 4], [12, 0, 7], [5, 6, 7]])
    batch = generate_batch(model, prompts, 10, top_k=1)
    assert batch.shape == (4, 10)
    for row, prompt in zip(batch, prompts):
        assert row.tolist() == generate(model, prompt, 10, top_k=1)
    with pytest.raises(ValueError, match="shape"):
        generate_batch(model, [1, 2], 3)
    with pytest.raises(ValueError, match="prompt"):
        generate_cached(model, [], 3)


def test_top_p_keeps_the_smallest_set_reaching_p():
    probabilities = np.array([0.05, 0.4, 0.3, 0.2, 0.05])
    for top_p, kept in [(0.3, [1]), (0.4, [1]), (0.41, [1, 2]), (0.7, [1, 2]), (0.71, [1, 2, 3]), (1.0, [0, 1, 2, 3, 4])]:
        result = top_p_filter(probabilities, top_p)
        assert np.flatnonzero(result).tolist() == kept, top_p
        np.testing.assert_allclose(result[kept], probabilities[kept] / probabilities[kept].sum())
    with pytest.raises(ValueError, match="top_p"):
        top_p_filter(probabilities, 0)
    logits = np.log(probabilities)
    np.testing.assert_allclose(sampling_distribution(logits, 2.0, 3), next_distribution(logits, 2.0, 3))
    assert np.count_nonzero(sampling_distribution(logits, 1.0, 4, 0.5)) == 2


def test_top_p_draws_only_the_nucleus():
    model = jostled_gpt(context=8)
    drawn = generate_batch(model, np.zeros((2, 1), dtype=int), 40, top_p=0.3, rng=np.random.default_rng(0))
    assert drawn.shape == (2, 40) and len(np.unique(drawn)) < 13


def test_cached_attention_of_one_query_sees_every_key():
    rng = np.random.default_rng(0)
    q, k, v = rng.standard_normal((1, 2, 1, 4)), rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((1, 2, 5, 4))
    scores = (q @ k.swapaxes(-1, -2))[0, :, 0] / 2.0
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    np.testing.assert_allclose(cached_attention(q, k, v, 4)[0, :, 0], np.einsum("hj,hjd->hd", weights, v[0]))
