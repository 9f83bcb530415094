"""The `tito` command: parse the command line and hand over to one command group."""
from __future__ import annotations

import argparse
import sys

from .errors import TitoError

def build_parser() -> argparse.ArgumentParser:
    """Every file in tito/commands/ registers its own subcommands."""
    from importlib import import_module
    from pkgutil import iter_modules

    from . import commands as command_groups

    parser = argparse.ArgumentParser(
        prog="tito", description="The tinytorch course tool: lessons in, tested code out into the tinytorch package; "
                                 "the student's and the instructor's workflows. `tito COMMAND --help` tells more, "
                                 "e.g. `tito module --help`.")
    parser.add_argument("--version", action="version", version=f"tito {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in sorted(info.name for info in iter_modules(command_groups.__path__)):
        import_module(f"{command_groups.__name__}.{group}").register(commands)
    return parser


def _version() -> str:
    """The installed course's version (tito ships with the tinytorch distribution, a kit's included)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tinytorch")
    except PackageNotFoundError:
        return "(not installed)"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own, pytest_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    try:
        from rich.markup import escape

        from .ui import console
    except ImportError as error:
        print(f"tito: {error.name} is missing: install the course tools with `pip install -e '.[course]'`", file=sys.stderr)
        return 2
    args = build_parser().parse_args(own)
    args.pytest_args = pytest_args
    try:
        return args.handler(args)
    except TitoError as error:
        console.print(f"[red]error:[/] {escape(str(error))}", soft_wrap=True)  # one line, however narrow the terminal
        return error.exit_code
    except OSError as error:  # a file that cannot be read or written (permissions, a full disk): name it
        console.print(f"[red]error:[/] {escape(str(error.filename or 'a file'))}: {escape(error.strerror or str(error))}",
                      soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
