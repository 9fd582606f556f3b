"""Run one notebook at a time in a worker's kernel with nbclient, with a hard per-learner deadline
(graders.batch.pool runs one worker per process).

Kernel reuse (the main speed lever: a kernel starts in about a second, a warm one runs the lab
notebook in about a quarter of one):
each worker keeps its kernel between learners when the notebook is the course's own pristine
notebook, and resets it in between (``%reset -f``: user variables, ``In``/``Out`` and the working
directory). What survives a reset is ``sys.modules`` -- that is the point, imports are the other
big cost -- together with any module-level state. That is safe only because the code that runs is
the course's, which keeps no per-learner state in modules; learner files are only read as data.
A learner's own notebook (``--execute-submitted-notebooks``) always gets a fresh kernel that is
killed afterwards: untrusted code could monkeypatch a module so the next learner passes.
A kernel that timed out, died or failed to reset is killed and replaced, never reused.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import math
import os
import signal
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from nbformat import NotebookNode

STARTUP_TIMEOUT = 60.0
GRACE = 10.0  # beyond the learner's budget before the outer watchdog kills the kernel
_LIVE_PGIDS: set[int] = set()  # kernel process groups to kill if we exit abnormally
T = TypeVar("T")


@dataclass
class Job:
    nb: NotebookNode
    cwd: Path
    trusted: bool  # the course's pristine notebook (kernel may be reused)
    timeout: float
    env: dict[str, str]
    injected_at: int | None = None  # index of the injected parameters cell, to name cells as the author sees them


@dataclass
class Outcome:
    nb: NotebookNode
    error: str | None
    seconds: float
    reused_kernel: bool


def kill_leftover_kernels() -> None:
    for pgid in list(_LIVE_PGIDS):
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    _LIVE_PGIDS.clear()


atexit.register(kill_leftover_kernels)


async def bounded(coro: Awaitable[T], timeout: float) -> T:
    """``asyncio.wait_for`` that always collects the inner task's outcome. nbclient turns a
    cancellation into DeadKernelError, which ``wait_for`` would leave unretrieved (and asyncio would
    print its traceback at exit)."""
    task = asyncio.ensure_future(coro)
    try:
        done, _ = await asyncio.wait({task}, timeout=max(timeout, 0.0))
    except asyncio.CancelledError:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise
    if not done:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise TimeoutError
    return task.result()


def _first_line(text: str, limit: int = 200) -> str:
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


class KernelSlot:
    """One worker's kernel: started on demand, reset between trusted jobs, killed when in doubt."""

    def __init__(self, reuse: bool = True):
        self.reuse = reuse
        self.km: Any = None
        self.kc: Any = None
        self.cwd: Path | None = None
        self.starts = 0

    async def _start(self, cwd: Path, env: dict[str, str]) -> None:
        from jupyter_client.manager import AsyncKernelManager

        await self.shutdown()
        self.km = AsyncKernelManager(kernel_name="python3")
        # Quiet kernel logs: each kernel otherwise warns on stderr that loopback TCP is unencrypted (the
        # messages are still HMAC-signed with a per-kernel key, so other local users cannot inject code).
        # No input history: it is an SQLite write per cell that nobody reads back in a graded run.
        await self.km.start_kernel(cwd=str(cwd), env=env, extra_arguments=[
            "--IPKernelApp.log_level=ERROR", "--HistoryManager.enabled=False"])
        pgid = getattr(self.km.provisioner, "pgid", None)
        if pgid:
            _LIVE_PGIDS.add(pgid)
        self.kc = self.km.client()
        self.kc.start_channels()
        await self.kc.wait_for_ready(timeout=STARTUP_TIMEOUT)
        self.kc.allow_stdin = False
        self.cwd = cwd
        self.starts += 1

    async def _reset(self, cwd: Path, budget: float) -> None:
        # %reset ends with full garbage collections that walk every object of every imported module
        # (~0.16 s a learner, 40% of the kernel's work). Freezing what survives the reset moves the
        # course's modules out of the collector's sight, so the next resets only scan new objects.
        code = ("get_ipython().run_line_magic('reset', '-f')\nimport gc as _g, os as _o\n_g.freeze()\n"
                f"_o.chdir({str(cwd)!r})\ndel _g, _o\n")
        reply = await self.kc.execute_interactive(code, store_history=False, timeout=max(budget, 1.0),
                                                  output_hook=lambda _msg: None)
        content = reply["content"]
        if content.get("status") != "ok":
            raise RuntimeError(f"kernel reset failed: {content.get('ename')}: {content.get('evalue')}")
        self.cwd = cwd

    async def shutdown(self) -> None:
        km, kc = self.km, self.kc
        self.km = self.kc = None
        if kc is not None:
            with contextlib.suppress(Exception):
                kc.stop_channels()
        if km is not None:
            pgid = getattr(km.provisioner, "pgid", None)
            with contextlib.suppress(Exception):
                await bounded(km.shutdown_kernel(now=True), 10)
            if pgid:  # the kernel runs in its own session; make sure nothing it spawned survives
                with contextlib.suppress(OSError):
                    os.killpg(pgid, signal.SIGKILL)
                _LIVE_PGIDS.discard(pgid)

    async def execute(self, job: Job) -> Outcome:
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

        started = time.monotonic()
        current = {"index": -1}
        phase = "start"
        reused = False
        keep = False
        error: str | None = None
        try:
            can_reuse = self.reuse and job.trusted and self.km is not None and await self.km.is_alive()
            if can_reuse:
                await bounded(self._reset(job.cwd, STARTUP_TIMEOUT), STARTUP_TIMEOUT)
                reused = True
            else:
                await bounded(self._start(job.cwd, job.env), STARTUP_TIMEOUT)
            # The learner's budget starts now: kernel start-up is the grader's cost, with its own limit.
            phase = "run"
            deadline = time.monotonic() + job.timeout
            client = NotebookClient(
                job.nb, km=self.km, kernel_name="python3", allow_errors=False, record_timing=False,
                timeout_func=lambda _cell: max(1, math.ceil(deadline - time.monotonic())),
                on_cell_execute=lambda cell, cell_index: current.update(index=cell_index),
                iopub_timeout=10, shutdown_kernel="immediate")
            client.kc = self.kc
            await bounded(client.async_execute(), deadline - time.monotonic() + GRACE)
            keep = True
        except CellTimeoutError:
            error = f"timed out after {job.timeout:g} s while running {self._cell_name(job, current['index'])}"
        except TimeoutError:
            if phase == "start":
                error = (f"the kernel did not start (or reset) within {STARTUP_TIMEOUT:g} s; "
                         "is the machine overloaded?")
            else:
                error = f"timed out after {job.timeout:g} s while running {self._cell_name(job, current['index'])}"
        except DeadKernelError:
            error = (f"the kernel died while running {self._cell_name(job, current['index'])} "
                     "(out of memory, or the code exited the process)")
        except CellExecutionError as err:
            keep = True
            error = f"{self._cell_name(job, current['index'])} failed: {err.ename}: {_first_line(err.evalue)}"
        except RuntimeError as err:
            error = f"the kernel could not be started or reset ({_first_line(str(err))})"
        finally:
            if not (keep and self.reuse and job.trusted):
                await self.shutdown()
        return Outcome(job.nb, error, time.monotonic() - started, reused)

    @staticmethod
    def _cell_name(job: Job, index: int) -> str:
        if index < 0:
            return "the notebook"
        if job.injected_at is not None and index == job.injected_at:
            return "the injected parameters cell"
        shown = index - 1 if job.injected_at is not None and index > job.injected_at else index
        source = job.nb.cells[index].get("source", "") if index < len(job.nb.cells) else ""
        return f"cell {shown + 1} (`{_first_line(source, 60)}`)"
