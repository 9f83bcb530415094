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
# # Generation: byte-pair tokens and a KV cache
#
# Module 11's GPT reads characters and writes one character per forward pass, and every pass reads the
# whole window again. Both are wasteful. A character carries little information, so the model spends its
# context and its steps on spelling; and the keys and values of the positions already written do not
# change when a new one is appended, yet they are recomputed for every new character.
#
# This module fixes both. **Byte-pair encoding** (BPE, the tokenizer of GPT-2 to GPT-4) learns from a text
# which byte sequences are frequent and makes each of them one token, so a token covers a few characters
# and any UTF-8 text, emoji included, still encodes and decodes exactly. A **KV cache** keeps every layer's
# keys and values, so writing one more token costs one position's work instead of the window's.
# Then: sampling many sequences at once, and top-p next to temperature and top-k.
#
# **Objectives.** At the end you can
# - train BPE merges on a text, encode with them exactly as OpenAI's `tiktoken` does, and decode any ids;
# - generate with a KV cache, token for token the same text as without it, many times faster;
# - sample a batch of sequences at once, with temperature, top-k and top-p;
# - measure what the cache buys at contexts of 64, 256 and 1,024 positions, and what it costs in memory.
#
# | You write here | It becomes | Used by |
# |---|---|---|
# | this notebook, `generation.ipynb` | `tinytorch.core.generation` | `tito milestone gpt --tokenizer bpe`, `--sample` |

# %%
#| default_exp core.generation

# %%
#| export
from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

from tinytorch.core.attention import generator, token_ids
from tinytorch.core.autograd import no_grad
from tinytorch.core.tensor import Tensor
from tinytorch.core.transformer import GPT, next_distribution

# %%
# For the examples and tests below (the exported code does not need them).
import time

from tinytorch.core.tensor import best_time, one_blas_thread
from tinytorch.core.transformer import generate

try:
    import tiktoken  # OpenAI's tokenizer: the oracle of section 3, when installed
except ImportError:
    tiktoken = None

# %% [markdown]
# ## 1. Bytes, chunks and pairs
#
# BPE works on **bytes**, not characters: a text is its UTF-8 encoding, so the first 256 tokens (the
# byte values) can spell anything, `é` as two bytes, an emoji as four. Nothing is ever unknown.
#
# Before learning anything, the text is cut into **chunks**, and tokens never cross a chunk's border:
# a word with the space before it (` the`), a run of digits, a run of other symbols, a run of spaces.
# Without the cut, frequent pairs across words (`e t` in `the time`) would become tokens and the
# vocabulary would fill with fragments of phrases. The cut is one regular expression (given):
#
# ```
#  ?[A-Za-z]+  |  ?[0-9]+  |  ?[^A-Za-z0-9 ]+  |  +
# "The cat's 9 lives" -> "The", " cat", "'", "s", " 9", " lives"
# ```
#
# Training starts from every distinct chunk as a tuple of one-byte `bytes`, with the number of times it
# occurs. It then **counts the pairs** of neighbouring tokens, each weighted by its chunk's count, and
# merges the most frequent pair into one token everywhere. Every neighbouring position counts: `aaa`
# holds the pair `(a, a)` twice. **Merging** a pair in a chunk goes left to right, and a merged token is
# not merged again in the same pass: `(a, a, a)` merged on `(a, a)` is `(aa, a)`.

# %%
#| export
PATTERN = r" ?[A-Za-z]+| ?[0-9]+| ?[^A-Za-z0-9 ]+| +"


def pre_tokenize(text: str) -> list[str]:
    """`text` cut into chunks that tokens never cross (joined, they give back the text)."""
    return re.findall(PATTERN, text)


def byte_chunks(text: str) -> Counter:
    """Every distinct chunk of `text` as a tuple of one-byte `bytes`, with how often it occurs."""
    return Counter(tuple(bytes([byte]) for byte in chunk.encode("utf-8")) for chunk in pre_tokenize(text))

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "generation-pairs", "locked": false, "solution": true}
#| export
def pair_counts(words: dict) -> dict:
    """How often each pair of neighbouring tokens occurs: for every word (a tuple of `bytes`) and its count,
    each neighbouring pair adds the word's count. Pairs appear in the dict in the order first met.

    >>> pair_counts({(b"a", b"a", b"a"): 2, (b"a", b"b"): 1})
    {(b'a', b'a'): 4, (b'a', b'b'): 1}
    """
    counts = {}
    for word, count in words.items():
        ### BEGIN SOLUTION
        for pair in zip(word, word[1:]):
            counts[pair] = counts.get(pair, 0) + count
        ### END SOLUTION
    return counts


def merge_pair(word: tuple, pair: tuple) -> tuple:
    """`word` with every occurrence of `pair` replaced by the two tokens joined, left to right, a merged
    token never merged again in the same pass.

    >>> merge_pair((b"a", b"a", b"a", b"b"), (b"a", b"a"))
    (b'aa', b'a', b'b')
    """
    merged, index = [], 0
    ### BEGIN SOLUTION
    while index < len(word):
        if index + 1 < len(word) and (word[index], word[index + 1]) == pair:
            merged.append(word[index] + word[index + 1])
            index += 2
        else:
            merged.append(word[index])
            index += 1
    ### END SOLUTION
    return tuple(merged)

# %% [markdown]
# ### Test: pairs and merges

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-generation-pairs", "locked": true, "points": 2, "solution": false}
def test_unit_pairs():
    assert "".join(pre_tokenize("The cat's 9 lives  é🙂\n")) == "The cat's 9 lives  é🙂\n", "chunks join to the text"
    words = byte_chunks("abab abab xy")
    assert words[(b"a", b"b", b"a", b"b")] == 1 and words[(b" ", b"a", b"b", b"a", b"b")] == 1, f"chunks: {words}"
    counts = pair_counts({(b"a", b"a", b"a", b"a"): 1})
    if counts.get((b"a", b"a")) == 2:
        raise AssertionError("(a, a, a, a) holds the pair (a, a) at three neighbouring positions: count every position, "
                             "not every other one")
    if counts.get((b"a", b"a")) == 1:
        raise AssertionError("(a, a, a, a) holds the pair (a, a) three times, counted 1: a pair met again adds to its "
                             "count (counts.get(pair, 0) + count), do not overwrite it")
    counts = pair_counts({(b"x", b"y", b"z"): 3, (b"y", b"z"): 2})
    if counts.get((b"x", b"y")) == 1:
        raise AssertionError("each pair adds the count of its word (the word occurs 3 times), not 1")
    assert counts == {(b"x", b"y"): 3, (b"y", b"z"): 5}, f"expected (x, y): 3 and (y, z): 3 + 2 = 5, got {counts}"
    assert list(pair_counts({(b"q", b"r"): 1, (b"a", b"b"): 1})) == [(b"q", b"r"), (b"a", b"b")], \
        "pairs appear in the order first met"
    try:
        merged = merge_pair((b"a", b"a", b"a"), (b"a", b"a"))
    except IndexError:
        raise AssertionError("merge_pair((a, a, a), (a, a)) read past the end of the word: check index + 1 < len(word) "
                             "before looking at the next token") from None
    if len(b"".join(merged)) > 3:
        raise AssertionError(f"(a, a, a) merged on (a, a) became {merged}: the middle a was used twice; after a "
                             "merge, continue AFTER both merged tokens")
    if len(b"".join(merged)) < 3:
        raise AssertionError(f"(a, a, a) merged on (a, a) became {merged}: bytes were lost; every token that does "
                             "not start the pair, the last one too, is kept as it is")
    assert merged == (b"aa", b"a"), f"(a, a, a) merged on (a, a) is (aa, a), left to right, got {merged}"
    word = (b"x", b"a", b"b", b"y", b"a", b"b")
    merged = merge_pair(word, (b"a", b"b"))
    assert b"".join(merged) == b"".join(word), f"merging must keep every byte, got {merged} from {word}"
    assert merged == (b"x", b"ab", b"y", b"ab"), f"every occurrence merges: expected (x, ab, y, ab), got {merged}"
    assert merge_pair((b"a",), (b"a", b"b")) == (b"a",) and merge_pair((), (b"a", b"b")) == (), "short words stay"

