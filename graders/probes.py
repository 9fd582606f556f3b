"""Real HTTP requests through an ingress gateway, for live-mode lab checks and recorded snapshots.

The static trace predicts what a request would get; a probe asks the running gateway. Two ways in:

* a URL on this machine: the course's kind cluster maps node port 30080 (the gateway Service's
  port 80) to host port 8080, so ``"http://127.0.0.1:8080"`` reaches the gateway like a browser;
* ``PortForward(context, kubeconfig)``: a tunnel through the API server to a Ready gateway pod, on
  the targetPort behind the Service port, which works on any cluster (it needs ``pods/portforward``,
  see deploy/rbac/grader-readonly.yaml) and, like ``kubectl port-forward svc/...``, skips kube-proxy.

``classify`` tells who answered. ``server: istio-envoy`` is on every response that passed the
gateway, so it proves nothing; ``x-envoy-upstream-service-time`` is only on responses that came
from an upstream. A gateway's own replies lack it and have an empty body (404 NR route_not_found,
503 NC cluster_not_found) or the 19-byte ``no healthy upstream`` (503 UH).
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from graders.errors import InputError
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
    except (http.client.RemoteDisconnected, http.client.BadStatusLine, ConnectionResetError, BrokenPipeError) as err:
        raise _Failed(f"connection reset: the connection closed without an HTTP response ({err.__class__.__name__})"
                      ) from None
    finally:
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
    try:
        sock = socket.create_connection(addr, timeout=timeout)
    except ConnectionRefusedError:
        raise _Failed(f"connection refused: nothing accepts connections on {addr[0]}:{addr[1]}") from None
    except TimeoutError:
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

    from kubernetes.client.exceptions import ApiException
    from kubernetes.stream.ws_client import portforward_call

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
        try:
            forward = portforward_call(api.configuration, "GET", url, headers=auth_headers)
        except ApiException as err:
            raise _Failed(f"error: port-forward to pod {namespace}/{pod} failed: {err.reason or err.status}"
                          ) from None
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
            forward.close()
    finally:
        api.close()


def probe(target: Target, gateway: str = DEFAULT_GATEWAY, port: int = 80, host: str = "localhost",
          path: str = "/", method: str = "GET", timeout: float = 3.0, retries: int = 3,
          headers: Mapping[str, str] | None = None) -> ProbeRecord:
    """Send one request through the gateway and record what came back (or why nothing did).

    Retries (with a short, growing pause) while the outcome looks transient: pods still becoming
    Ready or configuration not yet pushed. The last attempt is what is recorded.
    """
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
