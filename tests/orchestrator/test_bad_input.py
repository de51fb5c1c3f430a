"""Every bad input, one table: exit 2, one line per problem naming what and where, no
traceback, nothing written. Spec, CLI options, `score` inputs and store damage.

Each case is (id, setup, argv, expected): `setup(tmp)` writes what the case needs and
returns the replacements for ``{spec}``, ``{dir}`` ... in `argv`; `expected` is a piece of
the message. Cases run in-process through the console script's `main` (what `xstilts`
runs), so a traceback would be an exception here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from orchestrator.cli import main

BASE: dict = {
    "name": "bad",
    "models": ["tiny-s"],
    "intermediate_tasks": ["none", "mnli"],
    "target_tasks": ["xnli"],
    "seeds": [0],
    "data": {"source": "fixtures", "max_examples": {"train": 32, "dev": 8, "eval": 8}},
    "phase2": {"defaults": {"lr": 1.0e-3, "max_steps": 4, "batch_size": 8}},
    "phase3": {"defaults": {"lr": 1.0e-3, "max_steps": 4, "batch_size": 8}},
}
Setup = Callable[[Path], dict[str, str]]


def spec_with(**changes: object) -> Setup:
    """A spec file: BASE with `changes` (a value None removes the key; dotted keys nest)."""

    def setup(tmp: Path) -> dict[str, str]:
        raw = json.loads(json.dumps(BASE))
        raw["storage"] = str(tmp / "runs")
        raw["data"]["local_dir"] = str(tmp / "fixtures")
        for key, value in changes.items():
            *parents, last = key.split(".")
            node = raw
            for p in parents:
                node = node.setdefault(p, {})
            if value is None:
                node.pop(last, None)
            else:
                node[last] = value
        path = tmp / "spec.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return {"spec": str(path), "dir": str(tmp)}

    return setup


def with_corpus(files: dict[str, str], **corpus: object) -> Setup:
    """A spec training `mlm` on a corpus folder holding `files` (name -> text)."""

    def setup(tmp: Path) -> dict[str, str]:
        folder = tmp / "corpus"
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text)
        mlm = {"local_dir": str(folder), **corpus}
        return spec_with(intermediate_tasks=["none", "mlm"], **{"data.mlm_corpus": mlm})(tmp)

    return setup


def spec_text(text: str | bytes) -> Setup:
    def setup(tmp: Path) -> dict[str, str]:
        path = tmp / "spec.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return {"spec": str(path), "dir": str(tmp)}

    return setup


def good_spec_then(damage: Callable[[Path], None]) -> Setup:
    """The BASE spec, with a sweep folder damaged by `damage(sweep_dir)`."""

    def setup(tmp: Path) -> dict[str, str]:
        names = spec_with()(tmp)
        sweep = tmp / "runs" / "bad"
        (sweep / "results").mkdir(parents=True)
        damage(sweep)
        return names

    return setup


def score_dirs(preds: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> Setup:
    """Prediction and label folders holding the given files (relative path -> text)."""

    def setup(tmp: Path) -> dict[str, str]:
        for root, files in (("preds", preds), ("labels", labels)):
            (tmp / root).mkdir()
            for rel, text in (files or {}).items():
                (tmp / root / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / root / rel).write_text(text)
        return {"preds": str(tmp / "preds"), "labels": str(tmp / "labels"), "dir": str(tmp)}

    return setup


def nested(depth: int) -> str:
    return "name: x\nextra: " + "[" * depth + "]" * depth + "\n"


def alias_bomb() -> str:
    lines = ["name: x", "a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def _garbage_ledger(sweep: Path) -> None:
    (sweep / "ledger").mkdir()
    (sweep / "ledger" / "0123456789abcdef.json").write_text("{not json")


def _garbage_sweep_json(sweep: Path) -> None:
    (sweep / "sweep.json").write_text("\x00\x01garbage")


def _alien_sweep_json(sweep: Path) -> None:
    (sweep / "sweep.json").write_text(json.dumps({"name": "other", "config": {}}))


V = ["validate", "{spec}"]
CASES: list[tuple[str, Setup, list[str], str]] = [
    # ---- the spec file itself
    ("dup-key", spec_text("name: a\nname: b\n"), V, "key 'name' is given twice"),
    ("dup-nested-key", spec_text("name: a\nphase2: {defaults: {lr: 1, lr: 2}}\n"), V,
     "given twice"),
    ("not-mapping", spec_text("- a\n- b\n"), V, "must be a YAML mapping"),
    ("empty-file", spec_text(""), V, "must be a YAML mapping"),
    ("yaml-syntax", spec_text("name: [unclosed\n"), V, "invalid YAML"),
    ("python-tag", spec_text("name: !!python/object/apply:os.system [ls]\n"), V, "invalid YAML"),
    ("not-utf8", spec_text(b"name: \xff\xfe\n"), V, "cannot read"),
    ("too-deep", spec_text(nested(60)), V, "nested deeper than"),
    ("alias-bomb", spec_text(alias_bomb()), V, "values (YAML aliases"),
    ("too-big", spec_text("name: x\n" + "# pad\n" * 200_000), V, "a spec is at most"),
    ("missing-file", lambda t: {"spec": str(t / "nope.yaml")}, V, "no such file"),
    ("spec-is-dir", lambda t: {"spec": str(t)}, V, "no such file"),
    # ---- numbers
    ("inf-lr", spec_with(**{"phase2.defaults.lr": float("inf")}), V, "not a finite number"),
    ("nan-lr", spec_with(**{"phase3.defaults.lr": float("nan")}), V, "not a finite number"),
    ("huge-seed", spec_with(seeds=[10**30]), V, "out of range"),
    ("negative-seed", spec_with(seeds=[-1]), V, "seeds[0]"),
    ("bool-seed", spec_with(seeds=[True]), V, "seeds[0]"),
    ("string-seed", spec_with(seeds=["0"]), V, "seeds[0]"),
    ("zero-lr", spec_with(**{"phase2.defaults.lr": 0}), V, "phase2.defaults.lr"),
    ("negative-lr", spec_with(**{"phase2.defaults.lr": -1e-5}), V, "phase2.defaults.lr"),
    ("zero-batch", spec_with(**{"phase2.defaults.batch_size": 0}), V, "batch_size"),
    ("float-batch", spec_with(**{"phase2.defaults.batch_size": 8.5}), V, "batch_size"),
    ("zero-accum", spec_with(**{"phase3.defaults.grad_accum": 0}), V, "grad_accum"),
    ("warmup-above-1", spec_with(**{"phase3.defaults.warmup_ratio": 1.5}), V, "warmup_ratio"),
    ("seq-too-short", spec_with(**{"phase3.defaults.max_seq_length": 4}), V, "max_seq_length"),
    ("seq-too-long", spec_with(**{"phase3.defaults.max_seq_length": 10**6}), V,
     "max_seq_length"),
    ("negative-patience", spec_with(**{"phase3.defaults.patience": -1}), V, "patience"),
    ("zero-eval-every", spec_with(**{"phase3.defaults.eval_every": 0}), V, "eval_every"),
    ("negative-decay", spec_with(**{"phase3.defaults.weight_decay": -0.1}), V, "weight_decay"),
    ("ttl-too-short", spec_with(scheduling={"lease_ttl_s": 1}), V, "lease_ttl_s"),
    ("zero-concurrency", spec_with(scheduling={"max_concurrent_trials": 0}), V,
     "max_concurrent_trials"),
    ("negative-failures", spec_with(scheduling={"max_failures": -1}), V, "max_failures"),
    ("zero-workers", spec_with(resources={"tiny-s": {"workers": 0}}), V, "workers"),
    ("too-many-workers", spec_with(resources={"tiny-s": {"workers": 100000}}), V, "workers"),
    ("negative-gpus", spec_with(resources={"tiny-s": {"gpus_per_worker": -1}}), V,
     "gpus_per_worker"),
    ("zero-train-cap", spec_with(**{"data.max_examples": {"train": 0}}), V, "train"),
    ("zero-flops", spec_with(cost={"sustained_flops_per_gpu": 0}), V, "sustained_flops"),
    # ---- names and structure
    ("unknown-field", spec_with(sede=1), V, "sede: unknown field"),
    ("unknown-target", spec_with(target_tasks=["xnlii"]), V, "did you mean 'xnli'"),
    ("unknown-intermediate", spec_with(intermediate_tasks=["none", "mnlii"]), V,
     "did you mean 'mnli'"),
    ("target-as-intermediate", spec_with(intermediate_tasks=["xnli"]), V,
     "intermediate_tasks[0]"),
    ("intermediate-as-target", spec_with(target_tasks=["mnli"]), V, "target_tasks[0]"),
    ("unknown-model", spec_with(models=["tiny-xl"]), V, "models[0]"),
    ("empty-models", spec_with(models=[]), V, "models"),
    ("models-not-list", spec_with(models="tiny-s"), V, "models"),
    ("empty-seeds", spec_with(seeds=[]), V, "seeds"),
    ("bad-name", spec_with(name="Bad Name"), V, "name"),
    ("long-name", spec_with(name="x" * 100), V, "name"),
    ("name-path", spec_with(name="../escape"), V, "name"),
    ("unknown-phase-task", spec_with(**{"phase3.overrides": {"xnlii": {"lr": 1e-4}}}), V,
     "xnlii"),
    ("unknown-resource-model", spec_with(resources={"tiny-q": {"workers": 2}}), V, "tiny-q"),
    ("primary-unknown", spec_with(analysis={"primary": {"intermediate_task": "qqp",
                                                        "target_task": "xnli"}}), V, "qqp"),
    ("primary-baseline", spec_with(analysis={"primary": {"intermediate_task": "none",
                                                         "target_task": "xnli"}}), V,
     "primary"),
    ("data-source", spec_with(**{"data.source": "ftp"}), V, "data.source"),
    # ---- issue 19: language selection, arms, recipes, per-model settings, stages
    ("language-typo", spec_with(languages={"xnli": ["de", "frr"]}), V,
     "languages.xnli[1]: xnli has no language 'frr' — did you mean 'fr'?"),
    ("language-all-typo", spec_with(languages={"xnli": "al"}), V, "languages.xnli"),
    ("language-task", spec_with(languages={"xnlli": "all"}), V, "did you mean 'xnli'"),
    ("arm-modifier", spec_with(intermediate_tasks=["mnli@nn=8"]), V, "did you mean 'n'"),
    ("arm-spelling", spec_with(intermediate_tasks=["mnli@n=08"]), V, "'mnli@n=8'"),
    ("arm-language", spec_with(intermediate_tasks=["mnli@langs[xx]"]), V,
     "intermediate_tasks[0]: 'mnli@langs[xx]': mnli has no training data in 'xx'"),
    ("arm-languages-order", spec_with(intermediate_tasks=["mnli@langs[hi,de]"]), V,
     "write this arm as 'mnli@langs[de,hi]'"),
    ("arm-untranslated", spec_with(intermediate_tasks=["qqp@translate-train"]), V,
     "qqp has no translated training data, so no translate-train arm (tasks with "
     "translations: mnli)"),
    ("mlm-no-corpus", spec_with(intermediate_tasks=["none", "mlm"], **{"data.source": "hub"}),
     V, "data.mlm_corpus: the `mlm` arm trains on a text corpus: set data.mlm_corpus"),
    ("mlm-corpus-empty", with_corpus({"notes.md": "x\n"}), V,
     "/corpus holds no <lang>.txt file"),
    ("mlm-corpus-language", with_corpus({"en.txt": "a line\n"}, languages=["en", "sw"]), V,
     "/corpus (it has en)"),
    ("mlm-corpus-unused", spec_with(**{"data.mlm_corpus": {"local_dir": "corpus"}}), V,
     "data.mlm_corpus: the sweep trains no `mlm` arm"),
    ("mlm-corpus-both", spec_with(intermediate_tasks=["mnli+mlm"],
                                  **{"data.mlm_corpus": {"local_dir": "c", "hub": "w"}}), V,
     "data.mlm_corpus: give local_dir (a folder of <lang>.txt files) or hub"),
    ("recipe", spec_with(recipe="jant"), V, "did you mean 'jiant'"),
    ("by-model-model", spec_with(**{"phase2.by_model": {"tiny-q": {}}}), V, "tiny-q"),
    ("stage-task", spec_with(**{"phase3.stages": {"xnli": ["siqqa"]}}), V, "siqqa"),
    # a step of 8 micro-batches (batch 8, the recipe's grad_accum 8) cannot be shared by 3
    ("split-validate", spec_with(resources={"tiny-s": {"workers": 3, "zero_stage": 2}}), V,
     "phase3: task xnli: 8 micro-batches of 8 per step"),
    ("split-plan", spec_with(resources={"tiny-s": {"workers": 3, "zero_stage": 2}}),
     ["plan", "{spec}"], "phase2: task mnli: 8 micro-batches of 8 per step"),
    ("split-run", spec_with(resources={"tiny-s": {"workers": 3, "zero_stage": 3}}),
     ["run", "{spec}"], "do not split across 3 workers of model tiny-s"),
    # ---- storage URIs (never echo a secret)
    ("storage-userinfo", spec_with(storage="s3://AKIAX:s3cr3tpw@bucket/x"), V, "storage"),
    ("storage-scheme", spec_with(storage="ftp://host/x"), V, "not supported"),
    ("storage-option", spec_with(storage="s3://bucket/x?colour=red"), V, "colour"),
    ("storage-no-bucket", spec_with(storage="s3:///x"), V, "names no bucket"),
    ("storage-http-scheme", spec_with(storage="s3://b/x?scheme=ftp"), V, "http or https"),
    # ---- CLI options
    ("cli-storage-empty", spec_with(), ["validate", "{spec}", "--storage", ""], "storage"),
    ("cli-name-bad", spec_with(), ["plan", "{spec}", "--name", "No Good"], "name"),
    ("cli-seed-sd-negative", spec_with(), ["plan", "{spec}", "--power", "--seed-sd", "-1"],
     "seed-sd"),
    ("cli-seed-sd-nan", spec_with(), ["plan", "{spec}", "--power", "--seed-sd", "nan"],
     "seed-sd"),
    ("cli-pilot-missing", spec_with(), ["plan", "{spec}", "--power", "--pilot-name", "nopilot"],
     "nopilot"),
    ("cli-where-no-equals", spec_with(), ["results", "{spec}", "--where", "model"], "--where"),
    ("cli-where-unknown", spec_with(), ["results", "{spec}", "--where", "colour=red"], "colour"),
    ("cli-format", spec_with(), ["results", "{spec}", "--format", "xml"], "xml"),
    ("cli-role", lambda t: {}, ["tasks", "--role", "boss"], "boss"),
    ("cli-unknown-option", spec_with(), ["run", "{spec}", "--fast"], "--fast"),
    ("cli-unknown-command", lambda t: {}, ["rnu"], "rnu"),
    ("cli-examples-zero", lambda t: {"dir": str(t)}, ["fixtures", "{dir}/fx", "--examples", "0"],
     "examples"),
    ("cli-examples-text", lambda t: {"dir": str(t)},
     ["fixtures", "{dir}/fx", "--examples", "many"], "many"),
    ("cli-report-out-file", spec_with(),
     ["report", "{spec}", "--out", "{spec}"], "--out"),
    # ---- score inputs
    ("score-no-preds", score_dirs(), ["score", "--predictions", "{dir}/none",
                                      "--labels", "{labels}"], "none"),
    ("score-unknown-task", score_dirs(), ["score", "--predictions", "{preds}",
                                          "--labels", "{labels}", "--tasks", "xnlii"], "xnlii"),
    ("score-length-mismatch", score_dirs({"xnli/test-de.tsv": "a\nb\n"},
                                         {"xnli/test-de.tsv": "a\n"}),
     ["score", "--predictions", "{preds}", "--labels", "{labels}", "--tasks", "xnli"],
     "test-de"),
    ("score-bad-json", score_dirs({"xquad/test-de.json": "{nope"},
                                  {"xquad/test-de.json": "{}"}),
     ["score", "--predictions", "{preds}", "--labels", "{labels}", "--tasks", "xquad"],
     "test-de"),
    ("score-deep-json", score_dirs({"xquad/test-de.json": "[" * 100_000 + "]" * 100_000},
                                   {"xquad/test-de.json": "{}"}),
     ["score", "--predictions", "{preds}", "--labels", "{labels}", "--tasks", "xquad"],
     "test-de"),
    # ---- store damage
    ("store-garbage-ledger", good_spec_then(_garbage_ledger), ["status", "{spec}"], "ledger"),
    ("store-garbage-sweep-json", good_spec_then(_garbage_sweep_json), ["run", "{spec}"],
     "sweep.json"),
    ("store-other-sweep-json", good_spec_then(_alien_sweep_json), ["run", "{spec}"],
     "sweep.json"),
]  # fmt: skip


@pytest.mark.parametrize(("setup", "argv", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_input_is_one_line_per_problem_and_exit_2(
    tmp_path: Path,
    setup: Setup,
    argv: list[str],
    expected: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = setup(tmp_path)
    before = _contents(tmp_path)
    args = [a.format(**names) for a in argv]
    monkeypatch.setattr(sys, "argv", ["xstilts", *args])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exit_:
        main()
    out, err = capsys.readouterr()
    assert exit_.value.code == 2, f"exit {exit_.value.code}: {err[-2000:]}"
    assert "Traceback" not in err + out
    assert expected in err, err
    assert "s3cr3tpw" not in err + out  # a password in a URI is never echoed
    lines = [ln for ln in err.splitlines() if ln.strip()]
    # Click's own usage errors carry a usage line and a hint; ours are one line each.
    ours = [ln for ln in lines if not ln.startswith(("Usage:", "Try "))]
    assert all(len(ln) < 400 for ln in ours), ours
    if not any(ln.startswith("Usage:") for ln in lines):
        assert all(ln.startswith("xstilts: error: ") for ln in ours), ours
    assert _contents(tmp_path) == before  # nothing written (a run's lease aside)


def _contents(root: Path) -> dict[str, bytes]:
    """Every file under `root` by content, but the sweep lease a run takes first."""
    return {
        str(p): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "lease" not in p.relative_to(root).parts
    }


def test_the_table_is_large() -> None:
    assert len(CASES) >= 60
    assert len({c[0] for c in CASES}) == len(CASES)
