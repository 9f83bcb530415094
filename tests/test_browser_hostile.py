"""A hostile submission in the instructor's browser: real autograde (sandbox), the real formgrader that
`tito nbgrader formgrader` starts, the real feedback page, headless Chromium (Debian's, through Playwright).

The hostile student hands in module 01's solution plus a cell displaying every active output there is (script,
JavaScript, event handlers, an iframe, a javascript: link, an SVG with script, a widget view, Markdown with
script, an image from a foreign origin) and a written answer with HTML and script (tests/hostile_outputs.py).
Each payload would mark `window` and fetch a URL on another origin: neither may happen, on the manual-grading
view or on the feedback page. A second layer is checked on its own: with a script put straight into the page
(as if the sanitizer had missed it), the page's Content-Security-Policy still stops it.
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from conftest import TITO, copy_course, needs_sandbox
from hostile_outputs import BAIT_PORT, MARKER, hostile_submission
from test_browser import CHROMIUM_ARGS, CHROMIUM, free_port, stop_group, sync_playwright, wait_until_answering
from tito.course import load_course
from tito.coursefolder import course_folder
from tito.grading.autograde import autograde
from tito.grading.feedback import feedback
from tito.grading.release import release

pytestmark = [pytest.mark.slow, needs_sandbox]

MODULE = "01_tensor"
ACTIVE = re.compile(r"<script|<iframe|\bon\w+\s*=|javascript:|widget-view", re.IGNORECASE)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Module 01 released; an honest, a hostile and an idle student autograded; a feedback page for each."""
    sync_playwright()  # skip before spending time on a course when there is no browser
    root = copy_course(tmp_path_factory.mktemp("hostile-browser") / "repo")
    settings = root / "settings.ini"
    settings.write_text(re.sub(r"modules =\n(    .*\n)+", f"modules =\n    {MODULE}\n", settings.read_text()))
    course = load_course(root)
    module = course.module(MODULE)
    release(course, module)
    folder = course_folder(course)
    source = nbformat.read(folder.source(module), as_version=4)
    released = nbformat.read(folder.release(module), as_version=4)
    for student, notebook in {"honest": source, "hostile": hostile_submission(source), "idle": released}.items():
        path = folder.submitted(student, module)
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, path)
    grades = {grade.student: grade for grade in autograde(course, module, jobs=2)}
    pages = {page.student: page for page in feedback(course, module)}
    return course, grades, pages


@contextlib.contextmanager
def formgrader(course, scratch: Path):
    """`tito nbgrader formgrader` in its own process group, asked for a port another server holds (as when
    `tito lab` has 8888); yields (base URL, token, log path); always shut down."""
    token = secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(scratch / "config"), JUPYTER_RUNTIME_DIR=str(scratch / "runtime"))
    log_path = scratch / "formgrader.log"
    with socket.socket() as holder, open(log_path, "w") as log:
        holder.bind(("127.0.0.1", free_port()))
        holder.listen()
        taken = holder.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-c", TITO, "nbgrader", "formgrader", "--port", str(taken), "--",
                                   f"--IdentityProvider.token={token}"],
                                  cwd=course.root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            port = _announced_port(log_path, server, taken)
            base = f"http://127.0.0.1:{port}"
            wait_until_answering(f"{base}/api/status?token={token}", server, log_path, "the formgrader", seconds=90)
            yield base, token, log_path
        finally:
            stop_group(server, seconds=30)


