"""Fixtures of the orchestrator tests: `s3_server`, a real SeaweedFS (tests/s3server.py),
and `fixtures`, synthetic data for the sweeps of `sweeps.py` (registered as ``sweeps``).

tests/s3server.py is loaded by path and registered as the module ``s3server``, so test
modules here can ``from s3server import ...``. Putting tests/ itself on ``sys.path``
would let tests/evaluation and tests/trainers shadow the real packages.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def _load(name: str, path: Path) -> object:
    """The test helper module at `path`, registered as `name` (loaded once)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


s3_server = _load("s3server", Path(__file__).resolve().parents[1] / "s3server.py").s3_server  # type: ignore[attr-defined]
_load("sweeps", Path(__file__).resolve().with_name("sweeps.py"))  # `import sweeps` in tests


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Schema-exact synthetic data for a module's sweeps (48 examples per split)."""
    from evaluation.data.fixtures import write_fixtures

    return write_fixtures(tmp_path_factory.mktemp("fixtures") / "data", n_per_split=48)


__all__ = ["fixtures", "s3_server"]
