"""Shared fixtures: the official XTREME mock submission (the oracle) and trees built from it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def oracles_dir() -> Path:
    """The repository's vendored copy, ``tests/oracles`` (third-party data, see its README)."""
    vendored = Path(__file__).resolve().parents[1] / "oracles"
    if not (vendored / "xtreme_mock").is_dir():
        raise FileNotFoundError(f"no oracles at {vendored}")
    return vendored


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
