"""Scoring speed: the whole official mock tree (target < 2 s) and one million tagged tokens
through the seqeval scorer (target < 5 s). Prints figures; not a test.

    .venv/bin/python bench/score_bench.py [--oracles DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from evaluation.score import score_trees
from evaluation.scorers import get_scorer
from evaluation.tasks import get_task

TOKENS = 1_000_000


def _oracles(given: str | None) -> Path:
    vendored = Path(__file__).resolve().parents[1] / "tests" / "oracles"
    return Path(given or os.environ.get("XSTILTS_ORACLES") or vendored)


def _tagged(n_tokens: int, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    tags = list(get_task("udpos").labels) + list(get_task("panx").labels)
    sentences, made = [], 0
    while made < n_tokens:
        length = min(rng.randint(5, 40), n_tokens - made)
        sentences.append([rng.choice(tags) for _ in range(length)])
        made += length
    return sentences


def bench_mock_tree(mock: Path) -> tuple[float, float]:
    """(seconds in process, seconds for the `xstilts score --json` command)."""
    start = time.perf_counter()
    score_trees(mock / "predictions", mock / "labels", None, lambda message: None)
    in_process = time.perf_counter() - start
    trees = ["--predictions", str(mock / "predictions"), "--labels", str(mock / "labels")]
    command = [str(Path(sys.executable).parent / "xstilts"), "score", "--json", *trees]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return in_process, time.perf_counter() - start


def bench_seqeval(n_tokens: int) -> float:
    gold = _tagged(n_tokens, seed=1)
    pred = [[tag if i % 7 else "NOUN" for i, tag in enumerate(s)] for s in gold]
    start = time.perf_counter()
    get_scorer("seqeval").score(pred, gold, language="en")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oracles", help="oracles folder (default: tests/oracles)")
    mock = _oracles(parser.parse_args().oracles) / "xtreme_mock"
    in_process, command = bench_mock_tree(mock)
    print(f"mock tree, in process:          {in_process:6.3f} s  (target < 2 s)")
    print(f"mock tree, `xstilts score`:     {command:6.3f} s  (target < 2 s)")
    print(f"seqeval, {TOKENS:,} tokens:    {bench_seqeval(TOKENS):6.3f} s  (target < 5 s)")


if __name__ == "__main__":
    main()