test_unit_pairs()

# %% [markdown]
# ## 2. Training: merge the most frequent pair, again and again
#
# The vocabulary is a dict from a token's bytes to its id, its **rank**: the 256 single bytes have ranks
# 0 to 255, and merge number $m$ (counting from 0) adds the joined bytes of its pair with rank $256 + m$.
# Training repeats `num_merges` times: count the pairs of all chunks, take the most frequent one (ties:
# the pair met first, which `max` over the dict of `pair_counts` does), give its joined bytes the next
# rank, and merge it in every chunk. It stops early when no chunk has two tokens left.
#
# (Rarely, two different pairs join to the same bytes, `(a, bc)` and `(ab, c)`; such a merge keeps the
# rank the bytes already have. `dict.setdefault` does exactly that.)

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "generation-train", "locked": false, "solution": true}
#| export
def train_bpe(text: str, num_merges: int) -> dict[bytes, int]:
    """The ranks of BPE trained on `text`: {bytes([i]): i for the 256 bytes}, then the joined bytes of the most
    frequent pair at rank 256, 257, ... for up to `num_merges` merges.

    >>> ranks = train_bpe("aaab aab", 2)
    >>> [token for token, rank in ranks.items() if rank >= 256]
    [b'aa', b'aab']
    """
    if num_merges < 0:
        raise ValueError(f"num_merges must be 0 or more, got {num_merges}")
    words = byte_chunks(text)
    ranks = {bytes([byte]): byte for byte in range(256)}
    ### BEGIN SOLUTION
    while len(ranks) < 256 + num_merges:
        counts = pair_counts(words)
        if not counts:
            break
        best = max(counts, key=counts.get)
        ranks.setdefault(best[0] + best[1], len(ranks))
        words = {merge_pair(word, best): count for word, count in words.items()}
    ### END SOLUTION
    return ranks

# %% [markdown]
# ### Test: training

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-generation-train", "locked": true, "points": 3, "solution": false}
def learned(ranks):
    return [token for token, rank in sorted(ranks.items(), key=lambda item: item[1]) if rank >= 256]


def test_unit_train():
    ranks = train_bpe("low lower lowest low", 3)
    assert len(ranks) == 259, f"256 bytes and 3 merges give 259 tokens, got {len(ranks)}"
    assert all(ranks[bytes([i])] == i for i in range(256)), "the 256 single bytes keep ranks 0 to 255"
    tokens = learned(ranks)
    if tokens[0] != b"lo":
        raise AssertionError(f"the first merge should be the most frequent pair, (l, o): 4 times; got {tokens[0]!r}"
                             + (": (l, o) and (o, w) both occur 4 times, and ties go to the pair met first"
                                if tokens[0] == b"ow" else ""))
    assert tokens == [b"lo", b"low", b" low"], f"expected the merges lo, low, ' low' in that order, got {tokens}"
    assert sorted(ranks.values()) == list(range(259)), \
        f"ranks are 0, 1, ..., 258 without gaps: merge m gets rank 256 + m, got {sorted(ranks.values())[256:]}"
    assert learned(train_bpe("ab ab cd cd", 1)) == [b"ab"], "ties go to the pair met first"
    try:
        stopped = len(train_bpe("ab", 50))
    except ValueError as error:
        raise AssertionError(f"train_bpe('ab', 50) failed ({error}): after one merge there is no pair left to count, "
                             "so stop when no chunk has two tokens left") from None
    assert stopped == 257, f"training stops when no chunk has two tokens left: 'ab' gives 257 tokens, got {stopped}"
    assert len(train_bpe("hello", 0)) == 256, "0 merges: only the bytes"
    for token in learned(train_bpe("the cat sat on the mat with the hat", 10)):
        assert re.fullmatch(PATTERN, token.decode()), f"a token never crosses a chunk: {token!r}"

test_unit_train()

# %% [markdown]
# ## 3. Encoding: lowest rank first, exactly as tiktoken does
#
# To encode a chunk, start from its bytes and merge, one at a time, the neighbouring pair whose joined
# bytes have the **lowest rank** in the vocabulary (the leftmost such pair if it occurs several times),
# until no neighbouring pair joins to a token. A chunk that is a token as a whole is that one token
# (checked first: it is both the common case and a shortcut).
#
# This is the rule of OpenAI's `tiktoken`, so a `tiktoken.Encoding` built from *your* ranks must give the
# same ids: the test below checks it when `tiktoken` is installed. Note two things about the rule:
#
# - it looks at ranks, not at the order in which you happen to scan the text: merging the first mergeable
#   pair you meet, or applying the training merges in order to the whole text, gives other tokens;
# - it asks whether the *joined bytes* are a token, whatever pair made that token in training.
# - it looks again at all neighbouring pairs after every merge: a merge can make a pair of lower rank
#   than those left (tiktoken accepts ranks from anywhere, not only from a training run like ours).
#
# ```
# ranks: bc 256, ab 257, cd 258        "abcd": a b c d -> a bc d   (bc has the lowest rank)
#                                       "abd" : a b d   -> ab d
# ```

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "generation-encode", "locked": false, "solution": true}
#| export
def encode_chunk(chunk: bytes, ranks: dict[bytes, int]) -> list[int]:
    """The ids of one chunk: its single token if it is one, else its bytes merged pair by pair, lowest rank
    (then leftmost) first, while some neighbouring pair joins to a token of `ranks`.

    >>> encode_chunk(b"abcd", {**{bytes([i]): i for i in range(256)}, b"bc": 256, b"ab": 257, b"cd": 258})
    [97, 256, 100]
    """
    ### BEGIN SOLUTION
    if chunk in ranks:
        return [ranks[chunk]]
    parts = [bytes([byte]) for byte in chunk]
    while len(parts) > 1:
        candidates = [(ranks[a + b], index) for index, (a, b) in enumerate(zip(parts, parts[1:])) if a + b in ranks]
        if not candidates:
            break
        _, index = min(candidates)
        parts[index:index + 2] = [parts[index] + parts[index + 1]]
    ### END SOLUTION
    return [ranks[part] for part in parts]


