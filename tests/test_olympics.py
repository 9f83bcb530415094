"""The class competition (`tito olympics`): entries packed and checked twice, scored in the real grading sandbox
beside a reference model, cheating entries scored invalid or gaining nothing, the leaderboard's CSV and page."""
from __future__ import annotations

import csv
import io
import json
import secrets
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, needs_sandbox, run_tito
from tito.errors import TitoError
from tito.grading.olympics import COLUMNS, Score, leaderboard_csv, leaderboard_html, score_entries, standings
from tito.olympics_entry import pack_entry, read_entry
from tito.grading.sandbox import Limits

LIMITS = Limits(cell_seconds=60, notebook_seconds=120, memory_mb=2048)


def mlp_weights(widths=(64, 32, 10), seed=0, trained=False) -> dict[str, np.ndarray]:
    """An MLP's state_dict: random, or fitted to the digits (least squares on a random ReLU layer: over 90% in a second)."""
    rng = np.random.default_rng(seed)
    weights = {}
    for index, (fan_in, fan_out) in enumerate(zip(widths, widths[1:])):
        weights[f"{2 * index}.weight"] = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        weights[f"{2 * index}.bias"] = np.zeros(fan_out, dtype=np.float32)
    if trained:
        from tito.grading.olympics import digits_data
        from tinytorch.core.training import Standardizer, load_digits_dataset

        digits = load_digits_dataset(seed=0)
        x = Standardizer(digits.x_train)(digits.x_train)
        hidden = np.maximum(x @ weights["0.weight"], 0)
        features = np.hstack([hidden, np.ones((len(x), 1), dtype=np.float32)])
        targets = np.eye(10, dtype=np.float32)[digits.y_train]
        solution = np.linalg.solve(features.T @ features + 1.0 * np.eye(features.shape[1]), features.T @ targets)
        weights["2.weight"], weights["2.bias"] = solution[:-1].astype(np.float32), solution[-1].astype(np.float32)
        assert digits_data  # the same split and standardization the scorer uses
    return weights


def package_with(tmp_path: Path, appended: str = "") -> Path:
    """A copy of the course's tinytorch package, with `appended` added to the end of core/layers.py."""
    package = tmp_path / f"package-{secrets.token_hex(4)}" / "tinytorch"
    shutil.copytree(ROOT / "tinytorch", package, ignore=shutil.ignore_patterns("__pycache__"))
    with open(package / "core" / "layers.py", "a", encoding="utf-8") as layers:
        layers.write("\n" + appended)
    return package


def entry(tmp_path: Path, name: str, appended: str = "", event="digits-fastest", **weights) -> Path:
    path = tmp_path / f"{name}.npz"
    np.savez(path, **mlp_weights(**weights))
    return pack_entry(event, name, path, package_with(tmp_path, appended), tmp_path / "entries")


# ------------------------------------------------------------------------------------- packing and checking

def test_an_entry_round_trips_with_only_the_allowed_files(tmp_path):
    path = entry(tmp_path, "ada", widths=(64, 16, 10))
    names = zipfile.ZipFile(path).namelist()
    assert {"manifest.json", "weights.npz", "tinytorch/__init__.py", "tinytorch/core/layers.py"} <= set(names)
    assert all(name in ("manifest.json", "weights.npz") or name.startswith("tinytorch/") and name.endswith(".py")
               for name in names)
    checked = read_entry(path)
    assert (checked.name, checked.event, checked.widths) == ("ada", "digits-fastest", (64, 16, 10))
    assert checked.parameters == 64 * 16 + 16 + 16 * 10 + 10 and checked.size_bytes == 4 * checked.parameters


def test_a_module_08_checkpoint_is_accepted(tmp_path):
    from tinytorch.core.activations import ReLU
    from tinytorch.core.layers import Linear, Sequential
    from tinytorch.core.training import save_checkpoint

    model = Sequential(Linear(64, 8), ReLU(), Linear(8, 4), ReLU(), Linear(4, 10))
    weights = save_checkpoint(tmp_path / "model.npz", model)
    packed = pack_entry("digits-smallest", "bo", weights, ROOT / "tinytorch", tmp_path)
    assert read_entry(packed).widths == (64, 8, 4, 10)


