"""The class competition, instructor's side (`tito olympics score EVENT`): every entry runs in the grading sandbox,
and nothing it does can raise its own score.

How an entry is scored, one session each:
  - its zip is checked again (`olympics_entry.read_entry`) and unpacked into a folder the sandbox sees read-only,
    with tito's runner (RUNNER) and the manifest; the runner builds the MLP with the ENTRY's own tinytorch, loads
    its weights, and answers rounds on its stdin/stdout: tito sends images, it sends one class per image back;
  - the labels never enter the sandbox, and the accuracy is that of the entry's weights, computed by tito with NumPy
    outside it: an entry that finds the labels anyway (scikit-learn's digits are public) and answers them is
    invalid, as its answers then differ from its own weights' classes;
  - the clock is the kernel's, read by tito: a round costs the CPU time that the entry's sandbox (every thread,
    ended ones included) spent from tito's first byte sent to the answer's last byte received, so an entry that
    patches its own clock, or prints a fake time or score, changes nothing, and time spent waiting for a core
    while other work runs on the shared machine is not counted; an entry that starts another process (whose
    time the kernel reports only coarsely) is invalid;
  - each timed round sends images it has never seen (test images with fresh noise, in a fresh order), one query
    at a time as the lesson's latency, so answers cannot be cached; every answer must agree with what the entry's
    own weights compute (tito computes them with NumPy) on at least AGREEMENT of the images, or the entry is invalid;
  - a reference MLP, run by the course's own package in a sandbox of its own, answers the same rounds in the same
    session, alternating with the entry; the speed score is the entry's median round over the reference's:
    load that slows both cancels out, and the median drops a burst that hits one round.
The GPT event (gpt-bpc) has no timing: tito computes the bits per character from the weights with the course's
package, and the entry's package must first answer a few validation windows (its likeliest next character at every
position) as its weights do, so a package that reads the next character from its input is invalid.
In: a folder of entry zips, an event. Out: one Score per entry, a leaderboard as CSV and as an HTML page (escaped,
no script, a Content-Security-Policy that allows none).
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import html
import io
import json
import os
import selectors
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TitoError
from ..olympics_entry import EVENTS, GPT_EVENT, Entry, build_gpt, package_files, read_entry
from .sandbox import Limits, descendants, require_bwrap, sandboxed_python
from .scores import spreadsheet_safe

AGREEMENT = 0.99            # share of a round's answers that must equal the weights' own classes
NOISE = 0.05                # standard deviation of the noise on each timed round's images (standardized pixels)
ROUND_SECONDS = 30          # one round, answered
START_SECONDS = 60          # the runner's start: imports, building the model, loading the weights
REFERENCE_WIDTHS = (64, 64, 10)
CPUCLOCK_SCHED = 2  # Linux's per-process CPU clock ids: (~pid << 3) | 2, as clock_getcpuclockid(pid) makes them

RUNNER = r'''"""tito's olympics runner: builds the entry's MLP with the entry's own tinytorch and answers tito's rounds."""
import json
import os
import sys

import numpy as np

to_tito, from_tito = os.fdopen(os.dup(1), "wb", buffering=0), os.fdopen(os.dup(0), "rb", buffering=0)
quiet = os.open(os.devnull, os.O_RDWR)
for descriptor in (0, 1):  # whatever the entry prints goes nowhere, not into the answers
    os.dup2(quiet, descriptor)
folder = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as manifest:
    described = json.load(manifest)

from tinytorch.core.tensor import Tensor

if "gpt" in described:  # a character GPT: rounds of windows of ids, answered with each position's likeliest next id
    from tinytorch.core.transformer import GPT

    shape = described["gpt"]
    network = GPT(len(shape["characters"]), shape["context"], d_model=shape["width"], num_heads=shape["heads"],
                  num_layers=shape["layers"])
    kind = np.int32
else:  # a digits MLP: rounds of images, answered one query at a time with each image's class
    from tinytorch.core.activations import ReLU
    from tinytorch.core.layers import Linear, Sequential

    widths, stack = described["widths"], []
    for fan_in, fan_out in zip(widths, widths[1:]):
        stack += [Linear(fan_in, fan_out), ReLU()]
    network = Sequential(*stack[:-1])
    kind = np.float32
with np.load(os.path.join(folder, "weights.npz"), allow_pickle=False) as saved:
    network.load_state_dict({key: saved[key] for key in saved.files})
network.train(False)


def read_exactly(count):
    chunks = []
    while count:
        chunk = from_tito.read(count)
        if not chunk:
            sys.exit(0)
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


to_tito.write(b"ready\n")
while True:
    header = from_tito.readline()
    if not header:
        break
    rows, columns = (int(word) for word in header.split())
    inputs = np.frombuffer(read_exactly(rows * columns * 4), dtype=kind).reshape(rows, columns)
    if kind is np.int32:
        likeliest = np.asarray(network(inputs).numpy()).argmax(axis=-1).ravel()
        to_tito.write(" ".join(str(int(i)) for i in likeliest).encode() + b"\n")
    else:
        classes = [int(np.argmax(np.asarray(network(Tensor(inputs[i:i + 1])).numpy()))) for i in range(rows)]
        to_tito.write(bytes(48 + c for c in classes) + b"\n")
'''


@dataclass(frozen=True)
class Score:
    """One entry's result. `valid` False: not ranked, `reason` says why."""

    name: str
    file: str
    valid: bool
    reason: str = ""
    accuracy: float = float("nan")
    parameters: int = 0
    size_bytes: int = 0
    bits_per_character: float = float("nan")  # gpt-bpc: on the milestone's validation text
    speed_ratio: float = float("nan")   # entry's median round / reference's, same session
    entry_ms: float = float("nan")      # medians of the timed rounds, CPU milliseconds
    reference_ms: float = float("nan")


