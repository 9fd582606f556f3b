"""Builders for the networking conformance cases: Istio objects as Python dicts, written as one YAML
stream (JSON is YAML), laid over the simulated lab cluster, whose ingress gateway runs in
istio-system behind Service ports 80->8080 and 443->8443.

Istio's unit tests call a gateway port 80 or 7 directly; here a case uses the lab gateway's real
ports (a Gateway on 80 or 8080 lands on listener 8080), which changes no expectation: istiod's
merge and route code is the same on every port.
"""

from __future__ import annotations

import json
from typing import Any

TS = "2026-01-01T00:00:0{}Z"


def stream(*objs: dict[str, Any] | list[dict[str, Any]]) -> str:
    flat: list[dict[str, Any]] = []
    for o in objs:
        flat.extend(o if isinstance(o, list) else [o])
    return "\n---\n".join(json.dumps(o) for o in flat) + "\n"


def meta(name: str, ns: str, created: int | None = None, **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, "namespace": ns, **extra}
    if created is not None:
        m["creationTimestamp"] = TS.format(created)
    return m


def server(port: int, *hosts: str, protocol: str = "HTTP", redirect: bool = False, name: str | None = None,
           tls: dict[str, Any] | None = None) -> dict[str, Any]:
    s: dict[str, Any] = {"port": {"number": port, "name": name or f"{protocol.lower()}-{port}", "protocol": protocol},
                         "hosts": list(hosts)}
    if redirect or tls:
        s["tls"] = {**({"httpsRedirect": True} if redirect else {}), **(tls or {})}
    return s


def gateway(name: str, *servers: dict[str, Any], ns: str = "default", created: int | None = None,
            selector: str = "ingressgateway") -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": meta(name, ns, created),
            "spec": {"selector": {"istio": selector}, "servers": list(servers)}}


def dest(host: str, port: int | None = None, subset: str | None = None, weight: int | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"host": host}
    if port:
        d["port"] = {"number": port}
    if subset:
        d["subset"] = subset
    out: dict[str, Any] = {"destination": d}
    if weight is not None:
        out["weight"] = weight
    return out


def rule(*destinations: dict[str, Any], match: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    r: dict[str, Any] = dict(extra)
    if match is not None:
        r["match"] = match
    if destinations:
        r["route"] = list(destinations)
    return r


def prefix(p: str, **extra: Any) -> dict[str, Any]:
    return {"uri": {"prefix": p}, **extra}


def exact(p: str, **extra: Any) -> dict[str, Any]:
    return {"uri": {"exact": p}, **extra}


def virtual_service(name: str, hosts: list[str], gateways: list[str], http: list[dict[str, Any]] | None = None, *,
                    tcp: list[dict[str, Any]] | None = None, ns: str = "default", created: int | None = None,
                    export_to: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"hosts": hosts, "gateways": gateways}
    if http is not None:
        spec["http"] = http
    if tcp is not None:
        spec["tcp"] = tcp
    if export_to is not None:
        spec["exportTo"] = export_to
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": meta(name, ns, created),
            "spec": spec}


def app(name: str, ns: str = "default", ports: tuple[int, ...] = (80,), export_to: str | None = None,
        replicas: int = 1) -> list[dict[str, Any]]:
    """A Service and the Deployment behind it (its pod template stands for ready pods)."""
    annotations = {"annotations": {"networking.istio.io/exportTo": export_to}} if export_to else {}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, ns, **annotations),
           "spec": {"selector": {"app": name}, "ports": [{"name": f"http-{p}", "port": p} for p in ports]}}
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(name, ns),
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": name, "image": "example/app:1",
                                                          "ports": [{"containerPort": p} for p in ports]}]}}}}
    return [svc, dep]


def service_entry(name: str, hosts: list[str], ns: str = "default", export_to: list[str] | None = None,
                  port: int = 80) -> dict[str, Any]:
    spec: dict[str, Any] = {"hosts": hosts, "ports": [{"number": port, "name": "http", "protocol": "HTTP"}],
                            "resolution": "DNS", "location": "MESH_EXTERNAL"}
    if export_to is not None:
        spec["exportTo"] = export_to
    return {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": meta(name, ns),
            "spec": spec}


def outcome(result: dict[str, Any]) -> tuple[str, int | None, str | None]:
    """(outcome, http status, destination service) of a ``trace -o json`` result."""
    d = result["destination"]
    return result["outcome"], result["http_status"], d["service"] if d else None
