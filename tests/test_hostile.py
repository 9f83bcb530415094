"""Hostile submissions against `tito nbgrader autograde`: real nbgrader, real kernels, the real sandbox.

One course is released once (module 01, whose reference the sandbox must not offer); an honest student hands
in the solution, and one student per attack hands in the release (nothing done) or the solution with the
attack added. Each test checks the exact score the attack must get, and that nobody else's grade or file moved.
Attacks on the verdict itself (forging a pass through the kernel, the judge's socket or lying objects) are in
tests/test_forgery.py.
"""
from __future__ import annotations

import copy
import hashlib
import html
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, copy_course, needs_sandbox
from tito.course import load_course
from tito.coursefolder import course_folder
from tito.grading.autograde import autograde
from tito.grading.feedback import feedback
from tito.grading.release import all_solution_lines, release

pytestmark = [pytest.mark.slow, needs_sandbox]

MODULE = "01_tensor"
CELL_SECONDS = 6
POINTS = {"test-tensor-creation": 2, "test-tensor-arithmetic": 3, "test-tensor-matmul": 2,
          "test-tensor-reduce-reshape": 2, "test-tensor-constructors": 1}
FIRST_TWO = POINTS["test-tensor-creation"] + POINTS["test-tensor-arithmetic"]
CANARY = Path("/tmp/tito-hostile-canary")
SCRATCH_MB = 48
# Each fills its private scratch file system until it is full, 32 MB a file (the file size limit is 64 MB).
FILL_SCRATCH = ("import os\nwritten = 0\ntry:\n    for n in range(1000):\n        with open(f'fill{n}', 'wb') as f:\n"
                "            for _ in range(32):\n                f.write(b'x' * 2**20)\n                written += 2**20\n"
                "except OSError as error:\n    print('full', error.errno)\nprint(written)")
# Floods that grow what a frontend keeps: one display shown 1000 times, then updated (every copy changes), and a
# widget whose state gains a new 100 kB key with each message (paced, so that a reader keeps up).
UPDATE_FLOOD = ("from IPython.display import display, update_display\nfor _ in range(1000):\n"
                "    display('x', display_id='flood')\nwhile True:\n    update_display('x' * 100000, display_id='flood')")
WIDGET_FLOOD = ("import time\nfrom ipykernel.comm import Comm\nc = Comm(target_name='jupyter.widget', data={'state': {\n"
                "    '_model_module': '@jupyter-widgets/base', '_model_name': 'DOMWidgetModel',\n"
                "    '_model_module_version': '2.0.0'}})\nn = 0\nwhile True:\n"
                "    n += 1\n    c.send({'state': {f'key{n}': 'x' * 100000}})\n    time.sleep(0.001)")
EMPTY_WIDGET = "from ipykernel.comm import Comm\nComm(target_name='jupyter.widget', data={'state': {}})"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = copy_course(tmp_path_factory.mktemp("hostile") / "repo")
    settings = root / "settings.ini"
    text = re.sub(r"modules =\n(    .*\n)+", "modules =\n    01_tensor\n    02_activations\n", settings.read_text())
    text = re.sub(r"timeout = \d+", f"timeout = {CELL_SECONDS}", text, count=1)
    text = re.sub(r"notebook_seconds = \d+", "notebook_seconds = 90", text)
    text = re.sub(r"output_kb = \d+", "output_kb = 256", text)
    text = re.sub(r"scratch_mb = \d+", f"scratch_mb = {SCRATCH_MB}", text)
    settings.write_text(re.sub(r"memory_mb = \d+", "memory_mb = 1024", text))
    loaded = load_course(root)
    release(loaded, loaded.module(MODULE))
    return loaded


def _cells(course):
    folder = course_folder(course)
    module = course.module(MODULE)
    return (nbformat.read(folder.source(module), as_version=4), nbformat.read(folder.release(module), as_version=4))


