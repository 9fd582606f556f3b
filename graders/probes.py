"""Real HTTP requests through an ingress gateway, for live-mode lab checks and recorded snapshots.

The static trace predicts what a request would get; a probe asks the running gateway. Two ways in:

* a URL on this machine: the course's kind cluster maps node port 30080 (the gateway Service's
  port 80) to host port 8080, so ``"http://127.0.0.1:8080"`` reaches the gateway like a browser;
* ``PortForward(context, kubeconfig)``: a tunnel through the API server to a Ready gateway pod, on
  the targetPort behind the Service port, which works on any cluster (it needs ``pods/portforward``,
  see deploy/rbac/grader-readonly.yaml) and, like ``kubectl port-forward svc/...``, skips kube-proxy.

Everything runs under the command's deadline (graders.deadline): sockets are cut when it passes,
retries stop when no time is left, and the error names the step. What the grader itself cannot do
(a port-forward the API server refuses or that breaks) raises ``GraderSideError``: the grading fails
with the reason, the learner loses no points for it.

``classify`` tells who answered. ``server: istio-envoy`` is on every response that passed the
gateway, so it proves nothing; ``x-envoy-upstream-service-time`` is only on responses that came
from an upstream. A gateway's own replies lack it and have an empty body (404 NR route_not_found,
503 NC cluster_not_found) or the 19-byte ``no healthy upstream`` (503 UH).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from graders import deadline
from graders.errors import GraderSideError, InputError
from graders.state import ProbeRecord

DEFAULT_GATEWAY = "istio-system/istio-ingressgateway"
KIND_HTTP_URL = "http://127.0.0.1:8080"  # kind-config: host 8080 -> node port 30080 -> gateway port 80
# What `snapshot --probe` records: the paths the labs ask about, on the gateway's HTTP port.
DEFAULT_PROBES = (("/", 80), ("/productpage", 80))
BODY_LIMIT = 4096
EXCERPT_CHARS = 400
UPSTREAM_HEADER = "x-envoy-upstream-service-time"
# Outcomes worth asking again: the gateway or its pods may still be starting, or istiod may not
# have pushed the new configuration yet. A timeout has already waited, so it is not retried.
RETRY_ON = frozenset({"connection-refused", "connection-reset", "gateway-404-nr", "gateway-503-nc",
                      "gateway-503-uh", "gateway-503-uf", "no-ready-pod"})


@dataclass(frozen=True)
class PortForward:
    """Reach the gateway through the Kubernetes API (a port-forward to one of its Ready pods)."""

    context: str | None = None
    kubeconfig: str | None = None
    api_timeout: float = 5.0


Target = str | PortForward


class _Failed(Exception):
    """One attempt ended without an HTTP response; ``str`` starts with a classify() keyword."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _exchange(sock: Any, host: str, path: str, method: str, headers: Mapping[str, str] | None,
              timeout: float) -> tuple[int, dict[str, str], str]:
    """One HTTP/1.1 request on a connected socket; returns (status, lower-cased headers, body excerpt)."""
    conn = http.client.HTTPConnection(host, timeout=timeout)
    conn.sock = sock
    dl = deadline.current()
    if dl is not None:
        dl.watch(sock)  # a gateway that trickles its answer is cut off when the deadline passes
    try:
        conn.request(method, path, headers={"Host": host, "User-Agent": "istio-gateway-course-probe/1",
                                            "Accept": "*/*", "Connection": "close", **(headers or {})})
        resp = conn.getresponse()
        body = resp.read(BODY_LIMIT) if method != "HEAD" else b""
        hdrs = {k.lower(): v for k, v in list(resp.getheaders())[:64]}
        return resp.status, hdrs, body.decode("utf-8", "replace")[:EXCERPT_CHARS]
    except TimeoutError:
        raise _Failed(f"timeout: no response within {timeout:g} s") from None
    except ConnectionRefusedError:
        raise _Failed("connection refused") from None
    except (http.client.HTTPException, ConnectionResetError, BrokenPipeError, OSError) as err:
        if dl is not None and dl.passed():
            raise dl.error() from None
        raise _Failed(f"connection reset: the connection closed without an HTTP response ({err.__class__.__name__})"
                      ) from None
    finally:
        if dl is not None:
            dl.unwatch(sock)
        conn.close()


