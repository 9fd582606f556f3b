"""Raw objects from any source -> one ``State``.

Later objects replace earlier ones with the same kind/namespace/name (the learner's file
overrides the baseline, as ``kubectl apply`` would), keeping the earlier creation time just as
an apply of an existing object does. Deployments with no Pods read stand in for their pods.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from graders.catalogue import Finding
from graders.objects import RawObject, flatten, parse, template_pod
from graders.state import (
    Deployment,
    DestinationRule,
    Gateway,
    IstioOperator,
    Namespace,
    Pod,
    ProbeRecord,
    Service,
    ServiceEntry,
    State,
    VirtualService,
)

_FIELDS = {
    Namespace: "namespaces", Pod: "pods", Deployment: "deployments", Service: "services", Gateway: "gateways",
    VirtualService: "virtual_services", DestinationRule: "destination_rules", ServiceEntry: "service_entries",
    IstioOperator: "istio_operators",
}


def build_state(
    raws: Iterable[RawObject],
    mode: str,
    *,
    description: str = "",
    istio_installed: bool | None = None,
    outbound_traffic_policy: str | None = None,
    probes: Sequence[ProbeRecord] = (),
    extra_findings: Sequence[Finding] = (),
    sources: Sequence[str] = (),
) -> State:
    records: dict[tuple[str, str, str], object] = {}
    findings: list[Finding] = list(extra_findings)
    for raw in raws:
        for item in flatten(raw):
            record, problem = parse(item)
            if problem is not None:
                findings.append(problem)
            if record is None:
                continue
            meta = record.meta  # type: ignore[attr-defined]
            key = (meta.kind, meta.namespace, meta.name)
            previous = records.get(key)
            if previous is not None and meta.synthetic_time:
                record = replace(record, meta=replace(meta, created=previous.meta.created))  # type: ignore
            records[key] = record
    buckets: dict[str, list] = {f: [] for f in _FIELDS.values()}
    for record in records.values():
        buckets[_FIELDS[type(record)]].append(record)
    owned = {(p.meta.namespace, p.owner) for p in buckets["pods"] if p.owner}
    for dep in buckets["deployments"]:
        if (dep.meta.namespace, dep.meta.name) not in owned:
            buckets["pods"].append(template_pod(dep))
    if istio_installed is None:
        istio_installed = bool(buckets["gateways"] or buckets["virtual_services"]) or any(
            d.meta.name == "istiod" for d in buckets["deployments"])
    return State(
        mode=mode, description=description, istio_installed=istio_installed,
        outbound_traffic_policy=outbound_traffic_policy, load_findings=tuple(findings), probes=tuple(probes),
        sources=tuple(sources), **{k: tuple(v) for k, v in buckets.items()},
    )
