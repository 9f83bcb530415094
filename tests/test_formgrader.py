"""`tito nbgrader formgrader` and a course on one machine (no exchange): what nbgrader is configured to do.

The formgrader in a browser is tests/test_browser_hostile.py; these run nbgrader's own API in-process.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from conftest import run_tito
from tito.course import load_course
from tito.coursefolder import course_folder, write_config
from tito.grading.formgrader import formgrader_command, free_port

SYSTEM_EXCHANGE = Path("/usr/local/share/nbgrader/exchange")


def nbgrader_api(course):
    """nbgrader's API as the formgrader builds it, from the course's nbgrader_config.py."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    folder = course_folder(course)
    config = PyFileConfigLoader(folder.config.name, path=str(folder.root)).load_config()
    return NbGraderAPI(CourseDirectory(config=config), config=config)


@pytest.mark.skipif(SYSTEM_EXCHANGE.exists(), reason="nbgrader's default exchange exists on this machine")
def test_a_course_without_exchange_shows_no_warning_and_creates_no_system_folder(course_copy):
    course = load_course(course_copy)
    write_config(course)
    api = nbgrader_api(course)
    assert api.exchange_missing is False, "the formgrader shows no 'exchange directory could not be created' box"
    released = api.release_assignment("01_tensor")
    assert not released["success"] and "set [nbgrader] exchange in settings.ini" in released["error"]
    assert not SYSTEM_EXCHANGE.exists(), "the formgrader's Release button created nbgrader's system folder"


def test_publish_without_exchange_refuses_in_one_line(course_copy):
    published = run_tito("nbgrader", "publish", "01_tensor", cwd=course_copy)
    assert published.returncode == 2, published.stdout + published.stderr
    assert (published.stdout + published.stderr).strip().splitlines() == [
        "error: this course has no exchange: set [nbgrader] exchange in settings.ini to a folder every account can "
        "reach (docs/instructor.md, section 9); on one machine students hand in with `tito student submit --course "
        "PATH` instead"], published.stderr
    assert not SYSTEM_EXCHANGE.exists()


def test_a_course_with_an_exchange_keeps_nbgraders_exchange(course_copy, tmp_path):
    settings = course_copy / "settings.ini"
    settings.write_text(settings.read_text().replace("\nexchange =", f"\nexchange = {tmp_path}", 1))
    course = load_course(course_copy)
    text = write_config(course).read_text()
    assert f"c.Exchange.root = {str(tmp_path)!r}" in text and "no_exchange" not in text


def test_the_formgrader_takes_the_next_free_port_and_renders_with_titos_templates(course_copy):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert free_port("127.0.0.1", port) != port
    command, env = formgrader_command(load_course(course_copy), "127.0.0.1", port, False, [])
    templates = Path(env["JUPYTER_PATH"].split(os.pathsep)[0])
    assert (templates / "nbconvert" / "templates" / "formgrade" / "mathjax.html.j2").is_file()
    static = next(part for part in command if part.startswith("--ServerApp.extra_static_paths="))
    assert "tito-mathjax-config.js" in os.listdir(eval(static.split("=", 1)[1])[0])
