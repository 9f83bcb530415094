"""feedback: an HTML page per autograded student, made with nbgrader's GenerateFeedback from a sanitized copy of
the graded notebook (tito/grading/outputs.py), served with a Content-Security-Policy and MathJax of its own
(tito/grading/templates/feedback/).
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jupyter_server_mathjax
from nbgrader.api import Gradebook
from nbgrader.converters import GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.server_extensions.formgrader import handlers
from traitlets.config import Config

from ..course import Course, Module
from ..coursefolder import course_folder, grading_settings, notebook_name, require_release
from ..errors import TitoError
from ..nbgrader_steps import failure_reason, run_converter
from ..notebook import grade_id, nbgrader_metadata
from .outputs import safe_notebook
from .session import nbgrader_session, quiet_warnings

TEMPLATES = Path(__file__).with_name("templates")  # the feedback page's, the formgrader's, tito's MathJax settings

@dataclass
class Feedback:
    student: str
    path: Path | None
    error: str = ""
    pending: list[str] = field(default_factory=list)  # written answers not graded yet (shown so on the page)


def autograded_students(course: Course, module: Module) -> list[str]:
    folder = course_folder(course)
    pattern = f"*/{module.name}/{notebook_name(module)}"
    return sorted(path.parent.parent.name for path in (folder.root / "autograded").glob(pattern))


def feedback(course: Course, module: Module, students: list[str] | None = None,
             on_result: Callable[[Feedback], None] | None = None) -> list[Feedback]:
    """An HTML page per autograded student: their notebook with each test's result and the points.

    A page shows only safe outputs (tito/grading/outputs.py) and runs no script but MathJax, copied once into
    feedback/mathjax/ (tito/grading/templates/feedback/ holds the page's template and its Content-Security-Policy).
    """
    folder = course_folder(course)
    require_release(course, module)
    graded = autograded_students(course, module)
    for student in students or []:
        if student not in graded:
            raise TitoError(f"no autograded submission of {module.name} from student '{student}': run "
                            f"`tito nbgrader autograde {module.name} --student {student}` first", 2)
    bundle_mathjax(folder.root / "feedback" / "mathjax")
    results = []
    with nbgrader_session(course, module, folder.log(module, "feedback")) as (config, log):
        html = Config()
        html.HTMLExporter.template_name = "feedback"
        html.HTMLExporter.template_file = "tito_feedback.html.j2"
        # Searched first: tito's page and its mathjax macro in templates/feedback/, then nbgrader's feedback template.
        html.HTMLExporter.extra_template_basedirs = [str(TEMPLATES), nbgrader_templates()]
        config.merge(html)
        for student in list(dict.fromkeys(students)) if students else graded:
            directory = CourseDirectory(config=config)
            directory.assignment_id, directory.student_id = module.name, student
            generator = GenerateFeedback(coursedir=directory, config=config)
            generator.force = True
            pending = pending_answers(course, module, student)
            generator.preprocessors = [*generator.preprocessors, _safe_page(pending)]
            log.write(f"\n===== {student} =====\n")
            succeeded, text = run_converter(generator, log)
            result = (Feedback(student, folder.feedback(student, module), pending=pending) if succeeded
                      else Feedback(student, None, f"no feedback: {failure_reason(text)}"))
            results.append(result)
            if on_result:
                on_result(result)
    return results


def nbgrader_templates() -> str:
    return handlers.template_path


def pending_answers(course: Course, module: Module, student: str) -> list[str]:
    """The grade ids of `student`'s written answers that await a grader in the formgrader."""
    with quiet_warnings(), Gradebook(f"sqlite:///{course_folder(course).gradebook}",
                                     grading_settings(course).course_id) as gradebook:
        notebook = gradebook.find_submission_notebook(module.short, module.name, student)
        return [entry.name for entry in notebook.grades if entry.cell.cell_type != "code" and entry.needs_manual_grade]


def _safe_page(pending: list[str]):
    """An nbgrader preprocessor for a feedback page: only safe content (tito/grading/outputs.py), pending answers marked."""
    class SafePage(NbGraderPreprocessor):
        def preprocess(self, notebook, resources):
            safe_notebook(notebook)
            for cell in notebook.cells:
                if grade_id(cell) in pending:
                    nbgrader_metadata(cell)["tito_pending"] = True
            resources["tito_pending"] = bool(pending)
            return notebook, resources

    step = SafePage()
    step.enabled = True
    return step


def bundle_mathjax(target: Path) -> None:
    """MathJax (from jupyter_server_mathjax) and tito's settings for it in `target`, once: math on a feedback page
    renders with no network and from the course's own files."""
    config = TEMPLATES / "static" / "tito-mathjax-config.js"
    if not (target / "MathJax.js").exists():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(Path(jupyter_server_mathjax.__file__).with_name("static"), partial)
        os.replace(partial, target)
    if not (target / config.name).exists() or (target / config.name).read_bytes() != config.read_bytes():
        shutil.copy2(config, target / config.name)
