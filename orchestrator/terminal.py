"""Where the output of `xstilts run` goes while Ray runs: its own lines on the terminal, the
rest (Ray's and Tune's notices, the Tune configuration box, log lines of Ray's C++ core and of
the processes it starts) into a log file under the sweep.

`quiet(path)` points this process's file descriptors 1 and 2 at `path`, so that everything
written to stdout or stderr, by Python or not, lands there; `out()` is the terminal (a copy
of the real stderr) for the progress display and xstilts' notices. `quiet(None)` changes
nothing (`xstilts run -v`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TextIO

_terminal: TextIO | None = None


def out() -> TextIO:
    """The terminal: stderr as it was before `quiet`."""
    return _terminal if _terminal is not None else sys.stderr


def say(line: str) -> None:
    """One line of xstilts' own on the terminal."""
    print(line, file=out(), flush=True)


@contextlib.contextmanager
def quiet(path: str | None) -> Iterator[None]:
    global _terminal
    if path is None or _terminal is not None:
        yield
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding="utf-8")
    try:
        os.dup2(log, 1)
        os.dup2(log, 2)
        _terminal = terminal
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        _terminal = None
        for fd in (log, *saved):
            os.close(fd)
        terminal.close()
