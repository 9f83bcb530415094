"""The grading sandbox, kernel and judge on small notebooks: what a kernel can see and do, and what a test must
do to count as passed. Real bubblewrap, real kernels, the real judge."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, needs_sandbox, passable
from tito.grading.sandbox import Limits, make_grader_folder, run_notebook

pytestmark = [pytest.mark.slow, needs_sandbox]


def _locked(grade_id: str, source: str):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "locked": True, "points": 1,
                                 "solution": False, "schema_version": 3}
    return cell


def _run(tmp_path, cells, limits=Limits(cell_seconds=10, notebook_seconds=60)):
    notebook = nbformat.v4.new_notebook(cells=cells)
    reference = {"tinytorch/__init__.py": ROOT / "tinytorch/__init__.py",
                 "tinytorch/core/__init__.py": ROOT / "tinytorch/core/__init__.py",
                 "tinytorch/core/tensor.py": ROOT / "tinytorch/core/tensor.py"}
    tests = {cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in cells if "nbgrader" in cell.metadata}
    (tmp_path / "tests.json").write_text(json.dumps(tests))
    grader = make_grader_folder(tmp_path / "grader", reference)
    return run_notebook(notebook, grader, tmp_path / "tests.json", limits)


def _printed(run) -> str:
    return "".join(output.get("text", "") for cell in run.notebook.cells for output in cell.get("outputs", []))


def test_a_kernel_sees_only_its_prerequisites_and_no_network(tmp_path):
    probe = nbformat.v4.new_code_cell(
        "import os, socket\n"
        "def can(action):\n"
        "    try:\n        action()\n        return 'yes'\n    except Exception:\n        return 'no'\n"
        f"print('repo', can(lambda: os.listdir({str(ROOT)!r})))\n"
        "print('autograd', can(lambda: __import__('tinytorch.core.autograd')))\n"
        "print('tensor', can(lambda: __import__('tinytorch.core.tensor')))\n"
        "print('network', can(lambda: socket.create_connection(('127.0.0.1', 22), timeout=1)))\n"
        "print('write', can(lambda: open('/usr/tito-probe', 'w')))\n"
        "print('root', os.getuid() == 0)\n")
    run = _run(tmp_path, [probe])
    printed = _printed(run)
    for expected in ("repo no", "autograd no", "tensor yes", "network no", "write no"):
        assert expected in printed, printed


def test_a_test_counts_only_when_the_judge_ran_it_to_its_end(tmp_path):
    """Tests run in the judge: what the student's cells do to NumPy, to names or to IPython cannot reach them."""
    cells = [
        _locked("helper", "def check(value):\n    assert value == 2, 'check'\n"),
        nbformat.v4.new_code_cell("import numpy as np\nnp.allclose = lambda *a, **k: True\n"
                                  "def check(value):\n    return True\n"),
        _locked("t-numpy", "import numpy as np\nassert np.allclose(1, 2)\n"),
        _locked("t-helper", "check(3)\n"),
        nbformat.v4.new_code_cell("get_ipython().input_transformers_cleanup.append(lambda lines: [])\n"
                                  "get_ipython().showtraceback = lambda *a, **k: None\n"),
        _locked("t-fails", "assert 1 == 2\n"),
        _locked("t-passes", "assert 1 == 1\nimport sys\nprint('noise', file=sys.stderr)\n"),
    ]
    run = _run(tmp_path, cells)
    assert run.completed == {"helper": True, "t-numpy": False, "t-helper": False, "t-fails": False, "t-passes": True}
    assert run.stopped == ""


def test_a_loop_that_ignores_interrupts_is_stopped_and_its_processes_end(tmp_path):
    cells = [nbformat.v4.new_code_cell("import subprocess, sys\n"
                                       "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)  # left-behind'], "
                                       "start_new_session=True)\n"),
             nbformat.v4.new_code_cell("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"),
             _locked("after", "pass")]
    run = _run(tmp_path, cells, Limits(cell_seconds=3, notebook_seconds=30))
    assert "was stopped after 3 s" in run.stopped
    assert run.completed == {"after": False}
    left = subprocess.run(["pgrep", "-f", "left-behind"], capture_output=True, text=True).stdout
    assert left == "", "the process the submission started outlived its sandbox"


def test_processes_are_capped(tmp_path):
    fork = nbformat.v4.new_code_cell(
        "import os\ncount = 0\ntry:\n    for _ in range(500):\n        if os.fork() == 0:\n"
        "            import time; time.sleep(30); os._exit(0)\n        count += 1\nexcept OSError:\n    pass\n"
        "print('forked', count)\n")
    run = _run(tmp_path, [fork], Limits(cell_seconds=20, notebook_seconds=60, processes=32))
    assert int(_printed(run).split("forked ")[1].split()[0]) < 32


