"""The last test result of each module, kept so `tito status` can show progress without rerunning."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from .course import Course


def _store(course: Course) -> Path:
    return course.root / ".tito" / "results.json"


def load(course: Course) -> dict:
    try:
        return json.loads(_store(course).read_text())
    except (OSError, ValueError):
        return {}


def record(course: Course, module_name: str, passed: bool) -> None:
    results = load(course)
    results[module_name] = {"passed": passed, "when": datetime.now().isoformat(timespec="seconds")}
    _store(course).parent.mkdir(exist_ok=True)
    _store(course).write_text(json.dumps(results, indent=1))
