"""The answer's wording, by rule, from summary-shaped scaling entries (issue 15, item 5)."""

from __future__ import annotations

import pytest

from evaluation.report_answer import verdict

SIZES = (270_000_000, 550_000_000, 3_500_000_000, 10_700_000_000)
NAMES = ("base", "large", "xl", "xxl")


def fit(
    fitted: tuple[float, ...],
    p_adjusted: float,
    target: str = "xnli",
    task: str = "mnli",
    departs: tuple[str, ...] = (),
    lof: float | None = None,
    mds: float = 1.5,
) -> dict:
    slope = (fitted[-1] - fitted[0]) / 1.6
    return {
        "intermediate_task": task, "target_task": target, "metric": "accuracy",
        "slope_delta_disp": slope, "p_value": p_adjusted / 3, "p_adjusted": p_adjusted,
        "n_model_sizes": len(fitted), "departs": list(departs), "lack_of_fit_p_adjusted": lof,
        "mds_delta_disp": mds,
        "per_model": [
            {"model": n, "model_params": p, "fitted": f, "estimate": f}
            for n, p, f in zip(NAMES, SIZES, fitted, strict=True)
        ],
    }  # fmt: skip


CASES = {
    "harm shrinks": (
        [fit((3.0, 2.5, 1.5, 1.0), 0.01)],
        "trend",
        "Answer: STILTs with mnli made languages less even at every size, less so for larger "
        "models — on its one target task (xnli) (Holm-adjusted p = 0.01).",
    ),
    "harm grows": (
        [fit((0.5, 1.0, 2.0, 3.0), 0.02)],
        "trend",
        "less even at every size, increasingly with size",
    ),
    "gain grows": (
        [fit((-0.5, -1.0, -2.0, -3.0), 0.001), fit((0.1, 0.0, 0.2, 0.1), 0.9, task="anli")],
        "trend",
        "Answer: STILTs with mnli made languages more even at every size, increasingly with size",
    ),
    "gain shrinks": (
        [fit((-3.0, -2.0, -1.0, -0.5), 0.001)],
        "trend",
        "more even at every size, less so for larger models",
    ),
    "sign changes": (
        [fit((1.0, 0.5, -0.5, -1.0), 0.01)],
        "trend",
        "less even at the smaller sizes but more even at the larger ones",
    ),
    "non-monotonic dip": (
        [fit((1.0, 1.0, 1.0, 1.0), 0.7, departs=("xl",), lof=0.004)],
        "non_monotonic",
        "Answer: no size trend detected; non-monotonic: xl (3.5B) departs from the log-linear "
        "trend (lack of fit, Holm-adjusted p = 0.004) for mnli on xnli.",
    ),
    "one-target-only effect": (
        [
            fit((0.2, 0.1, 0.3, 0.2), 0.8, target="xnli"),
            fit((0.0, 0.1, 0.0, 0.1), 1.0, target="udpos"),
            fit((-0.5, -1.5, -2.5, -3.5), 0.003, target="tatoeba"),
        ],
        "trend",
        "more even at every size, increasingly with size — on tatoeba only, not on udpos, xnli",
    ),
    "nothing detected": (
        [fit((0.2, 0.1, 0.3, 0.2), 0.8, mds=1.25), fit((0.0, 0.1, 0.0, 0.1), 1.0, mds=3.5)],
        "no_trend",
        "Answer: no size trend detected (minimum detectable slope 1.25 to 3.50 points of "
        "delta_disp per decade of parameters, 80 % power, Holm over 2 test(s)).",
    ),
    "departure without a significant lack of fit is not claimed": (
        [fit((0.2, 0.1, 0.3, 0.2), 0.8, departs=(), lof=0.3)],
        "no_trend",
        "Answer: no size trend detected",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_wording_follows_the_estimates(name: str) -> None:
    fits, kind, words = CASES[name]
    found = verdict(fits)
    assert found.kind == kind, found.text
    assert words in found.text, found.text
    if kind == "trend":
        assert found.direction == (1 if found.headline["slope_delta_disp"] > 0 else -1)
