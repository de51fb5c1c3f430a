"""Shared fixtures: the official XTREME mock submission (the oracle) and trees built from it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def oracles_dir() -> Path:
    """``../shared/oracles`` beside the repository, else $XSTILTS_ORACLES."""
    beside = Path(__file__).resolve().parents[2].parent / "shared" / "oracles"
    if (beside / "xtreme_mock").is_dir():
        return beside
    env = os.environ.get("XSTILTS_ORACLES")
    if env and (Path(env) / "xtreme_mock").is_dir():
        return Path(env)
    raise FileNotFoundError(f"no oracles at {beside} and XSTILTS_ORACLES is not set to them")


@pytest.fixture(scope="session")
def oracles() -> Path:
    return oracles_dir()


@pytest.fixture(scope="session")
def mock(oracles: Path) -> Path:
    return oracles / "xtreme_mock"


@pytest.fixture
def tree(tmp_path: Path, mock: Path):
    """Copy the named tasks of the mock submission into tmp_path; returns (preds, labels)."""

    def build(*tasks: str) -> tuple[Path, Path]:
        for side in ("predictions", "labels"):
            (tmp_path / side).mkdir(exist_ok=True)
            for task in tasks:
                shutil.copytree(mock / side / task, tmp_path / side / task)
        return tmp_path / "predictions", tmp_path / "labels"

    return build
