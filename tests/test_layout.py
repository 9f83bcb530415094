"""tito's layout: a foundation, three wings on it (grading, student, milestones) and the commands that compose them.

The imports are read with `ast`, function-local ones included, so a rule cannot be dodged by importing late.
"""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

TITO = ROOT / "tito"
WINGS = ("grading", "student", "milestones")


def tito_modules(root: Path = TITO) -> dict[str, Path]:
    """Dotted name -> file of every module of tito (or of a copy of it at `root`)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = ("tito", *path.relative_to(root).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imports(name: str, path: Path, modules: dict[str, Path]) -> list[str]:
    """The tito modules that the module `name` (its file `path`) imports, anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            # `from tito.x import y` names the module tito.x.y when y is one, else it takes y from tito.x
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found += [imported for imported in names if imported in modules]
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    return {name: set(imports(name, path, modules)) - {name} for name, path in modules.items()}


def part(name: str) -> str:
    """Where a module stands: a wing, "commands", "main" or "foundation"."""
    parts = name.split(".")
    if len(parts) > 1 and parts[1] in (*WINGS, "commands", "main"):
        return parts[1]
    return "foundation"


def layout_problems(modules: dict[str, Path]) -> list[str]:
    """Every import that breaks the one rule: wings never import each other, the foundation imports no wing
    (nor the commands), and only main and the commands stand above the wings."""
    problems = []
    for name, targets in import_graph(modules).items():
        for target in sorted(targets):
            source_part, target_part = part(name), part(target)
            if source_part in WINGS and target_part in WINGS and source_part != target_part:
                problems.append(f"{name} (the {source_part} wing) imports {target} (the {target_part} wing)")
            elif source_part in ("foundation", *WINGS) and target_part in ("commands", "main"):
                problems.append(f"{name} imports {target}: only the entry point imports the commands")
            elif source_part == "foundation" and target_part in WINGS:
                problems.append(f"{name} (the foundation) imports {target} (the {target_part} wing)")
    return problems


def a_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of the graph (its modules, the first repeated at the end), or [] when it has none."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        state[node] = "done"
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def test_the_wings_import_no_other_wing_and_the_foundation_imports_no_wing():
    modules = tito_modules()
    assert {part(name) for name in modules} == {"foundation", "main", "commands", *WINGS}, sorted(modules)
    assert layout_problems(modules) == []


def test_tito_has_no_import_cycle_even_through_imports_inside_functions():
    assert a_cycle(import_graph(tito_modules())) == []


def test_the_grading_wing_imports_nbgrader_at_the_top_and_elsewhere_only_the_exchange_steps_reach_it():
    late_in_grading, outside = [], set()
    for name, path in tito_modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            named = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            if not any(module.split(".")[0] == "nbgrader" for module in named):
                continue
            if part(name) == "grading" and id(node) not in top_level:
                late_in_grading.append(f"{name} line {node.lineno}")
            elif part(name) != "grading":
                outside.add(name)
    assert late_in_grading == []
    # A kit has no nbgrader: outside the grading wing, only the steps a student's exchange runs (on a hub) use it.
    assert outside == {"tito.nbgrader_steps"}


def test_the_checks_see_a_wing_importing_another_and_a_cycle_through_a_late_import(tmp_path):
    """The rules above are checked on a copy of tito with one planted mistake each."""
    import shutil

    copy = tmp_path / "tito"
    shutil.copytree(TITO, copy, ignore=shutil.ignore_patterns("__pycache__"))
    workspace = copy / "student" / "workspace.py"
    workspace.write_text(workspace.read_text(encoding="utf-8") + "\n\ndef _late():\n    from ..grading import release\n",
                         encoding="utf-8")
    notebook = copy / "notebook.py"
    notebook.write_text(notebook.read_text(encoding="utf-8") + "\n\ndef _late():\n    from .stubs import find_stubs\n",
                        encoding="utf-8")
    modules = tito_modules(copy)
    assert layout_problems(modules) == ["tito.student.workspace (the student wing) imports tito.grading.release "
                                        "(the grading wing)"]
    assert a_cycle(import_graph(modules)) == ["tito.notebook", "tito.stubs", "tito.notebook"]

