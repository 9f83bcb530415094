"""nbgrader's exchange: a folder on a shared server through which releases, submissions and feedback travel.

Its layout and permissions are nbgrader's own (nbgrader.exchange.default), so students may use nbgrader's
Assignment List in JupyterLab or the `tito student` commands, and instructors nbgrader's formgrader or tito:

    <root>/                                        0777: every user may create a course folder in it
    <root>/<course>/outbound/<module>/<name>.ipynb   0755: the release, readable by all (`tito nbgrader publish`)
    <root>/<course>/inbound/<student>+<module>+<time>+<random>/   2733: anyone may hand in, no student may list
    <root>/<course>/feedback/<hash>.html            0711: a page is found only through its submission's secret

Instructor side (`publish`, `collect`, `return_feedback`) runs in the course folder with the course's
nbgrader_config.py; student side (`fetch`, `submit`, `fetch_feedback`) runs in the student's folder with the
nbgrader settings the student's JupyterLab reads (the Jupyter config path, see docs/instructor.md).
"""
from __future__ import annotations

import glob
import os
import pwd
import re
from dataclasses import dataclass, field
from pathlib import Path

from .course import Course, Module
from .coursefolder import course_folder, grading_settings
from .errors import TitoError
from .nbgrader_session import failure_reason, nbgrader_session, run_converter

# Files nbgrader's submit writes beside the notebook; they travel with it to the course folder and back.
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")
CONFIG_FILE = "nbgrader_config.py"


# ------------------------------------------------------------------------------------------- instructor

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


def exchange_root(config) -> str:
    from nbgrader.exchange.default import Exchange

    return Exchange(config=config).root


def publish(course: Course, module: Module) -> Path:
    """course/release/<module>/ -> <exchange>/<course>/outbound/<module>/ (replacing an earlier one); its path."""
    from .grading import require_release

    require_exchange(course)
    require_release(course, module)
    folder = course_folder(course)
    with nbgrader_session(course, module, folder.log(module, "publish")) as (config, log):
        releaser = _exchange_step(config, module, "release_assignment")
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
        collector = _exchange_step(config, module, "collect", owned=True)
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
            releaser = _exchange_step(config, module, "release_feedback")
            releaser.coursedir.student_id_exclude = ",".join(skipped)
            _run(releaser, log, f"return the feedback of {module.name} through the exchange at {exchange_root(config)}")
    return returned, skipped


def _timestamps(folder, module: Module) -> dict[str, str]:
    stamps = {}
    for path in (folder.root / "submitted").glob(f"*/{module.name}"):
        stamp = path / EXCHANGE_FILES[0]
        stamps[path.parent.name] = stamp.read_text(encoding="utf-8").strip() if stamp.exists() else ""
    return stamps


def _exchange_step(config, module: Module, step: str, student: str = "", owned: bool = False):
    """One of nbgrader's exchange steps (the class configured in its ExchangeFactory, e.g. `collect`), for `module`."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeFactory

    directory = CourseDirectory(config=config)
    directory.assignment_id = module.name
    if student:
        directory.student_id = student
    step_class = getattr(ExchangeFactory(config=config), step)  # the class, so that tito may refine it
    if owned:
        step_class = _owned_only(step_class)
    return step_class(coursedir=directory, authenticator=Authenticator(config=config), config=config)


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
        raise TitoError(f"could not {what}: {_exchange_reason(text)}")


def _exchange_reason(text: str) -> str:
    """nbgrader's exchange says what went wrong in a CRITICAL log line before raising ExchangeError."""
    found = re.findall(r"^\[CRITICAL\] (.+)$", text, flags=re.MULTILINE)
    return found[-1] if found else failure_reason(text)


# ---------------------------------------------------------------------------------------------- student

@dataclass(frozen=True)
class StudentSide:
    """Where a student's copies of the modules live, and the nbgrader settings their JupyterLab reads."""

    folder: Path          # <folder>/<module>/<name>.ipynb, as nbgrader's Assignment List lays them out
    config: object        # traitlets Config
    course_id: str
    root: str             # the exchange