def check_url(base: str) -> tuple[str, int]:
    """(host, port) of a probe URL, or an InputError: probes speak plain HTTP to a host port."""
    parts = urlsplit(base)
    try:
        port = parts.port or 80
    except ValueError:
        port = 0
    if parts.scheme != "http" or not parts.hostname or not port:
        raise InputError(f"probe URL {base!r} is not an http://HOST:PORT URL; for the course's kind cluster use "
                         f"{KIND_HTTP_URL}")
    return parts.hostname, port


def _via_url(base: str, host: str, path: str, method: str, headers: Mapping[str, str] | None,
             timeout: float) -> tuple[int, dict[str, str], str]:
    addr = check_url(base)
    dl = deadline.current()
    try:
        sock = socket.create_connection(addr, timeout=min(timeout, dl.remaining()) if dl else timeout)
    except ConnectionRefusedError:
        raise _Failed(f"connection refused: nothing accepts connections on {addr[0]}:{addr[1]}") from None
    except TimeoutError:
        if dl is not None and dl.passed():
            raise dl.error() from None
        raise _Failed(f"timeout: connecting to {addr[0]}:{addr[1]} took over {timeout:g} s") from None
    except OSError as err:
        raise _Failed(f"error: {err}") from None
    return _exchange(sock, host, path, method, headers, timeout)


def _service_target_port(svc: Mapping, port: int, gateway: str) -> int | str:
    for p in (svc.get("spec") or {}).get("ports") or []:
        if isinstance(p, Mapping) and p.get("port") == port:
            return p.get("targetPort", port)
    raise _Failed(f"connection refused: Service {gateway} has no port {port}, so nothing forwards it")


def _ready_pod(pods: list[Mapping], target: int | str, gateway: str) -> tuple[str, int]:
    """The first Ready pod (by name) and the numeric container port behind ``target``."""
    ready = [p for p in pods if any(c.get("type") == "Ready" and c.get("status") == "True"
                                    for c in (p.get("status") or {}).get("conditions") or [])]
    if not ready:
        raise _Failed(f"no-ready-pod: no Ready pod behind Service {gateway}")
    pod = sorted(ready, key=lambda p: p["metadata"]["name"])[0]
    if isinstance(target, int):
        return pod["metadata"]["name"], target
    for c in (pod.get("spec") or {}).get("containers") or []:
        for cp in c.get("ports") or []:
            if cp.get("name") == target and isinstance(cp.get("containerPort"), int):
                return pod["metadata"]["name"], cp["containerPort"]
    raise _Failed(f"connection refused: no container port named {target!r} in pod {pod['metadata']['name']}")


def _via_port_forward(pf: PortForward, gateway: str, port: int, host: str, path: str, method: str,
                      headers: Mapping[str, str] | None, timeout: float,
                      talk: Callable[[Any], Any] | None = None) -> Any:
    """Open a port-forward to a Ready pod behind the gateway Service ``port`` and run one exchange on it:
    a plain HTTP request, or ``talk(sock)`` (h12: graders.tlsprobe's TLS handshake)."""
    from urllib.parse import quote

    from graders.sources.live import Missing, Reader, new_api_client

    namespace, _, name = gateway.partition("/")
    api, ctx, server = new_api_client(pf.context, pf.kubeconfig, timeout=pf.api_timeout)
    try:
        reader = Reader(api, ctx, server, pf.api_timeout)
        try:
            svc = reader.get_json(f"/api/v1/namespaces/{namespace}/services/{name}", f"Service {gateway}",
                                  missing_ok=True)
        except Missing:
            raise _Failed(f"connection refused: there is no Service {gateway}") from None
        target = _service_target_port(svc, port, gateway)
        selector = (svc.get("spec") or {}).get("selector") or {}
        if not selector:
            raise _Failed(f"no-ready-pod: Service {gateway} has no selector, so no pod behind it")
        label_selector = quote(",".join(f"{k}={v}" for k, v in sorted(selector.items())))
        pods = reader.get_json(f"/api/v1/namespaces/{namespace}/pods?labelSelector={label_selector}",
                               f"pods of Service {gateway}").get("items") or []
        pod, pod_port = _ready_pod(pods, target, gateway)
        # What kubernetes.stream.portforward does, minus importing the whole typed CoreV1Api (seconds).
        _method, url, auth_headers, _body, _post = api.param_serialize(
            "GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/portforward", query_params=[("ports", str(pod_port))],
            auth_settings=["BearerToken"])
        forward = _open_forward(api.configuration, url, auth_headers, f"{namespace}/{pod}", pod_port, pf.api_timeout)
        sock = forward.socket(pod_port)
        sock.settimeout(timeout)
        try:
            return talk(sock) if talk else _exchange(sock, host, path, method, headers, timeout)
        except _Failed as err:
            remote = forward.error(pod_port) or ""
            if "refused" in remote:
                raise _Failed(f"connection refused: nothing listens on port {pod_port} of pod {namespace}/{pod} "
                              f"(Service port {port})") from None
            raise err
        finally:
            _close_forward(forward)
    finally:
        api.close()


