"""The nll rows are bit-reproducible across a resume (issue 15, item 4).

A cell whose evaluation is redone after an interruption predicts with the best weights read
back from its checkpoint (`train` resumes at the last step and loads them), where the
uninterrupted run predicts with the best weights it kept in memory. Both must give the same
rows to the last bit — accuracy, nll and nll_se — in this process and in a fresh one (the
orchestrator resumes in a new process): the weights round-trip exactly through
`torch.save`/`load_state_dict` (copied into the model's own parameters, so strides and
kernels do not change), each example's nll is computed in float64 from the float32 logits,
and the language's nll sums those in example order.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from resume_job import run

from evaluation.predict import evaluate
from trainers.checkpoint import CheckpointStore
from trainers.taskmodel import TaskModel, scored_predictor

HERE = Path(__file__).parent


class Interrupt(Exception):
    pass


def _rows(model: TaskModel, data) -> list[dict]:  # type: ignore[no-untyped-def]
    predict = scored_predictor(model, data.spec, data.tok, 5, False)  # batches of mixed length
    return evaluate(data.spec, {"en": data.dev, "xx": data.dev[::-1]}, predict, None)


def _nll(model: TaskModel, data) -> np.ndarray:  # type: ignore[no-untyped-def]
    found = scored_predictor(model, data.spec, data.tok, 5, False)(data.dev).nll
    assert found is not None
    return found


def test_nll_of_reloaded_best_weights_equals_the_in_memory_one(tmp_path: Path) -> None:
    ckpt, cache = str(tmp_path / "ckpt"), str(tmp_path / "cache")
    kept, data, result = run(ckpt, cache)  # best weights kept in memory
    assert result.best_step is not None  # the run keeps best weights to reload
    rows = _rows(kept, data)
    assert {r["metric"] for r in rows} == {"accuracy", "nll", "nll_se"}
    reloaded, data2, again = run(ckpt, cache)  # no step left: best weights from the file
    assert again.steps == result.steps
    for name, tensor in kept.state_dict().items():
        assert np.array_equal(tensor.numpy(), reloaded.state_dict()[name].numpy()), name
    assert _rows(reloaded, data2) == rows  # exact, nll and nll_se included
    assert np.array_equal(_nll(kept, data), _nll(reloaded, data2))


def test_nll_after_an_interruption_equals_the_uninterrupted_run(tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    full, data, _ = run(str(tmp_path / "full"), cache)

    def stop(step: int, _loss: float) -> None:
        if step == 5:
            raise Interrupt

    with pytest.raises(Interrupt):
        run(str(tmp_path / "cut"), cache, stop)
    resumed, data2, _ = run(str(tmp_path / "cut"), cache)
    assert _rows(resumed, data2) == _rows(full, data)


@pytest.mark.slow  # a fresh interpreter imports torch: about 15 s
def test_nll_in_a_fresh_process_equals_the_in_memory_one(tmp_path: Path) -> None:
    ckpt, cache = str(tmp_path / "ckpt"), str(tmp_path / "cache")
    kept, data, _ = run(ckpt, cache)
    assert CheckpointStore(ckpt).steps()
    out = tmp_path / "nll.npy"
    code = (
        "import sys, numpy as np; sys.path.insert(0, sys.argv[1]);"
        "from resume_job import run; from trainers.taskmodel import scored_predictor;"
        "m, d, _ = run(sys.argv[2], sys.argv[3]);"
        "np.save(sys.argv[4], scored_predictor(m, d.spec, d.tok, 5, False)(d.dev).nll)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(HERE), ckpt, cache, str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert np.array_equal(np.load(out), _nll(kept, data))
