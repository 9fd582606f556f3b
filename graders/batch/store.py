"""OUT_DIR layout and the one rule that makes a batch run crash-safe: every learner's result is a
file of its own, written atomically (temp file in the same folder, then ``os.replace``) the moment
it is known. Gradebooks are derived files, rebuilt from these result files, so an interrupted run
leaves either a learner's complete old result or their complete new one -- never half of either.

    OUT_DIR/results/<learner>.json      source of truth, one per learner
    OUT_DIR/feedback/<learner>.html     what the learner may see
    OUT_DIR/executed/<learner>.ipynb    the executed notebook, for the instructor to debug with
    OUT_DIR/gradebook.csv|json, OUT_DIR/canvas.csv, OUT_DIR/summary.html   rebuilt every run
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graders import outfile
from graders.errors import InputError

RESULT_VERSION = 1


def atomic_write(path: Path, data: str | bytes) -> None:
    """graders.outfile.write, creating the folder: whole files, regular files only, umask permissions."""
    outfile.write(path, data, make_parents=True)


class Store:
    def __init__(self, out: Path):
        self.out = out
        self.results = out / "results"
        self.feedback = out / "feedback"
        self.executed = out / "executed"

    def prepare(self) -> None:
        for d in (self.results, self.feedback, self.executed):
            d.mkdir(parents=True, exist_ok=True)
        self.remove_temp_files()  # of a killed run

    def remove_temp_files(self) -> None:
        """Temp files of writes that never finished: a run killed outright, or a worker the grader had to
        kill mid-write when interrupted. Only while this run holds the lock, so no write is in flight."""
        for d in (self.results, self.feedback, self.executed, self.out):
            for stale in d.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    stale.unlink()

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One grading run per OUT_DIR at a time (two would overwrite each other's gradebooks). The lock
        file is removed when the run ends, so a clean run leaves none behind; a run that finds the
        file it locked already unlinked (it lost a race with a finishing run) locks the new one."""
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / ".lock"
        while True:
            fh = path.open("a")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                raise InputError(f"{self.out}: another `grade` run is writing to this folder; wait for it or "
                                 "choose another --out") from None
            try:
                same = os.fstat(fh.fileno()).st_ino == path.stat().st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            fh.close()
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                path.unlink()  # while still holding the lock: nobody can have locked this file meanwhile
            fh.close()

    def result_path(self, stem: str) -> Path:
        return self.results / f"{stem}.json"

    def load(self, stem: str) -> dict[str, Any] | None:
        """A stored result, or None when missing or unreadable (then the learner is graded again)."""
        try:
            data = json.loads(self.result_path(stem).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("result_version") == RESULT_VERSION else None

    def save(self, stem: str, result: dict[str, Any], feedback_html: str | None,
             executed_nb: str | None = None) -> None:
        # Feedback and notebook first, result last: the result file is what marks the learner done.
        if feedback_html is not None:
            atomic_write(self.feedback / f"{stem}.html", feedback_html)
        if executed_nb is not None:
            atomic_write(self.executed / f"{stem}.ipynb", executed_nb)
        atomic_write(self.result_path(stem), json.dumps({**result, "result_version": RESULT_VERSION},
                                                        indent=1, sort_keys=True))
