"""The `mnli+mlm` arm on Ray Train workers (DeepSpeed ZeRO-2 and ZeRO-3 x 2, CPU, gloo) gives
the numbers one process gives: the same phase-2 encoder (its word embeddings are the MLM
head's tied decoder) and the same xnli rows after phase 3.

MLM masks are drawn in the head's `collate` from the RNG the loop seeds per (seed, step,
micro-batch), so who computes a unit does not change its masks. A step has 4 units of 4
(batch 8 x grad_accum 2 / micro_batch_size 4): one process computes all four, each worker
two. The bound is `test_resource_equivalence`'s, 1e-6 relative: the same sums in another
order (see there). Steps of the mixture where one task draws no micro-batch leave its head
without a gradient: ZeRO-3 must step it on zeros, as one process does (`trainers.zero`).
Measured (printed): ZeRO-2 and ZeRO-3 encoders within 1.2e-7 of one process (word embeddings
3.5e-8), accuracy equal, nll within 1e-8 relative, nll_se within 1.2e-6 relative (1e-8 of nll).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from conftest import RecordingHooks, cell_job
from safetensors.torch import load_file
from test_distributed import HP as DIST_HP
from test_distributed import dist_model, ray_local  # noqa: F401 (a fixture)

from evaluation.data.mlm_corpus import CORPUS_DIR, MlmCorpus
from evaluation.data.multitask import MultitaskSampler
from evaluation.tasks import get_task
from trainers.cell import run_cell
from trainers.celldata import derive_seed
from trainers.distributed import DONE, HEADS
from trainers.ladder import LADDER, ModelEntry

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ARM = "mnli+mlm"
PHASE2 = ("mnli", "mlm")
LANGUAGES = ("en", "de", "sw")
PHASE2_HP = {**DIST_HP, "grad_accum": 2, "max_steps": 3, "eval_every": 3}  # 4 units a step
PHASE3_HP = {**DIST_HP, "max_steps": 2, "eval_every": 2}
RELATIVE = 1e-6
EMBEDDINGS = "embeddings.word_embeddings.weight"


@pytest.fixture(scope="module")
def mlm_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evaluation.data.fixtures import write_fixtures

    root = tmp_path_factory.mktemp("mlm-dist") / "fx"
    tasks = [get_task(t) for t in ("mnli", "xnli", "mlm")]  # mlm: <root>/mlm_corpus/<lang>.txt
    return write_fixtures(root, seed=0, n_per_split=24, n_train=64, tasks=tasks)


def mlm_job(root: Path, base: Path, model: ModelEntry):
    corpus = MlmCorpus(local_dir=str(root / CORPUS_DIR), max_lines=40, dev_lines=4)
    return cell_job(root, base, model=model, intermediate_task=ARM, phase2_tasks=PHASE2,
                    phase2_hparams=dict.fromkeys(PHASE2, PHASE2_HP), target_tasks=("xnli",),
                    phase3_hparams={"xnli": PHASE3_HP}, languages={"xnli": LANGUAGES},
                    mlm_corpus=corpus, max_train=32, max_dev=8, max_eval=8)  # fmt: skip


def run(job) -> tuple[dict[tuple, float], dict[str, torch.Tensor]]:
    """The cell's xnli rows {(language, metric): value} and its published phase-2 encoder."""
    hooks = RecordingHooks()
    run_cell(job, hooks)
    assert list(hooks.rows) == ["xnli"]
    rows = {(r["language"], r["metric"]): r["value"] for r in hooks.rows["xnli"]}
    encoder = load_file(str(Path(job.paths.phase2_final) / "model.safetensors"))
    return rows, encoder


@pytest.fixture(scope="module")
def one_process(mlm_root: Path, tmp_path_factory: pytest.TempPathFactory):
    return run(mlm_job(mlm_root, tmp_path_factory.mktemp("one"), LADDER["tiny-s"]))


def relative_gap(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def test_phase2_steps_leave_a_head_unused() -> None:
    """Phase 2 mixes both tasks, and some step draws none of one task's micro-batches: its
    head gets no gradient in that step (what ZeRO-3 once stepped on a stale gradient)."""
    seed = derive_seed(0, "phase2", ARM)
    sampler = MultitaskSampler({"mnli": 32, "mlm": 32}, seed=seed)
    steps, accum = PHASE2_HP["max_steps"], PHASE2_HP["grad_accum"]
    drawn = [{sampler.task_for_batch(s * accum + m) for m in range(accum)} for s in range(steps)]
    assert set().union(*drawn) == set(PHASE2)
    assert any(len(tasks) < len(PHASE2) for tasks in drawn), drawn


@pytest.mark.usefixtures("ray_local")
@pytest.mark.parametrize("stage", [2, 3])
def test_mlm_arm_on_zero_workers_matches_one_process(
    stage, mlm_root, one_process, tmp_path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="trainers")
    job = mlm_job(mlm_root, tmp_path / "zero", dist_model(workers=2, stage=stage))
    rows, encoder = run(job)
    ref_rows, ref_encoder = one_process
    assert any("on 2 workers: Train run k-phase2-" in r.getMessage() for r in caplog.records)

    # The phase-2 encoder: its word embeddings are the MLM decoder's weight (tied).
    assert encoder.keys() == ref_encoder.keys()
    emb_gap = (encoder[EMBEDDINGS] - ref_encoder[EMBEDDINGS]).abs().max().item()
    weight_gap = max((encoder[k] - v).abs().max().item() for k, v in ref_encoder.items())
    # The consolidated Train checkpoint: the head's decoder is the encoder's embeddings.
    runs = Path(job.paths.train_storage) / f"k-phase2-{ARM}"
    final = next(c for c in sorted(runs.glob("checkpoint_*")) if (c / DONE).exists())
    heads = load_file(str(final / HEADS))
    assert torch.equal(heads["mlm.decoder.weight"], encoder[EMBEDDINGS])
    assert torch.equal(heads["mlm.decoder.bias"], heads["mlm.bias"])

    assert rows.keys() == ref_rows.keys()
    assert {lang for lang, _ in rows} == set(LANGUAGES)
    gaps = {k: relative_gap(v, ref_rows[k]) for k, v in rows.items()}
    worst = max(gaps, key=gaps.__getitem__)
    print(
        f"ZeRO-{stage} x2 vs one process: word embeddings within {emb_gap:.1e}, encoder "
        f"{weight_gap:.1e}; {len(rows)} rows, worst {worst} {gaps[worst]:.1e} relative"
    )
    assert emb_gap < RELATIVE and weight_gap < RELATIVE
    for (lang, metric), value in rows.items():
        # A `<metric>_se` (a bootstrap SD over 8 examples, ~1 % of its metric) is bounded on
        # its metric's scale: the same weight ulps are ~100x larger relative to it.
        ref = ref_rows[lang, metric]
        of = rows.get((lang, metric.removesuffix("_se")), 0.0)
        bound = RELATIVE * max(abs(value), abs(ref), abs(of))
        assert abs(value - ref) <= bound, (lang, metric, value, ref)