def _announced_port(log: Path, server: subprocess.Popen, taken: int, seconds: float = 60) -> int:
    """The port tito says the formgrader moved to from `taken`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = re.search(rf"port {taken} is taken .*listens on (\d+)", " ".join(log.read_text().split()))
        if found:
            return int(found.group(1))
        assert server.poll() is None, log.read_text()[-3000:]
        time.sleep(0.3)
    raise AssertionError(f"tito did not say which port the formgrader took instead of {taken}:\n{log.read_text()}")


@contextlib.contextmanager
def watched_page(scratch: Path, own_origin: str):
    """A Chromium page that records every request to another origin (and stops it there)."""
    with sync_playwright()() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(scratch / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        foreign: list[str] = []

        def route(request_route):
            url = request_route.request.url
            if url.startswith((own_origin, "data:", "about:")):
                request_route.continue_()
            else:
                foreign.append(url)
                request_route.abort()

        browser.route("**/*", route)
        try:
            page = browser.new_page()
            yield page, foreign
        finally:
            browser.close()


ACTIVE_ELEMENTS = r"""() => {
    const found = [];
    for (const element of document.querySelector('#notebook-container').querySelectorAll('*')) {
        // MathJax keeps each formula's TeX in a <script type="math/tex">, which no browser runs.
        const mathSource = element.tagName === 'SCRIPT' && element.type.startsWith('math/');
        if (['SCRIPT', 'IFRAME', 'OBJECT', 'EMBED', 'FORM'].includes(element.tagName) && !mathSource) {
            found.push(`${element.tagName} ${element.outerHTML.slice(0, 80)}`);
        }
        for (const attribute of element.attributes) {  // an image, even an SVG one, runs no script
            if (attribute.name.startsWith('on') || /^\s*(javascript|data):/i.test(attribute.value)
                    && !(element.tagName === 'IMG' && /^data:image\/(png|jpeg|svg\+xml);/.test(attribute.value))) {
                found.push(`${element.tagName} ${attribute.name}=${attribute.value.slice(0, 40)}`);
            }
        }
    }
    return found;
}"""


def active_elements(page) -> list[str]:
    """Scripts, frames, event handlers and script URLs in the rendered notebook (not text that shows code)."""
    return page.evaluate(ACTIVE_ELEMENTS)


def markers(page) -> list[str]:
    return page.evaluate(f"Object.keys(window).filter(name => name.startsWith('{MARKER}'))")


def wait_for_math(page, seconds: float = 60) -> int:
    """MathJax has typeset the page (the lesson's own formulas): how many formulas it drew. Polled from here:
    Playwright's in-page waiting evaluates a string, which the pages' policy forbids."""
    done = ("window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 "
            "&& document.querySelectorAll('.MathJax, .MathJax_Display').length > 0")
    for _ in range(int(seconds * 4)):
        if page.evaluate(f"Boolean({done})"):
            return page.locator(".MathJax, .MathJax_Display").count()
        page.wait_for_timeout(250)
    raise AssertionError(f"MathJax drew no formula within {seconds:.0f} s")


def test_active_content_is_scored_like_honest_work_and_removed(graded):
    course, grades, _ = graded
    assert (grades["honest"].score, grades["hostile"].score) == (10, 10), "outputs cost no points, and earn none"
    assert grades["honest"].notes == [], "an honest submission loses nothing"
    assert any("removed active content" in note for note in grades["hostile"].notes)
    autograded = course_folder(course).autograded("hostile", course.module(MODULE)).read_text()
    assert MARKER in autograded, "the hostile cell's code is still shown"
    outputs = [output for cell in nbformat.reads(autograded, as_version=4).cells for output in cell.get("outputs", [])]
    shown = nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=outputs)]))
    assert not ACTIVE.search(shown), ACTIVE.search(shown)


def test_the_formgrader_runs_no_script_of_a_submission(graded, tmp_path):
    course, _, _ = graded
    folder = course_folder(course)
    with formgrader(course, tmp_path) as (base, token, log), watched_page(tmp_path, base) as (page, foreign):
        page.goto(f"{base}/formgrader/manage_assignments?token={token}")
        page.wait_for_load_state("networkidle", timeout=60_000)
        exchange_warnings = page.locator("#warning-exchange").count()
        submission = _submission_id(course, "hostile")
        page.goto(f"{base}/formgrader/submissions/{submission}/?index=0")
        page.wait_for_selector("button.full-credit", timeout=60_000)
        formulas = wait_for_math(page)
        page.wait_for_timeout(1000)
        ran = markers(page)
        answer = page.locator(".nbgrader_cell", has_text="My answer")
        answers_shown = answer.count()
        answer.locator("button.full-credit").first.click()  # the formgrader's own scripts still work
        page.wait_for_timeout(2000)
        hand_graded = _manual_scores(course, "hostile")
        active = active_elements(page)
        # The second layer: as if the sanitizer had missed it, a raw script output in the graded notebook.
        _plant_script(folder.autograded("hostile", course.module(MODULE)))
        page.reload()
        page.wait_for_selector("button.full-credit", timeout=60_000)
        page.wait_for_timeout(1500)
        ran_planted = markers(page)
        server_log = log.read_text()
    port = base.rsplit(":", 1)[1]
    assert f"ssh -N -L {port}:127.0.0.1:{port} " in " ".join(server_log.split()), "the tunnel names the port in use"
    assert exchange_warnings == 0, "a course on one machine shows no exchange warning"
    assert "CRITICAL" not in server_log and "[C " not in server_log, "no critical line per page"
    assert ran == [] and ran_planted == [], f"scripts of the submission ran in the formgrader: {ran + ran_planted}"
    assert foreign == [], f"the formgrader page asked another origin: {foreign}"
    assert answers_shown >= 1 and formulas > 0, "the written answer shows, and math renders from the server"
    assert 2 in hand_graded.values(), f"'Full credit' on the answer reached the gradebook: {hand_graded}"
    assert active == [], f"active content reached the manual-grading view: {active}"


def test_the_feedback_page_runs_no_script_and_renders_math_offline(graded, tmp_path):
    course, _, pages = graded
    hostile = pages["hostile"].path
    planted = hostile.with_name("planted.html")  # the second layer: a script the sanitizer would have missed
    planted.write_text(hostile.read_text().replace("</body>", f"<script>window.{MARKER}_planted = 1</script></body>"))
    with watched_page(tmp_path, "file://") as (page, foreign):
        page.goto(hostile.as_uri())
        formulas = wait_for_math(page)
        page.wait_for_timeout(1000)
        ran = markers(page)
        active = active_elements(page)
        toc = page.locator("#toc").inner_text()
        page.goto(planted.as_uri())
        page.wait_for_timeout(1500)
        ran_planted = markers(page)
    assert ran == [] and ran_planted == [], f"scripts ran on the feedback page: {ran + ran_planted}"
    assert foreign == [], f"the feedback page asked another origin: {foreign}"
    assert not any(f":{BAIT_PORT}/" in url for url in foreign)
    assert formulas > 0, "the lesson's formulas render with no network"
    assert active == [], f"active content reached the feedback page: {active}"
    assert "Test test-tensor-creation" in toc and "Test cell" not in toc, toc
    assert "Written answer reflect-tensor-dtype (not graded yet: 2.0 points)" in toc, toc
    idle = pages["idle"].path.read_text()
    assert "NotImplementedError" in idle and "_tito_reached_end_" not in idle, "tracebacks without tito's marker"


def _submission_id(course, student: str) -> str:
    from nbgrader.api import Gradebook

    module = course.module(MODULE)
    with Gradebook(f"sqlite:///{course_folder(course).gradebook}") as gradebook:
        return gradebook.find_submission_notebook(module.short, module.name, student).id


def _manual_scores(course, student: str) -> dict[str, float | None]:
    from nbgrader.api import Gradebook

    module = course.module(MODULE)
    with Gradebook(f"sqlite:///{course_folder(course).gradebook}") as gradebook:
        notebook = gradebook.find_submission_notebook(module.short, module.name, student)
        return {grade.name: grade.manual_score for grade in notebook.grades if grade.cell.cell_type == "markdown"}


def _plant_script(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    cell = next(cell for cell in notebook.cells if cell.cell_type == "code")
    cell.outputs.append(nbformat.v4.new_output("display_data", data={
        "text/html": f"<script>window.{MARKER}_planted = 1</script><img src=x onerror=\"window.{MARKER}_img = 1\">"}))
    nbformat.write(notebook, path)
