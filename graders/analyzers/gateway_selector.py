"""Which pods each Gateway programs: none at all, or several gateway deployments at once.

The match is istiod's: the selector is a subset of the pod's labels, in every namespace
(PILOT_SCOPE_GATEWAY_TO_NAMESPACE is off by default), and a Gateway without a selector programs
every gateway proxy. istioctl's IST0101 for a selector that matches no pod
(pkg/config/analysis/analyzers/gateway/gateway.go:71-75, 108-118) and Kiali's KIA0302 (business/checkers/
gateways/selector_checker.go, labels.SelectorFromSet(...).Matches) match the
same way, by label subset, not by selector equality. Several deployments under one selector is
this course's own finding (GW-SHARED-WORKLOAD): neither tool reports it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from graders.analyzers import Analyzer
from graders.catalogue import Finding, finding
from graders.mesh import gateway_pods, workload_ref, workloads
from graders.state import State


def fmt_labels(labels: Mapping[str, str] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or "(any)"


def available_gateways(state: State) -> str:
    found = []
    for name, pods in sorted(workloads(p for p in state.pods if p.is_gateway).items()):
        interesting = {k: v for k, v in pods[0].labels.items() if k in ("istio", "app")}
        found.append(f"{fmt_labels(interesting)} ({name})")
    return "; ".join(found) if found else "there are no gateway pods in the cluster at all"


def run(state: State) -> Iterator[Finding]:
    for gw in state.gateways:
        pods = gateway_pods(state, gw)
        if not pods:
            yield finding("GW-SELECTOR-NO-WORKLOAD", [gw.meta.ref], origin=gw.meta.origin, gateway=gw.meta.key,
                          selector=fmt_labels(gw.selector), available=available_gateways(state))
            continue
        groups = workloads(pods)
        if len(groups) > 1:
            yield finding("GW-SHARED-WORKLOAD", [gw.meta.ref, *(workload_ref(groups[w][0]) for w in sorted(groups))],
                          origin=gw.meta.origin, gateway=gw.meta.key, selector=fmt_labels(gw.selector),
                          count=len(groups), workloads=", ".join(sorted(groups)))


ANALYZER = Analyzer("gateway-selector", ("Gateway", "Pod", "Deployment"),
                    ("GW-SELECTOR-NO-WORKLOAD", "GW-SHARED-WORKLOAD"), run)
