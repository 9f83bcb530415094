"""modules -> tinytorch: the committed package is what exporting the lessons gives, from any clone."""
from tito.course import load_course
from tito.exporter import render

from conftest import ROOT, copy_course


def test_package_is_in_sync_with_the_lessons():
    course = load_course(ROOT)
    stale = [str(path.relative_to(ROOT)) for path, text in render(course, list(course.modules)).items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    assert not stale, f"out of date (run `tito export` and commit): {', '.join(stale)}"


def test_export_is_byte_identical_from_another_clone(tmp_path):
    here = load_course(ROOT)
    elsewhere = load_course(copy_course(tmp_path / "clone"))
    ours = render(here, list(here.modules))
    theirs = render(elsewhere, list(elsewhere.modules))
    assert [path.relative_to(ROOT) for path in ours] == [path.relative_to(elsewhere.root) for path in theirs]
    assert list(ours.values()) == list(theirs.values())


def test_generated_files_point_at_the_lesson_to_edit():
    course = load_course(ROOT)
    for module in course.modules:
        header = module.package_file(ROOT).read_text(encoding="utf-8").splitlines()
        assert any(f"File to edit: ../../modules/{module.name}/{module.dev_file.name}" in line for line in header[:5])


def test_the_package_imports_its_own_modules_relatively():
    """nbdev turns `from tinytorch.core.x import ...` into `from .x import ...`, but not always a multi-line one
    (it rewrites a slice of the first line as long as the last line): a lesson's imports must be one line each."""
    course = load_course(ROOT)
    absolute = [f"{module.package_file(ROOT).name}:{number}" for module in course.modules
                for number, line in enumerate(module.package_file(ROOT).read_text(encoding="utf-8").splitlines(), 1)
                if line.startswith("from tinytorch.")]
    assert not absolute, f"left absolute by the export (write each import on one line in the lesson): {absolute}"