def encode(text: str, ranks: dict[bytes, int]) -> list[int]:
    """The ids of `text`: each chunk of `pre_tokenize` encoded on its own."""
    return [token for chunk in pre_tokenize(text) for token in encode_chunk(chunk.encode("utf-8"), ranks)]

# %% [markdown]
# ### Test: encoding

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-generation-encode", "locked": true, "points": 4, "solution": false}
def byte_ranks(*tokens):
    """The 256 bytes, then `tokens` at ranks 256, 257, ..."""
    return {**{bytes([i]): i for i in range(256)}, **{token: 256 + i for i, token in enumerate(tokens)}}


def test_unit_encode():
    ranks = byte_ranks(b"bc", b"ab", b"cd")
    got = encode_chunk(b"abcd", ranks)
    if got == [257, 258]:
        raise AssertionError("'abcd' became ab cd: merge the pair of LOWEST rank first (bc, rank 256), not the "
                             "first mergeable pair met from the left")
    spelled = b"".join({rank: token for token, rank in ranks.items()}[i] for i in got)
    if spelled != b"abcd":
        raise AssertionError(f"'abcd' was encoded as {got}, which spells {spelled!r}: a merge replaces BOTH its tokens by "
                             "the joined one (parts[index:index + 2])")
    assert got == [97, 256, 100], f"'abcd' with bc 256, ab 257, cd 258 should be a bc d = [97, 256, 100], got {got}"
    got = encode_chunk(b"abcd", byte_ranks(b"cd", b"ab", b"bc"))
    assert got == [257, 256], f"with cd 256, ab 257: 'abcd' is ab cd = [257, 256], got {got}"
    got = encode_chunk(b"aaa", byte_ranks(b"aa"))
    assert got == [256, 97], f"'aaa' with aa: the LEFTMOST pair of the lowest rank merges first, aa a = [256, 97], got {got}"
    stuck = byte_ranks(b"bc", b"ab", b"cd", b"abcd")
    got = encode_chunk(b"abcd", stuck)
    if got == [97, 256, 100]:
        raise AssertionError("'abcd' is a token itself (rank 259) but became a bc d: a chunk that is a token is "
                             "that one token, checked first (tiktoken's rule)")
    assert got == [259], f"a chunk that is a token is that one token, got {got}"
    assert encode_chunk(b"xyz", ranks) == [120, 121, 122], "no pair joins to a token: the bytes stay"
    got = encode_chunk(b"xyzq", byte_ranks(b"xyz", b"yz"))
    if got == [120, 257, 113]:
        raise AssertionError("'xyzq' with xyz 256, yz 257 stopped at x yz q, though x + yz joins to xyz: after EVERY "
                             "merge look again at all neighbouring pairs for the lowest rank (applying each rank once, "
                             "in order, is not tiktoken's rule)")
    assert got == [256, 113], f"'xyzq' with xyz 256, yz 257: x yz q, then xyz q = [256, 113], got {got}"
    ranks = train_bpe("the theme of the thesis " * 5, 12)
    ids = encode("the thesis", ranks)
    assert len(ids) <= 4, f"'the thesis' should take few tokens with merges trained on it, got {len(ids)}: {ids}"
    assert encode("é", ranks) == [0xC3, 0xA9], "an unknown character is its UTF-8 bytes"
    if tiktoken is not None:
        text = "the cat sat on the mat; the hat sat on the cat. thé 🙂 2024!!\n" * 3
        ranks = train_bpe(text, 40)
        oracle = tiktoken.Encoding("lesson", pat_str=PATTERN, mergeable_ranks=ranks, special_tokens={})
        for sample in (text, "that theme hat 🙂🙂 cats", "aaaa  bbb"):
            assert encode(sample, ranks) == oracle.encode(sample), \
                f"tiktoken built from your ranks encodes {sample!r} as {oracle.encode(sample)}, you as {encode(sample, ranks)}"

test_unit_encode()

# %% [markdown]
# `BPETokenizer` (given) puts the pieces together with the interface of module 11's `CharTokenizer`
# (`encode` to an id array, `decode`, `len`), and remembers the ids of every chunk it has encoded: text
# repeats its words, so most chunks are encoded once. Its `decode` is the function of the next section.

# %%
#| export
class BPETokenizer:
    """Text <-> ids by byte-pair encoding with `ranks` ({token bytes: id}, ids 0..n-1, the 256 bytes first)."""

    def __init__(self, ranks: dict[bytes, int]):
        ranks = {bytes(token): int(rank) for token, rank in ranks.items()}
        if sorted(ranks.values()) != list(range(len(ranks))):
            raise ValueError(f"BPE ranks must be the ids 0 to {len(ranks) - 1}, each once")
        if any(ranks.get(bytes([byte])) != byte for byte in range(256)):
            raise ValueError("BPE ranks must give the 256 single bytes the ids 0 to 255")
        self.ranks = ranks
        self.vocabulary = sorted(ranks, key=ranks.get)
        self.chunk_ids = {}

    @classmethod
    def train(cls, text: str, num_merges: int) -> BPETokenizer:
        return cls(train_bpe(text, num_merges))

    def __len__(self) -> int:
        return len(self.vocabulary)

    def encode(self, text: str) -> np.ndarray:
        ids = []
        for chunk in pre_tokenize(text):
            if chunk not in self.chunk_ids:
                self.chunk_ids[chunk] = encode_chunk(chunk.encode("utf-8"), self.ranks)
            ids.extend(self.chunk_ids[chunk])
        return np.array(ids, dtype=np.int64)

    def decode(self, ids) -> str:
        return decode(ids, self.vocabulary)

# %% [markdown]
# ## 4. Decoding: join the bytes, then read UTF-8
#
# Decoding looks up each id's bytes and joins them. Only the **joined** bytes are UTF-8 text: a token may
# hold half of a character (the first two of an emoji's four bytes), so decoding token by token breaks
# exactly the characters BPE split. And a model may write ids whose bytes are not valid UTF-8 at all (a
# character's second half without its first); decoding must not fail then: each invalid byte becomes the
# replacement character `�` (`errors="replace"`).

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "generation-decode", "locked": false, "solution": true}
#| export
def decode(ids, vocabulary: list[bytes]) -> str:
    """The text of `ids`, with `vocabulary[i]` the bytes of id i: the bytes joined, then read as UTF-8, each
    invalid byte as U+FFFD.

    >>> decode([0xF0, 0x9F, 0x99, 0x82], [bytes([i]) for i in range(256)])
    '🙂'
    """
    ### BEGIN SOLUTION
    return b"".join(vocabulary[int(i)] for i in ids).decode("utf-8", errors="replace")
    ### END SOLUTION

