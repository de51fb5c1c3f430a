"""In-memory examples of every format, built from a small synthetic corpus."""

from __future__ import annotations

import random

SYLLABLES = "ka lo mi re to shi na vu ze pa ri qo el an un os".split()


def synthetic_texts(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3))) for _ in range(300)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(4, 14))) for _ in range(n)]


def words_of(text: str) -> list[str]:
    return text.split()


def classification_examples(texts: list[str]) -> list:
    from evaluation.data.examples import ClassificationExample

    return [
        ClassificationExample(f"c{i}", t, ("ka", "lo", "mi")[i % 3], i % 3)
        for i, t in enumerate(texts)
    ]


def choice_examples(texts: list[str]) -> list:
    from evaluation.data.examples import MultipleChoiceExample

    out = []
    for i, t in enumerate(texts):
        first, other = "shi shi", texts[i - 1].split()[-1]
        choices = (first, other) if i % 2 == 0 else (other, first)
        out.append(MultipleChoiceExample(f"m{i}", t, "which", choices, i % 2))
    return out


def span_examples(texts: list[str]) -> list:
    from evaluation.data.examples import Answer, SpanQAExample

    out = []
    for i, t in enumerate(texts):
        words = t.split()
        target = words[len(words) // 2]
        start = len(" ".join(words[: len(words) // 2])) + (1 if len(words) > 1 else 0)
        out.append(SpanQAExample(f"q{i}", t, words[0], (Answer(target, start),)))
    return out


def tagging_examples(texts: list[str], n_tags: int = 17) -> list:
    from evaluation.data.examples import TaggingExample

    return [
        TaggingExample(f"t{i}", tuple(t.split()), tuple(len(w) % n_tags for w in t.split()))
        for i, t in enumerate(texts)
    ]


# One example maker per head format, by a target task of that format.
CASES = {
    "xnli": classification_examples,
    "xcopa": choice_examples,
    "xquad": span_examples,
    "udpos": tagging_examples,
}
