"""A deterministic tokenizer trained locally, for the `local_config` (tiny) ladder entries.

A byte-pair model over Metaspace pre-tokenization (SentencePiece-style word pieces; BPE
because its training is deterministic, where the Unigram trainer's is not), with
XLM-R's special tokens at XLM-R's ids (``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3,
``<mask>`` last) and its single/pair templates. The trained tokenizer is cached on disk
under a digest of the corpus and the vocabulary size, so every cell that trains on the
same text reads the same file, and training it again gives the same vocabulary.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers.trainers import BpeTrainer
from transformers import PreTrainedTokenizerFast

from evaluation.data.mlm_corpus import CORPUS_DIR as MLM_CORPUS_DIR
from storage.files import write_file

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
MASK = "<mask>"
TEXT_SUFFIXES = (".jsonl", ".json", ".tsv", ".txt", ".parquet")


def corpus_digest(texts: Iterable[str], vocab_size: int) -> str:
    h = hashlib.sha256(f"bpe-v1/{vocab_size}".encode())
    for text in texts:
        h.update(text.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        if value.strip():
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _file_texts(path: Path) -> Iterator[str]:
    if path.suffix == ".parquet":
        for row in pq.read_table(path).to_pylist():
            yield from _strings(row)
    elif path.suffix == ".jsonl":
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield from _strings(json.loads(line))
    elif path.suffix == ".json":
        yield from _strings(json.loads(path.read_text(encoding="utf-8")))
    else:
        for line in path.read_text(encoding="utf-8").splitlines():
            yield from (cell for cell in line.split("\t") if cell.strip())


def _text_files(root: str | Path) -> list[Path]:
    """The text files under `root`, but none in an MLM corpus folder (`mlm_corpus/`): that
    is phase-2 text of one arm, which must not change the phase-1 tokenizer."""
    return sorted(
        p
        for p in Path(root).rglob("*")
        if p.suffix in TEXT_SUFFIXES
        and p.is_file()
        and MLM_CORPUS_DIR not in p.relative_to(root).parts[:-1]
    )


def corpus_from_dir(root: str | Path) -> list[str]:
    """Every distinct string in the text files under `root`, in sorted path order."""
    return list(dict.fromkeys(text for path in _text_files(root) for text in _file_texts(path)))


def dir_digest(root: str | Path) -> str:
    """A digest of the text files under `root` (names and bytes), cheaper than their text."""
    h = hashlib.sha256()
    for path in _text_files(root):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _train(texts: list[str], vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = BpeTrainer(
        vocab_size=vocab_size - 1,  # <mask> is appended after training, as in XLM-R
        special_tokens=list(SPECIALS),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_special_tokens([MASK])
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)],
    )
    return tok


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token=MASK,
        model_max_length=512,
    )


def _write_atomic(tok: Tokenizer, path: Path) -> None:
    write_file(path, tok.to_str().encode())


def local_tokenizer(
    texts: Callable[[], list[str]] | list[str],
    vocab_size: int,
    cache_dir: str | Path,
    key: str | None = None,
) -> Tokenizer:
    """The tokenizer trained on `texts`, from the cache when it is there.

    The cache key is `key` (e.g. `dir_digest` of the corpus' files) when given, else a
    digest of the texts themselves.
    """
    corpus = texts if isinstance(texts, list) else None
    if key is None:
        corpus = corpus if corpus is not None else texts()  # type: ignore[operator]
        key = corpus_digest(corpus, vocab_size)
    path = Path(cache_dir) / "tokenizers" / f"bpe-{vocab_size}-{key}.json"
    if path.exists():
        return Tokenizer.from_file(str(path))
    tok = _train(corpus if corpus is not None else texts(), vocab_size)  # type: ignore[operator]
    _write_atomic(tok, path)
    return tok


def tokenizer_digest(tokenizer: PreTrainedTokenizerFast) -> str:
    """A stable digest of a tokenizer's full definition (vocabulary, rules, specials)."""
    backend = tokenizer.backend_tokenizer.to_str()
    return hashlib.sha256(backend.encode()).hexdigest()[:16]
