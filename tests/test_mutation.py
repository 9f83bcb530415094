"""The mutation check (tests/mutation.py): every plausible student mistake is caught by the test after its exercise."""
from __future__ import annotations

import pytest

from mutation import CATALOGUES, ROOT, Mistake, Outcome, load_catalogue, mutate, run_check, try_mistake
from tito.course import load_course


def catalogued_lessons():
    return [module for module in load_course(ROOT).modules if (CATALOGUES / f"{module.name}.py").exists()]


@pytest.mark.parametrize("module", catalogued_lessons(), ids=lambda module: module.name)
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


@pytest.mark.slow
def test_a_harmless_edit_is_reported_as_missed():
    """The check can fail: an edit that changes nothing a test can see is not caught."""
    tensor = load_course(ROOT).module("01")
    comment = Mistake("a comment", "tensor-matmul", "### END SOLUTION", "# a comment\n    ### END SOLUTION",
                      "test-tensor-matmul", "")
    assert try_mistake(tensor, comment).verdict == "missed"


@pytest.mark.slow
def test_every_mistake_is_caught_by_the_test_after_its_exercise():
    outcomes: list[Outcome] = list(run_check(jobs=2))
    assert len(outcomes) > len(catalogued_lessons()), "no mistakes were run"
    wrong = [f"{outcome.lesson} / {outcome.mistake}: {outcome.verdict} {outcome.cell} {outcome.message[:200]}"
             for outcome in outcomes if not outcome.ok]
    assert not wrong, f"{len(wrong)} of {len(outcomes)} not as expected:\n" + "\n".join(wrong)
