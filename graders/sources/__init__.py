"""Where a ``State`` comes from: a live cluster, a snapshot file, or the simulated lab cluster,
each optionally overlaid with the learner's YAML files (a preview of ``kubectl apply``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from graders.errors import InputError
from graders.objects import RawObject
from graders.sources.build import build_state
from graders.sources.simulated import baseline_objects, outbound_policy, render_operators
from graders.sources.snapshot import read_snapshot
from graders.state import State
from graders.yamlio import load_paths


@dataclass(frozen=True)
class Loaded:
    """The raw objects of a target before they become a ``State`` (``graders get`` shows them as they are)."""

    raws: list[RawObject]
    mode: str  # live | snapshot | simulated | manifests
    description: str
    options: dict[str, Any] = field(default_factory=dict)  # the rest of build_state's keyword arguments


def load_objects(
    paths: Sequence[str] = (),
    *,
    snapshot: str | None = None,
    context: str | None = None,
    kubeconfig: str | None = None,
    baseline: bool = True,
    secret_names: bool = False,
) -> Loaded:
    if snapshot and context:
        raise InputError("give either --snapshot or --context, not both")
    overlay = load_paths(list(paths), seq_start=10_000_000) if paths else []
    files = f" + {len(paths)} path(s)" if paths else ""
    if context is not None or kubeconfig is not None:
        from graders.sources.live import read_cluster

        read = read_cluster(context, kubeconfig)
        objects, listed, _why = secret_metadata(read.objects, context, kubeconfig) if secret_names else ([], False, "")
        raws = [RawObject(o, "cluster", i) for i, o in enumerate(read.objects + objects)] + render_operators(overlay)
        return Loaded(raws, "live", f"live cluster (context {read.context}){files}",
                      {"istio_installed": read.istio_installed, "sources": [f"context:{read.context}", *paths],
                       "secrets_listed": listed, "gwapi_crds": read.gwapi_crds})
    if snapshot:
        snap = read_snapshot(snapshot)
        raws = snap.objects + render_operators(overlay)
        return Loaded(raws, "snapshot", f"snapshot {snapshot}{files}",
                      {"istio_installed": snap.istio_installed, "probes": snap.probes, "sources": [snapshot, *paths],
                       "secrets_listed": snap.secrets_listed})
    if baseline:
        raws = render_operators(baseline_objects() + overlay)
        # `cluster up` installs the Gateway API CRDs (graders/versions.py GATEWAY_API_VERSION): served here too.
        return Loaded(raws, "simulated", f"simulated lab cluster{files}",
                      {"outbound_traffic_policy": outbound_policy(raws), "sources": list(paths), "gwapi_crds": True})
    if not paths:
        raise InputError("--no-baseline needs at least one PATH of YAML files to analyze")
    raws = render_operators(overlay)
    return Loaded(raws, "manifests", f"manifests only{files}",
                  {"outbound_traffic_policy": outbound_policy(raws), "sources": list(paths)})


def secret_metadata(objects: list[dict], context: str | None, kubeconfig: str | None) -> tuple[list[dict], bool, str]:
    """Secret metadata (h9-tls, ``--secret-names``; the ``snapshot`` command) in the namespaces TLS
    credentials concern: those of gateway pods (label ``istio``), where istiod looks, and of Gateways,
    where learners often put them. Existence counts as known only if every gateway pod namespace could be
    listed; the third value says why not when it cannot (empty when it can)."""
    from graders.sources.live import read_secret_metadata

    def ns_of(o: dict) -> str:
        md = o.get("metadata") if isinstance(o.get("metadata"), dict) else {}
        return str(md.get("namespace") or "")

    pod_ns = sorted({ns_of(o) for o in objects if o.get("kind") == "Pod"
                     and "istio" in ((o.get("metadata") or {}).get("labels") or {})} - {""})
    gw_ns = sorted({ns_of(o) for o in objects if o.get("kind") == "Gateway"} - {""})
    secrets, listed, refused = read_secret_metadata(context, kubeconfig, [*pod_ns, *gw_ns])
    if not pod_ns:
        return secrets, False, "no gateway pod (label istio) was found, so no namespace where istiod looks"
    why = "; ".join(f"{ns}: {refused.get(ns, 'not listed')}" for ns in pod_ns if ns not in listed)
    return secrets, not why, why


def load_state(
    paths: Sequence[str] = (),
    *,
    snapshot: str | None = None,
    context: str | None = None,
    kubeconfig: str | None = None,
    baseline: bool = True,
    secret_names: bool = False,
) -> State:
    loaded = load_objects(paths, snapshot=snapshot, context=context, kubeconfig=kubeconfig, baseline=baseline,
                          secret_names=secret_names)
    return build_state(loaded.raws, loaded.mode, description=loaded.description, **loaded.options)
