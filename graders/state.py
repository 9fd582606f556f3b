"""The immutable model of a cluster that every analyzer, trace and check reads.

Records keep only the fields the course reasons about, already validated and typed, so the
analyzers never touch raw dictionaries. ``objects.py`` turns raw Kubernetes objects into these
records; the sources (live, snapshot, simulated) only produce raw objects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from types import MappingProxyType
from typing import Any

EMPTY: Mapping[str, str] = MappingProxyType({})
CLUSTER_DOMAIN = "svc.cluster.local"


@dataclass(frozen=True)
class Meta:
    kind: str
    namespace: str  # "" for cluster-scoped kinds
    name: str
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    # Real creationTimestamp when known; otherwise a synthetic one that preserves load order
    # (baseline first, then the learner's files in the order given).
    created: datetime | None = None
    origin: str = ""  # "file.yaml:12", "cluster", "snapshot.yaml:40", "baseline"
    synthetic_time: bool = False

    @property
    def ref(self) -> str:
        """How findings and trace steps name an object: ``Kind namespace/name``."""
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def order_key(self) -> tuple:
        """Istio's config order: creationTimestamp, then name, then namespace."""
        ts = self.created.timestamp() if self.created else 0.0
        return (int(ts), self.name, self.namespace)


def selector_matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@dataclass(frozen=True)
class Namespace:
    meta: Meta


