"""One overall deadline for everything a command asks of a cluster.

Why not just socket timeouts: they bound each socket operation, not a request. An API server that
trickles its answer one byte every 2 s never trips a 5 s read timeout, and a kubeconfig ``exec``
credential plugin is a process, not a socket. So a command opens one ``Deadline`` (``--deadline
SECONDS``) and everything under it -- the exec plugin, every API request, every port-forward and
gateway probe -- shares it:

* each request's socket timeouts are capped at what is left (``timeouts``);
* a watchdog thread shuts down the sockets in use when the time is up (``watch``), which wakes a
  read blocked on a trickling or silent peer at once, in any thread;
* the error then says which step (``doing``) took too long, in one line.

The deadline in force is found through a context variable, so the sources and probes pick it up
without every caller passing it along; with none in force, ``within`` opens a default one.
"""

from __future__ import annotations

import contextlib
import contextvars
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from graders.errors import ClusterError

DEFAULT_READ_DEADLINE = 20.0  # analyze, trace, check, snapshot: seconds for all cluster reads of one command
DEFAULT_WRITE_DEADLINE = 30.0  # lab setup/solve/reset: seconds for any one API step (rollout waits have --timeout)

_CURRENT: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("graders_deadline", default=None)


class DeadlineExceeded(ClusterError):
    """The command's deadline passed; the message names the step that was still running."""


def seconds_arg(text: str) -> float:
    """argparse type for ``--deadline``/``--timeout``: a finite, positive number of seconds."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive, finite number of seconds")
    return value


class Deadline:
    """A point in time after which talking to the cluster stops, with a watchdog that enforces it."""

    def __init__(self, seconds: float, flag: str = "--deadline"):
        self.seconds, self.flag = float(seconds), flag
        self.end = time.monotonic() + self.seconds
        self.step = "talking to the cluster"
        self.expired = False
        self._watched: set[Any] = set()
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._token: contextvars.Token | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> Deadline:
        self._token = _CURRENT.set(self)
        self._timer = threading.Timer(max(0.0, self.remaining()), self._fire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._watched.clear()
        if self._token is not None:
            _CURRENT.reset(self._token)
            self._token = None

    def _fire(self) -> None:
        with self._lock:
            self.expired = True
            watched = list(self._watched)
        for obj in watched:
            _shut(obj)

    # -- use ---------------------------------------------------------------------------------------
    def remaining(self) -> float:
        return self.end - time.monotonic()

    def passed(self) -> bool:
        """Expired, or so nearly that a socket timeout capped at what was left has just fired."""
        return self.expired or self.remaining() <= 0.1

    @contextlib.contextmanager
    def doing(self, step: str) -> Iterator[None]:
        """Name what runs inside, for the message if the deadline passes meanwhile."""
        previous, self.step = self.step, step
        try:
            yield
        finally:
            self.step = previous

    def check(self) -> None:
        if self.passed():
            raise self.error()

    def error(self, step: str | None = None) -> DeadlineExceeded:
        return DeadlineExceeded(f"gave up after {self.seconds:g} s ({self.flag} {self.seconds:g}): "
                                f"{step or self.step} took too long (the cluster or its credential plugin is "
                                f"overloaded or not answering); allow more time with {self.flag} SECONDS")

    def timeouts(self, per_request: float) -> tuple[float, float]:
        """(connect, read) socket timeouts for one request: ``per_request`` capped at what is left."""
        self.check()
        left = self.remaining()
        read = max(0.05, min(per_request, left))
        return min(read, max(1.0, per_request / 2)), read

    def watch(self, obj: Any) -> None:
        """Shut ``obj`` (a socket, or a connection with ``.sock``) down when the deadline passes."""
        with self._lock:
            if self.expired:
                _shut(obj)
            self._watched.add(obj)

    def unwatch(self, obj: Any) -> None:
        with self._lock:
            self._watched.discard(obj)


def add_argument(p: Any, default: float = DEFAULT_READ_DEADLINE) -> None:
    """``--deadline SECONDS`` for a command that reads a cluster."""
    p.add_argument("--deadline", type=seconds_arg, default=default, metavar="SECONDS",
                   help=f"give up talking to the cluster after this many seconds in all (credential plugin, every "
                        f"request, port-forward and probe; default {default:g}); the error names the slow step")


def cluster_scope(seconds: float, live: bool) -> contextlib.AbstractContextManager:
    """A command's deadline when it talks to a cluster (``live``), else nothing. The kubernetes client
    is imported first: loading code is not talking to the cluster, and takes a second on a busy machine."""
    if not live:
        return contextlib.nullcontext()
    import kubernetes.client
    import kubernetes.config
    import kubernetes.stream.ws_client  # noqa: F401

    return Deadline(seconds)


def current() -> Deadline | None:
    return _CURRENT.get()


@contextlib.contextmanager
def within(seconds: float | None = None, flag: str = "--deadline") -> Iterator[Deadline]:
    """The deadline in force, or a new one of ``seconds`` (default DEFAULT_READ_DEADLINE) when none is.
    A nested call never extends the outer deadline."""
    outer = current()
    if outer is not None and (seconds is None or outer.remaining() <= seconds):
        yield outer
        return
    with Deadline(seconds if seconds is not None else DEFAULT_READ_DEADLINE, flag) as dl:
        if outer is not None:  # shorter than the outer one: keep the outer's name for what is being bounded
            dl.flag = outer.flag
        yield dl


def _shut(obj: Any) -> None:
    sock = obj if isinstance(obj, socket.socket) else getattr(obj, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            # The plain socket's shutdown, also for TLS sockets: it wakes a blocked read without
            # touching the TLS object another thread is using.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


# -- urllib3 connections that the watchdog can interrupt ------------------------------------------------
def _tracked(base: type) -> type:
    def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        dl = current()
        if dl is not None:
            dl.watch(self)
        return base.request(self, *args, **kwargs)

    # No unwatch after the response: the kubernetes client reads the body later (preload_content=False),
    # so the connection stays watched until the deadline ends; shutting an idle pooled one then is harmless.
    return type(f"Deadline{base.__name__}", (base,), {"request": request})


def install(api_client: Any) -> None:
    """Make every connection of a kubernetes ``ApiClient`` interruptible by the deadline in force.

    The pool classes the client's manager already uses (plain, proxy or SOCKS) are kept; only their
    connection class gains the watch."""
    manager = api_client.rest_client.pool_manager
    manager.clear()
    manager.pool_classes_by_scheme = {
        scheme: type(f"Deadline{pool.__name__}", (pool,), {"ConnectionCls": _tracked(pool.ConnectionCls)})
        for scheme, pool in manager.pool_classes_by_scheme.items()}