def rewritten(path: Path, tmp_path: Path, change) -> Path:
    """The entry zip with `change(contents)` applied: a hand-made zip, as a student could hand in."""
    with zipfile.ZipFile(path) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    change(contents)
    target = tmp_path / f"changed-{secrets.token_hex(3)}.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return target


def npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def compressed(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize("change, message", [
    (lambda c: c.__setitem__("run.sh", b"curl evil"), r"only manifest.json, weights.npz and tinytorch/\*\.py, not run.sh"),
    (lambda c: c.__setitem__("tinytorch/core/data.npy", b"x"), r"not tinytorch/core/data.npy"),
    (lambda c: c.__setitem__("../escape.py", b"x"), r"not \.\./escape.py"),
    (lambda c: c.pop("weights.npz"), r"needs manifest.json and weights.npz"),
    (lambda c: c.__setitem__("manifest.json", b"{not json"), r"not JSON"),
    (lambda c: c.__setitem__("manifest.json", json.dumps({"format": 1, "event": "digits-fastest", "name": "<b>x</b>",
                                                           "widths": [64, 16, 10]}).encode()), r"name is 1-40 letters"),
    (lambda c: c.__setitem__("manifest.json", json.dumps({"format": 1, "event": "digits-fastest", "name": "ada",
                                                           "widths": [64, 99, 10]}).encode()), r"widths .* are not the weights'"),
    (lambda c: c.__setitem__("weights.npz", npz(**{"0.weight": np.zeros((64, 10), dtype=object)})),
     r"not a NumPy \.npz of plain arrays|finite float32"),
    (lambda c: c.__setitem__("weights.npz", npz(**{"0.weight": np.full((64, 10), np.nan, np.float32),
                                                   "0.bias": np.zeros(10, np.float32)})), r"finite float32 or float64"),
    (lambda c: c.__setitem__("weights.npz", npz(**{"0.weight": np.zeros((64, 9), np.float32),
                                                   "0.bias": np.zeros(9, np.float32)})), r"last layer has 9 outputs"),
    (lambda c: c.pop("tinytorch/core/layers.py"), r"lacks tinytorch/core/layers.py"),
    (lambda c: c.__setitem__("weights.npz", compressed(**{"0.weight": np.zeros((64, 40_000)), "0.bias": np.zeros(40_000)})),
     r"weights unpack to more than"),
])
def test_a_hand_made_entry_is_refused_naming_the_problem(tmp_path, change, message):
    good = entry(tmp_path, "ada", widths=(64, 16, 10))
    with pytest.raises(TitoError, match=message) as refused:
        read_entry(rewritten(good, tmp_path, change))
    assert "\n" not in str(refused.value)


def test_packing_refuses_bad_input_and_writes_nothing(tmp_path):
    weights = tmp_path / "w.npz"
    np.savez(weights, **mlp_weights((64, 10, 5)))
    with pytest.raises(TitoError, match="last layer has 5 outputs"):
        pack_entry("digits-fastest", "ada", weights, ROOT / "tinytorch", tmp_path / "out")
    with pytest.raises(TitoError, match="no event 'speed'"):
        pack_entry("speed", "ada", weights, ROOT / "tinytorch", tmp_path / "out")
    with pytest.raises(TitoError, match="not a tinytorch package"):
        np.savez(weights, **mlp_weights())
        pack_entry("digits-fastest", "ada", weights, tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_tito_olympics_submit_in_a_course(tmp_path):
    weights = tmp_path / "w.npz"
    np.savez(weights, **mlp_weights())
    done = run_tito("olympics", "submit", "digits-smallest", "--weights", str(weights), "--name", "cy",
                    "--out", str(tmp_path / "zips"), cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert read_entry(tmp_path / "zips" / "cy-digits-smallest.zip").name == "cy"
    refused = run_tito("olympics", "submit", "digits-smallest", "--weights", str(tmp_path / "none.npz"), "--name", "cy",
                       cwd=ROOT)
    assert refused.returncode == 2 and "no weights file" in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr


# ---------------------------------------------------------------------------------------- the leaderboard

HOSTILE = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'


def scores_for_the_board():
    return [Score("slow", "slow.zip", True, accuracy=0.99, speed_ratio=2.0, entry_ms=2, reference_ms=1, parameters=5),
            Score("fast", "fast.zip", True, accuracy=0.986, speed_ratio=0.5, entry_ms=1, reference_ms=2, parameters=5),
            Score("sloppy", "sloppy.zip", True, accuracy=0.90, speed_ratio=0.1, entry_ms=1, reference_ms=10),
            Score(HOSTILE, "=cmd|' /C calc'!A0.zip", False, reason=f"did not start {HOSTILE}")]


def test_standings_rank_valid_entries_above_the_floor_by_speed_ratio():
    placed = [(place, score.name) for place, score in standings("digits-fastest", scores_for_the_board())]
    assert placed[:2] == [("1", "fast"), ("2", "slow")]
    assert {name for place, name in placed[2:]} == {"sloppy", HOSTILE} and all(p == "-" for p, _ in placed[2:])
    by_size = standings("digits-smallest", [Score("big", "b.zip", True, accuracy=0.99, size_bytes=900),
                                            Score("small", "s.zip", True, accuracy=0.99, size_bytes=100)])
    assert [score.name for _, score in by_size] == ["small", "big"]


def test_csv_keeps_every_entry_and_defuses_formulas():
    table = list(csv.reader(io.StringIO(leaderboard_csv("digits-fastest", scores_for_the_board()))))
    assert table[0][:3] == ["place", "name", "status"] and len(table) == 5
    assert table[1][1] == "fast" and table[1][COLUMNS.index("speed ratio")] == "0.500"
    hostile_row = next(row for row in table if row[1] == HOSTILE)
    assert hostile_row[-1].startswith("'="), "a cell starting with = is quoted so a spreadsheet shows it as text"
    assert hostile_row[2].startswith("invalid: did not start")


def test_page_escapes_everything_and_allows_no_script():
    page = leaderboard_html("digits-fastest", scores_for_the_board(), {"cpu": "<b>cpu</b>"}, "now")
    assert page.count("<script") == 0 and "&lt;script&gt;" in page and "&lt;b&gt;cpu" in page
    assert "default-src 'none'" in page


# ------------------------------------------------------------------------- scoring in the grading sandbox

CHEATS = {
    # patches every clock it can reach and works 2 ms more per query, in a thread that ends: the kernel's clock
    # of the process still counts it
    "clockpatcher": """
import threading as _threading
import time as _time
_clock, _forward = _time.perf_counter, Sequential.forward
def _burn():
    start = _clock()
    while _clock() - start < 0.002:
        pass
def _slow_forward(self, x):
    worker = _threading.Thread(target=_burn)
    worker.start()
    worker.join()
    return _forward(self, x)
Sequential.forward = _slow_forward
_time.perf_counter = _time.monotonic = _time.time = lambda: 0.0
_time.perf_counter_ns = _time.monotonic_ns = _time.time_ns = lambda: 0
""",
    # finds the labels (scikit-learn's digits are readable in the sandbox) and answers them instead of its model
    "labelreader": """
import numpy as _np
from sklearn.datasets import load_digits as _load
_all = _load()
_pixels = _all.data / 16.0
_forward = Sequential.forward
def _answer_labels(self, x):
    from tinytorch.core.training import Standardizer, load_digits_dataset
    global _standardize
    try:
        _standardize
    except NameError:
        _digits = load_digits_dataset(seed=0)
        _standardize = Standardizer(_digits.x_train)
    out = _np.asarray(_forward(self, x).numpy())
    images = _np.asarray(x.numpy())
    for row, image in enumerate(images):
        distances = ((_standardize(_pixels.astype(_np.float32)) - image) ** 2).sum(axis=1)
        out[row] = -1e9
        out[row, _all.target[int(distances.argmin())]] = 1e9
    return Tensor(out)
Sequential.forward = _answer_labels
""",
    # hides work in a child process, whose time the kernel reports only in 10 ms ticks
    "forker": """
import os as _os
_forward = Sequential.forward
def _forked_forward(self, x):
    child = _os.fork()
    if child == 0:
        _os._exit(0)
    _os.waitpid(child, 0)
    return _forward(self, x)
Sequential.forward = _forked_forward
""",
    # prints a fake result, then writes a fake answer line to every descriptor it holds
    "faker": """
import os as _os
print("ready\\nSCORE 100% accuracy, 0.001 ms")
for _fd in range(3, 64):
    try:
        _os.write(_fd, b"ready\\n" + b"7" * 359 + b"\\n")
    except OSError:
        pass
""",
}


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("olympics")
    escape = Path(f"/tmp/olympics-escape-{secrets.token_hex(4)}")
    writer = f"""
import os as _os
for _target in ({str(escape)!r}, _os.path.join(_os.path.dirname(__file__), "escaped.py"), {str(ROOT / "escaped")!r}):
    try:
        with open(_target, "w") as _file:
            _file.write("escaped")
    except OSError:
        pass
"""
    entry(tmp_path, "honest", trained=True, widths=(64, 64, 10))
    entry(tmp_path, "small", widths=(64, 16, 10))
    entry(tmp_path, "writer", writer, trained=True, widths=(64, 64, 10))
    for name, code in CHEATS.items():
        entry(tmp_path, name, code, widths=(64, 32, 10), trained=name != "labelreader")
    entry(tmp_path, "other-event", event="digits-smallest")
    (tmp_path / "entries" / "junk.zip").write_bytes(b"not a zip")
    scores = score_entries(tmp_path / "entries", "digits-fastest", ROOT / "tinytorch", LIMITS, jobs=2, repeats=3)
    return {score.name: score for score in scores}, escape, tmp_path


@pytest.mark.slow
@needs_sandbox
def test_honest_entries_are_scored_with_their_weights_accuracy(scored):
    from tito.grading.olympics import classes_of, digits_data

    scores, _, tmp_path = scored
    honest = scores["honest"]
    assert honest.valid, honest.reason
    _, images, labels = digits_data()
    weights = read_entry(tmp_path / "entries" / "honest-digits-fastest.zip").weights
    assert honest.accuracy == pytest.approx(np.mean(classes_of((64, 64, 10), weights, images) == labels))
    assert honest.accuracy >= 0.9, "the fitted MLP is far above chance"
    assert 0.2 < honest.speed_ratio < 5 and honest.entry_ms > 0 and honest.reference_ms > 0
    assert scores["small"].valid and scores["small"].accuracy < 0.5, "random weights: valid, but far below the floor"


@pytest.mark.slow
@needs_sandbox
def test_a_patched_clock_gains_nothing(scored):
    scores, _, _ = scored
    patched = scores["clockpatcher"]
    assert patched.valid, patched.reason
    assert patched.speed_ratio > 3 * scores["honest"].speed_ratio, (patched, scores["honest"])
    assert patched.entry_ms > 359 * 2 * 0.9, "tito sees the 2 ms of CPU the entry spends on each query"


@pytest.mark.slow
@needs_sandbox
def test_answering_the_labels_is_invalid(scored):
    scores, _, _ = scored
    cheat = scores["labelreader"]
    assert not cheat.valid and "not its model's" in cheat.reason, cheat


@pytest.mark.slow
@needs_sandbox
def test_starting_another_process_is_invalid(scored):
    scores, _, _ = scored
    assert not scores["forker"].valid and "started another process" in scores["forker"].reason, scores["forker"]


@pytest.mark.slow
@needs_sandbox
def test_fake_prints_and_answers_make_an_entry_invalid(scored):
    scores, _, _ = scored
    faker = scores["faker"]
    assert not faker.valid, faker
    assert not any("100%" in str(value) for value in vars(faker).values())


@pytest.mark.slow
@needs_sandbox
def test_an_entry_cannot_write_outside_its_sandbox(scored):
    scores, escape, tmp_path = scored
    assert scores["writer"].valid, scores["writer"].reason
    assert not escape.exists() and not (ROOT / "escaped").exists()
    assert not list(tmp_path.rglob("escaped.py"))


@pytest.mark.slow
@needs_sandbox
def test_other_events_and_broken_zips_are_listed_invalid(scored):
    scores, _, _ = scored
    assert "entered for digits-smallest" in scores["other-event"].reason
    assert "not a zip file" in scores["junk"].reason


# ---------------------------------------------------------------------------------- the page in Chromium

def hostile_scores() -> list[Score]:
    """Entries whose texts carry script, as if a name or a reason had slipped past the checks."""
    from hostile_outputs import MARKER, BAIT_PORT

    def script(name: str) -> str:
        return f"window.{MARKER}_{name} = 1; fetch('http://127.0.0.1:{BAIT_PORT}/{name}')"

    return [Score(f"<script>{script('name')}</script>", "a.zip", True, accuracy=0.99, speed_ratio=1.0),
            Score(f"<img src=x onerror=\"{script('onerror')}\">", "b.zip", True, accuracy=0.99, speed_ratio=2.0),
            Score("c", f"<iframe src=\"javascript:{script('iframe')}\"></iframe>.zip", False,
                  reason=f"<a href=\"javascript:{script('link')}\">x</a><img src=\"http://127.0.0.1:{BAIT_PORT}/img\">")]


def open_in_chromium(page_path: Path, scratch: Path) -> tuple[list[str], list[str], str]:
    """(window markers set, requests that left the page, the visible text) of the page in headless Chromium."""
    from hostile_outputs import MARKER
    from test_browser_hostile import watched_page

    with watched_page(scratch, page_path.as_uri()) as (page, foreign):
        page.goto(page_path.as_uri())
        page.wait_for_load_state("load")
        page.wait_for_timeout(1000)
        ran = page.evaluate(f"Object.keys(window).filter(name => name.startsWith('{MARKER}'))")
        return ran, foreign, page.inner_text("body")


@pytest.mark.slow
def test_the_leaderboard_page_shows_hostile_text_and_runs_none_of_it(tmp_path):
    from tito.grading.olympics import write_leaderboard

    _, page_path = write_leaderboard(tmp_path / "board", "digits-fastest", hostile_scores(), {"cpu": "<b>x</b>"}, "now")
    ran, foreign, text = open_in_chromium(page_path, tmp_path)
    assert ran == [] and foreign == [], (ran, foreign)
    assert "<script>window.titoPwned_name" in text and "onerror=" in text, "the names are shown as text"


@pytest.mark.slow
def test_the_pages_policy_stops_script_that_escaping_missed(tmp_path):
    from hostile_outputs import MARKER, BAIT_PORT
    from tito.grading.olympics import leaderboard_html

    page = leaderboard_html("digits-fastest", [], {}, "now")
    planted = (f"<script>window.{MARKER}_planted = 1</script><img src=\"http://127.0.0.1:{BAIT_PORT}/planted\">"
               f"<img src=x onerror=\"window.{MARKER}_handler = 1\">")
    page_path = tmp_path / "planted.html"
    page_path.write_text(page.replace("<h1>", planted + "<h1>"), encoding="utf-8")
    ran, foreign, _ = open_in_chromium(page_path, tmp_path)
    assert ran == [] and foreign == [], (ran, foreign)


@pytest.mark.slow
@needs_sandbox
def test_tito_olympics_score_writes_the_leaderboard(tmp_path):
    entry(tmp_path, "dee", trained=True, widths=(64, 64, 10))
    board = tmp_path / "board"
    done = run_tito("olympics", "score", "digits-fastest", str(tmp_path / "entries"), "--out", str(board),
                    "--repeats", "3", cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 of 1 entries valid" in done.stdout
    table = list(csv.reader(io.StringIO((board / "digits-fastest.csv").read_text())))
    assert table[1][1] == "dee" and float(table[1][COLUMNS.index("speed ratio")]) > 0
    assert "<td>dee</td>" in (board / "digits-fastest.html").read_text()
    refused = run_tito("olympics", "score", "digits-fastest", str(tmp_path / "entries"), "--repeats", "1", cwd=ROOT)
    assert refused.returncode == 2 and "at least 3 timed rounds" in refused.stdout + refused.stderr


# ------------------------------------------------------------------------------------------- the GPT event

def gpt_checkpoint(tmp_path: Path, width=16, layers=1) -> Path:
    """A checkpoint as `tito milestone gpt` writes it: a character GPT and its shape and characters in `extra`."""
    from tito.milestones.gpt import read_corpus
    from tinytorch.core.training import save_checkpoint
    from tinytorch.core.transformer import GPT, CharTokenizer

    characters = CharTokenizer(read_corpus(None)[0]).characters
    model = GPT(len(characters), 16, d_model=width, num_heads=2, num_layers=layers, rng=np.random.default_rng(1))
    shape = {"tokenizer": "char", "characters": characters, "layers": layers, "heads": 2, "width": width, "context": 16}
    return save_checkpoint(tmp_path / f"gpt-{width}.npz", model, extra=shape)


PEEKER = """
import numpy as _np
from tinytorch.core.tensor import Tensor as _Tensor
_forward = GPT.forward
def _peek(self, ids):
    logits = _forward(self, ids)
    ids = _np.asarray(ids.numpy() if hasattr(ids, "numpy") else ids)
    cheat = _np.full(logits.shape, -1e9, dtype=_np.float32)
    for row in range(ids.shape[0]):
        for position in range(ids.shape[1] - 1):
            cheat[row, position, ids[row, position + 1]] = 1e9  # the next character, read from the input
    return _Tensor(cheat)
GPT.forward = _peek
"""


def test_a_gpt_entry_needs_a_milestone_checkpoint(tmp_path):
    packed = pack_entry("gpt-bpc", "gia", gpt_checkpoint(tmp_path), ROOT / "tinytorch", tmp_path / "zips")
    checked = read_entry(packed)
    assert checked.gpt["width"] == 16 and checked.widths == () and checked.parameters > 0
    plain = tmp_path / "plain.npz"
    np.savez(plain, **mlp_weights())
    with pytest.raises(TitoError, match="not a checkpoint of `tito milestone gpt`"):
        pack_entry("gpt-bpc", "gia", plain, ROOT / "tinytorch", tmp_path / "zips")

    def bigger(contents):
        manifest = json.loads(contents["manifest.json"])
        manifest["gpt"]["width"] = 32
        contents["manifest.json"] = json.dumps(manifest).encode()

    with pytest.raises(TitoError, match="not those of the manifest's GPT"):
        read_entry(rewritten(packed, tmp_path, bigger))


@pytest.mark.slow
@needs_sandbox
def test_gpt_entries_are_scored_from_their_weights_and_a_peeking_package_is_invalid(tmp_path):
    from tinytorch.core.capstone import language_benchmark
    from tinytorch.core.transformer import GPT, CharTokenizer
    from tito.milestones.gpt import held_out_text

    checkpoint = gpt_checkpoint(tmp_path)
    pack_entry("gpt-bpc", "honest", checkpoint, ROOT / "tinytorch", tmp_path / "entries")
    peeking = tmp_path / "peeking" / "tinytorch"
    shutil.copytree(ROOT / "tinytorch", peeking, ignore=shutil.ignore_patterns("__pycache__"))
    with open(peeking / "core" / "transformer.py", "a", encoding="utf-8") as transformer:
        transformer.write(PEEKER)
    pack_entry("gpt-bpc", "peeker", checkpoint, peeking, tmp_path / "entries")
    scores = {s.name: s for s in score_entries(tmp_path / "entries", "gpt-bpc", ROOT / "tinytorch", LIMITS, jobs=2,
                                                    validation_text=held_out_text())}
    honest = scores["honest"]
    assert honest.valid, honest.reason
    entry_weights = read_entry(tmp_path / "entries" / "honest-gpt-bpc.zip")
    model = GPT(len(entry_weights.gpt["characters"]), 16, d_model=16, num_heads=2, num_layers=1)
    model.load_state_dict(entry_weights.weights)
    tokenizer = CharTokenizer(entry_weights.gpt["characters"])
    expected = language_benchmark("honest", model, np.array(tokenizer.encode(held_out_text())))
    assert honest.bits_per_character == pytest.approx(expected.bits_per_character, rel=1e-6)
    assert honest.bits_per_character == pytest.approx(np.log2(len(tokenizer.characters)), rel=0.05), "untrained: near uniform"
    assert not scores["peeker"].valid and "not its model's" in scores["peeker"].reason, scores["peeker"]
    placed = standings("gpt-bpc", list(scores.values()))
    assert [(place, s.name) for place, s in placed] == [("1", "honest"), ("-", "peeker")]
