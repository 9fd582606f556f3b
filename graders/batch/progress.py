"""Progress on stderr: a redrawn bar with ETA on a terminal, one plain line per learner otherwise
(logs, CI, a pipe), so nothing is ever garbled by carriage returns in a file."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from graders.report import terminal_safe


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None, *, tty: bool | None = None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.total = total
        self.done = 0
        self.worked = 0  # learners actually graded this run (skipped ones are instant)
        self.errors = 0
        self.started = time.monotonic()

    def eta(self) -> float | None:
        if not self.worked:
            return None
        rate = self.worked / (time.monotonic() - self.started)
        return (self.total - self.done) / rate if rate > 0 else None

    def update(self, result: Mapping[str, Any], *, skipped: bool = False) -> None:
        self.done += 1
        self.worked += 0 if skipped else 1
        self.errors += result["status"] == "error"
        if self.tty:
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            eta = self.eta()
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
                              f"  errors {self.errors}  ETA {_clock(eta) if eta is not None else '--:--'} ")
            if self.done == self.total:
                self.stream.write("\n")
        else:
            if result["status"] == "graded":
                what = f"graded {result['score']:g}/{result['max_score']:g}"
            else:
                what = f"error: {result.get('reason')}"
            note = " (unchanged, kept)" if skipped else f" ({result.get('seconds', 0):.1f} s)"
            # A reason can quote learner code's own error text: never let it drive the terminal.
            self.stream.write(terminal_safe(f"[{self.done}/{self.total}] {result['learner']}: {what}{note}") + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.done != self.total:
            self.stream.write("\n")
            self.stream.flush()
