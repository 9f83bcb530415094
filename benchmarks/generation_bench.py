"""Module 16: what the KV cache and byte-pair encoding buy, on the model and text of `tito milestone gpt`.

Run from the repository root (see benchmarks/generation.md):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/generation_bench.py [--train 500] [--markdown]

1. Generation speed: module 11's GPT of the milestone's shape (2 layers, 4 heads, width 64, 103 characters) built
   with contexts of 64, 256 and 1,024 positions. Per token: the time of the logits of one new token at the last
   position of a full window, module 11's forward pass over the window against module 16's `forward_with_cache`
   after the window's other positions are cached. End to end: 32 tokens written after a prompt that fills the
   rest of the window, module 11's `generate` against module 16's `generate_cached` (prefill included), with a
   check that both wrote the same tokens. CPU time of this process, NumPy's BLAS on one thread, best of
   `--repeats`, the two sides interleaved.
2. BPE: module 16's `train_bpe` with 512 merges on the milestone's training text (pydoc_data.topics split by
   module 11's rule), tokens per character of the held-out text.
3. With `--train STEPS`: the milestone trained for STEPS steps on characters and on BPE tokens (same seed, same
   model shape), validation bits per character of both on the same held-out text.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's tinytorch and tito, whatever is installed

from tinytorch.core.autograd import no_grad  # noqa: E402
from tinytorch.core.generation import BPETokenizer, KVCache, forward_with_cache, generate_cached  # noqa: E402
from tinytorch.core.transformer import GPT, generate, split_text  # noqa: E402
from tito.milestones.common import _one_blas_thread  # noqa: E402
from tito.milestones.gpt import SPLIT_BLOCK, SPLIT_EVERY, GptOptions, read_corpus, run_gpt  # noqa: E402

# Targets: at least 5x faster per token at context 1,024 with the cache, at most 0.5 tokens per character.
TARGET_SPEEDUP_AT_1024 = 5.0
TARGET_TOKENS_PER_CHARACTER = 0.5
CONTEXTS = (64, 256, 1024)
VOCABULARY = 103  # the milestone's characters
WRITTEN = 32


def cpu_seconds(work) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def milestone_model(context: int) -> GPT:
    model = GPT(VOCABULARY, context, d_model=64, num_heads=4, num_layers=2, rng=np.random.default_rng(0))
    model.eval()
    return model


def per_token(model: GPT) -> dict:
    """The work of one new token at the last position of a full window, without and with the cache."""
    window = np.random.default_rng(1).integers(0, VOCABULARY, (1, model.context))
    cache = KVCache.for_model(model, 1)
    forward_with_cache(model, window[:, :-1], cache)

    def cached_step():
        cache.length = model.context - 1
        forward_with_cache(model, window[:, -1:], cache)

    def full_window():
        with no_grad():
            model(window)

    return {"no cache": full_window, "cache": cached_step}


def end_to_end(model: GPT, check: list) -> dict:
    """WRITTEN tokens after a prompt filling the rest of the window, the same seed for both."""
    prompt = np.random.default_rng(2).integers(0, VOCABULARY, model.context - WRITTEN).tolist()

    def plain():
        check.append(("no cache", generate(model, prompt, WRITTEN, rng=np.random.default_rng(3))))

    def cached():
        check.append(("cache", generate_cached(model, prompt, WRITTEN, rng=np.random.default_rng(3))))

    return {"no cache": plain, "cache": cached}


def best_interleaved(works: dict, repeats: int) -> dict:
    best = {name: float("inf") for name in works}
    for _ in range(repeats):
        for name, work in works.items():
            best[name] = min(best[name], cpu_seconds(work))
    return best


def measure_speed(repeats: int) -> list[dict]:
    rows = []
    with _one_blas_thread():
        for context in CONTEXTS:
            model = milestone_model(context)
            step = best_interleaved(per_token(model), repeats)
            written = []
            whole = best_interleaved(end_to_end(model, written), max(1, repeats // 3))
            same = all(tokens == written[0][1] for _, tokens in written)
            rows.append({"context": context, "step": step, "whole": whole, "same": same})
    return rows


def measure_bpe(merges: int) -> dict:
    text, _ = read_corpus(None)
    train, validation = split_text(text, SPLIT_BLOCK, SPLIT_EVERY)
    start = time.process_time()
    tokenizer = BPETokenizer.train(train, merges)
    seconds = time.process_time() - start
    return {"merges": merges, "seconds": seconds, "train_characters": len(train),
            "validation_characters": len(validation),
            "validation_ratio": len(tokenizer.encode(validation)) / len(validation),
            "train_ratio": len(tokenizer.encode(train)) / len(train),
            "longest": sorted(tokenizer.vocabulary, key=len)[-5:]}


def measure_training(steps: int, merges: int) -> dict:
    bits = {}
    with tempfile.TemporaryDirectory() as folder:
        for tokenizer in ("char", "bpe"):
            options = GptOptions(steps=steps, tokenizer=tokenizer, merges=merges, out=Path(folder) / tokenizer,
                                 eval_every=max(steps, 1), length=0)
            result = run_gpt(options)
            bits[tokenizer] = (result.final_bits, result.vocabulary, result.parameters, result.train_seconds)
    return bits


def report(rows: list[dict], bpe: dict, training: dict | None, markdown: bool) -> bool:
    ok = True
    print("Generation, the milestone's model (2 layers, 4 heads, width 64, 103 characters); CPU ms, best of repeats:")
    if markdown:
        print("\n| context | per token, no cache | per token, cache | speed-up | tokens/s no cache | tokens/s cache "
              f"| {WRITTEN} tokens after a prompt, no cache | cache | speed-up | same tokens |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        plain, cached = row["step"]["no cache"], row["step"]["cache"]
        whole_plain, whole_cached = row["whole"]["no cache"], row["whole"]["cache"]
        cells = [f"{row['context']:,}", f"{plain * 1e3:.2f} ms", f"{cached * 1e3:.2f} ms", f"{plain / cached:.1f}x",
                 f"{1 / plain:,.0f}", f"{1 / cached:,.0f}", f"{whole_plain * 1e3:.0f} ms", f"{whole_cached * 1e3:.0f} ms",
                 f"{whole_plain / whole_cached:.1f}x", "yes" if row["same"] else "NO"]
        print("| " + " | ".join(cells) + " |" if markdown else "  ".join(cells))
        ok &= row["same"]
    speedup = rows[-1]["step"]["no cache"] / rows[-1]["step"]["cache"]
    ok &= speedup >= TARGET_SPEEDUP_AT_1024
    print(f"\nper token at 1,024: {speedup:.1f}x faster with the cache (target >= {TARGET_SPEEDUP_AT_1024:g}x)")
    print(f"\nBPE, {bpe['merges']} merges learned from the milestone's training text ({bpe['train_characters']:,} "
          f"characters) in {bpe['seconds']:.1f} s CPU: {bpe['validation_ratio']:.3f} tokens per character of the held-out "
          f"text ({bpe['validation_characters']:,} characters), {bpe['train_ratio']:.3f} of the training text "
          f"(target <= {TARGET_TOKENS_PER_CHARACTER}); longest tokens {bpe['longest']}")
    ok &= bpe["validation_ratio"] <= TARGET_TOKENS_PER_CHARACTER
    if training:
        print(f"\nThe milestone trained the same number of steps on each tokenizer, validation bits per character:")
        for name, (bits, vocabulary, parameters, seconds) in training.items():
            print(f"  {name}: {bits:.3f} bits per character, vocabulary {vocabulary}, {parameters:,} parameters, "
                  f"{seconds:.0f} s of training")
    print("\nall targets met" if ok else "\nA TARGET WAS MISSED")
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="interleaved rounds each per-token time is the best of")
    parser.add_argument("--merges", type=int, default=512)
    parser.add_argument("--train", type=int, default=0, metavar="STEPS",
                        help="also train the milestone for STEPS steps on characters and on BPE tokens")
    parser.add_argument("--markdown", action="store_true", help="print the speed table as Markdown")
    args = parser.parse_args(argv)
    rows = measure_speed(args.repeats)
    bpe = measure_bpe(args.merges)
    training = measure_training(args.train, args.merges) if args.train else None
    return 0 if report(rows, bpe, training, args.markdown) else 1


if __name__ == "__main__":
    sys.exit(main())
