"""The scorer registry: every family the task registry names, with teeth."""

import pytest

from evaluation.scorers import Scorer, get_scorer, register, scorer_names
from evaluation.scorers.accuracy import score as accuracy_score
from evaluation.tasks import all_tasks
from storage.errors import UserError

FAMILIES = {"accuracy", "seqeval", "squad", "mlqa", "bucc", "tatoeba", "mewslix", "lareqa"}


def test_every_family_is_registered():
    assert set(scorer_names()) == FAMILIES | {"token_accuracy", "masked_lm"}


def test_masked_token_accuracy_pools_the_tokens():
    """(hits, masked) per line: 3 of 4 masked tokens right; a line without a masked token
    counts nothing."""
    lines = [(2.0, 3), (1.0, 1), (0.0, 0)]
    assert get_scorer("masked_lm").score(lines, [None] * 3, language="de") == {"accuracy": 75.0}


@pytest.mark.parametrize("spec", all_tasks(), ids=lambda spec: spec.name)
def test_every_task_has_its_scorer_and_metrics(spec):
    scorer = get_scorer(spec.scorer)
    assert set(spec.metrics) <= set(scorer.metrics)


def test_duplicates_are_rejected():
    with pytest.raises(ValueError, match="registered twice"):
        register(Scorer("squad", accuracy_score, ("accuracy",)))


def test_unknown_names_get_a_suggestion():
    with pytest.raises(UserError, match="did you mean 'seqeval'"):
        get_scorer("seqevall")
