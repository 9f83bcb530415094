"""Which earlier modules a module builds on (the package modules its code imports), and whether they are done."""
from __future__ import annotations

import re

from .course import Course, Module
from .errors import TitoError
from .notebook import module_notebook
from .stubs import Stub, package_stubs


# `from tinytorch.core.tensor import ...`, `import tinytorch.core.operations` or `from tinytorch.core import operations`
_IMPORT = re.compile(r"^\s*(?:from|import)\s+tinytorch\.core(?:\.|\s+import\s+)(\w+)", re.MULTILINE)


def prerequisites(course: Course, module: Module) -> list[Module]:
    """The earlier modules whose package code this module imports, directly or through each other, in course order.

    Only modules before this one count: a lesson may peek at a later module (module 02 tries autograd when it
    exists). Module 05 loads module 06 when it exists, so a module after 06 that imports 05 needs 06 too.
    """
    order = list(course.modules)
    position = order.index(module)
    by_package = {}
    for other in order:
        try:
            by_package[other.package_module.split(".")[-1]] = other
        except TitoError:
            continue
    needed: set[str] = set()
    pending = [module]
    while pending:
        current = pending.pop()
        for name in _IMPORT.findall(_code_of(current)):
            other = by_package.get(name)
            if other and order.index(other) < position and other.name not in needed:
                needed.add(other.name)
                pending.append(other)
    return [other for other in order if other.name in needed]


def _code_of(module: Module) -> str:
    return "\n".join(cell.source for cell in module_notebook(module).cells if cell.cell_type == "code")


def unfinished_prerequisites(course: Course, module: Module) -> list[tuple[Module, list[Stub] | None]]:
    """Each earlier module this one builds on whose package file is missing or still has stubs."""
    unfinished = []
    for other in prerequisites(course, module):
        stubs = package_stubs(course, other)
        if stubs is None or stubs:
            unfinished.append((other, stubs))
    return unfinished


def prerequisite_problem(course: Course, module: Module) -> str:
    """One line saying which earlier modules must be completed before `module`, or "" when none."""
    unfinished = unfinished_prerequisites(course, module)
    if not unfinished:
        return ""
    parts = []
    for other, stubs in unfinished:
        file = other.package_file(course.root).relative_to(course.root)
        if stubs is None:
            parts.append(f"{other.name} ({file} does not exist yet)")
        else:
            count = f"{len(stubs)} unfinished part{'s' * (len(stubs) != 1)}"
            parts.append(f"{other.name} ({file} still has {count}, first: {stubs[0].describe()})")
    names = [other.name for other, _ in unfinished]
    return (f"{module.name} builds on {' and '.join(parts)}: complete {' and '.join(names)} first, "
            f"with `tito module complete {names[0]}`")
