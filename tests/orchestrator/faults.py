"""Fault injection for the sweep tests, from tests/ only: a cell runner wrapping the real one.

`run_sweep(spec, runner=FaultyRunner(...))` runs every trial through `FaultyRunner`: the
trainable (`orchestrator.trainable.run_trial`) hands it each attempt's job and hooks
(`orchestrator.hooks.StoreHooks`), and it runs `trainers.cell.run_cell` with those hooks
wrapped:

- `fail`: cells (labels ``<model>/<intermediate_task>/<seed>``) whose every attempt raises
  ``RuntimeError: injected failure ...`` before doing anything;
- `pause_at` ``<point>[:<n>]`` with `marker`: the first attempt that reaches `point` for
  the n-th time writes ``<point> <pid>`` to `marker` (create-only) and sleeps until it is
  killed; once `marker` exists nobody pauses again. Points: ``after_fragment`` (a
  fragment is written, its ledger entry not yet), ``<phase>`` (a phase reported without a
  step: ``phase2``, ``phase3``, ``evaluate``) and ``<phase>_step`` (every training step);
- `trace`: a file that gets ``<trial_key> attempt=<n> <phase> <target_task> <step>`` for
  the first step of each phase and target task of an attempt.

Trials run in Ray workers, which cannot import this file (tests/ is not installed): run as
a script it is ``__main__``, which cloudpickle pickles by value; imported (by path, as the
module ``faults``), it registers itself for pickling by value.

As a script it is `xstilts run` with faults (for the tests that SIGKILL the driver)::

    python tests/orchestrator/faults.py SPEC [--fail CELL]... [--pause-at POINT --marker FILE]

the same CLI command and driver code path, only with this runner.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from trainers.cell import run_cell
from trainers.job import CellJob


@dataclass(frozen=True)
class FaultyRunner:
    fail: tuple[str, ...] = ()
    pause_at: str | None = None
    marker: str | None = None
    trace: str | None = None

    def __call__(self, job: CellJob, hooks: Any) -> None:
        cfg, attempt = job.config, job.runtime.attempt
        label = f"{cfg.model.name}/{cfg.intermediate_task}/{cfg.seed}"
        if label in self.fail:
            raise RuntimeError(f"injected failure in cell {cfg.trial_key} (attempt {attempt})")
        faulty = FaultyHooks(hooks, self)
        hooks.store = PausingStore(hooks.store, faulty)  # pauses inside `hooks.record`
        run_cell(job, faulty)


class FaultyHooks:
    """The attempt's hooks, pausing and tracing where `FaultyRunner` says."""

    def __init__(self, inner: Any, faults: FaultyRunner) -> None:
        self.inner, self.faults = inner, faults
        self.seen: dict[str, int] = {}
        self.stepped: set[tuple[str, str | None]] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def progress(self, phase: str, target_task: str | None, detail: dict) -> None:
        self.inner.progress(phase, target_task, detail)
        step = detail.get("step")
        if step is not None and (phase, target_task) not in self.stepped and self.faults.trace:
            self.stepped.add((phase, target_task))
            key, attempt = self.inner.job.config.trial_key, self.inner.job.runtime.attempt
            with open(self.faults.trace, "a", encoding="utf-8") as out:
                out.write(f"{key} attempt={attempt} {phase} {target_task} {step}\n")
        self.pause_point(phase if step is None else f"{phase}_step")

    def pause_point(self, point: str) -> None:
        want, marker = self.faults.pause_at, self.faults.marker
        if not want or not marker:
            return
        name, _, nth = want.partition(":")
        if name != point:
            return
        self.seen[point] = self.seen.get(point, 0) + 1
        if self.seen[point] < int(nth or 1):
            return
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, f"{point} {os.getpid()}\n".encode())
        os.close(fd)
        while True:
            time.sleep(3600)


class PausingStore:
    """The results store, with the ``after_fragment`` pause point after each write."""

    def __init__(self, inner: Any, hooks: FaultyHooks) -> None:
        self.inner, self.hooks = inner, hooks

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write_rows(self, *args: Any, **kwargs: Any) -> Any:
        fragment = self.inner.write_rows(*args, **kwargs)
        self.hooks.pause_point("after_fragment")
        return fragment


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="`xstilts run SPEC` with injected faults")
    parser.add_argument("spec")
    parser.add_argument("--fail", action="append", default=[], metavar="CELL")
    parser.add_argument("--pause-at", metavar="POINT[:N]")
    parser.add_argument("--marker", metavar="FILE")
    parser.add_argument("--trace", metavar="FILE")
    args = parser.parse_args(argv)
    runner = FaultyRunner(tuple(args.fail), args.pause_at, args.marker, args.trace)
    from orchestrator import cli, driver

    driver.run_sweep = functools.partial(driver.run_sweep, runner=runner)  # type: ignore[assignment]
    sys.argv = ["xstilts", "run", args.spec]
    cli.main()


if __name__ == "__main__":
    main(sys.argv[1:])
else:
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
