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

from graders.state import (
    CLUSTER_DOMAIN,
    Gateway,
    Pod,
    Server,
    Service,
    ServicePort,
    State,
    TcpRoute,
    VirtualService,
)

MESH = "mesh"


# --- hosts ------------------------------------------------------------------------------------
def host_covers(pattern: str, host: str) -> bool:
    """Does a virtual host with domain ``pattern`` (possibly ``*`` or ``*.suffix``) take requests for
    ``host`` (every name ``host`` matches)? Case-insensitive, because this is where Envoy meets a request:
    istiod lower-cases the domains it writes (gateways: gateway.go:489; sidecars: httproute.go:481, and
    it matches VirtualService hosts to Services lower-cased on both sides, httproute.go:260, :340) and
    Envoy lower-cases the Host header before looking up the domain.

    Not for comparing configuration with configuration: istiod compares ``host.Name`` strings
    case-sensitively there (binding, ``hosts_intersect``; ServiceEntry lookup, ``known_external``)."""
    pattern, host = pattern.lower(), host.lower()
    if pattern == "*" or pattern == host:
        return True
    if pattern.startswith("*."):
        suffix = pattern[1:]  # ".example.com"
        if host.startswith("*."):
            return host[1:].endswith(suffix)
        return host.endswith(suffix)
    return False


def host_subset_of(n: str, o: str) -> bool:
    """Istio's ``host.Name.SubsetOf`` (pkg/config/host/name.go:64): is every name ``n`` matches also
    matched by ``o``? A leading ``*`` makes a wildcard; names are compared as exact, case-sensitive
    strings (istiod lower-cases only the resulting virtual-host domain, gateway.go:489)."""
    if n.startswith("*"):
        return o.startswith("*") and len(n) >= len(o) and n[1:].endswith(o[1:])
    if o.startswith("*"):
        return n.endswith(o[1:])
    return n == o


def hosts_intersect(a: str, b: str) -> str | None:
    """The names two host patterns share, as ``host.Names.Intersection`` computes it (names.go:83):
    ``a`` when it is a subset of ``b``, else ``b`` when it is a subset of ``a``, else None.
    Case-sensitive: ``foo.com`` and ``Foo.com`` share nothing."""
    if host_subset_of(a, b):
        return a
    if host_subset_of(b, a):
        return b
    return None


def hosts_match(a: str, b: str) -> bool:
    """Istio's ``host.Name.Matches`` (name.go:37): either pattern covers a name of the other."""
    return hosts_intersect(a, b) is not None


def redirect_domain(host: str) -> str | None:
    """The domain of the virtual host an httpsRedirect server adds for one of its hosts, or None
    when that domain can never match a Host header. istiod first sanitises server hosts
    (sanitizeServerHostNamespace, pilot/pkg/model/gateway.go:654): ``*/h`` becomes ``h``, ``*/*``
    becomes ``*``, ``./h`` becomes ``<gateway ns>/h``; the redirect loop (gateway.go:527-542) then
    uses the host as it stands, lower-cased, so a namespaced ``ns/h`` domain is never matched."""
    ns, sep, name = host.partition("/")
    if not sep:
        return host.lower()
    return name.lower() if ns == "*" else None


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
    """Destination host -> FQDN: only a name without any dot is expanded (ResolveShortnameToFQDN,
    pilot/pkg/model/config.go:197)."""
    if host == "*" or "." in host or ":" in host:
        return host
    return f"{host}.{namespace}.{CLUSTER_DOMAIN}"


def vs_hosts(vs: VirtualService) -> tuple[str, ...]:
    """A VirtualService's hosts as istiod binds them: short names expanded to
    ``<name>.<vs namespace>.svc.cluster.local`` first (ResolveVirtualServiceShortnames,
    pilot/pkg/model/virtualservice.go:128), so ``hosts: [productpage]`` answers the FQDN."""
    return tuple(resolve_host(h, vs.meta.namespace) for h in vs.hosts)


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
    """Is a Service or ServiceEntry with this exportTo visible in ``target_ns``? istiod's
    IsServiceVisible (push_context.go:1089): ``*`` (and no exportTo) is public, ``.`` its own
    namespace, a name that namespace; ``~`` nowhere. For a gateway the namespace is the gateway
    pod's (its sidecar scope, DefaultSidecarScopeForGateway, sidecar.go:257)."""
    export = list(export_to)
    if not export or "*" in export:
        return True
    return any((e == "." and own_ns == target_ns) or e == target_ns for e in export)


