"""Official-equivalent scorers, one module per metric family, in a registry keyed by the
family names that `TaskSpec.scorer` uses.

Every family is one in-memory function, ``score(predictions, golds, *, language)`` ->
``{metric: value}`` on the 0-100 scale, with metric names among ``accuracy``, ``f1``,
``precision``, ``recall``, ``exact_match`` and ``map@20``. The argument forms are what a
predictor naturally produces; each module's docstring gives its own:

==============  ============================================  =================================
family          predictions                                   golds
==============  ============================================  =================================
accuracy        [label, ...]                                  [label, ...]
token_accuracy  [[tag, ...], ...]                             [[tag, ...], ...]
seqeval         [[tag str, ...], ...]                         [[tag str, ...], ...]
squad, mlqa     {question id: answer text}                    {question id: [answer text, ...]}
bucc            {(source id, target id), ...}                 {(source id, target id), ...}
tatoeba         [retrieved index, ...]                        [gold index, ...]
mewslix         {example id: [entity id, ... ranked]}         {example id: entity id}
lareqa          {question id: [candidate id, ... ranked]}     {question id: {relevant id, ...}}
masked_lm       [(hits, masked), ...] per corpus line         [None, ...] (the head compares)
==============  ============================================  =================================

Use ``get_scorer(spec.scorer).score(predictions, golds, language=lang)``.
"""

from __future__ import annotations

from evaluation.scorers import accuracy, bucc, masked_lm, mlqa, ranking, seqeval, squad
from evaluation.scorers.base import ScoreFn, Scorer
from evaluation.tasks import Format, TaskSpec, suggest
from storage.errors import UserError
from storage.schema import LOSS_METRIC, METRICS, sampling_se_metric

__all__ = ["ScoreFn", "Scorer", "get_scorer", "register", "row_metrics", "scorer_names"]

_SCORERS: dict[str, Scorer] = {}


def register(*scorers: Scorer) -> None:
    for scorer in scorers:
        if scorer.name in _SCORERS:
            raise ValueError(f"scorer {scorer.name!r} is registered twice")
        _SCORERS[scorer.name] = scorer


def get_scorer(name: str) -> Scorer:
    try:
        return _SCORERS[name]
    except KeyError:
        raise UserError(f"unknown scorer {name!r}{suggest(name, _SCORERS)}") from None


def scorer_names() -> list[str]:
    return list(_SCORERS)


def row_metrics(spec: TaskSpec) -> tuple[str, ...]:
    """Every metric a target task's rows carry per language: its scorer's metrics, the
    sampling SE of each that has one, and `nll` with its SE where a fine-tuned head predicts
    (retrieval has no head likelihood). The writer (`evaluation.predict`) and the readers
    (the analysis, synthetic stores) take the row set from here."""
    scorer = get_scorer(spec.scorer)
    with_se = [m for m in spec.metrics if sampling_se_metric(m) in METRICS]
    out = [*spec.metrics, *(sampling_se_metric(m) for m in with_se if scorer.per_example)]
    if spec.needs_target_training and spec.format is not Format.RETRIEVAL:
        out += [LOSS_METRIC, sampling_se_metric(LOSS_METRIC)]
    return tuple(out)


register(
    accuracy.SCORER,
    accuracy.TOKEN_SCORER,
    seqeval.SCORER,
    squad.SCORER,
    mlqa.SCORER,
    bucc.SCORER,
    ranking.TATOEBA,
    ranking.MEWSLIX,
    ranking.LAREQA,
    masked_lm.SCORER,
)
