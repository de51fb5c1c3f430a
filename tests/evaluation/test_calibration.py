"""A seeded, fast version of `bench/calibration.py`: the answer's false-claim and detection
rates on generated stores with a known effect (issue 15). The rate tests (40 stores per
scenario) are marked slow; the store round trip always runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "calibration.py"


@pytest.fixture(scope="module")
def calibration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("xstilts_bench_calibration", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # about 15 s
def test_no_trend_is_rarely_claimed(calibration: ModuleType) -> None:
    for scenario in calibration.SCENARIOS[:2]:  # quirk + phase-2 noise; one model on one seed
        rates = calibration.run(scenario, 40, first_seed=100)
        assert scenario.null and rates.claim_rate <= 0.15, rates.line()


@pytest.mark.slow  # about 8 s
def test_a_strong_planted_slope_is_detected_with_its_sign(calibration: ModuleType) -> None:
    strong = calibration.SCENARIOS[3]
    assert strong.slope == -5.0
    rates = calibration.run(strong, 40, first_seed=200)
    assert rates.detection_rate >= 0.8, rates.line()


def test_the_store_path_gives_the_in_memory_answer(calibration: ModuleType) -> None:
    strong = calibration.SCENARIOS[3]
    for sc in (calibration.STORE_SCENARIO, strong):
        rates = calibration.run(sc, 1, first_seed=300, store=True)
        assert rates.disagreements == 0, rates.line()
