"""A class on one shared server: JupyterHub with its proxy on 127.0.0.1, real Unix accounts, nbgrader's exchange.

The hub runs hub/jupyterhub_config.py (the configuration docs/instructor.md describes) with the PAM
authenticator and the local-process spawner, through configurable-http-proxy. The test creates an instructor
and three students as Unix accounts (homes of mode 0700 in a temporary folder; all removed at the end) and
an exchange with nbgrader's permissions. The instructor releases 01_tensor and publishes it; two students log
in with a headless Chromium, fetch it from the Assignment List, and submit it there; the third uses `tito
student fetch` and `submit` as their own user. One completes it, one does half, one nothing. The instructor
collects, autogrades in the sandbox, writes and returns feedback; each student fetches their own feedback (one
in the browser) and can read nobody else's submission or feedback.

Every user's JupyterLab runs from the single-user environment docs/instructor.md describes, made here the same
way: a virtual environment with JupyterHub (the hub's version), JupyterLab, nbgrader and numpy, then the course
kit (`tito nbgrader kit`), which gives students `tito` and their own stub `tinytorch`, no solution. The
instructor runs tito from the course repository (here: the Python running the test, which has it installed).
Students' files are edited by the test (as a student would save them), then handed to the student's account.
The environment's interpreter lies under a folder other users may not pass (/root on the test machines): the
test grants passage (o+x, no listing) for its duration and puts the mode back.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, TITO, _plain_env, needs_sandbox, passable, run_tito
from student_helpers import small_course, solution_regions
from test_browser import CHROMIUM_ARGS, CHROMIUM, free_port, stop_group, sync_playwright, wait_until_answering

pytestmark = [pytest.mark.slow, needs_sandbox]

MODULE, SHORT = "01_tensor", "tensor"
INSTRUCTOR = "tt-teacher"
WORK = {"tt-ada": "all", "tt-bob": "half", "tt-cy": "none"}  # how much of the module each student writes
IN_BROWSER = ("tt-ada", "tt-bob")                          # fetch and submit through the Assignment List
BASE_PREFIX = "tinytorch-hub-"                               # every account made here has its home under it
HUB_CONFIG = ROOT / "hub" / "jupyterhub_config.py"


def requirements() -> None:
    if os.geteuid() != 0:
        pytest.skip("the hub test creates Unix accounts, which needs root")
    for tool in ("useradd", "userdel", "chpasswd"):
        if shutil.which(tool) is None:
            pytest.skip(f"no {tool} on this machine")
    if shutil.which("configurable-http-proxy") is None:
        pytest.skip("JupyterHub's proxy is not installed (npm install -g configurable-http-proxy)")
    pytest.importorskip("jupyterhub", reason="JupyterHub is not installed (pip install jupyterhub)")
    pytest.importorskip("pamela", reason="JupyterHub's PAM support (pamela) is not installed")
    sync_playwright()


# ------------------------------------------------------------------------------------------ the machine

def _made_here(name: str) -> bool:
    """Whether an account of that name exists and was made by this test (its home is in a folder of ours)."""
    try:
        return f"/{BASE_PREFIX}" in pwd.getpwnam(name).pw_dir
    except KeyError:
        return False


def _end_processes_of(uid: int) -> None:
    """Stop, by process id, whatever still runs as an account this test made (its JupyterLab, kernels)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    os.kill(int(entry.name), signal.SIGKILL)


