"""When `last.pt` is written, and the stop signals that write it.

A resume file holds the state at the end of a completed epoch, never a partial one, so a resumed
run is exact. It is written when `train.checkpoint_every_min` minutes have passed since the last
write (0: after every epoch), after the last epoch, and when the job is told to stop: SIGTERM
(SLURM's time limit, preemption, scancel) or SIGUSR1 (the slurm profile's `--signal=USR1@600`,
ten minutes before the time limit). A signal mid-epoch abandons that epoch and writes the host
copy of the last completed one (`host_copy`), which the loop keeps while the file on disk is
older than it.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import torch

from densebench.data.loader import STOP_SIGNALS


class StopRequested(Exception):
    """A stop signal arrived; the job saves its last completed epoch and exits."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + self.signum


class StopSignals:
    """Context manager: SIGTERM / SIGUSR1 set a flag (`check` raises StopRequested) instead of
    killing the process; the previous handlers come back on exit."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum

    def __enter__(self) -> StopSignals:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def check(self) -> None:
        """Raise StopRequested if a stop signal has arrived."""
        if self.received is not None:
            raise StopRequested(self.received)


class CheckpointClock:
    """Decides after which epochs `last.pt` is written: every `every_min` minutes (0: every
    epoch) and after the last epoch."""

    def __init__(self, every_min: float, clock: Callable[[], float] = time.monotonic):
        self.every_s = float(every_min) * 60.0
        self.clock = clock
        self.last_write = clock()

    def due(self, epochs_done: int, epochs: int) -> bool:
        """Whether the state after `epochs_done` epochs is written now."""
        return epochs_done >= epochs or self.clock() - self.last_write >= self.every_s

    def written(self) -> None:
        """Record a write."""
        self.last_write = self.clock()


def host_copy(value: Any) -> Any:
    """A deep copy of a state (nested dicts / lists of tensors) with every tensor on the host:
    the best state and the resume snapshot never hold GPU memory."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: host_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(host_copy(v) for v in value)
    return value
