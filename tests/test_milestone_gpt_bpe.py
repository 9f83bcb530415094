"""`tito milestone gpt --tokenizer bpe`: module 16's byte-pair encoding learned from the training text only, bits per
character from bits per token, and `--sample` through module 16's KV cache (slow: the real command)."""
from __future__ import annotations

import math

import pytest

from conftest import ROOT, run_tito
from tito.errors import TitoError
from tito.milestones.common import tinytorch_modules
from tito.milestones.gpt import (GENERATION_LESSON, GPT_LESSONS, MIN_CHARACTERS, GptOptions, TextData,
                                checkpoint_description, checked_prompt, sampler)

FOX = "".join(f"line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(600))


@pytest.fixture(scope="module")
def modules():
    return tinytorch_modules(ROOT, GPT_LESSONS + (GENERATION_LESSON,))


def test_bpe_text_data_learns_from_the_training_text_only_and_counts_tokens_per_character(modules):
    text = FOX[:MIN_CHARACTERS] + " zyxwvu" * 3000  # the last blocks, with the rare word, hold the validation text
    data = TextData(modules["transformer"], text, 16, modules["generation"], merges=40)
    assert len(data.tokenizer) == 256 + 40 and data.x_train.shape[1] == 16
    assert 0 < data.train_ratio < 0.6, "40 merges on a repetitive text: well under one token per character"
    train, _ = modules["transformer"].split_text(text)
    assert data.train_ratio == pytest.approx(len(data.tokenizer.encode(train)) / len(train))
    characters = TextData(modules["transformer"], text, 16)
    assert characters.train_ratio == characters.validation_ratio == 1.0, "a character is one token"
    assert checked_prompt(data.tokenizer, None) == "The " and checked_prompt(data.tokenizer, "\u2603") == "\u2603", \
        "BPE encodes any prompt"


def test_samples_use_the_kv_cache_when_module_16_is_there(modules):
    assert sampler(modules["transformer"], modules["generation"]) is modules["generation"].generate_cached
    assert sampler(modules["transformer"], None) is modules["transformer"].generate


@pytest.mark.parametrize("options, words", [(dict(tokenizer="word"), "--tokenizer must be one of char, bpe"),
                                            (dict(merges=-1), "--merges must be at least 0")])
def test_bad_tokenizer_options_are_one_line_errors(options, words):
    with pytest.raises(TitoError, match=words) as caught:
        GptOptions(**options).check()
    assert caught.value.exit_code == 2
    result = run_tito("milestone", "gpt", "--tokenizer", "word", cwd=ROOT)
    assert result.returncode == 2 and "invalid choice: 'word'" in result.stdout + result.stderr


@pytest.mark.slow
def test_the_command_line_trains_on_bpe_tokens_reports_bits_per_character_and_samples_with_the_cache(tmp_path):
    path = tmp_path / "fox.txt"
    path.write_text(FOX)
    out = tmp_path / "run"
    result = run_tito("milestone", "gpt", "--data", str(path), "--tokenizer", "bpe", "--merges", "64", "--steps", "12",
                      "--length", "12", "--out", str(out), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    said = " ".join(result.stdout.split())
    assert "BPE tokens (64 merges)" in said and "trained 12 steps" in said
    assert "tokenizer: BPE with 64 merges learned from the training text" in said and "tokens per character" in said
    bits = float(said.split("validation: ")[1].split(" bits per character")[0])
    ratio = float(said.split("merges learned from the training text, ")[1].split(" tokens per character")[0])
    assert 0 < ratio < 0.6 and 0 < bits < math.log2(256 + 64) * ratio + 0.5, (bits, ratio)
    described = checkpoint_description(out / "gpt.npz")
    assert described["tokenizer"] == "bpe" and len(described["vocabulary"].split(" ")) == 256 + 64
    sample_at_training = said.split("sample (temperature 0.8, top-k 10): ")[1].split(" plot: ")[0]
    again = run_tito("milestone", "gpt", "--sample", "--out", str(out), "--length", "12", cwd=ROOT)
    assert again.returncode == 0, again.stdout + again.stderr
    assert sample_at_training in " ".join(again.stdout.split()), "the checkpoint's model writes the same text again"
    other = run_tito("milestone", "gpt", "--sample", "--out", str(out), "--prompt", "\u2603 fox", "--length", "5", cwd=ROOT)
    assert other.returncode == 0 and "\u2603 fox" in other.stdout, "a BPE model continues any prompt"
