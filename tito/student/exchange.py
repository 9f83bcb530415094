"""The student's side of nbgrader's exchange on a shared server (its layout is nbgrader's own): fetch a
published module, hand it in, fetch the feedback returned for it. It runs in the student's folder with the
nbgrader settings the student's JupyterLab reads (the Jupyter config path, see docs/instructor.md).
"""
from __future__ import annotations

import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path

from ..course import Module
from ..errors import TitoError
from ..nbgrader_steps import exchange_reason, exchange_root, exchange_step, run_converter


CONFIG_FILE = "nbgrader_config.py"


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
    converter = exchange_step(side.config, _named(module), step, student=student)
    succeeded, text = run_converter(converter, io.StringIO())
    if not succeeded:
        raise TitoError(f"could not {what}: {exchange_reason(text)}")
    return converter


def _named(name: str) -> Module:
    return Module(name, Path(name))