def student_side(folder: Path, exchange: str | None = None, course_id: str | None = None,
                 context: str = "") -> StudentSide:
    """The exchange settings for a student: nbgrader_config.py found on the Jupyter config path and in `folder`
    (the same files nbgrader's Assignment List reads), then --exchange and --course-id, which win. `context`
    starts the message when no course is found."""
    import importlib.util

    if importlib.util.find_spec("nbgrader") is None:
        raise TitoError("nbgrader's exchange needs nbgrader, which is not installed here: `pip install nbgrader` "
                        "(your course's JupyterHub has it)", 2)
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config import Config
    from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

    config = Config()
    for directory in reversed([str(folder), *jupyter_config_path()]):  # lowest priority first, so the highest wins
        try:
            config.merge(PyFileConfigLoader(CONFIG_FILE, path=directory).load_config())
        except ConfigFileNotFound:
            continue
    if exchange:
        config.Exchange.root = str(Path(exchange).expanduser().absolute())
    if course_id:
        config.CourseDirectory.course_id = course_id
    config.Exchange.assignment_dir = str(folder)
    config.Exchange.path_includes_course = False
    chosen_course = config.CourseDirectory.get("course_id", "") if "CourseDirectory" in config else ""
    if not chosen_course:
        raise TitoError(f"{context}no course id for nbgrader's exchange: pass --course-id ID, or ask your instructor "
                        f"for the course's nbgrader_config.py (CourseDirectory.course_id)", 2)
    side = StudentSide(folder, config, chosen_course, exchange_root(config))
    if not Path(side.root, chosen_course, "outbound").is_dir():
        raise TitoError(f"the exchange at {side.root} has no course '{chosen_course}' (no {chosen_course}/outbound/): "
                        f"check --exchange and --course-id, or ask your instructor whether a module was published", 2)
    return side


def published_modules(side: StudentSide) -> list[str]:
    outbound = Path(side.root, side.course_id, "outbound")
    return sorted(path.name for path in outbound.iterdir() if path.is_dir())


def published_module(side: StudentSide, name: str) -> str:
    """A module published in the exchange, named in full (`01_tensor`), by number (`01`) or short name (`tensor`)."""
    published = published_modules(side)
    wanted = name.strip().lower()
    for module in published:
        number, _, short = module.partition("_")
        if wanted in (module, short) or (wanted.isdigit() and number.isdigit() and int(wanted) == int(number)):
            return module
    offered = ", ".join(published) or "none yet"
    raise TitoError(f"'{name}' is not published in the exchange of course {side.course_id} (published: {offered})", 2)


def fetch(side: StudentSide, module: str) -> Path:
    """<exchange>/<course>/outbound/<module>/ -> <folder>/<module>/; a copy already there is never overwritten."""
    target = side.folder / module
    if target.exists():
        raise TitoError(f"you already have {target}: nothing was fetched (your work there is kept; to start over, "
                        f"rename that folder and fetch again)", 2)
    _student_step(side, module, "fetch_assignment", f"fetch {module}")
    return target


def submit(side: StudentSide, module: str, student: str = "") -> str:
    """<folder>/<module>/ -> <exchange>/<course>/inbound/<student>+<module>+<time>+<random>/; the time recorded."""
    notebooks = sorted((side.folder / module).glob("*.ipynb")) if (side.folder / module).is_dir() else []
    if not notebooks:
        raise TitoError(f"no notebook to submit in {side.folder / module}: fetch {module} first "
                        f"(`tito student fetch {module}`)", 2)
    step = _student_step(side, module, "submit", f"submit {module}", student)
    return step.timestamp


def fetch_feedback(side: StudentSide, module: str) -> list[Path]:
    """Feedback returned for each of your submissions of `module` -> <folder>/<module>/feedback/<time>/<name>.html."""
    if not Path(side.root, side.course_id, "feedback").is_dir():
        raise TitoError(f"no feedback has been returned in course {side.course_id} yet (ask your instructor)", 1)
    step = _student_step(side, module, "fetch_feedback", f"fetch the feedback of {module}")
    if not step.feedback_files:
        raise TitoError(f"no feedback returned yet for your submissions of {module} (ask your instructor, or check "
                        f"that you submitted it from this account)", 1)
    return sorted(Path(step.dest_path, timestamp, f"{notebook}.html") for notebook, timestamp, _ in step.feedback_files)


def _student_step(side: StudentSide, module: str, step: str, what: str, student: str = ""):
    import io

    converter = _exchange_step(side.config, _named(module), step, student=student)
    succeeded, text = run_converter(converter, io.StringIO())
    if not succeeded:
        raise TitoError(f"could not {what}: {_exchange_reason(text)}")
    return converter


def _named(name: str) -> Module:
    return Module(name, Path(name))