# %% [markdown]
# ### Test: decoding

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-generation-decode", "locked": true, "points": 3, "solution": false}
def test_unit_decode():
    straddling = BPETokenizer(byte_ranks(b"\x9f\x99", b"\x82\xf0"))  # tokens across the bytes of 🙂🙂
    ids = straddling.encode("🙂🙂")
    assert len(ids) == 5, f"the test expects 🙂🙂 as 5 tokens, 3 of them parts of characters, got {ids}"
    try:
        got = straddling.decode(ids)
    except UnicodeDecodeError:
        got = None
    if got != "🙂🙂":
        raise AssertionError(f"🙂🙂 split across tokens came out as {got!r}: join the bytes of ALL tokens first, then "
                             "decode the joined bytes as UTF-8 (not token by token)")
    text = "naïve café, 日本語, emoji 🙂🚀 and ASCII.\n"
    tokenizer = BPETokenizer.train(text * 4, 30)
    got = tokenizer.decode(tokenizer.encode(text))
    assert got == text, f"decode(encode(text)) must give back the text exactly, got {got!r}"
    bytes_only = [bytes([i]) for i in range(256)]
    try:
        broken = decode([0x9F, 0x99, 0x82, 0x41], bytes_only)
    except UnicodeDecodeError:
        raise AssertionError("ids whose bytes are not valid UTF-8 must not fail to decode: use errors='replace'") from None
    assert broken == "\ufffd\ufffd\ufffd" + "A", \
        f"each invalid byte becomes U+FFFD (errors='replace', not 'ignore'), got {broken!r}"
    assert decode(np.array([72, 105]), bytes_only) == "Hi", "ids may come as an array"
    assert decode([], bytes_only) == "", "no ids, no text"

test_unit_decode()

# %% [markdown]
# The round trip holds for any text, since every byte is a token: try a few lines of any language.

# %%
tokenizer = BPETokenizer.train("the tokenizer learns the frequent pieces of the text it is trained on. " * 20, 40)
for sample in ["the frequent pieces", "Grüße aus Köln 🙂", "漢字とかな"]:
    ids = tokenizer.encode(sample)
    print(f"{sample!r}: {len(sample)} characters, {len(ids)} tokens {[tokenizer.vocabulary[i] for i in ids][:8]}, "
          f"round trip {tokenizer.decode(ids) == sample}")

# %% [markdown]
# ## 5. The KV cache: keep what does not change
#
# Module 11's `generate` runs the whole window through the model for every new token. But in causal
# attention a position's key and value depend only on that position and the ones before it: appending a
# token changes none of the earlier keys and values of any layer. So keep them. A **KV cache** holds, for
# each layer, the keys and values of every position written so far, in arrays of shape
# $(B, H, T_{max}, D)$ made once ($T_{max}$ is the model's context); `length` counts the positions filled.
#
# Writing $n$ new positions stores their keys and values at positions `length` to `length + n - 1` and
# hands attention the keys and values of positions 0 to `length + n - 1`: the old ones and the new. Every
# layer stores at the same positions, so `length` moves on only when all layers have their new positions
# (`advance`, given), not inside `append`.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "generation-cache", "locked": false, "solution": true}
#| export
class KVCache:
    """The keys and values of `num_layers` layers for up to `capacity` positions: arrays (B, H, capacity, D).
    `length` positions are filled, the same in every layer."""

    def __init__(self, num_layers: int, batch: int, num_heads: int, capacity: int, head_dim: int, dtype=np.float32):
        shape = (batch, num_heads, capacity, head_dim)
        self.keys = [np.zeros(shape, dtype=dtype) for _ in range(num_layers)]
        self.values = [np.zeros(shape, dtype=dtype) for _ in range(num_layers)]
        self.capacity, self.length = int(capacity), 0

    @classmethod
    def for_model(cls, model: GPT, batch: int) -> KVCache:
        """An empty cache for `batch` sequences of `model`, as long as its context."""
        head = model.blocks[0].attention if model.blocks else None
        heads, head_dim = (head.num_heads, head.head_dim) if head else (1, 1)
        return cls(model.num_layers, batch, heads, model.context, head_dim, model.token.weight.dtype)

    def append(self, layer: int, keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Store `keys`, `values` (B, H, n, D) of n new positions in `layer` at positions length..length+n-1;
        return the layer's keys and values of positions 0..length+n-1 (views, not copies)."""
        new = keys.shape[2]
        if self.length + new > self.capacity:
            raise ValueError(f"the cache holds {self.capacity} positions; {self.length} are filled, {new} more do not fit")
        ### BEGIN SOLUTION
        end = self.length + new
        self.keys[layer][:, :, self.length:end] = keys
        self.values[layer][:, :, self.length:end] = values
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]
        ### END SOLUTION

    def advance(self, count: int) -> None:
        """`count` more positions are filled in every layer."""
        self.length += count

    @property
    def nbytes(self) -> int:
        return sum(array.nbytes for array in self.keys + self.values)

# %% [markdown]
# ### Test: the cache

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-generation-cache", "locked": true, "points": 2, "solution": false}
def test_unit_cache():
    cache = KVCache(num_layers=2, batch=1, num_heads=2, capacity=5, head_dim=3, dtype=np.float64)
    first_k, first_v = np.full((1, 2, 2, 3), 1.0), np.full((1, 2, 2, 3), -1.0)
    keys, values = cache.append(0, first_k, first_v)
    assert keys.shape == (1, 2, 2, 3), \
        f"append returns the keys of every position so far, the 2 new ones included: (1, 2, 2, 3), got {keys.shape}"
    if np.array_equal(keys, first_v):
        raise AssertionError("append returned the values where the keys belong")
    assert cache.length == 0, "append does not move `length`: advance does, once every layer has its positions"
    cache.append(1, first_k * 2, first_v * 2)
    cache.advance(2)
    keys, values = cache.append(0, np.full((1, 2, 1, 3), 5.0), np.full((1, 2, 1, 3), -5.0))
    if keys.shape[2] == 2:
        raise AssertionError("append returned the old positions only: the new position 2 must be in what attention gets")
    assert keys.shape == (1, 2, 3, 3), f"positions 0-2 expected, got shape {keys.shape}"
    stored = cache.keys[0][0, 0, :, 0].tolist()
    assert stored == [1, 1, 5, 0, 0], \
        f"the new key belongs at position 2 (length), right after the two before; layer 0 holds {stored}"
    assert np.array_equal(values[0, 0, :, 0], [-1, -1, -5]), f"values of positions 0-2: -1, -1, -5, got {values[0, 0, :, 0]}"
    assert cache.keys[1][0, 0, :, 0].tolist() == [2, 2, 0, 0, 0], "each layer has its own keys"
    keys[0, 0, 0, 0] += 100.0  # written through the returned view: the cache must see it
    seen = cache.keys[0][0, 0, 0, 0]
    keys[0, 0, 0, 0] -= 100.0
    assert seen == 101.0, "append returns views of the cache, not copies: writing into them must change the cache"
    cache.advance(1)
    try:
        cache.append(0, np.zeros((1, 2, 3, 3)), np.zeros((1, 2, 3, 3)))
    except ValueError:
        pass
    else:
        raise AssertionError("3 + 3 positions do not fit a capacity of 5: append should raise a ValueError")

test_unit_cache()