def _index(notebook, grade_id) -> int:
    return next(i for i, cell in enumerate(notebook.cells) if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _after(notebook, grade_id, source):
    """`notebook` with a plain code cell holding `source` right after the cell `grade_id`."""
    changed = copy.deepcopy(notebook)
    changed.cells.insert(_index(changed, grade_id) + 1, nbformat.v4.new_code_cell(source))
    return changed


def _in_first_solution(notebook, source):
    """`notebook` with `source` at the top of its first solution cell (where a student writes)."""
    changed = copy.deepcopy(notebook)
    cell = next(c for c in changed.cells if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code")
    cell.source = source + "\n" + cell.source
    return changed


def _attacks(course) -> dict[str, tuple[object, int]]:
    """student -> (what they hand in, the test points it must get)."""
    source, released = _cells(course)
    folder = course_folder(course)
    repository = str(course.root)
    tensor_dev = course.module(MODULE).dev_file
    secret = next(iter(all_solution_lines(course)))
    stderr_debug = copy.deepcopy(source)
    for cell in stderr_debug.cells:
        if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code":
            cell.source = re.sub(r"^(\s*)(### BEGIN SOLUTION.*)$", r"\1\2\n\1import sys; print('debug', file=sys.stderr)",
                                 cell.source, flags=re.M)
    duplicated = copy.deepcopy(source)
    solution = next(i for i, c in enumerate(duplicated.cells) if c.metadata.get("nbgrader", {}).get("solution"))
    duplicated.cells.insert(solution + 1, copy.deepcopy(duplicated.cells[solution]))
    test = _index(duplicated, "test-tensor-matmul")
    duplicated.cells.insert(test + 1, copy.deepcopy(duplicated.cells[test]))
    return {
        "honest": (source, 10),
        "idle": (released, 0),
        "importer": (_in_first_solution(released, "from tinytorch.core.tensor import Tensor"), 0),
        "reader": (_in_first_solution(released, f"exec(open({str(tensor_dev)!r}).read())"), 0),
        "course_reader": (_in_first_solution(released, "import json; cells = json.load(open("
                                              f"{str(folder.source(course.module(MODULE)))!r}))['cells']\n"
                                              "exec(''.join(c['source'] for c in cells if c['cell_type'] == 'code' "
                                              "and '#| export' in ''.join(c['source'])))"), 0),
        "transformer": (_in_first_solution(released, "get_ipython().input_transformers_cleanup.append(lambda lines: [])"), 0),
        "silencer": (_in_first_solution(released, "get_ipython().showtraceback = lambda *a, **k: None\n"
                                                  "import sys; sys.excepthook = lambda *a: None"), 0),
        "patcher": (_in_first_solution(released, "import builtins, numpy as np\nnp.allclose = lambda *a, **k: True\n"
                                                 "builtins.NotImplementedError = type('Quiet', (Exception,), {})"), 0),
        "packer": (released, 0),  # hands in a numpy.py beside the notebook (see test_handed_in_files_are_never_used)
        "vandal": (_in_first_solution(released, "import pathlib\n"
                                                f"for p in pathlib.Path({repository!r}).rglob('*'):\n"
                                                "    try: p.write_text('')\n    except OSError: pass\n"
                                                f"open({str(folder.gradebook)!r}, 'w').write('gone')"), 0),
        "forker": (_in_first_solution(released, "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', "
                                                f"{f'import time; time.sleep(4); open({str(CANARY)!r}, {chr(34)}w{chr(34)}).write(1)'!r}"
                                                "], start_new_session=True)"), 0),
        "leaker": (_after(released, "test-tensor-matmul", f"print({secret!r})"), 0),
        "stderr": (stderr_debug, 10),
        "duplicate": (duplicated, 10),
        "exiter": (_after(source, "test-tensor-arithmetic", "exit()"), FIRST_TWO),
        "crasher": (_after(source, "test-tensor-arithmetic", "import os; os._exit(3)"), FIRST_TWO),
        "looper": (_after(source, "test-tensor-arithmetic",
                          "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"), FIRST_TWO),
        # flushed, so that the flood leaves the kernel (unflushed, it fills the kernel's own memory first)
        "flooder": (_after(source, "test-tensor-arithmetic", "while True:\n    print('x' * 10000, flush=True)"), FIRST_TWO),
        "hog": (_after(source, "test-tensor-arithmetic", "import numpy as np\nkept = []\n"
                       "try:\n    while True:\n        kept.append(np.ones(2**24))\nexcept MemoryError:\n"
                       "    size = len(kept) * 2**24 * 8\n    del kept\nprint(size)"), 10),
        "symlinker": (None, 0),  # a symbolic link to the honest notebook
        "filler": (_after(source, "test-tensor-arithmetic", FILL_SCRATCH), 10),
        "updater": (_after(source, "test-tensor-arithmetic", UPDATE_FLOOD), FIRST_TWO),
        "widgeteer": (_after(source, "test-tensor-arithmetic", WIDGET_FLOOD), FIRST_TWO),
        "widget": (_after(source, "test-tensor-arithmetic", EMPTY_WIDGET), 10),
        "nester": (_nested(released, 200), 0),
        "deep_nester": (_nested(released, 100000), 0),
        "saver": (_with_saved_output(source, 25 * 2**20), 10),
        "chatter": (_after(source, "test-tensor-arithmetic", "print('hello\\n' * 1666, end='')\nprint('hello')"), 10),
    }


def _nested(notebook, depth: int) -> str:
    """`notebook` as JSON text with a list nested `depth` deep in its first cell's metadata."""
    changed = copy.deepcopy(notebook)
    changed.cells[0].metadata["deep"] = "DEEP"
    return nbformat.writes(changed).replace('"DEEP"', "[" * depth + "]" * depth)


def _with_saved_output(notebook, size: int):
    """`notebook` with `size` characters of saved output in its first code cell (Jupyter keeps what ran)."""
    changed = copy.deepcopy(notebook)
    cell = next(c for c in changed.cells if c.cell_type == "code")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="y" * size)]
    return changed