def vs_bucket(vs: VirtualService, proxy_ns: str) -> int | None:
    """Where a VirtualService stands in istiod's list for a gateway proxy in ``proxy_ns``
    (VirtualServicesForGateway, push_context.go:1113, filled by initVirtualServices, :1767):
    0 = private to the proxy's namespace (``.`` or its own namespace), 1 = exported to that
    namespace by name, 2 = public (``*`` or no exportTo); None = not visible (``~`` or other
    namespaces). Buckets come in that order whatever the objects' age."""
    export = set(vs.export_to) or {"*"}
    if "*" in export:
        return 2
    if "~" in export:
        return None
    own = vs.meta.namespace
    if own == proxy_ns and ("." in export or own in export):
        return 0
    if proxy_ns in export and proxy_ns != own:
        return 1
    return None


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


HTTP_FAMILY = {"HTTP", "HTTP2", "GRPC", "GRPC-WEB"}
TLS_FAMILY = {"HTTPS", "TLS"}


def protocol_family(protocol: str) -> str:
    """Servers istiod can keep together on one port (mergeGateways, pilot/pkg/model/gateway.go:289-409):
    plain HTTP ones share a route table ("http"), HTTPS and TLS ones split by SNI ("tls"); anything else
    (TCP, MONGO, ...) is an opaque protocol that takes the port alone."""
    if protocol in HTTP_FAMILY:
        return "http"
    if protocol in TLS_FAMILY:
        return "tls"
    return protocol.lower()


def can_merge(plain: str, protocol: str) -> bool:
    """canMergeProtocols (pilot/pkg/model/gateway.go:513) as mergeGateways calls it (:304): a server can
    join the plain-text server already on its port only when both are HTTP-family."""
    return protocol_family(plain) == "http" and protocol_family(protocol) == "http"


def merge_port(servers: list[ListenerServer]) -> tuple[list[ListenerServer], list[ListenerServer],
                                                       ListenerServer | None]:
    """mergeGateways (pilot/pkg/model/gateway.go:289-409) for the servers landing on one port, in merge order:
    (kept, rejected, the plain-text server). The first server that is not HTTPS/TLS becomes the port's
    plain-text server; once there is one, a later server is kept only if both are HTTP-family (a second
    TCP server, an HTTPS after HTTP, ... are skipped with "conflict with existing server"). HTTPS/TLS
    servers that come before any plain-text one are kept beside it, as separate filter chains by SNI."""
    kept: list[ListenerServer] = []
    rejected: list[ListenerServer] = []
    plain: ListenerServer | None = None
    for ls in servers:
        if plain is None:
            kept.append(ls)
            if protocol_family(ls.server.protocol) != "tls":
                plain = ls
        elif can_merge(plain.server.protocol, ls.server.protocol):
            kept.append(ls)
        else:
            rejected.append(ls)
    return kept, rejected, plain


@dataclass(frozen=True)
class ReservedPort:
    """A port the proxy's own bootstrap or pilot-agent already uses in every gateway pod."""

    port: int
    owner: str  # what already listens there
    paths: tuple[str, ...]  # path prefixes it answers with 200 (others: 404); () = not reachable from outside
    exact: bool  # True when the pod-level effect is read from Istio's and Envoy's source, False when inferred

    @property
    def collision(self) -> str:
        """What Envoy does with istiod's listener on this port."""
        if self.exact:
            return (f"its listener has the same name as the bootstrap's (0.0.0.0_{self.port}) and Envoy never "
                    "replaces a static listener: it skips istiod's without an error (blockUpdate in Envoy's "
                    "listener manager; the update is accepted, no NACK)")
        return f"Envoy cannot bind it because {self.owner} already holds the port, so the listener is rejected"


