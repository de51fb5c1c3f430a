"""`SweepLayout`: every path under ``<storage>/<sweep>/``, named once.

```
<storage>/<sweep>/
  sweep.json                      the result-affecting config the sweep was started with
  lease/gen-<n>.json              who runs the sweep now (orchestrator.lease)
  ledger/<trial_key>.json         what each cell has done (orchestrator.ledger)
  results/*.parquet               the results store (storage.results)
  phase2/<phase2_key>/            one intermediate-task training, shared by its cells:
      checkpoints/                  its training checkpoints (cleared once it is final)
      final/                        the phase-2 encoder and tokenizer (Hugging Face format)
      phase1/                       a model built from a config, for Ray Train workers
  cells/<trial_key>/              one cell:
      phase3/<task>/checkpoints/    phase-3 training checkpoints (cleared once scored)
      predictions/<task>/           test-<lang>.<ext>, the XTREME submission format
  train/                          Ray Train runs of distributed models
  tune/                           Ray Tune's experiment state
  cache/                          tokenizers and tokenised features (local storage only;
                                  on object stores: ~/.cache/xstilts/<sweep> on each node)
  mlruns/                         the default MLflow file store (local storage only)
  tensorboard/, wandb/            TensorBoard event files, W&B run files (when enabled)
  logs/                           Ray's and Tune's output of each `xstilts run`
                                  (these three: in the node cache on object stores)
  report/                         `xstilts report` (local storage only)
```

Paths are URIs (``s3://bucket/prefix/<sweep>/ledger?endpoint_override=...``) or absolute
local paths, plain strings that travel to Ray workers and go back into
`storage.files.resolve_storage`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from storage.files import check_name, join, resolve_storage

CONFIG_FILE = "sweep.json"


@dataclass(frozen=True)
class SweepLayout:
    """The paths of one sweep. `root` is the sweep's directory as a URI or absolute path."""

    root: str
    sweep: str
    is_local: bool

    @classmethod
    def of(cls, storage_uri: str, sweep: str) -> SweepLayout:
        """The layout of `sweep` under a storage URI (a relative local path is made absolute)."""
        storage = resolve_storage(storage_uri)
        name = check_name("sweep name", sweep)
        return cls(storage.uri_of(storage.path(name)), name, storage.is_local)

    def _under(self, *parts: str) -> str:
        return join(self.root, *parts)

    @property
    def config(self) -> str:
        return self._under(CONFIG_FILE)

    @property
    def lease(self) -> str:
        return self._under("lease")

    @property
    def ledger(self) -> str:
        return self._under("ledger")

    @property
    def results(self) -> str:
        return self._under("results")

    @property
    def train(self) -> str:
        return self._under("train")

    @property
    def tune(self) -> str:
        return self._under("tune")

    @property
    def cache(self) -> str:
        """A local directory: under the sweep when storage is local, else on this node."""
        if self.is_local:
            return self._under("cache")
        return str(Path("~/.cache/xstilts").expanduser() / self.sweep)

    @property
    def mlruns(self) -> str | None:
        """The default MLflow file store: under the sweep when storage is local, else none."""
        return self._under("mlruns") if self.is_local else None

    @property
    def tensorboard(self) -> str:
        """TensorBoard event files (a local directory, as `cache`)."""
        return self._local("tensorboard")

    @property
    def wandb(self) -> str:
        """W&B's run files (a local directory, as `cache`)."""
        return self._local("wandb")

    @property
    def logs(self) -> str:
        """Ray's and Tune's output of each `xstilts run` (a local directory, as `cache`)."""
        return self._local("logs")

    def _local(self, name: str) -> str:
        return self._under(name) if self.is_local else str(Path(self.cache) / name)

    @property
    def report(self) -> str:
        """A local directory: under the sweep when storage is local, else in the cwd."""
        if self.is_local:
            return self._under("report")
        return str(Path(f"xstilts-report-{self.sweep}").resolve())

    def phase2(self, phase2_key: str, *parts: str) -> str:
        return self._under("phase2", check_name("phase-2 key", phase2_key), *parts)

    def phase2_checkpoints(self, phase2_key: str) -> str:
        return self.phase2(phase2_key, "checkpoints")

    def phase2_final(self, phase2_key: str) -> str:
        return self.phase2(phase2_key, "final")

    def phase1_encoder(self, phase2_key: str) -> str:
        return self.phase2(phase2_key, "phase1")

    def cell(self, trial_key: str, *parts: str) -> str:
        return self._under("cells", check_name("trial key", trial_key), *parts)

    def phase3_checkpoints(self, trial_key: str, task: str) -> str:
        return self.cell(trial_key, "phase3", check_name("target task", task), "checkpoints")

    def predictions(self, trial_key: str, task: str) -> str:
        return self.cell(trial_key, "predictions", check_name("target task", task))
