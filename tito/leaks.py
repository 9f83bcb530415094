"""The no-leak rule: nothing a student is meant to write may reach them.

A *secret* is a line of a solution-bearing source that sits inside a solution region (or a hidden-test
region), or anywhere in a solution cell that has no region (nbgrader replaces such a cell whole, as it
does every markdown answer cell). `find_leaks` reports each secret line found in any file of a folder
given to students: `course/release/` here, a student workspace elsewhere.

Matching is exact, on stripped lines, with three exclusions, each because the line then tells a student
nothing: lines the source also shows outside every secret region (given code that happens to repeat a
solution line), lines an earlier lesson gives (`course_secrets`), and lines that are the same in every program: punctuation and bare keywords (`else:`,
`)`, `pass`, `raise`), or one statement keyword with one bare name (`return self`, `except ValueError:`,
`if done:`).

What a submission prints is checked harder (`shows_secret`), since a student chooses how to print it: each
line, also split at escaped newlines and HTML tags, is compared in `normalized` form, with every space
removed and the decoration a printout puts around a line stripped (line numbers, `| `, prompts, quotes).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .notebook import grade_id, is_student_work

# Lines the same in every program, so they reveal nothing: punctuation and bare keywords (`else:`, `)`, `raise`),
# or a statement keyword with one bare name and nothing else (`return self`, `except ValueError:`, `if done:`).
_TRIVIAL = re.compile(r"[\W_]*(?:\b(?:else|try|finally|pass|return|raise|break|continue|None|True|False)\b[\W_]*)*"
                      r"|(?:return|raise|except|yield|if|elif|while)\s+[\w.]+:?")


# What a printout may put around a line of code: line numbers, bars, prompts, quotes, list brackets, commas.
_DECORATION = re.compile(r"^[\d|>:.#'\"`,\[]+|['\"`,\]\\]+$")
# Where one printed line may hold several source lines: escaped newlines (a repr) and HTML tags.
_LINE_BREAKS = re.compile(r"\n|\\n|<[^>]*>")


def normalized(line: str) -> str:
    """A line of code as `shows_secret` compares it: no whitespace at all, and no decoration around it."""
    return _DECORATION.sub("", re.sub(r"\s+", "", line))


def normalized_secrets(secrets: dict[str, str]) -> dict[str, str]:
    """The normalized form of each secret line (see `secret_lines`) -> where it comes from."""
    return {normalized(line): origin for line, origin in secrets.items() if normalized(line)}


def shows_secret(text: str, secrets: dict[str, str]) -> str:
    """The first line of `text` that shows a secret, in any normalized form; "" when none does.
    `secrets` is `normalized_secrets(...)`."""
    return next((line for line in _LINE_BREAKS.split(text) if normalized(line) in secrets), "")


@dataclass(frozen=True)
class Delimiters:
    """The marker lines around solution regions and hidden-test regions (nbgrader matches them as substrings)."""

    begin_solution: str = "### BEGIN SOLUTION"
    end_solution: str = "### END SOLUTION"
    begin_hidden_tests: str = "### BEGIN HIDDEN TESTS"
    end_hidden_tests: str = "### END HIDDEN TESTS"

    @property
    def markers(self) -> tuple[str, ...]:
        return self.begin_solution, self.end_solution, self.begin_hidden_tests, self.end_hidden_tests


@dataclass(frozen=True)
class Leak:
    file: Path
    where: str  # "line 7", or "cell 12, line 3" in a notebook
    text: str
    origin: str  # where the secret comes from, e.g. "01_tensor cell tensor-matmul"

    def __str__(self) -> str:
        return f"{self.file} ({self.where}) shows a solution line of {self.origin}: {self.text.strip()[:80]}"


def secret_lines(notebook: nbformat.NotebookNode, name: str, delimiters: Delimiters = Delimiters()) -> dict[str, str]:
    """Each secret line of a solution-bearing notebook (stripped) -> where it comes from, e.g. "01_tensor cell x"."""
    secret, given = _secret_and_given(notebook, name, delimiters)
    return {line: origin for line, origin in secret.items() if line not in given and not _TRIVIAL.fullmatch(line)}


def course_secrets(lessons: list[tuple[str, nbformat.NotebookNode]],
                   delimiters: Delimiters = Delimiters()) -> dict[str, str]:
    """The secret lines of every lesson, given in teaching order. A line that an earlier lesson gives outside its
    secret regions is no secret of a later one (`tracemalloc.start()` given in 02 and written in 17): the student
    has read it before reaching the exercise. A later lesson's given code is never an excuse: it would show an
    earlier exercise's answer."""
    secrets: dict[str, str] = {}
    shown: set[str] = set()
    for name, notebook in lessons:
        secret, given = _secret_and_given(notebook, name, delimiters)
        secrets.update({line: origin for line, origin in secret.items()
                        if line not in given and line not in shown and not _TRIVIAL.fullmatch(line)})
        shown |= given
    return secrets


