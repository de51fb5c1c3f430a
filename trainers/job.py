"""What one grid cell's runner receives: `CellJob` = config + paths + runtime values.

- `CellConfig`: what the spec says about this cell (model, tasks, seed, typed
  hyperparameters per task, data access, resume policy, Ray Train restarts).
- `CellPaths`: where the cell reads and writes (built from `storage.layout.SweepLayout`
  by `orchestrator.jobs`): the shared phase-2 directory, the cell's directory, the Ray Train
  storage of distributed runs, and the node-local cache directory.
- `Runtime`: this attempt's values: its number, torch threads, and the write `fence`
  (checked before every checkpoint, encoder and prediction write, so that a run that lost
  its sweep lease writes nothing).

Plain frozen values, picklable: Ray ships a job to the trial and to Ray Train workers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from storage.files import Fence
from storage.layout import SweepLayout
from trainers.celldata import DataAccess
from trainers.checkpoint import Resume
from trainers.hparams import PhaseHparams
from trainers.ladder import ModelEntry


@dataclass(frozen=True)
class CellConfig:
    sweep: str
    trial_key: str
    phase2_key: str
    model: ModelEntry  # with the spec's per-model resource overrides applied
    intermediate_task: str
    phase2_tasks: tuple[str, ...]  # () for none; the nine for multitask
    seed: int
    target_tasks: tuple[str, ...]
    target_keys: Mapping[str, str]  # target task -> its key (phase 3, rows, ledger entry)
    phase2_hparams: Mapping[str, PhaseHparams]  # task -> resolved hyperparameters
    phase3_hparams: Mapping[str, PhaseHparams]  # target tasks and their stages
    data: DataAccess
    # Target task -> tasks trained on its encoder, in order, before it (phase 3).
    stages: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    resume: Resume = Resume.IF_AVAILABLE
    max_failures: int = 2  # Ray Train worker-group restarts per run (distributed models)


@dataclass(frozen=True)
class CellPaths:
    """Where this cell's files go, as `SweepLayout` names them (URIs or absolute paths;
    `cache_dir` is always a local directory)."""

    layout: SweepLayout
    phase2_key: str
    trial_key: str
    target_keys: Mapping[str, str]  # a target task's files live under its own key

    @property
    def phase2_checkpoints(self) -> str:
        return self.layout.phase2_checkpoints(self.phase2_key)

    @property
    def phase2_final(self) -> str:  # shared by the cells with the same phase2_key
        return self.layout.phase2_final(self.phase2_key)

    @property
    def phase1_encoder(self) -> str:
        return self.layout.phase1_encoder(self.phase2_key)

    def phase3_checkpoints(self, task: str) -> str:
        return self.layout.phase3_checkpoints(self.target_keys[task], task)

    def predictions(self, task: str) -> str:
        return self.layout.predictions(self.target_keys[task], task)

    @property
    def train_storage(self) -> str:  # Ray Train runs of distributed models
        return self.layout.train

    @property
    def cache_dir(self) -> str:  # tokenizers, features, fetched encoders
        return self.layout.cache


@dataclass(frozen=True)
class Runtime:
    attempt: int = 0
    threads: int | None = None  # torch.set_num_threads for this process, when given
    fence: Fence | None = None  # checked before every write; None: unfenced
    # Asked to stop (SIGTERM / SIGINT to the driver: `orchestrator.stopping.StopFlag`);
    # distributed workers agree on it and checkpoint at the same step boundary.
    stop: Callable[[], bool] | None = None


@dataclass(frozen=True)
class CellJob:
    config: CellConfig
    paths: CellPaths
    runtime: Runtime = field(default_factory=Runtime)
