"""`tito test [--module NAME ...]`: the package tests, for one module or all."""
from ..course import load_course
from ..testing import run_package_tests


def register(commands) -> None:
    parser = commands.add_parser("test", help="run the package tests with pytest (all, or one module's)")
    parser.add_argument("--module", action="append", metavar="NAME", help="01_tensor, 01 or tensor (repeatable)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    course = load_course()
    return run_package_tests(course, course.select(args.module), args.pytest_args)