# %% [markdown]
# ## 6. Attention for new positions over cached keys
#
# With the cache, the queries are those of the $n$ new positions only, $(B, H, n, D)$, and the keys and
# values those of all $s + n$ positions, $s$ = `start` the positions cached before. The causal rule is
# the one of module 10 with the positions counted from the start: new query $t$ sits at position
# $s + t$ and sees keys $j \le s + t$ (itself included):
#
# ```
#  s = 3, n = 2      keys j ->  0  1  2  3  4
#  query t = 0 (position 3)    [ .  .  .  .  -inf ]
#        t = 1 (position 4)    [ .  .  .  .   .   ]
# ```
#
# For one new token ($n = 1$, the usual step) nothing is masked. It is plain NumPy: generation needs no
# gradients.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "generation-attention", "locked": false, "solution": true}
#| export
def cached_attention(q: np.ndarray, keys: np.ndarray, values: np.ndarray, start: int) -> np.ndarray:
    """softmax(q k^T / sqrt(D) + mask) v for q (B, H, n, D) of positions start..start+n-1 and keys, values
    (B, H, start+n, D): query t sees keys j <= start + t. (B, H, n, D)."""
    ### BEGIN SOLUTION
    scores = (q * (1.0 / math.sqrt(q.shape[-1]))) @ keys.swapaxes(-1, -2)
    query_positions = start + np.arange(q.shape[-2])[:, None]
    scores = np.where(np.arange(keys.shape[-2])[None, :] > query_positions, -np.inf, scores)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return (weights @ values) / weights.sum(axis=-1, keepdims=True)  # normalizing after the product: fewer divisions
    ### END SOLUTION

# %% [markdown]
# ### Test: attention over the cache

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-generation-attention", "locked": true, "points": 3, "solution": false}
def masked_attention(q, k, v):
    """Module 10's causal attention, in NumPy, for all positions at once."""
    scores = q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[-1])
    scores = scores + np.triu(np.full(scores.shape[-2:], -np.inf), k=1)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True) @ v


def test_unit_cached_attention():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 3, 6, 4)) for _ in range(3))
    full = masked_attention(q, k, v)
    first = cached_attention(q[:, :, :1], k[:, :, :1], v[:, :, :1], 0)
    if np.isnan(first).any():
        raise AssertionError("position 0 got NaN: a query must see its OWN key (mask j > start + t, not j >= start + t)")
    ones = cached_attention(q[:, :, 2:4], k[:, :, :4], np.ones((2, 3, 4, 4)), 2)  # 4 keys of width 4: any axis fits
    assert np.allclose(ones, 1.0), ("with every value 1 the output should be 1: a query's softmax weights sum over the "
                                    f"keys (the last axis) to 1, got outputs from {ones.min():.3f} to {ones.max():.3f}")
    got = cached_attention(q[:, :, 3:5], k[:, :, :5], v[:, :, :5], 3)
    assert got.shape == (2, 3, 2, 4), f"2 new queries over 5 keys: (2, 3, 2, 4), got {got.shape}"
    if np.allclose(got, masked_attention(q * 2.0, k, v)[:, :, 3:5]):
        raise AssertionError("the scores are not scaled: divide q k^T by sqrt(D) (here sqrt(4)) before the softmax")
    if np.allclose(got, masked_attention(q * 0.5, k, v)[:, :, 3:5]):
        raise AssertionError("the scores were divided by 4: divide q k^T by sqrt(D), not by D (here by 2)")
    later = v.copy()
    later[:, :, 4] += 1.0
    if not np.allclose(cached_attention(q[:, :, 3:5], k[:, :, :5], later[:, :, :5], 3)[:, :, 0], got[:, :, 0]):
        raise AssertionError("query t = 0 (position 3) changed when the value of key 4, a later position, changed: it "
                             "sees keys j <= start + t only (mask j > start + t)")
    assert np.allclose(got, full[:, :, 3:5]), ("new queries at positions 3-4 over the cached keys 0-4 should equal "
                                               "causal attention at those positions: query t sits at position "
                                               "start + t and sees keys j <= start + t (count from `start`)")
    step = cached_attention(q[:, :, 5:], k, v, 5)
    assert np.allclose(step, full[:, :, 5:]), "one new token at position 5 sees all 6 keys"
    big = cached_attention(q[:, :, 5:] * 300, k * 300, v, 5)
    assert np.isfinite(big).all(), "large scores must not overflow: subtract the row's max before exp"

test_unit_cached_attention()

# %% [markdown]
# ## 7. A forward pass with the cache
#
# A layer's attention with the cache (given) is module 10's `MultiHeadAttention` with its own projections
# and head splitting, the cache in the middle: project the new positions, store their keys and values,
# attend over everything stored.

# %%
#| export
def attention_with_cache(attention, x, cache: KVCache, layer: int, start: int):
    """Module 10's multi-head attention of the new positions x (B, n, C) over the cached ones of `layer`."""
    batch, new, width = x.shape
    rows = x.reshape(batch * new, width)
    q, k, v = (np.asarray(attention.split_heads(projection(rows), batch, new))
               for projection in (attention.query, attention.key, attention.value))
    keys, values = cache.append(layer, k, v)
    attended = Tensor(cached_attention(q, keys, values, start))
    return attention.out(attention.merge_heads(attended)).reshape(batch, new, width)

# %% [markdown]
# The whole model then follows module 11's `GPT.forward` for the new ids only, with one difference you
# must get right: the **positions**. The new ids sit at positions `start` to `start + n - 1`, with
# `start = cache.length`, so they get those rows of the position table, not rows 0 to $n - 1$ (module
# 10's `PositionalEmbedding` always starts at 0, so use its `weight` directly). Each block is
# $x + \mathrm{attention}(\mathrm{norm}_1(x))$, then $+\,\mathrm{mlp}(\mathrm{norm}_2(\cdot))$, with the
# attention above; after the last block, the cache has `n` more positions in every layer (`advance`).
# The output layer is `head`, or the token embedding transposed when the model is `tied`.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "generation-step", "locked": false, "solution": true}
#| export
def forward_with_cache(model: GPT, ids, cache: KVCache) -> np.ndarray:
    """The logits (B, n, V) of n new ids (B, n) that follow the `cache.length` positions in `cache`, storing their
    keys and values; equal to the last n positions of `model` on the whole sequence."""
    ids = token_ids(ids, model.vocab_size)
    if ids.ndim != 2:
        raise ValueError(f"forward_with_cache expects ids of shape (B, n), got {ids.shape}")
    batch, new = ids.shape
    start = cache.length
    if start + new > model.context:
        raise ValueError(f"{start} cached and {new} new positions exceed the context of {model.context}")
    with no_grad():
        ### BEGIN SOLUTION
        x = model.token(ids) + model.position.weight[start:start + new]
        for layer, block in enumerate(model.blocks):
            x = x + attention_with_cache(block.attention, block.norm1(x), cache, layer, start)
            x = x + block.mlp(block.norm2(x))
        cache.advance(new)
        rows = model.norm(x).reshape(batch * new, model.d_model)
        logits = rows @ model.token.weight.transpose(0, 1) if model.tied else model.head(rows)
        ### END SOLUTION
    return np.asarray(logits).reshape(batch, new, model.vocab_size)

