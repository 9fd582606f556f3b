"""The status istiod would write, predicted from objects alone: route attachment per parentRef, backend
resolution (ResolvedRefs), and the Gateway's Accepted/Programmed and per-listener conditions.

Sources (Istio 1.30.3, pilot/pkg/config/kube/gateway/ unless said otherwise):
- per-listener checks in code order: conversion.go:644-723 (``referenceAllowed``): port, sectionName,
  hostname x allowed namespace, then kind;
- one status entry per parentRef, reasons ranked NotAllowedByListeners > NoMatchingListenerHostname >
  NoMatchingParent, equal ranks joined with "; ": conditions.go:46-160;
- listener hosts ``<ns>/<hostname>`` from allowedRoutes: conversion.go:2455-2511;
- backends: conversion.go:1086-1219 (``buildDestination``: ReferenceGrant first, then kind, then the
  Service); the last invalid backend of the route wins: route_collections.go:641-656, conversion.go:958-966;
- Programmed: conversion.go:1900-1936 (``setProgrammedCondition``) over gatewaycommon/context.go:66-160.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from graders.gwapi import GROUP
from graders.gwapi.deploy import deployment_name, is_istio_managed_class, manual
from graders.gwapi.objects import ApiGateway, BackendRef, HTTPRoute, Listener, ParentRef
from graders.mesh import hosts_match
from graders.state import CLUSTER_DOMAIN, Service, State

NOT_ALLOWED = "NotAllowedByListeners"
NO_HOSTNAME = "NoMatchingListenerHostname"
NO_PARENT = "NoMatchingParent"
_RANK = {None: 0, NOT_ALLOWED: 1, NO_HOSTNAME: 2, NO_PARENT: 4}  # conditions.go:101-125 (lower wins)
BACKEND_NOT_FOUND, REF_NOT_PERMITTED, INVALID_KIND = "BackendNotFound", "RefNotPermitted", "InvalidKind"
INVALID_DESTINATION = "InvalidDestination"  # a hard error: the whole route produces no routes
INVALID_FILTER = "InvalidFilter"  # also hard (conversion.go:177-181)
HARD_ERRORS = (INVALID_DESTINATION, INVALID_FILTER)
# Filter types convertHTTPRoute handles (conversion.go:140-176); any other is InvalidFilter.
SUPPORTED_FILTERS = ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "RequestMirror",
                     "URLRewrite", "CORS")
ROUTE_KIND = (GROUP, "HTTPRoute")
SUPPORTED_PROTOCOLS = ("HTTP", "HTTPS", "TLS")  # TCP needs PILOT_ENABLE_ALPHA_GATEWAY_API (default off)


@dataclass(frozen=True)
class ListenerCheck:
    listener: Listener
    reason: str | None  # None: this listener accepts the route
    message: str = ""


@dataclass(frozen=True)
class ParentResult:
    """One ``status.parents[]`` entry as istiod would write it for one parentRef."""

    ref: ParentRef
    gateway: ApiGateway
    reason: str | None  # None: Accepted=True
    message: str
    accepted_listeners: tuple[Listener, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class BackendResult:
    backend: BackendRef
    namespace: str
    reason: str | None  # None: resolved
    message: str = ""
    service: Service | None = None


# --- gateways and listeners ------------------------------------------------------------------------
def istio_gateway(state: State, namespace: str, name: str) -> ApiGateway | None:
    """The Gateway istiod handles under this name, or None (missing, or another controller's class:
    istiod then writes no status entry at all, conversion.go:738-773)."""
    for gw in state.api_gateways:
        if gw.meta.namespace == namespace and gw.meta.name == name:
            return gw if is_istio_managed_class(gw.class_name, state.gw_classes) else None
    return None


def _namespace_labels(state: State, name: str) -> dict[str, str]:
    for ns in state.namespaces:
        if ns.meta.name == name:
            return {**ns.meta.labels, "kubernetes.io/metadata.name": name}
    return {"kubernetes.io/metadata.name": name}


def _selector_matches(listener: Listener, labels: Mapping[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (listener.ns_selector or {}).items()):
        return False
    for key, op, values in listener.ns_expressions:
        present = key in labels
        ok = {"In": present and labels.get(key) in values, "NotIn": not present or labels.get(key) not in values,
              "Exists": present, "DoesNotExist": not present}.get(op, False)
        if not ok:
            return False
    return True


def allowed_namespaces(state: State, gw: ApiGateway, listener: Listener) -> list[str]:
    """``*`` for From All; the Gateway's namespace for Same (the default); the namespaces a Selector
    matches now, sorted (conversion.go:2480-2511)."""
    if listener.allowed_from == "All":
        return ["*"]
    if listener.allowed_from != "Selector":
        return [gw.meta.namespace]
    if listener.ns_selector is None and not listener.ns_expressions:
        return ["*"]
    names = {ns.meta.name for ns in state.namespaces}
    return sorted(n for n in names if _selector_matches(listener, _namespace_labels(state, n)))


def _check_listener(state: State, gw: ApiGateway, listener: Listener, ref: ParentRef,
                    route: HTTPRoute) -> ListenerCheck:
    """conversion.go:644-723, in its order: port, sectionName, hostname x namespace, kind."""
    if ref.port and ref.port != listener.port:
        return ListenerCheck(listener, NO_PARENT, f"port {ref.port} not found")
    if ref.section and ref.section != listener.name:
        return ListenerCheck(listener, NO_PARENT, f'sectionName "{ref.section}" not found')
    hostnames = route.hostnames or ("*",)
    parent_host = listener.hostname or "*"
    namespaces = allowed_namespaces(state, gw, listener) or ["~"]
    host_matched = False
    for h in hostnames:
        if hosts_match(parent_host, h):
            host_matched = True
            if any(ns in ("*", route.meta.namespace) for ns in namespaces):
                break
    else:
        original = listener.hostname or ""
        if host_matched:
            return ListenerCheck(listener, NOT_ALLOWED, f'hostnames matched parent hostname "{original}", but '
                                 f'namespace "{route.meta.namespace}" is not allowed by the parent')
        return ListenerCheck(listener, NO_HOSTNAME, f'no hostnames matched parent hostname "{original}"')
    if ROUTE_KIND not in supported_kinds(listener)[0]:
        return ListenerCheck(listener, NOT_ALLOWED,
                             f"kind {GROUP}/v1/HTTPRoute is not allowed")  # GroupVersionKind.String
    return ListenerCheck(listener, None)


def supported_kinds(listener: Listener) -> tuple[list[tuple[str, str]], bool]:
    """conditions.go:378-412: the kinds a protocol supports, narrowed by allowedRoutes.kinds; False
    when a listed kind is unsupported (listener ResolvedRefs=False/InvalidRouteKinds)."""
    supported = {"HTTP": [(GROUP, "HTTPRoute"), (GROUP, "GRPCRoute")],
                 "HTTPS": [(GROUP, "HTTPRoute"), (GROUP, "GRPCRoute")],
                 "TCP": [(GROUP, "TCPRoute")],
                 "TLS": [(GROUP, "TLSRoute")] + ([(GROUP, "TCPRoute")] if listener.tls_mode == "Terminate" else [])
                 }.get(listener.protocol, [])
    if listener.kinds:
        inter = [k for k in supported if k in listener.kinds]
        return inter, len(inter) == len(listener.kinds)
    return supported, True


def parent_results(state: State, route: HTTPRoute) -> list[ParentResult]:
    """One entry per parentRef naming a Gateway istiod handles; refs to anything else get no entry."""
    return state.memo(("gwapi-parents", id(route)), lambda: _parent_results(state, route))


def _parent_results(state: State, route: HTTPRoute) -> list[ParentResult]:
    out = []
    for ref in route.parent_refs:
        if (ref.group, ref.kind) != (GROUP, "Gateway"):
            continue
        gw = istio_gateway(state, ref.namespace, ref.name)
        if gw is None:
            continue
        checks = [_check_listener(state, gw, ln, ref, route) for ln in gw.listeners]
        accepted = tuple(c.listener for c in checks if c.reason is None)
        if accepted:
            n = len(accepted)
            out.append(ParentResult(ref, gw, None, "Route was valid" if n == 1 else
                                    f"Route was valid, bound to {n} parents", accepted))
            continue
        best = min(_RANK[c.reason] for c in checks)
        worst = [c for c in checks if _RANK[c.reason] == best]
        out.append(ParentResult(ref, gw, worst[0].reason, "; ".join(c.message for c in worst)))
    return out


# --- backends ------------------------------------------------------------------------------------------
def _granted(state: State, route: HTTPRoute, b: BackendRef, target_ns: str) -> bool:
    """A ReferenceGrant in the backend's namespace allowing HTTPRoutes from the route's namespace
    to this Service (gatewaycommon/references.go)."""
    for grant in state.reference_grants:
        if grant.meta.namespace != target_ns:
            continue
        if not any(g == GROUP and k == "HTTPRoute" and ns == route.meta.namespace for g, k, ns in grant.sources):
            continue
        if any(g == b.group and k == b.kind and (name is None or name == b.name) for g, k, name in grant.targets):
            return True
    return False


def backend_result(state: State, route: HTTPRoute, b: BackendRef) -> BackendResult:
    """conversion.go:1086-1207 (buildDestination) in its order."""
    ns = b.namespace or route.meta.namespace
    if b.namespace and b.namespace != route.meta.namespace and not _granted(state, route, b, b.namespace):
        return BackendResult(b, ns, REF_NOT_PERMITTED, f'backendRef {b.name}/{b.namespace} not accessible to a '
                             f'HTTPRoute in namespace "{route.meta.namespace}" (missing a ReferenceGrant?)')
    if (b.group, b.kind) != ("", "Service"):
        return BackendResult(b, ns, INVALID_KIND,
                             f'referencing unsupported backendRef: group "{b.group}" kind "{b.kind}"')
    if "." in b.name:
        return BackendResult(b, ns, INVALID_DESTINATION,
                             "service name invalid; the name of the Service must be used, not the hostname.")
    svc = state.service(ns, b.name)
    if b.port is None:  # conversion.go:1203-1206, checked after the lookup and harder than a missing Service
        return BackendResult(b, ns, INVALID_DESTINATION, "port is required in backendRef")
    if svc is None:
        return BackendResult(b, ns, BACKEND_NOT_FOUND, f"backend({b.name}.{ns}.{CLUSTER_DOMAIN}) not found")
    return BackendResult(b, ns, None, "", svc)


def route_backend_error(state: State, route: HTTPRoute) -> BackendResult | None:
    """The ResolvedRefs=False cause istiod reports: a hard error stops at once, otherwise the last
    invalid backend met in rule order wins (weight-0 backends are skipped, conversion.go:942-946)."""
    last = None
    for rule in route.rules:
        bad = next((f for f in rule.filters if f not in SUPPORTED_FILTERS), None)
        if bad is not None:
            return BackendResult(BackendRef(""), route.meta.namespace, INVALID_FILTER,
                                 f'unsupported filter type "{bad}"')
        if rule.redirect is not None or not any(b.weight for b in rule.backends):
            continue
        for b in rule.backends:
            if not b.weight:
                continue
            res = backend_result(state, route, b)
            if res.reason in HARD_ERRORS:
                return res
            if res.reason is not None:
                last = res
    return last


# --- Gateway and listener status --------------------------------------------------------------------------
@dataclass(frozen=True)
class GatewayStatus:
    accepted: tuple[str, str, str]  # (status, reason, message)
    programmed: tuple[str, str, str]
    attached: Mapping[str, int]  # listener name -> attachedRoutes
    listener_problems: Mapping[str, tuple[str, str, str]]  # listener name -> (condition, reason, message)
    services: tuple[str, ...] = ()  # the hostnames istiod resolves (``<svc>.<ns>.svc.cluster.local``)


def attached_routes(state: State, gw: ApiGateway) -> dict[str, int]:
    """attachedRoutes per listener: routes with at least one accepted binding to it (backend errors do
    not count against it: invalid.status.yaml.golden)."""
    counts = {ln.name: 0 for ln in gw.listeners}
    for route in state.http_routes:
        names = {ln.name for p in parent_results(state, route) if p.gateway is gw for ln in p.accepted_listeners}
        for name in names:
            counts[name] += 1
    return counts


def _gateway_services(gw: ApiGateway) -> list[str]:
    if manual(gw):
        out = []
        for kind, value in gw.addresses:
            if kind == "Hostname":
                out.append(value if "." in value else f"{value}.{gw.meta.namespace}.{CLUSTER_DOMAIN}")
        return out
    return [f"{deployment_name(gw)}.{gw.meta.namespace}.{CLUSTER_DOMAIN}"]


def _programmed(state: State, gw: ApiGateway, hostnames: list[str]) -> tuple[str, str, str]:
    """context.go:66-160 then conversion.go:1900-1936."""
    ports = sorted({ln.port for ln in gw.listeners})
    internal: list[str] = []
    warnings: list[str] = []
    unusable = False
    pending: set[str] = set()
    for h in hostnames:
        svc = state.service_by_fqdn.get(h)
        if svc is None or svc.meta.namespace != gw.meta.namespace:
            others = sorted({s.meta.namespace for s in state.services if s.fqdn == h})
            warnings.append(f'hostname "{h}" not found in namespace "{gw.meta.namespace}", but it was found in '
                            f'namespace(s) {", ".join(chr(34) + o + chr(34) for o in others)}' if others
                            else f'hostname "{h}" not found')
            unusable = True
            continue
        ready = state.ready_pods_for(svc)
        for port in ports:
            if ready and svc.port(port) is not None:
                internal.append(f"{h}:{port}")
                if svc.type == "LoadBalancer" and not svc.lb_ingress and h not in pending:
                    warnings.append(f'address pending for hostname "{h}"')
                    pending.add(h)
            elif not ready:
                warnings.append(f'no instances found for hostname "{h}"')
            elif svc.port(port) is None:
                hint = sorted(str(sp.port) for sp in svc.ports if sp.target_port == port)
                warnings.append(f'port {port} not found for hostname "{h}" (hint: the service port should be '
                                f'specified, not the workload port. Did you mean one of these ports: '
                                f'[{" ".join(hint)}]?)' if hint else f'port {port} not found for hostname "{h}"')
                unusable = True
    warnings = sorted(set(warnings))
    internal = sorted(set(internal))
    if not hostnames:
        return ("False", "UnsupportedAddress", "Failed to assign to any requested addresses")  # conditions.go:242
    if warnings:
        reason = "AddressNotAssigned" if not unusable else "AddressNotUsable"
        msg = (f"Assigned to service(s) {_join(internal)}, but failed to assign to all requested addresses: "
               if internal else "Failed to assign to any requested addresses: ") + "; ".join(warnings)
        return ("False", reason, msg)
    return ("True", "Programmed", f"Resource programmed, assigned to service(s) {_join(internal)}" if internal
            else "Resource programmed")


def _join(items: list[str]) -> str:
    """humanReadableJoin, conversion.go:2513-2524."""
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + ", and " + items[-1]


def _protocol_problem(protocol: str) -> str | None:
    """listenerProtocolToIstio, conversion.go:2143-2170 (TCP only with the alpha flag, off by default)."""
    if protocol in SUPPORTED_PROTOCOLS:
        return None
    if protocol == "TCP":
        return 'protocol "TCP" is supported, but only when PILOT_ENABLE_ALPHA_GATEWAY_API=true is configured'
    if protocol.upper() in (*SUPPORTED_PROTOCOLS, "TCP"):
        return f'protocol "{protocol}" is unsupported. hint: "{protocol.upper()}" (uppercase) may be supported'
    return f'protocol "{protocol}" is unsupported'


def gateway_status(state: State, gw: ApiGateway) -> GatewayStatus:
    def compute() -> GatewayStatus:
        problems: dict[str, tuple[str, str, str]] = {}
        for ln in gw.listeners:
            p = _protocol_problem(ln.protocol)
            if p:
                problems[ln.name] = ("Accepted", "UnsupportedProtocol", p)
            elif not supported_kinds(ln)[1]:
                problems[ln.name] = ("ResolvedRefs", "InvalidRouteKinds", "Invalid route kinds")
        services = _gateway_services(gw)
        return GatewayStatus(("True", "Accepted", "Resource accepted"), _programmed(state, gw, services),
                             attached_routes(state, gw), problems, tuple(services))
    return state.memo(("gwapi-gateway-status", id(gw)), compute)