class Invalid(Exception):
    """An entry that broke a rule while it ran; the message becomes its Score's reason."""


def digits_data():
    """(warm-up images, test images, test labels): module 08's digits, split by seed 0, standardized by the
    training split (public: the student's model was trained on the same), float32."""
    from tinytorch.core.training import Standardizer, load_digits_dataset

    digits = load_digits_dataset(seed=0)
    standardize = Standardizer(digits.x_train)
    return standardize(digits.x_train)[:200], standardize(digits.x_test), digits.y_test


def classes_of(widths, weights: dict[str, np.ndarray], images: np.ndarray) -> np.ndarray:
    """What the MLP of these weights answers, in float32 NumPy as a Linear computes it (tito's own arithmetic)."""
    x = images.astype(np.float32)
    layers = len(widths) - 1
    for index in range(layers):
        x = x @ weights[f"{2 * index}.weight"].astype(np.float32) + weights[f"{2 * index}.bias"].astype(np.float32)
        if index < layers - 1:
            x = np.maximum(x, 0)
    return x.argmax(axis=1)


def reference_entry(package: Path) -> Entry:
    """The timing reference: a fixed MLP (seeded weights) run by the course's own package."""
    rng = np.random.default_rng(0)
    weights = {}
    for index, (fan_in, fan_out) in enumerate(zip(REFERENCE_WIDTHS, REFERENCE_WIDTHS[1:])):
        weights[f"{2 * index}.weight"] = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        weights[f"{2 * index}.bias"] = np.zeros(fan_out, dtype=np.float32)
    return Entry("reference", EVENTS[0], REFERENCE_WIDTHS, weights, package_files(package))


def unpack(entry: Entry, folder: Path) -> Path:
    """The folder the sandbox sees: the entry's package, its weights, its manifest and tito's runner."""
    for relative, data in entry.package.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(data)
    np.savez(folder / "weights.npz", **entry.weights)
    described = {"gpt": entry.gpt} if entry.gpt else {"widths": list(entry.widths)}
    (folder / "manifest.json").write_text(json.dumps(described), encoding="utf-8")
    (folder / "runner.py").write_text(RUNNER, encoding="utf-8")
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder / "runner.py"


