"""Fixtures of the orchestrator tests: `s3_server`, a real SeaweedFS (tests/s3server.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from s3server import s3_server

__all__ = ["s3_server"]
