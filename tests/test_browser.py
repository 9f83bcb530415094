"""A student's JupyterLab in a real browser: `tito lab` on a workspace, driven by headless Chromium (Playwright).

Uses Debian's chromium (/usr/bin/chromium) with a fresh profile, never a browser Playwright downloads. JupyterLab
listens on a free port of 127.0.0.1 with a token and keeps its settings in a temporary folder. Screenshots go to
a temporary folder; their paths are printed (`pytest -s` or `-rA` shows them).
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, TITO, run_tito
from student_helpers import MODULES, small_course, write_solutions
from tito.notebook import read_notebook

# Every test waits for a warmed-up browser and JupyterLab (see `warmed`).
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("warmed")]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ERROR_OUTPUT = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
# An exception's output; a stderr stream (a library's warning) shares the mime type but has no traceback.
TRACEBACK = f"{ERROR_OUTPUT}:has-text('Traceback')"
# Seconds the first start of JupyterLab, Chromium and a kernel may take: on a fresh machine it took minutes.
COLD_START = 600


def sync_playwright():
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    return pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").sync_playwright


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory) -> dict[str, Path]:
    """An untouched workspace, and one where the student wrote modules 01 and 05 and exported them."""
    sync_playwright()  # skip before spending time on a course when there is no browser
    root = tmp_path_factory.mktemp("browser")
    course = small_course(root / "repo")
    fresh = root / "fresh"
    made = run_tito("student", "init", str(fresh), cwd=course)
    assert made.returncode == 0, made.stdout + made.stderr
    done = root / "done"
    shutil.copytree(fresh, done)
    for module in MODULES:
        write_solutions(done, module, course)
    exported = run_tito("export", *MODULES, cwd=done)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    return {"fresh": fresh, "done": done}


@pytest.fixture(scope="module")
def warmed(workspaces, tmp_path_factory) -> None:
    """Run a lesson once in JupyterLab and Chromium with a generous wait, so no test's own wait pays for a cold
    start: right after Chromium was installed, the first run of these tests took 171 s and one timed out (fonts
    cached, JupyterLab's first start, a first kernel: the cause was not pinned down, so the whole path is warmed)."""
    scratch = tmp_path_factory.mktemp("warm-up")
    workspace = shutil.copytree(workspaces["fresh"], scratch / "workspace")
    with jupyterlab(workspace, scratch, "01_tensor", seconds=COLD_START) as url, chromium_page(scratch) as page:
        run_all_cells(page, url, seconds=COLD_START)
        page.locator(TRACEBACK, has_text="NotImplementedError").first.wait_for(state="attached",
                                                                               timeout=COLD_START * 1000)


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def wait_until_answering(url: str, server: subprocess.Popen, log: Path, name: str, seconds: float) -> None:
    """Wait for `url` to answer; fail with the end of `log` if the server stops, or after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            assert server.poll() is None, f"{name} stopped:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"{name} did not answer within {seconds:.0f} s"
            time.sleep(0.3)


def stop_group(server: subprocess.Popen, seconds: float) -> None:
    """SIGTERM to the server's process group (started with start_new_session); SIGKILL after `seconds`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def jupyterlab(workspace: Path, scratch: Path, module: str, seconds: float = 90):
    """`tito lab MODULE` on the workspace, in its own process group; yields the notebook's URL; always shut down."""
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(scratch / "config"), JUPYTER_DATA_DIR=str(scratch / "data"),
               JUPYTER_RUNTIME_DIR=str(scratch / "runtime"))
    env.pop("PYTHONPATH", None)
    settings = scratch / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')  # and do not ask
    log = open(scratch / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-c", TITO, "lab", module, "--no-browser", "--port", str(port), "--",
         f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0"],
        cwd=workspace, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/api/status?token={token}", server, scratch / "jupyterlab.log",
                             "JupyterLab", seconds=seconds)
        short = module.split("_", 1)[1]
        yield f"http://127.0.0.1:{port}/lab/tree/modules/{module}/{short}.ipynb?token={token}"
    finally:
        stop_group(server, seconds=30)  # JupyterLab shuts its kernels down on SIGTERM
        log.close()


