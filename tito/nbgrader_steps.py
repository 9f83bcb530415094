"""Running one of nbgrader's steps in this process (a converter, or a step of its exchange) and saying why it
failed, for both sides of the course folder: the grading wing runs its converters and the instructor's side of
the exchange, the student wing the student's side (fetch, submit, feedback).

A kit has no nbgrader (a student's JupyterHub does): nbgrader is imported only when a step is made.
"""
from __future__ import annotations

import io
import logging
import re
import traceback

from .course import Module


def run_converter(converter, log) -> tuple[bool, str]:
    """Start an nbgrader converter; whether it succeeded, and what it logged (also written to `log`)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    logger, level = converter.log, converter.log.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        converter.start()
        succeeded = True
    except Exception:  # nbgrader's converters raise many kinds; the log and the traceback tell which
        buffer.write(traceback.format_exc())
        succeeded = False
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    text = buffer.getvalue()
    log.write(text)
    log.flush()
    return succeeded, text


_EXCEPTION = re.compile(r"^\s*(?:[\w.]+\.)?(\w+(?:Error|Exception|Interrupt|Exit)): (.+)$")


def failure_reason(log_text: str) -> str:
    """The most telling line of a failed nbgrader run: its last exception that says more than "see above"."""
    found = [match for match in map(_EXCEPTION.match, log_text.splitlines())
             if match and not match.group(2).startswith("Please see")]
    if found:
        return f"{found[-1].group(1)}: {found[-1].group(2)}"[:300]
    errors = [line[len("[ERROR] "):] for line in log_text.splitlines() if line.startswith("[ERROR] ")]
    return errors[0][:300] if errors else "nbgrader failed without a message"


def exchange_root(config) -> str:
    from nbgrader.exchange.default import Exchange

    return Exchange(config=config).root


def exchange_step(config, module: Module, step: str, student: str = "", refine=None):
    """One of nbgrader's exchange steps (the class configured in its ExchangeFactory, e.g. `collect`), for
    `module`; `refine` (the class -> a subclass) lets the instructor's side tighten it."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeFactory

    directory = CourseDirectory(config=config)
    directory.assignment_id = module.name
    if student:
        directory.student_id = student
    step_class = getattr(ExchangeFactory(config=config), step)  # the class, so that tito may refine it
    if refine is not None:
        step_class = refine(step_class)
    return step_class(coursedir=directory, authenticator=Authenticator(config=config), config=config)


def exchange_reason(text: str) -> str:
    """nbgrader's exchange says what went wrong in a CRITICAL log line before raising ExchangeError."""
    found = re.findall(r"^\[CRITICAL\] (.+)$", text, flags=re.MULTILINE)
    return found[-1] if found else failure_reason(text)
