"""Stubs: the parts of a module a student has not written yet, as nbgrader's release leaves them.

A stub is nbgrader's `# YOUR CODE HERE` + `raise NotImplementedError(...)`. A workspace's stubs name the module
and the cell to complete (`name_the_stubs`), so an unfinished function met from a later module says where the
work is; `unwritten_part` reads that back from an error message.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import nbformat
from rich.markup import escape

from .course import Course, Module
from .errors import TitoError
from .notebook import grade_id, is_student_work, module_notebook

# The first line of nbgrader's code stub (tito's nbgrader_config.py and nbgrader's default both use it).
STUB_COMMENT = "# YOUR CODE HERE"
_RAISE = re.compile(r"^(?P<indent>\s*)raise NotImplementedError\((?P<message>.*)\)\s*$")
# What a workspace stub says; parsed back to tell a student which part of which module is unfinished.
_STUB_TEXT = re.compile(r"(?P<module>\d+_\w+) is not complete: write your code(?: in (?P<what>[\w.]+)\(\))? "
                        r"\(cell '(?P<cell>[^']+)'")
_DEF = re.compile(r"^(?P<indent>\s*)(?:async\s+)?def\s+(?P<name>\w+)")
_CLASS = re.compile(r"^(?P<indent>\s*)class\s+(?P<name>\w+)")


@dataclass(frozen=True)
class Stub:
    """One unfinished part: a `raise NotImplementedError` where a solution goes."""

    line: int   # 1-based, in the file or the cell
    what: str   # e.g. "Tensor.__add__", or "" for code outside any function
    cell: str   # the cell's grade id, when known

    def describe(self) -> str:
        where = f"cell '{self.cell}'" if self.cell else "a cell"
        return f"{self.what}() in {where}" if self.what else where


def find_stubs(text: str, cell: str = "") -> list[Stub]:
    """The stubs in a piece of code: nbgrader's `# YOUR CODE HERE` + `raise NotImplementedError(...)`, or a
    `raise NotImplementedError("... is not complete ...")` whose comment line a student removed."""
    lines = text.splitlines()
    stubs = []
    for index, line in enumerate(lines):
        found = _RAISE.match(line)
        if not found:
            continue
        after_comment = index > 0 and lines[index - 1].strip() == STUB_COMMENT
        if not after_comment and " is not complete" not in found.group("message"):
            continue
        named = _STUB_TEXT.search(found.group("message"))
        what, where = (named.group("what") or "", named.group("cell")) if named else (enclosing_name(lines, index), cell)
        stubs.append(Stub(index + 1, what, where))
    return stubs


def enclosing_name(lines: list[str], index: int) -> str:
    """The function (with its class, if any) whose body holds line `index`: "Tensor.__add__", "add" or ""."""
    names: list[str] = []
    limit = _indent(lines[index])
    for line in reversed(lines[:index]):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or _indent(line) >= limit:
            continue
        limit = _indent(line)  # a line that encloses the stub: a def, a class, or an if/for/with block
        header = _DEF.match(line) or _CLASS.match(line)
        if header:
            names.insert(0, header.group("name"))
        if limit == 0:
            break
    return ".".join(names)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def stub_message(module: Module, what: str, cell: str) -> str:
    """What a workspace stub says, e.g. "01_tensor is not complete: write your code in Tensor.__add__() (cell
    'tensor-elementwise' of modules/01_tensor/tensor.ipynb), then run `tito module complete 01_tensor`"."""
    function = f" in {what}()" if what else ""
    return (f"{module.name} is not complete: write your code{function} (cell '{cell}' of modules/{module.name}/"
            f"{module.short}.ipynb), then run `tito module complete {module.name}`")


def unwritten_part(message: str) -> str:
    """The part a workspace stub's error names, e.g. "Tensor.__add__() in cell 'tensor-arithmetic' (01_tensor)";
    "" for any other message."""
    named = _STUB_TEXT.search(message)
    if not named:
        return ""
    what = f"{named.group('what')}() in " if named.group("what") else ""
    return f"{what}cell '{named.group('cell')}' ({named.group('module')})"


def name_the_stubs(notebook: nbformat.NotebookNode, module: Module) -> int:
    """Rewrite each stub of the notebook's solution cells so that its message names the module and the cell.

    nbgrader writes one stub for every solution region, naming only the module; a student who meets it from a
    later module (through the package) needs to know which part to write, and where. Returns how many stubs.
    """
    count = 0
    for index, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code" or not is_student_work(cell):
            continue
        stubs = find_stubs(cell.source)
        if not stubs:
            continue
        lines = cell.source.splitlines()
        for stub in stubs:
            position = stub.line - 1
            indent = _RAISE.match(lines[position]).group("indent")
            message = stub_message(module, stub.what, grade_id(cell) or f"cell {index}")
            lines[position] = f"{indent}raise NotImplementedError({message!r})"
            count += 1
        cell.source = "\n".join(lines) + ("\n" if cell.source.endswith("\n") else "")
    return count


def notebook_stubs(notebook: nbformat.NotebookNode) -> list[Stub]:
    """The unfinished parts left in a module notebook's solution cells."""
    stubs = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and is_student_work(cell):
            stubs += find_stubs(cell.source, grade_id(cell) or "")
    return stubs


def package_stubs(course: Course, module: Module) -> list[Stub] | None:
    """The unfinished parts in the module's file of the package; None when it has not been exported."""
    path = module.package_file(course.root)
    return find_stubs(path.read_text(encoding="utf-8")) if path.exists() else None


def progress(course: Course, module: Module) -> tuple[str, str]:
    """A student's progress on a module, as rich text: its state in a few words (complete, written, how many parts
    are left), and the next step ("" when complete)."""
    try:
        left = notebook_stubs(module_notebook(module))
        packaged = package_stubs(course, module)
    except TitoError as error:
        return "[red]unreadable[/]", escape(str(error))
    if packaged is not None and not packaged:
        return "[green]complete[/]", ""
    if not left:
        return "[yellow]written[/]", escape(f"run `tito module complete {module.name}`")
    return f"{len(left)} part{'s' * (len(left) != 1)} to write", escape(f"write {left[0].describe()}")
