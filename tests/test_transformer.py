"""Module 11: the pre-norm block and the GPT, sampling, the text pipeline, the warm-up schedule, clipping, and training
with module 08's Trainer (the PyTorch comparisons are in test_transformer_torch.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tinytorch.core.autograd import Variable
from tinytorch.core.operations import gradcheck
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import SGD, AdamW
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import DataLoader, Trainer, load_checkpoint, save_checkpoint
from tinytorch.core.transformer import (GPT, Block, CharTokenizer, ClippedSchedule, PerPositionLogits, WarmupCosineLR,
                                        bits_per_character, generate, next_character_windows, next_distribution,
                                        split_text)

pytestmark = pytest.mark.module("transformer")


def small_gpt(seed=0, tied=False, dtype=np.float64, layers=2):
    return GPT(vocab_size=13, context=8, d_model=16, num_heads=4, num_layers=layers, tied=tied,
               rng=np.random.default_rng(seed), dtype=dtype)


def test_a_block_is_gradchecked_in_its_input_and_keeps_a_clean_residual_path():
    rng = np.random.default_rng(0)
    block = Block(8, 2, rng=rng, dtype=np.float64)
    gradcheck(block, Variable(rng.standard_normal((2, 3, 8)), requires_grad=True), name="Block")
    for layer in (block.attention.out, block.mlp.down):
        layer.weight.numpy()[...] = 0
    x = Variable(rng.standard_normal((1, 4, 8)))
    np.testing.assert_array_equal(block(x).numpy(), x.numpy())


def test_gpt_is_causal_checks_its_input_and_starts_as_gpt2_does():
    model = small_gpt(layers=4)
    ids = np.array([[1, 2, 3, 4, 5, 6]])
    later_changed = ids.copy()
    later_changed[0, 4:] = 0
    np.testing.assert_allclose(model(ids).numpy()[:, :4], model(later_changed).numpy()[:, :4], rtol=1e-12)
    for bad, message in [(np.zeros((1, 9), dtype=int), "longer than the 8"), (np.array([[13]]), "out of range"),
                         (np.array([1, 2]), r"shape \(B, T\)")]:
        with pytest.raises(ValueError, match=message):
            model(bad)
    weights = dict(model.named_parameters())
    assert abs(weights["blocks.0.mlp.up.weight"].numpy().std() - 0.02) < 0.004
    assert abs(weights["blocks.0.mlp.down.weight"].numpy().std() - 0.02 / math.sqrt(8)) < 0.002
    assert not weights["blocks.3.attention.query.bias"].numpy().any()
    assert "head.weight" not in dict(small_gpt(tied=True).named_parameters())


def test_next_distribution_and_generate():
    logits = np.array([1.0, 3.0, 2.0, -1.0])
    assert next_distribution(logits, top_k=1).tolist() == [0, 1, 0, 0]
    two = next_distribution(logits, temperature=2.0, top_k=2)
    np.testing.assert_allclose(two, [0, 1 / (1 + math.exp(-0.5)), 1 / (1 + math.exp(0.5)), 0])
    for bad in [dict(temperature=0.0), dict(temperature=-1.0), dict(top_k=0)]:
        with pytest.raises(ValueError):
            next_distribution(logits, **bad)
    model = small_gpt(dtype=np.float32)
    text = generate(model, [1, 2, 3], 20, temperature=0.7, top_k=5, rng=np.random.default_rng(3))
    assert len(text) == 20 and text == generate(model, [1, 2, 3], 20, temperature=0.7, top_k=5, rng=np.random.default_rng(3))
    assert model.training, "generate puts the model back in training mode"
    with pytest.raises(ValueError, match="prompt"):
        generate(model, [], 3)


def test_text_pipeline():
    tokenizer = CharTokenizer("abcab\n")
    assert tokenizer.characters == "\nabc" and tokenizer.decode(tokenizer.encode("cab\n")) == "cab\n"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tokenizer.encode("abz")
    text = "".join(chr(97 + i % 26) for i in range(10_000))
    train, validation = split_text(text)
    assert len(train) + len(validation) == len(text) and validation == text[9 * 2048:10 * 2048]
    inputs, targets = next_character_windows(np.arange(50), 7)
    assert inputs.shape == (7, 7) and (targets - inputs == 1).all()
    assert bits_per_character(math.log(2)) == 1.0


def test_warmup_cosine_schedule_and_clipping_inside_the_trainer():
    model = small_gpt(dtype=np.float32)
    inner = SGD(model.parameters(), lr=0.1)
    schedule = WarmupCosineLR(inner, warmup=2, total=6, min_ratio=0.0)
    optimizer = ClippedSchedule(inner, schedule, max_norm=0.5)
    rates = []
    ids = np.random.default_rng(0).integers(0, 13, (8, 9))
    loader = DataLoader(ids[:, :-1], ids[:, 1:], batch_size=2)
    trainer = Trainer(PerPositionLogits(model), optimizer, CrossEntropyLoss())
    trainer.train_epoch(loader, on_batch=lambda loss: rates.append(inner.lr))
    # on_batch runs after the step, which already moved the schedule on: the rates of steps 1 to 4
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.1 * (1 + math.cos(math.pi / 4)) / 2, 0.05])
    norm = math.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum()) for p in model.parameters()))
    assert optimizer.last_norm > 0.5 and norm == pytest.approx(0.5, rel=1e-4), "the gradients were clipped to max_norm"
    with pytest.raises(ValueError, match="warmup"):
        WarmupCosineLR(inner, warmup=5, total=5)


def test_training_lowers_the_loss_and_a_checkpoint_restores_the_model(tmp_path):
    text = "the cat sat on the mat. " * 40
    tokenizer = CharTokenizer(text)
    inputs, targets = next_character_windows(tokenizer.encode(text), 8)
    model = GPT(len(tokenizer), 8, d_model=16, num_heads=2, num_layers=1, rng=np.random.default_rng(0))
    adamw = AdamW(model.parameters(), lr=1e-2)
    trainer = Trainer(PerPositionLogits(model), ClippedSchedule(adamw, WarmupCosineLR(adamw, 5, 60)), CrossEntropyLoss())
    loader = DataLoader(inputs, targets, batch_size=16, shuffle=True, seed=0)
    before = trainer.evaluate(loader)[0]
    history = trainer.fit(loader, loader, epochs=15)
    # The Trainer counts correct positions per window (8 of them): / 8 is the fraction of characters right.
    assert history.val_loss[-1] < 0.3 * before and history.val_accuracy[-1] / 8 > 0.8
    path = save_checkpoint(tmp_path / "gpt.npz", model, adamw, extra={"characters": tokenizer.characters})
    restored = GPT(len(tokenizer), 8, d_model=16, num_heads=2, num_layers=1, rng=np.random.default_rng(1))
    assert load_checkpoint(path, restored)["characters"] == tokenizer.characters
    np.testing.assert_array_equal(restored(inputs[:2]).numpy(), model(Tensor(inputs[:2])).numpy())
