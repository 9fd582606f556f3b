"""Worker processes for batch grading: one process per worker, each driving its own kernel.

Why processes rather than one event loop for every kernel: the client side of a notebook run
(nbclient receiving, decoding and validating every kernel message) is about a third of the CPU of
grading a learner. In one process that work is serialised by the GIL, so kernels queued behind it
and 2 workers graded only ~1.3x as fast as one. With a client per process, workers scale with cores.

The parent hands out one learner at a time, so a worker that drew a hanging notebook does not hold
a queue of others back, and hears of each result once the worker has stored it. Ctrl-C or SIGTERM
in the parent reaches every worker, which cancels its learner (it stays pending) and shuts its kernel
down; a worker whose parent vanished (SIGKILL) does the same. A worker that dies mid-learner costs
that learner an error row and is replaced.

Messages, parent -> worker: the next item, or ``None`` to stop. Worker -> parent: ``("ready", None)``
once, ``("result", r)`` per item (which also asks for the next), ``("stopped", kernel_starts)``
last, or ``("failed", text)`` when the worker's own code broke.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from graders.batch.execute import KernelSlot, kill_leftover_kernels
from graders.errors import GraderError

T = TypeVar("T")
R = TypeVar("R")
STOP_GRACE = 30.0  # seconds a worker gets to cancel its learner and shut its kernel down
ORPHAN_CHECK = 0.5  # how often a worker looks whether its parent still exists
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class WorkerFailed(GraderError):
    """A worker could not start or its own code raised (a bug): reported once, as one line, instead
    of as an error row for every learner still to come. Exit code 2, like any unusable setup."""

    def __init__(self, why: str):
        super().__init__(f"grading stopped: {why}; the results so far are kept, re-run the command to finish")


@dataclass
class _Worker:
    proc: Any
    conn: Connection
    current: Any = None
    started: bool = False  # it asked for work at least once
    done: bool = False  # it said it stopped (or failed) and is exiting


def _context() -> Any:
    # fork starts a worker instantly and is safe while this process runs no other thread; otherwise
    # (say, grading called from a notebook) spawn, which re-imports the package in the worker.
    if hasattr(os, "fork") and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def serve(items: Iterable[T], workers: int, target: Callable[..., None], args: tuple[Any, ...],
          on_result: Callable[[R], None], on_lost: Callable[[T, str], None]) -> int:
    """Run ``target(*args, conn)`` in ``workers`` processes and feed them ``items``. ``on_result`` gets
    each result, ``on_lost(item, why)`` an item whose worker died. KeyboardInterrupt propagates
    after every worker has stopped. Returns the kernels started, summed over workers."""
    queue: deque[T] = deque(items)
    ctx = _context()
    live: dict[Connection, _Worker] = {}
    starts = 0

    def start() -> None:
        parent_end, child_end = ctx.Pipe()
        proc = ctx.Process(target=target, args=(*args, child_end), name="graders-grade-worker")
        # A Ctrl-C in the instant between fork and the worker's own handler would print a traceback
        # from multiprocessing: the worker starts with both signals blocked and unblocks them itself.
        with _signals_blocked():
            proc.start()
        child_end.close()
        live[parent_end] = _Worker(proc, parent_end)

    def pump(stopping: bool) -> None:
        nonlocal starts
        for conn in wait(list(live), timeout=1.0):
            w = live[conn]
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):  # the worker exited
                del live[conn]
                conn.close()
                w.proc.join(5)
                if stopping:
                    continue
                why = _exit_reason(w.proc.exitcode)
                if w.current is not None:
                    on_lost(w.current, f"{why} while grading this learner")
                if queue:
                    if not w.started:  # it would fail the same way again
                        raise WorkerFailed(f"{why} before it could grade anything") from None
                    start()
                continue
            if kind in ("failed", "stopped"):
                w.done = True
                if kind == "failed":
                    raise WorkerFailed(f"a grading worker failed: {payload}")
                starts += payload
                continue
            w.started = True
            if kind == "result":
                w.current = None
                on_result(payload)
            w.current = queue.popleft() if queue and not stopping else None
            try:
                conn.send(w.current)
            except OSError:  # it died since its last word: the item goes back, its exit shows next round
                if w.current is not None:
                    queue.appendleft(w.current)
                w.current = None

    try:
        for _ in range(min(max(1, workers), len(queue))):
            start()
        while live:
            pump(stopping=False)
    except BaseException:
        # Interrupted (or a worker failed): every worker cancels what it does; results it finished
        # meanwhile still arrive and count. A second Ctrl-C must not cut this short.
        old = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
        try:
            for w in live.values():
                if not w.done:
                    with contextlib.suppress(OSError):
                        os.kill(w.proc.pid, signal.SIGINT)
            deadline = time.monotonic() + STOP_GRACE
            while live and time.monotonic() < deadline:
                with contextlib.suppress(WorkerFailed):
                    pump(stopping=True)
            for w in live.values():
                w.proc.kill()
                w.proc.join(5)
                w.conn.close()
        finally:
            if old is not None:
                signal.signal(signal.SIGINT, old)
        raise
    return starts


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"the grading worker process was killed by {name}{hint}"
    return f"the grading worker process exited (code {code})"


# --- the worker side ------------------------------------------------------------------------------
def _interrupt_once(signum: int, frame: Any) -> None:
    """Ctrl-C reaches a worker twice (from the terminal and from the parent): act on the first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def work(conn: Connection, handle: Callable[[T, KernelSlot], Awaitable[R]], reuse: bool) -> None:
    """Body of a worker process: ask for an item, ``handle`` it with this worker's kernel, send the
    result, until told to stop or orphaned.

    The event loop runs off the main thread on purpose: nbclient installs its own SIGINT handler on
    the main thread, which would swallow Ctrl-C; here the main thread keeps it and cancels the loop.
    """
    signal.signal(signal.SIGINT, _interrupt_once)
    signal.signal(signal.SIGTERM, _interrupt_once)
    parent = os.getppid()
    state: dict[str, Any] = {"starts": 0}

    async def receive() -> Any:
        if not conn.poll():
            loop = asyncio.get_running_loop()
            arrived = loop.create_future()
            loop.add_reader(conn.fileno(), lambda: arrived.done() or arrived.set_result(None))
            try:
                await arrived
            finally:
                loop.remove_reader(conn.fileno())
        try:
            return conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return None

    async def serve_items() -> None:
        slot = KernelSlot(reuse)
        try:
            message: tuple[str, Any] = ("ready", None)
            while True:
                conn.send(message)
                item = await receive()
                if item is None:
                    break
                message = ("result", await handle(item, slot))
        finally:
            await asyncio.shield(slot.shutdown())
            state["starts"] = slot.starts

    def thread_main() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        state["loop"] = loop
        state["task"] = loop.create_task(serve_items())
        try:
            loop.run_until_complete(state["task"])
        except asyncio.CancelledError:
            pass
        except BaseException as err:
            state["error"] = f"{type(err).__name__}: {err}"
        finally:  # collect nbclient's helper tasks so nothing is reported as "never retrieved"
            leftovers = asyncio.all_tasks(loop)
            for task in leftovers:
                task.cancel()
            if leftovers:
                loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            # Whatever still runs in the loop's thread pool is finished before the worker exits.
            loop.run_until_complete(loop.shutdown_default_executor())
            asyncio.set_event_loop(None)
            loop.close()

    def cancel() -> None:
        loop, task = state.get("loop"), state.get("task")
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)

    thread = threading.Thread(target=thread_main, name="grade-kernel", daemon=True)
    try:
        if hasattr(signal, "pthread_sigmask"):  # blocked by the parent around the start
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        thread.start()
        while thread.is_alive():
            thread.join(ORPHAN_CHECK)
            if os.getppid() != parent:  # the parent was killed: stop instead of grading for nobody
                cancel()
                thread.join(STOP_GRACE)
                break
    except KeyboardInterrupt:
        cancel()
        if thread.ident is not None:
            thread.join(STOP_GRACE)
    finally:
        # Nothing is left to interrupt: a late SIGINT must not raise inside multiprocessing's exit path
        # (with fork, an exception there would unwind into the copy of the parent's stack).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        kill_leftover_kernels()
        with contextlib.suppress(OSError, ValueError):
            conn.send(("failed", state["error"]) if "error" in state else ("stopped", state["starts"]))
        conn.close()
