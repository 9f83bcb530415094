"""`tito milestone gpt`: the corpus and its one-line errors, the batches, a short run end to end (slow), and
`--sample` from its checkpoint."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from conftest import ROOT, copy_course, run_tito
from tito.errors import TitoError
from tito.milestones.common import tinytorch_modules
from tito.milestones.gpt import (DEFAULT_CORPUS, GPT_CHECKPOINT_NAME, GPT_LESSONS, GPT_PLOT_NAME, MIN_CHARACTERS,
                                GptOptions, TextData, batch_orders, build_gpt, checkpoint_description, gpt_modules,
                                read_corpus, run_gpt, sample_from_checkpoint)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_the_default_corpus_is_pythons_documentation_split_by_a_fixed_rule():
    text, name = read_corpus(None)
    assert name == DEFAULT_CORPUS and len(text) > 400_000 and "def " in text
    transformer = tinytorch_modules(ROOT, GPT_LESSONS)["transformer"]
    data = TextData(transformer, text, 64)
    assert data.train_characters + data.validation_characters == len(text)
    assert 0.09 < data.validation_characters / len(text) < 0.11
    assert data.x_validation.shape[1] == 64 and (data.y_train[:, :-1] == data.x_train[:, 1:]).all()
    again = TextData(transformer, text, 64)
    assert np.array_equal(again.x_validation, data.x_validation), "the split does not depend on anything but the text"


@pytest.mark.parametrize("content, words", [
    (b"", "is empty"),
    (b"  \n\n ", "is empty"),
    (b"text\x00with a NUL" * 3000, "looks binary"),
    (b"caf\xe9 au lait " * 3000, "is not UTF-8 text (byte 3 is 0xe9)"),
    ("short text".encode(), f"has 10 characters, too few: the milestone needs at least {MIN_CHARACTERS}"),
])
def test_bad_text_files_are_one_line_errors(tmp_path, content, words):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    with pytest.raises(TitoError, match=words.replace("(", r"\(").replace(")", r"\)")):
        read_corpus(path)


def test_a_missing_file_or_a_folder_is_named(tmp_path):
    with pytest.raises(TitoError, match="no file at"):
        read_corpus(tmp_path / "missing.txt")
    with pytest.raises(TitoError, match="is a folder"):
        read_corpus(tmp_path)


def test_the_command_line_reports_a_bad_file_and_bad_options_in_one_line(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("hello")
    result = run_tito("milestone", "gpt", "--data", str(path), "--out", str(tmp_path / "out"), cwd=ROOT)
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert "has 5 characters, too few" in " ".join(result.stdout.split())
    for options, words in [(["--steps", "0"], "--steps must be at least 1"), (["--temperature", "0"], "--temperature must be positive")]:
        result = run_tito("milestone", "gpt", *options, cwd=ROOT)
        assert result.returncode == 2 and words in result.stdout, result.stdout + result.stderr
    missing = run_tito("milestone", "gpt", "--sample", "--out", str(tmp_path / "nothing"), cwd=ROOT)
    assert missing.returncode == 1 and "no checkpoint at" in " ".join(missing.stdout.split())


def test_batches_go_through_every_window_each_epoch_in_a_seeded_order():
    stretches = batch_orders(count=10, steps=7, batch_size=4, eval_every=3, seed=0)
    assert [len(s) for s in stretches] == [12, 12, 4]
    order = np.concatenate(stretches)
    assert sorted(order[:10]) == list(range(10)) and sorted(order[10:20]) == list(range(10))
    assert all(np.array_equal(a, b) for a, b in zip(stretches, batch_orders(10, 7, 4, 3, seed=0)))
    assert not np.array_equal(order, np.concatenate(batch_orders(10, 7, 4, 3, seed=1)))


@pytest.mark.slow
def test_a_short_run_learns_samples_plots_checkpoints_and_samples_again(tmp_path):
    options = GptOptions(steps=40, eval_every=20, length=60, out=tmp_path)
    result = run_gpt(options)
    assert result.steps == [20, 40] and len(result.train_bits) == 40
    assert result.model == "FusedGPT", "module 13 is complete in this repository: the milestone trains its FusedGPT"
    assert result.train_bits[0] > 6 and result.final_bits < 5.0, "40 steps take the loss well below the uniform guess"
    assert result.sample.startswith("The ") and len(result.sample) == 64
    assert result.plot == tmp_path / GPT_PLOT_NAME and result.plot.read_bytes().startswith(PNG_SIGNATURE)
    assert result.checkpoint == tmp_path / GPT_CHECKPOINT_NAME
    described = checkpoint_description(result.checkpoint)
    assert described["steps"] == 40 and described["validation_bits"] == result.final_bits and len(described["characters"]) == result.vocabulary
    assert sample_from_checkpoint(options)[0] == result.sample, "the checkpoint holds the trained model: the same seed writes the same text"
    assert run_gpt(options).train_bits == result.train_bits, "the same seed gives the same run"

    shown = run_tito("milestone", "gpt", "--sample", "--out", str(tmp_path), "--prompt", "def ", "--length", "30", cwd=ROOT)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "trained 40 steps" in shown.stdout and "\ndef " in shown.stdout
    bad_prompt = run_tito("milestone", "gpt", "--sample", "--out", str(tmp_path), "--prompt", "\u2603", cwd=ROOT)
    assert bad_prompt.returncode == 1 and "--prompt: characters not in the vocabulary" in bad_prompt.stdout


@pytest.mark.slow
def test_the_command_line_trains_on_a_text_file_and_prints_bits_per_character_and_a_sample(tmp_path):
    text = "".join(f"line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(600))
    path = tmp_path / "fox.txt"
    path.write_text(text)
    result = run_tito("milestone", "gpt", "--data", str(path), "--steps", "30", "--out", str(tmp_path / "run"),
                      "--length", "40", cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Milestone gpt" in out and "fox.txt" in out and "trained 30 steps" in out
    assert "FusedGPT (module 13's fused attention, LayerNorm and loss)" in out
    assert "bits per character" in out and "sample" in out
    assert (tmp_path / "run" / GPT_PLOT_NAME).exists() and (tmp_path / "run" / GPT_CHECKPOINT_NAME).exists()
    model = build_gpt(tinytorch_modules(ROOT, GPT_LESSONS), len(set(text)), GptOptions())
    assert sum(p.size for p in model.parameters()) > 100_000


def test_the_milestone_trains_module_13s_gpt_only_when_module_13_is_complete(tmp_path, monkeypatch):
    """Complete is read from the student's package (a stub left in module 13 means module 11's GPT): no student
    code runs to decide."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # tinytorch_modules puts the course first on it
    course = copy_course(tmp_path / "workspace")
    with open(course / "settings.ini", "a", encoding="utf-8") as settings:
        settings.write("\n[workspace]\nstudent = alice\n")
    complete = gpt_modules(course)
    assert type(build_gpt(complete, 12, GptOptions(context=8))).__name__ == "FusedGPT"
    package = course / "tinytorch" / "core" / "acceleration.py"
    package.write_text(package.read_text() + "\n\ndef unfinished():\n    # YOUR CODE HERE\n    raise NotImplementedError()\n")
    unfinished = gpt_modules(course)
    assert "acceleration" not in unfinished
    assert type(build_gpt(unfinished, 12, GptOptions(context=8))).__name__ == "GPT"