@contextlib.contextmanager
def accounts(homes: Path, names: list[str]):
    """Unix accounts with homes of mode 0700 and random passwords; removed, with their processes, at the end."""
    passwords = {}
    try:
        for name in names:
            if _made_here(name):  # left by an interrupted run
                _end_processes_of(pwd.getpwnam(name).pw_uid)
                subprocess.run(["userdel", name], check=True)
            elif _exists(name):
                pytest.skip(f"an account named {name} exists on this machine and is not this test's")
            subprocess.run(["useradd", "--create-home", "--home-dir", str(homes / name), "--shell", "/bin/bash",
                            "--user-group", name], check=True, capture_output=True)
            os.chmod(homes / name, 0o700)
            passwords[name] = secrets.token_urlsafe(12)
            subprocess.run(["chpasswd"], input=f"{name}:{passwords[name]}\n", text=True, check=True)
        yield passwords
    finally:
        for name in passwords:
            _end_processes_of(pwd.getpwnam(name).pw_uid)
            subprocess.run(["userdel", name], capture_output=True)


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@dataclass
class Class:
    base: Path
    exchange: Path
    course: Path                  # the instructor's course repository
    passwords: dict[str, str]
    python: Path                  # the single-user environment's interpreter
    hub_url: str = ""
    outputs: dict[str, str] = field(default_factory=dict)   # step -> what tito printed
    seconds: dict[str, float] = field(default_factory=dict)

    def role(self, name: str) -> str:
        return "instructor" if name == INSTRUCTOR else "student"

    def env(self, name: str) -> dict[str, str]:
        """What the hub gives a user's JupyterLab (and so a terminal in it): hub/jupyterhub_config.py's environment."""
        entry = pwd.getpwnam(name)
        env = {"HOME": entry.pw_dir, "USER": name, "LOGNAME": name, "LANG": "C.UTF-8", "COLUMNS": "200",
               "NO_COLOR": "1", "PATH": os.pathsep.join([str(self.python.parent), "/usr/local/bin", "/usr/bin", "/bin"]),
               "JUPYTER_CONFIG_PATH": str(ROOT / "hub" / self.role(name)),
               "TINYTORCH_EXCHANGE": str(self.exchange), "TINYTORCH_COURSE_ID": "tinytorch"}
        env.update({key: value for key, value in os.environ.items() if key.startswith("OPENBLAS_")})
        return env

    def run(self, name: str, *command: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
        """A command run as that user, in their home (or `cwd`)."""
        entry = pwd.getpwnam(name)
        return subprocess.run(list(command), user=entry.pw_uid, group=entry.pw_gid, extra_groups=[],
                              cwd=cwd or entry.pw_dir, env=self.env(name), capture_output=True, text=True,
                              timeout=timeout)

    def tito(self, name: str, *args: str, cwd: Path | None = None, timeout: int = 600) -> str:
        """The instructor's tito is the course repository's; a student's, the kit's in the single-user environment."""
        started = time.monotonic()
        tito = [sys.executable, "-c", TITO] if name == INSTRUCTOR else [str(self.python.parent / "tito")]
        done = self.run(name, *tito, *args, cwd=cwd, timeout=timeout)
        step = f"{name}: tito {' '.join(args)}"
        self.seconds[step] = time.monotonic() - started
        assert done.returncode == 0, f"{step} failed:\n{done.stdout}\n{done.stderr}"
        self.outputs[step] = done.stdout
        return done.stdout

    def home(self, name: str) -> Path:
        return Path(pwd.getpwnam(name).pw_dir)


def _give(path: Path, name: str) -> None:
    entry = pwd.getpwnam(name)
    for item in [path, *path.rglob("*")]:
        os.chown(item, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


# --------------------------------------------------------------------------------------------- the hub

@contextlib.contextmanager
def jupyterhub(klass: Class):
    """hub/jupyterhub_config.py started as root on free ports of 127.0.0.1; yields its address; always stopped."""
    state = klass.base / "state"
    state.mkdir(mode=0o700)
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(TINYTORCH_INSTRUCTORS=INSTRUCTOR, TINYTORCH_STUDENTS=" ".join(WORK),
               TINYTORCH_SINGLEUSER_PYTHON=str(klass.python), TINYTORCH_HUB_PORT=str(port),
               TINYTORCH_HUB_API_PORT=str(free_port()), TINYTORCH_PROXY_API_PORT=str(free_port()),
               TINYTORCH_EXCHANGE=str(klass.exchange), TINYTORCH_COURSE_ID="tinytorch")
    log = open(klass.base / "jupyterhub.log", "w")
    hub = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG)], cwd=state, env=env,
                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{url}/hub/api", hub, klass.base / "jupyterhub.log", "JupyterHub", seconds=120)
        yield url
    finally:
        stop_group(hub, seconds=60)  # the hub stops each user's server and its proxy
        log.close()


def sync_api():
    return pytest.importorskip("playwright.sync_api")


@contextlib.contextmanager
def browser(scratch: Path):
    with sync_playwright()() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(scratch), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900})
        try:
            yield context
        finally:
            context.close()


