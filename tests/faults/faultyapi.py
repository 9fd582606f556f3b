"""A misbehaving Kubernetes API server: tests/fakeapi.py's fake with faults injected per request.

The real ``kubernetes`` client talks to it over HTTP (or HTTPS, ``tls=True``) on 127.0.0.1. A fault
applies to requests whose path starts with its prefix, for its first ``times`` matches (None: all);
every other request gets the fake's normal answer. Faults:

* ``trickle``: a correct-looking answer, one byte every ``every`` seconds (never trips a read timeout);
* ``silence``: read the request, never answer (held until the client gives up or the server stops);
* ``status``: an HTTP status (429, 503, 403, ...) with a ``Status`` body and optional ``Retry-After``;
* ``truncated``: headers promise more body than is sent, then the connection closes;
* ``invalid``: a 200 whose body is not JSON.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakeapi import FakeApiServer, _Handler, _Server


@dataclass
class Fault:
    prefix: str
    kind: str  # trickle | silence | status | truncated | invalid
    times: int | None = None
    status: int = 0
    retry_after: str | None = None
    every: float = 0.3
    hits: int = 0


class FaultyApiServer(FakeApiServer):
    def __init__(self, *args: Any, tls_cert: tuple[Path, Path] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.faults: list[Fault] = []
        self.tls_cert = tls_cert
        self._stopping = threading.Event()

    def inject(self, prefix: str, kind: str, **kw: Any) -> Fault:
        fault = Fault(prefix, kind, **kw)
        self.faults.append(fault)
        return fault

    def start(self) -> FaultyApiServer:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.fake = self
        if self.tls_cert is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*map(str, self.tls_cert))
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        return self._run(httpd)

    def stop(self) -> None:
        self._stopping.set()
        super().stop()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_cert else 'http'}://127.0.0.1:{self.address[1]}"

    def handle(self, h: Any) -> None:
        path = h.path.split("?")[0]
        fault = next((f for f in self.faults if path.startswith(f.prefix) and (f.times is None or f.hits < f.times)),
                     None)
        if fault is None:
            super().handle(h)
            return
        fault.hits += 1
        length = int(h.headers.get("Content-Length") or 0)
        if length:
            h.rfile.read(length)
        h.close_connection = True
        getattr(self, f"_{fault.kind}")(h, fault)

    # -- the faults -------------------------------------------------------------------------------------
    def _trickle(self, h: Any, fault: Fault) -> None:
        body = json.dumps({"kind": "List", "apiVersion": "v1", "metadata": {}, "items": []}).encode().ljust(400)
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.flush()
        for i in range(len(body)):
            if self._stopping.wait(fault.every):
                return
            try:
                h.wfile.write(body[i:i + 1])
                h.wfile.flush()
            except OSError:
                return  # the client gave up: what the test wants

    def _silence(self, h: Any, fault: Fault) -> None:
        while not self._stopping.wait(0.2):
            try:  # end once the client has hung up
                if h.connection.recv(1, 0x40) == b"":  # MSG_DONTWAIT
                    return
            except BlockingIOError:
                continue
            except OSError:
                return

    def _status(self, h: Any, fault: Fault) -> None:
        reason = {429: "TooManyRequests", 503: "ServiceUnavailable", 403: "Forbidden"}.get(fault.status, "Failure")
        message = {429: "Too many requests, please try again later.", 503: "the server is currently unable to handle "
                   "the request", 403: f'forbidden: User "learner" cannot get path "{h.path.split("?")[0]}"'
                   }.get(fault.status, "failure")
        body = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": message, "reason": reason, "code": fault.status}).encode()
        h.send_response(fault.status)
        h.send_header("Content-Type", "application/json")
        if fault.retry_after is not None:
            h.send_header("Retry-After", fault.retry_after)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _truncated(self, h: Any, fault: Fault) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", "5000")
        h.end_headers()
        h.wfile.write(b'{"kind": "PodList", "items": [')
        h.wfile.flush()

    def _invalid(self, h: Any, fault: Fault) -> None:
        body = b"<html><body>502 Bad Gateway (a proxy in the way)</body></html>"
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 made with the openssl command (no Python crypto package needed)."""
    cert, key = folder / "tls.crt", folder / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def wait_gone(pid: int, seconds: float = 5.0) -> bool:
    """Whether process ``pid`` has ended (or become a zombie) within ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False
