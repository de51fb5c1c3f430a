"""Stopping a run on SIGTERM (cloud preemption, `ray job stop`) or SIGINT (Ctrl-C).

Tune's loop runs in a thread (`fit_or_stop`); the main thread takes the signal and asks
every running trial to stop, through Ray's key-value store: a trial in training
checkpoints at its next step boundary (`trainers.loop.StopRequested`), one between
phases stops at once (each fragment is written atomically, before its ledger entry), and
each says so (`acknowledge`). Once all running trials have answered, or the grace period
(`scheduling.stop_grace_s`, default 30 s) has passed, or a second signal came, `Stopped`
is raised in the main thread: Tune's loop is ended first (`tune_stopper`: a thread still
calling into Ray while it shuts down makes Ray end the process with exit code 1), then the
driver shuts Ray down, releases the lease and exits 143 (SIGTERM) or 130 (SIGINT) with one
line saying how to resume. What the trials wrote is what a `kill -9` at that instant would
leave, and a rerun resumes from it (tests/orchestrator/test_signals.py).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from orchestrator import terminal

NAMESPACE = "xstilts"
_POLL_S = 0.5
EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130}
_FIT_END_S = 30.0  # how long Tune's loop gets to end once the trials have answered
_end_tune = threading.Event()  # set by `fit_or_stop`: Tune stops the experiment


class Stopped(BaseException):
    """The run was stopped by `signum`; what it wrote is consistent. A BaseException, as
    KeyboardInterrupt is, so that no `except Exception` on its way out swallows it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(signal.Signals(self.signum), 128 + self.signum)


def _key(sweep: str, what: str) -> bytes:
    return f"{sweep}/{what}".encode()


def _kv() -> Any:
    from ray.experimental import internal_kv

    return internal_kv


def reset(sweep: str) -> None:
    """Forget an earlier run's stop request (a cluster's key-value store outlives runs)."""
    kv = _kv()
    for what in ("stop", "running/", "stopped/"):
        for key in kv._internal_kv_list(_key(sweep, what), namespace=NAMESPACE):
            kv._internal_kv_del(key, namespace=NAMESPACE)


def register(sweep: str, trial_key: str) -> None:
    """A trial of `sweep` is running (the driver waits for its answer when stopping)."""
    _kv()._internal_kv_put(_key(sweep, f"running/{trial_key}"), b"1", namespace=NAMESPACE)


def unregister(sweep: str, trial_key: str) -> None:
    _kv()._internal_kv_del(_key(sweep, f"running/{trial_key}"), namespace=NAMESPACE)


def acknowledge(sweep: str, trial_key: str) -> None:
    """This trial has stopped where a rerun resumes (checkpoint written or nothing lost)."""
    _kv()._internal_kv_put(_key(sweep, f"stopped/{trial_key}"), b"1", namespace=NAMESPACE)


class StopFlag:
    """A trial's view of the stop request, read at most every `_POLL_S` seconds."""

    def __init__(self, sweep: str) -> None:
        self.sweep = sweep
        self._checked = 0.0
        self._set = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self._set and now - self._checked >= _POLL_S:
            self._checked = now
            kv = _kv()
            with contextlib.suppress(Exception):  # no Ray (a cell run directly): never set
                self._set = bool(
                    kv._internal_kv_initialized()
                    and kv._internal_kv_exists(_key(self.sweep, "stop"), namespace=NAMESPACE)
                )
        return self._set


def tune_stopper() -> Any:
    """The Tune stopper of a run's Tuner (`RunConfig(stop=...)`): it ends the experiment
    once `fit_or_stop` asks, so that Tune's thread has left Ray before Ray shuts down."""
    from ray.tune.stopper import Stopper

    class EndOnStop(Stopper):
        def __call__(self, trial_id: str, result: dict) -> bool:
            return False

        def stop_all(self) -> bool:
            from orchestrator import stopping  # by name: the stopper is pickled with the Tuner

            return stopping._end_tune.is_set()

    return EndOnStop()


def fit_or_stop(fit: Callable[[], object], sweep: str, grace_s: float) -> None:
    """Run `fit` (Tune's loop) in a thread while this, the main thread, takes SIGTERM and
    SIGINT: on one, stop as the module docstring says and raise `Stopped` here (raising in
    the handler would land inside Ray's compiled wait and corrupt it)."""
    got: list[int] = []
    failure: list[BaseException] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        got.append(signum)

    def run() -> None:
        try:
            fit()
        except BaseException as exc:  # handed to the main thread, never printed here
            failure.append(exc)

    _end_tune.clear()
    previous = {s: signal.signal(s, on_signal) for s in EXIT_CODES}
    try:
        thread = threading.Thread(target=run, name="tune-fit", daemon=True)
        thread.start()
        while thread.is_alive() and not got:
            thread.join(0.2)
        if got:
            print(
                f"xstilts: {signal.Signals(got[0]).name}: stopping; running cells checkpoint "
                f"(up to {grace_s:.0f} s; signal again to stop now)",
                file=terminal.out(),  # the terminal, also while Ray's output goes to a log
                flush=True,
            )
            _request_and_wait(sweep, grace_s, lambda: len(got) > 1)
            _end_tune.set()  # the trials have answered: Tune's loop ends (`tune_stopper`)
            deadline = time.monotonic() + _FIT_END_S
            while thread.is_alive() and len(got) == 1 and time.monotonic() < deadline:
                thread.join(0.2)
            raise Stopped(got[0])
        if failure:
            raise failure[0]
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _request_and_wait(sweep: str, grace_s: float, now: Callable[[], bool]) -> None:
    kv = _kv()
    with contextlib.suppress(Exception):  # Ray gone already: nothing to wait for
        kv._internal_kv_put(_key(sweep, "stop"), b"1", namespace=NAMESPACE)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and not now():
            running = _keys(kv, sweep, "running/")
            stopped = _keys(kv, sweep, "stopped/")
            if running <= stopped:
                return
            time.sleep(_POLL_S / 2)


def _keys(kv: Any, sweep: str, prefix: str) -> set[str]:
    found = kv._internal_kv_list(_key(sweep, prefix), namespace=NAMESPACE)
    return {k.decode().rsplit("/", 1)[-1] for k in found}
