"""Snapshot files: the plain output of ``kubectl get <kinds> -A -o yaml`` (a ``kind: List``),
several YAML documents, or what ``python -m graders snapshot`` writes, which is such a List plus
an ``x-graders`` block carrying whether Istio was installed and recorded probe results:

    apiVersion: v1
    kind: List
    items: [...]
    x-graders:
      version: 1
      context: kind-istio-lab
      takenAt: "2026-11-30T10:00:00Z"
      istioInstalled: true
      secretsListed: true          # Secret names (metadata only) were listed where istiod looks
      secretsNotListed: "..."      # when false: why (e.g. RBAC refused `list secrets`); TLS checks say
                                   # "cannot verify" then
      probes:
      - {gateway: istio-system/istio-ingressgateway, port: 80, host: localhost, path: /productpage,
         method: GET, status: 200, headers: {...}, bodyExcerpt: "...", error: null, at: "..."}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graders.errors import InputError
from graders.objects import RawObject
from graders.state import ProbeRecord
from graders.yamlio import load_documents

SNAPSHOT_KEY = "x-graders"


@dataclass(frozen=True)
class Snapshot:
    objects: list[RawObject]
    istio_installed: bool | None
    probes: tuple[ProbeRecord, ...]
    secrets_listed: bool = False  # x-graders.secretsListed: the snapshot lists Secret names where istiod looks


def _probe(p: Mapping[str, Any], where: str) -> ProbeRecord:
    try:
        headers = p.get("headers") or {}
        return ProbeRecord(
            gateway=str(p["gateway"]), port=int(p["port"]), host=str(p.get("host", "localhost")),
            path=str(p.get("path", "/")), method=str(p.get("method", "GET")),
            status=int(p["status"]) if p.get("status") is not None else None,
            headers={str(k).lower(): str(v) for k, v in headers.items()},
            body_excerpt=str(p.get("bodyExcerpt", "")), error=p.get("error"), at=str(p.get("at", "")))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InputError(f"{where}: a recorded probe is malformed ({err}); re-create the snapshot with "
                         "`python -m graders snapshot`") from None


def read_snapshot(path: str) -> Snapshot:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: snapshot file not found; create one with `python -m graders snapshot -o {path}` "
                         "or `kubectl get deploy,pod,svc,gateway,virtualservice -A -o yaml > snapshot.yaml`")
    docs = load_documents(p)
    if not docs:
        raise InputError(f"{path}: the snapshot is empty; it should hold the output of kubectl get ... -o yaml")
    istio_installed = None
    secrets_listed = False
    probes: list[ProbeRecord] = []
    objects: list[RawObject] = []
    for doc in docs:
        obj = doc.obj
        if isinstance(obj, Mapping) and isinstance(obj.get(SNAPSHOT_KEY), Mapping):
            meta = obj[SNAPSHOT_KEY]
            if "istioInstalled" in meta:
                istio_installed = bool(meta["istioInstalled"])
            secrets_listed = secrets_listed or meta.get("secretsListed") is True
            for i, pr in enumerate(meta.get("probes") or []):
                probes.append(_probe(pr, f"{doc.origin} {SNAPSHOT_KEY}.probes[{i}]"))
            obj = {k: v for k, v in obj.items() if k != SNAPSHOT_KEY}
        objects.append(RawObject(obj, doc.origin, doc.seq))
    return Snapshot(objects, istio_installed, tuple(probes), secrets_listed)


def snapshot_document(objects: list[dict], *, context: str, taken_at: str, istio_installed: bool,
                      probes: list[dict] | None = None, secrets_listed: bool = False,
                      secrets_not_listed: str = "") -> dict:
    """The document ``python -m graders snapshot`` writes (see the module docstring)."""
    meta: dict[str, Any] = {"version": 1, "context": context, "takenAt": taken_at, "istioInstalled": istio_installed,
                            "secretsListed": secrets_listed}
    if not secrets_listed:
        meta["secretsNotListed"] = secrets_not_listed or "not listed"
    return {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": objects,
            SNAPSHOT_KEY: {**meta, "probes": probes or []}}
