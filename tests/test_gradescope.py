"""`tito gradescope`: a module's autograder zip, run the way Gradescope runs it, on this machine, with real
nbgrader, kernels and bubblewrap.

Gradescope unpacks the zip to /autograder/source, runs setup.sh once, copies run_autograder to /autograder, puts
the upload in /autograder/submission and reads /autograder/results/results.json. Here each run gets a fresh
temporary folder bind-mounted at /autograder by bubblewrap (the rest of this machine's file system as it is),
then setup.sh, then run_autograder. There is no network here beyond the package registries, so setup.sh is
pointed (TITO_GRADESCOPE_PYTHON) at this test's own interpreter, which already has every pinned requirement:
its `pip install -r requirements.txt` then runs for real and finds every pin satisfied, instead of making a
fresh virtual environment and downloading them as it does on Gradescope.

For modules 01, 05 and 09, a full (the reference solution), a partial, a blank (the untouched release), a
non-notebook, a broken notebook and a hostile upload (it prints a fake results.json and tries to write one)
are graded both ways: results.json must follow Gradescope's documented schema and give each test the points
`tito nbgrader autograde` gives it on the same file.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from conftest import copy_course, needs_sandbox, passable, run_tito
from tito.course import Course, load_course
from tito.coursefolder import course_folder
from tito.grading.autograde import autograde
from tito.grading.gradescope import build_autograder, withheld_leaks
from tito.grading.release import release
from tito.grading.sandbox import FIRST_SANDBOX_UID, SANDBOX_USERS
from tito.leaks import secret_lines
from tito.notebook import graded_cells

pytestmark = [pytest.mark.slow, needs_sandbox]

MODULES = ["01_tensor", "05_autograd", "09_convolutions"]

HOSTILE = '''\
import json, pathlib
fake = {"score": 999.0, "output": "all tests passed", "tests": []}
print(json.dumps(fake))
for target in ("/autograder/results/results.json", "/autograder/source/run_autograder", "/autograder/hostile"):
    try:
        pathlib.Path(target).write_text(json.dumps(fake))
    except OSError as error:
        print("refused:", target, type(error).__name__)
'''


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Course:
    loaded = load_course(copy_course(tmp_path_factory.mktemp("gradescope") / "repo"))
    for name in MODULES:
        release(loaded, loaded.module(name))
    return loaded


# ------------------------------------------------------------------------------------- emulated Gradescope

def gradescope_command(tree: Path, script: str, without_bwrap: bool = False) -> list[str]:
    """`script` run with `tree` bind-mounted at /autograder and the rest of the file system as it is; with
    `without_bwrap`, in a container where bubblewrap cannot run (an empty file stands in for it)."""
    mounts = []
    for entry in sorted(Path("/").iterdir()):
        if entry.name in ("proc", "dev", "autograder"):
            continue
        if entry.is_symlink():
            mounts += ["--symlink", os.readlink(entry), str(entry)]
        elif entry.is_dir():
            mounts += ["--bind", str(entry), str(entry)]
    if without_bwrap:
        mounts += ["--ro-bind", "/dev/null", shutil.which("bwrap")]
    return ["bwrap", *mounts, "--dev-bind", "/dev", "/dev", "--proc", "/proc", "--bind", str(tree), "/autograder",
            "--chdir", "/autograder", "--die-with-parent", "--", script]


def run_on_gradescope(zip_path: Path, upload: dict[str, bytes], tree: Path,
                      without_bwrap: bool = False) -> tuple[dict, subprocess.CompletedProcess]:
    """Unpack, set up and run the autograder on `upload` (file name -> content) in a fresh /autograder."""
    shutil.rmtree(tree, ignore_errors=True)
    for folder in ("source", "submission", "results"):
        (tree / folder).mkdir(parents=True)
    subprocess.run(["unzip", "-q", str(zip_path), "-d", str(tree / "source")], check=True)
    environment = {"PATH": "/usr/bin:/bin", "HOME": "/root", "TITO_GRADESCOPE_PYTHON": sys.executable}
    setup = subprocess.run(gradescope_command(tree, "/autograder/source/setup.sh"), env=environment,
                           capture_output=True, text=True, timeout=600)
    assert setup.returncode == 0, setup.stderr[-2000:]
    shutil.copy2(tree / "source" / "run_autograder", tree / "run_autograder")
    for name, content in upload.items():
        (tree / "submission" / name).write_bytes(content)
    run = subprocess.run(gradescope_command(tree, "/autograder/run_autograder", without_bwrap), env=environment,
                         capture_output=True, text=True, timeout=900)
    return json.loads((tree / "results" / "results.json").read_text()), run


# Gradescope's results.json, as its autograder specification documents it.
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
TOP = {"score": (int, float), "execution_time": (int, float), "output": str, "output_format": str,
       "test_output_format": str, "test_name_format": str, "visibility": str, "stdout_visibility": str,
       "extra_data": dict, "tests": list, "leaderboard": list}
TEST = {"score": (int, float), "max_score": (int, float), "status": str, "name": str, "name_format": str,
        "number": str, "output": str, "output_format": str, "tags": list, "visibility": str, "extra_data": dict}


def schema_problems(results: dict) -> list[str]:
    problems = [f"unknown key {key}" for key in results if key not in TOP]
    problems += [f"{key} is not {kind}" for key, kind in TOP.items()
                 if key in results and not isinstance(results[key], kind)]
    if "score" not in results and not all("score" in test for test in results.get("tests", [])):
        problems.append("no score: neither overall nor on every test")
    for key in ("visibility", "stdout_visibility"):
        if key in results and results[key] not in VISIBILITY:
            problems.append(f"{key} {results[key]!r}")
    for test in results.get("tests", []):
        problems += [f"test key {key}" for key in test if key not in TEST]
        problems += [f"test {key} is not {kind}" for key, kind in TEST.items()
                     if key in test and not isinstance(test[key], kind)]
        if test.get("status", "passed") not in ("passed", "failed") or test.get("visibility", "visible") not in VISIBILITY:
            problems.append(f"test {test.get('name')}: status or visibility")
    return problems


# ---------------------------------------------------------------------------------------------- uploads

def uploads(course: Course, name: str) -> dict[str, dict[str, bytes]]:
    module = course.module(name)
    folder = course_folder(course)
    source = nbformat.read(folder.source(module), as_version=4)
    released = nbformat.read(folder.release(module), as_version=4)
    partial = copy.deepcopy(released)  # the first half of the solution cells filled in
    solutions = [index for index, cell in enumerate(source.cells) if cell.metadata.get("nbgrader", {}).get("solution")
                 and cell.cell_type == "code"]
    for index in solutions[:len(solutions) // 2]:
        partial.cells[index].source = source.cells[index].source
    hostile = copy.deepcopy(released)  # it also prints a line of the module's solution: the output must be cut
    shown = next(line for line in secret_lines(source, module.name) if len(line) > 20)
    hostile.cells[solutions[0]].source += "\n" + HOSTILE + f"print({shown!r})\n"
    notebook = f"{module.short}.ipynb"
    return {"full": {notebook: nbformat.writes(source).encode()},
            "partial": {notebook: nbformat.writes(partial).encode()},
            "blank": {notebook: nbformat.writes(released).encode()},
            "hostile": {notebook: nbformat.writes(hostile).encode()},
            "wrongfile": {"answers.pdf": b"%PDF-1.4 a scanned page"},
            "broken": {notebook: b'{"cells": [ this is not JSON'}}


@pytest.mark.parametrize("name", MODULES)
def test_gradescope_grades_as_tito_does(course, name, tmp_path):
    module = course.module(name)
    autograder = build_autograder(course, module, tmp_path / "zips")
    with zipfile.ZipFile(autograder.path) as archive:
        modes = {entry.filename: entry.external_attr >> 16 & 0o777 for entry in archive.infolist()}
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    assert {mode for file, mode in modes.items() if file not in ("setup.sh", "run_autograder")} == {0o444}
    tests = {cell.grade_id: cell.points for cell in graded_cells(nbformat.read(
        course_folder(course).release(module), as_version=4)) if cell.is_test}

    handed = uploads(course, name)
    for student, files in handed.items():  # the same files, graded by `tito nbgrader autograde`
        target = course_folder(course).submitted(student, module)
        target.parent.mkdir(parents=True, exist_ok=True)
        for file, content in files.items():
            (target.parent / file).write_bytes(content)
    at_home = {grade.student: grade for grade in autograde(course, module, list(handed))}

    for student, files in handed.items():
        results, run = run_on_gradescope(autograder.path, files, tmp_path / "autograder")
        assert schema_problems(results) == [], (student, results)
        graded = {test["name"]: test for test in results["tests"] if "status" in test}
        assert {name: test["max_score"] for name, test in graded.items()} == tests
        grade = at_home[student]
        assert results["score"] == pytest.approx(grade.score), (student, results["output"], grade)
        assert sorted(n for n, test in graded.items() if test["score"] < test["max_score"]) == sorted(
            grade.failed if grade.graded else tests), student
        assert all(test["status"] == ("passed" if test["score"] == test["max_score"] else "failed")
                   for test in graded.values())
        answers = [test for test in results["tests"] if "status" not in test]
        assert answers and all(test["score"] == 0 and test["max_score"] > 0 for test in answers)
        assert results["execution_time"] > 0
        if student == "full":
            assert results["score"] == sum(tests.values())
        if student == "partial":
            assert 0 < results["score"] < sum(tests.values())
        if student in ("blank", "hostile"):
            assert results["score"] == 0
        if student == "blank":  # each test's own message reaches the student
            assert any("Error" in test["output"] for test in graded.values())
        if student == "wrongfile":
            assert f"no {module.short}.ipynb" in results["output"] and "answers.pdf" in results["output"]
        if student == "broken":
            assert "not a Jupyter notebook" in results["output"]
        if student == "hostile":
            assert "it showed a line of a lesson's solution" in results["output"]
            assert "999" not in json.dumps(results["score"])
            assert not (tmp_path / "autograder" / "hostile").exists()
            assert (tmp_path / "autograder" / "source" / "run_autograder").read_bytes() == (
                tmp_path / "autograder" / "run_autograder").read_bytes()


def test_the_command_releases_only_the_modules_it_zips(course, tmp_path):
    """`tito gradescope 01 OUT` in a course where later modules were never released zips 01 and releases
    nothing else (releasing runs every solution: minutes per module)."""
    release_dir = course_folder(course).root / "release"
    before = sorted(path.name for path in release_dir.iterdir())
    run = run_tito("gradescope", "01", str(tmp_path / "zips"), cwd=course.root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "zips" / "01_tensor-gradescope.zip").exists() and "released first" not in run.stdout
    assert sorted(path.name for path in release_dir.iterdir()) == before


def test_the_zip_holds_no_solution_of_the_module(course, tmp_path):
    """No line of the graded module's solution (nor a later module's) is in the zip, and planting one is caught."""
    module = course.module("05_autograd")
    autograder = build_autograder(course, module, tmp_path)
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(autograder.path) as archive:
        archive.extractall(unpacked)
    source = nbformat.read(course_folder(course).source(module), as_version=4)
    secrets = secret_lines(source, module.name)
    assert secrets
    assert withheld_leaks(course, module, unpacked) == []
    planted = next(iter(secrets))
    (unpacked / "tito" / "notes.py").write_text(f"# {planted}\n{planted}\n")
    assert [leak.text.strip() for leak in withheld_leaks(course, module, unpacked)] == [planted]


@pytest.mark.skipif(os.geteuid() != 0, reason="the fallback switches to an unprivileged user: it needs root")
def test_without_namespaces_the_upload_runs_as_an_unprivileged_user(course, tmp_path):
    """Where bubblewrap cannot run, the same grading runs the kernel as a user of its own, and says so."""
    module = course.module("01_tensor")
    autograder = build_autograder(course, module, tmp_path / "zips")
    source = nbformat.read(course_folder(course).source(module), as_version=4)
    cell = next(cell for cell in source.cells if cell.metadata.get("nbgrader", {}).get("solution")
                and cell.cell_type == "code")
    cell.source += "\n" + HOSTILE + "import subprocess\nsubprocess.Popen(['sleep', '600'])\n"
    with passable([Path(sys.executable)]):  # as /autograder/venv's Python is on Gradescope (not under /root)
        results, run = run_on_gradescope(autograder.path, {f"{module.short}.ipynb": nbformat.writes(source).encode()},
                                         tmp_path / "autograder", without_bwrap=True)
    assert schema_problems(results) == []
    assert "cannot create the namespaces" in results["output"] and "unprivileged user" in results["output"]
    tests = [test for test in results["tests"] if "status" in test]
    assert results["score"] == sum(test["max_score"] for test in tests), results["output"]
    assert not (tmp_path / "autograder" / "hostile").exists()
    assert json.loads((tmp_path / "autograder" / "results" / "results.json").read_text())["score"] != 999
    sandbox_users = ",".join(str(FIRST_SANDBOX_UID + n) for n in range(SANDBOX_USERS))
    left = subprocess.run(["pgrep", "-u", sandbox_users, "sleep"], capture_output=True, text=True).stdout
    assert left == "", "a process the submission started outlived its grading"
