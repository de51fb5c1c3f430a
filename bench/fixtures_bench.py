"""Generate every fixture (target: under 60 s), then tokenise and cache every split of
every task (target: under 60 s more).

Tokenising uses a BPE tokenizer trained on the fixture text with `tokenizers` (not
timed separately; it is part of the second figure) and writes the token ids of every
(task, part, language) as one parquet file, as a per-(tokenizer, task, split, max length)
feature cache would.

    .venv/bin/python bench/fixtures_bench.py [--examples 200] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pyarrow as pa
import pyarrow.parquet as pq
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from evaluation.data.examples import Example
from evaluation.data.fixtures import write_fixtures
from evaluation.data.loaders import load_examples
from evaluation.tasks import all_tasks

MAX_LEN = 128


def texts_of(ex: Example) -> list[str]:
    """The strings a model reads from one example."""
    out: list[str] = []
    for value in vars(ex).values():
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, tuple) and value and isinstance(value[0], str):
            out.append(" ".join(value))
    return out


def splits(root: Path):
    for task in all_tasks():
        parts = [(p, "en") for p in ("train", "dev") if getattr(task, p)]
        for part, lang in parts + [("eval", lang) for lang in task.eval]:
            yield (
                task.name,
                part,
                lang,
                load_examples(task, part, lang, source="local", local_dir=root),
            )


def tokenise_and_cache(root: Path, cache: Path) -> tuple[int, int]:
    loaded = list(splits(root))
    corpus = [t for *_, exs in loaded for ex in exs for t in texts_of(ex)]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(
        corpus,
        trainers.BpeTrainer(vocab_size=8000, special_tokens=["<pad>", "<s>", "</s>", "<unk>"]),
    )
    tok.enable_truncation(MAX_LEN)
    n_tokens = 0
    for name, part, lang, exs in loaded:
        encoded = tok.encode_batch([" ".join(texts_of(ex)) for ex in exs])
        ids = [e.ids for e in encoded]
        n_tokens += sum(len(i) for i in ids)
        path = cache / name / f"{part}-{lang}-{MAX_LEN}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"id": [ex.id for ex in exs], "input_ids": ids}), path)
    return len(loaded), n_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        t0 = time.perf_counter()
        root = write_fixtures(base / "fixtures", n_per_split=args.examples)
        t1 = time.perf_counter()
        files = len(list(root.rglob("*.parquet")))
        n_splits, n_tokens = tokenise_and_cache(root, base / "cache")
        t2 = time.perf_counter()
    print(f"fixtures: {files} parquet files, {args.examples} examples/split: {t1 - t0:.1f} s")
    print(f"tokenise + cache: {n_splits} task splits, {n_tokens:,} tokens: {t2 - t1:.1f} s")
    print("targets: under 60 s each")


if __name__ == "__main__":
    main()