def log_in(page, klass: Class, name: str) -> dict:
    """Log in on the hub's page, wait for the user's JupyterLab; its page settings (what JupyterLab was told)."""
    page.goto(f"{klass.hub_url}/hub/logout")  # whoever used this browser before
    page.goto(f"{klass.hub_url}/hub/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", klass.passwords[name])
    page.click("#login_submit")
    page.wait_for_url(f"**/user/{name}/lab**", timeout=240_000)
    page.wait_for_selector("#jp-main-dock-panel", timeout=240_000)
    page.wait_for_selector("li.lm-MenuBar-item:has-text('Nbgrader')", timeout=120_000)
    return json.loads(page.locator("#jupyter-config-data").text_content())


def open_menu(page, menu: str) -> None:
    """Open a menu of the menu bar (a click while it is half open closes it again: try up to three times)."""
    for _ in range(3):
        page.click(f"li.lm-MenuBar-item:has-text('{menu}')")
        try:
            page.wait_for_selector(".lm-Menu-content .lm-Menu-itemLabel", state="visible", timeout=5_000)
            return
        except sync_api().TimeoutError:  # the click closed it
            page.mouse.click(700, 892)
    raise AssertionError(f"the {menu} menu did not open")


def open_assignment_list(page) -> None:
    open_menu(page, "Nbgrader")
    page.click("li.lm-Menu-item:has-text('Assignment List')")
    page.wait_for_selector("#released_assignments_list", timeout=60_000)


def menu_items(page, menu: str) -> list[str]:
    open_menu(page, menu)
    items = [" ".join(text.split()) for text in page.locator(".lm-Menu-content .lm-Menu-itemLabel").all_text_contents()]
    page.mouse.click(700, 892)  # a click outside a menu (here: the empty middle of the status bar) closes it
    page.wait_for_selector(".lm-Menu-content", state="detached", timeout=10_000)
    return [item for item in items if item]


def row_button(page, listing: str, label: str):
    row = page.locator(f"#{listing} .list_item", has_text=MODULE)
    return row.locator("button", has_text=label)


def click_and_wait(page, listing: str, label: str, then_listing: str) -> None:
    """Click a row's button, then wait for the module's row to appear in `then_listing`."""
    row_button(page, listing, label).first.click()
    page.locator(f"#{then_listing} .list_item", has_text=MODULE).first.wait_for(timeout=120_000)


# ----------------------------------------------------------------------------------------- the students

