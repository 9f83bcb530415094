"""The tito command line, run as a subprocess the way a student or instructor runs it."""
import argparse
import sys

import pytest

from conftest import ROOT, run_tito


def test_help_lists_the_commands():
    result = run_tito("--help", cwd=ROOT)
    assert result.returncode == 0
    for command in ["export", "module", "status", "test"]:
        assert command in result.stdout


def test_every_command_and_subcommand_has_a_one_line_help_and_a_description():
    from tito.main import build_parser

    def walk(parser: argparse.ArgumentParser, path: str):
        yield path, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {choice.dest: choice.help for choice in action._choices_actions}
                for name, child in action.choices.items():
                    if name in helps:  # an alias (`tito notebook`) shares its command's parser and help
                        assert helps[name] and "\n" not in helps[name], f"`{path} {name}` has no one-line help"
                    yield from walk(child, f"{path} {name}")

    parsers = list(walk(build_parser(), "tito"))
    assert len(parsers) > 20, "the walk reached every subcommand"
    missing = [path for path, parser in parsers if len((parser.description or "").split()) < 5]
    assert missing == [], f"no description: {missing}"
    pointers = [path for path, parser in parsers if parser.description.startswith("See ")]
    assert pointers == [], f"a description that only points elsewhere: {pointers}"
    assert "pytest" not in build_parser().description, "only `tito test` passes arguments to pytest"


@pytest.mark.parametrize("args", [["module", "test", "99_nope"], ["test", "--module", "nope"], ["export", "nope"]])
def test_unknown_module_is_one_clear_line_and_exit_2(args):
    result = run_tito(*args, cwd=ROOT)
    assert result.returncode == 2
    assert result.stdout.strip().count("\n") == 0, result.stdout
    assert "unknown module 'nope'" in result.stdout or "unknown module '99_nope'" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_version_and_a_missing_module_name_suggest_the_command_asked_for():
    version = run_tito("--version", cwd=ROOT)
    assert version.returncode == 0 and version.stdout.startswith("tito 0.")
    for action in ("test", "complete"):
        result = run_tito("module", action, cwd=ROOT)
        assert result.returncode == 2 and f"name a module (e.g. `tito module {action} 01_tensor`)" in result.stdout


def test_outside_a_course_says_so(tmp_path):
    result = run_tito("status", cwd=tmp_path)
    assert result.returncode == 2 and "no settings.ini" in result.stdout


@pytest.mark.parametrize("name", ["01_tensor", "01", "1", "tensor"])
def test_status_accepts_every_module_spelling_and_lists_modules(name, course_copy):
    assert run_tito("export", name, cwd=course_copy).returncode == 0
    status = run_tito("status", cwd=course_copy)
    assert status.returncode == 0 and "01_tensor" in status.stdout and "tensor.py" in status.stdout


def test_export_twice_changes_nothing(course_copy):
    package = course_copy / "tinytorch" / "core" / "tensor.py"
    before = package.read_bytes()
    first, second = run_tito("export", cwd=course_copy), run_tito("export", cwd=course_copy)
    assert first.returncode == second.returncode == 0
    assert "unchanged" in second.stdout and package.read_bytes() == before


@pytest.mark.slow
def test_test_module_spelling_from_the_lessons_runs_pytest(course_copy):
    result = run_tito("test", "--module", "tensor", cwd=course_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout


@pytest.mark.slow
def test_complete_exports_a_passing_module_and_records_status(course_copy):
    package = course_copy / "tinytorch" / "core" / "tensor.py"
    package.unlink()
    result = run_tito("module", "complete", "01_tensor", cwd=course_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test-tensor-matmul" in result.stdout and "01_tensor is complete" in result.stdout
    assert package.exists()
    assert "passed" in run_tito("status", cwd=course_copy).stdout


@pytest.mark.slow
def test_complete_with_a_broken_solution_names_the_test_and_leaves_the_package(course_copy):
    lesson = course_copy / "modules" / "01_tensor" / "tensor_dev.py"
    lesson.write_text(lesson.read_text().replace("return Tensor(np.matmul(left, right))",
                                                 "return Tensor(np.matmul(left, right) + 1)"))
    package = course_copy / "tinytorch" / "core" / "tensor.py"
    before = package.read_bytes()
    result = run_tito("module", "complete", "01_tensor", cwd=course_copy)
    assert result.returncode == 1
    assert "test-tensor-matmul" in result.stdout and "[[1, 2]] @ [[3], [4]] should be [[11]]" in result.stdout
    assert "the package was not changed" in result.stdout
    assert package.read_bytes() == before
    assert "failed" in run_tito("status", cwd=course_copy).stdout


@pytest.mark.slow
def test_complete_undoes_the_export_when_package_tests_fail(course_copy):
    lesson = course_copy / "modules" / "01_tensor" / "tensor_dev.py"
    lesson.write_text(lesson.read_text().replace("import numpy as np\n", "import numpy as np  # changed\n", 1))
    (course_copy / "tests" / "test_tensor_extra.py").write_text("def test_fails():\n    assert False, 'package broken'\n")
    package = course_copy / "tinytorch" / "core" / "tensor.py"
    before = package.read_bytes()
    result = run_tito("module", "complete", "tensor", cwd=course_copy)
    assert result.returncode == 1 and "export was undone" in result.stdout
    assert package.read_bytes() == before


@pytest.mark.slow
def test_quiet_pytest_keeps_its_summary_and_complete_all_sums_up(tmp_path):
    from student_helpers import small_course

    course = small_course(tmp_path / "course", ["01_tensor", "02_activations"])
    quiet = run_tito("test", "--module", "01", "--", "-q", cwd=course)
    assert quiet.returncode == 0 and " passed in " in quiet.stdout, quiet.stdout
    done = run_tito("module", "complete", "--all", cwd=course)
    assert done.returncode == 0 and "all 2 modules complete: 01_tensor, 02_activations" in done.stdout, done.stdout


def test_formgrader_runs_jupyterlab_in_the_course_folder_ready_for_a_headless_server(course_copy):
    """The formgrader finds the course only when JupyterLab starts in the course folder; as root, JupyterLab
    needs --allow-root; a headless server has no browser to open."""
    import os

    from tito.course import load_course
    from tito.coursefolder import course_folder
    from tito.grading.formgrader import formgrader_command

    course = load_course(course_copy)
    command, env = formgrader_command(course, "127.0.0.1", 9000, False, ["--IdentityProvider.token=x"])
    assert command[:3] == [sys.executable, "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={course_folder(course).root}" in command and "--no-browser" in command
    assert "--ServerApp.ip=127.0.0.1" in command and "--ServerApp.port=9000" in command
    assert ("--allow-root" in command) == (os.geteuid() == 0)
    assert not any("formgrader=False" in part for part in command), "the formgrader stays on"
    assert command[-1] == "--IdentityProvider.token=x"
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable), "nbgrader runs alembic by bare name"
    assert (course_folder(course).root / "nbgrader_config.py").is_file(), "the formgrader reads the course's settings"
