"""Module 16 against tiktoken: built from the lesson's own merge ranks, it must encode any text to the same ids.
Skipped with a reason when tiktoken is absent (`pip install -e ".[oracle]"`); PyTorch's side of module 16 is
test_generation_torch.py."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.generation import PATTERN, BPETokenizer, encode, train_bpe

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
