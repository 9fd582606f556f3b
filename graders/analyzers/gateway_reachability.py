"""Gateways whose workload only has ClusterIP Services (the egress gateway) cannot be ingress."""

from __future__ import annotations

from collections.abc import Iterator

from graders.analyzers import Analyzer
from graders.catalogue import Finding, finding
from graders.mesh import MESH, gateway_pods, virtual_services_for, vs_gateway_refs, workload_ref, workloads
from graders.state import State

EGRESS_NOTE = (" This is the egress pattern (a VirtualService binds both `mesh` and this Gateway), where that is "
               "expected: sidecars reach the egress gateway from inside the cluster.")


def run(state: State) -> Iterator[Finding]:
    for gw in state.gateways:
        for workload, pods in sorted(workloads(gateway_pods(state, gw)).items()):
            services = state.services_selecting(pods[0])
            if any(s.external for s in services):
                continue
            egress = any(MESH in vs_gateway_refs(vs) for vs in virtual_services_for(state, gw.meta.key))
            resources = [gw.meta.ref, workload_ref(pods[0]), *(s.meta.ref for s in services)]
            yield finding(
                "GW-NOT-EXTERNALLY-REACHABLE", resources,
                origin=gw.meta.origin, severity="info" if egress else "warning", gateway=gw.meta.key,
                workload=workload, services=", ".join(f"{s.meta.key} ({s.type})" for s in services) or "none",
                egress=EGRESS_NOTE if egress else "")


ANALYZER = Analyzer("gateway-reachability", ("Gateway", "Pod", "Service", "VirtualService"),
                    ("GW-NOT-EXTERNALLY-REACHABLE",), run)
