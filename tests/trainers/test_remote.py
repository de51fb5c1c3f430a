"""A distributed cell's trial never loads its model: publishing and prediction are Ray tasks.

On CPU with logical resources (4 CPUs): tiny-s as a ZeRO-2 model on one Train worker. Run in
a private network namespace, as `test_distributed.py` says.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from conftest import RecordingHooks
from ray import cloudpickle
from test_distributed import HP, dist_job, dist_model, ray_local  # noqa: F401 (a fixture)

from trainers import remote
from trainers.cell import run_cell

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # `_pid` runs in a Ray task


def _pid(job) -> int:
    return os.getpid()


@pytest.mark.integration
@pytest.mark.usefixtures("ray_local")
def test_a_distributed_cell_predicts_off_the_trial_process(
    fixture_root, tmp_path, monkeypatch
) -> None:
    """This process plays the trial: it must build no encoder, pretrained or trained."""
    import transformers

    built: list[str] = []
    for name in ("from_pretrained", "from_config"):
        original = getattr(transformers.AutoModel, name)

        def counting(*args, _original=original, _name=name, **kwargs):
            built.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(transformers.AutoModel, name, counting)
    targets = ("xnli", "tatoeba")
    job = dist_job(fixture_root, tmp_path, model=dist_model(workers=1), target_tasks=targets,
                   phase3_hparams={t: HP for t in targets})  # fmt: skip
    hooks = RecordingHooks()
    run_cell(job, hooks)
    assert built == []
    assert list(hooks.rows) == list(targets)
    assert all(hooks.rows[t] for t in targets)
    for task in targets:
        assert any(Path(job.paths.predictions(task)).iterdir())
    assert ("mark_phase2_done", job.paths.phase2_final) in hooks.calls
    assert (Path(job.paths.phase2_final) / "config.json").is_file()
    assert [c for c in hooks.calls if c[0] == "progress"] == [
        ("progress", "phase2", None),
        ("progress", "phase3", "xnli"),
        ("progress", "evaluate", "xnli"),
        ("progress", "evaluate", "tatoeba"),
    ]


@pytest.mark.integration
@pytest.mark.usefixtures("ray_local")
def test_a_task_from_a_trial_leaves_the_trials_placement_group(fixture_root, tmp_path) -> None:
    """A trial's placement group captures its child tasks by default; a distributed trial's
    group reserves nothing for prediction, so the task must be scheduled outside it."""
    import ray
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    job = dist_job(fixture_root, tmp_path, model=dist_model(workers=1))
    group = placement_group([{"CPU": 0.01}])  # as a distributed trial's: no room for the task
    ray.get(group.ready(), timeout=60)
    trial = ray.remote(num_cpus=0.01)(lambda j: remote._call(j, _pid)).options(
        scheduling_strategy=PlacementGroupSchedulingStrategy(
            group, placement_group_capture_child_tasks=True
        )
    )
    pid = ray.get(trial.remote(job), timeout=120)  # captured, it could not be placed
    assert pid != os.getpid()
