"""`tito test [--module NAME ...]`: the package tests, for one module or all."""
from ..course import load_course
from ..testing import run_package_tests


def register(commands) -> None:
    parser = commands.add_parser(
        "test", help="run the package tests with pytest (all, or one module's)",
        description="Runs pytest on tests/test_<name>*.py of the chosen modules (every module by default), against "
                    "the package as it is on disk. Arguments after `--` go to pytest. "
                    "Example: `tito test --module 05 -- -x -k backward`.")
    parser.add_argument("--module", action="append", metavar="NAME", help="01_tensor, 01 or tensor (repeatable)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    course = load_course()
    return run_package_tests(course, course.select(args.module), args.pytest_args)
