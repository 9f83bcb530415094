"""`tito milestone gpt`: a character-level GPT made only of the course's modules (01-08, 10, 11) learns to
write like a text that is on this machine: Python's own reference documentation (`pydoc_data.topics`, part
of every CPython) by default, or any UTF-8 file. The model is module 11's GPT, or module 13's FusedGPT (the same
parameters, fused attention, LayerNorm and loss) once module 13 is complete: read from the package's stubs, not by running it.

What goes in: `GptOptions`. What comes out: a `GptResult` (bits per character on the held-out text, a
sample), a plot of the learning curves and a checkpoint in the output folder; with `profile`, module 12's
profile of a few more training steps (a table, a trace for Perfetto and a roofline plot) too. `sample_from_checkpoint`
writes text from a saved checkpoint without training. `tito/commands/milestone.py` only parses options.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..checkpoints import checkpoint_description
from ..errors import TitoError
from .common import MLP_LESSONS, _course_root, _make_folder, _one_blas_thread, _ordinary_permissions, \
    _require_finished, tinytorch_modules, write_figure

GPT_LESSONS = MLP_LESSONS + (("attention", "10_attention"), ("transformer", "11_transformer"))
PROFILE_LESSONS = GPT_LESSONS + (("profiling", "12_profiling"),)
# Module 13: the fused GPT (FusedGPT), trained instead of module 11's GPT once the lesson is complete.
ACCELERATION_LESSON = ("acceleration", "13_acceleration")
# Module 16: byte-pair encoding (`--tokenizer bpe`) and the KV cache that samples once the lesson is complete.
GENERATION_LESSON = ("generation", "16_generation")
TOKENIZERS = ("char", "bpe")
GPT_OUT = Path("runs") / "gpt"
GPT_PLOT_NAME = "gpt_training.png"
GPT_CHECKPOINT_NAME = "gpt.npz"
DEFAULT_CORPUS = "pydoc_data.topics (Python's reference documentation)"
# The split rule of module 11 (split_text): blocks of 2,048 characters, every tenth held out.
SPLIT_BLOCK, SPLIT_EVERY = 2048, 10
MIN_CHARACTERS = SPLIT_BLOCK * SPLIT_EVERY
DEFAULT_PROMPT = "The "
# `--profile`: training steps measured after the run, and what they leave in the output folder.
PROFILE_STEPS = 3
PROFILE_TABLE_NAME, PROFILE_TRACE_NAME, ROOFLINE_PLOT_NAME = "gpt_profile.txt", "gpt_trace.json", "gpt_roofline.png"


@dataclass(frozen=True)
class GptOptions:
    steps: int = 2000
    seed: int = 0
    data: Path | None = None    # a UTF-8 text file; None: pydoc_data.topics
    out: Path | None = None     # where the plot and the checkpoint go; None: runs/gpt in the course (or here)
    sample: bool = False        # only write text from the checkpoint in `out`
    prompt: str | None = None   # None: "The ", or the text's first 4 characters if "The " is not in its vocabulary
    length: int = 400           # tokens to generate (characters with the char tokenizer)
    temperature: float = 0.8
    top_k: int = 10
    tokenizer: str = "char"     # "char": module 11's characters; "bpe": module 16's byte-pair encoding
    merges: int = 512           # BPE merges learned from the training text
    profile: bool = False       # after training, profile PROFILE_STEPS more steps with module 12
    # The model and its training (the example model: 2 layers, 4 heads, width 64, context 64).
    layers: int = 2
    heads: int = 4
    width: int = 64
    context: int = 64
    batch_size: int = 32
    lr: float = 1e-2
    weight_decay: float = 0.01
    warmup: int = 100
    max_norm: float = 1.0
    eval_every: int = 250      # steps between two measurements of the validation loss

    @property
    def warmup_steps(self) -> int:
        """The steps of warm-up of a run of `steps`: `warmup`, or fewer in a shorter run (the schedule needs some after it)."""
        return min(self.warmup, self.steps - 1)

    def check(self) -> None:
        for name, value, least in [("--steps", self.steps, 1), ("--length", self.length, 0), ("--top-k", self.top_k, 1),
                                   ("--merges", self.merges, 0)]:
            if value < least:
                raise TitoError(f"{name} must be at least {least}, got {value}", exit_code=2)
        if self.seed < 0:
            raise TitoError(f"--seed must be 0 or more, got {self.seed}", exit_code=2)
        if not self.temperature > 0:
            raise TitoError(f"--temperature must be positive, got {self.temperature}", exit_code=2)
        if self.tokenizer not in TOKENIZERS:
            raise TitoError(f"--tokenizer must be one of {', '.join(TOKENIZERS)}, got {self.tokenizer!r}", exit_code=2)
        if self.prompt is not None and not self.prompt:
            raise TitoError("--prompt must not be empty: the model needs at least one character to continue", exit_code=2)


@dataclass
class GptProfile:
    table: str              # module 12's key_averages table, most self time first
    table_path: Path
    trace: Path             # Chrome's Trace Event Format, for Perfetto or `vizviewer`
    roofline: Path
    peak: float             # FLOPs per second of a float32 matrix product, measured
    bandwidth: float        # bytes per second of a large copy, measured


@dataclass
class GptResult:
    corpus: str
    vocabulary: int
    train_characters: int
    validation_characters: int
    parameters: int
    steps: list[int] = field(default_factory=list)           # the step after which each validation was measured
    train_bits: list[float] = field(default_factory=list)    # per step
    validation_bits: list[float] = field(default_factory=list)
    sample: str = ""
    plot: Path | None = None
    checkpoint: Path | None = None
    train_seconds: float = 0.0
    replaced: bool = False
    tokens_per_character: float = 1.0  # of the held-out text: bits per token x this = bits per character
    profile: GptProfile | None = None
    model: str = "GPT"  # "FusedGPT" once module 13 is complete

    @property
    def final_bits(self) -> float:
        return self.validation_bits[-1]


def held_out_text() -> str:
    """The validation part of the default text, as the milestone splits it (the olympics' GPT event scores on it)."""
    from tinytorch.core.transformer import split_text

    return split_text(read_corpus(None)[0], SPLIT_BLOCK, SPLIT_EVERY)[1]


def read_corpus(data: Path | None) -> tuple[str, str]:
    """(text, name): the default corpus, or the UTF-8 text of `data`; every problem is a one-line TitoError."""
    if data is not None:
        return _read_text_file(Path(data)), Path(data).name
    from pydoc_data.topics import topics

    return "\n".join(topics[key] for key in sorted(topics)), DEFAULT_CORPUS


def _read_text_file(path: Path) -> str:
    if not path.exists():
        raise TitoError(f"no file at {path}")
    if path.is_dir():
        raise TitoError(f"{path} is a folder: --data needs a UTF-8 text file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise TitoError(f"cannot read {path}: {error.strerror or error}") from None
    if not raw.strip():
        raise TitoError(f"{path} is empty: --data needs a UTF-8 text file of at least {MIN_CHARACTERS} characters")
    if b"\x00" in raw:
        raise TitoError(f"{path} looks binary (it holds NUL bytes): --data needs a UTF-8 text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TitoError(f"{path} is not UTF-8 text (byte {error.start} is 0x{raw[error.start]:02x}): "
                        "--data needs a UTF-8 text file") from None
    if len(text) < MIN_CHARACTERS:
        raise TitoError(f"{path} has {len(text)} characters, too few: the milestone needs at least {MIN_CHARACTERS} "
                        f"(blocks of {SPLIT_BLOCK}, every tenth held out for validation)")
    return text


class TextData:
    """The corpus as module 11 prepares it: the tokenizer, and training and validation windows. With `generation`
    (module 16), the tokens are BPE tokens of `merges` merges learned from the training text only."""

    def __init__(self, transformer, text: str, context: int, generation=None, merges: int = 512):
        train, validation = transformer.split_text(text, SPLIT_BLOCK, SPLIT_EVERY)
        self.tokenizer = transformer.CharTokenizer(text) if generation is None else \
            generation.BPETokenizer.train(train, merges)
        self.train_characters, self.validation_characters = len(train), len(validation)
        train_ids, validation_ids = self.tokenizer.encode(train), self.tokenizer.encode(validation)
        # The loss is per token; per character it is that times the tokens per character of the same text.
        self.train_ratio, self.validation_ratio = len(train_ids) / len(train), len(validation_ids) / len(validation)
        self.x_train, self.y_train = transformer.next_character_windows(train_ids, context)
        self.x_validation, self.y_validation = transformer.next_character_windows(validation_ids, context)
        self.opening = train[:len(DEFAULT_PROMPT)]


def checked_prompt(tokenizer, prompt: str | None, opening: str = DEFAULT_PROMPT) -> str:
    """The text a sample continues: `prompt`, or by default "The " (the text's `opening` if "The " does not fit
    its vocabulary); a TitoError if a given prompt holds a character the model never saw. BPE encodes any text."""
    if getattr(tokenizer, "characters", None) is None:
        return DEFAULT_PROMPT if prompt is None else prompt
    if prompt is None:
        prompt = DEFAULT_PROMPT if set(DEFAULT_PROMPT) <= set(tokenizer.characters) else opening
    unknown = sorted(set(prompt) - set(tokenizer.characters))
    if unknown:
        raise TitoError(f"--prompt: characters not in the vocabulary of the training text: {''.join(unknown)[:20]!r}")
    return prompt


def gpt_modules(root: Path | None, lessons: tuple = GPT_LESSONS) -> dict:
    """The milestone's modules (`lessons`), and module 13 as "acceleration" when it is complete."""
    modules = tinytorch_modules(root, lessons)
    acceleration = module_if_complete(root, ACCELERATION_LESSON)
    if acceleration is not None:
        modules["acceleration"] = acceleration
    return modules


def build_gpt(modules: dict, vocabulary: int, options: GptOptions, seed: int | None = None):
    """Module 13's FusedGPT when `modules` holds module 13, else module 11's GPT (the same parameters and names)."""
    model_class = modules["acceleration"].FusedGPT if "acceleration" in modules else modules["transformer"].GPT
    rng = np.random.default_rng(options.seed if seed is None else seed)
    return model_class(vocabulary, options.context, d_model=options.width, num_heads=options.heads,
                       num_layers=options.layers, rng=rng)


def batch_orders(count: int, steps: int, batch_size: int, eval_every: int, seed: int) -> list[np.ndarray]:
    """The training windows of every step, as one index array per stretch of `eval_every` steps: epochs of
    `count` windows in shuffled order, one after another, cut into batches."""
    rng = np.random.default_rng(seed)
    epochs = math.ceil(steps * batch_size / count)
    order = np.concatenate([rng.permutation(count) for _ in range(epochs)])[:steps * batch_size]
    stretch = eval_every * batch_size
    return [order[start:start + stretch] for start in range(0, len(order), stretch)]


def module_if_complete(root: Path | None, lesson: tuple[str, str], required: bool = False):
    """The package module of `lesson` (name, folder) when it is complete; when it is not, a TitoError if `required`,
    else None. Complete is read from the package's stubs (`_require_finished`): no student code runs to decide."""
    name, folder = lesson
    try:
        _require_finished(root, [folder])
        return tinytorch_modules(root, (lesson,))[name]
    except TitoError:
        if required:
            raise
        return None


def run_gpt(options: GptOptions, progress=None) -> GptResult:
    """Train the GPT for `options.steps` steps, measure it on the held-out text, write a sample, plot, checkpoint."""
    options.check()
    text, corpus = read_corpus(options.data)
    root = _course_root()
    lessons = PROFILE_LESSONS if options.profile else GPT_LESSONS
    _require_finished(root, [lesson for _, lesson in lessons])
    modules = gpt_modules(root, lessons)
    transformer, training = modules["transformer"], modules["training"]
    # Without module 16, samples come from module 11's `generate`, without a cache.
    generation = module_if_complete(root, GENERATION_LESSON, required=options.tokenizer == "bpe")
    out = Path(options.out) if options.out is not None else (root or Path.cwd()) / GPT_OUT
    _make_folder(out)

    data = TextData(transformer, text, options.context, generation if options.tokenizer == "bpe" else None,
                    options.merges)
    prompt = checked_prompt(data.tokenizer, options.prompt, data.opening)  # before training, not after
    model = build_gpt(modules, len(data.tokenizer), options)
    adamw = modules["optimizers"].AdamW(model.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    schedule = transformer.WarmupCosineLR(adamw, warmup=options.warmup_steps, total=options.steps)
    trainer = training.Trainer(transformer.PerPositionLogits(model),
                               transformer.ClippedSchedule(adamw, schedule, options.max_norm),
                               model.loss_function())
    validation = training.DataLoader(data.x_validation, data.y_validation, batch_size=256)
    result = GptResult(corpus, len(data.tokenizer), data.train_characters, data.validation_characters,
                       sum(parameter.size for parameter in model.parameters()), model=type(model).__name__)
    result.tokens_per_character = data.validation_ratio
    tokens = "characters" if options.tokenizer == "char" else f"BPE tokens ({options.merges} merges)"
    kind = "FusedGPT (module 13's fused attention, LayerNorm and loss)" if result.model == "FusedGPT" else "GPT (module 11)"
    description = (f"{kind}, {options.layers} layers, {options.heads} heads, width {options.width}, context {options.context} "
                   f"{tokens} ({result.parameters:,} parameters), AdamW lr {options.lr:g}, batch {options.batch_size}, "
                   f"seed {options.seed}: {corpus}, {result.train_characters:,} characters for training, "
                   f"{result.validation_characters:,} held out")

    def bits(loss: float, ratio: float = data.validation_ratio) -> float:
        return transformer.bits_per_character(loss) * ratio

    def on_batch(loss: float) -> None:
        result.train_bits.append(bits(loss, data.train_ratio))
        if progress is not None:
            progress.batch(result.train_bits[-1])

    if progress is not None:
        progress.start(options.steps, description)
    try:
        with _one_blas_thread():
            start = time.perf_counter()
            for stretch in batch_orders(len(data.x_train), options.steps, options.batch_size, options.eval_every, options.seed):
                loader = training.DataLoader(data.x_train[stretch], data.y_train[stretch], batch_size=options.batch_size)
                trainer.train_epoch(loader, on_batch)
                result.steps.append(len(result.train_bits))
                result.validation_bits.append(bits(trainer.evaluate(validation)[0]))
                if progress is not None:
                    progress.validated(result.validation_bits[-1])
            result.train_seconds = time.perf_counter() - start
    finally:
        if progress is not None:
            progress.stop()

    result.sample = write_sample(sampler(transformer, generation), model, data.tokenizer, prompt, options)
    result.replaced = (out / GPT_CHECKPOINT_NAME).exists() or (out / GPT_PLOT_NAME).exists()
    result.checkpoint = _save(training, out / GPT_CHECKPOINT_NAME, model, adamw, data.tokenizer, options, result,
                              data.opening)
    result.plot = save_gpt_plot(out / GPT_PLOT_NAME, result)
    if options.profile:
        result.profile = profile_training(modules, trainer, data, options, out)
    return result


def profile_training(modules: dict, trainer, data: TextData, options: GptOptions, out: Path) -> GptProfile:
    """PROFILE_STEPS more training steps (after the checkpoint is saved) under module 12's Profiler, one warm-up
    step before them; the table, the trace and the roofline of this machine, written to `out`."""
    profiling, training = modules["profiling"], modules["training"]
    count = (PROFILE_STEPS + 1) * options.batch_size
    warm_up = training.DataLoader(data.x_train[:options.batch_size], data.y_train[:options.batch_size],
                                  batch_size=options.batch_size)
    measured = training.DataLoader(data.x_train[options.batch_size:count], data.y_train[options.batch_size:count],
                                   batch_size=options.batch_size)
    with _one_blas_thread():
        trainer.train_epoch(warm_up)
        with profiling.Profiler() as profiler:
            trainer.train_epoch(measured)
        peak, bandwidth = profiling.measure_peak_flops(), profiling.measure_bandwidth()
    table = profiler.table(row_limit=25)
    try:
        (out / PROFILE_TABLE_NAME).write_text(f"{PROFILE_STEPS} training steps of the GPT, batch {options.batch_size}\n"
                                              f"{table}\n")
        trace = profiler.export_chrome_trace(out / PROFILE_TRACE_NAME)
    except OSError as error:
        raise TitoError(f"cannot write the profile in {out}: {error.strerror or error}") from None
    import matplotlib

    matplotlib.use("Agg")
    points = profiling.roofline(profiler.key_averages(), peak, bandwidth)
    roofline = write_figure(profiling.plot_roofline(points, peak, bandwidth), out / ROOFLINE_PLOT_NAME)
    return GptProfile(table, out / PROFILE_TABLE_NAME, trace, roofline, peak, bandwidth)


def sampler(transformer, generation):
    """Module 16's generation with a KV cache when it is there, else module 11's: the same tokens either way."""
    return transformer.generate if generation is None else generation.generate_cached


def write_sample(generate, model, tokenizer, prompt: str, options: GptOptions) -> str:
    """`options.length` tokens after `prompt`, from the model (temperature and top-k of the options)."""
    with _one_blas_thread():
        ids = generate(model, tokenizer.encode(prompt), options.length, temperature=options.temperature,
                       top_k=options.top_k, rng=np.random.default_rng(options.seed))
    return prompt + tokenizer.decode(ids)


def _save(training, path: Path, model, optimizer, tokenizer, options: GptOptions, result: GptResult,
          opening: str) -> Path:
    if options.tokenizer == "bpe":  # the tokens' bytes in rank order, as hex
        vocabulary = {"tokenizer": "bpe", "vocabulary": " ".join(token.hex() for token in tokenizer.vocabulary)}
    else:
        vocabulary = {"tokenizer": "char", "characters": tokenizer.characters}
    extra = {**vocabulary, "layers": options.layers, "heads": options.heads,
             "width": options.width, "context": options.context, "steps": options.steps, "seed": options.seed,
             "corpus": result.corpus, "validation_bits": result.final_bits, "opening": opening}
    try:
        checkpoint = training.save_checkpoint(path, model, optimizer, extra=extra)
        _ordinary_permissions(checkpoint)
    except OSError as error:
        raise TitoError(f"cannot write the checkpoint {path}: {error.strerror or error}") from None
    return checkpoint


def sample_from_checkpoint(options: GptOptions) -> tuple[str, dict]:
    """(text, the checkpoint's description) from the checkpoint in the output folder, without training."""
    options.check()
    root = _course_root()
    modules = gpt_modules(root)
    path = (Path(options.out) if options.out is not None else (root or Path.cwd()) / GPT_OUT) / GPT_CHECKPOINT_NAME
    if not path.is_file():
        raise TitoError(f"no checkpoint at {path}: train one first with `tito milestone gpt`")
    try:
        described = checkpoint_description(path)
        shape = GptOptions(layers=int(described["layers"]), heads=int(described["heads"]),
                           width=int(described["width"]), context=int(described["context"]))
        bpe = described.get("tokenizer") == "bpe"
        generation = module_if_complete(root, GENERATION_LESSON, required=bpe)
        if bpe:
            tokenizer = generation.BPETokenizer({bytes.fromhex(token): rank
                                                 for rank, token in enumerate(described["vocabulary"].split(" "))})
        else:
            tokenizer = modules["transformer"].CharTokenizer(described["characters"])
        model = build_gpt(modules, len(tokenizer), shape, seed=0)
        modules["training"].load_checkpoint(path, model)
    except (KeyError, TypeError, ValueError, OSError) as error:
        raise TitoError(f"{path} is not a checkpoint of `tito milestone gpt`: {error}") from None
    prompt = checked_prompt(tokenizer, options.prompt, described.get("opening") or DEFAULT_PROMPT)
    return write_sample(sampler(modules["transformer"], generation), model, tokenizer, prompt, options), described


def save_gpt_plot(path: Path, result: GptResult) -> Path:
    """Training bits per character per step (and its running mean) and validation bits per character, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5), layout="constrained")
    steps = np.arange(1, len(result.train_bits) + 1)
    axes.plot(steps, result.train_bits, color="tab:blue", alpha=0.25, linewidth=0.8, label="training batch")
    window = max(1, min(50, len(steps) // 10))
    smooth = np.convolve(result.train_bits, np.ones(window) / window, mode="valid")
    axes.plot(steps[window - 1:], smooth, color="tab:blue", label=f"training (mean of {window} steps)")
    axes.plot(result.steps, result.validation_bits, color="tab:orange", marker="o", label="validation (held out)")
    axes.axhline(2.0, color="grey", linestyle=":", linewidth=1, label="2 bits per character")
    axes.set_xlabel("step")
    axes.set_ylabel("bits per character")
    axes.set_ylim(0, min(8, max(result.train_bits) * 1.05))
    axes.grid(alpha=0.3)
    axes.legend()
    axes.set_title(f"{result.corpus.split(' (')[0]}: {result.final_bits:.3f} bits per character on validation")
    return write_figure(figure, path)


class StepProgress:
    """One rich progress bar over the training steps, showing the batch loss and the last validation loss."""

    def __init__(self, console):
        self.console = console

    def start(self, steps: int, description: str) -> None:
        from rich.markup import escape
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.console.print(f"[bold]Milestone gpt[/]: {escape(description)}")
        self.console.print("[dim]loss in bits per character: the training batch, and the held-out text when measured[/]")
        self.progress = Progress(TextColumn("step"), MofNCompleteColumn(), BarColumn(bar_width=20),
                                 TextColumn("{task.fields[loss]}  {task.fields[validation]}"), TimeElapsedColumn(),
                                 TextColumn("left"), TimeRemainingColumn(), console=self.console)
        self.progress.start()
        self.task = self.progress.add_task("", total=steps, loss="", validation="")

    def batch(self, bits: float) -> None:
        self.progress.update(self.task, advance=1, loss=f"train {bits:.3f}")

    def validated(self, bits: float) -> None:
        self.progress.update(self.task, validation=f"validation {bits:.3f}")

    def stop(self) -> None:
        self.progress.stop()
