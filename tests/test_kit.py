"""The student kit end to end: an instructor makes it, a student clones it into an empty folder, installs it with
its README's command in a fresh virtual environment (no system site packages, so the course's reference
`tinytorch` cannot be imported), completes module 01 and hands it in with the kit's own tito (which has no
grading wing); the instructor autogrades it.

Slow: the fresh environment installs JupyterLab, nbdev and the rest (about two minutes on 2 cores).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, TITO, _plain_env, needs_sandbox, run_tito
from student_helpers import small_course, write_solutions
from tito.course import load_course
from tito.leaks import find_leaks, leaks_in_file, secret_lines
from tito.student.workspace import workspace_leaks

pytestmark = [pytest.mark.slow, needs_sandbox]
STUDENT = "alice"


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    return small_course(tmp_path_factory.mktemp("kit-course") / "repo")


@pytest.fixture(scope="module")
def kit(course, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kit") / "tinytorch-kit"
    before = os.umask(0o022)  # the usual umask, inherited by tito: the kit must follow it
    try:
        result = run_tito("nbgrader", "kit", str(out), cwd=course)
    finally:
        os.umask(before)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no solution line in any of them" in " ".join(result.stdout.split())
    return out


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_the_kit_is_one_commit_of_releases_stubs_tests_and_the_tool_with_no_solution_line(course, kit):
    assert len(git("log", "--format=%H", cwd=kit).split()) == 1 and git("status", "--porcelain", cwd=kit) == ""
    files = set(git("ls-files", cwd=kit).split())
    assert {"README.md", "pyproject.toml", "settings.ini", "modules/01_tensor/tensor.ipynb", "tito/main.py",
            "tinytorch/core/tensor.py", "tests/test_tensor.py"} <= files
    assert not [name for name in files if name.endswith("_dev.py") or name.startswith(("course/", "docs/"))]
    # tito without its grading wing: a student's tito has the student's commands and no instructor's ones.
    assert {"tito/student/workspace.py", "tito/commands/student.py", "tito/commands/module.py"} <= files
    instructor_commands = ("tito/commands/nbgrader.py", "tito/commands/gradescope.py")
    assert [name for name in files if name.startswith("tito/grading/") or name in instructor_commands] == []
    # Nor the judge, its wire format or the grading kernel, in any file: a student reads no grader.
    assert not [name for name in files if (kit / name).is_file() and any(
        word in (kit / name).read_bytes() for word in (b"answer_judge", b"class Judge", b"grading_wire"))]
    assert "01_tensor is not complete" in (kit / "tinytorch" / "core" / "tensor.py").read_text()
    leaks, checked = workspace_leaks(load_course(course), kit)
    assert checked > len(files) - 1 and leaks == []  # every committed file read (git's own objects aside)


def test_the_kit_notebooks_name_only_files_a_student_has(kit):
    """A kit notebook that says "You write here: modules/01_tensor/tensor_dev.py" points at a file students lack."""
    import nbformat

    for path in sorted((kit / "modules").rglob("*.ipynb")):
        text = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)
        assert "_dev.py" not in text, f"{path.relative_to(kit)} names a lesson file students do not have"
        assert f"this notebook, `{path.name}`" in text, f"{path.relative_to(kit)} does not say where the student writes"


def test_the_kit_is_readable_by_others_as_the_umask_allows(kit):
    """Another Unix user (a teaching assistant, a student cloning from a shared folder) can read the kit."""
    assert kit.stat().st_mode & 0o777 == 0o755
    for path in [kit / "modules", kit / "modules" / "01_tensor" / "tensor.ipynb", kit / "tinytorch" / "core" / "tensor.py",
                 kit / ".git" / "HEAD"]:
        assert path.stat().st_mode & 0o044 == 0o044, f"{path} is not readable by group and others"


def test_git_ignores_the_virtual_environment_and_what_pip_makes_in_a_clone(kit, tmp_path):
    clone = tmp_path / "my-tinytorch"
    git("clone", "--quiet", str(kit), str(clone), cwd=tmp_path)
    made = [".venv/bin/python", "tinytorch.egg-info/PKG-INFO", "tinytorch/core/__pycache__/tensor.cpython-311.pyc",
            "modules/01_tensor/.ipynb_checkpoints/tensor-checkpoint.ipynb", ".pytest_cache/README.md"]
    for name in made:
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        (clone / name).write_text("made by the student's tools\n")
    assert git("status", "--porcelain", "--untracked-files=all", cwd=clone) == ""
    (clone / "notes.md").write_text("mine\n")
    assert git("status", "--porcelain", cwd=clone) == "?? notes.md\n", "git still sees the student's own files"


def test_a_solution_line_in_the_course_tool_stops_the_kit_and_nothing_is_written(course, tmp_path):
    tool = tmp_path / "tool"
    shutil.copytree(ROOT / "tito", tool / "tito", ignore=shutil.ignore_patterns("__pycache__"))
    lesson = load_course(course).module("01_tensor")
    from tito.coursefolder import source_notebook

    secret = next(iter(secret_lines(source_notebook(lesson), lesson.name)))
    with open(tool / "tito" / "ui.py", "a") as ui:
        ui.write(f"\n_unused = '''\n{secret}\n'''\n")
    out = tmp_path / "kit"
    result = subprocess.run([sys.executable, "-c", TITO.replace(str(ROOT), str(tool)), "nbgrader", "kit", str(out)],
                            cwd=course, capture_output=True, text=True, env=_plain_env(), timeout=600)
    assert result.returncode == 1, result.stdout
    assert "the kit would show solutions" in " ".join(result.stdout.split()) and "tito/ui.py" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not out.exists() and sorted(os.listdir(tmp_path)) == ["tool"]  # no kit, no scratch folder left


def test_instructor_commands_refuse_to_run_in_a_kit(kit):
    for args in (["nbgrader", "release", "01"], ["nbgrader", "kit", "elsewhere"], ["nbgrader", "report"]):
        result = run_tito(*args, cwd=kit / "modules")
        text = " ".join(result.stdout.split())
        assert result.returncode == 2 and "is a student workspace" in text, (args, text)
    assert not (kit / "elsewhere").exists()


def install_command(readme: str) -> list[str]:
    """The README's install command (the first line of its first shell block), e.g. ["pip", "install", "-e", "."]."""
    block = re.search(r"```bash\n(.*?)```", readme, re.DOTALL).group(1)
    return block.splitlines()[0].split("#")[0].split()


