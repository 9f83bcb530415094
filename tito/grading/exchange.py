"""nbgrader's exchange: a folder on a shared server through which releases, submissions and feedback travel.

Its layout and permissions are nbgrader's own (nbgrader.exchange.default), so students may use nbgrader's
Assignment List in JupyterLab or the `tito student` commands, and instructors nbgrader's formgrader or tito:

    <root>/                                        0777: every user may create a course folder in it
    <root>/<course>/outbound/<module>/<name>.ipynb   0755: the release, readable by all (`tito nbgrader publish`)
    <root>/<course>/inbound/<student>+<module>+<time>+<random>/   2733: anyone may hand in, no student may list
    <root>/<course>/feedback/<hash>.html            0711: a page is found only through its submission's secret

This is the instructor's side (`publish`, `collect`, `return_feedback`): it runs in the course folder with the
course's nbgrader_config.py. The student's side (`fetch`, `submit`, `fetch_feedback`) is tito/student/exchange.py.
"""
from __future__ import annotations

import glob
import os
import pwd
from dataclasses import dataclass, field
from pathlib import Path

from ..course import Course, Module
from ..coursefolder import EXCHANGE_FILES, course_folder, grading_settings, require_release
from ..errors import TitoError
from ..nbgrader_steps import exchange_reason, exchange_root, exchange_step, run_converter
from .session import nbgrader_session

@dataclass
class Collected:
    new: list[str] = field(default_factory=list)        # first submission collected
    updated: list[str] = field(default_factory=list)    # a newer submission replaced the one in submitted/
    unchanged: list[str] = field(default_factory=list)  # nothing newer in the exchange
    refused: list[str] = field(default_factory=list)    # "<folder> (handed in by <owner>)": not the student's own


def require_exchange(course: Course) -> None:
    """A course on one machine has no exchange: nbgrader would create its default folder system-wide unasked."""
    if not grading_settings(course).exchange:
        raise TitoError("this course has no exchange: set [nbgrader] exchange in settings.ini to a folder every "
                        "account can reach (docs/instructor.md, section 9); on one machine students hand in with "
                        "`tito student submit --course PATH` instead", 2)


def publish(course: Course, module: Module) -> Path:
    """course/release/<module>/ -> <exchange>/<course>/outbound/<module>/ (replacing an earlier one); its path."""
    require_exchange(course)
    require_release(course, module)
    folder = course_folder(course)
    with nbgrader_session(course, module, folder.log(module, "publish")) as (config, log):
        releaser = exchange_step(config, module, "release_assignment")
        releaser.force = True
        _run(releaser, log, f"publish {module.name} to the exchange at {exchange_root(config)}")
        return Path(releaser.dest_path)


def collect(course: Course, module: Module) -> Collected:
    """Each student's newest submission of `module` in the exchange -> course/submitted/<student>/<module>/.

    A submission folder not owned by the Unix user it names is refused (nbgrader only warns): on a shared
    server a student could otherwise hand work in under another's name. Student ids are login names.
    """
    require_exchange(course)
    folder = course_folder(course)
    before = _timestamps(folder, module)
    with nbgrader_session(course, module, folder.log(module, "collect")) as (config, log):
        collector = exchange_step(config, module, "collect", refine=_owned_only)
        collector.update = True
        _run(collector, log, f"collect {module.name} from the exchange at {exchange_root(config)}")
        result = Collected(refused=collector.refused)
        in_exchange = {record["username"] for record in collector.src_records}
    after = _timestamps(folder, module)
    for student in sorted(in_exchange & set(after)):  # not those handed in another way (docs/instructor.md, section 4)
        target = result.new if student not in before else result.updated if after[student] != before[student] \
            else result.unchanged
        target.append(student)
    return result


def return_feedback(course: Course, module: Module) -> tuple[list[str], list[str]]:
    """Each feedback page of `module` -> the exchange, where only the student who handed the work in finds it.

    Returns (students returned, students whose work did not come through the exchange: they have no
    submission secret, so nbgrader cannot address a page to them).
    """
    require_exchange(course)
    folder = course_folder(course)
    pages = sorted((folder.root / "feedback").glob(f"*/{module.name}/{module.short}.html"))
    if not pages:
        raise TitoError(f"no feedback pages of {module.name}: run `tito nbgrader feedback {module.name}` first", 2)
    returned = [page.parent.parent.name for page in pages if (page.parent / EXCHANGE_FILES[1]).exists()]
    skipped = [page.parent.parent.name for page in pages if not (page.parent / EXCHANGE_FILES[1]).exists()]
    if returned:
        with nbgrader_session(course, module, folder.log(module, "return")) as (config, log):
            releaser = exchange_step(config, module, "release_feedback")
            releaser.coursedir.student_id_exclude = ",".join(skipped)
            _run(releaser, log, f"return the feedback of {module.name} through the exchange at {exchange_root(config)}")
    return returned, skipped


def _timestamps(folder, module: Module) -> dict[str, str]:
    stamps = {}
    for path in (folder.root / "submitted").glob(f"*/{module.name}"):
        stamp = path / EXCHANGE_FILES[0]
        stamps[path.parent.name] = stamp.read_text(encoding="utf-8").strip() if stamp.exists() else ""
    return stamps


def _owned_only(collect_class):
    """nbgrader's Collect, taking for each student the newest submission owned by that student's login."""

    class OwnedCollect(collect_class):
        refused: list[str] = []

        def init_src(self):
            super().init_src()
            self.refused = []
            pattern = os.path.join(self.inbound_path, f"*+{self.coursedir.assignment_id}+*")
            newest: dict[str, dict] = {}
            for path in glob.glob(pattern):
                record = self._path_to_record(path)
                owner = _owner(path)
                if owner != record["username"]:
                    self.refused.append(f"{record['filename']} (handed in by {owner})")
                    continue
                if record["username"] not in newest or record["timestamp"] > newest[record["username"]]["timestamp"]:
                    newest[record["username"]] = record
            self.src_records = list(newest.values())

    return OwnedCollect


def _owner(path: str) -> str:
    uid = os.stat(path).st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _run(step, log, what: str) -> None:
    succeeded, text = run_converter(step, log)
    if not succeeded:
        raise TitoError(f"could not {what}: {exchange_reason(text)}")