def do_the_work(notebook: Path, course: Path, how_much: str) -> None:
    """Replace all, half or none of the stubs by the lesson's solution (and with all, write each reflection
    answer too), as a student saving in JupyterLab would."""
    data = nbformat.read(notebook, as_version=4)
    if how_much == "all":
        for cell in data.cells:
            if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution"):
                cell.source = "Broadcasting stretches the smaller array without copying it."
    regions = solution_regions(course, MODULE)
    cells = [cell for cell in data.cells if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get(
        "grade_id") in regions]
    chosen = {"all": cells, "half": cells[: len(cells) // 2], "none": []}[how_much]
    for cell in chosen:
        lines, written, todo = cell.source.splitlines(), [], list(regions[cell.metadata["nbgrader"]["grade_id"]])
        index = 0
        while index < len(lines):
            if lines[index].strip() == "# YOUR CODE HERE" and index + 1 < len(lines) and \
                    "raise NotImplementedError" in lines[index + 1]:
                written += todo.pop(0)
                index += 2
            else:
                written.append(lines[index])
                index += 1
        cell.source = "\n".join(written)
    nbformat.write(data, notebook)


@dataclass
class Seen:
    """What the browser showed."""

    student_page: dict = field(default_factory=dict)
    instructor_page: dict = field(default_factory=dict)
    student_menu: list[str] = field(default_factory=list)
    instructor_menu: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)


def student_fetches_and_submits_in_browser(context, klass: Class, name: str, seen: Seen) -> None:
    page = context.new_page()
    seen.student_page = log_in(page, klass, name)
    seen.student_menu = menu_items(page, "Nbgrader")
    open_assignment_list(page)
    row_button(page, "released_assignments_list", "Fetch").first.wait_for(timeout=60_000)
    click_and_wait(page, "released_assignments_list", "Fetch", "fetched_assignments_list")
    notebook = klass.home(name) / MODULE / f"{SHORT}.ipynb"
    assert notebook.is_file() and notebook.stat().st_uid == pwd.getpwnam(name).pw_uid, \
        f"the Assignment List fetched {MODULE} into {name}'s home, as {name}"
    do_the_work(notebook, klass.course, WORK[name])
    click_and_wait(page, "fetched_assignments_list", "Submit", "submitted_assignments_list")
    shot = klass.base / f"{name}-submitted.png"
    page.screenshot(path=str(shot))
    seen.screenshots.append(shot)
    page.goto(f"{klass.hub_url}/hub/logout")
    page.close()


def student_fetches_feedback_in_browser(context, klass: Class, name: str, seen: Seen) -> None:
    page = context.new_page()
    log_in(page, klass, name)
    open_assignment_list(page)
    button = row_button(page, "submitted_assignments_list", "Fetch Feedback").first
    button.wait_for(timeout=60_000)
    button.click()
    deadline = time.monotonic() + 60
    while not list((klass.home(name) / MODULE / "feedback").glob(f"*/{SHORT}.html")):
        assert time.monotonic() < deadline, "the Assignment List's Fetch Feedback fetched no page within 60 s"
        time.sleep(0.5)
    shot = klass.base / f"{name}-feedback.png"
    page.screenshot(path=str(shot))
    seen.screenshots.append(shot)
    page.close()


def instructor_page(context, klass: Class, seen: Seen) -> None:
    page = context.new_page()
    seen.instructor_page = log_in(page, klass, INSTRUCTOR)
    seen.instructor_menu = menu_items(page, "Nbgrader")
    page.close()


# ---------------------------------------------------------------------------------------- the whole class

@dataclass
class Run:
    klass: Class
    seen: Seen
    denied: dict[str, str]          # what one student tried on another's files -> what happened
    feedback: dict[str, list[Path]]  # student -> pages fetched into their home
    scores: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def class_run(tmp_path_factory) -> Run:
    requirements()
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix=BASE_PREFIX, dir="/tmp"))
    os.chmod(base, 0o755)
    try:
        with passable([Path(sys.prefix), Path(sys.executable), ROOT]), \
                accounts(base, [INSTRUCTOR, *WORK]) as passwords:
            exchange = base / "exchange"
            exchange.mkdir()
            os.chmod(exchange, 0o777)  # nbgrader's permissions for its exchange root
            course, kit = prepare_course(base, exchange)
            klass = Class(base, exchange, course, passwords, single_user_environment(base / "singleuser", kit))
            run = teach(klass)
            klass.seconds["the whole test"] = time.monotonic() - started
            print(f"hub test: {klass.seconds['the whole test']:.0f} s; screenshots: "
                  f"{', '.join(map(str, run.seen.screenshots))}")
            for shot in run.seen.screenshots:  # kept outside the folder removed at the end
                shutil.copy2(shot, tmp_path_factory.getbasetemp() / shot.name)
            yield run  # the accounts and their files stay while the checks below read them
    finally:
        shutil.rmtree(base, ignore_errors=True)


def prepare_course(base: Path, exchange: Path) -> tuple[Path, Path]:
    """A copy of the course teaching 01_tensor, in the instructor's home, naming the exchange in settings.ini;
    and its student kit (`tito nbgrader kit`), for the single-user environment."""
    home = base / INSTRUCTOR
    course = small_course(home / "tinytorch", [MODULE])
    settings = course / "settings.ini"
    text, count = re.subn(r"^exchange =.*$", f"exchange = {exchange}", settings.read_text(), flags=re.MULTILINE)
    assert count == 1, "settings.ini has an `exchange =` line under [nbgrader]"
    settings.write_text(text)
    kit = base / "kit"
    made = run_tito("nbgrader", "kit", str(kit), cwd=course)
    assert made.returncode == 0, f"tito nbgrader kit failed:\n{made.stdout}\n{made.stderr}"
    _give(home / "tinytorch", INSTRUCTOR)
    return course, kit