@contextlib.contextmanager
def chromium_page(scratch: Path):
    with sync_playwright()() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(scratch / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900})
        try:
            yield browser.new_page()
        finally:
            browser.close()


def open_notebook(page, url: str, seconds: float = 90) -> None:
    """Open the notebook and wait until its kernel is ready."""
    page.goto(url, timeout=seconds * 1000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=seconds * 1000)
    # The execution indicator reads "idle" before any kernel exists ("No Kernel"): wait for the kernel's own idle.
    page.locator(".jp-StatusBar-Widget", has_text="(ipykernel) | Idle").first.wait_for(timeout=seconds * 1000)


def run_all_cells(page, url: str, seconds: float = 90) -> None:
    """Open the notebook, wait for its kernel, then Run > Run All Cells, as a student would."""
    open_notebook(page, url, seconds)
    page.click("li.lm-MenuBar-item:has-text('Run')")
    page.click("li.lm-Menu-item:has-text('Run All Cells')")


def save(page, screenshots: Path, name: str) -> Path:
    path = screenshots / f"{name}.png"
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


def show(page, locator) -> None:
    """Scroll an output into view (JupyterLab may not lay out cells far from the viewport until then)."""
    locator.evaluate("element => element.scrollIntoView({block: 'center'})")
    page.wait_for_timeout(500)


def test_the_first_unfinished_cell_shows_not_implemented_error(workspaces, screenshots, tmp_path):
    with jupyterlab(workspaces["fresh"], tmp_path, "05_autograd") as url, chromium_page(tmp_path) as page:
        run_all_cells(page, url)
        error = page.locator(TRACEBACK, has_text="NotImplementedError").first
        error.wait_for(state="attached", timeout=120_000)
        show(page, error)
        text = " ".join(error.text_content().split())
        cell = page.locator(".jp-Notebook .jp-Cell", has=page.locator(TRACEBACK)).first
        source = cell.locator(".jp-InputArea-editor").text_content()
        tracebacks = [" ".join(output.split())[:200] for output in page.locator(TRACEBACK).all_text_contents()]
        save(page, screenshots, "05_autograd-unfinished")
    assert "NotImplementedError" in text and "05_autograd is not complete" in text, text
    assert "write your code in backward_by_hand() (cell 'autograd-warmup'" in text, text
    assert "test_unit_warmup" in source, "the first error is in the test right after the first unfinished cell"
    assert len(tracebacks) == 1, f"Run All Cells stops at the first error, but these cells raised: {tracebacks}"


def graded_test_ids(lesson: Path) -> list[str]:
    """The grade ids of a lesson's test cells, in order."""
    return [cell.metadata["nbgrader"]["grade_id"] for cell in read_notebook(lesson).cells
            if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade")]


def test_a_completed_workspace_shows_each_test_passing(workspaces, screenshots, tmp_path):
    tests = graded_test_ids(ROOT / "modules" / "05_autograd" / "autograd_dev.py")
    assert tests[-1] == "test-autograd-training", "the page is read once the last test cell, test_unit_training, passed"
    with jupyterlab(workspaces["done"], tmp_path, "05_autograd") as url, chromium_page(tmp_path) as page:
        run_all_cells(page, url)
        last = page.locator(".jp-OutputArea-output", has_text="test_unit_training: passed")  # the last test cell
        last.wait_for(state="attached", timeout=180_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
        passed = page.locator(".jp-OutputArea-output", has_text="test_unit_variable: passed")
        show(page, passed)
        save(page, screenshots, "05_autograd-test-passed")
        outputs = page.locator(".jp-OutputArea-output").all_text_contents()
    assert sum("passed" in text for text in outputs) >= len(tests), f"each of module 05's {len(tests)} test cells printed its success"
    assert not [text for text in outputs if "Traceback" in text], "a completed module runs top to bottom without an error"