class Channel:
    """tito's side of a runner's pipes: send a round, wait (with a deadline) for its one line of classes."""

    def __init__(self, process, who: str):
        self.process, self.who = process, who
        self.processes = (0, 0)  # processes_started once the runner is ready: it must not change
        self.selector = selectors.DefaultSelector()
        self.selector.register(process.stdout, selectors.EVENT_READ)
        self.pending = b""

    def line(self, seconds: float, limit: int) -> bytes:
        deadline = time.perf_counter() + seconds
        while b"\n" not in self.pending:
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or not self.selector.select(remaining):
                raise Invalid(f"{self.who} did not answer within {seconds:.0f} s")
            chunk = os.read(self.process.stdout.fileno(), 65536)  # unbuffered: what select saw is all there is
            if not chunk:
                raise Invalid(f"{self.who} ended before answering (a crash, exit() or a sandbox limit)")
            self.pending += chunk
            if len(self.pending) > limit:
                raise Invalid(f"{self.who} sent more than an answer")
        answer, self.pending = self.pending.split(b"\n", 1)
        return answer

    def send(self, message: bytes, deadline: float) -> None:
        """Write `message` without ever blocking tito: an entry that stops reading runs out of time instead."""
        descriptor = self.process.stdin.fileno()
        os.set_blocking(descriptor, False)
        with selectors.DefaultSelector() as writable:
            writable.register(descriptor, selectors.EVENT_WRITE)
            view = memoryview(message)
            while view:
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or not writable.select(remaining):
                    raise Invalid(f"{self.who} did not read its input within {ROUND_SECONDS} s")
                try:
                    view = view[os.write(descriptor, view):]
                except BlockingIOError:
                    continue
                except OSError:
                    raise Invalid(f"{self.who} stopped reading its input (it ended)") from None

    def exchange(self, inputs: np.ndarray, longest: int) -> tuple[bytes, float]:
        """(answer line, CPU seconds the sandbox spent on it) of one round of `inputs` (float32 or int32 rows)."""
        message = f"{len(inputs)} {inputs.shape[1]}\n".encode() + np.ascontiguousarray(inputs).tobytes()
        before = cpu_seconds(self.process.pid)
        self.send(message, time.perf_counter() + ROUND_SECONDS)
        answer = self.line(ROUND_SECONDS, longest)
        seconds = cpu_seconds(self.process.pid) - before
        if processes_started(self.process.pid) != self.processes:
            raise Invalid(f"{self.who} started another process: an entry runs as one process (threads are fine)")
        return answer, seconds

    def next_ids(self, windows: np.ndarray, vocabulary: int) -> np.ndarray:
        """A GPT's likeliest next id at every position of `windows` (int32, rows x context)."""
        answer, _ = self.exchange(windows.astype(np.int32), windows.size * 12)
        words = answer.split()
        if len(words) != windows.size or not all(word.isdigit() and int(word) < vocabulary for word in words):
            raise Invalid(f"{self.who} did not answer one id below {vocabulary} for each of {windows.size} positions")
        return np.array([int(word) for word in words])

    def round(self, images: np.ndarray) -> tuple[np.ndarray, float]:
        """(classes, CPU seconds the sandbox spent on them) of one round of digits."""
        answer, seconds = self.exchange(images.astype(np.float32), len(images) + 2)
        if len(answer) != len(images) or not answer.isdigit():
            raise Invalid(f"{self.who} answered {len(answer)} characters, not one digit for each of {len(images)} images")
        return np.frombuffer(answer, dtype=np.uint8) - 48, seconds


def cpu_seconds(pid: int) -> float:
    """CPU time of every process under `pid` (a sandbox), threads included, ended ones too: the kernel's clock of
    each process (clock_getcpuclockid's, nanoseconds), read by tito. It is what the entry computed, whatever it
    does to its own clocks, and not the time it waited for a core while others ran."""
    total = 0.0
    for process in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):  # the process ended
            total += time.clock_gettime(((~process) << 3) | CPUCLOCK_SCHED)
    return total


def processes_started(pid: int) -> tuple[int, int]:
    """(processes now under `pid`, page faults of the ones that ended): either grows when an entry starts another
    process, whose CPU time the kernel would report to tito only in 10 ms ticks, so an entry must not."""
    faults = 0
    under = descendants(pid)
    for process in [pid, *under]:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
            faults += int(fields[8]) + int(fields[10])  # cminflt, cmajflt: children waited for
    return len(under), faults


def check_agreement(answer: np.ndarray, expected: np.ndarray, what: str) -> None:
    agreement = float(np.mean(answer == expected))
    if agreement < AGREEMENT:
        raise Invalid(f"on {what} the entry's answers match what its own weights compute on {agreement:.1%} of them "
                      f"(at least {AGREEMENT:.0%} needed): the answers are not its model's")


def fresh_rounds(images: np.ndarray, count: int, rng: np.random.Generator):
    """`count` rounds of images no entry has seen: `images` with fresh noise, in a fresh order (nothing to cache)."""
    for _ in range(count):
        noisy = images + NOISE * rng.standard_normal(images.shape)
        yield noisy[rng.permutation(len(images))].astype(np.float32)


