"""Per-language facts, and a breakdown of per-language values by family, script and resources.

`LANGUAGES` holds one `Language` per language code that any registered task uses (the codes
as XTREME-R and `evaluation.tasks` write them):

- **family / genus**: language family and genus, at WALS granularity (e.g. Indo-European /
  Germanic); Basque is an isolate, Haitian Creole a French-based creole.
- **script**: the writing system the task data uses, by its ISO 15924 name (code beside it):
  Latin (Latn), Cyrillic (Cyrl), Arabic (Arab), Devanagari (Deva), Han (Simplified) (Hans),
  Japanese (Jpan), Hangul (Hang), ...
- **cc100_gib**: the language's share of XLM-R's pretraining corpus CC-100, in GiB, from
  Conneau et al. 2020, "Unsupervised Cross-lingual Representation Learning at Scale"
  (ACL 2020), Appendix A, Table 6. None where the language is not among CC-100's languages
  (Haitian Creole, Quechua, Wolof, Yoruba: unseen in pretraining). Chinese is the
  Simplified-script row (46.9; Traditional adds 16.6); Burmese is the Unicode row (0.4;
  Zawgyi-encoded Burmese adds 1.6). Romanized variants (Hindi, Urdu, Tamil, Telugu, Bengali
  romanized) are not added.

Resource level from `cc100_gib`: **low** < 1 GiB, **mid** 1–10 GiB, **high** > 10 GiB, and
**unseen** where the language is not in CC-100 (`RESOURCE_CUTOFFS_GIB`).

``breakdown(rows) -> list[dict]``: per-language values (deltas or scores; language → value)
in, one dict per (grouping, group) out with the mean and the number of languages.
``summary_values(summary)``: the per-language values a `summary.json` carries, if any,
which the report breaks down (see its docstring for the keys read).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evaluation.tasks import get_task
from storage.errors import UserError

LOW_GIB = 1.0
HIGH_GIB = 10.0
RESOURCE_CUTOFFS_GIB = (LOW_GIB, HIGH_GIB)
RESOURCE_LEVELS = ("unseen", "low", "mid", "high")
GROUPINGS = ("family", "script", "resource")


@dataclass(frozen=True)
class Language:
    code: str  # as XTREME-R writes it
    name: str
    family: str
    genus: str
    script: str  # ISO 15924 name
    script_code: str  # ISO 15924 code
    cc100_gib: float | None  # None: not in CC-100

    @property
    def resource(self) -> str:
        """ "unseen" (not in CC-100), "low" (< 1 GiB), "mid" (1–10 GiB) or "high" (> 10 GiB)."""
        gib = self.cc100_gib
        if gib is None:
            return "unseen"
        if gib < LOW_GIB:
            return "low"
        return "high" if gib > HIGH_GIB else "mid"


_IE = "Indo-European"
_AA = "Afro-Asiatic"
_AN = "Austronesian"
_NC = "Niger-Congo"
_DR = "Dravidian"
_TK = "Turkic"
_UR = "Uralic"
_LAT = ("Latin", "Latn")
_CYR = ("Cyrillic", "Cyrl")
_ARA = ("Arabic", "Arab")
_DEV = ("Devanagari", "Deva")

LANGUAGES: tuple[Language, ...] = tuple(
    Language(code, name, family, genus, script[0], script[1], gib)
    for code, name, family, genus, script, gib in (
        ("af", "Afrikaans", _IE, "Germanic", _LAT, 1.3),
        ("ar", "Arabic", _AA, "Semitic", _ARA, 28.0),
        ("az", "Azerbaijani", _TK, "Oghuz", _LAT, 6.5),
        ("bg", "Bulgarian", _IE, "Slavic", _CYR, 57.5),
        ("bn", "Bengali", _IE, "Indic", ("Bengali", "Beng"), 8.4),
        ("de", "German", _IE, "Germanic", _LAT, 66.6),
        ("el", "Greek", _IE, "Greek", ("Greek", "Grek"), 46.9),
        ("en", "English", _IE, "Germanic", _LAT, 300.8),
        ("es", "Spanish", _IE, "Romance", _LAT, 53.3),
        ("et", "Estonian", _UR, "Finnic", _LAT, 6.1),
        ("eu", "Basque", "Basque (isolate)", "Basque", _LAT, 2.0),
        ("fa", "Persian", _IE, "Iranian", _ARA, 111.6),
        ("fi", "Finnish", _UR, "Finnic", _LAT, 54.3),
        ("fr", "French", _IE, "Romance", _LAT, 56.8),
        ("gu", "Gujarati", _IE, "Indic", ("Gujarati", "Gujr"), 1.9),
        ("he", "Hebrew", _AA, "Semitic", ("Hebrew", "Hebr"), 31.6),
        ("hi", "Hindi", _IE, "Indic", _DEV, 20.2),
        ("ht", "Haitian Creole", "Creole", "French-based creole", _LAT, None),
        ("hu", "Hungarian", _UR, "Ugric", _LAT, 58.4),
        ("id", "Indonesian", _AN, "Malayo-Sumbawan", _LAT, 148.3),
        ("it", "Italian", _IE, "Romance", _LAT, 30.2),
        ("ja", "Japanese", "Japonic", "Japanese", ("Japanese", "Jpan"), 69.3),
        ("jv", "Javanese", _AN, "Javanese", _LAT, 0.2),
        ("ka", "Georgian", "Kartvelian", "Kartvelian", ("Georgian", "Geor"), 9.1),
        ("kk", "Kazakh", _TK, "Kipchak", _CYR, 6.4),
        ("ko", "Korean", "Koreanic", "Korean", ("Hangul", "Hang"), 54.2),
        ("lt", "Lithuanian", _IE, "Baltic", _LAT, 13.7),
        ("ml", "Malayalam", _DR, "Southern Dravidian", ("Malayalam", "Mlym"), 7.6),
        ("mr", "Marathi", _IE, "Indic", _DEV, 2.8),
        ("ms", "Malay", _AN, "Malayo-Sumbawan", _LAT, 8.5),
        ("my", "Burmese", "Sino-Tibetan", "Burmese-Lolo", ("Myanmar", "Mymr"), 0.4),
        ("nl", "Dutch", _IE, "Germanic", _LAT, 29.3),
        ("pa", "Punjabi", _IE, "Indic", ("Gurmukhi", "Guru"), 0.8),
        ("pl", "Polish", _IE, "Slavic", _LAT, 44.6),
        ("pt", "Portuguese", _IE, "Romance", _LAT, 49.1),
        ("qu", "Quechua", "Quechuan", "Quechuan", _LAT, None),
        ("ro", "Romanian", _IE, "Romance", _LAT, 61.4),
        ("ru", "Russian", _IE, "Slavic", _CYR, 278.0),
        ("sw", "Swahili", _NC, "Bantoid", _LAT, 1.6),
        ("ta", "Tamil", _DR, "Southern Dravidian", ("Tamil", "Taml"), 12.2),
        ("te", "Telugu", _DR, "South-Central Dravidian", ("Telugu", "Telu"), 4.7),
        ("th", "Thai", "Tai-Kadai", "Kam-Tai", ("Thai", "Thai"), 71.7),
        ("tl", "Tagalog (Filipino)", _AN, "Greater Central Philippine", _LAT, 3.1),
        ("tr", "Turkish", _TK, "Oghuz", _LAT, 20.9),
        ("uk", "Ukrainian", _IE, "Slavic", _CYR, 84.6),
        ("ur", "Urdu", _IE, "Indic", _ARA, 5.7),
        ("vi", "Vietnamese", "Austro-Asiatic", "Viet-Muong", _LAT, 137.3),
        ("wo", "Wolof", _NC, "Northern Atlantic", _LAT, None),
        ("yo", "Yoruba", _NC, "Defoid", _LAT, None),
        ("zh", "Chinese", "Sino-Tibetan", "Chinese", ("Han (Simplified)", "Hans"), 46.9),
    )
)

BY_CODE: dict[str, Language] = {lang.code: lang for lang in LANGUAGES}


def language(code: str) -> Language | None:
    """The facts of `code`, or None for a language the table lacks."""
    return BY_CODE.get(code)


def _group(lang: Language, grouping: str) -> str:
    if grouping == "family":
        return f"{lang.family} / {lang.genus}" if lang.genus != lang.family else lang.family
    if grouping == "script":
        return lang.script
    return lang.resource


def _order(grouping: str, group: str) -> tuple[int, str]:
    if grouping == "resource":
        return (RESOURCE_LEVELS.index(group), group)
    return (0, group)


def breakdown(rows: Mapping[str, float]) -> list[dict[str, Any]]:
    """Per-language values (language code → value) grouped by family / genus, script and
    resource level: one dict per (grouping, group) with ``grouping``, ``group``, ``mean``,
    ``n`` (languages) and ``languages``, in GROUPINGS order then by group. Languages the
    table lacks and non-finite values are left out."""
    known = {
        code: float(v)
        for code, v in rows.items()
        if code in BY_CODE and v is not None and math.isfinite(float(v))
    }
    out: list[dict[str, Any]] = []
    for grouping in GROUPINGS:
        groups: dict[str, list[str]] = {}
        for code in sorted(known):
            groups.setdefault(_group(BY_CODE[code], grouping), []).append(code)
        for group in sorted(groups, key=lambda g: _order(grouping, g)):
            codes = groups[group]
            out.append(
                {
                    "grouping": grouping,
                    "group": group,
                    "mean": sum(known[c] for c in codes) / len(codes),
                    "n": len(codes),
                    "languages": codes,
                }
            )
    return out


def _mean_by_language(entries: list[tuple[str, float]]) -> dict[str, float]:
    sums: dict[str, list[float]] = {}
    for code, value in entries:
        if value is not None and math.isfinite(value):
            sums.setdefault(code, []).append(value)
    return {code: sum(v) / len(v) for code, v in sums.items()}


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _delta_pairs(entry: object) -> list[tuple[str, float]]:
    if not isinstance(entry, Mapping):
        return []
    codes, deltas = entry.get("languages"), entry.get("delta")
    if isinstance(entry.get("language"), str):
        codes, deltas = [entry["language"]], [deltas]
    if not isinstance(codes, list | tuple) or not isinstance(deltas, list | tuple):
        return []
    pairs = []
    for code, delta in zip(codes, deltas, strict=False):
        if isinstance(code, str) and (value := _number(delta)) is not None:
            pairs.append((code, value))
    return pairs


def summary_values(summary: Mapping[str, Any]) -> tuple[str, dict[str, float]] | None:
    """What the report breaks down: (what the values are, language → value), or None.

    Read from `summary.json`, first found wins:

    1. ``per_language_deltas``: a list of entries, one per (model, intermediate task,
       target task), with parallel lists ``languages`` and ``delta`` (or one ``language``
       with a number ``delta``) — the STILTs effect per language on the headline metric;
       averaged per language over every entry;
    2. ``cells[*].per_language`` (language → mean score over seeds) of the `none` cells on
       each target task's headline metric — the baseline score per language, averaged per
       language over models and target tasks.

    None when the summary carries neither (the report then leaves the section out).
    """
    entries = [pair for e in summary.get("per_language_deltas") or () for pair in _delta_pairs(e)]
    if entries:
        return "mean per-language STILTs delta (T − none)", _mean_by_language(entries)
    for c in summary.get("cells") or ():
        if not isinstance(c, Mapping) or c.get("intermediate_task") != "none":
            continue
        per_language = c.get("per_language")
        if not isinstance(per_language, Mapping):
            continue
        try:
            if c.get("metric") != get_task(str(c.get("target_task"))).headline:
                continue
        except UserError:
            continue
        for code, v in per_language.items():
            if (value := _number(v)) is not None:
                entries.append((str(code), value))
    if entries:
        return "mean per-language score of the `none` baseline", _mean_by_language(entries)
    return None


def breakdown_table(summary: Mapping[str, Any]) -> tuple[str, list[str], list[list[str]]] | None:
    """The report's table: (caption, header, rows), or None without per-language values."""
    found = summary_values(summary)
    if found is None:
        return None
    what, values = found
    groups = breakdown(values)
    if not groups:
        return None
    caption = (
        f"Values: {what}, grouped by language family / genus, script (ISO 15924) and "
        f"XLM-R pretraining data in CC-100 (Conneau et al. 2020, Table 6): low < {LOW_GIB:g} "
        f"GiB, mid {LOW_GIB:g}–{HIGH_GIB:g} GiB, high > {HIGH_GIB:g} GiB, unseen = not in "
        "CC-100. Each language counts once; n = languages in the group."
    )
    header = ["grouping", "group", "n", "mean", "languages"]
    rows = [
        [g["grouping"], g["group"], str(g["n"]), f"{g['mean']:.2f}", " ".join(g["languages"])]
        for g in groups
    ]
    return caption, header, rows
