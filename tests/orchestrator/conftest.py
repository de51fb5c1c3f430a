"""Fixtures of the orchestrator tests: `s3_server`, a real SeaweedFS (tests/s3server.py).

tests/s3server.py is loaded by path and registered as the module ``s3server``, so test
modules here can ``from s3server import ...``. Putting tests/ itself on ``sys.path``
would let tests/evaluation and tests/trainers shadow the real packages.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _load_s3server() -> object:
    if "s3server" in sys.modules:
        return sys.modules["s3server"]
    spec = importlib.util.spec_from_file_location(
        "s3server", Path(__file__).resolve().parents[1] / "s3server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["s3server"] = module
    spec.loader.exec_module(module)
    return module


s3_server = _load_s3server().s3_server  # type: ignore[attr-defined]

__all__ = ["s3_server"]