# %% [markdown]
# ### Test: the cached forward pass

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-generation-step", "locked": true, "points": 4, "solution": false}
def test_unit_forward_with_cache():
    model = GPT(vocab_size=11, context=8, d_model=8, num_heads=2, num_layers=2, rng=np.random.default_rng(0),
                dtype=np.float64)
    rng = np.random.default_rng(1)
    for parameter in model.parameters():  # away from zero biases and unit norms, which hide mistakes
        parameter.numpy()[...] += 0.3 * rng.standard_normal(parameter.shape)
    ids = rng.integers(0, 11, (2, 7))
    full = np.asarray(model(ids))
    cache = KVCache.for_model(model, batch=2)
    prompt = forward_with_cache(model, ids[:, :4], cache)
    assert prompt.shape == (2, 4, 11), f"4 new ids of 2 sequences give logits (2, 4, 11), got {prompt.shape}"
    assert cache.length == 4, f"after 4 positions the cache holds 4 (advance once, after the last block), got {cache.length}"
    assert not np.abs(cache.keys[0][:, :, 4:]).any(), ("the prompt's keys belong at positions 0-3 (start = cache.length "
                                                       "while the blocks run): advance the cache only after the last block")
    assert np.allclose(prompt, full[:, :4], atol=1e-10), ("the prompt's logits should equal the model's on those ids: "
                                                          "each block is x + attention(norm1(x)), then + mlp(norm2(.)), "
                                                          "and model.norm after the last block, before the output layer")
    step = forward_with_cache(model, ids[:, 4:5], cache)
    if not np.allclose(step[:, 0], full[:, 4], atol=1e-8):
        raise AssertionError("the logits of position 4 with the cache differ from the model's: the new id sits at "
                             "position start = cache.length, so it adds row 4 of the position table, not row 0")
    rest = forward_with_cache(model, ids[:, 5:], cache)
    assert np.allclose(rest, full[:, 5:], atol=1e-8), "positions 5-6 with the cache differ from the model's"
    assert cache.length == 7, f"7 positions stored, got {cache.length}"
    tied = GPT(vocab_size=11, context=8, d_model=8, num_heads=2, num_layers=1, tied=True, rng=np.random.default_rng(2),
               dtype=np.float64)
    assert np.allclose(forward_with_cache(tied, ids, KVCache.for_model(tied, 2)), np.asarray(tied(ids)), atol=1e-10), \
        "with tied=True the output layer is the token embedding, transposed"
    try:
        forward_with_cache(model, ids[:, :2], cache)
    except ValueError:
        pass
    else:
        raise AssertionError("7 cached + 2 new positions exceed the context of 8: expected a ValueError")

test_unit_forward_with_cache()

# %% [markdown]
# ## 8. Top-p: keep the likeliest tokens that make up probability p
#
# Top-k keeps a fixed number of candidates, too many when the model is sure and too few when it is not.
# **Top-p** (nucleus sampling) keeps the smallest set of the most likely tokens whose probabilities add
# up to **at least** $p$: sort them from most to least likely, and keep tokens until the running sum
# reaches $p$, *the token that crosses $p$ included*. Then renormalize. With $p = 1$ it keeps everything,
# with a small $p$ at least the likeliest token. (Equal probabilities keep their order: lower id first.)
#
# ```
# probabilities 0.5 0.25 0.15 0.1,  p = 0.7:  0.5 < 0.7, 0.75 >= 0.7 -> keep 2: 0.667 0.333 0 0
# ```

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "generation-top-p", "locked": false, "solution": true}
#| export
def top_p_filter(probabilities: np.ndarray, top_p: float) -> np.ndarray:
    """`probabilities` (one row, summing to 1) with only the most likely tokens kept, most likely first, up to
    and including the one where their sum reaches `top_p`; renormalized to sum to 1.

    >>> top_p_filter(np.array([0.1, 0.5, 0.15, 0.25]), 0.7).round(3).tolist()
    [0.0, 0.667, 0.0, 0.333]
    """
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    probabilities = np.asarray(probabilities, dtype=np.float64)
    ### BEGIN SOLUTION
    order = np.argsort(-probabilities, kind="stable")
    running = np.cumsum(probabilities[order])
    keep = order[:np.searchsorted(running, top_p) + 1]
    kept = np.zeros_like(probabilities)
    kept[keep] = probabilities[keep]
    return kept / kept.sum()
    ### END SOLUTION


def sampling_distribution(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                          top_p: float | None = None) -> np.ndarray:
    """Module 11's `next_distribution` (temperature, top-k), then `top_p_filter` when `top_p` is given."""
    probabilities = next_distribution(logits, temperature, top_k)
    return probabilities if top_p is None else top_p_filter(probabilities, top_p)

# %% [markdown]
# ### Test: top-p

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-generation-top-p", "locked": true, "points": 2, "solution": false}
def test_unit_top_p():
    probabilities = np.array([0.1, 0.5, 0.15, 0.25])
    kept = top_p_filter(probabilities, 0.7)
    if np.count_nonzero(kept) == 1:
        raise AssertionError("top_p=0.7 kept one token too few: 0.5 < 0.7, so the token that brings the sum to "
                             "0.75 (>= 0.7) is kept too")
    if kept[0] > 0:
        raise AssertionError("top_p kept the least likely tokens: sort from MOST to least likely")
    assert np.isclose(kept.sum(), 1), f"the kept probabilities are renormalized to sum to 1, got {kept.sum()}"
    if np.count_nonzero(kept) == 3:
        raise AssertionError("top_p=0.7 kept 3 tokens: the running sum of the SORTED probabilities (0.5, 0.75, ...) "
                             "reaches 0.7 at the second token")
    assert np.allclose(kept, [0, 2 / 3, 0, 1 / 3]), f"top_p=0.7 keeps 0.5 and 0.25, renormalized, got {kept.round(3)}"
    assert np.allclose(top_p_filter(probabilities, 1.0), probabilities), "top_p=1 keeps everything"
    assert top_p_filter(probabilities, 0.01).tolist() == [0, 1, 0, 0], "a small top_p keeps the likeliest token"
    assert np.allclose(top_p_filter(probabilities, 0.76), [0, 0.5 / 0.9, 0.15 / 0.9, 0.25 / 0.9]), "0.75 < 0.76: keep 3"
    assert np.allclose(top_p_filter(probabilities, 0.75), [0, 2 / 3, 0, 1 / 3]), \
        "top_p=0.75: the running sum reaches 0.75 exactly at the second token (0.5 + 0.25 >= 0.75), so keep 2, not 3"
    assert top_p_filter(np.array([0.4, 0.4, 0.2]), 0.3).tolist() == [1, 0, 0], "ties keep the lower id first"
    for bad in (0.0, 1.5):
        try:
            top_p_filter(probabilities, bad)
        except ValueError:
            continue
        raise AssertionError(f"top_p={bad} is outside (0, 1]: expected a ValueError")
    logits = np.log(probabilities)
    assert np.allclose(sampling_distribution(logits, top_p=0.7), kept), "sampling_distribution applies top_p last"

test_unit_top_p()

