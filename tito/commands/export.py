"""`tito export [MODULE ...]`: lessons -> package."""
from ..course import load_course
from ..exporter import install, render
from ..ui import console


def register(commands) -> None:
    parser = commands.add_parser(
        "export", help="export modules' #| export cells into the tinytorch package",
        description="Writes each module's `#| export` cells into its file of tinytorch/ (module 01 -> "
                    "tinytorch/core/tensor.py) without running its tests; `tito module complete` tests first. "
                    "Example: `tito export 01_tensor`.")
    parser.add_argument("modules", nargs="*", metavar="MODULE", help="01_tensor, 01 or tensor (default: every module)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    course = load_course()
    export(course, course.select(args.modules))
    return 0


def export(course, modules) -> None:
    rendered = render(course, modules)
    changed = {path: text for path, text in rendered.items()
               if not path.exists() or path.read_text(encoding="utf-8") != text}
    install(changed)
    for module, path in zip(modules, rendered):
        state = "[yellow]updated[/]" if path in changed else "[dim]unchanged[/]"
        console.print(f"exported {module.name} -> {path.relative_to(course.root)} ({state})")