def _secret_and_given(notebook: nbformat.NotebookNode, name: str,
                      delimiters: Delimiters) -> tuple[dict[str, str], set[str]]:
    """The notebook's lines inside secret regions (-> their origin) and its other lines, stripped."""
    secret: dict[str, str] = {}
    given: set[str] = set()
    for index, cell in enumerate(notebook.cells):
        origin = f"{name} cell {grade_id(cell) or index + 1}"
        lines = cell.source.splitlines()
        regions = _in_regions(lines, delimiters)
        # nbgrader replaces a solution cell without a solution region whole (every markdown answer cell).
        whole_cell_is_secret = is_student_work(cell) and not any(delimiters.begin_solution in line for line in lines)
        for line, inside in zip(lines, regions):
            stripped = line.strip()
            if any(marker in line for marker in delimiters.markers):
                continue
            if inside or whole_cell_is_secret:
                secret.setdefault(stripped, origin)
            else:
                given.add(stripped)
    return secret, given


def find_leaks(secrets: dict[str, str], folder: Path) -> list[Leak]:
    """Every secret line in any file under `folder`."""
    return [leak for path in sorted(p for p in folder.rglob("*") if p.is_file()) for leak in leaks_in_file(secrets, path)]


def leaks_in_file(secrets: dict[str, str], path: Path) -> list[Leak]:
    """Every secret line in one file; compiled Python counts as a leak, since its code cannot be checked."""
    if path.suffix in (".pyc", ".pyo"):
        return [Leak(path, "compiled Python", "(its code cannot be checked)", "an unknown module")]
    return [Leak(path, where, line, secrets[line.strip()]) for where, line in _text_lines(path) if line.strip() in secrets]


def _in_regions(lines: list[str], delimiters: Delimiters) -> list[bool]:
    """For each line, whether it lies between a begin and an end marker (the marker lines themselves: False)."""
    inside, flags = False, []
    for line in lines:
        if delimiters.begin_solution in line or delimiters.begin_hidden_tests in line:
            inside = True
            flags.append(False)
        elif delimiters.end_solution in line or delimiters.end_hidden_tests in line:
            inside = False
            flags.append(False)
        else:
            flags.append(inside)
    return flags


def _text_lines(path: Path) -> list[tuple[str, str]]:
    """(where, line) for each line a reader of the file sees: a notebook's cell sources and outputs, else its text."""
    raw = path.read_bytes().decode("utf-8", errors="replace")
    if path.suffix == ".ipynb":
        try:
            lines = []
            for number, cell in enumerate(json.loads(raw).get("cells", []), start=1):
                texts = [cell.get("source", "")]
                for output in cell.get("outputs", []):
                    texts += [output.get("text", "")] + list(output.get("data", {}).values())
                cell_lines = [line for text in texts for line in _joined(text).splitlines()]
                lines += [(f"cell {number}, line {index}", line) for index, line in enumerate(cell_lines, start=1)]
            return lines
        except (ValueError, AttributeError):
            pass  # not a readable notebook: check it as text
    return [(f"line {number}", line) for number, line in enumerate(raw.splitlines(), start=1)]


def _joined(text) -> str:
    """Notebook JSON keeps multi-line text as a string or a list of lines."""
    return "".join(text) if isinstance(text, list) else str(text)