def test_output_is_capped(tmp_path):
    flood = nbformat.v4.new_code_cell("while True:\n    print('y' * 1000)")
    run = _run(tmp_path, [flood, _locked("after", "pass")], Limits(cell_seconds=20, notebook_seconds=60, output_kb=64))
    assert "64 KB" in run.stopped and run.completed == {"after": False}
    assert len(_printed(run)) < 100_000


def test_the_kernel_writes_only_to_its_own_sized_scratch(tmp_path):
    """Its working folder, HOME and TMPDIR are one private tmpfs of `scratch_mb`: full at that size, and the
    folder tito made for it (its connection file) is read-only inside."""
    probe = nbformat.v4.new_code_cell(
        "import os, tempfile\nprint('cwd', os.getcwd() == os.environ['HOME'] == tempfile.gettempdir())\n"
        "written = 0\ntry:\n    with open('fill', 'wb') as f:\n        while True:\n"
        "            f.write(b'x' * 2**20)\n            f.flush()\n            written += 2**20\n"
        "except OSError as error:\n    print('full', error.errno, written // 2**20)\n"
        "try:\n    open(os.path.join(os.environ['PYTHONPATH'], 'x'), 'w')\n"
        "except OSError:\n    print('grader read-only')\n"
        "print('grader holds', sorted(os.listdir(os.environ['PYTHONPATH'])))\n")
    run = _run(tmp_path, [probe, _locked("after", "pass")], Limits(cell_seconds=20, notebook_seconds=60, scratch_mb=8))
    printed = _printed(run)
    assert "cwd True" in printed and "grader read-only" in printed, printed
    assert "grader holds ['grading_kernel.py', 'grading_wire.py', 'tinytorch']" in printed, "no test in the sandbox"
    full = [line.split() for line in printed.splitlines() if line.startswith("full")]
    assert full and full[0][1] == "28" and int(full[0][2]) <= 8, printed  # ENOSPC, at most 8 MB
    assert run.completed == {"after": True}


def test_one_huge_message_is_counted_and_stops_the_run(tmp_path):
    """A single 5 MB display, past the 64 KB cap: the run stops at that cell, and the notebook keeps none of it."""
    huge = nbformat.v4.new_code_cell("from IPython.display import display\ndisplay({'text/plain': 'z' * 5_000_000}, raw=True)")
    run = _run(tmp_path, [huge, _locked("after", "print('after ran')")],
               Limits(cell_seconds=20, notebook_seconds=60, output_kb=64))
    shown = json.dumps(run.notebook)
    assert "z" * 70_000 not in shown and len(shown) < 200_000
    assert run.stopped.startswith("cell 1 printed more than the 64 KB") and run.completed == {"after": False}



LONG_RUN = """
import json, sys
from pathlib import Path
import nbformat
from tito.grading.sandbox import Limits, run_notebook
folder = Path(sys.argv[1])
notebook = nbformat.read(folder / "long.ipynb", as_version=4)
run = run_notebook(notebook, folder / "grader", folder / "tests.json", Limits(cell_seconds=60, notebook_seconds=120),
                   sandboxed=False, unprivileged=True)
print(json.dumps({"completed": run.completed, "stopped": run.stopped,
                  "printed": "".join(o.get("text", "") for c in run.notebook.cells for o in c.get("outputs", []))}))
"""


def test_two_titos_grading_at_once_never_share_a_user(tmp_path):
    """Another tito grades a long submission while this one grades a short one, both as the fallback's
    unprivileged user, whose processes are all killed when a run ends: each run leased a user of its own,
    so ending the short run leaves the long one running to its end."""
    started = tmp_path / "shared" / "started"
    started.parent.mkdir()
    started.parent.chmod(0o777)
    long_cells = [nbformat.v4.new_code_cell(f"open({str(started)!r}, 'w').write('yes')\nimport time\ntime.sleep(4)\nprint('long done')"),
                  _locked("t-long", "assert 1 == 1")]
    nbformat.write(nbformat.v4.new_notebook(cells=long_cells), tmp_path / "long.ipynb")
    (tmp_path / "tests.json").write_text(json.dumps({"t-long": "assert 1 == 1", "t-short": "assert 2 == 2"}))
    grader = make_grader_folder(tmp_path / "grader", {"tinytorch/__init__.py": ROOT / "tinytorch/__init__.py"})
    with passable([Path(sys.executable), grader, started.parent]):
        other = subprocess.Popen([sys.executable, "-c", LONG_RUN, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not started.exists() and other.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the other tito's kernel never started"
        short = run_notebook(nbformat.v4.new_notebook(cells=[_locked("t-short", "assert 2 == 2")]), grader,
                             tmp_path / "tests.json", Limits(cell_seconds=10, notebook_seconds=60),
                             sandboxed=False, unprivileged=True)
        out, _ = other.communicate(timeout=180)
    long = json.loads(out.strip().splitlines()[-1])
    assert short.completed == {"t-short": True}
    assert long["completed"] == {"t-long": True} and "long done" in long["printed"], long