def _close_forward(forward: Any) -> None:
    """Close our end, give the client's proxy thread a moment to close the WebSocket (it does once every
    port is closed), then make sure its socket is closed: no connection is left for the interpreter."""
    forward.close()
    dl = deadline.current()
    end = time.monotonic() + min(1.0, max(0.0, dl.remaining()) if dl else 1.0)
    while getattr(forward.websocket, "sock", None) is not None and time.monotonic() < end:
        time.sleep(0.01)
    # When the server closed first, the proxy thread returns without closing the WebSocket's socket.
    with contextlib.suppress(Exception):
        forward.websocket.shutdown()


def _open_forward(configuration: Any, url: str, headers: Mapping[str, str], pod: str, port: int,
                  timeout: float) -> Any:
    """The kubernetes client's port-forward (a WebSocket to the API server), bounded by the deadline.

    Its handshake has no timeout of its own, so it runs in a helper thread the deadline can walk
    away from. A refusal (403: the grader lacks ``create pods/portforward``) or a broken handshake
    is the grader's failure, said in one line without the raw HTTP headers the client puts in it.
    """
    import threading

    import websocket
    from kubernetes.stream.ws_client import portforward_call

    dl = deadline.current()
    step = f"opening a port-forward to pod {pod} port {port}"
    result: dict[str, Any] = {}
    lock = threading.Lock()

    def connect() -> None:
        try:
            forward = portforward_call(configuration, "GET", url, headers=headers)
        except Exception as err:  # ApiException, or anything the WebSocket client raises: the grader's failure
            result["error"] = err
            return
        with lock:
            if result.get("abandoned"):  # the deadline passed meanwhile: nobody will use or close it
                forward.close()
            else:
                result["forward"] = forward

    previous = websocket.getdefaulttimeout()
    websocket.setdefaulttimeout(min(timeout, dl.remaining()) if dl else timeout)
    try:
        worker = threading.Thread(target=connect, name="graders-port-forward", daemon=True)
        worker.start()
        worker.join(max(0.05, dl.remaining()) if dl else None)
    finally:
        websocket.setdefaulttimeout(previous)
    with lock:
        if worker.is_alive():
            result["abandoned"] = True
            raise dl.error(step) if dl else GraderSideError(f"{step} did not finish")
    if "forward" in result:
        return result["forward"]
    raise GraderSideError(forward_failure(str(getattr(result["error"], "reason", "") or result["error"]), pod, port))


def forward_failure(reason: str, pod: str, port: int) -> str:
    """One line from the client's port-forward error, which embeds the handshake's raw HTTP headers."""
    import re

    status = re.search(r"Handshake status (\d{3})", reason)
    said = re.search(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)"', reason)
    message = " ".join((said.group(1) if said else "").replace("\\", "").split())[:240]  # un-escape \" in the repr
    head = f"the grader could not open a port-forward to pod {pod} port {port}"
    tail = "; this is a problem of the grading, not of your configuration, and costs no points"
    if status and status.group(1) in ("401", "403"):
        return (f"{head}: the API server refused it (HTTP {status.group(1)}{': ' + message if message else ''})"
                f"{tail}. Grant `create` on pods/portforward in the gateway's namespace (deploy/rbac/"
                "grader-readonly.yaml) or grade with a context that has it")
    if status:
        return f"{head}: the API server answered HTTP {status.group(1)}{': ' + message if message else ''}{tail}"
    first = " ".join(reason.split("-+-+-")[0].split())[:200] or "the connection failed"
    return f"{head}: {first}{tail}"


