"""VS-DESTINATION-NOT-EXPORTED: a gateway route to a Service or ServiceEntry the gateway cannot see.

istiod builds a gateway's clusters from its sidecar scope, which holds only the services exported
to the gateway *pod's* namespace (DefaultSidecarScopeForGateway, pilot/pkg/model/sidecar.go:257;
IsServiceVisible, push_context.go:1089). A Service annotated ``networking.istio.io/exportTo: "."``
in ``default`` is therefore invisible to a gateway in ``istio-system``: the route still points at
``outbound|port||host``, a cluster the gateway does not have, and Envoy answers 503 NC.

istioctl's IST0101 checks visibility from the VirtualService's namespace instead
(analyzers/util/service_lookup.go), so it stays silent when the VirtualService and the Service
share a namespace; this analyzer follows istiod and names the gateway's namespace.
"""

from __future__ import annotations

from collections.abc import Iterator

from graders.analyzers import Analyzer
from graders.catalogue import Finding, finding
from graders.mesh import MESH, exported_to, gateway_pods, resolve_host, vs_bucket, vs_gateway_refs, workloads
from graders.state import Destination, Gateway, State, VirtualService


def _hidden(state: State, vs: VirtualService, dest: Destination, proxy_ns: str) -> tuple[str, str, str] | None:
    """(object ref, its exportTo, where to fix it) when the destination is not visible in ``proxy_ns``."""
    fqdn = resolve_host(dest.host, vs.meta.namespace)
    svc = state.service_by_fqdn.get(fqdn)
    if svc is not None:
        if exported_to(svc.export_to, svc.meta.namespace, proxy_ns):
            return None
        return svc.meta.ref, ", ".join(svc.export_to), f"the annotation networking.istio.io/exportTo of {svc.meta.ref}"
    se = state.service_entry_hosts.get(dest.host)
    if se is None or exported_to(se.export_to, se.meta.namespace, proxy_ns):
        return None
    return se.meta.ref, ", ".join(se.export_to), f"spec.exportTo of {se.meta.ref}"


def _destinations(vs: VirtualService) -> Iterator[Destination]:
    for route in vs.http:
        yield from route.destinations
    for rule in vs.tcp:
        yield from rule.destinations


def run(state: State) -> Iterator[Finding]:
    for vs in state.virtual_services:
        for ref in dict.fromkeys(vs_gateway_refs(vs)):
            gw: Gateway | None = state.gateways_by_key.get(ref) if ref != MESH else None
            if gw is None:
                continue
            for workload, _pods in sorted(workloads(gateway_pods(state, gw)).items()):
                proxy_ns = workload.split("/", 1)[0]
                if vs_bucket(vs, proxy_ns) is None:
                    continue  # the VirtualService itself is not visible there (no routes at all)
                seen: set[str] = set()
                for dest in _destinations(vs):
                    hidden = _hidden(state, vs, dest, proxy_ns)
                    if hidden is None or hidden[0] in seen:
                        continue
                    seen.add(hidden[0])
                    target, export, where = hidden
                    port = dest.port or "<port>"
                    yield finding("VS-DESTINATION-NOT-EXPORTED", [vs.meta.ref, target, gw.meta.ref],
                                  origin=vs.meta.origin, vs=vs.meta.key, gateway=gw.meta.key, target=target,
                                  export=export, proxy_ns=proxy_ns, workload=workload, where=where,
                                  cluster=f"outbound|{port}||{resolve_host(dest.host, vs.meta.namespace)}")


ANALYZER = Analyzer("gateway-visibility", ("VirtualService", "Gateway", "Service", "ServiceEntry", "Pod"),
                    ("VS-DESTINATION-NOT-EXPORTED",), run)