@pytest.fixture(scope="module")
def graded(course):
    folder = course_folder(course)
    module = course.module(MODULE)
    attacks = _attacks(course)
    _hand_in_all(folder, module, attacks)
    (folder.submitted("packer", module).parent / "numpy.py").write_text("allclose = lambda *a, **k: True\n")
    folder.submitted("symlinker", module).symlink_to(folder.submitted("honest", module))
    CANARY.unlink(missing_ok=True)
    return (attacks, *_graded_honest_first(course, module, attacks))


def _hand_in_all(folder, module, attacks: dict) -> None:
    """Each attacker's submission: a notebook, or JSON text; None hands in nothing (the caller makes its file)."""
    for student, (notebook, _) in attacks.items():
        path = folder.submitted(student, module)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(notebook, str):
            path.write_text(notebook)
        elif notebook is not None:
            nbformat.write(notebook, path)


def _graded_honest_first(course, module, attacks: dict) -> tuple[dict, dict]:
    """The honest student graded alone, the course folder's fingerprint then, and every attacker graded after it,
    two at a time: (grades, fingerprint)."""
    folder = course_folder(course)
    honest, = autograde(course, module, ["honest"])
    before = _fingerprint(folder, exclude=set(attacks) - {"honest"})
    others = [student for student in attacks if student != "honest"]
    grades = {grade.student: grade for grade in autograde(course, module, others, jobs=2)}
    grades["honest"] = honest
    return grades, before