def session(entry: Entry, reference: Entry, data, limits: Limits, repeats: int, seed: int) -> dict:
    """Run `entry` and `reference` side by side in two sandboxes: warm-up, one round of the test images (accuracy),
    then `repeats` timed rounds alternating reference and entry; the measurements, or Invalid."""
    warmup, test_images, labels = data
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="tito-olympics-") as scratch:
        runners = [unpack(entry, Path(scratch) / "entry"), unpack(reference, Path(scratch) / "reference")]
        with sandboxed_python(runners[0], runners[0].parent, limits) as entry_process, \
                sandboxed_python(runners[1], runners[1].parent, limits) as reference_process:
            ours = Channel(entry_process, "the entry")
            theirs = Channel(reference_process, "the reference model")
            for channel in (ours, theirs):
                if channel.line(START_SECONDS, 64) != b"ready":
                    raise Invalid(f"{channel.who} did not start: it must build its MLP with its own tinytorch")
                channel.processes = processes_started(channel.process.pid)
            for channel in (ours, theirs):
                channel.round(warmup)
            answer, _ = ours.round(test_images)
            expected = classes_of(entry.widths, entry.weights, test_images)
            check_agreement(answer, expected, "the test images")
            accuracy = float(np.mean(expected == labels))  # the weights' own: answers from elsewhere (labels) gain nothing
            entry_times, reference_times = [], []
            for images in fresh_rounds(test_images, repeats, rng):
                reference_answer, seconds = theirs.round(images)
                check_agreement(reference_answer, classes_of(reference.widths, reference.weights, images), "a round")
                reference_times.append(seconds)
                answer, seconds = ours.round(images)
                check_agreement(answer, classes_of(entry.widths, entry.weights, images), "a timed round")
                entry_times.append(seconds)
    entry_ms, reference_ms = statistics.median(entry_times) * 1e3, statistics.median(reference_times) * 1e3
    return dict(accuracy=accuracy, entry_ms=entry_ms, reference_ms=reference_ms, speed_ratio=entry_ms / reference_ms)


GPT_CHECK_WINDOWS = 4  # validation windows the entry's own package must answer as its weights do


def gpt_session(entry: Entry, text: str, limits: Limits) -> dict:
    """A GPT entry's package answers a few validation windows in the sandbox as its weights do (or Invalid); its bits
    per character are then computed by tito, from the weights, with the course's package (the lesson's benchmark)."""
    from tinytorch.core.autograd import no_grad
    from tinytorch.core.capstone import language_benchmark
    from tinytorch.core.transformer import next_character_windows

    characters = entry.gpt["characters"]
    index = {character: i for i, character in enumerate(characters)}
    missing = sorted(set(text) - set(index))
    if missing:
        raise Invalid(f"the entry's characters lack {len(missing)} of the validation text's, e.g. {missing[0]!r}")
    ids = np.array([index[character] for character in text])
    model = build_gpt(entry.gpt)
    model.load_state_dict(entry.weights)
    windows = next_character_windows(ids, model.context)[0][:GPT_CHECK_WINDOWS]
    with tempfile.TemporaryDirectory(prefix="tito-olympics-") as scratch:
        runner = unpack(entry, Path(scratch) / "entry")
        with sandboxed_python(runner, runner.parent, limits) as process:
            channel = Channel(process, "the entry")
            if channel.line(START_SECONDS, 64) != b"ready":
                raise Invalid("the entry did not start: it must build its GPT with its own tinytorch")
            channel.processes = processes_started(process.pid)
            answer = channel.next_ids(windows, len(characters))
    model.train(False)
    with no_grad():
        expected = np.asarray(model(windows).numpy()).argmax(axis=-1).ravel()
    check_agreement(answer, expected, "the validation windows")
    measured = language_benchmark(entry.name, model, ids)
    return dict(bits_per_character=measured.bits_per_character)


def score_entry(path: Path, event: str, reference: Entry, data, limits: Limits, repeats: int, seed: int,
                validation_text: str) -> Score:
    try:
        entry = read_entry(path)
    except TitoError as error:
        return Score(path.stem, path.name, False, str(error))
    if entry.event != event:
        return Score(entry.name, path.name, False, f"entered for {entry.event}, not {event}")
    base = dict(name=entry.name, file=path.name, parameters=entry.parameters, size_bytes=entry.size_bytes)
    try:
        if event == GPT_EVENT:
            return Score(valid=True, **base, **gpt_session(entry, validation_text, limits))
        return Score(valid=True, **base, **session(entry, reference, data, limits, repeats, seed))
    except Invalid as error:
        return Score(valid=False, reason=str(error), **base)