# Istio's reserved proxy ports that collide on a gateway pod. The Envoy bootstrap
# (tools/packaging/common/envoy_bootstrap.json at 1.30.3, lines 563-580 and 709-770) declares static
# listeners named 0.0.0.0_15021 (route prefix /healthz/ready to pilot-agent) and 0.0.0.0_15090
# (/stats/prometheus), and the admin interface on 127.0.0.1:15000; pilot-agent serves 15020 on every
# address. istiod names a gateway listener <bind>_<port> (getListenerName, gateway.go:329), so on 15021
# and 15090 it has the static listener's name, which Envoy never updates. istiod's
# reserved-port check (conflictWithReservedListener, pilot/pkg/model/context.go:851) is called only
# for sidecar listeners (listener.go:426, listener_inbound.go:380), never by buildGatewayListeners
# (gateway.go:118), so a Gateway server there still becomes a listener that collides.
RESERVED_PORTS: dict[int, ReservedPort] = {
    15000: ReservedPort(15000, "Envoy's admin interface (bound to 127.0.0.1 only)", (), False),
    15020: ReservedPort(15020, "pilot-agent's status and merged-metrics server",
                        ("/healthz/ready", "/stats/prometheus"), False),
    15021: ReservedPort(15021, "the bootstrap health-check listener 0.0.0.0_15021", ("/healthz/ready",), True),
    15090: ReservedPort(15090, "the bootstrap Prometheus listener 0.0.0.0_15090", ("/stats/prometheus",), True),
}
# Reserved by Istio for sidecar and ambient traffic capture; nothing binds them in a gateway pod.
SIDECAR_PORTS = {15001: "the sidecar outbound capture listener", 15006: "the sidecar inbound capture listener",
                 15008: "the HBONE tunnel port"}


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
        for h in vs_hosts(vs):
            if hosts_intersect(dns, h):
                pairs.append((dns, h))
    return pairs


def bound_virtual_services(
    state: State, gw: Gateway, server: Server, proxy_ns: str
) -> list[tuple[VirtualService, list[str]]]:
    """VirtualServices that attach to one server of ``gw`` on a proxy in ``proxy_ns``, in istiod's
    order (see vs_bucket: private, then exported to the proxy's namespace, then public; creation
    order within each), each with the virtual-host domains it contributes (the host intersection)."""
    out = []
    for vs in virtual_services_for_proxy(state, gw.meta.key, proxy_ns):
        domains = []
        for dns, h in server_allows(server, gw, vs):
            d = hosts_intersect(dns, h)
            if d and d not in domains:
                domains.append(d)
        if domains:
            out.append((vs, domains))
    return out


def tcp_hosts_match(server: Server, gw: Gateway, vs: VirtualService) -> bool:
    """pickMatchingGatewayHosts (gateway.go:1052) on sanitised server hosts: a ``ns/`` host only for
    VirtualServices in that namespace, then ``host.Name.Matches`` in either direction."""
    for raw in server.hosts:
        ns, dns = split_server_host(raw, gw.meta.namespace)
        if ns not in ("*", vs.meta.namespace):
            continue
        if any(hosts_match(dns, h) for h in vs_hosts(vs)):
            return True
    return False


def l4_matches(rule: TcpRoute, server: Server, gw: Gateway, vs: VirtualService) -> bool:
    """l4MultiMatch (gateway.go:1089): no match means yes; otherwise some match whose port is unset
    or the server's declared port, and whose gateways are unset or name this Gateway."""
    if not rule.matches:
        return True
    return any((port is None or port == server.port)
               and (not gws or gw.meta.key in {resolve_gateway_ref(g, vs.meta.namespace) for g in gws})
               for port, gws in rule.matches)


def bound_server_ports(state: State, vs: VirtualService) -> list[int]:
    """Declared ports of the Gateway servers ``vs`` attaches to by host: the ports istiod falls back
    to for a destination without a port on a multi-port Service (route.go:362-368)."""
    ports: list[int] = []
    for ref in dict.fromkeys(vs_gateway_refs(vs)):
        gw = state.gateways_by_key.get(ref)
        for server in gw.servers if gw is not None else ():
            if server_allows(server, gw, vs) and server.port not in ports:
                ports.append(server.port)
    return ports


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


def virtual_services_for_proxy(state: State, gateway_key: str, proxy_ns: str) -> list[VirtualService]:
    """The VirtualServices istiod lists for ``gateway_key`` on a proxy in ``proxy_ns``, in its order."""
    visible = [(b, i, vs) for i, vs in enumerate(_vs_by_gateway(state).get(gateway_key, ()))
               if (b := vs_bucket(vs, proxy_ns)) is not None]
    return [vs for _, _, vs in sorted(visible, key=lambda x: (x[0], x[1]))]


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