def _fingerprint(folder: Path, exclude: set[str]) -> dict[str, str]:
    """A hash of every file of the course folder but the attackers' own results, and the honest grade rows."""
    files = {}
    for path in sorted(folder.root.rglob("*")):
        parts = path.relative_to(folder.root).parts
        if path.is_file() and not path.is_symlink() and parts[0] not in ("logs", "gradebook.db", "gradebook.db.bak") \
                and not (len(parts) > 1 and parts[1] in exclude):
            files[str(path.relative_to(folder.root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


@pytest.mark.parametrize("student", [
    "honest", "idle", "importer", "reader", "course_reader", "transformer", "silencer", "patcher", "packer",
    "vandal", "forker", "leaker", "stderr", "duplicate", "exiter", "crasher", "looper", "flooder", "hog",
    "symlinker", "filler", "updater", "widgeteer", "widget", "nester", "deep_nester", "saver", "chatter"])
def test_each_submission_gets_exactly_its_honest_points(graded, student):
    attacks, grades, _ = graded
    grade = grades[student]
    assert grade.graded, f"{student} was not graded: {grade.error}"
    assert grade.score == attacks[student][1], f"{student}: {grade.score} points, notes {grade.notes}"


@pytest.mark.parametrize("student, reason", [
    ("exiter", "kernel died"), ("crasher", "kernel died"), ("looper", "was stopped after"),
    ("symlinker", "symbolic link"), ("packer", "numpy.py"), ("nester", "levels deep"), ("deep_nester", "levels deep")])
def test_a_stopped_submission_says_why(graded, student, reason):
    _, grades, _ = graded
    assert any(reason in note for note in grades[student].notes), grades[student].notes
    assert grades[student].graded


def test_a_flood_of_output_is_stopped(graded):
    """tito stops a kernel at the output cap; a kernel printing faster than tito reads may first run out of
    memory for its unsent output, or (on a busy machine, its output thread starved) reach the cell's time limit.
    Either way the notebook stops there, with its reason."""
    _, grades, _ = graded
    notes = grades["flooder"].notes
    assert any(reason in note for note in notes for reason in ("of output", "memory limit", "was stopped after")), notes
    assert grades["flooder"].graded


def test_a_long_printout_is_shortened_on_the_feedback_saying_so(graded, course):
    source, _ = _cells(course)
    chatty_cell = f"cell {_index(source, 'test-tensor-arithmetic') + 2}"
    assert f"shortened the printed text of {chatty_cell} to 4000 characters" in graded[1]["chatter"].notes
    printed = "".join(_printed_by(course, "chatter"))
    assert "[tito: 6002 more characters of printed text were cut" in printed and "hello\n" * 600 in printed


def test_nobody_elses_grade_or_file_changes(graded, course):
    attacks, grades, before = graded
    folder = course_folder(course)
    after = _fingerprint(folder, exclude=set(attacks) - {"honest"})
    assert after == before
    assert grades["honest"].score == 10
    from tito.grading.autograde import read_grade
    assert read_grade(course, course.module(MODULE), "honest").score == 10
    assert (ROOT / "modules" / MODULE / "tensor_dev.py").stat().st_size > 0


def test_no_process_outlives_grading(graded):
    import time

    time.sleep(6)  # the forker's child would have written by now
    assert not CANARY.exists()
    leftover = subprocess.run(["ps", "-eo", "uid="], capture_output=True, text=True).stdout.split()
    assert not [uid for uid in leftover if int(uid) >= 61000], "a sandboxed process is still running"


def test_handed_in_files_are_never_used(graded):
    _, grades, _ = graded
    assert grades["packer"].score == 0, "a numpy.py handed in beside the notebook was imported"


def test_no_solution_line_reaches_feedback(graded, course):
    module = course.module(MODULE)
    students = ["leaker", "honest", "idle", "reader"]
    pages = feedback(course, module, students)
    secrets = all_solution_lines(course)
    assert any("cut the output" in note for note in graded[1]["leaker"].notes)
    for page in pages:
        assert page.path is not None, page.error
        notebook = nbformat.read(course_folder(course).autograded(page.student, module), as_version=4)
        shown = [line.strip() for cell in notebook.cells for output in cell.get("outputs", [])
                 for text in [output.get("text", ""), *output.get("data", {}).values()]
                 for line in str(text).splitlines()]
        assert not [line for line in shown if line in secrets], page.student
        text = html.unescape(re.sub(r"<[^>]+>", "", page.path.read_text()))
        if page.student != "honest":  # the honest student's page shows their own code, which is the solution
            assert not [line for line in text.splitlines() if line.strip() in secrets], page.student


def test_memory_is_capped(graded, course):
    notebook = nbformat.read(course_folder(course).autograded("hog", course.module(MODULE)), as_version=4)
    printed = [output.text for cell in notebook.cells for output in cell.get("outputs", []) if output.get("name") == "stdout"]
    sizes = [int(text) for text in printed if text.strip().isdigit()]
    assert sizes and sizes[0] <= 1024 * 2**20, sizes


def test_grading_without_bubblewrap_is_refused_unless_asked(course, monkeypatch):
    from tito.errors import TitoError

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(TitoError, match="--no-sandbox"):
        autograde(course, course.module(MODULE), ["honest"])
    assert os.environ["PATH"] == "/nonexistent"


def _printed_by(course, student) -> list[str]:
    notebook = nbformat.read(course_folder(course).autograded(student, course.module(MODULE)), as_version=4)
    return [output.text for cell in notebook.cells for output in cell.get("outputs", []) if output.get("name") == "stdout"]


def test_a_full_scratch_disk_stops_only_its_own_writes(graded, course):
    """The filler's writes end at its own scratch size with 'no space left' (errno 28), the real disk never saw
    them, and (test_nobody_elses_grade_or_file_changes) its neighbours of the same run were graded as before."""
    printed = "".join(_printed_by(course, "filler"))
    full = re.search(r"full 28\n(\d+)", printed)
    assert full, printed
    written = int(full.group(1))
    assert 0 < written <= SCRATCH_MB * 2**20, written
    assert not list(Path(tempfile.gettempdir()).glob("tito-sandbox-*/**/fill0"))


@pytest.mark.parametrize("student", ["updater", "widgeteer"])
def test_a_flood_through_any_message_is_stopped_at_its_own_cell(graded, course, student):
    source, _ = _cells(course)
    flooding_cell = f"cell {_index(source, 'test-tensor-arithmetic') + 2}"
    notes = graded[1][student].notes
    assert any(note.startswith(f"{flooding_cell} printed more than") for note in notes), notes
    assert course_folder(course).autograded(student, course.module(MODULE)).stat().st_size < 2**20


def test_tito_stays_small_while_submissions_flood(graded, course):
    """`tito nbgrader autograde` itself, on two floods at once: its peak resident memory, read from /proc."""
    tito = Path(sys.executable).with_name("tito")
    command = [str(tito), "nbgrader", "autograde", MODULE, "--student", "updater", "--student", "widgeteer", "--jobs", "2"]
    process = subprocess.Popen(command, cwd=course.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak_kb = 0
    while process.poll() is None:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
            peak_kb = max(peak_kb, int(re.search(r"VmHWM:\s+(\d+)", status).group(1)))
        except (OSError, AttributeError):  # it ended while we looked
            pass
        time.sleep(0.05)
    output = process.stdout.read()
    assert process.returncode == 0, output
    print(f"tito peaked at {peak_kb // 1024} MB")  # shown with -rP
    assert 0 < peak_kb < 300 * 1024, f"tito peaked at {peak_kb // 1024} MB"
    from tito.grading.autograde import read_grade
    for student in ("updater", "widgeteer"):
        assert read_grade(course, course.module(MODULE), student).score == FIRST_TWO


def test_the_kernel_keyring_keeps_nothing_for_the_next_submission_as_the_same_user(course):
    """Two submissions graded one after the other (so as the same user, the first free one): what the first puts
    in its user keyring, the second cannot find. Both keep their points."""
    folder = course_folder(course)
    module = course.module(MODULE)
    source, _ = _cells(course)
    keyring = "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
    keeper = keyring + "print('stored', libc.syscall(248, b'user', b'tito-probe', b'secret', 6, -4) > 0)"
    finder = keyring + "print('found', libc.syscall(249, b'user', b'tito-probe', None, 0) > 0)"
    for student, probe in (("keeper", keeper), ("finder", finder)):
        path = folder.submitted(student, module)
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(_after(source, "test-tensor-arithmetic", probe), path)
    grades = autograde(course, module, ["keeper", "finder"], jobs=1)
    assert [grade.score for grade in grades] == [10, 10], [grade.notes for grade in grades]
    assert "found False" in "".join(_printed_by(course, "finder"))


def test_more_kernels_than_cores_are_refused(course):
    from tito.errors import TitoError

    cores = len(os.sched_getaffinity(0))
    with pytest.raises(TitoError, match=f"--jobs {cores + 1} is more than this machine's {cores} cores"):
        autograde(course, course.module(MODULE), ["honest"], jobs=cores + 1)


def test_no_line_of_an_earlier_module_reaches_feedback_in_any_form(course):
    """A module 02 submission prints the reference tensor.py (module 01's solution, in its sandbox) with line
    numbers and '| ', and as a repr: its autograded notebook and feedback page show no solution line of any
    module, normalized as tito/leaks.py does, and the page says what was cut."""
    from tito.leaks import normalized_secrets, shows_secret

    module = course.module("02_activations")
    release(course, module)
    folder = course_folder(course)
    source = nbformat.read(folder.source(module), as_version=4)
    printer = _in_first_solution(source, "import tinytorch.core.tensor as reference\n"
                                         "text = open(reference.__file__).read()\n"
                                         "for number, line in enumerate(text.splitlines()):\n"
                                         "    print(f'{number:4} | {line}')\nprint(repr(text))")
    path = folder.submitted("printer", module)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(printer, path)
    grade, = autograde(course, module, ["printer"])
    assert grade.score == grade.max_score, grade.notes
    assert any("showed a line of a lesson's solution" in note for note in grade.notes), grade.notes
    secrets = normalized_secrets(all_solution_lines(course))
    page, = feedback(course, module, ["printer"])
    notebook = nbformat.read(folder.autograded("printer", module), as_version=4)
    shown = [str(text) for cell in notebook.cells for output in cell.get("outputs", [])
             for text in [output.get("text", ""), *output.get("data", {}).values()]]
    assert not [text for text in shown if shows_secret(text, secrets)]
    text = html.unescape(re.sub(r"<[^>]+>", "", page.path.read_text()))
    own_code = {line for cell in printer.cells for line in cell.source.splitlines()}
    assert not [line for line in text.splitlines() if line not in own_code and shows_secret(line, secrets)]
    assert "showed a line of a lesson's solution and was cut" in text
