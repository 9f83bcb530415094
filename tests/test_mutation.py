"""The mutation check (tests/mutation.py): every plausible student mistake is caught by the test after its exercise."""
from __future__ import annotations

import json
import shutil

import pytest

import mutation
from mutation import (ROOT, UNCHANGED, UNMUTATED, Mistake, Outcome, catalogued, check_unmutated, fingerprint,
                      load_catalogue, main, mutate, run_check, try_mistake)
from tito.course import load_course


@pytest.mark.parametrize("module", catalogued(), ids=lambda module: module.name)
def test_every_catalogued_edit_applies_exactly_once(module):
    problems = []
    for mistake in load_catalogue(module):
        try:
            mutate(module, mistake)
        except ValueError as error:
            problems.append(f"{mistake.name}: {error}")
    assert not problems, "catalogue errors:\n" + "\n".join(problems)


def test_an_edit_that_is_not_found_is_a_catalogue_error_not_a_skip():
    tensor = load_course(ROOT).module("01")
    typo = Mistake("typo", "tensor-matmul", "no such text", "x", "test-tensor-matmul", "")
    outcome = try_mistake(tensor, typo)
    assert outcome.verdict == "catalogue error" and "occurs 0 times" in outcome.message, outcome


def test_a_catalogue_that_does_not_load_is_reported_as_a_catalogue_error(monkeypatch):
    def unloadable(module):
        raise SyntaxError("unterminated string literal (detected at line 86)")

    monkeypatch.setattr(mutation, "load_catalogue", unloadable)
    [check] = mutation.mistake_checks(load_course(ROOT).module("01"))
    outcome = check()
    assert outcome.verdict == "catalogue error" and "SyntaxError: unterminated" in outcome.message, outcome


@pytest.mark.slow
def test_a_harmless_edit_is_reported_as_missed():
    """The check can fail: an edit that changes nothing a test can see is not caught."""
    tensor = load_course(ROOT).module("01")
    comment = Mistake("a comment", "tensor-matmul", "### END SOLUTION", "# a comment\n    ### END SOLUTION",
                      "test-tensor-matmul", "")
    assert try_mistake(tensor, comment).verdict == "missed"


@pytest.mark.slow
def test_every_mistake_is_caught_by_the_test_after_its_exercise():
    """Every lesson as written; the mistakes of each lesson changed since the last full run (`--all`)."""
    outcomes: list[Outcome] = list(run_check(jobs=2, changed_only=True))
    as_written = [outcome.lesson for outcome in outcomes if outcome.mistake == UNMUTATED]
    assert as_written == [module.name for module in catalogued()], "a lesson as written was not run"
    wrong = [f"{outcome.lesson} / {outcome.mistake}: {outcome.verdict} {outcome.cell} {outcome.message[:200]}"
             for outcome in outcomes if not outcome.ok]
    assert not wrong, f"{len(wrong)} of {len(outcomes)} not as expected:\n" + "\n".join(wrong)


def test_the_catalogues_hold_at_least_80_mistakes():
    """The course's target: a catalogue large enough to say something about the tests."""
    total = sum(len(load_catalogue(module)) for module in catalogued())
    assert total >= 80, f"the catalogues hold {total} mistakes, fewer than 80"


def test_a_fingerprint_changes_with_the_lesson_its_catalogue_the_harness_and_each_imported_file(course_copy):
    shutil.copytree(ROOT / "tito", course_copy / "tito", ignore=shutil.ignore_patterns("__pycache__"))
    layers = load_course(course_copy).module("03")
    imported = [course_copy / "tinytorch" / "core" / "tensor.py"]
    before = fingerprint(layers, imported)
    assert fingerprint(layers, imported) == before
    for path in (layers.source, course_copy / "tests" / "mutations" / "03_layers.py",
                 course_copy / "tests" / "mutation.py", course_copy / "tito" / "notebook.py", imported[0]):
        original = path.read_bytes()
        path.write_bytes(original + b"\n")
        assert fingerprint(layers, imported) != before, f"{path} changed but the fingerprint did not"
        path.write_bytes(original)
    assert fingerprint(layers, imported + [course_copy / "tinytorch" / "core" / "activations.py"]) != before


@pytest.mark.slow
def test_only_a_lesson_changed_since_the_last_full_run_runs_its_mistakes(tmp_path, monkeypatch):
    course = load_course(ROOT)
    tensor, activations = course.module("01"), course.module("02")
    verified = tmp_path / "verified.json"
    verified.write_text(json.dumps({tensor.name: check_unmutated(tensor).fingerprint, activations.name: "an old one"}))
    monkeypatch.setattr(mutation, "VERIFIED", verified)
    outcomes = list(run_check([tensor.name, activations.name], changed_only=True))
    ran = {(outcome.lesson, outcome.mistake) for outcome in outcomes}
    assert (tensor.name, UNMUTATED) in ran and (tensor.name, UNCHANGED) in ran
    assert len([lesson for lesson, _ in ran if lesson == tensor.name]) == 2, "an unchanged lesson ran its mistakes"
    assert {mistake.name for mistake in load_catalogue(activations)} <= {name for _, name in ran}
    assert all(outcome.ok for outcome in outcomes), [outcome for outcome in outcomes if not outcome.ok]


def test_all_names_no_lesson(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--all", "05"])
    assert stopped.value.code == 2 and "name no lesson" in capsys.readouterr().err