def score_entries(folder: Path, event: str, package: Path, limits: Limits, jobs: int = 1, repeats: int = 7,
                  seed: int = 0, on_score=None, validation_text: str = "") -> list[Score]:
    """Score every `*.zip` in `folder` for `event`, `jobs` sessions side by side (each uses two sandboxes);
    `validation_text` is the held-out text of the GPT event (`tito milestone gpt`'s)."""
    if event not in EVENTS:
        raise TitoError(f"no event {event!r}; the events are {', '.join(EVENTS)}", 2)
    paths = sorted(folder.glob("*.zip"))
    if not paths:
        raise TitoError(f"no entries (*.zip) in {folder}", 2)
    require_bwrap()
    reference, data = reference_entry(package), None if event == GPT_EVENT else digits_data()

    def score(path: Path) -> Score:
        result = score_entry(path, event, reference, data, limits, repeats, seed, validation_text)
        if on_score:
            on_score(result)
        return result

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        return list(pool.map(score, paths))


# ------------------------------------------------------------------------------------------ the leaderboard

def olympic_event(event: str):
    """The lesson's event (floor and score), with speed measured as the ratio against the reference."""
    from tinytorch.core.capstone import EVENTS as LESSON_EVENTS

    chosen = LESSON_EVENTS[event]
    return dataclasses.replace(chosen, score="speed_ratio") if chosen.score == "p50_ms" else chosen


def standings(event: str, scores: list[Score]) -> list[tuple[str, Score]]:
    """(place or "-", score) for every entry: ranked ones first (the lesson's leaderboard), then the rest."""
    from tinytorch.core.capstone import leaderboard

    rules = olympic_event(event)
    ranked = leaderboard(rules, [s for s in scores if s.valid])
    listed = {id(s) for _, s in ranked}
    return [(str(place), s) for place, s in ranked] + [("-", s) for s in scores if id(s) not in listed]


def status(event: str, score: Score) -> str:
    if not score.valid:
        return f"invalid: {score.reason}"
    field, relation, bound = olympic_event(event).floor
    return "ranked" if olympic_event(event).qualifies(score) else f"below the floor ({field} {relation} {bound:g})"


COLUMNS = ("place", "name", "status", "accuracy", "bits/char", "speed ratio", "entry ms", "reference ms", "parameters",
           "size bytes", "file")


def rows(event: str, scores: list[Score]) -> list[list[str]]:
    def number(value: float, form: str) -> str:
        return "" if value != value else format(value, form)  # NaN: not measured

    return [[place, s.name, status(event, s), number(s.accuracy * 100, ".2f"), number(s.bits_per_character, ".3f"),
             number(s.speed_ratio, ".3f"),
             number(s.entry_ms, ".2f"), number(s.reference_ms, ".2f"), str(s.parameters), str(s.size_bytes), s.file]
            for place, s in standings(event, scores)]


def leaderboard_csv(event: str, scores: list[Score]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([[spreadsheet_safe(cell) for cell in row] for row in rows(event, scores)])
    return buffer.getvalue()


CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
STYLE = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
         "padding:.3em .6em;text-align:left}tr.invalid{color:#999}")


MEASURED = ("Speed is each entry's median CPU time per round over the reference model's, measured alternately in the "
            "same session; accuracy is that of the entry's weights.",
            "Bits per character on the held-out text of `tito milestone gpt`, computed by tito from the entry's weights.")


def leaderboard_html(event: str, scores: list[Score], environment: dict, when: str) -> str:
    """The page: every text escaped, no script, a policy that would refuse one anyway."""
    rules = olympic_event(event)
    body = "".join(
        f"<tr class=\"{'ranked' if row[0] != '-' else 'invalid'}\">" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row)
        + "</tr>\n" for row in rows(event, scores))
    machine = ", ".join(f"{key}: {value}" for key, value in environment.items())
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
            f"<title>{html.escape(event)} leaderboard</title><style>{STYLE}</style></head><body>\n"
            f"<h1>{html.escape(event)}</h1>\n<p>{html.escape(rules.description)}. {MEASURED[event == GPT_EVENT]} "
            f"Scored {html.escape(when)}.</p>\n"
            f"<table><thead><tr>{''.join(f'<th>{html.escape(c)}</th>' for c in COLUMNS)}</tr></thead><tbody>\n"
            f"{body}</tbody></table>\n<p>Machine: {html.escape(machine)}</p>\n</body></html>\n")


def write_leaderboard(out: Path, event: str, scores: list[Score], environment: dict, when: str) -> tuple[Path, Path]:
    """`<event>.csv` and `<event>.html` in `out`, each written whole or not at all."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, text in ((".csv", leaderboard_csv(event, scores)), (".html", leaderboard_html(event, scores, environment, when))):
        target = out / f"{event}{suffix}"
        temporary = target.with_name(f".{target.name}.tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(target)
        written.append(target)
    return written[0], written[1]
