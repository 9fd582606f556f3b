"""How istiod reads Gateways and VirtualServices: the shared semantics of analyzers and trace.

Each function is a model of one piece of istiod's behaviour at Istio 1.30 (sources in
shared/reference/istio-facts.md and istio-request-outcomes.md): which pods a Gateway selects,
how a Gateway port becomes an Envoy listener port, how hosts and gateway references resolve,
and which VirtualServices bind to which Gateway server. Pure functions over the ``State``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from graders.state import CLUSTER_DOMAIN, Gateway, Pod, Server, Service, ServicePort, State, VirtualService

MESH = "mesh"


# --- hosts ------------------------------------------------------------------------------------
def host_covers(pattern: str, host: str) -> bool:
    """Does ``pattern`` (possibly ``*`` or ``*.suffix``) match every name ``host`` matches?"""
    pattern, host = pattern.lower(), host.lower()
    if pattern == "*" or pattern == host:
        return True
    if pattern.startswith("*."):
        suffix = pattern[1:]  # ".example.com"
        if host.startswith("*."):
            return host[1:].endswith(suffix)
        return host.endswith(suffix)
    return False


def hosts_intersect(a: str, b: str) -> str | None:
    """The names two host patterns share, as Istio's host intersection computes it (or None)."""
    if host_covers(a, b):
        return b
    if host_covers(b, a):
        return a
    return None


def split_server_host(host: str, gateway_ns: str) -> tuple[str, str]:
    """A Gateway server host ``ns/dnsName`` -> (namespace allowed to bind, dnsName).

    No prefix means ``*/`` (any namespace); ``.`` means the Gateway's own namespace."""
    if "/" in host:
        ns, name = host.split("/", 1)
        return (gateway_ns if ns == "." else ns), name
    return "*", host


def strip_port(host: str) -> str:
    """Envoy ignores the port in Host for gateway routes (IgnorePortInHostMatching)."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def resolve_host(host: str, namespace: str) -> str:
    """Destination host -> FQDN: only a name without any dot is expanded (ResolveShortnameToFQDN)."""
    if host == "*" or "." in host:
        return host
    return f"{host}.{namespace}.{CLUSTER_DOMAIN}"


def resolve_gateway_ref(ref: str, vs_namespace: str) -> str:
    """``spec.gateways`` entry -> ``ns/name`` (or ``mesh``), as istiod's resolveGatewayName does."""
    if ref == MESH:
        return MESH
    if "/" in ref:
        ns, name = ref.split("/", 1)
        return f"{vs_namespace if ns == '.' else ns}/{name}"
    if "." in ref:  # legacy name.namespace(.svc.cluster.local)
        name, ns = ref.split(".")[:2]
        return f"{ns}/{name}"
    return f"{vs_namespace}/{ref}"


def vs_gateway_refs(vs: VirtualService) -> list[str]:
    return [resolve_gateway_ref(g, vs.meta.namespace) for g in (vs.gateways or (MESH,))]


def exported_to(export_to: Iterable[str], own_ns: str, target_ns: str) -> bool:
    export = list(export_to)
    if not export or "*" in export:
        return True
    return any((e == "." and own_ns == target_ns) or e == target_ns for e in export)


# --- workloads and ports ------------------------------------------------------------------------
def gateway_pods(state: State, gw: Gateway) -> list[Pod]:
    """Pods a Gateway programs: label match in every namespace (PILOT_SCOPE_GATEWAY_TO_NAMESPACE
    is false by default). A Gateway with no selector applies to every gateway proxy."""
    if gw.selector is None or not gw.selector:
        return [p for p in state.pods if p.is_gateway]
    return state.pods_matching(gw.selector)


def workload_of(pod: Pod) -> str:
    """``ns/name`` of the workload a pod belongs to: its controller (a Deployment, or the pod's
    controlling owner of another kind), or the pod itself when it is truly bare. Pods without
    ownerReferences that a Deployment selects were already given to it (sources/build.py
    adopt_orphans), so two such pods are one workload, not two."""
    return f"{pod.meta.namespace}/{pod.owner or pod.meta.name}"


def workload_ref(pod: Pod) -> str:
    """How findings name a pod's workload: ``Deployment ns/name``, or ``Pod ns/name`` for a bare pod."""
    return f"{pod.owner_kind if pod.owner else 'Pod'} {workload_of(pod)}"


def workloads(pods: Iterable[Pod]) -> dict[str, list[Pod]]:
    """Pods grouped by ``workload_of``; ``workload_ref(group[0])`` names a group in findings."""
    out: dict[str, list[Pod]] = defaultdict(list)
    for p in pods:
        out[workload_of(p)].append(p)
    return dict(out)


def target_port_number(sp: ServicePort, pod: Pod | None) -> int | None:
    if isinstance(sp.target_port, int):
        return sp.target_port
    return pod.named_port(sp.target_port) if pod else None