def single_user_environment(venv: Path, kit: Path) -> Path:
    """docs/instructor.md's recipe: a venv holding jupyterhub (the hub's version), jupyterlab, nbgrader, numpy,
    then the course kit. Its Python, which every account may run."""
    import jupyterhub
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for packages in ([f"jupyterhub=={jupyterhub.__version__}", "jupyterlab", "nbgrader", "numpy"], [str(kit)]):
        done = subprocess.run([*pip, *packages], env=_plain_env(), capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, f"pip install {' '.join(packages)} failed:\n{done.stderr[-2000:]}"
    return venv / "bin" / "python"


def teach(klass: Class) -> Run:
    seen = Seen()
    course = klass.course
    klass.tito(INSTRUCTOR, "nbgrader", "release", MODULE, cwd=course)
    klass.tito(INSTRUCTOR, "nbgrader", "publish", MODULE, cwd=course)
    with jupyterhub(klass) as url, browser(klass.base / "chromium") as context:
        klass.hub_url = url
        instructor_page(context, klass, seen)
        for name in IN_BROWSER:
            student_fetches_and_submits_in_browser(context, klass, name, seen)
        by_terminal = [name for name in WORK if name not in IN_BROWSER]
        for name in by_terminal:
            klass.tito(name, "student", "fetch", MODULE)
            do_the_work(klass.home(name) / MODULE / f"{SHORT}.ipynb", course, WORK[name])
            klass.tito(name, "student", "submit", MODULE)
        forge_a_submission(klass)
        klass.tito(INSTRUCTOR, "nbgrader", "collect", MODULE, cwd=course)
        klass.tito(INSTRUCTOR, "nbgrader", "autograde", MODULE, cwd=course)
        klass.tito(INSTRUCTOR, "nbgrader", "feedback", MODULE, cwd=course)
        klass.tito(INSTRUCTOR, "nbgrader", "return", MODULE, cwd=course)
        klass.tito(INSTRUCTOR, "nbgrader", "report", cwd=course)
        student_fetches_feedback_in_browser(context, klass, IN_BROWSER[0], seen)
    for name in WORK:
        if name != IN_BROWSER[0]:
            klass.tito(name, "student", "feedback", MODULE)
    feedback = {name: sorted((klass.home(name) / MODULE / "feedback").glob(f"*/{SHORT}.html")) for name in WORK}
    with (course / "course" / "scores.csv").open() as sheet:
        scores = {row["student"]: row for row in csv.DictReader(sheet)}
    return Run(klass, seen, trespass(klass), feedback, scores)


FORGER, VICTIM = "tt-bob", "tt-ada"


def forge_a_submission(klass: Class) -> None:
    """tt-bob hands his own notebook in under tt-ada's name, newer than hers (nbgrader's folder naming)."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S.000000 UTC", time.gmtime(time.time() + 3600))
    forged = klass.exchange / "tinytorch" / "inbound" / f"{VICTIM}+{MODULE}+{stamp}+forged"
    script = (f"import os, shutil; os.mkdir({str(forged)!r}); shutil.copy({str(klass.home(FORGER) / MODULE / f'{SHORT}.ipynb')!r}, "
              f"{str(forged)!r}); open(os.path.join({str(forged)!r}, 'timestamp.txt'), 'w').write({stamp!r})")
    done = klass.run(FORGER, str(klass.python), "-c", script)
    assert done.returncode == 0, f"{FORGER} could not write into the exchange's inbound folder: {done.stderr}"


def trespass(klass: Class) -> dict[str, str]:
    """tt-cy tries to read what belongs to others: the exchange's listings, tt-ada's home, the course folder."""
    ada, inbound = klass.home("tt-ada"), klass.exchange / "tinytorch" / "inbound"
    targets = {
        "list the submissions in the exchange": f"os.listdir({str(inbound)!r})",
        "list the returned feedback in the exchange": f"os.listdir({str(klass.exchange / 'tinytorch' / 'feedback')!r})",
        "read tt-ada's notebook": f"open({str(ada / MODULE / f'{SHORT}.ipynb')!r}).read()",
        "read tt-ada's feedback": f"os.listdir({str(ada / MODULE / 'feedback')!r})",
        "read tt-ada's submission secret": f"os.listdir({str(ada / '.local/share/jupyter/nbgrader_cache')!r})",
        "read the course folder": f"os.listdir({str(klass.course / 'course' / 'submitted')!r})",
    }
    results = {}
    for what, code in targets.items():
        done = klass.run("tt-cy", str(klass.python), "-c", f"import os\ntry:\n    {code}\n    print('READ')\n"
                                                       f"except PermissionError:\n    print('DENIED')")
        results[what] = done.stdout.strip() or done.stderr.strip()[-200:]
    return results


# ------------------------------------------------------------------------------------------------ the checks

def test_students_fetch_and_submit_in_the_browser_as_themselves(class_run):
    inbound = class_run.klass.exchange / "tinytorch" / "inbound"
    owners = {pwd.getpwuid(path.stat().st_uid).pw_name: path.name.split("+")[0] for path in inbound.iterdir()
              if "forged" not in path.name}
    assert owners == {name: name for name in WORK}, "each student's submission is in the exchange, owned by them"
    assert stat.S_IMODE(inbound.stat().st_mode) == 0o2733, "inbound keeps nbgrader's mode: students write, never list"


def test_students_see_the_assignment_list_and_no_instructor_tools(class_run):
    seen = class_run.seen
    disabled = seen.student_page.get("disabledExtensions", [])
    for plugin in ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:course-list"):
        assert plugin in disabled, f"a student's JupyterLab loads {plugin}"
        assert plugin not in seen.instructor_page.get("disabledExtensions", []), f"the instructor's lacks {plugin}"
    assert "Assignment List" in seen.student_menu, seen.student_menu
    assert not {"Formgrader", "Course List"} & set(seen.student_menu), seen.student_menu
    assert {"Formgrader", "Assignment List"} <= set(seen.instructor_menu), seen.instructor_menu


def test_the_instructor_collects_each_students_own_work_and_refuses_a_forgery(class_run):
    collected = next(text for step, text in class_run.klass.outputs.items() if "collect" in step)
    assert "refused" in collected and "forged" in collected and f"handed in by {FORGER}" in collected, collected
    submitted = class_run.klass.course / "course" / "submitted"
    assert sorted(path.name for path in submitted.iterdir()) == sorted(WORK)
    ada = nbformat.read(submitted / VICTIM / MODULE / f"{SHORT}.ipynb", as_version=4)
    assert not any("raise NotImplementedError" in cell.source for cell in ada.cells
                   if cell.metadata.get("nbgrader", {}).get("solution")), "tt-ada's own complete work was collected"


def test_autograded_scores_follow_the_work_done(class_run):
    scores = class_run.scores
    full = float(scores["tt-ada"]["tests_max"])
    assert float(scores["tt-ada"]["tests_score"]) == full > 0
    assert 0 < float(scores["tt-bob"]["tests_score"]) < full, scores["tt-bob"]
    assert float(scores["tt-cy"]["tests_score"]) == 0
    assert scores["tt-ada"]["answers_score"] == scores["tt-ada"]["score"] == "", "answers nobody graded yet stay blank"
    assert scores["tt-ada"]["status"] == "answers to grade"
    assert scores["tt-cy"]["answers_score"] == "0" and scores["tt-cy"]["status"] == "graded", \
        "an answer left as released scores 0 with nothing to grade"


def test_each_student_fetches_only_their_own_feedback(class_run):
    feedback_folder = class_run.klass.course / "course" / "feedback"
    for name, pages in class_run.feedback.items():
        assert len(pages) == 1, f"{name} fetched {pages}"
        assert pages[0].read_bytes() == (feedback_folder / name / MODULE / f"{SHORT}.html").read_bytes(), \
            f"{name}'s page is the instructor's page for {name}"
        assert pages[0].stat().st_uid == pwd.getpwnam(name).pw_uid


def test_no_student_reads_another_students_work_or_feedback(class_run):
    assert class_run.denied and set(class_run.denied.values()) == {"DENIED"}, class_run.denied


def test_students_import_the_kits_stubs_not_the_course_solutions(class_run):
    klass = class_run.klass
    done = klass.run("tt-cy", str(klass.python), "-c", "import tinytorch.core.tensor as t; print(t.__file__)")
    package = Path(done.stdout.strip())
    assert package.is_relative_to(klass.python.parent.parent), f"a student's Python imports {package}: {done.stderr}"
    assert "raise NotImplementedError" in package.read_text(), "the single-user environment's tinytorch holds stubs"