def test_a_student_installs_the_kit_completes_01_submits_and_gets_full_marks(course, kit, tmp_path):
    from tito.grading.autograde import read_grade

    clone = tmp_path / "alice" / "my-tinytorch"
    subprocess.run(["git", "clone", "--quiet", str(kit), str(clone)], check=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = dict(_plain_env(), PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", VIRTUAL_ENV=str(venv))
    command = install_command((clone / "README.md").read_text())
    assert command == ["pip", "install", "-e", "."]
    installed = subprocess.run([str(venv / "bin" / "python"), "-m", *command, "--quiet"], cwd=clone, env=env,
                               capture_output=True, text=True, timeout=1800)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]

    def student(*args: str, cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=900)

    # From any folder, outside the kit included, `tinytorch` and `tito` are the student's own.
    where = "import tinytorch, tito; print(tinytorch.__file__); print(tito.__file__)"
    for folder in (tmp_path, clone / "modules" / "01_tensor"):
        found = student("python", "-c", where, cwd=folder)
        assert found.stdout.split() == [str(clone / "tinytorch" / "__init__.py"), str(clone / "tito" / "__init__.py")], found

    # A Jupyter kernel of the environment, started in a lesson's folder as a bare `jupyter lab` starts it, too.
    kernel = ("import nbclient, nbformat; notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("
              "'import tinytorch; print(tinytorch.__file__)')]); nbclient.NotebookClient(notebook, kernel_name='python3', "
              "resources={'metadata': {'path': '.'}}).execute(); print(notebook.cells[0].outputs[0].text)")
    found = student("python", "-c", kernel, cwd=clone / "modules" / "01_tensor")
    assert found.stdout.split() == [str(clone / "tinytorch" / "__init__.py")], found

    # No solution line in the clone nor in what pip installed for it.
    secrets = {}
    from tito.coursefolder import source_notebook

    for lesson in load_course(course).modules:
        secrets.update(secret_lines(source_notebook(lesson), lesson.name))
    record = next((venv / "lib").glob("python3*/site-packages/tinytorch-*.dist-info"))
    installed_files = [record.parent / line.split(",")[0] for line in (record / "RECORD").read_text().splitlines()]
    assert installed_files and not [leak for path in installed_files if path.suffix != ".pyc"
                                    for leak in leaks_in_file(secrets, path)]
    assert find_leaks(secrets, clone / "tinytorch") == [] and workspace_leaks(load_course(course), clone)[0] == []

    # The kit's tito has no grading wing, so no `tito nbgrader` (argparse knows no such command); the rest is there.
    shown = student("tito", "--help", cwd=clone)
    groups = set(re.findall(r"^    (\w+)", shown.stdout, flags=re.MULTILINE))  # the command groups, one a line
    assert shown.returncode == 0 and {"student", "module", "milestone", "lab", "status"} <= groups, shown.stdout
    assert "nbgrader" not in groups, shown.stdout
    instructor = student("tito", "nbgrader", "release", "01_tensor", cwd=clone)
    assert instructor.returncode == 2 and "invalid choice: 'nbgrader'" in instructor.stderr, instructor.stderr

    # The student writes module 01 (the reference solution, cell by cell) and completes it from a subfolder.
    assert write_solutions(clone, "01_tensor", course) > 0
    done = student("tito", "module", "complete", "01_tensor", cwd=clone / "modules")
    assert done.returncode == 0 and "01_tensor is complete" in done.stdout, done.stdout + done.stderr
    used = student("python", "-c", "from tinytorch.core.tensor import Tensor; print((Tensor([1, 2]) + 1).data.tolist())",
                   cwd=tmp_path)
    assert used.returncode == 0 and used.stdout.strip() == "[2.0, 3.0]", used.stdout + used.stderr

    handed_in = student("tito", "student", "submit", "01_tensor", "--student", STUDENT, "--course",
                        str(course / "course"), cwd=clone)
    assert handed_in.returncode == 0, handed_in.stdout + handed_in.stderr
    graded = run_tito("nbgrader", "autograde", "01_tensor", "--student", STUDENT, cwd=course)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    grade = read_grade(load_course(course), load_course(course).module("01_tensor"), STUDENT)
    assert grade.max_score > 0 and grade.score == grade.max_score and not grade.failed, grade


def test_update_adds_the_modules_of_a_newer_kit_and_changes_no_file_of_the_students(course, kit, tmp_path):
    release = tmp_path / "release-01"  # the course as it was when only module 01 was out
    shutil.copytree(course / "course" / "release" / "01_tensor", release / "01_tensor")
    workspace = tmp_path / "bob"
    made = run_tito("student", "init", str(workspace), "--release", str(release), "--student", "bob", cwd=course)
    assert made.returncode == 0, made.stdout
    notebook = workspace / "modules" / "01_tensor" / "tensor.ipynb"
    write_solutions(workspace, "01_tensor", course)
    before = {path: path.read_bytes() for path in workspace.rglob("*") if path.is_file()}

    updated = run_tito("student", "update", "--from", str(kit), cwd=workspace / "modules")
    assert updated.returncode == 0 and "added 05_autograd" in updated.stdout, updated.stdout + updated.stderr
    assert {path: path.read_bytes() for path in before if path.name != "settings.ini"} == \
           {path: data for path, data in before.items() if path.name != "settings.ini"}
    assert notebook.read_bytes() == before[notebook]
    assert (workspace / "modules" / "05_autograd" / "autograd.ipynb").exists()
    assert "05_autograd is not complete" in (workspace / "tinytorch" / "core" / "autograd.py").read_text()
    assert (workspace / "tests" / "test_autograd.py").exists()
    assert [module.name for module in load_course(workspace).modules] == ["01_tensor", "05_autograd"]
    again = run_tito("student", "update", "--from", str(kit), cwd=workspace)
    assert again.returncode == 0 and "up to date" in again.stdout
