"""The student workflow: `tito student init|submit`, and `tito module test|complete`, `tito status` in a workspace.

Real kernels and real nbgrader, in temporary folders only: a copy of the course teaching modules 01 and 05 is
released, a workspace is made from it, and a simulated student writes the reference solutions into the
notebooks (taken region by region from the lessons' dev files), completes the modules, and hands them in.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, needs_sandbox, run_tito
from student_helpers import MODULES, edit_notebook, small_course, write_solutions
from tito.course import load_course
from tito.prerequisites import prerequisite_problem, prerequisites
from tito.student.lab import lab_command
from tito.student.workspace import workspace_leaks, workspace_test_files
from tito.stubs import enclosing_name, find_stubs

STUDENT = "alice"


def one_line(result: subprocess.CompletedProcess) -> str:
    """A tito error as the student reads it: one line (rich may wrap it at the terminal's width)."""
    return " ".join(result.stdout.split())


def copy_workspace(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"))
    return destination


# --------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A course repository (a copy) teaching modules 01 and 05; nothing released yet."""
    return small_course(tmp_path_factory.mktemp("student") / "repo")


@pytest.fixture(scope="module")
def made(course, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """`tito student init` with the default release: it releases both modules first, then makes the workspace."""
    workspace = tmp_path_factory.mktemp("made") / "my-tinytorch"
    result = run_tito("student", "init", str(workspace), "--student", STUDENT, cwd=course)
    assert result.returncode == 0, result.stdout + result.stderr
    return workspace, result


@pytest.fixture
def fresh(made, tmp_path) -> Path:
    """A private copy of the untouched workspace."""
    return copy_workspace(made[0], tmp_path / "fresh")


@pytest.fixture(scope="module")
def finished(course, made, tmp_path_factory) -> Path:
    """A workspace in which the student wrote every solution of modules 01 and 05 and completed both."""
    workspace = copy_workspace(made[0], tmp_path_factory.mktemp("finished") / "my-tinytorch")
    for module in MODULES:
        assert write_solutions(workspace, module, course) > 0
        result = run_tito("module", "complete", module, cwd=workspace)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{module} is complete" in result.stdout
    return workspace


# ----------------------------------------------------------------------------------- making a workspace

@pytest.mark.slow
def test_init_releases_then_makes_a_workspace_of_release_notebooks_stubs_and_tests(course, made):
    workspace, result = made
    assert "releasing 01_tensor" in result.stdout and "releasing 05_autograd" in result.stdout
    assert (course / "course" / "release" / "05_autograd" / "autograd.ipynb").exists()
    for module in MODULES:
        short = module.split("_", 1)[1]
        notebook = nbformat.read(workspace / "modules" / module / f"{short}.ipynb", as_version=4)
        assert "jupytext" not in notebook.metadata, "a workspace notebook must not be paired with any file"
        released = nbformat.read(course / "course" / "release" / module / f"{short}.ipynb", as_version=4)
        assert [cell.metadata.get("nbgrader", {}).get("grade_id") for cell in notebook.cells] == \
            [cell.metadata.get("nbgrader", {}).get("grade_id") for cell in released.cells], "the release's cells, in order"
        assert (workspace / "tinytorch" / "core" / f"{short}.py").exists()
    assert {path.name for path in (workspace / "tests").iterdir()} == {
        "conftest.py", "test_tensor.py", "test_tensor_torch.py", "test_autograd.py", "test_autograd_torch.py",
        "autograd_testing.py", "torch_oracle.py"}
    settings = (workspace / "settings.ini").read_text()
    assert "[workspace]" in settings and f"student = {STUDENT}" in settings
    assert "no leak: no solution line" in result.stdout


@pytest.mark.slow
def test_init_reuses_releases_that_are_up_to_date_and_releases_a_changed_lesson_again(course, made, tmp_path):
    again = run_tito("student", "init", str(tmp_path / "again"), cwd=course)
    assert again.returncode == 0 and "releasing" not in again.stdout, again.stdout
    edited = copy_workspace(course, tmp_path / "edited-course")  # a course whose module 05 changed since its release
    lesson = edited / "modules" / "05_autograd" / "autograd_dev.py"
    lesson.write_text(lesson.read_text().replace("# %% [markdown]\n", "# %% [markdown]\n# A new first line.\n#\n", 1))
    changed = run_tito("student", "init", str(tmp_path / "changed"), cwd=edited)
    assert changed.returncode == 0, changed.stdout
    assert "releasing 05_autograd" in changed.stdout and "releasing 01_tensor" not in changed.stdout
    assert "A new first line." in (tmp_path / "changed" / "modules" / "05_autograd" / "autograd.ipynb").read_text()


@pytest.mark.slow
def test_the_workspace_package_is_the_stubs_and_each_names_its_module_and_cell(made):
    workspace = made[0]
    script = textwrap.dedent("""
        import tinytorch.core.autograd as autograd
        from tinytorch.core.tensor import Tensor
        print(autograd.__file__)
        try:
            Tensor([1.0])
        except NotImplementedError as error:
            print(error)
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=workspace, capture_output=True, text=True, timeout=60, check=False)
    where, message = result.stdout.strip().splitlines()
    assert Path(where).resolve() == (workspace / "tinytorch" / "core" / "autograd.py").resolve()
    assert message.startswith("01_tensor is not complete: write your code in Tensor.__init__() (cell 'tensor-class' "
                              "of modules/01_tensor/tensor.ipynb)"), message


@pytest.mark.slow
def test_no_solution_line_is_anywhere_in_the_workspace_and_a_planted_one_is_found(course, fresh):
    lessons = load_course(course)
    leaks, checked = workspace_leaks(lessons, fresh)
    assert not leaks, "\n".join(map(str, leaks[:5]))
    assert checked == sum(1 for path in fresh.rglob("*") if path.is_file())
    solution_line = "return Tensor(np.matmul(left, right))"  # module 01's matmul, inside its solution region
    with open(fresh / "tests" / "test_tensor.py", "a") as file:
        file.write(f"\ndef pasted(left, right):\n    {solution_line}\n")
    edit_notebook(fresh / "modules" / "05_autograd" / "autograd.ipynb", "def _same(g):",
                  f"def pasted(left, right):\n    {solution_line}\n\n\ndef _same(g):")
    found = {(leak.file.name, leak.origin.split()[0]) for leak in workspace_leaks(lessons, fresh)[0]}
    assert found == {("test_tensor.py", "01_tensor"), ("autograd.ipynb", "01_tensor")}, found


def test_every_package_test_is_free_of_solution_lines(tmp_path):
    """What `tito student init` copies into a workspace from tests/, checked for every module of the course."""
    course = load_course(ROOT)
    files = workspace_test_files(course, list(course.modules))
    assert "nn_testing.py" in {path.name for path in files}, "helpers the tests import come along"
    (tmp_path / "tests").mkdir()
    for path in files:
        shutil.copy2(path, tmp_path / "tests" / path.name)
    leaks, checked = workspace_leaks(course, tmp_path)
    assert checked == len(files) and not leaks, "\n".join(map(str, leaks[:5]))


def test_init_refuses_a_folder_that_is_not_empty(course_copy, tmp_path):
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    result = run_tito("student", "init", str(target), cwd=course_copy)
    assert result.returncode == 2 and "Traceback" not in result.stdout + result.stderr
    assert result.stdout.strip().count("\n") <= 1 and f"{target} is a folder that is not empty" in one_line(result)
    assert [path.name for path in target.iterdir()] == ["notes.txt"]


def test_the_student_wing_releases_nothing_itself_it_names_the_missing_release_and_its_command(course_copy, tmp_path):
    """Releasing is the grading wing's: `init_workspace` only takes the releases that exist (`tito student init`
    releases first; a course folder without them is named, module and command)."""
    from tito.errors import TitoError
    from tito.student.workspace import init_workspace

    course = load_course(course_copy)
    with pytest.raises(TitoError) as refused:
        init_workspace(course, tmp_path / "ws")
    first = course.modules[0].name
    assert str(refused.value) == f"{first} has not been released yet: run `tito nbgrader release {first}` first"
    assert refused.value.exit_code == 2 and not (tmp_path / "ws").exists()
    assert not (course_copy / "course" / "release").exists()  # nothing was released on the way


@pytest.mark.slow
def test_init_names_a_bad_release_folder_and_makes_nothing(course, made, tmp_path):
    missing = run_tito("student", "init", str(tmp_path / "a"), "--release", str(tmp_path / "nowhere"), cwd=course)
    assert missing.returncode == 2 and f"no release folder at {tmp_path / 'nowhere'}" in one_line(missing)
    source = run_tito("student", "init", str(tmp_path / "b"), "--release", str(course / "course" / "source"), cwd=course)
    assert source.returncode == 2 and "still has solution or hidden-test markers" in one_line(source)
    broken = tmp_path / "release"
    (broken / "01_tensor").mkdir(parents=True)
    (broken / "01_tensor" / "tensor.ipynb").write_text("not a notebook")
    corrupt = run_tito("student", "init", str(tmp_path / "c"), "--release", str(broken), cwd=course)
    assert corrupt.returncode == 2 and "tensor.ipynb is not a Jupyter notebook" in one_line(corrupt)
    partial = tmp_path / "only-05"
    shutil.copytree(course / "course" / "release" / "05_autograd", partial / "05_autograd")
    lonely = run_tito("student", "init", str(tmp_path / "e"), "--release", str(partial), cwd=course)
    assert lonely.returncode == 2 and "has 05_autograd but not 01_tensor, which it builds on" in one_line(lonely)
    inside = run_tito("student", "init", str(tmp_path / "d"), cwd=made[0])
    assert inside.returncode == 2 and "already a student workspace" in one_line(inside)
    assert not any((tmp_path / name).exists() for name in "abcde")
    assert not [path for path in tmp_path.iterdir() if "partial" in path.name], "no scratch folder is left behind"


# ------------------------------------------------------------------------------------- working in it

@pytest.mark.slow
def test_module_test_of_a_stubbed_module_says_each_unwritten_part_once_and_names_every_test(fresh):
    result = run_tito("module", "test", "05_autograd", cwd=fresh, columns=80)
    text = one_line(result)
    assert result.returncode == 1
    parts = [line for line in result.stdout.splitlines() if line.startswith("not written yet: ")]
    assert parts[0] == "not written yet: backward_by_hand() in cell 'autograd-warmup' (05_autograd)", result.stdout
    assert len(parts) == len(set(parts)) >= 3, "each unfinished part once"
    assert "NotImplementedError" not in text and "NameError" not in text, "no repeated stub messages, no knock-ons"
    assert len(result.stdout.splitlines()) < 25, result.stdout
    waiting = text[text.index("waiting for these parts"):]
    for test in ["test-autograd-warmup", "test-autograd-variable", "test-autograd-backpropagate", "test-autograd-matmul",
                 "test-autograd-sum", "test-autograd-training"]:
        assert test in waiting, test
    assert "05_autograd builds on 01_tensor" in text, "the student is told that module 01 comes first"


@pytest.mark.slow
def test_module_test_shows_a_real_failure_in_full_with_its_test(course, fresh):
    write_solutions(fresh, "01_tensor", course)
    edit_notebook(fresh / "modules" / "01_tensor" / "tensor.ipynb", "return Tensor(np.matmul(left, right))",
                  "return Tensor(np.matmul(left, right) + 1)")
    result = run_tito("module", "test", "01_tensor", cwd=fresh)
    text = one_line(result)
    assert result.returncode == 1 and "1 failed: test-tensor-matmul" in text, result.stdout
    row = next(line for line in result.stdout.splitlines() if "test-tensor-matmul" in line and "failed" in line)
    assert "AssertionError: [[1, 2]] @ [[3], [4]] should be [[11]]" in row, result.stdout
    assert "not written yet" not in text and "waiting" not in text


@pytest.mark.slow
def test_completing_05_before_01_says_01_comes_first_and_changes_nothing(course, fresh):
    write_solutions(fresh, "05_autograd", course)
    package = fresh / "tinytorch" / "core" / "autograd.py"
    before = package.read_bytes()
    result = run_tito("module", "complete", "05_autograd", cwd=fresh)
    assert result.returncode == 1
    assert ("05_autograd builds on 01_tensor (tinytorch/core/tensor.py still has 10 unfinished parts, first: "
            "Tensor.__init__() in cell 'tensor-class'): complete 01_tensor first, with `tito module complete 01_tensor`"
            ) in one_line(result)
    assert package.read_bytes() == before


@pytest.mark.slow
def test_the_milestone_in_an_unfinished_workspace_names_the_first_module_to_finish_in_one_line(fresh):
    result = run_tito("milestone", "digits", cwd=fresh / "modules", columns=80)
    assert result.returncode == 2 and "Traceback" not in result.stdout + result.stderr
    assert result.stdout.startswith("error:") and len(result.stdout.strip().splitlines()) == 1, result.stdout
    assert "01_tensor is not complete" in result.stdout and "`tito module complete 01_tensor`" in result.stdout


@pytest.mark.slow
def test_status_shows_the_students_progress(fresh, finished):
    before = one_line(run_tito("status", cwd=fresh))
    assert "your work" in before and "10 parts to write" in before
    assert "next in 01_tensor: write Tensor.__init__() in cell 'tensor-class'" in before
    after = run_tito("status", cwd=finished)
    assert after.returncode == 0
    rows = [line for line in after.stdout.splitlines() if line.startswith("│ 0")]
    assert len(rows) == 2 and all("complete" in row and "passed" in row for row in rows), after.stdout


# ------------------------------------------------------------------------------ the simulated student

@pytest.mark.slow
def test_the_students_own_package_runs_the_lessons_examples_in_a_fresh_process(finished):
    script = textwrap.dedent("""
        import json
        import tinytorch.core.autograd as autograd
        import tinytorch.core.tensor as tensor
        from tinytorch.core.autograd import Variable

        x, y = Variable([2.0], requires_grad=True), Variable([3.0], requires_grad=True)
        (x * y).backward()
        product = [x.grad.tolist(), y.grad.tolist()]
        x, y = Variable([3.0], requires_grad=True), Variable([2.0], requires_grad=True)
        ((x + y) * (x - y)).backward()
        difference = [x.grad.tolist(), y.grad.tolist()]
        matmul = (Variable([[1.0, 2.0]]) @ Variable([[3.0], [4.0]])).data.data.tolist()
        z = Variable([1.0], requires_grad=True)
        (z * 2.0).backward()
        (z * 3.0).backward()
        print(json.dumps({"files": [autograd.__file__, tensor.__file__], "product": product,
                          "difference": difference, "matmul": matmul, "accumulated": z.grad.tolist()}))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=finished, capture_output=True, text=True, timeout=120, check=False,
                            env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"})
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert [Path(file).resolve() for file in seen["files"]] == [
        (finished / "tinytorch" / "core" / name).resolve() for name in ("autograd.py", "tensor.py")]
    assert seen["product"] == [[3.0], [2.0]]
    assert seen["difference"] == [[6.0], [-4.0]]
    assert seen["matmul"] == [[11.0]]
    assert seen["accumulated"] == [5.0]
    assert "NotImplementedError" not in (finished / "tinytorch" / "core" / "autograd.py").read_text()


@pytest.mark.slow
@needs_sandbox
def test_submit_and_autograde_give_full_marks(course, finished):
    from tito.grading.autograde import read_grade

    for module in MODULES:
        result = run_tito("student", "submit", module, cwd=finished)
        assert result.returncode == 0, result.stdout
        short = module.split("_", 1)[1]
        handed_in = course / "course" / "submitted" / STUDENT / module / f"{short}.ipynb"
        assert handed_in.read_bytes() == (finished / "modules" / module / f"{short}.ipynb").read_bytes()
        graded = run_tito("nbgrader", "autograde", module, "--student", STUDENT, cwd=course)
        assert graded.returncode == 0, graded.stdout + graded.stderr
        grade = read_grade(load_course(course), load_course(course).module(module), STUDENT)
        assert grade.max_score > 0 and grade.score == grade.max_score and not grade.failed, grade
    again = run_tito("student", "submit", "01", cwd=finished)
    assert again.returncode == 0 and "replaced your earlier submission" in again.stdout


@pytest.mark.slow
def test_a_wrong_backward_rule_fails_complete_naming_the_op_and_leaves_the_package(finished, tmp_path):
    workspace = copy_workspace(finished, tmp_path / "wrong")
    notebook = workspace / "modules" / "05_autograd" / "autograd.ipynb"
    edit_notebook(notebook, "(b, lambda g: g * av))", "(b, lambda g: g * bv))")  # d(a*b)/db taken as b instead of a
    package = workspace / "tinytorch" / "core" / "autograd.py"
    before = package.read_bytes()
    result = run_tito("module", "complete", "05_autograd", cwd=workspace)
    text = one_line(result)
    assert result.returncode == 1
    assert "test-autograd-record-operations" in text
    assert "AssertionError: x * y: with g = 1 the rule of input y should give 2.0, got 3.0" in text
    assert "05_autograd is not complete: fix the failing tests above; the package was not changed" in text
    assert package.read_bytes() == before


@pytest.mark.slow
def test_submit_names_each_mistake_in_one_line(course, made, tmp_path):
    workspace = made[0]
    cases = [
        (["student", "submit", "05_autograd"], course, "is the course repository, not a student workspace"),
        (["student", "submit", "09"], workspace, "unknown module '09'"),
        (["student", "submit", "01", "--yes", "--student", "a b"], workspace, "'a b' is not usable as a student id"),
        (["student", "submit", "01", "--yes", "--course", str(tmp_path / "nowhere")], workspace, "no course folder at"),
        (["student", "submit", "01", "--yes", "--course", str(tmp_path)], workspace, "has no release of 01_tensor"),
    ]
    for args, cwd, expected in cases:
        result = run_tito(*args, cwd=cwd)
        assert result.returncode == 2 and expected in one_line(result), (args, result.stdout)
        assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "submitted").exists()


@pytest.mark.slow
def test_submit_hands_in_only_the_workspaces_own_student_and_follows_no_link(course, made, tmp_path):
    workspace = copy_workspace(made[0], tmp_path / "mine")
    submitted = course / "course" / "submitted"
    other = run_tito("student", "submit", "01", "--yes", "--student", "mallory", cwd=workspace)
    assert other.returncode == 2 and "this workspace is alice's" in one_line(other)
    assert not (submitted / "mallory").exists()
    assert "unrecognized arguments: --instructor" in run_tito("student", "submit", "01", "--instructor",
                                                              cwd=workspace).stderr

    # A link planted in the course folder (here: alice's folder pointing elsewhere) is never written through.
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(submitted / STUDENT, ignore_errors=True)
    submitted.mkdir(parents=True, exist_ok=True)
    (submitted / STUDENT).symlink_to(outside)
    linked = run_tito("student", "submit", "01", "--yes", cwd=workspace)
    assert linked.returncode == 2 and "is a symbolic link" in one_line(linked) and not any(outside.iterdir())
    (submitted / STUDENT).unlink()
    mine = submitted / STUDENT / "01_tensor" / "tensor.ipynb"
    run_tito("student", "submit", "01", "--yes", cwd=workspace)
    target = tmp_path / "target.ipynb"
    target.write_text("keep")
    mine.unlink()
    mine.symlink_to(target)
    again = run_tito("student", "submit", "01", "--yes", cwd=workspace)
    assert again.returncode == 2 and "is a symbolic link" in one_line(again) and target.read_text() == "keep"
    mine.unlink()

    # A notebook that is a link (to any file the student can read) or not a regular file is refused.
    notebook = workspace / "modules" / "01_tensor" / "tensor.ipynb"
    notebook.unlink()
    notebook.symlink_to(made[0] / "modules" / "01_tensor" / "tensor.ipynb")
    assert "is a symbolic link" in one_line(run_tito("student", "submit", "01", "--yes", cwd=workspace))
    notebook.unlink()
    os.mkfifo(notebook)
    refused = run_tito("student", "submit", "01", "--yes", cwd=workspace)
    assert refused.returncode == 2 and "is not a regular file" in one_line(refused)
    assert not mine.exists() and not list(mine.parent.glob(".*partial"))


@pytest.mark.slow
def test_submit_never_overwrites_another_workspaces_submission(course, made, tmp_path):
    """Two workspaces of the same student id (so: two people, as far as tito can tell on one machine): the
    first to hand in owns the id in the course folder, and the other's submit is refused, changing nothing."""
    first = copy_workspace(made[0], tmp_path / "first")
    second = copy_workspace(made[0], tmp_path / "second")
    (second / ".tito" / "workspace-id").unlink()  # made anew at its submit: another workspace
    submitted = course / "course" / "submitted" / STUDENT
    shutil.rmtree(submitted, ignore_errors=True)
    assert run_tito("student", "submit", "01", "--yes", cwd=first).returncode == 0
    before = {path: path.read_bytes() for path in submitted.rglob("*") if path.is_file()}
    refused = run_tito("student", "submit", "01", "--yes", cwd=second)
    assert refused.returncode == 2, refused.stdout
    assert f"{STUDENT}'s submissions in" in one_line(refused) and "another workspace or user" in one_line(refused)
    assert {path: path.read_bytes() for path in submitted.rglob("*") if path.is_file()} == before
    assert run_tito("student", "submit", "01", "--yes", cwd=first).returncode == 0  # the owner still hands in


@pytest.mark.slow
def test_submitting_a_notebook_with_nothing_answered_asks_first(course, made, tmp_path):
    """Without a terminal to ask (no stdin), an untouched notebook is refused with the reason; --yes hands it in."""
    workspace = copy_workspace(made[0], tmp_path / "idle")
    handed_in = course / "course" / "submitted" / STUDENT / "01_tensor" / "tensor.ipynb"
    shutil.rmtree(handed_in.parent, ignore_errors=True)
    refused = run_tito("student", "submit", "01", cwd=workspace)
    assert refused.returncode == 2 and not handed_in.exists()
    assert "nothing is answered in modules/01_tensor/tensor.ipynb" in one_line(refused)
    assert "pass --yes to hand it in anyway" in one_line(refused)
    assert run_tito("student", "submit", "01", "--yes", cwd=workspace).returncode == 0 and handed_in.is_file()


@pytest.mark.slow
@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_an_interrupted_complete_restores_the_package_and_records_nothing_complete(course, made, tmp_path, signal_name):
    import signal
    import time

    workspace = copy_workspace(made[0], tmp_path / "interrupted")
    write_solutions(workspace, "01_tensor", course)
    started = tmp_path / "package-tests-started"
    (workspace / "tests" / "test_tensor_wait.py").write_text(
        f"import pathlib, time\n\ndef test_waits():\n    pathlib.Path({str(started)!r}).touch()\n    time.sleep(600)\n")
    package = workspace / "tinytorch" / "core" / "tensor.py"
    before = package.read_bytes()
    from conftest import TITO, _plain_env

    tito = subprocess.Popen([sys.executable, "-c", TITO, "module", "complete", "01_tensor"], cwd=workspace,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_plain_env())
    try:
        while not started.exists() and tito.poll() is None:
            time.sleep(0.2)
        assert started.exists(), tito.communicate()[0]
        assert package.read_bytes() != before  # exported, the package tests running
        tito.send_signal(getattr(signal, signal_name))
        output = tito.communicate(timeout=120)[0]
    finally:
        tito.kill()
    assert tito.returncode == 130 and "interrupted: 01_tensor is not complete, the package is as it was" in " ".join(
        output.split()), output
    assert package.read_bytes() == before
    status = one_line(run_tito("status", cwd=workspace))
    row = next(line for line in run_tito("status", cwd=workspace).stdout.splitlines() if line.startswith("│ 01_tensor"))
    assert row.split("│")[4].strip() == "written" and "next in 01_tensor: run `tito module complete 01_tensor`" in status


# ------------------------------------------------------------------------------------------ the parts

def test_stubs_are_found_and_named_by_their_function():
    code = textwrap.dedent("""\
        class Tensor:
            def __add__(self, other):
                \"\"\"Add.\"\"\"
                if other is None:
                    # YOUR CODE HERE
                    raise NotImplementedError('01_tensor is not complete: replace this line with your code')
                return self

        def matmul(a, b):
            raise NotImplementedError("not a stub: a real error")

        # YOUR CODE HERE
        raise NotImplementedError()
    """)
    stubs = find_stubs(code, cell="tensor-add")
    assert [(stub.line, stub.what, stub.cell) for stub in stubs] == [(6, "Tensor.__add__", "tensor-add"), (13, "", "tensor-add")]
    assert enclosing_name(code.splitlines(), 9) == "matmul"


def test_prerequisites_are_the_earlier_modules_a_lesson_imports():
    course = load_course(ROOT)
    names = lambda module: [other.name for other in prerequisites(course, course.module(module))]
    assert names("01") == []
    assert names("02") == ["01_tensor"], "module 02 only peeks at autograd, which comes later"
    assert names("05") == ["01_tensor"], "module 05 imports no later module"
    assert names("06") == ["01_tensor", "02_activations", "03_layers", "05_autograd"], "06 gives 03's layers their Parameter"
    assert names("08")[:2] == ["01_tensor", "02_activations"] and "05_autograd" in names("08")
    assert "06_operations" in names("10"), "module 10 imports module 06's Parameter"
    assert prerequisite_problem(course, course.module("05")) == "", "the course's own package is complete"


def test_lab_runs_jupyterlab_on_the_folder_with_its_own_package_first(course_copy):
    course = load_course(course_copy)
    command, env = lab_command(course, course.module("05"), 8899, False, ["--ServerApp.token=x"])
    assert command[:3] == [sys.executable, "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={course_copy}" in command and "--ServerApp.ip=127.0.0.1" in command
    assert "--ServerApp.port=8899" in command and "--no-browser" in command and command[-1] == "--ServerApp.token=x"
    assert "modules/05_autograd/autograd_dev.py" in command
    assert env["PYTHONPATH"].split(":")[0] == str(course_copy)


@pytest.mark.slow
def test_lab_shows_no_news_toast_and_leaves_the_users_jupyter_settings_alone(course_copy, tmp_path):
    """The page JupyterLab serves disables the news plugin; the user's own Jupyter folders get nothing written."""
    import json
    import re
    import secrets
    import signal
    import socket
    import time
    import urllib.request

    from conftest import TITO, _plain_env
    from tito.jupyterlab import NEWS_PLUGIN

    own = tmp_path / "user-jupyter"
    env = dict(_plain_env(), JUPYTER_CONFIG_DIR=str(own / "config"), JUPYTER_DATA_DIR=str(own / "data"),
               JUPYTER_RUNTIME_DIR=str(own / "runtime"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = secrets.token_hex(8)
    server = subprocess.Popen([sys.executable, "-c", TITO, "lab", "--no-browser", "--port", str(port), "--",
                               f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0"],
                              cwd=course_copy, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        page = None
        while page is None and server.poll() is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10).read().decode()
            except OSError:
                time.sleep(0.5)
        assert page is not None, server.stderr.read()[-2000:]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page,
                                  re.DOTALL).group(1))
    assert NEWS_PLUGIN in config["disabledExtensions"], config["disabledExtensions"]
    assert not (own / "config" / "labconfig").exists(), "tito wrote into the user's own Jupyter settings"


def test_lab_and_student_commands_need_a_course(tmp_path):
    for args in (["lab"], ["student", "init", "x"], ["student", "submit", "01"]):
        result = run_tito(*args, cwd=tmp_path)
        assert result.returncode == 2 and "no settings.ini" in result.stdout