@dataclass(frozen=True)
class ResolvedPort:
    listener: int  # the port Envoy binds
    service: Service | None  # the Service whose port was translated, if any
    service_port: ServicePort | None


def resolve_listener_port(state: State, pod: Pod, number: int) -> ResolvedPort:
    """Gateway server port -> Envoy listener port (istiod's resolvePorts): a Service port of a
    Service selecting the pod is translated to its targetPort; otherwise the number is used as is.
    The first Service in config order wins."""
    for svc in state.services_selecting(pod):
        if svc.disables_port_translation():
            continue
        sp = svc.port(number)
        if sp is not None:
            target = target_port_number(sp, pod)
            if target is not None:
                return ResolvedPort(target, svc, sp)
    return ResolvedPort(number, None, None)


def privileged_dropped(pod: Pod, listener: int) -> bool:
    return pod.unprivileged and listener < 1024


@dataclass(frozen=True)
class ListenerServer:
    """One Gateway server as it lands on one workload's listener."""

    gateway: Gateway
    server: Server
    listener: int
    resolved: ResolvedPort


Listeners = dict[tuple[int, str], list[ListenerServer]]


def listeners_for_pod(state: State, pod: Pod) -> tuple[Listeners, list[ListenerServer]]:
    """All Gateway servers programming ``pod``, grouped by (listener port, bind) in merge order
    (Gateways oldest first), plus the servers istiod drops as privileged."""
    groups: dict[tuple[int, str], list[ListenerServer]] = defaultdict(list)
    dropped: list[ListenerServer] = []
    for gw in state.ordered_gateways:
        if gw.selector and not all(pod.labels.get(k) == v for k, v in gw.selector.items()):
            continue
        if not gw.selector and not pod.is_gateway:
            continue
        for server in gw.servers:
            res = resolve_listener_port(state, pod, server.port)
            ls = ListenerServer(gw, server, res.listener, res)
            if privileged_dropped(pod, res.listener):
                dropped.append(ls)
            else:
                groups[(res.listener, server.bind)].append(ls)
    return groups, dropped


# --- binding VirtualServices to Gateway servers -------------------------------------------------
def server_allows(server: Server, gw: Gateway, vs: VirtualService) -> list[tuple[str, str]]:
    """(server host, vs host) pairs through which ``vs`` may attach to ``server``."""
    pairs = []
    for raw in server.hosts:
        ns, dns = split_server_host(raw, gw.meta.namespace)
        if ns not in ("*", vs.meta.namespace):
            continue
        for h in vs.hosts:
            if hosts_intersect(dns, h):
                pairs.append((dns, h))
    return pairs


def bound_virtual_services(
    state: State, gw: Gateway, server: Server, proxy_ns: str
) -> list[tuple[VirtualService, list[str]]]:
    """VirtualServices that attach to one server of ``gw`` on a proxy in ``proxy_ns``, in creation
    order, each with the virtual-host domains it contributes (the host intersection)."""
    out = []
    key = gw.meta.key
    for vs in _vs_by_gateway(state).get(key, ()):
        if not exported_to(vs.export_to, vs.meta.namespace, proxy_ns):
            continue
        domains = []
        for dns, h in server_allows(server, gw, vs):
            d = hosts_intersect(dns, h)
            if d and d not in domains:
                domains.append(d)
        if domains:
            out.append((vs, domains))
    return out


def index_by_gateway(vss: Iterable[VirtualService]) -> dict[str, tuple[VirtualService, ...]]:
    """``ns/gateway`` -> VirtualServices that list it, keeping the given order."""
    out: dict[str, list[VirtualService]] = defaultdict(list)
    for vs in vss:
        for ref in dict.fromkeys(vs_gateway_refs(vs)):
            out[ref].append(vs)
    return {k: tuple(v) for k, v in out.items()}


def _vs_by_gateway(state: State) -> dict[str, tuple[VirtualService, ...]]:
    return state.virtual_services_by_gateway


def virtual_services_for(state: State, gateway_key: str) -> list[VirtualService]:
    return list(_vs_by_gateway(state).get(gateway_key, ()))


# --- Envoy matching ---------------------------------------------------------------------------
def domain_rank(domain: str, host: str) -> tuple[int, int] | None:
    """Envoy virtual-host selection: exact beats suffix wildcard (longest first) beats ``*``."""
    domain, host = domain.lower(), host.lower()
    if domain == host:
        return (3, len(domain))
    if domain.startswith("*") and domain != "*" and host.endswith(domain[1:]) and len(host) > len(domain) - 1:
        return (2, len(domain))
    if domain.endswith("*") and domain != "*" and host.startswith(domain[:-1]):
        return (1, len(domain))
    if domain == "*":
        return (0, 0)
    return None


def string_matches(kind: str, pattern: str, value: str) -> bool:
    if kind == "exact":
        return value == pattern
    if kind == "prefix":
        return value.startswith(pattern)
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:
        return False