def probe(target: Target, gateway: str = DEFAULT_GATEWAY, port: int = 80, host: str = "localhost",
          path: str = "/", method: str = "GET", timeout: float = 3.0, retries: int = 3,
          headers: Mapping[str, str] | None = None) -> ProbeRecord:
    """Send one request through the gateway and record what came back (or why nothing did).

    Retries (with a short, growing pause) while the outcome looks transient: pods still becoming
    Ready or configuration not yet pushed. The last attempt is what is recorded.
    """
    with deadline.within():
        return _probe(target, gateway, port, host, path, method, timeout, retries, headers)


def _probe(target: Target, gateway: str, port: int, host: str, path: str, method: str, timeout: float,
           retries: int, headers: Mapping[str, str] | None) -> ProbeRecord:
    record = ProbeRecord(gateway=gateway, port=port, host=host, path=path, method=method)
    pause = 0.25
    for attempt in range(retries + 1):
        at = _now()
        try:
            if isinstance(target, PortForward):
                status, hdrs, body = _via_port_forward(target, gateway, port, host, path, method, headers, timeout)
            else:
                status, hdrs, body = _via_url(target, host, path, method, headers, timeout)
            record = ProbeRecord(gateway=gateway, port=port, host=host, path=path, method=method, status=status,
                                 headers=hdrs, body_excerpt=body, error=None, at=at)
        except _Failed as err:
            record = ProbeRecord(gateway=gateway, port=port, host=host, path=path, method=method, error=str(err),
                                 at=at)
        if attempt == retries or classify(record) not in RETRY_ON:
            break
        dl = deadline.current()
        if dl is not None and dl.remaining() < pause + 0.5:  # no time for another try: report what we have
            break
        time.sleep(pause)
        pause *= 2
    return record


def classify(record: ProbeRecord) -> str:
    """Who answered: ``app``; a gateway-local reply (``gateway-404-nr``, ``gateway-503-nc``,
    ``gateway-503-uh``, ``gateway-503-uf``, ``gateway-<status>`` for redirects and direct responses);
    ``not-gateway`` (no Envoy in the path); or no answer (``connection-refused``, ``connection-reset``,
    ``timeout``, ``no-ready-pod``, ``error``)."""
    if record.error is not None or record.status is None:
        text = (record.error or "").lower()
        for keyword in ("connection refused", "connection reset", "timeout", "no-ready-pod"):
            if text.startswith(keyword):
                return keyword.replace(" ", "-")
        return "error"
    headers = {k.lower(): v for k, v in record.headers.items()}
    if UPSTREAM_HEADER in headers:
        return "app"
    if headers.get("server", "").lower() != "istio-envoy":
        return "not-gateway"
    body = record.body_excerpt.strip()
    if record.status == 404 and not body:
        return "gateway-404-nr"
    if record.status == 503:
        if body == "no healthy upstream":
            return "gateway-503-uh"
        if not body:
            return "gateway-503-nc"
        if body.startswith("upstream connect error"):
            return "gateway-503-uf"
    return f"gateway-{record.status}"


def record_dict(record: ProbeRecord) -> dict:
    """The ``x-graders.probes`` entry of a snapshot (read back by graders.sources.snapshot)."""
    return {"gateway": record.gateway, "port": record.port, "host": record.host, "path": record.path,
            "method": record.method, "status": record.status, "headers": dict(record.headers),
            "bodyExcerpt": record.body_excerpt, "error": record.error, "at": record.at}


def default_probes(target: Target, *, timeout: float = 3.0, retries: int = 1) -> list[ProbeRecord]:
    """The requests `snapshot --probe` records: each default path on the default gateway."""
    return [probe(target, port=port, path=path, timeout=timeout, retries=retries) for path, port in DEFAULT_PROBES]
