"""Gateway server ports against the gateway Service and the pod's privileges.

IST0162 accepts a port equal to a Service port or targetPort; so do we, but we also resolve the
port the way istiod does and flag listeners below 1024 on unprivileged pods, which istiod drops
without any status on the Gateway (only a log line in istiod), and listeners on Istio's reserved
proxy ports (15000, 15020, 15021, 15090: already used in every gateway pod; 15001, 15006, 15008:
reserved for traffic capture), which istiod checks only for sidecars (model/context.go:851)."""

from __future__ import annotations

from collections.abc import Iterator

from graders.analyzers import Analyzer
from graders.catalogue import Finding, finding
from graders.mesh import (
    RESERVED_PORTS,
    SIDECAR_PORTS,
    gateway_pods,
    privileged_dropped,
    resolve_listener_port,
    target_port_number,
    workload_ref,
    workloads,
)
from graders.state import State


def run(state: State) -> Iterator[Finding]:
    for gw in state.gateways:
        for workload, pods in sorted(workloads(gateway_pods(state, gw)).items()):
            pod = pods[0]
            services = state.services_selecting(pod)
            service_ports = [(svc, sp) for svc in services for sp in svc.ports]
            for port in dict.fromkeys(s.port for s in gw.servers):
                reachable = any(sp.port == port or target_port_number(sp, pod) == port for _, sp in service_ports)
                resources = [gw.meta.ref, workload_ref(pods[0]), *(s.meta.ref for s in services)]
                listener = resolve_listener_port(state, pod, port).listener
                dropped = privileged_dropped(pod, listener)
                if not reachable:
                    note = (f"istiod would open an Envoy listener on {port} as written, but on this unprivileged pod "
                            "it skips ports below 1024 (GW-PORT-PRIVILEGED); and no Service forwards traffic to "
                            f"{port} anyway." if dropped else
                            f"istiod opens an Envoy listener on {port} as written, but no Service forwards traffic "
                            "to it, so nothing outside the pod can reach it.")
                    yield finding(
                        "GW-PORT-NOT-ON-SERVICE", resources, origin=gw.meta.origin, gateway=gw.meta.key, port=port,
                        listener_note=note,
                        services=", ".join(f"{s.meta.key}: " + ", ".join(p.label() for p in s.ports)
                                           for s in services) or "no Service selects them",
                        ports=", ".join(f"{sp.port}->{sp.target_port}" for _, sp in service_ports) or "none")
                if dropped:
                    yield finding("GW-PORT-PRIVILEGED", resources, origin=gw.meta.origin, gateway=gw.meta.key,
                                  port=port, listener=listener, workload=workload, suggest=8000 + listener)
                reserved = _reserved_effect(listener)
                if reserved:
                    severity, effect = reserved
                    yield finding("GW-PORT-RESERVED", resources, origin=gw.meta.origin, severity=severity,
                                  gateway=gw.meta.key, port=port, listener=listener, workload=workload, effect=effect)


def _reserved_effect(listener: int) -> tuple[str, str] | None:
    """What a Gateway listener on a reserved port meets (mesh.RESERVED_PORTS cites the sources)."""
    port = RESERVED_PORTS.get(listener)
    if port is not None:
        answers = (f"clients reaching port {listener} get its answers ({', '.join(port.paths)} 200, anything else "
                   "404)" if port.paths else "nothing outside the pod can reach it")
        return "error", (f"{port.owner} already uses it in every gateway pod. istiod does not check reserved ports "
                         f"for gateways (only for sidecars) and builds the listener anyway, but {port.collision}; "
                         f"so {answers} and this server's routes never apply.")
    if listener in SIDECAR_PORTS:
        return "warning", (f"it is {SIDECAR_PORTS[listener]}. Nothing binds it in a gateway pod, so the listener "
                           "works today, but Istio documents the port as reserved and a proxy that captures "
                           "traffic (sidecar or ambient) would collide with it.")
    return None


ANALYZER = Analyzer("gateway-ports", ("Gateway", "Pod", "Deployment", "Service"),
                    ("GW-PORT-NOT-ON-SERVICE", "GW-PORT-PRIVILEGED", "GW-PORT-RESERVED"), run)