# %% [markdown]
# ## 9. Generating with the cache, many sequences at once
#
# Generation with the cache: run the prompt (its last `context` ids) through `forward_with_cache` once,
# then for each new token draw it from the logits of the last position and feed **only that token**.
#
# **A full cache.** The positions are learned vectors for positions 0 to `context - 1`. Once the sequence
# is longer than the context, module 11's `generate` reads the last `context` ids, and every one of them
# has moved one position down: all cached keys are stale. So when the cache is full, make a new one and
# run the last `context` ids through it, exactly the window module 11 would read. (Models with relative
# positions, such as rotary embeddings, can slide the cache instead; ours cannot.)
#
# **A batch.** `B` prompts of the same length go through the model together, one matrix product for all
# of them; each row draws its token from its own distribution, rows in order, with
# `rng.choice(V, p=probabilities)` as in module 11. With one prompt and the same seed, the tokens are
# then exactly those of module 11's `generate`.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "generation-generate", "locked": false, "solution": true}
#| export
def generate_batch(model: GPT, prompts, length: int, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
    """`length` new ids (B, length) after each of the prompts (B, T), with a KV cache: for each token, every row
    draws from `sampling_distribution` of its last logits; a full cache is rebuilt from the last `context` ids.
    In eval mode."""
    ids = token_ids(prompts, model.vocab_size)
    if ids.ndim != 2 or ids.shape[1] == 0:
        raise ValueError(f"generate_batch needs prompts of shape (B, T) with T >= 1, got {ids.shape}")
    rng = generator(rng)
    batch, cache = len(ids), None
    was_training = model.training
    model.eval()
    try:
        for _ in range(length):
            ### BEGIN SOLUTION
            if cache is None or cache.length == model.context:
                cache = KVCache.for_model(model, batch)
                logits = forward_with_cache(model, ids[:, -model.context:], cache)
            else:
                logits = forward_with_cache(model, ids[:, -1:], cache)
            drawn = [rng.choice(model.vocab_size, p=sampling_distribution(row, temperature, top_k, top_p))
                     for row in logits[:, -1]]
            ids = np.concatenate([ids, np.array(drawn, dtype=np.int64)[:, None]], axis=1)
            ### END SOLUTION
    finally:
        model.train(was_training)
    return ids[:, ids.shape[1] - length:]


def generate_cached(model: GPT, prompt, length: int, temperature: float = 1.0, top_k: int | None = None,
                    top_p: float | None = None, rng: np.random.Generator | None = None) -> list[int]:
    """Module 11's `generate` with a KV cache (and top_p): `length` ids after the ids of `prompt`."""
    if len(prompt) == 0:
        raise ValueError("generate needs a prompt of at least one id")
    return generate_batch(model, [list(prompt)], length, temperature, top_k, top_p, rng)[0].tolist()

# %% [markdown]
# ### Test: generation with the cache

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-generation-generate", "locked": true, "points": 4, "solution": false}
def test_unit_generate():
    model = GPT(vocab_size=9, context=6, d_model=8, num_heads=2, num_layers=2, rng=np.random.default_rng(0),
                dtype=np.float64)
    rng = np.random.default_rng(1)
    for parameter in model.parameters():
        parameter.numpy()[...] += 0.5 * rng.standard_normal(parameter.shape)
    plain = generate(model, [1, 2, 3], 3, rng=np.random.default_rng(7))  # 5 positions at most: within the context
    try:
        cached = generate_cached(model, [1, 2, 3], 3, rng=np.random.default_rng(7))
    except ValueError as error:
        raise AssertionError(f"generation with the cache failed ({error}): after the prompt, feed only the newest "
                             "token") from None
    greedy = generate(model, [5, 6, 7, 8], 2, top_k=1)  # greedy: position 0's logits pick another token here
    greedy_cached = generate_cached(model, [5, 6, 7, 8], 2, top_k=1)
    assert cached == plain and greedy_cached == greedy, (
        f"within the context, the same seed must give module 11's tokens {plain} (greedily {greedy}), got {cached} "
        f"({greedy_cached}): draw each token with the `rng` given (rng.choice), from the logits of the LAST position")
    plain = generate(model, [4], 14, temperature=0.9, top_k=5, rng=np.random.default_rng(3))
    try:
        cached = generate_cached(model, [4], 14, temperature=0.9, top_k=5, rng=np.random.default_rng(3))
    except ValueError as error:
        raise AssertionError(f"generating past the context of 6 failed ({error}): when the cache is full, rebuild it "
                             "from the last `context` ids") from None
    assert cached == plain, (f"past the context of 6, the tokens should be module 11's {plain}, got {cached}: when the "
                             "cache is full, rebuild it from the last `context` ids")
    long_prompt = list(range(9)) * 2
    assert generate_cached(model, long_prompt, 3, rng=np.random.default_rng(0)) == \
        generate(model, long_prompt, 3, rng=np.random.default_rng(0)), "a prompt longer than the context: its last 6 ids"
    prompts = np.array([[1, 2], [3, 4], [5, 6]])
    batch = generate_batch(model, prompts, 8, top_k=1)
    assert batch.shape == (3, 8), f"3 prompts, 8 tokens each: (3, 8), got {batch.shape}"
    for row, prompt in zip(batch, prompts):
        alone = generate(model, prompt, 8, top_k=1)
        assert row.tolist() == alone, f"row for prompt {prompt.tolist()} should be {alone} (greedy), got {row.tolist()}"
    nucleus = generate_batch(model, prompts, 4, top_p=1e-6, rng=np.random.default_rng(5)).tolist()
    assert nucleus == batch[:, :4].tolist(), \
        f"top_p is honoured: top_p=1e-6 keeps only the likeliest token, so it generates greedily {batch[:, :4].tolist()}, got {nucleus}"
    sampled = generate_batch(model, prompts, 4, top_p=0.9, rng=np.random.default_rng(5))
    assert sampled.shape == (3, 4) and ((0 <= sampled) & (sampled < 9)).all(), f"ids in [0, 9) expected, got {sampled}"
    assert model.training, "generation puts the model back in training mode"
    assert generate_batch(model, prompts, 0).shape == (3, 0), "0 tokens: an empty (3, 0) array"

test_unit_generate()

# %% [markdown]
# ## 10. Systems analysis
#
# **What the cache buys.** One new token costs, without the cache, a forward pass over the whole window of
# $T$ positions: every projection and MLP on $T$ rows, and attention over $T \times T$ scores; with the
# cache, the same on one row, and attention of one query over $T$ keys. Below, the time of one new token
# for a GPT of width 64, 4 heads and 2 layers (module 11's milestone model) whose window is full, at
# contexts of 64, 256 and 1,024: module 11's forward pass on the window, and `forward_with_cache` after
# $T - 1$ cached positions (the best of several runs, NumPy's BLAS on one thread).

# %%
def token_seconds(model: GPT, cached: bool, repeat: int = 3) -> float:
    """Seconds to compute the logits of one new token at the last position of a full window of `model`."""
    ids = np.random.default_rng(0).integers(0, model.vocab_size, (1, model.context))
    if not cached:
        with no_grad():
            return best_time(lambda: model(ids), repeat)
    cache = KVCache.for_model(model, 1)
    forward_with_cache(model, ids[:, :-1], cache)

    def one_step():
        cache.length = model.context - 1  # the same last position every time
        forward_with_cache(model, ids[:, -1:], cache)

    return best_time(one_step, repeat)


contexts = (64, 256, 1024)
timings = {}
with one_blas_thread():
    for context in contexts:
        model = GPT(100, context, d_model=64, num_heads=4, num_layers=2, rng=np.random.default_rng(0))
        model.eval()
        timings[context] = (token_seconds(model, cached=False), token_seconds(model, cached=True))
print(f"{'context':>8} {'no cache ms':>12} {'cache ms':>9} {'speed-up':>9}")
for context, (plain, cached) in timings.items():
    print(f"{context:>8} {plain * 1e3:>12.3f} {cached * 1e3:>9.3f} {plain / cached:>8.1f}x")
growth_plain = timings[1024][0] / timings[64][0]
growth_cached = timings[1024][1] / timings[64][1]
print(f"from context 64 to 1,024 (16x): the time per token grows {growth_plain:.1f}x without the cache, "
      f"{growth_cached:.1f}x with it")

# %%
try:
    from matplotlib import pyplot as plt
except ImportError:  # matplotlib comes with the course install; without it, the table above is the result
    plt = None
if plt is not None:
    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.plot(contexts, [timings[c][0] * 1e3 for c in contexts], marker="o", label="no cache (module 11)")
    axes.plot(contexts, [timings[c][1] * 1e3 for c in contexts], marker="o", label="KV cache")
    axes.set(xscale="log", yscale="log", xlabel="context (positions in the window)", ylabel="ms per new token")
    axes.set_xticks(contexts, [str(c) for c in contexts])
    axes.grid(alpha=0.3)
    axes.legend()
    plt.show()

# %% [markdown]
# What to expect, from the work each side does: without the cache, the work per token is proportional to
# the window and more (attention's $T \times T$ scores), so its time should grow steeply with the context.
# With the cache, the projections and the MLP run on one row whatever the context, and only attention's
# single query reads $T$ cached keys; at these sizes the fixed cost of a step (a few dozen small NumPy
# calls) should dominate, so its time should stay nearly flat and the speed-up be largest at the longest
# context. The line below checks that expectation against this machine's numbers.

# %%
verdict = "stays nearly flat" if growth_cached < growth_plain / 4 else "grows as well"
print(f"Here: with the cache the time per token {verdict} ({growth_cached:.1f}x against {growth_plain:.1f}x over a "
      f"16x longer context), and at 1,024 positions a token costs {timings[1024][0] / timings[1024][1]:.0f}x less.")

# %% [markdown]
# **What the cache costs.** Memory: two arrays of $B \cdot H \cdot T \cdot D$ numbers per layer, that is
# $2 \cdot L \cdot T \cdot C$ numbers per sequence, whatever the number of heads. For the model above at
# context 1,024 in float32:

# %%
cache = KVCache.for_model(model, batch=1)
print(f"{model.num_layers} layers x 2 x {model.context} positions x {model.d_model} features x 4 bytes = "
      f"{cache.nbytes / 2**20:.2f} MB per sequence "
      f"(the model's parameters: {sum(p.size for p in model.parameters()) * 4 / 2**20:.2f} MB)")

# %% [markdown]
# **What BPE buys.** The same model sees more text in the same window when a token covers several
# characters. Below, BPE trained with 256 merges on the training part of the first 40,000 characters of
# Python's reference documentation (module 11's text and split): tokens per character on the held-out
# part, as the merges grow. Module 11's characters are 1 token per character. (`benchmarks/generation.md`
# measures 512 merges on the milestone's whole text.)

# %%
from pydoc_data.topics import topics

from tinytorch.core.transformer import split_text

corpus = "\n".join(topics[key] for key in sorted(topics))[:40_000]
train_text, validation_text = split_text(corpus)
start = time.perf_counter()
ranks = train_bpe(train_text, 256)
print(f"256 merges trained on {len(train_text):,} characters in {time.perf_counter() - start:.1f} s")
print(f"{'merges':>7} {'tokens/char':>12} {'chars/token':>12}")
for merges in (0, 32, 64, 128, 256):
    prefix = BPETokenizer({token: rank for token, rank in ranks.items() if rank < 256 + merges})
    per_character = len(prefix.encode(validation_text)) / len(validation_text)
    print(f"{merges:>7} {per_character:>12.3f} {1 / per_character:>12.2f}")
print("the longest tokens:", sorted(ranks, key=len)[-6:])

# %% [markdown]
# With no merges a character is one or more bytes, so slightly more than one token per character. The
# first merges (common letter pairs, ` the`, indentation) gain the most; each later merge serves a rarer
# piece, so the gain per merge shrinks. Fewer tokens per character means more characters in the same
# context, and fewer steps to write the same text; the cost is a larger embedding and output layer
# ($V \times C$ each).
#
# ## 11. Reflection
#
# Answer in a sentence or three each.

# %% [markdown]
# **Q1.** Why does BPE start from the 256 bytes rather than from the characters of the training text, and
# why are chunks cut before training?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-generation-bytes", "locked": false, "points": 2, "solution": true}
# Every text is a byte sequence, so 256 base tokens spell anything, including characters the training text
# never had (a new emoji, another script): nothing is ever unknown, and the round trip is exact. Characters
# would need a vocabulary of all of Unicode or an "unknown" token. Chunks keep merges inside words, numbers
# and symbol runs, so the vocabulary holds reusable pieces instead of fragments of frequent phrases.

# %% [markdown]
# **Q2.** Estimate the KV cache of a GPT-2-sized model (12 layers, width 768, context 1,024) in float32 for a
# batch of 32 sequences. What limits the batch size of a generation server?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-generation-cache", "locked": false, "points": 2, "solution": true}
# 2 x 12 x 1,024 x 768 x 4 bytes is about 75 MB per sequence, 2.4 GB for 32: more than the model's ~0.5 GB
# of weights. Memory for the cache, not arithmetic, bounds how many sequences a server can generate at once,
# which is why servers use lower precision for the cache, share heads (grouped-query attention) and page it.

# %% [markdown]
# **Q3.** When would you prefer top-p to top-k, and what do both give up?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-generation-top-p", "locked": false, "points": 2, "solution": true}
# Top-p adapts to the model's confidence: when one token is nearly certain it keeps just that one, when
# many are plausible it keeps many, while top-k keeps the same number in both cases (too many garbage
# candidates when sure, too few when open). Both give up samples from the true distribution: rare but
# correct continuations are never drawn, and the text is less diverse.

# %% [markdown]
# ## Summary
#
# Byte-pair encoding turns any UTF-8 text into tokens of a few characters: train by merging the most
# frequent neighbouring pair again and again, encode by merging the lowest-ranked pair first (tiktoken's
# rule, checked against tiktoken itself), decode by joining bytes before reading UTF-8. A KV cache keeps
# each layer's keys and values so that a new token costs one position's work: the same tokens as module
# 11's `generate`, at a nearly constant cost per token, with a full cache rebuilt because learned
# positions cannot slide. Batched generation and top-p complete the sampler. Export with
# `tito module complete 16_generation`, then run `tito milestone gpt --tokenizer bpe`.