@dataclass(frozen=True)
class ContainerPort:
    name: str | None
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True)
class Container:
    name: str
    ports: tuple[ContainerPort, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    args: tuple[str, ...] = ()
    image: str = ""


@dataclass(frozen=True)
class Pod:
    meta: Meta
    ready: bool
    containers: tuple[Container, ...] = ()
    owner: str | None = None  # name of the controller (a Deployment unless owner_kind says) the pod belongs to
    owner_kind: str = "Deployment"
    from_template: bool = False  # stands in for the pods of a Deployment (manifest mode)

    @property
    def labels(self) -> Mapping[str, str]:
        return self.meta.labels

    @property
    def unprivileged(self) -> bool:
        """The legacy gateway chart sets ISTIO_META_UNPRIVILEGED_POD=true unless runAsRoot."""
        return any(c.env.get("ISTIO_META_UNPRIVILEGED_POD", "").lower() == "true" for c in self.containers)

    @property
    def is_gateway(self) -> bool:
        """An Envoy gateway pod: a proxy running ``proxy router`` (no application container)."""
        return any("router" in c.args and c.name == "istio-proxy" for c in self.containers)

    def named_port(self, name: str) -> int | None:
        for c in self.containers:
            for p in c.ports:
                if p.name == name:
                    return p.port
        return None


@dataclass(frozen=True)
class Deployment:
    meta: Meta
    replicas: int
    selector: Mapping[str, str]
    template_labels: Mapping[str, str]
    containers: tuple[Container, ...] = ()
    ready_replicas: int | None = None  # from status, when the object came from a cluster


@dataclass(frozen=True)
class ServicePort:
    name: str | None
    port: int
    target_port: int | str
    node_port: int | None = None
    protocol: str = "TCP"

    def label(self) -> str:
        tgt = self.target_port
        node = f" (nodePort {self.node_port})" if self.node_port else ""
        return f"{self.name or 'unnamed'} {self.port}->{tgt}{node}"


@dataclass(frozen=True)
class Service:
    meta: Meta
    type: str  # ClusterIP | NodePort | LoadBalancer | ExternalName
    selector: Mapping[str, str] | None
    ports: tuple[ServicePort, ...] = ()
    # annotation networking.istio.io/exportTo, split on commas (istiod's kube conversion.go:84); () = public
    export_to: tuple[str, ...] = ()
    lb_ingress: tuple[str, ...] = ()  # status.loadBalancer.ingress ip/hostname (h10-gwapi: Programmed needs it)

    @property
    def fqdn(self) -> str:
        return f"{self.meta.name}.{self.meta.namespace}.{CLUSTER_DOMAIN}"

    @property
    def external(self) -> bool:
        return self.type in ("NodePort", "LoadBalancer")

    def port(self, number: int) -> ServicePort | None:
        return next((p for p in self.ports if p.port == number), None)

    def selects(self, pod: Pod) -> bool:
        return (
            bool(self.selector)
            and pod.meta.namespace == self.meta.namespace
            and selector_matches(self.selector or EMPTY, pod.labels)
        )

    def disables_port_translation(self) -> bool:
        return "experimental.istio.io/disable-gateway-port-translation" in self.meta.labels


@dataclass(frozen=True)
class ServerTls:
    """What the trace and the TLS analyzers need from a server's ``tls`` block (never any key material:
    only the names and whether CA fields are set). ``mode`` is None when omitted (istiod: PASSTHROUGH)."""

    mode: str | None = None
    credential: str = ""  # credentialName, or the first of credentialNames
    cert_files: bool = False  # serverCertificate/privateKey or tlsCertificates (paths inside the pod)
    ca: bool = False  # caCertificates or caCertCredentialName set
    ca_credential: str = ""  # caCertCredentialName as written


@dataclass(frozen=True)
class Server:
    index: int
    port: int
    protocol: str  # upper-cased: HTTP, HTTPS, HTTP2, GRPC, TCP, TLS, ...
    port_name: str
    hosts: tuple[str, ...]
    bind: str = ""
    tls_mode: str | None = None
    https_redirect: bool = False
    name: str = ""
    tls: ServerTls | None = None  # the tls block (None: none written); h9-tls, issue #14

    @property
    def is_plain_http(self) -> bool:
        return self.protocol in ("HTTP", "HTTP2", "GRPC", "GRPC-WEB")

    @property
    def terminates_tls_to_http(self) -> bool:
        return self.protocol == "HTTPS" and self.tls_mode not in (None, "PASSTHROUGH", "AUTO_PASSTHROUGH")


@dataclass(frozen=True)
class Gateway:
    meta: Meta
    selector: Mapping[str, str] | None
    servers: tuple[Server, ...] = ()


@dataclass(frozen=True)
class StringMatch:
    kind: str  # exact | prefix | regex | present (written {}: the header or parameter is there at all)
    value: str

    def describe(self) -> str:
        return "present" if self.kind == "present" else f"{self.kind} {self.value}"


@dataclass(frozen=True)
class HttpMatch:
    """One entry of an HTTP route's ``match`` list: all its conditions must hold."""

    uri: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    scheme: StringMatch | None = None
    headers: tuple[tuple[str, StringMatch], ...] = ()  # names lower-cased, like HTTP/2 header names
    without_headers: tuple[tuple[str, StringMatch], ...] = ()
    query_params: tuple[tuple[str, StringMatch], ...] = ()
    ignore_uri_case: bool = False
    gateways: tuple[str, ...] = ()
    port: int | None = None
    source_labels: Mapping[str, str] = field(default_factory=dict)
    source_namespace: str = ""

    @property
    def catch_all(self) -> bool:
        """Istio's IsCatchAllRoute on the Envoy route this match becomes: path prefix ``/`` (also
        what a missing or empty uri becomes) or regex ``.*``, and no header or query matchers
        (method, authority and scheme are header matchers in Envoy; ``port``, ``gateways`` and the
        source fields only decide whether the route is built for a gateway at all)."""
        if self.method or self.authority or self.scheme or self.headers or self.without_headers or self.query_params:
            return False
        return self.uri is None or self.uri.kind == "present" or (self.uri.kind == "prefix" and self.uri.value == "/") \
            or (self.uri.kind == "regex" and self.uri.value == ".*")


@dataclass(frozen=True)
class Destination:
    host: str
    port: int | None = None
    subset: str | None = None
    weight: int | None = None


@dataclass(frozen=True)
class HttpRoute:
    index: int
    name: str
    matches: tuple[HttpMatch, ...]
    destinations: tuple[Destination, ...] = ()
    redirect: bool = False
    direct_status: int | None = None
    redirect_code: int | None = None  # redirect.redirectCode as written (None: istiod's default 301)

    @property
    def catch_all(self) -> bool:
        """True when an Envoy route built from this rule is a catch-all (see HttpMatch.catch_all)."""
        return not self.matches or any(m.catch_all for m in self.matches)


@dataclass(frozen=True)
class TcpRoute:
    """One ``spec.tcp`` rule: its L4 matches (port, gateways) and destinations."""

    index: int
    matches: tuple[tuple[int | None, tuple[str, ...]], ...] = ()  # (match.port, match.gateways)
    destinations: tuple[Destination, ...] = ()


@dataclass(frozen=True)
class TlsRoute:
    """One ``spec.tls`` rule (TLS passthrough by SNI): its matches (sniHosts, port, gateways), destinations."""

    index: int
    matches: tuple[tuple[tuple[str, ...], int | None, tuple[str, ...]], ...] = ()
    destinations: tuple[Destination, ...] = ()


@dataclass(frozen=True)
class SecretRef:
    """A Secret's existence: metadata only. Its data is never read, parsed or kept."""

    meta: Meta
    type: str = ""


@dataclass(frozen=True)
class VirtualService:
    meta: Meta
    hosts: tuple[str, ...]
    gateways: tuple[str, ...]  # as written; empty means ["mesh"]
    http: tuple[HttpRoute, ...] = ()
    export_to: tuple[str, ...] = ()
    has_tcp_or_tls: bool = False
    tcp: tuple[TcpRoute, ...] = ()
    tls: tuple[TlsRoute, ...] = ()


@dataclass(frozen=True)
class Subset:
    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class DestinationRule:
    meta: Meta
    host: str
    subsets: tuple[Subset, ...] = ()
    export_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceEntry:
    meta: Meta
    hosts: tuple[str, ...]
    ports: tuple[tuple[int, str, str], ...] = ()  # (number, protocol, name)
    resolution: str = "NONE"
    location: str = "MESH_EXTERNAL"
    export_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class IstioOperator:
    meta: Meta
    spec: Mapping  # kept raw (frozen copy): the simulated source renders it into gateways


@dataclass(frozen=True)
class ProbeRecord:
    """A real HTTP request recorded against a cluster (snapshot mode replays these)."""

    gateway: str  # ns/service
    port: int
    host: str
    path: str
    method: str = "GET"
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    body_excerpt: str = ""
    error: str | None = None
    at: str = ""


@dataclass(frozen=True)
class State:
    mode: str  # live | snapshot | simulated | manifests
    description: str = ""
    namespaces: tuple[Namespace, ...] = ()
    pods: tuple[Pod, ...] = ()
    deployments: tuple[Deployment, ...] = ()
    services: tuple[Service, ...] = ()
    gateways: tuple[Gateway, ...] = ()
    virtual_services: tuple[VirtualService, ...] = ()
    destination_rules: tuple[DestinationRule, ...] = ()
    service_entries: tuple[ServiceEntry, ...] = ()
    istio_operators: tuple[IstioOperator, ...] = ()
    istio_installed: bool = True
    outbound_traffic_policy: str | None = None  # ALLOW_ANY | REGISTRY_ONLY | None (unknown)
    load_findings: tuple = ()  # MANIFEST-INVALID and friends, produced while loading
    probes: tuple[ProbeRecord, ...] = ()
    sources: tuple[str, ...] = field(default=())
    secrets: tuple[SecretRef, ...] = ()  # metadata only (h9-tls)
    secrets_known: bool = False  # True when the source listed Secrets, so a missing one is really missing
    # --- h10-gwapi (issue #15): Kubernetes Gateway API records (graders/gwapi/objects.py) ---
    gw_classes: tuple[Any, ...] = ()
    api_gateways: tuple[Any, ...] = ()
    http_routes: tuple[Any, ...] = ()
    reference_grants: tuple[Any, ...] = ()
    gwapi_crds: bool | None = None  # live: does the API server serve gateway.networking.k8s.io? None: unknown

    @property
    def simulated(self) -> bool:
        return self.mode in ("simulated", "manifests")

    # --- indexes (built once per state, on first use) -------------------------------------
    @cached_property
    def services_by_ns(self) -> Mapping[str, tuple[Service, ...]]:
        out: dict[str, list[Service]] = defaultdict(list)
        for s in sorted(self.services, key=lambda s: s.meta.order_key()):
            out[s.meta.namespace].append(s)
        return {k: tuple(v) for k, v in out.items()}

    @cached_property
    def service_by_fqdn(self) -> Mapping[str, Service]:
        return {s.fqdn: s for s in self.services}

    @cached_property
    def _pod_label_index(self) -> Mapping[tuple[str, str, str], tuple[Pod, ...]]:
        """(namespace or "*", label, value) -> pods; namespaced keys keep per-namespace queries
        from scanning every namespace's pods that share a common label such as app=web."""
        out: dict[tuple[str, str, str], list[Pod]] = defaultdict(list)
        for p in self.pods:
            for k, v in p.labels.items():
                out[("*", k, v)].append(p)
                out[(p.meta.namespace, k, v)].append(p)
        return {k: tuple(v) for k, v in out.items()}

    @cached_property
    def _selector_cache(self) -> dict[tuple, tuple[Pod, ...]]:
        return {}

    @cached_property
    def _memo(self) -> dict[tuple, object]:
        return {}

    def memo(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """Cache a value derived purely from this (immutable) state, e.g. a gateway's route table,
        so tracing many requests against one state does the heavy work once."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @cached_property
    def gateways_by_key(self) -> Mapping[str, Gateway]:
        return {g.meta.key: g for g in self.gateways}

    @cached_property
    def gateways_by_name(self) -> Mapping[str, tuple[Gateway, ...]]:
        out: dict[str, list[Gateway]] = defaultdict(list)
        for g in self.gateways:
            out[g.meta.name].append(g)
        return {k: tuple(v) for k, v in out.items()}

    @cached_property
    def service_entry_hosts(self) -> Mapping[str, ServiceEntry]:
        out: dict[str, ServiceEntry] = {}
        for se in self.service_entries:
            for h in se.hosts:
                out.setdefault(h, se)
        return out

    @cached_property
    def ordered_gateways(self) -> tuple[Gateway, ...]:
        return tuple(sorted(self.gateways, key=lambda g: g.meta.order_key()))

    @cached_property
    def ordered_virtual_services(self) -> tuple[VirtualService, ...]:
        return tuple(sorted(self.virtual_services, key=lambda v: v.meta.order_key()))

    @cached_property
    def virtual_services_by_gateway(self) -> Mapping[str, tuple[VirtualService, ...]]:
        from graders.mesh import index_by_gateway  # mesh holds the reference-resolution rules

        return index_by_gateway(self.ordered_virtual_services)

    @cached_property
    def destination_rules_by_host(self) -> Mapping[str, tuple[DestinationRule, ...]]:
        out: dict[str, list[DestinationRule]] = defaultdict(list)
        for dr in self.destination_rules:
            out[dr.host].append(dr)
            if "." not in dr.host:
                out[f"{dr.host}.{dr.meta.namespace}.{CLUSTER_DOMAIN}"].append(dr)
        return {k: tuple(v) for k, v in out.items()}

    # --- queries -----------------------------------------------------------------------------
    def pods_matching(self, selector: Mapping[str, str] | None, namespace: str | None = None) -> list[Pod]:
        """Pods whose labels contain ``selector`` (all namespaces unless one is given)."""
        key = (tuple(sorted((selector or {}).items())), namespace)
        hit = self._selector_cache.get(key)
        if hit is None:
            scope = namespace if namespace is not None else "*"
            if not selector:
                hit = tuple(p for p in self.pods if namespace is None or p.meta.namespace == namespace)
            else:
                candidates = min((self._pod_label_index.get((scope, k, v), ()) for k, v in selector.items()), key=len)
                hit = tuple(p for p in candidates if selector_matches(selector, p.labels))
            self._selector_cache[key] = hit
        return list(hit)

    def services_selecting(self, pod: Pod) -> list[Service]:
        """Services in the pod's namespace that select it, in Istio's config order."""
        return list(self.memo(("services-selecting", id(pod)), lambda: tuple(
            s for s in self.services_by_ns.get(pod.meta.namespace, ()) if s.selects(pod))))

    def service(self, namespace: str, name: str) -> Service | None:
        return self.service_by_fqdn.get(f"{name}.{namespace}.{CLUSTER_DOMAIN}")

    def ready_pods_for(self, service: Service) -> list[Pod]:
        if not service.selector:
            return []
        return [p for p in self.pods_matching(service.selector, service.meta.namespace) if p.ready]
